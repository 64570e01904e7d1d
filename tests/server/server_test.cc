// Command dispatch and the server/connection families, through TestServer (no sockets).

#include "server/server.h"

#include <catch2/catch.hpp>

#include "server/server_test_util.h"

namespace lattice::server {
namespace {

using testing::TestServer;

Config WithPassword(std::string_view password) {
  Config config;
  std::vector<std::string_view> args = {"--requirepass", password};
  REQUIRE(config.ApplyArgs(args).ok());
  return config;
}

TEST_CASE("dispatch: unknown commands, arity and subcommands use Valkey's words", "[server]") {
  TestServer t;
  CHECK(t.Run({"NOSUCH", "a", "b"}) ==
        "(error) ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ");
  CHECK(t.Run({"nosuch"}) == "(error) ERR unknown command 'nosuch', with args beginning with: ");
  CHECK(t.Run({"echo"}) == "(error) ERR wrong number of arguments for 'echo' command");
  CHECK(t.Run({"client"}) == "(error) ERR wrong number of arguments for 'client' command");
  CHECK(t.Run({"client", "setname"}) ==
        "(error) ERR wrong number of arguments for 'client|setname' command");
  CHECK(t.Run({"client", "bogus"}) == "(error) ERR unknown subcommand 'bogus'. Try CLIENT HELP.");
  CHECK(t.Run({"PiNg"}) == "PONG");
  CHECK(t.Run({"ping", "a", "b"}) == "(error) ERR wrong number of arguments for 'ping' command");
}

TEST_CASE("dispatch: an unknown command's arguments are quoted up to 128 bytes", "[server]") {
  TestServer t;
  const std::string reply = t.Run({"x", std::string(300, 'a'), "b"});
  CHECK(reply.size() < 300);
  CHECK(reply.find("'b'") == std::string::npos);
}

TEST_CASE("auth: lookup and arity come before NOAUTH, as in Valkey", "[server]") {
  TestServer t(WithPassword("pw"));
  CHECK(t.Run({"echo"}) == "(error) ERR wrong number of arguments for 'echo' command");
  CHECK(t.Run({"nosuch"}) == "(error) ERR unknown command 'nosuch', with args beginning with: ");
  CHECK(t.Run({"ping"}) == "(error) NOAUTH Authentication required.");
  CHECK(t.Run({"auth", "nope"}) ==
        "(error) WRONGPASS invalid username-password pair or user is disabled.");
  CHECK(t.Run({"auth", "pw"}) == "OK");
  CHECK(t.Run({"ping"}) == "PONG");
  CHECK(t.Run({"reset"}) == "RESET");
  CHECK(t.Run({"ping"}) == "(error) NOAUTH Authentication required.");
  CHECK(t.Run({"auth", "default", "pw"}) == "OK");
  CHECK(t.Run({"auth", "a", "b", "c"}) == "(error) ERR syntax error");
}

TEST_CASE("auth: without a password AUTH explains itself", "[server]") {
  TestServer t;
  CHECK(t.Run({"auth", "x"}) ==
        "(error) ERR AUTH <password> called without any password configured for the default "
        "user. Are you sure your configuration is correct?");
  CHECK(t.Run({"auth", "default", "anything"}) == "OK");
}

TEST_CASE("hello: protocol switch, map reply and errors", "[server]") {
  TestServer t;
  CHECK(t.Run({"hello", "x"}) == "(error) ERR Protocol version is not an integer or out of range");
  CHECK(t.Run({"hello", "4"}) == "(error) NOPROTO unsupported protocol version");
  CHECK(t.Run({"hello", "3", "bogus"}) == "(error) ERR Syntax error in HELLO option 'bogus'");
  const std::string reply = t.Run({"hello", "3", "setname", "me"});
  CHECK(reply.starts_with("{\"server\": \"valkey\", \"version\": \"9.0.0\", \"proto\": 3"));
  CHECK(t.client().protocol == Protocol::kResp3);
  CHECK(t.client().name == "me");
  // RESP2 has no maps: the same reply is a flat array of 14 elements.
  const RespValue resp2 = t.RunValue({"hello", "2"});
  CHECK(resp2.type == RespValue::Type::kArray);
  CHECK(resp2.elements.size() == 14);
}

TEST_CASE("hello: AUTH inside HELLO authenticates", "[server]") {
  TestServer t(WithPassword("pw"));
  CHECK(t.Run({"hello", "3"}).starts_with("(error) NOAUTH HELLO must be called"));
  CHECK(t.Run({"hello", "3", "auth", "default", "bad"}) ==
        "(error) WRONGPASS invalid username-password pair or user is disabled.");
  CHECK(t.Run({"hello", "3", "auth", "default", "pw"}).starts_with("{"));
  CHECK(t.client().authenticated);
}

TEST_CASE("select: range and integer errors", "[server]") {
  TestServer t;
  CHECK(t.Run({"select", "15"}) == "OK");
  CHECK(t.client().db == 15);
  CHECK(t.Run({"select", "16"}) == "(error) ERR DB index is out of range");
  CHECK(t.Run({"select", "-1"}) == "(error) ERR DB index is out of range");
  CHECK(t.Run({"select", "01"}) == "(error) ERR value is not an integer or out of range");
}

TEST_CASE("client: id, names, info, list and kill", "[server]") {
  TestServer t;
  const size_t other = t.AddClient();
  CHECK(t.Run({"client", "id"}) == std::to_string(t.client().id));
  CHECK(t.Run({"client", "getname"}) == "(nil)");
  CHECK(t.Run({"client", "setname", "a b"}) ==
        "(error) ERR Client names cannot contain spaces, newlines or special characters.");
  CHECK(t.Run({"client", "setname", "alpha"}) == "OK");
  CHECK(t.Run({"client", "getname"}) == "\"alpha\"");
  CHECK(t.Run({"client", "setinfo", "lib-name", "redis-py"}) == "OK");
  CHECK(t.Run({"client", "setinfo", "color", "x"}) == "(error) ERR Unrecognized option 'color'");
  const std::string info = t.Run({"client", "info"});
  CHECK(info.find("name=alpha") != std::string::npos);
  CHECK(info.find("lib-name=redis-py") != std::string::npos);
  CHECK(info.find("cmd=client|info") != std::string::npos);
  const std::string list = t.Run({"client", "list"});
  CHECK(list.find("id=" + std::to_string(t.client(other).id) + " ") != std::string::npos);
  CHECK(t.Run({"client", "kill", "id", "x"}) == "(error) ERR client-id should be greater than 0");
  CHECK(t.Run({"client", "kill", "9.9.9.9:1"}) == "(error) ERR No such client");
  CHECK(t.Run({"client", "kill", "id", std::to_string(t.client(other).id)}) == "1");
  CHECK(t.client(other).killed);
  CHECK(t.Run({"client", "kill", "id", std::to_string(t.client().id)}) == "0");  // skipme yes
}

TEST_CASE("quit closes after the reply", "[server]") {
  TestServer t;
  CHECK(t.Run({"quit"}) == "OK");
  CHECK(t.client().close_after_reply);
}

TEST_CASE("config: get, set, errors", "[server]") {
  TestServer t;
  CHECK(t.Run({"config", "get", "maxclients"}) == "[\"maxclients\", \"10000\"]");  // RESP2
  CHECK(t.Run({"config", "set", "maxclients"}) ==
        "(error) ERR wrong number of arguments for 'config|set' command");
  CHECK(t.Run({"config", "set", "maxclients", "5", "timeout"}) ==
        "(error) ERR wrong number of arguments for 'config|set' command");
  CHECK(t.Run({"config", "set", "nosuch", "1"}) ==
        "(error) ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'");
  CHECK(t.Run({"config", "set", "maxclients", "5", "timeout", "7"}) == "OK");
  t.client().protocol = Protocol::kResp3;
  CHECK(t.Run({"config", "get", "maxclients", "timeout"}) ==
        "{\"maxclients\": \"5\", \"timeout\": \"7\"}");
}

TEST_CASE("stats: commandstats and errorstats count calls, rejections and failures", "[server]") {
  TestServer t;
  (void)t.Run({"ping"});
  (void)t.Run({"echo"});          // rejected: arity
  (void)t.Run({"select", "99"});  // failed: error from the handler
  (void)t.Run({"nosuch"});        // unknown: errorstat only
  const Command* ping = t.server().registry().Find("ping");
  CHECK(ping->stats.calls == 1);
  CHECK(t.server().registry().Find("echo")->stats.rejected_calls == 1);
  const Command* select = t.server().registry().Find("select");
  CHECK(select->stats.failed_calls == 1);
  CHECK(t.server().stats().errors.at("ERR") == 3);
  const std::string info = t.Run({"info", "commandstats"});
  CHECK(info.find("cmdstat_ping:calls=1,") != std::string::npos);
  CHECK(info.find("cmdstat_echo:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1") !=
        std::string::npos);
  CHECK(t.Run({"config", "resetstat"}) == "OK");
  CHECK(ping->stats.calls == 0);
}

TEST_CASE("info: sections and their fields", "[server]") {
  TestServer t;
  const std::string all = t.Run({"info"});
  for (const char* field :
       {"# Server", "redis_version:7.2.4", "server_name:valkey", "# Clients", "connected_clients:1",
        "# Memory", "used_memory:", "# Persistence", "loading:0", "# Stats",
        "total_commands_processed:", "expired_fields:", "client_query_buffer_limit_disconnections:",
        "# Replication", "role:master", "# Cluster", "cluster_enabled:0", "# Keyspace"}) {
    CAPTURE(field);
    CHECK(all.find(field) != std::string::npos);
  }
  CHECK(all.find("# Commandstats") == std::string::npos);
  const std::string one = t.Run({"info", "CLIENTS"});
  CHECK(one.find("# Clients") != std::string::npos);
  CHECK(one.find("# Server") == std::string::npos);
  CHECK(t.Run({"info", "nosuchsection"}) == "\"\"");
}

TEST_CASE("command: count, info, docs, list and getkeys", "[server]") {
  TestServer t;
  const RespValue count = t.RunValue({"command", "count"});
  CHECK(count.integer == static_cast<int64_t>(t.server().registry().size()));
  CHECK(t.RunValue({"command"}).elements.size() == t.server().registry().size());
  const RespValue info = t.RunValue({"command", "info", "echo", "nosuch", "client|id"});
  REQUIRE(info.elements.size() == 3);
  CHECK(info.elements[0].elements[0].text == "echo");
  CHECK(info.elements[0].elements[1].integer == 2);
  CHECK(info.elements[1].type == RespValue::Type::kNullArray);
  CHECK(info.elements[2].elements[0].text == "client|id");
  CHECK(t.Run({"command", "getkeys", "ping", "x"}) ==
        "(error) ERR The command has no key arguments");
  CHECK(t.Run({"command", "getkeys", "nosuch", "x"}) == "(error) ERR Invalid command specified");
  CHECK(t.Run({"command", "getkeys", "echo", "a", "b"}) ==
        "(error) ERR Invalid number of arguments specified for command");
  const std::string list = t.Run({"command", "list", "filterby", "pattern", "cl*"});
  CHECK(list.find("\"client\"") != std::string::npos);
  CHECK(list.find("\"ping\"") == std::string::npos);
  const std::string docs = t.Run({"command", "docs", "ping"});
  CHECK(docs.find("summary") != std::string::npos);
}

TEST_CASE("command getkeys: keynum specs (ZUNION, ZUNIONSTORE, SINTERCARD)", "[server]") {
  TestServer t;
  CHECK(t.Run({"command", "getkeys", "zunionstore", "d", "2", "a", "b", "weights", "1", "2"}) ==
        "[\"d\", \"a\", \"b\"]");
  CHECK(t.Run({"command", "getkeys", "zinter", "2", "a", "b"}) == "[\"a\", \"b\"]");
  CHECK(t.Run({"command", "getkeys", "sintercard", "2", "a", "b", "limit", "3"}) ==
        "[\"a\", \"b\"]");
  CHECK(t.Run({"command", "getkeys", "zunion", "0", "a"}) ==
        "(error) ERR Invalid arguments specified for command");
  CHECK(t.Run({"command", "getkeys", "zunion", "5", "a"}) ==
        "(error) ERR Invalid arguments specified for command");
  CHECK(t.Run({"command", "getkeys", "zunion", "x", "a"}) ==
        "(error) ERR Invalid arguments specified for command");
  const RespValue info = t.RunValue({"command", "info", "zunionstore"});
  REQUIRE(info.elements.size() == 1);
  CHECK(info.elements[0].elements[8].elements.size() == 2);  // range + keynum key specs
}

TEST_CASE("flush, dbsize, time and shutdown", "[server]") {
  TestServer t;
  CHECK(t.Run({"dbsize"}) == "0");
  CHECK(t.Run({"flushall"}) == "OK");
  CHECK(t.Run({"flushdb", "async"}) == "OK");
  CHECK(t.Run({"flushdb", "later"}) == "(error) ERR syntax error");
  const RespValue time = t.RunValue({"time"});
  REQUIRE(time.elements.size() == 2);
  CHECK(time.elements[0].text == "1700000000");
  bool stopped = false;
  t.server().set_shutdown_hook([&] { stopped = true; });
  CHECK(t.Run({"shutdown", "bogus"}) == "(error) ERR syntax error");
  CHECK_FALSE(stopped);
  CHECK(t.Run({"shutdown", "abort"}) == "(error) ERR No shutdown in progress.");
}

}  // namespace
}  // namespace lattice::server
