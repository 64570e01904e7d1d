#pragma once
// Keyspace holds every key of the node's databases as CRDT state (crdt::Key), organised by hash
// slot: each database keeps one Swiss table per non-empty slot (as Valkey 8 keeps a dictionary
// per slot), so counting, listing and later moving a slot's keys never scans the rest. It also
// owns the shard-wide causal state of this replica: the DotContext (what this replica has seen),
// the DotSource (this replica's next sequence number) and the HLC.
//
// Command families write through one entry point, Write, which opens the key (reclaiming an
// expired value first), runs a CRDT mutator and commits its op, or closes the key if the mutator
// refused:
//   Result<void> done = ks.Write(db, name, now_ms, [&](crdt::Key& k, const crdt::Writer& w,
//                                                      crdt::DotContext& shard) {
//     return k.SAdd(members, w, shard);
//   });
// Committing hands the op to every KeyspaceObserver, updates the expiry index, and drops the
// entry if the key became empty; closing drops an entry that the write created and nothing
// wrote. (Open/Commit/Close are the same protocol in three calls, for callers that need them.)
// Reads use FindTyped (or Find), which hide expired keys (they stay until reclaimed, as in
// Valkey: reads hide, the active cycle or the next write reclaims, and reclaiming is an
// observed-remove DEL op).
//
// Pure: no I/O and no clock of its own (time is a parameter), so the simulator runs it as is.
// Not thread-safe: the event-loop thread owns it.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "lattice/common/ids.h"
#include "lattice/common/rng.h"
#include "lattice/crdt/hlc.h"
#include "lattice/crdt/key.h"
#include "store/compact_collection.h"
#include "store/conflict_log.h"
#include "store/policy_table.h"
#include "store/stored_key.h"

namespace lattice::server {

// A fixed (process- and run-independent) 64-bit hash: FNV-1a with a splitmix64 finaliser. SCAN
// cursors (keys, and members/fields of large collections) order by it, so a cursor means the
// same thing in every run, on every replica and in the simulator.
uint64_t StableHash(std::string_view bytes);

// The type's name as TYPE replies it ("none" for kNone).
std::string_view TypeName(crdt::ObjectType type);

// CRC16/XMODEM of the key, or of its {hash tag}, & 16383 (Valkey Cluster's slot function).
uint16_t KeySlot(std::string_view key);

// The one fan-out of what happens to keys. Every op this replica originates, every op applied
// from a peer (or imported by a slot migration), and every key changed without an op (snapshot
// install, imported state) reaches each observer, in registration order. The server invalidates
// WATCHes, a slot migration streams the ops on, and replication ships local ops; tests apply
// them to another Keyspace to check convergence. Observers never write to the keyspace.
class KeyspaceObserver {
 public:
  virtual ~KeyspaceObserver() = default;
  virtual void OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) = 0;
  virtual void OnRemoteOp(int db, std::string_view key, const crdt::KeyOp& op) {
    (void)db, (void)key, (void)op;
  }
  virtual void OnKeyChanged(int db, std::string_view key) { (void)db, (void)key; }
};

// The visible value of one key at one instant, as plain data: what RENAME, COPY and MOVE rebuild
// into another key and what DEBUG DIGEST hashes. It holds no CRDT metadata, so two replicas that
// show the same data produce equal VisibleValues. Hash fields and set members are sorted by bytes;
// sorted-set entries by (score, member), as ZRANGE shows them.
struct VisibleValue {
  struct HashEntry {
    std::string field;
    std::string value;
    int64_t ttl_at_ms = 0;  // absolute expiry of the field, 0 for none
    bool operator==(const HashEntry&) const = default;
  };
  crdt::ObjectType type = crdt::ObjectType::kNone;
  std::string string;
  std::vector<HashEntry> hash;
  std::vector<std::string> set;
  std::vector<std::pair<std::string, double>> zset;  // (member, score)
  std::vector<std::string> list;                     // head to tail
  std::optional<int64_t> expiry_ms;                  // key-level expiry
  // A stream: its entries in ID order and its metadata.
  std::vector<std::pair<crdt::StreamId, crdt::Stream::Fields>> stream;
  crdt::StreamMeta stream_meta;
  // Its consumer groups: every slot of every group, its concurrent values resolved (hlc 0).
  std::vector<std::pair<crdt::GroupSlot, crdt::GroupValue>> stream_groups;
  bool operator==(const VisibleValue&) const = default;
};

