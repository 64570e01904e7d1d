#pragma once
// Register<V>: the value cell shared by string keys, hash fields and sorted-set scores. It is a
// last-writer-wins register (Shapiro et al. 2011, "A comprehensive study of CRDTs") built as an
// observed-remove dot store (Almeida, Shoker, Baquero 2018), plus a PN-counter view:
//
// - Each write (SET, HSET, ZADD) is an entry (value, hlc, dot). A write removes the entries it
//   observed; concurrent writes both stay until a later write observes them. The visible value is
//   the entry with the greatest Stamp (hlc, replica, seq). Keeping concurrent entries, instead of
//   dropping the loser at join time, is what keeps join associative when a remove observed only
//   one of them (see docs/crdt.md, "Why concurrent writes are kept").
// - Each increment (INCRBY, INCRBYFLOAT, HINCRBY, ZINCRBY) updates the incrementing replica's
//   cumulative total for the current epoch (the winning entry it observed), an IncEntry tagged
//   with the dot of its latest increment. A write or remove records the totals it observed as
//   offsets, so value = base + sum over entries of (total - observed offset): a SET concurrent with
//   increments shows the SET's value plus the increments it did not observe. O(replicas) state.
// - A remove (DEL, HDEL, ZREM) deletes the observed dots. If increments exist it also leaves a
//   tombstone carrying offsets, so increments concurrent with the remove survive as themselves.
//
// Join takes both sides' causal contexts (shard-wide). Value type; not thread-safe. Invariants:
// head_ is the live entry with the greatest stamp (or empty); rest_ is null when it would be
// empty; every vector in the rest is sorted (entries by stamp descending, others by key).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "lattice/common/mutation.h"
#include "lattice/common/result.h"
#include "lattice/crdt/boxed.h"
#include "lattice/crdt/causal.h"

namespace lattice::crdt {

template <typename V>
struct RegisterEntry {
  V value{};
  uint64_t hlc = 0;
  Dot dot;

  Stamp stamp() const { return Stamp::Of(hlc, dot); }
  bool operator==(const RegisterEntry&) const = default;
};

// One replica's increments in one epoch: cumulative totals, tagged with its latest dot.
struct IncEntry {
  Dot dot;    // the latest increment; dot.replica is the incrementing replica
  Dot epoch;  // the winning entry (or tombstone) it incremented on; Dot{} for none
  int64_t total = 0;
  long double ftotal = 0;
  bool operator==(const IncEntry&) const = default;
};

// What a write or remove observed of one (replica, epoch) increment chain.
struct Offset {
  ReplicaId replica = kNoReplica;
  Dot epoch;
  uint64_t seq = 0;
  int64_t total = 0;
  long double ftotal = 0;
  bool operator==(const Offset&) const = default;
};

struct Observed {
  Dot owner;  // the entry or tombstone that recorded these offsets
  std::vector<Offset> offsets;
  bool operator==(const Observed&) const = default;
};

struct Tomb {
  uint64_t hlc = 0;
  Dot dot;
  Stamp stamp() const { return Stamp::Of(hlc, dot); }
  bool operator==(const Tomb&) const = default;
};

// Sum of the increments the winning entry did not observe.
struct CounterSum {
  __int128 ints = 0;
  long double floats = 0;  // summed in (replica, epoch) order: identical on every replica
  bool any_float = false;
  bool unobserved = false;  // some increment is not covered by the winner's offsets
};

template <typename V>
struct RegisterRest {
  std::vector<RegisterEntry<V>> more;  // concurrent live entries below the head
  std::vector<Tomb> tombs;             // sorted by dot
  std::vector<IncEntry> incs;          // sorted by (replica, epoch)
  std::vector<Observed> observed;      // sorted by owner
  bool empty() const { return more.empty() && tombs.empty() && incs.empty() && observed.empty(); }
  bool operator==(const RegisterRest&) const = default;
};

// Which entry besides the winner shapes the visible value (the default: none). A value type whose
// view reads more than the winner specializes it, so compaction keeps that entry too.
template <typename V>
struct ViewKeeps {
  static Dot Extra(const std::vector<RegisterEntry<V>>& /*entries*/) { return Dot{}; }
};

template <typename V>
class Register {
 public:
  using Entry = RegisterEntry<V>;

