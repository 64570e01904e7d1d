#include "net/endpoint.h"

#include <cctype>

namespace lattice::net {
namespace {

struct BindAddress {
  asio::ip::address address;
  bool optional = false;
};

Result<BindAddress> ParseBind(std::string_view text) {
  BindAddress bind;
  if (!text.empty() && text[0] == '-') {
    bind.optional = true;
    text.remove_prefix(1);
  }
  if (text == "*") {
    bind.address = asio::ip::address_v4::any();
    return bind;
  }
  if (text == "::*") {
    bind.address = asio::ip::address_v6::any();
    return bind;
  }
  boost::system::error_code ec;
  bind.address = asio::ip::make_address(std::string(text), ec);
  if (ec) {
    return Unexpected("Invalid bind address '" + std::string(text) + "'");
  }
  return bind;
}

}  // namespace

std::string EndpointText(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  std::string text = address.is_v4() || !address.to_v6().is_v4_mapped()
                         ? address.to_string()
                         : address.to_v6().to_v4().to_string();
  return text + ":" + std::to_string(endpoint.port());
}

Result<std::vector<std::unique_ptr<tcp::acceptor>>> OpenAcceptors(
    asio::io_context& io, const std::vector<std::string>& bind, int port, int backlog,
    std::string_view what) {
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  int bound_port = port;
  for (const std::string& text : bind) {
    Result<BindAddress> parsed = ParseBind(text);
    if (!parsed.ok()) {
      return Unexpected(parsed.error());
    }
    auto acceptor = std::make_unique<tcp::acceptor>(io);
    boost::system::error_code ec;
    const tcp::endpoint endpoint(parsed->address, static_cast<uint16_t>(bound_port));
    acceptor->open(endpoint.protocol(), ec);
    if (!ec && endpoint.address().is_v6()) {
      acceptor->set_option(asio::ip::v6_only(true), ec);
    }
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(backlog, ec);
    if (ec) {
      if (parsed->optional) {
        continue;
      }
      std::string upper(what);
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return Unexpected("Could not create server " + upper + " listening socket " + text + ":" +
                        std::to_string(port) + ": " + ec.message());
    }
    bound_port = acceptor->local_endpoint().port();
    acceptors.push_back(std::move(acceptor));
  }
  if (acceptors.empty()) {
    return Unexpected("Failed listening on port " + std::to_string(port) + " (" +
                      std::string(what) + "), aborting.");
  }
  return acceptors;
}

}  // namespace lattice::net
