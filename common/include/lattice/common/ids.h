#pragma once
// Identifiers shared by every layer. A ReplicaId names one region's node of a shard: a random
// 64-bit value created on first start and kept in the data dir. 0 is never a valid replica id.

#include <cstdint>

namespace lattice {

using ReplicaId = uint64_t;
inline constexpr ReplicaId kNoReplica = 0;

// Number of hash slots in the keyspace, as Valkey Cluster.
inline constexpr uint32_t kSlotCount = 16384;

}  // namespace lattice
