// The GGUF writer: read -> write of gguf-py files is byte-identical, a file
// built from scratch equals the one gguf-py built from the same description,
// and bad input is refused with a clear moelab::Error.
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>

#include "core/error.h"
#include "gguf/gguf.h"
#include "gguf_test_util.h"
#include "quant/codec.h"

namespace moelab::gguf {
namespace {

using test::error_of;
using test::fixture;


void expect_round_trip(const std::string& name) {
  const std::vector<uint8_t> original = test::read_bytes(fixture(name));
  const File f = File::open(fixture(name));
  const Writer w = Writer::from(f);
  EXPECT_EQ(w.file_bytes(), original.size());
  EXPECT_EQ(w.to_bytes(), original) << name;
  const auto out = test::temp_path(name);
  w.write(out);
  EXPECT_EQ(test::read_bytes(out), original) << name;
  EXPECT_FALSE(std::filesystem::exists(out.string() + ".tmp"));
  std::filesystem::remove(out);
}

TEST(GgufWriter, RoundTripTinyIsByteIdentical) { expect_round_trip("tiny.gguf"); }
TEST(GgufWriter, RoundTripCompatA64IsByteIdentical) { expect_round_trip("compat_a64.gguf"); }

std::vector<uint8_t> pattern(size_t n, unsigned mul, unsigned add) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = uint8_t((i * mul + add) & 255);
  return out;
}

// What make_gguf_fixtures.py's write_compat() gives gguf-py, given to moelab's writer.
Writer compat_writer(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, const std::vector<uint8_t>& c) {
  Writer w;
  w.add("general.architecture", Value::of("moelab-compat"));
  w.add("general.alignment", Value::of(uint32_t{64}));
  w.add("compat.n", Value::of(uint32_t{7}));
  w.add("compat.eps", Value::of(0.125f));
  w.add("compat.name", Value::of("moelab"));
  w.add("compat.ids", Value::of(Array::of({1, -2, 3})));
  w.add("compat.words", Value::of(Array::of_strings({"x", "yz"})));
  w.add("compat.flag", Value::of(true));
  w.add_tensor("a", quant::codec("f32"), {5}, a);
  w.add_tensor("b", quant::codec("q8_0"), {32, 3}, b);
  w.add_tensor("c", quant::codec("bf16"), {7, 2}, c);
  return w;
}

TEST(GgufWriter, BuildsTheSameBytesAsGgufPy) {
  std::vector<uint8_t> a(5 * 4);
  for (int i = 0; i < 5; ++i) {
    const float v = float(i) * 0.5f - 1.0f;
    std::memcpy(a.data() + 4 * i, &v, 4);
  }
  const auto b = pattern(102, 37, 11);
  const auto c = pattern(28, 13, 5);
  const Writer w = compat_writer(a, b, c);
  EXPECT_EQ(w.alignment(), 64u);
  EXPECT_EQ(w.to_bytes(), test::read_bytes(fixture("compat_a64.gguf")));
}

TEST(GgufWriter, FillTensorsWriteTheSameBytes) {
  const auto q = pattern(34 * 4, 7, 3);
  Writer spans;
  spans.add("general.architecture", Value::of("fill"));
  spans.add_tensor("q", quant::codec("q8_0"), {32, 2, 2}, q);
  Writer fills;
  fills.add("general.architecture", Value::of("fill"));
  const std::vector<int64_t> ne{32, 2, 2};
  int calls = 0;
  fills.add_tensor("q", quant::codec("q8_0"), ne, [&](std::span<uint8_t> dst) {
    ++calls;
    ASSERT_EQ(dst.size(), q.size());
    std::memcpy(dst.data(), q.data(), q.size());
  });
  EXPECT_EQ(fills.to_bytes(), spans.to_bytes());
  EXPECT_EQ(calls, 1);
}

TEST(GgufWriter, MetadataOnlyFileReadsBack) {
  Writer w;
  w.add("general.architecture", Value::of("meta"));
  w.add("x.u16", Value::of(uint16_t{65535}));
  const std::vector<uint8_t> bytes = w.to_bytes();
  EXPECT_EQ(bytes.size() % kDefaultAlignment, 0u);
  const File f = File::parse(bytes, "meta.gguf");
  EXPECT_EQ(f.tensors().size(), 0u);
  EXPECT_EQ(f.data_offset(), bytes.size());
  EXPECT_EQ(f.require<uint16_t>("x.u16"), 65535);
}

TEST(GgufWriter, EveryValueTypeRoundTripsThroughTheReader) {
  Writer w;
  w.add("u8", Value::of(uint8_t{1}));
  w.add("i8", Value::of(int8_t{-2}));
  w.add("u16", Value::of(uint16_t{3}));
  w.add("i16", Value::of(int16_t{-4}));
  w.add("u32", Value::of(uint32_t{5}));
  w.add("i32", Value::of(int32_t{-6}));
  w.add("u64", Value::of(uint64_t{7}));
  w.add("i64", Value::of(int64_t{-8}));
  w.add("f32", Value::of(std::numeric_limits<float>::quiet_NaN()));  // raw bits survive
  w.add("f64", Value::of(-0.0));
  w.add("bool", Value::of(false));
  w.add("str", Value::of(std::string("with\0nul", 8)));
  w.add("empty_array", Value::of(Array(ValueType::f64)));
  w.add("nested", Value::of(Array::of_arrays({Array::of({uint8_t{1}}), Array::of_strings({"s"}), Array(ValueType::i64)})));
  const std::vector<uint8_t> bytes = w.to_bytes();
  const File f = File::parse(bytes, "values.gguf");
  ASSERT_EQ(f.metadata().size(), w.metadata().size());
  for (size_t i = 0; i < w.metadata().size(); ++i) {
    EXPECT_EQ(f.metadata()[i].key, w.metadata()[i].key);
    EXPECT_EQ(f.metadata()[i].value, w.metadata()[i].value) << w.metadata()[i].key;
  }
  EXPECT_EQ(f.require_string("str").size(), 8u);
  EXPECT_EQ(Writer::from(f).to_bytes(), bytes);
}

TEST(GgufWriter, ArrayNestingDepthLimitIsEnforcedByTheReader) {
  auto nest = [](int levels) {
    Array a = Array::of({int32_t{1}});
    for (int i = 1; i < levels; ++i) a = Array::of_arrays({std::move(a)});
    return a;
  };
  Writer ok;
  ok.add("deep", Value::of(nest(kMaxArrayDepth)));
  const std::vector<uint8_t> ok_bytes = ok.to_bytes();
  EXPECT_NO_THROW(File::parse(ok_bytes, "ok.gguf"));
  Writer deep;
  deep.add("deep", Value::of(nest(kMaxArrayDepth + 1)));
  const std::vector<uint8_t> deep_bytes = deep.to_bytes();
  const std::string msg = error_of([&] { File::parse(deep_bytes, "deep.gguf"); });
  EXPECT_NE(msg.find("deep.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nest deeper"), std::string::npos) << msg;
}

TEST(GgufWriter, SetReplacesInPlaceAndRemoveRestoresDefaultAlignment) {
  Writer w;
  w.add("a", Value::of(uint32_t{1}));
  w.add("general.alignment", Value::of(uint32_t{128}));
  w.add("b", Value::of(uint32_t{2}));
  EXPECT_EQ(w.alignment(), 128u);
  w.set("a", Value::of("now a string"));
  w.set("c", Value::of(uint32_t{3}));
  ASSERT_EQ(w.metadata().size(), 4u);
  EXPECT_EQ(w.metadata()[0].key, "a");
  EXPECT_EQ(w.metadata()[0].value.as_string(), "now a string");
  EXPECT_EQ(w.metadata()[3].key, "c");
  EXPECT_TRUE(w.remove("general.alignment"));
  EXPECT_FALSE(w.remove("general.alignment"));
  EXPECT_EQ(w.alignment(), kDefaultAlignment);
  w.set("b", Value::of(uint32_t{5}));
  EXPECT_EQ(w.metadata()[1].key, "b");
  EXPECT_EQ(w.metadata()[1].value.as<uint32_t>(), 5u);
  const auto bytes = w.to_bytes();
  EXPECT_EQ(w.file_bytes(), bytes.size());
  EXPECT_EQ(File::parse(bytes, "set.gguf").require_u32("c"), 3u);
}

TEST(GgufWriter, RefusesBadInput) {
  const std::vector<uint8_t> q8(34 * 2);
  struct Bad {
    std::function<void(Writer&)> fn;
    const char* reason;
  };
  const Bad bad[] = {
      {[](Writer& w) { w.add("k", Value::of(uint8_t{1})); w.add("k", Value::of(uint8_t{2})); }, "duplicate metadata key"},
      {[&](Writer& w) {
         w.add_tensor("t", quant::codec("q8_0"), {32, 2}, q8);
         w.add_tensor("t", quant::codec("q8_0"), {32, 2}, q8);
       }, "duplicate tensor name"},
      {[&](Writer& w) { w.add_tensor("t", quant::codec("q8_0"), {32, 3}, q8); }, "bytes given"},
      {[&](Writer& w) { w.add_tensor("t", quant::codec("q8_0"), {33, 2}, q8); }, "not a multiple"},
      {[&](Writer& w) { w.add_tensor("t", quant::codec("q8_0"), {32, 0}, q8); }, "must be positive"},
      {[&](Writer& w) { w.add_tensor("t", quant::codec("q8_0"), {32, 1, 1, 1, 2}, q8); }, "n_dims 5"},
      {[&](Writer& w) { w.add_tensor("t", quant::codec("q8_0"), {}, q8); }, "n_dims 0"},
      {[&](Writer& w) { w.add_tensor("t", quant::codec("tq3"), {128}, q8); }, "no GGUF tensor type"},
      {[](Writer& w) { w.add("general.alignment", Value::of(int32_t{32})); }, "must be u32"},
      {[](Writer& w) { w.add("general.alignment", Value::of(uint32_t{48})); }, "not a power of two"},
      {[](Writer& w) { w.set_version(1); }, "version 1"},
      {[](Writer& w) {
         const std::vector<int64_t> ne{int64_t{1} << 40, int64_t{1} << 40};
         w.add_tensor("t", quant::codec("f32"), ne, [](std::span<uint8_t>) {});
       }, "overflow"},
  };
  for (const Bad& b : bad) {
    Writer w;
    const std::string msg = error_of([&] { b.fn(w); });
    EXPECT_NE(msg.find("gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find(b.reason), std::string::npos) << msg;
  }
}

TEST(GgufWriter, FailedWriteLeavesNoFile) {
  Writer w;
  w.add_tensor("t", quant::codec("f32"), std::vector<int64_t>{4},
               [](std::span<uint8_t>) { throw Error("generator failed"); });
  const auto out = test::temp_path("failed.gguf");
  std::filesystem::remove(out);
  EXPECT_THROW(w.write(out), Error);
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out.string() + ".tmp"));

  const auto nodir = test::temp_path("no_such_dir") / "x.gguf";
  Writer ok;
  const std::string msg = error_of([&] { ok.write(nodir); });
  EXPECT_NE(msg.find(nodir.string()), std::string::npos) << msg;
}

}  // namespace
}  // namespace moelab::gguf
