// Operations on codec-tagged matrices: quantize, dequantize, dot, gemv, gemm
// and gather_gemv (MoE). Matrices use GGUF's layout: [rows, cols] with cols
// (ne[0]) the fastest dimension, each row an independent run of blocks.
//
// Two dot paths:
//   quantized  activations are encoded once into the weight codec's `act`
//              codec (q8_0 / q8_1 / q8_k / rot128) and the integer kernels
//              run, as llama.cpp does; results match `exact` within tolerance.
//              q8_0 / q8_1 inputs are rounded as llama.cpp's x86 backend rounds
//              them (simd.h encode_q8_*_act), byte for byte
//   exact      weights are decoded block by block and dotted in f32 with the
//              unquantized activations
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "quant/codec.h"

namespace moelab::quant {

enum class DotPath : uint8_t { quantized, exact };

// A read-only view of a quantized matrix [rows, cols]. Build it with
// make_qmatrix, which checks that the buffer holds exactly rows * row_bytes.
struct QMatrix {
  const Codec* codec = nullptr;
  const uint8_t* data = nullptr;
  int64_t rows = 0, cols = 0;
  size_t row_bytes = 0;
  const uint8_t* row(int64_t r) const { return data + size_t(r) * row_bytes; }
};
QMatrix make_qmatrix(const Codec& codec, const void* data, size_t data_bytes, int64_t rows, int64_t cols);

// x: [rows, cols] f32 -> encoded bytes. importance: [cols] or nullptr.
// `reference` selects encode_ref (deterministic ggml reference) over encode.
std::vector<uint8_t> quantize(const Codec& codec, std::span<const float> x, int64_t rows, int64_t cols,
                              const float* importance = nullptr, bool reference = false, ThreadPool* pool = nullptr);
// Encoded bytes -> f32 [rows, cols].
void dequantize(const QMatrix& w, std::span<float> y, ThreadPool* pool = nullptr);

// Activations encoded for one weight codec; reused across calls so the decode
// loop does not allocate once it has warmed up.
class Activations {
 public:
  // x: [m, n] f32 rows. Encodes each into `weight_codec.act` (quantized path)
  // or keeps f32 (exact path).
  void encode(const Codec& weight_codec, const float* x, int64_t m, int64_t n, DotPath path);
  const void* row(int64_t i) const { return data_.data() + size_t(i) * row_bytes_; }
  int64_t rows() const { return m_; }
  int64_t cols() const { return n_; }
  DotPath path() const { return path_; }
  const Codec* for_codec() const { return weight_codec_; }

 private:
  std::vector<uint8_t> data_;  // [m, row_bytes_]
  const Codec* weight_codec_ = nullptr;
  const Codec* act_codec_ = nullptr;  // codec the rows are encoded in
  EncodeFn act_encode_ = nullptr;     // its encoder for matmul inputs
  size_t row_bytes_ = 0;
  int64_t m_ = 0, n_ = 0;
  DotPath path_ = DotPath::quantized;
};

// One weight row (codec) with one encoded activation row.
float dot(const Codec& codec, const void* w_row, const Activations& act, int64_t act_row = 0);

// y[rows] = W x. x: [cols].
void gemv(const QMatrix& w, const float* x, float* y, ThreadPool* pool = nullptr,
          DotPath path = DotPath::quantized);
void gemv(const QMatrix& w, const Activations& x, float* y, ThreadPool* pool = nullptr);

// Y[m, rows] = X[m, cols] W^T, for prefill: each weight row is read once for all m activation rows.
void gemm(const QMatrix& w, const float* x, int64_t m, float* y, ThreadPool* pool = nullptr,
          DotPath path = DotPath::quantized);
// Y[x.rows(), rows] = X W^T with activations already encoded (gemv when x has one row).
void gemm(const QMatrix& w, const Activations& x, float* y, ThreadPool* pool = nullptr);

// MoE: experts is [n_expert * rows_per_expert, cols] (GGUF's 3-D expert tensor
// [n_expert, rows, cols]); for each i, y[i, :] = experts[ids[i]] x_i where x_i
// is row i of x (x_rows == ids.size()) or the single row x (x_rows == 1).
// y: [ids.size(), rows_per_expert].
void gather_gemv(const QMatrix& experts, int64_t n_expert, std::span<const int32_t> ids, const Activations& x,
                 float* y, ThreadPool* pool = nullptr);

// Several matrices of one codec and column count in one parallel pass (the
// experts a token picked, gate and up together): y is the concatenation of
// each matrix's output rows. x has 1 row (shared) or one row per matrix.
void multi_gemv(std::span<const QMatrix> mats, const Activations& x, float* y, ThreadPool* pool = nullptr);

}  // namespace moelab::quant
