// Tests of the configuration registry: file syntax and quoting, Valkey's exact error texts,
// memory units, CONFIG SET atomicity and immutability, CONFIG GET globs, command-line arguments,
// not-applicable notices, and loading a stock valkey.conf / redis.conf.

#include "server/config.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "resp/request_parser.h"

namespace lattice::server {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Result<void> SetPairs(Config& config,
                      std::vector<std::pair<std::string_view, std::string_view>> pairs) {
  return config.Set(pairs);
}

std::string SetError(Config& config,
                     std::vector<std::pair<std::string_view, std::string_view>> pairs) {
  const auto result = config.Set(pairs);
  REQUIRE_FALSE(result.ok());
  return result.error().message;
}

// The reason line (last line) of a load error.
std::string LoadReason(std::string_view text) {
  Config config;
  const auto result = config.LoadText(text, "test.conf");
  REQUIRE_FALSE(result.ok());
  const std::string& message = result.error().message;
  return message.substr(message.rfind('\n') + 1);
}

Pairs GetPairs(const Config& config, std::vector<std::string_view> patterns) {
  return config.Get(patterns);
}

std::string Get1(const Config& config, std::string_view name) {
  const Pairs pairs = GetPairs(config, {name});
  REQUIRE(pairs.size() == 1);
  return pairs[0].second;
}

Result<void> Args(Config& config, std::vector<std::string_view> args) {
  return config.ApplyArgs(args);
}

TEST_CASE("config: defaults follow Valkey (and Lattice for its own directives)", "[config]") {
  const Config config;
  CHECK(config.port() == 6379);
  CHECK(config.bind() == std::vector<std::string>{"*", "-::*"});
  CHECK(Get1(config, "bind") == "* -::*");
  CHECK(config.dir() == "./");
  CHECK(config.region().empty());
  CHECK(config.replication_port() == 16379);
  CHECK(config.peers().empty());
  CHECK(config.appendfsync() == "everysec");
  CHECK(config.requirepass().empty());
  CHECK_FALSE(config.cluster_enabled());
  CHECK(config.tls_port() == 0);
  CHECK_FALSE(config.tls_replication());
  CHECK(config.tls_auth_clients() == "yes");
  CHECK(config.loglevel() == "notice");
  CHECK(config.proto_max_bulk_len() == 512ULL * 1024 * 1024);
  CHECK(Get1(config, "proto-max-bulk-len") == "536870912");
  CHECK(config.client_query_buffer_limit() == 1024ULL * 1024 * 1024);
  CHECK(Get1(config, "client-query-buffer-limit") == "1073741824");
  CHECK(config.databases() == 16);
  CHECK(config.maxclients() == 10000);
  CHECK(config.timeout() == 0);
  CHECK(config.hz() == 10);
  CHECK(config.protected_mode());
  CHECK(Get1(config, "protected-mode") == "yes");
  CHECK(config.maxmemory() == 0);
  CHECK(config.maxmemory_policy() == "noeviction");
  CHECK(config.tcp_backlog() == 511);
  CHECK(config.save() == "3600 1 300 100 60 10000");
  CHECK(config.dbfilename() == "dump.rdb");
  CHECK(config.cluster_databases() == 1);
  CHECK(config.cluster_node_timeout() == 15000);
  CHECK(Get1(config, "hash-max-listpack-entries") == "512");
  CHECK(Get1(config, "list-max-listpack-size") == "-2");
  CHECK(Get1(config, "latency-tracking-info-percentiles") == "50 99 99.9");
  CHECK(Get1(config, "client-output-buffer-limit") ==
        "normal 0 0 0 replica 268435456 67108864 60 pubsub 33554432 8388608 60");
}

TEST_CASE("config: file syntax, comments, case and quoting", "[config]") {
  Config config;
  const auto result = config.LoadText(
      "# a comment\n"
      "\n"
      "   PORT 7001   \r\n"
      "\tLogLevel WARNING\n"
      "requirepass \"pa ss\\x41\\n\\\"q\"\n"
      "masterauth 'it\\'s'\n"
      "tls-protocols \"TLSv1.2 TLSv1.3\"\n"
      "appendfsync always\n"
      "appendfsync no\n"
      "protected-mode NO\n"
      "region eu-west",
      "test.conf");
  REQUIRE(result.ok());
  CHECK(config.port() == 7001);
  CHECK(config.loglevel() == "warning");
  CHECK(config.requirepass() == "pa ssA\n\"q");
  CHECK(config.masterauth() == "it's");
  CHECK(config.tls_protocols() == "TLSv1.2 TLSv1.3");
  CHECK(config.appendfsync() == "no");  // the last line wins
  CHECK_FALSE(config.protected_mode());
  CHECK(config.region() == "eu-west");
  CHECK(config.replication_port() == 17001);
}

TEST_CASE("config: load errors name the line, its text and Valkey's reason", "[config]") {
  Config config;
  const auto result = config.LoadText("port 7001\n# comment\nfoo bar\nport 7002\n", "x.conf");
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message ==
        "*** FATAL CONFIG FILE ERROR (Lattice) ***\n"
        "Reading the configuration file, at line 3 (x.conf)\n"
        ">>> 'foo bar'\n"
        "Bad directive or wrong number of arguments");
  CHECK(config.port() == 7001);  // lines before the error applied, none after

