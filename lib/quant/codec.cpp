// Codec lookup and runtime ISA dispatch.
#include "quant/codec.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace moelab::quant {

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

bool isa_supported(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2:
#if defined(__clang__) && __clang_major__ < 16
      // clang < 16 cannot query "f16c"; every AVX2 CPU (Intel and AMD) has F16C.
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#endif
    case Isa::avx512:
      return isa_supported(Isa::avx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
#else
  return isa == Isa::scalar;
#endif
}

static Isa parse_isa(std::string_view s) {
  for (int i = 0; i < kIsaCount; ++i)
    if (isa_name(Isa(i)) == s) return Isa(i);
  throw Error("MOELAB_ISA='" + std::string(s) + "': unknown instruction set (known: scalar, avx2, avx512)");
}

Isa best_isa() {
  if (const char* forced = std::getenv("MOELAB_ISA"); forced && *forced) {
    Isa isa = parse_isa(forced);
    if (!isa_supported(isa)) throw Error("MOELAB_ISA=" + std::string(forced) + ": this CPU does not support it");
    return isa;
  }
  for (int i = kIsaCount - 1; i > 0; --i)
    if (isa_supported(Isa(i))) return Isa(i);
  return Isa::scalar;
}

namespace {
std::atomic<int>& active_isa_slot() {
  static std::atomic<int> slot{int(best_isa())};
  return slot;
}
}  // namespace

Isa active_isa() { return Isa(active_isa_slot().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  if (!isa_supported(isa)) throw Error("instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  active_isa_slot().store(int(isa), std::memory_order_relaxed);
}

double Codec::overhead_fraction() const {
  const double code_bytes = double(block_values) * bits / 8.0;
  return (block_bytes - code_bytes) / block_bytes;
}

size_t Codec::row_bytes(int64_t n) const {
  if (n < 0 || n % block_values != 0)
    throw Error("codec " + std::string(name) + ": row length " + std::to_string(n) +
                " is not a multiple of its block size " + std::to_string(block_values));
  return size_t(n / block_values) * size_t(block_bytes);
}

size_t Codec::alignment() const { return name == "f32" || name == "q8_k" || name == "rot128" ? 4 : 2; }

Isa Codec::decode_kernel_isa(Isa isa) const {
  for (int i = int(isa); i > 0; --i)
    if (decode_by_isa[size_t(i)]) return Isa(i);
  return Isa::scalar;
}
Isa Codec::dot_kernel_isa(Isa isa) const {
  for (int i = int(isa); i > 0; --i)
    if (dot_by_isa[size_t(i)]) return Isa(i);
  return Isa::scalar;
}
DecodeFn Codec::decode(Isa isa) const { return decode_by_isa[size_t(decode_kernel_isa(isa))]; }
DotFn Codec::dot(Isa isa) const { return dot_by_isa[size_t(dot_kernel_isa(isa))]; }

const Codec* find_codec(std::string_view name) {
  for (const Codec& c : all_codecs())
    if (c.name == name) return &c;
  return nullptr;
}

const Codec* find_codec_by_ggml_type(int ggml_type) {
  if (ggml_type < 0) return nullptr;
  for (const Codec& c : all_codecs())
    if (c.ggml_type == ggml_type) return &c;
  return nullptr;
}

std::string known_codec_names() {
  std::string names;
  for (const Codec& c : all_codecs()) {
    if (!names.empty()) names += ", ";
    names += c.name;
  }
  return names;
}

const Codec& codec(std::string_view name) {
  if (const Codec* c = find_codec(name)) return *c;
  throw Error("unknown codec '" + std::string(name) + "' (known: " + known_codec_names() + ")");
}

bool is_weight_codec(const Codec& c) { return c.dot_by_isa[0] != nullptr; }

}  // namespace moelab::quant
