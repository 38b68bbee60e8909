/* test_users.c — unit tests of account management (services/users.c): validation on create, user name
 * normalisation, partial updates that persist, the last-admin guard, listing, the signed-in user's own
 * view with its permissions, and lookup by name. Changes are checked by reading them back, not just by
 * the JSON a call returns. */
#include "testutil.h"

#include "core/log.h"
#include "services/audit.h"
#include "services/auth.h"
#include "services/users.h"
#include "store/accounts.h"

#define PW "a-good-long-password"

struct fixture {
    char *dir;
    struct db *db;
    struct caller local;
    char admin_id[ID_LEN];
    char default_site[ID_LEN];
};

/* One node made once; each test works on a copy of its database in a directory of its own. */
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
    struct user_row u;
    struct err e;

    assert_non_null(f);
    f->db = tu_node_copy(template_dir, &f->dir);
    caller_local(&f->local, "test");
    err_clear(&e);
    assert_int_equal(users_find_id(f->db, "admin", f->admin_id, &e), 0);
    assert_int_equal(store_user_get(f->db, f->admin_id, &u, &e), 1);
    {
        char sites[USER_SITES_MAX][ID_LEN];
        int n;

        assert_int_equal(store_user_sites_get(f->db, f->admin_id, sites, USER_SITES_MAX, &n, &e), 0);
        assert_int_equal(n, 1);
        memcpy(f->default_site, sites[0], ID_LEN);
    }
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

/* Create a user or fail the test; returns its id in id (may be NULL). */
static void create_ok(struct fixture *f, const char *username, const char *role, char id[ID_LEN])
{
    struct user_input in;
    struct err e;
    json_t *u;

    memset(&in, 0, sizeof(in));
    in.username = username;
    in.role = role;
    in.password = PW;
    err_clear(&e);
    u = users_create(f->db, &f->local, &in, &e);
    if (u == NULL)
        fail_msg("users_create(%s): %s: %s", username, e.code, e.message);
    if (id)
        snprintf(id, ID_LEN, "%s", json_string_value(json_object_get(u, "id")));
    json_decref(u);
}

/* Expect users_create to fail with this kind and code, and to leave no such user behind. */
static void create_fails(struct fixture *f, const struct user_input *in, enum err_kind kind, const char *code)
{
    char id[ID_LEN];
    struct err e;
    json_t *u;

    err_clear(&e);
    u = users_create(f->db, &f->local, in, &e);
    if (u != NULL) {
        json_decref(u);
        fail_msg("users_create('%s') succeeded; expected %s", in->username ? in->username : "(null)", code);
    }
    if (e.kind != kind || strcmp(e.code, code) != 0)
        fail_msg("users_create('%s') failed with %s (%s); expected %s", in->username ? in->username : "(null)",
                 e.code, e.message, code);
    assert_false(db_in_transaction(f->db));
    if (in->username && strcmp(code, "username_taken") != 0) {
        struct err e2;

        if (users_find_id(f->db, in->username, id, &e2) == 0)
            fail_msg("a failed create left user '%s' behind", in->username);
    }
}

static json_t *update(struct fixture *f, const char *id, const struct user_input *in, struct err *e)
{
    err_clear(e);
    return users_update(f->db, &f->local, id, in, e);
}

static void update_ok(struct fixture *f, const char *id, const struct user_input *in)
{
    struct err e;
    json_t *u = update(f, id, in, &e);

    if (u == NULL)
        fail_msg("users_update: %s: %s", e.code, e.message);
    json_decref(u);
}

static void update_fails(struct fixture *f, const char *id, const struct user_input *in, enum err_kind kind,
                         const char *code)
{
    struct err e;
    json_t *u = update(f, id, in, &e);

    if (u != NULL) {
        json_decref(u);
        fail_msg("users_update succeeded; expected %s", code);
    }
    if (e.kind != kind || strcmp(e.code, code) != 0)
        fail_msg("users_update failed with %s (%s); expected %s", e.code, e.message, code);
    assert_false(db_in_transaction(f->db));
}

