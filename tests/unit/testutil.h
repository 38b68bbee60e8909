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

#endif
