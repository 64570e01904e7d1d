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
//   hll:N   PFADD/PFCOUNT/GET only: every acknowledged element's register rank is in the value
//   bm:N    bitmap commands (SETBIT, BITFIELD, BITOP, SETRANGE): convergence only
//   bits:N  SETBIT to 1 only, each region in chunks of its own: every acknowledged bit is set
//           (concurrent SETBITs in different chunks all survive, docs/semantics.md "Bitmaps");
//           and BITFIELD OVERFLOW WRAP INCRBY of one 16-bit field in a chunk no SETBIT writes:
//           the field must equal the sum of acknowledged increments modulo 2^16 (concurrent
//           WRAP increments all count)
//   {gR}:N  op groups: only region R writes them, always all kGroupKeys of them at once (a
//           script, MSET, a multi-key DEL, MULTI/EXEC): after every batch of every region they
//           must all be equal there, as no region may show part of a group (CheckGroups)
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
  explicit Workload(World& world) : world_(world) {
    world_.batch_check = [this](Region& region) { CheckGroups(region); };
  }
  ~Workload() { world_.batch_check = nullptr; }

  // Issues one random command at `region` (which must be up) and updates the model.
  void Step(Region& region);
  // Issues the same kind of write on one key at every region that is up, at the same instant:
  // the concurrent pairs the merge rules exist for.
  void ConflictBurst();
  // Region's group keys, all written by one script, EXEC, MSET or DEL.
  void Group(Region& region);
  // After every batch of `region`: each writer's group keys are all equal there.
  void CheckGroups(Region& region);
  // Checks the final state (read at `now_ms` from `region`) against the model, for the keys
  // `owned` accepts (null: every key).
  void Check(Region& region, int64_t now_ms, const std::function<bool(const std::string&)>& owned);

  // Sharded runs: commands held at a node because their slot is paused for a migration handoff,
  // waiting to be run again (a run is not quiet while one is held).
  int held() const { return held_; }

  uint64_t commands = 0;
  uint64_t acknowledged = 0;

 private:
  struct Tag {
    crdt::Dot dot;
    bool removed = false;
  };
  // A sharded run's command on its way to the key's owner: the client's region, the redirects
  // it followed and how often a paused slot held it.
  struct Routed {
    int client = 0;
    std::vector<std::string> args;
    int hops = 0;
    int holds = 0;
  };
  std::vector<std::string> RandomCommand(Rng& rng, const std::string& family);
  void Issue(Region& region, std::vector<std::string> args);
  // Sharded runs: runs the command at `node`, following MOVED and ASK to the owning shard's
  // node in the client's region. A write to a slot paused for a migration handoff runs nothing
  // and gets no reply: the node holds the client and runs it again 1 ms later, as the network
  // layer does (ClientListener::WaitForUnpause), until the slot is served or the hold times out.
  void Route(Routed command, int node);
  void Hold(Routed command, Region& node);
  // Fills in a bits:N SETBIT's bit from the writing region's own chunks.
  void OwnBit(Region& region, std::vector<std::string>& args);
  // Updates the model with a command's outcome: only a durable, non-error reply acknowledges.
  // `seq_before` (the region's own applied seq before it ran) and `removes` serve the oset model.
  void Record(Region& region, const std::vector<std::string>& args, const std::string& reply,
              bool durable, uint64_t seq_before, const std::vector<Tag*>& removes);

  World& world_;
  int held_ = 0;
  uint64_t groups_ = 0;
  std::map<std::string, int64_t> counter_sums_;
  std::map<std::string, std::set<std::string>> register_values_;
  std::map<std::string, std::set<std::string>> hll_elements_;  // hll:N -> acknowledged elements
  std::map<std::string, std::set<uint64_t>> set_bits_;         // bits:N -> acknowledged bits
  std::map<std::string, uint64_t> field_sums_;  // bits:N -> acknowledged INCRBYs of its field
  std::map<std::string, std::map<std::string, std::vector<Tag>>> set_tags_;  // key -> member
};

}  // namespace lattice::sim
