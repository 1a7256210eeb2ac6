// Hostile GGUF files: valid fixtures written by gguf-py, then truncated or
// mutated field by field. Every one must be refused with a moelab::Error whose
// message names the file and the reason, and nothing may read outside the
// bytes (each case parses an exact-size copy, so ASan sees any over-read).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/error.h"
#include "gguf/gguf.h"
#include "gguf_test_util.h"

namespace moelab::gguf {
namespace {

using test::fixture;

constexpr const char* kName = "hostile.gguf";

class GgufHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    tiny_ = test::read_bytes(fixture("tiny.gguf"));
    compat_ = test::read_bytes(fixture("compat_a64.gguf"));
    ASSERT_FALSE(tiny_.empty());
    ASSERT_FALSE(compat_.empty());
  }

  // Offsets of fields, taken from a parse of the valid file.
  static uint64_t kv_offset(const std::vector<uint8_t>& bytes, std::string_view key) {
    const File f = File::parse(bytes, "valid");
    for (const KeyValue& kv : f.metadata())
      if (kv.key == key) return kv.file_offset;
    ADD_FAILURE() << "no key " << key;
    return 0;
  }
  // Offset of a key's value type field; its value follows 4 bytes later.
  static uint64_t kv_type_offset(const std::vector<uint8_t>& bytes, std::string_view key) {
    return kv_offset(bytes, key) + 8 + key.size();
  }
  static const Tensor& tensor_of(const File& f, std::string_view name) { return f.tensor(name); }
  struct TensorFields {
    uint64_t name_len, n_dims, dims, type, offset;
  };
  static TensorFields tensor_fields(const std::vector<uint8_t>& bytes, std::string_view name) {
    const File f = File::parse(bytes, "valid");
    const Tensor& t = f.tensor(name);
    const uint64_t n_dims = t.info_offset + 8 + t.name.size();
    return {t.info_offset, n_dims, n_dims + 4, n_dims + 4 + 8 * uint64_t(t.n_dims),
            n_dims + 4 + 8 * uint64_t(t.n_dims) + 4};
  }

  template <class T>
  static std::vector<uint8_t> patched(std::vector<uint8_t> bytes, uint64_t at, T v) {
    std::memcpy(bytes.data() + at, &v, sizeof(T));
    return bytes;
  }

  // Parses an exact-size copy; must throw moelab::Error naming the file and `reason`.
  static void expect_rejected(const std::vector<uint8_t>& bytes, const std::string& reason, const std::string& what) {
    const std::vector<uint8_t> exact(bytes);  // ASan: reading one byte past it is caught
    try {
      File::parse(exact, kName);
      ADD_FAILURE() << what << ": accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(kName), std::string::npos) << what << ": " << msg;
      EXPECT_NE(msg.find(reason), std::string::npos) << what << ": expected \"" << reason << "\" in: " << msg;
    }
  }

  std::vector<uint8_t> tiny_;
  std::vector<uint8_t> compat_;
};

TEST_F(GgufHostile, TruncationAtEveryByte) {
  // Every prefix that cuts into the header, metadata, tensor infos, padding or
  // tensor data is refused. Bytes after the last tensor's data are only
  // alignment padding, which nothing reads, so those prefixes stay valid.
  for (const auto* bytes : {&tiny_, &compat_}) {
    const File full = File::parse(*bytes, "valid");
    uint64_t data_end = full.data_offset();
    for (const Tensor& t : full.tensors()) data_end = std::max(data_end, full.data_offset() + t.offset + t.n_bytes);
    ASSERT_LT(data_end, bytes->size());  // the fixtures do end in padding
    for (size_t n = 0; n < bytes->size(); ++n) {
      const std::vector<uint8_t> cut(bytes->begin(), bytes->begin() + std::ptrdiff_t(n));
      if (n < data_end) {
        try {
          File::parse(cut, kName);
          ADD_FAILURE() << "prefix of " << n << " bytes accepted";
        } catch (const Error& e) {
          ASSERT_NE(std::string(e.what()).find(kName), std::string::npos) << e.what();
        }
      } else {
        EXPECT_NO_THROW(File::parse(cut, kName)) << "prefix of " << n << " bytes";
      }
    }
  }
}

