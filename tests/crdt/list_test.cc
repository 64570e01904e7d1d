// crdt::List: positions, one-region behaviour against a std::deque model, the merge rules of
// concurrent writes, and the join laws over random concurrent histories (seeds printed).
#include "lattice/crdt/list.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "lattice/common/rng.h"

namespace lattice::crdt {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// An op: the delta, the dots it covers, and the positions it removed (JoinDelta's hint).
struct ListOp {
  List delta;
  DotContext covered;
  std::vector<ListPosition> removed;
};

// A replica of one list: its state, its context and where its dots come from. Every op is
// applied with JoinDelta, and `reference` applies the same ops with the full Join: the two
// must always be equal.
struct ListReplica {
  explicit ListReplica(ReplicaId id) : dots(id) {}
  List list;
  List reference;
  DotContext context;
  DotSource dots;
  uint64_t hlc = 0;

  WriteStamp Stamp() { return WriteStamp{&dots, ++hlc}; }
  // Applies a local delta (what every mutator's caller does) and returns it as an op.
  ListOp Commit(List delta, const DotContext& covered, std::vector<ListPosition> removed = {}) {
    ListOp op{std::move(delta), covered, std::move(removed)};
    Apply(op);
    return op;
  }
  void Apply(const ListOp& op) {
    list.JoinDelta(op.delta, context, op.covered, op.removed);
    reference.Join(op.delta, context, op.covered);
    context.Join(op.covered);
    REQUIRE(list == reference);
  }
};

std::vector<std::string> Values(const List& list) {
  return list.Range(0, list.Size() == 0 ? 0 : list.Size() - 1);
}

ListPosition RandomPosition(Rng& rng) {
  static const std::vector<int64_t> kEdges = {kMin, kMin + 1, -1, 0, 1, kMax - 1, kMax};
  auto digit = [&] {
    const int64_t n = rng.Chance(1, 3) ? kEdges[rng.Uniform(kEdges.size())] : rng.Range(-3, 3);
    return ListDigit{
        n, Dot{static_cast<ReplicaId>(rng.Range(1, 3)), static_cast<uint64_t>(rng.Range(1, 4))}};
  };
  std::vector<ListDigit> prefix;
  for (uint64_t i = rng.Uniform(3); i > 0; --i) {
    prefix.push_back(digit());
  }
  return ListPosition(std::move(prefix), digit());
}

TEST_CASE("a new position lies strictly between its neighbours", "[crdt][list]") {
  for (uint64_t seed = 1; seed <= 20000; ++seed) {
    CAPTURE(seed);
    Rng rng(seed);
    ListPosition a = RandomPosition(rng);
    ListPosition b = RandomPosition(rng);
    if (a == b) {
      continue;
    }
    if (b < a) {
      std::swap(a, b);
    }
    const Dot dot{static_cast<ReplicaId>(rng.Range(1, 3)), 100 + seed};
    const ListPosition mid = PositionBetween(&a, &b, dot);
    REQUIRE(a < mid);
    REQUIRE(mid < b);
    REQUIRE(mid.id() == dot);
    REQUIRE(PositionBetween(nullptr, &a, dot) < a);
    REQUIRE(b < PositionBetween(&b, nullptr, dot));
  }
}

TEST_CASE("repeated inserts next to one element keep positions short", "[crdt][list]") {
  ListReplica r(1);
  DotContext pushed;
  WriteStamp first = r.Stamp();
  r.Commit(r.list.PushDelta(ListEnd::kTail, {"a", "z"}, first, pushed), pushed);
  for (int i = 0; i < 1000; ++i) {
    DotContext covered;
    WriteStamp stamp = r.Stamp();
    // Alternately right after the head and right before the tail.
    const bool after_head = i % 2 == 0;
    List delta = r.list.InsertDelta(after_head ? 0 : r.list.Size() - 1, !after_head,
                                    std::to_string(i), stamp, covered);
    r.Commit(std::move(delta), covered);
  }
  REQUIRE(r.list.Size() == 1002);
  size_t deepest = 0;
  r.list.ForEachElement([&](const ListPosition& position, const ListValue&) {
    deepest = std::max(deepest, position.depth());
  });
  CHECK(deepest <= 3);
  REQUIRE(*r.list.At(0) == "a");
  REQUIRE(*r.list.At(1001) == "z");
}

// One region: every operation agrees with a std::deque doing what Valkey does.
TEST_CASE("one region behaves as a deque", "[crdt][list]") {
  for (uint64_t seed = 1; seed <= 2000; ++seed) {
    CAPTURE(seed);
    Rng rng(seed);
    ListReplica r(1);
    List local;  // the same writes through the in-place paths (PushLocal, RemoveLocal)
    std::deque<std::string> model;
    for (int step = 0; step < 60; ++step) {
      DotContext covered;
      WriteStamp stamp = r.Stamp();
      const std::string value = "v" + std::to_string(rng.Uniform(6));
      const uint64_t action = rng.Uniform(model.empty() ? 2 : 9);
      if (action < 2) {  // LPUSH / RPUSH of 1-3 values
        std::vector<std::string> values;
        for (uint64_t i = 0; i <= rng.Uniform(3); ++i) {
          values.push_back(value + "." + std::to_string(i));
        }
        const ListEnd end = action == 0 ? ListEnd::kHead : ListEnd::kTail;
        DotSource dots = r.dots;
        WriteStamp local_stamp{&dots, stamp.hlc};
        DotContext local_covered;
        const List local_delta = local.PushLocal(end, values, local_stamp, local_covered);
        List delta = r.list.PushDelta(end, values, stamp, covered);
        REQUIRE(local_delta == delta);
        REQUIRE(local_covered == covered);
        r.Commit(std::move(delta), covered);
        for (const std::string& v : values) {
          end == ListEnd::kHead ? model.push_front(v) : model.push_back(v);
        }
      } else if (action >= 7) {  // LPOP / RPOP of 1-3
        const size_t count = std::min<size_t>(model.size(), 1 + rng.Uniform(3));
        std::vector<size_t> indexes;
        for (size_t i = 0; i < count; ++i) {
          indexes.push_back(action == 7 ? i : model.size() - count + i);
        }
        DotContext local_covered;
        local.RemoveLocal(indexes, local_covered);
        std::vector<ListPosition> removed;
        List delta = r.list.RemoveDelta(indexes, covered, &removed);
        r.Commit(std::move(delta), covered, std::move(removed));
        REQUIRE(local_covered == covered);
        for (size_t i = 0; i < count; ++i) {
          action == 7 ? model.pop_front() : model.pop_back();
        }
      } else if (action == 2) {  // LINSERT
        const size_t index = rng.Uniform(model.size());
        const bool before = rng.Chance(1, 2);
        r.Commit(r.list.InsertDelta(index, before, value, stamp, covered), covered);
        model.insert(model.begin() + static_cast<ptrdiff_t>(before ? index : index + 1), value);
      } else if (action == 3) {  // LSET
        const size_t index = rng.Uniform(model.size());
        r.Commit(r.list.SetDelta(index, value, stamp, covered), covered);
        model[index] = value;
      } else {  // LPOP / RPOP / LTRIM / LREM-like: remove a random subset
        std::vector<size_t> indexes;
        std::deque<std::string> kept;
        for (size_t i = 0; i < model.size(); ++i) {
          if (rng.Chance(1, 3)) {
            indexes.push_back(i);
          } else {
            kept.push_back(model[i]);
          }
        }
        std::vector<ListPosition> removed;
        List delta = r.list.RemoveDelta(indexes, covered, &removed);
        r.Commit(std::move(delta), covered, std::move(removed));
        model = kept;
      }
      REQUIRE(Values(r.list) == std::vector<std::string>(model.begin(), model.end()));
      REQUIRE(r.list.Size() == model.size());
      if (action >= 2 && action < 7) {
        local = r.list;  // LINSERT, LSET, removes in the middle: the generic path only
      }
      REQUIRE(local == r.list);
      REQUIRE(local.ListpackBytes() == r.list.ListpackBytes());
    }
    // Walk from either end visits every element once with head-based indexes.
    std::vector<size_t> from_tail;
    r.list.Walk(ListEnd::kTail, [&](size_t index, std::string_view v) {
      REQUIRE(v == model[index]);
      from_tail.push_back(index);
      return true;
    });
    REQUIRE(from_tail.size() == model.size());
  }
}

// A long list spans many chunks: pushes at both ends, inserts, sets and pops in the middle and
// at the ends still agree with the model, applied through JoinDelta (checked against Join).
TEST_CASE("a list of many chunks behaves as a deque", "[crdt][list]") {
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    CAPTURE(seed);
    Rng rng(seed);
    ListReplica r(1);
    std::deque<std::string> model;
    for (int step = 0; step < 2500; ++step) {
      DotContext covered;
      WriteStamp stamp = r.Stamp();
      const std::string value = "value-" + std::to_string(step) + "-0123456789";
      const uint64_t action = rng.Uniform(model.size() < 10 ? 2 : 10);
      if (action < 4) {
        const ListEnd end = action % 2 == 0 ? ListEnd::kHead : ListEnd::kTail;
        r.Commit(r.list.PushDelta(end, {value}, stamp, covered), covered);
        end == ListEnd::kHead ? model.push_front(value) : model.push_back(value);
      } else if (action < 6) {
        const size_t index = rng.Uniform(model.size());
        r.Commit(r.list.InsertDelta(index, action == 4, value, stamp, covered), covered);
        model.insert(model.begin() + static_cast<ptrdiff_t>(action == 4 ? index : index + 1),
                     value);
      } else if (action == 6) {
        const size_t index = rng.Uniform(model.size());
        r.Commit(r.list.SetDelta(index, value, stamp, covered), covered);
        model[index] = value;
      } else {
        // Pop one from an end, or remove one from the middle.
        const size_t index = action == 7   ? 0
                             : action == 8 ? model.size() - 1
                                           : rng.Uniform(model.size());
        std::vector<ListPosition> removed;
        List delta = r.list.RemoveDelta({index}, covered, &removed);
        r.Commit(std::move(delta), covered, std::move(removed));
        model.erase(model.begin() + static_cast<ptrdiff_t>(index));
      }
      REQUIRE(r.list.Size() == model.size());
      if (step % 100 == 0 || step == 2499) {
        REQUIRE(Values(r.list) == std::vector<std::string>(model.begin(), model.end()));
        const size_t probe = rng.Uniform(model.size());
        REQUIRE(*r.list.At(probe) == model[probe]);
        const size_t from = rng.Uniform(model.size());
        REQUIRE(r.list.Range(from, from + 9) ==
                std::vector<std::string>(
                    model.begin() + static_cast<ptrdiff_t>(from),
                    model.begin() + static_cast<ptrdiff_t>(std::min(model.size(), from + 10))));
      }
    }
    REQUIRE(r.list.AllocatedBytes() > List::kChunkBytes * 4);  // it did span many chunks
  }
}

