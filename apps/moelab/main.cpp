// moelab: one CLI, thin subcommands over libmoelab. CLI11 is included here
// and in no other translation unit (it is slow to compile).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "commands.h"
#include "core/error.h"

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
  run->add_option("--model,-m", run_opts.model, "GGUF file")->required();
  auto* prompt = run->add_option("--prompt,-p", run_opts.prompt, "Prompt text");
  run->add_option("--prompt-file", run_opts.prompt_file, "Read the prompt from a file")->excludes(prompt);
  run->add_option("-n,--n-predict", run_opts.n_predict, "Tokens to generate")->check(CLI::NonNegativeNumber);
  run->add_option("--threads,-t", run_opts.threads, "Threads")->check(CLI::PositiveNumber);
  run->add_option("--ctx", run_opts.n_ctx, "Context size (KV cache positions)")->check(CLI::PositiveNumber);
  run->add_option("--batch", run_opts.n_batch, "Prefill batch size")->check(CLI::PositiveNumber);
  run->add_option("--temp", run_opts.temperature, "Sampling temperature (0 = greedy)")->check(CLI::NonNegativeNumber);
  run->add_option("--top-p", run_opts.top_p, "Nucleus sampling threshold")->check(CLI::Range(0.0, 1.0));
  run->add_option("--sample-top-k", run_opts.sample_top_k, "Sample among the k most likely tokens (0 = all)");
  run->add_option("--moe-top-k", run_opts.moe_top_k, "Experts per token (0 = the model's own K)");
  run->add_option("--seed", run_opts.seed, "Sampling seed");
  run->add_option("--kv-codec", run_opts.kv_codec, "KV cache codec");
  run->add_flag("--exact", run_opts.exact, "Exact dot path (f32 activations) instead of 8-bit activations");
  run->add_option("--io", run_opts.io, "Expert I/O: resident, mmap, pread, direct, direct_mt<N>, uring<QD>");
  run->add_option("--layout", run_opts.layout, "Where experts are read from")->check(CLI::IsMember({"gguf", "packed"}));
  run->add_option("--pack", run_opts.pack, "The .moepack for --layout packed (default: <model>.moepack)");
  run->add_option("--cache", run_opts.cache, "Expert cache policy")->check(CLI::IsMember({"none", "lru", "lfu", "least_stale"}));
  run->add_option("--budget-mb", run_opts.budget_mb, "Expert cache RAM budget (MiB)")->check(CLI::NonNegativeNumber);
  run->add_option("--spec-depth", run_opts.spec_depth, "Prefetch the experts of this many layers ahead (0 = off)")->check(CLI::NonNegativeNumber);
  run->add_option("--spec-width", run_opts.spec_width, "Extra predicted experts per layer")->check(CLI::NonNegativeNumber);
  run->add_flag("--spec-pre-attention", run_opts.spec_pre_attention, "Also predict layer l from its input before attention");
  run->add_flag("--keep-pages", run_opts.keep_pages, "Buffered io: leave read pages in the page cache");
  run->add_flag("--verify", run_opts.verify, "Packed layout: check each blob's checksum as it is read");

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

  moelab::cli::QuantizeOptions quant_opts;
  auto* quantize = app.add_subcommand("quantize", "Requantize a GGUF model with a mixed-precision recipe");
  quantize->add_option("input", quant_opts.input, "Source GGUF");
  quantize->add_option("output", quant_opts.output, "Destination GGUF");
  quantize->add_option("--preset", quant_opts.preset, "Recipe name (see --list-presets)");
  quantize->add_option("--imatrix", quant_opts.imatrix, "Importance matrix (llama.cpp imatrix GGUF)");
  quantize->add_option("--threads", quant_opts.threads, "Threads")->check(CLI::PositiveNumber);
  quantize->add_flag("--list-presets", quant_opts.list, "List the recipes and exit");

  try {
    app.parse(argc, argv);
    if (*quantize) return moelab::cli::run_quantize(quant_opts);
    if (*run) return moelab::cli::run_run(run_opts);
    if (*pack) return moelab::cli::run_pack(pack_opts);
    if (*iobench) return moelab::cli::run_iobench(iob_opts);
    if (*codecs) return moelab::cli::run_codecs(codecs_opts);
    if (*gen) return moelab::cli::run_gen(gen_opts);
    if (*inspect) return moelab::cli::run_inspect(inspect_opts);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const moelab::Error& e) {
    std::fprintf(stderr, "moelab: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moelab: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
