// `moelab calibrate`: measures this machine's hardware profile and writes it
// as datasets/hardware/<id>.json (the format lib/perfmodel/hardware.h reads).
#include <cstdio>
#include <fstream>

#include "commands.h"
#include "core/error.h"
#include "perfmodel/calibrate.h"

namespace moelab::cli {

int run_calibrate(const CalibrateOptions& opts) {
  perfmodel::CalibrateOptions c;
  c.scratch_dir = opts.scratch_dir;
  c.file_bytes = size_t(opts.file_mb) << 20;
  c.seconds_per_point = opts.seconds_per_point;
  c.threads = opts.threads;
  c.id = opts.id;
  c.note = opts.note;
  c.progress = [](const std::string& line) { std::fprintf(stderr, "calibrate: %s\n", line.c_str()); };
  const perfmodel::HardwareProfile hw = perfmodel::calibrate(c);
  const std::filesystem::path out =
      opts.output.empty() ? perfmodel::hardware_dir() / (opts.id + ".json") : std::filesystem::path(opts.output);
  if (out.stem() != opts.id)
    throw Error(out.string() + ": the file name must be the profile id ('" + opts.id + "'); pass --id");
  std::ofstream f(out);
  if (!f) throw Error(out.string() + ": cannot write");
  f << perfmodel::to_json(hw).dump(2) << "\n";
  if (!f) throw Error(out.string() + ": write failed");
  perfmodel::load_hardware_file(out);  // what we wrote must read back
  std::printf("wrote %s\n", out.string().c_str());
  return 0;
}

}  // namespace moelab::cli
