#pragma once
// Key: the envelope of one key of the keyspace, and the unit the keyspace and the replication
// layer work with. It holds one object per type (string cell inline, the rest out of line), the
// creation events of the hash/set/zset incarnations, and the key-level expiry. The replica keeps
// one DotContext for the whole shard; every function that combines states takes both sides'.
//
// Merge rules (the paper behind each part is cited in its own header):
// - Type conflict: the visible type is that of the non-empty object whose creating op has the
//   greatest (HLC, replica) stamp (for a string: its winning SET; SET re-creates the key). The
//   loser is hidden, not dropped, because dropping it at join time would break associativity;
//   the next local write or DEL of the key removes what it observed of the loser.
// - DEL is an observed remove: its delta is the dots it saw (plus counter offsets), so writes
//   the deleter had not seen survive. An expired key is hidden on read (expiry <= now_ms) and
//   reclaimed by such a DEL (Reclaim), as are expired hash fields.
// - Key expiry is an ExpiryCell (LWW by stamp, or longest-wins, per the op's rule). SET without
//   KEEPTTL clears the expiry it observed; PERSIST writes "no expiry".
//
// Mutators apply the write locally (to *this and to the shard context) and return the KeyOp to
// ship; Apply() of that op on any replica has the same effect (it is a join). Value type; not
// thread-safe: the keyspace thread owns its keys.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lattice/crdt/bit_chunks.h"
#include "lattice/crdt/list.h"
#include "lattice/crdt/or_hash.h"
#include "lattice/crdt/or_set.h"
#include "lattice/crdt/sorted_set.h"
#include "lattice/crdt/stream.h"

namespace lattice::crdt {

enum class ObjectType : uint8_t {
  kNone = 0,
  kString = 1,
  kHash = 2,
  kSet = 3,
  kZSet = 4,
  kList = 5,
  kStream = 6
};

// Creation events of one typed incarnation. An entry's value is the ObjectType, plus
// kFixedPrecedenceFlag when it was made under TypeRule::kFixedPrecedence.
using CreationCell = Register<uint8_t>;
inline constexpr uint8_t kFixedPrecedenceFlag = 0x80;

// One typed incarnation of a collection: its contents and its creation events, boxed together so
// a key pays only for the types it holds.
template <typename T>
struct TypedPart {
  T object;
  CreationCell created;
  bool empty() const { return object.empty() && created.empty(); }
  bool operator==(const TypedPart&) const = default;
};

// Everything of a key besides the string cell. Each part is a box allocated when first written
// and dropped by Normalize() once empty, so a set key holds one 8-byte pointer per absent type
// and the one part it uses (32 bytes of pointers plus the part, not all three objects inline).
class KeyRest {
 public:
  const OrHash& hash() const { return Part(hash_).object; }
  const OrSet& set() const { return Part(set_).object; }
  const SortedSet& zset() const { return Part(zset_).object; }
  const List& list() const { return Part(list_).object; }
  const Stream& stream() const { return Part(stream_).object; }
  const CreationCell& hash_created() const { return Part(hash_).created; }
  const CreationCell& set_created() const { return Part(set_).created; }
  const CreationCell& zset_created() const { return Part(zset_).created; }
  const CreationCell& list_created() const { return Part(list_).created; }
  const CreationCell& stream_created() const { return Part(stream_).created; }
  const ExpiryCell& expiry() const { return Part(expiry_); }
  // A string's bitmap chunks (bit_chunks.h): empty unless a bitmap write touched the key.
  const BitChunks& chunks() const { return Part(chunks_); }
  bool has_chunks() const { return chunks_.get() != nullptr; }
  bool has_hash() const { return hash_.get() != nullptr; }
  bool has_set() const { return set_.get() != nullptr; }
  bool has_zset() const { return zset_.get() != nullptr; }
  bool has_list() const { return list_.get() != nullptr; }
  bool has_stream() const { return stream_.get() != nullptr; }

  OrHash& mutable_hash() { return hash_.Mutable().object; }
  OrSet& mutable_set() { return set_.Mutable().object; }
  SortedSet& mutable_zset() { return zset_.Mutable().object; }
  List& mutable_list() { return list_.Mutable().object; }
  Stream& mutable_stream() { return stream_.Mutable().object; }
  CreationCell& mutable_hash_created() { return hash_.Mutable().created; }
  CreationCell& mutable_set_created() { return set_.Mutable().created; }
  CreationCell& mutable_zset_created() { return zset_.Mutable().created; }
  CreationCell& mutable_list_created() { return list_.Mutable().created; }
  CreationCell& mutable_stream_created() { return stream_.Mutable().created; }
  ExpiryCell& mutable_expiry() { return expiry_.Mutable(); }
  BitChunks& mutable_chunks() { return chunks_.Mutable(); }

