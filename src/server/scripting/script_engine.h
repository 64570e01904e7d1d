#pragma once
// ScriptEngine runs Lua scripts (EVAL, EVALSHA, their _RO forms, SCRIPT ...) as Valkey does: one
// embedded Lua 5.1 state per server, a cache of compiled scripts by SHA-1, and redis.call() /
// redis.pcall() that run each command through the ordinary Server::Execute path (arity, ACL,
// WRONGTYPE, cluster routing), so every write a script makes is an ordinary command and reaches
// other regions as ordinary CRDT ops. A script runs alone on the event-loop thread.
//
// Hostile scripts: the Lua allocator enforces a memory limit (an allocation past it fails and the
// script gets "not enough memory"); a count hook checks the time from the server's Clock, and past
// busy-reply-threshold the script is "timed out": other clients' commands get BUSY, SCRIPT KILL
// stops it (unless it wrote), and the poll hook (set_poll_hook) is called so the network layer can
// serve those clients. A script's error never leaves the Lua state or the server inconsistent.
//
// The sandbox: the globals are read-only (a script can neither create nor change one), and so are
// the library tables; no os (but os.clock), io, debug, loadfile, dofile, require; loadstring and
// load refuse bytecode. Libraries: base, string, table, math, cjson, bit.
//
// Threading: event-loop thread only, like the Server that owns it.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lattice/common/result.h"
#include "resp/reply_builder.h"
#include "resp/request_parser.h"
#include "server/client_state.h"

struct lua_State;

namespace lattice::server {

class Server;
class CommandContext;
struct Command;

// A script's shebang flags ("#!lua flags=no-writes,allow-oom"). Without a shebang a script runs
// in EVAL compatibility mode: writes allowed unless called with EVAL_RO, no flag checks.
struct ScriptFlags {
  bool shebang = false;
  bool no_writes = false;
  bool allow_oom = false;
  bool allow_stale = false;
  bool no_cluster = false;
  bool allow_cross_slot_keys = false;
};

// Parses the shebang line of `body`, if any. *body_offset is where the Lua code starts (at the
// shebang's newline, so line numbers in errors stay those of the text the user sent).
Result<ScriptFlags> ParseShebang(std::string_view body, size_t* body_offset);

class ScriptEngine {
 public:
  // Memory a script's Lua state may hold, in bytes.
  static constexpr size_t kDefaultMemoryLimit = size_t{256} << 20;
  // Scripts cached by EVAL (not SCRIPT LOAD) beyond this are evicted oldest first, as Valkey's
  // eval script LRU: unique EVAL bodies cannot grow the cache without bound.
  static constexpr size_t kMaxEvalScripts = 500;

  explicit ScriptEngine(Server& server, size_t memory_limit = kDefaultMemoryLimit);
  ~ScriptEngine();
  ScriptEngine(const ScriptEngine&) = delete;
  ScriptEngine& operator=(const ScriptEngine&) = delete;

  // EVAL / EVALSHA / EVAL_RO / EVALSHA_RO: args are the whole command.
  void Eval(CommandContext& ctx, ArgList args, bool by_sha, bool read_only);
  // SCRIPT LOAD: the script's SHA-1, or the compile error reply text.
  Result<std::string> Load(std::string_view body);
  bool Exists(std::string_view sha) const;
  // SCRIPT FLUSH: forgets every script and starts a fresh Lua state.
  void Flush();
  // SCRIPT KILL: OK, NOTBUSY or UNKILLABLE.
  void Kill(ReplyBuilder& reply);

  // A script is running / has run past busy-reply-threshold.
  bool running() const { return run_ != nullptr; }
  bool timed_out() const;
  // While a timed-out script runs, every client but the script's own gets BUSY except for
  // commands flagged allow-busy. True when `reply` got BUSY.
  bool RefuseWhileBusy(const ClientState& client, const Command& command, ReplyBuilder& reply);
  // Called from the script's count hook while it is timed out: lets the network layer serve
  // other clients (which then get BUSY or may SCRIPT KILL). Unset: nobody else is served.
  void set_poll_hook(std::function<void()> hook) { poll_hook_ = std::move(hook); }

  size_t memory_used() const { return memory_used_; }
  size_t cached_scripts() const { return scripts_.size(); }

  // Used by the Lua C functions (script_lua.cc); not for other callers.
  struct Run;
  Run* run() { return run_; }
  // redis.call(): runs `args` for the script, returning the reply bytes, or an error text
  // (without reply framing) in *error for refusals that never reach the command.
  std::string CallCommand(std::vector<std::string>& args, std::string* error);
  void OnCountHook(lua_State* lua);
  void* Allocate(void* ptr, size_t old_size, size_t new_size);

 private:
  struct Script {
    std::string body;
    ScriptFlags flags;
    bool loaded = false;  // by SCRIPT LOAD: never evicted
  };

  void Open();
  void Close();
  // Compiles `body` into the cache under `sha`; the error reply text on failure.
  Result<void> Compile(const std::string& sha, std::string_view body, bool loaded);
  void EvictEvalScripts();
  void RunScript(CommandContext& ctx, const std::string& sha, const Script& script, ArgList keys,
                 ArgList argv, bool read_only);

  Server& server_;
  const size_t memory_limit_;
  size_t memory_used_ = 0;
  lua_State* lua_ = nullptr;
  std::unordered_map<std::string, Script> scripts_;
  std::deque<std::string> eval_order_;  // EVAL-cached scripts, oldest first
  Run* run_ = nullptr;
  std::function<void()> poll_hook_;
};

// What a running script has: its caller, the client its commands run as, and its state.
struct ScriptEngine::Run {
  ClientState* caller = nullptr;
  ClientState client;  // the script's own client: the caller's user and db
  std::string sha;
  bool read_only = false;
  bool allow_cross_slot = true;
  int slot = -1;  // cluster mode: the slot of the first key the script declared or touched
  Protocol protocol = Protocol::kResp2;  // redis.setresp()
  bool wrote = false;
  bool timed_out = false;
  bool killed = false;
  int64_t start_us = 0;
  std::string reply;  // the buffer each redis.call reply is written into
};

}  // namespace lattice::server
