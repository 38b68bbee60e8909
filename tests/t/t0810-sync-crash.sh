#!/bin/sh
# t0810-sync-crash.sh — replication survives kill -9. A hub and a node, each serving its own data dir,
# hold a few hundred patients each and keep registering, editing and deleting more (through the API, and
# with `sanad demo` while sessions run); in every round a sync session in batches of at most 4 KiB is cut
# by kill -9: the node's `sanad sync` client, the hub's server while it answers that client, the hub's
# client syncing towards the node, or the node's server while it answers — at a random moment (10 to
# 300 ms in), or aimed at the pull or the push phase (a few ms after the serving side answered the
# session's k-th pull or push). A killed server restarts on its own port. Each round checks that neither
# database lost a change (every origin's log is 1..N, the stored version vector agrees) or was damaged;
# at the end two full syncs must succeed and both nodes must hold the same change log, the same patients
# (none lost, none twice) and search index, an intact audit chain and a database that passes
# integrity_check. SYNC_CRASH_SEED=N replays a schedule (the seed is printed); SYNC_CRASH_ROUNDS=N (12).
. "$(dirname "$0")/lib.sh"

SEED=${SYNC_CRASH_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
ROUNDS=${SYNC_CRASH_ROUNDS:-12}
echo "# seed $SEED, $ROUNDS rounds (SYNC_CRASH_SEED=$SEED replays the schedule)"

HDIR=$TMP/hub
NDIR=$TMP/node
MOVED=0                 # restarts that could not get their port back

# q DIR SQL: one query on a node's database (sqlite3 CLI, independent of the code under test).
q() {
  sqlite3 -batch "$1/sanad.db" "$2"
}

# forget_pid PID: PID was reaped; cleanup must never signal whatever reuses it.
forget_pid() {
  grep -vx "$1" "$TMP/.pids" >"$TMP/.pids.new"
  mv "$TMP/.pids.new" "$TMP/.pids"
}

# kill9 PID: kill -9 a process this script started, reap it; sets KILL_RC (its exit status).
kill9() {
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null     # (the shell's "Killed" notice: expected here)
  KILL_RC=$?
  forget_pid "$1"
}

# serve_at DIR PORT: `sanad serve` DIR on 127.0.0.1:PORT in the background; sets SRV_PID and SRV_LOG and
# returns once /healthz answers. Returns 1 (nothing left running) when it cannot listen there.
serve_at() {
  SRV_LOG=$TMP/serve.$(date +%s%N).log
  : >"$SRV_LOG"
  "$SANAD_BIN" serve --data "$1" --listen "127.0.0.1:$2" </dev/null >"$SRV_LOG" 2>&1 &
  SRV_PID=$!
  echo "$SRV_PID" >>"$TMP/.pids"
  _i=0
  while [ $_i -lt $((T_START * 20)) ]; do
    if grep -q "listening on 127\.0\.0\.1:$2 " "$SRV_LOG" \
      && [ "$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/healthz")" = 200 ]; then
      return 0
    fi
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
    _i=$((_i + 1))
  done
  kill9 "$SRV_PID"
  return 1
}

# restart WHO: serve the hub or the node again on its port after a kill -9. Should another process have
# taken the port meanwhile, serve on a new one and point the other side's peer row at it: there is no
# `sanad peer` command that changes a peer's url, so the row is rewritten in the database.
restart() {
  if [ "$1" = hub ]; then _dir=$HDIR _port=$HPORT; else _dir=$NDIR _port=$NPORT; fi
  if ! serve_at "$_dir" "$_port"; then
    MOVED=$((MOVED + 1))
    echo "# note: port $_port was taken after the kill; $1 moves (its url is rewritten in the peer's row)"
    start_node "$_dir"
    SRV_PID=$NODE_PID SRV_LOG=$NODE_LOG _port=$NODE_PORT
    if [ "$1" = hub ]; then
      q "$NDIR" "update peers set url = 'http://127.0.0.1:$_port' where name = 'hub'"
    else
      q "$HDIR" "update peers set url = 'http://127.0.0.1:$_port' where name = 'clinic'"
    fi
  fi
  if [ "$1" = hub ]; then
    HPID=$SRV_PID HPORT=$_port HLOG=$SRV_LOG
  else
    NPID=$SRV_PID NPORT=$_port NLOG=$SRV_LOG
  fi
}

# on WHO: send the next api calls to the hub or the node, as its admin.
on() {
  if [ "$1" = hub ]; then
    BASE=http://127.0.0.1:$HPORT TOKEN=$HUB_TOKEN
  else
    BASE=http://127.0.0.1:$NPORT TOKEN=$NODE_TOKEN
  fi
}

# own_patient DIR N [desc]: the id of the N-th (from 0) live patient of DIR's own (default) site, in id order (the
# oldest first, or with desc the newest: edits take old ones, deletes new ones, never the same).
own_patient() {
  q "$1" "select id from patients where deleted = 0
          and site_id = (select value from meta where key = 'default_site')
          order by id ${3:-} limit 1 offset $2"
}

# holes DIR: origins whose log is not exactly seqs 1..N, or whose version vector entry kept in the
# database (origins.contiguous, when the schema has it) is not N (nothing printed when all is well).
holes() {
  q "$1" "select o.node_id || ': ' || count(*) || ' changes, max seq ' || max(c.seq) from changes c
          join origins o on o.n = c.origin group by c.origin having count(*) != max(c.seq) or min(c.seq) != 1"
  if [ "$(q "$1" "select count(*) from pragma_table_info('origins') where name = 'contiguous'")" = 1 ]; then
    q "$1" "select o.node_id || ': version vector says ' || o.contiguous || ', the log holds ' || count(c.seq)
            from origins o left join changes c on c.origin = o.n group by o.n having o.contiguous != count(c.seq)"
  fi
}

# ---- two nodes, enrolled, with patients ------------------------------------------------------------------
start_node "$HDIR"
HPID=$NODE_PID HPORT=$NODE_PORT HLOG=$NODE_LOG
start_node "$NDIR"
NPID=$NODE_PID NPORT=$NODE_PORT NLOG=$NODE_LOG
sanad peer invite --data "$HDIR" --name clinic
CODE=$(printf '%s\n' "$OUT" | sed -n 's/^Enrolment code: *//p')
[ -n "$CODE" ] || bail "peer invite on the hub" "$ERR"
sanad peer add --data "$NDIR" --url "http://127.0.0.1:$HPORT" --code "$CODE" --name hub \
  --self-url "http://127.0.0.1:$NPORT"
[ "$RC" = 0 ] || bail "peer add on the node" "$ERR"
ok "hub and node enrolled (hub at port $HPORT, node at $NPORT)"

# demo writes straight to the database, beside the running servers
sanad demo --data "$NDIR" --patients 400 --seed 5
expect_rc 0 "400 demo patients on the node"
sanad demo --data "$HDIR" --patients 300 --seed 6
expect_rc 0 "300 demo patients on the hub"
EXPECTED=700
BASE=http://127.0.0.1:$HPORT
HUB_TOKEN=$(login "$ADMIN_USER" "$ADMIN_PW")
[ -n "$HUB_TOKEN" ] || bail "sign in on the hub"
BASE=http://127.0.0.1:$NPORT
NODE_TOKEN=$(login "$ADMIN_USER" "$ADMIN_PW")
[ -n "$NODE_TOKEN" ] || bail "sign in on the node"

: >"$TMP/edits"         # "id camp" of every edit, checked on both sides at the end
: >"$TMP/deletes"       # ids of deleted patients

# work WHO R: on WHO's site, through its API: register a patient, edit one (its camp), and in every
# fourth round delete one; then 30 more demo patients straight into the database.
work() {
  on "$1"
  api POST /api/v1/patients "{\"given_name\":\"Crash$2\",\"family_name\":\"$1\",\"sex\":\"female\",\"camp\":\"C$2\"}"
  [ "$STATUS" = 201 ] || not_ok "register a patient on the $1 in round $2" "got $STATUS: $BODY"
  [ "$STATUS" = 201 ] && EXPECTED=$((EXPECTED + 1))
  if [ "$1" = hub ]; then _dir=$HDIR; else _dir=$NDIR; fi
  _id=$(own_patient "$_dir" $((3 * $2)))
  api PATCH "/api/v1/patients/$_id" "{\"camp\":\"Round $2 $1\"}"
  if [ "$STATUS" = 200 ]; then
    echo "$_id Round $2 $1" >>"$TMP/edits"
  else
    not_ok "edit a patient on the $1" "$STATUS $BODY"
  fi
  if [ $(($2 % 4)) = 3 ]; then
    _id=$(own_patient "$_dir" "$2" desc)
    api DELETE "/api/v1/patients/$_id"
    if [ "$STATUS" = 204 ] || [ "$STATUS" = 200 ]; then
      echo "$_id" >>"$TMP/deletes"
      EXPECTED=$((EXPECTED - 1))
    else
      not_ok "delete a patient on the $1" "$STATUS $BODY"
    fi
  fi
  if [ "$1" = hub ]; then _seed=$((200 + $2)); else _seed=$((100 + $2)); fi
  sanad demo --data "$_dir" --patients 30 --seed "$_seed"
  if [ "$RC" = 0 ]; then EXPECTED=$((EXPECTED + 30)); else not_ok "30 more demo patients on the $1" "$ERR"; fi
}

# ---- rounds of kill -9 -----------------------------------------------------------------------------------
# Round r kills, by (r - 1) % 4: the node's sync client; the hub's server during the node's sync; the
# hub's sync client (the hub syncs towards the node's --self-url); the node's server during the hub's
# sync. When, by (r - 1) % 3 (12 rounds make every pair): after the round's random delay (10 to 300 ms);
# or 0 to 30 ms after the serving side answered the session's k-th pull (k = 1 or 2), or its k-th push:
# a kill at a random time mostly lands in the first pulls, so the push phase is aimed at too. Both sides
# register more patients (`sanad demo`, straight into the database) while the session runs.

# sync_from WHO: start `sanad sync` on WHO's data dir in the background, in batches of at most 4 KiB.
sync_from() {
  if [ "$1" = hub ]; then _dir=$HDIR; else _dir=$NDIR; fi
  "$SANAD_BIN" sync --data "$_dir" --max-bytes 4096 </dev/null >"$TMP/sync.out" 2>&1 &
  SYNC_PID=$!
  echo "$SYNC_PID" >>"$TMP/.pids"
}

# sync_wait: wait for the background sync to end by itself; sets SYNC_RC ("hung" when it had to be killed).
sync_wait() {
  _i=0
  while kill -0 "$SYNC_PID" 2>/dev/null && [ $_i -lt $((T_CMD * 10)) ]; do sleep 0.1; _i=$((_i + 1)); done
  if kill -0 "$SYNC_PID" 2>/dev/null; then
    kill9 "$SYNC_PID"
    SYNC_RC=hung
  else
    wait "$SYNC_PID" 2>/dev/null
    SYNC_RC=$?
    forget_pid "$SYNC_PID"
  fi
}

changes() {
  q "$1" 'select count(*) from changes'
}

# served LOG WHAT: how many sync requests WHAT (pull or push) the server logging to LOG has answered.
served() {
  grep -c "http POST /api/v1/sync/$2 " "$1"
}

# demos_start R: both sides register 10 more patients each, beside the session.
demos_start() {
  "$SANAD_BIN" demo --data "$NDIR" --patients 10 --seed $((300 + $1)) </dev/null >"$TMP/demo.node" 2>&1 &
  DEMO_NODE=$!
  "$SANAD_BIN" demo --data "$HDIR" --patients 10 --seed $((400 + $1)) </dev/null >"$TMP/demo.hub" 2>&1 &
  DEMO_HUB=$!
  echo "$DEMO_NODE" >>"$TMP/.pids"
  echo "$DEMO_HUB" >>"$TMP/.pids"
}

# aim WHEN LOG DELAY K EXTRA: wait for the moment of the kill (the session runs as $SYNC_PID, its
# server logs to LOG): WHEN "time" sleeps DELAY ms; "pull" or "push" waits until the server has
# answered K more requests of that kind than before the round (P0, Q0), then EXTRA ms. Sets MOMENT (what
# happened) and LIVE (1 when the session was still running at the kill).
aim() {
  if [ "$1" = time ]; then
    sleep "$(printf '%d.%03d' $(($3 / 1000)) $(($3 % 1000)))"
    MOMENT="after $3 ms"
  else
    _base=$P0
    [ "$1" = push ] && _base=$Q0
    _i=0
    while [ "$(served "$2" "$1")" -lt $((_base + $4)) ] && kill -0 "$SYNC_PID" 2>/dev/null \
      && [ $_i -lt $((T_CMD * 200)) ]; do
      sleep 0.005
      _i=$((_i + 1))
    done
    sleep "0.0$(printf '%02d' "$5")"
    MOMENT="$5 ms after $1 #$4 was answered"
  fi
  LIVE=0
  kill -0 "$SYNC_PID" 2>/dev/null && LIVE=1
  # what the serving side had answered in this session when the kill came
  MOMENT="$MOMENT (pulls $(($(served "$2" pull) - P0)), pushes $(($(served "$2" push) - Q0)) answered)"
}

awk -v s="$SEED" -v n="$ROUNDS" 'BEGIN { srand(s)
  for (i = 0; i < n; i++) print 10 + int(rand() * 291), 1 + int(rand() * 2), int(rand() * 31) }' >"$TMP/schedule"
