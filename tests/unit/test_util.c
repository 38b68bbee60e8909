/* test_util.c — unit tests of the small helpers (core/util.c): range-checked integer parsing, time
 * formatting, clocks, bounded file reading and password files. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "core/util.h"

/* Expect s to parse in [min, max] to want. */
static void expect_int(const char *s, int64_t min, int64_t max, int64_t want)
{
    const char *errstr = "unset";
    int64_t out = 12345;

    if (parse_int64(s, min, max, &out, &errstr) != 0)
        fail_msg("parse_int64('%s') failed: %s", s, errstr ? errstr : "(null)");
    assert_null(errstr);
    if (out != want)
        fail_msg("parse_int64('%s') gave %lld, want %lld", s, (long long)out, (long long)want);
}

/* Expect s to be refused with this errstr, leaving the output untouched. */
static void expect_int_error(const char *s, int64_t min, int64_t max, const char *want_err)
{
    const char *errstr = NULL;
    int64_t out = 12345;

    if (parse_int64(s, min, max, &out, &errstr) != -1)
        fail_msg("parse_int64('%s') succeeded with %lld; want '%s'", s ? s : "(null)", (long long)out, want_err);
    assert_non_null(errstr);
    if (strcmp(errstr, want_err) != 0)
        fail_msg("parse_int64('%s') said '%s'; want '%s'", s ? s : "(null)", errstr, want_err);
    assert_int_equal(out, 12345);
}

