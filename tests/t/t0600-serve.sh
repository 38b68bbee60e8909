#!/bin/sh
# t0600-serve.sh — `sanad serve` itself: HTTPS with a certificate and key (Secure cookie), refusing
# incomplete or broken TLS options and bad --listen values, graceful shutdown on SIGTERM and SIGINT,
# and two nodes side by side on their own ports and data directories.
. "$(dirname "$0")/lib.sh"

# ---- TLS ---------------------------------------------------------------------------------------------
if ! command -v openssl >/dev/null 2>&1; then
  skip "TLS tests" "openssl is not installed"
else
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1
  check "openssl made a self-signed certificate" test -s "$TMP/cert.pem" -a -s "$TMP/key.pem"

  init_node "$TMP/tls"
  start_node "$TMP/tls" --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem"
  check "the node logs that it serves https" grep -q "listening on 127.0.0.1:$NODE_PORT (https, " "$NODE_LOG"
  check "BASE is https" test "${BASE%%:*}" = https
  api GET /healthz
  expect_status 200 "GET /healthz over https"
  code=$(curl -s --max-time "$T_CURL" --cacert "$TMP/cert.pem" --resolve "localhost:$NODE_PORT:127.0.0.1" \
    -o /dev/null -w '%{http_code}' "https://localhost:$NODE_PORT/healthz")
  check "the certificate verifies for localhost (got $code)" test "$code" = 200
  code=$(curl -s --max-time "$T_CURL" -o /dev/null -w '%{http_code}' "$BASE/healthz")
  check "an unverified certificate is refused by curl without -k (got $code)" test "$code" = 000
  code=$(curl -s --max-time "$T_CURL" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NODE_PORT/healthz")
  check "plain http to the https port gets no 200 (got $code)" test "$code" != 200
  api POST /api/v1/session "$(jq -cn --arg p "$ADMIN_PW" '{username:"admin",password:$p}')"
  expect_status 201 "sign in over https"
  expect_header Set-Cookie '; *Secure(;|$)' "the cookie is Secure over https"
  expect_header Set-Cookie '; *HttpOnly(;|$)' "the cookie is HttpOnly over https"
  TOKEN=$(jqb .token)
  api GET /api/v1/me
  expect_status 200 "GET /me over https"
  expect_json .username admin
  TOKEN=
  api GET /
  expect_status 200 "the web app over https"
  check "node alive after plain http on its https port" node_alive
  stop_node

  # incomplete or broken TLS options: refused at start, never a plain-http fallback
  sanad serve --data "$TMP/tls" --listen 127.0.0.1:0 --tls-cert "$TMP/cert.pem"
  expect_rc_nonzero "--tls-cert without --tls-key"
  expect_output err 'tls-cert and --tls-key go together' "the message names both options"
  expect_no_output err 'listening on' "nothing was served"
  sanad serve --data "$TMP/tls" --listen 127.0.0.1:0 --tls-key "$TMP/key.pem"
  expect_rc_nonzero "--tls-key without --tls-cert"
  sanad serve --data "$TMP/tls" --listen 127.0.0.1:0 --tls-cert "$TMP/nope.pem" --tls-key "$TMP/key.pem"
  expect_rc_nonzero "a missing certificate file"
  expect_output err 'cannot read the TLS certificate or key' "the message says the TLS files are unreadable"
  echo "not a certificate" >"$TMP/junk.pem"
  sanad serve --data "$TMP/tls" --listen 127.0.0.1:0 --tls-cert "$TMP/junk.pem" --tls-key "$TMP/key.pem"
  expect_rc_nonzero "a certificate file that is not PEM"
  expect_no_output err 'listening on' "a junk certificate is not served"
  sanad serve --data "$TMP/tls" --listen 127.0.0.1:0 --tls-cert "$TMP/key.pem" --tls-key "$TMP/cert.pem"
  expect_rc_nonzero "certificate and key swapped"
fi

# ---- bad --listen ------------------------------------------------------------------------------------
init_node "$TMP/plain"
for l in localhost:8080 127.0.0.1 127.0.0.1:99999 127.0.0.1:-1 '[::1' 10.255.255.1:0; do
  sanad serve --data "$TMP/plain" --listen "$l"
  expect_rc_nonzero "--listen '$l' is refused"
  expect_no_output err 'listening on' "--listen '$l' serves nothing"
done

# ---- graceful shutdown -------------------------------------------------------------------------------
start_node "$TMP/plain"
api GET /healthz
expect_status 200
kill -TERM "$NODE_PID"
wait_exit "$NODE_PID"
check "SIGTERM: exit 0 (got $STOP_RC)" test "$STOP_RC" = 0
check "SIGTERM: 'SIGTERM received' logged" grep -q 'SIGTERM received' "$NODE_LOG"
check "SIGTERM: 'stopped' logged" grep -q 'sanad: stopped' "$NODE_LOG"
code=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$BASE/healthz")
check "the port is closed after the stop (got $code)" test "$code" = 000

start_node "$TMP/plain"
kill -INT "$NODE_PID"
wait_exit "$NODE_PID"
check "SIGINT: exit 0 (got $STOP_RC)" test "$STOP_RC" = 0
check "SIGINT: 'stopped' logged" grep -q 'sanad: stopped' "$NODE_LOG"

# SIGTERM while sign-ins (Argon2id, the slowest request) are in flight: each client gets its full
# answer or, if the request came too late, a refused connection; never a cut or a 5xx
start_node "$TMP/plain"
PIDS=
for i in 1 2 3 4 5 6; do
  curl -s -o "$TMP/inflight.$i.body" -w '%{http_code}\n' --max-time "$T_CURL" -H 'Content-Type: application/json' \
    --data-binary "{\"username\":\"admin\",\"password\":\"$ADMIN_PW\"}" "$BASE/api/v1/session" >"$TMP/inflight.$i" &
  PIDS="$PIDS $!"
done
sleep 0.05
kill -TERM "$NODE_PID"
wait_exit "$NODE_PID"
for p in $PIDS; do wait "$p"; done
check "SIGTERM during sign-ins: exit 0 (got $STOP_RC)" test "$STOP_RC" = 0
bad=0
for i in 1 2 3 4 5 6; do
  code=$(cat "$TMP/inflight.$i")
  case "$code" in
    201) jq -e '.token | length == 43' "$TMP/inflight.$i.body" >/dev/null || bad=$((bad + 1)) ;;
    000) ;;
    *) bad=$((bad + 1)) ;;
  esac
