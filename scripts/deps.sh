#!/bin/sh
# Install the Debian packages Sanad needs to build, run and test, when missing.
# Idempotent and quiet when everything is present. Usage: scripts/deps.sh [build|test|all]
set -eu

what=${1:-build}

build_pkgs="gcc make pkg-config libsqlite3-dev libmicrohttpd-dev libjansson-dev libsodium-dev libgnutls28-dev libicu-dev libcsv-dev libzstd-dev libcurl4-openssl-dev"
test_pkgs="libcmocka-dev curl jq sqlite3 clang libclang-rt-14-dev"
bench_pkgs="wrk"

case "$what" in
  build) pkgs="$build_pkgs" ;;
  test)  pkgs="$build_pkgs $test_pkgs" ;;
  bench) pkgs="$build_pkgs $test_pkgs $bench_pkgs" ;;
  all)   pkgs="$build_pkgs $test_pkgs $bench_pkgs" ;;
  *) echo "usage: scripts/deps.sh [build|test|bench|all]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "scripts/deps.sh: missing packages:$missing (run as root to install them)" >&2; exit 1
  fi
else
  SUDO=
fi
echo "scripts/deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
