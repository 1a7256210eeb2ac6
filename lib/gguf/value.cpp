// GGUF metadata values: type names, lossless scalar conversion, Array and Value.
#include <bit>
#include <cstring>
#include <limits>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "gguf/gguf.h"
#include "quant/codec.h"

namespace moelab::gguf {

static_assert(std::endian::native == std::endian::little,
              "GGUF is little-endian; moelab keeps scalars as raw host words");

namespace {

constexpr std::string_view kTypeNames[kValueTypeCount] = {"u8",  "i8",     "u16",    "i16",   "u32", "i32", "f32",
                                                           "bool", "string", "array", "u64",   "i64", "f64"};

bool is_signed_int(ValueType t) {
  return t == ValueType::i8 || t == ValueType::i16 || t == ValueType::i32 || t == ValueType::i64;
}
bool is_unsigned_int(ValueType t) {
  return t == ValueType::u8 || t == ValueType::u16 || t == ValueType::u32 || t == ValueType::u64;
}

// Sign-extends the low `bytes` bytes of `bits`.
int64_t sign_extend(uint64_t bits, size_t bytes) {
  const unsigned shift = unsigned(64 - 8 * bytes);
  return int64_t(bits << shift) >> shift;
}

template <class T>
std::string type_name_of() {
  if constexpr (std::is_same_v<T, std::string>) return "string";
  else return std::string(value_type_name(value_type_of<T>()));
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  const auto i = uint32_t(t);
  return i < kValueTypeCount ? kTypeNames[i] : std::string_view("?");
}

bool is_scalar(ValueType t) { return uint32_t(t) < kValueTypeCount && t != ValueType::string && t != ValueType::array; }

size_t scalar_bytes(ValueType t) {
  switch (t) {
    case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
    case ValueType::u16: case ValueType::i16: return 2;
    case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
    case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
    default: return 0;
  }
}

template <class T>
bool convert_scalar(ValueType t, uint64_t bits, T* out, std::string* why) {
  static_assert(kIsScalar<T>);
  const std::string want(value_type_name(value_type_of<T>()));
  if (!is_scalar(t)) {
    *why = "has type " + std::string(value_type_name(t)) + ", expected " + want;
    return false;
  }
  if constexpr (std::is_same_v<T, bool>) {
    if (t != ValueType::boolean) {
      *why = "has type " + std::string(value_type_name(t)) + ", expected bool";
      return false;
    }
    *out = bits != 0;
    return true;
  } else if constexpr (std::is_floating_point_v<T>) {
    if (t == ValueType::f32) {
      float f;
      const auto b = uint32_t(bits);
      std::memcpy(&f, &b, 4);
      *out = T(f);
      return true;
    }
    if (t == ValueType::f64) {
      double d;
      std::memcpy(&d, &bits, 8);
      *out = T(d);
      return true;
    }
    *why = "has type " + std::string(value_type_name(t)) + ", expected a float (" + want + ")";
    return false;
  } else {
    if (is_signed_int(t)) {
      const int64_t v = sign_extend(bits, scalar_bytes(t));
      if (!std::in_range<T>(v)) {
        *why = "value " + std::to_string(v) + " (" + std::string(value_type_name(t)) + ") does not fit in " + want;
        return false;
      }
      *out = T(v);
      return true;
    }
    if (is_unsigned_int(t)) {
      if (!std::in_range<T>(bits)) {
        *why = "value " + std::to_string(bits) + " (" + std::string(value_type_name(t)) + ") does not fit in " + want;
        return false;
      }
      *out = T(bits);
      return true;
    }
    *why = "has type " + std::string(value_type_name(t)) + ", expected an integer (" + want + ")";
    return false;
  }
}

// ---- Array ----

Array::Array(ValueType elem_type) : elem_type_(elem_type) {
  if (uint32_t(elem_type) >= kValueTypeCount)
    throw Error("gguf: array element type " + std::to_string(uint32_t(elem_type)) + " is not a GGUF value type");
}

Array Array::of_strings(std::span<const std::string> values) {
  Array a(ValueType::string);
  for (const std::string& s : values) a.push_back(std::string_view(s));
  return a;
}

Array Array::of_strings(std::initializer_list<std::string_view> values) {
  Array a(ValueType::string);
  for (std::string_view s : values) a.push_back(s);
  return a;
}

Array Array::of_arrays(std::vector<Array> values) {
  Array a(ValueType::array);
  a.size_ = values.size();
  a.arrays_ = std::move(values);
  return a;
}

void Array::check_push(ValueType t) const {
  if (t != elem_type_)
    throw Error("gguf: cannot add a " + std::string(value_type_name(t)) + " to an array of " +
                std::string(value_type_name(elem_type_)));
}

void Array::push_back(std::string_view s) {
  check_push(ValueType::string);
  chars_.append(s);
  ends_.push_back(chars_.size());
  ++size_;
}

void Array::push_back(Array a) {
  check_push(ValueType::array);
  arrays_.push_back(std::move(a));
  ++size_;
}

void Array::push_raw(const uint8_t* bytes, size_t n_elements) {
  if (!is_scalar(elem_type_)) throw Error("gguf: push_raw on an array of " + std::string(value_type_name(elem_type_)));
  raw_.insert(raw_.end(), bytes, bytes + n_elements * scalar_bytes(elem_type_));
  size_ += n_elements;
}

template <class T>
T Array::get(uint64_t i) const {
  if (i >= size_)
    throw Error("gguf: array index " + std::to_string(i) + " out of range (size " + std::to_string(size_) + ")");
  if (!is_scalar(elem_type_))
    throw Error("gguf: array of " + std::string(value_type_name(elem_type_)) + " read as " + type_name_of<T>());
  const size_t n = scalar_bytes(elem_type_);
  uint64_t bits = 0;
  std::memcpy(&bits, raw_.data() + i * n, n);
  T out{};
  std::string why;
  if (!convert_scalar(elem_type_, bits, &out, &why)) throw Error("gguf: array element " + std::to_string(i) + " " + why);
  return out;
}

std::string_view Array::string_at(uint64_t i) const {
  if (elem_type_ != ValueType::string)
    throw Error("gguf: array of " + std::string(value_type_name(elem_type_)) + " read as string");
  if (i >= size_)
    throw Error("gguf: array index " + std::to_string(i) + " out of range (size " + std::to_string(size_) + ")");
  const uint64_t begin = i == 0 ? 0 : ends_[i - 1];
  return std::string_view(chars_).substr(begin, ends_[i] - begin);
}

const Array& Array::array_at(uint64_t i) const {
  if (elem_type_ != ValueType::array)
    throw Error("gguf: array of " + std::string(value_type_name(elem_type_)) + " read as array");
  if (i >= size_)
    throw Error("gguf: array index " + std::to_string(i) + " out of range (size " + std::to_string(size_) + ")");
  return arrays_[i];
}

template <class T>
std::vector<T> Array::to_vector() const {
  std::vector<T> out;
  out.reserve(size_);
  if constexpr (std::is_same_v<T, std::string>) {
    for (uint64_t i = 0; i < size_; ++i) out.emplace_back(string_at(i));
  } else {
    if constexpr (!std::is_same_v<T, bool>) {
      if (elem_type_ == value_type_of<T>()) {
        out.resize(size_);  // same representation: one copy
        std::memcpy(out.data(), raw_.data(), raw_.size());
        return out;
      }
    }
    for (uint64_t i = 0; i < size_; ++i) out.push_back(get<T>(i));
  }
  return out;
}

// ---- Value ----

Value Value::of(std::string s) {
  Value v(ValueType::string);
  v.str_ = std::move(s);
  return v;
}

Value Value::of(Array a) {
  Value v(ValueType::array);
  v.array_ = std::move(a);
  return v;
}

Value Value::from_bits(ValueType t, uint64_t bits) {
  if (!is_scalar(t)) throw Error("gguf: from_bits needs a scalar type, got " + std::string(value_type_name(t)));
  const size_t n = scalar_bytes(t);
  Value v(t);
  v.bits_ = n == 8 ? bits : bits & ((uint64_t{1} << (8 * n)) - 1);
  return v;
}

template <class T>
T Value::as() const {
  T out{};
  std::string why;
  if (!convert_scalar(type_, bits_, &out, &why)) throw Error("gguf: value " + why);
  return out;
}

const std::string& Value::as_string() const {
  if (type_ != ValueType::string) throw Error("gguf: value has type " + std::string(value_type_name(type_)) + ", expected string");
  return str_;
}

const Array& Value::as_array() const {
  if (type_ != ValueType::array) throw Error("gguf: value has type " + std::string(value_type_name(type_)) + ", expected array");
  return array_;
}

std::string printable(std::string_view s, size_t max_chars) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < max_chars; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > max_chars) out += "...";
  return out + "\"";
}

