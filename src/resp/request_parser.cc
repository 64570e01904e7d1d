#include "resp/request_parser.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <utility>

#include "lattice/common/numbers.h"

// Notes on matching Valkey (networking.c parseMultibulk/processInlineBuffer, sds.c sdsparsearg,
// util.c string2ll):
// - A header line (`*<n>`, `$<len>`) ends at the first '\r'; the byte after it is skipped without
//   being checked, and so are the two bytes after bulk data. Valkey does the same.
// - Valkey checks the 64 KB header/inline cap only when a read leaves no terminator in its query
//   buffer, so its verdict on a long line depends on how the bytes were split into reads. This
//   parser gives the verdict Valkey gives when bytes arrive one at a time, whatever the split:
//   a line whose bytes before the terminator exceed inline_max is "too big".
// - Valkey finds an inline request's '\n' with strchr, so a NUL byte before it hides the newline:
//   the request never completes and fails once it grows past the cap. Reproduced here.

namespace lattice::server {
namespace {

constexpr int64_t kUnauthenticatedMultibulkMax = 10;
constexpr int64_t kUnauthenticatedBulkMax = 16384;
// Argument storage kept between commands: beyond this the buffers are released, so one huge
// command does not pin its memory for the life of the connection.
constexpr size_t kRetainedBytesMax = 1024 * 1024;
constexpr size_t kRetainedArgsMax = 1024;

// C's isspace in the "C" locale, which sdssplitargs uses to skip blanks between arguments.
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return c - 'A' + 10;
}

char UnescapeDoubleQuoted(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'b':
      return '\b';
    case 'a':
      return '\a';
    default:
      return c;
  }
}

// Parses one argument starting at line[*index] (not a blank), like Valkey's sdsparsearg: bare
// text ends at ' ', '\t', '\n', '\r' or the end of the line; a quote opens a quoted section even
// mid-argument; a closing quote must be followed by a blank or the end of the line. The end of
// the line plays the part of C's terminating NUL (the line never holds a NUL). Returns false for
// unbalanced quotes.
bool ParseInlineArg(std::string_view line, size_t* index, std::string* arg) {
  const auto at = [line](size_t k) { return k < line.size() ? line[k] : '\0'; };
  enum class Mode { kBare, kDouble, kSingle } mode = Mode::kBare;
  size_t i = *index;
  while (true) {
    const char c = at(i);
    if (mode == Mode::kDouble) {
      if (c == '\\' && at(i + 1) == 'x' && IsHexDigit(at(i + 2)) && IsHexDigit(at(i + 3))) {
        arg->push_back(static_cast<char>(HexValue(at(i + 2)) * 16 + HexValue(at(i + 3))));
        i += 4;
      } else if (c == '\\' && at(i + 1) != '\0') {
        arg->push_back(UnescapeDoubleQuoted(at(i + 1)));
        i += 2;
      } else if (c == '"') {
        if (at(i + 1) != '\0' && !IsSpace(at(i + 1))) {
          return false;
        }
        ++i;
        break;
      } else if (c == '\0') {
        return false;
      } else {
        arg->push_back(c);
        ++i;
      }
    } else if (mode == Mode::kSingle) {
      if (c == '\\' && at(i + 1) == '\'') {
        arg->push_back('\'');
        i += 2;
      } else if (c == '\'') {
        if (at(i + 1) != '\0' && !IsSpace(at(i + 1))) {
          return false;
        }
        ++i;
        break;
      } else if (c == '\0') {
        return false;
      } else {
        arg->push_back(c);
        ++i;
      }
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      ++i;
      break;
    } else if (c == '\0') {
      break;
    } else if (c == '"') {
      mode = Mode::kDouble;
      ++i;
    } else if (c == '\'') {
      mode = Mode::kSingle;
      ++i;
    } else {
      arg->push_back(c);
      ++i;
    }
  }
  *index = i;
  return true;
}

}  // namespace

void AppendRequest(std::string& out, ArgList args) {
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (std::string_view arg : args) {
    out += '$';
    out += std::to_string(arg.size());
    out += "\r\n";
    out.append(arg);
    out += "\r\n";
  }
}

void AppendRequest(std::string& out, std::initializer_list<std::string_view> args) {
  AppendRequest(out, ArgList(args.begin(), args.size()));
}