  bool empty() const {
    return hash_.get() == nullptr && set_.get() == nullptr && zset_.get() == nullptr &&
           list_.get() == nullptr && stream_.get() == nullptr && expiry_.get() == nullptr &&
           chunks_.get() == nullptr;
  }
  // Drops the parts that became empty.
  void Normalize() {
    hash_.Normalize();
    set_.Normalize();
    zset_.Normalize();
    list_.Normalize();
    stream_.Normalize();
    expiry_.Normalize();
    chunks_.Normalize();
  }
  bool operator==(const KeyRest&) const = default;

 private:
  template <typename T>
  static const T& Part(const Boxed<T>& box) {
    static const T kEmpty{};
    return box.get() != nullptr ? *box.get() : kEmpty;
  }

  Boxed<TypedPart<OrHash>> hash_;
  Boxed<TypedPart<OrSet>> set_;
  Boxed<TypedPart<SortedSet>> zset_;
  Boxed<TypedPart<List>> list_;
  Boxed<ExpiryCell> expiry_;
  Boxed<TypedPart<Stream>> stream_;
  Boxed<BitChunks> chunks_;
};

// What a local write needs: fresh dots, the op's HLC, the local time and the rules in force.
struct Writer {
  DotSource* dots = nullptr;
  uint64_t hlc = 0;
  int64_t now_ms = 0;
  Policies policies;
};

class Key;

// The op shipped between regions: the delta (a small Key) and the causal context it covers.
// first_dot and dot_count name the dots it consumed (first_dot.seq .. + dot_count - 1).
struct KeyOp;

// The collection elements a delta join may change (internal to lattice_crdt; key_write.h).
struct TouchedNames;
class KeyWrite;

class Key {
 public:
  // Reads. "At" variants take the local time and hide what has expired.
  bool empty() const { return string_.empty() && rest_.get() == nullptr; }
  ObjectType Type() const;
  ObjectType TypeAt(int64_t now_ms) const;
  std::optional<int64_t> ExpiryMs() const;
  std::optional<std::string> GetString(int64_t now_ms) const;
  // The bitmap commands' read (docs/commands/bitmap.md, "Cost"): the length of the value
  // GetString(now_ms) gives, with `out` its bytes [begin, end) cut at that length, composed from
  // the base and only the chunks and counters of the 256-byte chunks the range touches, so that
  // reading a bit of a 1 MB bitmap copies its chunk, not the megabyte. `out` views the stored
  // base when nothing lies over the range, else `scratch`. Nullopt when GetString is.
  std::optional<size_t> ReadStringRange(size_t begin, size_t end, int64_t now_ms,
                                        std::string& scratch, std::string_view& out) const;
  // Whether the string has bitmap chunks beside its base (bit_chunks.h).
  bool HasChunks() const { return rest_.get() != nullptr && rest_.get()->has_chunks(); }
  const StringCell& string() const { return string_; }
  const OrHash& hash() const;
  const OrSet& set() const;
  const SortedSet& zset() const;
  const List& list() const;
  const Stream& stream() const;
  // Everything besides the string cell (objects, creation cells, key expiry), or nullptr when
  // the key has none of it. Read-only: state transfer (the codec) reads the cells here.
  const KeyRest* rest() const { return rest_.get(); }
  // A key holding only the string entry `head` (the state of a compact stored string).
  static Key OfString(RegisterEntry<std::string> head) {
    Key key;
    key.string_ = StringCell::OfEntry(std::move(head));
    return key;
  }
  // A key holding only the string cell `cell` (a decoded remote increment's delta).
  static Key OfStringCell(StringCell cell) {
    Key key;
    key.string_ = std::move(cell);
    return key;
  }
  // A key holding only chunk `index`'s register `cell` (a decoded state's piece).
  static Key OfChunk(uint64_t index, BitChunks::Cell cell) {
    Key key;
    key.rest_.Mutable().mutable_chunks().Put(index, std::move(cell));
    key.NormalizeRest();
    return key;
  }
  // A key holding only the counter of bitmap field `field` (a decoded state's piece).
  static Key OfBitCounter(const BitField& field, BitChunks::Counter counter) {
    Key key;
    key.rest_.Mutable().mutable_chunks().PutCounter(field, std::move(counter));
    key.NormalizeRest();
    return key;
  }
  // A key holding only the increments `inc` (the state of a compact stored counter).
  static Key OfCounter(const IncEntry& inc) {
    Key key;
    key.string_ = StringCell::OfIncrement(inc);
    return key;
  }
  // A key holding only one collection incarnation, `created` and its object (the state of a
  // compact stored collection; the keyspace's storage, not a write path).
  static Key OfHash(CreationCell created, OrHash hash) {
    Key key;
    key.rest_.Mutable().mutable_hash_created() = std::move(created);
    key.rest_.Mutable().mutable_hash() = std::move(hash);
    return key;
  }
  static Key OfSet(CreationCell created, OrSet set) {
    Key key;
    key.rest_.Mutable().mutable_set_created() = std::move(created);
    key.rest_.Mutable().mutable_set() = std::move(set);
    return key;
  }
  static Key OfZSet(CreationCell created, SortedSet zset) {
    Key key;
    key.rest_.Mutable().mutable_zset_created() = std::move(created);
    key.rest_.Mutable().mutable_zset() = std::move(zset);
    return key;
  }
  static Key OfList(CreationCell created, List list) {
    Key key;
    key.rest_.Mutable().mutable_list_created() = std::move(created);
    key.rest_.Mutable().mutable_list() = std::move(list);
    return key;
  }
  static Key OfStream(CreationCell created, Stream stream) {
    Key key;
    key.rest_.Mutable().mutable_stream_created() = std::move(created);
    key.rest_.Mutable().mutable_stream() = std::move(stream);
    return key;
  }
  // Whether the state is a plain single-writer string: one live entry and nothing else.
  bool PlainString() const {
    return rest_.get() == nullptr && string_.rest() == nullptr && string_.Winner() != nullptr;
  }

