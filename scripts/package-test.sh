#!/usr/bin/env bash
# The Debian package, end to end on this machine: builds caap_<version>_amd64.deb with cargo-deb, installs it,
# checks the files, the caap system user, the permissions and the unit (systemd-analyze verify), runs
# `caap init` into /etc/caap as README ("Operating caap") tells an operator, starts `caap serve` as the caap
# user and asks /health, then purges the package and checks that nothing is left.
#
# Needs root (or passwordless sudo) and dpkg; prints SKIPPED otherwise. Refuses to run where a caap package
# or a caap user already exists (it would remove them). cargo-deb is installed if missing
# (`cargo install cargo-deb --locked`, a few minutes once). By default the package wraps the debug binary
# the test suite built (fast); CAAP_DEB_RELEASE=1 builds the real one (release, no demo features).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caap/target}"
skip() { echo "SKIPPED: the Debian package test ($*)"; exit 0; }
fail() { echo "FAIL: $*"; exit 1; }
if [ "$(id -u)" = 0 ]; then root=()
elif sudo -n true 2>/dev/null; then root=(sudo)
else skip "needs root or passwordless sudo"; fi
as_root() { "${root[@]}" "$@"; }
command -v dpkg >/dev/null || skip "no dpkg: not a Debian-like system"
if dpkg-query -W -f='${Status}' caap 2>/dev/null | grep -q "install ok"; then
  skip "a caap package is installed on this machine; not touching it"
fi
getent passwd caap >/dev/null && skip "a caap user exists on this machine; not touching it"

if ! cargo deb --version >/dev/null 2>&1; then
  echo "cargo install cargo-deb --locked"
  cargo install cargo-deb --locked --quiet
fi
if [ "${CAAP_DEB_RELEASE:-0}" = 1 ]; then
  cargo deb -p caap-connector
  profile_dir="$CARGO_TARGET_DIR/debian"
else
  cargo build -q -p caap-connector --bin caap
  cargo deb -p caap-connector --no-build --profile dev --no-strip
  profile_dir="$CARGO_TARGET_DIR/debian"
fi
version=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print([p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="caap-connector"][0])')
deb="$profile_dir/caap_${version}_amd64.deb"
[ -f "$deb" ] || fail "no $deb"
echo "ok: built $(basename "$deb")"

work=$(mktemp -d /tmp/caap-deb.XXXXXX)
chmod 755 "$work"
cleanup() {
  [ -n "${serve_pid:-}" ] && as_root kill "$serve_pid" 2>/dev/null || true
  as_root dpkg --purge caap >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_root dpkg -i "$deb" >/dev/null
mode() { stat -c '%a %U:%G' "$1"; }
[ -x /usr/bin/caap ] || fail "/usr/bin/caap is not installed"
[ "$(mode /usr/bin/caap)" = "755 root:root" ] || fail "/usr/bin/caap: $(mode /usr/bin/caap)"
[ -f /lib/systemd/system/caap.service ] || fail "no caap.service"
[ "$(mode /etc/caap)" = "750 caap:caap" ] || fail "/etc/caap: $(mode /etc/caap)"
[ "$(mode /var/lib/caap)" = "750 caap:caap" ] || fail "/var/lib/caap: $(mode /var/lib/caap)"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd caap)
[ "$uid" -lt 1000 ] || fail "caap is not a system user (uid $uid)"
[ "$home" = /var/lib/caap ] || fail "caap's home is $home"
case "$shell" in */nologin|/bin/false) ;; *) fail "caap's shell is $shell";; esac
echo "ok: /usr/bin/caap, caap.service, user caap (uid $uid, no login), /etc/caap and /var/lib/caap 0750 caap:caap"

if command -v systemd-analyze >/dev/null; then
  if out=$(as_root systemd-analyze verify /lib/systemd/system/caap.service 2>&1); then
    echo "ok: systemd-analyze verify caap.service"
  else
    echo "$out"; fail "systemd-analyze verify caap.service"
  fi
  security=$(as_root systemd-analyze security --offline=yes /lib/systemd/system/caap.service 2>/dev/null | tail -1 || true)
  [ -n "$security" ] && echo "   $security"
else
  echo "SKIPPED: systemd-analyze verify (no systemd-analyze)"
fi

# What README tells an operator (ports 0 here, to stay clear of anything else on this machine).
as_root runuser -u caap -- caap init --dir /etc/caap --data-dir /var/lib/caap --name "Paketstad" \
  --public-url https://caap.paketstad.example --dsp-bind 127.0.0.1:0 --api-bind 127.0.0.1:0 >/dev/null
[ "$(as_root stat -c '%a %U:%G' /etc/caap/caap.toml)" = "600 caap:caap" ] || fail "/etc/caap/caap.toml: $(as_root stat -c '%a %U:%G' /etc/caap/caap.toml)"
[ "$(as_root stat -c '%a %U:%G' /var/lib/caap/keys/participant.jwk)" = "600 caap:caap" ] || fail "the participant key"
as_root grep -q 'data_dir = "/var/lib/caap"' /etc/caap/caap.toml || fail "caap.toml does not keep state in /var/lib/caap"
echo "ok: caap init into /etc/caap (config 0600) with state in /var/lib/caap (key 0600)"

# The service's command line, as the caap user: it starts, answers /health, and keeps its database in
# /var/lib/caap.
# A simple command, not the as_root function, so that $! is the process (env and setpriv exec caap; sudo relays
# signals), with the empty environment a systemd service starts with (none of the test suite's variables).
"${root[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setpriv --reuid=caap --regid=caap --init-groups /usr/bin/caap serve --config /etc/caap/caap.toml \
  >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 300); do grep -q '^caap: ready' "$work/serve.log" && break; sleep 0.1; done
grep -q '^caap: ready' "$work/serve.log" || { cat "$work/serve.log"; fail "caap serve did not start"; }
api=$(sed -n 's/^caap: ready .*api=\([^ ]*\).*/\1/p' "$work/serve.log")
python3 -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://$api/health').status == 200 else 1)" \
  || fail "/health"
as_root test -f /var/lib/caap/caap.db || fail "no database in /var/lib/caap"
as_root kill -TERM "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
serve_pid=""
grep -q '^caap: stopped' "$work/serve.log" || { cat "$work/serve.log"; fail "caap serve did not stop on SIGTERM"; }
echo "ok: caap serve as caap: ready, /health 200, database in /var/lib/caap"

as_root dpkg --purge caap >/dev/null
[ ! -e /usr/bin/caap ] || fail "/usr/bin/caap is left"
[ ! -e /etc/caap ] && [ ! -e /var/lib/caap ] || fail "/etc/caap or /var/lib/caap is left after purge"
getent passwd caap >/dev/null && fail "the caap user is left after purge"
echo "ok: dpkg --purge caap removes the binary, the unit, the directories and the user"
