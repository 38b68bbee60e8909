#!/bin/sh
# t0750-chart.sh — the patient chart through the real binary: problems, allergies, reported medications
# and immunizations (create, read, change, entered in error, bad input), the immunization plan for a
# newly arrived child with no records, the summary (allergies, problems, current medications from
# prescriptions and reports, last vitals, alerts, vaccinations due), the timeline (paged, newest first),
# a national schedule replacing WHO's, roles and audit.
. "$(dirname "$0")/lib.sh"

start_node
ADMIN=$(login admin "$ADMIN_PW")
[ -n "$ADMIN" ] || bail "sign in as admin"
TOKEN=$ADMIN
for r in clinician registrar viewer; do
  api POST /api/v1/users "{\"username\":\"c-$r\",\"role\":\"$r\",\"password\":\"$r-password-0123\"}"
  [ "$STATUS" = 201 ] || bail "create the $r user" "got $STATUS: $BODY"
done
CLIN=$(login c-clinician clinician-password-0123)
REG=$(login c-registrar registrar-password-0123)
VIEW=$(login c-viewer viewer-password-0123)
[ -n "$CLIN" ] && [ -n "$REG" ] && [ -n "$VIEW" ] || bail "sign in as every role"
TOKEN=$CLIN

# a two-year-old who arrived with no vaccination card
BORN=$(date -u -d '2 years ago 1 month ago' +%Y-%m-%d)
api POST /api/v1/patients "{\"given_name\":\"Rahma\",\"family_name\":\"Idris\",\"sex\":\"female\",\"birth_date\":\"$BORN\"}"
expect_status 201 "register a child"
PID=$(jqb .id)

# ---- problems ------------------------------------------------------------------------------------------
api POST "/api/v1/patients/$PID/problems" '{"code":"d509","onset":"2026-01"}'
expect_status 201 "record a problem (coded)"
PR=$(jqb .id)
expect_json .code D50.9 "the code is stored in the catalogue's spelling"
expect_json .status active
api POST "/api/v1/patients/$PID/problems" '{"title":"Recurrent wheeze"}'
expect_status 201 "a problem with only a title"
api POST "/api/v1/patients/$PID/problems" '{"onset":"2026"}'
expect_error 422 missing_field "a problem needs a code or a title"
api POST "/api/v1/patients/$PID/problems" '{"code":"XYZ"}'
expect_error 422 unknown_code
api POST "/api/v1/patients/$PID/problems" '{"title":"x","onset":"2999-01"}'
expect_error 422 date_in_future
api POST "/api/v1/patients/$PID/problems" '{"title":"x","colour":"red"}'
expect_error 400 unknown_field
api PATCH "/api/v1/problems/$PR" '{"status":"resolved","resolved_on":"2026-06-01"}'
expect_status 200 "resolve a problem"
expect_json .status resolved
api PATCH "/api/v1/problems/$PR" '{"status":"gone"}'
expect_error 422 invalid_status

# ---- allergies -----------------------------------------------------------------------------------------
api POST "/api/v1/patients/$PID/allergies" '{"substance":"Penicillin","substance_code":"amoxicillin_500mg_cap","reaction":"anaphylaxis","severity":"severe","verification":"reported"}'
expect_status 201 "record a severe allergy"
AL=$(jqb .id)
api POST "/api/v1/patients/$PID/allergies" '{"substance":"Peanuts","severity":"extreme","verification":"reported"}'
expect_error 422 invalid_option
api POST "/api/v1/patients/$PID/allergies" '{"substance":"Peanuts"}'
expect_error 422 missing_field "verified or reported must be said"

# ---- reported medications ------------------------------------------------------------------------------
api POST "/api/v1/patients/$PID/medications" '{"name":"Cough syrup from the pharmacy","dose":"5 mL","frequency":"three times a day"}'
expect_status 201 "a reported home medication"
api POST "/api/v1/patients/$PID/medications" '{"dose":"5 mL"}'
expect_error 422 missing_field

# ---- immunizations ---------------------------------------------------------------------------------------
api POST "/api/v1/patients/$PID/immunizations" "{\"vaccine\":\"bcg\",\"dose\":1,\"given_on\":\"$BORN\",\"documented\":false}"
expect_status 201 "a BCG dose reported without a card"
IM=$(jqb .id)
api POST "/api/v1/patients/$PID/immunizations" '{"vaccine":"bcg","dose":1,"given_on":"1990-01-01"}'
expect_error 422 before_birth "a dose before birth"
api POST "/api/v1/patients/$PID/immunizations" '{"vaccine":"bcg","dose":1,"given_on":"2999-01-01"}'
expect_error 422 date_in_future "a dose in the future"
api POST "/api/v1/patients/$PID/immunizations" "{\"vaccine\":\"smallpox_x\",\"given_on\":\"$BORN\"}"
expect_error 422 unknown_vaccine
api PATCH "/api/v1/immunizations/$IM" '{"given_on":"2025-01-01"}'
expect_error 422 immutable_field "a recorded dose's date does not change"
api GET "/api/v1/patients/$PID/immunizations/due"
expect_status 200 "the immunization plan"
check "a child with no records has doses due or overdue" \
  test "$(jqb '(.due | length) + (.overdue | length)')" -ge 3
