// The zset command family. Placeholder registration until the family is written.

#include "server/server.h"

namespace lattice::server {

void RegisterZSetFamily(CommandRegistry& /*registry*/) {}

}  // namespace lattice::server
