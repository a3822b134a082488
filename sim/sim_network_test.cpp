#include "sim/sim_network.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sim/sim_clock.h"

namespace mks::sim {
namespace {

constexpr int64_t kMsNanos = 1000000;

class SimNetworkTest : public ::testing::Test {
 protected:
  void Build(NetworkConfig config, NodeId count = 4) {
    network_ = std::make_unique<SimNetwork>(&scheduler_, Random(42), config, &tracer_);
    for (NodeId id = 1; id <= count; ++id) {
      endpoints_[id] = network_->AddEndpoint(id);
      const runtime::ProcessId process =
          scheduler_.CreateProcess("node" + std::to_string(id));
      processes_[id] = process;
      network_->Up(id, process);
      endpoints_[id]->SetHandler([this, id](NodeId from, std::string bytes) {
        received_.push_back({from, id, std::move(bytes)});
      });
    }
  }

  void Drive() {
    for (;;) {
      scheduler_.RunReady();
      const std::optional<int64_t> next = scheduler_.NextDeadlineNanos();
      if (!next) return;
      if (*next > time_.now_ns()) time_.AdvanceTo(*next);
      scheduler_.FireNextTimer();
    }
  }

  void Send(NodeId from, NodeId to, std::string bytes) {
    ASSERT_TRUE(endpoints_[from]->Send(to, std::move(bytes)).ok());
  }

  // Sends one message on every ordered pair and returns which arrived.
  std::set<std::pair<NodeId, NodeId>> ProbeAll() {
    received_.clear();
    for (const auto& [from, unused] : endpoints_) {
      for (const auto& [to, unused_to] : endpoints_) {
        if (from != to) Send(from, to, "probe");
      }
    }
    Drive();
    std::set<std::pair<NodeId, NodeId>> arrived;
    for (const Received& r : received_) arrived.insert({r.from, r.to});
    return arrived;
  }

