// GGUF writer. Layout choices match gguf-py's GGUFWriter and llama.cpp's
// gguf_write_to_file exactly, so a file either of them wrote round-trips
// byte-for-byte: metadata and tensor infos in insertion order, tensor offsets
// assigned in order, zero padding after the tensor infos and after every
// tensor (the last one included) up to the alignment.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "gguf/gguf.h"
#include "quant/codec.h"

namespace moelab::gguf {
namespace {

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

class Bytes {
 public:
  explicit Bytes(std::vector<uint8_t>& out) : out_(out) {}
  template <class T>
  void put(T v) {
    put_bytes(&v, sizeof(T));
  }
  void put_bytes(const void* p, size_t n) {
    const size_t at = out_.size();
    out_.resize(at + n);
    if (n != 0) std::memcpy(out_.data() + at, p, n);
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    put_bytes(s.data(), s.size());
  }
  void put_array(const Array& a) {
    put<uint32_t>(uint32_t(a.elem_type()));
    put<uint64_t>(a.size());
    if (a.elem_type() == ValueType::string) {
      for (uint64_t i = 0; i < a.size(); ++i) put_string(a.string_at(i));
    } else if (a.elem_type() == ValueType::array) {
      for (uint64_t i = 0; i < a.size(); ++i) put_array(a.array_at(i));
    } else {
      put_bytes(a.raw().data(), a.raw().size());
    }
  }
  void put_value(const Value& v) {
    put<uint32_t>(uint32_t(v.type()));
    if (v.type() == ValueType::string) {
      put_string(v.as_string());
    } else if (v.type() == ValueType::array) {
      put_array(v.as_array());
    } else {
      const uint64_t bits = v.bits();  // little-endian: the low bytes are the value
      put_bytes(&bits, scalar_bytes(v.type()));
    }
  }
  void pad_to(uint64_t alignment) { out_.resize(align_up(out_.size(), alignment), 0); }

