#include "lattice/crdt/hll.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lattice::crdt::hll {

namespace {

constexpr int kP = 14;
constexpr int kQ = 64 - kP;
constexpr uint8_t kRegisterMax = 63;
constexpr int kSparseValMax = 32;
constexpr int kSparseValMaxLen = 4;
constexpr int kSparseZeroMaxLen = 64;
constexpr int kSparseXZeroMaxLen = 16384;
constexpr size_t kDefaultSparseMaxBytes = 3000;

uint8_t* Bytes(std::string& value) { return reinterpret_cast<uint8_t*>(value.data()); }
const uint8_t* Bytes(std::string_view value) {
  return reinterpret_cast<const uint8_t*>(value.data());
}

uint8_t Encoding(std::string_view value) { return static_cast<uint8_t>(value[4]); }
void InvalidateCache(std::string& value) { value[15] = static_cast<char>(value[15] | 0x80); }

// Dense registers: register i occupies bits 6i..6i+5, least significant first, across at most
// two bytes (the last register's second byte is still inside the 12288 bytes).
uint8_t DenseGet(const uint8_t* regs, int index) {
  const size_t bit = static_cast<size_t>(index) * 6;
  const size_t byte = bit / 8;
  const unsigned shift = bit & 7;
  const unsigned b0 = regs[byte];
  const unsigned b1 = shift > 2 ? regs[byte + 1] : 0;
  return static_cast<uint8_t>(((b0 >> shift) | (b1 << (8 - shift))) & kRegisterMax);
}

void DensePut(uint8_t* regs, int index, uint8_t v) {
  const size_t bit = static_cast<size_t>(index) * 6;
  const size_t byte = bit / 8;
  const unsigned shift = bit & 7;
  regs[byte] = static_cast<uint8_t>((regs[byte] & ~(kRegisterMax << shift)) | (v << shift));
  if (shift > 2) {
    const unsigned hi = 8 - shift;
    regs[byte + 1] = static_cast<uint8_t>((regs[byte + 1] & ~(kRegisterMax >> hi)) | (v >> hi));
  }
}

int DenseSet(uint8_t* regs, int index, uint8_t rank) {
  if (rank <= DenseGet(regs, index)) {
    return 0;
  }
  DensePut(regs, index, rank);
  return 1;
}

// Calls f(index, register) for every register of dense `regs`, four registers (three bytes) at a
// time: the layout above, unpacked without a per-register shift computation.
template <typename F>
void ForEachDense(const uint8_t* regs, F&& f) {
  for (int i = 0; i < kRegisters; i += 4, regs += 3) {
    const unsigned b0 = regs[0];
    const unsigned b1 = regs[1];
    const unsigned b2 = regs[2];
    f(i, static_cast<uint8_t>(b0 & kRegisterMax));
    f(i + 1, static_cast<uint8_t>((b0 >> 6) | ((b1 & 0xf) << 2)));
    f(i + 2, static_cast<uint8_t>((b1 >> 4) | ((b2 & 0x3) << 4)));
    f(i + 3, static_cast<uint8_t>(b2 >> 2));
  }
}

// Raises dense `regs` to at least `max`, four registers (three bytes) at a time.
void RaiseDense(uint8_t* regs, const Registers& max) {
  for (int i = 0; i < kRegisters; i += 4, regs += 3) {
    const unsigned b0 = regs[0];
    const unsigned b1 = regs[1];
    const unsigned b2 = regs[2];
    unsigned r[4] = {b0 & kRegisterMax, (b0 >> 6) | ((b1 & 0xfU) << 2),
                     (b1 >> 4) | ((b2 & 0x3U) << 4), b2 >> 2};
    for (int k = 0; k < 4; ++k) r[k] = std::max<unsigned>(r[k], max[i + k]);
    regs[0] = static_cast<uint8_t>(r[0] | (r[1] << 6));
    regs[1] = static_cast<uint8_t>((r[1] >> 2) | (r[2] << 4));
    regs[2] = static_cast<uint8_t>((r[2] >> 4) | (r[3] << 2));
  }
}

// Sparse opcodes.
bool IsZero(const uint8_t* p) { return (*p & 0xc0) == 0; }
bool IsXZero(const uint8_t* p) { return (*p & 0xc0) == 0x40; }
bool IsVal(const uint8_t* p) { return (*p & 0x80) != 0; }
int ZeroLen(const uint8_t* p) { return (*p & 0x3f) + 1; }
int XZeroLen(const uint8_t* p) { return (((*p & 0x3f) << 8) | p[1]) + 1; }
int ValValue(const uint8_t* p) { return ((*p >> 2) & 0x1f) + 1; }
int ValLen(const uint8_t* p) { return (*p & 0x3) + 1; }
uint8_t ZeroOp(int len) { return static_cast<uint8_t>(len - 1); }
void XZeroOp(uint8_t* p, int len) {
  const int l = len - 1;
  p[0] = static_cast<uint8_t>((l >> 8) | 0x40);
  p[1] = static_cast<uint8_t>(l & 0xff);
}
uint8_t ValOp(int value, int len) {
  return static_cast<uint8_t>(((value - 1) << 2 | (len - 1)) | 0x80);
}

// Walks sparse opcodes: f(first_register, run_length, value) per run. False when the runs do not
// cover exactly 16384 registers.
template <typename F>
bool ForEachRun(std::string_view value, F&& f) {
  const uint8_t* p = Bytes(value) + kHeaderSize;
  const uint8_t* end = Bytes(value) + value.size();
  int index = 0;
  while (p < end) {
    int run = 0;
    int reg = 0;
    if (IsZero(p)) {
      run = ZeroLen(p);
      p += 1;
    } else if (IsXZero(p)) {
      if (p + 1 >= end) return false;
      run = XZeroLen(p);
      p += 2;
    } else {
      run = ValLen(p);
      reg = ValValue(p);
      p += 1;
      if (index + run > kRegisters) return false;
    }
    if (index + run > kRegisters) return false;
    f(index, run, reg);
    index += run;
  }
  return index == kRegisters;
}

double Sigma(double x) {
  if (x == 1.) return INFINITY;
  double z_prime;
  double y = 1;
  double z = x;
  do {
    x *= x;
    z_prime = z;
    z += x * y;
    y += y;
  } while (z_prime != z);
  return z;
}

double Tau(double x) {
  if (x == 0. || x == 1.) return 0.;
  double z_prime;
  double y = 1.0;
  double z = 1 - x;
  do {
    x = std::sqrt(x);
    z_prime = z;
    y *= 0.5;
    z -= std::pow(1 - x, 2) * y;
  } while (z_prime != z);
  return z / 3;
}

uint64_t EstimateHisto(const std::array<int, 64>& histo) {
  const double m = kRegisters;
  double z = m * Tau((m - histo[kQ + 1]) / m);
  for (int j = kQ; j >= 1; --j) {
    z += histo[j];
    z *= 0.5;
  }
  z += m * Sigma(histo[0] / m);
  constexpr double kAlphaInf = 0.721347520444481703680;
  return static_cast<uint64_t>(std::llroundl(kAlphaInf * m * m / z));
}

// Valkey's in-place sparse update (its hllSparseSet): locate the opcode covering `index`, split
// it around the new VAL, then merge equal adjacent VALs in the five opcodes from the previous
// one. Returns 1/0/-1, or 2 when the value must be promoted to dense first.
int SparseSet(std::string& value, int index, uint8_t rank, size_t max_bytes) {
  if (rank > kSparseValMax) return 2;
  uint8_t* sparse = Bytes(value) + kHeaderSize;
  uint8_t* end = Bytes(value) + value.size();
  uint8_t* p = sparse;
  uint8_t* prev = nullptr;
  int first = 0;
  int span = 0;
  while (p < end) {
    int oplen = 1;
    if (IsZero(p)) {
      span = ZeroLen(p);
    } else if (IsVal(p)) {
      span = ValLen(p);
    } else {
      if (p + 1 >= end) return -1;
      span = XZeroLen(p);
      oplen = 2;
    }
    if (index <= first + span - 1) break;
    prev = p;
    p += oplen;
    first += span;
  }
  if (span == 0 || p >= end) return -1;
  const bool is_xzero = IsXZero(p);
  const bool is_zero = IsZero(p);
  const bool is_val = IsVal(p);
  const int runlen = is_zero ? ZeroLen(p) : is_xzero ? XZeroLen(p) : ValLen(p);
  size_t p_off = static_cast<size_t>(p - Bytes(value));
  const size_t prev_off = prev != nullptr ? static_cast<size_t>(prev - Bytes(value)) : kHeaderSize;

  bool rewritten = false;
  if (is_val) {
    if (ValValue(p) >= rank) return 0;
    if (runlen == 1) {
      *p = ValOp(rank, 1);
      rewritten = true;
    }
  }
  if (!rewritten && is_zero && runlen == 1) {
    *p = ValOp(rank, 1);
    rewritten = true;
  }
  if (!rewritten) {
    uint8_t seq[5];
    uint8_t* n = seq;
    const int last = first + span - 1;
    auto zeros = [&](int len) {
      if (len > kSparseZeroMaxLen) {
        XZeroOp(n, len);
        n += 2;
      } else {
        *n++ = ZeroOp(len);
      }
    };
    if (is_zero || is_xzero) {
      if (index != first) zeros(index - first);
      *n++ = ValOp(rank, 1);
      if (index != last) zeros(last - index);
    } else {
      const int current = ValValue(p);
      if (index != first) *n++ = ValOp(current, index - first);
      *n++ = ValOp(rank, 1);
      if (index != last) *n++ = ValOp(current, last - index);
    }
    const size_t seqlen = static_cast<size_t>(n - seq);
    const size_t oldlen = is_xzero ? 2 : 1;
    if (seqlen > oldlen && value.size() + (seqlen - oldlen) > max_bytes) return 2;
    value.replace(p_off, oldlen, reinterpret_cast<const char*>(seq), seqlen);
  }
  // Merge adjacent VAL opcodes of equal value (at most 5 opcodes from the previous one).
  uint8_t* q = Bytes(value) + prev_off;
  end = Bytes(value) + value.size();
  int scan = 5;
  while (q < end && scan-- > 0) {
    if (IsXZero(q)) {
      q += 2;
      continue;
    }
    if (IsZero(q)) {
      q += 1;
      continue;
    }
    if (q + 1 < end && IsVal(q + 1)) {
      const int v1 = ValValue(q);
      const int v2 = ValValue(q + 1);
      if (v1 == v2) {
        const int len = ValLen(q) + ValLen(q + 1);
        if (len <= kSparseValMaxLen) {
          const size_t off = static_cast<size_t>(q - Bytes(value));
          value[off + 1] = static_cast<char>(ValOp(v1, len));
          value.erase(off, 1);
          q = Bytes(value) + off;
          end = Bytes(value) + value.size();
          continue;
        }
      }
    }
    q += 1;
  }
  (void)p_off;
  InvalidateCache(value);
  return 1;
}

}  // namespace