CUT_PULL=0      # sessions cut before they pushed anything
CUT_PUSH=0      # sessions cut in their push phase
r=1
while [ $r -le "$ROUNDS" ]; do
  work node $r
  work hub $r
  set -- $(sed -n "${r}p" "$TMP/schedule")
  DELAY=$1 K=$2 EXTRA=$3
  case $(((r - 1) % 3)) in 0) WHEN=time ;; 1) WHEN=pull ;; *) WHEN=push ;; esac
  before="$(changes "$NDIR")/$(changes "$HDIR")"
  case $(((r - 1) % 4)) in
    0) what="kill -9 the node's sync client" client=node log=$HLOG ;;
    1) what="kill -9 the hub's server during the node's sync" client=node log=$HLOG ;;
    2) what="kill -9 the hub's sync client" client=hub log=$NLOG ;;
    *) what="kill -9 the node's server during the hub's sync" client=hub log=$NLOG ;;
  esac
  P0=$(served "$log" pull) Q0=$(served "$log" push)
  sync_from $client
  demos_start $r
  aim "$WHEN" "$log" "$DELAY" "$K" "$EXTRA"
  case $(((r - 1) % 4)) in
    0|2)
      kill9 "$SYNC_PID"
      SYNC_RC=$KILL_RC
      ;;
    1)
      kill9 "$HPID"
      restart hub
      sync_wait
      ;;
    *)
      kill9 "$NPID"
      restart node
      sync_wait
      ;;
  esac
  if [ "$LIVE" = 1 ]; then
    case $MOMENT in *", pushes 0 answered)") CUT_PULL=$((CUT_PULL + 1)) ;; *) CUT_PUSH=$((CUT_PUSH + 1)) ;; esac
  else
    MOMENT="$MOMENT, but the session had ended"
  fi
  damage=
  for w in node hub; do
    if [ $w = node ]; then pid=$DEMO_NODE; else pid=$DEMO_HUB; fi
    wait "$pid"
    rc=$?
    forget_pid "$pid"
    if [ "$rc" = 0 ]; then
      EXPECTED=$((EXPECTED + 10))
    else
      damage="$damage demo on the $w beside the session failed (exit $rc):"
      damage="$damage $(grep -v migration "$TMP/demo.$w" | tail -3);"
    fi
  done
  after="$(changes "$NDIR")/$(changes "$HDIR")"
  # a server killed while its client was between requests may leave the client nothing to say but
  # "cannot reach"; the client itself must end either way, and never hang
  for d in "$NDIR" "$HDIR"; do
    h=$(holes "$d")
    [ -n "$h" ] && damage="$damage holes in $d: $h;"
    qc=$(q "$d" 'pragma quick_check')
    [ "$qc" = ok ] || damage="$damage quick_check of $d: $qc;"
  done
  if [ "$SYNC_RC" = hung ]; then
    damage="$damage the sync client hung: $(tail -3 "$TMP/sync.out");"
  fi
  if [ -z "$damage" ]; then
    ok "round $r: $what $MOMENT; sync exit $SYNC_RC; changes node/hub $before -> $after, no hole"
  else
    not_ok "round $r: $what $MOMENT; sync exit $SYNC_RC" "$damage"
  fi
  r=$((r + 1))
