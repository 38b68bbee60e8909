/* sync.c — SQL for replication state: cursors, conflicts, quarantine, peer restrictions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db_internal.h"
#include "store/sync.h"

int store_cursor_scan(struct db *db, const char *peer_id, const char *direction, store_cursor_cb cb, void *ctx,
                      struct err *e)
{
    static const char sql[] = "SELECT origin, seq FROM peer_cursors WHERE peer_id = $1 AND direction = $2";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, peer_id);
    db_bind_text(st, 2, direction);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1), ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "read cursor", e);
}

int store_cursor_raise(struct db *db, const char *peer_id, const char *direction, const char *origin_node,
                       int64_t seq, struct err *e)
{
    static const char sql[] = "INSERT INTO peer_cursors (peer_id, direction, origin, seq) VALUES ($1, $2, $3, $4)"
                              " ON CONFLICT (peer_id, direction, origin) DO UPDATE SET seq = excluded.seq"
                              " WHERE excluded.seq > peer_cursors.seq";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, peer_id);
    db_bind_text(st, 2, direction);
    db_bind_text(st, 3, origin_node);
    sqlite3_bind_int64(st, 4, seq);
    rc = sqlite3_step(st);
    db_stmt_done(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return err_set(e, ERR_NOT_FOUND, "unknown_peer", "no enrolled peer with this id");
    return rc == SQLITE_DONE ? 0 : db_fail(db, "save cursor", e);
}

int store_peer_sites(struct db *db, const char *peer_id, char **sites_json, struct err *e)
{
    static const char sql[] = "SELECT sites FROM peers WHERE id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    const unsigned char *t;
    int rc;

    *sites_json = NULL;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, peer_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && (t = sqlite3_column_text(st, 0)) != NULL && (*sites_json = strdup((const char *)t)) == NULL) {
        db_stmt_done(st);
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    }
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(db, "read peer sites", e);
}

int store_conflict_insert(struct db *db, const struct conflict_row *c, struct err *e)
{
    static const char sql[] =
        "INSERT INTO conflicts (id, tbl, row_id, field, value, hlc, origin, winner_value, winner_hlc, winner_origin,"
        " detected_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (tbl, row_id, field, hlc, origin) DO NOTHING";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, c->id);
    db_bind_text(st, 2, c->tbl);
    db_bind_text(st, 3, c->row_id);
    db_bind_text(st, 4, c->field);
    db_bind_text(st, 5, c->value);
    sqlite3_bind_int64(st, 6, c->hlc);
    db_bind_text(st, 7, c->origin);
    db_bind_text(st, 8, c->winner_value);
    sqlite3_bind_int64(st, 9, c->winner_hlc);
    db_bind_text(st, 10, c->winner_origin);
    sqlite3_bind_int64(st, 11, c->detected_at);
    return db_step_done(db, st, "insert conflict", e);
}

#define CONFLICT_COLUMNS "id, tbl, row_id, field, value, hlc, origin, winner_value, winner_hlc, winner_origin," \
                         " detected_at, resolved_at, resolution"

static int conflict_rows(struct db *db, sqlite3_stmt *st, store_conflict_cb cb, void *ctx, struct err *e)
{
    struct conflict_row c;
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        db_column_copy(st, 0, c.id, sizeof(c.id));
        c.tbl = (const char *)sqlite3_column_text(st, 1);
        c.row_id = (const char *)sqlite3_column_text(st, 2);
        c.field = (const char *)sqlite3_column_text(st, 3);
        c.value = (const char *)sqlite3_column_text(st, 4);
        c.hlc = sqlite3_column_int64(st, 5);
        c.origin = (const char *)sqlite3_column_text(st, 6);
        c.winner_value = (const char *)sqlite3_column_text(st, 7);
        c.winner_hlc = sqlite3_column_int64(st, 8);
        c.winner_origin = (const char *)sqlite3_column_text(st, 9);
        c.detected_at = sqlite3_column_int64(st, 10);
        c.resolved_at = sqlite3_column_int64(st, 11);
        c.resolution = (const char *)sqlite3_column_text(st, 12);
        if (cb(&c, ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "read conflicts", e);
}

int store_conflicts_open(struct db *db, const char *after, int64_t limit, store_conflict_cb cb, void *ctx,
                         struct err *e)
{
    static const char sql[] = "SELECT " CONFLICT_COLUMNS " FROM conflicts WHERE resolved_at IS NULL AND id > $1"
                              " ORDER BY id LIMIT $2";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, after ? after : "");
    sqlite3_bind_int64(st, 2, limit);
    return conflict_rows(db, st, cb, ctx, e);
}

int store_conflict_get(struct db *db, const char *id, store_conflict_cb cb, void *ctx, struct err *e)
{
    static const char sql[] = "SELECT " CONFLICT_COLUMNS " FROM conflicts WHERE id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    return conflict_rows(db, st, cb, ctx, e);
}

int store_conflicts_resolve_field(struct db *db, const char *tbl, const char *row_id, const char *field, int64_t at,
                                  const char *resolution, struct err *e)
{
    static const char sql[] = "UPDATE conflicts SET resolved_at = $4, resolution = $5"
                              " WHERE row_id = $2 AND field = $3 AND tbl = $1 AND resolved_at IS NULL";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, tbl);
    db_bind_text(st, 2, row_id);
    db_bind_text(st, 3, field);
    sqlite3_bind_int64(st, 4, at);
    db_bind_text(st, 5, resolution);
    return db_step_done(db, st, "resolve conflicts", e);
}

static int count_query(struct db *db, const char *sql, int64_t *n, struct err *e)
{
    sqlite3_stmt *st = db_stmt(db, sql, e);

    *n = 0;
    return st ? db_step_int64(db, st, n, "count", e) : -1;
}

int store_conflicts_count_open(struct db *db, int64_t *n, struct err *e)
{
    static const char sql[] = "SELECT count(*) FROM conflicts WHERE resolved_at IS NULL";

    return count_query(db, sql, n, e);
}

int store_quarantine_insert(struct db *db, const char *origin_node, int64_t seq, const char *tbl, const char *row_id,
                            int64_t hlc, const char *fields_json, const char *base_json, const char *from_node,
                            const char *reason, int64_t at, struct err *e)
{
    static const char sql[] =
        "INSERT INTO quarantine (origin, seq, tbl, row_id, hlc, fields, base, received_at, received_from, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (origin, seq) DO NOTHING";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, origin_node);
    sqlite3_bind_int64(st, 2, seq);
    db_bind_text(st, 3, tbl);
    db_bind_text(st, 4, row_id);
    sqlite3_bind_int64(st, 5, hlc);
    db_bind_text(st, 6, fields_json);
    db_bind_text(st, 7, base_json);
    sqlite3_bind_int64(st, 8, at);
    db_bind_text(st, 9, from_node);
    db_bind_text(st, 10, reason);
    return db_step_done(db, st, "quarantine change", e);
}

int store_quarantine_count(struct db *db, int64_t *n, struct err *e)
{
    static const char sql[] = "SELECT count(*) FROM quarantine";

    return count_query(db, sql, n, e);
}

int store_peers_status(struct db *db, store_peer_status_cb cb, void *ctx, struct err *e)
{
    static const char sql[] = "SELECT id, name, url, last_attempt_at, last_success_at, last_error FROM peers"
                              " ORDER BY name";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
               (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4),
               (const char *)sqlite3_column_text(st, 5), ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "read peers", e);
}

int store_sync_cache_kib(struct db *db, int kib, int *was_kib, struct err *e)
{
    static const char get[] = "PRAGMA cache_size";
    sqlite3_stmt *st;
    char sql[64];
    int64_t size;

    if (was_kib) {
        /* the pragma gives pages when positive, -KiB when negative */
        if ((st = db_stmt(db, get, e)) == NULL || db_step_int64(db, st, &size, "read the cache size", e) < 0)
            return -1;
        *was_kib = size < 0 ? (int)-size : (int)(size * 4);
    }
    snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%d", kib);
    if (sqlite3_exec(db->conn, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(db, "set the cache size", e);
    return 0;
}
