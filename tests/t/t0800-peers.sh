#!/bin/sh
# t0800-peers.sh — the network side of replication between two real nodes: node keys made by init,
# enrolment with one-time codes (wrong, reused, expired and malformed codes refused alike; throttled),
# signed sync requests checked by the hub (unknown node, missing/used/expired nonce, bad signature,
# altered body, replay: all 401 with nothing applied), signed answers checked by the node (wrong pinned
# key, a different node at the url), `sanad sync` moving patients both ways and failing cleanly,
# `serve --sync-every` in the background with backoff and a clean stop, the admin sync routes, TLS with
# --insecure, and `peer remove`. Signing and verifying in the test is done independently of Sanad with
# Node.js's own Ed25519 (crypto.sign), so both ends are checked against a second implementation.
. "$(dirname "$0")/lib.sh"

HAVE_NODE=0
command -v node >/dev/null 2>&1 && node -e 'require("crypto").generateKeyPairSync("ed25519")' 2>/dev/null && HAVE_NODE=1

# sig.js sign KEYFILE MSGFILE | verify PUBKEY SIG MSGFILE | pub KEYFILE — Ed25519 with a node key file
# (a base64url seed) through Node.js's crypto, wrapping raw keys in their fixed DER prefixes.
cat >"$TMP/sig.js" <<'EOF'
const crypto = require('crypto'), fs = require('fs');
const [cmd, a, b, c] = process.argv.slice(2);
const priv = f => crypto.createPrivateKey({ format: 'der', type: 'pkcs8', key: Buffer.concat([
  Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(fs.readFileSync(f, 'utf8').trim(), 'base64url')]) });
if (cmd === 'sign') {
  process.stdout.write(crypto.sign(null, fs.readFileSync(b), priv(a)).toString('base64url'));
} else if (cmd === 'pub') {
  process.stdout.write(crypto.createPublicKey(priv(a)).export({ format: 'jwk' }).x);
} else if (cmd === 'verify') {
  const pub = crypto.createPublicKey({ format: 'der', type: 'spki', key: Buffer.concat([
    Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(a, 'base64url')]) });
  process.exit(crypto.verify(null, fs.readFileSync(c), pub, Buffer.from(b, 'base64url')) ? 0 : 1);
} else {
  process.exit(2);
}
EOF

# meta DIR KEY: a value from a node's meta table.
meta() {
  sqlite3 "$1/sanad.db" "select value from meta where key = '$2'"
}

# ---- node keys ---------------------------------------------------------------------------------------
HUB_DIR=$TMP/hub
NODE_DIR_=$TMP/node
init_node "$HUB_DIR"
# a long Arabic site name: the node's name sent at enrolment is cut to 64 bytes, never inside a letter
write_file "$TMP/node.pw" "$ADMIN_PW"
sanad init --data "$NODE_DIR_" --admin "$ADMIN_USER" --admin-password-file "$TMP/node.pw" \
  --site "عيادة مخيم الزعتري الصحية المتنقلة رقم واحد"
[ "$RC" = 0 ] || bail "sanad init --data $NODE_DIR_ with an Arabic site name" "$ERR"
check "init made DATA/node.key" test -f "$HUB_DIR/node.key"
check "node.key is mode 0600" test "$(stat -c %a "$HUB_DIR/node.key")" = 600
check "node.key holds one base64url seed (43 characters)" \
  sh -c "head -1 '$HUB_DIR/node.key' | grep -Eqx '[A-Za-z0-9_-]{43}'"
check "two nodes have different keys" test "$(cat "$HUB_DIR/node.key")" != "$(cat "$NODE_DIR_/node.key")"
HUB_ID=$(meta "$HUB_DIR" node_id)
NODE_ID=$(meta "$NODE_DIR_" node_id)

# a node made before keys existed gets one on first use
init_node "$TMP/old"
rm -f "$TMP/old/node.key"
sanad peer invite --data "$TMP/old" --name someone
expect_rc 0 "peer invite on a node without a key"
check "the key was made on first use, mode 0600" test "$(stat -c %a "$TMP/old/node.key" 2>/dev/null)" = 600
chmod 644 "$TMP/old/node.key"
sanad peer invite --data "$TMP/old" --name someone-else
expect_rc 1 "a node key others can read is refused"
expect_output err 'chmod 600' "the message says how to fix the key's mode"

# ---- two nodes ---------------------------------------------------------------------------------------
start_node "$HUB_DIR"
HUB=$BASE HUB_PID=$NODE_PID HUB_LOG=$NODE_LOG
start_node "$NODE_DIR_"
NODE=$BASE NODE_PID_=$NODE_PID NODE_LOG_=$NODE_LOG
HUB_PK=$(meta "$HUB_DIR" node_public_key)
NODE_PK=$(meta "$NODE_DIR_" node_public_key)
check "serve recorded the public key in meta node_public_key ($HUB_PK)" \
  sh -c "printf '%s' '$HUB_PK' | grep -Eqx '[A-Za-z0-9_-]{43}'"
