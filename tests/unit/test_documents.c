/* test_documents.c — unit tests of documents: the content sniffer (core/sniff.c) on every accepted type and
 * on disguised files, base64url of any length, download names and the Content-Disposition header, the
 * service (services/documents.c: upload rules, one stored file per content, visibility, entered in error),
 * and replication between two nodes: a document made on node A and synced to node B reads back on B with
 * the same bytes, a 10 MiB document fits one batch, and a batch whose content was altered (or whose
 * content, sha256 and size do not travel together) is refused as a whole with nothing applied. */
#include "testutil.h"

#include <fcntl.h>

#include <zstd.h>

#include "core/sniff.h"
#include "http/http.h"
#include "services/changelog.h"
#include "services/documents.h"
#include "services/patients.h"
#include "services/sync.h"
#include "store/blobs.h"
#include "store/documents.h"

static const unsigned char png[] = {
    0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0,
    0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82,
};
static const unsigned char jpeg[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 0xff, 0xd9 };
static const char webp[] = "RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\0\0\0\x10\x07\x10\x11";
static const char pdf[] = "%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n";
static const char text[] = "Referral\n\xd8\xa7\xd9\x84\xd9\x85\xd8\xb1\xd9\x8a\xd8\xb6\xd8\xa9\r\n\tend\n";

/* ---- the sniffer ---- */

static void test_sniff_accepts_each_type(void **state)
{
    const char *type, *what;
    struct err e;

    (void)state;
    err_clear(&e);
    assert_string_equal(sniff_detect(png, sizeof(png), &what), SNIFF_PNG);
    assert_string_equal(sniff_detect(jpeg, sizeof(jpeg), NULL), SNIFF_JPEG);
    assert_string_equal(sniff_detect(webp, sizeof(webp) - 1, NULL), SNIFF_WEBP);
    assert_string_equal(sniff_detect(pdf, strlen(pdf), NULL), SNIFF_PDF);
    assert_string_equal(sniff_detect(text, strlen(text), NULL), SNIFF_TEXT);
    assert_int_equal(sniff_check("image/png", png, sizeof(png), &type, &e), 0);
    assert_string_equal(type, SNIFF_PNG);
    assert_int_equal(sniff_check("IMAGE/JPEG", jpeg, sizeof(jpeg), &type, &e), 0);
    assert_int_equal(sniff_check("image/jpg", jpeg, sizeof(jpeg), &type, &e), 0);
    assert_string_equal(type, SNIFF_JPEG);
    assert_int_equal(sniff_check("application/pdf; name=x", pdf, strlen(pdf), &type, &e), 0);
    assert_int_equal(sniff_check("text/plain", text, strlen(text), &type, &e), 0);
    assert_string_equal(type, SNIFF_TEXT);
    assert_int_equal(sniff_check("text/plain;charset=\"UTF-8\"", text, strlen(text), &type, &e), 0);
    assert_int_equal(sniff_check(" text/plain ; charset=us-ascii", "abc", 3, &type, &e), 0);
    /* a byte-order mark and leading blank lines are text */
    assert_int_equal(sniff_check("text/plain", "\xef\xbb\xbf\n\nnote", 9, &type, &e), 0);
}

/* declared, content (len), expected code */
static void refused(const char *declared, const void *data, size_t len, const char *code)
{
    const char *type = "x";
    struct err e;

    err_clear(&e);
    if (sniff_check(declared, data, len, &type, &e) == 0)
        fail_msg("'%s' of %zu bytes was accepted", declared ? declared : "(none)", len);
    assert_string_equal(e.code, code);
    assert_null(type);
    assert_true(e.message[0] != '\0');
}

