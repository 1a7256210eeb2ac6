// Hardware and published files: every committed dataset parses, and each
// defect in the fixtures gets an error naming the file and the JSON pointer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/errors.h"
#include "../common/paths.h"
#include "core/error.h"
#include "perfmodel/hardware.h"
#include "perfmodel/published.h"
#include "perfmodel/reproduce.h"
#include "perfmodel/routing.h"

namespace moelab::perfmodel {
namespace {

namespace fs = std::filesystem;

fs::path fixtures() { return test::fixture_dir("perfmodel"); }
fs::path datasets(const std::string& sub) { return fs::path(MOELAB_SOURCE_DIR) / "datasets" / sub; }

using test::error_of;

TEST(PerfmodelFiles, EveryCommittedHardwareProfileParses) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(datasets("hardware"))) {
    if (e.path().extension() != ".json" || e.path().stem() == "schema") continue;
    SCOPED_TRACE(e.path().string());
    const HardwareProfile hw = load_hardware_file(e.path());
    EXPECT_EQ(hw.id, e.path().stem().string());
    EXPECT_GT(hw.cpu.memory_read_gbs.value, 0);
    EXPECT_FALSE(hw.ssd.read.empty());
    EXPECT_GT(hw.ssd_peak_gbs(), 0);
    ++n;
  }
  EXPECT_GE(n, 5);
}

TEST(PerfmodelFiles, EveryCommittedPublishedFileParsesAndHasSourcedRows) {
  int rows = 0;
  for (const auto& e : fs::directory_iterator(datasets("published"))) {
    if (e.path().extension() != ".json" || e.path().stem() == "schema") continue;
    SCOPED_TRACE(e.path().string());
    const PublishedFile f = load_published_file(e.path());
    for (const auto& r : f.rows) {
      EXPECT_FALSE(r.source.empty()) << r.id;
      EXPECT_GT(r.value, 0) << r.id;
      EXPECT_GT(r.shape.resident_params_per_token, 0) << r.id;
    }
    rows += int(f.rows.size());
  }
  // Every seed row (Kandiga 7, mac-code 10, mlx-kquant 4) plus >= 10 literature rows.
  EXPECT_GE(rows, 31);
}

struct BadCase {
  const char* file;
  const char* pointer_and_reason;
};

TEST(PerfmodelFiles, MalformedHardwareNamesFileAndField) {
  const BadCase cases[] = {
      {"ssd_gbs_string.json", "/ssd/read/0/gbs: expected a number"},
      {"missing_source.json", "/cpu/memory_read_gbs/source: missing field"},
      {"unknown_field.json", "/ssd/laetncy_us: unknown field"},
      {"empty_read.json", "/ssd/read: expected at least one read point"},
      {"negative_gemv.json", "/cpu/gemv_gbs/q4_k/value: expected a non-negative number"},
      {"id_mismatch.json", "/id: id 'not-the-file-name' must equal the file name"},
      {"truncated.json", "invalid JSON"},
  };
  for (const auto& c : cases) {
    const fs::path path = fixtures() / "bad_hardware" / c.file;
    const std::string err = error_of([&] { load_hardware_file(path); });
    EXPECT_NE(err.find(path.string()), std::string::npos) << c.file << ": " << err;
    EXPECT_NE(err.find(c.pointer_and_reason), std::string::npos) << c.file << ": " << err;
  }
}