if [ "$HAVE_NODE" = 1 ]; then
  check "node_public_key is the public key of node.key (by Node.js)" \
    test "$(node "$TMP/sig.js" pub "$HUB_DIR/node.key")" = "$HUB_PK"
else
  skip "node_public_key matches node.key" "Node.js is not installed"
fi
check "the secret key is not in the database" sh -c "! sqlite3 '$HUB_DIR/sanad.db' .dump | grep -qF '$(head -1 "$HUB_DIR/node.key")'"
check "the secret key is not in the logs" sh -c "! grep -qF '$(head -1 "$HUB_DIR/node.key")' '$HUB_LOG' '$NODE_LOG_'"

# ---- invites -----------------------------------------------------------------------------------------
sanad peer invite --data "$HUB_DIR" --name clinic --hours 2
expect_rc 0 "peer invite"
CODE=$(printf '%s\n' "$OUT" | sed -n 's/^Enrolment code: *//p')
HUB_FP=$(printf '%s\n' "$OUT" | sed -n 's/^Hub key: *//p')
check "the code is 5 groups of 5 base32 characters ($CODE)" \
  sh -c "printf '%s' '$CODE' | grep -Eqx '[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}'"
expect_output out "^Hub node id: *$HUB_ID\$" "invite prints the hub's node id"
check "invite prints the hub's key fingerprint ($HUB_FP)" \
  sh -c "printf '%s' '$HUB_FP' | grep -Eqx '[0-9a-f]{4}(-[0-9a-f]{4}){7}'"
check "only a hash of the code is stored" \
  sh -c "test \"\$(sqlite3 '$HUB_DIR/sanad.db' 'select count(*) from peer_invites')\" = 1 && ! sqlite3 '$HUB_DIR/sanad.db' .dump | grep -qiF '$(printf '%s' "$CODE" | tr -d -)'"
sanad peer invite --data "$HUB_DIR" --name clinic
expect_rc 1 "a second pending invite for the same name"
sanad peer invite --data "$HUB_DIR" --name other --site not-a-site
expect_rc 1 "an invite for an unknown site"
sanad peer invite --data "$HUB_DIR" --name other --hours 0
expect_rc 2 "--hours 0"
sanad peer invite --data "$HUB_DIR"
expect_rc 2 "invite without --name"

# ---- enrolment refused -------------------------------------------------------------------------------
BASE=$HUB
FAKE_PK=$(sqlite3 "$NODE_DIR_/sanad.db" "select value from meta where key = 'node_public_key'")
enrol_body() {   # CODE NODE-ID
  jq -cn --arg c "$1" --arg n "$2" --arg k "$FAKE_PK" '{code:$c, node_id:$n, name:"x", public_key:$k}'
}
api POST /api/v1/peers/enroll "$(enrol_body 00000-00000-00000-00000-00000 "$NODE_ID")"
expect_error 401 invalid_code "enrol with an unknown code"
MSG_UNKNOWN=$(jqb .error.message)
api POST /api/v1/peers/enroll "$(enrol_body not-a-code "$NODE_ID")"
expect_error 401 invalid_code "enrol with a malformed code"
check "a malformed code gets the same message as an unknown one" test "$(jqb .error.message)" = "$MSG_UNKNOWN"
api POST /api/v1/peers/enroll "$(enrol_body "$CODE" not-a-uuid)"
expect_error 400 invalid_node_id "enrol with a bad node id (the code is not spent)"
api POST /api/v1/peers/enroll "$(jq -cn --arg c "$CODE" --arg n "$NODE_ID" '{code:$c, node_id:$n, name:"x", public_key:"short"}')"
expect_error 400 invalid_public_key "enrol with a bad public key"
api POST /api/v1/peers/enroll "$(enrol_body "$CODE" "$HUB_ID")"
expect_error 400 invalid_node_id "enrol the hub with itself"
sanad peer add --data "$NODE_DIR_" --url "$HUB" --code 11111-11111-11111-11111-11111
expect_rc 1 "peer add with a wrong code"
expect_output err 'wrong, used or expired' "peer add says the code is wrong"
check "nothing was enrolled on either side" \
  test "$(sqlite3 "$HUB_DIR/sanad.db" 'select count(*) from peers')$(sqlite3 "$NODE_DIR_/sanad.db" 'select count(*) from peers')" = 00

# a wrong pinned fingerprint: the node refuses the hub (the code is spent; the hub's row is removed)
sanad peer invite --data "$HUB_DIR" --name decoy
DECOY=$(printf '%s\n' "$OUT" | sed -n 's/^Enrolment code: *//p')
sanad peer add --data "$NODE_DIR_" --url "$HUB" --code "$DECOY" --hub-key 0000-0000-0000-0000-0000-0000-0000-0000
expect_rc 1 "peer add with the wrong --hub-key"
expect_output err 'fingerprint' "the message names the fingerprint"
check "the node kept no peer" test "$(sqlite3 "$NODE_DIR_/sanad.db" 'select count(*) from peers')" = 0
sanad peer remove --data "$HUB_DIR" --name decoy
expect_rc 0 "peer remove on the hub"
sanad peer remove --data "$HUB_DIR" --name decoy
expect_rc 1 "removing it twice"

