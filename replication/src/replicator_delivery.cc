// Replicator: causal delivery of peers' ops, the retained ops (streaming, compaction, the
// backlog bound) and snapshots. Links, handshake and timers are in replicator.cc.

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "lattice/common/assert.h"
#include "lattice/common/mutation.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/replicator.h"
#include "op_codec.h"
#include "replicator_peer.h"

namespace lattice::repl {
namespace {

// Chunks of discarded snapshots freed per turn at most (up to a millisecond each: a slice's keys
// and their elements, more while a checkpoint's child makes every first write to a page a copy).
constexpr size_t kDiscardChunksPerTurn = 2;

}  // namespace

// The deps of a local op: the applied vector, joined while a snapshot is being installed with
// its cut (keys already joined from it may hold dots of the cut that applied_ does not cover
// yet: an op made on them depends on the cut).
const crdt::VersionVector& Replicator::LocalDeps() {
  if (installing_ == nullptr) {
    return applied_;
  }
  deps_ = applied_;
  deps_.Join(install_cut_);
  return deps_;
}

void Replicator::OnLocalOp(uint32_t db, std::string_view key, const crdt::KeyOp& op) {
  LATTICE_ASSERT_MSG(op.first_dot.replica == config_.replica, "local op of another replica");
  LATTICE_ASSERT_MSG(op.dot_count > 0, "an op takes at least one dot");
  // A gap in our own sequence would make every peer wait forever for the missing seqs.
  LATTICE_ASSERT_MSG(op.first_dot.seq == applied_.Get(config_.replica) + 1,
                     "local ops must arrive in sequence order, without gaps");
  const uint64_t last = op.first_dot.seq + op.dot_count - 1;
  if (group_depth_ > 0) {
    // Staged until the group ends; the op before it is marked "more follow" now (so the last
    // op, and a group of one op, is never marked).
    if (!group_ops_.empty()) {
      SetGroupContinues(group_records_, group_ops_.back().offset, true);
    }
    const size_t offset = group_records_.size();
    AppendOpRecord(db, key, op, LocalDeps(), group_records_);
    applied_.Set(config_.replica, last);
    group_ops_.push_back(
        StagedOp{.offset = offset, .first_seq = op.first_dot.seq, .last_seq = last, .hlc = op.hlc});
    if (group_ops_.size() >= std::min(config_.max_group_ops, config_.max_inflight_ops)) {
      RetainGroup();  // a long group goes as several
    }
    return;
  }
  // Encoded once, straight from the op: the log, the ring and every peer's batches take these
  // bytes.
  record_.clear();
  AppendOpRecord(db, key, op, LocalDeps(), record_);
  applied_.Set(config_.replica, last);
  Retain(RetainedOpView{.origin = config_.replica,
                        .first_seq = op.first_dot.seq,
                        .last_seq = last,
                        .hlc = op.hlc,
                        .wire = record_});
  PumpFullBatches();
}

void Replicator::EndGroup() {
  LATTICE_ASSERT_MSG(group_depth_ > 0, "EndGroup without BeginGroup");
  if (--group_depth_ == 0) {
    RetainGroup();
  }
}

void Replicator::RetainGroup() {
  if (group_ops_.empty()) {
    return;
  }
  for (size_t i = 0; i < group_ops_.size(); ++i) {
    const StagedOp& op = group_ops_[i];
    const size_t end = i + 1 < group_ops_.size() ? group_ops_[i + 1].offset : group_records_.size();
    Retain(
        RetainedOpView{.origin = config_.replica,
                       .first_seq = op.first_seq,
                       .last_seq = op.last_seq,
                       .hlc = op.hlc,
                       .wire = std::string_view(group_records_).substr(op.offset, end - op.offset),
                       .group_continues = i + 1 < group_ops_.size()});
  }
  group_ops_.clear();
  group_records_.clear();
  PumpFullBatches();
}

// Only full batches go now: a peer with fewer unsent ops waits for the end of the turn.
void Replicator::PumpFullBatches() {
  const uint64_t end = retained_->end();
  for (auto& [id, peer] : peers_) {
    if (end - std::min(end, peer->cursor) >= config_.max_batch_ops) {
      Pump(*peer, /*partial=*/false);
    }
  }
}

void Replicator::Flush() {
  for (auto& [id, peer] : peers_) {
    Pump(*peer, /*partial=*/true);
  }
}

// Why an op from a peer cannot be accepted, or "" when it can.
std::string Replicator::CheckOp(const OpRecord& op) const {
  const crdt::Dot first = op.op.first_dot;
  if (first.replica == kNoReplica || first.seq == 0 || op.op.dot_count == 0) {
    return "op without a valid dot";
  }
  if (first.seq > UINT64_MAX - op.op.dot_count) {
    return "op dot range overflows";
  }
  if (op.db >= config_.databases) {
    return "op for db " + std::to_string(op.db) + " out of range";
  }
  // deps is the origin's applied vector before the op, so it names exactly the previous seq.
  if (op.deps.Get(first.replica) + 1 != first.seq) {
    return "op deps do not end just before its first dot";
  }
  const uint64_t have = applied_.Get(first.replica);
  if (have >= first.seq && have < LastSeq(op)) {
    return "op overlaps ops already applied";
  }
  // Every dot an op names (what it observed, what its delta holds) of a replica this shard
  // replicates with (a peer) is in its causal past (deps) or one of its own dots: anything else
  // would put dots into this replica's context that no op it applied ever took. Dots of replicas
  // outside the stream (state imported by a slot migration from another shard) are not judged here.
  const uint64_t last = LastSeq(op);
  auto known = [&](ReplicaId replica, uint64_t seq) {
    if (replica == first.replica) return seq <= last;
    const uint64_t past = op.deps.Get(replica);
    if (replica == config_.replica) return seq <= past;  // ours: it can only have seen ours
    // A replica that is not one of our peers is outside the stream: its dots came with state
    // imported by a slot migration, and a snapshot of such state may have put it in applied.
    if (!peers_.contains(replica)) return true;
    return (past == 0 && applied_.Get(replica) == 0) || seq <= past;
  };
  crdt::Dot unknown;
  auto check = [&](const crdt::DotContext& dots) {
    for (const auto& [replica, seq] : dots.vector().entries()) {
      if (!known(replica, seq)) {
        unknown = crdt::Dot{replica, seq};
        return false;
      }
    }
    for (const crdt::Dot& dot : dots.cloud()) {
      if (!known(dot.replica, dot.seq)) {
        unknown = dot;
        return false;
      }
    }
    return true;
  };
  // The dots its delta holds are not checked again here: Decode (CheckOpDots in codec.cc)
  // refuses an op whose delta holds any dot outside its own range, and those are all known.
  if (!check(op.op.context)) {
    return "op observed dots outside its causal past: " + std::to_string(unknown.replica) + ":" +
           std::to_string(unknown.seq) + " of op " + std::to_string(first.replica) + ":" +
           std::to_string(first.seq) + " deps " + op.deps.ToString();
  }
  return "";
}

void Replicator::OnOpBatch(Peer& peer, OpBatch&& batch) {
  const size_t applied_before = retained_->end();
  for (OpRecord& op : batch.ops) {
    ++peer.ops_received;
    // The sender applied this op, hence its deps (those it sent) and the origin's earlier ops:
    // no need to send them back to it. (If the op fails its checks the link goes down, and the
    // next Hello resets what the peer is known to hold.)
    peer.known.Join(op.deps);
    FillDeps(op);
    const std::string error = CheckOp(op);
    if (!error.empty()) {
      Fail(peer, EventKind::kProtocolError, error);
      return;
    }
    if (peer.known.Get(Origin(op)) < LastSeq(op)) {
      peer.known.Set(Origin(op), LastSeq(op));
    }
    Receive(std::move(op));
  }
  if (!buffered_.empty()) {
    // The end of a group, or a missing op of one, may have come (a look per origin: cheap when
    // nothing is deliverable).
    Drain();
  }
  if (retained_->end() != applied_before) {
    Flush();  // relay what was applied to the peers that lack it
  }
}

// Whether `a` is below `b`, leaving out this replica's own entry (FillDeps sets it to what was
// applied when the copy came: always held here, so it never decides anything).
namespace {
bool SmallerDeps(const crdt::VersionVector& a, const crdt::VersionVector& b, ReplicaId self) {
  bool smaller = false;
  for (const auto& [replica, seq] : a.entries()) {
    if (replica != self && seq > b.Get(replica)) return false;
  }
  for (const auto& [replica, seq] : b.entries()) {
    if (replica != self && a.Get(replica) < seq) smaller = true;
  }
  return smaller;
}
}  // namespace

void Replicator::Receive(OpRecord op) {
  origins_.insert(Origin(op));
  // An op the snapshot being installed covers is in its state (joined or still to be joined):
  // applying it too could bring back what a later op in the cut removed.
  if (Covers(applied_, op) || (installing_ != nullptr && Covers(install_cut_, op))) {
    ++duplicate_ops_;  // dots make duplicates harmless: ignore them
    return;
  }
  if (Origin(op) == config_.replica) {
    Report(EventKind::kLostOwnOps, kNoReplica,
           "a peer holds our op " + std::to_string(op.op.first_dot.seq) + " beyond our applied " +
               std::to_string(applied_.Get(config_.replica)));
    return;
  }
  if (!op.group_continues && Deliverable(op)) {
    if (!StepSpent()) {
      ApplyAndRetain(std::move(op));
      Drain();
      return;
    }
    drain_pending_ = true;  // held for the next turns, with the batch's ops after it
  }
  // Buffered, and so is every op of a group until its last one is here (OnOpBatch drains).
  if (buffered_.size() >= config_.max_buffered_ops) {
    OverflowBuffer();
    return;
  }
  const crdt::Dot first = op.op.first_dot;
  auto [held, inserted] = buffered_.try_emplace(first, std::move(op));  // (op unmoved if held)
  // A copy whose deps are smaller replaces the one held: deps a relay filled in from its own
  // applied vector (FillDeps) may name ops of the relay made after this op, and two such relayed
  // copies could wait for each other (a group's ops are held longer, which made it happen: sim
  // seed 107). The origin's own copy, or a less overstated one, breaks that wait.
  if (!inserted && SmallerDeps(op.deps, held->second.deps, config_.replica)) {
    held->second = std::move(op);
  }
}

// The sender leaves out deps this replica reported applied (OpBatch::receiver_has): they are at
// most our applied vector now, so it stands in for them. That may overstate the op's causal
// past, never understate it: the op and its relays wait for nothing this replica lacks.
void Replicator::FillDeps(OpRecord& op) const {
  for (const auto& [replica, seq] : applied_.entries()) {
    if (replica != Origin(op) && op.deps.Get(replica) == 0) {
      op.deps.Set(replica, seq);
    }
  }
}

bool Replicator::Deliverable(const OpRecord& op) const {
  if (MutationInjected(Mutation::kApplyWithoutDeps)) {
    return applied_.Get(Origin(op)) + 1 == op.op.first_dot.seq;  // injected bug: deps ignored
  }
  return applied_.Get(Origin(op)) + 1 == op.op.first_dot.seq && DepsApplied(op) &&
         !(installing_ != nullptr && Covers(install_cut_, op));
}

// Whether every dep of the op is applied here. In a cluster, an entry of a replica outside the
// stream (neither this replica, nor a peer, nor the origin of an op a peer sent: another shard's,
// whose dots a slot migration imported into the origin's state, and which a snapshot or a restart
// then put into its applied vector) is not waited for: no op of that replica ever comes through the
// stream (CheckOp does not judge its dots either). Waiting for it held such an op, and every later
// one of its origin, forever. Without a cluster every replica is of this shard, and one not yet a
// peer (its ops relayed before its link came up) is waited for: skipping it broke causal delivery
// (sim --regions 5
// --seed 187).
bool Replicator::DepsApplied(const OpRecord& op) const {
  for (const auto& [replica, seq] : op.deps.entries()) {
    if (!DepApplied(replica, seq)) {
      return false;
    }
  }
  return true;
}

bool Replicator::DepApplied(ReplicaId replica, uint64_t seq) const {
  return seq <= applied_.Get(replica) || (config_.foreign_dots && replica != config_.replica &&
                                          !peers_.contains(replica) && !origins_.contains(replica));
}

bool Replicator::OtherDepsApplied(const OpRecord& op) const {
  if (MutationInjected(Mutation::kApplyWithoutDeps)) {
    return true;
  }
  for (const auto& [replica, seq] : op.deps.entries()) {
    if (replica != Origin(op) && !DepApplied(replica, seq)) {
      return false;
    }
  }
  return true;
}

void Replicator::ApplyAndRetain(OpRecord op) {
  applier_.Apply(op);
  applied_.Set(Origin(op), LastSeq(op));
  record_.clear();
  AppendOpRecord(op, record_);  // the body as it arrived (its group mark too), behind the header
  Retain(RetainedOpView{.origin = Origin(op),
                        .first_seq = op.op.first_dot.seq,
                        .last_seq = LastSeq(op),
                        .hlc = op.op.hlc,
                        .wire = record_,
                        .group_continues = op.group_continues});
}

size_t Replicator::DeliverBuffered(std::map<crdt::Dot, OpRecord>::iterator it) {
  if (!it->second.group_continues || MutationInjected(Mutation::kSplitGroups)) {
    if (!Deliverable(it->second)) {
      return 0;
    }
    OpRecord op = std::move(it->second);
    buffered_.erase(it);
    const size_t items = OpItems(op);
    ApplyAndRetain(std::move(op));
    return items;
  }
  // A group: consecutive seqs of one origin up to the op without the mark. The origin made them
  // back to back, so each depends only on the ones before it and on what the first depended on;
  // a peer's claims are checked all the same, before any op of the group is applied.
  if (!Deliverable(it->second)) {
    return 0;
  }
  const ReplicaId origin = it->first.replica;
  auto end = it;
  uint64_t next_seq = it->first.seq;
  for (;;) {
    if (end == buffered_.end() || end->first.replica != origin || end->first.seq != next_seq ||
        !OtherDepsApplied(end->second)) {
      return 0;  // not all here yet, or not deliverable yet
    }
    next_seq = LastSeq(end->second) + 1;
    if (!(end++)->second.group_continues) {
      break;
    }
  }
  std::vector<OpRecord> group;
  for (auto op = it; op != end; ++op) {
    group.push_back(std::move(op->second));
  }
  buffered_.erase(it, end);
  size_t items = 0;
  for (OpRecord& op : group) {
    items += OpItems(op);
    ApplyAndRetain(std::move(op));  // back to back, in this one call: no command in between
  }
  return items;
}

// Applies buffered ops that became deliverable, and forgets those already covered. Per round it
// looks at one candidate per origin (the op right after what is applied), so the work is
// O(origins * ops applied * log buffered). About max_drain_ops and max_drain_items (the ops it
// forgets count one each) per turn, and at least one op once the owner's step is spent
// (set_step_spent), whatever the calls
// (every deliverable op that arrives calls it: per call, a read of 128 ops right after an install
// released up to 128 held ops each, 25-750 ms of CPU at 1M elements): the rest wait for the next
// turn (drain_pending_, StepSnapshots), each op still after what it depends on.
void Replicator::Drain() {
  drain_pending_ = false;
  size_t& delivered = drained_this_turn_;
  size_t& items = drained_items_this_turn_;
  bool progress = true;
  while (progress && !buffered_.empty()) {
    if (delivered >= config_.max_drain_ops || items >= config_.max_drain_items ||
        (delivered > 0 && StepSpent())) {
      drain_pending_ = true;
      return;
    }
    progress = false;
    auto it = buffered_.begin();
    while (it != buffered_.end()) {
      const ReplicaId origin = it->first.replica;
      const uint64_t have = applied_.Get(origin);
      while (it != buffered_.end() && it->first.replica == origin && it->first.seq <= have) {
        // Covered meanwhile (a duplicate or a snapshot): an install's end covers thousands of
        // the ops held during it, and freeing them all at once took 20-35 ms. One item each.
        if (items >= config_.max_drain_items || (items > 0 && StepSpent())) {
          drain_pending_ = true;
          return;
        }
        it = buffered_.erase(it);
        ++items;
      }
      auto next = buffered_.find(crdt::Dot{origin, have + 1});
      if (next != buffered_.end()) {
        if (const size_t applied = DeliverBuffered(next); applied > 0) {
          progress = true;
          ++delivered;
          items += applied;
        }
      }
      it = buffered_.upper_bound(crdt::Dot{origin, UINT64_MAX});
    }
  }
}

// The buffer is full of ops whose deps never came (lost in flight): drop it and ask every peer
// to resend what we have not acknowledged: an Ack repeating our previous report (OnAck takes an
// Ack no newer than the previous one as a resend request). The Ack of what we applied since
// follows at the next Tick.
void Replicator::OverflowBuffer() {
  Report(EventKind::kBufferOverflow, kNoReplica,
         std::to_string(buffered_.size()) + " ops waiting for their deps were dropped");
  buffered_.clear();
  for (auto& [id, peer] : peers_) {
    if (peer->link == Link::kConnected) {
      transport_.Send(peer->id, Ack{peer->ack_sent});
      peer->ack_sent_ms = now_ms_;
    }
  }
}

// Keeps the op for the peers that lack it, within both bounds (the newest op always stays, so
// one op larger than max_retained_bytes can still be streamed).
void Replicator::Retain(const RetainedOpView& op) {
  LATTICE_ASSERT(Covers(applied_, op));
  retained_->AppendEncoded(op);
  while (OverBacklog(1)) {
    if (!OverBacklog(config_.install_backlog_factor) &&
        InstallNeeds(retained_->At(retained_->first()))) {
      return;  // kept for an install, within the larger bound
    }
    DropFront();
  }
}

bool Replicator::OverBacklog(uint64_t factor) const {
  const uint64_t ops = retained_->size();
  return ops > config_.max_retained_ops * factor ||
         (ops > 1 && retained_->bytes() > config_.max_retained_bytes * factor);
}

// A peer whose snapshot from us is in flight (sent whole, not yet acknowledged: it is being
// installed, or lost) and that lacks `op`, which its cut does not cover: the ops it needs once
// the install ends. Dropping them would leave it behind the floor again at its end.
bool Replicator::InstallNeeds(const RetainedOpView& op) const {
  return std::any_of(peers_.begin(), peers_.end(), [&](const auto& entry) {
    const Peer& peer = *entry.second;
    return peer.snapshot_in_flight && peer.link == Link::kConnected && !Covers(peer.acked, op) &&
           !Covers(peer.snapshot_covers, op);
  });
}

// Drops the oldest retained op. Peers that have not acknowledged it can no longer be served
// from the log: they become stale and get a snapshot.
void Replicator::DropFront() {
  const RetainedOpView op = retained_->At(retained_->first());
  for (auto& [id, peer] : peers_) {
    if (!Covers(peer->acked, op)) {
      MarkStale(*peer);
    }
  }
  DropFrontOp(op);
}

// Drops the oldest retained op, `op`, which no peer needs (or all were made stale).
void Replicator::DropFrontOp(const RetainedOpView& op) {
  if (floor_.Get(op.origin) < op.last_seq) {
    floor_.Set(op.origin, op.last_seq);
  }
  retained_->DropFront();
}

// Compaction: drops the retained prefix every known peer acknowledged (what all of them
// acknowledged is one vector, the meet of theirs).
void Replicator::DropAcknowledged() {
  if (retained_->size() == 0) {
    return;
  }
  crdt::VersionVector everyone = applied_;
  for (const auto& [id, peer] : peers_) {
    everyone.Meet(peer->acked);
  }
  // At most kDropOpsPerCall a call (every Ack and Tick calls it): the Ack that ends an install
  // covers the whole retained window, and dropping 80,000 ops at once took 6.5 ms.
  constexpr size_t kDropOpsPerCall = 8192;
  for (size_t dropped = 0; retained_->size() > 0 && dropped < kDropOpsPerCall; ++dropped) {
    const RetainedOpView op = retained_->At(retained_->first());
    if (!Covers(everyone, op)) {
      return;
    }
    DropFrontOp(op);
  }
}

void Replicator::MarkStale(Peer& peer) {
  if (!peer.stale) {
    peer.stale = true;
    Report(EventKind::kPeerStale, peer.id, "lacks ops no longer retained; needs a snapshot");
  }
}

void Replicator::AdvanceAckPosition(Peer& peer) {
  peer.ack_position = std::max(peer.ack_position, retained_->first());
  const uint64_t end = retained_->end();
  DeliveredScan delivered(peer);
  while (peer.ack_position < end && delivered(retained_->At(peer.ack_position))) {
    ++peer.ack_position;
  }
  peer.cursor = std::max(peer.cursor, peer.ack_position);
}

// Whether an op of `origin` is a relay the peer does not need: it gets that origin's ops over
// its own live link (its last Heartbeat said so). Skipped ops stay unacknowledged until the
// origin's copy arrives; if the peer loses that link, OnDirectLinks rewinds and they are sent,
// and so does any resend rewind (Peer::relay_before).
bool Replicator::Relayed(const Peer& peer, ReplicaId origin) const {
  return origin != config_.replica && origin != peer.id && peer.direct.has_value() &&
         std::binary_search(peer.direct->begin(), peer.direct->end(), origin);
}

// Streams retained ops the peer lacks, in retained (causal) order, at most max_inflight_ops
// beyond its acknowledged position. Without `partial`, only full batches go.
void Replicator::Pump(Peer& peer, bool partial) {
  // While a snapshot is being taken for it, its ops wait: those the snapshot covers are skipped
  // once its cut is known (Delivered), the others follow it.
  if (peer.link != Link::kConnected || peer.snapshot_source != nullptr) {
    return;
  }
  AdvanceAckPosition(peer);
  const uint64_t end = retained_->end();
  auto window_open = [&] { return peer.cursor - peer.ack_position < config_.max_inflight_ops; };
  while (peer.cursor < end && window_open()) {
    if (!partial && end - peer.cursor < config_.max_batch_ops) {
      return;
    }
    const bool idle = peer.cursor == peer.ack_position;
    std::string_view ops;
    uint64_t count = 0;
    if (const SharedBatch* shared = SharedBatchFor(peer)) {
      // Another peer got these very bytes: they are sent again, not coded again.
      peer.cursor = shared->to;
      ops = shared->ops;
      count = shared->count;
    } else {
      // The ops' stored records, behind headers coded for this peer: no op is decoded or copied
      // into an object on the way.
      OpBatchWriter& batch = *writer_;
      batch.Start(config_.replica, peer.reported);
      DeliveredScan delivered(peer);
      const uint64_t from = peer.cursor;
      bool own_and_all = true;  // every op of the batch is ours, and none was left out
      uint64_t first_seq = 0;
      while (peer.cursor < end && batch.count() < config_.max_batch_ops &&
             batch.ops().size() < config_.max_batch_bytes && window_open()) {
        const bool rewound = peer.cursor < peer.relay_before;
        const RetainedOpView op = retained_->At(peer.cursor++);
        if (!delivered(op) && (rewound || !Relayed(peer, op.origin))) {
          first_seq = batch.count() == 0 ? op.first_seq : first_seq;
          own_and_all = own_and_all && op.origin == config_.replica;
          if (op.origin == config_.replica) own_sent_ = std::max(own_sent_, op.last_seq);
          batch.Add(op.wire);
        } else {
          own_and_all = false;
        }
      }
      if (batch.count() == 0) {
        continue;
      }
      ops = batch.ops();
      count = batch.count();
      if (own_and_all && batch.receiver_free()) {
        ShareBatch(from, peer.cursor, first_seq, batch);
      }
    }
    if (idle) {
      peer.last_progress_ms = now_ms_;  // the resend timer starts with the first op in flight
    }
    peer.ops_sent += count;
    transport_.SendOps(peer.id,
                       EncodedOpBatch{.sender = config_.replica, .count = count, .ops = ops});
  }
}

// A batch another peer at this peer's cursor was sent and that this peer takes whole: its ops
// are all ours (seqs increasing, never relays), so none is delivered to this peer when the first
// is not; its bytes are coded for no receiver in particular; it fits the peer's window.
const Replicator::SharedBatch* Replicator::SharedBatchFor(const Peer& peer) const {
  for (const SharedBatch& shared : shared_) {
    if (shared.from == peer.cursor) {
      const bool fits = shared.to - peer.ack_position <= config_.max_inflight_ops;
      const bool lacks = peer.known.Get(config_.replica) < shared.first_seq;
      return fits && lacks && !peer.snapshot_in_flight ? &shared : nullptr;
    }
  }
  return nullptr;
}

// Keeps a batch that other peers may take as it is (SharedBatchFor): the last kSharedBatches,
// and only while another peer is connected.
void Replicator::ShareBatch(uint64_t from, uint64_t to, uint64_t first_seq,
                            const OpBatchWriter& batch) {
  const bool others = std::count_if(peers_.begin(), peers_.end(), [](const auto& entry) {
                        return entry.second->link == Link::kConnected;
                      }) > 1;
  if (!others) {
    return;
  }
  for (const SharedBatch& shared : shared_) {
    if (shared.from == from) {
      return;  // another batch from there is kept already
    }
  }
  SharedBatch kept = shared_.size() < kSharedBatches ? SharedBatch{} : std::move(shared_.front());
  if (shared_.size() >= kSharedBatches) {
    shared_.pop_front();
  }
  kept.from = from;
  kept.to = to;
  kept.first_seq = first_seq;
  kept.count = batch.count();
  kept.ops.assign(batch.ops());
  shared_.push_back(std::move(kept));
}

void Replicator::ForgetDroppedBatches() {
  const uint64_t first = retained_->first();
  std::erase_if(shared_, [first](const SharedBatch& shared) { return shared.from < first; });
}

namespace {

// Applier::StartSnapshot's default: the whole TakeSnapshot, handed out chunk by chunk.
class WholeSnapshot final : public SnapshotSource {
 public:
  explicit WholeSnapshot(std::vector<SnapshotChunk> chunks) : chunks_(std::move(chunks)) {
    LATTICE_ASSERT(!chunks_.empty() && chunks_.back().last);
  }
  SnapshotChunk Next(size_t) override {
    LATTICE_ASSERT(next_ < chunks_.size());
    return std::move(chunks_[next_++]);
  }

