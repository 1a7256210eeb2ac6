#!/usr/bin/env bash
# Runs a command in a child of this process's own cgroup-v1 memory cgroup whose
# memory.limit_in_bytes caps RSS + page cache, so buffered and mmap expert I/O
# are measured with the page cache under control (not the whole host's RAM).
#   scripts/run_in_memory_cgroup.sh LIMIT_MB "FILE [FILE...]" command args...
# The files' cached pages are dropped first (POSIX_FADV_DONTNEED) so that their
# pages are read, and charged, inside the child. Prints the cgroup's peak usage
# and failcnt (how often the limit forced reclaim). Needs write access to the
# memory cgroup (root in this VM).
set -euo pipefail
limit_mb=$1 files=$2
shift 2
parent=/sys/fs/cgroup/memory$(grep ':memory:' /proc/self/cgroup | cut -d: -f3)
cg=$parent/moelab-$$
mkdir "$cg"
trap 'echo $$ > "$parent/cgroup.procs"; rmdir "$cg"' EXIT
echo $((limit_mb * 1024 * 1024)) > "$cg/memory.limit_in_bytes"
for f in $files; do
  python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)" "$f"
done
echo $$ > "$cg/cgroup.procs"
"$@"
echo "cgroup: limit ${limit_mb} MiB, max_usage $(( $(cat "$cg/memory.max_usage_in_bytes") / 1048576 )) MiB, failcnt $(cat "$cg/memory.failcnt")"
