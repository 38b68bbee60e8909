/* encounters.h — visits and the clinical facts recorded in them.
 *
 * An encounter is a visit of a patient at a site (consultation, triage, follow_up, outreach,
 * health_assessment) with a provider, start and end time and status (planned, in_progress, finished,
 * cancelled); its fields merge one by one under replication. An entry is the values of one form version
 * filled once: append-only. A correction is a new entry that supersedes the old one; "entered in error" is
 * a withdrawal record that names the entry; nothing is overwritten and every write and read is audited.
 * Callers see the encounters and entries of patients of their sites (or recorded at their sites).
 * Ownership: json_t values returned are new references; inputs are borrowed.
 */
#ifndef SANAD_ENCOUNTERS_H
#define SANAD_ENCOUNTERS_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "services/audit.h"
#include "services/caller.h"
#include "services/changelog.h"
#include "store/db.h"

#define ENCOUNTER_TABLE "encounter"
#define ENTRY_TABLE "entry"
#define ENCOUNTERS_PAGE_MAX 100

extern const struct json_field encounters_input_fields[];
extern const struct json_field entries_input_fields[];
extern const struct json_field entries_withdraw_fields[];

/* Open an encounter for a patient: {type, status?, site_id?, provider?, started_at?, ended_at?, notes?}.
 * Defaults: status in_progress, the patient's site when the caller has it (else the caller's first site),
 * the caller as provider, now as start. */
json_t *encounters_create(struct db *db, const struct caller *who, const char *patient_id, const json_t *input,
                          struct err *e);
/* Change status, provider, ended_at or notes (fields not sent stay). */
json_t *encounters_update(struct db *db, const struct caller *who, const char *id, const json_t *input,
                          struct err *e);
/* The encounter with its entries (each with its status: active, superseded or entered_in_error); with lang,
 * each entry also has "display": its values as read in that language (formdef.h, form_display). */
json_t *encounters_get(struct db *db, const struct caller *who, const char *id, const char *lang, struct err *e);
/* {"items":[encounter...], "next": cursor|null}, newest first. */
json_t *encounters_list(struct db *db, const struct caller *who, const char *patient_id, const char *cursor,
                        int64_t limit, struct err *e);

/* Record an entry: {form, version?, values, supersedes?}. The values are checked against the form version
 * (the newest when none is given): on failure NULL, ERR_UNPROCESSABLE invalid_entry and *field_errors
 * {field: message}. */
json_t *entries_create(struct db *db, const struct caller *who, const char *encounter_id, const json_t *input,
                       json_t **field_errors, struct err *e);
json_t *entries_get(struct db *db, const struct caller *who, const char *id, const char *lang, struct err *e);
/* Mark an entry entered in error: {reason}. Returns the entry as it now reads. */
json_t *entries_withdraw(struct db *db, const struct caller *who, const char *id, const json_t *input,
                         struct err *e);

/* Recording many encounters and entries in one transaction (demo data, imports): begin, then any number
 * of clinical_batch_encounter / clinical_batch_entry (same rules, audit and change log as the single
 * calls), then finish (ok = 0 rolls everything back; so does a storage failure at commit). A call that
 * fails leaves the batch usable only for finish(ok = 0) when its error is ERR_INTERNAL. */
struct clinical_batch {
    struct db *db;
    const struct caller *who;
    struct changelog_tx tx;
    struct audit_head audit;
};
int clinical_batch_begin(struct clinical_batch *b, struct db *db, const struct caller *who, struct err *e);
json_t *clinical_batch_encounter(struct clinical_batch *b, const char *patient_id, const json_t *input, struct err *e);
json_t *clinical_batch_entry(struct clinical_batch *b, const char *encounter_id, const json_t *input,
                             json_t **field_errors, struct err *e);
int clinical_batch_finish(struct clinical_batch *b, int ok, struct err *e);

/* Call cb with every form entry of the caller's sites (withdrawals folded in as status), oldest first, as
 * entries_get shows it, with "display" in lang when lang is not NULL; cb returns non-zero to stop. The
 * export is audit-logged. The json_t is borrowed for the call. */
int entries_export(struct db *db, const struct caller *who, const char *lang,
                   int (*cb)(const json_t *entry, void *ctx), void *ctx, struct err *e);

/* The visibility rule of every clinical record (encounters, entries, chart items, documents, appointments):
 * a caller sees a patient of one of their sites (0 and *p filled; ERR_NOT_FOUND patient_not_found
 * otherwise), and a record ({site_id, patient_id, ...}) recorded at one of their sites or of a patient of
 * one of their sites (1 visible, 0 not). */
struct patient_brief;
int clinical_patient_visible(struct db *db, const struct caller *who, const char *id, struct patient_brief *p,
                             struct err *e);
int clinical_record_visible(struct db *db, const struct caller *who, const json_t *rec);
/* The clinical record id, read with get, for who: a new reference when it exists, live(rec, arg) holds
 * (live may be NULL) and who may see it (clinical_record_visible); else NULL with ERR_NOT_FOUND code and
 * "no <what> with this id" (one answer whether it is missing, gone or another site's). */
json_t *clinical_load(struct db *db, const struct caller *who, const char *id,
                      int (*get)(struct db *db, const char *id, json_t **out, struct err *e),
                      int (*live)(const json_t *rec, const void *arg), const void *arg, const char *code,
                      const char *what, struct err *e);
/* Store a flat clinical record with put: base (NULL for a new one) with changes over it, under id, keeping
 * base's created_at (else at); updated at. */
int clinical_store(struct db *db, const char *id, const json_t *base, const json_t *changes, int64_t at,
                   int (*put)(struct db *db, const json_t *rec, int64_t created_at, int64_t updated_at,
                              struct err *e),
                   struct err *e);
/* An encounter who may see and that is not deleted (clinical_load). */
json_t *encounters_load(struct db *db, const struct caller *who, const char *id, struct err *e);
/* The site_id of a stored clinical record read with get (for replication to peers restricted to some
 * sites): 1 found (site filled), 0 not found, -1 on failure. */
int clinical_site_of(struct db *db, int (*get)(struct db *db, const char *id, json_t **out, struct err *e),
                     const char *id, char site[ID_LEN], struct err *e);

/* Replication of encounters and entries (tables "encounter" and "entry"). */
int encounters_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e);
int encounters_check_fields(const json_t *fields, struct err *e);
int encounters_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e);
int entries_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e);
/* entries_apply() for an entry's first (and only) change, given the JSON text of its "values" as the
 * change holds it (values_len bytes): stored as it is rather than written again. */
int entries_apply_first(struct db *db, const char *id, const json_t *fields, const char *values_text,
                        size_t values_len, int64_t at, struct err *e);
int entries_check_fields(const json_t *fields, struct err *e);
int entries_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e);

#endif
