#!/bin/sh
# t0740-appointments.sh — appointments end to end through the real binary: booking (and what is refused),
# the day's queue of a site by time with the patients' names, arrival, fulfilment by a visit, cancellation,
# rescheduling, follow-ups booked from a visit, the transitions refused with 409 invalid_transition, other
# sites getting 404, the roles, the missed sweep (at start, and before a past day's queue), the audit log
# and the change log, and a server log without health data.
. "$(dirname "$0")/lib.sh"

day() {
  date -u -d "$1" +%F
}
TODAY=$(day today)
TOMORROW=$(day tomorrow)
IN3=$(day '3 days')
IN14=$(day '14 days')

start_node
ADMIN=$(login admin "$ADMIN_PW")
[ -n "$ADMIN" ] || bail "sign in as admin"
TOKEN=$ADMIN
api GET /api/v1/me
SITE1=$(jqb '.sites[0]')
for r in clinician registrar viewer; do
  api POST /api/v1/users "{\"username\":\"a-$r\",\"role\":\"$r\",\"password\":\"$r-password-0123\"}"
  [ "$STATUS" = 201 ] || bail "create the $r user" "got $STATUS: $BODY"
done
CLIN=$(login a-clinician clinician-password-0123)
REG=$(login a-registrar registrar-password-0123)
VIEW=$(login a-viewer viewer-password-0123)
[ -n "$CLIN" ] && [ -n "$REG" ] && [ -n "$VIEW" ] || bail "sign in as every role"

TOKEN=$REG
api POST /api/v1/patients '{"given_name":"Amina","family_name":"Yusuf","sex":"female","birth_date":"1990-04-02"}'
PID=$(jqb .id)
api POST /api/v1/patients '{"given_name":"Omar","middle_name":"Ali","family_name":"Haddad","sex":"male"}'
PID2=$(jqb .id)
[ -n "$PID" ] && [ -n "$PID2" ] || bail "register two patients"

# ---- booking ----------------------------------------------------------------------------------------------
api POST "/api/v1/patients/$PID/appointments" "{\"starts_at\":\"${TOMORROW}T09:00Z\",\"service\":\"antenatal\",\"reason\":\"second antenatal visit\"}"
expect_status 201 "a registrar books an appointment"
A1=$(jqb .id)
expect_json .status booked "a new appointment is booked"
expect_json .site_id "$SITE1" "…at the patient's site"
expect_json .booked_by a-registrar "…by the caller"
expect_json .starts_at "${TOMORROW}T09:00:00Z" "…its time written out to the second"
expect_json .day "$TOMORROW" "…and its day derived"
api POST "/api/v1/patients/$PID2/appointments" "{\"starts_at\":\"${TOMORROW}T08:30Z\",\"service\":\"ncd\"}"
expect_status 201 "book a second patient earlier the same day"
A2=$(jqb .id)
api POST "/api/v1/patients/$PID/appointments" "{\"starts_at\":\"${TOMORROW}T11:00Z\",\"service\":\"vaccination\"}"
A3=$(jqb .id)

api POST "/api/v1/patients/$PID/appointments" "{\"starts_at\":\"$(day '3 days ago')T09:00Z\",\"service\":\"ncd\"}"
expect_error 422 time_in_past "a booking more than a day back"
api POST "/api/v1/patients/$PID/appointments" '{"starts_at":"2999-01-01T09:00Z","service":"ncd"}'
expect_error 422 time_too_far "a booking centuries ahead"
api POST "/api/v1/patients/$PID/appointments" "{\"starts_at\":\"${TOMORROW} 9am\",\"service\":\"ncd\"}"
expect_error 422 invalid_time
api POST "/api/v1/patients/$PID/appointments" "{\"starts_at\":\"${TOMORROW}T09:00Z\",\"service\":\"Antenatal care!\"}"
expect_error 422 invalid_service "a service is a code"
api POST "/api/v1/patients/$PID/appointments" '{"service":"ncd"}'
expect_error 400 missing_field "starts_at is required"
api POST "/api/v1/patients/$PID/appointments" "{\"starts_at\":\"${TOMORROW}T09:00Z\",\"service\":\"ncd\",\"status\":\"fulfilled\"}"
expect_error 400 unknown_field "the status of a new booking is not the caller's to choose"
api POST "/api/v1/patients/00000000-0000-7000-8000-000000000000/appointments" "{\"starts_at\":\"${TOMORROW}T09:00Z\",\"service\":\"ncd\"}"
expect_error 404 patient_not_found
TOKEN=$VIEW
api POST "/api/v1/patients/$PID/appointments" "{\"starts_at\":\"${TOMORROW}T09:00Z\",\"service\":\"ncd\"}"
expect_error 403 forbidden "a viewer cannot book"
api GET "/api/v1/appointments/$A1"
expect_status 200 "a viewer reads an appointment"
api PATCH "/api/v1/appointments/$A1" '{"status":"arrived"}'
expect_error 403 forbidden "a viewer cannot check a patient in"

