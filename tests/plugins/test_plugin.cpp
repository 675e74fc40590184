// Test plugins, one behaviour each, chosen by TEST_PLUGIN_BEHAVIOUR at compile time:
// good, fail, crash, abort, throw, hang, wrong_abi, no_entry.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "collectord/plugin.h"

#define BEHAVIOUR(name) (std::strcmp(TEST_PLUGIN_BEHAVIOUR, name) == 0)

extern "C" COLLECTORD_PLUGIN_EXPORT uint32_t collectord_plugin_abi_version(void) {
  return BEHAVIOUR("wrong_abi") ? 2u : COLLECTORD_PLUGIN_ABI_VERSION;
}

#ifndef TEST_PLUGIN_NO_ENTRY
extern "C" COLLECTORD_PLUGIN_EXPORT int collectord_plugin_v1(const collectord_host_v1* host,
                                                             char* error, size_t error_size) {
  host->log(host->context, ("plugin " TEST_PLUGIN_BEHAVIOUR " for job " + std::string(host->job_id)).c_str());
  const char* greeting = collectord_config(host, "GREETING");
  host->progress(host->context, 10, greeting ? greeting : "no greeting");
  if (BEHAVIOUR("fail")) {
    std::snprintf(error, error_size, "API returned 401");
    return 1;
  }
  if (BEHAVIOUR("crash")) {
    volatile int* nowhere = nullptr;
    return *nowhere;
  }
  if (BEHAVIOUR("abort")) std::abort();
  if (BEHAVIOUR("throw")) throw std::runtime_error("thrown across the C boundary");
  if (BEHAVIOUR("hang")) {
    host->progress(host->context, 20, "waiting to be cancelled");
    while (!host->cancelled(host->context)) ::usleep(10'000);
    std::snprintf(error, error_size, "cancelled by the host");
    return 2;
  }
  for (int page = 1; page <= 5; ++page) {
    host->progress(host->context, page * 20, ("Processing page " + std::to_string(page) + "/5").c_str());
  }
  return 0;
}
#endif
