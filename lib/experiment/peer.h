// llama.cpp as a peer engine in sweeps (engine = llama.cpp): the point runs
// scripts/peer_llamacpp.py with the project's venv Python (llama-cpp-python,
// built by `MOELAB_PEER=1 scripts/setup.sh`) as a child process, on the same
// GGUF file, the same token ids, threads, n_ctx and n_batch as a moelab point,
// inside the point's memory cgroup when mem_cap is set. Python is only ever a
// peer; moelab's own engine path never runs it. When llama.cpp cannot run the
// sweep stops with an error naming what to install, never falling back to moelab.
//
// io of a llama.cpp point: resident = llama.cpp's default (the file is mmap'd
// and the CPU backend repacks q4_K & co. into interleaved copies in anonymous
// memory, so the weights are resident), mmap = no repacking (llama.cpp's
// --no-repack: every weight is read through the file mapping, as on Metal;
// the regime where a memory cap below the model makes it thrash). The
// store settings ram_budget_mb, cache and drop_pages do not apply (as for
// moelab's io=resident); the other moelab-only axes must keep their defaults.
//
// Metrics of a peer point: decode_tok_s, prefill_tok_s, ttft_ms, latency
// p50/p99, peak_rss_mb (the child's VmHWM), baseline_rss_mb, rss_anon_mb,
// rss_file_mb, wall_s, and cosine_logits, top1_agree, kl_div against the
// sweep's reference. NaN: what only moelab's store knows (resident weights,
// expert cache, bytes read, read rate, io wait, cache hit rate, speculation)
// and cosine_hidden_last (llama.cpp exposes no per-layer hidden states here).
#pragma once

#include <filesystem>
#include <string>

#include "experiment/point.h"

namespace moelab::experiment {

class MemoryCgroup;

// $MOELAB_PEER_PYTHON, else <source>/build/venv/bin/python.
std::filesystem::path peer_python();
// $MOELAB_PEER_SCRIPT, else <source>/scripts/peer_llamacpp.py.
std::filesystem::path peer_script();

// "" when llama.cpp can run as a peer here, else what is missing and how to install it.
std::string llamacpp_unavailable();

// The axis values a llama.cpp point cannot honour: "" when fine, else the axis name; `why` says what is allowed.
std::string llamacpp_unsupported_axis(const AxisValues& values, std::string& why);

PointOutcome run_llamacpp_point(const PointJob& job, MemoryCgroup* cgroup);

}  // namespace moelab::experiment
