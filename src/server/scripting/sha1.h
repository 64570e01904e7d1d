#pragma once
// SHA-1 of a byte string as 40 lower-case hex characters: the name of a script in the script
// cache (EVALSHA, SCRIPT LOAD) and redis.sha1hex(). Not used for security. Pure.

#include <string>
#include <string_view>

namespace lattice::server {

std::string Sha1Hex(std::string_view data);

}  // namespace lattice::server
