/* sites.c — SQL for sites and node metadata. */
#include "store/db_internal.h"
#include "store/sites.h"

int store_site_name_taken(struct db *db, const char *name, struct err *e)
{
    static const char sql[] = "SELECT 1 FROM sites WHERE name = $1 LIMIT 1";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int64_t one;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, name);
    if (db_step_int64(db, st, &one, "find site name", e) < 0)
        return -1;
    return one == 1;
}

int store_site_put(struct db *db, const struct site_row *s, struct err *e)
{
    static const char sql[] = "INSERT INTO sites (id, name, created_at) VALUES ($1, $2, $3)"
                              " ON CONFLICT (id) DO UPDATE SET name = excluded.name";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, s->id);
    db_bind_text(st, 2, s->name);
    sqlite3_bind_int64(st, 3, s->created_at);
    return db_step_done(db, st, "put site", e);
}

int store_site_insert(struct db *db, const struct site_row *s, struct err *e)
{
    static const char sql[] = "INSERT INTO sites (id, name, created_at) VALUES ($1, $2, $3)";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, s->id);
    db_bind_text(st, 2, s->name);
    sqlite3_bind_int64(st, 3, s->created_at);
    rc = sqlite3_step(st);
    db_stmt_done(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return err_set(e, ERR_CONFLICT, "site_exists", "a site with this name already exists");
    return rc == SQLITE_DONE ? 0 : db_fail(db, "insert site", e);
}

static void site_from_row(sqlite3_stmt *st, struct site_row *s)
{
    db_column_copy(st, 0, s->id, sizeof(s->id));
    db_column_copy(st, 1, s->name, sizeof(s->name));
    s->created_at = sqlite3_column_int64(st, 2);
}

int store_site_get(struct db *db, const char *id, struct site_row *out, struct err *e)
{
    static const char sql[] = "SELECT id, name, created_at FROM sites WHERE id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        site_from_row(st, out);
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(db, "get site", e);
}

int store_site_list(struct db *db, store_site_cb cb, void *ctx, struct err *e)
{
    static const char sql[] = "SELECT id, name, created_at FROM sites ORDER BY name";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    struct site_row s;
    int rc;

    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        site_from_row(st, &s);
        if (cb(&s, ctx) < 0) {
            db_stmt_done(st);
            return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory while listing sites");
        }
    }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "list sites", e);
}

int store_meta_get(struct db *db, const char *key, char *out, size_t n, struct err *e)
{
    static const char sql[] = "SELECT value FROM meta WHERE key = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        db_column_copy(st, 0, out, n);
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(db, "get meta", e);
}

int store_meta_set(struct db *db, const char *key, const char *value, struct err *e)
{
    static const char sql[] = "INSERT INTO meta (key, value) VALUES ($1, $2) "
                              "ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, key);
    db_bind_text(st, 2, value);
    return db_step_done(db, st, "set meta", e);
}
