// Replays fuzz inputs through a target's LLVMFuzzerTestOneInput without libFuzzer, so the
// seed corpus and every saved crash/slow input run as ordinary regression tests with any
// compiler. Usage: fuzz_X_replay FILE|DIR...  (a directory's regular files, in name order,
// skipping dot files). Fails when no input was found or an input took too long
// (LOTO_FUZZ_SLOW_MS, default 10000); a crash aborts with the input's name already printed.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

// The inputs under `path`, or an empty list when it does not exist.
std::vector<std::filesystem::path> collect(const std::filesystem::path& path) {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(path)) {
    for (const auto& entry : std::filesystem::directory_iterator(path)) {
      if (entry.is_regular_file() && !entry.path().filename().string().starts_with('.')) {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
  } else if (std::filesystem::is_regular_file(path)) {
    files.push_back(path);
  } else {
    std::cerr << "replay: no such file or directory: " << path.string() << '\n';
  }
  return files;
}

} // namespace

int main(int argc, char** argv) {
  const char* slow_env = std::getenv("LOTO_FUZZ_SLOW_MS"); // NOLINT(concurrency-mt-unsafe)
  const long slow_ms = slow_env != nullptr ? std::strtol(slow_env, nullptr, 10) : 10000;
  const std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::filesystem::path> files;
  for (const auto& arg : args) {
    const auto found = collect(arg);
    if (found.empty() && !std::filesystem::is_directory(arg)) {
      return 2;
    }
    files.insert(files.end(), found.begin(), found.end());
  }
  if (files.empty()) {
    std::cerr << "replay: no inputs\n";
    return 2;
  }
  int slow = 0;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::vector<char> bytes{std::istreambuf_iterator<char>(in),
                                  std::istreambuf_iterator<char>()};
    std::cerr << "replay: " << file.string() << " (" << bytes.size() << " bytes)" << std::endl;
    const auto start = std::chrono::steady_clock::now();
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    if (ms > slow_ms) {
      std::cerr << "replay: SLOW: " << file.string() << " took " << ms << " ms (limit " << slow_ms
                << ")\n";
      ++slow;
    }
  }
  std::cerr << "replay: " << files.size() << " inputs, " << slow << " slow\n";
  return slow == 0 ? 0 : 1;
}
