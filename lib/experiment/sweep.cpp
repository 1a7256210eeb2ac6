#include "experiment/sweep.h"

#include <cstdlib>

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "experiment/expand.h"
#include "experiment/host.h"
#include "experiment/measure.h"
#include "experiment/mem_cap.h"
#include "experiment/peer.h"
#include "experiment/point.h"
#include "experiment/point_rows.h"
#include "experiment/model_source.h"
#include "experiment/plot.h"
#include "experiment/predict.h"
#include "experiment/results.h"
#include "metrics/bandwidth.h"
#include "metrics/progress.h"
#include "metrics/rss.h"
#include "metrics/timer.h"
#include "model/loader.h"
#include "quant/codec.h"
#include "store/pack.h"

namespace moelab::experiment {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {


const nlohmann::json& value(const AxisValues& v, const char* name) { return v[size_t(axis_index(name))]; }

engine::EngineConfig engine_config(const PointSetup& s, const fs::path& model, int64_t accuracy_tokens) {
  engine::EngineConfig e = s.engine;
  e.model = model;
  e.n_ctx = std::max(s.context_tokens + s.prompt_tokens + s.decode_tokens, accuracy_tokens) + 1;
  e.n_batch = 256;
  return e;
}

// Rough seconds per point for --dry-run: bytes each token touches over the
// measured DRAM read bandwidth (weights in RAM; streamed io is slower).
double estimate_point_s(const ModelShape& shape, const PointSetup& s, double gbs, int runs, int64_t accuracy_tokens) {
  const model::Config& c = shape.config;
  const double bpw = shape.config.is_moe() && shape.expert_bytes_each > 0
                         ? shape.expert_bytes_each * 8 / double(3 * c.n_embd * c.n_ff_exp)
                         : 4.5;
  const int64_t k = s.engine.top_k > 0 ? s.engine.top_k : c.n_expert_used;
  const double params = double(c.n_layer) * (double(c.n_embd) * double(2 * c.q_dim() + 2 * c.kv_dim()) +
                                             double(k) * 3.0 * double(c.n_embd) * double(c.n_ff_exp) +
                                             3.0 * double(c.n_embd) * double(c.n_ff + c.n_ff_shexp)) +
                        double(c.n_vocab) * double(c.n_embd);
  const double token_s = params * bpw / 8 / (gbs * 1e9 * 0.5);
  const double decode = double(s.decode_tokens) * token_s, prefill = double(s.prompt_tokens) * token_s * 0.3;
  const double context = double(s.context_tokens) * token_s * 0.3;
  return double(runs) * (decode + prefill + context) + double(accuracy_tokens) * token_s * 0.3 + 0.05;
}

// A llama.cpp point needs the peer installed, a capped point a writable
// cgroup v1 memory controller: checked once, before any work.
void check_peers_and_caps(const Spec& spec, const std::vector<const Point*>& points) {
  const int engine_axis = axis_index("engine"), cap_axis = axis_index("mem_cap");
  bool peer_checked = false, cap_checked = false;
  for (const Point* p : points) {
    if (!peer_checked && p->values[size_t(engine_axis)] == "llama.cpp") {
      peer_checked = true;
      const std::string why = llamacpp_unavailable();
      if (!why.empty()) throw SpecError(spec.file.string(), p->origin[size_t(engine_axis)], why);
    }
    if (!cap_checked && p->values[size_t(cap_axis)] != "none") {
      cap_checked = true;
      const std::string why = memory_cgroup_unavailable();
      if (!why.empty()) throw SpecError(spec.file.string(), p->origin[size_t(cap_axis)], "mem_cap: " + why);
    }
  }
}

std::string fixed_width(const std::string& s, size_t w) { return s.size() >= w ? s : s + std::string(w - s.size(), ' '); }

}  // namespace

void parse_shard(const std::string& text, int& index, int& count) {
  int i = -1, n = 0;
  char extra = 0;
  if (std::sscanf(text.c_str(), "%d/%d%c", &i, &n, &extra) != 2 || n < 1 || i < 0 || i >= n)
    throw SpecError("--shard", "", "expected i/n with 0 <= i < n, got '" + text + "'");
  index = i, count = n;
}

std::string summary_table(const fs::path& results) {
  const ResultsTable t = read_points(results);
  std::ostringstream os;
  if (t.n_rows == 0) return "no points recorded\n";
  // Columns: point, the axes that vary, then the metrics that were measured.
  std::vector<int> cols = {t.column("point")};
  for (int c : varying_axis_columns(t)) cols.push_back(c);
  const size_t n_axes_cols = cols.size();
  for (const char* m : {"decode_tok_s", "prefill_tok_s", "ttft_ms", "latency_p99_ms", "peak_rss_mb", "read_mb_s",
                        "io_efficiency", "cache_hit_rate", "spec_precision", "cosine_logits", "top1_agree", "kl_div",
                        "predicted_tok_s", "roofline_fraction"}) {
    const int c = t.column(m);
    if (c < 0) continue;
    bool any = false;
    for (double v : t.num[size_t(c)]) any = any || !std::isnan(v);
    if (any) cols.push_back(c);
  }
  // Median over repeats of each point.
  const std::map<int, std::vector<size_t>> by_point = rows_by_point(t);
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width;
  for (int c : cols) width.push_back(t.names[size_t(c)].size());
  for (const auto& [p, rows] : by_point) {
    std::vector<std::string> line;
    for (size_t i = 0; i < cols.size(); ++i) {
      const int c = cols[i];
      std::string s;
      if (i < n_axes_cols) {
        s = t.cell(c, rows[0]);
      } else {
        const double m = median_over_rows(t, c, rows);
        char buf[32];
        if (std::isnan(m)) s = "-";
        else std::snprintf(buf, sizeof buf, "%.4g", m), s = buf;
      }
      width[i] = std::max(width[i], s.size());
      line.push_back(s);
    }
    cells.push_back(std::move(line));
  }
  for (size_t i = 0; i < cols.size(); ++i) os << fixed_width(t.names[size_t(cols[i])], width[i]) << "  ";
  os << "\n";
  for (size_t i = 0; i < cols.size(); ++i) os << std::string(width[i], '-') << "  ";
  os << "\n";
  for (const auto& line : cells) {
    for (size_t i = 0; i < line.size(); ++i) os << fixed_width(line[i], width[i]) << "  ";
    os << "\n";
  }
  os << "(median over repeats; " << t.n_rows << " rows in " << results.string() << ")\n";
  return os.str();
}

int run_sweep(const Spec& spec, const SweepOptions& opt) {
  const int64_t t_begin = metrics::now_ns();
  const std::vector<Point> points = expand(spec);
  if (points.empty()) throw SpecError(spec.file.string(), "/sweep/exclude", "every point is excluded");
  const ModelShape shape = model_shape(spec);
  check_against_model(spec, points, shape);
  std::vector<const Point*> mine;
  for (const Point& p : points)
    if (p.index % opt.shard_count == opt.shard_index) mine.push_back(&p);
  const fs::path output = opt.output.empty() ? fs::path("results") / (spec.name + ".h5") : opt.output;
  const fs::path cache_dir = opt.model_cache.empty() ? model_cache_dir() : opt.model_cache;
  const int64_t accuracy_tokens = spec.workload.accuracy_tokens;

  if (opt.dry_run) {
    const int threads = std::max(1, int(std::thread::hardware_concurrency()));
    ThreadPool pool(threads);
    const double gbs = metrics::read_bandwidth_gbs(size_t(64) << 20, &pool, 3);
    const std::vector<int> vary = varying_axes(points);
    std::printf("%s: %zu points (%zu combinations, %zu excluded)%s x %d repeats + %d warmup, model %s, spec hash %s\n",
                spec.name.c_str(), mine.size(), product_size(spec), product_size(spec) - points.size(),
                opt.shard_count > 1 ? (" in shard " + std::to_string(opt.shard_index) + "/" +
                                       std::to_string(opt.shard_count)).c_str()
                                    : "",
                spec.repeats, spec.warmup, shape.source_label.c_str(), spec.hash.c_str());
    std::printf("%6s", "point");
    for (int a : vary) std::printf("  %14s", std::string(axes()[size_t(a)].name).c_str());
    std::printf("  %10s\n", "est_s");
    double total = 0;
    for (const Point* p : mine) {
      const PointSetup s = setup_of(p->values);
      const int runs = spec.repeats + (spec.cold ? 0 : spec.warmup);
      const double est = estimate_point_s(shape, s, gbs, runs, accuracy_tokens);
      total += est;
      std::printf("%6d", p->index);
      for (int a : vary) std::printf("  %14s", axis_value_text(p->values[size_t(a)]).c_str());
      std::printf("  %10.2f\n", est);
    }
    std::printf("estimated %.0f s of engine time (DRAM read %.1f GB/s measured now, weights in RAM; streamed io and "
                "model generation add to it)\n",
                total, gbs);
    return 0;
  }

  // Everything that can fail on bad input fails before any work.
  check_output_writable(output);
  check_peers_and_caps(spec, mine);
  std::optional<perfmodel::HardwareProfile> hardware;
  bool refresh = false;
  ojson refreshed = ojson::array();  // the rates re-measured before each point
  if (!opt.hardware.empty() && opt.hardware != "calibrate") hardware = sweep_hardware(opt.hardware, {}, 0);
  ResultsFile file = opt.resume ? ResultsFile::resume(output, spec) : ResultsFile::create(output, spec, opt.overwrite);
  const std::set<std::pair<int, int>> done = file.done();
  struct Todo {
    const Point* point;
    std::vector<int> repeats;
  };
  std::vector<Todo> todo;
  size_t n_runs = 0;
  for (const Point* p : mine) {
    Todo t{p, {}};
    for (int r = 0; r < spec.repeats; ++r)
      if (!done.count({p->index, r})) t.repeats.push_back(r);
    n_runs += t.repeats.size();
    if (!t.repeats.empty()) todo.push_back(std::move(t));
  }
  if (opt.resume)
    std::fprintf(stderr, "sweep: %s holds %zu rows; %zu of %zu (point, repeat) runs left in this shard\n",
                 output.c_str(), done.size(), n_runs, mine.size() * size_t(spec.repeats));

  int failures = 0;
  double engine_s = 0, prepare_s = 0;
  if (!todo.empty()) {
    const DiskBandwidth disk = measure_raw_disk(output.has_parent_path() ? output.parent_path() : ".", opt.disk_probe_mb);
    // A profile calibrated now is also kept current: rates are re-measured before each point.
    refresh = opt.hardware == "calibrate";
    if (opt.hardware == "calibrate") {
      int threads = 1;
      for (const Todo& t : todo) threads = std::max(threads, setup_of(t.point->values).engine.threads);
      hardware = sweep_hardware(opt.hardware, cache_dir, threads);
    }
    const HostInfo host = host_info();
    const BuildInfo build = build_info();
    ojson attrs = {{"started_utc", utc_now()},
                   {"command", opt.command_line},
                   {"shard", std::to_string(opt.shard_index) + "/" + std::to_string(opt.shard_count)},
                   {"resumed", opt.resume},
                   {"spec_hash", spec.hash},
                   {"spec_json", spec.resolved.dump(2)},
                   {"git_commit", build.git_commit},
                   {"git_dirty", build.git_dirty},
                   {"build_type", build.build_type},
                   {"moelab_version", build.version},
                   {"isa", std::string(quant::isa_name(quant::active_isa()))},
                   {"host_cpu", host.cpu_model},
                   {"host_cores", host.cores},
                   {"host_ram_mb", host.ram_mb},
                   {"host_kernel", host.kernel},
                   {"host_name", host.hostname},
                   {"raw_disk_mb_s", disk.mb_s},
                   {"raw_disk_method", disk.method},
                   {"model", shape.source_label},
                   {"planned_runs", n_runs}};
    if (hardware) attrs["hardware_profile"] = perfmodel::to_json(*hardware).dump(2);
    // Under Slurm (`moelab slurm`), the job, array task and node that ran this shard.
    for (const char* var : {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURMD_NODENAME"})
      if (const char* v = std::getenv(var)) attrs[std::string("slurm_") + (var + 6)] = std::string(v);
    const int run = file.add_run(attrs);

    ThreadPool gen_pool(std::max(1, int(std::thread::hardware_concurrency())));
    auto model_for = [&](const AxisValues& v) {
      return prepare_model(spec, value(v, "expert_codec").get<std::string>(), value(v, "shared_codec").get<std::string>(),
                           cache_dir, gen_pool);
    };
    // Generate and requantize every model first, so progress and ETA cover engine work only.
    const int64_t t_prepare = metrics::now_ns();
    std::map<std::pair<std::string, std::string>, fs::path> models;
    for (const Todo& t : todo)
      models[{value(t.point->values, "expert_codec").get<std::string>(),
              value(t.point->values, "shared_codec").get<std::string>()}] = model_for(t.point->values);
    model_for(spec.reference);
    // layout=packed points read <model>.moepack unless the spec names a pack: written here when missing.
    for (const Todo& t : todo) {
      const PointSetup s = setup_of(t.point->values);
      if (s.engine.layout != "packed" || !s.engine.pack.empty()) continue;
      const fs::path pack = models.at({s.expert_codec, s.shared_codec}).string() + ".moepack";
      if (fs::exists(pack)) continue;
      std::fprintf(stderr, "sweep: writing %s for the layout=packed points\n", pack.c_str());
      const auto model = model::Model::load(models.at({s.expert_codec, s.shared_codec}));
      store::write_pack(*model, pack, store::PackOptions{}, gen_pool);
    }
    prepare_s = double(metrics::now_ns() - t_prepare) * 1e-9;

    // The reference, computed once and kept in memory.
    std::unique_ptr<Reference> reference;
    std::vector<int32_t> accuracy_stream;
    if (accuracy_tokens > 0) {
      const PointSetup rs = setup_of(spec.reference);
      engine::Engine ref_engine(engine_config(rs, model_for(spec.reference), accuracy_tokens));
      accuracy_stream = workload_tokens(spec.workload, ref_engine.model(), accuracy_tokens);
      const int64_t t0 = metrics::now_ns();
      reference = std::make_unique<Reference>(compute_reference(ref_engine, accuracy_stream));
      engine_s += double(metrics::now_ns() - t0) * 1e-9;
    }

    metrics::Progress progress("sweep " + spec.name, double(n_runs), "runs");
    size_t finished = 0;
    for (const Todo& t : todo) {
      const Point& p = *t.point;
      const PointSetup setup = setup_of(p.values);
      const fs::path& model_path = models.at({setup.expert_codec, setup.shared_codec});
      const engine::EngineConfig ec = engine_config(setup, model_path, accuracy_tokens);
      std::string note = "point " + std::to_string(p.index);
      try {
        PointJob job;
        job.spec = &spec;
        job.setup = setup;
        job.engine = ec;
        job.reference = reference.get();
        job.accuracy_stream = &accuracy_stream;
        job.repeats = int(t.repeats.size());
        // Predictions need the engine in this process (not a capped child, not the peer).
        std::optional<PredictionHooks> prediction;
        if (hardware && setup.engine_kind == "moelab" && setup.mem_cap == "none") {
          prediction.emplace(*hardware, refresh, setup, p.index, t.repeats, refreshed);
          job.hooks = &*prediction;
        }
        PointOutcome outcome = run_point(job);
        engine_s += outcome.engine_s;
        const Accuracy& acc = outcome.accuracy;
        for (size_t ri = 0; ri < t.repeats.size(); ++ri) {
          TimedRun& tr = outcome.runs[ri];
          ResultRow row;
          row.run = run;
          row.point = p.index;
          row.repeat = t.repeats[ri];
          row.axes = p.values;
          row.metrics = tr.metrics;
          row.metrics.set("baseline_rss_mb", outcome.baseline_rss_mb[ri]);
          row.metrics.set("raw_disk_mb_s", disk.mb_s);
          const double read = tr.metrics.get("read_mb_s");
          if (disk.mb_s > 0 && read > 0) row.metrics.set("io_efficiency", read / disk.mb_s);
          if (outcome.has_accuracy) {
            row.metrics.set("cosine_logits", acc.cosine_logits);
            row.metrics.set("top1_agree", acc.top1_agree);
            row.metrics.set("kl_div", acc.kl_div);
            if (!acc.hidden_cosine.empty()) row.metrics.set("cosine_hidden_last", acc.hidden_cosine.back());
            row.hidden_cosine = acc.hidden_cosine;
          }
          if (outcome.capped) {
            row.metrics.set("mem_cap_mb", outcome.mem_cap_mb);
            row.metrics.set("cgroup_peak_mb", outcome.cgroup_peak_mb);
            row.metrics.set("cgroup_failcnt", outcome.cgroup_failcnt);
          }
          if (prediction && prediction->predicts(ri)) {
            try {  // a configuration the model cannot predict leaves the metrics empty, not the point failed
              set_prediction_metrics(prediction->predict(ri, row.metrics), row.metrics);
            } catch (const Error& e) {
              std::fprintf(stderr, "\nsweep: point %d: no prediction: %s\n", p.index, e.what());
            }
          }
          row.token_latency_ms = std::move(tr.token_latency_ms);
          row.spec_precision = std::move(tr.spec_precision);
          row.spec_recall = std::move(tr.spec_recall);
          file.append(row);
          ++finished;
          char buf[96];
          std::snprintf(buf, sizeof buf, "point %d repeat %d: %.1f tok/s", p.index, row.repeat,
                        row.metrics.get("decode_tok_s"));
          progress.update(double(finished), buf);
        }
      } catch (const Error& e) {
        ++failures;
        finished += t.repeats.size();
        std::fprintf(stderr, "\nsweep: point %d failed: %s\n", p.index, e.what());
        progress.update(double(finished), note + " failed");
      }
    }
    progress.finish();
    if (!refreshed.empty()) {  // beside the results: the rates each point's prediction used
      fs::path rates = output;
      rates += ".run" + std::to_string(run) + ".rates.json";
      std::ofstream(rates) << refreshed.dump(1) << "\n";
    }
  } else {
    std::fprintf(stderr, "sweep: nothing left to run in %s\n", output.c_str());
  }

  const double total_s = double(metrics::now_ns() - t_begin) * 1e-9;
  if (!opt.quiet) {
    std::fputs(summary_table(output).c_str(), stdout);
    std::fflush(stdout);
  }
  if (engine_s > 0) {
    const double harness_s = total_s - engine_s - prepare_s;
    std::fprintf(stderr,
                 "sweep: %.1f s total: %.1f s in the engine (workload, warmup, accuracy), %.1f s generating or "
                 "requantizing models, harness %.1f s (%.1f%% of the rest)\n",
                 total_s, engine_s, prepare_s, harness_s, 100.0 * harness_s / std::max(1e-9, total_s - prepare_s));
  }
  if (opt.plots && opt.shard_count == 1) {
    for (const PlotSpec& p : spec.plots) {
      const fs::path out = (output.has_parent_path() ? output.parent_path() : fs::path(".")) / p.file;
      try {
        const PlotOutcome o = draw_plot(output, p, out);
        std::fprintf(stderr, "sweep: plot %s (%zu series, %zu points%s%s)\n", out.c_str(), o.series, o.points,
                     o.note.empty() ? "" : "; ", o.note.c_str());
      } catch (const Error& e) {
        std::fprintf(stderr, "sweep: plot %s not drawn: %s\n", out.c_str(), e.what());
      }
    }
  }
  if (failures) std::fprintf(stderr, "sweep: %d point(s) failed; rerun with --resume to retry them\n", failures);
  return failures ? 1 : 0;
}

}  // namespace moelab::experiment
