#pragma once
// The slow log (SLOWLOG): the most recent commands that ran for at least
// slowlog-log-slower-than microseconds, newest first, at most slowlog-max-len of them. Each entry
// is what Valkey keeps: an id counting up from 0 since start (RESET does not restart it), the
// unix time it finished, its duration in microseconds, its arguments as SlowLogArgv trims them,
// and the client's address and name. Not thread-safe: the event-loop thread owns it.

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "resp/request_parser.h"

namespace lattice::server {

struct SlowLogEntry {
  uint64_t id = 0;
  int64_t time_s = 0;
  int64_t duration_us = 0;
  std::vector<std::string> argv;
  std::string peer;  // "127.0.0.1:54321"
  std::string name;  // CLIENT SETNAME, "" when unset
};

// Valkey's trimming: at most 32 arguments, the 32nd replaced by "... (N more arguments)" when
// there are more; an argument longer than 128 bytes keeps 128 followed by "... (N more bytes)".
// Argument i reads "(redacted)" when bit i of `redacted` is set (AUTH's password).
inline constexpr size_t kSlowLogMaxArgs = 32;
inline constexpr size_t kSlowLogMaxArgBytes = 128;
std::vector<std::string> SlowLogArgv(ArgList args, uint64_t redacted = 0);

class SlowLog {
 public:
  void set_max_len(size_t max_len);
  size_t max_len() const { return max_len_; }
  // Adds an entry (its id assigned here), dropping the oldest beyond max_len.
  void Add(SlowLogEntry entry);
  void Reset() { entries_.clear(); }
  size_t size() const { return entries_.size(); }
  // Newest first.
  const std::deque<SlowLogEntry>& entries() const { return entries_; }

 private:
  std::deque<SlowLogEntry> entries_;
  size_t max_len_ = 128;
  uint64_t next_id_ = 0;
};

}  // namespace lattice::server
