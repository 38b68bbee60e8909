/* documents.h — files attached to a patient or to one of their encounters: lab results, referral letters,
 * images, PDFs.
 *
 * A document is its metadata (patient, site, encounter, title, the file name it had, media type, size,
 * SHA-256, status, author, time) and its content, kept once per distinct content in the node's
 * content-addressed store (store/blobs.h). Only the types core/sniff.h accepts are stored, and only when
 * the content's own bytes match the declared type. A document is never changed or deleted: it can be
 * marked "entered in error" (with a reason), and its content stays readable. Callers see the documents
 * of patients of their sites (or made at their sites); every upload, read, listing and download is
 * audited.
 *
 * Replication (table "document"): the creating change carries every metadata field and the content as
 * unpadded base64url ("content"), with "sha256" and "size" beside it; a receiving node checks that the
 * three travel together and that the content hashes to sha256 before it stores anything (docs/sync.md).
 * Ownership: json_t values returned are new references; inputs are borrowed.
 */
#ifndef SANAD_DOCUMENTS_H
#define SANAD_DOCUMENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "services/caller.h"
#include "store/db.h"

#define DOCUMENT_TABLE "document"
#define DOCUMENT_MAX_BYTES (10u << 20)      /* 10 MiB a file: the upload route's body limit */
#define DOCUMENT_TITLE_MAX 200              /* bytes */
#define DOCUMENT_FILENAME_MAX 255           /* bytes */
#define DOCUMENT_REASON_MAX 500             /* bytes */
#define DOCUMENTS_PAGE_MAX 100

extern const struct json_field documents_withdraw_fields[];

struct document_upload {
    const char *content_type;   /* the declared media type (the Content-Type header), may be NULL */
    const void *data;           /* the file's bytes */
    size_t len;
    const char *title;          /* may be NULL */
    const char *filename;       /* the name it had on the uploader's device, may be NULL (a path is cut) */
    const char *encounter_id;   /* the visit it belongs to, may be NULL */
};

/* Store a document for a patient. Errors: ERR_UNSUPPORTED_MEDIA unsupported_media_type, ERR_UNPROCESSABLE
 * empty_document / content_mismatch (core/sniff.h), ERR_TOO_LARGE document_too_large, ERR_INVALID
 * invalid_title / invalid_filename, ERR_NOT_FOUND patient_not_found / encounter_not_found,
 * ERR_UNPROCESSABLE encounter_mismatch (the encounter is another patient's). Returns the metadata. */
json_t *documents_upload(struct db *db, const struct caller *who, const char *patient_id,
                         const struct document_upload *in, struct err *e);
/* The metadata of a document: {id, patient_id, site_id, encounter_id, title, filename, content_type, size,
 * sha256, status, author, created_at, error_reason, error_by, error_at}. */
json_t *documents_get(struct db *db, const struct caller *who, const char *id, struct err *e);
/* {"items":[metadata...], "next": cursor|null}, newest first, entered-in-error ones included. */
json_t *documents_list(struct db *db, const struct caller *who, const char *patient_id, const char *cursor,
                       int64_t limit, struct err *e);
/* Mark a document entered in error: {reason}. Returns the metadata as it now reads. ERR_CONFLICT
 * already_entered_in_error when it is marked already. */
json_t *documents_withdraw(struct db *db, const struct caller *who, const char *id, const json_t *input,
                           struct err *e);

/* The content of a document, opened for a download (audited as document.download before it is given). */
struct document_content {
    int fd;                     /* open for reading: the caller closes it (or hands it to the reply) */
    uint64_t size;
    char content_type[48];      /* the stored, checked type */
    /* the name to save it under: UTF-8, no path or control characters, with an extension that fits the type
     * (a stored "x.html" of a PDF is offered as "x.html.pdf") */
    char download_name[DOCUMENT_FILENAME_MAX + 8];
};
int documents_open_content(struct db *db, const struct caller *who, const char *id, struct document_content *out,
                           struct err *e);

/* The name to offer a download under, from a stored file name or title (either may be NULL) and the
 * canonical type (exposed for tests). out has room for DOCUMENT_FILENAME_MAX + 8 bytes. */
void documents_download_name(const char *filename, const char *title, const char *content_type,
                             char out[DOCUMENT_FILENAME_MAX + 8]);

/* Replication of documents (table "document"). */
int documents_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e);
int documents_check_fields(const json_t *fields, struct err *e);
int documents_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e);

#endif
