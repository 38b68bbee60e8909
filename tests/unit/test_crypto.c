/* test_crypto.c — unit tests of the libsodium wrappers (core/crypto.c): Argon2id password hashes, the dummy
 * hash, random tokens and passwords, BLAKE2b-256 against independently computed vectors, constant-time
 * comparison and wiping. */
#include "testutil.h"

#include <sodium.h>

/* BLAKE2b-256 vectors computed outside this code base with coreutils: printf 'abc' | b2sum -l 256 (and
 * confirmed with Python's hashlib.blake2b(digest_size=32)). */
#define BLAKE2B256_ABC "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
#define BLAKE2B256_EMPTY "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"

static int setup(void **state)
{
    (void)state;
    return crypto_init();
}

static void test_password_hash_and_verify(void **state)
{
    char h1[CRYPTO_PWHASH_LEN], h2[CRYPTO_PWHASH_LEN];

    (void)state;
    assert_int_equal(crypto_password_hash("correct horse battery", h1), 0);
    assert_true(strncmp(h1, "$argon2id$", 10) == 0);
    assert_true(strlen(h1) < CRYPTO_PWHASH_LEN);
    assert_null(strstr(h1, "correct horse"));
    assert_int_equal(crypto_password_verify(h1, "correct horse battery"), 1);
    assert_int_equal(crypto_password_verify(h1, "correct horse batterY"), 0);
    assert_int_equal(crypto_password_verify(h1, "correct horse battery "), 0);
    assert_int_equal(crypto_password_verify(h1, ""), 0);
    /* a second hash of the same password has its own salt */
    assert_int_equal(crypto_password_hash("correct horse battery", h2), 0);
    assert_string_not_equal(h1, h2);
    assert_int_equal(crypto_password_verify(h2, "correct horse battery"), 1);
    /* fresh hashes use the current parameters */
    assert_int_equal(crypto_password_needs_rehash(h1), 0);
}

static void test_password_verify_malformed(void **state)
{
    char h[CRYPTO_PWHASH_LEN];

    (void)state;
    assert_int_equal(crypto_password_verify("", "x"), 0);
    assert_int_equal(crypto_password_verify("garbage", "garbage"), 0);
    assert_int_equal(crypto_password_verify("$argon2id$v=19$m=1,t=1,p=1$", "x"), 0);
    /* a truncated real hash is malformed too */
    assert_int_equal(crypto_password_hash("another password", h), 0);
    h[strlen(h) - 5] = '\0';
    assert_int_equal(crypto_password_verify(h, "another password"), 0);
}

static void test_password_unicode(void **state)
{
    char h[CRYPTO_PWHASH_LEN];
    const char *pw = "\xd9\x83\xd9\x84\xd9\x85\xd8\xa9 \xd8\xb3\xd8\xb1";    /* Arabic */

    (void)state;
    assert_int_equal(crypto_password_hash(pw, h), 0);
    assert_int_equal(crypto_password_verify(h, pw), 1);
    assert_int_equal(crypto_password_verify(h, "\xd9\x83\xd9\x84\xd9\x85\xd8\xa9 \xd8\xb3"), 0);
}

static void test_needs_rehash_for_weaker_hash(void **state)
{
    char weak[crypto_pwhash_STRBYTES];

    (void)state;
    /* made directly with libsodium at its minimum cost: weaker than the module's parameters */
    assert_int_equal(crypto_pwhash_str_alg(weak, "old password!", strlen("old password!"),
                                           crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN,
                                           crypto_pwhash_ALG_ARGON2ID13), 0);
    assert_int_equal(crypto_password_verify(weak, "old password!"), 1);
    assert_int_equal(crypto_password_needs_rehash(weak), 1);
}

static void test_dummy_hash(void **state)
{
    const char *d1, *d2;

    (void)state;
    d1 = crypto_password_dummy_hash();
    assert_non_null(d1);
    assert_true(strncmp(d1, "$argon2id$", 10) == 0);
    d2 = crypto_password_dummy_hash();
    assert_ptr_equal(d1, d2);
    assert_string_equal(d1, d2);
    /* it is a real, well-formed hash (so verifying against it costs the same as a real one) of a
     * password nobody knows */
    assert_int_equal(crypto_password_needs_rehash(d1), 0);
    assert_int_equal(crypto_password_verify(d1, ""), 0);
    assert_int_equal(crypto_password_verify(d1, "password"), 0);
    assert_int_equal(crypto_password_verify(d1, TU_ADMIN_PASSWORD), 0);
}

