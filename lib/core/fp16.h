// IEEE half and bfloat16 conversions, bit-exact with numpy (np.float16) and
// hence with gguf's python reference: round-to-nearest-even on the way down,
// exact on the way up, NaN payloads kept (checked in tests/quant/test_fp16.cpp
// against all 65536 halves). Hardware F16C differs only on NaNs: vcvtph2ps
// sets the quiet bit of signaling NaNs, which SIMD decoders must undo.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace moelab {

using fp16_t = uint16_t;  // IEEE 754 binary16 bits
using bf16_t = uint16_t;  // bfloat16 bits

inline float fp16_to_f32(fp16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

inline fp16_t f32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) {  // NaN: keep the top payload bits, as numpy does (never turn it into inf)
    const uint32_t payload = (abs >> 13) & 0x3ffu;
    return fp16_t(sign | 0x7c00u | (payload ? payload : 1u));
  }
  if (abs >= 0x477ff000u) return fp16_t(sign | 0x7c00u);  // overflow -> inf (incl. rounding up)
  if (abs < 0x38800000u) {  // result is subnormal or zero
    if (abs < 0x33000000u) return fp16_t(sign);  // below half the smallest subnormal
    // Subnormal half = m * 2^-24, so m is the 24-bit significand shifted
    // right by (126 - exp), rounded to nearest even.
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;  // 14..24
    uint32_t m = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (m & 1u))) ++m;
    return fp16_t(sign | m);
  }
  // Normal: rebias exponent, round mantissa 23 -> 10 bits to nearest even.
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return fp16_t(sign | h);
}

inline float bf16_to_f32(bf16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

// ggml's rule: NaN is quieted; everything else rounds to nearest even.
inline bf16_t f32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return bf16_t((x >> 16) | 64u);
  return bf16_t((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}

}  // namespace moelab
