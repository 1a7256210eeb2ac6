#include "model/config.h"

#include "core/error.h"

namespace moelab::model {

namespace {
constexpr struct {
  Arch arch;
  const char* name;
} kArchNames[] = {{Arch::llama, "llama"}, {Arch::qwen3moe, "qwen3moe"}, {Arch::qwen2moe, "qwen2moe"}, {Arch::olmoe, "olmoe"}};
}  // namespace

Arch parse_arch(const std::string& name) {
  std::string known;
  for (const auto& a : kArchNames) {
    if (name == a.name) return a.arch;
    known += known.empty() ? a.name : std::string(", ") + a.name;
  }
  throw Error("unsupported architecture '" + name + "' (supported: " + known + ")");
}

const char* arch_name(Arch arch) {
  for (const auto& a : kArchNames)
    if (a.arch == arch) return a.name;
  return "?";
}

}  // namespace moelab::model
