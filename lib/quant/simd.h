// SIMD kernels, declared per instruction set. Each family's kernels live in
// their own translation units named <family>_<isa>.cpp, compiled with that
// ISA's flags only (lib/CMakeLists.txt), and are reached only through the
// codec table after runtime dispatch has checked the CPU (codec.cpp). Every
// kernel has a scalar twin in kernels_ref.h that tests compare it against.
#pragma once

#include <cstdint>

namespace moelab::quant {

namespace avx2 {
// legacy_avx2.cpp (f16, bf16, q4_0 .. q8_0)

// kquants_avx2.cpp (q2_k .. q6_k, q8_k)

// lowbit_avx2.cpp (affine, tq)
}  // namespace avx2

namespace avx512 {
// legacy_avx512.cpp

// kquants_avx512.cpp

// lowbit_avx512.cpp
}  // namespace avx512

}  // namespace moelab::quant