check "every item names the rule that produced it" test "$(jqb '[.due[], .overdue[] | .rule | type == "string" and length > 10] | all')" = true
check "BCG given is not due again" test "$(jqb '[.due[], .overdue[] | select(.vaccine == "bcg")] | length')" = 0

# ---- a visit with vitals and a prescription -------------------------------------------------------------
api POST "/api/v1/patients/$PID/encounters" '{"type":"consultation"}'
EID=$(jqb .id)
api POST "/api/v1/encounters/$EID/entries" '{"form":"vitals","values":{"temp_c":38.4,"weight_kg":11.2,"height_cm":86}}'
expect_status 201 "vitals"
api POST "/api/v1/encounters/$EID/entries" '{"form":"prescription","values":{"allergies_checked":true,"items":[{"medication":"paracetamol_120mg_5ml_susp","dose":5,"dose_unit":"ml","route":"oral","frequency":"every_6_hours","duration_days":3}]}}'
expect_status 201 "a prescription"

# ---- the summary -----------------------------------------------------------------------------------------
api GET "/api/v1/patients/$PID/summary"
expect_status 200 "the summary"
expect_json '.patient.given_name' Rahma
expect_json '.allergies[0].substance' Penicillin
expect_json '[.alerts[].code] | index("severe_allergy") != null' true "a severe allergy raises an alert"
expect_json '.problems | length' 1 "only active problems (one was resolved)"
expect_json '[.current_medications[].source] | sort | join(",")' "prescription,reported" "current medications from both sources"
expect_json '.current_medications[] | select(.source == "prescription") | .medication' paracetamol_120mg_5ml_susp
expect_json '.last_vitals.values.temp_c' 38.4 "the last vitals"
check "vaccinations due or overdue in the summary" test "$(jqb '(.immunizations.due | length) + (.immunizations.overdue | length)')" -ge 3
expect_json '.immunizations.given | length' 1

# entered in error disappears from the summary
api PATCH "/api/v1/allergies/$AL" '{"status":"entered_in_error"}'
expect_status 200
api GET "/api/v1/patients/$PID/summary"
expect_json '.allergies | length' 0 "an allergy entered in error leaves the summary"
api GET "/api/v1/patients/$PID/allergies?all=1"
expect_json '.items | length' 1 "…but is kept"

# ---- the timeline ----------------------------------------------------------------------------------------
api POST "/api/v1/patients/$PID/encounters" '{"type":"follow_up"}'
E2=$(jqb .id)
api POST "/api/v1/encounters/$E2/entries" '{"form":"vitals","values":{"temp_c":37.0}}'
api GET "/api/v1/patients/$PID/timeline?limit=3"
expect_status 200 "the timeline"
expect_json '.items | length' 3
expect_json '.items[0].type' entry "newest first: the last entry"
NEXT=$(jqb .next)
api GET "/api/v1/patients/$PID/timeline?limit=3&cursor=$(jq -rn --arg c "$NEXT" '$c|@uri')"
expect_json '.items | length' 2 "the second page holds the rest (5 items in all)"
expect_json '.next' null
api GET "/api/v1/patients/$PID/timeline?cursor=garbage"
expect_error 400 invalid_cursor

# ---- a national schedule -----------------------------------------------------------------------------------
api GET /api/v1/immunization-schedule
expect_status 200 "the schedule in force"
expect_json .national false "WHO's by default"
SCHED=$(printf '%s' "$BODY" | jq -c .schedule)
api PUT /api/v1/immunization-schedule "$SCHED"
expect_error 403 forbidden "a clinician cannot load a schedule"
TOKEN=$ADMIN
api PUT /api/v1/immunization-schedule '{"vaccines":"nonsense"}'
expect_error 422 invalid_schedule
api PUT /api/v1/immunization-schedule "$SCHED"
expect_status 200 "an admin loads a national schedule"
expect_json .national true

# ---- roles and audit ---------------------------------------------------------------------------------------
TOKEN=$REG
api GET "/api/v1/patients/$PID/summary"
expect_error 403 forbidden "a registrar does not read the chart"
TOKEN=$VIEW
api GET "/api/v1/patients/$PID/summary"
expect_status 200 "a viewer reads the summary"
api POST "/api/v1/patients/$PID/problems" '{"title":"x"}'
expect_error 403 forbidden "a viewer cannot write"
TOKEN=$ADMIN
api GET '/api/v1/audit?limit=200'
for a in problem.create problem.update allergy.create immunization.create patient.summary patient.timeline immunization.due schedule.load; do
  check "audit holds $a" test "$(jqb "[.items[] | select(.action == \"$a\")] | length")" -ge 1
done

stop_node
check "the server log holds no health data" sh -c "! grep -q 'Rahma\|Penicillin\|wheeze' '$NODE_LOG'"
done_testing