 private:
  std::vector<uint8_t>& out_;
};

}  // namespace

Writer Writer::from(const File& file) {
  Writer w;
  w.set_version(file.version());
  for (const KeyValue& kv : file.metadata()) w.add(kv.key, kv.value);
  for (const Tensor& t : file.tensors())
    w.add_pending(PendingTensor{t.name, t.codec, t.n_dims, t.ne, t.n_bytes, t.bytes(), nullptr});
  return w;
}

void Writer::set_version(uint32_t version) {
  if (version != 2 && version != 3)
    throw Error("gguf writer: version " + std::to_string(version) + " is not writable (2 or 3)");
  version_ = version;
}

void Writer::check_alignment_value(const std::string& key, const Value& value) {
  if (key != kAlignmentKey) return;
  if (value.type() != ValueType::u32)
    throw Error("gguf writer: " + std::string(kAlignmentKey) + " must be u32, got " +
                std::string(value_type_name(value.type())));
  const uint64_t a = value.bits();
  if (a == 0 || (a & (a - 1)) != 0)
    throw Error("gguf writer: " + std::string(kAlignmentKey) + " = " + std::to_string(a) + " is not a power of two");
  alignment_ = a;
}

void Writer::add(std::string key, Value value) {
  if (kv_index_.contains(key)) throw Error("gguf writer: duplicate metadata key " + printable(key));
  check_alignment_value(key, value);
  kv_index_.emplace(key, kvs_.size());
  kvs_.push_back(KeyValue{std::move(key), std::move(value), 0});
}

void Writer::set(std::string key, Value value) {
  const auto it = kv_index_.find(key);
  if (it == kv_index_.end()) return add(std::move(key), std::move(value));
  check_alignment_value(key, value);
  kvs_[it->second].value = std::move(value);
}

bool Writer::remove(std::string_view key) {
  const auto it = kv_index_.find(key);
  if (it == kv_index_.end()) return false;
  if (key == kAlignmentKey) alignment_ = kDefaultAlignment;
  kvs_.erase(kvs_.begin() + std::ptrdiff_t(it->second));
  kv_index_.clear();
  for (size_t i = 0; i < kvs_.size(); ++i) kv_index_.emplace(kvs_[i].key, i);
  return true;
}

void Writer::add_pending(PendingTensor t) {
  if (tensor_index_.contains(t.name)) throw Error("gguf writer: duplicate tensor name " + printable(t.name));
  tensor_index_.emplace(t.name, tensors_.size());
  tensors_.push_back(std::move(t));
}

void Writer::add_tensor(std::string name, const quant::Codec& codec, std::span<const int64_t> ne,
                        std::span<const uint8_t> data) {
  const std::string what = "gguf writer: tensor " + printable(name);
  if (codec.ggml_type < 0) throw Error(what + ": codec " + std::string(codec.name) + " has no GGUF tensor type");
  const uint64_t n_bytes = tensor_bytes(codec, ne, what);
  if (data.size() != n_bytes)
    throw Error(what + ": " + std::to_string(data.size()) + " bytes given, its " + std::string(codec.name) +
                " shape needs " + std::to_string(n_bytes));
  PendingTensor t{std::move(name), &codec, int(ne.size()), {1, 1, 1, 1}, n_bytes, data, nullptr};
  std::copy(ne.begin(), ne.end(), t.ne.begin());
  add_pending(std::move(t));
}

void Writer::add_tensor(std::string name, const quant::Codec& codec, std::span<const int64_t> ne, Fill fill) {
  const std::string what = "gguf writer: tensor " + printable(name);
  if (codec.ggml_type < 0) throw Error(what + ": codec " + std::string(codec.name) + " has no GGUF tensor type");
  if (!fill) throw Error(what + ": empty fill function");
  const uint64_t n_bytes = tensor_bytes(codec, ne, what);
  PendingTensor t{std::move(name), &codec, int(ne.size()), {1, 1, 1, 1}, n_bytes, {}, std::move(fill)};
  std::copy(ne.begin(), ne.end(), t.ne.begin());
  add_pending(std::move(t));
}

std::vector<uint8_t> Writer::header_bytes() const {
  std::vector<uint8_t> out;
  Bytes b(out);
  b.put<uint32_t>(kMagic);
  b.put<uint32_t>(version_);
  b.put<uint64_t>(tensors_.size());
  b.put<uint64_t>(kvs_.size());
  for (const KeyValue& kv : kvs_) {
    b.put_string(kv.key);
    b.put_value(kv.value);
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    b.put_string(t.name);
    b.put<uint32_t>(uint32_t(t.n_dims));
    for (int d = 0; d < t.n_dims; ++d) b.put<uint64_t>(uint64_t(t.ne[size_t(d)]));
    b.put<uint32_t>(uint32_t(t.codec->ggml_type));
    b.put<uint64_t>(offset);
    offset += align_up(t.n_bytes, alignment_);
  }
  b.pad_to(alignment_);
  return out;
}

uint64_t Writer::file_bytes() const {
  uint64_t n = header_bytes().size();
  for (const PendingTensor& t : tensors_) n += align_up(t.n_bytes, alignment_);
  return n;
}

void Writer::emit(const std::function<void(const uint8_t*, size_t)>& sink, const std::string& what) const {
  const std::vector<uint8_t> header = header_bytes();
  sink(header.data(), header.size());
  const std::vector<uint8_t> zeros(alignment_, 0);
  std::vector<uint8_t> buffer;  // reused by every `fill` tensor
  for (const PendingTensor& t : tensors_) {
    if (t.fill) {
      buffer.resize(t.n_bytes);
      t.fill(std::span<uint8_t>(buffer));
      sink(buffer.data(), buffer.size());
    } else {
      if (t.data.size() != t.n_bytes)
        throw Error(what + ": tensor " + printable(t.name) + " data changed size since it was added");
      sink(t.data.data(), t.data.size());
    }
    sink(zeros.data(), align_up(t.n_bytes, alignment_) - t.n_bytes);
  }
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint8_t> out;
  emit([&](const uint8_t* p, size_t n) { out.insert(out.end(), p, p + n); }, "gguf writer");
  return out;
}

void Writer::write(const std::filesystem::path& path) const {
  const std::string name = path.string();
  const std::string tmp = name + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw Error(name + ": cannot create " + tmp + ": " + std::strerror(errno));
  try {
    emit(
        [&](const uint8_t* p, size_t n) {
          if (n != 0 && std::fwrite(p, 1, n, f) != n) throw Error(name + ": write failed: " + std::strerror(errno));
        },
        name);
    if (std::fflush(f) != 0) throw Error(name + ": write failed: " + std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    throw Error(name + ": write failed: " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), name.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error(name + ": cannot rename " + tmp + " into place: " + std::strerror(err));
  }
}

}  // namespace moelab::gguf
