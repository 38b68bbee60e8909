/* db.c — opening the database, statement cache, transactions and versioned migrations. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "store/db_internal.h"
#include "store/schema.h"

int db_fail(struct db *db, const char *what, struct err *e)
{
    log_error("store: %s: %s", what, sqlite3_errmsg(db->conn));
    return err_set(e, ERR_INTERNAL, "storage_error", "the database could not complete the request; try again");
}

int db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL)
        return sqlite3_bind_null(st, i);
    /* not copied: every store function steps the statement and resets it (db_stmt_done) before the
     * bound strings go out of scope, so SQLite need not copy them (a tenth of a bulk import's time) */
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

int db_rows_json(struct db *db, sqlite3_stmt *st, json_t *(*read)(sqlite3_stmt *st),
                 int (*cb)(const json_t *row, void *ctx), void *ctx, json_t **one, const char *what, struct err *e)
{
    int rc = SQLITE_DONE, stop = 0, found = 0;
    json_t *row;

    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((row = read(st)) == NULL) {
            db_stmt_done(st);
            return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        }
        found = 1;
        if (one) {
            *one = row;
            stop = 1;
            break;
        }
        stop = cb(row, ctx);
        json_decref(row);
    }
    db_stmt_done(st);
    if (!stop && rc != SQLITE_DONE)
        return db_fail(db, what, e);
    return found;
}

void db_column_copy(sqlite3_stmt *st, int i, char *out, size_t n)
{
    const unsigned char *s = sqlite3_column_text(st, i);

    snprintf(out, n, "%s", s ? (const char *)s : "");
}

/* SQL is written with PostgreSQL's $1-style parameters. SQLite reads "$1" as a *named* parameter and
 * numbers named parameters in order of first appearance, so "SET a = $2 WHERE id = $1" would bind the
 * wrong values. "?1" is SQLite's explicitly numbered form: translate, so $N always means parameter N. */
static char *db_translate_params(const char *sql)
{
    char *out = strdup(sql), *p;

    if (out == NULL)
        return NULL;
    for (p = out; *p; p++)
        if (*p == '$' && p[1] >= '1' && p[1] <= '9')
            *p = '?';
    return out;
}