static void test_sniff_refuses_disguised_files(void **state)
{
    static const char html[] = "<!DOCTYPE html><html><script>alert(1)</script></html>";
    static const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    static const char elf[] = "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
    static const char pe[] = "MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0";
    static const char zip[] = "PK\x03\x04\x14\0\0\0\x08\0";
    struct err e;
    const char *what, *type;

    (void)state;
    refused("application/pdf", html, strlen(html), "content_mismatch");
    refused("image/png", elf, sizeof(elf) - 1, "content_mismatch");
    refused("image/png", svg, strlen(svg), "content_mismatch");
    refused("image/jpeg", png, sizeof(png), "content_mismatch");
    refused("image/png", png, 20, "content_mismatch");          /* a truncated signature is no PNG */
    refused("application/pdf", "%PDF", 4, "content_mismatch");
    refused("image/webp", "RIFF\0\0\0\0WAVEfmt ", 16, "content_mismatch");
    refused("text/plain", html, strlen(html), "content_mismatch");
    refused("text/plain", "  \n<?xml version=\"1.0\"?><x/>", 29, "content_mismatch");
    refused("text/plain", svg, strlen(svg), "content_mismatch");
    refused("text/plain", "#!/bin/sh\nrm -rf /\n", 19, "content_mismatch");
    refused("text/plain", elf, sizeof(elf) - 1, "content_mismatch");
    refused("text/plain", pe, sizeof(pe) - 1, "content_mismatch");
    refused("text/plain", zip, sizeof(zip) - 1, "content_mismatch");
    refused("text/plain", "a\0b", 3, "content_mismatch");
    refused("text/plain", "red \x1b[31m", 9, "content_mismatch");        /* a terminal escape */
    refused("text/plain", "a\xc2\x9b" "b", 4, "content_mismatch");       /* a C1 control */
    refused("text/plain", "caf\xe9", 4, "content_mismatch");             /* Latin-1, not UTF-8 */
    refused("text/plain", pdf, strlen(pdf), "content_mismatch");
    refused("image/svg+xml", svg, strlen(svg), "unsupported_media_type");
    refused("text/html", html, strlen(html), "unsupported_media_type");
    refused("application/xhtml+xml", html, strlen(html), "unsupported_media_type");
    refused("text/xml", svg, strlen(svg), "unsupported_media_type");
    refused("application/javascript", "alert(1)", 8, "unsupported_media_type");
    refused("application/octet-stream", pdf, strlen(pdf), "unsupported_media_type");
    refused("application/json", "{}", 2, "unsupported_media_type");
    refused("text/plain; charset=iso-8859-1", "abc", 3, "unsupported_media_type");
    refused("text/plain; charset", "abc", 3, "unsupported_media_type");
    refused("image/png;", png, sizeof(png), "unsupported_media_type");
    refused("", png, sizeof(png), "unsupported_media_type");
    refused(NULL, png, sizeof(png), "unsupported_media_type");
    refused("application/pdf", "", 0, "empty_document");
    /* the refusal names what the bytes are, and the type to send them as when it is one */
    err_clear(&e);
    assert_int_equal(sniff_check("image/jpeg", png, sizeof(png), &type, &e), -1);
    assert_non_null(strstr(e.message, "image/png"));
    assert_int_equal(e.kind, ERR_UNPROCESSABLE);
    assert_int_equal(sniff_check("image/svg+xml", svg, strlen(svg), &type, &e), -1);
    assert_int_equal(e.kind, ERR_UNSUPPORTED_MEDIA);
    assert_int_equal(http_status_for(e.kind), 415);
    assert_null(sniff_detect(elf, sizeof(elf) - 1, &what));
    assert_non_null(strstr(what, "program"));
}

