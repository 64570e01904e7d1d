#include "store/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <system_error>
#include <utility>

#include "lattice/common/assert.h"

namespace lattice::server {
namespace {

Error ErrnoError(const char* call) {
  return Error{ErrorCode::kIo, std::string(call) + ": " +
                                   std::error_code(errno, std::generic_category()).message()};
}

void WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;  // the parent reads "no result" and reports the exit status
    bytes.remove_prefix(static_cast<size_t>(written));
  }
}

// The child's whole life: never returns to the caller's stack, never runs exit handlers.
[[noreturn]] void RunChild(int fd, pid_t parent, const ChildProcesses::Work& work) {
#ifdef __linux__
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a parent killed with -9 takes its child along
#endif
  if (::getppid() != parent) ::_exit(2);  // the parent died before prctl took effect
  // The parent's handlers write to its signal pipe, which the child shares: a SIGTERM sent to
  // the child must end the child, not shut the parent down.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  Result<std::string> result = work();
  std::string message = result.ok() ? "+" + *result : "-" + result.error().message;
  message.resize(std::min(message.size(), ChildProcesses::kMessageBytesMax + 1));
  WriteAll(fd, message);
  ::_exit(result.ok() ? 0 : 1);
}

// What the child wrote: it has exited, so the pipe holds all of it (non-blocking read end).
std::string ReadMessage(int fd) {
  std::string message;
  char buffer[1024];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0 || message.size() > ChildProcesses::kMessageBytesMax) break;
    message.append(buffer, static_cast<size_t>(got));
  }
  return message;
}

Result<std::string> Outcome(int status, const std::string& message) {
  if (WIFSIGNALED(status)) {
    return Unexpected(ErrorCode::kIo,
                      "the child was killed by signal " + std::to_string(WTERMSIG(status)));
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 0 && message.starts_with('+')) return message.substr(1);
  if (message.starts_with('-')) return Unexpected(ErrorCode::kIo, message.substr(1));
  return Unexpected(ErrorCode::kIo,
                    "the child exited with status " + std::to_string(code) + " without a result");
}

}  // namespace

ForkChildProcesses::~ForkChildProcesses() {
  while (!pipes_.empty()) Kill(pipes_.begin()->first);
}

Result<int64_t> ForkChildProcesses::Start(Work work) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Unexpected(ErrnoError("pipe"));
  const pid_t parent = ::getpid();
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    RunChild(fds[1], parent, work);
  }
  const Error fork_error = ErrnoError("fork");
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return Unexpected(fork_error);
  }
  latest_fork_us_ = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  ++forks_;
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  pipes_[pid] = fds[0];
  return static_cast<int64_t>(pid);
}

std::optional<Result<std::string>> ForkChildProcesses::Poll(int64_t child) {
  auto it = pipes_.find(child);
  LATTICE_ASSERT(it != pipes_.end());
  int status = 0;
  const pid_t reaped = ::waitpid(static_cast<pid_t>(child), &status, WNOHANG);
  if (reaped == 0 || (reaped < 0 && errno == EINTR)) return std::nullopt;
  const Error wait_error = ErrnoError("waitpid");
  const std::string message = ReadMessage(it->second);
  ::close(it->second);
  pipes_.erase(it);
  if (reaped < 0) return Result<std::string>(Unexpected(wait_error));
  return Outcome(status, message);
}

void ForkChildProcesses::Kill(int64_t child) {
  auto it = pipes_.find(child);
  LATTICE_ASSERT(it != pipes_.end());
  ::kill(static_cast<pid_t>(child), SIGKILL);
  int status = 0;
  while (::waitpid(static_cast<pid_t>(child), &status, 0) < 0 && errno == EINTR) {
  }
  ::close(it->second);
  pipes_.erase(it);
}

Result<int64_t> InlineChildProcesses::Start(Work work) {
  ++forks_;
  const int64_t id = next_id_++;
  results_.emplace(id, work());
  return id;
}

std::optional<Result<std::string>> InlineChildProcesses::Poll(int64_t child) {
  auto it = results_.find(child);
  LATTICE_ASSERT(it != results_.end());
  if (hold_) return std::nullopt;
  Result<std::string> result = std::move(it->second);
  results_.erase(it);
  return result;
}

}  // namespace lattice::server
