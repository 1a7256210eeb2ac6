// A model's identity: what a file made for one model (a KV session, an expert
// pack) records so that it is never applied to another one.
#pragma once

#include <string>

#include "gguf/gguf.h"

namespace moelab::model {

// 32 hex digits: two XXH64 digests (seeds 0 and 1) of
//   - the GGUF header, metadata and tensor-info records (names, shapes, types,
//     offsets): bytes [0, data_offset) of the file, and
//   - the first 4 KiB of every tensor's data (so two fine-tunes with the same
//     metadata and layout differ; one page per tensor keeps this cheap for a
//     model streamed from SSD).
// Two files differ in identity whenever their hyper-parameters, vocabulary,
// tensor codecs, layout or weights (to that sample) differ.
std::string model_identity(const gguf::File& file);

}  // namespace moelab::model
