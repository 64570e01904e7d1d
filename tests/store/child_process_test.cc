// ForkChildProcesses with real processes: a child sees the state of the fork's moment while the
// parent changes its own, its result (or error) comes back through Poll, a child killed or dying
// without a result is reported as such, and Kill ends and reaps one that would run on.

#include "store/child_process.h"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

namespace lattice::server {
namespace {

// Polls until the child ended, at most 10 s.
Result<std::string> WaitFor(ChildProcesses& children, int64_t child) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::optional<Result<std::string>> ended = children.Poll(child)) return *ended;
    ::usleep(1000);  // polling a process with a bounded timeout, not synchronising on a sleep
  }
  FAIL("the child did not end within 10 s");
  return Unexpected("timeout");
}

TEST_CASE("fork children: the state at the fork, the result through Poll", "[fork]") {
  ForkChildProcesses children;
  std::string state = "at the fork";
  Result<int64_t> child = children.Start([&]() -> Result<std::string> { return state; });
  REQUIRE(child.ok());
  state = "changed by the parent";
  Result<std::string> result = WaitFor(children, *child);
  REQUIRE(result.ok());
  CHECK(*result == "at the fork");
  CHECK(children.forks() == 1);
  CHECK(children.latest_fork_us() >= 0);
}

TEST_CASE("fork children: an error, a signal and an exit without a result", "[fork]") {
  ForkChildProcesses children;
  Result<int64_t> failing =
      children.Start([]() -> Result<std::string> { return Unexpected("disk full"); });
  REQUIRE(failing.ok());
  Result<std::string> failed = WaitFor(children, *failing);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().message == "disk full");

  Result<int64_t> killed = children.Start([]() -> Result<std::string> {
    ::raise(SIGKILL);
    return std::string("never");
  });
  REQUIRE(killed.ok());
  Result<std::string> died = WaitFor(children, *killed);
  REQUIRE_FALSE(died.ok());
  CHECK(died.error().message == "the child was killed by signal 9");

  Result<int64_t> exiting = children.Start([]() -> Result<std::string> { ::_exit(0); });
  REQUIRE(exiting.ok());
  Result<std::string> silent = WaitFor(children, *exiting);
  REQUIRE_FALSE(silent.ok());
  CHECK(silent.error().message == "the child exited with status 0 without a result");
}

TEST_CASE("fork children: Kill ends and reaps a child that would run on", "[fork]") {
  ForkChildProcesses children;
  Result<int64_t> child = children.Start([]() -> Result<std::string> {
    for (;;) ::pause();
  });
  REQUIRE(child.ok());
  CHECK_FALSE(children.Poll(*child).has_value());
  children.Kill(*child);
  CHECK(::kill(static_cast<pid_t>(*child), 0) != 0);  // reaped: the pid is gone
}

}  // namespace
}  // namespace lattice::server
