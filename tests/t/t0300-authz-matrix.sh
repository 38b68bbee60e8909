#!/bin/sh
# t0300-authz-matrix.sh — every route in src/http/routes.c × every role (and no session) gets the
# answer its permission allows. The route table is parsed from the source, so a route added there
# without an entry in MATRIX below fails this test; which roles hold a permission comes from
# `sanad help roles` (printed from the same table the server checks), cross-checked against
# src/services/perm.c.
. "$(dirname "$0")/lib.sh"

ROUTES_C=$SRC_DIR/src/http/routes.c
PERM_C=$SRC_DIR/src/services/perm.c

# The expected permission of every route, the status a permitted caller gets, the concrete path to
# call and a valid body. Placeholders: @USER_ID@ a real user (the "m-target" account), @PATIENT_ID@ a
# real patient, @NEW_PATIENT_ID@ a patient created just for this one request (for deletes), @ROLE@ the
# caller's role (keeps created names unique), @APPOINTMENT_ID@ a real appointment, @TOMORROW@ tomorrow's
# date (YYYY-MM-DD, UTC: bookings are for times to come). The enrolment route is public but the code is
# made up, so its "success" is 401 invalid_code; the peer routes take no session at all, so every caller
# here gets 401 unknown_peer (t0800-peers.sh covers signed requests). @DOCUMENT_ID@ is a real document and
# @NEW_DOCUMENT_ID@ one uploaded just for this one request (to mark it entered in error); the upload route
# takes the file as a raw body with its own type, and the JSON body every request here carries is not one,
# so a permitted caller's "success" there is 415 unsupported_media_type (t0730-documents.sh uploads files).
# This node has no peer, so "sync now" answers a permitted caller 409 no_peer (t0800-peers.sh syncs).
# Format: METHOD|PATTERN|PERMISSION|SUCCESS-STATUS|PATH|BODY
MATRIX='GET|/healthz|public|200|/healthz|
POST|/api/v1/session|public|201|/api/v1/session|{"username":"m-target","password":"target-password-1"}
DELETE|/api/v1/session|session|204|/api/v1/session|
GET|/api/v1/me|session|200|/api/v1/me|
GET|/api/v1/users|users.manage|200|/api/v1/users|
POST|/api/v1/users|users.manage|201|/api/v1/users|{"username":"m-new-@ROLE@","role":"viewer","password":"new-password-123"}
PATCH|/api/v1/users/{id}|users.manage|200|/api/v1/users/@USER_ID@|{"full_name":"Target @ROLE@"}
GET|/api/v1/sites|sites.manage|200|/api/v1/sites|
POST|/api/v1/sites|sites.manage|201|/api/v1/sites|{"name":"Matrix site @ROLE@"}
GET|/api/v1/audit|audit.read|200|/api/v1/audit?limit=5|
POST|/api/v1/patients|patient.write|201|/api/v1/patients|{"given_name":"Matrix","family_name":"By @ROLE@","sex":"female"}
GET|/api/v1/patients|patient.read|200|/api/v1/patients?q=matrix|
POST|/api/v1/patients/match|patient.read|200|/api/v1/patients/match|{"given_name":"Matrix","family_name":"Patient"}
GET|/api/v1/patients/{id}|patient.read|200|/api/v1/patients/@PATIENT_ID@|
PATCH|/api/v1/patients/{id}|patient.write|200|/api/v1/patients/@PATIENT_ID@|{"middle_name":"@ROLE@"}
DELETE|/api/v1/patients/{id}|patient.delete|204|/api/v1/patients/@NEW_PATIENT_ID@|
GET|/api/v1/registration-fields|patient.read|200|/api/v1/registration-fields|
PUT|/api/v1/registration-fields|sites.manage|200|/api/v1/registration-fields|{}
GET|/api/v1/catalogues/{kind}|patient.read|200|/api/v1/catalogues/icd10?q=fever|
POST|/api/v1/patients/{id}/problems|clinical.write|201|/api/v1/patients/@PATIENT_ID@/problems|{"title":"Matrix @ROLE@"}
GET|/api/v1/patients/{id}/problems|clinical.read|200|/api/v1/patients/@PATIENT_ID@/problems|
GET|/api/v1/problems/{id}|clinical.read|200|/api/v1/problems/@PROBLEM_ID@|
PATCH|/api/v1/problems/{id}|clinical.write|200|/api/v1/problems/@PROBLEM_ID@|{"notes":"@ROLE@"}
POST|/api/v1/patients/{id}/allergies|clinical.write|201|/api/v1/patients/@PATIENT_ID@/allergies|{"substance":"Dust @ROLE@","verification":"reported"}
GET|/api/v1/patients/{id}/allergies|clinical.read|200|/api/v1/patients/@PATIENT_ID@/allergies|
GET|/api/v1/allergies/{id}|clinical.read|200|/api/v1/allergies/@ALLERGY_ID@|
PATCH|/api/v1/allergies/{id}|clinical.write|200|/api/v1/allergies/@ALLERGY_ID@|{"notes":"@ROLE@"}
POST|/api/v1/patients/{id}/medications|clinical.write|201|/api/v1/patients/@PATIENT_ID@/medications|{"name":"Matrix @ROLE@"}
GET|/api/v1/patients/{id}/medications|clinical.read|200|/api/v1/patients/@PATIENT_ID@/medications|
GET|/api/v1/medications/{id}|clinical.read|200|/api/v1/medications/@MEDICATION_ID@|
PATCH|/api/v1/medications/{id}|clinical.write|200|/api/v1/medications/@MEDICATION_ID@|{"notes":"@ROLE@"}
POST|/api/v1/patients/{id}/immunizations|clinical.write|201|/api/v1/patients/@PATIENT_ID@/immunizations|{"vaccine":"bcg","given_on":"2020-01-01"}
GET|/api/v1/patients/{id}/immunizations|clinical.read|200|/api/v1/patients/@PATIENT_ID@/immunizations|
GET|/api/v1/immunizations/{id}|clinical.read|200|/api/v1/immunizations/@IMMUNIZATION_ID@|
PATCH|/api/v1/immunizations/{id}|clinical.write|200|/api/v1/immunizations/@IMMUNIZATION_ID@|{"notes":"@ROLE@"}
GET|/api/v1/patients/{id}/immunizations/due|clinical.read|200|/api/v1/patients/@PATIENT_ID@/immunizations/due|
GET|/api/v1/patients/{id}/summary|clinical.read|200|/api/v1/patients/@PATIENT_ID@/summary|
GET|/api/v1/patients/{id}/timeline|clinical.read|200|/api/v1/patients/@PATIENT_ID@/timeline|
GET|/api/v1/immunization-schedule|clinical.read|200|/api/v1/immunization-schedule|
PUT|/api/v1/immunization-schedule|sites.manage|422|/api/v1/immunization-schedule|{"vaccines":[]}
GET|/api/v1/forms|clinical.read|200|/api/v1/forms|
POST|/api/v1/forms|forms.manage|201|/api/v1/forms|{"id":"matrix_@ROLE@","title":{"en":"M"},"fields":[{"name":"a","type":"boolean","label":{"en":"A"}}]}
POST|/api/v1/forms/import|forms.manage|201|/api/v1/forms/import|{"survey":"type,name,label\ninteger,n,N","settings":"form_id,form_title\nmatrix_xls_@ROLE@,M"}
GET|/api/v1/forms/{id}|clinical.read|200|/api/v1/forms/vitals|
PUT|/api/v1/forms/{id}|forms.manage|201|/api/v1/forms/@FORM_ID@|{"title":{"en":"M"},"fields":[{"name":"b","type":"boolean","label":{"en":"B"}}]}
GET|/api/v1/forms/{id}/versions|clinical.read|200|/api/v1/forms/vitals/versions|
POST|/api/v1/patients/{id}/encounters|clinical.write|201|/api/v1/patients/@PATIENT_ID@/encounters|{"type":"consultation"}
GET|/api/v1/patients/{id}/encounters|clinical.read|200|/api/v1/patients/@PATIENT_ID@/encounters|
GET|/api/v1/encounters/{id}|clinical.read|200|/api/v1/encounters/@ENCOUNTER_ID@|
PATCH|/api/v1/encounters/{id}|clinical.write|200|/api/v1/encounters/@ENCOUNTER_ID@|{"notes":"@ROLE@"}
POST|/api/v1/encounters/{id}/entries|clinical.write|201|/api/v1/encounters/@ENCOUNTER_ID@/entries|{"form":"vitals","values":{"temp_c":37}}
GET|/api/v1/entries/{id}|clinical.read|200|/api/v1/entries/@ENTRY_ID@|
POST|/api/v1/entries/{id}/entered-in-error|clinical.write|200|/api/v1/entries/@NEW_ENTRY_ID@/entered-in-error|{"reason":"matrix @ROLE@"}
POST|/api/v1/patients/{id}/appointments|patient.write|201|/api/v1/patients/@PATIENT_ID@/appointments|{"starts_at":"@TOMORROW@T09:00Z","service":"ncd"}
GET|/api/v1/patients/{id}/appointments|patient.read|200|/api/v1/patients/@PATIENT_ID@/appointments|
GET|/api/v1/appointments|patient.read|200|/api/v1/appointments?date=@TOMORROW@|
GET|/api/v1/appointments/{id}|patient.read|200|/api/v1/appointments/@APPOINTMENT_ID@|
PATCH|/api/v1/appointments/{id}|patient.write|200|/api/v1/appointments/@APPOINTMENT_ID@|{"notes":"@ROLE@"}
POST|/api/v1/encounters/{id}/follow-up|clinical.write|201|/api/v1/encounters/@ENCOUNTER_ID@/follow-up|{"starts_at":"@TOMORROW@T10:00Z"}
POST|/api/v1/patients/{id}/documents|clinical.write|415|/api/v1/patients/@PATIENT_ID@/documents|{}
GET|/api/v1/patients/{id}/documents|clinical.read|200|/api/v1/patients/@PATIENT_ID@/documents|
GET|/api/v1/documents/{id}|clinical.read|200|/api/v1/documents/@DOCUMENT_ID@|
GET|/api/v1/documents/{id}/content|clinical.read|200|/api/v1/documents/@DOCUMENT_ID@/content|
POST|/api/v1/documents/{id}/entered-in-error|clinical.write|200|/api/v1/documents/@NEW_DOCUMENT_ID@/entered-in-error|{"reason":"matrix @ROLE@"}
POST|/api/v1/peers/enroll|public|401|/api/v1/peers/enroll|{"code":"00000-00000-00000-00000-00000","node_id":"01234567-89ab-7def-8123-456789abcdef","name":"m","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
POST|/api/v1/sync/nonce|public|200|/api/v1/sync/nonce|
POST|/api/v1/sync/pull|peer|200|/api/v1/sync/pull|{"vector":{}}
POST|/api/v1/sync/push|peer|200|/api/v1/sync/push|
GET|/api/v1/sync/status|sync.manage|200|/api/v1/sync/status|
GET|/api/v1/sync/settings|sync.manage|200|/api/v1/sync/settings|
PUT|/api/v1/sync/settings|sync.manage|200|/api/v1/sync/settings|{"max_clock_ahead_hours":24}
POST|/api/v1/sync/run|sync.manage|409|/api/v1/sync/run|
GET|/api/v1/conflicts|sync.manage|200|/api/v1/conflicts?limit=5|
POST|/api/v1/conflicts/{id}/resolve|sync.manage|404|/api/v1/conflicts/01234567-89ab-7def-8123-456789abcdef/resolve|{"choose":"current"}'

# ---- the route table, from the source ---------------------------------------------------------------
sed -n '/^const struct route routes\[\] *= *{/,/^};/p' "$ROUTES_C" >"$TMP/routes.block"
grep -E '^[[:space:]]*\{[[:space:]]*"' "$TMP/routes.block" >"$TMP/routes.lines"
sed -n 's/^[[:space:]]*{[[:space:]]*"\([A-Z][A-Z]*\)",[[:space:]]*"\([^"]*\)",[[:space:]]*[A-Za-z0-9_]*,[[:space:]]*\(PERM_[A-Z0-9_]*\),.*/\1 \2 \3/p' \
  "$TMP/routes.lines" >"$TMP/routes"
NROUTES=$(wc -l <"$TMP/routes")
check "routes.c parsed ($NROUTES routes)" test "$NROUTES" -gt 0
check "every route line of routes.c was understood" test "$NROUTES" = "$(wc -l <"$TMP/routes.lines")"

# PERM_X -> "name" and its roles expression, from perm.c
sed -n 's/^[[:space:]]*\[\(PERM_[A-Z0-9_]*\)\][[:space:]]*=[[:space:]]*{[[:space:]]*"\([^"]*\)",[[:space:]]*\([^"]*\),.*/\1 \2 \3/p' \
  "$PERM_C" >"$TMP/perms"
check "perm.c parsed ($(wc -l <"$TMP/perms") permissions)" test -s "$TMP/perms"

# who holds which permission, as the binary prints it
sanad help roles
[ "$RC" = 0 ] || bail "sanad help roles" "$ERR"
cp "$TMP/.out" "$TMP/roles.txt"
ROLES=$(head -1 "$TMP/roles.txt" | sed 's/^permission *//; s/ *$//' | tr -s ' ')
# a new role is a security decision: this test (and docs/security.md) must be updated with it
check "help roles names the five known roles" test "$ROLES" = "admin clinician registrar analyst viewer"

# roles_of PERMISSION-NAME: the roles (space-separated) that `help roles` marks "yes" for it.
roles_of() {
  awk -v p="$1" -v roles="$ROLES" 'BEGIN { n = split(roles, r, " ") }
    $1 == p { out = ""; for (i = 1; i <= n; i++) if ($(i + 1) == "yes") out = out (out ? " " : "") r[i]; print out; found = 1 }
    END { if (!found) print "?" }' "$TMP/roles.txt"
}

check "perm.c and help roles list the same number of permissions" \
  test "$(wc -l <"$TMP/perms")" = "$(($(wc -l <"$TMP/roles.txt") - 1))"

# perm.c and help roles agree (ALL_ROLES or R(ROLE_X) | ... per entry)
while read -r const name expr; do
  case "$expr" in
    *ALL_ROLES*) want=$ROLES ;;
    *) want=$(printf '%s\n' "$expr" | grep -o 'ROLE_[A-Z]*' | sed 's/ROLE_//' | tr 'A-Z' 'a-z' | tr '\n' ' ') ;;
  esac
  # put want in the header's order
  w=""
  for r in $ROLES; do case " $want " in *" $r "*) w="$w${w:+ }$r" ;; esac; done
  got=$(roles_of "$name")
  if [ "$w" = "$got" ]; then ok "perm.c and help roles agree on $name ($got)"; else
    not_ok "perm.c and help roles agree on $name" "perm.c: $w" "help roles: $got"; fi
