// Tokenizers built from a GGUF vocabulary (the tokenizer.ggml.* keys) that
// reproduce llama.cpp's tokenization id for id:
//   "gpt2"   byte-level BPE: special tokens split out first, then the
//            pre-tokenizer named by tokenizer.ggml.pre cuts words
//            (tokenizer_split.h), bytes map to GPT-2's alphabet, merges apply
//            by rank (lowest first, leftmost on ties);
//   "llama"  SentencePiece BPE: spaces become U+2581, a space is prefixed to
//            text that follows the start or a special token, pieces merge by
//            score (highest first, leftmost on ties), and characters with no
//            piece fall back to <0xXX> byte tokens.
// decode() is llama_detokenize: token pieces concatenated (bytes reassembled),
// then llama.cpp's clean-up of spaces where the pre-tokenizer asks for it.
//
// Known differences from llama.cpp: a 4-byte UTF-8 form above U+10FFFF, on
// which llama.cpp aborts, is read as an invalid byte (U+FFFD); llama.cpp's
// per-model-name token attribute hacks (phi-3, jina, modern-bert) are not
// applied; when a vocabulary holds two spellings of one FIM role
// (<|fim_prefix|> and <PRE>), the lower id is the one forced to control.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::model {

// tokenizer.ggml.token_type values (gguf-py's TokenType).
enum class TokenType : int32_t { undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

// The tokenizer part of a GGUF file as plain data, one field per GGUF key.
struct Vocab {
  std::string model;                 // tokenizer.ggml.model: "gpt2" or "llama"
  std::string pre;                   // tokenizer.ggml.pre; empty = llama.cpp's "default"
  std::vector<std::string> tokens;   // [n_tokens]
  std::vector<float> scores;         // [n_tokens], or empty (all 0)
  std::vector<int32_t> token_types;  // [n_tokens] TokenType values, or empty (all normal)
  std::vector<std::string> merges;   // "left right"; rank = index (gpt2 only)
  // Special token ids; -1 means the key is absent and llama.cpp's default for
  // the model applies (llama: bos 1, eos 2, unk 0; gpt2: bos = eos = 11).
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1, eom = -1, sep = -1;
  // Absent: llama.cpp's default for the model and pre-tokenizer.
  std::optional<bool> add_bos, add_eos, add_space_prefix;
};

class Tokenizer {
 public:
  enum class Kind : uint8_t { bpe, spm };

  // Validates the vocabulary (throws moelab::Error naming the problem).
  static Tokenizer from_vocab(Vocab vocab);

  // add_special: prepend BOS / append EOS where the vocabulary asks for it.
  // parse_special: text spelling a control token ("<|im_start|>") becomes that
  // token; user-defined tokens are matched either way, as in llama.cpp.
  // Any byte string is accepted (invalid UTF-8 included).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // llama_detokenize(remove_special = false, unparse_special = render_special):
  // control/unknown tokens render as nothing unless render_special.
  std::string decode(std::span<const int32_t> ids, bool render_special = false) const;
  // The bytes one token stands for (llama_token_to_piece, no space stripping);
  // pieces of consecutive tokens may split a UTF-8 character.
  const std::string& token_piece(int32_t id) const;  // rendered as if render_special
  std::string token_piece(int32_t id, bool render_special) const;
  const std::string& token_text(int32_t id) const;  // the vocabulary string
  std::optional<int32_t> find_token(std::string_view text) const;

  Kind kind() const;
  const std::string& pre() const;  // resolved pre-tokenizer name ("default" when unset)
  int32_t n_tokens() const;
  int32_t bos() const;  // -1 when none
  int32_t eos() const;
  int32_t eot() const;
  bool adds_bos() const;
  bool adds_eos() const;
  bool is_eog(int32_t id) const;      // ends generation (EOS, EOT, <|im_end|>, ... as llama.cpp lists them)
  bool is_control(int32_t id) const;  // control or unknown: hidden unless rendered specially

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace moelab::model
