#include "experiment/results.h"

#include <H5Cpp.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include "core/error.h"
#include "experiment/host.h"

namespace moelab::experiment {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

constexpr hsize_t kChunkRows = 64;              // /points grows 64 rows per chunk
constexpr size_t kTextBytes = kMaxTextValue + 1;  // fixed-width axis strings, NUL-terminated

// The /points row layout: run, point, repeat, then axes, then metrics, packed.
struct RowLayout {
  H5::CompType type;
  size_t size = 0;
  size_t run = 0, point = 0, repeat = 0;
  std::vector<size_t> axis;    // [axes()] offsets
  std::vector<size_t> metric;  // [metrics()] offsets
};

H5::StrType text_type() {
  H5::StrType t(H5::PredType::C_S1, kTextBytes);
  t.setStrpad(H5T_STR_NULLTERM);
  return t;
}

const RowLayout& row_layout() {
  static const RowLayout layout = [] {
    RowLayout l;
    size_t off = 0;
    l.run = off, off += 4;
    l.point = off, off += 4;
    l.repeat = off, off += 4;
    for (const Axis& a : axes()) {
      l.axis.push_back(off);
      off += a.type == AxisType::text ? kTextBytes : a.type == AxisType::boolean ? 1 : 8;
    }
    for (size_t i = 0; i < metrics().size(); ++i) l.metric.push_back(off), off += 8;
    l.size = off;
    l.type = H5::CompType(l.size);
    l.type.insertMember("run", l.run, H5::PredType::NATIVE_INT32);
    l.type.insertMember("point", l.point, H5::PredType::NATIVE_INT32);
    l.type.insertMember("repeat", l.repeat, H5::PredType::NATIVE_INT32);
    for (size_t i = 0; i < axes().size(); ++i) {
      const Axis& a = axes()[i];
      const std::string name(a.name);
      switch (a.type) {
        case AxisType::integer: l.type.insertMember(name, l.axis[i], H5::PredType::NATIVE_INT64); break;
        case AxisType::real: l.type.insertMember(name, l.axis[i], H5::PredType::NATIVE_DOUBLE); break;
        case AxisType::text: l.type.insertMember(name, l.axis[i], text_type()); break;
        case AxisType::boolean: l.type.insertMember(name, l.axis[i], H5::PredType::NATIVE_INT8); break;
      }
    }
    for (size_t i = 0; i < metrics().size(); ++i)
      l.type.insertMember(std::string(metrics()[i].name), l.metric[i], H5::PredType::NATIVE_DOUBLE);
    return l;
  }();
  return layout;
}

std::vector<uint8_t> encode_row(const ResultRow& r) {
  const RowLayout& l = row_layout();
  std::vector<uint8_t> b(l.size, 0);
  std::memcpy(&b[l.run], &r.run, 4);
  std::memcpy(&b[l.point], &r.point, 4);
  std::memcpy(&b[l.repeat], &r.repeat, 4);
  for (size_t i = 0; i < axes().size(); ++i) {
    const nlohmann::json& v = r.axes.at(i);
    switch (axes()[i].type) {
      case AxisType::integer: {
        const int64_t x = v.get<int64_t>();
        std::memcpy(&b[l.axis[i]], &x, 8);
        break;
      }
      case AxisType::real: {
        const double x = v.get<double>();
        std::memcpy(&b[l.axis[i]], &x, 8);
        break;
      }
      case AxisType::text: {
        const std::string s = v.get<std::string>();
        std::memcpy(&b[l.axis[i]], s.data(), std::min(s.size(), kMaxTextValue));
        break;
      }
      case AxisType::boolean: b[l.axis[i]] = v.get<bool>() ? 1 : 0; break;
    }
  }
  for (size_t i = 0; i < metrics().size(); ++i) std::memcpy(&b[l.metric[i]], &r.metrics.values()[i], 8);
  return b;
}

// HDF5 errors become moelab::Error naming the file.
template <class F>
auto h5(const fs::path& path, const char* what, F&& f) {
  H5::Exception::dontPrint();
  try {
    return f();
  } catch (const H5::Exception& e) {
    throw Error(path.string() + ": " + what + ": " + e.getDetailMsg());
  }
}

bool exists(hid_t loc, const std::string& name) { return H5Lexists(loc, name.c_str(), H5P_DEFAULT) > 0; }

H5::Group group_at(H5::H5File& f, const std::string& path) {  // creates missing parents
  std::string at;
  size_t pos = 1;
  while (pos <= path.size()) {
    const size_t next = path.find('/', pos);
    at = path.substr(0, next);
    if (!exists(f.getId(), at)) f.createGroup(at).close();
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return f.openGroup(path);
}

void write_attr(H5::H5Object& obj, const std::string& name, const ojson& v) {
  const H5::DataSpace scalar(H5S_SCALAR);
  if (v.is_number_integer() || v.is_boolean()) {
    const int64_t x = v.is_boolean() ? int64_t(v.get<bool>()) : v.get<int64_t>();
    obj.createAttribute(name, H5::PredType::NATIVE_INT64, scalar).write(H5::PredType::NATIVE_INT64, &x);
  } else if (v.is_number()) {
    const double x = v.get<double>();
    obj.createAttribute(name, H5::PredType::NATIVE_DOUBLE, scalar).write(H5::PredType::NATIVE_DOUBLE, &x);
  } else {
    const H5::StrType st(H5::PredType::C_S1, H5T_VARIABLE);
    obj.createAttribute(name, st, scalar).write(st, H5std_string(v.is_string() ? v.get<std::string>() : v.dump()));
  }
}

std::string read_attr_text(const H5::H5Object& obj, const std::string& name) {
  H5::Attribute a = obj.openAttribute(name);
  H5std_string s;
  a.read(a.getStrType(), s);
  return s;
}

void write_array(H5::Group& g, const std::string& name, const std::vector<double>& v) {
  if (v.empty()) return;
  const hsize_t n = v.size();
  const H5::DataSpace space(1, &n);
  g.createDataSet(name, H5::PredType::NATIVE_DOUBLE, space).write(v.data(), H5::PredType::NATIVE_DOUBLE);
}

// Applies `change` to a copy of `path` and renames the copy into place (see the header).
template <class F>
void mutate(const fs::path& path, const char* what, F&& change) {
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(getpid());
  fs::copy_file(path, tmp, fs::copy_options::overwrite_existing);
  try {
    h5(path, what, [&] {
      H5::H5File f(tmp.string(), H5F_ACC_RDWR);
      change(f);
      f.flush(H5F_SCOPE_GLOBAL);
      f.close();
      return 0;
    });
  } catch (...) {
    fs::remove(tmp);
    throw;
  }
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd >= 0) ::fsync(fd), ::close(fd);
  fs::rename(tmp, path);
}

std::vector<uint8_t> read_rows(H5::DataSet& ds, const H5::CompType& type, hsize_t& n_rows) {
  ds.getSpace().getSimpleExtentDims(&n_rows);
  std::vector<uint8_t> buf(size_t(n_rows) * type.getSize());
  if (n_rows) ds.read(buf.data(), type);
  return buf;
}

void create_file(const fs::path& path, const ojson& root_attrs, const H5::CompType& row_type) {
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(getpid());
  h5(path, "creating the results file", [&] {
    H5::H5File f(tmp.string(), H5F_ACC_TRUNC);
    for (const auto& [k, v] : root_attrs.items()) write_attr(f, k, v);
    f.createGroup("/runs").close();
    f.createGroup("/raw").close();
    const hsize_t zero = 0, unlimited = H5S_UNLIMITED;
    const H5::DataSpace space(1, &zero, &unlimited);
    H5::DSetCreatPropList plist;
    plist.setChunk(1, &kChunkRows);
    f.createDataSet("points", row_type, space, plist).close();
    f.flush(H5F_SCOPE_GLOBAL);
    f.close();
    return 0;
  });
  fs::rename(tmp, path);
}

ojson root_attrs_of(const Spec& spec) {
  return {{"format", "moelab-results"},
          {"format_version", kResultsFormatVersion},
          {"spec_name", spec.name},
          {"spec_hash", spec.hash},
          {"spec_json", spec.resolved.dump(2)},
          {"created_utc", utc_now()}};
}

}  // namespace

