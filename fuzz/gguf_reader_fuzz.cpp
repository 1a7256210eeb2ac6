// libFuzzer target for the GGUF reader. Any input must either parse or throw
// moelab::Error naming the file; whatever parses must write back (moelab's
// writer), re-parse to the same content, and re-write to the same bytes.
//
//   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
//         -DMOELAB_FUZZ=ON -DMOELAB_TESTS=OFF -DMOELAB_BENCH=OFF
//   ninja -C build-fuzz gguf_reader_fuzz
//   build-fuzz/fuzz/gguf_reader_fuzz -max_len=8192 -max_total_time=300 corpus-dir fuzz/corpus/gguf_reader
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "gguf/gguf.h"

namespace {

constexpr const char* kName = "fuzz.gguf";

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "gguf_reader_fuzz: %s\n", what);
  std::abort();
}

void check_same(const moelab::gguf::File& a, const moelab::gguf::File& b) {
  if (a.version() != b.version() || a.alignment() != b.alignment()) die("header changed in round trip");
  if (a.metadata().size() != b.metadata().size()) die("key count changed in round trip");
  for (size_t i = 0; i < a.metadata().size(); ++i) {
    if (a.metadata()[i].key != b.metadata()[i].key) die("key changed in round trip");
    if (!(a.metadata()[i].value == b.metadata()[i].value)) die("value changed in round trip");
  }
  if (a.tensors().size() != b.tensors().size()) die("tensor count changed in round trip");
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const auto& x = a.tensors()[i];
    const auto& y = b.tensors()[i];
    if (x.name != y.name || x.ggml_type != y.ggml_type || x.n_dims != y.n_dims || x.ne != y.ne ||
        x.n_bytes != y.n_bytes)
      die("tensor info changed in round trip");
    if (std::memcmp(x.data, y.data, x.n_bytes) != 0) die("tensor data changed in round trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moelab::gguf;
  try {
    const File f = File::parse(std::span<const uint8_t>(data, size), kName);
    // Touch everything the reader hands out.
    size_t sink = 0;
    for (const KeyValue& kv : f.metadata()) sink += kv.value.to_string().size();
    for (const Tensor& t : f.tensors())
      for (uint64_t i = 0; i < t.n_bytes; i += 61) sink += t.data[i];
    const std::vector<uint8_t> once = Writer::from(f).to_bytes();
    const File g = File::parse(once, "rewritten.gguf");
    check_same(f, g);
    if (Writer::from(g).to_bytes() != once) die("second rewrite differs from the first");
    if (sink == 1) std::fputc(0, stderr);  // keep the loop observable
  } catch (const moelab::Error& e) {
    if (std::string(e.what()).find(kName) == std::string::npos) die("error message does not name the file");
  }
  return 0;
}
