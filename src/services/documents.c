/* documents.c — documents of patients: checked uploads, content-addressed storage, audited downloads,
 * "entered in error", and their replication (see documents.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/date.h"
#include "core/sniff.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/changelog.h"
#include "services/documents.h"
#include "services/encounters.h"
#include "store/blobs.h"
#include "store/documents.h"
#include "store/encounters.h"
#include "store/patients.h"

#define STATUS_ACTIVE "active"
#define STATUS_ERROR "entered_in_error"
#define CONTENT_B64_MAX (CRYPTO_B64URL_LEN(DOCUMENT_MAX_BYTES) - 1)

const struct json_field documents_withdraw_fields[] = {
    { "reason", JT_STRING, JF_REQUIRED, DOCUMENT_REASON_MAX },
    { NULL, 0, 0, 0 },
};

/* ---- text a person typed ---- */

/* The code point of the UTF-8 sequence at s (valid UTF-8 assumed), and its length in *n. */
static unsigned utf8_at(const unsigned char *s, size_t *n)
{
    if (s[0] < 0x80)
        return *n = 1, s[0];
    if (s[0] < 0xe0)
        return *n = 2, (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    if (s[0] < 0xf0)
        return *n = 3, (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    return *n = 4, (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3f) << 12 | (unsigned)(s[2] & 0x3f) << 6
                   | (s[3] & 0x3f);
}

#define TEXT_NO_BIDI 1     /* refuse bidirectional overrides and isolates */
#define TEXT_LINES 2       /* allow line breaks and tabs */

/* UTF-8 of at most max bytes with no control characters (C0, DEL, C1; with TEXT_LINES, tab, line feed and
 * carriage return are allowed); with TEXT_NO_BIDI, also none of the bidirectional overrides and isolates
 * (U+202A-U+202E, U+2066-U+2069) that can make "x<U+202E>fdp.exe" read as "xexe.pdf". The same rules hold
 * for input here and for changes from other nodes, so that what one node writes every node accepts. */
static int text_clean(const char *s, size_t max, int flags)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i, k;
    unsigned cp;

    if (n > max || !sniff_utf8_valid(s, n))
        return 0;
    for (i = 0; i < n; i += k) {
        cp = utf8_at(p + i, &k);
        if ((cp < 0x20 && !((flags & TEXT_LINES) && (cp == '\t' || cp == '\n' || cp == '\r')))
            || (cp >= 0x7f && cp <= 0x9f))
            return 0;
        if ((flags & TEXT_NO_BIDI) && ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)))
            return 0;
    }
    return 1;
}

/* The last component of a path a browser or an old client may send as the file name. */
static const char *path_last(const char *s)
{
    const char *a = strrchr(s, '/'), *b = strrchr(s, '\\');

    if (a && b)
        return (a > b ? a : b) + 1;
    return a ? a + 1 : b ? b + 1 : s;
}

void documents_download_name(const char *filename, const char *title, const char *content_type,
                             char out[DOCUMENT_FILENAME_MAX + 8])
{
    const char *base = filename && *filename ? path_last(filename) : title && *title ? title : "";
    const char *dot;
    size_t n = strlen(base), i;

    if (n == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        base = "document", n = 8;
    if (n > DOCUMENT_FILENAME_MAX)
        n = DOCUMENT_FILENAME_MAX;
    while (n > 0 && n < strlen(base) && ((unsigned char)base[n] & 0xc0) == 0x80)
        n--;    /* cut at a character boundary */
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)base[i];

        out[i] = (c < 0x20 || c == 0x7f || c == '/' || c == '\\') ? '_' : (char)c;
    }
    out[n] = '\0';
    /* the extension is what a desktop opens the saved file with: it must say what the content is */
    dot = strrchr(out, '.');
    if (dot == NULL || dot == out || !sniff_extension_fits(content_type, dot + 1))
        snprintf(out + n, DOCUMENT_FILENAME_MAX + 8 - n, ".%s", sniff_extension(content_type));
}

/* ---- visibility ---- */

/* A document is visible to callers of its own site or of its patient's site (as encounters are). */
static json_t *document_load(struct db *db, const struct caller *who, const char *id, struct err *e)
{
    return clinical_load(db, who, id, store_document_get, NULL, NULL, "document_not_found", "document", e);
}

/* row[key], or null when absent. */
static json_t *field_or_null(const json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);

    return v ? v : json_null();
}

