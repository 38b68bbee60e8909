#!/bin/sh
# t0720-encounters.sh — visits and the forms engine end to end through the real binary: built-in forms
# listed and read in a language (with fallback), encounters opened and closed, entries checked against
# their form (422 with per-field errors), computed fields, corrections that supersede, "entered in error",
# forms made and versioned by an admin (old entries keep reading with their version), XLSForm import
# (good and bad sheets), roles, audit, and a small clinic day.
. "$(dirname "$0")/lib.sh"

start_node
ADMIN=$(login admin "$ADMIN_PW")
[ -n "$ADMIN" ] || bail "sign in as admin"
TOKEN=$ADMIN
for r in clinician registrar viewer; do
  api POST /api/v1/users "{\"username\":\"e-$r\",\"role\":\"$r\",\"password\":\"$r-password-0123\"}"
  [ "$STATUS" = 201 ] || bail "create the $r user" "got $STATUS: $BODY"
done
CLIN=$(login e-clinician clinician-password-0123)
REG=$(login e-registrar registrar-password-0123)
VIEW=$(login e-viewer viewer-password-0123)
[ -n "$CLIN" ] && [ -n "$REG" ] && [ -n "$VIEW" ] || bail "sign in as every role"

# ---- built-in forms --------------------------------------------------------------------------------
TOKEN=$CLIN
api GET /api/v1/forms
expect_status 200 "list forms"
for f in triage vitals consultation prescription lab_request lab_result migrant_health_assessment antenatal \
         child_growth ncd_followup phq9; do
  check "built-in form $f is listed" test "$(jqb "[.items[] | select(.id == \"$f\")] | length")" = 1
done
api GET '/api/v1/forms?lang=ar'
expect_json '.items[] | select(.id == "vitals") | .title | test("\\p{Arabic}")' true "titles in Arabic when asked"
api GET '/api/v1/forms/vitals?lang=el'
expect_status 200 "a form in a language it lacks is still served"
expect_json '.title' "$(TOKEN=$CLIN; api GET '/api/v1/forms/vitals?lang=en'; jqb .title)" "…in its default language"
api GET '/api/v1/forms/vitals'
expect_json '.title | type' object "without lang every translation comes back"
api GET '/api/v1/forms/nosuch'
expect_error 404 form_not_found
api GET '/api/v1/forms/vitals?version=x'
expect_error 400 invalid_version

# ---- a patient and an encounter ---------------------------------------------------------------------
api POST /api/v1/patients '{"given_name":"Amina","family_name":"Yusuf","sex":"female","birth_date":"1990-04-02"}'
expect_status 201 "register a patient"
PID=$(jqb .id)
api POST "/api/v1/patients/$PID/encounters" '{"type":"consultation"}'
expect_status 201 "open an encounter"
EID=$(jqb .id)
expect_json .status in_progress "a new encounter is in progress"
expect_json .provider e-clinician "the caller is the provider"
api POST "/api/v1/patients/$PID/encounters" '{"type":"party"}'
expect_error 422 invalid_type
api POST "/api/v1/patients/$PID/encounters" '{"type":"triage","started_at":"2999-01-01T00:00Z"}'
expect_error 422 time_in_future
api POST "/api/v1/patients/00000000-0000-7000-8000-000000000000/encounters" '{"type":"triage"}'
expect_error 404 patient_not_found
TOKEN=$REG
api POST "/api/v1/patients/$PID/encounters" '{"type":"consultation"}'
expect_error 403 forbidden "a registrar cannot record visits"
TOKEN=$CLIN

# ---- entries ------------------------------------------------------------------------------------------
api POST "/api/v1/encounters/$EID/entries" '{"form":"vitals","values":{"temp_c":37.2,"weight_kg":60,"height_cm":165,"heart_rate":80}}'
expect_status 201 "record vitals"
V1=$(jqb .id)
expect_json .status active "the entry is active"
expect_json '.values.bmi' 22 "the BMI is computed by the server (60 / 1.65^2 = 22.0)"
api POST "/api/v1/encounters/$EID/entries" '{"form":"vitals","values":{"temp_c":55,"heart_rate":"fast","bmi":3,"colour":"red"}}'
expect_error 422 invalid_entry "out-of-range, mistyped, computed and unknown values"
expect_json '.error.fields.temp_c' "must be between 30 and 45"
check "heart_rate is reported" test "$(jqb '.error.fields.heart_rate')" = "must be a number"
check "bmi is reported" sh -c "printf '%s' '$(jqb '.error.fields.bmi')' | grep -q computed"
check "colour is reported" test "$(jqb '.error.fields.colour')" = "is not a field of this form"
api POST "/api/v1/encounters/$EID/entries" '{"form":"nosuch","values":{}}'
expect_error 422 unknown_form
api POST "/api/v1/encounters/$EID/entries" '{"form":"vitals","values":{"temp_c":37},"extra":1}'
expect_error 400 unknown_field

# a correction supersedes; the old entry stays readable
api POST "/api/v1/encounters/$EID/entries" "{\"form\":\"vitals\",\"values\":{\"temp_c\":38.1},\"supersedes\":\"$V1\"}"
expect_status 201 "correct the vitals"
V2=$(jqb .id)
expect_json .supersedes "$V1"
api POST "/api/v1/encounters/$EID/entries" "{\"form\":\"vitals\",\"values\":{\"temp_c\":38.2},\"supersedes\":\"$V1\"}"
expect_error 409 already_superseded "a superseded entry cannot be corrected twice"
api GET "/api/v1/entries/$V1"
expect_json .status superseded
expect_json .superseded_by "$V2"
expect_json .values.temp_c 37.2 "the old value is kept"

# entered in error
api POST "/api/v1/entries/$V2/entered-in-error" '{"reason":"wrong patient"}'
expect_status 200 "mark an entry entered in error"
expect_json .status entered_in_error
expect_json .withdrawn_reason "wrong patient"
api POST "/api/v1/entries/$V2/entered-in-error" '{"reason":"again"}'
expect_error 409 already_withdrawn
api POST "/api/v1/entries/$V2/entered-in-error" '{}'
expect_error 400 missing_field

api GET "/api/v1/encounters/$EID"
expect_status 200 "read the encounter"
expect_json '[.entries[].status] | join(",")' "superseded,entered_in_error" "its entries with their status"

# close it
api PATCH "/api/v1/encounters/$EID" '{"status":"finished","ended_at":"2020-01-01T00:00Z"}'
expect_error 422 invalid_time "an end before the start"
api PATCH "/api/v1/encounters/$EID" '{"status":"finished"}'
expect_status 200 "finish the encounter"
expect_json .status finished
api GET "/api/v1/patients/$PID/encounters"
expect_json '.items | length' 1 "the patient's encounters"
expect_json '.items[0].id' "$EID"

# ---- forms made by an admin, versioned ----------------------------------------------------------------
FORM='{"id":"cholera_line","title":{"en":"Cholera line list","fr":"Liste linéaire choléra"},"default_language":"en",
 "fields":[{"name":"stools_per_day","type":"number","label":{"en":"Stools per day"},"min":0,"max":50,"decimals":0,"required":true},
           {"name":"dehydration","type":"select","label":{"en":"Dehydration"},"options":[{"code":"none","label":{"en":"None"}},{"code":"some","label":{"en":"Some"}},{"code":"severe","label":{"en":"Severe"}}]}]}'
