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
// load refuse bytecode. Libraries: base, string, table, math, cjson, bit, cmsgpack, struct.
//
// Functions (FUNCTION LOAD, FCALL) run in a second Lua state, as in Valkey (SCRIPT FLUSH does not
// touch them). Libraries are configuration replicated between regions: each is a field of the
// hash "functions" in the system db (Keyspace::system_db(), library name -> code, last writer
// wins), so the op log, snapshots and peers carry them like the conflict policies. The engine
// watches that key (a KeyspaceObserver) and, when it changed, rebuilds the libraries from it
// before the next FCALL or FUNCTION command: every library, in name order; one that fails to load
// there (its functions collide with a library loaded before it) is skipped, so every region that
// holds the same hash loads the same functions.
//
// Threading: event-loop thread only, like the Server that owns it.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
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
#include "store/keyspace.h"

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

// A function a library registered (redis.register_function). Flags always apply (as a shebang
// script's): `flags.shebang` is true.
struct FunctionInfo {
  std::string name;
  std::string library;
  std::optional<std::string> description;
  ScriptFlags flags;
};

struct FunctionLibrary {
  std::string name;
  std::string code;                    // as loaded, shebang included
  std::vector<std::string> functions;  // in registration order
};

// A function's flags as FUNCTION LIST shows them: a set of status strings, in Valkey's order.
void WriteFunctionFlags(ReplyBuilder& reply, const ScriptFlags& flags);

// FUNCTION RESTORE's policy for libraries that already exist.
enum class RestorePolicy { kAppend, kReplace, kFlush };

// Parses the shebang line of `body`, if any. *body_offset is where the Lua code starts (at the
// shebang's newline, so line numbers in errors stay those of the text the user sent).
Result<ScriptFlags> ParseShebang(std::string_view body, size_t* body_offset);

class ScriptEngine final : public KeyspaceObserver {
 public:
  // Memory a script's Lua state may hold, in bytes.
  static constexpr size_t kDefaultMemoryLimit = size_t{256} << 20;
  // Scripts cached by EVAL (not SCRIPT LOAD) beyond this are evicted oldest first, as Valkey's
  // eval script LRU: unique EVAL bodies cannot grow the cache without bound.
  static constexpr size_t kMaxEvalScripts = 500;

  explicit ScriptEngine(Server& server, size_t memory_limit = kDefaultMemoryLimit);
  ~ScriptEngine() override;
  ScriptEngine(const ScriptEngine&) = delete;
  ScriptEngine& operator=(const ScriptEngine&) = delete;

  // EVAL / EVALSHA / EVAL_RO / EVALSHA_RO: args are the whole command.
  void Eval(CommandContext& ctx, ArgList args, bool by_sha, bool read_only);
  // SCRIPT LOAD: the script's SHA-1, or the compile error reply text.
  Result<std::string> Load(std::string_view body);
  bool Exists(std::string_view sha) const;
  // Whether EVAL/EVALSHA (`function` false) or FCALL (true) of `args` may write: false only for
  // a script or function declaring no-writes (CLIENT PAUSE WRITE lets those run). An unknown
  // script or function may write (the command then fails as usual once it runs).
  bool MayWrite(ArgList args, bool function);
  // SCRIPT FLUSH: forgets every script and starts a fresh Lua state.
  void Flush();
  // SCRIPT KILL / FUNCTION KILL (`function`): OK, NOTBUSY, UNKILLABLE, or BUSY when the running
  // script is of the other kind.
  void Kill(ReplyBuilder& reply, bool function = false);

