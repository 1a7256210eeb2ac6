// STUB: placeholder so the tree links; replaced by the real implementation.
#include "core/error.h"
#include "quant/kernels_ref.h"

namespace moelab::quant::ref {
template <int kBits, int kGroup>
void encode_affine(const float*, void*, int64_t, const float*) { throw moelab::Error("not implemented yet: affine"); }
template <int kBits, int kGroup>
void decode_affine(const void*, float*, int64_t) { throw moelab::Error("not implemented yet: affine"); }
template <int kBits, int kGroup>
float dot_affine_q8_1(const void*, const void*, int64_t) { throw moelab::Error("not implemented yet: affine"); }
#define INST(B, G) template void encode_affine<B, G>(const float*, void*, int64_t, const float*); \
  template void decode_affine<B, G>(const void*, float*, int64_t); \
  template float dot_affine_q8_1<B, G>(const void*, const void*, int64_t);
#define INST_BITS(B) INST(B, 32) INST(B, 64) INST(B, 128)
INST_BITS(2) INST_BITS(3) INST_BITS(4) INST_BITS(5) INST_BITS(6) INST_BITS(8)
}  // namespace moelab::quant::ref
