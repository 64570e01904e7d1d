// The hash command family. Placeholder registration until the family is written.

#include "server/server.h"

namespace lattice::server {

void RegisterHashFamily(CommandRegistry& /*registry*/) {}

}  // namespace lattice::server
