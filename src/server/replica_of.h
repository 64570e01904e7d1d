#pragma once
// REPLICAOF host port: this region follows a running Valkey or Redis primary, as a Valkey
// replica does, and turns everything the primary sends into ordinary local writes (so they
// replicate to the shard's other regions as CRDT ops). The protocol lives here, free of I/O; the
// connection is a PrimaryLink (net/replica_client.h in production, a fake in tests).
//
// The handshake, as Valkey's replica: PING; AUTH [masteruser] masterauth when masterauth is
// set; REPLCONF listening-port <port>; REPLCONF capa eof capa psync2; PSYNC <replid> <offset+1>
// when a previous link left a replication id and offset (partial resync), else PSYNC ? -1.
// +FULLRESYNC <replid> <offset>: the RDB follows as a bulk with a length ($<n>\r\n, n bytes) or
// EOF-marked ($EOF:<40 bytes>\r\n ... the same 40 bytes, diskless); it is checked whole, then
// the region's keys are replaced by it (FLUSHALL, then server/rdb_import.h's load), in slices
// while the server answers -LOADING; what the primary sends meanwhile waits (256 MB at most).
// +CONTINUE
// [<new replid>]: the stream goes on from our offset. Then the command stream: each command is
// run as a local write on the primary's client (SELECT, MULTI/EXEC as one batch, PING counted
// and ignored, REPLCONF GETACK answered); every byte counts towards the offset, and REPLCONF ACK
// <offset> is sent each second. A command Lattice refuses (a stream command, say) is counted
// and logged, never silently dropped.
//
// `replicaof <host> <port>` in the config file starts following at the first tick, as Valkey
// does at startup (not in cluster mode).
//
// While following, clients' writes are refused with READONLY unless replica-read-only is no.
// A dropped link is dialed again after a second, with PSYNC for a partial resync. REPLICAOF NO
// ONE stops following: the region keeps its data and takes writes (the cut-over).
//
// Not thread-safe: the event-loop thread owns it, like the Server.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"
#include "resp/request_parser.h"
#include "server/client_state.h"

namespace lattice::server {

class Server;
struct RdbImportSummary;

// The connection to the primary. Connect() dials; the link then calls OnConnected() or
// OnClosed(), then OnBytes() as bytes arrive, and OnClosed() once when it drops. After Close()
// (which the protocol calls), nothing more is called for that connection.
class PrimaryLink {
 public:
  virtual ~PrimaryLink() = default;
  virtual void Connect(const std::string& host, int port) = 0;
  virtual void Send(std::string_view bytes) = 0;
  virtual void Close() = 0;
};

class ReplicaOf {
 public:
  enum class State {
    kNone,        // not a replica
    kConnect,     // waiting to dial (first, or again after a drop)
    kConnecting,  // dialing
    kHandshake,   // PING .. PSYNC sent one by one, waiting for each reply
    kTransfer,    // receiving the RDB
    kConnected,   // applying the command stream
  };

  explicit ReplicaOf(Server& server);
  ~ReplicaOf();
  ReplicaOf(const ReplicaOf&) = delete;
  ReplicaOf& operator=(const ReplicaOf&) = delete;

  void set_link(PrimaryLink* link) { link_ = link; }
  bool has_link() const { return link_ != nullptr; }

  // REPLICAOF host port: false when already following that primary (nothing changes).
  bool Follow(const std::string& host, int port, int64_t now_ms);
  // REPLICAOF NO ONE.
  void Stop();
  // Following a primary (in any state but kNone).
  bool following() const { return state_ != State::kNone; }
  // Clients' writes are refused (following, and replica-read-only yes).
  bool refuses_writes() const;

  // From the link.
  void OnConnected(int64_t now_ms);
  void OnBytes(std::string_view bytes, int64_t now_ms);
  void OnClosed(const std::string& why, int64_t now_ms);
  // Every cron tick: the ACK each second, the redial a second after a drop, the handshake and
  // transfer timeouts.
  void Tick(int64_t now_ms);

  // For INFO replication and ROLE.
  State state() const { return state_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  bool link_up() const { return state_ == State::kConnected; }
  int64_t offset() const { return offset_; }
  const std::string& replid() const { return replid_; }
  int64_t last_io_ms() const { return last_io_ms_; }
  uint64_t full_syncs() const { return full_syncs_; }
  uint64_t partial_syncs() const { return partial_syncs_; }
  uint64_t commands_applied() const { return commands_applied_; }
  uint64_t commands_refused() const { return commands_refused_; }
  // The state as ROLE names it: connect, connecting, handshake, sync, connected.
  std::string_view StateName() const;

 private:
  enum class Step { kPing, kAuth, kPort, kCapa, kPsync };

  void Drop(const std::string& why, int64_t now_ms);
  void SendCommand(const std::vector<std::string>& args);
  void SendStep();
  // Each returns false when the connection was dropped.
  bool HandleHandshakeLine(std::string_view line, int64_t now_ms);
  bool ReadTransfer(int64_t now_ms);
  bool ApplyStream(int64_t now_ms);
  // Starts loading the transferred RDB in slices (server/rdb_import.h); Loaded() at its end.
  void LoadRdb(std::string rdb);
  void Loaded(const Result<RdbImportSummary>& summary, uint64_t link);
  void Apply(ArgList args);
  void SendAck();
  // The `replicaof <host> <port>` config directive, at the first tick (once: REPLICAOF NO ONE
  // afterwards is not undone).
  void FollowConfigured(int64_t now_ms);

  Server& server_;
  bool config_applied_ = false;
  PrimaryLink* link_ = nullptr;
  State state_ = State::kNone;
  Step step_ = Step::kPing;
  std::string host_;
  int port_ = 0;
  std::string in_;  // bytes received, not yet used
  // The transfer: its length (with a length) or its EOF mark (diskless).
  bool transfer_started_ = false;
  uint64_t transfer_size_ = 0;
  std::string eof_mark_;
  size_t eof_scan_from_ = 0;  // where the mark may start in in_ (not rescanned)
  // The replication id and offset of the stream applied so far ("?" / -1 before the first).
  std::string replid_ = "?";
  int64_t offset_ = -1;
  std::string transfer_replid_;
  int64_t transfer_offset_ = 0;
  RequestParser parser_;
  size_t partial_bytes_ = 0;                     // of the command the parser holds in part
  std::unique_ptr<ClientState> primary_;         // the client the stream's commands run as
  std::vector<std::vector<std::string>> multi_;  // MULTI .. EXEC, run at EXEC
  bool in_multi_ = false;
  bool loading_rdb_ = false;      // the transferred RDB is loading; the stream waits in in_
  uint64_t link_generation_ = 0;  // one more at every drop and stop
  int64_t last_io_ms_ = 0;
  int64_t last_ack_ms_ = 0;
  int64_t state_since_ms_ = 0;
  uint64_t full_syncs_ = 0;
  uint64_t partial_syncs_ = 0;
  uint64_t commands_applied_ = 0;
  uint64_t commands_refused_ = 0;
};

}  // namespace lattice::server
