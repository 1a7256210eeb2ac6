// moelab calibrate on a tiny budget: every field of the profile is measured,
// sourced, and the profile reads back through the hardware file parser.
#include <gtest/gtest.h>

#include <fstream>

#include "../common/paths.h"
#include "perfmodel/calibrate.h"
#include "perfmodel/hardware.h"

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

}  // namespace
}  // namespace moelab::perfmodel