static void test_utf8_rules(void **state)
{
    (void)state;
    assert_true(sniff_utf8_valid("", 0));
    assert_true(sniff_utf8_valid("\xf0\x9f\x98\x80", 4));      /* U+1F600 */
    assert_true(sniff_utf8_valid("\xf4\x8f\xbf\xbf", 4));      /* U+10FFFF */
    assert_false(sniff_utf8_valid("\xf4\x90\x80\x80", 4));     /* past U+10FFFF */
    assert_false(sniff_utf8_valid("\xc0\xaf", 2));             /* overlong '/' */
    assert_false(sniff_utf8_valid("\xe0\x80\xaf", 3));         /* overlong '/' */
    assert_false(sniff_utf8_valid("\xed\xa0\x80", 3));         /* a surrogate */
    assert_false(sniff_utf8_valid("\xe2\x82", 2));             /* truncated */
    assert_false(sniff_utf8_valid("\x80", 1));
}

static void test_extensions(void **state)
{
    (void)state;
    assert_string_equal(sniff_extension(SNIFF_JPEG), "jpg");
    assert_true(sniff_extension_fits(SNIFF_JPEG, "JPEG"));
    assert_false(sniff_extension_fits(SNIFF_PDF, "html"));
    assert_string_equal(sniff_canonical_type("Text/Plain; Charset=UTF-8"), SNIFF_TEXT);
    assert_null(sniff_canonical_type("image/png; charset=\"unterminated"));
    assert_true(sniff_type_known(SNIFF_WEBP));
    assert_false(sniff_type_known("image/svg+xml"));
}

/* ---- base64url of any length ---- */

static void test_b64url_any_length(void **state)
{
    unsigned char in[1000], out[1000];
    char enc[CRYPTO_B64URL_LEN(1000)];
    size_t n, got, len;

    (void)state;
    crypto_random_bytes(in, sizeof(in));
    for (n = 0; n <= 10; n++) {
        assert_int_equal(crypto_b64url_encode(in, n, enc, sizeof(enc)), 0);
        assert_int_equal(crypto_b64url_decode(enc, strlen(enc), out, sizeof(out), &got), 0);
        assert_int_equal(got, n);
        assert_memory_equal(in, out, n);
    }
    assert_int_equal(crypto_b64url_encode(in, sizeof(in), enc, sizeof(enc)), 0);
    len = strlen(enc);
    assert_int_equal(crypto_b64url_decode(enc, len, out, sizeof(out), &got), 0);
    assert_memory_equal(in, out, sizeof(in));
    assert_int_equal(crypto_b64url_decode(enc, len, out, sizeof(out) - 1, &got), -1);    /* does not fit */
    assert_int_equal(crypto_b64url_decode("AQ==", 4, out, sizeof(out), &got), -1);       /* padding */
    assert_int_equal(crypto_b64url_decode("AQ+/", 4, out, sizeof(out), &got), -1);       /* not url-safe */
    assert_int_equal(crypto_b64url_decode("AR", 2, out, sizeof(out), &got), -1);         /* non-canonical */
    assert_int_equal(crypto_b64url_decode("AQ", 2, out, sizeof(out), &got), 0);
    assert_int_equal(crypto_b64url_decode("AQI", 3, out, sizeof(out), &got), 0);
    assert_int_equal(crypto_b64url_decode("AQJ", 3, out, sizeof(out), &got), -1);        /* non-canonical */
    assert_int_equal(crypto_b64url_decode("A", 1, out, sizeof(out), &got), -1);
    assert_int_equal(crypto_b64url_decode("AQ\nI", 4, out, sizeof(out), &got), -1);
    assert_int_equal(crypto_b64url_decode("caf\xe9", 4, out, sizeof(out), &got), -1);    /* found by fuzz_sniff */
}

/* ---- download names and the header ---- */

