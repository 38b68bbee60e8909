/* users.h — user accounts: create, list, change, disable, and the signed-in user's own view.
 * Every change is audit-logged in the same transaction. The last active admin can be neither disabled
 * nor demoted, so a node can never lock its administrators out.
 * Ownership: returned json_t values are new references the caller json_decref()s.
 */
#ifndef SANAD_USERS_H
#define SANAD_USERS_H

#include <jansson.h>

#include "core/err.h"
#include "services/caller.h"
#include "store/db.h"

/* Fields of a create or change; NULL / has_* = 0 means "not given". */
struct user_input {
    const char *username;
    const char *full_name;
    const char *role;
    const char *password;
    int has_disabled, disabled;
    int has_sites, nsites;
    const char *sites[USER_SITES_MAX];
};

/* Lower-case a username and check it: 1-64 characters of a-z 0-9 . _ -, starting with a letter or digit. */
int users_normalise_username(const char *in, char out[USERNAME_MAX + 1], struct err *e);

json_t *users_create(struct db *db, const struct caller *who, const struct user_input *in, struct err *e);
json_t *users_update(struct db *db, const struct caller *who, const char *id, const struct user_input *in,
                     struct err *e);
json_t *users_list(struct db *db, const struct caller *who, struct err *e);
/* The signed-in user as {"id","username","full_name","role","sites":[..],"permissions":[..]}. */
json_t *users_me(struct db *db, const struct caller *who, struct err *e);
/* Find a user id by username (for the command line). 0 found, -1 with ERR_NOT_FOUND otherwise. */
int users_find_id(struct db *db, const char *username, char id[ID_LEN], struct err *e);

#endif
