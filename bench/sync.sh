#!/bin/sh
# bench/sync.sh — the replication benchmark (issue 6): initial sync of a new node from a hub, push of a
# whole node to an empty hub, and incremental sync of 100 new patients, between real `sanad serve` and
# `sanad sync` processes over loopback, each as a median of REPEAT runs next to the floor of a plain
# sqlite3 bulk insert of the same rows measured in the same run.
#
# Usage: bench/sync.sh
#   SANAD_BIN=path     the binary (default ./sanad, built with make when missing; a private copy is run)
#   BENCH_PATIENTS=N   patients on the hub (default 20000); the incremental runs are repeated at N/4
#   REPEAT=3           runs per figure (medians)
#   KEEP=1             keep the work directory and print where it is
#   PERF=1             one more initial sync under `perf record` (client, with the hub profiled too) and
#                      the hottest functions; the figures of that run are not counted
# Only patients replicate so far (visits and form entries come with a later issue): this measures the
# 20,000-patient part of the issue's 200,000-record workload and says so. It prints figures and never
# fails on one; it stops with an error when a sync does not move what it should. See bench/README.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
N=${BENCH_PATIENTS:-20000}
REPEAT=${REPEAT:-3}
INC=100
PASSWORD=bench-password-0123

# the issue's workload and targets (for 200,000 records: 20,000 patients x 3 visits x 2 form entries)
WORKLOAD_RECORDS=200000
WORKLOAD_JSON_MB=163
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

# demo DIR N SEED
demo() {
    "$bin" demo --data "$1" --patients "$2" --seed "$3" >"$1.demo.$3.log" 2>&1 \
        || { cat "$1.demo.$3.log" >&2; die "sanad demo --data $1 --patients $2 failed"; }
}

count_patients() { sqlite3 "$1/sanad.db" "SELECT count(*) FROM patients WHERE deleted = 0"; }

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
import os, socket, sys, threading
target, counts = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
st = {"active": 0, "conns": 0, "up": 0, "down": 0}
def write():
    with open(counts + ".tmp", "w") as f:
        f.write("%d %d %d %d\n" % (st["active"], st["conns"], st["up"], st["down"]))
    os.replace(counts + ".tmp", counts)
def pump(src, dst, key, done):
    try:
        while True:
            b = src.recv(1 << 16)
            if not b:
                break
            dst.sendall(b)
            with lock:
                st[key] += len(b)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    done()
