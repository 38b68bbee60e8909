#!/bin/sh
# t0700-patients.sh — the patient registry end to end through the real binary: register (normalised
# fields), read, change (only the given fields; null clears), delete (admin only); validation errors
# with their code and field; multilingual search (Arabic <-> Latin, spelling, token order, prefixes),
# identifier and phone search, filters and paging; duplicate matching; per-site scoping; custom
# registration fields; audit entries and a clean server log; the roles' spot checks.
. "$(dirname "$0")/lib.sh"

start_node
ADMIN=$(login admin "$ADMIN_PW")
[ -n "$ADMIN" ] || bail "sign in as admin"
TOKEN=$ADMIN
api GET /api/v1/me
SITE1=$(jqb '.sites[0]')
case "$SITE1" in ????????-????-????-????-????????????) ok "admin belongs to the first site ($SITE1)" ;;
  *) bail "admin belongs to the first site" "got: $BODY" ;; esac

# uri S: S percent-encoded for a query string.
uri() {
  jq -rn --arg s "$1" '$s | @uri'
}

# search_ids QUERY-STRING: GET /api/v1/patients?QUERY-STRING; leaves the ids of the first page in
# $TMP/ids (STATUS and BODY as set by api).
search_ids() {
  api GET "/api/v1/patients?$1"
  jqb '.items[].id' >"$TMP/ids"
}

# expect_found WHAT QUERY-STRING ID: the search answers 200 and its first page holds ID.
expect_found() {
  search_ids "$2"
  if [ "$STATUS" = 200 ] && grep -qx "$3" "$TMP/ids"; then ok "$1"; else
    not_ok "$1" "?$2 did not return $3 (status $STATUS)" "body: $(printf '%s' "$BODY" | head -c 400)"; fi
}

# expect_not_found WHAT QUERY-STRING ID: the search answers 200 and its first page does not hold ID.
expect_not_found() {
  search_ids "$2"
  if [ "$STATUS" = 200 ] && ! grep -qx "$3" "$TMP/ids"; then ok "$1"; else
    not_ok "$1" "?$2 returned $3 or failed (status $STATUS)" "body: $(printf '%s' "$BODY" | head -c 400)"; fi
}

# expect_field_error STATUS CODE FIELD WHAT: expect_error plus .error.field == FIELD.
expect_field_error() {
  expect_error "$1" "$2" "$4"
  expect_json '.error.field' "$3" "$4: error.field is $3"
}

# ---- users of every role ---------------------------------------------------------------------------
for r in clinician registrar analyst viewer; do
  api POST /api/v1/users "{\"username\":\"p-$r\",\"role\":\"$r\",\"password\":\"$r-password-0123\"}"
  [ "$STATUS" = 201 ] || bail "create the $r user" "got $STATUS: $BODY"
done
CLIN=$(login p-clinician clinician-password-0123)
REG=$(login p-registrar registrar-password-0123)
ANA=$(login p-analyst analyst-password-0123)
VIEW=$(login p-viewer viewer-password-0123)
[ -n "$CLIN" ] && [ -n "$REG" ] && [ -n "$ANA" ] && [ -n "$VIEW" ] || bail "sign in as every role"

# ---- register ---------------------------------------------------------------------------------------
TOKEN=$CLIN
FATIMA_JSON='{"given_name":"  Fatima ","family_name":"Al-Hassan","name_original":"فاطمة الحسن","sex":"female",
 "birth_date":"1990","phones":["+963 955 123 456"],"identifiers":{"unhcr":"123-45C67890"},"camp":"Zaatari"}'
api POST /api/v1/patients "$FATIMA_JSON"
expect_status 201 "a clinician registers Fatima"
FATIMA=$(jqb .id)
expect_json '.given_name' Fatima "the given name is trimmed"
expect_json '.family_name' Al-Hassan "the family name is kept"
expect_json '.name_original' "فاطمة الحسن" "the name in Arabic script is kept"
expect_json '.phones | join(",")' +963955123456 "the phone is normalised (+963 955 123 456 -> +963955123456)"
expect_json '.birth_date + " " + .birth_precision' "1990 year" "birth_date 1990 has precision year"
expect_json '.site_id' "$SITE1" "the record belongs to the clinician's site"
expect_json '.identifiers.unhcr' 123-45C67890 "the UNHCR number is stored"
expect_json '(.created_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")) and (.updated_at | type == "string")' true \
  "created_at and updated_at are RFC 3339 times"

