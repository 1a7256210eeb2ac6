// The JSON Schema of experiment specs, generated from the axis and metric
// tables (so it cannot drift from what parse_spec accepts). The committed
// experiments/spec.schema.json is this output; a test keeps them equal.
// Regenerate: moelab sweep --print-schema > experiments/spec.schema.json
#pragma once

#include <nlohmann/json.hpp>

namespace moelab::experiment {

nlohmann::ordered_json spec_json_schema();

}  // namespace moelab::experiment
