// ScriptEngine's functions (FUNCTION LOAD/DELETE/FLUSH/DUMP/RESTORE/STATS, FCALL): libraries are
// compiled into the functions' Lua state, and stored in the system db so they replicate (see
// script_engine.h). Texts are Valkey 9's.

#include <algorithm>
#include <lua.hpp>
#include <set>

#include "fmt/format.h"
#include "server/scripting/function_payload.h"
#include "server/scripting/script_engine.h"
#include "server/scripting/script_lua.h"
#include "server/server.h"
#include "spdlog/spdlog.h"
#include "util/ascii.h"

namespace lattice::server {
namespace {

// The system db key holding the libraries: a hash, library name -> code.
constexpr std::string_view kLibrariesKey = "functions";
// FUNCTION LOAD stops a library's top-level code after this long (Valkey's LOAD_TIMEOUT_MS).
constexpr int64_t kLoadTimeoutMs = 500;

bool ValidName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string Lower(std::string_view text) {
  std::string out;
  AsciiLower(text, out);
  return out;
}

struct Metadata {
  std::string name;
  size_t code_offset = 0;  // where the Lua code starts (the shebang's newline)
};

// The "#!<engine> name=<lib>" line, as Valkey reads it.
Result<Metadata> ParseMetadata(std::string_view code) {
  if (!code.starts_with("#!")) return Unexpected(std::string("Missing library metadata"));
  const size_t end = code.find('\n');
  if (end == std::string_view::npos) return Unexpected(std::string("Invalid library metadata"));
  std::vector<std::string_view> parts;
  std::string_view line = code.substr(0, end);
  while (!line.empty()) {
    const size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string_view::npos) break;
    line.remove_prefix(start);
    const size_t stop = std::min(line.find_first_of(" \t\r"), line.size());
    parts.push_back(line.substr(0, stop));
    line.remove_prefix(stop);
  }
  Metadata out;
  bool named = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].size() >= 5 && EqualsIgnoreCase(parts[i].substr(0, 5), "name=")) {
      if (named) {
        return Unexpected(
            std::string("Invalid metadata value, name argument was given multiple times"));
      }
      out.name = std::string(parts[i].substr(5));
      named = true;
      continue;
    }
    return Unexpected("Invalid metadata value given: " + std::string(parts[i]));
  }
  if (!named) return Unexpected(std::string("Library name was not given"));
  if (!ValidName(out.name)) {
    return Unexpected(std::string(
        "Library names can only contain letters, numbers, or underscores(_) and must be at "
        "least one character long"));
  }
  const std::string_view engine = parts[0].substr(2);
  if (!EqualsIgnoreCase(engine, "lua")) {
    return Unexpected("Engine '" + std::string(engine) + "' not found");
  }
  out.code_offset = end;
  return out;
}

}  // namespace

void WriteFunctionFlags(ReplyBuilder& reply, const ScriptFlags& flags) {
  std::vector<std::string_view> names;
  if (flags.no_writes) names.push_back("no-writes");
  if (flags.allow_oom) names.push_back("allow-oom");
  if (flags.allow_stale) names.push_back("allow-stale");
  if (flags.no_cluster) names.push_back("no-cluster");
  if (flags.allow_cross_slot_keys) names.push_back("allow-cross-slot-keys");
  reply.Set(names.size());
  for (std::string_view name : names) reply.SimpleString(name);
}

Result<void> ScriptEngine::RegisterFunction(lua_State* lua, FunctionInfo info) {
  if (!ValidName(info.name)) {
    return Unexpected(std::string(
        "Function names can only contain letters, numbers, or underscores(_) and must be at "
        "least one character long"));
  }
  const std::string key = Lower(info.name);
  for (const FunctionInfo& other : loading_->functions) {
    if (Lower(other.name) == key) {
      return Unexpected(std::string("Function already exists in the library"));
    }
  }
  lua_getfield(lua, LUA_REGISTRYINDEX, kLoadingKey);
  lua_insert(lua, -2);
  lua_setfield(lua, -2, key.c_str());
  lua_pop(lua, 1);
  loading_->functions.push_back(std::move(info));
  return {};
}

