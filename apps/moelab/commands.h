// Subcommand entry points. Each takes a plain options struct filled by main.cpp
// (the only file that sees CLI11) and returns the process exit code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

}  // namespace moelab::cli
