#include "server/slowlog.h"

#include "fmt/format.h"

namespace lattice::server {

std::vector<std::string> SlowLogArgv(ArgList args, uint64_t redacted) {
  const size_t kept = std::min(args.size(), kSlowLogMaxArgs);
  std::vector<std::string> argv;
  argv.reserve(kept);
  for (size_t i = 0; i < kept; ++i) {
    if (kept != args.size() && i == kept - 1) {
      argv.push_back(fmt::format("... ({} more arguments)", args.size() - kept + 1));
    } else if ((redacted >> i) & 1) {
      argv.emplace_back("(redacted)");
    } else if (args[i].size() > kSlowLogMaxArgBytes) {
      argv.push_back(fmt::format("{}... ({} more bytes)", args[i].substr(0, kSlowLogMaxArgBytes),
                                 args[i].size() - kSlowLogMaxArgBytes));
    } else {
      argv.emplace_back(args[i]);
    }
  }
  return argv;
}

void SlowLog::set_max_len(size_t max_len) {
  max_len_ = max_len;
  while (entries_.size() > max_len_) entries_.pop_back();
}

void SlowLog::Add(SlowLogEntry entry) {
  entry.id = next_id_++;
  entries_.push_front(std::move(entry));
  while (entries_.size() > max_len_) entries_.pop_back();
}

}  // namespace lattice::server
