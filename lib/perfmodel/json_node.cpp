#include "perfmodel/json_node.h"

#include <algorithm>
#include <fstream>

#include "core/error.h"

namespace moelab::perfmodel {

namespace {
// RFC 6901 escaping of one reference token.
std::string escape_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

const char* type_name(const nlohmann::json& j) {
  if (j.is_null()) return "null";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "an array";
  return "an object";
}
}  // namespace

JsonNode JsonNode::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(path.string() + ": cannot open file");
  auto root = std::make_shared<nlohmann::json>();
  try {
    *root = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + ": invalid JSON: " + e.what());
  }
  return JsonNode(root, root.get(), path.string(), "");
}

JsonNode::JsonNode(std::shared_ptr<const nlohmann::json> root, const nlohmann::json* node, std::string file,
                   std::string pointer)
    : root_(std::move(root)), node_(node), file_(std::move(file)), pointer_(std::move(pointer)) {}

void JsonNode::fail(const std::string& what) const {
  throw Error(file_ + ": " + (pointer_.empty() ? std::string("/") : pointer_) + ": " + what);
}

void JsonNode::expect_object() const {
  if (!node_->is_object()) fail(std::string("expected an object, found ") + type_name(*node_));
}
void JsonNode::expect_array() const {
  if (!node_->is_array()) fail(std::string("expected an array, found ") + type_name(*node_));
}

bool JsonNode::has(const std::string& key) const { return node_->is_object() && node_->contains(key); }

JsonNode JsonNode::at(const std::string& key) const {
  expect_object();
  const std::string child = pointer_ + "/" + escape_token(key);
  if (!node_->contains(key)) throw Error(file_ + ": " + child + ": missing field");
  return JsonNode(root_, &node_->at(key), file_, child);
}

JsonNode JsonNode::at(size_t index) const {
  expect_array();
  const std::string child = pointer_ + "/" + std::to_string(index);
  if (index >= node_->size()) throw Error(file_ + ": " + child + ": index out of range");
  return JsonNode(root_, &node_->at(index), file_, child);
}

size_t JsonNode::size() const {
  expect_array();
  return node_->size();
}

std::vector<std::string> JsonNode::keys() const {
  expect_object();
  std::vector<std::string> out;
  for (const auto& item : node_->items()) out.push_back(item.key());
  return out;
}

double JsonNode::number() const {
  if (!node_->is_number()) fail(std::string("expected a number, found ") + type_name(*node_));
  return node_->get<double>();
}
double JsonNode::positive_number() const {
  const double v = number();
  if (!(v > 0)) fail("expected a positive number, found " + node_->dump());
  return v;
}
double JsonNode::nonnegative_number() const {
  const double v = number();
  if (!(v >= 0)) fail("expected a non-negative number, found " + node_->dump());
  return v;
}
int64_t JsonNode::integer() const {
  if (!node_->is_number_integer()) fail(std::string("expected an integer, found ") + type_name(*node_));
  return node_->get<int64_t>();
}
std::string JsonNode::string() const {
  if (!node_->is_string()) fail(std::string("expected a string, found ") + type_name(*node_));
  return node_->get<std::string>();
}
bool JsonNode::boolean() const {
  if (!node_->is_boolean()) fail(std::string("expected a boolean, found ") + type_name(*node_));
  return node_->get<bool>();
}

std::optional<double> JsonNode::optional_number(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return at(key).number();
}
std::optional<double> JsonNode::optional_positive_number(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return at(key).positive_number();
}
std::optional<int64_t> JsonNode::optional_integer(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return at(key).integer();
}
std::optional<std::string> JsonNode::optional_string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return at(key).string();
}
std::optional<bool> JsonNode::optional_boolean(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return at(key).boolean();
}

void JsonNode::allow_only(std::initializer_list<const char*> allowed) const {
  expect_object();
  for (const auto& item : node_->items()) {
    const bool ok = std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return item.key() == a; });
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw Error(file_ + ": " + pointer_ + "/" + escape_token(item.key()) + ": unknown field (allowed: " + list + ")");
    }
  }
}

}  // namespace moelab::perfmodel