api POST /api/v1/forms "$FORM"
expect_error 403 forbidden "a clinician cannot make forms"
TOKEN=$ADMIN
api POST /api/v1/forms "$FORM"
expect_status 201 "an admin makes a form"
expect_json .version 1
api POST /api/v1/forms "$FORM"
expect_error 409 form_exists
api POST /api/v1/forms '{"id":"broken","title":{"en":"B"},"fields":[{"name":"x","type":"number","label":{"en":"X"},"min":3,"max":1}]}'
expect_error 422 invalid_form
expect_json '.error.fields["fields[0].max"]' "must not be below min"
TOKEN=$CLIN
api POST "/api/v1/patients/$PID/encounters" '{"type":"outreach"}'
E2=$(jqb .id)
api POST "/api/v1/encounters/$E2/entries" '{"form":"cholera_line","values":{"stools_per_day":8,"dehydration":"some"}}'
expect_status 201 "an entry with version 1"
C1=$(jqb .id)
TOKEN=$ADMIN
FORM2=$(printf '%s' "$FORM" | jq -c '.fields[1].options |= map(select(.code != "some")) | .fields[0].max = 30')
api PUT /api/v1/forms/cholera_line "$FORM2"
expect_status 201 "a new version"
expect_json .version 2
api PUT /api/v1/forms/cholera_line "$(printf '%s' "$FORM2" | jq -c '.version = 7')"
expect_error 409 stale_version
TOKEN=$CLIN
api GET "/api/v1/entries/$C1"
expect_json '.version' 1 "the old entry still reads with its version"
expect_json '.values.dehydration' some "…and its value the new version lacks"
api GET "/api/v1/entries/$C1?lang=fr"
expect_json '.display.fields[1].text' Some "the old entry's option reads with its own version's labels"
api GET '/api/v1/forms/cholera_line?version=1'
expect_json '.fields[1].options | length' 3 "version 1 is still served"
api POST "/api/v1/encounters/$E2/entries" '{"form":"cholera_line","values":{"stools_per_day":8,"dehydration":"some"}}'
expect_error 422 invalid_entry "the newest version applies by default"
api POST "/api/v1/encounters/$E2/entries" '{"form":"cholera_line","version":1,"values":{"stools_per_day":40}}'
expect_status 201 "an entry may name an older version"
api GET /api/v1/forms/cholera_line/versions
expect_json '[.items[].version] | join(",")' "2,1"

