// lattice-sim: the deterministic geo-simulator's command line (docs/simulation.md).
//
//   lattice-sim --seed N [--regions R] [--ops K] [--faults list] [--mutation NAME] [--verbose]
//   lattice-sim --seeds A..B ...           a range; stops at the first failure
//   lattice-sim --seeds A..B --mutation NAME --expect-failure
//                                          the mutation check: exit 0 once some seed fails
//
// Exit status: 0 when every check held (or, with --expect-failure, when a failure was found),
// 1 otherwise, 2 on a bad command line. A failure prints the seed, the check, what diverged,
// the command line that replays it, and the last events.

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fmt/format.h"
#include "lattice/sim/simulator.h"

namespace {

using lattice::sim::SimOptions;

struct Args {
  SimOptions options;
  uint64_t first = 1;
  uint64_t last = 1;
  std::string mutation;
  bool expect_failure = false;
};

uint64_t g_running_seed = 0;

void OnAbort(int) {
  // An assertion fired in production code: name the seed and show what led there.
  // The seed first: the trace allocates, and an abort from malloc means a corrupt heap.
  std::fprintf(stderr, "\nlattice-sim: ASSERTION (or abort) in seed %llu\n",
               static_cast<unsigned long long>(g_running_seed));
  std::fflush(stderr);
  std::fprintf(stderr, "last events:\n%s", lattice::sim::CurrentTrace(40).c_str());
  std::fflush(stderr);
  std::signal(SIGABRT, SIG_DFL);
  std::abort();
}

std::string ReplayLine(const Args& args, uint64_t seed) {
  std::string line = fmt::format(
      "lattice-sim --seed {}{} --regions {} --ops {} --faults {}", seed,
      args.options.shards > 1 ? fmt::format(" --shards {}", args.options.shards) : std::string(),
      args.options.regions, args.options.ops, lattice::sim::FaultsText(args.options.faults));
  if (!args.mutation.empty()) line += " --mutation " + args.mutation;
  if (args.options.known_bugs) line += " --known-bugs";
  return line;
}

bool ParseRange(const std::string& text, uint64_t* first, uint64_t* last) {
  const size_t dots = text.find("..");
  if (dots == std::string::npos) return false;
  char* end = nullptr;
  *first = std::strtoull(text.c_str(), &end, 10);
  *last = std::strtoull(text.c_str() + dots + 2, &end, 10);
  return *first <= *last;
}

bool Parse(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    const std::string value = has_value ? argv[i + 1] : "";
    if (flag == "--verbose") {
      args.options.verbose = true;
    } else if (flag == "--known-bugs") {
      args.options.known_bugs = true;
    } else if (flag == "--expect-failure") {
      args.expect_failure = true;
    } else if (!has_value) {
      return false;
    } else if (flag == "--seed") {
      args.first = args.last = std::strtoull(value.c_str(), nullptr, 10);
      ++i;
    } else if (flag == "--seeds") {
      if (!ParseRange(value, &args.first, &args.last)) return false;
      ++i;
    } else if (flag == "--shards") {
      args.options.shards = std::atoi(value.c_str());
      ++i;
    } else if (flag == "--regions") {
      args.options.regions = std::atoi(value.c_str());
      ++i;
    } else if (flag == "--ops") {
      args.options.ops = std::atoi(value.c_str());
      ++i;
    } else if (flag == "--watch") {
      args.options.watch_key = value;
      ++i;
    } else if (flag == "--trace") {
      args.options.trace_lines = static_cast<size_t>(std::atoi(value.c_str()));
      ++i;
    } else if (flag == "--faults") {
      std::string bad;
      auto faults = lattice::sim::ParseFaults(value, &bad);
      if (!faults.has_value()) {
        std::fprintf(stderr, "lattice-sim: unknown fault '%s'\n", bad.c_str());
        return false;
      }
      args.options.faults = *faults;
      ++i;
    } else if (flag == "--mutation") {
      auto mutation = lattice::sim::ParseMutation(value);
      if (!mutation.has_value()) {
        std::fprintf(stderr, "lattice-sim: unknown mutation '%s'\n", value.c_str());
        return false;
      }
      args.mutation = value;
      lattice::g_injected_mutation = *mutation;
      ++i;
    } else {
      return false;
    }
  }
  return args.options.regions >= 2 && args.options.regions <= 8 && args.options.ops >= 0 &&
         args.options.shards >= 1 && args.options.shards <= 4;
}

