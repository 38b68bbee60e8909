/* test_appointments.c — unit tests of appointments (services/appointments.c): booking rules, the status
 * transitions a person may make, rescheduling, follow-ups of a visit, visibility by site, the missed sweep
 * (only appointments more than a day past their day; idempotent; through the change log and the audit log;
 * what may change afterwards), and replication between two nodes: a person's decision made on one node wins
 * over a sweep on the other, two sweeps of one appointment agree, and neither makes a conflict. */
#include "testutil.h"

#include <sqlite3.h>

#include "core/date.h"
#include "core/id.h"
#include "core/util.h"
#include "services/appointments.h"
#include "services/changelog.h"
#include "services/encounters.h"
#include "services/patients.h"
#include "services/sync.h"
#include "store/sites.h"

#define DAY_MS 86400000LL

struct node {
    char *dir;
    struct db *db;
    struct caller who;
    char id[ID_LEN];
};

static char *template_dir;      /* one node made by tu_node(), copied for every test */

static void node_open(struct node *n)
{
    struct err e;

    err_clear(&e);
    memset(n, 0, sizeof(*n));
    n->db = tu_node_copy(template_dir, &n->dir);
    id_new(n->id);
    if (store_meta_set(n->db, "node_id", n->id, &e) < 0)
        fail_msg("set node id: %s", e.message);
    caller_local(&n->who, "test");
    if (caller_local_sites(n->db, &n->who, NULL, &e) < 0)
        fail_msg("sites: %s", e.message);
    assert_int_equal(n->who.nsites, 1);
}

static void node_close(struct node *n)
{
    db_close(n->db);
    tu_remove_dir(n->dir);
}

static char *new_patient(struct node *n, char id[ID_LEN])
{
    json_t *in = json_pack("{s:s,s:s,s:s}", "given_name", "Amina", "family_name", "Yusuf", "sex", "female"), *p;
    struct err e;

    err_clear(&e);
    p = patients_create(n->db, &n->who, in, &e);
    if (p == NULL)
        fail_msg("register: %s", e.message);
    snprintf(id, ID_LEN, "%s", json_string_value(json_object_get(p, "id")));
    json_decref(p);
    json_decref(in);
    return id;
}

/* "YYYY-MM-DDT" hh ":00Z" of today + days (UTC). */
static const char *at_day(int64_t days, int hour, char out[32])
{
    char d[11];

    date_format(date_today() + days, d);
    snprintf(out, 32, "%sT%02d:00Z", d, hour);
    return out;
}

/* Book; returns the new appointment (the caller decrefs) or fails the test. */
static json_t *book(struct node *n, const char *patient, const char *starts, const char *service)
{
    json_t *in = json_pack("{s:s,s:s}", "starts_at", starts, "service", service), *a;
    struct err e;

    err_clear(&e);
    a = appointments_create(n->db, &n->who, patient, in, &e);
    if (a == NULL)
        fail_msg("book: %s: %s", e.code, e.message);
    json_decref(in);
    return a;
}

/* Book with input, expecting a refusal with code. */
static void book_refused(struct node *n, const char *patient, json_t *in, const char *code)
{
    json_t *a;
    struct err e;

    err_clear(&e);
    a = appointments_create(n->db, &n->who, patient, in, &e);
    if (a != NULL)
        fail_msg("booking %s was accepted; expected %s", json_dumps(in, JSON_COMPACT), code);
    assert_string_equal(e.code, code);
    json_decref(in);
}

/* PATCH with input (consumed); on success returns the new status ("" when refused) and e says why not. */
static const char *change(struct node *n, const char *id, json_t *in, struct err *e)
{
    static char status[16];
    json_t *a;

    err_clear(e);
    a = appointments_update(n->db, &n->who, id, in, e);
    json_decref(in);
    status[0] = '\0';
    if (a)
        snprintf(status, sizeof(status), "%s", json_string_value(json_object_get(a, "status")));
    json_decref(a);
    return status;
}

