#include "model/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <functional>
#include <unordered_map>

#include "core/error.h"
#include "model/tokenizer_split.h"
#include "model/unicode_text.h"

namespace moelab::model {
namespace {

// Token attributes, as llama.cpp derives them from token_type (llama_token_attr bits).
enum : uint32_t {
  kAttrUnknown = 1 << 0,
  kAttrUnused = 1 << 1,
  kAttrNormal = 1 << 2,
  kAttrControl = 1 << 3,
  kAttrUserDefined = 1 << 4,
  kAttrByte = 1 << 5,
};
constexpr uint32_t kAttrHidden = kAttrUnknown | kAttrControl;  // rendered only on request

uint32_t attr_of_type(int32_t type) {
  switch (TokenType(type)) {
    case TokenType::unknown: return kAttrUnknown;
    case TokenType::unused: return kAttrUnused;
    case TokenType::normal: return kAttrNormal;
    case TokenType::control: return kAttrControl;
    case TokenType::user_defined: return kAttrUserDefined;
    case TokenType::byte: return kAttrByte;
    default: return 0;  // undefined
  }
}

// One row per tokenizer.ggml.pre value llama.cpp knows and this tokenizer
// reproduces: its split steps, whether detokenizing cleans up spaces before
// punctuation, whether a word that is already a token skips the merges, and
// whether BOS is added by default.
struct PreSpec {
  std::string_view name;
  std::span<const SplitStep> steps;
  bool clean_spaces;
  bool ignore_merges = false;
  bool add_bos = false;
};

constexpr SplitStep kDefaultSteps[] = {SplitStep::punct_runs, SplitStep::gpt2, SplitStep::digit_runs,
                                       SplitStep::ascii_digit_triples};
constexpr SplitStep kGpt2Steps[] = {SplitStep::gpt2};
constexpr SplitStep kDigitThenGpt2Steps[] = {SplitStep::digit, SplitStep::gpt2};  // starcoder, smollm, ...
constexpr SplitStep kLlama3Steps[] = {SplitStep::llama3};
constexpr SplitStep kQwen2Steps[] = {SplitStep::qwen2};
constexpr SplitStep kQwen35Steps[] = {SplitStep::qwen35};

constexpr PreSpec kPreSpecs[] = {
    {"default", kDefaultSteps, true},
    {"llama3", kLlama3Steps, true, true, true},
    {"llama-v3", kLlama3Steps, true, true, true},
    {"llama-bpe", kLlama3Steps, true, true, true},
    {"falcon3", kLlama3Steps, true, true, true},
    {"falcon-h1", kLlama3Steps, true, true, true},
    {"pixtral", kLlama3Steps, true, true, true},
    {"midm-2.0", kLlama3Steps, true, true, true},
    {"lfm2", kLlama3Steps, true, true, true},
    {"dbrx", kLlama3Steps, true},
    {"smaug-bpe", kLlama3Steps, true},
    {"gpt-2", kGpt2Steps, true},
    {"phi-2", kGpt2Steps, true},
    {"gigachat", kGpt2Steps, true},
    {"a.x-4.0", kGpt2Steps, true},
    {"mellum", kGpt2Steps, true},
    {"mpt", kGpt2Steps, true},
    {"olmo", kGpt2Steps, true},
    {"jais", kGpt2Steps, true},
    {"exaone4", kGpt2Steps, true},
    {"trillion", kGpt2Steps, false},
    {"granite-docling", kGpt2Steps, false},
    {"starcoder", kDigitThenGpt2Steps, true},
    {"refact", kDigitThenGpt2Steps, true},
    {"codeshell", kDigitThenGpt2Steps, true},
    {"exaone", kDigitThenGpt2Steps, true},
    {"minerva-7b", kDigitThenGpt2Steps, true},
    {"mellum2", kDigitThenGpt2Steps, true},
    {"command-r", kDigitThenGpt2Steps, false},
    {"smollm", kDigitThenGpt2Steps, false},
    {"qwen2", kQwen2Steps, false},
    {"deepseek-r1-qwen", kQwen2Steps, false},
    {"kormo", kQwen2Steps, false},
    {"f2llmv2", kQwen2Steps, false},
    {"hunyuan", kQwen2Steps, false},
    {"solar-open", kQwen2Steps, false},
    {"megrez", kQwen2Steps, true},
    {"stablelm2", kQwen2Steps, true},
    {"qwen35", kQwen35Steps, false},
};

const PreSpec& find_pre(std::string_view name) {
  if (name.empty()) name = "default";
  for (const PreSpec& p : kPreSpecs)
    if (p.name == name) return p;
  std::string known;
  for (const PreSpec& p : kPreSpecs) known += (known.empty() ? "" : ", ") + std::string(p.name);
  throw Error("tokenizer: pre-tokenizer '" + std::string(name) + "' is not supported (supported: " + known + ")");
}

// Text-based fix-ups llama.cpp applies to every vocabulary (llama_vocab::impl::load).
constexpr std::string_view kEotNames[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                          "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                                          "<\uff5cend\u2581of\u2581sentence\uff5c>", "<end_of_utterance>"};
constexpr std::string_view kEomNames[] = {"<|eom_id|>"};
constexpr std::string_view kFimPreNames[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\uff5cfim\u2581begin\uff5c>",
                                             "<PRE>", "\u2581<PRE>", "<|code_prefix|>", "<|prefix|>"};
constexpr std::string_view kFimSufNames[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\uff5cfim\u2581hole\uff5c>",
                                             "<SUF>", "\u2581<SUF>", "<|code_suffix|>", "<|suffix|>"};
constexpr std::string_view kFimMidNames[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\uff5cfim\u2581end\uff5c>",
                                             "<MID>", "\u2581<MID>", "<|code_middle|>", "<|middle|>"};
constexpr std::string_view kFimPadNames[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
constexpr std::string_view kFimRepNames[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::string_view kFimSepNames[] = {"<|file_sep|>"};
constexpr std::string_view kEogNames[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<\uff5cend\u2581of\u2581sentence\uff5c>", "[e~["};
constexpr std::string_view kAlwaysRenderedNames[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};

template <size_t N>
bool is_one_of(std::string_view s, const std::string_view (&names)[N]) {
  return std::find(std::begin(names), std::end(names), s) != std::end(names);
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using StringMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

const std::string kSpaceEscape = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

// Symbol of the merge loops: a byte range of the word, linked to its neighbours.
struct Symbol {
  int32_t prev, next;
  uint32_t begin, n;  // n = 0 once merged into the left neighbour
};

// A candidate merge of symbols left and right (adjacent when queued). It is
// stale once either side has changed, i.e. when their lengths no longer sum to size.
struct Candidate {
  double priority;  // BPE: -rank, SPM: score (both exact in a double); larger merges first
  int32_t left, right;
  uint32_t size;
};
// Heap order: highest priority first, then leftmost.
bool operator<(const Candidate& a, const Candidate& b) {
  return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
}

}  // namespace

struct Tokenizer::Impl {
  Kind kind = Kind::bpe;
  const PreSpec* pre = nullptr;  // BPE only
  std::string pre_name;

  std::vector<std::string> text;   // [n_tokens]
  std::vector<float> score;        // [n_tokens]
  std::vector<uint32_t> attr;      // [n_tokens] kAttr* bits
  std::vector<std::string> piece;  // [n_tokens] bytes each token renders as (special tokens included)
  std::vector<uint8_t> eog;        // [n_tokens] 1 if the token ends generation
  StringMap id_of;
  StringMap merge_rank;                 // "left right" -> rank
  std::vector<int32_t> special_order;  // control/user-defined/unknown ids, longest text first
  std::array<int32_t, 256> byte_token;  // BPE: token whose text is that single byte; SPM: <0xXX> (or the raw byte); -1 if none

  int32_t bos = -1, eos = -1, unk = -1, eot = -1, eom = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false, clean_spaces = false, ignore_merges = false;

  int32_t lookup(std::string_view s) const {
    const auto it = id_of.find(s);
    return it == id_of.end() ? -1 : it->second;
  }
  void check_id(int32_t id) const {
    if (id < 0 || size_t(id) >= text.size())
      throw Error("tokenizer: token id " + std::to_string(id) + " out of range [0, " + std::to_string(text.size()) + ")");
  }

  void load(Vocab&& v);
  void fix_attributes();
  std::string render(int32_t id) const;

  // A fragment of the input: either a special token, or raw text [offset, offset + length).
  struct Fragment {
    int32_t token;  // -1 for text
    size_t offset, length;
  };
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  void encode_bpe(std::string_view fragment, std::vector<int32_t>& out) const;
  void merge_bpe_word(std::string_view word, std::vector<int32_t>& out, std::vector<Symbol>& symbols,
                      std::vector<Candidate>& heap, std::string& key) const;
  void encode_spm(std::string_view escaped, std::vector<int32_t>& out) const;
};

void Tokenizer::Impl::load(Vocab&& v) {
  if (v.model == "gpt2") {
    kind = Kind::bpe;
  } else if (v.model == "llama") {
    kind = Kind::spm;
  } else {
    throw Error("tokenizer: model '" + v.model + "' is not supported (supported: gpt2, llama)");
  }
  const size_t n = v.tokens.size();
  if (n == 0) throw Error("tokenizer: vocabulary has no tokens");
  if (n > size_t(INT32_MAX)) throw Error("tokenizer: too many tokens");
  if (!v.scores.empty() && v.scores.size() < n)
    throw Error("tokenizer: " + std::to_string(v.scores.size()) + " scores for " + std::to_string(n) + " tokens");
  if (!v.token_types.empty() && v.token_types.size() < n)
    throw Error("tokenizer: " + std::to_string(v.token_types.size()) + " token types for " + std::to_string(n) + " tokens");

  text = std::move(v.tokens);
  score.assign(n, 0.0f);
  attr.assign(n, kAttrNormal);
  id_of.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (text[i].empty()) text[i] = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp renames them
    const auto [it, fresh] = id_of.emplace(text[i], int32_t(i));
    if (!fresh)
      throw Error("tokenizer: duplicate token '" + text[i] + "' (ids " + std::to_string(it->second) + " and " +
                  std::to_string(i) + ")");
    if (!v.scores.empty()) score[i] = v.scores[i];
    if (!v.token_types.empty()) attr[i] = attr_of_type(v.token_types[i]);
  }

  // Per-model defaults, then the vocabulary's own keys (llama.cpp ignores out-of-range ids).
  int32_t def_bos = -1, def_eos = -1, def_unk = -1;
  if (kind == Kind::bpe) {
    pre = &find_pre(v.pre);
    pre_name = std::string(pre->name);
    if (v.merges.empty()) throw Error("tokenizer: gpt2 vocabulary has no merges");
    merge_rank.reserve(v.merges.size());
    for (size_t i = 0; i < v.merges.size(); ++i) {
      // llama.cpp splits at the first space after the first byte; a line without one maps ("", "").
      const std::string& m = v.merges[i];
      const size_t cut = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
      std::string key = cut == std::string::npos ? std::string(" ") : m;
      merge_rank.emplace(std::move(key), int32_t(i));
    }
    def_bos = def_eos = 11;
    add_bos = pre->add_bos;
    clean_spaces = pre->clean_spaces;
    ignore_merges = pre->ignore_merges;
    add_space_prefix = false;
  } else {
    pre_name = "default";  // SentencePiece vocabularies have no pre-tokenizer
    def_bos = 1, def_eos = 2, def_unk = 0;
    add_bos = true;
    add_space_prefix = true;
  }
  const auto resolve = [n](int32_t given, int32_t fallback) {
    if (fallback >= 0 && size_t(fallback) >= n) fallback = -1;
    return given >= 0 && size_t(given) < n ? given : fallback;
  };
  bos = resolve(v.bos, def_bos);
  eos = resolve(v.eos, def_eos);
  unk = resolve(v.unk, def_unk);
  eot = resolve(v.eot, -1);
  eom = resolve(v.eom, -1);
  if (v.add_space_prefix) add_space_prefix = *v.add_space_prefix;
  if (v.add_bos) add_bos = *v.add_bos;
  if (v.add_eos) add_eos = *v.add_eos;
  if (add_bos && bos < 0) throw Error("tokenizer: add_bos_token is true but the vocabulary has no BOS token");
  if (add_eos && eos < 0) throw Error("tokenizer: add_eos_token is true but the vocabulary has no EOS token");

  fix_attributes();

  // Special tokens are split out longest first. llama.cpp sorts with std::sort
  // (not stable) by length from ascending ids; doing the same keeps its order
  // among equal lengths.
  for (size_t i = 0; i < n; ++i)
    if (attr[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) special_order.push_back(int32_t(i));
  std::sort(special_order.begin(), special_order.end(),
            [&](int32_t a, int32_t b) { return text[a].size() > text[b].size(); });

  for (int b = 0; b < 256; ++b) {
    if (kind == Kind::bpe) {
      byte_token[b] = lookup(std::string(1, char(b)));
    } else {
      static const char* kHex = "0123456789ABCDEF";
      const std::string hex = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
      byte_token[b] = lookup(hex);
      if (byte_token[b] < 0) byte_token[b] = lookup(std::string(1, char(b)));
    }
  }

  piece.resize(n);
  for (size_t i = 0; i < n; ++i) piece[i] = render(int32_t(i));
}

void Tokenizer::Impl::fix_attributes() {
  const size_t n = text.size();
  const auto first_named = [&](const auto& names) {
    for (size_t i = 0; i < n; ++i)
      if (is_one_of(text[i], names)) return int32_t(i);
    return int32_t(-1);
  };
  const auto force_control = [&](int32_t id) {
    if (id >= 0) attr[id] |= kAttrControl;
  };
  // Tokens recognised by their text become control tokens (EOT/EOM/FIM only
  // when the vocabulary did not name them by id).
  if (eot < 0) {
    eot = first_named(kEotNames);
    force_control(eot);
  }
  if (eom < 0) {
    eom = first_named(kEomNames);
    force_control(eom);
  }
  for (const int32_t id : {first_named(kFimPreNames), first_named(kFimSufNames), first_named(kFimMidNames)})
    force_control(id);
  const int32_t fim_pad = first_named(kFimPadNames), fim_rep = first_named(kFimRepNames),
                fim_sep = first_named(kFimSepNames);
  for (const int32_t id : {fim_pad, fim_rep, fim_sep}) force_control(id);

  eog.assign(n, 0);
  for (const int32_t id : {fim_pad, fim_rep, fim_sep})
    if (id >= 0) eog[id] = 1;
  bool has_return = false, has_call = false, has_flush = false, has_tool_response = false;
  int32_t end_id = -1, eos_text_id = -1;
  for (size_t i = 0; i < n; ++i) {
    if (is_one_of(text[i], kEogNames)) {
      eog[i] = 1;
      attr[i] |= kAttrControl;
    }
    if (is_one_of(text[i], kAlwaysRenderedNames)) attr[i] = kAttrUserDefined;  // llama.cpp's gpt-oss rule
    const std::string& t = text[i];
    has_return |= t == "<|return|>";
    has_call |= t == "<|call|>" || t == "<|calls|>";
    has_flush |= t == "<|flush|>";
    has_tool_response |= t == "<|tool_response>";
    if (t == "<|end|>") end_id = int32_t(i);
    if (t == "</s>") eos_text_id = int32_t(i);
  }
  for (const int32_t id : {eos, eot, eom})
    if (id >= 0) eog[id] = 1;
  // o200k_harmony / solar-open: <|end|> is a separator there, not an end.
  if (end_id >= 0 && eog[end_id] && ((has_return && has_call) || (has_call && has_flush))) {
    eog[end_id] = 0;
    attr[end_id] = kAttrUserDefined;
  }
  // gemma4 / paddleocr: </s> is ordinary text there.
  if (eos_text_id >= 0 && eog[eos_text_id] && has_tool_response) {
    eog[eos_text_id] = 0;
    attr[eos_text_id] = kAttrNormal;
  }
}

// llama_token_to_piece(special = true) without space stripping.
std::string Tokenizer::Impl::render(int32_t id) const {
  const std::string& t = text[id];
  const uint32_t a = attr[id];
  if (a & (kAttrHidden | kAttrUserDefined)) return t;
  if (a & kAttrNormal) {
    if (kind == Kind::spm) {  // U+2581 -> ' '
      std::string out;
      for (size_t i = 0; i < t.size();) {
        if (t.compare(i, kSpaceEscape.size(), kSpaceEscape) == 0) {
          out.push_back(' ');
          i += kSpaceEscape.size();
        } else {
          out.push_back(t[i++]);
        }
      }
      return out;
    }
    // Byte-level: each code point of the token is one byte of GPT-2's alphabet.
    std::vector<uint32_t> cps;
    unicode::decode_utf8(t, cps);
    std::string out;
    for (const uint32_t cp : cps) {
      const int b = unicode::bpe_to_byte(cp);
      if (b >= 0) {
        out.push_back(char(b));
        continue;
      }
      std::string utf8;
      unicode::append_utf8(cp, utf8);
      static const char* kHex = "0123456789abcdef";
      out += "[UNK_BYTE_0x";
      for (const char c : utf8) {
        out.push_back(kHex[uint8_t(c) >> 4]);
        out.push_back(kHex[uint8_t(c) & 15]);
      }
      out += t + "]";
    }
    return out;
  }
  if (a & kAttrByte) {  // "<0xXX>"
    const std::string hex = t.size() > 3 ? t.substr(3, 2) : std::string();
    return std::string(1, char(std::strtol(hex.c_str(), nullptr, 16)));
  }
  return {};  // unused / undefined tokens render as nothing
}

std::vector<Tokenizer::Impl::Fragment> Tokenizer::Impl::partition(std::string_view input, bool parse_special) const {
  std::vector<Fragment> frags;
  if (input.empty()) return frags;
  frags.push_back({-1, 0, input.size()});
  std::vector<Fragment> next;
  for (const int32_t id : special_order) {
    if (!parse_special && (attr[id] & kAttrHidden)) continue;  // user-defined tokens split regardless
    const std::string_view tok = text[id];
    next.clear();
    bool changed = false;
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const std::string_view raw = input.substr(f.offset, f.length);
      size_t at = 0;
      for (size_t hit; (hit = raw.find(tok, at)) != std::string_view::npos; at = hit + tok.size()) {
        if (hit > at) next.push_back({-1, f.offset + at, hit - at});
        next.push_back({id, 0, 0});
        changed = true;
      }
      if (at < raw.size()) next.push_back({-1, f.offset + at, raw.size() - at});
    }
    if (changed) frags.swap(next);
  }
  return frags;
}

void Tokenizer::Impl::encode_bpe(std::string_view fragment, std::vector<int32_t>& out) const {
  std::vector<uint32_t> cps;  // [n_cps]
  cps.reserve(fragment.size());
  unicode::decode_utf8(fragment, cps);
  std::vector<uint16_t> flags(cps.size());  // [n_cps]
  for (size_t i = 0; i < cps.size(); ++i) flags[i] = unicode::flags(cps[i]);

  std::vector<size_t> words = {cps.size()};  // word lengths in code points
  for (const SplitStep step : pre->steps) words = split_pieces(step, cps, flags, words);

  std::string word, key;
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  size_t at = 0;
  for (const size_t len : words) {
    // Each byte of the word's UTF-8 becomes one code point of GPT-2's alphabet.
    word.clear();
    std::string utf8;
    for (size_t i = at; i < at + len; ++i) unicode::append_utf8(cps[i], utf8);
    for (const char c : utf8) word += unicode::byte_to_bpe(uint8_t(c));
    at += len;
    merge_bpe_word(word, out, symbols, heap, key);
  }
}

void Tokenizer::Impl::merge_bpe_word(std::string_view word, std::vector<int32_t>& out, std::vector<Symbol>& symbols,
                                     std::vector<Candidate>& heap, std::string& key) const {
  if (word.empty()) return;
  if (ignore_merges) {
    if (const int32_t id = lookup(word); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  symbols.clear();
  for (uint32_t off = 0; off < word.size();) {
    const uint32_t n = uint32_t(std::min(unicode::utf8_len(word[off]), word.size() - off));
    const int32_t i = int32_t(symbols.size());
    symbols.push_back({i - 1, off + n == word.size() ? -1 : i + 1, off, n});
    off += n;
  }
  heap.clear();
  const auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    key.assign(word.substr(l.begin, l.n)).push_back(' ');
    key.append(word.substr(r.begin, r.n));
    const auto it = merge_rank.find(key);
    if (it == merge_rank.end()) return;
    heap.push_back({-double(it->second), left, right, l.n + r.n});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t i = 1; i < int32_t(symbols.size()); ++i) consider(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& l = symbols[c.left];
    Symbol& r = symbols[c.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != c.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view s = word.substr(symbols[i].begin, symbols[i].n);
    if (const int32_t id = lookup(s); id >= 0) {
      out.push_back(id);
      continue;
    }
    // Not a token: llama.cpp looks each byte up as a one-byte token and drops the misses.
    for (const char b : s)
      if (byte_token[uint8_t(b)] >= 0) out.push_back(byte_token[uint8_t(b)]);
  }
}

void Tokenizer::Impl::encode_spm(std::string_view escaped, std::vector<int32_t>& out) const {
  std::vector<Symbol> symbols;
  for (uint32_t off = 0; off < escaped.size();) {
    const uint32_t n = uint32_t(std::min(unicode::utf8_len(escaped[off]), escaped.size() - off));
    const int32_t i = int32_t(symbols.size());
    symbols.push_back({i - 1, off + n == escaped.size() ? -1 : i + 1, off, n});
    off += n;
  }
  if (symbols.empty()) return;
  std::vector<Candidate> heap;
  const auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const int32_t id = lookup(escaped.substr(l.begin, l.n + r.n));  // adjacent symbols are contiguous
    if (id < 0) return;
    heap.push_back({score[id], left, right, l.n + r.n});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t i = 1; i < int32_t(symbols.size()); ++i) consider(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& l = symbols[c.left];
    Symbol& r = symbols[c.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != c.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view s = escaped.substr(symbols[i].begin, symbols[i].n);
    if (const int32_t id = lookup(s); id >= 0) {
      out.push_back(id);
      continue;
    }
    for (const char b : s) {  // byte fallback
      const int32_t id = byte_token[uint8_t(b)];
      if (id < 0) throw Error("tokenizer: no byte token for byte " + std::to_string(uint8_t(b)));
      out.push_back(id);
    }
  }
}

Tokenizer Tokenizer::from_vocab(Vocab vocab) {
  auto impl = std::make_shared<Impl>();
  impl->load(std::move(vocab));
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  const auto frags = m.partition(text, parse_special);
  if (add_special && m.add_bos) out.push_back(m.bos);
  if (m.kind == Kind::bpe) {
    for (const auto& f : frags) {
      if (f.token >= 0) {
        out.push_back(f.token);
      } else {
        m.encode_bpe(text.substr(f.offset, f.length), out);
      }
    }
  } else {
    bool after_special = true;  // the start counts: SentencePiece prefixes a space there
    std::string escaped;
    for (const auto& f : frags) {
      if (f.token >= 0) {
        out.push_back(f.token);
        after_special = true;
        continue;
      }
      escaped.clear();
      if (m.add_space_prefix && after_special) escaped += kSpaceEscape;
      for (const char c : text.substr(f.offset, f.length)) {
        if (c == ' ') {
          escaped += kSpaceEscape;
        } else {
          escaped.push_back(c);
        }
      }
      m.encode_spm(escaped, out);
      after_special = false;
    }
  }
  if (add_special && m.add_eos) out.push_back(m.eos);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  const Impl& m = *impl_;
  std::string out;
  bool strip_space = m.add_space_prefix;  // the space SentencePiece prefixed, on the first token only
  for (const int32_t id : ids) {
    m.check_id(id);
    const bool shown = render_special || !(m.attr[id] & kAttrHidden);
    if (shown) {
      const std::string& p = m.piece[id];
      out.append(p, strip_space && !p.empty() && p[0] == ' ' ? 1 : 0);
    }
    strip_space = false;
  }
  if (!m.clean_spaces || out.empty()) return out;

  // llama.cpp's three clean-up passes, in place, with its exact index rules.
  std::string& t = out;
  // 1: " ?", " !", " .", " ," lose the space.
  size_t total = 1;
  for (size_t i = 1, n = t.size(); i < n; ++i) {
    const char x = t[i];
    if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    t[total++] = x;
  }
  t.resize(total);
  // 2: " ' " becomes "'".
  total = 1;
  for (size_t i = 1, n = t.size(); i < n; ++i) {
    const char x = t[i];
    if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
      --total;
      t[++i] = '\0';
    }
    t[total++] = x;
  }
  t.resize(total);
  // 3: " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it).
  total = 1;
  for (size_t i = 1, n = t.size(); i < n; ++i) {
    const char x = t[i];
    if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
      const char x1 = t[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (i + 2 < n && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e'))) {
        --total;
      }
    }
    t[total++] = x;
  }
  t.resize(total);
  return out;
}

const std::string& Tokenizer::token_piece(int32_t id) const {
  impl_->check_id(id);
  return impl_->piece[id];
}

std::string Tokenizer::token_piece(int32_t id, bool render_special) const {
  impl_->check_id(id);
  if (!render_special && (impl_->attr[id] & kAttrHidden)) return {};
  return impl_->piece[id];
}

const std::string& Tokenizer::token_text(int32_t id) const {
  impl_->check_id(id);
  return impl_->text[id];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const int32_t id = impl_->lookup(text);
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}

Tokenizer::Kind Tokenizer::kind() const { return impl_->kind; }
const std::string& Tokenizer::pre() const { return impl_->pre_name; }
int32_t Tokenizer::n_tokens() const { return int32_t(impl_->text.size()); }
int32_t Tokenizer::bos() const { return impl_->bos; }
int32_t Tokenizer::eos() const { return impl_->eos; }
int32_t Tokenizer::eot() const { return impl_->eot; }
bool Tokenizer::adds_bos() const { return impl_->add_bos; }
bool Tokenizer::adds_eos() const { return impl_->add_eos; }
bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id < n_tokens() && impl_->eog[id]; }
bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < n_tokens() && (impl_->attr[id] & kAttrHidden);
}

}  // namespace moelab::model
