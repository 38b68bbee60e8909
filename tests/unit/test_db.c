/* test_db.c — unit tests of the database interface (store/db.c): opening, migrations up to the latest
 * schema, refusing a newer schema, WAL mode, foreign keys and transactions. The test reads the file with
 * its own sqlite3 connection, as an outside tool would. */
#include "testutil.h"

#include <sys/stat.h>

#include <sqlite3.h>

#include "services/users.h"
#include "store/accounts.h"

/* DIR/sanad.db; caller frees. */
static char *db_path(const char *dir)
{
    char *p = malloc(strlen(dir) + sizeof(DB_FILE) + 2);

    assert_non_null(p);
    sprintf(p, "%s/%s", dir, DB_FILE);
    return p;
}

/* Run one SQL statement on a private connection to the node's file and return the first column of the
 * first row as text (caller frees), or NULL when there is no row. */
static char *raw_query(const char *dir, const char *sql)
{
    char *path = db_path(dir), *out = NULL;
    sqlite3 *conn;
    sqlite3_stmt *st;
    int rc;

    assert_int_equal(sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(conn, 5000);
    if (sqlite3_prepare_v2(conn, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("cannot prepare '%s': %s", sql, sqlite3_errmsg(conn));
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        fail_msg("'%s' failed: %s", sql, sqlite3_errmsg(conn));
    sqlite3_finalize(st);
    sqlite3_close(conn);
    free(path);
    return out;
}

static void test_open_missing_dir(void **state)
{
    struct db *db = (struct db *)0x1;
    struct err e;

    (void)state;
    err_clear(&e);
    assert_int_equal(db_open("/nonexistent/sanad-unit-test/dir", 0, &db, &e), -1);
    assert_null(db);
    assert_int_equal(e.kind, ERR_NOT_FOUND);
    assert_string_equal(e.code, "no_database");
    /* the message tells the operator what to do */
    assert_non_null(strstr(e.message, "sanad init"));
}

static void test_open_empty_dir_without_create(void **state)
{
    char *dir = tu_temp_path(), *path;
    struct db *db;
    struct err e;

    (void)state;
    assert_int_equal(mkdir(dir, 0700), 0);
    err_clear(&e);
    assert_int_equal(db_open(dir, 0, &db, &e), -1);
    assert_null(db);
    assert_int_equal(e.kind, ERR_NOT_FOUND);
    assert_string_equal(e.code, "no_database");
    /* and no file was created by the failed attempt */
    path = db_path(dir);
    assert_int_equal(access(path, F_OK), -1);
    free(path);

    /* with DB_CREATE it makes a database at the latest schema */
    assert_int_equal(db_open(dir, DB_CREATE, &db, &e), 0);
    assert_non_null(db);
    assert_int_equal(db_schema_version(db), db_schema_latest());
    db_close(db);
    tu_remove_dir(dir);
}

static void test_path_too_long(void **state)
{
    char dir[5000];
    struct db *db;
    struct err e;

    (void)state;
    memset(dir, 'a', sizeof(dir) - 1);
    dir[0] = '/';
    dir[sizeof(dir) - 1] = '\0';
    err_clear(&e);
    assert_int_equal(db_open(dir, DB_CREATE, &db, &e), -1);
    assert_null(db);
    assert_int_equal(e.kind, ERR_INVALID);
    assert_string_equal(e.code, "path_too_long");
}

static void test_schema_latest_after_init(void **state)
{
    char *dir, *v;
    struct db *db = tu_node(&dir);
    struct err e;

    (void)state;
    assert_true(db_schema_latest() >= 1);
    assert_int_equal(db_schema_version(db), db_schema_latest());
    v = raw_query(dir, "PRAGMA user_version");
    assert_int_equal(atoi(v), db_schema_latest());
    free(v);
    db_close(db);

    /* opening again applies nothing and keeps the version */
    err_clear(&e);
    assert_int_equal(db_open(dir, 0, &db, &e), 0);
    assert_int_equal(db_schema_version(db), db_schema_latest());
    db_close(db);
    tu_remove_dir(dir);
}

static void test_schema_too_new_refused(void **state)
{
    char *dir, sql[64], *v;
    struct db *db = tu_node(&dir);
    struct err e;

    (void)state;
    db_close(db);
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", db_schema_latest() + 1);
    free(raw_query(dir, sql));

    err_clear(&e);
    db = (struct db *)0x1;
    assert_int_equal(db_open(dir, 0, &db, &e), -1);
    assert_null(db);
    assert_int_equal(e.kind, ERR_CONFLICT);
    assert_string_equal(e.code, "schema_too_new");
    assert_non_null(strstr(e.message, "upgrade"));
    /* refusing must not touch the file: the version is still the newer one */
    v = raw_query(dir, "PRAGMA user_version");
    assert_int_equal(atoi(v), db_schema_latest() + 1);
    free(v);
    tu_remove_dir(dir);
}

static void test_wal_mode(void **state)
{
    char *dir, *mode, *path, *wal;
    struct db *db = tu_node(&dir);

    (void)state;
    /* journal_mode=WAL is persistent, so a separate connection sees it */
    mode = raw_query(dir, "PRAGMA journal_mode");
    assert_non_null(mode);
    assert_string_equal(mode, "wal");
    free(mode);
    /* while the node holds the database open, the -wal file exists */
    path = db_path(dir);
    wal = malloc(strlen(path) + 5);
    sprintf(wal, "%s-wal", path);
    assert_int_equal(access(wal, F_OK), 0);
    free(wal);
    free(path);
    db_close(db);
    tu_remove_dir(dir);
}

/* PRAGMA foreign_keys is per connection, so it is checked through the node's own connection: linking a
 * user to a site that does not exist must be refused by the REFERENCES constraint. */
static void test_foreign_keys_on(void **state)
{
    char *dir, admin_id[ID_LEN], sites[1][ID_LEN] = { "00000000-0000-7000-8000-000000000000" };
    struct db *db = tu_node(&dir);
    struct err e;
    char *count;

    (void)state;
    err_clear(&e);
    assert_int_equal(users_find_id(db, "admin", admin_id, &e), 0);
    assert_int_equal(db_begin_write(db, &e), 0);
    assert_int_equal(store_user_sites_set(db, admin_id, sites, 1, &e), -1);
    assert_string_equal(e.code, "unknown_site");
    db_rollback(db);
    /* the admin still has the site node_init gave it */
    count = raw_query(dir, "SELECT count(*) FROM user_sites");
    assert_string_equal(count, "1");
    free(count);

    /* a session for a user who does not exist is refused too */
    {
        struct session_row s;

        memset(&s, 0, sizeof(s));
        snprintf(s.token_hash, sizeof(s.token_hash), "%064d", 0);
        snprintf(s.user_id, sizeof(s.user_id), "%s", sites[0]);
        snprintf(s.csrf_token, sizeof(s.csrf_token), "csrf");
        s.created_at = s.last_seen_at = 1;
        s.expires_at = 2;
        err_clear(&e);
        assert_int_equal(db_begin_write(db, &e), 0);
        assert_int_equal(store_session_insert(db, &s, "127.0.0.1", &e), -1);
        db_rollback(db);
    }
    db_close(db);
    tu_remove_dir(dir);
}

static void test_transactions(void **state)
{
    char *dir, *count;
    struct db *db = tu_node(&dir);
    struct caller c;
    struct err e;
    char id[ID_LEN];

    (void)state;
    caller_local(&c, "test");
    err_clear(&e);
    assert_false(db_in_transaction(db));
    assert_int_equal(db_begin_read(db, &e), 0);
    assert_true(db_in_transaction(db));
    db_rollback(db);
    assert_false(db_in_transaction(db));
    db_rollback(db);    /* harmless outside a transaction */

    assert_int_equal(db_begin_write(db, &e), 0);
    assert_true(db_in_transaction(db));
    /* nesting is not supported: a second BEGIN fails and says so through *e */
    assert_int_equal(db_begin_write(db, &e), -1);
    assert_int_equal(e.kind, ERR_INTERNAL);
    db_rollback(db);

    /* a rolled-back write leaves nothing behind; a committed one stays */
    err_clear(&e);
    assert_int_equal(db_begin_write(db, &e), 0);
    {
        struct user_row u;

        memset(&u, 0, sizeof(u));
        id_new(u.id);
        snprintf(u.username, sizeof(u.username), "tx-user");
        snprintf(u.role, sizeof(u.role), "viewer");
        snprintf(u.password_hash, sizeof(u.password_hash), "x");
        u.created_at = u.updated_at = u.password_changed_at = 1;
        assert_int_equal(store_user_insert(db, &u, &e), 0);
        db_rollback(db);
        assert_int_equal(users_find_id(db, "tx-user", id, &e), -1);
        assert_int_equal(e.kind, ERR_NOT_FOUND);

        err_clear(&e);
        assert_int_equal(db_begin_write(db, &e), 0);
        assert_int_equal(store_user_insert(db, &u, &e), 0);
        assert_int_equal(db_commit(db, &e), 0);
        assert_false(db_in_transaction(db));
        assert_int_equal(users_find_id(db, "tx-user", id, &e), 0);
        assert_string_equal(id, u.id);
    }
    count = raw_query(dir, "SELECT count(*) FROM users WHERE username = 'tx-user'");
    assert_string_equal(count, "1");
    free(count);
    db_close(db);
    tu_remove_dir(dir);
}

static void test_close_null(void **state)
{
    (void)state;
    db_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_missing_dir),
        cmocka_unit_test(test_open_empty_dir_without_create),
        cmocka_unit_test(test_path_too_long),
        cmocka_unit_test(test_schema_latest_after_init),
        cmocka_unit_test(test_schema_too_new_refused),
        cmocka_unit_test(test_wal_mode),
        cmocka_unit_test(test_foreign_keys_on),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_close_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
