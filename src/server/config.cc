#include "server/config.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "lattice/common/assert.h"
#include "lattice/common/numbers.h"
#include "resp/request_parser.h"
#include "server/command.h"
#include "store/policy_table.h"
#include "util/glob.h"

namespace lattice::server {
namespace {

// ---------------------------------------------------------------------------------------------
// Text helpers: Valkey's string2ll, memtoull, sdssplitargs and sdssplitlen(" ") semantics.
// ---------------------------------------------------------------------------------------------

std::string ToLower(std::string_view text) {
  std::string lowered(text);
  for (char& c : lowered) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return lowered;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Valkey's memtoull: digits then an optional unit b, k, kb, m, mb, g, gb (case-insensitive;
// k = 1000, kb = 1024). Like Valkey, no digits at all reads as 0.
std::optional<uint64_t> ParseMemory(std::string_view text) {
  if (!text.empty() && text[0] == '-') {
    return std::nullopt;
  }
  size_t digits = 0;
  while (digits < text.size() && IsDigit(text[digits])) {
    ++digits;
  }
  static const std::map<std::string, uint64_t, std::less<>> kUnits = {
      {"", 1},
      {"b", 1},
      {"k", 1000},
      {"kb", 1024},
      {"m", 1000 * 1000},
      {"mb", 1024 * 1024},
      {"g", 1000ULL * 1000 * 1000},
      {"gb", 1024ULL * 1024 * 1024}};
  const auto unit = kUnits.find(ToLower(text.substr(digits)));
  if (unit == kUnits.end() || digits >= 128) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (size_t i = 0; i < digits; ++i) {
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) {
      return std::nullopt;
    }
    value = value * 10 + digit;
  }
  if (value > UINT64_MAX / unit->second) {
    return std::nullopt;
  }
  return value * unit->second;
}

// Valkey's sdssplitlen(value, " "): "" gives no parts; "a  b" gives "a", "", "b".
std::vector<std::string> SplitSpaces(std::string_view value) {
  std::vector<std::string> parts;
  if (value.empty()) {
    return parts;
  }
  size_t start = 0;
  while (true) {
    const size_t space = value.find(' ', start);
    if (space == std::string_view::npos) {
      parts.emplace_back(value.substr(start));
      return parts;
    }
    parts.emplace_back(value.substr(start, space - start));
    start = space + 1;
  }
}

std::string Join(const std::vector<std::string>& items) {
  std::string joined;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      joined += ' ';
    }
    joined += items[i];
  }
  return joined;
}

std::string_view Trim(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    return {};
  }
  const size_t last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

}  // namespace