/* The API view of a row (stored, or just written: absent fields read as null). */
static json_t *document_view(const json_t *row)
{
    static const char *const keys[] = {
        "id", "patient_id", "site_id", "encounter_id", "title", "filename", "content_type", "size", "sha256", "status",
        "author", "created_at", "error_reason", "error_by", "error_at",
    };
    char created[32];
    json_t *v = json_object();
    size_t i;

    format_time_ms(json_integer_value(json_object_get(row, "created_at")), created, sizeof(created));
    for (i = 0; v && i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (json_object_set_new(v, keys[i], strcmp(keys[i], "created_at") == 0 ? json_string(created)
                                                  : json_incref(field_or_null(row, keys[i]))) < 0) {
            json_decref(v);
            return NULL;
        }
    }
    return v;
}

/* ---- upload ---- */

/* Check the upload's own input (type, content, size, title, file name) before anything is looked up. */
static int upload_check(const struct document_upload *in, const char **type, const char **filename, struct err *e)
{
    if (in->len > DOCUMENT_MAX_BYTES)
        return err_set(e, ERR_TOO_LARGE, "document_too_large", "a document may be at most %u bytes",
                       DOCUMENT_MAX_BYTES);
    if (sniff_check(in->content_type, in->data, in->len, type, e) < 0)
        return -1;
    if (in->title && !text_clean(in->title, DOCUMENT_TITLE_MAX, 0)) {
        err_set(e, ERR_INVALID, "invalid_title", "the title must be UTF-8 text of at most %d bytes without control "
                "characters", DOCUMENT_TITLE_MAX);
        return err_field(e, "title");
    }
    *filename = in->filename && *in->filename ? path_last(in->filename) : NULL;
    if (*filename && (**filename == '\0' || strcmp(*filename, ".") == 0 || strcmp(*filename, "..") == 0))
        *filename = NULL;
    if (*filename && !text_clean(*filename, DOCUMENT_FILENAME_MAX, TEXT_NO_BIDI)) {
        err_set(e, ERR_INVALID, "invalid_filename", "the file name must be UTF-8 text of at most %d bytes without "
                "control or direction-override characters", DOCUMENT_FILENAME_MAX);
        return err_field(e, "filename");
    }
    return 0;
}

/* The encounter an upload names, when it is this patient's. */
static int upload_encounter(struct db *db, const char *patient_id, const char *encounter_id, json_t **enc,
                            struct err *e)
{
    int found;

    *enc = NULL;
    if (!id_valid(encounter_id) || (found = store_encounter_get(db, encounter_id, enc, e)) == 0
        || (found > 0 && json_is_true(json_object_get(*enc, "deleted")))) {
        json_decref(*enc);
        *enc = NULL;
        err_set(e, ERR_NOT_FOUND, "encounter_not_found", "no encounter with this id");
        return err_field(e, "encounter");
    }
    if (found < 0)
        return -1;
    if (strcmp(json_string_value(json_object_get(*enc, "patient_id")), patient_id) != 0) {
        json_decref(*enc);
        *enc = NULL;
        err_set(e, ERR_UNPROCESSABLE, "encounter_mismatch", "the encounter is not one of this patient's");
        return err_field(e, "encounter");
    }
    return 0;
}

/* The creating change: every metadata field and the content as base64url. */
static json_t *upload_changes(const struct caller *who, const struct patient_brief *p, const char *site,
                              const char *type, const char *sha, const struct document_upload *in,
                              const char *filename, int64_t now, struct err *e)
{
    size_t room = CRYPTO_B64URL_LEN(in->len);
    char *b64 = malloc(room);
    json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:I}", "patient_id", p->id, "site_id", site, "sha256", sha,
                          "content_type", type, "size", (json_int_t)in->len, "status", STATUS_ACTIVE, "author",
                          who->username, "created_at", (json_int_t)now);

    if (b64 == NULL || c == NULL || crypto_b64url_encode(in->data, in->len, b64, room) < 0) {
        free(b64);
        json_decref(c);
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    }
    json_object_set_new(c, "content", json_stringn_nocheck(b64, strlen(b64)));
    free(b64);
    if (in->encounter_id)
        json_object_set_new(c, "encounter_id", json_string(in->encounter_id));
    if (filename)
        json_object_set_new(c, "filename", json_string(filename));
    if (in->title && *in->title)
        json_object_set_new(c, "title", json_string(in->title));
    if (!json_is_string(json_object_get(c, "content")))
        return json_decref(c), err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    return c;
}