# ---- the day's queue ----------------------------------------------------------------------------------------
TOKEN=$REG
api GET "/api/v1/appointments?date=$TOMORROW"
expect_status 200 "tomorrow's queue"
expect_json '.items | length' 3 "…holds the three bookings"
expect_json '[.items[].id] | join(" ")' "$A2 $A1 $A3" "…by time"
expect_json '.items[0].patient_name' "Omar Ali Haddad" "…with the patient's name"
expect_json '.items[1].patient_name' "Amina Yusuf"
expect_json .site_id "$SITE1" "…of the caller's site"
expect_json .truncated false
api GET "/api/v1/appointments?site=$SITE1&date=$TODAY"
expect_json '.items | length' 0 "today's queue is empty"
api GET "/api/v1/appointments?date=tomorrow"
expect_error 400 invalid_date
api GET "/api/v1/appointments?date=$TOMORROW&site=01234567-89ab-7def-8123-456789abcdef"
expect_error 403 site_not_allowed "the queue of a site the caller does not belong to"
Q0=$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from audit_log where action = 'appointment.queue'")
api GET "/api/v1/appointments?date=$TOMORROW"
Q1=$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from audit_log where action = 'appointment.queue'")
check "a queue read is audited once ($Q0 -> $Q1), not once per patient" test "$Q1" = $((Q0 + 1))

# ---- arrive, fulfil, cancel, reschedule -------------------------------------------------------------------
api PATCH "/api/v1/appointments/$A1" '{"status":"fulfilled"}'
expect_error 409 invalid_transition "booked -> fulfilled skips the arrival"
check "…naming from and to" sh -c "printf '%s' '$(jqb .error.message)' | grep -q 'booked to fulfilled'"
api PATCH "/api/v1/appointments/$A1" '{"status":"arrived"}'
expect_status 200 "the registrar checks the patient in"
expect_json .status arrived
api PATCH "/api/v1/appointments/$A1" '{"status":"cancelled"}'
expect_error 409 invalid_transition "arrived -> cancelled"
api PATCH "/api/v1/appointments/$A1" "{\"starts_at\":\"${IN3}T09:00Z\"}"
expect_error 409 not_booked "an arrived appointment is not rescheduled"
api PATCH "/api/v1/appointments/$A1" '{"status":"missed"}'
expect_error 409 invalid_transition "nobody marks an appointment missed by hand"
api PATCH "/api/v1/appointments/$A1" '{"status":"seen"}'
expect_error 422 invalid_status
api PATCH "/api/v1/appointments/$A1" '{"service":"ncd"}'
expect_error 400 unknown_field "the service does not change"

TOKEN=$CLIN
api POST "/api/v1/patients/$PID/encounters" '{"type":"consultation"}'
EID=$(jqb .id)
api POST "/api/v1/patients/$PID2/encounters" '{"type":"consultation"}'
EID2=$(jqb .id)
api PATCH "/api/v1/appointments/$A1" "{\"status\":\"fulfilled\",\"encounter_id\":\"$EID2\"}"
expect_error 422 invalid_encounter "fulfilled by another patient's visit"
api PATCH "/api/v1/appointments/$A1" "{\"status\":\"fulfilled\",\"encounter_id\":\"$EID\"}"
expect_status 200 "the clinician fulfils it with the visit"
expect_json .status fulfilled
expect_json .encounter_id "$EID" "…which it names"
api PATCH "/api/v1/appointments/$A1" '{"status":"arrived"}'
expect_error 409 invalid_transition "fulfilled is final"
api PATCH "/api/v1/appointments/$A1" '{"notes":"next visit in four weeks"}'
expect_status 200 "notes may still be added"

