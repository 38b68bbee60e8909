/* appointments.h — appointments and follow-ups: booking, the day's queue, arrival, fulfilment,
 * cancellation, and the sweep that marks unattended appointments missed.
 *
 * An appointment is a patient's booking at a site for a time (starts_at, UTC; its day is derived) and a
 * service code ("antenatal", "ncd", "vaccination", "follow_up", ...), with a reason, notes, who booked it,
 * and encounter_id: the visit it was booked from (a follow-up) or the visit that fulfilled it. Its fields
 * merge one by one under replication (table "appointment"). Status: booked -> arrived -> fulfilled,
 * booked -> cancelled, and booked or arrived -> missed, set only by appointments_mark_missed() once the
 * day is more than one day past. "missed" is stored as a field of its own (missed_day, the day found
 * unattended) and shown as the status while the appointment is still booked or arrived on that day, so
 * a person's decision made on another node (arrived, fulfilled, cancelled, rescheduled) always wins over
 * a sweep it never saw, and two nodes sweeping the same appointment write the same value.
 * Callers see the appointments of patients of their sites (or made at their sites); others get 404.
 * Every read and write is audit-logged.
 * Ownership: json_t values returned are new references; inputs are borrowed.
 */
#ifndef SANAD_APPOINTMENTS_H
#define SANAD_APPOINTMENTS_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "services/caller.h"
#include "store/db.h"

#define APPOINTMENT_TABLE "appointment"
#define APPOINTMENTS_PAGE_MAX 100
#define APPOINTMENTS_QUEUE_MAX 1000     /* appointments shown in one day's queue of a site */

extern const struct json_field appointments_book_fields[];       /* book: starts_at and service required */
extern const struct json_field appointments_follow_up_fields[];  /* follow-up: service defaults to follow_up */
extern const struct json_field appointments_update_fields[];

/* Book an appointment for a patient: {starts_at, service, reason?, site_id?, notes?}. starts_at may be at
 * most a day in the past and five years ahead; the site defaults to the patient's when the caller has it
 * (else the caller's first). */
json_t *appointments_create(struct db *db, const struct caller *who, const char *patient_id, const json_t *input,
                            struct err *e);
/* Book a follow-up of a visit for its patient: {starts_at, service?, reason?, site_id?, notes?}; the
 * appointment's encounter_id names the visit, and its site defaults to the visit's. */
json_t *appointments_follow_up(struct db *db, const struct caller *who, const char *encounter_id,
                               const json_t *input, struct err *e);
/* Change status (allowed transitions only: 409 invalid_transition), starts_at (reschedule: a booked
 * appointment only), notes, or encounter_id (the visit that fulfilled it, with status fulfilled). */
json_t *appointments_update(struct db *db, const struct caller *who, const char *id, const json_t *input,
                            struct err *e);
json_t *appointments_get(struct db *db, const struct caller *who, const char *id, struct err *e);
/* {"items":[appointment...], "next": cursor|null}: the patient's appointments, latest starts_at first
 * (upcoming ones, then past ones). */
json_t *appointments_list(struct db *db, const struct caller *who, const char *patient_id, const char *cursor,
                          int64_t limit, struct err *e);
/* The queue of a site (NULL: the caller's first site) on a day ("YYYY-MM-DD", NULL: today, UTC):
 * {"site_id","date","items":[appointment + "patient_name"...],"truncated":bool}, by starts_at. For a past
 * day the missed sweep runs first. Audit-logged once. */
json_t *appointments_queue(struct db *db, const struct caller *who, const char *site, const char *date,
                           struct err *e);

/* Mark missed every booked or arrived appointment whose day is more than one day before now_ms's day
 * (so on Wednesday, Monday's and earlier), in one transaction, each through the change log and the audit
 * log; *marked receives how many. */
int appointments_mark_missed(struct db *db, int64_t now_ms, int64_t *marked, struct err *e);

/* Replication of appointments (table "appointment"). */
int appointments_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e);
int appointments_check_fields(const json_t *fields, struct err *e);
int appointments_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e);

#endif
