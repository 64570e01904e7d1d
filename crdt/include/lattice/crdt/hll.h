#pragma once
// HyperLogLog values in Valkey's byte format, so that a HyperLogLog is a string whose bytes, GET
// replies and PFCOUNT estimates are redis-server's byte for byte (docs/commands/hyperloglog.md).
//
// Format (written from the format's description, not from Valkey's code): a 16-byte header
// "HYLL", an encoding byte (0 dense, 1 sparse), three unused bytes and an 8-byte little-endian
// cached cardinality whose top bit set means "stale"; then 16384 6-bit registers, either dense
// (12288 bytes, register i at bit 6*i, least significant bits first) or sparse opcodes: ZERO
// 00xxxxxx (run of 1..64 zero registers), XZERO 01xxxxxx yyyyyyyy (run of 1..16384 zeros), VAL
// 1vvvvvxx (run of 1..4 registers holding 1..32). Sparse updates split and merge opcodes exactly
// as Valkey does, so the sparse bytes depend on the order of adds, as Valkey's do; a sparse value
// becomes dense when a register exceeds 32 or the value would exceed hll-sparse-max-bytes.
//
// Merge rule (the CRDT view): a HyperLogLog's state is its registers, and register-wise max is a
// join, so union of concurrent adds is exact. MergeValues is that join on whole values: it
// writes the max of every register into the first value with the PFMERGE procedure, so the result
// is a function of the values and their order (the caller orders them by write stamp).
//
// Pure functions on byte strings; thread-safe.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lattice::crdt::hll {

inline constexpr int kRegisters = 16384;
inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kDenseSize = kHeaderSize + (kRegisters * 6 + 7) / 8;
inline constexpr uint8_t kDense = 0;
inline constexpr uint8_t kSparse = 1;

using Registers = std::array<uint8_t, kRegisters>;

// Valkey's MurmurHash64A (seed 0xadc83b19) of `element`.
uint64_t Hash(std::string_view element);
// The register an element lands in and its rank (1..51).
void PatternOf(std::string_view element, int* index, uint8_t* rank);

// Whether `value` passes Valkey's isHLLObjectOrReply: magic, a known encoding, and a dense value
// of the exact dense size. (A sparse value's opcodes are checked when read: Corrupted.)
bool Valid(std::string_view value);
// An empty sparse HyperLogLog (18 bytes, cached cardinality 0).
std::string NewSparse();

// Adds `element`: 1 when a register changed (cache invalidated), 0 when none, -1 corrupted.
int Add(std::string& value, std::string_view element, size_t sparse_max_bytes);
// Raises register `index` to at least `rank`, as Add does: 1, 0 or -1.
int SetRegister(std::string& value, int index, uint8_t rank, size_t sparse_max_bytes);
// Register `index` of `value` (a valid HyperLogLog): nullopt when its sparse opcodes are
// corrupted (they do not cover exactly 16384 registers).
std::optional<uint8_t> RegisterAt(std::string_view value, int index);
// Whether a valid value's sparse opcodes cover exactly 16384 registers (a dense value always does).
bool Intact(std::string_view value);
// Converts a sparse value to dense in place: false when the sparse opcodes are corrupted.
bool ToDense(std::string& value);
// max[i] = max(max[i], register i of value): false when corrupted.
bool MaxInto(Registers& max, std::string_view value);
// Valkey's estimator (Ertl's improved estimator) over raw registers.
uint64_t Estimate(const Registers& registers);
// The estimate of one value: nullopt when corrupted.
std::optional<uint64_t> Count(std::string_view value);

// The cached cardinality, when the header says it is valid.
std::optional<uint64_t> CachedCount(std::string_view value);
void StoreCachedCount(std::string& value, uint64_t count);

// PFMERGE's write of `max` into `target` (a valid value): dense when `dense` (or when the sparse
// form outgrows sparse_max_bytes), each nonzero register raised in index order, cache
// invalidated. False when target is corrupted.
bool WriteMax(std::string& target, const Registers& max, bool dense, size_t sparse_max_bytes);
// The join of concurrent HyperLogLog values, `values[0]` the newest: PFMERGE of all of them into
// values[0]. nullopt when fewer than two are valid HyperLogLogs (then no merge applies).
std::optional<std::string> MergeValues(const std::vector<std::string_view>& values);

// PFDEBUG DECODE's text of a sparse value ("z:3 v:2,1 Z:16380"); nullopt when not sparse.
std::optional<std::string> Decode(std::string_view value);
// PFSELFTEST's checks (register packing, sparse/dense agreement, estimator error): an error
// message, or empty when all pass.
std::string SelfTest();

}  // namespace lattice::crdt::hll