  // Local writes: apply to *this and `shard`, return the op. Errors are Valkey's replies.
  Result<KeyOp> Set(std::string value, bool keep_ttl, std::optional<int64_t> expire_at_ms,
                    const Writer& writer, DotContext& shard);
  Result<KeyOp> IncrBy(int64_t by, const Writer& writer, DotContext& shard);
  Result<KeyOp> IncrByFloat(long double by, const Writer& writer, DotContext& shard);
  // IncrBy on a key that is empty or a live string with nothing besides its string cell
  // (PlainIncrementable): the same state and op, mutated in place instead of joined.
  bool PlainIncrementable(int64_t now_ms) const {
    // With nothing besides the string cell there is no TTL and no other type: the key is a
    // string exactly when the cell is alive.
    (void)now_ms;
    return rest_.get() == nullptr && (string_.empty() || string_.Alive());
  }
  // `expected`, when given, receives the value the increment means to give (Valkey's
  // parse-add-print of the current value); the state renders it unless a replica's total would
  // overflow (refused) or the rendering differs (see string_family's OpIncrement).
  Result<KeyOp> IncrByInPlace(int64_t by, const Writer& writer, DotContext& shard,
                              std::optional<int64_t>* expected = nullptr);
  std::optional<KeyOp> Del(const Writer& writer, DotContext& shard);
  // A bitmap write (SETBIT, SETRANGE, BITFIELD SET/INCRBY) whose new whole value is `value`, of
  // which it changed bytes [first_byte, end_byte) (value.size() >= end_byte > first_byte): each
  // chunk of that range becomes one chunk entry (bit_chunks.h) and the TTL stays. A write that
  // would leave more than kChunksMax chunks, or reach past kChunkIndexEnd, is a whole-value SET
  // that keeps the TTL. WRONGTYPE on a key of another type.
  Result<KeyOp> WriteBitmap(std::string value, size_t first_byte, size_t end_byte,
                            const Writer& writer, DotContext& shard);
  // WriteBitmap without the whole value: `window` is the new value's bytes from `window_begin`
  // (first_byte rounded down to a chunk) to the end of end_byte's chunk, cut at `size` (the new
  // length): ReadStringRange of those chunks, grown to `size` with zeros and then changed. The
  // same state and op as WriteBitmap of the whole new value; only its whole-value fallback (more
  // than kChunksMax chunks) composes the rest of the value.
  Result<KeyOp> WriteBitmapWindow(std::string_view window, size_t window_begin, size_t size,
                                  size_t first_byte, size_t end_byte, const Writer& writer,
                                  DotContext& shard);
  // BITFIELD INCRBY with OVERFLOW WRAP merged as counters (bit_chunks.h): each (field, by) adds
  // `by` (mod 2^bits) to that field's counter, in order; nothing else is written and the TTL
  // stays. Each field must be Valid() and one the key's chunks' CounterFits. WRONGTYPE on a key
  // of another type.
  Result<KeyOp> IncrBitFields(const std::vector<std::pair<BitField, uint64_t>>& increments,
                              const Writer& writer, DotContext& shard);
  // at_ms == 0 is PERSIST.
  Result<KeyOp> Expire(int64_t at_ms, const Writer& writer, DotContext& shard);
  // `*added` (if given): how many of `members` were not in the set before (SADD's reply).
  Result<KeyOp> SAdd(const std::vector<std::string>& members, const Writer& writer,
                     DotContext& shard, size_t* added = nullptr);
  Result<KeyOp> SRem(const std::vector<std::string>& members, const Writer& writer,
                     DotContext& shard);
  Result<KeyOp> HSet(const std::string& field, std::string value, bool keep_ttl,
                     const Writer& writer, DotContext& shard);
  // HSET of several (field, value) pairs in order, as one op (a later pair overwrites an
  // earlier one of the same field).
  Result<KeyOp> HSetMany(std::vector<std::pair<std::string, std::string>> pairs, bool keep_ttl,
                         const Writer& writer, DotContext& shard);
  Result<KeyOp> HDel(const std::vector<std::string>& fields, const Writer& writer,
                     DotContext& shard);
  Result<KeyOp> HIncrBy(const std::string& field, int64_t by, const Writer& writer,
                        DotContext& shard);
  Result<KeyOp> HIncrByFloat(const std::string& field, long double by, const Writer& writer,
                             DotContext& shard);
  Result<KeyOp> HExpire(const std::string& field, int64_t at_ms, const Writer& writer,
                        DotContext& shard);
  Result<KeyOp> ZAdd(const std::string& member, double score, const Writer& writer,
                     DotContext& shard);
  // ZADD of several (member, score) pairs in order, as one op.
  Result<KeyOp> ZAddMany(const std::vector<std::pair<std::string, double>>& pairs,
                         const Writer& writer, DotContext& shard);
  Result<KeyOp> ZIncrBy(const std::string& member, double by, const Writer& writer,
                        DotContext& shard);
  Result<KeyOp> ZRem(const std::vector<std::string>& members, const Writer& writer,
                     DotContext& shard);
  // List writes (LPUSH, RPUSH, LINSERT, LSET, and the removes of LPOP, RPOP, LREM, LTRIM,
  // LMOVE): one op each. LEdit removes the elements at `remove` (sorted ascending, distinct,
  // each < the list's size), then pushes `push` at `end` in order (each becomes the new head,
  // or tail, in turn): LMOVE within one key is one LEdit. An edit that pushes creates the list
  // (WRONGTYPE on a key of another type); one that only removes requires a list.
  Result<KeyOp> LEdit(const std::vector<size_t>& remove, ListEnd end,
                      const std::vector<std::string>& push, const Writer& writer,
                      DotContext& shard);
  // After a local list write: List::SettleEncoding of the key's list, if it has one.
  void SettleListEncoding(const ListpackLimits& limits) {
    if (rest_.get() != nullptr && rest_.get()->has_list()) {
      rest_.Mutable().mutable_list().SettleEncoding(limits);
    }
  }
  // LINSERT before (or after) the element at `index`, which must exist.
  Result<KeyOp> LInsert(size_t index, bool before, std::string_view value, const Writer& writer,
                        DotContext& shard);
  // LSET of the element at `index`, which must exist.
  Result<KeyOp> LSet(size_t index, std::string_view value, const Writer& writer, DotContext& shard);
  // Stream writes (XADD, XDEL, XTRIM, XSETID): one op each. Removes the entries `remove` names
  // (entries the stream holds), adds `adds` (each with a fresh dot) and writes `meta`, if given.
  // An edit that adds, or `create`, creates the stream (WRONGTYPE on a key of another type); any
  // other edit requires a stream. Consumer-group changes (XGROUP, XREADGROUP, XACK, XCLAIM...)
  // come after: `group_destroy` removes every item of those groups, `group_remove` the items of
  // those slots, and each of `group_write` replaces its slot's items (Stream's delta builders).
  struct StreamEdit {
    std::vector<std::pair<StreamId, Stream::Fields>> adds;
    std::vector<StreamEntryKey> remove;
    std::optional<StreamMeta> meta;
    bool create = false;
    std::vector<std::string> group_destroy;
    std::vector<GroupSlot> group_remove;
    std::vector<std::pair<GroupSlot, GroupValue>> group_write;
  };
  Result<KeyOp> XEdit(StreamEdit edit, const Writer& writer, DotContext& shard);
  // The observed-remove that reclaims an expired key or expired hash fields, if any.
  std::optional<KeyOp> Reclaim(const Writer& writer, DotContext& shard);

