#!/usr/bin/env bash
# Runs every test of the workspace against real backends: the embedded store and PostgreSQL
# (found or started by scripts/postgres.sh), and the console in headless Chromium (installed with
# apt when missing). Extra arguments go to `cargo test`.
# Tests build with the release profile so the same build serves the acceptance runs in .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/postgres.sh
pg_ensure
if [[ -n ${DATABASE_URL:-} ]]; then
  export DYNABOX_REQUIRE_POSTGRES=1
  echo "test.sh: PostgreSQL tests use ${DATABASE_URL%%@*}@…" >&2
fi
# The console's browser tests drive headless Chromium through chromedriver, Debian's packages,
# installed here when missing; with them the tests must run (never skip).
if ! command -v chromedriver >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >&2 || {
    apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >&2; } || true
fi
if command -v chromedriver >/dev/null 2>&1; then
  export DYNABOX_REQUIRE_BROWSER=1
elif [[ ${CI:-} == true ]]; then
  echo "test.sh: no chromedriver and it could not be installed (CI=true: failing)" >&2
  exit 1
fi
cargo test --workspace --release "$@"
