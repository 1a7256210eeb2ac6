// Child processes for sweep points that must not run inside the sweep
// process: a point under a memory cap (its own cgroup, so an out-of-memory
// kill takes the child, not the sweep) and peer engines (another program).
// Both report through a pipe; the parent waits and reads the child's rusage.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace moelab::experiment {

class MemoryCgroup;

struct ChildOutcome {
  std::string output;    // what the child wrote to its result pipe (run_forked) or stdout (run_exec)
  int exit_code = -1;    // -1 when a signal ended it
  int signal = 0;        // the signal that ended it, else 0
  double maxrss_mb = 0;  // ru_maxrss of the child
  // "" when it exited 0, else "exited with status N" / "killed by signal N (SIGKILL: ...)".
  std::string failure() const;
};

// Forks; the child enters `cgroup` (when not null), runs `body` and writes the
// string it returns to a pipe, then _exits without running atexit handlers
// (the parent's HDF5 file stays untouched). An exception in `body` becomes
// exit status 3 with its message as the output.
ChildOutcome run_forked(MemoryCgroup* cgroup, const std::function<std::string()>& body);

// Forks and execs argv[0] (a path) with stdout to a pipe and stderr inherited;
// the child enters `cgroup` (when not null) before exec.
ChildOutcome run_exec(MemoryCgroup* cgroup, const std::vector<std::string>& argv);

}  // namespace moelab::experiment
