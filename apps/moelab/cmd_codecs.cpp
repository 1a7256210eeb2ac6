// `moelab codecs`: every weight codec on the same two matrices (Gaussian and
// heavy-tailed Student-t with outlier columns): storage cost, round-trip
// error, and GEMV throughput beside the memory read bandwidth of this machine.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "core/random.h"
#include "core/thread_pool.h"
#include "metrics/accuracy.h"
#include "metrics/bandwidth.h"
#include "metrics/timer.h"
#include "quant/ops.h"

namespace moelab::cli {
namespace {

struct CodecRow {
  const quant::Codec* codec;
  double bpw, overhead;
  double gauss_rel_rmse, gauss_cos, heavy_rel_rmse, heavy_cos;
  double gemv_gbs = 0;
  quant::Isa kernel_isa = quant::Isa::scalar;
};

struct ErrorStats {
  double rel_rmse, cos;
};

ErrorStats round_trip(const quant::Codec& c, const std::vector<float>& x, int64_t rows, int64_t cols,
                      ThreadPool& pool, std::vector<uint8_t>* keep_bytes) {
  std::vector<uint8_t> q = quant::quantize(c, x, rows, cols, nullptr, false, &pool);
  std::vector<float> y(x.size());
  quant::dequantize(quant::make_qmatrix(c, q.data(), q.size(), rows, cols), y, &pool);
  ErrorStats s{metrics::relative_rmse(x, y), metrics::cosine(x, y)};
  if (keep_bytes) *keep_bytes = std::move(q);
  return s;
}

// Median GB/s of weight bytes streamed by gemv over `reps` timed calls. The
// matrix is copied until the copies fill kWorkingSetBytes and the calls cycle
// through them, so the weights come from DRAM (as in a model larger than the
// last-level cache), like the memory-read figure they are compared with.
constexpr size_t kWorkingSetBytes = size_t(256) << 20;

double gemv_gbs(const quant::Codec& c, const std::vector<uint8_t>& bytes, int64_t rows, int64_t cols, ThreadPool& pool,
                uint64_t seed, int reps = 9) {
  const size_t copies = std::max<size_t>(1, (kWorkingSetBytes + bytes.size() - 1) / bytes.size());
  std::vector<uint8_t> ws(copies * bytes.size());
  for (size_t i = 0; i < copies; ++i) std::copy(bytes.begin(), bytes.end(), ws.begin() + ptrdiff_t(i * bytes.size()));
  const std::vector<float> x = gaussian_matrix(1, cols, seed);
  std::vector<float> y(static_cast<size_t>(rows));
  quant::Activations act;
  std::vector<double> gbs;
  for (int r = 0; r <= reps; ++r) {
    const quant::QMatrix w = quant::make_qmatrix(c, ws.data() + size_t(r) % copies * bytes.size(), bytes.size(), rows, cols);
    const int64_t t0 = metrics::now_ns();
    act.encode(c, x.data(), 1, cols, quant::DotPath::quantized);
    quant::gemv(w, act, y.data(), &pool);
    const int64_t t1 = metrics::now_ns();
    if (r > 0) gbs.push_back(double(bytes.size()) / double(t1 - t0));  // first call warms up
  }
  return metrics::median(gbs);
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

int run_codecs(const CodecsOptions& opts) {
  std::vector<const quant::Codec*> codecs;
  if (opts.names.empty()) {
    for (const quant::Codec& c : quant::all_codecs())
      if (quant::is_weight_codec(c)) codecs.push_back(&c);
  } else {
    for (const std::string& n : opts.names) {
      const quant::Codec& c = quant::codec(n);
      if (!quant::is_weight_codec(c)) throw Error("codec " + n + " is an activation-only codec, not a weight codec");
      codecs.push_back(&c);
    }
  }
  for (const quant::Codec* c : codecs) c->row_bytes(opts.cols);  // fail early on a column count a codec cannot take

  ThreadPool pool(opts.threads);
  std::fprintf(stderr, "codecs: generating %lld x %lld Gaussian and Student-t (nu=4, 8 outlier columns x10) matrices\n",
               (long long)opts.rows, (long long)opts.cols);
  const std::vector<float> gauss = gaussian_matrix(opts.rows, opts.cols, opts.seed);
  const std::vector<float> heavy = student_t_matrix(opts.rows, opts.cols, opts.seed + 1);

  double mem_gbs = 0;
  if (!opts.no_speed) {
    mem_gbs = metrics::read_bandwidth_gbs(kWorkingSetBytes, &pool);
    std::fprintf(stderr, "codecs: memory read bandwidth %.2f GB/s (256 MiB buffer, %d threads, %s loads)\n", mem_gbs,
                 opts.threads, std::string(quant::isa_name(quant::active_isa())).c_str());
  }

  std::vector<CodecRow> rows;
  const int64_t t_start = metrics::now_ns();
  for (size_t i = 0; i < codecs.size(); ++i) {
    const quant::Codec& c = *codecs[i];
    CodecRow row{&c, c.bits_per_weight(), c.overhead_fraction(), 0, 0, 0, 0};
    std::vector<uint8_t> gauss_bytes;
    const ErrorStats g = round_trip(c, gauss, opts.rows, opts.cols, pool, &gauss_bytes);
    const ErrorStats h = round_trip(c, heavy, opts.rows, opts.cols, pool, nullptr);
    row.gauss_rel_rmse = g.rel_rmse;
    row.gauss_cos = g.cos;
    row.heavy_rel_rmse = h.rel_rmse;
    row.heavy_cos = h.cos;
    row.kernel_isa = c.dot_kernel_isa(quant::active_isa());
    if (!opts.no_speed)
      row.gemv_gbs = gemv_gbs(c, gauss_bytes, opts.rows, opts.cols, pool, opts.seed + 2);
    rows.push_back(row);
    const double elapsed_s = double(metrics::now_ns() - t_start) * 1e-9;
    std::fprintf(stderr, "codecs: [%zu/%zu] %-13s done, elapsed %.0f s, ETA %.0f s\n", i + 1, codecs.size(),
                 std::string(c.name).c_str(), elapsed_s, elapsed_s / double(i + 1) * double(codecs.size() - i - 1));
  }

  // One Markdown table on stdout (and optionally a file), so the README quotes it verbatim.
  std::string md;
  md += "| codec | bits/weight | scale overhead | Gaussian rel. RMSE | Gaussian cosine | heavy-tail rel. RMSE | "
        "heavy-tail cosine | GEMV GB/s | vs mem. read | kernel |\n";
  md += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const CodecRow& r : rows) {
    md += "| " + std::string(r.codec->name) + " | " + fmt("%.3f", r.bpw) + " | " + fmt("%.1f%%", 100 * r.overhead) +
          " | " + fmt("%.5f", r.gauss_rel_rmse) + " | " + fmt("%.6f", r.gauss_cos) + " | " +
          fmt("%.5f", r.heavy_rel_rmse) + " | " + fmt("%.6f", r.heavy_cos) + " | " +
          (opts.no_speed ? "-" : fmt("%.2f", r.gemv_gbs)) + " | " +
          (opts.no_speed ? "-" : fmt("%.0f%%", 100 * r.gemv_gbs / mem_gbs)) + " | " +
          std::string(quant::isa_name(r.kernel_isa)) + " |\n";
  }
  std::string caption = "Matrices " + std::to_string(opts.rows) + " x " + std::to_string(opts.cols) + ", seed " +
                        std::to_string(opts.seed) + ", " + std::to_string(opts.threads) + " threads";
  if (!opts.no_speed)
    caption += "; GEMV cycles through 256 MiB of copies so weights stream from DRAM; memory read bandwidth " +
               fmt("%.2f", mem_gbs) + " GB/s, same run";
  md = caption + ".\n\n" + md;
  std::fputs(md.c_str(), stdout);
  if (!opts.markdown_path.empty()) {
    std::ofstream out(opts.markdown_path);
    if (!(out << md)) throw Error("cannot write " + opts.markdown_path);
  }
  return 0;
}

}  // namespace moelab::cli
