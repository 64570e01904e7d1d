// lattice-server: loads the configuration (a config file as the first argument, then --name
// value options), sets up logging, binds the client port and runs the event loop until SHUTDOWN
// or SIGINT/SIGTERM.

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "net/asio.h"
#include "net/client_listener.h"
#include "server/info.h"
#include "server/server.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace {

using lattice::Result;
using lattice::server::Config;

Result<Config> LoadConfig(int argc, char** argv) {
  Config config;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (!args.empty() && !args[0].starts_with("--")) {
    if (Result<void> loaded = config.LoadFile(std::string(args[0])); !loaded.ok()) {
      return lattice::Unexpected(loaded.error());
    }
    args.erase(args.begin());
  }
  if (Result<void> applied = config.ApplyArgs(args); !applied.ok()) {
    return lattice::Unexpected(applied.error());
  }
  return config;
}

spdlog::level::level_enum LogLevel(const std::string& name) {
  if (name == "debug") return spdlog::level::debug;
  if (name == "verbose") return spdlog::level::debug;
  if (name == "warning") return spdlog::level::warn;
  if (name == "nothing") return spdlog::level::off;
  return spdlog::level::info;
}

void SetUpLogging(const Config& config) {
  const std::string file = config.logfile();
  auto logger = file.empty() ? spdlog::stdout_logger_st("lattice")
                             : spdlog::basic_logger_st("lattice", file);
  logger->set_pattern("%P:M %d %b %Y %H:%M:%S.%e %^%L%$ %v");
  logger->set_level(LogLevel(config.loglevel()));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::string(argv[1]) == "--version" || std::string(argv[1]) == "-v")) {
    std::printf("lattice-server v=%s\n", std::string(lattice::server::kLatticeVersion).c_str());
    return 0;
  }
  Result<Config> config = LoadConfig(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return 1;
  }
  SetUpLogging(*config);
  for (const std::string& name : config->TakeNotApplicableNotices()) {
    spdlog::info("Config '{}' is accepted for compatibility but does not apply to Lattice", name);
  }
  std::error_code fs_error;
  std::filesystem::create_directories(config->dir(), fs_error);
  if (fs_error) {
    spdlog::critical("Can't create the data directory '{}': {}", config->dir(), fs_error.message());
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);

  lattice::net::asio::io_context io(1);
  lattice::server::SystemClock clock;
  lattice::server::Server server(std::move(*config), clock);
  server.config().set_on_change([&server](std::string_view name) {
    if (name == "loglevel") {
      spdlog::default_logger()->set_level(LogLevel(server.config().loglevel()));
    }
  });
  lattice::net::ClientListener listener(io, server);
  auto stop = [&] {
    listener.Stop();
    io.stop();
  };
  server.set_shutdown_hook([&] { lattice::net::asio::post(io, stop); });
  // Signals are routed before the port opens, so a SIGTERM sent as soon as the node accepts
  // connections is already a clean shutdown.
  lattice::net::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::warn("Received {} scheduling shutdown...", signal == SIGINT ? "SIGINT" : "SIGTERM");
    stop();
  });
  if (Result<void> listening = listener.Listen(server.config().bind(), server.config().port());
      !listening.ok()) {
    spdlog::critical("{}", listening.error().message);
    return 1;
  }
  spdlog::info("Lattice {} started, region '{}', pid {}", lattice::server::kLatticeVersion,
               server.config().region(), static_cast<int>(getpid()));
  spdlog::info("Ready to accept connections tcp on port {}", listener.bound_port());
  io.run();
  spdlog::info("Lattice is now ready to exit, bye bye...");
  return 0;
}
