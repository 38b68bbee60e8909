#!/bin/sh
# t0710-import-export.sh — the patient CLI: `sanad import patients` (CSV with BOM, CRLF, quoted cells
# holding commas, quotes and newlines, Arabic and Cyrillic; all or nothing; bad rows reported as
# "row R, column 'C': reason"; --skip-bad; --map; duplicate identifiers; unknown columns; malformed CSV;
# cells that are not UTF-8 or too long; typed custom fields), `sanad export patients` (csv round trip
# through a second node with the same custom fields, jsonl), and `sanad demo` with fixed seeds.
# Imports run while the node serves, as docs/operations.md promises they may.
. "$(dirname "$0")/lib.sh"

A=$TMP/a
init_node "$A"

# live A: live patients in node dir A (from the database itself, not through the code under test).
live() {
  sqlite3 "$1/sanad.db" 'select count(*) from patients where deleted = 0'
}

# csv_cut MODE DROP FILE: parse FILE as RFC 4180 CSV and write it again without the columns named in
# DROP (comma-separated header names). MODE csv writes CSV (every cell quoted, CRLF); MODE lines writes
# one line per record, cells separated by US (0x1f), newlines inside cells as \n, for sort and compare.
csv_cut() {
  awk -v mode="$1" -v drop="$2" '
    BEGIN { RS = "\001" }
    { data = data $0 }
    function emit(   k, out, v, first) {
      rows++
      if (rows == 1) for (k = 1; k <= nf; k++) if (fld[k] in dropname) skip[k] = 1
      out = ""; first = 1
      for (k = 1; k <= nf; k++) {
        if (k in skip) continue
        v = fld[k]
        if (mode == "csv") { gsub(/"/, "\"\"", v); v = "\"" v "\"" } else gsub(/\n/, "\\n", v)
        out = out (first ? "" : (mode == "csv" ? "," : "\037")) v
        first = 0
      }
      printf "%s%s", out, (mode == "csv" ? "\r\n" : "\n")
    }
    END {
      n = split(drop, dn, ",")
      for (i = 1; i <= n; i++) dropname[dn[i]] = 1
      len = length(data); nf = 0; f = ""; q = 0
      for (i = 1; i <= len; i++) {
        c = substr(data, i, 1)
        if (q) {
          if (c == "\"") { if (substr(data, i + 1, 1) == "\"") { f = f "\""; i++ } else q = 0 }
          else f = f c
        } else if (c == "\"") q = 1
        else if (c == ",") { fld[++nf] = f; f = "" }
        else if (c == "\n") { fld[++nf] = f; f = ""; emit(); nf = 0 }
        else if (c != "\r") f = f c
      }
      if (nf > 0 || f != "") { fld[++nf] = f; emit() }
    }' "$3"
}

HEADER='given_name,family_name,sex,birth_date,phones,identifier.unhcr,name_original'

# ---- a good file ------------------------------------------------------------------------------------
# UTF-8 BOM, CRLF line ends, a comma, a doubled quote and a newline inside quoted cells, two phones in
# one cell, Arabic and Cyrillic
printf '\357\273\277%s\r\n' "$HEADER" >"$TMP/good.csv"
printf '%s\r\n' \
  '"Ali, Jr",Haddad,male,1985-02-03,"+963 944 000 111;0955 222 333",111-11C11111,علي حداد' >>"$TMP/good.csv"
# records end in CRLF, the line break inside the cell is a bare LF (as spreadsheets write them)
printf '%s\n%s\r\n' 'Olena,Shevchenko,female,1990,,222-22C22222,"Олена' 'Шевченко"' >>"$TMP/good.csv"
printf '%s\r\n' \
  'Zaid,"Abu ""Zaid""",male,1970-05,,,' \
  ',,female,,,333-33C33333,فاطمة الزهراء' \
  'Jean,Dupont,,,0033 6 12 34 56 78,, ' >>"$TMP/good.csv"