// What an element costs: a queue of 16-byte values pushed by one region is coded in about the
// value plus 5 bytes (redis-server's quicklist: about 18 bytes per such element).
TEST_CASE("pushed elements cost the value and a few bytes", "[crdt][list][memory]") {
  ListReplica r(0x5eed5eed5eedULL);
  r.hlc = uint64_t{1'700'000'000'000} << 16;
  constexpr int kElements = 10000;
  for (int i = 0; i < kElements; ++i) {
    DotContext covered;
    WriteStamp stamp = r.Stamp();
    char value[17];
    std::snprintf(value, sizeof(value), "%016d", i);
    List delta = r.list.PushDelta(ListEnd::kTail, {value}, stamp, covered);
    r.list.JoinDelta(delta, r.context, covered, {});
    r.context.Join(covered);
  }
  const double per_element = static_cast<double>(r.list.AllocatedBytes()) / kElements;
  CAPTURE(per_element);
  CHECK(per_element <= 24.0);
  REQUIRE(*r.list.At(kElements - 1) == "0000000000009999");
}

TEST_CASE("concurrent pushes keep every element in one order everywhere", "[crdt][list]") {
  ListReplica a(1);
  ListReplica b(2);
  DotContext ca;
  DotContext cb;
  WriteStamp sa = a.Stamp();
  WriteStamp sb = b.Stamp();
  auto op_a = a.Commit(a.list.PushDelta(ListEnd::kTail, {"a1", "a2"}, sa, ca), ca);
  auto op_b = b.Commit(b.list.PushDelta(ListEnd::kTail, {"b1"}, sb, cb), cb);
  a.Apply(op_b);
  b.Apply(op_a);
  REQUIRE(a.list == b.list);
  REQUIRE(a.list.Size() == 3);
  // Each region's own elements stay in the order they were pushed.
  const auto values = Values(a.list);
  const auto a1 = std::find(values.begin(), values.end(), "a1");
  const auto a2 = std::find(values.begin(), values.end(), "a2");
  REQUIRE(a1 < a2);
}

