#!/usr/bin/env python3
"""Markdown table of a peer sweep (experiments/peer.json): moelab and llama.cpp
side by side per memory cap, medians over repeats, and the ratio moelab/llama.cpp.

    build/venv/bin/python scripts/peer_table.py results/peer.h5
"""
import sys

import h5py
import numpy as np

METRICS = [("decode_tok_s", "decode tok/s", "{:.2f}"), ("prefill_tok_s", "prefill tok/s", "{:.1f}"),
           ("peak_rss_mb", "VmHWM MiB", "{:.0f}"), ("cgroup_peak_mb", "cgroup peak MiB", "{:.0f}"),
           ("cgroup_failcnt", "failcnt", "{:.0f}"), ("cosine_logits", "cosine vs reference", "{:.5f}")]


def main():
    f = h5py.File(sys.argv[1], "r")
    p = f["points"][:]
    run = f["runs/0"].attrs
    text = lambda col, r: p[col][r].decode() if isinstance(p[col][r], bytes) else str(p[col][r])
    caps = sorted({text("mem_cap", r) for r in range(len(p))}, key=lambda c: (c != "none", c))
    med = {}  # (cap, engine, io) -> medians
    for r in range(len(p)):
        med.setdefault((text("mem_cap", r), text("engine", r), text("io", r)), []).append(r)
    for key, rows in med.items():
        med[key] = {m: float(np.nanmedian(p[m][rows])) if not np.isnan(p[m][rows]).all() else float("nan")
                    for m, _, _ in METRICS + [("mem_cap_mb", "", "")]}
    print(f"Machine: {run['host_cpu']}, {run['host_cores']} cores, {run['host_ram_mb'] / 1024:.1f} GiB RAM, "
          f"kernel {run['host_kernel']}; model {run['model']}; git {run['git_commit'][:10]}")
    print()
    print("| memory cap | engine | io | " + " | ".join(h for _, h, _ in METRICS) + " |")
    print("|---|---|---|" + "---:|" * len(METRICS))
    for cap in caps:
        keys = sorted((k for k in med if k[0] == cap), key=lambda k: (k[1] != "moelab", k[2]))
        cap_mb = med[keys[0]]["mem_cap_mb"]
        cap_txt = cap if cap == "none" else f"{cap} ({cap_mb:.0f} MiB)"
        for k in keys:
            m = med[k]
            cells = ["-" if np.isnan(m[c]) else fmt.format(m[c]) for c, _, fmt in METRICS]
            print(f"| {cap_txt} | {k[1]} | {k[2]} | " + " | ".join(cells) + " |")
        ours = [k for k in keys if k[1] == "moelab"]
        for k in keys:
            if k[1] == "moelab" or not ours:
                continue
            a, b = med[ours[0]], med[k]
            print(f"| {cap_txt} | **moelab {ours[0][2]} / llama.cpp {k[2]}** | | **{a['decode_tok_s'] / b['decode_tok_s']:.2f}x** | "
                  f"**{a['prefill_tok_s'] / b['prefill_tok_s']:.2f}x** | {a['peak_rss_mb'] / b['peak_rss_mb']:.2f}x | | | |")

if __name__ == "__main__":
    main()
