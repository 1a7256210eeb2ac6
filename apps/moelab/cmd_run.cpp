// `moelab run`: generate text, then report prefill and decode throughput.
// --session FILE: load the KV cache and tokens of an earlier run from FILE when
// it exists (only the new tokens are processed), save them back at the end.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "core/error.h"
#include "metrics/timer.h"
#include "engine/engine.h"
#include "metrics/rss.h"

#include "kv/session.h"
#include "model/identity.h"

namespace moelab::cli {

int run_run(const RunOptions& opts) {
  const engine::EngineConfig& ec = opts.engine;
  metrics::reset_peak_rss();
  engine::Engine engine(ec);
  const model::Model* m = &engine.model();
  const model::Config& c = m->config();
  std::string prompt = opts.prompt;
  if (!opts.prompt_file.empty()) {
    std::ifstream in(opts.prompt_file, std::ios::binary);
    if (!in) throw Error(opts.prompt_file + ": cannot read prompt file");
    std::ostringstream ss;
    ss << in.rdbuf();
    prompt = ss.str();
  }
  const model::Tokenizer& tok = m->tokenizer();
  model::Forward& fwd = engine.forward();
  const std::string identity = opts.session.empty() ? std::string() : model::model_identity(m->file());
  std::vector<int32_t> history;  // the tokens the KV cache holds
  std::vector<int32_t> tokens;   // the tokens to process now
  if (!opts.session.empty() && std::filesystem::exists(opts.session)) {
    const int64_t ts = metrics::now_ns();
    history = kv::load_session(opts.session, fwd.kv_cache(), identity);
    std::fprintf(stderr, "run: session %s loaded: %zu tokens in %.4f s\n", opts.session.c_str(), history.size(),
                 double(metrics::now_ns() - ts) * 1e-9);
    // The prompt may repeat the conversation so far (then only its tail is new) or be the next turn alone.
    const std::vector<int32_t> full = tok.encode(prompt, /*add_special=*/true, /*parse_special=*/true);
    if (!history.empty() && full.size() >= history.size() && std::equal(history.begin(), history.end(), full.begin()))
      tokens.assign(full.begin() + std::ptrdiff_t(history.size()), full.end());
    else
      tokens = tok.encode(prompt, /*add_special=*/history.empty(), /*parse_special=*/true);
    if (tokens.empty() && !history.empty()) {  // nothing new: re-evaluate the last token for its logits
      tokens.push_back(history.back());
      history.pop_back();
      fwd.kv_cache().set_n_past(int64_t(history.size()));
    }
  } else {
    tokens = tok.encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  }
  if (tokens.empty()) throw Error("the prompt is empty (and the model adds no BOS token); give --prompt");
  if (int64_t(history.size() + tokens.size()) + opts.n_predict > ec.n_ctx)
    throw Error("session (" + std::to_string(history.size()) + " tokens) + prompt (" + std::to_string(tokens.size()) +
                " tokens) + " + std::to_string(opts.n_predict) + " new tokens exceed --ctx " + std::to_string(ec.n_ctx));

  model::Sampler sampler({opts.temperature, opts.top_p, opts.sample_top_k, opts.seed});
  std::vector<float> logits(size_t(c.n_vocab));  // [n_vocab] of the last token

  std::fputs(prompt.c_str(), stdout);
  std::fflush(stdout);
  const int64_t t0 = metrics::now_ns();
  for (size_t i = 0; i < tokens.size(); i += size_t(ec.n_batch)) {
    const size_t n = std::min(tokens.size() - i, size_t(ec.n_batch));
    fwd.eval(std::span<const int32_t>(tokens.data() + i, n), logits);
  }
  history.insert(history.end(), tokens.begin(), tokens.end());
  const int64_t t_prefill = metrics::now_ns();
  const store::StoreCounters after_prefill = engine.counters();
  engine.reset_counters();
  int64_t n_decoded = 0;
  std::vector<double> latency_ms;
  latency_ms.reserve(size_t(opts.n_predict));
  int64_t t_first = 0;
  // --rss-log: RSS sampled every --rss-every decoded tokens into a preallocated
  // table (written after the loop), for soak runs.
  std::vector<std::pair<int64_t, metrics::RssSample>> rss_samples;
  if (!opts.rss_log.empty()) rss_samples.reserve(size_t(opts.n_predict / std::max<int64_t>(1, opts.rss_every) + 2));
  for (int64_t i = 0; i < opts.n_predict; ++i) {
    const int32_t next = sampler.sample(logits);
    if (i == 0) t_first = metrics::now_ns();
    if (tok.is_eog(next) && !opts.ignore_eos) break;
    std::fputs(tok.token_piece(next, false).c_str(), stdout);
    std::fflush(stdout);
    // No need to evaluate a token nobody samples from, unless the session keeps it.
    if (i + 1 == opts.n_predict && opts.session.empty()) break;
    const int64_t ts = metrics::now_ns();
    fwd.eval(std::span<const int32_t>(&next, 1), logits);
    history.push_back(next);
    latency_ms.push_back(double(metrics::now_ns() - ts) * 1e-6);
    ++n_decoded;
    if (!opts.rss_log.empty() && n_decoded % std::max<int64_t>(1, opts.rss_every) == 0)
      rss_samples.emplace_back(n_decoded, metrics::read_rss());
  }
  const int64_t t_end = metrics::now_ns();
  std::fputs("\n", stdout);
  std::fflush(stdout);
  if (!opts.session.empty()) {
    const int64_t ts = metrics::now_ns();
    kv::save_session(opts.session, fwd.kv_cache(), identity, history);
    std::fprintf(stderr, "run: session %s saved: %zu tokens in %.4f s\n", opts.session.c_str(), history.size(),
                 double(metrics::now_ns() - ts) * 1e-9);
  }
  if (!opts.rss_log.empty()) {
    std::ofstream out(opts.rss_log);
    out << "decoded_tokens,vm_rss_mb,vm_hwm_mb,rss_anon_mb,rss_file_mb\n";
    for (const auto& [n, r] : rss_samples)
      out << n << ',' << r.rss_mb << ',' << r.peak_mb << ',' << r.anon_mb << ',' << r.file_mb << '\n';
    if (!out) throw Error(opts.rss_log + ": cannot write the RSS log");
  }
  const double prefill_s = double(t_prefill - t0) * 1e-9;
  const double decode_s = double(t_end - t_prefill) * 1e-9;
  std::fprintf(stderr,
               "\nrun: prompt %zu new tokens, prefill %.2f tok/s (%.3f s), TTFT %.1f ms\n"
               "run: decode %lld tokens, %.2f tok/s, per-token latency median %.2f ms (%d threads, isa %s)\n",
               tokens.size(), double(tokens.size()) / prefill_s, prefill_s, double(t_first - t0) * 1e-6,
               (long long)n_decoded, n_decoded ? double(n_decoded) / decode_s : 0.0, metrics::median(latency_ms),
               ec.threads, std::string(quant::isa_name(quant::active_isa())).c_str());
  if (engine.streaming()) {
    const store::StoreCounters s = engine.counters();
    const double mib = 1024.0 * 1024.0;
    std::fprintf(stderr,
                 "store: io %s, layout %s, cache %s, budget %.0f MiB (%.1f MiB of slots)\n"
                 "store: prefill read %.1f MiB (%.2f MiB per prompt token)\n"
                 "store: decode read %.1f MiB in %llu reads (%.1f MB/s over decode; %.1f MB/s while reading), "
                 "hits %llu, misses %llu (hit rate %.3f), io wait %.1f ms, prefetched %.1f MiB\n",
                 ec.io.c_str(), ec.layout.c_str(), ec.cache.c_str(), ec.ram_budget_mb, double(s.cache_budget_bytes) / mib,
                 double(after_prefill.bytes_read) / mib, double(after_prefill.bytes_read) / mib / double(tokens.size()),
                 double(s.bytes_read) / mib, (unsigned long long)s.reads, decode_s > 0 ? double(s.bytes_read) / 1e6 / decode_s : 0.0,
                 s.read_ns > 0 ? double(s.bytes_read - s.prefetch_bytes) * 1e3 / double(s.read_ns) : 0.0,
                 (unsigned long long)s.cache_hits, (unsigned long long)s.cache_misses, s.hit_rate(), double(s.io_wait_ns) * 1e-6,
                 double(s.prefetch_bytes) / mib);
    for (size_t d = 0; d < s.spec.size(); ++d)
      std::fprintf(stderr, "store: speculation depth %zu: precision %.3f, recall %.3f (%llu predicted)\n", d + 1,
                   s.spec[d].precision(), s.spec[d].recall(), (unsigned long long)s.spec[d].predicted);
    if (ec.spec_pre_attention)
      std::fprintf(stderr, "store: speculation pre-attention: precision %.3f, recall %.3f\n",
                   s.spec_pre_attention.precision(), s.spec_pre_attention.recall());
  }
  const metrics::RssSample rss = metrics::read_rss();
  std::fprintf(stderr, "rss: VmHWM %.1f MiB, RssAnon %.1f MiB, RssFile %.1f MiB (resident weights %.1f MiB)\n", rss.peak_mb,
               rss.anon_mb, rss.file_mb, double(engine.resident_weight_bytes()) / (1024.0 * 1024.0));
  return 0;
}

}  // namespace moelab::cli
