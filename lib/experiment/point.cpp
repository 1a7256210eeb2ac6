#include "experiment/point.h"

#include <cmath>
#include <limits>
#include <memory>

#include "core/error.h"
#include "experiment/child.h"
#include "experiment/mem_cap.h"
#include "experiment/peer.h"
#include "metrics/rss.h"
#include "metrics/timer.h"
#include "store/page_cache.h"

namespace moelab::experiment {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double number_of(const json& j) { return j.is_number() ? j.get<double>() : std::numeric_limits<double>::quiet_NaN(); }

json numbers(const std::vector<double>& v) {
  json a = json::array();
  for (double x : v) a.push_back(number(x));
  return a;
}
std::vector<double> numbers_of(const json& a) {
  std::vector<double> v;
  for (const json& x : a) v.push_back(number_of(x));
  return v;
}

}  // namespace

PointOutcome run_moelab_point(const PointJob& job) {
  const Spec& spec = *job.spec;
  const PointSetup& setup = job.setup;
  PointOutcome out;
  if (job.reference) {
    engine::Engine e(job.engine);
    const int64_t t0 = metrics::now_ns();
    out.accuracy = measure_accuracy(e, *job.accuracy_stream, *job.reference);
    out.has_accuracy = true;
    out.engine_s += double(metrics::now_ns() - t0) * 1e-9;
  }
  std::unique_ptr<engine::Engine> engine;
  std::vector<int32_t> stream;
  double baseline_rss_mb = 0;  // RSS when the peak was reset: harness, reference, before the engine
  auto run = [&](engine::Engine& e, bool timed) {
    if (job.hooks) job.hooks->before_run(e, timed);
    TimedRun tr = run_timed(e, stream, setup.context_tokens, setup.prompt_tokens, setup.decode_tokens);
    if (job.hooks) job.hooks->after_run(e, timed);
    return tr;
  };
  for (int r = 0; r < job.repeats; ++r) {
    if (!engine || spec.cold) {
      engine.reset();
      if (spec.cold) store::drop_file_pages(job.engine.model);
      metrics::reset_peak_rss();
      baseline_rss_mb = metrics::read_rss().rss_mb;
      engine = std::make_unique<engine::Engine>(job.engine);
      if (job.hooks) job.hooks->engine_created(*engine);
      if (stream.empty())
        stream = workload_tokens(spec.workload, engine->model(), setup.context_tokens + setup.prompt_tokens);
      if (!spec.cold)
        for (int w = 0; w < spec.warmup; ++w) out.engine_s += run(*engine, false).engine_s;
    }
    TimedRun tr = run(*engine, true);
    out.engine_s += tr.engine_s;
    out.runs.push_back(std::move(tr));
    out.baseline_rss_mb.push_back(baseline_rss_mb);
  }
  return out;
}

PointOutcome run_point(const PointJob& job) {
  const fs::path& model = job.engine.model;
  std::error_code ec;
  const uint64_t model_bytes = fs::file_size(model, ec);
  const uint64_t cap = mem_cap_bytes(job.setup.mem_cap, ec ? 0 : model_bytes);
  std::unique_ptr<MemoryCgroup> cgroup;
  if (cap) {
    store::drop_file_pages(model);
    cgroup = std::make_unique<MemoryCgroup>(cap);
  }
  PointOutcome out;
  if (job.setup.engine_kind == "llama.cpp") {
    out = run_llamacpp_point(job, cgroup.get());
  } else if (cgroup) {
    // A forked child enters the cgroup rather than the sweep process moving in
    // and out of it: only what the point allocates and reads is charged (the
    // harness, its reference logits and the HDF5 file stay charged to the
    // parent, shared copy-on-write), and when the cap is too small the
    // cgroup's OOM killer ends the child and the sweep records a failed point
    // instead of dying. No CLI entry point is needed, unlike exec'ing `moelab`.
    PointJob child_job = job;
    child_job.hooks = nullptr;  // what they record would stay in the child
    const ChildOutcome c = run_forked(cgroup.get(), [&] { return point_outcome_json(run_moelab_point(child_job)); });
    if (!c.failure().empty())
      throw Error("moelab under mem_cap " + job.setup.mem_cap + " (" + std::to_string(cap >> 20) + " MiB): " +
                  c.failure() + (c.output.empty() ? "" : ": " + c.output));
    out = point_outcome_from_json(c.output);
  } else {
    out = run_moelab_point(job);
  }
  if (cgroup) {
    out.capped = true;
    out.mem_cap_mb = double(cap) / kMiB;
    out.cgroup_peak_mb = double(cgroup->max_usage_bytes()) / kMiB;
    out.cgroup_failcnt = double(cgroup->failcnt());
  }
  return out;
}

std::string point_outcome_json(const PointOutcome& o) {
  json j;
  if (o.has_accuracy)
    j["accuracy"] = {{"cosine_logits", number(o.accuracy.cosine_logits)},
                     {"top1_agree", number(o.accuracy.top1_agree)},
                     {"kl_div", number(o.accuracy.kl_div)},
                     {"hidden_cosine", numbers(o.accuracy.hidden_cosine)}};
  j["runs"] = json::array();
  for (const TimedRun& r : o.runs)
    j["runs"].push_back({{"metrics", numbers(r.metrics.values())},
                         {"token_latency_ms", numbers(r.token_latency_ms)},
                         {"spec_precision", numbers(r.spec_precision)},
                         {"spec_recall", numbers(r.spec_recall)},
                         {"engine_s", number(r.engine_s)}});
  j["baseline_rss_mb"] = numbers(o.baseline_rss_mb);
  j["engine_s"] = number(o.engine_s);
  return j.dump();
}

PointOutcome point_outcome_from_json(const std::string& text) {
  PointOutcome o;
  try {
    const json j = json::parse(text);
    if (j.contains("accuracy")) {
      const json& a = j["accuracy"];
      o.has_accuracy = true;
      o.accuracy.cosine_logits = number_of(a.at("cosine_logits"));
      o.accuracy.top1_agree = number_of(a.at("top1_agree"));
      o.accuracy.kl_div = number_of(a.at("kl_div"));
      o.accuracy.hidden_cosine = numbers_of(a.at("hidden_cosine"));
    }
    for (const json& r : j.at("runs")) {
      TimedRun t;
      const std::vector<double> m = numbers_of(r.at("metrics"));
      if (m.size() != t.metrics.values().size()) throw Error("metric count differs");
      t.metrics.values() = m;
      t.token_latency_ms = numbers_of(r.at("token_latency_ms"));
      t.spec_precision = numbers_of(r.at("spec_precision"));
      t.spec_recall = numbers_of(r.at("spec_recall"));
      t.engine_s = number_of(r.at("engine_s"));
      o.runs.push_back(std::move(t));
    }
    o.baseline_rss_mb = numbers_of(j.at("baseline_rss_mb"));
    o.engine_s = number_of(j.at("engine_s"));
  } catch (const std::exception& e) {
    throw Error(std::string("internal: a point's child process sent an unreadable outcome: ") + e.what());
  }
  return o;
}

}  // namespace moelab::experiment
