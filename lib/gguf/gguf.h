// GGUF: llama.cpp's model file format. moelab reads it (mmap, zero-copy tensor
// views) and writes it byte-for-byte the way gguf-py and llama.cpp do.
//
// Layout, all little-endian:
//   header    "GGUF" | u32 version | u64 n_tensors | u64 n_kv               (24 bytes)
//   metadata  n_kv x ( string key | u32 value type | value )
//   tensors   n_tensors x ( string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset )
//   padding   zeros up to a multiple of the alignment (`general.alignment`, default 32)
//   data      tensor bytes; `offset` is relative to the data start and a multiple of
//             the alignment; writers pad every tensor (the last one too) to the alignment
//   string = u64 length | bytes (no terminator)
//   array  = u32 element type | u64 count | elements (arrays may nest)
//
// Decisions (reasons in reader.cpp):
//   - versions 3 and 2 are read (same layout once little-endian; v1 had 32-bit
//     counts); big-endian files and every other version are errors. The writer
//     writes 3 unless told otherwise (a v2 file round-trips as v2).
//   - a tensor type must be a row of the codec table (quant/codec.h): sizes come
//     from there, and a type moelab cannot compute with is an error naming the
//     tensor and the type, not an opaque blob.
//   - any aligned, non-overlapping tensor layout is read; the writer emits the
//     canonical one (tensors in order, each padded), which is what llama.cpp
//     requires, so read -> write of a llama.cpp/gguf-py file is byte-identical.
// Every failure is a moelab::Error: "<path>: <section/key/tensor>: <reason>".
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "quant/codec.h"

namespace moelab::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint32_t kVersion = 3;
// llama.cpp's GGUF_DEFAULT_ALIGNMENT: 32 bytes keeps every tensor AVX-load aligned
// relative to a page-aligned mapping.
inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;  // ggml's GGML_MAX_DIMS
inline constexpr std::string_view kAlignmentKey = "general.alignment";
inline constexpr std::string_view kArchitectureKey = "general.architecture";
inline constexpr uint64_t kHeaderBytes = 24;
// Arrays of arrays nest at most this deep: deeper files are hostile (the
// recursion would otherwise be bounded only by the file size).
inline constexpr int kMaxArrayDepth = 16;

// GGUF metadata value types; the numbers are the on-disk ids.
enum class ValueType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};
inline constexpr uint32_t kValueTypeCount = 13;
std::string_view value_type_name(ValueType t);  // "u32", "string", ...; "?" when out of range
bool is_scalar(ValueType t);                    // everything but string and array
size_t scalar_bytes(ValueType t);               // size of one scalar; 0 for string/array

// `s` in double quotes with non-printable bytes escaped (\xNN) and cut after
// `max_chars`: names and strings from a file may be megabytes of binary.
std::string printable(std::string_view s, size_t max_chars = 64);

// C++ type <-> GGUF scalar type. `bool` is GGUF's boolean (one byte, 0 or 1).
template <class T>
inline constexpr bool kIsScalar =
    std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t> || std::is_same_v<T, uint16_t> ||
    std::is_same_v<T, int16_t> || std::is_same_v<T, uint32_t> || std::is_same_v<T, int32_t> ||
    std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t> || std::is_same_v<T, float> ||
    std::is_same_v<T, double> || std::is_same_v<T, bool>;
template <class T>
constexpr ValueType value_type_of() {
  static_assert(kIsScalar<T>, "not a GGUF scalar type");
  if constexpr (std::is_same_v<T, uint8_t>) return ValueType::u8;
  else if constexpr (std::is_same_v<T, int8_t>) return ValueType::i8;
  else if constexpr (std::is_same_v<T, uint16_t>) return ValueType::u16;
  else if constexpr (std::is_same_v<T, int16_t>) return ValueType::i16;
  else if constexpr (std::is_same_v<T, uint32_t>) return ValueType::u32;
  else if constexpr (std::is_same_v<T, int32_t>) return ValueType::i32;
  else if constexpr (std::is_same_v<T, uint64_t>) return ValueType::u64;
  else if constexpr (std::is_same_v<T, int64_t>) return ValueType::i64;
  else if constexpr (std::is_same_v<T, float>) return ValueType::f32;
  else if constexpr (std::is_same_v<T, double>) return ValueType::f64;
  else return ValueType::boolean;
}