sanad import patients --data "$A" "$TMP/good.csv"
expect_rc 0 "import a good file"
expect_output out '^imported 5 patients' "it reports 'imported 5 patients'"
check "the node holds 5 patients" test "$(live "$A")" = 5

sanad export patients --data "$A" --format jsonl
expect_rc 0 "export jsonl"
cp "$TMP/.out" "$TMP/good.jsonl"
# pick GIVEN JQ-EXPR: JQ-EXPR on the exported record whose given_name is GIVEN.
pick() {
  jq -r --arg g "$1" "select(.given_name == \$g) | $2" "$TMP/good.jsonl"
}
check "a comma inside a quoted cell (Ali, Jr)" test "$(pick 'Ali, Jr' .family_name)" = Haddad
check "two phones separated by ';', normalised" \
  test "$(pick 'Ali, Jr' '.phones | join(" ")')" = "+963944000111 0955222333"
check "the Arabic original name" test "$(pick 'Ali, Jr' .name_original)" = "علي حداد"
check "the first header cell after the BOM is given_name" test "$(pick 'Ali, Jr' .sex)" = male
check "a newline inside a quoted cell" test "$(pick Olena .name_original)" = "Олена
Шевченко"
check "a doubled quote inside a quoted cell" test "$(pick Zaid .family_name)" = 'Abu "Zaid"'
check "birth_date 1970-05 has precision month" test "$(pick Zaid .birth_precision)" = month
check "a row with only the name in original script" \
  test "$(jq -r 'select(.name_original == "فاطمة الزهراء") | .identifiers.unhcr' "$TMP/good.jsonl")" = 333-33C33333
check "an empty sex cell gives sex unknown" test "$(pick Jean .sex)" = unknown
check "a phone with the 00 prefix" test "$(pick Jean '.phones[0]')" = +33612345678