// Runs one seed; returns whether every check held.
bool RunSeed(const Args& args, uint64_t seed) {
  g_running_seed = seed;
  SimOptions options = args.options;
  options.seed = seed;
  const lattice::sim::SimResult result = lattice::sim::RunSimulation(options);
  if (!result.trace.empty() && (options.verbose || !result.ok)) {
    std::printf("---- last events of seed %llu ----\n%s", static_cast<unsigned long long>(seed),
                result.trace.c_str());
  }
  if (!result.ok) {
    std::printf("FAILED seed %llu: check '%s': %s\n  replay: %s\n",
                static_cast<unsigned long long>(seed), result.check.c_str(), result.details.c_str(),
                ReplayLine(args, seed).c_str());
  } else if (options.verbose || args.first == args.last) {
    std::printf(
        "seed %llu ok: %llu commands (%llu acknowledged), %llu chunks, %llu crashes, "
        "%llu snapshots installed, %llu purges, %lld ms simulated\n",
        static_cast<unsigned long long>(seed), static_cast<unsigned long long>(result.commands),
        static_cast<unsigned long long>(result.acknowledged),
        static_cast<unsigned long long>(result.messages),
        static_cast<unsigned long long>(result.crashes),
        static_cast<unsigned long long>(result.snapshots),
        static_cast<unsigned long long>(result.purges), static_cast<long long>(result.sim_ms));
  }
  std::fflush(stdout);
  return result.ok;
}

// The mutation check runs each seed in a child process: an assertion that the injected bug
// trips counts as the simulator finding it.
bool RunSeedIsolated(const Args& args, uint64_t seed) {
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    std::signal(SIGABRT, SIG_DFL);
    std::fclose(stderr);
    std::_Exit(RunSeed(args, seed) ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (WIFSIGNALED(status)) {
    std::printf("FAILED seed %llu: an assertion fired\n  replay: %s\n",
                static_cast<unsigned long long>(seed), ReplayLine(args, seed).c_str());
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!Parse(argc, argv, args)) {
    std::fprintf(
        stderr,
        "usage: lattice-sim (--seed N | --seeds A..B) [--regions 2-8] [--shards 1-4] [--ops K]\n"
        "         [--faults all|none|latency,partition,loss,duplicate,reorder,clock,"
        "crash,disk]\n         [--mutation NAME [--expect-failure]] [--trace LINES] "
        "[--verbose]\n         [--known-bugs] [--watch KEY]\n");
    return 2;
  }
  std::signal(SIGABRT, OnAbort);
  for (uint64_t seed = args.first; seed <= args.last; ++seed) {
    const bool ok = args.expect_failure ? RunSeedIsolated(args, seed) : RunSeed(args, seed);
    if (!ok) {
      if (args.expect_failure) {
        std::printf("mutation %s found by seed %llu\n", args.mutation.c_str(),
                    static_cast<unsigned long long>(seed));
      }
      return args.expect_failure ? 0 : 1;
    }
  }
  if (args.expect_failure) {
    std::printf("mutation %s NOT found in seeds %llu..%llu\n", args.mutation.c_str(),
                static_cast<unsigned long long>(args.first),
                static_cast<unsigned long long>(args.last));
    return 1;
  }
  std::printf("%llu seeds ok (%s)\n", static_cast<unsigned long long>(args.last - args.first + 1),
              lattice::sim::FaultsText(args.options.faults).c_str());
  return 0;
}