/* The stored row, read back from the database. */
static void stored(struct fixture *f, const char *id, struct user_row *u)
{
    struct err e;

    err_clear(&e);
    assert_int_equal(store_user_get(f->db, id, u, &e), 1);
}

static int stored_sites(struct fixture *f, const char *id, char sites[USER_SITES_MAX][ID_LEN])
{
    struct err e;
    int n;

    assert_int_equal(store_user_sites_get(f->db, id, sites, USER_SITES_MAX, &n, &e), 0);
    return n;
}

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

static void new_site(struct fixture *f, const char *name, char id[ID_LEN])
{
    struct err e;
    json_t *s;

    err_clear(&e);
    s = sites_create(f->db, &f->local, name, &e);
    if (s == NULL)
        fail_msg("sites_create: %s", e.message);
    snprintf(id, ID_LEN, "%s", json_string_value(json_object_get(s, "id")));
    json_decref(s);
}

static void test_create_ok_and_normalised(void **state)
{
    struct fixture *f = *state;
    struct user_input in;
    struct user_row row;
    struct audit_row a;
    char id[ID_LEN], *dump;
    struct err e;
    json_t *u;

    memset(&in, 0, sizeof(in));
    in.username = "Nurse.Amal_2-B";
    in.full_name = "Amal Haddad";
    in.role = "clinician";
    in.password = PW;
    err_clear(&e);
    u = users_create(f->db, &f->local, &in, &e);
    if (u == NULL)
        fail_msg("users_create: %s", e.message);
    assert_string_equal(json_string_value(json_object_get(u, "username")), "nurse.amal_2-b");
    assert_string_equal(json_string_value(json_object_get(u, "full_name")), "Amal Haddad");
    assert_string_equal(json_string_value(json_object_get(u, "role")), "clinician");
    assert_true(json_is_false(json_object_get(u, "disabled")));
    assert_true(id_valid(json_string_value(json_object_get(u, "id"))));
    /* with no sites given the user gets the node's default site */
    assert_int_equal(json_array_size(json_object_get(u, "sites")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(u, "sites"), 0)), f->default_site);
    assert_int_equal(strlen(json_string_value(json_object_get(u, "created_at"))), 24);
    /* the password and its hash never leave the service */
    dump = json_dumps(u, 0);
    assert_null(strstr(dump, "argon2"));
    assert_null(strstr(dump, PW));
    assert_null(json_object_get(u, "password_hash"));
    assert_null(json_object_get(u, "password"));
    free(dump);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(u, "id")));
    json_decref(u);

    /* stored as shown, with a real Argon2id hash of the password */
    stored(f, id, &row);
    assert_string_equal(row.username, "nurse.amal_2-b");
    assert_string_equal(row.role, "clinician");
    assert_int_equal(row.disabled, 0);
    assert_int_equal(crypto_password_verify(row.password_hash, PW), 1);

    /* found under any case */
    {
        char found[ID_LEN];

        assert_int_equal(users_find_id(f->db, "NURSE.AMAL_2-B", found, &e), 0);
        assert_string_equal(found, id);
    }
    last_audit(f, &a);
    assert_string_equal(a.action, "user.create");
    assert_string_equal(a.entity_type, "user");
    assert_string_equal(a.entity_id, id);
    assert_string_equal(a.outcome, "ok");
}