  // Remote ops and state transfer. Apply joins with JoinDelta: O(delta log n).
  void Apply(const KeyOp& op, DotContext& shard);
  // Apply done in place for the common op shapes (docs/crdt.md, "Applying a remote op in
  // place"): a string assignment or increment on a key holding only its string cell, and HSET /
  // SADD / ZADD of plain elements on a key holding only that type, whose context observed exactly
  // the elements' old dots. The same state and shard context as Apply; false, with nothing
  // changed, for anything else (the caller then calls Apply).
  bool ApplyInPlace(const KeyOp& op, DotContext& shard);
  void Join(const Key& other, const DotContext& mine, const DotContext& theirs);
  // The same result as Join(delta, mine, theirs), but it joins only the collection elements
  // that `delta` holds or that hold a dot `theirs` covers, so its cost is O(|delta| + |theirs|)
  // lookups, not O(collection). first_own/own_count name the dots the delta's op took (its
  // first_dot and dot_count): such a dot is only ever held by an element the delta names or by
  // a key-level cell, so it needs no lookup. Another dot of `theirs` is looked up in the elements
  // the delta names and the key-level cells; one found nowhere there costs one read-only scan of
  // the key's elements (no joins); a context too large to enumerate takes the full Join. See
  // docs/crdt.md, "Applying a delta in O(delta)".
  void JoinDelta(const Key& delta, const DotContext& mine, const DotContext& theirs, Dot first_own,
                 uint64_t own_count);
  // Drops nothing (docs/crdt.md, "Compaction"); the old in-place rules run only as the
  // simulator's kCompactNarrowsDots mutation.
  void Compact(const VersionVector& stable);
  // Garbage that an op may remove: the key shows nothing (no type, no key expiry), every dot it
  // holds is <= `stable` (no op concurrent with them can still arrive), and a DEL of it would
  // leave nothing (no increment that needs a tombstone). Then the replica returned (the writer
  // of its greatest dot) ships that DEL (Keyspace::CompactSome) and every region frees the key
  // on applying it. Nullopt otherwise.
  std::optional<ReplicaId> PurgeableBy(const VersionVector& stable) const;
  void CollectDots(DotContext& out) const;
  size_t MetadataItems() const;

