#!/bin/sh
# t0200-session.sh — signing in and out: tokens and cookies, CSRF, throttling, sessions ended by
# disabling or a password change, the last-admin guard, /healthz, the static app's headers, and an
# access log that leaks no secret.
#
# All requests come from 127.0.0.1, which has 20 free failed sign-ins before the address itself is
# throttled; this script stays well below that.
. "$(dirname "$0")/lib.sh"

start_node

# ---- health and the static app ---------------------------------------------------------------------
api GET /healthz
expect_status 200
check "healthz body is exactly {\"status\":\"ok\"}" test "$BODY" = '{"status":"ok"}'
expect_json '.status' ok

api GET /
expect_status 200 "GET / (the web app)"
expect_header Content-Type '^text/html'
expect_header Content-Security-Policy "default-src 'self'"
expect_header Content-Security-Policy "frame-ancestors 'none'"
expect_header X-Content-Type-Options '^nosniff$'
check "GET / is the HTML page" grep -qi '<html' "$TMP/.body"
api GET /index.html
expect_status 200
api GET /style.css
expect_status 200
expect_header Content-Type '^text/css'
api GET /no-such-page.html
expect_error 404 not_found "a static path that does not exist"
api HEAD / "" -I
expect_status 200 "HEAD / (static)"
check "HEAD / sends no body (only headers)" sh -c "! grep -qi '<html' '$TMP/.body'"

# ---- sign in ---------------------------------------------------------------------------------------
api POST /api/v1/session "$(jq -cn --arg p "$ADMIN_PW" '{username:"admin",password:$p}')"
expect_status 201 "sign in as admin"
ADMIN_TOKEN=$(jqb .token)
ADMIN_CSRF=$(jqb .csrf_token)
check "token is 43 base64url characters" sh -c "printf '%s' '$ADMIN_TOKEN' | grep -Eqx '[A-Za-z0-9_-]{43}'"
check "csrf_token is 43 base64url characters" sh -c "printf '%s' '$ADMIN_CSRF' | grep -Eqx '[A-Za-z0-9_-]{43}'"
check "csrf_token differs from the token" test "$ADMIN_TOKEN" != "$ADMIN_CSRF"
expect_json '.expires_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")' true "expires_at is an ISO time"
expect_json .user.username admin
expect_json .user.role admin
expect_json '.user.permissions | index("users.manage") != null' true "login lists the admin's permissions"
expect_json '[.. | objects | keys[]] | map(select(test("password"))) | length' 0 "login answer carries no password field"
expect_header Set-Cookie "^sanad_session=$ADMIN_TOKEN;" "cookie carries the token"
expect_header Set-Cookie '; *HttpOnly(;|$)' "cookie is HttpOnly"
expect_header Set-Cookie '; *SameSite=Strict(;|$)' "cookie is SameSite=Strict"
expect_header Set-Cookie '; *Path=/(;|$)' "cookie Path=/"
expect_header Cache-Control 'no-store' "login answer is not cached"

TOKEN=$ADMIN_TOKEN
api GET /api/v1/me
expect_status 200 "GET /me with the bearer token"
expect_json .username admin
expect_json '.permissions | index("audit.read") != null' true "/me lists permissions"
expect_json 'has("password_hash")' false "/me has no password hash"
ADMIN_ID=$(jqb .id)

TOKEN=
api GET /api/v1/me "" -b "sanad_session=$ADMIN_TOKEN"
expect_status 200 "GET /me with the cookie"
expect_json .username admin

api GET /api/v1/me
expect_error 401 not_signed_in "GET /me without a session"
api GET /api/v1/me "" -H "Authorization: Bearer not-a-token"
expect_error 401 not_signed_in "GET /me with a malformed bearer token"
api GET /api/v1/me "" -H "Authorization: Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
expect_error 401 not_signed_in "GET /me with a well-formed unknown bearer token"
api GET /api/v1/me "" -b "sanad_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
expect_error 401 not_signed_in "GET /me with an unknown cookie"

