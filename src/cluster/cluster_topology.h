#pragma once
// ClusterTopology is one node's view of the cluster: the nodes it knows (each in a shard and a
// region) and the owner of every one of the 16384 slots. Slots belong to shards, not to nodes:
// every region of a shard accepts writes, so a shard is served in each region by that region's
// node. Views converge by Merge, a join: per slot the assignment with the highest (epoch, shard)
// wins; per node the record with the highest version wins; the current epoch is the maximum.
// Merge is commutative, associative and idempotent, so gossip in any order converges.
//
// Also here, pure and I/O-free: RouteKeys, the routing decision of one command (Valkey's
// getNodeByQuery), and the text encoding used both in nodes.conf and on the cluster bus.
//
// Value type; not thread-safe (the event-loop thread owns the live one).

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/ids.h"
#include "lattice/common/result.h"

namespace lattice::server {

struct ClusterNode {
  std::string id;        // 40 lower-case hex characters
  std::string shard;     // the shard id (--shard-id)
  std::string region;    // --region ("" allowed)
  std::string ip;        // announced address
  int port = 0;          // client port
  uint64_t version = 0;  // bumped by the node itself when its record changes
  int repl_port = 0;     // replication port (0: unknown): the shard's regions link to it
  bool operator==(const ClusterNode&) const = default;
};

struct SlotOwner {
  std::string shard;   // "" : not served
  uint64_t epoch = 0;  // the config epoch of this assignment
  bool operator==(const SlotOwner&) const = default;
};

struct SlotRange {
  uint16_t start = 0;
  uint16_t end = 0;  // inclusive
  bool operator==(const SlotRange&) const = default;
};

// "0-10 20-29" (CLUSTER GETSLOTMIGRATIONS' slot_ranges).
std::string SlotRangesText(std::span<const SlotRange> ranges);
// "7" or "0-10" (CLUSTER NODES).
std::string SlotRangeShortText(const SlotRange& range);

// 40 hex characters.
bool IsNodeId(std::string_view text);

// What a node adds to the topology when it picks the node that serves a shard for its clients
// (ClusterTopology::ServingNode): the nodes its failure detection marked FAIL, skipped while the
// shard has another, and the regions to try, nearest first, when the shard has no healthy node in
// the client's region (cluster-region-order).
struct ServingPrefs {
  const std::set<std::string, std::less<>>* failed = nullptr;
  std::span<const std::string> region_order;
  // Nodes still catching up with their shard after a restart or a REPLICATE: passed over, in
  // every region, while the shard has a node not failed that is not catching up.
  const std::set<std::string, std::less<>>* catching_up = nullptr;
};

class ClusterTopology {
 public:
  ClusterTopology();

  using NodeMap = std::map<std::string, ClusterNode, std::less<>>;  // by id

  const NodeMap& nodes() const { return nodes_; }
  const ClusterNode* FindNode(std::string_view id) const;
  // Keeps the record with the higher version (the stored one on a tie). True if it changed.
  bool UpsertNode(const ClusterNode& node);
  // Forgets a node (CLUSTER FORGET). True if it was known.
  bool RemoveNode(std::string_view id);

  const SlotOwner& owner(uint16_t slot) const { return slots_[slot]; }
  uint64_t current_epoch() const { return current_epoch_; }
  // Gives `slots` to `shard` ("" to unassign) at a fresh epoch (current + 1), which it returns.
  uint64_t Assign(std::span<const uint16_t> slots, const std::string& shard);
  // Joins `other` into this view. True if anything changed.
  bool Merge(const ClusterTopology& other);
  // Stamps every slot `shard` owns with `epoch` and raises the current epoch to it (CLUSTER
  // SET-CONFIG-EPOCH, on a node that knows no other node).
  void SetShardEpoch(std::string_view shard, uint64_t epoch);
  // Forgets every slot assignment and node (CLUSTER RESET); keeps the epoch.
  void Clear();

