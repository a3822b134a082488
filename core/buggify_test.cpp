#include "core/buggify.h"

#include <gtest/gtest.h>

#include "core/env.h"

namespace mks {
namespace {

TEST(BuggifyTest, NullInProductionNeverFires) {
  Environment env;
  int fired = 0;
  for (int i = 0; i < 1000; ++i) fired += MKS_BUGGIFY(env) ? 1 : 0;
  EXPECT_EQ(fired, 0);
}

TEST(BuggifyTest, EnabledSiteFiresAndIsCounted) {
  Buggify buggify(Random(7), 1000000, 500000);
  Environment env;
  env.buggify = &buggify;
  int fired = 0;
  for (int i = 0; i < 1000; ++i) fired += MKS_BUGGIFY(env) ? 1 : 0;
  ASSERT_EQ(buggify.sites().size(), 1u);
  const Buggify::SiteStats& site = buggify.sites().begin()->second;
  EXPECT_TRUE(site.enabled);
  EXPECT_EQ(site.evaluations, 1000u);
  EXPECT_EQ(site.firings, static_cast<uint64_t>(fired));
  EXPECT_GT(fired, 300);
  EXPECT_LT(fired, 700);
  EXPECT_NE(buggify.sites().begin()->first.find("buggify_test.cpp:"), std::string::npos);
}

TEST(BuggifyTest, DisabledSiteNeverFires) {
  Buggify buggify(Random(7), 0, 1000000);
  EXPECT_FALSE(buggify.Fire("a.cpp", 1));
  EXPECT_FALSE(buggify.sites().at("a.cpp:1").enabled);
}

TEST(BuggifyTest, SiteChoiceDependsOnSeedAndNameNotOrder) {
  Buggify forward(Random(99), 500000, 0);
  Buggify backward(Random(99), 500000, 0);
  for (int line = 1; line <= 64; ++line) (void)forward.Fire("x.cpp", line);
  for (int line = 64; line >= 1; --line) (void)backward.Fire("x.cpp", line);
  int enabled = 0;
  for (const auto& [name, stats] : forward.sites()) {
    EXPECT_EQ(stats.enabled, backward.sites().at(name).enabled) << name;
    enabled += stats.enabled ? 1 : 0;
  }
  EXPECT_GT(enabled, 0);
  EXPECT_LT(enabled, 64);
}

}  // namespace
}  // namespace mks
