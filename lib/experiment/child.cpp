#include "experiment/child.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "experiment/mem_cap.h"

namespace moelab::experiment {

namespace {

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w, n -= size_t(w);
  }
}

std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

void make_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
}

// Reads the child's output to EOF, then reaps it.
ChildOutcome collect(pid_t pid, int read_fd) {
  ChildOutcome o;
  o.output = read_all(read_fd);
  ::close(read_fd);
  int status = 0;
  struct rusage ru {};
  while (::wait4(pid, &status, 0, &ru) < 0)
    if (errno != EINTR) throw Error(std::string("waiting for a child process: ") + std::strerror(errno));
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) o.signal = WTERMSIG(status);
  o.maxrss_mb = double(ru.ru_maxrss) / 1024.0;
  return o;
}

}  // namespace

std::string ChildOutcome::failure() const {
  if (signal == SIGKILL)
    return "killed by SIGKILL (under a memory cap: the cgroup's out-of-memory killer; the cap is too small for it)";
  if (signal) return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  if (exit_code != 0) return "exited with status " + std::to_string(exit_code);
  return "";
}

ChildOutcome run_forked(MemoryCgroup* cgroup, const std::function<std::string()>& body) {
  int fds[2];
  make_pipe(fds);
  std::fflush(nullptr);  // buffered output must not be written twice
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]), ::close(fds[1]);
    throw Error(std::string("cannot fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    int code = 0;
    std::string out;
    if (cgroup && ::write(cgroup->procs_fd(), "0", 1) != 1) {
      out = "cannot enter the memory cgroup " + cgroup->path().string() + ": " + std::strerror(errno);
      code = 4;
    } else {
      try {
        out = body();
      } catch (const std::exception& e) {
        out = e.what();
        code = 3;
      }
    }
    write_all(fds[1], out.data(), out.size());
    std::fflush(nullptr);
    ::_exit(code);
  }
  ::close(fds[1]);
  return collect(pid, fds[0]);
}

ChildOutcome run_exec(MemoryCgroup* cgroup, const std::vector<std::string>& argv) {
  if (argv.empty()) throw Error("internal: run_exec without a program");
  std::vector<char*> args;  // built before fork: the child may only call async-signal-safe functions
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int procs_fd = cgroup ? cgroup->procs_fd() : -1;
  int fds[2];
  make_pipe(fds);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]), ::close(fds[1]);
    throw Error(std::string("cannot fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    static const char enter_failed[] = "moelab: cannot enter the memory cgroup\n";
    static const char exec_failed[] = "moelab: cannot execute the peer program\n";
    if (::dup2(fds[1], STDOUT_FILENO) < 0) ::_exit(127);
    if (procs_fd >= 0 && ::write(procs_fd, "0", 1) != 1) {
      write_all(STDERR_FILENO, enter_failed, sizeof enter_failed - 1);
      ::_exit(126);
    }
    ::execv(args[0], args.data());
    write_all(STDERR_FILENO, exec_failed, sizeof exec_failed - 1);
    ::_exit(127);
  }
  ::close(fds[1]);
  return collect(pid, fds[0]);
}

}  // namespace moelab::experiment
