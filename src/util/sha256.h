#pragma once
// Valkey's form of an ACL password: the lowercase hex SHA-256 of the cleartext (`#<hash>` rules,
// ACL GETUSER, the ACL file). SHA-256 itself is lattice/common/sha256.h. Pure, thread-safe.

#include <string>
#include <string_view>

namespace lattice::server {

// The 64 lowercase hex characters of Sha256(data).
std::string Sha256Hex(std::string_view data);

}  // namespace lattice::server
