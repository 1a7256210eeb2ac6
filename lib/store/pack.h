// The .moepack expert pack: one aligned blob per (layer, expert) holding the
// expert's gate, up and down rows back to back, optionally requantized to
// another codec (Kandiga's 3-bit repack), so one read fetches one expert.
//
// File (little-endian):
//   header    128 bytes: magic "MOEPACK\0", u32 version, u32 align, u64 model
//             identity, u32 n_layer, u32 n_expert, u64 manifest offset, u64
//             manifest bytes, u64 manifest checksum, u64 data offset, u64 file bytes
//   manifest  per layer: 3 x (char codec[24], i64 rows, i64 cols)  (gate, up, down)
//             per (layer, expert), layer-major: u64 offset, u64 bytes, u64 checksum
//   data      blobs at `align` boundaries; inside a blob each part starts at a
//             64-byte boundary (zero padding between parts)
// The model identity (model/identity.h: the GGUF's header, metadata, tensor
// table and a sample of each tensor) makes a pack made for another model (even
// one of the same shape) refused. Checksums are XXH64 (core/hash.h).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "gguf/gguf.h"
#include "model/loader.h"

namespace moelab::store {

inline constexpr uint32_t kPackVersion = 1;
inline constexpr uint64_t kPackHeaderBytes = 128;
inline constexpr uint64_t kPackPartAlign = 64;

// The first 64 bits of model::model_identity (metadata, tensor layout and a
// sample of every tensor's data), recorded in the header.
uint64_t model_identity(const gguf::File& file);

struct PackOptions {
  std::string codec;      // empty: keep each tensor's codec; else requantize every expert part to it
  uint64_t align = 4096;  // blob alignment (power of two, >= 512)
};

// Writes `out` (through a temporary renamed into place). progress(done, total) per layer.
void write_pack(const model::Model& model, const std::filesystem::path& out, const PackOptions& options,
                ThreadPool& pool, const std::function<void(int64_t, int64_t)>& progress = {});

struct PackPart {
  const quant::Codec* codec = nullptr;
  int64_t rows = 0, cols = 0;
  uint64_t offset = 0, bytes = 0;  // inside the blob
};
struct PackBlob {
  uint64_t offset = 0, bytes = 0, checksum = 0;
};

// A parsed, validated pack header and manifest (blob bytes are read by the store).
class PackIndex {
 public:
  // Every field bounds-checked; errors name the file and the field. `model`
  // must be the GGUF the pack was made from.
  static PackIndex open(const std::filesystem::path& path, const model::Model& model);

  const std::filesystem::path& path() const { return path_; }
  uint32_t align() const { return align_; }
  int64_t n_layer() const { return n_layer_; }
  int64_t n_expert() const { return n_expert_; }
  const std::array<PackPart, 3>& parts(int layer) const { return parts_[size_t(layer)]; }
  const PackBlob& blob(int layer, int32_t expert) const { return blobs_[size_t(layer) * size_t(n_expert_) + size_t(expert)]; }

 private:
  std::filesystem::path path_;
  uint32_t align_ = 0;
  int64_t n_layer_ = 0, n_expert_ = 0;
  std::vector<std::array<PackPart, 3>> parts_;  // [n_layer]
  std::vector<PackBlob> blobs_;                 // [n_layer * n_expert]
};

}  // namespace moelab::store