 private:
  std::vector<SnapshotChunk> chunks_;
  size_t next_ = 0;
};

// Applier::StartInstall's default: InstallSnapshot at the first Step.
class WholeInstall final : public SnapshotInstall {
 public:
  WholeInstall(Applier& applier, std::vector<SnapshotChunk> chunks)
      : applier_(applier), chunks_(std::move(chunks)) {}
  bool Step() override {
    applier_.InstallSnapshot(chunks_);
    return true;
  }

 private:
  Applier& applier_;
  std::vector<SnapshotChunk> chunks_;
};

}  // namespace

std::unique_ptr<SnapshotSource> Applier::StartSnapshot(size_t keys_per_chunk) {
  return std::make_unique<WholeSnapshot>(TakeSnapshot(keys_per_chunk));
}

std::unique_ptr<SnapshotInstall> Applier::StartInstall(std::vector<SnapshotChunk> chunks) {
  return std::make_unique<WholeInstall>(*this, std::move(chunks));
}

// The sum of the applied vector: it grows with every op applied (own, a peer's, or covered by
// an installed snapshot), and stays the same while the state does.
uint64_t Replicator::SnapshotNumber() const {
  uint64_t sum = 0;
  for (const auto& [origin, seq] : applied_.entries()) {
    sum += seq;
  }
  return sum & ((uint64_t{1} << (64 - kSnapshotChunkBits)) - 1);
}

// How long a snapshot of the peer's last size may take to install before it is sent again:
// 4 resend timeouts plus the keys at snapshot_keys_per_ms, doubled for each resend that brought
// no progress (up to 16 times).
int64_t Replicator::SnapshotResendAfterMs(const Peer& peer) const {
  const uint64_t install_ms =
      peer.snapshot_last_keys / std::max<uint64_t>(1, config_.snapshot_keys_per_ms);
  const uint64_t base = static_cast<uint64_t>(4 * config_.resend_timeout_ms) + install_ms;
  const uint64_t doublings =
      peer.snapshot_resends == 0 ? 0 : std::min<uint64_t>(peer.snapshot_resends - 1, 4);
  return static_cast<int64_t>(base << doublings);
}

bool Replicator::snapshot_work_pending() const {
  if (installing_ != nullptr || drain_pending_ || !discarded_.empty()) {
    return true;
  }
  return std::any_of(peers_.begin(), peers_.end(), [this](const auto& entry) {
    return TakingSnapshot(*entry.second) &&
           transport_.QueuedBytes(entry.first) < config_.snapshot_queue_bytes;
  });
}

bool Replicator::taking_snapshot_for(ReplicaId id) const {
  auto it = peers_.find(id);
  return it != peers_.end() && TakingSnapshot(*it->second);
}

bool Replicator::TakingSnapshot(const Peer& peer) {
  return peer.snapshot_source != nullptr && peer.link == Link::kConnected;
}

// Starts taking a snapshot for the peer; its chunks are sent as they are taken (PumpSnapshot,
// a bounded number per turn), and it is in flight once the last one is sent.
void Replicator::SendSnapshot(Peer& peer) {
  // Not while this replica installs one: a sliced export's cut is the shard context when it
  // begins, which an install's beginning already raised to its cut while slots wait to be
  // joined. TickPeer starts it once the install ends.
  if (peer.snapshot_source != nullptr || peer.link != Link::kConnected || installing_ != nullptr) {
    return;
  }
  peer.snapshot_source = applier_.StartSnapshot(config_.snapshot_keys_per_chunk);
  peer.snapshot_number = SnapshotNumber();
  peer.snapshot_chunk = 0;
  peer.snapshot_keys = 0;
  peer.snapshot_in_flight = false;
  if (!StepSpent()) {
    PumpSnapshot(peer);  // else its first chunk goes in the next turn's step (StepSnapshots)
  }
}

// Sends the snapshot's next chunks: snapshot_chunks_per_flush of them (the second and later
// only while the step's budget lasts), and only while the link has room
// (Transport::QueuedBytes), so neither the event loop nor the link's output buffer takes a whole
// large snapshot at once. Returns the chunks sent.
size_t Replicator::PumpSnapshot(Peer& peer) {
  size_t taken = 0;
  while (peer.snapshot_source != nullptr && peer.link == Link::kConnected &&
         taken < config_.snapshot_chunks_per_flush && !(taken > 0 && StepSpent()) &&
         transport_.QueuedBytes(peer.id) < config_.snapshot_queue_bytes) {
    SnapshotChunk chunk = peer.snapshot_source->Next(config_.snapshot_keys_per_chunk);
    LATTICE_ASSERT(peer.snapshot_chunk < (uint64_t{1} << kSnapshotChunkBits));
    chunk.snapshot_id = (peer.snapshot_number << kSnapshotChunkBits) | peer.snapshot_chunk++;
    peer.snapshot_keys += chunk.keys.size();
    ++taken;
    // Sent as a Message without copying its keys (a copy was a quarter of a chunk's CPU).
    Message message(std::move(chunk));
    transport_.Send(peer.id, message);
    chunk = std::move(std::get<SnapshotChunk>(message));
    if (!chunk.last) {
      continue;
    }
    peer.snapshot_source.reset();
    peer.snapshot_in_flight = true;
    peer.snapshot_covers = chunk.context.vector();
    own_sent_ = std::max(own_sent_, peer.snapshot_covers.Get(config_.replica));
    peer.snapshot_sent_ms = now_ms_;
    peer.snapshot_last_keys = peer.snapshot_keys;
    ++peer.snapshot_resends;
    // Its ops need not be streamed while it is in flight (Delivered); they join `known` only
    // when the peer's Ack shows it installed them.
    ++peer.snapshots_sent;
    Report(EventKind::kSnapshotSent, peer.id,
           std::to_string(peer.snapshot_chunk) + " chunks, " + std::to_string(peer.snapshot_keys) +
               " keys, number " + std::to_string(peer.snapshot_number));
  }
  return taken;
}

// A turn's snapshot work: freeing discarded chunks, draining held ops, taking and installing
// snapshots. The kind whose turn it is goes first, and the others follow while the step's budget
// lasts (StepSpent) or until one of them did some work: a chunk's export, an install's slice and
// a drain cost up to several milliseconds each under a checkpoint's copy-on-write, and together
// they held a turn for 12.8 ms of CPU in the storm test. Each kind that has work does some at
// least every kKinds turns, whatever the others cost.
void Replicator::StepSnapshots() {
  drained_this_turn_ = 0;  // once per turn (the server's end of turn, the timer, the simulator)
  drained_items_this_turn_ = 0;
  constexpr size_t kKinds = 4;
  const size_t lead = snapshot_turns_++ % kKinds;
  bool worked = false;
  for (size_t k = 0; k < kKinds && !(worked && StepSpent()); ++k) {
    switch ((lead + k) % kKinds) {
      case 0:
        for (size_t i = 0; i < kDiscardChunksPerTurn && !discarded_.empty(); ++i) {
          if (worked && StepSpent()) break;
          discarded_.pop_front();
          worked = true;
        }
        break;
      case 1:
        if (drain_pending_) {
          Drain();
          worked = true;
        }
        break;
      case 2:
        worked = PumpSnapshots(worked) || worked;
        break;
      default:
        for (size_t i = 0; i < config_.snapshot_chunks_per_flush && installing_ != nullptr; ++i) {
          if (worked && StepSpent()) break;
          if (installing_->Step()) {
            FinishInstall();
          }
          worked = true;
        }
        break;
    }
  }
}

// Each peer taking a snapshot gets its next chunks, the first one in turn, the others while the
// step's budget lasts (or, if nothing was done before in this step, until one sent a chunk).
// Whether any chunk was sent.
bool Replicator::PumpSnapshots(bool worked) {
  if (peers_.empty()) {
    return false;
  }
  const size_t first = pump_turns_++ % peers_.size();
  auto it = std::next(peers_.begin(), static_cast<std::ptrdiff_t>(first));
  bool sent = false;
  for (size_t k = 0; k < peers_.size(); ++k, ++it) {
    if (it == peers_.end()) it = peers_.begin();
    if ((worked || sent) && StepSpent()) break;
    sent = PumpSnapshot(*it->second) > 0 || sent;
  }
  return sent;
}

void Replicator::CompleteInstall() {
  while (installing_ != nullptr) {
    if (installing_->Step()) {
      FinishInstall();
    }
  }
}

void Replicator::OnSnapshotChunk(Peer& peer, SnapshotChunk&& chunk) {
  const uint64_t number = chunk.snapshot_id >> kSnapshotChunkBits;
  const uint64_t index = chunk.snapshot_id & ((uint64_t{1} << kSnapshotChunkBits) - 1);
  for (const SnapshotKey& key : chunk.keys) {
    if (key.db >= config_.databases) {
      Fail(peer, EventKind::kProtocolError, "snapshot key in db out of range");
      return;
    }
  }
  if (peer.settled_number == number) {
    // A resend of the snapshot this replica already has: acknowledged, not assembled again
    // (unless its cut is not covered after all: then the next resend is installed).
    if (chunk.last) {
      if (chunk.context.vector().LessOrEqual(applied_)) {
        Report(EventKind::kSnapshotSkipped, peer.id,
               "resent; covers " + chunk.context.vector().ToString());
        SendHeartbeat(peer);
      } else {
        peer.settled_number.reset();
      }
    }
    return;
  }
  if (peer.incoming_number.has_value() && number < *peer.incoming_number) {
    return;  // an older snapshot than the one being assembled (or installed)
  }
  if (!peer.incoming_number.has_value() || number > *peer.incoming_number) {
    peer.incoming_number = number;
    Discard(peer.incoming_chunks);
    peer.incoming_count.reset();
  } else if (peer.incoming_chunks.empty() && peer.incoming_count.has_value()) {
    return;  // this snapshot was installed already: a duplicate chunk
  }
  if (chunk.last) {
    // Its coverage is a report of what the peer holds, checked as an Ack is (before anything
    // of it is installed).
    if (std::string error = CheckReport(peer, chunk.context.vector()); !error.empty()) {
      Fail(peer, EventKind::kProtocolError, "snapshot: " + error);
      return;
    }
    peer.incoming_count = index + 1;
  }
  peer.incoming_chunks.try_emplace(index, std::move(chunk));
  // One install at a time: a snapshot assembled during another's install waits for its end
  // (FinishInstall), when it is often covered already. (Its chunks used to be dropped, and the
  // sender's resend a few seconds later found most of the last one assembled, never complete.)
  if (installing_ == nullptr && Assembled(peer)) {
    InstallSnapshot(peer);
  }
}

bool Replicator::Assembled(const Peer& peer) {
  return peer.incoming_count.has_value() && !peer.incoming_chunks.empty() &&
         peer.incoming_chunks.size() == *peer.incoming_count &&
         peer.incoming_chunks.rbegin()->first + 1 == *peer.incoming_count;
}

void Replicator::Discard(std::map<uint64_t, SnapshotChunk>& chunks) {
  for (auto& [index, chunk] : chunks) {
    discarded_.push_back(std::move(chunk));
  }
  chunks.clear();  // moved from: cheap
}

// A complete snapshot: acknowledged at once if the applied vector covers it already, else
// installed in slices (StepSnapshots), the first one now while the step has room.
void Replicator::InstallSnapshot(Peer& peer) {
  peer.settled_number = peer.incoming_number;
  const crdt::VersionVector covers = peer.incoming_chunks.rbegin()->second.context.vector();
  peer.acked.Join(covers);  // the sender held everything it sent
  peer.known.Join(covers);
  if (covers.LessOrEqual(applied_)) {
    // Nothing in it this replica lacks: joining it would change nothing. The Heartbeat reports
    // the applied vector, which covers the sender's floor (it clears the stale mark there)
    // without reading as a resend request, as a repeated Ack would.
    Report(EventKind::kSnapshotSkipped, peer.id, "covered; covers " + covers.ToString());
    SendHeartbeat(peer);
    Discard(peer.incoming_chunks);  // with incoming_count still set: "installed"
    return;
  }
  std::vector<SnapshotChunk> chunks;
  chunks.reserve(peer.incoming_chunks.size());
  for (auto& [index, chunk] : peer.incoming_chunks) {
    chunks.push_back(std::move(chunk));
  }
  peer.incoming_chunks.clear();  // with incoming_count still set: "installed"
  install_from_ = peer.id;
  install_cut_ = covers;
  installing_ = applier_.StartInstall(std::move(chunks));
  // Its first slice now if the step has room (the last chunk's decoding often used it up), else
  // in the next turn's step.
  if (!StepSpent() && installing_->Step()) {
    FinishInstall();
  }
}

// Every key is joined: the applied vector (and floor) rise to the cut, the ops waiting for it
// are applied, and every peer hears of what changed.
void Replicator::FinishInstall() {
  installing_.reset();
  const crdt::VersionVector covers = std::move(install_cut_);
  install_cut_ = {};
  bool raised = false;
  for (const auto& [origin, seq] : covers.entries()) {
    if (seq <= applied_.Get(origin)) {
      continue;
    }
    if (origin == config_.replica) {
      Report(EventKind::kLostOwnOps, install_from_, "snapshot covers our ops beyond our applied");
      continue;
    }
    // Ops we now cover without holding them: a peer lacking them needs a snapshot.
    applied_.Set(origin, seq);
    floor_.Set(origin, std::max(floor_.Get(origin), seq));
    raised = true;
  }
  Report(EventKind::kSnapshotInstalled, install_from_, covers.ToString());
  for (auto& [id, other] : peers_) {
    // Only a snapshot that raised the floor can leave a peer behind it.
    if (raised && !floor_.LessOrEqual(other->acked)) {
      MarkStale(*other);
    }
    // What the snapshot added (an unchanged vector is no news, and repeating the previous Ack
    // would ask the peer for a resend).
    if (other->link == Link::kConnected && !(other->ack_sent == applied_)) {
      SendAck(*other);
    }
  }
  Drain();
  // A snapshot that came whole during the install: installed now, or acknowledged if this one
  // covered it.
  for (auto& [id, other] : peers_) {
    if (installing_ != nullptr) break;
    if (Assembled(*other)) InstallSnapshot(*other);
  }
}

}  // namespace lattice::repl
