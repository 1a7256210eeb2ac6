// moelab's one exception type. Every user-facing failure (bad file, bad spec,
// bad codec name, bad shape) throws this with a message that names the thing
// (file, field, codec) and the reason; the CLI prints it and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace moelab {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace moelab