  size_t AssignedSlots() const { return assigned_; }
  bool FullyCovered() const { return assigned_ == kSlotCount; }
  std::vector<SlotRange> RangesOf(std::string_view shard) const;
  // Shards that own slots or have nodes, sorted.
  std::vector<std::string> Shards() const;
  // Nodes of `shard`, sorted by id.
  std::vector<const ClusterNode*> NodesOf(std::string_view shard) const;
  // The node that serves `shard` for clients of `region`: the shard's node in that region, else
  // its node in the first region of `prefs.region_order` that has one, else its node with the
  // smallest id; nullptr when the shard has no known node. Among several candidates, the node
  // the shard is named after (a shard of its own, then joined by CLUSTER REPLICATE) comes first,
  // else the smallest id. Nodes in `prefs.failed` are passed over unless every node of the shard
  // is failed (then the choice is as if none were). Nodes in `prefs.catching_up` come after every
  // other node not failed.
  const ClusterNode* ServingNode(std::string_view shard, std::string_view region,
                                 const ServingPrefs& prefs = {}) const;
  // The highest epoch of any slot owned by `shard` (its config epoch), 0 if none.
  uint64_t ShardEpoch(std::string_view shard) const;

  // Text form (nodes.conf and the bus): lines "lattice-cluster 1", "epoch E",
  // "node id shard region ip port version [repl_port]", "slots start end epoch shard".
  std::string Encode() const;
  static Result<ClusterTopology> Decode(std::string_view text);

  bool operator==(const ClusterTopology&) const = default;

 private:
  // Every write of slots_ goes through here: it keeps assigned_.
  void SetOwner(size_t slot, SlotOwner owner);
  // The preferred node of `shard` among those in `region` (any region when null) that `ok`
  // accepts: the one the shard is named after, else the smallest id.
  const ClusterNode* Preferred(std::string_view shard, const std::string_view* region,
                               const std::function<bool(const ClusterNode&)>& ok) const;
  // The preferred node `ok` accepts in `region`, else in the regions of `region_order`, else in
  // any region.
  const ClusterNode* Nearest(std::string_view shard, std::string_view region,
                             std::span<const std::string> region_order,
                             const std::function<bool(const ClusterNode&)>& ok) const;

  NodeMap nodes_;
  std::vector<SlotOwner> slots_;
  size_t assigned_ = 0;  // slots with an owner shard
  uint64_t current_epoch_ = 0;
};

// ---- routing -----------------------------------------------------------------------------------

enum class RouteKind {
  kLocal,      // run it here
  kMoved,      // -MOVED slot ip:port
  kCrossSlot,  // -CROSSSLOT
  kDown,       // -CLUSTERDOWN The cluster is down
  kUnserved,   // -CLUSTERDOWN Hash slot not served
  kPaused,     // a write to a slot paused for a migration handoff: hold the client and retry
};

struct Route {
  RouteKind kind = RouteKind::kLocal;
  uint16_t slot = 0;
  const ClusterNode* node = nullptr;  // kMoved
};

// What the router knows besides the topology.
struct RouteContext {
  std::string_view my_shard;
  std::string_view my_region;
  bool write = false;   // the command may write
  bool asking = false;  // the client sent ASKING just before
  bool require_full_coverage = true;
  bool allow_reads_when_down = false;
  const std::array<bool, kSlotCount>* paused = nullptr;  // writes held here
  bool importing = false;  // the keys' slot is being imported here: served after ASKING
  ServingPrefs serving;    // which node of another shard MOVED names
};

// The decision for a command whose keys hash to `slots` (empty: no keys, runs locally).
Route RouteKeys(const ClusterTopology& topology, std::span<const uint16_t> slots,
                const RouteContext& context);

// The error text of a non-local route ("MOVED 3999 127.0.0.1:6381", "CROSSSLOT ...").
std::string RouteError(const Route& route);

}  // namespace lattice::server
