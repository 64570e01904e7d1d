// lattice-sim: the deterministic geo-simulator. Until the simulator issue lands it only parses
// its pinned command line and says that no simulation exists yet, exiting non-zero so that
// nothing mistakes it for a passing run.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0) {
      std::printf("usage: lattice-sim --seed N --regions R --ops K [--faults list]\n");
      return 0;
    }
  }
  std::fprintf(stderr, "lattice-sim: the simulator is not built yet (see the sim/ issue)\n");
  return 2;
}