void check_output_writable(const fs::path& path) {
  const std::string p = path.string();
  if (path.empty()) throw SpecError("-o", "", "empty results path");
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw SpecError(p, "", "cannot create the results folder " + dir.string() + ": " + ec.message());
  if (fs::is_directory(path)) throw SpecError(p, "", "is a folder, not a results file");
  const fs::path probe = dir / (".moelab-write-probe-" + std::to_string(getpid()));
  {
    std::ofstream out(probe);
    if (!out) throw SpecError(p, "", "cannot write in " + dir.string() + ": " + std::strerror(errno));
  }
  fs::remove(probe, ec);
  if (fs::exists(path) && ::access(path.c_str(), R_OK | W_OK) != 0)
    throw SpecError(p, "", "exists and is not readable and writable");
}

// Copies left by a sweep killed mid-change (<file>.tmp-<pid> of a dead process).
static void remove_stale_copies(const fs::path& path) {
  std::error_code ec;
  const std::string prefix = path.filename().string() + ".tmp-";
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (!pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos && !fs::exists("/proc/" + pid))
      fs::remove(e.path(), ec);
  }
}

ResultsFile ResultsFile::create(const fs::path& path, const Spec& spec, bool overwrite) {
  remove_stale_copies(path);
  if (fs::exists(path) && !overwrite)
    throw SpecError(path.string(), "", "exists; pass --resume to continue it or --overwrite to replace it");
  create_file(path, root_attrs_of(spec), row_layout().type);
  return ResultsFile(path);
}

