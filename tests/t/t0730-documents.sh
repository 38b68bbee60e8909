#!/bin/sh
# t0730-documents.sh — documents end to end through the real binary: uploads of every accepted type with
# their bytes back unchanged, the download headers, one stored file for the same content twice (mode 0600,
# named by its SHA-256), the 10 MiB limit (413 beyond, before the body is read), disguised files refused
# (HTML as PDF, ELF as PNG, SVG, a script as text), file names that try to break the header, other sites
# (404), roles, audit of every download, "entered in error", and no file name or title in the server log.
. "$(dirname "$0")/lib.sh"

# bytes HEX FILE: write the bytes of HEX into FILE.
bytes() {
  sqlite3 :memory: "select writefile('$2', x'$1')" >/dev/null || bail "sqlite3 writefile $2"
}

# upload PATIENT TYPE FILE [QUERY]: POST the file as the raw body with Content-Type TYPE.
upload() {
  api POST "/api/v1/patients/$1/documents${4:+?$4}" "" --data-binary "@$3" -H "Content-Type: $2"
}

# uri S: S percent-encoded for a query value.
uri() {
  jq -rn --arg s "$1" '$s | @uri'
}

start_node
ADMIN=$(login admin "$ADMIN_PW")
[ -n "$ADMIN" ] || bail "sign in as admin"
TOKEN=$ADMIN
for r in clinician registrar viewer; do
  api POST /api/v1/users "{\"username\":\"d-$r\",\"role\":\"$r\",\"password\":\"$r-password-0123\"}"
  [ "$STATUS" = 201 ] || bail "create the $r user" "got $STATUS: $BODY"
done
CLIN=$(login d-clinician clinician-password-0123)
REG=$(login d-registrar registrar-password-0123)
VIEW=$(login d-viewer viewer-password-0123)
[ -n "$CLIN" ] && [ -n "$REG" ] && [ -n "$VIEW" ] || bail "sign in as every role"

TOKEN=$CLIN
api POST /api/v1/patients '{"given_name":"Leyla","family_name":"Haddad","sex":"female","birth_date":"1987-03-09"}'
[ "$STATUS" = 201 ] || bail "register a patient" "$BODY"
PID=$(jqb .id)
api POST "/api/v1/patients/$PID/encounters" '{"type":"consultation"}'
[ "$STATUS" = 201 ] || bail "open an encounter" "$BODY"
EID=$(jqb .id)
api POST /api/v1/patients '{"given_name":"Omar","family_name":"Saleh","sex":"male"}'
OTHER=$(jqb .id)
api POST "/api/v1/patients/$OTHER/encounters" '{"type":"triage"}'
OTHER_EID=$(jqb .id)

# ---- files ---------------------------------------------------------------------------------------------
D=$TMP/files
mkdir -p "$D"
# a 1x1 PNG, a minimal PDF, the start of a JPEG, a WebP header, UTF-8 text
bytes 89504E470D0A1A0A0000000D49484452000000010000000108060000001F15C4890000000A49444154789C63000100000500010D0A2DB40000000049454E44AE426082 "$D/dot.png"
printf '%%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%%%EOF\n' >"$D/lab.pdf"
bytes FFD8FFE000104A46494600010100000100010000FFD9 "$D/photo.jpg"
bytes 524946461A000000574542505650384C0D0000002F0000001007101111888808 "$D/scan.webp"
printf 'Referral letter\nالمريضة بحاجة إلى متابعة\n' >"$D/letter.txt"
# disguised
printf '<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n' >"$D/page.html"
bytes 7F454C4602010100000000000000000002003E00010000000000000000000000 "$D/prog.elf"
printf '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>\n' >"$D/pic.svg"
printf '#!/bin/sh\nrm -rf /\n' >"$D/run.sh"
printf '%%PDF-1.4\n<html><script>alert(1)</script>\n' >"$D/pdf-with-html.pdf"
: >"$D/empty"

# ---- upload and download round trip ----------------------------------------------------------------------
upload "$PID" application/pdf "$D/lab.pdf" "title=$(uri 'CBC results')&filename=lab.pdf&encounter=$EID"
expect_status 201 "upload a PDF for an encounter"
DOC=$(jqb .id)
expect_json .content_type application/pdf
expect_json .size "$(wc -c <"$D/lab.pdf" | tr -d ' ')" "the size is the file's"
expect_json .sha256 "$(sha256sum "$D/lab.pdf" | cut -d' ' -f1)" "the sha256 is the content's"
expect_json .encounter_id "$EID"
expect_json .patient_id "$PID"
expect_json .title "CBC results"
expect_json .filename lab.pdf
expect_json .status active
expect_json .author d-clinician
check "created_at is an RFC 3339 time" sh -c "printf '%s' '$(jqb .created_at)' | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$'"

