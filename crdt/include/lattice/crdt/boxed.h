#pragma once
// Boxed<T>: an optional T held out of line behind one pointer, with value semantics (deep copy,
// deep equality; null equals a default-constructed T). CRDT states use it for parts that most
// keys never need (concurrent writes, counter state, expiry), so the common case pays 8 bytes.
// Not thread-safe.

#include <memory>

namespace lattice::crdt {

template <typename T>
class Boxed {
 public:
  Boxed() = default;
  Boxed(const Boxed& other) : ptr_(other.ptr_ ? std::make_unique<T>(*other.ptr_) : nullptr) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& other) {
    if (this != &other) {
      ptr_ = other.ptr_ ? std::make_unique<T>(*other.ptr_) : nullptr;
    }
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;

  const T* get() const { return ptr_.get(); }
  T* get() { return ptr_.get(); }
  T& Mutable() {
    if (!ptr_) {
      ptr_ = std::make_unique<T>();
    }
    return *ptr_;
  }
  void Reset() { ptr_.reset(); }
  // Drops the box when its content became empty (T::empty()).
  void Normalize() {
    if (ptr_ && ptr_->empty()) {
      ptr_.reset();
    }
  }

  friend bool operator==(const Boxed& a, const Boxed& b) {
    if (a.ptr_ && b.ptr_) {
      return *a.ptr_ == *b.ptr_;
    }
    static const T kEmpty{};
    return (a.ptr_ ? *a.ptr_ : kEmpty) == (b.ptr_ ? *b.ptr_ : kEmpty);
  }

 private:
  std::unique_ptr<T> ptr_;
};

}  // namespace lattice::crdt
