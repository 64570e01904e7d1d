#pragma once
// The workload: real commands through Server::Execute on a small, conflict-prone key space, and
// the reference model of what acknowledged writes promise. Key families:
//   ctr:N   INCR/INCRBY/DECRBY only: the value must equal the sum of acknowledged increments
//   reg:N   SET only: the value must be one of the acknowledged SETs
//   oset:N  SADD/SREM/DEL only: membership must match an add-wins observed-remove model, where
//           a remove (or DEL) cancels exactly the adds whose dots the removing region had seen
//   str:N, h:N, s:N, z:N, mix:N   every command of every type (type conflicts, EXPIRE vs
//           PERSIST, HEXPIRE vs HSET/HDEL, ZADD vs ZINCRBY vs ZREM, ...): convergence only,
//           under rules that CRDT.POLICY SET/DEL (1 step in 40) keep changing for these families
// Single-threaded; deterministic given the Rng.

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lattice/common/rng.h"
#include "world.h"

namespace lattice::sim {

class Workload {
 public:
  explicit Workload(World& world) : world_(world) {}

  // Issues one random command at `region` (which must be up) and updates the model.
  void Step(Region& region);
  // Issues the same kind of write on one key at every region that is up, at the same instant:
  // the concurrent pairs the merge rules exist for.
  void ConflictBurst();
  // Checks the final state (read at `now_ms` from `region`) against the model, for the keys
  // `owned` accepts (null: every key).
  void Check(Region& region, int64_t now_ms, const std::function<bool(const std::string&)>& owned);

  uint64_t commands = 0;
  uint64_t acknowledged = 0;

 private:
  struct Tag {
    crdt::Dot dot;
    bool removed = false;
  };
  std::vector<std::string> RandomCommand(Rng& rng, const std::string& family);
  void Issue(Region& region, std::vector<std::string> args);
  // Sharded runs: runs `args` where the key lives, following MOVED and ASK to the owning
  // shard's node in `region`'s region. Returns the node that answered last.
  Region& Route(Region& region, const std::vector<std::string>& args, std::string* reply,
                bool* durable);
  void RemoveObserved(Region& region, const std::string& key, const std::string* member);

  World& world_;
  std::map<std::string, int64_t> counter_sums_;
  std::map<std::string, std::set<std::string>> register_values_;
  std::map<std::string, std::map<std::string, std::vector<Tag>>> set_tags_;  // key -> member
};

}  // namespace lattice::sim
