#include "experiment/model_source.h"

#include <cstdio>
#include <cstdlib>

#include "experiment/peer.h"
#include "gguf/gguf.h"
#include "metrics/progress.h"
#include "model/loader.h"
#include "model/preset.h"
#include "model/recipes.h"
#include "model/synth.h"
#include "quant/codec.h"
#include "store/page_cache.h"

namespace moelab::experiment {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// Bumped when the generator's output for the same parameters changes, so stale cached models are not reused.
constexpr const char* kGenCacheVersion = "gen-v1";

model::Config gen_config(const GenModel& g, const std::string& file) {
  try {
    const model::Preset p = model::find_preset(g.preset);
    if (p.projection_only) throw Error("preset " + p.name + " is for projection only: " + p.approximation);
    return model::scaled(p.config, g.layers, g.experts, g.vocab);
  } catch (const SpecError&) {
    throw;
  } catch (const Error& e) {
    throw SpecError(file, "/model/gen/preset", e.what());
  }
}

double expert_bytes(const model::Config& c, const quant::Codec& codec) {
  if (!c.is_moe()) return 0;
  if (c.n_embd % codec.block_values || c.n_ff_exp % codec.block_values) return 0;
  return double(2 * c.n_ff_exp) * double(codec.row_bytes(c.n_embd)) + double(c.n_embd) * double(codec.row_bytes(c.n_ff_exp));
}

// Row lengths (ne[0]) of the tensors each codec group covers.
std::vector<std::pair<const char*, int64_t>> expert_rows(const model::Config& c) {
  return {{"n_embd", c.n_embd}, {"n_ff_exp", c.n_ff_exp}};
}
std::vector<std::pair<const char*, int64_t>> shared_rows(const model::Config& c) {
  std::vector<std::pair<const char*, int64_t>> r = {{"n_embd", c.n_embd}, {"n_head * head_dim", c.q_dim()}};
  if (c.n_ff > 0) r.push_back({"n_ff", c.n_ff});
  if (c.n_ff_shexp > 0) r.push_back({"n_ff_shexp", c.n_ff_shexp});
  return r;
}

std::string codec_misfit(const std::string& name, const std::vector<std::pair<const char*, int64_t>>& rows) {
  if (name == "source") return "";
  const quant::Codec& c = quant::codec(name);
  for (const auto& [what, n] : rows)
    if (n % c.block_values)
      return name + " needs rows that are a multiple of " + std::to_string(c.block_values) + " values; this model's " +
             what + " is " + std::to_string(n);
  return "";
}

std::string gen_hash(const GenModel& g, const model::Config& c) {
  char text[512];
  std::snprintf(text, sizeof text, "%s|%s|%lld|%lld|%lld|%s|%llu|%s|%.6g|%lld", kGenCacheVersion, g.preset.c_str(),
                (long long)c.n_layer, (long long)c.n_expert, (long long)c.n_vocab, g.codec.c_str(),
                (unsigned long long)g.seed, g.dist.c_str(), g.router_skew, (long long)c.n_embd);
  return fnv1a_hex(text);
}

}  // namespace

ModelShape model_shape(const Spec& spec) {
  const std::string file = spec.file.string();
  ModelShape s;
  if (spec.model.gen) {
    const GenModel& g = *spec.model.gen;
    s.config = gen_config(g, file);
    if (g.experts > 0 && !s.config.is_moe()) throw SpecError(file, "/model/gen/experts", "preset " + g.preset + " is dense");
    const std::string misfit = codec_misfit(g.codec, shared_rows(s.config));
    if (!misfit.empty()) throw SpecError(file, "/model/gen/codec", misfit);
    s.expert_bytes_each = expert_bytes(s.config, quant::codec(g.codec));
    s.source_label = "gen " + g.preset + " " + std::to_string(s.config.n_layer) + " layers " +
                     std::to_string(s.config.n_expert) + " experts " + g.codec;
    return s;
  }
  try {
    const auto m = model::Model::load(spec.model.path);
    s.config = m->config();
    s.expert_bytes_each = double(m->footprint().expert_bytes_each);
  } catch (const Error& e) {
    throw SpecError(file, "/model", std::string("cannot use the model: ") + e.what());
  }
  s.source_label = spec.model.path.string();
  return s;
}

