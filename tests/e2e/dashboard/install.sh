#!/usr/bin/env bash
# Installs the dashboard test's one npm package (playwright-core, pinned by package-lock.json)
# into tests/e2e/dashboard/node_modules with `npm ci`, only when it is missing or the lock file
# changed since. The browser is Debian's chromium (scripts/install-deps.sh), never a download.
set -euo pipefail
cd "$(dirname "$0")"

stamp=node_modules/.installed-from-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "install.sh: npm is missing (scripts/install-deps.sh installs Debian's nodejs and npm)" >&2
  exit 1
fi
# Two builds running their tests at once must not install over each other.
exec 9>.install.lock
flock 9
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
# No browser download: playwright-core never fetches one; this keeps npm quiet and offline-safe.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
