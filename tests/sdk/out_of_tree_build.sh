#!/bin/sh
# sdk.out_of_tree_build: what a plugin author outside this repository does. Installs the main
# build into a temporary prefix, builds plugins/examples/native/ as a project of its own with
# find_package(collectord-sdk), compiles one-file plugins (C++ and C) with the flags of
# `pkg-config --cflags collectord-sdk`, and runs every plugin built through the installed
# collector-host. Any failure fails the test.
#
# usage: out_of_tree_build.sh BUILD_DIR SOURCE_DIR VERSION CXX CC
set -eu

build_dir=$1
source_dir=$2
version=$3
cxx=$4
cc=$5

work=$(mktemp -d "${TMPDIR:-/tmp}/collectord-sdk-test.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix
log=$work/log

fail() {
  echo "FAIL: $*" >&2
  if [ -s "$log" ]; then
    echo "--- output of the last step:" >&2
    cat "$log" >&2
  fi
  exit 1
}

step() {
  echo "== $*"
  : >"$log"
}

launcher=
compile_launcher=
if command -v ccache >/dev/null 2>&1; then
  launcher=-DCMAKE_CXX_COMPILER_LAUNCHER=ccache
  compile_launcher=ccache
fi

step "cmake --install into $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$log" 2>&1 || fail "cmake --install failed"
for f in include/collectord/plugin.h include/collectord/collector.hpp \
         share/cmake/collectord-sdk/collectord-sdkConfig.cmake \
         share/cmake/collectord-sdk/collectord-sdkConfigVersion.cmake \
         share/cmake/collectord-sdk/collectord-sdkTargets.cmake \
         share/pkgconfig/collectord-sdk.pc bin/collectord bin/collector-host; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
# The examples and the test plugins are not part of an installation.
if find "$prefix" -name '*.so' | grep -q .; then
  fail "shared objects were installed: $(find "$prefix" -name '*.so')"
fi
# Nothing installed may point back into the source or build tree, or the prefix cannot move.
if grep -rl -e "$source_dir" -e "$build_dir" "$prefix/share" "$prefix/include" >"$log" 2>&1; then
  fail "installed files name the source or build tree"
fi
"$prefix/bin/collectord" --help >"$log" 2>&1 || fail "the installed collectord --help failed"
host=$prefix/bin/collector-host

# Runs plugin $1 through the installed collector-host with the environment given after it;
# the protocol lines land in $work/progress. Fails unless it completes.
run_plugin() {
  plugin=$1
  shift
  env "$@" COLLECTOR_PROGRESS_FD=3 COLLECTOR_JOB_ID=sd_00000001 "$host" "$plugin" \
    3>"$work/progress" >"$log" 2>&1 || fail "collector-host $plugin exited $?"
  tail -n 1 "$work/progress" | grep -q '"status": "completed"' ||
    fail "collector-host $plugin did not complete: $(cat "$work/progress")"
}

step "configure plugins/examples/native against the installed SDK"
examples=$work/examples
cmake -S "$source_dir/plugins/examples/native" -B "$examples" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF $launcher \
  >"$log" 2>&1 || fail "configuring the examples failed"
found=$(sed -n 's/^collectord-sdk_DIR:PATH=//p' "$examples/CMakeCache.txt")
[ "$found" = "$prefix/share/cmake/collectord-sdk" ] ||
  fail "find_package(collectord-sdk) found '$found', not the installed package"

step "build the examples"
cmake --build "$examples" --parallel 1 >"$log" 2>&1 || fail "building the examples failed"
if grep -q -e "$source_dir/sdk" "$examples/compile_commands.json"; then
  fail "the examples compiled against the source tree's headers, not the installed ones"
fi
plugin=$examples/disk_inventory.so
[ -f "$plugin" ] || fail "no $plugin"
# -fvisibility=hidden: of the plugin's own code only the two entry points are exported.
exported=$(nm -D --defined-only "$plugin" | awk '$2 == "T" { print $3 }' | sort | tr '\n' ' ')
[ "$exported" = "collectord_plugin_abi_version collectord_plugin_v1 " ] ||
  fail "disk_inventory.so exports '$exported'"

step "run the examples"
run_plugin "$plugin" COLLECTOR_CONFIG_KEYS=ROOT,OUTPUT ROOT="$prefix/include" \
  OUTPUT="$work/inventory.json"
grep -q '"files": 2,' "$work/inventory.json" ||
  fail "disk_inventory did not count the 2 installed headers: $(cat "$work/inventory.json")"
grep -q '"extension": ".hpp", "files": 1,' "$work/inventory.json" ||
  fail "disk_inventory did not count collector.hpp: $(cat "$work/inventory.json")"
COLLECTOR_PROGRESS_FD=3 "$examples/mount_usage" 3>"$work/progress" >"$log" 2>&1 ||
  fail "mount_usage exited $?"
tail -n 1 "$work/progress" | grep -q '"status": "completed"' ||
  fail "mount_usage did not complete: $(cat "$work/progress")"

step "compile one-file plugins with pkg-config --cflags collectord-sdk"
PKG_CONFIG_PATH=$prefix/share/pkgconfig
export PKG_CONFIG_PATH
[ "$(pkg-config --modversion collectord-sdk)" = "$version" ] ||
  fail "pkg-config reports version $(pkg-config --modversion collectord-sdk), not $version"
cflags=$(pkg-config --cflags collectord-sdk)
# One -I naming the installed include folder (through ${pcfiledir}, so the prefix can move).
# shellcheck disable=SC2086
set -- $cflags
[ $# -eq 1 ] && [ "${1#-I}" != "$1" ] && [ -d "${1#-I}" ] &&
  [ "$(cd "${1#-I}" && pwd -P)" = "$(cd "$prefix/include" && pwd -P)" ] ||
  fail "pkg-config --cflags collectord-sdk gives '$cflags'"
# shellcheck disable=SC2086 # cflags holds several words by design
$compile_launcher "$cxx" -std=c++17 -Wall -Wextra -Wpedantic -Werror -fPIC -shared \
  -fvisibility=hidden $cflags "$source_dir/tests/sdk/minimal_plugin.cpp" -o "$work/minimal.so" \
  >"$log" 2>&1 || fail "compiling minimal_plugin.cpp failed"
# shellcheck disable=SC2086
$compile_launcher "$cc" -std=c99 -Wall -Wextra -Wpedantic -Werror -fPIC -shared \
  -fvisibility=hidden $cflags "$source_dir/tests/sdk/c_plugin.c" -o "$work/c_plugin.so" \
  >"$log" 2>&1 || fail "compiling c_plugin.c failed"
run_plugin "$work/minimal.so" COLLECTOR_CONFIG_KEYS=WHO WHO=pkg-config
grep -q '"message": "hello from pkg-config"' "$work/progress" ||
  fail "minimal_plugin did not report its config value: $(cat "$work/progress")"
run_plugin "$work/c_plugin.so"
grep -q '"progress": 50, "message": "plain C"' "$work/progress" ||
  fail "c_plugin did not report: $(cat "$work/progress")"

echo "sdk.out_of_tree_build: ok"
