#include "resp/errors.h"

namespace lattice::server {

std::string ErrorReply(const Error& error) {
  switch (error.code) {
    case ErrorCode::kOther:
      return error.message;
    case ErrorCode::kWrongType:
      return std::string(errors::kWrongType);
    case ErrorCode::kNotInteger:
      return std::string(errors::kNotInteger);
    case ErrorCode::kNotFloat:
      return std::string(errors::kNotFloat);
    case ErrorCode::kNanOrInfinity:
      return "ERR increment would produce NaN or Infinity";
    case ErrorCode::kNanScore:
      return "ERR resulting score is not a number (NaN)";
    case ErrorCode::kOverflow:
      return std::string(errors::kOverflow);
    case ErrorCode::kNoSuchKey:
      return "ERR no such key";
    case ErrorCode::kNoSuchField:
      return "ERR no such field";
    case ErrorCode::kSyntax:
      return std::string(errors::kSyntax);
    case ErrorCode::kInvalid:
    case ErrorCode::kIo:
    case ErrorCode::kCorrupt:
      break;
  }
  return "ERR " + error.message;
}

namespace errors {

std::string WrongArity(std::string_view full_name) {
  return "ERR wrong number of arguments for '" + std::string(full_name) + "' command";
}

// Valkey quotes up to 128 bytes of the name and of the arguments, and a reply never carries a
// newline (the ReplyBuilder replaces CR/LF).
std::string UnknownCommand(ArgList args) {
  std::string quoted_args;
  for (size_t i = 1; i < args.size() && quoted_args.size() < 128; ++i) {
    const size_t room = 128 - quoted_args.size();
    quoted_args += "'" + std::string(args[i].substr(0, room)) + "' ";
  }
  return "ERR unknown command '" + std::string(args[0].substr(0, 128)) +
         "', with args beginning with: " + quoted_args;
}

std::string UnknownSubcommand(std::string_view subcommand, std::string_view container) {
  std::string upper(container);
  for (char& c : upper) {
    c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  return "ERR unknown subcommand '" + std::string(subcommand.substr(0, 128)) + "'. Try " + upper +
         " HELP.";
}

}  // namespace errors

}  // namespace lattice::server