Result<ScriptEngine::Candidate> ScriptEngine::CompileLibrary(std::string_view code,
                                                             int64_t timeout_ms) {
  Result<Metadata> metadata = ParseMetadata(code);
  if (!metadata.ok()) return Unexpected("ERR " + metadata.error().message);
  Candidate candidate{metadata->name, std::string(code), {}};
  const std::string_view body = code.substr(metadata->code_offset);
  Loading loading;
  loading.start_us = server_.clock().MonotonicUs();
  loading.timeout_ms = timeout_ms;
  std::string failure;
  std::string error;
  lua_State* const lua = functions_lua_;
  loading_ = &loading;
  lua_sethook(
      lua, [](lua_State* state, lua_Debug*) { EngineOf(state).OnCountHook(state); }, LUA_MASKCOUNT,
      100000);
  const bool ran = Protected(
      lua,
      [&](lua_State* state) {
        lua_newtable(state);
        lua_setfield(state, LUA_REGISTRYINDEX, kLoadingKey);
        if (luaL_loadbuffer(state, body.data(), body.size(), "@user_function") != 0) {
          failure = std::string("ERR Error compiling function: ") + lua_tostring(state, -1);
          return;
        }
        SetLoadGlobals(state, true);
        const int status = lua_pcall(state, 0, 0, 0);
        SetLoadGlobals(state, false);
        if (status == 0) return;
        std::string message = "ERR unknown error";
        if (lua_istable(state, -1)) {
          lua_getfield(state, -1, "err");
          if (lua_isstring(state, -1)) message = lua_tostring(state, -1);
          lua_pop(state, 1);
        } else if (lua_isstring(state, -1)) {
          message = std::string("ERR ") + lua_tostring(state, -1);
        }
        failure = "ERR Error registering functions: " + message;
      },
      &error);
  loading_ = nullptr;
  lua_sethook(lua, nullptr, 0, 0);
  if (!ran) {  // out of memory outside the library's code; the globals may still point at the API
    Protected(lua, [](lua_State* state) { SetLoadGlobals(state, false); });
    return Unexpected("ERR Error registering functions: " + error);
  }
  if (!failure.empty()) return Unexpected(failure);
  if (loading.functions.empty()) return Unexpected(std::string("ERR No functions registered"));
  for (FunctionInfo& info : loading.functions) info.library = candidate.name;
  candidate.functions = std::move(loading.functions);
  return candidate;
}

std::optional<std::string> ScriptEngine::Collision(const Candidate& candidate,
                                                   const std::string& except) const {
  for (const FunctionInfo& info : candidate.functions) {
    auto it = functions_.find(Lower(info.name));
    if (it != functions_.end() && it->second.library != except) return info.name;
  }
  return std::nullopt;
}

void ScriptEngine::Uninstall(const std::string& library) {
  auto it = libraries_.find(library);
  if (it == libraries_.end()) return;
  Protected(functions_lua_, [&](lua_State* lua) {
    lua_getfield(lua, LUA_REGISTRYINDEX, kFunctionsKey);
    for (const std::string& name : it->second.functions) {
      lua_pushnil(lua);
      lua_setfield(lua, -2, Lower(name).c_str());
    }
  });
  for (const std::string& name : it->second.functions) functions_.erase(Lower(name));
  libraries_.erase(it);
}

void ScriptEngine::Install(const Candidate& candidate) {
  Uninstall(candidate.name);
  FunctionLibrary& library = libraries_[candidate.name];
  library.name = candidate.name;
  library.code = candidate.code;
  Protected(functions_lua_, [&](lua_State* lua) {
    lua_getfield(lua, LUA_REGISTRYINDEX, kFunctionsKey);
    lua_getfield(lua, LUA_REGISTRYINDEX, kLoadingKey);
    for (const FunctionInfo& info : candidate.functions) {
      const std::string key = Lower(info.name);
      lua_getfield(lua, -1, key.c_str());
      lua_setfield(lua, -3, key.c_str());
    }
    lua_newtable(lua);
    lua_setfield(lua, LUA_REGISTRYINDEX, kLoadingKey);
  });
  for (const FunctionInfo& info : candidate.functions) {
    library.functions.push_back(info.name);
    functions_[Lower(info.name)] = info;
  }
}