// Calls X(T) for every C++ type that is a GGUF scalar (explicit template
// instantiations in reader.cpp and value.cpp use this one list).
#define MOELAB_GGUF_FOR_EACH_SCALAR(X) \
  X(uint8_t) X(int8_t) X(uint16_t) X(int16_t) X(uint32_t) X(int32_t) X(uint64_t) X(int64_t) X(float) X(double) X(bool)

// Reading a scalar as C++ type T converts only where nothing is lost: any
// integer type to any integer type when the value fits, f32 <-> f64 (f64 -> f32
// rounds), bool only as bool. Anything else fails; `why` says what went wrong.
template <class T>
bool convert_scalar(ValueType t, uint64_t bits, T* out, std::string* why);

// A metadata array: one element type, `size()` elements. Scalars are kept
// packed as on disk and strings in one buffer, so they cost what they cost in
// the file (a 50k-token vocabulary is two allocations, not 50k); nested arrays
// are Array objects (~10x their 12 file bytes at worst, for empty ones).
class Array {
 public:
  explicit Array(ValueType elem_type = ValueType::u8);
  template <class T>
  static Array of(std::span<const T> values) {
    Array a(value_type_of<T>());
    for (const T& v : values) a.push_back(v);
    return a;
  }
  template <class T>
  static Array of(std::initializer_list<T> values) {
    return of(std::span<const T>(values.begin(), values.size()));
  }
  static Array of_strings(std::span<const std::string> values);
  static Array of_strings(std::initializer_list<std::string_view> values);
  static Array of_arrays(std::vector<Array> values);

  ValueType elem_type() const { return elem_type_; }
  uint64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Element i as T (converted as convert_scalar says); throws moelab::Error.
  template <class T>
  T get(uint64_t i) const;
  std::string_view string_at(uint64_t i) const;  // elem_type string
  const Array& array_at(uint64_t i) const;       // elem_type array
  // Every element as T; T is a scalar type or std::string.
  template <class T>
  std::vector<T> to_vector() const;
  // Packed little-endian scalar elements ([size() * scalar_bytes(elem_type())]).
  std::span<const uint8_t> raw() const { return raw_; }

  template <class T>
    requires kIsScalar<T>
  void push_back(T v) {
    check_push(value_type_of<T>());
    uint8_t bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));
    raw_.insert(raw_.end(), bytes, bytes + sizeof(T));
    ++size_;
  }
  void push_back(std::string_view s);
  void push_back(const char* s) { push_back(std::string_view(s)); }
  void push_back(Array a);
  // Appends one scalar element given as its raw bits (used by the reader).
  void push_raw(const uint8_t* bytes, size_t n_elements);

  bool operator==(const Array& other) const = default;

 private:
  void check_push(ValueType t) const;
  ValueType elem_type_;
  uint64_t size_ = 0;
  std::vector<uint8_t> raw_;    // [size_ * scalar_bytes] scalar elements, little-endian
  std::string chars_;           // string elements back to back
  std::vector<uint64_t> ends_;  // [size_] end of string i in chars_
  std::vector<Array> arrays_;   // [size_] nested arrays
};

// One metadata value. Scalars keep their raw bits, so floats (NaN payloads
// included) and bools round-trip exactly.
class Value {
 public:
  Value() : Value(of(uint8_t{0})) {}
  template <class T>
    requires kIsScalar<T>
  static Value of(T v) {
    Value out(value_type_of<T>());
    std::memcpy(&out.bits_, &v, sizeof(T));
    return out;
  }
  static Value of(std::string s);
  static Value of(std::string_view s) { return of(std::string(s)); }
  static Value of(const char* s) { return of(std::string(s)); }
  static Value of(Array a);
  // A scalar from its raw little-endian bits (low scalar_bytes(t) bytes used).
  static Value from_bits(ValueType t, uint64_t bits);

