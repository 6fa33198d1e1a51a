#include <gtest/gtest.h>

#include <numeric>

#include "common/error.h"
#include "common/job.h"
#include "dist/communicator_tests.h"
#include "dist/job_agreement.h"

namespace alignpro {
namespace {

using testing::comm;

TEST(Communicator, RanksAreConsistent) {
  EXPECT_GE(comm().size(), 1);
  EXPECT_GE(comm().rank(), 0);
  EXPECT_LT(comm().rank(), comm().size());
  EXPECT_LT(comm().local_rank(), comm().local_size());
  EXPECT_LE(comm().local_size(), comm().size());
  EXPECT_FALSE(comm().host().empty());
}

TEST(Communicator, AllreduceSumsEveryElement) {
  const int n = comm().size();
  std::vector<float> values(1000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(comm().rank() + i);
  comm().allreduce_sum(values.data(), values.size(), "test");
  const float rank_sum = n * (n - 1) / 2.0f;
  for (size_t i = 0; i < values.size(); ++i) ASSERT_EQ(values[i], rank_sum + n * i);

  double x = comm().rank() + 0.5;
  comm().allreduce_sum(&x, 1, "test");
  EXPECT_DOUBLE_EQ(x, rank_sum + 0.5 * n);
}

TEST(Communicator, ReduceSumsOnTheRootOnly) {
  std::vector<float> values = {1.0f, static_cast<float>(comm().rank())};
  comm().reduce_sum(values.data(), values.size(), 0, "test");
  if (comm().rank() == 0) {
    EXPECT_EQ(values[0], comm().size());
    EXPECT_EQ(values[1], comm().size() * (comm().size() - 1) / 2.0f);
  } else {
    EXPECT_EQ(values[0], 1.0f);
  }
}

TEST(Communicator, BroadcastCopiesTheRootsBytes) {
  std::string text = comm().rank() == 0 ? std::string("from the coordinator") : "";
  EXPECT_EQ(comm().broadcast(text, 0, "test"), "from the coordinator");
  int64_t value = comm().rank() == 0 ? 1234567 : -1;
  comm().broadcast(&value, sizeof(value), 0, "test");
  EXPECT_EQ(value, 1234567);
}

TEST(Communicator, AllgatherKeepsRankOrderAndUnequalSizes) {
  std::vector<float> mine(comm().rank() + 1, static_cast<float>(comm().rank()));
  const auto all = comm().allgather(mine, "test");
  ASSERT_EQ(static_cast<int>(all.size()), comm().size());
  for (int r = 0; r < comm().size(); ++r) {
    ASSERT_EQ(static_cast<int>(all[r].size()), r + 1);
    for (float v : all[r]) EXPECT_EQ(v, r);
  }
  const auto texts = comm().allgather(std::string(comm().rank(), 'x'), "test");
  for (int r = 0; r < comm().size(); ++r) EXPECT_EQ(texts[r], std::string(r, 'x'));
}

TEST(Communicator, GatherBringsEveryRanksBytesToTheRoot) {
  const auto all = comm().gather("rank " + std::to_string(comm().rank()), 0, "test");
  if (comm().rank() == 0) {
    ASSERT_EQ(static_cast<int>(all.size()), comm().size());
    for (int r = 0; r < comm().size(); ++r) EXPECT_EQ(all[r], "rank " + std::to_string(r));
  } else {
    EXPECT_TRUE(all.empty());
  }
}

TEST(Communicator, AllAndAnyAgreeAcrossRanks) {
  EXPECT_TRUE(comm().all(true, "test"));
  EXPECT_FALSE(comm().all(comm().rank() != comm().size() - 1, "test"));
  EXPECT_TRUE(comm().any(comm().rank() == comm().size() - 1, "test"));
  EXPECT_FALSE(comm().any(false, "test"));
}

Job small_job(const std::vector<std::string>& overrides) {
  JobReadOptions options;
  options.check_files = false;
  options.overrides = overrides;
  return parse_job(
      "[data]\ntrain = \"t.jsonl\"\n[prompter]\nmodel = \"p\"\n[target]\nmodel = \"t\"\n"
      "[reward]\nmodel = \"r\"\n",
      "agreement.toml", options);
}

TEST(JobAgreement, SameJobOnEveryRankPasses) {
  EXPECT_NO_THROW(check_same_job(comm(), small_job({"run.seed=5"})));
}

// Needs two ranks to disagree; the suites' main() leaves JobAgreementAcrossRanks out at 1 rank.
TEST(JobAgreementAcrossRanks, MismatchIsReportedOnEveryRankNamingTheRankAndTheKey) {
  const int last = comm().size() - 1;
  const Job job = small_job({"run.seed=" + std::to_string(comm().rank() == last ? 9 : 5)});
  try {
    check_same_job(comm(), job);
    FAIL() << "a mismatch went unnoticed";
  } catch (const InputError& e) {
    const std::string expected =
        "rank " + std::to_string(last) + " has run.seed = 9, rank 0 has run.seed = 5";
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace alignpro
