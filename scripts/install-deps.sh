#!/usr/bin/env bash
# Installs the Debian 12 packages collectord needs to build, run and test.
# Runs apt-get only when something is missing, so a second call costs nothing.
# Packages named as arguments are added to the list (bench/run.sh adds its tools that way).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libpoco-dev libboost1.81-dev libgtest-dev libgmock-dev libbenchmark-dev libsqlite3-dev libpq-dev libicu-dev
  python3 curl sqlite3 openssl
  # Tests: response schemas, metrics parsing, the browser check of CORS.
  python3-jsonschema python3-prometheus-client python3-pip python3-setuptools chromium
  # The PostgreSQL store's tests run a real server of their own (scripts/test-postgres.sh).
  postgresql
  # Fuzzing (scripts/run-fuzzers.sh): clang with libFuzzer and the sanitizer runtimes.
  clang libclang-rt-14-dev
  "$@"
)
# The dashboard's browser test runs on Node.js (tests/e2e/dashboard). A machine may already
# have a node of its own (e.g. a newer one from another repository): Debian's only when none is.
if ! command -v node >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