# ---- reading in another language ------------------------------------------------------------------------
api GET "/api/v1/entries/$V1?lang=ar"
expect_json '.display.title | test("\\p{Arabic}")' true "an entry reads in Arabic (its form's title)"
expect_json '.display.fields[] | select(.name == "temp_c") | .value' 37.2 "…with its values unchanged"
check "…and Arabic labels" test "$(jqb '[.display.fields[].label | test("\\p{Arabic}")] | all')" = true

# ---- XLSForm import --------------------------------------------------------------------------------------
TOKEN=$ADMIN
SURVEY='type,name,label::English (en),label::Arabic (ar),required,relevant,constraint
integer,stated_age_months,Age in months,العمر بالأشهر,yes,,. >= 0 and . <= 59
select_one yn,fever,Fever?,حمى؟,yes,,
decimal,temp,Temperature,درجة الحرارة,,${fever} = '"'"'yes'"'"',. >= 30 and . <= 45'
CHOICES='list_name,name,label::English (en),label::Arabic (ar)
yn,yes,Yes,نعم
yn,no,No,لا'
SETTINGS='form_id,form_title,version,default_language
imci_fever,IMCI fever,1,English (en)'
api POST /api/v1/forms/import "$(jq -cn --arg s "$SURVEY" --arg c "$CHOICES" --arg t "$SETTINGS" '{survey:$s,choices:$c,settings:$t}')"
expect_status 201 "import an XLSForm"
expect_json .id imci_fever
api GET '/api/v1/forms/imci_fever?lang=ar'
expect_json '.fields[0].label' "العمر بالأشهر" "its Arabic labels"
BAD='type,name,label
geopoint,where,Where are you
integer,n,N'
api POST /api/v1/forms/import "$(jq -cn --arg s "$BAD" '{survey:$s}')"
check "unsupported XLSForm features are reported, not ignored" test "$STATUS" = 422
check "…naming the row" sh -c "printf '%s' '$BODY' | grep -q geopoint"