TEST_F(GgufHostile, TruncationAtSectionBoundariesNamesTheSection) {
  const File full = File::parse(tiny_, "valid");
  const uint64_t first_kv = full.metadata()[0].file_offset;
  const uint64_t last_kv = full.metadata().back().file_offset;
  const uint64_t last_info = full.tensors().back().info_offset;
  struct Cut {
    uint64_t at;
    const char* reason;
  };
  const Cut cuts[] = {
      {0, "header: truncated: magic"},
      {4, "header: truncated: version"},
      {8, "header: truncated: n_tensors"},
      {16, "header: truncated: n_kv"},
      {first_kv, "cannot fit"},  // the counts no longer fit in what is left
      {last_kv, "metadata #"},
      {full.tensor_info_offset(), "tensor info #0"},
      {last_info + 4, "tensor info #5"},
      {full.data_offset() - 1, "data section: padding"},
      {full.data_offset(), "runs past the end of the file"},
      {full.data_offset() + full.tensors().back().offset, "runs past the end of the file"},
  };
  for (const Cut& c : cuts)
    expect_rejected(std::vector<uint8_t>(tiny_.begin(), tiny_.begin() + std::ptrdiff_t(c.at)), c.reason,
                    "cut at " + std::to_string(c.at));
}

TEST_F(GgufHostile, ErrorsFromOpenNameThePath) {
  const auto path = test::temp_path("cut.gguf");
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(tiny_.data()), std::streamsize(tiny_.size() / 2));
  }
  try {
    File::open(path);
    ADD_FAILURE() << "half a file accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path.string() + ": ", 0), 0u) << e.what();
  }
  std::filesystem::remove(path);
}

TEST_F(GgufHostile, BadMagicAndVersions) {
  expect_rejected(patched(tiny_, 0, uint8_t{'X'}), "bad magic \"XGUF\"", "magic");
  expect_rejected(patched(tiny_, 0, uint32_t{0}), "bad magic", "zero magic");
  for (uint32_t v : {0u, 1u, 4u, 99u, 0xFFFFFFFFu})
    expect_rejected(patched(tiny_, 4, v), "unsupported version " + std::to_string(v), "version " + std::to_string(v));
  expect_rejected(patched(tiny_, 4, uint32_t{0x03000000}), "big-endian", "byte-swapped version");
}

TEST_F(GgufHostile, AbsurdCounts) {
  for (uint64_t n : {uint64_t{1} << 40, uint64_t{1} << 63, ~uint64_t{0}}) {
    expect_rejected(patched(tiny_, 8, n), "n_tensors = " + std::to_string(n) + " cannot fit", "n_tensors");
    expect_rejected(patched(tiny_, 16, n), "n_kv = " + std::to_string(n) + " cannot fit", "n_kv");
  }
  // Plausible but wrong counts make the parser read past a section: still an error.
  const File f = File::parse(tiny_, "valid");
  expect_rejected(patched(tiny_, 8, uint64_t{f.tensors().size() + 1}), "(#6, info at offset", "n_tensors + 1");
  expect_rejected(patched(tiny_, 16, uint64_t{f.metadata().size() + 1}), "metadata", "n_kv + 1");
}

TEST_F(GgufHostile, StringLengthsPastTheEnd) {
  const File f = File::parse(tiny_, "valid");
  const uint64_t big = uint64_t{1} << 63;
  expect_rejected(patched(tiny_, f.metadata()[1].file_offset, big), "key length 9223372036854775808 runs past the end",
                  "key length");
  expect_rejected(patched(tiny_, kv_type_offset(tiny_, "t.string") + 4, big), "string value length", "string value");
  expect_rejected(patched(tiny_, kv_type_offset(tiny_, "t.string") + 4, ~uint64_t{0}), "runs past the end",
                  "string value 2^64-1");
  // Inside an array: the message gives the element index.
  const uint64_t arr = kv_type_offset(tiny_, "t.arr.string") + 4;
  expect_rejected(patched(tiny_, arr + 12, big), "\"t.arr.string\" (#26 at offset", "array string #0");
  expect_rejected(patched(tiny_, arr + 12, big), "element [0]: string length", "array string #0 index");
  expect_rejected(patched(tiny_, tensor_fields(tiny_, "t.q8_0").name_len, big), "tensor name length", "tensor name");
}

