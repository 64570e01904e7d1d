#include "server/scripting/script_engine.h"

#include <algorithm>
#include <cstdlib>
#include <lua.hpp>

#include "lattice/common/assert.h"
#include "server/scripting/script_lua.h"
#include "server/server.h"
#include "spdlog/spdlog.h"
#include "util/ascii.h"
#include "util/sha1.h"

namespace lattice::server {
namespace {

void* LuaAllocate(void* heap, void* ptr, size_t old_size, size_t new_size) {
  auto* owner = static_cast<ScriptEngine::Heap*>(heap);
  return owner->engine->Allocate(*owner, ptr, old_size, new_size);
}

void CountHook(lua_State* lua, lua_Debug* /*ar*/) { EngineOf(lua).OnCountHook(lua); }

void PushArray(lua_State* lua, ArgList values) {
  lua_createtable(lua, static_cast<int>(values.size()), 0);
  for (size_t i = 0; i < values.size(); ++i) {
    lua_pushlstring(lua, values[i].data(), values[i].size());
    lua_rawseti(lua, -2, static_cast<int>(i + 1));
  }
}

void SetGlobalArray(lua_State* lua, const char* name, ArgList values) {
  lua_getfield(lua, LUA_REGISTRYINDEX, kGlobalsKey);
  PushArray(lua, values);
  lua_setfield(lua, -2, name);  // the real globals table has no metamethods
  lua_pop(lua, 1);
}

int64_t BusyThresholdMs(const Config& config) {
  int64_t ms = 0;
  return ParseInt64(config.ValueOf("busy-reply-threshold"), &ms) ? ms : 5000;
}

}  // namespace

bool Protected(lua_State* lua, const std::function<void(lua_State*)>& fn, std::string* error) {
  auto trampoline = [](lua_State* state) -> int {
    const auto* body =
        static_cast<const std::function<void(lua_State*)>*>(lua_touserdata(state, 1));
    lua_remove(state, 1);
    (*body)(state);
    return 0;
  };
  if (lua_cpcall(lua, trampoline, const_cast<std::function<void(lua_State*)>*>(&fn)) == 0) {
    return true;
  }
  if (error != nullptr) {
    const char* message = lua_tostring(lua, -1);
    *error = message != nullptr ? message : "unknown error";
  }
  lua_pop(lua, 1);
  return false;
}

Result<ScriptFlags> ParseShebang(std::string_view body, size_t* body_offset) {
  *body_offset = 0;
  ScriptFlags flags;
  if (!body.starts_with("#!")) return flags;
  flags.shebang = true;
  const size_t end = std::min(body.find('\n'), body.size());
  *body_offset = end;
  std::string_view line = body.substr(2, end - 2);
  size_t space = line.find(' ');
  const std::string_view engine = line.substr(0, space);
  if (engine != "lua") {
    return Unexpected("Could not find scripting engine '" + std::string(engine) + "'");
  }
  while (space != std::string_view::npos) {
    line.remove_prefix(space + 1);
    space = line.find(' ');
    const std::string_view part = line.substr(0, space);
    if (part.empty()) continue;
    if (!part.starts_with("flags=")) {
      return Unexpected("Unknown lua shebang option: " + std::string(part));
    }
    std::string_view list = part.substr(6);
    while (!list.empty()) {
      const size_t comma = list.find(',');
      const std::string_view flag = list.substr(0, comma);
      if (flag == "no-writes") {
        flags.no_writes = true;
      } else if (flag == "allow-oom") {
        flags.allow_oom = true;
      } else if (flag == "allow-stale") {
        flags.allow_stale = true;
      } else if (flag == "no-cluster") {
        flags.no_cluster = true;
      } else if (flag == "allow-cross-slot-keys") {
        flags.allow_cross_slot_keys = true;
      } else {
        return Unexpected("Unexpected flag in script shebang: " + std::string(flag));
      }
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
  }
  return flags;
}

std::string ScriptEngine::BusyMessage(bool function) const {
  return std::string("BUSY ") +
         (server_.config().extended_redis_compatibility() ? "Redis" : "Valkey") +
         " is busy running a script. You can only call " + (function ? "FUNCTION" : "SCRIPT") +
         " KILL or SHUTDOWN NOSAVE.";
}

ScriptEngine::ScriptEngine(Server& server, size_t memory_limit)
    : server_(server), memory_limit_(memory_limit) {
  Open();
  functions_lua_ = OpenState(functions_heap_, &OpenFunctionSandbox);
  server_.keyspace().AddObserver(this);
}

ScriptEngine::~ScriptEngine() {
  server_.keyspace().RemoveObserver(this);
  Close();
  lua_close(functions_lua_);
}

lua_State* ScriptEngine::OpenState(Heap& heap, int (*open)(lua_State*)) {
  lua_State* lua = lua_newstate(&LuaAllocate, &heap);
  LATTICE_ASSERT(lua != nullptr);
  const int status = lua_cpcall(lua, open, nullptr);
  LATTICE_ASSERT_MSG(status == 0, "the Lua sandbox does not open");
  return lua;
}

void ScriptEngine::Open() { lua_ = OpenState(eval_heap_, &OpenSandbox); }

void ScriptEngine::Close() {
  if (lua_ != nullptr) lua_close(lua_);
  lua_ = nullptr;
}

void* ScriptEngine::Allocate(Heap& heap, void* ptr, size_t old_size, size_t new_size) {
  if (new_size == 0) {
    std::free(ptr);
    heap.used -= old_size;
    return nullptr;
  }
  if (new_size > old_size && heap.used + (new_size - old_size) > memory_limit_) {
    return nullptr;  // Lua raises "not enough memory" in the script
  }
  void* grown = std::realloc(ptr, new_size);
  if (grown == nullptr) return nullptr;
  heap.used = heap.used - old_size + new_size;
  return grown;
}

Result<void> ScriptEngine::Compile(const std::string& sha, std::string_view body, bool loaded) {
  size_t offset = 0;
  Result<ScriptFlags> flags = ParseShebang(body, &offset);
  if (!flags.ok()) return Unexpected("ERR " + flags.error().message);
  const std::string_view code = body.substr(offset);
  std::string syntax_error;
  std::string error;
  const bool ran = Protected(
      lua_,
      [&](lua_State* lua) {
        lua_getfield(lua, LUA_REGISTRYINDEX, kScriptsKey);
        if (luaL_loadbuffer(lua, code.data(), code.size(), "@user_script") != 0) {
          syntax_error = lua_tostring(lua, -1);
          return;
        }
        lua_setfield(lua, -2, sha.c_str());
      },
      &error);
  if (!ran || !syntax_error.empty()) {
    return Unexpected("ERR Error compiling script (new function): " + (ran ? syntax_error : error));
  }
  scripts_[sha] = Script{std::string(body), *flags, loaded};
  if (!loaded) {
    eval_order_.push_back(sha);
    EvictEvalScripts();
  }
  return {};
}

void ScriptEngine::EvictEvalScripts() {
  while (eval_order_.size() > kMaxEvalScripts) {
    const std::string sha = std::move(eval_order_.front());
    eval_order_.pop_front();
    scripts_.erase(sha);
    Protected(lua_, [&](lua_State* lua) {
      lua_getfield(lua, LUA_REGISTRYINDEX, kScriptsKey);
      lua_pushnil(lua);
      lua_setfield(lua, -2, sha.c_str());
    });
  }
}

Result<std::string> ScriptEngine::Load(std::string_view body) {
  std::string sha = Sha1Hex(body);
  auto it = scripts_.find(sha);
  if (it == scripts_.end()) {
    if (Result<void> compiled = Compile(sha, body, true); !compiled.ok()) {
      return Unexpected(compiled.error().message);
    }
  } else if (!it->second.loaded) {
    it->second.loaded = true;  // SCRIPT LOAD pins a script EVAL cached
    std::erase(eval_order_, sha);
  }
  return sha;
}

bool ScriptEngine::MayWrite(ArgList args, bool function) {
  if (args.size() < 2) return true;
  if (function) {
    const FunctionInfo* info = FindFunction(args[1]);
    return info == nullptr || !info->flags.no_writes;
  }
  std::string sha;
  AsciiLower(args[1], sha);
  if (auto it = scripts_.find(sha); it != scripts_.end()) return !it->second.flags.no_writes;
  size_t offset = 0;
  Result<ScriptFlags> flags = ParseShebang(args[1], &offset);  // EVAL of a body
  return !flags.ok() || !flags->no_writes;
}

bool ScriptEngine::Exists(std::string_view sha) const {
  std::string lower;
  return scripts_.contains(std::string(AsciiLower(sha, lower)));
}

void ScriptEngine::Flush() {
  LATTICE_ASSERT(run_ == nullptr);  // SCRIPT is refused inside scripts
  scripts_.clear();
  eval_order_.clear();
  Close();
  Open();
}

void ScriptEngine::Kill(ReplyBuilder& reply, bool function) {
  if (run_ == nullptr) {
    reply.Error("NOTBUSY No scripts in execution right now.");
  } else if (run_->wrote) {
    reply.Error(
        "UNKILLABLE Sorry the script already executed write commands against the dataset. You "
        "can either wait the script termination or kill the server in a hard way using the "
        "SHUTDOWN NOSAVE command.");
  } else if (run_->function != function) {
    reply.Error(BusyMessage(run_->function));
  } else {
    run_->killed = true;
    reply.Ok();
  }
}

bool ScriptEngine::timed_out() const { return run_ != nullptr && run_->timed_out; }

bool ScriptEngine::RefuseWhileBusy(ClientState& client, const Command& command, ArgList args,
                                   ReplyBuilder& reply) {
  if (!timed_out() || &client == &run_->client || &client == run_->caller) return false;
  // SHUTDOWN is allow-busy only with NOSAVE: saving would need the script to end (Valkey's
  // shutdownCommand).
  const bool shutdown = command.full_name == "shutdown";
  const bool nosave =
      shutdown && std::any_of(args.begin() + 1, args.end(),
                              [](std::string_view arg) { return EqualsIgnoreCase(arg, "nosave"); });
  if ((command.spec.flags & kAllowBusy) && (!shutdown || nosave)) return false;
  if (command.full_name == "exec" && client.in_multi) {  // Valkey's execCommandAbort
    client.in_multi = false;
    client.queued.clear();
    server_.Unwatch(client);
    reply.Error("EXECABORT Transaction discarded because of: " + BusyMessage(run_->function));
    return true;
  }
  reply.Error(BusyMessage(run_->function));
  return true;
}

void ScriptEngine::OnCountHook(lua_State* lua) {
  if (loading_ != nullptr) {  // FUNCTION LOAD running a library's code: Valkey's 500 ms limit
    const int64_t elapsed_us = server_.clock().MonotonicUs() - loading_->start_us;
    if (loading_->timeout_ms > 0 && elapsed_us > loading_->timeout_ms * 1000) {
      lua_sethook(lua, CountHook, LUA_MASKLINE, 0);
      PushErrorTable(lua, "FUNCTION LOAD timeout");
      lua_error(lua);
    }
    return;
  }
  Run* run = run_;
  if (run == nullptr) return;
  if (!run->timed_out) {
    const int64_t threshold_ms = BusyThresholdMs(server_.config());
    const int64_t elapsed_ms = (server_.clock().MonotonicUs() - run->start_us) / 1000;
    if (threshold_ms <= 0 || elapsed_ms < threshold_ms) return;
    run->timed_out = true;
    spdlog::warn(
        "Slow script detected: still in execution after {} milliseconds. You can try killing "
        "the script using the {} KILL command. Script name is: {}.",
        elapsed_ms, run->function ? "FUNCTION" : "SCRIPT", run->sha);
  }
  if (poll_hook_) poll_hook_();
  if (run->killed) {
    // From now on every line raises again, so a pcall in the script cannot swallow the kill.
    lua_sethook(lua, CountHook, LUA_MASKLINE, 0);
    PushErrorTable(lua, "Script killed by user with SCRIPT KILL...");
    lua_error(lua);
  }
}

std::string ScriptEngine::CallCommand(std::vector<std::string>& args, std::string* error) {
  Run& run = *run_;
  const CommandRegistry& registry = server_.registry();
  const Command* command = registry.Find(args[0]);
  if (command == nullptr) {
    *error = "Unknown Redis command called from script";
    return {};
  }
  const Command* target = command;
  if (command->has_subcommands() && args.size() > 1) {
    if (const Command* sub = registry.FindSubcommand(*command, args[1])) target = sub;
  }
  if (!target->ArityOk(args.size())) {
    *error = "Wrong number of args calling Redis command from script";
    return {};
  }
  const uint32_t flags = command->spec.flags | target->spec.flags;
  // Blocking commands run (Valkey allows them): inside a script they never block
  // (Server::MayBlock) and reply as on timeout.
  if (flags & kNoScript) {
    *error = "This Redis command is not allowed from script";
    return {};
  }
  const bool write = (flags & kWrite) != 0;
  if (write && run.read_only) {
    *error = "Write commands are not allowed from read-only scripts.";
    return {};
  }
  std::vector<std::string_view> views(args.begin(), args.end());
  if (server_.cluster() != nullptr && !run.allow_cross_slot) {
    if (std::optional<std::vector<size_t>> keys = KeyPositions(*target, views)) {
      for (size_t position : *keys) {
        const int slot = KeySlot(views[position]);
        if (run.slot == -1) run.slot = slot;
        if (slot != run.slot) {
          *error = "Script attempted to access keys that do not hash to the same slot";
          return {};
        }
      }
    }
  }
  run.reply.clear();
  ReplyBuilder reply(&run.reply);
  reply.set_protocol(run.protocol);
  server_.Execute(run.client, views, reply);
  if (run.reply.empty()) {  // held: the slot is paused for a migration handoff
    run.client.paused_command.clear();
    *error = "-TRYAGAIN The slot is paused for a migration handoff; retry the script";
    return {};
  }
  if (run.reply.starts_with("-MOVED ") || run.reply.starts_with("-ASK ")) {
    *error = "Script attempted to access a non local key in a cluster node script";
    return {};
  }
  if (write && run.reply[0] != '-') run.wrote = true;
  return std::move(run.reply);
}

void ScriptEngine::Eval(CommandContext& ctx, ArgList args, bool by_sha, bool read_only) {
  if (run_ != nullptr) {  // only reachable through a poll hook that runs EVAL
    ctx.reply.Error(BusyMessage(false));
    return;
  }
  int64_t numkeys = 0;
  if (!ParseInt64(args[2], &numkeys)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  if (numkeys < 0) {
    ctx.reply.Error("ERR Number of keys can't be negative");
    return;
  }
  if (static_cast<uint64_t>(numkeys) > args.size() - 3) {
    ctx.reply.Error("ERR Number of keys can't be greater than number of args");
    return;
  }
  std::string sha;
  if (by_sha) {
    AsciiLower(args[1], sha);
    if (sha.size() != 40 || !scripts_.contains(sha)) {
      ctx.reply.Error("NOSCRIPT No matching script. Please use EVAL.");
      return;
    }
  } else {
    sha = Sha1Hex(args[1]);
    if (!scripts_.contains(sha)) {
      if (Result<void> compiled = Compile(sha, args[1], false); !compiled.ok()) {
        ctx.reply.Error(compiled.error().message);
        return;
      }
    }
  }
  const ScriptFlags flags = scripts_.at(sha).flags;
  if (flags.shebang && flags.no_cluster && server_.cluster() != nullptr) {
    ctx.reply.Error("ERR Can not run script on cluster, 'no-cluster' flag is set.");
    return;
  }
  if (flags.shebang && !flags.no_writes && read_only) {
    ctx.reply.Error("ERR Can not execute a script with write flag using *_ro command.");
    return;
  }
  const auto count = static_cast<size_t>(numkeys);
  RunScript(ctx, args, sha, flags, args.subspan(3, count), args.subspan(3 + count),
            read_only || (flags.shebang && flags.no_writes), false);
}

void ScriptEngine::RunScript(CommandContext& ctx, ArgList command, const std::string& name,
                             const ScriptFlags& flags, ArgList keys, ArgList argv, bool read_only,
                             bool function) {
  // A script that declared flags and may write is refused up front when over maxmemory, unless
  // it allows OOM (Valkey's scriptFlagsToCmdFlags: it counts as denyoom).
  if (flags.shebang && !flags.no_writes && !flags.allow_oom && server_.OutOfMemory()) {
    ctx.reply.Error(errors::kOom);
    return;
  }
  Run run;
  run.allow_oom = flags.shebang && (flags.allow_oom || flags.no_writes);
  const ClientState& caller = ctx.client;
  run.caller = &ctx.client;
  run.client.id = caller.id;
  run.client.addr = caller.addr;
  run.client.laddr = caller.laddr;
  run.client.name = caller.name;
  run.client.db = caller.db;
  run.client.user = caller.user;
  run.client.acl_user = caller.acl_user;
  run.client.is_local = caller.is_local;
  run.client.created_ms = caller.created_ms;
  run.sha = name;
  run.function = function;
  run.command = command;
  run.read_only = read_only;
  run.allow_cross_slot = !flags.shebang || flags.allow_cross_slot_keys;
  if (!keys.empty()) run.slot = KeySlot(keys[0]);
  run.start_us = server_.clock().MonotonicUs();
  run_ = &run;
  lua_State* const state = function ? functions_lua_ : lua_;
  Heap& heap = function ? functions_heap_ : eval_heap_;
  lua_sethook(state, CountHook, LUA_MASKCOUNT, hook_instructions_);

  ReplyBuilder& reply = ctx.reply;
  std::string* out = reply.buffer();
  const size_t reply_start = out->size();
  std::string error;
  const bool ran = Protected(
      state,
      [&](lua_State* lua) {
        if (!function) {
          SetGlobalArray(lua, "KEYS", keys);
          SetGlobalArray(lua, "ARGV", argv);
        }
        lua_pushcfunction(lua, ScriptErrorHandler);
        lua_getfield(lua, LUA_REGISTRYINDEX, function ? kFunctionsKey : kScriptsKey);
        lua_getfield(lua, -1, name.c_str());
        lua_remove(lua, -2);
        if (function) {
          PushArray(lua, keys);
          PushArray(lua, argv);
        }
        if (lua_pcall(lua, function ? 2 : 0, 1, -2 - (function ? 2 : 0)) == 0) {
          WriteScriptResult(lua, reply, run.protocol);
        } else {
          reply.Error(ScriptErrorText(lua, name));
        }
        lua_settop(lua, 0);
      },
      &error);
  if (!ran) {  // out of memory converting the result: drop what was written of it
    out->resize(reply_start);
    reply.Error("ERR Error running script: " + error);
  }
  lua_sethook(state, nullptr, 0, 0);
  run_ = nullptr;
  if (run.timed_out && busy_end_hook_) busy_end_hook_();
  // Keep the heap small between scripts; a full collection when it has grown large.
  lua_gc(state, heap.used > memory_limit_ / 2 ? LUA_GCCOLLECT : LUA_GCSTEP, 0);
}

}  // namespace lattice::server
