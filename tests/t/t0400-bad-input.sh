#!/bin/sh
# t0400-bad-input.sh — hostile and malformed requests: bad JSON of every kind, bodies and headers over
# their limits, lying Content-Length, wrong types and unknown fields, invalid UTF-8 and NUL, path
# traversal on the static files, SQL metacharacters in every string field. Each must get a 4xx with the
# JSON error envelope (or be stored verbatim), and afterwards the node, its database and its audit
# chain must be intact.
. "$(dirname "$0")/lib.sh"

start_node
TOKEN=$(login admin "$ADMIN_PW")
[ -n "$TOKEN" ] || bail "sign in as admin"
ADMIN_ID=$(sqlite3 "$NODE_DIR/sanad.db" "select id from users where username = 'admin'")

# rep S N: S repeated N times.
rep() {
  case "$1" in
    ?) head -c "$2" /dev/zero | tr '\0' "$1" ;;
    *) printf "%.0s$1" $(seq "$2") ;;
  esac
}
# post_file METHOD PATH FILE [CURL-ARGS]: send FILE's bytes as a JSON body.
post_file() {
  _m=$1 _p=$2 _f=$3
  shift 3
  api "$_m" "$_p" "" -H 'Content-Type: application/json' --data-binary "@$_f" "$@"
}

# ---- malformed JSON ---------------------------------------------------------------------------------
api POST /api/v1/session '{"username":'
expect_error 400 invalid_json "truncated JSON"
api POST /api/v1/session '{"username":"admin","password":"x",}'
expect_error 400 invalid_json "trailing comma"
api POST /api/v1/session "{'username':'admin'}"
expect_error 400 invalid_json "single quotes"
api POST /api/v1/session '{"username":"admin","password":"xxxxxxxxxxxx"} {"x":1}'
expect_error 400 invalid_json "two JSON values"
api POST /api/v1/session '{"username":"admin","password":"xxxxxxxxxxxx"}garbage'
expect_error 400 invalid_json "trailing garbage"
api POST /api/v1/session '{"username":"admin","password":NaN}'
expect_error 400 invalid_json "NaN"
api POST /api/v1/session '   '
expect_error 400 invalid_json "whitespace-only body"
api POST /api/v1/session "" -H 'Content-Type: application/json' --data-binary ''
expect_error 400 invalid_json "empty body"
for v in '[]' '"admin"' 42 null true; do
  api POST /api/v1/session "$v"
  expect_error 400 expected_object "top-level $v"
done

# ---- Content-Type ----------------------------------------------------------------------------------
GOOD_LOGIN=$(jq -cn --arg p "$ADMIN_PW" '{username:"admin",password:$p}')
api POST /api/v1/session "" -H 'Content-Type:' --data-binary "$GOOD_LOGIN"
expect_error 415 unsupported_media_type "no Content-Type"
api POST /api/v1/session "" --data-binary "$GOOD_LOGIN"
expect_error 415 unsupported_media_type "form-urlencoded (curl's default)"
api POST /api/v1/session "" -H 'Content-Type: text/plain' --data-binary "$GOOD_LOGIN"
expect_error 415 unsupported_media_type "text/plain"
api POST /api/v1/session "" -H 'Content-Type: application/jsonp' --data-binary "$GOOD_LOGIN"
expect_error 415 unsupported_media_type "application/jsonp"
api POST /api/v1/session "" -H 'Content-Type: multipart/form-data; boundary=x' --data-binary "$GOOD_LOGIN"
expect_error 415 unsupported_media_type "multipart/form-data"
api POST /api/v1/session "" -H 'Content-Type:' --data-binary ''
expect_error 415 unsupported_media_type "no Content-Type and no body"
api POST /api/v1/session "" -H 'Content-Type: application/json; charset=utf-8' --data-binary "$GOOD_LOGIN"
expect_status 201 "application/json; charset=utf-8 is accepted"

