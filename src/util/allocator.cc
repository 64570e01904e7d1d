#include "util/allocator.h"

#include <malloc.h>

#if defined(LATTICE_JEMALLOC)
#include <jemalloc/jemalloc.h>
#endif

namespace lattice::util {

#if defined(LATTICE_JEMALLOC)
namespace {

uint64_t ReadSize(const char* name) {
  size_t value = 0;
  size_t length = sizeof(value);
  return mallctl(name, &value, &length, nullptr, 0) == 0 ? value : 0;
}

}  // namespace

std::string_view AllocatorName() {
  // jemalloc's "version" is e.g. "5.3.0-0-g54eaed1d..."; Valkey prints "jemalloc-5.3.0".
  static const std::string name = [] {
    const char* version = nullptr;
    size_t length = sizeof(version);
    if (mallctl("version", &version, &length, nullptr, 0) != 0 || version == nullptr) {
      return std::string("jemalloc");
    }
    const std::string_view full(version);
    return "jemalloc-" + std::string(full.substr(0, full.find('-')));
  }();
  return name;
}

AllocatorStats ReadAllocatorStats() {
  // The stats.* values are a snapshot taken at the last epoch bump: bump it first.
  uint64_t epoch = 1;
  size_t length = sizeof(epoch);
  mallctl("epoch", &epoch, &length, &epoch, length);
  return {.allocated = ReadSize("stats.allocated"),
          .active = ReadSize("stats.active"),
          .resident = ReadSize("stats.resident"),
          .mapped = ReadSize("stats.mapped"),
          .retained = ReadSize("stats.retained")};
}

std::string AllocatorReport() {
  std::string out;
  malloc_stats_print(
      [](void* sink, const char* text) { static_cast<std::string*>(sink)->append(text); }, &out,
      nullptr);
  return out;
}

uint64_t ThreadAllocatedBytes() {
  uint64_t value = 0;
  size_t length = sizeof(value);
  return mallctl("thread.allocated", &value, &length, nullptr, 0) == 0 ? value : 0;
}

int64_t ThreadNetAllocated() {
  // The counters' addresses are per thread and fixed: look them up once.
  struct Counters {
    uint64_t* allocated = nullptr;
    uint64_t* deallocated = nullptr;
    Counters() {
      size_t length = sizeof(allocated);
      if (mallctl("thread.allocatedp", &allocated, &length, nullptr, 0) != 0) allocated = nullptr;
      length = sizeof(deallocated);
      if (mallctl("thread.deallocatedp", &deallocated, &length, nullptr, 0) != 0) {
        deallocated = nullptr;
      }
    }
  };
  static thread_local const Counters counters;
  if (counters.allocated == nullptr || counters.deallocated == nullptr) return 0;
  return static_cast<int64_t>(*counters.allocated - *counters.deallocated);
}

bool PurgeAllocator() {
  // MALLCTL_ARENAS_ALL (4096) names every arena at once.
  return mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0) == 0;
}

bool SetAllocatorBackgroundThread(bool enabled) {
  return mallctl("background_thread", nullptr, nullptr, &enabled, sizeof(enabled)) == 0;
}

#else  // glibc malloc

std::string_view AllocatorName() { return "libc"; }

AllocatorStats ReadAllocatorStats() {
  const struct mallinfo2 info = mallinfo2();
  const uint64_t allocated = info.uordblks + info.hblkhd;
  return {.allocated = allocated,
          .active = allocated,
          .resident = info.arena + info.hblkhd,
          .mapped = info.arena + info.hblkhd,
          .retained = 0};
}

std::string AllocatorReport() { return "Stats not supported for the current allocator\n"; }

uint64_t ThreadAllocatedBytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

int64_t ThreadNetAllocated() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
}

bool PurgeAllocator() {
  malloc_trim(0);  // returns whether it released anything; either way the purge happened
  return true;
}

bool SetAllocatorBackgroundThread(bool) { return false; }

#endif

uint64_t AllocatedBytes() { return ReadAllocatorStats().allocated; }

size_t UsableSize(const void* pointer) { return malloc_usable_size(const_cast<void*>(pointer)); }

}  // namespace lattice::util
