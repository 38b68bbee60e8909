/* db.h — the thin database interface: one SQLite connection with its prepared-statement cache,
 * transactions and schema migrations. Only files under src/store/ include <sqlite3.h>.
 *
 * A struct db is used by one thread at a time (the HTTP server gives each worker thread its own).
 * Ownership: db_open() returns a handle the caller db_close()s; statements from db_stmt() belong to the
 * cache and are reset by db_stmt_done(), never finalized by the caller.
 * SQL is written in the subset SQLite and PostgreSQL share, with $1-style parameters ($N always means
 * parameter N: db_stmt() translates them to SQLite's ?N).
 */
#ifndef SANAD_DB_H
#define SANAD_DB_H

#include "core/err.h"

struct db;

#define DB_FILE "sanad.db"

#define DB_CREATE 1     /* create the database file when missing (only `sanad init` does this) */

/* Open DIR/sanad.db with WAL, foreign keys, a busy timeout and synchronous=FULL, and bring its schema
 * up to date. Refuses a database whose schema is newer than this binary. */
int db_open(const char *dir, int flags, struct db **out, struct err *e);
void db_close(struct db *db);

/* Transactions. db_begin_write takes the write lock at once (BEGIN IMMEDIATE) so a read-then-write
 * sequence cannot be overtaken. Nesting is not supported: db_in_transaction() tells. */
int db_begin_read(struct db *db, struct err *e);
int db_begin_write(struct db *db, struct err *e);
int db_commit(struct db *db, struct err *e);
/* A write transaction whose commit is not synced to the disk (WAL with synchronous=NORMAL): the database
 * stays consistent through a power cut, but this commit may be lost unless a later one syncs. Only for
 * the audit entries of reads (services/audit.c), which must not cost a disk sync each. */
int db_begin_write_relaxed(struct db *db, struct err *e);
void db_rollback(struct db *db);
int db_in_transaction(struct db *db);

/* Let this connection cache up to mb MiB of database pages (bulk loads; the default is 8 MiB). */
int db_set_cache_mb(struct db *db, int mb, struct err *e);

/* Current and highest-known schema versions. */
/* Checkpoint the WAL of db's database on a thread of its own, once a commit leaves it over `pages` pages,
 * for db and for every connection to the database opened from now on, until db_checkpointer_stop()
 * (call it before closing db). One a process. */
int db_checkpointer_start(struct db *db, int pages, struct err *e);
void db_checkpointer_stop(void);

/* Close db without copying the WAL into the database first, unless the WAL file is over `pages` pages:
 * then copy it all and empty the file. For a short-lived process (`sanad sync`): it need not wait for a
 * checkpoint, and the next connection to open the database reads the WAL back (a few ms per 16 MB). */
void db_close_lazily(struct db *db, int pages);

int db_schema_version(struct db *db);
int db_schema_latest(void);

#endif
