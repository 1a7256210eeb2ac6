// `moelab inspect`: what a GGUF model is and what it costs to run.
#include <cstdio>
#include <map>
#include <string>

#include "commands.h"
#include "model/loader.h"
#include "quant/codec.h"

namespace moelab::cli {
namespace {

// Role of a tensor by llama.cpp's naming.
std::string role_of(const std::string& name) {
  if (name.find("_exps.") != std::string::npos) return "routed experts";
  if (name.find("_shexp") != std::string::npos) return "shared expert";
  if (name.find("ffn_gate_inp") != std::string::npos) return "router";
  if (name.find("attn_") != std::string::npos && name.find("norm") == std::string::npos) return "attention";
  if (name.find("norm") != std::string::npos) return "norms";
  if (name.find("token_embd") != std::string::npos) return "embedding";
  if (name.rfind("output.", 0) == 0) return "output head";
  if (name.find("ffn_") != std::string::npos) return "dense ffn";
  return "other";
}

double mib(uint64_t b) { return double(b) / (1024.0 * 1024.0); }

}  // namespace

int run_inspect(const InspectOptions& opts) {
  auto m = model::Model::load(opts.model);
  const model::Config& c = m->config();
  std::printf("file          %s (GGUF v%u, %zu tensors, %.1f MiB)\n", opts.model.c_str(), m->file().version(),
              m->file().tensors().size(), mib(m->file().bytes().size()));
  std::printf("architecture  %s\n", c.arch_name.c_str());
  std::printf("dimensions    n_embd %lld, layers %lld, heads %lld (kv %lld, head_dim %lld), vocab %lld\n",
              (long long)c.n_embd, (long long)c.n_layer, (long long)c.n_head, (long long)c.n_head_kv,
              (long long)c.head_dim, (long long)c.n_vocab);
  if (c.is_moe())
    std::printf("experts       %lld per layer, top-%lld, width %lld%s\n", (long long)c.n_expert,
                (long long)c.n_expert_used, (long long)c.n_ff_exp,
                c.n_ff_shexp ? (", shared expert width " + std::to_string(c.n_ff_shexp)).c_str() : "");
  else
    std::printf("dense ffn     width %lld\n", (long long)c.n_ff);

  std::map<std::string, std::pair<uint64_t, int>> by_role;   // bytes, count
  std::map<std::string, std::pair<uint64_t, int>> by_codec;
  for (const gguf::Tensor& t : m->file().tensors()) {
    auto& r = by_role[role_of(t.name)];
    r.first += t.n_bytes;
    ++r.second;
    auto& k = by_codec[std::string(t.codec->name)];
    k.first += t.n_bytes;
    ++k.second;
    if (opts.tensors)
      std::printf("  %-36s %-6s [%lld, %lld, %lld, %lld] %.2f MiB\n", t.name.c_str(), std::string(t.codec->name).c_str(),
                  (long long)t.ne[0], (long long)t.ne[1], (long long)t.ne[2], (long long)t.ne[3], mib(t.n_bytes));
  }
  std::printf("\n%-16s %8s %12s\n", "role", "tensors", "MiB");
  for (const auto& [role, v] : by_role) std::printf("%-16s %8d %12.1f\n", role.c_str(), v.second, mib(v.first));
  std::printf("\n%-16s %8s %12s\n", "codec", "tensors", "MiB");
  for (const auto& [codec, v] : by_codec) std::printf("%-16s %8d %12.1f\n", codec.c_str(), v.second, mib(v.first));

  const auto fp = m->footprint();
  const int64_t k = opts.top_k > 0 ? opts.top_k : c.n_expert_used;
  std::printf("\nresident (shared) bytes   %.1f MiB\n", mib(fp.shared_bytes));
  if (c.is_moe()) {
    std::printf("routed expert bytes       %.1f MiB (%.2f MiB per expert per layer)\n", mib(fp.expert_bytes),
                mib(fp.expert_bytes_each));
    std::printf("active bytes per token    %.1f MiB at top-%lld (shared + %lld layers x %lld experts)\n",
                mib(fp.active_bytes_per_token(c.n_layer, k)), (long long)k, (long long)c.n_layer, (long long)k);
  }
  return 0;
}

}  // namespace moelab::cli
