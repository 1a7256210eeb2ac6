#include "model/loader.h"

#include "core/error.h"
#include "quant/codec.h"

namespace moelab::model {
namespace {

std::string blk(int layer, const char* name) { return "blk." + std::to_string(layer) + "." + name; }

}  // namespace

Config config_from_gguf(const gguf::File& f) {
  Config c;
  c.arch_name = f.architecture();
  c.arch = parse_arch(c.arch_name);
  const std::string a = c.arch_name + ".";
  c.n_embd = f.require<int64_t>(a + "embedding_length");
  c.n_layer = f.require<int64_t>(a + "block_count");
  c.n_head = f.require<int64_t>(a + "attention.head_count");
  c.n_head_kv = f.get<int64_t>(a + "attention.head_count_kv", c.n_head);
  c.n_ff = f.get<int64_t>(a + "feed_forward_length", 0);
  c.n_ctx_train = f.get<int64_t>(a + "context_length", 0);
  c.n_expert = f.get<int64_t>(a + "expert_count", 0);
  c.n_expert_used = f.get<int64_t>(a + "expert_used_count", 0);
  c.rms_eps = f.require<float>(a + "attention.layer_norm_rms_epsilon");
  c.rope_freq_base = f.get<float>(a + "rope.freq_base", 10000.0f);
  auto bad = [&](const std::string& key, const std::string& why) {
    throw Error(f.path() + ": " + key + ": " + why);
  };
  if (c.n_embd <= 0) bad(a + "embedding_length", "must be positive");
  if (c.n_layer <= 0 || c.n_layer > 4096) bad(a + "block_count", "must be in [1, 4096]");
  if (c.n_head <= 0) bad(a + "attention.head_count", "must be positive");
  if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0)
    bad(a + "attention.head_count_kv", "must divide attention.head_count (" + std::to_string(c.n_head) + ")");
  if (c.n_embd % c.n_head != 0 && !f.has(a + "attention.key_length"))
    bad(a + "attention.key_length", "missing, and embedding_length is not a multiple of head_count");
  c.head_dim = f.get<int64_t>(a + "attention.key_length", c.n_embd / c.n_head);
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) bad(a + "attention.key_length", "must be positive and even");
  if (f.get<int64_t>(a + "attention.value_length", c.head_dim) != c.head_dim)
    bad(a + "attention.value_length", "must equal key_length");
  c.n_rot = f.get<int64_t>(a + "rope.dimension_count", c.head_dim);
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0)
    bad(a + "rope.dimension_count", "must be even and in [2, head_dim]");
  if (c.n_expert < 0 || c.n_expert > 4096) bad(a + "expert_count", "must be in [0, 4096]");
  if (c.n_expert > 0 && (c.n_expert_used <= 0 || c.n_expert_used > c.n_expert))
    bad(a + "expert_used_count", "must be in [1, expert_count]");
  if (c.rms_eps <= 0 || !(c.rms_eps < 1)) bad(a + "attention.layer_norm_rms_epsilon", "must be in (0, 1)");

  apply_arch_rules(c);
  if (c.arch != Arch::llama && c.n_expert == 0) bad(a + "expert_count", "required for " + c.arch_name);

  const gguf::Tensor& embd = f.tensor("token_embd.weight");
  c.n_vocab = embd.ne[1];
  if (embd.ne[0] != c.n_embd)
    throw Error(f.path() + ": token_embd.weight: row length " + std::to_string(embd.ne[0]) +
                " != embedding_length " + std::to_string(c.n_embd));
  if (c.is_moe()) {
    const gguf::Tensor& g = f.tensor("blk.0.ffn_gate_exps.weight");
    c.n_ff_exp = g.ne[1];  // the tensor is the truth; the key is optional in llama.cpp too
    if (f.has(a + "expert_feed_forward_length") && f.require<int64_t>(a + "expert_feed_forward_length") != c.n_ff_exp)
      bad(a + "expert_feed_forward_length", "disagrees with blk.0.ffn_gate_exps.weight");
    if (const gguf::Tensor* s = f.find_tensor("blk.0.ffn_gate_shexp.weight")) c.n_ff_shexp = s->ne[1];
  } else if (c.n_ff <= 0) {
    bad(a + "feed_forward_length", "required for a dense model");
  }
  return c;
}

