#!/usr/bin/env bash
# The main job: installs what is missing, builds, generates a small synthetic
# Qwen3-30B-A3B slice (cached), runs experiments/quickstart.json (I/O strategy
# x experts per token x speculation depth under a RAM budget smaller than the
# model), writes results/quickstart.h5 and its PNG plots, and prints the
# summary table. Extra arguments go to `moelab sweep` (e.g. --dry-run).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOELAB_SETUP_VENV=0 "$root/scripts/setup.sh"   # Debian packages only: the quickstart runs no Python
BUILD_TARGETS=moelab_cli "$root/scripts/build.sh"  # the CLI only; scripts/test.sh builds the rest
mkdir -p "$root/results"
cd "$root"
"${BUILD_DIR:-$root/build}/bin/moelab" sweep experiments/quickstart.json -o results/quickstart.h5 --overwrite "$@"