  bool empty() const { return !head_.dot.valid() && rest_.get() == nullptr; }
  // Visible: a live write, or increments that no write or remove observed.
  bool Alive() const { return head_.dot.valid() || Sum().unobserved; }
  const Entry* Winner() const { return head_.dot.valid() ? &head_ : nullptr; }
  std::vector<Entry> Entries() const;
  CounterSum Sum() const;
  // The dot increments attach to: live winner, else winning tombstone, else Dot{}.
  Dot Epoch() const;
  // Adds every dot this register holds to `out` (what an observed-remove must cover).
  void CollectDots(DotContext& out) const;
  // Calls f(dot) for every dot the register holds (entries, tombstones, increments).
  template <typename F>
  void ForEachDot(F&& f) const {
    if (head_.dot.valid()) {
      f(head_.dot);
    }
    if (const RegisterRest<V>* rest = rest_.get()) {
      for (const Entry& e : rest->more) f(e.dot);
      for (const Tomb& t : rest->tombs) f(t.dot);
      for (const IncEntry& inc : rest->incs) f(inc.dot);
    }
  }
  const RegisterRest<V>* rest() const { return rest_.get(); }
  // A register holding only `head` (a plain single-writer value).
  static Register OfEntry(Entry head) {
    Register r;
    r.head_ = std::move(head);
    return r;
  }
  // A register holding only the increments `inc` (a counter that no write has set: the state of
  // a compact stored counter, and the delta of an increment, as the op decoder builds it).
  static Register OfIncrement(const IncEntry& inc) {
    Register r;
    r.rest_.Mutable().incs.push_back(inc);
    return r;
  }

  // A register of increments, tombstones and offsets only (the decoder's builder of a field
  // counter, bit_chunks.h): sorted, and offsets without their owner dropped, as a join stores them.
  static Register OfMeta(std::vector<Tomb> tombs, std::vector<IncEntry> incs,
                         std::vector<Observed> observed) {
    Register r;
    r.Store({}, std::move(tombs), std::move(incs), std::move(observed));
    return r;
  }

  // Delta builders: they do not modify *this. Each adds the dots it covers to `context`.
  Register AssignDelta(V value, WriteStamp& stamp, DotContext& context) const;
  Register RemoveDelta(WriteStamp& stamp, DotContext& context) const;
  Result<Register> IncrementDelta(int64_t by, long double float_by, WriteStamp& stamp,
                                  DotContext& context) const;
  // IncrementDelta joined into *this at once (the in-place local write): the same state and the
  // same delta, without building and joining it. Refuses (overflow) before taking a dot.
  Result<Register> IncrementInPlace(int64_t by, long double float_by, WriteStamp& stamp,
                                    DotContext& context);

  void Join(const Register& other, const DotContext& mine, const DotContext& theirs);
  // Join(delta, mine, theirs) in place, for the shapes a remote op usually brings: `delta` one
  // plain entry that observed everything *this holds (it replaces *this) or, when `beside`,
  // nothing of it (it is added beside the entries, as a concurrent write: a PFADD's raise
  // entry), or one increment whose context covers, of *this, at most the previous total of its
  // own chain (it replaces that total or joins the chain list). False, with nothing changed, for
  // any other case or when `mine` already covers the delta's dot (then the full Join decides).
  bool JoinSimple(const Register& delta, const DotContext& mine, const DotContext& theirs,
                  bool beside = false);
  // Drops what cannot matter once `stable` is causally stable (see docs/crdt.md).
  void Compact(const VersionVector& stable);
  size_t MetadataItems() const;

  bool operator==(const Register&) const = default;

 private:
  std::vector<Offset> SnapshotOffsets() const;
  const Observed* FindObserved(Dot owner) const;
  // Adds a live entry in its place by stamp (what Store's sort would give).
  void InsertEntry(const Entry& entry);
  void Store(std::vector<Entry> entries, std::vector<Tomb> tombs, std::vector<IncEntry> incs,
             std::vector<Observed> observed);