# ---- nesting ---------------------------------------------------------------------------------------
# depth counts the outer object: {"username": + N-1 brackets = depth N
deep() {
  printf '{"username":%s%s,"password":"xxxxxxxxxxxx"}' "$(rep '[' $(($1 - 1)))" "$(rep ']' $(($1 - 1)))"
}
api POST /api/v1/session "$(deep 40)"
expect_error 400 json_too_deep "JSON nested 40 deep"
api POST /api/v1/session "$(deep 33)"
expect_error 400 json_too_deep "JSON nested 33 deep"
api POST /api/v1/session "$(deep 32)"
expect_error 400 wrong_type "JSON nested 32 deep is parsed (then username is not a string)"
rep '[' 16000 >"$TMP/deep16k"
post_file POST /api/v1/users "$TMP/deep16k"
expect_error 400 json_too_deep "16000 open brackets"
rep '{"a":' 3000 >"$TMP/deepobj"
post_file POST /api/v1/users "$TMP/deepobj"
expect_error 400 json_too_deep "3000 nested objects"
api POST /api/v1/session "{\"username\":\"$(rep '[' 40)\",\"password\":\"xxxxxxxxxxxx\"}"
expect_error 401 invalid_credentials "40 brackets inside a string are not nesting"

# ---- types, unknown and missing fields --------------------------------------------------------------
api POST /api/v1/session '{"username":123,"password":"xxxxxxxxxxxx"}'
expect_error 400 wrong_type "number for a string"
api POST /api/v1/session '{"username":null,"password":"xxxxxxxxxxxx"}'
expect_error 400 wrong_type "null for a required string"
api POST /api/v1/session '{"username":{"$ne":""},"password":"xxxxxxxxxxxx"}'
expect_error 400 wrong_type "object for a string (operator injection)"
api POST /api/v1/session '{"username":["admin"],"password":"xxxxxxxxxxxx"}'
expect_error 400 wrong_type "array for a string"
api POST /api/v1/session '{"username":"admin","password":true}'
expect_error 400 wrong_type "boolean for a string"
api POST /api/v1/users '{"username":"t1","role":"viewer","password":"xxxxxxxxxxxx","disabled":"yes"}'
expect_error 400 wrong_type "string for a boolean"
api POST /api/v1/users '{"username":"t1","role":"viewer","password":"xxxxxxxxxxxx","disabled":1}'
expect_error 400 wrong_type "number for a boolean"
api POST /api/v1/users '{"username":"t1","role":"viewer","password":"xxxxxxxxxxxx","sites":"abc"}'
expect_error 400 wrong_type "string for an array"
api POST /api/v1/users '{"username":"t1","role":"viewer","password":"xxxxxxxxxxxx","sites":[1]}'
expect_error 400 wrong_type "array of numbers for an array of strings"
api POST /api/v1/users "{\"username\":\"t1\",\"role\":\"viewer\",\"password\":\"xxxxxxxxxxxx\",\"sites\":[$(rep '"a",' 64)\"a\"]}"
expect_error 400 field_too_long "65 sites"
api PATCH "/api/v1/users/$ADMIN_ID" '{"role":["admin"]}'
expect_error 400 wrong_type "PATCH array for a string"
api PATCH "/api/v1/users/$ADMIN_ID" '{"full_name":12}'
expect_error 400 wrong_type "PATCH number for a string"

api POST /api/v1/session "$(jq -cn --arg p "$ADMIN_PW" '{username:"admin",password:$p,remember:true}')"
expect_error 400 unknown_field "unknown field in sign-in (even with the right password)"
api POST /api/v1/users '{"username":"t1","role":"viewer","password":"xxxxxxxxxxxx","is_admin":true}'
expect_error 400 unknown_field "unknown field in user create"
api PATCH "/api/v1/users/$ADMIN_ID" '{"username":"root"}'
expect_error 400 unknown_field "username is not a PATCH field"
api PATCH "/api/v1/users/$ADMIN_ID" '{"password_hash":"x"}'
expect_error 400 unknown_field "password_hash is not a PATCH field"
api POST /api/v1/sites '{"name":"S","id":"01234567-89ab-7def-8123-456789abcdef"}'
expect_error 400 unknown_field "id is not a site field"