// Reads what `key` shows at now_ms (type kNone when it is missing or expired).
VisibleValue ReadVisible(const crdt::Key& key, int64_t now_ms);
VisibleValue ReadVisible(const KeyRef& key, int64_t now_ms);

// A snapshot being installed slot by slot (Replication's sliced install, docs/replication.md
// "Installing in slices"): the keyspace calls Reach before anything reads, writes, applies an op
// to or lists a key of a slot, and the joiner joins that slot's keys from the snapshot first if
// it has not yet (bounded work: one slot). Reach returns whether it joined anything. The joiner
// must not reach other slots while it joins one.
class SlotJoiner {
 public:
  virtual ~SlotJoiner() = default;
  virtual bool Reach(int db, uint16_t slot) = 0;
};

// A snapshot being taken in slices (Replication's sliced export, docs/replication.md "Taking a
// snapshot in slices"): Reach first lets every exporter copy the slot as it is if it has not yet
// (copy on write: the snapshot is the keyspace as it was when the export began), then lets the
// joiner join it. An exporter reads the slot with CopySlot (it must not reach).
class SlotExporter {
 public:
  virtual ~SlotExporter() = default;
  virtual void BeforeReach(int db, uint16_t slot) = 0;
};

struct KeyspaceStats {
  uint64_t expired_keys = 0;     // keys reclaimed because their TTL passed
  uint64_t expired_fields = 0;   // hash fields reclaimed because their TTL passed
  uint64_t purged_keys = 0;      // garbage keys freed by CompactSome's DEL (crdt_purged_keys)
  uint64_t local_ops = 0;        // ops originated here
  uint64_t remote_ops = 0;       // ops applied from peers
  uint64_t remote_in_place = 0;  // of those, applied by a direct path (no join)
};

class Keyspace {
 public:
  Keyspace(ReplicaId replica, int databases);
  Keyspace(const Keyspace&) = delete;
  Keyspace& operator=(const Keyspace&) = delete;
  ~Keyspace();

  // The databases clients see (SELECT 0 .. databases() - 1). One more, the system db, holds
  // Lattice's own replicated state (the policy table); it is replicated and snapshotted like
  // the others but invisible to commands: all_databases() counts it.
  int databases() const { return static_cast<int>(dbs_.size()) - 1; }
  int all_databases() const { return static_cast<int>(dbs_.size()); }
  int system_db() const { return static_cast<int>(dbs_.size()) - 1; }
  ReplicaId replica() const { return dots_.replica(); }
  // The sequence number the next local write will take (CRDT.WAIT tracks a client's last).
  uint64_t next_seq() const { return dots_.next_seq(); }
  crdt::DotContext& context() { return context_; }
  const crdt::DotContext& context() const { return context_; }
  crdt::HlcClock& hlc() { return hlc_; }
  // Observers are not owned; each must outlive the keyspace or be removed first.
  void AddObserver(KeyspaceObserver* observer) { observers_.push_back(observer); }
  void RemoveObserver(KeyspaceObserver* observer) { std::erase(observers_, observer); }
  // Tells the observers that `key` changed without an op (snapshot install, imported state).
  void NotifyKeyChanged(int db, std::string_view key) {
    for (KeyspaceObserver* observer : observers_) observer->OnKeyChanged(db, key);
  }
  // The rules of writes when the policy table is empty (tests set them directly).
  void set_policies(const crdt::Policies& policies) { policies_ = policies; }
  // Conflict rules by key pattern. Runtime entries live in the system db (a hash, field
  // "<type>:<pattern>" -> rule, LWW), so they replicate with every other op; the table is
  // rebuilt whenever the system db changes, here or from a peer.
  PolicyTable& policy_table() { return policy_table_; }
  // What the merge rules decided when peers' ops met concurrent local writes.
  ConflictLog& conflicts() { return conflicts_; }
  const ConflictLog& conflicts() const { return conflicts_; }
  const PolicyTable& policy_table() const { return policy_table_; }
  // CRDT.POLICY SET/DEL: writes the entry into the system db (replicated) and the table.
  Result<void> SetPolicy(const std::string& pattern, const std::string& type,
                         const std::string& rule, int64_t now_ms);
  bool DelPolicy(const std::string& pattern, const std::string& type, int64_t now_ms);
  const KeyspaceStats& stats() const { return stats_; }
  // While the op that reclaims expired data is handed to the observers (OnLocalOp): kKey when
  // the key expired, kFields when only hash fields did (keyspace notifications tell `expired`
  // and `hexpired` from a DEL by it).
  // kPurge while CompactSome ships the DEL that frees a garbage key (no event: nothing visible).
  enum class Reclaiming : uint8_t { kNone, kKey, kFields, kPurge };
  Reclaiming reclaiming() const { return reclaiming_; }

