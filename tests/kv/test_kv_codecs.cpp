// KV row codecs: the K/V setting's syntax, bytes per token, that the
// compressed-domain score / mix agree with decoding, and that tq3's QJL term
// makes q . k unbiased (where the MSE-only codes underestimate it).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/errors.h"
#include "core/error.h"
#include "kv/kv_cache.h"
#include "kv/kv_codec.h"

namespace moelab::kv {
namespace {

using test::error_of;

TEST(KvCodecSpec, ParsesOneNameOrKeyValuePair) {
  const KvCodecSpec one = parse_kv_codec("q8_0");
  EXPECT_EQ(one.k, "q8_0");
  EXPECT_EQ(one.v, "q8_0");
  EXPECT_EQ(one.canonical(), "q8_0");
  const KvCodecSpec two = parse_kv_codec("tq3/q4_0");
  EXPECT_EQ(two.k, "tq3");
  EXPECT_EQ(two.v, "q4_0");
  EXPECT_EQ(two.canonical(), "tq3/q4_0");
  EXPECT_EQ(parse_kv_codec("f16/f16").canonical(), "f16");
}

TEST(KvCodecSpec, RejectsBadSettingsWithTheSyntax) {
  for (const char* bad : {"", "/", "q8_0/", "/q8_0", "q8_0/q4_0/f16", "q4_k", "tq3/zz", "F16"}) {
    const std::string e = error_of([&] { parse_kv_codec(bad); });
    EXPECT_NE(e.find("kv_codec"), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("K/V"), std::string::npos) << bad << ": " << e;
  }
  EXPECT_NE(error_of([] { parse_kv_codec("tq3/zz"); }).find("unknown codec \"zz\""), std::string::npos);
  // head_dim the codec cannot store
  EXPECT_NE(error_of([] { make_row_codec("q4_0", Role::key, 48); }).find("head_dim 48"), std::string::npos);
  EXPECT_NE(error_of([] { make_row_codec("tq3", Role::key, 96); }).find("head_dim 96"), std::string::npos);
}

// Bytes per row of 64 values, counted from the layouts: codes + scales + norms + sketch.
TEST(KvCodec, BytesPerTokenPerCodec) {
  struct Case {
    const char* spec;
    size_t k, v;
  } cases[] = {{"f32", 256, 256}, {"f16", 128, 128}, {"q8_0", 68, 68}, {"q4_0", 36, 36},
               // tq3 keys: 24 code bytes + fp16 scale + fp16 residual norm + 8 sketch bytes; values: codes + scale
               {"tq3", 36, 26}, {"tq3m", 26, 26}, {"tq3/q4_0", 36, 36},
               // tq4m: 32 code bytes + fp16 scale
               {"tq4m", 34, 34}, {"tq4m/tq3", 34, 26}};
  // SmolLM2-135M's shape: 30 layers, 3 KV heads of 64.
  const size_t f16 = KvCache(30, 4, 3, 64, "f16").bytes_per_token();
  EXPECT_EQ(f16, size_t(30 * 3 * 256));
  for (const Case& c : cases) {
    KvCache cache(30, 4, 3, 64, c.spec);
    EXPECT_EQ(cache.head_bytes_k(), c.k) << c.spec;
    EXPECT_EQ(cache.head_bytes_v(), c.v) << c.spec;
    EXPECT_EQ(cache.bytes_per_token(), size_t(30 * 3) * (c.k + c.v)) << c.spec;
    EXPECT_EQ(cache.bytes(), 4 * cache.bytes_per_token()) << c.spec;
  }
  EXPECT_GE(double(f16) / double(KvCache(30, 4, 3, 64, "tq3").bytes_per_token()), 3.8);
  EXPECT_GE(double(f16) / double(KvCache(30, 4, 3, 64, "q4_0").bytes_per_token()), 3.5);
  // head_dim 128 (Qwen3, OLMoE): same ratios
  EXPECT_GE(double(KvCache(2, 4, 4, 128, "f16").bytes_per_token()) / double(KvCache(2, 4, 4, 128, "tq3").bytes_per_token()),
            3.8);
}

std::vector<float> gaussian(std::mt19937_64& rng, int64_t n, float sigma = 1.0f) {
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = nd(rng);
  return v;
}

// score() on the compressed row equals the dot product of the decoded row, and
// mix() equals the weighted sum of decoded rows: the fast paths compute what the format means.
TEST(KvCodec, ScoreAndMixMatchDecodedRows) {
  std::mt19937_64 rng(5);
  for (int64_t hd : {64, 128, 256})
    for (const char* name : {"f32", "f16", "q8_0", "q4_0", "tq3", "tq3m", "tq4m"})
      for (Role role : {Role::key, Role::value}) {
        const auto codec = make_row_codec(name, role, hd);
        const int64_t n = 7;
        std::vector<uint8_t> rows(size_t(n) * codec->row_bytes());
        std::vector<std::vector<float>> decoded;
        for (int64_t j = 0; j < n; ++j) {
          auto x = gaussian(rng, hd);
          x[size_t(j)] *= 20.0f;  // an outlier channel
          codec->encode(x.data(), rows.data() + size_t(j) * codec->row_bytes());
          decoded.emplace_back(size_t(hd));
          codec->decode(rows.data() + size_t(j) * codec->row_bytes(), decoded.back().data());
          double err = 0, ref = 0;
          for (int64_t i = 0; i < hd; ++i) {
            err += std::pow(decoded.back()[size_t(i)] - x[size_t(i)], 2);
            ref += double(x[size_t(i)]) * x[size_t(i)];
          }
          EXPECT_LT(err / ref, 0.25) << name << " hd " << hd;  // decodes to roughly x (tq3 keys carry QJL noise)
        }
        const auto q = gaussian(rng, hd);
        std::vector<float> prepared(codec->query_floats()), scores(static_cast<size_t>(n));
        codec->prepare_query(q.data(), prepared.data());
        codec->score(rows.data(), codec->row_bytes(), n, prepared.data(), scores.data());
        const bool float_query = std::string(name) == "f32" || std::string(name) == "f16" || name[0] == 't';
        for (int64_t j = 0; j < n; ++j) {
          double ref = 0, mag = 0;
          for (int64_t i = 0; i < hd; ++i) {
            ref += double(decoded[size_t(j)][size_t(i)]) * q[size_t(i)];
            mag += std::fabs(double(decoded[size_t(j)][size_t(i)]) * q[size_t(i)]);
          }
          // q8_0/q4_0 score against the query rounded to q8_0 (as llama.cpp does): a little looser.
          EXPECT_NEAR(scores[size_t(j)], ref, (float_query ? 1e-4 : 1e-2) * mag) << name << " hd " << hd;
        }
        if (role == Role::key) continue;  // mixing is for value rows (tq3 keys mix without their sketch)
        std::vector<float> w = {0.1f, 0.3f, 0.05f, 0.2f, 0.15f, 0.1f, 0.1f}, out(static_cast<size_t>(hd)),
                           scratch(codec->mix_floats());
        codec->mix(rows.data(), codec->row_bytes(), n, w.data(), scratch.data(), out.data());
        for (int64_t i = 0; i < hd; ++i) {
          double ref = 0;
          for (int64_t j = 0; j < n; ++j) ref += double(w[size_t(j)]) * decoded[size_t(j)][size_t(i)];
          EXPECT_NEAR(out[size_t(i)], ref, 1e-4 * (1 + std::fabs(ref))) << name << " hd " << hd;
        }
      }
}

// TurboQuant's claim for the QJL residual sketch: the score estimator is
// unbiased. Keys and queries correlated as in attention (q = k + noise): the
// MSE codes alone shrink q . k by about |r|^2 (biased low); tq3's mean error is
// near 0 relative to its spread.
TEST(KvCodec, Tq3ScoreIsUnbiasedAndMseCodesAreNot) {
  std::mt19937_64 rng(11);
  for (int64_t hd : {64, 128}) {
    const auto tq3 = make_row_codec("tq3", Role::key, hd);
    const auto tq3m = make_row_codec("tq3m", Role::key, hd);
    std::vector<uint8_t> row(tq3->row_bytes()), row_m(tq3m->row_bytes());
    std::vector<float> prepared(tq3->query_floats()), prepared_m(tq3m->query_floats());
    const int n = 12000;
    double sum = 0, sum2 = 0, sum_m = 0, sum2_m = 0;
    for (int i = 0; i < n; ++i) {
      auto k = gaussian(rng, hd);
      const auto noise = gaussian(rng, hd);
      std::vector<float> q(static_cast<size_t>(hd));
      double exact = 0;
      for (int64_t d = 0; d < hd; ++d) {
        q[size_t(d)] = k[size_t(d)] + noise[size_t(d)];
        exact += double(q[size_t(d)]) * k[size_t(d)];
      }
      float s, s_m;
      tq3->encode(k.data(), row.data());
      tq3->prepare_query(q.data(), prepared.data());
      tq3->score(row.data(), row.size(), 1, prepared.data(), &s);
      tq3m->encode(k.data(), row_m.data());
      tq3m->prepare_query(q.data(), prepared_m.data());
      tq3m->score(row_m.data(), row_m.size(), 1, prepared_m.data(), &s_m);
      sum += s - exact;
      sum2 += (s - exact) * (s - exact);
      sum_m += s_m - exact;
      sum2_m += (s_m - exact) * (s_m - exact);
    }
    const double mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
    const double mean_m = sum_m / n, sd_m = std::sqrt(sum2_m / n - mean_m * mean_m);
    // 12000 samples: the standard error of the mean is sd / 110, so 0.05 sd is > 5 standard errors.
    EXPECT_LT(std::fabs(mean), 0.05 * sd) << "hd " << hd << " mean " << mean << " sd " << sd;
    EXPECT_LT(mean_m, -0.5 * sd_m) << "hd " << hd << " mean " << mean_m << " sd " << sd_m;
    // The relative error stays small: |q . k| is about hd here.
    EXPECT_LT(sd, 0.1 * double(hd)) << "hd " << hd;
  }
}


// Score errors s - q . k of one key codec over n keys k ~ N(0, 1) with queries
// q = (k + noise) * gain (a few loud query channels, as LLM queries have),
// scored plain and with the channel weights w (the same keys and queries).
struct ErrorStats {
  double mean = 0, sd = 0, mean_square = 0;
};
struct PlainAndWeighted {
  ErrorStats plain, weighted;
};
PlainAndWeighted channel_weight_score_errors(const RowCodec& codec, const std::vector<float>& gain,
                                             const std::vector<float>& w, int n, std::mt19937_64& rng) {
  const int64_t hd = codec.head_dim();
  std::vector<uint8_t> row(codec.row_bytes());
  std::vector<float> prepared(codec.query_floats()), q(static_cast<size_t>(hd));
  double sum[2] = {}, sum2[2] = {};
  for (int i = 0; i < n; ++i) {
    const auto k = gaussian(rng, hd), noise = gaussian(rng, hd);
    double exact = 0;
    for (int64_t d = 0; d < hd; ++d) {
      q[size_t(d)] = (k[size_t(d)] + noise[size_t(d)]) * gain[size_t(d)];
      exact += double(q[size_t(d)]) * k[size_t(d)];
    }
    for (int weighted = 0; weighted < 2; ++weighted) {
      const float* cw = weighted ? w.data() : nullptr;
      float s;
      codec.encode(k.data(), row.data(), cw);
      codec.prepare_query(q.data(), prepared.data(), cw);
      codec.score(row.data(), row.size(), 1, prepared.data(), &s);
      sum[weighted] += s - exact;
      sum2[weighted] += (s - exact) * (s - exact);
    }
  }
  PlainAndWeighted out;
  for (int weighted = 0; weighted < 2; ++weighted) {
    ErrorStats& e = weighted ? out.weighted : out.plain;
    e.mean = sum[weighted] / n;
    e.mean_square = sum2[weighted] / n;
    e.sd = std::sqrt(e.mean_square - e.mean * e.mean);
  }
  return out;
}

// The channel weights of tq3's sketch keep the estimate unbiased and, for
// queries with a few outlier channels (as LLM queries have), shrink its spread.
TEST(KvCodec, Tq3WeightedSketchIsUnbiasedWithLessSpread) {
  std::mt19937_64 rng(13);
  const int64_t hd = 64;
  const auto tq3 = make_row_codec("tq3", Role::key, hd);
  std::vector<float> w(static_cast<size_t>(hd)), gain(static_cast<size_t>(hd), 1.0f);
  for (int64_t i : {3, 17, 40, 61}) gain[size_t(i)] = 10.0f;  // outlier channels of the queries
  double mean_rms = 0;
  for (int64_t i = 0; i < hd; ++i) mean_rms += std::sqrt(2.0) * gain[size_t(i)] / double(hd);
  for (int64_t i = 0; i < hd; ++i) w[size_t(i)] = float(std::sqrt(std::sqrt(2.0) * gain[size_t(i)] / mean_rms));
  const PlainAndWeighted e = channel_weight_score_errors(*tq3, gain, w, 6000, rng);
  EXPECT_LT(std::fabs(e.weighted.mean), 0.06 * e.weighted.sd) << "mean " << e.weighted.mean << " sd " << e.weighted.sd;
  EXPECT_LT(std::fabs(e.plain.mean), 0.06 * e.plain.sd) << "mean " << e.plain.mean << " sd " << e.plain.sd;
  EXPECT_LT(e.weighted.sd, 0.8 * e.plain.sd) << "weighted sd " << e.weighted.sd << ", plain sd " << e.plain.sd;
}

// The channel weights also shape the 3-bit codes (keys coded as w * k, scored
// with q / w): for queries with a few loud channels and keys without, the
// mean squared score error of the MSE-only codes shrinks (TurboQuant's
// rotation alone spreads the error evenly over every channel).
TEST(KvCodec, Tq3ChannelWeightsShrinkTheCodesScoreError) {
  std::mt19937_64 rng(17);
  const int64_t hd = 64;
  std::vector<float> w(static_cast<size_t>(hd)), gain(static_cast<size_t>(hd), 1.0f);
  for (int64_t i : {5, 21, 38, 50}) gain[size_t(i)] = 10.0f;
  double mean = 0;  // w_i^2 ~ rms(q_i) / rms(k_i) as KvCache::calibrate sets them (keys: rms 1)
  for (int64_t i = 0; i < hd; ++i) mean += gain[size_t(i)] / double(hd);
  for (int64_t i = 0; i < hd; ++i) w[size_t(i)] = float(std::sqrt(gain[size_t(i)] / mean));
  for (const char* name : {"tq3m", "tq4m"}) {
    const PlainAndWeighted e = channel_weight_score_errors(*make_row_codec(name, Role::key, hd), gain, w, 4000, rng);
    EXPECT_LT(e.weighted.mean_square, 0.6 * e.plain.mean_square)
        << name << ": weighted " << e.weighted.mean_square << ", plain " << e.plain.mean_square;
  }
}

// Softmax weighs a key by exp(a s) (a = 1/sqrt(head_dim)); a noisy or
// variance-dropping score estimate biases that weight by a per-key factor that
// does not average out over many keys. With the softmax correction
// (prepare_query's softmax_scale) the sum of exp(a s) over many random keys
// matches the exact one: tq3's plain (unbiased) estimate overshoots it, the
// MSE-only codes' undershoots it. For tq3 the correction also shrinks the
// sketch's noise, so the probabilities themselves get closer to the exact ones.
TEST(KvCodec, SoftmaxCorrectionMatchesTheExactExpSum) {
  std::mt19937_64 rng(19);
  const int64_t hd = 64, n_keys = 4000, n_queries = 32;
  const float a = 0.125f;  // 1 / sqrt(64)
  std::vector<std::vector<float>> keys;
  for (int64_t j = 0; j < n_keys; ++j) keys.push_back(gaussian(rng, hd));
  std::vector<std::vector<float>> queries;
  for (int64_t i = 0; i < n_queries; ++i) queries.push_back(gaussian(rng, hd, 3.0f));  // a |q| ~ 3: peaked rows
  for (const char* name : {"tq3", "tq3m", "tq4m"}) {
    const auto codec = make_row_codec(name, Role::key, hd);
    std::vector<uint8_t> rows(size_t(n_keys) * codec->row_bytes());
    for (int64_t j = 0; j < n_keys; ++j) codec->encode(keys[size_t(j)].data(), &rows[size_t(j) * codec->row_bytes()]);
    std::vector<float> prepared(codec->query_floats()), plain(static_cast<size_t>(n_keys)),
        corrected(static_cast<size_t>(n_keys));
    double bias_plain = 0, bias_corrected = 0, tv_plain = 0, tv_corrected = 0;
    for (const auto& q : queries) {
      codec->prepare_query(q.data(), prepared.data(), nullptr, 0.0f);
      codec->score(rows.data(), codec->row_bytes(), n_keys, prepared.data(), plain.data());
      codec->prepare_query(q.data(), prepared.data(), nullptr, a);
      codec->score(rows.data(), codec->row_bytes(), n_keys, prepared.data(), corrected.data());
      std::vector<double> exact(static_cast<size_t>(n_keys));
      double sum = 0, sum_p = 0, sum_c = 0;
      for (int64_t j = 0; j < n_keys; ++j) {
        double s = 0;
        for (int64_t d = 0; d < hd; ++d) s += double(q[size_t(d)]) * keys[size_t(j)][size_t(d)];
        exact[size_t(j)] = s;
        sum += std::exp(a * s);
        sum_p += std::exp(a * double(plain[size_t(j)]));
        sum_c += std::exp(a * double(corrected[size_t(j)]));
      }
      bias_plain += std::log(sum_p / sum) / n_queries;
      bias_corrected += std::log(sum_c / sum) / n_queries;
      for (int64_t j = 0; j < n_keys; ++j) {  // total variation between the softmax rows
        const double p = std::exp(a * exact[size_t(j)]) / sum;
        tv_plain += std::fabs(std::exp(a * double(plain[size_t(j)])) / sum_p - p) / n_queries;
        tv_corrected += std::fabs(std::exp(a * double(corrected[size_t(j)])) / sum_c - p) / n_queries;
      }
    }
    const std::string what = std::string(name) + ": log-sum bias plain " + std::to_string(bias_plain) + ", corrected " +
                             std::to_string(bias_corrected) + "; probability TV plain " + std::to_string(tv_plain) +
                             ", corrected " + std::to_string(tv_corrected);
    if (std::string(name) == "tq3") {
      EXPECT_GT(bias_plain, 0.05) << what;  // exp() of the sketch's noise: too much weight
      EXPECT_LT(tv_corrected, 0.8 * tv_plain) << what;
    } else {
      EXPECT_LT(bias_plain, -0.02) << what;  // the codes' dropped variance: too little
    }
    // At least halved (tq4m's bias is small, ~3x the sampling noise of 32 peaked rows).
    EXPECT_LT(std::fabs(bias_corrected), 0.5 * std::fabs(bias_plain)) << what;
  }
}

}  // namespace
}  // namespace moelab::kv