api POST /api/v1/patients '{"given_name":"Omar","family_name":"Haddad","sex":"male","age_years":30,
 "phones":["0944 000 111"],"languages":["ar"],"nationality":"SY"}'
expect_status 201 "register Omar with an age instead of a birth date"
OMAR=$(jqb .id)
expect_json '.birth_precision' estimated "age_years gives an estimated birth date"
expect_json ".birth_date | startswith(\"$(($(date -u +%Y) - 30))-\")" true "... about 30 years ago"

api POST /api/v1/patients '{"given_name":"Layla","family_name":"Khalil","sex":"female","birth_date":"2001-03-15"}'
expect_status 201 "register Layla (exact birth date)"
LAYLA=$(jqb .id)
expect_json '.birth_date + " " + .birth_precision' "2001-03-15 day" "a full date has precision day"

api POST /api/v1/patients '{"name_original":"Олена Шевченко","sex":"female","birth_date":"1985-07"}'
expect_status 201 "register a patient known only by a Cyrillic name"
OLENA=$(jqb .id)
expect_json '.birth_date + " " + .birth_precision' "1985-07 month" "YYYY-MM has precision month"

api GET "/api/v1/patients/$FATIMA"
expect_status 200 "read Fatima back"
expect_json '.id + " " + .given_name + " " + (.phones | join(","))' "$FATIMA Fatima +963955123456" \
  "the stored record is the normalised one"

# ---- validation -------------------------------------------------------------------------------------
api POST /api/v1/patients '{"given_name":"Test","phones":["not a phone"]}'
expect_field_error 400 invalid_phone phones "a phone with letters"
api POST /api/v1/patients '{"given_name":"Test","phones":["12345"]}'
expect_field_error 400 invalid_phone phones "a phone with 5 digits"
api POST /api/v1/patients '{"given_name":"Test","sex":"f"}'
expect_field_error 400 invalid_sex sex "sex 'f'"
api POST /api/v1/patients "{\"given_name\":\"Test\",\"birth_date\":\"$(($(date -u +%Y) + 1))-01-01\"}"
expect_field_error 400 invalid_date birth_date "a birth date next year"
api POST /api/v1/patients '{"given_name":"Test","birth_date":"1990-02-30"}'
expect_field_error 400 invalid_date birth_date "30 February"
api POST /api/v1/patients '{"given_name":"Test","birth_date":"15/03/1990"}'
expect_field_error 400 invalid_date birth_date "a birth date in the wrong format"
api POST /api/v1/patients '{"given_name":"Test","age_years":131}'
expect_field_error 400 invalid_age age_years "age 131"
api POST /api/v1/patients '{"given_name":"Test","identifiers":{"ration":"1"}}'
expect_field_error 400 unknown_identifier_type identifiers.ration "an identifier type the site does not use"
api POST /api/v1/patients '{"given_name":"Test","custom":{"block":"a1"}}'
expect_field_error 400 unknown_field custom.block "a custom field the site does not define"
api POST /api/v1/patients '{"sex":"male","birth_date":"1990"}'
expect_field_error 400 missing_name given_name "no name at all"
api POST /api/v1/patients '{"given_name":"   ","sex":"male"}'
expect_error 400 missing_name "a name of blanks only"
api POST /api/v1/patients '{"given_name":"Test","favourite_colour":"blue"}'
expect_field_error 400 unknown_field favourite_colour "a top-level unknown key"
api POST /api/v1/patients '{"given_name":"Test","sex":1}'
expect_error 400 wrong_type "sex as a number"
api POST /api/v1/patients '{"given_name":"Test","identifiers":{"unhcr":"123 45c67890"}}'
expect_error 409 identifier_taken "the same UNHCR number written differently (123 45c67890)"
api POST /api/v1/patients '{"given_name":"Test","identifiers":{"unhcr":"12345C67890"}}'
expect_error 409 identifier_taken "the same UNHCR number without separators"
api POST /api/v1/patients '{"given_name":"Test","identifiers":{"iom":"123-45C67890"}}'
expect_status 201 "the same number under another identifier type is another identifier"
api PATCH "/api/v1/patients/$OMAR" '{"identifiers":{"unhcr":"123.45.c67890"}}'
expect_error 409 identifier_taken "a change may not take another patient's identifier either"
api PATCH "/api/v1/patients/$FATIMA" '{"identifiers":{"unhcr":"123 45 C67890"}}'
expect_status 200 "a patient may rewrite its own identifier"
api PATCH "/api/v1/patients/$FATIMA" '{"identifiers":{"unhcr":"123-45C67890"}}'
expect_status 200 "... and back"
api GET "/api/v1/patients/$FATIMA"
expect_json '.given_name + " " + .family_name' "Fatima Al-Hassan" "failed writes left Fatima unchanged"