  // ---- reads ------------------------------------------------------------------------------
  // The key if it exists and has not expired at now_ms (nullptr otherwise).
  KeyRef Find(int db, std::string_view key, int64_t now_ms) const;
  // Visible type at now_ms (kNone when missing or expired).
  crdt::ObjectType TypeOf(int db, std::string_view key, int64_t now_ms) const;
  // The typed lookup: the key if it exists at now_ms and holds `type` (any type for kNone),
  // nullptr when it is missing or expired, ErrorCode::kWrongType when it holds another type.
  // It counts nothing; the server counts keyspace hits and misses (CommandContext::Read).
  Result<KeyRef> FindTyped(int db, std::string_view key, crdt::ObjectType type,
                           int64_t now_ms) const;
  // The stored entry under `key`, whatever it holds (a write's observer touching the entry it
  // just wrote: no type or expiry check); nullptr when there is none.
  const StoredKey* Stored(int db, std::string_view key) const;

  // ---- writes -----------------------------------------------------------------------------
  // The write entry point: one local op on `key`. Opens it (as Open), calls
  // mutate(crdt::Key&, const crdt::Writer&, crdt::DotContext& shard) -> Result<crdt::KeyOp>
  // with a Writer taken after the open (so a reclaim the open ships comes first in HLC order),
  // then commits the op, or, if the mutator refused (wrong type, bad value), closes the key
  // unchanged and returns the mutator's error. One hash lookup for the whole write and no
  // allocation of its own: a template, so the mutator inlines. The mutator must not write to
  // the keyspace (it holds a reference into a table that a write may rehash).
  template <typename Mutate>
  Result<void> Write(int db, std::string_view key, int64_t now_ms, Mutate&& mutate) {
    const Entry entry = OpenEntry(db, key, now_ms);
    Result<crdt::KeyOp> op = mutate((*entry.it)->full(), BeginWrite(now_ms), context_);
    if (!op.ok()) {
      CloseEntry(db, entry);
      return Unexpected(op.error());
    }
    CommitEntry(db, key, entry, std::move(*op));
    return {};
  }
  // A Writer for one local write: ticks the HLC at now_ms; dots come from this replica.
  crdt::Writer BeginWrite(int64_t now_ms);
  // The key for writing. If it exists but has expired, its reclaiming DEL is shipped first, so
  // the write starts from an empty key. Creates an empty entry when missing.
  crdt::Key& Open(int db, std::string_view key, int64_t now_ms);
  // Records a local op on `key` (which Open returned): ships it, reindexes, drops it if empty.
  void Commit(int db, std::string_view key, crdt::KeyOp op);
  // Ends a write that produced no op: drops the entry if it is empty.
  void Close(int db, std::string_view key);
  // DEL: an observed-remove of the key. Returns whether a visible key was removed.
  bool Delete(int db, std::string_view key, int64_t now_ms);
  // The in-place string writes: the same state and the same op as the generic mutators
  // (Key::Set without KEEPTTL or expiry, Key::IncrBy) would give, built directly on a compact or
  // plain stored string; any other state takes the generic path. One slot and one hash lookup.
  void SetString(int db, std::string_view key, std::string_view value, bool keep_ttl,
                 int64_t now_ms);
  Result<void> IncrString(int db, std::string_view key, int64_t by, int64_t now_ms);
  // INCRBY in place (Key::IncrByInPlace) on a key that is missing, a compact string, or a string
  // cell with nothing else (no TTL, no other type): one lookup, and the value comes from the
  // cell's numbers, not from text. nullopt when the key is anything else: nothing was written,
  // take the generic path. An error is Valkey's, and nothing was written.
  struct CounterIncrement {
    int64_t value = 0;      // what Valkey's INCRBY gives: parse, add, print
    bool written = false;   // false: a replica's int64 total would overflow, nothing written
    bool rendered = false;  // the key now reads as `value`
  };
  Result<std::optional<CounterIncrement>> IncrCounter(int db, std::string_view key, int64_t by,
                                                      int64_t now_ms);
  // The in-place collection writes: HSET (Key::HSetMany), SADD (Key::SAdd) and ZADD
  // (Key::ZAddMany) on a compact collection of their type edit its packed elements and build the
  // op directly, the same state and op as the mutators give; any other key (or a write that
  // would outgrow the compact limits) takes the generic path through Write.
  Result<void> HSetMany(int db, std::string_view key,
                        std::vector<std::pair<std::string, std::string>> pairs, bool keep_ttl,
                        int64_t now_ms);
  // SADD of `members` (distinct, not empty): how many were not in the set (its reply), or
  // WRONGTYPE with nothing written.
  Result<size_t> SAdd(int db, std::string_view key, const std::vector<std::string>& members,
                      int64_t now_ms);
  Result<void> ZAddMany(int db, std::string_view key,
                        const std::vector<std::pair<std::string, double>>& pairs, int64_t now_ms);
  // Replaces whatever `key` holds with `value` (RENAME, COPY, MOVE): an observed-remove DEL of
  // the old value, then fresh local writes of the new one, one op each (string SET; hash HSET per
  // field then HEXPIRE per field TTL; set SADD; zset ZADD per member; then the key's EXPIRE).
  // Nothing is written for a value of type kNone beyond the DEL. `value` must not point into this
  // keyspace (the tables may rehash while writing): pass a copy made by ReadVisible.
  void WriteVisible(int db, std::string_view key, const VisibleValue& value, int64_t now_ms);
  // Applies a peer's op: the common shapes directly (ApplyDirect), anything else by a delta
  // join. Creates or drops the entry as needed.
  void ApplyRemote(int db, std::string_view key, const crdt::KeyOp& op);
  // Tests only: false sends every remote op through the join (the reference of the direct paths).
  void set_direct_apply_for_testing(bool direct) { direct_apply_ = direct; }

