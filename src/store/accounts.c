/* accounts.c — SQL for users, user sites, sessions and login throttling. */
#include <string.h>

#include "store/accounts.h"
#include "store/db_internal.h"

#define USER_COLUMNS "id, username, full_name, role, password_hash, disabled, created_at, updated_at, " \
                     "password_changed_at"

static void user_from_row(sqlite3_stmt *st, int c, struct user_row *u)
{
    db_column_copy(st, c + 0, u->id, sizeof(u->id));
    db_column_copy(st, c + 1, u->username, sizeof(u->username));
    db_column_copy(st, c + 2, u->full_name, sizeof(u->full_name));
    db_column_copy(st, c + 3, u->role, sizeof(u->role));
    db_column_copy(st, c + 4, u->password_hash, sizeof(u->password_hash));
    u->disabled = sqlite3_column_int(st, c + 5);
    u->created_at = sqlite3_column_int64(st, c + 6);
    u->updated_at = sqlite3_column_int64(st, c + 7);
    u->password_changed_at = sqlite3_column_int64(st, c + 8);
}

int store_user_insert(struct db *db, const struct user_row *u, struct err *e)
{
    static const char sql[] = "INSERT INTO users (" USER_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, u->id);
    db_bind_text(st, 2, u->username);
    db_bind_text(st, 3, u->full_name);
    db_bind_text(st, 4, u->role);
    db_bind_text(st, 5, u->password_hash);
    sqlite3_bind_int(st, 6, u->disabled);
    sqlite3_bind_int64(st, 7, u->created_at);
    sqlite3_bind_int64(st, 8, u->updated_at);
    sqlite3_bind_int64(st, 9, u->password_changed_at);
    return db_step_done(db, st, "insert user", e);
}

int store_user_update(struct db *db, const struct user_row *u, struct err *e)
{
    static const char sql[] = "UPDATE users SET full_name = $2, role = $3, password_hash = $4, disabled = $5, "
                              "updated_at = $6, password_changed_at = $7 WHERE id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, u->id);
    db_bind_text(st, 2, u->full_name);
    db_bind_text(st, 3, u->role);
    db_bind_text(st, 4, u->password_hash);
    sqlite3_bind_int(st, 5, u->disabled);
    sqlite3_bind_int64(st, 6, u->updated_at);
    sqlite3_bind_int64(st, 7, u->password_changed_at);
    return db_step_done(db, st, "update user", e);
}

static int user_get_by(struct db *db, const char *sql, const char *key, struct user_row *out, struct err *e)
{
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        user_from_row(st, 0, out);
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return db_fail(db, "get user", e);
}

int store_user_get(struct db *db, const char *id, struct user_row *out, struct err *e)
{
    static const char sql[] = "SELECT " USER_COLUMNS " FROM users WHERE id = $1";

    return user_get_by(db, sql, id, out, e);
}

int store_user_get_by_username(struct db *db, const char *username, struct user_row *out, struct err *e)
{
    static const char sql[] = "SELECT " USER_COLUMNS " FROM users WHERE username = $1";

    return user_get_by(db, sql, username, out, e);
}

int store_user_list(struct db *db, store_user_cb cb, void *ctx, struct err *e)
{
    static const char sql[] = "SELECT " USER_COLUMNS " FROM users ORDER BY username";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    struct user_row u;
    int rc;

    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        user_from_row(st, 0, &u);
        if (cb(&u, ctx) < 0) {
            db_stmt_done(st);
            return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory while listing users");
        }
    }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "list users", e);
}

int store_user_count_active_admins(struct db *db, int64_t *n, struct err *e)
{
    static const char sql[] = "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    db_stmt_done(st);
    return rc == SQLITE_ROW ? 0 : db_fail(db, "count admins", e);
}

int store_user_sites_get(struct db *db, const char *user_id, char sites[][ID_LEN], int max, int *n,
                         struct err *e)
{
    static const char sql[] = "SELECT site_id FROM user_sites WHERE user_id = $1 ORDER BY site_id";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    *n = 0;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, user_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (*n < max)
            db_column_copy(st, 0, sites[(*n)++], ID_LEN);
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "get user sites", e);
}

