/* fuzz_parse_int.c — libFuzzer target for the small string parsers with hard rules: parse_int64()
 * (range-checked integers, used for query parameters such as ?limit=) and users_normalise_username().
 * The input is treated as a NUL-terminated string; the results are checked against their contracts.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "services/users.h"
#include "store/accounts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One parse_int64 call in [min, max]; any success must lie in range. */
static void check_int(const char *s, int64_t min, int64_t max)
{
    const char *errstr = (const char *)1;
    int64_t v = 12345;

    if (parse_int64(s, min, max, &v, &errstr) == 0) {
        if (errstr != NULL || v < min || v > max)
            __builtin_trap();
    } else if (errstr == NULL || v != 12345) {
        __builtin_trap();
    }
}

static void check_username(const char *s)
{
    char out[USERNAME_MAX + 1];
    struct err e;
    size_t i, n;

    err_clear(&e);
    memset(out, 'X', sizeof(out));
    if (users_normalise_username(s, out, &e) < 0) {
        if (strcmp(e.code, "invalid_username") != 0)
            __builtin_trap();
        return;
    }
    n = strlen(out);
    if (n == 0 || n > USERNAME_MAX || n != strlen(s))
        __builtin_trap();
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];

        if (!(islower(c) || isdigit(c) || (i > 0 && strchr("._-", c) != NULL)))
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;

    if (size > 4096)
        return 0;
    s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';

    check_int(s, INT64_MIN, INT64_MAX);
    check_int(s, 0, 0);
    check_int(s, 1, 1000);
    check_int(s, -5, 5);
    check_username(s);

    free(s);
    return 0;
}
