#!/usr/bin/env python3
"""Render a datasets/hardware profile as Markdown: memory, GEMV per codec, and
the SSD read grid (GB/s by request size and queue depth).

  scripts/hardware_table.py datasets/hardware/this-machine.json
"""
import json, sys

hw = json.load(open(sys.argv[1]))
out = [f"**{hw['name']}** ({hw['id']}). {hw.get('notes', '')}", ""]
cpu = hw["cpu"]
out.append("| quantity | value |")
out.append("| --- | ---: |")
out.append(f"| RAM | {hw['ram_gb']['value']:.1f} GB |")
if "memory_read_gbs_1thread" in cpu:
    out.append(f"| memory read, 1 thread | {cpu['memory_read_gbs_1thread']['value']:.2f} GB/s |")
out.append(f"| memory read, all threads | {cpu['memory_read_gbs']['value']:.2f} GB/s |")
if "gflops" in cpu:
    out.append(f"| q4_k GEMM (64-row batch) | {cpu['gflops']['value']:.1f} GFLOP/s |")
ssd = hw["ssd"]
if "latency_us" in ssd:
    out.append(f"| SSD 4 KiB QD1 latency | {ssd['latency_us']['value']:.0f} us |")
if "page_cache_hit_gbs" in ssd:
    out.append(f"| page-cache hit (buffered 1 MiB preads) | {ssd['page_cache_hit_gbs']['value']:.2f} GB/s |")
out.append("")
if cpu.get("gemv_gbs"):
    names = list(cpu["gemv_gbs"])
    out.append("GEMV GB/s of weights (all threads, working set past the LLC):")
    out.append("")
    out.append("| " + " | ".join(names) + " |")
    out.append("|" + "---:|" * len(names))
    out.append("| " + " | ".join(f"{cpu['gemv_gbs'][n]['value']:.2f}" for n in names) + " |")
    out.append("")
pts = ssd["read"]
sizes = sorted({p["request_kib"] for p in pts})
depths = sorted({p["queue_depth"] for p in pts})
grid = {(p["request_kib"], p["queue_depth"]): p["gbs"] for p in pts}
out.append("SSD random reads, GB/s (O_DIRECT pread; queue depth = threads):")
out.append("")
out.append("| request | " + " | ".join(f"QD{d:g}" for d in depths) + " |")
out.append("|---|" + "---:|" * len(depths))
for s in sizes:
    label = f"{s / 1024:g} MiB" if s >= 1024 else f"{s:g} KiB"
    out.append(f"| {label} | " + " | ".join(f"{grid[(s, d)]:.3f}" if (s, d) in grid else "-" for d in depths) + " |")
print("\n".join(out))
