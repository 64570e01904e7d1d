// cmsgpack for Lua 5.1, as Valkey scripts know it (pack, unpack, unpack_one, unpack_limit),
// written for Lattice. Encoding picks the smallest MessagePack form; a table whose keys are
// exactly 1..n is an array, any other a map; nesting deeper than 16 tables packs as nil (a table
// that contains itself ends). Decoding checks every length against the input and bounds nesting.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <lua.hpp>
#include <string>

#include "server/scripting/lua_libs.h"

namespace lattice::server {
namespace {

constexpr int kMaxPackNesting = 16;
constexpr int kMaxUnpackNesting = 1000;

void PutBigEndian(std::string& out, uint64_t value, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

void PackInteger(std::string& out, int64_t value) {
  if (value >= 0) {
    const auto u = static_cast<uint64_t>(value);
    if (u <= 127) {
      out.push_back(static_cast<char>(u));
    } else if (u <= 0xff) {
      out.push_back(static_cast<char>(0xcc));
      PutBigEndian(out, u, 1);
    } else if (u <= 0xffff) {
      out.push_back(static_cast<char>(0xcd));
      PutBigEndian(out, u, 2);
    } else if (u <= 0xffffffffULL) {
      out.push_back(static_cast<char>(0xce));
      PutBigEndian(out, u, 4);
    } else {
      out.push_back(static_cast<char>(0xcf));
      PutBigEndian(out, u, 8);
    }
    return;
  }
  const auto bits = static_cast<uint64_t>(value);
  if (value >= -32) {
    out.push_back(static_cast<char>(value));
  } else if (value >= -128) {
    out.push_back(static_cast<char>(0xd0));
    PutBigEndian(out, bits, 1);
  } else if (value >= -32768) {
    out.push_back(static_cast<char>(0xd1));
    PutBigEndian(out, bits, 2);
  } else if (value >= INT32_MIN) {
    out.push_back(static_cast<char>(0xd2));
    PutBigEndian(out, bits, 4);
  } else {
    out.push_back(static_cast<char>(0xd3));
    PutBigEndian(out, bits, 8);
  }
}

void PackNumber(std::string& out, lua_Number number) {
  if (std::isfinite(number) && std::floor(number) == number && number >= -9223372036854775808.0 &&
      number < 9223372036854775808.0) {
    PackInteger(out, static_cast<int64_t>(number));
    return;
  }
  const auto single = static_cast<float>(number);
  if (static_cast<lua_Number>(single) == number) {
    uint32_t bits = 0;
    std::memcpy(&bits, &single, 4);
    out.push_back(static_cast<char>(0xca));
    PutBigEndian(out, bits, 4);
  } else {
    uint64_t bits = 0;
    std::memcpy(&bits, &number, 8);
    out.push_back(static_cast<char>(0xcb));
    PutBigEndian(out, bits, 8);
  }
}

// A header for a string (0xa0/0xd9/0xda/0xdb), array (0x90/0xdc/0xdd) or map (0x80/0xde/0xdf).
void PackHeader(std::string& out, size_t count, uint8_t fix, size_t fix_max, uint8_t first) {
  if (count <= fix_max) {
    out.push_back(static_cast<char>(fix | count));
  } else if (first == 0xd9 && count <= 0xff) {
    out.push_back(static_cast<char>(0xd9));
    PutBigEndian(out, count, 1);
  } else if (count <= 0xffff) {
    out.push_back(static_cast<char>(first == 0xd9 ? 0xda : first));
    PutBigEndian(out, count, 2);
  } else {
    out.push_back(static_cast<char>(first == 0xd9 ? 0xdb : first + 1));
    PutBigEndian(out, count, 4);
  }
}

void PackValue(lua_State* lua, int index, std::string& out, int depth);

// The array length of the table at `index` if its keys are exactly 1..n, else -1.
int64_t ArrayLength(lua_State* lua, int index) {
  int64_t count = 0;
  lua_Number max = 0;
  lua_pushnil(lua);
  while (lua_next(lua, index) != 0) {
    lua_pop(lua, 1);
    if (lua_type(lua, -1) != LUA_TNUMBER) {
      lua_pop(lua, 1);
      return -1;
    }
    const lua_Number key = lua_tonumber(lua, -1);
    if (key <= 0 || std::floor(key) != key) {
      lua_pop(lua, 1);
      return -1;
    }
    if (key > max) max = key;
    ++count;
  }
  return max == static_cast<lua_Number>(count) ? count : -1;
}

void PackTable(lua_State* lua, int index, std::string& out, int depth) {
  if (depth >= kMaxPackNesting || !lua_checkstack(lua, 4)) {
    out.push_back(static_cast<char>(0xc0));
    return;
  }
  const int64_t length = ArrayLength(lua, index);
  if (length >= 0) {
    PackHeader(out, static_cast<size_t>(length), 0x90, 15, 0xdc);
    for (int64_t i = 1; i <= length; ++i) {
      lua_rawgeti(lua, index, static_cast<int>(i));
      PackValue(lua, lua_gettop(lua), out, depth + 1);
      lua_pop(lua, 1);
    }
    return;
  }
  size_t count = 0;
  lua_pushnil(lua);
  while (lua_next(lua, index) != 0) {
    lua_pop(lua, 1);
    ++count;
  }
  PackHeader(out, count, 0x80, 15, 0xde);
  lua_pushnil(lua);
  while (lua_next(lua, index) != 0) {
    PackValue(lua, lua_gettop(lua) - 1, out, depth + 1);
    PackValue(lua, lua_gettop(lua), out, depth + 1);
    lua_pop(lua, 1);
  }
}

void PackValue(lua_State* lua, int index, std::string& out, int depth) {
  switch (lua_type(lua, index)) {
    case LUA_TBOOLEAN:
      out.push_back(static_cast<char>(lua_toboolean(lua, index) ? 0xc3 : 0xc2));
      return;
    case LUA_TNUMBER:
      PackNumber(out, lua_tonumber(lua, index));
      return;
    case LUA_TSTRING: {
      size_t len = 0;
      const char* text = lua_tolstring(lua, index, &len);
      PackHeader(out, len, 0xa0, 31, 0xd9);
      out.append(text, len);
      return;
    }
    case LUA_TTABLE:
      PackTable(lua, index, out, depth);
      return;
    default:
      out.push_back(static_cast<char>(0xc0));
  }
}

int Pack(lua_State* lua) {
  const int argc = lua_gettop(lua);
  if (argc == 0) return luaL_argerror(lua, 0, "MessagePack pack needs input.");
  std::string out;
  for (int i = 1; i <= argc; ++i) PackValue(lua, i, out, 0);
  lua_pushlstring(lua, out.data(), out.size());
  return 1;
}

class Decoder {
 public:
  Decoder(lua_State* lua, const char* data, size_t size, size_t pos)
      : lua_(lua), data_(data), size_(size), pos_(pos) {}
  size_t pos() const { return pos_; }
  bool done() const { return pos_ >= size_; }

  // Pushes the next object.
  void Next(int depth) {
    if (depth > kMaxUnpackNesting || !lua_checkstack(lua_, 4)) {
      luaL_error(lua_, "Too deep nesting in input.");
    }
    const uint8_t type = Byte();
    if (type <= 0x7f) return lua_pushnumber(lua_, type);
    if (type >= 0xe0) return lua_pushnumber(lua_, static_cast<int8_t>(type));
    if ((type & 0xf0) == 0x80) return Map(type & 0x0f, depth);
    if ((type & 0xf0) == 0x90) return Array(type & 0x0f, depth);
    if ((type & 0xe0) == 0xa0) return String(type & 0x1f);
    switch (type) {
      case 0xc0:
        return lua_pushnil(lua_);
      case 0xc2:
        return lua_pushboolean(lua_, 0);
      case 0xc3:
        return lua_pushboolean(lua_, 1);
      case 0xc4:  // bin 8/16/32: strings, as lua_cmsgpack
      case 0xd9:
        return String(Unsigned(1));
      case 0xc5:
      case 0xda:
        return String(Unsigned(2));
      case 0xc6:
      case 0xdb:
        return String(Unsigned(4));
      case 0xca: {
        const auto bits = static_cast<uint32_t>(Unsigned(4));
        float value = 0;
        std::memcpy(&value, &bits, 4);
        return lua_pushnumber(lua_, value);
      }
      case 0xcb: {
        const uint64_t bits = Unsigned(8);
        double value = 0;
        std::memcpy(&value, &bits, 8);
        return lua_pushnumber(lua_, value);
      }
      case 0xcc:
        return lua_pushnumber(lua_, static_cast<lua_Number>(Unsigned(1)));
      case 0xcd:
        return lua_pushnumber(lua_, static_cast<lua_Number>(Unsigned(2)));
      case 0xce:
        return lua_pushnumber(lua_, static_cast<lua_Number>(Unsigned(4)));
      case 0xcf:
        return lua_pushnumber(lua_, static_cast<lua_Number>(Unsigned(8)));
      case 0xd0:
        return lua_pushnumber(lua_, static_cast<int8_t>(Unsigned(1)));
      case 0xd1:
        return lua_pushnumber(lua_, static_cast<int16_t>(Unsigned(2)));
      case 0xd2:
        return lua_pushnumber(lua_, static_cast<int32_t>(Unsigned(4)));
      case 0xd3:
        return lua_pushnumber(lua_, static_cast<lua_Number>(static_cast<int64_t>(Unsigned(8))));
      case 0xdc:
        return Array(Unsigned(2), depth);
      case 0xdd:
        return Array(Unsigned(4), depth);
      case 0xde:
        return Map(Unsigned(2), depth);
      case 0xdf:
        return Map(Unsigned(4), depth);
      default:
        luaL_error(lua_, "Bad data format in input.");
    }
  }

 private:
  void Need(uint64_t bytes) {
    if (bytes > size_ - pos_) luaL_error(lua_, "Missing bytes in input.");
  }
  uint8_t Byte() {
    Need(1);
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint64_t Unsigned(int bytes) {
    Need(static_cast<uint64_t>(bytes));
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) value = (value << 8) | static_cast<uint8_t>(data_[pos_++]);
    return value;
  }
  void String(uint64_t len) {
    Need(len);
    lua_pushlstring(lua_, data_ + pos_, len);
    pos_ += len;
  }
  void Array(uint64_t count, int depth) {
    Need(count);  // every element takes at least one byte
    lua_createtable(lua_, static_cast<int>(count), 0);
    for (uint64_t i = 1; i <= count; ++i) {
      Next(depth + 1);
      lua_rawseti(lua_, -2, static_cast<int>(i));
    }
  }
  void Map(uint64_t count, int depth) {
    Need(count * 2);
    lua_createtable(lua_, 0, static_cast<int>(count));
    for (uint64_t i = 0; i < count; ++i) {
      Next(depth + 1);
      Next(depth + 1);
      const bool nan = lua_type(lua_, -2) == LUA_TNUMBER && std::isnan(lua_tonumber(lua_, -2));
      if (lua_isnil(lua_, -2) || nan) {
        lua_pop(lua_, 2);  // not a valid key
      } else {
        lua_rawset(lua_, -3);
      }
    }
  }

  lua_State* lua_;
  const char* data_;
  size_t size_;
  size_t pos_;
};

// unpack (limit 0, offset 0: everything, values only) and unpack_one/unpack_limit (the next
// offset, -1 at the end, then the values).
int UnpackFull(lua_State* lua, lua_Integer limit, lua_Integer offset, bool all) {
  size_t size = 0;
  const char* data = luaL_checklstring(lua, 1, &size);
  if (offset < 0 || limit < 0) {
    return luaL_error(lua, "Invalid request to unpack with offset of %d and limit of %d.",
                      static_cast<int>(offset), static_cast<int>(limit));
  }
  if (static_cast<uint64_t>(offset) > size) {
    return luaL_error(lua, "Start offset %d greater than input length %d.",
                      static_cast<int>(offset), static_cast<int>(size));
  }
  lua_settop(lua, 1);
  Decoder decoder(lua, data, size, static_cast<size_t>(offset));
  int count = 0;
  while (!decoder.done() && (all || limit == 0 || count < limit)) {
    if (!lua_checkstack(lua, 8)) return luaL_error(lua, "Too many values in input.");
    decoder.Next(0);
    ++count;
  }
  if (all) return count;
  lua_pushnumber(lua, decoder.done() ? -1 : static_cast<lua_Number>(decoder.pos()));
  lua_insert(lua, 2);
  return count + 1;
}

int Unpack(lua_State* lua) { return UnpackFull(lua, 0, 0, true); }
int UnpackOne(lua_State* lua) { return UnpackFull(lua, 1, luaL_optinteger(lua, 2, 0), false); }
int UnpackLimit(lua_State* lua) {
  return UnpackFull(lua, luaL_checkinteger(lua, 2), luaL_optinteger(lua, 3, 0), false);
}

}  // namespace

int OpenCmsgpack(lua_State* lua) {
  static const luaL_Reg kFunctions[] = {{"pack", Pack},
                                        {"unpack", Unpack},
                                        {"unpack_one", UnpackOne},
                                        {"unpack_limit", UnpackLimit},
                                        {nullptr, nullptr}};
  lua_newtable(lua);
  luaL_register(lua, nullptr, kFunctions);
  lua_pushliteral(lua, "lua-cmsgpack");
  lua_setfield(lua, -2, "_NAME");
  lua_pushliteral(lua, "0.4.0");
  lua_setfield(lua, -2, "_VERSION");
  return 1;
}

}  // namespace lattice::server