std::optional<std::vector<std::string>> SplitArgs(std::string_view line) {
  std::vector<std::string> args;
  size_t i = 0;
  while (true) {
    while (i < line.size() && IsSpace(line[i])) {
      ++i;
    }
    if (i >= line.size()) {
      return args;
    }
    std::string arg;
    if (!ParseInlineArg(line, &i, &arg)) {
      return std::nullopt;
    }
    args.push_back(std::move(arg));
  }
}

RequestParser::Status RequestParser::Parse(std::string_view input, size_t* consumed) {
  size_t pos = 0;
  while (true) {
    Step step = Step::kError;
    switch (state_) {
      case State::kStart:
        if (pos == input.size()) {
          *consumed = pos;
          return Status::kNeedMore;
        }
        if (input[pos] == '*' && ParseWhole(input, &pos)) {
          *consumed = pos;
          return Status::kCommand;
        }
        state_ = input[pos] == '*' ? State::kMultibulkCount : State::kInline;
        continue;
      case State::kMultibulkCount:
      case State::kMultibulkArgHeader:
      case State::kBulkData:
        step = ParseMultibulk(input, &pos);
        break;
      case State::kInline:
        step = ParseInline(input, &pos);
        break;
      case State::kFailed:
        step = Step::kError;
        break;
    }
    *consumed = pos;
    switch (step) {
      case Step::kCommand:
        return Status::kCommand;
      case Step::kNeedMore:
        return Status::kNeedMore;
      case Step::kError:
        return Status::kError;
      case Step::kSkipped:
        break;
    }
  }
}

size_t RequestParser::pending_bytes() const {
  return line_.size() + hidden_inline_bytes_ + pending_arg_bytes_;
}

void RequestParser::Reset() {
  state_ = State::kStart;
  line_.clear();
  header_cr_seen_ = false;
  hidden_inline_bytes_ = 0;
  multibulk_remaining_ = 0;
  bulk_len_ = 0;
  bulk_remaining_ = 0;
  bulk_trailer_remaining_ = 0;
  arg_count_ = 0;
  pending_arg_bytes_ = 0;
  views_.clear();
  error_.clear();
  ReleaseLargeStorage();
}

RequestParser::Step RequestParser::ParseInline(std::string_view input, size_t* pos) {
  if (hidden_inline_bytes_ > 0) {
    return ParseHiddenInline(input, pos);
  }
  const char* begin = input.data() + *pos;
  const size_t available = input.size() - *pos;
  // Scan no further than the cap allows, so a flood without '\n' costs O(cap) per call.
  const size_t room = limits_.inline_max - std::min<uint64_t>(line_.size(), limits_.inline_max);
  const size_t scan = room < available ? room + 1 : available;
  const char* newline = static_cast<const char*>(std::memchr(begin, '\n', scan));
  const size_t line_part = newline != nullptr ? static_cast<size_t>(newline - begin) : scan;
  if (std::memchr(begin, '\0', line_part) != nullptr) {
    return ParseHiddenInline(input, pos);
  }
  if (newline == nullptr) {
    if (line_.size() + available > limits_.inline_max) {
      return Fail("ERR Protocol error: too big inline request");
    }
    line_.append(begin, available);
    *pos = input.size();
    return Step::kNeedMore;
  }
  std::string_view line(begin, line_part);
  if (!line_.empty()) {
    line_.append(begin, line_part);
    line = line_;
  }
  *pos += line_part + 1;
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  BeginCommand();
  const bool balanced = SplitInline(line);
  line_.clear();
  if (!balanced) {
    return Fail("ERR Protocol error: unbalanced quotes in request");
  }
  state_ = State::kStart;
  if (arg_count_ == 0) {
    return Step::kSkipped;
  }
  FinishCommand();
  return Step::kCommand;
}

// An inline request with a NUL before its '\n': Valkey's strchr never sees the newline, so the
// request waits for more bytes and fails once more than inline_max are buffered. Only the count
// is kept, not the bytes.
RequestParser::Step RequestParser::ParseHiddenInline(std::string_view input, size_t* pos) {
  const size_t available = input.size() - *pos;
  const size_t total = hidden_inline_bytes_ + line_.size() + available;
  line_.clear();
  *pos = input.size();
  hidden_inline_bytes_ = total;
  if (total > limits_.inline_max) {
    hidden_inline_bytes_ = 0;
    return Fail("ERR Protocol error: too big inline request");
  }
  return Step::kNeedMore;
}

