#!/bin/sh
# bench/sync.sh — the replication benchmark (issue 6) on the issue's workload: initial sync of a new node
# from a hub, push of a whole node to an empty hub, and incremental sync of 100 new patients with their
# visits, between real `sanad serve` and `sanad sync` processes over loopback, each as a median of REPEAT
# runs next to the floor of a plain sqlite3 bulk insert of the same rows measured in the same run.
#
# Usage: bench/sync.sh
#   SANAD_BIN=path     the binary (default ./sanad, built with make when missing; a private copy is run)
#   BENCH_PATIENTS=N   patients on the hub (default 20000), each with 3 visits of 2 form entries: 10 N
#                      records; the incremental runs are repeated on a hub of N/4 patients
#   REPEAT=3           runs per figure (medians)
#   SLOW_MS=50         the slow-link runs (once, on the N/4 hub) delay each way by this: a round trip of
#                      twice it
#   KEEP=1             keep the work directory and print where it is
#   PERF=1             one more initial sync under `perf record` (client, with the hub profiled too) and
#                      the hottest functions; the figures of that run are not counted
# The same initial data is also carried as a bundle file (`sanad bundle export`, then `import` on a fresh
# node), timed, with no target of its own.
# The workload is `sanad demo --patients N --visits 3 --entries 2`: N patients, 3 N encounters, 6 N form
# entries (vitals, consultation), the shape of the issue's 200,000 records at N = 20,000. It prints figures
# and never fails on one; it stops with an error when a sync does not move what it should. See
# bench/README.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
N=${BENCH_PATIENTS:-20000}
REPEAT=${REPEAT:-3}
INC=100
VISITS=3
ENTRIES=2
PASSWORD=bench-password-0123

# the issue's targets (for its workload: 20,000 patients x 3 visits x 2 form entries = 200,000 records)
WORKLOAD_RECORDS=200000
TARGET_INITIAL_S=3
TARGET_INITIAL_MB=14
TARGET_PUSH_S=10
TARGET_PUSH_RATE=20000
TARGET_INC_KB=100
TARGET_INC_MS=100
TARGET_FLOOR_RATIO=3

die() { echo "sync bench: $*" >&2; exit 1; }

for v in "$N" "$REPEAT"; do
    case $v in ''|*[!0-9]*|0) die "'$v' must be a positive whole number (BENCH_PATIENTS, REPEAT)" ;; esac
done
[ "$N" -ge 8 ] || die "BENCH_PATIENTS must be at least 8"
for tool in sqlite3 python3 awk sed; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is not installed (Debian package 'time')"
if [ "${PERF:-0}" = 1 ]; then
    command -v perf >/dev/null 2>&1 || die "PERF=1 needs perf (Debian package linux-perf)"
fi

if [ -z "${SANAD_BIN:-}" ]; then
    SANAD_BIN=$root/sanad
    if [ ! -x "$SANAD_BIN" ]; then
        echo "building sanad ..."
        make -C "$root" --no-print-directory sanad >/dev/null || die "make failed"
    fi
fi
[ -x "$SANAD_BIN" ] || die "SANAD_BIN '$SANAD_BIN' is not an executable"

# loopback only: a proxy from the environment must not sit between the nodes
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY SANAD_DATA

work=$(mktemp -d "${TMPDIR:-/tmp}/sanad-syncbench.XXXXXX")
keep=${KEEP:-0}
: >"$work/pids"
perf_pid=
cleanup() {
    [ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null || :
    # only the processes this script started, one by one
    for pid in $(cat "$work/pids" 2>/dev/null); do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || :
            i=0
            while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
            kill -KILL "$pid" 2>/dev/null || :
        fi
        wait "$pid" 2>/dev/null || :
    done
    if [ "$keep" = 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# a private copy of the binary: other work may rebuild ./sanad during the run
cp "$SANAD_BIN" "$work/sanad.bin"
bin=$work/sanad.bin
printf '%s\n' "$PASSWORD" >"$work/pw"
res=$work/results
mkdir -p "$res"
tck=$(getconf CLK_TCK)

# ---- helpers -------------------------------------------------------------------------------------------

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
now_ns() { date +%s%N; }

# median: of the numbers on standard input, one a line.
median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2];
                                        else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# med FILE: the median of a results file.
med() { median <"$res/$1"; }
# list FILE: its values on one line, for showing every run.
list() { tr '\n' ' ' <"$res/$1" | sed 's/ $//'; }
# calc EXPR: awk arithmetic, printed with %.6g.
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }
fmt() { awk -v x="$1" -v f="$2" 'BEGIN { printf f, x }'; }

# new_node DIR SITE: a fresh node.
new_node() {
    "$bin" init --data "$1" --admin admin --admin-password-file "$work/pw" --site "$2" >"$1.init.log" 2>&1 \
        || { cat "$1.init.log" >&2; die "sanad init --data $1 failed"; }
}

# start_server DIR: `sanad serve` on a free loopback port; sets srv_pid, srv_port, srv_log.
start_server() {
    srv_log=$1.serve.log
    : >"$srv_log"
    "$bin" serve --data "$1" --listen 127.0.0.1:0 </dev/null >"$srv_log" 2>&1 &
    srv_pid=$!
    echo "$srv_pid" >>"$work/pids"
    i=0
    srv_port=
    while [ $i -lt 200 ]; do
        srv_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$srv_log" | head -1)
        [ -n "$srv_port" ] && break
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    [ -n "$srv_port" ] || { cat "$srv_log" >&2; die "sanad serve --data $1 did not start"; }
}

# stop_server PID: SIGTERM and wait (the server drains and exits 0).
stop_server() {
    kill -TERM "$1" 2>/dev/null || :
    wait "$1" 2>/dev/null || :
}

# enrol HUB_DIR URL NODE_DIR NAME: invite on the hub, add on the node (the node calls the hub "hub").
enrol() {
    code=$("$bin" peer invite --data "$1" --name "$4" | sed -n 's/^Enrolment code: *//p')
    [ -n "$code" ] || die "sanad peer invite --data $1 printed no code"
    "$bin" peer add --data "$3" --url "$2" --code "$code" --name hub >"$3.enrol.log" 2>&1 \
        || { cat "$3.enrol.log" >&2; die "sanad peer add --data $3 failed"; }
}

# demo DIR N SEED: N demo patients, each with VISITS encounters of ENTRIES form entries (10 records a
# patient with the defaults).
demo() {
    "$bin" demo --data "$1" --patients "$2" --visits "$VISITS" --entries "$ENTRIES" --seed "$3" \
        >"$1.demo.$3.log" 2>&1 \
        || { cat "$1.demo.$3.log" >&2; die "sanad demo --data $1 --patients $2 --visits $VISITS failed"; }
}

# count_records DIR: "patients encounters entries" rows held by a node.
count_records() {
    sqlite3 -separator ' ' "$1/sanad.db" "SELECT (SELECT count(*) FROM patients WHERE deleted = 0),
        (SELECT count(*) FROM encounters WHERE deleted = 0), (SELECT count(*) FROM entries)"
}
# records_total "P E F": their sum.
records_total() { echo "$1" | awk '{ print $1 + $2 + $3 }'; }
count_changes() { sqlite3 "$1/sanad.db" "SELECT count(*) FROM changes"; }

# proc_cpu PID: user + system CPU seconds of a process so far.
proc_cpu() { awk -v t="$tck" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / t }' "/proc/$1/stat"; }

# server_sync_us LOG FROM_LINE: the hub's own time answering sync pulls/pushes after line FROM_LINE of
# its access log ("http POST /api/v1/sync/pull 200 19537us ...").
server_sync_us() {
    tail -n +"$(($2 + 1))" "$1" | awk '/http POST \/api\/v1\/sync\/(pull|push) / {
        for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+us$/) { sub(/us$/, "", $i); s += $i } } END { print s + 0 }'
}