TEST_F(GgufHostile, ArrayCountsAndTypes) {
  const uint64_t arr = kv_type_offset(tiny_, "t.arr.long_i32") + 4;  // u32 element type, u64 count
  expect_rejected(patched(tiny_, arr + 4, uint64_t{1} << 62), "array length 4611686018427387904 cannot fit",
                  "array count");
  expect_rejected(patched(tiny_, arr, uint32_t{13}), "unknown array element type 13", "array element type");
  expect_rejected(patched(tiny_, arr, uint32_t{0xFFFFFFFF}), "unknown array element type", "array element type max");
  // Nested: inner array count.
  const uint64_t nested = kv_type_offset(tiny_, "t.arr.nested") + 4;
  expect_rejected(patched(tiny_, nested + 12 + 4, ~uint64_t{0}), "element [0]: array length", "inner count");
  expect_rejected(patched(tiny_, kv_type_offset(tiny_, "t.bool") + 4, uint8_t{2}), "bool value 2", "bool");
  const uint64_t bools = kv_type_offset(tiny_, "t.arr.bool") + 4 + 12;
  expect_rejected(patched(tiny_, bools + 2, uint8_t{0xFF}), "element [2]: bool value 255", "bool array");
}

TEST_F(GgufHostile, UnknownValueTypes) {
  for (uint32_t t : {13u, 100u, 0x80000000u})
    expect_rejected(patched(tiny_, kv_type_offset(tiny_, "t.u8"), t), "unknown value type " + std::to_string(t),
                    "value type " + std::to_string(t));
}

TEST_F(GgufHostile, DuplicateKeysAndTensorNames) {
  // Rename "t.u16" to "t.i16" (same length), and tensor "t.f16" to "t.f32".
  std::vector<uint8_t> dup_key = tiny_;
  dup_key[kv_offset(tiny_, "t.u16") + 8 + 2] = 'i';
  expect_rejected(dup_key, "duplicate key", "duplicate key");
  std::vector<uint8_t> dup_tensor = tiny_;
  const uint64_t name = tensor_fields(tiny_, "t.f16").name_len + 8;
  std::memcpy(dup_tensor.data() + name, "t.f32", 5);
  expect_rejected(dup_tensor, "duplicate tensor name", "duplicate tensor");
}

TEST_F(GgufHostile, BadDims) {
  const auto q4k = tensor_fields(tiny_, "t.q4_k");  // 4 dims: 256, 1, 1, 2
  expect_rejected(patched(tiny_, q4k.n_dims, uint32_t{5}), "n_dims 5 is outside [1, 4]", "ndims 5");
  expect_rejected(patched(tiny_, q4k.n_dims, uint32_t{0}), "n_dims 0", "ndims 0");
  expect_rejected(patched(tiny_, q4k.n_dims, uint32_t{0xFFFFFFFF}), "n_dims 4294967295", "ndims max");
  expect_rejected(patched(tiny_, q4k.dims + 8, uint64_t{0}), "dim 1 is 0", "dim 0");
  expect_rejected(patched(tiny_, q4k.dims + 8, uint64_t{1} << 63), "does not fit in int64", "dim 2^63");
  auto product = patched(tiny_, q4k.dims + 8, uint64_t{1} << 40);
  product = patched(product, q4k.dims + 16, uint64_t{1} << 40);
  expect_rejected(product, "overflows", "dim product");
  // Fits int64 elements but not bytes: 2^62 q4_k values -> 2^62 / 256 * 144 bytes > file, or overflow.
  auto big = patched(tiny_, q4k.dims + 8, uint64_t{1} << 52);
  expect_rejected(big, "\"t.q4_k\"", "huge tensor");
  expect_rejected(patched(tiny_, q4k.dims, uint64_t{255}), "not a multiple of the q4_k block", "ne0 % 256");
}

