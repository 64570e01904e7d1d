// Fuzz target: the parsers of untrusted bytes that scripting added, without a Server (fast):
// FUNCTION RESTORE's payload (function_payload.h: RDB strings, LZF) and the cmsgpack and struct
// libraries (lua_libs.h) in a bare Lua state whose allocator is capped. The first byte picks:
//   0/1  DecodeFunctionPayload(rest, relaxed = byte & 1); a payload that decodes re-encodes to
//        one that decodes to the same libraries;
//   2    LzfDecompress(rest after 2 size bytes, size);
//   3    cmsgpack.unpack(rest); what it returns packs into bytes that unpack (pack's output is
//        always valid input; not the same bytes: an array holding nil comes back shorter);
//   4    cmsgpack.unpack_limit(rest after 2 bytes, limit, offset);
//   5    struct.unpack(format, data) with the rest split at its first NUL;
//   6    struct.pack(format, 1, -2, 'ab', 3.5, ...) and struct.size(format), format = rest.
// Checked: never crashes, never reads past its input, never leaks; the round trips above hold.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <lua.hpp>
#include <string>
#include <string_view>

#include "server/scripting/function_payload.h"
#include "server/scripting/lua_libs.h"

namespace {

struct Heap {
  size_t used = 0;
};
constexpr size_t kHeapLimit = size_t{64} << 20;

void* Allocate(void* ud, void* ptr, size_t old_size, size_t new_size) {
  auto* heap = static_cast<Heap*>(ud);
  if (new_size == 0) {
    std::free(ptr);
    heap->used -= old_size;
    return nullptr;
  }
  if (new_size > old_size && heap->used + (new_size - old_size) > kHeapLimit) return nullptr;
  void* grown = std::realloc(ptr, new_size);
  if (grown != nullptr) heap->used = heap->used - old_size + new_size;
  return grown;
}

// Runs `code` with the libraries as globals and `input` as the global `input`; Lua errors are
// expected outcomes (malformed input), only a crash or a failed check is a finding.
void RunLua(const char* code, std::string_view input) {
  Heap heap;
  lua_State* lua = lua_newstate(&Allocate, &heap);
  if (lua == nullptr) return;
  lua_pushcfunction(lua, luaopen_base);
  lua_call(lua, 0, 0);
  lua_pushcfunction(lua, luaopen_string);
  lua_call(lua, 0, 0);
  lua_pushcfunction(lua, lattice::server::OpenCmsgpack);
  if (lua_pcall(lua, 0, 1, 0) == 0) lua_setglobal(lua, "cmsgpack");
  lua_pushcfunction(lua, lattice::server::OpenStruct);
  if (lua_pcall(lua, 0, 1, 0) == 0) lua_setglobal(lua, "struct");
  lua_pushlstring(lua, input.data(), input.size());
  lua_setglobal(lua, "input");
  if (luaL_loadstring(lua, code) == 0 && lua_pcall(lua, 0, 1, 0) == 0 && lua_isstring(lua, -1) &&
      std::string_view(lua_tostring(lua, -1)) == "mismatch") {
    __builtin_trap();
  }
  lua_close(lua);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lattice::server;
  if (size == 0 || size > 64 * 1024) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 7) {
    case 0:
    case 1: {
      lattice::Result<std::vector<std::string>> codes = DecodeFunctionPayload(rest, data[0] & 1);
      if (codes.ok()) {
        lattice::Result<std::vector<std::string>> again =
            DecodeFunctionPayload(EncodeFunctionPayload(*codes), false);
        if (!again.ok() || *again != *codes) __builtin_trap();
      }
      break;
    }
    case 2: {
      if (rest.size() < 2) break;
      const size_t out_size = static_cast<uint8_t>(rest[0]) * 256 + static_cast<uint8_t>(rest[1]);
      std::string out;
      if (LzfDecompress(rest.substr(2), out_size, &out) && out.size() != out_size) {
        __builtin_trap();
      }
      break;
    }
    case 3:
      RunLua(
          "local packed = cmsgpack.pack(cmsgpack.unpack(input)) "
          "local ok, err = pcall(cmsgpack.unpack, packed) "
          "if not ok and not tostring(err):find('memory') then return 'mismatch' end",
          rest);
      break;
    case 4:
      RunLua(
          "local limit, offset = input:byte(1) or 0, input:byte(2) or 0 "
          "cmsgpack.unpack_limit(input:sub(3), limit % 8, offset % 16)",
          rest);
      break;
    case 5:
      RunLua(
          "local cut = input:find('\\0', 1, true) or #input + 1 "
          "struct.unpack(input:sub(1, cut - 1), input:sub(cut + 1))",
          rest);
      break;
    default:
      RunLua("struct.size(input)", rest);
      RunLua("struct.pack(input, 1, -2, 'ab', 3.5, 70000, 'xyz', 0)", rest);
      break;
  }
  return 0;
}