namespace {

// ---------------------------------------------------------------------------------------------
// The directive table: configuration metadata as data.
// ---------------------------------------------------------------------------------------------

enum class Kind { kBool, kNumber, kEnum, kString, kSpecial };

enum Flag : uint32_t {
  kApplies = 1 << 0,     // Lattice implements it; otherwise accepted, stored, noticed once
  kImmutable = 1 << 1,   // CONFIG SET refuses it
  kProtected = 1 << 2,   // CONFIG SET needs enable-protected-configs
  kMultiArg = 1 << 3,    // takes several arguments (bind, save, ...)
  kMemory = 1 << 4,      // number with k/kb/m/mb/g/gb units
  kPercent = 1 << 5,     // number or "N%" (stored negative, as Valkey does)
  kOctal = 1 << 6,       // number in octal
  kUnsigned = 1 << 7,    // bounds compare as unsigned 64-bit
  kAccumulate = 1 << 8,  // while loading, repeated lines add up (save, peer)
};

// Parses the arguments of a special directive. `previous` is the current value (for directives
// that merge, like client-output-buffer-limit); `accumulate` is true for a repeated line while
// loading.
using SpecialParser = Result<ConfigValue> (*)(std::span<const std::string> args,
                                              const ConfigValue& previous, bool accumulate);
// Validates a string value; returns nullptr when valid, else the reason.
using StringCheck = const char* (*)(std::string_view value);

struct Directive {
  std::string_view name;
  Kind kind = Kind::kString;
  std::string_view default_text;
  uint32_t flags = 0;
  std::string_view alias;
  int64_t min = 0;
  int64_t max = 0;
  std::span<const std::string_view> choices;
  SpecialParser special = nullptr;
  StringCheck check = nullptr;
};

constexpr int64_t kIntMax = INT_MAX;
constexpr int64_t kIntMin = INT_MIN;
constexpr int64_t kUIntMax = UINT_MAX;
constexpr int64_t kLongMax = INT64_MAX;
constexpr int64_t kULongLongMax = -1;  // UINT64_MAX, read back as unsigned (kUnsigned)
constexpr int64_t kMb = 1024 * 1024;

constexpr Directive Make(std::string_view name, Kind kind, std::string_view def, uint32_t flags,
                         std::string_view alias) {
  Directive d;
  d.name = name;
  d.kind = kind;
  d.default_text = def;
  d.flags = flags;
  d.alias = alias;
  return d;
}

constexpr Directive Bool(std::string_view name, std::string_view def, uint32_t flags,
                         std::string_view alias = {}) {
  return Make(name, Kind::kBool, def, flags, alias);
}

constexpr Directive Int(std::string_view name, std::string_view def, int64_t min, int64_t max,
                        uint32_t flags, std::string_view alias = {}) {
  Directive d = Make(name, Kind::kNumber, def, flags, alias);
  d.min = min;
  d.max = max;
  return d;
}

constexpr Directive Mem(std::string_view name, std::string_view def, int64_t min, int64_t max,
                        uint32_t flags, std::string_view alias = {}) {
  return Int(name, def, min, max, flags | kMemory, alias);
}

constexpr Directive Enum(std::string_view name, std::string_view def,
                         std::span<const std::string_view> choices, uint32_t flags) {
  Directive d = Make(name, Kind::kEnum, def, flags, {});
  d.choices = choices;
  return d;
}

constexpr Directive Str(std::string_view name, std::string_view def, uint32_t flags,
                        std::string_view alias = {}, StringCheck check = nullptr) {
  Directive d = Make(name, Kind::kString, def, flags, alias);
  d.check = check;
  return d;
}

constexpr Directive Special(std::string_view name, std::string_view def, SpecialParser parser,
                            uint32_t flags, std::string_view alias = {}) {
  Directive d = Make(name, Kind::kSpecial, def, flags, alias);
  d.special = parser;
  return d;
}

// Enumerations, in Valkey's order (the order of its error message).
constexpr std::string_view kLogLevels[] = {"debug", "verbose", "notice", "warning", "nothing"};
constexpr std::string_view kEvictionPolicies[] = {
    "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
    "allkeys-lru",  "allkeys-lfu",  "allkeys-random",  "noeviction"};
constexpr std::string_view kFsyncPolicies[] = {"everysec", "always", "no"};
constexpr std::string_view kSupervised[] = {"upstart", "systemd", "auto", "no"};
constexpr std::string_view kSyslogFacilities[] = {"user",   "local0", "local1", "local2", "local3",
                                                  "local4", "local5", "local6", "local7"};
constexpr std::string_view kDisklessLoad[] = {"disabled", "on-empty-db", "swapdb",
                                              "flush-before-load"};
constexpr std::string_view kTlsAuthClients[] = {"no", "yes", "optional"};
constexpr std::string_view kOomScoreAdj[] = {"no", "yes", "relative", "absolute"};
constexpr std::string_view kAclPubsubDefault[] = {"allchannels", "resetchannels"};
constexpr std::string_view kSanitizePayload[] = {"no", "yes", "clients"};
constexpr std::string_view kProtectedAction[] = {"no", "yes", "local"};
constexpr std::string_view kEndpointTypes[] = {"ip", "hostname", "unknown-endpoint"};
constexpr std::string_view kPropagationError[] = {"ignore", "panic", "panic-on-replicas"};
constexpr std::string_view kLogFormats[] = {"legacy", "logfmt"};
constexpr std::string_view kLogTimestampFormats[] = {"legacy", "iso8601", "milliseconds"};
constexpr std::string_view kRdbVersionCheck[] = {"strict", "relaxed"};

const char* CheckBaseName(std::string_view value, const char* error) {
  return value.find('/') == std::string_view::npos ? nullptr : error;
}
const char* CheckDbFilename(std::string_view value) {
  return CheckBaseName(value, "dbfilename can't be a path, just a filename");
}
const char* CheckAppendFilename(std::string_view value) {
  return CheckBaseName(value, "appendfilename can't be a path, just a filename");
}
const char* CheckAppendDirname(std::string_view value) {
  return CheckBaseName(value, "appenddirname can't be a path, just a dirname");
}
// Valkey changes into `dir` when it reads the directive, so a directory that does not exist is a
// fatal config error there (strerror of chdir); Lattice checks the same, and creates nothing.
const char* CheckDir(std::string_view value) {
  std::error_code error;
  if (value.empty() || !std::filesystem::exists(std::string(value), error)) {
    return "No such file or directory";
  }
  if (!std::filesystem::is_directory(std::string(value), error)) {
    return "Not a directory";
  }
  return nullptr;
}
Result<ConfigValue> ParseBind(std::span<const std::string> args, const ConfigValue&, bool);
Result<ConfigValue> ParseSave(std::span<const std::string> args, const ConfigValue&, bool);
Result<ConfigValue> ParsePeer(std::span<const std::string> args, const ConfigValue&, bool);
Result<ConfigValue> ParseCrdtPolicy(std::span<const std::string> args, const ConfigValue&, bool);
Result<ConfigValue> ParseOutputBufferLimit(std::span<const std::string> args, const ConfigValue&,
                                           bool);
Result<ConfigValue> ParseOomScoreAdjValues(std::span<const std::string> args, const ConfigValue&,
                                           bool);
Result<ConfigValue> ParseKeyspaceEvents(std::span<const std::string> args, const ConfigValue&,
                                        bool);
Result<ConfigValue> ParseReplicaOf(std::span<const std::string> args, const ConfigValue&, bool);
Result<ConfigValue> ParsePercentiles(std::span<const std::string> args, const ConfigValue&, bool);
Result<ConfigValue> ParseShutdownFlags(std::span<const std::string> args, const ConfigValue&, bool);

constexpr uint32_t A = kApplies;
constexpr uint32_t I = kImmutable;

// clang-format off
const Directive kDirectives[] = {
    // Lattice's own.
    Str("region", "", A | I),
    Str("shard-id", "default", A | I),
    Str("cluster-region-order", "", A),
    Str("crdt-shard-secret", "", A),
    Bool("crdt-peer-protected-mode", "yes", A),
    Int("crdt-backlog-ops", "1000000", 1, kLongMax, A | I),
    Mem("crdt-backlog-size", "64mb", 1, kLongMax, A | I),
    Int("crdt-conflicts-max-len", "128", 0, 1000000, A),
    Int("crdt-conflicts-log-rate", "1", 0, 1000000, A),
    Bool("crdt-pubsub-region-local", "no", A),
    Int("replication-port", "0", 0, 65535, A | I),
    Special("peer", "", &ParsePeer, A | I | kMultiArg | kAccumulate),
    Special("crdt-policy", "", &ParseCrdtPolicy, A | I | kMultiArg | kAccumulate),

    // Network and clients.
    Special("bind", "* -::*", &ParseBind, A | I | kMultiArg),
    Special("rdma-bind", "", &ParseBind, kMultiArg),
    Str("bind-source-addr", "", 0),
    Int("port", "6379", 0, 65535, A | I),
    Int("tcp-backlog", "511", 0, kIntMax, A | I),
    Int("tcp-keepalive", "300", 0, kIntMax, A),
    Int("tcp-keepalive-probes", "3", 0, kIntMax, 0),
    Int("timeout", "0", 0, kIntMax, A),
    Bool("protected-mode", "yes", A),
    Int("maxclients", "10000", 1, kUIntMax, A | kUnsigned),
    Str("unixsocket", "", I),
    Str("unixsocketgroup", "", I),
    Int("unixsocketperm", "0", 0, 0777, I | kOctal | kUnsigned),
    Int("socket-mark-id", "0", 0, kUIntMax, I | kUnsigned),
    Int("max-new-connections-per-cycle", "10", 1, 1000, kUnsigned),
    Int("max-new-tls-connections-per-cycle", "1", 1, 1000, kUnsigned),
    Int("rdma-port", "0", 0, 65535, 0),
    Int("rdma-rx-size", "1048576", 64 * 1024, 16 * kMb, I),
    Int("rdma-completion-vector", "-1", -1, 1024, I),
    Mem("proto-max-bulk-len", "512mb", kMb, kLongMax, A),
    Mem("client-query-buffer-limit", "1gb", kMb, kLongMax, A | kUnsigned),
    Special("client-output-buffer-limit",
            "normal 0 0 0 replica 268435456 67108864 60 pubsub 33554432 8388608 60",
            &ParseOutputBufferLimit, kMultiArg),
    Mem("maxmemory-clients", "0", -100, kLongMax, kPercent),
    Int("io-threads", "1", 1, 256, I),
    Bool("io-threads-do-reads", "no", I),
    Int("prefetch-batch-max-size", "16", 0, 128, 0),

    // TLS.
    Int("tls-port", "0", 0, 65535, A | I),
    Str("tls-cert-file", "", A),
    Str("tls-key-file", "", A),
    Str("tls-key-file-pass", "", A),
    Str("tls-client-cert-file", "", A),
    Str("tls-client-key-file", "", A),
    Str("tls-client-key-file-pass", "", A),
    Str("tls-dh-params-file", "", 0),
    Str("tls-ca-cert-file", "", A),
    Str("tls-ca-cert-dir", "", A),
    Enum("tls-auth-clients", "yes", kTlsAuthClients, A),
    Bool("tls-replication", "no", A),
    Bool("tls-cluster", "no", 0),
    Str("tls-protocols", "", A),
    Str("tls-ciphers", "", A),
    Str("tls-ciphersuites", "", A),
    Bool("tls-prefer-server-ciphers", "no", A),
    Bool("tls-session-caching", "yes", 0),
    Int("tls-session-cache-size", "20480", 0, kIntMax, 0),
    Int("tls-session-cache-timeout", "300", 0, kIntMax, 0),

    // General.
    Bool("daemonize", "no", I),
    Enum("supervised", "no", kSupervised, I),
    Str("pidfile", "", A | I),
    Enum("loglevel", "notice", kLogLevels, A),
    Str("logfile", "", A | I),
    Enum("log-format", "legacy", kLogFormats, 0),
    Enum("log-timestamp-format", "legacy", kLogTimestampFormats, 0),
    Bool("syslog-enabled", "no", I),
    Str("syslog-ident", "valkey", I),
    Enum("syslog-facility", "local0", kSyslogFacilities, I),
    Bool("crash-log-enabled", "yes", 0),
    Bool("crash-memcheck-enabled", "yes", 0),
    Int("databases", "16", 1, kIntMax, A | I),
    Bool("always-show-logo", "no", I),
    Bool("set-proc-title", "yes", I),
    Str("proc-title-template", "{title} {listen-addr} {server-mode}", 0),
    Str("locale-collate", "", 0),
    Str("ignore-warnings", "", 0),
    Bool("extended-redis-compatibility", "no", A),
    Str("availability-zone", "", A),
    Bool("hide-user-data-from-log", "yes", 0),
    Enum("enable-protected-configs", "no", kProtectedAction, A | I),
    Enum("enable-debug-command", "no", kProtectedAction, A | I),
    Enum("enable-module-command", "no", kProtectedAction, I),
    Int("hz", "10", 0, kIntMax, A),
    Bool("dynamic-hz", "yes", 0),
    Int("shutdown-timeout", "10", 0, kIntMax, 0),
    Special("shutdown-on-sigint", "default", &ParseShutdownFlags, kMultiArg),
    Special("shutdown-on-sigterm", "default", &ParseShutdownFlags, kMultiArg),
    Str("server-cpulist", "", I, "server_cpulist"),
    Str("bio-cpulist", "", I, "bio_cpulist"),
    Str("aof-rewrite-cpulist", "", I, "aof_rewrite_cpulist"),
    Str("bgsave-cpulist", "", I, "bgsave_cpulist"),
    Bool("disable-thp", "yes", I),
    Enum("oom-score-adj", "no", kOomScoreAdj, 0),
    Special("oom-score-adj-values", "0 200 800", &ParseOomScoreAdjValues, kMultiArg),
    Bool("jemalloc-bg-thread", "yes", A),

    // Snapshotting and the append-only file.
    Special("save", "3600 1 300 100 60 10000", &ParseSave, A | kMultiArg | kAccumulate),
    Bool("stop-writes-on-bgsave-error", "yes", 0),
    Bool("rdbcompression", "yes", 0),
    Bool("rdbchecksum", "yes", I),
    Str("dbfilename", "dump.rdb", A | kProtected, {}, &CheckDbFilename),
    Bool("rdb-del-sync-files", "no", 0),
    Enum("rdb-version-check", "strict", kRdbVersionCheck, 0),
    Str("dir", "./", A | I, {}, &CheckDir),
    Bool("appendonly", "no", A),
    Str("appendfilename", "appendonly.aof", A | I, {}, &CheckAppendFilename),
    Str("appenddirname", "appendonlydir", A | I, {}, &CheckAppendDirname),
    Enum("appendfsync", "everysec", kFsyncPolicies, A),
    Bool("no-appendfsync-on-rewrite", "no", 0),
    Int("auto-aof-rewrite-percentage", "100", 0, kIntMax, A),
    Mem("auto-aof-rewrite-min-size", "64mb", 0, kLongMax, A),
    Bool("aof-load-truncated", "yes", 0),
    Bool("aof-use-rdb-preamble", "yes", 0),
    Bool("aof-timestamp-enabled", "no", 0),
    Bool("aof-rewrite-incremental-fsync", "yes", 0),
    Bool("rdb-save-incremental-fsync", "yes", 0),
    Enum("sanitize-dump-payload", "no", kSanitizePayload, 0),

    // Security.
    Str("requirepass", "", A),
    Str("aclfile", "", A | I),
    Int("acllog-max-len", "128", 0, kLongMax, A | kUnsigned),
    Enum("acl-pubsub-default", "resetchannels", kAclPubsubDefault, 0),

    // Memory and eviction.
    Mem("maxmemory", "0", 0, kULongLongMax, A | kUnsigned),
    Enum("maxmemory-policy", "noeviction", kEvictionPolicies, A),
    Int("maxmemory-samples", "5", 1, 64, A),
    Int("maxmemory-eviction-tenacity", "10", 0, 100, A),
    Bool("lazyfree-lazy-eviction", "yes", 0),
    Bool("lazyfree-lazy-expire", "yes", 0),
    Bool("lazyfree-lazy-server-del", "yes", 0),
    Bool("lazyfree-lazy-user-del", "yes", 0),
    Bool("lazyfree-lazy-user-flush", "yes", 0),
    Int("lfu-log-factor", "10", 0, kIntMax, A),
    Int("lfu-decay-time", "1", 0, kIntMax, A),
    Int("active-expire-effort", "1", 1, 10, 0),
    Bool("activerehashing", "yes", 0),
    Bool("activedefrag", "no", 0),
    Mem("active-defrag-ignore-bytes", "100mb", 1, kLongMax, kUnsigned),
    Int("active-defrag-threshold-lower", "10", 0, 1000, 0),
    Int("active-defrag-threshold-upper", "100", 0, 1000, 0),
    Int("active-defrag-cycle-min", "1", 1, 99, 0),
    Int("active-defrag-cycle-max", "25", 1, 99, 0),
    Int("active-defrag-cycle-us", "500", 0, 100000, 0),
    Int("active-defrag-max-scan-fields", "1000", 1, kLongMax, kUnsigned),

    // Encodings.
    Int("hash-max-listpack-entries", "512", 0, kLongMax, kUnsigned, "hash-max-ziplist-entries"),
    Mem("hash-max-listpack-value", "64", 0, kLongMax, kUnsigned, "hash-max-ziplist-value"),
    Int("list-max-listpack-size", "-2", kIntMin, kIntMax, 0, "list-max-ziplist-size"),
    Int("list-compress-depth", "0", 0, kIntMax, 0),
    Int("set-max-intset-entries", "512", 0, kLongMax, kUnsigned),
    Int("set-max-listpack-entries", "128", 0, kLongMax, kUnsigned),
    Int("set-max-listpack-value", "64", 0, kLongMax, kUnsigned),
    Int("zset-max-listpack-entries", "128", 0, kLongMax, kUnsigned, "zset-max-ziplist-entries"),
    Mem("zset-max-listpack-value", "64", 0, kLongMax, kUnsigned, "zset-max-ziplist-value"),
    Mem("hll-sparse-max-bytes", "3000", 0, kLongMax, kUnsigned),
    Mem("stream-node-max-bytes", "4096", 0, kLongMax, kUnsigned),
    Int("stream-node-max-entries", "100", 0, kLongMax, 0),
    Int("tracking-table-max-keys", "1000000", 0, kLongMax, kUnsigned | A),

    // Primary/replica replication (Lattice replicates active-active instead).
    Special("replicaof", "", &ParseReplicaOf, I | kMultiArg, "slaveof"),
    Str("primaryauth", "", A, "masterauth"),
    Str("primaryuser", "", A, "masteruser"),
    Bool("replica-serve-stale-data", "yes", 0, "slave-serve-stale-data"),
    Bool("replica-read-only", "yes", 0, "slave-read-only"),
    Bool("replica-ignore-maxmemory", "yes", 0, "slave-ignore-maxmemory"),
    Bool("replica-lazy-flush", "yes", 0, "slave-lazy-flush"),
    Bool("replica-announced", "yes", 0),
    Bool("replica-ignore-disk-write-errors", "no", 0),
    Int("replica-priority", "100", 0, kIntMax, 0, "slave-priority"),
    Str("replica-announce-ip", "", 0, "slave-announce-ip"),
    Int("replica-announce-port", "0", 0, 65535, 0, "slave-announce-port"),
    Bool("repl-diskless-sync", "yes", 0),
    Int("repl-diskless-sync-delay", "5", 0, kIntMax, 0),
    Int("repl-diskless-sync-max-replicas", "0", 0, kIntMax, 0),
    Enum("repl-diskless-load", "disabled", kDisklessLoad, 0),
    Bool("dual-channel-replication-enabled", "no", 0),
    Bool("repl-disable-tcp-nodelay", "no", 0),
    Int("repl-ping-replica-period", "10", 1, kIntMax, 0, "repl-ping-slave-period"),
    Int("repl-timeout", "60", 1, kIntMax, A),
    Mem("repl-backlog-size", "10mb", 1, kLongMax, 0),
    Int("repl-backlog-ttl", "3600", 0, kLongMax, 0),
    Int("min-replicas-to-write", "0", 0, kIntMax, 0, "min-slaves-to-write"),
    Int("min-replicas-max-lag", "10", 0, kIntMax, 0, "min-slaves-max-lag"),
    Enum("propagation-error-behavior", "ignore", kPropagationError, 0),

    // Cluster.
    Bool("cluster-enabled", "no", A | I),
    Str("cluster-config-file", "nodes.conf", A | I),
    Int("cluster-databases", "1", 1, kIntMax, A | I),
    Int("cluster-node-timeout", "15000", 0, kLongMax, A),
    Int("cluster-port", "0", 0, 65535, A | I),
    Str("cluster-announce-ip", "", A),
    Str("cluster-announce-hostname", "", A),
    Str("cluster-announce-human-nodename", "", 0),
    Str("cluster-announce-client-ipv4", "", 0),
    Str("cluster-announce-client-ipv6", "", 0),
    Int("cluster-announce-port", "0", 0, 65535, A),
    Int("cluster-announce-tls-port", "0", 0, 65535, A),
    Int("cluster-announce-bus-port", "0", 0, 65535, 0),
    Enum("cluster-preferred-endpoint-type", "ip", kEndpointTypes, A),
    Bool("cluster-require-full-coverage", "yes", A),
    Bool("cluster-allow-reads-when-down", "no", A),
    Bool("cluster-allow-pubsubshard-when-down", "yes", 0),
    Bool("cluster-allow-replica-migration", "yes", 0),
    Bool("cluster-replica-no-failover", "no", 0, "cluster-slave-no-failover"),
    Int("cluster-replica-validity-factor", "10", 0, kIntMax, 0, "cluster-slave-validity-factor"),
    Int("cluster-migration-barrier", "1", 0, kIntMax, 0),
    Int("cluster-manual-failover-timeout", "5000", 1, kIntMax, 0),
    Int("cluster-blacklist-ttl", "60", 0, kLongMax, kUnsigned),
    Mem("cluster-link-sendbuf-limit", "0", 0, kULongLongMax, kUnsigned),
    Bool("cluster-slot-stats-enabled", "no", 0),
    Bool("auto-failover-on-shutdown", "no", 0),

    // Observability and scripting.
    Bool("latency-tracking", "yes", A),
    Special("latency-tracking-info-percentiles", "50 99 99.9", &ParsePercentiles, A | kMultiArg),
    Int("latency-monitor-threshold", "0", 0, kLongMax, A),
    Int("commandlog-execution-slower-than", "10000", -1, kLongMax, A, "slowlog-log-slower-than"),
    Int("commandlog-slow-execution-max-len", "128", 0, kLongMax, A | kUnsigned, "slowlog-max-len"),
    Int("commandlog-request-larger-than", "1048576", -1, kLongMax, 0),
    Int("commandlog-large-request-max-len", "128", 0, kLongMax, kUnsigned),
    Int("commandlog-reply-larger-than", "1048576", -1, kLongMax, 0),
    Int("commandlog-large-reply-max-len", "128", 0, kLongMax, kUnsigned),
    Special("notify-keyspace-events", "", &ParseKeyspaceEvents, A),
    Int("busy-reply-threshold", "5000", 0, kLongMax, A, "lua-time-limit"),  // scripting
    Bool("import-mode", "no", 0),
};
// clang-format on

// Lines that Valkey accepts in a file and ignores (deprecated_configs in config.c), with their
// exact argument count.
constexpr std::string_view kDeprecated[] = {"list-max-ziplist-entries", "list-max-ziplist-value",
                                            "lua-replicate-commands"};

}  // namespace

