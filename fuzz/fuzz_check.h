#pragma once

#include <cstdio>
#include <cstdlib>

// An invariant of a fuzz target. A violation prints what was expected and aborts, which
// libFuzzer records as a crash and saves the input for.
#define FUZZ_CHECK(condition, what)                                                          \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant violated: %s (%s)\n", __FILE__, __LINE__, what, \
                   #condition);                                                              \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)
