#include "net/frame.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

namespace mks::net {
namespace {

// Pulls every complete frame out of `decoder`; fails the test on an error.
std::vector<Frame> DrainFrames(FrameDecoder& decoder) {
  std::vector<Frame> frames;
  for (;;) {
    Result<std::optional<Frame>> next = decoder.Next();
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok() || !next->has_value()) return frames;
    frames.push_back(std::move(**next));
  }
}

TEST(FrameTest, RoundTripsBinaryPayloads) {
  std::string stream;
  const std::string binary("a\0b\r\n\xff", 6);
  AppendFrame(7, binary, &stream);
  AppendFrame(9, "", &stream);
  EXPECT_EQ(stream.size(), 2 * kFrameHeaderBytes + binary.size());
  FrameDecoder decoder(1024);
  decoder.Feed(stream);
  const std::vector<Frame> frames = DrainFrames(decoder);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].sender, 7u);
  EXPECT_EQ(frames[0].payload, binary);
  EXPECT_EQ(frames[1].sender, 9u);
  EXPECT_EQ(frames[1].payload, "");
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameTest, WaitsForTheWholeFrameAtEverySplit) {
  std::string stream;
  AppendFrame(3, "hello frames", &stream);
  for (size_t split = 0; split <= stream.size(); ++split) {
    FrameDecoder decoder(1024);
    decoder.Feed(stream.substr(0, split));
    if (split < stream.size()) {
      EXPECT_TRUE(DrainFrames(decoder).empty()) << "split " << split;
    }
    decoder.Feed(stream.substr(split));
    const std::vector<Frame> frames = DrainFrames(decoder);
    ASSERT_EQ(frames.size(), 1u) << "split " << split;
    EXPECT_EQ(frames[0].payload, "hello frames");
  }
}

TEST(FrameTest, DetectsEveryFlippedBit) {
  std::string stream;
  AppendFrame(5, "payload", &stream);
  for (size_t bit = 0; bit < stream.size() * 8; ++bit) {
    std::string damaged = stream;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    FrameDecoder decoder(1024);
    decoder.Feed(damaged);
    Result<std::optional<Frame>> next = decoder.Next();
    // A damaged length may just announce a longer frame; no frame may ever
    // come out of damaged bytes.
    if (next.ok()) {
      EXPECT_FALSE(next->has_value()) << "bit " << bit;
    } else {
      EXPECT_TRUE(next.status().IsCorruption()) << "bit " << bit;
    }
  }
}

TEST(FrameTest, RejectsOversizedLengthBeforeBuffering) {
  std::string stream;
  AppendFrame(5, std::string(100, 'x'), &stream);
  FrameDecoder decoder(99);
  decoder.Feed(stream.substr(0, kFrameHeaderBytes));
  Result<std::optional<Frame>> next = decoder.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_TRUE(next.status().IsCorruption());
  EXPECT_NE(next.status().message().find("exceeds"), std::string::npos);
}

TEST(FrameTest, ErrorIsSticky) {
  FrameDecoder decoder(1024);
  decoder.Feed(std::string(kFrameHeaderBytes, 'G'));
  EXPECT_FALSE(decoder.Next().ok());
  std::string good;
  AppendFrame(5, "x", &good);
  decoder.Feed(good);
  EXPECT_FALSE(decoder.Next().ok());
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameTest, RejectsSenderZero) {
  std::string stream;
  AppendFrame(1, "x", &stream);
  stream[4] = 0;  // sender 1 -> 0; the checksum would also catch it
  FrameDecoder decoder(1024);
  decoder.Feed(stream);
  EXPECT_FALSE(decoder.Next().ok());
}

RC_GTEST_PROP(FrameProperty, AnyChunkingYieldsTheSameFrames,
              (const std::vector<std::string>& payloads,
               const std::vector<uint8_t>& chunk_sizes)) {
  std::string stream;
  for (size_t index = 0; index < payloads.size(); ++index) {
    AppendFrame(static_cast<NodeId>(index + 1), payloads[index], &stream);
  }
  FrameDecoder decoder(1 << 20);
  std::vector<Frame> frames;
  size_t offset = 0;
  size_t chunk = 0;
  while (offset < stream.size()) {
    const size_t size = chunk_sizes.empty()
                            ? stream.size()
                            : size_t{chunk_sizes[chunk++ % chunk_sizes.size()]} + 1;
    decoder.Feed(std::string_view(stream).substr(offset, size));
    offset += std::min(size, stream.size() - offset);
    for (Frame& frame : DrainFrames(decoder)) frames.push_back(std::move(frame));
  }
  RC_ASSERT(frames.size() == payloads.size());
  for (size_t index = 0; index < payloads.size(); ++index) {
    RC_ASSERT(frames[index].sender == index + 1);
    RC_ASSERT(frames[index].payload == payloads[index]);
  }
}

}  // namespace
}  // namespace mks::net