  ValueType type() const { return type_; }
  uint64_t bits() const { return bits_; }  // scalars only
  template <class T>
  T as() const;  // scalars: converted as convert_scalar says; throws moelab::Error
  const std::string& as_string() const;
  const Array& as_array() const;
  std::string to_string() const;  // short human-readable form, for `moelab inspect` and messages

  bool operator==(const Value& other) const = default;

 private:
  explicit Value(ValueType t) : type_(t) {}
  ValueType type_;
  uint64_t bits_ = 0;
  std::string str_;
  Array array_;
};

struct KeyValue {
  std::string key;
  Value value;
  uint64_t file_offset = 0;  // where the record starts in the file it was read from (0 if built)
};

// A tensor of a mapped file: zero-copy view of its bytes.
struct Tensor {
  std::string name;
  const quant::Codec* codec = nullptr;  // the row for ggml_type; never null once read
  int ggml_type = -1;
  int n_dims = 0;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};  // ne[0] varies fastest (row length); unused dims are 1
  uint64_t offset = 0;       // from the data section start; a multiple of the alignment
  uint64_t n_bytes = 0;      // ne[0] / block_values * block_bytes * ne[1] * ne[2] * ne[3]
  uint64_t info_offset = 0;  // where the tensor-info record starts in the file
  const uint8_t* data = nullptr;  // [n_bytes] inside the mapping

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  uint64_t row_bytes() const { return n_bytes / uint64_t(n_rows()); }
  std::span<const uint8_t> bytes() const { return {data, n_bytes}; }
};

// Bytes of a tensor of `codec` with shape `ne` (n_dims entries, ne[0] fastest).
// Throws (naming `what`) when ne[0] is not a multiple of the block, a dim is
// not positive, or the size overflows.
uint64_t tensor_bytes(const quant::Codec& codec, std::span<const int64_t> ne, std::string_view what);

// A parsed GGUF file. Tensor views point into the file's read-only mapping and
// stay valid while the File lives (moving it keeps them valid).
class File {
 public:
  static File open(const std::filesystem::path& path);
  // Parses `bytes` in place (no copy): the caller keeps them alive as long as
  // the File. `name` stands for the path in error messages. Tensor data is only
  // as aligned as `bytes.data()` is (open() maps at a page boundary). For
  // fuzzing and tests.
  static File parse(std::span<const uint8_t> bytes, std::string name);

  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();

  const std::string& path() const;
  uint32_t version() const;
  uint64_t alignment() const;
  uint64_t data_offset() const;  // file offset of the data section
  uint64_t tensor_info_offset() const;  // file offset of the first tensor-info record
  std::span<const uint8_t> bytes() const;  // the whole file

  // Metadata, in file order.
  const std::vector<KeyValue>& metadata() const;
  const Value* find(std::string_view key) const;  // nullptr when absent
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed access. get_* returns `fallback` when the key is absent; require_*
  // throws naming the file and key. Both throw when the key is present with a
  // type that does not convert (see convert_scalar).
  template <class T>
  T get(std::string_view key, T fallback) const;
  template <class T>
  T require(std::string_view key) const;
  uint32_t get_u32(std::string_view key, uint32_t fallback) const { return get<uint32_t>(key, fallback); }
  int32_t get_i32(std::string_view key, int32_t fallback) const { return get<int32_t>(key, fallback); }
  uint64_t get_u64(std::string_view key, uint64_t fallback) const { return get<uint64_t>(key, fallback); }
  int64_t get_i64(std::string_view key, int64_t fallback) const { return get<int64_t>(key, fallback); }
  float get_f32(std::string_view key, float fallback) const { return get<float>(key, fallback); }
  double get_f64(std::string_view key, double fallback) const { return get<double>(key, fallback); }
  bool get_bool(std::string_view key, bool fallback) const { return get<bool>(key, fallback); }
  std::string get_string(std::string_view key, std::string fallback) const;
  const Array* get_array(std::string_view key) const;  // nullptr when absent
  uint32_t require_u32(std::string_view key) const { return require<uint32_t>(key); }
  int32_t require_i32(std::string_view key) const { return require<int32_t>(key); }
  uint64_t require_u64(std::string_view key) const { return require<uint64_t>(key); }
  int64_t require_i64(std::string_view key) const { return require<int64_t>(key); }
  float require_f32(std::string_view key) const { return require<float>(key); }
  double require_f64(std::string_view key) const { return require<double>(key); }
  bool require_bool(std::string_view key) const { return require<bool>(key); }
  const std::string& require_string(std::string_view key) const;
  const Array& require_array(std::string_view key) const;
  // Every element of an array key as T (a scalar type or std::string).
  template <class T>
  std::vector<T> require_array_of(std::string_view key) const;
  std::string architecture() const { return require_string(kArchitectureKey); }

