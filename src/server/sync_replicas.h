#pragma once
// SYNC and PSYNC served: Valkey and Redis replicas of a Lattice region, and `redis-cli --rdb`.
// The way out of Lattice (issue #23): a redis-server started with `replicaof <host> <port>`
// follows a region, and redis-cli takes a consistent RDB backup of it.
//
// - A replica asks with PSYNC <replid> <offset> (always answered +FULLRESYNC <replid> <offset>:
//   or +CONTINUE <replid> when the id is this stream's and the 1 MB backlog still holds what
//   follows the offset) or the old SYNC (no such line). A forked
//   child (store/child_process.h) writes the region's state of that moment as an RDB file
//   (store/rdb_writer.h) beside the data dir; meanwhile the replica gets a newline each second
//   (Valkey's keep-alive) and the stream from the fork on is kept for it. Then it gets
//   "$<bytes>\r\n" and the file, then that stream, then the stream live. A replica that sent
//   REPLCONF rdb-only 1 (redis-cli --rdb) gets only the file.
// - The stream is the region's changes, local and applied from other regions, as commands: per
//   changed key, its resulting state, sent after the command (or the end of the event-loop turn,
//   for ops from peers) that changed it: DEL when it is gone, SET key value [PXAT ms] for a
//   string, else RESTORE key <expiry ms or 0> <DUMP payload> REPLACE ABSTTL (a stream too: its
//   entries and metadata, store/rdb_stream.h). Idempotent, so a key
//   both in the file and in the stream kept since the fork is right either way; SELECT comes
//   before the first command of each db (and again after a new replica joined). PING every 10 s.
//   A key that expires is not sent as DEL: the replica expires it as it reads it.
// - REPLCONF listening-port / ip-address / capa / rdb-only are +OK; REPLCONF ACK <offset> is
//   recorded (no reply), for ROLE and INFO replication (connected_slaves, slaveN:...).
// - Bytes go out through the client's push hook, topped up while its output is below 4 MB (so
//   a large file never sits in memory, and the pubsub output limit the hook checks is never
//   reached); a replica that falls 256 MB behind is disconnected (Valkey's replica limit).
//
// The log-before-send rule holds: pushed bytes leave after the end of the turn, once the op log
// holds the ops. Not thread-safe: the event-loop thread owns it, like the Server.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "store/child_process.h"
#include "store/keyspace.h"

namespace lattice::server {

class Server;
struct ClientState;

class SyncReplicas final : public KeyspaceObserver {
 public:
  enum class State { kWaitChild, kTransfer, kOnline, kDone };
  struct Replica {
    ClientState* client = nullptr;
    State state = State::kWaitChild;
    bool rdb_only = false;
    bool psync = false;  // answered +FULLRESYNC (SYNC: no such line)
    int listening_port = 0;
    std::string ip;
    int64_t ack_offset = 0;
    int64_t ack_ms = 0;
    int64_t child = -1;   // the child writing its file (-1: waits for the next one)
    int fd = -1;          // the file, while it is sent
    std::string pending;  // stream bytes not yet pushed, from pending_pos
    size_t pending_pos = 0;
    std::string failed;  // why its file could not be made
  };

  explicit SyncReplicas(Server& server);
  ~SyncReplicas() override;
  SyncReplicas(const SyncReplicas&) = delete;
  SyncReplicas& operator=(const SyncReplicas&) = delete;

  // Tests run the child inline (InlineChildProcesses).
  void set_children(std::unique_ptr<ChildProcesses> children) { children_ = std::move(children); }

  // REPLCONF's settings for a client before it syncs (kept by client id).
  void SetListeningPort(const ClientState& client, int port);
  void SetIp(const ClientState& client, std::string ip);
  void SetRdbOnly(const ClientState& client, bool rdb_only);
  // REPLCONF ACK: false when `client` is not a replica.
  bool Ack(const ClientState& client, int64_t offset, int64_t now_ms);
  // SYNC / PSYNC: `client` becomes a replica; a child starts unless one already runs for
  // others (it then waits for the next). The handler replies nothing: +FULLRESYNC (PSYNC) is
  // pushed when the replica's child forks, with the offset its stream starts at.
  // PSYNC <replid> <offset> continues instead (+CONTINUE, then the stream from that offset)
  // when `replid` is this stream's and the backlog still holds everything after `offset`.
  Result<void> Attach(ClientState& client, bool psync, int64_t now_ms,
                      std::string_view replid = "?", int64_t wanted = -1);
  bool IsReplica(const ClientState* client) const;
  // The client closed.
  void Remove(const ClientState* client);

  // After each top-level command and at the end of each event-loop turn: the changed keys go to
  // the stream; replicas' output is topped up.
  void Flush();
  // hz times a second: a child's end, keep-alive newlines, PING, topping up.
  void Cron(int64_t now_ms);

  // Replicas are attached, or were within the last hour (the backlog keeps growing for them:
  // Valkey's repl-backlog-ttl; not for rdb-only ones, redis-cli --rdb, which need no stream);
  // after that the stream gets a new id.
  bool active() const { return observing_ || !replicas_.empty(); }
  const std::string& replid() const { return replid_; }
  int64_t offset() const { return offset_; }
  const std::vector<std::unique_ptr<Replica>>& replicas() const { return replicas_; }
  size_t online() const;
  uint64_t full_syncs() const { return full_syncs_; }
  uint64_t partial_syncs() const { return partial_syncs_; }
  // The backlog partial resyncs are served from (repl-backlog-size's default).
  static constexpr size_t kBacklogBytes = size_t{1} << 20;

  // KeyspaceObserver: every changed key (registered while any replica is attached).
  void OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) override;
  void OnRemoteOp(int db, std::string_view key, const crdt::KeyOp& op) override;
  void OnKeyChanged(int db, std::string_view key) override;

 private:
  void MarkDirty(int db, std::string_view key);
  void StartChild(int64_t now_ms);
  void ChildEnded(int64_t child, const Result<std::string>& result, int64_t now_ms);
  void Append(std::string_view bytes);  // to the stream: every replica past its fork
  void Pump(Replica& replica);
  void Push(Replica& replica, std::string_view bytes);
  void Drop(Replica& replica, const std::string& why);
  void Forget(int64_t now_ms);  // the last replica left: the backlog's hour starts
  std::string SyncPath();

  struct Pending {  // REPLCONF settings of a client that has not synced yet
    int listening_port = 0;
    std::string ip;
    bool rdb_only = false;
  };

  Server& server_;
  std::unique_ptr<ChildProcesses> children_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<std::pair<uint64_t, Pending>> pending_settings_;  // by client id, few
  std::string replid_;
  int64_t offset_ = 0;  // bytes of stream produced (master_repl_offset)
  int stream_db_ = -1;  // the db the stream's last SELECT chose (-1: none yet)
  int64_t child_ = -1;  // the running child
  std::string child_path_;
  int64_t last_ping_ms_ = 0;
  int64_t last_newline_ms_ = 0;
  uint64_t full_syncs_ = 0;
  uint64_t partial_syncs_ = 0;
  std::string backlog_;        // the stream's last bytes,
  int64_t backlog_start_ = 0;  // from this offset
  uint64_t sync_files_ = 0;
  bool observing_ = false;
  int64_t alone_since_ms_ = -1;  // no replica since (-1: some)
  std::vector<std::pair<int, std::string>> dirty_;
  absl::flat_hash_set<std::pair<int, std::string>> dirty_set_;
};

}  // namespace lattice::server
