#pragma once
// Result<T> carries either a value or an Error, shaped like C++23's std::expected (which GCC 12's
// C++20 mode lacks). It is how every failure caused by the outside world is reported: bad input,
// a misbehaving peer, a full disk. Programmer errors are LATTICE_ASSERT instead. Exceptions never
// cross a library boundary. A Result is a value type; it is as thread-safe as T.

#include <string>
#include <utility>
#include <variant>

#include "lattice/common/assert.h"

namespace lattice {

// An error with a human-readable message. For errors that reach a RESP client the message is
// the exact Valkey error text, prefix included (for example "ERR syntax error").
struct Error {
  std::string message;

  bool operator==(const Error&) const = default;
};

// Wraps an Error so that `return Unexpected("...")` converts into any Result<T>.
struct Unexpected {
  explicit Unexpected(std::string message) : error{std::move(message)} {}
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
