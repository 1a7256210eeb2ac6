// Sweeps on a tiny synthetic model: the HDF5 file holds the right rows and
// h5py reads it; a sweep SIGKILLed at random moments resumes without
// repeating or dropping points; shards merge to the unsharded point set;
// plots are written; the notebook runs against a fresh result.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "../common/sweep_options.h"
#include "experiment/model_source.h"
#include "experiment/plot.h"
#include "experiment/results.h"
#include "experiment/sweep.h"
#include "harness_util.h"

extern char** environ;

namespace moelab::experiment {
namespace {

std::string smoke_spec_json(const std::string& name, const std::string& sweep, int repeats, int decode_tokens) {
  return R"({"name": ")" + name + R"(", "model": )" + test::tiny_model_json() +
         R"(, "workload": {"prompt": "the quick brown fox jumps over the lazy dog", "prompt_tokens": 8,
           "decode_tokens": )" + std::to_string(decode_tokens) + R"(, "accuracy_tokens": 8},
           "fixed": {"threads": 1}, "sweep": )" + sweep + R"(, "repeats": )" + std::to_string(repeats) +
         R"(, "warmup": 0})";
}

using test::quiet_options;

std::set<std::pair<int, int>> point_set(const ResultsTable& t) {
  std::set<std::pair<int, int>> s;
  for (size_t r = 0; r < t.n_rows; ++r)
    s.emplace(int(t.num[size_t(t.column("point"))][r]), int(t.num[size_t(t.column("repeat"))][r]));
  return s;
}

// Runs python code against a results file; returns the exit status.
int h5py_check(const std::filesystem::path& file, const std::string& code) {
  const auto script = test::temp_file("check.py");
  std::ofstream(script) << "import sys, h5py\nf = h5py.File(sys.argv[1], 'r')\n" << code << "\n";
  return test::run_command(test::venv_python().string() + " " + script.string() + " " + file.string());
}

std::filesystem::path smoke_result(const std::string& name) {
  const auto spec_path = test::write_spec(name + ".json", smoke_spec_json(name, R"({"top_k": [2, 4], "kv_codec": ["f32", "f16"]})", 2, 4));
  const Spec spec = load_spec(spec_path);
  const auto out = test::temp_file(name + ".h5");
  EXPECT_EQ(run_sweep(spec, quiet_options(out)), 0);
  return out;
}

TEST(Sweep, SmokeWritesHdf5ThatH5pyReads) {
  const auto out = smoke_result("smoke");
  const ResultsTable t = read_points(out);
  ASSERT_EQ(t.n_rows, 8u);  // 4 points x 2 repeats
  EXPECT_EQ(point_set(t).size(), 8u);
  for (const Axis& a : axes()) EXPECT_GE(t.column(a.name), 0) << a.name;
  for (const Metric& m : metrics()) EXPECT_GE(t.column(m.name), 0) << m.name;
  const int k = t.column("top_k"), cos = t.column("cosine_logits"), tok = t.column("decode_tok_s");
  for (size_t r = 0; r < t.n_rows; ++r) {
    EXPECT_GT(t.num[size_t(tok)][r], 0);
    // Full top-K on the quantized path stays close to the exact reference; top-2 of 4 drifts further.
    if (t.num[size_t(k)][r] == 4) {
      EXPECT_GT(t.num[size_t(cos)][r], 0.99);
    }
  }
  double cos2 = 0, cos4 = 0;
  for (size_t r = 0; r < t.n_rows; ++r) (t.num[size_t(k)][r] == 2 ? cos2 : cos4) += t.num[size_t(cos)][r];
  EXPECT_LT(cos2, cos4);
  EXPECT_EQ(read_raw(out, 0, 0, "token_latency_ms").size(), 4u);
  EXPECT_EQ(read_raw(out, 3, 1, "hidden_cosine").size(), 2u);  // one per layer
  EXPECT_EQ(h5py_check(out, R"(
p = f['points'][:]
assert len(p) == 8, len(p)
assert p.dtype.names[:3] == ('run', 'point', 'repeat'), p.dtype.names
assert set(p['kv_codec']) == {b'f32', b'f16'}, set(p['kv_codec'])
assert (p['decode_tok_s'] > 0).all()
assert len(f['raw/0/0/token_latency_ms'][:]) == 4
run = f['runs/0']
for key in ('spec_json', 'spec_hash', 'git_commit', 'build_type', 'moelab_version', 'host_cpu', 'host_cores',
            'host_ram_mb', 'host_kernel', 'raw_disk_mb_s'):
    assert key in run.attrs, key
assert f.attrs['spec_hash'] == run.attrs['spec_hash']
)"),
            0);
}