# timed_sync NODE_DIR: one `sanad sync`; sets sync_s (wall), sync_cpu (its user+sys), sync_line, and the
# numbers it printed: sync_pulled, sync_applied, sync_pushed, sync_in, sync_out (compressed batch bytes).
# When the hub runs here ($srv_pid), srv_cpu is its CPU time over the sync and srv_us its own logged time.
timed_sync() {
    srv_c0=$(proc_cpu "$srv_pid")
    srv_l0=$(wc -l <"$srv_log")
    t0=$(now_ns)
    /usr/bin/time -f '%U %S' -o "$work/time.out" "$bin" sync --data "$1" >"$work/sync.out" 2>"$work/sync.err" \
        || { cat "$work/sync.err" >&2; die "sanad sync --data $1 failed"; }
    t1=$(now_ns)
    sync_s=$(calc "($t1 - $t0) / 1e9")
    sync_cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$work/time.out")
    srv_cpu=$(calc "$(proc_cpu "$srv_pid") - $srv_c0")
    srv_us=$(server_sync_us "$srv_log" "$srv_l0")
    sync_line=$(sed -n '/^hub: /p' "$work/sync.out")
    [ -n "$sync_line" ] || { cat "$work/sync.out" "$work/sync.err" >&2; die "sanad sync printed no summary"; }
    sync_pulled=$(printf '%s\n' "$sync_line" | sed -n 's/.*pulled \([0-9]*\) .*/\1/p')
    sync_applied=$(printf '%s\n' "$sync_line" | sed -n 's/.*(applied \([0-9]*\),.*/\1/p')
    sync_pushed=$(printf '%s\n' "$sync_line" | sed -n 's/.*pushed \([0-9]*\);.*/\1/p')
    sync_in=$(printf '%s\n' "$sync_line" | sed -n 's/.*bytes in \([0-9]*\),.*/\1/p')
    sync_out=$(printf '%s\n' "$sync_line" | sed -n 's/.*, out \([0-9]*\)$/\1/p')
}

# A TCP relay that counts the bytes crossing it both ways (TCP payload: HTTP headers and bodies,
# nonce requests included), to check the figures `sanad sync` prints against what went on the wire.
cat >"$work/relay.py" <<'EOF'
# relay.py TARGET COUNTS [DELAY_MS]: a TCP relay that counts connections and bytes; with DELAY_MS, a
# slow link: every byte arrives DELAY_MS late in each direction (a round trip of 2 * DELAY_MS, bandwidth
# unlimited) and a new connection waits one round trip before it carries data (its TCP handshake)
import os, queue, socket, sys, threading, time
target, counts = int(sys.argv[1]), sys.argv[2]
delay = float(sys.argv[3]) / 1000.0 if len(sys.argv) > 3 else 0.0
lock = threading.Lock()
st = {"active": 0, "conns": 0, "up": 0, "down": 0}
def write():
    with open(counts + ".tmp", "w") as f:
        f.write("%d %d %d %d\n" % (st["active"], st["conns"], st["up"], st["down"]))
    os.replace(counts + ".tmp", counts)
def send_later(q, dst):
    while True:
        due, b = q.get()
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            if b:
                dst.sendall(b)
            else:
                dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if not b:
            return
def pump(src, dst, key, done):
    q = None
    if delay:
        q = queue.Queue()
        t = threading.Thread(target=send_later, args=(q, dst), daemon=True)
        t.start()
    try:
        while True:
            b = src.recv(1 << 16)
            if not b:
                break
            if q:
                q.put((time.monotonic() + delay, b))
            else:
                dst.sendall(b)
            with lock:
                st[key] += len(b)
    except OSError:
        pass
    if q:
        q.put((time.monotonic() + delay, b""))
        t.join()
    else:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    done()
