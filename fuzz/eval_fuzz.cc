// Fuzz target: Lua scripts a client sends with EVAL. The input is split at NUL bytes: the first
// part is the script, the rest its arguments; the first byte of the script part picks the form
// (EVAL, EVAL_RO, SCRIPT LOAD + EVALSHA), the protocol (RESP2/RESP3) and how many arguments are
// keys; bit 8 makes it a function: the script part becomes the body of function 'f' of a library
// (FUNCTION LOAD REPLACE, then FCALL / FCALL_RO), or, with bit 2 as well, the whole rest of the
// input (NUL bytes included) is a FUNCTION RESTORE payload (Valkey's format: the payload and LZF
// parsers), then FCALL f. The script runs on a Server whose clock moves 1 ms per read and whose
// busy-reply-threshold is 20 ms, and the poll hook SCRIPT KILLs a timed-out script, so an endless
// loop ends the run instead of hanging it (a script that wrote is unkillable by Valkey's rule; the
// harness clears that mark first, as only the fuzzer needs every script to end).
//
// Checked, besides "never crashes, never asserts, never leaks, never hangs": every EVAL gets
// exactly one well-formed reply, and the server still answers PING and a trivial script after.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "resp/reply_decoder.h"
#include "server/scripting/script_engine.h"
#include "server/server.h"

namespace lattice::fuzz {
namespace {

class MovingClock final : public server::Clock {
 public:
  int64_t NowMs() const override { return NowUs() / 1000; }
  int64_t NowUs() const override { return now_us += 1000; }
  int64_t MonotonicUs() const override { return NowUs(); }
  mutable int64_t now_us = 1'700'000'000'000'000;
};

std::string RunOne(server::Server& server, server::ClientState& client,
                   const std::vector<std::string>& args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  std::string out;
  server::ReplyBuilder reply(&out);
  reply.set_protocol(client.protocol);
  server.Execute(client, views, reply);
  size_t consumed = 0;
  Result<server::RespValue> value = server::DecodeReply(out, &consumed);
  if (!value.ok() || consumed != out.size()) __builtin_trap();  // exactly one whole reply
  return out;
}

}  // namespace
}  // namespace lattice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lattice;
  if (size == 0 || size > 64 * 1024) return 0;
  std::vector<std::string> parts(1);
  for (size_t i = 1; i < size; ++i) {
    if (data[i] == 0) {
      parts.emplace_back();
    } else {
      parts.back().push_back(static_cast<char>(data[i]));
    }
  }
  const uint8_t mode = data[0];
  fuzz::MovingClock clock;
  server::Server server(server::Config(), clock, 1, 7);
  server::ClientState client;
  client.id = server.NextClientId();
  client.protocol = (mode & 4) ? server::Protocol::kResp3 : server::Protocol::kResp2;
  server.RegisterClient(&client);
  fuzz::RunOne(server, client, {"CONFIG", "SET", "busy-reply-threshold", "20"});
  server::ClientState killer;
  killer.id = server.NextClientId();
  server.RegisterClient(&killer);
  server.scripting().set_hook_instructions(1000);  // see set_hook_instructions
  server.scripting().set_poll_hook([&] {
    server::ScriptEngine::Run* run = server.scripting().run();
    if (run != nullptr) run->wrote = false;
    fuzz::RunOne(server, killer, {run != nullptr && run->function ? "FUNCTION" : "SCRIPT", "KILL"});
  });

  const size_t argc = parts.size() - 1;
  const size_t numkeys = argc == 0 ? 0 : (mode >> 4) % (argc + 1);
  std::vector<std::string> eval = {(mode & 1) ? "EVAL_RO" : "EVAL", parts[0],
                                   std::to_string(numkeys)};
  eval.insert(eval.end(), parts.begin() + 1, parts.end());
  if (mode & 8) {
    if (mode & 2) {
      const std::string payload(reinterpret_cast<const char*>(data) + 1, size - 1);
      fuzz::RunOne(server, client, {"FUNCTION", "RESTORE", payload, "REPLACE"});
    } else {
      fuzz::RunOne(server, client,
                   {"FUNCTION", "LOAD", "REPLACE",
                    "#!lua name=fz\nredis.register_function{function_name='f', callback=function("
                    "KEYS, ARGV)\n" +
                        parts[0] + "\nend, flags={" + ((mode & 1) ? "'no-writes'" : "") + "}}"});
    }
    eval[0] = (mode & 1) ? "FCALL_RO" : "FCALL";
    eval[1] = "f";
  } else if (mode & 2) {
    const std::string loaded = fuzz::RunOne(server, client, {"SCRIPT", "LOAD", parts[0]});
    if (loaded[0] == '$') eval[0] = (mode & 1) ? "EVALSHA_RO" : "EVALSHA";
    if (loaded[0] == '$') eval[1] = loaded.substr(loaded.find('\n') + 1, 40);
  }
  fuzz::RunOne(server, client, eval);
  if (fuzz::RunOne(server, client, {"EVAL", "return 'ok'", "0"}) != "$2\r\nok\r\n") {
    __builtin_trap();  // the engine no longer runs a trivial script
  }
  fuzz::RunOne(server, client, {"FUNCTION", "LIST", "WITHCODE"});
  fuzz::RunOne(server, client, {"FUNCTION", "DUMP"});
  server.scripting().set_poll_hook(nullptr);
  server.UnregisterClient(&killer);
  server.UnregisterClient(&client);
  return 0;
}
