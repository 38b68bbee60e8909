/* sniff.h — what an uploaded file really is: the media type a client declares, checked against the
 * content's own leading bytes, for the short list of types a node stores as documents.
 *
 * Accepted (docs/security.md, "Documents"): application/pdf, image/jpeg, image/png, image/webp and
 * text/plain in UTF-8. Never: SVG, HTML, XML or anything else that a browser may run as a page or script.
 * A declared type is accepted only when the content has that type's signature ("magic bytes"); text must be
 * UTF-8 without control characters and must not open like markup ("<") or a script ("#!").
 * Pure functions over caller memory: nothing is allocated and nothing is kept.
 */
#ifndef SANAD_SNIFF_H
#define SANAD_SNIFF_H

#include <stddef.h>

#include "core/err.h"

/* The canonical stored form of each accepted type. */
#define SNIFF_PDF "application/pdf"
#define SNIFF_JPEG "image/jpeg"
#define SNIFF_PNG "image/png"
#define SNIFF_WEBP "image/webp"
#define SNIFF_TEXT "text/plain; charset=utf-8"

/* The canonical type a Content-Type header value names ("IMAGE/PNG", "text/plain; charset=UTF-8",
 * "image/jpg"), or NULL when it names no accepted type (or text in another charset). The result is one
 * of the SNIFF_* strings (static storage). */
const char *sniff_canonical_type(const char *header);

/* Is s exactly one of the SNIFF_* strings (a stored type from another node)? */
int sniff_type_known(const char *s);

/* What the content is, by its bytes: one of the SNIFF_* strings, or NULL when it is none of them.
 * *what (may be NULL) receives a few words for messages ("an HTML or XML document", "a program", ...). */
const char *sniff_detect(const void *data, size_t len, const char **what);

/* The whole upload rule: the declared header value (may be NULL) against the content. 0 with *canonical
 * set when they agree; -1 with *e set otherwise:
 *   ERR_UNSUPPORTED_MEDIA (415) unsupported_media_type: no type, or a type not on the list (SVG, HTML, ...)
 *   ERR_UNPROCESSABLE (422) empty_document: no bytes
 *   ERR_UNPROCESSABLE (422) content_mismatch: the bytes are not what the header says */
int sniff_check(const char *declared, const void *data, size_t len, const char **canonical, struct err *e);

/* The usual file name extension of a canonical type ("pdf", "jpg", "png", "webp", "txt"), or "bin". */
const char *sniff_extension(const char *canonical);
/* Is ext (without the dot, any case) a usual extension of the canonical type? (jpg and jpeg for JPEG) */
int sniff_extension_fits(const char *canonical, const char *ext);

/* Is the whole of s (n bytes) valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)? */
int sniff_utf8_valid(const void *s, size_t n);

#endif
