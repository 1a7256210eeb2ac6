// STUB: placeholder so the tree links; replaced by the real implementation.
#include <string>

#include "core/error.h"
#include "quant/kernels_ref.h"

namespace moelab::quant::ref {
static void stub(const char* fn) { throw moelab::Error(std::string("not implemented yet: ") + fn); }
void encode_q2_k(const float*, void*, int64_t, const float*) { stub("encode_q2_k"); }
void decode_q2_k(const void*, float*, int64_t) { stub("decode_q2_k"); }
void encode_q3_k(const float*, void*, int64_t, const float*) { stub("encode_q3_k"); }
void decode_q3_k(const void*, float*, int64_t) { stub("decode_q3_k"); }
void encode_q4_k(const float*, void*, int64_t, const float*) { stub("encode_q4_k"); }
void decode_q4_k(const void*, float*, int64_t) { stub("decode_q4_k"); }
void encode_q5_k(const float*, void*, int64_t, const float*) { stub("encode_q5_k"); }
void decode_q5_k(const void*, float*, int64_t) { stub("decode_q5_k"); }
void encode_q6_k(const float*, void*, int64_t, const float*) { stub("encode_q6_k"); }
void decode_q6_k(const void*, float*, int64_t) { stub("decode_q6_k"); }
void encode_q8_k(const float*, void*, int64_t, const float*) { stub("encode_q8_k"); }
void decode_q8_k(const void*, float*, int64_t) { stub("decode_q8_k"); }
void encode_q2_k_ref(const float*, void*, int64_t, const float*) { stub("encode_q2_k_ref"); }
void encode_q3_k_ref(const float*, void*, int64_t, const float*) { stub("encode_q3_k_ref"); }
void encode_q4_k_ref(const float*, void*, int64_t, const float*) { stub("encode_q4_k_ref"); }
void encode_q5_k_ref(const float*, void*, int64_t, const float*) { stub("encode_q5_k_ref"); }
void encode_q6_k_ref(const float*, void*, int64_t, const float*) { stub("encode_q6_k_ref"); }
float dot_q2_k_q8_k(const void*, const void*, int64_t) { stub("dot_q2_k_q8_k"); return 0; }
float dot_q3_k_q8_k(const void*, const void*, int64_t) { stub("dot_q3_k_q8_k"); return 0; }
float dot_q4_k_q8_k(const void*, const void*, int64_t) { stub("dot_q4_k_q8_k"); return 0; }
float dot_q5_k_q8_k(const void*, const void*, int64_t) { stub("dot_q5_k_q8_k"); return 0; }
float dot_q6_k_q8_k(const void*, const void*, int64_t) { stub("dot_q6_k_q8_k"); return 0; }
}  // namespace moelab::quant::ref
