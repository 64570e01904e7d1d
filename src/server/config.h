#pragma once
// Config is a node's configuration: every directive of a stock valkey.conf plus Lattice's own
// (region, replication-port, peer), described as data in one table (name, alias, type, default,
// bounds, mutable at runtime, applies to Lattice or not). The same parser serves the config file
// (redis.conf syntax), the command line (`--name value...`) and CONFIG SET/GET, with Valkey's
// error wording.
//
// Directives that Lattice does not implement (encoding thresholds, io-threads, repl-*, ...) are
// still accepted and validated like Valkey does, stored, and shown by CONFIG GET; each name that
// is set is reported once by TakeNotApplicableNotices() so the caller can log it. An unknown name
// is an error everywhere.
//
// Ownership and threading: a Config is a plain value (copyable and movable). Not thread-safe: the
// event-loop thread that owns the Server owns its Config. Nothing here logs or touches the
// filesystem except LoadFile(), which reads the file it is given.

#include <cstdint>
#include <functional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/common/result.h"

namespace lattice::server {

// The parsed value of one directive. `text` is what CONFIG GET shows (memory values as plain byte
// counts, booleans as yes/no); `number` holds booleans, integers and memory sizes; `items` holds
// the parts of list-like directives (bind addresses, peers, save points).
struct ConfigValue {
  std::string text;
  int64_t number = 0;
  std::vector<std::string> items;
};

class Config {
 public:
  Config();  // every directive at its default

  // Parses redis.conf text: one directive per line, `name arg...`, '#' comments, blank lines,
  // quoting as Valkey's sdssplitargs ("..." with \n \t \xHH escapes, '...'), names
  // case-insensitive, a later line overriding an earlier one (save and peer lines accumulate).
  // `include`, `rename-command`, `loadmodule` and `sentinel` are rejected; `user` lines are
  // kept for the ACL (acl_users()). On error the
  // lines before the bad one stay applied (the caller exits), and the message reads as Valkey's:
  //   *** FATAL CONFIG FILE ERROR (Lattice) ***
  //   Reading the configuration file, at line 12 (source_name)
  //   >>> 'foo bar'
  //   Bad directive or wrong number of arguments
  Result<void> LoadText(std::string_view text, std::string_view source_name);
  // Reads the file and calls LoadText; a missing file is
  // "Fatal error, can't open config file '<path>': <strerror>".
  Result<void> LoadFile(const std::string& path);
  // The absolute path LoadFile read ("" when no file was loaded), for INFO's config_file.
  const std::string& config_file() const { return config_file_; }
  // Command-line arguments after the optional config file, handled like Valkey's main():
  // `--name value...` becomes the line `name value...`; the first argument after `--name` is
  // always a value (so `--requirepass --x` works); `--save` with no value means `save ""`;
  // `--port 7001` may also come as one argument. Errors read as LoadText's.
  Result<void> ApplyArgs(std::span<const std::string_view> args);

  // CONFIG SET name value [name value...]: all or nothing. Errors are the full reply text:
  //   ERR Unknown option or number of arguments for CONFIG SET - 'name'
  //   ERR CONFIG SET failed (possibly related to argument 'name') - <reason>
  // where reason is e.g. "can't set immutable config", "argument must be a memory value".
  // `client_is_local` matters only with `enable-protected-configs local` (dir, dbfilename).
  // Calls the on-change callback once per directive whose value changed.
  Result<void> Set(std::span<const std::pair<std::string_view, std::string_view>> pairs,
                   bool client_is_local = true);

  // CONFIG GET pattern...: glob patterns (case-insensitive) over names and aliases; a pattern
  // without glob characters looks one name up. Returns (lowercase name, value) pairs, each name
  // once, sorted by name.
  std::vector<std::pair<std::string, std::string>> Get(
      std::span<const std::string_view> patterns) const;

  // Names of not-applicable directives set since the last call (file, args, CONFIG SET), each
  // name reported once over the life of this Config.
  std::vector<std::string> TakeNotApplicableNotices();

  void set_on_change(std::function<void(std::string_view name)> callback) {
    on_change_ = std::move(callback);
  }
  // Called by Set for each directive whose value changed, after the new values are stored and
  // before on_change; an error restores every value of the call and fails it with
  // "ERR CONFIG SET failed (possibly related to argument 'name') - <error>" (Valkey's apply
  // functions: a TLS certificate that does not load is refused and the old one kept).
  void set_on_apply(std::function<Result<void>(std::string_view name)> callback) {
    on_apply_ = std::move(callback);
  }

