/* test_audit.c — unit tests of the hash-chained audit log (services/audit.c, store/audit.c): appending
 * links each entry to the one before, verification finds altered, relinked and deleted rows (changed behind
 * the node's back with a raw sqlite3 connection), paging with cursor and limit, and entries joining an
 * outer transaction. */
#include "testutil.h"

#include <inttypes.h>

#include <sqlite3.h>

#include "core/log.h"
#include "services/audit.h"
#include "services/caller.h"

static const char genesis[] = "0000000000000000000000000000000000000000000000000000000000000000";

struct fixture {
    char *dir;
    struct db *db;
    struct caller who;
};

/* One node made once; each test works on a copy of its database in a directory of its own. */
static char *template_dir;

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_WARN);
    db_close(tu_node(&template_dir));   /* the last close checkpoints the WAL into sanad.db */
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
    memset(&f->who, 0, sizeof(f->who));
    f->who.authenticated = 1;
    id_new(f->who.user_id);
    snprintf(f->who.username, sizeof(f->who.username), "amal");
    f->who.role = ROLE_CLINICIAN;
    snprintf(f->who.address, sizeof(f->who.address), "192.0.2.7");
    snprintf(f->who.request_id, sizeof(f->who.request_id), "req-0001");
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

/* All rows, in order. */
struct rows {
    struct audit_row r[256];
    int n;
};

static int collect(const struct audit_row *r, void *ctx)
{
    struct rows *rows = ctx;

    assert_true(rows->n < 256);
    rows->r[rows->n++] = *r;
    return 0;
}

static void read_rows(struct db *db, struct rows *rows)
{
    struct err e;

    rows->n = 0;
    err_clear(&e);
    assert_int_equal(store_audit_scan(db, 0, 0, collect, rows, &e), 0);
}

/* Run SQL on the node's file through a connection of our own, as an attacker with file access would;
 * expect it to change exactly `changes` rows (-1: any number). */
