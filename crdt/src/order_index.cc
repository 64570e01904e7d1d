#include "lattice/crdt/order_index.h"

#include <algorithm>
#include <cstdlib>
#include <new>

#include "lattice/common/assert.h"

namespace lattice::crdt {

// One allocation per node: the levels follow the header.
struct OrderIndex::Node {
  struct Level {
    Node* next;
    size_t span;  // nodes skipped by this link, counting its target
  };
  double score;
  const PackedName* member;
  // The node's `height` levels, right after it in the same allocation.
  Level* levels() { return reinterpret_cast<Level*>(this + 1); }
  const Level* levels() const { return reinterpret_cast<const Level*>(this + 1); }

  static Node* Make(double score, const PackedName* member, int height) {
    void* raw = ::operator new(sizeof(Node) + sizeof(Level) * static_cast<size_t>(height));
    Node* node = new (raw) Node{score, member};
    std::fill_n(node->levels(), height, Level{nullptr, 0});
    return node;
  }
  static void Free(Node* node) { ::operator delete(node); }
};

namespace {

// Valkey's order: score first, then member bytes.
bool Before(double score, std::string_view member, double other_score, std::string_view other) {
  return score < other_score || (score == other_score && member < other);
}

}  // namespace

OrderIndex::~OrderIndex() {
  Clear();
  if (head_ != nullptr) {
    Node::Free(head_);
  }
}

OrderIndex::OrderIndex(OrderIndex&& other) noexcept
    : head_(other.head_),
      head_height_(other.head_height_),
      level_(other.level_),
      size_(other.size_) {
  other.head_ = nullptr;
  other.head_height_ = 0;
  other.level_ = 1;
  other.size_ = 0;
}

OrderIndex& OrderIndex::operator=(OrderIndex&& other) noexcept {
  if (this != &other) {
    Clear();
    if (head_ != nullptr) {
      Node::Free(head_);
    }
    head_ = std::exchange(other.head_, nullptr);
    head_height_ = std::exchange(other.head_height_, 0);
    level_ = std::exchange(other.level_, 1);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void OrderIndex::Clear() {
  if (head_ == nullptr) {
    return;
  }
  Node* node = head_->levels()[0].next;
  while (node != nullptr) {
    Node* next = node->levels()[0].next;
    Node::Free(node);
    node = next;
  }
  std::fill_n(head_->levels(), head_height_, Node::Level{nullptr, 0});
  level_ = 1;
  size_ = 0;
}

// Nothing points at the head, so it can move to a taller allocation.
void OrderIndex::GrowHead(int level) {
  if (level <= head_height_) {
    return;
  }
  const int height = std::max(level, std::min(kMaxLevel, std::max(4, head_height_ * 2)));
  Node* head = Node::Make(0, nullptr, height);
  if (head_ != nullptr) {
    std::copy_n(head_->levels(), head_height_, head->levels());
    Node::Free(head_);
  }
  head_ = head;
  head_height_ = height;
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

void OrderIndex::Insert(double score, const PackedName* member_ptr) {
  LATTICE_ASSERT(score == score);
  const std::string_view member = member_ptr->view();
  const int level = LevelFor(member);
  GrowHead(std::max(level, level_));
  Node* update[kMaxLevel];
  size_t rank[kMaxLevel];
  Node* x = head_;
  for (int i = level_ - 1; i >= 0; --i) {
    rank[i] = i == level_ - 1 ? 0 : rank[i + 1];
    while (x->levels()[i].next != nullptr &&
           Before(x->levels()[i].next->score, x->levels()[i].next->member->view(), score, member)) {
      rank[i] += x->levels()[i].span;
      x = x->levels()[i].next;
    }
    update[i] = x;
  }
  for (int i = level_; i < level; ++i) {
    rank[i] = 0;
    update[i] = head_;
    update[i]->levels()[i].span = size_;
  }
  level_ = std::max(level_, level);
  Node* node = Node::Make(score, member_ptr, level);
  for (int i = 0; i < level; ++i) {
    node->levels()[i].next = update[i]->levels()[i].next;
    update[i]->levels()[i].next = node;
    node->levels()[i].span = update[i]->levels()[i].span - (rank[0] - rank[i]);
    update[i]->levels()[i].span = (rank[0] - rank[i]) + 1;
  }
  for (int i = level; i < level_; ++i) {
    update[i]->levels()[i].span++;
  }
  ++size_;
}

void OrderIndex::Erase(double score, std::string_view member) {
  LATTICE_ASSERT(head_ != nullptr);
  Node* update[kMaxLevel];
  Node* x = head_;
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels()[i].next != nullptr &&
           Before(x->levels()[i].next->score, x->levels()[i].next->member->view(), score, member)) {
      x = x->levels()[i].next;
    }
    update[i] = x;
  }
  Node* node = x->levels()[0].next;
  LATTICE_ASSERT(node != nullptr && node->score == score && node->member->view() == member);
  for (int i = 0; i < level_; ++i) {
    if (update[i]->levels()[i].next == node) {
      update[i]->levels()[i].span += node->levels()[i].span - 1;
      update[i]->levels()[i].next = node->levels()[i].next;
    } else {
      update[i]->levels()[i].span--;
    }
  }
  while (level_ > 1 && head_->levels()[level_ - 1].next == nullptr) {
    --level_;
  }
  Node::Free(node);
  --size_;
}

size_t OrderIndex::Rank(double score, std::string_view member) const {
  size_t rank = 0;
  if (head_ == nullptr) {
    return rank;
  }
  const Node* x = head_;
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels()[i].next != nullptr &&
           Before(x->levels()[i].next->score, x->levels()[i].next->member->view(), score, member)) {
      rank += x->levels()[i].span;
      x = x->levels()[i].next;
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
    while (x->levels()[i].next != nullptr &&
           (inclusive ? x->levels()[i].next->score <= score : x->levels()[i].next->score < score)) {
      rank += x->levels()[i].span;
      x = x->levels()[i].next;
    }
  }
  return rank;
}

std::pair<double, std::string_view> OrderIndex::At(size_t rank) const {
  LATTICE_ASSERT(rank < size_);
  size_t traversed = 0;
  const Node* x = head_;
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels()[i].next != nullptr && traversed + x->levels()[i].span <= rank + 1) {
      traversed += x->levels()[i].span;
      x = x->levels()[i].next;
    }
  }
  return {x->score, x->member->view()};
}

std::vector<std::pair<double, std::string>> OrderIndex::Range(size_t first, size_t count) const {
  std::vector<std::pair<double, std::string>> out;
  if (first >= size_ || count == 0) {
    return out;
  }
  size_t traversed = 0;
  const Node* x = head_;
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels()[i].next != nullptr && traversed + x->levels()[i].span <= first + 1) {
      traversed += x->levels()[i].span;
      x = x->levels()[i].next;
    }
  }
  for (; x != nullptr && out.size() < count; x = x->levels()[0].next) {
    out.emplace_back(x->score, std::string(x->member->view()));
  }
  return out;
}

}  // namespace lattice::crdt