  // Typed accessors for what the server uses.
  int port() const;
  std::vector<std::string> bind() const;
  std::string dir() const;
  std::string region() const;
  std::string shard_id() const;  // regions replicate only with peers of the same shard id
  int64_t auto_aof_rewrite_percentage() const;  // op log growth that triggers a snapshot
  uint64_t auto_aof_rewrite_min_size() const;
  int64_t repl_timeout() const;  // seconds a silent peer link is kept
  // Ops retained for a peer that is behind; past this it is stale and will get a snapshot.
  int64_t crdt_backlog_ops() const;
  // The same bound in bytes (retained ops' encodings plus their index): what a lagging or dead
  // peer region can cost at most.
  int64_t crdt_backlog_size() const;
  int64_t crdt_conflicts_max_len() const;   // CRDT.CONFLICTS ring size
  int64_t crdt_conflicts_log_rate() const;  // conflict log lines a second at most
  // `replication-port`, or port() + 10000 when it is 0 (unset), tls-port + 10000 when port is 0
  // (no plain TCP). May exceed 65535: the caller validates before listening.
  int replication_port() const;
  std::vector<std::string> peers() const;  // "host:port" as written, in order
  // crdt-policy lines as (pattern, type, rule) triples, flattened, in order.
  std::vector<std::string> crdt_policies() const;
  std::string appendfsync() const;  // always | everysec | no
  bool appendonly() const;
  std::string requirepass() const;
  std::string aclfile() const;
  int64_t acllog_max_len() const;
  // `user <name> <rules...>` lines of the config file, each as {name, rules...}, in order.
  const std::vector<std::vector<std::string>>& acl_users() const { return acl_users_; }
  std::string masterauth() const;
  std::string masteruser() const;
  bool cluster_enabled() const;
  int cluster_databases() const;
  int64_t cluster_node_timeout() const;
  std::string cluster_config_file() const;
  bool cluster_require_full_coverage() const;
  bool cluster_allow_reads_when_down() const;
  std::string cluster_announce_ip() const;  // "" = unset
  int cluster_announce_port() const;        // 0 = unset
  int tls_port() const;
  std::string tls_cert_file() const;
  std::string tls_key_file() const;
  std::string tls_key_file_pass() const;
  std::string tls_ca_cert_file() const;
  std::string tls_ca_cert_dir() const;
  std::string tls_auth_clients() const;  // yes | no | optional
  bool tls_replication() const;
  std::string tls_protocols() const;
  std::string tls_ciphers() const;
  std::string tls_ciphersuites() const;
  std::string crdt_shard_secret() const;  // "" = replication links prove no secret
  bool crdt_peer_protected_mode() const;  // unauthenticated peer links: loopback only
  std::string loglevel() const;           // debug | verbose | notice | warning | nothing
  std::string logfile() const;
  std::string pidfile() const;
  std::string dbfilename() const;
  std::string appendfilename() const;
  std::string appenddirname() const;
  std::string save() const;  // "3600 1 300 100 60 10000", or "" when disabled
  uint64_t proto_max_bulk_len() const;
  uint64_t client_query_buffer_limit() const;
  int databases() const;
  int maxclients() const;
  int timeout() const;  // seconds, 0 = never
  int hz() const;       // clamped to [1, 500] as Valkey does; CONFIG GET shows the value set
  int tcp_keepalive() const;
  bool protected_mode() const;
  uint64_t maxmemory() const;
  std::string maxmemory_policy() const;
  int tcp_backlog() const;
  std::string notify_keyspace_events() const;
  // client-output-buffer-limit of the pubsub class: hard and soft bytes (0: none), soft seconds.
  struct OutputBufferLimit {
    uint64_t hard_bytes = 0;
    uint64_t soft_bytes = 0;
    int64_t soft_seconds = 0;
  };
  OutputBufferLimit pubsub_output_buffer_limit() const;
  bool crdt_pubsub_region_local() const;         // PUBLISH stays in this region
  std::string enable_protected_configs() const;  // no | yes | local
  std::string enable_debug_command() const;      // no | yes | local
  bool latency_tracking() const;
  int64_t slowlog_log_slower_than() const;  // microseconds; -1 disables, 0 logs every command
  int64_t slowlog_max_len() const;
  int64_t latency_monitor_threshold() const;                      // milliseconds; 0 disables
  std::vector<double> latency_tracking_info_percentiles() const;  // INFO latencystats
  std::string availability_zone() const;
  bool extended_redis_compatibility() const;

  // The rendered value of one directive by name or alias (case-insensitive), or "" when unknown.
  std::string ValueOf(std::string_view name) const;
  // Whether a name or alias is a directive CONFIG SET/GET know.
  static bool IsKnown(std::string_view name);

 private:
  // Applies one parsed line (tokens[0] is the directive name) during file/argument loading.
  // Returns the reason on error.
  Result<void> ApplyDirective(std::vector<std::string>& tokens);
  const ConfigValue& At(std::string_view name) const;
  void NoteSet(size_t index);

  std::vector<ConfigValue> values_;  // one per directive, in table order
  std::string config_file_;
  std::set<size_t> loaded_;        // directives seen while loading (save/peer accumulate)
  std::set<std::string> noticed_;  // not-applicable names already reported or pending
  std::vector<std::string> pending_notices_;
  std::function<void(std::string_view)> on_change_;
  std::vector<std::vector<std::string>> acl_users_;
  std::function<Result<void>(std::string_view)> on_apply_;
};

}  // namespace lattice::server
