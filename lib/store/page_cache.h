// Dropping a file's pages from the page cache, so the next read comes from
// storage (cold starts in sweeps and benchmarks).
#pragma once

#include <filesystem>

namespace moelab::store {

// Flushes the file's dirty pages, then asks the kernel to drop its cached
// pages. Best effort: a file that cannot be opened is left alone (its reads
// then fail with a clear error where they happen).
void drop_file_pages(const std::filesystem::path &file);

}  // namespace moelab::store
