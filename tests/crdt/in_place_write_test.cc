// The in-place local writes (SADD, HSET, ZADD, list pushes and pops mutating the key and building
// the op directly) against the generic delta-join path, their reference: random histories on twin
// replicas, one writing in place where it can and one always generic, must leave identical keys,
// identical shard contexts, identical dot sources and identical ops after every step.
#include <catch2/catch.hpp>
#include <functional>

#include "crdt/crdt_test_util.h"
#include "lattice/crdt/join_stats.h"

namespace lattice::crdt::testing {
namespace {

const std::vector<std::string> kMembers = {"a", "b", "c", "d", "e"};

// One replica twice: `fast` may write in place, `generic` never does.
struct Twin {
  explicit Twin(ReplicaId id) : fast_dots(id), generic_dots(id) {}
  Key fast;
  Key generic;
  DotContext fast_context;
  DotContext generic_context;
  DotSource fast_dots;
  DotSource generic_dots;
  HlcClock clock{1'000'000};
  std::vector<bool> applied;
};

// A random write, as a function of (key, writer, shard) so both twins run the same one.
using WriteFn = std::function<std::optional<KeyOp>(Key&, const Writer&, DotContext&)>;

WriteFn RandomWrite(Rng& rng, int64_t now_ms) {
  const std::string name = Pick(rng, kMembers);
  const std::string other = Pick(rng, kMembers);
  const std::string value = Pick(rng, kValues);
  const double score = static_cast<double>(rng.Range(-3, 3));
  const int64_t at = rng.Chance(1, 4) ? 0 : now_ms + rng.Range(1, 20);
  const bool keep = rng.Chance(1, 4);
  const int64_t by = rng.Range(-3, 3);
  const ListEnd end = rng.Chance(1, 2) ? ListEnd::kHead : ListEnd::kTail;
  const size_t pops = rng.Range(1, 2);
  const uint64_t id_step = rng.Uniform(3);  // 0: an ID not above the last (the generic path)
  switch (rng.Uniform(27)) {
    case 24:
    case 25:
      // XADD (with a trim of the oldest entry sometimes) of an ID near the last one.
      return [=](Key& k, const Writer& w, DotContext& c) {
        const bool is_stream = k.TypeAt(w.now_ms) == ObjectType::kStream;
        const StreamMeta meta = is_stream ? k.stream().Meta() : StreamMeta{};
        Key::StreamEdit edit;
        const StreamId id{meta.last_id.ms + id_step, meta.last_id.seq};
        edit.adds.emplace_back(id, Stream::Fields{name, value});
        edit.meta =
            StreamMeta{std::max(id, meta.last_id), meta.max_deleted, meta.entries_added + 1};
        edit.create = true;
        if (is_stream && pops == 2 && k.stream().Size() > 1) {
          edit.remove.push_back(k.stream().entries().begin()->first);
        }
        return Take(k.XEdit(std::move(edit), w, c));
      };
    case 26:
      // XDEL of the newest entry.
      return [=](Key& k, const Writer& w, DotContext& c) -> std::optional<KeyOp> {
        if (k.TypeAt(w.now_ms) != ObjectType::kStream || k.stream().Size() == 0) {
          return std::nullopt;
        }
        Key::StreamEdit edit;
        edit.remove.push_back(k.stream().entries().LastKey());
        edit.meta = k.stream().Meta();
        return Take(k.XEdit(std::move(edit), w, c));
      };
    case 20:
    case 21:
      return [=](Key& k, const Writer& w, DotContext& c) {
        return Take(k.LEdit({}, end, {value, name}, w, c));
      };
    case 22:
    case 23:
      // LPOP/RPOP of one or two (all of a short list), or LMOVE within the key.
      return [=](Key& k, const Writer& w, DotContext& c) -> std::optional<KeyOp> {
        const size_t size = k.TypeAt(w.now_ms) == ObjectType::kList ? k.list().Size() : 0;
        if (size == 0) {
          return std::nullopt;
        }
        const size_t n = std::min(pops, size);
        std::vector<size_t> indexes;
        for (size_t i = 0; i < n; ++i) {
          indexes.push_back(end == ListEnd::kHead ? i : size - n + i);
        }
        const std::vector<std::string> moved =
            keep ? std::vector<std::string>{value} : std::vector<std::string>{};
        return Take(k.LEdit(indexes, end, moved, w, c));
      };
    case 0:
    case 1:
    case 2:
      return [=](Key& k, const Writer& w, DotContext& c) {
        return Take(k.SAdd({name, other}, w, c));
      };
    case 3:
      return [=](Key& k, const Writer& w, DotContext& c) { return Take(k.SRem({name}, w, c)); };
    case 4:
    case 5:
      return [=](Key& k, const Writer& w, DotContext& c) {
        return Take(k.HSet(name, value, keep, w, c));
      };
    case 6:
      return [=](Key& k, const Writer& w, DotContext& c) {
        return Take(k.HSetMany({{name, value}, {other, "v"}, {name, "w"}}, false, w, c));
      };
    case 7:
      return [=](Key& k, const Writer& w, DotContext& c) { return Take(k.HDel({name}, w, c)); };
    case 8:
      return
          [=](Key& k, const Writer& w, DotContext& c) { return Take(k.HIncrBy(name, by, w, c)); };
    case 9:
      return
          [=](Key& k, const Writer& w, DotContext& c) { return Take(k.HExpire(name, at, w, c)); };
    case 10:
    case 11:
      return
          [=](Key& k, const Writer& w, DotContext& c) { return Take(k.ZAdd(name, score, w, c)); };
    case 12:
      return [=](Key& k, const Writer& w, DotContext& c) {
        return Take(k.ZAddMany({{name, score}, {other, score + 1}, {name, score - 1}}, w, c));
      };
    case 13:
      return [=](Key& k, const Writer& w, DotContext& c) {
        return Take(k.ZIncrBy(name, score / 2, w, c));
      };
    case 14:
      return [=](Key& k, const Writer& w, DotContext& c) { return Take(k.ZRem({name}, w, c)); };
    case 15:
      return [=](Key& k, const Writer& w, DotContext& c) { return Take(k.Del(w, c)); };
    case 16:
      return [=](Key& k, const Writer& w, DotContext& c) {
        return Take(k.Set(value, false, std::nullopt, w, c));
      };
    case 17:
      return [=](Key& k, const Writer& w, DotContext& c) { return Take(k.Expire(at, w, c)); };
    default:
      return [=](Key& k, const Writer& w, DotContext& c) { return Take(k.Reclaim(w, c)); };
  }
}

void CheckTwin(const Twin& t) {
  REQUIRE(t.fast == t.generic);
  REQUIRE(t.fast_context == t.generic_context);
  REQUIRE(t.fast_dots.next_seq() == t.generic_dots.next_seq());
}

}  // namespace

TEST_CASE("in-place writes leave the state and the op the generic path leaves", "[crdt][inplace]") {
  uint64_t in_place = 0;
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    CAPTURE(seed);
    Rng rng(seed);
    std::vector<Twin> twins;
    for (ReplicaId id = 1; id <= 3; ++id) twins.emplace_back(id);
    std::vector<Recorded> log;
    int64_t now_ms = 1000;
    for (int step = 0; step < 300; ++step) {
      CAPTURE(step);
      now_ms += static_cast<int64_t>(rng.Uniform(3));
      Twin& t = twins[rng.Uniform(twins.size())];
      t.applied.resize(log.size(), false);
      const uint64_t action = rng.Uniform(10);
      if (action < 6) {
        const uint64_t hlc = t.clock.Now(static_cast<uint64_t>(now_ms));
        const Policies policies = RandomPolicies(rng);
        const WriteFn write = RandomWrite(rng, now_ms);
        const JoinStats before = ThreadJoinStats();
        SetGenericWritesForTesting(false);
        auto fast = write(t.fast, Writer{&t.fast_dots, hlc, now_ms, policies}, t.fast_context);
        const bool took_in_place = ThreadJoinStats().delta_joins == before.delta_joins &&
                                   ThreadJoinStats().full_joins == before.full_joins;
        SetGenericWritesForTesting(true);
        auto generic =
            write(t.generic, Writer{&t.generic_dots, hlc, now_ms, policies}, t.generic_context);
        SetGenericWritesForTesting(false);
        REQUIRE(fast.has_value() == generic.has_value());
        if (fast) {
          REQUIRE(*fast == *generic);
          in_place += took_in_place && fast->dot_count > 0 ? 1 : 0;
          if (fast->dot_count > 0) {
            log.push_back(Recorded{*fast, t.applied});
            t.applied.push_back(true);
          }
        }
      } else if (action < 9) {
        std::vector<size_t> ready;
        for (size_t i = 0; i < log.size(); ++i) {
          if (!t.applied[i] && World<KeyWorkload>::Deliverable(log[i], t.applied)) {
            ready.push_back(i);
          }
        }
        if (!ready.empty()) {
          const size_t pick = ready[rng.Uniform(ready.size())];
          t.fast.Apply(log[pick].op, t.fast_context);
          t.generic.Apply(log[pick].op, t.generic_context);
          (void)t.clock.Update(log[pick].op.hlc, static_cast<uint64_t>(now_ms));
          t.applied[pick] = true;
        }
      } else {
        const Twin& from = twins[rng.Uniform(twins.size())];
        if (&from != &t) {
          t.fast.Join(from.fast, t.fast_context, from.fast_context);
          t.fast_context.Join(from.fast_context);
          t.generic.Join(from.generic, t.generic_context, from.generic_context);
          t.generic_context.Join(from.generic_context);
          for (size_t i = 0; i < from.applied.size(); ++i) {
            t.applied[i] = t.applied[i] || from.applied[i];
          }
        }
      }
      CheckTwin(t);
    }
  }
  CHECK(in_place > 1000);  // the histories do exercise the in-place paths
}