static void test_normalise_username(void **state)
{
    static const char *const bad[] = {
        "", ".amal", "_amal", "-amal", "amal smith", "amal@clinic", "amal/x", "amal\n", "am'al", "am\"al",
        "\xc3\xa9lodie" /* é */, "\xd9\x85\xd8\xad\xd9\x85\xd8\xaf" /* Arabic */, "amal;drop", " amal",
    };
    char out[USERNAME_MAX + 1], name[USERNAME_MAX + 2];
    struct err e;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err_clear(&e);
        if (users_normalise_username(bad[i], out, &e) != -1)
            fail_msg("user name '%s' was accepted as '%s'", bad[i], out);
        assert_int_equal(e.kind, ERR_INVALID);
        assert_string_equal(e.code, "invalid_username");
    }
    assert_int_equal(users_normalise_username(NULL, out, &e), -1);
    assert_int_equal(users_normalise_username("A1.b_c-D", out, &e), 0);
    assert_string_equal(out, "a1.b_c-d");
    assert_int_equal(users_normalise_username("9lives", out, &e), 0);
    /* 64 characters are allowed, 65 are not */
    memset(name, 'n', USERNAME_MAX);
    name[USERNAME_MAX] = '\0';
    assert_int_equal(users_normalise_username(name, out, &e), 0);
    assert_int_equal(strlen(out), USERNAME_MAX);
    name[USERNAME_MAX] = 'n';
    name[USERNAME_MAX + 1] = '\0';
    assert_int_equal(users_normalise_username(name, out, &e), -1);
    assert_string_equal(e.code, "invalid_username");
}

static void test_create_bad_usernames(void **state)
{
    static const char *const bad[] = { "", ".hidden", "with space", "semi;colon", "\xc3\xa9lodie" };
    struct fixture *f = *state;
    struct user_input in;
    size_t i;

    memset(&in, 0, sizeof(in));
    in.role = "viewer";
    in.password = PW;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in.username = bad[i];
        create_fails(f, &in, ERR_INVALID, "invalid_username");
    }
    in.username = NULL;
    create_fails(f, &in, ERR_INVALID, "invalid_username");
}

static void test_create_weak_passwords(void **state)
{
    struct fixture *f = *state;
    struct user_input in;
    char longpw[PASSWORD_MAX + 2];

    memset(&in, 0, sizeof(in));
    in.username = "samir";
    in.role = "registrar";
    in.password = "123456789";                  /* 9 characters */
    create_fails(f, &in, ERR_INVALID, "weak_password");
    in.username = "samir.registrar";
    in.password = "Samir.Registrar";            /* the user name, in other case */
    create_fails(f, &in, ERR_INVALID, "weak_password");
    memset(longpw, 'p', sizeof(longpw) - 1);
    longpw[sizeof(longpw) - 1] = '\0';          /* PASSWORD_MAX + 1 bytes */
    in.password = longpw;
    create_fails(f, &in, ERR_INVALID, "weak_password");
    in.password = NULL;
    create_fails(f, &in, ERR_INVALID, "missing_field");
}

static void test_create_bad_role(void **state)
{
    static const char *const bad[] = { "superuser", "Admin", "", "admin " };
    struct fixture *f = *state;
    struct user_input in;
    size_t i;

    memset(&in, 0, sizeof(in));
    in.username = "rami";
    in.password = PW;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in.role = bad[i];
        create_fails(f, &in, ERR_INVALID, "invalid_role");
    }
    in.role = NULL;
    create_fails(f, &in, ERR_INVALID, "missing_field");
}

static void test_create_full_name_too_long(void **state)
{
    struct fixture *f = *state;
    struct user_input in;
    char name[FULL_NAME_MAX + 2];

    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    memset(&in, 0, sizeof(in));
    in.username = "longname";
    in.role = "viewer";
    in.password = PW;
    in.full_name = name;
    create_fails(f, &in, ERR_INVALID, "field_too_long");
}

static void test_create_sites(void **state)
{
    struct fixture *f = *state;
    struct user_input in;
    char site2[ID_LEN], site3[ID_LEN], id[ID_LEN], sites[USER_SITES_MAX][ID_LEN];
    struct err e;
    json_t *u;

    memset(&in, 0, sizeof(in));
    in.username = "mobile";
    in.role = "clinician";
    in.password = PW;
    in.has_sites = 1;
    in.nsites = 1;
    in.sites[0] = "not-a-site-id";
    create_fails(f, &in, ERR_INVALID, "unknown_site");
    in.sites[0] = "00000000-0000-7000-8000-000000000000";     /* well formed, no such site */
    create_fails(f, &in, ERR_INVALID, "unknown_site");

    new_site(f, "Mobile team north", site2);
    new_site(f, "Mobile team south", site3);
    in.nsites = 2;
    in.sites[0] = site2;
    in.sites[1] = site3;
    err_clear(&e);
    u = users_create(f->db, &f->local, &in, &e);
    if (u == NULL)
        fail_msg("users_create: %s", e.message);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(u, "id")));
    assert_int_equal(json_array_size(json_object_get(u, "sites")), 2);
    json_decref(u);
    assert_int_equal(stored_sites(f, id, sites), 2);
    assert_true((strcmp(sites[0], site2) == 0 && strcmp(sites[1], site3) == 0)
                || (strcmp(sites[0], site3) == 0 && strcmp(sites[1], site2) == 0));
}

