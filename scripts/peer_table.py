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
    med = {}
    for cap in caps:
        for eng in ("moelab", "llama.cpp"):
            rows = [r for r in range(len(p)) if text("mem_cap", r) == cap and text("engine", r) == eng]
            if rows:
                med[cap, eng] = {m: float(np.nanmedian(p[m][rows])) if not np.isnan(p[m][rows]).all() else float("nan")
                                 for m, _, _ in METRICS + [("mem_cap_mb", "", "")]}
                med[cap, eng]["io"] = text("io", rows[0])
    print(f"Machine: {run['host_cpu']}, "
          f"{run['host_cores']} cores, {run['host_ram_mb']} MiB RAM, kernel {run['host_kernel']}; "
          f"model {run['model']}; git {run['git_commit'][:10]}")
    print()
    print("| memory cap | engine | io | " + " | ".join(h for _, h, _ in METRICS) + " |")
    print("|---|---|---|" + "---:|" * len(METRICS))
    for cap in caps:
        cap_txt = cap if cap == "none" else f"{cap} ({med.get((cap, 'moelab'), med.get((cap, 'llama.cpp')))['mem_cap_mb']:.0f} MiB)"
        for eng in ("moelab", "llama.cpp"):
            if (cap, eng) not in med:
                continue
            m = med[cap, eng]
            cells = ["-" if np.isnan(m[k]) else fmt.format(m[k]) for k, _, fmt in METRICS]
            print(f"| {cap_txt} | {eng} | {m['io']} | " + " | ".join(cells) + " |")
        if (cap, "moelab") in med and (cap, "llama.cpp") in med:
            a, b = med[cap, "moelab"], med[cap, "llama.cpp"]
            print(f"| {cap_txt} | **ratio moelab/llama.cpp** | | **{a['decode_tok_s'] / b['decode_tok_s']:.2f}x** | "
                  f"**{a['prefill_tok_s'] / b['prefill_tok_s']:.2f}x** | {a['peak_rss_mb'] / b['peak_rss_mb']:.2f}x | | | |")


if __name__ == "__main__":
    main()