  Entry head_;
  Boxed<RegisterRest<V>> rest_;
};

namespace detail {

// Dot-store join of two lists of dot-tagged items: keep an item on both sides, or on one side
// when the other side's context has not seen its dot.
template <typename T, typename DotOf>
std::vector<T> JoinByDot(const std::vector<T>& a, const DotContext& a_context,
                         const std::vector<T>& b, const DotContext& b_context, DotOf dot_of) {
  std::vector<T> out;
  auto has = [&](const std::vector<T>& list, Dot dot) {
    return std::any_of(list.begin(), list.end(), [&](const T& x) { return dot_of(x) == dot; });
  };
  for (const T& x : a) {
    if (has(b, dot_of(x)) || !b_context.Contains(dot_of(x))) {
      out.push_back(x);
    }
  }
  for (const T& x : b) {
    if (!has(a, dot_of(x)) && !a_context.Contains(dot_of(x))) {
      out.push_back(x);
    }
  }
  return out;
}

inline bool IncLess(const IncEntry& a, const IncEntry& b) {
  return std::pair(a.dot.replica, a.epoch) < std::pair(b.dot.replica, b.epoch);
}

}  // namespace detail

template <typename V>
std::vector<RegisterEntry<V>> Register<V>::Entries() const {
  std::vector<Entry> out;
  if (head_.dot.valid()) {
    out.push_back(head_);
  }
  if (rest_.get() != nullptr) {
    out.insert(out.end(), rest_.get()->more.begin(), rest_.get()->more.end());
  }
  return out;
}

template <typename V>
Dot Register<V>::Epoch() const {
  if (head_.dot.valid()) {
    return head_.dot;
  }
  if (rest_.get() == nullptr || rest_.get()->tombs.empty()) {
    return Dot{};
  }
  const auto& tombs = rest_.get()->tombs;
  return std::max_element(tombs.begin(), tombs.end(),
                          [](const Tomb& a, const Tomb& b) { return a.stamp() < b.stamp(); })
      ->dot;
}

template <typename V>
const Observed* Register<V>::FindObserved(Dot owner) const {
  if (rest_.get() == nullptr || !owner.valid()) {
    return nullptr;
  }
  for (const Observed& o : rest_.get()->observed) {
    if (o.owner == owner) {
      return &o;
    }
  }
  return nullptr;
}

template <typename V>
CounterSum Register<V>::Sum() const {
  CounterSum sum;
  if (rest_.get() == nullptr) {
    return sum;
  }
  const Dot owner = Epoch();
  const Observed* observed = FindObserved(owner);
  for (const IncEntry& inc : rest_.get()->incs) {
    __int128 ints = inc.total;
    long double floats = inc.ftotal;
    bool covered = false;  // every increment of this entry was observed by the winner
    if (!(owner.valid() && inc.epoch == owner) && observed != nullptr) {
      for (const Offset& off : observed->offsets) {
        if (off.replica == inc.dot.replica && off.epoch == inc.epoch) {
          if (inc.dot.seq <= off.seq) {
            ints = 0;
            floats = 0;
            covered = true;
          } else {
            ints -= off.total;
            floats = inc.ftotal - off.ftotal;
          }
          break;
        }
      }
    }
    // An unobserved increment keeps the cell alive even when the increments sum to 0, as INCR
    // then DECR leaves "0" in Valkey (and two regions' cancelling increments must not erase it).
    if (!covered) {
      sum.unobserved = true;
    }
    sum.ints += ints;
    sum.floats += floats;
    sum.any_float = sum.any_float || floats != 0;
  }
  return sum;
}

template <typename V>
void Register<V>::CollectDots(DotContext& out) const {
  ForEachDot([&](Dot dot) { out.Add(dot); });
}

template <typename V>
std::vector<Offset> Register<V>::SnapshotOffsets() const {
  std::vector<Offset> offsets;
  if (rest_.get() != nullptr) {
    for (const IncEntry& inc : rest_.get()->incs) {
      offsets.push_back(Offset{inc.dot.replica, inc.epoch, inc.dot.seq, inc.total, inc.ftotal});
    }
  }
  return offsets;
}

template <typename V>
Register<V> Register<V>::AssignDelta(V value, WriteStamp& stamp, DotContext& context) const {
  CollectDots(context);
  Register delta;
  delta.head_ = Entry{std::move(value), stamp.hlc, stamp.dots->Next()};
  context.Add(delta.head_.dot);
  std::vector<Observed> observed;
  if (auto offsets = SnapshotOffsets(); !offsets.empty()) {
    observed.push_back(Observed{delta.head_.dot, std::move(offsets)});
    delta.Store({delta.head_}, {}, {}, std::move(observed));
  }
  // Without offsets Store would leave head_ alone, after copying the value twice.
  return delta;
}

template <typename V>
Register<V> Register<V>::RemoveDelta(WriteStamp& stamp, DotContext& context) const {
  CollectDots(context);
  Register delta;
  if (rest_.get() == nullptr || rest_.get()->incs.empty()) {
    return delta;  // Nothing to offset: the context alone removes what was observed.
  }
  const Tomb tomb{stamp.hlc, stamp.dots->Next()};
  context.Add(tomb.dot);
  delta.Store({}, {tomb}, {}, {Observed{tomb.dot, SnapshotOffsets()}});
  return delta;
}

template <typename V>
Result<Register<V>> Register<V>::IncrementDelta(int64_t by, long double float_by, WriteStamp& stamp,
                                                DotContext& context) const {
  const Dot epoch = Epoch();
  IncEntry next{stamp.dots->Next(), epoch, 0, 0};
  if (rest_.get() != nullptr) {
    for (const IncEntry& inc : rest_.get()->incs) {
      if (inc.dot.replica == next.dot.replica && inc.epoch == epoch) {
        next.total = inc.total;
        next.ftotal = inc.ftotal;
        context.Add(inc.dot);  // the new total supersedes the old one
      }
    }
  }
  if (__builtin_add_overflow(next.total, by, &next.total)) {
    return Unexpected(ErrorCode::kOverflow);
  }
  next.ftotal += float_by;
  context.Add(next.dot);
  Register delta;
  delta.Store({}, {}, {next}, {});
  return delta;
}

template <typename V>
Result<Register<V>> Register<V>::IncrementInPlace(int64_t by, long double float_by,
                                                  WriteStamp& stamp, DotContext& context) {
  const Dot epoch = Epoch();
  const ReplicaId self = stamp.dots->replica();
  IncEntry* mine = nullptr;
  if (RegisterRest<V>* rest = rest_.get()) {
    for (IncEntry& inc : rest->incs) {
      if (inc.dot.replica == self && inc.epoch == epoch) {
        mine = &inc;
      }
    }
  }
  IncEntry next{Dot{}, epoch, mine != nullptr ? mine->total : 0,
                mine != nullptr ? mine->ftotal : 0};
  if (__builtin_add_overflow(next.total, by, &next.total)) {
    return Unexpected(ErrorCode::kOverflow);
  }
  next.ftotal += float_by;
  next.dot = stamp.dots->Next();
  if (mine != nullptr) {
    context.Add(mine->dot);  // the new total supersedes the old one, in the same sorted place
    *mine = next;
  } else {
    std::vector<IncEntry>& incs = rest_.Mutable().incs;
    incs.insert(std::upper_bound(incs.begin(), incs.end(), next, detail::IncLess), next);
  }
  context.Add(next.dot);
  Register delta;
  delta.rest_.Mutable().incs.push_back(next);
  return delta;
}

template <typename V>
void Register<V>::Store(std::vector<Entry> entries, std::vector<Tomb> tombs,
                        std::vector<IncEntry> incs, std::vector<Observed> observed) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (MutationInjected(Mutation::kHlcNoTieBreak)) {
      return a.hlc > b.hlc;  // injected bug: equal HLCs keep whatever order they came in
    }
    return a.stamp() > b.stamp();
  });
  std::sort(tombs.begin(), tombs.end(), [](const Tomb& a, const Tomb& b) { return a.dot < b.dot; });
  std::sort(incs.begin(), incs.end(), detail::IncLess);
  // Offsets live only as long as their owner.
  std::erase_if(observed, [&](const Observed& o) {
    const bool entry = std::any_of(entries.begin(), entries.end(),
                                   [&](const Entry& e) { return e.dot == o.owner; });
    const bool tomb =
        std::any_of(tombs.begin(), tombs.end(), [&](const Tomb& t) { return t.dot == o.owner; });
    return !entry && !tomb;
  });
  std::sort(observed.begin(), observed.end(),
            [](const Observed& a, const Observed& b) { return a.owner < b.owner; });
  head_ = entries.empty() ? Entry{} : entries.front();
  RegisterRest<V> rest;
  if (entries.size() > 1) {
    rest.more.assign(entries.begin() + 1, entries.end());
  }
  rest.tombs = std::move(tombs);
  rest.incs = std::move(incs);
  rest.observed = std::move(observed);
  if (rest.empty()) {
    rest_.Reset();
  } else {
    rest_.Mutable() = std::move(rest);
  }
}

