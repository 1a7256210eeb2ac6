#include "experiment/peer.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cmath>
#include <fstream>

#include "core/error.h"
#include "experiment/child.h"
#include "experiment/mem_cap.h"
#include "metrics/timer.h"
#include "model/loader.h"
#include "store/page_cache.h"

#ifndef MOELAB_SOURCE_DIR
#define MOELAB_SOURCE_DIR "."
#endif

namespace moelab::experiment {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kInstall = "install it with: MOELAB_PEER=1 scripts/setup.sh (builds llama-cpp-python into build/venv)";

fs::path env_or(const char* var, const fs::path& fallback) {
  const char* v = std::getenv(var);
  return v && *v ? fs::path(v) : fallback;
}

// A scratch file for one peer run, removed when done.
struct ScratchFile {
  fs::path path;
  explicit ScratchFile(const std::string& suffix) {
    static std::atomic<int> serial{0};
    path = fs::temp_directory_path() /
           ("moelab-peer-" + std::to_string(::getpid()) + "-" + std::to_string(serial++) + suffix);
  }
  ~ScratchFile() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

double number_of(const json& j) { return j.is_number() ? j.get<double>() : std::nan(""); }

}  // namespace

fs::path peer_python() { return env_or("MOELAB_PEER_PYTHON", fs::path(MOELAB_SOURCE_DIR) / "build/venv/bin/python"); }
fs::path peer_script() {
  return env_or("MOELAB_PEER_SCRIPT", fs::path(MOELAB_SOURCE_DIR) / "scripts/peer_llamacpp.py");
}

std::string llamacpp_unavailable() {
  const fs::path py = peer_python(), script = peer_script();
  if (::access(py.c_str(), X_OK) != 0)
    return "engine llama.cpp needs the Python venv at " + py.string() + " (not found); " + kInstall;
  if (!fs::exists(script)) return "engine llama.cpp needs " + script.string() + " (not found)";
  const ChildOutcome c = run_exec(nullptr, {py.string(), "-c",
                                            "import sys\ntry:\n import llama_cpp\nexcept Exception as e:\n"
                                            " print(e); sys.exit(1)"});
  if (c.exit_code != 0)
    return "engine llama.cpp: " + py.string() + " cannot import llama_cpp (" +
           (c.output.empty() ? c.failure() : c.output.substr(0, c.output.find('\n'))) + "); " + kInstall;
  return "";
}

std::string llamacpp_unsupported_axis(const AxisValues& values, std::string& why) {
  const std::string io = values[size_t(axis_index("io"))].get<std::string>();
  if (io != "resident" && io != "mmap") {
    why = "io '" + io + "' is moelab's; a llama.cpp point takes resident (llama.cpp's default: weights repacked into "
          "RAM) or mmap (no repacking: every weight read from the file mapping)";
    return "io";
  }
  // ram_budget_mb, cache and drop_pages are recorded but, as for moelab's io=resident, do not apply.
  for (const char* name : {"top_k", "spec_depth", "spec_width", "spec_pre_attention", "layout", "kv_codec", "dot_path"}) {
    const Axis& a = axis(name);
    const nlohmann::json& v = values[size_t(axis_index(name))];
    if (v != a.default_value) {
      why = std::string(name) + " " + v.dump() + " is a moelab setting; a llama.cpp point needs the default " +
            a.default_value.dump() + " (zip engine with it, or exclude the combination)";
      return name;
    }
  }
  return "";
}

PointOutcome run_llamacpp_point(const PointJob& job, MemoryCgroup* cgroup) {
  const Spec& spec = *job.spec;
  const PointSetup& s = job.setup;
  const fs::path& model = job.engine.model;
  std::vector<int32_t> stream;
  {
    const auto m = model::Model::load(model);  // the same token ids a moelab point would feed
    stream = workload_tokens(spec.workload, *m, s.context_tokens + s.prompt_tokens);
  }
  if (cgroup) store::drop_file_pages(model);  // the header pages just read must be charged inside the cap too

  ScratchFile request(".json"), logits(".logits.f32");
  json req = {{"model", model.string()},
              {"threads", job.engine.threads},
              {"n_ctx", job.engine.n_ctx},
              {"n_batch", job.engine.n_batch},
              {"use_mmap", true},
              {"repack", s.engine.io == "resident"},
              {"stream", stream},
              {"context_tokens", s.context_tokens},
              {"prompt_tokens", s.prompt_tokens},
              {"decode_tokens", s.decode_tokens},
              {"repeats", job.repeats},
              {"warmup", spec.warmup},
              {"cold", spec.cold},
              {"accuracy_stream", job.reference ? *job.accuracy_stream : std::vector<int32_t>{}},
              {"logits_out", logits.path.string()}};
  std::ofstream(request.path) << req.dump();

  const int64_t t0 = metrics::now_ns();
  const ChildOutcome c = run_exec(cgroup, {peer_python().string(), peer_script().string(), request.path.string()});
  PointOutcome out;
  out.engine_s = double(metrics::now_ns() - t0) * 1e-9;
  if (!c.failure().empty()) {
    std::string what = "llama.cpp peer (" + peer_script().string() + ") " + c.failure();
    if (c.exit_code == 4) what += "; " + std::string(kInstall);
    if (cgroup) what += " under mem_cap " + s.mem_cap;
    throw Error(what + " (its messages are on stderr above)");
  }
  json res;
  try {
    res = json::parse(c.output);
    for (const json& r : res.at("runs")) {
      TimedRun t;
      MetricValues& m = t.metrics;
      for (const char* name : {"decode_tok_s", "prefill_tok_s", "ttft_ms", "peak_rss_mb", "rss_anon_mb", "rss_file_mb",
                               "wall_s"})
        m.set(name, number_of(r.at(name)));
      for (const json& x : r.at("token_latency_ms")) t.token_latency_ms.push_back(number_of(x));
      m.set("latency_p50_ms", nearest_rank_percentile(t.token_latency_ms, 0.50));
      m.set("latency_p99_ms", nearest_rank_percentile(t.token_latency_ms, 0.99));
      t.engine_s = number_of(r.at("wall_s"));
      out.baseline_rss_mb.push_back(number_of(r.at("baseline_rss_mb")));
      out.runs.push_back(std::move(t));
    }
  } catch (const std::exception& e) {
    throw Error("llama.cpp peer: unreadable result on stdout (" + std::string(e.what()) + "): " +
                c.output.substr(0, 200));
  }
  if (int(out.runs.size()) != job.repeats)
    throw Error("llama.cpp peer: " + std::to_string(out.runs.size()) + " runs reported, " +
                std::to_string(job.repeats) + " asked");

  if (job.reference) {
    const Reference& ref = *job.reference;
    const int64_t n_vocab = res.value("n_vocab", int64_t(0));
    if (n_vocab != ref.n_vocab)
      throw Error("llama.cpp peer: vocabulary of " + std::to_string(n_vocab) + " tokens, the reference has " +
                  std::to_string(ref.n_vocab));
    std::vector<float> l(size_t(ref.n_tokens * ref.n_vocab));  // [n_tokens, n_vocab]
    std::ifstream in(logits.path, std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(l.data()), std::streamsize(l.size() * sizeof(float))))
      throw Error("llama.cpp peer: " + logits.path.string() + " holds fewer than " + std::to_string(l.size()) +
                  " logits");
    out.accuracy = compare_logits(l, ref);
    out.has_accuracy = true;
  }
  return out;
}

}  // namespace moelab::experiment
