#!/bin/sh
# t0900-catalogues.sh — the shipped catalogues through the real binary: GET /api/v1/catalogues/{kind} for
# icd10, medicines and his-categories; search by code (any case, with or without the dot) and by words in
# English, French (accents optional) and Arabic; labels in the asked language with fallback; limits and
# errors (404 unknown catalogue, 400 bad limit or over-long q); who may search; a clean server log.
. "$(dirname "$0")/lib.sh"

start_node
ADMIN=$(login admin "$ADMIN_PW")
[ -n "$ADMIN" ] || bail "sign in as admin"
TOKEN=$ADMIN

# uri S: S percent-encoded for a query string.
uri() {
  jq -rn --arg s "$1" '$s | @uri'
}

# expect_has WHAT CODE: the last answer is 200 and its items hold CODE.
expect_has() {
  if [ "$STATUS" = 200 ] && [ "$(jqb "[.items[].code] | index(\"$2\") != null")" = true ]; then ok "$1"; else
    not_ok "$1" "status $STATUS; $2 not in the items" "body: $(printf '%s' "$BODY" | head -c 600)"; fi
}

# ---- ICD-10 -----------------------------------------------------------------------------------------
api GET "/api/v1/catalogues/icd10?q=j189"
expect_status 200 "search ICD-10 by a code typed without the dot"
expect_json '.items[0].code' J18.9 "j189 finds J18.9 first"
expect_json '.items[0] | (.label | length > 0) and (.his_category | length > 0) and (.his_label | length > 0)' true \
  "an ICD-10 item has a label, a HIS category and its label"
expect_json '.items[0] | has("form")' false "an ICD-10 item has no medicine fields"
api GET "/api/v1/catalogues/icd10?q=J18.&limit=100"
expect_json '[.items[].code | startswith("J18")] | all' true "J18. lists only J18 codes"
expect_has "J18. lists J18.9" J18.9

api GET "/api/v1/catalogues/icd10?q=pneumonia&limit=100"
expect_has "English word: pneumonia finds J18.9" J18.9
api GET "/api/v1/catalogues/icd10?q=diarrhee&lang=fr&limit=100"
expect_has "French word without its accent: diarrhee finds A09" A09
expect_json '[.items[] | select(.code == "A09") | .label | ascii_downcase | test("diarrh")] | first' true \
  "the A09 label comes in French"
api GET "/api/v1/catalogues/icd10?q=a09&lang=fr"
FR_A09=$(jqb '.items[0].label')
api GET "/api/v1/catalogues/icd10?q=a09&lang=fr-CA"
expect_json '.items[0].label' "$FR_A09" "lang=fr-CA answers in French"
api GET "/api/v1/catalogues/icd10?q=a09&lang=ar"
AR_A09=$(jqb '.items[0].label')
case "$AR_A09" in *[ابتثجحخدذرزسشصضطظعغفقكلمنهوي]*) ok "lang=ar answers in Arabic script" ;;
  *) not_ok "lang=ar answers in Arabic script" "got: $AR_A09" ;; esac
api GET "/api/v1/catalogues/icd10?q=$(uri "${AR_A09%% *}")&lang=ar&limit=100"
expect_has "an Arabic word finds A09" A09
api GET "/api/v1/catalogues/icd10?q=a09&lang=de"
api GET "/api/v1/catalogues/icd10?q=a09"
EN_A09=$(jqb '.items[0].label')
api GET "/api/v1/catalogues/icd10?q=a09&lang=de"
expect_json '.items[0].label' "$EN_A09" "an unshipped language falls back to English"
check "the English, French and Arabic labels differ" test "$EN_A09" != "$FR_A09" -a "$FR_A09" != "$AR_A09"

# ---- medicines --------------------------------------------------------------------------------------
api GET "/api/v1/catalogues/medicines?q=$(uri 'amox 500')"
expect_status 200 "search medicines"
expect_has "amox 500 finds amoxicillin 500 mg capsules" amoxicillin_500mg_cap
expect_json '[.items[].code] | index("amoxicillin_250mg_cap")' null "amox 500 leaves out the 250 mg capsules"
expect_json '.items[] | select(.code == "amoxicillin_500mg_cap") | "\(.label)|\(.form)|\(.strength)|\(.route)|\(.atc)"' \
  "Amoxicillin|capsule|500 mg|oral|J01CA04" "a medicine has label, form, strength, route and ATC code"
