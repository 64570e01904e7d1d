// lattice-server: loads the configuration (a config file as the first argument, then --name
// value options), sets up logging, binds the client port and runs the event loop until SHUTDOWN
// or SIGINT/SIGTERM.

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net/asio.h"
#include "net/client_listener.h"
#include "net/cluster_bus.h"
#include "net/load_slices.h"
#include "net/node_timer.h"
#include "net/outbound_calls.h"
#include "net/peer_links.h"
#include "net/replica_client.h"
#include "net/tls.h"
#include "node/node.h"
#include "server/info.h"
#include "server/rdb_import.h"
#include "server/server.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"
#include "store/file_storage.h"

namespace {

using lattice::Result;
using lattice::server::Config;

constexpr const char* kUsage =
    "Usage: lattice-server [/path/to/lattice.conf] [--name value ...]\n"
    "       lattice-server -v or --version\n"
    "       lattice-server -h or --help\n"
    "\n"
    "The config file takes valkey.conf's syntax and directives; every directive can also be\n"
    "given as --name value (options win over the file). The directives of a region:\n"
    "  --port 6379                 the client port (0: none)\n"
    "  --bind 127.0.0.1            the client addresses\n"
    "  --dir ./                    data directory (must exist): replica id, op log, snapshots\n"
    "  --region NAME               this region's name, shown to operators\n"
    "  --shard-id ID               regions replicate only within one shard id\n"
    "  --replication-port N        where peers connect (default: port + 10000)\n"
    "  --peer HOST:PORT            another region's replication port (repeatable)\n"
    "  --appendfsync everysec      when the op log is synced: always, everysec or no\n"
    "  --cluster-enabled yes       cluster mode: shards split the 16384 slots\n"
    "  --tls-port, --tls-cert-file, --tls-key-file, --tls-ca-cert-file, --tls-replication yes\n"
    "  --logfile FILE, --loglevel notice\n"
    "  --reset-replica-id          serve the data dir under a new replica id (a copy of another\n"
    "                              region's dir, a restored backup: docs/operations.md)\n"
    "  --import-rdb FILE           load a Valkey/Redis RDB file into this (empty) region before\n"
    "                              serving, as local writes that replicate (docs/operations.md)\n"
    "\n"
    "Examples:\n"
    "  lattice-server --port 7001 --dir data/7001 --region a --peer 127.0.0.1:17002\n"
    "  lattice-server /etc/lattice/lattice.conf --loglevel verbose\n"
    "\n"
    "README.md and docs/operations.md describe every directive and how to run three regions.\n";

constexpr std::string_view kResetReplicaId = "--reset-replica-id";
constexpr std::string_view kImportRdb = "--import-rdb";

// --import-rdb FILE: a process option, not a directive; taken out of the arguments.
std::string TakeImportRdb(std::vector<std::string_view>& args) {
  std::string file;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == kImportRdb) {
      file = std::string(args[i + 1]);
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i),
                 args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      break;
    }
  }
  return file;
}

// Reads `path` for --import-rdb: its bytes, or empty (logged) when it can't be read or the
// region is not empty.
std::optional<std::string> ReadImportFile(const std::string& path, lattice::server::Node& node) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    spdlog::critical("--import-rdb: can't open '{}'", path);
    return std::nullopt;
  }
  if (Result<void> empty = lattice::server::RequireEmpty(node.server()); !empty.ok()) {
    spdlog::critical("--import-rdb '{}' refused: {}", path, empty.error().message);
    return std::nullopt;
  }
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Loads --import-rdb's file in slices while the region serves (-LOADING meanwhile,
// net/load_slices.h); a file that does not read stops the process with `failed` set.
void StartImport(const std::string& path, std::string bytes, lattice::server::Node& node,
                 std::function<void()> failed) {
  spdlog::info("--import-rdb '{}': loading {} bytes", path, bytes.size());
  auto load = std::make_unique<lattice::server::RdbLoad>(node.server(), std::move(bytes),
                                                         lattice::server::RdbImportOptions{});
  node.server().loading().Start(
      std::move(load),
      [path, failed = std::move(failed)](const Result<lattice::server::RdbImportSummary>& summary) {
        if (!summary.ok()) {
          spdlog::critical("--import-rdb '{}' refused: {}", path, summary.error().message);
          failed();
          return;
        }
        spdlog::info("--import-rdb '{}':", path);
        for (const std::string& line : lattice::server::DescribeImport(*summary)) {
          spdlog::info("  {}", line);
        }
      });
}

