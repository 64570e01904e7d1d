// Key::JoinDelta: joining a delta (a remote op, or one step of a local write) into a key in
// O(delta log n) instead of O(collection).
//
// Why it is the same as Join: Join walks every element e of the key and joins it with the
// delta's e (empty when the delta lacks e). Joining e with an empty element keeps every dot of e
// that `theirs` does not cover (the dot-store rule), and every other part of e too (the
// register's offsets follow their owners, which stay). So an element the delta does not hold
// and none of whose dots `theirs` covers comes out of Join unchanged: only the elements the
// delta holds, and the holders of the dots `theirs` covers, need a join. Touched() finds the
// latter exactly:
// - a dot the delta's op took (own range) is held, anywhere, only by the element the op wrote
//   it to, which the delta names, or by a key-level cell (a dot names one write, and a write
//   never moves a dot to another element); the identity dot of a pure remove is held nowhere;
// - any other dot is looked up in the elements the delta (or the caller's hint) names and in the
//   key-level cells; a dot found in neither is looked for by one read-only scan of the elements
//   (a remote SREM/HDEL/ZREM names its member only through its context);
// - a context whose version-vector part is too large to enumerate takes the full Join.
#include <algorithm>
#include <optional>
#include <utility>

#include "key_write.h"
#include "lattice/common/mutation.h"
#include "lattice/crdt/join_stats.h"
#include "lattice/crdt/key.h"

namespace lattice::crdt {

namespace {

// Enumerating more context dots than this costs about as much as the full join.
constexpr uint64_t kMaxContextDots = 4096;

// The dots of a context still to be located, sorted.
class Pending {
 public:
  void Add(Dot dot) { dots_.push_back(dot); }
  void Seal() {
    std::sort(dots_.begin(), dots_.end());
    found_.assign(dots_.size(), false);
    left_ = dots_.size();
  }
  size_t left() const { return left_; }
  // Marks `dot` found; whether it was pending and not found before.
  bool Take(Dot dot) {
    auto it = std::lower_bound(dots_.begin(), dots_.end(), dot);
    if (it == dots_.end() || *it != dot) {
      return false;
    }
    const size_t i = static_cast<size_t>(it - dots_.begin());
    if (found_[i]) {
      return false;
    }
    found_[i] = true;
    --left_;
    return true;
  }

