#!/bin/sh
# t0820-bundle.sh — sync on a USB stick between real nodes (`sanad bundle export|import`): a clinic's
# offline work reaches the hub in a file and the hub's comes back the same way; the file is readable by
# its recipient only and signed by its sender; importing twice, or an old bundle, changes nothing; what
# each side holds travels with its bundles, so nothing is sent twice; a damaged, cut, forged, misaddressed
# or unknown sender's bundle is refused with a clear message and applies nothing.
. "$(dirname "$0")/lib.sh"

HUB=$TMP/hub
CLINIC=$TMP/clinic
OTHER=$TMP/other
init_node "$HUB"
init_node "$CLINIC"
init_node "$OTHER"
HUB_ID=$(sqlite3 "$HUB/sanad.db" "select value from meta where key = 'node_id'")
CLINIC_ID=$(sqlite3 "$CLINIC/sanad.db" "select value from meta where key = 'node_id'")

# rows DIR TABLE: how many rows a node's table holds.
rows() { sqlite3 "$1/sanad.db" "select count(*) from $2"; }
# ids DIR: a node's patients, encounters and entries, by id (what must be the same on both sides).
ids() {
  sqlite3 "$1/sanad.db" "select id from patients union all select id from encounters union all select id from entries order by 1"
}
# index_of DIR QUERY: the rows of a query on a node's search index, sorted, with a count first (so that
# two empty answers are not taken for equal ones).
index_of() {
  sqlite3 "$1/sanad.db" "select count(*) from ($2)"
  sqlite3 "$1/sanad.db" "$2 order by 1, 2"
}
# own_changes DIR NODE_ID: the changes a node holds that NODE_ID wrote.
own_changes() {
  sqlite3 "$1/sanad.db" "select count(*) from changes c join origins o on o.n = c.origin where o.node_id = '$2'"
}

# ---- enrolment, once, while a link exists --------------------------------------------------------------
start_node "$HUB"
HUB_PID=$NODE_PID
HUB_LOG=$NODE_LOG
sanad peer invite --data "$HUB" --name clinic
CODE=$(sed -n 's/^Enrolment code: *//p' "$TMP/.out")
sanad peer add --data "$CLINIC" --url "$BASE" --code "$CODE" --name hub
expect_rc 0 "the clinic enrols with the hub (the one time a link is needed)"
stop_node "$HUB_PID" "$HUB_LOG"

# ---- the clinic works offline; its bundle reaches the hub -------------------------------------------------
sanad demo --data "$CLINIC" --patients 30 --visits 2 --entries 2 --seed 7
[ "$RC" = 0 ] || bail "sanad demo on the clinic" "$ERR"
NAME=$(sqlite3 "$CLINIC/sanad.db" "select family_name from patients where family_name is not null limit 1")
[ -n "$NAME" ] || bail "the demo patients have no family name to look for"

sanad bundle export --data "$CLINIC" --peer hub --out "$TMP/c1.bundle"
expect_rc 0 "bundle export for the hub"
expect_output out "^bundle for 'hub': [0-9]+ changes in 1 batches, [0-9]+ bytes, written to " "export says what it wrote"
check "the bundle file is readable by its owner only (0600)" test "$(stat -c %a "$TMP/c1.bundle")" = 600
check "the bundle starts with its magic line" sh -c "head -c 14 '$TMP/c1.bundle' | grep -q '^SANADBUNDLE/1\$'"
check_not "no patient name appears in the bundle in clear" grep -aqF "$NAME" "$TMP/c1.bundle"
check_not "nor once decompressed as a plain zstd stream would be" \
  sh -c "zstd -dcq '$TMP/c1.bundle' 2>/dev/null | grep -aqF '$NAME'"
check "no temporary file is left beside it" test "$(ls "$TMP" | grep -c '^c1\.bundle')" = 1
check "exporting changed nothing on the clinic (a bundle may be lost on the way)" \
  test "$(sqlite3 "$CLINIC/sanad.db" "select count(*) from peer_cursors")" = 0
