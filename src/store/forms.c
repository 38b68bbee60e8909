/* forms.c — SQL for form definitions (see store/forms.h). */
#include <stdlib.h>
#include <string.h>

#include "store/db_internal.h"
#include "store/forms.h"

void store_form_row_free(struct form_row *r)
{
    free(r->definition);
    r->definition = NULL;
}

int store_form_put(struct db *db, const struct form_row *r, struct err *e)
{
    static const char sql[] =
        "INSERT INTO forms (row_id, form_id, version, definition, builtin, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (row_id) DO NOTHING";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, r->row_id);
    db_bind_text(st, 2, r->form_id);
    sqlite3_bind_int64(st, 3, r->version);
    db_bind_text(st, 4, r->definition);
    sqlite3_bind_int(st, 5, r->builtin != 0);
    sqlite3_bind_int64(st, 6, r->created_at);
    return db_step_done(db, st, "put form", e);
}

/* Fill *out from a row of (row_id, form_id, version, definition, builtin, created_at). */
static int form_row_read(sqlite3_stmt *st, struct form_row *out)
{
    const unsigned char *d = sqlite3_column_text(st, 3);

    db_column_copy(st, 0, out->row_id, sizeof(out->row_id));
    db_column_copy(st, 1, out->form_id, sizeof(out->form_id));
    out->version = sqlite3_column_int64(st, 2);
    out->builtin = sqlite3_column_int(st, 4);
    out->created_at = sqlite3_column_int64(st, 5);
    out->definition = strdup(d ? (const char *)d : "{}");
    return out->definition ? 0 : -1;
}

/* Step st for at most one row into *out: 1 found, 0 none, -1 failure. Resets st. */
static int form_row_one(struct db *db, sqlite3_stmt *st, struct form_row *out, const char *what, struct err *e)
{
    int rc = sqlite3_step(st), found = 0;

    memset(out, 0, sizeof(*out));
    if (rc == SQLITE_ROW) {
        found = form_row_read(st, out) == 0 ? 1 : -1;
        if (found < 0)
            err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    } else if (rc != SQLITE_DONE) {
        found = db_fail(db, what, e);
    }
    db_stmt_done(st);
    return found;
}

int store_form_get(struct db *db, const char *row_id, struct form_row *out, struct err *e)
{
    static const char sql[] =
        "SELECT row_id, form_id, version, definition, builtin, created_at FROM forms WHERE row_id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, row_id);
    return form_row_one(db, st, out, "get form", e);
}

int store_form_resolve(struct db *db, const char *form_id, int64_t version, struct form_row *out, struct err *e)
{
    static const char exact[] =
        "SELECT row_id, form_id, version, definition, builtin, created_at FROM forms"
        " WHERE form_id = $1 AND version = $2 ORDER BY row_id DESC LIMIT 1";
    static const char newest[] =
        "SELECT row_id, form_id, version, definition, builtin, created_at FROM forms"
        " WHERE form_id = $1 ORDER BY version DESC, row_id DESC LIMIT 1";
    sqlite3_stmt *st = db_stmt(db, version > 0 ? exact : newest, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, form_id);
    if (version > 0)
        sqlite3_bind_int64(st, 2, version);
    return form_row_one(db, st, out, "resolve form", e);
}

/* Call cb for every row of st; stop when it returns non-zero. */
static int form_rows_each(struct db *db, sqlite3_stmt *st, store_form_cb cb, void *ctx, const char *what,
                          struct err *e)
{
    struct form_row r;
    int rc, stop = 0;

    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&r, 0, sizeof(r));
        if (form_row_read(st, &r) < 0) {
            db_stmt_done(st);
            return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        }
        stop = cb(&r, ctx);
        store_form_row_free(&r);
    }
    db_stmt_done(st);
    if (!stop && rc != SQLITE_DONE)
        return db_fail(db, what, e);
    return 0;
}

int store_form_list_latest(struct db *db, store_form_cb cb, void *ctx, struct err *e)
{
    static const char sql[] =
        "SELECT f.row_id, f.form_id, f.version, f.definition, f.builtin, f.created_at FROM forms f"
        " WHERE f.row_id = (SELECT g.row_id FROM forms g WHERE g.form_id = f.form_id"
        "                   ORDER BY g.version DESC, g.row_id DESC LIMIT 1)"
        " ORDER BY f.form_id";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    return form_rows_each(db, st, cb, ctx, "list forms", e);
}

int store_form_list_versions(struct db *db, const char *form_id, store_form_cb cb, void *ctx, struct err *e)
{
    static const char sql[] =
        "SELECT row_id, form_id, version, definition, builtin, created_at FROM forms WHERE form_id = $1"
        " ORDER BY version DESC, row_id DESC";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, form_id);
    return form_rows_each(db, st, cb, ctx, "list form versions", e);
}
