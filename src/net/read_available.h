#pragma once
// ReadAvailable reads a plain TCP client socket the way Valkey does on a readable event: one
// recv(2) per batch of input, and no recv that is known to find nothing.
//
// Why: Boost 1.74's async_read_some always tries a speculative recv before it waits in epoll
// (its "try speculative" flag is only cleared at end of stream). A client that waits for its
// reply before it sends again (redis-benchmark -P 1, most applications) is never ready at that
// moment, so every request cost a recv that returned EAGAIN: 2 recv per request against
// Valkey's 1, about 1.2 us of kernel entry each on the benchmark machine. async_wait(wait_read)
// is no cure: a wait that is not speculative re-arms the descriptor with epoll_ctl, one
// syscall for another.
//
// How: the read is an Asio reactor operation of its own (the same machinery async_read_some
// uses) whose recv reports "exhausted" when it left room in the buffer: the socket was drained
// then, so the reactor clears the descriptor's speculative flag and the next read waits for
// epoll's next edge without a recv. Nothing is lost: any data that arrives after that recv
// raises a new edge (the socket is registered edge-triggered), and an edge seen while no read
// was queued sets the flag again, so the next read tries a recv first. A read that filled the
// buffer leaves the flag set (more may be waiting). Completion, cancellation (close) and
// shutdown are the reactor's, as for async_read_some.
//
// Only for the epoll reactor (Linux); elsewhere it is async_read_some. The socket must have
// had one asynchronous operation started on it already (which puts it in the reactor's
// non-blocking mode); until then the read is async_read_some too. Event-loop thread only.

#include <cstddef>

#include "net/asio.h"

namespace lattice::net {

#if defined(BOOST_ASIO_HAS_EPOLL)
namespace read_available_detail {

namespace detail = asio::detail;

// Reaches the socket's reactor state (a protected member of basic_socket).
struct SocketAccess : tcp::socket {
  static auto& Implementation(tcp::socket& socket) {
    return (socket.*&SocketAccess::impl_).get_implementation();
  }
};

template <typename Handler, typename IoExecutor>
class ReadOp : public detail::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(ReadOp);

  ReadOp(detail::socket_type socket, asio::mutable_buffer buffer, Handler& handler,
         const IoExecutor& io_ex)
      : detail::reactor_op(boost::system::error_code(), &ReadOp::Perform, &ReadOp::Complete),
        socket_(socket),
        buffer_(buffer),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  // One recv; "exhausted" when it left room in the buffer (the socket had no more).
  static status Perform(detail::reactor_op* base) {
    auto* op = static_cast<ReadOp*>(base);
    if (!detail::socket_ops::non_blocking_recv1(op->socket_, op->buffer_.data(), op->buffer_.size(),
                                                0, /*is_stream=*/true, op->ec_,
                                                op->bytes_transferred_)) {
      return not_done;
    }
    return op->bytes_transferred_ < op->buffer_.size() ? done_and_exhausted : done;
  }

  // As Asio's own socket operations complete: the handler is moved out and the operation's
  // memory freed before the upcall; no upcall when the scheduler is destroying it (no owner).
  static void Complete(void* owner, detail::operation* base, const boost::system::error_code&,
                       std::size_t) {
    auto* op = static_cast<ReadOp*>(base);
    ptr p = {std::addressof(op->handler_), op, op};
    detail::handler_work<Handler, IoExecutor> work(std::move(op->work_));
    detail::binder2<Handler, boost::system::error_code, std::size_t> call(op->handler_, op->ec_,
                                                                          op->bytes_transferred_);
    p.h = std::addressof(call.handler_);
    p.reset();
    if (owner != nullptr) {
      detail::fenced_block fence(detail::fenced_block::half);
      work.complete(call, call.handler_);
    }
  }

 private:
  detail::socket_type socket_;
  asio::mutable_buffer buffer_;
  Handler handler_;
  detail::handler_work<Handler, IoExecutor> work_;
};

}  // namespace read_available_detail

class ReadAvailable {
 public:
  explicit ReadAvailable(asio::io_context& io)
      : reactor_(asio::use_service<asio::detail::reactor>(io)) {}

  // Completes with (error_code, bytes read), as socket.async_read_some(buffer, token).
  template <typename CompletionToken>
  auto AsyncRead(tcp::socket& socket, asio::mutable_buffer buffer, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(boost::system::error_code, std::size_t)>(
        [this, &socket, buffer](auto handler) { Start(socket, buffer, std::move(handler)); },
        token);
  }

 private:
  template <typename Handler>
  void Start(tcp::socket& socket, asio::mutable_buffer buffer, Handler handler) {
    namespace rd = read_available_detail;
    auto& impl = rd::SocketAccess::Implementation(socket);
    if ((impl.state_ & asio::detail::socket_ops::non_blocking) == 0 || buffer.size() == 0) {
      socket.async_read_some(buffer, std::move(handler));  // sets the reactor's mode
      return;
    }
    using Op = rd::ReadOp<Handler, tcp::socket::executor_type>;
    typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
    p.p = new (p.v) Op(impl.socket_, buffer, handler, socket.get_executor());
    reactor_.start_op(asio::detail::reactor::read_op, impl.socket_, impl.reactor_data_, p.p,
                      /*is_continuation=*/false, /*allow_speculative=*/true);
    p.v = p.p = nullptr;
  }

  asio::detail::reactor& reactor_;
};
#else
class ReadAvailable {
 public:
  explicit ReadAvailable(asio::io_context&) {}
  template <typename CompletionToken>
  auto AsyncRead(tcp::socket& socket, asio::mutable_buffer buffer, CompletionToken&& token) {
    return socket.async_read_some(buffer, std::forward<CompletionToken>(token));
  }
};
#endif

}  // namespace lattice::net
