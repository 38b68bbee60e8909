/* test_buf.c — unit tests of the bounded growable buffer (core/buf.c): growth, the hard maximum,
 * printf, detach ownership, NUL termination and reset. */
#include "testutil.h"

#include "core/buf.h"

/* The invariant buf.h promises after every operation: data never NULL, NUL at data[len], len <= max. */
static void check_invariants(const struct buf *b)
{
    assert_non_null(b->data);
    assert_int_equal(b->data[b->len], '\0');
    assert_true(b->len <= b->max);
    if (b->cap)
        assert_true(b->len < b->cap);
}

static void test_init_is_empty_string(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 100);
    check_invariants(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(b.max, 100);
    buf_free(&b);
    check_invariants(&b);
    assert_int_equal(b.max, 100);
}

static void test_growth_keeps_content(void **state)
{
    struct buf b;
    size_t i;

    (void)state;
    buf_init(&b, 1 << 20);
    for (i = 0; i < 10000; i++) {
        char c = (char)('a' + i % 26);

        assert_int_equal(buf_append(&b, &c, 1), 0);
        assert_int_equal(b.len, i + 1);
        check_invariants(&b);
    }
    for (i = 0; i < 10000; i++)
        assert_int_equal(b.data[i], 'a' + i % 26);
    assert_true(b.cap > 10000);
    /* one big append that crosses several doublings at once */
    {
        char big[70000];

        memset(big, 'z', sizeof(big));
        assert_int_equal(buf_append(&b, big, sizeof(big)), 0);
        assert_int_equal(b.len, 80000);
        assert_int_equal(b.data[9999], 'a' + 9999 % 26);
        assert_int_equal(b.data[10000], 'z');
        assert_int_equal(b.data[79999], 'z');
        check_invariants(&b);
    }
    buf_free(&b);
}

static void test_append_zero_bytes(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    check_invariants(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_append(&b, "x", 1), -1);
    check_invariants(&b);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_max_limit_leaves_buffer_unchanged(void **state)
{
    struct buf b;
    size_t cap;

    (void)state;
    buf_init(&b, 10);
    assert_int_equal(buf_puts(&b, "12345"), 0);
    cap = b.cap;

    /* one byte too many: refused, nothing changes */
    assert_int_equal(buf_append(&b, "abcdef", 6), -1);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "12345");
    assert_int_equal(b.cap, cap);
    check_invariants(&b);

    assert_int_equal(buf_puts(&b, "abcdef"), -1);
    assert_string_equal(b.data, "12345");
    assert_int_equal(buf_printf(&b, "%s", "abcdef"), -1);
    assert_string_equal(b.data, "12345");
    assert_int_equal(buf_printf(&b, "%d", 123456), -1);
    assert_string_equal(b.data, "12345");
    assert_int_equal(b.len, 5);

    /* exactly up to the maximum is allowed */
    assert_int_equal(buf_append(&b, "abcde", 5), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "12345abcde");
    check_invariants(&b);

    /* and then not one byte more */
    assert_int_equal(buf_append(&b, "x", 1), -1);
    assert_int_equal(buf_printf(&b, "x"), -1);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "12345abcde");

    /* a size that would overflow len + n is refused, not wrapped */
    assert_int_equal(buf_append(&b, "x", (size_t)-1), -1);
    assert_int_equal(buf_append(&b, "x", (size_t)-1 - 5), -1);
    assert_int_equal(b.len, 10);
    check_invariants(&b);
    buf_free(&b);
}

static void test_printf(void **state)
{
    struct buf b;
    char want[600];

    (void)state;
    buf_init(&b, 4096);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "42-x");
    assert_int_equal(b.len, 4);
    assert_int_equal(buf_printf(&b, "|%05d|", 7), 0);
    assert_string_equal(b.data, "42-x|00007|");
    /* an empty expansion is fine and changes nothing */
    assert_int_equal(buf_printf(&b, "%s", ""), 0);
    assert_string_equal(b.data, "42-x|00007|");
    check_invariants(&b);

    /* longer than the first allocation: forces a grow in the middle of a printf */
    buf_reset(&b);
    assert_int_equal(buf_printf(&b, "%0500d", 1), 0);
    memset(want, '0', 499);
    want[499] = '1';
    want[500] = '\0';
    assert_int_equal(b.len, 500);
    assert_string_equal(b.data, want);
    check_invariants(&b);

    /* puts mixes with printf */
    buf_reset(&b);
    assert_int_equal(buf_puts(&b, "a"), 0);
    assert_int_equal(buf_printf(&b, "%c%c", 'b', 'c'), 0);
    assert_int_equal(buf_puts(&b, "d"), 0);
    assert_string_equal(b.data, "abcd");
    buf_free(&b);
}