api GET "/api/v1/documents/$DOC/content"
expect_status 200 "download the PDF"
check "the downloaded bytes are the uploaded ones" cmp -s "$TMP/.body" "$D/lab.pdf"
expect_header Content-Type '^application/pdf$'
expect_header Content-Disposition '^attachment; filename="lab\.pdf"; filename\*=UTF-8'"''"'lab\.pdf$'
expect_header X-Content-Type-Options '^nosniff$'
expect_header Content-Security-Policy "^sandbox; default-src 'none'$"
expect_header Cache-Control '^no-store$'
expect_header Content-Length "^$(wc -c <"$D/lab.pdf" | tr -d ' ')$"

api GET "/api/v1/documents/$DOC"
expect_status 200 "read the metadata"
expect_json .id "$DOC"
expect_json .title "CBC results"

for f in "image/png dot.png" "image/jpeg photo.jpg" "image/webp scan.webp" "text/plain; charset=utf-8 letter.txt"; do
  t=${f% *}
  n=${f##* }
  upload "$PID" "$t" "$D/$n" "filename=$n"
  expect_status 201 "upload $n as $t"
  id=$(jqb .id)
  api GET "/api/v1/documents/$id/content"
  check "$n comes back byte for byte" cmp -s "$TMP/.body" "$D/$n"
  case "$t" in
    text/*) expect_header Content-Type '^text/plain; charset=utf-8$' ;;
    *) expect_header Content-Type "^$t\$" ;;
  esac
done
upload "$PID" image/jpg "$D/photo.jpg"
expect_json .content_type image/jpeg "image/jpg (sent by some phones) is stored as image/jpeg"

# ---- one file per content ------------------------------------------------------------------------------
SHA=$(sha256sum "$D/lab.pdf" | cut -d' ' -f1)
upload "$PID" application/pdf "$D/lab.pdf" "title=again"
expect_status 201 "the same content uploaded again is a new document"
DOC2=$(jqb .id)
check "…with its own id" test "$DOC2" != "$DOC"
expect_json .sha256 "$SHA" "…and the same sha256"
STORED=$NODE_DIR/documents/$(printf '%s' "$SHA" | cut -c1-2)/$(printf '%s' "$SHA" | cut -c3-)
check "the content is stored at documents/ab/cdef… by its sha256" test -f "$STORED"
check "the stored file holds the content" cmp -s "$STORED" "$D/lab.pdf"
check "the same content is stored once" test "$(find "$NODE_DIR/documents" -type f -name "$(printf '%s' "$SHA" | cut -c3-)" | wc -l)" = 1
check "stored files are mode 0600" test -z "$(find "$NODE_DIR/documents" -type f ! -perm 0600)"
check "no temporary file is left behind" test -z "$(find "$NODE_DIR/documents" -name '.tmp-*')"
check "document directories are mode 0700" test -z "$(find "$NODE_DIR/documents" -type d ! -perm 0700)"

api GET "/api/v1/patients/$PID/documents"
expect_status 200 "list the patient's documents"
expect_json '.items | length' 7 "all seven are listed"
expect_json '.items[0].id' "$DOC2" "newest first"
api GET "/api/v1/patients/$PID/documents?limit=2"
expect_json '.items | length' 2 "a page of two"
NEXT=$(jqb .next)
api GET "/api/v1/patients/$PID/documents?limit=10&cursor=$NEXT"
expect_json '.items | length' 5 "the next page has the rest"
api GET "/api/v1/patients/$PID/documents?limit=0"
expect_error 400 invalid_limit

# ---- limits --------------------------------------------------------------------------------------------
{ printf '%%PDF-1.7\n'; head -c $((10 * 1024 * 1024 - 9)) /dev/urandom; } >"$D/ten.pdf"
{ cat "$D/ten.pdf"; printf x; } >"$D/over.pdf"
upload "$PID" application/pdf "$D/ten.pdf" "filename=ten.pdf"
expect_status 201 "a file of exactly 10 MiB is accepted"
TEN=$(jqb .id)
api GET "/api/v1/documents/$TEN/content"
check "…and comes back whole" cmp -s "$TMP/.body" "$D/ten.pdf"
upload "$PID" application/pdf "$D/over.pdf"
expect_error 413 body_too_large "10 MiB and one byte is refused"
api POST "/api/v1/patients/$PID/documents" "" --data-binary "@$D/over.pdf" -H 'Content-Type: application/pdf' \
  -H 'Transfer-Encoding: chunked'
expect_error 413 body_too_large "…also when sent chunked, without a length"

# ---- disguised and refused files -------------------------------------------------------------------------
upload "$PID" application/pdf "$D/page.html"
expect_error 422 content_mismatch "HTML sent as a PDF"
upload "$PID" image/png "$D/prog.elf"
expect_error 422 content_mismatch "an ELF program sent as a PNG"
check "…the message says what it is" sh -c "printf '%s' '$(jqb .error.message)' | grep -q 'program'"
upload "$PID" image/png "$D/pic.svg"
expect_error 422 content_mismatch "an SVG sent as a PNG"
upload "$PID" image/svg+xml "$D/pic.svg"
expect_error 415 unsupported_media_type "SVG is never accepted"
upload "$PID" text/html "$D/page.html"
expect_error 415 unsupported_media_type "HTML is never accepted"
upload "$PID" text/plain "$D/page.html"
expect_error 422 content_mismatch "HTML sent as text"
upload "$PID" text/plain "$D/pic.svg"
expect_error 422 content_mismatch "SVG sent as text"
upload "$PID" text/plain "$D/run.sh"
expect_error 422 content_mismatch "a script sent as text"
upload "$PID" text/plain "$D/prog.elf"
expect_error 422 content_mismatch "a program sent as text"
upload "$PID" image/jpeg "$D/dot.png"
expect_error 422 content_mismatch "a PNG sent as a JPEG"
check "…the message names the right type" sh -c "printf '%s' '$(jqb .error.message)' | grep -q 'image/png'"
upload "$PID" application/x-msdownload "$D/prog.elf"
expect_error 415 unsupported_media_type "a program type"
upload "$PID" 'text/plain; charset=iso-8859-1' "$D/letter.txt"
expect_error 415 unsupported_media_type "text in another charset"
upload "$PID" application/pdf "$D/empty"
expect_error 422 empty_document
api POST "/api/v1/patients/$PID/documents" '{"title":"x"}'
expect_error 415 unsupported_media_type "a JSON body"
api POST "/api/v1/patients/$PID/documents" "" --data-binary "@$D/lab.pdf" -H 'Content-Type:'
expect_error 415 unsupported_media_type "no Content-Type"
upload "$PID" application/pdf "$D/pdf-with-html.pdf"
expect_status 201 "a PDF that contains markup is still a PDF (served as an attachment in a sandbox)"

# ---- query fields --------------------------------------------------------------------------------------
upload "$PID" application/pdf "$D/lab.pdf" "title=$(uri "$(printf 'a\tb')")"
expect_error 400 invalid_title "a title with a control character"
upload "$PID" application/pdf "$D/lab.pdf" "title=$(head -c 201 /dev/zero | tr '\0' a)"
expect_error 400 invalid_title "a title over 200 bytes"
upload "$PID" application/pdf "$D/lab.pdf" "filename=$(uri "$(printf 'invoice\342\200\256fdp.exe')")"
expect_error 400 invalid_filename "a file name with a right-to-left override"
upload "$PID" application/pdf "$D/lab.pdf" "filename=a%0Ab.pdf"
expect_error 400 invalid_filename "a file name with a line break"
upload "$PID" application/pdf "$D/lab.pdf" "encounter=$OTHER_EID"
expect_error 422 encounter_mismatch "another patient's encounter"
upload "$PID" application/pdf "$D/lab.pdf" "encounter=00000000-0000-7000-8000-000000000000"
expect_error 404 encounter_not_found
upload 00000000-0000-7000-8000-000000000000 application/pdf "$D/lab.pdf"
expect_error 404 patient_not_found

# a file name that tries to break out of the header, with a path and a misleading extension
NASTY='C:\Users\x\تقرير "final";.html'
upload "$PID" application/pdf "$D/lab.pdf" "filename=$(uri "$NASTY")"
expect_status 201 "upload with a hostile file name"
NASTY_ID=$(jqb .id)
expect_json .filename 'تقرير "final";.html' "the path is cut from the file name"
api GET "/api/v1/documents/$NASTY_ID/content"
expect_header Content-Disposition '^attachment; filename="_____ _final__\.html\.pdf"; filename\*=UTF-8'"''"'%D8%AA%D9%82%D8%B1%D9%8A%D8%B1%20%22final%22%3B\.html\.pdf$' \
  "the header quotes nothing raw, keeps the name in UTF-8 and says .pdf"

# ---- sites and roles ----------------------------------------------------------------------------------------
TOKEN=$ADMIN
api POST /api/v1/sites '{"name":"Mobile team east"}'
SITE2=$(jqb .id)
api POST /api/v1/users "{\"username\":\"d-east\",\"role\":\"clinician\",\"password\":\"east-password-0123\",\"sites\":[\"$SITE2\"]}"
[ "$STATUS" = 201 ] || bail "create a user of another site" "$BODY"
EAST=$(login d-east east-password-0123)
TOKEN=$EAST
upload "$PID" application/pdf "$D/lab.pdf"
expect_error 404 patient_not_found "another site's patient cannot be given documents"
api GET "/api/v1/patients/$PID/documents"
expect_error 404 patient_not_found "…nor listed"
api GET "/api/v1/documents/$DOC"
expect_error 404 document_not_found "…nor read"
api GET "/api/v1/documents/$DOC/content"
expect_error 404 document_not_found "…nor downloaded"
api POST "/api/v1/documents/$DOC/entered-in-error" '{"reason":"x"}'
expect_error 404 document_not_found "…nor marked"

TOKEN=$VIEW
upload "$PID" application/pdf "$D/lab.pdf"
expect_error 403 forbidden "a viewer cannot upload"
api GET "/api/v1/documents/$DOC/content"
expect_status 200 "a viewer can download"
TOKEN=$REG
api GET "/api/v1/documents/$DOC/content"
expect_error 403 forbidden "a registrar cannot read clinical documents"
TOKEN=
upload "$PID" application/pdf "$D/lab.pdf"
expect_error 401 not_signed_in "no session"
# the session is checked before the body is read: with Expect: 100-continue the client never sends it
R=$(curl -s -o "$TMP/.body" -w '%{http_code} %{size_upload}' --max-time "$T_CURL" --expect100-timeout 5 \
  -H 'Expect: 100-continue' -H 'Content-Type: application/pdf' --data-binary "@$D/ten.pdf" \
  "$BASE/api/v1/patients/$PID/documents")
STATUS=${R% *}
BODY=$(cat "$TMP/.body")
expect_error 401 not_signed_in "a 10 MiB upload without a session is refused…"
check "…before its body is sent (${R#* } bytes sent)" test "${R#* }" -lt 1048576

# ---- audit --------------------------------------------------------------------------------------------
TOKEN=$CLIN
before=$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from audit_log where action = 'document.download' and entity_id = '$DOC'")
api GET "/api/v1/documents/$DOC/content"
api GET "/api/v1/documents/$DOC/content"
after=$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from audit_log where action = 'document.download' and entity_id = '$DOC'")
check "every download is audited ($before then $after)" test "$after" = $((before + 2))
check "the download audit names the user" test "$(sqlite3 "$NODE_DIR/sanad.db" "select u.username from audit_log a join users u on u.id = a.user_id where a.action = 'document.download' order by a.seq desc limit 1")" = d-clinician
check "uploads are audited" test "$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from audit_log where action = 'document.upload' and entity_id = '$DOC'")" = 1
check "reading the metadata is audited" test "$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from audit_log where action = 'document.read' and entity_id = '$DOC'")" -ge 1
check "refused uploads store nothing" test "$(sqlite3 "$NODE_DIR/sanad.db" "select count(*) from documents")" = 10

# ---- entered in error ------------------------------------------------------------------------------------
api POST "/api/v1/documents/$DOC2/entered-in-error" '{"reason":"wrong patient"}'
expect_status 200 "mark a document entered in error"
expect_json .status entered_in_error
expect_json .error_reason "wrong patient"
expect_json .error_by d-clinician
api POST "/api/v1/documents/$DOC2/entered-in-error" '{"reason":"again"}'
expect_error 409 already_entered_in_error
api POST "/api/v1/documents/$DOC/entered-in-error" '{"reason":"  "}'
expect_error 422 missing_reason
api POST "/api/v1/documents/$DOC/entered-in-error" '{}'
expect_error 400 missing_field
api GET "/api/v1/documents/$DOC2/content"
expect_status 200 "the content of a document entered in error stays readable"
check "…unchanged" cmp -s "$TMP/.body" "$D/lab.pdf"
api GET "/api/v1/patients/$PID/documents?limit=100"
expect_json "[.items[] | select(.id == \"$DOC2\") | .status] | join(\",\")" entered_in_error "the listing shows the status"
api GET /api/v1/documents/not-an-id
expect_error 404 document_not_found

# ---- the change log carries the content for replication ------------------------------------------------------
check "the creating change carries the content as base64url" test "$(sqlite3 "$NODE_DIR/sanad.db" \
  "select json_extract(fields, '\$.sha256') = '$SHA' and length(json_extract(fields, '\$.content')) > 0 from changes where tbl = 'document' and row_id = '$DOC'")" = 1

# ---- the log --------------------------------------------------------------------------------------------------
check "the server log names no file, title or reason" sh -c "! grep -q 'lab\.pdf\|CBC\|letter\|تقرير\|final\|wrong patient\|Leyla\|Haddad' '$NODE_LOG'"
check "the access log names the route pattern" grep -q 'http POST /api/v1/patients/{id}/documents 201' "$NODE_LOG"

stop_node
done_testing
