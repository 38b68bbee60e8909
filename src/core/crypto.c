/* crypto.c — libsodium wrappers. Password hashing parameters follow OWASP's Argon2id guidance
 * (m = 19 MiB, t = 2, p = 1): strong enough for an online service, cheap enough for a Raspberry Pi that
 * serves a whole clinic. They are recorded inside every hash, so raising them later re-hashes on login.
 */
#include <assert.h>
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "core/crypto.h"
#include "core/log.h"

#define PW_OPSLIMIT 2ULL
#define PW_MEMLIMIT (19ULL * 1024 * 1024)

static char crypto_dummy[CRYPTO_PWHASH_LEN];
static pthread_once_t crypto_dummy_once = PTHREAD_ONCE_INIT;

_Static_assert(sizeof(struct crypto_hasher) >= sizeof(crypto_generichash_blake2b_state),
               "crypto_hasher too small for libsodium's state");
_Static_assert(CRYPTO_PWHASH_LEN >= crypto_pwhash_STRBYTES, "password hash buffer too small");
_Static_assert(CRYPTO_SIGN_SEED_LEN == crypto_sign_SEEDBYTES, "Ed25519 seed size");
_Static_assert(CRYPTO_SIGN_PUBLIC_LEN == crypto_sign_PUBLICKEYBYTES, "Ed25519 public key size");
_Static_assert(CRYPTO_SIGN_BYTES == crypto_sign_BYTES, "Ed25519 signature size");

int crypto_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

/* Made on first use, not at start-up: Argon2id takes tens of milliseconds and most runs never sign in. */
static void crypto_make_dummy(void)
{
    char pw[32];

    crypto_random_password(pw, sizeof(pw));
    if (crypto_password_hash(pw, crypto_dummy) < 0)
        log_fatal("crypto: out of memory hashing the dummy password");
    sodium_memzero(pw, sizeof(pw));
}

int crypto_password_hash(const char *password, char out[CRYPTO_PWHASH_LEN])
{
    return crypto_pwhash_str_alg(out, password, strlen(password), PW_OPSLIMIT, PW_MEMLIMIT,
                                 crypto_pwhash_ALG_ARGON2ID13) == 0 ? 0 : -1;
}

int crypto_password_verify(const char *stored, const char *password)
{
    return crypto_pwhash_str_verify(stored, password, strlen(password)) == 0;
}

int crypto_password_needs_rehash(const char *stored)
{
    return crypto_pwhash_str_needs_rehash(stored, PW_OPSLIMIT, PW_MEMLIMIT) != 0;
}

const char *crypto_password_dummy_hash(void)
{
    pthread_once(&crypto_dummy_once, crypto_make_dummy);
    return crypto_dummy;
}

void crypto_random_bytes(void *out, size_t n)
{
    randombytes_buf(out, n);
}

uint32_t crypto_random_uniform(uint32_t upper)
{
    return randombytes_uniform(upper);
}