template <typename V>
void Register<V>::InsertEntry(const Entry& entry) {
  auto before = [](const Entry& a, const Entry& b) {
    if (MutationInjected(Mutation::kHlcNoTieBreak)) {
      return a.hlc > b.hlc;  // the injected bug, as in Store
    }
    return a.stamp() > b.stamp();
  };
  if (!head_.dot.valid()) {  // no live entry: `more` is empty too
    head_ = entry;
    return;
  }
  std::vector<Entry>& more = rest_.Mutable().more;
  if (before(entry, head_)) {
    more.insert(more.begin(), std::move(head_));
    head_ = entry;
  } else {
    more.insert(std::upper_bound(more.begin(), more.end(), entry, before), entry);
  }
}

template <typename V>
void Register<V>::Join(const Register& other, const DotContext& mine, const DotContext& theirs) {
  static const RegisterRest<V> kNone{};
  const RegisterRest<V>& a = rest_.get() != nullptr ? *rest_.get() : kNone;
  const RegisterRest<V>& b = other.rest_.get() != nullptr ? *other.rest_.get() : kNone;
  auto entries = detail::JoinByDot(Entries(), mine, other.Entries(), theirs,
                                   [](const Entry& e) { return e.dot; });
  auto tombs =
      detail::JoinByDot(a.tombs, mine, b.tombs, theirs, [](const Tomb& t) { return t.dot; });
  auto incs =
      detail::JoinByDot(a.incs, mine, b.incs, theirs, [](const IncEntry& i) { return i.dot; });
  std::vector<Observed> observed = a.observed;
  for (const Observed& o : b.observed) {
    if (FindObserved(o.owner) == nullptr) {
      observed.push_back(o);
    }
  }
  Store(std::move(entries), std::move(tombs), std::move(incs), std::move(observed));
}