WANT=$(own_changes "$CLINIC" "$CLINIC_ID")

sanad bundle import --data "$HUB" "$TMP/c1.bundle"
expect_rc 0 "bundle import on the hub"
expect_output out "^bundle from 'clinic' \(made [0-9T:.Z-]+\): $WANT changes in 1 batches; applied $WANT, already held 0, conflicts 0, quarantined 0\$" \
  "import says what it applied (every change the clinic wrote)"
check "the hub holds the clinic's patients, visits and entries" test "$(ids "$HUB")" = "$(ids "$CLINIC")"
# the import folds the names (in several scripts) while its transliterators are still being compiled:
# the hub's search index must come out as the clinic's own
check "the hub folded every name as the clinic did" \
  test "$(index_of "$HUB" "select id, name_fold from patients")" = "$(index_of "$CLINIC" "select id, name_fold from patients")"
check "the hub's search terms are the clinic's" \
  test "$(index_of "$HUB" "select * from patient_terms")" = "$(index_of "$CLINIC" "select * from patient_terms")"
check "some of those names were not in Latin letters" \
  test "$(sqlite3 "$CLINIC/sanad.db" "select count(*) > 0 from patients where name_original glob '*[^ -~]*'")" = 1
check "the hub notes when it last heard from the clinic" \
  test "$(sqlite3 "$HUB/sanad.db" "select last_success_at > 0 from peers where id = '$CLINIC_ID'")" = 1
check "the import is in the hub's audit log" \
  test "$(sqlite3 "$HUB/sanad.db" "select count(*) from audit_log where action = 'sync.bundle_import'")" = 1
check "the export is in the clinic's audit log" \
  test "$(sqlite3 "$CLINIC/sanad.db" "select count(*) from audit_log where action = 'sync.bundle_export'")" = 1

HUB_CHANGES=$(rows "$HUB" changes)
sanad bundle import --data "$HUB" "$TMP/c1.bundle"
expect_rc 0 "the same bundle imported again"
expect_output out "applied 0, already held $WANT," "a second import applies nothing"
check "and leaves the hub's log as it was" test "$(rows "$HUB" changes)" = "$HUB_CHANGES"

# ---- bundles that must be refused, each applying nothing ---------------------------------------------------
SIZE=$(stat -c %s "$TMP/c1.bundle")
# refused NAME FILE CODE-ERE WHAT: importing FILE on the hub fails with a message matching CODE-ERE and
# leaves the hub's log as it was.
refused() {
  sanad bundle import --data "$HUB" "$2"
  expect_rc_nonzero "$4: refused"
  expect_output err "$3" "$4: the message says why"
  check "$4: nothing applied" test "$(rows "$HUB" changes)" = "$HUB_CHANGES"
}
for at in 20 100 $((SIZE / 2)) $((SIZE - 70)) $((SIZE - 1)); do
  python3 -c "import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[int(sys.argv[2])] ^= 1; open(sys.argv[3], 'wb').write(b)" \
    "$TMP/c1.bundle" "$at" "$TMP/flip.bundle"
  refused flip "$TMP/flip.bundle" "not a Sanad bundle|signature does not match" "one bit flipped at byte $at"
done
head -c $((SIZE - 200)) "$TMP/c1.bundle" >"$TMP/cut.bundle"
refused cut "$TMP/cut.bundle" "signature does not match|not a Sanad bundle" "a bundle cut short"
head -c 10 "$TMP/c1.bundle" >"$TMP/tiny.bundle"
refused tiny "$TMP/tiny.bundle" "not a Sanad bundle" "ten bytes of a bundle"
head -c 5000 /dev/urandom >"$TMP/noise.bundle"
refused noise "$TMP/noise.bundle" "not a Sanad bundle" "random bytes"
: >"$TMP/empty.bundle"
refused empty "$TMP/empty.bundle" "not a Sanad bundle" "an empty file"
refused dir "$TMP" "not a regular file" "a directory"
refused missing "$TMP/no-such.bundle" "cannot read" "a missing file"