// ---- the system db ---------------------------------------------------------------------------

void ScriptEngine::MarkIfLibraries(int db, std::string_view key) {
  if (key == kLibrariesKey && db == server_.keyspace().system_db()) functions_dirty_ = true;
}
void ScriptEngine::OnLocalOp(int db, std::string_view key, const crdt::KeyOp& /*op*/) {
  MarkIfLibraries(db, key);
}
void ScriptEngine::OnRemoteOp(int db, std::string_view key, const crdt::KeyOp& /*op*/) {
  MarkIfLibraries(db, key);
}
void ScriptEngine::OnKeyChanged(int db, std::string_view key) { MarkIfLibraries(db, key); }

std::map<std::string, std::string> ScriptEngine::StoredLibraries() const {
  std::map<std::string, std::string> stored;
  const Keyspace& keyspace = server_.keyspace();
  constexpr int64_t kNever = INT64_MAX / 2;  // system entries carry no TTL
  if (const KeyRef key = keyspace.Find(keyspace.system_db(), kLibrariesKey, kNever)) {
    for (VisibleValue::HashEntry& field : ReadVisible(*key, kNever).hash) {
      stored.emplace(std::move(field.field), std::move(field.value));
    }
  }
  return stored;
}

void ScriptEngine::StoreLibrary(const std::string& name, const std::string& code, int64_t now_ms) {
  Keyspace& keyspace = server_.keyspace();
  (void)keyspace.Write(keyspace.system_db(), kLibrariesKey, now_ms,
                       [&](crdt::Key& key, const crdt::Writer& writer, crdt::DotContext& shard) {
                         return key.HSet(name, code, /*keep_ttl=*/true, writer, shard);
                       });
}

void ScriptEngine::SyncFunctions() {
  if (!functions_dirty_ || (run_ != nullptr && run_->function)) return;
  functions_dirty_ = false;
  std::map<std::string, std::string> stored = StoredLibraries();
  if (stored != synced_) RebuildFunctions(stored);
}

void ScriptEngine::RebuildFunctions(const std::map<std::string, std::string>& stored) {
  lua_close(functions_lua_);
  functions_heap_.used = 0;
  functions_lua_ = OpenState(functions_heap_, &OpenFunctionSandbox);
  libraries_.clear();
  functions_.clear();
  skipped_.clear();
  for (const auto& [name, code] : stored) {
    Result<Candidate> candidate = CompileLibrary(code, /*timeout_ms=*/0);
    std::string why;
    if (!candidate.ok()) {
      why = candidate.error().message;
    } else if (candidate->name != name) {
      why = "its code names library '" + candidate->name + "'";
    } else if (std::optional<std::string> taken = Collision(*candidate, "")) {
      why = "Function " + *taken + " already exists";
    } else {
      Install(*candidate);
      continue;
    }
    skipped_.push_back(name);
    spdlog::warn("Function library '{}' is stored but not loaded: {}", name, why);
  }
  synced_ = stored;
}

// ---- commands --------------------------------------------------------------------------------

Result<std::string> ScriptEngine::LoadLibrary(std::string_view code, bool replace, int64_t now_ms) {
  SyncFunctions();
  Result<Metadata> metadata = ParseMetadata(code);
  if (!metadata.ok()) return Unexpected("ERR " + metadata.error().message);
  if (!replace && libraries_.contains(metadata->name)) {
    return Unexpected("ERR Library '" + metadata->name + "' already exists");
  }
  Result<Candidate> candidate = CompileLibrary(code, kLoadTimeoutMs);
  if (!candidate.ok()) return Unexpected(candidate.error().message);
  if (std::optional<std::string> taken = Collision(*candidate, candidate->name)) {
    return Unexpected("ERR Function " + *taken + " already exists");
  }
  StoreLibrary(candidate->name, candidate->code, now_ms);
  if (skipped_.empty()) {
    // Loading it here gives what a rebuild from the system db would: nothing else was skipped.
    Install(*candidate);
    synced_[candidate->name] = candidate->code;
  }
  SyncFunctions();
  return candidate->name;
}