static void test_parse_int64_ranges(void **state)
{
    (void)state;
    expect_int("0", 0, 10, 0);
    expect_int("10", 0, 10, 10);
    expect_int("-10", -10, 10, -10);
    expect_int("-0", 0, 0, 0);
    expect_int("007", 0, 10, 7);
    expect_int("9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX);
    expect_int("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN);
    expect_int_error("11", 0, 10, "too large");
    expect_int_error("-1", 0, 10, "too small");
    expect_int_error("-11", -10, 10, "too small");
    expect_int_error("0", 1, 500, "too small");
    expect_int_error("501", 1, 500, "too large");
}

static void test_parse_int64_overflow(void **state)
{
    (void)state;
    expect_int_error("9223372036854775808", INT64_MIN, INT64_MAX, "too large");
    expect_int_error("99999999999999999999999999", INT64_MIN, INT64_MAX, "too large");
    expect_int_error("-9223372036854775809", INT64_MIN, INT64_MAX, "too small");
    expect_int_error("-99999999999999999999999999", INT64_MIN, INT64_MAX, "too small");
    /* out of int64 range with a narrow range is still reported on the right side */
    expect_int_error("99999999999999999999999999", 0, 100, "too large");
    expect_int_error("-99999999999999999999999999", 0, 100, "too small");
}

static void test_parse_int64_garbage(void **state)
{
    static const char *const bad[] = {
        "", "abc", "12abc", "1 2", " 12", "12 ", "+12", "0x10", "1e3", "1.5", "-", "--1", "- 1", "12\n",
        "\t1", "１２" /* full-width digits */, "1,000",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_int_error(bad[i], INT64_MIN, INT64_MAX, "invalid");
    expect_int_error(NULL, INT64_MIN, INT64_MAX, "invalid");
}

static void test_format_time_ms(void **state)
{
    char out[32];

    (void)state;
    format_time_ms(0, out, sizeof(out));
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    format_time_ms(1764328480123LL, out, sizeof(out));
    assert_string_equal(out, "2025-11-28T11:14:40.123Z");
    format_time_ms(951782400000LL, out, sizeof(out));       /* leap day of a century leap year */
    assert_string_equal(out, "2000-02-29T00:00:00.000Z");
    format_time_ms(1709210096789LL, out, sizeof(out));
    assert_string_equal(out, "2024-02-29T12:34:56.789Z");
    format_time_ms(253402300799999LL, out, sizeof(out));
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    format_time_ms(1001, out, sizeof(out));
    assert_string_equal(out, "1970-01-01T00:00:01.001Z");
    /* a short buffer is truncated, not overrun */
    memset(out, 'Z', sizeof(out));
    format_time_ms(0, out, 11);
    assert_string_equal(out, "1970-01-01");
    assert_int_equal(out[11], 'Z');
}

/* Times before 1970 are ms-since-epoch too (a record imported from an old register); each must still
 * come out as a valid RFC 3339 time, with the milliseconds counted forwards from the second. */
static void test_format_time_ms_before_1970(void **state)
{
    char out[32];

    (void)state;
    format_time_ms(-1000, out, sizeof(out));
    assert_string_equal(out, "1969-12-31T23:59:59.000Z");
    format_time_ms(-1, out, sizeof(out));
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    format_time_ms(-1500, out, sizeof(out));
    assert_string_equal(out, "1969-12-31T23:59:58.500Z");
}

static void test_clocks(void **state)
{
    int64_t ms = now_ms(), us1, us2;
    int i;

    (void)state;
    /* after 2024-01-01 and before 2100-01-01: the clock is in milliseconds, not seconds or microseconds */
    assert_true(ms > 1704067200000LL);
    assert_true(ms < 4102444800000LL);
    us1 = monotonic_us();
    for (i = 0; i < 1000; i++) {
        us2 = monotonic_us();
        assert_true(us2 >= us1);
        us1 = us2;
    }
    usleep(2000);
    assert_true(monotonic_us() - us1 >= 2000);
}

static void test_str_helpers(void **state)
{
    (void)state;
    assert_true(str_equal("abc", "abc"));
    assert_false(str_equal("abc", "abd"));
    assert_false(str_equal("abc", "ab"));
    assert_true(str_equal("", ""));
    assert_true(str_has_prefix("/api/v1/users", "/api/"));
    assert_true(str_has_prefix("abc", ""));
    assert_true(str_has_prefix("abc", "abc"));
    assert_false(str_has_prefix("ab", "abc"));
    assert_false(str_has_prefix("xabc", "abc"));
}

/* A fresh temp directory for file tests; *dir is freed by tu_remove_dir. */
static char *make_dir(void)
{
    char *dir = tu_temp_path();

    assert_int_equal(mkdir(dir, 0700), 0);
    return dir;
}

static char *write_file(const char *dir, const char *name, const void *data, size_t n)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    FILE *f;

    assert_non_null(path);
    sprintf(path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void test_read_file(void **state)
{
    char *dir = make_dir(), *path, *p, data[100];
    size_t len = 0;

    (void)state;
    memset(data, 'd', sizeof(data));
    data[50] = '\0';    /* binary content with a NUL is read whole */
    path = write_file(dir, "f", data, sizeof(data));

    p = read_file(path, 100, &len);
    assert_non_null(p);
    assert_int_equal(len, 100);
    assert_memory_equal(p, data, 100);
    assert_int_equal(p[100], '\0');
    free(p);

    p = read_file(path, 1000, NULL);
    assert_non_null(p);
    free(p);

    /* one byte over the limit */
    errno = 0;
    assert_null(read_file(path, 99, &len));
    assert_int_equal(errno, EFBIG);
    errno = 0;
    assert_null(read_file(path, 0, &len));
    assert_int_equal(errno, EFBIG);
    free(path);

    /* empty file */
    path = write_file(dir, "empty", "", 0);
    len = 99;
    p = read_file(path, 0, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    assert_string_equal(p, "");
    free(p);
    free(path);

    /* missing file and directory */
    path = malloc(strlen(dir) + 10);
    sprintf(path, "%s/missing", dir);
    errno = 0;
    assert_null(read_file(path, 100, &len));
    assert_int_equal(errno, ENOENT);
    free(path);
    errno = 0;
    assert_null(read_file(dir, 1 << 20, &len));
    assert_int_equal(errno, EINVAL);
    tu_remove_dir(dir);
}

static void test_read_password_file(void **state)
{
    static const struct { const char *content; const char *want; } cases[] = {
        { "secret-password\n", "secret-password" },
        { "secret-password\r\n", "secret-password" },
        { "secret-password", "secret-password" },
        { "first line\nsecond line\n", "first line" },
        { "  spaces kept  \n", "  spaces kept  " },
        { "\n", "" },
        { "", "" },
    };
    char *dir = make_dir(), *path, *p, big[5000];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        path = write_file(dir, "pw", cases[i].content, strlen(cases[i].content));
        p = read_password_file(path);
        assert_non_null(p);
        if (strcmp(p, cases[i].want) != 0)
            fail_msg("password file case %zu: got '%s', want '%s'", i, p, cases[i].want);
        free(p);
        free(path);
    }
    /* a password file is small: more than 4 KiB is refused */
    memset(big, 'p', sizeof(big));
    path = write_file(dir, "big", big, sizeof(big));
    errno = 0;
    assert_null(read_password_file(path));
    assert_int_equal(errno, EFBIG);
    free(path);
    path = malloc(strlen(dir) + 10);
    sprintf(path, "%s/missing", dir);
    assert_null(read_password_file(path));
    free(path);
    tu_remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_int64_ranges),
        cmocka_unit_test(test_parse_int64_overflow),
        cmocka_unit_test(test_parse_int64_garbage),
        cmocka_unit_test(test_format_time_ms),
        cmocka_unit_test(test_format_time_ms_before_1970),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_str_helpers),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_read_password_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
