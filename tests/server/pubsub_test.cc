// The Pub/Sub registry (server/pubsub.h) and the commands over it, through a TestServer whose
// clients collect their pushed messages as raw RESP.

#include "server/pubsub.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "server_test_util.h"

namespace lattice::server {
namespace {

using testing::TestServer;

// Raw reply bytes of one command (a SUBSCRIBE of n channels writes n replies).
std::string Raw(TestServer& t, std::vector<std::string> args, size_t index = 0) {
  std::vector<std::string_view> views(args.begin(), args.end());
  std::string out;
  ReplyBuilder reply(&out);
  reply.set_protocol(t.client(index).protocol);
  t.server().Execute(t.client(index), views, reply);
  return out;
}

// Points every client's push hook at a string of its own.
struct Inboxes {
  explicit Inboxes(TestServer& t, size_t clients) : got(clients) {
    for (size_t i = 0; i < clients; ++i) {
      t.client(i).push_hook = [this, i](std::string_view bytes) { got[i].append(bytes); };
    }
  }
  std::vector<std::string> got;
};

TEST_CASE("registry keeps subscribers in order and counts per kind", "[server][pubsub]") {
  PubSub pubsub;
  ClientState a, b;
  std::string got_a, got_b;
  a.push_hook = [&](std::string_view bytes) { got_a.append(bytes); };
  b.push_hook = [&](std::string_view bytes) { got_b.append(bytes); };
  CHECK(pubsub.Subscribe(a, PubSub::kChannel, "news"));
  CHECK_FALSE(pubsub.Subscribe(a, PubSub::kChannel, "news"));
  CHECK(pubsub.Subscribe(b, PubSub::kChannel, "news"));
  CHECK(pubsub.Subscribe(b, PubSub::kPattern, "n*"));
  CHECK(pubsub.Subscribe(a, PubSub::kShard, "news"));
  CHECK(a.subscriptions[PubSub::kChannel] == 1);
  CHECK(b.subscriptions[PubSub::kPattern] == 1);
  CHECK(pubsub.clients() == 2);
  CHECK(pubsub.Subscribers(PubSub::kChannel, "news") == 2);
  CHECK(pubsub.Count(PubSub::kPattern) == 1);

  CHECK(pubsub.Publish("news", "hi", false) == 3);  // a, b, and b's pattern
  CHECK(got_a == "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
  CHECK(got_b ==
        "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
  got_a.clear();
  b.protocol = Protocol::kResp3;
  got_b.clear();
  CHECK(pubsub.Publish("news", "x", true) == 1);  // only a's shard channel
  CHECK(got_a == "*3\r\n$8\r\nsmessage\r\n$4\r\nnews\r\n$1\r\nx\r\n");
  CHECK(pubsub.Publish("nope", "x", false) == 1);  // b's pattern, as a RESP3 push
  CHECK(got_b == ">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnope\r\n$1\r\nx\r\n");

  CHECK(pubsub.Unsubscribe(a, PubSub::kChannel, "news"));
  CHECK_FALSE(pubsub.Unsubscribe(a, PubSub::kChannel, "news"));
  CHECK(pubsub.Active(PubSub::kChannel, "", true) == std::vector<std::string>{"news"});
  pubsub.UnsubscribeAll(b);
  CHECK(pubsub.Active(PubSub::kChannel, "", true).empty());
  CHECK(pubsub.Count(PubSub::kPattern) == 0);
  CHECK_FALSE(b.subscribed());
  CHECK(a.subscribed());  // its shard channel
  pubsub.UnsubscribeAll(a);
  CHECK(pubsub.clients() == 0);
}

TEST_CASE("registry agrees with a naive model under random operations", "[server][pubsub]") {
  const uint64_t seed = GENERATE(take(20, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  PubSub pubsub;
  std::vector<ClientState> clients(4);
  std::vector<std::set<std::string>> model(clients.size());
  const std::vector<std::string> names = {"a", "b", "c", "ab"};
  for (int step = 0; step < 300; ++step) {
    const size_t c = rng.Uniform(clients.size());
    const std::string& name = names[rng.Uniform(names.size())];
    switch (rng.Uniform(3)) {
      case 0:
        CHECK(pubsub.Subscribe(clients[c], PubSub::kChannel, name) == model[c].insert(name).second);
        break;
      case 1:
        CHECK(pubsub.Unsubscribe(clients[c], PubSub::kChannel, name) ==
              (model[c].erase(name) == 1));
        break;
      default:
        pubsub.UnsubscribeAll(clients[c]);
        model[c].clear();
    }
    for (const std::string& n : names) {
      int64_t expected = 0;
      for (const auto& subscribed : model) expected += subscribed.count(n);
      CHECK(pubsub.Subscribers(PubSub::kChannel, n) == expected);
      CHECK(pubsub.Publish(n, "m", false) == expected);
    }
    CHECK(clients[c].subscriptions[PubSub::kChannel] == model[c].size());
  }
}

TEST_CASE("SUBSCRIBE confirms each channel and enters subscribed mode", "[server][pubsub]") {
  TestServer t;
  t.AddClient();
  Inboxes inboxes(t, 2);
  CHECK(Raw(t, {"SUBSCRIBE", "a", "b"}) ==
        "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
  CHECK(Raw(t, {"PSUBSCRIBE", "a*"}) == "*3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:3\r\n");
  CHECK(Raw(t, {"GET", "k"}) ==
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
        "are allowed in this context\r\n");
  CHECK(Raw(t, {"PING"}) == "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  CHECK(Raw(t, {"PING", "x"}) == "*2\r\n$4\r\npong\r\n$1\r\nx\r\n");
  CHECK(t.Run({"PUBLISH", "a", "hello"}, 1) == "2");
  CHECK(inboxes.got[0] ==
        "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n"
        "*4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$1\r\na\r\n$5\r\nhello\r\n");
  CHECK(t.Run({"PUBSUB", "NUMSUB", "a", "z"}, 1) == "[\"a\", 1, \"z\", 0]");
  CHECK(t.Run({"PUBSUB", "CHANNELS"}, 1) == "[\"a\", \"b\"]");
  CHECK(t.Run({"PUBSUB", "CHANNELS", "b*"}, 1) == "[\"b\"]");
  CHECK(t.Run({"PUBSUB", "NUMPAT"}, 1) == "1");
  const std::string list = t.Run({"CLIENT", "LIST", "TYPE", "pubsub"}, 1);
  CHECK(list.find("flags=P db=0 sub=2 psub=1 ssub=0") != std::string::npos);
  CHECK(
      Raw(t, {"UNSUBSCRIBE"}) ==
      "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n");
  CHECK(Raw(t, {"PUNSUBSCRIBE"}) == "*3\r\n$12\r\npunsubscribe\r\n$2\r\na*\r\n:0\r\n");
  CHECK(Raw(t, {"UNSUBSCRIBE"}) == "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
  CHECK(t.Run({"GET", "k"}) == "(nil)");  // out of subscribed mode
  CHECK(t.Run({"PING"}) == "PONG");
}

TEST_CASE("RESP3 clients get pushes and may run any command", "[server][pubsub]") {
  TestServer t;
  Inboxes inboxes(t, 1);
  t.client(0).protocol = Protocol::kResp3;
  CHECK(Raw(t, {"SSUBSCRIBE", "s"}) == ">3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n");
  CHECK(Raw(t, {"SUBSCRIBE", "c"}) == ">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n");
  CHECK(t.Run({"GET", "k"}) == "(nil)");
  CHECK(Raw(t, {"PING"}) == "+PONG\r\n");
  CHECK(t.Run({"SPUBLISH", "s", "m"}) == "1");
  CHECK(inboxes.got[0] == ">3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nm\r\n");
  CHECK(t.Run({"PUBSUB", "SHARDCHANNELS"}) == "[\"s\"]");
  CHECK(t.Run({"PUBSUB", "SHARDNUMSUB", "s"}) == "[\"s\", 1]");
  CHECK(Raw(t, {"SUNSUBSCRIBE"}) == ">3\r\n$12\r\nsunsubscribe\r\n$1\r\ns\r\n:0\r\n");
  CHECK(Raw(t, {"RESET"}) == "+RESET\r\n");
  CHECK_FALSE(t.client(0).subscribed());
  CHECK(t.Run({"PUBSUB", "NUMSUB", "c"}) == "[\"c\", 0]");
}

TEST_CASE("ACL channel permissions", "[server][pubsub][acl]") {
  TestServer t;
  REQUIRE(t.Run({"ACL", "SETUSER", "u", "on", "nopass", "+@all", "~*", "resetchannels",
                 "&news*"}) == "OK");
  REQUIRE(t.Run({"AUTH", "u", "x"}) == "OK");
  CHECK(t.Run({"PUBLISH", "news1", "m"}) == "0");
  CHECK(t.Run({"PUBLISH", "sport", "m"}) == "(error) NOPERM No permissions to access a channel");
  CHECK(Raw(t, {"PSUBSCRIBE", "news*"}).starts_with("*3\r\n$10\r\npsubscribe"));
  CHECK(t.Run({"PSUBSCRIBE", "news1*"}) == "(error) NOPERM No permissions to access a channel");
}

}  // namespace
}  // namespace lattice::server