# ---- enrolment -----------------------------------------------------------------------------------------
sanad peer add --data "$NODE_DIR_" --url "$HUB/" --code "$(printf '%s' "$CODE" | tr 'A-Z' 'a-z')" --hub-key "$HUB_FP" \
  --self-url "$NODE" --name hub
expect_rc 0 "peer add with the right code (typed in lower case) and fingerprint"
expect_output out "^Hub node id: *$HUB_ID\$" "peer add prints the hub's node id"
check "the node pinned the hub's key, url and id" \
  test "$(sqlite3 "$NODE_DIR_/sanad.db" "select id || ' ' || public_key || ' ' || url from peers where name = 'hub'")" = "$HUB_ID $HUB_PK $HUB"
check "the hub keeps the node under the invite's name with its key and url" \
  test "$(sqlite3 "$HUB_DIR/sanad.db" "select id || ' ' || public_key || ' ' || url from peers where name = 'clinic'")" = "$NODE_ID $NODE_PK $NODE"
check "the invite is used up" test "$(sqlite3 "$HUB_DIR/sanad.db" 'select count(*) from peer_invites')" = 0
api POST /api/v1/peers/enroll "$(enrol_body "$CODE" 01234567-89ab-7def-8123-456789abcdef)"
expect_error 401 invalid_code "a used code, from another node"
check "the used code enrolled nobody else" test "$(sqlite3 "$HUB_DIR/sanad.db" 'select count(*) from peers')" = 1
sanad peer invite --data "$HUB_DIR" --name late
LATE=$(printf '%s\n' "$OUT" | sed -n 's/^Enrolment code: *//p')
sqlite3 "$HUB_DIR/sanad.db" "update peer_invites set expires_at = 1"
api POST /api/v1/peers/enroll "$(enrol_body "$LATE" 01234567-89ab-7def-8123-456789abcdef)"
expect_error 401 invalid_code "an expired code"
check "an expired code is swept" test "$(sqlite3 "$HUB_DIR/sanad.db" 'select count(*) from peer_invites')" = 0
sanad peer list --data "$NODE_DIR_"
expect_rc 0 "peer list on the node"
expect_output out "key: *$HUB_FP" "peer list shows the hub's fingerprint"
sanad peer list --data "$HUB_DIR"
expect_output out '^clinic$' "peer list on the hub shows the node"
check "enrolments are audit-logged (clinic and decoy ok, the wrong codes failed)" \
  test "$(sqlite3 "$HUB_DIR/sanad.db" "select count(*) from audit_log where action = 'peer.enrol' and outcome = 'ok'") $(sqlite3 "$HUB_DIR/sanad.db" "select count(*) >= 3 from audit_log where action = 'peer.enrol' and outcome = 'failed'")" = "2 1"

# ---- signed requests ---------------------------------------------------------------------------------
api POST /api/v1/sync/nonce
expect_status 200 "POST /api/v1/sync/nonce"
expect_json .node_id "$HUB_ID" "the nonce comes with the hub's node id"
check "a nonce is 43 base64url characters" sh -c "printf '%s' '$(jqb .nonce)' | grep -Eqx '[A-Za-z0-9_-]{43}'"

changes_on_hub() {
  sqlite3 "$HUB_DIR/sanad.db" 'select count(*) from changes'
}
PULL_BODY='{"vector":{},"max_bytes":65536}'
printf '%s' "$PULL_BODY" >"$TMP/pull.json"
api POST /api/v1/sync/pull "$PULL_BODY"
expect_error 401 unknown_peer "pull without signature headers"
api POST /api/v1/sync/pull "$PULL_BODY" -H "X-Sanad-Node: 01234567-89ab-7def-8123-456789abcdef"
expect_error 401 unknown_peer "pull as a node that is not enrolled"
api POST /api/v1/sync/pull "$PULL_BODY" -H "X-Sanad-Node: $NODE_ID"
expect_error 401 invalid_nonce "pull without a nonce"
api POST /api/v1/sync/pull "$PULL_BODY" -H "X-Sanad-Node: $NODE_ID" -H "X-Sanad-Nonce: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
  -H "X-Sanad-Timestamp: 1" -H "X-Sanad-Signature: x"
expect_error 401 invalid_nonce "pull with a nonce the hub never issued"

