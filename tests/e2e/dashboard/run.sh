#!/usr/bin/env bash
# ctest's entry point for e2e.dashboard: installs playwright-core if needed, then runs the test.
# Arguments go to dashboard_test.js (--daemon PATH --artifacts DIR [--docs-screenshot PNG]).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/install.sh"
exec node "$here/dashboard_test.js" "$@"