def handle(c):
    if delay:
        time.sleep(2 * delay)
    u = socket.create_connection(("127.0.0.1", target))
    left = [2]
    def done():
        with lock:
            left[0] -= 1
            if left[0] == 0:
                c.close(); u.close()
                st["active"] -= 1
                write()
    with lock:
        st["active"] += 1; st["conns"] += 1
        write()
    threading.Thread(target=pump, args=(c, u, "up", done), daemon=True).start()
    threading.Thread(target=pump, args=(u, c, "down", done), daemon=True).start()
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
write()
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
EOF

# start_relay PORT: a relay to 127.0.0.1:PORT; sets relay_pid, relay_port, relay_counts.
start_relay() {   # PORT [DELAY_MS]
    relay_counts=$work/relay.$1.counts
    python3 "$work/relay.py" "$1" "$relay_counts" ${2:-} >"$work/relay.$1.port" 2>"$work/relay.$1.err" &
    relay_pid=$!
    echo "$relay_pid" >>"$work/pids"
    i=0
    relay_port=
    while [ $i -lt 100 ] && [ -z "$relay_port" ]; do
        sleep 0.05
        relay_port=$(head -1 "$work/relay.$1.port")
        i=$((i + 1))
    done
    [ -n "$relay_port" ] || die "the counting relay did not start: $(cat "$work/relay.$1.err")"
}

# relay_read: once no connection is open, sets wire_conns, wire_up, wire_down (cumulative).
relay_read() {
    i=0
    while [ $i -lt 100 ]; do
        read -r active wire_conns wire_up wire_down <"$relay_counts"
        [ "$active" = 0 ] && return 0
        sleep 0.05
        i=$((i + 1))
    done
    die "the relay still has open connections"
}

stop_relay() { kill -TERM "$relay_pid" 2>/dev/null || :; wait "$relay_pid" 2>/dev/null || :; }

# ---- the machine ---------------------------------------------------------------------------------------

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || :)
load_before=$(loadavg)
N4=$((N / 4))
echo "machine:  $(nproc) CPUs, ${cpu_model:-unknown CPU}, $(uname -sr), $(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)"
echo "binary:   $("$bin" --version) ($SANAD_BIN, commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD -- src 2>/dev/null || echo ', src modified'))"
echo "load:     $load_before (1, 5, 15 min) before the run"
RECORDS=$((N * (1 + VISITS + VISITS * ENTRIES)))
INC_RECORDS=$((INC * (1 + VISITS + VISITS * ENTRIES)))
echo "workload: sanad demo --patients $N --visits $VISITS --entries $ENTRIES --seed 42 on the hub: $N patients,"
echo "          $((N * VISITS)) encounters, $((N * VISITS * ENTRIES)) form entries (vitals ~9 fields, consultation ~8: coded"
echo "          diagnosis, notes in Arabic/English) = $RECORDS records, each one change in the log (the issue's"
echo "          workload is $WORKLOAD_RECORDS records of this shape); increments of $INC patients with their visits"
echo "          = $INC_RECORDS records. $REPEAT runs per figure, medians."
echo

# ---- 1. initial and incremental sync from a hub, at N and at N/4 --------------------------------------

