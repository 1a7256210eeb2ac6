// `moelab merge`: combine results files of one spec (shards) into one.
#include <cstdio>

#include "commands.h"
#include "experiment/results.h"

namespace moelab::cli {

int run_merge(const MergeOptions& opts) {
  std::vector<std::filesystem::path> inputs(opts.inputs.begin(), opts.inputs.end());
  const experiment::MergeReport r = experiment::merge_results(inputs, opts.output, opts.dedupe);
  std::fprintf(stderr, "merge: %zu rows from %zu files (%zu runs) into %s%s\n", r.rows, inputs.size(), r.runs,
               opts.output.c_str(),
               r.duplicates_dropped ? (", " + std::to_string(r.duplicates_dropped) + " duplicates dropped").c_str() : "");
  return 0;
}

}  // namespace moelab::cli