start_node "$A"
TOKEN=$(login admin "$ADMIN_PW")
[ -n "$TOKEN" ] || bail "sign in as admin"
# found WHAT QUERY ID-JQ: the API search for QUERY returns the imported patient selected by ID-JQ.
found() {
  _id=$(jq -r "select($3) | .id" "$TMP/good.jsonl")
  api GET "/api/v1/patients?q=$(jq -rn --arg s "$2" '$s | @uri')"
  if [ "$STATUS" = 200 ] && [ -n "$_id" ] && [ "$(jqb "[.items[].id] | index(\"$_id\") != null")" = true ]; then
    ok "$1"
  else
    not_ok "$1" "q=$2 (want $_id): status $STATUS" "body: $(printf '%s' "$BODY" | head -c 400)"
  fi
}
found "the API finds the import by Arabic name (علي)" 'علي' '.given_name == "Ali, Jr"'
found "... by Latin name (Haddad)" 'Haddad' '.given_name == "Ali, Jr"'
found "... by Cyrillic name (Шевченко)" 'Шевченко' '.given_name == "Olena"'
found "... by its second phone (0955 222 333)" '0955 222 333' '.given_name == "Ali, Jr"'
found "... by UNHCR number (222 22c22222)" '222 22c22222' '.given_name == "Olena"'
found "... by the Latin spelling of the Arabic-only name (Fatima)" 'Fatima' '.name_original == "فاطمة الزهراء"'

# ---- bad rows: all or nothing ------------------------------------------------------------------------
# row 2 holds a newline inside a quoted cell: rows are records, as a spreadsheet numbers them
printf '%s\n' "$HEADER" \
  '"Good,",One,female,1990,,444-44C44444,"two' 'lines"' \
  'Bad,Sex,femme,1990,,,' \
  'Bad,Date,male,1990-13-01,,,' \
  'Good,Two,male,1991,,,' \
  'Bad,Phone,male,,call me,,' \
  'Bad,Future,male,2099,,,' \
  ',,male,1980,,,' >"$TMP/bad.csv"
sanad import patients --data "$A" "$TMP/bad.csv"
expect_rc 1 "a file with bad rows fails"
expect_output err "^row 3, column 'sex': " "row 3, column 'sex' is reported"
expect_output err "^row 4, column 'birth_date': " "row 4, column 'birth_date' is reported"
expect_output err "^row 6, column 'phones': " "row 6, column 'phones' is reported"
expect_output err "^row 7, column 'birth_date': .*future" "row 7, column 'birth_date' (in the future) is reported"
expect_output err "^row 8, column 'given_name': " "row 8 (no name at all) is reported"
expect_no_output err "^row (2|5)\\b" "the good rows are not reported"
expect_output err 'nothing was imported' "it says nothing was imported"
expect_no_output out 'imported' "it does not claim to have imported anything"
check "nothing was imported (still 5 patients)" test "$(live "$A")" = 5
api GET "/api/v1/patients?q=$(jq -rn --arg s '444-44C44444' '$s | @uri')"
expect_json '.items | length' 0 "the good row of the failed file cannot be found"

sanad import patients --data "$A" --skip-bad "$TMP/bad.csv"
expect_rc 0 "--skip-bad imports the rest"
expect_output out '^imported 2 patients, skipped 5 bad rows' "it reports 2 imported, 5 skipped"
expect_output err "^row 3, column 'sex': " "... and still lists the bad rows"
check "7 patients now" test "$(live "$A")" = 7
api GET "/api/v1/patients?q=$(jq -rn --arg s '444-44C44444' '$s | @uri')"
expect_json '.items[0].name_original' "two
lines" "the good row holding a newline was imported"

# ---- duplicate identifiers ---------------------------------------------------------------------------
printf '%s\n' "$HEADER" 'Dup,First,male,,,555-55C55555,' 'Dup,Second,male,,,555 55c55555,' >"$TMP/dup.csv"
sanad import patients --data "$A" "$TMP/dup.csv"
expect_rc 1 "a file repeating an identifier fails"
expect_output err "^row 3\\b.*(identifier|unhcr)" "the repeat (row 3) is reported"
expect_output err "^row 3, column 'identifier.unhcr': " "... at its column, identifier.unhcr"
expect_no_output err "^row 2\\b" "the first holder (row 2) is not"
check "nothing was imported (still 7)" test "$(live "$A")" = 7
printf '%s\n' "$HEADER" 'Again,Ali,male,,,111 11c11111,' >"$TMP/dup2.csv"
sanad import patients --data "$A" "$TMP/dup2.csv"
expect_rc 1 "an identifier already on the node fails"
expect_output err "^row 2\\b.*(identifier|unhcr)" "... and is reported as row 2"
check "nothing was imported (still 7)" test "$(live "$A")" = 7

# ---- column names -----------------------------------------------------------------------------------
printf '%s\n' 'given_name,surname,sex' 'Amina,Warsame,female' >"$TMP/unknown.csv"
sanad import patients --data "$A" "$TMP/unknown.csv"
expect_rc 1 "an unknown column fails"
expect_output err "^row 2\\b.*surname" "the row error names the unknown column 'surname'"
check "nothing was imported (still 7)" test "$(live "$A")" = 7

printf '%s\n' 'Prenom,Nom,sex' 'Amina,Warsame,female' 'Hodan,Farah,female' >"$TMP/map.csv"
sanad import patients --data "$A" --map "Prenom=given_name,Nom=family_name" "$TMP/map.csv"
expect_rc 0 "--map Prenom=given_name,Nom=family_name"
expect_output out '^imported 2 patients' "... imports both rows"
api GET "/api/v1/patients?q=warsame"
expect_json '.items[0].given_name + " " + .items[0].family_name' "Amina Warsame" "... under the mapped fields"
sanad import patients --data "$A" --map "Vorname=given_name" "$TMP/map.csv"
expect_rc 1 "--map naming a column the file does not have"
expect_output err "Vorname" "... names it"

printf '%s\n' "$HEADER" 'Too,Many,male,1990,,,,extra' >"$TMP/cells.csv"
sanad import patients --data "$A" "$TMP/cells.csv"
expect_rc 1 "a row with more cells than the header"
expect_output err '^row 2\b.*cells' "... is reported"

# ---- malformed CSV -----------------------------------------------------------------------------------
N_BEFORE=$(live "$A")
printf '%s\n' "$HEADER" 'Fine,Row,male,1990,,,' '"Unterminated,Quote,male,1990,,,' 'More,Rows,male,1990,,,' >"$TMP/open.csv"
sanad import patients --data "$A" "$TMP/open.csv"
expect_rc 1 "an unterminated quote fails"
expect_output err 'quot' "... with an error about the quoted cell"
expect_no_output err 'Unterminated|Fine|Rows' "... that echoes no patient data"
check "nothing was imported" test "$(live "$A")" = "$N_BEFORE"
printf '%s\n' "$HEADER" 'Fine,Row,male,1990,,,' 'Bro"ken,Quote,male,1990,,,' >"$TMP/stray.csv"
sanad import patients --data "$A" "$TMP/stray.csv"
expect_rc 1 "a quote inside an unquoted cell fails"
expect_output err 'not valid CSV near row 3' "... naming the row"
check "nothing was imported" test "$(live "$A")" = "$N_BEFORE"
sanad import patients --data "$A" "$TMP/no-such-file.csv"
expect_rc 1 "a missing file"
expect_output err "cannot open '.*no-such-file.csv'" "... is named"
sanad import patients --data "$A" --site 01a00000-0000-7000-8000-000000000000 "$TMP/good.csv"
expect_rc 1 "--site naming no site"
sanad import people --data "$A" "$TMP/good.csv"
expect_rc 2 "importing something other than patients is a usage error"
check "nothing was imported" test "$(live "$A")" = "$N_BEFORE"

# ---- cells that are not what they claim --------------------------------------------------------------
# a Latin-1 file: the cell is not UTF-8, and must be refused, never silently left out
printf 'given_name,family_name,camp\nJose,Garc\355a,Moria\n' >"$TMP/latin1.csv"
sanad import patients --data "$A" "$TMP/latin1.csv"
expect_rc 1 "a cell that is not UTF-8 (Latin-1 'García') fails the import"
expect_output err "^row 2, column 'family_name': " "... naming row 2, column 'family_name'"
check "nothing was imported" test "$(live "$A")" = "$N_BEFORE"
# a name in original script longer than its limit, and longer than any cell buffer: 2100 Arabic letters
LONG=$(awk 'BEGIN { for (i = 0; i < 2100; i++) printf "ف" }')
printf 'given_name,name_original\nLong,%s\n' "$LONG" >"$TMP/long.csv"
sanad import patients --data "$A" "$TMP/long.csv"
expect_rc 1 "a 4200-byte name_original fails the import"
expect_output err "^row 2, column 'name_original': " "... naming row 2, column 'name_original'"
check "nothing was imported" test "$(live "$A")" = "$N_BEFORE"

# ---- custom fields through the CSV -------------------------------------------------------------------
CONFIG='{"identifier_types":["ration_card"],"fields":[
 {"key":"household","type":"number","label":{"en":"Household income"}},
 {"key":"pregnant","type":"boolean","label":{"en":"Pregnant"}},
 {"key":"arrival","type":"date","label":{"en":"Arrival"}},
 {"key":"block","type":"select","label":{"en":"Block"},"options":[{"code":"a1","label":{"en":"A1"}}]},
 {"key":"ration","type":"text","label":{"en":"Ration book"},"searchable":true}]}'
