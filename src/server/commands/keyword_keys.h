#pragma once
// The cluster-mode check of a destination key that a command names after a keyword (SORT ...
// STORE, GEORADIUS ... STORE): the command table's key specs cannot express it, so routing saw
// only the source key. Shared by sort_family.cc and geo_family.cc; stateless.

#include <string_view>

#include "server/server.h"

namespace lattice::server {

// True when `destination` may be written with `source`: always outside cluster mode, else when
// both hash to one slot. False after replying CROSSSLOT, as Valkey's routing would.
bool DestinationInSourceSlot(CommandContext& ctx, std::string_view source,
                             std::string_view destination);

}  // namespace lattice::server
