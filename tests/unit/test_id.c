/* test_id.c — unit tests of record identifiers (core/id.c): UUIDv7 text format, version and variant,
 * uniqueness, the millisecond time prefix, and id_valid() on good and bad input. */
#include "testutil.h"

#include "core/id.h"
#include "core/util.h"

#define UNIQUE_COUNT 100000

/* The 48-bit millisecond timestamp in the first 12 hex digits (8 + 4 around the first dash). */
static int64_t id_time_ms(const char *id)
{
    char hex[13];

    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    return (int64_t)strtoll(hex, NULL, 16);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_format_version_variant(void **state)
{
    char id[ID_LEN];
    int i, j;

    (void)state;
    assert_int_equal(crypto_init(), 0);
    for (i = 0; i < 1000; i++) {
        id_new(id);
        assert_int_equal(strlen(id), 36);
        for (j = 0; j < 36; j++) {
            if (j == 8 || j == 13 || j == 18 || j == 23)
                assert_int_equal(id[j], '-');
            else if (!((id[j] >= '0' && id[j] <= '9') || (id[j] >= 'a' && id[j] <= 'f')))
                fail_msg("id %s has a non lower-case hex character at %d", id, j);
        }
        assert_int_equal(id[14], '7');                      /* version 7 */
        assert_non_null(strchr("89ab", id[19]));            /* variant 10xx */
        assert_true(id_valid(id));
    }
}

static void test_uniqueness(void **state)
{
    char (*ids)[ID_LEN] = malloc((size_t)UNIQUE_COUNT * ID_LEN);
    int i;

    (void)state;
    assert_non_null(ids);
    for (i = 0; i < UNIQUE_COUNT; i++)
        id_new(ids[i]);
    qsort(ids, UNIQUE_COUNT, ID_LEN, cmp_str);
    for (i = 1; i < UNIQUE_COUNT; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate id %s", ids[i]);
    free(ids);
}

static void test_random_bits_vary(void **state)
{
    char a[ID_LEN], b[ID_LEN];
    int i, differ = 0;

    (void)state;
    /* two ids made in the same millisecond still differ in their random tail */
    for (i = 0; i < 100; i++) {
        id_new(a);
        id_new(b);
        if (strcmp(a + 14, b + 14) != 0)
            differ++;
    }
    assert_int_equal(differ, 100);
}

static void test_time_prefix(void **state)
{
    char id[ID_LEN], prev[ID_LEN];
    int64_t before, after, t, prev_t = 0;
    int i;

    (void)state;
    for (i = 0; i < 50; i++) {
        before = now_ms();
        id_new(id);
        after = now_ms();
        t = id_time_ms(id);
        if (t < before || t > after)
            fail_msg("id %s carries time %lld outside [%lld, %lld]", id, (long long)t, (long long)before,
                     (long long)after);
        /* ids made later never sort before earlier ones by their time prefix */
        if (i > 0) {
            assert_true(t >= prev_t);
            assert_true(strncmp(prev, id, 13) <= 0);
        }
        prev_t = t;
        memcpy(prev, id, ID_LEN);
        if (i % 10 == 0)
            usleep(1500);
    }
    /* across a few milliseconds the text itself sorts by creation time */
    {
        char early[ID_LEN], late[ID_LEN];

        id_new(early);
        usleep(3000);
        id_new(late);
        assert_true(strcmp(early, late) < 0);
    }
}

static void test_valid_accepts(void **state)
{
    (void)state;
    assert_true(id_valid("0190f3a2-7b1c-7d4e-8f00-123456789abc"));
    assert_true(id_valid("00000000-0000-0000-0000-000000000000"));
    assert_true(id_valid("ffffffff-ffff-ffff-ffff-ffffffffffff"));
}

static void test_valid_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "0190f3a2-7b1c-7d4e-8f00-123456789ab",      /* 35 characters */
        "0190f3a2-7b1c-7d4e-8f00-123456789abcd",    /* 37 characters */
        "0190F3A2-7B1C-7D4E-8F00-123456789ABC",     /* upper case is not canonical */
        "0190f3a2-7b1c-7d4e-8f00-123456789abC",
        "0190f3a2x7b1c-7d4e-8f00-123456789abc",     /* wrong separator */
        "0190f3a27-b1c-7d4e-8f00-123456789abc",     /* dash in the wrong place */
        "0190f3a2-7b1c-7d4e-8f00-12345678-abc",
        "0190f3a2-7b1c-7d4e-8f00-123456789abg",     /* not hex */
        "0190f3a27b1c7d4e8f00123456789abc",         /* no dashes */
        "{0190f3a2-7b1c-7d4e-8f00-123456789ab}",
        "0190f3a2-7b1c-7d4e-8f00-123456789ab\n",
        " 190f3a2-7b1c-7d4e-8f00-123456789abc",
        "0190f3a2-7b1c-7d4e-8f00-123456789a c",
        "------------------------------------",
        "../../../../etc/passwd-aaaaaaaaaaaaa",
    };
    char with_nul[40] = "0190f3a2-7b1c-7d4e-8f00-123456789abc";
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (id_valid(bad[i]))
            fail_msg("id_valid accepted '%s'", bad[i]);
    assert_false(id_valid(NULL));
    with_nul[10] = '\0';
    assert_false(id_valid(with_nul));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_version_variant),
        cmocka_unit_test(test_uniqueness),
        cmocka_unit_test(test_random_bits_vary),
        cmocka_unit_test(test_time_prefix),
        cmocka_unit_test(test_valid_accepts),
        cmocka_unit_test(test_valid_rejects),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