# new_nonce: a fresh nonce from the hub into NONCE.
new_nonce() {
  _b=$BASE
  BASE=$HUB
  api POST /api/v1/sync/nonce
  NONCE=$(jqb .nonce)
  BASE=$_b
}
new_nonce
api POST /api/v1/sync/pull "$PULL_BODY" -H "X-Sanad-Node: $NODE_ID" -H "X-Sanad-Nonce: $NONCE" -H "X-Sanad-Timestamp: 1" \
  -H "X-Sanad-Signature: $(printf 'A%.0s' $(seq 86))"
expect_error 401 bad_signature "pull with a made-up signature"
api POST /api/v1/sync/pull "$PULL_BODY" -H "X-Sanad-Node: $NODE_ID" -H "X-Sanad-Nonce: $NONCE" -H "X-Sanad-Timestamp: 1" \
  -H "X-Sanad-Signature: $(printf 'A%.0s' $(seq 86))"
expect_error 401 invalid_nonce "the nonce of a refused request is used up too"

# sign PATH BODYFILE KEYFILE: sign a POST as the node, with a fresh nonce; sets NONCE, TS, SIG.
sign() {
  new_nonce
  TS=$(date +%s%3N)
  printf 'sanad-sync-v1\nPOST\n%s\n%s\n%s\n%s\n%s' "$1" "$(sha256sum <"$2" | cut -d' ' -f1)" "$TS" "$NONCE" "$NODE_ID" \
    >"$TMP/msg"
  SIG=$(node "$TMP/sig.js" sign "$3" "$TMP/msg")
}
# signed_post PATH BODYFILE CONTENT-TYPE: POST the body with the headers of the last sign.
signed_post() {
  api POST "$1" '' -H "Content-Type: $3" --data-binary "@$2" -H "X-Sanad-Node: $NODE_ID" -H "X-Sanad-Nonce: $NONCE" \
    -H "X-Sanad-Timestamp: $TS" -H "X-Sanad-Signature: $SIG"
}

if [ "$HAVE_NODE" = 1 ]; then
  sign /api/v1/sync/pull "$TMP/pull.json" "$NODE_DIR_/node.key"
  signed_post /api/v1/sync/pull "$TMP/pull.json" application/json
  expect_status 200 "a pull signed with the node's key (by Node.js) is accepted"
  expect_header Content-Type '^application/zstd' "the batch is application/zstd"
  printf 'sanad-sync-response-v1\n%s\n%s' "$NONCE" "$(sha256sum <"$TMP/.body" | cut -d' ' -f1)" >"$TMP/rmsg"
  check "the answer's signature verifies with the hub's key (by Node.js)" \
    node "$TMP/sig.js" verify "$HUB_PK" "$(header X-Sanad-Signature)" "$TMP/rmsg"
  check "the batch is a zstd frame" sh -c "head -c 4 '$TMP/.body' | od -An -tx1 | tr -d ' ' | grep -qx '28b52ffd'"
  signed_post /api/v1/sync/pull "$TMP/pull.json" application/json
  expect_error 401 invalid_nonce "the same signed request replayed"
  sign /api/v1/sync/pull "$TMP/pull.json" "$NODE_DIR_/node.key"
  printf '%s' '{"vector":{},"max_bytes":1024}' >"$TMP/pull2.json"
  signed_post /api/v1/sync/pull "$TMP/pull2.json" application/json
  expect_error 401 bad_signature "a signed request whose body was altered"
  sign /api/v1/sync/pull "$TMP/pull.json" "$HUB_DIR/node.key"
  signed_post /api/v1/sync/pull "$TMP/pull.json" application/json
  expect_error 401 bad_signature "a request signed with another key"
  sign /api/v1/sync/pull "$TMP/pull.json" "$NODE_DIR_/node.key"
  sqlite3 "$HUB_DIR/sanad.db" "update sync_nonces set expires_at = 1"
  signed_post /api/v1/sync/pull "$TMP/pull.json" application/json
  expect_error 401 invalid_nonce "an expired nonce"
  sign /api/v1/sync/pull "$TMP/pull.json" "$NODE_DIR_/node.key"
  api POST /api/v1/sync/push '' -H "Content-Type: application/json" --data-binary "@$TMP/pull.json" -H "X-Sanad-Node: $NODE_ID" \
    -H "X-Sanad-Nonce: $NONCE" -H "X-Sanad-Timestamp: $TS" -H "X-Sanad-Signature: $SIG"
  expect_error 401 bad_signature "a signature for the pull path does not authorise a push"

  # a real batch from the node (pulled from it as the hub would), pushed with a bad signature
  BASE=$NODE
  TOKEN=$(login admin "$ADMIN_PW")
  api POST /api/v1/patients '{"given_name":"Amira","family_name":"Haddad","sex":"female"}'
  expect_status 201 "register a patient on the node"
  P_BATCH=$(jqb .id)
  TOKEN=
  BASE=$HUB
  before=$(changes_on_hub)
  printf 'not a batch' >"$TMP/junk.zst"
  sign /api/v1/sync/push "$TMP/junk.zst" "$HUB_DIR/node.key"
  signed_post /api/v1/sync/push "$TMP/junk.zst" application/zstd
  expect_error 401 bad_signature "a push signed with another key"
  sign /api/v1/sync/push "$TMP/junk.zst" "$NODE_DIR_/node.key"
  signed_post /api/v1/sync/push "$TMP/junk.zst" application/json
  expect_error 415 unsupported_media_type "a push that is not application/zstd"
  check "nothing was applied by refused pushes" test "$(changes_on_hub)" = "$before"