api PUT /api/v1/registration-fields "$CONFIG"
expect_status 200 "custom fields on the first node"
printf '%s\n' 'given_name,family_name,custom.household,custom.pregnant,custom.arrival,custom.block,custom.ration,identifier.ration_card' \
  'Amal,Nasser,1234567,yes,2024-02-29,a1,RC-1111,RB 77' \
  'Basel,Nasser,2.5,no,,,,' >"$TMP/custom.csv"
sanad import patients --data "$A" "$TMP/custom.csv"
expect_rc 0 "import custom fields and a site-defined identifier type"
api GET "/api/v1/patients?q=RC-1111"
expect_json '.items[0].custom | "\(.household) \(.pregnant) \(.arrival) \(.block)"' "1234567 true 2024-02-29 a1" \
  "the cells became a number, a boolean, a date and an option code"
expect_json '.items[0].identifiers.ration_card' "RB 77" "... and the identifier"
printf '%s\n' 'given_name,custom.household,custom.pregnant' 'Bad,many,perhaps' >"$TMP/custom-bad.csv"
sanad import patients --data "$A" "$TMP/custom-bad.csv"
expect_rc 1 "a number cell that is no number fails"
expect_output err "^row 2, column 'custom.household': " "... naming column 'custom.household'"

# ---- export: csv round trip through a second node ---------------------------------------------------
sanad demo --data "$A" --patients 200 --seed 7
expect_rc 0 "add 200 demo patients to the first node (every field the generator fills)"
N_A=$(live "$A")
sanad export patients --data "$A" --format csv
expect_rc 0 "export csv"
cp "$TMP/.out" "$TMP/a.csv"
expect_output err "exported $N_A patients" "it exported all $N_A patients"
if csv_cut lines '' "$TMP/a.csv" | head -1 | tr '\037' , | grep -q '^id,site_id,given_name,'; then
  ok "the csv header starts id,site_id,given_name"