 private:
  std::vector<Dot> dots_;
  std::vector<bool> found_;
  size_t left_ = 0;
};

void Normalize(std::vector<std::string>& names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
}

const KeyRest& RestOrEmpty(const Key& key) {
  static const KeyRest kEmpty{};
  return key.rest() != nullptr ? *key.rest() : kEmpty;
}

// The elements of `state` that joining (delta, theirs) can change, or nullopt for "take the
// full join". See the comment at the top of the file.
std::optional<TouchedNames> Touched(const Key& state, const Key& delta, const DotContext& theirs,
                                    Dot first_own, uint64_t own_count, TouchedNames touched,
                                    bool holds_only_own) {
  uint64_t enumerated = theirs.cloud().size();
  for (const auto& [replica, seq] : theirs.vector().entries()) {
    enumerated += seq;
  }
  if (enumerated > kMaxContextDots) {
    return std::nullopt;
  }
  const KeyRest& theirs_rest = RestOrEmpty(delta);
  theirs_rest.hash().AppendNames(touched.hash);
  theirs_rest.set().AppendNames(touched.set);
  theirs_rest.zset().AppendNames(touched.zset);
  Normalize(touched.hash);
  Normalize(touched.set);
  Normalize(touched.zset);
  if (holds_only_own) {
    return touched;  // a write's op delta holds only its own dots
  }

  auto own = [&](Dot dot) {
    return dot.replica == first_own.replica && dot.seq >= first_own.seq &&
           dot.seq - first_own.seq < own_count;
  };
  Pending pending;
  for (const auto& [replica, seq] : theirs.vector().entries()) {
    for (uint64_t s = 1; s <= seq; ++s) {
      if (!own(Dot{replica, s})) pending.Add(Dot{replica, s});
    }
  }
  for (const Dot& dot : theirs.cloud()) {
    if (!own(dot)) pending.Add(dot);
  }
  pending.Seal();
  if (pending.left() == 0) {
    return touched;
  }

  const KeyRest& rest = RestOrEmpty(state);
  auto take = [&](Dot dot) { pending.Take(dot); };
  for (const std::string& name : touched.hash) rest.hash().ForEachDotOf(name, take);
  for (const std::string& name : touched.set) rest.set().ForEachDotOf(name, take);
  for (const std::string& name : touched.zset) rest.zset().ForEachDotOf(name, take);
  for (const ListPosition& position : touched.list) rest.list().ForEachDotAt(position, take);
  state.string().ForEachDot(take);
  rest.hash_created().ForEachDot(take);
  rest.set_created().ForEachDot(take);
  rest.zset_created().ForEachDot(take);
  rest.list_created().ForEachDot(take);
  rest.stream_created().ForEachDot(take);
  rest.stream().meta_cell().ForEachDot(take);
  rest.stream().ForEachGroupDot(take);  // group state joins whole (Stream::JoinSome)
  for (const StreamEntryKey& key : touched.stream) take(key.dot);
  rest.expiry().ForEachDot(take);
  rest.chunks().ForEachDot(take);  // at most ~kChunksMax cells, joined whole
  if (pending.left() == 0) {
    return touched;
  }

  // Dots held by elements the delta does not name (a remote remove), or by nothing any more.
  ++ThreadJoinStats().scans;
  auto scan = [&pending](std::vector<std::string>& names) {
    return [&pending, out = &names](std::string_view name, Dot dot) {
      if (pending.Take(dot)) {
        out->emplace_back(name);
      }
      return pending.left() == 0;
    };
  };
  rest.hash().ScanDots(scan(touched.hash));
  if (pending.left() > 0) rest.set().ScanDots(scan(touched.set));
  if (pending.left() > 0) rest.zset().ScanDots(scan(touched.zset));
  if (pending.left() > 0 && rest.has_list()) {
    // A remote pop removes elements near an end: the scan starts from both.
    rest.list().ScanDotsFromEnds([&](const ListPosition& position, Dot dot) {
      if (pending.Take(dot)) {
        touched.list.push_back(position);
      }
      return pending.left() == 0;
    });
  }
  if (pending.left() > 0 && rest.has_stream()) {
    // A remote XTRIM removes the oldest entries: the scan starts there.
    rest.stream().ScanEntries([&](const StreamEntryKey& key) {
      if (pending.Take(key.dot)) {
        touched.stream.push_back(key);
      }
      return pending.left() == 0;
    });
  }
  Normalize(touched.hash);
  Normalize(touched.set);
  Normalize(touched.zset);
  std::sort(touched.stream.begin(), touched.stream.end());
  touched.stream.erase(std::unique(touched.stream.begin(), touched.stream.end()),
                       touched.stream.end());
  std::sort(touched.list.begin(), touched.list.end());
  touched.list.erase(std::unique(touched.list.begin(), touched.list.end()), touched.list.end());
  return touched;
}

}  // namespace

// cell.Join(delta, mine, theirs) without copying a large value more than it must: skipped when
// the delta holds no string cell and `theirs` covers none of the cell's dots (that join keeps
// every item, so the cell as it is, as BitChunks::Join keeps an item only one side holds), and
// an assignment that replaces the cell takes JoinSimple (one copy of the value, where Join
// copies it three times). A bitmap chunk write on a 1 MB string copies none of the megabyte.
void JoinStringCell(StringCell& cell, const StringCell& delta, const DotContext& mine,
                    const DotContext& theirs) {
  if (delta.empty()) {
    bool covered = false;
    cell.ForEachDot([&](Dot dot) { covered = covered || theirs.Contains(dot); });
    if (!covered) return;
  } else if (delta.rest() == nullptr && cell.JoinSimple(delta, mine, theirs)) {
    return;
  }
  cell.Join(delta, mine, theirs);
}

// Everything of the envelope besides the string cell and the collections: O(1) cells.
void JoinKeyCells(KeyRest& a, const KeyRest& b, const DotContext& mine, const DotContext& theirs) {
  if (a.has_hash() || b.has_hash()) a.mutable_hash_created().Join(b.hash_created(), mine, theirs);
  if (a.has_set() || b.has_set()) a.mutable_set_created().Join(b.set_created(), mine, theirs);
  if (a.has_zset() || b.has_zset()) a.mutable_zset_created().Join(b.zset_created(), mine, theirs);
  if (a.has_list() || b.has_list()) a.mutable_list_created().Join(b.list_created(), mine, theirs);
  if (a.has_stream() || b.has_stream()) {
    a.mutable_stream_created().Join(b.stream_created(), mine, theirs);
  }
  if (!a.expiry().empty() || !b.expiry().empty()) {
    if (!MutationInjected(Mutation::kNonCommutativeJoin) || a.expiry().empty()) {
      a.mutable_expiry().Join(b.expiry(), mine, theirs);  // the injected bug keeps ours
    }
  }
}

void Key::JoinDelta(const Key& delta, const DotContext& mine, const DotContext& theirs,
                    Dot first_own, uint64_t own_count) {
  JoinTouched(delta, mine, theirs, first_own, own_count, TouchedNames{}, false);
}

void Key::JoinTouched(const Key& delta, const DotContext& mine, const DotContext& theirs,
                      Dot first_own, uint64_t own_count, TouchedNames hint, bool holds_only_own) {
  JoinStats& stats = ThreadJoinStats();
  if (rest_.get() == nullptr && delta.rest_.get() == nullptr) {
    ++stats.delta_joins;
    JoinStringCell(string_, delta.string_, mine, theirs);  // no collections: nothing to walk
    return;
  }
  std::optional<TouchedNames> touched;
  if (!stats.force_full) {
    touched = Touched(*this, delta, theirs, first_own, own_count, std::move(hint), holds_only_own);
  }
  if (!touched) {
    ++stats.full_joins;
    Join(delta, mine, theirs);
    return;
  }
  ++stats.delta_joins;
  JoinStringCell(string_, delta.string_, mine, theirs);
  KeyRest& a = rest_.Mutable();
  const KeyRest& b = RestOrEmpty(delta);
  if (!touched->hash.empty() && (a.has_hash() || b.has_hash())) {
    a.mutable_hash().JoinSome(b.hash(), mine, theirs, touched->hash);
  }
  if (!touched->set.empty() && (a.has_set() || b.has_set())) {
    a.mutable_set().JoinSome(b.set(), mine, theirs, touched->set);
  }
  if (!touched->zset.empty() && (a.has_zset() || b.has_zset())) {
    a.mutable_zset().JoinSome(b.zset(), mine, theirs, touched->zset);
  }
  if ((!touched->list.empty() || !b.list().empty()) && (a.has_list() || b.has_list())) {
    a.mutable_list().JoinDelta(b.list(), mine, theirs, touched->list);
  }
  if (a.has_stream() || b.has_stream()) {  // the metadata cell joins whatever the delta holds
    a.mutable_stream().JoinSome(b.stream(), mine, theirs, touched->stream);
  }
  if (a.has_chunks() || b.has_chunks()) a.mutable_chunks().Join(b.chunks(), mine, theirs);
  JoinKeyCells(a, b, mine, theirs);
  NormalizeRest();
}

}  // namespace lattice::crdt