# ---- wrong password and unknown user look the same -------------------------------------------------
api POST /api/v1/session '{"username":"admin","password":"not-the-password"}'
expect_error 401 invalid_credentials "wrong password"
WRONG_PW_BODY=$BODY
api POST /api/v1/session '{"username":"zed.nobody","password":"not-the-password"}'
expect_error 401 invalid_credentials "unknown user"
check "wrong password and unknown user get the identical answer" test "$WRONG_PW_BODY" = "$BODY"
api POST /api/v1/session '{"username":"admin","password":""}'
check "empty password is refused (401 or 400)" sh -c "[ $STATUS = 401 ] || [ $STATUS = 400 ]"

# ---- CSRF: cookie writes need X-CSRF-Token, bearer writes do not -----------------------------------
TOKEN=
api POST /api/v1/sites '{"name":"Cookie Site"}' -b "sanad_session=$ADMIN_TOKEN"
expect_error 403 csrf_failed "cookie POST without X-CSRF-Token"
api POST /api/v1/sites '{"name":"Cookie Site"}' -b "sanad_session=$ADMIN_TOKEN" -H "X-CSRF-Token: wrong"
expect_error 403 csrf_failed "cookie POST with a wrong X-CSRF-Token"
api POST /api/v1/sites '{"name":"Cookie Site"}' -b "sanad_session=$ADMIN_TOKEN" \
  -H "X-CSRF-Token: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
expect_error 403 csrf_failed "cookie POST with a well-formed wrong X-CSRF-Token"
api POST /api/v1/sites '{"name":"Cookie Site"}' -b "sanad_session=$ADMIN_TOKEN" -H "X-CSRF-Token: $ADMIN_TOKEN"
expect_error 403 csrf_failed "cookie POST with the session token as X-CSRF-Token"
api GET /api/v1/sites "" -b "sanad_session=$ADMIN_TOKEN"
expect_status 200 "cookie GET needs no CSRF token"
check "no site was created by the refused writes" test "$(jqb '[.items[] | select(.name == "Cookie Site")] | length')" = 0
api POST /api/v1/sites '{"name":"Cookie Site"}' -b "sanad_session=$ADMIN_TOKEN" -H "X-CSRF-Token: $ADMIN_CSRF"
expect_status 201 "cookie POST with the right X-CSRF-Token"
expect_json .name "Cookie Site"
api PATCH "/api/v1/users/$ADMIN_ID" '{"full_name":"Via Cookie"}' -b "sanad_session=$ADMIN_TOKEN"
expect_error 403 csrf_failed "cookie PATCH without X-CSRF-Token"
api DELETE /api/v1/session "" -b "sanad_session=$ADMIN_TOKEN"
expect_error 403 csrf_failed "cookie DELETE (sign out) without X-CSRF-Token"

TOKEN=$ADMIN_TOKEN
api POST /api/v1/sites '{"name":"Bearer Site"}'
expect_status 201 "bearer POST needs no CSRF token"
api POST /api/v1/sites '{"name":"Bearer Site 2"}' -b "sanad_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
expect_status 201 "bearer wins over a stray cookie"

# a CSRF token of another session of the same user is not this session's
T2=$(login admin "$ADMIN_PW")
T2_CSRF=$(jq -r .csrf_token "$TMP/.login.json")
TOKEN=
api POST /api/v1/sites '{"name":"Cross Site"}' -b "sanad_session=$ADMIN_TOKEN" -H "X-CSRF-Token: $T2_CSRF"
expect_error 403 csrf_failed "cookie POST with another session's CSRF token"

# ---- sign out --------------------------------------------------------------------------------------
TOKEN=$T2
api DELETE /api/v1/session
expect_status 204 "sign out (bearer)"
expect_header Set-Cookie '^sanad_session=;.*Max-Age=0' "sign out clears the cookie"
api GET /api/v1/me
expect_error 401 not_signed_in "the signed-out token no longer works"
api DELETE /api/v1/session
expect_error 401 not_signed_in "signing out twice"
TOKEN=$ADMIN_TOKEN
api GET /api/v1/me
expect_status 200 "signing out one session leaves the other"

T3=$(login admin "$ADMIN_PW")
T3_CSRF=$(jq -r .csrf_token "$TMP/.login.json")
TOKEN=
api DELETE /api/v1/session "" -b "sanad_session=$T3" -H "X-CSRF-Token: $T3_CSRF"
expect_status 204 "sign out (cookie + CSRF)"
api GET /api/v1/me "" -b "sanad_session=$T3"
expect_error 401 not_signed_in "the signed-out cookie no longer works"