namespace {

std::string scalar_to_string(ValueType t, uint64_t bits) {
  std::ostringstream os;
  if (t == ValueType::boolean) {
    os << (bits != 0 ? "true" : "false");
  } else if (t == ValueType::f32 || t == ValueType::f64) {
    double d = 0;
    std::string why;
    convert_scalar(t, bits, &d, &why);
    os.precision(t == ValueType::f32 ? 9 : 17);
    os << d;
  } else if (is_signed_int(t)) {
    os << sign_extend(bits, scalar_bytes(t));
  } else {
    os << bits;
  }
  return os.str();
}

std::string array_to_string(const Array& a, int max_items) {
  std::string out = "[" + std::string(value_type_name(a.elem_type())) + " x " + std::to_string(a.size());
  const uint64_t shown = std::min<uint64_t>(a.size(), uint64_t(max_items));
  for (uint64_t i = 0; i < shown; ++i) {
    out += i == 0 ? ": " : ", ";
    if (a.elem_type() == ValueType::string) {
      out += printable(a.string_at(i), 32);
    } else if (a.elem_type() == ValueType::array) {
      out += array_to_string(a.array_at(i), 4);
    } else {
      const size_t n = scalar_bytes(a.elem_type());
      uint64_t bits = 0;
      std::memcpy(&bits, a.raw().data() + i * n, n);
      out += scalar_to_string(a.elem_type(), bits);
    }
  }
  if (shown < a.size()) out += ", ...";
  return out + "]";
}

}  // namespace