static const char *set_status(struct node *n, const char *id, const char *to, struct err *e)
{
    return change(n, id, json_pack("{s:s}", "status", to), e);
}

static const char *status_now(struct node *n, const char *id)
{
    static char status[16];
    json_t *a;
    struct err e;

    err_clear(&e);
    a = appointments_get(n->db, &n->who, id, &e);
    if (a == NULL)
        fail_msg("get: %s", e.message);
    snprintf(status, sizeof(status), "%s", json_string_value(json_object_get(a, "status")));
    json_decref(a);
    return status;
}

static int64_t sweep(struct node *n, int64_t days_from_today)
{
    int64_t marked = -1;
    struct err e;

    err_clear(&e);
    if (appointments_mark_missed(n->db, (date_today() + days_from_today) * DAY_MS + 3600000, &marked, &e) < 0)
        fail_msg("sweep: %s", e.message);
    return marked;
}

static int64_t sql_count(struct node *n, const char *sql)
{
    char path[512];
    sqlite3 *s;
    sqlite3_stmt *st;
    int64_t v = -1;

    snprintf(path, sizeof(path), "%s/%s", n->dir, DB_FILE);
    assert_int_equal(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(s, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(s);
    return v;
}

static void id_of(const json_t *a, char out[ID_LEN])
{
    snprintf(out, ID_LEN, "%s", json_string_value(json_object_get(a, "id")));
}

/* ---- booking ---- */

static void test_booking_rules(void **state)
{
    struct node n;
    struct caller stranger;
    char pid[ID_LEN], t[32], past[21];
    json_t *a, *in, *list;
    struct err e;

    (void)state;
    node_open(&n);
    new_patient(&n, pid);
    a = book(&n, pid, at_day(400, 9, t), "ncd");
    json_decref(a);
    book_refused(&n, pid, json_pack("{s:s,s:s}", "starts_at", "2099-01-01T09:00Z", "service", "ncd"), "time_too_far");
    book_refused(&n, pid, json_pack("{s:s,s:s}", "starts_at", at_day(1, 9, t), "service", "NCD clinic"), "invalid_service");
    book_refused(&n, pid, json_pack("{s:s,s:s}", "starts_at", "tomorrow", "service", "ncd"), "invalid_time");
    datetime_format(now_ms() - DAY_MS - 60000, past);
    book_refused(&n, pid, json_pack("{s:s,s:s}", "starts_at", past, "service", "ncd"), "time_in_past");
    book_refused(&n, pid, json_pack("{s:s,s:s,s:s}", "starts_at", at_day(1, 9, t), "service", "ncd", "colour", "red"),
                 "unknown_field");
    book_refused(&n, pid, json_pack("{s:s,s:s,s:s}", "starts_at", at_day(1, 9, t), "service", "ncd", "site_id",
                                    "01234567-89ab-7def-8123-456789abcdef"), "site_not_allowed");
    book_refused(&n, "01234567-89ab-7def-8123-456789abcdef", json_pack("{s:s,s:s}", "starts_at", at_day(1, 9, t),
                                                                      "service", "ncd"), "patient_not_found");
    a = book(&n, pid, at_day(0, 23, t), "antenatal");
    assert_string_equal(json_string_value(json_object_get(a, "status")), "booked");
    assert_string_equal(json_string_value(json_object_get(a, "site_id")), n.who.sites[0]);
    assert_string_equal(json_string_value(json_object_get(a, "booked_by")), "cli:test");
    assert_int_equal(strlen(json_string_value(json_object_get(a, "starts_at"))), 20);   /* seconds added */
    assert_memory_equal(json_string_value(json_object_get(a, "day")), t, 10);
    assert_null(json_object_get(a, "missed_day"));

    /* another site's caller does not see it */
    stranger = n.who;
    snprintf(stranger.sites[0], ID_LEN, "01234567-89ab-7def-8123-456789abcdef");
    err_clear(&e);
    assert_null(appointments_get(n.db, &stranger, json_string_value(json_object_get(a, "id")), &e));
    assert_string_equal(e.code, "appointment_not_found");
    in = json_pack("{s:s}", "notes", "x");
    err_clear(&e);
    assert_null(appointments_update(n.db, &stranger, json_string_value(json_object_get(a, "id")), in, &e));
    assert_string_equal(e.code, "appointment_not_found");
    json_decref(in);

    /* the patient's list, latest first: the one in 400 days before today's */
    err_clear(&e);
    list = appointments_list(n.db, &n.who, pid, NULL, 1, &e);
    assert_non_null(list);
    assert_int_equal(json_array_size(json_object_get(list, "items")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(list, "items"), 0), "service")),
                        "ncd");
    assert_true(json_is_string(json_object_get(list, "next")));
    json_decref(list);
    json_decref(a);
    node_close(&n);
}

