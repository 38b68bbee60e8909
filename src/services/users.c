/* users.c — account management. */
#include <ctype.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/auth.h"
#include "services/users.h"
#include "store/accounts.h"
#include "store/sites.h"

int users_normalise_username(const char *in, char out[USERNAME_MAX + 1], struct err *e)
{
    size_t i, n = in ? strlen(in) : 0;

    if (n == 0 || n > USERNAME_MAX)
        return err_set(e, ERR_INVALID, "invalid_username", "a username has 1 to %d characters", USERNAME_MAX);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tolower((unsigned char)in[i]);

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '.' || c == '_' || c == '-'))))
            return err_set(e, ERR_INVALID, "invalid_username",
                           "a username uses only letters a-z, digits and . _ - (and starts with a letter or digit)");
        out[i] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

static json_t *user_to_json(struct db *db, const struct user_row *u, struct err *e)
{
    char sites[USER_SITES_MAX][ID_LEN], created[32], updated[32];
    json_t *o, *arr;
    int i, n;

    if (store_user_sites_get(db, u->id, sites, USER_SITES_MAX, &n, e) < 0)
        return NULL;
    arr = json_array();
    for (i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(sites[i]));
    format_time_ms(u->created_at, created, sizeof(created));
    format_time_ms(u->updated_at, updated, sizeof(updated));
    o = json_pack("{s:s,s:s,s:s,s:s,s:b,s:o,s:s,s:s}", "id", u->id, "username", u->username, "full_name",
                  u->full_name, "role", u->role, "disabled", u->disabled, "sites", arr, "created_at", created,
                  "updated_at", updated);
    if (o == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    return o;
}

/* Check and copy the site list of *in; the node's default site when none is given on create. */
static int resolve_sites(struct db *db, const struct user_input *in, int creating, char sites[][ID_LEN], int *n,
                         struct err *e)
{
    struct site_row s;
    int i, found;

    *n = 0;
    if (!in->has_sites) {
        if (!creating)
            return 0;
        found = store_meta_get(db, "default_site", sites[0], ID_LEN, e);
        if (found < 0)
            return -1;
        *n = found ? 1 : 0;
        return 0;
    }
    for (i = 0; i < in->nsites; i++) {
        if (!id_valid(in->sites[i]))
            return err_set(e, ERR_INVALID, "unknown_site", "'%.40s' is not a site id", in->sites[i]);
        found = store_site_get(db, in->sites[i], &s, e);
        if (found < 0)
            return -1;
        if (!found)
            return err_set(e, ERR_INVALID, "unknown_site", "site '%s' does not exist", in->sites[i]);
        snprintf(sites[(*n)++], ID_LEN, "%s", in->sites[i]);
    }
    return 0;
}

static int check_common(const struct user_input *in, struct err *e)
{
    enum role r;

    if (in->role && role_parse(in->role, &r) < 0)
        return err_set(e, ERR_INVALID, "invalid_role",
                       "role must be one of admin, clinician, registrar, analyst, viewer");
    if (in->full_name && strlen(in->full_name) > FULL_NAME_MAX)
        return err_set(e, ERR_INVALID, "field_too_long", "full_name is longer than %d bytes", FULL_NAME_MAX);
    return 0;
}

json_t *users_create(struct db *db, const struct caller *who, const struct user_input *in, struct err *e)
{
    char sites[USER_SITES_MAX][ID_LEN];
    struct user_row u, existing;
    json_t *out = NULL;
    int n, found;

    memset(&u, 0, sizeof(u));
    if (users_normalise_username(in->username, u.username, e) < 0 || check_common(in, e) < 0)
        return NULL;
    if (in->role == NULL) {
        err_set(e, ERR_INVALID, "missing_field", "field 'role' is required");
        return NULL;
    }
    if (in->password == NULL) {
        err_set(e, ERR_INVALID, "missing_field", "field 'password' is required");
        return NULL;
    }
    if (auth_password_acceptable(u.username, in->password, e) < 0)
        return NULL;
    id_new(u.id);
    snprintf(u.full_name, sizeof(u.full_name), "%s", in->full_name ? in->full_name : "");
    snprintf(u.role, sizeof(u.role), "%s", in->role);
    u.disabled = in->has_disabled ? in->disabled : 0;
    u.created_at = u.updated_at = u.password_changed_at = now_ms();
    /* hash before taking the write lock: Argon2id is deliberately slow */
    if (crypto_password_hash(in->password, u.password_hash) < 0) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory while hashing the password");
        return NULL;
    }
    if (db_begin_write(db, e) < 0)
        return NULL;
    found = store_user_get_by_username(db, u.username, &existing, e);
    if (found < 0)
        goto fail;
    if (found) {
        err_set(e, ERR_CONFLICT, "username_taken", "the username '%s' is already taken", u.username);
        goto fail;
    }
    if (resolve_sites(db, in, 1, sites, &n, e) < 0 || store_user_insert(db, &u, e) < 0
        || store_user_sites_set(db, u.id, sites, n, e) < 0
        || audit_record(db, who, "user.create", "user", u.id, NULL, "ok", e) < 0)
        goto fail;
    out = user_to_json(db, &u, e);
    if (out == NULL || db_commit(db, e) < 0)
        goto fail;
    return out;
fail:
    json_decref(out);
    db_rollback(db);
    return NULL;
}