TEST(PerfmodelFiles, MalformedPublishedNamesFileAndField) {
  const BadCase cases[] = {
      {"unknown_hardware.json", "/rows/0/hardware: no hardware profile 'm9-ultra'"},
      {"negative_value.json", "/rows/1/value: expected a positive number"},
      {"unknown_preset.json", "/rows/0/model: unknown preset 'qwen9-1t'"},
      {"unknown_codec.json", "/rows/0/quantization/resident/codec: unknown codec 'q4_zz'"},
      {"prefill_without_prompt.json", "/rows/2/config: prefill rows need prompt_tokens"},
      {"top_k_too_large.json", "/rows/1/config/top_k: exceeds the model's n_expert"},
      {"unknown_engine.json", "/rows/0/engine: no engine 'nope'"},
      {"duplicate_id.json", "/rows/1/id: duplicate row id 'moe-pread'"},
      {"value_string.json", "/rows/0/value: expected a number, found a string"},
      {"unknown_io.json", "/rows/0/config/io: unknown io mode 'telepathy'"},
  };
  for (const auto& c : cases) {
    const fs::path path = fixtures() / "bad_published" / c.file;
    const std::string err = error_of([&] { load_published_file(path, fixtures() / "hardware"); });
    EXPECT_NE(err.find(path.string()), std::string::npos) << c.file << ": " << err;
    EXPECT_NE(err.find(c.pointer_and_reason), std::string::npos) << c.file << ": " << err;
  }
}

TEST(PerfmodelFiles, GoodFixtureParsesWithEngineAndFlags) {
  const PublishedFile f = load_published_file(fixtures() / "good_published.json", fixtures() / "hardware");
  ASSERT_EQ(f.rows.size(), 3u);
  EXPECT_DOUBLE_EQ(f.rows[0].scenario.engine_layer_overhead_us, 100);
  EXPECT_EQ(f.rows[0].scenario.io, IoMode::pread);
  EXPECT_TRUE(f.rows[0].scenario.page_cache);
  EXPECT_EQ(f.rows[1].shape.n_moe_layers, 4);  // scaled preset
  EXPECT_EQ(f.rows[1].scenario.top_k, 4);
  EXPECT_DOUBLE_EQ(f.rows[2].scenario.resident_bits, 2.5);
  EXPECT_TRUE(f.rows[2].estimate);
}

TEST(PerfmodelFiles, CalibrationRowsMatchTheirFittedEngineConstants) {
  // Engine constants are fitted on their calibration row by
  // scripts/fit_engine_overheads.py; a model change that moves those rows
  // means the constants must be refitted (rerun the script).
  for (const auto& e : fs::directory_iterator(datasets("published"))) {
    if (e.path().extension() != ".json" || e.path().stem() == "schema") continue;
    const PublishedFile f = load_published_file(e.path());
    bool has_calibration = false;
    for (const auto& r : f.rows) has_calibration = has_calibration || r.calibration;
    if (!has_calibration) continue;
    for (const auto& r : reproduce(f)) {
      if (!r.row.calibration) continue;
      EXPECT_NEAR(r.ratio, 1.0, 0.01) << e.path().string() << ": " << r.row.id
                                      << ": rerun scripts/fit_engine_overheads.py " << e.path().string();
    }
  }
}

TEST(PerfmodelFiles, HardwareJsonRoundTrips) {
  const HardwareProfile hw = load_hardware_file(fixtures() / "hardware" / "tiny.json");
  const fs::path out = test::temp_file("tiny.json");
  std::ofstream(out) << to_json(hw).dump(2);
  const HardwareProfile back = load_hardware_file(out);
  EXPECT_DOUBLE_EQ(back.cpu.memory_read_gbs.value, 50);
  EXPECT_DOUBLE_EQ(back.cpu.gemv_gbs.at("q4_k").value, 30);
  EXPECT_DOUBLE_EQ(back.ssd.latency_us->value, 80);
  EXPECT_EQ(back.ssd.read.size(), 1u);
}

TEST(PerfmodelFiles, RoutingTraceFileReadsAndRejectsBadIds) {
  const RoutingTrace t = load_routing_trace(fixtures() / "trace_good.json");
  EXPECT_EQ(t.n_token(), 3);
  EXPECT_EQ(t.at(1, 0)[1], 2);
  const fs::path bad = fixtures() / "trace_bad.json";
  const std::string err = error_of([&] { load_routing_trace(bad); });
  EXPECT_NE(err.find(bad.string() + ": /tokens/1/1/1: expert id out of range"), std::string::npos) << err;
}

}  // namespace
}  // namespace moelab::perfmodel
