#!/usr/bin/env bash
# Installs everything moelab needs: Debian packages for the product, and a
# Python virtualenv under the build folder for oracles and peers only (never
# on the engine's run path). Idempotent: quick when nothing is missing.
#
#   scripts/setup.sh            product packages + venv (gguf, numpy, h5py; pandas, matplotlib, nbclient for the notebook)
#   MOELAB_PEER=1 scripts/setup.sh   also builds llama-cpp-python (slow, ~10 min)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOELAB_BUILD:-$root/build}"

debian_packages=(
  build-essential cmake ninja-build pkg-config git
  libeigen3-dev nlohmann-json3-dev libhdf5-dev libboost-iostreams-dev libboost-filesystem-dev
  libgnuplot-iostream-dev gnuplot-nox hdf5-tools libbenchmark-dev libgtest-dev liburing-dev libcli11-dev libhwy-dev
  clang libclang-rt-14-dev clang-format python3-venv python3-pip
  slurm-wlm munge  # only for `moelab slurm` and its test (scripts/slurm-local.sh)
)
missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# MOELAB_SETUP_VENV=0 skips the Python virtualenv (the quickstart needs none).
if [ "${MOELAB_SETUP_VENV:-1}" = 1 ]; then
  # Oracle / peer virtualenv. Python is used only to prove bit-exactness against
  # llama.cpp's own gguf package and to run llama.cpp as a peer.
  venv="$build/venv"
  if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating oracle virtualenv at $venv" >&2
    python3 -m venv "$venv"
  fi
  py="$venv/bin/python"
  # pandas, matplotlib, nbclient and ipykernel run notebooks/explore.ipynb (its test executes it).
  "$py" -c "import gguf, numpy, h5py, pandas, matplotlib, nbclient, nbformat, ipykernel" 2>/dev/null || {
    echo "setup: installing gguf, numpy, h5py, pandas, matplotlib, nbclient, ipykernel into $venv" >&2
    "$py" -m pip install -q --disable-pip-version-check gguf numpy h5py pandas matplotlib nbclient nbformat ipykernel
  }
  if [ "${MOELAB_PEER:-0}" = 1 ]; then
    "$py" -c "import llama_cpp" 2>/dev/null || {
      # AMX stays off (its AMX kernels crashed with an illegal instruction on
      # Intel hosts here); AVX-512 only where this CPU has it, since a
      # non-native build with AVX-512 on an AVX2-only CPU dies with SIGILL.
      isa="-DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
      if grep -qw avx512f /proc/cpuinfo; then isa="$isa -DGGML_AVX512=ON"; fi
      if grep -qw avx512_vnni /proc/cpuinfo; then isa="$isa -DGGML_AVX512_VNNI=ON"; fi
      echo "setup: building llama-cpp-python (llama.cpp from source: $isa, AMX off)" >&2
      CMAKE_ARGS="-DGGML_NATIVE=OFF $isa -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
        "$py" -m pip install -q --disable-pip-version-check llama-cpp-python
    }
  fi
fi
echo "setup: ok" >&2