else
  skip "signed requests checked against Node.js's Ed25519" "Node.js is not installed"
fi

# ---- sanad sync ------------------------------------------------------------------------------------------
# new_patient BASE GIVEN: register a patient as admin on the node at BASE; prints its id.
new_patient() {
  _b=$BASE
  BASE=$1
  TOKEN=$(login admin "$ADMIN_PW")
  api POST /api/v1/patients "{\"given_name\":\"$2\",\"family_name\":\"Sync\",\"sex\":\"male\"}"
  TOKEN=
  BASE=$_b
  [ "$STATUS" = 201 ] || not_ok_subshell "register $2" "got $STATUS: $BODY"
  printf '%s' "$BODY" | sed -n 's/^{"id":"\([0-9a-f-]*\)".*/\1/p'
}
has_patient() {   # DIR ID
  test "$(sqlite3 "$1/sanad.db" "select count(*) from patients where id = '$2'")" = 1
}
P_NODE=$(new_patient "$NODE" Karim)
P_HUB=$(new_patient "$HUB" Yusuf)
check "before sync the hub lacks the node's patient" sh -c "! test \"\$(sqlite3 '$HUB_DIR/sanad.db' \"select count(*) from patients where id = '$P_NODE'\")\" = 1"
sanad sync --data "$NODE_DIR_"
expect_rc 0 "sanad sync"
expect_output out '^hub: pulled [1-9][0-9]* \(applied [1-9]' "sync prints what it pulled and applied"
expect_output out 'pushed [1-9]' "sync prints what it pushed"
expect_output out 'batches in [1-9][0-9]*, out [1-9]' "sync prints the batches"
check "the node's patient is on the hub" has_patient "$HUB_DIR" "$P_NODE"
check "the hub's patient is on the node" has_patient "$NODE_DIR_" "$P_HUB"
[ -n "${P_BATCH:-}" ] && check "the earlier patient went too" has_patient "$HUB_DIR" "$P_BATCH"
check "the node recorded the success" \
  test "$(sqlite3 "$NODE_DIR_/sanad.db" "select last_success_at = last_attempt_at and last_error is null from peers")" = 1
sanad sync --data "$NODE_DIR_" --peer hub
expect_rc 0 "a second sync"
expect_output out '^hub: pulled [0-9]* \(applied 0, .* pushed 0;' "a second sync applies and pushes nothing"
# one round trip a request: each signed answer brings the nonce for the next request, and the session's
# requests share one connection
sanad demo --data "$HUB_DIR" --patients 4 --visits 1 --entries 1 --seed 11
sanad demo --data "$NODE_DIR_" --patients 4 --visits 1 --entries 1 --seed 12
hub_lines=$(wc -l <"$HUB_LOG")
sanad sync --data "$NODE_DIR_" --max-bytes 1024
expect_rc 0 "a sync in small batches"
tail -n +$((hub_lines + 1)) "$HUB_LOG" >"$TMP/session.log"
n_nonce=$(grep -c 'POST /api/v1/sync/nonce 200' "$TMP/session.log")
n_signed=$(grep -c 'POST /api/v1/sync/\(pull\|push\) 200' "$TMP/session.log")
check "the session made several signed requests ($n_signed)" test "$n_signed" -ge 6
check "it asked for one nonce only ($n_nonce), the answers brought the others" test "$n_nonce" = 1
# a nonce an answer brought may be gone when it is used: the request is refused, then made again with a
# nonce asked for. Here the hub drops every second nonce it issues, so every one an answer brings.
sqlite3 "$HUB_DIR/sanad.db" "CREATE TABLE test_nonces_made (n INTEGER); INSERT INTO test_nonces_made VALUES (0);
  CREATE TRIGGER test_drop_every_second_nonce AFTER INSERT ON sync_nonces BEGIN
    UPDATE test_nonces_made SET n = n + 1;
    DELETE FROM sync_nonces WHERE nonce = NEW.nonce AND (SELECT n FROM test_nonces_made) % 2 = 0;
  END;"
sanad demo --data "$HUB_DIR" --patients 4 --visits 1 --entries 1 --seed 13
sanad demo --data "$NODE_DIR_" --patients 4 --visits 1 --entries 1 --seed 14
P_LAST_HUB=$(new_patient "$HUB" Gone)
P_LAST_NODE=$(new_patient "$NODE" Lost)
hub_lines=$(wc -l <"$HUB_LOG")
sanad sync --data "$NODE_DIR_" --max-bytes 1024
expect_rc 0 "a sync whose brought nonces are all gone still succeeds"
tail -n +$((hub_lines + 1)) "$HUB_LOG" >"$TMP/session.log"
check "its requests were refused for their nonce, then made again" \
  test "$(grep -c 'POST /api/v1/sync/\(pull\|push\) 401' "$TMP/session.log")" -ge 2
