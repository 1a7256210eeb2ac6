#include "quant/ops.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "quant/simd.h"

namespace moelab::quant {
namespace {

std::string shape_str(int64_t rows, int64_t cols) {
  return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

// Rows per parallel chunk: enough that a chunk streams a few KiB of weights.
constexpr int64_t kRowGrain = 4;

// Values decoded at a time on the exact path: a multiple of the block size
// near 256, so the scratch lives on the stack.
constexpr int64_t kExactChunk = 256;

float dot_exact(const Codec& codec, const void* w_row, const float* x, int64_t n) {
  if (codec.act == "f32") return codec.dot()(w_row, x, n);
  const int64_t chunk = codec.block_values >= kExactChunk ? codec.block_values
                                                          : kExactChunk / codec.block_values * codec.block_values;
  alignas(64) float buf[1024];  // >= chunk for every codec (largest block is 256 values)
  const DecodeFn decode = codec.decode();
  const auto* bytes = static_cast<const uint8_t*>(w_row);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t len = std::min(chunk, n - i);
    decode(bytes + size_t(i / codec.block_values) * size_t(codec.block_bytes), buf, len);
    float s = 0.0f;
    for (int64_t j = 0; j < len; ++j) s += buf[j] * x[i + j];
    sum += s;
  }
  return sum;
}

}  // namespace

QMatrix make_qmatrix(const Codec& codec, const void* data, size_t data_bytes, int64_t rows, int64_t cols) {
  if (rows < 0 || cols <= 0) throw Error("matrix " + shape_str(rows, cols) + ": invalid shape");
  const size_t row_bytes = codec.row_bytes(cols);
  if (size_t(rows) > data_bytes / std::max<size_t>(row_bytes, 1) || size_t(rows) * row_bytes != data_bytes)
    throw Error("matrix " + shape_str(rows, cols) + " of codec " + std::string(codec.name) + " needs " +
                std::to_string(size_t(rows) * row_bytes) + " bytes, buffer has " + std::to_string(data_bytes));
  if (data == nullptr && data_bytes > 0) throw Error("matrix " + shape_str(rows, cols) + ": null data");
  if (reinterpret_cast<uintptr_t>(data) % codec.alignment() != 0)
    throw Error("matrix " + shape_str(rows, cols) + " of codec " + std::string(codec.name) + ": data address is not " +
                std::to_string(codec.alignment()) + "-byte aligned");
  return QMatrix{&codec, static_cast<const uint8_t*>(data), rows, cols, row_bytes};
}

std::vector<uint8_t> quantize(const Codec& codec, std::span<const float> x, int64_t rows, int64_t cols,
                              const float* importance, bool reference, ThreadPool* pool) {
  if (rows < 0 || cols <= 0 || x.size() != size_t(rows) * size_t(cols))
    throw Error("quantize " + std::string(codec.name) + ": input has " + std::to_string(x.size()) +
                " values, shape " + shape_str(rows, cols) + " needs rows * cols");
  const size_t row_bytes = codec.row_bytes(cols);
  std::vector<uint8_t> out(size_t(rows) * row_bytes);
  const EncodeFn encode = reference ? codec.encode_ref : codec.encode;
  auto body = [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r)
      encode(x.data() + size_t(r) * size_t(cols), out.data() + size_t(r) * row_bytes, cols, importance);
  };
  if (pool) pool->parallel_for(rows, 1, body);
  else body(0, rows, 0);
  return out;
}

void dequantize(const QMatrix& w, std::span<float> y, ThreadPool* pool) {
  if (y.size() != size_t(w.rows) * size_t(w.cols))
    throw Error("dequantize " + std::string(w.codec->name) + ": output has " + std::to_string(y.size()) +
                " values, matrix " + shape_str(w.rows, w.cols) + " needs rows * cols");
  const DecodeFn decode = w.codec->decode();
  auto body = [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) decode(w.row(r), y.data() + size_t(r) * size_t(w.cols), w.cols);
  };
  if (pool) pool->parallel_for(w.rows, kRowGrain, body);
  else body(0, w.rows, 0);
}

