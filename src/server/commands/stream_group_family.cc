// The stream consumer-group commands: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER,
// DELCONSUMER), XREADGROUP (with BLOCK, through server/blocking.h), XACK, XPENDING, XCLAIM,
// XAUTOCLAIM, XINFO GROUPS and XINFO CONSUMERS, on the group state of the CRDT Stream
// (crdt/stream.h). Replies and errors follow Valkey 9's t_stream.c.
//
// Each command that changes a group is one op (Key::XEdit): a group's slot (last-delivered ID,
// entries-read), a consumer's slot (seen and active times) and a pending entry's slot (owner,
// delivery time and count) are written whole with the command's time; XACK, DELCONSUMER and
// DESTROY remove what they saw. Every op that writes a consumer or a pending entry rewrites its
// group's slot too (docs/semantics.md, "Consumer groups").

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/commands/stream_util.h"
#include "server/server.h"

namespace lattice::server {

using crdt::GroupPart;
using crdt::GroupSlot;
using crdt::GroupValue;
using crdt::Stream;
using crdt::StreamId;
using crdt::StreamMeta;

namespace {

using namespace streams;  // NOLINT(build/namespaces): the stream families' shared helpers

constexpr int64_t kInvalidRead = -1;  // Valkey's SCG_INVALID_ENTRIES_READ

GroupSlot GroupOf(std::string_view group) { return GroupSlot{std::string(group)}; }
GroupSlot ConsumerOf(std::string_view group, std::string_view name) {
  return GroupSlot{std::string(group), GroupPart::kConsumer, std::string(name), StreamId{}};
}
GroupSlot PendingOf(std::string_view group, StreamId id) {
  return GroupSlot{std::string(group), GroupPart::kPending, "", id};
}

std::string NoGroup(std::string_view key, std::string_view group, std::string_view tail = "") {
  return "NOGROUP No such key '" + std::string(key) + "' or consumer group '" + std::string(group) +
         "'" + std::string(tail);
}

// now - then, saturated (times may come from another region, or from a client's TIME/IDLE).
int64_t Since(int64_t now_ms, int64_t then_ms) {
  int64_t out = 0;
  if (__builtin_sub_overflow(now_ms, then_ms, &out)) {
    return then_ms < 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return out;
}

struct Pending {
  StreamId id;
  GroupValue value;
};

// The group's pending entries in ID order; only `owner`'s when given.
std::vector<Pending> PendingList(const Stream& stream, std::string_view group,
                                 std::optional<std::string_view> owner = std::nullopt) {
  std::vector<Pending> out;
  stream.ForEachSlot(group, GroupPart::kPending, [&](const GroupSlot& slot, const GroupValue& v) {
    if (!owner || v.owner == *owner) out.push_back(Pending{slot.id, v});
  });
  return out;
}

struct Consumer {
  std::string name;
  GroupValue value;
};

std::vector<Consumer> Consumers(const Stream& stream, std::string_view group) {
  std::vector<Consumer> out;
  stream.ForEachSlot(group, GroupPart::kConsumer, [&](const GroupSlot& slot, const GroupValue& v) {
    out.push_back(Consumer{slot.consumer, v});
  });
  return out;
}

bool EntryExists(const Stream& stream, StreamId id) {
  auto it = stream.entries().lower_bound(crdt::StreamEntryKey{id, crdt::Dot{}});
  return it != stream.entries().end() && it->first.id == id;
}

// ---- Valkey's entries-read and lag arithmetic -----------------------------------------------

// streamRangeHasTombstones(s, start, NULL).
bool HasTombstones(const Stream& stream, const StreamMeta& meta, StreamId start) {
  if (stream.Size() == 0 || meta.max_deleted == StreamId{}) return false;
  if (*stream.FirstId() > meta.max_deleted) return false;
  return start <= meta.max_deleted;
}

// streamEstimateDistanceFromFirstEverEntry.
int64_t EstimateDistance(const Stream& stream, const StreamMeta& meta, StreamId id) {
  const auto added = static_cast<int64_t>(meta.entries_added);
  if (meta.entries_added == 0) return 0;
  if (stream.Size() == 0 && id <= meta.last_id) return added;
  if (id == meta.last_id) return added;
  if (id > meta.last_id) return kInvalidRead;
  const StreamId first = stream.FirstId().value_or(StreamId{});
  const auto length = static_cast<int64_t>(stream.Size());
  if (meta.max_deleted == StreamId{} || meta.max_deleted < first) {
    if (id < first) return Since(added, length);
    if (id == first) return Since(added, length - 1);
  }
  return kInvalidRead;
}

// streamReplyWithCGLag's value, or nullopt for a null reply.
std::optional<int64_t> Lag(const Stream& stream, const StreamMeta& meta, const GroupValue& group) {
  const auto added = static_cast<int64_t>(meta.entries_added);
  if (meta.entries_added == 0) return 0;
  if (group.entries_read != kInvalidRead && !HasTombstones(stream, meta, group.last_id)) {
    return Since(added, group.entries_read);
  }
  const int64_t read = EstimateDistance(stream, meta, group.last_id);
  if (read == kInvalidRead) return std::nullopt;
  return Since(added, read);
}

void ReplyOptional(CommandContext& ctx, std::optional<int64_t> value) {
  if (value) {
    ctx.reply.Integer(*value);
  } else {
    ctx.reply.Null();
  }
}

// ---- XGROUP ---------------------------------------------------------------------------------

void SubcommandSyntax(CommandContext& ctx, ArgList args) {
  ctx.reply.Error("ERR unknown subcommand or wrong number of arguments for '" +
                  std::string(args[1]) + "'. Try XGROUP HELP.");
}

struct XGroupArgs {
  bool mkstream = false;
  int64_t entries_read = kInvalidRead;
};

// The options after the ID of CREATE and SETID (Valkey parses them before the key lookup).
std::optional<XGroupArgs> ParseXGroupOptions(CommandContext& ctx, ArgList args, bool create) {
  XGroupArgs out;
  for (size_t i = 5; i < args.size();) {
    if (create && EqualsIgnoreCase(args[i], "mkstream")) {
      out.mkstream = true;
      ++i;
    } else if (EqualsIgnoreCase(args[i], "entriesread") && i + 1 < args.size()) {
      if (!ParseInt64(args[i + 1], &out.entries_read)) {
        ctx.reply.Error(errors::kNotInteger);
        return std::nullopt;
      }
      if (out.entries_read < 0 && out.entries_read != kInvalidRead) {
        ctx.reply.Error("ERR value for ENTRIESREAD must be positive or -1");
        return std::nullopt;
      }
      i += 2;
    } else {
      SubcommandSyntax(ctx, args);
      return std::nullopt;
    }
  }
  return out;
}

// The stream and (if any) the group an XGROUP subcommand names, after Valkey's checks; nullopt
// when an error was replied.
struct XGroupTarget {
  const Stream* stream = nullptr;
  std::optional<GroupValue> group;
};

std::optional<XGroupTarget> FindXGroupTarget(CommandContext& ctx, ArgList args, bool mkstream,
                                             bool needs_group) {
  Result<const Stream*> found = FindStream(ctx, args[2], Access::kWrite);
  if (!found.ok()) {
    ctx.reply.Error(found.error());
    return std::nullopt;
  }
  XGroupTarget out{*found, std::nullopt};
  if (out.stream != nullptr) out.group = out.stream->FindSlot(GroupOf(args[3]));
  if (mkstream) return out;
  if (out.stream == nullptr) {
    ctx.reply.Error(
        "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want "
        "to use the MKSTREAM option to create an empty stream automatically.");
    return std::nullopt;
  }
  if (needs_group && !out.group) {
    ctx.reply.Error("NOGROUP No such consumer group '" + std::string(args[3]) + "' for key name '" +
                    std::string(args[2]) + "'");
    return std::nullopt;
  }
  return out;
}

void ReplyWrite(CommandContext& ctx, Result<void> done, int64_t value) {
  done.ok() ? ctx.reply.Integer(value) : ctx.reply.Error(done.error());
}

void CmdXGroupCreate(CommandContext& ctx, ArgList args) {
  std::optional<XGroupArgs> opts = ParseXGroupOptions(ctx, args, true);
  if (!opts) return;
  std::optional<XGroupTarget> target = FindXGroupTarget(ctx, args, opts->mkstream, false);
  if (!target) return;
  if (args.size() > 8) return SubcommandSyntax(ctx, args);
  StreamId id;
  if (args[4] == "$") {
    if (target->stream != nullptr) id = target->stream->Meta().last_id;
  } else if (std::optional<StreamId> parsed = ParseStrictId(args[4])) {
    id = *parsed;
  } else {
    ctx.reply.Error(kInvalidId);
    return;
  }
  if (target->group) {
    ctx.reply.Error("BUSYGROUP Consumer Group name already exists");
    return;
  }
  crdt::Key::StreamEdit edit;
  if (target->stream == nullptr) {
    edit.create = true;
    edit.meta = StreamMeta{};
  }
  GroupValue group;
  group.last_id = id;
  group.entries_read = opts->entries_read;
  edit.group_write.emplace_back(GroupOf(args[3]), group);
  Result<void> done = WriteEdit(ctx, args[2], std::move(edit));
  done.ok() ? ctx.reply.Ok() : ctx.reply.Error(done.error());
}

void CmdXGroupSetId(CommandContext& ctx, ArgList args) {
  std::optional<XGroupArgs> opts = ParseXGroupOptions(ctx, args, false);
  if (!opts) return;
  std::optional<XGroupTarget> target = FindXGroupTarget(ctx, args, false, true);
  if (!target) return;
  if (args.size() != 5 && args.size() != 7) return SubcommandSyntax(ctx, args);
  GroupValue group = *target->group;
  if (args[4] == "$") {
    group.last_id = target->stream->Meta().last_id;
  } else if (std::optional<ParsedId> parsed = ParseId(args[4], 0, false)) {
    group.last_id = parsed->id;
  } else {
    ctx.reply.Error(kInvalidId);
    return;
  }
  group.entries_read = opts->entries_read;
  crdt::Key::StreamEdit edit;
  edit.group_write.emplace_back(GroupOf(args[3]), group);
  Result<void> done = WriteEdit(ctx, args[2], std::move(edit));
  done.ok() ? ctx.reply.Ok() : ctx.reply.Error(done.error());
}

void CmdXGroupDestroy(CommandContext& ctx, ArgList args) {
  std::optional<XGroupTarget> target = FindXGroupTarget(ctx, args, false, false);
  if (!target) return;
  if (!target->group) {
    ctx.reply.Integer(0);
    return;
  }
  crdt::Key::StreamEdit edit;
  edit.group_destroy.emplace_back(args[3]);
  ReplyWrite(ctx, WriteEdit(ctx, args[2], std::move(edit)), 1);
}

// A consumer's slot as a command at `now_ms` leaves it: seen now, active now when `active`.
GroupValue TouchedConsumer(const Stream& stream, std::string_view group, std::string_view name,
                           int64_t now_ms, bool active) {
  GroupValue out = stream.FindSlot(ConsumerOf(group, name)).value_or(GroupValue{});
  out.seen_ms = now_ms;
  if (active) out.active_ms = now_ms;
  return out;
}

void CmdXGroupCreateConsumer(CommandContext& ctx, ArgList args) {
  std::optional<XGroupTarget> target = FindXGroupTarget(ctx, args, false, true);
  if (!target) return;
  if (target->stream->FindSlot(ConsumerOf(args[3], args[4]))) {
    ctx.reply.Integer(0);
    return;
  }
  crdt::Key::StreamEdit edit;
  edit.group_write.emplace_back(GroupOf(args[3]), *target->group);
  edit.group_write.emplace_back(
      ConsumerOf(args[3], args[4]),
      TouchedConsumer(*target->stream, args[3], args[4], ctx.now_ms, false));
  ReplyWrite(ctx, WriteEdit(ctx, args[2], std::move(edit)), 1);
}

void CmdXGroupDelConsumer(CommandContext& ctx, ArgList args) {
  std::optional<XGroupTarget> target = FindXGroupTarget(ctx, args, false, true);
  if (!target) return;
  if (!target->stream->FindSlot(ConsumerOf(args[3], args[4]))) {
    ctx.reply.Integer(0);
    return;
  }
  crdt::Key::StreamEdit edit;
  edit.group_remove.push_back(ConsumerOf(args[3], args[4]));
  const std::vector<Pending> owned = PendingList(*target->stream, args[3], args[4]);
  for (const Pending& p : owned) edit.group_remove.push_back(PendingOf(args[3], p.id));
  ReplyWrite(ctx, WriteEdit(ctx, args[2], std::move(edit)), static_cast<int64_t>(owned.size()));
}

// ---- XREADGROUP -----------------------------------------------------------------------------

struct GroupRead {
  std::string group;
  std::string consumer;
  std::vector<std::string> keys;
  std::vector<std::optional<StreamId>> after;  // nullopt: ">"
  size_t count = 0;                            // 0: all
  bool noack = false;
  std::optional<int64_t> deadline_ms;
};

// One entry of a reply: its fields, or nullopt for a pending entry that was deleted.
using Delivered = std::pair<StreamId, std::optional<Stream::Fields>>;

// The new entries (">") for the group: delivered, the group advanced (Valkey's
// streamReplyWithRange with a group), pending entries written unless NOACK.
std::vector<Delivered> DeliverNew(const Stream& stream, const GroupRead& read, GroupValue group,
                                  int64_t now_ms, crdt::Key::StreamEdit& edit) {
  std::vector<Delivered> out;
  const StreamMeta meta = stream.Meta();
  StreamId start = group.last_id;
  if (!Incr(start)) return out;
  for (const auto& it : RangeOf(stream, start, StreamId::Max(), read.count, false)) {
    const StreamId id = it->first.id;
    if (id > group.last_id) {
      if (group.entries_read != kInvalidRead &&
          group.entries_read < std::numeric_limits<int64_t>::max() &&
          !HasTombstones(stream, meta, id)) {
        ++group.entries_read;
      } else if (meta.entries_added != 0) {
        group.entries_read = EstimateDistance(stream, meta, id);
      }
      group.last_id = id;
    }
    out.emplace_back(id, it->second.ToVector());
    if (!read.noack) {
      GroupValue pending;
      pending.owner = read.consumer;
      pending.seen_ms = now_ms;
      pending.deliveries = 1;
      edit.group_write.emplace_back(PendingOf(read.group, id), pending);
    }
  }
  edit.group_write.insert(edit.group_write.begin(), std::pair(GroupOf(read.group), group));
  return out;
}

// The consumer's own pending entries after `after` (Valkey's streamReplyWithRangeFromConsumerPEL):
// each still in the stream is delivered again (time now, count + 1).
std::vector<Delivered> DeliverHistory(const Stream& stream, const GroupRead& read, StreamId after,
                                      int64_t now_ms, crdt::Key::StreamEdit& edit) {
  std::vector<Delivered> out;
  for (Pending& p : PendingList(stream, read.group, read.consumer)) {
    if (p.id <= after) continue;
    if (read.count != 0 && out.size() >= read.count) break;
    auto it = stream.entries().lower_bound(crdt::StreamEntryKey{p.id, crdt::Dot{}});
    if (it == stream.entries().end() || it->first.id != p.id) {
      out.emplace_back(p.id, std::nullopt);
      continue;
    }
    out.emplace_back(p.id, it->second.ToVector());
    p.value.seen_ms = now_ms;
    ++p.value.deliveries;
    edit.group_write.emplace_back(PendingOf(read.group, p.id), p.value);
  }
  return out;
}

void ReplyDelivered(CommandContext& ctx, const std::vector<Delivered>& entries) {
  ctx.reply.Array(entries.size());
  for (const auto& [id, fields] : entries) {
    if (fields) {
      ReplyEntry(ctx, id, *fields);
    } else {
      ctx.reply.Array(2);
      ctx.reply.Bulk(IdText(id));
      ctx.reply.NullArray();
    }
  }
}

// Serves the read (Valkey's xreadCommand with a group). On the first run (`first`) it always
// writes the consumers' seen time; woken, it writes only when it serves. Returns true when it
// replied (entries, or the error of a stream or group gone while blocked).
bool ServeGroupRead(CommandContext& ctx, const GroupRead& read, bool first) {
  std::vector<std::pair<size_t, std::vector<Delivered>>> served;
  for (size_t i = 0; i < read.keys.size(); ++i) {
    // Woken after the key was deleted, replaced or its group destroyed, Valkey 9 runs the
    // command again: WRONGTYPE, or NOGROUP.
    Result<const Stream*> found = FindStream(ctx, read.keys[i], Access::kRead);
    if (!found.ok()) {
      ctx.reply.Error(found.error());
      return true;
    }
    std::optional<GroupValue> group;
    if (*found != nullptr) group = (*found)->FindSlot(GroupOf(read.group));
    if (!group) {
      ctx.reply.Error(NoGroup(read.keys[i], read.group, " in XREADGROUP with GROUP option"));
      return true;
    }
    const Stream& stream = **found;
    crdt::Key::StreamEdit edit;
    std::optional<std::vector<Delivered>> entries;
    if (read.after[i]) {
      entries = DeliverHistory(stream, read, *read.after[i], ctx.now_ms, edit);
    } else if (stream.LastId() && *stream.LastId() > group->last_id) {
      entries = DeliverNew(stream, read, *group, ctx.now_ms, edit);
    }
    if (!entries && !first) continue;
    const bool active = entries && !read.after[i] && !read.noack && !entries->empty();
    if (edit.group_write.empty() || edit.group_write.front().first.part != GroupPart::kGroup) {
      edit.group_write.insert(edit.group_write.begin(), std::pair(GroupOf(read.group), *group));
    }
    edit.group_write.emplace_back(
        ConsumerOf(read.group, read.consumer),
        TouchedConsumer(stream, read.group, read.consumer, ctx.now_ms, active));
    if (Result<void> done = WriteEdit(ctx, read.keys[i], std::move(edit)); !done.ok()) {
      ctx.reply.Error(done.error());
      return true;
    }
    if (entries) served.emplace_back(i, std::move(*entries));
  }
  if (served.empty()) return false;
  const bool resp3 = ctx.reply.protocol() == Protocol::kResp3;
  resp3 ? ctx.reply.Map(served.size()) : ctx.reply.Array(served.size());
  for (const auto& [index, entries] : served) {
    if (!resp3) ctx.reply.Array(2);
    ctx.reply.Bulk(read.keys[index]);
    ReplyDelivered(ctx, entries);
  }
  return true;
}

// The options before STREAMS; false when an error was replied.
bool ParseGroupReadOptions(CommandContext& ctx, ArgList args, GroupRead& read,
                           size_t* streams_arg) {
  bool group_given = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const size_t more = args.size() - i - 1;
    const std::string_view opt = args[i];
    if (EqualsIgnoreCase(opt, "block") && more > 0) {
      ++i;
      int64_t ms = 0;
      if (!ParseInt64(args[i], &ms)) {
        ctx.reply.Error("ERR timeout is not an integer or out of range");
        return false;
      }
      if (ms < 0) {
        ctx.reply.Error("ERR timeout is negative");
        return false;
      }
      if (ms > 0 && ms > std::numeric_limits<int64_t>::max() - ctx.now_ms) {
        ctx.reply.Error("ERR timeout is out of range");
        return false;
      }
      read.deadline_ms = ms > 0 ? ctx.now_ms + ms : 0;
    } else if (EqualsIgnoreCase(opt, "count") && more > 0) {
      int64_t count = 0;
      if (!ParseInt64(args[++i], &count)) {
        ctx.reply.Error(errors::kNotInteger);
        return false;
      }
      read.count = static_cast<size_t>(std::max<int64_t>(count, 0));
    } else if (EqualsIgnoreCase(opt, "streams") && more > 0) {
      *streams_arg = i + 1;
      if ((args.size() - *streams_arg) % 2 != 0) {
        ctx.reply.Error(
            "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be "
            "specified.");
        return false;
      }
      break;
    } else if (EqualsIgnoreCase(opt, "group") && more >= 2) {
      read.group = args[i + 1];
      read.consumer = args[i + 2];
      group_given = true;
      i += 2;
    } else if (EqualsIgnoreCase(opt, "noack")) {
      read.noack = true;
    } else {
      ctx.reply.Error(errors::kSyntax);
      return false;
    }
  }
  if (*streams_arg == 0) {
    ctx.reply.Error(errors::kSyntax);
    return false;
  }
  if (!group_given) {
    ctx.reply.Error("ERR Missing GROUP option for XREADGROUP");
    return false;
  }
  return true;
}

// The keys and IDs after STREAMS, checked in order as Valkey does; false when an error was
// replied.
bool ParseGroupReadStreams(CommandContext& ctx, ArgList args, size_t streams_arg, GroupRead& read) {
  const size_t count = (args.size() - streams_arg) / 2;
  for (size_t i = 0; i < count; ++i) {
    const std::string_view key = args[streams_arg + i];
    const std::string_view id = args[streams_arg + count + i];
    Result<const Stream*> found = FindStream(ctx, key, Access::kRead);
    if (!found.ok()) {
      ctx.reply.Error(found.error());
      return false;
    }
    if (*found == nullptr || !(*found)->FindSlot(GroupOf(read.group))) {
      ctx.reply.Error(NoGroup(key, read.group, " in XREADGROUP with GROUP option"));
      return false;
    }
    read.keys.emplace_back(key);
    if (id == "$") {
      ctx.reply.Error(
          "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the "
          "history of this consumer by specifying a proper ID, or use the > ID to get new "
          "messages. The $ ID would just return an empty result set.");
      return false;
    }
    if (id == ">") {
      read.after.emplace_back(std::nullopt);
      continue;
    }
    std::optional<StreamId> parsed = ParseStrictId(id);
    if (!parsed) {
      ctx.reply.Error(kInvalidId);
      return false;
    }
    // Valkey encodes ">" as the greatest ID, so that ID given explicitly reads as ">".
    read.after.emplace_back(*parsed == StreamId::Max() ? std::nullopt : parsed);
  }
  return true;
}

void CmdXReadGroup(CommandContext& ctx, ArgList args) {
  GroupRead read;
  size_t streams_arg = 0;
  if (!ParseGroupReadOptions(ctx, args, read, &streams_arg)) return;
  if (!ParseGroupReadStreams(ctx, args, streams_arg, read)) return;
  if (ServeGroupRead(ctx, read, true)) return;
  if (!read.deadline_ms.has_value() || !ctx.server.MayBlock()) {
    ctx.reply.NullArray();
    return;
  }
  // Only ">" reads block: a history read always replies at once.
  BlockRequest request{.keys = read.keys, .deadline_ms = *read.deadline_ms};
  request.serve = [read](CommandContext& woken) { return ServeGroupRead(woken, read, false); };
  ctx.server.blocking().Block(ctx, args, std::move(request));
}

// ---- XACK, XPENDING -------------------------------------------------------------------------

void CmdXAck(CommandContext& ctx, ArgList args) {
  Result<const Stream*> found = FindStream(ctx, args[1], Access::kRead);
  if (!found.ok()) {
    ctx.reply.Error(found.error());
    return;
  }
  if (*found == nullptr || !(*found)->FindSlot(GroupOf(args[2]))) {
    ctx.reply.Integer(0);
    return;
  }
  std::vector<StreamId> ids;
  for (size_t i = 3; i < args.size(); ++i) {
    std::optional<StreamId> id = ParseStrictId(args[i]);
    if (!id) {
      ctx.reply.Error(kInvalidId);
      return;
    }
    ids.push_back(*id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  crdt::Key::StreamEdit edit;
  for (StreamId id : ids) {
    if ((*found)->FindSlot(PendingOf(args[2], id)))
      edit.group_remove.push_back(PendingOf(args[2], id));
  }
  const auto acked = static_cast<int64_t>(edit.group_remove.size());
  if (acked == 0) {
    ctx.reply.Integer(0);
    return;
  }
  ReplyWrite(ctx, WriteEdit(ctx, args[1], std::move(edit)), acked);
}

void ReplyPendingSummary(CommandContext& ctx, const std::vector<Pending>& pending) {
  ctx.reply.Array(4);
  ctx.reply.Integer(static_cast<int64_t>(pending.size()));
  if (pending.empty()) {
    ctx.reply.Null();
    ctx.reply.Null();
    ctx.reply.NullArray();
    return;
  }
  ctx.reply.Bulk(IdText(pending.front().id));
  ctx.reply.Bulk(IdText(pending.back().id));
  std::map<std::string, int64_t> per_owner;
  for (const Pending& p : pending) ++per_owner[p.value.owner];
  ctx.reply.Array(per_owner.size());
  for (const auto& [owner, n] : per_owner) {
    ctx.reply.Array(2);
    ctx.reply.Bulk(owner);
    ctx.reply.Bulk(std::to_string(n));
  }
}

struct PendingRange {
  int64_t min_idle = 0;
  StreamId start;
  StreamId end;
  int64_t count = 0;
  std::optional<std::string> consumer;
};

// XPENDING's extended arguments (parsed before the key lookup, as Valkey does).
std::optional<PendingRange> ParsePendingRange(CommandContext& ctx, ArgList args) {
  PendingRange out;
  size_t at = 3;
  if (EqualsIgnoreCase(args[3], "idle")) {
    if (!ParseInt64(args[4], &out.min_idle)) {
      ctx.reply.Error(errors::kNotInteger);
      return std::nullopt;
    }
    if (args.size() < 8) {
      ctx.reply.Error(errors::kSyntax);
      return std::nullopt;
    }
    at += 2;
  }
  if (!ParseInt64(args[at + 2], &out.count)) {
    ctx.reply.Error(errors::kNotInteger);
    return std::nullopt;
  }
  out.count = std::max<int64_t>(out.count, 0);
  bool exclusive = false;
  std::optional<StreamId> start = ParseIntervalId(args[at], 0, &exclusive);
  if (!start) {
    ctx.reply.Error(kInvalidId);
    return std::nullopt;
  }
  if (exclusive && !Incr(*start)) {
    ctx.reply.Error("ERR invalid start ID for the interval");
    return std::nullopt;
  }
  std::optional<StreamId> end = ParseIntervalId(args[at + 1], UINT64_MAX, &exclusive);
  if (!end) {
    ctx.reply.Error(kInvalidId);
    return std::nullopt;
  }
  if (exclusive && !Decr(*end)) {
    ctx.reply.Error("ERR invalid end ID for the interval");
    return std::nullopt;
  }
  out.start = *start;
  out.end = *end;
  if (at + 3 < args.size()) out.consumer = std::string(args[at + 3]);
  return out;
}

void ReplyPendingRange(CommandContext& ctx, const Stream& stream, std::string_view group,
                       const PendingRange& range) {
  if (range.consumer && !stream.FindSlot(ConsumerOf(group, *range.consumer))) {
    ctx.reply.Array(0);
    return;
  }
  std::vector<Pending> shown;
  for (const Pending& p : PendingList(stream, group, range.consumer)) {
    if (static_cast<int64_t>(shown.size()) >= range.count || p.id > range.end) break;
    if (p.id < range.start) continue;
    if (range.min_idle != 0 && Since(ctx.now_ms, p.value.seen_ms) < range.min_idle) continue;
    shown.push_back(p);
  }
  ctx.reply.Array(shown.size());
  for (const Pending& p : shown) {
    ctx.reply.Array(4);
    ctx.reply.Bulk(IdText(p.id));
    ctx.reply.Bulk(p.value.owner);
    ctx.reply.Integer(std::max<int64_t>(Since(ctx.now_ms, p.value.seen_ms), 0));
    ctx.reply.Integer(static_cast<int64_t>(p.value.deliveries));
  }
}

void CmdXPending(CommandContext& ctx, ArgList args) {
  if (args.size() != 3 && (args.size() < 6 || args.size() > 9)) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  std::optional<PendingRange> range;
  if (args.size() >= 6) {
    range = ParsePendingRange(ctx, args);
    if (!range) return;
  }
  Result<const Stream*> found = FindStream(ctx, args[1], Access::kRead);
  if (!found.ok()) {
    ctx.reply.Error(found.error());
    return;
  }
  if (*found == nullptr || !(*found)->FindSlot(GroupOf(args[2]))) {
    ctx.reply.Error(NoGroup(args[1], args[2]));
    return;
  }
  if (!range) return ReplyPendingSummary(ctx, PendingList(**found, args[2]));
  ReplyPendingRange(ctx, **found, args[2], *range);
}

// ---- XCLAIM, XAUTOCLAIM ---------------------------------------------------------------------

// The group and stream a claim works on, or nullopt after replying the error.
std::optional<std::pair<const Stream*, GroupValue>> FindClaimTarget(CommandContext& ctx,
                                                                    ArgList args) {
  Result<const Stream*> found = FindStream(ctx, args[1], Access::kRead);
  if (!found.ok()) {
    ctx.reply.Error(found.error());
    return std::nullopt;
  }
  std::optional<GroupValue> group;
  if (*found != nullptr) group = (*found)->FindSlot(GroupOf(args[2]));
  if (!group) {
    ctx.reply.Error(NoGroup(args[1], args[2]));
    return std::nullopt;
  }
  return std::pair(*found, *group);
}

struct ClaimOptions {
  int64_t min_idle = 0;
  std::vector<StreamId> ids;
  int64_t delivery_ms = -1;  // -1: now
  int64_t retry_count = -1;  // -1: not given
  bool force = false;
  bool justid = false;
  std::optional<StreamId> last_id;
};

bool ParseClaimNumber(CommandContext& ctx, std::string_view text, int64_t* out,
                      std::string_view what) {
  if (ParseInt64(text, out)) return true;
  ctx.reply.Error("ERR Invalid " + std::string(what) + " argument for XCLAIM");
  return false;
}

// XCLAIM's IDs and options (Valkey's order: the min idle time, the IDs, the options).
bool ParseClaimOptions(CommandContext& ctx, ArgList args, ClaimOptions& out) {
  if (!ParseClaimNumber(ctx, args[4], &out.min_idle, "min-idle-time")) return false;
  out.min_idle = std::max<int64_t>(out.min_idle, 0);
  size_t j = 5;
  for (; j < args.size(); ++j) {
    std::optional<StreamId> id = ParseStrictId(args[j]);
    if (!id) break;
    out.ids.push_back(*id);
  }
  for (; j < args.size(); ++j) {
    const bool more = j + 1 < args.size();
    const std::string_view opt = args[j];
    if (EqualsIgnoreCase(opt, "force")) {
      out.force = true;
    } else if (EqualsIgnoreCase(opt, "justid")) {
      out.justid = true;
    } else if (EqualsIgnoreCase(opt, "idle") && more) {
      if (!ParseClaimNumber(ctx, args[++j], &out.delivery_ms, "IDLE option")) return false;
      out.delivery_ms = Since(ctx.now_ms, out.delivery_ms);
    } else if (EqualsIgnoreCase(opt, "time") && more) {
      if (!ParseClaimNumber(ctx, args[++j], &out.delivery_ms, "TIME option")) return false;
    } else if (EqualsIgnoreCase(opt, "retrycount") && more) {
      if (!ParseClaimNumber(ctx, args[++j], &out.retry_count, "RETRYCOUNT option")) return false;
    } else if (EqualsIgnoreCase(opt, "lastid") && more) {
      out.last_id = ParseStrictId(args[++j]);
      if (!out.last_id) {
        ctx.reply.Error(kInvalidId);
        return false;
      }
    } else {
      ctx.reply.Error("ERR Unrecognized XCLAIM option '" + std::string(opt) + "'");
      return false;
    }
  }
  if (out.delivery_ms < 0 || out.delivery_ms > ctx.now_ms) out.delivery_ms = ctx.now_ms;
  return true;
}

// A claim in progress: the pending entries it moves and drops, and the reply's entries.
struct Claim {
  const Stream& stream;
  std::string_view group;
  std::string_view consumer;
  crdt::Key::StreamEdit edit;
  std::vector<Delivered> claimed;
  std::vector<StreamId> deleted;

  // The entry is gone from the stream: its pending entry is dropped.
  void Drop(StreamId id) {
    edit.group_remove.push_back(PendingOf(group, id));
    deleted.push_back(id);
  }
  void Take(StreamId id, GroupValue pending, int64_t delivery_ms, int64_t retry, bool justid) {
    pending.owner = std::string(consumer);
    pending.seen_ms = delivery_ms;
    if (retry >= 0) {
      pending.deliveries = static_cast<uint64_t>(retry);
    } else if (!justid) {
      ++pending.deliveries;
    }
    edit.group_write.emplace_back(PendingOf(group, id), pending);
    std::optional<Stream::Fields> fields;
    if (!justid) {
      fields =
          stream.entries().lower_bound(crdt::StreamEntryKey{id, crdt::Dot{}})->second.ToVector();
    }
    claimed.emplace_back(id, std::move(fields));
  }
  // The op: the group (advanced to `last_id`) and the consumer first, then the entries.
  Result<void> Write(CommandContext& ctx, std::string_view key, GroupValue group_value) {
    edit.group_write.insert(
        edit.group_write.begin(),
        std::pair(ConsumerOf(group, consumer),
                  TouchedConsumer(stream, group, consumer, ctx.now_ms, !claimed.empty())));
    edit.group_write.insert(edit.group_write.begin(), std::pair(GroupOf(group), group_value));
    return WriteEdit(ctx, key, std::move(edit));
  }
};

void ReplyClaimed(CommandContext& ctx, const std::vector<Delivered>& claimed, bool justid) {
  if (!justid) return ReplyDelivered(ctx, claimed);
  ctx.reply.Array(claimed.size());
  for (const auto& [id, fields] : claimed) ctx.reply.Bulk(IdText(id));
}

void CmdXClaim(CommandContext& ctx, ArgList args) {
  auto target = FindClaimTarget(ctx, args);
  if (!target) return;
  ClaimOptions opts;
  if (!ParseClaimOptions(ctx, args, opts)) return;
  const Stream& stream = *target->first;
  GroupValue group = target->second;
  if (opts.last_id && *opts.last_id > group.last_id) group.last_id = *opts.last_id;
  Claim claim{stream, args[2], args[3], {}, {}, {}};
  for (StreamId id : opts.ids) {
    std::optional<GroupValue> pending = stream.FindSlot(PendingOf(args[2], id));
    if (!EntryExists(stream, id)) {
      if (pending) claim.Drop(id);
      continue;
    }
    bool created = false;
    if (!pending && opts.force) {
      pending = GroupValue{};
      pending->deliveries = 1;
      created = true;
    }
    if (!pending) continue;
    if (!created && opts.min_idle != 0 && Since(ctx.now_ms, pending->seen_ms) < opts.min_idle) {
      continue;
    }
    claim.Take(id, *pending, opts.delivery_ms, opts.retry_count, opts.justid);
  }
  const std::vector<Delivered> claimed = claim.claimed;
  Result<void> done = claim.Write(ctx, args[1], group);
  if (!done.ok()) {
    ctx.reply.Error(done.error());
    return;
  }
  ReplyClaimed(ctx, claimed, opts.justid);
}

void CmdXAutoClaim(CommandContext& ctx, ArgList args) {
  int64_t min_idle = 0;
  if (!ParseInt64(args[4], &min_idle)) {
    ctx.reply.Error("ERR Invalid min-idle-time argument for XAUTOCLAIM");
    return;
  }
  min_idle = std::max<int64_t>(min_idle, 0);
  bool exclusive = false;
  std::optional<StreamId> start = ParseIntervalId(args[5], 0, &exclusive);
  if (!start) {
    ctx.reply.Error(kInvalidId);
    return;
  }
  if (exclusive && !Incr(*start)) {
    ctx.reply.Error("ERR invalid start ID for the interval");
    return;
  }
  int64_t count = 100;
  bool justid = false;
  for (size_t j = 6; j < args.size(); ++j) {
    if (EqualsIgnoreCase(args[j], "count") && j + 1 < args.size()) {
      constexpr int64_t kMaxCount = std::numeric_limits<int64_t>::max() / 16;
      if (!ParseInt64(args[j + 1], &count) || count < 1 || count > kMaxCount) {
        ctx.reply.Error("ERR COUNT must be > 0");
        return;
      }
      ++j;
    } else if (EqualsIgnoreCase(args[j], "justid")) {
      justid = true;
    } else {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
  }
  auto target = FindClaimTarget(ctx, args);
  if (!target) return;
  const Stream& stream = *target->first;
  Claim claim{stream, args[2], args[3], {}, {}, {}};
  const std::vector<Pending> pending = PendingList(stream, args[2]);
  auto it = std::lower_bound(pending.begin(), pending.end(), *start,
                             [](const Pending& p, StreamId id) { return p.id < id; });
  int64_t attempts = count * 10;
  for (; attempts > 0 && count > 0 && it != pending.end(); ++it) {
    --attempts;
    if (!EntryExists(stream, it->id)) {
      claim.Drop(it->id);
      --count;
      continue;
    }
    if (min_idle != 0 && Since(ctx.now_ms, it->value.seen_ms) < min_idle) continue;
    claim.Take(it->id, it->value, ctx.now_ms, -1, justid);
    --count;
  }
  const StreamId next = it == pending.end() ? StreamId{} : it->id;
  const std::vector<Delivered> claimed = claim.claimed;
  const std::vector<StreamId> deleted = claim.deleted;
  Result<void> done = claim.Write(ctx, args[1], target->second);
  if (!done.ok()) {
    ctx.reply.Error(done.error());
    return;
  }
  ctx.reply.Array(3);
  ctx.reply.Bulk(IdText(next));
  ReplyClaimed(ctx, claimed, justid);
  ctx.reply.Array(deleted.size());
  for (StreamId id : deleted) ctx.reply.Bulk(IdText(id));
}

// ---- XINFO GROUPS, XINFO CONSUMERS ----------------------------------------------------------

// XINFO's key lookup: "no such key" for a missing key.
const Stream* FindInfoStream(CommandContext& ctx, std::string_view key) {
  Result<const Stream*> found = FindStream(ctx, key, Access::kRead);
  if (!found.ok() || *found == nullptr) {
    found.ok() ? ctx.reply.Error("ERR no such key") : ctx.reply.Error(found.error());
    return nullptr;
  }
  return *found;
}

// A group's last-delivered-id, entries-read and lag fields.
void ReplyGroupPosition(CommandContext& ctx, const Stream& stream, const StreamMeta& meta,
                        const GroupValue& group) {
  ctx.reply.Bulk("last-delivered-id");
  ctx.reply.Bulk(IdText(group.last_id));
  ctx.reply.Bulk("entries-read");
  ReplyOptional(ctx, group.entries_read == kInvalidRead
                         ? std::nullopt
                         : std::optional<int64_t>(group.entries_read));
  ctx.reply.Bulk("lag");
  ReplyOptional(ctx, Lag(stream, meta, group));
}

void ReplyGroupInfo(CommandContext& ctx, const Stream& stream, const StreamMeta& meta,
                    const std::string& name) {
  const GroupValue group = stream.FindSlot(GroupOf(name)).value_or(GroupValue{});
  ctx.reply.Map(6);
  ctx.reply.Bulk("name");
  ctx.reply.Bulk(name);
  ctx.reply.Bulk("consumers");
  ctx.reply.Integer(static_cast<int64_t>(Consumers(stream, name).size()));
  ctx.reply.Bulk("pending");
  ctx.reply.Integer(static_cast<int64_t>(PendingList(stream, name).size()));
  ReplyGroupPosition(ctx, stream, meta, group);
}

void CmdXInfoGroups(CommandContext& ctx, ArgList args) {
  const Stream* stream = FindInfoStream(ctx, args[2]);
  if (stream == nullptr) return;
  const StreamMeta meta = stream->Meta();
  const std::vector<std::string> names = stream->GroupNames();
  ctx.reply.Array(names.size());
  for (const std::string& name : names) ReplyGroupInfo(ctx, *stream, meta, name);
}

void CmdXInfoConsumers(CommandContext& ctx, ArgList args) {
  const Stream* stream = FindInfoStream(ctx, args[2]);
  if (stream == nullptr) return;
  if (!stream->FindSlot(GroupOf(args[3]))) {
    ctx.reply.Error("NOGROUP No such consumer group '" + std::string(args[3]) + "' for key name '" +
                    std::string(args[2]) + "'");
    return;
  }
  const std::vector<Consumer> consumers = Consumers(*stream, args[3]);
  ctx.reply.Array(consumers.size());
  for (const Consumer& c : consumers) {
    ctx.reply.Map(4);
    ctx.reply.Bulk("name");
    ctx.reply.Bulk(c.name);
    ctx.reply.Bulk("pending");
    ctx.reply.Integer(static_cast<int64_t>(PendingList(*stream, args[3], c.name).size()));
    ctx.reply.Bulk("idle");
    ctx.reply.Integer(std::max<int64_t>(Since(ctx.now_ms, c.value.seen_ms), 0));
    ctx.reply.Bulk("inactive");
    ctx.reply.Integer(
        c.value.active_ms == -1 ? -1 : std::max<int64_t>(Since(ctx.now_ms, c.value.active_ms), 0));
  }
}

// XINFO STREAM FULL's view of one group's pending entries (at most `count`, 0: all).
void ReplyFullPending(CommandContext& ctx, const std::vector<Pending>& pending, size_t count,
                      bool with_owner) {
  const size_t shown = count != 0 ? std::min(count, pending.size()) : pending.size();
  ctx.reply.Array(shown);
  for (size_t i = 0; i < shown; ++i) {
    ctx.reply.Array(with_owner ? 4 : 3);
    ctx.reply.Bulk(IdText(pending[i].id));
    if (with_owner) ctx.reply.Bulk(pending[i].value.owner);
    ctx.reply.Integer(pending[i].value.seen_ms);
    ctx.reply.Integer(static_cast<int64_t>(pending[i].value.deliveries));
  }
}

void ReplyFullGroup(CommandContext& ctx, const Stream& stream, const StreamMeta& meta,
                    const std::string& name, size_t count) {
  const GroupValue group = stream.FindSlot(GroupOf(name)).value_or(GroupValue{});
  const std::vector<Pending> pending = PendingList(stream, name);
  ctx.reply.Map(7);
  ctx.reply.Bulk("name");
  ctx.reply.Bulk(name);
  ReplyGroupPosition(ctx, stream, meta, group);
  ctx.reply.Bulk("pel-count");
  ctx.reply.Integer(static_cast<int64_t>(pending.size()));
  ctx.reply.Bulk("pending");
  ReplyFullPending(ctx, pending, count, true);
  const std::vector<Consumer> consumers = Consumers(stream, name);
  ctx.reply.Bulk("consumers");
  ctx.reply.Array(consumers.size());
  for (const Consumer& c : consumers) {
    const std::vector<Pending> own = PendingList(stream, name, c.name);
    ctx.reply.Map(5);
    ctx.reply.Bulk("name");
    ctx.reply.Bulk(c.name);
    ctx.reply.Bulk("seen-time");
    ctx.reply.Integer(c.value.seen_ms);
    ctx.reply.Bulk("active-time");
    ctx.reply.Integer(c.value.active_ms);
    ctx.reply.Bulk("pel-count");
    ctx.reply.Integer(static_cast<int64_t>(own.size()));
    ctx.reply.Bulk("pending");
    ReplyFullPending(ctx, own, count, false);
  }
}

void CmdXGroupHelp(CommandContext& ctx, ArgList) {
  ReplyHelp(ctx, {
                     "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                     "CREATE <key> <groupname> <id|$> [option]",
                     "    Create a new consumer group. Options are:",
                     "    * MKSTREAM",
                     "      Create the empty stream if it does not exist.",
                     "    * ENTRIESREAD entries_read",
                     "      Set the group's entries_read counter (internal use).",
                     "CREATECONSUMER <key> <groupname> <consumer>",
                     "    Create a new consumer in the specified group.",
                     "DELCONSUMER <key> <groupname> <consumer>",
                     "    Remove the specified consumer.",
                     "DESTROY <key> <groupname>",
                     "    Remove the specified group.",
                     "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
                     "    Set the current group ID and entries_read counter.",
                     "HELP",
                     "    Print this help.",
                 });
}

void CmdXInfoHelp(CommandContext& ctx, ArgList) {
  ReplyHelp(ctx, {
                     "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                     "CONSUMERS <key> <groupname>",
                     "    Show consumers of <groupname>.",
                     "GROUPS <key>",
                     "    Show the stream consumer groups.",
                     "STREAM <key> [FULL [COUNT <count>]",
                     "    Show information about the stream.",
                     "HELP",
                     "    Print this help.",
                 });
}

}  // namespace

size_t streams::GroupCount(const Stream& stream) { return stream.GroupNames().size(); }

void streams::ReplyGroupsFull(CommandContext& ctx, const Stream& stream, size_t count) {
  const StreamMeta meta = stream.Meta();
  const std::vector<std::string> names = stream.GroupNames();
  ctx.reply.Array(names.size());
  for (const std::string& name : names) ReplyFullGroup(ctx, stream, meta, name, count);
}

void streams::RegisterXInfoGroupSubcommands(std::vector<CommandSpec>& subcommands) {
  // clang-format off
  constexpr uint32_t kR = kAclRead | kAclStream;
  subcommands.push_back({.name = "groups", .arity = 3, .flags = kReadOnly, .keys = {.first = 2, .last = 2, .step = 1}, .acl = kR | kAclSlow, .handler = &CmdXInfoGroups, .group = "stream", .summary = "Returns a list of the consumer groups of a stream.", .since = "5.0.0", .complexity = "O(1)"});
  subcommands.push_back({.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclStream | kAclSlow, .handler = &CmdXInfoHelp, .group = "stream", .summary = "Returns helpful text about the different subcommands.", .since = "5.0.0", .complexity = "O(1)"});
  subcommands.push_back({.name = "consumers", .arity = 4, .flags = kReadOnly, .keys = {.first = 2, .last = 2, .step = 1}, .acl = kR | kAclSlow, .handler = &CmdXInfoConsumers, .group = "stream", .summary = "Returns a list of the consumers in a consumer group.", .since = "5.0.0", .complexity = "O(1)"});
  // clang-format on
}

void RegisterStreamGroupFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kW = kAclWrite | kAclStream;
  constexpr uint32_t kR = kAclRead | kAclStream;
  constexpr KeySpec kOne{.first = 1, .last = 1, .step = 1};
  constexpr KeySpec kSecond{.first = 2, .last = 2, .step = 1};
  registry.Add({.name = "xgroup", .arity = -2, .acl = kAclSlow, .group = "stream", .summary = "A container for consumer groups commands.", .since = "5.0.0", .complexity = "Depends on subcommand.", .subcommands = {
      {.name = "create", .arity = -5, .flags = kWrite | kDenyOom, .keys = kSecond, .acl = kW | kAclSlow, .handler = &CmdXGroupCreate, .group = "stream", .summary = "Creates a consumer group.", .since = "5.0.0", .complexity = "O(1)"},
      {.name = "setid", .arity = -5, .flags = kWrite, .keys = kSecond, .acl = kW | kAclSlow, .handler = &CmdXGroupSetId, .group = "stream", .summary = "Sets the last-delivered ID of a consumer group.", .since = "5.0.0", .complexity = "O(1)"},
      {.name = "destroy", .arity = 4, .flags = kWrite, .keys = kSecond, .acl = kW | kAclSlow, .handler = &CmdXGroupDestroy, .group = "stream", .summary = "Destroys a consumer group.", .since = "5.0.0", .complexity = "O(N) where N is the number of entries in the group's pending entries list (PEL)."},
      {.name = "createconsumer", .arity = 5, .flags = kWrite | kDenyOom, .keys = kSecond, .acl = kW | kAclSlow, .handler = &CmdXGroupCreateConsumer, .group = "stream", .summary = "Creates a consumer in a consumer group.", .since = "6.2.0", .complexity = "O(1)"},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclStream | kAclSlow, .handler = &CmdXGroupHelp, .group = "stream", .summary = "Returns helpful text about the different subcommands.", .since = "5.0.0", .complexity = "O(1)"},
      {.name = "delconsumer", .arity = 5, .flags = kWrite, .keys = kSecond, .acl = kW | kAclSlow, .handler = &CmdXGroupDelConsumer, .group = "stream", .summary = "Deletes a consumer from a consumer group.", .since = "5.0.0", .complexity = "O(1)"},
  }});
  registry.Add({.name = "xreadgroup", .arity = -7, .flags = kWrite | kBlocking | kMovableKeys, .keys = {.streams_keyword = true}, .acl = kW | kAclSlow | kAclBlocking, .handler = &CmdXReadGroup, .group = "stream", .summary = "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", .since = "5.0.0", .complexity = "For each stream mentioned: O(M) with M the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data."});
  registry.Add({.name = "xack", .arity = -4, .flags = kWrite | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdXAck, .group = "stream", .summary = "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", .since = "5.0.0", .complexity = "O(1) for each message ID processed."});
  registry.Add({.name = "xpending", .arity = -3, .flags = kReadOnly, .keys = kOne, .acl = kR | kAclSlow, .handler = &CmdXPending, .group = "stream", .summary = "Returns the information and entries from a stream consumer group's pending entries list.", .since = "5.0.0", .complexity = "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer."});
  registry.Add({.name = "xclaim", .arity = -6, .flags = kWrite | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdXClaim, .group = "stream", .summary = "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", .since = "5.0.0", .complexity = "O(log N) with N being the number of messages in the PEL of the consumer group."});
  registry.Add({.name = "xautoclaim", .arity = -6, .flags = kWrite | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdXAutoClaim, .group = "stream", .summary = "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", .since = "6.2.0", .complexity = "O(1) if COUNT is small."});
  // clang-format on
}

}  // namespace lattice::server