std::string Value::to_string() const {
  if (type_ == ValueType::string) return printable(str_, 80);
  if (type_ == ValueType::array) return array_to_string(array_, 8);
  return scalar_to_string(type_, bits_);
}

// ---- tensor sizes ----

uint64_t tensor_bytes(const quant::Codec& codec, std::span<const int64_t> ne, std::string_view what) {
  const auto fail = [&](const std::string& why) -> uint64_t { throw Error(std::string(what) + ": " + why); };
  if (ne.empty() || ne.size() > size_t(kMaxDims))
    return fail("n_dims " + std::to_string(ne.size()) + " is outside [1, " + std::to_string(kMaxDims) + "]");
  int64_t n_elements = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] <= 0) return fail("dim " + std::to_string(d) + " is " + std::to_string(ne[d]) + "; dims must be positive");
    if (__builtin_mul_overflow(n_elements, ne[d], &n_elements))
      return fail("element count overflows int64 at dim " + std::to_string(d));
  }
  if (ne[0] % codec.block_values != 0)
    return fail("ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the " + std::string(codec.name) +
                " block (" + std::to_string(codec.block_values) + " values)");
  uint64_t n_bytes = uint64_t(ne[0] / codec.block_values) * uint64_t(codec.block_bytes);
  if (n_bytes / uint64_t(codec.block_bytes) != uint64_t(ne[0] / codec.block_values))
    return fail("byte size overflows");
  for (size_t d = 1; d < ne.size(); ++d)
    if (__builtin_mul_overflow(n_bytes, uint64_t(ne[d]), &n_bytes)) return fail("byte size overflows");
  if (n_bytes > uint64_t(std::numeric_limits<int64_t>::max())) return fail("byte size overflows int64");
  return n_bytes;
}

// Explicit instantiations: every scalar type (and std::string where it applies).
#define MOELAB_GGUF_SCALAR(T)                                                         \
  template bool convert_scalar<T>(ValueType, uint64_t, T*, std::string*);             \
  template T Array::get<T>(uint64_t) const;                                            \
  template std::vector<T> Array::to_vector<T>() const;                                 \
  template T Value::as<T>() const;
MOELAB_GGUF_FOR_EACH_SCALAR(MOELAB_GGUF_SCALAR)
#undef MOELAB_GGUF_SCALAR
template std::vector<std::string> Array::to_vector<std::string>() const;

}  // namespace moelab::gguf