  // Tensors, in file order.
  const std::vector<Tensor>& tensors() const;
  const Tensor* find_tensor(std::string_view name) const;  // nullptr when absent
  const Tensor& tensor(std::string_view name) const;       // throws naming the file and tensor

  struct State;  // opaque: reader.cpp

 private:
  explicit File(std::unique_ptr<State> state);
  [[noreturn]] void fail_key(std::string_view key, const std::string& why) const;
  std::unique_ptr<State> s_;
};

// Builds a GGUF file: metadata and tensors in insertion order, each tensor
// padded with zeros to the alignment (`general.alignment` when set, else 32),
// exactly as gguf-py's GGUFWriter and llama.cpp's gguf_write_to_file do.
class Writer {
 public:
  // Fills `dst` (the tensor's n_bytes) when the file is written; lets a
  // generator stream tensors larger than it wants to hold all at once.
  using Fill = std::function<void(std::span<uint8_t> dst)>;

  Writer() = default;
  // Every key and tensor of `file`, in its order and with its version; tensor
  // bytes are borrowed, so `file` must outlive write().
  static Writer from(const File& file);

  void set_version(uint32_t version);  // 2 or 3
  // Adds a key (error if present). `general.alignment` must be a u32 power of
  // two; it sets the alignment.
  void add(std::string key, Value value);
  void set(std::string key, Value value);  // adds, or replaces in place keeping the order
  bool remove(std::string_view key);
  const std::vector<KeyValue>& metadata() const { return kvs_; }

  // A tensor whose bytes (tensor_bytes(codec, ne)) the caller keeps alive until write().
  void add_tensor(std::string name, const quant::Codec& codec, std::span<const int64_t> ne,
                  std::span<const uint8_t> data);
  void add_tensor(std::string name, const quant::Codec& codec, std::initializer_list<int64_t> ne,
                  std::span<const uint8_t> data) {
    add_tensor(std::move(name), codec, std::span<const int64_t>(ne.begin(), ne.size()), data);
  }
  // A tensor whose bytes `fill` produces at write time.
  void add_tensor(std::string name, const quant::Codec& codec, std::span<const int64_t> ne, Fill fill);

  uint64_t alignment() const { return alignment_; }
  uint64_t n_tensors() const { return tensors_.size(); }
  // Size of the file write() would produce.
  uint64_t file_bytes() const;

  // Writes to `path` through a temporary file renamed into place, so a crash
  // never leaves a half-written file under the final name.
  void write(const std::filesystem::path& path) const;
  // The whole file in memory (tests, fuzzing, small files).
  std::vector<uint8_t> to_bytes() const;

 private:
  struct PendingTensor {
    std::string name;
    const quant::Codec* codec;
    int n_dims;
    std::array<int64_t, kMaxDims> ne;
    uint64_t n_bytes;
    std::span<const uint8_t> data;  // empty when `fill` provides the bytes
    Fill fill;
  };
  void add_pending(PendingTensor t);
  void check_alignment_value(const std::string& key, const Value& value);
  std::vector<uint8_t> header_bytes() const;  // header, metadata, tensor infos, padding
  void emit(const std::function<void(const uint8_t*, size_t)>& sink, const std::string& what) const;

  uint32_t version_ = kVersion;
  uint64_t alignment_ = kDefaultAlignment;
  std::vector<KeyValue> kvs_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<PendingTensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace moelab::gguf
