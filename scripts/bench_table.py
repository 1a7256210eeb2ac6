#!/usr/bin/env python3
"""Markdown table of bench_codecs results: weight GB/s of every codec per shape
and thread count, and its ratio to the same-run memory read bandwidth.

    build/bin/bench_codecs --benchmark_out=results/bench_codecs.json --benchmark_out_format=json
    python3 scripts/bench_table.py results/bench_codecs.json
"""
import json, re, sys
from collections import defaultdict

data = json.load(open(sys.argv[1]))
ctx = data["context"]
rows = defaultdict(dict)
mem = {}
for b in data["benchmarks"]:
    m = re.match(r"(gemv|gather_gemv)/([^/]+)/(.+)/threads:(\d)", b["name"])
    if b["name"].startswith("memread"):
        mem[int(re.search(r"threads:(\d)", b["name"]).group(1))] = b["weight_GBps"]
        continue
    if not m:
        continue
    op, codec, shape, t = m.group(1), m.group(2), m.group(3), int(m.group(4))
    rows[codec][(op + " " + shape, t)] = b["weight_GBps"]
cols = [("gemv 2048x768", 1), ("gemv 768x2048", 1), ("gemv 4096x14336", 1), ("gemv 4096x14336", 2),
        ("gather_gemv 128x8/2048x768", 1), ("gather_gemv 128x8/2048x768", 2)]
print(f"Host: {ctx.get('host_name', '?')}, {ctx.get('num_cpus')} CPUs at {ctx.get('mhz_per_cpu')} MHz, ISA {ctx.get('isa', '?')}; "
      f"same-run memory read {mem.get(1, 0):.1f} GB/s (1 thread), {mem.get(2, 0):.1f} GB/s (2 threads); "
      f"working set {int(ctx.get('working_set_bytes', 0)) >> 20} MiB per case, so weights stream from DRAM.\n")
print("| codec | " + " | ".join(f"{c} {t}T" for c, t in cols) + " | 4096x14336 2T / mem read |")
print("|---|" + "---:|" * (len(cols) + 1))
for codec, r in rows.items():
    cells = [f"{r[k]:.1f}" if k in r else "-" for k in cols]
    big = r.get(("gemv 4096x14336", 2))
    ratio = f"{100 * big / mem[2]:.0f}%" if big and 2 in mem else "-"
    print(f"| {codec} | " + " | ".join(cells) + f" | {ratio} |")