/* ---- transitions ---- */

static void test_transitions(void **state)
{
    struct node n;
    char pid[ID_LEN], t[32], a1[ID_LEN], a2[ID_LEN], a3[ID_LEN];
    json_t *a;
    struct err e;

    (void)state;
    node_open(&n);
    new_patient(&n, pid);
    a = book(&n, pid, at_day(1, 9, t), "ncd");
    id_of(a, a1);
    json_decref(a);
    a = book(&n, pid, at_day(1, 10, t), "ncd");
    id_of(a, a2);
    json_decref(a);
    a = book(&n, pid, at_day(2, 10, t), "vaccination");
    id_of(a, a3);
    json_decref(a);

    /* booked -> fulfilled skips arrival; -> missed is the sweep's */
    assert_string_equal(set_status(&n, a1, "fulfilled", &e), "");
    assert_string_equal(e.code, "invalid_transition");
    assert_non_null(strstr(e.message, "booked to fulfilled"));
    assert_string_equal(set_status(&n, a1, "missed", &e), "");
    assert_string_equal(e.code, "invalid_transition");
    assert_string_equal(set_status(&n, a1, "done", &e), "");
    assert_string_equal(e.code, "invalid_status");
    /* booked -> arrived -> fulfilled */
    assert_string_equal(set_status(&n, a1, "booked", &e), "booked");     /* no change is no error */
    assert_string_equal(set_status(&n, a1, "arrived", &e), "arrived");
    assert_string_equal(set_status(&n, a1, "cancelled", &e), "");
    assert_string_equal(e.code, "invalid_transition");
    assert_string_equal(change(&n, a1, json_pack("{s:s}", "starts_at", at_day(3, 9, t)), &e), "");
    assert_string_equal(e.code, "not_booked");
    assert_string_equal(set_status(&n, a1, "fulfilled", &e), "fulfilled");
    assert_string_equal(set_status(&n, a1, "arrived", &e), "");
    assert_non_null(strstr(e.message, "fulfilled to arrived"));
    assert_string_equal(change(&n, a1, json_pack("{s:s}", "notes", "came with her daughter"), &e), "fulfilled");
    /* booked -> cancelled, final */
    assert_string_equal(set_status(&n, a2, "cancelled", &e), "cancelled");
    assert_string_equal(set_status(&n, a2, "booked", &e), "");
    assert_string_equal(e.code, "invalid_transition");
    /* reschedule a booked one */
    assert_string_equal(change(&n, a3, json_pack("{s:s}", "starts_at", at_day(5, 8, t)), &e), "booked");
    err_clear(&e);
    a = appointments_get(n.db, &n.who, a3, &e);
    assert_memory_equal(json_string_value(json_object_get(a, "day")), t, 10);
    json_decref(a);
    assert_string_equal(change(&n, a3, json_pack("{s:s}", "starts_at", "2000-01-01T08:00Z"), &e), "");
    assert_string_equal(e.code, "time_in_past");
    /* the fulfilling visit goes with status fulfilled only */
    assert_string_equal(change(&n, a3, json_pack("{s:s}", "encounter_id", a1), &e), "");
    assert_string_equal(e.code, "invalid_encounter");
    node_close(&n);
}

