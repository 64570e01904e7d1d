// SORT and SORT_RO: sort the elements of a list, set or sorted set, numerically or (ALPHA) by
// bytes, optionally by the values of other keys (BY pattern, hash fields with "->"), with LIMIT,
// GET patterns and, for SORT, STORE into a list.
//
// SORT ... STORE replaces the destination with a list written as ordinary list ops (a delete
// then one push of all elements), so it replicates and merges as any list write does. The
// lookups of BY and GET patterns read the keyspace at the command's instant, as Valkey does.
//
// Parsing, limits, comparison and errors follow Valkey's sort.c. Where Valkey's order is its
// hash table's (a set sorted BY a constant), the set's elements come in byte order, which is
// what Valkey itself yields for STORE and inside scripts (documented in docs/commands/sort.md).

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/commands/keyword_keys.h"
#include "server/server.h"
#include "store/keyspace.h"

namespace lattice::server {
namespace {

struct SortRequest {
  bool desc = false;
  bool alpha = false;
  bool dont_sort = false;  // BY a pattern without '*'
  int64_t limit_start = 0;
  int64_t limit_count = -1;
  std::optional<std::string_view> by;
  std::vector<std::string_view> gets;
  std::optional<std::string_view> store;
};

// One element to sort with its weight: a number, or (ALPHA BY) the weight's bytes.
struct SortItem {
  std::string element;
  double score = 0;
  std::optional<std::string> weight;
};

// Valkey's patternHashSlot: the slot every key the pattern forms hashes to, or -1 when they may
// hash anywhere (a wildcard or an escape before any hash tag closes).
int PatternSlot(std::string_view pattern) {
  std::optional<size_t> open;
  bool empty_tag = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '*' || c == '?' || c == '[' || c == '\\') {
      return -1;
    }
    if (!open.has_value() && !empty_tag && c == '{') {
      open = i;
    } else if (open.has_value() && c == '}' && i == *open + 1) {
      open.reset();
      empty_tag = true;
    } else if (open.has_value() && c == '}') {
      return KeySlot(pattern.substr(*open, i - *open + 1));
    }
  }
  return KeySlot(pattern);
}

bool PatternAllowed(CommandContext& ctx, ArgList args, std::string_view pattern) {
  return !ctx.server.config().cluster_enabled() || PatternSlot(pattern) == KeySlot(args[1]);
}

// Parses the options after the key; false after replying an error.
bool ParseSortRequest(CommandContext& ctx, ArgList args, bool read_only, SortRequest* req) {
  for (size_t j = 2; j < args.size(); ++j) {
    const std::string_view arg = args[j];
    const size_t left = args.size() - j - 1;
    if (EqualsIgnoreCase(arg, "asc")) {
      req->desc = false;
    } else if (EqualsIgnoreCase(arg, "desc")) {
      req->desc = true;
    } else if (EqualsIgnoreCase(arg, "alpha")) {
      req->alpha = true;
    } else if (EqualsIgnoreCase(arg, "limit") && left >= 2) {
      if (!ParseInt64(args[j + 1], &req->limit_start) ||
          !ParseInt64(args[j + 2], &req->limit_count)) {
        ctx.reply.Error(errors::kNotInteger);
        return false;
      }
      j += 2;
    } else if (!read_only && EqualsIgnoreCase(arg, "store") && left >= 1) {
      req->store = args[++j];
    } else if (EqualsIgnoreCase(arg, "by") && left >= 1) {
      req->by = args[++j];
      // As Valkey: a BY without '*' turns sorting off for good, even if a later BY has one.
      const bool has_star = req->by->find('*') != std::string_view::npos;
      req->dont_sort = req->dont_sort || !has_star;
      if (has_star && !PatternAllowed(ctx, args, *req->by)) {
        ctx.reply.Error(
            "ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be "
            "in different slots.");
        return false;
      }
    } else if (EqualsIgnoreCase(arg, "get") && left >= 1) {
      if (!PatternAllowed(ctx, args, args[j + 1])) {
        ctx.reply.Error(
            "ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may "
            "be in different slots.");
        return false;
      }
      req->gets.push_back(args[++j]);
    } else {
      ctx.reply.Error(errors::kSyntax);
      return false;
    }
  }
  return true;
}

