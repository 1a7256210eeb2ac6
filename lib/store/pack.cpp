#include "store/pack.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "core/error.h"
#include "quant/ops.h"
#include "core/hash.h"
#include "model/identity.h"

namespace moelab::store {

namespace {

constexpr char kMagic[8] = {'M', 'O', 'E', 'P', 'A', 'C', 'K', '\0'};
constexpr size_t kCodecNameBytes = 24;
constexpr uint64_t kLayerEntryBytes = 3 * (kCodecNameBytes + 16);
constexpr uint64_t kBlobEntryBytes = 24;
const char* const kPartNames[3] = {"gate", "up", "down"};

uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

template <class T>
void put(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

// Reads fields of a byte buffer, each bounds-checked against its end.
class Cursor {
 public:
  Cursor(const std::vector<uint8_t>& bytes, std::string file, std::string section)
      : bytes_(bytes), file_(std::move(file)), section_(std::move(section)) {}
  template <class T>
  T get(const std::string& field) {
    if (at_ + sizeof(T) > bytes_.size())
      throw Error(file_ + ": " + section_ + ": field " + field + " runs past the end (truncated pack)");
    T v;
    std::memcpy(&v, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::string name(const std::string& field) {
    if (at_ + kCodecNameBytes > bytes_.size())
      throw Error(file_ + ": " + section_ + ": field " + field + " runs past the end (truncated pack)");
    const char* p = reinterpret_cast<const char*>(bytes_.data() + at_);
    at_ += kCodecNameBytes;
    const size_t len = strnlen(p, kCodecNameBytes);
    if (len == kCodecNameBytes) throw Error(file_ + ": " + section_ + ": field " + field + " is not NUL-terminated");
    return std::string(p, len);
  }

 private:
  const std::vector<uint8_t>& bytes_;
  size_t at_ = 0;
  std::string file_, section_;
};

// The shapes the model expects for gate, up, down of one expert.
std::array<std::pair<int64_t, int64_t>, 3> expert_shapes(const model::Config& c) {
  return {{{c.n_ff_exp, c.n_embd}, {c.n_ff_exp, c.n_embd}, {c.n_embd, c.n_ff_exp}}};
}

void read_exact(int fd, const std::string& path, uint64_t offset, void* dst, uint64_t n, const std::string& what) {
  uint64_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, static_cast<uint8_t*>(dst) + done, n - done, off_t(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw Error(path + ": " + what + ": read failed: " + std::strerror(errno));
    if (r == 0) throw Error(path + ": " + what + ": unexpected end of file (truncated pack)");
    done += uint64_t(r);
  }
}

}  // namespace

uint64_t model_identity(const gguf::File& file) {
  // The first 64 bits of the model's identity (model/identity.h), shared with KV sessions.
  return std::stoull(model::model_identity(file).substr(0, 16), nullptr, 16);
}

void write_pack(const model::Model& model, const std::filesystem::path& out, const PackOptions& options,
                ThreadPool& pool, const std::function<void(int64_t, int64_t)>& progress) {
  const model::Config& c = model.config();
  const std::string where = out.string();
  if (!c.is_moe()) throw Error(where + ": cannot pack " + model.file().path() + ": the model has no routed experts");
  if (options.align < 512 || (options.align & (options.align - 1)) != 0 || options.align > (1u << 20))
    throw Error(where + ": --align " + std::to_string(options.align) + " must be a power of two in 512..1048576");
  const quant::Codec* target = nullptr;
  if (!options.codec.empty()) {
    target = quant::find_codec(options.codec);
    if (!target || !quant::is_weight_codec(*target))
      throw Error(where + ": --codec '" + options.codec + "' is not a weight codec (see `moelab codecs`)");
  }
  const auto shapes = expert_shapes(c);
  const int64_t L = c.n_layer, E = c.n_expert;

  // Per-layer parts: codec and offsets inside a blob.
  std::vector<std::array<PackPart, 3>> parts(static_cast<size_t>(L));
  std::vector<uint64_t> blob_bytes(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) {
    const model::ExpertWeights ew = model::ResidentExperts::slice(model.weights().layers[size_t(l)], E, 0);
    const quant::QMatrix* m[3] = {&ew.gate, &ew.up, &ew.down};
    uint64_t at = 0;
    for (int p = 0; p < 3; ++p) {
      const quant::Codec* codec = target ? target : m[p]->codec;
      if (shapes[size_t(p)].second % codec->block_values != 0)
        throw Error(where + ": codec " + std::string(codec->name) + " needs rows of a multiple of " +
                    std::to_string(codec->block_values) + " values; the " + kPartNames[p] + " rows have " +
                    std::to_string(shapes[size_t(p)].second));
      PackPart& pp = parts[size_t(l)][size_t(p)];
      pp.codec = codec;
      pp.rows = shapes[size_t(p)].first;
      pp.cols = shapes[size_t(p)].second;
      pp.offset = at;
      pp.bytes = uint64_t(pp.rows) * codec->row_bytes(pp.cols);
      at = round_up(at + pp.bytes, kPackPartAlign);
    }
    blob_bytes[size_t(l)] = at;
  }
  const uint64_t manifest_bytes = uint64_t(L) * kLayerEntryBytes + uint64_t(L * E) * kBlobEntryBytes;
  const uint64_t data_offset = round_up(kPackHeaderBytes + manifest_bytes, options.align);

  const std::filesystem::path tmp = out.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(tmp.string() + ": cannot create: " + std::strerror(errno));
  auto write_at = [&](const void* p, uint64_t n, uint64_t off) {
    uint64_t done = 0;
    while (done < n) {
      const ssize_t w = ::pwrite(fd, static_cast<const uint8_t*>(p) + done, n - done, off_t(off + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const int err = errno;
        ::close(fd);
        std::filesystem::remove(tmp);
        throw Error(tmp.string() + ": write failed: " + std::strerror(err));
      }
      done += uint64_t(w);
    }
  };

  std::vector<PackBlob> blobs(static_cast<size_t>(L * E));
  std::vector<uint8_t> blob;
  std::vector<float> f32;
  uint64_t offset = data_offset;
  for (int64_t l = 0; l < L; ++l) {
    const uint64_t stride = round_up(blob_bytes[size_t(l)], options.align);
    for (int64_t e = 0; e < E; ++e) {
      blob.assign(size_t(stride), 0);
      const model::ExpertWeights ew = model::ResidentExperts::slice(model.weights().layers[size_t(l)], E, int32_t(e));
      const quant::QMatrix* m[3] = {&ew.gate, &ew.up, &ew.down};
      for (int p = 0; p < 3; ++p) {
        const PackPart& pp = parts[size_t(l)][size_t(p)];
        uint8_t* dst = blob.data() + pp.offset;
        if (pp.codec == m[p]->codec) {
          std::memcpy(dst, m[p]->data, size_t(pp.bytes));
        } else {  // requantize: decode to f32, encode in the target codec
          f32.resize(size_t(pp.rows * pp.cols));
          quant::dequantize(*m[p], f32, &pool);
          const std::vector<uint8_t> q = quant::quantize(*pp.codec, f32, pp.rows, pp.cols, nullptr, false, &pool);
          std::memcpy(dst, q.data(), q.size());
        }
      }
      PackBlob& b = blobs[size_t(l * E + e)];
      b.offset = offset;
      b.bytes = blob_bytes[size_t(l)];
      b.checksum = Xxh64::of(blob.data(), size_t(b.bytes));
      write_at(blob.data(), stride, offset);
      offset += stride;
    }
    if (progress) progress(l + 1, L);
  }

  std::vector<uint8_t> manifest;
  manifest.reserve(size_t(manifest_bytes));
  for (int64_t l = 0; l < L; ++l)
    for (const PackPart& pp : parts[size_t(l)]) {
      char name[kCodecNameBytes] = {};
      std::memcpy(name, pp.codec->name.data(), std::min(pp.codec->name.size(), kCodecNameBytes - 1));
      manifest.insert(manifest.end(), name, name + kCodecNameBytes);
      put<int64_t>(manifest, pp.rows);
      put<int64_t>(manifest, pp.cols);
    }
  for (const PackBlob& b : blobs) {
    put<uint64_t>(manifest, b.offset);
    put<uint64_t>(manifest, b.bytes);
    put<uint64_t>(manifest, b.checksum);
  }
  std::vector<uint8_t> header;
  header.insert(header.end(), kMagic, kMagic + 8);
  put<uint32_t>(header, kPackVersion);
  put<uint32_t>(header, uint32_t(options.align));
  put<uint64_t>(header, model_identity(model.file()));
  put<uint32_t>(header, uint32_t(L));
  put<uint32_t>(header, uint32_t(E));
  put<uint64_t>(header, kPackHeaderBytes);
  put<uint64_t>(header, manifest_bytes);
  put<uint64_t>(header, Xxh64::of(manifest.data(), manifest.size()));
  put<uint64_t>(header, data_offset);
  put<uint64_t>(header, offset);
  header.resize(size_t(kPackHeaderBytes), 0);
  write_at(header.data(), header.size(), 0);
  write_at(manifest.data(), manifest.size(), kPackHeaderBytes);
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw Error(tmp.string() + ": cannot flush: " + std::strerror(errno));
  std::filesystem::rename(tmp, out);
}

PackIndex PackIndex::open(const std::filesystem::path& path, const model::Model& model) {
  const std::string file = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(file + ": cannot open pack: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  const uint64_t size = uint64_t(::lseek(fd, 0, SEEK_END));
  if (size < kPackHeaderBytes)
    throw Error(file + ": header: the file has " + std::to_string(size) + " bytes, a pack header needs " +
                std::to_string(kPackHeaderBytes) + " (truncated or not a pack)");
  std::vector<uint8_t> header(static_cast<size_t>(kPackHeaderBytes));
  read_exact(fd, file, 0, header.data(), header.size(), "header");
  if (std::memcmp(header.data(), kMagic, 8) != 0) throw Error(file + ": header: magic is not MOEPACK (not a .moepack file)");
  Cursor h(header, file, "header");
  h.get<uint64_t>("magic");
  const model::Config& c = model.config();
  PackIndex p;
  p.path_ = path;
  const uint32_t version = h.get<uint32_t>("version");
  if (version != kPackVersion)
    throw Error(file + ": header: version " + std::to_string(version) + " (this moelab reads version " +
                std::to_string(kPackVersion) + "; re-run moelab pack)");
  p.align_ = h.get<uint32_t>("align");
  if (p.align_ < 512 || p.align_ > (1u << 20) || (p.align_ & (p.align_ - 1)) != 0)
    throw Error(file + ": header: align " + std::to_string(p.align_) + " is not a power of two in 512..1048576");
  const uint64_t id = h.get<uint64_t>("model_identity");
  const uint64_t want_id = model_identity(model.file());
  if (id != want_id) {
    char buf[160];
    std::snprintf(buf, sizeof buf, ": header: model_identity %016llx does not match %016llx of ", (unsigned long long)id,
                  (unsigned long long)want_id);
    throw Error(file + buf + model.file().path() + " (the pack was made from another model; re-run moelab pack)");
  }
  p.n_layer_ = h.get<uint32_t>("n_layer");
  p.n_expert_ = h.get<uint32_t>("n_expert");
  if (p.n_layer_ != c.n_layer || p.n_expert_ != c.n_expert)
    throw Error(file + ": header: n_layer " + std::to_string(p.n_layer_) + ", n_expert " + std::to_string(p.n_expert_) +
                " do not match the model's " + std::to_string(c.n_layer) + ", " + std::to_string(c.n_expert));
  const uint64_t manifest_offset = h.get<uint64_t>("manifest_offset");
  const uint64_t manifest_bytes = h.get<uint64_t>("manifest_bytes");
  const uint64_t manifest_sum = h.get<uint64_t>("manifest_checksum");
  const uint64_t data_offset = h.get<uint64_t>("data_offset");
  const uint64_t file_bytes = h.get<uint64_t>("file_bytes");
  const uint64_t L = uint64_t(p.n_layer_), E = uint64_t(p.n_expert_);
  const uint64_t want_manifest = L * kLayerEntryBytes + L * E * kBlobEntryBytes;
  if (manifest_offset != kPackHeaderBytes || manifest_bytes != want_manifest)
    throw Error(file + ": header: manifest at " + std::to_string(manifest_offset) + " of " + std::to_string(manifest_bytes) +
                " bytes, expected " + std::to_string(kPackHeaderBytes) + " and " + std::to_string(want_manifest));
  if (file_bytes != size)
    throw Error(file + ": header: file_bytes says " + std::to_string(file_bytes) + " but the file has " +
                std::to_string(size) + " (truncated or extended pack)");
  if (data_offset % p.align_ != 0 || data_offset < manifest_offset + manifest_bytes || data_offset > size)
    throw Error(file + ": header: data_offset " + std::to_string(data_offset) + " is misaligned or out of bounds");
  std::vector<uint8_t> manifest(static_cast<size_t>(manifest_bytes));
  read_exact(fd, file, manifest_offset, manifest.data(), manifest.size(), "manifest");
  if (Xxh64::of(manifest.data(), manifest.size()) != manifest_sum)
    throw Error(file + ": manifest: checksum mismatch (corrupted pack)");

  Cursor m(manifest, file, "manifest");
  const auto shapes = expert_shapes(c);
  p.parts_.resize(size_t(L));
  for (uint64_t l = 0; l < L; ++l) {
    uint64_t at = 0;
    for (int k = 0; k < 3; ++k) {
      const std::string field = "layer " + std::to_string(l) + " " + kPartNames[k];
      const std::string name = m.name(field + " codec");
      PackPart& pp = p.parts_[size_t(l)][size_t(k)];
      pp.codec = quant::find_codec(name);
      if (!pp.codec || !quant::is_weight_codec(*pp.codec))
        throw Error(file + ": manifest: " + field + " codec '" + gguf::printable(name) + "' is not a weight codec");
      pp.rows = m.get<int64_t>(field + " rows");
      pp.cols = m.get<int64_t>(field + " cols");
      if (pp.rows != shapes[size_t(k)].first || pp.cols != shapes[size_t(k)].second || pp.cols % pp.codec->block_values != 0)
        throw Error(file + ": manifest: " + field + " shape [" + std::to_string(pp.rows) + ", " + std::to_string(pp.cols) +
                    "] does not match the model's [" + std::to_string(shapes[size_t(k)].first) + ", " +
                    std::to_string(shapes[size_t(k)].second) + "] in codec " + std::string(pp.codec->name));
      pp.offset = at;
      pp.bytes = uint64_t(pp.rows) * pp.codec->row_bytes(pp.cols);
      at = round_up(at + pp.bytes, kPackPartAlign);
    }
  }
  p.blobs_.resize(size_t(L * E));
  for (uint64_t i = 0; i < L * E; ++i) {
    const std::string field = "blob (layer " + std::to_string(i / E) + ", expert " + std::to_string(i % E) + ")";
    PackBlob& b = p.blobs_[size_t(i)];
    b.offset = m.get<uint64_t>(field + " offset");
    b.bytes = m.get<uint64_t>(field + " bytes");
    b.checksum = m.get<uint64_t>(field + " checksum");
    const std::array<PackPart, 3>& pp = p.parts_[size_t(i / E)];
    const uint64_t want = round_up(pp[2].offset + pp[2].bytes, kPackPartAlign);
    if (b.bytes != want) throw Error(file + ": manifest: " + field + " has " + std::to_string(b.bytes) + " bytes, its parts need " + std::to_string(want));
    if (b.offset % p.align_ != 0 || b.offset < data_offset || b.offset > size || round_up(b.bytes, p.align_) > size - b.offset)
      throw Error(file + ": manifest: " + field + " at offset " + std::to_string(b.offset) + " (+" + std::to_string(b.bytes) +
                  " bytes) is misaligned or outside the file of " + std::to_string(size) + " bytes");
  }
  return p;
}

}  // namespace moelab::store
