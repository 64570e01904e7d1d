// Stream consumer groups between two regions: the rules of docs/semantics.md ("Consumer groups"):
// groups and consumers as observed-remove slots, the last-delivered ID at the maximum of
// concurrent values, XACK as an observed remove of the pending entry, concurrent deliveries of
// one entry resolved to one owner everywhere, and a write concurrent with DESTROY bringing the
// group back with what it wrote.
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"

namespace lattice::crdt::testing {
namespace {

GroupSlot G(std::string name) { return GroupSlot{std::move(name)}; }
GroupSlot C(std::string group, std::string name) {
  return GroupSlot{std::move(group), GroupPart::kConsumer, std::move(name), StreamId{}};
}
GroupSlot P(std::string group, StreamId id) {
  return GroupSlot{std::move(group), GroupPart::kPending, "", id};
}

Key::StreamEdit AddEntry(const Key& key, StreamId id) {
  Key::StreamEdit edit;
  const StreamMeta meta = key.stream().Meta();
  edit.adds.emplace_back(id, Stream::Fields{"f", "v"});
  edit.meta = StreamMeta{id, meta.max_deleted, meta.entries_added + 1};
  return edit;
}

Key::StreamEdit CreateGroup(std::string name, StreamId last) {
  Key::StreamEdit edit;
  GroupValue value;
  value.last_id = last;
  edit.group_write.emplace_back(G(std::move(name)), value);
  return edit;
}

// XREADGROUP's write: the group advanced to `id`, the consumer seen, the entry pending.
Key::StreamEdit Deliver(const Key& key, const std::string& group, const std::string& consumer,
                        StreamId id, int64_t now_ms) {
  Key::StreamEdit edit;
  GroupValue g = key.stream().FindSlot(G(group)).value();
  g.last_id = std::max(g.last_id, id);
  GroupValue c;
  c.seen_ms = now_ms;
  c.active_ms = now_ms;
  GroupValue p = key.stream().FindSlot(P(group, id)).value_or(GroupValue{});
  p.owner = consumer;
  p.seen_ms = now_ms;
  p.deliveries += 1;
  edit.group_write = {{G(group), g}, {C(group, consumer), c}, {P(group, id), p}};
  return edit;
}

Key::StreamEdit Ack(const std::string& group, StreamId id) {
  Key::StreamEdit edit;
  edit.group_remove.push_back(P(group, id));
  return edit;
}

// Two regions sharing a stream with entries 1-0 and 2-0 and group "g" at 0-0.
struct Pair {
  Node a{1};
  Node b{2};
  Pair() {
    b.Apply(Ok(a.key.XEdit(AddEntry(a.key, {1, 0}), a.W(1), a.context)));
    b.Apply(Ok(a.key.XEdit(AddEntry(a.key, {2, 0}), a.W(2), a.context)));
    b.Apply(Ok(a.key.XEdit(CreateGroup("g", {}), a.W(3), a.context)));
  }
};

TEST_CASE("stream groups: a group created in one region appears in the other",
          "[crdt][stream][groups]") {
  Pair r;
  REQUIRE(r.b.key.stream().GroupNames() == std::vector<std::string>{"g"});
  CHECK(r.b.key.stream().FindSlot(G("g"))->last_id == StreamId{});
}

TEST_CASE("stream groups: concurrent creates and SETIDs meet at the greatest last-delivered ID",
          "[crdt][stream][groups]") {
  Pair r;
  const KeyOp xa = Ok(r.a.key.XEdit(CreateGroup("g", {2, 0}), r.a.W(10), r.a.context));
  const KeyOp xb = Ok(r.b.key.XEdit(CreateGroup("g", {1, 0}), r.b.W(11), r.b.context));
  r.a.Apply(xb);
  r.b.Apply(xa);
  CHECK(r.a.key == r.b.key);
  CHECK(r.a.key.stream().FindSlot(G("g"))->last_id == StreamId{2, 0});
  CHECK(r.a.key.stream().GroupNames().size() == 1);
}

TEST_CASE("stream groups: XACK in one region removes the pending entry in the other",
          "[crdt][stream][groups]") {
  Pair r;
  r.b.Apply(Ok(r.a.key.XEdit(Deliver(r.a.key, "g", "alice", {1, 0}, 500), r.a.W(10), r.a.context)));
  REQUIRE(r.b.key.stream().FindSlot(P("g", {1, 0})).has_value());
  CHECK(r.b.key.stream().FindSlot(P("g", {1, 0}))->seen_ms == 500);  // the writer's time
  r.a.Apply(Ok(r.b.key.XEdit(Ack("g", {1, 0}), r.b.W(11), r.b.context)));
  CHECK(r.a.key == r.b.key);
  CHECK_FALSE(r.a.key.stream().FindSlot(P("g", {1, 0})).has_value());
  // The consumer stays, as in Valkey.
  CHECK(r.a.key.stream().FindSlot(C("g", "alice")).has_value());
}

TEST_CASE("stream groups: a claim concurrent with XACK keeps the entry pending, claimed",
          "[crdt][stream][groups]") {
  Pair r;
  r.b.Apply(Ok(r.a.key.XEdit(Deliver(r.a.key, "g", "alice", {1, 0}, 500), r.a.W(10), r.a.context)));
  const KeyOp ack = Ok(r.b.key.XEdit(Ack("g", {1, 0}), r.b.W(11), r.b.context));
  const KeyOp claim =
      Ok(r.a.key.XEdit(Deliver(r.a.key, "g", "bob", {1, 0}, 600), r.a.W(12), r.a.context));
  r.a.Apply(ack);
  r.b.Apply(claim);
  CHECK(r.a.key == r.b.key);
  const std::optional<GroupValue> pending = r.a.key.stream().FindSlot(P("g", {1, 0}));
  REQUIRE(pending.has_value());
  CHECK(pending->owner == "bob");
  CHECK(pending->deliveries == 2);
}

TEST_CASE("stream groups: one entry delivered in two regions ends with one owner everywhere",
          "[crdt][stream][groups]") {
  Pair r;
  const KeyOp da =
      Ok(r.a.key.XEdit(Deliver(r.a.key, "g", "alice", {2, 0}, 700), r.a.W(20), r.a.context));
  const KeyOp db =
      Ok(r.b.key.XEdit(Deliver(r.b.key, "g", "bob", {2, 0}, 650), r.b.W(21), r.b.context));
  // Before hearing of each other, each region sees its own delivery.
  CHECK(r.a.key.stream().FindSlot(P("g", {2, 0}))->owner == "alice");
  CHECK(r.b.key.stream().FindSlot(P("g", {2, 0}))->owner == "bob");
  r.a.Apply(db);
  r.b.Apply(da);
  CHECK(r.a.key == r.b.key);
  // The later HLC wins (b wrote at 21): one owner, the same in both regions; both consumers exist.
  CHECK(r.a.key.stream().FindSlot(P("g", {2, 0}))->owner == "bob");
  CHECK(r.b.key.stream().FindSlot(P("g", {2, 0}))->owner == "bob");
  CHECK(r.a.key.stream().FindSlot(C("g", "alice")).has_value());
  CHECK(r.a.key.stream().FindSlot(G("g"))->last_id == StreamId{2, 0});
  // A later XACK anywhere removes both concurrent values.
  r.b.Apply(Ok(r.a.key.XEdit(Ack("g", {2, 0}), r.a.W(30), r.a.context)));
  CHECK_FALSE(r.b.key.stream().FindSlot(P("g", {2, 0})).has_value());
  CHECK(r.b.key.stream().group_items().size() == r.a.key.stream().group_items().size());
}

TEST_CASE("stream groups: DESTROY removes what it saw; a concurrent delivery brings the group back",
          "[crdt][stream][groups]") {
  Pair r;
  r.b.Apply(Ok(r.a.key.XEdit(Deliver(r.a.key, "g", "alice", {1, 0}, 500), r.a.W(10), r.a.context)));
  Key::StreamEdit destroy;
  destroy.group_destroy.push_back("g");
  const KeyOp gone = Ok(r.a.key.XEdit(std::move(destroy), r.a.W(11), r.a.context));
  CHECK(r.a.key.stream().GroupNames().empty());
  SECTION("nothing concurrent: gone everywhere") {
    r.b.Apply(gone);
    CHECK(r.b.key.stream().GroupNames().empty());
    CHECK(r.b.key.stream().group_items().empty());
  }
  SECTION("a concurrent delivery survives with its group, consumer and pending entry") {
    const KeyOp late =
        Ok(r.b.key.XEdit(Deliver(r.b.key, "g", "bob", {2, 0}, 800), r.b.W(12), r.b.context));
    r.a.Apply(late);
    r.b.Apply(gone);
    CHECK(r.a.key == r.b.key);
    CHECK(r.a.key.stream().GroupNames() == std::vector<std::string>{"g"});
    CHECK(r.a.key.stream().FindSlot(P("g", {2, 0}))->owner == "bob");
    CHECK_FALSE(r.a.key.stream().FindSlot(P("g", {1, 0})).has_value());
    CHECK_FALSE(r.a.key.stream().FindSlot(C("g", "alice")).has_value());
  }
}

TEST_CASE("stream groups: DEL removes the groups it saw; the stream is gone",
          "[crdt][stream][groups]") {
  Pair r;
  r.b.Apply(Ok(r.a.key.XEdit(Deliver(r.a.key, "g", "alice", {1, 0}, 500), r.a.W(10), r.a.context)));
  r.b.Apply(Ok(r.a.key.Del(r.a.W(11), r.a.context)));
  CHECK(r.b.key.TypeAt(1000) == ObjectType::kNone);
  CHECK(r.b.key.stream().group_items().empty());
}

}  // namespace
}  // namespace lattice::crdt::testing