done <"$TMP/perms"

# ---- every route has a matrix entry with the same permission, and vice versa ------------------------
printf '%s\n' "$MATRIX" >"$TMP/matrix"
while read -r m p const; do
  name=$(awk -v c="$const" '$1 == c { print $2 }' "$TMP/perms")
  entry=$(awk -F'|' -v m="$m" -v p="$p" '$1 == m && $2 == p' "$TMP/matrix")
  if [ -z "$entry" ]; then
    not_ok "route $m $p has a matrix entry in $(basename "$0")" \
      "add a line 'METHOD|PATTERN|PERMISSION|SUCCESS-STATUS|PATH|BODY' to MATRIX (routes.c says $const = ${name:-?})"
    continue
  fi
  want=$(printf '%s\n' "$entry" | cut -d'|' -f3)
  if [ "$want" = "$name" ]; then ok "route $m $p needs $name"; else
    not_ok "route $m $p needs $want" "routes.c gives it $const ($name)"; fi
done <"$TMP/routes"
while IFS='|' read -r m p perm code path body; do
  if grep -q "^$m $p " "$TMP/routes"; then :; else
    not_ok "matrix entry $m $p is a route in routes.c" "remove it from MATRIX or restore the route"
  fi
done <"$TMP/matrix"

# ---- one account per role, plus a target user and a patient for the {id}s --------------------------
start_node
write_file "$TMP/pw-role" 'role-password-123'
write_file "$TMP/pw-target" 'target-password-1'
for r in $ROLES; do
  sanad user add --data "$NODE_DIR" --username "m-$r" --role "$r" --password-file "$TMP/pw-role"
  [ "$RC" = 0 ] || bail "sanad user add m-$r --role $r" "$ERR"
