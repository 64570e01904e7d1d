#pragma once
// Lua libraries Valkey scripts may use that Debian does not package for Lua 5.1, written for
// Lattice against the Lua 5.1 C API (lua_libs_msgpack.cc, lua_libs_struct.cc):
//   cmsgpack.pack(v1, ...) -> string; cmsgpack.unpack(s) -> v1, ...;
//   cmsgpack.unpack_one(s [, offset]) -> next_offset, v; cmsgpack.unpack_limit(s, n [, offset])
//   struct.pack(fmt, ...) -> string; struct.unpack(fmt, s [, pos]) -> v1, ..., next_pos;
//   struct.size(fmt) -> bytes.
// They parse bytes a client sent: every length and count is checked against the input before it
// is used, and a malformed input is a Lua error, never a read past the buffer.

struct lua_State;

namespace lattice::server {

// lua_CFunctions that leave the library table on the stack.
int OpenCmsgpack(lua_State* lua);
int OpenStruct(lua_State* lua);

}  // namespace lattice::server
