#include "lattice/crdt/hll_key.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "key_write.h"
#include "lattice/common/assert.h"
#include "lattice/crdt/hll.h"

namespace lattice::crdt::hll {

namespace {

constexpr uint8_t kSparseRankMax = 32;

bool IntactHll(std::string_view value) { return Valid(value) && Intact(value); }
bool Dense(std::string_view value) { return static_cast<uint8_t>(value[4]) == kDense; }

struct Raise {
  int index = 0;
  uint8_t rank = 0;
};

// The register `index` as the merged value shows it: the max over the entries.
uint8_t MergedRegister(const Entries& entries, int index) {
  uint8_t max = 0;
  for (size_t i = 0; i < entries.count; ++i) {
    max = std::max(max, RegisterAt(entries.values[i], index).value_or(0));
  }
  return max;
}

// A sparse HyperLogLog holding `raises`, with `newest`'s header and a stale cache: what the value
// read after the raise has in its header, as redis-server's PFADD leaves it.
std::string RaiseValue(std::string_view newest, const std::vector<Raise>& raises) {
  std::string value = NewSparse();
  for (const Raise& raise : raises) {
    SetRegister(value, raise.index, raise.rank, std::string::npos);  // never promoted
  }
  value.replace(5, kHeaderSize - 5, newest.substr(5, kHeaderSize - 5));
  value[15] = static_cast<char>(value[15] | 0x80);
  return value;
}

}  // namespace

std::optional<Entries> RaiseEntries(std::string_view value) {
  if (!Valid(value) || !Dense(value)) return std::nullopt;
  Entries entries;
  entries.values[entries.count++] = value;
  return entries;
}

std::optional<Entries> RaiseEntries(const Key& key, int64_t now_ms) {
  if (key.TypeAt(now_ms) != ObjectType::kString || key.HasChunks()) return std::nullopt;
  const StringCell& cell = key.string();
  const StringCell::Entry* winner = cell.Winner();
  if (winner == nullptr || !IntactHll(winner->value)) return std::nullopt;
  Entries entries;
  entries.values[entries.count++] = winner->value;
  bool dense = Dense(winner->value);
  if (const RegisterRest<std::string>* rest = cell.rest()) {
    if (!rest->tombs.empty() || !rest->incs.empty() || rest->more.size() >= kMaxBeside) {
      return std::nullopt;
    }
    for (const StringCell::Entry& entry : rest->more) {
      if (!IntactHll(entry.value)) continue;  // takes no part in the read either (MergeValues)
      entries.values[entries.count++] = entry.value;
      dense = dense || Dense(entry.value);
    }
  }
  if (!dense) return std::nullopt;
  return entries;
}

AddPlan PlanAdd(const Entries& entries, std::span<const std::string_view> elements) {
  std::vector<Raise> raises;
  for (std::string_view element : elements) {
    Raise next;
    PatternOf(element, &next.index, &next.rank);
    auto same = std::find_if(raises.begin(), raises.end(),
                             [&](const Raise& r) { return r.index == next.index; });
    const uint8_t current = same != raises.end() ? same->rank : MergedRegister(entries, next.index);
    if (next.rank <= current) continue;
    if (next.rank > kSparseRankMax) return AddPlan{};
    if (same != raises.end()) {
      same->rank = next.rank;
    } else {
      raises.push_back(next);
    }
    if (raises.size() > kMaxRaises) return AddPlan{};
  }
  if (raises.empty()) return AddPlan{AddPlan::Kind::kUnchanged, {}};
  // Sparse opcodes are written in index order, so the entry's bytes are a function of the set.
  std::sort(raises.begin(), raises.end(),
            [](const Raise& a, const Raise& b) { return a.index < b.index; });
  return AddPlan{AddPlan::Kind::kRaise, RaiseValue(entries.values[0], raises)};
}

namespace {

// Register::Join copies every entry's value, three times over for the entries it keeps: for a
// 12304-byte dense value beside small raises that was most of a PFADD's instructions. Join
// decides by dots and stamps only and never reads a value, so the large values are parked (moved
// out, by dot) while it runs and moved back after. The entries are this write's own, mutable,
// state: the const_cast only undoes the read-only view Register gives of them.
class ParkedValues {
 public:
  explicit ParkedValues(Key& key) : cell_(KeyWrite::StringOf(key)) {
    ForEachEntry([&](StringCell::Entry& entry) {
      if (entry.value.size() > kParkBytes) parked_.emplace_back(entry.dot, std::move(entry.value));
    });
  }
  ~ParkedValues() {
    size_t restored = 0;
    ForEachEntry([&](StringCell::Entry& entry) {
      for (auto& [dot, value] : parked_) {
        if (dot == entry.dot) {
          entry.value = std::move(value);
          ++restored;
        }
      }
    });
    LATTICE_ASSERT(restored == parked_.size());
  }
  ParkedValues(const ParkedValues&) = delete;
  ParkedValues& operator=(const ParkedValues&) = delete;

 private:
  static constexpr size_t kParkBytes = 256;
  template <typename F>
  void ForEachEntry(F&& f) {
    if (const StringCell::Entry* winner = cell_.Winner())
      f(const_cast<StringCell::Entry&>(*winner));
    if (const RegisterRest<std::string>* rest = cell_.rest()) {
      for (const StringCell::Entry& entry : rest->more) f(const_cast<StringCell::Entry&>(entry));
    }
  }

  StringCell& cell_;
  std::vector<std::pair<Dot, std::string>> parked_;
};

}  // namespace

KeyOp AddBeside(Key& key, std::string value, const Writer& writer, DotContext& shard) {
  KeyWrite write(key, writer, shard);
  const Dot dot = write.stamp().dots->Next();
  DotContext context;
  context.Add(dot);
  Key piece = Key::OfString(RegisterEntry<std::string>{std::move(value), writer.hlc, dot});
  if (write.StepBeside(piece, context)) return write.Finish();
  {
    // The join only adds the piece's entry (its context holds only its own dot): every parked
    // entry is still there to take its value back.
    ParkedValues parked(key);
    write.Step(std::move(piece), context);
  }
  return write.Finish();
}

}  // namespace lattice::crdt::hll