# scenario SIZE TAG: a hub with SIZE patients and their visits; REPEAT initial syncs of fresh nodes, one
# more through the counting relay; then REPEAT incremental syncs of INC new hub patients (with their
# visits) on the last node, and one more through the relay. Results in $res/TAG.*.
scenario() {
    size=$1 tag=$2
    hub=$work/hub-$tag
    new_node "$hub" "Hub $tag"
    t0=$(now_ns)
    demo "$hub" "$size" 42
    hub_counts=$(count_records "$hub")
    echo "hub $tag: $(sed -n 1p "$hub.demo.42.log" | sed 's/ (seed.*//'), $(sed -n 2p "$hub.demo.42.log"); $(calc "($(now_ns) - $t0) / 1e9") s in all; holds (patients encounters entries) $hub_counts"
    [ "$(records_total "$hub_counts")" = $((size * (1 + VISITS + VISITS * ENTRIES))) ] \
        || die "hub $tag holds $hub_counts, not the $size patients with their visits asked for"
    start_server "$hub"
    hub_pid=$srv_pid hub_log=$srv_log hub_port=$srv_port
    hub_url=http://127.0.0.1:$hub_port

    r=1
    while [ $r -le "$REPEAT" ]; do
        node=$work/node-$tag-$r
        new_node "$node" "Clinic $tag $r"
        enrol "$hub" "$hub_url" "$node" "clinic-$tag-$r"
        want=$(count_changes "$hub")
        timed_sync "$node"
        got=$(count_records "$node")
        [ "$sync_applied" = "$want" ] && [ "$got" = "$hub_counts" ] \
            || die "initial sync $tag run $r: applied $sync_applied of the hub's $want changes; node holds $got, hub $hub_counts"
        echo "$sync_s" >>"$res/$tag.init.s"
        echo "$sync_in" >>"$res/$tag.init.bytes"
        echo "$sync_cpu" >>"$res/$tag.init.cpu"
        echo "$srv_cpu" >>"$res/$tag.init.srvcpu"
        echo "$srv_us" >>"$res/$tag.init.srvus"
        calc "$sync_cpu + $srv_cpu" >>"$res/$tag.init.cpusum"
        echo >>"$res/$tag.init.cpusum"
        echo "  initial sync run $r: $(fmt "$sync_s" %.3f) s wall; sanad sync CPU $sync_cpu s, hub CPU $srv_cpu s (hub's own time answering: $(calc "$srv_us / 1e6") s)"
        echo "    $sync_line"
        r=$((r + 1))
    done
    last_node=$node
    if [ "$tag" = N ]; then
        bundle_runs "$hub" "$hub_url" "$hub_counts"
    fi

    # one more, through the relay, for the bytes on the wire (its time is not counted)
    start_relay "$hub_port"
    relay_node=$work/node-$tag-relay
    new_node "$relay_node" "Clinic $tag relay"
    enrol "$hub" "http://127.0.0.1:$relay_port" "$relay_node" "clinic-$tag-relay"
    relay_read
    c0=$wire_conns u0=$wire_up d0=$wire_down
    timed_sync "$relay_node"
    relay_read
    [ "$(count_records "$relay_node")" = "$hub_counts" ] || die "initial sync through the relay: node holds $(count_records "$relay_node")"
    echo "$((wire_up - u0)) $((wire_down - d0)) $((wire_conns - c0)) $sync_in $sync_out" >"$res/$tag.init.wire"
    echo "  through a counting relay: $((wire_down - d0)) bytes hub->node, $((wire_up - u0)) node->hub, $((wire_conns - c0)) TCP connections (sanad sync says: $sync_in in, $sync_out out)"

    # the last node takes the other nodes' own sites (pushed to the hub) now, unmeasured, so that each
    # incremental run moves exactly the new patients and their visits
    "$bin" sync --data "$last_node" >/dev/null 2>"$work/sync.err" || { cat "$work/sync.err" >&2; die "catch-up sync failed"; }
    if [ "$tag" = N ]; then
        sqlite3 "$hub/sanad.db" ".backup '$work/floor-base.db'" || die "cannot copy the hub for the floor"
    fi

    # incremental: INC new patients with their visits on the hub, then sync the last node
    r=1
    while [ $r -le "$REPEAT" ]; do
        demo "$hub" "$INC" $((1000 + r))
        hub_counts=$(count_records "$hub")
        if [ "$tag" = N ] && [ $r = 1 ]; then
            sqlite3 "$hub/sanad.db" ".backup '$work/floor-inc.db'" || die "cannot copy the hub for the floor"
        fi
        timed_sync "$last_node"
        got=$(count_records "$last_node")
        [ "$sync_applied" = "$INC_RECORDS" ] && [ "$got" = "$hub_counts" ] \
            || die "incremental sync $tag run $r: applied $sync_applied of $INC_RECORDS, node holds $got, hub $hub_counts"
        echo "$sync_s" >>"$res/$tag.inc.s"
        echo "$sync_in" >>"$res/$tag.inc.bytes"
        echo "$srv_us" >>"$res/$tag.inc.srvus"
        echo "$sync_cpu" >>"$res/$tag.inc.cpu"
        echo "  incremental run $r (+$INC patients, $INC_RECORDS records on the hub): $(fmt "$sync_s" %.4f) s wall, sanad sync CPU $sync_cpu s, hub's own time answering $(calc "$srv_us / 1e3") ms"
        echo "    $sync_line"
        r=$((r + 1))
    done
    running_node_runs "$last_node" "$hub" "$tag"

    # the relay node catches up (not measured), then one more increment through the relay
    "$bin" sync --data "$relay_node" >/dev/null 2>"$work/sync.err" || { cat "$work/sync.err" >&2; die "catch-up sync failed"; }
    demo "$hub" "$INC" 2000
    relay_read
    c0=$wire_conns u0=$wire_up d0=$wire_down
    timed_sync "$relay_node"
    relay_read
    [ "$sync_applied" = "$INC_RECORDS" ] || die "incremental sync through the relay applied $sync_applied of $INC_RECORDS"
    echo "$((wire_up - u0)) $((wire_down - d0)) $((wire_conns - c0)) $sync_in $sync_out" >"$res/$tag.inc.wire"
    echo "  incremental through the relay: $((wire_down - d0)) bytes hub->node, $((wire_up - u0)) node->hub, $((wire_conns - c0)) TCP connections (sanad sync says: $sync_in in, $sync_out out)"
    stop_relay

    if [ "$tag" = N4 ]; then
        slow_link_runs "$hub" "$hub_port" "$hub_log"
    fi

    if [ "$tag" = N ] && [ "${PERF:-0}" = 1 ]; then
        profile_initial "$hub" "$hub_url" "$hub_pid"
    fi
    stop_server "$hub_pid"
    echo
}

# slow_link_runs HUB PORT HUB_LOG: once, the initial sync of a fresh node and one incremental sync over a
# slow link (the relay with SLOW_MS of delay each way, so a round trip of 2 * SLOW_MS, and a round trip
# before each new connection carries data), with the requests the hub saw: informational, no target.
# Every request costs a round trip there; a session asks for one nonce only (each signed answer brings the
# next) and keeps its connection, so its round trips are about its batches plus two.
SLOW_MS=${SLOW_MS:-50}
slow_link_runs() {
    start_relay "$2" "$SLOW_MS"
    slow_node=$work/node-slow
    new_node "$slow_node" "Clinic slow link"
    enrol "$1" "http://127.0.0.1:$relay_port" "$slow_node" "clinic-slow"
    for what in initial incremental; do
        [ "$what" = incremental ] && demo "$1" "$INC" 2500
        relay_read
        c0=$wire_conns l0=$(wc -l <"$3")
        timed_sync "$slow_node"
        relay_read
        tail -n +$((l0 + 1)) "$3" >"$work/slow.log"
        n_nonce=$(grep -c 'POST /api/v1/sync/nonce ' "$work/slow.log" || :)
        n_signed=$(grep -c 'POST /api/v1/sync/\(pull\|push\) ' "$work/slow.log" || :)
        echo "$sync_s $n_signed $n_nonce $((wire_conns - c0)) $sync_pulled" >"$res/slow.$what"
        echo "  $what sync over a link of $((2 * SLOW_MS)) ms round trip: $(fmt "$sync_s" %.3f) s wall; $n_signed signed requests, $n_nonce nonce requests, $((wire_conns - c0)) TCP connections; $sync_line"
    done
    stop_relay
}

