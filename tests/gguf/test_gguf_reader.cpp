// The GGUF reader against gguf-py's view of files gguf-py wrote (every value
// type, nested arrays, six tensor types, alignments 32 and 64), plus the typed
// accessors, version 2, and errors from opening.
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "gguf/gguf.h"
#include "gguf_test_util.h"
#include "quant/codec.h"

namespace moelab::gguf {
namespace {

using test::error_of;
using test::fixture;


TEST(GgufReader, TinyMatchesGgufPy) {
  const File f = File::open(fixture("tiny.gguf"));
  test::expect_matches_gguf_py(f, test::read_json(fixture("tiny.json")));
  EXPECT_EQ(f.path(), fixture("tiny.gguf").string());
  EXPECT_EQ(f.architecture(), "moelab-tiny");
}

TEST(GgufReader, CompatA64MatchesGgufPy) {
  const File f = File::open(fixture("compat_a64.gguf"));
  test::expect_matches_gguf_py(f, test::read_json(fixture("compat_a64.json")));
  EXPECT_EQ(f.alignment(), 64u);
  for (const Tensor& t : f.tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
}

TEST(GgufReader, ParseFromMemoryEqualsOpen) {
  const std::vector<uint8_t> bytes = test::read_bytes(fixture("tiny.gguf"));
  const File mem = File::parse(bytes, "tiny-in-memory");
  const File disk = File::open(fixture("tiny.gguf"));
  EXPECT_EQ(mem.path(), "tiny-in-memory");
  ASSERT_EQ(mem.metadata().size(), disk.metadata().size());
  for (size_t i = 0; i < mem.metadata().size(); ++i) {
    EXPECT_EQ(mem.metadata()[i].key, disk.metadata()[i].key);
    EXPECT_EQ(mem.metadata()[i].value, disk.metadata()[i].value) << mem.metadata()[i].key;
    EXPECT_EQ(mem.metadata()[i].file_offset, disk.metadata()[i].file_offset);
  }
  ASSERT_EQ(mem.tensors().size(), disk.tensors().size());
  for (size_t i = 0; i < mem.tensors().size(); ++i) {
    EXPECT_EQ(mem.tensors()[i].data, bytes.data() + (disk.tensors()[i].data - disk.bytes().data()));
    EXPECT_EQ(0, std::memcmp(mem.tensors()[i].data, disk.tensors()[i].data, disk.tensors()[i].n_bytes));
  }
}

TEST(GgufReader, TensorShapesAndRows) {
  const File f = File::open(fixture("tiny.gguf"));
  const Tensor& q4k = f.tensor("t.q4_k");
  EXPECT_EQ(q4k.codec, &quant::codec("q4_k"));
  EXPECT_EQ(q4k.n_dims, 4);
  EXPECT_EQ(q4k.n_rows(), 2);
  EXPECT_EQ(q4k.row_bytes(), 144u);
  const Tensor& f16 = f.tensor("t.f16");
  EXPECT_EQ(f16.ne[0], 16);
  EXPECT_EQ(f16.ne[1], 3);
  EXPECT_EQ(f16.row_bytes(), 32u);
  EXPECT_EQ(f.find_tensor("nope"), nullptr);
  const std::string msg = error_of([&] { f.tensor("nope"); });
  EXPECT_NE(msg.find("tiny.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"nope\""), std::string::npos) << msg;
  // Tensor infos sit where the reader says they start: the name follows the length.
  for (const Tensor& t : f.tensors()) {
    uint64_t len = 0;
    std::memcpy(&len, f.bytes().data() + t.info_offset, 8);
    ASSERT_EQ(len, t.name.size());
    EXPECT_EQ(0, std::memcmp(f.bytes().data() + t.info_offset + 8, t.name.data(), len));
  }
  EXPECT_EQ(f.tensor_info_offset(), f.tensors()[0].info_offset);
}

TEST(GgufReader, F32TensorDecodesToGgufPyValues) {
  // The f32 view is the raw little-endian floats: spot-check through the codec's decode.
  const File f = File::open(fixture("compat_a64.gguf"));
  const Tensor& a = f.tensor("a");
  std::vector<float> y(size_t(a.n_elements()));
  a.codec->decode_by_isa[0](a.data, y.data(), a.n_elements());
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], float(i) * 0.5f - 1.0f) << i;
}

TEST(GgufReader, TypedAccessorsConvertLosslesslyOrFail) {
  const File f = File::open(fixture("tiny.gguf"));
  EXPECT_EQ(f.require_u32("t.u32"), 4000000000u);
  EXPECT_EQ(f.get_u32("t.u8", 0), 200u);  // widening is fine
  EXPECT_EQ(f.require_i32("t.i8"), -100);
  EXPECT_EQ(f.require_u64("t.u64"), (uint64_t{1} << 63) + 5);
  EXPECT_EQ(f.require_i64("t.i64"), -(int64_t{1} << 62) - 7);
  EXPECT_EQ(f.require_f32("t.f32"), 3.25f);
  EXPECT_EQ(f.require_f64("t.f32"), 3.25);
  EXPECT_EQ(f.require_f64("t.f64"), -1.5e300);
  EXPECT_TRUE(f.require_bool("t.bool"));
  EXPECT_FALSE(f.get_bool("t.bool_false", true));
  EXPECT_EQ(f.require_string("t.string"), "h\xc3\xa9llo, w\xc3\xb6rld");
  EXPECT_EQ(f.require_string("t.string_empty"), "");
  EXPECT_EQ(f.get_u32("absent", 17), 17u);
  EXPECT_EQ(f.get_f32("absent", 0.5f), 0.5f);
  EXPECT_EQ(f.get_string("absent", "dflt"), "dflt");
  EXPECT_EQ(f.get_array("absent"), nullptr);
  EXPECT_FALSE(f.has("absent"));
  EXPECT_TRUE(f.has("t.u8"));
  EXPECT_EQ(f.get<int16_t>("t.i16", 0), -30000);

  struct Bad {
    std::function<void()> fn;
    const char* key;
    const char* reason;
  };
  const Bad bad[] = {
      {[&] { f.require_u32("no.such.key"); }, "no.such.key", "missing"},
      {[&] { f.require_string("no.such.key"); }, "no.such.key", "missing"},
      {[&] { f.require_array("no.such.key"); }, "no.such.key", "missing"},
      {[&] { f.get_u32("t.i8", 0); }, "t.i8", "does not fit"},     // negative
      {[&] { f.require_i32("t.u32"); }, "t.u32", "does not fit"},  // 4e9
      {[&] { f.require<uint8_t>("t.u16"); }, "t.u16", "does not fit"},
      {[&] { f.require_i64("t.u64"); }, "t.u64", "does not fit"},
      {[&] { f.require_f32("t.u32"); }, "t.u32", "expected a float"},
      {[&] { f.require_u32("t.f32"); }, "t.f32", "expected an integer"},
      {[&] { f.require_bool("t.u8"); }, "t.u8", "expected bool"},
      {[&] { f.require_u32("t.string"); }, "t.string", "has type string"},
      {[&] { f.require_string("t.u8"); }, "t.u8", "expected string"},
      {[&] { f.get_string("t.u8", ""); }, "t.u8", "expected string"},
      {[&] { f.require_array("t.u8"); }, "t.u8", "expected array"},
      {[&] { f.require_array_of<uint8_t>("t.arr.i8"); }, "t.arr.i8", "does not fit"},
      {[&] { f.require_array_of<std::string>("t.arr.u8"); }, "t.arr.u8", "read as string"},
      {[&] { f.require_array_of<int32_t>("t.arr.string"); }, "t.arr.string", "read as i32"},
  };
  for (const Bad& b : bad) {
    const std::string msg = error_of(b.fn);
    EXPECT_NE(msg.find("tiny.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::string("\"") + b.key + "\""), std::string::npos) << msg;
    EXPECT_NE(msg.find(b.reason), std::string::npos) << msg;
  }
}

