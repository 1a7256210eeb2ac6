// `moelab gen`: a synthetic model of a published shape, as a real GGUF file.
#include <cstdio>

#include "commands.h"
#include "core/error.h"
#include "metrics/progress.h"
#include "model/preset.h"
#include "model/synth.h"

namespace moelab::cli {

int run_gen(const GenOptions& opts) {
  const model::Preset preset = model::find_preset(opts.preset);
  if (preset.projection_only)
    throw Error("preset " + preset.name + " is for projection only (its attention cannot run here): " +
                preset.approximation);
  model::SynthOptions s;
  s.config = model::scaled(preset.config, opts.layers, opts.experts, opts.vocab);
  s.name = preset.name + "-synthetic";
  s.codec = opts.codec;
  s.seed = opts.seed;
  s.dist = opts.dist == "heavy" ? model::WeightDist::heavy : model::WeightDist::gaussian;
  s.router_skew = opts.router_skew;
  s.tied_embeddings = opts.tied || preset.tied_embeddings;
  ThreadPool pool(opts.threads);
  metrics::Progress progress("gen", 0, "MiB");
  model::write_synthetic_gguf(s, opts.output, pool, [&](uint64_t done, uint64_t total) {
    progress.set_total(double(total) / (1 << 20));
    progress.update(double(done) / (1 << 20));
  });
  progress.finish();
  std::fprintf(stderr, "gen: wrote %s (%s, %lld layers, %lld experts, codec %s)\n", opts.output.c_str(),
               preset.name.c_str(), (long long)s.config.n_layer, (long long)s.config.n_expert, s.codec.c_str());
  return 0;
}

}  // namespace moelab::cli
