#pragma once
// What the two stream families share (stream_family.cc: entries, XREAD, XINFO STREAM;
// stream_group_family.cc: consumer groups): the typed lookup, Valkey's ID parsing and printing,
// entry ranges and replies, and the one stream write (Key::XEdit). Defined in stream_family.cc.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/crdt/key.h"
#include "server/server.h"

namespace lattice::server::streams {

constexpr std::string_view kInvalidId =
    "ERR Invalid stream ID specified as stream command argument";

// kRead lookups count keyspace hits and misses (Valkey's lookupKeyRead); kWrite ones do not.
enum class Access { kRead, kWrite };

struct ParsedId {
  crdt::StreamId id;
  bool seq_given = true;  // false for "<ms>-*"
};

// The visible stream at `key`; nullptr when the key is missing. Valid until the next write.
Result<const crdt::Stream*> FindStream(CommandContext& ctx, std::string_view key, Access access);
// Valkey's string2ull.
bool ParseU64(std::string_view text, uint64_t* value);
// Valkey's streamGenericParseIDOrReply: "-" and "+" (unless strict), "<ms>", "<ms>-<seq>", and
// "<ms>-*" where `allow_auto_seq`.
std::optional<ParsedId> ParseId(std::string_view text, uint64_t missing_seq, bool strict,
                                bool allow_auto_seq = false);
std::optional<crdt::StreamId> ParseStrictId(std::string_view text, uint64_t missing_seq = 0);
// Valkey's streamParseIntervalIDOrReply: "(" makes the bound exclusive (and the ID strict).
std::optional<crdt::StreamId> ParseIntervalId(std::string_view text, uint64_t missing_seq,
                                              bool* exclusive);
bool Incr(crdt::StreamId& id);
bool Decr(crdt::StreamId& id);
std::string IdText(crdt::StreamId id);
void ReplyEntry(CommandContext& ctx, crdt::StreamId id, const crdt::Stream::Fields& fields);
void ReplyEntry(CommandContext& ctx, crdt::StreamId id, const crdt::StreamFieldsView& fields);
// The entries with start <= ID <= end, forward or in reverse, at most `count` (0: all).
std::vector<crdt::Stream::Entries::const_iterator> RangeOf(const crdt::Stream& stream,
                                                           crdt::StreamId start, crdt::StreamId end,
                                                           size_t count, bool rev);
void ReplyRange(CommandContext& ctx,
                const std::vector<crdt::Stream::Entries::const_iterator>& range);
// One stream command's change of `key`, as one op (Key::XEdit).
Result<void> WriteEdit(CommandContext& ctx, std::string_view key, crdt::Key::StreamEdit edit);

// Consumer groups (stream_group_family.cc), for XINFO STREAM: the number of groups, and the
// "groups" value of XINFO STREAM FULL (`count` pending entries per list at most, 0: all).
size_t GroupCount(const crdt::Stream& stream);
void ReplyGroupsFull(CommandContext& ctx, const crdt::Stream& stream, size_t count);
// XINFO GROUPS and XINFO CONSUMERS, for the XINFO container stream_family.cc registers.
void RegisterXInfoGroupSubcommands(std::vector<CommandSpec>& subcommands);

}  // namespace lattice::server::streams