static void test_create_duplicate(void **state)
{
    struct fixture *f = *state;
    struct user_input in;
    struct audit_row before, after;

    create_ok(f, "amal", "clinician", NULL);
    last_audit(f, &before);
    memset(&in, 0, sizeof(in));
    in.role = "viewer";
    in.password = PW;
    in.username = "AMAL";
    create_fails(f, &in, ERR_CONFLICT, "username_taken");
    in.username = "admin";
    create_fails(f, &in, ERR_CONFLICT, "username_taken");
    /* a refused create leaves no audit entry claiming it happened */
    last_audit(f, &after);
    assert_int_equal(after.seq, before.seq);
}

static void test_update_partial_fields(void **state)
{
    struct fixture *f = *state;
    struct user_input in;
    struct user_row before, row;
    char id[ID_LEN], site2[ID_LEN], sites[USER_SITES_MAX][ID_LEN];
    struct audit_row a;

    create_ok(f, "hana", "registrar", id);
    stored(f, id, &before);

    /* only the full name */
    memset(&in, 0, sizeof(in));
    in.full_name = "Hana Saleh";
    update_ok(f, id, &in);
    stored(f, id, &row);
    assert_string_equal(row.full_name, "Hana Saleh");
    assert_string_equal(row.role, "registrar");
    assert_int_equal(row.disabled, 0);
    assert_string_equal(row.password_hash, before.password_hash);
    assert_int_equal(stored_sites(f, id, sites), 1);
    last_audit(f, &a);
    assert_string_equal(a.action, "user.update");
    assert_string_equal(a.entity_id, id);

    /* only the role */
    memset(&in, 0, sizeof(in));
    in.role = "clinician";
    update_ok(f, id, &in);
    stored(f, id, &row);
    assert_string_equal(row.role, "clinician");
    assert_string_equal(row.full_name, "Hana Saleh");

    /* only the sites */
    new_site(f, "Clinic two", site2);
    memset(&in, 0, sizeof(in));
    in.has_sites = 1;
    in.nsites = 1;
    in.sites[0] = site2;
    update_ok(f, id, &in);
    assert_int_equal(stored_sites(f, id, sites), 1);
    assert_string_equal(sites[0], site2);
    stored(f, id, &row);
    assert_string_equal(row.role, "clinician");
    /* an empty list removes every site */
    in.nsites = 0;
    update_ok(f, id, &in);
    assert_int_equal(stored_sites(f, id, sites), 0);

    /* disabled, then enabled */
    memset(&in, 0, sizeof(in));
    in.has_disabled = 1;
    in.disabled = 1;
    update_ok(f, id, &in);
    stored(f, id, &row);
    assert_int_equal(row.disabled, 1);
    assert_string_equal(row.full_name, "Hana Saleh");
    in.disabled = 0;
    update_ok(f, id, &in);
    stored(f, id, &row);
    assert_int_equal(row.disabled, 0);

    /* the password */
    memset(&in, 0, sizeof(in));
    in.password = "another-good-password";
    update_ok(f, id, &in);
    stored(f, id, &row);
    assert_int_equal(crypto_password_verify(row.password_hash, "another-good-password"), 1);
    assert_int_equal(crypto_password_verify(row.password_hash, PW), 0);
    assert_true(row.password_changed_at >= before.password_changed_at);
    last_audit(f, &a);
    assert_string_equal(a.action, "user.password");
}

