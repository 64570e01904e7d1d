#pragma once
// Causal primitives shared by every CRDT in lattice::crdt: Dot (the identity of one write at its
// origin), Stamp (the total order used by last-writer-wins), VersionVector (replica -> highest
// contiguous sequence number) and DotContext (a version vector plus a "dot cloud" of seen dots
// that are not yet contiguous), as in Almeida, Shoker and Baquero, "Delta state replicated data
// types" (2018). A DotContext is the causal context of a whole replica (shard-wide), not of one
// key: keys carry dots, the replica carries one context, which keeps per-key metadata small.
//
// Value types, no sharing; not thread-safe. Invariants: a VersionVector is sorted by replica id
// with no zero entries; a DotContext's cloud holds no dot already covered by its vector (Compact
// runs after every mutation), so equal contexts compare equal member by member.

#include <compare>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "lattice/common/ids.h"

namespace lattice::crdt {

// The identity of one write: its origin replica and that replica's sequence number (from 1).
// Dot{} (replica 0) means "no dot".
struct Dot {
  ReplicaId replica = kNoReplica;
  uint64_t seq = 0;

  bool valid() const { return replica != kNoReplica; }
  auto operator<=>(const Dot&) const = default;
};

// Total order for last-writer-wins: HLC first, then replica id, then sequence (the last only
// separates two entries written by one op, which share an HLC). Unique per dot.
struct Stamp {
  uint64_t hlc = 0;
  ReplicaId replica = kNoReplica;
  uint64_t seq = 0;

  static Stamp Of(uint64_t hlc, Dot dot) { return Stamp{hlc, dot.replica, dot.seq}; }
  auto operator<=>(const Stamp&) const = default;
};

// replica -> highest contiguous sequence number seen. A sorted small vector: a shard has few
// regions, so a linear merge beats a hash map in both memory and time.
class VersionVector {
 public:
  using Entry = std::pair<ReplicaId, uint64_t>;

  uint64_t Get(ReplicaId replica) const;
  void Set(ReplicaId replica, uint64_t seq);  // Sets exactly (may lower); seq 0 erases.
  bool Contains(Dot dot) const { return dot.seq != 0 && dot.seq <= Get(dot.replica); }
  void Join(const VersionVector& other);  // Pointwise max.
  void Meet(const VersionVector& other);  // Pointwise min (for stable-vector computation).
  bool LessOrEqual(const VersionVector& other) const;
  const std::vector<Entry>& entries() const { return entries_; }
  std::string ToString() const;

  bool operator==(const VersionVector&) const = default;

 private:
  std::vector<Entry> entries_;  // sorted by replica, seq > 0
};

// A causal context: everything in `vector` plus the dots in `cloud`.
class DotContext {
 public:
  bool Contains(Dot dot) const;
  void Add(Dot dot);
  void Join(const DotContext& other);
  // Moves cloud dots that extend the vector contiguously into it. Called by every mutator.
  void Compact();

  const VersionVector& vector() const { return vector_; }
  const absl::btree_set<Dot>& cloud() const { return cloud_; }
  size_t size_entries() const { return vector_.entries().size() + cloud_.size(); }

  static DotContext FromVector(VersionVector vector);

  bool operator==(const DotContext&) const = default;

 private:
  VersionVector vector_;
  absl::btree_set<Dot> cloud_;
};

// Hands out the fresh dots of one replica. The replica owns one and persists next_seq; an op
// may take several dots (one per element it writes), so the replication layer orders ops by
// their first dot and advances a peer's vector by the number of dots an op took.
class DotSource {
 public:
  explicit DotSource(ReplicaId replica, uint64_t next_seq = 1)
      : replica_(replica), next_seq_(next_seq) {}
  Dot Next() { return Dot{replica_, next_seq_++}; }
  ReplicaId replica() const { return replica_; }
  uint64_t next_seq() const { return next_seq_; }

 private:
  ReplicaId replica_;
  uint64_t next_seq_;
};

// Everything a local mutator needs: where fresh dots come from and the HLC of the op.
struct WriteStamp {
  DotSource* dots = nullptr;
  uint64_t hlc = 0;
};

}  // namespace lattice::crdt