# ---- change -----------------------------------------------------------------------------------------
api PATCH "/api/v1/patients/$OMAR" '{"camp":"Azraq","shelter":"B-12"}'
expect_status 200 "change Omar's camp and shelter"
expect_json '.camp + " " + .shelter' "Azraq B-12" "the given fields changed"
expect_json '.given_name + " " + .family_name + " " + .sex + " " + (.phones | join(",")) + " " + .nationality' \
  "Omar Haddad male 0944000111 SY" "the other fields did not (a local phone number stays local)"
OMAR_CREATED=$(jqb .created_at)
api PATCH "/api/v1/patients/$OMAR" '{"shelter":null,"phones":null,"languages":null}'
expect_status 200 "clear shelter, phones and languages with null"
expect_json '.shelter' null "shelter cleared"
expect_json '.phones | length' 0 "phones cleared"
expect_json '.languages | length' 0 "languages cleared"
expect_json '.camp' Azraq "camp kept"
expect_json '.created_at' "$OMAR_CREATED" "created_at does not move"
api PATCH "/api/v1/patients/$OMAR" '{"family_name":null}'
expect_status 200 "clear the family name"
expect_json '(.family_name // "") == "" and .given_name == "Omar"' true "family name cleared, given name kept"
api PATCH "/api/v1/patients/$OMAR" '{"birth_date":"1994-06"}'
expect_json '.birth_date + " " + .birth_precision' "1994-06 month" "a new birth date replaces the estimate"
api PATCH "/api/v1/patients/$OMAR" '{"sex":"x"}'
expect_field_error 400 invalid_sex sex "a change is validated too"
api PATCH "/api/v1/patients/$OMAR" '{"given_name":null,"name_original":null}'
expect_error 400 missing_name "a change may not leave the record without any name"
api PATCH "/api/v1/patients/$OMAR" '{"id":"x"}'
expect_error 400 unknown_field "id cannot be changed"
api PATCH "/api/v1/patients/01a00000-0000-7000-8000-000000000000" '{"camp":"X"}'
expect_error 404 patient_not_found "change a patient that does not exist"
api GET /api/v1/patients/not-an-id
expect_error 404 patient_not_found "read a malformed id"

# ---- delete -----------------------------------------------------------------------------------------
api POST /api/v1/patients '{"given_name":"Deleted","family_name":"Person","phones":["+964 770 555 0101"]}'
DEL=$(jqb .id)
api DELETE "/api/v1/patients/$DEL"
expect_error 403 forbidden "a clinician may not delete a patient"
TOKEN=$ADMIN
api DELETE "/api/v1/patients/$DEL"
expect_status 204 "an admin deletes a patient"
api GET "/api/v1/patients/$DEL"
expect_error 404 patient_not_found "a deleted patient is gone"
api DELETE "/api/v1/patients/$DEL"
expect_error 404 patient_not_found "deleting it again"
api PATCH "/api/v1/patients/$DEL" '{"camp":"X"}'
expect_error 404 patient_not_found "changing it"
expect_not_found "search does not find the deleted patient by name" "q=deleted%20person" "$DEL"
expect_not_found "... nor by phone" "q=$(uri '0770 555 0101')" "$DEL"

