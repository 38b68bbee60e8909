#!/bin/sh
# sync_soak.sh — soak the replication convergence property test (tests/unit/test_sync.c): run many seeded
# schedules split over several processes, each on its own range of seeds, and list the seeds that failed.
# Usage: tests/unit/sync_soak.sh [SCHEDULES [JOBS [FIRST_SEED]]]
#   SCHEDULES  total schedules (default 5000), JOBS parallel processes (default: CPUs, at most 8),
#   FIRST_SEED first seed (default: from the clock). TEST_SYNC names the binary (default build/tests/test_sync).
# A failing seed reruns alone, with a trace of its operations: SANAD_SEED=N build/tests/test_sync
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TEST_SYNC:-$here/build/tests/test_sync}
total=${1:-5000}
jobs=${2:-$(nproc 2>/dev/null || echo 4)}
[ "$jobs" -gt 8 ] && jobs=8
first=${3:-$(( $(date +%s) * 1000 ))}
[ -x "$bin" ] || { echo "sync_soak: no test binary at $bin (run 'make unit')" >&2; exit 2; }
per=$(( (total + jobs - 1) / jobs ))
logdir=$(mktemp -d "${TMPDIR:-/tmp}/sanad-soak.XXXXXX")
trap 'rm -rf "$logdir"' EXIT
trap 'exit 130' INT TERM
echo "sync_soak: $total schedules in $jobs processes from seed $first"
start=$(date +%s)
i=0
pids=""
while [ "$i" -lt "$jobs" ]; do
  base=$(( first + i * per ))
  # one process runs seeds base.. until a failure; the runner then resumes after the failing seed
  (
    n=$per
    b=$base
    while [ "$n" -gt 0 ]; do
      if SANAD_SOAK=$n SANAD_SEED_BASE=$b "$bin" >"$logdir/run.$i" 2>&1; then
        break
      fi
      seed=$(sed -n 's/.*seed \([0-9][0-9]*\): .*/\1/p' "$logdir/run.$i" | head -1)
      if [ -z "$seed" ]; then
        echo "sync_soak: a run from seed $b failed without naming a seed:" >&2
        tail -20 "$logdir/run.$i" >&2
        echo "seed ?: from seed $b: no seed named" >>"$logdir/failures.$i"
        break
      fi
      grep -m1 "seed $seed: " "$logdir/run.$i" | sed 's/^ERROR: //' >>"$logdir/failures.$i"
      n=$(( n - (seed - b) - 1 ))
      b=$(( seed + 1 ))
    done
  ) &
  pids="$pids $!"
  i=$((i + 1))
done
status=0
for p in $pids; do wait "$p" || status=1; done
failed=$(cat "$logdir"/failures.* 2>/dev/null | wc -l)
echo "sync_soak: $total schedules, $failed failed, $(( $(date +%s) - start )) s"
cat "$logdir"/failures.* 2>/dev/null
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
