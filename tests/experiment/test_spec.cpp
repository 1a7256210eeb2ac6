// Spec validation names the JSON pointer of every bad field; sweeps expand to
// the right points; the committed schema and experiment specs match the code.
#include <gtest/gtest.h>

#include <fstream>

#include "experiment/expand.h"
#include "experiment/model_source.h"
#include "experiment/results.h"
#include "experiment/schema.h"
#include "experiment/spec.h"
#include "harness_util.h"

namespace moelab::experiment {
namespace {

using ojson = nlohmann::ordered_json;

// A valid spec with `patch` merged in (JSON merge patch: null deletes).
ojson spec_with(const std::string& patch) {
  ojson j = ojson::parse(R"({"name": "t", "model": )" + test::tiny_model_json() +
                         R"(, "sweep": {"top_k": [1, 2, 4]}, "repeats": 1, "warmup": 0})");
  j.merge_patch(ojson::parse(patch));
  return j;
}

// The pointer of the SpecError that parsing (and, when `with_model`, checking against the model) raises.
std::string error_pointer(const ojson& j, bool with_model = false, std::string* message = nullptr) {
  try {
    const Spec s = parse_spec(j, test::temp_file("spec.json"));
    if (with_model) check_against_model(s, expand(s), model_shape(s));
  } catch (const SpecError& e) {
    if (message) *message = e.what();
    EXPECT_NE(std::string(e.what()).find("spec.json"), std::string::npos) << "names the file: " << e.what();
    return e.pointer();
  }
  return "(no error)";
}

TEST(SpecValidation, ValidSpecParses) { EXPECT_EQ(error_pointer(spec_with("{}"), true), "(no error)"); }

TEST(SpecValidation, UnknownKeyNamesItsPointer) {
  EXPECT_EQ(error_pointer(spec_with(R"({"bogus": 1})")), "/bogus");
  EXPECT_EQ(error_pointer(spec_with(R"({"workload": {"promt": "x"}})")), "/workload/promt");
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"topk": [1]}})")), "/sweep/topk");
  EXPECT_EQ(error_pointer(spec_with(R"({"model": {"gen": {"preset": "x", "layer": 2}}})")), "/model/gen/layer");
}

TEST(SpecValidation, WrongTypeNamesItsPointer) {
  EXPECT_EQ(error_pointer(spec_with(R"({"repeats": "3"})")), "/repeats");
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"top_k": [1, "2"]}})")), "/sweep/top_k/1");
  EXPECT_EQ(error_pointer(spec_with(R"({"fixed": {"ram_budget_mb": "big"}})")), "/fixed/ram_budget_mb");
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"io": "pread"}})")), "/sweep/io");
}

TEST(SpecValidation, EmptyAxisIsAnError) {
  std::string msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"top_k": []}})"), false, &msg), "/sweep/top_k");
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
}

TEST(SpecValidation, UnknownCodecIoAndCacheNames) {
  std::string msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"expert_codec": ["q4_k", "q9_z"]}})"), false, &msg),
            "/sweep/expert_codec/1");
  EXPECT_NE(msg.find("q9_z"), std::string::npos) << msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"fixed": {"kv_codec": "q8_0/nope"}})")), "/fixed/kv_codec");
  EXPECT_EQ(error_pointer(spec_with(R"({"fixed": {"io": "carrier_pigeon"}})")), "/fixed/io");
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"io": ["pread", "direct_mt<0>"]}})")), "/sweep/io/1");
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"cache": ["lru", "fifo"]}})"), false, &msg), "/sweep/cache/1");
  EXPECT_NE(msg.find("least_stale"), std::string::npos) << "lists the valid names: " << msg;
}

TEST(SpecValidation, OutOfRangeValues) {
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"threads": [0]}})")), "/sweep/threads/0");
  EXPECT_EQ(error_pointer(spec_with(R"({"fixed": {"spec_depth": -1}})")), "/fixed/spec_depth");
  EXPECT_EQ(error_pointer(spec_with(R"({"repeats": 0})")), "/repeats");
}

TEST(SpecValidation, TopKAboveTheModelsK) {
  std::string msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"top_k": [1, 2, 9]}})"), true, &msg), "/sweep/top_k/2");
  EXPECT_NE(msg.find("above the model's K 4"), std::string::npos) << msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"spec_depth": [0, 2]}})"), true), "/sweep/spec_depth/1");
}

TEST(SpecValidation, BudgetBelowTheMinimum) {
  std::string msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"fixed": {"io": "pread"}, "sweep": {"ram_budget_mb": [64, 0.01]}})"), true,
                          &msg),
            "/sweep/ram_budget_mb/1");
  EXPECT_NE(msg.find("minimum"), std::string::npos) << msg;
}

TEST(SpecValidation, UnreadableModel) {
  std::string msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"model": "no/such/model.gguf"})"), true, &msg), "/model");
  const auto garbage = test::temp_file("garbage.gguf");
  std::ofstream(garbage) << "not a gguf file";
  EXPECT_EQ(error_pointer(spec_with(R"({"model": ")" + garbage.string() + R"("})"), true), "/model");
}

