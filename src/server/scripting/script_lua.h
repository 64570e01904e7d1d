#pragma once
// The Lua side of scripting, used by ScriptEngine only: the sandboxed state's libraries and the
// redis.* API, and Valkey's conversions between RESP replies and Lua values in both directions.
//
// RESP -> Lua (a redis.call reply): integer -> number, bulk -> string, null bulk / null array ->
// false (RESP2) or nil (RESP3 null), simple string -> {ok=s}, error -> {err=s}, array -> table,
// and with redis.setresp(3): map -> {map={...}}, set -> {set={k=true}}, bool -> boolean,
// double -> {double=n}, big number -> {big_number=s}, verbatim ->
// {verbatim_string={string,format}}. Lua -> RESP (a script's result): string -> bulk, number ->
// integer (truncated), true -> 1 (or RESP3 #t), false/nil -> null (or RESP3 #f), {err=} -> error,
// {ok=} -> status, {double=}, {big_number=}, {verbatim_string=}, {map=}, {set=}, else an array up
// to the first nil.

#include <functional>
#include <string>

#include "resp/reply_builder.h"
#include "resp/reply_decoder.h"

struct lua_State;

namespace lattice::server {

class ScriptEngine;

// Registry keys: the table of compiled scripts (sha -> function) and the real globals table
// (scripts see a read-only proxy of it).
inline constexpr char kScriptsKey[] = "lattice_scripts";
inline constexpr char kGlobalsKey[] = "lattice_globals";
// The functions' state: compiled functions by lower-case name, the functions a FUNCTION LOAD in
// progress registered, and the globals a library sees while it loads (only redis.register_function,
// redis.log and the version fields, as in Valkey).
inline constexpr char kFunctionsKey[] = "lattice_functions";
inline constexpr char kLoadingKey[] = "lattice_loading";
inline constexpr char kLoadApiKey[] = "lattice_load_api";

// Loads the libraries and the redis API into a fresh state and seals the globals. Runs as a
// lua_CFunction (under lua_cpcall) so that a failure is an error, not a panic.
int OpenSandbox(lua_State* lua);
// OpenSandbox plus what the functions' state needs: the function tables and the load globals.
int OpenFunctionSandbox(lua_State* lua);
// Points the globals of `lua` at the load globals (FUNCTION LOAD running the library's code) or
// back at the real ones.
void SetLoadGlobals(lua_State* lua, bool loading);

// The message handler of a script's lua_pcall: turns any error into Valkey's error table
// {err=..., source=..., line=...}.
int ScriptErrorHandler(lua_State* lua);

// Pushes one command reply as a Lua value, per the script's protocol.
void PushReply(lua_State* lua, const RespValue& value, Protocol script_protocol);

// Pushes an error table {err="CODE message"}: "-CODE message" keeps its code, a message without
// a leading '-' gets "ERR ".
void PushErrorTable(lua_State* lua, std::string_view text);

// Writes the value on top of the stack (popping it) as the reply of the script.
void WriteScriptResult(lua_State* lua, ReplyBuilder& reply, Protocol script_protocol);

// The reply text of a failed script from the error object on top of the stack:
// "<err> script: <sha>, on <source>:<line>." when the handler located it, else "<err>".
std::string ScriptErrorText(lua_State* lua, const std::string& sha);

// Runs `fn` with Lua errors (an allocation past the limit included) caught: false on error, with
// the message in *error when given.
bool Protected(lua_State* lua, const std::function<void(lua_State*)>& fn,
               std::string* error = nullptr);

// The ScriptEngine owning `lua` (the allocator's user data).
ScriptEngine& EngineOf(lua_State* lua);

}  // namespace lattice::server