# ---- search -----------------------------------------------------------------------------------------
TOKEN=$CLIN
expect_found "Arabic script finds the Latin registration (فاطمة)" "q=$(uri 'فاطمة')" "$FATIMA"
expect_found "the whole Arabic name (فاطمة الحسن)" "q=$(uri 'فاطمة الحسن')" "$FATIMA"
expect_found "another spelling (fatma alhassan)" "q=$(uri 'fatma alhassan')" "$FATIMA"
expect_found "token order (Alhassan Fatima)" "q=$(uri 'Alhassan Fatima')" "$FATIMA"
expect_found "a prefix (fat)" "q=fat" "$FATIMA"
expect_found "upper case (FATIMA)" "q=FATIMA" "$FATIMA"
expect_found "Latin finds the Cyrillic-only registration (Olena Shevchenko)" "q=$(uri 'Olena Shevchenko')" "$OLENA"
expect_found "and Cyrillic finds it too (Шевченко)" "q=$(uri 'Шевченко')" "$OLENA"
api GET "/api/v1/patients?q=$(uri 'فاطمة')"
expect_json ".items[0].id" "$FATIMA" "Fatima ranks first for فاطمة"
expect_json '.items[0].score | type == "number" and . > 0 and . <= 1' true "results carry a score in (0, 1]"
expect_not_found "a search for Fatima does not return Layla" "q=fatima" "$LAYLA"
expect_found "the UNHCR number as written" "q=$(uri '123-45C67890')" "$FATIMA"
expect_found "the UNHCR number written differently" "q=$(uri '123 45c67890')" "$FATIMA"
expect_found "the phone in local format (0955 123 456)" "q=$(uri '0955 123 456')" "$FATIMA"
expect_found "the phone in international format (00963955123456)" "q=00963955123456" "$FATIMA"
expect_found "the phone as stored (+963955123456)" "q=$(uri '+963955123456')" "$FATIMA"
expect_not_found "another phone number does not find her" "q=$(uri '0955 999 888')" "$FATIMA"
api GET "/api/v1/patients?q=zzqxw"
expect_status 200 "a search that matches nothing"
expect_json '.items | length' 0 "... returns no items"
expect_json '.next' null "... and no next cursor"

# filters and paging over five registrations sharing a family name
: >"$TMP/zubayr"
for g in Ahmad:male:1980-01-01 Bilal:male:1990-06 Huda:female:2001 Karim:male:2001-05-05 Samira:female:2010-10-10; do
  IFS=: read -r given sex born <<EOF
$g
EOF
  api POST /api/v1/patients "{\"given_name\":\"$given\",\"family_name\":\"Zubayr\",\"sex\":\"$sex\",\"birth_date\":\"$born\"}"
  [ "$STATUS" = 201 ] || not_ok "register $given Zubayr" "got $STATUS: $BODY"
  jqb .id >>"$TMP/zubayr"
done
check "five Zubayr registrations" test "$(sort -u "$TMP/zubayr" | wc -l)" = 5

# page QUERY-STRING: page through the results with limit=2; leaves the ids in $TMP/paged and the
# number of pages in PAGES.
page() {
  : >"$TMP/paged"
  _cursor=
  PAGES=0
  while :; do
    api GET "/api/v1/patients?$1&limit=2${_cursor:+&cursor=$(uri "$_cursor")}"
    if [ "$STATUS" != 200 ]; then not_ok "page $PAGES of ?$1" "got $STATUS: $BODY"; break; fi
    _n=$(jqb '.items | length')
    jqb '.items[].id' >>"$TMP/paged"
    _cursor=$(jqb '.next // empty')
    PAGES=$((PAGES + 1))
    [ -z "$_cursor" ] && break
    [ "$_n" = 2 ] || not_ok "a page of ?$1 with a next cursor is full" "it has $_n items"
    [ $PAGES -lt 50 ] || { not_ok "paging ?$1 ends" "more than 50 pages"; break; }
  done
}

page "q=zubayr"
check "q=zubayr pages (limit 2) to all five in $PAGES pages" \
  test "$(sort "$TMP/paged" | uniq | wc -l) $(wc -l <"$TMP/paged")" = "5 5"
