/* crypto.h — the one module that calls libsodium: password hashing, random tokens, hashing, node
 * signatures (Ed25519), SHA-256 and base64url.
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

/* SHA-256 of data, as lower-case hex (for protocols other programs must reproduce, e.g. the body hash
 * of a signed sync request; BLAKE2b stays the hash of Sanad's own records). */
#define CRYPTO_SHA256_HEX_LEN 65
void crypto_sha256_hex(const void *data, size_t n, char out[CRYPTO_SHA256_HEX_LEN]);

/* base64url without padding (RFC 4648 section 5), the text form of keys and signatures. */
#define CRYPTO_B64URL_LEN(n) ((((n) + 2) / 3) * 4 + 1)   /* room for n bytes encoded, NUL included */
/* Encode n bytes into out (outlen >= CRYPTO_B64URL_LEN(n)). 0 ok, -1 when out is too small. */
int crypto_b64url_encode(const void *in, size_t n, char *out, size_t outlen);
/* Decode exactly `want` bytes from s: -1 unless s is canonical unpadded base64url of that many bytes. */
int crypto_b64url_decode_exact(const char *s, void *out, size_t want);
/* Decode s (len characters of canonical unpadded base64url, any length) into out, which has room for outlen
 * bytes: 0 with *got set, or -1 when s is not canonical base64url or decodes to more than outlen bytes. */
int crypto_b64url_decode(const char *s, size_t len, void *out, size_t outlen, size_t *got);

/* Ed25519 node keys. The secret key is kept as its 32-byte seed; the 64-byte expanded form exists only
 * while signing and is wiped after. */
#define CRYPTO_SIGN_SEED_LEN 32
#define CRYPTO_SIGN_PUBLIC_LEN 32
#define CRYPTO_SIGN_BYTES 64
#define CRYPTO_SIGN_PUBLIC_B64_LEN CRYPTO_B64URL_LEN(CRYPTO_SIGN_PUBLIC_LEN)   /* 43 characters + NUL */
#define CRYPTO_SIGN_B64_LEN CRYPTO_B64URL_LEN(CRYPTO_SIGN_BYTES)               /* 86 characters + NUL */

/* A new random seed. */
void crypto_sign_seed_new(unsigned char seed[CRYPTO_SIGN_SEED_LEN]);
/* The public key of a seed. */
void crypto_sign_public_key(const unsigned char seed[CRYPTO_SIGN_SEED_LEN],
                            unsigned char pk[CRYPTO_SIGN_PUBLIC_LEN]);
/* Sign msg with the key of seed: a detached 64-byte signature. */
void crypto_sign_make(const unsigned char seed[CRYPTO_SIGN_SEED_LEN], const void *msg, size_t n,
                      unsigned char sig[CRYPTO_SIGN_BYTES]);
/* 1 when sig is a valid signature of msg by pk, 0 otherwise (including malformed keys). */
int crypto_sign_check(const unsigned char pk[CRYPTO_SIGN_PUBLIC_LEN], const void *msg, size_t n,
                      const unsigned char sig[CRYPTO_SIGN_BYTES]);

/* Encryption for one recipient node, for bundles carried by hand (docs/sync.md, "Bundles"): a random
 * stream key sealed to the recipient's Ed25519 node key (converted to X25519; crypto_box_seal: only the
 * holder of the node key can open it, the sender stays anonymous and signs separately), and the content
 * as an authenticated stream of chunks (XChaCha20-Poly1305 secretstream: chunks can be neither changed,
 * dropped, reordered nor cut off after the final one unnoticed). */
#define CRYPTO_STREAM_KEY_LEN 32
#define CRYPTO_SEALED_KEY_LEN (CRYPTO_STREAM_KEY_LEN + 48)
#define CRYPTO_STREAM_HEADER_LEN 24
#define CRYPTO_STREAM_ABYTES 17     /* a chunk's ciphertext is this much longer than its content */

struct crypto_stream { unsigned char state[64] __attribute__((aligned(16))); };

void crypto_stream_key_new(unsigned char key[CRYPTO_STREAM_KEY_LEN]);
/* Seal key for the node whose Ed25519 public key is sign_pk. 0, or -1 when the public key is unusable. */
int crypto_seal_key(const unsigned char sign_pk[CRYPTO_SIGN_PUBLIC_LEN], const unsigned char key[CRYPTO_STREAM_KEY_LEN],
                    unsigned char out[CRYPTO_SEALED_KEY_LEN]);
/* Open a key sealed for the node of seed: 0, or -1 when it was not sealed for this node or was altered. */
int crypto_unseal_key(const unsigned char seed[CRYPTO_SIGN_SEED_LEN], const unsigned char in[CRYPTO_SEALED_KEY_LEN],
                      unsigned char key[CRYPTO_STREAM_KEY_LEN]);
void crypto_stream_push_init(struct crypto_stream *s, const unsigned char key[CRYPTO_STREAM_KEY_LEN],
                             unsigned char header[CRYPTO_STREAM_HEADER_LEN]);
/* Encrypt n bytes into out (n + CRYPTO_STREAM_ABYTES bytes); final marks the last chunk. */
void crypto_stream_push(struct crypto_stream *s, const void *m, size_t n, int final, unsigned char *out);
/* 0, or -1 when header is not a stream header. */
int crypto_stream_pull_init(struct crypto_stream *s, const unsigned char key[CRYPTO_STREAM_KEY_LEN],
                            const unsigned char header[CRYPTO_STREAM_HEADER_LEN]);
/* Decrypt a chunk of n >= CRYPTO_STREAM_ABYTES bytes into out (n - CRYPTO_STREAM_ABYTES bytes): 0 with
 * *final set, or -1 when the chunk is not the next one of the stream or was altered. */
int crypto_stream_pull(struct crypto_stream *s, const unsigned char *c, size_t n, unsigned char *out, int *final);

#endif
