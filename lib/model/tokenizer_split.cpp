#include "model/tokenizer_split.h"

#include "model/unicode_text.h"

namespace moelab::model {
namespace {

using namespace unicode;

constexpr uint32_t kOutside = 0xFFFFFFFF;  // code point "past the piece" (never matches a class)

// One piece [begin, end) of the fragment: reads outside it see kOutside / no flags,
// so lookaheads stop at the piece boundary as they do in llama.cpp.
struct Piece {
  std::span<const uint32_t> cps;
  std::span<const uint16_t> fl;
  size_t begin, end;
  std::vector<size_t>& out;
  size_t emitted;  // end of the last emitted word

  uint32_t cp(size_t i) const { return i >= begin && i < end ? cps[i] : kOutside; }
  uint16_t flags(size_t i) const { return i >= begin && i < end ? fl[i] : uint16_t(0); }
  void emit(size_t word_end) {
    if (word_end > emitted) out.push_back(word_end - emitted);
    emitted = word_end;
  }
};

bool is_cr_or_lf(uint32_t c) { return c == '\r' || c == '\n'; }

// Lower-cases ASCII only: no other code point lower-cases to a letter of the
// contractions (checked by scripts/gen_unicode_tables.py), so this equals
// llama.cpp's unicode_tolower for every comparison made here.
uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// 's 't 'm 'd 're 've 'll at `pos` (which holds the apostrophe): length matched, or 0.
size_t contraction_len(const Piece& p, size_t pos, bool any_case) {
  if (pos + 1 >= p.end) return 0;
  const uint32_t c1 = any_case ? ascii_lower(p.cp(pos + 1)) : p.cp(pos + 1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (pos + 2 >= p.end) return 0;
  const uint32_t c2 = any_case ? ascii_lower(p.cp(pos + 2)) : p.cp(pos + 2);
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

// Whitespace run at `pos`: \s+(?!\S) keeps the last space for the next word
// unless the run reaches the end of the piece; otherwise \s+ takes it all.
size_t trailing_space_end(const Piece& p, size_t pos) {
  size_t n = 0;
  while (p.flags(pos + n) & kSpace) ++n;
  if (n > 1 && p.cp(pos + n) != kOutside) return pos + n - 1;
  if (n > 0) return pos + n;
  return pos + 1;  // no alternative matched: the code point stands alone
}

void scan_gpt2(Piece& p) {
  for (size_t pos = p.begin; pos < p.end;) {
    const uint32_t c = p.cp(pos);
    if (c == '\'') {
      if (const size_t n = contraction_len(p, pos, false)) {
        pos += n;
        p.emit(pos);
        continue;
      }
    }
    // ` ?X+` for X = letters, numbers, or anything but space/letter/number.
    uint16_t f = c == ' ' ? p.flags(pos + 1) : p.flags(pos);
    const auto run_of = [&](auto in_class) {
      pos += c == ' ';
      while (in_class(f)) f = p.flags(++pos);
      p.emit(pos);
    };
    const auto is_letter = [](uint16_t x) { return (x & kLetter) != 0; };
    const auto is_number = [](uint16_t x) { return (x & kNumber) != 0; };
    const auto is_other = [](uint16_t x) { return !(x & (kSpace | kLetter | kNumber)) && x != 0; };
    if (is_letter(f)) { run_of(is_letter); continue; }
    if (is_number(f)) { run_of(is_number); continue; }
    if (is_other(f)) { run_of(is_other); continue; }
    pos = trailing_space_end(p, pos);
    p.emit(pos);
  }
}

// llama3 (max_digits 3), qwen2 (1), qwen35 (1, marks join words).
void scan_llama3_family(Piece& p, size_t max_digits, bool marks_in_words) {
  const uint16_t word_class = marks_in_words ? uint16_t(kLetter | kMark) : uint16_t(kLetter);
  for (size_t pos = p.begin; pos < p.end;) {
    const uint32_t c = p.cp(pos);
    const uint16_t f = p.flags(pos);
    if (c == '\'') {
      if (const size_t n = contraction_len(p, pos, true)) {
        pos += n;
        p.emit(pos);
        continue;
      }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+ : the optional lead is taken whenever the next code point starts a word.
    if (!is_cr_or_lf(c) && !(f & kNumber) && ((f & word_class) || (p.flags(pos + 1) & word_class))) {
      ++pos;
      while (p.flags(pos) & word_class) ++pos;
      p.emit(pos);
      continue;
    }
    // \p{N}{1,max_digits}
    if (f & kNumber) {
      size_t group_begin = pos;
      while (p.flags(pos) & kNumber) {
        if (++pos - group_begin >= max_digits) {
          p.emit(pos);
          group_begin = pos;
        }
      }
      p.emit(pos);
      continue;
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`; llama.cpp tests the current code point's flags for
    // "in range" here (not the one after the space), which only matters at a piece's end.
    const uint16_t not_other = kSpace | word_class | kNumber;
    uint16_t f2 = c == ' ' ? p.flags(pos + 1) : f;
    if (!(f2 & not_other) && f != 0) {
      pos += c == ' ';
      while (!(f2 & not_other) && f2 != 0) f2 = p.flags(++pos);
      while (is_cr_or_lf(p.cp(pos))) ++pos;
      p.emit(pos);
      continue;
    }
    // \s*[\r\n]+ : up to the last CR/LF of the whitespace run.
    size_t n_space = 0, last_newline_end = 0;
    while (p.flags(pos + n_space) & kSpace) {
      if (is_cr_or_lf(p.cp(pos + n_space))) last_newline_end = pos + n_space + 1;
      ++n_space;
    }
    if (last_newline_end > 0) {
      pos = last_newline_end;
      p.emit(pos);
      continue;
    }
    pos = trailing_space_end(p, pos);
    p.emit(pos);
  }
}

// std::regex-style step: `match(p, pos)` returns the end of a match starting at
// pos, or pos when none; matches are searched leftmost, gaps become pieces.
template <typename Match>
void scan_regex(Piece& p, Match match) {
  for (size_t pos = p.begin; pos < p.end;) {
    const size_t m = match(p, pos);
    if (m > pos) {
      p.emit(pos);  // the unmatched gap before this match
      p.emit(m);
      pos = m;
    } else {
      ++pos;
    }
  }
  p.emit(p.end);
}

// Membership in llama.cpp's collapsed classes: ASCII code points by their
// value, others by category (whitespace first, which collapses to \v).
bool collapsed_number(const Piece& p, size_t i) {
  const uint32_t c = p.cp(i);
  if (c < 128) return c >= '0' && c <= '9';
  const uint16_t f = p.flags(i);
  return !(f & kSpace) && (f & kCategoryMask) == kNumber;
}

// [\p{P}\$\+<=>\^~\|]: ASCII punctuation per llama.cpp's list for \p{P}
// (!"#%&'()*,-./:;?@[\]_{}) plus $+<=>^~| (not the backtick).
bool collapsed_punct_or_listed(const Piece& p, size_t i) {
  const uint32_t c = p.cp(i);
  if (c < 128) {
    if ((c >= 0x21 && c <= 0x23) || (c >= 0x25 && c <= 0x2A) || (c >= 0x2C && c <= 0x2F) || c == 0x3A || c == 0x3B ||
        c == 0x3F || c == 0x40 || (c >= 0x5B && c <= 0x5D) || c == 0x5F || c == 0x7B || c == 0x7D)
      return true;
    return c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' || c == '|';
  }
  const uint16_t f = p.flags(i);
  return !(f & kSpace) && (f & kCategoryMask) == kPunct;
}

bool ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }

}  // namespace

std::vector<size_t> split_pieces(SplitStep step, std::span<const uint32_t> cps, std::span<const uint16_t> flags,
                                 const std::vector<size_t>& pieces) {
  std::vector<size_t> out;
  out.reserve(pieces.size() + cps.size() / 4);
  size_t begin = 0;
  for (const size_t len : pieces) {
    Piece p{cps, flags, begin, begin + len, out, begin};
    switch (step) {
      case SplitStep::gpt2: scan_gpt2(p); break;
      case SplitStep::llama3: scan_llama3_family(p, 3, false); break;
      case SplitStep::qwen2: scan_llama3_family(p, 1, false); break;
      case SplitStep::qwen35: scan_llama3_family(p, 1, true); break;
      case SplitStep::digit:
        scan_regex(p, [](const Piece& q, size_t i) { return collapsed_number(q, i) ? i + 1 : i; });
        break;
      case SplitStep::digit_runs:
        scan_regex(p, [](const Piece& q, size_t i) {
          while (i < q.end && collapsed_number(q, i)) ++i;
          return i;
        });
        break;
      case SplitStep::punct_runs:
        scan_regex(p, [](const Piece& q, size_t i) {
          while (i < q.end && collapsed_punct_or_listed(q, i)) ++i;
          return i;
        });
        break;
      case SplitStep::ascii_digit_triples:
        scan_regex(p, [](const Piece& q, size_t i) {
          const bool hit = i + 3 <= q.end && ascii_digit(q.cp(i)) && ascii_digit(q.cp(i + 1)) && ascii_digit(q.cp(i + 2));
          return hit ? i + 3 : i;
        });
        break;
    }
    begin += len;
  }
  return out;
}

}  // namespace moelab::model
