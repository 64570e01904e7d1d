#pragma once
// ChildProcesses is the seam through which Replication runs a checkpoint off the event loop, as
// Valkey's BGSAVE does: Start() runs a piece of work on a copy-on-write image of the process
// (fork), so the work sees the state of the moment Start was called while the parent goes on
// serving and changing it. The parent learns how the work ended by polling, without blocking.
//
// Implementations:
// - ForkChildProcesses (production): fork(2). The child runs the work, reports its result through
//   a pipe and leaves with _exit, so it runs no atexit handler and flushes none of the parent's
//   stdio or spdlog buffers; it dies with the parent (PR_SET_PDEATHSIG) and takes SIGINT/SIGTERM
//   by default (not through the parent's signal pipe). The process must be single-threaded
//   when Start is called (the server is: one event-loop thread); jemalloc and glibc malloc make
//   malloc usable in the child through their atfork handlers.
// - InlineChildProcesses (tests): runs the work at once, in this process; Poll reports it ended.
//   The state the work sees is the same as a fork's (the state at Start), so unit tests drive the
//   whole background path deterministically on MemoryStorage.
//
// Not thread-safe: one thread (the event loop) starts, polls and kills.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "lattice/common/result.h"

namespace lattice::server {

class ChildProcesses {
 public:
  // What the work returns: a short text for the parent on success (at most kMessageBytesMax),
  // the error otherwise.
  using Work = std::function<Result<std::string>()>;
  static constexpr size_t kMessageBytesMax = 4096;

  virtual ~ChildProcesses() = default;
  // Starts `work` in a child; returns its id (the pid for a forked child).
  virtual Result<int64_t> Start(Work work) = 0;
  // nullopt while the child runs; once it ended (it is then forgotten): what the work returned,
  // or an error saying how the child died (a signal, an exit without a result).
  virtual std::optional<Result<std::string>> Poll(int64_t child) = 0;
  // Ends the child (SIGKILL) and reaps it; its result is dropped.
  virtual void Kill(int64_t child) = 0;

  // INFO stats: latest_fork_usec and total_forks.
  int64_t latest_fork_us() const { return latest_fork_us_; }
  uint64_t forks() const { return forks_; }

 protected:
  int64_t latest_fork_us_ = 0;
  uint64_t forks_ = 0;
};

class ForkChildProcesses final : public ChildProcesses {
 public:
  ~ForkChildProcesses() override;  // kills the children still running
  Result<int64_t> Start(Work work) override;
  std::optional<Result<std::string>> Poll(int64_t child) override;
  void Kill(int64_t child) override;

 private:
  std::map<int64_t, int> pipes_;  // pid -> the read end of the child's result pipe
};

class InlineChildProcesses final : public ChildProcesses {
 public:
  Result<int64_t> Start(Work work) override;
  std::optional<Result<std::string>> Poll(int64_t child) override;
  void Kill(int64_t child) override { results_.erase(child); }

  // Holds back the results: Poll reports the children as running until released.
  void set_hold(bool hold) { hold_ = hold; }

 private:
  std::map<int64_t, Result<std::string>> results_;
  int64_t next_id_ = 1;
  bool hold_ = false;
};

}  // namespace lattice::server
