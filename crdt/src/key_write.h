#pragma once
// Internal to lattice_crdt: the builder of one local write on a Key (see key.h).

#include "lattice/crdt/key.h"

namespace lattice::crdt {

// One local write in progress: every step is applied to the key at once (so the next step sees
// it) and folded into the op, whose delta is the join of the steps.
class KeyWrite {
 public:
  KeyWrite(Key& key, const Writer& writer, DotContext& shard)
      : key_(key), shard_(shard), stamp_{writer.dots, writer.hlc}, now_ms_(writer.now_ms) {
    op_.policies = writer.policies;
    op_.hlc = writer.hlc;
    op_.first_dot = Dot{writer.dots->replica(), writer.dots->next_seq()};
  }

  WriteStamp& stamp() { return stamp_; }
  int64_t now_ms() const { return now_ms_; }
  static KeyRest& RestOf(Key& key) { return key.MutableRest(); }
  static StringCell& StringOf(Key& key) { return key.string_; }
  const KeyRest& rest() const;
  const Key& key() const { return key_; }

  void Step(Key piece, const DotContext& piece_context) {
    key_.Join(piece, shard_, piece_context);
    shard_.Join(piece_context);
    op_.delta.Join(piece, op_.context, piece_context);
    op_.context.Join(piece_context);
  }

  // Checks the type, removes an expired or dead incarnation, creates one if needed, and drops
  // what it observed of hidden objects of other types.
  Result<void> Prepare(ObjectType want, bool any_type = false);

  KeyOp Finish() {
    if (stamp_.dots->next_seq() == op_.first_dot.seq) {
      // Every op has at least one dot (its identity in the replication stream), even a pure
      // observed-remove whose delta needs none.
      const Dot dot = stamp_.dots->Next();
      op_.context.Add(dot);
      shard_.Add(dot);
    }
    op_.dot_count = stamp_.dots->next_seq() - op_.first_dot.seq;
    return std::move(op_);
  }

 private:
  Key& key_;
  DotContext& shard_;
  WriteStamp stamp_;
  int64_t now_ms_;
  KeyOp op_;
};

}  // namespace lattice::crdt