else
  not_ok "the csv header starts id,site_id,given_name" "$(head -1 "$TMP/a.csv")"
fi
check "the csv holds $N_A records and a header" test "$(csv_cut lines '' "$TMP/a.csv" | wc -l)" = $((N_A + 1))

A_PID=$NODE_PID A_LOG=$NODE_LOG A_BASE=$BASE A_TOKEN=$TOKEN
B=$TMP/b
start_node "$B"
TOKEN=$(login admin "$ADMIN_PW")
api PUT /api/v1/registration-fields "$CONFIG"
expect_status 200 "the same custom fields on a fresh second node"
stop_node
BASE=$A_BASE NODE_PID=$A_PID NODE_LOG=$A_LOG TOKEN=$A_TOKEN
# the export names the first node's site, which the second node does not have: refused, nothing
# imported, and the message says which column and why (records are never moved to another site silently)
sanad import patients --data "$B" "$TMP/a.csv"
if [ "$RC" = 1 ] && grep -q "column 'site_id'" "$TMP/.err" && grep -q "not a site of this node" "$TMP/.err"; then
  ok "the export's site_id of another node is refused, naming the column"; else
  not_ok "the export's site_id of another node is refused, naming the column" "exit $RC" "$(head -3 "$TMP/.err")"; fi
if [ "$(live "$B")" = 0 ]; then
  # go on without the node's own columns, to check the rest of the round trip
  csv_cut csv id,site_id,created_at,updated_at "$TMP/a.csv" >"$TMP/a-cut.csv"
  sanad import patients --data "$B" "$TMP/a-cut.csv"
  expect_rc 0 "the export without id, site_id, created_at, updated_at imports into a fresh node"
fi
expect_output out "^imported $N_A patients" "... all $N_A of them"
sanad export patients --data "$B" --format csv
expect_rc 0 "export the second node"
cp "$TMP/.out" "$TMP/b.csv"
csv_cut lines id,site_id,created_at,updated_at "$TMP/a.csv" | sort >"$TMP/a.lines"
csv_cut lines id,site_id,created_at,updated_at "$TMP/b.csv" | sort >"$TMP/b.lines"
if cmp -s "$TMP/a.lines" "$TMP/b.lines"; then
  ok "export -> import -> export gives the same rows (but id, site_id, created_at, updated_at)"
