#include "model/unicode_text.h"

#include <array>
#include <memory>

namespace moelab::model::unicode {
namespace {

constexpr uint32_t kMaxCodePoint = 0x110000;

struct Range {
  uint32_t first;
  uint8_t cls;  // low 3 bits: category class, 0x8: White_Space
};
constexpr Range kRanges[] = {
#include "model/unicode_data.inc"
};

// Class index (unicode_data.inc) -> category flag.
constexpr uint16_t kCategoryOfClass[8] = {kUndefined, kNumber, kLetter, kSeparator, kMark, kPunct, kSymbol, kOther};

// One flag word per code point, expanded once from the ranges: 2.2 MB, but a
// pre-tokenizer asks several times per code point, so lookups must be O(1).
const uint16_t* flag_table() {
  static const std::unique_ptr<uint16_t[]> table = [] {
    auto t = std::make_unique<uint16_t[]>(kMaxCodePoint);
    constexpr size_t n = sizeof(kRanges) / sizeof(kRanges[0]);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t end = i + 1 < n ? kRanges[i + 1].first : kMaxCodePoint;
      const uint16_t f = kCategoryOfClass[kRanges[i].cls & 7] | ((kRanges[i].cls & 8) ? kSpace : 0);
      for (uint32_t cp = kRanges[i].first; cp < end; ++cp) t[cp] = f;
    }
    return t;
  }();
  return table.get();
}

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves,
// the other 68 take code points 256, 257, ... in byte order.
struct ByteAlphabet {
  std::array<std::string, 256> text;
  std::array<int16_t, 512> byte_of;  // code point -> byte, -1 if none
  ByteAlphabet() {
    byte_of.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = printable ? uint32_t(b) : next++;
      append_utf8(cp, text[b]);
      byte_of[cp] = int16_t(b);
    }
  }
};
const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

}  // namespace

uint16_t flags(uint32_t cp) { return cp < kMaxCodePoint ? flag_table()[cp] : uint16_t(kUndefined); }

void decode_utf8(std::string_view s, std::vector<uint32_t>& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t b0 = p[i];
    if (b0 < 0x80) {
      out.push_back(b0);
      i += 1;
    } else if ((b0 & 0xE0) == 0xC0 && i + 1 < n && is_cont(p[i + 1])) {
      out.push_back((uint32_t(b0 & 0x1F) << 6) | (p[i + 1] & 0x3F));
      i += 2;
    } else if ((b0 & 0xF0) == 0xE0 && i + 2 < n && is_cont(p[i + 1]) && is_cont(p[i + 2])) {
      out.push_back((uint32_t(b0 & 0x0F) << 12) | (uint32_t(p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F));
      i += 3;
    } else if ((b0 & 0xF8) == 0xF0 && i + 3 < n && is_cont(p[i + 1]) && is_cont(p[i + 2]) && is_cont(p[i + 3])) {
      const uint32_t cp = (uint32_t(b0 & 0x07) << 18) | (uint32_t(p[i + 1] & 0x3F) << 12) |
                          (uint32_t(p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
      if (cp < kMaxCodePoint) {
        out.push_back(cp);
        i += 4;
      } else {
        out.push_back(kReplacement);
        i += 1;
      }
    } else {
      out.push_back(kReplacement);
      i += 1;
    }
  }
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | ((cp >> 18) & 0x07)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

const std::string& byte_to_bpe(uint8_t byte) { return alphabet().text[byte]; }

int bpe_to_byte(uint32_t cp) { return cp < 512 ? alphabet().byte_of[cp] : -1; }

}  // namespace moelab::model::unicode
