// The regression gate: compares figures of a current run against a committed
// baseline. Timings are compared after normalising by a reference measured in
// the same run (e.g. GEMV GB/s / memory-read GB/s), with loose tolerances
// because shared machines are noisy; deterministic accuracy figures are
// compared tightly.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moelab::metrics {

enum class FigureKind { timing, accuracy };

struct Figure {
  std::string name;
  double value = 0;
  FigureKind kind = FigureKind::timing;
  bool higher_is_better = true;
};

struct FigureSet {
  std::filesystem::path source;
  nlohmann::json context;  // machine context as the producer recorded it
  std::vector<Figure> figures;
  const Figure* find(const std::string& name) const;
};

// Reads either a Google Benchmark JSON file (figure per benchmark: its
// `vs_memread` counter when present (normalised timing), else real_time (lower
// is better); counters named acc_* become accuracy figures "<bench>:<counter>";
// with --benchmark_repetitions only the median aggregates are used) or a
// moelab figures file {"context": {...}, "figures": [{"name", "value", "kind",
// "higher_is_better"}]}. Errors name the file and the JSON field.
FigureSet load_figures(const std::filesystem::path& path);

// Tolerances: a figure regresses when it moves in its bad direction
// (higher_is_better says which) by more than its tolerance, relative to
// max(|baseline|, 1e-12). Defaults: timing 0.35 (35% worse), accuracy 1e-6.
struct ToleranceRule {
  std::string match;   // glob over figure names (fnmatch)
  double tolerance = 0;
};
struct Tolerances {
  double timing = 0.35;
  double accuracy = 1e-6;
  std::vector<ToleranceRule> rules;  // first match wins
  double for_figure(const Figure& f) const;
};
// {"timing": 0.35, "accuracy": 1e-6, "rules": [{"match": "gemv/q2_k/*", "tolerance": 0.5}]}
Tolerances load_tolerances(const std::filesystem::path& path);

struct Comparison {
  std::string name;
  FigureKind kind = FigureKind::timing;
  double baseline = 0, current = 0;
  double change = 0;     // signed relative change, positive = better
  double tolerance = 0;
  bool missing = false;  // in the baseline, not in the current run
  bool regressed = false;
};

struct RegressReport {
  std::vector<Comparison> rows;
  int regressions = 0, missing = 0, compared = 0;
  bool ok() const { return regressions == 0 && missing == 0; }
  std::string table() const;  // Markdown
};

RegressReport compare(const FigureSet& baseline, const FigureSet& current, const Tolerances& tolerances);

}  // namespace moelab::metrics