namespace {

// ---------------------------------------------------------------------------------------------
// Parsers of the special directives (Valkey's setConfig*Option functions, same errors).
// ---------------------------------------------------------------------------------------------

ConfigValue Scalar(std::string text, int64_t number = 0) {
  ConfigValue value;
  value.text = std::move(text);
  value.number = number;
  return value;
}

ConfigValue ListValue(std::vector<std::string> items) {
  ConfigValue value;
  value.text = Join(items);
  value.items = std::move(items);
  return value;
}

// A single "" argument stands for an empty list, as in Valkey.
bool IsEmptyList(std::span<const std::string> args) {
  return args.empty() || (args.size() == 1 && args[0].empty());
}

Result<ConfigValue> ParseBind(std::span<const std::string> args, const ConfigValue&, bool) {
  constexpr size_t kBindAddressesMax = 16;
  if (args.size() > kBindAddressesMax) {
    return Unexpected("Too many bind addresses specified.");
  }
  if (IsEmptyList(args)) {
    return ConfigValue{};
  }
  return ListValue({args.begin(), args.end()});
}

Result<ConfigValue> ParseSave(std::span<const std::string> args, const ConfigValue& previous,
                              bool accumulate) {
  if (IsEmptyList(args)) {
    return ConfigValue{};  // `save ""` disables snapshots, even between accumulating lines
  }
  std::vector<std::string> items = accumulate ? previous.items : std::vector<std::string>{};
  if (args.size() % 2 != 0) {
    return Unexpected("Invalid save parameters");
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const auto number = ParseInt64Strict(args[i]);
    if (!number || *number < (i % 2 == 0 ? 1 : 0)) {  // seconds >= 1, changes >= 0
      return Unexpected("Invalid save parameters");
    }
    items.push_back(std::to_string(*number));
  }
  return ListValue(std::move(items));
}

// host:port, the port 1..65535; an IPv6 host may be bracketed ([::1]:7001).
bool IsPeerAddress(std::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return false;
  }
  const auto port = ParseInt64Strict(address.substr(colon + 1));
  return port && *port >= 1 && *port <= 65535;
}