static void test_download_names(void **state)
{
    char name[DOCUMENT_FILENAME_MAX + 8], h[HTTP_DISPOSITION_MAX], long_name[600];

    (void)state;
    documents_download_name("lab.pdf", "CBC", SNIFF_PDF, name);
    assert_string_equal(name, "lab.pdf");
    documents_download_name("report.HTML", NULL, SNIFF_PDF, name);
    assert_string_equal(name, "report.HTML.pdf");
    documents_download_name("scan.JPEG", NULL, SNIFF_JPEG, name);
    assert_string_equal(name, "scan.JPEG");
    documents_download_name(NULL, "Chest X-ray", SNIFF_PNG, name);
    assert_string_equal(name, "Chest X-ray.png");
    documents_download_name(NULL, NULL, SNIFF_TEXT, name);
    assert_string_equal(name, "document.txt");
    documents_download_name("..", NULL, SNIFF_PDF, name);
    assert_string_equal(name, "document.pdf");
    documents_download_name(".pdf", NULL, SNIFF_PDF, name);
    assert_string_equal(name, ".pdf.pdf");
    documents_download_name("a/b\\c.pdf", NULL, SNIFF_PDF, name);
    assert_string_equal(name, "c.pdf");
    /* a name at the limit of multi-byte characters is cut on a character and keeps its extension */
    memset(long_name, 0, sizeof(long_name));
    for (size_t i = 0; i + 2 < 500; i += 2)
        memcpy(long_name + i, "\xd8\xa7", 2);
    documents_download_name(long_name, NULL, SNIFF_PDF, name);
    assert_true(strlen(name) <= DOCUMENT_FILENAME_MAX + 4);
    assert_true(sniff_utf8_valid(name, strlen(name)));
    assert_string_equal(name + strlen(name) - 4, ".pdf");

    http_content_disposition("lab.pdf", h, sizeof(h));
    assert_string_equal(h, "attachment; filename=\"lab.pdf\"; filename*=UTF-8''lab.pdf");
    http_content_disposition("a \"b\"\\;%c\xd8\xa7.pdf", h, sizeof(h));
    assert_string_equal(h, "attachment; filename=\"a _b____c_.pdf\"; filename*=UTF-8''a%20%22b%22%5C%3B%25c%D8%A7.pdf");
    http_content_disposition("x\r\nSet-Cookie: a=b", h, sizeof(h));
    assert_null(strchr(h, '\r'));
    assert_null(strchr(h, '\n'));
    /* a very long name is cut, and the header stays whole */
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    http_content_disposition(long_name, h, sizeof(h));
    assert_non_null(strstr(h, "\"; filename*=UTF-8''"));
    assert_true(strlen(h) < sizeof(h) - 1);
}

/* ---- the service on one node ---- */

struct node {
    char *dir;
    struct db *db;
    struct caller who;
};

static void node_up(struct node *n)
{
    struct err e;

    err_clear(&e);
    n->db = tu_node(&n->dir);
    caller_local(&n->who, "test");
    if (caller_local_sites(n->db, &n->who, NULL, &e) < 0)
        fail_msg("sites: %s", e.message);
}

static void node_down(struct node *n)
{
    db_close(n->db);
    tu_remove_dir(n->dir);
}

static char *new_patient(struct node *n)
{
    json_t *in = json_pack("{s:s,s:s,s:s}", "given_name", "Rania", "family_name", "Khoury", "sex", "female"), *out;
    struct err e;
    char *id;

    err_clear(&e);
    out = patients_create(n->db, &n->who, in, &e);
    json_decref(in);
    if (out == NULL)
        fail_msg("patient: %s", e.message);
    id = strdup(json_string_value(json_object_get(out, "id")));
    json_decref(out);
    return id;
}

static json_t *upload(struct node *n, const char *patient, const char *type, const void *data, size_t len,
                      const char *filename, struct err *e)
{
    struct document_upload in = { type, data, len, "Results", filename, NULL };

    err_clear(e);
    return documents_upload(n->db, &n->who, patient, &in, e);
}

/* The bytes of a document as a download gives them; the caller frees. */
static unsigned char *download(struct node *n, const char *id, size_t *len)
{
    struct document_content c;
    unsigned char *buf;
    struct err e;
    ssize_t r;
    size_t got = 0;

    err_clear(&e);
    if (documents_open_content(n->db, &n->who, id, &c, &e) < 0)
        fail_msg("download: %s (%s)", e.message, e.code);
    buf = malloc(c.size + 1);
    assert_non_null(buf);
    while ((r = read(c.fd, buf + got, c.size + 1 - got)) > 0)
        got += (size_t)r;
    close(c.fd);
    assert_int_equal(got, c.size);
    *len = got;
    return buf;
}

