// STUB: placeholder so the tree links; replaced by the real implementation.
#include <string>

#include "core/error.h"
#include "quant/kernels_ref.h"

namespace moelab::quant::ref {
static void stub(const char* fn) { throw moelab::Error(std::string("not implemented yet: ") + fn); }
void encode_f32(const float*, void*, int64_t, const float*) { stub("encode_f32"); }
void decode_f32(const void*, float*, int64_t) { stub("decode_f32"); }
void encode_f16(const float*, void*, int64_t, const float*) { stub("encode_f16"); }
void decode_f16(const void*, float*, int64_t) { stub("decode_f16"); }
void encode_bf16(const float*, void*, int64_t, const float*) { stub("encode_bf16"); }
void decode_bf16(const void*, float*, int64_t) { stub("decode_bf16"); }
void encode_q4_0(const float*, void*, int64_t, const float*) { stub("encode_q4_0"); }
void decode_q4_0(const void*, float*, int64_t) { stub("decode_q4_0"); }
void encode_q4_1(const float*, void*, int64_t, const float*) { stub("encode_q4_1"); }
void decode_q4_1(const void*, float*, int64_t) { stub("decode_q4_1"); }
void encode_q5_0(const float*, void*, int64_t, const float*) { stub("encode_q5_0"); }
void decode_q5_0(const void*, float*, int64_t) { stub("decode_q5_0"); }
void encode_q5_1(const float*, void*, int64_t, const float*) { stub("encode_q5_1"); }
void decode_q5_1(const void*, float*, int64_t) { stub("decode_q5_1"); }
void encode_q8_0(const float*, void*, int64_t, const float*) { stub("encode_q8_0"); }
void decode_q8_0(const void*, float*, int64_t) { stub("decode_q8_0"); }
void encode_q8_1(const float*, void*, int64_t, const float*) { stub("encode_q8_1"); }
void decode_q8_1(const void*, float*, int64_t) { stub("decode_q8_1"); }
float dot_f32_f32(const void*, const void*, int64_t) { stub("dot_f32_f32"); return 0; }
float dot_f16_f32(const void*, const void*, int64_t) { stub("dot_f16_f32"); return 0; }
float dot_bf16_f32(const void*, const void*, int64_t) { stub("dot_bf16_f32"); return 0; }
float dot_q4_0_q8_0(const void*, const void*, int64_t) { stub("dot_q4_0_q8_0"); return 0; }
float dot_q4_1_q8_1(const void*, const void*, int64_t) { stub("dot_q4_1_q8_1"); return 0; }
float dot_q5_0_q8_0(const void*, const void*, int64_t) { stub("dot_q5_0_q8_0"); return 0; }
float dot_q5_1_q8_1(const void*, const void*, int64_t) { stub("dot_q5_1_q8_1"); return 0; }
float dot_q8_0_q8_0(const void*, const void*, int64_t) { stub("dot_q8_0_q8_0"); return 0; }
}  // namespace moelab::quant::ref
