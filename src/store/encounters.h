/* encounters.h — storage of encounters (visits) and of their form entries.
 * An encounter is a mutable record whose fields replication merges; an entry is written once and never
 * changed: its status (superseded, entered in error) is derived from the later entries that name it.
 * Records cross this interface as JSON objects whose keys are the column names (see encounters.c).
 * Return convention: 0 done (1 found / 0 not found for lookups), -1 with *e set on storage failure.
 * Ownership: json_t values returned are new references; inputs are borrowed. */
#ifndef SANAD_STORE_ENCOUNTERS_H
#define SANAD_STORE_ENCOUNTERS_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "store/db.h"

/* Insert or replace an encounter from its record (id, patient_id, site_id, type, status, provider,
 * started_at, ended_at, notes, deleted). */
int store_encounter_put(struct db *db, const json_t *enc, int64_t created_at, int64_t updated_at, struct err *e);
/* The same with the id apart (an "id" member of enc is not read): what replication stores, with no copy of
 * the record's state. */
int store_encounter_put_fields(struct db *db, const char *id, const json_t *enc, int64_t created_at,
                               int64_t updated_at, struct err *e);
/* The encounter, with created_at/updated_at as integer ms. */
int store_encounter_get(struct db *db, const char *id, json_t **out, struct err *e);

typedef int (*store_json_cb)(const json_t *row, void *ctx);
/* Live encounters of a patient, newest started first; after (an encounter id, may be NULL) continues a
 * listing after that encounter; at most limit. */
int store_encounter_list(struct db *db, const char *patient_id, const char *after, int64_t limit,
                         store_json_cb cb, void *ctx, struct err *e);

/* Live patients of the given sites (JSON array text of site ids) that have no encounter yet, oldest
 * first (demo data gives them visits). */
int store_patients_without_encounters(struct db *db, const char *sites_json, int (*cb)(const char *id, void *ctx),
                                      void *ctx, struct err *e);

/* Insert an entry (id, encounter_id, patient_id, site_id, form_id, form_version, form_row, values,
 * supersedes, withdraws, reason, author, recorded_at). Replicated again, the stored one is replaced by the
 * same content. */
int store_entry_put(struct db *db, const json_t *entry, int64_t created_at, struct err *e);
/* The same with the id apart (an "id" member of fields is not read): what replication stores, with no
 * copy of the change's fields. vals_text (may be NULL: written from fields' "values") is the JSON text of
 * the values, vals_len bytes, as the change holds it. */
int store_entry_put_fields(struct db *db, const char *id, const json_t *fields, const char *vals_text,
                           size_t vals_len, int64_t created_at, struct err *e);
/* The entry, with the derived superseded_by (newest correcting entry id or null) and withdrawn_by. */
int store_entry_get(struct db *db, const char *id, json_t **out, struct err *e);
/* Every entry of an encounter (corrections and withdrawals included), oldest first. */
int store_entry_list_encounter(struct db *db, const char *encounter_id, store_json_cb cb, void *ctx, struct err *e);
/* Entries recorded at the given sites (JSON array text of site ids), in id order after `after` (NULL: from
 * the first), at most limit. */
int store_entry_list_sites(struct db *db, const char *sites_json, const char *after, int64_t limit,
                           store_json_cb cb, void *ctx, struct err *e);
/* Entries of a patient, newest first; after (an entry id, may be NULL) continues a listing; at most limit. */
int store_entry_list_patient(struct db *db, const char *patient_id, const char *after, int64_t limit,
                             store_json_cb cb, void *ctx, struct err *e);

#endif
