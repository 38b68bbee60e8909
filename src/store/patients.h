/* patients.h — storage of the patient registry: the merged record (one row per patient), its derived
 * search terms, and per-site registration configuration. The record's fields and their rules are
 * services/patients.c's business; here a patient is a JSON object whose known keys map to columns.
 * Return convention: 0 done (1 found / 0 not found for lookups), -1 with *e set on storage failure.
 * Ownership: json_t values returned are new references; the caller json_decref()s them.
 */
#ifndef SANAD_STORE_PATIENTS_H
#define SANAD_STORE_PATIENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "core/id.h"
#include "store/db.h"

/* Insert or replace a patient row from its JSON record (keys: see the column list in patients.c). */
int store_patient_put(struct db *db, const json_t *p, const char *name_fold, int64_t created_at,
                      int64_t updated_at, struct err *e);
/* The record as JSON (all columns, plus "created_at"/"updated_at" as integers ms). */
int store_patient_get(struct db *db, const char *id, json_t **out, struct err *e);

/* What ranking needs of a candidate, without building JSON. */
struct patient_brief {
    char id[ID_LEN];
    char site_id[ID_LEN];
    char sex[12];
    char birth_date[11];        /* "" when unknown */
    char birth_precision[12];
    int deleted;
    char name_fold[512];
};
int store_patient_brief(struct db *db, const char *id, struct patient_brief *out, struct err *e);

/* Replace the search terms of a patient: remove the old ones (those it had), add the new ones. */
int store_patient_terms_set(struct db *db, const char *id, const char *const *old, size_t nold,
                            const char *const *terms, size_t n, struct err *e);

typedef int (*store_id_cb)(const char *patient_id, void *ctx);
/* Patients with a term in [lo, hi), at most limit: for a single term (hi = lo + "\x01") newest id first,
 * for a wider range in index order. The callback returns non-zero to stop. */
int store_patient_terms_scan(struct db *db, const char *lo, const char *hi, int64_t limit, store_id_cb cb,
                             void *ctx, struct err *e);
/* How many index entries fall in [lo, hi), counting no further than cap. */
int store_patient_terms_count(struct db *db, const char *lo, const char *hi, int64_t cap, int64_t *n, struct err *e);
/* Patients of the given sites (JSON array text of site ids), newest first, with id < before (NULL: from
 * the newest), at most limit; deleted ones skipped. */
int store_patient_list(struct db *db, const char *sites_json, const char *before, int64_t limit, store_id_cb cb,
                       void *ctx, struct err *e);
int store_patient_count(struct db *db, int64_t *n, struct err *e);

/* Registration configuration (custom fields, extra identifier types) of a site, as JSON text. */
int store_registration_config_get(struct db *db, const char *site_id, char **json, struct err *e);
int store_registration_config_put(struct db *db, const char *site_id, const char *json, int64_t at,
                                  struct err *e);

#endif
