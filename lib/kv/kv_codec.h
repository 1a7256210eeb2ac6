// Codecs of KV cache rows (one head's keys or values at one position) and the
// two operations attention needs on a compressed cache, done without
// materialising an f32 cache:
//   score  s_j = q . k_j for a run of key rows (query prepared once per head)
//   mix    out = sum_j w_j v_j for a run of value rows
//
// Codecs:
//   f32, f16, q8_0, q4_0   the registry's rows (quant/codec.h): keys scored with
//                          the codec's own dot against the query encoded in the
//                          codec's activation type (f32, or q8_0 as llama.cpp
//                          does for quantized K), values decoded row by row.
//   tq3                    TurboQuant-style (see kv_codec.cpp): random-sign
//                          Walsh-Hadamard rotation, Lloyd-Max 3-bit codes with
//                          one fp16 scale per row; keys add a 1-bit QJL sketch
//                          of the quantization residual and its norm, which
//                          makes q . k unbiased. Scored in the rotated space.
//                          Keys are centred first (centers_keys below). For
//                          softmax, the sketch's term is shrunk to its
//                          posterior mean and the posterior variance added
//                          (see prepare_query's softmax_scale).
//   tq3m                   tq3 keys without the sketch (the biased MSE-only
//                          estimator; an ablation of the QJL term); for softmax
//                          it adds half the codes' expected score variance. As a value
//                          codec tq3 and tq3m are the same rows.
//   tq4m                   tq3m with 4-bit Lloyd-Max codes (34 bytes a row of 64:
//                          a bit more than tq3's key, less score noise than its
//                          sketch); "tq4m/tq3" keeps 3-bit values (4.27x vs f16).
//
// The KV codec setting (EngineConfig::kv_codec, `--kv-codec`) is either one
// name for keys and values ("q8_0") or "K/V" ("tq3/q4_0").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace moelab::kv {

enum class Role { key, value };

class RowCodec {
 public:
  virtual ~RowCodec() = default;
  std::string_view name() const { return name_; }
  int64_t head_dim() const { return head_dim_; }
  size_t row_bytes() const { return row_bytes_; }

  // Whether keys are stored minus a per-(layer, head) centre (KvCache::calibrate).
  // Softmax is invariant to adding q . c to every score of a query, so the centre
  // never needs to be added back; it removes the large per-channel mean of
  // LLM keys, which would otherwise take most of the codes' range.
  virtual bool centers_keys() const { return false; }

  // One row of head_dim values. qjl_weight: per-channel weights of tq3's key
  // sketch ([head_dim], nullptr = all 1); the same weights must be given to
  // decode and prepare_query. Other codecs ignore them.
  virtual void encode(const float* x, uint8_t* row, const float* qjl_weight = nullptr) const = 0;
  // The value the codec's estimators stand for (for keys of tq3: MSE part + QJL term).
  virtual void decode(const uint8_t* row, float* y, const float* qjl_weight = nullptr) const = 0;

  // Keys. `prepared` holds query_floats() floats (caller's scratch, one per thread).
  // softmax_scale: 0 for the plain estimate of q . k (tq3's: unbiased); else the
  // scale attention multiplies scores by before softmax, for the score s whose
  // exp(scale * s) estimates exp(scale * q . k) given the stored row. The two
  // differ for tq3, tq3m and tq4m, whose score error would otherwise bias exp()
  // by a per-key factor that does not average out over the context
  // (kv_codec.cpp says how they correct it); other codecs ignore it.
  size_t query_floats() const { return query_floats_; }
  virtual void prepare_query(const float* q, float* prepared, const float* qjl_weight = nullptr,
                             float softmax_scale = 0.0f) const = 0;
  // scores[j] = the estimate of q . k_j for rows at rows + j * stride, j < n.
  virtual void score(const uint8_t* rows, size_t stride, int64_t n, const float* prepared, float* scores) const = 0;

  // Values: out[head_dim] = sum_j weights[j] v_j (overwrites out). scratch: mix_floats() floats.
  size_t mix_floats() const { return mix_floats_; }
  virtual void mix(const uint8_t* rows, size_t stride, int64_t n, const float* weights, float* scratch,
                   float* out) const = 0;

  // Tiled attention (kv/attention.h) works on decoded tiles of rows, shared by
  // every query of a batch and of a KV head's query group: each codec maps a
  // query and its key rows into a "score space" of score_dim() floats where the
  // score is a plain dot product (the same estimate score() computes), and its
  // value rows into a "mix space" of head_dim floats that finish_mix() maps back.
  // softmax_scale as for prepare_query.
  size_t score_dim() const { return score_dim_; }
  virtual void query_to_score_space(const float* q, float* out, const float* qjl_weight = nullptr,
                                    float softmax_scale = 0.0f) const = 0;
  // Key rows j < n into the transposed tile kt[i * ld + j], i < score_dim().
  virtual void keys_to_score_space(const uint8_t* rows, size_t stride, int64_t n, float* kt, int64_t ld) const = 0;
  // Value rows j < n into out[j * head_dim + i].
  virtual void values_to_mix_space(const uint8_t* rows, size_t stride, int64_t n, float* out) const = 0;
  // out = the channel-space vector of a mix-space sum (acc is overwritten; out may be acc).
  virtual void finish_mix(float* acc, float* out) const = 0;

 protected:
  RowCodec(std::string name, int64_t head_dim) : name_(std::move(name)), head_dim_(head_dim) {}
  std::string name_;
  int64_t head_dim_;
  size_t row_bytes_ = 0, query_floats_ = 0, mix_floats_ = 0, score_dim_ = 0;
};

// Throws moelab::Error naming the codec and why (unknown name, head_dim it cannot store).
std::unique_ptr<RowCodec> make_row_codec(std::string_view name, Role role, int64_t head_dim);

// "q8_0" -> {q8_0, q8_0}; "tq3/q4_0" -> {tq3, q4_0}. Errors list the syntax and the known names.
struct KvCodecSpec {
  std::string k, v;
  // "q8_0" when k == v, else "k/v": the form sessions record.
  std::string canonical() const { return k == v ? k : k + "/" + v; }
};
KvCodecSpec parse_kv_codec(std::string_view spec);
std::string known_kv_codec_names();  // "f32, f16, q8_0, q4_0, tq3, tq3m"

}  // namespace moelab::kv
