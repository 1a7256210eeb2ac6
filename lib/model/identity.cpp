#include "model/identity.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/hash.h"

namespace moelab::model {

std::string model_identity(const gguf::File& file) {
  const std::span<const uint8_t> bytes = file.bytes();
  const uint64_t n = file.data_offset();
  if (n > bytes.size())
    throw Error(file.path() + ": model identity: data offset " + std::to_string(n) + " is past the file end");
  constexpr uint64_t kSample = 4096;
  Xxh64 a(0), b(1);
  a.update(bytes.data(), n);
  b.update(bytes.data(), n);
  for (const gguf::Tensor& t : file.tensors()) {
    const size_t m = size_t(std::min(t.n_bytes, kSample));
    a.update(t.data, m);
    b.update(t.data, m);
  }
  char hex[33];
  std::snprintf(hex, sizeof(hex), "%016llx%016llx", (unsigned long long)a.digest(), (unsigned long long)b.digest());
  return hex;
}

}  // namespace moelab::model
