#include "model/synth.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/random.h"
#include "gguf/gguf.h"
#include "quant/codec.h"

namespace moelab::model {
namespace {

// Counter-based generator: the value at (stream, index) does not depend on
// which thread draws it or in what order, so tensors generate in parallel and
// reproduce exactly from the seed.
constexpr uint64_t mix64(uint64_t z) { return splitmix64(z); }
inline double uniform01(uint64_t stream, uint64_t i) {  // (0, 1)
  return (double(mix64(stream ^ mix64(i)) >> 11) + 0.5) / double(1ull << 53);
}
uint64_t name_stream(uint64_t seed, const std::string& name) {
  uint64_t h = mix64(seed);
  for (char ch : name) h = mix64(h ^ uint8_t(ch));
  return h;
}

struct TensorSpec {
  std::string name;
  std::vector<int64_t> ne;  // ne[0] fastest
  const quant::Codec* codec;
  float scale;              // standard deviation of the weights
  bool ones = false;        // norm weights: 1 + small noise
  bool router = false;
};

// Fills rows of one tensor. Element i of the tensor draws from counter
// (stream, i), so any row can be generated alone, on any thread.
struct RowGenerator {
  const SynthOptions& o;
  uint64_t stream;
  const TensorSpec& spec;
  std::vector<uint8_t> outlier;  // [cols] 1 for outlier input channels