static void raw_exec_n(const char *dir, const char *sql, int changes)
{
    char path[512];
    sqlite3 *conn;
    char *msg = NULL;

    snprintf(path, sizeof(path), "%s/%s", dir, DB_FILE);
    assert_int_equal(sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(conn, 5000);
    if (sqlite3_exec(conn, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("'%s' failed: %s", sql, msg ? msg : "?");
    if (changes >= 0 && sqlite3_changes(conn) != changes)
        fail_msg("'%s' changed %d rows, not %d", sql, sqlite3_changes(conn), changes);
    sqlite3_close(conn);
}

static void raw_exec(const char *dir, const char *sql)
{
    raw_exec_n(dir, sql, 1);
}

static void add_entries(struct fixture *f, int n)
{
    struct err e;
    char entity[ID_LEN];
    int i;

    for (i = 0; i < n; i++) {
        id_new(entity);
        err_clear(&e);
        if (audit_record(f->db, &f->who, "patient.read", "patient", entity, NULL, "ok", &e) < 0)
            fail_msg("audit_record: %s", e.message);
    }
}

static void test_node_init_starts_the_chain(void **state)
{
    struct fixture *f = *state;
    static struct rows rows;

    read_rows(f->db, &rows);
    /* node_init records itself and the first admin */
    assert_true(rows.n >= 2);
    assert_int_equal(rows.r[0].seq, 1);
    assert_string_equal(rows.r[0].prev_hash, genesis);
    assert_string_equal(rows.r[0].action, "node.init");
    assert_string_equal(rows.r[0].address, "local");
}

static void test_record_appends_a_chain(void **state)
{
    struct fixture *f = *state;
    static struct rows before, after;
    char want[CRYPTO_HASH_HEX_LEN];
    struct audit_row *last;
    int64_t t0 = 0;
    struct err e;
    int i;

    read_rows(f->db, &before);
    err_clear(&e);
    assert_int_equal(audit_record(f->db, &f->who, "patient.write", "patient", "ent-1", "site-1", "ok", &e), 0);
    add_entries(f, 5);
    read_rows(f->db, &after);
    assert_int_equal(after.n, before.n + 6);

    for (i = 0; i < after.n; i++) {
        struct audit_row *r = &after.r[i];

        assert_int_equal(r->seq, i + 1);
        assert_string_equal(r->prev_hash, i == 0 ? genesis : after.r[i - 1].hash);
        audit_row_hash(r, r->prev_hash, want);
        assert_string_equal(r->hash, want);
        assert_int_equal(strlen(r->hash), 64);
        assert_true(r->at >= t0);   /* time never goes backwards within the test */
        t0 = r->at;
    }
    /* the fields are stored as given */
    last = &after.r[before.n];
    assert_string_equal(last->action, "patient.write");
    assert_string_equal(last->entity_type, "patient");
    assert_string_equal(last->entity_id, "ent-1");
    assert_string_equal(last->site_id, "site-1");
    assert_string_equal(last->outcome, "ok");
    assert_string_equal(last->user_id, f->who.user_id);
    assert_string_equal(last->username, "amal");
    assert_string_equal(last->address, "192.0.2.7");
    assert_string_equal(last->request_id, "req-0001");
}

static void test_record_unauthenticated_and_null_fields(void **state)
{
    struct fixture *f = *state;
    static struct rows rows;
    struct caller anon;
    struct err e;
    struct audit_row *r;

    memset(&anon, 0, sizeof(anon));
    snprintf(anon.username, sizeof(anon.username), "guess");
    snprintf(anon.address, sizeof(anon.address), "198.51.100.1");
    snprintf(anon.user_id, sizeof(anon.user_id), "should-not-be-stored");
    err_clear(&e);
    assert_int_equal(audit_record(f->db, &anon, "login", NULL, NULL, NULL, "failed", &e), 0);
    assert_int_equal(audit_record(f->db, NULL, "system.start", NULL, NULL, NULL, "ok", &e), 0);
    read_rows(f->db, &rows);
    r = &rows.r[rows.n - 2];
    assert_string_equal(r->action, "login");
    assert_string_equal(r->user_id, "");    /* nobody was authenticated */
    assert_string_equal(r->username, "guess");
    assert_string_equal(r->entity_type, "");
    assert_string_equal(r->outcome, "failed");
    r = &rows.r[rows.n - 1];
    assert_string_equal(r->action, "system.start");
    assert_string_equal(r->username, "");
    assert_string_equal(r->address, "");
    {
        struct audit_verdict v;

        assert_int_equal(audit_verify(f->db, &v, &e), 0);
    }
}

static void test_verify_intact(void **state)
{
    struct fixture *f = *state;
    static struct rows rows;
    struct audit_verdict v;
    struct err e;

    add_entries(f, 10);
    read_rows(f->db, &rows);
    err_clear(&e);
    assert_int_equal(audit_verify(f->db, &v, &e), 0);
    assert_int_equal(v.bad_seq, 0);
    assert_int_equal(v.checked, rows.n);
    assert_false(db_in_transaction(f->db));
}

static void test_verify_empty_log(void **state)
{
    struct fixture *f = *state;
    struct audit_verdict v;
    struct err e;

    /* an empty log is intact */
    raw_exec_n(f->dir, "DELETE FROM audit_log", -1);
    err_clear(&e);
    assert_int_equal(audit_verify(f->db, &v, &e), 0);
    assert_int_equal(v.checked, 0);
    /* and appending starts again from the genesis hash */
    add_entries(f, 2);
    assert_int_equal(audit_verify(f->db, &v, &e), 0);
    assert_int_equal(v.checked, 2);
}

static void test_tampered_row_detected(void **state)
{
    struct fixture *f = *state;
    struct audit_verdict v;
    struct err e;

    add_entries(f, 10);
    raw_exec(f->dir, "UPDATE audit_log SET action = 'patient.list' WHERE seq = 6");
    err_clear(&e);
    assert_int_equal(audit_verify(f->db, &v, &e), 1);
    assert_int_equal(v.bad_seq, 6);
    assert_int_equal(v.checked, 6);
    assert_non_null(strstr(v.reason, "altered"));
}

static void test_each_field_is_covered(void **state)
{
    static const char *const updates[] = {
        "UPDATE audit_log SET at = at + 1 WHERE seq = 4",
        "UPDATE audit_log SET user_id = NULL WHERE seq = 4",
        "UPDATE audit_log SET username = 'someone' WHERE seq = 4",
        "UPDATE audit_log SET entity_type = 'site' WHERE seq = 4",
        "UPDATE audit_log SET entity_id = 'x' WHERE seq = 4",
        "UPDATE audit_log SET site_id = 'x' WHERE seq = 4",
        "UPDATE audit_log SET address = '10.0.0.1' WHERE seq = 4",
        "UPDATE audit_log SET request_id = 'other' WHERE seq = 4",
        "UPDATE audit_log SET outcome = 'denied' WHERE seq = 4",
        "UPDATE audit_log SET hash = prev_hash WHERE seq = 4",
    };
    struct fixture *f = *state;
    struct audit_verdict v;
    struct err e;
    size_t i;

    add_entries(f, 5);
    for (i = 0; i < sizeof(updates) / sizeof(updates[0]); i++) {
        /* a fresh copy of row 4 each round: save, tamper, verify, restore */
        raw_exec_n(f->dir, "CREATE TABLE saved AS SELECT * FROM audit_log WHERE seq = 4", -1);
        raw_exec(f->dir, updates[i]);
        err_clear(&e);
        if (audit_verify(f->db, &v, &e) != 1 || v.bad_seq != 4)
            fail_msg("'%s' was not detected at entry 4 (bad_seq %" PRId64 ")", updates[i], v.bad_seq);
        raw_exec(f->dir, "DELETE FROM audit_log WHERE seq = 4");
        raw_exec(f->dir, "INSERT INTO audit_log SELECT * FROM saved");
        raw_exec_n(f->dir, "DROP TABLE saved", -1);
        assert_int_equal(audit_verify(f->db, &v, &e), 0);
    }
}

static void test_rehashed_row_breaks_the_next_link(void **state)
{
    struct fixture *f = *state;
    static struct rows rows;
    struct audit_verdict v;
    struct audit_row r;
    char sql[512], newhash[CRYPTO_HASH_HEX_LEN];
    struct err e;

    add_entries(f, 8);
    read_rows(f->db, &rows);
    /* an attacker who alters row 5 and recomputes its hash still breaks row 6's link */
    r = rows.r[4];
    assert_int_equal(r.seq, 5);
    snprintf(r.outcome, sizeof(r.outcome), "denied");
    audit_row_hash(&r, r.prev_hash, newhash);
    snprintf(sql, sizeof(sql), "UPDATE audit_log SET outcome = 'denied', hash = '%s' WHERE seq = 5", newhash);
    raw_exec(f->dir, sql);
    err_clear(&e);
    assert_int_equal(audit_verify(f->db, &v, &e), 1);
    assert_int_equal(v.bad_seq, 6);
    assert_non_null(strstr(v.reason, "link"));
}

static void test_deleted_row_detected(void **state)
{
    struct fixture *f = *state;
    struct audit_verdict v;
    struct err e;

    add_entries(f, 10);
    raw_exec(f->dir, "DELETE FROM audit_log WHERE seq = 7");
    err_clear(&e);
    assert_int_equal(audit_verify(f->db, &v, &e), 1);
    assert_int_equal(v.bad_seq, 8);
    assert_non_null(strstr(v.reason, "missing"));
    /* the first row deleted */
    raw_exec(f->dir, "DELETE FROM audit_log WHERE seq = 1");
    assert_int_equal(audit_verify(f->db, &v, &e), 1);
    assert_int_equal(v.bad_seq, 2);
}

static void test_renumbered_row_detected(void **state)
{
    struct fixture *f = *state;
    struct audit_verdict v;
    struct err e;

    add_entries(f, 6);
    /* deleting row 4 and moving row 5 into its place: the seq is part of the hash */
    raw_exec(f->dir, "DELETE FROM audit_log WHERE seq = 4");
    raw_exec(f->dir, "UPDATE audit_log SET seq = 4 WHERE seq = 5");
    err_clear(&e);
    assert_int_equal(audit_verify(f->db, &v, &e), 1);
    assert_int_equal(v.bad_seq, 4);
}

/* Page through everything with the given limit and check each entry comes exactly once, in order. */
static void page_all(struct fixture *f, int64_t limit, int64_t total)
{
    char cursor[32];
    const char *cur = NULL;
    int64_t seen = 0, pages = 0;
    struct err e;

    for (;;) {
        json_t *page, *items, *next, *item;
        size_t i;

        err_clear(&e);
        page = audit_page(f->db, cur, limit, &e);
        if (page == NULL)
            fail_msg("audit_page: %s", e.message);
        items = json_object_get(page, "items");
        next = json_object_get(page, "next");
        assert_true(json_is_array(items));
        assert_non_null(next);
        assert_true((int64_t)json_array_size(items) <= limit);
        json_array_foreach(items, i, item) {
            seen++;
            assert_int_equal(json_integer_value(json_object_get(item, "seq")), seen);
        }
        pages++;
        if (json_is_null(next)) {
            json_decref(page);
            break;
        }
        /* a next cursor is only given when there is more, so a page with one is full */
        assert_true(json_is_string(next));
        assert_int_equal((int64_t)json_array_size(items), limit);
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
        cur = cursor;
        json_decref(page);
        assert_true(pages <= total + 1);
    }
    assert_int_equal(seen, total);
    assert_int_equal(pages, total == 0 ? 1 : (total + limit - 1) / limit);
}

static void test_page_with_cursor_and_limit(void **state)
{
    struct fixture *f = *state;
    static struct rows rows;
    json_t *page, *item;
    struct err e;

    /* make the total a multiple of 5 so the last full page must not offer an empty next page */
    read_rows(f->db, &rows);
    add_entries(f, 20 - rows.n);
    page_all(f, 5, 20);
    page_all(f, 7, 20);
    page_all(f, 1, 20);
    page_all(f, 20, 20);
    page_all(f, 500, 20);

    /* the first page in detail */
    err_clear(&e);
    page = audit_page(f->db, NULL, 3, &e);
    assert_non_null(page);
    assert_int_equal(json_array_size(json_object_get(page, "items")), 3);
    assert_string_equal(json_string_value(json_object_get(page, "next")), "3");
    item = json_array_get(json_object_get(page, "items"), 0);
    assert_int_equal(json_integer_value(json_object_get(item, "seq")), 1);
    assert_string_equal(json_string_value(json_object_get(item, "action")), "node.init");
    assert_true(json_is_string(json_object_get(item, "at")));
    assert_int_equal(strlen(json_string_value(json_object_get(item, "at"))), 24);  /* RFC 3339 with ms */
    assert_int_equal(strlen(json_string_value(json_object_get(item, "hash"))), 64);
    json_decref(page);

    /* the last entry of a patient read: absent fields are null, present ones are strings */
    page = audit_page(f->db, "19", 10, &e);
    assert_non_null(page);
    item = json_array_get(json_object_get(page, "items"), 0);
    assert_int_equal(json_integer_value(json_object_get(item, "seq")), 20);
    assert_string_equal(json_string_value(json_object_get(item, "username")), "amal");
    assert_true(json_is_null(json_object_get(item, "site_id")));
    assert_true(json_is_null(json_object_get(page, "next")));
    json_decref(page);

    /* a cursor past the end gives an empty page */
    page = audit_page(f->db, "1000", 10, &e);
    assert_non_null(page);
    assert_int_equal(json_array_size(json_object_get(page, "items")), 0);
    assert_true(json_is_null(json_object_get(page, "next")));
    json_decref(page);
}

static void test_page_limit_clamped(void **state)
{
    struct fixture *f = *state;
    json_t *page;
    struct err e;

    err_clear(&e);
    assert_int_equal(db_begin_write(f->db, &e), 0);     /* one commit, not 600 fsyncs */
    add_entries(f, 600);
    assert_int_equal(db_commit(f->db, &e), 0);
    page = audit_page(f->db, NULL, 0, &e);
    assert_int_equal(json_array_size(json_object_get(page, "items")), 1);
    json_decref(page);
    page = audit_page(f->db, NULL, -5, &e);
    assert_int_equal(json_array_size(json_object_get(page, "items")), 1);
    json_decref(page);
    page = audit_page(f->db, NULL, 100000, &e);
    assert_int_equal(json_array_size(json_object_get(page, "items")), 500);
    assert_string_equal(json_string_value(json_object_get(page, "next")), "500");
    json_decref(page);
}

static void test_page_invalid_cursor(void **state)
{
    static const char *const bad[] = { "", "abc", "-1", "1x", " 1", "1.5", "0x10", "99999999999999999999" };
    struct fixture *f = *state;
    struct err e;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err_clear(&e);
        if (audit_page(f->db, bad[i], 10, &e) != NULL)
            fail_msg("cursor '%s' was accepted", bad[i]);
        assert_int_equal(e.kind, ERR_INVALID);
        assert_string_equal(e.code, "invalid_cursor");
    }
}

static void test_record_joins_outer_transaction(void **state)
{
    struct fixture *f = *state;
    static struct rows before, after;
    struct err e;

    read_rows(f->db, &before);
    /* rolled back with the change it describes: no entry */
    err_clear(&e);
    assert_int_equal(db_begin_write(f->db, &e), 0);
    assert_int_equal(audit_record(f->db, &f->who, "patient.write", "patient", "p1", NULL, "ok", &e), 0);
    assert_int_equal(audit_record(f->db, &f->who, "patient.write", "patient", "p2", NULL, "ok", &e), 0);
    assert_true(db_in_transaction(f->db));   /* audit_record did not commit the caller's transaction */
    db_rollback(f->db);
    read_rows(f->db, &after);
    assert_int_equal(after.n, before.n);

    /* committed with it: both entries, chained */
    assert_int_equal(db_begin_write(f->db, &e), 0);
    assert_int_equal(audit_record(f->db, &f->who, "patient.write", "patient", "p3", NULL, "ok", &e), 0);
    assert_int_equal(audit_record(f->db, &f->who, "patient.write", "patient", "p4", NULL, "ok", &e), 0);
    assert_int_equal(db_commit(f->db, &e), 0);
    read_rows(f->db, &after);
    assert_int_equal(after.n, before.n + 2);
    assert_string_equal(after.r[after.n - 2].entity_id, "p3");
    assert_string_equal(after.r[after.n - 1].entity_id, "p4");
    assert_string_equal(after.r[after.n - 1].prev_hash, after.r[after.n - 2].hash);
    {
        struct audit_verdict v;

        assert_int_equal(audit_verify(f->db, &v, &e), 0);
    }
    /* outside a transaction, each entry commits on its own */
    assert_false(db_in_transaction(f->db));
    assert_int_equal(audit_record(f->db, &f->who, "patient.read", "patient", "p5", NULL, "ok", &e), 0);
    assert_false(db_in_transaction(f->db));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_node_init_starts_the_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_appends_a_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_unauthenticated_and_null_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_empty_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_row_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_field_is_covered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rehashed_row_breaks_the_next_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_row_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renumbered_row_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_with_cursor_and_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_limit_clamped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_invalid_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_joins_outer_transaction, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
