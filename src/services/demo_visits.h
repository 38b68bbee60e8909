/* demo_visits.h — synthetic visits for demo and benchmark nodes: each patient of the caller's sites that
 * has no visit yet gets
 * encounters (finished, within the last year) holding a vitals and a consultation entry (coded diagnosis,
 * notes in several languages), recorded through clinical_batch_* (encounters.h): the same checks, change
 * log and audit as a clinician's, many patients to a transaction. Deterministic for a seed. */
#ifndef SANAD_DEMO_VISITS_H
#define SANAD_DEMO_VISITS_H

#include <stdint.h>

#include "core/err.h"
#include "services/caller.h"
#include "store/db.h"

struct demo_visits_report {
    int64_t patients, encounters, entries;
};

/* `visits` (0..100) encounters per patient with `entries` (0..2: vitals, then consultation) each. */
int demo_add_visits(struct db *db, const struct caller *who, int visits, int entries, uint64_t seed,
                    struct demo_visits_report *report, struct err *e);

#endif