TEST_CASE("concurrent pops may return the same element; both removes apply", "[crdt][list]") {
  ListReplica a(1);
  ListReplica b(2);
  DotContext c0;
  WriteStamp s0 = a.Stamp();
  auto push = a.Commit(a.list.PushDelta(ListEnd::kTail, {"x", "y"}, s0, c0), c0);
  b.Apply(push);
  DotContext ca;
  DotContext cb;
  REQUIRE(*a.list.At(0) == "x");  // both pop "x"
  REQUIRE(*b.list.At(0) == "x");
  std::vector<ListPosition> ra;
  std::vector<ListPosition> rb;
  List da = a.list.RemoveDelta({0}, ca, &ra);
  List db = b.list.RemoveDelta({0}, cb, &rb);
  auto pop_a = a.Commit(std::move(da), ca, ra);
  auto pop_b = b.Commit(std::move(db), cb, rb);
  a.Apply(pop_b);
  b.Apply(pop_a);
  REQUIRE(a.list == b.list);
  REQUIRE(Values(a.list) == std::vector<std::string>{"y"});
}

TEST_CASE("a remove keeps what it did not observe; LSET loses to a concurrent remove",
          "[crdt][list]") {
  ListReplica a(1);
  ListReplica b(2);
  DotContext c0;
  WriteStamp s0 = a.Stamp();
  b.Apply(a.Commit(a.list.PushDelta(ListEnd::kTail, {"x", "y"}, s0, c0), c0));
  // a trims everything it sees while b pushes "z" and sets "y".
  DotContext ca;
  std::vector<ListPosition> trimmed;
  List trim_delta = a.list.RemoveDelta({0, 1}, ca, &trimmed);
  auto trim = a.Commit(std::move(trim_delta), ca, trimmed);
  DotContext cb;
  WriteStamp sb = b.Stamp();
  auto push = b.Commit(b.list.PushDelta(ListEnd::kTail, {"z"}, sb, cb), cb);
  DotContext cs;
  WriteStamp ss = b.Stamp();
  auto set = b.Commit(b.list.SetDelta(1, "Y", ss, cs), cs);
  a.Apply(push);
  a.Apply(set);
  b.Apply(trim);
  REQUIRE(a.list == b.list);
  REQUIRE(Values(a.list) == std::vector<std::string>{"z"});
}

