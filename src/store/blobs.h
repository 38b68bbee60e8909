/* blobs.h — the content-addressed file store of a node: the bytes of documents, in files named by the
 * SHA-256 of their content under the database's own data directory, DATA/documents/ab/cdef... (the first two
 * hex digits name a subdirectory, so no directory grows past a few thousand entries).
 *
 * A file is written once and never changed: to a temporary file in its final directory, fsync'ed, then
 * renamed into place (and the directory fsync'ed), so a crash or a power cut never leaves a half-written
 * file under a content name. Files are mode 0600, directories 0700. The same content stored twice is one
 * file. Nothing is ever deleted here (a document marked entered in error keeps its content).
 * Return convention: 0 done (1 found / 0 not found for lookups), -1 with *e set on failure; messages name
 * no content and no file name other than the hash.
 * Ownership: data is borrowed; a descriptor from store_blob_open() belongs to the caller, who closes it.
 */
#ifndef SANAD_STORE_BLOBS_H
#define SANAD_STORE_BLOBS_H

#include <stddef.h>
#include <stdint.h>

#include "core/crypto.h"
#include "core/err.h"
#include "store/db.h"

#define BLOB_DIR "documents"

/* Is s a SHA-256 as 64 lower-case hex digits (the only names the store accepts)? */
int store_blob_name_valid(const char *s);

/* Store len bytes under their SHA-256 (sha256, hex, computed by the caller: the store trusts it, so hash
 * the bytes you pass). Already there with the same size: nothing is written. */
int store_blob_put(struct db *db, const char *sha256, const void *data, size_t len, struct err *e);

/* Is the content stored, with exactly size bytes? 1 yes, 0 no. */
int store_blob_has(struct db *db, const char *sha256, uint64_t size, struct err *e);

/* Open the content for reading: 1 with *fd and *size set, 0 when it is not stored. */
int store_blob_open(struct db *db, const char *sha256, int *fd, uint64_t *size, struct err *e);

#endif