# ---- the last admin --------------------------------------------------------------------------------
TOKEN=$ADMIN_TOKEN
api PATCH "/api/v1/users/$ADMIN_ID" '{"disabled":true}'
expect_error 409 last_admin "disabling the last admin"
api PATCH "/api/v1/users/$ADMIN_ID" '{"role":"viewer"}'
expect_error 409 last_admin "demoting the last admin"
api GET /api/v1/me
expect_status 200 "the last admin is still signed in"
expect_json .role admin
expect_json .disabled false

# ---- disabling a user ends their sessions ----------------------------------------------------------
api POST /api/v1/users '{"username":"dana.q","full_name":"Dana","role":"clinician","password":"dana-password-1"}'
expect_status 201 "create dana"
expect_json '[.. | objects | keys[]] | map(select(test("password"))) | length' 0 "user answer carries no password field"
DANA_ID=$(jqb .id)
DANA=$(login dana.q dana-password-1)
check "dana signs in" test -n "$DANA"
TOKEN=$DANA
api GET /api/v1/me
expect_status 200 "dana's session works"
expect_json .role clinician
TOKEN=$ADMIN_TOKEN
api PATCH "/api/v1/users/$DANA_ID" '{"disabled":true}'
expect_status 200 "disable dana"
expect_json .disabled true
api GET /api/v1/users
expect_json ".items[] | select(.id == \"$DANA_ID\") | .disabled" true "GET /users shows dana disabled"
TOKEN=$DANA
api GET /api/v1/me
expect_error 401 not_signed_in "disabling dana ended her session"
api POST /api/v1/session '{"username":"dana.q","password":"dana-password-1"}'
expect_error 401 invalid_credentials "disabled dana cannot sign in"
check "disabled account gets the same answer as a wrong password" test "$WRONG_PW_BODY" = "$BODY"
TOKEN=$ADMIN_TOKEN
api PATCH "/api/v1/users/$DANA_ID" '{"disabled":false}'
expect_status 200 "enable dana"
DANA=$(login dana.q dana-password-1)
check "re-enabled dana signs in" test -n "$DANA"

# ---- a password change ends sessions ---------------------------------------------------------------
TOKEN=$ADMIN_TOKEN
api PATCH "/api/v1/users/$DANA_ID" '{"password":"dana-password-2"}'
expect_status 200 "change dana's password"
expect_json '[.. | objects | keys[]] | map(select(test("password"))) | length' 0 "password change answer has no password"
TOKEN=$DANA
api GET /api/v1/me
expect_error 401 not_signed_in "password change ended dana's session"
api POST /api/v1/session '{"username":"dana.q","password":"dana-password-1"}'
expect_error 401 invalid_credentials "dana's old password is refused"
DANA=$(login dana.q dana-password-2)
check "dana's new password works" test -n "$DANA"
TOKEN=$ADMIN_TOKEN
api PATCH "/api/v1/users/$DANA_ID" '{"password":"dana"}'
expect_error 400 weak_password "a weak new password"
api PATCH "/api/v1/users/$DANA_ID" '{"full_name":"Dana Q"}'
expect_status 200 "a change that is not the password"
TOKEN=$DANA
api GET /api/v1/me
expect_status 200 "a non-password change keeps dana's session"
expect_json .full_name "Dana Q"

# ---- throttling ------------------------------------------------------------------------------------
TOKEN=$ADMIN_TOKEN
api POST /api/v1/users '{"username":"thr.quokka","role":"viewer","password":"thr-password-1"}'
expect_status 201 "create thr.quokka"
for i in 1 2 3 4 5; do
  api POST /api/v1/session '{"username":"thr.quokka","password":"wrong-password"}'
  expect_error 401 invalid_credentials "failed sign-in $i of 5 for thr.quokka"
done
api POST /api/v1/session '{"username":"thr.quokka","password":"wrong-password"}'
expect_error 429 too_many_attempts "the 6th attempt after 5 failures is throttled"
expect_header Retry-After '^[0-9]+$' "the first 429 carries Retry-After"
api POST /api/v1/session '{"username":"thr.quokka","password":"wrong-password"}'
expect_error 429 too_many_attempts "thr.quokka stays locked"
expect_header Retry-After '^[0-9]+$' "429 carries Retry-After"
RA=$(header Retry-After)
check "Retry-After is 1..30 seconds for the first lock (got '$RA')" sh -c "[ '${RA:-0}' -ge 1 ] && [ '${RA:-0}' -le 30 ]"
api POST /api/v1/session '{"username":"thr.quokka","password":"thr-password-1"}'
expect_error 429 too_many_attempts "the right password is refused while locked"
api POST /api/v1/session '{"username":"THR.Quokka","password":"thr-password-1"}'
expect_error 429 too_many_attempts "the lock holds for another spelling of the username"
T4=$(login admin "$ADMIN_PW")
check "another account signs in from the same address meanwhile" test -n "$T4"