# a bundle made for another node: the clinic's own, imported by the clinic, and by a stranger
sanad bundle import --data "$CLINIC" "$TMP/c1.bundle"
expect_rc_nonzero "a bundle imported by a node it was not made for"
expect_output err "made for node $HUB_ID, not for this one" "the message names the node it was for"
sanad bundle import --data "$OTHER" "$TMP/c1.bundle"
expect_rc_nonzero "a bundle imported by a stranger node"

# a header rewritten to claim another sender (the signature no longer matches anyone's key)
python3 - "$TMP/c1.bundle" "$TMP/forged.bundle" "$CLINIC_ID" "$HUB_ID" <<'EOF'
import sys
b = open(sys.argv[1], 'rb').read()
n = int.from_bytes(b[14:18], 'big')
head = b[18:18 + n].replace(sys.argv[3].encode(), sys.argv[4].encode())
open(sys.argv[2], 'wb').write(b[:14] + len(head).to_bytes(4, 'big') + head + b[18 + n:])
EOF
refused forged "$TMP/forged.bundle" "unknown_sender|not an enrolled peer|signature does not match" "a bundle claiming another sender"

# ---- the hub's work goes back; neither side is sent what it holds --------------------------------------------
sanad demo --data "$HUB" --patients 12 --visits 1 --entries 1 --seed 9
[ "$RC" = 0 ] || bail "sanad demo on the hub" "$ERR"
HUB_OWN=$(own_changes "$HUB" "$HUB_ID")
sanad bundle export --data "$HUB" --peer clinic --out "$TMP/h1.bundle"
expect_rc 0 "bundle export on the hub for the clinic"
expect_output out "^bundle for 'clinic': $HUB_OWN changes " \
  "the hub's bundle holds only the hub's own changes (the clinic's bundle told what the clinic holds)"
sanad bundle import --data "$CLINIC" "$TMP/h1.bundle"
expect_rc 0 "bundle import on the clinic"
expect_output out "applied $HUB_OWN, already held 0," "the clinic applies every change of the hub's bundle"
check "both nodes now hold the same patients, visits and entries" test "$(ids "$HUB")" = "$(ids "$CLINIC")"

sanad bundle export --data "$CLINIC" --peer hub --out "$TMP/c2.bundle"
expect_rc 0 "a second export on the clinic"
expect_output out "^bundle for 'hub': 0 changes in 0 batches" \
  "it holds nothing: the hub's bundle told the clinic what the hub holds"
sanad bundle import --data "$HUB" "$TMP/c2.bundle"
expect_rc 0 "an empty bundle imports (it still tells what its sender holds)"

sanad bundle export --data "$CLINIC" --peer hub --all --out "$TMP/c3.bundle"
expect_rc 0 "export --all"
expect_output out "^bundle for 'hub': [1-9][0-9]* changes" "--all sends every change again"
sanad bundle import --data "$HUB" "$TMP/c3.bundle"
expect_output out "applied 0, already held [1-9]" "which the hub already holds"

# an old bundle, imported after newer ones, changes nothing
sanad bundle import --data "$HUB" "$TMP/c1.bundle"
expect_output out "applied 0," "an old bundle imported late applies nothing"
check "both nodes still hold the same records" test "$(ids "$HUB")" = "$(ids "$CLINIC")"

