/* db_internal.h — what the store's own files share: the connection struct and statement cache.
 * Not to be included outside src/store/. */
#ifndef SANAD_DB_INTERNAL_H
#define SANAD_DB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "core/err.h"
#include "store/db.h"

#define DB_STMT_CACHE 256

struct db {
    sqlite3 *conn;
    struct {
        const char *sql;    /* the static SQL text: its address is the cache key */
        sqlite3_stmt *stmt;
    } cache[DB_STMT_CACHE];
    int ncache;
    int relaxed;            /* the open write transaction commits without syncing (db_begin_write_relaxed) */
};

/* A cached prepared statement for a static SQL string; NULL with *e set on failure. */
sqlite3_stmt *db_stmt(struct db *db, const char *sql, struct err *e);
/* Reset and unbind a statement from db_stmt(). */
void db_stmt_done(sqlite3_stmt *st);
/* Report an SQLite failure as ERR_INTERNAL (the SQL text is logged, never the bound values). */
int db_fail(struct db *db, const char *what, struct err *e);

/* Step a statement that returns no rows, and reset it: 0, or -1 with *e set (a broken unique or foreign
 * key constraint as ERR_CONFLICT already_exists). */
int db_step_done(struct db *db, sqlite3_stmt *st, const char *what, struct err *e);
/* Step a statement whose first column of its first row is a number, and reset it: *out gets it (0 when
 * there is no row or it is NULL). */
int db_step_int64(struct db *db, sqlite3_stmt *st, int64_t *out, const char *what, struct err *e);
/* Step a statement that tells whether a row exists, and reset it: 1 a row, 0 none, -1 with *e set. */
int db_step_exists(struct db *db, sqlite3_stmt *st, const char *what, struct err *e);

/* Step st, building each row with read (NULL: out of memory) and handing it to cb (which returns non-zero to
 * stop), or, when one is not NULL, keeping the first row in *one (a new reference) and stopping. Resets
 * st. 1 when a row came, 0 when none, -1 with *e set on failure. */
int db_rows_json(struct db *db, sqlite3_stmt *st, json_t *(*read)(sqlite3_stmt *st),
                 int (*cb)(const json_t *row, void *ctx), void *ctx, json_t **one, const char *what, struct err *e);

/* Bind helpers: NULL text binds SQL NULL. The text is not copied: it must stay valid and unchanged until
 * the statement is reset (db_stmt_done or sqlite3_reset). Return the SQLite code. */
int db_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Copy column i into out (size n); "" for NULL. */
void db_column_copy(sqlite3_stmt *st, int i, char *out, size_t n);

#endif