# running_node_runs NODE HUB TAG: the same increments synced by a node that runs `sanad serve`, as nodes
# in the field do, asked through its API ("sync now": POST /api/v1/sync/run?wait=30, bench/sync_run.py):
# no process start, its transliterators compiled and its page cache warm from an unmeasured first
# increment. Timed by the HTTP client around the request; the round's own time is also noted.
running_node_runs() {
    rn_node=$1 rn_hub=$2 rn_tag=$3
    hub_srv_pid=$srv_pid hub_srv_log=$srv_log hub_srv_port=$srv_port
    start_server "$rn_node"
    rn_pid=$srv_pid rn_port=$srv_port
    token=$(python3 "$here/sync_run.py" login "$rn_port" "$PASSWORD") || die "cannot sign in to the running node"
    r=0
    while [ $r -le "$REPEAT" ]; do
        demo "$rn_hub" "$INC" $((3000 + r))
        out=$(python3 "$here/sync_run.py" run "$rn_port" "$token") || die "sync now, run $r, failed"
        set -- $out
        [ "$3" = "$INC_RECORDS" ] || die "sync now, run $r: applied $3 of $INC_RECORDS"
        if [ $r -gt 0 ]; then   # run 0 warms the node up
            echo "$1" >>"$res/$rn_tag.run.s"
            echo "$4" >>"$res/$rn_tag.run.roundms"
            echo "  sync now in a running node, run $r (+$INC patients): $(fmt "$1" %.4f) s wall (the round: $4 ms), $5 bytes in"
        fi
        r=$((r + 1))
    done
    [ "$(count_records "$rn_node")" = "$(count_records "$rn_hub")" ] || die "the running node does not hold the hub's records"
    stop_server "$rn_pid"
    srv_pid=$hub_srv_pid srv_log=$hub_srv_log srv_port=$hub_srv_port
}

# bundle_runs HUB URL COUNTS: the same initial data carried by hand (`sanad bundle`, docs/sync.md
# "Bundles"): REPEAT exports of the whole hub for a fresh node enrolled with it, each imported into a
# fresh copy of that node, timed; the node must then hold the hub's records.
bundle_runs() {
    bnode=$work/node-bundle
    new_node "$bnode" "Clinic bundle"
    enrol "$1" "$2" "$bnode" "clinic-bundle"
    r=1
    while [ $r -le "$REPEAT" ]; do
        t0=$(now_ns)
        "$bin" bundle export --data "$1" --peer clinic-bundle --out "$work/hub.bundle" >"$work/bundle.out" 2>&1 \
            || { cat "$work/bundle.out" >&2; die "sanad bundle export failed"; }
        t1=$(now_ns)
        rm -rf "$bnode-$r"
        cp -a "$bnode" "$bnode-$r"
        t2=$(now_ns)
        "$bin" bundle import --data "$bnode-$r" "$work/hub.bundle" >"$work/bundle.in" 2>&1 \
            || { cat "$work/bundle.in" >&2; die "sanad bundle import failed"; }
        t3=$(now_ns)
        got=$(count_records "$bnode-$r")
        [ "$got" = "$3" ] || die "bundle run $r: the node holds $got, the hub $3"
        calc "($t1 - $t0) / 1e9" >>"$res/bundle.export.s"
        echo >>"$res/bundle.export.s"
        calc "($t3 - $t2) / 1e9" >>"$res/bundle.import.s"
        echo >>"$res/bundle.import.s"
        stat -c %s "$work/hub.bundle" >>"$res/bundle.bytes"
        echo "  bundle run $r: export $(calc "($t1 - $t0) / 1e9") s, import $(calc "($t3 - $t2) / 1e9") s, $(stat -c %s "$work/hub.bundle") bytes"
        rm -rf "$bnode-$r"
        r=$((r + 1))
    done
}

# profile_initial HUB URL HUB_PID: one more initial sync (of SIZE + increments) with the receiving
# `sanad sync` under perf record (DWARF call graphs) and the hub profiled at the same time.
profile_initial() {
    node=$work/node-perf
    new_node "$node" "Clinic perf"
    enrol "$1" "$2" "$node" "clinic-perf"
    perf record -F 999 -g -p "$3" -o "$work/perf-hub.data" >"$work/perf-hub.log" 2>&1 &
    perf_pid=$!
    sleep 0.3
    t0=$(now_ns)
    perf record -F 999 --call-graph dwarf,65528 -o "$work/perf-sync.data" -- "$bin" sync --data "$node" \
        >"$work/perf-sync.out" 2>"$work/perf-sync.log" || { cat "$work/perf-sync.log" >&2; die "perf sync failed"; }
    t1=$(now_ns)
    kill -INT "$perf_pid" 2>/dev/null || :
    wait "$perf_pid" 2>/dev/null || :
    perf_pid=
    echo "  profile: one more initial sync under perf, $(calc "($t1 - $t0) / 1e9") s wall (slowed by perf; not counted)"
    echo "  receiving side (sanad sync): share of CPU samples spent in (inclusive) ..."
    perf script -i "$work/perf-sync.data" -F ip,sym 2>/dev/null >"$work/perf-sync.stacks" || :
    python3 "$work/stacks.py" "$work/perf-sync.stacks" | sed 's/^/    /'
    echo "  receiving side, self time by library:"
    perf report -i "$work/perf-sync.data" --stdio --no-children --sort dso -g none 2>/dev/null \
        | grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -8 | sed 's/^/    /' || :
    echo "  receiving side, self time, top 15 functions:"
    perf report -i "$work/perf-sync.data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null \
        | grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -15 | sed 's/^/    /' || :
    echo "  hub (sanad serve, answering the pulls), self time, top 10:"
    perf report -i "$work/perf-hub.data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null \
        | grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -10 | sed 's/^/    /' || :
}

