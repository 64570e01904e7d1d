// Lua 5.1 is linked as Debian's C++ build (liblua5.1-c++): a Lua error unwinds as a C++
// exception, so C++ objects in the frames of these functions are destroyed properly when
// lua_error() or a failed allocation leaves them.

#include "server/scripting/script_lua.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <lua.hpp>
#include <string>
#include <vector>

#include "server/scripting/lua_libs.h"
#include "server/scripting/script_engine.h"
#include "spdlog/spdlog.h"
#include "util/ascii.h"
#include "util/sha1.h"

extern "C" {
int luaopen_cjson(lua_State* lua);
int luaopen_bit(lua_State* lua);
}

namespace lattice::server {
namespace {

constexpr char kReadonlyKey[] = "lattice_readonly";  // weak set of the sealed proxies
constexpr int kMaxReplyDepth = 200;                  // nesting of a script's result

void SetField(lua_State* lua, const char* key, std::string_view value) {
  lua_pushlstring(lua, value.data(), value.size());
  lua_setfield(lua, -2, key);
}

// A command argument from a Lua number: an integer when exact (1e9 must not become "1e+09"),
// else the shortest text that reads back the same double.
std::string NumberArg(lua_Number number) {
  if (std::floor(number) == number && number >= -9.2e18 && number <= 9.2e18) {
    return std::to_string(static_cast<int64_t>(number));
  }
  return FormatDouble(number);
}

// A Lua number as a RESP integer: truncated as Valkey's (long long) cast; out of range (and nan)
// gives what that cast gives on x86-64.
int64_t ToInteger(lua_Number number) {
  if (number >= -9223372036854775808.0 && number < 9223372036854775808.0) {
    return static_cast<int64_t>(number);
  }
  return INT64_MIN;
}

int GenericCall(lua_State* lua, bool raise) {
  ScriptEngine& engine = EngineOf(lua);
  if (engine.run() == nullptr) return luaL_error(lua, "redis.call() is only available to a script");
  const int argc = lua_gettop(lua);
  std::string error;
  std::string out;
  {
    std::vector<std::string> args;
    if (argc == 0) error = "Please specify at least one argument for this call";
    for (int i = 1; i <= argc && error.empty(); ++i) {
      if (lua_type(lua, i) == LUA_TNUMBER) {
        args.push_back(NumberArg(lua_tonumber(lua, i)));
      } else if (lua_type(lua, i) == LUA_TSTRING) {
        size_t len = 0;
        const char* text = lua_tolstring(lua, i, &len);
        args.emplace_back(text, len);
      } else {
        error = "Command arguments must be strings or integers";
      }
    }
    lua_settop(lua, 0);
    if (error.empty()) out = engine.CallCommand(args, &error);
  }
  if (!error.empty()) {
    PushErrorTable(lua, error);
    return raise ? lua_error(lua) : 1;
  }
  Result<RespValue> value = DecodeReply(out);
  if (!value.ok()) {
    PushErrorTable(lua, "Undecodable reply from the command");
    return raise ? lua_error(lua) : 1;
  }
  PushReply(lua, *value, engine.run()->protocol);
  return raise && value->type == RespValue::Type::kError ? lua_error(lua) : 1;
}

int LuaCall(lua_State* lua) { return GenericCall(lua, true); }
int LuaPcall(lua_State* lua) { return GenericCall(lua, false); }

// pcall() as Valkey's: an error table raised by redis.call() comes back as its message string,
// as scripts written before Redis 7 expect.
int LuaProtectedCall(lua_State* lua) {
  const int argc = lua_gettop(lua);
  luaL_checkany(lua, 1);
  lua_pushboolean(lua, 1);
  lua_insert(lua, 1);
  if (lua_pcall(lua, argc - 1, LUA_MULTRET, 0) != 0) {
    lua_remove(lua, 1);
    if (lua_istable(lua, -1)) {
      lua_getfield(lua, -1, "err");
      if (lua_isstring(lua, -1)) {
        lua_replace(lua, -2);
      } else {
        lua_pop(lua, 1);
      }
    }
    lua_pushboolean(lua, 0);
    lua_insert(lua, 1);
  }
  return lua_gettop(lua);
}

int LuaSha1Hex(lua_State* lua) {
  if (lua_gettop(lua) != 1) {
    PushErrorTable(lua, "wrong number of arguments");
    return lua_error(lua);
  }
  size_t len = 0;
  const char* text = lua_tolstring(lua, 1, &len);
  const std::string digest =
      Sha1Hex(text == nullptr ? std::string_view() : std::string_view(text, len));
  lua_pushlstring(lua, digest.data(), digest.size());
  return 1;
}

int LuaErrorReply(lua_State* lua) {
  if (lua_gettop(lua) != 1 || lua_type(lua, -1) != LUA_TSTRING) {
    PushErrorTable(lua, "wrong number or type of arguments");
    return 1;
  }
  size_t len = 0;
  const char* text = lua_tolstring(lua, 1, &len);
  std::string error(text, len);
  if (error.empty() || error[0] != '-') error.insert(0, "-");
  PushErrorTable(lua, error);
  return 1;
}

int LuaStatusReply(lua_State* lua) {
  if (lua_gettop(lua) != 1 || lua_type(lua, -1) != LUA_TSTRING) {
    PushErrorTable(lua, "wrong number or type of arguments");
    return 1;
  }
  lua_newtable(lua);
  lua_pushvalue(lua, 1);
  lua_setfield(lua, -2, "ok");
  return 1;
}

int LuaLog(lua_State* lua) {
  const int argc = lua_gettop(lua);
  if (argc < 2) {
    PushErrorTable(lua, "server.log() requires two arguments or more.");
    return lua_error(lua);
  }
  if (!lua_isnumber(lua, 1)) {
    PushErrorTable(lua, "First argument must be a number (log level).");
    return lua_error(lua);
  }
  const lua_Number level = lua_tonumber(lua, 1);
  if (level < 0 || level > 3) {
    PushErrorTable(lua, "Invalid log level.");
    return lua_error(lua);
  }
  std::string line;
  for (int i = 2; i <= argc; ++i) {
    size_t len = 0;
    const char* text = lua_tolstring(lua, i, &len);
    if (text == nullptr) continue;
    if (i != 2) line.push_back(' ');
    line.append(text, len);
  }
  // LOG_DEBUG, LOG_VERBOSE, LOG_NOTICE, LOG_WARNING.
  static constexpr spdlog::level::level_enum kLevels[] = {
      spdlog::level::debug, spdlog::level::debug, spdlog::level::info, spdlog::level::warn};
  spdlog::log(kLevels[static_cast<int>(level)], "{}", line);
  return 0;
}

int LuaSetResp(lua_State* lua) {
  ScriptEngine& engine = EngineOf(lua);
  if (lua_gettop(lua) != 1) {
    PushErrorTable(lua, "server.setresp() requires one argument.");
    return lua_error(lua);
  }
  const lua_Number resp = lua_tonumber(lua, 1);
  if (resp != 2 && resp != 3) {
    PushErrorTable(lua, "RESP version must be 2 or 3.");
    return lua_error(lua);
  }
  if (engine.run() != nullptr)
    engine.run()->protocol = resp == 3 ? Protocol::kResp3 : Protocol::kResp2;
  return 0;
}

// Every write of a script is replicated as its effects (ordinary CRDT ops); there is nothing to
// turn off, so only REPL_ALL is accepted.
int LuaSetRepl(lua_State* lua) {
  if (lua_gettop(lua) != 1) {
    PushErrorTable(lua, "server.set_repl() requires one argument.");
    return lua_error(lua);
  }
  if (lua_tonumber(lua, 1) != 3) {
    PushErrorTable(
        lua, "server.set_repl() is not supported: Lattice replicates every write of a script");
    return lua_error(lua);
  }
  return 0;
}

int LuaReplicateCommands(lua_State* lua) {
  lua_pushboolean(lua, 1);
  return 1;
}

int LuaOsClock(lua_State* lua) {
  lua_pushnumber(lua, static_cast<lua_Number>(std::clock()) / CLOCKS_PER_SEC);
  return 1;
}

// loadstring() without bytecode: precompiled chunks can break the VM's invariants.
int LoadChecked(lua_State* lua, const char* code, size_t len, const char* name) {
  if (len > 0 && code[0] == LUA_SIGNATURE[0]) {
    lua_pushnil(lua);
    lua_pushliteral(lua, "attempt to load bytecode");
    return 2;
  }
  if (luaL_loadbuffer(lua, code, len, name) == 0) return 1;
  lua_pushnil(lua);
  lua_insert(lua, -2);
  return 2;
}

int LuaLoadString(lua_State* lua) {
  size_t len = 0;
  const char* code = luaL_checklstring(lua, 1, &len);
  const char* name = luaL_optstring(lua, 2, code);
  return LoadChecked(lua, code, len, name);
}

// load(reader): the pieces are gathered in a Lua table (so the memory limit counts them), then
// loaded as one string.
int LuaLoad(lua_State* lua) {
  luaL_checktype(lua, 1, LUA_TFUNCTION);
  const char* name = luaL_optstring(lua, 2, "=(load)");
  lua_settop(lua, 2);
  lua_newtable(lua);  // 3: the pieces
  for (int n = 1;; ++n) {
    lua_pushvalue(lua, 1);
    lua_call(lua, 0, 1);
    if (lua_isnil(lua, -1) || (lua_isstring(lua, -1) && lua_objlen(lua, -1) == 0)) {
      lua_pop(lua, 1);
      break;
    }
    if (!lua_isstring(lua, -1)) return luaL_error(lua, "reader function must return a string");
    lua_rawseti(lua, 3, n);
  }
  luaL_Buffer buffer;
  luaL_buffinit(lua, &buffer);
  const int pieces = static_cast<int>(lua_objlen(lua, 3));
  for (int i = 1; i <= pieces; ++i) {
    lua_rawgeti(lua, 3, i);
    luaL_addvalue(&buffer);
  }
  luaL_pushresult(&buffer);
  size_t len = 0;
  const char* code = lua_tolstring(lua, -1, &len);
  return LoadChecked(lua, code, len, name);
}

bool IsSealed(lua_State* lua, int index) {
  lua_getfield(lua, LUA_REGISTRYINDEX, kReadonlyKey);
  lua_pushvalue(lua, index);
  lua_rawget(lua, -2);
  const bool sealed = lua_toboolean(lua, -1) != 0;
  lua_pop(lua, 2);
  return sealed;
}

int LuaRawSet(lua_State* lua) {
  luaL_checktype(lua, 1, LUA_TTABLE);
  luaL_checkany(lua, 2);
  luaL_checkany(lua, 3);
  if (IsSealed(lua, 1)) return luaL_error(lua, "Attempt to modify a readonly table");
  lua_settop(lua, 3);
  lua_rawset(lua, 1);
  return 1;
}

int ReadonlyNewIndex(lua_State* lua) {
  return luaL_error(lua, "Attempt to modify a readonly table");
}

int GlobalIndex(lua_State* lua) {
  lua_pushvalue(lua, 2);
  lua_rawget(lua, lua_upvalueindex(1));
  if (!lua_isnil(lua, -1)) return 1;
  const char* name = lua_isstring(lua, 2) ? lua_tostring(lua, 2) : luaL_typename(lua, 2);
  return luaL_error(lua, "Script attempted to access nonexistent global variable '%s'", name);
}

// Replaces the table at the top of the stack by a read-only proxy of it: reads go through to
// the table, writes fail, the metatable is hidden. `strict`: reading a missing key is an error
// (the globals).
void Seal(lua_State* lua, bool strict) {
  const int real = lua_gettop(lua);
  lua_newtable(lua);  // the proxy
  lua_newtable(lua);  // its metatable
  lua_pushvalue(lua, real);
  if (strict) lua_pushcclosure(lua, GlobalIndex, 1);
  lua_setfield(lua, -2, "__index");
  lua_pushcfunction(lua, ReadonlyNewIndex);
  lua_setfield(lua, -2, "__newindex");
  lua_pushboolean(lua, 0);
  lua_setfield(lua, -2, "__metatable");
  lua_setmetatable(lua, -2);
  lua_getfield(lua, LUA_REGISTRYINDEX, kReadonlyKey);
  lua_pushvalue(lua, -2);
  lua_pushboolean(lua, 1);
  lua_rawset(lua, -3);
  lua_pop(lua, 1);
  lua_replace(lua, real);
}

void OpenLibrary(lua_State* lua, const char* name, lua_CFunction open) {
  lua_pushcfunction(lua, open);
  lua_pushstring(lua, name);
  lua_call(lua, 1, 1);
  if (*name != '\0' && lua_istable(lua, -1)) {
    lua_setfield(lua, LUA_GLOBALSINDEX, name);
  } else {
    lua_pop(lua, 1);
  }
}

// The log levels and version fields of the table on top (the redis API, also at FUNCTION LOAD).
void SetConstants(lua_State* lua, bool replication) {
  static const std::pair<const char*, int> kLogLevels[] = {
      {"LOG_DEBUG", 0}, {"LOG_VERBOSE", 1}, {"LOG_NOTICE", 2}, {"LOG_WARNING", 3}};
  static const std::pair<const char*, int> kReplication[] = {
      {"REPL_NONE", 0}, {"REPL_AOF", 1}, {"REPL_SLAVE", 2}, {"REPL_REPLICA", 2}, {"REPL_ALL", 3}};
  for (const auto& [name, value] : kLogLevels) {
    lua_pushnumber(lua, value);
    lua_setfield(lua, -2, name);
  }
  if (replication) {
    for (const auto& [name, value] : kReplication) {
      lua_pushnumber(lua, value);
      lua_setfield(lua, -2, name);
    }
  }
  lua_pushnumber(lua, 0x070204);
  lua_setfield(lua, -2, "REDIS_VERSION_NUM");
  lua_pushnumber(lua, 0x090000);
  lua_setfield(lua, -2, "VALKEY_VERSION_NUM");
  SetField(lua, "REDIS_VERSION", "7.2.4");
  SetField(lua, "VALKEY_VERSION", "9.0.0");
  SetField(lua, "SERVER_NAME", "valkey");
}

void RegisterServerApi(lua_State* lua) {
  static const luaL_Reg kFunctions[] = {
      {"call", LuaCall},
      {"pcall", LuaPcall},
      {"sha1hex", LuaSha1Hex},
      {"error_reply", LuaErrorReply},
      {"status_reply", LuaStatusReply},
      {"log", LuaLog},
      {"setresp", LuaSetResp},
      {"set_repl", LuaSetRepl},
      {"replicate_commands", LuaReplicateCommands},
  };
  lua_newtable(lua);
  for (const luaL_Reg& fn : kFunctions) {
    lua_pushcfunction(lua, fn.func);
    lua_setfield(lua, -2, fn.name);
  }
  SetConstants(lua, true);
  lua_pushvalue(lua, -1);
  lua_setfield(lua, LUA_GLOBALSINDEX, "server");
  lua_setfield(lua, LUA_GLOBALSINDEX, "redis");
}

// Valkey's globals: the base library minus what reaches outside the sandbox.
void TrimGlobals(lua_State* lua) {
  for (const char* name : {"dofile", "loadfile", "print", "setfenv", "getfenv", "newproxy",
                           "module", "require", "package"}) {
    lua_pushnil(lua);
    lua_setfield(lua, LUA_GLOBALSINDEX, name);
  }
  static const std::pair<const char*, lua_CFunction> kReplaced[] = {
      {"pcall", LuaProtectedCall},
      {"loadstring", LuaLoadString},
      {"load", LuaLoad},
      {"rawset", LuaRawSet},
  };
  for (const auto& [name, fn] : kReplaced) {
    lua_pushcfunction(lua, fn);
    lua_setfield(lua, LUA_GLOBALSINDEX, name);
  }
  lua_newtable(lua);
  lua_pushcfunction(lua, LuaOsClock);
  lua_setfield(lua, -2, "clock");
  lua_setfield(lua, LUA_GLOBALSINDEX, "os");
}

// Seals the library tables and the globals; from here on the thread's globals are the proxy.
void SealGlobals(lua_State* lua) {
  for (const char* name : {"string", "table", "math", "coroutine", "os", "cjson", "bit", "cmsgpack",
                           "struct", "redis"}) {
    lua_getfield(lua, LUA_GLOBALSINDEX, name);
    if (!lua_istable(lua, -1)) {
      lua_pop(lua, 1);
      continue;
    }
    Seal(lua, false);
    lua_setfield(lua, LUA_GLOBALSINDEX, name);
  }
  lua_getfield(lua, LUA_GLOBALSINDEX, "redis");
  lua_setfield(lua, LUA_GLOBALSINDEX, "server");
  // Strings index the sealed string table; their metatable is hidden.
  lua_pushliteral(lua, "");
  lua_getmetatable(lua, -1);
  lua_getfield(lua, LUA_GLOBALSINDEX, "string");
  lua_setfield(lua, -2, "__index");
  lua_pushboolean(lua, 0);
  lua_setfield(lua, -2, "__metatable");
  lua_pop(lua, 2);

  lua_pushvalue(lua, LUA_GLOBALSINDEX);
  lua_setfield(lua, LUA_REGISTRYINDEX, kGlobalsKey);
  lua_pushvalue(lua, LUA_GLOBALSINDEX);
  Seal(lua, true);
  lua_pushvalue(lua, -1);
  lua_setfield(lua, LUA_GLOBALSINDEX, "_G");
  lua_replace(lua, LUA_GLOBALSINDEX);
}

// Reads the flags table on top (Valkey's names, any case): false on anything else.
bool ReadFunctionFlags(lua_State* lua, ScriptFlags* flags) {
  for (int i = 1;; ++i) {
    lua_rawgeti(lua, -1, i);
    if (lua_isnil(lua, -1)) {
      lua_pop(lua, 1);
      return true;
    }
    const char* flag = lua_isstring(lua, -1) ? lua_tostring(lua, -1) : "";
    const std::string_view name = flag;
    bool known = true;
    if (EqualsIgnoreCase(name, "no-writes")) {
      flags->no_writes = true;
    } else if (EqualsIgnoreCase(name, "allow-oom")) {
      flags->allow_oom = true;
    } else if (EqualsIgnoreCase(name, "allow-stale")) {
      flags->allow_stale = true;
    } else if (EqualsIgnoreCase(name, "no-cluster")) {
      flags->no_cluster = true;
    } else if (EqualsIgnoreCase(name, "allow-cross-slot-keys")) {
      flags->allow_cross_slot_keys = true;
    } else {
      known = false;
    }
    lua_pop(lua, 1);
    if (!known) return false;
  }
}

int RaiseError(lua_State* lua, std::string_view message) {
  PushErrorTable(lua, message);
  return lua_error(lua);
}

std::string StringAt(lua_State* lua, int index) {
  size_t len = 0;
  const char* text = lua_tolstring(lua, index, &len);
  return std::string(text, len);
}

// redis.register_function('name', callback) or redis.register_function{function_name=...,
// callback=..., flags={...}, description=...}: Valkey's checks and texts.
int LuaRegisterFunction(lua_State* lua) {
  ScriptEngine& engine = EngineOf(lua);
  if (!engine.loading_library()) {
    return RaiseError(lua, "redis.register_function can only be called on FUNCTION LOAD command");
  }
  const int argc = lua_gettop(lua);
  if (argc < 1 || argc > 2) {
    return RaiseError(lua, "wrong number of arguments to redis.register_function");
  }
  FunctionInfo info;
  info.flags.shebang = true;
  if (argc == 2) {
    if (!lua_isstring(lua, 1)) {
      return RaiseError(lua, "first argument to redis.register_function must be a string");
    }
    if (!lua_isfunction(lua, 2)) {
      return RaiseError(lua, "second argument to redis.register_function must be a function");
    }
    info.name = StringAt(lua, 1);
  } else {
    if (!lua_istable(lua, 1)) {
      return RaiseError(lua,
                        "calling redis.register_function with a single argument is only "
                        "applicable to Lua table (representing named arguments).");
    }
    lua_pushnil(lua);  // 2: the callback
    bool named = false;
    lua_pushnil(lua);
    while (lua_next(lua, 1) != 0) {  // 3: key, 4: value
      if (!lua_isstring(lua, 3)) {
        return RaiseError(lua,
                          "named argument key given to redis.register_function is not a string");
      }
      lua_pushvalue(lua, 3);  // a copy: lua_tostring must not change the key lua_next reads
      const std::string key = StringAt(lua, -1);
      lua_pop(lua, 1);
      if (EqualsIgnoreCase(key, "function_name")) {
        if (!lua_isstring(lua, 4)) {
          return RaiseError(
              lua, "function_name argument given to redis.register_function must be a string");
        }
        info.name = StringAt(lua, 4);
        named = true;
      } else if (EqualsIgnoreCase(key, "description")) {
        if (!lua_isstring(lua, 4)) {
          return RaiseError(
              lua, "description argument given to redis.register_function must be a string");
        }
        info.description = StringAt(lua, 4);
      } else if (EqualsIgnoreCase(key, "callback")) {
        if (!lua_isfunction(lua, 4)) {
          return RaiseError(
              lua, "callback argument given to redis.register_function must be a function");
        }
        lua_pushvalue(lua, 4);
        lua_replace(lua, 2);
      } else if (EqualsIgnoreCase(key, "flags")) {
        if (!lua_istable(lua, 4)) {
          return RaiseError(lua,
                            "flags argument to redis.register_function must be a table "
                            "representing function flags");
        }
        if (!ReadFunctionFlags(lua, &info.flags)) return RaiseError(lua, "unknown flag given");
      } else {
        return RaiseError(lua, "unknown argument given to redis.register_function");
      }
      lua_pop(lua, 1);
    }
    if (!named) return RaiseError(lua, "redis.register_function must get a function name argument");
    if (lua_isnil(lua, 2)) {
      return RaiseError(lua, "redis.register_function must get a callback argument");
    }
  }
  lua_settop(lua, 2);  // the callback on top
  if (Result<void> added = engine.RegisterFunction(lua, std::move(info)); !added.ok()) {
    return RaiseError(lua, added.error().message);
  }
  return 0;
}

}  // namespace

int OpenFunctionSandbox(lua_State* lua) {
  OpenSandbox(lua);
  lua_newtable(lua);
  lua_setfield(lua, LUA_REGISTRYINDEX, kFunctionsKey);
  lua_newtable(lua);
  lua_setfield(lua, LUA_REGISTRYINDEX, kLoadingKey);
  lua_newtable(lua);  // the load globals
  lua_newtable(lua);  // their redis table
  lua_pushcfunction(lua, LuaRegisterFunction);
  lua_setfield(lua, -2, "register_function");
  lua_pushcfunction(lua, LuaLog);
  lua_setfield(lua, -2, "log");
  SetConstants(lua, false);
  Seal(lua, true);
  lua_pushvalue(lua, -1);
  lua_setfield(lua, -3, "server");
  lua_setfield(lua, -2, "redis");
  lua_setfield(lua, LUA_REGISTRYINDEX, kLoadApiKey);
  return 0;
}

void SetLoadGlobals(lua_State* lua, bool loading) {
  lua_getmetatable(lua, LUA_GLOBALSINDEX);
  lua_getfield(lua, -1, "__index");
  lua_getfield(lua, LUA_REGISTRYINDEX, loading ? kLoadApiKey : kGlobalsKey);
  lua_setupvalue(lua, -2, 1);
  lua_pop(lua, 2);
}

ScriptEngine& EngineOf(lua_State* lua) {
  void* heap = nullptr;
  lua_getallocf(lua, &heap);
  return *static_cast<ScriptEngine::Heap*>(heap)->engine;
}

int OpenSandbox(lua_State* lua) {
  lua_newtable(lua);
  lua_newtable(lua);
  lua_pushliteral(lua, "k");
  lua_setfield(lua, -2, "__mode");
  lua_setmetatable(lua, -2);
  lua_setfield(lua, LUA_REGISTRYINDEX, kReadonlyKey);
  lua_newtable(lua);
  lua_setfield(lua, LUA_REGISTRYINDEX, kScriptsKey);

  OpenLibrary(lua, "", luaopen_base);
  OpenLibrary(lua, LUA_TABLIBNAME, luaopen_table);
  OpenLibrary(lua, LUA_STRLIBNAME, luaopen_string);
  OpenLibrary(lua, LUA_MATHLIBNAME, luaopen_math);
  OpenLibrary(lua, "cjson", luaopen_cjson);
  OpenLibrary(lua, "bit", luaopen_bit);
  OpenLibrary(lua, "cmsgpack", OpenCmsgpack);
  OpenLibrary(lua, "struct", OpenStruct);
  RegisterServerApi(lua);
  TrimGlobals(lua);
  SealGlobals(lua);
  return 0;
}

int ScriptErrorHandler(lua_State* lua) {
  lua_Debug where{};
  bool located = lua_getstack(lua, 1, &where) != 0 && lua_getinfo(lua, "Sl", &where) != 0;
  if (located && std::string_view(where.what) == "C") {
    located = lua_getstack(lua, 2, &where) != 0 && lua_getinfo(lua, "Sl", &where) != 0;
  }
  if (!lua_istable(lua, 1)) {
    std::string message = "ERR ";
    if (lua_isstring(lua, 1)) {
      message += lua_tostring(lua, 1);
    } else if (lua_isboolean(lua, 1)) {
      message += lua_toboolean(lua, 1) ? "true" : "false";
    } else {
      message += luaL_typename(lua, 1);
    }
    lua_newtable(lua);
    SetField(lua, "err", message);
    lua_replace(lua, 1);
  }
  lua_settop(lua, 1);
  if (located) {
    lua_pushstring(lua, where.source);
    lua_setfield(lua, 1, "source");
    lua_pushnumber(lua, where.currentline);
    lua_setfield(lua, 1, "line");
  }
  return 1;
}

void PushErrorTable(lua_State* lua, std::string_view text) {
  std::string code = "ERR";
  std::string_view message = text;
  if (!text.empty() && text[0] == '-') {
    const size_t space = text.find(' ');
    if (space == std::string_view::npos) {
      message = text.substr(1);
    } else {
      code = std::string(text.substr(1, space - 1));
      message = text.substr(space + 1);
    }
  }
  while (!message.empty() && (message.back() == '\r' || message.back() == '\n')) {
    message.remove_suffix(1);
  }
  lua_newtable(lua);
  SetField(lua, "err", code + " " + std::string(message));
}

void PushReply(lua_State* lua, const RespValue& value, Protocol script_protocol) {
  using Type = RespValue::Type;
  if (!lua_checkstack(lua, 4)) luaL_error(lua, "reached lua stack limit");
  switch (value.type) {
    case Type::kInteger:
      lua_pushnumber(lua, static_cast<lua_Number>(value.integer));
      return;
    case Type::kBulk:
      lua_pushlstring(lua, value.text.data(), value.text.size());
      return;
    case Type::kSimpleString:
      lua_newtable(lua);
      SetField(lua, "ok", value.text);
      return;
    case Type::kError:
      PushErrorTable(lua, "-" + value.text);
      return;
    case Type::kNull:  // RESP2 "$-1" is false; RESP3 "_" is nil
      if (script_protocol == Protocol::kResp2) {
        lua_pushboolean(lua, 0);
      } else {
        lua_pushnil(lua);
      }
      return;
    case Type::kNullArray:
      lua_pushboolean(lua, 0);
      return;
    case Type::kBool:
      lua_pushboolean(lua, value.integer != 0);
      return;
    case Type::kDouble:
      lua_newtable(lua);
      lua_pushnumber(lua, std::strtod(value.text.c_str(), nullptr));
      lua_setfield(lua, -2, "double");
      return;
    case Type::kBigNumber:
      lua_newtable(lua);
      SetField(lua, "big_number", value.text);
      return;
    case Type::kVerbatim:
      lua_newtable(lua);
      lua_newtable(lua);
      SetField(lua, "string", value.text);
      SetField(lua, "format", value.format);
      lua_setfield(lua, -2, "verbatim_string");
      return;
    case Type::kMap:
    case Type::kSet: {
      const bool map = value.type == Type::kMap;
      lua_newtable(lua);
      lua_createtable(lua, 0, static_cast<int>(value.elements.size() / (map ? 2 : 1)));
      for (size_t i = 0; i < value.elements.size(); i += map ? 2 : 1) {
        PushReply(lua, value.elements[i], script_protocol);
        if (map && i + 1 < value.elements.size()) {
          PushReply(lua, value.elements[i + 1], script_protocol);
        } else {
          lua_pushboolean(lua, 1);
        }
        if (lua_isnil(lua, -2)) {
          lua_pop(lua, 2);  // a nil key cannot be stored
        } else {
          lua_rawset(lua, -3);
        }
      }
      lua_setfield(lua, -2, map ? "map" : "set");
      return;
    }
    case Type::kArray:
    case Type::kPush:
      lua_createtable(lua, static_cast<int>(value.elements.size()), 0);
      for (size_t i = 0; i < value.elements.size(); ++i) {
        PushReply(lua, value.elements[i], script_protocol);
        lua_rawseti(lua, -2, static_cast<int>(i + 1));
      }
      return;
  }
  lua_pushnil(lua);
}

namespace {

void WriteValue(lua_State* lua, ReplyBuilder& reply, Protocol protocol, int depth);

// The string field `name` of the table on top, or nullopt.
std::optional<std::string> StringField(lua_State* lua, const char* name) {
  lua_pushstring(lua, name);
  lua_rawget(lua, -2);
  std::optional<std::string> out;
  if (lua_type(lua, -1) == LUA_TSTRING) {
    size_t len = 0;
    const char* text = lua_tolstring(lua, -1, &len);
    out.emplace(text, len);
  }
  lua_pop(lua, 1);
  return out;
}

std::string NoNewlines(std::string text) {
  for (char& c : text) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return text;
}

// The table field `name` of the table on top pushed when it is a table; false otherwise.
bool PushTableField(lua_State* lua, const char* name) {
  lua_pushstring(lua, name);
  lua_rawget(lua, -2);
  if (lua_istable(lua, -1)) return true;
  lua_pop(lua, 1);
  return false;
}

// {map=...} or {set=...}: the inner table is on top; pops it.
void WriteMapOrSet(lua_State* lua, ReplyBuilder& reply, Protocol protocol, int depth, bool map) {
  size_t count = 0;
  lua_pushnil(lua);
  while (lua_next(lua, -2) != 0) {
    lua_pop(lua, 1);
    ++count;
  }
  if (map) {
    reply.Map(count);
  } else {
    reply.Set(count);
  }
  lua_pushnil(lua);
  while (lua_next(lua, -2) != 0) {
    // table, key, value
    if (map) {
      lua_pushvalue(lua, -2);
      WriteValue(lua, reply, protocol, depth + 1);  // the key
      WriteValue(lua, reply, protocol, depth + 1);  // the value
    } else {
      lua_pop(lua, 1);
      lua_pushvalue(lua, -1);
      WriteValue(lua, reply, protocol, depth + 1);
    }
  }
  lua_pop(lua, 1);
}

void WriteTable(lua_State* lua, ReplyBuilder& reply, Protocol protocol, int depth) {
  if (std::optional<std::string> err = StringField(lua, "err")) {
    reply.Error(*err);
    return;
  }
  if (std::optional<std::string> ok = StringField(lua, "ok")) {
    reply.SimpleString(NoNewlines(*ok));
    return;
  }
  lua_pushstring(lua, "double");
  lua_rawget(lua, -2);
  if (lua_type(lua, -1) == LUA_TNUMBER) {
    reply.Double(lua_tonumber(lua, -1));
    lua_pop(lua, 1);
    return;
  }
  lua_pop(lua, 1);
  if (std::optional<std::string> big = StringField(lua, "big_number")) {
    reply.BigNumber(NoNewlines(*big));
    return;
  }
  if (PushTableField(lua, "verbatim_string")) {
    std::optional<std::string> format = StringField(lua, "format");
    std::optional<std::string> text = StringField(lua, "string");
    lua_pop(lua, 1);
    if (format && text) {
      reply.Verbatim(*text, format->size() == 3 ? *format : "txt");
      return;
    }
  }
  for (const bool map : {true, false}) {
    if (PushTableField(lua, map ? "map" : "set")) {
      WriteMapOrSet(lua, reply, protocol, depth, map);
      return;
    }
  }
  size_t count = 0;
  while (true) {
    lua_rawgeti(lua, -1, static_cast<int>(count + 1));
    const bool present = !lua_isnil(lua, -1);
    lua_pop(lua, 1);
    if (!present) break;
    ++count;
  }
  reply.Array(count);
  for (size_t i = 1; i <= count; ++i) {
    lua_rawgeti(lua, -1, static_cast<int>(i));
    WriteValue(lua, reply, protocol, depth + 1);
  }
}

// Writes the value on top of the stack and pops it.
void WriteValue(lua_State* lua, ReplyBuilder& reply, Protocol protocol, int depth) {
  if (depth > kMaxReplyDepth || !lua_checkstack(lua, 6)) {
    reply.Error("ERR reached lua stack limit");
    lua_pop(lua, 1);
    return;
  }
  switch (lua_type(lua, -1)) {
    case LUA_TSTRING: {
      size_t len = 0;
      const char* text = lua_tolstring(lua, -1, &len);
      reply.Bulk(std::string_view(text, len));
      break;
    }
    case LUA_TBOOLEAN:
      if (protocol == Protocol::kResp3) {
        reply.Bool(lua_toboolean(lua, -1) != 0);
      } else if (lua_toboolean(lua, -1)) {
        reply.Integer(1);
      } else {
        reply.Null();
      }
      break;
    case LUA_TNUMBER:
      reply.Integer(ToInteger(lua_tonumber(lua, -1)));
      break;
    case LUA_TTABLE:
      WriteTable(lua, reply, protocol, depth);
      break;
    default:
      reply.Null();
  }
  lua_pop(lua, 1);
}

}  // namespace

void WriteScriptResult(lua_State* lua, ReplyBuilder& reply, Protocol script_protocol) {
  WriteValue(lua, reply, script_protocol, 0);
}

std::string ScriptErrorText(lua_State* lua, const std::string& sha) {
  if (lua_type(lua, -1) == LUA_TSTRING) return std::string("ERR ") + lua_tostring(lua, -1);
  if (!lua_istable(lua, -1)) return "ERR unknown error";
  std::string message = StringField(lua, "err").value_or("ERR unknown error");
  std::optional<std::string> source = StringField(lua, "source");
  lua_getfield(lua, -1, "line");
  const bool has_line = lua_type(lua, -1) == LUA_TNUMBER;
  const int64_t line = has_line ? static_cast<int64_t>(lua_tonumber(lua, -1)) : 0;
  lua_pop(lua, 1);
  if (!source || !has_line) return message;
  return message + " script: " + sha + ", on " + *source + ":" + std::to_string(line) + ".";
}

}  // namespace lattice::server
