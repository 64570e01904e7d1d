#include "net/loop_turn.h"

#include <catch2/catch.hpp>
#include <memory>

#include "node/node.h"

namespace lattice::net {
namespace {

class SteppingClock final : public server::Clock {
 public:
  int64_t NowMs() const override { return NowUs() / 1000; }
  int64_t NowUs() const override { return now_us; }
  int64_t MonotonicUs() const override { return now_us; }
  int64_t now_us = 1'700'000'000'000'000;
};

std::unique_ptr<server::Node> OpenNode(const server::Clock& clock) {
  Result<std::unique_ptr<server::Node>> node =
      server::Node::Open(server::NodeOptions{.replica = 1}, server::NodeSeams{.clock = clock});
  REQUIRE(node.ok());
  return std::move(*node);
}

TEST_CASE("every batch of a turn ends with one end-of-turn handler", "[net][turn]") {
  asio::io_context io;
  SteppingClock clock;
  std::unique_ptr<server::Node> node = OpenNode(clock);
  LoopTurn turn(io, *node);
  int released = 0;
  turn.AsyncWaitEnd([&released] { ++released; });
  CHECK(node->EndOfBatch());
  CHECK(node->EndOfBatch());
  turn.AsyncWaitEnd([&released] { ++released; });
  CHECK(released == 0);   // nothing leaves before the end of the turn
  CHECK(io.poll() == 1);  // one handler for the whole turn
  CHECK(released == 2);
  io.restart();  // poll() stopped the context once it ran out of work
  CHECK(io.poll() == 0);
}

TEST_CASE("a turn reads the wall clock once", "[net][turn]") {
  asio::io_context io;
  SteppingClock clock;
  std::unique_ptr<server::Node> node = OpenNode(clock);
  const server::Clock& seen = node->server().clock();
  const int64_t first = seen.NowMs();
  clock.now_us += 5'000;
  SECTION("without a turn every read is fresh") { CHECK(seen.NowMs() == first + 5); }
  SECTION("within a turn every read sees the turn's time") {
    LoopTurn turn(io, *node);
    const int64_t turn_ms = seen.NowMs();  // the first read asks for the end of the turn
    clock.now_us += 5'000;
    CHECK(seen.NowMs() == turn_ms);
    CHECK(seen.MonotonicUs() == clock.now_us);  // durations stay real
    CHECK(io.poll() == 1);
    CHECK(seen.NowMs() == turn_ms + 5);  // the next turn reads again
    io.restart();                        // poll() stopped the context once it ran out of work
    CHECK(io.poll() == 1);
    io.restart();
    CHECK(io.poll() == 0);  // an idle loop posts nothing
  }
}

}  // namespace
}  // namespace lattice::net