else
  not_ok "export -> import -> export gives the same rows" "$(diff "$TMP/a.lines" "$TMP/b.lines" | head -10)"
fi
check "the ids are new" sh -c "! cmp -s '$TMP/a.csv' '$TMP/b.csv'"
check "the csv writes the number 1234567 exactly" grep -q '"1234567"' "$TMP/a.csv"

sanad export patients --data "$B" --format jsonl
expect_rc 0 "export jsonl"
cp "$TMP/.out" "$TMP/b.jsonl"
check "jsonl: one line per patient ($N_A)" test "$(wc -l <"$TMP/b.jsonl")" = "$N_A"
check "jsonl: every line is one JSON object" \
  test "$(jq -c 'type == "object" and (.id | length) == 36' "$TMP/b.jsonl" 2>&1 | grep -c '^true$')" = "$N_A"
check "jsonl: no line breaks inside a record" test "$(jq -c . "$TMP/b.jsonl" | wc -l)" = "$N_A"
sanad export patients --data "$A" --format jsonl
jq -cS 'del(.id, .site_id, .created_at, .updated_at)' "$TMP/.out" | sort >"$TMP/a.norm"
jq -cS 'del(.id, .site_id, .created_at, .updated_at)' "$TMP/b.jsonl" | sort >"$TMP/b.norm"
if cmp -s "$TMP/a.norm" "$TMP/b.norm"; then ok "the jsonl exports of both nodes agree field by field"; else
  not_ok "the jsonl exports of both nodes agree field by field" "$(diff "$TMP/a.norm" "$TMP/b.norm" | head -6)"; fi
sanad export patients --data "$B" --format xml
expect_rc 2 "--format xml is a usage error"

# ---- demo -------------------------------------------------------------------------------------------
C=$TMP/c
init_node "$C"
sanad demo --data "$C" --patients 500 --seed 1
expect_rc 0 "demo --patients 500 --seed 1"
expect_output out '^added 500 demo patients .*seed 1' "... reports 500 added"
sanad demo --data "$C" --patients 500 --seed 2
expect_rc 0 "demo --patients 500 --seed 2 on the same node"
check "1000 patients" test "$(live "$C")" = 1000
sanad demo --data "$C" --patients 500 --seed 1
expect_rc 1 "demo --seed 1 again fails (the same people again)"
expect_output err 'identifier' "... because their identifiers are taken"
expect_no_output err 'skip-bad' "... without advice about an option demo does not have"
check "... and adds nobody (still 1000)" test "$(live "$C")" = 1000
sanad demo --data "$C" --patients 0
expect_rc 2 "--patients 0 is a usage error"

# ---- audit ------------------------------------------------------------------------------------------
for d in "$A" "$B" "$C"; do
  sanad audit verify --data "$d"
  expect_rc 0 "audit verify on $(basename "$d")"
done
check "the exports are audited as cli:export on the first node (3)" test \
  "$(sqlite3 "$A/sanad.db" "select count(*) from audit_log where action = 'patient.export' and username = 'cli:export' and outcome = 'ok'")" = 3
check "every imported patient is audited as cli:import" test \
  "$(sqlite3 "$A/sanad.db" "select count(*) from audit_log where action = 'patient.create' and username = 'cli:import'")" = \
  "$(($(live "$A") - 200))"
check "the demo patients are audited as cli:demo" test \
  "$(sqlite3 "$C/sanad.db" "select count(*) from audit_log where action = 'patient.create' and username = 'cli:demo'")" = 1000
stop_node
for s in Haddad Shevchenko 'Шевченко' 'علي' 944000111 111-11C11111 Warsame Nasser RC-1111; do
  if grep -qF -- "$s" "$NODE_LOG"; then not_ok "the server log does not contain '$s'"; else
    ok "the server log does not contain '$s'"; fi
done

done_testing