  CHECK(LoadReason("port 1 2") == "wrong number of arguments");
  CHECK(LoadReason("port") == "wrong number of arguments");
  CHECK(LoadReason("port abc") == "argument couldn't be parsed into an integer");
  CHECK(LoadReason("port 070") == "argument couldn't be parsed into an integer");
  CHECK(LoadReason("port 65536") == "argument must be between 0 and 65535 inclusive");
  CHECK(LoadReason("maxclients 0") == "argument must be between 1 and 4294967295 inclusive");
  CHECK(LoadReason("protected-mode maybe") == "argument must be 'yes' or 'no'");
  CHECK(LoadReason("maxmemory lots") == "argument must be a memory value");
  CHECK(LoadReason("proto-max-bulk-len 1000") ==
        "argument must be between 1048576 and 9223372036854775807 inclusive");
  CHECK(LoadReason("loglevel loud") ==
        "argument(s) must be one of the following: debug, verbose, notice, warning, nothing");
  CHECK(LoadReason("appendfsync sometimes") ==
        "argument(s) must be one of the following: everysec, always, no");
  CHECK(LoadReason("requirepass \"unterminated") == "Unbalanced quotes in configuration line");
  CHECK(LoadReason("requirepass \"a\"b") == "Unbalanced quotes in configuration line");
  CHECK(LoadReason("save 900") == "Invalid save parameters");
  CHECK(LoadReason("save 0 1") == "Invalid save parameters");
  CHECK(LoadReason("notify-keyspace-events Q") ==
        "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
  CHECK(LoadReason("dbfilename /tmp/dump.rdb") == "dbfilename can't be a path, just a filename");
  // dir must name an existing directory (Valkey's chdir), and nothing is created.
  CHECK(LoadReason("dir /nonexistent/lattice-data") == "No such file or directory");
  CHECK(LoadReason("dir /dev/null") == "Not a directory");
  CHECK_FALSE(std::filesystem::exists("/nonexistent/lattice-data"));
  Config with_dir;
  CHECK(with_dir.LoadText("dir /tmp", "test.conf").ok());
  CHECK(LoadReason("include /etc/other.conf") ==
        "The 'include' directive is not supported by Lattice");
  CHECK(LoadReason("rename-command FLUSHALL \"\"") ==
        "The 'rename-command' directive is not supported by Lattice");
  CHECK(LoadReason("user") == "Bad directive or wrong number of arguments");
  CHECK(LoadReason("peer nonsense") == "Invalid peer address 'nonsense', expected host:port");
  CHECK(LoadReason("peer host:0") == "Invalid peer address 'host:0', expected host:port");
  CHECK(LoadReason("bind 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17") ==
        "Too many bind addresses specified.");
  CHECK(LoadReason("list-max-ziplist-entries 1 2") == "Bad directive or wrong number of arguments");
}

TEST_CASE("config: LoadFile reports a missing file", "[config]") {
  Config config;
  const auto result = config.LoadFile("/nonexistent/lattice.conf");
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message ==
        "Fatal error, can't open config file '/nonexistent/lattice.conf': No such file or "
        "directory");
}

