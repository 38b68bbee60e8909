#!/bin/sh
# bench/registry.sh — the patient registry benchmark (issue 3): registration throughput, database size,
# search and duplicate-check latency through the HTTP API next to a naive LIKE scan, and server memory.
#
# Usage: bench/registry.sh [N]      N demo patients (default BENCH_PATIENTS, else 1000000)
#   SANAD_BIN=path    the binary (default ./sanad, built with make when missing)
#   REUSE_DATA=dir    a directory kept by an earlier run (KEEP=1): skip init and demo, reuse its node
#                     (N is then the node's count; registration figures are those of the run that made it)
#   KEEP=1            keep the work directory (node, queries, results) and print where it is
#   BENCH_THREADS=2   server worker threads;  QUERY_SEED=42  seed of the sample and the query mix
#   BENCH_QUERIES=1000, BENCH_MATCHES=300, NO_LIKE=1 (skip the LIKE baseline), NO_RECALL=1
#   PERF=1            profile the server with `perf record -g` during the run (slows it: figures are then
#                     for finding hot spots, not for comparing)
# It prints figures next to their targets and never fails on a figure; see bench/README.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
N=${1:-${BENCH_PATIENTS:-1000000}}
THREADS=${BENCH_THREADS:-2}
SEED=${QUERY_SEED:-42}
QUERIES=${BENCH_QUERIES:-1000}
MATCHES=${BENCH_MATCHES:-300}
SAMPLE=3000
PASSWORD=bench-password-0123

# targets (issue 3)
TARGET_SEARCH_P95_MS=10
TARGET_MATCH_P95_MS=20
TARGET_RECALL=95
TARGET_RSS_MB=64
TARGET_DEMO_S=120       # sanad demo --patients 1000000, wall
TARGET_MATCH_FOUND5=95  # % of duplicate drafts with their source patient in the first 5

die() { echo "registry bench: $*" >&2; exit 1; }

for v in "$N" "$THREADS" "$SEED" "$QUERIES" "$MATCHES"; do
    case $v in ''|*[!0-9]*|0) die "'$v' must be a positive whole number (N, BENCH_THREADS, QUERY_SEED, BENCH_QUERIES, BENCH_MATCHES)" ;; esac
done
for tool in sqlite3 python3 curl jq awk; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is not installed (Debian package 'time')"

if [ -z "${SANAD_BIN:-}" ]; then
    SANAD_BIN=$root/sanad
    if [ ! -x "$SANAD_BIN" ]; then
        echo "building sanad ..."
        make -C "$root" --no-print-directory sanad >/dev/null || die "make failed"
    fi
fi
[ -x "$SANAD_BIN" ] || die "SANAD_BIN '$SANAD_BIN' is not an executable"

if [ -n "${REUSE_DATA:-}" ]; then
    work=$(cd "$REUSE_DATA" && pwd) || die "REUSE_DATA '$REUSE_DATA' is not a directory"
    [ -f "$work/node/sanad.db" ] && [ -f "$work/pw" ] \
        || die "REUSE_DATA '$work' is not a directory kept by this script (no node/sanad.db and pw)"
    keep=1
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/sanad-registry.XXXXXX")
    keep=${KEEP:-0}
