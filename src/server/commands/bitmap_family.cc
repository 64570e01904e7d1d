// The bitmap command family: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and BITFIELD_RO,
// on string values as Valkey 9's bitops.c (bit 0 is the most significant bit of byte 0; a write
// past the end grows the string with zero bytes; a missing key reads as zeros).
//
// CRDT mapping (docs/commands/bitmap.md, "Concurrency"): SETBIT and BITFIELD SET/INCRBY ship
// only the 256-byte chunks they changed (Key::WriteBitmap, crdt/bit_chunks.h), so concurrent
// writes to different chunks all survive and writes to one chunk are LWW per chunk; they keep
// the TTL. BITOP's destination is a whole-value SET that drops the TTL, as Valkey's setKey.
// A BITFIELD whose writes are all INCRBY under OVERFLOW WRAP ships field counters instead
// (Key::IncrBitFields), so concurrent increments of one field all count.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "server/server.h"
#include "util/ascii.h"

namespace lattice::server {
namespace {

constexpr std::string_view kBadOffset = "ERR bit offset is not an integer or out of range";

bool ParseLongLong(std::string_view text, int64_t* out) { return ParseInt64(text, out); }

// Valkey's getBitOffsetFromArgument: a bit offset, or #N (N * bits) for BITFIELD.
std::optional<uint64_t> BitOffset(const CommandContext& ctx, std::string_view arg, bool hash,
                                  int bits) {
  const bool use_hash = hash && !arg.empty() && arg[0] == '#' && bits > 0;
  int64_t offset = 0;
  if (!ParseLongLong(use_hash ? arg.substr(1) : arg, &offset)) return std::nullopt;
  if (use_hash) {
    if (__builtin_mul_overflow(offset, static_cast<int64_t>(bits), &offset)) return std::nullopt;
  }
  if (offset < 0 ||
      (static_cast<uint64_t>(offset) >> 3) >= ctx.server.config().proto_max_bulk_len()) {
    return std::nullopt;
  }
  return static_cast<uint64_t>(offset);
}

// The string at `key` for a bitmap read (counted as a keyspace hit or miss): nullptr when
// missing, nullopt after WRONGTYPE.
std::optional<KeyRef> FindForRead(CommandContext& ctx, std::string_view key) {
  KeyRef entry = *ctx.Read(key);
  if (entry != nullptr && entry.TypeAt(ctx.now_ms) != crdt::ObjectType::kString) {
    ctx.reply.Error(errors::kWrongType);
    return std::nullopt;
  }
  return entry;
}

// Bytes [begin, end) of `entry` (a string, or nullptr: none), cut at its length, which it
// returns: a view valid until the next write (crdt::Key::ReadStringRange).
size_t ReadBytes(const CommandContext& ctx, KeyRef entry, size_t begin, size_t end,
                 std::string& scratch, std::string_view& out) {
  out = std::string_view();
  if (entry == nullptr) return 0;
  return entry.ReadStringRange(begin, end, ctx.now_ms, scratch, out).value_or(0);
}

// The key for a bitmap write (Valkey's lookupStringForBitCommand): nullptr when missing, nullopt
// after WRONGTYPE.
std::optional<KeyRef> FindForWrite(CommandContext& ctx, std::string_view key) {
  KeyRef entry = ctx.keyspace().Find(ctx.db(), key, ctx.now_ms);
  if (entry != nullptr && entry.TypeAt(ctx.now_ms) != crdt::ObjectType::kString) {
    ctx.reply.Error(errors::kWrongType);
    return std::nullopt;
  }
  return entry;
}

void Store(CommandContext& ctx, std::string_view key, std::string value, bool keep_ttl) {
  ctx.keyspace().SetString(ctx.db(), key, std::move(value), keep_ttl, ctx.now_ms);
}

size_t ChunkEnd(size_t end_byte) {
  return ((end_byte - 1) / crdt::kChunkBytes + 1) * crdt::kChunkBytes;
}

}  // namespace

BitmapWindow ReadBitmapWindow(KeyRef entry, size_t first_byte, size_t end_byte, size_t grow_to,
                              int64_t now_ms) {
  BitmapWindow window;
  window.begin = first_byte / crdt::kChunkBytes * crdt::kChunkBytes;
  std::string scratch;
  std::string_view bytes;
  if (entry != nullptr) {
    window.old_size =
        entry.ReadStringRange(window.begin, ChunkEnd(end_byte), now_ms, scratch, bytes).value_or(0);
  }
  window.size = std::max(window.old_size, grow_to);
  if (bytes.data() == scratch.data() && bytes.size() == scratch.size()) {
    window.bytes = std::move(scratch);
  } else {
    window.bytes.assign(bytes);
  }
  const size_t window_end = std::max(window.begin, std::min(ChunkEnd(end_byte), window.size));
  window.bytes.resize(window_end - window.begin, '\0');
  return window;
}

void StoreBitmapBytes(CommandContext& ctx, std::string_view key, std::string_view window,
                      size_t window_begin, size_t size, size_t first_byte, size_t end_byte) {
  if (first_byte >= end_byte) {  // only grown: the last byte carries the new length
    first_byte = size - 1;
    end_byte = size;
  }
  // The chunks of [first_byte, end_byte), cut at the new length.
  const size_t begin = first_byte / crdt::kChunkBytes * crdt::kChunkBytes;
  const size_t end = std::min(ChunkEnd(end_byte), size);
  LATTICE_ASSERT(begin >= window_begin && end <= window_begin + window.size());
  window = window.substr(begin - window_begin, end - begin);
  Result<void> written =
      ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& writer, crdt::DotContext& shard) {
        return k.WriteBitmapWindow(window, begin, size, first_byte, end_byte, writer, shard);
      });
  LATTICE_ASSERT_MSG(written.ok(), "a bitmap write failed after its type check");
}

