/* fuzz_names.c — libFuzzer target for core/names: the input, split at the first NUL or newline into two
 * names, goes through names_fold, names_fold_ready, names_tokens, names_phonetic_key, names_keys,
 * names_similarity and names_search_score. Checks the module's promises: output is lower-case ASCII words
 * with single spaces and within its buffer, a name just folded is ready, tokens and keys are bounded,
 * similarities lie in [0, 1] and are symmetric.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Trap unless s is empty or lower-case ASCII words separated by single spaces, shorter than cap. */
static void check_folded(const char *s, int n, size_t cap)
{
    int i;

    if (n < 0)
        return;
    if ((size_t)n >= cap || (int)strlen(s) != n)
        __builtin_trap();
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == ' ') {
            if (i == 0 || i == n - 1 || s[i + 1] == ' ')
                __builtin_trap();
        } else if (c < 'a' || c > 'z') {
            __builtin_trap();
        }
    }
}

static void check_score(double s)
{
    if (!(s >= 0.0 && s <= 1.0))
        __builtin_trap();
}

static void one_name(const char *name)
{
    char folded[NAMES_FOLD_MAX], small[9], key[NAMES_KEY_MAX], keys[NAMES_KEYS_MAX];
    struct names_tokens t;
    int n, i;

    n = names_fold(name, folded, sizeof(folded));
    check_folded(folded, n, sizeof(folded));
    /* a name just folded has every transliterator it needs compiled */
    if (n >= 0 && !names_fold_ready(name))
        __builtin_trap();
    check_folded(small, names_fold(name, small, sizeof(small)), sizeof(small));
    if (n < 0)
        return;
    names_tokens(folded, &t);
    if (t.n < 0 || t.n > NAMES_TOKENS_MAX)
        __builtin_trap();
    for (i = 0; i < t.n; i++) {
        if (strlen(t.tok[i]) >= NAMES_TOKEN_MAX)
            __builtin_trap();
        n = names_phonetic_key(t.tok[i], key, sizeof(key));
        if (n < 0 || (size_t)n >= sizeof(key) || strlen(key) != (size_t)n)
            __builtin_trap();
    }
    if (names_keys(name, keys, sizeof(keys)) < 0 || strlen(keys) >= sizeof(keys))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *a, *b;
    size_t split;
    double s, r;

    if (size > 4096)
        return 0;
    for (split = 0; split < size && data[split] != 0 && data[split] != '\n'; split++)
        ;
    a = malloc(split + 1);
    b = malloc(size - split + 1);
    if (!a || !b)
        abort();
    memcpy(a, data, split);
    a[split] = '\0';
    if (split < size)
        memcpy(b, data + split + 1, size - split - 1);
    b[split < size ? size - split - 1 : 0] = '\0';

    one_name(a);
    one_name(b);
    s = names_similarity(a, b);
    r = names_similarity(b, a);
    check_score(s);
    if (s != r)
        __builtin_trap();
    check_score(names_search_score(a, b));
    check_score(names_search_score(b, a));
    free(a);
    free(b);
    return 0;
}