fi
node=$work/node
db=$node/sanad.db
out=$work/results
server_pid=
perf_pid=
child_pid=
cleanup() {
    if [ -n "$child_pid" ]; then
        pkill -TERM -P "$child_pid" 2>/dev/null || :     # the demo under /usr/bin/time
        kill -TERM "$child_pid" 2>/dev/null || :
        wait "$child_pid" 2>/dev/null || :
    fi
    [ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null || :
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || :
        wait "$server_pid" 2>/dev/null || :
    fi
    if [ "$keep" = 1 ]; then
        echo "kept: $work  (rerun on it with REUSE_DATA=$work)"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rm -rf "$out"
mkdir -p "$out"

# a private copy of the binary: other work may rebuild ./sanad during a long run
cp "$SANAD_BIN" "$work/sanad.bin"
bin=$work/sanad.bin

# Run a long command in the background and wait for it, so that a signal stops the run at once (a shell
# runs its traps only after a foreground command ends); its exit status is returned.
run_long() {
    "$@" &
    child_pid=$!
    rc=0
    wait "$child_pid" || rc=$?
    child_pid=
    return "$rc"
}

mem_mb() { awk -v k="$2:" '$1 == k { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || :)
load_before=$(loadavg)
echo "machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, $(uname -sr), $(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)"
echo "binary:  $("$bin" --version) ($SANAD_BIN, built $(date -r "$SANAD_BIN" '+%Y-%m-%d %H:%M'), tree at commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD -- src 2>/dev/null || echo ', src modified'))"
echo "load:    $load_before (1, 5, 15 min) before the run"
echo

# ---- 1. registration ----
if [ -n "${REUSE_DATA:-}" ]; then
    N=$(sqlite3 "$db" "SELECT count(*) FROM patients WHERE deleted = 0")
    echo "registration: reusing $N patients in $node"
    if [ -f "$work/demo.txt" ]; then
        read -r demo_s demo_kb demo_cpu <"$work/demo.txt"
        echo "  registration figures below are those of the run that made it"
    else
        demo_s=; demo_kb=; demo_cpu=
    fi
else
    printf '%s\n' "$PASSWORD" >"$work/pw"
    "$bin" init --data "$node" --admin admin --admin-password-file "$work/pw" >"$work/init.log" 2>&1 \
        || { cat "$work/init.log" >&2; die "sanad init failed"; }
    echo "registration: sanad demo --patients $N --seed 42 ..."
    run_long /usr/bin/time -f '%e %M %U %S' -o "$work/demo.time" "$bin" demo --data "$node" --patients "$N" --seed 42 \
        >"$work/demo.log" 2>&1 || { tail -5 "$work/demo.log" >&2; die "sanad demo failed"; }
    tr -d '\r' <"$work/demo.log" | grep '^added' | sed 's/^/  /' || :
    read -r demo_s demo_kb demo_user demo_sys <"$work/demo.time"
    demo_cpu=$(awk -v u="$demo_user" -v s="$demo_sys" 'BEGIN { printf "%.1f", u + s }')
    echo "$demo_s $demo_kb $demo_cpu" >"$work/demo.txt"
fi
if [ -n "$demo_s" ]; then
    reg_rate=$(awk -v n="$N" -v s="$demo_s" 'BEGIN { printf "%.0f", n / s }')
    echo "  $N patients in $demo_s s wall (/usr/bin/time) = $reg_rate patients/s; peak RSS of sanad demo $(awk -v k="$demo_kb" 'BEGIN { printf "%.0f", k / 1024 }') MB"
    # CPU of both demo threads (user + system): less sensitive than wall time to other work on the machine
    if [ -n "${demo_cpu:-}" ]; then
        echo "  CPU time of sanad demo (user + system, both threads): $demo_cpu s = $(awk -v c="$demo_cpu" -v n="$N" 'BEGIN { printf "%.0f", c * 1e6 / n }') us per patient"
    fi
fi

sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null || die "wal_checkpoint failed"
db_bytes=$(( $(stat -c %s "$db") + $( [ -f "$db-wal" ] && stat -c %s "$db-wal" || echo 0) ))
bytes_per=$(awk -v b="$db_bytes" -v n="$N" 'BEGIN { printf "%.0f", b / n }')
echo "  database: $db_bytes bytes (sanad.db + -wal after a TRUNCATE checkpoint) = $bytes_per bytes per patient"
sqlite3 "$db" "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8" 2>/dev/null \
    | awk -F'|' -v n="$N" '{ printf "%s%s %.0f", (NR > 1 ? ", " : "    per patient: "), $1, $2 / n } END { if (NR) print "" }' || :
echo

# ---- 2. queries from the database ----
echo "queries: sample of $SAMPLE patients (seed $SEED) ..."
sqlite3 -json "$db" "SELECT id, given_name, family_name, name_original, sex, birth_date, birth_precision,
        identifiers, phones FROM patients WHERE deleted = 0
        ORDER BY ((rowid + $SEED) * 2654435761) % 4294967291 LIMIT $SAMPLE" >"$work/sample.json" \
    || die "cannot read the sample from $db"
python3 "$here/registry_queries.py" generate "$work/sample.json" --seed "$SEED" --queries "$QUERIES" \
    --matches "$MATCHES" --out-queries "$work/queries.jsonl" --out-drafts "$work/drafts.jsonl" \
    || die "query generation failed"

# the OS page cache holds the file for both the server and the LIKE scan alike
cat "$db" >/dev/null

# ---- 3. the server ----
: >"$work/server.log"
"$bin" serve --data "$node" --listen 127.0.0.1:0 --threads "$THREADS" >>"$work/server.log" 2>&1 &
server_pid=$!
port=
i=0
while [ $i -lt 400 ]; do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$work/server.log" | head -1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; die "the server exited while starting"; }
    sleep 0.05
    i=$((i + 1))
done
[ -n "$port" ] || { cat "$work/server.log" >&2; die "no 'listening on' line from the server after 20 s"; }
base=http://127.0.0.1:$port
[ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] || die "/healthz did not answer 200"
rss_idle=$(mem_mb "$server_pid" VmRSS)

status=$(curl -s -m 30 -o "$work/session.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" "$base/api/v1/session")
[ "$status" = 201 ] || { cat "$work/session.json" >&2; die "sign-in answered $status, not 201"; }
jq -er .token "$work/session.json" >"$work/token" || die "the sign-in reply has no token"
hwm_signin=$(mem_mb "$server_pid" VmHWM)
# reset the high-water mark, so that it measures the query runs and not the Argon2id sign-in
if echo 5 >"/proc/$server_pid/clear_refs" 2>/dev/null; then hwm_reset=1; else hwm_reset=0; fi

echo "server: 127.0.0.1:$port, $THREADS threads; RSS idle $rss_idle MB, high-water after sign-in $hwm_signin MB"
echo "running $QUERIES searches (each followed by its LIKE twin) and $MATCHES duplicate checks ..."
load_mid=$(loadavg)
if [ -n "${PERF:-}" ]; then
    command -v perf >/dev/null 2>&1 || die "PERF=1 needs perf (Debian package linux-perf)"
    perf record -g -p "$server_pid" -o "$work/perf.data" >"$work/perf.log" 2>&1 &
    perf_pid=$!
    sleep 0.5
fi
incomplete=
run_long python3 "$here/registry_queries.py" run --port "$port" --token-file "$work/token" --pid "$server_pid" \
    --db "$db" --queries "$work/queries.jsonl" --drafts "$work/drafts.jsonl" --out-dir "$out" \
    ${NO_LIKE:+--no-like} || incomplete=1
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "registry bench: the server (pid $server_pid) stopped during the run; the end of its log:" >&2
    tail -3 "$work/server.log" >&2
    wait "$server_pid" 2>/dev/null || :
    server_pid=
    incomplete=1
fi
[ -s "$out/search.txt" ] || die "the query run failed before the first answer"
rss_end=$( [ -n "$server_pid" ] && mem_mb "$server_pid" VmRSS || echo '?')
hwm_run=$( [ -n "$server_pid" ] && mem_mb "$server_pid" VmHWM || echo '?')
if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || :
    wait "$perf_pid" 2>/dev/null || :
    perf_pid=
    perf report -i "$work/perf.data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null \
        | grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -15 >"$work/perf.txt" || :
    echo "server profile (perf, self time, top 15; full data in $work/perf.data with KEEP=1):"
    sed 's/^/  /' "$work/perf.txt"
fi
if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid"
    wait "$server_pid" || die "the server did not exit 0 on SIGTERM"
    server_pid=
fi
load_after=$(loadavg)
echo
if [ -n "$incomplete" ]; then
    echo "INCOMPLETE RUN: $(wc -l <"$out/search.txt") of $QUERIES searches and $(wc -l <"$out/match.txt" 2>/dev/null || echo 0) of $MATCHES duplicate checks answered; the figures below cover those only"
    echo
fi

# ---- 4. figures ----
python3 "$here/registry_queries.py" report --out-dir "$out" || die "report failed"
echo

# server-side time from the access log ("http GET /api/v1/patients 200 1234us ..."), without the warm-up
warm_searches=$(awk '$1 == "searches" { print $2 }' "$out/warmup.txt" 2>/dev/null || :)
warm_matches=$(awk '$1 == "matches" { print $2 }' "$out/warmup.txt" 2>/dev/null || :)
server_pct() {
    case $2 in */match) skip=${warm_matches:-0} ;; *) skip=${warm_searches:-0} ;; esac
    grep "http $1 $2 200 " "$work/server.log" | tail -n +$((skip + 1)) | sed 's/.* 200 \([0-9]*\)us .*/\1/' | sort -n \
        | awk -v p="$3" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
              i = int(p / 100 * NR + 0.999999); if (i < 1) i = 1; printf "%.2f\n", v[i] / 1000 }'
}
s50=$(server_pct GET /api/v1/patients 50); s95=$(server_pct GET /api/v1/patients 95)
s99=$(server_pct GET /api/v1/patients 99)
m50=$(server_pct POST /api/v1/patients/match 50); m95=$(server_pct POST /api/v1/patients/match 95)
m99=$(server_pct POST /api/v1/patients/match 99)
echo "server side (access log, request start to reply sent): search p50 $s50 p95 $s95 p99 $s99 ms;" \
     "match p50 $m50 p95 $m95 p99 $m99 ms"
