#pragma once
// BlockedClients is the registry of clients blocked by a command (BZPOPMIN, BZMPOP, CRDT.WAIT, a
// write held by a migration handoff pause; later the list commands). A blocking command is its
// keys (or a channel), a deadline and a "try to serve" function: the command runs it at once, and
// when it finds nothing it calls Block() instead of replying. The client then waits without
// polling: every op on one of its keys (a local write from any client, MULTI/EXEC or Lua, an op
// applied from another region, a key a snapshot or a migration import changed: the keyspace's
// observer fan-out) marks the key ready, and ServeReady(), run after each top-level command and at
// the end of each event-loop turn, runs the serve functions of the clients waiting on the ready
// keys in the order they blocked (Valkey's order: first blocked, first served, per key). A serve
// function writes one reply and returns true, or writes nothing and returns false (keep waiting).
// A served or timed-out client's reply goes into the ReplyBuilder it blocked with, and its
// `wake_hook` (installed by the network layer) tells its session to flush it.
//
// Ownership: the Server owns the registry; clients are the network layer's (the Server
// unregisters a closing client, which removes it here). Deadlines are in the Server's clock
// (milliseconds); the network layer arms one timer per blocked client and calls ExpireDue().
// Not thread-safe: the event-loop thread only.

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/common/result.h"
#include "resp/reply_builder.h"
#include "resp/request_parser.h"

namespace lattice::server {

class CommandContext;
class Server;
struct ClientState;
struct Command;

// What a blocked client waits on besides keys: acknowledgements from peer regions (CRDT.WAIT),
// a migration handoff pause or a client pause ending (a held command), or another server's
// answer (MIGRATE's copy, server/outbound.h).
enum class BlockChannel : uint8_t { kKeys, kAcks, kUnpause, kOutbound };

struct BlockRequest {
  BlockChannel channel = BlockChannel::kKeys;
  std::vector<std::string> keys;  // kKeys: keys of the client's db, woken by any op on one
  int64_t deadline_ms = 0;        // Server clock; 0: no timeout
  // Writes the reply and returns true, or writes nothing and returns false to keep waiting.
  std::function<bool(CommandContext&)> serve;
  // The reply when the deadline passes or CLIENT UNBLOCK id TIMEOUT (default: a null array).
  std::function<void(CommandContext&)> timed_out;
  bool unblockable = true;  // CLIENT UNBLOCK may end the wait
};

// Valkey's timeout argument of blocking commands (getTimeoutFromObjectOrReply, seconds): a
// float (fractions allowed), 0 for none. Returns the deadline in ms (0: none) from `now_ms`, or
// Valkey's error ("timeout is not a float or out of range", "timeout is negative", "timeout is
// out of range").
Result<int64_t> ParseBlockTimeout(std::string_view text, int64_t now_ms);

// The shape the blocking pops and moves share (BLPOP, BLMOVE, BZPOPMIN, BZMPOP...): `timeout` is
// parsed first (its error is the reply); then `now` serves at once if it can (it replies and
// returns true); else, where blocking is denied (MULTI, scripts), the reply is what a timeout
// gives (`request.timed_out`, a null array by default); else the client waits as `request` says,
// until the parsed deadline.
void BlockOrServe(CommandContext& ctx, ArgList args, std::string_view timeout,
                  const std::function<bool(CommandContext&)>& now, BlockRequest request);

class BlockedClients {
 public:
  explicit BlockedClients(Server& server) : server_(server) {}
  BlockedClients(const BlockedClients&) = delete;
  BlockedClients& operator=(const BlockedClients&) = delete;

  // Blocks the client of `ctx` (no reply is written now). `ctx.reply` must outlive the wait
  // (the network layer's per-connection builder). A client blocked again while it is being
  // served (a held write that blocks when run again) replaces its wait.
  void Block(CommandContext& ctx, ArgList args, BlockRequest request);
  bool IsBlocked(const ClientState* client) const { return entries_.contains(client); }
  size_t size() const { return entries_.size(); }
  size_t blocking_keys() const { return waiting_.size(); }   // INFO total_blocking_keys
  size_t with_timeout() const { return deadlines_.size(); }  // INFO clients_in_timeout_table
  // The deadline of a blocked client (0: none or not blocked).
  int64_t DeadlineOf(const ClientState* client) const;

  // The keyspace fan-out: an op or change on (db, key). Costs one branch when nobody waits.
  void OnKey(int db, std::string_view key) {
    if (!waiting_.empty()) MarkReady(db, key);
  }
  void Wake(BlockChannel channel) { ready_channels_ |= 1U << static_cast<unsigned>(channel); }
  // Every keyed waiter is tried again (cluster mode: a slot moved, so some may be redirected).
  void WakeAllKeys();
  bool has_ready() const { return !ready_keys_.empty() || ready_channels_ != 0; }

  // Serves the clients waiting on ready keys and channels, in blocking order, until nothing is
  // ready. Re-entrant calls (a served command running another) return at once.
  void ServeReady();
  // Replies to every client whose deadline is at or before `now_ms` with its timeout reply.
  void ExpireDue(int64_t now_ms);
  // CLIENT UNBLOCK: ends the wait with the timeout reply, or with `error` when not empty. False
  // when the client is not blocked or its wait may not be ended so.
  bool Unblock(ClientState* client, std::string_view error);
  // The client is closing: forgets its wait without a reply.
  void Remove(const ClientState* client);

 private:
  struct Entry {
    ClientState* client = nullptr;
    const Command* command = nullptr;
    ReplyBuilder* reply = nullptr;
    std::vector<std::string> args;
    int db = 0;
    BlockRequest request;
    uint64_t order = 0;
  };
  using KeyId = std::pair<int, std::string>;

  void MarkReady(int db, std::string_view key);
  // Runs the entry's serve function (after the cluster redirect check); true when it replied.
  bool TryServe(const std::shared_ptr<Entry>& entry);
  // Replies `error`, or the timeout reply when it is empty, and ends the wait.
  void End(Entry& entry, std::string_view error);
  // Ends the wait of `client` (already replied) and wakes its session.
  void Finish(const ClientState* client);
  void ServeList(std::vector<const ClientState*> clients);
  std::list<const ClientState*>& ChannelList(BlockChannel channel) {
    return channels_[static_cast<size_t>(channel)];
  }

  Server& server_;
  std::map<const ClientState*, std::shared_ptr<Entry>> entries_;
  std::map<KeyId, std::list<const ClientState*>> waiting_;  // per key, in blocking order
  std::list<const ClientState*> channels_[4];
  std::set<std::pair<int64_t, uint64_t>> deadlines_;  // (deadline, order)
  std::map<uint64_t, const ClientState*> by_order_;
  std::vector<KeyId> ready_keys_;
  std::set<KeyId> ready_set_;
  uint32_t ready_channels_ = 0;
  uint64_t next_order_ = 1;
  bool serving_ = false;
};

}  // namespace lattice::server
