// Counter-based random streams: known answers, independence of order, and rough uniformity.
#include <gtest/gtest.h>

#include <set>

#include "common/rng.h"

namespace alignpro {
namespace {

TEST(Philox, MatchesTheKnownAnswerOfTheReferencePaper) {
  // Known-answer vectors published with the Random123 library for philox4x32-10.
  const auto zero = philox4x32_10({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(zero, (std::array<uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  const auto ones = philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                  {0xffffffffu, 0xffffffffu});
  EXPECT_EQ(ones, (std::array<uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  const auto pi = philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                                {0xa4093822u, 0x299f31d0u});
  EXPECT_EQ(pi, (std::array<uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(RngStream, SameNameGivesSameNumbers) {
  RngStream a(42, RngPurpose::kRewrite, {3, 1, 2});
  RngStream b(42, RngPurpose::kRewrite, {3, 1, 2});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next_u32(), b.next_u32());
}

TEST(RngStream, DifferentNamesGiveDifferentStreams) {
  std::set<uint64_t> ids;
  for (uint64_t step = 0; step < 10; ++step) {
    for (uint64_t prompt = 0; prompt < 10; ++prompt) {
      ids.insert(RngStream(7, RngPurpose::kRewrite, {step, prompt}).stream_id());
    }
  }
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_NE(RngStream(7, RngPurpose::kRewrite, {1, 2}).stream_id(),
            RngStream(7, RngPurpose::kRewrite, {2, 1}).stream_id());
  EXPECT_NE(RngStream(7, RngPurpose::kRewrite, {1}).stream_id(),
            RngStream(7, RngPurpose::kRewrite, {1, 0}).stream_id());
  EXPECT_NE(RngStream(7, RngPurpose::kRewrite, {1}).stream_id(),
            RngStream(7, RngPurpose::kResponse, {1}).stream_id());
  EXPECT_NE(RngStream(7, RngPurpose::kRewrite, {1}).next_u64(),
            RngStream(8, RngPurpose::kRewrite, {1}).next_u64());
}

TEST(RngStream, SeekingReproducesTheRestOfTheStream) {
  RngStream a(1, RngPurpose::kResponse, {5});
  for (int i = 0; i < 13; ++i) a.next_u32();
  const uint64_t position = a.position();
  const uint32_t expected = a.next_u32();
  RngStream b(1, RngPurpose::kResponse, {5});
  b.seek(position);
  EXPECT_EQ(b.next_u32(), expected);
}

TEST(RngStream, UniformAndBelowAreRoughlyUniform) {
  RngStream rng(3, RngPurpose::kShuffle);
  std::vector<int> counts(10, 0);
  double sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    counts[rng.below(10)]++;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.01);
  for (int c : counts) EXPECT_NEAR(c, n / 10, n / 100);
}

}  // namespace
}  // namespace alignpro
