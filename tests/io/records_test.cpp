#include "io/records.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/error.h"
#include "common/rng.h"
#include "io_test_util.h"

namespace alignpro {
namespace {

using testing::same;

template <class R>
R round_trip(const R& record) {
  return from_bytes<R>(to_bytes(record));
}

TEST(RecordBytes, EveryRecordRoundTrips) {
  const StepMetrics metrics = testing::make_metrics(7);
  EXPECT_TRUE(same(round_trip(metrics), metrics));
  const TrainingSample sample = testing::make_sample(3, 5);
  EXPECT_TRUE(same(round_trip(sample), sample));
  const PhaseTimings timings = testing::make_timings(4, 2);
  EXPECT_TRUE(same(round_trip(timings), timings));
  const EvalSummary summary = testing::make_summary(1, 10, "align-pro");
  EXPECT_TRUE(same(round_trip(summary), summary));
  const EvalSample eval_sample = testing::make_eval_sample(1, 10, 6);
  EXPECT_TRUE(same(round_trip(eval_sample), eval_sample));
  const PoolState pool = testing::make_pool_state(2);
  EXPECT_TRUE(same(round_trip(pool), pool));
}

TEST(RecordBytes, RankRecordsAndListsRoundTrip) {
  RankRecords records;
  records.step = 9;
  records.rank = 3;
  records.samples = testing::make_samples(9, 5);
  records.eval_samples = {testing::make_eval_sample(0, 9, 1), testing::make_eval_sample(0, 9, 2)};
  records.timings = testing::make_timings(9, 3);
  const RankRecords back = round_trip(records);
  EXPECT_EQ(back.step, 9);
  EXPECT_EQ(back.rank, 3);
  EXPECT_TRUE(same(back.samples, records.samples));
  EXPECT_TRUE(same(back.eval_samples, records.eval_samples));
  EXPECT_TRUE(same(back.timings, records.timings));

  const std::vector<EvalSummary> summaries = {testing::make_summary(0, 0, "none"),
                                              testing::make_summary(0, 0, "align-pro")};
  EXPECT_TRUE(same(round_trip(summaries), summaries));
  EXPECT_TRUE(round_trip(std::vector<TrainingSample>{}).empty());
}

TEST(RecordBytes, EveryFlippedByteIsRejected) {
  const std::string bytes = to_bytes(testing::make_timings(1, 0));
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string corrupt = bytes;
    corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5A);
    EXPECT_THROW(from_bytes<PhaseTimings>(corrupt), RuntimeError) << "byte " << i;
  }
}

TEST(RecordBytes, EveryTruncationIsRejected) {
  const std::string bytes = to_bytes(testing::make_sample(1, 1));
  for (size_t length = 0; length < bytes.size(); ++length) {
    EXPECT_THROW(from_bytes<TrainingSample>(bytes.substr(0, length)), RuntimeError)
        << "length " << length;
  }
  EXPECT_THROW(from_bytes<TrainingSample>(bytes + "x"), RuntimeError);
}

TEST(RecordBytes, AnotherRecordKindIsNamed) {
  const std::string bytes = to_bytes(testing::make_metrics(1));
  try {
    from_bytes<TrainingSample>(bytes);
    FAIL() << "no error";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("StepMetrics"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("TrainingSample"), std::string::npos) << e.what();
  }
  EXPECT_THROW(from_bytes<std::vector<StepMetrics>>(bytes), RuntimeError);
}

// An envelope with a correct checksum around bytes that are not a valid archive still ends in
// RuntimeError: this exercises the decoder itself rather than the checksum.
TEST(RecordBytes, GarbageWithAValidEnvelopeIsRejected) {
  const std::string good = to_bytes(testing::make_metrics(2));
  constexpr size_t kEnvelope = 24;
  RngStream rng(7, RngPurpose::kInit, {1});
  for (size_t keep : {size_t{0}, size_t{8}, good.size() - kEnvelope - 4}) {
    std::string payload = good.substr(kEnvelope, keep);
    // Fewer bytes than the record needs: the archive runs out while reading.
    while (payload.size() < keep + 3) payload.push_back(static_cast<char>(rng.below(256)));
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : payload) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
    std::string bytes = good.substr(0, 8);
    const uint64_t size = payload.size();
    bytes.append(reinterpret_cast<const char*>(&size), 8);
    bytes.append(reinterpret_cast<const char*>(&h), 8);
    bytes += payload;
    EXPECT_THROW(from_bytes<StepMetrics>(bytes), RuntimeError) << "kept " << keep;
  }
}

TEST(RecordBytes, PhaseNamesAreTheColumnNames) {
  EXPECT_STREQ(phase_name(Phase::kPrompterGeneration), "prompter_generation");
  EXPECT_STREQ(phase_name(Phase::kWaiting), "waiting");
}

}  // namespace
}  // namespace alignpro
