// The axes a spec can set or sweep: one table (axes.cpp), one row per axis.
// Each row names the axis, its type, default, unit, range or allowed values,
// help text, and how a value lands in the engine config or the workload. That
// one row drives spec parsing and validation, `moelab sweep --help-axes`, the
// README table, the HDF5 column and the plot axis label, so a new engine
// setting is one new row here.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"

namespace moelab::experiment {

enum class AxisType : uint8_t { integer, real, text, boolean };
std::string_view axis_type_name(AxisType type);

// Everything one sweep point runs with.
struct PointSetup {
  engine::EngineConfig engine;          // model path is filled in by the runner
  std::string expert_codec = "source";  // codec of routed experts; source = as in the model file
  std::string shared_codec = "source";  // codec of every other 2-D weight except the router
  int64_t prompt_tokens = 0;            // timed prefill
  int64_t decode_tokens = 0;            // timed decode steps
  int64_t context_tokens = 0;           // KV positions filled (untimed) before the prompt
  std::string engine_kind = "moelab";   // moelab, or llama.cpp (a peer run as a subprocess; experiment/peer.h)
  std::string mem_cap = "none";         // cgroup v1 memory limit of the point (experiment/mem_cap.h)
};

struct Axis {
  std::string_view name;
  AxisType type;
  nlohmann::json default_value;
  std::string_view unit;                // "" when unitless
  double min = 0, max = 0;              // numeric axes: inclusive range
  std::vector<std::string> choices;     // text axes with a closed set (empty: `check` decides)
  // Extra check of a value of the right type and range: "" when fine, else the reason.
  std::string (*check)(const nlohmann::json& value) = nullptr;
  std::string_view help;
  void (*apply)(const nlohmann::json& value, PointSetup& setup) = nullptr;
  bool changes_weights = false;         // needs its own model file (requantized)
};

// Longest text value an axis may take (HDF5 stores axis strings in fixed fields).
inline constexpr size_t kMaxTextValue = 31;

const std::vector<Axis>& axes();
// Index of `name` in axes(), or -1.
int axis_index(std::string_view name);
const Axis& axis(std::string_view name);  // throws moelab::Error for unknown names

// "" when `value` is a valid value of `a`, else the reason (type, range, choice, check).
std::string validate_axis_value(const Axis& a, const nlohmann::json& value);

// One value per axis, in table order.
using AxisValues = std::vector<nlohmann::json>;  // [axes().size()]
AxisValues default_axis_values();
PointSetup setup_of(const AxisValues& values);
// Human text of a value: strings without quotes, numbers as JSON.
std::string axis_value_text(const nlohmann::json& value);
// Label with unit for plots and tables: "ram_budget_mb (MiB)".
std::string axis_label(const Axis& a);

std::string axes_help_text();  // `moelab sweep --help-axes`
std::string axes_markdown();   // the README table

}  // namespace moelab::experiment