int store_user_sites_set(struct db *db, const char *user_id, char sites[][ID_LEN], int n, struct err *e)
{
    static const char del[] = "DELETE FROM user_sites WHERE user_id = $1";
    static const char ins[] = "INSERT INTO user_sites (user_id, site_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
    sqlite3_stmt *st = db_stmt(db, del, e);
    int i, rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, user_id);
    if (db_step_done(db, st, "clear user sites", e) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        st = db_stmt(db, ins, e);
        if (st == NULL)
            return -1;
        db_bind_text(st, 1, user_id);
        db_bind_text(st, 2, sites[i]);
        rc = sqlite3_step(st);
        db_stmt_done(st);
        if (rc != SQLITE_DONE) {
            if ((rc & 0xff) == SQLITE_CONSTRAINT)
                return err_set(e, ERR_INVALID, "unknown_site", "site '%s' does not exist", sites[i]);
            return db_fail(db, "set user sites", e);
        }
    }
    return 0;
}

int store_session_insert(struct db *db, const struct session_row *s, const char *address, struct err *e)
{
    static const char sql[] = "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, "
                              "expires_at, address) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, s->token_hash);
    db_bind_text(st, 2, s->user_id);
    db_bind_text(st, 3, s->csrf_token);
    sqlite3_bind_int64(st, 4, s->created_at);
    sqlite3_bind_int64(st, 5, s->last_seen_at);
    sqlite3_bind_int64(st, 6, s->expires_at);
    db_bind_text(st, 7, address);
    return db_step_done(db, st, "insert session", e);
}

int store_session_get(struct db *db, const char *token_hash, struct session_row *s, struct user_row *u,
                      struct err *e)
{
    static const char sql[] =
        "SELECT s.token_hash, s.user_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, "
        "u.id, u.username, u.full_name, u.role, u.password_hash, u.disabled, u.created_at, u.updated_at, "
        "u.password_changed_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, token_hash);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        db_column_copy(st, 0, s->token_hash, sizeof(s->token_hash));
        db_column_copy(st, 1, s->user_id, sizeof(s->user_id));
        db_column_copy(st, 2, s->csrf_token, sizeof(s->csrf_token));
        s->created_at = sqlite3_column_int64(st, 3);
        s->last_seen_at = sqlite3_column_int64(st, 4);
        s->expires_at = sqlite3_column_int64(st, 5);
        user_from_row(st, 6, u);
    }
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(db, "get session", e);
}

static int exec_one_key(struct db *db, const char *sql, const char *key, const char *what, struct err *e)
{
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, key);
    return db_step_done(db, st, what, e);
}

int store_session_touch(struct db *db, const char *token_hash, int64_t at, struct err *e)
{
    static const char sql[] = "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, token_hash);
    sqlite3_bind_int64(st, 2, at);
    return db_step_done(db, st, "touch session", e);
}

int store_session_delete(struct db *db, const char *token_hash, struct err *e)
{
    static const char sql[] = "DELETE FROM sessions WHERE token_hash = $1";

    return exec_one_key(db, sql, token_hash, "delete session", e);
}

int store_sessions_delete_for_user(struct db *db, const char *user_id, struct err *e)
{
    static const char sql[] = "DELETE FROM sessions WHERE user_id = $1";

    return exec_one_key(db, sql, user_id, "delete user sessions", e);
}

int store_sessions_purge(struct db *db, int64_t now, int64_t idle_ms, struct err *e)
{
    static const char sql[] = "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, now - idle_ms);
    return db_step_done(db, st, "purge sessions", e);
}

int store_throttle_get(struct db *db, const char *key, int64_t *failures, int64_t *last_failure_at,
                       int64_t *locked_until, struct err *e)
{
    static const char sql[] = "SELECT failures, last_failure_at, locked_until FROM login_throttle WHERE key = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    *failures = *last_failure_at = *locked_until = 0;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *failures = sqlite3_column_int64(st, 0);
        *last_failure_at = sqlite3_column_int64(st, 1);
        *locked_until = sqlite3_column_int64(st, 2);
    }
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(db, "get throttle", e);
}

int store_throttle_put(struct db *db, const char *key, int64_t failures, int64_t last_failure_at,
                       int64_t locked_until, struct err *e)
{
    static const char sql[] =
        "INSERT INTO login_throttle (key, failures, last_failure_at, locked_until) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, "
        "last_failure_at = excluded.last_failure_at, locked_until = excluded.locked_until";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, key);
    sqlite3_bind_int64(st, 2, failures);
    sqlite3_bind_int64(st, 3, last_failure_at);
    sqlite3_bind_int64(st, 4, locked_until);
    return db_step_done(db, st, "put throttle", e);
}

int store_throttle_clear(struct db *db, const char *key, struct err *e)
{
    static const char sql[] = "DELETE FROM login_throttle WHERE key = $1";

    return exec_one_key(db, sql, key, "clear throttle", e);
}
