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
  run->add_option("--kv-codec", run_opts.kv_codec, "KV cache codec: NAME or K/V (f32, f16, q8_0, q4_0, tq3, tq3m)");
  run->add_option("--session", run_opts.session, "KV session file: continue from it if it exists, save at the end");
  run->add_flag("--exact", run_opts.exact, "Exact dot path (f32 activations) instead of 8-bit activations");

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

  try {
    app.parse(argc, argv);
    if (*quantize) return moelab::cli::run_quantize(quant_opts);
    if (*run) return moelab::cli::run_run(run_opts);
    if (*kvbench) return moelab::cli::run_kvbench(kvb_opts);
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
