/* crypto.h — the one module that calls libsodium: password hashing, random tokens, hashing.
 * Call crypto_init() once at start-up before any other function here.
 * Ownership: all outputs go into caller-provided storage of the documented size.
 */
#ifndef SANAD_CRYPTO_H
#define SANAD_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_PWHASH_LEN 128   /* an Argon2id encoded hash string, NUL included */
#define CRYPTO_TOKEN_LEN 44     /* 32 random bytes as unpadded base64url, NUL included */
#define CRYPTO_HASH_HEX_LEN 65  /* BLAKE2b-256 as lower-case hex, NUL included */

int crypto_init(void);

/* Argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1; see docs/security.md). 0 ok, -1 out of memory. */
int crypto_password_hash(const char *password, char out[CRYPTO_PWHASH_LEN]);
/* 1 when the password matches, 0 when not (or the stored hash is malformed). */
int crypto_password_verify(const char *stored, const char *password);
/* 1 when the stored hash was made with weaker limits than the current ones and should be replaced. */
int crypto_password_needs_rehash(const char *stored);
/* A hash of a password nobody knows, to spend the same time on unknown usernames. */
const char *crypto_password_dummy_hash(void);

void crypto_random_bytes(void *out, size_t n);
uint32_t crypto_random_uniform(uint32_t upper);
/* 32 random bytes encoded as base64url without padding. */
void crypto_random_token(char out[CRYPTO_TOKEN_LEN]);
/* A password a person can type: 20 characters from an unambiguous alphabet (~115 bits). out >= 21. */
void crypto_random_password(char *out, size_t outlen);

/* BLAKE2b-256 of data, as hex. */
void crypto_hash_hex(const void *data, size_t n, char out[CRYPTO_HASH_HEX_LEN]);

/* Streaming BLAKE2b-256 (for the audit chain). */
struct crypto_hasher { unsigned char state[384] __attribute__((aligned(64))); };
void crypto_hasher_init(struct crypto_hasher *h);
void crypto_hasher_update(struct crypto_hasher *h, const void *data, size_t n);
void crypto_hasher_final_hex(struct crypto_hasher *h, char out[CRYPTO_HASH_HEX_LEN]);

/* Compare two equal-length secrets in constant time: 1 when equal. */
int crypto_equal(const void *a, const void *b, size_t n);
/* Overwrite a secret so it does not linger in memory. */
void crypto_wipe(void *p, size_t n);

#endif