check "... exactly the five Zubayr ids" test "$(sort "$TMP/paged")" = "$(sort "$TMP/zubayr")"
check "... in three pages" test "$PAGES" = 3
page "q=zubayr&sex=female"
check "sex=female keeps the two women" test "$(wc -l <"$TMP/paged")" = 2
page "q=zubayr&born_from=2000&born_to=2002"
check "born_from=2000&born_to=2002 keeps the two born in 2001" test "$(wc -l <"$TMP/paged")" = 2
page "q=zubayr&born_from=1990-06-15"
check "born_from=1990-06-15 keeps a June 1990 birth (month precision) and the later ones (4)" \
  test "$(wc -l <"$TMP/paged")" = 4
page "q=zubayr&born_to=1979"
check "born_to=1979 keeps nobody" test "$(wc -l <"$TMP/paged")" = 0

# browsing (no q): every patient the clinician may see, newest first, without repeats
page "sex=female"
api GET "/api/v1/patients?sex=female&limit=100"
ALL_F=$(jqb '.items | length')
check "browsing women with limit=2 ($PAGES pages) sees all $ALL_F, once each" \
  test "$(sort -u "$TMP/paged" | wc -l) $(wc -l <"$TMP/paged")" = "$ALL_F $ALL_F"
check "browsing includes Fatima, Layla and Olena" \
  sh -c "grep -qx '$FATIMA' '$TMP/paged' && grep -qx '$LAYLA' '$TMP/paged' && grep -qx '$OLENA' '$TMP/paged'"
check "browsing women excludes Omar" sh -c "! grep -qx '$OMAR' '$TMP/paged'"
api GET "/api/v1/patients?limit=100"
expect_json "[.items[].id] | index(\"$DEL\")" null "browsing does not list the deleted patient"
expect_json '[.items[].created_at] | . == (sort | reverse)' true "browsing lists the newest first"

api GET "/api/v1/patients?q=zubayr&cursor=bogus"
expect_error 400 invalid_cursor "a search with an invalid cursor"
api GET "/api/v1/patients?cursor=bogus"
expect_error 400 invalid_cursor "browsing with an invalid cursor"
api GET "/api/v1/patients?q=zubayr&limit=0"
expect_error 400 invalid_limit "limit=0"
api GET "/api/v1/patients?q=zubayr&limit=101"
expect_error 400 invalid_limit "limit=101"
api GET "/api/v1/patients?sex=f"
expect_error 400 invalid_sex "filter sex=f"
api GET "/api/v1/patients?born_from=1990-13"
expect_error 400 invalid_date "filter born_from=1990-13"

# ---- duplicates ------------------------------------------------------------------------------------
api POST /api/v1/patients/match '{"given_name":"Zaid","family_name":"Nasser","phones":["0955 123 456"]}'
expect_status 200 "match a draft with Fatima's phone"
expect_json "[.items[] | select(.patient.id == \"$FATIMA\") | .reasons | index(\"same_phone\") != null] | .[0]" true \
  "the same phone makes Fatima a candidate (reason same_phone)"
api POST /api/v1/patients/match '{"given_name":"Fatma","family_name":"Alhassan","sex":"female","birth_date":"1990-05-01"}'
expect_status 200 "match a draft with a similar name, compatible birth date and the same sex"
expect_json '.items[0].patient.id' "$FATIMA" "Fatima is the best candidate"
expect_json '.items[0].reasons | (index("similar_name") != null) and (index("compatible_birth_date") != null) and (index("same_sex") != null)' \
  true "the reasons are similar_name, compatible_birth_date, same_sex"
expect_json '.items[0].score | . >= 0.6 and . <= 1' true "the score lies in [0.6, 1]"
expect_json '.items[0].patient.given_name' Fatima "the candidate comes with its record"
api POST /api/v1/patients/match '{"given_name":"Someone","identifiers":{"unhcr":"12345 c 67890"}}'
expect_json "[.items[] | select(.patient.id == \"$FATIMA\") | .reasons | index(\"same_identifier\") != null] | .[0]" true \
  "the same UNHCR number (written differently) makes a candidate"
