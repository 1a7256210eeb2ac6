// `moelab sweep`: run an experiment spec into an HDF5 results file (lib/experiment/sweep.h).
#include <cstdio>

#include "commands.h"
#include "experiment/axes.h"
#include "experiment/metric_table.h"
#include "experiment/schema.h"
#include "experiment/spec.h"
#include "experiment/sweep.h"

namespace moelab::cli {

int run_sweep_command(const SweepCliOptions& opts) {
  if (opts.print_schema) {
    std::printf("%s\n", experiment::spec_json_schema().dump(2).c_str());
    return 0;
  }
  if (opts.help_axes) {
    if (opts.markdown) {
      std::fputs(experiment::axes_markdown().c_str(), stdout);
      std::fputs("\n", stdout);
      std::fputs(experiment::metrics_markdown().c_str(), stdout);
    } else {
      std::fputs(experiment::axes_help_text().c_str(), stdout);
      std::fputs("\nMetrics (one column each in /points):\n", stdout);
      for (const experiment::Metric& m : experiment::metrics())
        std::printf("  %-20s %-6s %s\n", std::string(m.name).c_str(), std::string(m.unit).c_str(),
                    std::string(m.help).c_str());
    }
    return 0;
  }
  if (opts.spec.empty()) throw experiment::SpecError("sweep", "", "give a spec file (or --help-axes)");
  const experiment::Spec spec = experiment::load_spec(opts.spec);
  experiment::SweepOptions so;
  so.output = opts.output;
  so.resume = opts.resume;
  so.overwrite = opts.overwrite;
  so.dry_run = opts.dry_run;
  so.plots = !opts.no_plots;
  so.disk_probe_mb = opts.disk_probe_mb;
  so.model_cache = opts.model_cache;
  so.command_line = opts.command_line;
  so.hardware = opts.hardware;
  if (opts.resume && opts.overwrite) throw experiment::SpecError("sweep", "", "--resume and --overwrite exclude each other");
  if (!opts.shard.empty()) experiment::parse_shard(opts.shard, so.shard_index, so.shard_count);
  return experiment::run_sweep(spec, so);
}

}  // namespace moelab::cli
