/* chart.h — storage of chart items (problems, allergies, reported medications, immunizations) and the
 * reads the patient summary and timeline need across tables (latest entries of a form, the next
 * appointment, the timeline's merged order). Records cross this interface as JSON objects.
 * Return convention: 0 done (1 found / 0 not found for lookups), -1 with *e set on storage failure.
 * Ownership: json_t values returned are new references; inputs are borrowed. */
#ifndef SANAD_STORE_CHART_H
#define SANAD_STORE_CHART_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "store/db.h"
#include "store/encounters.h"

/* Insert or replace a chart item: {id, kind, patient_id, site_id, status, data: {...}}. */
int store_chart_put(struct db *db, const json_t *item, int64_t created_at, int64_t updated_at, struct err *e);
/* The item, with created_at/updated_at as integer ms. */
int store_chart_get(struct db *db, const char *id, json_t **out, struct err *e);
/* The items of a patient (of one kind, or every kind when kind is NULL), in id (creation) order. */
int store_chart_list(struct db *db, const char *patient_id, const char *kind, store_json_cb cb, void *ctx,
                     struct err *e);

/* Entries of a patient made with one form that are neither superseded nor withdrawn, newest first, at most
 * limit (rows as store_entry_get gives them). */
int store_entries_current(struct db *db, const char *patient_id, const char *form_id, int64_t limit,
                          store_json_cb cb, void *ctx, struct err *e);

/* The patient's next appointment (booked or arrived, starting at or after `from`, "YYYY-MM-DDTHH:MM:SSZ"):
 * {id, starts_at, service, reason, status, site_id}. */
int store_next_appointment(struct db *db, const char *patient_id, const char *from, json_t **out, struct err *e);

/* One page of a patient's timeline: encounters (by start) and form entries (by recording time) merged,
 * newest first; after_time/after_id (both NULL for the first page) continue after an item. cb gets
 * {"type":"encounter"|"entry","id":..,"at":..}. */
int store_timeline(struct db *db, const char *patient_id, const char *after_time, const char *after_id,
                   int64_t limit, store_json_cb cb, void *ctx, struct err *e);

#endif
