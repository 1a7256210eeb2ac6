// The one table of codecs. Adding a codec means adding one row here; tests,
// benchmarks, `moelab codecs` and name lookup all iterate this table.
#include <array>

#include "quant/blocks.h"
#include "quant/codec.h"
#include "quant/kernels_ref.h"
#include "quant/simd.h"

namespace moelab::quant {
namespace {

// GGUF tensor type ids (ggml.h's enum ggml_type).
enum GgmlType : int {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15, kBF16 = 30,
};

constexpr std::array<DecodeFn, kIsaCount> decoders(DecodeFn scalar, DecodeFn avx2 = nullptr,
                                                   DecodeFn avx512 = nullptr) {
  return {scalar, avx2, avx512};
}
constexpr std::array<DotFn, kIsaCount> dots(DotFn scalar, DotFn avx2 = nullptr, DotFn avx512 = nullptr) {
  return {scalar, avx2, avx512};
}

template <int kBits, int kGroup>
constexpr Codec affine_row(std::string_view name) {
  return Codec{name, Family::affine, -1, kGroup, sizeof(ref::BlockAffine<kBits, kGroup>), kBits, kGroup, "q8_1", true,
               ref::encode_affine_ref<kBits, kGroup>, ref::encode_affine<kBits, kGroup>,
               decoders(ref::decode_affine<kBits, kGroup>, avx2::decode_affine<kBits, kGroup>,
                        avx512::decode_affine<kBits, kGroup>),
               dots(ref::dot_affine_q8_1<kBits, kGroup>, avx2::dot_affine_q8_1<kBits, kGroup>,
                    avx512::dot_affine_q8_1<kBits, kGroup>)};
}

using namespace ref;
const Codec kCodecs[] = {
    // name, family, ggml type, block values, block bytes, bits, group, act, importance,
    // encode_ref, encode, decode per ISA, dot per ISA
    {"f32", Family::floating, kF32, 1, 4, 32, 0, "f32", false, encode_f32, encode_f32, decoders(decode_f32),
     dots(dot_f32_f32, avx2::dot_f32_f32, avx512::dot_f32_f32)},
    {"f16", Family::floating, kF16, 1, 2, 16, 0, "f32", false, encode_f16, encode_f16,
     decoders(decode_f16, avx2::decode_f16, avx512::decode_f16),
     dots(dot_f16_f32, avx2::dot_f16_f32, avx512::dot_f16_f32)},
    {"bf16", Family::floating, kBF16, 1, 2, 16, 0, "f32", false, encode_bf16, encode_bf16,
     decoders(decode_bf16, avx2::decode_bf16, avx512::decode_bf16),
     dots(dot_bf16_f32, avx2::dot_bf16_f32, avx512::dot_bf16_f32)},
    {"q8_0", Family::gguf_block, kQ8_0, kQK, sizeof(BlockQ8_0), 8, kQK, "q8_0", false, encode_q8_0,
     encode_q8_0_dispatch,
     decoders(decode_q8_0, avx2::decode_q8_0, avx512::decode_q8_0),
     dots(dot_q8_0_q8_0, avx2::dot_q8_0_q8_0)},  // AVX2 on AVX-512 too: llama.cpp's order (legacy_avx2.cpp)
    {"q5_1", Family::gguf_block, kQ5_1, kQK, sizeof(BlockQ5_1), 5, kQK, "q8_1", false, encode_q5_1, encode_q5_1,
     decoders(decode_q5_1, avx2::decode_q5_1, avx512::decode_q5_1),
     dots(dot_q5_1_q8_1, avx2::dot_q5_1_q8_1, avx512::dot_q5_1_q8_1)},
    {"q5_0", Family::gguf_block, kQ5_0, kQK, sizeof(BlockQ5_0), 5, kQK, "q8_0", false, encode_q5_0, encode_q5_0,
     decoders(decode_q5_0, avx2::decode_q5_0, avx512::decode_q5_0),
     dots(dot_q5_0_q8_0, avx2::dot_q5_0_q8_0, avx512::dot_q5_0_q8_0)},
    {"q4_1", Family::gguf_block, kQ4_1, kQK, sizeof(BlockQ4_1), 4, kQK, "q8_1", false, encode_q4_1, encode_q4_1,
     decoders(decode_q4_1, avx2::decode_q4_1, avx512::decode_q4_1),
     dots(dot_q4_1_q8_1, avx2::dot_q4_1_q8_1)},  // likewise
    {"q4_0", Family::gguf_block, kQ4_0, kQK, sizeof(BlockQ4_0), 4, kQK, "q8_0", false, encode_q4_0, encode_q4_0,
     decoders(decode_q4_0, avx2::decode_q4_0, avx512::decode_q4_0),
     dots(dot_q4_0_q8_0, avx2::dot_q4_0_q8_0, avx512::dot_q4_0_q8_0)},
    {"q6_k", Family::gguf_kquant, kQ6_K, kQK_K, sizeof(BlockQ6_K), 6, 16, "q8_k", true, encode_q6_k_ref,
     encode_q6_k, decoders(decode_q6_k, avx2::decode_q6_k, avx512::decode_q6_k),
     dots(dot_q6_k_q8_k, avx2::dot_q6_k_q8_k, avx512::dot_q6_k_q8_k)},
    {"q5_k", Family::gguf_kquant, kQ5_K, kQK_K, sizeof(BlockQ5_K), 5, 32, "q8_k", true, encode_q5_k_ref,
     encode_q5_k, decoders(decode_q5_k, avx2::decode_q5_k, avx512::decode_q5_k),
     dots(dot_q5_k_q8_k, avx2::dot_q5_k_q8_k, avx512::dot_q5_k_q8_k)},
    {"q4_k", Family::gguf_kquant, kQ4_K, kQK_K, sizeof(BlockQ4_K), 4, 32, "q8_k", true, encode_q4_k_ref,
     encode_q4_k, decoders(decode_q4_k, avx2::decode_q4_k, avx512::decode_q4_k),
     dots(dot_q4_k_q8_k, avx2::dot_q4_k_q8_k, avx512::dot_q4_k_q8_k)},
    {"q3_k", Family::gguf_kquant, kQ3_K, kQK_K, sizeof(BlockQ3_K), 3, 16, "q8_k", true, encode_q3_k_ref,
     encode_q3_k, decoders(decode_q3_k, avx2::decode_q3_k, avx512::decode_q3_k),
     dots(dot_q3_k_q8_k, avx2::dot_q3_k_q8_k, avx512::dot_q3_k_q8_k)},
    {"q2_k", Family::gguf_kquant, kQ2_K, kQK_K, sizeof(BlockQ2_K), 2, 16, "q8_k", true, encode_q2_k_ref,
     encode_q2_k, decoders(decode_q2_k, avx2::decode_q2_k, avx512::decode_q2_k),
     dots(dot_q2_k_q8_k, avx2::dot_q2_k_q8_k, avx512::dot_q2_k_q8_k)},
    affine_row<8, 32>("affine8_g32"),
    affine_row<8, 64>("affine8_g64"),
    affine_row<8, 128>("affine8_g128"),
    affine_row<6, 32>("affine6_g32"),
    affine_row<6, 64>("affine6_g64"),
    affine_row<6, 128>("affine6_g128"),
    affine_row<5, 32>("affine5_g32"),
    affine_row<5, 64>("affine5_g64"),
    affine_row<5, 128>("affine5_g128"),
    affine_row<4, 32>("affine4_g32"),
    affine_row<4, 64>("affine4_g64"),
    affine_row<4, 128>("affine4_g128"),
    affine_row<3, 32>("affine3_g32"),
    affine_row<3, 64>("affine3_g64"),
    affine_row<3, 128>("affine3_g128"),
    affine_row<2, 32>("affine2_g32"),
    affine_row<2, 64>("affine2_g64"),
    affine_row<2, 128>("affine2_g128"),
    {"tq4", Family::turbo, -1, kTurboBlock, sizeof(BlockTq4), 4, kTurboBlock, "rot128", false, encode_tq4,
     encode_tq4, decoders(decode_tq4, avx2::decode_tq4, avx512::decode_tq4),
     dots(dot_tq4_rot128, avx2::dot_tq4_rot128, avx512::dot_tq4_rot128)},
    {"tq3", Family::turbo, -1, kTurboBlock, sizeof(BlockTq3), 3, kTurboBlock, "rot128", false, encode_tq3,
     encode_tq3, decoders(decode_tq3, avx2::decode_tq3, avx512::decode_tq3),
     dots(dot_tq3_rot128, avx2::dot_tq3_rot128, avx512::dot_tq3_rot128)},
    // Activation-only codecs: what weight dots consume, never stored weights.
    {"q8_1", Family::gguf_block, kQ8_1, kQK, sizeof(BlockQ8_1), 8, kQK, "", false, encode_q8_1,
     encode_q8_1_dispatch,
     decoders(decode_q8_1, avx2::decode_q8_1, avx512::decode_q8_1), dots(nullptr)},
    {"q8_k", Family::gguf_kquant, kQ8_K, kQK_K, sizeof(BlockQ8_K), 8, kQK_K, "", false, encode_q8_k, encode_q8_k,
     decoders(decode_q8_k), dots(nullptr)},
    {"rot128", Family::turbo, -1, kTurboBlock, kTurboBlock * 4, 32, kTurboBlock, "", false, encode_rot128,
     encode_rot128, decoders(decode_rot128), dots(nullptr)},
};

}  // namespace

std::span<const Codec> all_codecs() { return kCodecs; }

}  // namespace moelab::quant
