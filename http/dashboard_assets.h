#pragma once

#include <string_view>

// The files of the built-in dashboard page (web/), embedded at build time by
// cmake/EmbedText.cmake so that the daemon serves them without files. Each returns the file's
// bytes as stored; they live as long as the program.
namespace collectord::http::dashboard {

std::string_view indexHtml();
std::string_view appJs();
std::string_view appCss();
std::string_view faviconSvg();

}  // namespace collectord::http::dashboard