Vocab vocab_from_gguf(const gguf::File& f) {
  Vocab v;
  v.model = f.require_string("tokenizer.ggml.model");
  v.pre = f.get_string("tokenizer.ggml.pre", "");
  v.tokens = f.require_array_of<std::string>("tokenizer.ggml.tokens");
  if (f.has("tokenizer.ggml.scores")) v.scores = f.require_array_of<float>("tokenizer.ggml.scores");
  if (f.has("tokenizer.ggml.token_type")) v.token_types = f.require_array_of<int32_t>("tokenizer.ggml.token_type");
  if (f.has("tokenizer.ggml.merges")) v.merges = f.require_array_of<std::string>("tokenizer.ggml.merges");
  auto id = [&](const char* key) { return f.has(key) ? f.require<int32_t>(key) : -1; };
  v.bos = id("tokenizer.ggml.bos_token_id");
  v.eos = id("tokenizer.ggml.eos_token_id");
  v.unk = id("tokenizer.ggml.unknown_token_id");
  v.pad = id("tokenizer.ggml.padding_token_id");
  v.eot = id("tokenizer.ggml.eot_token_id");
  v.eom = id("tokenizer.ggml.eom_token_id");
  v.sep = id("tokenizer.ggml.seperator_token_id");
  auto flag = [&](const char* key) -> std::optional<bool> {
    if (!f.has(key)) return std::nullopt;
    return f.require<bool>(key);
  };
  v.add_bos = flag("tokenizer.ggml.add_bos_token");
  v.add_eos = flag("tokenizer.ggml.add_eos_token");
  v.add_space_prefix = flag("tokenizer.ggml.add_space_prefix");
  return v;
}

const Tokenizer& Model::tokenizer() const {
  if (!tokenizer_) {
    try {
      tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_vocab(vocab_from_gguf(file_)));
    } catch (const Error& e) {
      throw Error(file_.path() + ": tokenizer: " + e.what());
    }
  }
  return *tokenizer_;
}

Model::Model(gguf::File file) : file_(std::move(file)) {}

std::unique_ptr<Model> Model::load(const std::filesystem::path& path) { return from_file(gguf::File::open(path)); }

QMatrix Model::matrix(const std::string& name, bool required) const {
  const gguf::Tensor* t = file_.find_tensor(name);
  if (!t) {
    if (required) file_.tensor(name);  // throws naming the file and tensor
    return {};
  }
  return quant::make_qmatrix(*t->codec, t->data, t->n_bytes, t->n_rows(), t->ne[0]);
}

const float* Model::vector(const std::string& name, int64_t expected_len, bool required) {
  const gguf::Tensor* t = file_.find_tensor(name);
  if (!t) {
    if (required) file_.tensor(name);
    return nullptr;
  }
  if (t->n_elements() != expected_len || t->ne[0] != expected_len)
    throw Error(file_.path() + ": " + name + ": expected a vector of " + std::to_string(expected_len) +
                " values, found " + std::to_string(t->n_elements()));
  auto v = std::make_unique<std::vector<float>>(size_t(expected_len));
  t->codec->decode()(t->data, v->data(), expected_len);
  vectors_.push_back(std::move(v));
  return vectors_.back()->data();
}