api POST /api/v1/session '{"username":"admin"}'
expect_error 400 missing_field "sign-in without password"
api POST /api/v1/users '{"username":"t1","password":"xxxxxxxxxxxx"}'
expect_error 400 missing_field "user without role"
api POST /api/v1/sites '{}'
expect_error 400 missing_field "site without name"

api POST /api/v1/session '{"username":"admin","username":"x","password":"xxxxxxxxxxxx"}'
expect_error 400 invalid_json "duplicate keys"
api POST /api/v1/sites '{"name":"Dup A","name":"Dup B"}'
expect_error 400 invalid_json "duplicate keys in a site"

# ---- UTF-8 and NUL ---------------------------------------------------------------------------------
printf '{"username":"\377\376","password":"xxxxxxxxxxxx"}' >"$TMP/u8-1"
post_file POST /api/v1/session "$TMP/u8-1"
expect_error 400 invalid_utf8 "bytes FF FE"
printf '{"name":"\300\257etc"}' >"$TMP/u8-2"
post_file POST /api/v1/sites "$TMP/u8-2"
expect_error 400 invalid_utf8 "overlong encoding C0 AF"
printf '{"name":"\355\240\200"}' >"$TMP/u8-3"
post_file POST /api/v1/sites "$TMP/u8-3"
expect_error 400 invalid_utf8 "UTF-8-encoded surrogate ED A0 80"
printf '{"name":"abc\342\202"}' >"$TMP/u8-4"
post_file POST /api/v1/sites "$TMP/u8-4"
expect_error 400 invalid_utf8 "truncated multibyte sequence"
printf '{"na\377me":"x"}' >"$TMP/u8-5"
post_file POST /api/v1/sites "$TMP/u8-5"
expect_error 400 invalid_utf8 "invalid UTF-8 in a key"

api POST /api/v1/session '{"username":"ad\u0000min","password":"xxxxxxxxxxxx"}'
check "\\u0000 in a username is refused with 400 (got $STATUS $(jqb .error.code))" test "$STATUS" = 400
api POST /api/v1/sites '{"name":"Clinic\u0000Evil"}'
check "\\u0000 in a site name is refused with 400 (got $STATUS $(jqb .error.code))" test "$STATUS" = 400
api POST /api/v1/users '{"username":"t1","role":"viewer","password":"xxxxx\u0000xxxxxx"}'
check "\\u0000 in a password is refused with 400 (got $STATUS $(jqb .error.code))" test "$STATUS" = 400
api PATCH "/api/v1/users/$ADMIN_ID" '{"full_name":"A\u0000B"}'
check "\\u0000 in a full name is refused with 400 (got $STATUS $(jqb .error.code))" test "$STATUS" = 400
api POST /api/v1/sites '{"name":"\ud800"}'
expect_error 400 invalid_json "lone surrogate escape"
check "no site with a NUL or surrogate was stored" \
  test "$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from sites where name like 'Clinic%Evil' or instr(name, char(0)) > 0")" = 0

