// Shared helpers for the GGUF tests: fixture paths, FNV-1a hashes, and
// comparison of a parsed file with gguf-py's JSON view of it
// (tests/fixtures/make_gguf_fixtures.py writes both).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "common/errors.h"
#include "core/error.h"
#include <vector>

#include "gguf/gguf.h"

namespace moelab::gguf::test {

inline std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(MOELAB_SOURCE_DIR) / "tests" / "fixtures" / "gguf" / name;
}

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << p;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in.good()) << "cannot read " << p;
  return nlohmann::json::parse(in);
}

// A scratch path unique to the running test; removed by the caller or left in /tmp.
inline std::filesystem::path temp_path(const std::string& suffix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::filesystem::temp_directory_path() /
         ("moelab_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" + suffix);
}

struct Fnv1a64 {
  uint64_t h = 0xCBF29CE484222325ull;
  void add(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001B3ull;
  }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};

// An array's element payload as GGUF stores it (what follows its u64 count).
inline void hash_payload(const Array& a, Fnv1a64& f) {
  if (a.elem_type() == ValueType::string) {
    for (uint64_t i = 0; i < a.size(); ++i) {
      const std::string_view s = a.string_at(i);
      const uint64_t n = s.size();
      f.add(&n, 8);
      f.add(s.data(), s.size());
    }
  } else if (a.elem_type() == ValueType::array) {
    for (uint64_t i = 0; i < a.size(); ++i) {
      const Array& inner = a.array_at(i);
      const auto t = uint32_t(inner.elem_type());
      const uint64_t n = inner.size();
      f.add(&t, 4);
      f.add(&n, 8);
      hash_payload(inner, f);
    }
  } else {
    f.add(a.raw().data(), a.raw().size());
  }
}

// gguf-py's type chain: ARRAY, then the chain of the first element.
inline void type_chain(const Value& v, std::vector<std::string>& out) {
  static const char* kNames[] = {"UINT8",  "INT8",   "UINT16", "INT16", "UINT32", "INT32",  "FLOAT32",
                                 "BOOL",   "STRING", "ARRAY",  "UINT64", "INT64", "FLOAT64"};
  out.push_back(kNames[uint32_t(v.type())]);
  if (v.type() != ValueType::array) return;
  const Array* a = &v.as_array();
  while (true) {
    out.push_back(kNames[uint32_t(a->elem_type())]);
    if (a->elem_type() != ValueType::array || a->empty()) return;
    a = &a->array_at(0);
  }
}

// Scalars of a (nested) array flattened into JSON values, as gguf-py's contents() does.
inline void flatten(const Array& a, nlohmann::json& out) {
  for (uint64_t i = 0; i < a.size(); ++i) {
    switch (a.elem_type()) {
      case ValueType::string: out.push_back(std::string(a.string_at(i))); break;
      case ValueType::array: flatten(a.array_at(i), out); break;
      case ValueType::boolean: out.push_back(a.get<bool>(i)); break;
      case ValueType::f32: out.push_back(double(a.get<float>(i))); break;
      case ValueType::f64: out.push_back(a.get<double>(i)); break;
      case ValueType::i8: case ValueType::i16: case ValueType::i32: case ValueType::i64:
        out.push_back(a.get<int64_t>(i));
        break;
      default: out.push_back(a.get<uint64_t>(i)); break;
    }
  }
}

inline void expect_scalar_matches(const Value& v, const nlohmann::json& want, const std::string& key) {
  switch (v.type()) {
    case ValueType::boolean: EXPECT_EQ(v.as<bool>(), want.get<bool>()) << key; break;
    case ValueType::f32: EXPECT_EQ(v.as<float>(), float(want.get<double>())) << key; break;
    case ValueType::f64: EXPECT_EQ(v.as<double>(), want.get<double>()) << key; break;
    case ValueType::string: EXPECT_EQ(v.as_string(), want.get<std::string>()) << key; break;
    case ValueType::i8: case ValueType::i16: case ValueType::i32: case ValueType::i64:
      EXPECT_EQ(v.as<int64_t>(), want.get<int64_t>()) << key;
      break;
    default: EXPECT_EQ(v.as<uint64_t>(), want.get<uint64_t>()) << key; break;
  }
}

