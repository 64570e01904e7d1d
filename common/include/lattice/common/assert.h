#pragma once
// Always-on assertions for programmer errors (TigerBeetle/FoundationDB style): they stay enabled
// in release builds, print file:line and the failed condition, and abort. Failures caused by the
// outside world (bad client input, a misbehaving peer, a full disk) are never asserted: they are
// returned as Result<T>. Thread-safe: the failure path only writes to stderr and aborts.

#include <cstdio>
#include <cstdlib>

namespace lattice::detail {

[[noreturn]] inline void AssertFail(const char* condition, const char* message, const char* file,
                                    int line) {
  std::fprintf(stderr, "%s:%d: assertion failed: %s%s%s\n", file, line, condition,
               message[0] != '\0' ? ": " : "", message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace lattice::detail

#define LATTICE_ASSERT(condition)                                        \
  do {                                                                   \
    if (!(condition)) [[unlikely]] {                                     \
      ::lattice::detail::AssertFail(#condition, "", __FILE__, __LINE__); \
    }                                                                    \
  } while (false)

#define LATTICE_ASSERT_MSG(condition, message)                                  \
  do {                                                                          \
    if (!(condition)) [[unlikely]] {                                            \
      ::lattice::detail::AssertFail(#condition, (message), __FILE__, __LINE__); \
    }                                                                           \
  } while (false)
