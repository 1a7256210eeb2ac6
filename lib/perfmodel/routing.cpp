#include "perfmodel/routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.h"
#include "perfmodel/json_node.h"

namespace moelab::perfmodel {

RoutingTrace synthesize_trace(int64_t n_layer, int64_t n_expert, int64_t top_k, int64_t n_token, TraceShape shape,
                              uint64_t seed) {
  if (n_layer <= 0 || n_expert <= 0 || top_k <= 0 || top_k > n_expert || n_token < 0)
    throw Error("synthesize_trace: need n_layer, n_expert > 0 and 0 < top_k <= n_expert");
  RoutingTrace t;
  t.n_layer = n_layer;
  t.n_expert = n_expert;
  t.top_k = top_k;
  t.ids.resize(size_t(n_token * n_layer * top_k));
  std::mt19937_64 rng(seed);
  // Popularity CDF over ranks, and a random rank -> expert map per layer.
  std::vector<double> cdf(static_cast<size_t>(n_expert));
  double acc = 0;
  for (int64_t r = 0; r < n_expert; ++r) cdf[size_t(r)] = acc += std::pow(double(r + 1), -shape.zipf_s);
  for (auto& c : cdf) c /= acc;
  std::vector<std::vector<int32_t>> rank_to_expert(static_cast<size_t>(n_layer),
                                                   std::vector<int32_t>(static_cast<size_t>(n_expert)));
  for (auto& perm : rank_to_expert) {
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
  }
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<int32_t> chosen;
  for (int64_t tok = 0; tok < n_token; ++tok) {
    for (int64_t l = 0; l < n_layer; ++l) {
      chosen.clear();
      if (tok > 0) {
        const int32_t* prev = t.at(tok - 1, l);
        for (int64_t k = 0; k < top_k; ++k)
          if (u(rng) < shape.reuse) chosen.push_back(prev[k]);
      }
      while (int64_t(chosen.size()) < top_k) {
        const auto r = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
        const int32_t e = rank_to_expert[size_t(l)][size_t(std::min<int64_t>(r, n_expert - 1))];
        if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) chosen.push_back(e);
      }
      std::copy(chosen.begin(), chosen.end(), t.ids.begin() + (tok * n_layer + l) * top_k);
    }
  }
  return t;
}

RoutingTrace load_routing_trace(const std::filesystem::path& path) {
  const JsonNode root = JsonNode::load(path);
  root.allow_only({"n_layer", "n_expert", "top_k", "tokens", "source", "notes"});
  RoutingTrace t;
  t.n_layer = root.at("n_layer").integer();
  t.n_expert = root.at("n_expert").integer();
  t.top_k = root.at("top_k").integer();
  if (t.n_layer <= 0) root.at("n_layer").fail("expected a positive integer");
  if (t.n_expert <= 0) root.at("n_expert").fail("expected a positive integer");
  if (t.top_k <= 0 || t.top_k > t.n_expert) root.at("top_k").fail("expected 0 < top_k <= n_expert");
  const JsonNode tokens = root.at("tokens");
  for (size_t i = 0; i < tokens.size(); ++i) {
    const JsonNode tok = tokens.at(i);
    if (int64_t(tok.size()) != t.n_layer) tok.fail("expected n_layer (" + std::to_string(t.n_layer) + ") layers");
    for (size_t l = 0; l < tok.size(); ++l) {
      const JsonNode layer = tok.at(l);
      if (int64_t(layer.size()) != t.top_k) layer.fail("expected top_k (" + std::to_string(t.top_k) + ") expert ids");
      for (size_t k = 0; k < layer.size(); ++k) {
        const int64_t e = layer.at(k).integer();
        if (e < 0 || e >= t.n_expert) layer.at(k).fail("expert id out of range [0, n_expert)");
        t.ids.push_back(int32_t(e));
      }
    }
  }
  return t;
}

double lru_hit_rate(const RoutingTrace& trace, int64_t capacity, int64_t warmup_tokens) {
  const int64_t n_items = trace.n_layer * trace.n_expert;
  if (capacity <= 0) return 0.0;
  if (capacity >= n_items) capacity = n_items;
  // Doubly linked list over item ids (layer * n_expert + expert); head = most recent.
  std::vector<int64_t> prev(size_t(n_items), -1), next(size_t(n_items), -1);
  std::vector<uint8_t> present(size_t(n_items), 0);
  int64_t head = -1, tail = -1, size = 0;
  auto unlink = [&](int64_t i) {
    if (prev[size_t(i)] >= 0) next[size_t(prev[size_t(i)])] = next[size_t(i)];
    else head = next[size_t(i)];
    if (next[size_t(i)] >= 0) prev[size_t(next[size_t(i)])] = prev[size_t(i)];
    else tail = prev[size_t(i)];
  };
  auto push_front = [&](int64_t i) {
    prev[size_t(i)] = -1;
    next[size_t(i)] = head;
    if (head >= 0) prev[size_t(head)] = i;
    head = i;
    if (tail < 0) tail = i;
  };
  int64_t hits = 0, lookups = 0;
  const int64_t n_token = trace.n_token();
  for (int64_t tok = 0; tok < n_token; ++tok) {
    for (int64_t l = 0; l < trace.n_layer; ++l) {
      const int32_t* ids = trace.at(tok, l);
      for (int64_t k = 0; k < trace.top_k; ++k) {
        const int64_t item = l * trace.n_expert + ids[k];
        const bool hit = present[size_t(item)] != 0;
        if (tok >= warmup_tokens) {
          ++lookups;
          hits += hit ? 1 : 0;
        }
        if (hit) {
          unlink(item);
        } else {
          if (size == capacity) {
            const int64_t victim = tail;
            unlink(victim);
            present[size_t(victim)] = 0;
            --size;
          }
          present[size_t(item)] = 1;
          ++size;
        }
        push_front(item);
      }
    }
  }
  return lookups == 0 ? 0.0 : double(hits) / double(lookups);
}

double mean_distinct_experts(const RoutingTrace& trace, int64_t window) {
  const int64_t n_token = trace.n_token();
  if (window <= 0 || n_token == 0) return 0.0;
  window = std::min(window, n_token);
  std::vector<uint8_t> seen(size_t(trace.n_expert));
  double total = 0;
  int64_t samples = 0;
  for (int64_t start = 0; start + window <= n_token; start += window) {
    for (int64_t l = 0; l < trace.n_layer; ++l) {
      std::fill(seen.begin(), seen.end(), 0);
      int64_t distinct = 0;
      for (int64_t tok = start; tok < start + window; ++tok)
        for (int64_t k = 0; k < trace.top_k; ++k) {
          auto& s = seen[size_t(trace.at(tok, l)[k])];
          distinct += s ? 0 : 1;
          s = 1;
        }
      total += double(distinct);
      ++samples;
    }
  }
  return total / double(samples);
}

double measured_reuse(const RoutingTrace& trace) {
  int64_t reused = 0, total = 0;
  for (int64_t tok = 1; tok < trace.n_token(); ++tok)
    for (int64_t l = 0; l < trace.n_layer; ++l) {
      const int32_t* cur = trace.at(tok, l);
      const int32_t* prv = trace.at(tok - 1, l);
      for (int64_t k = 0; k < trace.top_k; ++k) {
        reused += std::find(prv, prv + trace.top_k, cur[k]) != prv + trace.top_k ? 1 : 0;
        ++total;
      }
    }
  return total == 0 ? 0.0 : double(reused) / double(total);
}

}  // namespace moelab::perfmodel
