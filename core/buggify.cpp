#include "core/buggify.h"

#include "core/assertions.h"

namespace mks {

Buggify::Buggify(Random random, uint32_t site_enable_ppm, uint32_t fire_ppm)
    : seed_(random.seed()),
      random_(random.Split("buggify/fire")),
      site_enable_ppm_(site_enable_ppm),
      fire_ppm_(fire_ppm) {
  MKS_ASSERT_LE(site_enable_ppm, 1000000u);
  MKS_ASSERT_LE(fire_ppm, 1000000u);
}

bool Buggify::Fire(std::string_view file, int line) {
  MKS_ASSERT_GT(line, 0);
  // Only the file's base name: the build directory must not change the run.
  const size_t slash = file.rfind('/');
  if (slash != std::string_view::npos) file.remove_prefix(slash + 1);
  std::string name = std::string(file) + ":" + std::to_string(line);
  auto it = sites_.find(name);
  if (it == sites_.end()) {
    SiteStats stats;
    Random chooser(StableHash64(name, seed_));
    stats.enabled = chooser.ChancePpm(site_enable_ppm_);
    it = sites_.emplace(std::move(name), stats).first;
  }
  SiteStats& site = it->second;
  ++site.evaluations;
  if (!site.enabled || !random_.ChancePpm(fire_ppm_)) return false;
  ++site.firings;
  MKS_ASSERT_LE(site.firings, site.evaluations);
  return true;
}

}  // namespace mks