  // Joins state received whole (a snapshot): Key::Join(theirs, context(), theirs_context) on
  // `key`, creating or dropping the entry as needed, and records the conflicts the join decides
  // (as ApplyRemote does). `theirs` may be empty (a key the snapshot lacks: what it observed of
  // ours is removed). The caller joins the shard context afterwards.
  void JoinState(int db, std::string_view key, const crdt::Key& theirs,
                 const crdt::DotContext& theirs_context);
  // JoinState for a key of a slot being imported (cluster migration): the key's own dots stand
  // for what this node has seen of it, not context(). This node dropped whatever it held of the
  // slot before (an abandoned import), and context() still covers those dots: joined with it,
  // the same entries arriving again would count as removed here.
  void JoinImported(int db, std::string_view key, const crdt::Key& theirs,
                    const crdt::DotContext& theirs_context);
  // JoinState for a snapshot installed in slices: the shard context already covers the cut, so
  // `mine_context` is what this replica had seen when the install began (no op touched the key
  // since: the slot is joined before anything reaches it). What iterations handed out stays
  // valid (only this key's entry changes).
  void JoinInstalled(int db, std::string_view key, const crdt::Key& theirs,
                     const crdt::DotContext& mine_context, const crdt::DotContext& theirs_context);
  // While a snapshot is installed in slices (nullptr when none): see SlotJoiner. Reads by name,
  // writes, peer ops, ForEachInSlot, Scan, KEYS, FLUSHDB, SWAPDB, the expire cycle and compaction
  // reach the slots they touch; DBSIZE, RANDOMKEY, eviction sampling and ForEach (DEBUG DIGEST,
  // checkpoints) see a slot not joined yet as it was before the install.
  void set_slot_joiner(SlotJoiner* joiner) { joiner_ = joiner; }
  void add_slot_exporter(SlotExporter* exporter) { exporters_.push_back(exporter); }
  void remove_slot_exporter(SlotExporter* exporter) { std::erase(exporters_, exporter); }
  // What Reach does before the joiner: every exporter copies the slot if it has not yet (an
  // install's own joining calls it before it changes a slot).
  void BeforeChange(int db, uint16_t slot) const {
    for (SlotExporter* exporter : exporters_) exporter->BeforeReach(db, slot);
  }
  SlotJoiner* slot_joiner() const { return joiner_; }
  // After loading state from disk: the next local dot follows the highest of ours in context(),
  // so a restarted replica never reuses a sequence number.
  void ResumeDots();