void check_against_model(const Spec& spec, const std::vector<Point>& points, const ModelShape& shape) {
  const std::string file = spec.file.string();
  const model::Config& c = shape.config;
  auto check = [&](const AxisValues& v, const std::vector<std::string>& origin, const std::string& what) {
    auto fail = [&](const char* name, const std::string& reason) {
      const std::string& ptr = origin[size_t(axis_index(name))];
      throw SpecError(file, ptr.empty() ? what : ptr, (ptr.empty() ? std::string(name) + " (default): " : "") + reason);
    };
    auto at = [&](const char* name) -> const nlohmann::json& { return v[size_t(axis_index(name))]; };
    const int64_t top_k = at("top_k").get<int64_t>();
    if (!c.is_moe() && top_k != 0) fail("top_k", "value " + std::to_string(top_k) + " on a dense model (needs 0)");
    if (c.is_moe() && top_k > c.n_expert_used)
      fail("top_k", "value " + std::to_string(top_k) + " above the model's K " + std::to_string(c.n_expert_used));
    const int64_t depth = at("spec_depth").get<int64_t>();
    if (depth >= std::max<int64_t>(c.n_layer, 1))
      fail("spec_depth", "value " + std::to_string(depth) + " not below the model's " + std::to_string(c.n_layer) +
                             " layers");
    const int64_t width = at("spec_width").get<int64_t>();
    if (c.is_moe() && width > c.n_expert)
      fail("spec_width", "value " + std::to_string(width) + " above the model's " + std::to_string(c.n_expert) +
                             " experts");
    for (const char* name : {"expert_codec", "shared_codec"}) {
      const std::string misfit =
          codec_misfit(at(name).get<std::string>(), name[0] == 'e' ? expert_rows(c) : shared_rows(c));
      if (!misfit.empty()) fail(name, misfit);
    }
    if (!c.is_moe() && at("expert_codec").get<std::string>() != "source")
      fail("expert_codec", "the model is dense: it has no routed experts");
    // A streamed store must hold at least one layer's active experts at once.
    const double budget = at("ram_budget_mb").get<double>();
    if (at("io").get<std::string>() != "resident" && budget > 0 && c.is_moe()) {
      const std::string ec = at("expert_codec").get<std::string>();
      const double each = ec == "source" ? shape.expert_bytes_each : expert_bytes(c, quant::codec(ec));
      const double min_mb = double(top_k > 0 ? top_k : c.n_expert_used) * each / kMiB;
      if (budget < min_mb) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "value %g MiB below the minimum %.2f MiB (one layer's top-%lld experts)",
                      budget, min_mb, (long long)(top_k > 0 ? top_k : c.n_expert_used));
        fail("ram_budget_mb", buf);
      }
    }
    // The engine axis: the reference is moelab's, in this process; a llama.cpp point takes only what it can honour.
    if (what == "/reference" && at("engine") != "moelab")
      fail("engine", "the reference is computed by moelab (engine moelab), got " + at("engine").dump());
    if (what == "/reference" && at("mem_cap") != "none")
      fail("mem_cap", "the reference runs uncapped (none), got " + at("mem_cap").dump());
    if (at("engine") == "llama.cpp") {
      std::string why;
      const std::string bad = llamacpp_unsupported_axis(v, why);
      if (!bad.empty()) fail(bad.c_str(), why);
    }
  };
  check(spec.reference, spec.reference_pointer, "/reference");
  for (const Point& p : points) check(p.values, p.origin, "/sweep");
}