TEST_CASE("concurrent LSETs of one element: the greater stamp wins", "[crdt][list]") {
  ListReplica a(1);
  ListReplica b(2);
  DotContext c0;
  WriteStamp s0 = a.Stamp();
  b.Apply(a.Commit(a.list.PushDelta(ListEnd::kTail, {"x"}, s0, c0), c0));
  b.hlc = 100;  // b's write carries the later HLC
  DotContext ca;
  DotContext cb;
  WriteStamp sa = a.Stamp();
  WriteStamp sb = b.Stamp();
  auto set_a = a.Commit(a.list.SetDelta(0, "from-a", sa, ca), ca);
  auto set_b = b.Commit(b.list.SetDelta(0, "from-b", sb, cb), cb);
  a.Apply(set_b);
  b.Apply(set_a);
  REQUIRE(a.list == b.list);
  REQUIRE(*a.list.At(0) == "from-b");
}

// Three regions write concurrently and exchange ops in causal order: the join is a
// semilattice, and every causal delivery order of the same ops gives the same state.
TEST_CASE("list joins obey the laws over random concurrent histories", "[crdt][list][laws]") {
  struct Logged {
    ListOp op;
    std::vector<bool> deps;
  };
  auto deliverable = [](const Logged& l, const std::vector<bool>& applied) {
    for (size_t i = 0; i < l.deps.size(); ++i) {
      if (l.deps[i] && !applied[i]) {
        return false;
      }
    }
    return true;
  };
  for (uint64_t seed = 1; seed <= 3000; ++seed) {
    CAPTURE(seed);
    Rng rng(0x115700 + seed);
    std::vector<ListReplica> regions;
    std::vector<std::vector<bool>> applied(3);
    for (ReplicaId id = 1; id <= 3; ++id) {
      regions.emplace_back(id);
    }
    std::vector<Logged> log;
    for (int step = 0; step < 30; ++step) {
      const size_t at = rng.Uniform(3);
      ListReplica& r = regions[at];
      applied[at].resize(log.size(), false);
      if (rng.Chance(1, 2)) {  // deliver one ready op
        std::vector<size_t> ready;
        for (size_t i = 0; i < log.size(); ++i) {
          if (!applied[at][i] && deliverable(log[i], applied[at])) {
            ready.push_back(i);
          }
        }
        if (!ready.empty()) {
          const size_t pick = ready[rng.Uniform(ready.size())];
          r.Apply(log[pick].op);
          applied[at][pick] = true;
        }
        continue;
      }
      DotContext covered;
      WriteStamp stamp = r.Stamp();
      const std::string value = std::to_string(rng.Uniform(4));
      const size_t size = r.list.Size();
      List delta;
      std::vector<ListPosition> removed;
      const uint64_t action = rng.Uniform(size == 0 ? 2 : 5);
      if (action < 2) {
        delta = r.list.PushDelta(action == 0 ? ListEnd::kHead : ListEnd::kTail,
                                 {value, value + "'"}, stamp, covered);
      } else if (action == 2) {
        delta = r.list.InsertDelta(rng.Uniform(size), rng.Chance(1, 2), value, stamp, covered);
      } else if (action == 3) {
        delta = r.list.SetDelta(rng.Uniform(size), value, stamp, covered);
      } else {
        std::vector<size_t> indexes;
        for (size_t i = 0; i < size; ++i) {
          if (rng.Chance(1, 2)) {
            indexes.push_back(i);
          }
        }
        delta = r.list.RemoveDelta(indexes, covered, &removed);
      }
      log.push_back(Logged{r.Commit(std::move(delta), covered, std::move(removed)), applied[at]});
      applied[at].push_back(true);
    }
    auto joined = [](const ListReplica& x, const ListReplica& y) {
      ListReplica out = x;
      out.list.Join(y.list, x.context, y.context);
      out.reference = out.list;
      out.context.Join(y.context);
      return out;
    };
    const ListReplica& a = regions[0];
    const ListReplica& b = regions[1];
    const ListReplica& c = regions[2];
    REQUIRE(joined(a, b).list == joined(b, a).list);
    REQUIRE(joined(joined(a, b), c).list == joined(a, joined(b, c)).list);
    REQUIRE(joined(a, a).list == a.list);
    // Two random causal orders of every op, from scratch, agree with each other and with the
    // join of the three regions' states.
    const List all = joined(joined(a, b), c).list;
    for (int order = 0; order < 2; ++order) {
      ListReplica fresh(99);
      std::vector<bool> done(log.size(), false);
      for (size_t n = 0; n < log.size(); ++n) {
        std::vector<size_t> ready;
        for (size_t i = 0; i < log.size(); ++i) {
          if (!done[i] && deliverable(log[i], done)) {
            ready.push_back(i);
          }
        }
        REQUIRE_FALSE(ready.empty());
        const size_t pick = ready[rng.Uniform(ready.size())];
        fresh.Apply(log[pick].op);
        done[pick] = true;
      }
      REQUIRE(fresh.list == all);
    }
  }
}

