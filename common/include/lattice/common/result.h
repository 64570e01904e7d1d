#pragma once
// Result<T> carries either a value or an Error, shaped like C++23's std::expected (which GCC 12's
// C++20 mode lacks). It is how every failure caused by the outside world is reported: bad input,
// a misbehaving peer, a full disk. Programmer errors are LATTICE_ASSERT instead. Exceptions never
// cross a library boundary. A Result is a value type; it is as thread-safe as T.

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include "lattice/common/assert.h"

namespace lattice {

// What kind of failure an Error is. The lower layers (crdt/, replication/, store/, cluster/)
// report a code and put only detail in the message; they never phrase a client reply. The
// server chooses Valkey's reply text for a code in one place (ErrorReply, resp/errors.h).
enum class ErrorCode : uint8_t {
  kOther,          // no code of its own: the message says it all (the server's own replies)
  kWrongType,      // the key holds a value of another type
  kNotInteger,     // not an integer, or out of range
  kNotFloat,       // not a valid float
  kNanOrInfinity,  // an increment would produce NaN or infinity
  kNanScore,       // a sorted-set score would become NaN
  kOverflow,       // an integer increment would overflow
  kNoSuchKey,      // the key a write needs does not exist
  kNoSuchField,    // the hash field a write needs does not exist
  kSyntax,         // malformed arguments
  kInvalid,        // a well-formed request that cannot be done; the message says why
  kIo,             // the file system failed
  kCorrupt,        // stored or received bytes that do not decode
};

// An error: a code and a human-readable message (detail for logs, or for kOther and kInvalid
// the whole story).
struct Error {
  ErrorCode code = ErrorCode::kOther;
  std::string message;

  bool operator==(const Error&) const = default;
};

// Wraps an Error so that `return Unexpected(...)` converts into any Result<T>.
struct Unexpected {
  explicit Unexpected(std::string message) : error{ErrorCode::kOther, std::move(message)} {}
  explicit Unexpected(ErrorCode code, std::string detail = {}) : error{code, std::move(detail)} {}
  explicit Unexpected(Error e) : error(std::move(e)) {}
  Error error;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  Result(Unexpected unexpected)                                          // NOLINT: implicit
      : state_(std::in_place_index<1>, std::move(unexpected.error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    LATTICE_ASSERT_MSG(ok(), "value() of a failed Result");
    return std::get<0>(state_);
  }
  const T& value() const& {
    LATTICE_ASSERT_MSG(ok(), "value() of a failed Result");
    return std::get<0>(state_);
  }
  T&& value() && {
    LATTICE_ASSERT_MSG(ok(), "value() of a failed Result");
    return std::get<0>(std::move(state_));
  }
  const Error& error() const {
    LATTICE_ASSERT_MSG(!ok(), "error() of a successful Result");
    return std::get<1>(state_);
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Unexpected unexpected) : error_(std::move(unexpected.error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    LATTICE_ASSERT_MSG(!ok_, "error() of a successful Result");
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace lattice
