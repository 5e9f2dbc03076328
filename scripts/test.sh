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
# Installs the Debian packages of a tool some tests need when it is missing (as root, with apt),
# and makes those tests required (`$flag`); under CI=true a tool that cannot be had fails the run.
require_tool() {
  local tool=$1 flag=$2
  shift 2
  if ! command -v "$tool" >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing $* with apt" >&2
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@")
    "${install[@]}" >&2 || { apt-get update -q >&2 && "${install[@]}" >&2; } || true
  fi
  if command -v "$tool" >/dev/null 2>&1; then
    export "$flag=1"
  elif [[ ${CI:-} == true ]]; then
    echo "test.sh: $tool is missing and could not be installed (CI=true: failing)" >&2
    exit 1
  fi
}
# promtool (Debian's prometheus package) lints /metrics in tests/observability.rs.
require_tool promtool DYNABOX_REQUIRE_PROMTOOL prometheus
# The console's browser tests drive headless Chromium through chromedriver.
require_tool chromedriver DYNABOX_REQUIRE_BROWSER chromium chromium-driver
cargo test --workspace --release "$@"
