#pragma once

namespace collectorctl {

// collectorctl's version: the project's, given by the build.
inline constexpr const char* kVersion = COLLECTORCTL_VERSION;

}  // namespace collectorctl
