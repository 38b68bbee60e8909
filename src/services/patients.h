/* patients.h — the patient registry: register, read, change, delete (tombstone), search and find
 * duplicates. Every write is a field-level change in the replicated change log (changelog.h) and an
 * audit entry, in one transaction; every read and search is audit-logged. Callers see only patients of
 * their own sites.
 *
 * A patient record (JSON): id, site_id, given_name, family_name, middle_name, other_names[],
 * name_original, sex (female|male|other|unknown), birth_date ("YYYY", "YYYY-MM" or "YYYY-MM-DD" as its
 * precision allows), birth_precision (day|month|year|estimated), nationality, languages[],
 * preferred_language, phones[] (normalised), address, camp, shelter, identifiers {type: value},
 * custom {key: value}, created_at, updated_at. Input may give age_years (+ age_on) instead of a
 * birth date: the date is then estimated.
 * Ownership: returned json_t values are new references; inputs are borrowed.
 */
#ifndef SANAD_PATIENTS_H
#define SANAD_PATIENTS_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "core/json.h"
#include "services/audit.h"
#include "services/changelog.h"
#include "services/caller.h"
#include "store/db.h"

#define PATIENT_TABLE "patient"
#define PATIENTS_PAGE_MAX 100

json_t *patients_create(struct db *db, const struct caller *who, const json_t *input, struct err *e);
json_t *patients_update(struct db *db, const struct caller *who, const char *id, const json_t *input,
                        struct err *e);
int patients_delete(struct db *db, const struct caller *who, const char *id, struct err *e);
json_t *patients_get(struct db *db, const struct caller *who, const char *id, struct err *e);

struct patient_query {
    const char *q;          /* names in any script, identifier or phone; NULL/"" lists newest first */
    const char *sex;        /* filter, or NULL */
    const char *born_from;  /* "YYYY[-MM[-DD]]", compared with the record's precision tolerance */
    const char *born_to;
    const char *site;       /* one of the caller's sites, or NULL for all of them */
    int64_t limit;          /* 1..PATIENTS_PAGE_MAX, default 20 */
    const char *cursor;     /* from a previous page's "next" */
};

/* {"items":[{...patient..., "score": 0..1}], "next": cursor|null}, best match first. */
json_t *patients_search(struct db *db, const struct caller *who, const struct patient_query *q, struct err *e);

/* Duplicate candidates for a draft registration (same fields as create, unvalidated extras ignored):
 * {"items":[{"patient":{..},"score":..,"reasons":["same_identifier",...]}]}, best first. */
json_t *patients_match(struct db *db, const struct caller *who, const json_t *draft, struct err *e);

/* The accepted input fields of a patient (create, change, match, import rows), for json_check_fields(). */
extern const struct json_field patients_input_fields[];

/* Registering many patients in one transaction (CSV import, demo data):
 *   begin → row, row, ... → finish.
 * A row that fails validation is reported (row number, field, code, message) and skipped; without
 * skip_bad, finish then rolls back everything and returns the report with *e set to ERR_UNPROCESSABLE
 * import_failed. patients_import_row() returns -1 only on a storage failure, after which the caller must
 * finish with ok = 0 (all rolled back, NULL returned).
 * The report: {"created":N,"skipped":M,"errors":[{"row":..,"field":..,"code":..,"message":..}]} (at most
 * 1000 errors listed). */
struct term_batch;
struct patient_import {
    struct db *db;
    const struct caller *who;
    int skip_bad;
    struct changelog_tx tx;
    struct audit_head audit;
    json_t *errors;
    json_t *configs;        /* registration config per site, read once per batch */
    struct term_batch *batch;   /* search terms of the new rows, written sorted at the end */
    int64_t created, failed;
};
int patients_import_begin(struct patient_import *imp, struct db *db, const struct caller *who, int skip_bad,
                          struct err *e);
int patients_import_row(struct patient_import *imp, const json_t *row, int64_t rownum, struct err *e);
json_t *patients_import_finish(struct patient_import *imp, int ok, struct err *e);
/* The same in two steps, so that another thread can validate and derive the rows (fold names, compute
 * search terms, render the row) while the writer stores the rows before them:
 *   configs = patients_import_configs(db, who)       once: the registration configs of the caller's sites
 *   pp = patients_import_prepare(who, configs, row, n)   any thread; no database; NULL when out of memory
 *   patients_import_prepared(imp, pp)                    the writer, in order (as import_row)
 *   patients_prepared_free(pp)                           best by the thread that prepared it
 * A row whose validation needs the database after all (a site the caller does not have) is validated by
 * the writer. The configs object must not change while another thread prepares rows with it. */
struct patient_prepared;
json_t *patients_import_configs(struct db *db, const struct caller *who, struct err *e);
struct patient_prepared *patients_import_prepare(const struct caller *who, const json_t *configs, const json_t *row,
                                                 int64_t rownum);
int patients_import_prepared(struct patient_import *imp, const struct patient_prepared *pp, struct err *e);
void patients_prepared_free(struct patient_prepared *pp);
/* All of the above for an array of rows numbered from first_row. */
json_t *patients_import(struct db *db, const struct caller *who, const json_t *rows, int64_t first_row,
                        int skip_bad, struct err *e);

/* Call cb with every live patient of the caller's sites (API view), newest first; cb returns non-zero to
 * stop. The export is audit-logged. The json_t is borrowed for the call. */
typedef int (*patients_export_cb)(const json_t *patient, void *ctx);
int patients_export(struct db *db, const struct caller *who, patients_export_cb cb, void *ctx, struct err *e);

/* Apply flattened field values ({"given_name":..,"identifiers.unhcr":..,"custom.block":..}) to a record
 * and store it with its derived search data. Used by local writes and by replication. */
int patients_store_fields(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e);

/* Many patients stored in one transaction (a sync batch): between begin and end, the search terms of the
 * patients patients_store_fields adds on this thread are written sorted, at end (before the commit);
 * abort drops them with the transaction. */
void patients_apply_begin(void);
int patients_apply_end(struct db *db, struct err *e);
void patients_apply_abort(void);

/* Make sure the search index is the one this version of the code writes: a database indexed by an older
 * version is indexed again (once; minutes for a million patients). Inside the caller's write transaction,
 * or in its own when none is open. Every write path calls it; call it at start-up to pay the cost there. */
int patients_index_check(struct db *db, struct err *e);

/* The site of a stored patient (for replication to peers restricted to some sites): 1 found, 0 not. */
int patients_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e);

/* Are these flattened field names and value types ones a patient record can hold? For changes received
 * from other nodes (their values were validated where they were written). ERR_INVALID otherwise. */
int patients_check_fields(const json_t *fields, struct err *e);

/* Normalisers shared with import and tests. */
int patients_normalise_phone(const char *in, char *out, size_t outlen);
void patients_normalise_identifier(const char *in, char *out, size_t outlen);

#endif