check "the hub's last patient came" has_patient "$NODE_DIR_" "$P_LAST_HUB"
check "the node's last patient went" has_patient "$HUB_DIR" "$P_LAST_NODE"
sqlite3 "$HUB_DIR/sanad.db" "DROP TRIGGER test_drop_every_second_nonce; DROP TABLE test_nonces_made;"
sanad sync --data "$NODE_DIR_" --peer nobody
expect_rc 1 "sync with an unknown peer"
expect_output err "no peer called 'nobody'" "the message names the peer"
# the hub was given the node's url (--self-url), so it can sync towards the node too
P_NODE2=$(new_patient "$NODE" Layla)
sanad sync --data "$HUB_DIR"
expect_rc 0 "the hub syncs with the node at its --self-url"
expect_output out '^clinic: pulled [1-9]' "the hub pulled from the node"
check "the node's newest patient is on the hub" has_patient "$HUB_DIR" "$P_NODE2"
sqlite3 "$HUB_DIR/sanad.db" "update peers set url = null"
sanad sync --data "$HUB_DIR"
expect_rc 1 "sync with no peer that has a url"
expect_output err 'no peer to sync with' "the message says there is no peer with a url"
sqlite3 "$HUB_DIR/sanad.db" "update peers set url = '$NODE'"

# the answers are checked: a wrong pinned key, a different node at the url
sqlite3 "$NODE_DIR_/sanad.db" "update peers set public_key = '$NODE_PK' where name = 'hub'"
sanad sync --data "$NODE_DIR_"
expect_rc 1 "sync when the hub's answers do not match the pinned key"
expect_output err 'not signed by its enrolled key' "the message says the answer's signature failed"
check "the failure is recorded for the peer" \
  sh -c "sqlite3 '$NODE_DIR_/sanad.db' 'select last_error from peers' | grep -q 'enrolled key'"
sqlite3 "$NODE_DIR_/sanad.db" "update peers set public_key = '$HUB_PK', url = '$NODE' where name = 'hub'"
sanad sync --data "$NODE_DIR_"
expect_rc 1 "sync when another node answers at the peer's url"
expect_output err 'not the enrolled peer' "the message says it is the wrong node"
sqlite3 "$NODE_DIR_/sanad.db" "update peers set url = '$HUB' where name = 'hub'"

# the hub side of the sync routes, for admins only
TOKEN=$(login admin "$ADMIN_PW")
api GET /api/v1/sync/status
expect_status 200 "GET /api/v1/sync/status as admin"
expect_json '.peers[0].name' clinic "the status lists the peer"
api GET '/api/v1/conflicts?limit=10'
expect_status 200 "GET /api/v1/conflicts as admin"
expect_json '.items | length' 0 "no conflicts yet"
api GET '/api/v1/conflicts?limit=0'
expect_error 400 invalid_limit "conflicts with limit 0"
api POST /api/v1/conflicts/01234567-89ab-7def-8123-456789abcdef/resolve '{"choose":"other"}'
expect_error 404 conflict_not_found "resolve a conflict that does not exist"
api POST /api/v1/conflicts/01234567-89ab-7def-8123-456789abcdef/resolve '{"choose":"other","x":1}'
expect_error 400 unknown_field "resolve with an unknown field"
# the quarantine limit: a node setting, 24 h unless changed
api GET /api/v1/sync/settings
expect_status 200 "GET /api/v1/sync/settings"
expect_json '.max_clock_ahead_hours' 24 "the default limit is 24 hours"
api PUT /api/v1/sync/settings '{"max_clock_ahead_hours":6}'
expect_status 200 "PUT /api/v1/sync/settings"
expect_json '.max_clock_ahead_hours' 6 "the new limit is answered"
api GET /api/v1/sync/status
expect_json '.max_clock_ahead_hours' 6 "and shown in the sync status"
for bad in '{"max_clock_ahead_hours":0}' '{"max_clock_ahead_hours":8785}' '{"max_clock_ahead_hours":"6"}' \
           '{"max_clock_ahead_hours":1.5}' '{}' '{"max_clock_ahead_hours":6,"x":1}'; do
  api PUT /api/v1/sync/settings "$bad"
  expect_status 400 "PUT /api/v1/sync/settings $bad is refused"
done
api GET /api/v1/sync/settings
expect_json '.max_clock_ahead_hours' 6 "refused settings changed nothing"
check "the change is in the audit log" \
  test "$(sqlite3 "$HUB_DIR/sanad.db" "select count(*) from audit_log where action = 'sync.settings'")" = 1
