// The bitmap commands' windowed path (Key::ReadStringRange, Key::WriteBitmapWindow: read and
// write only the chunks a command touches) against the whole-value path, its reference (GetString
// of the whole composed value, Key::WriteBitmap): twin replicas take the same seeded random
// history of bitmap writes (SETBIT, SETRANGE, BITFIELD-like XOR patches, grow-only writes,
// more than kChunksMax chunks; WRAP increments, in place against SetGenericWritesForTesting's
// generic path), SETs, EXPIREs and a peer's concurrent writes (chunks, counters,
// SET, APPEND, DEL, INCRBY on the base), one twin through each path; after every step both must
// hold the same key, shard context and dot source and have made the same op, and every random
// range read must equal the same bytes of GetString.
#include <catch2/catch.hpp>
#include <deque>

#include "crdt/crdt_test_util.h"

namespace lattice::crdt::testing {
namespace {

// Chunks a history's writes land in: past kChunksMax, so whole-value fallbacks happen.
constexpr uint64_t kWindowTestChunks = kChunksMax + 16;

// A bitmap write: XOR `mask` into the bytes from `at` (the value grown to `at + mask.size()`);
// an all-zero mask only grows the string, written as the family does (its last byte).
struct WindowPatch {
  size_t at = 0;
  std::string mask;
};

WindowPatch RandomWindowPatch(Rng& rng) {
  WindowPatch patch;
  patch.at = static_cast<size_t>(rng.Uniform(kWindowTestChunks * kChunkBytes));
  const size_t length = rng.Chance(1, 4) ? 1 + static_cast<size_t>(rng.Uniform(600)) : 1;
  for (size_t i = 0; i < length; ++i) {
    patch.mask.push_back(static_cast<char>(rng.Chance(1, 5) ? 0 : 1 + rng.Uniform(255)));
  }
  return patch;
}

void XorInto(std::string& bytes, size_t at, const std::string& mask) {
  for (size_t i = 0; i < mask.size(); ++i)
    bytes[at + i] = static_cast<char>(bytes[at + i] ^ mask[i]);
}

// The changed bytes [first, end) of a patch on a value of `size` bytes after it (the last byte
// when it changes nothing, as StoreBitmapBytes writes a grow-only write).
std::pair<size_t, size_t> ChangedBytes(const WindowPatch& patch, size_t size) {
  if (patch.mask.find_first_not_of('\0') == std::string::npos) return {size - 1, size};
  return {patch.at, patch.at + patch.mask.size()};
}

std::optional<KeyOp> WriteWhole(Node& node, const WindowPatch& patch, const Writer& w) {
  std::string value = node.key.GetString(w.now_ms).value_or("");
  value.resize(std::max(value.size(), patch.at + patch.mask.size()), '\0');
  XorInto(value, patch.at, patch.mask);
  const auto [first, end] = ChangedBytes(patch, value.size());
  return Take(node.key.WriteBitmap(std::move(value), first, end, w, node.context));
}

std::optional<KeyOp> WriteWindowed(Node& node, const WindowPatch& patch, const Writer& w) {
  const size_t end_byte = patch.at + patch.mask.size();
  std::string scratch;
  std::string_view bytes;
  // The size first: a grow-only write's window is its last byte's chunk.
  const size_t old_size = node.key.ReadStringRange(0, 0, w.now_ms, scratch, bytes).value_or(0);
  const size_t size = std::max(old_size, end_byte);
  const auto [first, end] = ChangedBytes(patch, size);
  const size_t begin = std::min(first, patch.at) / kChunkBytes * kChunkBytes;
  const size_t chunk_end = ((std::max(end, end_byte) - 1) / kChunkBytes + 1) * kChunkBytes;
  (void)node.key.ReadStringRange(begin, chunk_end, w.now_ms, scratch, bytes);
  std::string window(bytes);
  window.resize(std::min(chunk_end, size) - begin, '\0');
  XorInto(window, patch.at - begin, patch.mask);
  // The window of the changed bytes' chunks only, as StoreBitmapBytes cuts it.
  const size_t from = first / kChunkBytes * kChunkBytes;
  const size_t to = std::min(((end - 1) / kChunkBytes + 1) * kChunkBytes, size);
  return Take(node.key.WriteBitmapWindow(std::string_view(window).substr(from - begin, to - from),
                                         from, size, first, end, w, node.context));
}

// Random reads of the windowed twin against GetString of the whole value.
void CheckWindowReads(Rng& rng, const Node& node, int64_t now_ms) {
  const std::optional<std::string> whole = node.key.GetString(now_ms);
  std::string scratch;
  std::string_view out;
  for (int i = 0; i < 4; ++i) {
    const size_t begin = static_cast<size_t>(rng.Uniform((kWindowTestChunks + 2) * kChunkBytes));
    const size_t end = begin + static_cast<size_t>(rng.Uniform(rng.Chance(1, 8) ? 40'000 : 600));
    const std::optional<size_t> size = node.key.ReadStringRange(begin, end, now_ms, scratch, out);
    REQUIRE(size.has_value() == whole.has_value());
    if (!whole) continue;
    REQUIRE(*size == whole->size());
    REQUIRE(out == std::string_view(*whole).substr(
                       std::min(begin, whole->size()),
                       std::min(end, whole->size()) - std::min({begin, end, whole->size()})));
  }
}

struct WindowTwins {
  Node whole{1};
  Node windowed{1};
  Node peer{2};
  std::deque<KeyOp> to_peer;
  std::deque<KeyOp> from_peer;

  void RequireSame(const std::optional<KeyOp>& a, const std::optional<KeyOp>& b) {
    REQUIRE(a.has_value() == b.has_value());
    if (a) REQUIRE(*a == *b);
    REQUIRE(whole.key == windowed.key);
    REQUIRE(whole.context == windowed.context);
    REQUIRE(whole.dots.next_seq() == windowed.dots.next_seq());
    if (a) to_peer.push_back(*a);
  }

  // One step of the history at HLC `hlc_ms` and local time `now_ms`.
  void Step(Rng& rng, uint64_t hlc_ms, int64_t now_ms) {
    switch (rng.Uniform(13)) {
      case 0: {  // SET of the twins (concurrent with the peer's: entries side by side)
        const std::string value = Pick(rng, kValues);
        RequireSame(Take(whole.key.Set(value, false, std::nullopt, whole.W(hlc_ms, {}, now_ms),
                                       whole.context)),
                    Take(windowed.key.Set(value, false, std::nullopt,
                                          windowed.W(hlc_ms, {}, now_ms), windowed.context)));
        return;
      }
      case 1: {  // EXPIRE soon or later: reads and writes past it see no key
        const int64_t at = now_ms + rng.Range(1, 40);
        RequireSame(
            Take(whole.key.Expire(at, whole.W(hlc_ms, {}, now_ms), whole.context)),
            Take(windowed.key.Expire(at, windowed.W(hlc_ms, {}, now_ms), windowed.context)));
        return;
      }
      case 2:
      case 3: {  // the peer writes (bitmaps, counters, SET, APPEND, DEL) or increments the base
        const Writer w = peer.W(hlc_ms, {}, now_ms);
        std::optional<KeyOp> op = rng.Chance(1, 6)
                                      ? Take(peer.key.IncrBy(rng.Range(-3, 3), w, peer.context))
                                      : BitmapWorkload::Write(rng, peer.key, w, peer.context);
        if (op) from_peer.push_back(std::move(*op));
        return;
      }
      case 4:
        Deliver(rng);
        return;
      case 5:
        IncrBy(rng, hlc_ms, now_ms);
        return;
      default: {
        const WindowPatch patch = RandomWindowPatch(rng);
        const std::optional<KeyOp> a = WriteWhole(whole, patch, whole.W(hlc_ms, {}, now_ms));
        const std::optional<KeyOp> b =
            WriteWindowed(windowed, patch, windowed.W(hlc_ms, {}, now_ms));
        RequireSame(a, b);
        return;
      }
    }
  }

  // BITFIELD OVERFLOW WRAP INCRBY of one or two fields, when the counters admit them: the
  // windowed twin may increment in place, the whole twin takes the generic path.
  void IncrBy(Rng& rng, uint64_t hlc_ms, int64_t now_ms) {
    std::vector<std::pair<BitField, uint64_t>> increments;
    for (uint64_t n = 1 + rng.Uniform(2); n > 0; --n) {
      const BitField field{rng.Uniform(kWindowTestChunks * kChunkBytes * 8 - 64),
                           static_cast<uint32_t>(1 + rng.Uniform(64))};
      static const BitChunks kNone{};
      const BitChunks& chunks = whole.key.HasChunks() ? whole.key.rest()->chunks() : kNone;
      if (!chunks.CounterFits(field)) return;
      if (!increments.empty() && increments[0].first != field &&
          increments[0].first.Overlaps(field)) {
        return;
      }
      increments.emplace_back(field, rng.Next());
      if (rng.Chance(1, 3)) increments.push_back(increments.back());  // the same field again
    }
    SetGenericWritesForTesting(true);
    std::optional<KeyOp> a =
        Take(whole.key.IncrBitFields(increments, whole.W(hlc_ms, {}, now_ms), whole.context));
    SetGenericWritesForTesting(false);
    RequireSame(a, Take(windowed.key.IncrBitFields(increments, windowed.W(hlc_ms, {}, now_ms),
                                                   windowed.context)));
  }

  // Delivers some of each direction's ops, in order (each origin's ops are causal in order).
  void Deliver(Rng& rng) {
    for (size_t n = rng.Uniform(from_peer.size() + 1); n > 0; --n) {
      whole.Apply(from_peer.front());
      windowed.Apply(from_peer.front());
      from_peer.pop_front();
    }
    REQUIRE(whole.key == windowed.key);
    REQUIRE(whole.context == windowed.context);
    for (size_t n = rng.Uniform(to_peer.size() + 1); n > 0; --n) {
      peer.Apply(to_peer.front());
      to_peer.pop_front();
    }
  }
};

TEST_CASE("bitmap window: reads and writes of the chunks touched equal the whole-value path",
          "[crdt][bitmap][window]") {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    CAPTURE(seed);  // a failure prints the seed that replays it
    Rng rng(seed);
    WindowTwins twins;
    int64_t now_ms = 1000;
    for (uint64_t step = 0; step < 150; ++step) {
      CAPTURE(step);
      now_ms += rng.Chance(1, 3) ? rng.Range(1, 30) : 0;
      twins.Step(rng, 10 + step, now_ms);
      CheckWindowReads(rng, twins.windowed, now_ms);
    }
  }
}

}  // namespace
}  // namespace lattice::crdt::testing
