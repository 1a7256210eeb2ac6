#include "perfmodel/reproduce.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "perfmodel/hardware.h"

namespace moelab::perfmodel {

namespace {
std::string fmt(double v) {
  char buf[32];
  if (v >= 100) std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (v >= 10) std::snprintf(buf, sizeof buf, "%.1f", v);
  else if (v >= 0.1) std::snprintf(buf, sizeof buf, "%.2f", v);
  else std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}
}  // namespace

std::vector<ReproducedRow> reproduce(const PublishedFile& file, const std::filesystem::path& hardware_dir,
                                     const RoutingTrace* trace) {
  std::map<std::string, HardwareProfile> profiles;
  std::vector<ReproducedRow> out;
  for (const auto& row : file.rows) {
    auto it = profiles.find(row.hardware);
    if (it == profiles.end()) it = profiles.emplace(row.hardware, find_hardware(row.hardware, hardware_dir)).first;
    ReproducedRow r;
    r.row = row;
    Scenario sc = row.scenario;
    const int64_t k = sc.top_k > 0 ? sc.top_k : row.shape.n_expert_used;
    if (trace && trace->n_layer == row.shape.n_moe_layers && trace->n_expert == row.shape.n_expert && trace->top_k == k)
      sc.trace = trace;
    r.prediction = predict(it->second, row.shape, sc);
    r.ratio = r.prediction.tok_s / row.value;
    r.within = std::fabs(r.ratio - 1) <= kWithinBand;
    out.push_back(std::move(r));
  }
  return out;
}

ReproduceSummary summarize(const std::vector<ReproducedRow>& rows) {
  ReproduceSummary s;
  for (const auto& r : rows) {
    if (r.row.estimate) continue;
    ++s.scored;
    s.within += r.within ? 1 : 0;
    if (!r.row.calibration) {
      ++s.held_out;
      s.held_out_within += r.within ? 1 : 0;
    }
  }
  return s;
}

std::string markdown_table(const PublishedFile& file, const std::vector<ReproducedRow>& rows) {
  std::string md;
  md += "| row | system | hardware | model | quant | config | metric | published | predicted | ratio | bound | roofline | hit rate |\n";
  md += "|---|---|---|---|---|---|---|---:|---:|---:|---|---:|---:|\n";
  for (const auto& r : rows) {
    const auto& sc = r.row.scenario;
    std::string config = io_mode_name(sc.io);
    if (sc.top_k > 0) config += ", K=" + std::to_string(sc.top_k);
    if (sc.spec_accuracy > 0) config += ", spec " + fmt(sc.spec_accuracy);
    if (sc.metric == Metric::prefill_tok_s) config += ", P=" + std::to_string(sc.prompt_tokens);
    std::string published = fmt(r.row.value);
    if (r.row.value_low && r.row.value_high) published += " (" + fmt(*r.row.value_low) + "-" + fmt(*r.row.value_high) + ")";
    std::string tag;
    if (r.row.calibration) tag = " (calibration)";
    if (r.row.estimate) tag = " (estimate)";
    md += "| " + r.row.id + tag + " | " + r.row.system + " | " + r.row.hardware + " | " + r.row.model_label + " | " +
          r.row.quant_label + " | " + config + " | " + metric_name(sc.metric) + " | " + published + " | " +
          fmt(r.prediction.tok_s) + " | " + fmt(r.ratio) + (r.within ? " ✓" : "") +
          (r.row.value > r.prediction.roofline_tok_s ? " (published above the roofline)" : "") + " | " +
          r.prediction.bound +
          " | " + fmt(r.prediction.roofline_tok_s) + " | " +
          (r.row.shape.is_moe() ? fmt(r.prediction.hit_rate) : std::string("-")) + " |\n";
  }
  const ReproduceSummary s = summarize(rows);
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "\n%s: %d of %d measured rows within +-25%% (%.0f%%); held out (no constant fitted on them): %d of %d "
                "(%.0f%%).\n",
                file.name.c_str(), s.within, s.scored, 100 * s.share(), s.held_out_within, s.held_out,
                100 * s.held_out_share());
  md += buf;
  return md;
}

nlohmann::json to_json(const std::vector<ReproducedRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    const auto& p = r.prediction;
    out.push_back({{"id", r.row.id},
                   {"system", r.row.system},
                   {"hardware", r.row.hardware},
                   {"model", r.row.model_label},
                   {"metric", metric_name(r.row.scenario.metric)},
                   {"published", r.row.value},
                   {"predicted", p.tok_s},
                   {"ratio", r.ratio},
                   {"within_25pct", r.within},
                   {"bound", p.bound},
                   {"roofline_tok_s", p.roofline_tok_s},
                   {"hit_rate", p.hit_rate},
                   {"cache_experts", p.cache_experts},
                   {"resident_bytes", p.resident_bytes},
                   {"hit_bytes", p.hit_bytes},
                   {"disk_bytes", p.disk_bytes},
                   {"compute_s", p.compute_s},
                   {"io_s", p.io_s},
                   {"exposed_io_s", p.exposed_io_s},
                   {"overhead_s", p.overhead_s},
                   {"n_layer", r.row.shape.n_layer},
                   {"engine", r.row.engine},
                   {"engine_layer_overhead_us", r.row.scenario.engine_layer_overhead_us},
                   {"total_s", p.total_s},
                   {"calibration", r.row.calibration},
                   {"estimate", r.row.estimate}});
  }
  return out;
}

}  // namespace moelab::perfmodel
