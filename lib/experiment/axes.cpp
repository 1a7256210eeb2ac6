#include "experiment/axes.h"

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "experiment/mem_cap.h"
#include "kv/kv_codec.h"
#include "quant/codec.h"
#include "store/io_strategy.h"

namespace moelab::experiment {

using nlohmann::json;

namespace {

std::string check_weight_codec(const json& v) {
  const std::string name = v.get<std::string>();
  if (name == "source") return "";
  const quant::Codec* c = quant::find_codec(name);
  if (!c || !quant::is_weight_codec(*c))
    return "unknown weight codec '" + name + "'; valid: source, " + quant::known_codec_names();
  if (c->ggml_type < 0) return "codec '" + name + "' has no GGUF type id, so a GGUF file cannot store it";
  return "";
}

// The KV codecs' own parser (kv/kv_codec.h): their names, not the weight registry's.
std::string check_kv_codec(const json& v) {
  try {
    kv::parse_kv_codec(v.get<std::string>());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string check_io(const json& v) {
  try {
    store::parse_io_strategy(v.get<std::string>());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

int64_t as_int(const json& v) { return v.get<int64_t>(); }

std::string check_mem_cap(const json& v) { return mem_cap_syntax_error(v.get<std::string>()); }

// The table. Order is the column order in results files.
std::vector<Axis> make_axes() {
  std::vector<Axis> t;
  t.push_back({"expert_codec", AxisType::text, "source", "", 0, 0, {}, check_weight_codec,
               "Codec of the routed experts (source = as in the model file; else the model is requantized once and "
               "cached)",
               [](const json& v, PointSetup& s) { s.expert_codec = v.get<std::string>(); }, true});
  t.push_back({"shared_codec", AxisType::text, "source", "", 0, 0, {}, check_weight_codec,
               "Codec of every other 2-D weight (attention, embeddings, output, shared expert); router stays f32",
               [](const json& v, PointSetup& s) { s.shared_codec = v.get<std::string>(); }, true});
  t.push_back({"top_k", AxisType::integer, 0, "experts", 0, 256, {}, nullptr,
               "Experts per token (0 = the model's K; at most the model's K)",
               [](const json& v, PointSetup& s) { s.engine.top_k = as_int(v); }});
  t.push_back({"spec_depth", AxisType::integer, 0, "layers", 0, 64, {}, nullptr,
               "Layers ahead whose experts speculation prefetches (0 = off)",
               [](const json& v, PointSetup& s) { s.engine.spec_depth = int(as_int(v)); }});
  t.push_back({"spec_width", AxisType::integer, 0, "experts", 0, 256, {}, nullptr,
               "Extra candidate experts prefetched per predicted layer",
               [](const json& v, PointSetup& s) { s.engine.spec_width = int(as_int(v)); }});
  t.push_back({"spec_pre_attention", AxisType::boolean, false, "", 0, 0, {}, nullptr,
               "Also predict layer l's experts from its input before attention",
               [](const json& v, PointSetup& s) { s.engine.spec_pre_attention = v.get<bool>(); }});
  t.push_back({"io", AxisType::text, "resident", "", 0, 0, {}, check_io,
               "How expert bytes reach RAM: resident, mmap, pread, direct, direct_mt<N>, uring<QD>",
               [](const json& v, PointSetup& s) { s.engine.io = v.get<std::string>(); }});
  t.push_back({"layout", AxisType::text, "gguf", "", 0, 0, {"gguf", "packed"}, nullptr,
               "Where streamed experts are read from: the GGUF tensors, or a .moepack (one aligned blob per expert)",
               [](const json& v, PointSetup& s) { s.engine.layout = v.get<std::string>(); }});
  t.push_back({"cache", AxisType::text, "lru", "", 0, 0, {"none", "lru", "lfu", "least_stale"}, nullptr,
               "Expert cache eviction policy",
               [](const json& v, PointSetup& s) { s.engine.cache = v.get<std::string>(); }});
  t.push_back({"ram_budget_mb", AxisType::real, 0.0, "MiB", 0, 1e7, {}, nullptr,
               "Expert cache budget (0 = the store's default); shared weights are counted apart",
               [](const json& v, PointSetup& s) { s.engine.ram_budget_mb = v.get<double>(); }});
  t.push_back({"drop_pages", AxisType::boolean, true, "", 0, 0, {}, nullptr,
               "Buffered io: drop the page cache of each read (posix_fadvise DONTNEED)",
               [](const json& v, PointSetup& s) { s.engine.drop_pages = v.get<bool>(); }});
  t.push_back({"kv_codec", AxisType::text, "f16", "", 0, 0, {}, check_kv_codec,
               "KV cache codec, or K/V for separate key and value codecs (q8_0/q4_0)",
               [](const json& v, PointSetup& s) { s.engine.kv_codec = v.get<std::string>(); }});
  t.push_back({"dot_path", AxisType::text, "quantized", "", 0, 0, {"quantized", "exact"}, nullptr,
               "quantized: activations in the weight codec's partner (as llama.cpp); exact: f32 activations",
               [](const json& v, PointSetup& s) {
                 s.engine.path = v.get<std::string>() == "exact" ? quant::DotPath::exact : quant::DotPath::quantized;
               }});
  t.push_back({"threads", AxisType::integer, 2, "threads", 1, 1024, {}, nullptr, "Compute threads",
               [](const json& v, PointSetup& s) { s.engine.threads = int(as_int(v)); }});
  t.push_back({"prompt_tokens", AxisType::integer, 64, "tokens", 1, 1 << 20, {}, nullptr,
               "Prompt tokens prefilled (timed) before decoding",
               [](const json& v, PointSetup& s) { s.prompt_tokens = as_int(v); }});
  t.push_back({"decode_tokens", AxisType::integer, 32, "tokens", 1, 1 << 20, {}, nullptr,
               "Tokens decoded one at a time (timed, greedy)",
               [](const json& v, PointSetup& s) { s.decode_tokens = as_int(v); }});
  t.push_back({"context_tokens", AxisType::integer, 0, "tokens", 0, 1 << 20, {}, nullptr,
               "KV positions filled (untimed) before the prompt: decoding at a long context",
               [](const json& v, PointSetup& s) { s.context_tokens = as_int(v); }});
  t.push_back({"engine", AxisType::text, "moelab", "", 0, 0, {"moelab", "llama.cpp"}, nullptr,
               "Engine that runs the point: moelab, or llama.cpp through llama-cpp-python in a subprocess (same GGUF, "
               "tokens, threads, n_ctx; io resident = its default, weights repacked into RAM; mmap = no repacking, weights read "
               "through the file mapping)",
               [](const json& v, PointSetup& s) { s.engine_kind = v.get<std::string>(); }});
  t.push_back({"mem_cap", AxisType::text, "none", "", 0, 0, {}, check_mem_cap,
               "cgroup v1 memory limit (RSS + page cache) the point runs under: none, <N>MiB, or model/<D> (the "
               "point's model file size / D)",
               [](const json& v, PointSetup& s) { s.mem_cap = v.get<std::string>(); }});
  return t;
}

}  // namespace

std::string_view axis_type_name(AxisType type) {
  switch (type) {
    case AxisType::integer: return "integer";
    case AxisType::real: return "number";
    case AxisType::text: return "string";
    case AxisType::boolean: return "boolean";
  }
  return "?";
}

const std::vector<Axis>& axes() {
  static const std::vector<Axis> table = make_axes();
  return table;
}

int axis_index(std::string_view name) {
  const auto& t = axes();
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i].name == name) return int(i);
  return -1;
}

const Axis& axis(std::string_view name) {
  const int i = axis_index(name);
  if (i < 0) {
    std::string known;
    for (const Axis& a : axes()) known += (known.empty() ? "" : ", ") + std::string(a.name);
    throw Error("unknown axis '" + std::string(name) + "'; axes: " + known);
  }
  return axes()[size_t(i)];
}

std::string validate_axis_value(const Axis& a, const json& v) {
  const std::string want = std::string(axis_type_name(a.type));
  switch (a.type) {
    case AxisType::integer:
      if (!v.is_number_integer()) return "expected " + want + ", got " + v.dump();
      if (double(v.get<int64_t>()) < a.min || double(v.get<int64_t>()) > a.max)
        return "value " + v.dump() + " outside " + json(int64_t(a.min)).dump() + ".." + json(int64_t(a.max)).dump();
      break;
    case AxisType::real:
      if (!v.is_number()) return "expected " + want + ", got " + v.dump();
      if (!std::isfinite(v.get<double>()) || v.get<double>() < a.min || v.get<double>() > a.max)
        return "value " + v.dump() + " outside " + json(a.min).dump() + ".." + json(a.max).dump();
      break;
    case AxisType::text: {
      if (!v.is_string()) return "expected " + want + ", got " + v.dump();
      const std::string s = v.get<std::string>();
      if (s.empty() || s.size() > kMaxTextValue)
        return "value '" + s + "' must have 1.." + std::to_string(kMaxTextValue) + " characters";
      if (!a.choices.empty()) {
        bool ok = false;
        std::string list;
        for (const std::string& c : a.choices) {
          ok = ok || c == s;
          list += (list.empty() ? "" : ", ") + c;
        }
        if (!ok) return "unknown " + std::string(a.name) + " '" + s + "'; valid: " + list;
      }
      break;
    }
    case AxisType::boolean:
      if (!v.is_boolean()) return "expected " + want + ", got " + v.dump();
      break;
  }
  return a.check ? a.check(v) : "";
}

AxisValues default_axis_values() {
  AxisValues v;
  for (const Axis& a : axes()) v.push_back(a.default_value);
  return v;
}

PointSetup setup_of(const AxisValues& values) {
  PointSetup s;
  const auto& t = axes();
  for (size_t i = 0; i < t.size(); ++i) t[i].apply(values.at(i), s);
  return s;
}

std::string axis_value_text(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

std::string axis_label(const Axis& a) {
  return a.unit.empty() ? std::string(a.name) : std::string(a.name) + " (" + std::string(a.unit) + ")";
}

namespace {
std::string range_text(const Axis& a) {
  if (a.type == AxisType::integer) return std::to_string(int64_t(a.min)) + ".." + std::to_string(int64_t(a.max));
  if (a.type == AxisType::real) return json(a.min).dump() + ".." + json(a.max).dump();
  if (a.type == AxisType::boolean) return "true, false";
  if (!a.choices.empty()) {
    std::string s;
    for (const std::string& c : a.choices) s += (s.empty() ? "" : ", ") + c;
    return s;
  }
  if (a.name == "io") return "resident, mmap, pread, direct, direct_mt<N>, uring<QD>";
  if (a.name == "kv_codec") return "a codec, or K/V";
  if (a.name == "mem_cap") return "none, <N>MiB, model/<D>";
  return "source, or a GGUF weight codec";
}
}  // namespace

std::string axes_help_text() {
  std::ostringstream os;
  os << "Axes (set in \"fixed\", sweep in \"sweep\"; every value is echoed into the results table):\n";
  for (const Axis& a : axes()) {
    os << "  " << a.name << "  [" << axis_type_name(a.type) << (a.unit.empty() ? "" : ", " + std::string(a.unit))
       << "; default " << a.default_value.dump() << "; " << range_text(a) << "]\n      " << a.help << "\n";
  }
  return os.str();
}

std::string axes_markdown() {
  std::ostringstream os;
  os << "| axis | type | default | unit | values | what |\n| --- | --- | --- | --- | --- | --- |\n";
  for (const Axis& a : axes()) {
    std::string range = range_text(a);
    for (size_t p = 0; (p = range.find('<', p)) != std::string::npos; p += 4) range.replace(p, 1, "&lt;");
    os << "| `" << a.name << "` | " << axis_type_name(a.type) << " | `" << a.default_value.dump() << "` | "
       << a.unit << " | " << range << " | " << a.help << " |\n";
  }
  return os.str();
}

}  // namespace moelab::experiment
