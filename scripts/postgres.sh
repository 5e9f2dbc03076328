# Sourced by scripts/test.sh and .ci/run: makes sure a PostgreSQL server is reachable and
# exports DATABASE_URL for it. Order: $DATABASE_URL if set; else 127.0.0.1:5432 (started with
# pg_ctlcluster if installed but stopped); else installed with apt and started. Under CI=true a
# database that cannot be had fails the run; elsewhere the PostgreSQL tests are skipped.

pg_reachable() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

pg_start_local() {
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    local version
    for version in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    done
  fi
  for _ in $(seq 1 30); do pg_reachable 127.0.0.1 5432 && return 0; sleep 1; done
  return 1
}

pg_install() {
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1 || return 1
  echo "postgres.sh: installing PostgreSQL with apt" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 || {
    apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; } || return 1
  pg_start_local || return 1
  # A fresh cluster asks for passwords over TCP; give the superuser a known one for tests.
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >&2
}

pg_ensure() {
  if [[ -n ${DATABASE_URL:-} ]]; then
    return 0
  fi
  local password=""
  if ! pg_reachable 127.0.0.1 5432 && ! pg_start_local; then
    if pg_install; then password=":postgres"; else
      if [[ ${CI:-} == true ]]; then
        echo "postgres.sh: no PostgreSQL at 127.0.0.1:5432 and it could not be started or installed (CI=true: failing)" >&2
        return 1
      fi
      echo "postgres.sh: no PostgreSQL available; PostgreSQL tests will be skipped" >&2
      return 0
    fi
  fi
  local server="postgres://postgres${password}@127.0.0.1:5432"
  # A database of dynabox's own keeps test tables out of the others.
  if command -v psql >/dev/null 2>&1; then
    psql "$server/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = 'dynabox_test'" | grep -q 1 ||
      psql "$server/postgres" -qc "CREATE DATABASE dynabox_test" >&2 || true
    export DATABASE_URL="$server/dynabox_test"
  else
    export DATABASE_URL="$server/postgres"
  fi
}

# Prints the URL of an empty database NAME on DATABASE_URL's server, dropping any earlier one:
# a run that counts tables (ListTables pages at 100) must not see the tests' tables.
pg_fresh_database() { # name
  local server=${DATABASE_URL%/*}
  psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >&2 &&
    psql "$server/postgres" -qc "CREATE DATABASE $1" >&2 &&
    echo "$server/$1"
}
