// GGUF reader. The file is mapped read-only and parsed front to back; every
// count, length, offset and size read from it is checked against the bytes
// that are actually there (overflow-safe) before it is used, so a hostile file
// can only produce a moelab::Error, never a read outside the mapping.
//
// Why the decisions in gguf.h:
//   - Version 2 differs from 3 only in allowing big-endian files, which moelab
//     rejects anyway, so v2 little-endian files parse identically (gguf-py reads
//     both too). v1 used 32-bit counts and is long gone.
//   - Unknown tensor types are errors: moelab must know a tensor's byte size to
//     bounds-check it, and an opaque tensor would only fail later, further from
//     the cause.
//   - n_dims 0 and zero-sized dims are rejected: llama.cpp never writes them and
//     a zero-byte tensor makes "where is this tensor" meaningless.
//   - bool values other than 0/1 are rejected: C++ bool cannot hold them.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "gguf/gguf.h"
#include "quant/codec.h"

namespace moelab::gguf {
namespace {

// Smallest possible records, used to reject counts the file cannot hold
// before anything is allocated for them.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // empty key, type, one u8
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims, one dim, type, offset
constexpr uint64_t kMinArrayBytes = 4 + 8;               // element type, count

// ggml's type names, for messages about types moelab has no codec for.
std::string ggml_type_label(uint32_t type) {
  static constexpr std::string_view kNames[] = {
      "F32",     "F16",   "Q4_0",   "Q4_1",  "Q4_2 (removed)", "Q4_3 (removed)", "Q5_0",  "Q5_1",  "Q8_0",
      "Q8_1",    "Q2_K",  "Q3_K",   "Q4_K",  "Q5_K",           "Q6_K",           "Q8_K",  "IQ2_XXS", "IQ2_XS",
      "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",          "IQ4_XS",         "I8",    "I16",   "I32",
      "I64",     "F64",   "IQ1_M",  "BF16",  "Q4_0_4_4 (removed)", "Q4_0_4_8 (removed)", "Q4_0_8_8 (removed)",
      "TQ1_0",   "TQ2_0", "IQ4_NL_4_4 (removed)", "IQ4_NL_4_8 (removed)", "IQ4_NL_8_8 (removed)", "MXFP4",
      "NVFP4",   "Q1_0"};
  std::string out = std::to_string(type);
  if (type < std::size(kNames)) out += " (" + std::string(kNames[type]) + ")";
  return out;
}

std::string supported_ggml_types() {
  std::string out;
  for (const quant::Codec& c : quant::all_codecs()) {
    if (c.ggml_type < 0) continue;
    if (!out.empty()) out += ", ";
    out += std::string(c.name);
  }
  return out;
}

// A read-only private mapping of a whole file.
class Mapping {
 public:
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr_ != nullptr) ::munmap(addr_, size_);
  }