json_t *users_update(struct db *db, const struct caller *who, const char *id, const struct user_input *in,
                     struct err *e)
{
    char sites[USER_SITES_MAX][ID_LEN], hash[CRYPTO_PWHASH_LEN];
    struct user_row u;
    int64_t admins;
    json_t *out = NULL;
    int n, found, revoke = 0, was_active_admin;

    if (in->username) {
        err_set(e, ERR_INVALID, "immutable_field", "a username cannot be changed; create a new account");
        return NULL;
    }
    if (check_common(in, e) < 0)
        return NULL;
    if (in->password) {
        if (auth_password_acceptable(NULL, in->password, e) < 0)
            return NULL;
        if (crypto_password_hash(in->password, hash) < 0) {
            err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory while hashing the password");
            return NULL;
        }
    }
    if (db_begin_write(db, e) < 0)
        return NULL;
    found = store_user_get(db, id, &u, e);
    if (found < 0)
        goto fail;
    if (!found) {
        err_set(e, ERR_NOT_FOUND, "user_not_found", "no user with this id");
        goto fail;
    }
    if (in->password && auth_password_acceptable(u.username, in->password, e) < 0)
        goto fail;
    was_active_admin = strcmp(u.role, "admin") == 0 && !u.disabled;
    if (in->full_name)
        snprintf(u.full_name, sizeof(u.full_name), "%s", in->full_name);
    if (in->role)
        snprintf(u.role, sizeof(u.role), "%s", in->role);
    if (in->has_disabled) {
        revoke |= in->disabled && !u.disabled;
        u.disabled = in->disabled;
    }
    if (in->password) {
        memcpy(u.password_hash, hash, sizeof(hash));
        u.password_changed_at = now_ms();
        revoke = 1;
    }
    if (was_active_admin && (strcmp(u.role, "admin") != 0 || u.disabled)) {
        if (store_user_count_active_admins(db, &admins, e) < 0)
            goto fail;
        if (admins <= 1) {
            err_set(e, ERR_CONFLICT, "last_admin", "this is the last active admin; make another admin first");
            goto fail;
        }
    }
    u.updated_at = now_ms();
    if (store_user_update(db, &u, e) < 0)
        goto fail;
    if (in->has_sites) {
        if (resolve_sites(db, in, 0, sites, &n, e) < 0 || store_user_sites_set(db, u.id, sites, n, e) < 0)
            goto fail;
    }
    /* a disabled account or a changed password ends every session of that user at once */
    if (revoke && store_sessions_delete_for_user(db, u.id, e) < 0)
        goto fail;
    if (audit_record(db, who, in->password ? "user.password" : "user.update", "user", u.id, NULL, "ok", e) < 0)
        goto fail;
    out = user_to_json(db, &u, e);
    if (out == NULL || db_commit(db, e) < 0)
        goto fail;
    return out;
fail:
    json_decref(out);
    db_rollback(db);
    return NULL;
}

struct list_state {
    struct db *db;
    json_t *items;
    struct err *e;
};

static int list_one(const struct user_row *u, void *ctx)
{
    struct list_state *s = ctx;
    json_t *o = user_to_json(s->db, u, s->e);

    return o && json_array_append_new(s->items, o) == 0 ? 0 : -1;
}

json_t *users_list(struct db *db, const struct caller *who, struct err *e)
{
    struct list_state s = { db, json_array(), e };

    (void)who;
    if (s.items == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    if (db_begin_read(db, e) < 0 || store_user_list(db, list_one, &s, e) < 0) {
        db_rollback(db);
        json_decref(s.items);
        return NULL;
    }
    db_rollback(db);
    return json_pack("{s:o}", "items", s.items);
}

json_t *users_me(struct db *db, const struct caller *who, struct err *e)
{
    struct user_row u;
    json_t *o, *perms;
    int found, p;

    found = store_user_get(db, who->user_id, &u, e);
    if (found <= 0) {
        if (found == 0)
            err_set(e, ERR_UNAUTHENTICATED, "not_signed_in", "sign in first; the session is missing or has ended");
        return NULL;
    }
    o = user_to_json(db, &u, e);
    perms = json_array();
    if (o == NULL || perms == NULL) {
        json_decref(o);
        json_decref(perms);
        return NULL;
    }
    for (p = PERM_SESSION; p < PERM_COUNT; p++)
        if (perm_allows(who->role, (enum perm)p))
            json_array_append_new(perms, json_string(perm_name((enum perm)p)));
    json_object_set_new(o, "permissions", perms);
    return o;
}

int users_find_id(struct db *db, const char *username, char id[ID_LEN], struct err *e)
{
    char norm[USERNAME_MAX + 1];
    struct user_row u;
    int found;

    if (users_normalise_username(username, norm, e) < 0)
        return -1;
    found = store_user_get_by_username(db, norm, &u, e);
    if (found < 0)
        return -1;
    if (!found)
        return err_set(e, ERR_NOT_FOUND, "user_not_found", "no user named '%s'", norm);
    snprintf(id, ID_LEN, "%s", u.id);
    return 0;
}