static void test_update_refusals(void **state)
{
    struct fixture *f = *state;
    struct user_input in;
    struct user_row before, row;
    char id[ID_LEN];

    create_ok(f, "yusuf.long", "viewer", id);
    stored(f, id, &before);
    memset(&in, 0, sizeof(in));
    in.username = "renamed";
    update_fails(f, id, &in, ERR_INVALID, "immutable_field");
    memset(&in, 0, sizeof(in));
    in.role = "owner";
    update_fails(f, id, &in, ERR_INVALID, "invalid_role");
    memset(&in, 0, sizeof(in));
    in.password = "short";
    update_fails(f, id, &in, ERR_INVALID, "weak_password");
    in.password = "YUSUF.LONG";     /* the user's own name */
    update_fails(f, id, &in, ERR_INVALID, "weak_password");
    memset(&in, 0, sizeof(in));
    in.has_sites = 1;
    in.nsites = 1;
    in.sites[0] = "00000000-0000-7000-8000-000000000000";
    update_fails(f, id, &in, ERR_INVALID, "unknown_site");
    memset(&in, 0, sizeof(in));
    in.full_name = "Nobody";
    update_fails(f, "00000000-0000-7000-8000-000000000000", &in, ERR_NOT_FOUND, "user_not_found");
    /* none of the refused changes left a trace */
    stored(f, id, &row);
    assert_string_equal(row.role, "viewer");
    assert_string_equal(row.password_hash, before.password_hash);
    assert_string_equal(row.full_name, before.full_name);
}

static void test_last_admin(void **state)
{
    struct fixture *f = *state;
    struct user_input demote, disable;
    struct user_row row;
    char admin2[ID_LEN], admin3[ID_LEN];

    memset(&demote, 0, sizeof(demote));
    demote.role = "clinician";
    memset(&disable, 0, sizeof(disable));
    disable.has_disabled = 1;
    disable.disabled = 1;

    /* the only admin can be neither demoted nor disabled */
    update_fails(f, f->admin_id, &demote, ERR_CONFLICT, "last_admin");
    update_fails(f, f->admin_id, &disable, ERR_CONFLICT, "last_admin");
    stored(f, f->admin_id, &row);
    assert_string_equal(row.role, "admin");
    assert_int_equal(row.disabled, 0);
    /* other changes to the last admin are fine */
    {
        struct user_input name;

        memset(&name, 0, sizeof(name));
        name.full_name = "Head of clinic";
        update_ok(f, f->admin_id, &name);
    }

    /* with a second admin, the first may step down ... */
    create_ok(f, "admin2", "admin", admin2);
    update_ok(f, f->admin_id, &demote);
    stored(f, f->admin_id, &row);
    assert_string_equal(row.role, "clinician");
    /* ... and then the second is the last one */
    update_fails(f, admin2, &demote, ERR_CONFLICT, "last_admin");
    update_fails(f, admin2, &disable, ERR_CONFLICT, "last_admin");

    /* a disabled admin does not count */
    create_ok(f, "admin3", "admin", admin3);
    update_ok(f, admin3, &disable);
    update_fails(f, admin2, &disable, ERR_CONFLICT, "last_admin");
    stored(f, admin2, &row);
    assert_string_equal(row.role, "admin");
    assert_int_equal(row.disabled, 0);
    /* changing a disabled admin's role is not guarded: it is not an active admin */
    update_ok(f, admin3, &demote);
}

static void test_list(void **state)
{
    struct fixture *f = *state;
    json_t *list, *items, *item;
    struct err e;
    char *dump;
    size_t i;

    create_ok(f, "zaid", "viewer", NULL);
    create_ok(f, "basma", "analyst", NULL);
    err_clear(&e);
    list = users_list(f->db, &f->local, &e);
    assert_non_null(list);
    assert_false(db_in_transaction(f->db));
    items = json_object_get(list, "items");
    assert_int_equal(json_array_size(items), 3);
    /* sorted by user name */
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "username")), "admin");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "username")), "basma");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 2), "username")), "zaid");
    json_array_foreach(items, i, item) {
        assert_true(id_valid(json_string_value(json_object_get(item, "id"))));
        assert_true(json_is_string(json_object_get(item, "role")));
        assert_true(json_is_boolean(json_object_get(item, "disabled")));
        assert_true(json_is_array(json_object_get(item, "sites")));
    }
    dump = json_dumps(list, 0);
    assert_null(strstr(dump, "argon2"));
    free(dump);
    json_decref(list);
}

