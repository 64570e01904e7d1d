#include "lattice/crdt/stream_entries.h"

#include <algorithm>
#include <cstring>

#include "lattice/common/assert.h"
#include "lattice/common/byte_codec.h"
#include "packed_bytes.h"

namespace lattice::crdt {

namespace {

// An entry's flag byte.
constexpr uint8_t kEntryDeleted = 1;
constexpr uint8_t kEntrySameFields = 2;   // the values only: the names are the master's
constexpr uint8_t kEntrySameReplica = 4;  // the previous entry's replica index
constexpr uint8_t kEntrySameMs = 8;       // the previous entry's milliseconds

// A string the container coded (varint length, bytes) at `at`, which moves past it.
std::string_view ReadCodedString(const char*& at) {
  uint64_t size = 0;
  for (int shift = 0;; shift += 7) {
    LATTICE_ASSERT(shift < 64);
    const auto byte = static_cast<uint8_t>(*at++);
    size |= uint64_t{byte & 0x7Fu} << shift;
    if (byte < 0x80) {
      break;
    }
  }
  const std::string_view out(at, size);
  at += size;
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// StreamFieldsView

void StreamFieldsView::iterator::Read() {
  if (index_ >= count_) {
    return;
  }
  if (master_ == nullptr) {
    current_ = ReadCodedString(own_);
  } else if (index_ % 2 == 0) {
    current_ = ReadCodedString(master_);
    ReadCodedString(master_);  // the master's own value
  } else {
    current_ = ReadCodedString(own_);
  }
}

StreamFieldsView::iterator& StreamFieldsView::iterator::operator++() {
  ++index_;
  Read();
  return *this;
}

StreamFieldsView::iterator StreamFieldsView::begin() const {
  iterator it;
  it.own_ = own_;
  it.master_ = master_;
  it.count_ = count_;
  it.Read();
  return it;
}

std::vector<std::string> StreamFieldsView::ToVector() const {
  std::vector<std::string> out;
  out.reserve(count_);
  for (std::string_view s : *this) out.emplace_back(s);
  return out;
}

bool operator==(const StreamFieldsView& a, const StreamFieldsView& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

bool operator==(const StreamFieldsView& a, const std::vector<std::string>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// ---------------------------------------------------------------------------------------------
// Blocks

StreamEntries::Block& StreamEntries::Block::operator=(const Block& other) {
  if (this != &other) {
    data.reset();
    size = 0;
    capacity = 0;
    Reallocate(packed::SizeClass(other.size));
    Append(other.bytes());
    count = other.count;
    live = other.live;
    master_at = other.master_at;
    master_count = other.master_count;
    last = other.last;
  }
  return *this;
}

void StreamEntries::Block::Reallocate(size_t new_capacity) {
  auto grown = std::make_unique_for_overwrite<char[]>(new_capacity);
  if (size > 0) {
    std::memcpy(grown.get(), data.get(), size);
  }
  data = std::move(grown);
  capacity = new_capacity;
}

void StreamEntries::Block::Append(std::string_view more) {
  const size_t needed = size + more.size();
  if (needed > capacity) {
    Reallocate(packed::Grown(needed, capacity, kBlockBytes));
  }
  std::memcpy(data.get() + size, more.data(), more.size());
  size = needed;
}

// ---------------------------------------------------------------------------------------------
// Coding

StreamEntryKey StreamEntries::KeyOf(const Base& base) const {
  LATTICE_ASSERT(base.replica < replicas_.size());
  return StreamEntryKey{base.id, Dot{replicas_[base.replica], base.seq}};
}

uint64_t StreamEntries::ReplicaIndex(ReplicaId replica) {
  for (size_t i = 0; i < replicas_.size(); ++i) {
    if (replicas_[i] == replica) return i;
  }
  replicas_.push_back(replica);
  return replicas_.size() - 1;
}

template <typename F>
void StreamEntries::Code(const Base& base, const F& fields, const Base& previous, bool same,
                         std::string& out) {
  ByteWriter w(out);
  const bool same_ms = base.id.ms == previous.id.ms;
  const bool same_replica = base.replica == previous.replica;
  w.Byte((same ? kEntrySameFields : 0) | (same_replica ? kEntrySameReplica : 0) |
         (same_ms ? kEntrySameMs : 0));
  if (!same_ms) w.Varint(base.id.ms - previous.id.ms);
  w.Varint(same_ms ? base.id.seq - previous.id.seq : base.id.seq);
  if (!same_replica) w.Varint(base.replica);
  w.Zigzag(static_cast<int64_t>(base.seq - previous.seq));
  if (!same) w.Varint(fields.size());
  size_t i = 0;
  for (std::string_view field : fields) {
    if (!same || i % 2 == 1) w.Bytes(field);
    ++i;
  }
}

StreamEntries::Coded StreamEntries::Read(size_t b, size_t at, const Base& previous) const {
  const Block& block = blocks_[b];
  packed::CodedReader in(block.bytes(), at);
  Coded c;
  c.flags = in.Byte();
  c.base.id.ms = previous.id.ms + ((c.flags & kEntrySameMs) != 0 ? 0 : in.Varint());
  const uint64_t seq = in.Varint();
  c.base.id.seq = (c.flags & kEntrySameMs) != 0 ? previous.id.seq + seq : seq;
  c.base.replica = (c.flags & kEntrySameReplica) != 0 ? previous.replica : in.Varint();
  c.base.seq = previous.seq + static_cast<uint64_t>(in.Zigzag());
  const char* own = block.data.get() + at + in.pos();
  const char* p = own;
  if ((c.flags & kEntrySameFields) != 0) {
    c.fields = StreamFieldsView(own, block.data.get() + block.master_at, block.master_count);
    for (size_t i = 0; i < block.master_count / 2; ++i) ReadCodedString(p);
  } else {
    packed::CodedReader count_in(block.bytes(), static_cast<size_t>(own - block.data.get()));
    const uint64_t count = count_in.Varint();
    own += count_in.pos();
    p = own;
    c.fields = StreamFieldsView(own, nullptr, count);
    for (uint64_t i = 0; i < count; ++i) ReadCodedString(p);
  }
  c.end = static_cast<size_t>(p - block.data.get());
  LATTICE_ASSERT(c.end <= block.size);
  return c;
}

template <typename F>
bool StreamEntries::SameAsMaster(const Block& block, const F& fields) {
  if (fields.size() != block.master_count || fields.size() % 2 != 0 || fields.empty()) {
    return false;
  }
  const char* at = block.data.get() + block.master_at;
  size_t i = 0;
  for (std::string_view field : fields) {
    if (i++ % 2 == 1) continue;
    if (ReadCodedString(at) != field) return false;
    ReadCodedString(at);
  }
  return true;
}

template <typename F>
void StreamEntries::AppendTo(std::vector<Block>& blocks, const StreamEntryKey& key,
                             const F& fields) {
  const Base base{key.id, ReplicaIndex(key.dot.replica), key.dot.seq};
  thread_local std::string coded;  // reused: an append allocates nothing but block growth
  coded.clear();
  if (!blocks.empty()) {
    Block& last = blocks.back();
    if (last.count < kBlockEntries) {
      Code(base, fields, last.last, SameAsMaster(last, fields), coded);
      if (last.size + coded.size() <= kBlockBytes) {
        last.Append(coded);
        ++last.count;
        ++last.live;
        last.last = base;
        return;
      }
      coded.clear();
    }
    if (last.capacity > packed::SizeClass(last.size)) {
      last.Reallocate(packed::SizeClass(last.size));  // closed: give its slack back
    }
  }
  Code(base, fields, Base{}, false, coded);
  Block block;
  block.Append(coded);
  block.count = 1;
  block.live = 1;
  block.last = base;
  // The master's strings follow its header and field count.
  packed::CodedReader in(block.bytes(), 0);
  in.Byte();
  if (base.id.ms != 0) in.Varint();
  in.Varint();
  if (base.replica != 0) in.Varint();
  in.Varint();
  block.master_count = in.Varint();
  block.master_at = static_cast<uint32_t>(in.pos());
  blocks.push_back(std::move(block));
}

// ---------------------------------------------------------------------------------------------
// Iteration and lookup

void StreamEntries::const_iterator::SeekLive() {
  const std::vector<Block>& blocks = owner_->blocks_;
  while (block_ < blocks.size()) {
    if (next_ >= blocks[block_].size) {
      ++block_;
      next_ = 0;
      base_ = Base{};
      continue;
    }
    const Coded c = owner_->Read(block_, next_, base_);
    at_ = next_;
    next_ = c.end;
    base_ = c.base;
    if ((c.flags & kEntryDeleted) == 0) {
      current_ = value_type(owner_->KeyOf(base_), c.fields);
      return;
    }
  }
  at_ = 0;
}

StreamEntries::const_iterator& StreamEntries::const_iterator::operator++() {
  SeekLive();
  return *this;
}

StreamEntries::const_iterator StreamEntries::BlockBegin(size_t b) const {
  const_iterator it;
  it.owner_ = this;
  it.block_ = b;
  it.SeekLive();
  return it;
}

StreamEntries::const_iterator StreamEntries::begin() const { return BlockBegin(0); }

StreamEntries::const_iterator StreamEntries::end() const {
  const_iterator it;
  it.owner_ = this;
  it.block_ = blocks_.size();
  return it;
}

size_t StreamEntries::BlockFor(const StreamEntryKey& key, bool after) const {
  auto it = std::partition_point(blocks_.begin(), blocks_.end(), [&](const Block& block) {
    const StreamEntryKey last = KeyOf(block.last);
    return after ? !(key < last) : last < key;
  });
  return static_cast<size_t>(it - blocks_.begin());
}

StreamEntries::const_iterator StreamEntries::lower_bound(const StreamEntryKey& key) const {
  if (blocks_.empty() || LastKey() < key) return end();  // an append's check: O(1)
  const size_t b = BlockFor(key, false);
  if (b == blocks_.size()) return end();
  const_iterator it = BlockBegin(b);
  while (it->first < key) ++it;  // stops in block b: its last entry is live and >= key
  return it;
}

StreamEntries::const_iterator StreamEntries::upper_bound(const StreamEntryKey& key) const {
  const size_t b = BlockFor(key, true);
  if (b == blocks_.size()) return end();
  const_iterator it = BlockBegin(b);
  while (!(key < it->first)) ++it;
  return it;
}

StreamEntries::const_iterator StreamEntries::find(const StreamEntryKey& key) const {
  const_iterator it = lower_bound(key);
  return it != end() && it->first == key ? it : end();
}

void StreamEntries::ScanBackward(const StreamEntryKey& upper,
                                 absl::FunctionRef<bool(const const_iterator&)> f) const {
  if (blocks_.empty()) return;
  size_t b = std::min(BlockFor(upper, true), blocks_.size() - 1);
  std::vector<const_iterator> block_entries;
  for (;; --b) {
    block_entries.clear();
    for (const_iterator it = BlockBegin(b); it.block_ == b && !(upper < it->first); ++it) {
      block_entries.push_back(it);
    }
    for (auto it = block_entries.rbegin(); it != block_entries.rend(); ++it) {
      if (!f(*it)) return;
    }
    if (b == 0) return;
  }
}

// ---------------------------------------------------------------------------------------------
// Changes

std::vector<StreamEntries::Decoded> StreamEntries::DecodeBlock(size_t b) const {
  std::vector<Decoded> out;
  for (const_iterator it = BlockBegin(b); it.block_ == b; ++it) {
    out.push_back(Decoded{it->first, it->second.ToVector()});
  }
  return out;
}

void StreamEntries::Splice(size_t b, const std::vector<Decoded>& entries) {
  std::vector<Block> fresh;
  for (const Decoded& entry : entries) AppendTo(fresh, entry.key, entry.fields);
  if (!fresh.empty() && fresh.back().capacity > packed::SizeClass(fresh.back().size)) {
    fresh.back().Reallocate(packed::SizeClass(fresh.back().size));
  }
  blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(b));
  blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(b),
                 std::make_move_iterator(fresh.begin()), std::make_move_iterator(fresh.end()));
}

template <typename F>
bool StreamEntries::InsertOf(const StreamEntryKey& key, const F& fields) {
  if (blocks_.empty() || LastKey() < key) {
    AppendTo(blocks_, key, fields);
    ++size_;
    return true;
  }
  if (contains(key)) return false;
  const size_t b = BlockFor(key, false);
  std::vector<Decoded> entries = DecodeBlock(b);
  auto at = std::partition_point(entries.begin(), entries.end(),
                                 [&](const Decoded& d) { return d.key < key; });
  entries.insert(at, Decoded{key, Fields(fields.begin(), fields.end())});
  Splice(b, entries);
  ++size_;
  return true;
}

bool StreamEntries::Erase(const StreamEntryKey& key) {
  const size_t b = BlockFor(key, false);
  if (b == blocks_.size()) return false;
  Block& block = blocks_[b];
  // Walk the block's coded entries, remembering the last live one before the target.
  Base base;
  Base live_base;
  size_t live_end = 0;
  uint32_t live_count = 0;  // coded entries up to and including that live one
  uint32_t index = 0;
  for (size_t at = 0; at < block.size; ++index) {
    const Coded c = Read(b, at, base);
    base = c.base;
    const bool deleted = (c.flags & kEntryDeleted) != 0;
    if (!deleted && KeyOf(base) == key) {
      block.data[at] = static_cast<char>(c.flags | kEntryDeleted);
      --block.live;
      --size_;
      if (block.live == 0) {
        blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(b));
      } else if (c.end == block.size) {  // the last entry: drop the deleted run it ends
        block.size = live_end;
        block.count = live_count;
        block.last = live_base;
        if (block.capacity > 64 && size_t{block.size} * 2 < block.capacity) {
          block.Reallocate(packed::SizeClass(block.size));
        }
      } else if (block.live * 2 < block.count && block.count >= 16) {
        Splice(b, DecodeBlock(b));  // mostly deleted: recode without them
      }
      return true;
    }
    if (!deleted) {
      live_base = base;
      live_end = c.end;
      live_count = index + 1;
    }
    if (key < KeyOf(base)) return false;
    at = c.end;
  }
  return false;
}

size_t StreamEntries::AllocatedBytes() const {
  size_t bytes = blocks_.capacity() * sizeof(Block);
  for (const Block& block : blocks_) bytes += block.capacity;
  if (replicas_.size() > 2) bytes += replicas_.capacity() * sizeof(ReplicaId);
  return bytes;
}

bool operator==(const StreamEntries& a, const StreamEntries& b) {
  if (a.size() != b.size()) return false;
  for (auto x = a.begin(), y = b.begin(); x != a.end(); ++x, ++y) {
    if (x->first != y->first || !(x->second == y->second)) return false;
  }
  return true;
}

}  // namespace lattice::crdt