# ---- enrolment without a network, then bundles -----------------------------------------------------------------
OTHER_ID=$(sqlite3 "$OTHER/sanad.db" "select value from meta where key = 'node_id'")
sanad peer invite --data "$HUB" --name field
CODE2=$(sed -n 's/^Enrolment code: *//p' "$TMP/.out")
HUB_FP=$(sed -n 's/^Hub key: *//p' "$TMP/.out")
sanad peer request --data "$OTHER" --code "$CODE2" --out "$TMP/request.json"
expect_rc 0 "peer request writes an enrolment request to a file"
OTHER_FP=$(sed -n "s/^This node's key: *//p" "$TMP/.out")
check "the request file is readable by its owner only" test "$(stat -c %a "$TMP/request.json")" = 600
sanad peer accept --data "$HUB" --in "$TMP/request.json" --out "$TMP/answer.json"
expect_rc 0 "peer accept on the hub enrols the node from the file"
expect_output out "^Its key: +$OTHER_FP\$" "accept prints the node's key, the one request printed"
check "the answer holds no code" sh -c "! grep -q '\"code\"' '$TMP/answer.json'"
sanad peer accept --data "$HUB" --in "$TMP/request.json" --out "$TMP/answer2.json"
expect_rc_nonzero "the same request accepted twice (the code is used up)"
check "and no second answer is written" test ! -e "$TMP/answer2.json"
# an answer altered on the way: a key that is not the hub's is refused with --hub-key
python3 -c "import json,sys; a = json.load(open(sys.argv[1])); a['public_key'] = 'A' * 43; json.dump(a, open(sys.argv[2], 'w'))" \
  "$TMP/answer.json" "$TMP/forged-answer.json"
sanad peer add --data "$OTHER" --answer "$TMP/forged-answer.json" --hub-key "$HUB_FP"
expect_rc_nonzero "an answer with another key than the hub's fingerprint is refused"
check "and pins nothing" test "$(sqlite3 "$OTHER/sanad.db" "select count(*) from peers")" = 0
sanad peer add --data "$OTHER" --answer "$TMP/answer.json" --hub-key "$HUB_FP" --name hub
expect_rc 0 "peer add --answer pins the hub (with its fingerprint checked)"
check "the hub has no url there (bundles only)" \
  test "$(sqlite3 "$OTHER/sanad.db" "select url from peers where name = 'hub'")" = ""
sanad peer add --data "$OTHER" --answer "$TMP/request.json"
expect_rc_nonzero "a request file is not an answer"
sanad peer request --data "$OTHER" --code not-a-code --out "$TMP/bad.json"
expect_rc_nonzero "a request with a malformed code"
sanad peer accept --data "$HUB" --in "$TMP/noise.bundle" --out "$TMP/x.json"
expect_rc_nonzero "accept of a file that is not a request"

sanad demo --data "$OTHER" --patients 5 --visits 1 --entries 1 --seed 11
sanad bundle export --data "$OTHER" --peer hub --out "$TMP/o1.bundle"
expect_rc 0 "a node enrolled without a network exports a bundle"
OTHER_OWN=$(own_changes "$OTHER" "$OTHER_ID")
sanad bundle import --data "$HUB" "$TMP/o1.bundle"
expect_output out "applied $OTHER_OWN, already held 0," "and the hub imports it"
sanad bundle export --data "$HUB" --peer field --out "$TMP/h2.bundle"
sanad bundle import --data "$OTHER" "$TMP/h2.bundle"
expect_rc 0 "the hub's bundle imports on that node"
check "which then holds what the hub holds" test "$(ids "$OTHER")" = "$(ids "$HUB")"

