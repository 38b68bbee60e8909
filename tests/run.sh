#!/bin/sh
# Run the whole test suite: every unit test binary in $UNIT_DIR, then every integration script
# tests/t/t*.sh against $SANAD_BIN. Prints one line per test file and a closing
# "N passed, N failed" line; exits non-zero when anything failed.
# Usage: SANAD_BIN=/abs/sanad UNIT_DIR=/abs/build/tests tests/run.sh [PATTERN]
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${SANAD_BIN:?set SANAD_BIN to the sanad binary}"
: "${UNIT_DIR:?set UNIT_DIR to the unit test binaries}"
export SANAD_BIN
pattern=${1:-}
passed=0
failed=0
failures=""
logdir=$(mktemp -d "${TMPDIR:-/tmp}/sanad-tests.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

run_one() {
  name=$1; shift
  case "$name" in *"$pattern"*) ;; *) return ;; esac
  start=$(date +%s%N)
  if "$@" >"$logdir/log" 2>&1; then
    passed=$((passed + 1)); status=ok
  else
    failed=$((failed + 1)); status=FAIL; failures="$failures $name"
  fi
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf '%-4s %-40s %6d ms\n' "$status" "$name" "$ms"
  if [ "$status" = FAIL ]; then sed 's/^/     | /' "$logdir/log" | tail -60; fi
}

for t in "$UNIT_DIR"/test_*; do
  [ -x "$t" ] || continue
  run_one "unit/$(basename "$t")" "$t"
done
for t in "$here"/t/t[0-9]*.sh; do
  [ -f "$t" ] || continue
  run_one "t/$(basename "$t")" sh "$t"
done

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