bool ScriptEngine::DeleteLibrary(const std::string& name, int64_t now_ms) {
  SyncFunctions();
  // A stored library that did not load here (skipped) can be deleted too.
  if (!libraries_.contains(name) && !synced_.contains(name)) return false;
  Keyspace& keyspace = server_.keyspace();
  (void)keyspace.Write(keyspace.system_db(), kLibrariesKey, now_ms,
                       [&](crdt::Key& key, const crdt::Writer& writer, crdt::DotContext& shard) {
                         return key.HDel({name}, writer, shard);
                       });
  SyncFunctions();
  return true;
}

void ScriptEngine::FlushLibraries(int64_t now_ms) {
  Keyspace& keyspace = server_.keyspace();
  keyspace.Delete(keyspace.system_db(), kLibrariesKey, now_ms);
  functions_dirty_ = true;
  SyncFunctions();
}

std::string ScriptEngine::DumpLibraries() {
  SyncFunctions();
  std::vector<std::string> codes;
  for (const auto& [name, library] : libraries_) codes.push_back(library.code);
  return EncodeFunctionPayload(codes);
}

Result<void> ScriptEngine::RestoreLibraries(std::string_view payload, RestorePolicy policy,
                                            int64_t now_ms) {
  SyncFunctions();
  const bool relaxed = server_.config().ValueOf("rdb-version-check") == "relaxed";
  Result<std::vector<std::string>> codes = DecodeFunctionPayload(payload, relaxed);
  if (!codes.ok()) return Unexpected("ERR " + codes.error().message);
  // Every library must compile, and together they must not collide.
  std::vector<Candidate> candidates;
  std::map<std::string, std::string> owners;  // lower-case function name -> library
  for (const std::string& code : *codes) {
    Result<Candidate> candidate = CompileLibrary(code, kLoadTimeoutMs);
    if (!candidate.ok()) return Unexpected(candidate.error().message);
    for (const Candidate& other : candidates) {
      if (other.name == candidate->name) {
        return Unexpected("ERR Library '" + candidate->name + "' already exists");
      }
    }
    for (const FunctionInfo& info : candidate->functions) {
      if (!owners.emplace(Lower(info.name), candidate->name).second) {
        return Unexpected("ERR Function " + info.name + " already exists");
      }
    }
    candidates.push_back(std::move(*candidate));
  }
  if (policy != RestorePolicy::kFlush) {
    for (const Candidate& candidate : candidates) {
      if (policy == RestorePolicy::kAppend && libraries_.contains(candidate.name)) {
        return Unexpected("ERR Library " + candidate.name + " already exists");
      }
    }
    // An existing function collides unless its library is one the payload replaces.
    std::set<std::string> restored;
    for (const Candidate& candidate : candidates) restored.insert(candidate.name);
    for (const auto& [key, info] : functions_) {
      if (owners.contains(key) && !restored.contains(info.library)) {
        return Unexpected("ERR Function " + info.name + " already exists");
      }
    }
  }
  Keyspace& keyspace = server_.keyspace();
  if (policy == RestorePolicy::kFlush) {
    keyspace.Delete(keyspace.system_db(), kLibrariesKey, now_ms);
  }
  for (const Candidate& candidate : candidates) {
    StoreLibrary(candidate.name, candidate.code, now_ms);
  }
  functions_dirty_ = true;
  SyncFunctions();
  return {};
}

const std::map<std::string, FunctionLibrary>& ScriptEngine::libraries() {
  SyncFunctions();
  return libraries_;
}

const FunctionInfo* ScriptEngine::FindFunction(std::string_view name) {
  SyncFunctions();
  auto it = functions_.find(Lower(name));
  return it == functions_.end() ? nullptr : &it->second;
}