# stacks.py: from `perf script -F ip,sym`, the share of samples with each of sanad's sync functions on
# the stack (inclusive), so that the split of an initial sync can be read off directly.
cat >"$work/stacks.py" <<'EOF'
import sys
samples, cur = [], []
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if not line:
        if cur:
            samples.append(cur)
        cur = []
        continue
    parts = line.split(None, 1)
    cur.append(parts[1].replace(" (inlined)", "") if len(parts) > 1 else "?")
if cur:
    samples.append(cur)
total = len(samples) or 1
rows = [
    ("batch_apply_decoded", "batch_apply_decoded: a batch applied in one transaction (the applying thread)"),
    ("apply_change", "  apply_change: per change"),
    ("store_row_has_changes", "    store_row_has_changes: is the row new? (one index probe)"),
    ("changelog_stamps_seen", "    changelog_stamps_seen: an existing row's changes, per-field winners"),
    ("store_change_insert", "    store_change_insert: the change-log row"),
    ("store_fields", "    store_fields (patients_store_fields): the patient row and its index"),
    ("record_index", "      record_index: name folding and search terms"),
    ("names_init", "        names_init: ICU transliterators compiled (once per process)"),
    ("store_patient_terms_set", "      store_patient_terms_set: patient_terms rows"),
    ("store_encounter_put_fields", "    store_encounter_put_fields: the encounter row"),
    ("store_entry_put_fields", "    store_entry_put_fields: the entry row"),
    ("db_commit", "  db_commit: commit (WAL write, fsync, checkpoint)"),
    ("pull_job_run", "pull_job_run: the next batch fetched and read (the second thread)"),
    ("transport_pull", "  transport_pull: HTTP request and answer (curl, signature)"),
    ("batch_decode", "  batch_decode: zstd, envelope, changes scanned, fields read and checked"),
    ("change_parse_objects", "    change_parse_objects: each change's fields and base read, the table's check"),
    ("batch_free", "  batch_free: the batch applied before, freed"),
    ("names_warm_up", "names_warm_up: ICU transliterators compiled on a third thread at start"),
    ("malloc", "(anywhere) malloc/free and friends, self"),
]
for fn, what in rows:
    if fn == "malloc":
        n = sum(1 for s in samples if any(k in s[0] for k in ("malloc", "free", "consolidate", "unlink_chunk", "_int_")))
    else:
        n = sum(1 for s in samples if fn in s)
    print("%5.1f%%  %s" % (100.0 * n / total, what))
print("(%d samples at 999 Hz: about %.2f s of CPU; frames whose unwinding failed count nowhere)" % (len(samples), len(samples) / 999.0))
EOF

echo "== initial and incremental sync: hub with $N patients =="
scenario "$N" N
echo "== the same with $N4 patients (is the incremental sync proportional to the change?) =="
scenario "$N4" N4

# ---- 2. push of a whole node to an empty hub -----------------------------------------------------------

echo "== push: a node with $N demo patients and their visits (seed 43) to an empty hub =="
pristine=$work/push-node
new_node "$pristine" "Clinic push"
demo "$pristine" "$N" 43
push_counts=$(count_records "$pristine")
push_want=$(count_changes "$pristine")
echo "node: (patients encounters entries) $push_counts, $push_want changes in its log"
r=1
while [ $r -le $((REPEAT + 1)) ]; do
    # the last run goes through the relay, for the bytes on the wire (its time is not counted)
    node=$work/push-node-$r
    hub=$work/push-hub-$r
    cp -a "$pristine" "$node"
    new_node "$hub" "Hub push $r"
    start_server "$hub"
    url=http://127.0.0.1:$srv_port
    if [ $r -gt "$REPEAT" ]; then
        start_relay "$srv_port"
        url=http://127.0.0.1:$relay_port
    fi
    enrol "$hub" "$url" "$node" "clinic-push-$r"
    [ $r -gt "$REPEAT" ] && { relay_read; c0=$wire_conns u0=$wire_up d0=$wire_down; }
    timed_sync "$node"
    stop_server "$srv_pid"
    got=$(count_records "$hub")
    [ "$sync_pushed" = "$push_want" ] && [ "$got" = "$push_counts" ] \
        || die "push run $r: pushed $sync_pushed of $push_want changes, the hub holds $got, the node $push_counts"
    if [ $r -le "$REPEAT" ]; then
        echo "$sync_s" >>"$res/push.s"
        echo "$sync_out" >>"$res/push.bytes"
        echo "$sync_cpu" >>"$res/push.cpu"
        echo "$srv_cpu" >>"$res/push.srvcpu"
        calc "$sync_cpu + $srv_cpu" >>"$res/push.cpusum"
        echo >>"$res/push.cpusum"
        calc "$sync_pushed / $sync_s" >>"$res/push.rate"
        echo >>"$res/push.rate"
        echo "  push run $r: $(fmt "$sync_s" %.3f) s wall = $(calc "$sync_pushed / $sync_s" | awk '{ printf "%.0f", $1 }') records/s; sanad sync CPU $sync_cpu s, hub CPU $srv_cpu s (hub's own time applying: $(calc "$srv_us / 1e6") s)"
        echo "    $sync_line"
    else
        relay_read
        echo "$((wire_up - u0)) $((wire_down - d0)) $((wire_conns - c0)) $sync_in $sync_out" >"$res/push.wire"
        echo "  through a counting relay: $((wire_up - u0)) bytes node->hub, $((wire_down - d0)) hub->node, $((wire_conns - c0)) TCP connections (sanad sync says: $sync_out out, $sync_in in)"
        stop_relay
    fi
    rm -rf "$node" "$hub"
    r=$((r + 1))
