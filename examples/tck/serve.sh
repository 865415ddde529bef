#!/usr/bin/env bash
# Starts caap with the DSP TCK profile in the foreground: builds caap and the scripted counterpart
# (examples/tck/script.rs), makes a fresh scratch directory with a key pair, starts `caap serve` with
# examples/tck/caap.toml, then the script (it seeds the TCK's datasets and agreements and serves the initiate
# webhooks).
# Ctrl-C stops both. Runnable from any directory.
#
#   examples/tck/serve.sh [--release]
#
# Environment:
#   TCK_DATA_DIR     scratch directory, emptied on every start (default: ${TMPDIR:-/tmp}/caap-tck)
#   TCK_SCRIPT_BIND  the webhooks' address (default 127.0.0.1:8687)
#   TCK_REACTION_MS  the script's pause before each scripted step (default 300)
#   CAAP_*           overrides of caap.toml keys, read by caap and the script alike, e.g.
#                    CAAP_DSP_BIND=0.0.0.0:8080 CAAP_PARTICIPANT_PUBLIC_URL=http://host.docker.internal:8080
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
config="$here/caap.toml"

profile=debug
build_flags=()
for arg in "$@"; do
    case "$arg" in
        --release) profile=release; build_flags=(--release) ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "serve.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

echo "serve.sh: building caap and the TCK script ($profile)"
(cd "$repo" && cargo build "${build_flags[@]}" -p caap-connector --bin caap --example tck-script)
target="$(cd "$repo" && cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)"
caap="$target/$profile/caap"
script="$target/$profile/examples/tck-script"

# A fresh scratch directory each time: an empty database, so every TCK run starts from the seed alone.
data="${TCK_DATA_DIR:-${TMPDIR:-/tmp}/caap-tck}"
if [ -e "$data" ]; then
    if [ ! -e "$data/.caap-tck" ]; then
        echo "serve.sh: $data exists and was not made by serve.sh; refusing to empty it (set TCK_DATA_DIR)" >&2
        exit 1
    fi
    rm -rf "$data"
fi
mkdir -p "$data"
touch "$data/.caap-tck"
# `caap init` makes keys/participant.jwk (caap.toml's default identity.key_file, relative to data_dir).
# Its generated caap.toml is not used: this profile's caap.toml is, with data_dir pointed here.
"$caap" init --dir "$data" --name "caap (DSP TCK profile)" >/dev/null
rm -f "$data/caap.toml"
export CAAP_DATA_DIR="$data"

pids=()
stop() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap 'stop; exit 130' INT TERM
trap stop EXIT

echo "serve.sh: caap serve --config $config (data in $data)"
"$caap" serve --config "$config" &
pids+=($!)
"$script" --config "$config" &
pids+=($!)

# Run until either stops (or Ctrl-C); then stop the other.
set +e
wait -n "${pids[@]}"
status=$?
echo "serve.sh: a process exited (status $status); stopping"
exit "$status"
