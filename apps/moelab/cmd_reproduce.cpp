// `moelab reproduce <published.json>`: the table of published vs predicted
// tok/s (ratio, bound, roofline) and the share of rows within +-25%.
#include <cstdio>
#include <fstream>
#include <optional>

#include "commands.h"
#include "core/error.h"
#include "perfmodel/reproduce.h"

namespace moelab::cli {

int run_reproduce(const ReproduceOptions& opts) {
  const std::filesystem::path hw_dir = opts.hardware_dir;
  const perfmodel::PublishedFile file = perfmodel::load_published_file(opts.published, hw_dir);
  std::optional<perfmodel::RoutingTrace> trace;
  if (!opts.trace.empty()) trace = perfmodel::load_routing_trace(opts.trace);
  const auto rows = perfmodel::reproduce(file, hw_dir, trace ? &*trace : nullptr);
  const std::string md = perfmodel::markdown_table(file, rows);
  std::fputs(md.c_str(), stdout);
  if (!opts.output.empty()) {
    std::ofstream f(opts.output);
    if (!f) throw Error(opts.output + ": cannot write");
    f << "# " << file.name << ": published vs predicted\n\n" << file.description << "\n\n" << md;
  }
  if (!opts.json_output.empty()) {
    std::ofstream f(opts.json_output);
    if (!f) throw Error(opts.json_output + ": cannot write");
    f << perfmodel::to_json(rows).dump(2) << "\n";
  }
  return 0;
}

}  // namespace moelab::cli