// crdt-policy <pattern> <type> <rule>, one line per entry: items hold the triples in order.
Result<ConfigValue> ParseCrdtPolicy(std::span<const std::string> args, const ConfigValue& previous,
                                    bool accumulate) {
  std::vector<std::string> items = accumulate ? previous.items : std::vector<std::string>{};
  if (IsEmptyList(args)) {
    return ListValue(std::move(items));
  }
  if (args.size() != 3) {
    return Unexpected("crdt-policy takes <pattern> <type> <rule>");
  }
  std::string type_buffer;
  std::string rule_buffer;
  const std::string type(AsciiLower(args[1], type_buffer));
  const std::string rule(AsciiLower(args[2], rule_buffer));
  if (std::string error = PolicyTable::CheckRule(type, rule); !error.empty()) {
    return Unexpected(std::move(error));
  }
  items.insert(items.end(), {args[0], type, rule});
  return ListValue(std::move(items));
}

Result<ConfigValue> ParsePeer(std::span<const std::string> args, const ConfigValue& previous,
                              bool accumulate) {
  std::vector<std::string> items = accumulate ? previous.items : std::vector<std::string>{};
  if (IsEmptyList(args)) {
    return ListValue(std::move(items));
  }
  for (const std::string& address : args) {
    if (!IsPeerAddress(address)) {
      return Unexpected("Invalid peer address '" + address + "', expected host:port");
    }
    if (std::find(items.begin(), items.end(), address) == items.end()) {
      items.push_back(address);
    }
  }
  return ListValue(std::move(items));
}

constexpr std::string_view kBufferClasses[] = {"normal", "replica", "pubsub"};

// Values per class: hard, soft, soft seconds. Classes not named keep their previous limits.
Result<ConfigValue> ParseOutputBufferLimit(std::span<const std::string> args,
                                           const ConfigValue& previous, bool) {
  if (args.size() % 4 != 0) {
    return Unexpected("Wrong number of arguments in buffer limit configuration.");
  }
  std::vector<std::string> items = previous.items;   // 3 classes x 3 numbers
  items.resize(std::size(kBufferClasses) * 3, "0");  // empty before the default is parsed
  for (size_t i = 0; i < args.size(); i += 4) {
    std::string name = ToLower(args[i]);
    if (name == "slave") {
      name = "replica";
    }
    const auto* found = std::find(std::begin(kBufferClasses), std::end(kBufferClasses), name);
    if (found == std::end(kBufferClasses)) {
      return Unexpected("Invalid client class specified in buffer limit configuration.");
    }
    const auto hard = ParseMemory(args[i + 1]);
    const auto soft = ParseMemory(args[i + 2]);
    const auto seconds = ParseInt64Strict(args[i + 3]);
    if (!hard || !soft || !seconds || *seconds < 0) {
      return Unexpected(
          "Error in hard, soft or soft_seconds setting in buffer limit configuration.");
    }
    const size_t base = static_cast<size_t>(found - std::begin(kBufferClasses)) * 3;
    items[base] = std::to_string(*hard);
    items[base + 1] = std::to_string(*soft);
    items[base + 2] = std::to_string(*seconds);
  }
  ConfigValue value;
  for (size_t c = 0; c < std::size(kBufferClasses); ++c) {
    value.text += (c == 0 ? "" : " ") + std::string(kBufferClasses[c]) + " " + items[c * 3] + " " +
                  items[c * 3 + 1] + " " + items[c * 3 + 2];
  }
  value.items = std::move(items);
  return value;
}

Result<ConfigValue> ParseOomScoreAdjValues(std::span<const std::string> args, const ConfigValue&,
                                           bool) {
  if (args.size() != 3) {
    return Unexpected("wrong number of arguments");
  }
  std::vector<std::string> items;
  for (const std::string& arg : args) {
    char* end = nullptr;
    errno = 0;
    const long long number = std::strtoll(arg.c_str(), &end, 10);
    if (*end != '\0' || number < -2000 || number > 2000) {
      return Unexpected("Invalid oom-score-adj-values, elements must be between -2000 and 2000.");
    }
    items.push_back(std::to_string(number));
  }
  return ListValue(std::move(items));
}

// Valkey's keyspaceEventsStringToFlags / keyspaceEventsFlagsToString.
Result<ConfigValue> ParseKeyspaceEvents(std::span<const std::string> args, const ConfigValue&,
                                        bool) {
  if (args.size() != 1) {
    return Unexpected("wrong number of arguments");
  }
  constexpr std::string_view kClasses = "g$lshzxetdn";  // 'A' is "g$lshzxetd"
  std::string flags;                                    // which of kClasses, K, E, m are on
  bool keyspace = false, keyevent = false, miss = false;
  for (const char c : args[0]) {
    if (c == 'A') {
      flags += "g$lshzxetd";
    } else if (c == 'K') {
      keyspace = true;
    } else if (c == 'E') {
      keyevent = true;
    } else if (c == 'm') {
      miss = true;
    } else if (kClasses.find(c) != std::string_view::npos) {
      flags += c;
    } else {
      return Unexpected("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
    }
  }
  ConfigValue value;
  const bool all = std::all_of(kClasses.begin(), kClasses.end() - 1,
                               [&](char c) { return flags.find(c) != std::string::npos; });
  if (all) {
    value.text = "A";
  }
  for (const char c : kClasses) {
    if ((!all || c == 'n') && flags.find(c) != std::string::npos) {
      value.text += c;
    }
  }
  value.text += std::string(keyspace ? "K" : "") + (keyevent ? "E" : "") + (miss ? "m" : "");
  return value;
}

Result<ConfigValue> ParseReplicaOf(std::span<const std::string> args, const ConfigValue&, bool) {
  if (args.empty()) {
    return ConfigValue{};  // the default: not a replica
  }
  if (args.size() != 2) {
    return Unexpected("wrong number of arguments");
  }
  if (ToLower(args[0]) == "no" && ToLower(args[1]) == "one") {
    return ConfigValue{};
  }
  char* end = nullptr;
  const long port = std::strtol(args[1].c_str(), &end, 10);
  if (port < 0 || port > 65535 || *end != '\0') {
    return Unexpected("Invalid primary port");
  }
  return ListValue({args[0], std::to_string(port)});
}

// Valkey prints each percentile with "%f" and trims trailing zeros and a trailing dot.
std::string FormatPercentile(double percentile) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%f", percentile);
  std::string text(buffer);
  if (text.find('.') != std::string::npos) {
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') {
      text.pop_back();
    }
  }
  return text;
}

