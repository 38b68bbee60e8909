/* peers.c — SQL for enrolled peers, enrolment invites and sync request nonces. */
#include <stdio.h>

#include "store/db_internal.h"
#include "store/peers.h"

int store_peer_insert(struct db *db, const struct peer_row *p, struct err *e)
{
    static const char sql[] =
        "INSERT INTO peers (id, name, public_key, url, sites, enrolled_at) VALUES ($1, $2, $3, $4, $5, $6)";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, p->id);
    db_bind_text(st, 2, p->name);
    db_bind_text(st, 3, p->public_key);
    db_bind_text(st, 4, p->url[0] ? p->url : NULL);
    db_bind_text(st, 5, p->sites[0] ? p->sites : NULL);
    sqlite3_bind_int64(st, 6, p->enrolled_at);
    rc = sqlite3_step(st);
    db_stmt_done(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return err_set(e, ERR_CONFLICT, "peer_exists",
                       "a peer with this node id or name is already enrolled; remove it first");
    return rc == SQLITE_DONE ? 0 : db_fail(db, "insert peer", e);
}

#define PEER_COLUMNS "id, name, public_key, url, sites, enrolled_at, last_attempt_at, last_success_at, last_error"

static void peer_from_row(sqlite3_stmt *st, struct peer_row *p)
{
    db_column_copy(st, 0, p->id, sizeof(p->id));
    db_column_copy(st, 1, p->name, sizeof(p->name));
    db_column_copy(st, 2, p->public_key, sizeof(p->public_key));
    db_column_copy(st, 3, p->url, sizeof(p->url));
    db_column_copy(st, 4, p->sites, sizeof(p->sites));
    p->enrolled_at = sqlite3_column_int64(st, 5);
    p->last_attempt_at = sqlite3_column_int64(st, 6);
    p->last_success_at = sqlite3_column_int64(st, 7);
    db_column_copy(st, 8, p->last_error, sizeof(p->last_error));
}

/* One peer by a key column (the statement binds it as $1). */
static int peer_get_one(struct db *db, const char *sql, const char *key, struct peer_row *out, struct err *e)
{
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        peer_from_row(st, out);
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(db, "get peer", e);
}

int store_peer_get(struct db *db, const char *id, struct peer_row *out, struct err *e)
{
    static const char sql[] = "SELECT " PEER_COLUMNS " FROM peers WHERE id = $1";

    return peer_get_one(db, sql, id, out, e);
}

int store_peer_get_by_name(struct db *db, const char *name, struct peer_row *out, struct err *e)
{
    static const char sql[] = "SELECT " PEER_COLUMNS " FROM peers WHERE name = $1";

    return peer_get_one(db, sql, name, out, e);
}

int store_peer_list(struct db *db, store_peer_cb cb, void *ctx, struct err *e)
{
    static const char sql[] = "SELECT " PEER_COLUMNS " FROM peers ORDER BY name";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    struct peer_row p;
    int rc;

    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        peer_from_row(st, &p);
        if (cb(&p, ctx) < 0) {
            db_stmt_done(st);
            return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory while listing peers");
        }
    }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "list peers", e);
}

int store_peer_delete_by_name(struct db *db, const char *name, struct err *e)
{
    static const char sql[] = "DELETE FROM peers WHERE name = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, name);
    if (db_step_done(db, st, "delete peer", e) < 0)
        return -1;
    return sqlite3_changes(db->conn) > 0;
}

int store_peer_record_attempt(struct db *db, const char *id, int64_t at, const char *error, struct err *e)
{
    static const char ok_sql[] =
        "UPDATE peers SET last_attempt_at = $2, last_success_at = $2, last_error = NULL WHERE id = $1";
    static const char fail_sql[] = "UPDATE peers SET last_attempt_at = $2, last_error = $3 WHERE id = $1";
    sqlite3_stmt *st = db_stmt(db, error ? fail_sql : ok_sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    if (error)
        db_bind_text(st, 3, error);
    return db_step_done(db, st, "record sync attempt", e);
}

int store_invite_insert(struct db *db, const char *code_hash, const char *name, const char *sites_json,
                        int64_t expires_at, struct err *e)
{
    static const char sql[] = "INSERT INTO peer_invites (code_hash, name, sites, expires_at) VALUES ($1, $2, $3, $4)";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, code_hash);
    db_bind_text(st, 2, name);
    db_bind_text(st, 3, sites_json);
    sqlite3_bind_int64(st, 4, expires_at);
    return db_step_done(db, st, "insert invite", e);
}

int store_invite_name_pending(struct db *db, const char *name, int64_t now, struct err *e)
{
    static const char sql[] = "SELECT 1 FROM peer_invites WHERE name = $1 AND expires_at > $2";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, now);
    rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(db, "find invite", e);
}

int store_invite_take(struct db *db, const char *code_hash, int64_t now, char name[PEER_NAME_MAX + 1],
                      char sites[PEER_SITES_JSON_MAX], struct err *e)
{
    static const char sweep_sql[] = "DELETE FROM peer_invites WHERE expires_at <= $1";
    static const char take_sql[] = "DELETE FROM peer_invites WHERE code_hash = $1 RETURNING name, sites, expires_at";
    sqlite3_stmt *st;
    int rc, found = 0;

    /* take first, then sweep: an expired code must still be used up, so a retry cannot find it either */
    if ((st = db_stmt(db, take_sql, e)) == NULL)
        return -1;
    db_bind_text(st, 1, code_hash);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        db_column_copy(st, 0, name, PEER_NAME_MAX + 1);
        db_column_copy(st, 1, sites, PEER_SITES_JSON_MAX);
        found = sqlite3_column_int64(st, 2) > now;
        rc = sqlite3_step(st);
    }
    db_stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, "take invite", e);
    if ((st = db_stmt(db, sweep_sql, e)) == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, now);
    if (db_step_done(db, st, "sweep invites", e) < 0)
        return -1;
    return found;
}

int store_nonce_insert(struct db *db, const char *nonce, int64_t expires_at, struct err *e)
{
    static const char sql[] = "INSERT INTO sync_nonces (nonce, expires_at) VALUES ($1, $2)";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, nonce);
    sqlite3_bind_int64(st, 2, expires_at);
    return db_step_done(db, st, "insert nonce", e);
}

int store_nonce_take(struct db *db, const char *nonce, int64_t now, struct err *e)
{
    static const char sql[] = "DELETE FROM sync_nonces WHERE nonce = $1 RETURNING expires_at";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc, found = 0;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, nonce);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        found = sqlite3_column_int64(st, 0) > now;
        rc = sqlite3_step(st);
    }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? found : db_fail(db, "take nonce", e);
}

int store_nonces_purge(struct db *db, int64_t now, int64_t *outstanding, struct err *e)
{
    static const char purge_sql[] = "DELETE FROM sync_nonces WHERE expires_at <= $1";
    static const char count_sql[] = "SELECT count(*) FROM sync_nonces";
    sqlite3_stmt *st;
    int rc;

    if ((st = db_stmt(db, purge_sql, e)) == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, now);
    if (db_step_done(db, st, "purge nonces", e) < 0)
        return -1;
    if ((st = db_stmt(db, count_sql, e)) == NULL)
        return -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *outstanding = sqlite3_column_int64(st, 0);
    db_stmt_done(st);
    return rc == SQLITE_ROW ? 0 : db_fail(db, "count nonces", e);
}
