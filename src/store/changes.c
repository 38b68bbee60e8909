/* changes.c — SQL for the change log, origins and record versions. */
#include <string.h>

#include "store/changes.h"
#include "store/db_internal.h"

int store_origin_alias(struct db *db, const char *node_id, int64_t *alias, struct err *e)
{
    static const char ins[] = "INSERT INTO origins (node_id) VALUES ($1) ON CONFLICT (node_id) DO NOTHING";
    static const char sel[] = "SELECT n FROM origins WHERE node_id = $1";
    sqlite3_stmt *st = db_stmt(db, ins, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, node_id);
    rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, "insert origin", e);
    if ((st = db_stmt(db, sel, e)) == NULL)
        return -1;
    db_bind_text(st, 1, node_id);
    return db_step_int64(db, st, alias, "get origin", e);
}

int store_change_last_seq(struct db *db, int64_t origin, int64_t *seq, struct err *e)
{
    static const char sql[] = "SELECT max(seq) FROM changes WHERE origin = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, origin);
    return db_step_int64(db, st, seq, "last change seq", e);
}

/* Keep origins.contiguous, the version vector, current as changes arrive: a change right after it moves
 * it on, over any changes already held beyond (a gap being filled). One indexed lookup per change,
 * instead of counting the whole log on every sync request. */
static int origin_advance(struct db *db, int64_t origin, int64_t seq, struct err *e)
{
    static const char get[] = "SELECT contiguous FROM origins WHERE n = $1";
    static const char next[] = "SELECT 1 FROM changes WHERE origin = $1 AND seq = $2";
    static const char set[] = "UPDATE origins SET contiguous = $2 WHERE n = $1";
    sqlite3_stmt *st = db_stmt(db, get, e);
    int64_t c = 0;
    int rc;

    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, origin);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        c = sqlite3_column_int64(st, 0);
    db_stmt_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(db, "read contiguous seq", e);
    if (seq != c + 1)
        return 0;
    c = seq;
    for (;;) {
        if ((st = db_stmt(db, next, e)) == NULL)
            return -1;
        sqlite3_bind_int64(st, 1, origin);
        sqlite3_bind_int64(st, 2, c + 1);
        rc = sqlite3_step(st);
        db_stmt_done(st);
        if (rc == SQLITE_ROW)
            c++;
        else if (rc == SQLITE_DONE)
            break;
        else
            return db_fail(db, "probe next seq", e);
    }
    if ((st = db_stmt(db, set, e)) == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, origin);
    sqlite3_bind_int64(st, 2, c);
    return db_step_done(db, st, "advance contiguous seq", e);
}

int store_change_insert(struct db *db, int64_t origin, int64_t seq, const char *tbl, const char *row_id,
                        int64_t hlc, const char *fields_json, const char *base_json, struct err *e)
{
    static const char sql[] = "INSERT INTO changes (origin, seq, tbl, row_id, hlc, fields, base) "
                              "VALUES ($1, $2, $3, $4, $5, $6, $7)";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, origin);
    sqlite3_bind_int64(st, 2, seq);
    db_bind_text(st, 3, tbl);
    db_bind_text(st, 4, row_id);
    sqlite3_bind_int64(st, 5, hlc);
    db_bind_text(st, 6, fields_json);
    db_bind_text(st, 7, base_json);
    return db_step_done(db, st, "append change", e);
}

int store_change_append(struct db *db, int64_t origin, int64_t seq, const char *tbl, const char *row_id,
                        int64_t hlc, const char *fields_json, const char *base_json, struct err *e)
{
    if (store_change_insert(db, origin, seq, tbl, row_id, hlc, fields_json, base_json, e) < 0)
        return -1;
    return origin_advance(db, origin, seq, e);
}

int store_origin_state(struct db *db, const char *node_id, int64_t *alias, int64_t *max_seq, int64_t *contiguous,
                       struct err *e)
{
    static const char sql[] = "SELECT n, contiguous, (SELECT max(seq) FROM changes WHERE origin = n)"
                              " FROM origins WHERE node_id = $1";
    sqlite3_stmt *st;
    int rc;