sqlite3_stmt *db_stmt(struct db *db, const char *sql, struct err *e)
{
    sqlite3_stmt *st;
    char *native;
    int i, rc;

    for (i = 0; i < db->ncache; i++)
        if (db->cache[i].sql == sql)
            return db->cache[i].stmt;
    native = db_translate_params(sql);
    if (native == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    rc = sqlite3_prepare_v3(db->conn, native, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    free(native);
    if (rc != SQLITE_OK) {
        log_error("store: cannot prepare: %s", sql);
        db_fail(db, "prepare", e);
        return NULL;
    }
    if (db->ncache < DB_STMT_CACHE) {
        db->cache[db->ncache].sql = sql;
        db->cache[db->ncache].stmt = st;
        db->ncache++;
    } else {
        log_fatal("store: statement cache full; raise DB_STMT_CACHE");
    }
    return st;
}

void db_stmt_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

int db_step_done(struct db *db, sqlite3_stmt *st, const char *what, struct err *e)
{
    int rc = sqlite3_step(st);

    db_stmt_done(st);
    if (rc == SQLITE_DONE)
        return 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return err_set(e, ERR_CONFLICT, "already_exists", "a record with the same unique value already exists");
    return db_fail(db, what, e);
}

int db_step_exists(struct db *db, sqlite3_stmt *st, const char *what, struct err *e)
{
    int rc = sqlite3_step(st);

    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(db, what, e);
}

int db_step_int64(struct db *db, sqlite3_stmt *st, int64_t *out, const char *what, struct err *e)
{
    int rc = sqlite3_step(st);

    *out = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *out = sqlite3_column_int64(st, 0);
    db_stmt_done(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(db, what, e);
}

static int db_exec(struct db *db, const char *sql, struct err *e)
{
    char *msg = NULL;

    if (sqlite3_exec(db->conn, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("store: %s", msg ? msg : "exec failed");
        sqlite3_free(msg);
        return err_set(e, ERR_INTERNAL, "storage_error", "the database could not complete the request; try again");
    }
    return 0;
}

int db_begin_read(struct db *db, struct err *e)
{
    return db_exec(db, "BEGIN", e);
}

int db_begin_write(struct db *db, struct err *e)
{
    return db_exec(db, "BEGIN IMMEDIATE", e);
}

static void db_relax_end(struct db *db);

int db_begin_write_relaxed(struct db *db, struct err *e)
{
    if (db_exec(db, "PRAGMA synchronous=NORMAL", e) < 0)
        return -1;
    db->relaxed = 1;
    if (db_begin_write(db, e) < 0) {
        db_relax_end(db);
        return -1;
    }
    return 0;
}

/* Back to syncing every commit after a relaxed transaction. */
static void db_relax_end(struct db *db)
{
    if (db->relaxed) {
        sqlite3_exec(db->conn, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
        db->relaxed = 0;
    }
}

int db_commit(struct db *db, struct err *e)
{
    if (db_exec(db, "COMMIT", e) < 0) {
        db_rollback(db);
        return -1;
    }
    db_relax_end(db);
    return 0;
}

void db_rollback(struct db *db)
{
    if (!sqlite3_get_autocommit(db->conn))
        sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    db_relax_end(db);
}

int db_in_transaction(struct db *db)
{
    return !sqlite3_get_autocommit(db->conn);
}

int db_schema_version(struct db *db)
{
    sqlite3_stmt *st;
    int v = -1;

    if (sqlite3_prepare_v2(db->conn, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

int db_set_cache_mb(struct db *db, int mb, struct err *e)
{
    char sql[64];

    snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", mb * 1024);
    return db_exec(db, sql, e);
}

void db_close_lazily(struct db *db, int pages)
{
    char wal[4096 + 8];
    const char *path;
    struct stat st;

    if (db == NULL)
        return;
    path = sqlite3_db_filename(db->conn, "main");
    if (path && snprintf(wal, sizeof(wal), "%s-wal", path) < (int)sizeof(wal) && stat(wal, &st) == 0
        && st.st_size > (off_t)pages * (4096 + 24)) {
        /* copied in, and the file emptied, so that it never grows past about this */
        sqlite3_wal_checkpoint_v2(db->conn, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    } else {
        sqlite3_db_config(db->conn, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    }
    db_close(db);
}

int db_schema_latest(void)
{
    return schema_count();
}

/* Apply every migration above the database's user_version in one write transaction. */
static int db_migrate(struct db *db, struct err *e)
{
    int have, latest = schema_count(), v;
    char sql[64];

    /* the usual case, a database already up to date, takes no write lock (and no disk sync) */
    have = db_schema_version(db);
    if (have == latest)
        return 0;
    if (have > latest)
        return err_set(e, ERR_CONFLICT, "schema_too_new",
                       "the database has schema version %d but this sanad knows only up to %d; "
                       "upgrade sanad before opening it", have, latest);
    if (db_begin_write(db, e) < 0)
        return -1;
    /* read again under the lock: another process may have migrated meanwhile */
    have = db_schema_version(db);
    if (have < 0) {
        db_rollback(db);
        return db_fail(db, "read schema version", e);
    }
    if (have > latest) {
        db_rollback(db);
        return err_set(e, ERR_CONFLICT, "schema_too_new",
                       "the database has schema version %d but this sanad knows only up to %d; "
                       "upgrade sanad before opening it", have, latest);
    }
    for (v = have + 1; v <= latest; v++) {
        if (db_exec(db, schema_migration(v), e) < 0) {
            db_rollback(db);
            return -1;
        }
        log_info("store: applied schema migration %d", v);
    }
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", latest);
    if (db_exec(db, sql, e) < 0) {
        db_rollback(db);
        return -1;
    }
    return db_commit(db, e);
}

/* ---- the WAL checkpointed beside the writers ----
 *
 * SQLite checkpoints on the commit that finds the WAL over its threshold: that writer then also copies
 * the WAL into the database file and waits for the disk. With a checkpointer running, a commit over the
 * threshold only wakes its thread, which checkpoints (PASSIVE: never blocking a reader or the writer)
 * through a connection of its own while the writers go on. A WAL cannot restart while writes follow one
 * another without a pause, so a committing writer that finds it over WAL_CAP_PAGES checkpoints it to the
 * end itself. One checkpointer a process, for the one database it serves. */

#define WAL_CAP_PAGES 32768     /* 128 MiB of 4 KiB pages */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int running, stop, pending, pages;
    sqlite3 *conn;
    char path[4096];
} ckpt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static void *ckpt_thread(void *arg)
{
    int log_frames, done_frames, rc;

    (void)arg;
    pthread_mutex_lock(&ckpt.lock);
    for (;;) {
        while (!ckpt.pending && !ckpt.stop)
            pthread_cond_wait(&ckpt.cond, &ckpt.lock);
        if (ckpt.stop)
            break;
        ckpt.pending = 0;
        pthread_mutex_unlock(&ckpt.lock);
        rc = sqlite3_wal_checkpoint_v2(ckpt.conn, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done_frames);
        /* busy: another connection (a writer over the cap, another process) checkpoints now; it does
         * the work this one would have */
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("store: background checkpoint: %s", sqlite3_errmsg(ckpt.conn));
        pthread_mutex_lock(&ckpt.lock);
    }
    pthread_mutex_unlock(&ckpt.lock);
    return NULL;
}

/* Called by SQLite after each commit of a connection of the database, with the WAL's size in pages. */
static int ckpt_hook(void *arg, sqlite3 *conn, const char *name, int pages)
{
    int running;

    (void)arg;
    pthread_mutex_lock(&ckpt.lock);
    running = ckpt.running;
    if (running && pages >= ckpt.pages) {
        ckpt.pending = 1;
        pthread_cond_signal(&ckpt.cond);
    }
    pthread_mutex_unlock(&ckpt.lock);
    if (!running ? pages >= 1000 : pages >= WAL_CAP_PAGES)
        sqlite3_wal_checkpoint_v2(conn, name, running ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE,
                                  NULL, NULL);
    return SQLITE_OK;
}

int db_checkpointer_start(struct db *db, int pages, struct err *e)
{
    const char *path = sqlite3_db_filename(db->conn, "main");
    sqlite3 *conn = NULL;

    if (ckpt.running)
        return err_set(e, ERR_INTERNAL, "checkpointer_running", "a checkpointer already runs");
    if (path == NULL || strlen(path) >= sizeof(ckpt.path))
        return err_set(e, ERR_INTERNAL, "storage_error", "the database has no file name");
    if (sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK
        || sqlite3_exec(conn, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK) {
        err_set(e, ERR_INTERNAL, "storage_error", "cannot open the database for checkpoints: %s",
                conn ? sqlite3_errmsg(conn) : "out of memory");
        sqlite3_close(conn);
        return -1;
    }
    sqlite3_busy_timeout(conn, 10000);
    pthread_mutex_lock(&ckpt.lock);
    ckpt.conn = conn;
    ckpt.pages = pages > 0 ? pages : 1000;
    ckpt.stop = ckpt.pending = 0;
    snprintf(ckpt.path, sizeof(ckpt.path), "%s", path);
    if (pthread_create(&ckpt.thread, NULL, ckpt_thread, NULL) != 0) {
        pthread_mutex_unlock(&ckpt.lock);
        sqlite3_close(conn);
        return err_set(e, ERR_INTERNAL, "thread_failed", "cannot start the checkpoint thread");
    }
    ckpt.running = 1;
    pthread_mutex_unlock(&ckpt.lock);
    sqlite3_wal_hook(db->conn, ckpt_hook, NULL);
    return 0;
}

void db_checkpointer_stop(void)
{
    pthread_mutex_lock(&ckpt.lock);
    if (!ckpt.running) {
        pthread_mutex_unlock(&ckpt.lock);
        return;
    }
    ckpt.stop = 1;
    pthread_cond_signal(&ckpt.cond);
    pthread_mutex_unlock(&ckpt.lock);
    pthread_join(ckpt.thread, NULL);
    pthread_mutex_lock(&ckpt.lock);
    ckpt.running = 0;
    sqlite3_close(ckpt.conn);
    ckpt.conn = NULL;
    pthread_mutex_unlock(&ckpt.lock);
    /* (connections still open checkpoint on their own commits again: ckpt_hook) */
}

/* Once per process, before SQLite starts: no allocation statistics (Sanad reads none), which spares
 * every allocation SQLite makes a global mutex. */
static void db_configure(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int db_open(const char *dir, int flags, struct db **out, struct err *e)
{
    static pthread_once_t configured = PTHREAD_ONCE_INIT;

    struct db *db;
    char path[4096];
    int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;

    pthread_once(&configured, db_configure);
    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/%s", dir, DB_FILE) >= (int)sizeof(path))
        return err_set(e, ERR_INVALID, "path_too_long", "the data directory path is too long");
    if (!(flags & DB_CREATE) && access(path, F_OK) != 0)
        return err_set(e, ERR_NOT_FOUND, "no_database",
                       "no Sanad database in '%s'; create one with 'sanad init --data %s'", dir, dir);
    if (flags & DB_CREATE)
        oflags |= SQLITE_OPEN_CREATE;
    db = calloc(1, sizeof(*db));
    if (db == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    if (sqlite3_open_v2(path, &db->conn, oflags, NULL) != SQLITE_OK) {
        err_set(e, ERR_INTERNAL, "storage_error", "cannot open database '%s': %s", path,
                db->conn ? sqlite3_errmsg(db->conn) : "out of memory");
        db_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db->conn, 10000);
    sqlite3_extended_result_codes(db->conn, 1);
    pthread_mutex_lock(&ckpt.lock);
    if (ckpt.running && strcmp(ckpt.path, sqlite3_db_filename(db->conn, "main")) == 0)
        sqlite3_wal_hook(db->conn, ckpt_hook, NULL);
    pthread_mutex_unlock(&ckpt.lock);
    /* synchronous=FULL: power cuts are routine where Sanad runs; a committed visit must survive one. */
    if (db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                    "PRAGMA trusted_schema=OFF; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-8192", e) < 0
        || db_migrate(db, e) < 0) {
        db_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

void db_close(struct db *db)
{
    int i;

    if (db == NULL)
        return;
    for (i = 0; i < db->ncache; i++)
        sqlite3_finalize(db->cache[i].stmt);
    sqlite3_close(db->conn);
    free(db);
}
