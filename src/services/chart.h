/* chart.h — the patient chart: problems, allergies, reported (home) medications and immunizations as
 * chart items; the summary a clinician reads first; the timeline of visits and entries.
 *
 * A chart item has a kind, the patient, the site it was recorded at, a status and the kind's fields
 * (docs/chart.md lists them). Items merge field by field under replication (table "chart_item"). An
 * immunization's clinical fields (vaccine, dose, date, lot, ...) are written once: only its status
 * (entered_in_error) and notes change afterwards. Visibility as for encounters: callers of the patient's
 * site or of the item's site. Every read and write is audited.
 * Ownership: json_t values returned are new references; inputs are borrowed.
 */
#ifndef SANAD_CHART_H
#define SANAD_CHART_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "core/id.h"
#include "services/caller.h"
#include "store/db.h"

#define CHART_TABLE "chart_item"
#define TIMELINE_PAGE_MAX 100

/* kind: "problem", "allergy", "medication" or "immunization". */
json_t *chart_create(struct db *db, const struct caller *who, const char *kind, const char *patient_id,
                     const json_t *input, struct err *e);
/* Change the fields sent (null clears an optional one); kind must be the item's. */
json_t *chart_update(struct db *db, const struct caller *who, const char *kind, const char *id, const json_t *input,
                     struct err *e);
json_t *chart_get(struct db *db, const struct caller *who, const char *kind, const char *id, struct err *e);
/* {"items":[...]}: a patient's items of a kind; entered-in-error ones only when all is set. */
json_t *chart_list(struct db *db, const struct caller *who, const char *kind, const char *patient_id, int all,
                   struct err *e);

/* The summary: {"patient", "alerts", "allergies", "problems", "current_medications", "last_vitals",
 * "immunizations": {"given", "due", "overdue", "next"}, "next_appointment"}. */
json_t *chart_summary(struct db *db, const struct caller *who, const char *patient_id, struct err *e);
/* {"due","overdue","next","complete","invalid_doses",...} for the patient's immunizations under the site's
 * schedule (WHO's unless the node loaded a national one). */
json_t *chart_immunizations_due(struct db *db, const struct caller *who, const char *patient_id, struct err *e);
/* {"items":[{"type":"encounter"|"entry", ...the record...}], "next": cursor|null}, newest first. */
json_t *chart_timeline(struct db *db, const struct caller *who, const char *patient_id, const char *cursor,
                       int64_t limit, struct err *e);

/* The immunization schedule a site follows: {"site_id", "national": bool, "schedule": {...}}. A node may
 * load a national schedule for a site (the format of share/schedules/who_epi.json, docs/immunizations.md);
 * it is node configuration, not replicated: load it on each node serving the site. */
json_t *chart_schedule_get(struct db *db, const struct caller *who, const char *site, struct err *e);
json_t *chart_schedule_put(struct db *db, const struct caller *who, const char *site, const json_t *def,
                           struct err *e);

/* Replication of chart items. */
int chart_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e);
int chart_check_fields(const json_t *fields, struct err *e);
int chart_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e);

#endif
