// `moelab kvbench`: KV cache codecs on one model, teacher-forced over a fixed
// text: bytes per token, compression vs f16, logits cosine and top-1 agreement
// vs an f32 cache (mean over every position), and session save / load time vs
// the time to reprocess the same tokens.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "core/error.h"
#include "kv/session.h"
#include "metrics/accuracy.h"
#include "metrics/timer.h"
#include "model/forward.h"
#include "model/identity.h"
#include "model/loader.h"
#include "store/page_cache.h"

namespace moelab::cli {
namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// The text's tokens (BOS first), the text repeated until n tokens.
std::vector<int32_t> text_tokens(const model::Tokenizer& tok, const std::vector<std::string>& files, int64_t n) {
  std::string text;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw Error(f + ": kvbench: cannot read the text file");
    std::ostringstream ss;
    ss << in.rdbuf();
    text += ss.str();
  }
  std::vector<int32_t> body = tok.encode(text, /*add_special=*/false, /*parse_special=*/false);
  if (body.empty()) throw Error("kvbench: the text is empty");
  std::vector<int32_t> out = tok.encode("", /*add_special=*/true, false);
  while (int64_t(out.size()) < n) out.insert(out.end(), body.begin(), body.end());
  out.resize(size_t(n));
  return out;
}

}  // namespace

