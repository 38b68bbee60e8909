#!/bin/sh
# t0500-audit.sh — the hash-chained audit log: activity leaves entries, GET /api/v1/audit pages through
# all of them (admins only), `sanad audit verify` passes on an intact chain and names the first bad
# entry when a row is altered or removed behind the server's back.
. "$(dirname "$0")/lib.sh"

start_node
DB=$NODE_DIR/sanad.db

# ---- activity ----------------------------------------------------------------------------------------
ADMIN=$(login admin "$ADMIN_PW")
[ -n "$ADMIN" ] || bail "sign in as admin"
api POST /api/v1/session '{"username":"admin","password":"wrong-password-1"}'
expect_error 401 invalid_credentials "a failed sign-in"
api POST /api/v1/session '{"username":"ghost.user","password":"wrong-password-2"}'
expect_error 401 invalid_credentials "a sign-in as nobody"
TOKEN=$ADMIN
api POST /api/v1/users '{"username":"vera","role":"viewer","password":"vera-password-1"}'
expect_status 201 "create vera"
VERA_ID=$(jqb .id)
api POST /api/v1/sites '{"name":"Audit Site"}'
expect_status 201 "create a site"
SITE_ID=$(jqb .id)
VERA=$(login vera vera-password-1)
TOKEN=$VERA
api GET /api/v1/users
expect_error 403 forbidden "vera may not list users"
api GET /api/v1/audit
expect_error 403 forbidden "vera may not read the audit log"
TOKEN=
api GET /api/v1/audit "" -b "sanad_session=$VERA"
expect_error 403 forbidden "vera may not read the audit log through the cookie either"
api GET /api/v1/audit
expect_error 401 not_signed_in "no session, no audit log"

# ---- paging ------------------------------------------------------------------------------------------
TOKEN=$ADMIN
: >"$TMP/items"
cursor=
pages=0
while :; do
  api GET "/api/v1/audit?limit=2${cursor:+&cursor=$cursor}"
  if [ "$STATUS" != 200 ]; then not_ok "audit page $pages" "got $STATUS: $BODY"; break; fi
  n=$(jqb '.items | length')
  printf '%s' "$BODY" | jq -c '.items[]' >>"$TMP/items"
  cursor=$(jqb '.next // empty')
  pages=$((pages + 1))
  if [ -z "$cursor" ]; then
    if [ "$n" -gt 2 ] || [ "$n" -lt 1 ]; then not_ok "the last page has 1 or 2 items" "it has $n"; fi
    break
  fi
  [ "$n" = 2 ] || not_ok "a page with a next cursor is full (limit=2)" "it has $n items"
  [ $pages -lt 500 ] || { not_ok "paging ends" "more than 500 pages"; break; }
done
TOTAL=$(wc -l <"$TMP/items")
DB_COUNT=$(sqlite3 "$DB" 'select count(*) from audit_log')
ok "paged through the audit log in $pages pages of at most 2"
check "paging saw every row ($TOTAL items, $DB_COUNT rows in the database)" test "$TOTAL" = "$DB_COUNT"
check "seq runs 1..N without gaps or repeats" \
  test "$(jq -s '[.[].seq] == [range(1; length + 1)]' "$TMP/items")" = true
check "items carry seq, at, action, outcome, hash" \
  test "$(jq -s 'all(.[]; has("seq") and has("at") and has("action") and has("outcome") and (.hash | test("^[0-9a-f]{64}$")))' "$TMP/items")" = true

# find ACTION OUTCOME JQ-FILTER: how many paged items match.
count_items() {
  jq -s "[.[] | select(.action == \"$1\" and .outcome == \"$2\") | select($3)] | length" "$TMP/items"
}
check "node.init is the first entry" test "$(jq -s -r '.[0].action' "$TMP/items")" = node.init
check "admin's sign-in is audited (login ok)" test "$(count_items login ok '.username == "admin" and .user_id != null')" -ge 1
check "the failed sign-in names admin (login failed)" test "$(count_items login failed '.username == "admin"')" = 1
check "the sign-in as nobody is audited (login failed)" test "$(count_items login failed '.username != "admin"')" = 1
check "user.create of vera" test "$(count_items user.create ok ".entity_id == \"$VERA_ID\"")" = 1
check "site.create of the new site" test "$(count_items site.create ok ".entity_id == \"$SITE_ID\"")" = 1
check "the refused GET /users is audited (access.denied)" \
  test "$(count_items access.denied denied ".entity_id == \"/api/v1/users\" and .user_id == \"$VERA_ID\"")" = 1
