#include "kv/session.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/hash.h"

namespace moelab::kv {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'E', 'L', 'A', 'B', 'K', 'V'};
constexpr size_t kIdentityChars = 32;

void put(std::vector<uint8_t>& out, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n);
}
template <class T>
void put(std::vector<uint8_t>& out, T v) {
  put(out, &v, sizeof(v));
}

// Bounds-checked reads from the file image; errors name the file and the field.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}
  std::span<const uint8_t> take(size_t n, const char* field) {
    if (n > bytes_.size() - pos_)
      throw Error(name_ + ": session " + field + ": truncated file (needs " + std::to_string(n) + " bytes at offset " +
                  std::to_string(pos_) + ", file has " + std::to_string(bytes_.size()) + ")");
    auto s = bytes_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  template <class T>
  T get(const char* field) {
    T v;
    std::memcpy(&v, take(sizeof(T), field).data(), sizeof(T));
    return v;
  }
  size_t pos() const { return pos_; }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& name_;
  size_t pos_ = 0;
};

}  // namespace

void save_session(const std::filesystem::path& path, const KvCache& cache, const std::string& model_identity,
                  std::span<const int32_t> tokens) {
  const std::string name = path.string();
  const int64_t n_past = cache.n_past();
  if (int64_t(tokens.size()) != n_past)
    throw Error(name + ": save session: " + std::to_string(tokens.size()) + " tokens for a cache of " +
                std::to_string(n_past) + " positions");
  if (model_identity.size() != kIdentityChars) throw Error(name + ": save session: model identity must be 32 hex digits");
  const std::string codec = cache.spec().canonical();
  const size_t k_bytes = size_t(n_past) * cache.pos_stride_k(), v_bytes = size_t(n_past) * cache.pos_stride_v();
  std::vector<uint8_t> out;
  out.reserve(128 + codec.size() + tokens.size_bytes() + size_t(cache.n_layer()) * (k_bytes + v_bytes));
  put(out, kMagic, sizeof(kMagic));
  put(out, kSessionVersion);
  put(out, uint32_t(0));
  put(out, model_identity.data(), kIdentityChars);
  put(out, uint32_t(codec.size()));
  put(out, codec.data(), codec.size());
  for (int64_t v : {cache.n_layer(), cache.n_head_kv(), cache.head_dim(), int64_t(cache.head_bytes_k()),
                    int64_t(cache.head_bytes_v()), n_past})
    put(out, uint64_t(v));
  put(out, tokens.data(), tokens.size_bytes());
  put(out, cache.key_centres().data(), cache.key_centres().size() * sizeof(float));
  put(out, cache.sink_keys().data(), cache.sink_keys().size() * sizeof(float));
  put(out, cache.qjl_weights().data(), cache.qjl_weights().size() * sizeof(float));
  for (int64_t l = 0; l < cache.n_layer(); ++l) {
    put(out, cache.k_layer(l), k_bytes);
    put(out, cache.v_layer(l), v_bytes);
  }
  put(out, Xxh64::of(out.data(), out.size()));

  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(tmp.string() + ": save session: cannot open for writing");
    f.write(reinterpret_cast<const char*>(out.data()), std::streamsize(out.size()));
    f.flush();
    if (!f) throw Error(tmp.string() + ": save session: write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error(name + ": save session: cannot rename " + tmp.string() + " into place: " + ec.message());
}

std::vector<int32_t> load_session(const std::filesystem::path& path, KvCache& cache,
                                  const std::string& model_identity) {
  const std::string name = path.string();
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(name + ": load session: " + ec.message());
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(name + ": load session: cannot open");
    f.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
    if (size_t(f.gcount()) != bytes.size()) throw Error(name + ": load session: short read");
  }
  Cursor in(bytes, name);
  if (std::memcmp(in.take(sizeof(kMagic), "magic").data(), kMagic, sizeof(kMagic)) != 0)
    throw Error(name + ": not a moelab KV session (bad magic)");
  const uint32_t version = in.get<uint32_t>("version");
  if (version != kSessionVersion)
    throw Error(name + ": session version " + std::to_string(version) + " unsupported (this build reads " +
                std::to_string(kSessionVersion) + ")");
  in.get<uint32_t>("reserved");
  const auto id = in.take(kIdentityChars, "model identity");
  const uint32_t codec_len = in.get<uint32_t>("kv codec length");
  if (codec_len > 64) throw Error(name + ": session kv codec: length " + std::to_string(codec_len) + " is implausible");
  const auto codec = in.take(codec_len, "kv codec");
  uint64_t shape[6];
  const char* fields[6] = {"n_layer", "n_head_kv", "head_dim", "head_bytes_k", "head_bytes_v", "n_past"};
  for (int i = 0; i < 6; ++i) shape[i] = in.get<uint64_t>(fields[i]);
  const uint64_t n_past = shape[5];
  // Sizes from the header, checked against the file size before any of them is
  // trusted (in long double first: a hostile header must not overflow the sum).
  const long double k_rows = (long double)n_past * shape[1] * shape[3], v_rows = (long double)n_past * shape[1] * shape[4];
  const long double centres = 3.0L * shape[0] * shape[1] * shape[2] * sizeof(float);  // centres, sink keys, QJL weights
  const long double expect_ld = (long double)in.pos() + (long double)n_past * sizeof(int32_t) + centres +
                                (long double)shape[0] * (k_rows + v_rows) + sizeof(uint64_t);
  if (expect_ld != (long double)bytes.size())
    throw Error(name + ": session is " + std::to_string(bytes.size()) + " bytes, its header says " +
                std::to_string((unsigned long long)std::min(expect_ld, (long double)UINT64_MAX)) +
                " (truncated or corrupted file)");
  const uint64_t k_bytes = uint64_t(k_rows), v_bytes = uint64_t(v_rows);
  uint64_t stored_sum;
  std::memcpy(&stored_sum, bytes.data() + bytes.size() - sizeof(uint64_t), sizeof(stored_sum));
  if (Xxh64::of(bytes.data(), bytes.size() - sizeof(uint64_t)) != stored_sum)
    throw Error(name + ": session checksum mismatch (corrupted file)");

  const std::string file_id(reinterpret_cast<const char*>(id.data()), id.size());
  if (file_id != model_identity)
    throw Error(name + ": session was saved for another model (identity " + file_id + ", this model " + model_identity +
                ")");
  const std::string file_codec(reinterpret_cast<const char*>(codec.data()), codec.size());
  if (file_codec != cache.spec().canonical())
    throw Error(name + ": session KV codec is \"" + file_codec + "\", this cache uses \"" + cache.spec().canonical() +
                "\"");
  const int64_t ours[5] = {cache.n_layer(), cache.n_head_kv(), cache.head_dim(), int64_t(cache.head_bytes_k()),
                           int64_t(cache.head_bytes_v())};
  for (int i = 0; i < 5; ++i)
    if (shape[i] != uint64_t(ours[i]))
      throw Error(name + ": session " + fields[i] + " " + std::to_string(shape[i]) + " differs from this cache's " +
                  std::to_string(ours[i]));
  if (n_past > uint64_t(cache.n_ctx()))
    throw Error(name + ": session holds " + std::to_string(n_past) + " positions, the context has " +
                std::to_string(cache.n_ctx()) + " (raise --ctx)");

  std::vector<int32_t> tokens(n_past);
  std::memcpy(tokens.data(), in.take(n_past * sizeof(int32_t), "tokens").data(), n_past * sizeof(int32_t));
  std::vector<float>& centres_out = cache.key_centres();
  std::memcpy(centres_out.data(), in.take(centres_out.size() * sizeof(float), "key centres").data(),
              centres_out.size() * sizeof(float));
  std::vector<float>& sinks_out = cache.sink_keys();
  std::memcpy(sinks_out.data(), in.take(sinks_out.size() * sizeof(float), "sink keys").data(),
              sinks_out.size() * sizeof(float));
  std::vector<float>& weights_out = cache.qjl_weights();
  std::memcpy(weights_out.data(), in.take(weights_out.size() * sizeof(float), "QJL weights").data(),
              weights_out.size() * sizeof(float));
  for (int64_t l = 0; l < cache.n_layer(); ++l) {
    std::memcpy(cache.k_layer(l), in.take(k_bytes, "K rows").data(), k_bytes);
    std::memcpy(cache.v_layer(l), in.take(v_bytes, "V rows").data(), v_bytes);
  }
  cache.set_n_past(int64_t(n_past));
  return tokens;
}

}  // namespace moelab::kv