uint64_t Hash(std::string_view element) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  const size_t len = element.size();
  uint64_t h = 0xadc83b19ULL ^ (static_cast<uint64_t>(len) * m);
  const uint8_t* data = Bytes(element);
  const uint8_t* end = data + (len - (len & 7));
  while (data != end) {
    uint64_t k = 0;
    for (int i = 7; i >= 0; --i) k = (k << 8) | data[i];
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
    data += 8;
  }
  const size_t tail = len & 7;
  if (tail != 0) {
    for (size_t i = tail; i-- > 0;) h ^= static_cast<uint64_t>(data[i]) << (8 * i);
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

void PatternOf(std::string_view element, int* index, uint8_t* rank) {
  uint64_t hash = Hash(element);
  *index = static_cast<int>(hash & (kRegisters - 1));
  hash >>= kP;
  hash |= uint64_t{1} << kQ;  // the loop below stops by bit Q: rank <= Q + 1
  uint8_t count = 1;
  for (uint64_t bit = 1; (hash & bit) == 0; bit <<= 1) ++count;
  *rank = count;
}

bool Valid(std::string_view value) {
  if (value.size() < kHeaderSize || value.substr(0, 4) != "HYLL") return false;
  const uint8_t encoding = Encoding(value);
  if (encoding > kSparse) return false;
  return encoding != kDense || value.size() == kDenseSize;
}

std::string NewSparse() {
  std::string value(kHeaderSize, '\0');
  std::memcpy(value.data(), "HYLL", 4);
  value[4] = static_cast<char>(kSparse);
  for (int left = kRegisters; left > 0; left -= kSparseXZeroMaxLen) {
    uint8_t op[2];
    XZeroOp(op, left < kSparseXZeroMaxLen ? left : kSparseXZeroMaxLen);
    value.append(reinterpret_cast<const char*>(op), 2);
  }
  return value;
}

bool ToDense(std::string& value) {
  if (Encoding(value) == kDense) return true;
  std::string dense(kDenseSize, '\0');
  std::memcpy(dense.data(), value.data(), kHeaderSize);  // magic, unused bytes and cache
  dense[4] = static_cast<char>(kDense);
  uint8_t* regs = Bytes(dense) + kHeaderSize;
  // Valkey stops at a VAL run that would overflow and then finds the count short: corrupted.
  if (!ForEachRun(value, [&](int first, int run, int reg) {
        if (reg != 0) {
          for (int i = 0; i < run; ++i) DensePut(regs, first + i, static_cast<uint8_t>(reg));
        }
      })) {
    return false;
  }
  value = std::move(dense);
  return true;
}

std::optional<uint8_t> RegisterAt(std::string_view value, int index) {
  if (Encoding(value) == kDense) return DenseGet(Bytes(value) + kHeaderSize, index);
  uint8_t found = 0;
  if (!ForEachRun(value, [&](int first, int run, int reg) {
        if (index >= first && index < first + run) found = static_cast<uint8_t>(reg);
      })) {
    return std::nullopt;
  }
  return found;
}

bool Intact(std::string_view value) {
  return Encoding(value) == kDense || ForEachRun(value, [](int, int, int) {});
}

int SetRegister(std::string& value, int index, uint8_t rank, size_t sparse_max_bytes) {
  if (Encoding(value) == kDense) {
    const int changed = DenseSet(Bytes(value) + kHeaderSize, index, rank);
    if (changed != 0) InvalidateCache(value);
    return changed;
  }
  if (Encoding(value) != kSparse) return -1;
  const int result = SparseSet(value, index, rank, sparse_max_bytes);
  if (result != 2) return result;
  if (!ToDense(value)) return -1;
  DenseSet(Bytes(value) + kHeaderSize, index, rank);  // promoted because it must change
  InvalidateCache(value);
  return 1;
}

int Add(std::string& value, std::string_view element, size_t sparse_max_bytes) {
  int index = 0;
  uint8_t rank = 0;
  PatternOf(element, &index, &rank);
  return SetRegister(value, index, rank, sparse_max_bytes);
}

bool MaxInto(Registers& max, std::string_view value) {
  if (Encoding(value) == kDense) {
    ForEachDense(Bytes(value) + kHeaderSize, [&](int i, uint8_t v) {
      if (v > max[i]) max[i] = v;
    });
    return true;
  }
  return ForEachRun(value, [&](int first, int run, int reg) {
    if (reg == 0) return;  // a zero run raises nothing: a small sparse value costs its opcodes
    for (int i = first; i < first + run; ++i) {
      if (reg > max[i]) max[i] = static_cast<uint8_t>(reg);
    }
  });
}

uint64_t Estimate(const Registers& registers) {
  std::array<int, 64> histo{};
  for (uint8_t v : registers) ++histo[v];
  return EstimateHisto(histo);
}

std::optional<uint64_t> Count(std::string_view value) {
  std::array<int, 64> histo{};
  if (Encoding(value) == kDense) {
    ForEachDense(Bytes(value) + kHeaderSize, [&](int, uint8_t v) { ++histo[v]; });
  } else if (!ForEachRun(value, [&](int, int run, int reg) { histo[reg] += run; })) {
    return std::nullopt;
  }
  return EstimateHisto(histo);
}

std::optional<uint64_t> CachedCount(std::string_view value) {
  if ((static_cast<uint8_t>(value[15]) & 0x80) != 0) return std::nullopt;
  uint64_t count = 0;
  for (int i = 7; i >= 0; --i) count = (count << 8) | static_cast<uint8_t>(value[8 + i]);
  return count;
}

void StoreCachedCount(std::string& value, uint64_t count) {
  for (int i = 0; i < 8; ++i) value[8 + i] = static_cast<char>((count >> (8 * i)) & 0xff);
}

bool WriteMax(std::string& target, const Registers& max, bool dense, size_t sparse_max_bytes) {
  if (dense && !ToDense(target)) return false;
  if (Encoding(target) == kDense) {
    RaiseDense(Bytes(target) + kHeaderSize, max);
    InvalidateCache(target);
    return true;
  }
  for (int i = 0; i < kRegisters; ++i) {
    if (max[i] != 0 && SetRegister(target, i, max[i], sparse_max_bytes) < 0) return false;
  }
  InvalidateCache(target);
  return true;
}

namespace {

// Raises dense `regs` to the registers of intact `value`.
void RaiseFrom(uint8_t* regs, std::string_view value) {
  if (Encoding(value) == kDense) {
    Registers max{};
    MaxInto(max, value);
    RaiseDense(regs, max);
    return;
  }
  ForEachRun(value, [&](int first, int run, int reg) {
    for (int i = first; reg != 0 && i < first + run; ++i) {
      DenseSet(regs, i, static_cast<uint8_t>(reg));
    }
  });
}

// MergeValues when the newest value is sparse and another is dense: the result is dense, so it
// is built from a copy of that dense value (not from the sparse one, converted and raised
// register by register) with the newest value's header: the same bytes.
std::string MergeIntoDense(const std::vector<std::string_view>& values, size_t dense_at) {
  std::string out(values[dense_at]);
  out.replace(5, kHeaderSize - 5, values[0].substr(5, kHeaderSize - 5));
  uint8_t* regs = Bytes(out) + kHeaderSize;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i != dense_at && Valid(values[i]) && Intact(values[i])) RaiseFrom(regs, values[i]);
  }
  InvalidateCache(out);
  return out;
}