# ---- field limits ----------------------------------------------------------------------------------
api POST /api/v1/session "{\"username\":\"$(rep a 257)\",\"password\":\"xxxxxxxxxxxx\"}"
expect_error 400 field_too_long "sign-in username of 257 bytes"
api POST /api/v1/session "{\"username\":\"admin\",\"password\":\"$(rep a 1025)\"}"
expect_error 400 field_too_long "sign-in password of 1025 bytes"
api POST /api/v1/users "{\"username\":\"$(rep u 65)\",\"role\":\"viewer\",\"password\":\"xxxxxxxxxxxx\"}"
expect_error 400 field_too_long "username of 65 bytes"
api POST /api/v1/users "{\"username\":\"$(rep u 64)\",\"role\":\"viewer\",\"password\":\"xxxxxxxxxxxx\"}"
expect_status 201 "username of exactly 64 bytes"
api POST /api/v1/users "{\"username\":\"t-fn\",\"role\":\"viewer\",\"password\":\"xxxxxxxxxxxx\",\"full_name\":\"$(rep f 201)\"}"
expect_error 400 field_too_long "full_name of 201 bytes"
api POST /api/v1/users "{\"username\":\"t-fn\",\"role\":\"viewer\",\"password\":\"xxxxxxxxxxxx\",\"full_name\":\"$(rep م 101)\"}"
expect_error 400 field_too_long "full_name of 101 Arabic letters (202 bytes)"
AR100=$(rep م 100)
api POST /api/v1/users "{\"username\":\"t-fn\",\"role\":\"viewer\",\"password\":\"xxxxxxxxxxxx\",\"full_name\":\"$AR100\"}"
expect_status 201 "full_name of 100 Arabic letters (200 bytes)"
expect_json .full_name "$AR100" "the Arabic name comes back unchanged"
api POST /api/v1/users "{\"username\":\"t-pw\",\"role\":\"viewer\",\"password\":\"$(rep p 257)\"}"
expect_error 400 field_too_long "password of 257 bytes"
api POST /api/v1/users "{\"username\":\"t-role\",\"role\":\"$(rep r 17)\",\"password\":\"xxxxxxxxxxxx\"}"
expect_error 400 field_too_long "role of 17 bytes"
api POST /api/v1/sites "{\"name\":\"$(rep s 121)\"}"
expect_error 400 field_too_long "site name of 121 bytes"
api POST /api/v1/sites "{\"name\":\"$(rep s 120)\"}"
expect_status 201 "site name of exactly 120 bytes"
api POST /api/v1/sites '{"name":""}'
check "an empty site name is refused with 400 (got $STATUS $(jqb .error.code))" test "$STATUS" = 400
api POST /api/v1/users '{"username":"","role":"viewer","password":"xxxxxxxxxxxx"}'
expect_error 400 invalid_username "empty username"

# ---- body size and Content-Length ------------------------------------------------------------------
rep a 5000 >"$TMP/5k"
post_file POST /api/v1/session "$TMP/5k"
expect_error 413 body_too_large "sign-in body over 4096 bytes"
post_file POST /api/v1/session "$TMP/5k" -H 'Transfer-Encoding: chunked'
expect_error 413 body_too_large "chunked sign-in body over 4096 bytes (no Content-Length)"
rep a 20000 >"$TMP/20k"
post_file POST /api/v1/users "$TMP/20k"
expect_error 413 body_too_large "user body over 16384 bytes"
post_file PATCH "/api/v1/users/$ADMIN_ID" "$TMP/20k"
expect_error 413 body_too_large "PATCH body over 16384 bytes"
post_file POST /api/v1/sites "$TMP/5k"
expect_error 413 body_too_large "site body over 4096 bytes"
api GET /api/v1/me "" -H 'Content-Type: application/json' --data-binary '{"x":1}'
expect_error 413 body_too_large "a body on a route that takes none"
rep a 2000000 >"$TMP/2m"
post_file POST /api/v1/users "$TMP/2m"
expect_error 413 body_too_large "2 MB body"
check "node alive after oversize bodies" node_alive
api POST /api/v1/session "" -H 'Content-Type: application/json' -H 'Content-Length: 999999999'
expect_error 413 body_too_large "Content-Length 999999999 announced, nothing sent"
api POST /api/v1/session "" -H 'Content-Type: application/json' -H 'Content-Length: 99999999999999999999'
check "Content-Length beyond 64 bits is refused with 4xx (got $STATUS)" sh -c "[ $STATUS -ge 400 ] && [ $STATUS -lt 500 ]"
api POST /api/v1/session "" -H 'Content-Type: application/json' -H 'Content-Length: -1'
check "negative Content-Length is refused with 4xx (got $STATUS)" sh -c "[ $STATUS -ge 400 ] && [ $STATUS -lt 500 ]"
api POST /api/v1/session "$GOOD_LOGIN" -H 'Content-Length: 5'
check "Content-Length shorter than the body: 4xx, not a sign-in (got $STATUS)" sh -c "[ $STATUS -ge 400 ] && [ $STATUS -lt 500 ]"
api POST /api/v1/session '{"a":1}' -H 'Content-Length: 100' --max-time 2
check "Content-Length longer than the body: no sign-in, no 5xx (got $STATUS)" \
  sh -c "[ $STATUS = 000 ] || { [ $STATUS -ge 400 ] && [ $STATUS -lt 500 ]; }"