TEST_CASE("config: memory units as Valkey reads them", "[config]") {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      {"0", "0"},
      {"123", "123"},
      {"5b", "5"},
      {"1k", "1000"},
      {"1kb", "1024"},
      {"1K", "1000"},
      {"1KB", "1024"},
      {"2m", "2000000"},
      {"2mb", "2097152"},
      {"1g", "1000000000"},
      {"1gb", "1073741824"},
      {"1Gb", "1073741824"},
      {"1gB", "1073741824"},
      {"3GB", "3221225472"},
  };
  for (const auto& [input, bytes] : cases) {
    CAPTURE(input);
    Config config;
    REQUIRE(SetPairs(config, {{"maxmemory", input}}).ok());
    CHECK(Get1(config, "maxmemory") == bytes);
  }
  for (const std::string_view bad : {"1kib", "-1", "1.5mb", "mb1", "1 mb", "1t"}) {
    CAPTURE(bad);
    Config config;
    CHECK(SetError(config, {{"maxmemory", bad}}) ==
          "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a "
          "memory value");
  }
  Config config;
  REQUIRE(SetPairs(config, {{"proto-max-bulk-len", "1mb"}}).ok());
  CHECK(config.proto_max_bulk_len() == 1048576);
  REQUIRE(SetPairs(config, {{"maxmemory-clients", "10%"}}).ok());
  CHECK(Get1(config, "maxmemory-clients") == "10%");
  CHECK(SetError(config, {{"maxmemory-clients", "101%"}}) ==
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage "
        "argument must be less or equal to 100");
}

TEST_CASE("config: CONFIG SET applies, reports changes, and uses Valkey's errors", "[config]") {
  Config config;
  std::vector<std::string> changed;
  config.set_on_change([&](std::string_view name) { changed.emplace_back(name); });
  REQUIRE(SetPairs(config, {{"loglevel", "debug"}, {"maxmemory", "100mb"}, {"hz", "10"}}).ok());
  CHECK(config.loglevel() == "debug");
  CHECK(config.maxmemory() == 100ULL * 1024 * 1024);
  CHECK(changed == std::vector<std::string>{"loglevel", "maxmemory"});  // hz did not change

  CHECK(SetError(config, {{"no-such-option", "1"}}) ==
        "ERR Unknown option or number of arguments for CONFIG SET - 'no-such-option'");
  CHECK(SetError(config, {{"databases", "4"}}) ==
        "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable "
        "config");
  CHECK(SetError(config, {{"cluster-enabled", "yes"}}) ==
        "ERR CONFIG SET failed (possibly related to argument 'cluster-enabled') - can't set "
        "immutable config");
  CHECK(SetError(config, {{"peer", "h:1"}}) ==
        "ERR CONFIG SET failed (possibly related to argument 'peer') - can't set immutable config");
  CHECK(SetError(config, {{"dbfilename", "x.rdb"}}) ==
        "ERR CONFIG SET failed (possibly related to argument 'dbfilename') - can't set protected "
        "config");
  CHECK(SetError(config, {{"hz", "1"}, {"HZ", "2"}}) ==
        "ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate parameter");
  CHECK(SetError(config, {{"Protected-Mode", "maybe"}}) ==
        "ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must "
        "be 'yes' or 'no'");
  CHECK(SetError(config, {{"timeout", "x"}}) ==
        "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be "
        "parsed into an integer");
  CHECK(SetError(config, {{"maxmemory-policy", "lru"}}) ==
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) "
        "must be one of the following: volatile-lru, volatile-lfu, volatile-random, "
        "volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction");
}