def handle(c):
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
start_relay() {
    relay_counts=$work/relay.$1.counts
    python3 "$work/relay.py" "$1" "$relay_counts" >"$work/relay.$1.port" 2>"$work/relay.$1.err" &
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
echo "workload: $N demo patients (sanad demo --seed 42) on the hub; $REPEAT runs per figure, medians."
echo "          PATIENTS ONLY: of the issue's $WORKLOAD_RECORDS records (20,000 patients x 3 visits x 2 form"
echo "          entries) only patients replicate so far; visits and form entries come with a later issue and"
echo "          are not simulated here. Every figure below is for $N patient records."
echo

# ---- 1. initial and incremental sync from a hub, at N and at N/4 --------------------------------------

# scenario SIZE TAG: a hub with SIZE patients; REPEAT initial syncs of fresh nodes, one more through the
# counting relay; then REPEAT incremental syncs of INC new hub patients on the last node, and one more
# through the relay. Results in $res/TAG.*.
scenario() {
    size=$1 tag=$2
    hub=$work/hub-$tag
    new_node "$hub" "Hub $tag"
    t0=$(now_ns)
    demo "$hub" "$size" 42
    echo "hub $tag: $size demo patients made in $(calc "($(now_ns) - $t0) / 1e9") s"
    start_server "$hub"
    hub_pid=$srv_pid hub_log=$srv_log hub_port=$srv_port
    hub_url=http://127.0.0.1:$hub_port

    r=1
    while [ $r -le "$REPEAT" ]; do
        node=$work/node-$tag-$r
        new_node "$node" "Clinic $tag $r"
        enrol "$hub" "$hub_url" "$node" "clinic-$tag-$r"
        timed_sync "$node"
        got=$(count_patients "$node")
        [ "$sync_applied" = "$size" ] && [ "$got" = "$size" ] \
            || die "initial sync $tag run $r: applied $sync_applied, node holds $got patients, hub $size"
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

    # one more, through the relay, for the bytes on the wire (its time is not counted)
    start_relay "$hub_port"
    relay_node=$work/node-$tag-relay
    new_node "$relay_node" "Clinic $tag relay"
    enrol "$hub" "http://127.0.0.1:$relay_port" "$relay_node" "clinic-$tag-relay"
    relay_read
    c0=$wire_conns u0=$wire_up d0=$wire_down
    timed_sync "$relay_node"
    relay_read
    echo "$((wire_up - u0)) $((wire_down - d0)) $((wire_conns - c0)) $sync_in $sync_out" >"$res/$tag.init.wire"
    echo "  through a counting relay: $((wire_down - d0)) bytes hub->node, $((wire_up - u0)) node->hub, $((wire_conns - c0)) TCP connections (sanad sync says: $sync_in in, $sync_out out)"

    if [ "$tag" = N ]; then
        "$bin" export patients --data "$hub" --format jsonl >"$work/base.jsonl" 2>"$work/export.err" \
            || { cat "$work/export.err" >&2; die "sanad export failed"; }
    fi

    # incremental: INC new patients on the hub, then sync the last node
    r=1
    while [ $r -le "$REPEAT" ]; do
        demo "$hub" "$INC" $((1000 + r))
        timed_sync "$last_node"
        got=$(count_patients "$last_node")
        [ "$sync_applied" = "$INC" ] && [ "$got" = $((size + r * INC)) ] \
            || die "incremental sync $tag run $r: applied $sync_applied, node holds $got patients"
        echo "$sync_s" >>"$res/$tag.inc.s"
        echo "$sync_in" >>"$res/$tag.inc.bytes"
        echo "$srv_us" >>"$res/$tag.inc.srvus"
        echo "  incremental run $r (+$INC on the hub): $(fmt "$sync_s" %.4f) s wall, sanad sync CPU $sync_cpu s, hub's own time answering $(calc "$srv_us / 1e3") ms"
        echo "    $sync_line"
        r=$((r + 1))
    done
    # the relay node catches up (not measured), then one more increment through the relay
    "$bin" sync --data "$relay_node" >/dev/null 2>"$work/sync.err" || { cat "$work/sync.err" >&2; die "catch-up sync failed"; }
    demo "$hub" "$INC" 2000
    relay_read
    c0=$wire_conns u0=$wire_up d0=$wire_down
    timed_sync "$relay_node"
    relay_read
    [ "$sync_applied" = "$INC" ] || die "incremental sync through the relay applied $sync_applied"
    echo "$((wire_up - u0)) $((wire_down - d0)) $((wire_conns - c0)) $sync_in $sync_out" >"$res/$tag.inc.wire"
    echo "  incremental through the relay: $((wire_down - d0)) bytes hub->node, $((wire_up - u0)) node->hub, $((wire_conns - c0)) TCP connections (sanad sync says: $sync_in in, $sync_out out)"
    stop_relay

    if [ "$tag" = N ]; then
        "$bin" export patients --data "$hub" --format jsonl >"$work/all.jsonl" 2>"$work/export.err" \
            || { cat "$work/export.err" >&2; die "sanad export failed"; }
        sqlite3 -separator '	' "$hub/sanad.db" "SELECT term, patient_id FROM patient_terms" >"$work/terms.tsv" \
            || die "cannot read patient_terms"
        sqlite3 "$hub/sanad.db" "SELECT count(*) FROM patient_terms" >"$res/N.terms"
        if [ "${PERF:-0}" = 1 ]; then
            profile_initial "$hub" "$hub_url" "$hub_pid"
        fi
    fi
    stop_server "$hub_pid"
    echo
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
    ("sync_batch_apply", "sync_batch_apply: a pulled batch, decoded and applied in one transaction"),
    ("batch_decode", "  batch_decode: zstd + JSON parse + checks (in apply, and again in batch_vector)"),
    ("apply_change", "  apply_change: per change"),
    ("changelog_stamps", "    changelog_stamps: the row's current per-field stamps"),
    ("store_change_append", "    store_change_append: the change-log row"),
    ("json_dumps", "    json_dumps: fields and base written back to text"),
    ("store_fields", "    patients store_fields: the patient row and its index"),
    ("record_index", "      record_index: name folding and search terms"),
    ("names_init", "        names_init: ICU transliterators compiled (once per process)"),
    ("store_patient_put", "      store_patient_put: the patients row"),
    ("store_patient_terms_set", "      store_patient_terms_set: patient_terms rows"),
    ("db_commit", "  db_commit: commit (WAL write, fsync, checkpoint)"),
    ("batch_vector", "batch_vector (sync_with_peer): the same batch decoded a second time to read its vector"),
    ("transport_pull", "transport_pull: HTTP request and answer (curl, signature)"),
    ("sync_cursor_save", "sync_cursor_save: cursors, each in its own transaction"),
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

echo "== push: a node with $N demo patients (seed 43) to an empty hub =="
pristine=$work/push-node
new_node "$pristine" "Clinic push"
demo "$pristine" "$N" 43
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
    got=$(count_patients "$hub")
    [ "$sync_pushed" = "$N" ] && [ "$got" = "$N" ] \
        || die "push run $r: pushed $sync_pushed, the hub holds $got patients of $N"
    if [ $r -le "$REPEAT" ]; then
        echo "$sync_s" >>"$res/push.s"
        echo "$sync_out" >>"$res/push.bytes"
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
python3 "$here/sync_floor.py" "$work/base.jsonl" "$work/all.jsonl" "$work/terms.tsv" "$work" \
    --repeat "$REPEAT" --inc "$INC" >"$res/floor.json" || die "the floor failed"
floor_s=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["median_s"])' <"$res/floor.json")
floor_inc_s=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["inc_median_s"])' <"$res/floor.json")
floor_cpu=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["cpu_median_s"])' <"$res/floor.json")
python3 -c '
import json, sys
f = json.load(sys.stdin)
print("  %d rows (%d bytes of JSON) + %d index rows in one transaction: %s s (median %.4f s; CPU median %.4f s)"
      % (f["rows"], f["doc_bytes"], f["terms"], ", ".join("%.4f" % x for x in f["runs"]), f["median_s"],
         f["cpu_median_s"]))