echo "server CPU per request (user+system, /proc/PID/stat): search $(awk '$1 == "search_cpu_ms" { print $2 }' "$out/server.txt") ms," \
     "match $(awk '$1 == "match_cpu_ms" { print $2 }' "$out/server.txt") ms"

recall_line=
if [ -z "${NO_RECALL:-}" ]; then
    if [ ! -x "$root/build/tests/test_patients" ]; then
        make -C "$root" --no-print-directory build/tests/test_patients >/dev/null 2>&1 || :
    fi
    if [ -x "$root/build/tests/test_patients" ]; then
        recall_line=$(cd "$root" && ./build/tests/test_patients 2>&1 | grep recall | head -1) || :
    fi
    echo "variant table (tests/unit/test_patients.c): ${recall_line:-not available (build/tests/test_patients missing or failed)}"
fi
recall=$(printf '%s\n' "$recall_line" | sed -n 's/.*recall@5:[^(]*(\([0-9.]*\) %).*/\1/p' | head -1)
echo

# ---- 5. summary ----
get() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
S=$out/summary.txt
awk -v n="$N" -v demo_s="$demo_s" -v demo_cpu="${demo_cpu:-}" -v bytes="$bytes_per" -v t_reg="$TARGET_DEMO_S" \
    -v sp50="$(get search_p50 "$S")" -v sp95="$(get search_p95 "$S")" -v sp99="$(get search_p99 "$S")" \
    -v sfound="$(get search_found "$S")" -v ssame="$(get search_same "$S")" -v mfound="$(get match_found "$S")" \
    -v mfound5="$(get match_found5 "$S")" -v t_m5="$TARGET_MATCH_FOUND5" \
    -v lp50="$(get like_p50 "$S")" -v lp95="$(get like_p95 "$S")" -v lp99="$(get like_p99 "$S")" \
    -v lfound="$(get like_found "$S")" -v lsame="$(get like_same "$S")" \
    -v mp50="$(get match_p50 "$S")" -v mp95="$(get match_p95 "$S")" -v mp99="$(get match_p99 "$S")" \
    -v s95="$s95" -v m95="$m95" -v recall="$recall" \
    -v idle="$rss_idle" -v hwm_run="$hwm_run" -v hwm_reset="$hwm_reset" -v hwm_signin="$hwm_signin" \
    -v rss_end="$rss_end" -v sampled="$(get rss_sampled_peak_mb "$out/server.txt")" \
    -v t_s="$TARGET_SEARCH_P95_MS" -v t_m="$TARGET_MATCH_P95_MS" -v t_r="$TARGET_RECALL" -v t_rss="$TARGET_RSS_MB" '
    function row(metric, value, target, ratio) { printf "%-40s | %16s | %9s | %s\n", metric, value, target, ratio }
    function ok(b) { return b ? "ok" : "MISSED" }
    BEGIN {
        row("metric", "median/value", "target", "ratio / ok")
        print "-----------------------------------------+------------------+-----------+-----------"
        if (demo_s != "") {
            row("registration throughput patients/s", sprintf("%.0f", n / demo_s), "-", sprintf("%d in %.1f s", n, demo_s))
            row("registration wall s (N = 1,000,000)", sprintf("%.1f", demo_s), "< " t_reg,
                n == 1000000 ? sprintf("%.2f %s", demo_s / t_reg, ok(demo_s < t_reg)) : "(N is not 1,000,000)")
            if (demo_cpu != "")
                row("registration CPU s (user+system)", demo_cpu, "-", sprintf("%.0f us/patient", demo_cpu * 1e6 / n))
        }
        row("database bytes per patient", bytes, "-", "")
        row("search p50 / p99 ms (API, client side)", sprintf("%.2f / %.2f", sp50, sp99), "-", "")
        row("search p95 ms (API, client side)", sprintf("%.2f", sp95), "<= " t_s,
            sprintf("%.2f %s", sp95 / t_s, ok(sp95 <= t_s)))
        if (s95 != "-")
            row("search p95 ms (server side)", sprintf("%.2f", s95), "<= " t_s, sprintf("%.2f %s", s95 / t_s, ok(s95 <= t_s)))
        if (lp95 != "") {
            row("LIKE scan p50 / p99 ms", sprintf("%.2f / %.2f", lp50, lp99), "-", "")
            row("LIKE scan p95 ms", sprintf("%.2f", lp95), "-", "")
            row("Sanad p95 / LIKE p95", sprintf("%.3f", sp95 / lp95), "-", "")
            row("found@5 Sanad / LIKE %", sprintf("%.1f / %.1f", sfound, lfound), "-", "")
            row("same-name@5 Sanad / LIKE %", sprintf("%.1f / %.1f", ssame, lsame), "-", "")
        } else {
            row("found@5 Sanad %", sprintf("%.1f", sfound), "-", "")
            row("same-name@5 Sanad %", sprintf("%.1f", ssame), "-", "")
        }
        if (mfound5 != "")
            row("duplicate check: source found@5 %", sprintf("%.1f", mfound5), ">= " t_m5,
                sprintf("%.2f %s", mfound5 / t_m5, ok(mfound5 >= t_m5)))
        if (mfound != "")
            row("duplicate check: source found@10 %", sprintf("%.1f", mfound), "-", "")
        if (mp95 != "") {
            row("duplicate check p50 / p99 ms", sprintf("%.2f / %.2f", mp50, mp99), "-", "")
            row("duplicate check p95 ms (client side)", sprintf("%.2f", mp95), "<= " t_m,
                sprintf("%.2f %s", mp95 / t_m, ok(mp95 <= t_m)))
        }
        if (m95 != "-")
            row("duplicate check p95 ms (server side)", sprintf("%.2f", m95), "<= " t_m, sprintf("%.2f %s", m95 / t_m, ok(m95 <= t_m)))
        if (recall != "")
            row("recall@5 on the variant table %", recall, ">= " t_r, sprintf("%.2f %s", recall / t_r, ok(recall >= t_r)))
        row("server RSS idle MB", idle, "-", "")
        peak = hwm_reset && hwm_run != "?" ? hwm_run : sampled
        if (peak != "")
            row("server RSS peak during queries MB", peak, "<= " t_rss, sprintf("%.2f %s", peak / t_rss, ok(peak <= t_rss)))
        if (hwm_run != "?")
            row("server RSS high-water incl. sign-in MB", hwm_signin + 0 > hwm_run + 0 ? hwm_signin : hwm_run, "-", "")
        print "(peak: VmHWM over the query runs, reset after the Argon2id sign-in" (hwm_reset ? "" : " -- reset refused, so VmRSS sampled every 25 requests") ";"
        print " RSS at the end " rss_end " MB. ratio = value / target.)"
    }'
echo "load average (1, 5, 15 min): before $load_before; at the query run $load_mid; after $load_after"
[ -z "$incomplete" ] || { echo "INCOMPLETE RUN (see above)"; exit 1; }
