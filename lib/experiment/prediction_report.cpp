#include "experiment/prediction_report.h"

#include <H5Cpp.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "experiment/axes.h"
#include "experiment/predict.h"
#include "experiment/point_rows.h"
#include "experiment/results.h"
#include "metrics/timer.h"

namespace moelab::experiment {

namespace fs = std::filesystem;

namespace {

std::string num(double v, const char* fmt = "%.3g") {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// "name (notes)" of every run's hardware profile, in run order.
std::vector<std::string> run_profiles(const fs::path& path) {
  std::vector<std::string> out;
  try {
    H5::H5File f(path.string(), H5F_ACC_RDONLY);
    H5::Group runs = f.openGroup("/runs");
    for (hsize_t k = 0; k < runs.getNumObjs(); ++k) {
      H5::Group g = runs.openGroup(std::to_string(k));
      if (!g.attrExists("hardware_profile")) continue;
      H5::Attribute a = g.openAttribute("hardware_profile");
      H5std_string s;
      a.read(a.getStrType(), s);
      const nlohmann::json j = nlohmann::json::parse(s, nullptr, false);
      if (j.is_discarded()) continue;
      std::string line = "run " + std::to_string(k) + ": " + j.value("name", std::string("?"));
      auto rate = [&](const char* what, const nlohmann::json& v) {
        if (v.is_object() && v.contains("value")) line += std::string(", ") + what + " " + num(v["value"].get<double>());
      };
      if (j.contains("cpu")) {
        rate("memory read GB/s", j["cpu"].value("memory_read_gbs", nlohmann::json()));
        if (j["cpu"].contains("gemv_gbs")) rate("q4_k GEMV GB/s", j["cpu"]["gemv_gbs"].value("q4_k", nlohmann::json()));
      }
      out.push_back(line);
    }
  } catch (const H5::Exception&) {
    // The table below still stands without the profile line.
  }
  return out;
}

}  // namespace

PredictionReport prediction_report(const fs::path& results) {
  const ResultsTable t = read_points(results);
  const int c_point = t.column("point"), c_meas = t.column("decode_tok_s"), c_pred = t.column("predicted_tok_s");
  if (c_point < 0 || c_meas < 0 || c_pred < 0)
    throw Error(results.string() + ": no decode_tok_s / predicted_tok_s columns (results of an older moelab?)");
  const auto col = [&](const char* name) -> const std::vector<double>* {
    const int c = t.column(name);
    return c < 0 || t.is_text[size_t(c)] ? nullptr : &t.num[size_t(c)];
  };
  const std::map<int, std::vector<size_t>> by_point = rows_by_point(t);
  const std::vector<int> vary = varying_axis_columns(t);  // to name each point
  auto med = [&](const char* name, const std::vector<size_t>& rows) {
    return median_over_rows(t, t.column(name), rows);
  };

  auto first = [&](const char* name, const std::vector<size_t>& rows) {  // a category: the first repeat's
    const std::vector<double>* v = col(name);
    if (v)
      for (size_t r : rows)
        if (std::isfinite((*v)[r])) return (*v)[r];
    return std::nan("");
  };
  PredictionReport rep;
  std::ostringstream os;
  os << "| point |";
  for (int c : vary) os << " " << t.names[size_t(c)] << " |";
  os << " measured tok/s | predicted tok/s | predicted / measured | bound | hit rate measured | hit rate predicted |"
        " roofline tok/s | measured / roofline |\n|---:|";
  for (size_t i = 0; i < vary.size(); ++i) os << "---|";
  os << "---:|---:|---:|---|---:|---:|---:|---:|\n";
  std::vector<double> errors;
  for (const auto& [p, rows] : by_point) {
    const double meas = med("decode_tok_s", rows), pred = med("predicted_tok_s", rows);
    const double ratio = pred / meas;
    const bool scored = std::isfinite(ratio) && meas > 0;
    if (scored) {
      errors.push_back(std::fabs(ratio - 1));
      rep.within_15 += std::fabs(ratio - 1) <= 0.15;
    }
    os << "| " << p << " |";
    for (int c : vary) os << " " << t.cell(c, rows[0]) << " |";
    os << " " << num(meas) << " | " << num(pred) << " | " << (scored ? num(ratio, "%.2f") : "-")
       << (scored && std::fabs(ratio - 1) <= 0.15 ? " ✓" : "") << " | " << bound_name(first("predicted_bound", rows))
       << " | " << num(med("cache_hit_rate", rows), "%.2f") << " | " << num(med("predicted_hit_rate", rows), "%.2f")
       << " | " << num(med("roofline_tok_s", rows)) << " | " << num(med("roofline_fraction", rows), "%.2f") << " |\n";
  }
  rep.points = int(errors.size());
  if (rep.points == 0)
    throw Error(results.string() + ": no point has a prediction (run the sweep with --hardware calibrate or a profile)");
  rep.median_abs_error = metrics::median(errors);
  os << "\n" << rep.points << " points; median absolute error |predicted / measured - 1| = "
     << num(100 * rep.median_abs_error, "%.1f") << "%; " << rep.within_15 << " of " << rep.points
     << " within +-15% (medians over repeats; hit rate measured counts prefetched experts as hits).\n";
  const std::vector<std::string> profiles = run_profiles(results);
  if (!profiles.empty()) {
    os << "\nHardware profile";
    for (const std::string& s : profiles) os << "\n- " << s;
    os << "\n";
  }
  rep.markdown = os.str();
  return rep;
}

}  // namespace moelab::experiment