done
sanad user add --data "$NODE_DIR" --username m-target --role viewer --password-file "$TMP/pw-target"
[ "$RC" = 0 ] || bail "sanad user add m-target" "$ERR"
ok "created one account per role with the CLI"
TARGET_ID=$(sqlite3 "$NODE_DIR/sanad.db" "select id from users where username = 'm-target'")
check "target user id looks like a UUID" sh -c "printf '%s' '$TARGET_ID' | grep -Eqx '[0-9a-f-]{36}'"
ADMIN_TOKEN=$(login m-admin role-password-123)
[ -n "$ADMIN_TOKEN" ] || bail "sign in as m-admin"

# new_patient: register a patient as admin; prints its id.
new_patient() {
  _t=$TOKEN
  TOKEN=$ADMIN_TOKEN
  api POST /api/v1/patients '{"given_name":"Matrix","family_name":"Patient","sex":"male"}'
  TOKEN=$_t
  [ "$STATUS" = 201 ] || not_ok_subshell "register a patient for the matrix" "got $STATUS: $BODY"
  printf '%s' "$BODY" | sed -n 's/^{"id":"\([0-9a-f-]*\)".*/\1/p'
}
PATIENT_ID=$(new_patient)
check "patient id looks like a UUID ($PATIENT_ID)" sh -c "printf '%s' '$PATIENT_ID' | grep -Eqx '[0-9a-f-]{36}'"

