#!/usr/bin/env bash
# Runs every test of the workspace against real backends: the embedded store and PostgreSQL
# (found or started by scripts/postgres.sh). Extra arguments go to `cargo test`.
# Tests build with the release profile so the same build serves the acceptance runs in .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/postgres.sh
pg_ensure
if [[ -n ${DATABASE_URL:-} ]]; then
  export DYNABOX_REQUIRE_POSTGRES=1
  echo "test.sh: PostgreSQL tests use ${DATABASE_URL%%@*}@…" >&2
fi
# promtool (Debian's prometheus package) lints /metrics in tests/observability.rs.
if ! command -v promtool >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "test.sh: installing promtool with apt" >&2
  install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus)
  "${install[@]}" >&2 || { apt-get update -q >&2 && "${install[@]}" >&2; } || true
fi
if command -v promtool >/dev/null 2>&1; then
  export DYNABOX_REQUIRE_PROMTOOL=1
elif [[ ${CI:-} == true ]]; then
  echo "test.sh: promtool is missing and could not be installed (CI=true: failing)" >&2
  exit 1
fi
cargo test --workspace --release "$@"
