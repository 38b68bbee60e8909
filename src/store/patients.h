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

/* Set a stored patient's name_fold (derived from its names; filled in later when a sync batch stores the
 * row before its names can be folded). */
int store_patient_set_name_fold(struct db *db, const char *id, const char *name_fold, struct err *e);

/* A patient row as the text it is stored as: a writer may render it from the record ahead of storing it
 * (store_patient_row_of, on another thread: it needs no database). The strings are borrowed from the
 * record, except the rendered JSON columns, which store_patient_row_free() frees. */
#define STORE_PATIENT_TEXT_COLS 13
#define STORE_PATIENT_JSON_COLS 5
struct patient_row {
    const char *id;
    const char *text[STORE_PATIENT_TEXT_COLS];  /* site_id .. shelter; NULL for none */
    const char *json[STORE_PATIENT_JSON_COLS];  /* other_names, languages, phones, identifiers, custom */
    char *owned[STORE_PATIENT_JSON_COLS];
    int deleted;
    const char *name_fold;
    int64_t created_at, updated_at;
};
/* Fill r from a JSON record; -1 when out of memory (free r all the same). */
int store_patient_row_of(const json_t *p, struct patient_row *r);
void store_patient_row_free(struct patient_row *r);
int store_patient_put_row(struct db *db, const struct patient_row *r, struct err *e);
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

/* Add (term, patient id) pairs, best given in index order (term, then id): a batch of sorted pairs touches
 * each page of the index once. Pairs already there are skipped. */
int store_patient_terms_insert(struct db *db, const char *const *terms, const char *const *ids, size_t n,
                               struct err *e);
/* Remove every search term (before the index is rebuilt). */
int store_patient_terms_clear(struct db *db, struct err *e);

typedef int (*store_id_cb)(const char *patient_id, void *ctx);
/* Ids of all patients (deleted ones too) above after ("" or NULL: from the first), in id order, at most
 * limit. */
int store_patient_ids_after(struct db *db, const char *after, int64_t limit, store_id_cb cb, void *ctx,
                            struct err *e);
/* Patients with a term in [lo, hi), at most limit: for a single term (hi = lo + "\x01") newest id first,
 * for a wider range in index order. The callback returns non-zero to stop. */
int store_patient_terms_scan(struct db *db, const char *lo, const char *hi, int64_t limit, store_id_cb cb,
                             void *ctx, struct err *e);
/* The first term in [lo, hi) into out (cut to outlen): 1 found, 0 none. */
int store_patient_term_first(struct db *db, const char *lo, const char *hi, char *out, size_t outlen, struct err *e);
/* Does the patient hold the term: 1 yes, 0 no. */
int store_patient_term_has(struct db *db, const char *term, const char *id, struct err *e);
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
