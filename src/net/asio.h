#pragma once
// The one way src/net/ includes Boost.Asio. Boost 1.74's asio/awaitable.hpp uses std::exchange
// without including <utility>, which fails under GCC 12, so <utility> comes first.

// (clang-format would sort it after Boost again.)
// clang-format off
#include <utility>
#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
// clang-format on

namespace lattice::net {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
}  // namespace lattice::net
