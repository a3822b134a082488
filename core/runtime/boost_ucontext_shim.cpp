// The ucontext back end of Boost.Context, completed for sanitizer builds.
//
// AddressSanitizer cannot follow the assembly (fcontext) fiber switches that
// Debian's Boost.Context uses, so sanitizer builds compile Boost's headers
// with BOOST_USE_UCONTEXT and BOOST_USE_ASAN. Those headers declare the
// per-thread "current activation record" and its initializer, which a Boost
// library built for ucontext would define; Debian's library is built for
// fcontext and lacks them. This file defines them. It is compiled only in
// sanitizer builds (see meson.build).
#if !defined(BOOST_USE_UCONTEXT)
#error "boost_ucontext_shim.cpp is only for BOOST_USE_UCONTEXT builds"
#endif

#include <cassert>  // Boost.Context 1.74 uses assert() without including it
#include <boost/context/fiber.hpp>
#include <cstddef>

namespace boost::context::detail {
namespace {

// The record of the thread's original (non-fiber) context, created on first
// use and deleted when the last user goes away. Zero-initialized per thread.
thread_local fiber_activation_record* current_record = nullptr;
thread_local std::size_t initializer_count = 0;

}  // namespace

fiber_activation_record_initializer::fiber_activation_record_initializer() noexcept {
  if (initializer_count++ == 0) current_record = new fiber_activation_record();
}

fiber_activation_record_initializer::~fiber_activation_record_initializer() {
  if (--initializer_count == 0) {
    delete current_record;
    current_record = nullptr;
  }
}

fiber_activation_record*& fiber_activation_record::current() noexcept {
  thread_local fiber_activation_record_initializer initializer;
  return current_record;
}

}  // namespace boost::context::detail