static int count_files(const char *dir)
{
    char cmd[600];
    FILE *p;
    int n = -1;

    snprintf(cmd, sizeof(cmd), "find '%s/documents' -type f 2>/dev/null | wc -l", dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static void test_upload_store_read(void **state)
{
    struct node a;
    struct caller stranger;
    json_t *d1, *d2, *list, *got, *reason;
    char *pid, path[600], sha[CRYPTO_SHA256_HEX_LEN];
    unsigned char *bytes;
    struct stat st;
    struct err e;
    size_t len;

    (void)state;
    node_up(&a);
    pid = new_patient(&a);
    d1 = upload(&a, pid, "application/pdf", pdf, strlen(pdf), "C:\\docs\\lab.pdf", &e);
    if (d1 == NULL)
        fail_msg("upload: %s", e.message);
    crypto_sha256_hex(pdf, strlen(pdf), sha);
    assert_string_equal(json_string_value(json_object_get(d1, "sha256")), sha);
    assert_string_equal(json_string_value(json_object_get(d1, "filename")), "lab.pdf");
    assert_int_equal(json_integer_value(json_object_get(d1, "size")), strlen(pdf));
    assert_string_equal(json_string_value(json_object_get(d1, "status")), "active");
    assert_true(json_is_null(json_object_get(d1, "encounter_id")));
    snprintf(path, sizeof(path), "%s/documents/%.2s/%s", a.dir, sha, sha + 2);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* the same content again: another document, one file */
    d2 = upload(&a, pid, "application/pdf", pdf, strlen(pdf), NULL, &e);
    assert_non_null(d2);
    assert_string_not_equal(json_string_value(json_object_get(d2, "id")), json_string_value(json_object_get(d1, "id")));
    assert_int_equal(count_files(a.dir), 1);
    bytes = download(&a, json_string_value(json_object_get(d2, "id")), &len);
    assert_int_equal(len, strlen(pdf));
    assert_memory_equal(bytes, pdf, len);
    free(bytes);

    /* refusals store nothing */
    assert_null(upload(&a, pid, "image/png", jpeg, sizeof(jpeg), NULL, &e));
    assert_string_equal(e.code, "content_mismatch");
    assert_null(upload(&a, pid, "application/pdf", pdf, strlen(pdf), "a\xe2\x80\xaeqq.pdf", &e));
    assert_string_equal(e.code, "invalid_filename");
    assert_null(upload(&a, "01234567-89ab-7def-8123-456789abcdef", "application/pdf", pdf, strlen(pdf), NULL, &e));
    assert_string_equal(e.code, "patient_not_found");
    assert_int_equal(count_files(a.dir), 1);

    /* another site's user sees nothing */
    memset(&stranger, 0, sizeof(stranger));
    caller_local(&stranger, "stranger");
    stranger.nsites = 1;
    snprintf(stranger.sites[0], ID_LEN, "01234567-89ab-7def-8123-456789abcdef");
    err_clear(&e);
    assert_null(documents_get(a.db, &stranger, json_string_value(json_object_get(d1, "id")), &e));
    assert_string_equal(e.code, "document_not_found");
    assert_null(documents_list(a.db, &stranger, pid, NULL, 10, &e));
    assert_string_equal(e.code, "patient_not_found");

    /* entered in error: status and reason; the content stays */
    reason = json_pack("{s:s}", "reason", "scanned for the wrong patient");
    got = documents_withdraw(a.db, &a.who, json_string_value(json_object_get(d1, "id")), reason, &e);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "status")), "entered_in_error");
    json_decref(got);
    assert_null(documents_withdraw(a.db, &a.who, json_string_value(json_object_get(d1, "id")), reason, &e));
    assert_string_equal(e.code, "already_entered_in_error");
    json_decref(reason);
    bytes = download(&a, json_string_value(json_object_get(d1, "id")), &len);
    free(bytes);
    list = documents_list(a.db, &a.who, pid, NULL, 10, &e);
    assert_non_null(list);
    assert_int_equal(json_array_size(json_object_get(list, "items")), 2);
    json_decref(list);

    json_decref(d1);
    json_decref(d2);
    free(pid);
    node_down(&a);
}

