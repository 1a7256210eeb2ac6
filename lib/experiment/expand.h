// A spec's points: the cartesian product of its sweep dimensions (each axis,
// or each zip group, is one dimension; the last varies fastest), minus the
// excluded combinations, numbered 0.. in that order. The index is stable for a
// given spec hash, so resume and shards can name points by it.
#pragma once

#include <string>
#include <vector>

#include "experiment/spec.h"

namespace moelab::experiment {

struct Point {
  int index = 0;
  AxisValues values;                 // [axes()] every axis, resolved
  std::vector<std::string> origin;   // [axes()] JSON pointer each value came from ("" = default)
};

std::vector<Point> expand(const Spec& spec);
// Number of combinations before exclusion (for messages and tests).
size_t product_size(const Spec& spec);
// The axes that vary across `points` (table order), for summaries.
std::vector<int> varying_axes(const std::vector<Point>& points);

}  // namespace moelab::experiment