    if (store_origin_alias(db, node_id, alias, e) < 0 || (st = db_stmt(db, sql, e)) == NULL)
        return -1;
    db_bind_text(st, 1, node_id);
    rc = sqlite3_step(st);
    *contiguous = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    *max_seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 2) : 0;
    db_stmt_done(st);
    return rc == SQLITE_ROW ? 0 : db_fail(db, "read origin", e);
}

int store_origin_set_contiguous(struct db *db, int64_t origin, int64_t contiguous, struct err *e)
{
    static const char sql[] = "UPDATE origins SET contiguous = $2 WHERE n = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, origin);
    sqlite3_bind_int64(st, 2, contiguous);
    return db_step_done(db, st, "advance contiguous seq", e);
}

int store_change_max_hlc(struct db *db, int64_t *hlc, struct err *e)
{
    /* each origin's newest change carries its highest time (times rise with seq at the origin), so this
     * reads one index entry per origin instead of the whole log */
    static const char sql[] = "SELECT max((SELECT c.hlc FROM changes c WHERE c.origin = o.n ORDER BY c.seq DESC"
                              " LIMIT 1)) FROM origins o";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    return st ? db_step_int64(db, st, hlc, "max hlc", e) : -1;
}

int store_change_count(struct db *db, int64_t *n, struct err *e)
{
    static const char sql[] = "SELECT count(*) FROM changes";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    return st ? db_step_int64(db, st, n, "count changes", e) : -1;
}

int store_changes_of_row(struct db *db, const char *tbl, const char *row_id, store_change_cb cb, void *ctx,
                         struct err *e)
{
    static const char sql[] = "SELECT o.node_id, c.hlc, c.fields, c.base FROM changes c JOIN origins o ON o.n = c.origin"
                              " WHERE c.row_id = $1 AND c.tbl = $2 ORDER BY c.hlc";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, row_id);
    db_bind_text(st, 2, tbl);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
               (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3), ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "read changes of row", e);
}

int store_row_has_changes(struct db *db, const char *tbl, const char *row_id, struct err *e)
{
    static const char sql[] = "SELECT 1 FROM changes WHERE row_id = $1 AND tbl = $2 LIMIT 1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, row_id);
    db_bind_text(st, 2, tbl);
    return db_step_exists(db, st, "probe changes of row", e);
}

int store_change_exists(struct db *db, int64_t origin, int64_t seq, struct err *e)
{
    static const char sql[] = "SELECT 1 FROM changes WHERE origin = $1 AND seq = $2";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, origin);
    sqlite3_bind_int64(st, 2, seq);
    return db_step_exists(db, st, "check change", e);
}

int store_changes_after(struct db *db, const char *origin_node, int64_t after, int64_t limit, store_log_cb cb,
                        void *ctx, struct err *e)
{
    static const char sql[] = "SELECT c.seq, c.tbl, c.row_id, c.hlc, c.fields, c.base FROM changes c"
                              " WHERE c.origin = (SELECT n FROM origins WHERE node_id = $1) AND c.seq > $2"
                              " ORDER BY c.seq LIMIT $3";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, origin_node);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cb(origin_node, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
               (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3),
               (const char *)sqlite3_column_text(st, 4), (const char *)sqlite3_column_text(st, 5), ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "read changes", e);
}

int store_origins_scan(struct db *db, store_origin_cb cb, void *ctx, struct err *e)
{
    /* per origin: its newest seq from the primary key, and the gap-free position kept in origins */
    static const char sql[] = "SELECT o.node_id,"
                              " (SELECT max(seq) FROM changes WHERE origin = o.n),"
                              " o.contiguous"
                              " FROM origins o ORDER BY o.node_id";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 1) == SQLITE_NULL)
            continue;
        if (cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
               ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "scan origins", e);
}