# ---- the access log --------------------------------------------------------------------------------
TOKEN=
api GET '/healthz?probe=qv-7f3e9a'
expect_status 200 "healthz with a query string"
TOKEN=$ADMIN_TOKEN
api GET '/api/v1/audit?limit=1&cursor=0&needle=qv-7f3e9a'
expect_status 200 "audit with a query string"
check "access log lines use the route pattern" grep -Eq 'http PATCH /api/v1/users/\{id\} 200 [0-9]+us id=' "$NODE_LOG"
check "access log has the static marker for /" grep -Eq 'http GET \(static\) 200 ' "$NODE_LOG"
for secret in "$ADMIN_PW" dana-password-1 dana-password-2 thr-password-1 wrong-password not-the-password \
  qv-7f3e9a zed.nobody dana.q thr.quokka "$ADMIN_TOKEN" "$ADMIN_CSRF" "$DANA_ID"; do
  if grep -qF -- "$secret" "$NODE_LOG"; then
    not_ok "server log does not contain '$secret'" "$(grep -F -- "$secret" "$NODE_LOG" | head -5)"
  else
    ok "server log does not contain '$secret'"
  fi
done
check "server log has no query string at all" sh -c "! grep -q 'http [A-Z]* [^ ]*?' '$NODE_LOG'"
api GET /api/v1/me
RID=$(header X-Request-Id)
check "responses carry an X-Request-Id ($RID)" sh -c "printf '%s' '$RID' | grep -Eqx '[0-9a-f]{16}'"
check "the access log line carries the same request id" grep -q "http GET /api/v1/me 200 .* id=$RID\$" "$NODE_LOG"
stop_node

# ---- parallel guesses all count ----------------------------------------------------------------------
# A fresh node, so that the address counter starts at zero. Eight wrong passwords at once: each must
# either be counted as a failure (401) or refused by a lock (429), and the counters and the audit log
# must agree with what the clients saw.
start_node "$TMP/par"
write_file "$TMP/pw-par" 'par-password-1'
sanad user add --data "$NODE_DIR" --username par --role viewer --password-file "$TMP/pw-par"
for i in 1 2 3 4 5 6 7 8; do
  curl -s -o /dev/null -w '%{http_code}\n' --max-time "$T_CURL" -H 'Content-Type: application/json' \
    --data-binary '{"username":"par","password":"wrong-password"}' "$BASE/api/v1/session" >"$TMP/par.$i" &
  PAR_PIDS="${PAR_PIDS:-} $!"
done
for p in $PAR_PIDS; do wait "$p"; done    # not a bare wait: the node is a child too
N401=$(cat "$TMP"/par.? | grep -c '^401$')
N429=$(cat "$TMP"/par.? | grep -c '^429$')
check "8 parallel guesses: each 401 or 429 ($N401 + $N429)" test $((N401 + N429)) = 8
Q() { sqlite3 "$NODE_DIR/sanad.db" "$1"; }
check "the account counter holds every 401 ($(Q "select failures from login_throttle where key = 'u:par'"))" \
  test "$(Q "select failures from login_throttle where key = 'u:par'")" = "$N401"
check "the address counter holds every 401" \
  test "$(Q "select failures from login_throttle where key = 'a:127.0.0.1'")" = "$N401"
check "the audit log has one 'failed' row per 401" \
  test "$(Q "select count(*) from audit_log where action = 'login' and outcome = 'failed'")" = "$N401"
check "the audit log has one 'throttled' row per 429" \
  test "$(Q "select count(*) from audit_log where action = 'login' and outcome = 'throttled'")" = "$N429"
api POST /api/v1/session '{"username":"par","password":"par-password-1"}'
expect_error 429 too_many_attempts "after 8 failures the right password is refused"
stop_node
done_testing