/* ---- replication ---- */

/* Send everything from one node to another, batch after batch; returns the last apply's result. */
static int sync_all(struct node *from, struct node *to, struct err *e)
{
    struct sync_report r;
    struct buf b;
    json_t *vec;
    int more = 1, n, rc = 0;
    char from_id[37];

    assert_int_equal(changelog_node_id(from->db, from_id, e), 0);
    buf_init(&b, SYNC_MAX_COMPRESSED_BYTES);
    while (more && rc == 0) {
        vec = sync_vector(to->db, e);
        assert_non_null(vec);
        n = sync_batch_build(from->db, NULL, vec, SYNC_DEFAULT_MAX_BYTES, &b, &more, NULL, e);
        json_decref(vec);
        if (n < 0)
            fail_msg("build: %s", e->message);
        if (n == 0)
            break;
        assert_true(b.len <= SYNC_MAX_COMPRESSED_BYTES);
        rc = sync_batch_apply(to->db, b.data, b.len, from_id, &r, NULL, NULL, e);
    }
    buf_free(&b);
    return rc;
}

/* Give the receiving caller every site the node now knows (sites replicate). */
static void refresh_sites(struct node *n)
{
    struct err e;

    err_clear(&e);
    caller_local(&n->who, "test");
    assert_int_equal(caller_local_sites(n->db, &n->who, NULL, &e), 0);
}

static void test_two_nodes(void **state)
{
    struct node a, b;
    json_t *d, *got, *reason;
    unsigned char *bytes;
    char *pid, id[ID_LEN];
    struct err e;
    size_t len;

    (void)state;
    node_up(&a);
    node_up(&b);
    pid = new_patient(&a);
    d = upload(&a, pid, "image/png", png, sizeof(png), "dot.png", &e);
    assert_non_null(d);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(d, "id")));
    json_decref(d);
    err_clear(&e);
    if (sync_all(&a, &b, &e) < 0)
        fail_msg("sync: %s (%s)", e.message, e.code);
    refresh_sites(&b);
    got = documents_get(b.db, &b.who, id, &e);
    if (got == NULL)
        fail_msg("on B: %s", e.message);
    assert_string_equal(json_string_value(json_object_get(got, "filename")), "dot.png");
    assert_string_equal(json_string_value(json_object_get(got, "content_type")), "image/png");
    assert_string_equal(json_string_value(json_object_get(got, "author")), "cli:test");
    json_decref(got);
    bytes = download(&b, id, &len);
    assert_int_equal(len, sizeof(png));
    assert_memory_equal(bytes, png, len);
    free(bytes);

    /* entered in error on A reaches B; the content stays; a second sync changes nothing */
    reason = json_pack("{s:s}", "reason", "duplicate scan");
    got = documents_withdraw(a.db, &a.who, id, reason, &e);
    assert_non_null(got);
    json_decref(got);
    json_decref(reason);
    assert_int_equal(sync_all(&a, &b, &e), 0);
    assert_int_equal(sync_all(&a, &b, &e), 0);
    got = documents_get(b.db, &b.who, id, &e);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "status")), "entered_in_error");
    assert_string_equal(json_string_value(json_object_get(got, "error_reason")), "duplicate scan");
    json_decref(got);
    bytes = download(&b, id, &len);
    assert_memory_equal(bytes, png, sizeof(png));
    free(bytes);
    assert_int_equal(count_files(b.dir), 1);

    free(pid);
    node_down(&a);
    node_down(&b);
}

