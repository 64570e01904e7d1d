#pragma once
// SHA-1 (FIPS 180-4), used only where Valkey uses it for non-cryptographic fingerprints: DEBUG
// DIGEST and DEBUG DIGEST-VALUE mix SHA-1 hashes of keys and values, and a script's name in the
// script cache (EVALSHA, SCRIPT LOAD, redis.sha1hex) is its SHA-1 in hex. Not for security.
// Pure, thread-safe.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace lattice::server {

using Sha1Digest = std::array<uint8_t, 20>;

Sha1Digest Sha1(std::string_view data);

// 40 lower-case hex characters.
std::string Sha1Hex(std::string_view data);

}  // namespace lattice::server