Result<ConfigValue> ParsePercentiles(std::span<const std::string> args, const ConfigValue&, bool) {
  if (IsEmptyList(args)) {
    return ConfigValue{};
  }
  std::vector<std::string> items;
  for (const std::string& arg : args) {
    char* end = nullptr;
    errno = 0;
    const double percentile = std::strtod(arg.c_str(), &end);
    if (arg.empty() || *end != '\0' || errno != 0 || percentile != percentile) {
      return Unexpected("Invalid latency-tracking-info-percentiles parameters");
    }
    if (percentile > 100.0 || percentile < 0.0) {
      return Unexpected(
          "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]");
    }
    items.push_back(FormatPercentile(percentile));
  }
  return ListValue(std::move(items));
}

// shutdown-on-sigint/sigterm: "default" or any of save|nosave, now, force.
Result<ConfigValue> ParseShutdownFlags(std::span<const std::string> args, const ConfigValue&,
                                       bool) {
  constexpr std::string_view kFlags[] = {"default", "save", "nosave", "now", "force"};
  bool set[std::size(kFlags)] = {};
  if (args.empty()) {
    return Unexpected(
        "argument(s) must be one of the following: default, save, nosave, now, force");
  }
  for (const std::string& arg : args) {
    const auto* found = std::find(std::begin(kFlags), std::end(kFlags), ToLower(arg));
    if (found == std::end(kFlags)) {
      return Unexpected(
          "argument(s) must be one of the following: default, save, nosave, now, force");
    }
    set[found - std::begin(kFlags)] = true;
  }
  if (set[1] && set[2]) {
    return Unexpected("shutdown can't have both 'save' and 'nosave' flags");
  }
  std::vector<std::string> names;
  for (size_t i = 1; i < std::size(kFlags); ++i) {
    if (set[i]) {
      names.emplace_back(kFlags[i]);
    }
  }
  if (names.empty()) {
    names.emplace_back("default");
  }
  return ListValue(std::move(names));
}

// ---------------------------------------------------------------------------------------------
// Generic parsing by kind.
// ---------------------------------------------------------------------------------------------

std::string NumericTypeError(uint32_t flags) {
  if ((flags & kMemory) && (flags & kPercent)) {
    return "argument must be a memory or percent value";
  }
  if (flags & kMemory) {
    return "argument must be a memory value";
  }
  if (flags & kOctal) {
    return "argument couldn't be parsed as an octal number";
  }
  return "argument couldn't be parsed into an integer";
}

std::optional<int64_t> ReadNumber(const Directive& d, const std::string& arg) {
  if (d.flags & kMemory) {
    if (const auto bytes = ParseMemory(arg)) {
      return static_cast<int64_t>(*bytes);
    }
  }
  if ((d.flags & kPercent) && arg.size() > 1 && arg.back() == '%') {
    const auto percent = ParseInt64Strict(std::string_view(arg).substr(0, arg.size() - 1));
    if (percent && *percent >= 0) {
      return -*percent;  // Valkey stores a percentage as a negative number
    }
  }
  if (d.flags & kOctal) {
    char* end = nullptr;
    errno = 0;
    const long long octal = std::strtoll(arg.c_str(), &end, 8);
    if (errno == 0 && *end == '\0') {
      return octal;
    }
  }
  if ((d.flags & (kMemory | kPercent | kOctal)) == 0) {
    return ParseInt64Strict(arg);
  }
  return std::nullopt;
}

std::string BoundsError(const Directive& d) {
  char buffer[160];
  if (d.flags & kOctal) {
    std::snprintf(buffer, sizeof(buffer), "argument must be between %llo and %llo inclusive",
                  static_cast<unsigned long long>(d.min), static_cast<unsigned long long>(d.max));
  } else if (d.flags & kUnsigned) {
    std::snprintf(buffer, sizeof(buffer), "argument must be between %llu and %llu inclusive",
                  static_cast<unsigned long long>(d.min), static_cast<unsigned long long>(d.max));
  } else {
    std::snprintf(buffer, sizeof(buffer), "argument must be between %lld and %lld inclusive",
                  static_cast<long long>(d.min), static_cast<long long>(d.max));
  }
  return buffer;
}

Result<ConfigValue> ParseNumber(const Directive& d, const std::string& arg) {
  const auto number = ReadNumber(d, arg);
  if (!number) {
    return Unexpected(NumericTypeError(d.flags));
  }
  const int64_t v = *number;
  if (d.flags & kUnsigned) {
    const auto u = static_cast<uint64_t>(v);
    if (u < static_cast<uint64_t>(d.min) || u > static_cast<uint64_t>(d.max)) {
      return Unexpected(BoundsError(d));
    }
  } else if ((d.flags & kPercent) && v < 0) {
    if (v < d.min) {
      return Unexpected("percentage argument must be less or equal to " + std::to_string(-d.min));
    }
  } else if (v < d.min || v > d.max) {
    return Unexpected(BoundsError(d));
  }
  ConfigValue value;
  value.number = v;
  if ((d.flags & kPercent) && v < 0) {
    value.text = std::to_string(-v) + "%";
  } else if (d.flags & kOctal) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%llo", static_cast<unsigned long long>(v));
    value.text = buffer;
  } else if (d.flags & (kMemory | kUnsigned)) {
    value.text = std::to_string(static_cast<uint64_t>(v));
  } else {
    value.text = std::to_string(v);
  }
  return value;
}

Result<ConfigValue> ParseEnum(const Directive& d, const std::string& arg) {
  const std::string lowered = ToLower(arg);
  for (size_t i = 0; i < d.choices.size(); ++i) {
    if (lowered == d.choices[i]) {
      return Scalar(std::string(d.choices[i]), static_cast<int64_t>(i));
    }
  }
  std::string error = "argument(s) must be one of the following: ";
  for (size_t i = 0; i < d.choices.size(); ++i) {
    error += (i == 0 ? "" : ", ") + std::string(d.choices[i]);
  }
  return Unexpected(error);
}

// Parses a directive's arguments (already split for multi-argument directives).
Result<ConfigValue> ParseValue(const Directive& d, std::span<const std::string> args,
                               const ConfigValue& previous, bool accumulate) {
  if (d.kind == Kind::kSpecial) {
    return d.special(args, previous, accumulate);
  }
  if (args.size() != 1) {
    return Unexpected("wrong number of arguments");
  }
  const std::string& arg = args[0];
  switch (d.kind) {
    case Kind::kBool: {
      const std::string lowered = ToLower(arg);
      if (lowered != "yes" && lowered != "no") {
        return Unexpected("argument must be 'yes' or 'no'");
      }
      return Scalar(lowered, lowered == "yes" ? 1 : 0);
    }
    case Kind::kNumber:
      return ParseNumber(d, arg);
    case Kind::kEnum:
      return ParseEnum(d, arg);
    case Kind::kString:
      if (d.check != nullptr) {
        if (const char* error = d.check(arg)) {
          return Unexpected(error);
        }
      }
      return Scalar(arg);
    case Kind::kSpecial:
      break;
  }
  LATTICE_ASSERT_MSG(false, "unhandled directive kind");
  return Unexpected("unreachable");
}

// ---------------------------------------------------------------------------------------------
// Lookup by name or alias.
// ---------------------------------------------------------------------------------------------

const std::map<std::string, size_t, std::less<>>& NameIndex() {
  static const auto* index = [] {
    auto* names = new std::map<std::string, size_t, std::less<>>();
    for (size_t i = 0; i < std::size(kDirectives); ++i) {
      LATTICE_ASSERT(names->emplace(std::string(kDirectives[i].name), i).second);
      if (!kDirectives[i].alias.empty()) {
        LATTICE_ASSERT(names->emplace(std::string(kDirectives[i].alias), i).second);
      }
    }
    return names;
  }();
  return *index;
}

