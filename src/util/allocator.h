#pragma once
// The process's heap allocator, as INFO memory and MEMORY report it. Release builds link
// jemalloc (as Valkey ships): the figures come from its mallctl statistics, refreshed on every
// read. Builds without it (LATTICE_JEMALLOC off, e.g. the ASan/libFuzzer build, whose sanitizer
// owns malloc) fall back to glibc's mallinfo2(), which reports zeros under a sanitizer.
// Reads are cheap but not free (an epoch refresh takes a global jemalloc lock): for INFO and
// tests, never per request. Thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lattice::util {

struct AllocatorStats {
  uint64_t allocated = 0;  // bytes the program holds (malloc'ed and not freed)
  uint64_t active = 0;     // bytes in pages with live allocations (>= allocated)
  uint64_t resident = 0;   // bytes of the allocator's mappings in RAM (>= active)
  uint64_t mapped = 0;     // bytes the allocator has mapped
  uint64_t retained = 0;   // bytes returned to the OS but kept as address space
};

// "jemalloc-5.3.0" or "libc": INFO memory's mem_allocator.
std::string_view AllocatorName();

// Fresh figures (jemalloc: after an epoch refresh).
AllocatorStats ReadAllocatorStats();

// Shorthand for ReadAllocatorStats().allocated.
uint64_t AllocatedBytes();

// The allocator's own text report (jemalloc's malloc_stats_print): MEMORY MALLOC-STATS.
std::string AllocatorReport();

// Bytes the calling thread has allocated so far (jemalloc: its cumulative thread.allocated
// counter; libc: the heap's current total). Across a call that frees nothing, the difference is
// what the call allocated (MEMORY USAGE measures a copy of a key's state this way).
uint64_t ThreadAllocatedBytes();

// The calling thread's net allocation (bytes allocated minus bytes freed over its life; jemalloc:
// read through the thread.allocatedp/deallocatedp counters without a lock or an epoch refresh,
// so cheap enough for every command; libc: the heap's current total). Between two reads on one
// thread the difference is what that thread's work changed in allocated memory: maxmemory
// enforcement (server/eviction.h) adds it to the last full figure.
int64_t ThreadNetAllocated();

// The usable size of a live allocation (malloc_usable_size: the size class it occupies).
size_t UsableSize(const void* pointer);

// Hands unused dirty pages back to the OS now (jemalloc: every arena's purge; libc:
// malloc_trim). Returns false when the allocator refused.
bool PurgeAllocator();

// Valkey's jemalloc-bg-thread: jemalloc's background thread returns dirty pages to the OS, so
// the thread that frees or allocates memory never does it inline (a purge, and the page faults
// that follow it, cost the event loop 5-30 ms at a time under #17's snapshot storms). Returns
// false when the allocator has no such thread (libc) or refused.
bool SetAllocatorBackgroundThread(bool enabled);

}  // namespace lattice::util
