/* testutil.h — shared set-up for the cmocka unit tests: temporary data directories and fresh nodes.
 * Include it first in every tests/unit/test_*.c. Everything here is static: each test is one program. */
#ifndef SANAD_TESTUTIL_H
#define SANAD_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/crypto.h"
#include "core/err.h"
#include "services/sites.h"
#include "store/db.h"

#define TU_ADMIN_PASSWORD "admin-password-for-tests"

/* A new empty temporary directory path (the directory itself is not created); caller frees. */
static inline char *tu_temp_path(void)
{
    char tmpl[] = "/tmp/sanad-unit.XXXXXX";
    char *dir = mkdtemp(tmpl);
    char *out;

    assert_non_null(dir);
    rmdir(dir);
    out = strdup(dir);
    assert_non_null(out);
    return out;
}

/* Open a test data file: $SANAD_TESTDATA/NAME, else tests/unit/NAME under the cwd, else tests/unit/NAME two
 * levels above this executable (build/tests/test_x). path (cap bytes) receives the path tried last, for
 * messages. NULL when none opens. */
static inline FILE *tu_data_open(const char *name, char *path, size_t cap)
{
    const char *dir = getenv("SANAD_TESTDATA");
    char exe[1024], *slash;
    ssize_t n;
    FILE *f;

    if (dir && *dir) {
        snprintf(path, cap, "%s/%s", dir, name);
        return fopen(path, "r");
    }
    snprintf(path, cap, "tests/unit/%s", name);
    if ((f = fopen(path, "r")) != NULL)
        return f;
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        if ((slash = strrchr(exe, '/')) != NULL)
            *slash = '\0';
        if ((slash = strrchr(exe, '/')) != NULL)
            *slash = '\0';
        snprintf(path, cap, "%s/../tests/unit/%s", exe, name);
        if ((f = fopen(path, "r")) != NULL)
            return f;
    }
    snprintf(path, cap, "tests/unit/%s", name);
    return NULL;
}

/* Create a node (site "Test clinic", admin "admin" / TU_ADMIN_PASSWORD) in a fresh temp dir and open
 * it. *dir_out receives the directory (caller frees, tu_remove_dir removes it). */
static inline struct db *tu_node(char **dir_out)
{
    struct node_init_options o = { NULL, "Test clinic", "en", "admin", TU_ADMIN_PASSWORD };
    char node_id[ID_LEN];
    struct db *db = NULL;
    struct err e;

    assert_int_equal(crypto_init(), 0);
    err_clear(&e);
    *dir_out = tu_temp_path();
    o.dir = *dir_out;
    if (node_init(&o, node_id, &e) < 0)
        fail_msg("node_init: %s", e.message);
    if (db_open(*dir_out, 0, &db, &e) < 0)
        fail_msg("db_open: %s", e.message);
    return db;
}

static inline void tu_remove_dir(char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
    free(dir);
}

/* A fresh node copied from template_dir (a node made once by tu_node() and db_close()d, so its WAL is
 * checkpointed into the database file) into a new temp dir, then opened: as good as tu_node() for a test
 * but without paying node_init's Argon2id hash and fsyncs again. *dir_out as for tu_node(). */
static inline struct db *tu_node_copy(const char *template_dir, char **dir_out)
{
    char from[512], to[512], chunk[65536];
    struct db *db = NULL;
    FILE *in, *out;
    struct err e;
    size_t n;

    *dir_out = tu_temp_path();
    if (mkdir(*dir_out, 0700) != 0)
        fail_msg("cannot create %s", *dir_out);
    snprintf(from, sizeof(from), "%s/%s", template_dir, DB_FILE);
    snprintf(to, sizeof(to), "%s/%s", *dir_out, DB_FILE);
    in = fopen(from, "rb");
    out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
        assert_int_equal(fwrite(chunk, 1, n, out), n);
    assert_int_equal(ferror(in), 0);
    fclose(in);
    assert_int_equal(fclose(out), 0);
    err_clear(&e);
    if (db_open(*dir_out, 0, &db, &e) < 0)
        fail_msg("db_open: %s", e.message);
    return db;
}

#endif
