#include "align/sharding.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace alignpro {
namespace {

TEST(Sharding, SlicesAreContiguousBalancedAndCoverEveryUnit) {
  for (int64_t units : {1, 5, 12, 13, 64, 97}) {
    for (int ranks : {1, 2, 3, 4, 7}) {
      if (units < ranks) continue;
      const Sharding sharding(units, ranks);
      int64_t next = 0;
      for (int rank = 0; rank < ranks; ++rank) {
        const UnitRange range = sharding.range(rank);
        EXPECT_EQ(range.begin, next);
        const int64_t expected = units / ranks + (rank < units % ranks ? 1 : 0);
        EXPECT_EQ(range.size(), expected) << units << " units, rank " << rank << "/" << ranks;
        EXPECT_LE(range.size(), sharding.max_slice());
        next = range.end;
      }
      EXPECT_EQ(next, units);
    }
  }
}

TEST(Sharding, OwnerInvertsRange) {
  for (int64_t units : {4, 10, 33}) {
    for (int ranks : {1, 3, 4}) {
      const Sharding sharding(units, ranks);
      for (int64_t unit = 0; unit < units; ++unit) {
        const int owner = sharding.owner(unit);
        EXPECT_TRUE(sharding.range(owner).contains(unit)) << unit << " of " << units;
      }
    }
  }
}

TEST(Sharding, FirstRanksTakeTheRemainder) {
  const Sharding sharding(10, 4);  // 3, 3, 2, 2
  EXPECT_EQ(sharding.range(0).size(), 3);
  EXPECT_EQ(sharding.range(1).size(), 3);
  EXPECT_EQ(sharding.range(2).begin, 6);
  EXPECT_EQ(sharding.range(3).size(), 2);
  EXPECT_EQ(sharding.owner(9), 3);
}

TEST(Sharding, FewerUnitsThanRanksIsAnInputError) {
  try {
    Sharding(3, 4);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("3 work units"), std::string::npos) << e.what();
  }
}

TEST(Sharding, OutOfRangeQueriesThrow) {
  const Sharding sharding(8, 2);
  EXPECT_THROW(sharding.owner(8), RuntimeError);
  EXPECT_THROW(sharding.range(2), RuntimeError);
}

TEST(WorkUnit, IndexRoundTrips) {
  for (int64_t unit = 0; unit < 24; ++unit) {
    const WorkUnit w = work_unit(unit, 4);
    EXPECT_EQ(w.slot, unit / 4);
    EXPECT_EQ(w.candidate, unit % 4);
    EXPECT_EQ(unit_index(w, 4), unit);
  }
}

}  // namespace
}  // namespace alignpro
