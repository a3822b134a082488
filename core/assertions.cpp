#include "core/assertions.h"

#include <cstdio>
#include <cstdlib>

namespace mks::assert_detail {

void Fail(const char* file, int line, const char* expression,
          const std::string& detail) {
  // stderr is the one stream every deployment keeps; flushing before abort
  // makes sure the reason survives the crash.
  if (detail.empty()) {
    std::fprintf(stderr, "assertion failed at %s:%d: %s\n", file, line,
                 expression);
  } else {
    std::fprintf(stderr, "assertion failed at %s:%d: %s (%s)\n", file, line,
                 expression, detail.c_str());
  }
  std::fflush(stderr);
  std::abort();
}

}  // namespace mks::assert_detail
