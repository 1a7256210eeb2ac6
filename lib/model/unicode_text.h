// Unicode helpers for the tokenizer, matching llama.cpp's own (src/unicode.cpp)
// where tokenization depends on them:
//   - code point classes (general category, White_Space) from the table that
//     scripts/gen_unicode_tables.py generates (lib/model/unicode_data.inc);
//   - llama.cpp's lenient UTF-8 decoding: a byte that does not start a
//     well-formed sequence becomes U+FFFD and decoding resumes at the next byte;
//   - GPT-2's byte-level alphabet (every byte mapped to a printable code point).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::model::unicode {

// Class flags of a code point (one category bit, plus kSpace). Out-of-range
// positions in the pre-tokenizers use 0, which no real code point has.
enum : uint16_t {
  kUndefined = 1 << 0,  // unassigned (Cn)
  kNumber = 1 << 1,     // \p{N}
  kLetter = 1 << 2,     // \p{L}
  kSeparator = 1 << 3,  // \p{Z}
  kMark = 1 << 4,       // \p{M}
  kPunct = 1 << 5,      // \p{P}
  kSymbol = 1 << 6,     // \p{S}
  kOther = 1 << 7,      // \p{C} except Cn
  kCategoryMask = 0xFF,
  kSpace = 1 << 8,      // White_Space
};

inline constexpr uint32_t kReplacement = 0xFFFD;

uint16_t flags(uint32_t cp);  // kUndefined for cp >= 0x110000

// Appends the code points of `s` to `out`. Invalid bytes become U+FFFD (one
// per byte), as llama.cpp does; overlong forms and surrogates decode like
// llama.cpp (bits taken as they are). A 4-byte form above U+10FFFF, on which
// llama.cpp aborts, is treated as an invalid lead byte here.
void decode_utf8(std::string_view s, std::vector<uint32_t>& out);
void append_utf8(uint32_t cp, std::string& out);  // cp <= 0x10FFFF
// Length of the sequence a lead byte announces (1 for continuation bytes),
// llama.cpp's unicode_len_utf8: the SPM and BPE merge loops cut symbols with it.
inline size_t utf8_len(char lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[static_cast<uint8_t>(lead) >> 4];
}

// GPT-2 byte-level alphabet: byte -> its code point's UTF-8, and back (-1: not an alphabet code point).
const std::string& byte_to_bpe(uint8_t byte);
int bpe_to_byte(uint32_t cp);

}  // namespace moelab::model::unicode
