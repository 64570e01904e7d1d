// Streams as a key type: the merge rules of docs/semantics.md ("Streams") between two replicas:
// concurrent XADDs (equal IDs kept, ordered by writer), observed-remove XDEL/XTRIM/DEL, the
// metadata register's maximum, and type conflicts.
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"

namespace lattice::crdt::testing {
namespace {

using Ids = std::vector<std::pair<StreamId, ReplicaId>>;

Ids All(const Key& key) {
  Ids out;
  if (key.TypeAt(1000) != ObjectType::kStream) return out;
  for (const auto& [entry, fields] : key.stream().entries()) {
    out.emplace_back(entry.id, entry.dot.replica);
  }
  return out;
}

Key::StreamEdit Add(const Key& key, StreamId id, std::string value) {
  Key::StreamEdit edit;
  const StreamMeta meta = key.stream().Meta();
  edit.adds.emplace_back(id, Stream::Fields{"f", std::move(value)});
  edit.meta = StreamMeta{id, meta.max_deleted, meta.entries_added + 1};
  return edit;
}

Key::StreamEdit Remove(const Key& key, StreamId id) {
  Key::StreamEdit edit;
  for (const auto& [entry, fields] : key.stream().entries()) {
    if (entry.id == id) edit.remove.push_back(entry);
  }
  StreamMeta meta = key.stream().Meta();
  meta.max_deleted = std::max(meta.max_deleted, id);
  edit.meta = meta;
  return edit;
}

TEST_CASE("stream key: concurrent XADDs keep every entry, equal IDs ordered by writer",
          "[crdt][stream]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.XEdit(Add(a.key, {1, 0}, "base"), a.W(1), a.context)));
  const KeyOp xa = Ok(a.key.XEdit(Add(a.key, {5, 0}, "a"), a.W(2), a.context));
  const KeyOp xb = Ok(b.key.XEdit(Add(b.key, {5, 0}, "b"), b.W(2), b.context));
  const KeyOp xb2 = Ok(b.key.XEdit(Add(b.key, {4, 0}, "b2"), b.W(3), b.context));
  a.Apply(xb);
  a.Apply(xb2);
  b.Apply(xa);
  CHECK(a.key == b.key);
  CHECK(All(a.key) == Ids{{{1, 0}, 1}, {{4, 0}, 2}, {{5, 0}, 1}, {{5, 0}, 2}});
  // The merged last ID is the greatest either region generated.
  CHECK(a.key.stream().Meta().last_id == StreamId{5, 0});
  CHECK(a.key.stream().Meta().entries_added >= 3);
}

TEST_CASE("stream key: XDEL and XTRIM remove only what they saw", "[crdt][stream]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.XEdit(Add(a.key, {1, 0}, "x"), a.W(1), a.context)));
  b.Apply(Ok(a.key.XEdit(Add(a.key, {2, 0}, "y"), a.W(2), a.context)));
  SECTION("XDEL of an ID against a concurrent XADD of the same ID") {
    const KeyOp del = Ok(a.key.XEdit(Remove(a.key, {2, 0}), a.W(3), a.context));
    Key::StreamEdit again = Add(b.key, {2, 0}, "z");
    again.meta->last_id = StreamId{2, 0};
    const KeyOp add = Ok(b.key.XEdit(std::move(again), b.W(3), b.context));
    a.Apply(add);
    b.Apply(del);
    CHECK(a.key == b.key);
    CHECK(All(a.key) == Ids{{{1, 0}, 1}, {{2, 0}, 2}});
    CHECK(a.key.stream().Meta().max_deleted == StreamId{2, 0});
  }
  SECTION("XTRIM MAXLEN 0 against a concurrent XADD keeps the new entry") {
    Key::StreamEdit trim;
    for (const auto& [entry, fields] : a.key.stream().entries()) trim.remove.push_back(entry);
    const KeyOp cut = Ok(a.key.XEdit(std::move(trim), a.W(3), a.context));
    const KeyOp add = Ok(b.key.XEdit(Add(b.key, {3, 0}, "late"), b.W(3), b.context));
    a.Apply(add);
    b.Apply(cut);
    CHECK(a.key == b.key);
    CHECK(All(a.key) == Ids{{{3, 0}, 2}});
  }
  SECTION("an emptied stream still exists (its metadata); DEL against an XADD keeps the XADD") {
    const KeyOp del1 = Ok(a.key.XEdit(Remove(a.key, {1, 0}), a.W(3), a.context));
    const KeyOp del2 = Ok(a.key.XEdit(Remove(a.key, {2, 0}), a.W(4), a.context));
    CHECK(a.key.TypeAt(1000) == ObjectType::kStream);
    CHECK(a.key.stream().Size() == 0);
    b.Apply(del1);
    b.Apply(del2);
    auto gone = a.key.Del(a.W(5), a.context);
    REQUIRE(gone);
    CHECK(a.key.TypeAt(1000) == ObjectType::kNone);
    const KeyOp add = Ok(b.key.XEdit(Add(b.key, {9, 0}, "v"), b.W(5), b.context));
    a.Apply(add);
    b.Apply(*gone);
    CHECK(a.key == b.key);
    CHECK(All(a.key) == Ids{{{9, 0}, 2}});
  }
}

TEST_CASE("stream key: XSETID and XADD meet at the maximum; type conflicts", "[crdt][stream]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.XEdit(Add(a.key, {1, 0}, "x"), a.W(1), a.context)));
  Key::StreamEdit set;
  set.meta = StreamMeta{{10, 0}, {}, 1};
  const KeyOp setid = Ok(a.key.XEdit(std::move(set), a.W(2), a.context));
  const KeyOp add = Ok(b.key.XEdit(Add(b.key, {12, 0}, "y"), b.W(2), b.context));
  a.Apply(add);
  b.Apply(setid);
  CHECK(a.key == b.key);
  CHECK(a.key.stream().Meta().last_id == StreamId{12, 0});
  // A later XSETID that saw both lowers it (to at least the top entry, as Valkey allows).
  Key::StreamEdit lower;
  lower.meta = StreamMeta{{12, 0}, {}, 2};
  b.Apply(Ok(a.key.XEdit(std::move(lower), a.W(3), a.context)));
  CHECK(a.key == b.key);
  CHECK(a.key.stream().Meta().last_id == StreamId{12, 0});
  // A SET that saw the stream replaces it; an XADD on a string is WRONGTYPE.
  const KeyOp over = Ok(a.key.Set("s", false, std::nullopt, a.W(4), a.context));
  b.Apply(over);
  CHECK(b.key.TypeAt(1000) == ObjectType::kString);
  CHECK_FALSE(b.key.XEdit(Add(b.key, {20, 0}, "z"), b.W(5), b.context).ok());
  CHECK(a.key == b.key);
}

}  // namespace
}  // namespace lattice::crdt::testing