done
check "in-flight sign-ins got a whole 201 or no connection ($(cat "$TMP"/inflight.? | tr '\n' ' '))" test "$bad" = 0

# the data survives a restart
start_node "$TMP/plain"
T=$(login admin "$ADMIN_PW")
check "admin signs in after restarts" test -n "$T"
stop_node

# ---- two nodes at once ---------------------------------------------------------------------------------
ADMIN_PW_SAVED=$ADMIN_PW
start_node "$TMP/a"
A_PID=$NODE_PID A_LOG=$NODE_LOG A_BASE=$BASE A_PORT=$NODE_PORT
ADMIN_PW='second-node-password'
start_node "$TMP/b"
B_PID=$NODE_PID B_LOG=$NODE_LOG B_BASE=$BASE B_PORT=$NODE_PORT
check "the two nodes listen on different ports ($A_PORT, $B_PORT)" test "$A_PORT" != "$B_PORT"
check "the two nodes have different node ids" test \
  "$(sqlite3 "$TMP/a/sanad.db" "select value from meta where key='node_id'")" != \
  "$(sqlite3 "$TMP/b/sanad.db" "select value from meta where key='node_id'")"

BASE=$A_BASE
A_TOKEN=$(login admin "$ADMIN_PW_SAVED")
check "node A takes its own admin password" test -n "$A_TOKEN"
api POST /api/v1/session '{"username":"admin","password":"second-node-password"}'
expect_error 401 invalid_credentials "node A refuses node B's admin password"
BASE=$B_BASE
B_TOKEN=$(login admin second-node-password)
check "node B takes its own admin password" test -n "$B_TOKEN"

TOKEN=$A_TOKEN
BASE=$B_BASE
api GET /api/v1/me
expect_error 401 not_signed_in "node A's token means nothing on node B"
BASE=$A_BASE
api POST /api/v1/sites '{"name":"Only on A"}'
expect_status 201 "create a site on node A"
TOKEN=$B_TOKEN
BASE=$B_BASE
api GET /api/v1/sites
expect_status 200 "list sites on node B"
expect_json '[.items[] | select(.name == "Only on A")] | length' 0 "node B does not see node A's site"

# both answer while both run
for b in "$A_BASE" "$B_BASE"; do
  code=$(curl -s --max-time "$T_CURL" -o /dev/null -w '%{http_code}' "$b/healthz")
  check "$b answers while the other node runs (got $code)" test "$code" = 200
done
stop_node "$A_PID" "$A_LOG"
code=$(curl -s --max-time "$T_CURL" -o /dev/null -w '%{http_code}' "$B_BASE/healthz")
check "node B still answers after node A stopped (got $code)" test "$code" = 200
stop_node "$B_PID" "$B_LOG"

# a port already taken
start_node "$TMP/a"
sanad serve --data "$TMP/b" --listen "127.0.0.1:$NODE_PORT"
expect_rc_nonzero "serving on a port that is in use fails"
expect_output err "cannot listen on 127.0.0.1:$NODE_PORT" "the message names the address"
stop_node

done_testing
