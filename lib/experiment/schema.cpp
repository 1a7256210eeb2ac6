#include "experiment/schema.h"

#include "experiment/axes.h"
#include "experiment/metric_table.h"

namespace moelab::experiment {

using ojson = nlohmann::ordered_json;

namespace {

ojson value_schema(const Axis& a) {
  ojson s;
  switch (a.type) {
    case AxisType::integer: s = {{"type", "integer"}, {"minimum", int64_t(a.min)}, {"maximum", int64_t(a.max)}}; break;
    case AxisType::real: s = {{"type", "number"}, {"minimum", a.min}, {"maximum", a.max}}; break;
    case AxisType::boolean: s = {{"type", "boolean"}}; break;
    case AxisType::text:
      s = {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxTextValue}};
      if (!a.choices.empty()) s["enum"] = a.choices;
      break;
  }
  return s;
}

ojson axis_object(bool arrays) {
  ojson props = ojson::object();
  for (const Axis& a : axes()) {
    ojson v = value_schema(a);
    std::string help = std::string(a.help) + (a.unit.empty() ? "" : " [" + std::string(a.unit) + "]");
    if (arrays) {
      props[std::string(a.name)] = {{"description", help}, {"type", "array"}, {"minItems", 1}, {"uniqueItems", true},
                                    {"items", v}};
    } else {
      v["description"] = help;
      v["default"] = a.default_value;
      props[std::string(a.name)] = v;
    }
  }
  return props;
}

}  // namespace

ojson spec_json_schema() {
  ojson axis_values = {{"type", "object"}, {"additionalProperties", false}, {"properties", axis_object(false)}};
  ojson sweep_props = axis_object(true);
  sweep_props["zip"] = {
      {"description", "Groups of axes that vary together (equal-length arrays); each group is one dimension"},
      {"type", "array"},
      {"items", {{"type", "object"}, {"minProperties", 2}, {"additionalProperties", false},
                 {"properties", axis_object(true)}}}};
  ojson exclude_props = ojson::object();
  const ojson single_values = axis_object(false);
  for (const auto& [k, v] : single_values.items()) {
    ojson one = v;
    one.erase("default");
    exclude_props[k] = {{"anyOf", {one, {{"type", "array"}, {"minItems", 1}, {"items", one}}}}};
  }
  sweep_props["exclude"] = {
      {"description", "Rules: a point is excluded when every listed axis has (one of) the listed value(s)"},
      {"type", "array"},
      {"items", {{"type", "object"}, {"minProperties", 1}, {"additionalProperties", false}, {"properties", exclude_props}}}};
  std::vector<std::string> axis_names, metric_names;
  for (const Axis& a : axes()) axis_names.emplace_back(a.name);
  for (const Metric& m : metrics()) metric_names.emplace_back(m.name);
  std::vector<std::string> x_names = axis_names;
  x_names.insert(x_names.end(), metric_names.begin(), metric_names.end());
  ojson workload_props = {
      {"prompt", {{"type", "string"}, {"description", "Prompt text, tokenized and repeated to prompt_tokens"}}},
      {"prompt_file", {{"type", "string"}, {"description", "Or a text file (relative to the spec's folder)"}}},
      {"seed", {{"type", "integer"}, {"minimum", 0}, {"description", "Seed of random token ids when there is no prompt"}}},
      {"accuracy_tokens",
       {{"type", "integer"}, {"minimum", 0}, {"maximum", 65536}, {"default", 64},
        {"description", "Teacher-forced positions compared with the reference (0 = no accuracy metrics)"}}}};
  for (const char* name : {"prompt_tokens", "decode_tokens", "context_tokens"})
    workload_props[name] = axis_object(false)[name];

  ojson gen_props = {
      {"preset", {{"type", "string"}, {"description", "datasets/models/<preset>.json"}}},
      {"layers", {{"type", "integer"}, {"minimum", 0}, {"description", "0 = the preset's"}}},
      {"experts", {{"type", "integer"}, {"minimum", 0}, {"description", "0 = the preset's"}}},
      {"vocab", {{"type", "integer"}, {"minimum", 0}, {"description", "0 = the preset's"}}},
      {"codec", {{"type", "string"}, {"default", "q4_k"}}},
      {"seed", {{"type", "integer"}, {"minimum", 0}, {"default", 1}}},
      {"dist", {{"enum", {"gaussian", "heavy"}}, {"default", "gaussian"}}},
      {"router_skew", {{"type", "number"}, {"minimum", 0}, {"maximum", 10}, {"default", 0.5}}}};
  ojson gen = {{"type", "object"}, {"additionalProperties", false}, {"required", {"preset"}}, {"properties", gen_props}};
  ojson gen_model = {{"type", "object"}, {"additionalProperties", false}, {"required", {"gen"}}};
  gen_model["properties"] = {{"gen", gen}};
  ojson model = {{"description", "A GGUF path (relative to the spec's folder) or a synthetic model generated and cached"}};
  model["oneOf"] = ojson::array({ojson{{"type", "string"}, {"minLength", 1}}, gen_model});

  ojson plot_props = {
      {"x", {{"enum", x_names}}},
      {"y", {{"enum", metric_names}}},
      {"by", {{"enum", axis_names}}},
      {"where", axis_values},
      {"kind", {{"enum", {"line", "bar"}}, {"default", "line"}}},
      {"file", {{"type", "string"}, {"pattern", "\\.(png|svg)$"}, {"description", "Relative to the results file's folder"}}},
      {"title", {{"type", "string"}}}};
  ojson plot = {{"type", "object"}, {"additionalProperties", false}, {"required", {"x", "y", "file"}},
                {"properties", plot_props}};

  ojson props = ojson::object();
  props["$schema"] = {{"type", "string"}};
  props["name"] = {{"type", "string"}, {"pattern", "^[^/\\\\ ]+$"}, {"description", "Names the results file"}};
  props["description"] = {{"type", "string"}};
  props["model"] = model;
  props["workload"] = {{"type", "object"}, {"additionalProperties", false}, {"properties", workload_props}};
  props["fixed"] = axis_values;
  props["sweep"] = {{"description", "Each axis key is one dimension of the cartesian product (the last varies fastest)"},
                    {"type", "object"},
                    {"additionalProperties", false},
                    {"properties", sweep_props}};
  props["repeats"] = {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}, {"default", 3}};
  props["warmup"] = {{"type", "integer"}, {"minimum", 0}, {"maximum", 1000}, {"default", 1},
                     {"description", "Unrecorded workload runs on each point's engine before its repeats (start: warm)"}};
  props["start"] = {{"enum", {"warm", "cold"}}, {"default", "warm"},
                    {"description", "cold: a fresh engine and dropped page cache for every repeat, no warmup"}};
  props["reference"] = {{"description", "Axis values of the configuration accuracy is measured against (default: "
                                        "source weights, full top-K, f32 KV, exact dots, resident)"},
                        {"type", "object"},
                        {"additionalProperties", false},
                        {"properties", axis_object(false)}};
  props["plots"] = {{"type", "array"}, {"items", plot}};

  ojson schema = {
      {"$schema", "https://json-schema.org/draft/2020-12/schema"},
      {"title", "moelab experiment spec"},
      {"description", "Generated by `moelab sweep --print-schema` from the axis and metric tables; do not edit by hand."},
      {"type", "object"},
      {"additionalProperties", false},
      {"required", {"name", "model"}}};
  schema["properties"] = props;
  return schema;
}

}  // namespace moelab::experiment