  // Forgets every key and the whole causal context without an op (nothing is replicated), and
  // takes `replica` (a fresh id) as this replica's: the keyspace is then what a first start
  // with an empty data dir gives. CLUSTER RESET of a region (Replication::Reincarnate). The
  // dropped keys are freed by FreeDropped. No snapshot install may be in progress.
  void Reincarnate(ReplicaId replica);

  // FLUSHDB/FLUSHALL: an observed-remove DEL of every key.
  void FlushDb(int db, int64_t now_ms);
  void FlushAll(int64_t now_ms);
  // SWAPDB exchanges two databases locally (not replicated: documented difference).
  void SwapDb(int a, int b);

  // ---- counting and iteration ---------------------------------------------------------------
  // Keys in `db`, including expired keys not yet reclaimed (as Valkey's DBSIZE), excluding
  // entries that hold only CRDT metadata.
  uint64_t Size(int db) const;
  // Whether the db holds any entry (metadata-only ones too).
  bool HasEntries(int db) const;
  uint64_t VolatileCount(int db) const;  // keys with a key-level expiry
  // The mean time to live left (ms) of up to `samples` keys with an expiry, in hash order (an
  // estimate, as Valkey's avg_ttl); 0 when there are none.
  int64_t SampleAverageTtlMs(int db, int64_t now_ms, size_t samples) const;
  uint64_t FieldTtlKeyCount(int db) const;  // hashes that may hold fields with a TTL
  uint64_t CountKeysInSlot(int db, uint16_t slot) const;
  // Up to `count` keys of a slot (CLUSTER GETKEYSINSLOT).
  std::vector<std::string> KeysInSlot(int db, uint16_t slot, size_t count) const;

