#include "cluster/cluster_topology.h"

#include <algorithm>
#include <set>

#include "lattice/common/numbers.h"

namespace lattice::server {
namespace {

// A token of the text form: "-" for empty; whitespace, '%' and non-ASCII bytes as %XX.
std::string EscapeToken(std::string_view text) {
  if (text.empty()) {
    return "-";
  }
  if (text == "-") {
    return "%2D";
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (c <= ' ' || c == '%' || c >= 0x7f) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

Result<std::string> UnescapeToken(std::string_view token) {
  if (token == "-") {
    return std::string();
  }
  std::string out;
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] != '%') {
      out += token[i];
      continue;
    }
    if (i + 2 >= token.size()) {
      return Unexpected("truncated escape");
    }
    const int hi = HexDigit(token[i + 1]);
    const int lo = HexDigit(token[i + 2]);
    if (hi < 0 || lo < 0) {
      return Unexpected("bad escape");
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::vector<std::string_view> SplitSpaces(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::optional<uint64_t> ParseU64(std::string_view text) {
  const std::optional<int64_t> value = ParseInt64Strict(text);
  if (!value.has_value() || *value < 0) {
    return std::nullopt;
  }
  return static_cast<uint64_t>(*value);
}

// Per slot, the greater (epoch, shard) wins: a total order, so Merge is a join.
bool Wins(const SlotOwner& a, const SlotOwner& b) {
  return a.epoch != b.epoch ? a.epoch > b.epoch : a.shard > b.shard;
}

// Collapses sorted slots into ranges.
std::vector<SlotRange> ToRanges(std::span<const uint16_t> slots) {
  std::vector<SlotRange> out;
  for (uint16_t slot : slots) {
    if (!out.empty() && out.back().end + 1 == slot) {
      out.back().end = slot;
    } else {
      out.push_back({slot, slot});
    }
  }
  return out;
}

}  // namespace

std::string SlotRangesText(std::span<const SlotRange> ranges) {
  std::string out;
  for (const SlotRange& range : ranges) {
    if (!out.empty()) out += ' ';
    out += std::to_string(range.start) + "-" + std::to_string(range.end);
  }
  return out;
}

std::string SlotRangeShortText(const SlotRange& range) {
  return range.start == range.end ? std::to_string(range.start)
                                  : std::to_string(range.start) + "-" + std::to_string(range.end);
}

bool IsNodeId(std::string_view text) {
  return text.size() == 40 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

ClusterTopology::ClusterTopology() : slots_(kSlotCount) {}

const ClusterNode* ClusterTopology::FindNode(std::string_view id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

bool ClusterTopology::UpsertNode(const ClusterNode& node) {
  auto [it, inserted] = nodes_.try_emplace(node.id, node);
  if (inserted) {
    return true;
  }
  if (node.version > it->second.version) {
    it->second = node;
    return true;
  }
  return false;
}

bool ClusterTopology::RemoveNode(std::string_view id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return false;
  nodes_.erase(it);
  return true;
}

void ClusterTopology::SetShardEpoch(std::string_view shard, uint64_t epoch) {
  for (size_t slot = 0; slot < kSlotCount; ++slot) {
    if (slots_[slot].shard == shard) SetOwner(slot, SlotOwner{slots_[slot].shard, epoch});
  }
  current_epoch_ = std::max(current_epoch_, epoch);
}

void ClusterTopology::SetOwner(size_t slot, SlotOwner owner) {
  assigned_ = assigned_ - (slots_[slot].shard.empty() ? 0 : 1) + (owner.shard.empty() ? 0 : 1);
  slots_[slot] = std::move(owner);
}

uint64_t ClusterTopology::Assign(std::span<const uint16_t> slots, const std::string& shard) {
  ++current_epoch_;
  for (uint16_t slot : slots) {
    SetOwner(slot, SlotOwner{shard, current_epoch_});
  }
  return current_epoch_;
}

bool ClusterTopology::Merge(const ClusterTopology& other) {
  bool changed = false;
  for (const auto& [id, node] : other.nodes_) {
    changed = UpsertNode(node) || changed;
  }
  for (size_t slot = 0; slot < kSlotCount; ++slot) {
    if (Wins(other.slots_[slot], slots_[slot])) {
      SetOwner(slot, other.slots_[slot]);
      changed = true;
    }
  }
  if (other.current_epoch_ > current_epoch_) {
    current_epoch_ = other.current_epoch_;
    changed = true;
  }
  return changed;
}

void ClusterTopology::Clear() {
  nodes_.clear();
  slots_.assign(kSlotCount, SlotOwner{});
  assigned_ = 0;
}

std::vector<SlotRange> ClusterTopology::RangesOf(std::string_view shard) const {
  std::vector<uint16_t> owned;
  for (size_t slot = 0; slot < kSlotCount; ++slot) {
    if (!shard.empty() && slots_[slot].shard == shard) owned.push_back(static_cast<uint16_t>(slot));
  }
  return ToRanges(owned);
}

std::vector<std::string> ClusterTopology::Shards() const {
  std::set<std::string> shards;
  for (const SlotOwner& owner : slots_) {
    if (!owner.shard.empty()) shards.insert(owner.shard);
  }
  for (const auto& [id, node] : nodes_) shards.insert(node.shard);
  return {shards.begin(), shards.end()};
}

std::vector<const ClusterNode*> ClusterTopology::NodesOf(std::string_view shard) const {
  std::vector<const ClusterNode*> out;
  for (const auto& [id, node] : nodes_) {
    if (node.shard == shard) out.push_back(&node);
  }
  return out;
}

const ClusterNode* ClusterTopology::Preferred(
    std::string_view shard, const std::string_view* region,
    const std::function<bool(const ClusterNode&)>& ok) const {
  const ClusterNode* best = nullptr;
  for (const auto& [id, node] : nodes_) {
    if (node.shard != shard || (region != nullptr && node.region != *region) || !ok(node)) {
      continue;
    }
    if (best == nullptr || id == shard) best = &node;  // nodes_ is sorted: the smallest id first
  }
  return best;
}

const ClusterNode* ClusterTopology::Nearest(
    std::string_view shard, std::string_view region, std::span<const std::string> region_order,
    const std::function<bool(const ClusterNode&)>& ok) const {
  if (const ClusterNode* local = Preferred(shard, &region, ok)) return local;
  for (const std::string& nearer : region_order) {
    const std::string_view other = nearer;
    if (const ClusterNode* node = Preferred(shard, &other, ok)) return node;
  }
  return Preferred(shard, nullptr, ok);
}

const ClusterNode* ClusterTopology::ServingNode(std::string_view shard, std::string_view region,
                                                const ServingPrefs& prefs) const {
  auto up = [&](const ClusterNode& node) {
    return prefs.failed == nullptr || !prefs.failed->contains(node.id);
  };
  auto ready = [&](const ClusterNode& node) {
    return up(node) && (prefs.catching_up == nullptr || !prefs.catching_up->contains(node.id));
  };
  if (const ClusterNode* node = Nearest(shard, region, prefs.region_order, ready)) return node;
  if (const ClusterNode* node = Nearest(shard, region, prefs.region_order, up)) return node;
  // Every node of the shard failed: shown as if none had (Valkey shows a failed primary too).
  auto all = [](const ClusterNode&) { return true; };
  const ClusterNode* local = Preferred(shard, &region, all);
  return local != nullptr ? local : Preferred(shard, nullptr, all);
}

uint64_t ClusterTopology::ShardEpoch(std::string_view shard) const {
  uint64_t epoch = 0;
  for (const SlotOwner& owner : slots_) {
    if (owner.shard == shard) epoch = std::max(epoch, owner.epoch);
  }
  return epoch;
}

std::string ClusterTopology::Encode() const {
  std::string out = "lattice-cluster 1\nepoch " + std::to_string(current_epoch_) + "\n";
  for (const auto& [id, node] : nodes_) {
    out += "node " + node.id + " " + EscapeToken(node.shard) + " " + EscapeToken(node.region) +
           " " + EscapeToken(node.ip) + " " + std::to_string(node.port) + " " +
           std::to_string(node.version);
    if (node.repl_port != 0) out += " " + std::to_string(node.repl_port);
    out += "\n";
  }
  for (size_t slot = 0; slot < kSlotCount;) {
    size_t end = slot;
    while (end + 1 < kSlotCount && slots_[end + 1] == slots_[slot]) ++end;
    if (slots_[slot].epoch != 0 || !slots_[slot].shard.empty()) {
      out += "slots " + std::to_string(slot) + " " + std::to_string(end) + " " +
             std::to_string(slots_[slot].epoch) + " " + EscapeToken(slots_[slot].shard) + "\n";
    }
    slot = end + 1;
  }
  return out;
}

Result<ClusterTopology> ClusterTopology::Decode(std::string_view text) {
  ClusterTopology topology;
  bool header = false;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++line_number;
    const std::vector<std::string_view> words = SplitSpaces(line);
    if (words.empty()) continue;
    auto fail = [&](std::string_view why) {
      return Unexpected("cluster topology line " + std::to_string(line_number) + ": " +
                        std::string(why));
    };
    if (!header) {
      if (words.size() != 2 || words[0] != "lattice-cluster" || words[1] != "1") {
        return fail("not a lattice cluster topology (version 1)");
      }
      header = true;
    } else if (words[0] == "epoch" && words.size() == 2) {
      const std::optional<uint64_t> epoch = ParseU64(words[1]);
      if (!epoch) return fail("bad epoch");
      topology.current_epoch_ = std::max(topology.current_epoch_, *epoch);
    } else if (words[0] == "node" && (words.size() == 7 || words.size() == 8)) {
      ClusterNode node;
      node.id = std::string(words[1]);
      Result<std::string> shard = UnescapeToken(words[2]);
      Result<std::string> region = UnescapeToken(words[3]);
      Result<std::string> ip = UnescapeToken(words[4]);
      const std::optional<uint64_t> port = ParseU64(words[5]);
      const std::optional<uint64_t> version = ParseU64(words[6]);
      const std::optional<uint64_t> repl_port =
          words.size() == 8 ? ParseU64(words[7]) : std::optional<uint64_t>(0);
      if (!IsNodeId(node.id) || !shard.ok() || shard->empty() || !region.ok() || !ip.ok() ||
          !port || *port > 65535 || !version || !repl_port || *repl_port > 65535) {
        return fail("bad node record");
      }
      node.shard = *shard;
      node.region = *region;
      node.ip = *ip;
      node.port = static_cast<int>(*port);
      node.version = *version;
      node.repl_port = static_cast<int>(*repl_port);
      topology.UpsertNode(node);
    } else if (words[0] == "slots" && words.size() == 5) {
      const std::optional<uint64_t> start = ParseU64(words[1]);
      const std::optional<uint64_t> end = ParseU64(words[2]);
      const std::optional<uint64_t> epoch = ParseU64(words[3]);
      Result<std::string> shard = UnescapeToken(words[4]);
      if (!start || !end || *start > *end || *end >= kSlotCount || !epoch || !shard.ok()) {
        return fail("bad slot range");
      }
      for (uint64_t slot = *start; slot <= *end; ++slot) {
        topology.SetOwner(slot, SlotOwner{*shard, *epoch});
      }
      topology.current_epoch_ = std::max(topology.current_epoch_, *epoch);
    } else {
      return fail("unknown record");
    }
  }
  if (!header) {
    return Unexpected("cluster topology: empty");
  }
  return topology;
}

// ---- routing -----------------------------------------------------------------------------------

Route RouteKeys(const ClusterTopology& topology, std::span<const uint16_t> slots,
                const RouteContext& context) {
  if (slots.empty()) {
    return {};
  }
  const uint16_t slot = slots.front();
  for (uint16_t other : slots) {
    if (other != slot) {
      return {.kind = RouteKind::kCrossSlot, .slot = slot};
    }
  }
  const SlotOwner& owner = topology.owner(slot);
  if (context.require_full_coverage && !topology.FullyCovered() &&
      !(context.allow_reads_when_down && !context.write)) {
    return {.kind = RouteKind::kDown, .slot = slot};
  }
  if (owner.shard.empty()) {
    return {.kind = RouteKind::kUnserved, .slot = slot};
  }
  if (owner.shard == context.my_shard) {
    if (context.write && context.paused != nullptr && (*context.paused)[slot]) {
      return {.kind = RouteKind::kPaused, .slot = slot};
    }
    return {.kind = RouteKind::kLocal, .slot = slot};
  }
  if (context.asking && context.importing) {
    return {.kind = RouteKind::kLocal, .slot = slot};
  }
  const ClusterNode* node = topology.ServingNode(owner.shard, context.my_region, context.serving);
  if (node == nullptr) {
    return {.kind = RouteKind::kUnserved, .slot = slot};
  }
  return {.kind = RouteKind::kMoved, .slot = slot, .node = node};
}

std::string RouteError(const Route& route) {
  switch (route.kind) {
    case RouteKind::kMoved:
      return "MOVED " + std::to_string(route.slot) + " " + route.node->ip + ":" +
             std::to_string(route.node->port);
    case RouteKind::kCrossSlot:
      return "CROSSSLOT Keys in request don't hash to the same slot";
    case RouteKind::kDown:
      return "CLUSTERDOWN The cluster is down";
    case RouteKind::kUnserved:
      return "CLUSTERDOWN Hash slot not served";
    case RouteKind::kLocal:
    case RouteKind::kPaused:
      break;
  }
  return "";
}

}  // namespace lattice::server
