#!/usr/bin/env bash
# Configure and build moelab (after scripts/setup.sh). Idempotent and incremental.
#   BUILD_DIR=build-asan CMAKE_FLAGS="-DMOELAB_SANITIZE=ON" scripts/build.sh   (scripts/test.sh uses clang: build-san)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
jobs="${JOBS:-$(nproc)}"
# ccache, where installed, lets several checkouts (worktrees, CI clones) share compiled objects.
launcher=""
if command -v ccache >/dev/null; then launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache"; fi
# shellcheck disable=SC2086
cmake -S "$root" -B "$build" -G Ninja $launcher -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" ${CMAKE_FLAGS:-} >/dev/null
# BUILD_TARGETS="moelab_cli" builds only those targets (the quickstart needs only the CLI).
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" ${BUILD_TARGETS:+--target $BUILD_TARGETS}
