// libFuzzer target for KV session files. The harness stamps the expected
// model identity and a valid trailing checksum onto each input, so mutations
// reach the shape and codec checks behind them. Any input must load or throw
// moelab::Error; a rejected file must leave the cache unchanged.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/hash.h"
#include "kv/session.h"

namespace {
const std::string kIdentity = "0123456789abcdef0123456789abcdef";
constexpr size_t kIdentityOffset = 16;  // after magic (8), version (4), reserved (4)

std::filesystem::path scratch() {
  static const std::filesystem::path p =
      std::filesystem::temp_directory_path() / ("moelab-session-fuzz-" + std::to_string(::getpid()) + ".kvs");
  return p;
}
}  // namespace

// MOELAB_FUZZ_SEED_OUT=<file>: write a valid 4-position q8_0/q4_0 session there (the seed corpus):
//   MOELAB_FUZZ_SEED_OUT=fuzz/corpus/session/q8_0-q4_0.kvs build-fuzz/fuzz/session_fuzz -runs=1
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* out = std::getenv("MOELAB_FUZZ_SEED_OUT")) {
    moelab::kv::KvCache cache(2, 32, 2, 64, "q8_0/q4_0");
    std::vector<float> k(64), v(64);
    for (int64_t pos = 0; pos < 4; ++pos)
      for (int layer = 0; layer < 2; ++layer) {
        for (int i = 0; i < 64; ++i) k[size_t(i)] = float((i * 7 + pos * 3 + layer) % 13) - 6.0f, v[size_t(i)] = float(i % 5);
        std::vector<float> kk(128), vv(128);
        for (int h = 0; h < 2; ++h) std::copy(k.begin(), k.end(), kk.begin() + h * 64), std::copy(v.begin(), v.end(), vv.begin() + h * 64);
        cache.store(layer, pos, kk.data(), vv.data());
      }
    cache.set_n_past(4);
    const std::vector<int32_t> tokens = {1, 2, 3, 4};
    moelab::kv::save_session(out, cache, kIdentity, tokens);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  if (bytes.size() >= kIdentityOffset + kIdentity.size()) std::memcpy(&bytes[kIdentityOffset], kIdentity.data(), kIdentity.size());
  if (bytes.size() >= 8) {
    const uint64_t sum = moelab::Xxh64::of(bytes.data(), bytes.size() - 8);
    std::memcpy(&bytes[bytes.size() - 8], &sum, 8);
  }
  std::ofstream(scratch(), std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(bytes.data()),
                                                                      std::streamsize(bytes.size()));
  for (const char* codec : {"f16", "q8_0/q4_0", "tq3"}) {
    moelab::kv::KvCache cache(2, 32, 2, 64, codec);
    try {
      const std::vector<int32_t> tokens = moelab::kv::load_session(scratch(), cache, kIdentity);
      if (int64_t(tokens.size()) != cache.n_past()) std::abort();
    } catch (const moelab::Error& e) {
      if (cache.n_past() != 0) {
        std::fprintf(stderr, "session_fuzz: a rejected session changed the cache\n");
        std::abort();
      }
      if (std::string(e.what()).find(scratch().string()) == std::string::npos) {
        std::fprintf(stderr, "session_fuzz: error does not name the file: %s\n", e.what());
        std::abort();
      }
    }
  }
  return 0;
}
