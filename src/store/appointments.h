/* appointments.h — storage of appointments: one mutable row per appointment, merged field by field by
 * replication, with its day (YYYY-MM-DD of starts_at) derived here for the day's queue.
 * Records cross this interface as JSON objects whose keys are the column names (see appointments.c).
 * Return convention: 0 done (1 found / 0 not found for lookups), -1 with *e set on storage failure.
 * Ownership: json_t values returned are new references; inputs are borrowed. */
#ifndef SANAD_STORE_APPOINTMENTS_H
#define SANAD_STORE_APPOINTMENTS_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "store/db.h"

/* Called with each row (borrowed for the call); non-zero stops the listing. */
typedef int (*store_appointment_cb)(const json_t *row, void *ctx);

/* Insert or replace an appointment from its record (id, patient_id, site_id, starts_at, service, reason,
 * status, encounter_id, booked_by, notes, missed_day); day is derived from starts_at. A replaced row keeps
 * its created_at. */
int store_appointment_put(struct db *db, const json_t *appt, int64_t created_at, int64_t updated_at, struct err *e);
/* The appointment, with day, and created_at/updated_at as integer ms. */
int store_appointment_get(struct db *db, const char *id, json_t **out, struct err *e);
/* Appointments of a patient, latest starts_at first; after (an appointment id, may be NULL) continues a
 * listing after that appointment; at most limit. */
int store_appointment_list_patient(struct db *db, const char *patient_id, const char *after, int64_t limit,
                                   store_appointment_cb cb, void *ctx, struct err *e);
/* The appointments of a site on a day, by starts_at, at most limit, each with the patient's names from the
 * registry ("patient_names": {given_name, middle_name, family_name, name_original}, or null when the
 * patient is not on this node); appointments of deleted patients are left out. */
int store_appointment_list_day(struct db *db, const char *site_id, const char *day, int64_t limit,
                               store_appointment_cb cb, void *ctx, struct err *e);
/* Booked or arrived appointments whose day is before `before_day` and that are not yet marked missed for
 * that day (missed_day differs from day), oldest day first. */
int store_appointment_list_unattended(struct db *db, const char *before_day, store_appointment_cb cb, void *ctx,
                                      struct err *e);

#endif
