#include "metrics/regress.h"

#include <fnmatch.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "core/error.h"

namespace moelab::metrics {

using nlohmann::json;

namespace {

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(path.string() + ": cannot open");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(path.string() + ": not valid JSON: " + e.what());
  }
}

double number_at(const json& j, const char* key, const std::filesystem::path& path, const std::string& where) {
  if (!j.contains(key) || !j[key].is_number())
    throw Error(path.string() + ": " + where + "/" + key + ": expected a number");
  return j[key].get<double>();
}

std::string string_at(const json& j, const char* key, const std::filesystem::path& path, const std::string& where) {
  if (!j.contains(key) || !j[key].is_string())
    throw Error(path.string() + ": " + where + "/" + key + ": expected a string");
  return j[key].get<std::string>();
}

// Google Benchmark output: {"context": {...}, "benchmarks": [...]}.
void from_google_benchmark(const json& doc, const std::filesystem::path& path, FigureSet& out) {
  const json& benches = doc["benchmarks"];
  if (!benches.is_array()) throw Error(path.string() + ": /benchmarks: expected an array");
  bool has_medians = false;
  for (const json& b : benches)
    if (b.value("run_type", "") == "aggregate" && b.value("aggregate_name", "") == "median") has_medians = true;
  for (size_t i = 0; i < benches.size(); ++i) {
    const json& b = benches[i];
    const std::string where = "/benchmarks/" + std::to_string(i);
    if (!b.is_object()) throw Error(path.string() + ": " + where + ": expected an object");
    if (has_medians && !(b.value("run_type", "") == "aggregate" && b.value("aggregate_name", "") == "median")) continue;
    std::string name = string_at(b, has_medians ? "run_name" : "name", path, where);
    if (b.contains("vs_memread")) {
      out.figures.push_back({name, number_at(b, "vs_memread", path, where), FigureKind::timing, true});
    } else {
      out.figures.push_back({name, number_at(b, "real_time", path, where), FigureKind::timing, false});
    }
    for (auto it = b.begin(); it != b.end(); ++it)
      if (it.key().starts_with("acc_"))
        out.figures.push_back({name + ":" + it.key(), number_at(b, it.key().c_str(), path, where), FigureKind::accuracy,
                               false});  // acc_* counters are errors: lower is better
  }
}

void from_moelab_figures(const json& doc, const std::filesystem::path& path, FigureSet& out) {
  const json& figs = doc["figures"];
  if (!figs.is_array()) throw Error(path.string() + ": /figures: expected an array");
  for (size_t i = 0; i < figs.size(); ++i) {
    const json& f = figs[i];
    const std::string where = "/figures/" + std::to_string(i);
    if (!f.is_object()) throw Error(path.string() + ": " + where + ": expected an object");
    Figure fig;
    fig.name = string_at(f, "name", path, where);
    fig.value = number_at(f, "value", path, where);
    const std::string kind = f.contains("kind") ? string_at(f, "kind", path, where) : "timing";
    if (kind != "timing" && kind != "accuracy")
      throw Error(path.string() + ": " + where + "/kind: '" + kind + "' is not timing or accuracy");
    fig.kind = kind == "timing" ? FigureKind::timing : FigureKind::accuracy;
    if (f.contains("higher_is_better")) {
      if (!f["higher_is_better"].is_boolean())
        throw Error(path.string() + ": " + where + "/higher_is_better: expected true or false");
      fig.higher_is_better = f["higher_is_better"].get<bool>();
    }
    out.figures.push_back(fig);
  }
}

}  // namespace

const Figure* FigureSet::find(const std::string& name) const {
  for (const Figure& f : figures)
    if (f.name == name) return &f;
  return nullptr;
}

