#include "experiment/plot.h"

#include <algorithm>
#include <cmath>
#include <gnuplot-iostream.h>
#include <map>
#include <sstream>

#include "core/error.h"
#include "experiment/axes.h"
#include "experiment/metric_table.h"
#include "experiment/results.h"

namespace moelab::experiment {

namespace fs = std::filesystem;

namespace {

std::string gp_quoted(const std::string& s) {  // a gnuplot single-quoted string
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string label_of(const std::string& name) {
  if (const int a = axis_index(name); a >= 0) return axis_label(axes()[size_t(a)]);
  if (const int m = metric_index(name); m >= 0) return metric_label(metrics()[size_t(m)]);
  return name;
}

bool cell_matches(const ResultsTable& t, int col, size_t row, const std::string& want) {
  if (t.is_text[size_t(col)]) return t.text[size_t(col)][row] == want;
  char* end = nullptr;
  const double w = want == "true" ? 1.0 : want == "false" ? 0.0 : std::strtod(want.c_str(), &end);
  if (want != "true" && want != "false" && (end == want.c_str() || *end != '\0')) return false;
  return std::fabs(t.num[size_t(col)][row] - w) <= 1e-9 * std::max(1.0, std::fabs(w));
}

struct Stat {
  double median, lo, hi;
};
Stat stat_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return {n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), v.front(), v.back()};
}

}  // namespace

