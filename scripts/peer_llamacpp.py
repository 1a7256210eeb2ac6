#!/usr/bin/env python3
"""llama.cpp as a peer engine for one `moelab sweep` point (engine = llama.cpp).

The sweep runs this with build/venv/bin/python as a child process (inside the
point's memory cgroup when mem_cap is set) and passes a request file:

    {"model": PATH, "threads": N, "n_ctx": N, "n_batch": N, "use_mmap": true, "repack": true,
     "stream": [ids: context_tokens + prompt_tokens], "context_tokens": N, "prompt_tokens": N,
     "decode_tokens": N, "repeats": N, "warmup": N, "cold": false,
     "accuracy_stream": [ids], "logits_out": PATH}

It measures the same workload as moelab's run_timed (experiment/measure.cpp):
context fill untimed, prefill of the prompt tokens timed, greedy decode of
decode_tokens steps timed one by one (argmax of the logits, as moelab). Then,
when accuracy_stream is not empty, a teacher-forced pass over it whose logits
([n, n_vocab] float32) go to logits_out for the harness to compare with the
sweep's reference. repack false is llama.cpp's --no-repack (weights read
through the file mapping). One JSON object goes to stdout:

    {"llama_cpp_version": ..., "n_vocab": N, "runs": [{"prefill_tok_s", "decode_tok_s", "ttft_ms",
     "token_latency_ms": [...], "wall_s", "peak_rss_mb", "baseline_rss_mb", "rss_anon_mb", "rss_file_mb"}]}

peak_rss_mb is this process's VmHWM after each repeat, reset just before the
model is loaded (baseline_rss_mb = RSS at that moment: the interpreter and
llama_cpp). Errors: message on stderr, exit status 3; llama_cpp missing: 4.
"""
import json
import os
import sys
import time


def fail(msg, code=3):
    sys.stderr.write("peer_llamacpp: " + msg + "\n")
    sys.exit(code)


def status_mb():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = float(rest.split()[0]) / 1024.0
    return out


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def drop_pages(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main():
    if len(sys.argv) != 2:
        fail("usage: peer_llamacpp.py REQUEST.json", 2)
    # stdout carries the one JSON result; anything llama.cpp prints goes to stderr.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        import numpy as np
        import llama_cpp
        from llama_cpp import Llama
    except ImportError as e:
        fail(f"cannot import llama_cpp ({e}); install it into build/venv with: MOELAB_PEER=1 scripts/setup.sh", 4)

    with open(sys.argv[1]) as f:
        req = json.load(f)
    model, threads = req["model"], int(req["threads"])
    stream = [int(t) for t in req["stream"]]
    n_context, n_prompt, n_decode = int(req["context_tokens"]), int(req["prompt_tokens"]), int(req["decode_tokens"])
    if len(stream) < n_context + n_prompt:
        fail("request stream shorter than context_tokens + prompt_tokens")

    if not req.get("repack", True):
        # llama.cpp's --no-repack: weights stay in the file mapping instead of
        # interleaved copies in anonymous memory. llama-cpp-python has no
        # argument for it, so its default model params are patched.
        import llama_cpp.llama_cpp as low
        default_params = low.llama_model_default_params

        def no_repack_params():
            p = default_params()
            p.use_extra_bufts = False
            return p
        low.llama_model_default_params = no_repack_params

    def load(logits_all):
        llm = Llama(model_path=model, n_ctx=int(req["n_ctx"]), n_batch=int(req["n_batch"]),
                    n_ubatch=int(req["n_batch"]), n_threads=threads, n_threads_batch=threads,
                    use_mmap=bool(req.get("use_mmap", True)), logits_all=logits_all, flash_attn=False,
                    verbose=False)
        return llm

    def eval_in_batches(llm, tokens):
        # llama-cpp-python splits by n_batch itself; one call keeps its bookkeeping simple.
        llm.eval(tokens)

    def greedy(llm):
        # Argmax of the last position's logits, as moelab's run_timed. Without
        # logits_all llama-cpp-python keeps no scores, so read llama.cpp's own.
        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return int(np.argmax(np.ctypeslib.as_array(ptr, shape=(n_vocab,))))

    def timed(llm):
        lat = []
        t_start = time.perf_counter()
        llm.reset()
        if n_context:
            eval_in_batches(llm, stream[:n_context])
        t0 = time.perf_counter()
        eval_in_batches(llm, stream[n_context:n_context + n_prompt])
        t_prefill = time.perf_counter()
        nxt = greedy(llm)
        t_first = time.perf_counter()
        for _ in range(n_decode):
            ts = time.perf_counter()
            llm.eval([nxt])
            nxt = greedy(llm)
            lat.append((time.perf_counter() - ts) * 1e3)
        t_end = time.perf_counter()
        return {"prefill_tok_s": n_prompt / (t_prefill - t0), "decode_tok_s": n_decode / (t_end - t_first),
                "ttft_ms": (t_first - t0) * 1e3, "token_latency_ms": lat, "wall_s": t_end - t_start}

    runs = []
    llm = None
    n_vocab = 0
    baseline = 0.0
    for r in range(int(req["repeats"])):
        if llm is None or req.get("cold"):
            llm = None
            if req.get("cold"):
                drop_pages(model)
            reset_peak()
            baseline = status_mb().get("VmRSS", 0.0)
            try:
                llm = load(False)
            except Exception as e:  # llama-cpp-python raises ValueError when llama.cpp cannot load the file
                fail(f"llama.cpp cannot load {model}: {e}")
            n_vocab = int(llm.n_vocab())
            if not req.get("cold"):
                for _ in range(int(req["warmup"])):
                    timed(llm)
        run = timed(llm)
        s = status_mb()
        run.update({"peak_rss_mb": s.get("VmHWM", float("nan")), "baseline_rss_mb": baseline,
                    "rss_anon_mb": s.get("RssAnon", float("nan")), "rss_file_mb": s.get("RssFile", float("nan"))})
        runs.append(run)
    del llm

    acc = [int(t) for t in req.get("accuracy_stream", [])]
    if acc:
        ref = load(True)
        ref.reset()
        eval_in_batches(ref, acc)
        np.asarray(ref.scores[:len(acc)], dtype=np.float32).tofile(req["logits_out"])
        del ref

    out = {"llama_cpp_version": getattr(llama_cpp, "__version__", "?"), "n_vocab": n_vocab, "runs": runs}
    os.write(result_fd, json.dumps(out).encode())
    os.close(result_fd)


if __name__ == "__main__":
    main()