done
check "sessions were cut in their pull phase ($CUT_PULL rounds) and in their push phase ($CUT_PUSH rounds)" \
  test "$CUT_PULL" -ge 1 -a "$CUT_PUSH" -ge 1
[ "$MOVED" = 0 ] || echo "# $MOVED restarts had to move to another port"

# ---- resync, then compare ------------------------------------------------------------------------------
sanad sync --data "$NDIR"
expect_rc 0 "a full sync from the node after the crashes"
printf '%s\n' "$OUT" | sed 's/^/# /'
sanad sync --data "$NDIR"
expect_rc 0 "a second full sync from the node"
expect_output out '^hub: pulled [0-9]+ \(applied 0, .*\), pushed 0;' "the second sync applies and pushes nothing"
sanad sync --data "$HDIR"
expect_rc 0 "a full sync from the hub towards the node"
expect_output out '^clinic: pulled [0-9]+ \(applied 0, .*\), pushed 0;' "the hub finds nothing left to move either"

# the change logs: the same changes (by origin node id, not the local alias) on both, each once, no hole
LOG_SQL='select o.node_id, c.seq, c.tbl, c.row_id, c.hlc, c.fields, c.base from changes c
         join origins o on o.n = c.origin order by o.node_id, c.seq'
q "$NDIR" "$LOG_SQL" >"$TMP/log.node"
q "$HDIR" "$LOG_SQL" >"$TMP/log.hub"
N_NODE=$(changes "$NDIR")
N_HUB=$(changes "$HDIR")
check "both hold the same number of changes ($N_NODE and $N_HUB)" test "$N_NODE" = "$N_HUB"
for d in "$NDIR" "$HDIR"; do
  check "$(basename "$d"): as many changes as distinct (origin node, seq)" \
    test "$(q "$d" 'select count(*) from (select distinct o.node_id, c.seq from changes c
                    join origins o on o.n = c.origin)')" = "$(changes "$d")"
  check "$(basename "$d"): every origin's log is seqs 1..N, no hole, and the stored vector says so" \
    test -z "$(holes "$d")"
  check "$(basename "$d"): origins are not held twice under two aliases" \
    test "$(q "$d" 'select count(*) from origins')" = "$(q "$d" 'select count(distinct node_id) from origins')"
  check "$(basename "$d"): nothing quarantined" test "$(q "$d" 'select count(*) from quarantine')" = 0