# As admin: an encounter of that patient, an appointment, and a form to version.
TOKEN=$ADMIN_TOKEN
api POST "/api/v1/patients/$PATIENT_ID/encounters" '{"type":"consultation"}'
ENCOUNTER_ID=$(jqb .id)
TOMORROW=$(date -u -d tomorrow +%F)
api POST "/api/v1/patients/$PATIENT_ID/appointments" "{\"starts_at\":\"${TOMORROW}T08:00Z\",\"service\":\"ncd\"}"
APPOINTMENT_ID=$(jqb .id)
check "appointment for the matrix ($APPOINTMENT_ID)" sh -c "printf '%s' '$APPOINTMENT_ID' | grep -Eqx '[0-9a-f-]{36}'"
api POST /api/v1/forms '{"id":"matrix_form","title":{"en":"M"},"fields":[{"name":"a","type":"boolean","label":{"en":"A"}}]}'
FORM_ID=$(jqb .id)
TOKEN=

# new_entry: record vitals in the encounter as admin; prints the entry's id.
new_entry() {
  _t=$TOKEN
  TOKEN=$ADMIN_TOKEN
  api POST "/api/v1/encounters/$ENCOUNTER_ID/entries" '{"form":"vitals","values":{"temp_c":36.6}}'
  TOKEN=$_t
  [ "$STATUS" = 201 ] || not_ok_subshell "record an entry for the matrix" "got $STATUS: $BODY"
  printf '%s' "$BODY" | sed -n 's/^{"id":"\([0-9a-f-]*\)".*/\1/p'
}
ENTRY_ID=$(new_entry)
check "encounter, entry and form for the matrix ($ENCOUNTER_ID $ENTRY_ID $FORM_ID)" \
  sh -c "printf '%s %s' '$ENCOUNTER_ID' '$ENTRY_ID' | grep -Eqx '[0-9a-f-]{36} [0-9a-f-]{36}' && [ '$FORM_ID' = matrix_form ]"

