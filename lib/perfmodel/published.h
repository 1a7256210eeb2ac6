// Published tok/s rows (datasets/published/<name>.json): each a number copied
// from a public source with the hardware, model, quantization and
// configuration it was measured with. Schema: datasets/published/schema.json.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "perfmodel/hardware.h"
#include "perfmodel/model.h"
#include "perfmodel/shape.h"

namespace moelab::perfmodel {

struct PublishedRow {
  std::string id, system, source, hardware, notes;
  std::string engine;        // key into PublishedFile::engines ("" = none)
  bool calibration = false;  // an engine constant was fitted on this row (not a held-out test)
  bool estimate = false;     // the source gives an estimate, not a measurement
  std::string model_label;   // preset name or the shape's display name
  std::string quant_label;   // e.g. "affine4_g64 (4.5 bpw)"
  ModelShape shape;
  Scenario scenario;         // metric, io, top_k, codecs, cache, devices, ...
  double value = 0;
  std::optional<double> value_low, value_high;  // published ranges
  std::string pointer;       // JSON pointer of the row, for messages
};

struct EngineConstants {
  Sourced layer_overhead_us;  // fixed cost per layer per token
};

struct PublishedFile {
  std::string name, description, file;
  std::map<std::string, EngineConstants> engines;
  std::vector<PublishedRow> rows;
};

// Parses and validates; every error names the file and the JSON pointer. Model
// presets are looked up with model::find_preset; hardware ids are checked to
// exist under `hardware_dir` (default perfmodel::hardware_dir()).
PublishedFile load_published_file(const std::filesystem::path& path, const std::filesystem::path& hardware_dir = {});

}  // namespace moelab::perfmodel