TEST(SpecValidation, UnwritableOutput) {
  EXPECT_THROW(check_output_writable("/proc/moelab-no-such-dir/x.h5"), SpecError);
  EXPECT_THROW(check_output_writable(test::temp_file("")), SpecError);  // a folder
  EXPECT_NO_THROW(check_output_writable(test::temp_file("sub/dir/ok.h5")));
}

TEST(SpecValidation, AxisSetTwiceAndZipLengths) {
  EXPECT_EQ(error_pointer(spec_with(R"({"fixed": {"top_k": 2}})")), "/sweep/top_k");
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"zip": [{"threads": [1, 2], "kv_codec": ["f32"]}]}})")),
            "/sweep/zip/0/kv_codec");
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"exclude": [{"top_k": 3, "bogus": 1}]}})")), "/sweep/exclude/0/bogus");
  EXPECT_EQ(error_pointer(spec_with(R"({"plots": [{"x": "top_k", "y": "speed", "file": "a.png"}]})")), "/plots/0/y");
}

TEST(SpecValidation, CliExitsWithStatus2) {
  const auto bad = test::write_spec("bad.json", spec_with(R"({"sweep": {"top_k": [1, 9]}})").dump());
  const auto good = test::write_spec("good.json", spec_with("{}").dump());
  const std::string bin = test::moelab_binary().string();
  EXPECT_EQ(test::run_command(bin + " sweep " + bad.string() + " -o " + test::temp_file("x.h5").string() + " 2>/dev/null"), 2);
  EXPECT_EQ(test::run_command(bin + " sweep " + good.string() + " -o /proc/nope/x.h5 2>/dev/null"), 2);
  EXPECT_EQ(test::run_command(bin + " sweep " + test::temp_file("missing.json").string() + " 2>/dev/null"), 2);
}

TEST(SweepExpansion, CartesianZipAndExcludeCounts) {
  const Spec s = parse_spec(spec_with(R"({"sweep": {"top_k": [1, 2, 4], "kv_codec": ["f32", "f16"],
      "zip": [{"threads": [1, 2], "prompt_tokens": [8, 16]}],
      "exclude": [{"top_k": 1, "kv_codec": ["f16"]}, {"top_k": 4, "threads": 2, "kv_codec": "f32"}]}})"),
                            test::temp_file("spec.json"));
  EXPECT_EQ(product_size(s), 3u * 2u * 2u);
  const std::vector<Point> pts = expand(s);
  ASSERT_EQ(pts.size(), 12u - 2u - 1u);
  const int k = axis_index("top_k"), kv = axis_index("kv_codec"), th = axis_index("threads"), pr = axis_index("prompt_tokens");
  for (size_t i = 0; i < pts.size(); ++i) {
    EXPECT_EQ(pts[i].index, int(i));
    // zip: threads and prompt_tokens move together
    EXPECT_EQ(pts[i].values[size_t(pr)].get<int>(), pts[i].values[size_t(th)].get<int>() * 8);
    EXPECT_FALSE(pts[i].values[size_t(k)] == 1 && pts[i].values[size_t(kv)] == "f16");
  }
  // The last dimension (the zip group) varies fastest; the first (top_k) slowest.
  EXPECT_EQ(pts[0].values[size_t(th)], 1);
  EXPECT_EQ(pts[1].values[size_t(th)], 2);
  EXPECT_EQ(pts[0].origin[size_t(th)], "/sweep/zip/0/threads/0");
  EXPECT_EQ(pts.back().values[size_t(k)], 4);
  // Changing only the plots keeps the hash; changing a value changes it.
  const Spec s2 = parse_spec(spec_with(R"({"plots": [{"x": "top_k", "y": "decode_tok_s", "file": "a.png"}]})"), "a");
  const Spec s3 = parse_spec(spec_with(R"({"repeats": 2})"), "a");
  EXPECT_EQ(parse_spec(spec_with("{}"), "b").hash, s2.hash);
  EXPECT_NE(s2.hash, s3.hash);
}

TEST(SpecSchema, CommittedSchemaIsGeneratedAndExperimentsParse) {
  const auto dir = std::filesystem::path(MOELAB_SOURCE_DIR) / "experiments";
  std::ifstream in(dir / "spec.schema.json");
  ASSERT_TRUE(in) << "experiments/spec.schema.json missing";
  EXPECT_EQ(ojson::parse(in), spec_json_schema())
      << "regenerate: build/bin/moelab sweep --print-schema > experiments/spec.schema.json";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".json" || e.path().filename() == "spec.schema.json") continue;
    const Spec s = load_spec(e.path());
    EXPECT_EQ(s.name, e.path().stem().string()) << e.path();
    EXPECT_GE(expand(s).size(), 2u) << e.path();
    ++n;
  }
  EXPECT_GE(n, 5);
}

}  // namespace
}  // namespace moelab::experiment
