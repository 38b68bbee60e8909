/* sites.h — storage of sites (clinics, mobile teams) and of node metadata (key/value).
 * Return convention as in accounts.h. */
#ifndef SANAD_STORE_SITES_H
#define SANAD_STORE_SITES_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/id.h"
#include "store/db.h"

#define SITE_NAME_MAX 120

struct site_row {
    char id[ID_LEN];
    char name[SITE_NAME_MAX + 1];
    int64_t created_at;
};

typedef int (*store_site_cb)(const struct site_row *row, void *ctx);

int store_site_insert(struct db *db, const struct site_row *s, struct err *e);
/* Insert or rename a site (replication). */
int store_site_put(struct db *db, const struct site_row *s, struct err *e);
/* 1 when a site of this node already has the name, 0 when not. */
int store_site_name_taken(struct db *db, const char *name, struct err *e);
int store_site_get(struct db *db, const char *id, struct site_row *out, struct err *e);
int store_site_list(struct db *db, store_site_cb cb, void *ctx, struct err *e);

int store_meta_get(struct db *db, const char *key, char *out, size_t n, struct err *e);
int store_meta_set(struct db *db, const char *key, const char *value, struct err *e);

#endif