bool RequestParser::SplitInline(std::string_view line) {
  size_t i = 0;
  while (true) {
    while (i < line.size() && IsSpace(line[i])) {
      ++i;
    }
    if (i >= line.size()) {
      return true;
    }
    std::string& arg = NextArgSlot();
    const size_t capacity_before = arg.capacity();
    arg.clear();
    const bool ok = ParseInlineArg(line, &i, &arg);
    TrackCapacity(capacity_before, arg);
    if (!ok) {
      return false;
    }
  }
}

RequestParser::Step RequestParser::ParseMultibulk(std::string_view input, size_t* pos) {
  if (state_ == State::kMultibulkCount) {
    const Step step = ParseMultibulkCount(input, pos);
    if (step != Step::kCommand) {
      return step;  // kCommand here only means "the count is in, arguments follow"
    }
  }
  while (true) {
    if (state_ == State::kMultibulkArgHeader) {
      const Step step = ParseArgHeader(input, pos);
      if (step != Step::kCommand) {
        return step;
      }
    }
    const Step step = ParseBulkData(input, pos);
    if (step != Step::kSkipped) {
      return step;  // kSkipped: one argument done, more follow
    }
  }
}

// Reads `*<n>`. Returns kCommand when arguments follow (the caller continues), kSkipped for a
// count <= 0, or kNeedMore / kError.
RequestParser::Step RequestParser::ParseMultibulkCount(std::string_view input, size_t* pos) {
  std::string_view line;
  const LineStatus status = TakeHeaderLine(input, pos, &line);
  if (status == LineStatus::kNeedMore) {
    return Step::kNeedMore;
  }
  if (status == LineStatus::kTooBig) {
    return Fail("ERR Protocol error: too big mbulk count string");
  }
  const std::optional<int64_t> parsed = ParseInt64Strict(line.substr(1));
  const bool ok = parsed.has_value();
  const int64_t count = parsed.value_or(0);
  line_.clear();
  if (!ok || count > INT_MAX) {
    return Fail("ERR Protocol error: invalid multibulk length");
  }
  if (!limits_.authenticated && count > kUnauthenticatedMultibulkMax) {
    return Fail("ERR Protocol error: unauthenticated multibulk length");
  }
  if (count <= 0) {
    state_ = State::kStart;
    return Step::kSkipped;
  }
  BeginCommand();
  multibulk_remaining_ = count;
  state_ = State::kMultibulkArgHeader;
  return Step::kCommand;
}

// Reads `$<len>`. Returns kCommand when the bulk data follows, or kNeedMore / kError.
RequestParser::Step RequestParser::ParseArgHeader(std::string_view input, size_t* pos) {
  std::string_view line;
  const LineStatus status = TakeHeaderLine(input, pos, &line);
  if (status == LineStatus::kNeedMore) {
    return Step::kNeedMore;
  }
  if (status == LineStatus::kTooBig) {
    return Fail("ERR Protocol error: too big bulk count string");
  }
  // An empty line means the '\r' itself was where '$' should be.
  const char prefix = line.empty() ? '\r' : line[0];
  if (prefix != '$') {
    line_.clear();
    // Valkey formats this with %c into a C string: a NUL byte truncates the message there, and
    // CR/LF become spaces like in every error reply.
    std::string message = "ERR Protocol error: expected '$', got '";
    if (prefix != '\0') {
      message.push_back(prefix == '\r' || prefix == '\n' ? ' ' : prefix);
      message.push_back('\'');
    }
    return Fail(std::move(message));
  }
  const std::optional<int64_t> parsed = ParseInt64Strict(line.substr(1));
  const bool ok = parsed.has_value();
  const int64_t len = parsed.value_or(0);
  line_.clear();
  if (!ok || len < 0 || static_cast<uint64_t>(len) > limits_.proto_max_bulk_len) {
    return Fail("ERR Protocol error: invalid bulk length");
  }
  if (!limits_.authenticated && len > kUnauthenticatedBulkMax) {
    return Fail("ERR Protocol error: unauthenticated bulk length");
  }
  std::string& arg = NextArgSlot();
  const size_t capacity_before = arg.capacity();
  arg.clear();
  TrackCapacity(capacity_before, arg);
  bulk_len_ = len;
  bulk_remaining_ = len;
  bulk_trailer_remaining_ = 2;
  state_ = State::kBulkData;
  return Step::kCommand;
}