std::filesystem::path model_cache_dir() {
  if (const char* d = std::getenv("MOELAB_MODEL_CACHE"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::filesystem::path(x) / "moelab" / "models";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".cache" / "moelab" / "models";
  return std::filesystem::temp_directory_path() / "moelab-models";
}

void requantize_by_role(const std::filesystem::path& in_path, const std::filesystem::path& out_path,
                        const std::string& expert_codec, const std::string& shared_codec, ThreadPool& pool) {
  const gguf::File in = gguf::File::open(in_path);
  gguf::Writer out;
  for (const gguf::KeyValue& kv : in.metadata()) out.add(kv.key, kv.value);
  out.set("general.quantized_by", gguf::Value::of("moelab sweep: experts " + expert_codec + ", shared " + shared_codec));
  uint64_t total = 0;
  for (const gguf::Tensor& t : in.tensors()) total += t.n_bytes;
  metrics::Progress progress("requantize", double(total) / kMiB, "MiB");
  double done_mib = 0;
  for (const gguf::Tensor& t : in.tensors()) {
    const model::Role role = model::role_of_tensor(t.name);
    const bool expert = role == model::Role::exp_gate || role == model::Role::exp_up || role == model::Role::exp_down;
    const bool weight = t.n_dims >= 2 && t.ne[1] > 1 && role != model::Role::router && role != model::Role::norm;
    const std::string& target = expert ? expert_codec : weight ? shared_codec : std::string("source");
    const quant::Codec& dst = target == "source" ? *t.codec : quant::codec(target);
    const std::span<const int64_t> ne(t.ne.data(), size_t(t.n_dims));
    if (&dst == t.codec) {
      out.add_tensor(t.name, dst, ne, t.bytes());
      done_mib += double(t.n_bytes) / kMiB;
      continue;
    }
    if (t.ne[0] % dst.block_values)
      throw Error(in_path.string() + ": " + t.name + ": rows of " + std::to_string(t.ne[0]) + " values do not fit " +
                  std::string(dst.name) + " blocks of " + std::to_string(dst.block_values));
    const gguf::Tensor* src = &t;
    out.add_tensor(t.name, dst, ne, [src, &dst, &pool, &progress, &done_mib](std::span<uint8_t> bytes) {
      const int64_t cols = src->ne[0], rows = src->n_rows();
      const size_t in_row = src->row_bytes(), out_row = dst.row_bytes(cols);
      pool.parallel_for(rows, 1, [&](int64_t b, int64_t e, int) {
        std::vector<float> row(static_cast<size_t>(cols));  // once per chunk
        for (int64_t r = b; r < e; ++r) {
          src->codec->decode()(src->data + size_t(r) * in_row, row.data(), cols);
          dst.encode(row.data(), bytes.data() + size_t(r) * out_row, cols, nullptr);
        }
      });
      done_mib += double(src->n_bytes) / kMiB;
      progress.update(done_mib);
    });
  }
  out.write(out_path);
  progress.finish("wrote " + out_path.string());
}

std::filesystem::path prepare_model(const Spec& spec, const std::string& expert_codec,
                                    const std::string& shared_codec, const std::filesystem::path& cache_dir,
                                    ThreadPool& pool) {
  std::filesystem::path base = spec.model.path;
  std::string stem;
  if (spec.model.gen) {
    const GenModel& g = *spec.model.gen;
    const model::Config c = gen_config(g, spec.file.string());
    const model::Preset preset = model::find_preset(g.preset);
    stem = "gen-" + preset.name + "-" + gen_hash(g, c);
    base = cache_dir / (stem + ".gguf");
    if (!std::filesystem::exists(base)) {
      std::filesystem::create_directories(cache_dir);
      model::SynthOptions s;
      s.config = c;
      s.name = preset.name + "-synthetic";
      s.codec = g.codec;
      s.seed = g.seed;
      s.dist = g.dist == "heavy" ? model::WeightDist::heavy : model::WeightDist::gaussian;
      s.router_skew = g.router_skew;
      s.tied_embeddings = preset.tied_embeddings;
      metrics::Progress progress("gen " + stem, 0, "MiB");
      model::write_synthetic_gguf(s, base, pool, [&](uint64_t done, uint64_t total) {
        progress.set_total(double(total) / kMiB);
        progress.update(double(done) / kMiB);
      });
      progress.finish("wrote " + base.string());
      // Flushed now: pages still dirty survive POSIX_FADV_DONTNEED, so a
      // buffered strategy that drops what it read (pread, mmap) would read
      // the model just written from RAM while a fsync'ed .moepack comes
      // from the disk.
      store::drop_file_pages(base);
    }
  } else {
    std::error_code ec;
    const auto size = std::filesystem::file_size(base, ec);
    const auto mtime = std::filesystem::last_write_time(base, ec).time_since_epoch().count();
    stem = base.stem().string() + "-" +
           fnv1a_hex(std::filesystem::absolute(base).string() + "|" + std::to_string(size) + "|" + std::to_string(mtime));
  }
  if (expert_codec == "source" && shared_codec == "source") return base;
  const std::filesystem::path variant = cache_dir / (stem + ".e-" + expert_codec + ".s-" + shared_codec + ".gguf");
  if (!std::filesystem::exists(variant)) {
    std::filesystem::create_directories(cache_dir);
    requantize_by_role(base, variant, expert_codec, shared_codec, pool);
    store::drop_file_pages(variant);  // flushed, as a generated model
  }
  return variant;
}

}  // namespace moelab::experiment
