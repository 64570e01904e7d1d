#include "server/replica_of.h"

#include <charconv>
#include <utility>

#include "resp/reply_builder.h"
#include "server/rdb_import.h"
#include "server/server.h"
#include "spdlog/spdlog.h"
#include "util/ascii.h"

namespace lattice::server {
namespace {

constexpr int64_t kRedialMs = 1000;
constexpr int64_t kAckPeriodMs = 1000;
// repl-timeout's default: a handshake or transfer that makes no progress for this long, or a
// stream with no byte (the primary PINGs every 10 s), is dropped and dialed again.
constexpr int64_t kTimeoutMs = 60'000;
constexpr size_t kLineMax = 64 * 1024;
constexpr size_t kEofMarkSize = 40;
constexpr uint64_t kRdbMax = uint64_t{64} << 30;  // a claimed RDB size beyond this is refused
constexpr uint64_t kLoggedRefusals = 20;          // refused stream commands logged one by one
// What the primary may send while the region loads its RDB before the link is dropped (as the
// primary's own client-output-buffer-limit for replicas, 256mb).
constexpr size_t kLoadingBufferMax = size_t{256} << 20;

bool ParseInt(std::string_view text, int64_t* out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

ReplicaOf::ReplicaOf(Server& server) : server_(server) {}

ReplicaOf::~ReplicaOf() = default;

bool ReplicaOf::refuses_writes() const {
  return following() && server_.config().ValueOf("replica-read-only") != "no";
}

bool ReplicaOf::Follow(const std::string& host, int port, int64_t now_ms) {
  if (following() && host == host_ && port == port_) return false;
  if (following()) Stop();
  host_ = host;
  port_ = port;
  replid_ = "?";  // another primary: a full resync
  offset_ = -1;
  state_ = State::kConnect;
  state_since_ms_ = now_ms - kRedialMs;  // dial at the next tick
  spdlog::info("Connecting to MASTER {}:{}", host_, port_);
  Tick(now_ms);
  return true;
}

void ReplicaOf::Stop() {
  if (!following()) return;
  if (link_ != nullptr && state_ != State::kConnect) link_->Close();
  spdlog::info("MASTER MODE enabled (REPLICAOF NO ONE): was following {}:{} at offset {}", host_,
               port_, offset_);
  state_ = State::kNone;
  ++link_generation_;
  in_.clear();
  multi_.clear();
  in_multi_ = false;
  host_.clear();
  port_ = 0;
}

void ReplicaOf::FollowConfigured(int64_t now_ms) {
  config_applied_ = true;
  const std::string configured = server_.config().ValueOf("replicaof");
  const size_t space = configured.rfind(' ');
  if (configured.empty() || space == std::string::npos) return;
  if (server_.cluster() != nullptr) {
    spdlog::warn("replicaof is ignored in cluster mode");
    return;
  }
  int port = 0;
  const std::string_view text = std::string_view(configured).substr(space + 1);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port <= 0) return;
  Follow(configured.substr(0, space), port, now_ms);
}

void ReplicaOf::Tick(int64_t now_ms) {
  if (!config_applied_) FollowConfigured(now_ms);
  switch (state_) {
    case State::kNone:
      return;
    case State::kConnect:
      // Not while a dataset loads: a previous transfer's end says where to continue from, and
      // --import-rdb's load must end before another starts.
      if (link_ != nullptr && now_ms - state_since_ms_ >= kRedialMs &&
          !server_.loading().active()) {
        state_ = State::kConnecting;
        state_since_ms_ = now_ms;
        link_->Connect(host_, port_);
      }
      return;
    case State::kConnected:
      if (now_ms - last_ack_ms_ >= kAckPeriodMs) SendAck();
      [[fallthrough]];
    default:
      if (!loading_rdb_ && now_ms - std::max(last_io_ms_, state_since_ms_) > kTimeoutMs) {
        Drop("timeout, no data from the primary", now_ms);
      }
  }
}

std::string_view ReplicaOf::StateName() const {
  switch (state_) {
    case State::kNone:
      return "none";
    case State::kConnect:
      return "connect";
    case State::kConnecting:
      return "connecting";
    case State::kHandshake:
      return "handshake";
    case State::kTransfer:
      return "sync";
    case State::kConnected:
      return "connected";
  }
  return "none";
}

void ReplicaOf::Drop(const std::string& why, int64_t now_ms) {
  spdlog::warn("Connection with MASTER {}:{} lost: {}", host_, port_, why);
  ++link_generation_;
  if (link_ != nullptr && state_ != State::kConnect) link_->Close();
  state_ = State::kConnect;
  state_since_ms_ = now_ms;
  in_.clear();
  multi_.clear();
  in_multi_ = false;
  parser_.Reset();
  partial_bytes_ = 0;
}

void ReplicaOf::OnConnected(int64_t now_ms) {
  if (state_ != State::kConnecting) return;
  spdlog::info("MASTER <-> REPLICA sync started with {}:{}", host_, port_);
  state_ = State::kHandshake;
  state_since_ms_ = now_ms;
  last_io_ms_ = now_ms;
  step_ = Step::kPing;
  in_.clear();
  SendStep();
}

void ReplicaOf::OnClosed(const std::string& why, int64_t now_ms) {
  if (state_ == State::kNone || state_ == State::kConnect) return;
  Drop(why, now_ms);
}

void ReplicaOf::SendCommand(const std::vector<std::string>& args) {
  if (link_ == nullptr) return;
  const std::vector<std::string_view> views(args.begin(), args.end());
  std::string request;
  AppendRequest(request, views);
  link_->Send(request);
}

void ReplicaOf::SendStep() {
  const Config& config = server_.config();
  switch (step_) {
    case Step::kPing:
      SendCommand({"PING"});
      return;
    case Step::kAuth:
      if (config.masteruser().empty()) {
        SendCommand({"AUTH", config.masterauth()});
      } else {
        SendCommand({"AUTH", config.masteruser(), config.masterauth()});
      }
      return;
    case Step::kPort:
      SendCommand({"REPLCONF", "listening-port", std::to_string(config.port())});
      return;
    case Step::kCapa:
      SendCommand({"REPLCONF", "capa", "eof", "capa", "psync2"});
      return;
    case Step::kPsync:
      SendCommand({"PSYNC", replid_, std::to_string(offset_ < 0 ? -1 : offset_ + 1)});
      return;
  }
}

void ReplicaOf::OnBytes(std::string_view bytes, int64_t now_ms) {
  if (state_ != State::kHandshake && state_ != State::kTransfer && state_ != State::kConnected) {
    return;
  }
  last_io_ms_ = now_ms;
  in_.append(bytes);
  if (loading_rdb_) {  // kept for when the RDB is loaded
    if (in_.size() > kLoadingBufferMax) Drop("the primary sent too much while loading", now_ms);
    return;
  }
  while (state_ == State::kHandshake) {
    const size_t end = in_.find('\n');
    if (end == std::string::npos) {
      if (in_.size() > kLineMax) Drop("reply line too long", now_ms);
      return;
    }
    std::string line = in_.substr(0, end);
    in_.erase(0, end + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;  // the primary's keepalive newlines while it prepares the RDB
    if (!HandleHandshakeLine(line, now_ms)) return;
  }
  if (state_ == State::kTransfer && !ReadTransfer(now_ms)) return;
  if (state_ == State::kConnected) ApplyStream(now_ms);
}

bool ReplicaOf::HandleHandshakeLine(std::string_view line, int64_t now_ms) {
  const bool error = line.front() == '-';
  switch (step_) {
    case Step::kPing:
      // -NOAUTH is fine here: AUTH comes next (Valkey's replica accepts it too).
      if (error && !line.starts_with("-NOAUTH") && !line.starts_with("-ERR operation not")) {
        Drop("error reply to PING: " + std::string(line), now_ms);
        return false;
      }
      step_ = server_.config().masterauth().empty() ? Step::kPort : Step::kAuth;
      SendStep();
      return true;
    case Step::kAuth:
      if (error) {
        Drop("unable to AUTH to MASTER: " + std::string(line), now_ms);
        return false;
      }
      step_ = Step::kPort;
      SendStep();
      return true;
    case Step::kPort:
    case Step::kCapa:
      // Errors are tolerated, as Valkey's replica does (an old primary may not know them).
      step_ = step_ == Step::kPort ? Step::kCapa : Step::kPsync;
      SendStep();
      return true;
    case Step::kPsync:
      break;
  }
  std::vector<std::string_view> words;
  for (size_t pos = 0; pos < line.size();) {
    const size_t space = line.find(' ', pos);
    const size_t end = space == std::string_view::npos ? line.size() : space;
    if (end > pos) words.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  int64_t offset = 0;
  if (words.empty()) words.push_back(line);
  if (words[0] == "+FULLRESYNC" && words.size() == 3 && ParseInt(words[2], &offset) &&
      offset >= 0) {
    spdlog::info("Full resync from master: {}:{}", words[1], offset);
    transfer_replid_ = std::string(words[1]);  // ours once the RDB is loaded
    transfer_offset_ = offset;
    state_ = State::kTransfer;
    state_since_ms_ = now_ms;
    transfer_started_ = false;
    return true;
  }
  if (words[0] == "+CONTINUE" && offset_ >= 0) {
    if (words.size() >= 2) replid_ = std::string(words[1]);
    spdlog::info("Successful partial resynchronization with master {}:{} at offset {}", host_,
                 port_, offset_);
    ++partial_syncs_;
    state_ = State::kConnected;
    state_since_ms_ = now_ms;
    parser_.Reset();
    partial_bytes_ = 0;
    SendAck();
    return true;
  }
  Drop("unexpected reply to PSYNC: " + std::string(line), now_ms);
  return false;
}

bool ReplicaOf::ReadTransfer(int64_t now_ms) {
  if (!transfer_started_) {
    size_t end = 0;
    while ((end = in_.find('\n')) == 0 || (end == 1 && in_[0] == '\r')) in_.erase(0, end + 1);
    if (end == std::string::npos) {
      if (in_.size() > kLineMax) Drop("transfer header too long", now_ms);
      return state_ == State::kTransfer;
    }
    std::string_view header(in_.data(), end);
    if (header.ends_with('\r')) header.remove_suffix(1);
    int64_t size = 0;
    if (header.starts_with("$EOF:") && header.size() == 5 + kEofMarkSize) {
      eof_mark_ = std::string(header.substr(5));
      transfer_size_ = 0;
    } else if (header.starts_with("$") && ParseInt(header.substr(1), &size) && size >= 0 &&
               static_cast<uint64_t>(size) <= kRdbMax) {
      eof_mark_.clear();
      transfer_size_ = static_cast<uint64_t>(size);
    } else {
      Drop("bad transfer header: " + std::string(header.substr(0, 64)), now_ms);
      return false;
    }
    in_.erase(0, end + 1);
    transfer_started_ = true;
    eof_scan_from_ = 0;
  }
  size_t rdb_size = 0;
  size_t used = 0;
  if (eof_mark_.empty()) {
    if (in_.size() < transfer_size_) return true;
    rdb_size = used = transfer_size_;
  } else {
    // The mark ends the transfer; it may also appear inside the RDB's bytes only by a 2^-320
    // chance (it is random), as for Valkey's replica.
    const size_t at = in_.find(eof_mark_, eof_scan_from_);
    if (at == std::string::npos) {
      eof_scan_from_ = in_.size() >= kEofMarkSize ? in_.size() - kEofMarkSize + 1 : 0;
      return true;
    }
    rdb_size = at;
    used = at + kEofMarkSize;
  }
  if (server_.loading().active()) {  // --import-rdb's load, started after this link was dialed
    Drop("another dataset is loading (--import-rdb)", now_ms);
    return false;
  }
  std::string rdb = in_.substr(0, rdb_size);
  in_.erase(0, used);
  LoadRdb(std::move(rdb));
  return state_ == State::kConnected;
}

void ReplicaOf::LoadRdb(std::string rdb) {
  // Checked whole first (a corrupt transfer leaves the region as it was), then the region's
  // keys are replaced by it; the server answers -LOADING meanwhile (server/rdb_import.h).
  RdbImportOptions options;
  options.require_empty = false;
  options.on_write_start = [this] { server_.FlushAll(); };
  loading_rdb_ = true;
  server_.loading().Start(std::make_unique<RdbLoad>(server_, std::move(rdb), std::move(options)),
                          [this, link = link_generation_](const Result<RdbImportSummary>& done) {
                            Loaded(done, link);
                          });
}

void ReplicaOf::Loaded(const Result<RdbImportSummary>& summary, uint64_t link) {
  loading_rdb_ = false;
  const int64_t now_ms = server_.clock().NowMs();
  const bool same_link = link == link_generation_ && state_ == State::kTransfer;
  if (!summary.ok()) {
    const std::string why = "the primary's RDB was refused: " + summary.error().message;
    if (same_link) {
      Drop(why, now_ms);
    } else {
      spdlog::warn("MASTER <-> REPLICA sync: {}", why);
    }
    return;
  }
  spdlog::info("MASTER <-> REPLICA sync: loaded the primary's RDB:");
  for (const std::string& line : DescribeImport(*summary)) spdlog::info("  {}", line);
  if (state_ == State::kNone) return;
  // The data is the primary's at the transfer's offset, even when the link dropped meanwhile:
  // the next dial asks to continue from there.
  replid_ = transfer_replid_;
  offset_ = transfer_offset_;
  ++full_syncs_;
  if (!same_link) return;
  state_ = State::kConnected;
  state_since_ms_ = now_ms;
  parser_.Reset();
  partial_bytes_ = 0;
  primary_.reset();
  SendAck();
  ApplyStream(now_ms);  // what the primary sent while the region loaded
}

bool ReplicaOf::ApplyStream(int64_t now_ms) {
  std::string_view input = in_;
  size_t used = 0;
  for (;;) {
    size_t consumed = 0;
    const RequestParser::Status status = parser_.Parse(input.substr(used), &consumed);
    used += consumed;
    if (status == RequestParser::Status::kError) {
      Drop("bad command stream: " + parser_.error(), now_ms);
      return false;
    }
    // The offset counts whole commands only: a partial one is not acknowledged, so a partial
    // resync after a drop asks for it again.
    partial_bytes_ += consumed;
    if (status == RequestParser::Status::kNeedMore) break;
    Apply(parser_.args());  // a GETACK acknowledges what came before it, as Valkey's replica
    offset_ += static_cast<int64_t>(partial_bytes_);
    partial_bytes_ = 0;
    if (state_ != State::kConnected) return false;
  }
  in_.erase(0, used);
  return true;
}

void ReplicaOf::Apply(ArgList args) {
  if (args.empty()) return;
  if (primary_ == nullptr) {
    primary_ = std::make_unique<ClientState>();
    primary_->id = server_.NextClientId();
    primary_->name = "primary";
    primary_->primary_link = true;
  }
  const std::string_view name = args[0];
  if (EqualsIgnoreCase(name, "PING")) return;
  if (EqualsIgnoreCase(name, "REPLCONF")) {
    if (args.size() >= 2 && EqualsIgnoreCase(args[1], "GETACK")) SendAck();
    return;
  }
  if (EqualsIgnoreCase(name, "MULTI")) {
    in_multi_ = true;
    multi_.clear();
    return;
  }
  if (in_multi_ && !EqualsIgnoreCase(name, "EXEC")) {
    multi_.emplace_back(args.begin(), args.end());
    return;
  }
  std::vector<std::vector<std::string>> batch;
  if (in_multi_) {
    in_multi_ = false;
    batch = std::move(multi_);
    multi_.clear();
  } else {
    batch.emplace_back(args.begin(), args.end());
  }
  std::string out;
  ReplyBuilder reply(&out);
  std::vector<std::string_view> views;
  for (const std::vector<std::string>& command : batch) {
    views.assign(command.begin(), command.end());
    out.clear();
    server_.Execute(*primary_, views, reply);
    ++commands_applied_;
    if (!out.empty() && out[0] == '-') {
      ++commands_refused_;
      if (commands_refused_ <= kLoggedRefusals) {
        spdlog::warn("A command from the primary was refused here: {} -> {}", command[0],
                     out.substr(0, out.find('\r')));
      }
    }
  }
}

void ReplicaOf::SendAck() {
  last_ack_ms_ = server_.clock().NowMs();
  SendCommand({"REPLCONF", "ACK", std::to_string(offset_)});
}

}  // namespace lattice::server