// Copies bulk bytes into the current argument, then skips the two bytes after them. Returns
// kSkipped when the argument is done and more follow, kCommand when the command is done, or
// kNeedMore.
RequestParser::Step RequestParser::ParseBulkData(std::string_view input, size_t* pos) {
  std::string& arg = storage_[arg_count_ - 1];
  if (bulk_remaining_ > 0) {
    const size_t take = std::min<size_t>(input.size() - *pos, static_cast<size_t>(bulk_remaining_));
    AppendToArg(&arg, input.substr(*pos, take), static_cast<size_t>(bulk_len_));
    *pos += take;
    bulk_remaining_ -= static_cast<int64_t>(take);
    pending_arg_bytes_ += take;
    if (bulk_remaining_ > 0) {
      return Step::kNeedMore;
    }
  }
  const size_t skip = std::min<size_t>(input.size() - *pos, bulk_trailer_remaining_);
  *pos += skip;
  bulk_trailer_remaining_ -= static_cast<int>(skip);
  if (bulk_trailer_remaining_ > 0) {
    return Step::kNeedMore;
  }
  if (--multibulk_remaining_ > 0) {
    state_ = State::kMultibulkArgHeader;
    return Step::kSkipped;
  }
  state_ = State::kStart;
  FinishCommand();
  return Step::kCommand;
}

// The common case: a whole multibulk command inside `input`, whose arguments become views into
// `input` with nothing copied. It reads exactly what the incremental path would (a header line
// ends at its first '\r', the byte after it and the two bytes after bulk data are skipped
// unchecked) and gives up, consuming nothing, on anything else: a partial command, a count or
// length the incremental path refuses or skips, an unauthenticated client. The incremental path
// then parses the same bytes and gives its verdict.
bool RequestParser::ParseWhole(std::string_view input, size_t* pos) {
  if (!limits_.authenticated) {
    return false;
  }
  size_t at = *pos;
  int64_t count = 0;
  if (!WholeHeader(input, '*', &at, &count) || count <= 0 || count > INT_MAX) {
    return false;
  }
  views_.clear();
  for (int64_t i = 0; i < count; ++i) {
    int64_t len = 0;
    if (!WholeHeader(input, '$', &at, &len) || len < 0 ||
        static_cast<uint64_t>(len) > limits_.proto_max_bulk_len ||
        static_cast<uint64_t>(len) + 2 > input.size() - at) {
      return false;
    }
    views_.emplace_back(input.data() + at, static_cast<size_t>(len));
    at += static_cast<size_t>(len) + 2;
  }
  *pos = at;
  return true;
}

// One `<prefix><integer>\r?` header line wholly inside `input` at *at, within inline_max.
bool RequestParser::WholeHeader(std::string_view input, char prefix, size_t* at, int64_t* value) {
  const size_t available = input.size() - *at;
  if (available < 3 || input[*at] != prefix) {
    return false;
  }
  const char* begin = input.data() + *at;
  // Most headers are a few digits: read them straight, as ParseInt64Strict would.
  if (begin[1] >= '0' && begin[1] <= '9') {
    constexpr size_t kDigitsMax = 18;  // below INT64_MAX whatever the digits
    const size_t limit = std::min(available - 1, kDigitsMax + 1);
    int64_t number = begin[1] - '0';
    size_t i = 2;
    for (; i < limit && begin[i] >= '0' && begin[i] <= '9'; ++i) {
      number = number * 10 + (begin[i] - '0');
    }
    const bool plain = (begin[1] != '0' || i == 2) && i <= kDigitsMax;
    if (plain && i <= limits_.inline_max && i + 1 < available && begin[i] == '\r') {
      *value = number;
      *at += i + 2;
      return true;
    }
  }
  const size_t scan = std::min<uint64_t>(available, limits_.inline_max + 1);
  const char* cr = static_cast<const char*>(std::memchr(begin, '\r', scan));
  if (cr == nullptr) {
    return false;
  }
  const size_t part = static_cast<size_t>(cr - begin);
  if (part > limits_.inline_max || part + 1 >= available) {
    return false;
  }
  const std::optional<int64_t> parsed = ParseInt64Strict(std::string_view(begin + 1, part - 1));
  if (!parsed.has_value()) {
    return false;
  }
  *value = *parsed;
  *at += part + 2;
  return true;
}