  // Standard normals for elements [first, first + n): Box-Muller in float on
  // two 24-bit uniforms cut from one 64-bit hash per pair (both outputs used).
  void normals(uint64_t salt, uint64_t first, int64_t n, float* out) const {
    for (int64_t k = 0; k < n; k += 2) {
      const uint64_t h = mix64((stream ^ salt) + ((first + uint64_t(k)) / 2) * 0x9E3779B97F4A7C15ull);
      const float u1 = (float(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
      const float u2 = (float((h >> 16) & 0xFFFFFFu) + 0.5f) * (1.0f / 16777216.0f);
      const float r = std::sqrt(-2.0f * std::log(u1)), a = 6.2831853f * u2;
      out[k] = r * std::cos(a);
      if (k + 1 < n) out[k + 1] = r * std::sin(a);
    }
  }
  void fill(int64_t r, int64_t cols, float* row) const {
    const uint64_t first = uint64_t(r) * uint64_t(cols);  // cols is even for every weight
    normals(0, first, cols, row);
    if (spec.ones) {
      for (int64_t j = 0; j < cols; ++j) row[j] = 1.0f + 0.05f * row[j];
      return;
    }
    if (o.dist == WeightDist::heavy) {
      // Student-t with nu = 4: z / sqrt(chi2_4 / 4), chi2_4 = -2 ln(u1 u2).
      for (int64_t j = 0; j < cols; ++j) {
        const uint64_t h = mix64((stream ^ 0x5bd1e995ull) + (first + uint64_t(j)) * 0x9E3779B97F4A7C15ull);
        const float u1 = (float(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
        const float u2 = (float((h >> 16) & 0xFFFFFFu) + 0.5f) * (1.0f / 16777216.0f);
        row[j] /= std::sqrt(-0.5f * std::log(u1 * u2));
        if (outlier[size_t(j)]) row[j] *= o.outlier_scale;
      }
    }
    float scale = spec.scale;
    if (spec.router)  // popularity skew: expert r's logits scale with its row norm
      scale *= float(std::exp(o.router_skew * (uniform01(stream ^ 0xabcdefull, uint64_t(r)) * 2.0 - 1.0) * 1.7320508));
    for (int64_t j = 0; j < cols; ++j) row[j] *= scale;
  }
};

std::vector<TensorSpec> tensor_specs(const SynthOptions& o) {
  const Config& c = o.config;
  const quant::Codec& w = quant::codec(o.codec);
  const quant::Codec& f32 = quant::codec("f32");
  const float proj = 1.0f / std::sqrt(float(c.n_embd));
  std::vector<TensorSpec> t;
  t.push_back({"token_embd.weight", {c.n_embd, c.n_vocab}, &w, 1.0f});
  t.push_back({"output_norm.weight", {c.n_embd}, &f32, 0.0f, true});
  if (!o.tied_embeddings) t.push_back({"output.weight", {c.n_embd, c.n_vocab}, &w, proj});
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    t.push_back({b + "attn_norm.weight", {c.n_embd}, &f32, 0.0f, true});
    t.push_back({b + "attn_q.weight", {c.n_embd, c.q_dim()}, &w, proj});
    t.push_back({b + "attn_k.weight", {c.n_embd, c.kv_dim()}, &w, proj});
    t.push_back({b + "attn_v.weight", {c.n_embd, c.kv_dim()}, &w, proj});
    t.push_back({b + "attn_output.weight", {c.q_dim(), c.n_embd}, &w, 1.0f / std::sqrt(float(c.q_dim()))});
    if (c.arch == Arch::qwen2moe) {  // Qwen2 attention has q/k/v biases
      t.push_back({b + "attn_q.bias", {c.q_dim()}, &f32, 0.02f});
      t.push_back({b + "attn_k.bias", {c.kv_dim()}, &f32, 0.02f});
      t.push_back({b + "attn_v.bias", {c.kv_dim()}, &f32, 0.02f});
    }
    if (c.qk_norm == QkNorm::per_head) {
      t.push_back({b + "attn_q_norm.weight", {c.head_dim}, &f32, 0.0f, true});
      t.push_back({b + "attn_k_norm.weight", {c.head_dim}, &f32, 0.0f, true});
    } else if (c.qk_norm == QkNorm::full) {
      t.push_back({b + "attn_q_norm.weight", {c.q_dim()}, &f32, 0.0f, true});
      t.push_back({b + "attn_k_norm.weight", {c.kv_dim()}, &f32, 0.0f, true});
    }
    t.push_back({b + "ffn_norm.weight", {c.n_embd}, &f32, 0.0f, true});
    if (!c.is_moe()) {
      t.push_back({b + "ffn_gate.weight", {c.n_embd, c.n_ff}, &w, proj});
      t.push_back({b + "ffn_up.weight", {c.n_embd, c.n_ff}, &w, proj});
      t.push_back({b + "ffn_down.weight", {c.n_ff, c.n_embd}, &w, 1.0f / std::sqrt(float(c.n_ff))});
      continue;
    }
    TensorSpec router{b + "ffn_gate_inp.weight", {c.n_embd, c.n_expert}, &f32, proj};
    router.router = true;
    t.push_back(router);
    const float down = 1.0f / std::sqrt(float(c.n_ff_exp));
    t.push_back({b + "ffn_gate_exps.weight", {c.n_embd, c.n_ff_exp, c.n_expert}, &w, proj});
    t.push_back({b + "ffn_up_exps.weight", {c.n_embd, c.n_ff_exp, c.n_expert}, &w, proj});
    t.push_back({b + "ffn_down_exps.weight", {c.n_ff_exp, c.n_embd, c.n_expert}, &w, down});
    if (c.n_ff_shexp > 0) {
      t.push_back({b + "ffn_gate_inp_shexp.weight", {c.n_embd}, &f32, proj});
      t.push_back({b + "ffn_gate_shexp.weight", {c.n_embd, c.n_ff_shexp}, &w, proj});
      t.push_back({b + "ffn_up_shexp.weight", {c.n_embd, c.n_ff_shexp}, &w, proj});
      t.push_back({b + "ffn_down_shexp.weight", {c.n_ff_shexp, c.n_embd}, &w, 1.0f / std::sqrt(float(c.n_ff_shexp))});
    }
  }
  return t;
}

void add_metadata(gguf::Writer& wr, const SynthOptions& o) {
  const Config& c = o.config;
  const std::string a = c.arch_name + ".";
  using gguf::Value;
  wr.add("general.architecture", Value::of(c.arch_name));
  wr.add("general.name", Value::of(o.name));
  wr.add("general.alignment", Value::of(uint32_t(32)));
  wr.add(a + "context_length", Value::of(uint32_t(c.n_ctx_train > 0 ? c.n_ctx_train : 4096)));
  wr.add(a + "embedding_length", Value::of(uint32_t(c.n_embd)));
  wr.add(a + "block_count", Value::of(uint32_t(c.n_layer)));
  // llama (Mixtral) and olmoe read their expert width from feed_forward_length.
  const bool ff_is_expert_width = c.is_moe() && (c.arch == Arch::llama || c.arch == Arch::olmoe);
  wr.add(a + "feed_forward_length", Value::of(uint32_t(ff_is_expert_width || c.n_ff == 0 ? c.n_ff_exp : c.n_ff)));
  wr.add(a + "attention.head_count", Value::of(uint32_t(c.n_head)));
  wr.add(a + "attention.head_count_kv", Value::of(uint32_t(c.n_head_kv)));
  wr.add(a + "attention.key_length", Value::of(uint32_t(c.head_dim)));
  wr.add(a + "attention.value_length", Value::of(uint32_t(c.head_dim)));
  wr.add(a + "rope.dimension_count", Value::of(uint32_t(c.head_dim)));
  wr.add(a + "rope.freq_base", Value::of(c.rope_freq_base));
  wr.add(a + "attention.layer_norm_rms_epsilon", Value::of(c.rms_eps));
  if (c.is_moe()) {
    wr.add(a + "expert_count", Value::of(uint32_t(c.n_expert)));
    wr.add(a + "expert_used_count", Value::of(uint32_t(c.n_expert_used)));
    wr.add(a + "expert_feed_forward_length", Value::of(uint32_t(c.n_ff_exp)));
    if (c.n_ff_shexp > 0) wr.add(a + "expert_shared_feed_forward_length", Value::of(uint32_t(c.n_ff_shexp)));
  }
  if (c.arch == Arch::llama) wr.add(a + "vocab_size", Value::of(uint32_t(c.n_vocab)));

  // Byte-level BPE vocabulary: the 256 byte tokens, two control tokens, merged
  // tokens for a space or a letter followed by a lowercase letter (as many as
  // fit), and unused fillers up to the preset's vocabulary size, so the
  // embedding and output matrices have their true size.
  if (c.n_vocab < 258) throw Error("synthetic model: n_vocab must be >= 258 (256 bytes + 2 specials)");
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
  tokens.reserve(size_t(c.n_vocab));
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(byte_to_unicode(uint8_t(b)));
    types.push_back(1);  // normal
  }
  tokens.push_back("<|endoftext|>");
  types.push_back(3);  // control
  tokens.push_back("<|startoftext|>");
  types.push_back(3);
  const std::string firsts = " abcdefghijklmnopqrstuvwxyz";
  for (char first : firsts)
    for (char second = 'a'; second <= 'z' && int64_t(tokens.size()) < c.n_vocab; ++second) {
      const std::string left = byte_to_unicode(uint8_t(first)), right(1, second);
      merges.push_back(left + " " + right);
      tokens.push_back(left + right);
      types.push_back(1);
    }
  for (int64_t i = int64_t(tokens.size()); i < c.n_vocab; ++i) {
    tokens.push_back("<|unused_" + std::to_string(i) + "|>");
    types.push_back(5);  // unused
  }
  wr.add("tokenizer.ggml.model", Value::of("gpt2"));
  wr.add("tokenizer.ggml.pre", Value::of("default"));
  wr.add("tokenizer.ggml.tokens", Value::of(gguf::Array::of_strings(tokens)));
  wr.add("tokenizer.ggml.token_type", Value::of(gguf::Array::of(std::span<const int32_t>(types))));
  wr.add("tokenizer.ggml.merges", Value::of(gguf::Array::of_strings(merges)));
  wr.add("tokenizer.ggml.bos_token_id", Value::of(uint32_t(257)));
  wr.add("tokenizer.ggml.eos_token_id", Value::of(uint32_t(256)));
  wr.add("tokenizer.ggml.add_bos_token", Value::of(false));
}

}  // namespace

std::string byte_to_unicode(uint8_t byte) {
  // Printable Latin-1 bytes map to themselves; the other 68 map to U+0100.. in byte order.
  auto printable = [](int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); };
  int cp = byte;
  if (!printable(byte)) {
    int n = 0;
    for (int b = 0; b < byte; ++b) n += !printable(b);
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

void write_synthetic_gguf(const SynthOptions& o, const std::filesystem::path& path, ThreadPool& pool,
                          const std::function<void(uint64_t, uint64_t)>& progress) {
  const quant::Codec& w = quant::codec(o.codec);
  if (w.ggml_type < 0)
    throw Error("codec " + std::string(w.name) + " is not a GGUF type; write GGUF codecs with gen and repack with `moelab pack --codec`");
  const Config& c = o.config;
  if (c.n_embd % w.block_values || (c.is_moe() ? c.n_ff_exp : c.n_ff) % w.block_values || c.q_dim() % w.block_values)
    throw Error("codec " + std::string(w.name) + ": model dimensions are not multiples of its block size " +
                std::to_string(w.block_values));
  gguf::Writer wr;
  add_metadata(wr, o);
  const std::vector<TensorSpec> specs = tensor_specs(o);
  uint64_t total = 0;
  for (const TensorSpec& s : specs) total += gguf::tensor_bytes(*s.codec, s.ne, s.name);
  auto done = std::make_shared<uint64_t>(0);
  for (const TensorSpec& spec : specs) {
    wr.add_tensor(spec.name, *spec.codec, spec.ne, [&o, &pool, spec, done, total, progress](std::span<uint8_t> dst) {
      const int64_t cols = spec.ne[0];
      int64_t rows = 1;
      for (size_t d = 1; d < spec.ne.size(); ++d) rows *= spec.ne[d];
      const size_t row_bytes = spec.codec->row_bytes(cols);
      RowGenerator gen{o, name_stream(o.seed, spec.name), spec, std::vector<uint8_t>(static_cast<size_t>(cols), 0)};
      if (o.dist == WeightDist::heavy)
        for (int k = 0; k < o.outlier_channels && cols > 1; ++k)
          gen.outlier[size_t(mix64(gen.stream + uint64_t(k)) % uint64_t(cols))] = 1;
      pool.parallel_for(rows, 1, [&](int64_t begin, int64_t end, int) {
        std::vector<float> row(static_cast<size_t>(cols));  // one allocation per chunk, not per row
        for (int64_t r = begin; r < end; ++r) {
          gen.fill(r, cols, row.data());
          // The reference encoder: model files must not depend on the machine that wrote them.
          spec.codec->encode_ref(row.data(), dst.data() + size_t(r) * row_bytes, cols, nullptr);
        }
      });
      *done += dst.size();
      if (progress) progress(*done, total);
    });
  }
  wr.write(path);
}

}  // namespace moelab::model
