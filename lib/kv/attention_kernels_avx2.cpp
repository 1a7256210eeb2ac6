// kv/attention_kernels_impl.h built with AVX2 + FMA (lib/CMakeLists.txt gives *_avx2.cpp those flags).
#include "kv/attention_kernels.h"

namespace moelab::kv::kernels_avx2 {
#include "kv/attention_kernels_impl.h"
}  // namespace moelab::kv::kernels_avx2
