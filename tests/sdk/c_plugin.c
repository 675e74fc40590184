/* A plugin in C99 against plugin.h alone: the C ABI needs no C++ anywhere.
 * sdk.out_of_tree_build compiles it with `pkg-config --cflags collectord-sdk`. */
#include <collectord/plugin.h>

COLLECTORD_PLUGIN_EXPORT uint32_t collectord_plugin_abi_version(void) {
  return COLLECTORD_PLUGIN_ABI_VERSION;
}

COLLECTORD_PLUGIN_EXPORT int collectord_plugin_v1(const collectord_host_v1* host, char* error,
                                                  size_t error_size) {
  (void)error;
  (void)error_size;
  host->progress(host->context, 50, "plain C");
  return host->cancelled(host->context) ? 1 : 0;
}