sanad sync settings --data "$HUB_DIR"
expect_output out '^max_clock_ahead_hours: 6$' "sanad sync settings prints the setting"
sanad sync settings --data "$HUB_DIR" --max-clock-ahead-hours 24
expect_output out '^max_clock_ahead_hours: 24$' "sanad sync settings changes it"
sanad sync settings --data "$HUB_DIR" --max-clock-ahead-hours 0
expect_rc 2 "a limit of 0 hours is a usage error"
api POST /api/v1/users '{"username":"sync-viewer","role":"viewer","password":"viewer-password-1"}'
TOKEN=$(login sync-viewer viewer-password-1)
api GET /api/v1/sync/status
expect_error 403 forbidden "a viewer may not see the sync status"
api POST /api/v1/sync/run
expect_error 403 forbidden "a viewer may not start a sync"
TOKEN=

# "sync now" in a running node: POST /api/v1/sync/run (the hub syncs with the node at its --self-url)
P_NODE3=$(new_patient "$NODE" Rania)
TOKEN=$(login admin "$ADMIN_PW")
api POST '/api/v1/sync/run?wait=20'
expect_status 200 "POST /api/v1/sync/run?wait=20 answers when the round ended"
expect_json '.state' done "the round is done"
expect_json '.round.peers | length' 1 "it synced with the one peer that has a url"
expect_json '.round.peers[0].peer' clinic "and names it"
expect_json '.round.peers[0].ok' true "the session succeeded"
expect_json '.round.peers[0].pulled.applied > 0' true "it applied what the node had"
expect_json '.round.finished_at >= .round.started_at' true "it says when it ran"
check "the node's patient came with the sync the API started" has_patient "$HUB_DIR" "$P_NODE3"
check "the request is in the audit log" \
  test "$(sqlite3 "$HUB_DIR/sanad.db" "select count(*) from audit_log where action = 'sync.run'")" = 1
# the next round starts with the nonce the last one was left with: no nonce request at all
node_lines=$(wc -l <"$NODE_LOG_")
api POST '/api/v1/sync/run?wait=20'
expect_json '.round.peers[0].ok' true "a second round right after"
tail -n +$((node_lines + 1)) "$NODE_LOG_" >"$TMP/round2.log"
check "it made its requests ($(grep -c 'POST /api/v1/sync/pull 200' "$TMP/round2.log") pulls)" \
  grep -q 'POST /api/v1/sync/pull 200' "$TMP/round2.log"
check "without asking for a nonce (the last round's was kept)" sh -c "! grep -q 'POST /api/v1/sync/nonce' '$TMP/round2.log'"
P_NODE4=$(new_patient "$NODE" Hiba)
api POST /api/v1/sync/run
expect_status 202 "without wait the request answers at once"
expect_json '.state' running "it says the round runs"
i=0
while ! has_patient "$HUB_DIR" "$P_NODE4" && [ $i -lt $((100 * T_SCALE)) ]; do sleep 0.1; i=$((i + 1)); done
check "the round started without waiting still brought the node's patient" has_patient "$HUB_DIR" "$P_NODE4"
i=0
while api GET /api/v1/sync/status && [ "$(jqb .syncer.running)" = true ] && [ $i -lt $((100 * T_SCALE)) ]; do
  sleep 0.1; i=$((i + 1))
done
expect_json '.syncer.running' false "the sync status says when no round runs"
expect_json '.syncer.every_s' null "this server syncs only when asked (no --sync-every)"
expect_json '.syncer.last_round.peers[0].peer' clinic "the status shows the last round"
expect_json '.syncer.last_round.peers[0].ok' true "and how it ended"
for bad in 'wait=31' 'wait=-1' 'wait=x' 'wait=1.5' 'wait='; do
  api POST "/api/v1/sync/run?$bad"
  expect_error 400 invalid_wait "POST /api/v1/sync/run?$bad is refused"
done
sqlite3 "$HUB_DIR/sanad.db" "update peers set url = 'http://127.0.0.1:9/'"
api POST '/api/v1/sync/run?wait=20'
expect_status 200 "a round whose peer is unreachable still answers"
expect_json '.round.peers[0].ok' false "the session failed"
expect_json '.round.peers[0].error.message | test("cannot reach")' true "and the error says why"
sqlite3 "$HUB_DIR/sanad.db" "update peers set url = null"
before=$(sqlite3 "$HUB_DIR/sanad.db" "select count(*) from audit_log where action = 'sync.run'")
api POST '/api/v1/sync/run?wait=1'
expect_error 409 no_peer "no peer has a url"
check "a refused request is not audited" \
  test "$(sqlite3 "$HUB_DIR/sanad.db" "select count(*) from audit_log where action = 'sync.run'")" = "$before"
sqlite3 "$HUB_DIR/sanad.db" "update peers set url = '$NODE'"
TOKEN=

