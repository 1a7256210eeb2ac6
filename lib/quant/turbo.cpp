// STUB: placeholder so the tree links; replaced by the real implementation.
#include <string>

#include "core/error.h"
#include "quant/kernels_ref.h"

namespace moelab::quant::ref {
static void stub(const char* fn) { throw moelab::Error(std::string("not implemented yet: ") + fn); }
void encode_tq3(const float*, void*, int64_t, const float*) { stub("encode_tq3"); }
void decode_tq3(const void*, float*, int64_t) { stub("decode_tq3"); }
void encode_tq4(const float*, void*, int64_t, const float*) { stub("encode_tq4"); }
void decode_tq4(const void*, float*, int64_t) { stub("decode_tq4"); }
void encode_rot128(const float*, void*, int64_t, const float*) { stub("encode_rot128"); }
void decode_rot128(const void*, float*, int64_t) { stub("decode_rot128"); }
float dot_tq3_rot128(const void*, const void*, int64_t) { stub("dot_tq3_rot128"); return 0; }
float dot_tq4_rot128(const void*, const void*, int64_t) { stub("dot_tq4_rot128"); return 0; }
}  // namespace moelab::quant::ref