/* ---- follow-ups ---- */

static void test_follow_up(void **state)
{
    struct node n;
    char pid[ID_LEN], other[ID_LEN], eid[ID_LEN], oeid[ID_LEN], t[32], aid[ID_LEN];
    json_t *in, *enc, *a;
    struct err e;

    (void)state;
    node_open(&n);
    new_patient(&n, pid);
    new_patient(&n, other);
    in = json_pack("{s:s}", "type", "consultation");
    err_clear(&e);
    enc = encounters_create(n.db, &n.who, pid, in, &e);
    assert_non_null(enc);
    id_of(enc, eid);
    json_decref(enc);
    enc = encounters_create(n.db, &n.who, other, in, &e);
    assert_non_null(enc);
    id_of(enc, oeid);
    json_decref(enc);
    json_decref(in);

    in = json_pack("{s:s,s:s}", "starts_at", at_day(14, 9, t), "reason", "blood pressure review");
    a = appointments_follow_up(n.db, &n.who, eid, in, &e);
    if (a == NULL)
        fail_msg("follow-up: %s", e.message);
    json_decref(in);
    assert_string_equal(json_string_value(json_object_get(a, "patient_id")), pid);
    assert_string_equal(json_string_value(json_object_get(a, "encounter_id")), eid);
    assert_string_equal(json_string_value(json_object_get(a, "service")), "follow_up");
    id_of(a, aid);
    json_decref(a);
    in = json_pack("{s:s}", "starts_at", at_day(14, 9, t));
    err_clear(&e);
    assert_null(appointments_follow_up(n.db, &n.who, "01234567-89ab-7def-8123-456789abcdef", in, &e));
    assert_string_equal(e.code, "encounter_not_found");
    json_decref(in);

    /* fulfilled by a visit of the same patient only */
    assert_string_equal(set_status(&n, aid, "arrived", &e), "arrived");
    assert_string_equal(change(&n, aid, json_pack("{s:s,s:s}", "status", "fulfilled", "encounter_id", oeid), &e), "");
    assert_string_equal(e.code, "invalid_encounter");
    assert_string_equal(change(&n, aid, json_pack("{s:s,s:s}", "status", "fulfilled", "encounter_id", eid), &e),
                        "fulfilled");
    node_close(&n);
}

/* ---- the sweep ---- */

