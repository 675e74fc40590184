#include "utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace collectord::http {
namespace {

TEST(Utf8, WellFormedTextIsValidToTheEnd) {
  for (const std::string& text :
       {std::string(""), std::string("plain"), std::string("\0nul inside", 11),
        std::string("\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80"), std::string("\xf4\x8f\xbf\xbf")}) {
    EXPECT_EQ(validUtf8Prefix(text), text.size()) << text;
    EXPECT_EQ(escapeInvalidUtf8(text), text);
  }
}

TEST(Utf8, TheValidPrefixEndsAtTheFirstMalformedSequence) {
  EXPECT_EQ(validUtf8Prefix("ab\xff"), 2u);             // never a UTF-8 byte
  EXPECT_EQ(validUtf8Prefix("a\xc0\xaf"), 1u);          // overlong '/'
  EXPECT_EQ(validUtf8Prefix("a\xe0\x80\xaf"), 1u);      // overlong, three bytes
  EXPECT_EQ(validUtf8Prefix("a\xed\xa0\x80"), 1u);      // UTF-16 surrogate D800
  EXPECT_EQ(validUtf8Prefix("a\xf4\x90\x80\x80"), 1u);  // above U+10FFFF
  EXPECT_EQ(validUtf8Prefix("\xc3\xa9\xe2\x98"), 2u);   // cut short
  EXPECT_EQ(validUtf8Prefix("\xc3\xa9\x80"), 2u);       // a lone continuation byte
}

TEST(Utf8, MalformedBytesAreWrittenAsHexEscapesAndTheRestKept) {
  EXPECT_EQ(escapeInvalidUtf8("\xff.md"), "\\xFF.md");
  EXPECT_EQ(escapeInvalidUtf8("\xc0\xaf"), "\\xC0\\xAF");
  EXPECT_EQ(escapeInvalidUtf8("\xef\xbb\xbf\xef"), "\xef\xbb\xbf\\xEF");
  EXPECT_EQ(escapeInvalidUtf8("\xe2\x98\xc3\xa9"), "\\xE2\\x98\xc3\xa9");
}

}  // namespace
}  // namespace collectord::http