void Activations::encode(const Codec& weight_codec, const float* x, int64_t m, int64_t n, DotPath path) {
  // The name lookup runs once per (weight codec, path), not on every call of the decode loop.
  // q8_0 / q8_1 inputs are quantized as llama.cpp's x86 backend does (simd.h), not by the reference.
  if (act_codec_ == nullptr || weight_codec_ != &weight_codec || path_ != path) {
    act_codec_ = &(path == DotPath::exact ? codec("f32") : codec(weight_codec.act));
    act_encode_ = act_codec_->name == "q8_0"   ? encode_q8_0_act_dispatch
                  : act_codec_->name == "q8_1" ? encode_q8_1_act_dispatch
                                               : act_codec_->encode;
  }
  const Codec& act = *act_codec_;
  weight_codec.row_bytes(n);  // validates n against the weight codec's block size
  row_bytes_ = act.row_bytes(n);
  if (data_.size() < size_t(m) * row_bytes_) data_.resize(size_t(m) * row_bytes_);
  for (int64_t i = 0; i < m; ++i) act_encode_(x + size_t(i) * size_t(n), data_.data() + size_t(i) * row_bytes_, n, nullptr);
  weight_codec_ = &weight_codec;
  m_ = m;
  n_ = n;
  path_ = path;
}

static void check_activations(const Codec& codec, const Activations& act, int64_t cols, const char* op) {
  if (act.for_codec() != &codec)
    throw Error(std::string(op) + ": activations were encoded for codec " +
                (act.for_codec() ? std::string(act.for_codec()->name) : "(none)") + ", weights are " +
                std::string(codec.name));
  if (act.cols() != cols)
    throw Error(std::string(op) + ": activation length " + std::to_string(act.cols()) + " != weight columns " +
                std::to_string(cols));
}

float dot(const Codec& codec, const void* w_row, const Activations& act, int64_t act_row) {
  if (act_row < 0 || act_row >= act.rows()) throw Error("dot: activation row out of range");
  check_activations(codec, act, act.cols(), "dot");
  if (act.path() == DotPath::exact)
    return dot_exact(codec, w_row, static_cast<const float*>(act.row(act_row)), act.cols());
  return codec.dot()(w_row, act.row(act_row), act.cols());
}

void gemv(const QMatrix& w, const Activations& x, float* y, ThreadPool* pool) {
  if (x.rows() != 1) throw Error("gemv: " + std::to_string(x.rows()) + " activation rows, expected 1 (use gemm)");
  gemm(w, x, y, pool);
}

void gemv(const QMatrix& w, const float* x, float* y, ThreadPool* pool, DotPath path) {
  thread_local Activations act;
  act.encode(*w.codec, x, 1, w.cols, path);
  gemv(w, act, y, pool);
}

// Test-only: MOELAB_TEST_SLOW_GEMM=<n> runs every gemm/gemv n times, so tests
// can prove that the regression gate (`moelab regress`) catches a slower kernel.
// Read once; 1 (no effect) when unset.
static int test_slowdown_factor() {
  static const int factor = [] {
    const char* env = std::getenv("MOELAB_TEST_SLOW_GEMM");
    const int n = env ? std::atoi(env) : 1;
    return n > 1 ? n : 1;
  }();
  return factor;
}

void gemm(const QMatrix& w, const Activations& x, float* y, ThreadPool* pool) {
  check_activations(*w.codec, x, w.cols, "gemm");
  const Codec& c = *w.codec;
  const int64_t m = x.rows();
  // Each weight row is loaded once and stays in L1 while all m activation rows use it.
  auto body = [&](int64_t begin, int64_t end, int) {
    const DotFn f = c.dot();
    for (int64_t r = begin; r < end; ++r)
      for (int64_t i = 0; i < m; ++i)
        y[size_t(i) * size_t(w.rows) + size_t(r)] =
            x.path() == DotPath::exact ? dot_exact(c, w.row(r), static_cast<const float*>(x.row(i)), w.cols)
                                       : f(w.row(r), x.row(i), w.cols);
  };
  for (int rep = test_slowdown_factor(); rep > 0; --rep) {
    if (pool) pool->parallel_for(w.rows, kRowGrain, body);
    else body(0, w.rows, 0);
  }
}