done
if cmp -s "$TMP/log.node" "$TMP/log.hub"; then
  ok "the two change logs are identical"
else
  not_ok "the two change logs are identical" "$(diff "$TMP/log.node" "$TMP/log.hub" | head -20)"
fi

# the patients: the merged rows themselves (every column but the times of local storage, deleted rows
# included), the live ones counted, and the search index built from them
COLS=$(q "$HDIR" "select group_concat(name, ', ') from pragma_table_info('patients')
                     where name not in ('created_at', 'updated_at')")
ROWS_SQL="select $COLS from patients order by id"
q "$NDIR" "$ROWS_SQL" >"$TMP/rows.node"
q "$HDIR" "$ROWS_SQL" >"$TMP/rows.hub"
if cmp -s "$TMP/rows.node" "$TMP/rows.hub"; then
  ok "the patients tables are the same on both ($(wc -l <"$TMP/rows.hub") rows, deleted ones included)"
else
  not_ok "the patients tables are the same on both" "$(diff "$TMP/rows.node" "$TMP/rows.hub" | head -10)"
fi
for d in "$NDIR" "$HDIR"; do
  LIVE=$(q "$d" 'select count(*) from patients where deleted = 0')
  check "$(basename "$d") holds every live patient once: $LIVE = $EXPECTED expected" test "$LIVE" = "$EXPECTED"
done
TERMS_SQL='select term, patient_id from patient_terms order by 1, 2'
check "the search index is the same ($(q "$HDIR" 'select count(*) from patient_terms') terms)" \
  test "$(q "$NDIR" "$TERMS_SQL" | md5sum)" = "$(q "$HDIR" "$TERMS_SQL" | md5sum)"

# ... and as `sanad export patients` shows them to people, without the times of local storage
for w in node hub; do
  if [ $w = hub ]; then d=$HDIR; else d=$NDIR; fi
  sanad export patients --data "$d" --format jsonl
  [ "$RC" = 0 ] || not_ok "export patients from the $w" "$ERR"
  jq -c 'del(.created_at, .updated_at)' "$TMP/.out" | sort >"$TMP/patients.$w"
done
N_NODE=$(wc -l <"$TMP/patients.node")
N_HUB=$(wc -l <"$TMP/patients.hub")
ALIEN_SQL='select count(*) from patients where deleted = 0 and site_id not in (select id from sites)'
check "the export lists no patient twice" test "$(jq -r .id "$TMP/patients.node" | sort -u | wc -l)" = "$N_NODE"
ALIEN="node $(q "$NDIR" "$ALIEN_SQL"), hub $(q "$HDIR" "$ALIEN_SQL")"
if [ "$N_NODE" = "$EXPECTED" ] && cmp -s "$TMP/patients.node" "$TMP/patients.hub"; then
  ok "sanad export patients lists the same $EXPECTED patients on both nodes"
else
  not_ok "sanad export patients lists the same $EXPECTED patients on both nodes" \
    "exported: node $N_NODE, hub $N_HUB (each holds $EXPECTED live patients, compared equal above)" \
    "patients of sites missing from the holder's sites table: $ALIEN" \
    "$(diff "$TMP/patients.node" "$TMP/patients.hub" | head -4)"
fi

# every edit and delete made during the crashes is on both sides
lost=
while read -r id camp; do
  for d in "$NDIR" "$HDIR"; do
    got=$(q "$d" "select camp from patients where id = '$id' and deleted = 0")
    [ "$got" = "$camp" ] || lost="$lost $(basename "$d"): $id has camp '$got', not '$camp';"
  done
done <"$TMP/edits"
while read -r id; do
  for d in "$NDIR" "$HDIR"; do
    [ "$(q "$d" "select deleted from patients where id = '$id'")" = 1 ] \
      || lost="$lost $(basename "$d"): $id not deleted;"
  done
done <"$TMP/deletes"
if [ -z "$lost" ]; then
  ok "all $(wc -l <"$TMP/edits") edits and $(wc -l <"$TMP/deletes") deletes made during the crashes are on both nodes"
else
  not_ok "every edit and delete is on both nodes" "$lost"
fi

for d in "$NDIR" "$HDIR"; do
  check "$(basename "$d"): PRAGMA integrity_check is ok" test "$(q "$d" 'pragma integrity_check')" = ok
  sanad audit verify --data "$d"
  expect_rc 0 "$(basename "$d"): sanad audit verify"
done

stop_node "$NPID" "$NLOG"
stop_node "$HPID" "$HLOG"
done_testing
