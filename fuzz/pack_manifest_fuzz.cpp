// libFuzzer target for the .moepack header and manifest parser. A tiny
// qwen3moe GGUF is generated once; the harness stamps its identity and a
// valid manifest checksum onto each input so mutations reach the manifest's
// bounds checks. Any input must open or throw moelab::Error naming the file.
// The seed (fuzz/corpus/pack_manifest/) is a real pack of that model, written by
//   MOELAB_FUZZ_SEED_OUT=fuzz/corpus/pack_manifest/tiny.moepack build-fuzz/fuzz/pack_manifest_fuzz -runs=1
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/loader.h"
#include "model/preset.h"
#include "model/synth.h"
#include "core/hash.h"
#include "store/pack.h"

namespace {

namespace fs = std::filesystem;

const fs::path& dir() {
  static const fs::path d = fs::temp_directory_path() / ("moelab-pack-fuzz-" + std::to_string(::getpid()));
  return d;
}

const moelab::model::Model& tiny_model() {
  static std::unique_ptr<moelab::model::Model> model = [] {
    fs::create_directories(dir());
    const fs::path preset = dir() / "tiny.json";
    std::ofstream(preset) << R"({"name": "tiny", "source": "fuzz", "arch": "qwen3moe", "n_vocab": 320, "n_embd": 64,
      "n_layer": 1, "n_head": 2, "n_head_kv": 1, "head_dim": 32, "n_ff": 64, "n_expert": 2, "n_expert_used": 1,
      "n_ff_exp": 64, "n_ff_shexp": 0, "rope_freq_base": 10000.0, "rms_eps": 1e-6, "context_length": 256})";
    moelab::model::SynthOptions o;
    o.config = moelab::model::find_preset(preset.string()).config;
    o.codec = "q8_0";
    moelab::ThreadPool pool(1);
    moelab::model::write_synthetic_gguf(o, dir() / "tiny.gguf", pool);
    auto m = moelab::model::Model::load(dir() / "tiny.gguf");
    // MOELAB_FUZZ_SEED_OUT=<file>: write a valid pack of this model there (the seed corpus).
    if (const char* out = std::getenv("MOELAB_FUZZ_SEED_OUT")) moelab::store::write_pack(*m, out, {}, pool);
    return m;
  }();
  return *model;
}

template <class T>
T get(const std::vector<uint8_t>& b, size_t off) {
  T v;
  std::memcpy(&v, &b[off], sizeof v);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const moelab::model::Model& model = tiny_model();
  std::vector<uint8_t> bytes(data, data + size);
  // Header offsets (store/pack.h): identity u64 @16, manifest offset @32, bytes @40, checksum @48.
  if (bytes.size() >= moelab::store::kPackHeaderBytes) {
    const uint64_t id = moelab::store::model_identity(model.file());
    std::memcpy(&bytes[16], &id, 8);
    const uint64_t off = get<uint64_t>(bytes, 32), n = get<uint64_t>(bytes, 40);
    if (off <= bytes.size() && n <= bytes.size() - off) {
      const uint64_t sum = moelab::Xxh64::of(bytes.data() + off, size_t(n));
      std::memcpy(&bytes[48], &sum, 8);
    }
  }
  const fs::path pack = dir() / "fuzz.moepack";
  std::ofstream(pack, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(bytes.data()),
                                                                std::streamsize(bytes.size()));
  try {
    const moelab::store::PackIndex index = moelab::store::PackIndex::open(pack, model);
    uint64_t sink = 0;
    for (int l = 0; l < index.n_layer(); ++l)
      for (int32_t e = 0; e < index.n_expert(); ++e) sink += index.blob(l, e).bytes;
    if (sink == 1) std::fputc(0, stderr);
  } catch (const moelab::Error& e) {
    if (std::string(e.what()).find(pack.string()) == std::string::npos) {
      std::fprintf(stderr, "pack_manifest_fuzz: error does not name the file: %s\n", e.what());
      std::abort();
    }
  }
  return 0;
}