check "node alive after lying Content-Length" node_alive

# ---- huge headers and request lines ------------------------------------------------------------------
api GET /healthz "" -H "X-Big: $(rep b 40000)"
check "a 40 KiB header is refused with 4xx (got $STATUS)" sh -c "[ $STATUS -ge 400 ] && [ $STATUS -lt 500 ]"
for i in $(seq 1500); do printf 'X-H%d: %s\n' "$i" 0123456789012345678901234567890; done >"$TMP/headers.txt"
api GET /healthz "" -H "@$TMP/headers.txt"
check "1500 headers (> 32 KiB) are refused with 4xx (got $STATUS)" sh -c "[ $STATUS -ge 400 ] && [ $STATUS -lt 500 ]"
api GET "/$(rep x 40000)"
check "a 40 KiB URL is refused with 4xx (got $STATUS)" sh -c "[ $STATUS -ge 400 ] && [ $STATUS -lt 500 ]"
api GET "/api/v1/me" "" -H "Authorization: Bearer $(rep A 40000)"
check "a 40 KiB bearer token is refused with 4xx (got $STATUS)" sh -c "[ $STATUS -ge 400 ] && [ $STATUS -lt 500 ]"
api GET "/api/v1/me" "" -H "Authorization: Bearer $(rep A 2000)"
expect_error 401 not_signed_in "a 2000-byte bearer token"
check "node alive after huge headers" node_alive

# ---- path traversal on static files ------------------------------------------------------------------
for u in /../etc/passwd /../../../../etc/passwd /%2e%2e/%2e%2e/etc/passwd /%2e%2e/Makefile /web/../Makefile \
  //etc/passwd /..%2f..%2fetc%2fpasswd /index.html/../../etc/passwd /web/index.html /src/main.c \
  '/..\..\etc\passwd' /%252e%252e/etc/passwd /.git/config /etc/passwd; do
  api GET "$u" "" --path-as-is
  if [ "$STATUS" = 404 ] && ! grep -qE 'root:|VERSION :=|\[core\]|#include' "$TMP/.body"; then
    ok "GET $u -> 404, no file contents"
  else
    not_ok "GET $u -> 404, no file contents" "got $STATUS" "body: $(head -c 300 "$TMP/.body")"
  fi
done
api GET '/index.html%00.txt' "" --path-as-is
check "GET /index.html%00.txt (encoded NUL) is not served as index.html (got $STATUS)" \
  sh -c "[ $STATUS -ge 400 ] && [ $STATUS -lt 500 ]"
api POST /index.html
expect_error 405 method_not_allowed "static files are read-only"
api POST /index.html "" -H 'Content-Type: application/json' --data-binary '{}'
expect_error 405 method_not_allowed "static files are read-only (with a body)"
api POST /api/v1/nothing-here "" -H 'Content-Type: application/json' --data-binary '{}'
expect_error 404 no_such_endpoint "unknown API path (with a body)"