  // ---- functions (FUNCTION ..., FCALL) ---------------------------------------------------------
  // FCALL / FCALL_RO: args are the whole command.
  void FCall(CommandContext& ctx, ArgList args, bool read_only);
  // FUNCTION LOAD: compiles the library, stores it in the system db (replicated) and loads it.
  // The library name, or the error reply text.
  Result<std::string> LoadLibrary(std::string_view code, bool replace, int64_t now_ms);
  // FUNCTION DELETE: false when no such library is stored (loaded or skipped).
  bool DeleteLibrary(const std::string& name, int64_t now_ms);
  // FUNCTION FLUSH: removes every library (an observed remove: a library another region loads
  // concurrently survives).
  void FlushLibraries(int64_t now_ms);
  // FUNCTION DUMP / RESTORE, Valkey's payload (function opcodes, RDB version, CRC64).
  std::string DumpLibraries();
  Result<void> RestoreLibraries(std::string_view payload, RestorePolicy policy, int64_t now_ms);
  // FUNCTION STATS.
  void FunctionStats(ReplyBuilder& reply);
  // The loaded libraries by name (brought up to date with the system db first).
  const std::map<std::string, FunctionLibrary>& libraries();
  const FunctionInfo* FindFunction(std::string_view name);
  // INFO's scripting memory fields (Valkey's names), in order.
  std::vector<std::pair<std::string, std::string>> InfoFields();