api POST /api/v1/patients/match '{"given_name":"Oleksandr","family_name":"Kovalenko","sex":"male","birth_date":"1962-11-02","phones":["+380 50 123 4567"]}'
expect_status 200 "match a clearly different person"
expect_json "[.items[].patient.id] | index(\"$FATIMA\")" null "Fatima is not a candidate for Oleksandr Kovalenko"
expect_json '.items | length' 0 "nobody is"
api POST /api/v1/patients/match '{"given_name":"Fatima","family_name":"Al-Hassan","sex":"male","birth_date":"1950-01-01"}'
expect_json "[.items[] | select(.patient.id == \"$FATIMA\") | .reasons | index(\"same_sex\")] | .[0]" null \
  "a candidate of the other sex is never said to have the same sex"
api POST /api/v1/patients/match "{\"given_name\":\"Test\",\"birth_date\":\"$(($(date -u +%Y) + 1))\"}"
expect_field_error 400 invalid_date birth_date "a draft's birth date is validated (next year)"
api POST /api/v1/patients/match '{"given_name":"Test","colour":"blue"}'
expect_error 400 unknown_field "a draft with an unknown key"

# ---- site scoping ----------------------------------------------------------------------------------
TOKEN=$ADMIN
api POST /api/v1/sites '{"name":"Mobile team north"}'
expect_status 201 "create a second site"
SITE2=$(jqb .id)
api POST /api/v1/users "{\"username\":\"p-north\",\"role\":\"clinician\",\"password\":\"north-password-0123\",\"sites\":[\"$SITE2\"]}"
expect_status 201 "a clinician of the second site only"
expect_json '.sites | join(",")' "$SITE2" "... belongs to that site only"
NORTH=$(login p-north north-password-0123)
[ -n "$NORTH" ] || bail "sign in as p-north"
TOKEN=$NORTH
api GET "/api/v1/patients/$FATIMA"
expect_error 404 patient_not_found "the other site's clinician cannot read Fatima"
api PATCH "/api/v1/patients/$FATIMA" '{"camp":"Elsewhere"}'
expect_error 404 patient_not_found "... nor change her"
expect_not_found "... nor find her by name" "q=fatima" "$FATIMA"
expect_not_found "... nor by UNHCR number" "q=$(uri '123-45C67890')" "$FATIMA"
expect_not_found "... nor by phone" "q=$(uri '0955 123 456')" "$FATIMA"
expect_not_found "... nor by browsing" "limit=100" "$FATIMA"
api GET "/api/v1/patients?site=$SITE1"
expect_error 403 site_not_allowed "... nor by asking for the first site"
api POST /api/v1/patients/match '{"given_name":"Fatima","family_name":"Al-Hassan","phones":["0955 123 456"],"identifiers":{"unhcr":"123-45C67890"}}'
expect_json "[.items[].patient.id] | index(\"$FATIMA\")" null "... nor get her as a duplicate candidate"
api POST /api/v1/patients "{\"given_name\":\"North\",\"family_name\":\"Patient\",\"site_id\":\"$SITE1\"}"
expect_error 403 site_not_allowed "... nor register a patient at the first site"
api POST /api/v1/patients '{"given_name":"Farid","family_name":"Ahmadi","sex":"male"}'
expect_status 201 "the north clinician registers a patient"
FARID=$(jqb .id)
expect_json '.site_id' "$SITE2" "... at the second site"
expect_found "... and finds him" "q=farid" "$FARID"
TOKEN=$CLIN
api GET "/api/v1/patients/$FARID"
expect_error 404 patient_not_found "the first site's clinician cannot read him"
expect_not_found "... nor find him" "q=farid" "$FARID"
TOKEN=$NORTH
api DELETE "/api/v1/patients/$FATIMA"
expect_error 403 forbidden "a clinician of another site cannot delete either"

