/* documents.c — SQL for document metadata (see store/documents.h). */
#include <string.h>

#include "store/db_internal.h"
#include "store/documents.h"

#define DOCUMENT_COLS "id, patient_id, site_id, encounter_id, sha256, content_type, filename, title, status, author," \
                      " error_reason, error_by, error_at, size, created_at"
static const char *const document_text[] = {
    "id", "patient_id", "site_id", "encounter_id", "sha256", "content_type", "filename", "title", "status", "author",
    "error_reason", "error_by", "error_at",
};
#define DOCUMENT_NTEXT (sizeof(document_text) / sizeof(document_text[0]))

int store_document_put(struct db *db, const json_t *doc, struct err *e)
{
    static const char sql[] =
        "INSERT INTO documents (" DOCUMENT_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
        " $14, $15)"
        " ON CONFLICT (id) DO UPDATE SET patient_id = excluded.patient_id, site_id = excluded.site_id,"
        " encounter_id = excluded.encounter_id, sha256 = excluded.sha256, content_type = excluded.content_type,"
        " filename = excluded.filename, title = excluded.title, status = excluded.status, author = excluded.author,"
        " error_reason = excluded.error_reason, error_by = excluded.error_by, error_at = excluded.error_at,"
        " size = excluded.size, created_at = excluded.created_at";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    const char *s;
    size_t i;

    if (st == NULL)
        return -1;
    for (i = 0; i < DOCUMENT_NTEXT; i++) {
        s = json_string_value(json_object_get(doc, document_text[i]));
        if (s == NULL && (i < 3 || i == 4 || i == 5))       /* NOT NULL columns without a default */
            s = "";
        if (s == NULL && i == 8)
            s = "active";
        if (s == NULL && i == 9)
            s = "";
        db_bind_text(st, (int)i + 1, s);
    }
    sqlite3_bind_int64(st, 14, json_integer_value(json_object_get(doc, "size")));
    sqlite3_bind_int64(st, 15, json_integer_value(json_object_get(doc, "created_at")));
    return db_step_done(db, st, "put document", e);
}

static json_t *document_read(sqlite3_stmt *st)
{
    json_t *o = json_object();
    const unsigned char *t;
    size_t i;

    for (i = 0; o && i < DOCUMENT_NTEXT; i++) {
        t = sqlite3_column_text(st, (int)i);
        json_object_set_new(o, document_text[i], t ? json_string((const char *)t) : json_null());
    }
    if (o) {
        json_object_set_new(o, "size", json_integer(sqlite3_column_int64(st, (int)DOCUMENT_NTEXT)));
        json_object_set_new(o, "created_at", json_integer(sqlite3_column_int64(st, (int)DOCUMENT_NTEXT + 1)));
    }
    return o;
}

int store_document_get(struct db *db, const char *id, json_t **out, struct err *e)
{
    static const char sql[] = "SELECT " DOCUMENT_COLS " FROM documents WHERE id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    *out = NULL;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    return db_rows_json(db, st, document_read, NULL, NULL, out, "get document", e);
}

int store_document_list(struct db *db, const char *patient_id, const char *after, int64_t limit,
                        int (*cb)(const json_t *row, void *ctx), void *ctx, struct err *e)
{
    static const char first[] =
        "SELECT " DOCUMENT_COLS " FROM documents WHERE patient_id = $1 ORDER BY id DESC LIMIT $2";
    static const char next[] =
        "SELECT " DOCUMENT_COLS " FROM documents WHERE patient_id = $1 AND id < $3 ORDER BY id DESC LIMIT $2";
    sqlite3_stmt *st = db_stmt(db, after ? next : first, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, patient_id);
    sqlite3_bind_int64(st, 2, limit);
    if (after)
        db_bind_text(st, 3, after);
    return db_rows_json(db, st, document_read, cb, ctx, NULL, "list documents", e) < 0 ? -1 : 0;
}
