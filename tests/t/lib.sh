# lib.sh — shared harness for the integration scripts tests/t/t*.sh (POSIX sh, curl, jq, sqlite3).
#
# Source it first thing:  . "$(dirname "$0")/lib.sh"
# It gives the script a private temp dir ($TMP, removed on exit), starts and stops real `sanad serve`
# nodes on free 127.0.0.1 ports, sends API requests with curl, and counts assertions git-style:
# every check prints "ok N - what" or "not ok N - what" (with "#" detail lines), and done_testing prints
# "# N passed, M failed" and exits 1 when anything failed. Whatever the script started is killed on exit.
#
# Environment: SANAD_BIN (required) the binary under test; SANAD_SANITIZED=1 makes every timeout
# generous (ASan/UBSan builds run several times slower); TEST_VERBOSE=1 prints each request.

: "${SANAD_BIN:?set SANAD_BIN to the sanad binary under test}"
case "$SANAD_BIN" in /*) ;; *) SANAD_BIN=$(pwd)/$SANAD_BIN ;; esac
export SANAD_BIN
unset SANAD_DATA
# the API is on loopback: never let a proxy from the environment sit in between
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

TEST_NAME=$(basename "$0" .sh)
TEST_DIR=$(cd "$(dirname "$0")" && pwd)
SRC_DIR=$(cd "$TEST_DIR/../.." && pwd)

# timeouts in seconds; sanitizer builds are much slower, Argon2id especially
if [ "${SANAD_SANITIZED:-0}" = 1 ]; then
  T_SCALE=6
else
  T_SCALE=1
fi
T_START=$((10 * T_SCALE))      # a node must log "listening on" within this
T_STOP=$((15 * T_SCALE))       # ... and exit within this after SIGTERM (the server drains up to 10 s)
T_CURL=$((10 * T_SCALE))       # one HTTP request
T_CMD=$((30 * T_SCALE))        # one CLI command

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sanad-$TEST_NAME.XXXXXX") || exit 1
TMP=$(cd "$TMP" && pwd)
: >"$TMP/.pids"
TEST_DONE=0

ADMIN_USER='admin'
ADMIN_PW='admin-password-0123'
TOKEN=

lib_cleanup() {
  _rc=$?
  trap - EXIT INT TERM HUP
  trap '' PIPE    # the reader may be gone (e.g. "| head"): cleaning up matters more than reporting
  for _pid in $(cat "$TMP/.pids" 2>/dev/null); do
    if kill -0 "$_pid" 2>/dev/null; then
      echo "# cleanup: killing sanad process $_pid still running" >&2
      kill -TERM "$_pid" 2>/dev/null
      _i=0
      while kill -0 "$_pid" 2>/dev/null && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
      kill -KILL "$_pid" 2>/dev/null
      wait "$_pid" 2>/dev/null
    fi
  done
  if [ "$TEST_DONE" != 1 ]; then
    echo "not ok - $TEST_NAME ended before done_testing (exit $_rc)"
    _rc=1
  fi
  if [ -n "${TEST_KEEP:-}" ]; then echo "# kept $TMP"; else rm -rf "$TMP"; fi
  exit $_rc
}
trap lib_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# ---------------------------------------------------------------------------------------------------
# Counting and reporting

# Counts live in shell variables; a failure recorded inside a subshell (e.g. login in $(...)) is
# appended to $TMP/.subshell-failures so that done_testing still counts it.
PASS_N=0
FAIL_N=0

# ok WHAT: record a passed check.
ok() {
  PASS_N=$((PASS_N + 1))
  echo "ok $((PASS_N + FAIL_N)) - $*"
}

# not_ok WHAT [DETAIL...]: record a failed check; each DETAIL is printed as a "#" line.
not_ok() {
  FAIL_N=$((FAIL_N + 1))
  echo "not ok $((PASS_N + FAIL_N)) - $1"
  shift
  for _d in "$@"; do printf '%s\n' "$_d" | sed 's/^/#   /' | head -40; done
}

# not_ok_subshell WHAT [DETAIL...]: not_ok for code that may run in a subshell (printed on stderr).
not_ok_subshell() {
  echo . >>"$TMP/.subshell-failures"
  {
    echo "not ok - $1"
    shift
    for _d in "$@"; do printf '%s\n' "$_d" | sed 's/^/#   /' | head -40; done
  } >&2
}

# check WHAT CMD [ARGS...]: ok when CMD succeeds.
check() {
  _what=$1
  shift
  if "$@"; then ok "$_what"; else not_ok "$_what" "command failed: $*"; fi
}

# check_not WHAT CMD [ARGS...]: ok when CMD fails.
check_not() {
  _what=$1
  shift
  if "$@"; then not_ok "$_what" "command unexpectedly succeeded: $*"; else ok "$_what"; fi
}

# test_expect_success WHAT 'shell code': git-style; ok when the code exits 0.
test_expect_success() {
  if (eval "$2") >"$TMP/.expect.out" 2>&1; then
    ok "$1"
  else
    not_ok "$1" "$(cat "$TMP/.expect.out")"
  fi
}

# skip WHAT REASON: note a check that cannot run here (counts as passed, says why).
skip() {
  PASS_N=$((PASS_N + 1))
  echo "ok $((PASS_N + FAIL_N)) - # SKIP $1: $2"
}

# done_testing: print the summary and exit 0 when all passed, 1 otherwise.
done_testing() {
  _nf=$((FAIL_N + $(cat "$TMP/.subshell-failures" 2>/dev/null | wc -l)))
  echo "# $PASS_N passed, $_nf failed"
  TEST_DONE=1
  [ "$_nf" -eq 0 ] && [ "$PASS_N" -gt 0 ] && exit 0
  exit 1
}

# bail WHAT [DETAIL]: a failure that makes the rest of the script meaningless.
bail() {
  not_ok "$@"
  echo "Bail out! $1"
  if [ -n "${NODE_LOG:-}" ] && [ -f "$NODE_LOG" ]; then
    echo "# last lines of $NODE_LOG:"
    tail -20 "$NODE_LOG" | sed 's/^/#   /'
  fi
  done_testing
}

# ---------------------------------------------------------------------------------------------------
# Running the CLI

# run_cmd CMD [ARGS...]: run a command with a time limit; sets RC, OUT (stdout) and ERR (stderr),
# also kept in $TMP/.out and $TMP/.err.
run_cmd() {
  timeout -k 5 "$T_CMD" "$@" >"$TMP/.out" 2>"$TMP/.err" </dev/null
  RC=$?
  OUT=$(cat "$TMP/.out")
  ERR=$(cat "$TMP/.err")
  [ -n "${TEST_VERBOSE:-}" ] && echo "# \$ $* -> $RC" >&2
  return 0
}

# sanad ARGS...: run_cmd "$SANAD_BIN" ARGS...
sanad() {
  run_cmd "$SANAD_BIN" "$@"
}

# expect_rc N WHAT: the last run_cmd exited with N.
expect_rc() {
  if [ "$RC" = "$1" ]; then
    ok "$2 (exit $1)"
  else
    not_ok "$2 (exit $1)" "got exit $RC" "stdout: $OUT" "stderr: $ERR"
  fi
}

# expect_rc_nonzero WHAT: the last run_cmd failed (and did not time out or crash with a signal).
expect_rc_nonzero() {
  if [ "$RC" -ne 0 ] && [ "$RC" -lt 124 ]; then
    ok "$1 (exit $RC)"
  else
    not_ok "$1 (non-zero exit)" "got exit $RC" "stdout: $OUT" "stderr: $ERR"
  fi
}

# expect_output STREAM ERE WHAT: stdout ("out") or stderr ("err") of the last run_cmd matches ERE.
expect_output() {
  if [ "$1" = out ]; then _f=$TMP/.out; _s=$OUT; else _f=$TMP/.err; _s=$ERR; fi
  if grep -Eq -- "$2" "$_f"; then
    ok "$3"
  else
    not_ok "$3" "$1 does not match /$2/" "$1: $_s"
  fi
}

# expect_no_output STREAM ERE WHAT: stdout or stderr of the last run_cmd does not match ERE.
expect_no_output() {
  if [ "$1" = out ]; then _f=$TMP/.out; _s=$OUT; else _f=$TMP/.err; _s=$ERR; fi
  if grep -Eq -- "$2" "$_f"; then
    not_ok "$3" "$1 matches /$2/" "$1: $_s"
  else
    ok "$3"
  fi
}

# ---------------------------------------------------------------------------------------------------
# Nodes

# write_file PATH CONTENT: CONTENT plus a newline into PATH (mode 0600).
write_file() {
  (umask 077 && printf '%s\n' "$2" >"$1")
}

# init_node DIR: `sanad init` DIR with the admin password $ADMIN_PW (from a file).
init_node() {
  write_file "$TMP/.admin.pw" "$ADMIN_PW"
  sanad init --data "$1" --admin "$ADMIN_USER" --admin-password-file "$TMP/.admin.pw"
  [ "$RC" = 0 ] || bail "sanad init --data $1" "exit $RC" "$ERR"
}

# start_node [DIR [SERVE-ARGS...]]: init DIR when it has no database, then serve it on a free loopback
# port in the background. Sets NODE_DIR, NODE_PID, NODE_LOG, NODE_PORT and exports BASE
# (http[s]://127.0.0.1:PORT); returns once /healthz answers 200. Several nodes may run at once: save
# these variables before starting the next one.
start_node() {
  NODE_DIR=${1:-$TMP/node}
  [ $# -gt 0 ] && shift
  [ -e "$NODE_DIR/sanad.db" ] || init_node "$NODE_DIR"
  NODE_LOG=$TMP/node.$(date +%s%N).log
  : >"$NODE_LOG"
  "$SANAD_BIN" serve --data "$NODE_DIR" --listen 127.0.0.1:0 "$@" </dev/null >"$NODE_LOG" 2>&1 &
  NODE_PID=$!
  echo "$NODE_PID" >>"$TMP/.pids"
  _i=0
  NODE_PORT=
  while [ $_i -lt $((T_START * 20)) ]; do
    NODE_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$NODE_LOG" | head -1)
    [ -n "$NODE_PORT" ] && break
    kill -0 "$NODE_PID" 2>/dev/null || break
    sleep 0.05
    _i=$((_i + 1))
  done
  if [ -z "$NODE_PORT" ]; then
    bail "start_node: sanad serve --data $NODE_DIR did not log 'listening on 127.0.0.1:PORT'" "$(cat "$NODE_LOG")"
  fi
  if grep -q 'listening on .*(https' "$NODE_LOG"; then _scheme=https; else _scheme=http; fi
  BASE=$_scheme://127.0.0.1:$NODE_PORT
  export BASE
  _i=0
  while :; do
    _code=$(curl -sk --max-time 2 -o /dev/null -w '%{http_code}' "$BASE/healthz" 2>/dev/null)
    [ "$_code" = 200 ] && break
    _i=$((_i + 1))
    if [ $_i -ge $((T_START * 10)) ] || ! kill -0 "$NODE_PID" 2>/dev/null; then
      bail "start_node: $BASE/healthz never answered 200 (last: $_code)" "$(cat "$NODE_LOG")"
    fi
    sleep 0.1
  done
  [ -n "${TEST_VERBOSE:-}" ] && echo "# node $NODE_PID serving $NODE_DIR at $BASE" >&2
  return 0
}

# wait_exit PID: wait up to $T_STOP seconds for PID to end; sets STOP_RC (its exit status, or
# "timeout" after killing it).
wait_exit() {
  _i=0
  while kill -0 "$1" 2>/dev/null && [ $_i -lt $((T_STOP * 10)) ]; do sleep 0.1; _i=$((_i + 1)); done
  if kill -0 "$1" 2>/dev/null; then
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    STOP_RC=timeout
  else
    wait "$1"
    STOP_RC=$?
  fi
  # reaped: forget the pid, so that cleanup can never signal a process that reused it
  grep -vx "$1" "$TMP/.pids" >"$TMP/.pids.new"
  mv "$TMP/.pids.new" "$TMP/.pids"
}

# stop_node [PID [LOG]]: SIGTERM the node (default: the last started) and check it exits 0 and logs
# "stopped".
stop_node() {
  _pid=${1:-$NODE_PID}
  _log=${2:-$NODE_LOG}
  kill -TERM "$_pid" 2>/dev/null
  wait_exit "$_pid"
  if [ "$STOP_RC" = 0 ] && grep -q 'sanad: stopped' "$_log"; then
    ok "node $_pid stopped cleanly on SIGTERM (exit 0, 'stopped' logged)"
  else
    not_ok "node $_pid stopped cleanly on SIGTERM" "exit: $STOP_RC" "$(tail -20 "$_log")"
  fi
}

# ---------------------------------------------------------------------------------------------------
# HTTP

# api METHOD PATH [JSON [CURL-ARGS...]]: send a request to $BASE. With a non-empty JSON it is sent
# as the body with Content-Type: application/json. $TOKEN, when set, goes in "Authorization: Bearer".
# Sets STATUS (000 when no HTTP answer came) and BODY; headers are in $TMP/.headers (see header),
# the body in $TMP/.body. Extra CURL-ARGS (e.g. -b cookie, -H header, --data-binary @file) follow.
api() {
  API_METHOD=$1
  API_PATH=$2
  _json=${3-}
  [ $# -ge 3 ] && shift 3 || shift $#
  set -- -sS -k -o "$TMP/.body" -D "$TMP/.headers" -w '%{http_code}' --max-time "$T_CURL" \
    -X "$API_METHOD" -H 'Expect:' "$@"
  [ -n "${TOKEN:-}" ] && set -- "$@" -H "Authorization: Bearer $TOKEN"
  [ -n "$_json" ] && set -- "$@" -H 'Content-Type: application/json' --data-binary "$_json"
  : >"$TMP/.body"
  : >"$TMP/.headers"
  STATUS=$(curl "$@" "$BASE$API_PATH" 2>"$TMP/.curlerr")
  CURL_RC=$?
  [ -n "$STATUS" ] || STATUS=000
  BODY=$(cat "$TMP/.body")
  [ -n "${TEST_VERBOSE:-}" ] && echo "# $API_METHOD $API_PATH -> $STATUS $BODY" >&2
  return 0
}

# header NAME: the value of response header NAME of the last api call (last one when repeated;
# case-insensitive name; CR stripped).
header() {
  tr -d '\r' <"$TMP/.headers" | awk -v n="$1" '
    BEGIN { n = tolower(n) }
    /^HTTP\// { v = ""; found = 0 }
    { i = index($0, ":"); if (i > 0 && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); found = 1 } }
    END { if (found) print v }'
}

# jqb EXPR: EXPR (jq -r) applied to the last body; prints "(not json)" when the body is not JSON.
jqb() {
  printf '%s' "$BODY" | jq -r "$1" 2>/dev/null || echo "(not json)"
}

# expect_status N [WHAT]: the last api call answered N.
expect_status() {
  _what=${2:-"$API_METHOD $API_PATH"}
  if [ "$STATUS" = "$1" ]; then
    ok "$_what -> $1"
  else
    not_ok "$_what -> $1" "got $STATUS (curl exit $CURL_RC $(cat "$TMP/.curlerr"))" "body: $(printf '%s' "$BODY" | head -c 600)"
  fi
}

# expect_json JQ-EXPR EXPECTED [WHAT]: jq -r JQ-EXPR on the last body prints EXPECTED.
expect_json() {
  _got=$(jqb "$1")
  _what=${3:-"$API_METHOD $API_PATH: $1 == $2"}
  if [ "$_got" = "$2" ]; then
    ok "$_what"
  else
    not_ok "$_what" "expected: $2" "got:      $_got" "body: $(printf '%s' "$BODY" | head -c 600)"
  fi
}

# expect_error STATUS CODE [WHAT]: the last call answered STATUS with the JSON error envelope
# {"error":{"code":CODE,"message":non-empty string}}.
expect_error() {
  _what=${3:-"$API_METHOD $API_PATH"}
  # one jq run (jq costs ~30 ms to start): "CODE MESSAGE-OK"
  _r=$(jqb '"\(.error.code) \(if (.error.message | type) == "string" and (.error.message | length) > 0 then "yes" else "no" end)"')
  _code=${_r% *}
  _msg=${_r##* }
  if [ "$STATUS" = "$1" ] && [ "$_code" = "$2" ] && [ "$_msg" = yes ]; then
    ok "$_what -> $1 $2"
  else
    not_ok "$_what -> $1 $2" "got $STATUS code=$_code message-ok=$_msg (curl exit $CURL_RC)" \
      "body: $(printf '%s' "$BODY" | head -c 600)"
  fi
}

# expect_header NAME ERE [WHAT]: response header NAME of the last call matches ERE.
expect_header() {
  _v=$(header "$1")
  _what=${3:-"$API_METHOD $API_PATH: header $1 ~ /$2/"}
  if printf '%s' "$_v" | grep -Eq -- "$2"; then
    ok "$_what"
  else
    not_ok "$_what" "$1: ${_v:-(absent)}"
  fi
}

# login USER PASS: sign in; prints the session token (empty, and a "not ok", when sign-in fails).
# Also leaves the full answer in $TMP/.login.json. Safe in $(...).
login() {
  _saved_token=$TOKEN
  TOKEN=
  case "$1$2" in
    *[\"\\]*|*[![:print:]]*) _json=$(jq -cn --arg u "$1" --arg p "$2" '{username: $u, password: $p}') ;;
    *) _json="{\"username\":\"$1\",\"password\":\"$2\"}" ;;   # no escaping needed (and no jq start-up)
  esac
  api POST /api/v1/session "$_json"
  TOKEN=$_saved_token
  printf '%s' "$BODY" >"$TMP/.login.json"
  if [ "$STATUS" != 201 ]; then
    not_ok_subshell "login as $1" "got $STATUS: $BODY"
    return 1
  fi
  # the token is base64url, so sed can pick it out
  printf '%s' "$BODY" | sed -n 's/.*"token":"\([A-Za-z0-9_-]*\)".*/\1/p'
}

# node_alive: /healthz still answers 200 {"status":"ok"}.
node_alive() {
  _s=$(curl -sk --max-time "$T_CURL" "$BASE/healthz" 2>/dev/null)
  [ "$_s" = '{"status":"ok"}' ] && kill -0 "$NODE_PID" 2>/dev/null
}

# json_str S: S as a JSON string literal.
json_str() {
  jq -cn --arg s "$1" '$s'
}
