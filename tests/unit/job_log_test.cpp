#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "job_log.h"

namespace collectord {
namespace {

namespace fs = std::filesystem;

class JobLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/collectord-joblog-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    path_ = (dir_ / "ni_00000001.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string contents() {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(JobLogTest, BelowTheCapEverythingIsKept) {
  JobLog log(path_, 1000);
  std::string error;
  ASSERT_TRUE(log.open(error)) << error;
  log.write("line 1\n");
  log.write("line 2\n");
  EXPECT_EQ(contents(), "line 1\nline 2\n");
  const auto slice = readJobLog(path_, 0, 100);
  ASSERT_TRUE(slice);
  EXPECT_EQ(slice->text, "line 1\nline 2\n");
  EXPECT_EQ(slice->size, 14u);
  EXPECT_EQ(slice->dropped, 0u);
  EXPECT_EQ(slice->next_offset, 14u);
}

TEST_F(JobLogTest, OverTheCapTheOldestHalfIsDroppedWithAMarker) {
  JobLog log(path_, 100);
  std::string error;
  ASSERT_TRUE(log.open(error));
  std::string all;
  for (int i = 0; i < 40; ++i) {
    const std::string line = "line " + std::to_string(i) + "\n";
    log.write(line);
    all += line;
  }
  const std::string text = contents();
  EXPECT_EQ(text.rfind("[collectord] ", 0), 0u) << text;
  EXPECT_NE(text.find("earlier bytes of output were dropped"), std::string::npos);
  EXPECT_LE(text.size(), 100u + 80u) << "the cap holds, give or take the marker";
  const auto slice = readJobLog(path_, 0, 1000);
  ASSERT_TRUE(slice);
  EXPECT_EQ(slice->size, all.size()) << "offsets count every byte ever written";
  EXPECT_GT(slice->dropped, 0u);
  EXPECT_EQ(slice->offset, slice->dropped) << "reads start where the output still exists";
  EXPECT_EQ(all.substr(slice->dropped), slice->text) << "what is left is the exact tail";
}

TEST_F(JobLogTest, AWriteLargerThanTheCapKeepsItsEndAndCountsEverythingDropped) {
  JobLog log(path_, 100);
  std::string error;
  ASSERT_TRUE(log.open(error));
  std::string all = "first line\n";
  log.write(all);
  std::string big;
  for (int i = 0; i < 50; ++i) big += "chunk " + std::to_string(i) + "\n";
  log.write(big);
  all += big;
  const auto slice = readJobLog(path_, 0, 1000);
  ASSERT_TRUE(slice);
  EXPECT_EQ(slice->size, all.size());
  EXPECT_EQ(slice->dropped + slice->text.size(), all.size());
  EXPECT_EQ(all.substr(slice->dropped), slice->text) << "the kept part is the exact end";
  log.write("after\n");
  all += "after\n";
  const auto later = readJobLog(path_, 0, 1000);
  EXPECT_EQ(later->size, all.size());
  EXPECT_EQ(all.substr(later->dropped), later->text);
}

TEST_F(JobLogTest, ReadsByOffsetAndLimitAndTailsByLines) {
  JobLog log(path_, 10000);
  std::string error;
  ASSERT_TRUE(log.open(error));
  log.write("a\nb\nc\nd\n");
  auto slice = readJobLog(path_, 2, 3);
  EXPECT_EQ(slice->text, "b\nc");
  EXPECT_EQ(slice->next_offset, 5u);
  slice = readJobLog(path_, 100, 3);
  EXPECT_EQ(slice->text, "");
  EXPECT_EQ(slice->offset, 8u);
  auto tail = tailJobLog(path_, 2);
  EXPECT_EQ(tail->text, "c\nd\n");
  EXPECT_EQ(tail->offset, 4u);
  EXPECT_EQ(tailJobLog(path_, 10)->text, "a\nb\nc\nd\n");
  EXPECT_EQ(tailJobLog(path_, 0)->text, "");
  EXPECT_FALSE(readJobLog((dir_ / "none.log").string(), 0, 10));
}

TEST_F(JobLogTest, TailAndPagingReadOnlyWhatTheyNeedAcrossChunks) {
  JobLog log(path_, 10 * 1024 * 1024);
  std::string error;
  ASSERT_TRUE(log.open(error));
  std::string all;
  for (int i = 0; i < 300; ++i) {
    const std::string line = "line " + std::to_string(i) + " " + std::string(1000, 'x') + "\n";
    log.write(line);
    all += line;
  }
  // 100 lines of ~1 KB span two 64 KiB chunks read from the end.
  const auto tail = tailJobLog(path_, 100);
  ASSERT_TRUE(tail);
  std::size_t cut = all.size();
  for (int i = 0; i < 100; ++i) cut = all.rfind('\n', cut - 2) + 1;
  EXPECT_EQ(tail->text, all.substr(cut));
  EXPECT_EQ(tail->offset, cut);
  EXPECT_EQ(tailJobLog(path_, 1000)->text, all) << "fewer lines than asked: everything";
  const auto page = readJobLog(path_, 150'000, 70'000);
  EXPECT_EQ(page->text, all.substr(150'000, 70'000));
}

TEST_F(JobLogTest, ReopeningKeepsCountingDroppedBytes) {
  {
    JobLog log(path_, 50);
    std::string error;
    ASSERT_TRUE(log.open(error));
    for (int i = 0; i < 20; ++i) log.write("0123456789\n");
  }
  const auto before = readJobLog(path_, 0, 0);
  JobLog log(path_, 50);
  std::string error;
  ASSERT_TRUE(log.open(error));
  for (int i = 0; i < 20; ++i) log.write("0123456789\n");
  const auto after = readJobLog(path_, 0, 0);
  EXPECT_EQ(after->size, before->size + 220u);
}

}  // namespace
}  // namespace collectord
