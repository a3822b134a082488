// BUGGIFY: rare-but-legal branches taken on purpose, in simulation only.
//
// A protocol site writes
//     if (MKS_BUGGIFY(env)) timeout_ms = 1;  // a legal, if unlucky, choice
// where `env` is the node's Environment. In production Environment::buggify
// is null, so the condition is a null test and always false; a build that
// defines MKS_BUGGIFY_DISABLED compiles every site to `false`. In the
// simulator the world hands every node one Buggify object seeded from the
// run's seed: each site (file and line) is enabled or not for the whole run
// by a choice that depends only on the seed and the site's name (not on the
// order sites are met), and an enabled site fires with a small probability
// each time it is evaluated.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/random.h"

namespace mks {

class Buggify {
 public:
  struct SiteStats {
    bool enabled = false;
    uint64_t evaluations = 0;
    uint64_t firings = 0;
  };

  // `random` draws the firings; `site_enable_ppm` is the probability that a
  // site is enabled for the run, `fire_ppm` the probability that an enabled
  // site fires at one evaluation.
  Buggify(Random random, uint32_t site_enable_ppm, uint32_t fire_ppm);

  // Returns whether the site at `file`:`line` takes its rare branch now.
  // Never fails.
  bool Fire(std::string_view file, int line);

  // Every site evaluated so far, by "file:line" (an ordered map: reports and
  // traces list sites in a stable order).
  const std::map<std::string, SiteStats, std::less<>>& sites() const {
    return sites_;
  }

 private:
  const uint64_t seed_;
  Random random_;
  const uint32_t site_enable_ppm_;
  const uint32_t fire_ppm_;
  std::map<std::string, SiteStats, std::less<>> sites_;
};

}  // namespace mks

#ifdef MKS_BUGGIFY_DISABLED
#define MKS_BUGGIFY(env) false
#else
// True when this site takes its rare branch; `env` is an Environment.
#define MKS_BUGGIFY(env) \
  ((env).buggify != nullptr && (env).buggify->Fire(__FILE__, __LINE__))
#endif
