#include "net/busy_period.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "net/loop_turn.h"
#include "node/node.h"

namespace lattice::net {
namespace {

// Moves 1 ms at every read, so a looping script passes busy-reply-threshold quickly.
class MovingClock final : public server::Clock {
 public:
  int64_t NowMs() const override { return NowUs() / 1000; }
  int64_t NowUs() const override { return now_us += 1000; }
  int64_t MonotonicUs() const override { return NowUs(); }
  mutable int64_t now_us = 1'700'000'000'000'000;
};

std::string Run(server::Server& server, server::ClientState& client,
                std::vector<std::string> args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  std::string out;
  server::ReplyBuilder reply(&out);
  server.Execute(client, views, reply);
  return out;
}

TEST_CASE("a busy script serves posted handlers but the end of the turn waits for it",
          "[net][busy]") {
  asio::io_context io;  // as lattice-server's (src/main.cc: not the one-thread mode)
  MovingClock clock;
  Result<std::unique_ptr<server::Node>> opened =
      server::Node::Open(server::NodeOptions{.replica = 1}, server::NodeSeams{.clock = clock});
  REQUIRE(opened.ok());
  server::Node& node = **opened;
  server::Server& server = node.server();
  LoopTurn turn(io, node);
  BusyPeriod busy(io, node);
  server::ClientState runner, other;
  runner.id = server.NextClientId();
  other.id = server.NextClientId();
  server.RegisterClient(&runner);
  server.RegisterClient(&other);
  REQUIRE(Run(server, runner, {"CONFIG", "SET", "busy-reply-threshold", "20"}) == "+OK\r\n");
  io.poll();  // the end of the turn CONFIG SET asked for
  io.restart();

  std::string script_reply;
  asio::post(io, [&] {
    script_reply = Run(server, runner, {"EVAL", "local i = 0 while true do i = i + 1 end", "0"});
  });
  bool turn_ended = false;
  turn.AsyncWaitEnd([&] { turn_ended = true; });  // posts the end of the turn behind the script
  std::vector<std::string> seen;
  bool ended_before_kill = true;
  bool ticked = false;
  asio::post(io, [&] {  // runs from the script's poll hook
    CHECK(node.busy());
    ended_before_kill = turn_ended;
    PostWhenNotBusy(io.get_executor(), node, [&] { ticked = true; });
    seen.push_back(Run(server, other, {"PING"}));
    seen.push_back(Run(server, other, {"SCRIPT", "KILL"}));
    CHECK_FALSE(ticked);
  });
  io.poll();
  CHECK(script_reply.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "));
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] ==
        "-BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN "
        "NOSAVE.\r\n");
  CHECK(seen[1] == "+OK\r\n");
  CHECK_FALSE(ended_before_kill);  // the end of the turn did not run inside the script
  io.restart();
  io.poll();  // the deferred work runs after the script
  CHECK(turn_ended);
  CHECK(ticked);
  CHECK_FALSE(node.busy());
  CHECK(Run(server, other, {"PING"}) == "+PONG\r\n");
  server.UnregisterClient(&runner);
  server.UnregisterClient(&other);
}

}  // namespace
}  // namespace lattice::net