  // KeyspaceObserver: a change to the system db's "functions" hash marks the libraries stale.
  void OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) override;
  void OnRemoteOp(int db, std::string_view key, const crdt::KeyOp& op) override;
  void OnKeyChanged(int db, std::string_view key) override;

  // A script is running / has run past busy-reply-threshold.
  bool running() const { return run_ != nullptr; }
  bool timed_out() const;
  // While a timed-out script runs, every client but the script's own gets BUSY except for
  // commands flagged allow-busy (and SHUTDOWN without NOSAVE gets BUSY too, as in Valkey). An
  // EXEC refused so discards the client's transaction (EXECABORT). True when `reply` got BUSY.
  bool RefuseWhileBusy(ClientState& client, const Command& command, ArgList args,
                       ReplyBuilder& reply);
  // Called from the script's count hook while it is timed out: lets the network layer serve
  // other clients (which then get BUSY or may SCRIPT KILL). Unset: nobody else is served.
  void set_poll_hook(std::function<void()> hook) { poll_hook_ = std::move(hook); }
  // Called once a script that timed out has ended (its reply written, run_ cleared), from inside
  // the command that ran it: the busy period is over. The hook must not run commands.
  void set_busy_end_hook(std::function<void()> hook) { busy_end_hook_ = std::move(hook); }
  // How many Lua VM instructions run between two busy checks (Valkey's 100,000). The eval fuzz
  // target checks more often: one VM instruction can be slow (Lua 5.1 interns strings by a hash of
  // at most 32 of their bytes, so a loop making long strings that differ in a few bytes turns
  // each new string into a scan of a long bucket), and it needs every script to end quickly.
  void set_hook_instructions(int instructions) { hook_instructions_ = instructions; }

  size_t memory_used() const { return eval_heap_.used; }
  size_t functions_memory_used() const { return functions_heap_.used; }
  size_t cached_scripts() const { return scripts_.size(); }

  // Used by the Lua C functions (script_lua.cc); not for other callers.
  struct Run;
  Run* run() { return run_; }
  // redis.call(): runs `args` for the script, returning the reply bytes, or an error text
  // (without reply framing) in *error for refusals that never reach the command.
  std::string CallCommand(std::vector<std::string>& args, std::string* error);
  void OnCountHook(lua_State* lua);
  // What each Lua state allocates, against the memory limit (the allocator's user data).
  struct Heap {
    ScriptEngine* engine;
    size_t used = 0;
  };
  void* Allocate(Heap& heap, void* ptr, size_t old_size, size_t new_size);
  // redis.register_function() during FUNCTION LOAD: records `info`, whose callback is on top of
  // the stack (popping it) in the loading table; the error text when it is refused.
  Result<void> RegisterFunction(lua_State* lua, FunctionInfo info);
  bool loading_library() const { return loading_ != nullptr; }

 private:
  struct Script {
    std::string body;
    ScriptFlags flags;
    bool loaded = false;  // by SCRIPT LOAD: never evicted
  };

  // A library compiled and run into the loading table, not yet installed.
  struct Candidate {
    std::string name;
    std::string code;
    std::vector<FunctionInfo> functions;
  };
  struct Loading {
    std::vector<FunctionInfo> functions;
    int64_t start_us = 0;
    int64_t timeout_ms = 0;  // 0: none (libraries from the system db)
  };

  // BUSY's text; `function`: the running script is a function (FUNCTION KILL stops it).
  std::string BusyMessage(bool function) const;
  void Open();
  void Close();
  lua_State* OpenState(Heap& heap, int (*open)(lua_State*));
  // Compiles `code` and runs it so it registers its functions (into the loading table); the
  // error reply text on failure.
  Result<Candidate> CompileLibrary(std::string_view code, int64_t timeout_ms);
  // The function names of `candidate` that another loaded library (but `except`) already has.
  std::optional<std::string> Collision(const Candidate& candidate, const std::string& except) const;
  // Moves a compiled candidate's functions to the function table, replacing its old version.
  void Install(const Candidate& candidate);
  void Uninstall(const std::string& library);
  // Reloads the libraries when the system db's hash changed since they were built.
  void SyncFunctions();
  void RebuildFunctions(const std::map<std::string, std::string>& stored);
  std::map<std::string, std::string> StoredLibraries() const;
  void StoreLibrary(const std::string& name, const std::string& code, int64_t now_ms);
  void MarkIfLibraries(int db, std::string_view key);
  // Compiles `body` into the cache under `sha`; the error reply text on failure.
  Result<void> Compile(const std::string& sha, std::string_view body, bool loaded);
  void EvictEvalScripts();
  // Runs a cached script (`function` false: registry kScriptsKey[name], KEYS/ARGV globals) or a
  // function (kFunctionsKey[name], called with the keys and args tables).
  void RunScript(CommandContext& ctx, ArgList command, const std::string& name,
                 const ScriptFlags& flags, ArgList keys, ArgList argv, bool read_only,
                 bool function);

  Server& server_;
  const size_t memory_limit_;
  Heap eval_heap_{this};
  Heap functions_heap_{this};
  lua_State* lua_ = nullptr;
  lua_State* functions_lua_ = nullptr;
  std::map<std::string, FunctionLibrary> libraries_;
  std::unordered_map<std::string, FunctionInfo> functions_;  // by lower-case name
  std::map<std::string, std::string> synced_;  // the stored libraries the state was built from
  std::vector<std::string> skipped_;           // stored libraries that did not load here
  bool functions_dirty_ = true;
  Loading* loading_ = nullptr;
  std::unordered_map<std::string, Script> scripts_;
  std::deque<std::string> eval_order_;  // EVAL-cached scripts, oldest first
  Run* run_ = nullptr;
  std::function<void()> poll_hook_;
  std::function<void()> busy_end_hook_;
  int hook_instructions_ = 100000;
};

// What a running script has: its caller, the client its commands run as, and its state.
struct ScriptEngine::Run {
  ClientState* caller = nullptr;
  ClientState client;  // the script's own client: the caller's user and db
  std::string sha;     // the script's sha, or the function's name
  bool function = false;
  ArgList command;  // the caller's command (FUNCTION STATS)
  bool read_only = false;
  bool allow_cross_slot = true;
  int slot = -1;  // cluster mode: the slot of the first key the script declared or touched
  Protocol protocol = Protocol::kResp2;  // redis.setresp()
  bool wrote = false;
  bool allow_oom = false;  // Valkey's rule: a script without flags may not start writing when OOM
  bool timed_out = false;
  bool killed = false;
  int64_t start_us = 0;
  std::string reply;  // the buffer each redis.call reply is written into
};

}  // namespace lattice::server