done
echo

# ---- 3. the floor ---------------------------------------------------------------------------------------

echo "== floor: plain sqlite3 bulk insert of the same rows (python3 sqlite3, sqlite $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)')) =="
python3 "$here/sync_floor.py" "$work/floor-base.db" "$work/floor-inc.db" "$work" --repeat "$REPEAT" \
    --jsonl "$work/base.jsonl" >"$res/floor.json" || die "the floor failed"
floor_s=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["median_s"])' <"$res/floor.json")
floor_inc_s=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["inc_median_s"])' <"$res/floor.json")
floor_cpu=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["cpu_median_s"])' <"$res/floor.json")
python3 -c '
import json, sys
f = json.load(sys.stdin)
rows = lambda d: ", ".join("%d %s" % (n, t) for t, n in d.items())
print("  %s rows (the same tables, keys and indexes as the hub) in one transaction: %s s (median %.4f s; CPU median %.4f s)"
      % (rows(f["rows"]), ", ".join("%.4f" % x for x in f["runs"]), f["median_s"], f["cpu_median_s"]))
print("  then %s rows in a second transaction: %s s (median %.5f s)"
      % (rows(f["inc_rows"]), ", ".join("%.5f" % x for x in f["inc_runs"]), f["inc_median_s"]))
' <"$res/floor.json"
json_bytes=$(wc -c <"$work/base.jsonl")
if command -v zstd >/dev/null 2>&1; then
    zstd_bytes=$(zstd -3 -q -c "$work/base.jsonl" | wc -c)
else
    zstd_bytes=
fi
echo

# ---- 4. summary -----------------------------------------------------------------------------------------

load_after=$(loadavg)
init_s=$(med N.init.s)
init_b=$(med N.init.bytes)
set -- $(cat "$res/N.init.wire")
init_wire=$(($1 + $2))
set -- $(cat "$res/N.inc.wire")
inc_wire=$(($1 + $2))
set -- $(cat "$res/N4.inc.wire")
inc4_wire=$(($1 + $2))
set -- $(cat "$res/push.wire")
push_wire=$(($1 + $2))
push_s=$(med push.s)
push_rate=$(med push.rate)
inc_s=$(med N.inc.s)
inc_b=$(med N.inc.bytes)
inc4_s=$(med N4.inc.s)
inc4_b=$(med N4.inc.bytes)
init4_s=$(med N4.init.s)

# verdict VALUE OP TARGET [RATIO]: yes when VALUE meets the target and RATIO (if given) is within 3x.
verdict() {
    awk -v v="$1" -v op="$2" -v t="$3" -v r="${4:-0}" -v m="$TARGET_FLOOR_RATIO" 'BEGIN {
        ok = (op == "<=") ? v <= t : v >= t
        if (r != "" && r + 0 > m) ok = 0
        print ok ? "yes" : "NO" }'
}
row() { printf '| %-44s | %14s | %-22s | %10s | %8s | %-4s |\n' "$@"; }