// Whether the registers of intact `value` are exactly `max`.
bool HoldsExactly(std::string_view value, const Registers& max) {
  bool same = true;
  if (Encoding(value) == kDense) {
    ForEachDense(Bytes(value) + kHeaderSize, [&](int i, uint8_t v) { same = same && v == max[i]; });
    return same;
  }
  ForEachRun(value, [&](int first, int run, int reg) {
    for (int i = first; same && i < first + run; ++i) same = max[i] == reg;
  });
  return same;
}

}  // namespace

std::optional<std::string> MergeValues(const std::vector<std::string_view>& values) {
  if (values.size() < 2 || !Valid(values[0]) || !Intact(values[0])) return std::nullopt;
  if (Encoding(values[0]) == kSparse) {
    for (size_t i = 1; i < values.size(); ++i) {
      if (Valid(values[i]) && Encoding(values[i]) == kDense) return MergeIntoDense(values, i);
    }
  }
  Registers max{};
  bool dense = false;
  size_t merged = 0;
  for (std::string_view v : values) {
    // A concurrent non-HyperLogLog value does not take part, nor does a corrupted one.
    if (!Valid(v) || !Intact(v)) continue;
    MaxInto(max, v);
    dense = dense || Encoding(v) == kDense;
    ++merged;
  }
  if (merged < 2) return std::nullopt;
  // The newest already holds the join: its bytes, as written (dense when any value is dense, as
  // PFMERGE's result: a raise entry beside a dense value reads dense).
  if (HoldsExactly(values[0], max) && (!dense || Encoding(values[0]) == kDense)) {
    return std::string(values[0]);
  }
  std::string out(values[0]);
  if (!WriteMax(out, max, dense, kDefaultSparseMaxBytes)) return std::nullopt;
  return out;
}