  bool operator==(const Key&) const = default;

 private:
  friend class KeyWrite;
  KeyRest& MutableRest() { return rest_.Mutable(); }
  void XEditGroups(KeyWrite& write, StreamEdit& edit);
  void NormalizeRest();
  // `base` (the string cell's rendering) with the bitmap chunks newer than it laid over it.
  std::optional<std::string> ComposeChunks(std::optional<std::string> base) const;
  Key RemoveAllDelta(bool keep_expiry, WriteStamp& stamp, DotContext& context) const;
  // JoinDelta with names the caller knows the delta touches (`hint`, may be empty); when
  // `holds_only_own` this key holds no dot outside the own range (a write's op delta).
  void JoinTouched(const Key& delta, const DotContext& mine, const DotContext& theirs,
                   Dot first_own, uint64_t own_count, TouchedNames hint, bool holds_only_own);

  StringCell string_;
  Boxed<KeyRest> rest_;
};

// SAdd, HSet(Many) and ZAdd(Many) write a plain element of a key that holds only their type in
// place (the state mutated directly, the op built directly); every other case, and every write
// while this is set (on this thread), takes the generic delta-join path, the reference the
// in-place paths must match exactly (state, shard context and op). Tests only.
void SetGenericWritesForTesting(bool generic);

struct KeyOp {
  Key delta;
  DotContext context;
  Policies policies;
  uint64_t hlc = 0;
  Dot first_dot;
  uint64_t dot_count = 0;
  bool operator==(const KeyOp&) const = default;
};

}  // namespace lattice::crdt
