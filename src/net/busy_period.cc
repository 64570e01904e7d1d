#include "net/busy_period.h"

#include <cstdlib>
#include <utility>

#include "spdlog/spdlog.h"

namespace lattice::net {

asio::awaitable<void> AwaitNotBusy(server::Node& node) {
  while (node.busy()) {
    asio::steady_timer ended(co_await asio::this_coro::executor,
                             asio::steady_timer::time_point::max());
    node.AfterBusy([&ended] { ended.cancel(); });  // cancel posts the wait's completion
    boost::system::error_code ec;
    co_await ended.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void PostWhenNotBusy(const asio::any_io_executor& executor, server::Node& node,
                     std::function<void()> work) {
  if (!node.busy()) {
    asio::post(executor, std::move(work));
    return;
  }
  node.AfterBusy(
      [executor, work = std::move(work)]() mutable { asio::post(executor, std::move(work)); });
}

BusyPeriod::BusyPeriod(asio::io_context& io, server::Node& node) : io_(io), node_(node) {
  node_.server().scripting().set_poll_hook([this] { Poll(); });
}

BusyPeriod::~BusyPeriod() { node_.server().scripting().set_poll_hook(nullptr); }

void BusyPeriod::Poll() {
  {
    // Work outstanding during the poll: a poll that runs out of handlers would otherwise stop
    // the context (and the outer run() would return), so only an explicit stop() stops it here.
    auto work = asio::make_work_guard(io_);
    io_.poll();
  }
  if (!io_.stopped()) return;
  // SHUTDOWN NOSAVE (or a signal) while the script runs: the stop handler closed the listeners
  // and the clients. Nothing of this turn was written to the op log, sent or acknowledged, so
  // leaving now loses no acknowledged write, and the script's partial effects stay unlogged.
  spdlog::warn("Exiting while a script is busy: the script does not finish");
  spdlog::info("Lattice is now ready to exit, bye bye...");
  spdlog::default_logger()->flush();
  std::_Exit(0);
}

}  // namespace lattice::net
