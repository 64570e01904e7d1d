// The string command family. Placeholder registration until the family is written.

#include "server/server.h"

namespace lattice::server {

void RegisterStringFamily(CommandRegistry& /*registry*/) {}

}  // namespace lattice::server
