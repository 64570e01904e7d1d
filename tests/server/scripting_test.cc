// EVAL/EVALSHA/SCRIPT through the real Server: conversions both ways, Valkey's error texts, the
// sandbox, the script cache, read-only scripts, shebang flags, the memory limit, BUSY and
// SCRIPT KILL, and replication of a script's writes as ordinary ops.

#include <string>

#include "server/scripting/script_engine.h"
#include "server_test_util.h"
#include "util/sha1.h"

namespace lattice::server::testing {
namespace {

std::string Eval(TestServer& t, std::string script, std::vector<std::string> rest = {"0"}) {
  std::vector<std::string> args = {"EVAL", std::move(script)};
  args.insert(args.end(), rest.begin(), rest.end());
  return t.Run(args);
}

TEST_CASE("Sha1Hex matches known digests") {
  CHECK(Sha1Hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(Sha1Hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(Sha1Hex(std::string(1000, 'a')) == "291e9a6c66994949b57ba5e650361e98fc36b1ba");
}

TEST_CASE("Lua values become RESP replies as in Valkey") {
  TestServer t;
  CHECK(Eval(t, "return 'x'") == "\"x\"");
  CHECK(Eval(t, "return 3.99") == "3");
  CHECK(Eval(t, "return -2.5") == "-2");
  CHECK(Eval(t, "return true") == "1");
  CHECK(Eval(t, "return false") == "(nil)");
  CHECK(Eval(t, "return nil") == "(nil)");
  CHECK(Eval(t, "return {1,2,{3,'x'},nil,4}") == "[1, 2, [3, \"x\"]]");
  CHECK(Eval(t, "return {ok='fine'}") == "fine");
  CHECK(Eval(t, "return {err='bad thing'}") == "(error) bad thing");
  CHECK(Eval(t, "return redis.status_reply('st')") == "st");
  CHECK(Eval(t, "return redis.error_reply('MY err')") == "(error) MY err");
  CHECK(Eval(t, "return redis.error_reply('oops')") == "(error) ERR oops");
  CHECK(Eval(t, "return {double=1.5}") == "\"1.5\"");  // RESP2 caller
  t.client().protocol = Protocol::kResp3;
  CHECK(Eval(t, "return {double=1.5}") == "(double) 1.5");
  CHECK(Eval(t, "return {map={a=1}}") == "{\"a\": 1}");
  CHECK(Eval(t, "return {set={a=true}}") == "~[\"a\"]");
  CHECK(Eval(t, "return {big_number='123'}") == "(big) 123");
  // Booleans follow the script's protocol (redis.setresp), not the caller's, as in Valkey.
  CHECK(Eval(t, "return true") == "1");
  CHECK(Eval(t, "redis.setresp(3) return true") == "(true)");
  CHECK(Eval(t, "redis.setresp(3) return false") == "(false)");
}

TEST_CASE("redis.call replies become Lua values, RESP2 and RESP3") {
  TestServer t;
  t.Run({"SET", "s", "abc"});
  t.Run({"HSET", "h", "f", "v"});
  CHECK(Eval(t, "return redis.call('get', 's')") == "\"abc\"");
  CHECK(Eval(t, "return type(redis.call('get', 'missing'))") == "\"boolean\"");
  CHECK(Eval(t, "return redis.call('set', 'k', 'v')['ok']") == "\"OK\"");
  CHECK(Eval(t, "return redis.call('strlen', 's') + 1") == "4");
  CHECK(Eval(t, "return redis.call('hgetall', 'h')") == "[\"f\", \"v\"]");
  CHECK(Eval(t, "redis.setresp(3); return redis.call('hgetall', 'h')['map']['f']") == "\"v\"");
  CHECK(Eval(t, "redis.setresp(3); return type(redis.call('get', 'missing'))") == "\"nil\"");
  CHECK(Eval(t, "return redis.call('set', 'n', 1e9) and redis.call('get', 'n')") ==
        "\"1000000000\"");
  CHECK(Eval(t, "return redis.call('set', 'n', 2.5) and redis.call('get', 'n')") == "\"2.5\"");
  CHECK(Eval(t, "return redis.setresp(4)").starts_with("(error) ERR RESP version must be 2 or 3."));
}

TEST_CASE("Script errors carry Valkey's text, script sha and line") {
  TestServer t;
  t.Run({"SET", "s", "abc"});
  const std::string incr = "return redis.call('incr','s')";
  CHECK(Eval(t, incr) == "(error) ERR value is not an integer or out of range script: " +
                             Sha1Hex(incr) + ", on @user_script:1.");
  CHECK(Eval(t, "return redis.pcall('incr','s')") ==
        "(error) ERR value is not an integer or out of range");
  CHECK(Eval(t, "return redis.call('get','s','x')")
            .starts_with("(error) ERR Wrong number of args calling Redis command from script"));
  CHECK(Eval(t, "return redis.call('nosuch')")
            .starts_with("(error) ERR Unknown Redis command called from script script: "));
  CHECK(Eval(t, "return redis.call('multi')")
            .starts_with("(error) ERR This Redis command is not allowed from script"));
  CHECK(Eval(t, "return redis.call('crdt.wait', '1', '0')")
            .starts_with("(error) ERR This Redis command is not allowed from script"));
  CHECK(Eval(t, "return redis.call()")
            .starts_with("(error) ERR Please specify at least one argument for this call"));
  CHECK(Eval(t, "return redis.call('get', {})")
            .starts_with("(error) ERR Command arguments must be strings or integers"));
  CHECK(Eval(t, "error('boom')") == "(error) ERR user_script:1: boom script: " +
                                        Sha1Hex("error('boom')") + ", on @user_script:1.");
  CHECK(Eval(t, "\n\nerror({err='MY boom'})").starts_with("(error) MY boom script: "));
  CHECK(Eval(t, "\n\nerror({err='MY boom'})").ends_with(", on @user_script:3."));
  CHECK(Eval(t, "return 1 +") ==
        "(error) ERR Error compiling script (new function): user_script:1: unexpected symbol "
        "near '<eof>'");
  CHECK(Eval(t, "return {pcall(redis.call, 'incr', 's')}") ==
        "[(nil), \"ERR value is not an integer or out of range\"]");
  CHECK(t.Run({"GET", "s"}) == "\"abc\"");  // the server is fine after every error
}

TEST_CASE("EVAL argument checks and KEYS/ARGV") {
  TestServer t;
  CHECK(t.Run({"EVAL", "return 1", "2", "a"}) ==
        "(error) ERR Number of keys can't be greater than number of args");
  CHECK(t.Run({"EVAL", "return 1", "-1"}) == "(error) ERR Number of keys can't be negative");
  CHECK(t.Run({"EVAL", "return 1", "x"}) == "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"EVAL", "return 1"}) == "(error) ERR wrong number of arguments for 'eval' command");
  CHECK(t.Run({"EVAL", "return {KEYS[1], KEYS[2], ARGV[1], #ARGV}", "2", "k1", "k2", "a"}) ==
        "[\"k1\", \"k2\", \"a\", 1]");
  CHECK(t.Run({"EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "k", "v"}) == "OK");
  CHECK(t.Run({"GET", "k"}) == "\"v\"");
}

TEST_CASE("The sandbox: no new or changed globals, no os/io/loadfile, no bytecode") {
  TestServer t;
  CHECK(Eval(t, "x = 1")
            .starts_with("(error) ERR user_script:1: Attempt to modify a readonly table script: "));
  CHECK(Eval(t, "redis = nil").starts_with("(error) ERR user_script:1: Attempt to modify"));
  CHECK(Eval(t, "string.rep = nil").starts_with("(error) ERR user_script:1: Attempt to modify"));
  CHECK(Eval(t, "_G.y = 1").starts_with("(error) ERR user_script:1: Attempt to modify"));
  CHECK(Eval(t, "rawset(_G, 'y', 1)").starts_with("(error) ERR user_script:1: Attempt to modify"));
  CHECK(Eval(t, "setmetatable(_G, nil)").starts_with("(error) ERR user_script:1: cannot change"));
  CHECK(Eval(t, "return y")
            .starts_with("(error) ERR user_script:1: Script attempted to access nonexistent global "
                         "variable 'y'"));
  for (const char* name : {"io", "loadfile", "dofile", "require", "debug", "print", "setfenv"}) {
    CHECK(Eval(t, std::string("return ") + name).find("nonexistent global variable") !=
          std::string::npos);
  }
  CHECK(Eval(t, "return os.execute").find("nonexistent") == std::string::npos);
  CHECK(Eval(t, "return type(os.clock())") == "\"number\"");
  CHECK(Eval(t, "return loadstring(string.dump(function() return 1 end))") == "(nil)");
  CHECK(Eval(t, "return loadstring('return 7')()") == "7");
  CHECK(Eval(t, "local f = loadstring('z = 1') f()").find("readonly") != std::string::npos);
  CHECK(Eval(t, "local local_ok = 5 return local_ok") == "5");
  CHECK(Eval(t, "return ('abc'):upper()") == "\"ABC\"");
  CHECK(Eval(t, "return cjson.decode('[1,2]')[2]") == "2");
  CHECK(Eval(t, "return cjson.encode({1,'a'})") == "\"[1,\"a\"]\"");
  CHECK(Eval(t, "return bit.bxor(5, 3)") == "6");
  CHECK(Eval(t, "return redis.sha1hex('abc')") == "\"a9993e364706816aba3e25717850c26c9cd0d89d\"");
  CHECK(Eval(t, "redis.log(redis.LOG_WARNING, 'from a script') return 1") == "1");
  CHECK(Eval(t, "redis.log(9, 'x')").starts_with("(error) ERR Invalid log level."));
}

TEST_CASE("SCRIPT LOAD/EXISTS/FLUSH/KILL and EVALSHA") {
  TestServer t;
  const std::string sha = Sha1Hex("return 'hi'");
  CHECK(t.Run({"SCRIPT", "LOAD", "return 'hi'"}) == "\"" + sha + "\"");
  CHECK(t.Run({"EVALSHA", sha, "0"}) == "\"hi\"");
  std::string upper = sha;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  CHECK(t.Run({"EVALSHA", upper, "0"}) == "\"hi\"");
  CHECK(t.Run({"SCRIPT", "EXISTS", sha, "ffff"}) == "[1, 0]");
  CHECK(t.Run({"EVALSHA", std::string(40, 'f'), "0"}) ==
        "(error) NOSCRIPT No matching script. Please use EVAL.");
  CHECK(t.Run({"EVALSHA", "short", "0"}) ==
        "(error) NOSCRIPT No matching script. Please use EVAL.");
  CHECK(t.Run({"SCRIPT", "LOAD", "return +"})
            .starts_with("(error) ERR Error compiling script (new function): user_script:1:"));
  CHECK(t.Run({"SCRIPT", "KILL"}) == "(error) NOTBUSY No scripts in execution right now.");
  CHECK(t.Run({"SCRIPT", "FLUSH", "BOGUS"}) ==
        "(error) ERR SCRIPT FLUSH only support SYNC|ASYNC option");
  CHECK(t.Run({"SCRIPT", "FLUSH", "ASYNC"}) == "OK");
  CHECK(t.Run({"SCRIPT", "EXISTS", sha}) == "[0]");
  // EVAL caches too.
  CHECK(Eval(t, "return 'hi'") == "\"hi\"");
  CHECK(t.Run({"EVALSHA", sha, "0"}) == "\"hi\"");
  CHECK(Eval(t, "return redis.call('script', 'flush')")
            .starts_with("(error) ERR This Redis command is not allowed from script"));
  CHECK(Eval(t, "return redis.call('eval', 'return 1', '0')")
            .starts_with("(error) ERR This Redis command is not allowed from script"));
}

TEST_CASE("EVAL caches at most kMaxEvalScripts scripts; SCRIPT LOAD pins") {
  TestServer t;
  t.Run({"SCRIPT", "LOAD", "return 'pinned'"});
  for (size_t i = 0; i < ScriptEngine::kMaxEvalScripts + 10; ++i) {
    REQUIRE(Eval(t, "return " + std::to_string(i)) == std::to_string(i));
  }
  CHECK(t.server().scripting().cached_scripts() == ScriptEngine::kMaxEvalScripts + 1);
  CHECK(t.Run({"SCRIPT", "EXISTS", Sha1Hex("return 0"), Sha1Hex("return 'pinned'")}) == "[0, 1]");
}

TEST_CASE("Read-only scripts and shebang flags") {
  TestServer t;
  CHECK(t.Run({"EVAL_RO", "return redis.call('get', 'k')", "0"}) == "(nil)");
  CHECK(t.Run({"EVAL_RO", "return redis.call('set', 'k', 'v')", "0"})
            .starts_with("(error) ERR Write commands are not allowed from read-only scripts."));
  CHECK(t.Run({"EVAL", "#!lua flags=no-writes\nreturn redis.call('set', 'k', 'v')", "0"})
            .starts_with("(error) ERR Write commands are not allowed from read-only scripts."));
  CHECK(t.Run({"EVAL_RO", "#!lua\nreturn 1", "0"}) ==
        "(error) ERR Can not execute a script with write flag using *_ro command.");
  CHECK(t.Run({"EVAL_RO", "#!lua flags=no-writes,allow-oom\nreturn 1", "0"}) == "1");
  CHECK(t.Run({"EVAL", "#!lua flags=bogus\nreturn 1", "0"}) ==
        "(error) ERR Unexpected flag in script shebang: bogus");
  CHECK(t.Run({"EVAL", "#!python\nreturn 1", "0"}) ==
        "(error) ERR Could not find scripting engine 'python'");
  CHECK(t.Run({"EVAL", "#!lua\n\nerror('x')", "0"}).ends_with("on @user_script:3."));
  const std::string sha = Sha1Hex("return redis.call('set', 'k', 'v')");
  t.Run({"SCRIPT", "LOAD", "return redis.call('set', 'k', 'v')"});
  CHECK(t.Run({"EVALSHA_RO", sha, "0"})
            .starts_with("(error) ERR Write commands are not allowed from read-only scripts."));
  CHECK(t.Run({"GET", "k"}) == "(nil)");
}

TEST_CASE("Commands in a script run with the caller's db and ACL user") {
  TestServer t;
  t.Run({"SELECT", "2"});
  CHECK(Eval(t, "redis.call('select', '3') return redis.call('set', 'k', 'v')") == "OK");
  CHECK(t.Run({"GET", "k"}) == "(nil)");  // SELECT in a script is the script's own
  t.Run({"SELECT", "3"});
  CHECK(t.Run({"GET", "k"}) == "\"v\"");
  t.Run({"ACL", "SETUSER", "reader", "on", "nopass", "+@all", "-set", "~*"});
  t.Run({"AUTH", "reader", "x"});
  CHECK(Eval(t, "return redis.call('set', 'k', 'w')").find("NOPERM") != std::string::npos);
  CHECK(t.Run({"GET", "k"}) == "\"v\"");
}

TEST_CASE("A script's memory is bounded and the state survives running out") {
  TestServer t;
  CHECK(Eval(t, "local t = {} for i = 1, 1e9 do t[i] = {i, i} end") ==
        "(error) ERR not enough memory");
  CHECK(t.server().scripting().memory_used() < ScriptEngine::kDefaultMemoryLimit / 2);
  CHECK(Eval(t, "return 'alive'") == "\"alive\"");
  CHECK(Eval(t, "local t = {} t[1] = t return t").find("reached lua stack limit") !=
        std::string::npos);
}

TEST_CASE("A script's writes are ordinary ops another region applies") {
  Region a(1);
  Region b(2);
  CHECK(a.Run({"EVAL",
               "redis.call('set', KEYS[1], ARGV[1]) redis.call('hset', KEYS[2], 'f', ARGV[1]) "
               "return redis.call('incr', KEYS[3])",
               "3", "s", "h", "n", "v"}) == "1");
  a.sink.DeliverTo(b.keyspace());
  CHECK(b.Run({"GET", "s"}) == "\"v\"");
  CHECK(b.Run({"HGET", "h", "f"}) == "\"v\"");
  CHECK(b.Run({"GET", "n"}) == "\"1\"");
}

// A clock that moves 1 ms every time it is read, so a looping script passes the threshold.
class MovingClock final : public Clock {
 public:
  int64_t NowMs() const override { return NowUs() / 1000; }
  int64_t NowUs() const override { return now_us += 1000; }
  int64_t MonotonicUs() const override { return NowUs(); }
  mutable int64_t now_us = 1'700'000'000'000'000;
};

// A server on a MovingClock with two clients: one runs a script, the other is refused BUSY.
struct BusyFixture {
  MovingClock clock;
  Server server{Config(), clock};
  ClientState runner, other;
  BusyFixture() {
    runner.id = server.NextClientId();
    other.id = server.NextClientId();
    server.RegisterClient(&runner);
    server.RegisterClient(&other);
  }
  std::string run(ClientState& client, std::vector<std::string> args) {
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string out;
    ReplyBuilder reply(&out);
    server.Execute(client, views, reply);
    Result<RespValue> value = DecodeReply(out);
    REQUIRE(value.ok());
    return value->ToString();
  }
};

TEST_CASE("A timed-out script gets BUSY for others and SCRIPT KILL stops it") {
  BusyFixture fixture;
  Server& server = fixture.server;
  ClientState& runner = fixture.runner;
  ClientState& other = fixture.other;
  auto run = [&](ClientState& client, std::vector<std::string> args) {
    return fixture.run(client, std::move(args));
  };
  REQUIRE(run(runner, {"CONFIG", "SET", "busy-reply-threshold", "50"}) == "OK");
  std::vector<std::string> seen;
  server.scripting().set_poll_hook([&] {
    seen.push_back(run(other, {"GET", "k"}));
    seen.push_back(run(other, {"SCRIPT", "KILL"}));
  });
  CHECK(run(runner, {"EVAL", "local i = 0 while true do i = i + 1 end", "0"})
            .starts_with("(error) ERR Script killed by user with SCRIPT KILL... script: "));
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] ==
        "(error) BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN "
        "NOSAVE.");
  CHECK(seen[1] == "OK");
  // pcall cannot swallow the kill.
  seen.clear();
  CHECK(run(runner, {"EVAL", "while true do pcall(function() while true do end end) end", "0"})
            .find("Script killed by user") != std::string::npos);
  // A script that wrote cannot be killed.
  seen.clear();
  server.scripting().set_poll_hook([&] {
    if (seen.empty()) seen.push_back(run(other, {"SCRIPT", "KILL"}));
  });
  CHECK(run(runner, {"EVAL", "redis.call('set', 'w', 'v') for i = 1, 3e7 do end return 1", "0"}) ==
        "1");
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].starts_with("(error) UNKILLABLE Sorry the script already executed write"));
  server.scripting().set_poll_hook(nullptr);
  CHECK(run(other, {"GET", "k"}) == "(nil)");
  server.UnregisterClient(&runner);
  server.UnregisterClient(&other);
}

}  // namespace
TEST_CASE(
    "A timed-out function: BUSY names FUNCTION KILL, STATS shows it, FUNCTION KILL stops it") {
  BusyFixture fixture;
  Server& server = fixture.server;
  ClientState& runner = fixture.runner;
  ClientState& other = fixture.other;
  auto run = [&](ClientState& client, std::vector<std::string> args) {
    return fixture.run(client, std::move(args));
  };
  REQUIRE(run(runner, {"CONFIG", "SET", "busy-reply-threshold", "50"}) == "OK");
  // The moving clock passes FUNCTION LOAD's 500 ms while a library's top level loops.
  CHECK(run(runner, {"FUNCTION", "LOAD", "#!lua name=loop\nwhile true do end"}) ==
        "(error) ERR Error registering functions: ERR FUNCTION LOAD timeout");
  REQUIRE(run(runner, {"FUNCTION", "LOAD",
                       "#!lua name=spin\nredis.register_function('spin', function() "
                       "while true do end end)"}) == "\"spin\"");
  std::vector<std::string> seen;
  server.scripting().set_poll_hook([&] {
    if (!seen.empty()) return;
    seen.push_back(run(other, {"GET", "k"}));
    seen.push_back(run(other, {"SCRIPT", "KILL"}));
    seen.push_back(run(other, {"FUNCTION", "STATS"}));
    seen.push_back(run(other, {"FUNCTION", "KILL"}));
  });
  CHECK(run(runner, {"FCALL", "spin", "0"}) ==
        "(error) ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2.");
  REQUIRE(seen.size() == 4);
  CHECK(seen[0] ==
        "(error) BUSY Valkey is busy running a script. You can only call FUNCTION KILL or "
        "SHUTDOWN NOSAVE.");
  CHECK(seen[1] == seen[0]);
  CHECK(seen[2].starts_with(
      "[\"running_script\", [\"name\", \"spin\", \"command\", [\"FCALL\", \"spin\", \"0\"], "
      "\"duration_ms\", "));
  CHECK(seen[3] == "OK");
  // While an EVAL runs, FUNCTION KILL and FUNCTION STATS answer BUSY naming SCRIPT KILL.
  seen.clear();
  server.scripting().set_poll_hook([&] {
    if (!seen.empty()) return;
    seen.push_back(run(other, {"FUNCTION", "KILL"}));
    seen.push_back(run(other, {"FUNCTION", "STATS"}));
    seen.push_back(run(other, {"SCRIPT", "KILL"}));
  });
  CHECK(run(runner, {"EVAL", "while true do end", "0"}).find("Script killed by user") !=
        std::string::npos);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] ==
        "(error) BUSY Valkey is busy running a script. You can only call SCRIPT KILL or "
        "SHUTDOWN NOSAVE.");
  CHECK(seen[1] == seen[0]);
  CHECK(seen[2] == "OK");
  server.scripting().set_poll_hook(nullptr);
  server.UnregisterClient(&runner);
  server.UnregisterClient(&other);
}

}  // namespace lattice::server::testing
