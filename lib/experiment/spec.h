// An experiment spec (JSON; experiments/spec.schema.json describes the same
// format for editors): which model, which workload, which axis values are
// fixed and which are swept, how often each point repeats, what accuracy is
// measured against and which plots to draw. Validation is strict: unknown keys
// are errors, and every error names the file and the JSON pointer of the bad
// field ("/sweep/top_k/2: ...").
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "experiment/axes.h"

namespace moelab::experiment {

// A bad spec, model, or output path: the CLI exits with status 2.
class SpecError : public Error {
 public:
  SpecError(const std::string& file, const std::string& pointer, const std::string& reason);
  const std::string& pointer() const { return pointer_; }

 private:
  std::string pointer_;
};

struct GenModel {             // a synthetic model, generated once and cached by these parameters
  std::string preset;         // datasets/models/<preset>.json
  int64_t layers = 0, experts = 0, vocab = 0;  // 0 = the preset's
  std::string codec = "q4_k";
  uint64_t seed = 1;
  std::string dist = "gaussian";  // gaussian | heavy
  double router_skew = 0.5;
};

struct ModelSource {
  std::filesystem::path path;   // a GGUF file (relative paths: to the spec's folder)
  std::optional<GenModel> gen;  // or a synthetic model
};

struct Workload {
  std::string prompt;                 // text, tokenized and repeated to prompt_tokens
  std::filesystem::path prompt_file;  // or a file of text
  uint64_t seed = 1;                  // token ids when there is no prompt
  int64_t accuracy_tokens = 64;       // teacher-forced positions compared to the reference (0 = skip)
};

struct SweepDim {                    // one dimension of the product: one axis, or a zip group
  std::vector<int> axes;             // indices into axes()
  std::vector<std::vector<nlohmann::json>> values;  // [axes.size()][n_values]
  std::vector<std::string> pointers; // [axes.size()] where each axis's array is, e.g. /sweep/top_k
  size_t size() const { return values.empty() ? 0 : values[0].size(); }
};

struct ExcludeRule {                 // excludes a point when every listed axis matches
  std::vector<std::pair<int, std::vector<nlohmann::json>>> match;
};

struct PlotSpec {
  std::string x, y, by;              // axis, metric, axis ("" = one series)
  std::vector<std::pair<std::string, std::string>> where;  // axis = value (text)
  std::string kind = "line";         // line | bar
  std::string file;                  // relative to the results file's folder (.png or .svg)
  std::string title;
};

struct Spec {
  std::filesystem::path file;        // where it was read from (for messages and relative paths)
  std::string name, description;
  ModelSource model;
  Workload workload;
  AxisValues fixed;                  // every axis: default, or the fixed/workload value
  std::vector<std::string> fixed_pointer;  // [axes] "/fixed/top_k", or "" for a default
  std::vector<SweepDim> dims;
  std::vector<ExcludeRule> excludes;
  int repeats = 3, warmup = 1;
  bool cold = false;                 // start "cold": a fresh engine and dropped page cache per repeat
  AxisValues reference;              // the configuration accuracy is measured against
  std::vector<std::string> reference_pointer;
  std::vector<PlotSpec> plots;
  nlohmann::ordered_json resolved;   // every field with defaults filled in (stored in results)
  std::string hash;                  // of what decides the points and their results (not name, plots)
};

Spec parse_spec(const nlohmann::ordered_json& j, const std::filesystem::path& file);
Spec load_spec(const std::filesystem::path& file);  // unreadable or bad JSON: SpecError

// A plot request checked against the axis and metric tables (pointer for messages).
void validate_plot(const PlotSpec& p, const std::string& file, const std::string& pointer);
// Parses "axis=value" (from --where).
std::pair<std::string, std::string> parse_where(const std::string& text);

std::string fnv1a_hex(const std::string& bytes);  // 16 hex digits

}  // namespace moelab::experiment
