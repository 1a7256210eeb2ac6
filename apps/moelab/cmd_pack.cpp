// `moelab pack`: write a .moepack (one aligned blob per layer x expert).
#include <cstdio>

#include "commands.h"
#include "core/thread_pool.h"
#include "model/loader.h"
#include "store/pack.h"

namespace moelab::cli {

int run_pack(const PackOptions& opts) {
  const auto model = model::Model::load(opts.model);
  ThreadPool pool(opts.threads);
  store::PackOptions po;
  po.codec = opts.codec;
  po.align = opts.align;
  store::write_pack(*model, opts.output, po, pool, [](int64_t done, int64_t total) {
    std::fprintf(stderr, "\rpack: layer %lld / %lld", (long long)done, (long long)total);
  });
  std::fprintf(stderr, "\npack: wrote %s\n", opts.output.c_str());
  return 0;
}

}  // namespace moelab::cli