ResultsFile ResultsFile::resume(const fs::path& path, const Spec& spec) {
  remove_stale_copies(path);
  if (!fs::exists(path)) return create(path, spec, false);
  const std::string hash = h5(path, "reading spec_hash", [&] {
    H5::H5File f(path.string(), H5F_ACC_RDONLY);
    return read_attr_text(f, "spec_hash");
  });
  if (hash != spec.hash)
    throw SpecError(path.string(), "",
                    "holds results of another spec (hash " + hash + ", this spec is " + spec.hash +
                        "); use another -o, or --overwrite");
  const bool same_layout = h5(path, "reading /points", [&] {
    H5::H5File f(path.string(), H5F_ACC_RDONLY);
    return f.openDataSet("points").getCompType() == row_layout().type;
  });
  if (!same_layout)
    throw SpecError(path.string(), "", "its /points columns differ from this moelab's axis and metric tables");
  return ResultsFile(path);
}

std::set<std::pair<int, int>> ResultsFile::done() const {
  const ResultsTable t = read_points(path_);
  std::set<std::pair<int, int>> out;
  const int p = t.column("point"), r = t.column("repeat");
  for (size_t i = 0; i < t.n_rows; ++i) out.emplace(int(t.num[size_t(p)][i]), int(t.num[size_t(r)][i]));
  return out;
}

int ResultsFile::add_run(const ojson& attrs) {
  int k = 0;
  mutate(path_, "adding a run", [&](H5::H5File& f) {
    H5::Group runs = f.openGroup("/runs");
    k = int(runs.getNumObjs());
    H5::Group g = runs.createGroup(std::to_string(k));
    for (const auto& [name, v] : attrs.items()) write_attr(g, name, v);
  });
  return k;
}

void ResultsFile::append(const ResultRow& row) {
  const std::vector<uint8_t> bytes = encode_row(row);
  mutate(path_, "appending a point", [&](H5::H5File& f) {
    H5::DataSet ds = f.openDataSet("points");
    hsize_t n = 0;
    ds.getSpace().getSimpleExtentDims(&n);
    const hsize_t grown = n + 1, one = 1;
    ds.extend(&grown);
    H5::DataSpace file_space = ds.getSpace();
    file_space.selectHyperslab(H5S_SELECT_SET, &one, &n);
    const H5::DataSpace mem_space(1, &one);
    ds.write(bytes.data(), row_layout().type, mem_space, file_space);
    H5::Group g = group_at(f, "/raw/" + std::to_string(row.point) + "/" + std::to_string(row.repeat));
    write_array(g, "token_latency_ms", row.token_latency_ms);
    write_array(g, "hidden_cosine", row.hidden_cosine);
    write_array(g, "spec_precision", row.spec_precision);
    write_array(g, "spec_recall", row.spec_recall);
  });
}