template <typename V>
bool Register<V>::JoinSimple(const Register& delta, const DotContext& mine,
                             const DotContext& theirs, bool beside) {
  const RegisterRest<V>* d = delta.rest_.get();
  if (delta.head_.dot.valid() && d == nullptr) {
    // An assignment: Join keeps no entry of ours (theirs covers every dot), no tombstone, no
    // increment, and so no offsets; it keeps the delta's entry (mine has not seen it).
    if (mine.Contains(delta.head_.dot)) {
      return false;
    }
    bool all = true;
    bool none = true;
    ForEachDot([&](Dot dot) {
      const bool covered = theirs.Contains(dot);
      all = all && covered;
      none = none && !covered;
    });
    if (all) {
      head_ = delta.head_;
      rest_.Reset();
    } else if (none && beside) {
      // Join keeps every item of ours (theirs covers none) and adds the entry; the delta brings
      // no offsets, so the observed lists stay as they are.
      InsertEntry(delta.head_);
    } else {
      return false;
    }
    return true;
  }
  if (delta.head_.dot.valid() || d == nullptr || d->incs.size() != 1 || !d->more.empty() ||
      !d->tombs.empty() || !d->observed.empty()) {
    return false;
  }
  // An increment: Join keeps every item of ours theirs does not cover; only the chain's previous
  // total may be covered (it is replaced, in its sorted place), and nothing else changes.
  const IncEntry& next = d->incs.front();
  if (mine.Contains(next.dot) || (head_.dot.valid() && theirs.Contains(head_.dot))) {
    return false;
  }
  IncEntry* replaced = nullptr;
  if (RegisterRest<V>* rest = rest_.get()) {
    for (const Entry& e : rest->more) {
      if (theirs.Contains(e.dot)) return false;
    }
    for (const Tomb& t : rest->tombs) {
      if (theirs.Contains(t.dot)) return false;
    }
    for (IncEntry& inc : rest->incs) {
      const bool chain = inc.dot.replica == next.dot.replica && inc.epoch == next.epoch;
      const bool covered = theirs.Contains(inc.dot);
      if (chain != covered || (chain && replaced != nullptr)) {
        return false;  // two totals of one chain would stay, or another item would go
      }
      if (chain) replaced = &inc;
    }
  }
  if (replaced != nullptr) {
    *replaced = next;
  } else {
    std::vector<IncEntry>& incs = rest_.Mutable().incs;
    incs.insert(std::upper_bound(incs.begin(), incs.end(), next, detail::IncLess), next);
  }
  return true;
}

