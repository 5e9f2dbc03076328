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
cargo test --workspace --release "$@"
