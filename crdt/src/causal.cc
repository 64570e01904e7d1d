#include "lattice/crdt/causal.h"

#include <algorithm>
#include <limits>

namespace lattice::crdt {

uint64_t VersionVector::Get(ReplicaId replica) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), Entry{replica, 0});
  return it != entries_.end() && it->first == replica ? it->second : 0;
}

void VersionVector::Set(ReplicaId replica, uint64_t seq) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), Entry{replica, 0});
  if (it != entries_.end() && it->first == replica) {
    if (seq == 0) {
      entries_.erase(it);
    } else {
      it->second = seq;
    }
  } else if (seq != 0) {
    entries_.insert(it, Entry{replica, seq});
  }
}

void VersionVector::Join(const VersionVector& other) {
  for (const auto& [replica, seq] : other.entries_) {
    if (seq > Get(replica)) {
      Set(replica, seq);
    }
  }
}

void VersionVector::Meet(const VersionVector& other) {
  std::vector<Entry> result;
  for (const auto& [replica, seq] : entries_) {
    const uint64_t low = std::min(seq, other.Get(replica));
    if (low != 0) {
      result.emplace_back(replica, low);
    }
  }
  entries_ = std::move(result);
}

bool VersionVector::LessOrEqual(const VersionVector& other) const {
  return std::all_of(entries_.begin(), entries_.end(),
                     [&](const Entry& e) { return e.second <= other.Get(e.first); });
}

std::string VersionVector::ToString() const {
  std::string out = "{";
  for (const auto& [replica, seq] : entries_) {
    if (out.size() > 1) {
      out += ",";
    }
    out += std::to_string(replica) + ":" + std::to_string(seq);
  }
  return out + "}";
}

bool DotContext::Contains(Dot dot) const { return vector_.Contains(dot) || cloud_.contains(dot); }

void DotContext::Add(Dot dot) {
  if (!dot.valid()) {
    return;
  }
  const uint64_t have = vector_.Get(dot.replica);
  if (dot.seq <= have) {
    return;
  }
  if (dot.seq == have + 1) {
    // The common case (every local write, every in-order peer op): the dot extends the prefix,
    // so it goes straight into the vector; only a non-empty cloud can then extend further.
    vector_.Set(dot.replica, dot.seq);
    if (!cloud_.empty()) {
      Compact();
    }
    return;
  }
  cloud_.insert(dot);
  Compact();
}

void DotContext::Join(const DotContext& other) {
  if (other.vector_.entries().empty() && other.cloud_.size() <= 4) {
    // An op's context (its own dot and the few it observed): Add extends the vector in place,
    // where an insert into the cloud and a Compact would allocate a node and free it again.
    for (const Dot& dot : other.cloud_) Add(dot);
    return;
  }
  vector_.Join(other.vector_);
  for (const Dot& dot : other.cloud_) {
    if (!vector_.Contains(dot)) {
      cloud_.insert(dot);
    }
  }
  Compact();
}

void DotContext::Compact() {
  // The cloud is ordered by (replica, seq): only a replica's first cloud dots can extend its
  // prefix, so each replica costs one seek, not a walk over its whole cloud. A cloud of many
  // dots that cannot extend (another shard's dots, imported by a slot migration) then stays
  // cheap to keep.
  for (auto it = cloud_.begin(); it != cloud_.end();) {
    const ReplicaId replica = it->replica;
    uint64_t have = vector_.Get(replica);
    while (it != cloud_.end() && it->replica == replica && it->seq <= have + 1) {
      if (it->seq == have + 1) {
        have = it->seq;
        vector_.Set(replica, have);
      }
      it = cloud_.erase(it);
    }
    if (it == cloud_.end() || it->replica != replica) {
      continue;
    }
    if (replica == std::numeric_limits<ReplicaId>::max()) {
      break;
    }
    it = cloud_.lower_bound(Dot{replica + 1, 0});
  }
}

DotContext DotContext::FromVector(VersionVector vector) {
  DotContext context;
  context.vector_ = std::move(vector);
  return context;
}

}  // namespace lattice::crdt
