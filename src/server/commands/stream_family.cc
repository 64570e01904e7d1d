// The stream command family: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XSETID, XINFO STREAM and
// XREAD (with BLOCK, through server/blocking.h), on the CRDT Stream (crdt/stream.h). Replies and
// errors follow Valkey 9's t_stream.c.
//
// Writes and the ops they ship (docs/commands/stream.md says what each does under concurrency):
// - XADD adds one entry with a fresh dot and writes the stream's metadata (last ID, entries
//   added), in one op with the entries its MAXLEN/MINID trims.
// - XDEL and XTRIM remove the entries they saw (observed remove): an entry a concurrent XADD
//   wrote survives. XDEL also records the max deleted ID.
// - XSETID writes the metadata.

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/common/assert.h"
#include "server/commands/stream_util.h"
#include "server/server.h"

namespace lattice::server {

using crdt::Stream;
using crdt::StreamEntryKey;
using crdt::StreamId;
using crdt::StreamMeta;

namespace streams {

constexpr std::string_view kIdTooSmall =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
constexpr std::string_view kIdZero = "ERR The ID specified in XADD must be greater than 0-0";
constexpr std::string_view kExhausted =
    "ERR The stream has exhausted the last possible ID, unable to add more items";
// Valkey's stream-node-max-entries: `~` trims whole nodes of this many entries.
constexpr size_t kNodeEntries = 100;

// The visible stream at `key`; nullptr when the key is missing. Valid until the next write.
Result<const Stream*> FindStream(CommandContext& ctx, std::string_view key, Access access) {
  Result<KeyRef> found = access == Access::kRead ? ctx.Read(key, crdt::ObjectType::kStream)
                                                 : ctx.Peek(key, crdt::ObjectType::kStream);
  if (!found.ok()) {
    return Unexpected(found.error());
  }
  if (*found == nullptr) {
    return static_cast<const Stream*>(nullptr);
  }
  const crdt::Key* full = (*found).full();
  LATTICE_ASSERT(full != nullptr);  // a stream is never stored compact
  return &full->stream();
}

// Valkey's string2ull: a strict decimal, else strtoull's reading of the whole text.
bool ParseU64(std::string_view text, uint64_t* value) {
  int64_t ll = 0;
  if (ParseInt64(text, &ll)) {
    if (ll < 0) return false;
    *value = static_cast<uint64_t>(ll);
    return true;
  }
  const std::string copy(text);
  errno = 0;
  char* end = nullptr;
  const unsigned long long parsed = std::strtoull(copy.c_str(), &end, 10);
  if (errno == EINVAL || errno == ERANGE || copy.empty() || *end != '\0') {
    return false;
  }
  *value = parsed;
  return true;
}

// Valkey's streamGenericParseIDOrReply: "-" and "+" (unless strict), "<ms>", "<ms>-<seq>", and
// "<ms>-*" where `allow_auto_seq`.
std::optional<ParsedId> ParseId(std::string_view text, uint64_t missing_seq, bool strict,
                                bool allow_auto_seq) {
  if (text.size() > 127) return std::nullopt;
  if (text == "-" || text == "+") {
    if (strict) return std::nullopt;
    return ParsedId{text == "-" ? StreamId{} : StreamId::Max(), true};
  }
  const size_t dash = text.find('-');
  ParsedId out;
  if (!ParseU64(text.substr(0, dash), &out.id.ms)) return std::nullopt;
  if (dash == std::string_view::npos) {
    out.id.seq = missing_seq;
    return out;
  }
  const std::string_view seq = text.substr(dash + 1);
  if (allow_auto_seq && seq == "*") {
    out.seq_given = false;
    return out;
  }
  // strchr cuts at the first '-': a second one makes the sequence unparsable, as in Valkey.
  if (!ParseU64(seq, &out.id.seq)) return std::nullopt;
  return out;
}

std::optional<StreamId> ParseStrictId(std::string_view text, uint64_t missing_seq) {
  auto parsed = ParseId(text, missing_seq, true);
  if (!parsed) return std::nullopt;
  return parsed->id;
}

bool Incr(StreamId& id) {
  if (id.seq == UINT64_MAX) {
    if (id.ms == UINT64_MAX) return false;
    ++id.ms;
    id.seq = 0;
    return true;
  }
  ++id.seq;
  return true;
}

bool Decr(StreamId& id) {
  if (id.seq == 0) {
    if (id.ms == 0) return false;
    --id.ms;
    id.seq = UINT64_MAX;
    return true;
  }
  --id.seq;
  return true;
}

std::string IdText(StreamId id) { return std::to_string(id.ms) + "-" + std::to_string(id.seq); }

void ReplyEntry(CommandContext& ctx, StreamId id, const Stream::Fields& fields) {
  ctx.reply.Array(2);
  ctx.reply.Bulk(IdText(id));
  ctx.reply.Array(fields.size());
  for (const std::string& f : fields) ctx.reply.Bulk(f);
}

void ReplyEntry(CommandContext& ctx, StreamId id, const crdt::StreamFieldsView& fields) {
  ctx.reply.Array(2);
  ctx.reply.Bulk(IdText(id));
  ctx.reply.Array(fields.size());
  for (std::string_view f : fields) ctx.reply.Bulk(f);
}

// The entries with start <= ID <= end, forward or in reverse, at most `count` (0: all).
std::vector<Stream::Entries::const_iterator> RangeOf(const Stream& stream, StreamId start,
                                                     StreamId end, size_t count, bool rev) {
  std::vector<Stream::Entries::const_iterator> out;
  if (start > end) return out;
  const Stream::Entries& entries = stream.entries();
  auto first = entries.lower_bound(StreamEntryKey{start, crdt::Dot{}});
  auto last = entries.upper_bound(StreamEntryKey{end, crdt::Dot{UINT64_MAX, UINT64_MAX}});
  if (!rev) {
    for (auto it = first; it != last && (count == 0 || out.size() < count); ++it) {
      out.push_back(it);
    }
  } else if (first != entries.end()) {  // blocks are coded forwards: scanned a block at a time
    const StreamEntryKey lowest = first->first;
    entries.ScanBackward(StreamEntryKey{end, crdt::Dot{UINT64_MAX, UINT64_MAX}},
                         [&](const Stream::Entries::const_iterator& it) {
                           if (it->first < lowest) return false;
                           out.push_back(it);
                           return count == 0 || out.size() < count;
                         });
  }
  return out;
}

void ReplyRange(CommandContext& ctx, const std::vector<Stream::Entries::const_iterator>& range) {
  ctx.reply.Array(range.size());
  for (const auto& it : range) ReplyEntry(ctx, it->first.id, it->second);
}

}  // namespace streams

namespace {

using namespace streams;  // NOLINT(build/namespaces): this family's own helpers

// ---- trimming -------------------------------------------------------------------------------

enum class TrimStrategy { kNone, kMaxLen, kMinId };

struct TrimArgs {
  TrimStrategy strategy = TrimStrategy::kNone;
  bool approx = false;
  int64_t maxlen = 0;
  StreamId minid;
  int64_t limit = 0;  // 0: none
};

// The entries a trim removes (Valkey's streamTrim): whole nodes of kNodeEntries entries from the
// oldest, then, unless approximate, single entries. `extra` is an entry about to be added (XADD):
// it counts as the newest. Reads the entries from the oldest only as far as the trim goes, so a
// capped stream's XADD that trims one entry costs O(1) entries, not O(length).
std::vector<StreamEntryKey> TrimmedEntries(const Stream* stream, const TrimArgs& trim,
                                           std::optional<StreamId> extra, bool* extra_trimmed) {
  const size_t stored = stream != nullptr ? stream->Size() : 0;
  const size_t length = stored + (extra ? 1 : 0);
  if (trim.strategy == TrimStrategy::kMaxLen && length <= static_cast<uint64_t>(trim.maxlen)) {
    return {};
  }
  std::vector<StreamEntryKey> ids;
  Stream::Entries::const_iterator next;
  if (stream != nullptr) next = stream->entries().begin();
  auto id_at = [&](size_t i) {  // the i-th oldest (i < length), read on demand
    for (; ids.size() <= i; ++next) {
      if (ids.size() == stored) {
        ids.push_back(StreamEntryKey{*extra, crdt::Dot{}});
        break;
      }
      ids.push_back(next->first);
    }
    return ids[i].id;
  };
  size_t removed = 0;
  while (removed < length) {
    const size_t node = std::min(kNodeEntries, length - removed);
    if (trim.limit != 0 && static_cast<int64_t>(removed + node) > trim.limit) break;
    const bool whole = trim.strategy == TrimStrategy::kMaxLen
                           ? length - removed - node >= static_cast<uint64_t>(trim.maxlen)
                           : id_at(removed + node - 1) < trim.minid;
    if (whole) {
      removed += node;
      continue;
    }
    if (trim.approx) break;
    if (trim.strategy == TrimStrategy::kMaxLen) {
      removed = length - static_cast<size_t>(trim.maxlen);
    } else {
      while (removed < length && id_at(removed) < trim.minid) ++removed;
    }
    break;
  }
  if (removed > 0) id_at(removed - 1);
  ids.resize(removed);
  if (extra && removed == length) {
    ids.pop_back();
    *extra_trimmed = true;
  }
  return ids;
}

// Valkey's streamParseAddOrTrimArgsOrReply. For XADD, *field_pos receives the index of the first
// field and *id the ID argument (nullopt: "*").
struct AddArgs {
  TrimArgs trim;
  bool nomkstream = false;
  bool id_given = false;
  ParsedId id;
  size_t field_pos = 0;
};

std::optional<AddArgs> ParseAddOrTrim(CommandContext& ctx, ArgList args, bool xadd) {
  AddArgs out;
  bool limit_given = false;
  size_t i = 2;
  for (; i < args.size(); ++i) {
    const bool more = i + 1 < args.size();
    const std::string_view opt = args[i];
    if (xadd && opt == "*") {
      break;
    } else if (EqualsIgnoreCase(opt, "maxlen") && more) {
      out.trim.approx = false;
      if (args[i + 1] == "~") {
        out.trim.approx = true;
        ++i;
      } else if (args[i + 1] == "=") {
        ++i;
      }
      if (i + 1 >= args.size() || !ParseInt64(args[i + 1], &out.trim.maxlen)) {
        ctx.reply.Error(errors::kNotInteger);
        return std::nullopt;
      }
      if (out.trim.maxlen < 0) {
        ctx.reply.Error("ERR The MAXLEN argument must be >= 0.");
        return std::nullopt;
      }
      ++i;
      out.trim.strategy = TrimStrategy::kMaxLen;
    } else if (EqualsIgnoreCase(opt, "minid") && more) {
      out.trim.approx = false;
      if (args[i + 1] == "~") {
        out.trim.approx = true;
        ++i;
      } else if (args[i + 1] == "=") {
        ++i;
      }
      std::optional<StreamId> minid;
      if (i + 1 < args.size()) minid = ParseStrictId(args[i + 1]);
      if (!minid) {
        ctx.reply.Error(kInvalidId);
        return std::nullopt;
      }
      out.trim.minid = *minid;
      ++i;
      out.trim.strategy = TrimStrategy::kMinId;
    } else if (xadd && EqualsIgnoreCase(opt, "nomkstream")) {
      out.nomkstream = true;
    } else if (EqualsIgnoreCase(opt, "limit") && more) {
      int64_t limit = 0;
      if (!ParseInt64(args[i + 1], &limit)) {
        ctx.reply.Error(errors::kNotInteger);
        return std::nullopt;
      }
      if (limit < 0) {
        ctx.reply.Error("ERR The LIMIT argument must be >= 0.");
        return std::nullopt;
      }
      out.trim.limit = limit;
      limit_given = true;
      ++i;
    } else if (xadd) {
      auto id = ParseId(args[i], 0, true, /*allow_auto_seq=*/true);
      if (!id) {
        ctx.reply.Error(kInvalidId);
        return std::nullopt;
      }
      out.id = *id;
      out.id_given = true;
      break;
    } else {
      ctx.reply.Error(errors::kSyntax);
      return std::nullopt;
    }
  }
  out.field_pos = i + 1;
  if (limit_given && out.trim.strategy == TrimStrategy::kNone) {
    ctx.reply.Error(
        "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
    return std::nullopt;
  }
  if (!xadd && out.trim.strategy == TrimStrategy::kNone) {
    ctx.reply.Error("ERR syntax error, XTRIM must be called with a trimming strategy");
    return std::nullopt;
  }
  if (limit_given) {
    if (!out.trim.approx) {
      ctx.reply.Error("ERR syntax error, LIMIT cannot be used without the special ~ option");
      return std::nullopt;
    }
  } else {
    out.trim.limit = out.trim.approx ? static_cast<int64_t>(100 * kNodeEntries) : 0;
  }
  return out;
}

// ---- XADD -----------------------------------------------------------------------------------

// The ID an XADD gives (Valkey's streamAppendItem), or nullopt: not above the stream's last ID.
std::optional<StreamId> NextId(const StreamMeta& meta, const AddArgs& add, int64_t now_ms) {
  const StreamId last = meta.last_id;
  if (!add.id_given) {
    const uint64_t ms = static_cast<uint64_t>(std::max<int64_t>(now_ms, 0));
    if (ms > last.ms) return StreamId{ms, 0};
    StreamId next = last;
    if (!Incr(next)) return std::nullopt;
    return next;
  }
  if (!add.id.seq_given) {
    const uint64_t ms = add.id.id.ms;
    if (ms == last.ms && last.seq != UINT64_MAX) return StreamId{ms, last.seq + 1};
    if (ms > last.ms) return StreamId{ms, 0};
    return std::nullopt;
  }
  if (add.id.id <= last) return std::nullopt;
  return add.id.id;
}

}  // namespace

// One stream command's change of `key`, as one op (Key::XEdit).
Result<void> streams::WriteEdit(CommandContext& ctx, std::string_view key,
                                crdt::Key::StreamEdit edit) {
  return ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
    return k.XEdit(std::move(edit), w, shard);
  });
}

