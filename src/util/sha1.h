#pragma once
// SHA-1 (FIPS 180-4), used only where Valkey uses it for non-cryptographic fingerprints: DEBUG
// DIGEST and DEBUG DIGEST-VALUE mix SHA-1 hashes of keys and values. Not for security. Pure,
// thread-safe.

#include <array>
#include <cstdint>
#include <string_view>

namespace lattice::server {

using Sha1Digest = std::array<uint8_t, 20>;

Sha1Digest Sha1(std::string_view data);

}  // namespace lattice::server