std::optional<std::string> Decode(std::string_view value) {
  if (Encoding(value) != kSparse) return std::nullopt;
  std::string out;
  const uint8_t* p = Bytes(value) + kHeaderSize;
  const uint8_t* end = Bytes(value) + value.size();
  while (p < end) {
    if (IsZero(p)) {
      out += "z:" + std::to_string(ZeroLen(p)) + " ";
      p += 1;
    } else if (IsXZero(p)) {
      out += "Z:" + std::to_string(p + 1 < end ? XZeroLen(p) : ((*p & 0x3f) << 8) + 1) + " ";
      p += 2;
    } else {
      out += "v:" + std::to_string(ValValue(p)) + "," + std::to_string(ValLen(p)) + " ";
      p += 1;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string SelfTest() {
  // Register packing: every register reads back what was written, neighbours untouched.
  std::vector<uint8_t> regs(kDenseSize - kHeaderSize, 0);
  Registers expect{};
  uint64_t seed = 0x9e3779b97f4a7c15ULL;
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < kRegisters; ++i) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      expect[i] = static_cast<uint8_t>((seed >> 33) & kRegisterMax);
      DensePut(regs.data(), i, expect[i]);
    }
    for (int i = 0; i < kRegisters; ++i) {
      if (DenseGet(regs.data(), i) != expect[i])
        return "TESTFAILED Register error at " + std::to_string(i);
    }
  }
  // Sparse and dense agree, and the estimate stays within 5 standard errors.
  std::string sparse = NewSparse();
  std::string dense = NewSparse();
  if (!ToDense(dense)) return "TESTFAILED dense conversion";
  const double relerr = 1.04 / std::sqrt(static_cast<double>(kRegisters));
  uint64_t checkpoint = 1;
  for (uint64_t j = 1; j <= 100000; ++j) {
    const std::string element = "selftest:" + std::to_string(j);
    if (Add(sparse, element, kDefaultSparseMaxBytes) < 0 ||
        Add(dense, element, kDefaultSparseMaxBytes) < 0) {
      return "TESTFAILED corrupted value";
    }
    if (j != checkpoint) continue;
    checkpoint *= 10;
    const std::optional<uint64_t> a = Count(sparse);
    const std::optional<uint64_t> b = Count(dense);
    if (!a || !b || *a != *b) return "TESTFAILED sparse and dense estimates differ";
    const double err = std::fabs(static_cast<double>(*a) - static_cast<double>(j));
    if (err > std::max(5.0, 5 * relerr * static_cast<double>(j))) {
      return "TESTFAILED too big error. card:" + std::to_string(j) +
             " abserr:" + std::to_string(err);
    }
  }
  return "";
}

}  // namespace lattice::crdt::hll
