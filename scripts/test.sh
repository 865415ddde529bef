#!/usr/bin/env bash
# The whole caap test suite, from a fresh machine: installs what it needs, starts a throwaway
# PostgreSQL, then runs fmt, the architecture checks, clippy, unit tests, the store suite on SQLite
# and PostgreSQL, and the end-to-end tests with real `caap` processes on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caap/target}"
export CAAP_SHARED_DIR="${CAAP_SHARED_DIR:-$root/../shared}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

step "Installing what the build and the tests need"
need=()
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
pg_bin=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && pg_bin="$d"; done
[ -n "$pg_bin" ] || need+=(postgresql)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "apt-get install ${need[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ -z "$pg_bin" ]; then for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && pg_bin="$d"; done; fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
runner=(cargo test --workspace --lib --bins --tests --no-fail-fast)
if cargo nextest --version >/dev/null 2>&1; then
  runner=(cargo nextest run --workspace --lib --bins --tests --no-fail-fast --failure-output final)
fi

step "Formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "Architecture: domain crates know neither actix-web nor sea-orm"
for crate in caap-canonical caap-catalog caap-contracts caap-policy caap-identity; do
  for banned in actix-web sea-orm sqlx reqwest tokio; do
    # `-e normal` leaves dev-dependencies out (ssi, a test-only interop check, brings tokio); `cargo tree -i`
    # exits 0 with no output when the crate is in the workspace graph only through them.
    if [ -n "$(cargo tree -q -e normal -p "$crate" -i "$banned" 2>/dev/null)" ]; then
      echo "FAIL: $crate depends on $banned (see ARCHITECTURE.md, invariants)"; exit 1
    fi
  done
done
echo "ok: catalog, contracts, policy and identity are free of actix-web, sea-orm, sqlx, reqwest and tokio"

step "Architecture: connector's modules (http/ never uses the store; no import cycle)"
python3 scripts/check_structure.py

step "Lints (cargo clippy --workspace --all-targets -D warnings)"
cargo clippy --workspace --all-targets -q -- -D warnings

step "The server build: no simulator, no demo (caap-connector --no-default-features, docs/adr/0006)"
cargo clippy -p caap-connector --no-default-features --lib --bins -q -- -D warnings

step "Starting a throwaway PostgreSQL for the store suite"
pg_dir=$(mktemp -d /tmp/caap-pg.XXXXXX)
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
cleanup() {
  if [ -n "${oidc_pid:-}" ]; then kill "$oidc_pid" 2>/dev/null || true; wait "$oidc_pid" 2>/dev/null || true; fi
  pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$pg_dir"
}
trap cleanup EXIT
pg "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust >/dev/null
pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -o "-p $pg_port -k $pg_dir -h 127.0.0.1" -l "$pg_dir/log" -w start >/dev/null
export CAAP_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
export CAAP_TEST_REQUIRE_POSTGRES=1
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port"

step "Starting the OIDC provider for the management API tests (tests/oidc, oidc-provider)"
if ! command -v npm >/dev/null; then
  echo "apt-get install nodejs npm"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
fi
npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
# The citizen portal's browser test (tests/e2e/portal.rs): Debian's Chromium, driven by playwright-core, with axe-core.
if [ ! -x /usr/bin/chromium ]; then
  echo "apt-get install chromium"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi
npm ci --prefix tests/portal --no-audit --no-fund --loglevel=error
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
random_secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
oidc_port=$(free_port)
export CAAP_TEST_OIDC_ISSUER="http://127.0.0.1:$oidc_port"
export CAAP_TEST_OIDC_AUDIENCE="urn:caap:management-api"
export CAAP_TEST_OIDC_ADMIN_CLIENT_ID="caap-admin" CAAP_TEST_OIDC_ADMIN_CLIENT_SECRET="$(random_secret)"
export CAAP_TEST_OIDC_READER_CLIENT_ID="caap-reader" CAAP_TEST_OIDC_READER_CLIENT_SECRET="$(random_secret)"
OIDC_RESOURCE="$CAAP_TEST_OIDC_AUDIENCE" \
  OIDC_ADMIN_CLIENT_ID="$CAAP_TEST_OIDC_ADMIN_CLIENT_ID" OIDC_ADMIN_CLIENT_SECRET="$CAAP_TEST_OIDC_ADMIN_CLIENT_SECRET" \
  OIDC_READER_CLIENT_ID="$CAAP_TEST_OIDC_READER_CLIENT_ID" OIDC_READER_CLIENT_SECRET="$CAAP_TEST_OIDC_READER_CLIENT_SECRET" \
  node tests/oidc/provider.mjs "$oidc_port" >"$pg_dir/oidc.log" 2>&1 &
oidc_pid=$!
python3 - "$CAAP_TEST_OIDC_ISSUER/.well-known/openid-configuration" <<'PY' || { cat "$pg_dir/oidc.log"; echo "FAIL: the OIDC provider did not start"; exit 1; }
import json, sys, time, urllib.request
for _ in range(150):
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
            if json.load(r).get("jwks_uri"):
                sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(1)
PY
echo "oidc-provider $(node -p 'require("./tests/oidc/node_modules/oidc-provider/package.json").version') at $CAAP_TEST_OIDC_ISSUER"

step "Installing schemathesis (PyPI) for the management API's OpenAPI conformance test"
st_version=4.32.5
st_venv="$HOME/.cache/caap/schemathesis"
if [ "$("$st_venv/bin/st" --version 2>/dev/null)" != "st, version $st_version" ]; then
  rm -rf "$st_venv"
  python3 -m venv "$st_venv"
  "$st_venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$st_version"
fi
export CAAP_SCHEMATHESIS="$st_venv/bin/st" CAAP_TEST_REQUIRE_SCHEMATHESIS=1
"$CAAP_SCHEMATHESIS" --version

step "Python tools for the open-data tests: pySHACL (DCAT-AP shapes) and prometheus_client (metrics parser)"
venv="${CAAP_PYTHON_VENV:-$HOME/.cache/caap/venv}"
if ! "$venv/bin/python" -c 'import pyshacl, prometheus_client' 2>/dev/null; then
  python3 -c 'import ensurepip' 2>/dev/null || {
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
  }
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'pyshacl==0.40.1' 'prometheus_client==0.26.0'
fi
export CAAP_PYTHON_VENV="$venv"
echo "pyshacl $("$venv/bin/python" -c 'import pyshacl; print(pyshacl.__version__)') in $venv"

step "Unit tests, the store suite (SQLite + PostgreSQL) and the end-to-end tests"
"${runner[@]}"

step "The Debian package: build, install, check, caap init into /etc/caap, purge (scripts/package-test.sh)"
scripts/package-test.sh
