/* auth.c — sign-in with Argon2id, server-side sessions, progressive login throttling. */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/auth.h"
#include "services/users.h"
#include "store/accounts.h"

/* Characters, not bytes: an Arabic letter is two bytes of UTF-8 but one character to guess. */
static size_t utf8_length(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

int auth_password_acceptable(const char *username, const char *password, struct err *e)
{
    size_t n = strlen(password);

    if (utf8_length(password) < PASSWORD_MIN)
        return err_set(e, ERR_INVALID, "weak_password", "a password needs at least %d characters", PASSWORD_MIN);
    if (n > PASSWORD_MAX)
        return err_set(e, ERR_INVALID, "weak_password", "a password may have at most %d bytes", PASSWORD_MAX);
    if (username && strcasecmp(username, password) == 0)
        return err_set(e, ERR_INVALID, "weak_password", "the password must not be the username");
    return 0;
}

/* How long a key stays locked after its n-th failure: nothing for the first `free` ones, then
 * 30 s doubling up to THROTTLE_MAX_LOCK_MS. Progressive delays slow guessing without letting an attacker
 * lock a clinician out of their account for long. */
static int64_t throttle_lock_ms(int64_t failures, int64_t free)
{
    int64_t over = failures - free, ms = 30000;

    if (over <= 0)
        return 0;
    while (--over > 0 && ms < THROTTLE_MAX_LOCK_MS)
        ms *= 2;
    return ms < THROTTLE_MAX_LOCK_MS ? ms : THROTTLE_MAX_LOCK_MS;
}

/* 0 when the key may try now; ERR_THROTTLED otherwise. */
static int throttle_check(struct db *db, const char *key, int64_t now, struct err *e)
{
    int64_t failures, last, locked_until;

    if (store_throttle_get(db, key, &failures, &last, &locked_until, e) < 0)
        return -1;
    if (locked_until > now) {
        err_set(e, ERR_THROTTLED, "too_many_attempts",
                "too many failed sign-in attempts; wait before trying again");
        e->retry_after = (int)((locked_until - now + 999) / 1000);
        return -1;
    }
    return 0;
}

static int throttle_fail(struct db *db, const char *key, int64_t free, int64_t now, struct err *e)
{
    int64_t failures, last, locked_until;

    if (store_throttle_get(db, key, &failures, &last, &locked_until, e) < 0)
        return -1;
    if (now - last > THROTTLE_WINDOW_MS)
        failures = 0;
    failures++;
    return store_throttle_put(db, key, failures, now, now + throttle_lock_ms(failures, free), e);
}

static void username_key(char *out, size_t n, const char *username)
{
    snprintf(out, n, "u:%s", username);
}

static int fill_caller(struct db *db, const struct user_row *u, struct caller *who, struct err *e)
{
    enum role r;

    if (role_parse(u->role, &r) < 0)
        return err_set(e, ERR_INTERNAL, "bad_role", "the account has an unknown role");
    who->authenticated = 1;
    snprintf(who->user_id, sizeof(who->user_id), "%s", u->id);
    snprintf(who->username, sizeof(who->username), "%s", u->username);
    who->role = r;
    return store_user_sites_get(db, u->id, who->sites, USER_SITES_MAX, &who->nsites, e);
}

int auth_login(struct db *db, const char *username, const char *password, struct caller *who,
               struct login_result *out, struct err *e)
{
    char norm[USERNAME_MAX + 1], ukey[USERNAME_MAX + 3], akey[80];
    struct session_row s;
    struct user_row u;
    struct err dummy;
    int found, ok;
    int64_t now = now_ms();

    memset(out, 0, sizeof(*out));
    if (users_normalise_username(username, norm, &dummy) < 0)
        norm[0] = '\0';
    username_key(ukey, sizeof(ukey), norm);
    snprintf(akey, sizeof(akey), "a:%s", who->address);

    /* the checks and the throttle update form one write transaction so parallel guesses count */
    if (db_begin_write(db, e) < 0)
        return -1;
    if (throttle_check(db, akey, now, e) < 0 || (norm[0] && throttle_check(db, ukey, now, e) < 0)) {
        if (e->kind == ERR_THROTTLED)
            audit_record(db, who, "login", "user", NULL, NULL, "throttled", &dummy);
        db_commit(db, &dummy);
        return -1;
    }
    found = norm[0] ? store_user_get_by_username(db, norm, &u, e) : 0;
    if (found < 0)
        goto fail;
    db_commit(db, &dummy);  /* do not hold the write lock through Argon2id */

    /* spend the same time whether or not the user exists */
    ok = crypto_password_verify(found ? u.password_hash : crypto_password_dummy_hash(), password);
    ok = ok && found && !u.disabled;

    if (db_begin_write(db, e) < 0)
        return -1;
    if (!ok) {
        if (throttle_fail(db, akey, THROTTLE_ADDRESS_FREE, now, e) < 0)
            goto fail;
        if (found && throttle_fail(db, ukey, THROTTLE_ACCOUNT_FREE, now, e) < 0)
            goto fail;
        if (found)
            snprintf(who->username, sizeof(who->username), "%s", u.username);
        if (audit_record(db, who, "login", "user", found ? u.id : NULL, NULL, "failed", e) < 0)
            goto fail;
        if (db_commit(db, e) < 0)
            return -1;
        return err_set(e, ERR_UNAUTHENTICATED, "invalid_credentials", "the username or password is wrong");
    }
    if (crypto_password_needs_rehash(u.password_hash)
        && crypto_password_hash(password, u.password_hash) == 0
        && store_user_update(db, &u, e) < 0)
        goto fail;
    if (store_throttle_clear(db, ukey, e) < 0)
        goto fail;
    crypto_random_token(out->token);
    crypto_random_token(out->csrf);
    crypto_hash_hex(out->token, strlen(out->token), s.token_hash);
    snprintf(s.user_id, sizeof(s.user_id), "%s", u.id);
    snprintf(s.csrf_token, sizeof(s.csrf_token), "%s", out->csrf);
    s.created_at = s.last_seen_at = now;
    s.expires_at = out->expires_at = now + SESSION_ABSOLUTE_MS;
    if (store_session_insert(db, &s, who->address, e) < 0 || fill_caller(db, &u, who, e) < 0)
        goto fail;
    if (audit_record(db, who, "login", "user", u.id, NULL, "ok", e) < 0)
        goto fail;
    /* expired sessions are swept at sign-in, which is rare enough to cost nothing */
    if (store_sessions_purge(db, now, SESSION_IDLE_MS, e) < 0)
        goto fail;
    return db_commit(db, e);
fail:
    db_rollback(db);
    crypto_wipe(out, sizeof(*out));
    return -1;
}

int auth_session(struct db *db, const char *token, struct caller *who, char csrf[CRYPTO_TOKEN_LEN],
                 struct err *e)
{
    char hash[CRYPTO_HASH_HEX_LEN];
    struct session_row s;
    struct user_row u;
    int64_t now = now_ms();
    int found;

    if (token == NULL || strlen(token) != CRYPTO_TOKEN_LEN - 1)
        return err_set(e, ERR_UNAUTHENTICATED, "not_signed_in", "sign in first; the session is missing or has ended");
    crypto_hash_hex(token, strlen(token), hash);
    found = store_session_get(db, hash, &s, &u, e);
    if (found < 0)
        return -1;
    if (!found || u.disabled || s.expires_at <= now || s.last_seen_at + SESSION_IDLE_MS <= now)
        return err_set(e, ERR_UNAUTHENTICATED, "not_signed_in", "sign in first; the session is missing or has ended");
    if (now - s.last_seen_at > SESSION_TOUCH_MS && store_session_touch(db, hash, now, e) < 0)
        return -1;
    memcpy(csrf, s.csrf_token, CRYPTO_TOKEN_LEN);
    return fill_caller(db, &u, who, e);
}

int auth_logout(struct db *db, const char *token, const struct caller *who, struct err *e)
{
    char hash[CRYPTO_HASH_HEX_LEN];

    crypto_hash_hex(token, strlen(token), hash);
    if (db_begin_write(db, e) < 0)
        return -1;
    if (store_session_delete(db, hash, e) < 0
        || audit_record(db, who, "logout", "user", who->user_id, NULL, "ok", e) < 0) {
        db_rollback(db);
        return -1;
    }
    return db_commit(db, e);
}