static void test_ten_mib_fits_one_batch(void **state)
{
    struct node a, b;
    unsigned char *big, *bytes;
    json_t *d;
    char *pid, id[ID_LEN];
    struct err e;
    size_t len;

    (void)state;
    node_up(&a);
    node_up(&b);
    pid = new_patient(&a);
    big = malloc(DOCUMENT_MAX_BYTES);
    assert_non_null(big);
    crypto_random_bytes(big, DOCUMENT_MAX_BYTES);     /* incompressible, as photos and PDFs are */
    memcpy(big, "%PDF-1.7\n", 9);
    d = upload(&a, pid, "application/pdf", big, DOCUMENT_MAX_BYTES, "big.pdf", &e);
    if (d == NULL)
        fail_msg("upload: %s", e.message);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(d, "id")));
    json_decref(d);
    assert_null(upload(&a, pid, "application/pdf", big, DOCUMENT_MAX_BYTES + 1, NULL, &e));
    assert_string_equal(e.code, "document_too_large");
    if (sync_all(&a, &b, &e) < 0)
        fail_msg("sync: %s (%s)", e.message, e.code);
    refresh_sites(&b);
    bytes = download(&b, id, &len);
    assert_int_equal(len, DOCUMENT_MAX_BYTES);
    assert_memory_equal(bytes, big, len);
    free(bytes);
    free(big);
    free(pid);
    node_down(&a);
    node_down(&b);
}

/* A's whole log as one batch, decoded: the caller alters it, then encode() makes a batch of it again. */
static json_t *batch_of(struct node *a)
{
    struct buf b;
    struct err e;
    json_t *j;
    char *raw;
    unsigned long long size;
    int more;

    err_clear(&e);
    buf_init(&b, SYNC_MAX_COMPRESSED_BYTES);
    assert_true(sync_batch_build(a->db, NULL, NULL, SYNC_MAX_BATCH_BYTES, &b, &more, NULL, &e) > 0);
    assert_false(more);
    size = ZSTD_getFrameContentSize(b.data, b.len);
    raw = malloc((size_t)size);
    assert_non_null(raw);
    assert_int_equal(ZSTD_decompress(raw, (size_t)size, b.data, b.len), size);
    j = json_loadb(raw, (size_t)size, 0, NULL);
    assert_non_null(j);
    free(raw);
    buf_free(&b);
    return j;
}

static unsigned char *encode(const json_t *batch, size_t *len)
{
    char *json = json_dumps(batch, JSON_COMPACT);
    size_t n = strlen(json), bound = ZSTD_compressBound(n);
    unsigned char *out = malloc(bound);
    ZSTD_CCtx *cx = ZSTD_createCCtx();

    assert_non_null(out);
    ZSTD_CCtx_setParameter(cx, ZSTD_c_checksumFlag, 1);
    *len = ZSTD_compress2(cx, out, bound, json, n);
    assert_false(ZSTD_isError(*len));
    ZSTD_freeCCtx(cx);
    free(json);
    return out;
}

/* The fields of the batch's document change. */
static json_t *document_fields(json_t *batch)
{
    json_t *c;
    size_t i;

    json_array_foreach(json_object_get(batch, "changes"), i, c)
        if (strcmp(json_string_value(json_array_get(c, 2)), DOCUMENT_TABLE) == 0)
            return json_array_get(c, 5);
    fail_msg("no document change in the batch");
    return NULL;
}

