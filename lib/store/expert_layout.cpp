#include "store/expert_layout.h"

#include <algorithm>

#include "core/error.h"
#include "store/io_backend.h"
#include "store/pack.h"

namespace moelab::store {

namespace {

// Appends the aligned superset of [offset, offset + bytes) to the placement's
// reads; returns where `offset` lands in the slot.
uint64_t add_read(ExpertPlacement& p, uint64_t& slot_at, uint64_t offset, uint64_t bytes) {
  const uint64_t a0 = offset / kIoAlign * kIoAlign;
  const uint64_t a1 = (offset + bytes + kIoAlign - 1) / kIoAlign * kIoAlign;
  SlotRead& r = p.reads[size_t(p.n_reads++)];
  r.offset = a0;
  r.bytes = a1 - a0;
  r.need = offset + bytes - a0;
  r.slot_offset = slot_at;
  slot_at += r.bytes;
  return r.slot_offset + (offset - a0);
}

}  // namespace

ExpertLayout ExpertLayout::from_gguf(const model::Model& model) {
  const model::Config& c = model.config();
  // A dense model streams each layer's whole FFN as its one "expert" (dense flash streaming).
  const int64_t n_expert = c.is_moe() ? c.n_expert : 1;
  ExpertLayout x;
  x.name_ = "gguf";
  x.path_ = model.file().path();
  x.n_layer_ = c.n_layer;
  x.n_expert_ = n_expert;
  x.placements_.resize(size_t(c.n_layer * n_expert));
  const uint8_t* base = model.file().bytes().data();
  for (int l = 0; l < int(c.n_layer); ++l)
    for (int32_t e = 0; e < int32_t(n_expert); ++e) {
      const model::LayerWeights& lw = model.weights().layers[size_t(l)];
      const model::ExpertWeights ew = c.is_moe() ? model::ResidentExperts::slice(lw, c.n_expert, e)
                                                 : model::ExpertWeights{lw.ffn_gate, lw.ffn_up, lw.ffn_down};
      const quant::QMatrix* m[3] = {&ew.gate, &ew.up, &ew.down};
      ExpertPlacement& p = x.placements_[size_t(l) * size_t(n_expert) + size_t(e)];
      uint64_t slot_at = 0, payload = 0;
      for (int k = 0; k < 3; ++k) {
        const uint64_t bytes = uint64_t(m[k]->rows) * m[k]->row_bytes;
        const uint64_t at = add_read(p, slot_at, uint64_t(m[k]->data - base), bytes);
        p.parts[size_t(k)] = {m[k]->codec, m[k]->rows, m[k]->cols, m[k]->row_bytes, at};
        payload += bytes;
      }
      x.slot_bytes_ = std::max(x.slot_bytes_, slot_at);
      x.payload_max_ = std::max(x.payload_max_, payload);
    }
  return x;
}

ExpertLayout ExpertLayout::from_pack(const PackIndex& pack) {
  ExpertLayout x;
  x.name_ = "packed";
  x.path_ = pack.path();
  x.n_layer_ = pack.n_layer();
  x.n_expert_ = pack.n_expert();
  x.placements_.resize(size_t(x.n_layer_ * x.n_expert_));
  for (int l = 0; l < int(x.n_layer_); ++l)
    for (int32_t e = 0; e < int32_t(x.n_expert_); ++e) {
      const PackBlob& b = pack.blob(l, e);
      ExpertPlacement& p = x.placements_[size_t(l) * size_t(x.n_expert_) + size_t(e)];
      uint64_t slot_at = 0;
      const uint64_t at = add_read(p, slot_at, b.offset, b.bytes);
      uint64_t payload = 0;
      for (int k = 0; k < 3; ++k) {
        const PackPart& pp = pack.parts(l)[size_t(k)];
        p.parts[size_t(k)] = {pp.codec, pp.rows, pp.cols, pp.codec->row_bytes(pp.cols), at + pp.offset};
        payload += pp.bytes;
      }
      p.checksum = b.checksum;
      p.checksum_bytes = b.bytes;
      x.slot_bytes_ = std::max(x.slot_bytes_, slot_at);
      x.payload_max_ = std::max(x.payload_max_, payload);
    }
  return x;
}

model::ExpertWeights ExpertLayout::views(int layer, int32_t expert, const uint8_t* slot) const {
  const ExpertPlacement& p = at(layer, expert);
  auto view = [&](const SlotPart& s) {
    quant::QMatrix m;
    m.codec = s.codec;
    m.data = slot + s.slot_offset;
    m.rows = s.rows;
    m.cols = s.cols;
    m.row_bytes = s.row_bytes;
    return m;
  };
  return {view(p.parts[0]), view(p.parts[1]), view(p.parts[2])};
}

}  // namespace moelab::store
