/* test_perm.c — unit tests of roles and the permission matrix (services/perm.c). The expected matrix is
 * written here from the documented rules, not copied from the table: admin may do everything; an analyst
 * never sees patients; a viewer never writes; a registrar never touches clinical records; only admins
 * manage accounts and sites and read the audit log; everyone holds PERM_PUBLIC and PERM_SESSION. */
#include "testutil.h"

#include "services/perm.h"

static void test_role_round_trip(void **state)
{
    static const char *const names[] = { "admin", "clinician", "registrar", "analyst", "viewer" };
    enum role r;
    int i;

    (void)state;
    assert_int_equal(ROLE_COUNT, 5);
    for (i = 0; i < ROLE_COUNT; i++) {
        assert_string_equal(role_name((enum role)i), names[i]);
        assert_int_equal(role_parse(names[i], &r), 0);
        assert_int_equal(r, i);
        assert_int_equal(role_parse(role_name(r), &r), 0);
        assert_int_equal(r, i);
    }
}

static void test_role_parse_rejects(void **state)
{
    static const char *const bad[] = { "", "Admin", "ADMIN", "admin ", " admin", "root", "administrator",
                                       "adm", "?", "doctor", "viewer\n" };
    enum role r = ROLE_VIEWER;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (role_parse(bad[i], &r) != -1)
            fail_msg("role_parse accepted '%s'", bad[i]);
        assert_int_equal(r, ROLE_VIEWER);   /* untouched on failure */
    }
    assert_int_equal(role_parse(NULL, &r), -1);
    assert_string_equal(role_name(ROLE_COUNT), "?");
    assert_string_equal(role_name((enum role)-1), "?");
}

static void test_perm_names(void **state)
{
    static const char *const want[PERM_COUNT] = {
        [PERM_PUBLIC] = "public",
        [PERM_SESSION] = "session",
        [PERM_PEER] = "peer",
        [PERM_USERS_MANAGE] = "users.manage",
        [PERM_SITES_MANAGE] = "sites.manage",
        [PERM_AUDIT_READ] = "audit.read",
        [PERM_PATIENT_READ] = "patient.read",
        [PERM_PATIENT_WRITE] = "patient.write",
        [PERM_PATIENT_DELETE] = "patient.delete",
        [PERM_CLINICAL_READ] = "clinical.read",
        [PERM_CLINICAL_WRITE] = "clinical.write",
        [PERM_EXPORT] = "export",
        [PERM_AGGREGATE_READ] = "aggregate.read",
        [PERM_SYNC_MANAGE] = "sync.manage",
        [PERM_FORMS_MANAGE] = "forms.manage",
    };
    int p, q;

    (void)state;
    for (p = 0; p < PERM_COUNT; p++) {
        assert_non_null(want[p]);
        assert_string_equal(perm_name((enum perm)p), want[p]);
        assert_true(strlen(perm_description((enum perm)p)) > 5);
        for (q = 0; q < p; q++)
            assert_string_not_equal(perm_name((enum perm)p), perm_name((enum perm)q));
    }
    assert_string_equal(perm_name(PERM_COUNT), "?");
    assert_string_equal(perm_description(PERM_COUNT), "?");
}

static void test_public_and_session_for_every_role(void **state)
{
    int r;

    (void)state;
    for (r = 0; r < ROLE_COUNT; r++) {
        assert_true(perm_allows((enum role)r, PERM_PUBLIC));
        assert_true(perm_allows((enum role)r, PERM_SESSION));
    }
}

/* Every permission a user can hold: PERM_PEER is for peer nodes (checked by signature), not users. */
static void test_admin_has_everything(void **state)
{
    int p;

    (void)state;
    for (p = 0; p < PERM_COUNT; p++)
        if (p != PERM_PEER && !perm_allows(ROLE_ADMIN, (enum perm)p))
            fail_msg("admin lacks %s", perm_name((enum perm)p));
}

static void test_no_role_is_a_peer(void **state)
{
    int r;

    (void)state;
    for (r = 0; r < ROLE_COUNT; r++)
        if (perm_allows((enum role)r, PERM_PEER))
            fail_msg("%s holds peer: a session would pass for a node's signature", role_name((enum role)r));
}

static void test_only_admin_administers(void **state)
{
    static const enum perm admin_only[] = { PERM_USERS_MANAGE, PERM_SITES_MANAGE, PERM_AUDIT_READ,
                                            PERM_SYNC_MANAGE };
    size_t i;
    int r;

    (void)state;
    for (r = 0; r < ROLE_COUNT; r++) {
        if (r == ROLE_ADMIN)
            continue;
        for (i = 0; i < sizeof(admin_only) / sizeof(admin_only[0]); i++)
            if (perm_allows((enum role)r, admin_only[i]))
                fail_msg("%s holds %s", role_name((enum role)r), perm_name(admin_only[i]));
    }
}

static void test_analyst_never_sees_patients(void **state)
{
    (void)state;
    assert_false(perm_allows(ROLE_ANALYST, PERM_PATIENT_READ));
    assert_false(perm_allows(ROLE_ANALYST, PERM_PATIENT_WRITE));
    assert_false(perm_allows(ROLE_ANALYST, PERM_PATIENT_DELETE));
    assert_false(perm_allows(ROLE_ANALYST, PERM_CLINICAL_READ));
    assert_false(perm_allows(ROLE_ANALYST, PERM_CLINICAL_WRITE));
    assert_false(perm_allows(ROLE_ANALYST, PERM_EXPORT));
    assert_true(perm_allows(ROLE_ANALYST, PERM_AGGREGATE_READ));
}

