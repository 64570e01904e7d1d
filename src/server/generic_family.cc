// The generic command family. Placeholder registration until the family is written.

#include "server/server.h"

namespace lattice::server {

void RegisterGenericFamily(CommandRegistry& /*registry*/) {}

}  // namespace lattice::server
