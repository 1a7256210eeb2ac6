#include "store/io_strategy.h"

#include <charconv>

#include "core/error.h"

namespace moelab::store {

namespace {
constexpr const char* kValidForms = "resident, mmap, pread, direct, direct_mt<N>, uring<QD> (N, QD in 1..256)";

// "prefix<N>" -> N, or -1 when text is not of that form.
int bracketed_count(std::string_view text, std::string_view prefix) {
  if (!text.starts_with(prefix) || text.size() < prefix.size() + 3 || text[prefix.size()] != '<' || text.back() != '>')
    return -1;
  const std::string_view digits = text.substr(prefix.size() + 1, text.size() - prefix.size() - 2);
  int value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value < 1 || value > 256) return 0;
  return value;
}
}  // namespace

std::string IoStrategy::name() const {
  switch (kind) {
    case IoKind::resident: return "resident";
    case IoKind::mmap: return "mmap";
    case IoKind::pread: return "pread";
    case IoKind::direct: return "direct";
    case IoKind::direct_mt: return "direct_mt<" + std::to_string(n) + ">";
    case IoKind::uring: return "uring<" + std::to_string(n) + ">";
  }
  return "?";
}

IoStrategy parse_io_strategy(std::string_view text) {
  if (text == "resident") return {IoKind::resident, 1};
  if (text == "mmap") return {IoKind::mmap, 1};
  if (text == "pread") return {IoKind::pread, 1};
  if (text == "direct") return {IoKind::direct, 1};
  for (auto [prefix, kind] : {std::pair{std::string_view("direct_mt"), IoKind::direct_mt},
                              std::pair{std::string_view("uring"), IoKind::uring}}) {
    const int n = bracketed_count(text, prefix);
    if (n > 0) return {kind, n};
    if (n == 0) throw Error("io strategy '" + std::string(text) + "': the count must be an integer in 1..256");
  }
  throw Error("unknown io strategy '" + std::string(text) + "'; valid: " + kValidForms);
}

}  // namespace moelab::store
