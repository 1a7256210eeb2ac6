#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace moelab::metrics {

uint64_t read_chunk_avx512(const uint8_t* p, size_t bytes) {
  __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 128 <= bytes; i += 128) {
    a = _mm512_xor_si512(a, _mm512_load_si512(p + i));
    b = _mm512_xor_si512(b, _mm512_load_si512(p + i + 64));
  }
  for (; i < bytes; i += 64) a = _mm512_xor_si512(a, _mm512_load_si512(p + i));
  a = _mm512_xor_si512(a, b);
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, a);
  uint64_t acc = 0;
  for (uint64_t v : lanes) acc ^= v;
  return acc;
}

}  // namespace moelab::metrics
