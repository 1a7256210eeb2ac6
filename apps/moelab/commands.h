// Subcommand entry points. Each takes a plain options struct filled by main.cpp
// (the only file that sees CLI11) and returns the process exit code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace moelab::cli {

struct CodecsOptions {
  int64_t rows = 4096, cols = 4096;
  int threads = 2;
  std::vector<std::string> names;
  uint64_t seed = 1;
  bool no_speed = false;
  std::string markdown_path;
};
int run_codecs(const CodecsOptions& opts);

struct GenOptions {
  std::string preset;
  int64_t layers = 0, experts = 0, vocab = 0;
  std::string codec = "q4_k";
  uint64_t seed = 1;
  std::string dist = "gaussian";  // gaussian | heavy
  double router_skew = 0.5;
  bool tied = false;
  int threads = 2;
  std::string output;
};
int run_gen(const GenOptions& opts);

struct InspectOptions {
  std::string model;
  int64_t top_k = 0;
  bool tensors = false;
};
int run_inspect(const InspectOptions& opts);

struct RunOptions {
  engine::EngineConfig engine;  // model, threads, context, KV codec, expert streaming (the flags bind to it)
  std::string prompt, prompt_file;
  int64_t n_predict = 64;
  float temperature = 0.0f, top_p = 1.0f;
  int sample_top_k = 0;
  uint64_t seed = 0;
  std::string session;  // KV session file: loaded when it exists, saved at the end
  bool ignore_eos = false;     // keep decoding past end-of-generation tokens (soak runs)
  std::string rss_log;         // CSV of RSS every rss_every decoded tokens
  int64_t rss_every = 100;
};
int run_run(const RunOptions& opts);

struct PackOptions {
  std::string model, output, codec;
  uint64_t align = 4096;
  int threads = 2;
};
int run_pack(const PackOptions& opts);

struct IobenchOptions {
  std::string model, pack;
  double budget_mb = 512;
  int64_t tokens = 8;
  int threads = 2;
  int raw_threads = 8;
  double raw_seconds = 2.0;
  std::vector<std::string> strategies;
  std::string spec_io = "uring<32>";  // strategy of the speculation rows
  std::vector<int> spec_depths{0, 1, 2};  // speculation rows (cache lru; 0 = no speculation); empty = none
  std::string markdown_path;
};
int run_iobench(const IobenchOptions& opts);

struct KvbenchOptions {
  std::string model;
  int64_t n_ctx = 2048, n_batch = 256;
  int threads = 2;
  std::string codecs = "f32,f16,q8_0,q4_0,tq3,tq3m,tq3/q4_0";
  std::string text = "tests/fixtures/kvbench_text.txt";  // comma-separated files, repeated to --ctx tokens
  std::string sessions = "128,2048,8192";  // session sizes timed (those <= --ctx)
  std::string session_dir = "/tmp";
  std::string markdown;  // append the tables to this file
  bool no_accuracy = false;
  bool exact = false;
};
int run_kvbench(const KvbenchOptions& opts);

struct QuantizeOptions {
  std::string input, output, preset;
  std::string imatrix;  // llama.cpp imatrix GGUF (<tensor>.in_sum2 / .counts)
  int threads = 2;
  bool list = false;
};
int run_quantize(const QuantizeOptions& opts);

struct RegressOptions {
  std::string baseline, current;
  std::string tolerances;  // JSON file; empty = defaults
  std::string markdown_path;
};
int run_regress(const RegressOptions& opts);

struct SweepCliOptions {
  std::string spec, output, shard, model_cache;
  bool resume = false, overwrite = false, dry_run = false, no_plots = false;
  bool help_axes = false, markdown = false, print_schema = false;
  int disk_probe_mb = 64;
  std::string command_line;
  std::string hardware;  // profile for predicted_* metrics: "calibrate", a file or an id ("" = none)
};
int run_sweep_command(const SweepCliOptions& opts);

struct MergeOptions {
  std::vector<std::string> inputs;
  std::string output;
  bool dedupe = false;
};
int run_merge(const MergeOptions& opts);

struct PlotOptions {
  std::string results, x, y, by, kind = "line", output, title;
  std::vector<std::string> where;
};
int run_plot(const PlotOptions& opts);

struct CalibrateOptions {
  std::string output;              // default datasets/hardware/this-machine.json
  std::string scratch_dir = "/tmp";
  int64_t file_mb = 1024;
  double seconds_per_point = 0.25;
  int threads = 0;
  std::string id = "this-machine";
  std::string note;
};
int run_calibrate(const CalibrateOptions& opts);

struct ReproduceOptions {
  std::vector<std::string> published;  // datasets/published/<file>.json, one or more
  std::string output;              // Markdown table (default: stdout only)
  std::string json_output;         // rows as JSON
  std::string hardware_dir;        // default datasets/hardware
  std::string trace;               // recorded routing trace (applies to rows whose shape it matches)
  std::vector<std::string> results;  // sweep results (.h5) with predictions: measured vs predicted per point
};
int run_reproduce(const ReproduceOptions& opts);

struct SlurmOptions {
  std::string spec;
  int tasks = 0;
  std::string partition, time, mem;
  int cpus = 0;
  std::string results_dir = "results";
  std::vector<int> only;  // resubmit these task indices (their shards resume)
  bool dry_run = false;
};
int run_slurm(const SlurmOptions& opts);

}  // namespace moelab::cli