# new_document: upload a small text document for the patient as admin; prints its id.
new_document() {
  _t=$TOKEN
  TOKEN=$ADMIN_TOKEN
  api POST "/api/v1/patients/$PATIENT_ID/documents?title=matrix" "" --data-binary 'matrix note' \
    -H 'Content-Type: text/plain'
  TOKEN=$_t
  [ "$STATUS" = 201 ] || not_ok_subshell "upload a document for the matrix" "got $STATUS: $BODY"
  printf '%s' "$BODY" | sed -n 's/^{"id":"\([0-9a-f-]*\)".*/\1/p'
}
DOCUMENT_ID=$(new_document)
check "document for the matrix ($DOCUMENT_ID)" sh -c "printf '%s' '$DOCUMENT_ID' | grep -Eqx '[0-9a-f-]{36}'"

# One chart item of each kind, as admin.
TOKEN=$ADMIN_TOKEN
api POST "/api/v1/patients/$PATIENT_ID/problems" '{"title":"Matrix problem"}'
PROBLEM_ID=$(jqb .id)
api POST "/api/v1/patients/$PATIENT_ID/allergies" '{"substance":"Matrix dust","verification":"reported"}'
ALLERGY_ID=$(jqb .id)
api POST "/api/v1/patients/$PATIENT_ID/medications" '{"name":"Matrix syrup"}'
MEDICATION_ID=$(jqb .id)
api POST "/api/v1/patients/$PATIENT_ID/immunizations" '{"vaccine":"bcg","given_on":"2020-01-01"}'
IMMUNIZATION_ID=$(jqb .id)
TOKEN=
check "chart items for the matrix" sh -c "printf '%s %s %s %s' '$PROBLEM_ID' '$ALLERGY_ID' '$MEDICATION_ID' '$IMMUNIZATION_ID' \
  | grep -Eqx '[0-9a-f-]{36} [0-9a-f-]{36} [0-9a-f-]{36} [0-9a-f-]{36}'"

