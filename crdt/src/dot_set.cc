#include "lattice/crdt/dot_set.h"

#include <algorithm>

namespace lattice::crdt {

DotSet& DotSet::operator=(const DotSet& other) {
  if (this != &other) {
    std::vector<Dot> copy(other.dots().begin(), other.dots().end());
    Assign(copy);
  }
  return *this;
}

DotSet& DotSet::operator=(DotSet&& other) noexcept {
  if (this != &other) {
    Clear();
    dot_ = other.dot_;
    other.dot_ = Dot{};
  }
  return *this;
}

std::span<const Dot> DotSet::dots() const {
  if (heap()) {
    return std::span<const Dot>(vec()->data(), vec()->size());
  }
  if (empty()) {
    return {};
  }
  return std::span<const Dot>(&dot_, 1);
}

bool DotSet::Contains(Dot dot) const {
  const auto all = dots();
  return std::binary_search(all.begin(), all.end(), dot);
}

void DotSet::Insert(Dot dot) {
  if (Contains(dot)) {
    return;
  }
  std::vector<Dot> all(dots().begin(), dots().end());
  all.insert(std::lower_bound(all.begin(), all.end(), dot), dot);
  Assign(all);
}

void DotSet::Clear() {
  if (heap()) {
    delete vec();
  }
  dot_ = Dot{};
}

void DotSet::Assign(std::span<const Dot> dots) {
  std::vector<Dot>* fresh =
      dots.size() > 1 ? new std::vector<Dot>(dots.begin(), dots.end()) : nullptr;
  const Dot single = dots.size() == 1 ? dots[0] : Dot{};
  Clear();
  if (fresh != nullptr) {
    dot_ = Dot{kNoReplica, reinterpret_cast<uint64_t>(fresh)};
  } else {
    dot_ = single;
  }
}

DotSet JoinDots(const DotSet& mine, const DotContext& my_context, const DotSet& theirs,
                const DotContext& their_context) {
  std::vector<Dot> out;
  const auto a = mine.dots();
  const auto b = theirs.dots();
  for (const Dot& dot : a) {
    if (theirs.Contains(dot) || !their_context.Contains(dot)) {
      out.push_back(dot);
    }
  }
  for (const Dot& dot : b) {
    if (!mine.Contains(dot) && !my_context.Contains(dot)) {
      out.push_back(dot);
    }
  }
  std::sort(out.begin(), out.end());
  DotSet result;
  result.Assign(out);
  return result;
}

}  // namespace lattice::crdt
