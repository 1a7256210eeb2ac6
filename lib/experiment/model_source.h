// The model files a sweep runs on: the spec's GGUF, or a synthetic model
// generated once and cached by its parameters; and for expert_codec /
// shared_codec values other than `source`, a copy requantized by tensor role
// (routed experts to one codec, every other 2-D weight except the router to
// another), also cached. Checks that need the model's shape (top_k against
// the model's K, codec block sizes, the RAM budget's minimum) live here too.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "experiment/expand.h"
#include "model/config.h"

namespace moelab::experiment {

struct ModelShape {
  model::Config config;
  double expert_bytes_each = 0;  // one routed expert (gate + up + down) in the source codec
  std::string source_label;      // "gen qwen3-30b-a3b q4_k ..." or the path
};

// Reads the shape without generating anything (a gen model's shape comes from
// its preset). An unreadable model is a SpecError at /model.
ModelShape model_shape(const Spec& spec);

// Every point's and the reference's values that the model shape rules out,
// reported with the pointer the value came from.
void check_against_model(const Spec& spec, const std::vector<Point>& points, const ModelShape& shape);

// $MOELAB_MODEL_CACHE, else $XDG_CACHE_HOME/moelab/models, else ~/.cache/moelab/models.
std::filesystem::path model_cache_dir();

// The GGUF file for (expert_codec, shared_codec): generated and/or requantized
// into `cache_dir` on first use, with progress on stderr.
std::filesystem::path prepare_model(const Spec& spec, const std::string& expert_codec,
                                    const std::string& shared_codec, const std::filesystem::path& cache_dir,
                                    ThreadPool& pool);

// Copies `in` to `out` with routed-expert tensors in `expert_codec` and every
// other 2-D weight except routers in `shared_codec` ("source" keeps a group).
void requantize_by_role(const std::filesystem::path& in, const std::filesystem::path& out,
                        const std::string& expert_codec, const std::string& shared_codec, ThreadPool& pool);

}  // namespace moelab::experiment
