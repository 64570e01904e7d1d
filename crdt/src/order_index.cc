#include "lattice/crdt/order_index.h"

#include "lattice/common/assert.h"

namespace lattice::crdt {

struct OrderIndex::Node {
  struct Level {
    Node* next = nullptr;
    size_t span = 0;  // nodes skipped by this link, counting its target
  };
  double score = 0;
  std::string member;
  std::vector<Level> levels;
};

namespace {

// Valkey's order: score first, then member bytes.
bool Before(double score, std::string_view member, double other_score, std::string_view other) {
  return score < other_score || (score == other_score && member < other);
}

}  // namespace

// The head is allocated by the first Insert: most indexes belong to the empty sorted set of a
// temporary Key (a write step, an op's delta, a hash or set key), which never inserts.
OrderIndex::OrderIndex() : head_(nullptr) {}

OrderIndex::~OrderIndex() {
  Clear();
  delete head_;
}

void OrderIndex::Clear() {
  if (head_ == nullptr) {
    return;
  }
  Node* node = head_->levels[0].next;
  while (node != nullptr) {
    Node* next = node->levels[0].next;
    delete node;
    node = next;
  }
  head_->levels.assign(kMaxLevel, Node::Level{});
  level_ = 1;
  size_ = 0;
}

int OrderIndex::LevelFor(std::string_view member) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a, then a finalizer so short keys spread
  for (unsigned char c : member) {
    hash = (hash ^ c) * 1099511628211ULL;
  }
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccdULL;
  hash ^= hash >> 33;
  int level = 1;
  while (level < kMaxLevel && (hash & 3) == 0) {  // p = 1/4, as Valkey
    ++level;
    hash >>= 2;
  }
  return level;
}

void OrderIndex::Insert(double score, const std::string& member) {
  LATTICE_ASSERT(score == score);
  if (head_ == nullptr) {
    head_ = new Node;
    head_->levels.resize(kMaxLevel);
  }
  Node* update[kMaxLevel];
  size_t rank[kMaxLevel];
  Node* x = head_;
  for (int i = level_ - 1; i >= 0; --i) {
    rank[i] = i == level_ - 1 ? 0 : rank[i + 1];
    while (x->levels[i].next != nullptr &&
           Before(x->levels[i].next->score, x->levels[i].next->member, score, member)) {
      rank[i] += x->levels[i].span;
      x = x->levels[i].next;
    }
    update[i] = x;
  }
  const int level = LevelFor(member);
  for (int i = level_; i < level; ++i) {
    rank[i] = 0;
    update[i] = head_;
    update[i]->levels[i].span = size_;
  }
  level_ = std::max(level_, level);
  Node* node = new Node{score, member, std::vector<Node::Level>(level)};
  for (int i = 0; i < level; ++i) {
    node->levels[i].next = update[i]->levels[i].next;
    update[i]->levels[i].next = node;
    node->levels[i].span = update[i]->levels[i].span - (rank[0] - rank[i]);
    update[i]->levels[i].span = (rank[0] - rank[i]) + 1;
  }
  for (int i = level; i < level_; ++i) {
    update[i]->levels[i].span++;
  }
  ++size_;
}

void OrderIndex::Erase(double score, const std::string& member) {
  LATTICE_ASSERT(head_ != nullptr);
  Node* update[kMaxLevel];
  Node* x = head_;
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels[i].next != nullptr &&
           Before(x->levels[i].next->score, x->levels[i].next->member, score, member)) {
      x = x->levels[i].next;
    }
    update[i] = x;
  }
  Node* node = x->levels[0].next;
  LATTICE_ASSERT(node != nullptr && node->score == score && node->member == member);
  for (int i = 0; i < level_; ++i) {
    if (update[i]->levels[i].next == node) {
      update[i]->levels[i].span += node->levels[i].span - 1;
      update[i]->levels[i].next = node->levels[i].next;
    } else {
      update[i]->levels[i].span--;
    }
  }
  while (level_ > 1 && head_->levels[level_ - 1].next == nullptr) {
    --level_;
  }
  delete node;
  --size_;
}

size_t OrderIndex::Rank(double score, std::string_view member) const {
  size_t rank = 0;
  if (head_ == nullptr) {
    return rank;
  }
  const Node* x = head_;
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels[i].next != nullptr &&
           Before(x->levels[i].next->score, x->levels[i].next->member, score, member)) {
      rank += x->levels[i].span;
      x = x->levels[i].next;
    }
  }
  return rank;
}

size_t OrderIndex::CountBelow(double score, bool inclusive) const {
  size_t rank = 0;
  if (head_ == nullptr) {
    return rank;
  }
  const Node* x = head_;
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels[i].next != nullptr &&
           (inclusive ? x->levels[i].next->score <= score : x->levels[i].next->score < score)) {
      rank += x->levels[i].span;
      x = x->levels[i].next;
    }
  }
  return rank;
}

std::pair<double, const std::string*> OrderIndex::At(size_t rank) const {
  LATTICE_ASSERT(rank < size_);
  size_t traversed = 0;
  const Node* x = head_;
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels[i].next != nullptr && traversed + x->levels[i].span <= rank + 1) {
      traversed += x->levels[i].span;
      x = x->levels[i].next;
    }
  }
  return {x->score, &x->member};
}

std::vector<std::pair<double, std::string>> OrderIndex::Range(size_t first, size_t count) const {
  std::vector<std::pair<double, std::string>> out;
  if (first >= size_ || count == 0) {
    return out;
  }
  size_t traversed = 0;
  const Node* x = head_;
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels[i].next != nullptr && traversed + x->levels[i].span <= first + 1) {
      traversed += x->levels[i].span;
      x = x->levels[i].next;
    }
  }
  for (; x != nullptr && out.size() < count; x = x->levels[0].next) {
    out.emplace_back(x->score, x->member);
  }
  return out;
}

}  // namespace lattice::crdt
