/* buf.h — a growable byte buffer with a hard maximum size (after git's strbuf and curl's dynbuf).
 *
 * Invariants: b->data is never NULL after buf_init and is always NUL-terminated; b->len excludes the NUL.
 * Ownership: the buffer owns b->data until buf_free() or buf_detach() (after which the caller owns it).
 * Every append returns -1 and leaves the buffer unchanged when it would pass b->max or memory runs out.
 */
#ifndef SANAD_BUF_H
#define SANAD_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;     /* appends beyond this many bytes fail */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
char *buf_detach(struct buf *b, size_t *len);   /* caller now owns the storage; b is re-initialised */
void buf_reset(struct buf *b);                  /* len = 0, storage kept */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