/* Apply an altered batch to a fresh node: it must be refused with code, and nothing of it kept. */
static void refused_on_fresh_node(const json_t *batch, const char *code)
{
    struct node c;
    struct sync_report r;
    unsigned char *data;
    json_t *vec;
    struct err e;
    size_t len;

    node_up(&c);
    data = encode(batch, &len);
    err_clear(&e);
    assert_int_equal(sync_batch_apply(c.db, data, len, json_string_value(json_object_get(batch, "node")), &r, NULL,
                                      NULL, &e), -1);
    assert_string_equal(e.code, code);
    vec = sync_vector(c.db, &e);
    assert_null(json_object_get(vec, json_string_value(json_object_get(batch, "node"))));   /* nothing applied */
    json_decref(vec);
    assert_int_equal(count_files(c.dir) <= 0, 1);
    free(data);
    node_down(&c);
}

static void test_altered_content_is_refused(void **state)
{
    struct node a;
    json_t *batch, *fields;
    char *pid, *s, other[CRYPTO_SHA256_HEX_LEN];
    struct err e;

    (void)state;
    node_up(&a);
    pid = new_patient(&a);
    json_decref(upload(&a, pid, "text/plain", text, strlen(text), "note.txt", &e));
    free(pid);

    /* the batch as sent is accepted (the control case) */
    {
        struct node c;
        struct sync_report r;
        unsigned char *data;
        size_t len;

        batch = batch_of(&a);
        node_up(&c);
        data = encode(batch, &len);
        err_clear(&e);
        if (sync_batch_apply(c.db, data, len, json_string_value(json_object_get(batch, "node")), &r, NULL, NULL, &e) < 0)
            fail_msg("unaltered batch: %s", e.message);
        assert_int_equal(count_files(c.dir), 1);
        free(data);
        node_down(&c);
        json_decref(batch);
    }
    /* one character of the content changed */
    batch = batch_of(&a);
    fields = document_fields(batch);
    s = strdup(json_string_value(json_object_get(fields, "content")));
    s[4] = s[4] == 'A' ? 'B' : 'A';
    json_object_set_new(fields, "content", json_string(s));
    free(s);
    refused_on_fresh_node(batch, "content_mismatch");
    json_decref(batch);
    /* the content of another file under the original's name */
    batch = batch_of(&a);
    fields = document_fields(batch);
    crypto_sha256_hex("x", 1, other);
    json_object_set_new(fields, "sha256", json_string(other));
    refused_on_fresh_node(batch, "content_mismatch");
    json_decref(batch);
    /* a size that is not the content's */
    batch = batch_of(&a);
    fields = document_fields(batch);
    json_object_set_new(fields, "size", json_integer((json_int_t)strlen(text) - 1));
    refused_on_fresh_node(batch, "content_mismatch");
    json_decref(batch);
    /* the content without its name, and a name that is a path */
    batch = batch_of(&a);
    fields = document_fields(batch);
    json_object_del(fields, "sha256");
    refused_on_fresh_node(batch, "invalid_change");
    json_decref(batch);
    batch = batch_of(&a);
    json_object_set_new(document_fields(batch), "sha256", json_string("../../../../etc/passwd"));
    refused_on_fresh_node(batch, "invalid_change");
    json_decref(batch);
    /* a type that is never stored, and an unknown field */
    batch = batch_of(&a);
    json_object_set_new(document_fields(batch), "content_type", json_string("text/html"));
    refused_on_fresh_node(batch, "invalid_change");
    json_decref(batch);
    batch = batch_of(&a);
    json_object_set_new(document_fields(batch), "path", json_string("/etc/passwd"));
    refused_on_fresh_node(batch, "invalid_change");
    json_decref(batch);
    node_down(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff_accepts_each_type),
        cmocka_unit_test(test_sniff_refuses_disguised_files),
        cmocka_unit_test(test_utf8_rules),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_b64url_any_length),
        cmocka_unit_test(test_download_names),
        cmocka_unit_test(test_upload_store_read),
        cmocka_unit_test(test_two_nodes),
        cmocka_unit_test(test_ten_mib_fits_one_batch),
        cmocka_unit_test(test_altered_content_is_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