static void test_missed_sweep(void **state)
{
    struct node n;
    char pid[ID_LEN], t[32], sql[512], booked[ID_LEN], arrived[ID_LEN], done[ID_LEN], cancelled[ID_LEN],
        later[ID_LEN], noon[ID_LEN];
    json_t *a, *q, *stamps;
    struct err e;

    (void)state;
    node_open(&n);
    new_patient(&n, pid);
    a = book(&n, pid, at_day(1, 9, t), "ncd"), id_of(a, booked), json_decref(a);
    a = book(&n, pid, at_day(1, 9, t), "ncd"), id_of(a, arrived), json_decref(a);
    a = book(&n, pid, at_day(1, 10, t), "ncd"), id_of(a, done), json_decref(a);
    a = book(&n, pid, at_day(1, 11, t), "ncd"), id_of(a, cancelled), json_decref(a);
    a = book(&n, pid, at_day(2, 9, t), "ncd"), id_of(a, later), json_decref(a);
    a = book(&n, pid, at_day(1, 12, t), "ncd"), id_of(a, noon), json_decref(a);
    assert_string_equal(set_status(&n, arrived, "arrived", &e), "arrived");
    assert_string_equal(set_status(&n, done, "arrived", &e), "arrived");
    assert_string_equal(set_status(&n, done, "fulfilled", &e), "fulfilled");
    assert_string_equal(set_status(&n, cancelled, "cancelled", &e), "cancelled");

    /* on the day and the day after, nothing is missed yet */
    assert_int_equal(sweep(&n, 1), 0);
    assert_int_equal(sweep(&n, 2), 0);
    assert_string_equal(status_now(&n, booked), "booked");
    /* two days after: the booked and the arrived ones of day 1, and nothing else */
    assert_int_equal(sweep(&n, 3), 3);
    assert_string_equal(status_now(&n, booked), "missed");
    assert_string_equal(status_now(&n, arrived), "missed");
    assert_string_equal(status_now(&n, noon), "missed");
    assert_string_equal(status_now(&n, done), "fulfilled");
    assert_string_equal(status_now(&n, cancelled), "cancelled");
    assert_string_equal(status_now(&n, later), "booked");
    assert_int_equal(sweep(&n, 3), 0);     /* idempotent */
    assert_int_equal(sweep(&n, 4), 1);     /* day 2's turn */
    assert_string_equal(status_now(&n, later), "missed");

    /* each mark is a change of the field missed_day (the day itself) and an audit entry */
    err_clear(&e);
    stamps = changelog_stamps(n.db, APPOINTMENT_TABLE, booked, &e);
    assert_non_null(stamps);
    assert_memory_equal(json_string_value(json_array_get(json_object_get(stamps, "missed_day"), 3)), at_day(1, 9, t), 10);
    assert_string_equal(json_string_value(json_array_get(json_object_get(stamps, "status"), 3)), "booked");
    json_decref(stamps);
    snprintf(sql, sizeof(sql), "select count(*) from audit_log where action = 'appointment.missed' and entity_id = '%s'"
             " and username = 'system:missed-appointments'", booked);
    assert_int_equal(sql_count(&n, sql), 1);
    assert_int_equal(sql_count(&n, "select count(*) from audit_log where action = 'appointment.missed'"), 4);

    /* missed is final: no arrival, no reschedule, no cancellation; notes still allowed */
    assert_string_equal(set_status(&n, booked, "arrived", &e), "");
    assert_string_equal(e.code, "invalid_transition");
    assert_non_null(strstr(e.message, "missed to arrived"));
    assert_string_equal(set_status(&n, arrived, "fulfilled", &e), "");
    assert_string_equal(e.code, "invalid_transition");
    assert_string_equal(set_status(&n, booked, "cancelled", &e), "");
    assert_string_equal(change(&n, booked, json_pack("{s:s}", "starts_at", at_day(3, 9, t)), &e), "");
    assert_string_equal(e.code, "not_booked");
    assert_string_equal(change(&n, booked, json_pack("{s:s}", "notes", "phoned: travelling"), &e), "missed");

    /* the queue of that day shows them missed, with the patient's name, by time */
    err_clear(&e);
    at_day(1, 9, t);
    t[10] = '\0';
    q = appointments_queue(n.db, &n.who, NULL, t, &e);
    assert_non_null(q);
    assert_int_equal(json_array_size(json_object_get(q, "items")), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(q, "items"), 0), "patient_name")),
                        "Amina Yusuf");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(q, "items"), 4), "id")), noon);
    assert_false(json_is_true(json_object_get(q, "truncated")));
    json_decref(q);
    node_close(&n);
}

/* ---- replication ---- */

/* Send everything `from` has that `to` lacks. */
static void deliver(struct node *from, struct node *to)
{
    struct sync_report r;
    json_t *vector, *cursor = NULL;
    struct buf b;
    struct err e;
    int has_more = 1;

    while (has_more) {
        err_clear(&e);
        vector = sync_vector(to->db, &e);
        assert_non_null(vector);
        buf_init(&b, SYNC_MAX_COMPRESSED_BYTES);
        if (sync_batch_build(from->db, NULL, vector, 0, &b, &has_more, &cursor, &e) < 0)
            fail_msg("build: %s", e.message);
        if (sync_batch_apply(to->db, b.data, b.len, from->id, &r, NULL, NULL, &e) < 0)
            fail_msg("apply: %s", e.message);
        buf_free(&b);
        json_decref(vector);
        json_decref(cursor);
        cursor = NULL;
    }
}