FigureSet load_figures(const std::filesystem::path& path) {
  const json doc = read_json(path);
  if (!doc.is_object()) throw Error(path.string() + ": expected a JSON object at the top level");
  FigureSet out;
  out.source = path;
  if (doc.contains("context")) out.context = doc["context"];
  if (doc.contains("benchmarks")) from_google_benchmark(doc, path, out);
  else if (doc.contains("figures")) from_moelab_figures(doc, path, out);
  else throw Error(path.string() + ": neither /benchmarks (Google Benchmark) nor /figures (moelab) is present");
  std::map<std::string, int> seen;
  for (const Figure& f : out.figures)
    if (++seen[f.name] > 1) throw Error(path.string() + ": figure '" + f.name + "' appears twice");
  if (out.figures.empty()) throw Error(path.string() + ": no figures");
  return out;
}

double Tolerances::for_figure(const Figure& f) const {
  for (const ToleranceRule& r : rules)
    if (fnmatch(r.match.c_str(), f.name.c_str(), 0) == 0) return r.tolerance;
  return f.kind == FigureKind::timing ? timing : accuracy;
}

Tolerances load_tolerances(const std::filesystem::path& path) {
  const json doc = read_json(path);
  if (!doc.is_object()) throw Error(path.string() + ": expected a JSON object at the top level");
  Tolerances t;
  for (auto it = doc.begin(); it != doc.end(); ++it)
    if (it.key() != "timing" && it.key() != "accuracy" && it.key() != "rules")
      throw Error(path.string() + ": /" + it.key() + ": unknown key (expected timing, accuracy, rules)");
  if (doc.contains("timing")) t.timing = number_at(doc, "timing", path, "");
  if (doc.contains("accuracy")) t.accuracy = number_at(doc, "accuracy", path, "");
  if (doc.contains("rules")) {
    if (!doc["rules"].is_array()) throw Error(path.string() + ": /rules: expected an array");
    for (size_t i = 0; i < doc["rules"].size(); ++i) {
      const std::string where = "/rules/" + std::to_string(i);
      const json& r = doc["rules"][i];
      t.rules.push_back({string_at(r, "match", path, where), number_at(r, "tolerance", path, where)});
    }
  }
  auto check = [&](double v, const std::string& field) {
    if (!(v >= 0) || !std::isfinite(v)) throw Error(path.string() + ": " + field + ": tolerance must be >= 0");
  };
  check(t.timing, "/timing");
  check(t.accuracy, "/accuracy");
  for (size_t i = 0; i < t.rules.size(); ++i) check(t.rules[i].tolerance, "/rules/" + std::to_string(i) + "/tolerance");
  return t;
}

RegressReport compare(const FigureSet& baseline, const FigureSet& current, const Tolerances& tolerances) {
  RegressReport report;
  for (const Figure& b : baseline.figures) {
    Comparison c;
    c.name = b.name;
    c.kind = b.kind;
    c.baseline = b.value;
    c.tolerance = tolerances.for_figure(b);
    const Figure* cur = current.find(b.name);
    if (!cur) {
      c.missing = true;
      ++report.missing;
      report.rows.push_back(c);
      continue;
    }
    c.current = cur->value;
    const double scale = std::max(std::fabs(b.value), 1e-12);
    const double delta = (cur->value - b.value) / scale;
    c.change = b.higher_is_better ? delta : -delta;
    // NaN in the current run is a regression, never a pass.
    c.regressed = !std::isfinite(cur->value) || c.change < -c.tolerance;
    report.regressions += c.regressed;
    ++report.compared;
    report.rows.push_back(c);
  }
  return report;
}

std::string RegressReport::table() const {
  std::string s = "| figure | kind | baseline | current | change | tolerance | verdict |\n|---|---|---:|---:|---:|---:|---|\n";
  char line[512];
  for (const Comparison& c : rows) {
    const char* verdict = c.missing ? "MISSING" : c.regressed ? "REGRESSED" : "ok";
    std::snprintf(line, sizeof line, "| %s | %s | %.6g | %s | %s | %.3g | %s |\n", c.name.c_str(),
                  c.kind == FigureKind::timing ? "timing" : "accuracy", c.baseline,
                  c.missing ? "-" : std::to_string(c.current).c_str(),
                  c.missing ? "-" : (std::to_string(c.change * 100).substr(0, 6) + "%").c_str(), c.tolerance, verdict);
    s += line;
  }
  return s;
}

}  // namespace moelab::metrics