TOKEN=$REG
api PATCH "/api/v1/appointments/$A2" '{"status":"cancelled","notes":"phoned to cancel"}'
expect_status 200 "the registrar cancels one"
expect_json .status cancelled
api PATCH "/api/v1/appointments/$A2" '{"status":"arrived"}'
expect_error 409 invalid_transition "cancelled is final"
api PATCH "/api/v1/appointments/$A3" "{\"starts_at\":\"${IN3}T10:15Z\"}"
expect_status 200 "reschedule a booked appointment"
expect_json .day "$IN3" "…to another day"
expect_json .status booked
api PATCH "/api/v1/appointments/$A3" "{\"starts_at\":\"$(day '5 days ago')T10:15Z\"}"
expect_error 422 time_in_past "…but not into the past"
api GET "/api/v1/appointments?date=$IN3"
expect_json '[.items[].id] | join(" ")' "$A3" "the rescheduled one is in its new day's queue"
api GET "/api/v1/appointments?date=$TOMORROW"
expect_json '[.items[] | "\(.id)=\(.status)"] | join(" ")' "$A2=cancelled $A1=fulfilled" "…and out of the old one's"

# ---- follow-up from a visit -------------------------------------------------------------------------------
TOKEN=$CLIN
api POST "/api/v1/encounters/$EID/follow-up" "{\"starts_at\":\"${IN14}T09:00Z\",\"reason\":\"blood pressure review\"}"
expect_status 201 "book a follow-up from the visit"
F1=$(jqb .id)
expect_json .patient_id "$PID" "…for the visit's patient"
expect_json .encounter_id "$EID" "…linked to the visit"
expect_json .service follow_up "…as a follow-up"
expect_json .booked_by a-clinician
api POST "/api/v1/encounters/00000000-0000-7000-8000-000000000000/follow-up" "{\"starts_at\":\"${IN14}T09:00Z\"}"
expect_error 404 encounter_not_found
api PATCH "/api/v1/encounters/$EID2" '{"status":"cancelled"}'
api POST "/api/v1/encounters/$EID2/follow-up" "{\"starts_at\":\"${IN14}T09:00Z\"}"
expect_error 409 encounter_cancelled "no follow-up of a cancelled visit"
TOKEN=$REG
api POST "/api/v1/encounters/$EID/follow-up" "{\"starts_at\":\"${IN14}T09:00Z\"}"
expect_error 403 forbidden "a registrar does not book from a visit"

# ---- a patient's appointments ------------------------------------------------------------------------------
api GET "/api/v1/patients/$PID/appointments"
expect_status 200 "list a patient's appointments"
expect_json '[.items[].id] | join(" ")' "$F1 $A3 $A1" "…the latest first"
api GET "/api/v1/patients/$PID/appointments?limit=1"
expect_json .next "$F1" "…paged"
api GET "/api/v1/patients/$PID/appointments?limit=1&cursor=$F1"
expect_json '.items[0].id' "$A3" "…the next page"
api GET "/api/v1/patients/$PID/appointments?limit=0"
expect_error 400 invalid_limit
api GET "/api/v1/appointments/$A1"
expect_json .notes "next visit in four weeks" "read one appointment"

# ---- another site ---------------------------------------------------------------------------------------------
TOKEN=$ADMIN
api POST /api/v1/sites '{"name":"Mobile team north"}'
SITE2=$(jqb .id)
api POST /api/v1/users "{\"username\":\"a-north\",\"role\":\"clinician\",\"password\":\"north-password-0123\",\"sites\":[\"$SITE2\"]}"
NORTH=$(login a-north north-password-0123)
[ -n "$NORTH" ] || bail "sign in as the other site's clinician"
TOKEN=$NORTH
api GET "/api/v1/appointments/$A1"
expect_error 404 appointment_not_found "another site's clinician cannot read it"
api PATCH "/api/v1/appointments/$A3" '{"status":"cancelled"}'
expect_error 404 appointment_not_found "…nor change it"
api GET "/api/v1/patients/$PID/appointments"
expect_error 404 patient_not_found "…nor list the patient's"
api POST "/api/v1/patients/$PID/appointments" "{\"starts_at\":\"${TOMORROW}T09:00Z\",\"service\":\"ncd\"}"
expect_error 404 patient_not_found "…nor book for the patient"
api POST "/api/v1/encounters/$EID/follow-up" "{\"starts_at\":\"${IN14}T09:00Z\"}"
expect_error 404 encounter_not_found "…nor from the visit"
api GET "/api/v1/appointments?date=$TOMORROW&site=$SITE1"
expect_error 403 site_not_allowed "…nor see the first site's queue"
api GET "/api/v1/appointments?date=$TOMORROW"
expect_json '.items | length' 0 "its own site's queue is empty"

