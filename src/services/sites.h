/* sites.h — sites (clinics, mobile teams, hubs) a node serves, and node creation.
 * Ownership: returned json_t values are new references. */
#ifndef SANAD_SITES_H
#define SANAD_SITES_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "services/caller.h"
#include "store/db.h"

#define SITE_TABLE "site"

json_t *sites_create(struct db *db, const struct caller *who, const char *name, struct err *e);

/* Replication hooks: store a site received from another node; check a site change's fields. */
int sites_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e);
int sites_check_fields(const json_t *fields, struct err *e);
json_t *sites_list(struct db *db, const struct caller *who, struct err *e);

struct node_init_options {
    const char *dir;            /* data directory, created with mode 0700 */
    const char *site_name;      /* first site */
    const char *locales;        /* comma-separated, e.g. "en,ar" */
    const char *admin_username;
    const char *admin_password; /* already checked by the caller */
};

/* Create a new node: the data directory, database, node id, first site and first admin account.
 * Refuses a directory that exists and is not empty. On failure nothing is left behind that a second
 * attempt would trip over (a directory it created is removed). */
int node_init(const struct node_init_options *o, char node_id[ID_LEN], struct err *e);

#endif