void ScriptEngine::FunctionStats(ReplyBuilder& reply) {
  if (run_ != nullptr && !run_->function) {
    reply.Error(BusyMessage(false));
    return;
  }
  SyncFunctions();
  reply.Map(2);
  reply.Bulk("running_script");
  if (run_ == nullptr) {
    reply.Null();
  } else {
    reply.Map(3);
    reply.Bulk("name");
    reply.Bulk(run_->sha);
    reply.Bulk("command");
    reply.Array(run_->command.size());
    for (std::string_view arg : run_->command) reply.Bulk(arg);
    reply.Bulk("duration_ms");
    reply.Integer((server_.clock().MonotonicUs() - run_->start_us) / 1000);
  }
  reply.Bulk("engines");
  reply.Map(1);
  reply.Bulk("LUA");
  reply.Map(2);
  reply.Bulk("libraries_count");
  reply.Integer(static_cast<int64_t>(libraries_.size()));
  reply.Bulk("functions_count");
  reply.Integer(static_cast<int64_t>(functions_.size()));
}

void ScriptEngine::FCall(CommandContext& ctx, ArgList args, bool read_only) {
  if (run_ != nullptr) {  // only reachable through a poll hook that runs FCALL
    ctx.reply.Error(BusyMessage(run_->function));
    return;
  }
  const FunctionInfo* function = FindFunction(args[1]);
  if (function == nullptr) {
    ctx.reply.Error("ERR Function not found");
    return;
  }
  int64_t numkeys = 0;
  if (!ParseInt64(args[2], &numkeys)) {
    ctx.reply.Error("ERR Bad number of keys provided");
    return;
  }
  if (numkeys > static_cast<int64_t>(args.size() - 3)) {
    ctx.reply.Error("ERR Number of keys can't be greater than number of args");
    return;
  }
  if (numkeys < 0) {
    ctx.reply.Error("ERR Number of keys can't be negative");
    return;
  }
  const FunctionInfo info = *function;  // a copy: the table may be rebuilt after the call
  if (info.flags.no_cluster && server_.cluster() != nullptr) {
    ctx.reply.Error("ERR Can not run script on cluster, 'no-cluster' flag is set.");
    return;
  }
  if (read_only && !info.flags.no_writes) {
    ctx.reply.Error("ERR Can not execute a script with write flag using *_ro command.");
    return;
  }
  const auto count = static_cast<size_t>(numkeys);
  RunScript(ctx, args, Lower(info.name), info.flags, args.subspan(3, count),
            args.subspan(3 + count), read_only || info.flags.no_writes, true);
}

std::vector<std::pair<std::string, std::string>> ScriptEngine::InfoFields() {
  SyncFunctions();
  size_t eval_bytes = 0;
  for (const auto& [sha, script] : scripts_) eval_bytes += sha.size() + script.body.size();
  size_t function_bytes = 0;
  for (const auto& [name, library] : libraries_)
    function_bytes += name.size() + library.code.size();
  const auto human = [](size_t bytes) {
    if (bytes < 1024) return fmt::format("{}B", bytes);
    if (bytes < 1024 * 1024) return fmt::format("{:.2f}K", bytes / 1024.0);
    return fmt::format("{:.2f}M", bytes / (1024.0 * 1024));
  };
  const size_t vm_total = eval_heap_.used + functions_heap_.used;
  return {
      {"used_memory_lua", std::to_string(eval_heap_.used)},
      {"used_memory_lua_human", human(eval_heap_.used)},
      {"used_memory_vm_eval", std::to_string(eval_heap_.used)},
      {"used_memory_vm_functions", std::to_string(functions_heap_.used)},
      {"used_memory_vm_total", std::to_string(vm_total)},
      {"used_memory_vm_total_human", human(vm_total)},
      {"used_memory_scripts_eval", std::to_string(eval_bytes)},
      {"used_memory_functions", std::to_string(function_bytes)},
      {"used_memory_scripts", std::to_string(eval_bytes + function_bytes)},
      {"used_memory_scripts_human", human(eval_bytes + function_bytes)},
      {"number_of_cached_scripts", std::to_string(scripts_.size())},
      {"number_of_functions", std::to_string(functions_.size())},
      {"number_of_libraries", std::to_string(libraries_.size())},
  };
}

}  // namespace lattice::server