std::optional<size_t> Lookup(std::string_view name) {
  const auto& index = NameIndex();
  const auto found = index.find(ToLower(name));
  if (found == index.end()) {
    return std::nullopt;
  }
  return found->second;
}

size_t MustLookup(std::string_view name) {
  const auto index = Lookup(name);
  LATTICE_ASSERT_MSG(index.has_value(), "accessor for a directive missing from the table");
  return *index;
}

std::string FatalError(size_t line_number, std::string_view line, std::string_view source,
                       std::string_view reason) {
  std::string message = "*** FATAL CONFIG FILE ERROR (Lattice) ***\n";
  message += "Reading the configuration file, at line " + std::to_string(line_number) + " (" +
             std::string(source) + ")\n";
  message += ">>> '" + std::string(line) + "'\n";
  message += reason;
  return message;
}

// Valkey's sdscatrepr, for showing command-line values the way Valkey's error does.
std::string Quote(std::string_view value) {
  std::string quoted = "\"";
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      quoted += '\\';
      quoted += c;
    } else if (c == '\n') {
      quoted += "\\n";
    } else if (c == '\r') {
      quoted += "\\r";
    } else if (c == '\t') {
      quoted += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      char buffer[8];
      std::snprintf(buffer, sizeof(buffer), "\\x%02x", static_cast<unsigned char>(c));
      quoted += buffer;
    } else {
      quoted += c;
    }
  }
  return quoted + "\"";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Config.
// ---------------------------------------------------------------------------------------------

Config::Config() {
  values_.reserve(std::size(kDirectives));
  for (const Directive& d : kDirectives) {
    const std::vector<std::string> args =
        (d.flags & kMultiArg) ? SplitSpaces(d.default_text)
                              : std::vector<std::string>{std::string(d.default_text)};
    auto value = ParseValue(d, args, ConfigValue{}, false);
    if (!value.ok()) {
      std::fprintf(stderr, "default of '%s': %s\n", std::string(d.name).c_str(),
                   value.error().message.c_str());
    }
    LATTICE_ASSERT_MSG(value.ok(), "a directive's default does not parse");
    values_.push_back(std::move(value).value());
  }
}

void Config::NoteSet(size_t index) {
  const Directive& d = kDirectives[index];
  if ((d.flags & kApplies) == 0 && noticed_.emplace(d.name).second) {
    pending_notices_.emplace_back(d.name);
  }
}

std::vector<std::string> Config::TakeNotApplicableNotices() {
  return std::exchange(pending_notices_, {});
}

Result<void> Config::ApplyDirective(std::vector<std::string>& tokens) {
  const std::string name = ToLower(tokens[0]);
  if (const auto index = Lookup(name)) {
    const Directive& d = kDirectives[*index];
    std::vector<std::string> args(tokens.begin() + 1, tokens.end());
    if (!(d.flags & kMultiArg) && args.size() != 1) {
      return Unexpected("wrong number of arguments");
    }
    if ((d.flags & kMultiArg) && args.size() == 1 && !args[0].empty()) {
      // One argument holding several, as in `--save "900 1 300 10"`.
      auto split = SplitArgs(args[0]);
      if (!split) {
        return Unexpected("Unbalanced quotes in configuration line");
      }
      args = std::move(*split);
    }
    const bool accumulate = (d.flags & kAccumulate) && loaded_.contains(*index);
    auto value = ParseValue(d, args, values_[*index], accumulate);
    if (!value.ok()) {
      return Unexpected(value.error());
    }
    values_[*index] = std::move(value).value();
    loaded_.insert(*index);
    NoteSet(*index);
    return {};
  }
  if (std::find(std::begin(kDeprecated), std::end(kDeprecated), name) != std::end(kDeprecated) &&
      tokens.size() == 2) {
    if (noticed_.emplace(name).second) {
      pending_notices_.push_back(name);
    }
    return {};
  }
  if (name == "user" && tokens.size() >= 2) {  // ACL users, applied at startup (server/acl.h)
    acl_users_.emplace_back(tokens.begin() + 1, tokens.end());
    return {};
  }
  if (name == "include" || name == "rename-command" || name == "loadmodule" || name == "sentinel") {
    return Unexpected("The '" + name + "' directive is not supported by Lattice");
  }
  return Unexpected("Bad directive or wrong number of arguments");
}

Result<void> Config::LoadText(std::string_view text, std::string_view source_name) {
  size_t line_number = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    ++line_number;
    const std::string_view line = Trim(text.substr(start, end - start));
    start = end + 1;
    if (line.empty() || line[0] == '#') {
      continue;
    }
    auto tokens = SplitArgs(line);
    if (!tokens) {
      return Unexpected(
          FatalError(line_number, line, source_name, "Unbalanced quotes in configuration line"));
    }
    if (tokens->empty()) {
      continue;
    }
    if (auto applied = ApplyDirective(*tokens); !applied.ok()) {
      return Unexpected(FatalError(line_number, line, source_name, applied.error().message));
    }
  }
  return {};
}

Result<void> Config::LoadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return Unexpected("Fatal error, can't open config file '" + path +
                      "': " + std::strerror(errno));
  }
  std::stringstream contents;
  contents << file.rdbuf();
  if (file.bad()) {
    return Unexpected("Fatal error, can't read config file '" + path +
                      "': " + std::strerror(errno));
  }
  std::error_code error;
  const std::filesystem::path absolute = std::filesystem::absolute(path, error);
  config_file_ = error ? path : absolute.lexically_normal().string();
  return LoadText(contents.str(), path);
}

Result<void> Config::ApplyArgs(std::span<const std::string_view> args) {
  // Each entry: the directive's tokens and the line as Valkey would show it.
  std::vector<std::pair<std::vector<std::string>, std::string>> lines;
  bool expecting_value = false;  // right after `--name`, the next argument is always a value
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (!expecting_value && arg.starts_with("--")) {
      auto tokens = SplitArgs(arg.substr(2));
      if (!tokens || tokens->empty()) {
        tokens = std::vector<std::string>{std::string(arg.substr(2))};
      }
      lines.emplace_back(*tokens, std::string(arg.substr(2)));
      expecting_value = tokens->size() == 1;
      const bool next_is_option = i + 1 < args.size() && args[i + 1].starts_with("--");
      if (expecting_value && ToLower((*tokens)[0]) == "save" &&
          (next_is_option || i + 1 == args.size())) {
        lines.back().first.emplace_back();  // `--save` alone means save ""
        lines.back().second += " \"\"";
        expecting_value = false;
      }
      continue;
    }
    if (lines.empty()) {
      lines.emplace_back(std::vector<std::string>{}, std::string());
    }
    lines.back().first.emplace_back(arg);
    lines.back().second += (lines.back().second.empty() ? "" : " ") + Quote(arg);
    expecting_value = false;
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    auto& [tokens, shown] = lines[i];
    if (tokens.empty() || tokens[0].empty()) {
      return Unexpected(
          FatalError(i + 1, shown, "command line", "Bad directive or wrong number of arguments"));
    }
    if (auto applied = ApplyDirective(tokens); !applied.ok()) {
      return Unexpected(FatalError(i + 1, shown, "command line", applied.error().message));
    }
  }
  return {};
}