# ---- audit ---------------------------------------------------------------------------------------------
api GET '/api/v1/audit?limit=200'
for a in encounter.create entry.create entry.correct entry.withdraw entry.read encounter.read form.create form.version; do
  check "audit holds $a" test "$(jqb "[.items[] | select(.action == \"$a\")] | length")" -ge 1
done

# ---- viewer reads, cannot write -------------------------------------------------------------------------
TOKEN=$VIEW
api GET "/api/v1/encounters/$EID"
expect_status 200 "a viewer reads an encounter"
api POST "/api/v1/encounters/$EID/entries" '{"form":"vitals","values":{"temp_c":37}}'
expect_error 403 forbidden "a viewer cannot record"

# ---- a small clinic day: 5 patients x 3 encounters x 4 forms --------------------------------------------
TOKEN=$CLIN
n=0
for i in 1 2 3 4 5; do
  api POST /api/v1/patients "{\"given_name\":\"Day$i\",\"family_name\":\"Patient\",\"sex\":\"male\",\"birth_date\":\"198$i-01-01\"}"
  P=$(jqb .id)
  for t in triage consultation follow_up; do
    api POST "/api/v1/patients/$P/encounters" "{\"type\":\"$t\"}"
    E=$(jqb .id)
    api POST "/api/v1/encounters/$E/entries" '{"form":"triage","values":{"chief_complaint":"fever","emergency_signs":[],"priority_signs":[]}}'
    [ "$STATUS" = 201 ] && n=$((n + 1)) || echo "# triage: $BODY"
    api POST "/api/v1/encounters/$E/entries" '{"form":"vitals","values":{"temp_c":36.8,"heart_rate":72,"systolic_bp":120,"diastolic_bp":80}}'
    [ "$STATUS" = 201 ] && n=$((n + 1)) || echo "# vitals: $BODY"
    api POST "/api/v1/encounters/$E/entries" '{"form":"consultation","values":{"complaints":["fever"],"diagnoses":[{"diagnosis":"j069","certainty":"suspected","new_or_follow_up":"new"}]}}'
    [ "$STATUS" = 201 ] && n=$((n + 1)) || echo "# consultation: $BODY"
    api POST "/api/v1/encounters/$E/entries" '{"form":"prescription","values":{"allergies_checked":true,"items":[{"medication":"paracetamol_500mg_tab","dose":1,"dose_unit":"tablet","route":"oral","frequency":"three_times_daily","duration_days":3}]}}'
    [ "$STATUS" = 201 ] && n=$((n + 1)) || echo "# prescription: $BODY"
  done
done
check "a clinic day: 60 entries recorded ($n)" test "$n" = 60
api GET "/api/v1/encounters/$E"
expect_json '.entries[2].values.diagnoses[0].diagnosis' J06.9 "a diagnosis code is stored in the catalogue's spelling"
api GET "/api/v1/patients/$P/encounters"
expect_json '.items | length' 3 "the last patient has three visits"

api GET "/api/v1/encounters/$E?lang=es"
expect_json '.entries[2].display.fields[] | select(.name == "diagnoses") | .rows[0][0].text | startswith("J06.9 ")' true \
  "a diagnosis reads as its code and its Spanish title"

stop_node
check "the server log holds no health data" sh -c "! grep -q 'Amina\|Yusuf\|cholera\|wrong patient' '$NODE_LOG'"
# ---- the command line ------------------------------------------------------------------------------------
run_cmd "$SANAD_BIN" forms list --data "$NODE_DIR" --lang fr
printf '%s' "$OUT" >"$TMP/forms.json"
check "sanad forms list" test "$(jq '.items | map(.id) | index("phq9") != null' "$TMP/forms.json")" = true
run_cmd "$SANAD_BIN" forms show --data "$NODE_DIR" cholera_line --version 1
check "sanad forms show --version" test "$(printf '%s' "$OUT" | jq -r .version)" = 1
printf '%s' '{"id":"cli_form","title":{"en":"CLI"},"fields":[{"name":"x","type":"number","label":{"en":"X"},"min":5,"max":1}]}' >"$TMP/bad.json"
run_cmd "$SANAD_BIN" forms add --data "$NODE_DIR" "$TMP/bad.json"
check "sanad forms add refuses a bad definition (exit 1)" test "$RC" = 1
check "…naming the field" sh -c "printf '%s' '$ERR' | grep -q 'fields\[0\].max'"
printf '%s' '{"id":"cli_form","title":{"en":"CLI"},"fields":[{"name":"x","type":"number","label":{"en":"X"}}]}' >"$TMP/good.json"
run_cmd "$SANAD_BIN" forms add --data "$NODE_DIR" "$TMP/good.json"
check "sanad forms add" test "$RC" = 0
run_cmd "$SANAD_BIN" forms add --data "$NODE_DIR" "$TMP/good.json"
check "sanad forms add again stores version 2" test "$(printf '%s' "$OUT" | jq -r .version)" = 2
printf '%s\n' "$BAD" >"$TMP/survey.csv"
run_cmd "$SANAD_BIN" forms import --data "$NODE_DIR" --survey "$TMP/survey.csv"
check "sanad forms import reports what it cannot represent (exit 1)" test "$RC" = 1
check "…by sheet, row and column" sh -c "printf '%s' '$ERR' | grep -q 'survey:2:type'"
run_cmd "$SANAD_BIN" export entries --data "$NODE_DIR" --lang ar
check "sanad export entries" test "$RC" = 0
check "…every entry as a JSON line ($(printf '%s\n' "$OUT" | wc -l))" test "$(printf '%s\n' "$OUT" | wc -l)" -ge 60
check "…read in Arabic" sh -c "printf '%s\n' '$(printf '%s\n' "$OUT" | head -1 | jq -c .display.title)' | grep -q '[^ -~]'"
check "…withdrawn entries marked" test "$(printf '%s\n' "$OUT" | jq -r 'select(.status == "entered_in_error") | .id' | head -1)" = "$V2"
done_testing