static void test_printf_first_call_into_empty_buffer(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 3);
    assert_int_equal(buf_printf(&b, "%s", ""), 0);
    check_invariants(&b);
    assert_int_equal(buf_printf(&b, "%d", 123), 0);
    assert_string_equal(b.data, "123");
    assert_int_equal(buf_printf(&b, "%d", 4), -1);
    assert_string_equal(b.data, "123");
    buf_free(&b);
}

static void test_detach_transfers_ownership(void **state)
{
    struct buf b;
    size_t len = 99;
    char *p;

    (void)state;
    buf_init(&b, 1000);
    assert_int_equal(buf_puts(&b, "hello, world"), 0);
    p = buf_detach(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 12);
    assert_string_equal(p, "hello, world");

    /* the buffer is re-initialised, empty, keeps its max and no longer refers to p */
    assert_true(b.data != p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 1000);
    check_invariants(&b);
    assert_string_equal(b.data, "");

    /* the buffer can be reused without touching the detached memory */
    assert_int_equal(buf_puts(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    assert_string_equal(p, "hello, world");
    free(p);    /* we own it: ASan would report a double free or a leak otherwise */
    buf_free(&b);
}

static void test_detach_empty_gives_heap_string(void **state)
{
    struct buf b;
    size_t len = 99;
    char *p;

    (void)state;
    buf_init(&b, 10);
    p = buf_detach(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    assert_string_equal(p, "");
    free(p);    /* must be heap memory, not the shared empty string */

    /* NULL len is allowed */
    assert_int_equal(buf_puts(&b, "ab"), 0);
    p = buf_detach(&b, NULL);
    assert_string_equal(p, "ab");
    free(p);
    buf_free(&b);
}

static void test_nul_termination_with_binary(void **state)
{
    static const char bin[] = { 'a', '\0', 'b', '\0', 'c' };
    struct buf b;

    (void)state;
    buf_init(&b, 100);
    assert_int_equal(buf_append(&b, bin, sizeof(bin)), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, bin, sizeof(bin));
    assert_int_equal(b.data[5], '\0');
    check_invariants(&b);
    buf_free(&b);
}

static void test_reset_keeps_storage(void **state)
{
    struct buf b;
    char *data;
    size_t cap;

    (void)state;
    buf_init(&b, 100);
    buf_reset(&b);      /* on a never-allocated buffer */
    check_invariants(&b);
    assert_int_equal(buf_puts(&b, "some text"), 0);
    data = b.data;
    cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    check_invariants(&b);
    assert_int_equal(buf_puts(&b, "xy"), 0);
    assert_string_equal(b.data, "xy");
    /* after reset the full max is available again */
    buf_reset(&b);
    {
        char full[100];

        memset(full, 'q', sizeof(full));
        assert_int_equal(buf_append(&b, full, sizeof(full)), 0);
        assert_int_equal(b.len, 100);
    }
    buf_free(&b);
    check_invariants(&b);
    assert_int_equal(b.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_empty_string),
        cmocka_unit_test(test_growth_keeps_content),
        cmocka_unit_test(test_append_zero_bytes),
        cmocka_unit_test(test_max_limit_leaves_buffer_unchanged),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_printf_first_call_into_empty_buffer),
        cmocka_unit_test(test_detach_transfers_ownership),
        cmocka_unit_test(test_detach_empty_gives_heap_string),
        cmocka_unit_test(test_nul_termination_with_binary),
        cmocka_unit_test(test_reset_keeps_storage),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
