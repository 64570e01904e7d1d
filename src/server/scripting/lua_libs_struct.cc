// struct for Lua 5.1 (pack, unpack, size), as Valkey scripts know it, written for Lattice.
// Format: '<' little endian, '>' big endian, '=' native (little), '![n]' maximum alignment
// (default: none; '!' alone: 8), 'x' a padding byte, 'b'/'B' char, 'h'/'H' short, 'l'/'L' long
// (8 bytes), 'T' size_t, 'i'/'I'[n] an integer of n bytes (default 4, at most 32), 'f' float,
// 'd' double, 's' a zero-terminated string, 'c'[n] n chars (unpack: 'c0' takes the previous
// number as the length; pack: 'c0' the whole string), ' ' ignored. Items wider than one byte are
// aligned to min(size, maximum alignment). Every read is checked against the data's length.

#include <cctype>
#include <cstdint>
#include <cstring>
#include <lua.hpp>
#include <string>

#include "server/scripting/lua_libs.h"

namespace lattice::server {
namespace {

constexpr int kMaxIntSize = 32;
constexpr size_t kMaxCount = size_t{1} << 30;  // a size written in a format

struct Options {
  bool little = true;
  size_t max_align = 1;
};

// Reads a decimal count after an option; `fallback` when there is none.
size_t ReadCount(lua_State* lua, const char** fmt, size_t fallback) {
  if (!std::isdigit(static_cast<unsigned char>(**fmt))) return fallback;
  size_t value = 0;
  while (std::isdigit(static_cast<unsigned char>(**fmt))) {
    value = value * 10 + static_cast<size_t>(*(*fmt)++ - '0');
    if (value > kMaxCount) luaL_error(lua, "size too large in format");
  }
  return value;
}

// The size of option `opt` (reading its count); 0 for 's' and the alignment options.
size_t OptionSize(lua_State* lua, char opt, const char** fmt) {
  switch (opt) {
    case 'B':
    case 'b':
    case 'x':
      return 1;
    case 'H':
    case 'h':
      return 2;
    case 'L':
    case 'l':
    case 'T':
    case 'd':
      return 8;
    case 'f':
      return 4;
    case 's':
      return 0;
    case 'c':
      return ReadCount(lua, fmt, 1);
    case 'i':
    case 'I': {
      const size_t size = ReadCount(lua, fmt, 4);
      if (size > kMaxIntSize) {
        luaL_error(lua, "integral size %d is larger than limit of %d", static_cast<int>(size),
                   kMaxIntSize);
      }
      return size;
    }
    default:
      return 0;
  }
}

// Bytes of padding before an item of `size` at `offset`: the item is aligned to
// min(size, max_align) (for sizes that are not a power of two, as struct.c computes it).
size_t Padding(size_t offset, const Options& options, char opt, size_t size) {
  if (size == 0 || opt == 'c') return 0;
  const size_t align = size < options.max_align ? size : options.max_align;
  return (align - (offset & (align - 1))) & (align - 1);
}

// Handles the options that only change the state; true when `opt` was one.
bool ControlOption(lua_State* lua, char opt, const char** fmt, Options* options) {
  switch (opt) {
    case ' ':
      return true;
    case '>':
      options->little = false;
      return true;
    case '<':
    case '=':
      options->little = true;
      return true;
    case '!':
      options->max_align = ReadCount(lua, fmt, 8);
      if ((options->max_align & (options->max_align - 1)) != 0 || options->max_align == 0) {
        luaL_error(lua, "alignment %d is not a power of 2", static_cast<int>(options->max_align));
      }
      return true;
    default:
      return false;
  }
}

bool KnownOption(char opt) { return std::strchr("bBhHlLTiIfdxsc", opt) != nullptr && opt != 0; }

int InvalidOption(lua_State* lua, char opt) {
  lua_pushfstring(lua, "invalid format option '%c'", opt);
  return luaL_argerror(lua, 1, lua_tostring(lua, -1));
}

// A Lua number as the two's-complement bits of an integer (saturated outside 64 bits).
uint64_t IntegerBits(lua_Number number) {
  if (!(number == number)) return 0;  // nan
  if (number >= 18446744073709551616.0) return UINT64_MAX;
  if (number < -9223372036854775808.0) return uint64_t{1} << 63;
  if (number < 0) return static_cast<uint64_t>(static_cast<int64_t>(number));
  return static_cast<uint64_t>(number);
}

void PutInteger(std::string& out, uint64_t value, bool negative, size_t size, bool little) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    const uint8_t byte = i < 8 ? static_cast<uint8_t>(value >> (8 * i)) : (negative ? 0xff : 0);
    bytes[little ? i : size - 1 - i] = static_cast<char>(byte);
  }
  out.append(bytes);
}

int Pack(lua_State* lua) {
  const char* fmt = luaL_checkstring(lua, 1);
  Options options;
  std::string out;
  int arg = 2;
  while (*fmt != '\0') {
    const char opt = *fmt++;
    if (ControlOption(lua, opt, &fmt, &options)) continue;
    if (!KnownOption(opt)) return InvalidOption(lua, opt);
    size_t size = OptionSize(lua, opt, &fmt);
    out.append(Padding(out.size(), options, opt, size), '\0');
    switch (opt) {
      case 'b':
      case 'B':
      case 'h':
      case 'H':
      case 'l':
      case 'L':
      case 'T':
      case 'i':
      case 'I': {
        const lua_Number number = luaL_checknumber(lua, arg++);
        PutInteger(out, IntegerBits(number), number < 0, size, options.little);
        break;
      }
      case 'x':
        out.push_back('\0');
        break;
      case 'f': {
        const auto value = static_cast<float>(luaL_checknumber(lua, arg++));
        uint32_t bits = 0;
        std::memcpy(&bits, &value, 4);
        PutInteger(out, bits, false, 4, options.little);
        break;
      }
      case 'd': {
        const double value = luaL_checknumber(lua, arg++);
        uint64_t bits = 0;
        std::memcpy(&bits, &value, 8);
        PutInteger(out, bits, false, 8, options.little);
        break;
      }
      case 'c':
      case 's': {
        size_t len = 0;
        const char* text = luaL_checklstring(lua, arg, &len);
        if (opt == 's' || size == 0) size = len;
        luaL_argcheck(lua, len >= size, arg + 1, "string too short");  // struct.c's numbering
        out.append(text, size);
        if (opt == 's') out.push_back('\0');
        ++arg;
        break;
      }
      default:
        break;
    }
  }
  lua_pushlstring(lua, out.data(), out.size());
  return 1;
}

