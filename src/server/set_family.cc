// The set command family. Placeholder registration until the family is written.

#include "server/server.h"

namespace lattice::server {

void RegisterSetFamily(CommandRegistry& /*registry*/) {}

}  // namespace lattice::server
