/* test_arena.c — unit tests of the region allocator (core/arena.c): many allocations that never overlap,
 * 16-byte alignment, zeroed memory, large allocations, strdup/strndup/printf. */
#include "testutil.h"

#include "core/arena.h"

#define MANY 20000

static int is_zero(const unsigned char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Allocate MANY blocks of varying sizes, fill each with its own byte, then check nothing was overwritten:
 * two allocations sharing memory would show up as a wrong byte. */
static void test_many_allocations_do_not_overlap(void **state)
{
    static unsigned char *ptr[MANY];
    static size_t size[MANY];
    struct arena a;
    size_t i, j;

    (void)state;
    arena_init(&a);
    for (i = 0; i < MANY; i++) {
        size[i] = 1 + (i * 7919) % 300;
        ptr[i] = arena_alloc(&a, size[i]);
        assert_non_null(ptr[i]);
        assert_true(is_zero(ptr[i], size[i]));
        memset(ptr[i], (int)(i & 0xff), size[i]);
    }
    for (i = 0; i < MANY; i++)
        for (j = 0; j < size[i]; j++)
            if (ptr[i][j] != (unsigned char)(i & 0xff))
                fail_msg("allocation %zu byte %zu was overwritten", i, j);
    arena_free(&a);
    assert_null(a.head);
}

static void test_alignment_16(void **state)
{
    static const size_t sizes[] = { 0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 4095, 4096, 4097, 5000,
                                    8191, 8192, 8193, 20000, 1 };
    struct arena a;
    size_t i, round;

    (void)state;
    arena_init(&a);
    for (round = 0; round < 50; round++) {
        for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            void *p = arena_alloc(&a, sizes[i]);

            assert_non_null(p);
            if ((uintptr_t)p % 16 != 0)
                fail_msg("arena_alloc(%zu) returned %p, not 16-byte aligned", sizes[i], p);
        }
        /* strings too come from arena_alloc and must be aligned */
        assert_int_equal((uintptr_t)arena_strdup(&a, "abc") % 16, 0);
        assert_int_equal((uintptr_t)arena_printf(&a, "%d", (int)round) % 16, 0);
    }
    arena_free(&a);
}

static void test_large_allocations(void **state)
{
    struct arena a;
    unsigned char *small1, *big, *small2, *huge;
    size_t i;

    (void)state;
    arena_init(&a);
    small1 = arena_alloc(&a, 10);
    memset(small1, 0xA1, 10);
    big = arena_alloc(&a, 100000);
    assert_non_null(big);
    assert_true(is_zero(big, 100000));
    memset(big, 0xB2, 100000);
    /* a small request after a large one still works and does not land inside the large one */
    small2 = arena_alloc(&a, 10);
    assert_true(small2 + 10 <= big || small2 >= big + 100000);
    memset(small2, 0xC3, 10);
    huge = arena_alloc(&a, 4u << 20);
    assert_true(is_zero(huge, 4u << 20));
    memset(huge, 0xD4, 4u << 20);
    for (i = 0; i < 10; i++) {
        assert_int_equal(small1[i], 0xA1);
        assert_int_equal(small2[i], 0xC3);
    }
    for (i = 0; i < 100000; i++)
        if (big[i] != 0xB2)
            fail_msg("large allocation byte %zu overwritten", i);
    assert_int_equal(huge[(4u << 20) - 1], 0xD4);
    /* exactly around the block size */
    for (i = 4090; i < 4100; i++)
        memset(arena_alloc(&a, i), 0x11, i);
    for (i = 8180; i < 8200; i++)
        memset(arena_alloc(&a, i), 0x22, i);
    arena_free(&a);
}

static void test_strdup_strndup_printf(void **state)
{
    struct arena a;
    char *s, *t, *u, *longs;
    char big[20001];

    (void)state;
    arena_init(&a);
    s = arena_strdup(&a, "hello");
    assert_string_equal(s, "hello");
    t = arena_strdup(&a, "");
    assert_string_equal(t, "");
    u = arena_strndup(&a, "abcdef", 3);
    assert_string_equal(u, "abc");
    assert_string_equal(arena_strndup(&a, "abc", 0), "");
    assert_string_equal(arena_strndup(&a, "abc", 3), "abc");
    assert_string_equal(arena_printf(&a, "%s=%d", "n", 42), "n=42");
    assert_string_equal(arena_printf(&a, "%s", ""), "");
    /* a printf longer than a whole block */
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    longs = arena_printf(&a, "<%s>", big);
    assert_int_equal(strlen(longs), 20002);
    assert_int_equal(longs[0], '<');
    assert_int_equal(longs[20001], '>');
    assert_int_equal(longs[10000], 'k');
    /* the copies are independent of their source */
    longs = arena_strdup(&a, big);
    big[0] = 'X';
    assert_int_equal(longs[0], 'k');
    /* earlier strings survive later allocations */
    assert_string_equal(s, "hello");
    assert_string_equal(u, "abc");
    arena_free(&a);
}

static void test_free_and_reuse(void **state)
{
    struct arena a;

    (void)state;
    arena_init(&a);
    arena_free(&a);     /* freeing an empty arena is fine */
    assert_null(a.head);
    assert_string_equal(arena_strdup(&a, "one"), "one");
    arena_free(&a);
    assert_null(a.head);
    assert_string_equal(arena_strdup(&a, "two"), "two");
    arena_free(&a);
    arena_free(&a);     /* and freeing twice too */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_allocations_do_not_overlap),
        cmocka_unit_test(test_alignment_16),
        cmocka_unit_test(test_large_allocations),
        cmocka_unit_test(test_strdup_strndup_printf),
        cmocka_unit_test(test_free_and_reuse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
