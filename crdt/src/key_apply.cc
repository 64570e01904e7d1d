// Key::ApplyInPlace: a remote op of a common shape applied straight to the elements it writes,
// without the delta join's element lookups by context dot, scratch vectors and re-sorting.
//
// Why it is the same as Apply (JoinDelta, then the shard context joins the op's): a join keeps a
// dot of ours unless the op's context covers it, and a dot of the delta unless the shard has
// seen it. Here the shard has seen none of the delta's dots, and every dot the op's context
// covers besides the op's own ("extras") is held by an element the delta writes, each of which
// the context observed whole (every dot of it) and which is plain (one entry, no concurrent
// entries, counters, TTL or remove-wins token). So the join replaces those elements by the
// delta's and leaves every other element and key-level cell as it was: what this does directly.
// A string cell takes Register::JoinSimple; a write concurrent with ours only when both are
// HyperLogLogs (a PFADD's raise entry beside the dense value: no conflict for the keyspace's
// conflict log to record, which the direct path skips). Anything else returns false, untouched.
#include <algorithm>

#include "absl/container/inlined_vector.h"
#include "lattice/crdt/hll.h"
#include "lattice/crdt/key.h"

namespace lattice::crdt {

namespace {

// Listing more context dots than this is not a common op: the join decides.
constexpr uint64_t kMaxExtras = 64;

// The few dots of one op (held inline: no allocation per op).
using Dots = absl::InlinedVector<Dot, 4>;

// The dots the op's context covers besides its own, sorted and distinct; false if too many.
bool ListExtras(const KeyOp& op, Dots& out) {
  auto own = [&](Dot dot) {
    return dot.replica == op.first_dot.replica && dot.seq >= op.first_dot.seq &&
           dot.seq - op.first_dot.seq < op.dot_count;
  };
  uint64_t listed = op.context.cloud().size();
  for (const auto& [replica, seq] : op.context.vector().entries()) {
    listed += seq;
    if (listed > kMaxExtras + op.dot_count) return false;
  }
  for (const auto& [replica, seq] : op.context.vector().entries()) {
    for (uint64_t s = 1; s <= seq; ++s) {
      if (!own(Dot{replica, s})) out.push_back(Dot{replica, s});
    }
  }
  for (const Dot& dot : op.context.cloud()) {
    if (!own(dot)) out.push_back(dot);
  }
  if (out.size() > kMaxExtras) return false;
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return true;
}

template <typename Cell>
bool HoldsAny(const Cell& cell, const Dots& dots) {
  bool any = false;
  cell.ForEachDot([&](Dot dot) { any = any || std::binary_search(dots.begin(), dots.end(), dot); });
  return any;
}

// A value or score cell the in-place apply may write or replace: one entry, nothing else.
template <typename V>
bool PlainEntry(const Register<V>& cell) {
  return cell.rest() == nullptr && cell.Winner() != nullptr;
}

}  // namespace

bool Key::ApplyInPlace(const KeyOp& op, DotContext& shard) {
  const Key& delta = op.delta;
  if (delta.rest_.get() == nullptr) {
    const auto* ours = string_.Winner();
    const auto* theirs = delta.string_.Winner();
    const bool beside = ours != nullptr && theirs != nullptr && hll::Valid(ours->value) &&
                        hll::Valid(theirs->value);
    if (rest_.get() != nullptr || !string_.JoinSimple(delta.string_, shard, op.context, beside)) {
      return false;
    }
    shard.Join(op.context);
    return true;
  }
  const KeyRest& d = *delta.rest_.get();
  const KeyRest* r = rest_.get();
  if (!delta.string_.empty() || !string_.empty() || !d.expiry().empty() ||
      d.has_hash() + d.has_set() + d.has_zset() != 1 || !d.hash_created().empty() ||
      !d.set_created().empty() || !d.zset_created().empty() || !d.set().removes().empty() ||
      !d.zset().removes().empty() || d.has_stream() ||
      (r != nullptr && (r->has_hash() != d.has_hash() || r->has_set() != d.has_set() ||
                        r->has_zset() != d.has_zset() || r->has_stream()))) {
    return false;
  }
  for (uint64_t i = 0; i < op.dot_count; ++i) {
    if (shard.Contains(Dot{op.first_dot.replica, op.first_dot.seq + i})) return false;
  }
  Dots extras;
  if (!ListExtras(op, extras)) {
    return false;
  }
  // Every element the delta writes: plain on both sides, observed whole; its old dots collected.
  static const KeyRest kNone{};
  const KeyRest& state = r != nullptr ? *r : kNone;
  Dots observed;
  bool plain = true;
  auto observe = [&](Dot dot) {
    plain = plain && op.context.Contains(dot);
    observed.push_back(dot);
  };
  for (const auto& [name, field] : d.hash().fields()) {
    if (!plain) break;
    const std::optional<EntryView> entry = field.Plain();
    if (field.ttl() != nullptr || !entry || shard.Contains(entry->dot)) return false;
    if (const FieldNode* mine = state.hash().Find(name)) {
      const std::optional<EntryView> old = mine->Plain();
      if (mine->ttl() != nullptr || !old) return false;
      observe(old->dot);
    }
  }
  for (const auto& [name, dots] : d.set().adds()) {
    if (!plain) break;
    if (dots.size() != 1 || shard.Contains(dots.dots()[0]) ||
        state.set().removes().contains(name)) {
      return false;
    }
    if (auto mine = state.set().adds().find(name); mine != state.set().adds().end()) {
      for (const Dot& dot : mine->second.dots()) observe(dot);
    }
  }
  d.zset().ForEachMember([&](std::string_view name, const ScoreCell& cell) {
    if (!plain) return;
    if (!PlainEntry(cell) || shard.Contains(cell.Winner()->dot) ||
        state.zset().removes().contains(std::string(name))) {
      plain = false;
      return;
    }
    if (const ScoreCell* mine = state.zset().Find(name)) {
      if (!PlainEntry(*mine)) {
        plain = false;
        return;
      }
      observe(mine->Winner()->dot);
    }
  });
  if (!plain) {
    return false;
  }
  std::sort(observed.begin(), observed.end());
  observed.erase(std::unique(observed.begin(), observed.end()), observed.end());
  if (observed != extras) {
    return false;  // the context covers a dot held elsewhere (or nowhere): the join finds it
  }
  if (!extras.empty() &&
      (HoldsAny(state.hash_created(), extras) || HoldsAny(state.set_created(), extras) ||
       HoldsAny(state.zset_created(), extras) || HoldsAny(state.expiry(), extras))) {
    return false;
  }
  KeyRest& a = rest_.Mutable();
  if (d.has_hash()) {
    OrHash& hash = a.mutable_hash();
    for (const auto& [name, field] : d.hash().fields()) {
      const std::optional<EntryView> entry = field.Plain();  // checked above
      hash.PutPlain(name, entry->value, entry->hlc, entry->dot);
    }
  } else if (d.has_set()) {
    OrSet& set = a.mutable_set();
    for (const auto& [name, dots] : d.set().adds()) set.Put(name, dots.dots()[0]);
  } else {
    SortedSet& zset = a.mutable_zset();
    d.zset().ForEachMember(
        [&](std::string_view name, const ScoreCell& cell) { zset.Put(std::string(name), cell); });
  }
  shard.Join(op.context);
  return true;
}

}  // namespace lattice::crdt