# ---- roles ------------------------------------------------------------------------------------------
TOKEN=$ANA
api GET /api/v1/patients
expect_error 403 forbidden "an analyst may not search patients"
api GET "/api/v1/patients/$FATIMA"
expect_error 403 forbidden "an analyst may not read a patient"
api POST /api/v1/patients/match '{"given_name":"Fatima"}'
expect_error 403 forbidden "an analyst may not match patients"
api GET /api/v1/registration-fields
expect_error 403 forbidden "an analyst may not read the registration fields"
TOKEN=$VIEW
api GET "/api/v1/patients/$FATIMA"
expect_status 200 "a viewer reads a patient"
expect_found "a viewer searches" "q=fatima" "$FATIMA"
api POST /api/v1/patients '{"given_name":"Viewer","family_name":"Made"}'
expect_error 403 forbidden "a viewer may not register"
api PATCH "/api/v1/patients/$FATIMA" '{"camp":"X"}'
expect_error 403 forbidden "a viewer may not change a patient"
api DELETE "/api/v1/patients/$FATIMA"
expect_error 403 forbidden "a viewer may not delete"
TOKEN=$REG
api POST /api/v1/patients '{"given_name":"Registrar","family_name":"Made","sex":"other"}'
expect_status 201 "a registrar registers"
api DELETE "/api/v1/patients/$(jqb .id)"
expect_error 403 forbidden "a registrar may not delete"
TOKEN=
api GET "/api/v1/patients?q=fatima"
expect_error 401 not_signed_in "no session, no search"
api GET "/api/v1/patients/$FATIMA"
expect_error 401 not_signed_in "no session, no record"

# ---- registration fields ---------------------------------------------------------------------------
TOKEN=$VIEW
api GET /api/v1/registration-fields
expect_status 200 "a viewer reads the registration fields"
expect_json '.site_id' "$SITE1" "... of the first site"
expect_json '.identifier_types | index("unhcr") != null' true "... which uses unhcr identifiers"
TOKEN=$NORTH
api GET /api/v1/registration-fields
expect_json '.site_id' "$SITE2" "the north clinician gets the second site's fields"
api GET "/api/v1/registration-fields?site=$SITE1"
expect_error 403 site_not_allowed "... and not the first site's"
CONFIG='{"identifier_types":["ration_card"],"fields":[
 {"key":"block","type":"select","label":{"en":"Block","ar":"قطاع"},"required":true,
  "options":[{"code":"a1","label":{"en":"A1"}},{"code":"b2","label":{"en":"B2"}}]},
 {"key":"ration","type":"text","label":{"en":"Ration book"},"searchable":true}]}'
TOKEN=$REG
api PUT /api/v1/registration-fields "$CONFIG"
expect_error 403 forbidden "a registrar may not change the registration fields"
TOKEN=$ADMIN
api PUT /api/v1/registration-fields '{"fields":[{"key":"Bad Key","type":"text","label":{"en":"x"}}]}'
expect_error 400 invalid_config "a field key with capitals and a space"
api PUT /api/v1/registration-fields "$CONFIG"
expect_status 200 "an admin sets a required select field and a searchable text field"
expect_json '[.fields[].key] | join(",")' block,ration "... which are stored"
expect_json '.identifier_types | index("ration_card") != null' true "... with the new identifier type"
TOKEN=$CLIN
api POST /api/v1/patients '{"given_name":"Nour","family_name":"Darwish","sex":"female"}'
expect_field_error 400 missing_field custom.block "registering without the required field"
api POST /api/v1/patients '{"given_name":"Nour","family_name":"Darwish","sex":"female","custom":{"block":"c3"}}'
expect_field_error 400 invalid_option custom.block "an option the field does not have"
api POST /api/v1/patients '{"given_name":"Nour","family_name":"Darwish","sex":"female","custom":{"block":"a1","ration":"RC-1111"},"identifiers":{"ration_card":"RB 77"}}'
expect_status 201 "registering with the required field"
NOUR=$(jqb .id)
expect_json '.custom.block + " " + .custom.ration + " " + .identifiers.ration_card' "a1 RC-1111 RB 77" "custom values are stored"
expect_found "a searchable custom value finds the patient (RC-1111)" "q=RC-1111" "$NOUR"
expect_found "... written differently (rc 1111)" "q=$(uri 'rc 1111')" "$NOUR"
expect_found "a site-defined identifier type finds the patient (RB 77)" "q=$(uri 'RB 77')" "$NOUR"
api PATCH "/api/v1/patients/$FATIMA" '{"camp":"Azraq"}'
expect_status 200 "records made before the field was required can still be changed"

