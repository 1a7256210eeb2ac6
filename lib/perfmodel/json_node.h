// A read-only cursor into a parsed JSON document that knows the file it came
// from and its own JSON pointer, so every error names both:
//   "datasets/hardware/m3max.json: /ssd/latency_us/value: expected a number"
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moelab::perfmodel {

class JsonNode {
 public:
  // Parses `path`; throws moelab::Error naming the file on I/O or syntax errors.
  static JsonNode load(const std::filesystem::path& path);
  JsonNode(std::shared_ptr<const nlohmann::json> root, const nlohmann::json* node, std::string file,
           std::string pointer);

  const std::string& file() const { return file_; }
  const std::string& pointer() const { return pointer_; }  // "" for the root
  const nlohmann::json& json() const { return *node_; }

  bool has(const std::string& key) const;
  JsonNode at(const std::string& key) const;  // required member of an object
  JsonNode at(size_t index) const;            // element of an array
  size_t size() const;                        // array length (throws unless an array)
  std::vector<std::string> keys() const;      // object member names (throws unless an object)

  // Typed reads of this node.
  double number() const;
  double positive_number() const;   // > 0
  double nonnegative_number() const;
  int64_t integer() const;
  std::string string() const;
  bool boolean() const;
  void expect_object() const;
  void expect_array() const;

  // Typed reads of a member (required unless an optional_ variant).
  double number(const std::string& key) const { return at(key).number(); }
  double positive_number(const std::string& key) const { return at(key).positive_number(); }
  std::string string(const std::string& key) const { return at(key).string(); }
  std::optional<double> optional_number(const std::string& key) const;
  std::optional<double> optional_positive_number(const std::string& key) const;
  std::optional<int64_t> optional_integer(const std::string& key) const;
  std::optional<std::string> optional_string(const std::string& key) const;
  std::optional<bool> optional_boolean(const std::string& key) const;
  // Rejects members not in `allowed` (catches typos such as "laetncy_us").
  void allow_only(std::initializer_list<const char*> allowed) const;

  // Throws moelab::Error "<file>: <pointer>: <what>".
  [[noreturn]] void fail(const std::string& what) const;

 private:
  std::shared_ptr<const nlohmann::json> root_;  // keeps node_ alive
  const nlohmann::json* node_;
  std::string file_, pointer_;
};

}  // namespace moelab::perfmodel