static void test_viewer_never_writes(void **state)
{
    (void)state;
    assert_false(perm_allows(ROLE_VIEWER, PERM_PATIENT_WRITE));
    assert_false(perm_allows(ROLE_VIEWER, PERM_PATIENT_DELETE));
    assert_false(perm_allows(ROLE_VIEWER, PERM_CLINICAL_WRITE));
    assert_false(perm_allows(ROLE_VIEWER, PERM_USERS_MANAGE));
    assert_false(perm_allows(ROLE_VIEWER, PERM_SITES_MANAGE));
    assert_true(perm_allows(ROLE_VIEWER, PERM_PATIENT_READ));
}

static void test_registrar_no_clinical(void **state)
{
    (void)state;
    assert_false(perm_allows(ROLE_REGISTRAR, PERM_CLINICAL_READ));
    assert_false(perm_allows(ROLE_REGISTRAR, PERM_CLINICAL_WRITE));
    assert_false(perm_allows(ROLE_REGISTRAR, PERM_EXPORT));     /* an export carries the clinical record */
    /* registration is the registrar's job */
    assert_true(perm_allows(ROLE_REGISTRAR, PERM_PATIENT_READ));
    assert_true(perm_allows(ROLE_REGISTRAR, PERM_PATIENT_WRITE));
}

static void test_clinician(void **state)
{
    (void)state;
    assert_true(perm_allows(ROLE_CLINICIAN, PERM_PATIENT_READ));
    assert_true(perm_allows(ROLE_CLINICIAN, PERM_PATIENT_WRITE));
    assert_true(perm_allows(ROLE_CLINICIAN, PERM_CLINICAL_READ));
    assert_true(perm_allows(ROLE_CLINICIAN, PERM_CLINICAL_WRITE));
    assert_true(perm_allows(ROLE_CLINICIAN, PERM_EXPORT));
}

/* The whole matrix as docs/security.md ("Roles and permissions") prints it, cell by cell. */
static void test_matrix_matches_security_doc(void **state)
{
    static const struct {
        enum perm perm;
        const char *cells;  /* admin clinician registrar analyst viewer: y or - */
    } doc[] = {
        { PERM_PUBLIC, "yyyyy" },
        { PERM_SESSION, "yyyyy" },
        { PERM_PEER, "-----" },
        { PERM_USERS_MANAGE, "y----" },
        { PERM_SITES_MANAGE, "y----" },
        { PERM_AUDIT_READ, "y----" },
        { PERM_PATIENT_READ, "yyy-y" },
        { PERM_PATIENT_WRITE, "yyy--" },
        { PERM_PATIENT_DELETE, "y----" },
        { PERM_CLINICAL_READ, "yy--y" },
        { PERM_CLINICAL_WRITE, "yy---" },
        { PERM_EXPORT, "yy---" },
        { PERM_AGGREGATE_READ, "yy-y-" },
        { PERM_SYNC_MANAGE, "y----" },
        { PERM_FORMS_MANAGE, "y----" },
    };
    static const enum role columns[] = { ROLE_ADMIN, ROLE_CLINICIAN, ROLE_REGISTRAR, ROLE_ANALYST, ROLE_VIEWER };
    size_t i, j;

    (void)state;
    assert_int_equal(sizeof(doc) / sizeof(doc[0]), PERM_COUNT);
    for (i = 0; i < sizeof(doc) / sizeof(doc[0]); i++)
        for (j = 0; j < 5; j++)
            if (perm_allows(columns[j], doc[i].perm) != (doc[i].cells[j] == 'y'))
                fail_msg("%s / %s: the table says %s, the documentation says %s", perm_name(doc[i].perm),
                         role_name(columns[j]), perm_allows(columns[j], doc[i].perm) ? "yes" : "no",
                         doc[i].cells[j] == 'y' ? "yes" : "no");
}

static void test_out_of_range_denied(void **state)
{
    (void)state;
    assert_false(perm_allows(ROLE_COUNT, PERM_PUBLIC));
    assert_false(perm_allows((enum role)-1, PERM_SESSION));
    assert_false(perm_allows(ROLE_ADMIN, PERM_COUNT));
    assert_false(perm_allows(ROLE_ADMIN, (enum perm)-1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_round_trip),
        cmocka_unit_test(test_role_parse_rejects),
        cmocka_unit_test(test_perm_names),
        cmocka_unit_test(test_public_and_session_for_every_role),
        cmocka_unit_test(test_admin_has_everything),
        cmocka_unit_test(test_no_role_is_a_peer),
        cmocka_unit_test(test_only_admin_administers),
        cmocka_unit_test(test_analyst_never_sees_patients),
        cmocka_unit_test(test_viewer_never_writes),
        cmocka_unit_test(test_registrar_no_clinical),
        cmocka_unit_test(test_clinician),
        cmocka_unit_test(test_matrix_matches_security_doc),
        cmocka_unit_test(test_out_of_range_denied),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
