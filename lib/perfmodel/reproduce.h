// Published rows against the model: one prediction per row on the row's own
// hardware profile, the ratio predicted / published, and the share of rows
// within +-25% (estimates excluded; held-out share also excludes the rows an
// engine constant was fitted on).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "perfmodel/model.h"
#include "perfmodel/published.h"

namespace moelab::perfmodel {

inline constexpr double kWithinBand = 0.25;

struct ReproducedRow {
  PublishedRow row;
  Prediction prediction;
  double ratio = 0;  // predicted / published
  bool within = false;
};

struct ReproduceSummary {
  int scored = 0, within = 0;        // measured rows (estimates excluded)
  int held_out = 0, held_out_within = 0;  // measured rows no constant was fitted on
  double share() const { return scored ? double(within) / scored : 0; }
  double held_out_share() const { return held_out ? double(held_out_within) / held_out : 0; }
};

std::vector<ReproducedRow> reproduce(const PublishedFile& file, const std::filesystem::path& hardware_dir = {},
                                     const RoutingTrace* trace = nullptr);
ReproduceSummary summarize(const std::vector<ReproducedRow>& rows);
std::string markdown_table(const PublishedFile& file, const std::vector<ReproducedRow>& rows);
nlohmann::json to_json(const std::vector<ReproducedRow>& rows);

}  // namespace moelab::perfmodel