TEST_CASE("config: CONFIG SET is all or nothing", "[config]") {
  Config config;
  int calls = 0;
  config.set_on_change([&](std::string_view) { ++calls; });
  const Pairs before = GetPairs(config, {"*"});
  CHECK_FALSE(
      SetPairs(config, {{"maxmemory", "1gb"}, {"loglevel", "debug"}, {"timeout", "-1"}}).ok());
  CHECK_FALSE(SetPairs(config, {{"maxmemory", "1gb"}, {"nonexistent", "1"}}).ok());
  CHECK_FALSE(SetPairs(config, {{"maxmemory", "1gb"}, {"port", "1"}}).ok());
  CHECK(GetPairs(config, {"*"}) == before);
  CHECK(calls == 0);
  CHECK(config.TakeNotApplicableNotices().empty());
}

TEST_CASE("config: CONFIG SET of list directives", "[config]") {
  Config config;
  REQUIRE(SetPairs(config, {{"save", "900 1 300 10"}}).ok());
  CHECK(config.save() == "900 1 300 10");
  REQUIRE(SetPairs(config, {{"save", ""}}).ok());
  CHECK(config.save().empty());
  REQUIRE(SetPairs(config, {{"client-output-buffer-limit", "pubsub 64mb 16mb 30"}}).ok());
  CHECK(Get1(config, "client-output-buffer-limit") ==
        "normal 0 0 0 replica 268435456 67108864 60 pubsub 67108864 16777216 30");
  REQUIRE(SetPairs(config, {{"client-output-buffer-limit", "slave 1mb 1mb 1"}}).ok());
  CHECK(Get1(config, "client-output-buffer-limit") ==
        "normal 0 0 0 replica 1048576 1048576 1 pubsub 67108864 16777216 30");
  REQUIRE(SetPairs(config, {{"notify-keyspace-events", "KEA"}}).ok());
  CHECK(config.notify_keyspace_events() == "AKE");
  REQUIRE(SetPairs(config, {{"notify-keyspace-events", "Ex"}}).ok());
  CHECK(config.notify_keyspace_events() == "xE");
  REQUIRE(SetPairs(config, {{"latency-tracking-info-percentiles", "50.0 99.900 100"}}).ok());
  CHECK(Get1(config, "latency-tracking-info-percentiles") == "50 99.9 100");
  REQUIRE(SetPairs(config, {{"hz", "1000"}}).ok());
  CHECK(Get1(config, "hz") == "1000");
  CHECK(config.hz() == 500);  // clamped on use, as Valkey does
}

TEST_CASE("config: CONFIG GET globs over names and aliases", "[config]") {
  Config config;
  const Pairs entries = GetPairs(config, {"*max-*-entries*"});
  std::vector<std::string> names;
  for (const auto& [name, value] : entries) {
    names.push_back(name);
  }
  CHECK(names == std::vector<std::string>{"hash-max-listpack-entries", "hash-max-ziplist-entries",
                                          "set-max-intset-entries", "set-max-listpack-entries",
                                          "zset-max-listpack-entries", "zset-max-ziplist-entries"});
  CHECK(GetPairs(config, {"PORT"}) == Pairs{{"port", "6379"}});
  CHECK(GetPairs(config, {"slave-read-only"}) == Pairs{{"slave-read-only", "yes"}});
  CHECK(GetPairs(config, {"port", "port", "P?RT", "tls-port", "nope"}) ==
        Pairs{{"port", "6379"}, {"tls-port", "0"}});
  CHECK(GetPairs(config, {"nope*"}).empty());
  const Pairs all = GetPairs(config, {"*"});
  CHECK(all.size() > 230);
  for (size_t i = 1; i < all.size(); ++i) {
    CHECK(all[i - 1].first < all[i].first);  // sorted, each name once
  }
  CHECK(Config::IsKnown("Slave-Read-Only"));
  CHECK_FALSE(Config::IsKnown("nope"));
  CHECK(config.ValueOf("maxmemory-policy") == "noeviction");
}