template <typename V>
void Register<V>::Compact(const VersionVector& stable) {
  if (empty()) {
    return;
  }
  auto entries = Entries();
  static const RegisterRest<V> kNone{};
  RegisterRest<V> rest = rest_.get() != nullptr ? *rest_.get() : kNone;
  auto is_stable = [&](Dot dot) { return stable.Contains(dot); };
  const bool entries_stable =
      std::all_of(entries.begin(), entries.end(), [&](const Entry& e) { return is_stable(e.dot); });
  const bool tombs_stable = std::all_of(rest.tombs.begin(), rest.tombs.end(),
                                        [&](const Tomb& t) { return is_stable(t.dot); });
  // Every future op is causally after these: it observes all of them, so only the winner can
  // still be seen, and a tombstone only matters while it is the epoch of live increments.
  if (entries_stable && entries.size() > 1) {
    const Dot extra = ViewKeeps<V>::Extra(entries);
    std::erase_if(entries,
                  [&](const Entry& e) { return e.dot != entries.front().dot && e.dot != extra; });
  }
  if (entries_stable && tombs_stable && !rest.tombs.empty()) {
    const Dot epoch = Epoch();
    const bool needed = entries.empty() && !rest.incs.empty();
    std::erase_if(rest.tombs, [&](const Tomb& t) { return !(needed && t.dot == epoch); });
  }
  // Offsets of a stable owner for chains that no longer exist can never be consulted again.
  for (Observed& o : rest.observed) {
    if (is_stable(o.owner)) {
      std::erase_if(o.offsets, [&](const Offset& off) {
        return std::none_of(rest.incs.begin(), rest.incs.end(), [&](const IncEntry& i) {
          return i.dot.replica == off.replica && i.epoch == off.epoch;
        });
      });
    }
  }
  std::erase_if(rest.observed, [](const Observed& o) { return o.offsets.empty(); });
  Store(std::move(entries), std::move(rest.tombs), std::move(rest.incs), std::move(rest.observed));
}

template <typename V>
size_t Register<V>::MetadataItems() const {
  size_t items = head_.dot.valid() ? 1 : 0;
  if (const auto* rest = rest_.get()) {
    items += rest->more.size() + rest->tombs.size() + rest->incs.size();
    for (const Observed& o : rest->observed) {
      items += o.offsets.size();
    }
  }
  return items;
}

}  // namespace lattice::crdt