# ---- SQL metacharacters -------------------------------------------------------------------------------
SQL1="x'); DROP TABLE users;--"
SQL2='" OR 1=1 --'
SQL3="' OR '1'='1"
n=0
for sql in "$SQL1" "$SQL2" "$SQL3"; do
  n=$((n + 1))
  qs=$(json_str "$sql")
  # username: outside the allowed characters
  api POST /api/v1/users "{\"username\":$qs,\"role\":\"viewer\",\"password\":\"sql-password-1\"}"
  expect_error 400 invalid_username "SQL $n in username"
  # role: not a role
  api POST /api/v1/users "{\"username\":\"sqlr$n\",\"role\":$qs,\"password\":\"sql-password-1\"}"
  check "SQL $n in role is refused with 400 (got $STATUS $(jqb .error.code))" test "$STATUS" = 400
  # sites: not a site id
  api POST /api/v1/users "{\"username\":\"sqls$n\",\"role\":\"viewer\",\"password\":\"sql-password-1\",\"sites\":[$qs]}"
  expect_error 400 unknown_site "SQL $n in sites"
  # full_name and password: stored verbatim
  api POST /api/v1/users "{\"username\":\"sql$n\",\"role\":\"viewer\",\"password\":$(json_str "pw $sql"),\"full_name\":$qs}"
  expect_status 201 "SQL $n in full_name and password is accepted"
  expect_json .full_name "$sql" "SQL $n full_name comes back verbatim"
  uid=$(jqb .id)
  check "SQL $n full_name is stored verbatim" \
    test "$(sqlite3 "$NODE_DIR/sanad.db" "select full_name from users where username = 'sql$n'")" = "$sql"
  t=$(login "sql$n" "pw $sql")
  check "SQL $n password works verbatim for sign-in" test -n "$t"
  api POST /api/v1/session "$(jq -cn --arg u "$sql" '{username:$u,password:"whatever-password"}')"
  expect_error 401 invalid_credentials "SQL $n as a sign-in username"
  # PATCH
  api PATCH "/api/v1/users/$uid" "{\"full_name\":$(json_str "$sql$sql")}"
  expect_status 200 "SQL $n in PATCH full_name"
  expect_json .full_name "$sql$sql" "SQL $n PATCH full_name answered verbatim"
  api PATCH "/api/v1/users/$uid" "{\"role\":$qs}"
  check "SQL $n in PATCH role is refused with 400 (got $STATUS)" test "$STATUS" = 400
  # sites
  api POST /api/v1/sites "{\"name\":$(json_str "site $sql")}"
  expect_status 201 "SQL $n in a site name"
  expect_json .name "site $sql" "SQL $n site name comes back verbatim"
done
api PATCH "/api/v1/users/x'%29%3B%20DROP%20TABLE%20users%3B--" '{"full_name":"x"}'
expect_error 404 user_not_found "SQL in the {id} of PATCH"
api PATCH "/api/v1/users/%27%20OR%20%271%27%3D%271" '{"full_name":"everyone"}'
expect_error 404 user_not_found "OR 1=1 in the {id} of PATCH"
check "no account was renamed 'everyone'" \
  test "$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from users where full_name = 'everyone'")" = 0
api GET "/api/v1/audit?cursor=1%20OR%201%3D1"
expect_error 400 invalid_cursor "SQL in the audit cursor"
api GET "/api/v1/audit?limit=1%3B%20DROP%20TABLE%20audit_log"
expect_error 400 invalid_limit "SQL in the audit limit"
for l in 0 -1 501 abc 1e3 99999999999999999999999; do
  api GET "/api/v1/audit?limit=$l"
  expect_error 400 invalid_limit "audit limit=$l"
done
api GET "/api/v1/audit?cursor=-1"
expect_error 400 invalid_cursor "audit cursor=-1"

# ---- all still works ---------------------------------------------------------------------------------
check "node alive at the end" node_alive
api GET /api/v1/users
expect_status 200 "GET /users after all that"
N_API=$(jqb '.items | length')
N_DB=$(sqlite3 "$NODE_DIR/sanad.db" 'select count(*) from users')
check "GET /users lists every account in the database ($N_API = $N_DB)" test "$N_API" = "$N_DB"
check "the users table exists and has the SQL-named accounts" \
  test "$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from users where username in ('sql1','sql2','sql3')")" = 3
check "sqlite integrity_check is ok" test "$(sqlite3 "$NODE_DIR/sanad.db" 'pragma integrity_check')" = ok
TOKEN=$(login admin "$ADMIN_PW")
check "admin still signs in" test -n "$TOKEN"
check "server never logged a fatal error" sh -c "! grep -Eq ' (fatal|error) ' '$NODE_LOG'"
stop_node
sanad audit verify --data "$NODE_DIR"
expect_rc 0 "audit chain intact after the abuse"
done_testing
