#include "tools/mks_sim_sweep.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "core/assertions.h"

extern char** environ;

namespace mks::tools {
namespace {

constexpr int kExitPass = 0;
constexpr int kExitInvalid = 2;
constexpr int kExitAssertion = 5;

std::string_view ExitName(int code) {
  switch (code) {
    case 0: return "pass";
    case 2: return "invalid scenario or usage";
    case 3: return "safety violation";
    case 4: return "liveness violation";
    case 5: return "internal assertion";
  }
  return "unexpected exit";
}

// One finished seed.
struct SeedResult {
  int exit_code = 0;
  std::string trace_hash;
  std::string output;  // the worker's stdout and stderr; kept for failures only
};

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// The value of the worker's "trace hash: " line, or "?".
std::string TraceHash(const std::string& output) {
  const std::string tag = "trace hash: ";
  const size_t at = output.rfind(tag);
  if (at == std::string::npos) return "?";
  const size_t end = output.find('\n', at);
  return output.substr(at + tag.size(), end - at - tag.size());
}

class Sweep {
 public:
  explicit Sweep(const SweepOptions& options) : options_(options) {
    MKS_ASSERT_GE(options.jobs, 1);
    MKS_ASSERT_LE(options.seeds.first, options.seeds.last);
    next_seed_ = options.seeds.first;
    next_to_print_ = options.seeds.first;
  }

  int Run() {
    std::error_code error;
    self_ = std::filesystem::read_symlink("/proc/self/exe", error).string();
    if (error) return Fail("cannot find this executable: " + error.message());
    std::string pattern =
        (std::filesystem::temp_directory_path(error) / "mks-sim-sweep-XXXXXX").string();
    if (error || mkdtemp(pattern.data()) == nullptr) {
      return Fail("cannot create a work directory in " + pattern);
    }
    work_dir_ = pattern;
    const auto start = std::chrono::steady_clock::now();
    int code = Loop();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::filesystem::remove_all(work_dir_, error);
    if (code == kExitInvalid) return code;
    code = Report(seconds);
    return code;
  }

 private:
  int Fail(const std::string& message) {
    std::cerr << "mks-sim: " << message << "\n";
    return kExitInvalid;
  }

  // True while the next seed exists and is below any failure seen.
  bool MayStart() const {
    return !exhausted_ &&
           (!lowest_failure_.has_value() || next_seed_ < *lowest_failure_);
  }

  std::string OutputPath(uint64_t seed) const {
    return work_dir_ + "/seed-" + std::to_string(seed) + ".out";
  }

