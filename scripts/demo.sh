#!/usr/bin/env bash
# Builds caap and runs the multi-city demo (no external services; Ctrl-C stops it).
# Extra arguments go to `caap demo`, e.g. `bash scripts/demo.sh --exit`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caap/target}"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
need=()
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}"
fi
cargo build --release -q -p caap-connector --bin caap
exec "$CARGO_TARGET_DIR/release/caap" demo "$@"
