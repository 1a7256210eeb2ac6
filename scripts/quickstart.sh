#!/usr/bin/env bash
# The main job: installs what is missing, builds, and prints the `moelab codecs`
# table (storage cost, round-trip error on Gaussian and heavy-tailed matrices,
# GEMV GB/s beside this machine's memory read bandwidth).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
mkdir -p "$root/results"
"${BUILD_DIR:-$root/build}/bin/moelab" codecs --markdown "$root/results/codecs.md" "$@"
