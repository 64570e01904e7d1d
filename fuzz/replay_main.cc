// The main of a fuzz target's regression replay (the normal build, no libFuzzer): runs the
// target's LLVMFuzzerTestOneInput once on every file named on the command line or found in a
// directory named there (sorted, hidden files skipped), so ctest replays the seed corpus and
// every input that once crashed. A crash, an assertion or a failed check in the target aborts
// the process and fails the test. A missing directory holds no inputs (git keeps no empty
// folder), but a run that replays nothing at all fails, so a wrong path cannot pass silently.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> InputsUnder(const fs::path& path) {
  std::vector<fs::path> inputs;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    inputs.push_back(path);
  } else if (fs::is_directory(path, ec)) {
    for (const fs::directory_entry& entry : fs::directory_iterator(path, ec)) {
      if (entry.is_regular_file() && !entry.path().filename().string().starts_with(".")) {
        inputs.push_back(entry.path());
      }
    }
  }
  std::sort(inputs.begin(), inputs.end());
  return inputs;
}

void Replay(const fs::path& input) {
  std::ifstream file(input, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // A copy in a buffer of its own exact size, so reading past the end is caught as it would be
  // under libFuzzer (where ASan guards the input).
  std::vector<uint8_t> exact(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(exact.data(), exact.size());
}

}  // namespace

int main(int argc, char** argv) {
  size_t total = 0;
  for (int i = 1; i < argc; ++i) {
    const std::vector<fs::path> inputs = InputsUnder(argv[i]);
    for (const fs::path& input : inputs) {
      Replay(input);
    }
    std::printf("replayed %zu inputs from %s\n", inputs.size(), argv[i]);
    total += inputs.size();
  }
  if (total == 0) {
    std::fprintf(stderr, "no inputs replayed: usage %s <file or directory>...\n", argv[0]);
    return 1;
  }
  std::printf("%zu inputs replayed, no failure\n", total);
  return 0;
}
