// A fresh temporary directory for one test, removed with everything in it
// when the object dies. For tests and benchmarks that need real files.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/assertions.h"

namespace mks::disk {

class TestDirectory {
 public:
  TestDirectory() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "mks-disk-XXXXXX").string();
    MKS_ASSERT_MSG(mkdtemp(pattern.data()) != nullptr, "mkdtemp failed");
    path_ = pattern;
  }
  ~TestDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TestDirectory(const TestDirectory&) = delete;
  TestDirectory& operator=(const TestDirectory&) = delete;

  const std::string& path() const { return path_; }
  // A path inside the directory that does not exist yet.
  std::string Child(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace mks::disk
