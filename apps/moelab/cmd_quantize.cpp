// `moelab quantize`: requantize every tensor of a GGUF model by a recipe.
#include <cstdio>
#include <map>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "gguf/gguf.h"
#include "metrics/progress.h"
#include "model/loader.h"
#include "model/recipes.h"
#include "quant/codec.h"

namespace moelab::cli {
namespace {

// Per-input-channel importance of each tensor, from a llama.cpp imatrix GGUF:
// in_sum2 [n_mat, ne0] / counts [n_mat]. n_mat is 1, or n_expert for 3-D expert tensors.
struct Importance {
  std::vector<float> values;  // [n_mat, ne0]
  int64_t ne0 = 0, n_mat = 0;
};

std::map<std::string, Importance> read_imatrix(const std::string& path) {
  const gguf::File f = gguf::File::open(path);
  std::map<std::string, Importance> out;
  for (const gguf::Tensor& t : f.tensors()) {
    const std::string suffix = ".in_sum2";
    if (t.name.size() <= suffix.size() || t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string base = t.name.substr(0, t.name.size() - suffix.size());
    const gguf::Tensor& counts = f.tensor(base + ".counts");
    if (t.ggml_type != 0 || counts.ggml_type != 0)
      throw Error(path + ": " + base + ": imatrix tensors must be f32");
    Importance imp;
    imp.ne0 = t.ne[0];
    imp.n_mat = t.n_rows();
    if (counts.n_elements() != imp.n_mat)
      throw Error(path + ": " + base + ".counts: " + std::to_string(counts.n_elements()) + " counts for " +
                  std::to_string(imp.n_mat) + " matrices");
    imp.values.resize(size_t(imp.ne0 * imp.n_mat));
    const auto* sums = reinterpret_cast<const float*>(t.data);
    const auto* cnt = reinterpret_cast<const float*>(counts.data);
    for (int64_t m = 0; m < imp.n_mat; ++m)
      for (int64_t j = 0; j < imp.ne0; ++j)
        imp.values[size_t(m * imp.ne0 + j)] = cnt[m] > 0 ? sums[m * imp.ne0 + j] / cnt[m] : 1.0f;
    out.emplace(base, std::move(imp));
  }
  if (out.empty()) throw Error(path + ": no <tensor>.in_sum2 entries: not a llama.cpp imatrix GGUF");
  return out;
}

}  // namespace

int run_quantize(const QuantizeOptions& opts) {
  if (opts.list) {
    std::printf("%-12s %-6s %s\n", "preset", "gguf", "what");
    for (const model::Recipe& r : model::recipes())
      std::printf("%-12s %-6s %s\n", std::string(r.name).c_str(), model::recipe_is_gguf_native(r) ? "yes" : "no",
                  std::string(r.description).c_str());
    return 0;
  }
  if (opts.input.empty() || opts.output.empty() || opts.preset.empty())
    throw Error("quantize needs INPUT OUTPUT --preset NAME (or --list-presets)");
  const model::Recipe& rec = model::recipe(opts.preset);
  const gguf::File in = gguf::File::open(opts.input);
  const model::Config config = model::config_from_gguf(in);
  std::map<std::string, Importance> imatrix;
  if (!opts.imatrix.empty()) imatrix = read_imatrix(opts.imatrix);

  gguf::Writer out;
  for (const gguf::KeyValue& kv : in.metadata()) out.add(kv.key, kv.value);
  out.set("general.quantized_by", gguf::Value::of("moelab quantize --preset " + opts.preset));
  ThreadPool pool(opts.threads);
  uint64_t total_in = 0;
  for (const gguf::Tensor& t : in.tensors()) total_in += t.n_bytes;
  metrics::Progress progress("quantize", double(total_in) / (1 << 20), "MiB read");
  double done_mib = 0;
  std::map<std::string, uint64_t> bytes_by_codec;
  for (const gguf::Tensor& t : in.tensors()) {
    std::string target = model::codec_for(rec, config, t.name, t.ne[0], t.n_dims);
    const quant::Codec& dst = target.empty() ? *t.codec : quant::codec(target);
    if (dst.ggml_type < 0)
      throw Error("preset " + opts.preset + ": codec " + std::string(dst.name) + " has no GGUF type id to store it under");
    const Importance* imp = nullptr;
    if (auto it = imatrix.find(t.name); it != imatrix.end()) {
      imp = &it->second;
      if (imp->ne0 != t.ne[0] || (imp->n_mat != 1 && imp->n_mat != t.ne[2]))
        throw Error(opts.imatrix + ": " + t.name + ": importance shape does not match the tensor");
    }
    bytes_by_codec[std::string(dst.name)] += gguf::tensor_bytes(dst, std::span<const int64_t>(t.ne.data(), size_t(t.n_dims)), t.name);
    if (&dst == t.codec) {
      out.add_tensor(t.name, dst, std::span<const int64_t>(t.ne.data(), size_t(t.n_dims)), t.bytes());
    } else {
      const gguf::Tensor* src = &t;
      out.add_tensor(t.name, dst, std::span<const int64_t>(t.ne.data(), size_t(t.n_dims)),
                     [src, &dst, imp, &pool, &progress, &done_mib](std::span<uint8_t> bytes) {
                       const int64_t cols = src->ne[0], rows = src->n_rows();
                       const int64_t rows_per_mat = src->ne[1];
                       const size_t in_row = src->row_bytes(), out_row = dst.row_bytes(cols);
                       pool.parallel_for(rows, 1, [&](int64_t b, int64_t e, int) {
                         std::vector<float> row(static_cast<size_t>(cols));  // once per chunk
                         for (int64_t r = b; r < e; ++r) {
                           src->codec->decode()(src->data + size_t(r) * in_row, row.data(), cols);
                           const float* w = imp ? imp->values.data() + (imp->n_mat == 1 ? 0 : (r / rows_per_mat) * cols) : nullptr;
                           dst.encode(row.data(), bytes.data() + size_t(r) * out_row, cols, w);
                         }
                       });
                       done_mib += double(src->n_bytes) / (1 << 20);
                       progress.update(done_mib);
                     });
    }
  }
  out.write(opts.output);
  progress.finish();
  std::fprintf(stderr, "quantize: wrote %s with preset %s%s\n", opts.output.c_str(), opts.preset.c_str(),
               imatrix.empty() ? "" : " and importance weights");
  for (const auto& [codec, bytes] : bytes_by_codec)
    std::fprintf(stderr, "  %-12s %10.1f MiB\n", codec.c_str(), double(bytes) / (1 << 20));
  return 0;
}

}  // namespace moelab::cli
