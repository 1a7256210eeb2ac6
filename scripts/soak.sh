#!/usr/bin/env bash
# Soak: 10,000 decode tokens streamed from disk under a RAM budget, RSS sampled
# every 100 tokens; prints RSS growth between token 1,000 and the last sample.
#   scripts/soak.sh [tokens=10000] [io=direct] [budget_mb=0.5]
# A small synthetic qwen3moe (2 layers, 16 experts of 256x256 q4_k: 110 KiB each)
# keeps the run to about a minute on 2 cores; a 0.5 MiB budget holds 4 of the
# 8 experts a token needs, so with LRU every acquisition reads from disk.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
tokens="${1:-10000}" io="${2:-direct}" budget="${3:-0.5}"
work="$build/soak"
mkdir -p "$work"
cat > "$work/soak-qwen3moe.json" <<JSON
{"name": "soak-qwen3moe", "source": "moelab soak (synthetic)", "arch": "qwen3moe",
 "n_vocab": 512, "n_embd": 256, "n_layer": 2, "n_head": 4, "n_head_kv": 2, "head_dim": 64, "n_ff": 512,
 "n_expert": 16, "n_expert_used": 4, "n_ff_exp": 256, "n_ff_shexp": 0, "rope_freq_base": 10000.0,
 "rms_eps": 1e-6, "context_length": 16384}
JSON
[ -f "$work/soak.gguf" ] || "$build/bin/moelab" gen --preset "$work/soak-qwen3moe.json" --codec q4_k --seed 3 -o "$work/soak.gguf" >/dev/null
"$build/bin/moelab" run -m "$work/soak.gguf" -p "soak" -n "$tokens" --ctx $((tokens + 64)) --ignore-eos \
  --io "$io" --budget-mb "$budget" --cache lru --rss-log "$work/rss.csv" --rss-every 100 >/dev/null 2>"$work/run.log"
grep -E "^run: decode" "$work/run.log"
python3 - "$work/rss.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
at = {int(r["decoded_tokens"]): r for r in rows}
first = at.get(1000) or rows[min(9, len(rows) - 1)]
last = rows[-1]
a, b = float(first["vm_rss_mb"]), float(last["vm_rss_mb"])
print(f"soak: VmRSS {a:.2f} MiB at token {first['decoded_tokens']}, {b:.2f} MiB at token {last['decoded_tokens']}: "
      f"growth {100 * (b - a) / a:+.3f}% (VmHWM {float(last['vm_hwm_mb']):.2f} MiB, RssAnon {float(last['rss_anon_mb']):.2f}, "
      f"RssFile {float(last['rss_file_mb']):.2f}; {len(rows)} samples in {sys.argv[1]})")
sys.exit(0 if (b - a) / a < 0.01 else 1)
PY