int ResultsTable::column(std::string_view name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return int(i);
  return -1;
}

std::string ResultsTable::cell(int c, size_t row) const {
  if (is_text[size_t(c)]) return text[size_t(c)][row];
  const double v = num[size_t(c)][row];
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

ResultsTable read_points(const fs::path& path) {
  if (!fs::exists(path)) throw Error(path.string() + ": no such results file");
  return h5(path, "reading /points", [&] {
    H5::H5File f(path.string(), H5F_ACC_RDONLY);
    H5::DataSet ds = f.openDataSet("points");
    const H5::CompType type = ds.getCompType();
    hsize_t n = 0;
    const std::vector<uint8_t> buf = read_rows(ds, type, n);
    const size_t row_size = type.getSize();
    ResultsTable t;
    t.n_rows = size_t(n);
    for (int m = 0; m < type.getNmembers(); ++m) {
      t.names.push_back(type.getMemberName(unsigned(m)));
      const size_t off = type.getMemberOffset(unsigned(m));
      const H5T_class_t cls = type.getMemberClass(unsigned(m));
      const size_t size = type.getMemberDataType(unsigned(m)).getSize();
      t.is_text.push_back(cls == H5T_STRING);
      t.num.emplace_back();
      t.text.emplace_back();
      for (size_t r = 0; r < t.n_rows; ++r) {
        const uint8_t* p = buf.data() + r * row_size + off;
        if (cls == H5T_STRING) {
          t.text.back().emplace_back(reinterpret_cast<const char*>(p), strnlen(reinterpret_cast<const char*>(p), size));
        } else if (cls == H5T_FLOAT && size == 8) {
          double v;
          std::memcpy(&v, p, 8);
          t.num.back().push_back(v);
        } else if (cls == H5T_INTEGER) {
          int64_t v = 0;
          if (size == 1) v = int8_t(*p);
          else if (size == 4) { int32_t x; std::memcpy(&x, p, 4); v = x; }
          else if (size == 8) std::memcpy(&v, p, 8);
          t.num.back().push_back(double(v));
        } else {
          throw Error("column " + t.names.back() + " has a type this reader does not know");
        }
      }
    }
    return t;
  });
}

std::string read_root_attr(const fs::path& path, const std::string& name) {
  return h5(path, ("reading attribute " + name).c_str(), [&] {
    H5::H5File f(path.string(), H5F_ACC_RDONLY);
    return read_attr_text(f, name);
  });
}

std::vector<double> read_raw(const fs::path& path, int point, int repeat, const std::string& name) {
  return h5(path, "reading raw arrays", [&] {
    H5::H5File f(path.string(), H5F_ACC_RDONLY);
    const std::string at = "/raw/" + std::to_string(point) + "/" + std::to_string(repeat) + "/" + name;
    std::vector<double> v;
    if (!exists(f.getId(), "/raw/" + std::to_string(point)) ||
        !exists(f.getId(), "/raw/" + std::to_string(point) + "/" + std::to_string(repeat)) || !exists(f.getId(), at))
      return v;
    H5::DataSet ds = f.openDataSet(at);
    hsize_t n = 0;
    ds.getSpace().getSimpleExtentDims(&n);
    v.resize(size_t(n));
    if (n) ds.read(v.data(), H5::PredType::NATIVE_DOUBLE);
    return v;
  });
}

MergeReport merge_results(const std::vector<fs::path>& inputs, const fs::path& out, bool dedupe) {
  if (inputs.size() < 2) throw SpecError("merge", "", "give at least two results files");
  for (const fs::path& in : inputs)
    if (fs::exists(out) && fs::equivalent(in, out))
      throw SpecError(out.string(), "", "the output is also an input");
  check_output_writable(out);
  MergeReport report;
  fs::path tmp = out;
  tmp += ".tmp-" + std::to_string(getpid());
  h5(out, "merging", [&] {
    H5::H5File first(inputs[0].string(), H5F_ACC_RDONLY);
    const std::string hash = read_attr_text(first, "spec_hash");
    const H5::CompType type = first.openDataSet("points").getCompType();
    const size_t row_size = type.getSize();
    const int run_member = type.getMemberIndex("run");
    const int point_member = type.getMemberIndex("point");
    const int repeat_member = type.getMemberIndex("repeat");
    const size_t run_off = type.getMemberOffset(unsigned(run_member));
    const size_t point_off = type.getMemberOffset(unsigned(point_member));
    const size_t repeat_off = type.getMemberOffset(unsigned(repeat_member));

    H5::H5File dst(tmp.string(), H5F_ACC_TRUNC);
    for (const char* name : {"format", "spec_name", "spec_hash", "spec_json"}) {
      H5::Attribute a = first.openAttribute(name);
      H5std_string s;
      a.read(a.getStrType(), s);
      write_attr(dst, name, s);
    }
    write_attr(dst, "format_version", kResultsFormatVersion);
    write_attr(dst, "created_utc", utc_now());
    std::string sources;
    for (const fs::path& in : inputs) sources += (sources.empty() ? "" : ", ") + in.string();
    write_attr(dst, "merged_from", sources);
    dst.createGroup("/runs").close();
    dst.createGroup("/raw").close();

    std::vector<uint8_t> rows;
    std::map<std::pair<int32_t, int32_t>, std::string> seen;  // (point, repeat) -> file it came from
    int run_base = 0;
    for (const fs::path& in : inputs) {
      H5::H5File src(in.string(), H5F_ACC_RDONLY);
      const std::string h = read_attr_text(src, "spec_hash");
      if (h != hash)
        throw SpecError(in.string(), "", "spec hash " + h + " differs from " + inputs[0].string() + "'s " + hash +
                                             ": only shards of one spec can be merged");
      H5::DataSet ds = src.openDataSet("points");
      if (!(ds.getCompType() == type))
        throw SpecError(in.string(), "", "its /points columns differ from " + inputs[0].string() + "'s");
      H5::Group runs = src.openGroup("/runs");
      const int n_runs = int(runs.getNumObjs());
      for (int k = 0; k < n_runs; ++k) {
        const std::string from = "/runs/" + std::to_string(k), to = "/runs/" + std::to_string(run_base + k);
        if (H5Ocopy(src.getId(), from.c_str(), dst.getId(), to.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
          throw Error("cannot copy " + from);
      }
      hsize_t n = 0;
      std::vector<uint8_t> buf = read_rows(ds, type, n);
      for (hsize_t r = 0; r < n; ++r) {
        uint8_t* row = buf.data() + r * row_size;
        int32_t run, point, repeat;
        std::memcpy(&run, row + run_off, 4);
        std::memcpy(&point, row + point_off, 4);
        std::memcpy(&repeat, row + repeat_off, 4);
        const auto [it, fresh] = seen.emplace(std::pair{point, repeat}, in.string());
        if (!fresh) {
          if (!dedupe)
            throw SpecError(in.string(), "", "point " + std::to_string(point) + " repeat " + std::to_string(repeat) +
                                                 " is also in " + it->second + "; pass --dedupe to keep the first");
          ++report.duplicates_dropped;
          continue;
        }
        run += run_base;
        std::memcpy(row + run_off, &run, 4);
        rows.insert(rows.end(), row, row + row_size);
        const std::string raw = "/raw/" + std::to_string(point) + "/" + std::to_string(repeat);
        if (exists(src.getId(), "/raw/" + std::to_string(point)) && exists(src.getId(), raw)) {
          group_at(dst, "/raw/" + std::to_string(point)).close();
          if (H5Ocopy(src.getId(), raw.c_str(), dst.getId(), raw.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
            throw Error("cannot copy " + raw);
        }
      }
      run_base += n_runs;
    }
    report.rows = rows.size() / row_size;
    report.runs = size_t(run_base);
    const hsize_t n_rows = report.rows, unlimited = H5S_UNLIMITED;
    const H5::DataSpace space(1, &n_rows, &unlimited);
    H5::DSetCreatPropList plist;
    plist.setChunk(1, &kChunkRows);
    H5::DataSet ds = dst.createDataSet("points", type, space, plist);
    if (n_rows) ds.write(rows.data(), type);
    dst.flush(H5F_SCOPE_GLOBAL);
    return 0;
  });
  fs::rename(tmp, out);
  return report;
}

}  // namespace moelab::experiment
