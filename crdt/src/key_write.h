#pragma once
// Internal to lattice_crdt: the builder of one local write on a Key (see key.h).

#include <utility>

#include "lattice/crdt/key.h"

namespace lattice::crdt {

// Names of collection elements, per collection type (sorted and distinct once normalized).
struct TouchedNames {
  std::vector<std::string> hash;
  std::vector<std::string> set;
  std::vector<std::string> zset;
  // List elements a step removes (their positions; List::JoinDelta's hint).
  std::vector<ListPosition> list;
  // Stream entries a step removes (Stream::JoinSome's hint).
  std::vector<StreamEntryKey> stream;
};

// StringCell::Join, without the copy when the delta leaves the cell as it is (key_delta.cc).
void JoinStringCell(StringCell& cell, const StringCell& delta, const DotContext& mine,
                    const DotContext& theirs);

// Joins the envelope's O(1) cells (creation cells, key expiry): Join and JoinDelta alike.
void JoinKeyCells(KeyRest& a, const KeyRest& b, const DotContext& mine, const DotContext& theirs);

// One local write in progress: every step is applied to the key at once (so the next step sees
// it) and folded into the op, whose delta is the join of the steps.
// SetGenericWritesForTesting's switch: the in-place write paths stand aside.
bool GenericWritesForced();

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

  // A step that may touch anything (type change, DEL): full joins.
  void Step(Key piece, const DotContext& piece_context) {
    key_.Join(piece, shard_, piece_context);
    shard_.Join(piece_context);
    op_.delta.Join(piece, op_.context, piece_context);
    op_.context.Join(piece_context);
  }

  // A step whose piece is one string entry observing nothing but its own dot (a PFADD's raise
  // entry beside the others): Register::JoinSimple adds it in place, the same state as Step's
  // full join without copying the cell's other entries. False, with nothing changed, when
  // JoinSimple leaves it to the full join.
  bool StepBeside(Key& piece, const DotContext& piece_context) {
    if (GenericWritesForced() ||
        !key_.string_.JoinSimple(piece.string_, shard_, piece_context, /*beside=*/true)) {
      return false;
    }
    shard_.Join(piece_context);
    op_.delta.Join(piece, op_.context, piece_context);
    op_.context.Join(piece_context);
    return true;
  }

  // A step whose context covers dots of the elements in `names` only (besides this write's own
  // dots and key-level cells): joined in O(|piece| log n). Key::JoinDelta still checks every
  // covered dot, so a wrong `names` costs time, never correctness.
  void Step(Key piece, const DotContext& piece_context, TouchedNames names) {
    const uint64_t own_count = stamp_.dots->next_seq() - op_.first_dot.seq;
    key_.JoinTouched(piece, shard_, piece_context, op_.first_dot, own_count, names, false);
    shard_.Join(piece_context);
    op_.delta.JoinTouched(piece, op_.context, piece_context, op_.first_dot, own_count,
                          std::move(names), true);
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
