// MULTI/EXEC/DISCARD/WATCH through TestServer; replies checked against redis-server 7.0's.

#include <catch2/catch.hpp>

#include "server/server_test_util.h"

namespace lattice::server {
namespace {

using testing::TestServer;

TEST_CASE("multi: queued commands run in order in one array reply", "[transaction]") {
  TestServer t;
  CHECK(t.Run({"multi"}) == "OK");
  CHECK(t.Run({"echo", "a"}) == "QUEUED");
  CHECK(t.Run({"ping"}) == "QUEUED");
  CHECK(t.Run({"select", "99"}) == "QUEUED");  // fails only when it runs
  CHECK(t.Run({"exec"}) == "[\"a\", PONG, (error) ERR DB index is out of range]");
  CHECK_FALSE(t.client().in_multi);
}

TEST_CASE("multi: errors while queueing abort EXEC", "[transaction]") {
  TestServer t;
  CHECK(t.Run({"multi"}) == "OK");
  CHECK(t.Run({"multi"}) == "(error) ERR MULTI calls can not be nested");  // not an abort
  CHECK(t.Run({"nosuch"}) == "(error) ERR unknown command 'nosuch', with args beginning with: ");
  CHECK(t.Run({"ping"}) == "QUEUED");
  CHECK(t.Run({"exec"}) == "(error) EXECABORT Transaction discarded because of previous errors.");
  CHECK(t.Run({"multi"}) == "OK");
  CHECK(t.Run({"echo"}) == "(error) ERR wrong number of arguments for 'echo' command");
  CHECK(t.Run({"exec"}) == "(error) EXECABORT Transaction discarded because of previous errors.");
  CHECK(t.Run({"multi"}) == "OK");
  CHECK(t.Run({"shutdown"}) == "(error) ERR Command not allowed inside a transaction");
  CHECK(t.Run({"exec"}) == "(error) EXECABORT Transaction discarded because of previous errors.");
}

TEST_CASE("multi: exec, discard and watch outside their place", "[transaction]") {
  TestServer t;
  CHECK(t.Run({"exec"}) == "(error) ERR EXEC without MULTI");
  CHECK(t.Run({"discard"}) == "(error) ERR DISCARD without MULTI");
  CHECK(t.Run({"unwatch"}) == "OK");
  CHECK(t.Run({"multi"}) == "OK");
  CHECK(t.Run({"watch", "k"}) == "(error) ERR WATCH inside MULTI is not allowed");
  CHECK(t.Run({"exec"}) == "[]");
  CHECK(t.Run({"multi"}) == "OK");
  CHECK(t.Run({"ping"}) == "QUEUED");
  CHECK(t.Run({"discard"}) == "OK");
  CHECK(t.Run({"ping"}) == "PONG");
}

TEST_CASE("watch: a write to a watched key makes EXEC return null", "[transaction]") {
  TestServer t;
  const size_t other = t.AddClient();
  CHECK(t.Run({"watch", "k", "j"}) == "OK");
  t.server().TouchKey(0, "j");  // any op on the key: local, reclaim or from a peer
  CHECK(t.Run({"multi"}) == "OK");
  CHECK(t.Run({"ping"}) == "QUEUED");
  CHECK(t.Run({"exec"}) == "(nil-array)");
  // The watch is gone after EXEC: the next transaction runs.
  CHECK(t.Run({"multi"}) == "OK");
  CHECK(t.Run({"ping"}) == "QUEUED");
  CHECK(t.Run({"exec"}) == "[PONG]");
  // Another db's key of the same name does not count; UNWATCH forgets.
  CHECK(t.Run({"watch", "k"}) == "OK");
  t.server().TouchKey(1, "k");
  CHECK(t.Run({"multi"}) == "OK");
  CHECK(t.Run({"exec"}) == "[]");
  CHECK(t.Run({"watch", "k"}, other) == "OK");
  CHECK(t.Run({"unwatch"}, other) == "OK");
  t.server().TouchKey(0, "k");
  CHECK(t.Run({"multi"}, other) == "OK");
  CHECK(t.Run({"exec"}, other) == "[]");
}

TEST_CASE("watch: RESET and disconnect forget watches", "[transaction]") {
  TestServer t;
  CHECK(t.Run({"watch", "k"}) == "OK");
  CHECK(t.Run({"multi"}) == "OK");
  CHECK(t.Run({"reset"}) == "RESET");
  CHECK_FALSE(t.client().in_multi);
  CHECK(t.client().watched.empty());
  t.server().TouchKey(0, "k");
  CHECK_FALSE(t.client().watch_dirty);
  CHECK(t.Run({"watch", "k"}) == "OK");
  t.server().UnregisterClient(&t.client());
  t.server().TouchKey(0, "k");  // must not touch the departed client
  CHECK_FALSE(t.client().watch_dirty);
}

}  // namespace
}  // namespace lattice::server