check "the refused GET /audit is audited twice (bearer and cookie)" \
  test "$(count_items access.denied denied ".entity_id == \"/api/v1/audit\"")" = 2
check "entries carry the client address" test "$(count_items login ok '.address == "127.0.0.1"')" -ge 1
check "entries carry a request id" test "$(count_items user.create ok '(.request_id | length) > 0')" -ge 1
check "no secret reaches the audit log" sh -c "! sqlite3 '$DB' .dump | grep -qE 'wrong-password|vera-password|$ADMIN_PW|$ADMIN'"

api GET "/api/v1/audit?limit=500"
expect_status 200 "one page of up to 500"
expect_json '.next' null "a single page that holds everything has no next"
check "limit=500 returns everything" test "$(jqb '.items | length')" -ge "$DB_COUNT"
api GET "/api/v1/audit?cursor=$DB_COUNT"
expect_json '.items | length' 0 "a cursor at the end gives an empty page"
expect_json '.next' null "... and no next"
api GET "/api/v1/audit?limit=1&cursor=2"
expect_json '.items[0].seq' 3 "cursor=2 starts after seq 2"

# ---- verify -----------------------------------------------------------------------------------------
sanad audit verify --data "$NODE_DIR"
expect_rc 0 "audit verify while serving"
stop_node
sanad audit verify --data "$NODE_DIR"
expect_rc 0 "audit verify on the stopped node"
N=$(sqlite3 "$DB" 'select count(*) from audit_log')
expect_output out "^audit chain intact: $N entries\$" "verify counts every entry ($N)"
check "enough entries to tamper in the middle" test "$N" -ge 6

# tamper COPY-NAME SQL: a copy of the data dir with SQL applied to it; sets TDIR.
tamper() {
  TDIR=$TMP/$1
  cp -a "$NODE_DIR" "$TDIR"
  sqlite3 "$TDIR/sanad.db" "$2" || not_ok "tamper with $1" "sqlite3 failed: $2"
}

tamper altered "update audit_log set username = 'mallory' where seq = 3"
check "the tamper took effect" test "$(sqlite3 "$TDIR/sanad.db" 'select username from audit_log where seq = 3')" = mallory
sanad audit verify --data "$TDIR"
expect_rc 1 "verify catches an altered row"
expect_output err 'audit chain broken at entry 3\b' "verify names entry 3"

tamper deleted "delete from audit_log where seq = 4"
sanad audit verify --data "$TDIR"
expect_rc 1 "verify catches a deleted middle row"
expect_output err 'entr(y|ies) 4\b' "verify names the missing entry 4"

tamper outcome "update audit_log set outcome = 'ok' where action = 'access.denied'"
sanad audit verify --data "$TDIR"
expect_rc 1 "verify catches a denied access rewritten as ok"
FIRST_DENIED=$(sqlite3 "$DB" "select min(seq) from audit_log where action = 'access.denied'")
expect_output err "audit chain broken at entry $FIRST_DENIED\\b" "verify names the first rewritten entry ($FIRST_DENIED)"

tamper rehashed "update audit_log set hash = '$(printf '%064d' 0)' where seq = 2"
sanad audit verify --data "$TDIR"
expect_rc 1 "verify catches a replaced hash"
expect_output err 'audit chain broken at entry 2\b' "verify names entry 2"

tamper reordered "update audit_log set at = at + 1 where seq = 5"
sanad audit verify --data "$TDIR"
expect_rc 1 "verify catches a changed timestamp"
expect_output err 'audit chain broken at entry 5\b' "verify names entry 5"

tamper inserted "insert into audit_log (seq, at, action, outcome, prev_hash, hash) select max(seq) + 1, 0, 'login', 'ok', hash, hash from audit_log"
sanad audit verify --data "$TDIR"
expect_rc 1 "verify catches a forged appended row"
expect_output err "audit chain broken at entry $((N + 1))\\b" "verify names the forged entry $((N + 1))"

sanad audit verify --data "$NODE_DIR"
expect_rc 0 "the original stays intact"

done_testing