# ---- an import killed part-way loses and duplicates nothing -------------------------------------------------------
# a bundle of several batches (small batches on purpose: --max-bytes does not exist for bundles, so many
# patients), imported into a fresh node enrolled by hand, killed with SIGKILL a moment after it starts,
# then imported again to the end
KILLED=$TMP/killed
init_node "$KILLED"
KILLED_ID=$(sqlite3 "$KILLED/sanad.db" "select value from meta where key = 'node_id'")
sanad demo --data "$HUB" --patients 3000 --visits 2 --entries 2 --seed 21
[ "$RC" = 0 ] || bail "sanad demo on the hub (for the kill test)" "$ERR"
sanad peer invite --data "$HUB" --name killed
CODE3=$(sed -n 's/^Enrolment code: *//p' "$TMP/.out")
sanad peer request --data "$KILLED" --code "$CODE3" --out "$TMP/k-request.json"
sanad peer accept --data "$HUB" --in "$TMP/k-request.json" --out "$TMP/k-answer.json"
sanad peer add --data "$KILLED" --answer "$TMP/k-answer.json" --name hub
[ "$RC" = 0 ] || bail "enrolling the node for the kill test" "$ERR"
sanad bundle export --data "$HUB" --peer killed --out "$TMP/k.bundle"
expect_output out "in ([2-9]|[1-9][0-9]+) batches" "the kill test's bundle has several batches"
WANT_K=$(sed -n 's/^bundle for .killed.: \([0-9]*\) changes.*/\1/p' "$TMP/.out")
cp -a "$KILLED" "$TMP/killed-fresh"
killed_at=
for delay in 0.2 0.1 0.05 0.4; do
  rm -rf "$KILLED"
  cp -a "$TMP/killed-fresh" "$KILLED"
  "$SANAD_BIN" bundle import --data "$KILLED" "$TMP/k.bundle" >/dev/null 2>&1 &
  pid=$!
  echo "$pid" >>"$TMP/.pids"
  sleep "$delay"
  killed_at=
  kill -KILL "$pid" 2>/dev/null && killed_at=$delay
  wait_exit "$pid"
  HELD=$(sqlite3 "$KILLED/sanad.db" "select count(*) from changes c join origins o on o.n = c.origin where o.node_id != '$KILLED_ID'")
  [ -n "$killed_at" ] && [ "$HELD" -gt 0 ] && [ "$HELD" -lt "$WANT_K" ] && break
done
if [ -n "$killed_at" ] && [ "$HELD" -gt 0 ] && [ "$HELD" -lt "$WANT_K" ]; then
  ok "an import was killed part-way (after ${killed_at}s, $HELD of $WANT_K changes held)"
else
  skip "an import killed part-way" "every import finished before the kill on this machine"
fi
check "the database is intact after the kill" test "$(sqlite3 "$KILLED/sanad.db" "pragma integrity_check")" = ok
sanad bundle import --data "$KILLED" "$TMP/k.bundle"
expect_rc 0 "the same bundle imported again after the kill"
check "the node then holds every change of the bundle once" \
  test "$(sqlite3 "$KILLED/sanad.db" "select count(*) from changes c join origins o on o.n = c.origin where o.node_id != '$KILLED_ID'")" = "$WANT_K"
check "and the hub's records, each once" test "$(ids "$KILLED")" = "$(ids "$HUB")"
check "no record twice" test "$(ids "$KILLED" | sort | uniq -d | wc -l)" = 0

# ---- an unknown sender ---------------------------------------------------------------------------------------
sanad peer remove --data "$HUB" --name clinic
expect_rc 0 "the hub forgets the clinic"
HUB_CHANGES=$(rows "$HUB" changes)
refused unknown "$TMP/c1.bundle" "not an enrolled peer" "a bundle from a node the hub does not know"

# ---- the command line -----------------------------------------------------------------------------------------
sanad bundle export --data "$CLINIC" --peer nobody --out "$TMP/x.bundle"
expect_rc_nonzero "export for a peer that does not exist"
expect_output err "no peer called 'nobody'" "says so"
check "and writes no file" test ! -e "$TMP/x.bundle"
sanad bundle export --data "$CLINIC" --peer hub
expect_rc 2 "export without --out"
sanad bundle import --data "$HUB"
expect_rc 2 "import without a file"
sanad bundle import --data "$HUB" a b
expect_rc 2 "import with two files"
sanad bundle send --data "$HUB"
expect_rc 2 "an unknown subcommand"
sanad bundle export --data "$CLINIC" --peer hub --out "$TMP/no-such-dir/x.bundle"
expect_rc_nonzero "export into a directory that does not exist"

done_testing