# ---- serve --sync-every --------------------------------------------------------------------------------
stop_node "$NODE_PID_" "$NODE_LOG_"
start_node "$NODE_DIR_" --sync-every 1s
NODE_PID_=$NODE_PID NODE_LOG_=$NODE_LOG NODE=$BASE
P_HUB2=$(new_patient "$HUB" Samir)
i=0
while ! has_patient "$NODE_DIR_" "$P_HUB2" && [ $i -lt $((100 * T_SCALE)) ]; do sleep 0.1; i=$((i + 1)); done
check "serve --sync-every brought the hub's new patient to the node" has_patient "$NODE_DIR_" "$P_HUB2"
_b=$BASE
BASE=$NODE
TOKEN=$(login admin "$ADMIN_PW")
api GET /api/v1/sync/status
expect_json '.syncer.every_s' 1 "the sync status gives the interval of --sync-every"
TOKEN=
BASE=$_b
check "the background sync is logged without health data" \
  sh -c "grep -q \"sync: with 'hub': pulled\" '$NODE_LOG_' && ! grep -q Samir '$NODE_LOG_'"
stop_node "$HUB_PID" "$HUB_LOG"
i=0
while ! grep -q "sync: with 'hub' failed (2 in a row" "$NODE_LOG_" && [ $i -lt $((150 * T_SCALE)) ]; do sleep 0.1; i=$((i + 1)); done
check "an unreachable hub is retried with backoff" grep -q "failed (2 in a row; next try in 4s)" "$NODE_LOG_"
check "the error is kept for the peer" sh -c "sqlite3 '$NODE_DIR_/sanad.db' 'select last_error from peers' | grep -q 'cannot reach'"
# while the peer backs off, the rounds every second find nobody due: the status keeps the failed round
sleep 1.5
_b=$BASE
BASE=$NODE
TOKEN=$(login admin "$ADMIN_PW")
api GET /api/v1/sync/status
expect_json '.syncer.last_round.peers | length' 1 "rounds with no peer due keep the last outcome in the status"
expect_json '.syncer.last_round.peers[0].ok' false "which says the peer failed"
TOKEN=
BASE=$_b
started=$(date +%s)
stop_node "$NODE_PID_" "$NODE_LOG_"
check "the background syncer does not hold up the stop" test $(($(date +%s) - started)) -le $((5 * T_SCALE))

sanad sync --data "$NODE_DIR_"
expect_rc 1 "sanad sync with the hub down"
expect_output err "sync with 'hub' failed: cannot reach" "the message says the hub is unreachable"
sanad serve --data "$NODE_DIR_" --sync-every 5x
expect_rc 2 "--sync-every with a bad unit"

# ---- TLS: verified by default, --insecure for self-signed certificates --------------------------------
if command -v openssl >/dev/null 2>&1; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1
  start_node "$HUB_DIR" --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem"
  HUB=$BASE HUB_PID=$NODE_PID HUB_LOG=$NODE_LOG
  sqlite3 "$NODE_DIR_/sanad.db" "update peers set url = '$HUB' where name = 'hub'"
  sanad sync --data "$NODE_DIR_"
  expect_rc 1 "sync with a self-signed hub, without --insecure"
  expect_output err 'TLS certificate.*--insecure' "the message suggests --insecure"
  sanad sync --data "$NODE_DIR_" --insecure
  expect_rc 0 "sync with a self-signed hub with --insecure"
  sanad peer invite --data "$HUB_DIR" --name tls-node
  TCODE=$(printf '%s\n' "$OUT" | sed -n 's/^Enrolment code: *//p')
  init_node "$TMP/node2"
  sanad peer add --data "$TMP/node2" --url "$HUB" --code "$TCODE"
  expect_rc 1 "peer add to a self-signed hub without --insecure"
  sanad peer add --data "$TMP/node2" --url "$HUB" --code "$TCODE" --insecure
  expect_rc 0 "peer add with --insecure (the code was not spent by the refused attempt)"
else
  skip "TLS tests" "openssl is not installed"
  start_node "$HUB_DIR"
  HUB=$BASE HUB_PID=$NODE_PID HUB_LOG=$NODE_LOG
fi

# ---- removal -------------------------------------------------------------------------------------------
sanad peer remove --data "$HUB_DIR" --name clinic
expect_rc 0 "the hub removes the node"
sanad sync --data "$NODE_DIR_" --insecure
expect_rc 1 "a removed node can no longer sync"
expect_output err 'unknown_peer' "the hub answers unknown_peer"

# ---- enrolment throttling (last: it locks this address out) --------------------------------------------
BASE=$HUB
i=0
while [ $i -lt 12 ]; do
  api POST /api/v1/peers/enroll "$(enrol_body 22222-22222-22222-22222-22222 "$NODE_ID")"
  [ "$STATUS" = 429 ] && break
  i=$((i + 1))
done
expect_error 429 too_many_attempts "wrong codes from one address are throttled"
expect_header Retry-After '^[0-9]+$' "with Retry-After"
stop_node "$HUB_PID" "$HUB_LOG"
done_testing
