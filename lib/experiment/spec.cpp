#include "experiment/spec.h"

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "experiment/metric_table.h"

namespace moelab::experiment {

using ojson = nlohmann::ordered_json;
using nlohmann::json;

SpecError::SpecError(const std::string& file, const std::string& pointer, const std::string& reason)
    : Error(file + ": " + (pointer.empty() ? std::string() : pointer + ": ") + reason), pointer_(pointer) {}

std::string fnv1a_hex(const std::string& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

namespace {

// Reads one JSON object field by field; unknown keys are errors.
class Reader {
 public:
  Reader(const std::string& file) : file_(file) {}
  [[noreturn]] void fail(const std::string& pointer, const std::string& reason) const {
    throw SpecError(file_, pointer, reason);
  }
  void expect_object(const ojson& j, const std::string& ptr) const {
    if (!j.is_object()) fail(ptr.empty() ? "/" : ptr, "expected an object, got " + type_of(j));
  }
  void only_keys(const ojson& j, const std::string& ptr, std::initializer_list<std::string_view> keys) const {
    for (const auto& [k, v] : j.items()) {
      bool known = false;
      for (std::string_view key : keys) known = known || key == k;
      if (!known) {
        std::string list;
        for (std::string_view key : keys) list += (list.empty() ? "" : ", ") + std::string(key);
        fail(ptr + "/" + k, "unknown key '" + k + "'; allowed here: " + list);
      }
    }
  }
  std::string string_at(const ojson& j, const std::string& ptr) const {
    if (!j.is_string()) fail(ptr, "expected a string, got " + type_of(j));
    return j.get<std::string>();
  }
  int64_t int_at(const ojson& j, const std::string& ptr, int64_t lo, int64_t hi) const {
    if (!j.is_number_integer()) fail(ptr, "expected an integer, got " + type_of(j));
    const int64_t v = j.get<int64_t>();
    if (v < lo || v > hi)
      fail(ptr, "value " + std::to_string(v) + " outside " + std::to_string(lo) + ".." + std::to_string(hi));
    return v;
  }
  double number_at(const ojson& j, const std::string& ptr, double lo, double hi) const {
    if (!j.is_number()) fail(ptr, "expected a number, got " + type_of(j));
    const double v = j.get<double>();
    if (!(v >= lo && v <= hi)) fail(ptr, "value " + j.dump() + " outside " + json(lo).dump() + ".." + json(hi).dump());
    return v;
  }
  static std::string type_of(const ojson& j) {
    if (j.is_number_integer()) return "integer " + j.dump();
    if (j.is_number()) return "number " + j.dump();
    if (j.is_string()) return "string " + j.dump();
    return std::string(j.type_name());
  }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

json plain(const ojson& j) { return json::parse(j.dump()); }

// An axis value at `ptr`, checked against the axis table.
json axis_value(const Reader& r, const Axis& a, const ojson& v, const std::string& ptr) {
  const json value = plain(v);
  const std::string why = validate_axis_value(a, value);
  if (!why.empty()) r.fail(ptr, why);
  return value;
}

int axis_at(const Reader& r, const std::string& name, const std::string& ptr) {
  const int i = axis_index(name);
  if (i < 0) {
    std::string known;
    for (const Axis& a : axes()) known += (known.empty() ? "" : ", ") + std::string(a.name);
    r.fail(ptr, "unknown axis '" + name + "'; axes: " + known);
  }
  return i;
}

ModelSource parse_model(const Reader& r, const ojson& j, const std::filesystem::path& spec_dir) {
  ModelSource m;
  if (j.is_string()) {
    const std::filesystem::path p = j.get<std::string>();
    if (p.empty()) r.fail("/model", "empty model path");
    m.path = p.is_absolute() ? p : spec_dir / p;
    return m;
  }
  r.expect_object(j, "/model");
  r.only_keys(j, "/model", {"gen"});
  if (!j.contains("gen")) r.fail("/model", "expected a GGUF path or {\"gen\": {...}}");
  const ojson& g = j["gen"];
  r.expect_object(g, "/model/gen");
  r.only_keys(g, "/model/gen", {"preset", "layers", "experts", "vocab", "codec", "seed", "dist", "router_skew"});
  GenModel gen;
  if (!g.contains("preset")) r.fail("/model/gen", "missing 'preset'");
  gen.preset = r.string_at(g["preset"], "/model/gen/preset");
  // A preset file path (rather than a name under datasets/models) is relative to the spec's folder.
  if (gen.preset.ends_with(".json") && std::filesystem::path(gen.preset).is_relative())
    gen.preset = (spec_dir / gen.preset).string();
  if (g.contains("layers")) gen.layers = r.int_at(g["layers"], "/model/gen/layers", 0, 1000);
  if (g.contains("experts")) gen.experts = r.int_at(g["experts"], "/model/gen/experts", 0, 4096);
  if (g.contains("vocab")) gen.vocab = r.int_at(g["vocab"], "/model/gen/vocab", 0, 1 << 22);
  if (g.contains("codec")) {
    gen.codec = r.string_at(g["codec"], "/model/gen/codec");
    const std::string why = validate_axis_value(axis("expert_codec"), gen.codec);
    if (!why.empty() || gen.codec == "source") r.fail("/model/gen/codec", why.empty() ? "a codec name is needed" : why);
  }
  if (g.contains("seed")) gen.seed = uint64_t(r.int_at(g["seed"], "/model/gen/seed", 0, INT64_MAX));
  if (g.contains("dist")) {
    gen.dist = r.string_at(g["dist"], "/model/gen/dist");
    if (gen.dist != "gaussian" && gen.dist != "heavy")
      r.fail("/model/gen/dist", "unknown distribution '" + gen.dist + "'; valid: gaussian, heavy");
  }
  if (g.contains("router_skew")) gen.router_skew = r.number_at(g["router_skew"], "/model/gen/router_skew", 0, 10);
  m.gen = gen;
  return m;
}

std::vector<json> axis_array(const Reader& r, const Axis& a, const ojson& arr, const std::string& ptr) {
  if (!arr.is_array()) r.fail(ptr, "expected an array of values, got " + Reader::type_of(arr));
  if (arr.empty()) r.fail(ptr, "empty axis: give at least one value");
  std::vector<json> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    json v = axis_value(r, a, arr[i], ptr + "/" + std::to_string(i));
    for (size_t k = 0; k < out.size(); ++k)
      if (out[k] == v) r.fail(ptr + "/" + std::to_string(i), "value " + v.dump() + " repeats /" + std::to_string(k));
    out.push_back(std::move(v));
  }
  return out;
}

PlotSpec parse_plot(const Reader& r, const ojson& j, const std::string& ptr) {
  r.expect_object(j, ptr);
  r.only_keys(j, ptr, {"x", "y", "by", "where", "kind", "file", "title"});
  PlotSpec p;
  for (const char* need : {"x", "y", "file"})
    if (!j.contains(need)) r.fail(ptr, std::string("missing '") + need + "'");
  p.x = r.string_at(j["x"], ptr + "/x");
  p.y = r.string_at(j["y"], ptr + "/y");
  p.file = r.string_at(j["file"], ptr + "/file");
  if (j.contains("by")) p.by = r.string_at(j["by"], ptr + "/by");
  if (j.contains("kind")) p.kind = r.string_at(j["kind"], ptr + "/kind");
  if (j.contains("title")) p.title = r.string_at(j["title"], ptr + "/title");
  if (j.contains("where")) {
    r.expect_object(j["where"], ptr + "/where");
    for (const auto& [k, v] : j["where"].items()) {
      const int ai = axis_at(r, k, ptr + "/where/" + k);
      p.where.emplace_back(k, axis_value_text(axis_value(r, axes()[size_t(ai)], v, ptr + "/where/" + k)));
    }
  }
  validate_plot(p, r.file(), ptr);
  return p;
}

}  // namespace

void validate_plot(const PlotSpec& p, const std::string& file, const std::string& ptr) {
  if (axis_index(p.x) < 0 && metric_index(p.x) < 0)
    throw SpecError(file, ptr + "/x", "'" + p.x + "' is neither an axis nor a metric");
  if (metric_index(p.y) < 0) throw SpecError(file, ptr + "/y", "unknown metric '" + p.y + "'");
  if (!p.by.empty() && axis_index(p.by) < 0) throw SpecError(file, ptr + "/by", "unknown axis '" + p.by + "'");
  for (const auto& [k, v] : p.where)
    if (axis_index(k) < 0) throw SpecError(file, ptr + "/where/" + k, "unknown axis '" + k + "'");
  if (p.kind != "line" && p.kind != "bar")
    throw SpecError(file, ptr + "/kind", "unknown plot kind '" + p.kind + "'; valid: line, bar");
  const std::filesystem::path f = p.file;
  if (f.extension() != ".png" && f.extension() != ".svg")
    throw SpecError(file, ptr + "/file", "plot file '" + p.file + "' must end in .png or .svg");
}

std::pair<std::string, std::string> parse_where(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) throw SpecError("--where", "", "expected axis=value, got '" + text + "'");
  const std::string name = text.substr(0, eq);
  if (axis_index(name) < 0) throw SpecError("--where", "", "unknown axis '" + name + "'");
  return {name, text.substr(eq + 1)};
}

Spec parse_spec(const ojson& j, const std::filesystem::path& file) {
  const Reader r(file.string());
  Spec s;
  s.file = file;
  r.expect_object(j, "");
  r.only_keys(j, "", {"$schema", "name", "description", "model", "workload", "fixed", "sweep", "repeats", "warmup",
                      "start", "reference", "plots"});
  if (!j.contains("name")) r.fail("/name", "missing: every spec has a name");
  s.name = r.string_at(j["name"], "/name");
  if (s.name.empty() || s.name.find_first_of("/\\ ") != std::string::npos)
    r.fail("/name", "'" + s.name + "' must be non-empty, without spaces or slashes (it names files)");
  if (j.contains("description")) s.description = r.string_at(j["description"], "/description");
  if (!j.contains("model")) r.fail("/model", "missing: a GGUF path or {\"gen\": {...}}");
  s.model = parse_model(r, j["model"], file.parent_path());

  // Where each axis got its value; an axis is set in one place only.
  s.fixed = default_axis_values();
  s.fixed_pointer.assign(axes().size(), "");
  std::vector<std::string> set_at(axes().size());
  auto claim = [&](int ai, const std::string& ptr) {
    if (!set_at[size_t(ai)].empty())
      r.fail(ptr, "axis '" + std::string(axes()[size_t(ai)].name) + "' is already set at " + set_at[size_t(ai)]);
    set_at[size_t(ai)] = ptr;
  };

  if (j.contains("workload")) {
    const ojson& w = j["workload"];
    r.expect_object(w, "/workload");
    r.only_keys(w, "/workload",
                {"prompt", "prompt_file", "seed", "accuracy_tokens", "prompt_tokens", "decode_tokens", "context_tokens"});
    if (w.contains("prompt")) s.workload.prompt = r.string_at(w["prompt"], "/workload/prompt");
    if (w.contains("prompt_file")) {
      if (w.contains("prompt")) r.fail("/workload/prompt_file", "give prompt or prompt_file, not both");
      const std::filesystem::path p = r.string_at(w["prompt_file"], "/workload/prompt_file");
      s.workload.prompt_file = p.is_absolute() ? p : file.parent_path() / p;
      std::ifstream in(s.workload.prompt_file, std::ios::binary);
      if (!in) r.fail("/workload/prompt_file", "cannot read " + s.workload.prompt_file.string());
      std::ostringstream ss;
      ss << in.rdbuf();
      s.workload.prompt = ss.str();
    }
    if (w.contains("seed")) s.workload.seed = uint64_t(r.int_at(w["seed"], "/workload/seed", 0, INT64_MAX));
    if (w.contains("accuracy_tokens"))
      s.workload.accuracy_tokens = r.int_at(w["accuracy_tokens"], "/workload/accuracy_tokens", 0, 1 << 16);
    for (const char* name : {"prompt_tokens", "decode_tokens", "context_tokens"}) {
      if (!w.contains(name)) continue;
      const int ai = axis_index(name);
      const std::string ptr = std::string("/workload/") + name;
      claim(ai, ptr);
      s.fixed[size_t(ai)] = axis_value(r, axes()[size_t(ai)], w[name], ptr);
      s.fixed_pointer[size_t(ai)] = ptr;
    }
  }

  if (j.contains("fixed")) {
    r.expect_object(j["fixed"], "/fixed");
    for (const auto& [k, v] : j["fixed"].items()) {
      const std::string ptr = "/fixed/" + k;
      const int ai = axis_at(r, k, ptr);
      claim(ai, ptr);
      s.fixed[size_t(ai)] = axis_value(r, axes()[size_t(ai)], v, ptr);
      s.fixed_pointer[size_t(ai)] = ptr;
    }
  }

  if (j.contains("sweep")) {
    const ojson& sw = j["sweep"];
    r.expect_object(sw, "/sweep");
    for (const auto& [k, v] : sw.items()) {
      if (k == "zip") {
        if (!v.is_array()) r.fail("/sweep/zip", "expected an array of groups, got " + Reader::type_of(v));
        for (size_t g = 0; g < v.size(); ++g) {
          const std::string gp = "/sweep/zip/" + std::to_string(g);
          r.expect_object(v[g], gp);
          if (v[g].size() < 2) r.fail(gp, "a zip group pairs at least two axes");
          SweepDim d;
          for (const auto& [ak, av] : v[g].items()) {
            const std::string ptr = gp + "/" + ak;
            const int ai = axis_at(r, ak, ptr);
            claim(ai, ptr);
            d.axes.push_back(ai);
            d.values.push_back(axis_array(r, axes()[size_t(ai)], av, ptr));
            d.pointers.push_back(ptr);
            if (d.values.back().size() != d.values[0].size())
              r.fail(ptr, "has " + std::to_string(d.values.back().size()) + " values but " + d.pointers[0] + " has " +
                              std::to_string(d.values[0].size()) + ": zipped axes need equal lengths");
          }
          s.dims.push_back(std::move(d));
        }
      } else if (k == "exclude") {
        if (!v.is_array()) r.fail("/sweep/exclude", "expected an array of rules, got " + Reader::type_of(v));
        for (size_t e = 0; e < v.size(); ++e) {
          const std::string ep = "/sweep/exclude/" + std::to_string(e);
          r.expect_object(v[e], ep);
          if (v[e].empty()) r.fail(ep, "an empty rule would exclude every point");
          ExcludeRule rule;
          for (const auto& [ak, av] : v[e].items()) {
            const std::string ptr = ep + "/" + ak;
            const int ai = axis_at(r, ak, ptr);
            std::vector<json> vals;
            if (av.is_array()) {
              if (av.empty()) r.fail(ptr, "empty list of values");
              for (size_t i = 0; i < av.size(); ++i)
                vals.push_back(axis_value(r, axes()[size_t(ai)], av[i], ptr + "/" + std::to_string(i)));
            } else {
              vals.push_back(axis_value(r, axes()[size_t(ai)], av, ptr));
            }
            rule.match.emplace_back(ai, std::move(vals));
          }
          s.excludes.push_back(std::move(rule));
        }
      } else {
        const std::string ptr = "/sweep/" + k;
        const int ai = axis_at(r, k, ptr);
        claim(ai, ptr);
        SweepDim d;
        d.axes.push_back(ai);
        d.values.push_back(axis_array(r, axes()[size_t(ai)], v, ptr));
        d.pointers.push_back(ptr);
        s.dims.push_back(std::move(d));
      }
    }
  }

  if (j.contains("repeats")) s.repeats = int(r.int_at(j["repeats"], "/repeats", 1, 1000));
  if (j.contains("warmup")) s.warmup = int(r.int_at(j["warmup"], "/warmup", 0, 1000));
  if (j.contains("start")) {
    const std::string st = r.string_at(j["start"], "/start");
    if (st != "warm" && st != "cold") r.fail("/start", "unknown start '" + st + "'; valid: warm, cold");
    s.cold = st == "cold";
  }

  // The reference: the exact configuration (source weights, full top-K, f32 KV, exact dots, resident).
  s.reference = s.fixed;
  s.reference_pointer = s.fixed_pointer;
  for (const auto& [name, value] : {std::pair<const char*, json>{"expert_codec", "source"}, {"shared_codec", "source"},
                                    {"top_k", 0}, {"kv_codec", "f32"}, {"dot_path", "exact"}, {"io", "resident"},
                                    {"spec_depth", 0}, {"engine", "moelab"}, {"mem_cap", "none"}}) {
    s.reference[size_t(axis_index(name))] = value;
    s.reference_pointer[size_t(axis_index(name))] = "";
  }
  if (j.contains("reference")) {
    r.expect_object(j["reference"], "/reference");
    for (const auto& [k, v] : j["reference"].items()) {
      const std::string ptr = "/reference/" + k;
      const int ai = axis_at(r, k, ptr);
      s.reference[size_t(ai)] = axis_value(r, axes()[size_t(ai)], v, ptr);
      s.reference_pointer[size_t(ai)] = ptr;
    }
  }

  if (j.contains("plots")) {
    if (!j["plots"].is_array()) r.fail("/plots", "expected an array, got " + Reader::type_of(j["plots"]));
    std::set<std::string> files;
    for (size_t i = 0; i < j["plots"].size(); ++i) {
      const std::string ptr = "/plots/" + std::to_string(i);
      s.plots.push_back(parse_plot(r, j["plots"][i], ptr));
      if (!files.insert(s.plots.back().file).second) r.fail(ptr + "/file", "another plot writes " + s.plots.back().file);
    }
  }

  // The resolved spec: what the results file stores, and (minus name, description
  // and plots) what its hash covers.
  ojson decides;
  if (s.model.gen) {
    const GenModel& g = *s.model.gen;
    decides["model"] = {{"gen",
                         {{"preset", g.preset}, {"layers", g.layers}, {"experts", g.experts}, {"vocab", g.vocab},
                          {"codec", g.codec}, {"seed", g.seed}, {"dist", g.dist}, {"router_skew", g.router_skew}}}};
  } else {
    decides["model"] = j["model"];  // as written, so the hash does not depend on the working directory
  }
  decides["workload"] = {{"prompt", s.workload.prompt}, {"seed", s.workload.seed},
                         {"accuracy_tokens", s.workload.accuracy_tokens}};
  ojson fixed = ojson::object();
  ojson reference = ojson::object();
  for (size_t i = 0; i < axes().size(); ++i) {
    fixed[std::string(axes()[i].name)] = s.fixed[i];
    reference[std::string(axes()[i].name)] = s.reference[i];
  }
  decides["fixed"] = fixed;
  decides["sweep"] = j.contains("sweep") ? j["sweep"] : ojson::object();
  decides["repeats"] = s.repeats;
  decides["warmup"] = s.warmup;
  decides["start"] = s.cold ? "cold" : "warm";
  decides["reference"] = reference;
  s.hash = fnv1a_hex(decides.dump());
  s.resolved = {{"name", s.name}, {"description", s.description}};
  for (const auto& [k, v] : decides.items()) s.resolved[k] = v;
  s.resolved["plots"] = j.contains("plots") ? j["plots"] : ojson::array();
  return s;
}

Spec load_spec(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw SpecError(file.string(), "", "cannot read the spec file");
  ojson j;
  try {
    j = ojson::parse(in);
  } catch (const ojson::parse_error& e) {
    throw SpecError(file.string(), "", std::string("not valid JSON: ") + e.what());
  }
  return parse_spec(j, file);
}

}  // namespace moelab::experiment
