// Tokenizer against llama.cpp: for every vocabulary configuration in
// tests/fixtures/tokenizer (made by tests/fixtures/make_tokenizer_fixtures.py
// with llama_cpp as the oracle), every string must encode to llama.cpp's ids
// under each (add_special, parse_special) combination and decode to
// llama_detokenize's bytes; a >10k-token input must match too (count + hash)
// and take well under a second.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "model/tokenizer.h"
#include "model/unicode_text.h"

namespace moelab::model {
namespace {

using nlohmann::json;

const std::string kFixtureDir = std::string(MOELAB_SOURCE_DIR) + "/tests/fixtures/tokenizer/";

json read_json(const std::string& name) {
  std::ifstream in(kFixtureDir + name);
  if (!in) throw std::runtime_error("cannot open fixture " + kFixtureDir + name);
  return json::parse(in);
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(char(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::string show(const std::string& bytes) {  // printable form for failure messages
  std::string out;
  for (const unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(char(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

Vocab vocab_from_json(const json& j, const json& overrides) {
  Vocab v;
  v.model = j.at("model");
  v.pre = j.value("pre", "");
  v.tokens = j.at("tokens").get<std::vector<std::string>>();
  if (j.contains("merges")) v.merges = j.at("merges").get<std::vector<std::string>>();
  if (j.value("tokens_tail_from_merges", false)) {
    for (const std::string& m : v.merges) {
      std::string t = m;
      t.erase(t.find(' '), 1);
      v.tokens.push_back(t);
    }
  }
  if (j.contains("scores")) v.scores = j.at("scores").get<std::vector<float>>();
  v.token_types.assign(v.tokens.size(), int32_t(TokenType::normal));
  for (const auto& [id, type] : j.at("token_types").items()) v.token_types.at(std::stoul(id)) = type.get<int32_t>();
  for (const auto& [key, field] : {std::pair{"bos", &v.bos}, {"eos", &v.eos}, {"unk", &v.unk}, {"pad", &v.pad}})
    if (j.contains(key)) *field = j.at(key);
  json merged = j;
  merged.update(overrides);
  if (merged.contains("pre")) v.pre = merged.at("pre");
  for (const auto& [key, field] : {std::pair{"add_bos", &v.add_bos}, {"add_eos", &v.add_eos},
                                   {"add_space_prefix", &v.add_space_prefix}})
    if (merged.contains(key)) *field = merged.at(key).get<bool>();
  return v;
}

struct Config {
  json cases;
  Tokenizer tok;
};

// Vocabularies are parsed once per configuration (SmolLM2's has 49k tokens).
const Config& config(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Config>> cache;
  auto& slot = cache[name];
  if (!slot) {
    json cases = read_json(name + ".cases.json");
    Tokenizer tok = Tokenizer::from_vocab(vocab_from_json(read_json(cases.at("vocab")), cases.at("overrides")));
    slot = std::make_unique<Config>(Config{std::move(cases), std::move(tok)});
  }
  return *slot;
}

uint64_t fnv1a64(const std::vector<int32_t>& ids) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (const int32_t id : ids)
    for (int b = 0; b < 4; ++b) h = (h ^ ((uint32_t(id) >> (8 * b)) & 0xFF)) * 0x100000001B3ull;
  return h;
}

class TokenizerOracle : public testing::TestWithParam<const char*> {};

TEST_P(TokenizerOracle, EncodeMatchesLlamaCpp) {
  const Config& c = config(GetParam());
  const auto& strings = c.cases.at("strings");
  ASSERT_GE(strings.size(), 60u);
  int n_checked = 0;
  for (const auto& s : strings) {
    const std::string text = from_hex(s.at("hex"));
    for (const auto& [key, ids] : s.at("ids").items()) {
      const bool add_special = key[0] == 't', parse_special = key[1] == 't';
      EXPECT_EQ(c.tok.encode(text, add_special, parse_special), ids.get<std::vector<int32_t>>())
          << "text \"" << show(text) << "\" add_special " << add_special << " parse_special " << parse_special;
      ++n_checked;
    }
  }
  EXPECT_EQ(n_checked, int(strings.size()) * 4);
}

TEST_P(TokenizerOracle, DecodeMatchesLlamaDetokenize) {
  const Config& c = config(GetParam());
  int n_roundtrip = 0;
  for (const auto& s : c.cases.at("strings")) {
    const std::string text = from_hex(s.at("hex"));
    const auto ff = s.at("ids").at("ff").get<std::vector<int32_t>>();
    const auto tt = s.at("ids").at("tt").get<std::vector<int32_t>>();
    EXPECT_EQ(show(c.tok.decode(ff)), show(from_hex(s.at("detok")))) << "text \"" << show(text) << "\"";
    EXPECT_EQ(show(c.tok.decode(tt)), show(from_hex(s.at("detok_tt")))) << "text \"" << show(text) << "\"";
    EXPECT_EQ(show(c.tok.decode(tt, true)), show(from_hex(s.at("detok_tt_special")))) << "text \"" << show(text) << "\"";
    if (s.at("roundtrip").get<bool>()) {
      EXPECT_EQ(show(c.tok.decode(c.tok.encode(text, false, false))), show(text));
      ++n_roundtrip;
    }
  }
  EXPECT_GT(n_roundtrip, 30);  // most strings survive llama.cpp's own round trip
}

TEST_P(TokenizerOracle, LongInputMatchesAndIsFast) {
  const Config& c = config(GetParam());
  const auto& info = c.cases.at("long");
  std::string base;  // the valid strings joined by newlines, as the fixture script builds it
  bool first = true;
  for (const auto& s : c.cases.at("strings")) {
    if (!s.contains("text")) continue;
    if (!first) base += '\n';
    base += s.at("text").get<std::string>();
    first = false;
  }
  std::string text;
  for (int i = 0; i < info.at("repeat").get<int>(); ++i) text += base;

  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = c.tok.encode(text, false, false);
  const double encode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto t1 = std::chrono::steady_clock::now();
  const std::string back = c.tok.decode(ids);
  const double decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("[ %s ] %zu bytes -> %zu tokens: encode %.1f ms, decode %.1f ms\n", GetParam(), text.size(), ids.size(),
              encode_s * 1e3, decode_s * 1e3);

  EXPECT_EQ(ids.size(), info.at("n_tokens").get<size_t>());
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a64(ids)));
  EXPECT_EQ(std::string(hash), info.at("fnv1a64").get<std::string>());
  EXPECT_GE(ids.size(), 10000u);
  EXPECT_LT(encode_s, 10.0);  // generous: it takes milliseconds
  EXPECT_FALSE(back.empty());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerOracle,
                         testing::Values("smollm2", "bpe_qwen2", "bpe_qwen35", "bpe_gpt_2", "bpe_default",
                                         "bpe_llama_bpe", "bpe_starcoder", "spm", "spm_no_prefix"),
                         [](const testing::TestParamInfo<const char*>& p) { return std::string(p.param); });

TEST(Tokenizer, SmolLM2SpecialTokensAndFlags) {
  const Tokenizer& tok = config("smollm2").tok;
  EXPECT_EQ(tok.kind(), Tokenizer::Kind::bpe);
  EXPECT_EQ(tok.pre(), "smollm");
  EXPECT_EQ(tok.n_tokens(), 49152);
  EXPECT_FALSE(tok.adds_bos());
  const int32_t im_start = tok.find_token("<|im_start|>").value();
  const int32_t im_end = tok.find_token("<|im_end|>").value();
  EXPECT_EQ(tok.encode("<|im_start|>", false, true), std::vector<int32_t>{im_start});
  EXPECT_GT(tok.encode("<|im_start|>", false, false).size(), 1u);  // spelled out when not parsing specials
  EXPECT_TRUE(tok.is_eog(im_end));
  EXPECT_TRUE(tok.is_eog(tok.eos()));
  EXPECT_FALSE(tok.is_eog(im_start));
  EXPECT_TRUE(tok.is_control(im_start));
  EXPECT_EQ(tok.token_piece(im_start), "<|im_start|>");
  EXPECT_EQ(tok.token_piece(im_start, false), "");
  EXPECT_EQ(tok.token_text(tok.find_token("\xC4\xA0the").value()), "\xC4\xA0the");  // "Ġthe"
  EXPECT_EQ(tok.token_piece(tok.find_token("\xC4\xA0the").value()), " the");
  // Pieces of one multi-byte character may be split across tokens; decode reassembles them.
  const std::string emoji = "\xF0\x9F\x98\x80";
  std::string joined;
  for (const int32_t id : tok.encode(emoji, false, false)) joined += tok.token_piece(id);
  EXPECT_EQ(joined, emoji);
}

TEST(Tokenizer, CodePointAboveUnicodeRangeReadsAsInvalidBytes) {
  // llama.cpp aborts on F4 90 80 80 (U+110000); moelab reads F4 as an invalid byte.
  const Tokenizer& tok = config("smollm2").tok;
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(tok.encode("a\xF4\x90\x80\x80" "b", false, false), tok.encode("a" + fffd + fffd + fffd + fffd + "b", false, false));
  std::vector<uint32_t> cps;
  unicode::decode_utf8("\xF7\xBF\xBF\xBF", cps);
  EXPECT_EQ(cps, (std::vector<uint32_t>{0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD}));
  cps.clear();
  unicode::decode_utf8("\xF4\x8F\xBF\xBF", cps);  // U+10FFFF is fine
  EXPECT_EQ(cps, std::vector<uint32_t>{0x10FFFF});
}

TEST(Tokenizer, UnicodeClassesMatchTheGeneratedTable) {
  using namespace unicode;
  EXPECT_EQ(flags('a') & kCategoryMask, kLetter);
  EXPECT_EQ(flags('7') & kCategoryMask, kNumber);
  EXPECT_EQ(flags(0x0301) & kCategoryMask, kMark);    // combining acute
  EXPECT_EQ(flags(0x4E16) & kCategoryMask, kLetter);  // 世
  EXPECT_EQ(flags(0x00BD) & kCategoryMask, kNumber);  // ½
  EXPECT_EQ(flags(0x0378) & kCategoryMask, kUndefined);
  EXPECT_TRUE(flags(0x3000) & kSpace);
  EXPECT_TRUE(flags(0x85) & kSpace);
  EXPECT_FALSE(flags(0x1C) & kSpace);  // Python's str.isspace says yes; White_Space (and llama.cpp) say no
  EXPECT_FALSE(flags(0x200B) & kSpace);
  EXPECT_EQ(flags(0x110000), kUndefined);
  EXPECT_EQ(byte_to_bpe(' '), "\xC4\xA0");  // Ġ
  EXPECT_EQ(bpe_to_byte(0x120), ' ');
  EXPECT_EQ(bpe_to_byte('A'), 'A');
  for (int b = 0; b < 256; ++b) {
    std::vector<uint32_t> cps;
    decode_utf8(byte_to_bpe(uint8_t(b)), cps);
    ASSERT_EQ(cps.size(), 1u);
    EXPECT_EQ(bpe_to_byte(cps[0]), b);
  }
}

Vocab tiny_bpe() {
  Vocab v;
  v.model = "gpt2";
  v.pre = "gpt-2";
  for (int b = 0; b < 256; ++b) v.tokens.push_back(unicode::byte_to_bpe(uint8_t(b)));
  v.tokens.push_back("ab");
  v.merges = {"a b"};
  return v;
}

TEST(Tokenizer, RejectsBadVocabularies) {
  auto expect_error = [](Vocab v, const std::string& needle) {
    try {
      Tokenizer::from_vocab(std::move(v));
      ADD_FAILURE() << "no error, expected one mentioning '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  Vocab v = tiny_bpe();
  v.model = "bert";
  expect_error(v, "bert");
  v = tiny_bpe();
  v.pre = "no-such-pre";
  expect_error(v, "no-such-pre");
  v = tiny_bpe();
  v.tokens.push_back("ab");
  expect_error(v, "duplicate");
  v = tiny_bpe();
  v.merges.clear();
  expect_error(v, "merges");
  v = tiny_bpe();
  v.add_bos = true;  // gpt2's default BOS id 11 exists here, so name an absent one
  v.bos = 100000;
  v.tokens.resize(10);
  v.merges = {"a b"};
  expect_error(v, "BOS");
  v = tiny_bpe();
  v.token_types = {1, 1};
  expect_error(v, "token types");
  Vocab empty;
  empty.model = "llama";
  expect_error(empty, "no tokens");
}

TEST(Tokenizer, TinyBpeMergesAndRangeChecks) {
  const Tokenizer tok = Tokenizer::from_vocab(tiny_bpe());
  EXPECT_EQ(tok.encode("ab", false, false), std::vector<int32_t>{256});
  EXPECT_EQ(tok.encode("abab", false, false), (std::vector<int32_t>{256, 256}));
  EXPECT_EQ(tok.encode("ba", false, false), (std::vector<int32_t>{'b', 'a'}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{256, ' ', 'x'}), "ab x");
  EXPECT_EQ(tok.bos(), 11);  // llama.cpp's gpt2 default
  EXPECT_THROW(tok.decode(std::vector<int32_t>{257}), Error);
  EXPECT_THROW(tok.token_text(-1), Error);
  EXPECT_FALSE(tok.find_token("zz").has_value());
  EXPECT_TRUE(tok.encode("", true, true).empty());
}

}  // namespace
}  // namespace moelab::model