namespace {

void CmdXAdd(CommandContext& ctx, ArgList args) {
  std::optional<AddArgs> add = ParseAddOrTrim(ctx, args, true);
  if (!add) return;
  const size_t fields = args.size() >= add->field_pos ? args.size() - add->field_pos : 0;
  if (fields < 2 || fields % 2 == 1) {
    ctx.reply.Error("ERR wrong number of arguments for 'xadd' command");
    return;
  }
  if (add->id_given && add->id.seq_given && add->id.id == StreamId{}) {
    ctx.reply.Error(kIdZero);
    return;
  }
  Result<const Stream*> stream = FindStream(ctx, args[1], Access::kWrite);
  if (!stream.ok()) {
    ctx.reply.Error(stream.error());
    return;
  }
  if (*stream == nullptr && add->nomkstream) {
    ctx.reply.Null();
    return;
  }
  const StreamMeta meta = *stream != nullptr ? (*stream)->Meta() : StreamMeta{};
  if (meta.last_id == StreamId::Max()) {
    ctx.reply.Error(kExhausted);
    return;
  }
  std::optional<StreamId> id = NextId(meta, *add, ctx.now_ms);
  if (!id) {
    ctx.reply.Error(kIdTooSmall);
    return;
  }
  bool self_trimmed = false;
  std::vector<StreamEntryKey> trimmed;
  if (add->trim.strategy != TrimStrategy::kNone) {
    trimmed = TrimmedEntries(*stream, add->trim, *id, &self_trimmed);
  }
  crdt::Key::StreamEdit edit;
  if (!self_trimmed) {
    edit.adds.emplace_back(*id, Stream::Fields(args.begin() + add->field_pos, args.end()));
  }
  edit.remove = std::move(trimmed);
  edit.meta = StreamMeta{*id, meta.max_deleted, meta.entries_added + 1};
  edit.create = true;
  Result<void> done = WriteEdit(ctx, args[1], std::move(edit));
  done.ok() ? ctx.reply.Bulk(IdText(*id)) : ctx.reply.Error(done.error());
}

// ---- XTRIM, XDEL, XSETID --------------------------------------------------------------------

void CmdXTrim(CommandContext& ctx, ArgList args) {
  std::optional<AddArgs> trim = ParseAddOrTrim(ctx, args, false);
  if (!trim) return;
  Result<const Stream*> stream = FindStream(ctx, args[1], Access::kWrite);
  if (!stream.ok() || *stream == nullptr) {
    stream.ok() ? ctx.reply.Integer(0) : ctx.reply.Error(stream.error());
    return;
  }
  bool unused = false;
  std::vector<StreamEntryKey> trimmed = TrimmedEntries(*stream, trim->trim, std::nullopt, &unused);
  const size_t count = trimmed.size();
  if (count > 0) {
    crdt::Key::StreamEdit edit;
    edit.remove = std::move(trimmed);
    Result<void> done = WriteEdit(ctx, args[1], std::move(edit));
    if (!done.ok()) {
      ctx.reply.Error(done.error());
      return;
    }
  }
  ctx.reply.Integer(static_cast<int64_t>(count));
}

void CmdXDel(CommandContext& ctx, ArgList args) {
  Result<const Stream*> stream = FindStream(ctx, args[1], Access::kWrite);
  if (!stream.ok() || *stream == nullptr) {
    stream.ok() ? ctx.reply.Integer(0) : ctx.reply.Error(stream.error());
    return;
  }
  std::vector<StreamId> ids;
  for (size_t i = 2; i < args.size(); ++i) {
    std::optional<StreamId> id = ParseStrictId(args[i]);
    if (!id) {
      ctx.reply.Error(kInvalidId);
      return;
    }
    ids.push_back(*id);
  }
  crdt::Key::StreamEdit edit;
  StreamMeta meta = (*stream)->Meta();
  size_t deleted = 0;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (const StreamId& id : ids) {
    const auto& entries = (*stream)->entries();
    bool any = false;
    for (auto it = entries.lower_bound(StreamEntryKey{id, crdt::Dot{}});
         it != entries.end() && it->first.id == id; ++it) {
      edit.remove.push_back(it->first);
      any = true;
    }
    if (any) {
      ++deleted;
      meta.max_deleted = std::max(meta.max_deleted, id);
    }
  }
  if (deleted > 0) {
    edit.meta = meta;
    Result<void> done = WriteEdit(ctx, args[1], std::move(edit));
    if (!done.ok()) {
      ctx.reply.Error(done.error());
      return;
    }
  }
  ctx.reply.Integer(static_cast<int64_t>(deleted));
}

void CmdXSetId(CommandContext& ctx, ArgList args) {
  std::optional<StreamId> id = ParseStrictId(args[2]);
  if (!id) {
    ctx.reply.Error(kInvalidId);
    return;
  }
  int64_t entries_added = -1;
  StreamId max_deleted;
  for (size_t i = 3; i < args.size();) {
    const bool more = i + 1 < args.size();
    if (EqualsIgnoreCase(args[i], "entriesadded") && more) {
      if (!ParseInt64(args[i + 1], &entries_added)) {
        ctx.reply.Error(errors::kNotInteger);
        return;
      }
      if (entries_added < 0) {
        ctx.reply.Error("ERR entries_added must be positive");
        return;
      }
      i += 2;
    } else if (EqualsIgnoreCase(args[i], "maxdeletedid") && more) {
      std::optional<StreamId> parsed = ParseStrictId(args[i + 1]);
      if (!parsed) {
        ctx.reply.Error(kInvalidId);
        return;
      }
      if (*id < *parsed) {
        ctx.reply.Error(
            "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
        return;
      }
      max_deleted = *parsed;
      i += 2;
    } else {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
  }
  Result<const Stream*> stream = FindStream(ctx, args[1], Access::kWrite);
  if (!stream.ok() || *stream == nullptr) {
    stream.ok() ? ctx.reply.Error("ERR no such key") : ctx.reply.Error(stream.error());
    return;
  }
  StreamMeta meta = (*stream)->Meta();
  if (std::optional<StreamId> top = (*stream)->LastId()) {
    if (*id < *top) {
      ctx.reply.Error("ERR The ID specified in XSETID is smaller than the target stream top item");
      return;
    }
    if (entries_added != -1 && (*stream)->Size() > static_cast<uint64_t>(entries_added)) {
      ctx.reply.Error(
          "ERR The entries_added specified in XSETID is smaller than the target stream length");
      return;
    }
  }
  if (max_deleted == StreamId{} && *id < meta.max_deleted) {
    ctx.reply.Error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id");
    return;
  }
  meta.last_id = *id;
  if (entries_added != -1) meta.entries_added = static_cast<uint64_t>(entries_added);
  if (max_deleted != StreamId{}) meta.max_deleted = max_deleted;
  crdt::Key::StreamEdit edit;
  edit.meta = meta;
  Result<void> done = WriteEdit(ctx, args[1], std::move(edit));
  done.ok() ? ctx.reply.Ok() : ctx.reply.Error(done.error());
}

// ---- reads ----------------------------------------------------------------------------------

void CmdXLen(CommandContext& ctx, ArgList args) {
  Result<const Stream*> stream = FindStream(ctx, args[1], Access::kRead);
  if (!stream.ok()) {
    ctx.reply.Error(stream.error());
    return;
  }
  ctx.reply.Integer(*stream != nullptr ? static_cast<int64_t>((*stream)->Size()) : 0);
}

}  // namespace

// Valkey's streamParseIntervalIDOrReply: "(" makes the bound exclusive (and the ID strict).
std::optional<StreamId> streams::ParseIntervalId(std::string_view text, uint64_t missing_seq,
                                                 bool* exclusive) {
  *exclusive = text.size() > 1 && text[0] == '(';
  if (*exclusive) return ParseStrictId(text.substr(1), missing_seq);
  auto parsed = ParseId(text, missing_seq, false);
  if (!parsed) return std::nullopt;
  return parsed->id;
}

namespace {

void XRangeGeneric(CommandContext& ctx, ArgList args, bool rev) {
  const std::string_view start_arg = rev ? args[3] : args[2];
  const std::string_view end_arg = rev ? args[2] : args[3];
  bool start_ex = false;
  bool end_ex = false;
  std::optional<StreamId> start = ParseIntervalId(start_arg, 0, &start_ex);
  if (!start) {
    ctx.reply.Error(kInvalidId);
    return;
  }
  if (start_ex && !Incr(*start)) {
    ctx.reply.Error("ERR invalid start ID for the interval");
    return;
  }
  std::optional<StreamId> end = ParseIntervalId(end_arg, UINT64_MAX, &end_ex);
  if (!end) {
    ctx.reply.Error(kInvalidId);
    return;
  }
  if (end_ex && !Decr(*end)) {
    ctx.reply.Error("ERR invalid end ID for the interval");
    return;
  }
  int64_t count = -1;
  for (size_t j = 4; j < args.size(); ++j) {
    if (EqualsIgnoreCase(args[j], "count") && j + 1 < args.size()) {
      if (!ParseInt64(args[j + 1], &count)) {
        ctx.reply.Error(errors::kNotInteger);
        return;
      }
      count = std::max<int64_t>(count, 0);
      ++j;
    } else {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
  }
  Result<const Stream*> stream = FindStream(ctx, args[1], Access::kRead);
  if (!stream.ok()) {
    ctx.reply.Error(stream.error());
    return;
  }
  if (*stream == nullptr) {
    ctx.reply.Array(0);
    return;
  }
  if (count == 0) {
    ctx.reply.NullArray();
    return;
  }
  ReplyRange(ctx, RangeOf(**stream, *start, *end, count < 0 ? 0 : static_cast<size_t>(count), rev));
}

void CmdXRange(CommandContext& ctx, ArgList args) { XRangeGeneric(ctx, args, false); }
void CmdXRevRange(CommandContext& ctx, ArgList args) { XRangeGeneric(ctx, args, true); }

// ---- XREAD ----------------------------------------------------------------------------------

struct ReadArgs {
  std::vector<std::string> keys;
  std::vector<StreamId> after;  // serve entries with ID > after[i]
  size_t count = 0;             // 0: all
  std::optional<int64_t> block_ms;
};

// Serves every stream that has an entry after its ID; false (nothing written) when none has.
bool TryRead(CommandContext& ctx, const ReadArgs& read) {
  std::vector<std::pair<size_t, std::vector<Stream::Entries::const_iterator>>> served;
  for (size_t i = 0; i < read.keys.size(); ++i) {
    Result<const Stream*> stream = FindStream(ctx, read.keys[i], Access::kRead);
    if (!stream.ok() || *stream == nullptr) continue;
    std::optional<StreamId> last = (*stream)->LastId();
    if (!last || *last <= read.after[i]) continue;
    StreamId start = read.after[i];
    Incr(start);
    served.emplace_back(i, RangeOf(**stream, start, StreamId::Max(), read.count, false));
  }
  if (served.empty()) return false;
  const bool resp3 = ctx.reply.protocol() == Protocol::kResp3;
  if (resp3) {
    ctx.reply.Map(served.size());
  } else {
    ctx.reply.Array(served.size());
  }
  for (const auto& [i, range] : served) {
    if (!resp3) ctx.reply.Array(2);
    ctx.reply.Bulk(read.keys[i]);
    ReplyRange(ctx, range);
  }
  return true;
}

void CmdXRead(CommandContext& ctx, ArgList args) {
  ReadArgs read;
  size_t streams_arg = 0;
  size_t streams_count = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    const bool more = i + 1 < args.size();
    const std::string_view opt = args[i];
    if (EqualsIgnoreCase(opt, "block") && more) {
      ++i;
      int64_t ms = 0;
      if (!ParseInt64(args[i], &ms)) {
        ctx.reply.Error("ERR timeout is not an integer or out of range");
        return;
      }
      if (ms < 0) {
        ctx.reply.Error("ERR timeout is negative");
        return;
      }
      if (ms > 0 && ms > std::numeric_limits<int64_t>::max() - ctx.now_ms) {
        ctx.reply.Error("ERR timeout is out of range");
        return;
      }
      read.block_ms = ms > 0 ? ctx.now_ms + ms : 0;
    } else if (EqualsIgnoreCase(opt, "count") && more) {
      ++i;
      int64_t count = 0;
      if (!ParseInt64(args[i], &count)) {
        ctx.reply.Error(errors::kNotInteger);
        return;
      }
      read.count = static_cast<size_t>(std::max<int64_t>(count, 0));
    } else if (EqualsIgnoreCase(opt, "streams") && more) {
      streams_arg = i + 1;
      streams_count = args.size() - streams_arg;
      if (streams_count % 2 != 0) {
        ctx.reply.Error(
            "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be "
            "specified.");
        return;
      }
      streams_count /= 2;
      break;
    } else if (EqualsIgnoreCase(opt, "group") && args.size() - i - 1 >= 2) {
      ctx.reply.Error(
          "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
      return;
    } else if (EqualsIgnoreCase(opt, "noack")) {
      ctx.reply.Error(
          "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
      return;
    } else {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
  }
  if (streams_arg == 0) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  for (size_t i = 0; i < streams_count; ++i) {
    const std::string_view key = args[streams_arg + i];
    const std::string_view id_arg = args[streams_arg + streams_count + i];
    Result<const Stream*> stream = FindStream(ctx, key, Access::kRead);
    if (!stream.ok()) {
      ctx.reply.Error(stream.error());
      return;
    }
    StreamId after;
    if (id_arg == "$") {
      after = *stream != nullptr ? (*stream)->Meta().last_id : StreamId{};
    } else if (id_arg == "+") {
      // The last entry (Redis 7.4's XREAD +): everything after the one before it.
      std::optional<StreamId> last = *stream != nullptr ? (*stream)->LastId() : std::nullopt;
      after = last ? *last : (*stream != nullptr ? (*stream)->Meta().last_id : StreamId{});
      if (last) Decr(after);
    } else {
      std::optional<StreamId> parsed = ParseStrictId(id_arg);
      if (!parsed) {
        ctx.reply.Error(kInvalidId);
        return;
      }
      after = *parsed;
    }
    read.keys.emplace_back(key);
    read.after.push_back(after);
  }
  if (TryRead(ctx, read)) return;
  if (!read.block_ms.has_value() || !ctx.server.MayBlock()) {
    ctx.reply.NullArray();
    return;
  }
  BlockRequest request{.keys = read.keys, .deadline_ms = *read.block_ms};
  request.serve = [read](CommandContext& woken) { return TryRead(woken, read); };
  ctx.server.blocking().Block(ctx, args, std::move(request));
}

// ---- XINFO STREAM ---------------------------------------------------------------------------

void ReplyEntryOrNull(CommandContext& ctx, const Stream& stream, bool last) {
  if (stream.Size() == 0) {
    ctx.reply.Null();
    return;
  }
  const auto& entries = stream.entries();
  const auto it = last ? entries.find(entries.LastKey()) : entries.begin();
  ReplyEntry(ctx, it->first.id, it->second);
}

void CmdXInfoStream(CommandContext& ctx, ArgList args) {
  Result<const Stream*> found = FindStream(ctx, args[2], Access::kRead);
  if (!found.ok()) {
    ctx.reply.Error(found.error());
    return;
  }
  if (*found == nullptr) {
    ctx.reply.Error("ERR no such key");
    return;
  }
  bool full = false;
  int64_t count = 10;
  auto syntax = [&] {
    ctx.reply.Error("ERR unknown subcommand or wrong number of arguments for '" +
                    std::string(args[1]) + "'. Try XINFO HELP.");
  };
  if (args.size() > 3) {
    if (!EqualsIgnoreCase(args[3], "full")) return syntax();
    full = true;
    if (args.size() > 4) {
      if (args.size() != 6 || !EqualsIgnoreCase(args[4], "count")) return syntax();
      if (!ParseInt64(args[5], &count)) {
        ctx.reply.Error(errors::kNotInteger);
        return;
      }
      if (count < 0) count = 10;
    }
  }
  const Stream& stream = **found;
  const StreamMeta meta = stream.Meta();
  // Valkey's rax of listpack nodes, as this stream would fill it (kNodeEntries per node).
  const size_t nodes = (stream.Size() + kNodeEntries - 1) / kNodeEntries;
  ctx.reply.Map(full ? 9 : 10);
  ctx.reply.Bulk("length");
  ctx.reply.Integer(static_cast<int64_t>(stream.Size()));
  ctx.reply.Bulk("radix-tree-keys");
  ctx.reply.Integer(static_cast<int64_t>(nodes));
  ctx.reply.Bulk("radix-tree-nodes");
  ctx.reply.Integer(static_cast<int64_t>(nodes + 1));
  ctx.reply.Bulk("last-generated-id");
  ctx.reply.Bulk(IdText(meta.last_id));
  ctx.reply.Bulk("max-deleted-entry-id");
  ctx.reply.Bulk(IdText(meta.max_deleted));
  ctx.reply.Bulk("entries-added");
  ctx.reply.Integer(static_cast<int64_t>(meta.entries_added));
  ctx.reply.Bulk("recorded-first-entry-id");
  ctx.reply.Bulk(IdText(stream.FirstId().value_or(StreamId{})));
  if (!full) {
    ctx.reply.Bulk("groups");
    ctx.reply.Integer(static_cast<int64_t>(GroupCount(stream)));
    ctx.reply.Bulk("first-entry");
    ReplyEntryOrNull(ctx, stream, false);
    ctx.reply.Bulk("last-entry");
    ReplyEntryOrNull(ctx, stream, true);
    return;
  }
  ctx.reply.Bulk("entries");
  ReplyRange(ctx, RangeOf(stream, StreamId{}, StreamId::Max(), static_cast<size_t>(count), false));
  ctx.reply.Bulk("groups");
  ReplyGroupsFull(ctx, stream, static_cast<size_t>(count));
}

}  // namespace

void RegisterStreamFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kW = kAclWrite | kAclStream;
  constexpr uint32_t kR = kAclRead | kAclStream;
  constexpr KeySpec kOne{.first = 1, .last = 1, .step = 1};
  registry.Add({.name = "xadd", .arity = -5, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdXAdd, .group = "stream", .summary = "Appends a new message to a stream. Creates the key if it doesn't exist.", .since = "5.0.0", .complexity = "O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted."});
  registry.Add({.name = "xtrim", .arity = -4, .flags = kWrite, .keys = kOne, .acl = kW | kAclSlow, .handler = &CmdXTrim, .group = "stream", .summary = "Deletes messages from the beginning of a stream.", .since = "5.0.0", .complexity = "O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation."});
  registry.Add({.name = "xdel", .arity = -3, .flags = kWrite | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdXDel, .group = "stream", .summary = "Returns the number of messages after removing them from a stream.", .since = "5.0.0", .complexity = "O(1) for each single item to delete in the stream, regardless of the stream size."});
  registry.Add({.name = "xsetid", .arity = -3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdXSetId, .group = "stream", .summary = "An internal command for replicating stream values.", .since = "5.0.0", .complexity = "O(1)"});
  registry.Add({.name = "xlen", .arity = 2, .flags = kReadOnly | kFast, .keys = kOne, .acl = kR | kAclFast, .handler = &CmdXLen, .group = "stream", .summary = "Return the number of messages in a stream.", .since = "5.0.0", .complexity = "O(1)"});
  registry.Add({.name = "xrange", .arity = -4, .flags = kReadOnly, .keys = kOne, .acl = kR | kAclSlow, .handler = &CmdXRange, .group = "stream", .summary = "Returns the messages from a stream within a range of IDs.", .since = "5.0.0", .complexity = "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1)."});
  registry.Add({.name = "xrevrange", .arity = -4, .flags = kReadOnly, .keys = kOne, .acl = kR | kAclSlow, .handler = &CmdXRevRange, .group = "stream", .summary = "Returns the messages from a stream within a range of IDs in reverse order.", .since = "5.0.0", .complexity = "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1)."});
  registry.Add({.name = "xread", .arity = -4, .flags = kReadOnly | kBlocking | kMovableKeys, .keys = {.streams_keyword = true}, .acl = kR | kAclSlow | kAclBlocking, .handler = &CmdXRead, .group = "stream", .summary = "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", .since = "5.0.0", .complexity = "For each stream mentioned: O(N) with N being the number of elements being returned, it means that XREAD-ing with a fixed COUNT is O(1). Note that when the BLOCK option is used, XADD will pay O(M) time in order to serve the M clients blocked on the stream getting new data."});
  CommandSpec xinfo{.name = "xinfo", .arity = -2, .acl = kAclSlow, .group = "stream", .summary = "A container for stream introspection commands.", .since = "5.0.0", .complexity = "Depends on subcommand.", .subcommands = {
      {.name = "stream", .arity = -3, .flags = kReadOnly, .keys = {.first = 2, .last = 2, .step = 1}, .acl = kR | kAclSlow, .handler = &CmdXInfoStream, .group = "stream", .summary = "Returns information about a stream.", .since = "5.0.0", .complexity = "O(1)"},
  }};
  // clang-format on
  RegisterXInfoGroupSubcommands(xinfo.subcommands);
  registry.Add(std::move(xinfo));
}

}  // namespace lattice::server