TEST_CASE("config: command-line arguments", "[config]") {
  Config config;
  REQUIRE(config.LoadText("peer a:1\nsave 100 1\n", "file").ok());
  REQUIRE(Args(config, {"--port", "7001", "--peer", "h1:7002", "--peer", "[::1]:7003", "--bind",
                        "127.0.0.1", "::1", "--requirepass", "--odd", "--save", "--region",
                        "us-east", "--replication-port 17111"})
              .ok());
  CHECK(config.port() == 7001);
  CHECK(config.peers() == std::vector<std::string>{"a:1", "h1:7002", "[::1]:7003"});
  CHECK(config.bind() == std::vector<std::string>{"127.0.0.1", "::1"});
  CHECK(config.requirepass() == "--odd");  // the first argument after --name is its value
  CHECK(config.save().empty());            // `--save` alone means save ""
  CHECK(config.region() == "us-east");
  CHECK(config.replication_port() == 17111);

  Config quoted;
  REQUIRE(Args(quoted, {"--save", "900 1 300 10", "--appendfsync", "always"}).ok());
  CHECK(quoted.save() == "900 1 300 10");
  CHECK(quoted.appendfsync() == "always");

  Config bad;
  const auto result = Args(bad, {"--port", "7001", "--tls-port", "x y"});
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message ==
        "*** FATAL CONFIG FILE ERROR (Lattice) ***\n"
        "Reading the configuration file, at line 2 (command line)\n"
        ">>> 'tls-port \"x y\"'\n"
        "argument couldn't be parsed into an integer");
  Config unknown;
  const auto unknown_result = Args(unknown, {"--no-such", "1"});
  REQUIRE_FALSE(unknown_result.ok());
  CHECK(unknown_result.error().message.ends_with("Bad directive or wrong number of arguments"));
}

TEST_CASE("config: not-applicable directives are accepted and noticed once", "[config]") {
  Config config;
  REQUIRE(config
              .LoadText("hash-max-listpack-entries 128\n"
                        "io-threads 4\n"
                        "hash-max-ziplist-entries 256\n"
                        "port 7000\n"
                        "list-max-ziplist-entries 512\n",
                        "x")
              .ok());
  CHECK(config.TakeNotApplicableNotices() == std::vector<std::string>{"hash-max-listpack-entries",
                                                                      "io-threads",
                                                                      "list-max-ziplist-entries"});
  CHECK(Get1(config, "hash-max-listpack-entries") == "256");
  CHECK(Get1(config, "io-threads") == "4");
  REQUIRE(Args(config, {"--activerehashing", "no", "--io-threads", "2"}).ok());
  REQUIRE(SetPairs(config, {{"hash-max-listpack-entries", "64"}, {"lazyfree-lazy-eviction", "no"}})
              .ok());
  CHECK(config.TakeNotApplicableNotices() ==
        std::vector<std::string>{"activerehashing", "lazyfree-lazy-eviction"});
  CHECK(config.TakeNotApplicableNotices().empty());
  CHECK(Get1(config, "activerehashing") == "no");
}

std::filesystem::path FixturePath() {
  return std::filesystem::path(LATTICE_TESTS_DIR) / "server" / "data" / "valkey-like.conf";
}