// Every key (order, type chain, value or length + hash) and every tensor
// (name, type, shape, sizes, offset, data hash or head/tail) as gguf-py saw them.
inline void expect_matches_gguf_py(const File& f, const nlohmann::json& want) {
  EXPECT_EQ(f.bytes().size(), want["file_bytes"].get<uint64_t>());
  EXPECT_EQ(f.version(), want["version"].get<uint32_t>());
  EXPECT_EQ(f.alignment(), want["alignment"].get<uint64_t>());
  EXPECT_EQ(f.data_offset(), want["data_offset"].get<uint64_t>());

  const auto& kvs = want["kv"];
  ASSERT_EQ(f.metadata().size(), kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i) {
    const KeyValue& kv = f.metadata()[i];
    const auto& w = kvs[i];
    const std::string key = w["key"].get<std::string>();
    ASSERT_EQ(kv.key, key) << "key #" << i;
    EXPECT_EQ(f.find(key), &kv.value);
    std::vector<std::string> chain;
    type_chain(kv.value, chain);
    EXPECT_EQ(chain, w["types"].get<std::vector<std::string>>()) << key;
    if (kv.value.type() != ValueType::array) {
      expect_scalar_matches(kv.value, w["value"], key);
      continue;
    }
    const Array& a = kv.value.as_array();
    EXPECT_EQ(a.size(), w["length"].get<uint64_t>()) << key;
    if (w.contains("fnv1a64")) {
      Fnv1a64 h;
      hash_payload(a, h);
      EXPECT_EQ(h.hex(), w["fnv1a64"].get<std::string>()) << key;
    } else {
      nlohmann::json flat = nlohmann::json::array();
      flatten(a, flat);
      ASSERT_EQ(flat.size(), w["value"].size()) << key;
      for (size_t j = 0; j < flat.size(); ++j) {
        if (flat[j].is_number_float()) EXPECT_EQ(flat[j].get<double>(), w["value"][j].get<double>()) << key << "[" << j << "]";
        else EXPECT_EQ(flat[j], w["value"][j]) << key << "[" << j << "]";
      }
    }
  }

  const auto& ts = want["tensors"];
  ASSERT_EQ(f.tensors().size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const Tensor& t = f.tensors()[i];
    const auto& w = ts[i];
    const std::string name = w["name"].get<std::string>();
    ASSERT_EQ(t.name, name) << "tensor #" << i;
    EXPECT_EQ(&f.tensor(name), &t);
    EXPECT_EQ(t.ggml_type, w["ggml_type"].get<int>()) << name;
    ASSERT_NE(t.codec, nullptr);
    EXPECT_EQ(t.codec->ggml_type, t.ggml_type) << name;
    const auto ne = w["ne"].get<std::vector<int64_t>>();
    ASSERT_EQ(size_t(t.n_dims), ne.size()) << name;
    for (int d = 0; d < kMaxDims; ++d) EXPECT_EQ(t.ne[size_t(d)], size_t(d) < ne.size() ? ne[size_t(d)] : 1) << name << " dim " << d;
    EXPECT_EQ(t.n_elements(), w["n_elements"].get<int64_t>()) << name;
    EXPECT_EQ(t.n_bytes, w["n_bytes"].get<uint64_t>()) << name;
    EXPECT_EQ(f.data_offset() + t.offset, w["data_offset"].get<uint64_t>()) << name;
    EXPECT_EQ(t.data, f.bytes().data() + w["data_offset"].get<uint64_t>()) << name;
    EXPECT_EQ(t.bytes().size(), t.n_bytes);
    if (w.contains("fnv1a64")) {
      Fnv1a64 h;
      h.add(t.data, t.n_bytes);
      EXPECT_EQ(h.hex(), w["fnv1a64"].get<std::string>()) << name;
    } else {
      auto hex = [](const uint8_t* p, size_t n) {
        std::string s;
        char buf[3];
        for (size_t k = 0; k < n; ++k) {
          std::snprintf(buf, sizeof buf, "%02x", p[k]);
          s += buf;
        }
        return s;
      };
      const size_t n = std::min<uint64_t>(32, t.n_bytes);
      EXPECT_EQ(hex(t.data, n), w["head"].get<std::string>()) << name;
      EXPECT_EQ(hex(t.data + t.n_bytes - n, n), w["tail"].get<std::string>()) << name;
    }
  }
}

using moelab::test::error_of;

}  // namespace moelab::gguf::test
