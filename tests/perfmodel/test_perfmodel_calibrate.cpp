// moelab calibrate on a tiny budget: every field of the profile is measured,
// sourced, and the profile reads back through the hardware file parser; the
// decode-layer GEMV measurement accounts bytes per kind and refuses calls it
// cannot run.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "../common/paths.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "perfmodel/calibrate.h"
#include "perfmodel/hardware.h"
#include "quant/codec.h"

namespace moelab::perfmodel {
namespace {

TEST(PerfmodelCalibrate, TinyRunGivesAProfileThatReadsBack) {
  CalibrateOptions opts;
  opts.scratch_dir = test::temp_file("calibrate");
  opts.file_bytes = size_t(16) << 20;
  opts.seconds_per_point = 0.02;
  opts.request_kib = {4, 64};
  opts.queue_depths = {1, 2};
  opts.codecs = {"q4_k"};
  opts.memory_bytes = size_t(8) << 20;
  opts.gemv_bytes = size_t(4) << 20;
  opts.threads = 2;
  opts.id = "calibrated";
  const HardwareProfile hw = calibrate(opts);
  EXPECT_GT(hw.cpu.memory_read_gbs.value, 0);
  ASSERT_TRUE(hw.cpu.memory_read_gbs_1thread);
  EXPECT_GT(hw.cpu.gemv_gbs.at("q4_k").value, 0);
  ASSERT_TRUE(hw.cpu.gflops);
  EXPECT_GT(hw.cpu.gflops->value, 0);
  ASSERT_EQ(hw.ssd.read.size(), 4u);  // a full 2 x 2 grid
  for (const auto& p : hw.ssd.read) {
    EXPECT_GT(p.gbs, 0);
    EXPECT_NE(p.source.find("measured by moelab calibrate on"), std::string::npos);
  }
  ASSERT_TRUE(hw.ssd.latency_us);
  EXPECT_GT(hw.ssd.latency_us->value, 0);
  EXPECT_TRUE(std::filesystem::is_empty(opts.scratch_dir));  // scratch file removed

  const auto path = test::temp_file("calibrated.json");
  std::ofstream(path) << to_json(hw).dump(2);
  const HardwareProfile back = load_hardware_file(path);
  EXPECT_EQ(back.ssd.read.size(), 4u);
  // The grid interpolates exactly at a measured point (to the 4 digits written).
  EXPECT_NEAR(back.ssd_read_gbs(64 * 1024, 2), hw.ssd.read[3].gbs, 1e-3 * hw.ssd.read[3].gbs);
}

// A decode layer's calls: each kind's bytes are its matrices' encoded bytes,
// and both kinds get a rate of their own.
TEST(PerfmodelCalibrate, DecodeGemvRatesSplitResidentAndExpertBytes) {
  ThreadPool pool(2);
  const quant::Codec& q4k = quant::codec("q4_k");
  const std::vector<GemvCall> layer = {
      {"q4_k", 512, 256, 1, 1, false},  // an attention projection
      {"f32", 8, 256, 1, 1, false},     // a router
      {"q4_k", 64, 256, 4, 1, true},    // 2 experts' gates and ups, one shared activation row
      {"q4_k", 256, 512, 2, 2, true},   // their downs, one activation row each
  };
  const DecodeGemvRates r = measure_decode_gemv(layer, size_t(2) << 20, pool, 2);
  EXPECT_DOUBLE_EQ(r.resident_bytes, double(q4k.row_bytes(256) * 512 + 8 * 256 * 4));
  EXPECT_DOUBLE_EQ(r.expert_bytes, double(q4k.row_bytes(256) * 64 * 4 + q4k.row_bytes(512) * 256 * 2));
  EXPECT_GT(r.resident_gbs, 0);
  EXPECT_GT(r.expert_gbs, 0);
  EXPECT_TRUE(std::isfinite(r.resident_gbs) && std::isfinite(r.expert_gbs));

  const std::vector<GemvCall> dense = {{"q8_0", 64, 256, 1, 1, false}};
  const DecodeGemvRates d = measure_decode_gemv(dense, size_t(1) << 20, pool, 1);
  EXPECT_GT(d.resident_gbs, 0);
  EXPECT_EQ(d.expert_gbs, 0);  // no expert calls: no expert rate
  EXPECT_EQ(d.expert_bytes, 0);
}

TEST(PerfmodelCalibrate, DecodeGemvRefusesCallsItCannotRun) {
  ThreadPool pool(1);
  auto refused = [&](const GemvCall& call, const std::string& says) {
    const std::vector<GemvCall> layer = {call};
    try {
      measure_decode_gemv(layer, size_t(1) << 20, pool, 1);
      ADD_FAILURE() << "accepted " << call.codec << " " << call.rows << " x " << call.cols;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  refused({"q9_k", 64, 256, 1, 1, false}, "unknown codec 'q9_k'");
  refused({"q4_k", 64, 200, 1, 1, false}, "200 columns are not whole q4_k blocks");
  refused({"q4_k", 64, 256, 3, 2, true}, "3 matrices, 2 activation rows");
  refused({"q4_k", 0, 256, 1, 1, false}, "0 x 256");
}

}  // namespace
}  // namespace moelab::perfmodel
