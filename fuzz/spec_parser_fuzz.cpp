// libFuzzer target for the experiment spec parser: any JSON document must
// either parse into a spec whose points expand, or throw moelab::Error naming
// the spec file. Non-JSON input is dropped (nlohmann's parser is not ours).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "experiment/expand.h"
#include "experiment/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    const moelab::experiment::Spec spec = moelab::experiment::parse_spec(j, "fuzz-spec.json");
    if (moelab::experiment::product_size(spec) <= 4096) (void)moelab::experiment::expand(spec);
  } catch (const moelab::Error& e) {
    if (std::string(e.what()).find("fuzz-spec.json") == std::string::npos) {
      std::fprintf(stderr, "spec_parser_fuzz: error does not name the file: %s\n", e.what());
      std::abort();
    }
  }
  return 0;
}
