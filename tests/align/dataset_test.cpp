#include "align/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/error.h"
#include "test_files.h"

namespace alignpro {
namespace {

using testing::write_temp_file;

// The message of the InputError that f throws; fails the test when it throws none.
template <typename F>
std::string input_error(F f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError";
  return "";
}

TEST(PromptDataset, ReadsJsonlFieldInFileOrder) {
  const auto path = write_temp_file("a.jsonl",
                                    "{\"prompt\": \"first\", \"id\": 1}\n"
                                    "\n"
                                    "{\"prompt\": \"second\\nline\"}\n");
  const auto data = PromptDataset::load(path, {});
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data.prompt(0), "first");
  EXPECT_EQ(data.prompt(1), "second\nline");
}

TEST(PromptDataset, ReadsNamedField) {
  const auto path = write_temp_file("q.jsonl", "{\"question\": \"why?\", \"prompt\": 3}\n");
  DatasetOptions options;
  options.field = "question";
  EXPECT_EQ(PromptDataset::load(path, options).prompt(0), "why?");
}

TEST(PromptDataset, ReadsPlainTextSkippingBlankLinesAndCarriageReturns) {
  const auto path = write_temp_file("p.txt", "one\r\n\n  \ntwo words\n");
  const auto data = PromptDataset::load(path, {});
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data.prompt(0), "one");
  EXPECT_EQ(data.prompt(1), "two words");
}

TEST(PromptDataset, ExplicitFormatOverridesExtension) {
  const auto path = write_temp_file("lines.jsonl", "{not json}\n");
  DatasetOptions options;
  options.format = "text";
  EXPECT_EQ(PromptDataset::load(path, options).prompt(0), "{not json}");
}

TEST(PromptDataset, MaxPromptsKeepsTheFirst) {
  const auto path = write_temp_file("m.txt", "a\nb\nc\nd\n");
  DatasetOptions options;
  options.max_prompts = 2;
  const auto data = PromptDataset::load(path, options);
  EXPECT_EQ(data.prompts(), (std::vector<std::string>{"a", "b"}));
}

TEST(PromptDataset, MaxPromptsStopsBeforeALaterBadLine) {
  const auto path = write_temp_file("early.jsonl", "{\"prompt\": \"ok\"}\n[broken\n");
  DatasetOptions options;
  options.max_prompts = 1;
  EXPECT_EQ(PromptDataset::load(path, options).size(), 1u);
}

TEST(PromptDataset, BadJsonNamesFileAndLine) {
  const auto path = write_temp_file("bad.jsonl", "{\"prompt\": \"ok\"}\n{\"prompt\": \n");
  const std::string message = input_error([&] { PromptDataset::load(path, {}); });
  EXPECT_NE(message.find(path + ":2:"), std::string::npos) << message;
  EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
}

TEST(PromptDataset, MissingFieldNamesTheField) {
  const auto path = write_temp_file("nofield.jsonl", "{\"text\": \"x\"}\n");
  const std::string message = input_error([&] { PromptDataset::load(path, {}); });
  EXPECT_NE(message.find(path + ":1:"), std::string::npos) << message;
  EXPECT_NE(message.find("'prompt'"), std::string::npos) << message;
}

TEST(PromptDataset, NonStringFieldAndNonObjectLineAreErrors) {
  const auto number = write_temp_file("num.jsonl", "{\"prompt\": 5}\n");
  EXPECT_NE(input_error([&] { PromptDataset::load(number, {}); }).find("expected a string"),
            std::string::npos);
  const auto array = write_temp_file("arr.jsonl", "{\"prompt\": \"a\"}\n[1, 2]\n");
  const std::string message = input_error([&] { PromptDataset::load(array, {}); });
  EXPECT_NE(message.find(":2: expected a JSON object"), std::string::npos) << message;
}

TEST(PromptDataset, InvalidUtf8InTextNamesLineAndByte) {
  const auto path = write_temp_file("bad.txt", "fine\nab\xC3(\n");
  const std::string message = input_error([&] { PromptDataset::load(path, {}); });
  EXPECT_NE(message.find(path + ":2: invalid UTF-8 at byte 3"), std::string::npos) << message;
}

TEST(PromptDataset, EmptyFileIsAnError) {
  const auto path = write_temp_file("empty.txt", "\n\n");
  EXPECT_NE(input_error([&] { PromptDataset::load(path, {}); }).find("holds no prompt"),
            std::string::npos);
  EXPECT_THROW(PromptDataset::from_prompts({}, "memory"), InputError);
}

TEST(PromptDataset, MissingFileIsAnInputError) {
  EXPECT_THROW(PromptDataset::load("/nonexistent/prompts.txt", {}), InputError);
}

TEST(PromptDataset, HhRlhfCutsBeforeTheLastAssistantReply) {
  const std::string conversation =
      "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Name a color.\n\nAssistant: Blue.";
  EXPECT_EQ(hh_rlhf_prompt(conversation),
            "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Name a color.\n\nAssistant:");
  EXPECT_EQ(hh_rlhf_prompt("\n\nHuman: only a question"), "");
  EXPECT_EQ(hh_rlhf_prompt("\n\nAssistant: no human before"), "");
}