# fill PATH BODY ROLE: sets URL and REQ_BODY with the placeholders replaced.
fill() {
  URL=$(printf '%s' "$1" | sed "s/@USER_ID@/$TARGET_ID/g; s/@PATIENT_ID@/$PATIENT_ID/g;
    s/@ENCOUNTER_ID@/$ENCOUNTER_ID/g; s/@ENTRY_ID@/$ENTRY_ID/g; s/@FORM_ID@/$FORM_ID/g;
    s/@APPOINTMENT_ID@/$APPOINTMENT_ID/g; s/@TOMORROW@/$TOMORROW/g; s/@PROBLEM_ID@/$PROBLEM_ID/g;
    s/@ALLERGY_ID@/$ALLERGY_ID/g; s/@MEDICATION_ID@/$MEDICATION_ID/g; s/@IMMUNIZATION_ID@/$IMMUNIZATION_ID/g")
  case "$URL" in *@NEW_PATIENT_ID@*) URL=$(printf '%s' "$URL" | sed "s/@NEW_PATIENT_ID@/$(new_patient)/") ;; esac
  case "$URL" in *@NEW_ENTRY_ID@*) URL=$(printf '%s' "$URL" | sed "s/@NEW_ENTRY_ID@/$(new_entry)/") ;; esac
  case "$URL" in *@DOCUMENT_ID@*) URL=$(printf '%s' "$URL" | sed "s/@DOCUMENT_ID@/$DOCUMENT_ID/g") ;; esac
  case "$URL" in *@NEW_DOCUMENT_ID@*) URL=$(printf '%s' "$URL" | sed "s/@NEW_DOCUMENT_ID@/$(new_document)/") ;; esac
  REQ_BODY=$(printf '%s' "$2" | sed "s/@ROLE@/$3/g; s/@TOMORROW@/$TOMORROW/g")
  case "$URL" in *'{'*|*@*) not_ok "the matrix path $1 has only placeholders this test can fill" ;; esac
}

DENIED=0
# an order that keeps the caller's session alive: sign-out last
{ grep -v '^DELETE|/api/v1/session|' "$TMP/matrix"; grep '^DELETE|/api/v1/session|' "$TMP/matrix"; } \
  >"$TMP/matrix.ordered"