// A small list is one buffer of its bytes' size class, as Valkey allocates a listpack: 10
// RPUSHed 15-byte members of one op (the memory benchmark's small list) fit 192 bytes.
TEST_CASE("a small list is one buffer of its size class", "[crdt][list][memory]") {
  ListReplica r(0x5eed5eed5eedULL);
  r.hlc = uint64_t{1'800'000'000'000} << 16;
  r.dots = DotSource(r.dots.replica(), 100'000);
  std::vector<std::string> values;
  for (int i = 0; i < 10; ++i) {
    char value[16];
    std::snprintf(value, sizeof(value), "member:%08d", i);
    values.emplace_back(value);
  }
  DotContext covered;
  WriteStamp stamp = r.Stamp();
  r.Commit(r.list.PushDelta(ListEnd::kTail, values, stamp, covered), covered);
  CAPTURE(r.list.AllocatedBytes());
  CHECK(r.list.AllocatedBytes() <= 192);
  CHECK(sizeof(List) <= 88);  // with the one chunk inline: jemalloc's 128 class once boxed
  REQUIRE(Values(r.list) == values);
}

TEST_CASE("listpack entry bytes are Valkey's", "[crdt][list]") {
  CHECK(ListpackEntryBytes("xxx") == 5);    // 1 + 3 + back length
  CHECK(ListpackEntryBytes("127") == 2);    // 7-bit uint
  CHECK(ListpackEntryBytes("128") == 3);    // 13-bit int
  CHECK(ListpackEntryBytes("-4096") == 3);  // 13-bit int
  CHECK(ListpackEntryBytes("4096") == 4);   // 16-bit int
  CHECK(ListpackEntryBytes("007") == 5);    // not an integer to Valkey
  CHECK(ListpackEntryBytes(std::string(63, 'a')) == 65);
  CHECK(ListpackEntryBytes(std::string(64, 'a')) == 67);
  CHECK(ListpackEntryBytes(std::string(200, 'a')) == 204);  // 2-byte back length
}

// OBJECT ENCODING's hysteresis: a list converts to a quicklist once it passes the limit and back
// only within half of it, so oscillating around the limit converts once, not on every write.
TEST_CASE("a list oscillating around the listpack limit converts once", "[crdt][list]") {
  for (const int64_t fill : {int64_t{16}, int64_t{-1}}) {
    CAPTURE(fill);
    const ListpackLimits limits = ListpackLimits::OfFill(fill);
    ListReplica r(1);
    const std::string value(100, 'v');  // 103 listpack bytes: 39 fit 4 KB, 19 fit half
    int conversions = 0;
    bool quicklist = false;
    auto write = [&](bool push) {
      DotContext covered;
      WriteStamp stamp = r.Stamp();
      if (push) {
        r.list.PushLocal(ListEnd::kTail, {value}, stamp, covered);
      } else {
        r.list.RemoveLocal({r.list.Size() - 1}, covered);
      }
      r.list.SettleEncoding(limits);
      conversions += r.list.Quicklist(limits) != quicklist ? 1 : 0;
      quicklist = r.list.Quicklist(limits);
    };
    const size_t limit = fill > 0 ? 16 : 39;  // the most elements a listpack holds
    const size_t half = fill > 0 ? 8 : 19;    // the most it converts back at
    while (r.list.Size() < limit) {
      write(true);
    }
    CHECK(conversions == 0);
    for (int i = 0; i < 50; ++i) {  // around the limit
      write(true);
      write(false);
    }
    CHECK(conversions == 1);
    CHECK(quicklist);
    while (r.list.Size() > half + 1) {
      write(false);
    }
    CHECK(quicklist);  // still above half the limit
    write(false);
    CHECK(!quicklist);
    CHECK(conversions == 2);
    List copy = r.list;  // the state is not part of equality
    copy.SettleEncoding(ListpackLimits::OfFill(1));
    CHECK(copy.Quicklist(ListpackLimits::OfFill(1)));
    CHECK(copy == r.list);
  }
}

}  // namespace
}  // namespace lattice::crdt