TEST_CASE("config: a valkey.conf from an existing deployment loads", "[config]") {
  Config config;
  const auto result = config.LoadFile(FixturePath().string());
  INFO((result.ok() ? std::string() : result.error().message));
  REQUIRE(result.ok());
  CHECK(config.bind() == std::vector<std::string>{"127.0.0.1", "-::1"});
  CHECK(config.save() == "3600 1 300 100 60 10000");  // save lines accumulate
  CHECK(config.maxmemory() == 4ULL * 1024 * 1024 * 1024);
  CHECK(config.maxmemory_policy() == "allkeys-lru");
  CHECK(config.masterauth() == "s3cret");
  CHECK(config.masteruser() == "replicator");
  CHECK(config.cluster_config_file() == "nodes-6379.conf");
  CHECK(Get1(config, "unixsocketperm") == "700");
  CHECK(Get1(config, "stream-node-max-bytes") == "4096");
  const auto notices = config.TakeNotApplicableNotices();
  CHECK(std::find(notices.begin(), notices.end(), "io-threads") != notices.end());
  CHECK(std::find(notices.begin(), notices.end(), "port") == notices.end());

  // Debian's redis.conf, when installed, must load as well.
  if (std::filesystem::exists("/etc/redis/redis.conf")) {
    Config debian;
    const auto loaded = debian.LoadFile("/etc/redis/redis.conf");
    INFO((loaded.ok() ? std::string() : loaded.error().message));
    CHECK(loaded.ok());
  }
}

}  // namespace
}  // namespace lattice::server

namespace lattice::server {
namespace {

TEST_CASE("config lines split like inline commands (one sdssplitargs)", "[config]") {
  Config config;
  // A quote may open mid-argument, as in Valkey's sdssplitargs: a"b c" is one argument "ab c".
  REQUIRE(config.LoadText("requirepass a\"b c\"\n", "test.conf").ok());
  CHECK(config.requirepass() == "ab c");
  CHECK(SplitArgs("requirepass a\"b c\"") ==
        std::optional<std::vector<std::string>>({"requirepass", "ab c"}));
  CHECK_FALSE(config.LoadText("requirepass \"x\"y\n", "test.conf").ok());  // quote then text
}

TEST_CASE("config: an apply refusal restores every value of the CONFIG SET", "[config][tls]") {
  Config config;
  std::vector<std::string> applied;
  config.set_on_apply([&applied](std::string_view name) -> Result<void> {
    applied.emplace_back(name);
    if (name == "tls-key-file") {
      return Unexpected("Unable to update TLS configuration. Check server logs.");
    }
    return {};
  });
  REQUIRE(SetPairs(config, {{"tls-cert-file", "/a.crt"}}).ok());
  CHECK(config.tls_cert_file() == "/a.crt");
  CHECK(SetError(config,
                 {{"tls-cert-file", "/b.crt"}, {"timeout", "5"}, {"tls-key-file", "/b.key"}}) ==
        "ERR CONFIG SET failed (possibly related to argument 'tls-key-file') - Unable to update "
        "TLS configuration. Check server logs.");
  CHECK(config.tls_cert_file() == "/a.crt");
  CHECK(config.tls_key_file().empty());
  CHECK(config.timeout() == 0);
  CHECK(applied ==
        std::vector<std::string>{"tls-cert-file", "tls-cert-file", "timeout", "tls-key-file"});
}

TEST_CASE("config: TLS directives Lattice applies", "[config][tls]") {
  Config config;
  CHECK(config.crdt_shard_secret().empty());
  CHECK(config.tls_auth_clients() == "yes");
  std::vector<std::string_view> args = {"--port", "0", "--tls-port", "7443", "--crdt-shard-secret",
                                        "s"};
  REQUIRE(config.ApplyArgs(args).ok());
  CHECK(config.replication_port() == 17443);  // tls-port + 10000 without a plain port
  CHECK(config.crdt_shard_secret() == "s");
  CHECK(config.TakeNotApplicableNotices().empty());
  REQUIRE(SetPairs(config, {{"tls-prefer-server-ciphers", "yes"},
                            {"tls-auth-clients", "optional"},
                            {"tls-client-cert-file", "/c.crt"}})
              .ok());
  CHECK(config.TakeNotApplicableNotices().empty());
}

}  // namespace
}  // namespace lattice::server
