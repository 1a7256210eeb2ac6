// `moelab slurm` against a real single-node Slurm (scripts/slurm-local.sh):
// a spec submitted as a 2-task array plus a dependent merge job yields exactly
// the points of a single-machine run, each once; a task killed mid-run and
// resubmitted resumes its shard without duplicates; bad input submits nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "experiment/results.h"
#include "experiment/sweep.h"
#include "harness_util.h"

extern char** environ;

namespace moelab::experiment {
namespace {

namespace fs = std::filesystem;

const std::string kScript = std::string(MOELAB_SOURCE_DIR) + "/scripts/slurm-local.sh";

std::string spec_json() {
  return R"({"name": "slurm_smoke", "model": )" + test::tiny_model_json() +
         R"(, "workload": {"prompt": "the quick brown fox", "prompt_tokens": 8, "decode_tokens": 4, "accuracy_tokens": 4},
           "fixed": {"threads": 1}, "sweep": {"top_k": [1, 2, 4], "kv_codec": ["f32", "f16"]}, "repeats": 1, "warmup": 0})";
}

// (point, repeat) -> the row's axis values, for comparing point sets.
std::map<std::pair<int, int>, std::string> rows_of(const fs::path& file) {
  const ResultsTable t = read_points(file);
  std::map<std::pair<int, int>, std::string> rows;
  for (size_t r = 0; r < t.n_rows; ++r) {
    const std::pair key{int(t.num[size_t(t.column("point"))][r]), int(t.num[size_t(t.column("repeat"))][r])};
    EXPECT_TRUE(rows.emplace(key, t.cell(t.column("top_k"), r) + "/" + t.cell(t.column("kv_codec"), r)).second)
        << file << " holds point " << key.first << " repeat " << key.second << " twice";
  }
  return rows;
}

// Waits (bounded) until no job of ours is queued or running.
bool wait_for_queue_empty(int seconds) {
  for (int i = 0; i < seconds * 2; ++i) {
    if (test::run_command("test -z \"$(squeue -h -n moelab-slurm_smoke,moelab-slurm_smoke-merge 2>/dev/null)\"") == 0)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return false;
}

class LocalSlurm : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_file("slurm");
    fs::create_directories(dir_);
    ::setenv("MOELAB_SLURM_DIR", (dir_ / "daemon").c_str(), 1);
    ::setenv("MOELAB_MODEL_CACHE", (dir_ / "models").c_str(), 1);
    if (test::run_command(kScript + " start > " + (dir_ / "start.log").string() + " 2>&1") != 0) {
      std::ifstream in(dir_ / "start.log");
      GTEST_SKIP() << "local Slurm could not start (scripts/slurm-local.sh start; needs root and the slurm-wlm and "
                      "munge packages): "
                   << std::string(std::istreambuf_iterator<char>(in), {});
    }
    started_ = true;
    ::setenv("SLURM_CONF", (dir_ / "daemon" / "slurm.conf").c_str(), 1);
  }
  void TearDown() override {
    if (started_) test::run_command(kScript + " stop > /dev/null 2>&1");
  }
  int slurm(const std::string& args) {
    return test::run_command(test::moelab_binary().string() + " slurm " + args + " > " + (dir_ / "slurm.log").string() +
                             " 2>&1");
  }
  fs::path dir_;
  bool started_ = false;
};

TEST_F(LocalSlurm, ArrayPlusMergeEqualsASingleMachineRunAndAResubmittedTaskResumes) {
  const fs::path spec = test::write_spec("slurm_smoke.json", spec_json());
  const fs::path results = dir_ / "results";
  // Single-machine reference.
  SweepOptions o;
  o.output = dir_ / "whole.h5";
  o.quiet = true;
  o.disk_probe_mb = 1;
  ASSERT_EQ(run_sweep(load_spec(spec), o), 0);
  const auto whole = rows_of(o.output);
  ASSERT_EQ(whole.size(), 6u);

  ASSERT_EQ(slurm(spec.string() + " --tasks 2 --results-dir " + results.string()), 0);
  ASSERT_TRUE(wait_for_queue_empty(240)) << "Slurm jobs did not finish within 240 s";
  const fs::path merged = results / "slurm_smoke.h5";
  ASSERT_TRUE(fs::exists(merged)) << "the merge job wrote nothing; see " << (results / "slurm").string();
  EXPECT_EQ(rows_of(merged), whole);
  EXPECT_EQ(read_points(results / "shards" / "slurm_smoke.shard-0-of-2.h5").n_rows, 3u);

  // Kill task 0 mid-run (run its shard by hand, SIGKILL once a row is in), then resubmit it alone.
  const fs::path shard0 = results / "shards" / "slurm_smoke.shard-0-of-2.h5";
  fs::remove(shard0);
  fs::remove(merged);
  const std::string exe = test::moelab_binary().string(), shard = shard0.string(), spec_s = spec.string();
  const char* argv[] = {exe.c_str(), "sweep", spec_s.c_str(), "--shard", "0/2", "--resume", "--no-plots",
                        "-o", shard.c_str(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, exe.c_str(), nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  bool killed_mid_run = false;
  for (int i = 0; i < 600; ++i) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) break;  // finished before we could kill it
    if (fs::exists(shard0)) {
      try {
        if (read_points(shard0).n_rows >= 1) {
          ::kill(pid, SIGKILL);
          ::waitpid(pid, &status, 0);
          killed_mid_run = true;
          break;
        }
      } catch (const Error&) {  // being replaced right now: look again
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const size_t rows_before = read_points(shard0).n_rows;
  EXPECT_GE(rows_before, 1u);
  ASSERT_EQ(slurm(spec.string() + " --tasks 2 --only 0 --results-dir " + results.string()), 0);
  ASSERT_TRUE(wait_for_queue_empty(240));
  EXPECT_EQ(read_points(shard0).n_rows, 3u) << "resumed shard must hold its 3 points once each";
  EXPECT_EQ(rows_of(merged), whole);
  RecordProperty("killed_mid_run", killed_mid_run ? "yes" : "no (the shard finished first)");
  RecordProperty("rows_before_resubmit", int(rows_before));
}

TEST(SlurmCli, BadInputSubmitsNothing) {
  const fs::path spec = test::write_spec("slurm_bad.json", spec_json());
  const std::string moelab = test::moelab_binary().string() + " slurm " + spec.string();
  const fs::path results = test::temp_file("slurm-bad-results");
  EXPECT_NE(test::run_command(moelab + " --tasks 0 --results-dir " + results.string() + " 2>/dev/null"), 0);
  EXPECT_NE(test::run_command(moelab + " --tasks 7 --results-dir " + results.string() + " 2>/dev/null"), 0);
  EXPECT_NE(test::run_command("PATH=/nonexistent " + moelab + " --tasks 2 --results-dir " + results.string() +
                              " 2>/dev/null"),
            0);
  EXPECT_NE(test::run_command(moelab + " --tasks 2 --results-dir /proc/no-such-dir 2>/dev/null"), 0);
  EXPECT_FALSE(fs::exists(results / "slurm")) << "nothing may be written or submitted on bad input";
  // --dry-run prints both scripts and submits nothing.
  EXPECT_EQ(test::run_command(moelab + " --tasks 2 --dry-run --results-dir " + results.string() +
                              " | grep -q 'dependency=afterok'"),
            0);
}

}  // namespace
}  // namespace moelab::experiment
