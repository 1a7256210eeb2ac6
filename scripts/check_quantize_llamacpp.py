#!/usr/bin/env python3
"""Every GGUF-native `moelab quantize` preset must give a file llama.cpp loads and runs.

Generates a small f16 model per architecture with `moelab gen`, requantizes it
with each preset, loads the result in llama.cpp (llama-cpp-python, built by
`MOELAB_PEER=1 scripts/setup.sh`) and evaluates a few tokens. Prints one line
per (architecture, preset) and exits non-zero on any failure.

    build/venv/bin/python scripts/check_quantize_llamacpp.py --moelab build/bin/moelab
"""
import argparse, os, subprocess, sys, tempfile
import numpy as np
from llama_cpp import Llama

ARCHS = [("qwen3moe", "qwen3-30b-a3b", ["--layers", "2", "--experts", "8"]),
         ("olmoe", "olmoe-1b-7b", ["--layers", "2", "--experts", "8"]),
         ("mixtral", "mixtral-8x7b", ["--layers", "1", "--experts", "2"]),
         ("qwen2moe", "qwen1.5-moe-a2.7b", ["--layers", "1", "--experts", "4"])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moelab", required=True)
    args = ap.parse_args()
    out = subprocess.run([args.moelab, "quantize", "--list-presets"], check=True, capture_output=True, text=True).stdout
    presets = [line.split()[0] for line in out.splitlines()[1:] if line.split()[1] == "yes"]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for arch, preset_model, flags in ARCHS:
            src = os.path.join(tmp, arch + ".source-f16.gguf")
            subprocess.run([args.moelab, "gen", "--preset", preset_model, *flags, "--vocab", "1024", "--codec", "f16",
                            "-o", src], check=True, stderr=subprocess.DEVNULL)
            for p in presets:
                dst = os.path.join(tmp, f"{arch}.{p}.gguf")
                try:
                    r = subprocess.run([args.moelab, "quantize", src, dst, "--preset", p], capture_output=True,
                                       text=True)
                    if r.returncode != 0:
                        raise RuntimeError(r.stderr.strip().splitlines()[-1])
                    llm = Llama(model_path=dst, n_ctx=64, verbose=False, n_threads=2, logits_all=True)
                    llm.eval([1, 2, 3, 4])
                    ok = np.isfinite(np.array(llm.scores[:4])).all()
                    del llm
                    print(f"{arch:9s} {p:12s} loads in llama.cpp: {'yes' if ok else 'NON-FINITE LOGITS'}")
                    failures += not ok
                except Exception as e:  # noqa: BLE001 - report every failure, keep going
                    print(f"{arch:9s} {p:12s} FAILED: {e}")
                    failures += 1
                if os.path.exists(dst):
                    os.remove(dst)
    print(f"{failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