static int is_base64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int cmp_token(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_random_token(void **state)
{
    static char tokens[2000][CRYPTO_TOKEN_LEN];
    int i, j, seen[256] = { 0 }, distinct = 0;

    (void)state;
    for (i = 0; i < 2000; i++) {
        memset(tokens[i], '#', CRYPTO_TOKEN_LEN);
        crypto_random_token(tokens[i]);
        assert_int_equal(strlen(tokens[i]), CRYPTO_TOKEN_LEN - 1);     /* 43 = 32 bytes unpadded */
        for (j = 0; j < CRYPTO_TOKEN_LEN - 1; j++) {
            if (!is_base64url(tokens[i][j]))
                fail_msg("token %s has '%c', not base64url", tokens[i], tokens[i][j]);
            seen[(unsigned char)tokens[i][j]] = 1;
        }
    }
    qsort(tokens, 2000, CRYPTO_TOKEN_LEN, cmp_token);
    for (i = 1; i < 2000; i++)
        if (strcmp(tokens[i - 1], tokens[i]) == 0)
            fail_msg("duplicate token %s", tokens[i]);
    /* 86000 characters drawn: every one of the 64 symbols shows up */
    for (i = 0; i < 256; i++)
        distinct += seen[i];
    assert_int_equal(distinct, 64);
    /* tokens decode back to 32 bytes */
    {
        unsigned char raw[64];
        size_t n = 0;

        assert_int_equal(sodium_base642bin(raw, sizeof(raw), tokens[0], strlen(tokens[0]), NULL, &n, NULL,
                                           sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
        assert_int_equal(n, 32);
    }
}

static void test_random_password(void **state)
{
    char pw[64], small[5];
    int i, j;

    (void)state;
    for (i = 0; i < 500; i++) {
        crypto_random_password(pw, sizeof(pw));
        assert_int_equal(strlen(pw), 20);
        for (j = 0; j < 20; j++) {
            if (strchr("0O1lI", pw[j]) || !((pw[j] >= 'a' && pw[j] <= 'z') || (pw[j] >= 'A' && pw[j] <= 'Z')
                                            || (pw[j] >= '2' && pw[j] <= '9')))
                fail_msg("random password %s has ambiguous or odd character '%c'", pw, pw[j]);
        }
    }
    /* a short buffer gets a shorter, terminated password */
    memset(small, '#', sizeof(small));
    crypto_random_password(small, sizeof(small));
    assert_int_equal(strlen(small), 4);
}

static void test_random_uniform_and_bytes(void **state)
{
    unsigned char a[32], b[32], zero[32] = { 0 };
    int i, hits[10] = { 0 };

    (void)state;
    for (i = 0; i < 10000; i++) {
        uint32_t v = crypto_random_uniform(10);

        assert_true(v < 10);
        hits[v]++;
    }
    for (i = 0; i < 10; i++)
        assert_true(hits[i] > 500);     /* expected 1000 each; 500 is far outside chance */
    assert_int_equal(crypto_random_uniform(1), 0);
    crypto_random_bytes(a, sizeof(a));
    crypto_random_bytes(b, sizeof(b));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
}

static void test_hash_hex_known_vectors(void **state)
{
    char out[CRYPTO_HASH_HEX_LEN];

    (void)state;
    crypto_hash_hex("abc", 3, out);
    assert_string_equal(out, BLAKE2B256_ABC);
    crypto_hash_hex("", 0, out);
    assert_string_equal(out, BLAKE2B256_EMPTY);
    crypto_hash_hex("abd", 3, out);
    assert_string_not_equal(out, BLAKE2B256_ABC);
    assert_int_equal(strlen(out), 64);
}

static void test_streaming_hasher_matches(void **state)
{
    struct crypto_hasher h;
    char out[CRYPTO_HASH_HEX_LEN], whole[CRYPTO_HASH_HEX_LEN];
    char data[1000];
    size_t i;

    (void)state;
    crypto_hasher_init(&h);
    crypto_hasher_update(&h, "a", 1);
    crypto_hasher_update(&h, "", 0);
    crypto_hasher_update(&h, "bc", 2);
    crypto_hasher_final_hex(&h, out);
    assert_string_equal(out, BLAKE2B256_ABC);

    for (i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 31);
    crypto_hash_hex(data, sizeof(data), whole);
    crypto_hasher_init(&h);
    for (i = 0; i < sizeof(data); i += 7)
        crypto_hasher_update(&h, data + i, sizeof(data) - i < 7 ? sizeof(data) - i : 7);
    crypto_hasher_final_hex(&h, out);
    assert_string_equal(out, whole);
}

static void test_equal_and_wipe(void **state)
{
    char a[CRYPTO_TOKEN_LEN], b[CRYPTO_TOKEN_LEN];
    unsigned char secret[16];
    size_t i;

    (void)state;
    crypto_random_token(a);
    memcpy(b, a, sizeof(a));
    assert_int_equal(crypto_equal(a, b, CRYPTO_TOKEN_LEN - 1), 1);
    b[CRYPTO_TOKEN_LEN - 2] ^= 1;      /* last character differs */
    assert_int_equal(crypto_equal(a, b, CRYPTO_TOKEN_LEN - 1), 0);
    b[CRYPTO_TOKEN_LEN - 2] ^= 1;
    b[0] ^= 1;                         /* first character differs */
    assert_int_equal(crypto_equal(a, b, CRYPTO_TOKEN_LEN - 1), 0);
    assert_int_equal(crypto_equal("x", "y", 0), 1);
    assert_int_equal(crypto_equal("abc", "abd", 2), 1);

    memset(secret, 0x5a, sizeof(secret));
    crypto_wipe(secret, sizeof(secret));
    for (i = 0; i < sizeof(secret); i++)
        assert_int_equal(secret[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_hash_and_verify),
        cmocka_unit_test(test_password_verify_malformed),
        cmocka_unit_test(test_password_unicode),
        cmocka_unit_test(test_needs_rehash_for_weaker_hash),
        cmocka_unit_test(test_dummy_hash),
        cmocka_unit_test(test_random_token),
        cmocka_unit_test(test_random_password),
        cmocka_unit_test(test_random_uniform_and_bytes),
        cmocka_unit_test(test_hash_hex_known_vectors),
        cmocka_unit_test(test_streaming_hasher_matches),
        cmocka_unit_test(test_equal_and_wipe),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
