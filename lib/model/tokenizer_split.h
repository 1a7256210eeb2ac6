// Pre-tokenizer steps of byte-level BPE: split a fragment's code points into
// words before merges run, exactly as llama.cpp's unicode_regex_split does.
//
// A pre-tokenizer is a sequence of steps; each step re-splits every piece the
// previous one produced. Two kinds of step reproduce two kinds of llama.cpp code:
//   gpt2, llama3, qwen2, qwen35  llama.cpp's hand-written scanners for those
//                                regexes (its unicode_regex_split_custom_*),
//                                including their small departures from the regex;
//   digit, digit_runs, punct_runs, ascii_digit_triples
//                                regexes llama.cpp runs through std::regex on
//                                text "collapsed" to one byte per code point
//                                (\p{N} -> [\xD1 0-9], ...): leftmost matches,
//                                unmatched gaps kept as pieces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace moelab::model {

enum class SplitStep : uint8_t {
  gpt2,                 // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
  llama3,               // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  qwen2,                // as llama3 with \p{N} (single digits)
  qwen35,               // as qwen2 with [\p{L}\p{M}]+ words and marks excluded from the punctuation run
  digit,                // \p{N}
  digit_runs,           // \p{N}+
  punct_runs,           // [\p{P}\$\+<=>\^~\|]+
  ascii_digit_triples,  // [0-9][0-9][0-9]
};

// Re-splits the pieces `pieces` ([n_pieces] lengths in code points, summing to
// cps.size()) of `cps` with one step; `flags` holds unicode::flags of each code point.
std::vector<size_t> split_pieces(SplitStep step, std::span<const uint32_t> cps, std::span<const uint16_t> flags,
                                 const std::vector<size_t>& pieces);

}  // namespace moelab::model