# ---- the missed sweep -----------------------------------------------------------------------------------------
TOKEN=$REG
api POST "/api/v1/patients/$PID2/appointments" "{\"starts_at\":\"${TOMORROW}T14:00Z\",\"service\":\"ncd\"}"
M1=$(jqb .id)
api POST "/api/v1/patients/$PID2/appointments" "{\"starts_at\":\"${TOMORROW}T15:00Z\",\"service\":\"ncd\"}"
M2=$(jqb .id)
api POST "/api/v1/patients/$PID2/appointments" "{\"starts_at\":\"${TOMORROW}T16:00Z\",\"service\":\"ncd\"}"
M3=$(jqb .id)
api PATCH "/api/v1/appointments/$M2" '{"status":"arrived"}'
# time passes: move them into the past behind the server's back (the API refuses past bookings)
AGO5=$(day '5 days ago')
AGO1=$(day yesterday)
stop_node
sqlite3 "$NODE_DIR/sanad.db" "update appointments set starts_at = '${AGO5}T14:00:00Z', day = '$AGO5' where id in ('$M1', '$M2');
  update appointments set starts_at = '${AGO1}T16:00:00Z', day = '$AGO1' where id = '$M3'"
start_node "$NODE_DIR"
TOKEN=$REG
api GET "/api/v1/appointments/$M1"
expect_json .status missed "an appointment booked five days ago is marked missed when the node starts"
api GET "/api/v1/appointments/$M2"
expect_json .status missed "…an arrived one too (never fulfilled)"
api GET "/api/v1/appointments/$M3"
expect_json .status booked "…but not yesterday's"
check "the start sweep is logged as a count" grep -q 'appointments: 2 marked missed' "$NODE_LOG"
api PATCH "/api/v1/appointments/$M1" '{"status":"arrived"}'
expect_error 409 invalid_transition "a missed appointment is not checked in"
check "…naming from and to" sh -c "printf '%s' '$(jqb .error.message)' | grep -q 'missed to arrived'"
api PATCH "/api/v1/appointments/$M2" '{"status":"fulfilled"}'
expect_error 409 invalid_transition "…nor fulfilled"
api PATCH "/api/v1/appointments/$M1" "{\"starts_at\":\"${IN3}T09:00Z\"}"
expect_error 409 not_booked "…nor rescheduled (book a new one)"
api PATCH "/api/v1/appointments/$M1" '{"notes":"moved away"}'
expect_status 200 "…but notes are kept"
expect_json .status missed
# while running: a past day's queue sweeps first
sqlite3 "$NODE_DIR/sanad.db" "update appointments set starts_at = '$(day '3 days ago')T16:00:00Z', day = '$(day '3 days ago')' where id = '$M3'"
api GET "/api/v1/appointments?date=$(day '3 days ago')"
expect_json '[.items[] | "\(.id)=\(.status)"] | join(" ")' "$M3=missed" "a past day's queue marks its unattended appointments missed"
check "each mark went through the change log (missed_day, the day itself)" \
  test "$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from changes where tbl = 'appointment' and row_id in ('$M1','$M2','$M3') and fields like '%\"missed_day\"%'")" = 3
check "appointments replicate: every booking is in the change log" \
  test "$(sqlite3 "$NODE_DIR/sanad.db" "select count(distinct row_id) from changes where tbl = 'appointment'")" = 7

# ---- audit ----------------------------------------------------------------------------------------------------
for a in appointment.create appointment.update appointment.read appointment.list appointment.queue appointment.missed; do
  check "audit holds $a" test "$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from audit_log where action = '$a'")" -ge 1
done
check "the sweep is audited once per appointment, as the system" \
  test "$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from audit_log where action = 'appointment.missed' and username = 'system:missed-appointments'")" = 3
TOKEN=$ADMIN
api GET '/api/v1/audit?limit=500'
expect_json "[.items[] | select(.action == \"appointment.update\" and .entity_id == \"$A1\")] | length" 3 \
  "each change of an appointment that was made is audited (arrived, fulfilled, notes)"

stop_node
check "the server log holds no health data" sh -c "! grep -qi 'Amina\|Yusuf\|Haddad\|antenatal\|blood pressure\|moved away' '$NODE_LOG'"
done_testing