  // The iterations below pass each key's name and state by reference; a compact key's state is
  // expanded for the call (docs/architecture.md, "Storage of keys"). Both references stay valid
  // until the next write to the keyspace, so a caller may collect them across several calls
  // (snapshot chunks encode the keys where they are).
  // The state of one entry, as ForEachInSlot would pass it (expired or holding only tombstones
  // alike); false when there is no entry. Replication logs the state of a key changed without
  // an op (an install, an import) through it.
  bool VisitState(int db, std::string_view key,
                  const std::function<void(const crdt::Key& value)>& visit) const;
  // Every entry of one slot (cluster migration snapshots), hidden expired keys included.
  void ForEachInSlot(
      int db, uint16_t slot,
      const std::function<void(const std::string& key, const crdt::Key& value)>& visit) const;
  // A copy of every entry of one slot, without reaching it first: as the slot stands (a
  // SlotExporter's copy). A compact key is expanded into the copy (not expanded, then copied).
  void CopySlot(int db, uint16_t slot,
                const std::function<void(const std::string& key, crdt::Key value)>& visit) const;
  // Forgets every key of one slot here only: no op is shipped (the slot moved to another shard,
  // or an import was abandoned). Returns the number of entries dropped. The keys are gone at
  // once; their memory is freed later, a bounded amount per FreeDropped call, so dropping a
  // large slot range does not stall the event loop (Valkey's lazy free).
  size_t DropSlot(int db, uint16_t slot);
  // Frees the memory of dropped slots, about `max_keys` entries. Returns entries freed.
  size_t FreeDropped(size_t max_keys);
  size_t dropped_pending() const { return dropped_pending_; }

  // Slots whose keys are hidden from listing and counting (a slot being imported by a cluster
  // migration, as Valkey): DBSIZE (Size), KEYS (ForEachListed), SCAN, RANDOMKEY and INFO
  // keyspace skip them; reads by name, CountKeysInSlot, KeysInSlot and ForEach do not.
  void SetSlotHidden(uint16_t slot, bool hidden);
  bool slot_hidden(uint16_t slot) const { return hidden_slots_[slot]; }

  // SCAN: visits about `count` keys from `cursor` and returns the next cursor (0 when done).
  // Guarantee (Valkey's): every key present for the whole scan is visited at least once, even
  // while tables grow or shrink. The cursor is (slot << 50) | (50-bit key-hash threshold):
  // within a slot, keys are visited in hash order, and all keys of one hash value together.
  uint64_t Scan(
      int db, uint64_t cursor, size_t count,
      const std::function<void(const std::string& key, const crdt::Key& value)>& visit) const;
  // Every key of the db; hidden expired keys included: callers filter with Find.
  void ForEach(
      int db,
      const std::function<void(const std::string& key, const crdt::Key& value)>& visit) const;
  // ForEach without the hidden slots (KEYS).
  void ForEachListed(
      int db,
      const std::function<void(const std::string& key, const crdt::Key& value)>& visit) const;
  // A uniformly chosen slot-weighted random key, or "" when the db is empty.
  std::string RandomKey(int db, int64_t now_ms, Rng& rng) const;

  // The names and expanded compact states that iteration callbacks were handed (ForEach, Scan,
  // ...) stay valid until the next write or this call; the node calls it at the end of every
  // event-loop turn, so what a turn's iterations expanded (a checkpoint's, KEYS') is not held on.
  // It also drops the compact collections that reads materialised this turn (KeyRef::hash()
  // and the like), which a write does not release: a command may read one key, write another
  // and still hold the first read.
  void ReleaseIterations() const {
    ReleaseVisited();
    if (!reads_.keys.empty()) reads_.Clear();
  }
  size_t held_iterations() const { return visited_names_.size() + expanded_.size(); }
  size_t held_reads() const { return reads_.keys.size(); }

  // When a small hash, set or sorted set is stored compact (docs/architecture.md, "Storage of
  // keys"); the server sets them from its *-max-listpack-* directives. Keys convert as they are
  // next written.
  void set_compact_limits(crdt::ObjectType type, CompactLimits limits);
  const CompactLimits& compact_limits(crdt::ObjectType type) const;