std::unique_ptr<Model> Model::from_file(gguf::File file) {
  std::unique_ptr<Model> m(new Model(std::move(file)));
  Config& c = m->config_;
  c = config_from_gguf(m->file_);
  Weights& w = m->weights_;
  const std::string& path = m->file_.path();
  auto expect_shape = [&](const QMatrix& q, const std::string& name, int64_t rows, int64_t cols) {
    if (q.codec && (q.rows != rows || q.cols != cols))
      throw Error(path + ": " + name + ": shape [" + std::to_string(q.cols) + ", " + std::to_string(q.rows) +
                  "] (ne0, ne1...), expected [" + std::to_string(cols) + ", " + std::to_string(rows) + "]");
    return q;
  };
  w.token_embd = expect_shape(m->matrix("token_embd.weight"), "token_embd.weight", c.n_vocab, c.n_embd);
  w.output_norm = m->vector("output_norm.weight", c.n_embd);
  w.output = m->matrix("output.weight", false);
  if (!w.output.codec) w.output = w.token_embd;  // tied embeddings
  expect_shape(w.output, "output.weight", c.n_vocab, c.n_embd);

  const int64_t qd = c.q_dim(), kvd = c.kv_dim();
  w.layers.resize(size_t(c.n_layer));
  for (int i = 0; i < int(c.n_layer); ++i) {
    LayerWeights& l = w.layers[size_t(i)];
    auto mat = [&](const char* n, int64_t rows, int64_t cols, bool req = true) {
      return expect_shape(m->matrix(blk(i, n), req), blk(i, n), rows, cols);
    };
    l.attn_norm = m->vector(blk(i, "attn_norm.weight"), c.n_embd);
    l.wq = mat("attn_q.weight", qd, c.n_embd);
    l.wk = mat("attn_k.weight", kvd, c.n_embd);
    l.wv = mat("attn_v.weight", kvd, c.n_embd);
    l.wo = mat("attn_output.weight", c.n_embd, qd);
    l.bq = m->vector(blk(i, "attn_q.bias"), qd, false);
    l.bk = m->vector(blk(i, "attn_k.bias"), kvd, false);
    l.bv = m->vector(blk(i, "attn_v.bias"), kvd, false);
    if (c.qk_norm != QkNorm::none) {
      const bool per_head = c.qk_norm == QkNorm::per_head;
      l.q_norm = m->vector(blk(i, "attn_q_norm.weight"), per_head ? c.head_dim : qd);
      l.k_norm = m->vector(blk(i, "attn_k_norm.weight"), per_head ? c.head_dim : kvd);
    }
    l.ffn_norm = m->vector(blk(i, "ffn_norm.weight"), c.n_embd);
    if (!c.is_moe()) {
      l.ffn_gate = mat("ffn_gate.weight", c.n_ff, c.n_embd);
      l.ffn_up = mat("ffn_up.weight", c.n_ff, c.n_embd);
      l.ffn_down = mat("ffn_down.weight", c.n_embd, c.n_ff);
      continue;
    }
    l.router = mat("ffn_gate_inp.weight", c.n_expert, c.n_embd);
    l.gate_exps = mat("ffn_gate_exps.weight", c.n_expert * c.n_ff_exp, c.n_embd);
    l.up_exps = mat("ffn_up_exps.weight", c.n_expert * c.n_ff_exp, c.n_embd);
    l.down_exps = mat("ffn_down_exps.weight", c.n_expert * c.n_embd, c.n_ff_exp);
    if (c.n_ff_shexp > 0) {
      l.gate_shexp = mat("ffn_gate_shexp.weight", c.n_ff_shexp, c.n_embd);
      l.up_shexp = mat("ffn_up_shexp.weight", c.n_ff_shexp, c.n_embd);
      l.down_shexp = mat("ffn_down_shexp.weight", c.n_embd, c.n_ff_shexp);
      l.shexp_gate = m->vector(blk(i, "ffn_gate_inp_shexp.weight"), c.n_embd, false);
    }
  }
  return m;
}

Model::Footprint Model::footprint() const {
  Footprint fp;
  for (const gguf::Tensor& t : file_.tensors()) {
    const bool routed = t.name.find("_exps.") != std::string::npos;
    (routed ? fp.expert_bytes : fp.shared_bytes) += t.n_bytes;
  }
  if (config_.is_moe()) fp.expert_bytes_each = fp.expert_bytes / uint64_t(config_.n_layer * config_.n_expert);
  return fp;
}

}  // namespace moelab::model