/* The permission names users_me lists for a role, in order. */
static void expect_permissions(struct fixture *f, const char *user_id, enum role role, const char *const *want,
                               size_t nwant)
{
    struct caller who;
    json_t *me, *perms;
    struct err e;
    size_t i;

    memset(&who, 0, sizeof(who));
    who.authenticated = 1;
    snprintf(who.user_id, sizeof(who.user_id), "%s", user_id);
    who.role = role;
    err_clear(&e);
    me = users_me(f->db, &who, &e);
    if (me == NULL)
        fail_msg("users_me: %s", e.message);
    perms = json_object_get(me, "permissions");
    assert_true(json_is_array(perms));
    if (json_array_size(perms) != nwant)
        fail_msg("%s has %zu permissions, want %zu", role_name(role), json_array_size(perms), nwant);
    for (i = 0; i < nwant; i++)
        assert_string_equal(json_string_value(json_array_get(perms, i)), want[i]);
    assert_string_equal(json_string_value(json_object_get(me, "id")), user_id);
    assert_true(json_is_array(json_object_get(me, "sites")));
    json_decref(me);
}

static void test_me(void **state)
{
    static const char *const admin_perms[] = {
        "session", "users.manage", "sites.manage", "audit.read", "patient.read", "patient.write",
        "patient.delete", "clinical.read", "clinical.write", "export", "aggregate.read", "sync.manage",
        "forms.manage",
    };
    static const char *const analyst_perms[] = { "session", "aggregate.read" };
    struct fixture *f = *state;
    struct caller who;
    char analyst[ID_LEN];
    struct err e;
    json_t *me;

    expect_permissions(f, f->admin_id, ROLE_ADMIN, admin_perms, sizeof(admin_perms) / sizeof(admin_perms[0]));
    create_ok(f, "analyst1", "analyst", analyst);
    expect_permissions(f, analyst, ROLE_ANALYST, analyst_perms, sizeof(analyst_perms) / sizeof(analyst_perms[0]));

    /* the user's own fields */
    memset(&who, 0, sizeof(who));
    snprintf(who.user_id, sizeof(who.user_id), "%s", analyst);
    who.role = ROLE_ANALYST;
    me = users_me(f->db, &who, &e);
    assert_string_equal(json_string_value(json_object_get(me, "username")), "analyst1");
    assert_string_equal(json_string_value(json_object_get(me, "role")), "analyst");
    json_decref(me);

    /* a caller whose account is gone is not signed in */
    snprintf(who.user_id, sizeof(who.user_id), "00000000-0000-7000-8000-000000000000");
    err_clear(&e);
    assert_null(users_me(f->db, &who, &e));
    assert_int_equal(e.kind, ERR_UNAUTHENTICATED);
    assert_string_equal(e.code, "not_signed_in");
}

static void test_find_id(void **state)
{
    struct fixture *f = *state;
    char id[ID_LEN];
    struct err e;

    err_clear(&e);
    assert_int_equal(users_find_id(f->db, "ADMIN", id, &e), 0);
    assert_string_equal(id, f->admin_id);
    assert_int_equal(users_find_id(f->db, "nobody", id, &e), -1);
    assert_int_equal(e.kind, ERR_NOT_FOUND);
    assert_string_equal(e.code, "user_not_found");
    assert_int_equal(users_find_id(f->db, "not valid!", id, &e), -1);
    assert_int_equal(e.kind, ERR_INVALID);
    assert_string_equal(e.code, "invalid_username");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_ok_and_normalised, setup, teardown),
        cmocka_unit_test(test_normalise_username),
        cmocka_unit_test_setup_teardown(test_create_bad_usernames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_weak_passwords, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_bad_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_full_name_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_sites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_partial_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_me, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_id, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