PlotOutcome draw_plot(const fs::path& results, const PlotSpec& plot, const fs::path& out) {
  PlotSpec checked = plot;
  checked.file = out.string();
  validate_plot(checked, "plot", "");
  const ResultsTable t = read_points(results);
  const int xc = t.column(plot.x), yc = t.column(plot.y), bc = plot.by.empty() ? -1 : t.column(plot.by);
  if (xc < 0) throw Error(results.string() + ": no column '" + plot.x + "'");
  if (yc < 0) throw Error(results.string() + ": no column '" + plot.y + "'");
  if (!plot.by.empty() && bc < 0) throw Error(results.string() + ": no column '" + plot.by + "'");
  std::vector<std::pair<int, std::string>> where;
  for (const auto& [k, v] : plot.where) {
    const int c = t.column(k);
    if (c < 0) throw Error(results.string() + ": no column '" + k + "'");
    where.emplace_back(c, v);
  }

  // Rows that pass the filter and have a value.
  std::vector<size_t> rows;
  for (size_t r = 0; r < t.n_rows; ++r) {
    bool keep = !std::isnan(t.num[size_t(yc)][r]);
    for (const auto& [c, v] : where) keep = keep && cell_matches(t, c, r, v);
    if (keep) rows.push_back(r);
  }
  if (rows.empty())
    throw Error(results.string() + ": no rows with a value of " + plot.y + (where.empty() ? "" : " matching --where"));

  // Axes that vary among the kept rows but are neither x, by nor fixed by where: pooled (said in the note).
  PlotOutcome outcome;
  for (const Axis& a : axes()) {
    const int c = t.column(a.name);
    if (c < 0 || c == xc || c == bc) continue;
    for (size_t r : rows)
      if (t.cell(c, r) != t.cell(c, rows[0])) {
        outcome.note += (outcome.note.empty() ? "pooled over varying " : ", ") + std::string(a.name);
        break;
      }
  }

  const bool categorical = t.is_text[size_t(xc)];
  std::vector<std::string> x_cats, series;
  std::map<std::string, std::map<std::string, std::vector<double>>> values;  // series -> x text -> y samples
  std::map<std::string, double> x_num;
  for (size_t r : rows) {
    const std::string x = t.cell(xc, r), s = bc < 0 ? plot.y : plot.by + "=" + t.cell(bc, r);
    if (std::find(x_cats.begin(), x_cats.end(), x) == x_cats.end()) x_cats.push_back(x);
    if (std::find(series.begin(), series.end(), s) == series.end()) series.push_back(s);
    if (!categorical) x_num[x] = t.num[size_t(xc)][r];
    values[s][x].push_back(t.num[size_t(yc)][r]);
  }
  if (!categorical)
    std::sort(x_cats.begin(), x_cats.end(), [&](const std::string& a, const std::string& b) { return x_num[a] < x_num[b]; });
  const bool bar = plot.kind == "bar";
  const bool by_position = categorical || bar;  // bars always sit at category positions

  const std::string ext = out.extension().string();
  if (ext != ".png" && ext != ".svg") throw Error(out.string() + ": plot files end in .png or .svg");
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  std::ostringstream g;
  g << (ext == ".png" ? "set terminal pngcairo size 1000,640 noenhanced font 'Sans,11'\n"
                      : "set terminal svg size 1000,640 noenhanced font 'Sans,11' background rgb 'white'\n");
  g << "set output " << gp_quoted(out.string()) << "\n";
  std::string title = plot.title.empty() ? plot.y + " vs " + plot.x + (plot.by.empty() ? "" : " by " + plot.by)
                                         : plot.title;
  for (const auto& [k, v] : plot.where) title += "  [" + k + "=" + v + "]";
  g << "set title " << gp_quoted(title) << "\n";
  g << "set xlabel " << gp_quoted(label_of(plot.x)) << "\nset ylabel " << gp_quoted(label_of(plot.y)) << "\n";
  g << "set grid ytics\nset yrange [0:*]\n" << (bc < 0 ? "set key off\n" : "set key outside right top\n");
  g << "set label 1 " << gp_quoted("median of repeats; bars: min..max") << " at graph 0, graph -0.1 font ',9'\n";
  g << "set bmargin 6\n";
  const double n_series = double(series.size());
  const double box = bar ? 0.8 / n_series : 0;
  if (by_position) {
    g << "set xtics (";
    for (size_t i = 0; i < x_cats.size(); ++i) g << (i ? ", " : "") << gp_quoted(x_cats[i]) << " " << i;
    g << ")\nset xrange [-0.6:" << double(x_cats.size()) - 0.4 << "]\n";
  }
  if (!by_position) {  // numeric x: a tic at each measured value, a margin on both sides
    g << "set xtics (";
    for (size_t i = 0; i < x_cats.size(); ++i) g << (i ? ", " : "") << gp_quoted(x_cats[i]) << " " << x_num[x_cats[i]];
    g << ")\nset offsets graph 0.05, graph 0.05, 0, 0\n";
  }
  if (bar) g << "set style fill solid 0.75 border -1\nset boxwidth " << box << "\n";

  // One inline data block per plotted element.
  std::vector<std::string> elements, blocks;
  for (size_t s = 0; s < series.size(); ++s) {
    std::ostringstream data;
    for (size_t i = 0; i < x_cats.size(); ++i) {
      const auto it = values[series[s]].find(x_cats[i]);
      if (it == values[series[s]].end()) continue;
      const Stat st = stat_of(it->second);
      double x = by_position ? double(i) : x_num[x_cats[i]];
      if (bar) x += (double(s) - (n_series - 1) / 2) * box;
      data << x << " " << st.median << " " << st.lo << " " << st.hi << "\n";
      ++outcome.points;
    }
    const std::string color = "lc " + std::to_string(s + 1);
    if (bar) {
      elements.push_back("'-' using 1:2 with boxes " + color + " title " + gp_quoted(series[s]));
      elements.push_back("'-' using 1:2:3:4 with yerrorbars lc rgb 'black' pt 0 notitle");
      blocks.push_back(data.str());
      blocks.push_back(data.str());
    } else {
      elements.push_back("'-' using 1:2:3:4 with yerrorlines " + color + " lw 2 pt 7 title " + gp_quoted(series[s]));
      blocks.push_back(data.str());
    }
  }
  g << "plot ";
  for (size_t i = 0; i < elements.size(); ++i) g << (i ? ", " : "") << elements[i];
  g << "\n";
  for (const std::string& b : blocks) g << b << "e\n";
  g << "unset output\n";
  outcome.series = series.size();

  std::error_code ec;
  fs::remove(out, ec);
  {
    Gnuplot gp("gnuplot");
    gp << g.str();
    gp.flush();
  }  // closing the pipe waits for gnuplot
  if (!fs::exists(out) || fs::file_size(out) == 0) throw Error("gnuplot did not write " + out.string());
  return outcome;
}

}  // namespace moelab::experiment
