// REPLICAOF's protocol (server/replica_of.h) against a fake primary link: the handshake (with and
// without masterauth/masteruser), a full resync with a length-prefixed and an EOF-marked RDB,
// the command stream in every fragmentation (offsets count whole commands only), GETACK, MULTI,
// READONLY, a drop and +CONTINUE, a corrupt RDB that leaves the region as it was, REPLICAOF NO
// ONE. The real thing against redis-server: tests/integration/test_replicaof.py.

#include "server/replica_of.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "server/rdb_import.h"
#include "server/server_test_util.h"
#include "store/rdb_value.h"
#include "util/rdb.h"

namespace lattice::server {
namespace {

using testing::TestServer;

class FakeLink final : public PrimaryLink {
 public:
  void Connect(const std::string& h, int p) override {
    host = h;
    port = p;
    ++connects;
  }
  void Send(std::string_view bytes) override { sent += bytes; }
  void Close() override { ++closes; }
  // What was sent since the last call, one command per entry as "A B C".
  std::vector<std::string> Commands() {
    std::vector<std::string> out;
    RequestParser parser;
    std::string_view input = sent;
    size_t consumed = 0;
    while (parser.Parse(input, &consumed) == RequestParser::Status::kCommand) {
      std::string line;
      for (std::string_view arg : parser.args())
        line += (line.empty() ? "" : " ") + std::string(arg);
      out.push_back(line);
      input.remove_prefix(consumed);
    }
    sent.clear();
    return out;
  }
  std::string host;
  int port = 0;
  int connects = 0;
  int closes = 0;
  std::string sent;
};

std::string Command(std::vector<std::string> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& arg : args)
    out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
  return out;
}

// An RDB file holding string `key` = `value` in db 0.
std::string Rdb(const std::string& key, const std::string& value) {
  std::string f = "REDIS0011";
  f.push_back(static_cast<char>(0xfe));
  RdbPutLength(f, 0);
  f.push_back(0);
  RdbPutString(f, key);
  RdbPutString(f, value);
  f.push_back(static_cast<char>(0xff));
  const uint64_t crc = Crc64(0, f);
  for (int i = 0; i < 8; ++i) f.push_back(static_cast<char>(crc >> (8 * i)));
  return f;
}

struct Fixture {
  explicit Fixture(Config config = Config()) : t(std::move(config)) { replica().set_link(&link); }
  ReplicaOf& replica() { return t.server().replica_of(); }
  int64_t now() { return t.clock().NowMs(); }
  void Feed(std::string_view bytes) { replica().OnBytes(bytes, now()); }
  // REPLICAOF, the connection, and the handshake up to PSYNC's reply.
  void Handshake(const std::string& psync) {
    CHECK(t.Run({"REPLICAOF", "127.0.0.1", "6400"}) == "OK");
    REQUIRE(link.connects >= 1);
    replica().OnConnected(now());
    CHECK(link.Commands() == std::vector<std::string>{"PING"});
    Feed("+PONG\r\n");
    CHECK(link.Commands() == std::vector<std::string>{"REPLCONF listening-port 6379"});
    Feed("+OK\r\n");
    CHECK(link.Commands() == std::vector<std::string>{"REPLCONF capa eof capa psync2"});
    Feed("+OK\r\n");
    CHECK(link.Commands() == std::vector<std::string>{psync});
  }
  TestServer t;
  FakeLink link;
};

TEST_CASE("replicaof: full resync, the stream, offsets, GETACK, READONLY, NO ONE") {
  Fixture f;
  f.t.Run({"SET", "local", "gone after the full resync"});
  f.Handshake("PSYNC ? -1");
  CHECK(f.replica().state() == ReplicaOf::State::kHandshake);
  const std::string rdb = Rdb("k", "from-rdb");
  f.Feed("\n\n+FULLRESYNC 0123456789abcdef0123456789abcdef01234567 100\r\n\n");
  CHECK(f.replica().state() == ReplicaOf::State::kTransfer);
  f.Feed("$" + std::to_string(rdb.size()) + "\r\n" + rdb.substr(0, 10));
  CHECK(f.t.Run({"GET", "local"}) == "\"gone after the full resync\"");  // nothing loaded yet
  f.Feed(rdb.substr(10));
  CHECK(f.replica().link_up());
  CHECK(f.link.Commands() == std::vector<std::string>{"REPLCONF ACK 100"});
  CHECK(f.t.Run({"GET", "k"}) == "\"from-rdb\"");
  CHECK(f.t.Run({"EXISTS", "local"}) == "0");

  // The stream, one byte at a time: the offset moves by whole commands.
  const std::string stream = Command({"SELECT", "1"}) + Command({"SET", "a", "1"}) +
                             Command({"PING"}) + Command({"MULTI"}) + Command({"INCR", "n"}) +
                             Command({"INCR", "n"}) + Command({"EXEC"});
  for (size_t i = 0; i < stream.size(); ++i) {
    f.Feed(stream.substr(i, 1));
    if (i + 1 < stream.size())
      CHECK(f.replica().offset() < 100 + static_cast<int64_t>(stream.size()));
  }
  CHECK(f.replica().offset() == 100 + static_cast<int64_t>(stream.size()));
  CHECK(f.t.Run({"SELECT", "1"}) == "OK");
  CHECK(f.t.Run({"GET", "a"}) == "\"1\"");
  CHECK(f.t.Run({"GET", "n"}) == "\"2\"");
  CHECK(f.t.Run({"SET", "a", "2"}) ==
        "(error) READONLY You can't write against a read only replica.");
  CHECK(f.replica().commands_refused() == 0);

  const int64_t before = f.replica().offset();
  f.Feed(Command({"REPLCONF", "GETACK", "*"}));
  CHECK(f.link.Commands() == std::vector<std::string>{"REPLCONF ACK " + std::to_string(before)});
  CHECK(f.replica().offset() ==
        before + static_cast<int64_t>(Command({"REPLCONF", "GETACK", "*"}).size()));

  f.t.clock().now_us += 1'000'000;
  f.replica().Tick(f.now());
  CHECK(f.link.Commands().size() == 1);  // the ACK each second

  f.Feed(Command({"XADD", "s", "0-0", "a", "1"}));  // an error reply: refused, counted
  CHECK(f.replica().commands_refused() == 1);

  CHECK(f.t.Run({"REPLICAOF", "NO", "ONE"}) == "OK");
  CHECK(f.link.closes == 1);
  CHECK(f.t.Run({"SET", "a", "3"}) == "OK");
  CHECK(f.t.Run({"GET", "n"}) == "\"2\"");  // the data stays
}

TEST_CASE("replicaof: a drop resumes with PSYNC replid offset+1 and +CONTINUE") {
  Fixture f;
  f.Handshake("PSYNC ? -1");
  const std::string rdb = Rdb("k", "v");
  f.Feed("+FULLRESYNC aaaa 7\r\n$EOF:" + std::string(40, 'x') + "\r\n" + rdb +
         std::string(40, 'x') + Command({"SET", "b", "1"}) + Command({"SET", "c"}).substr(0, 9));
  REQUIRE(f.replica().link_up());
  const int64_t offset = 7 + static_cast<int64_t>(Command({"SET", "b", "1"}).size());
  CHECK(f.replica().offset() == offset);  // the partial SET c is not counted
  f.replica().OnClosed("reset by peer", f.now());
  CHECK(f.replica().state() == ReplicaOf::State::kConnect);
  f.link.Commands();
  f.t.clock().now_us += 1'000'000;
  f.replica().Tick(f.now());
  CHECK(f.link.connects == 2);
  f.replica().OnConnected(f.now());
  f.Feed("+PONG\r\n+OK\r\n+OK\r\n");
  CHECK(f.link.Commands().back() == "PSYNC aaaa " + std::to_string(offset + 1));
  f.Feed("+CONTINUE bbbb\r\n" + Command({"SET", "c", "2"}));
  CHECK(f.replica().partial_syncs() == 1);
  CHECK(f.replica().replid() == "bbbb");
  CHECK(f.t.Run({"GET", "c"}) == "\"2\"");
}

TEST_CASE("replicaof: masterauth and masteruser, refused AUTH, corrupt RDB, bad replies") {
  Config config;
  const std::vector<std::string_view> args = {"--masterauth", "secret", "--masteruser", "mover"};
  REQUIRE(config.ApplyArgs(args).ok());
  Fixture f(std::move(config));
  f.t.Run({"SET", "local", "kept"});
  CHECK(f.t.Run({"REPLICAOF", "127.0.0.1", "6400"}) == "OK");
  f.replica().OnConnected(f.now());
  f.Feed("-NOAUTH Authentication required.\r\n");
  CHECK(f.link.Commands() == std::vector<std::string>{"PING", "AUTH mover secret"});
  f.Feed("-WRONGPASS invalid username-password pair\r\n");
  CHECK(f.replica().state() == ReplicaOf::State::kConnect);

  f.t.clock().now_us += 1'000'000;
  f.replica().Tick(f.now());
  f.replica().OnConnected(f.now());
  f.Feed("+PONG\r\n+OK\r\n+OK\r\n+OK\r\n+FULLRESYNC r 0\r\n");
  std::string rdb = Rdb("k", "v");
  rdb[12] ^= 1;
  f.Feed("$" + std::to_string(rdb.size()) + "\r\n" + rdb);
  CHECK(f.replica().state() == ReplicaOf::State::kConnect);
  CHECK(f.t.Run({"GET", "local"}) == "\"kept\"");  // the region is as it was
  CHECK(f.replica().full_syncs() == 0);

  f.t.clock().now_us += 1'000'000;
  f.replica().Tick(f.now());
  f.replica().OnConnected(f.now());
  f.Feed("+PONG\r\n+OK\r\n+OK\r\n+OK\r\n");
  CHECK(f.link.Commands().back() == "PSYNC ? -1");  // nothing was loaded: a full resync again
  f.Feed("$-5\r\n");                                // not a PSYNC reply
  CHECK(f.replica().state() == ReplicaOf::State::kConnect);
  CHECK(f.t.Run({"REPLICAOF", "localhost", "0"}) == "(error) ERR Invalid master port");
}

TEST_CASE("replicaof: the RDB loads in slices, the region answers LOADING, the stream waits") {
  Fixture f;
  int slices_asked = 0;
  f.t.server().loading().set_slice_hook([&slices_asked] { ++slices_asked; });
  f.t.Run({"SET", "local", "gone after the full resync"});
  const size_t queued = f.t.AddClient();
  CHECK(f.t.Run({"MULTI"}, queued) == "OK");
  CHECK(f.t.Run({"SET", "x", "1"}, queued) == "QUEUED");
  f.Handshake("PSYNC ? -1");
  const std::string rdb = Rdb("k", "from-rdb");
  f.Feed("+FULLRESYNC r 100\r\n$" + std::to_string(rdb.size()) + "\r\n" + rdb +
         Command({"SET", "after", "the-rdb"}));
  REQUIRE(f.t.server().loading().active());
  CHECK(slices_asked == 1);
  CHECK(f.replica().state() == ReplicaOf::State::kTransfer);
  const std::string loading = "(error) LOADING Valkey is loading the dataset in memory";
  CHECK(f.t.Run({"GET", "local"}) == loading);
  CHECK(f.t.Run({"PING"}) == loading);  // PING has no loading flag in Valkey
  CHECK(f.t.Run({"REPLICAOF", "NO", "ONE"}) == loading);
  CHECK(f.t.Run({"ECHO", "x"}) == "\"x\"");  // ECHO has it
  CHECK(f.t.Run({"INFO", "persistence"}).find("loading:1") != std::string::npos);
  CHECK(
      f.t.Run({"INFO", "persistence"}).find("loading_total_bytes:" + std::to_string(rdb.size())) !=
      std::string::npos);
  CHECK(f.t.Run({"CONFIG", "GET", "port"}) == "[\"port\", \"6379\"]");
  CHECK(f.t.Run({"EXEC"}, queued) ==
        "(error) EXECABORT Transaction discarded because of: " + loading.substr(8));
  CHECK(f.t.Run({"MULTI"}) == "OK");
  CHECK(f.t.Run({"GET", "k"}) == loading);
  CHECK(f.t.Run({"EXEC"}) == "(error) EXECABORT Transaction discarded because of previous errors.");
  CHECK(f.link.Commands().empty());  // no ACK before the load ends

  while (f.t.server().loading().Slice()) {
  }
  CHECK_FALSE(f.t.server().loading().active());
  CHECK(f.replica().link_up());
  CHECK(f.t.Run({"GET", "k"}) == "\"from-rdb\"");
  CHECK(f.t.Run({"GET", "after"}) == "\"the-rdb\"");  // the stream waited for the load
  CHECK(f.t.Run({"EXISTS", "local", "x"}) == "0");
  CHECK(f.t.Run({"INFO", "persistence"}).find("loading:0") != std::string::npos);
  CHECK(f.replica().full_syncs() == 1);
}

TEST_CASE("replicaof: a link that drops while the RDB loads continues from its offset") {
  Fixture f;
  f.t.server().loading().set_slice_hook([] {});
  f.Handshake("PSYNC ? -1");
  const std::string rdb = Rdb("k", "v");
  f.Feed("+FULLRESYNC r 7\r\n$" + std::to_string(rdb.size()) + "\r\n" + rdb);
  REQUIRE(f.t.server().loading().active());
  f.replica().OnClosed("reset", f.now());
  f.t.clock().now_us += 5'000'000;
  const int connects = f.link.connects;
  f.replica().Tick(f.now());
  CHECK(f.link.connects == connects);  // no dial while the load runs
  while (f.t.server().loading().Slice()) {
  }
  CHECK(f.replica().state() == ReplicaOf::State::kConnect);
  CHECK(f.t.Run({"GET", "k"}) == "\"v\"");
  f.replica().Tick(f.now());
  CHECK(f.link.connects == connects + 1);
  f.replica().OnConnected(f.now());
  f.Feed("+PONG\r\n+OK\r\n+OK\r\n");
  CHECK(f.link.Commands().back() == "PSYNC r 8");
}

}  // namespace
}  // namespace lattice::server
