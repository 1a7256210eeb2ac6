#include "store/page_cache.h"

#include <fcntl.h>
#include <unistd.h>

namespace moelab::store {

void drop_file_pages(const std::filesystem::path &file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  // Dirty pages survive POSIX_FADV_DONTNEED: a model written moments ago
  // (generated, packed) would otherwise still be read from RAM.
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

}  // namespace moelab::store