RequestParser::LineStatus RequestParser::TakeHeaderLine(std::string_view input, size_t* pos,
                                                        std::string_view* line) {
  if (header_cr_seen_) {
    if (*pos == input.size()) {
      return LineStatus::kNeedMore;
    }
    ++*pos;  // the byte after '\r', skipped unchecked like Valkey
    header_cr_seen_ = false;
    *line = line_;
    return LineStatus::kDone;
  }
  const char* begin = input.data() + *pos;
  const size_t available = input.size() - *pos;
  const size_t room = limits_.inline_max - std::min<uint64_t>(line_.size(), limits_.inline_max);
  const size_t scan = room < available ? room + 1 : available;
  const char* cr = static_cast<const char*>(std::memchr(begin, '\r', scan));
  if (cr == nullptr) {
    if (line_.size() + available > limits_.inline_max) {
      return LineStatus::kTooBig;
    }
    line_.append(begin, available);
    *pos = input.size();
    return LineStatus::kNeedMore;
  }
  const size_t part = static_cast<size_t>(cr - begin);
  if (line_.size() + part > limits_.inline_max) {
    return LineStatus::kTooBig;
  }
  if (line_.empty() && part + 1 < available) {
    *line = std::string_view(begin, part);  // the common case: no copy
    *pos += part + 2;
    return LineStatus::kDone;
  }
  line_.append(begin, part);
  *pos += part + 1;
  header_cr_seen_ = true;
  return TakeHeaderLine(input, pos, line);
}

RequestParser::Step RequestParser::Fail(std::string message) {
  state_ = State::kFailed;
  error_ = std::move(message);
  return Step::kError;
}

void RequestParser::BeginCommand() {
  if (storage_capacity_ > kRetainedBytesMax || storage_.size() > kRetainedArgsMax) {
    ReleaseLargeStorage();
  }
  arg_count_ = 0;
  pending_arg_bytes_ = 0;
  views_.clear();
}

std::string& RequestParser::NextArgSlot() {
  // Slots are added one argument at a time, never reserved from the client's count.
  if (arg_count_ == storage_.size()) {
    storage_.emplace_back();
    storage_capacity_ += storage_.back().capacity();
  }
  return storage_[arg_count_++];
}

void RequestParser::AppendToArg(std::string* arg, std::string_view bytes, size_t total_len) {
  const size_t capacity_before = arg->capacity();
  const size_t needed = arg->size() + bytes.size();
  if (needed > capacity_before) {
    // Grow geometrically, but never past the declared length and never by more than what has
    // arrived: memory follows the bytes received, not the length the client claims.
    arg->reserve(std::max(needed, std::min(total_len, 2 * capacity_before)));
  }
  arg->append(bytes);
  TrackCapacity(capacity_before, *arg);
}

void RequestParser::TrackCapacity(size_t capacity_before, const std::string& arg) {
  storage_capacity_ = storage_capacity_ - capacity_before + arg.capacity();
}

void RequestParser::ReleaseLargeStorage() {
  if (storage_.size() > kRetainedArgsMax) {
    storage_.resize(kRetainedArgsMax);
    storage_.shrink_to_fit();
  }
  if (views_.capacity() > kRetainedArgsMax) {
    std::vector<std::string_view>().swap(views_);
  }
  storage_capacity_ = 0;
  for (std::string& arg : storage_) {
    if (arg.capacity() > kRetainedBytesMax / kRetainedArgsMax) {
      std::string().swap(arg);
    }
    storage_capacity_ += arg.capacity();
  }
}

void RequestParser::FinishCommand() {
  views_.clear();
  for (size_t i = 0; i < arg_count_; ++i) {
    views_.emplace_back(storage_[i]);
  }
  pending_arg_bytes_ = 0;
}

}  // namespace lattice::server