TEST(GgufReader, ArraysTypedAndNested) {
  const File f = File::open(fixture("tiny.gguf"));
  EXPECT_EQ(f.require_array_of<int32_t>("t.arr.i32"), (std::vector<int32_t>{-5, 6, -7}));
  EXPECT_EQ(f.require_array_of<int64_t>("t.arr.i32"), (std::vector<int64_t>{-5, 6, -7}));
  EXPECT_EQ(f.require_array_of<uint64_t>("t.arr.u64"), (std::vector<uint64_t>{~uint64_t{0}, 3}));
  EXPECT_EQ(f.require_array_of<double>("t.arr.f32"), (std::vector<double>{0.5, -2.0, double(1e-3f)}));
  EXPECT_EQ(f.require_array_of<bool>("t.arr.bool"), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(f.require_array_of<std::string>("t.arr.string"), (std::vector<std::string>{"a", "", "ccc"}));
  const Array& nested = f.require_array("t.arr.nested");
  ASSERT_EQ(nested.elem_type(), ValueType::array);
  ASSERT_EQ(nested.size(), 3u);
  EXPECT_EQ(nested.array_at(0).to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(nested.array_at(1).to_vector<int32_t>(), (std::vector<int32_t>{4}));
  EXPECT_EQ(nested.array_at(2).to_vector<int32_t>(), (std::vector<int32_t>{5, 6}));
  const Array& nested2 = f.require_array("t.arr.nested2");
  EXPECT_EQ(nested2.array_at(0).array_at(1).get<int32_t>(1), 3);
  EXPECT_EQ(nested2.array_at(1).array_at(0).get<int32_t>(0), 4);
  const Array& ns = f.require_array("t.arr.nested_strings");
  EXPECT_EQ(ns.array_at(0).string_at(1), "y");
  EXPECT_THROW(nested.get<int32_t>(0), Error);        // elements are arrays
  EXPECT_THROW(nested.array_at(3), Error);            // out of range
  EXPECT_THROW(ns.array_at(0).string_at(2), Error);   // out of range
}

TEST(GgufReader, ValuesPrintReadably) {
  EXPECT_EQ(Value::of(3.25f).to_string(), "3.25");
  EXPECT_EQ(Value::of(int8_t{-3}).to_string(), "-3");
  EXPECT_EQ(Value::of(true).to_string(), "true");
  EXPECT_EQ(Value::of("a\x01\"b").to_string(), "\"a\\x01\\\"b\"");
  EXPECT_EQ(Value::of(Array::of({1u, 2u})).to_string(), "[u32 x 2: 1, 2]");
  EXPECT_EQ(printable(std::string(100, 'x'), 4), "\"xxxx...\"");
}

TEST(GgufReader, ReadsVersion2) {
  std::vector<uint8_t> bytes = test::read_bytes(fixture("tiny.gguf"));
  const uint32_t v2 = 2;
  std::memcpy(bytes.data() + 4, &v2, 4);
  const File f = File::parse(bytes, "tiny-v2");
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.tensors().size(), 6u);
  EXPECT_EQ(Writer::from(f).to_bytes(), bytes);  // written back as v2
}

TEST(GgufReader, MovingKeepsTensorViewsValid) {
  File a = File::open(fixture("tiny.gguf"));
  const uint8_t* p = a.tensors()[2].data;
  const Value* v = a.find("t.u32");
  File b = std::move(a);
  EXPECT_EQ(b.tensors()[2].data, p);
  EXPECT_EQ(b.find("t.u32"), v);
  EXPECT_EQ(b.require_u32("t.u32"), 4000000000u);
}

TEST(GgufReader, OpenErrorsNameThePath) {
  const auto missing = test::temp_path("missing.gguf");
  std::filesystem::remove(missing);
  std::string msg = error_of([&] { File::open(missing); });
  EXPECT_NE(msg.find(missing.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;

  const auto dir = test::temp_path("dir.gguf");
  std::filesystem::create_directories(dir);
  msg = error_of([&] { File::open(dir); });
  EXPECT_NE(msg.find(dir.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
  std::filesystem::remove(dir);

  const auto empty = test::temp_path("empty.gguf");
  { std::ofstream(empty, std::ios::binary).flush(); }
  msg = error_of([&] { File::open(empty); });
  EXPECT_NE(msg.find(empty.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  std::filesystem::remove(empty);
}

}  // namespace
}  // namespace moelab::gguf