  // ---- metadata compaction -------------------------------------------------------------------
  // Visits about `max_keys` keys (and at most 4 * max_keys + 64 slots), round-robin over dbs and
  // slots from where the last call stopped, with `stable` (the causally stable vector: every
  // known replica has applied it). A key that holds only garbage once `stable` (a deleted or
  // expired counter's tombstone and offsets: crdt::Key::PurgeableBy) and whose purge falls to
  // this replica is freed by a DEL op shipped at `now_ms` (docs/crdt.md, "Compaction"); every
  // region frees it on applying that op. Returns keys visited. A call also stops once the keys
  // it visited hold `max_items` items (crdt::Key::MetadataItems, plus one a key): compacting a
  // key costs its elements.
  size_t CompactSome(const crdt::VersionVector& stable, size_t max_keys, int64_t now_ms = 0,
                     size_t max_items = SIZE_MAX);

  // ---- eviction sampling (server/eviction.h) ---------------------------------------------------
  // Calls `visit` with up to `count` keys of `db` taken from a random place, as Valkey's
  // dictGetSomeKeys (a random slot and position, then the keys that follow it; not uniform):
  // from every key, or from the keys with an expiry when `volatile_only`. Keys that read as
  // missing (expired, metadata only) are skipped. Reads only; `visit` must not write.
  void SampleKeys(int db, bool volatile_only, size_t count, int64_t now_ms, Rng& rng,
                  const std::function<void(std::string_view key, KeyRef ref)>& visit) const;

  // ---- expiry ------------------------------------------------------------------------------
  // Reclaims keys and hash fields whose time has passed, at most `max_keys` keys per call
  // (bounded work per tick). Returns the number of keys visited.
  size_t ActiveExpireCycle(int64_t now_ms, size_t max_keys);
  // Earliest pending expiry (key or field) of any key, or INT64_MAX.
  int64_t NextExpiryMs() const;

 private:
  struct Db;
  using Table = absl::flat_hash_set<StoredKeyPtr, StoredKeyHash, StoredKeyEq>;
  // A key's slot in its table, as Open found or made it: valid until the table changes.
  struct Entry {
    Table* table;
    Table::iterator it;
  };

  Entry OpenEntry(int db, std::string_view key, int64_t now_ms);
  void CommitEntry(int db, std::string_view key, Entry entry, crdt::KeyOp op);
  void CloseEntry(int db, Entry entry);