TEST(PromptDataset, HhRlhfLinesAreCutAndBadOnesNamed) {
  const auto path = write_temp_file(
      "hh.jsonl",
      "{\"chosen\": \"\\n\\nHuman: Q?\\n\\nAssistant: A.\"}\n{\"chosen\": \"plain\"}\n");
  DatasetOptions options;
  options.field = "chosen";
  options.hh_rlhf = true;
  options.max_prompts = 1;
  EXPECT_EQ(PromptDataset::load(path, options).prompt(0), "\n\nHuman: Q?\n\nAssistant:");
  options.max_prompts = 0;
  const std::string message = input_error([&] { PromptDataset::load(path, options); });
  EXPECT_NE(message.find(path + ":2:"), std::string::npos) << message;
  EXPECT_NE(message.find("HH-RLHF"), std::string::npos) << message;
}

TEST(PromptDataset, HhRlhfNeedsJsonl) {
  const auto path = write_temp_file("hh.txt", "Human: hi\n");
  DatasetOptions options;
  options.hh_rlhf = true;
  EXPECT_NE(input_error([&] { PromptDataset::load(path, options); }).find("data.hh_rlhf"),
            std::string::npos);
}

TEST(PromptSchedule, EpochOrderIsAReproduciblePermutation) {
  const PromptSchedule schedule(7, 50, 4, true);
  const auto order = schedule.epoch_order(0);
  auto sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) EXPECT_EQ(sorted[i], i);
  EXPECT_EQ(order, PromptSchedule(7, 50, 4, true).epoch_order(0));
  EXPECT_NE(order, schedule.epoch_order(1));
  EXPECT_NE(order, PromptSchedule(8, 50, 4, true).epoch_order(0));
  std::vector<size_t> identity(50);
  for (size_t i = 0; i < identity.size(); ++i) identity[i] = i;
  EXPECT_NE(order, identity);
}

TEST(PromptSchedule, WithoutShuffleFollowsFileOrder) {
  const PromptSchedule schedule(7, 5, 2, false);
  EXPECT_EQ(schedule.batch(0), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(schedule.batch(2), (std::vector<size_t>{4, 0}));
}

TEST(PromptSchedule, BatchesCoverEachEpochOnceAndCrossEpochBoundaries) {
  const PromptSchedule schedule(3, 10, 4, true);
  // Steps 0..4 take 20 positions: exactly epochs 0 and 1, the boundary falling inside step 2.
  std::vector<size_t> visited;
  for (int64_t step = 0; step < 5; ++step) {
    const auto batch = schedule.batch(step);
    ASSERT_EQ(batch.size(), 4u);
    visited.insert(visited.end(), batch.begin(), batch.end());
  }
  const auto epoch0 = schedule.epoch_order(0);
  const auto epoch1 = schedule.epoch_order(1);
  EXPECT_EQ(std::vector<size_t>(visited.begin(), visited.begin() + 10), epoch0);
  EXPECT_EQ(std::vector<size_t>(visited.begin() + 10, visited.end()), epoch1);
}

TEST(PromptSchedule, BatchDependsOnStepAloneNotOnCallOrder) {
  const PromptSchedule forward(11, 13, 5, true);
  const PromptSchedule backward(11, 13, 5, true);
  std::vector<std::vector<size_t>> a, b(20);
  for (int64_t step = 0; step < 20; ++step) a.push_back(forward.batch(step));
  for (int64_t step = 19; step >= 0; --step) b[step] = backward.batch(step);
  EXPECT_EQ(a, b);
}

TEST(PromptSchedule, BatchLargerThanDatasetSpansSeveralEpochs) {
  const PromptSchedule schedule(1, 3, 7, true);
  const auto batch = schedule.batch(1);  // positions 7..13: epoch 2 (1), epoch 3 (3), epoch 4 (3)
  std::vector<size_t> expected;
  expected.push_back(schedule.epoch_order(2)[1]);
  expected.push_back(schedule.epoch_order(2)[2]);
  for (int64_t epoch : {3, 4}) {
    for (size_t i : schedule.epoch_order(epoch)) expected.push_back(i);
  }
  expected.resize(7);
  EXPECT_EQ(batch, expected);
}

TEST(PromptSchedule, CursorCountsPositionsAcrossEpochs) {
  const PromptSchedule schedule(0, 10, 4, true);
  EXPECT_EQ(schedule.cursor_at(0), (DataCursor{0, 0}));
  EXPECT_EQ(schedule.cursor_at(2), (DataCursor{0, 8}));
  EXPECT_EQ(schedule.cursor_at(3), (DataCursor{1, 2}));
  EXPECT_EQ(schedule.cursor_at(25), (DataCursor{10, 0}));
  // Far steps stay exact: position = (step * B) mod N.
  const int64_t far = int64_t{1} << 40;
  EXPECT_EQ(schedule.cursor_at(far).position, (far % 10) * 4 % 10);
  EXPECT_EQ(schedule.cursor_at(far).epoch, far * 4 / 10);
}

TEST(PromptSchedule, ResumeCheckRejectsAChangedDataset) {
  const PromptSchedule saved(0, 10, 4, true);
  const DataCursor cursor = saved.cursor_at(3);
  EXPECT_NO_THROW(PromptSchedule(0, 10, 4, true).check_resume(3, cursor));
  EXPECT_THROW(PromptSchedule(0, 12, 4, true).check_resume(3, cursor), InputError);
}

TEST(PromptSchedule, EmptyDatasetIsAnError) {
  EXPECT_THROW(PromptSchedule(0, 0, 4, true), InputError);
}

}  // namespace
}  // namespace alignpro
