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

void apply_arch_rules(Config& c) {
  c.qk_norm = QkNorm::none;
  switch (c.arch) {
    case Arch::llama:  // Llama, SmolLM2, Mixtral
      c.rope = RopeKind::norm;
      c.expert_weights_norm = true;
      break;
    case Arch::qwen3moe:
      c.rope = RopeKind::neox;
      c.qk_norm = QkNorm::per_head;
      c.expert_weights_norm = true;
      break;
    case Arch::qwen2moe:
      c.rope = RopeKind::neox;
      c.expert_weights_norm = false;
      break;
    case Arch::olmoe:
      c.rope = RopeKind::neox;
      c.qk_norm = QkNorm::full;
      c.expert_weights_norm = false;
      break;
  }
}

const char* arch_name(Arch arch) {
  for (const auto& a : kArchNames)
    if (a.arch == arch) return a.name;
  return "?";
}

}  // namespace moelab::model
