// `moelab gen`: a synthetic model of a published shape, as a real GGUF file.
#include <cstdio>

#include "commands.h"
#include "core/error.h"
#include "metrics/timer.h"
#include "model/preset.h"
#include "model/synth.h"

namespace moelab::cli {

int run_gen(const GenOptions& opts) {
  const model::Preset preset = model::find_preset(opts.preset);
  if (preset.projection_only)
    throw Error("preset " + preset.name + " is for projection only (its attention cannot run here): " +
                preset.approximation);
  model::SynthOptions s;
  s.config = model::scaled(preset.config, opts.layers, opts.experts);
  s.name = preset.name + "-synthetic";
  s.codec = opts.codec;
  s.seed = opts.seed;
  s.dist = opts.dist == "heavy" ? model::WeightDist::heavy : model::WeightDist::gaussian;
  s.router_skew = opts.router_skew;
  s.tied_embeddings = opts.tied || preset.tied_embeddings;
  ThreadPool pool(opts.threads);
  const int64_t t0 = metrics::now_ns();
  model::write_synthetic_gguf(s, opts.output, pool, [&](uint64_t done, uint64_t total) {
    const double el = double(metrics::now_ns() - t0) * 1e-9;
    std::fprintf(stderr, "\rgen: %6.1f / %.1f MiB  %3.0f%%  elapsed %.0f s  ETA %.0f s   ", double(done) / (1 << 20),
                 double(total) / (1 << 20), 100.0 * double(done) / double(total), el,
                 done ? el * double(total - done) / double(done) : 0.0);
  });
  std::fprintf(stderr, "\ngen: wrote %s (%s, %lld layers, %lld experts, codec %s)\n", opts.output.c_str(),
               preset.name.c_str(), (long long)s.config.n_layer, (long long)s.config.n_expert, s.codec.c_str());
  return 0;
}

}  // namespace moelab::cli
