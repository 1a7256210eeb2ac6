// The two inner loops of tiled attention (kv/attention.h), on f32 tiles, per
// instruction set: attention_kernels.cpp (portable) and
// attention_kernels_avx2.cpp (the same code compiled for AVX2 + FMA), chosen
// at run time from quant::active_isa().
#pragma once

#include <cstdint>

namespace moelab::kv {

inline constexpr int64_t kKeyTile = 64;  // keys per tile

struct AttentionKernels {
  // s[i * lds + j] = sum_d q[i * dim + d] kt[d * kKeyTile + j], i < m, j < kKeyTile.
  void (*scores)(const float* q, int64_t m, int64_t dim, const float* kt, float* s, int64_t lds);
  // acc[i * hd + d] += sum_{j < len[i]} p[i * ldp + j] v[j * hd + d], i < m.
  void (*mix)(const float* p, int64_t ldp, int64_t m, const int64_t* len, const float* v, int64_t hd, float* acc);
};

const AttentionKernels& attention_kernels();  // for the active ISA

namespace kernels_portable {
void scores(const float* q, int64_t m, int64_t dim, const float* kt, float* s, int64_t lds);
void mix(const float* p, int64_t ldp, int64_t m, const int64_t* len, const float* v, int64_t hd, float* acc);
}  // namespace kernels_portable
namespace kernels_avx2 {
void scores(const float* q, int64_t m, int64_t dim, const float* kt, float* s, int64_t lds);
void mix(const float* p, int64_t ldp, int64_t m, const int64_t* len, const float* v, int64_t hd, float* acc);
}  // namespace kernels_avx2

}  // namespace moelab::kv
