/* test_auth.c — unit tests of sign-in, sessions and login throttling (services/auth.c): right and wrong
 * passwords, unknown users indistinguishable from wrong passwords, progressive throttling per account
 * and per address as docs/security.md states it, session lookup, expiry, logout, and sessions ending when
 * an account is disabled or its password changes. */
#include "testutil.h"

#include <sqlite3.h>

#include "core/log.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/auth.h"
#include "services/users.h"

#define NURSE_PASSWORD "nurse-password-1"

struct fixture {
    char *dir;
    struct db *db;
    char nurse_id[ID_LEN];
};

/* One node made once (node_init costs an Argon2id hash and several fsyncs); each test gets a copy of
 * its database file in a directory of its own, so tests never share throttle counters or sessions. */
static char *template_dir;

static int group_setup(void **state)
{
    struct db *db;

    (void)state;
    log_set_level(LOG_WARN);
    db = tu_node(&template_dir);
    db_close(db);   /* the last close checkpoints the WAL into sanad.db */
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_remove_dir(template_dir);
    return 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->db = tu_node_copy(template_dir, &f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    db_close(f->db);
    tu_remove_dir(f->dir);
    free(f);
    return 0;
}

/* Sign in from address; returns auth_login's result with *who, *out and *e filled. */
static int login_from(struct fixture *f, const char *address, const char *user, const char *pw,
                      struct caller *who, struct login_result *out, struct err *e)
{
    memset(who, 0, sizeof(*who));
    snprintf(who->address, sizeof(who->address), "%s", address);
    snprintf(who->request_id, sizeof(who->request_id), "req-test");
    err_clear(e);
    return auth_login(f->db, user, pw, who, out, e);
}

static int login(struct fixture *f, const char *user, const char *pw, struct caller *who,
                 struct login_result *out, struct err *e)
{
    return login_from(f, "192.0.2.10", user, pw, who, out, e);
}

static void expect_login_ok(struct fixture *f, const char *user, const char *pw, struct login_result *out)
{
    struct caller who;
    struct err e;

    if (login(f, user, pw, &who, out, &e) != 0)
        fail_msg("login of %s failed: %s (%s)", user, e.code, e.message);
}

static void expect_login_fails(struct fixture *f, const char *user, const char *pw, enum err_kind kind,
                               const char *code)
{
    struct login_result out;
    struct caller who;
    struct err e;

    if (login(f, user, pw, &who, &out, &e) != -1)
        fail_msg("login of '%s' succeeded; expected %s", user, code);
    if (e.kind != kind || strcmp(e.code, code) != 0)
        fail_msg("login of '%s' failed with %s (%s); expected %s", user, e.code, e.message, code);
    /* nothing usable is handed out on failure */
    assert_string_equal(out.token, "");
    assert_string_equal(out.csrf, "");
}

/* Create a clinician "nurse" with NURSE_PASSWORD. */
static void make_nurse(struct fixture *f)
{
    struct user_input in;
    struct caller local;
    struct err e;
    json_t *u;

    memset(&in, 0, sizeof(in));
    in.username = "nurse";
    in.role = "clinician";
    in.password = NURSE_PASSWORD;
    caller_local(&local, "test");
    err_clear(&e);
    u = users_create(f->db, &local, &in, &e);
    if (u == NULL)
        fail_msg("users_create: %s", e.message);
    snprintf(f->nurse_id, sizeof(f->nurse_id), "%s", json_string_value(json_object_get(u, "id")));
    json_decref(u);
}

static void update_nurse(struct fixture *f, const struct user_input *in)
{
    struct caller local;
    struct err e;
    json_t *u;

    caller_local(&local, "test");
    err_clear(&e);
    u = users_update(f->db, &local, f->nurse_id, in, &e);
    if (u == NULL)
        fail_msg("users_update: %s", e.message);
    json_decref(u);
}

static int session(struct fixture *f, const char *token, struct caller *who, char csrf[CRYPTO_TOKEN_LEN],
                   struct err *e)
{
    memset(who, 0, sizeof(*who));
    err_clear(e);
    return auth_session(f->db, token, who, csrf, e);
}

static void expect_no_session(struct fixture *f, const char *token)
{
    char csrf[CRYPTO_TOKEN_LEN];
    struct caller who;
    struct err e;

    if (session(f, token, &who, csrf, &e) != -1)
        fail_msg("token '%.50s' still resolves to %s", token ? token : "(null)", who.username);
    assert_int_equal(e.kind, ERR_UNAUTHENTICATED);
    assert_string_equal(e.code, "not_signed_in");
    assert_false(who.authenticated);
}

/* Run SQL on the node's file with a connection of our own. */
static void raw_exec(const char *dir, const char *sql)
{
    char path[512];
    sqlite3 *conn;
    char *msg = NULL;

    snprintf(path, sizeof(path), "%s/%s", dir, DB_FILE);
    assert_int_equal(sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(conn, 5000);
    if (sqlite3_exec(conn, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("'%s' failed: %s", sql, msg ? msg : "?");
    sqlite3_close(conn);
}

static int64_t raw_int(const char *dir, const char *sql)
{
    char path[512];
    sqlite3 *conn;
    sqlite3_stmt *st;
    int64_t v = -1;

    snprintf(path, sizeof(path), "%s/%s", dir, DB_FILE);
    assert_int_equal(sqlite3_open_v2(path, &conn, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(conn, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(conn);
    return v;
}

/* The last audit row. */
static int keep_last(const struct audit_row *r, void *ctx)
{
    *(struct audit_row *)ctx = *r;
    return 0;
}

static void last_audit(struct fixture *f, struct audit_row *r)
{
    struct err e;

    memset(r, 0, sizeof(*r));
    assert_int_equal(store_audit_scan(f->db, 0, 0, keep_last, r, &e), 0);
}

static void test_login_ok(void **state)
{
    struct fixture *f = *state;
    struct login_result out;
    struct caller who;
    struct audit_row a;
    struct err e;
    char hash[CRYPTO_HASH_HEX_LEN], sql[256];
    int64_t before = now_ms();

    assert_int_equal(login(f, "admin", TU_ADMIN_PASSWORD, &who, &out, &e), 0);
    assert_int_equal(strlen(out.token), CRYPTO_TOKEN_LEN - 1);
    assert_int_equal(strlen(out.csrf), CRYPTO_TOKEN_LEN - 1);
    assert_string_not_equal(out.token, out.csrf);
    assert_true(out.expires_at >= before + SESSION_ABSOLUTE_MS);
    assert_true(out.expires_at <= now_ms() + SESSION_ABSOLUTE_MS);
    assert_true(who.authenticated);
    assert_string_equal(who.username, "admin");
    assert_true(id_valid(who.user_id));
    assert_int_equal(who.role, ROLE_ADMIN);
    assert_int_equal(who.nsites, 1);
    assert_true(id_valid(who.sites[0]));
    assert_string_equal(who.address, "192.0.2.10");

    /* the server keeps only the token's hash */
    crypto_hash_hex(out.token, strlen(out.token), hash);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM sessions WHERE token_hash = '%s'", hash);
    assert_int_equal(raw_int(f->dir, sql), 1);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM sessions WHERE token_hash = '%s'", out.token);
    assert_int_equal(raw_int(f->dir, sql), 0);

    /* and the sign-in is audit-logged */
    last_audit(f, &a);
    assert_string_equal(a.action, "login");
    assert_string_equal(a.outcome, "ok");
    assert_string_equal(a.user_id, who.user_id);
    assert_string_equal(a.address, "192.0.2.10");
    assert_string_equal(a.request_id, "req-test");

    /* user names are not case-sensitive */
    expect_login_ok(f, "ADMIN", TU_ADMIN_PASSWORD, &out);
    expect_login_ok(f, "Admin", TU_ADMIN_PASSWORD, &out);
}

static void test_login_wrong_password_and_unknown_user_look_alike(void **state)
{
    struct fixture *f = *state;
    struct login_result out;
    struct caller who;
    struct audit_row a;
    struct err wrong, unknown;

    assert_int_equal(login(f, "admin", "not-the-password", &who, &out, &wrong), -1);
    assert_int_equal(wrong.kind, ERR_UNAUTHENTICATED);
    assert_string_equal(wrong.code, "invalid_credentials");
    assert_false(who.authenticated);
    last_audit(f, &a);
    assert_string_equal(a.action, "login");
    assert_string_equal(a.outcome, "failed");
    assert_string_equal(a.user_id, "");     /* nobody is authenticated by a failed login */

    assert_int_equal(login(f, "nobody-here", TU_ADMIN_PASSWORD, &who, &out, &unknown), -1);
    assert_int_equal(unknown.kind, wrong.kind);
    assert_string_equal(unknown.code, wrong.code);
    assert_string_equal(unknown.message, wrong.message);
    last_audit(f, &a);
    assert_string_equal(a.outcome, "failed");

    /* malformed names, empty passwords: the same answer */
    expect_login_fails(f, "", TU_ADMIN_PASSWORD, ERR_UNAUTHENTICATED, "invalid_credentials");
    expect_login_fails(f, "bad name!", TU_ADMIN_PASSWORD, ERR_UNAUTHENTICATED, "invalid_credentials");
    expect_login_fails(f, "admin", "", ERR_UNAUTHENTICATED, "invalid_credentials");
    expect_login_fails(f, "admin", TU_ADMIN_PASSWORD "x", ERR_UNAUTHENTICATED, "invalid_credentials");
}

/* Record `failures` recent failures for a throttle key straight in the table, as if they had happened
 * (each real one costs an Argon2id hash; test_throttle_locks_account makes them for real). */
static void seed_failures(struct fixture *f, const char *key, int failures)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "INSERT INTO login_throttle (key, failures, last_failure_at, locked_until) "
             "VALUES ('%s', %d, %lld, 0)", key, failures, (long long)now_ms());
    raw_exec(f->dir, sql);
}

/* docs/security.md, "Login throttling": per account the first 4 failures cost nothing ... */
static void test_throttle_five_failures_are_free(void **state)
{
    struct fixture *f = *state;
    struct login_result out;

    seed_failures(f, "u:admin", THROTTLE_ACCOUNT_FREE - 1);
    expect_login_fails(f, "admin", "wrong-password", ERR_UNAUTHENTICATED, "invalid_credentials");
    assert_int_equal(raw_int(f->dir, "SELECT failures FROM login_throttle WHERE key = 'u:admin'"),
                     THROTTLE_ACCOUNT_FREE);
    expect_login_ok(f, "admin", TU_ADMIN_PASSWORD, &out);
}

/* ... the 5th locks the account for 30 s and each further failure doubles the lock; while locked every
 * attempt, even with the right password, gets too_many_attempts with a retry time, from any address,
 * without counting as a failure, and is audited as "throttled". */
static void test_throttle_locks_account(void **state)
{
    struct fixture *f = *state;
    struct login_result out;
    struct caller who;
    struct audit_row a;
    struct err e;
    int i;

    for (i = 0; i < THROTTLE_ACCOUNT_FREE + 1; i++)
        expect_login_fails(f, "admin", "wrong-password", ERR_UNAUTHENTICATED, "invalid_credentials");
    assert_int_equal(login(f, "admin", TU_ADMIN_PASSWORD, &who, &out, &e), -1);
    if (e.kind != ERR_THROTTLED)
        fail_msg("after %d failures the right password got %s, not too_many_attempts",
                 THROTTLE_ACCOUNT_FREE + 1, e.code);
    assert_string_equal(e.code, "too_many_attempts");
    assert_true(e.retry_after > 0 && e.retry_after <= 30);
    assert_string_equal(out.token, "");
    last_audit(f, &a);
    assert_string_equal(a.action, "login");
    assert_string_equal(a.outcome, "throttled");
    /* a locked attempt is not a failure: the count stays at 5 */
    assert_int_equal(raw_int(f->dir, "SELECT failures FROM login_throttle WHERE key = 'u:admin'"),
                     THROTTLE_ACCOUNT_FREE + 1);
    /* the lock is on the account, not the address */
    assert_int_equal(login_from(f, "203.0.113.99", "admin", TU_ADMIN_PASSWORD, &who, &out, &e), -1);
    assert_int_equal(e.kind, ERR_THROTTLED);
    /* ... and only on that account: another user at the same address signs in */
    make_nurse(f);
    expect_login_ok(f, "nurse", NURSE_PASSWORD, &out);

    /* when the lock has passed (moved into the past here) a 6th failure locks for 60 s */
    raw_exec(f->dir, "UPDATE login_throttle SET locked_until = 0 WHERE key = 'u:admin'");
    expect_login_fails(f, "admin", "wrong-password", ERR_UNAUTHENTICATED, "invalid_credentials");
    assert_int_equal(login(f, "admin", TU_ADMIN_PASSWORD, &who, &out, &e), -1);
    assert_int_equal(e.kind, ERR_THROTTLED);
    assert_true(e.retry_after > 30 && e.retry_after <= 60);

    /* after that lock the right password works and the account's count is cleared */
    raw_exec(f->dir, "UPDATE login_throttle SET locked_until = 0");
    expect_login_ok(f, "admin", TU_ADMIN_PASSWORD, &out);
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM login_throttle WHERE key = 'u:admin'"), 0);
}

/* "A successful sign-in clears the account's counter (not the address's)." */
static void test_success_resets_failures(void **state)
{
    struct fixture *f = *state;
    struct login_result out;

    seed_failures(f, "u:admin", THROTTLE_ACCOUNT_FREE);
    seed_failures(f, "a:192.0.2.10", 3);
    expect_login_ok(f, "admin", TU_ADMIN_PASSWORD, &out);
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM login_throttle WHERE key = 'u:admin'"), 0);
    assert_int_equal(raw_int(f->dir, "SELECT failures FROM login_throttle WHERE key = 'a:192.0.2.10'"), 3);
    /* so the next failure is the first again, and does not lock */
    expect_login_fails(f, "admin", "wrong-password", ERR_UNAUTHENTICATED, "invalid_credentials");
    assert_int_equal(raw_int(f->dir, "SELECT failures FROM login_throttle WHERE key = 'u:admin'"), 1);
    assert_int_equal(raw_int(f->dir, "SELECT locked_until FROM login_throttle WHERE key = 'u:admin'") <= now_ms(),
                     1);
}

/* Per address the same, the 20th failure locking, for every user name tried from it. Nineteen earlier
 * failures are seeded; the 20th is a real sign-in, so the count must be kept under the address's key for
 * the lock to follow. */
static void test_throttle_per_address(void **state)
{
    struct fixture *f = *state;
    struct login_result out;
    struct caller who;
    struct err e;

    seed_failures(f, "a:198.51.100.66", THROTTLE_ADDRESS_FREE);
    /* 19 failures are free: the 20th attempt is still checked (and fails) */
    assert_int_equal(login_from(f, "198.51.100.66", "guess21", "whatever-password", &who, &out, &e), -1);
    assert_string_equal(e.code, "invalid_credentials");
    assert_int_equal(raw_int(f->dir, "SELECT failures FROM login_throttle WHERE key = 'a:198.51.100.66'"),
                     THROTTLE_ADDRESS_FREE + 1);
    /* unknown user names are not counted per account */
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM login_throttle WHERE key LIKE 'u:%'"), 0);

    /* that 20th failure locked the address, for any user name */
    assert_int_equal(login_from(f, "198.51.100.66", "admin", TU_ADMIN_PASSWORD, &who, &out, &e), -1);
    if (e.kind != ERR_THROTTLED)
        fail_msg("after %d failures from one address the next attempt got %s, not too_many_attempts",
                 THROTTLE_ADDRESS_FREE + 1, e.code);
    assert_true(e.retry_after > 0 && e.retry_after <= 30);
    /* another address is not affected */
    assert_int_equal(login_from(f, "198.51.100.67", "admin", TU_ADMIN_PASSWORD, &who, &out, &e), 0);
    /* and a success does not clear the address's count */
    assert_int_equal(login_from(f, "198.51.100.66", "admin", TU_ADMIN_PASSWORD, &who, &out, &e), -1);
    assert_int_equal(e.kind, ERR_THROTTLED);
}

/* Failures older than the 15-minute window are forgotten. */
static void test_throttle_window(void **state)
{
    struct fixture *f = *state;
    struct login_result out;
    char sql[256];

    snprintf(sql, sizeof(sql), "INSERT INTO login_throttle (key, failures, last_failure_at, locked_until) "
             "VALUES ('u:admin', 50, %lld, 0)", (long long)(now_ms() - THROTTLE_WINDOW_MS - 1000));
    raw_exec(f->dir, sql);
    expect_login_fails(f, "admin", "wrong-password", ERR_UNAUTHENTICATED, "invalid_credentials");
    assert_int_equal(raw_int(f->dir, "SELECT failures FROM login_throttle WHERE key = 'u:admin'"), 1);
    expect_login_ok(f, "admin", TU_ADMIN_PASSWORD, &out);
}

static void test_session_valid(void **state)
{
    struct fixture *f = *state;
    struct login_result out;
    struct caller who;
    char csrf[CRYPTO_TOKEN_LEN];
    struct err e;

    expect_login_ok(f, "admin", TU_ADMIN_PASSWORD, &out);
    assert_int_equal(session(f, out.token, &who, csrf, &e), 0);
    assert_true(who.authenticated);
    assert_string_equal(who.username, "admin");
    assert_int_equal(who.role, ROLE_ADMIN);
    assert_int_equal(who.nsites, 1);
    assert_string_equal(csrf, out.csrf);
    /* a token is not a CSRF token and vice versa */
    expect_no_session(f, out.csrf);
}

static void test_session_unknown_and_garbage(void **state)
{
    struct fixture *f = *state;
    char token[CRYPTO_TOKEN_LEN], longer[200];

    crypto_random_token(token);
    expect_no_session(f, token);
    expect_no_session(f, NULL);
    expect_no_session(f, "");
    expect_no_session(f, "short");
    expect_no_session(f, "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");   /* 43 characters */
    expect_no_session(f, "' OR 1=1 --'''''''''''''''''''''''''''''''''");
    memset(longer, 'A', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    expect_no_session(f, longer);
}

static void test_session_token_prefix_does_not_match(void **state)
{
    struct fixture *f = *state;
    struct login_result out;
    char almost[CRYPTO_TOKEN_LEN];

    expect_login_ok(f, "admin", TU_ADMIN_PASSWORD, &out);
    memcpy(almost, out.token, sizeof(almost));
    almost[CRYPTO_TOKEN_LEN - 2] = almost[CRYPTO_TOKEN_LEN - 2] == 'A' ? 'B' : 'A';
    expect_no_session(f, almost);
}

static void test_session_expiry(void **state)
{
    struct fixture *f = *state;
    struct login_result idle, old, fresh;
    struct caller who;
    char csrf[CRYPTO_TOKEN_LEN], hash[CRYPTO_HASH_HEX_LEN], sql[512];
    int64_t seen;
    struct err e;

    expect_login_ok(f, "admin", TU_ADMIN_PASSWORD, &idle);
    expect_login_ok(f, "admin", TU_ADMIN_PASSWORD, &old);
    expect_login_ok(f, "admin", TU_ADMIN_PASSWORD, &fresh);

    /* idle for longer than SESSION_IDLE_MS */
    crypto_hash_hex(idle.token, strlen(idle.token), hash);
    snprintf(sql, sizeof(sql), "UPDATE sessions SET last_seen_at = last_seen_at - %lld WHERE token_hash = '%s'",
             (long long)SESSION_IDLE_MS + 1000, hash);
    raw_exec(f->dir, sql);
    expect_no_session(f, idle.token);

    /* past the absolute end, even if used a moment ago */
    crypto_hash_hex(old.token, strlen(old.token), hash);
    snprintf(sql, sizeof(sql), "UPDATE sessions SET expires_at = %lld WHERE token_hash = '%s'",
             (long long)now_ms() - 1, hash);
    raw_exec(f->dir, sql);
    expect_no_session(f, old.token);

    /* a session used after a few minutes has its idle timer refreshed */
    crypto_hash_hex(fresh.token, strlen(fresh.token), hash);
    snprintf(sql, sizeof(sql), "UPDATE sessions SET last_seen_at = last_seen_at - 300000 WHERE token_hash = '%s'",
             hash);
    raw_exec(f->dir, sql);
    assert_int_equal(session(f, fresh.token, &who, csrf, &e), 0);
    snprintf(sql, sizeof(sql), "SELECT last_seen_at FROM sessions WHERE token_hash = '%s'", hash);
    seen = raw_int(f->dir, sql);
    assert_true(seen >= now_ms() - 60000);
}

static void test_logout(void **state)
{
    struct fixture *f = *state;
    struct login_result a, b;
    struct caller who;
    struct audit_row row;
    char csrf[CRYPTO_TOKEN_LEN];
    struct err e;

    expect_login_ok(f, "admin", TU_ADMIN_PASSWORD, &a);
    expect_login_ok(f, "admin", TU_ADMIN_PASSWORD, &b);
    assert_int_equal(session(f, a.token, &who, csrf, &e), 0);
    err_clear(&e);
    assert_int_equal(auth_logout(f->db, a.token, &who, &e), 0);
    expect_no_session(f, a.token);
    last_audit(f, &row);
    assert_string_equal(row.action, "logout");
    assert_string_equal(row.user_id, who.user_id);
    /* only that session ended */
    assert_int_equal(session(f, b.token, &who, csrf, &e), 0);
    /* logging out twice is harmless */
    assert_int_equal(auth_logout(f->db, a.token, &who, &e), 0);
}

static void test_disabled_user(void **state)
{
    struct fixture *f = *state;
    struct login_result out;
    struct user_input in;
    struct caller who;
    char csrf[CRYPTO_TOKEN_LEN];
    struct err e;

    make_nurse(f);
    expect_login_ok(f, "nurse", NURSE_PASSWORD, &out);
    assert_int_equal(session(f, out.token, &who, csrf, &e), 0);
    assert_int_equal(who.role, ROLE_CLINICIAN);

    memset(&in, 0, sizeof(in));
    in.has_disabled = 1;
    in.disabled = 1;
    update_nurse(f, &in);
    expect_no_session(f, out.token);
    /* the right password no longer signs in, and the answer gives nothing away */
    expect_login_fails(f, "nurse", NURSE_PASSWORD, ERR_UNAUTHENTICATED, "invalid_credentials");

    in.disabled = 0;
    update_nurse(f, &in);
    expect_login_ok(f, "nurse", NURSE_PASSWORD, &out);
    assert_int_equal(session(f, out.token, &who, csrf, &e), 0);
}

/* Even if a session row survived (e.g. restored from a backup), a disabled user's token must not work. */
static void test_disabled_user_session_row_left_behind(void **state)
{
    struct fixture *f = *state;
    struct login_result out;
    char sql[256];

    make_nurse(f);
    expect_login_ok(f, "nurse", NURSE_PASSWORD, &out);
    snprintf(sql, sizeof(sql), "UPDATE users SET disabled = 1 WHERE id = '%s'", f->nurse_id);
    raw_exec(f->dir, sql);
    expect_no_session(f, out.token);
}

static void test_password_change_revokes_sessions(void **state)
{
    struct fixture *f = *state;
    struct login_result s1, s2;
    struct user_input in;

    make_nurse(f);
    expect_login_ok(f, "nurse", NURSE_PASSWORD, &s1);
    expect_login_ok(f, "nurse", NURSE_PASSWORD, &s2);
    memset(&in, 0, sizeof(in));
    in.password = "a-brand-new-password";
    update_nurse(f, &in);
    expect_no_session(f, s1.token);
    expect_no_session(f, s2.token);
    expect_login_fails(f, "nurse", NURSE_PASSWORD, ERR_UNAUTHENTICATED, "invalid_credentials");
    expect_login_ok(f, "nurse", "a-brand-new-password", &s1);

    /* a change of name alone ends nobody's session */
    memset(&in, 0, sizeof(in));
    in.full_name = "Nurse Amal";
    update_nurse(f, &in);
    {
        struct caller who;
        char csrf[CRYPTO_TOKEN_LEN];
        struct err e;

        assert_int_equal(session(f, s1.token, &who, csrf, &e), 0);
    }
}

static void test_password_rules(void **state)
{
    struct err e;

    (void)state;
    err_clear(&e);
    assert_int_equal(auth_password_acceptable("amal", "0123456789", &e), 0);
    assert_int_equal(auth_password_acceptable("amal", "012345678", &e), -1);
    assert_int_equal(e.kind, ERR_INVALID);
    assert_string_equal(e.code, "weak_password");
    assert_int_equal(auth_password_acceptable("longusername", "LongUserName", &e), -1);
    assert_string_equal(e.code, "weak_password");
    assert_int_equal(auth_password_acceptable(NULL, "longusername", &e), 0);
    /* the minimum counts characters, not bytes: 5 Arabic letters are 10 bytes but too short, 10 are fine */
    assert_int_equal(auth_password_acceptable("amal", "\xd8\xa3\xd8\xa8\xd8\xaa\xd8\xab\xd8\xac", &e), -1);
    assert_string_equal(e.code, "weak_password");
    assert_int_equal(auth_password_acceptable("amal", "\xd8\xa3\xd8\xa8\xd8\xaa\xd8\xab\xd8\xac"
                                                      "\xd8\xad\xd8\xae\xd8\xaf\xd8\xb0\xd8\xb1", &e), 0);
    {
        char pw[PASSWORD_MAX + 2];

        memset(pw, 'p', sizeof(pw));
        pw[PASSWORD_MAX] = '\0';
        assert_int_equal(auth_password_acceptable("amal", pw, &e), 0);
        pw[PASSWORD_MAX] = 'p';
        pw[PASSWORD_MAX + 1] = '\0';
        assert_int_equal(auth_password_acceptable("amal", pw, &e), -1);
        assert_string_equal(e.code, "weak_password");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_login_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_wrong_password_and_unknown_user_look_alike, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_five_failures_are_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_locks_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_resets_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_per_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_unknown_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_token_prefix_does_not_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_user_session_row_left_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_change_revokes_sessions, setup, teardown),
        cmocka_unit_test(test_password_rules),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
