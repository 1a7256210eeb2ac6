// The codec registry: one row per weight/activation format.
//
// A codec stores a row of values as a sequence of fixed-size blocks
// (`block_values` values in `block_bytes` bytes). Every row carries:
//   encode_ref  scalar reference quantizer (deterministic; bit-exact with
//               ggml's `_ref` quantizers where ggml has one)
//   encode      the quantizer used in practice (may equal encode_ref)
//   decode      per-ISA dequantizers; all bit-identical to decode[scalar]
//   dot         per-ISA dot products of one weight row with one activation
//               row already encoded in the codec named by `act` (llama.cpp's
//               "vec_dot_type": q8_0, q8_1, q8_k, or f32 for the exact path)
//
// Rows live in one table (codec_table.cpp); tests and benchmarks loop over it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::quant {

// Instruction sets with their own kernels. `avx512` means F+BW+VL+DQ+VNNI.
enum class Isa : uint8_t { scalar = 0, avx2 = 1, avx512 = 2 };
inline constexpr int kIsaCount = 3;
std::string_view isa_name(Isa isa);
bool isa_supported(Isa isa);   // what this CPU can run
Isa best_isa();                // highest supported, unless MOELAB_ISA overrides it
Isa active_isa();              // what dispatch uses now (best_isa() unless set_active_isa)
void set_active_isa(Isa isa);  // throws moelab::Error if the CPU lacks it

enum class Family : uint8_t { floating, gguf_block, gguf_kquant, affine, turbo };

// Scalar signatures. `n` is the number of values (a multiple of block_values).
// `importance` is an optional per-value weight (imatrix); nullptr means none.
using EncodeFn = void (*)(const float* x, void* dst, int64_t n, const float* importance);
using DecodeFn = void (*)(const void* src, float* y, int64_t n);
// Dot of one weight row (this codec) with one activation row (codec `act`).
using DotFn = float (*)(const void* w, const void* act, int64_t n);

struct Codec {
  std::string_view name;   // "q4_k", "affine3_g64", "tq3", ...
  Family family;
  int ggml_type;           // GGUF tensor type id, or -1 when not a GGUF type
  int block_values;        // values per block
  int block_bytes;         // bytes per block
  int bits;                // nominal bits of one code (4 for q4_k, 3 for tq3)
  int group;               // values sharing one scale (affine group size; 0 if n/a)
  std::string_view act;    // name of the activation codec `dot` expects
  bool weight_only_importance;  // true when encode honours `importance`
  EncodeFn encode_ref;
  EncodeFn encode;
  std::array<DecodeFn, kIsaCount> decode_by_isa;  // nullptr: no kernel for that ISA
  std::array<DotFn, kIsaCount> dot_by_isa;

  double bits_per_weight() const { return 8.0 * block_bytes / block_values; }
  // Bytes spent on scales/biases/mins rather than codes, per block
  // (block_bytes - codes). mac-code measured 15% at affine 4-bit g64.
  double overhead_fraction() const;

  size_t row_bytes(int64_t n) const;  // validates n % block_values == 0
  // Alignment a row's address needs: blocks are read through their structs,
  // whose widest field is fp16 (2) or f32 (4: f32, q8_k, rot128).
  size_t alignment() const;
  // The kernel dispatch would pick for `isa`: that ISA's own, else the best
  // lower one. `kernel_isa` reports which one that is (no silent fallbacks:
  // `moelab codecs` prints it).
  DecodeFn decode(Isa isa) const;
  DotFn dot(Isa isa) const;
  Isa decode_kernel_isa(Isa isa) const;
  Isa dot_kernel_isa(Isa isa) const;
  DecodeFn decode() const { return decode(active_isa()); }
  DotFn dot() const { return dot(active_isa()); }
};

// All codecs, in a stable order (weight codecs first, then activation-only).
std::span<const Codec> all_codecs();
// Lookup by name; throws moelab::Error listing every known name when unknown.
const Codec& codec(std::string_view name);
const Codec* find_codec(std::string_view name);  // nullptr when unknown
const Codec* find_codec_by_ggml_type(int ggml_type);
std::string known_codec_names();  // "f32, f16, ..." for error messages
// Whether `c` is a weight codec (false for q8_k / q8_1 and other activation-only rows).
bool is_weight_codec(const Codec& c);

}  // namespace moelab::quant
