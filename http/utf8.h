#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace collectord::http {

// How many leading bytes of `text` are well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF); text.size() when all of it is.
std::size_t validUtf8Prefix(std::string_view text);

// `text` with every byte that is not part of well-formed UTF-8 written as the four characters
// "\xHH", so that a message quoting what a client sent is itself valid UTF-8 (RFC 8259 8.1) and
// still shows a person which bytes were wrong.
std::string escapeInvalidUtf8(std::string_view text);

}  // namespace collectord::http
