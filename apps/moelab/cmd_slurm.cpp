// `moelab slurm`: one spec as a Slurm job array. Task i runs
// `moelab sweep --shard i/N --resume` into its own file; a dependent job
// (afterok) merges the shards into results/<spec>.h5. Slurm does the
// scheduling; moelab only writes the two batch scripts and calls sbatch.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "core/error.h"
#include "experiment/expand.h"
#include "experiment/results.h"
#include "experiment/spec.h"

namespace moelab::cli {

namespace fs = std::filesystem;

namespace {

// The directory of PATH holding `program`, or empty.
fs::path find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (!dir.empty() && ::access((fs::path(dir) / program).c_str(), X_OK) == 0) return fs::path(dir) / program;
  return {};
}

// Single-quoted for bash.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string sbatch_header(const SlurmOptions& o, const std::string& job_name, const fs::path& log) {
  std::string h = "#!/bin/bash\n#SBATCH --job-name=" + job_name + "\n#SBATCH --output=" + log.string() + "\n";
  if (!o.partition.empty()) h += "#SBATCH --partition=" + o.partition + "\n";
  if (!o.time.empty()) h += "#SBATCH --time=" + o.time + "\n";
  if (!o.mem.empty()) h += "#SBATCH --mem=" + o.mem + "\n";
  if (o.cpus > 0) h += "#SBATCH --cpus-per-task=" + std::to_string(o.cpus) + "\n";
  return h;
}

// Runs sbatch --parsable on a script; returns the job id it prints.
std::string submit(const fs::path& sbatch, const std::vector<std::string>& args, const fs::path& script) {
  std::string cmd = quoted(sbatch.string()) + " --parsable";
  for (const std::string& a : args) cmd.append(" ").append(quoted(a));
  cmd.append(" ").append(quoted(script.string())).append(" 2>&1");
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) throw Error("slurm: cannot run " + sbatch.string());
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (status != 0 || out.empty() || out.find_first_not_of("0123456789;") != std::string::npos)
    throw Error("slurm: sbatch " + script.string() + " failed: " + out);
  return out.substr(0, out.find(';'));  // "<id>" or "<id>;<cluster>"
}

}  // namespace

int run_slurm(const SlurmOptions& o) {
  const experiment::Spec spec = experiment::load_spec(o.spec);
  const size_t n_points = experiment::expand(spec).size();
  if (o.tasks < 1) throw Error("slurm: --tasks " + std::to_string(o.tasks) + ": need at least 1 task");
  if (size_t(o.tasks) > n_points)
    throw Error("slurm: --tasks " + std::to_string(o.tasks) + " is more than the " + std::to_string(n_points) +
                " points of " + o.spec + " (a task would have nothing to run)");
  for (int t : o.only)
    if (t < 0 || t >= o.tasks)
      throw Error("slurm: --only " + std::to_string(t) + " is not a task of 0.." + std::to_string(o.tasks - 1));
  const fs::path sbatch = find_on_path("sbatch");
  if (sbatch.empty() && !o.dry_run) throw Error("slurm: sbatch is not on PATH (is Slurm installed and loaded?)");

  const fs::path results_dir = fs::absolute(o.results_dir);
  const fs::path merged = results_dir / (spec.name + ".h5");
  const fs::path work = results_dir / "slurm" / spec.name;

  const std::string exe = fs::canonical("/proc/self/exe").string();
  const std::string spec_path = fs::absolute(o.spec).string();
  const std::string n = std::to_string(o.tasks);
  const std::string shard_prefix = (results_dir / "shards" / (spec.name + ".shard-")).string();
  const std::string shard_suffix = "-of-" + n + ".h5";
  auto shard_file = [&](int task) { return shard_prefix + std::to_string(task) + shard_suffix; };

  // Task script: the array index picks the shard; --resume makes a resubmitted task skip finished points.
  std::string array_script = sbatch_header(o, "moelab-" + spec.name, work / "task-%A_%a.out");
  array_script += "#SBATCH --array=0-" + std::to_string(o.tasks - 1) + "\nset -euo pipefail\n" +
                  "exec " + quoted(exe) + " sweep " + quoted(spec_path) + " --shard \"$SLURM_ARRAY_TASK_ID/" + n +
                  "\" --resume -o " + quoted(shard_prefix) + "\"$SLURM_ARRAY_TASK_ID\"" + quoted(shard_suffix) + "\n";
  std::string merge_script = sbatch_header(o, "moelab-" + spec.name + "-merge", work / "merge-%j.out");
  merge_script.append("set -euo pipefail\nexec ").append(quoted(exe)).append(" merge");
  for (int t = 0; t < o.tasks; ++t) merge_script.append(" ").append(quoted(shard_file(t)));
  merge_script.append(" -o ").append(quoted(merged.string())).append("\n");

  const fs::path array_path = work / "array.sbatch", merge_path = work / "merge.sbatch";
  if (o.dry_run) {
    std::printf("# %s: %zu points in %d tasks; would submit:\n# --- %s\n%s# --- %s (--dependency=afterok:<array job>)\n%s",
                o.spec.c_str(), n_points, o.tasks, array_path.c_str(), array_script.c_str(), merge_path.c_str(),
                merge_script.c_str());
    return 0;
  }
  experiment::check_output_writable(merged);  // unwritable folder: clear error, nothing submitted
  std::error_code ec;
  for (const fs::path& dir : {work, results_dir / "shards"})
    if (fs::create_directories(dir, ec); ec) throw Error("slurm: cannot create " + dir.string() + ": " + ec.message());
  std::ofstream(array_path) << array_script;
  std::ofstream(merge_path) << merge_script;
  if (!std::ofstream(array_path, std::ios::app) || !std::ofstream(merge_path, std::ios::app))
    throw Error("slurm: cannot write the batch scripts in " + work.string());

  std::vector<std::string> array_args;
  if (!o.only.empty()) {  // resubmit chosen tasks only (their shards resume)
    std::string list;
    for (int t : o.only) list.append(list.empty() ? "" : ",").append(std::to_string(t));
    array_args.push_back("--array=" + list);
  }
  const std::string array_job = submit(sbatch, array_args, array_path);
  const std::string merge_job = submit(sbatch, {"--dependency=afterok:" + array_job}, merge_path);
  std::printf("slurm: submitted array job %s (%s tasks) and merge job %s -> %s\n", array_job.c_str(),
              o.only.empty() ? n.c_str() : std::to_string(o.only.size()).c_str(), merge_job.c_str(), merged.c_str());
  return 0;
}

}  // namespace moelab::cli
