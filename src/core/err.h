/* err.h — the one error value every layer returns through an out-parameter.
 *
 * Ownership: a struct err is plain storage owned by the caller; nothing inside it is heap-allocated.
 * A function that fails fills it with err_set() and returns -1, so a caller writes
 *     if (service_call(..., &e) < 0) return reply_error(req, &e);
 * The kind says what class of failure it is (the HTTP layer maps it to a status); the code is a stable
 * snake_case word clients can branch on; the message is a sentence a person can act on, with no health data.
 */
#ifndef SANAD_ERR_H
#define SANAD_ERR_H

enum err_kind {
    ERR_NONE = 0,
    ERR_INVALID,        /* the input is malformed or breaks a rule (400) */
    ERR_UNAUTHENTICATED,/* no valid session or credentials (401) */
    ERR_FORBIDDEN,      /* authenticated, not allowed (403) */
    ERR_NOT_FOUND,      /* no such record, or not visible to the caller (404) */
    ERR_CONFLICT,       /* the change clashes with existing state (409) */
    ERR_TOO_LARGE,      /* input over a hard limit (413) */
    ERR_UNPROCESSABLE,  /* well-formed but fails validation (422) */
    ERR_THROTTLED,      /* too many attempts; retry_after says when (429) */
    ERR_INTERNAL,       /* our fault: storage failure, out of memory (500) */
    ERR_UNSUPPORTED_MEDIA, /* a body of a media type the operation does not take (415) */
};

struct err {
    enum err_kind kind;
    char code[48];      /* stable machine code, e.g. "invalid_json" */
    char message[256];  /* human sentence, never health data */
    int retry_after;    /* seconds, with ERR_THROTTLED */
    char field[48];     /* the input field at fault, when one is ("" otherwise) */
};

/* Fill *e (when e is not NULL) and return -1. The message is printf-formatted and truncated to fit. */
int err_set(struct err *e, enum err_kind kind, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* err_set() naming the input field at fault; returns -1. */
int err_set_field(struct err *e, const char *field, enum err_kind kind, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Name the input field at fault in an error already set; returns -1 like err_set. */
int err_field(struct err *e, const char *field);

/* Reset *e to "no error". */
void err_clear(struct err *e);

#endif
