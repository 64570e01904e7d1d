#include "server/monitor.h"

#include <algorithm>

#include "fmt/format.h"
#include "server/client_state.h"

namespace lattice::server {

bool Monitors::Add(ClientState* client) {
  if (!client->push_hook) return false;
  if (std::find(clients_.begin(), clients_.end(), client) == clients_.end()) {
    clients_.push_back(client);
  }
  return true;
}

void Monitors::Remove(const ClientState* client) {
  clients_.erase(std::remove(clients_.begin(), clients_.end(), client), clients_.end());
}

std::string MonitorHead(int64_t now_us, std::string_view origin) {
  return fmt::format("+{}.{:06} [{}]", now_us / 1'000'000, now_us % 1'000'000, origin);
}

void AppendMonitorArg(std::string& line, std::string_view arg) {
  line += " \"";
  for (const char c : arg) {
    switch (c) {
      case '\\':
        line += "\\\\";
        break;
      case '"':
        line += "\\\"";
        break;
      case '\n':
        line += "\\n";
        break;
      case '\r':
        line += "\\r";
        break;
      case '\t':
        line += "\\t";
        break;
      case '\a':
        line += "\\a";
        break;
      case '\b':
        line += "\\b";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          line.push_back(c);
        } else {
          line += fmt::format("\\x{:02x}", static_cast<uint8_t>(c));
        }
    }
  }
  line.push_back('"');
}

void Monitors::FeedCommand(int64_t now_us, std::string_view origin, ArgList args,
                           uint64_t redacted) {
  std::string line = MonitorHead(now_us, origin);
  for (size_t i = 0; i < args.size(); ++i) {
    AppendMonitorArg(line, i < 64 && (redacted >> i) & 1 ? "(redacted)" : args[i]);
  }
  line += "\r\n";
  FeedLine(line);
}

void Monitors::FeedLine(const std::string& line) {
  const std::vector<ClientState*> clients = clients_;  // a push may close a client
  for (ClientState* client : clients) {
    if (!client->killed && client->push_hook) client->push_hook(line);
  }
}

}  // namespace lattice::server
