// The regression gate must be able to fail: a kernel slowed on purpose (the
// test-only MOELAB_TEST_SLOW_GEMM switch) is flagged, while two normal runs
// pass against the same baseline. Figures come from the real bench binary.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "common/paths.h"
#include "core/error.h"
#include "metrics/regress.h"

namespace moelab::metrics {
namespace {

const std::string kBench = std::string(MOELAB_BINARY_DIR) + "/bin/bench_codecs";
const std::string kCli = std::string(MOELAB_BINARY_DIR) + "/bin/moelab";

// Runs a short bench suite (median of 3) into `out`; `env` prefixes the command.
void run_bench(const std::string& env, const std::filesystem::path& out) {
  const std::string cmd = env + " " + kBench +
                          " --benchmark_filter='^(memread/threads:1|gemv/(q4_k|q8_0)/4096x14336/threads:1)'"
                          " --benchmark_min_time=0.1 --benchmark_repetitions=3 --benchmark_out_format=json"
                          " --benchmark_out=" + out.string() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

int run_regress(const std::filesystem::path& base, const std::filesystem::path& cur,
                const std::filesystem::path& tol, const std::filesystem::path& table) {
  const std::string cmd = kCli + " regress " + base.string() + " " + cur.string() + " --tolerances " + tol.string() +
                          " --markdown " + table.string() + " > /dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(RegressGate, FlagsADeliberatelySlowedKernelAndPassesTwoNormalRuns) {
  const auto base = test::temp_file("regress-base.json"), tol = test::temp_file("regress-tol.json");
  // Timing figures are GEMV GB/s / same-run memory read GB/s. Under `ctest -j2`
  // other tests share the two cores and move them by up to ~55%; 75% slack
  // absorbs that while a 16x slower kernel (-94%) is far outside it. The
  // memory-read case is the normaliser itself, compared loosely.
  std::ofstream(tol) << R"({"timing": 0.75, "accuracy": 1e-9, "rules": [{"match": "memread/*", "tolerance": 10}]})";
  run_bench("", base);
  for (int i = 0; i < 2; ++i) {
    const auto cur = test::temp_file("regress-normal" + std::to_string(i) + ".json");
    const auto table = test::temp_file("regress-normal" + std::to_string(i) + ".md");
    run_bench("", cur);
    EXPECT_EQ(run_regress(base, cur, tol, table), 0) << slurp(table);
  }
  const auto slow = test::temp_file("regress-slow.json"), table = test::temp_file("regress-slow.md");
  run_bench("MOELAB_TEST_SLOW_GEMM=16", slow);
  EXPECT_EQ(run_regress(base, slow, tol, table), 1);
  const std::string report = slurp(table);
  EXPECT_NE(report.find("| gemv/q4_k/4096x14336/threads:1/real_time | timing"), std::string::npos) << report;
  EXPECT_NE(report.find("REGRESSED"), std::string::npos) << report;
  // The slowdown changes speed, not results: accuracy figures still match exactly.
  const FigureSet b = load_figures(base), s = load_figures(slow);
  const RegressReport r = compare(b, s, Tolerances{0.75, 1e-9, {}});
  int accuracy_rows = 0;
  for (const Comparison& c : r.rows)
    if (c.kind == FigureKind::accuracy) {
      ++accuracy_rows;
      EXPECT_FALSE(c.regressed) << c.name;
    } else if (c.name.starts_with("gemv/")) {
      EXPECT_TRUE(c.regressed) << c.name << " change " << c.change;
    }
  EXPECT_EQ(accuracy_rows, 2);
}

TEST(RegressGate, AccuracyIsComparedTightlyAndMissingFiguresFail) {
  FigureSet base, cur;
  base.figures = {{"cos", 0.999, FigureKind::accuracy, true}, {"speed", 1.0, FigureKind::timing, true},
                  {"gone", 1.0, FigureKind::timing, true}};
  cur.figures = {{"cos", 0.998, FigureKind::accuracy, true}, {"speed", 0.9, FigureKind::timing, true}};
  const RegressReport r = compare(base, cur, Tolerances{});
  EXPECT_TRUE(r.rows[0].regressed);   // 0.1% accuracy drop > 1e-6
  EXPECT_FALSE(r.rows[1].regressed);  // 10% slower < 35% slack
  EXPECT_TRUE(r.rows[2].missing);
  EXPECT_EQ(r.regressions, 1);
  EXPECT_EQ(r.missing, 1);
  EXPECT_FALSE(r.ok());
  // An improvement is never a regression, whichever direction is better.
  cur.figures = {{"cos", 1.0, FigureKind::accuracy, true}, {"speed", 5.0, FigureKind::timing, true},
                 {"gone", 1.0, FigureKind::timing, true}};
  EXPECT_TRUE(compare(base, cur, Tolerances{}).ok());
}

TEST(RegressGate, MalformedFilesNameTheFileAndField) {
  const auto bad = test::temp_file("regress-bad.json");
  std::ofstream(bad) << R"({"figures": [{"name": "a", "value": "fast"}]})";
  try {
    load_figures(bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("regress-bad.json: /figures/0/value: expected a number"), std::string::npos)
        << e.what();
  }
  std::ofstream(bad, std::ios::trunc) << R"({"timing": 0.3, "tolerence": 1})";
  EXPECT_THROW(load_tolerances(bad), Error);
  std::ofstream(bad, std::ios::trunc) << "{not json";
  EXPECT_THROW(load_figures(bad), Error);
}

}  // namespace
}  // namespace moelab::metrics
