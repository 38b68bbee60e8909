/* audit.c — SQL for the audit chain rows. */
#include "store/audit.h"
#include "store/db_internal.h"

int store_audit_last(struct db *db, int64_t *seq, char hash[CRYPTO_HASH_HEX_LEN], struct err *e)
{
    static const char sql[] = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    *seq = 0;
    hash[0] = '\0';
    if (st == NULL)
        return -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        db_column_copy(st, 1, hash, CRYPTO_HASH_HEX_LEN);
    }
    db_stmt_done(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(db, "read audit head", e);
}

int store_audit_insert(struct db *db, const struct audit_row *r, struct err *e)
{
    static const char sql[] =
        "INSERT INTO audit_log (seq, at, user_id, username, action, entity_type, entity_id, site_id, address, "
        "request_id, outcome, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, r->seq);
    sqlite3_bind_int64(st, 2, r->at);
    db_bind_text(st, 3, r->user_id[0] ? r->user_id : NULL);
    db_bind_text(st, 4, r->username[0] ? r->username : NULL);
    db_bind_text(st, 5, r->action);
    db_bind_text(st, 6, r->entity_type[0] ? r->entity_type : NULL);
    db_bind_text(st, 7, r->entity_id[0] ? r->entity_id : NULL);
    db_bind_text(st, 8, r->site_id[0] ? r->site_id : NULL);
    db_bind_text(st, 9, r->address[0] ? r->address : NULL);
    db_bind_text(st, 10, r->request_id[0] ? r->request_id : NULL);
    db_bind_text(st, 11, r->outcome);
    db_bind_text(st, 12, r->prev_hash);
    db_bind_text(st, 13, r->hash);
    return db_step_done(db, st, "append audit", e);
}

int store_audit_scan(struct db *db, int64_t after, int64_t limit, store_audit_cb cb, void *ctx, struct err *e)
{
    static const char sql[] =
        "SELECT seq, at, user_id, username, action, entity_type, entity_id, site_id, address, request_id, "
        "outcome, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    struct audit_row r;
    int rc;

    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        r.seq = sqlite3_column_int64(st, 0);
        r.at = sqlite3_column_int64(st, 1);
        db_column_copy(st, 2, r.user_id, sizeof(r.user_id));
        db_column_copy(st, 3, r.username, sizeof(r.username));
        db_column_copy(st, 4, r.action, sizeof(r.action));
        db_column_copy(st, 5, r.entity_type, sizeof(r.entity_type));
        db_column_copy(st, 6, r.entity_id, sizeof(r.entity_id));
        db_column_copy(st, 7, r.site_id, sizeof(r.site_id));
        db_column_copy(st, 8, r.address, sizeof(r.address));
        db_column_copy(st, 9, r.request_id, sizeof(r.request_id));
        db_column_copy(st, 10, r.outcome, sizeof(r.outcome));
        db_column_copy(st, 11, r.prev_hash, sizeof(r.prev_hash));
        db_column_copy(st, 12, r.hash, sizeof(r.hash));
        if (cb(&r, ctx) != 0) {
            db_stmt_done(st);
            return 1;   /* the callback stopped the scan */
        }
    }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "scan audit", e);
}