namespace {

bool BitAt(std::string_view value, uint64_t bit) {
  const uint64_t byte = bit >> 3;
  if (byte >= value.size()) return false;
  return (static_cast<uint8_t>(value[byte]) >> (7 - (bit & 7))) & 1;
}

void PutBit(std::string& value, uint64_t bit, bool on) {
  auto& byte = reinterpret_cast<uint8_t&>(value[bit >> 3]);
  const uint8_t mask = static_cast<uint8_t>(1U << (7 - (bit & 7)));
  byte = on ? (byte | mask) : (byte & ~mask);
}

void CmdSetBit(CommandContext& ctx, ArgList args) {
  const std::optional<uint64_t> offset = BitOffset(ctx, args[2], false, 0);
  if (!offset) {
    ctx.reply.Error(kBadOffset);
    return;
  }
  int64_t on = 0;
  if (!ParseLongLong(args[3], &on) || (on != 0 && on != 1)) {
    ctx.reply.Error("ERR bit is not an integer or out of range");
    return;
  }
  const std::optional<KeyRef> entry = FindForWrite(ctx, args[1]);
  if (!entry) return;
  const size_t byte = static_cast<size_t>(*offset >> 3);
  BitmapWindow window = ReadBitmapWindow(*entry, byte, byte + 1, byte + 1, ctx.now_ms);
  const bool grew = *entry == nullptr || window.old_size <= byte;
  const uint64_t bit = *offset - uint64_t{window.begin} * 8;  // in the window
  const bool old = BitAt(window.bytes, bit);
  if (grew || old != (on == 1)) {
    PutBit(window.bytes, bit, on == 1);
    StoreBitmapBytes(ctx, args[1], window.bytes, window.begin, window.size, byte, byte + 1);
  }
  ctx.reply.Integer(old ? 1 : 0);
}

void CmdGetBit(CommandContext& ctx, ArgList args) {
  const std::optional<uint64_t> offset = BitOffset(ctx, args[2], false, 0);
  if (!offset) {
    ctx.reply.Error(kBadOffset);
    return;
  }
  const std::optional<KeyRef> entry = FindForRead(ctx, args[1]);
  if (!entry) return;
  std::string scratch;
  std::string_view bytes;
  const size_t byte = static_cast<size_t>(*offset >> 3);
  (void)ReadBytes(ctx, *entry, byte, byte + 1, scratch, bytes);
  ctx.reply.Integer(BitAt(bytes, *offset & 7) ? 1 : 0);
}

// A [start, end] range in bits (BYTE ranges widened to whole bytes) after Valkey's index rules;
// nullopt when empty. `end_given` false takes the whole rest.
struct BitRange {
  uint64_t first = 0;
  uint64_t last = 0;
};

std::optional<BitRange> Range(int64_t start, int64_t end, bool is_bit, size_t length) {
  const int64_t total = static_cast<int64_t>(length) * (is_bit ? 8 : 1);
  if (start < 0 && end < 0 && start > end) return std::nullopt;
  if (start < 0) start = total + start;
  if (end < 0) end = total + end;
  start = std::max<int64_t>(start, 0);
  end = std::max<int64_t>(end, 0);
  end = std::min(end, total - 1);
  if (start > end) return std::nullopt;
  if (is_bit) return BitRange{static_cast<uint64_t>(start), static_cast<uint64_t>(end)};
  return BitRange{static_cast<uint64_t>(start) * 8, static_cast<uint64_t>(end) * 8 + 7};
}

// Parses the optional BYTE|BIT at args[at] into *is_bit; false after a syntax error reply.
bool ParseUnit(CommandContext& ctx, ArgList args, size_t at, bool* is_bit) {
  *is_bit = false;
  if (args.size() <= at) return true;
  if (EqualsIgnoreCase(args[at], "bit")) {
    *is_bit = true;
  } else if (!EqualsIgnoreCase(args[at], "byte")) {
    ctx.reply.Error(errors::kSyntax);
    return false;
  }
  return true;
}

uint64_t PopCount(std::string_view value, BitRange range) {
  uint64_t count = 0;
  uint64_t bit = range.first;
  while (bit <= range.last && (bit & 7) != 0) count += BitAt(value, bit++);
  for (; bit + 63 <= range.last; bit += 64) {
    uint64_t word = 0;
    for (int i = 0; i < 8; ++i) word = (word << 8) | static_cast<uint8_t>(value[(bit >> 3) + i]);
    count += static_cast<uint64_t>(__builtin_popcountll(word));
  }
  for (; bit <= range.last; ++bit) count += BitAt(value, bit);
  return count;
}

void CmdBitCount(CommandContext& ctx, ArgList args) {
  int64_t start = 0;
  int64_t end = -1;
  bool is_bit = false;
  if (args.size() == 4 || args.size() == 5) {
    if (!ParseLongLong(args[2], &start) || !ParseLongLong(args[3], &end)) {
      ctx.reply.Error(errors::kNotInteger);
      return;
    }
    if (!ParseUnit(ctx, args, 4, &is_bit)) return;
  } else if (args.size() != 2) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  const std::optional<KeyRef> entry = FindForRead(ctx, args[1]);
  if (!entry) return;
  std::string scratch;
  std::string_view bytes;
  const size_t size = ReadBytes(ctx, *entry, 0, 0, scratch, bytes);
  const std::optional<BitRange> range = Range(start, end, is_bit, size);
  if (!range) {
    ctx.reply.Integer(0);
    return;
  }
  // Only the range's bytes are read (composed, for a bitmap with chunks).
  const uint64_t from = range->first >> 3;
  (void)ReadBytes(ctx, *entry, from, (range->last >> 3) + 1, scratch, bytes);
  const BitRange shifted{range->first - from * 8, range->last - from * 8};
  ctx.reply.Integer(static_cast<int64_t>(PopCount(bytes, shifted)));
}

void CmdBitPos(CommandContext& ctx, ArgList args) {
  int64_t bit = 0;
  if (!ParseLongLong(args[2], &bit)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  if (bit != 0 && bit != 1) {
    ctx.reply.Error("ERR The bit argument must be 1 or 0.");
    return;
  }
  int64_t start = 0;
  int64_t end = -1;
  bool end_given = false;
  bool is_bit = false;
  if (args.size() >= 4 && args.size() <= 6) {
    if (!ParseLongLong(args[3], &start)) {
      ctx.reply.Error(errors::kNotInteger);
      return;
    }
    if (!ParseUnit(ctx, args, 5, &is_bit)) return;
    if (args.size() >= 5) {
      if (!ParseLongLong(args[4], &end)) {
        ctx.reply.Error(errors::kNotInteger);
        return;
      }
      end_given = true;
    }
  } else if (args.size() != 3) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  const std::optional<KeyRef> entry = FindForRead(ctx, args[1]);
  if (!entry) return;
  if (*entry == nullptr) {  // an endless run of zero bits
    ctx.reply.Integer(bit == 1 ? -1 : 0);
    return;
  }
  std::string scratch;
  std::string_view value;
  const size_t size = ReadBytes(ctx, *entry, 0, 0, scratch, value);
  const std::optional<BitRange> range = Range(start, end, is_bit, size);
  if (!range) {
    ctx.reply.Integer(-1);
    return;
  }
  // Only the range's bytes are read; `value` starts at byte `from`.
  const uint64_t from = range->first >> 3;
  (void)ReadBytes(ctx, *entry, from, (range->last >> 3) + 1, scratch, value);
  for (uint64_t i = range->first; i <= range->last; ++i) {
    const uint64_t at = i - from * 8;
    if ((i & 7) == 0 && i + 7 <= range->last) {  // skip a whole byte that cannot match
      const uint8_t byte = static_cast<uint8_t>(value[at >> 3]);
      if (byte == (bit == 1 ? 0x00 : 0xff)) {
        i += 7;
        continue;
      }
    }
    if (BitAt(value, at) == (bit == 1)) {
      ctx.reply.Integer(static_cast<int64_t>(i));
      return;
    }
  }
  // Looking for a clear bit with no end given: the string reads as padded with zeros.
  const bool padded = bit == 0 && !end_given;
  ctx.reply.Integer(padded ? static_cast<int64_t>(range->last + 1) : -1);
}

enum class BitOp { kAnd, kOr, kXor, kNot, kDiff, kDiff1, kAndOr, kOne };

void CmdBitOp(CommandContext& ctx, ArgList args) {
  static constexpr std::pair<std::string_view, BitOp> kOps[] = {
      {"and", BitOp::kAnd},     {"or", BitOp::kOr},     {"xor", BitOp::kXor},
      {"not", BitOp::kNot},     {"diff", BitOp::kDiff}, {"diff1", BitOp::kDiff1},
      {"andor", BitOp::kAndOr}, {"one", BitOp::kOne}};
  std::optional<BitOp> op;
  for (const auto& [name, value] : kOps) {
    if (EqualsIgnoreCase(args[1], name)) op = value;
  }
  if (!op) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  const size_t sources = args.size() - 3;
  if (*op == BitOp::kNot && sources != 1) {
    ctx.reply.Error("ERR BITOP NOT must be called with a single source key.");
    return;
  }
  if ((*op == BitOp::kDiff || *op == BitOp::kDiff1 || *op == BitOp::kAndOr) && sources < 2) {
    ctx.reply.Error("ERR BITOP " + std::string(args[1]) +
                    " must be called with at least two source keys.");
    return;
  }
  std::vector<std::string> values;
  size_t max_len = 0;
  for (size_t i = 3; i < args.size(); ++i) {
    const std::optional<KeyRef> entry = FindForRead(ctx, args[i]);
    if (!entry) return;
    std::string scratch;
    std::string_view value;
    (void)ReadBytes(ctx, *entry, 0, SIZE_MAX, scratch, value);
    max_len = std::max(max_len, value.size());
    values.emplace_back(value);
  }
  for (std::string& v : values) v.resize(max_len, '\0');  // missing bytes read as zeros
  std::string out(max_len, '\0');
  for (size_t b = 0; b < max_len; ++b) {
    auto at = [&](size_t i) { return static_cast<uint8_t>(values[i][b]); };
    uint8_t r = at(0);
    uint8_t rest_or = 0;
    for (size_t i = 1; i < values.size(); ++i) rest_or |= at(i);
    switch (*op) {
      case BitOp::kAnd:
        for (size_t i = 1; i < values.size(); ++i) r &= at(i);
        break;
      case BitOp::kOr:
        r |= rest_or;
        break;
      case BitOp::kXor:
        for (size_t i = 1; i < values.size(); ++i) r ^= at(i);
        break;
      case BitOp::kNot:
        r = static_cast<uint8_t>(~r);
        break;
      case BitOp::kDiff:
        r = static_cast<uint8_t>(r & ~rest_or);
        break;
      case BitOp::kDiff1:
        r = static_cast<uint8_t>(~r & rest_or);
        break;
      case BitOp::kAndOr:
        r = static_cast<uint8_t>(r & rest_or);
        break;
      case BitOp::kOne: {
        uint8_t once = 0;
        uint8_t twice = 0;
        for (size_t i = 0; i < values.size(); ++i) {
          twice |= static_cast<uint8_t>(once & at(i));
          once ^= at(i);
        }
        r = static_cast<uint8_t>(once & ~twice);
        break;
      }
    }
    out[b] = static_cast<char>(r);
  }
  if (max_len == 0) {
    ctx.keyspace().Delete(ctx.db(), args[2], ctx.now_ms);
  } else {
    Store(ctx, args[2], std::move(out), /*keep_ttl=*/false);
  }
  ctx.reply.Integer(static_cast<int64_t>(max_len));
}

// ---- BITFIELD ----------------------------------------------------------------------------------

enum class FieldOp { kGet, kSet, kIncrBy };
enum class Overflow { kWrap, kSat, kFail };

struct FieldCommand {
  FieldOp op = FieldOp::kGet;
  uint64_t offset = 0;
  int bits = 0;
  bool is_signed = false;
  int64_t value = 0;
  Overflow overflow = Overflow::kWrap;
};

uint64_t GetUnsigned(std::string_view value, uint64_t offset, int bits) {
  uint64_t out = 0;
  for (int i = 0; i < bits; ++i) out = (out << 1) | (BitAt(value, offset + i) ? 1 : 0);
  return out;
}

int64_t GetSigned(std::string_view value, uint64_t offset, int bits) {
  uint64_t raw = GetUnsigned(value, offset, bits);
  if (bits < 64 && (raw & (uint64_t{1} << (bits - 1))) != 0) raw |= ~uint64_t{0} << bits;
  return static_cast<int64_t>(raw);
}

void SetField(std::string& value, uint64_t offset, int bits, uint64_t v) {
  for (int i = 0; i < bits; ++i) PutBit(value, offset + i, ((v >> (bits - 1 - i)) & 1) != 0);
}

// A BITFIELD's subcommands: a few, so inline (no allocation per command).
using FieldCommands = absl::InlinedVector<FieldCommand, 4>;

// Valkey's overflow rules: true (with *out the wrapped or saturated value) when `value + incr`
// does not fit; FAIL leaves *out alone.
bool UnsignedOverflow(uint64_t value, int64_t incr, int bits, Overflow rule, uint64_t* out) {
  const uint64_t max =
      bits == 64 ? std::numeric_limits<uint64_t>::max() : (uint64_t{1} << bits) - 1;
  const auto max_incr = static_cast<int64_t>(max - value);
  const auto min_incr = static_cast<int64_t>(-value);
  const bool high = value > max || (incr > 0 && incr > max_incr);
  const bool low = !high && incr < 0 && incr < min_incr;
  if (!high && !low) return false;
  if (rule == Overflow::kWrap) {
    *out = (value + static_cast<uint64_t>(incr)) & max;
  } else if (rule == Overflow::kSat) {
    *out = high ? max : 0;
  }
  return true;
}

bool SignedOverflow(int64_t value, int64_t incr, int bits, Overflow rule, int64_t* out) {
  const int64_t max =
      bits == 64 ? std::numeric_limits<int64_t>::max() : (int64_t{1} << (bits - 1)) - 1;
  const int64_t min = -max - 1;
  const auto max_incr =
      static_cast<int64_t>(static_cast<uint64_t>(max) - static_cast<uint64_t>(value));
  const auto min_incr =
      static_cast<int64_t>(static_cast<uint64_t>(min) - static_cast<uint64_t>(value));
  const bool high =
      value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr);
  const bool low = !high && (value < min || (bits != 64 && incr < min_incr) ||
                             (value < 0 && incr < 0 && incr < min_incr));
  if (!high && !low) return false;
  if (rule == Overflow::kWrap) {
    uint64_t c = static_cast<uint64_t>(value) + static_cast<uint64_t>(incr);
    if (bits < 64) {
      const uint64_t mask = ~uint64_t{0} << bits;
      c = (c & (uint64_t{1} << (bits - 1))) != 0 ? (c | mask) : (c & ~mask);
    }
    *out = static_cast<int64_t>(c);
  } else if (rule == Overflow::kSat) {
    *out = high ? max : min;
  }
  return true;
}

// Parses the subcommands; false after replying an error.
bool ParseFields(CommandContext& ctx, ArgList args, bool read_only, FieldCommands* out) {
  Overflow overflow = Overflow::kWrap;
  for (size_t j = 2; j < args.size();) {
    const size_t left = args.size() - j - 1;
    const std::string_view sub = args[j];
    if (EqualsIgnoreCase(sub, "overflow") && left >= 1) {
      const std::string_view rule = args[j + 1];
      if (EqualsIgnoreCase(rule, "wrap")) {
        overflow = Overflow::kWrap;
      } else if (EqualsIgnoreCase(rule, "sat")) {
        overflow = Overflow::kSat;
      } else if (EqualsIgnoreCase(rule, "fail")) {
        overflow = Overflow::kFail;
      } else {
        ctx.reply.Error("ERR Invalid OVERFLOW type specified");
        return false;
      }
      j += 2;
      continue;
    }
    FieldCommand field;
    if (EqualsIgnoreCase(sub, "get") && left >= 2) {
      field.op = FieldOp::kGet;
    } else if (EqualsIgnoreCase(sub, "set") && left >= 3) {
      field.op = FieldOp::kSet;
    } else if (EqualsIgnoreCase(sub, "incrby") && left >= 3) {
      field.op = FieldOp::kIncrBy;
    } else {
      ctx.reply.Error(errors::kSyntax);
      return false;
    }
    const std::string_view type = args[j + 1];
    int64_t bits = 0;
    const bool sign_ok = !type.empty() && (type[0] == 'i' || type[0] == 'u');
    if (!sign_ok || !ParseLongLong(type.substr(1), &bits) || bits < 1 ||
        bits > (type[0] == 'i' ? 64 : 63)) {
      ctx.reply.Error(
          "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not "
          "supported but i64 is.");
      return false;
    }
    field.is_signed = type[0] == 'i';
    field.bits = static_cast<int>(bits);
    const std::optional<uint64_t> offset = BitOffset(ctx, args[j + 2], true, field.bits);
    if (!offset) {
      ctx.reply.Error(kBadOffset);
      return false;
    }
    field.offset = *offset;
    if (field.op != FieldOp::kGet && !ParseLongLong(args[j + 3], &field.value)) {
      ctx.reply.Error(errors::kNotInteger);
      return false;
    }
    field.overflow = overflow;
    out->push_back(field);
    j += field.op == FieldOp::kGet ? 3 : 4;
  }
  // Valkey parses every subcommand first: BITFIELD_RO refuses a write only after that.
  if (read_only && std::any_of(out->begin(), out->end(),
                               [](const FieldCommand& f) { return f.op != FieldOp::kGet; })) {
    ctx.reply.Error("ERR BITFIELD_RO only supports the GET subcommand");
    return false;
  }
  return true;
}

// The counter increments of a BITFIELD whose every write is an INCRBY under OVERFLOW WRAP of a
// field inside one chunk, fields either equal or disjoint (so their order does not matter);
// nullopt otherwise (the command is a chunk write).
std::optional<std::vector<std::pair<crdt::BitField, uint64_t>>> WrapIncrements(
    const FieldCommands& fields) {
  std::vector<std::pair<crdt::BitField, uint64_t>> out;
  for (const FieldCommand& f : fields) {
    if (f.op == FieldOp::kGet) continue;
    const crdt::BitField field{f.offset, static_cast<uint32_t>(f.bits)};
    if (f.op != FieldOp::kIncrBy || f.overflow != Overflow::kWrap || !field.Valid()) {
      return std::nullopt;
    }
    for (const auto& [other, by] : out) {
      if (other != field && other.Overlaps(field)) return std::nullopt;
    }
    out.emplace_back(field, static_cast<uint64_t>(f.value));
  }
  return out;
}

// The BITFIELD's write: its counter increments when the key's counters admit every one of them
// (BitChunks::CounterFits), else the chunks of the bytes it changed.
void StoreBitField(CommandContext& ctx, std::string_view key, const BitmapWindow& window,
                   size_t first_byte, size_t end_byte,
                   const std::optional<std::vector<std::pair<crdt::BitField, uint64_t>>>& incs) {
  if (!incs || incs->empty()) {
    StoreBitmapBytes(ctx, key, window.bytes, window.begin, window.size, first_byte, end_byte);
    return;
  }
  Result<void> written =
      ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& writer, crdt::DotContext& shard) {
        static const crdt::BitChunks kNoChunks{};
        const crdt::BitChunks& chunks = k.HasChunks() ? k.rest()->chunks() : kNoChunks;
        const bool fit = std::all_of(incs->begin(), incs->end(), [&](const auto& inc) {
          return chunks.CounterFits(inc.first);
        });
        if (fit) return k.IncrBitFields(*incs, writer, shard);
        // The chunk write StoreBitmapBytes makes (a FAILed field cannot reach this path: every
        // write is a WRAP increment, so the bytes changed are not empty).
        const size_t begin = first_byte / crdt::kChunkBytes * crdt::kChunkBytes;
        const size_t end = std::min(ChunkEnd(end_byte), window.size);
        const std::string_view bytes =
            std::string_view(window.bytes).substr(begin - window.begin, end - begin);
        return k.WriteBitmapWindow(bytes, begin, window.size, first_byte, end_byte, writer, shard);
      });
  LATTICE_ASSERT_MSG(written.ok(), "a bitfield write failed after its type check");
}

