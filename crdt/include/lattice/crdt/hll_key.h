#pragma once
// PFADD as a delta of the registers it raised (docs/commands/hyperloglog.md, "Concurrency").
//
// A HyperLogLog is a string whose register's concurrent HyperLogLog entries read as their
// register-wise max (Key::GetString, hll::MergeValues), which is a join. A PFADD on a dense
// HyperLogLog uses that: instead of a read-modify-write SET of the whole 12304-byte value, its op
// adds one small entry beside the others, a sparse HyperLogLog holding only the registers it
// raised (with the newest entry's header and a stale cache), and observes nothing, so the entries
// it did not see as well as those it did stay, and every region reads the max of all of them.
// Reading that max gives exactly the bytes redis-server has after the same adds: a dense value's
// bytes are a function of its registers and its header. At most kMaxBeside such entries are kept;
// the PFADD after that (or any other HyperLogLog write: PFCOUNT's cache refresh, PFMERGE) is a
// whole-value write that observes and replaces all of them. Sparse HyperLogLogs (at most
// hll-sparse-max-bytes) keep the whole-value write: their bytes depend on the order of adds.
//
// Pure functions; the views returned point into the key or value passed in.

#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lattice/crdt/key.h"

namespace lattice::crdt::hll {

// Entries kept beside a dense value before a PFADD writes the whole value again.
inline constexpr size_t kMaxBeside = 32;
// Registers one raise entry may carry (a PFADD of more elements writes the whole value).
inline constexpr size_t kMaxRaises = 256;

// The HyperLogLog entries of one string cell, read in place: every entry that is an intact
// HyperLogLog, values[0] the cell's winner.
struct Entries {
  std::array<std::string_view, kMaxBeside + 1> values;
  size_t count = 0;
};

// The entries of `key` when a PFADD may ship only the registers it raises: a live string whose
// cell holds only entries (no increments or tombstones), whose winner is an intact HyperLogLog,
// with fewer than kMaxBeside entries beside it and at least one dense HyperLogLog among them (so
// the value read is dense). nullopt otherwise: the whole-value write applies.
std::optional<Entries> RaiseEntries(const Key& key, int64_t now_ms);
// The same for a plain value (a compact stored string): a dense HyperLogLog.
std::optional<Entries> RaiseEntries(std::string_view value);

struct AddPlan {
  enum class Kind { kUnchanged, kRaise, kWhole };
  Kind kind = Kind::kWhole;
  std::string raise;  // kRaise: the entry to add beside the others (AddBeside)
};

// What a PFADD of `elements` does to the HyperLogLog `entries`: nothing (no register rises),
// a raise entry, or the whole-value write (a rank above 32, which the sparse form cannot hold,
// or more than kMaxRaises registers).
AddPlan PlanAdd(const Entries& entries, std::span<const std::string_view> elements);

// The local write of a raise: `value` becomes a string entry of `key` beside the others; the op
// observes nothing but its own dot. Applied anywhere it only adds that entry.
KeyOp AddBeside(Key& key, std::string value, const Writer& writer, DotContext& shard);

}  // namespace lattice::crdt::hll
