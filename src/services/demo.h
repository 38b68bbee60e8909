/* demo.h — synthetic patients for demos, training and benchmarks (never for a node with real patients). */
#ifndef SANAD_DEMO_H
#define SANAD_DEMO_H

#include <stdint.h>

#include "core/err.h"
#include "services/caller.h"
#include "store/db.h"

typedef void (*demo_progress_cb)(int64_t done, int64_t total);

/* Register count synthetic patients at site, in batches of 50,000 (each one transaction), through the
 * same import path as a CSV file. The same seed gives the same patients. */
int demo_add_patients(struct db *db, const struct caller *who, const char *site, int64_t count, uint64_t seed,
                      demo_progress_cb progress, struct err *e);

#endif