Result<void> Config::Set(std::span<const std::pair<std::string_view, std::string_view>> pairs,
                         bool client_is_local) {
  // First pass, as Valkey's configSetCommand: the first unknown, immutable, protected or
  // duplicate name fails the whole command before anything is parsed.
  std::vector<size_t> indexes;
  for (const auto& [name, value] : pairs) {
    const auto index = Lookup(name);
    if (!index) {
      return Unexpected("ERR Unknown option or number of arguments for CONFIG SET - '" +
                        std::string(name) + "'");
    }
    const Directive& d = kDirectives[*index];
    const std::string& protection = values_[MustLookup("enable-protected-configs")].text;
    const bool protected_allowed =
        protection == "yes" || (protection == "local" && client_is_local);
    const char* reason = nullptr;
    if (d.flags & kImmutable) {
      reason = "can't set immutable config";
    } else if ((d.flags & kProtected) && !protected_allowed) {
      reason = "can't set protected config";
    } else if (std::find(indexes.begin(), indexes.end(), *index) != indexes.end()) {
      reason = "duplicate parameter";
    }
    if (reason != nullptr) {
      return Unexpected("ERR CONFIG SET failed (possibly related to argument '" +
                        std::string(name) + "') - " + reason);
    }
    indexes.push_back(*index);
  }
  // Second pass: parse every value into a copy; commit only when all parse.
  std::vector<ConfigValue> parsed;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Directive& d = kDirectives[indexes[i]];
    const std::string raw(pairs[i].second);
    const std::vector<std::string> args =
        (d.flags & kMultiArg) ? SplitSpaces(raw) : std::vector<std::string>{raw};
    auto value = ParseValue(d, args, values_[indexes[i]], false);
    if (!value.ok()) {
      return Unexpected("ERR CONFIG SET failed (possibly related to argument '" +
                        ToLower(pairs[i].first) + "') - " + value.error().message);
    }
    parsed.push_back(std::move(value).value());
  }
  std::vector<size_t> changed;
  std::vector<ConfigValue> previous;
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (values_[indexes[i]].text != parsed[i].text) {
      changed.push_back(indexes[i]);
    }
    previous.push_back(std::move(values_[indexes[i]]));
    values_[indexes[i]] = std::move(parsed[i]);
  }
  // Valkey's apply step: a refusal restores every value of this CONFIG SET.
  for (const size_t index : changed) {
    if (!on_apply_) break;
    if (Result<void> applied = on_apply_(kDirectives[index].name); !applied.ok()) {
      for (size_t i = 0; i < pairs.size(); ++i) values_[indexes[i]] = std::move(previous[i]);
      return Unexpected("ERR CONFIG SET failed (possibly related to argument '" +
                        std::string(kDirectives[index].name) + "') - " + applied.error().message);
    }
  }
  for (const size_t index : indexes) NoteSet(index);
  if (on_change_) {
    for (const size_t index : changed) {
      on_change_(kDirectives[index].name);
    }
  }
  return {};
}

std::vector<std::pair<std::string, std::string>> Config::Get(
    std::span<const std::string_view> patterns) const {
  std::map<std::string, size_t> matches;  // name as shown -> directive
  for (const std::string_view pattern : patterns) {
    if (pattern.find_first_of("[*?") == std::string_view::npos) {
      if (const auto index = Lookup(pattern)) {
        matches.emplace(ToLower(pattern), *index);
      }
      continue;
    }
    for (const auto& [name, index] : NameIndex()) {
      if (GlobMatch(pattern, name, /*nocase=*/true)) {
        matches.emplace(name, index);
      }
    }
  }
  std::vector<std::pair<std::string, std::string>> result;
  result.reserve(matches.size());
  for (const auto& [name, index] : matches) {
    result.emplace_back(name, values_[index].text);
  }
  return result;
}

bool Config::IsKnown(std::string_view name) { return Lookup(name).has_value(); }

std::string Config::ValueOf(std::string_view name) const {
  const auto index = Lookup(name);
  return index ? values_[*index].text : std::string();
}

const ConfigValue& Config::At(std::string_view name) const { return values_[MustLookup(name)]; }

// An accessor's directive, looked up by name once per accessor (the table is fixed), not per
// call: some accessors run for every client read batch.
#define LATTICE_CONFIG_AT(name)                   \
  values_[([] {                                   \
    static const size_t index = MustLookup(name); \
    return index;                                 \
  })()]

// Accessors. Integer directives are range-checked on the way in, so the narrowing casts below
// never lose information.
int Config::port() const { return static_cast<int>(LATTICE_CONFIG_AT("port").number); }
std::vector<std::string> Config::bind() const { return LATTICE_CONFIG_AT("bind").items; }
std::string Config::dir() const { return LATTICE_CONFIG_AT("dir").text; }
std::string Config::region() const { return LATTICE_CONFIG_AT("region").text; }
std::string Config::shard_id() const { return LATTICE_CONFIG_AT("shard-id").text; }
int64_t Config::auto_aof_rewrite_percentage() const {
  return LATTICE_CONFIG_AT("auto-aof-rewrite-percentage").number;
}
uint64_t Config::auto_aof_rewrite_min_size() const {
  return static_cast<uint64_t>(LATTICE_CONFIG_AT("auto-aof-rewrite-min-size").number);
}
int64_t Config::repl_timeout() const { return LATTICE_CONFIG_AT("repl-timeout").number; }
int64_t Config::crdt_backlog_ops() const { return LATTICE_CONFIG_AT("crdt-backlog-ops").number; }
int64_t Config::crdt_backlog_size() const { return LATTICE_CONFIG_AT("crdt-backlog-size").number; }
int64_t Config::crdt_conflicts_max_len() const {
  return LATTICE_CONFIG_AT("crdt-conflicts-max-len").number;
}
int64_t Config::crdt_conflicts_log_rate() const {
  return LATTICE_CONFIG_AT("crdt-conflicts-log-rate").number;
}
int Config::replication_port() const {
  const int configured = static_cast<int>(LATTICE_CONFIG_AT("replication-port").number);
  return configured != 0 ? configured : (port() != 0 ? port() : tls_port()) + 10000;
}
std::vector<std::string> Config::peers() const { return LATTICE_CONFIG_AT("peer").items; }
std::vector<std::string> Config::crdt_policies() const {
  return LATTICE_CONFIG_AT("crdt-policy").items;
}
std::string Config::appendfsync() const { return LATTICE_CONFIG_AT("appendfsync").text; }
bool Config::appendonly() const { return LATTICE_CONFIG_AT("appendonly").number != 0; }
std::string Config::requirepass() const { return LATTICE_CONFIG_AT("requirepass").text; }
std::string Config::aclfile() const { return LATTICE_CONFIG_AT("aclfile").text; }
int64_t Config::acllog_max_len() const { return LATTICE_CONFIG_AT("acllog-max-len").number; }
std::string Config::masterauth() const { return LATTICE_CONFIG_AT("primaryauth").text; }
std::string Config::masteruser() const { return LATTICE_CONFIG_AT("primaryuser").text; }
bool Config::cluster_enabled() const { return LATTICE_CONFIG_AT("cluster-enabled").number != 0; }
int Config::cluster_databases() const {
  return static_cast<int>(LATTICE_CONFIG_AT("cluster-databases").number);
}
int64_t Config::cluster_node_timeout() const {
  return LATTICE_CONFIG_AT("cluster-node-timeout").number;
}
std::string Config::cluster_config_file() const {
  return LATTICE_CONFIG_AT("cluster-config-file").text;
}
bool Config::cluster_require_full_coverage() const {
  return LATTICE_CONFIG_AT("cluster-require-full-coverage").number != 0;
}
bool Config::cluster_allow_reads_when_down() const {
  return LATTICE_CONFIG_AT("cluster-allow-reads-when-down").number != 0;
}
std::string Config::cluster_announce_ip() const {
  return LATTICE_CONFIG_AT("cluster-announce-ip").text;
}
int Config::cluster_announce_port() const {
  return static_cast<int>(LATTICE_CONFIG_AT("cluster-announce-port").number);
}
int Config::tls_port() const { return static_cast<int>(LATTICE_CONFIG_AT("tls-port").number); }
std::string Config::tls_cert_file() const { return LATTICE_CONFIG_AT("tls-cert-file").text; }
std::string Config::tls_key_file() const { return LATTICE_CONFIG_AT("tls-key-file").text; }
std::string Config::tls_key_file_pass() const {
  return LATTICE_CONFIG_AT("tls-key-file-pass").text;
}
std::string Config::tls_ca_cert_file() const { return LATTICE_CONFIG_AT("tls-ca-cert-file").text; }
std::string Config::tls_ca_cert_dir() const { return LATTICE_CONFIG_AT("tls-ca-cert-dir").text; }
std::string Config::tls_auth_clients() const { return LATTICE_CONFIG_AT("tls-auth-clients").text; }
bool Config::tls_replication() const { return LATTICE_CONFIG_AT("tls-replication").number != 0; }
std::string Config::tls_protocols() const { return LATTICE_CONFIG_AT("tls-protocols").text; }
std::string Config::tls_ciphers() const { return LATTICE_CONFIG_AT("tls-ciphers").text; }
std::string Config::tls_ciphersuites() const { return LATTICE_CONFIG_AT("tls-ciphersuites").text; }
std::string Config::crdt_shard_secret() const {
  return LATTICE_CONFIG_AT("crdt-shard-secret").text;
}
bool Config::crdt_peer_protected_mode() const {
  return LATTICE_CONFIG_AT("crdt-peer-protected-mode").number != 0;
}
std::string Config::loglevel() const { return LATTICE_CONFIG_AT("loglevel").text; }
std::string Config::logfile() const { return LATTICE_CONFIG_AT("logfile").text; }
std::string Config::pidfile() const { return LATTICE_CONFIG_AT("pidfile").text; }
std::string Config::dbfilename() const { return LATTICE_CONFIG_AT("dbfilename").text; }
std::string Config::appendfilename() const { return LATTICE_CONFIG_AT("appendfilename").text; }
std::string Config::appenddirname() const { return LATTICE_CONFIG_AT("appenddirname").text; }
std::string Config::save() const { return LATTICE_CONFIG_AT("save").text; }
uint64_t Config::proto_max_bulk_len() const {
  return static_cast<uint64_t>(LATTICE_CONFIG_AT("proto-max-bulk-len").number);
}
uint64_t Config::hll_sparse_max_bytes() const {
  return static_cast<uint64_t>(LATTICE_CONFIG_AT("hll-sparse-max-bytes").number);
}
uint64_t Config::client_query_buffer_limit() const {
  return static_cast<uint64_t>(LATTICE_CONFIG_AT("client-query-buffer-limit").number);
}
// Valkey 9: in cluster mode the number of databases is cluster-databases.
int Config::databases() const {
  return cluster_enabled() ? cluster_databases()
                           : static_cast<int>(LATTICE_CONFIG_AT("databases").number);
}
int Config::maxclients() const {
  return static_cast<int>(std::min<int64_t>(LATTICE_CONFIG_AT("maxclients").number, INT_MAX));
}
int Config::timeout() const { return static_cast<int>(LATTICE_CONFIG_AT("timeout").number); }
int Config::hz() const {
  constexpr int64_t kHzMin = 1;
  constexpr int64_t kHzMax = 500;
  return static_cast<int>(std::clamp(LATTICE_CONFIG_AT("hz").number, kHzMin, kHzMax));
}
int Config::tcp_keepalive() const {
  return static_cast<int>(LATTICE_CONFIG_AT("tcp-keepalive").number);
}
bool Config::protected_mode() const { return LATTICE_CONFIG_AT("protected-mode").number != 0; }
uint64_t Config::maxmemory() const {
  return static_cast<uint64_t>(LATTICE_CONFIG_AT("maxmemory").number);
}
std::string Config::maxmemory_policy() const { return LATTICE_CONFIG_AT("maxmemory-policy").text; }
int Config::tcp_backlog() const {
  return static_cast<int>(LATTICE_CONFIG_AT("tcp-backlog").number);
}
std::string Config::notify_keyspace_events() const {
  return LATTICE_CONFIG_AT("notify-keyspace-events").text;
}
Config::OutputBufferLimit Config::pubsub_output_buffer_limit() const {
  const std::vector<std::string>& items = LATTICE_CONFIG_AT("client-output-buffer-limit").items;
  constexpr size_t kPubSubBase = 2 * 3;  // normal, replica, pubsub: 3 numbers each
  if (items.size() < kPubSubBase + 3) return {};
  const auto number = [&](size_t i) {
    return ParseInt64Strict(items[kPubSubBase + i]).value_or(0);
  };
  return {static_cast<uint64_t>(number(0)), static_cast<uint64_t>(number(1)), number(2)};
}
bool Config::crdt_pubsub_region_local() const {
  return LATTICE_CONFIG_AT("crdt-pubsub-region-local").number != 0;
}
std::string Config::enable_protected_configs() const {
  return LATTICE_CONFIG_AT("enable-protected-configs").text;
}
std::string Config::enable_debug_command() const {
  return LATTICE_CONFIG_AT("enable-debug-command").text;
}
bool Config::latency_tracking() const { return LATTICE_CONFIG_AT("latency-tracking").number != 0; }
int64_t Config::slowlog_log_slower_than() const {
  return LATTICE_CONFIG_AT("commandlog-execution-slower-than").number;
}
int64_t Config::slowlog_max_len() const {
  return LATTICE_CONFIG_AT("commandlog-slow-execution-max-len").number;
}
int64_t Config::latency_monitor_threshold() const {
  return LATTICE_CONFIG_AT("latency-monitor-threshold").number;
}
std::vector<double> Config::latency_tracking_info_percentiles() const {
  std::vector<double> percentiles;
  for (const std::string& item : LATTICE_CONFIG_AT("latency-tracking-info-percentiles").items) {
    percentiles.push_back(std::strtod(item.c_str(), nullptr));
  }
  return percentiles;
}
std::string Config::availability_zone() const {
  return LATTICE_CONFIG_AT("availability-zone").text;
}
bool Config::extended_redis_compatibility() const {
  return LATTICE_CONFIG_AT("extended-redis-compatibility").number != 0;
}

}  // namespace lattice::server

