/* forms.h — storage of form definitions: every version of every form, built-in or made on a node.
 * A stored definition never changes. Return convention: 0 done (1 found / 0 not found for lookups), -1 with
 * *e set on storage failure. Ownership: strings returned through char ** are malloc()ed for the caller. */
#ifndef SANAD_STORE_FORMS_H
#define SANAD_STORE_FORMS_H

#include <stdint.h>

#include "core/err.h"
#include "core/id.h"
#include "store/db.h"

#define FORM_ID_MAX 64

struct form_row {
    char row_id[ID_LEN];
    char form_id[FORM_ID_MAX + 1];
    int64_t version;
    int builtin;
    int64_t created_at;
    char *definition;       /* JSON text, malloc()ed: free it (store_form_row_free) */
};

void store_form_row_free(struct form_row *r);

/* Insert a definition (or, replicated again, keep the one held: definitions never change). */
int store_form_put(struct db *db, const struct form_row *r, struct err *e);
/* The definition stored under this row id. */
int store_form_get(struct db *db, const char *row_id, struct form_row *out, struct err *e);
/* The row of version `version` of form_id (0: its newest version). When two nodes made the same version
 * number, the highest row id holds it. */
int store_form_resolve(struct db *db, const char *form_id, int64_t version, struct form_row *out, struct err *e);

typedef int (*store_form_cb)(const struct form_row *r, void *ctx);
/* The newest version of every form, by form id. */
int store_form_list_latest(struct db *db, store_form_cb cb, void *ctx, struct err *e);
/* Every version of one form, newest first. */
int store_form_list_versions(struct db *db, const char *form_id, store_form_cb cb, void *ctx, struct err *e);

#endif