TEST_F(GgufHostile, UnknownTensorTypes) {
  const auto f = tensor_fields(tiny_, "t.q8_0");
  expect_rejected(patched(tiny_, f.type, uint32_t{16}), "ggml type 16 (IQ2_XXS) has no moelab codec", "IQ2_XXS");
  expect_rejected(patched(tiny_, f.type, uint32_t{4}), "ggml type 4 (Q4_2 (removed))", "Q4_2");
  expect_rejected(patched(tiny_, f.type, uint32_t{0xFFFFFFFF}), "ggml type 4294967295 has no moelab codec", "max");
}

TEST_F(GgufHostile, TensorOffsets) {
  const File valid = File::parse(tiny_, "valid");
  const auto last = tensor_fields(tiny_, "t.bf16");
  expect_rejected(patched(tiny_, last.offset, uint64_t{1} << 40), "runs past the end of the file", "far offset");
  expect_rejected(patched(tiny_, last.offset, ~uint64_t{31}), "runs past the end of the file", "offset overflow");
  const uint64_t bf16 = valid.tensor("t.bf16").offset;
  expect_rejected(patched(tiny_, last.offset, bf16 + 1), "not a multiple of the alignment 32", "misaligned");
  // Past the end by one alignment step: the data no longer fits.
  expect_rejected(patched(tiny_, last.offset, bf16 + 32), "runs past the end of the file", "one step too far");
  // Overlap: t.f16 moved onto t.f32.
  const auto f16 = tensor_fields(tiny_, "t.f16");
  expect_rejected(patched(tiny_, f16.offset, valid.tensor("t.f32").offset), "overlaps tensor \"t.f", "overlap");
  // Two tensors at the same place but listed in the other order.
  const auto q41 = tensor_fields(tiny_, "t.q4_1");
  expect_rejected(patched(tiny_, q41.offset, valid.tensor("t.q4_k").offset), "overlaps", "overlap reversed");
}

TEST_F(GgufHostile, AlignmentKey) {
  const uint64_t type = kv_type_offset(compat_, "general.alignment");
  expect_rejected(patched(compat_, type + 4, uint32_t{48}), "alignment 48 is not a power of two", "align 48");
  expect_rejected(patched(compat_, type + 4, uint32_t{0}), "alignment 0 is not a power of two", "align 0");
  expect_rejected(patched(compat_, type, uint32_t{5}), "has type i32, GGUF requires u32", "align i32");
  // A huge power of two puts the data section past the end.
  expect_rejected(patched(compat_, type + 4, uint32_t{1} << 31), "data section: padding", "align 2^31");
}

TEST_F(GgufHostile, RandomByteFlipsNeverCrash) {
  // A cheap always-on fuzz: 3000 files with 1-8 random bytes changed. Each
  // parses or throws moelab::Error; anything else fails the test.
  std::mt19937_64 rng(12345);
  int accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> b = (iter % 2 == 0) ? tiny_ : compat_;
    const int flips = 1 + int(rng() % 8);
    for (int k = 0; k < flips; ++k) {
      // Bias towards the header and infos, where the structure is.
      const size_t limit = rng() % 4 == 0 ? b.size() : std::min<size_t>(b.size(), 64 + rng() % 2600);
      b[rng() % limit] = uint8_t(rng());
    }
    try {
      const File f = File::parse(b, kName);
      ++accepted;
      // Whatever parses must also write back and re-read to the same content.
      const std::vector<uint8_t> again = Writer::from(f).to_bytes();
      const File g = File::parse(again, "again");
      ASSERT_EQ(g.metadata().size(), f.metadata().size());
      ASSERT_EQ(g.tensors().size(), f.tensors().size());
      for (size_t i = 0; i < f.tensors().size(); ++i)
        ASSERT_EQ(0, std::memcmp(g.tensors()[i].data, f.tensors()[i].data, f.tensors()[i].n_bytes));
    } catch (const Error& e) {
      ASSERT_NE(std::string(e.what()).find(kName), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(accepted, 0);  // flips inside tensor data keep the file valid
}

}  // namespace
}  // namespace moelab::gguf