api GET "/api/v1/catalogues/medicines?q=AMOXICILLIN_500MG_CAP&lang=ar"
expect_json '.items[0].code' amoxicillin_500mg_cap "a medicine code in capitals finds it first"
expect_json '.items[0].label' "أموكسيسيلين" "lang=ar: the Arabic name"
api GET "/api/v1/catalogues/medicines?q=$(uri 'أملاح الإماهة')&lang=fr"
expect_has "Arabic words find ORS" ors_sachet
expect_json '.items[] | select(.code == "ors_sachet") | .label' "Sels de réhydratation orale (osmolarité réduite)" \
  "... labelled in French when asked"
api GET "/api/v1/catalogues/medicines?q=$(uri 'ácido fólico')&lang=es&limit=100"
expect_has "Spanish with accents" folic_acid_5mg_tab
api GET "/api/v1/catalogues/medicines?q=acido%20folico&lang=es&limit=100"
expect_has "Spanish without accents" ferrous_folic_tab
api GET "/api/v1/catalogues/medicines?q=zzzz"
expect_json '.items | length' 0 "no match: an empty list"

# ---- HIS categories ---------------------------------------------------------------------------------
api GET "/api/v1/catalogues/his-categories?limit=100"
expect_status 200 "list the HIS categories"
check "at least 35 HIS categories" test "$(jqb '.items | length')" -ge 35
expect_json '([.items[] | keys] | unique) == [["code","label"]]' true "a HIS category has a code and a label"
expect_json '[.items[].code] == ([.items[].code] | sort_by(ascii_downcase))' true "listed in code order"
HIS1=$(jqb '.items[0].code')
api GET "/api/v1/catalogues/his-categories?q=$(uri "$HIS1")"
expect_json '.items[0].code' "$HIS1" "a HIS category by its code"

# ---- limits -----------------------------------------------------------------------------------------
api GET "/api/v1/catalogues/icd10"
expect_json '.items | length' 20 "without q: the first 20 by code"
api GET "/api/v1/catalogues/icd10?limit=100"
expect_json '.items | length' 100 "limit=100"
api GET "/api/v1/catalogues/medicines?q=a&limit=1"
expect_json '.items | length' 1 "limit=1"
for l in 0 101 -1 abc 1.5 ''; do
  api GET "/api/v1/catalogues/medicines?limit=$l"
  expect_error 400 invalid_limit "limit=$l"
done
Q100=$(printf '%0100d' 0)
api GET "/api/v1/catalogues/medicines?q=$Q100"
expect_status 200 "q of 100 bytes"
api GET "/api/v1/catalogues/medicines?q=${Q100}1"
expect_error 400 query_too_long "q of 101 bytes"
api GET "/api/v1/catalogues/medicines?q=%C3"
expect_error 400 invalid_utf8 "q that is not UTF-8"
for k in vaccines ICD10 his_categories his; do
  api GET "/api/v1/catalogues/$k"
  expect_error 404 catalogue_not_found "unknown catalogue '$k'"
done

# ---- who may search ---------------------------------------------------------------------------------
for r in clinician registrar viewer; do
  api POST /api/v1/users "{\"username\":\"c-$r\",\"role\":\"$r\",\"password\":\"$r-password-0123\"}"
  [ "$STATUS" = 201 ] || bail "create the $r user" "got $STATUS: $BODY"
done
for r in clinician registrar viewer; do
  TOKEN=$(login "c-$r" "$r-password-0123")
  api GET "/api/v1/catalogues/medicines?q=paracetamol"
  expect_has "a $r may search" paracetamol_500mg_tab
done
TOKEN=
api GET "/api/v1/catalogues/medicines?q=paracetamol"
expect_error 401 not_signed_in "no session"
api POST "/api/v1/catalogues/medicines" '{}'
check "POST is not a catalogue method (status $STATUS)" test "$STATUS" = 405 -o "$STATUS" = 401

# ---- the server log ---------------------------------------------------------------------------------
stop_node
for s in pneumonia diarrhee 'amox 500' 'أملاح' folico zzzz; do
  if grep -qiF -- "$s" "$NODE_LOG"; then
    not_ok "the server log does not contain the search text '$s'" "$(grep -iF -- "$s" "$NODE_LOG" | head -3)"
  else
    ok "the server log does not contain the search text '$s'"
  fi
done
check "the server log names the route pattern" grep -q 'GET /api/v1/catalogues/{kind} ' "$NODE_LOG"

done_testing