void crypto_random_token(char out[CRYPTO_TOKEN_LEN])
{
    unsigned char raw[32];

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, CRYPTO_TOKEN_LEN, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

void crypto_random_password(char *out, size_t outlen)
{
    /* no 0/O, 1/l/I: it is read off a terminal and typed on a tablet */
    static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    size_t i, n = outlen - 1 < 20 ? outlen - 1 : 20;

    assert(outlen >= 2);
    for (i = 0; i < n; i++)
        out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
    out[n] = '\0';
}

void crypto_hash_hex(const void *data, size_t n, char out[CRYPTO_HASH_HEX_LEN])
{
    unsigned char h[32];

    crypto_generichash(h, sizeof(h), data, n, NULL, 0);
    sodium_bin2hex(out, CRYPTO_HASH_HEX_LEN, h, sizeof(h));
}

void crypto_hasher_init(struct crypto_hasher *h)
{
    crypto_generichash_blake2b_init((crypto_generichash_blake2b_state *)h->state, NULL, 0, 32);
}

void crypto_hasher_update(struct crypto_hasher *h, const void *data, size_t n)
{
    crypto_generichash_blake2b_update((crypto_generichash_blake2b_state *)h->state, data, n);
}

void crypto_hasher_final_hex(struct crypto_hasher *h, char out[CRYPTO_HASH_HEX_LEN])
{
    unsigned char d[32];

    crypto_generichash_blake2b_final((crypto_generichash_blake2b_state *)h->state, d, sizeof(d));
    sodium_bin2hex(out, CRYPTO_HASH_HEX_LEN, d, sizeof(d));
}

int crypto_equal(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

void crypto_wipe(void *p, size_t n)
{
    sodium_memzero(p, n);
}

void crypto_sha256_hex(const void *data, size_t n, char out[CRYPTO_SHA256_HEX_LEN])
{
    unsigned char h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, data, n);
    sodium_bin2hex(out, CRYPTO_SHA256_HEX_LEN, h, sizeof(h));
}

int crypto_b64url_encode(const void *in, size_t n, char *out, size_t outlen)
{
    if (outlen < sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        return -1;
    sodium_bin2base64(out, outlen, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

int crypto_b64url_decode_exact(const char *s, void *out, size_t want)
{
    unsigned char tmp[256];
    size_t got = 0, len = strlen(s);
    const char *end = NULL;
    char again[CRYPTO_B64URL_LEN(sizeof(tmp))];

    if (want > sizeof(tmp) || len != sodium_base64_ENCODED_LEN(want, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1)
        return -1;
    if (sodium_base642bin(tmp, sizeof(tmp), s, len, NULL, &got, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0
        || got != want || end != s + len)
        goto fail;
    /* canonical form only: the unused low bits of the last character must be zero, so that one key or
     * signature has exactly one spelling */
    sodium_bin2base64(again, sizeof(again), tmp, got, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (strcmp(again, s) != 0)
        goto fail;
    memcpy(out, tmp, want);
    sodium_memzero(tmp, sizeof(tmp));
    sodium_memzero(again, sizeof(again));
    return 0;
fail:
    sodium_memzero(tmp, sizeof(tmp));
    sodium_memzero(again, sizeof(again));
    return -1;
}

int crypto_b64url_decode(const char *s, size_t len, void *out, size_t outlen, size_t *got)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *end = NULL, *last;
    size_t i;

    *got = 0;
    /* the alphabet is checked here: libsodium 1.0.18 takes some bytes >= 0x80 for base64 characters */
    for (i = 0; i < len; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '-' || s[i] == '_'))
            return -1;
    if (len % 4 == 1
        || sodium_base642bin(out, outlen, s, len, NULL, got, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0
        || end != s + len)
        return -1;
    /* canonical form only (as crypto_b64url_decode_exact): the unused low bits of the last character are
     * zero, so that one content has exactly one spelling */
    if (len % 4 != 0 && ((last = memchr(alphabet, s[len - 1], 64)) == NULL
                         || ((last - alphabet) & (len % 4 == 2 ? 0x0f : 0x03)) != 0))
        return -1;
    return 0;
}

void crypto_sign_seed_new(unsigned char seed[CRYPTO_SIGN_SEED_LEN])
{
    randombytes_buf(seed, CRYPTO_SIGN_SEED_LEN);
}

void crypto_sign_public_key(const unsigned char seed[CRYPTO_SIGN_SEED_LEN], unsigned char pk[CRYPTO_SIGN_PUBLIC_LEN])
{
    unsigned char sk[crypto_sign_SECRETKEYBYTES];

    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof(sk));
}

void crypto_sign_make(const unsigned char seed[CRYPTO_SIGN_SEED_LEN], const void *msg, size_t n,
                      unsigned char sig[CRYPTO_SIGN_BYTES])
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];

    crypto_sign_seed_keypair(pk, sk, seed);
    crypto_sign_detached(sig, NULL, msg, n, sk);
    sodium_memzero(sk, sizeof(sk));
}

int crypto_sign_check(const unsigned char pk[CRYPTO_SIGN_PUBLIC_LEN], const void *msg, size_t n,
                      const unsigned char sig[CRYPTO_SIGN_BYTES])
{
    return crypto_sign_verify_detached(sig, msg, n, pk) == 0;
}

/* ---- sealed stream keys and encrypted streams ---- */

_Static_assert(sizeof(crypto_secretstream_xchacha20poly1305_state) <= sizeof(((struct crypto_stream *)0)->state),
               "struct crypto_stream is too small for libsodium's secretstream state");
_Static_assert(CRYPTO_SEALED_KEY_LEN == CRYPTO_STREAM_KEY_LEN + crypto_box_SEALBYTES, "sealed key size");
_Static_assert(CRYPTO_STREAM_HEADER_LEN == crypto_secretstream_xchacha20poly1305_HEADERBYTES, "stream header size");
_Static_assert(CRYPTO_STREAM_ABYTES == crypto_secretstream_xchacha20poly1305_ABYTES, "stream overhead");
_Static_assert(CRYPTO_STREAM_KEY_LEN == crypto_secretstream_xchacha20poly1305_KEYBYTES, "stream key size");

void crypto_stream_key_new(unsigned char key[CRYPTO_STREAM_KEY_LEN])
{
    crypto_secretstream_xchacha20poly1305_keygen(key);
}

int crypto_seal_key(const unsigned char sign_pk[CRYPTO_SIGN_PUBLIC_LEN], const unsigned char key[CRYPTO_STREAM_KEY_LEN],
                    unsigned char out[CRYPTO_SEALED_KEY_LEN])
{
    unsigned char xpk[crypto_box_PUBLICKEYBYTES];

    if (crypto_sign_ed25519_pk_to_curve25519(xpk, sign_pk) != 0)
        return -1;
    return crypto_box_seal(out, key, CRYPTO_STREAM_KEY_LEN, xpk) == 0 ? 0 : -1;
}

int crypto_unseal_key(const unsigned char seed[CRYPTO_SIGN_SEED_LEN], const unsigned char in[CRYPTO_SEALED_KEY_LEN],
                      unsigned char key[CRYPTO_STREAM_KEY_LEN])
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char xpk[crypto_box_PUBLICKEYBYTES], xsk[crypto_box_SECRETKEYBYTES];
    int rc = -1;

    crypto_sign_seed_keypair(pk, sk, seed);
    if (crypto_sign_ed25519_pk_to_curve25519(xpk, pk) == 0 && crypto_sign_ed25519_sk_to_curve25519(xsk, sk) == 0)
        rc = crypto_box_seal_open(key, in, CRYPTO_SEALED_KEY_LEN, xpk, xsk) == 0 ? 0 : -1;
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(xsk, sizeof(xsk));
    return rc;
}

void crypto_stream_push_init(struct crypto_stream *s, const unsigned char key[CRYPTO_STREAM_KEY_LEN],
                             unsigned char header[CRYPTO_STREAM_HEADER_LEN])
{
    crypto_secretstream_xchacha20poly1305_init_push((crypto_secretstream_xchacha20poly1305_state *)s->state, header,
                                                    key);
}

void crypto_stream_push(struct crypto_stream *s, const void *m, size_t n, int final, unsigned char *out)
{
    crypto_secretstream_xchacha20poly1305_push((crypto_secretstream_xchacha20poly1305_state *)s->state, out, NULL,
                                               m, n, NULL, 0,
                                               final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
}

int crypto_stream_pull_init(struct crypto_stream *s, const unsigned char key[CRYPTO_STREAM_KEY_LEN],
                            const unsigned char header[CRYPTO_STREAM_HEADER_LEN])
{
    return crypto_secretstream_xchacha20poly1305_init_pull((crypto_secretstream_xchacha20poly1305_state *)s->state,
                                                           header, key) == 0 ? 0 : -1;
}

int crypto_stream_pull(struct crypto_stream *s, const unsigned char *c, size_t n, unsigned char *out, int *final)
{
    unsigned char tag = 0;

    if (n < CRYPTO_STREAM_ABYTES
        || crypto_secretstream_xchacha20poly1305_pull((crypto_secretstream_xchacha20poly1305_state *)s->state, out,
                                                      NULL, &tag, c, n, NULL, 0) != 0)
        return -1;
    *final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    return 0;
}
