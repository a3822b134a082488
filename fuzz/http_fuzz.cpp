// Feeds arbitrary bytes to the HTTP request parser in arbitrary pieces.
//
// Checks, beyond "no crash, no sanitizer report": limits hold for every
// request that comes out, an error always names a 4xx status, and the
// parser's buffer never holds more than it was fed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/assertions.h"
#include "net/http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece_bytes = size_t{data[0]} + 1;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  mks::net::http::Limits limits;
  limits.max_header_bytes = 512;
  limits.max_body_bytes = 256;
  mks::net::http::RequestParser parser(limits);
  for (size_t offset = 0; offset < input.size(); offset += piece_bytes) {
    parser.Feed(input.substr(offset, piece_bytes));
    MKS_ASSERT_LE(parser.buffered_bytes(), input.size());
    for (;;) {
      mks::Result<std::optional<mks::net::http::Request>> next = parser.Next();
      if (!next.ok()) {
        MKS_ASSERT(parser.error_status() >= 400 && parser.error_status() < 500);
        return 0;
      }
      if (!next->has_value()) break;
      const mks::net::http::Request& request = **next;
      MKS_ASSERT_LE(request.body.size(), limits.max_body_bytes);
      MKS_ASSERT(!request.method.empty());
      MKS_ASSERT(request.version == 10 || request.version == 11);
      MKS_ASSERT_LE(request.target.size(), limits.max_header_bytes);
    }
  }
  return 0;
}
