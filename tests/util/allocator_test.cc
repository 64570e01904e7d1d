// Tests of the allocator statistics INFO memory and MEMORY report (util/allocator.h): they follow
// what the program allocates and frees, whichever allocator the build links.

#include "util/allocator.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

namespace lattice::util {
namespace {

TEST_CASE("allocated bytes follow a large allocation and its release", "[util][allocator]") {
  if (AllocatedBytes() == 0) {
    WARN("the allocator reports no statistics (a sanitizer build?); skipped");
    return;
  }
  constexpr size_t kSize = 16 << 20;
  const uint64_t before = AllocatedBytes();
  auto block = std::make_unique<char[]>(kSize);
  block[kSize - 1] = 1;  // written, so it cannot be optimized away
  const uint64_t with_block = AllocatedBytes();
  CHECK(with_block >= before + kSize);
  block.reset();
  CHECK(AllocatedBytes() + kSize <= with_block);
}

TEST_CASE("allocator statistics are ordered and named", "[util][allocator]") {
  const AllocatorStats stats = ReadAllocatorStats();
  CHECK(stats.active >= stats.allocated);
  CHECK(stats.resident >= stats.allocated);
  const std::string_view name = AllocatorName();
  CHECK((name == "libc" || name.starts_with("jemalloc-5.")));
  CHECK(!AllocatorReport().empty());
  CHECK(PurgeAllocator());
}

}  // namespace
}  // namespace lattice::util
