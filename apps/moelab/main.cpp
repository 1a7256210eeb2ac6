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
  try {
    app.parse(argc, argv);
    if (*codecs) return moelab::cli::run_codecs(codecs_opts);
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