Result<Config> LoadConfig(int argc, char** argv, std::string* import_rdb) {
  Config config;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  std::erase(args, kResetReplicaId);  // a process option, not a directive
  *import_rdb = TakeImportRdb(args);
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

// A fresh replica id for a data dir's first start: 64 random bits, never kNoReplica.
lattice::ReplicaId FreshReplicaId() {
  std::random_device device;
  lattice::ReplicaId id = 0;
  while (id == lattice::kNoReplica) {
    id = (static_cast<uint64_t>(device()) << 32) ^ device();
  }
  return id;
}

// A fresh cluster node id: 40 random hex characters, as Valkey's.
std::string FreshNodeId() {
  std::random_device device;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 40; ++i) id.push_back(kHex[device() & 15]);
  return id;
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
  auto logger =
      file.empty() ? spdlog::stdout_logger_st("lattice") : spdlog::basic_logger_st("lattice", file);
  logger->set_pattern("%P:M %d %b %Y %H:%M:%S.%e %^%L%$ %v");
  logger->set_level(LogLevel(config.loglevel()));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// SIGINT and SIGTERM stop the server within a second, whatever it is doing. They are blocked in
// every thread and taken by one thread of their own (sigwait), which posts the shutdown to the
// event loop (the clean path: the loop ends its turn, the op log is synced) and then waits: if
// the process has not exited kStopDeadline after the signal (the loop is in a long handler),
// it exits at once. That is no worse than kill -9, which the op log is built to survive: under
// appendfsync always every acknowledged write is synced already, under everysec at most the
// last second is lost, as after a crash.
class StopSignals {
 public:
  static constexpr std::chrono::milliseconds kStopDeadline{900};

  // Blocks the signals in this thread, so in every thread started after it.
  StopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  // `stop` runs on the event loop at the first signal.
  void Start(lattice::net::asio::io_context& io, std::function<void()> stop) {
    std::thread([this, &io, stop = std::move(stop)] {
      int signal = 0;
      if (sigwait(&set_, &signal) != 0 || exiting_) return;
      lattice::net::asio::post(io, [signal, stop] {
        spdlog::warn("Received {} scheduling shutdown...", signal == SIGINT ? "SIGINT" : "SIGTERM");
        stop();
      });
      std::unique_lock lock(mutex_);
      if (!exited_.wait_for(lock, kStopDeadline, [this] { return exiting_.load(); })) {
        constexpr char kMessage[] =
            "Shutdown did not complete within 900 ms of the signal: exiting now\n";
        [[maybe_unused]] const ssize_t written = write(2, kMessage, sizeof(kMessage) - 1);
        std::_Exit(1);
      }
    }).detach();
  }
  // The op log is synced: nothing more is worth waiting for.
  void Exiting() {
    std::lock_guard lock(mutex_);
    exiting_ = true;
    exited_.notify_all();
  }

 private:
  sigset_t set_;
  std::mutex mutex_;
  std::condition_variable exited_;
  std::atomic<bool> exiting_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::string(argv[1]) == "--version" || std::string(argv[1]) == "-v")) {
    std::printf("lattice-server v=%s\n", std::string(lattice::server::kLatticeVersion).c_str());
    return 0;
  }
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::string import_rdb;
  Result<Config> config = LoadConfig(argc, argv, &import_rdb);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return 1;
  }
  SetUpLogging(*config);
  for (const std::string& name : config->TakeNotApplicableNotices()) {
    spdlog::info("Config '{}' is accepted for compatibility but does not apply to Lattice", name);
  }
  std::signal(SIGPIPE, SIG_IGN);
  static StopSignals stop_signals;  // before any thread starts; outlives the detached one
  lattice::net::Tls tls;
  if (lattice::net::Tls::Wanted(*config)) {
    if (Result<void> loaded = tls.Reload(*config); !loaded.ok()) {
      spdlog::critical("{}", loaded.error().message);
      spdlog::critical("Failed to configure TLS. Check logs for more info.");
      return 1;
    }
  }
  if (config->port() == 0 && config->tls_port() == 0) {
    spdlog::critical("Configured to not listen anywhere, exiting.");
    return 1;
  }

  auto storage = lattice::server::FileStorage::Open(config->dir());
  if (!storage.ok()) {
    spdlog::critical("Can't open the data directory '{}': {}", config->dir(),
                     storage.error().message);
    return 1;
  }
  // A copied or restored data dir must not keep the replica id it was taken from: two live
  // replicas with one id would reuse each other's sequence numbers. Its data stays (the ops of
  // the old id are then another replica's, as if received from it).
  if (std::find(argv + 1, argv + argc, kResetReplicaId) != argv + argc) {
    if (Result<void> removed = (*storage)->Remove("replica-id"); !removed.ok()) {
      spdlog::warn("--reset-replica-id: {}", removed.error().message);
    }
    spdlog::warn(
        "Replica id reset (--reset-replica-id): the data in '{}' is served by a new "
        "replica id",
        config->dir());
  }
  // Not concurrency hint 1: its one-thread mode keeps a running handler's posts in a private queue
  // that a nested poll (a busy script, net/busy_period.h) runs without moving their work count,
  // and the count then drifts down until the context stops.
  lattice::net::asio::io_context io;
  lattice::server::SystemClock clock;
  lattice::server::ForkChildProcesses children;  // checkpoints off the event loop; outlives node
  lattice::net::PeerLinks links(io);
  std::unique_ptr<lattice::net::ClusterBusLinks> cluster_bus;
  if (config->cluster_enabled()) cluster_bus = std::make_unique<lattice::net::ClusterBusLinks>(io);
  lattice::server::NodeOptions options{.config = std::move(*config),
                                       .fresh_replica_id = FreshReplicaId(),
                                       .fresh_node_id = FreshNodeId()};
  lattice::server::NodeSeams seams{.clock = clock,
                                   .storage = storage->get(),
                                   .transport = &links,
                                   .peers = &links,
                                   .bus = cluster_bus.get(),
                                   .children = &children};
  Result<std::unique_ptr<lattice::server::Node>> node =
      lattice::server::Node::Open(std::move(options), seams);
  if (!node.ok()) {
    spdlog::critical("{}", node.error().message);
    return 1;
  }
  lattice::server::Server& server = (*node)->server();
  std::optional<std::string> import_bytes;
  if (!import_rdb.empty() && !(import_bytes = ReadImportFile(import_rdb, **node))) return 1;
  links.Attach(**node);
  links.set_tls(&tls);
  if (cluster_bus) {
    cluster_bus->Attach(**node);
    spdlog::info("Cluster mode: node {} of shard '{}'", (*node)->cluster()->myid(),
                 (*node)->cluster()->myself().shard);
  }
  server.config().set_on_change([&server](std::string_view name) {
    server.ApplyConfig(name);
    if (name == "loglevel") {
      spdlog::default_logger()->set_level(LogLevel(server.config().loglevel()));
    }
  });
  server.config().set_on_apply([&server, &tls](std::string_view name) {
    return tls.ApplyConfigChange(server.config(), name);
  });
  lattice::net::LoopTurn turn(io, **node);  // before the links and listeners can take input
  lattice::net::ClientListener listener(io, **node, turn);
  lattice::net::NodeTimer timer(io, **node);
  lattice::net::ReplicaClient primary_link(io, **node);  // REPLICAOF (server/replica_of.h)
  primary_link.set_tls(&tls);
  server.replica_of().set_link(&primary_link);
  lattice::net::OutboundCalls outbound(io, **node);  // MIGRATE to other servers
  server.set_outbound(&outbound);
  lattice::net::LoadSlices load_slices(io, **node);  // --import-rdb, full resyncs
  int exit_status = 0;
  auto stop = [&] {
    timer.Stop();
    primary_link.Stop();
    outbound.Stop();
    if (cluster_bus) cluster_bus->Stop();
    listener.Stop();
    links.Stop();
    io.stop();
  };
  server.set_shutdown_hook([&] { lattice::net::asio::post(io, stop); });
  // Signals are routed before the port opens, so a SIGTERM sent as soon as the node accepts
  // connections is already a clean shutdown.
  stop_signals.Start(io, stop);
  if (Result<void> listening = listener.Listen(server.config().bind(), server.config().port());
      !listening.ok()) {
    spdlog::critical("{}", listening.error().message);
    return 1;
  }
  if (server.config().tls_port() != 0) {
    if (Result<void> listening =
            listener.ListenTls(server.config().bind(), server.config().tls_port(), &tls);
        !listening.ok()) {
      spdlog::critical("{}", listening.error().message);
      return 1;
    }
  }
  if (Result<void> listening =
          links.Listen(server.config().bind(), server.config().replication_port());
      !listening.ok()) {
    spdlog::critical("{}", listening.error().message);
    return 1;
  }
  links.Start(server.config().peers());
  timer.Start();
  if (import_bytes) {
    StartImport(import_rdb, std::move(*import_bytes), **node, [&] {
      exit_status = 1;
      stop();
    });
  }
  spdlog::info("Lattice {} started, region '{}', replica {}, shard '{}', pid {}",
               lattice::server::kLatticeVersion, server.config().region(),
               lattice::server::ReplicaIdText((*node)->replica()), server.config().shard_id(),
               static_cast<int>(getpid()));
  spdlog::info("Ready to accept connections tcp on port {}, replication on port {}{}",
               listener.bound_port(), links.bound_port(),
               server.config().tls_replication() ? " (TLS)" : "");
  if (listener.bound_tls_port() != 0) {
    spdlog::info("Ready to accept connections tls on port {}", listener.bound_tls_port());
  }
  io.run();
  if (Result<void> closed = (*node)->Close(); !closed.ok()) {
    spdlog::warn("Syncing the op log at exit: {}", closed.error().message);
  }
  stop_signals.Exiting();
  spdlog::info("Lattice is now ready to exit, bye bye...");
  return exit_status;
}
