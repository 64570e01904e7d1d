#include "server/scripting/function_payload.h"

namespace lattice::server {
namespace {

constexpr uint8_t kOpcodeFunction2 = 245;
constexpr uint8_t kOpcodeFunctionPreGa = 246;
// The largest library a payload may declare (Valkey's proto-max-bulk-len default).
constexpr uint64_t kMaxLibrary = uint64_t{512} << 20;

}  // namespace

std::string EncodeFunctionPayload(const std::vector<std::string>& codes) {
  std::string out;
  for (const std::string& code : codes) {
    out.push_back(static_cast<char>(kOpcodeFunction2));
    RdbPutString(out, code);
  }
  return RdbSealPayload(std::move(out), kRdbVersion);
}

Result<std::vector<std::string>> DecodeFunctionPayload(std::string_view payload, bool relaxed) {
  Result<std::string_view> body = RdbOpenPayload(payload, relaxed);
  if (!body.ok()) return Unexpected(body.error().message);
  std::vector<std::string> codes;
  RdbReader reader(*body);
  while (!reader.done()) {
    uint8_t type = 0;
    (void)reader.Byte(&type);
    if (type == kOpcodeFunctionPreGa) {
      return Unexpected(std::string("Pre-GA function format not supported"));
    }
    if (type != kOpcodeFunction2) return Unexpected(std::string("given type is not a function"));
    std::string code;
    if (!reader.String(&code, kMaxLibrary)) {
      return Unexpected(std::string("Failed loading library payload"));
    }
    codes.push_back(std::move(code));
  }
  return codes;
}

}  // namespace lattice::server
