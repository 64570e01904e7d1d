#pragma once
// The string cell of a string key or a hash field: a Register<std::string> read as Valkey reads a
// string, with INCRBY / INCRBYFLOAT under the counter or LWW rule. Under kCounter an increment is
// a PN-counter update (concurrent increments all add up); under kLww it is a read-modify-write
// SET of the new number (concurrent increments: the later one wins). APPEND and SETRANGE are
// always read-modify-write LWW writes of the whole new value. Merged integer sums are exact
// (128-bit); a sum outside int64 is shown exactly and a later INCR on it reports Valkey's "not an
// integer or out of range". A base that is not a number shows as itself: a SET of a non-number
// concurrent with increments wins outright. Pure functions; thread-safe on const inputs.

#include <optional>
#include <string>

#include "lattice/common/result.h"
#include "lattice/crdt/policy.h"
#include "lattice/crdt/register.h"

namespace lattice::crdt {

using StringCell = Register<std::string>;

// What GET would return; nullopt when the cell is not alive.
std::optional<std::string> RenderString(const StringCell& cell);

// The integer INCRBY reads from `cell` (0 when it is not alive), worked out from the cell's
// numbers without rendering text: what ParseInt64(RenderString(cell).value_or("0")) gives, with
// kNotInteger for a sum outside int64. nullopt when only the text can tell (float increments, a
// base that is not a canonical integer): the caller renders then.
std::optional<Result<int64_t>> CounterInt(const StringCell& cell);

// The value INCRBY / INCRBYFLOAT would produce from `current` (nullopt: absent), or Valkey's error.
Result<std::string> NextCounterValue(const std::optional<std::string>& current, int64_t by,
                                     long double float_by, bool is_float);

// Builds the delta of INCRBY (or INCRBYFLOAT when `is_float`) with Valkey's errors.
Result<StringCell> IncrementDelta(const StringCell& cell, int64_t by, long double float_by,
                                  bool is_float, StringRule rule, WriteStamp& stamp,
                                  DotContext& context);

}  // namespace lattice::crdt
