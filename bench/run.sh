#!/bin/sh
# bench/run.sh — Sanad's benchmark figures: API and static throughput under wrk, cold start, memory.
#
# Starts one node in a temp data dir on a free loopback port, signs in once, then for REPEAT rounds
# runs wrk (64 connections, 2 threads, BENCH_SECONDS each) against the authenticated GET /api/v1/me
# and the static /style.css of the same server, and prints medians next to their targets.
# Usage: SANAD_BIN=./sanad bench/run.sh   (or `make bench`). See bench/README.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
SANAD_BIN=${SANAD_BIN:-$here/../sanad}
DURATION=${BENCH_SECONDS:-20}
REPEAT=${REPEAT:-3}
COLD_RUNS=${COLD_RUNS:-11}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_WRK_THREADS:-2}

# targets (see bench/README.md)
TARGET_ME_RPS=20000
TARGET_COLD_MS=50
TARGET_RSS_MB=30

die() { echo "bench: $*" >&2; exit 1; }

for tool in wrk curl jq python3 awk; do
    command -v "$tool" >/dev/null 2>&1 \
        || die "'$tool' is not installed (run scripts/deps.sh bench, which installs the Debian package 'wrk')"
done
[ -x "$SANAD_BIN" ] || die "SANAD_BIN '$SANAD_BIN' is not an executable; build it with 'make' first"
case $DURATION in ''|*[!0-9]*) die "BENCH_SECONDS '$DURATION' is not a whole number of seconds" ;; esac
case $REPEAT in ''|*[!0-9]*|0) die "REPEAT '$REPEAT' must be a positive whole number" ;; esac
case $COLD_RUNS in ''|*[!0-9]*|0) die "COLD_RUNS '$COLD_RUNS' must be a positive whole number" ;; esac
[ "$DURATION" -ge 1 ] || die "BENCH_SECONDS must be at least 1"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sanad-bench.XXXXXX")
server_pid=
sampler_pid=
cleanup() {
    [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || :
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || :
        wait "$server_pid" 2>/dev/null || :
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# median of the numbers on stdin, one per line
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1;
        if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# VmRSS or VmHWM of a process, in MiB
proc_mem_mb() {
    awk -v k="$2:" '$1 == k { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"
}

# user + system CPU time the process has used, in clock ticks
proc_cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
CLK_TCK=$(getconf CLK_TCK)

# ---- machine ----
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || :)
echo "machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, $(uname -sr)"
echo "tools:   $(wrk --version 2>&1 | head -1 | cut -c1-60); $("$SANAD_BIN" --version)"
echo "run:     wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s x$REPEAT per endpoint, cold start x$COLD_RUNS"
echo "note:    wrk runs on the same CPUs as the server, so throughput figures understate a dedicated server"
echo

# ---- a node with one admin and a session ----
data=$tmp/data
printf 'bench-password-0123\n' >"$tmp/pw"
"$SANAD_BIN" init --data "$data" --admin admin --admin-password-file "$tmp/pw" >"$tmp/init.log" 2>&1 \
    || { cat "$tmp/init.log" >&2; die "sanad init failed"; }

: >"$tmp/server.log"
"$SANAD_BIN" serve --data "$data" --listen 127.0.0.1:0 >>"$tmp/server.log" 2>&1 &
server_pid=$!
port=
i=0
while [ $i -lt 200 ]; do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$tmp/server.log" | head -1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; die "the server exited while starting"; }
    sleep 0.05
    i=$((i + 1))
done
[ -n "$port" ] || { cat "$tmp/server.log" >&2; die "no 'listening on' line from the server after 10 s"; }
base=http://127.0.0.1:$port

[ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] || die "/healthz did not answer 200"
rss_idle=$(proc_mem_mb "$server_pid" VmRSS)

status=$(curl -s -m 10 -o "$tmp/session.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data '{"username":"admin","password":"bench-password-0123"}' "$base/api/v1/session")
[ "$status" = 201 ] || { cat "$tmp/session.json" >&2; die "sign-in answered $status, not 201"; }
token=$(jq -er .token "$tmp/session.json") || die "the sign-in reply has no token"
status=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base/api/v1/me")
[ "$status" = 200 ] || die "GET /api/v1/me with the bearer token answered $status, not 200"
status=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$base/style.css")
[ "$status" = 200 ] || die "GET /style.css answered $status, not 200"

# ---- throughput ----
# One wrk run; appends "req/s p99_ms server_cpu_us_per_request" to $tmp/<label>.txt and fails on any error or non-2xx answer,
# which would otherwise show up as suspiciously fast numbers.
run_wrk() {
    label=$1; shift
    out=$tmp/wrk-$label.out
    cpu0=$(proc_cpu_ticks "$server_pid")
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed on $label"; }
    if grep -q -e 'Non-2xx or 3xx responses' -e 'Socket errors' "$out"; then
        cat "$out" >&2
        die "wrk saw errors on $label (see above)"
    fi
    cpu1=$(proc_cpu_ticks "$server_pid")
    awk -v ticks=$((cpu1 - cpu0)) -v hz="$CLK_TCK" '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            return -1
        }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" { p99 = ms($2) }
        / requests in / { n = $1 }
        END { if (rps == "" || p99 == "" || n + 0 == 0) exit 1
              printf "%s %.3f %.2f\n", rps, p99, ticks / hz * 1e6 / n }
    ' "$out" >>"$tmp/$label.txt" || { cat "$out" >&2; die "cannot read requests/sec and p99 from wrk on $label"; }
    echo "  $label round $round: $(tail -1 "$tmp/$label.txt" | awk '{ printf "%.0f req/s, p99 %.2f ms, server CPU %.1f us/req", $1, $2, $3 }')"
}

# Sample the server's VmRSS every 100 ms into $tmp/rss-load.txt until killed.
rss_sampler() {
    while :; do
        proc_mem_mb "$server_pid" VmRSS >>"$tmp/rss-load.txt" 2>/dev/null || exit 0
        sleep 0.1
    done
}

echo "throughput:"
round=1
while [ $round -le "$REPEAT" ]; do
    rss_sampler &
    sampler_pid=$!
    run_wrk me -H "Authorization: Bearer $token" "$base/api/v1/me"
    kill "$sampler_pid" 2>/dev/null || :
    wait "$sampler_pid" 2>/dev/null || :
    sampler_pid=
    run_wrk static "$base/style.css"
    round=$((round + 1))
done
kill -0 "$server_pid" 2>/dev/null || die "the server died under load"
rss_peak_sampled=$(sort -g "$tmp/rss-load.txt" | tail -1)
rss_hwm=$(proc_mem_mb "$server_pid" VmHWM)

me_rps=$(awk '{ print $1 }' "$tmp/me.txt" | median)
me_p99=$(awk '{ print $2 }' "$tmp/me.txt" | median)
st_rps=$(awk '{ print $1 }' "$tmp/static.txt" | median)
st_p99=$(awk '{ print $2 }' "$tmp/static.txt" | median)
me_cpu=$(awk '{ print $3 }' "$tmp/me.txt" | median)
st_cpu=$(awk '{ print $3 }' "$tmp/static.txt" | median)

kill -TERM "$server_pid"
wait "$server_pid" || die "the server did not exit 0 on SIGTERM"
server_pid=

# ---- cold start ----
echo "cold start:"
python3 "$here/coldstart.py" "$SANAD_BIN" "$data" "$COLD_RUNS" >"$tmp/cold.txt" || die "cold-start measurement failed"
echo "  $(awk '{ printf "%s%.1f", (NR > 1 ? " " : ""), $2 }' "$tmp/cold.txt") ms"
cold_ms=$(awk '{ print $2 }' "$tmp/cold.txt" | median)

# ---- summary ----
echo
awk -v me_rps="$me_rps" -v me_p99="$me_p99" -v st_rps="$st_rps" -v st_p99="$st_p99" \
    -v me_cpu="$me_cpu" -v st_cpu="$st_cpu" \
    -v cold="$cold_ms" -v idle="$rss_idle" -v peak="$rss_peak_sampled" -v hwm="$rss_hwm" \
    -v t_rps="$TARGET_ME_RPS" -v t_cold="$TARGET_COLD_MS" -v t_rss="$TARGET_RSS_MB" -v n="$REPEAT" -v c="$COLD_RUNS" '
    function row(metric, value, target, ratio, verdict) {
        printf "%-34s | %12s | %12s | %7s %s\n", metric, value, target, ratio, verdict
    }
    function ok(b) { return b ? "ok" : "MISSED" }
    BEGIN {
        row("metric", "median", "target", "ratio", "")
        print "-----------------------------------+--------------+--------------+--------"
        row("GET /api/v1/me (bearer) req/s", sprintf("%.0f", me_rps), ">= " t_rps,
            sprintf("%.2f", me_rps / t_rps), ok(me_rps >= t_rps))
        row("GET /api/v1/me p99 latency ms", sprintf("%.2f", me_p99), "-", "", "")
        row("/me server CPU per request us", sprintf("%.1f", me_cpu), "-", "", "")
        row("/me req/s projected, 2 server CPUs", sprintf("%.0f", 2e6 / me_cpu), ">= " t_rps,
            sprintf("%.2f", 2e6 / me_cpu / t_rps), "(projection)")
        row("GET /style.css req/s", sprintf("%.0f", st_rps), "-", "", "")
        row("GET /style.css p99 latency ms", sprintf("%.2f", st_p99), "-", "", "")
        row("/style.css server CPU per req us", sprintf("%.1f", st_cpu), "-", "", "")
        row("me / static throughput", sprintf("%.3f", me_rps / st_rps), "-", "", "")
        row("cold start to first 200 ms", sprintf("%.1f", cold), "<= " t_cold,
            sprintf("%.2f", cold / t_cold), ok(cold <= t_cold))
        row("RSS idle after start MB", sprintf("%.1f", idle), "-", "", "")
        row("RSS peak during /me load MB", sprintf("%.1f", peak), "<= " t_rss,
            sprintf("%.2f", peak / t_rss), ok(peak <= t_rss))
        row("RSS high-water, incl. sign-in MB", sprintf("%.1f", hwm), "-", "", "")
        print "(medians: wrk runs x" n ", cold starts x" c ". RSS peak: largest VmRSS sampled every 100 ms during"
        print " the /me runs; high-water: VmHWM. CPU per request: server user+system time over the requests wrk"
        print " completed; projected: 2 CPU-seconds per second over that cost, i.e. a 2-core server with the load"
        print " generator on other cores. ratio = value / target)"
    }'
