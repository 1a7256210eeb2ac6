#!/usr/bin/env python3
"""Fit each engine's layer_overhead_us in a datasets/published file on its one
row marked "calibration": true, and write the value back with its source.

The model's time per token is compute + exposed I/O + n_layer x overhead; the
fit solves 1 / published = (total_s - n_layer x current overhead) + n_layer x
overhead for overhead. Every other row of that engine is then a held-out test.

  scripts/fit_engine_overheads.py datasets/published/kandiga.json [--moelab build/bin/moelab]
"""
import argparse, json, subprocess, sys, tempfile, os

ap = argparse.ArgumentParser()
ap.add_argument("published")
ap.add_argument("--moelab", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin", "moelab"))
args = ap.parse_args()

doc = json.load(open(args.published))
engines = doc.get("engines", {})
if not engines:
    sys.exit(f"{args.published}: no engines table")
with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
    subprocess.run([args.moelab, "reproduce", args.published, "--json", tmp.name], check=True, stdout=subprocess.DEVNULL)
    rows = json.load(open(tmp.name))

for name in engines:
    cal = [r for r in rows if r["engine"] == name and r["calibration"]]
    if len(cal) != 1:
        sys.exit(f"{args.published}: engine '{name}' needs exactly one calibration row, found {len(cal)}")
    r = cal[0]
    if r["metric"] != "decode_tok_s":
        sys.exit(f"{args.published}: calibration row {r['id']} must be a decode row")
    base_s = r["total_s"] - r["n_layer"] * r["engine_layer_overhead_us"] * 1e-6
    overhead_us = max(0.0, (1.0 / r["published"] - base_s) / r["n_layer"] * 1e6)
    engines[name]["layer_overhead_us"] = {
        "value": round(overhead_us, 1),
        "source": f"fitted by scripts/fit_engine_overheads.py on row {r['id']} "
                  f"(published {r['published']} tok/s; model without it {1.0 / base_s:.3g} tok/s, {r['n_layer']} layers)",
    }
    print(f"{name}: {overhead_us:.1f} us per layer (fitted on {r['id']})")

# Rewrite only each engine's one-line layer_overhead_us entry (in table order),
# keeping the file's hand formatting.
text = open(args.published).read()
lines = text.split("\n")
names = iter(engines)
for i, line in enumerate(lines):
    if '"layer_overhead_us":' in line:
        name = next(names)
        indent = line[: len(line) - len(line.lstrip())]
        lines[i] = indent + '"layer_overhead_us": ' + json.dumps(engines[name]["layer_overhead_us"], ensure_ascii=False)
with open(args.published, "w") as f:
    f.write("\n".join(lines))
json.load(open(args.published))  # still valid JSON
