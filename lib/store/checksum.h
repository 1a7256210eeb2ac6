// A fast 64-bit checksum for pack blobs and headers: eight bytes per step,
// multiply-xorshift mixing (the structure of splitmix64 applied as a stream
// hash). It detects corruption; it is not a cryptographic hash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace moelab::store {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

inline uint64_t checksum64(const void* data, size_t n, uint64_t seed = 0x6D6F656C6162ull) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = mix64(seed ^ uint64_t(n));
  size_t i = 0;
  // Four independent lanes keep the multiplies pipelined.
  uint64_t a = h, b = h + 1, c = h + 2, d = h + 3;
  for (; i + 32 <= n; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, 32);
    a = (a ^ w[0]) * 0x9E3779B97F4A7C15ull;
    b = (b ^ w[1]) * 0xC2B2AE3D27D4EB4Full;
    c = (c ^ w[2]) * 0x165667B19E3779F9ull;
    d = (d ^ w[3]) * 0x27D4EB2F165667C5ull;
    a ^= a >> 29; b ^= b >> 31; c ^= c >> 27; d ^= d >> 33;
  }
  h = mix64(a) ^ mix64(b + 0x1234) ^ mix64(c + 0x5678) ^ mix64(d + 0x9ABC);
  for (; i < n; ++i) h = mix64(h ^ p[i]);
  return mix64(h);
}

}  // namespace moelab::store
