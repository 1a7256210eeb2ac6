#!/usr/bin/env python3
"""Side-by-side decode and prefill throughput: moelab vs llama.cpp on the same GGUF.

Both engines run in this process's machine, one after the other, with the same
thread count, the same prompt tokens and greedy decoding; the ratio is printed.
llama.cpp runs through llama-cpp-python (built by `MOELAB_PEER=1 scripts/setup.sh`,
AMX off). One run each unless --repeats; medians are reported.

    build/venv/bin/python scripts/bench_vs_llamacpp.py --moelab build/bin/moelab MODEL.gguf [MODEL2.gguf ...]
"""
import argparse, re, statistics, subprocess, time
from llama_cpp import Llama

PROMPT = ("The history of computing is a story of abstraction. Early machines were programmed by rewiring panels; "
          "later, stored programs let the same hardware run many tasks.")


def run_moelab(moelab, model, n, threads):
    r = subprocess.run([moelab, "run", "-m", model, "-p", PROMPT, "-n", str(n), "-t", str(threads)],
                       check=True, capture_output=True, text=True)
    prefill = float(re.search(r"prefill ([0-9.]+) tok/s", r.stderr).group(1))
    decode = float(re.search(r"decode \d+ tokens, ([0-9.]+) tok/s", r.stderr).group(1))
    return prefill, decode


def run_llamacpp(model, n, threads):
    llm = Llama(model_path=model, n_ctx=1024, n_batch=512, n_threads=threads, n_threads_batch=threads,
                verbose=False, flash_attn=False)
    tokens = llm.tokenize(PROMPT.encode(), add_bos=True, special=True)
    t0 = time.perf_counter()
    llm.eval(tokens)
    t1 = time.perf_counter()
    decoded = 0
    for _ in range(n - 1):  # as `moelab run`: the last sampled token is not evaluated
        tok = llm.sample(temp=0.0)
        llm.eval([tok])
        decoded += 1
    t2 = time.perf_counter()
    return len(tokens) / (t1 - t0), decoded / (t2 - t1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moelab", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    print(f"| model | engine | prefill tok/s | decode tok/s |  ({a.threads} threads, {a.n} tokens, median of {a.repeats})")
    print("|---|---|---:|---:|")
    for m in a.models:
        ours = [run_moelab(a.moelab, m, a.n, a.threads) for _ in range(a.repeats)]
        peer = [run_llamacpp(m, a.n, a.threads) for _ in range(a.repeats)]
        op, od = statistics.median(x[0] for x in ours), statistics.median(x[1] for x in ours)
        lp, ld = statistics.median(x[0] for x in peer), statistics.median(x[1] for x in peer)
        name = m.rsplit("/", 1)[-1]
        print(f"| {name} | moelab | {op:.1f} | {od:.2f} |")
        print(f"| {name} | llama.cpp | {lp:.1f} | {ld:.2f} |")
        print(f"| {name} | ratio moelab/llama.cpp | {op / lp:.2f}x | {od / ld:.2f}x |")


if __name__ == "__main__":
    main()