for r in $ROLES; do
  TOKEN=$(login "m-$r" role-password-123)
  [ -n "$TOKEN" ] || bail "sign in as m-$r"
  col=$(printf '%s\n' $ROLES | grep -nx "$r" | cut -d: -f1)
  allowed_perms=$(awk -v n="$col" 'NR > 1 && $(n + 1) == "yes" { print $1 }' "$TMP/roles.txt" | tr '\n' ' ')
  while IFS='|' read -r m p perm code path body; do
    fill "$path" "$body" "$r"
    [ "$m|$p" = "DELETE|/api/v1/session" ] && TOKEN=$(login "m-$r" role-password-123)
    api "$m" "$URL" "$REQ_BODY"
    case " $allowed_perms " in
      *" $perm "*) expect_status "$code" "$r: $m $p ($perm, allowed)" ;;
      *" peer "*) not_ok "no role holds peer ($r does)" ;;
      *)
        if [ "$perm" = peer ]; then
          expect_error 401 unknown_peer "$r: $m $p (peer: a session is not a node signature)"
        else
          expect_error 403 forbidden "$r: $m $p ($perm, denied)"
          DENIED=$((DENIED + 1))
        fi ;;
    esac
  done <"$TMP/matrix.ordered"
done

# ---- no session, and a session that does not exist -------------------------------------------------
while IFS='|' read -r m p perm code path body; do
  fill "$path" "$body" none
  TOKEN=
  api "$m" "$URL" "$REQ_BODY"
  if [ "$perm" = public ]; then
    expect_status "$code" "no session: $m $p (public)"
  elif [ "$perm" = peer ]; then
    expect_error 401 unknown_peer "no session: $m $p (peer)"
    TOKEN=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
    api "$m" "$URL" "$REQ_BODY"
    TOKEN=
    expect_error 401 unknown_peer "a bearer token is no node signature: $m $p"
  else
    expect_error 401 not_signed_in "no session: $m $p"
    TOKEN=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
    api "$m" "$URL" "$REQ_BODY"
    expect_error 401 not_signed_in "unknown token: $m $p"
    TOKEN=
    api "$m" "$URL" "$REQ_BODY" -b "sanad_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    expect_error 401 not_signed_in "unknown cookie: $m $p"
  fi
done <"$TMP/matrix"

# ---- every other method on a known path is 405 -------------------------------------------------------
# methods_for URL: the methods of every matrix pattern that matches URL ({x} = one path segment).
methods_for() {
  awk -F'|' -v u="${1%%\?*}" '{ re = $2; gsub(/\{[^}]*\}/, "[^/]+", re); if (u ~ ("^" re "$")) print $1 }' \
    "$TMP/matrix" | sort -u | tr '\n' ' '
}
TOKEN=$ADMIN_TOKEN
cut -d'|' -f5 "$TMP/matrix" | sed 's/?.*//; s/@NEW_PATIENT_ID@/@PATIENT_ID@/; s/@NEW_ENTRY_ID@/@ENTRY_ID@/; s/@NEW_DOCUMENT_ID@/@DOCUMENT_ID@/' | sort -u >"$TMP/paths"
while read -r path; do
  fill "$path" "" admin
  known=" $(methods_for "$URL")"
  for m in GET POST PUT PATCH DELETE; do
    case "$known" in *" $m "*) continue ;; esac
    api "$m" "$URL"
    expect_error 405 method_not_allowed "admin: $m ${URL%%\?*} is not a route"
  done
done <"$TMP/paths"
api GET /api/v1/nothing-here
expect_error 404 no_such_endpoint "unknown API path"
api GET /api/v1/users/extra/segment
expect_error 404 no_such_endpoint "a route pattern with an extra segment"

# ---- each refusal was audited -----------------------------------------------------------------------
DENIED_ROWS=$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from audit_log where action = 'access.denied'")
check "every 403 forbidden left an access.denied audit row ($DENIED denied, $DENIED_ROWS rows)" \
  test "$DENIED" = "$DENIED_ROWS"
sqlite3 "$NODE_DIR/sanad.db" "select count(*) from audit_log where action = 'access.denied' and (user_id is null or outcome != 'denied')" >"$TMP/bad"
check "access.denied rows name the user and say 'denied'" test "$(cat "$TMP/bad")" = 0

stop_node
done_testing
