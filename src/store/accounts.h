/* accounts.h — storage of users, their sites, sessions and login throttling counters.
 * Return convention: 0 done (or 1 found / 0 not found for lookups), -1 with *e set on storage failure.
 * Ownership: rows are caller storage; nothing returned needs freeing.
 */
#ifndef SANAD_STORE_ACCOUNTS_H
#define SANAD_STORE_ACCOUNTS_H

#include <stdint.h>

#include "core/crypto.h"
#include "core/err.h"
#include "core/id.h"
#include "store/db.h"

#define USERNAME_MAX 64
#define FULL_NAME_MAX 200
#define USER_SITES_MAX 64

struct user_row {
    char id[ID_LEN];
    char username[USERNAME_MAX + 1];
    char full_name[FULL_NAME_MAX + 1];
    char role[16];
    char password_hash[CRYPTO_PWHASH_LEN];
    int disabled;
    int64_t created_at, updated_at, password_changed_at;
};

struct session_row {
    char token_hash[CRYPTO_HASH_HEX_LEN];
    char user_id[ID_LEN];
    char csrf_token[CRYPTO_TOKEN_LEN];
    int64_t created_at, last_seen_at, expires_at;
};

typedef int (*store_user_cb)(const struct user_row *row, void *ctx);

int store_user_insert(struct db *db, const struct user_row *u, struct err *e);
int store_user_update(struct db *db, const struct user_row *u, struct err *e);
int store_user_get(struct db *db, const char *id, struct user_row *out, struct err *e);
int store_user_get_by_username(struct db *db, const char *username, struct user_row *out, struct err *e);
int store_user_list(struct db *db, store_user_cb cb, void *ctx, struct err *e);
int store_user_count_active_admins(struct db *db, int64_t *n, struct err *e);

int store_user_sites_get(struct db *db, const char *user_id, char sites[][ID_LEN], int max, int *n,
                         struct err *e);
int store_user_sites_set(struct db *db, const char *user_id, char sites[][ID_LEN], int n, struct err *e);

int store_session_insert(struct db *db, const struct session_row *s, const char *address, struct err *e);
/* Find a session and its user in one query. */
int store_session_get(struct db *db, const char *token_hash, struct session_row *s, struct user_row *u,
                      struct err *e);
int store_session_touch(struct db *db, const char *token_hash, int64_t at, struct err *e);
int store_session_delete(struct db *db, const char *token_hash, struct err *e);
int store_sessions_delete_for_user(struct db *db, const char *user_id, struct err *e);
int store_sessions_purge(struct db *db, int64_t now, int64_t idle_ms, struct err *e);

int store_throttle_get(struct db *db, const char *key, int64_t *failures, int64_t *last_failure_at,
                       int64_t *locked_until, struct err *e);
int store_throttle_put(struct db *db, const char *key, int64_t failures, int64_t last_failure_at,
                       int64_t locked_until, struct err *e);
int store_throttle_clear(struct db *db, const char *key, struct err *e);

#endif
