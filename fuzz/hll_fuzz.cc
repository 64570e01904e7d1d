// Fuzz target: HyperLogLog bytes from a client (SET of crafted bytes, then PFADD/PFCOUNT/PFMERGE/
// PFDEBUG; crdt/hll.h). The first byte is the element count to add, the rest the value.
// Checked: never crashes, never reads past the value; a value Valid() accepts either fails the
// corruption checks consistently (Count, MaxInto and ToDense all refuse it) or keeps its
// registers through ToDense, and adds only ever raise registers. RegisterAt and Intact (PFADD's
// in-place read, crdt/hll_key.h) agree with MaxInto on every register, and a raise planned on a
// readable dense value beside it carries only registers above the merged ones.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/crdt/hll.h"
#include "lattice/crdt/hll_key.h"

namespace hll = lattice::crdt::hll;

namespace {

// A raise on `dense` with `other` beside it (both readable): only registers the elements raise
// above the max of both, each to the element's rank.
void CheckRaise(const std::string& dense, const std::string& other, int adds) {
  hll::Entries entries;
  entries.values[entries.count++] = dense;
  entries.values[entries.count++] = other;
  std::vector<std::string> elements;
  for (int i = 0; i < adds; ++i) elements.push_back("raise" + std::to_string(i));
  const std::vector<std::string_view> views(elements.begin(), elements.end());
  const hll::AddPlan plan = hll::PlanAdd(entries, views);
  if (plan.kind != hll::AddPlan::Kind::kRaise) return;
  hll::Registers merged{};
  hll::Registers raised{};
  if (!hll::Valid(plan.raise) || !hll::MaxInto(merged, dense) || !hll::MaxInto(merged, other) ||
      !hll::MaxInto(raised, plan.raise)) {
    std::abort();
  }
  for (int i = 0; i < hll::kRegisters; ++i) {
    if (raised[i] != 0 && raised[i] <= merged[i]) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int adds = data[0] % 8;
  std::string value(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (!hll::Valid(value)) return 0;
  hll::Registers before{};
  const bool readable = hll::MaxInto(before, value);
  if (readable != hll::Count(value).has_value()) std::abort();
  (void)hll::Decode(value);
  (void)hll::CachedCount(value);
  if (hll::Intact(value) != readable) std::abort();
  for (int i = 0; i < hll::kRegisters; i += 1 + data[0] % 61) {
    const std::optional<uint8_t> reg = hll::RegisterAt(value, i);
    if (readable && reg != before[i]) std::abort();
  }
  std::string dense = value;
  if (hll::ToDense(dense) != readable) std::abort();
  if (readable) {
    hll::Registers after{};
    if (!hll::MaxInto(after, dense) || after != before) std::abort();
  }
  if (readable) {
    CheckRaise(dense, value, adds);
  }
  for (int i = 0; i < adds; ++i) {
    const int changed = hll::Add(value, "element" + std::to_string(i), 3000);
    if (changed < 0) return 0;  // corrupted: PFADD refuses it
  }
  if (readable && hll::Valid(value)) {
    hll::Registers after{};
    if (hll::MaxInto(after, value)) {
      for (int i = 0; i < hll::kRegisters; ++i) {
        if (after[i] < before[i]) std::abort();
      }
    }
  }
  return 0;
}
