/* arena.h — a region allocator: many small allocations, one free (one arena per request, as h2o's pool).
 *
 * Ownership: everything returned by arena_* belongs to the arena and is released by arena_free(); never
 * free() it. Allocation aborts the process on out-of-memory (as zmalloc does): request memory is small and
 * bounded by the input limits, so running out is not a condition a handler can recover from.
 */
#ifndef SANAD_ARENA_H
#define SANAD_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
    struct arena_block *head;
};

void arena_init(struct arena *a);
void arena_free(struct arena *a);
void *arena_alloc(struct arena *a, size_t n);          /* zeroed, 16-byte aligned */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);   /* s must have n readable bytes */
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