# the index must follow the record: once the value is replaced it must not find the record any more,
# even when the field stopped being searchable in between
api PATCH "/api/v1/patients/$NOUR" '{"custom":{"ration":"RC-2222"}}'
expect_status 200 "change the searchable value"
expect_found "the new value finds the patient" "q=RC-2222" "$NOUR"
expect_not_found "the old value no longer finds the patient" "q=RC-1111" "$NOUR"
TOKEN=$ADMIN
api PUT /api/v1/registration-fields "$(printf '%s' "$CONFIG" | jq -c '.fields[1].searchable = false')"
expect_status 200 "make the text field not searchable"
TOKEN=$CLIN
api PATCH "/api/v1/patients/$NOUR" '{"custom":{"ration":"RC-3333"}}'
expect_status 200 "change the no longer searchable value"
expect_not_found "a value no patient holds any more does not find the patient (RC-2222)" "q=RC-2222" "$NOUR"
expect_not_found "a value of a field that is not searchable does not find the patient (RC-3333)" "q=RC-3333" "$NOUR"

# ---- audit ------------------------------------------------------------------------------------------
TOKEN=$ADMIN
: >"$TMP/audit"
cursor=
while :; do
  api GET "/api/v1/audit?limit=500${cursor:+&cursor=$cursor}"
  [ "$STATUS" = 200 ] || { not_ok "read the audit log" "got $STATUS: $BODY"; break; }
  printf '%s' "$BODY" | jq -c '.items[]' >>"$TMP/audit"
  cursor=$(jqb '.next // empty')
  [ -n "$cursor" ] || break
done
# audited ACTION OUTCOME JQ-CONDITION: number of matching audit entries.
audited() {
  jq -s "[.[] | select(.action == \"$1\" and .outcome == \"$2\") | select($3)] | length" "$TMP/audit"
}
check "patient.create of Fatima by the clinician, at her site" \
  test "$(audited patient.create ok ".entity_id == \"$FATIMA\" and .username == \"p-clinician\" and .site_id == \"$SITE1\"")" = 1
check "patient.read of Fatima" test "$(audited patient.read ok ".entity_id == \"$FATIMA\"")" -ge 2
check "the viewer's read is audited" test "$(audited patient.read ok ".entity_id == \"$FATIMA\" and .username == \"p-viewer\"")" = 1
check "the north clinician's refused read is audited" \
  test "$(audited patient.read failed ".entity_id == \"$FATIMA\" and .username == \"p-north\"")" = 1
check "patient.search entries" test "$(audited patient.search ok 'true')" -ge 20
check "patient.match entries" test "$(audited patient.match ok 'true')" -ge 4
check "patient.update of Omar" test "$(audited patient.update ok ".entity_id == \"$OMAR\"")" -ge 4
check "patient.update entries name the patient's site" \
  test "$(audited patient.update ok ".entity_id == \"$OMAR\" and .site_id != \"$SITE1\"")" = 0
check "patient.delete by the admin" \
  test "$(audited patient.delete ok ".entity_id == \"$DEL\" and .username == \"admin\" and .site_id == \"$SITE1\"")" = 1
check "the clinician's refused delete is audited (access.denied)" \
  test "$(audited access.denied denied ".username == \"p-clinician\"")" -ge 1
check "registration_fields.update" test "$(audited registration_fields.update ok ".entity_id == \"$SITE1\"")" = 2
check "failed validations leave no patient.create" \
  test "$(audited patient.create ok 'true')" = "$(sqlite3 "$NODE_DIR/sanad.db" 'select count(*) from patients')"
sanad audit verify --data "$NODE_DIR"
expect_rc 0 "sanad audit verify passes while serving"

# ---- the server log ---------------------------------------------------------------------------------
stop_node
for s in Fatima Al-Hassan 'فاطمة' 'الحسن' Shevchenko 'Шевченко' Zubayr Nour Darwish Farid \
         955123456 '955 123 456' 944000111 7705550101 123-45C67890 12345C67890 RC-1111 RC-2222 'RB 77'; do
  if grep -qiF -- "$s" "$NODE_LOG"; then
    not_ok "the server log does not contain '$s'" "$(grep -iF -- "$s" "$NODE_LOG" | head -3)"
  else
    ok "the server log does not contain '$s'"
  fi
done
check "the server log logged the patient requests by route pattern" grep -q 'GET /api/v1/patients/{id} ' "$NODE_LOG"
sanad audit verify --data "$NODE_DIR"
expect_rc 0 "sanad audit verify passes on the stopped node"

done_testing