  // Joins the slot first if an install has not (SlotJoiner); true if it joined anything.
  bool Reach(int db, uint16_t slot) const {
    BeforeChange(db, slot);
    return joiner_ != nullptr && joiner_->Reach(db, slot);
  }
  void ReachAll(int db) const;
  Table* TableFor(int db, std::string_view key, bool create);
  const Table* TableFor(int db, std::string_view key) const;
  void Reindex(int db, std::string_view key, const StoredKey& value);
  // The full form of the entry at `it` (converting a compact one), and back once it settles.
  crdt::Key& ToFull(Table::iterator it);
  void Settle(int db, Table& table, Table::iterator it);
  KeyRef RefOf(const StoredKey& stored) const { return KeyRef(&stored, &replicas_, &reads_); }
  void ReleaseVisited() const {
    if (!visited_names_.empty() || !expanded_.empty()) {
      visited_names_.clear();
      expanded_.clear();
    }
  }
  // Every write starts here: what iterations handed out is released, and the reads' scratch no
  // longer stands for any stored key (it may change or be freed).
  void BeginChange() {
    ReleaseVisited();
    reads_.last = nullptr;
  }
  // The compact collection form of the full key at `it`, if it qualifies (Settle's second half).
  void SettleCollection(int db, Table::iterator it);
  // Replaces the full key at `it` with `compact`, a compact form of the same state.
  void ReplaceWithCompact(int db, Table::iterator it, StoredKey* compact);
  // IncrCounter on a missing key or a compact counter of this replica (no LWW string rule).
  Result<std::optional<CounterIncrement>> IncrCompactCounter(int db, Table& table,
                                                             Table::iterator it,
                                                             std::string_view key, int64_t by,
                                                             int64_t now_ms);
  // The compact collection of `type` at `key` (nullopt if the key is not one).
  std::optional<Entry> FindCompact(int db, std::string_view key, crdt::ObjectType type);
  // The entry of `key` in any form, or nullopt (always in the system db: no compact keys).
  std::optional<Entry> FindEntry(int db, std::string_view key);
  // Writes `edits` (name, and value or score; in order) into the compact collection at `entry`
  // in place and commits the op; false, having done nothing, when the result would not fit the
  // compact limits. `*added` (if given): how many of `edits` name a new element.
  bool WriteCompact(int db, std::string_view key, Entry entry, crdt::ObjectType type,
                    const std::vector<CompactElement>& edits, int64_t now_ms,
                    size_t* added = nullptr);
  void VisitTable(const Table& table,
                  const std::function<void(const std::string&, const crdt::Key&)>& visit) const;
  void Unindex(int db, std::string_view key);
  // ApplyRemote's direct paths for the entry at `it` (created empty if it was missing): false,
  // with nothing changed, when the op or the entry needs the join.
  bool ApplyDirect(int db, Table& table, Table::iterator it, const crdt::KeyOp& op);
  // Whether the direct paths may run: not for the system db, nor under non-default policies.
  bool DirectAllowed(int db, const crdt::KeyOp& op) const;
  // ApplyRemote's direct path for a missing key: false, with nothing changed, if it needs the
  // join.
  bool ApplyToMissing(int db, Table& table, std::string_view key, const crdt::KeyOp& op);
  // ApplyDirect for a compact collection.
  bool ApplyCompactCollection(Table::iterator it, const crdt::KeyOp& op);
  // `mine_context`: what this replica saw of the key (nullptr: its own dots, for an import).
  void JoinWith(int db, std::string_view key, const crdt::Key& theirs,
                const crdt::DotContext* mine_context, const crdt::DotContext& theirs_context,
                bool record_conflicts);
  void Ship(int db, std::string_view key, const crdt::KeyOp& op);
  void ReclaimIfExpired(int db, Table& table, Table::iterator it, int64_t now_ms);
  void Purge(int db, Table& table, Table::iterator it, int64_t now_ms);
  bool EraseIfEmpty(int db, Table& table, Table::iterator it);  // true if it erased
  crdt::Policies PoliciesFor(int db, std::string_view key) const;
  void SystemChanged(int db);  // rebuilds the policy table after a change to the system db

  std::vector<std::unique_ptr<Db>> dbs_;
  crdt::DotContext context_;
  crdt::DotSource dots_;
  crdt::HlcClock hlc_;
  ReplicaIndex replicas_;
  // Names and expanded compact states handed to iteration callbacks, kept until the next write
  // or ReleaseIterations.
  mutable std::deque<std::string> visited_names_;
  mutable std::deque<crdt::Key> expanded_;
  mutable ExpandScratch reads_;  // compact collections materialised by reads this turn
  CompactLimits hash_limits_, set_limits_, zset_limits_;
  crdt::Policies policies_;
  std::vector<KeyspaceObserver*> observers_;
  KeyspaceStats stats_;
  Reclaiming reclaiming_ = Reclaiming::kNone;
  PolicyTable policy_table_;
  ConflictLog conflicts_;
  crdt::Policies current_policies_;  // of the key the current write opened
  bool direct_apply_ = true;         // ApplyRemote's direct paths (tests turn them off)
  std::vector<bool> hidden_slots_ = std::vector<bool>(kSlotCount);
  size_t hidden_slot_count_ = 0;
  std::vector<std::unique_ptr<Table>> dropped_;  // tables of dropped slots, freed lazily
  size_t dropped_pending_ = 0;                   // entries in dropped_
  size_t compact_db_ = 0;                        // CompactSome's cursor
  size_t compact_slot_ = 0;
  SlotJoiner* joiner_ = nullptr;          // a snapshot being installed in slices
  std::vector<SlotExporter*> exporters_;  // snapshots being taken in slices
};

}  // namespace lattice::server
