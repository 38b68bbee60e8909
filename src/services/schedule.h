/* schedule.h — the immunization schedule engine: a schedule as data (share/schedules/who_epi.json, or a
 * site's national schedule in the same format, docs/immunizations.md) and, for one person's dose history,
 * the plan: what is due now, overdue, next and when, complete or not recommended, and which doses do not
 * count, each with the rule that produced it. Pure: no database, no clock (the caller says what today is).
 * Ownership: schedule_load() returns a schedule the caller frees with schedule_free(); schedule_builtin()'s
 * belongs to the module and lives as long as the process. A loaded schedule is read-only, so threads may
 * share one. json_t values returned are new references; inputs are borrowed. */
#ifndef SANAD_SCHEDULE_H
#define SANAD_SCHEDULE_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"

#define SCHEDULE_FORMAT        1    /* the "format" a schedule declares */
#define SCHEDULE_ANTIGENS_MAX  64
#define SCHEDULE_VACCINES_MAX  200
#define SCHEDULE_SERIES_MAX    64
#define SCHEDULE_PLANS_MAX     8    /* plans of one series */
#define SCHEDULE_DOSES_MAX     12   /* doses of one plan */
#define SCHEDULE_GIVE_MAX      8    /* vaccines a series gives, by age */
#define SCHEDULE_COMBOS_MAX    16
#define SCHEDULE_HISTORY_MAX   500  /* doses in one history */
#define SCHEDULE_CODE_MAX      32   /* bytes of a vaccine code, antigen or series id */

struct schedule;

/* Parse and check a schedule (the format of share/schedules/who_epi.json). NULL with *e set
 * (ERR_UNPROCESSABLE "invalid_schedule", the message and e->field naming the path, e.g.
 * "series[3].plans[0].doses[1].min_interval"; ERR_INTERNAL when out of memory) when it is malformed. */
struct schedule *schedule_load(const json_t *def, struct err *e);
/* The embedded WHO schedule, parsed once (thread-safe). Do not free. NULL with *e (ERR_INTERNAL) only if
 * the shipped file is broken, which the unit tests rule out. */
struct schedule *schedule_builtin(struct err *e);
void schedule_free(struct schedule *s);

/* The schedule's "id" and "version" (borrowed; valid while s is). */
const char *schedule_id(const struct schedule *s);
const char *schedule_version(const struct schedule *s);

/* 1 when code is one of the schedule's vaccines (the codes a dose may be recorded with). */
int schedule_vaccine_known(const struct schedule *s, const char *code);

/* The plan for one person.
 * history: array (at most SCHEDULE_HISTORY_MAX) of {"vaccine": code, "dose": n (optional, informative:
 *   the engine numbers doses itself), "date": "YYYY-MM-DD", "documented": bool (optional, default true;
 *   false = reported without a card or record)}; any other key is an error.
 * birth, today: day numbers (core/date.h), birth <= today, at most 150 years apart.
 * sex: "female", "male", other or NULL (a series for one sex is offered when the sex is not recorded).
 * Returns {"schedule": id, "version", "due": [...], "overdue": [...], "next": [...], "complete": [...],
 *   "not_recommended": [...], "invalid_doses": [...]}; due, overdue and next items are
 *   {"vaccine", "dose", "earliest", "recommended", "latest" (date or null), "rule", "covers":
 *   [{"series", "dose"}], "reported": bool}; docs/immunizations.md describes the others.
 * Doses given before the minimum age or interval (less the schedule's grace days) are listed in
 * invalid_doses and do not count; reported doses without documents count and are flagged.
 * NULL with *e: ERR_UNPROCESSABLE "invalid_history" (message and e->field name the item, e.g.
 * "history[2].date") or "invalid_birth", ERR_INTERNAL when out of memory. */
json_t *schedule_due(const struct schedule *s, const json_t *history, int64_t birth, const char *sex,
                     int64_t today, struct err *e);

#endif
