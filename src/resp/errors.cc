#include "resp/errors.h"

namespace lattice::server {

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
