/* regfields.h — per-site registration configuration: custom patient fields (text, number, date, select,
 * boolean; label per language; required; searchable) and extra identifier types, defined by an admin and
 * enforced by the server on every registration and change.
 * Ownership: returned json_t values are new references.
 */
#ifndef SANAD_REGFIELDS_H
#define SANAD_REGFIELDS_H

#include <jansson.h>

#include "core/err.h"
#include "services/caller.h"
#include "store/db.h"

#define REGFIELDS_MAX 64

/* The configuration of a site: {"site_id","identifier_types":[..built-in and extra..],"fields":[..]}. */
json_t *regfields_get(struct db *db, const char *site_id, struct err *e);
/* Validate and replace a site's configuration ({"identifier_types":[extra..],"fields":[..]}). */
json_t *regfields_put(struct db *db, const struct caller *who, const char *site_id, const json_t *config,
                      struct err *e);

/* Is `type` an identifier type at this site (built-in or configured)? config from regfields_get(). */
int regfields_identifier_known(const json_t *config, const char *type);
/* Check one custom value against its definition; ERR_INVALID naming the field when wrong.
 * *searchable is set when the value should be indexed for exact search. */
int regfields_check_value(const json_t *config, const char *key, const json_t *value, int *searchable,
                          struct err *e);
/* The keys of required fields, for create. */
const json_t *regfields_fields(const json_t *config);

#endif