print("  then %d more rows + %d index rows in a second transaction: %s s (median %.5f s)"
      % (f["inc_rows"], f["inc_terms"], ", ".join("%.5f" % x for x in f["inc_runs"]), f["inc_median_s"]))
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
echo "== summary: medians of $REPEAT; floor = sqlite3 bulk insert of the same rows in the same run =="
echo "   ($N patient records only: the targets are the issue's, set for $WORKLOAD_RECORDS records of all types)"
row "metric" "median" "target" "floor" "ratio" "ok?"
row "--------------------------------------------" "--------------" "----------------------" "----------" "--------" "----"
row "initial sync, $N patients: wall" "$(fmt "$init_s" '%.3f s')" "<= $TARGET_INITIAL_S s (200k records)" "$(fmt "$floor_s" '%.3f s')" "$(fmt "$ratio_init" '%.1fx')" "$(verdict "$init_s" '<=' "$TARGET_INITIAL_S" "$ratio_init")"
row "initial sync: CPU, sanad sync + hub" "$(fmt "$(med N.init.cpusum)" '%.2f s')" "(less load-sensitive)" "$(fmt "$floor_cpu" '%.2f s')" "$(calc "$(med N.init.cpusum) / $floor_cpu" | xargs printf '%.1fx')" ""
row "initial sync: batch bytes (sanad sync)" "$(fmt "$init_b" '%.0f')" "" "" "" ""
row "initial sync: bytes on the wire (relay)" "$(calc "$init_wire / 1e6" | xargs printf '%.2f MB')" "<= $TARGET_INITIAL_MB MB (200k records)" "" "" "$(verdict "$(calc "$init_wire / 1e6")" '<=' "$TARGET_INITIAL_MB")"
row "push, $N patients to an empty hub: wall" "$(fmt "$push_s" '%.3f s')" "<= $TARGET_PUSH_S s (200k records)" "$(fmt "$floor_s" '%.3f s')" "$(fmt "$ratio_push" '%.1fx')" "$(verdict "$push_s" '<=' "$TARGET_PUSH_S" "$ratio_push")"
row "push: records/s" "$(fmt "$push_rate" '%.0f')" ">= $TARGET_PUSH_RATE records/s" "$(calc "$N / $floor_s" | xargs printf '%.0f')" "$(fmt "$ratio_push" '%.1fx')" "$(verdict "$push_rate" '>=' "$TARGET_PUSH_RATE" "$ratio_push")"
row "push: CPU, hub + sanad sync" "$(fmt "$(med push.cpusum)" '%.2f s')" "(less load-sensitive)" "$(fmt "$floor_cpu" '%.2f s')" "$(calc "$(med push.cpusum) / $floor_cpu" | xargs printf '%.1fx')" ""
row "push: bytes on the wire (relay)" "$(calc "$push_wire / 1e6" | xargs printf '%.2f MB')" "" "" "" ""
row "incremental, +$INC patients on $N: wall" "$(fmt "$(calc "$inc_s * 1000")" '%.1f ms')" "<= $TARGET_INC_MS ms" "$(fmt "$(calc "$floor_inc_s * 1000")" '%.2f ms')" "$(fmt "$ratio_inc" '%.0fx')" "$(verdict "$(calc "$inc_s * 1000")" '<=' "$TARGET_INC_MS" "$ratio_inc")"
row "incremental: batch bytes (sanad sync)" "$(fmt "$inc_b" '%.0f')" "" "" "" ""
row "incremental: bytes on the wire (relay)" "$(calc "$inc_wire / 1e3" | xargs printf '%.1f KB')" "<= $TARGET_INC_KB KB" "" "" "$(verdict "$(calc "$inc_wire / 1e3")" '<=' "$TARGET_INC_KB")"
row "incremental, +$INC patients on $N4: wall" "$(fmt "$(calc "$inc4_s * 1000")" '%.1f ms')" "(same as at $N)" "" "" ""
row "incremental on $N4: wire bytes (relay)" "$(calc "$inc4_wire / 1e3" | xargs printf '%.1f KB')" "(same as at $N)" "" "" ""
row "initial sync, $N4 patients: wall" "$(fmt "$init4_s" '%.3f s')" "(reference)" "" "" ""
echo
echo "every run (seconds): initial $(list N.init.s); push $(list push.s); incremental $(list N.inc.s); at $N4: initial $(list N4.init.s), incremental $(list N4.inc.s)"
echo "where the initial sync's time goes (medians): sanad sync CPU $(med N.init.cpu) s, hub CPU $(med N.init.srvcpu) s, hub's own time answering the pulls $(calc "$(med N.init.srvus) / 1e6") s (access log)"
echo "incremental proportional to the change: wall at $N / at $N4 = $(calc "$inc_s / $inc4_s" | xargs printf '%.2f'), wire bytes $(calc "$inc_wire / $inc4_wire" | xargs printf '%.2f') (1.00 = independent of the database size; 4.00 = proportional to it)"
echo "data volume: the $N patients are $json_bytes bytes as JSON lines (sanad export)$( [ -n "$zstd_bytes" ] && printf ', %s bytes with zstd -3' "$zstd_bytes"); the issue's workload is $WORKLOAD_JSON_MB MB of JSON lines (14.1 MB zstd -3)"
echo "  = $(calc "100 * $N / $WORKLOAD_RECORDS" | xargs printf '%.0f') % of its records and $(calc "100 * $json_bytes / ($WORKLOAD_JSON_MB * 1e6)" | xargs printf '%.1f') % of its bytes."
echo "  Not measured, only scaled: if time and bytes grew linearly, $WORKLOAD_RECORDS records would take about $(calc "$init_s * $WORKLOAD_RECORDS / $N" | xargs printf '%.0f') s to sync initially"
echo "  (about $(calc "$init_s * $WORKLOAD_JSON_MB * 1e6 / $json_bytes" | xargs printf '%.0f') s scaled by JSON bytes instead), $(calc "$init_wire * $WORKLOAD_JSON_MB / $json_bytes" | xargs printf '%.1f') MB on the wire scaled by bytes, and $(calc "$push_s * $WORKLOAD_RECORDS / $N" | xargs printf '%.0f') s to push."
echo "for scale (the issue, Hikma Health server, same machine, 200,000 records): 6.5-9 s initial pull (download only),"
echo "  172-197 s push (about 1,070 records/s), 0.41 s / 1.0 MB incremental pull of 100 patients; PouchDB 52 s each way."
echo "machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}; load $load_before before, $load_after after (1, 5, 15 min)"