  // Starts a worker for `seed`; false when it could not be spawned.
  bool Spawn(uint64_t seed) {
    const std::string seed_text = std::to_string(seed);
    const std::string out_path = OutputPath(seed);
    std::vector<std::string> args = {self_, "--seed", seed_text, options_.scenario_path};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    const int failed = posix_spawn(&pid, self_.c_str(), &actions, nullptr,
                                   argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (failed != 0) {
      std::cerr << "mks-sim: cannot start a worker: " << std::strerror(failed) << "\n";
      return false;
    }
    MKS_ASSERT_GT(pid, 0);
    running_[pid] = seed;
    return true;
  }

  int Loop() {
    for (;;) {
      while (static_cast<int>(running_.size()) < options_.jobs && MayStart()) {
        if (!Spawn(next_seed_)) {
          KillRunning(0);
          ReapAll();
          return kExitInvalid;
        }
        // Stepping past `last` could wrap at the top of the seed space.
        if (next_seed_ == options_.seeds.last) {
          exhausted_ = true;
        } else {
          ++next_seed_;
        }
      }
      MKS_ASSERT_LE(running_.size(), static_cast<size_t>(options_.jobs));
      if (running_.empty()) return kExitPass;
      int status = 0;
      const pid_t pid = waitpid(-1, &status, 0);
      if (pid < 0) {
        if (errno == EINTR) continue;
        return Fail("waitpid failed: " + std::string(std::strerror(errno)));
      }
      Finished(pid, status);
    }
  }

  void Finished(pid_t pid, int status) {
    auto it = running_.find(pid);
    MKS_ASSERT(it != running_.end());
    const uint64_t seed = it->second;
    running_.erase(it);
    if (killed_.erase(pid) > 0) return;  // outranked by a lower failure
    SeedResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : kExitAssertion;
    const std::string output = ReadFile(OutputPath(seed));
    std::error_code ignored;
    std::filesystem::remove(OutputPath(seed), ignored);
    result.trace_hash = TraceHash(output);
    if (result.exit_code != kExitPass) result.output = output;
    ++seeds_run_;
    if (result.exit_code != kExitPass &&
        (!lowest_failure_.has_value() || seed < *lowest_failure_)) {
      lowest_failure_ = seed;
      KillRunning(seed);
    }
    finished_[seed] = std::move(result);
    PrintInOrder();
  }

  // Kills the workers of seeds above `above`: a lower seed failed.
  void KillRunning(uint64_t above) {
    for (const auto& [pid, seed] : running_) {
      if (seed > above && killed_.insert(pid).second) kill(pid, SIGKILL);
    }
  }

  void ReapAll() {
    while (!running_.empty()) {
      int status = 0;
      const pid_t pid = waitpid(-1, &status, 0);
      if (pid < 0 && errno != EINTR) break;
      if (pid > 0) running_.erase(pid);
    }
  }

  // With -v, one line per seed, in seed order, as soon as all below it are
  // in. Seeds printed (or passed over, without -v) are forgotten, so a long
  // sweep holds at most `jobs` results, plus the failure.
  void PrintInOrder() {
    for (auto it = finished_.find(next_to_print_); it != finished_.end();
         it = finished_.find(next_to_print_)) {
      if (options_.verbose) {
        std::cout << "seed " << it->first << ": " << ExitName(it->second.exit_code)
                  << " (trace hash " << it->second.trace_hash << ")\n"
                  << std::flush;
      }
      // Seeds above the first failure may have finished too; not reported.
      if (it->first == options_.seeds.last || it->first == lowest_failure_) break;
      MKS_ASSERT_EQ(it->second.exit_code, kExitPass);
      finished_.erase(it);
      ++next_to_print_;
    }
  }

  int Report(double seconds) {
    MKS_ASSERT(running_.empty());
    MKS_ASSERT_GE(seconds, 0.0);
    const double minutes = seconds / 60.0;
    const double per_minute = minutes > 0 ? static_cast<double>(seeds_run_) / minutes : 0;
    char rate[160];
    std::snprintf(rate, sizeof(rate), "%llu seeds in %.1f s: %.0f seeds/minute with %d job%s",
                  static_cast<unsigned long long>(seeds_run_), seconds, per_minute,
                  options_.jobs, options_.jobs == 1 ? "" : "s");
    if (!lowest_failure_.has_value()) {
      std::cout << "sweep: every seed of " << options_.seeds.first << ".."
                << options_.seeds.last << " passed; " << rate << "\n";
      return kExitPass;
    }
    const uint64_t seed = *lowest_failure_;
    MKS_ASSERT_EQ(finished_.count(seed), 1u);
    const SeedResult& failed = finished_.at(seed);
    MKS_ASSERT_NE(failed.exit_code, kExitPass);
    std::cout << "---- output of seed " << seed << " ----\n"
              << failed.output << "---- end of seed " << seed << " ----\n"
              << "failing seed: " << seed << "\n"
              << "verdict: " << ExitName(failed.exit_code) << " (exit "
              << failed.exit_code << ")\n"
              << "replay: " << options_.invoked_as << " --seed " << seed << " "
              << options_.scenario_path << "\n"
              << "sweep: stopped at the first failing seed of "
              << options_.seeds.first << ".." << options_.seeds.last << "; " << rate
              << "\n";
    return failed.exit_code;
  }

  const SweepOptions options_;
  std::string self_;
  std::string work_dir_;
  uint64_t next_seed_ = 0;
  bool exhausted_ = false;          // the range's last seed was started
  uint64_t next_to_print_ = 0;
  uint64_t seeds_run_ = 0;          // finished, not killed
  std::optional<uint64_t> lowest_failure_;
  std::map<pid_t, uint64_t> running_;   // worker -> seed
  std::set<pid_t> killed_;
  // Finished seeds from next_to_print_ up (see PrintInOrder).
  std::map<uint64_t, SeedResult> finished_;
};

}  // namespace

std::optional<SeedRange> ParseSeedRange(const std::string& text) {
  const size_t dots = text.find("..");
  if (dots == std::string::npos) return std::nullopt;
  SeedRange range;
  const char* begin = text.data();
  const char* middle = begin + dots;
  const char* end = begin + text.size();
  const auto first = std::from_chars(begin, middle, range.first);
  const auto last = std::from_chars(middle + 2, end, range.last);
  if (first.ec != std::errc() || first.ptr != middle || dots == 0) return std::nullopt;
  if (last.ec != std::errc() || last.ptr != end || middle + 2 == end) return std::nullopt;
  if (range.first > range.last) return std::nullopt;
  return range;
}

int RunSweep(const SweepOptions& options) {
  return Sweep(options).Run();
}

}  // namespace mks::tools