TEST(Sweep, ResumeAfterSigkillAtRandomMomentsKeepsEveryPointOnce) {
  const auto spec_path = test::write_spec(
      "killed.json", smoke_spec_json("killed", R"({"top_k": [1, 2, 3, 4], "kv_codec": ["f32", "f16"]})", 2, 16));
  const auto out = test::temp_file("killed.h5");
  const std::string bin = test::moelab_binary().string();
  auto spawn_sweep = [&](const std::filesystem::path& output) {
    std::vector<std::string> args = {bin, "sweep", spec_path.string(), "-o", output.string(), "--resume",
                                     "--disk-probe-mb", "1", "--no-plots"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    EXPECT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
  };
  // Generate the model first so the kills land in the sweep itself.
  {
    const Spec spec = load_spec(spec_path);
    ThreadPool pool(1);
    prepare_model(spec, "source", "source", model_cache_dir(), pool);
  }

  // One uninterrupted sweep first: the kills below land at random moments within its duration,
  // however fast this machine runs it.
  const auto timing_out = test::temp_file("killed_timing.h5");
  std::filesystem::remove(timing_out);
  const auto t0 = std::chrono::steady_clock::now();
  {
    const pid_t pid = spawn_sweep(timing_out);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const int full_ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  std::filesystem::remove(timing_out);

  std::mt19937 rng(12345);
  std::map<std::pair<int, int>, double> seen;  // (point, repeat) -> decode_tok_s as first recorded
  int kills_with_file = 0, partial = 0;
  for (int kill_round = 0; kill_round < 4; ++kill_round) {
    const pid_t pid = spawn_sweep(out);
    // The first kill lands 20-60% into a sweep, later ones (on what is left) in its first half.
    const int delay_ms = kill_round == 0 ? std::uniform_int_distribution<int>(full_ms / 5, full_ms * 3 / 5)(rng)
                                         : std::uniform_int_distribution<int>(10, std::max(20, full_ms / 2))(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!std::filesystem::exists(out)) continue;
    ++kills_with_file;
    ASSERT_EQ(h5py_check(out, "p = f['points'][:]\nassert len(set(zip(p['point'], p['repeat']))) == len(p)"), 0)
        << "h5py cannot read the file after kill " << kill_round;
    const ResultsTable t = read_points(out);
    EXPECT_EQ(point_set(t).size(), t.n_rows) << "a (point, repeat) appears twice after kill " << kill_round;
    partial += t.n_rows < 16;
    std::fprintf(stderr, "kill %d: %zu rows\n", kill_round, t.n_rows);
    for (size_t r = 0; r < t.n_rows; ++r) {
      const std::pair<int, int> key{int(t.num[size_t(t.column("point"))][r]), int(t.num[size_t(t.column("repeat"))][r])};
      const double v = t.num[size_t(t.column("decode_tok_s"))][r];
      const auto [it, fresh] = seen.emplace(key, v);
      EXPECT_EQ(it->second, v) << "point " << key.first << " repeat " << key.second << " changed after a kill";
    }
  }
  EXPECT_GE(kills_with_file, 1);
  EXPECT_GE(partial, 1) << "no kill landed mid-sweep";
  // Finish without a kill.
  const pid_t pid = spawn_sweep(out);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const ResultsTable t = read_points(out);
  EXPECT_EQ(t.n_rows, 16u);
  EXPECT_EQ(point_set(t).size(), 16u);
  for (size_t r = 0; r < t.n_rows; ++r) {
    const std::pair<int, int> key{int(t.num[size_t(t.column("point"))][r]), int(t.num[size_t(t.column("repeat"))][r])};
    if (seen.count(key)) {
      EXPECT_EQ(seen[key], t.num[size_t(t.column("decode_tok_s"))][r]);
    }
  }
}

TEST(Sweep, ShardsMergeToTheUnshardedPointSet) {
  const auto spec_path = test::write_spec(
      "sharded.json", smoke_spec_json("sharded", R"({"top_k": [1, 2, 4], "kv_codec": ["f32", "f16"]})", 1, 2));
  const Spec spec = load_spec(spec_path);
  const auto whole = test::temp_file("whole.h5"), a = test::temp_file("shard0.h5"), b = test::temp_file("shard1.h5"),
             merged = test::temp_file("merged.h5");
  ASSERT_EQ(run_sweep(spec, quiet_options(whole)), 0);
  SweepOptions o0 = quiet_options(a), o1 = quiet_options(b);
  o0.shard_index = 0, o0.shard_count = 2;
  o1.shard_index = 1, o1.shard_count = 2;
  ASSERT_EQ(run_sweep(spec, o0), 0);
  ASSERT_EQ(run_sweep(spec, o1), 0);
  EXPECT_EQ(read_points(a).n_rows, 3u);
  const MergeReport rep = merge_results({a, b}, merged, false);
  EXPECT_EQ(rep.rows, 6u);
  EXPECT_EQ(rep.runs, 2u);
  const ResultsTable tw = read_points(whole), tm = read_points(merged);
  EXPECT_EQ(point_set(tw), point_set(tm));
  // Same axis values for the same point index.
  std::map<int, std::string> axes_w, axes_m;
  for (const auto& [t, m] : {std::pair{&tw, &axes_w}, std::pair{&tm, &axes_m}})
    for (size_t r = 0; r < t->n_rows; ++r)
      (*m)[int(t->num[size_t(t->column("point"))][r])] = t->cell(t->column("top_k"), r) + "/" + t->cell(t->column("kv_codec"), r);
  EXPECT_EQ(axes_w, axes_m);
  EXPECT_EQ(read_raw(merged, 5, 0, "token_latency_ms").size(), 2u);
  // The same shard twice: refused, or deduplicated on request.
  EXPECT_THROW(merge_results({a, a}, test::temp_file("dup.h5"), false), SpecError);
  EXPECT_EQ(merge_results({a, a}, test::temp_file("dup.h5"), true).duplicates_dropped, 3u);
  // Another spec: refused.
  const Spec other = load_spec(test::write_spec("other.json", smoke_spec_json("other", R"({"top_k": [1, 2]})", 1, 2)));
  const auto c = test::temp_file("other.h5");
  ASSERT_EQ(run_sweep(other, quiet_options(c)), 0);
  EXPECT_THROW(merge_results({a, c}, test::temp_file("bad.h5"), false), SpecError);
  // Resume into a file of another spec: refused before any work.
  SweepOptions ro = quiet_options(c);
  ro.overwrite = false, ro.resume = true;
  EXPECT_THROW(run_sweep(spec, ro), SpecError);
}

TEST(Plot, WritesNonEmptyPngAndSvg) {
  const auto out = smoke_result("plotted");
  PlotSpec p;
  p.x = "top_k", p.y = "decode_tok_s", p.by = "kv_codec";
  const auto png = test::temp_file("line.png"), svg = test::temp_file("bar.svg");
  const PlotOutcome o = draw_plot(out, p, png);
  EXPECT_EQ(o.series, 2u);
  EXPECT_EQ(o.points, 4u);
  std::ifstream in(png, std::ios::binary);
  char magic[8] = {0};
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  EXPECT_GT(std::filesystem::file_size(png), 2000u);
  p.kind = "bar";
  p.x = "kv_codec", p.by = "", p.where = {{"top_k", "4"}};
  draw_plot(out, p, svg);
  std::ifstream s(svg);
  const std::string text((std::istreambuf_iterator<char>(s)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("decode_tok_s (tok/s)"), std::string::npos) << "y label carries the unit";
  p.where = {{"top_k", "3"}};  // no such rows
  EXPECT_THROW(draw_plot(out, p, svg), Error);
}

TEST(Notebook, ExploreRunsAgainstAFreshResult) {
  const auto out = smoke_result("notebook");
  const auto nb = std::filesystem::path(MOELAB_SOURCE_DIR) / "notebooks" / "explore.ipynb";
  const auto runner = std::filesystem::path(MOELAB_SOURCE_DIR) / "scripts" / "run_notebook.py";
  ASSERT_TRUE(std::filesystem::exists(test::venv_python())) << "run scripts/setup.sh (it installs the notebook deps)";
  const auto executed = test::temp_file("explore.out.ipynb");
  EXPECT_EQ(test::run_command(test::venv_python().string() + " " + runner.string() + " " + nb.string() + " " +
                              out.string() + " " + executed.string()),
            0);
  EXPECT_TRUE(std::filesystem::exists(executed));
}

}  // namespace
}  // namespace moelab::experiment
