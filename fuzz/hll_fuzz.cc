// Fuzz target: HyperLogLog bytes from a client (SET of crafted bytes, then PFADD/PFCOUNT/PFMERGE/
// PFDEBUG; crdt/hll.h). The first byte is the element count to add, the rest the value.
// Checked: never crashes, never reads past the value; a value Valid() accepts either fails the
// corruption checks consistently (Count, MaxInto and ToDense all refuse it) or keeps its
// registers through ToDense, and adds only ever raise registers.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lattice/crdt/hll.h"

namespace hll = lattice::crdt::hll;

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
  std::string dense = value;
  if (hll::ToDense(dense) != readable) std::abort();
  if (readable) {
    hll::Registers after{};
    if (!hll::MaxInto(after, dense) || after != before) std::abort();
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
