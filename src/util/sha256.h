#pragma once
// SHA-256 (FIPS 180-4), for ACL passwords: Valkey stores and shows a user's passwords as the
// lowercase hex SHA-256 of the cleartext (`#<hash>` rules, ACL GETUSER, the ACL file). Written
// here because only src/net/ may include OpenSSL. Pure, thread-safe.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace lattice::server {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::string_view data);

// The 64 lowercase hex characters of Sha256(data).
std::string Sha256Hex(std::string_view data);

}  // namespace lattice::server
