/* collectord plugin ABI, version 1.
 *
 * A native collector is a shared library that exports exactly two symbols:
 *
 *   uint32_t collectord_plugin_abi_version(void);   returns COLLECTORD_PLUGIN_ABI_VERSION
 *   int collectord_plugin_v1(const collectord_host_v1* host, char* error, size_t error_size);
 *
 * collectord never loads a plugin into its own process: `collector-host PLUGIN.so` loads it in
 * a child process of its own, so a plugin that crashes, aborts or leaks fails its job and
 * nothing else. Only C types cross this boundary: no C++ types, no exceptions, no ownership.
 * Everything the host passes stays valid until collectord_plugin_v1 returns and belongs to
 * the host.
 */
#ifndef COLLECTORD_PLUGIN_H
#define COLLECTORD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define COLLECTORD_PLUGIN_ABI_VERSION 1u

/* Marks the two exported symbols; build plugins with -fvisibility=hidden so nothing else is. */
#if defined(__GNUC__)
#define COLLECTORD_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define COLLECTORD_PLUGIN_EXPORT
#endif

/* One configuration entry: the collector file's env.NAME = VALUE settings. */
typedef struct collectord_kv {
  const char* key;
  const char* value;
} collectord_kv;

/* What the host gives the plugin for one run. */
typedef struct collectord_host_v1 {
  uint32_t abi_version; /* COLLECTORD_PLUGIN_ABI_VERSION of the host */
  uint32_t size;        /* sizeof(collectord_host_v1) as the host knows it */
  void* context;        /* pass back to every callback */

  const char* job_id;         /* e.g. "ni_12345678" */
  const char* batch_id;       /* e.g. "bc_12345678" */
  const char* collector_name; /* e.g. "ninja" */
  const collectord_kv* config;
  size_t config_count;

  /* Reports progress: `percent` 0-100, or -1 when unknown; `message` may be NULL. Cheap to
   * call often: collectord keeps the newest. */
  void (*progress)(void* context, int percent, const char* message);
  /* Non-zero once the run is to stop (cancel, timeout, shutdown). Check it between units of
   * work and return soon after: the process is killed after the collector's kill_grace. */
  int (*cancelled)(void* context);
  /* Writes one line to the job's log. */
  void (*log)(void* context, const char* message);
} collectord_host_v1;

/* The value of config entry `key`, or NULL. */
static inline const char* collectord_config(const collectord_host_v1* host, const char* key) {
  for (size_t i = 0; i < host->config_count; ++i) {
    const char* a = host->config[i].key;
    const char* b = key;
    while (*a && *a == *b) {
      ++a;
      ++b;
    }
    if (*a == *b) return host->config[i].value;
  }
  return NULL;
}

/* The entry points a plugin exports. collectord_plugin_v1 returns 0 when the collection
 * succeeded; otherwise non-zero, with a message for the job's `error` written to `error`
 * (at most error_size bytes, NUL-terminated). */
typedef uint32_t (*collectord_plugin_abi_version_fn)(void);
typedef int (*collectord_plugin_v1_fn)(const collectord_host_v1* host, char* error,
                                       size_t error_size);

#ifdef __cplusplus
}
#endif

#endif /* COLLECTORD_PLUGIN_H */