int run_kvbench(const KvbenchOptions& opts) {
  const auto codecs = split(opts.codecs);
  if (codecs.empty()) throw Error("kvbench: --codecs is empty");
  auto m = model::Model::load(opts.model);
  const model::Config& c = m->config();
  const std::string identity = model::model_identity(m->file());
  ThreadPool pool(opts.threads);
  model::ResidentExperts experts(m->weights(), c.n_expert);
  const size_t V = size_t(c.n_vocab);
  auto make = [&](const std::string& codec) {
    model::ForwardOptions fo;
    fo.n_ctx = opts.n_ctx;
    fo.n_batch = opts.n_batch;
    fo.kv_codec = codec;
    fo.path = opts.exact ? quant::DotPath::exact : quant::DotPath::quantized;
    return std::make_unique<model::Forward>(c, m->weights(), experts, pool, fo);
  };
  const std::vector<int32_t> tokens = text_tokens(m->tokenizer(), split(opts.text), opts.n_ctx);
  std::string md;
  char line[512];
  std::snprintf(line, sizeof(line), "\n`moelab kvbench --model %s --ctx %lld` (%d threads, text %s, %zu tokens)\n\n",
                std::filesystem::path(opts.model).filename().c_str(), (long long)opts.n_ctx, opts.threads,
                opts.text.c_str(), tokens.size());
  md += line;

  // Bytes per token of every codec (f16 is the reference for compression).
  const double f16_bytes = double(make("f16")->kv_cache().bytes_per_token());
  std::vector<std::unique_ptr<model::Forward>> fwds;
  for (const auto& name : codecs) fwds.push_back(make(name));

  std::vector<double> seconds(codecs.size(), 0);  // teacher-forced time per codec (all --ctx tokens)
  if (!opts.no_accuracy) {
    // Teacher-forced in lockstep: every codec sees the same batches as the f32 reference.
    auto ref = make("f32");
    const int64_t nb = opts.n_batch;
    std::vector<float> ref_logits(size_t(nb) * V), logits(size_t(nb) * V);
    std::vector<double> cos_sum(codecs.size(), 0), top1(codecs.size(), 0);
    // Attention outputs (per layer, before the output projection) of the f32
    // reference, and per codec the sum of per-token cosines against them.
    const size_t q_dim = size_t(c.q_dim()), L = size_t(c.n_layer);
    std::vector<std::vector<float>> ref_attn(L, std::vector<float>(size_t(nb) * q_dim));
    std::vector<std::vector<double>> attn_cos(codecs.size(), std::vector<double>(L, 0.0));
    model::ForwardObserver ref_obs;
    ref_obs.on_attention = [&](int layer, std::span<const float> a) {
      std::copy(a.begin(), a.end(), ref_attn[size_t(layer)].begin());
    };
    ref->set_observer(&ref_obs);
    std::vector<model::ForwardObserver> obs(codecs.size());
    for (size_t k = 0; k < codecs.size(); ++k) {
      obs[k].on_attention = [&, k](int layer, std::span<const float> a) {
        for (size_t t = 0; t < a.size() / q_dim; ++t)
          attn_cos[k][size_t(layer)] += metrics::cosine(a.subspan(t * q_dim, q_dim),
                                                        std::span<const float>(ref_attn[size_t(layer)]).subspan(t * q_dim, q_dim));
      };
      fwds[k]->set_observer(&obs[k]);
    }
    const int64_t t_start = metrics::now_ns();
    for (int64_t i = 0; i < int64_t(tokens.size()); i += nb) {
      const int64_t n = std::min<int64_t>(nb, int64_t(tokens.size()) - i);
      std::span<const int32_t> batch(tokens.data() + i, size_t(n));
      ref->eval(batch, std::span<float>(ref_logits.data(), size_t(n) * V), true);
      for (size_t k = 0; k < codecs.size(); ++k) {
        const int64_t t0 = metrics::now_ns();
        fwds[k]->eval(batch, std::span<float>(logits.data(), size_t(n) * V), true);
        seconds[k] += double(metrics::now_ns() - t0) * 1e-9;
        for (int64_t t = 0; t < n; ++t) {
          std::span<const float> a(logits.data() + size_t(t) * V, V), b(ref_logits.data() + size_t(t) * V, V);
          cos_sum[k] += metrics::cosine(a, b);
          top1[k] += std::max_element(a.begin(), a.end()) == a.begin() + (std::max_element(b.begin(), b.end()) - b.begin());
        }
      }
      std::fprintf(stderr, "\rkvbench: %lld / %zu tokens (%.0f s)", (long long)(i + n), tokens.size(),
                   double(metrics::now_ns() - t_start) * 1e-9);
    }
    std::fprintf(stderr, "\n");
    for (size_t k = 0; k < codecs.size(); ++k) fwds[k]->set_observer(nullptr);
    md += "| kv codec (K/V) | KV bytes/token | + fixed, at this ctx | vs f16 | logits cosine vs f32 KV | attn-out cosine "
          "(mean / worst layer) | top-1 agree | teacher-forced s |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|\n";
    const double n_tok = double(tokens.size());
    for (size_t k = 0; k < codecs.size(); ++k) {
      const kv::KvCache& cache = fwds[k]->kv_cache();
      const double b = double(cache.bytes_per_token());
      // Every byte the cache needs: rows plus its per-cache side data (centres, sink rows, weights) spread over the context.
      const double all = b + double(cache.fixed_bytes()) / n_tok;
      double attn_mean = 0, attn_worst = 1;
      for (size_t l = 0; l < L; ++l) {
        attn_mean += attn_cos[k][l] / n_tok / double(L);
        attn_worst = std::min(attn_worst, attn_cos[k][l] / n_tok);
      }
      std::snprintf(line, sizeof(line), "| %s | %.0f | %.1f | %.2fx | %.5f | %.5f / %.5f | %.4f | %.1f |\n",
                    codecs[k].c_str(), b, all, f16_bytes / all, cos_sum[k] / n_tok, attn_mean, attn_worst,
                    top1[k] / n_tok, seconds[k]);
      md += line;
    }
  }

  // Sessions: reprocess N tokens vs save / load them.
  std::vector<int64_t> sizes;
  for (const auto& s : split(opts.sessions)) {
    const int64_t n = std::stoll(s);
    if (n > 0 && n <= opts.n_ctx) sizes.push_back(n);
  }
  if (!sizes.empty()) {
    md += "\n| kv codec | tokens | session MB | reprocess s | save s | load s (page cache) | load s (dropped) |\n"
          "|---|---:|---:|---:|---:|---:|---:|\n";
    std::vector<float> last(V);
    const std::filesystem::path file = std::filesystem::path(opts.session_dir) / "kvbench.kvs";
    for (size_t k = 0; k < codecs.size(); ++k) {
      model::Forward& f = *fwds[k];
      // Largest first: a session of all --ctx tokens reuses the accuracy run's
      // state, and its reprocess time is that run's (all-position logits
      // included, so a slight overestimate; marked *).
      for (auto it = sizes.rbegin(); it != sizes.rend(); ++it) {
        const int64_t n = *it;
        const bool reuse = !opts.no_accuracy && n == opts.n_ctx && f.n_past() == n;
        int64_t t0 = metrics::now_ns();
        if (!reuse) {
          f.reset();
          for (int64_t i = 0; i < n; i += opts.n_batch) {
            const int64_t b = std::min(opts.n_batch, n - i);
            f.eval(std::span<const int32_t>(tokens.data() + i, size_t(b)), last);
          }
        }
        const int64_t t1 = metrics::now_ns();
        if (reuse) t0 = t1 - int64_t(seconds[k] * 1e9);
        kv::save_session(file, f.kv_cache(), identity, std::span<const int32_t>(tokens.data(), size_t(n)));
        const int64_t t2 = metrics::now_ns();
        f.reset();
        kv::load_session(file, f.kv_cache(), identity);
        const int64_t t3 = metrics::now_ns();
        store::drop_file_pages(file);  // the load below reads the device
        f.reset();
        const int64_t t4 = metrics::now_ns();
        kv::load_session(file, f.kv_cache(), identity);
        const int64_t t5 = metrics::now_ns();
        std::snprintf(line, sizeof(line), "| %s | %lld | %.2f | %.3f%s | %.4f | %.4f | %.4f |\n", codecs[k].c_str(),
                      (long long)n, double(std::filesystem::file_size(file)) / 1e6, double(t1 - t0) * 1e-9, reuse ? "*" : "",
                      double(t2 - t1) * 1e-9, double(t3 - t2) * 1e-9, double(t5 - t4) * 1e-9);
        md += line;
        std::fprintf(stderr, "kvbench: session %s %lld tokens done\n", codecs[k].c_str(), (long long)n);
      }
    }
    std::filesystem::remove(file);
  }
  std::fputs(md.c_str(), stdout);
  if (!opts.markdown.empty()) {
    std::ofstream out(opts.markdown, std::ios::app);
    if (!out) throw Error(opts.markdown + ": kvbench: cannot append the table");
    out << md;
  }
  return 0;
}

}  // namespace moelab::cli