  struct Received {
    NodeId from;
    NodeId to;
    std::string bytes;
  };
  TrueTime time_;
  runtime::Scheduler scheduler_{&time_};
  Tracer tracer_;
  std::unique_ptr<SimNetwork> network_;
  std::map<NodeId, Network*> endpoints_;
  std::map<NodeId, runtime::ProcessId> processes_;
  std::vector<Received> received_;
};

TEST_F(SimNetworkTest, DeliversExactBytesWithinLatencyBounds) {
  Build(NetworkConfig{.latency_min_us = 100, .latency_max_us = 300});
  std::string bytes("a\0b\xff", 4);
  Send(1, 2, bytes);
  Send(3, 3, "self");
  Drive();
  ASSERT_EQ(received_.size(), 2u);
  EXPECT_GE(time_.now_ns(), 100000);
  EXPECT_LE(time_.now_ns(), 300000);
  bool saw_bytes = false;
  for (const Received& r : received_) saw_bytes |= r.bytes == bytes && r.to == 2;
  EXPECT_TRUE(saw_bytes);
  EXPECT_EQ(network_->stats().delivered, 2u);
}

TEST_F(SimNetworkTest, UnknownDestinationAndOversizedMessagesAreRefused) {
  Build(NetworkConfig{.max_message_bytes = 10});
  EXPECT_FALSE(endpoints_[1]->Send(99, "x").ok());
  EXPECT_FALSE(endpoints_[1]->Send(2, std::string(11, 'x')).ok());
}

TEST_F(SimNetworkTest, LinksAreFifoWithoutReordering) {
  Build(NetworkConfig{.latency_min_us = 1, .latency_max_us = 10000});
  for (int i = 0; i < 200; ++i) Send(1, 2, std::to_string(i));
  Drive();
  ASSERT_EQ(received_.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(received_[static_cast<size_t>(i)].bytes, std::to_string(i));
}

TEST_F(SimNetworkTest, ReorderingLetsMessagesOvertake) {
  Build(NetworkConfig{.latency_min_us = 1, .latency_max_us = 10000, .reorder_ppm = 500000});
  for (int i = 0; i < 200; ++i) Send(1, 2, std::to_string(i));
  Drive();
  ASSERT_EQ(received_.size(), 200u);
  int out_of_order = 0;
  for (size_t i = 1; i < received_.size(); ++i) {
    out_of_order += std::stoi(received_[i].bytes) < std::stoi(received_[i - 1].bytes);
  }
  EXPECT_GT(out_of_order, 0);
  EXPECT_GT(network_->stats().reordered, 0u);
}

TEST_F(SimNetworkTest, LossAndDuplicationFollowTheirRates) {
  Build(NetworkConfig{.loss_ppm = 200000, .duplicate_ppm = 100000});
  for (int i = 0; i < 5000; ++i) Send(1, 2, "m");
  Drive();
  const NetworkStats& stats = network_->stats();
  EXPECT_GT(stats.dropped_loss, 800u);
  EXPECT_LT(stats.dropped_loss, 1200u);
  EXPECT_GT(stats.duplicated, 300u);
  EXPECT_EQ(received_.size(), 5000 - stats.dropped_loss + stats.duplicated);
}

TEST_F(SimNetworkTest, OneWayCutBlocksExactlyThatDirection) {
  Build(NetworkConfig{});
  network_->Cut(1, 2);
  const auto arrived = ProbeAll();
  EXPECT_EQ(arrived.size(), 11u);
  EXPECT_EQ(arrived.count({1, 2}), 0u);
  EXPECT_EQ(arrived.count({2, 1}), 1u);
  EXPECT_FALSE(network_->Reachable(1, 2));
  EXPECT_TRUE(network_->Reachable(2, 1));
}

TEST_F(SimNetworkTest, IsolateCutsBothDirectionsOfOneNode) {
  Build(NetworkConfig{});
  network_->Isolate(3);
  const auto arrived = ProbeAll();
  EXPECT_EQ(arrived.size(), 6u);  // the 3 x 2 links among 1, 2, 4
  for (const auto& [from, to] : arrived) {
    EXPECT_NE(from, 3u);
    EXPECT_NE(to, 3u);
  }
}

TEST_F(SimNetworkTest, SplitWithBridgeKeepsTheBridgeConnected) {
  Build(NetworkConfig{}, 5);
  network_->Split({1, 2}, {4, 5});  // 3 is the bridge, in neither side
  const auto arrived = ProbeAll();
  for (NodeId a : {1u, 2u}) {
    for (NodeId b : {4u, 5u}) {
      EXPECT_EQ(arrived.count({a, b}), 0u);
      EXPECT_EQ(arrived.count({b, a}), 0u);
    }
  }
  for (NodeId other : {1u, 2u, 4u, 5u}) {
    EXPECT_EQ(arrived.count({3, other}), 1u);
    EXPECT_EQ(arrived.count({other, 3}), 1u);
  }
  EXPECT_EQ(arrived.count({1, 2}), 1u);
  EXPECT_EQ(arrived.count({4, 5}), 1u);
  EXPECT_EQ(arrived.size(), 20u - 8u);
}

TEST_F(SimNetworkTest, HealRestoresEveryLink) {
  Build(NetworkConfig{});
  network_->Isolate(1);
  network_->Cut(2, 3);
  network_->Heal();
  EXPECT_EQ(ProbeAll().size(), 12u);
  EXPECT_EQ(network_->stats().dropped_cut, 0u);
}

TEST_F(SimNetworkTest, ClogHoldsMessagesUntilItEnds) {
  Build(NetworkConfig{.latency_min_us = 100, .latency_max_us = 100});
  network_->ClogNode(2, 50 * kMsNanos);
  Send(1, 2, "held");
  Send(1, 3, "free");
  Drive();
  ASSERT_EQ(received_.size(), 2u);
  EXPECT_EQ(received_[0].bytes, "free");
  EXPECT_EQ(received_[1].bytes, "held");
  EXPECT_EQ(time_.now_ns(), 50 * kMsNanos + 100000);
  EXPECT_EQ(network_->stats().clogged, 1u);
}

TEST_F(SimNetworkTest, DownNodeDropsInFlightAndNewMessages) {
  Build(NetworkConfig{});
  Send(1, 2, "in flight");
  scheduler_.Kill(processes_[2]);
  network_->Down(2);
  Send(1, 2, "after");
  Drive();
  EXPECT_TRUE(received_.empty());
  EXPECT_EQ(network_->stats().dropped_down, 2u);
}

TEST_F(SimNetworkTest, PausedNodeReceivesNothingUntilResumed) {
  Build(NetworkConfig{.latency_min_us = 100, .latency_max_us = 100});
  scheduler_.Pause(processes_[2]);
  Send(1, 2, "waits");
  Drive();
  EXPECT_TRUE(received_.empty());
  time_.AdvanceTo(time_.now_ns() + 10 * kMsNanos);
  scheduler_.Unpause(processes_[2]);
  Drive();
  ASSERT_EQ(received_.size(), 1u);
  EXPECT_EQ(received_[0].bytes, "waits");
}

}  // namespace
}  // namespace mks::sim