json_t *documents_upload(struct db *db, const struct caller *who, const char *patient_id,
                         const struct document_upload *in, struct err *e)
{
    struct patient_brief p;
    const char *type = NULL, *filename = NULL, *site;
    char id[ID_LEN], sha[CRYPTO_SHA256_HEX_LEN];
    json_t *enc = NULL, *changes = NULL, *row = NULL, *out = NULL;
    int64_t now = now_ms();

    if (who->nsites == 0)
        return err_set(e, ERR_FORBIDDEN, "no_site", "your account belongs to no site"), NULL;
    if (upload_check(in, &type, &filename, e) < 0 || clinical_patient_visible(db, who, patient_id, &p, e) < 0
        || (in->encounter_id && upload_encounter(db, p.id, in->encounter_id, &enc, e) < 0))
        return NULL;
    site = enc && caller_has_site(who, json_string_value(json_object_get(enc, "site_id")))
               ? json_string_value(json_object_get(enc, "site_id")) : p.site_id;
    /* the content first, outside the write lock (a fsync of up to 10 MiB): a file no row names yet is
     * harmless, a row without its file is not */
    crypto_sha256_hex(in->data, in->len, sha);
    if (store_blob_put(db, sha, in->data, in->len, e) < 0
        || (changes = upload_changes(who, &p, site, type, sha, in, filename, now, e)) == NULL)
        goto done;
    id_new(id);
    if (db_begin_write(db, e) < 0)
        goto done;
    /* the patient may have been deleted meanwhile */
    if (clinical_patient_visible(db, who, patient_id, &p, e) < 0
        || changelog_record(db, NULL, DOCUMENT_TABLE, id, changes, CHANGELOG_NEW_ROW, NULL, e) < 0)
        goto fail;
    json_object_del(changes, "content");    /* the row keeps the metadata only; free the copy now */
    row = changes;
    changes = NULL;
    json_object_set_new(row, "id", json_string(id));
    if (store_document_put(db, row, e) < 0
        || audit_record(db, who, "document.upload", "document", id, site, "ok", e) < 0
        || db_commit(db, e) < 0)
        goto fail;
    if ((out = document_view(row)) == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    goto done;
fail:
    db_rollback(db);
    if (e->kind == ERR_NONE)
        err_set(e, ERR_INTERNAL, "internal_error", "the document could not be saved");
done:
    json_decref(enc);
    json_decref(changes);
    json_decref(row);
    return out;
}

/* ---- reading ---- */

json_t *documents_get(struct db *db, const struct caller *who, const char *id, struct err *e)
{
    json_t *row, *out;

    if ((row = document_load(db, who, id, e)) == NULL)
        return NULL;
    out = document_view(row);
    if (out == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    else if (audit_record(db, who, "document.read", "document", id, json_string_value(json_object_get(row, "site_id")),
                          "ok", e) < 0)
        json_decref(out), out = NULL;
    json_decref(row);
    return out;
}

static int list_add(const json_t *row, void *ctx)
{
    json_t *v = document_view(row);

    return v == NULL || json_array_append_new(ctx, v) < 0;
}

json_t *documents_list(struct db *db, const struct caller *who, const char *patient_id, const char *cursor,
                       int64_t limit, struct err *e)
{
    struct patient_brief p;
    json_t *items = json_array(), *last;

    if (limit <= 0 || limit > DOCUMENTS_PAGE_MAX)
        limit = 20;
    if (items == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (cursor && !id_valid(cursor)) {
        json_decref(items);
        return err_set(e, ERR_INVALID, "invalid_cursor", "the cursor is not one this server gave"), NULL;
    }
    if (clinical_patient_visible(db, who, patient_id, &p, e) < 0
        || store_document_list(db, patient_id, cursor, limit + 1, list_add, items, e) < 0
        || audit_record(db, who, "document.list", "patient", patient_id, p.site_id, "ok", e) < 0) {
        json_decref(items);
        return NULL;
    }
    if ((int64_t)json_array_size(items) > limit) {
        json_array_remove(items, (size_t)limit);
        last = json_array_get(items, (size_t)limit - 1);
        return json_pack("{s:o,s:O}", "items", items, "next", json_object_get(last, "id"));
    }
    return json_pack("{s:o,s:n}", "items", items, "next");
}

int documents_open_content(struct db *db, const struct caller *who, const char *id, struct document_content *out,
                           struct err *e)
{
    json_t *row;
    const char *sha, *type;
    int found, rc = -1;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if ((row = document_load(db, who, id, e)) == NULL)
        return -1;
    sha = json_string_value(json_object_get(row, "sha256"));
    type = json_string_value(json_object_get(row, "content_type"));
    if ((found = store_blob_open(db, sha, &out->fd, &out->size, e)) < 0)
        goto done;
    if (!found) {
        err_set(e, ERR_INTERNAL, "content_missing", "the document's content is missing on this node");
        goto done;
    }
    if (out->size != (uint64_t)json_integer_value(json_object_get(row, "size")) || !sniff_type_known(type)) {
        err_set(e, ERR_INTERNAL, "content_damaged", "the document's stored content is damaged");
        goto done;
    }
    /* audited before a byte is given: no download goes unrecorded */
    if (audit_record(db, who, "document.download", "document", id, json_string_value(json_object_get(row, "site_id")),
                     "ok", e) < 0)
        goto done;
    snprintf(out->content_type, sizeof(out->content_type), "%s", type);
    documents_download_name(json_string_value(json_object_get(row, "filename")),
                            json_string_value(json_object_get(row, "title")), type, out->download_name);
    rc = 0;
done:
    if (rc < 0 && out->fd >= 0) {
        close(out->fd);
        out->fd = -1;
    }
    json_decref(row);
    return rc;
}

/* ---- entered in error ---- */

json_t *documents_withdraw(struct db *db, const struct caller *who, const char *id, const json_t *input,
                           struct err *e)
{
    const char *reason = json_string_value(json_object_get(input, "reason"));
    json_t *row = NULL, *changes = NULL, *out = NULL;
    char now[21];

    if (json_check_fields(input, documents_withdraw_fields, e) < 0)
        return NULL;
    if (reason == NULL || reason[strspn(reason, " \t\r\n")] == '\0')
        return err_set(e, ERR_UNPROCESSABLE, "missing_reason", "say why the document was entered in error"),
               err_field(e, "reason"), NULL;
    if (!text_clean(reason, DOCUMENT_REASON_MAX, TEXT_LINES))
        return err_set(e, ERR_INVALID, "invalid_reason", "the reason must be text without control characters"),
               err_field(e, "reason"), NULL;
    if (db_begin_write(db, e) < 0)
        return NULL;
    if ((row = document_load(db, who, id, e)) == NULL)
        goto fail;
    if (strcmp(json_string_value(json_object_get(row, "status")), STATUS_ERROR) == 0) {
        err_set(e, ERR_CONFLICT, "already_entered_in_error", "the document is already marked entered in error");
        goto fail;
    }
    datetime_format(now_ms(), now);
    changes = json_pack("{s:s,s:s,s:s,s:s}", "status", STATUS_ERROR, "error_reason", reason, "error_by", who->username,
                        "error_at", now);
    if (changes == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        goto fail;
    }
    json_object_update(row, changes);
    if (changelog_record(db, NULL, DOCUMENT_TABLE, id, changes, 0, NULL, e) < 0 || store_document_put(db, row, e) < 0
        || audit_record(db, who, "document.withdraw", "document", id, json_string_value(json_object_get(row, "site_id")),
                        "ok", e) < 0
        || db_commit(db, e) < 0)
        goto fail;
    if ((out = document_view(row)) == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    goto done;
fail:
    db_rollback(db);
    if (e->kind == ERR_NONE)
        err_set(e, ERR_INTERNAL, "internal_error", "the document could not be marked");
done:
    json_decref(row);
    json_decref(changes);
    return out;
}

/* ---- replication ---- */

/* Decode base64url content of exactly size bytes and check it hashes to sha; a new buffer the caller frees. */
static unsigned char *content_decode(const json_t *content, const char *sha, json_int_t size, struct err *e)
{
    unsigned char *bytes;
    char got_sha[CRYPTO_SHA256_HEX_LEN];
    size_t got = 0;

    if (!json_is_string(content) || size < 1 || size > (json_int_t)DOCUMENT_MAX_BYTES)
        return err_set(e, ERR_INVALID, "invalid_change", "a document change lacks its content"), NULL;
    if ((bytes = malloc((size_t)size)) == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (crypto_b64url_decode(json_string_value(content), json_string_length(content), bytes, (size_t)size, &got) < 0
        || got != (size_t)size) {
        free(bytes);
        return err_set(e, ERR_INVALID, "content_mismatch", "a document's content is not base64url of its size"), NULL;
    }
    crypto_sha256_hex(bytes, got, got_sha);
    if (sha == NULL || strcmp(got_sha, sha) != 0) {
        free(bytes);
        return err_set(e, ERR_INVALID, "content_mismatch", "a document's content does not match its SHA-256"), NULL;
    }
    return bytes;
}

int documents_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e)
{
    const char *sha = json_string_value(json_object_get(fields, "sha256"));
    json_int_t size = json_integer_value(json_object_get(fields, "size"));
    unsigned char *bytes;
    const char *key;
    json_t *row, *v;
    int has, rc;

    (void)at;   /* the row keeps the creation time its origin gave it */
    if (!store_blob_name_valid(sha) || size < 1 || size > (json_int_t)DOCUMENT_MAX_BYTES
        || !json_is_string(json_object_get(fields, "patient_id")) || !json_is_string(json_object_get(fields, "site_id")))
        return err_set(e, ERR_INVALID, "invalid_change", "a document lacks its patient, site, size or SHA-256");
    if ((has = store_blob_has(db, sha, (uint64_t)size, e)) < 0)
        return -1;
    if (!has) {
        /* the content is stored only once it is proven to be what the metadata names */
        if ((bytes = content_decode(json_object_get(fields, "content"), sha, size, e)) == NULL)
            return -1;
        rc = store_blob_put(db, sha, bytes, (size_t)size, e);
        free(bytes);
        if (rc < 0)
            return -1;
    }
    /* the row is the metadata: every field but the content (shared, not copied: it may be megabytes) */
    if ((row = json_object()) == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    json_object_foreach((json_t *)fields, key, v)
        if (strcmp(key, "content") != 0)
            json_object_set(row, key, v);
    json_object_set_new(row, "id", json_string(id));
    rc = store_document_put(db, row, e);
    json_decref(row);
    return rc;
}

static const char *const document_id_fields[] = { "patient_id", "site_id", "encounter_id", NULL };

static int in_list(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* One field of a document change: its name known and its value of the right shape. */
static int field_ok(const char *key, const json_t *v)
{
    const char *s = json_string_value(v);

    if (in_list(key, document_id_fields))
        return id_valid(s);
    if (strcmp(key, "sha256") == 0)
        return store_blob_name_valid(s);
    if (strcmp(key, "content_type") == 0)
        return sniff_type_known(s);
    if (strcmp(key, "status") == 0)
        return s && (strcmp(s, STATUS_ACTIVE) == 0 || strcmp(s, STATUS_ERROR) == 0);
    if (strcmp(key, "filename") == 0)
        return s && text_clean(s, DOCUMENT_FILENAME_MAX, TEXT_NO_BIDI) && strchr(s, '/') == NULL && strchr(s, '\\') == NULL;
    if (strcmp(key, "title") == 0)
        return s && text_clean(s, DOCUMENT_TITLE_MAX, 0);
    if (strcmp(key, "error_reason") == 0)
        return s && text_clean(s, DOCUMENT_REASON_MAX, TEXT_LINES);
    if (strcmp(key, "author") == 0 || strcmp(key, "error_by") == 0 || strcmp(key, "error_at") == 0)
        return s && text_clean(s, 120, 0);
    if (strcmp(key, "size") == 0)
        return json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= (json_int_t)DOCUMENT_MAX_BYTES;
    if (strcmp(key, "created_at") == 0)
        return json_is_integer(v) && json_integer_value(v) >= 0;
    if (strcmp(key, "content") == 0)
        return s && json_string_length(v) <= CONTENT_B64_MAX;
    return 0;
}

int documents_check_fields(const json_t *fields, struct err *e)
{
    const json_t *content = json_object_get(fields, "content"), *sha = json_object_get(fields, "sha256");
    const json_t *size = json_object_get(fields, "size");
    unsigned char *bytes;
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)fields, key, v) {
        if (!field_ok(key, v))
            return err_set(e, ERR_INVALID, "invalid_change", "a document change has an unknown or malformed field "
                           "'%.40s'", key);
    }
    /* the content, its name and its size are set once, together: none may change without the others */
    if ((content != NULL) != (sha != NULL) || (content != NULL) != (size != NULL))
        return err_set(e, ERR_INVALID, "invalid_change", "a document change must carry content, sha256 and size "
                       "together");
    if (content == NULL)
        return 0;
    if ((bytes = content_decode(content, json_string_value(sha), json_integer_value(size), e)) == NULL)
        return -1;
    free(bytes);
    return 0;
}

int documents_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e)
{
    return clinical_site_of(db, store_document_get, id, site, e);
}
