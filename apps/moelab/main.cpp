// moelab: one CLI, thin subcommands over libmoelab. CLI11 is included here
// and in no other translation unit (it is slow to compile).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "commands.h"
#include "core/error.h"
#include "experiment/spec.h"

int main(int argc, char** argv) {
  CLI::App app{"moelab: a research harness for Mixture-of-Experts models that do not fit in memory"};
  app.require_subcommand(1);
  moelab::cli::CodecsOptions codecs_opts;
  auto* codecs = app.add_subcommand("codecs", "Table of every codec: bits/weight, overhead, error, GEMV GB/s");
  codecs->add_option("--rows", codecs_opts.rows, "Matrix rows for the error and speed measurement")->check(CLI::PositiveNumber);
  codecs->add_option("--cols", codecs_opts.cols, "Matrix columns (a multiple of 256)")->check(CLI::PositiveNumber);
  codecs->add_option("--threads", codecs_opts.threads, "Threads for the GEMV measurement")->check(CLI::PositiveNumber);
  codecs->add_option("--codecs", codecs_opts.names, "Only these codecs (default: all weight codecs)");
  codecs->add_option("--seed", codecs_opts.seed, "Random seed for the test matrices");
  codecs->add_flag("--no-speed", codecs_opts.no_speed, "Skip the GEMV timing");
  codecs->add_option("--markdown", codecs_opts.markdown_path, "Also write the table as Markdown to this file");

  moelab::cli::GenOptions gen_opts;
  auto* gen = app.add_subcommand("gen", "Write a synthetic model of a published shape as a real GGUF file");
  gen->add_option("--preset", gen_opts.preset, "Preset name (datasets/models/<name>.json) or path")->required();
  gen->add_option("--layers", gen_opts.layers, "Keep only this many layers (0 = all)")->check(CLI::NonNegativeNumber);
  gen->add_option("--experts", gen_opts.experts, "Keep only this many experts per layer (0 = all)")->check(CLI::NonNegativeNumber);
  gen->add_option("--vocab", gen_opts.vocab, "Vocabulary size (0 = the preset's; smaller keeps test models small)")->check(CLI::NonNegativeNumber);
  gen->add_option("--codec", gen_opts.codec, "GGUF codec of the 2-D weights (router stays f32)");
  gen->add_option("--seed", gen_opts.seed, "Random seed");
  gen->add_option("--dist", gen_opts.dist, "Weight distribution")->check(CLI::IsMember({"gaussian", "heavy"}));
  gen->add_option("--router-skew", gen_opts.router_skew, "Log-normal sigma of router row norms (expert popularity skew)")->check(CLI::NonNegativeNumber);
  gen->add_flag("--tied", gen_opts.tied, "Tie the output head to the token embedding");
  gen->add_option("--threads", gen_opts.threads, "Threads")->check(CLI::PositiveNumber);
  gen->add_option("-o,--output", gen_opts.output, "Output GGUF path")->required();

  moelab::cli::InspectOptions inspect_opts;
  auto* inspect = app.add_subcommand("inspect", "Architecture, tensors by role, codec mix, resident vs expert bytes");
  inspect->add_option("model", inspect_opts.model, "GGUF file")->required();
  inspect->add_option("--top-k", inspect_opts.top_k, "Experts per token for the active-bytes figure (0 = the model's)");
  inspect->add_flag("--tensors", inspect_opts.tensors, "List every tensor");

  moelab::cli::RunOptions run_opts;
  auto* run = app.add_subcommand("run", "Generate text from a GGUF model; prints prefill and decode tok/s");
  run->add_option("--model,-m", run_opts.engine.model, "GGUF file")->required();
  auto* prompt = run->add_option("--prompt,-p", run_opts.prompt, "Prompt text");
  run->add_option("--prompt-file", run_opts.prompt_file, "Read the prompt from a file")->excludes(prompt);
  run->add_option("-n,--n-predict", run_opts.n_predict, "Tokens to generate")->check(CLI::NonNegativeNumber);
  run->add_option("--threads,-t", run_opts.engine.threads, "Threads")->check(CLI::PositiveNumber);
  run->add_option("--ctx", run_opts.engine.n_ctx, "Context size (KV cache positions)")->check(CLI::PositiveNumber);
  run->add_option("--batch", run_opts.engine.n_batch, "Prefill batch size")->check(CLI::PositiveNumber);
  run->add_option("--temp", run_opts.temperature, "Sampling temperature (0 = greedy)")->check(CLI::NonNegativeNumber);
  run->add_option("--top-p", run_opts.top_p, "Nucleus sampling threshold")->check(CLI::Range(0.0, 1.0));
  run->add_option("--sample-top-k", run_opts.sample_top_k, "Sample among the k most likely tokens (0 = all)");
  run->add_option("--moe-top-k", run_opts.engine.top_k, "Experts per token (0 = the model's own K)");
  run->add_option("--seed", run_opts.seed, "Sampling seed");
  run->add_option("--kv-codec", run_opts.engine.kv_codec, "KV cache codec: NAME or K/V (f32, f16, q8_0, q4_0, tq3, tq3m)");
  run->add_option("--session", run_opts.session, "KV session file: continue from it if it exists, save at the end");
  run->add_flag_callback(
      "--exact", [&] { run_opts.engine.path = moelab::quant::DotPath::exact; },
      "Exact dot path (f32 activations) instead of 8-bit activations");
  run->add_option("--io", run_opts.engine.io, "Expert I/O: resident, mmap, pread, direct, direct_mt<N>, uring<QD>");
  run->add_option("--layout", run_opts.engine.layout, "Where experts are read from")->check(CLI::IsMember({"gguf", "packed"}));
  run->add_option("--pack", run_opts.engine.pack, "The .moepack for --layout packed (default: <model>.moepack)");
  run->add_option("--cache", run_opts.engine.cache, "Expert cache policy")->check(CLI::IsMember({"none", "lru", "lfu", "least_stale"}));
  run->add_option("--budget-mb", run_opts.engine.ram_budget_mb, "Expert cache RAM budget (MiB)")->check(CLI::NonNegativeNumber);
  run->add_option("--spec-depth", run_opts.engine.spec_depth, "Prefetch the experts of this many layers ahead (0 = off)")->check(CLI::NonNegativeNumber);
  run->add_option("--spec-width", run_opts.engine.spec_width, "Extra predicted experts per layer")->check(CLI::NonNegativeNumber);
  run->add_flag("--spec-pre-attention", run_opts.engine.spec_pre_attention, "Also predict layer l from its input before attention");
  run->add_flag_callback(
      "--keep-pages", [&] { run_opts.engine.drop_pages = false; }, "Buffered io: leave read pages in the page cache");
  run->add_flag("--ignore-eos", run_opts.ignore_eos, "Keep decoding past end-of-generation tokens (soak runs)");
  run->add_option("--rss-log", run_opts.rss_log, "Write RSS (VmRSS, VmHWM, RssAnon, RssFile) every --rss-every decoded tokens to this CSV");
  run->add_option("--rss-every", run_opts.rss_every, "Decoded tokens between RSS samples")->check(CLI::PositiveNumber);
  run->add_flag("--verify", run_opts.engine.verify_checksums, "Packed layout: check each blob's checksum as it is read");

  moelab::cli::PackOptions pack_opts;
  auto* pack = app.add_subcommand("pack", "Write a .moepack: one aligned blob per (layer, expert), optionally requantized");
  pack->add_option("model", pack_opts.model, "Source GGUF")->required();
  pack->add_option("-o,--output", pack_opts.output, "Output .moepack")->required();
  pack->add_option("--codec", pack_opts.codec, "Requantize expert weights to this codec (default: keep)");
  pack->add_option("--align", pack_opts.align, "Blob alignment in bytes (power of two, >= 512)");
  pack->add_option("--threads", pack_opts.threads, "Threads")->check(CLI::PositiveNumber);

  moelab::cli::IobenchOptions iob_opts;
  auto* iobench = app.add_subcommand("iobench", "Raw O_DIRECT bandwidth at the expert size, then decode read MB/s per io strategy");
  iobench->add_option("--model,-m", iob_opts.model, "GGUF file (MoE)")->required();
  iobench->add_option("--pack", iob_opts.pack, "Read experts from this .moepack (default: from the GGUF)");
  iobench->add_option("--budget-mb", iob_opts.budget_mb, "Expert cache budget (MiB)")->check(CLI::PositiveNumber);
  iobench->add_option("--tokens", iob_opts.tokens, "Decode tokens per strategy")->check(CLI::PositiveNumber);
  iobench->add_option("--threads", iob_opts.threads, "Compute threads")->check(CLI::PositiveNumber);
  iobench->add_option("--raw-threads", iob_opts.raw_threads, "Readers for the parallel raw measurement")->check(CLI::PositiveNumber);
  iobench->add_option("--raw-seconds", iob_opts.raw_seconds, "Seconds per raw measurement")->check(CLI::PositiveNumber);
  iobench->add_option("--strategies", iob_opts.strategies, "io strategies to measure (default: all kinds)");
  iobench->add_option("--spec-io", iob_opts.spec_io, "io strategy of the speculation rows");
  iobench->add_option("--spec-depths", iob_opts.spec_depths, "Speculation depths to measure (cache lru)");
  iobench->add_option("--markdown", iob_opts.markdown_path, "Also write the table as Markdown to this file");

  moelab::cli::KvbenchOptions kvb_opts;
  auto* kvbench = app.add_subcommand("kvbench", "KV codecs: bytes/token, logits cosine vs f32 KV, session save/load time");
  kvbench->add_option("--model,-m", kvb_opts.model, "GGUF file")->required();
  kvbench->add_option("--ctx", kvb_opts.n_ctx, "Context = teacher-forced tokens")->check(CLI::PositiveNumber);
  kvbench->add_option("--batch", kvb_opts.n_batch, "Batch size")->check(CLI::PositiveNumber);
  kvbench->add_option("--threads,-t", kvb_opts.threads, "Threads")->check(CLI::PositiveNumber);
  kvbench->add_option("--codecs", kvb_opts.codecs, "Comma-separated kv codecs (NAME or K/V)");
  kvbench->add_option("--text", kvb_opts.text, "Comma-separated text files, repeated to --ctx tokens");
  kvbench->add_option("--sessions", kvb_opts.sessions, "Comma-separated session sizes to time (<= --ctx)");
  kvbench->add_option("--session-dir", kvb_opts.session_dir, "Where the timed session file is written");
  kvbench->add_option("--markdown", kvb_opts.markdown, "Append the tables to this file");
  kvbench->add_flag("--no-accuracy", kvb_opts.no_accuracy, "Skip the teacher-forced accuracy run");
  kvbench->add_flag("--exact", kvb_opts.exact, "Exact dot path (f32 activations)");

  moelab::cli::QuantizeOptions quant_opts;
  auto* quantize = app.add_subcommand("quantize", "Requantize a GGUF model with a mixed-precision recipe");
  quantize->add_option("input", quant_opts.input, "Source GGUF");
  quantize->add_option("output", quant_opts.output, "Destination GGUF");
  quantize->add_option("--preset", quant_opts.preset, "Recipe name (see --list-presets)");
  quantize->add_option("--imatrix", quant_opts.imatrix, "Importance matrix (llama.cpp imatrix GGUF)");
  quantize->add_option("--threads", quant_opts.threads, "Threads")->check(CLI::PositiveNumber);
  quantize->add_flag("--list-presets", quant_opts.list, "List the recipes and exit");

  moelab::cli::RegressOptions regress_opts;
  auto* regress = app.add_subcommand("regress", "Compare a run's figures with a baseline; non-zero exit on a regression");
  regress->add_option("baseline", regress_opts.baseline, "Baseline figures (Google Benchmark JSON or moelab figures JSON)")->required();
  regress->add_option("current", regress_opts.current, "Current figures, same format")->required();
  regress->add_option("--tolerances", regress_opts.tolerances, "Tolerances JSON (default: timing 35%, accuracy 1e-6 relative)");
  regress->add_option("--markdown", regress_opts.markdown_path, "Also write the comparison table to this file");

  moelab::cli::SweepCliOptions sweep_opts;
  auto* sweep = app.add_subcommand("sweep", "Run an experiment spec: every point, into an HDF5 results file");
  sweep->add_option("spec", sweep_opts.spec, "Experiment spec (JSON; see experiments/spec.schema.json)");
  sweep->add_option("-o,--output", sweep_opts.output, "Results file (default: results/<spec name>.h5)");
  sweep->add_flag("--resume", sweep_opts.resume, "Continue a results file of the same spec: skip recorded points");
  sweep->add_flag("--overwrite", sweep_opts.overwrite, "Replace an existing results file");
  sweep->add_option("--shard", sweep_opts.shard, "Run only points with index % n == i (i/n)");
  sweep->add_flag("--dry-run", sweep_opts.dry_run, "List the points and a time estimate; run nothing");
  sweep->add_flag("--no-plots", sweep_opts.no_plots, "Do not draw the spec's plots");
  sweep->add_option("--disk-probe-mb", sweep_opts.disk_probe_mb, "Scratch file size for the raw disk bandwidth (0 = skip)")->check(CLI::NonNegativeNumber);
  sweep->add_option("--hardware", sweep_opts.hardware, "Hardware profile for the predicted_* and roofline_* metrics: 'calibrate' (measured at the start, ~20 s), a profile file or an id in datasets/hardware");
  sweep->add_option("--model-cache", sweep_opts.model_cache, "Folder for generated and requantized models (default: $MOELAB_MODEL_CACHE or ~/.cache/moelab/models)");
  sweep->add_flag("--help-axes", sweep_opts.help_axes, "List every axis (type, default, unit, values) and metric, then exit");
  sweep->add_flag("--markdown", sweep_opts.markdown, "With --help-axes: print Markdown tables");
  sweep->add_flag("--print-schema", sweep_opts.print_schema, "Print the spec JSON Schema (experiments/spec.schema.json), then exit");

  moelab::cli::MergeOptions merge_opts;
  auto* merge = app.add_subcommand("merge", "Combine results files of one spec (shards) into one");
  merge->add_option("inputs", merge_opts.inputs, "Results files")->required();
  merge->add_option("-o,--output", merge_opts.output, "Merged results file")->required();
  merge->add_flag("--dedupe", merge_opts.dedupe, "Keep the first copy of a (point, repeat) found twice instead of failing");

  moelab::cli::PlotOptions plot_opts;
  auto* plot = app.add_subcommand("plot", "Plot a metric of a results file against an axis (PNG or SVG)");
  plot->add_option("results", plot_opts.results, "Results file (.h5)")->required();
  plot->add_option("--x", plot_opts.x, "Axis (or metric) on x")->required();
  plot->add_option("--y", plot_opts.y, "Metric on y")->required();
  plot->add_option("--by", plot_opts.by, "One series per value of this axis");
  plot->add_option("--where", plot_opts.where, "Keep rows with axis=value (repeatable)");
  plot->add_option("--kind", plot_opts.kind, "line or bar")->check(CLI::IsMember({"line", "bar"}));
  plot->add_option("--title", plot_opts.title, "Title (default: y vs x by ...)");
  plot->add_option("-o,--output", plot_opts.output, "Output .png or .svg")->required();

  moelab::cli::CalibrateOptions cal_opts;
  auto* calibrate = app.add_subcommand("calibrate", "Measure this machine's hardware profile (SSD, memory, GEMV per codec)");
  calibrate->add_option("-o,--output", cal_opts.output, "Profile to write (default datasets/hardware/this-machine.json)");
  calibrate->add_option("--dir", cal_opts.scratch_dir, "Directory for the scratch file (on the disk to measure)");
  calibrate->add_option("--file-mb", cal_opts.file_mb, "Scratch file size in MiB")->check(CLI::Range(64, 1 << 20));
  calibrate->add_option("--seconds", cal_opts.seconds_per_point, "Seconds per SSD measurement point")->check(CLI::PositiveNumber);
  calibrate->add_option("--threads", cal_opts.threads, "Threads for memory and GEMV (0 = all)")->check(CLI::NonNegativeNumber);
  calibrate->add_option("--id", cal_opts.id, "Profile id (the file name without .json)");
  calibrate->add_option("--note", cal_opts.note, "Appended to the profile's notes (e.g. other load on the machine)");

  moelab::cli::ReproduceOptions rep_opts;
  auto* reproduce = app.add_subcommand("reproduce", "Published tok/s vs the performance model: ratio, bound, share within +-25%");
  reproduce->add_option("published", rep_opts.published, "datasets/published/<file>.json (one or more: one table)");
  reproduce->add_option("--results", rep_opts.results, "Sweep results (.h5, swept with --hardware): measured vs predicted per point and the median absolute error");
  reproduce->add_option("-o,--output", rep_opts.output, "Also write the table as Markdown to this file");
  reproduce->add_option("--json", rep_opts.json_output, "Also write every row's prediction as JSON to this file");
  reproduce->add_option("--hardware-dir", rep_opts.hardware_dir, "Hardware profiles (default datasets/hardware)");
  reproduce->add_option("--trace", rep_opts.trace, "Recorded routing trace (JSON) for rows of matching shape");

  moelab::cli::SlurmOptions slurm_opts;
  auto* slurm = app.add_subcommand("slurm", "Run a spec as a Slurm job array (one shard per task) plus a dependent merge job");
  slurm->add_option("spec", slurm_opts.spec, "Experiment spec (JSON)")->required();
  slurm->add_option("--tasks", slurm_opts.tasks, "Array tasks (shards); 1 .. number of points")->required();
  slurm->add_option("--partition", slurm_opts.partition, "sbatch --partition");
  slurm->add_option("--time", slurm_opts.time, "sbatch --time per task (e.g. 01:00:00)");
  slurm->add_option("--mem", slurm_opts.mem, "sbatch --mem per task (e.g. 8G)");
  slurm->add_option("--cpus", slurm_opts.cpus, "sbatch --cpus-per-task")->check(CLI::NonNegativeNumber);
  slurm->add_option("--results-dir", slurm_opts.results_dir, "Folder for shards and the merged <spec>.h5 (shared by all nodes)");
  slurm->add_option("--only", slurm_opts.only, "Resubmit only these task indices (they resume their shards), plus a new merge job");
  slurm->add_flag("--dry-run", slurm_opts.dry_run, "Print the batch scripts; submit nothing");

  try {
    app.parse(argc, argv);
    if (*slurm) return moelab::cli::run_slurm(slurm_opts);
    if (*regress) return moelab::cli::run_regress(regress_opts);
    for (int i = 0; i < argc; ++i) sweep_opts.command_line += (i ? " " : "") + std::string(argv[i]);
    if (*sweep) return moelab::cli::run_sweep_command(sweep_opts);
    if (*merge) return moelab::cli::run_merge(merge_opts);
    if (*plot) return moelab::cli::run_plot(plot_opts);
    if (*calibrate) return moelab::cli::run_calibrate(cal_opts);
    if (*reproduce) return moelab::cli::run_reproduce(rep_opts);
    if (*quantize) return moelab::cli::run_quantize(quant_opts);
    if (*run) return moelab::cli::run_run(run_opts);
    if (*pack) return moelab::cli::run_pack(pack_opts);
    if (*iobench) return moelab::cli::run_iobench(iob_opts);

    if (*kvbench) return moelab::cli::run_kvbench(kvb_opts);
    if (*codecs) return moelab::cli::run_codecs(codecs_opts);
    if (*gen) return moelab::cli::run_gen(gen_opts);
    if (*inspect) return moelab::cli::run_inspect(inspect_opts);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const moelab::experiment::SpecError& e) {
    std::fprintf(stderr, "moelab: error: %s\n", e.what());
    return 2;  // bad spec, model or output path: nothing ran
  } catch (const moelab::Error& e) {
    std::fprintf(stderr, "moelab: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moelab: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
