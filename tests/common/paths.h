// Where tests find their inputs: committed fixtures, and the real SmolLM2
// GGUF (fetched by scripts/fetch_smollm2.sh; tests that need it skip with a
// message saying how to get it).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace moelab::test {

inline constexpr const char* kSmolLM2File = "SmolLM2-135M-Instruct.Q4_1.gguf";

inline std::filesystem::path fixture_dir(const std::string& topic) {
  return std::filesystem::path(MOELAB_SOURCE_DIR) / "tests" / "fixtures" / topic;
}

// $MOELAB_SMOLLM2, else build/models/ under the source or build tree; empty when absent.
inline std::filesystem::path find_smollm2() {
  if (const char* env = std::getenv("MOELAB_SMOLLM2"); env != nullptr && *env != '\0') return env;
  for (const auto& dir : {std::filesystem::path(MOELAB_SOURCE_DIR) / "build" / "models",
                          std::filesystem::path(MOELAB_BINARY_DIR) / "models"})
    if (std::filesystem::exists(dir / kSmolLM2File)) return dir / kSmolLM2File;
  return {};
}

inline std::string smollm2_skip_message() {
  return std::string(kSmolLM2File) +
         " not found (looked at $MOELAB_SMOLLM2, build/models/, <build dir>/models/): run scripts/fetch_smollm2.sh";
}

// A fresh path in the test's temporary directory.
inline std::filesystem::path temp_file(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("moelab-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir / name;
}

}  // namespace moelab::test