// Valkey's lookupKeyByPattern: "#" is the element itself; otherwise the first '*' is replaced by
// the element and the key read as a string, or with "->field" after the '*' as a hash field.
// nullopt when there is no '*', the key is missing or of another type, or the field is absent.
std::optional<std::string> LookupByPattern(CommandContext& ctx, std::string_view pattern,
                                           std::string_view element) {
  // Valkey reads the pattern as a C string: an embedded NUL ends it.
  pattern = pattern.substr(0, pattern.find('\0'));
  if (pattern == "#") {
    return std::string(element);
  }
  const size_t star = pattern.find('*');
  if (star == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view field;
  std::string_view suffix = pattern.substr(star + 1);
  const size_t arrow = suffix.find("->");
  if (arrow != std::string_view::npos && arrow + 2 < suffix.size()) {
    field = suffix.substr(arrow + 2);
    suffix = suffix.substr(0, arrow);
  }
  std::string key(pattern.substr(0, star));
  key.append(element);
  key.append(suffix);
  Result<KeyRef> found = ctx.Read(key);
  if (!found.ok() || *found == nullptr) {
    return std::nullopt;
  }
  const crdt::ObjectType type = (*found)->TypeAt(ctx.now_ms);
  if (!field.empty()) {
    return type == crdt::ObjectType::kHash ? (*found)->HashGet(field, ctx.now_ms) : std::nullopt;
  }
  return type == crdt::ObjectType::kString ? (*found)->GetString(ctx.now_ms) : std::nullopt;
}

// The elements of the key to sort, in its own order (a set's in byte order); nullopt after
// replying WRONGTYPE. A missing key is an empty list.
std::optional<std::vector<std::string>> LoadElements(CommandContext& ctx, std::string_view key,
                                                     bool* is_set) {
  Result<KeyRef> found = ctx.Read(key);
  std::vector<std::string> elements;
  if (!found.ok() || *found == nullptr) {
    return elements;
  }
  switch ((*found)->TypeAt(ctx.now_ms)) {
    case crdt::ObjectType::kList: {
      const crdt::List& list = (*found).full()->list();
      if (list.Size() > 0) {
        elements = list.Range(0, list.Size() - 1);
      }
      return elements;
    }
    case crdt::ObjectType::kSet:
      *is_set = true;
      return (*found)->set().Members();
    case crdt::ObjectType::kZSet:
      for (auto& [score, member] : (*found)->zset().index().Range(0, (*found)->ZSize())) {
        elements.push_back(std::move(member));
      }
      return elements;
    default:
      ctx.reply.Error(errors::kWrongType);
      return std::nullopt;
  }
}

// Valkey's numeric weight: strtod over the C string; false when it leaves bytes, overflows or
// underflows, or is NaN (an empty string is 0).
bool ParseWeight(const std::string& text, double* score) {
  errno = 0;
  char* end = nullptr;
  *score = std::strtod(text.c_str(), &end);
  return end[0] == '\0' && errno != ERANGE && !std::isnan(*score);
}

int CompareBytes(std::string_view a, std::string_view b) {
  const int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// Valkey's sortCompare (byte order where it would use strcoll: Lattice runs in the C locale).
int CompareItems(const SortItem& a, const SortItem& b, const SortRequest& req) {
  int cmp = 0;
  if (!req.alpha) {
    cmp = a.score > b.score ? 1 : (a.score < b.score ? -1 : CompareBytes(a.element, b.element));
  } else if (req.by.has_value()) {
    if (!a.weight.has_value() || !b.weight.has_value()) {
      cmp = a.weight.has_value() == b.weight.has_value() ? 0 : (a.weight.has_value() ? 1 : -1);
    } else {
      cmp = CompareBytes(*a.weight, *b.weight);
    }
  } else {
    cmp = CompareBytes(a.element, b.element);
  }
  return req.desc ? -cmp : cmp;
}

// Loads the weights and sorts; false when a numeric weight is not a number.
bool SortItems(CommandContext& ctx, const SortRequest& req, std::vector<SortItem>& items) {
  bool numbers_ok = true;
  for (SortItem& item : items) {
    std::optional<std::string> weight =
        req.by.has_value() ? LookupByPattern(ctx, *req.by, item.element) : item.element;
    if (!weight.has_value()) {
      continue;
    }
    if (req.alpha) {
      if (req.by.has_value()) {
        item.weight = std::move(weight);
      }
    } else if (!ParseWeight(*weight, &item.score)) {
      numbers_ok = false;
    }
  }
  std::stable_sort(items.begin(), items.end(), [&](const SortItem& a, const SortItem& b) {
    return CompareItems(a, b, req) < 0;
  });
  return numbers_ok;
}

// Valkey's LIMIT arithmetic: the output is items [start, end] (end < start: none).
std::pair<int64_t, int64_t> LimitRange(const SortRequest& req, int64_t length) {
  int64_t start = std::min(std::max<int64_t>(req.limit_start, 0), length);
  const int64_t count = std::min(std::max<int64_t>(req.limit_count, -1), length);
  int64_t end = count < 0 ? length - 1 : start + count - 1;
  if (start >= length) {
    start = length - 1;
    end = length - 2;
  }
  return {start, std::min(end, length - 1)};
}

// The output values of items [start, end]: the elements, or each GET pattern's value per
// element (nullopt: missing).
std::vector<std::optional<std::string>> Output(CommandContext& ctx, const SortRequest& req,
                                               const std::vector<SortItem>& items, int64_t start,
                                               int64_t end) {
  std::vector<std::optional<std::string>> out;
  for (int64_t j = start; j <= end; ++j) {
    const std::string& element = items[static_cast<size_t>(j)].element;
    if (req.gets.empty()) {
      out.emplace_back(element);
    }
    for (std::string_view pattern : req.gets) {
      out.push_back(LookupByPattern(ctx, pattern, element));
    }
  }
  return out;
}

// STORE: replaces the destination with a list of the values (a missing GET value is ""), or
// deletes it when there are none.
void StoreList(CommandContext& ctx, std::string_view destination,
               const std::vector<std::optional<std::string>>& values) {
  ctx.keyspace().Delete(ctx.db(), destination, ctx.now_ms);
  if (!values.empty()) {
    std::vector<std::string> elements;
    elements.reserve(values.size());
    for (const auto& value : values) {
      elements.push_back(value.value_or(""));
    }
    (void)ctx.Write(destination, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
      Result<crdt::KeyOp> op = k.LEdit({}, crdt::ListEnd::kTail, elements, w, shard);
      if (op.ok()) {
        k.SettleListEncoding(ctx.server.list_limits());
      }
      return op;
    });
  }
  ctx.reply.Integer(static_cast<int64_t>(values.size()));
}

void SortCommand(CommandContext& ctx, ArgList args, bool read_only) {
  SortRequest req;
  if (!ParseSortRequest(ctx, args, read_only, &req)) {
    return;
  }
  if (req.store.has_value() && !DestinationInSourceSlot(ctx, args[1], *req.store)) {
    return;
  }
  bool is_set = false;
  std::optional<std::vector<std::string>> elements = LoadElements(ctx, args[1], &is_set);
  if (!elements.has_value()) {
    return;
  }
  if (req.dont_sort && is_set) {  // Valkey forces ALPHA for STORE and scripts; we always do
    req.dont_sort = false;
    req.alpha = true;
    req.by.reset();
  }
  std::vector<SortItem> items;
  items.reserve(elements->size());
  for (std::string& element : *elements) {
    items.push_back({std::move(element), 0, std::nullopt});
  }
  if (req.dont_sort && req.desc) {
    std::reverse(items.begin(), items.end());  // Valkey walks a list or zset from its tail
  }
  if (!req.dont_sort && !SortItems(ctx, req, items)) {
    ctx.reply.Error("ERR One or more scores can't be converted into double");
    return;
  }
  const auto [start, end] = LimitRange(req, static_cast<int64_t>(items.size()));
  const std::vector<std::optional<std::string>> out = Output(ctx, req, items, start, end);
  if (req.store.has_value()) {
    StoreList(ctx, *req.store, out);
    return;
  }
  ctx.reply.Array(out.size());
  for (const auto& value : out) {
    value.has_value() ? ctx.reply.Bulk(*value) : ctx.reply.Null();
  }
}

void CmdSort(CommandContext& ctx, ArgList args) { SortCommand(ctx, args, false); }
void CmdSortRo(CommandContext& ctx, ArgList args) { SortCommand(ctx, args, true); }

}  // namespace

