// Where each routed expert's bytes live in a file and how they land in a
// cache slot. Two layouts:
//   gguf    gate, up and down rows inside the GGUF's 3-D expert tensors: three
//           reads per expert, each widened to kIoAlign boundaries (O_DIRECT)
//   packed  one aligned blob per (layer, expert) in a .moepack (store/pack.h)
// Either way a slot is a buffer of slot_bytes() whose parts the forward pass
// sees as QMatrix views.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/loader.h"
#include "model/weights.h"

namespace moelab::store {

class PackIndex;

struct SlotRead {            // one aligned file range -> slot bytes [slot_offset, slot_offset + bytes)
  uint64_t offset = 0, bytes = 0, need = 0, slot_offset = 0;
};
struct SlotPart {            // one matrix (gate, up or down) inside the slot
  const quant::Codec* codec = nullptr;
  int64_t rows = 0, cols = 0;
  size_t row_bytes = 0;
  uint64_t slot_offset = 0;
};
struct ExpertPlacement {
  std::array<SlotRead, 3> reads{};
  int n_reads = 0;
  std::array<SlotPart, 3> parts{};  // gate, up, down
  uint64_t checksum = 0;            // packed: of the blob's first checksum_bytes
  uint64_t checksum_bytes = 0;      // 0 = no checksum (gguf)
};

class ExpertLayout {
 public:
  static ExpertLayout from_gguf(const model::Model& model);
  static ExpertLayout from_pack(const PackIndex& pack);

  const std::string& name() const { return name_; }            // "gguf" | "packed"
  const std::filesystem::path& path() const { return path_; }  // the file the reads address
  int64_t n_layer() const { return n_layer_; }
  int64_t n_expert() const { return n_expert_; }
  uint64_t slot_bytes() const { return slot_bytes_; }           // kIoAlign multiple
  uint64_t payload_bytes_max() const { return payload_max_; }   // largest expert's weight bytes
  const ExpertPlacement& at(int layer, int32_t expert) const {
    return placements_[size_t(layer) * size_t(n_expert_) + size_t(expert)];
  }
  model::ExpertWeights views(int layer, int32_t expert, const uint8_t* slot) const;

 private:
  std::string name_;
  std::filesystem::path path_;
  int64_t n_layer_ = 0, n_expert_ = 0;
  uint64_t slot_bytes_ = 0, payload_max_ = 0;
  std::vector<ExpertPlacement> placements_;  // [n_layer * n_expert]
};

}  // namespace moelab::store