  void map(const std::filesystem::path& path) {
    const std::string name = path.string();
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(name + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw Error(name + ": cannot stat: " + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw Error(name + ": not a regular file");
    }
    size_ = size_t(st.st_size);
    if (size_ > 0) {  // mmap refuses length 0; an empty file fails as a truncated header
      void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (addr == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        throw Error(name + ": cannot mmap " + std::to_string(size_) + " bytes: " + std::strerror(err));
      }
      addr_ = addr;
    }
    ::close(fd);  // the mapping keeps the file open
  }
  std::span<const uint8_t> bytes() const { return {static_cast<const uint8_t*>(addr_), size_}; }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

struct File::State {
  std::string path;
  Mapping mapping;  // unused when parsing caller-owned bytes
  std::span<const uint8_t> bytes;
  uint32_t version = 0;
  uint64_t alignment = kDefaultAlignment;
  uint64_t tensor_info_offset = 0;
  uint64_t data_offset = 0;
  std::vector<KeyValue> kvs;
  std::map<std::string, size_t, std::less<>> kv_index;
  std::vector<Tensor> tensors;
  std::map<std::string, size_t, std::less<>> tensor_index;
};

namespace {

class Parser {
 public:
  explicit Parser(File::State& s) : s_(s), base_(s.bytes.data()), size_(s.bytes.size()) {}

  void parse() {
    parse_header();
    parse_metadata();
    parse_alignment();
    parse_tensor_infos();
    place_tensors();
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    std::string msg = s_.path + ": " + where_;
    if (!elem_path_.empty()) {
      msg += " element ";
      for (uint64_t i : elem_path_) msg.append("[").append(std::to_string(i)).append("]");
    }
    throw Error(msg + ": " + why);
  }

  uint64_t left() const { return size_ - pos_; }

  template <class T>
  T read(const char* field) {
    if (sizeof(T) > left())
      fail(std::string("truncated: ") + field + " (" + std::to_string(sizeof(T)) + " bytes at offset " +
           std::to_string(pos_) + ") runs past the end of the file (size " + std::to_string(size_) + ")");
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string_view read_string(const char* field) {
    const auto len = read<uint64_t>(field);
    if (len > left())
      fail(std::string(field) + " length " + std::to_string(len) + " runs past the end of the file (" +
           std::to_string(left()) + " bytes left at offset " + std::to_string(pos_) + ")");
    const std::string_view s(reinterpret_cast<const char*>(base_ + pos_), size_t(len));
    pos_ += len;
    return s;
  }

  ValueType read_value_type(const char* field) {
    const auto raw = read<uint32_t>(field);
    if (raw >= kValueTypeCount) fail("unknown " + std::string(field) + " " + std::to_string(raw) + " (GGUF has 0..12)");
    return ValueType(raw);
  }

  void check_bools(const uint8_t* p, uint64_t n, bool in_array) {
    for (uint64_t i = 0; i < n; ++i) {
      if (p[i] > 1) {
        if (in_array) elem_path_.push_back(i);
        fail("bool value " + std::to_string(p[i]) + " is neither 0 nor 1");
      }
    }
  }

  Value read_value(ValueType t) {
    if (t == ValueType::string) return Value::of(std::string(read_string("string value")));
    if (t == ValueType::array) return Value::of(read_array(0));
    const size_t n = scalar_bytes(t);
    if (n > left())
      fail("truncated: " + std::string(value_type_name(t)) + " value at offset " + std::to_string(pos_) +
           " runs past the end of the file (size " + std::to_string(size_) + ")");
    if (t == ValueType::boolean) check_bools(base_ + pos_, 1, false);
    uint64_t bits = 0;
    std::memcpy(&bits, base_ + pos_, n);
    pos_ += n;
    return Value::from_bits(t, bits);
  }

  Array read_array(int depth) {
    if (depth >= kMaxArrayDepth) fail("arrays nest deeper than " + std::to_string(kMaxArrayDepth) + " levels");
    const ValueType t = read_value_type("array element type");
    const auto n = read<uint64_t>("array length");
    const uint64_t min_bytes = t == ValueType::string ? 8 : t == ValueType::array ? kMinArrayBytes : scalar_bytes(t);
    if (n > left() / min_bytes)
      fail("array length " + std::to_string(n) + " cannot fit: each " + std::string(value_type_name(t)) +
           " element takes at least " + std::to_string(min_bytes) + " bytes and " + std::to_string(left()) +
           " bytes are left at offset " + std::to_string(pos_));
    Array a(t);
    if (is_scalar(t)) {
      if (t == ValueType::boolean) check_bools(base_ + pos_, n, true);
      a.push_raw(base_ + pos_, size_t(n));  // n * scalar bytes <= left(): checked above
      pos_ += n * min_bytes;
      return a;
    }
    elem_path_.push_back(0);
    for (uint64_t i = 0; i < n; ++i) {
      elem_path_.back() = i;
      if (t == ValueType::string) a.push_back(read_string("string"));
      else a.push_back(read_array(depth + 1));
    }
    elem_path_.pop_back();
    return a;
  }

  void parse_header() {
    where_ = "header";
    if (size_ >= 4 && std::memcmp(base_, "GGUF", 4) != 0)
      fail("bad magic " + printable(std::string_view(reinterpret_cast<const char*>(base_), 4)) +
           ", expected \"GGUF\" (not a GGUF file)");
    read<uint32_t>("magic");
    s_.version = read<uint32_t>("version");
    if (s_.version != 0 && (s_.version & 0xFFFF) == 0)
      fail("version field " + std::to_string(s_.version) +
           " looks byte-swapped: big-endian GGUF files are not supported");
    if (s_.version != 2 && s_.version != 3)
      fail("unsupported version " + std::to_string(s_.version) + " (moelab reads GGUF versions 2 and 3)");
    n_tensors_ = read<uint64_t>("n_tensors");
    n_kv_ = read<uint64_t>("n_kv");
    if (n_kv_ > left() / kMinKvBytes)
      fail("n_kv = " + std::to_string(n_kv_) + " cannot fit: each key-value takes at least " +
           std::to_string(kMinKvBytes) + " bytes and " + std::to_string(left()) + " bytes follow the header");
    if (n_tensors_ > left() / kMinTensorInfoBytes)
      fail("n_tensors = " + std::to_string(n_tensors_) + " cannot fit: each tensor info takes at least " +
           std::to_string(kMinTensorInfoBytes) + " bytes and " + std::to_string(left()) +
           " bytes follow the header");
  }

  void parse_metadata() {
    for (uint64_t i = 0; i < n_kv_; ++i) {
      const uint64_t record = pos_;
      const std::string at = std::string("#").append(std::to_string(i)) + " at offset " + std::to_string(record);
      where_ = "metadata " + at;
      const std::string_view key = read_string("key");
      where_ = "metadata key " + printable(key) + " (" + at + ")";
      if (auto it = s_.kv_index.find(key); it != s_.kv_index.end())
        fail("duplicate key (first defined by metadata #" + std::to_string(it->second) + ")");
      const ValueType t = read_value_type("value type");
      Value value = read_value(t);
      s_.kv_index.emplace(std::string(key), s_.kvs.size());
      s_.kvs.push_back(KeyValue{std::string(key), std::move(value), record});
    }
  }

  void parse_alignment() {
    const auto it = s_.kv_index.find(kAlignmentKey);
    if (it == s_.kv_index.end()) return;
    where_ = "metadata key " + printable(kAlignmentKey);
    const Value& v = s_.kvs[it->second].value;
    // llama.cpp reads it with gguf_get_val_u32, gguf-py insists on u32 too.
    if (v.type() != ValueType::u32) fail("has type " + std::string(value_type_name(v.type())) + ", GGUF requires u32");
    const uint64_t a = v.bits();
    if (a == 0 || (a & (a - 1)) != 0) fail("alignment " + std::to_string(a) + " is not a power of two");
    s_.alignment = a;
  }

  void parse_tensor_infos() {
    s_.tensor_info_offset = pos_;
    s_.tensors.reserve(size_t(std::min<uint64_t>(n_tensors_, 1 << 16)));
    for (uint64_t i = 0; i < n_tensors_; ++i) {
      Tensor t;
      t.info_offset = pos_;
      const std::string at = std::string("#").append(std::to_string(i)) + ", info at offset " + std::to_string(t.info_offset);
      where_ = "tensor info " + at;
      t.name = std::string(read_string("tensor name"));
      where_ = "tensor " + printable(t.name) + " (" + at + ")";
      if (auto it = s_.tensor_index.find(t.name); it != s_.tensor_index.end())
        fail("duplicate tensor name (first defined by tensor #" + std::to_string(it->second) + ")");
      const auto n_dims = read<uint32_t>("n_dims");
      if (n_dims == 0 || n_dims > uint32_t(kMaxDims))
        fail("n_dims " + std::to_string(n_dims) + " is outside [1, " + std::to_string(kMaxDims) + "]");
      t.n_dims = int(n_dims);
      for (uint32_t d = 0; d < n_dims; ++d) {
        const auto dim = read<uint64_t>("dim");
        if (dim > uint64_t(std::numeric_limits<int64_t>::max()))
          fail("dim " + std::to_string(d) + " = " + std::to_string(dim) + " does not fit in int64");
        t.ne[d] = int64_t(dim);
      }
      const auto type = read<uint32_t>("ggml type");
      t.codec = type <= uint32_t(std::numeric_limits<int>::max()) ? quant::find_codec_by_ggml_type(int(type)) : nullptr;
      if (t.codec == nullptr)
        fail("ggml type " + ggml_type_label(type) + " has no moelab codec (moelab reads " + supported_ggml_types() + ")");
      t.ggml_type = int(type);
      t.offset = read<uint64_t>("data offset");
      t.n_bytes = tensor_bytes(*t.codec, std::span<const int64_t>(t.ne.data(), n_dims), s_.path + ": " + where_);
      s_.tensor_index.emplace(t.name, s_.tensors.size());
      s_.tensors.push_back(std::move(t));
    }
  }

  void place_tensors() {
    where_ = "data section";
    const uint64_t a = s_.alignment;  // <= 2^31 and pos_ <= size_, so no overflow
    s_.data_offset = (pos_ + a - 1) / a * a;
    if (s_.data_offset > size_)
      fail("padding to the " + std::to_string(a) + "-byte alignment ends at offset " + std::to_string(s_.data_offset) +
           ", past the end of the file (size " + std::to_string(size_) + ")");
    const uint64_t data_bytes = size_ - s_.data_offset;
    for (size_t i = 0; i < s_.tensors.size(); ++i) {
      Tensor& t = s_.tensors[i];
      where_ = "tensor " + printable(t.name) + " (#" + std::to_string(i) + ")";
      if (t.offset % a != 0)
        fail("data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(a));
      if (t.offset > data_bytes || t.n_bytes > data_bytes - t.offset)
        fail("data (" + std::to_string(t.n_bytes) + " bytes at data offset " + std::to_string(t.offset) +
             ") runs past the end of the file: the data section holds " + std::to_string(data_bytes) + " bytes");
      t.data = base_ + s_.data_offset + t.offset;
    }
    // Overlaps: sort by offset, then each tensor must end before the next starts.
    std::vector<size_t> order(s_.tensors.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(),
              [&](size_t x, size_t y) { return s_.tensors[x].offset < s_.tensors[y].offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const Tensor& prev = s_.tensors[order[k - 1]];
      const Tensor& cur = s_.tensors[order[k]];
      if (prev.offset + prev.n_bytes > cur.offset) {
        where_ = "tensor " + printable(cur.name) + " (#" + std::to_string(order[k]) + ")";
        fail("data [" + std::to_string(cur.offset) + ", " + std::to_string(cur.offset + cur.n_bytes) +
             ") overlaps tensor " + printable(prev.name) + " [" + std::to_string(prev.offset) + ", " +
             std::to_string(prev.offset + prev.n_bytes) + ")");
      }
    }
  }

  File::State& s_;
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
  std::string where_;                // the section / key / tensor being read, for messages
  std::vector<uint64_t> elem_path_;  // indices into (nested) arrays being read
};

}  // namespace

File::File(std::unique_ptr<State> state) : s_(std::move(state)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

File File::open(const std::filesystem::path& path) {
  auto s = std::make_unique<State>();
  s->path = path.string();
  s->mapping.map(path);
  s->bytes = s->mapping.bytes();
  Parser(*s).parse();
  return File(std::move(s));
}

File File::parse(std::span<const uint8_t> bytes, std::string name) {
  auto s = std::make_unique<State>();
  s->path = std::move(name);
  s->bytes = bytes;
  Parser(*s).parse();
  return File(std::move(s));
}

const std::string& File::path() const { return s_->path; }
uint32_t File::version() const { return s_->version; }
uint64_t File::alignment() const { return s_->alignment; }
uint64_t File::data_offset() const { return s_->data_offset; }
uint64_t File::tensor_info_offset() const { return s_->tensor_info_offset; }
std::span<const uint8_t> File::bytes() const { return s_->bytes; }
const std::vector<KeyValue>& File::metadata() const { return s_->kvs; }
const std::vector<Tensor>& File::tensors() const { return s_->tensors; }

const Value* File::find(std::string_view key) const {
  const auto it = s_->kv_index.find(key);
  return it == s_->kv_index.end() ? nullptr : &s_->kvs[it->second].value;
}

void File::fail_key(std::string_view key, const std::string& why) const {
  throw Error(s_->path + ": metadata key " + printable(key) + ": " + why);
}

template <class T>
T File::get(std::string_view key, T fallback) const {
  const Value* v = find(key);
  if (v == nullptr) return fallback;
  T out{};
  std::string why;
  if (!convert_scalar(v->type(), v->bits(), &out, &why)) fail_key(key, why);
  return out;
}

template <class T>
T File::require(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) fail_key(key, "is missing (required " + std::string(value_type_name(value_type_of<T>())) + ")");
  T out{};
  std::string why;
  if (!convert_scalar(v->type(), v->bits(), &out, &why)) fail_key(key, why);
  return out;
}

std::string File::get_string(std::string_view key, std::string fallback) const {
  const Value* v = find(key);
  if (v == nullptr) return fallback;
  if (v->type() != ValueType::string) fail_key(key, "has type " + std::string(value_type_name(v->type())) + ", expected string");
  return v->as_string();
}

const std::string& File::require_string(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) fail_key(key, "is missing (required string)");
  if (v->type() != ValueType::string) fail_key(key, "has type " + std::string(value_type_name(v->type())) + ", expected string");
  return v->as_string();
}

const Array* File::get_array(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return nullptr;
  if (v->type() != ValueType::array) fail_key(key, "has type " + std::string(value_type_name(v->type())) + ", expected array");
  return &v->as_array();
}

const Array& File::require_array(std::string_view key) const {
  const Array* a = get_array(key);
  if (a == nullptr) fail_key(key, "is missing (required array)");
  return *a;
}

template <class T>
std::vector<T> File::require_array_of(std::string_view key) const {
  const Array& a = require_array(key);
  try {
    return a.to_vector<T>();
  } catch (const Error& e) {
    fail_key(key, e.what());
  }
}

const Tensor* File::find_tensor(std::string_view name) const {
  const auto it = s_->tensor_index.find(name);
  return it == s_->tensor_index.end() ? nullptr : &s_->tensors[it->second];
}

const Tensor& File::tensor(std::string_view name) const {
  const Tensor* t = find_tensor(name);
  if (t == nullptr) throw Error(s_->path + ": no tensor named " + printable(name));
  return *t;
}

#define MOELAB_GGUF_SCALAR(T)                                           \
  template T File::get<T>(std::string_view, T) const;                    \
  template T File::require<T>(std::string_view) const;                   \
  template std::vector<T> File::require_array_of<T>(std::string_view) const;
MOELAB_GGUF_FOR_EACH_SCALAR(MOELAB_GGUF_SCALAR)
#undef MOELAB_GGUF_SCALAR
template std::vector<std::string> File::require_array_of<std::string>(std::string_view) const;

}  // namespace moelab::gguf