void BitFieldGeneric(CommandContext& ctx, ArgList args, bool read_only) {
  FieldCommands fields;
  if (!ParseFields(ctx, args, read_only, &fields)) return;
  bool writes = false;
  uint64_t highest = 0;
  size_t low_byte = fields.empty() ? 0 : SIZE_MAX;  // the bytes every field spans
  size_t high_byte = 1;
  for (const FieldCommand& f : fields) {
    const uint64_t last = f.offset + static_cast<uint64_t>(f.bits) - 1;
    low_byte = std::min(low_byte, static_cast<size_t>(f.offset >> 3));
    high_byte = std::max(high_byte, static_cast<size_t>(last >> 3) + 1);
    if (f.op != FieldOp::kGet) {
      writes = true;
      highest = std::max(highest, last);
    }
  }
  const std::optional<KeyRef> entry =
      writes ? FindForWrite(ctx, args[1]) : FindForRead(ctx, args[1]);
  if (!entry) return;
  // Valkey's lookupStringForBitCommand grows the value to hold the highest bit written.
  const size_t need = writes ? static_cast<size_t>(highest >> 3) + 1 : 0;
  BitmapWindow window = ReadBitmapWindow(*entry, low_byte, high_byte, need, ctx.now_ms);
  const bool grew = writes && (*entry == nullptr || window.old_size < need);
  std::string& value = window.bytes;  // from byte window.begin on
  const uint64_t shift = uint64_t{window.begin} * 8;
  bool changed = false;
  size_t first_byte = SIZE_MAX;  // the bytes the fields written span
  size_t end_byte = 0;
  auto mark = [&](const FieldCommand& f) {
    changed = true;
    first_byte = std::min(first_byte, static_cast<size_t>(f.offset >> 3));
    end_byte = std::max(end_byte, static_cast<size_t>((f.offset + f.bits - 1) >> 3) + 1);
  };
  ctx.reply.Array(fields.size());
  for (const FieldCommand& f : fields) {
    if (f.op == FieldOp::kGet) {
      if (f.is_signed) {
        ctx.reply.Integer(GetSigned(value, f.offset - shift, f.bits));
      } else {
        ctx.reply.Integer(static_cast<int64_t>(GetUnsigned(value, f.offset - shift, f.bits)));
      }
      continue;
    }
    if (f.is_signed) {
      const int64_t old = GetSigned(value, f.offset - shift, f.bits);
      int64_t next = f.op == FieldOp::kSet ? f.value : 0;
      const int64_t incr = f.op == FieldOp::kSet ? 0 : f.value;
      if (f.op == FieldOp::kIncrBy)
        next = static_cast<int64_t>(static_cast<uint64_t>(old) + static_cast<uint64_t>(incr));
      int64_t limited = 0;
      if (SignedOverflow(f.op == FieldOp::kSet ? f.value : old, incr, f.bits, f.overflow,
                         &limited)) {
        if (f.overflow == Overflow::kFail) {
          ctx.reply.Null();
          continue;
        }
        next = limited;
      }
      SetField(value, f.offset - shift, f.bits, static_cast<uint64_t>(next));
      mark(f);
      ctx.reply.Integer(f.op == FieldOp::kSet ? old : next);
    } else {
      const uint64_t old = GetUnsigned(value, f.offset - shift, f.bits);
      uint64_t next = f.op == FieldOp::kSet ? static_cast<uint64_t>(f.value)
                                            : old + static_cast<uint64_t>(f.value);
      const int64_t incr = f.op == FieldOp::kSet ? 0 : f.value;
      uint64_t limited = 0;
      if (UnsignedOverflow(f.op == FieldOp::kSet ? static_cast<uint64_t>(f.value) : old, incr,
                           f.bits, f.overflow, &limited)) {
        if (f.overflow == Overflow::kFail) {
          ctx.reply.Null();
          continue;
        }
        next = limited;
      }
      SetField(value, f.offset - shift, f.bits, next);
      mark(f);
      ctx.reply.Integer(static_cast<int64_t>(f.op == FieldOp::kSet ? old : next));
    }
  }
  if (changed && grew) {
    // A FAILed field may have grown the string past the fields written: the chunks up to the new
    // end carry the length (else the chunk write is cut at the last field written).
    end_byte = std::max(end_byte, window.size);
  }
  if (writes && (changed || grew)) {
    StoreBitField(ctx, args[1], window, changed ? first_byte : 0, changed ? end_byte : 0,
                  WrapIncrements(fields));
  }
}

