/* documents.h — storage of document metadata (the `documents` table); their bytes are in store/blobs.h.
 * Records cross this interface as JSON objects whose keys are the column names: id, patient_id, site_id,
 * encounter_id, sha256, content_type, size, filename, title, status, author, created_at (integer ms),
 * error_reason, error_by, error_at.
 * Return convention: 0 done (1 found / 0 not found for lookups), -1 with *e set on storage failure.
 * Ownership: json_t values returned are new references; inputs are borrowed. */
#ifndef SANAD_STORE_DOCUMENTS_H
#define SANAD_STORE_DOCUMENTS_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "store/db.h"

/* Insert or replace a document's metadata row. */
int store_document_put(struct db *db, const json_t *doc, struct err *e);
/* The document's row. */
int store_document_get(struct db *db, const char *id, json_t **out, struct err *e);
/* Documents of a patient, newest first (by id, which is time-ordered); after (a document id, may be NULL)
 * continues a listing; at most limit. cb returns non-zero to stop. */
int store_document_list(struct db *db, const char *patient_id, const char *after, int64_t limit,
                        int (*cb)(const json_t *row, void *ctx), void *ctx, struct err *e);

#endif