bool DestinationInSourceSlot(CommandContext& ctx, std::string_view source,
                             std::string_view destination) {
  if (!ctx.server.config().cluster_enabled() || KeySlot(source) == KeySlot(destination)) {
    return true;
  }
  ctx.reply.Error("CROSSSLOT Keys in request don't hash to the same slot");
  return false;
}

void RegisterSortFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kTypes = kAclSet | kAclSortedSet | kAclList | kAclSlow | kAclDangerous;
  registry.Add({.name = "sort", .arity = -2, .flags = kWrite | kDenyOom | kMovableKeys,
                .keys = {.first = 1, .last = 1, .step = 1}, .acl = kAclWrite | kTypes,
                .handler = &CmdSort, .group = "generic",
                .summary = "Sorts the elements in a list, a set, or a sorted set, optionally "
                           "storing the result.",
                .since = "1.0.0",
                .complexity = "O(N+M*log(M)) where N is the number of elements in the list or set "
                              "to sort, and M the number of returned elements. When the elements "
                              "are not sorted, complexity is O(N)."});
  registry.Add({.name = "sort_ro", .arity = -2, .flags = kReadOnly,
                .keys = {.first = 1, .last = 1, .step = 1}, .acl = kAclRead | kTypes,
                .handler = &CmdSortRo, .group = "generic",
                .summary = "Returns the sorted elements of a list, a set, or a sorted set.",
                .since = "7.0.0",
                .complexity = "O(N+M*log(M)) where N is the number of elements in the list or set "
                              "to sort, and M the number of returned elements. When the elements "
                              "are not sorted, complexity is O(N)."});
  // clang-format on
}

}  // namespace lattice::server