void CmdBitField(CommandContext& ctx, ArgList args) { BitFieldGeneric(ctx, args, false); }
void CmdBitFieldRo(CommandContext& ctx, ArgList args) { BitFieldGeneric(ctx, args, true); }

}  // namespace

void RegisterBitmapFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr KeySpec kOne{.first = 1, .last = 1, .step = 1};
  constexpr std::string_view kGroup = "bitmap";
  registry.Add({.name = "setbit", .arity = 4, .flags = kWrite | kDenyOom, .keys = kOne, .acl = kAclWrite | kAclBitmap | kAclSlow, .handler = &CmdSetBit, .group = kGroup, .summary = "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", .since = "2.2.0", .complexity = "O(1)"});
  registry.Add({.name = "getbit", .arity = 3, .flags = kReadOnly | kFast, .keys = kOne, .acl = kAclRead | kAclBitmap | kAclFast, .handler = &CmdGetBit, .group = kGroup, .summary = "Returns a bit value by offset.", .since = "2.2.0", .complexity = "O(1)"});
  registry.Add({.name = "bitcount", .arity = -2, .flags = kReadOnly, .keys = kOne, .acl = kAclRead | kAclBitmap | kAclSlow, .handler = &CmdBitCount, .group = kGroup, .summary = "Counts the number of set bits (population counting) in a string.", .since = "2.6.0", .complexity = "O(N)"});
  registry.Add({.name = "bitpos", .arity = -3, .flags = kReadOnly, .keys = kOne, .acl = kAclRead | kAclBitmap | kAclSlow, .handler = &CmdBitPos, .group = kGroup, .summary = "Finds the first set (1) or clear (0) bit in a string.", .since = "2.8.7", .complexity = "O(N)"});
  registry.Add({.name = "bitop", .arity = -4, .flags = kWrite | kDenyOom, .keys = {.first = 2, .last = -1, .step = 1}, .acl = kAclWrite | kAclBitmap | kAclSlow, .handler = &CmdBitOp, .group = kGroup, .summary = "Performs bitwise operations on multiple strings, and stores the result.", .since = "2.6.0", .complexity = "O(N)"});
  registry.Add({.name = "bitfield", .arity = -2, .flags = kWrite | kDenyOom, .keys = kOne, .acl = kAclWrite | kAclBitmap | kAclSlow, .handler = &CmdBitField, .group = kGroup, .summary = "Performs arbitrary bitfield integer operations on strings.", .since = "3.2.0", .complexity = "O(1) for each subcommand specified"});
  registry.Add({.name = "bitfield_ro", .arity = -2, .flags = kReadOnly | kFast, .keys = kOne, .acl = kAclRead | kAclBitmap | kAclFast, .handler = &CmdBitFieldRo, .group = kGroup, .summary = "Performs arbitrary read-only bitfield integer operations on strings.", .since = "6.0.0", .complexity = "O(1) for each subcommand specified"});
  // clang-format on
}

}  // namespace lattice::server