ratio_init=$(calc "$init_s / $floor_s")
ratio_push=$(calc "$push_s / $floor_s")
ratio_inc=$(calc "$inc_s / $floor_inc_s")
run_s=$(med N.run.s)
ratio_run=$(calc "$run_s / $floor_inc_s")
echo "== summary: medians of $REPEAT; floor = sqlite3 bulk insert of the same rows in the same run =="
echo "   ($N patients + $((N * VISITS)) encounters + $((N * VISITS * ENTRIES)) entries = $RECORDS records; the issue's targets are for $WORKLOAD_RECORDS)"
row "metric" "median" "target" "floor" "ratio" "ok?"
row "--------------------------------------------" "--------------" "----------------------" "----------" "--------" "----"
row "initial sync, $RECORDS records: wall" "$(fmt "$init_s" '%.3f s')" "<= $TARGET_INITIAL_S s" "$(fmt "$floor_s" '%.3f s')" "$(fmt "$ratio_init" '%.1fx')" "$(verdict "$init_s" '<=' "$TARGET_INITIAL_S" "$ratio_init")"
row "initial sync: CPU, sanad sync + hub" "$(fmt "$(med N.init.cpusum)" '%.2f s')" "(less load-sensitive)" "$(fmt "$floor_cpu" '%.2f s')" "$(calc "$(med N.init.cpusum) / $floor_cpu" | xargs printf '%.1fx')" ""
row "initial sync: batch bytes (sanad sync)" "$(fmt "$init_b" '%.0f')" "" "" "" ""
row "initial sync: bytes on the wire (relay)" "$(calc "$init_wire / 1e6" | xargs printf '%.2f MB')" "<= $TARGET_INITIAL_MB MB" "" "" "$(verdict "$(calc "$init_wire / 1e6")" '<=' "$TARGET_INITIAL_MB")"
row "push, $RECORDS records to an empty hub: wall" "$(fmt "$push_s" '%.3f s')" "<= $TARGET_PUSH_S s" "$(fmt "$floor_s" '%.3f s')" "$(fmt "$ratio_push" '%.1fx')" "$(verdict "$push_s" '<=' "$TARGET_PUSH_S" "$ratio_push")"
row "push: records/s" "$(fmt "$push_rate" '%.0f')" ">= $TARGET_PUSH_RATE records/s" "$(calc "$RECORDS / $floor_s" | xargs printf '%.0f')" "$(fmt "$ratio_push" '%.1fx')" "$(verdict "$push_rate" '>=' "$TARGET_PUSH_RATE" "$ratio_push")"
row "push: CPU, hub + sanad sync" "$(fmt "$(med push.cpusum)" '%.2f s')" "(less load-sensitive)" "$(fmt "$floor_cpu" '%.2f s')" "$(calc "$(med push.cpusum) / $floor_cpu" | xargs printf '%.1fx')" ""
row "push: bytes on the wire (relay)" "$(calc "$push_wire / 1e6" | xargs printf '%.2f MB')" "" "" "" ""
row "incremental, +$INC_RECORDS records on $RECORDS: wall" "$(fmt "$(calc "$inc_s * 1000")" '%.1f ms')" "<= $TARGET_INC_MS ms" "$(fmt "$(calc "$floor_inc_s * 1000")" '%.2f ms')" "$(fmt "$ratio_inc" '%.1fx')" "$(verdict "$(calc "$inc_s * 1000")" '<=' "$TARGET_INC_MS" "$ratio_inc")"
row "incremental, sync now (running node): wall" "$(fmt "$(calc "$run_s * 1000")" '%.1f ms')" "<= $TARGET_INC_MS ms" "$(fmt "$(calc "$floor_inc_s * 1000")" '%.2f ms')" "$(fmt "$ratio_run" '%.1fx')" "$(verdict "$(calc "$run_s * 1000")" '<=' "$TARGET_INC_MS" "$ratio_run")"
row "incremental: CPU, sanad sync" "$(fmt "$(calc "$(med N.inc.cpu) * 1000")" '%.0f ms')" "" "" "" ""
row "incremental: batch bytes (sanad sync)" "$(fmt "$inc_b" '%.0f')" "" "" "" ""
row "incremental: bytes on the wire (relay)" "$(calc "$inc_wire / 1e3" | xargs printf '%.1f KB')" "<= $TARGET_INC_KB KB" "" "" "$(verdict "$(calc "$inc_wire / 1e3")" '<=' "$TARGET_INC_KB")"
row "incremental, +$INC_RECORDS on $((RECORDS / 4)): wall" "$(fmt "$(calc "$inc4_s * 1000")" '%.1f ms')" "(same as at $N)" "" "" ""
row "sync now on $((RECORDS / 4)): wall" "$(fmt "$(calc "$(med N4.run.s) * 1000")" '%.1f ms')" "(same as at $N)" "" "" ""
row "incremental on $((RECORDS / 4)): wire bytes (relay)" "$(calc "$inc4_wire / 1e3" | xargs printf '%.1f KB')" "(same as at $N)" "" "" ""
row "initial sync, $((RECORDS / 4)) records: wall" "$(fmt "$init4_s" '%.3f s')" "(reference)" "" "" ""
row "bundle of the hub: export, wall" "$(fmt "$(med bundle.export.s)" '%.3f s')" "(no target)" "" "" ""
row "bundle of the hub: import, wall" "$(fmt "$(med bundle.import.s)" '%.3f s')" "(no target)" "$(fmt "$floor_s" '%.3f s')" "$(calc "$(med bundle.import.s) / $floor_s" | xargs printf '%.1fx')" ""
row "slow link ($((2 * SLOW_MS)) ms round trip), initial, $((RECORDS / 4))" "$(awk '{ printf "%.3f s", $1 }' "$res/slow.initial")" "(no target)" "" "" ""
row "  its requests: signed, nonce, TCP" "$(awk '{ printf "%d, %d, %d", $2, $3, $4 }' "$res/slow.initial")" "" "" "" ""
row "slow link, incremental (+$INC_RECORDS)" "$(awk '{ printf "%.3f s", $1 }' "$res/slow.incremental")" "(no target)" "" "" ""
row "  its requests: signed, nonce, TCP" "$(awk '{ printf "%d, %d, %d", $2, $3, $4 }' "$res/slow.incremental")" "" "" "" ""
row "bundle of the hub: size" "$(calc "$(med bundle.bytes) / 1e6" | xargs printf '%.2f MB')" "" "" "" ""
echo
echo "every run (seconds): initial $(list N.init.s); push $(list push.s); incremental $(list N.inc.s); sync now $(list N.run.s); at $N4 patients: initial $(list N4.init.s), incremental $(list N4.inc.s), sync now $(list N4.run.s)"
echo "the incremental two ways: 'sanad sync' is a process of its own (start, database open, transliterators compiled,"
echo "  cold page cache, checkpoint on exit when the WAL is over 16 MB); 'sync now' is the same session in a running"
echo "  'sanad serve' (POST /api/v1/sync/run), as nodes run in the field; its round took $(med N.run.roundms) ms by the node's own clock"
echo "where the initial sync's time goes (medians): sanad sync CPU $(med N.init.cpu) s, hub CPU $(med N.init.srvcpu) s, hub's own time answering the pulls $(calc "$(med N.init.srvus) / 1e6") s (access log)"
echo "where the push's time goes (medians): sanad sync CPU $(med push.cpu) s (building and compressing), hub CPU $(med push.srvcpu) s (applying)"
echo "incremental proportional to the change: wall at $N / at $N4 patients = $(calc "$inc_s / $inc4_s" | xargs printf '%.2f'), wire bytes $(calc "$inc_wire / $inc4_wire" | xargs printf '%.2f') (1.00 = independent of the database size; 4.00 = proportional to it)"
echo "data volume: the hub's $RECORDS records are $json_bytes bytes as JSON lines of their rows$( [ -n "$zstd_bytes" ] && printf ', %s bytes with zstd -3' "$zstd_bytes") (the issue's"
echo "  reference workload, ../shared/bench/workload.py: 163 MB of JSON lines, 14.1 MB zstd -3, for 200,000 records)"
echo "for scale (the issue, Hikma Health server, same machine, 200,000 records): 6.5-9 s initial pull (download only),"
echo "  172-197 s push (about 1,070 records/s), 0.41 s / 1.0 MB incremental pull of 100 patients; PouchDB 52 s each way."
echo "machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}; load $load_before before, $load_after after (1, 5, 15 min)"