uint64_t GetInteger(const char* data, size_t size, bool little, bool is_signed) {
  uint64_t value = 0;
  const size_t used = size < 8 ? size : 8;
  for (size_t i = 0; i < used; ++i) {
    const size_t at = little ? i : size - 1 - i;
    value |= static_cast<uint64_t>(static_cast<uint8_t>(data[at])) << (8 * i);
  }
  if (is_signed && used > 0 && used < 8) {
    const uint64_t sign = uint64_t{1} << (used * 8 - 1);
    if (value & sign) value |= ~((sign << 1) - 1);
  }
  return value;
}

int Unpack(lua_State* lua) {
  const char* fmt = luaL_checkstring(lua, 1);
  size_t len = 0;
  const char* data = luaL_checklstring(lua, 2, &len);
  const lua_Integer start = luaL_optinteger(lua, 3, 1);
  luaL_argcheck(lua, start >= 1, 3, "offset must be 1 or greater");
  size_t pos = static_cast<size_t>(start) - 1;
  luaL_argcheck(lua, pos <= len, 3, "offset must be 1 or greater");
  Options options;
  int results = 0;
  while (*fmt != '\0') {
    const char opt = *fmt++;
    if (ControlOption(lua, opt, &fmt, &options)) continue;
    if (!KnownOption(opt)) return InvalidOption(lua, opt);
    size_t size = OptionSize(lua, opt, &fmt);
    pos += Padding(pos, options, opt, size);
    luaL_argcheck(lua, pos <= len && size <= len - pos, 2, "data string too short");
    if (!lua_checkstack(lua, 2)) return luaL_error(lua, "too many results");
    switch (opt) {
      case 'b':
      case 'h':
      case 'l':
      case 'i': {
        const auto value = static_cast<int64_t>(GetInteger(data + pos, size, options.little, true));
        lua_pushnumber(lua, static_cast<lua_Number>(value));
        ++results;
        break;
      }
      case 'B':
      case 'H':
      case 'L':
      case 'T':
      case 'I':
        lua_pushnumber(
            lua, static_cast<lua_Number>(GetInteger(data + pos, size, options.little, false)));
        ++results;
        break;
      case 'x':
        break;
      case 'f': {
        const auto bits = static_cast<uint32_t>(GetInteger(data + pos, 4, options.little, false));
        float value = 0;
        std::memcpy(&value, &bits, 4);
        lua_pushnumber(lua, value);
        ++results;
        break;
      }
      case 'd': {
        const uint64_t bits = GetInteger(data + pos, 8, options.little, false);
        double value = 0;
        std::memcpy(&value, &bits, 8);
        lua_pushnumber(lua, value);
        ++results;
        break;
      }
      case 'c': {
        if (size == 0) {
          if (results == 0 || !lua_isnumber(lua, -1)) {
            return luaL_error(lua, "format 'c0' needs a previous size");
          }
          const lua_Number previous = lua_tonumber(lua, -1);
          lua_pop(lua, 1);
          --results;
          luaL_argcheck(lua, previous >= 0 && previous <= static_cast<lua_Number>(len - pos), 2,
                        "data string too short");
          size = static_cast<size_t>(previous);
        }
        lua_pushlstring(lua, data + pos, size);
        ++results;
        break;
      }
      case 's': {
        const void* end = std::memchr(data + pos, '\0', len - pos);
        if (end == nullptr) return luaL_error(lua, "unfinished string in data");
        size = static_cast<size_t>(static_cast<const char*>(end) - (data + pos));
        lua_pushlstring(lua, data + pos, size);
        ++results;
        ++size;  // the terminator
        break;
      }
      default:
        break;
    }
    pos += size;
  }
  lua_pushnumber(lua, static_cast<lua_Number>(pos + 1));
  return results + 1;
}

int Size(lua_State* lua) {
  const char* fmt = luaL_checkstring(lua, 1);
  Options options;
  size_t total = 0;
  while (*fmt != '\0') {
    const char opt = *fmt++;
    if (ControlOption(lua, opt, &fmt, &options)) continue;
    if (!KnownOption(opt)) return InvalidOption(lua, opt);
    const size_t size = OptionSize(lua, opt, &fmt);
    if (opt == 's') luaL_argerror(lua, 1, "option 's' has no fixed size");
    if (opt == 'c' && size == 0) luaL_argerror(lua, 1, "option 'c0' has no fixed size");
    total += Padding(total, options, opt, size) + size;
  }
  lua_pushnumber(lua, static_cast<lua_Number>(total));
  return 1;
}

}  // namespace

int OpenStruct(lua_State* lua) {
  static const luaL_Reg kFunctions[] = {
      {"pack", Pack}, {"unpack", Unpack}, {"size", Size}, {nullptr, nullptr}};
  lua_newtable(lua);
  luaL_register(lua, nullptr, kFunctions);
  return 1;
}

}  // namespace lattice::server
