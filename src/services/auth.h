/* auth.h — signing in and out, session tokens, login throttling.
 *
 * A session token is 32 random bytes (base64url) given to the client once; the server keeps only its
 * BLAKE2b hash, so a copied database yields no usable sessions. Sessions end after SESSION_IDLE_MS
 * without use or SESSION_ABSOLUTE_MS after sign-in, whichever is first, and when the user is disabled or
 * their password changes. Each session has a CSRF token that cookie-authenticated writes must echo in
 * the X-CSRF-Token header.
 */
#ifndef SANAD_AUTH_H
#define SANAD_AUTH_H

#include <stdint.h>

#include "core/crypto.h"
#include "core/err.h"
#include "services/caller.h"
#include "store/db.h"

#define SESSION_IDLE_MS (2LL * 60 * 60 * 1000)          /* two hours without a request */
#define SESSION_ABSOLUTE_MS (12LL * 60 * 60 * 1000)     /* one long clinic shift */
#define SESSION_TOUCH_MS (60LL * 1000)                  /* last_seen_at is written at most once a minute */

#define THROTTLE_ACCOUNT_FREE 4     /* failures per account that cost nothing: the 5th locks */
#define THROTTLE_ADDRESS_FREE 19    /* failures per address that cost nothing: the 20th locks */
#define THROTTLE_WINDOW_MS (15LL * 60 * 1000)  /* failures older than this are forgotten */
#define THROTTLE_MAX_LOCK_MS (15LL * 60 * 1000)

#define PASSWORD_MIN 10
#define PASSWORD_MAX 256

struct login_result {
    char token[CRYPTO_TOKEN_LEN];
    char csrf[CRYPTO_TOKEN_LEN];
    int64_t expires_at;
};

/* Check a username and password. who->address and who->request_id must be set; on success the rest of
 * *who is filled. Fails with ERR_UNAUTHENTICATED ("invalid_credentials", the same whether or not the user
 * exists) or ERR_THROTTLED (retry_after set). Success and failure are both audit-logged. */
int auth_login(struct db *db, const char *username, const char *password, struct caller *who,
               struct login_result *out, struct err *e);

/* Resolve a session token to its user, refreshing its idle timer. csrf receives the session's CSRF
 * token. ERR_UNAUTHENTICATED when unknown, expired or the user is disabled. */
int auth_session(struct db *db, const char *token, struct caller *who, char csrf[CRYPTO_TOKEN_LEN],
                 struct err *e);

/* End the session with this token. */
int auth_logout(struct db *db, const char *token, const struct caller *who, struct err *e);

/* Password rules shared by every place that sets one: ERR_INVALID "weak_password" when broken. */
int auth_password_acceptable(const char *username, const char *password, struct err *e);

#endif