static int64_t conflicts_open(struct node *n)
{
    struct err e;
    json_t *s;
    int64_t v;

    err_clear(&e);
    s = sync_status(n->db, &e);
    assert_non_null(s);
    v = json_integer_value(json_object_get(s, "conflicts_open"));
    json_decref(s);
    return v;
}

static void test_replication(void **state)
{
    struct node a, b;
    char pid[ID_LEN], t[32], one[ID_LEN], two[ID_LEN], three[ID_LEN], site[ID_LEN];
    json_t *x, *y;
    struct err e;

    (void)state;
    node_open(&a);
    node_open(&b);
    new_patient(&a, pid);
    x = book(&a, pid, at_day(1, 9, t), "antenatal"), id_of(x, one), json_decref(x);
    x = book(&a, pid, at_day(1, 10, t), "antenatal"), id_of(x, two), json_decref(x);
    x = book(&a, pid, at_day(1, 11, t), "antenatal"), id_of(x, three), json_decref(x);
    deliver(&a, &b);
    err_clear(&e);
    x = appointments_get(a.db, &a.who, one, &e);
    y = appointments_get(b.db, &b.who, one, &e);
    assert_non_null(x);
    assert_non_null(y);
    json_object_del(x, "updated_at"), json_object_del(x, "created_at");
    json_object_del(y, "updated_at"), json_object_del(y, "created_at");
    assert_true(json_equal(x, y));
    json_decref(x);
    json_decref(y);
    assert_int_equal(appointments_site_of(b.db, one, site, &e), 1);
    assert_string_equal(site, a.who.sites[0]);

    /* offline: A's clinic sees the patient (one fulfilled, two rescheduled); B sweeps them all as missed, and
     * A too sweeps three */
    assert_string_equal(set_status(&a, one, "arrived", &e), "arrived");
    assert_string_equal(set_status(&a, one, "fulfilled", &e), "fulfilled");
    assert_string_equal(change(&a, two, json_pack("{s:s}", "starts_at", at_day(7, 9, t)), &e), "booked");
    assert_int_equal(sweep(&b, 3), 3);
    assert_int_equal(sweep(&a, 3), 1);
    deliver(&b, &a);
    deliver(&a, &b);
    /* the people's decisions stand on both nodes; both sweeps of three agree; nothing to review */
    assert_string_equal(status_now(&a, one), "fulfilled");
    assert_string_equal(status_now(&b, one), "fulfilled");
    assert_string_equal(status_now(&a, two), "booked");
    assert_string_equal(status_now(&b, two), "booked");
    assert_string_equal(status_now(&a, three), "missed");
    assert_string_equal(status_now(&b, three), "missed");
    assert_int_equal(conflicts_open(&a), 0);
    assert_int_equal(conflicts_open(&b), 0);
    /* the rescheduled one is swept again once its new day has passed, on either node */
    assert_int_equal(sweep(&b, 9), 1);
    assert_string_equal(status_now(&b, two), "missed");

    /* a change from a newer node with a field this one does not know is refused as malformed */
    x = json_pack("{s:s,s:i}", "status", "booked", "colour", 3);
    err_clear(&e);
    assert_int_equal(appointments_check_fields(x, &e), -1);
    assert_string_equal(e.code, "invalid_change");
    json_decref(x);
    x = json_pack("{s:s,s:n,s:s}", "status", "booked", "notes", "missed_day", "2026-01-01");
    assert_int_equal(appointments_check_fields(x, &e), 0);
    json_decref(x);
    x = json_pack("{s:n}", "patient_id");
    assert_int_equal(appointments_check_fields(x, &e), -1);
    json_decref(x);
    node_close(&a);
    node_close(&b);
}

static int group_setup(void **state)
{
    struct db *db;

    (void)state;
    db = tu_node(&template_dir);
    db_close(db);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_remove_dir(template_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_booking_rules),
        cmocka_unit_test(test_transitions),
        cmocka_unit_test(test_follow_up),
        cmocka_unit_test(test_missed_sweep),
        cmocka_unit_test(test_replication),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