TEST_CASE("HSET and ZADD of several elements make one op", "[crdt][inplace]") {
  Node a(1);
  Ok(a.key.HSet("f0", "x", false, a.W(1), a.context));
  KeyOp op = Ok(a.key.HSetMany({{"f1", "1"}, {"f2", "2"}, {"f1", "3"}}, false, a.W(2), a.context));
  CHECK(op.dot_count == 3);
  CHECK(op.delta.hash().fields().size() == 2);
  CHECK(a.key.hash().Get("f1", 1000) == "3");
  Node b(2);
  Ok(b.key.HSet("f0", "y", false, b.W(1), b.context));
  b.Apply(op);
  CHECK(b.key.hash().Get("f1", 1000) == "3");
  CHECK(b.key.hash().Get("f2", 1000) == "2");

  Node z(3);
  Ok(z.key.ZAdd("m0", 1, z.W(3), z.context));
  op = Ok(z.key.ZAddMany({{"m1", 2}, {"m2", 3}, {"m1", 5}}, z.W(4), z.context));
  CHECK(op.dot_count == 3);
  CHECK(z.key.zset().Score("m1") == 5);
  CHECK(z.key.zset().Rank("m1") == 2);
  CHECK(z.key.zset().Size() == 3);
}

}  // namespace lattice::crdt::testing
