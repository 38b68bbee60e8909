/* util.h — small helpers with no better home: range-checked number parsing, clocks, files.
 * Ownership: functions that return heap memory say so; everything else writes into caller storage.
 */
#ifndef SANAD_UTIL_H
#define SANAD_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parse a base-10 integer in [min, max] (after OpenBSD's strtonum). 0 on success; -1 and *errstr set
 * to "invalid", "too small" or "too large" otherwise. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out, const char **errstr);

int64_t now_ms(void);           /* wall clock, milliseconds since the Unix epoch */
int64_t monotonic_us(void);     /* monotonic clock, microseconds */

/* Format ms-since-epoch as RFC 3339 UTC with milliseconds ("2026-11-28T11:14:40.123Z"); out >= 32 bytes. */
void format_time_ms(int64_t ms, char *out, size_t outlen);

/* Read a whole file of at most max bytes. Returns a malloc'ed NUL-terminated buffer the caller frees,
 * or NULL with errno set (EFBIG when larger than max). */
char *read_file(const char *path, size_t max, size_t *len);

/* Read a password from a file: the first line, without its newline. Same ownership as read_file. */
char *read_password_file(const char *path);

/* Plain string helpers (not constant-time: use crypto_equal() for secrets). */
int str_equal(const char *a, const char *b);
int str_has_prefix(const char *s, const char *prefix);

/* 1 when s (may be NULL) equals one of the strings of a NULL-terminated list. */
int str_in_list(const char *s, const char *const *list);

#endif
