/* expr.h — the small expression language of form rules (relevant, required_if, computed fields):
 * compiled once into an immutable tree with hard limits, evaluated over JSON values with SQL-like null rules.
 *
 * Ownership: expr_compile() returns a tree the caller expr_free()s; lookups lend values (borrowed, never
 * freed here); expr_eval() returns a new reference the caller json_decref()s.
 * Language and semantics: docs/expressions.md.
 */
#ifndef SANAD_EXPR_H
#define SANAD_EXPR_H

#include <jansson.h>

#include "core/err.h"

#define EXPR_MAX_SOURCE 4096    /* bytes of source text */
#define EXPR_MAX_NODES 512      /* values, names, operators and calls in the tree */
#define EXPR_MAX_DEPTH 64       /* nesting: parentheses, calls, unary operators, and the tree's height */
#define EXPR_MAX_STRING 1024    /* bytes of one string literal, after '' is unescaped */
#define EXPR_MAX_ARGS 16        /* arguments of one function call */
#define EXPR_MAX_NAME 64        /* bytes of one name */

struct expr;    /* a compiled expression: immutable, safe to evaluate from several threads at once */

/* Compile src (a NUL-terminated UTF-8 string). NULL with *e set on any error: ERR_INVALID, code
 * "invalid_expression", message "invalid expression at position N: ..." (N counts bytes from 1) saying
 * what was expected there; or ERR_INTERNAL, "out_of_memory". Never crashes or leaks, whatever src is. */
struct expr *expr_compile(const char *src, struct err *e);

/* Free a compiled expression; NULL is accepted. */
void expr_free(struct expr *x);

/* Look up a name: return a BORROWED json_t* that stays valid during the expr_eval() call (NULL means
 * unknown or missing, the same as json null). Objects are treated as null. */
typedef const json_t *(*expr_lookup_fn)(const char *name, void *ctx);

/* Evaluate x, asking lookup (which may be NULL: every name is null) for the names' values. Returns a NEW
 * reference: json null, an integer or real number (never NaN or infinite), a string, true/false, or, for
 * a name bound to an array, that array. NULL only with *e set (ERR_INTERNAL "out_of_memory"). */
json_t *expr_eval(const struct expr *x, expr_lookup_fn lookup, void *ctx, struct err *e);

/* Truthiness used by relevant/required_if and by and/or/not/if: true only for json true, a non-zero
 * number, a non-empty string and a non-empty array; false for everything else, NULL included. */
int expr_truthy(const json_t *v);

/* Call cb for every name x references (once each, in order of first appearance; function names are not
 * names). Stops at the first non-zero return of cb and returns it; 0 when every call returned 0. */
int expr_names(const struct expr *x, int (*cb)(const char *name, void *ctx), void *ctx);

#endif