// ---------------------------------------------------------------------------------------------
// CONFIG REWRITE
// ---------------------------------------------------------------------------------------------

namespace lattice::server {
namespace {

constexpr std::string_view kRewriteSignature = "# Generated by CONFIG REWRITE";

// A value as a config file token: bare when it reads back as itself, else double-quoted with
// sdssplitargs' escapes.
std::string QuoteConfigToken(std::string_view value) {
  const bool bare = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '"' && c != '\'' && c != '\\';
  });
  if (bare) return std::string(value);
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
      out += hex;
    }
  }
  return out + "\"";
}

// The lines that set directive `d` to `value`: one per save pair, crdt-policy triple or peer
// (the directives whose lines accumulate), one line otherwise.
std::vector<std::string> DirectiveLines(const Directive& d, const ConfigValue& value) {
  const std::string name(d.name);
  if (!(d.flags & kAccumulate)) {
    if (d.flags & kMultiArg) return {name + " " + (value.text.empty() ? "\"\"" : value.text)};
    return {name + " " + QuoteConfigToken(value.text)};
  }
  if (name == "save" && value.items.empty()) return {"save \"\""};
  const size_t group = name == "save" ? 2 : name == "crdt-policy" ? 3 : 1;
  std::vector<std::string> lines;
  for (size_t i = 0; i + group <= value.items.size(); i += group) {
    std::string line = name;
    for (size_t k = i; k < i + group; ++k) line += " " + QuoteConfigToken(value.items[k]);
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace

Result<void> Config::Rewrite(const std::vector<std::string>* peers) const {
  if (config_file_.empty()) {
    return Unexpected(std::string("ERR The server is running without a config file"));
  }
  const auto failed = [] {
    return Unexpected(std::string("ERR Rewriting config file: ") + std::strerror(errno));
  };
  std::vector<std::string> lines;
  {
    std::ifstream in(config_file_, std::ios::binary);
    if (!in && errno != ENOENT) return failed();
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  // Where each directive is set now (by table index), and whether the signature is there.
  std::map<size_t, std::vector<size_t>> at;
  bool has_tail = false;
  for (size_t n = 0; n < lines.size(); ++n) {
    const std::string_view line = Trim(lines[n]);
    has_tail = has_tail || line == kRewriteSignature;
    if (line.empty() || line[0] == '#') continue;
    const auto tokens = SplitArgs(line);
    if (!tokens || tokens->empty()) continue;
    if (const auto index = Lookup((*tokens)[0])) at[*index].push_back(n);
  }
  static const Config kDefaults;
  std::vector<std::string> appended;
  std::map<size_t, std::vector<std::string>> after;  // extra lines after line n
  std::set<size_t> dropped;                          // repeated lines of a directive
  for (size_t i = 0; i < std::size(kDirectives); ++i) {
    ConfigValue value = values_[i];
    if (peers != nullptr && kDirectives[i].name == "peer") value.items = *peers;
    const bool changed =
        value.text != kDefaults.values_[i].text || value.items != kDefaults.values_[i].items;
    const auto existing = at.find(i);
    if (existing == at.end() && !changed) continue;
    std::vector<std::string> rendered = DirectiveLines(kDirectives[i], value);
    if (existing == at.end()) {
      appended.insert(appended.end(), rendered.begin(), rendered.end());
      continue;
    }
    const std::vector<size_t>& where = existing->second;
    for (size_t k = 0; k < where.size(); ++k) {
      if (k < rendered.size()) {
        lines[where[k]] = rendered[k];
      } else {
        dropped.insert(where[k]);
      }
    }
    for (size_t k = where.size(); k < rendered.size(); ++k)
      after[where.back()].push_back(rendered[k]);
  }
  std::string text;
  for (size_t n = 0; n < lines.size(); ++n) {
    if (!dropped.contains(n)) text += lines[n] + "\n";
    if (const auto extra = after.find(n); extra != after.end()) {
      for (const std::string& line : extra->second) text += line + "\n";
    }
  }
  if (!appended.empty() && !has_tail) text += std::string(kRewriteSignature) + "\n";
  for (const std::string& line : appended) text += line + "\n";
  const std::string tmp = config_file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out || !(out << text) || !out.flush()) return failed();
  }
  if (std::rename(tmp.c_str(), config_file_.c_str()) != 0) return failed();
  return {};
}

}  // namespace lattice::server