void gemm(const QMatrix& w, const float* x, int64_t m, float* y, ThreadPool* pool, DotPath path) {
  thread_local Activations act;
  act.encode(*w.codec, x, m, w.cols, path);
  gemm(w, act, y, pool);
}

void gather_gemv(const QMatrix& experts, int64_t n_expert, std::span<const int32_t> ids, const Activations& x,
                 float* y, ThreadPool* pool) {
  if (n_expert <= 0 || experts.rows % n_expert != 0)
    throw Error("gather_gemv: " + std::to_string(experts.rows) + " rows do not split into " +
                std::to_string(n_expert) + " experts");
  check_activations(*experts.codec, x, experts.cols, "gather_gemv");
  const int64_t n_ids = int64_t(ids.size());
  if (x.rows() != 1 && x.rows() != n_ids)
    throw Error("gather_gemv: " + std::to_string(x.rows()) + " activation rows for " + std::to_string(n_ids) +
                " expert ids (need 1 or one per id)");
  for (int32_t id : ids)
    if (id < 0 || id >= n_expert)
      throw Error("gather_gemv: expert id " + std::to_string(id) + " out of range [0, " + std::to_string(n_expert) + ")");
  const int64_t rows = experts.rows / n_expert;
  const Codec& c = *experts.codec;
  // Flatten (id, row) so each thread streams one contiguous run of expert rows.
  auto body = [&](int64_t begin, int64_t end, int) {
    const DotFn f = c.dot();
    for (int64_t k = begin; k < end; ++k) {
      const int64_t i = k / rows, r = k % rows;
      const uint8_t* wr = experts.row(int64_t(ids[size_t(i)]) * rows + r);
      const void* xr = x.row(x.rows() == 1 ? 0 : i);
      y[k] = x.path() == DotPath::exact ? dot_exact(c, wr, static_cast<const float*>(xr), experts.cols)
                                        : f(wr, xr, experts.cols);
    }
  };
  if (pool) pool->parallel_for(n_ids * rows, kRowGrain, body);
  else body(0, n_ids * rows, 0);
}

void multi_gemv(std::span<const QMatrix> mats, const Activations& x, float* y, ThreadPool* pool) {
  if (mats.empty()) return;
  const Codec& c = *mats[0].codec;
  const int64_t cols = mats[0].cols;
  check_activations(c, x, cols, "multi_gemv");
  if (x.rows() != 1 && x.rows() != int64_t(mats.size()))
    throw Error("multi_gemv: " + std::to_string(x.rows()) + " activation rows for " + std::to_string(mats.size()) +
                " matrices (need 1 or one per matrix)");
  thread_local std::vector<int64_t> first_row;  // [mats.size() + 1] prefix sums of rows
  first_row.resize(mats.size() + 1);
  first_row[0] = 0;
  for (size_t i = 0; i < mats.size(); ++i) {
    if (mats[i].codec != &c || mats[i].cols != cols)
      throw Error("multi_gemv: matrix " + std::to_string(i) + " is " + std::string(mats[i].codec->name) + " [" +
                  std::to_string(mats[i].rows) + ", " + std::to_string(mats[i].cols) + "], expected codec " +
                  std::string(c.name) + " with " + std::to_string(cols) + " columns");
    first_row[i + 1] = first_row[i] + mats[i].rows;
  }
  const int64_t total = first_row.back();
  const int64_t* starts = first_row.data();
  auto body = [&](int64_t begin, int64_t end, int) {
    const DotFn f = c.dot();
    size_t m = size_t(std::upper_bound(starts, starts + mats.size(), begin) - starts) - 1;
    for (int64_t k = begin; k < end; ++k) {
      while (k >= starts[m + 1]) ++m;
      const uint8_t* wr = mats[m].row(k - starts[m]);
      const void* xr = x.row(x.rows() == 1 ? 0 : int64_t(m));
      y[k] = x.path() == DotPath::exact ? dot_exact(c, wr, static_cast<const float*>(xr), cols) : f(wr, xr, cols);
    }
  };
  if (pool) pool->parallel_for(total, kRowGrain, body);
  else body(0, total, 0);
}

}  // namespace moelab::quant
