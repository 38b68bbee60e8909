/* sync.c — `sanad sync`: one sync session over HTTP with one peer or with every peer that has a url,
 * printing what moved. (`sanad serve --sync-every` runs the same sessions in the background.) */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/log.h"
#include "core/names.h"
#include "core/util.h"
#include "http/client.h"
#include "services/peers.h"
#include "services/sync.h"
#include "store/db.h"

#define SYNC_CHECKPOINT_PAGES 4096     /* 16 MiB of WAL */

static const char usage[] =
    "sanad sync --data DIR [--peer NAME] [--max-bytes N] [--insecure]\n"
    "       sanad sync settings --data DIR [--max-clock-ahead-hours N]";

static const char help[] =
    "Sync once with the enrolled peers that have a url ('sanad peer list'): pull what they have that this\n"
    "node lacks, then push what they lack, in bounded batches, each applied in one transaction. A cut\n"
    "link loses nothing: the next sync resumes where this one stopped. Exit 0 when every peer synced,\n"
    "1 when any failed (the reason is printed and kept in 'sanad peer list').\n\n"
    "  --peer NAME      only this peer\n"
    "  --max-bytes N    uncompressed size of one batch (default 4194304)\n"
    "  --insecure       accept self-signed TLS certificates (the signed requests and answers still\n"
    "                   protect the data's integrity; see docs/sync.md)\n\n"
    "'settings' prints this node's sync settings, or changes them:\n"
    "  --max-clock-ahead-hours N   a change stamped more than N hours ahead of this node's clock is\n"
    "                              quarantined, not applied (default 24; 1 to 8784)\n";

/* The patients a session stores need ICU's transliterators, which take ~30 ms to compile: done on another
 * thread while the session connects and waits for its first batch, Arabic's first (~1 ms); the store
 * waits only for the one it needs if it is not done yet (names_init is thread-safe). */
static void *names_warm_up(void *arg)
{
    (void)arg;
    names_init();
    return NULL;
}

/* `sanad sync settings`: print them, or change the one given. */
static int sync_settings(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "max-clock-ahead-hours", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *data = NULL, *dir, *errstr;
    int64_t hours = 0;
    struct caller who;
    struct db *db;
    struct err e;
    json_t *in, *out;
    int c;

    err_clear(&e);
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'c':
            if (parse_int64(optarg, 1, SYNC_CLOCK_AHEAD_HOURS_MAX, &hours, &errstr) < 0)
                return cmd_usage_error(usage, "--max-clock-ahead-hours '%s' is %s (1 to %d)", optarg, errstr,
                                       SYNC_CLOCK_AHEAD_HOURS_MAX);
            break;
        case 'h': printf("usage: %s\n\n%s", usage, help); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if ((dir = cmd_data_dir(data)) == NULL)
        return 2;
    if (db_open(dir, 0, &db, &e) < 0)
        return cmd_fail(&e);
    if (hours) {
        caller_local(&who, "sync");
        in = json_pack("{s:I}", "max_clock_ahead_hours", (json_int_t)hours);
        out = sync_settings_set(db, &who, in, &e);
        json_decref(in);
    } else {
        out = sync_settings_get(db, &e);
    }
    db_close(db);
    if (out == NULL)
        return cmd_fail(&e);
    printf("max_clock_ahead_hours: %lld\n", (long long)json_integer_value(json_object_get(out, "max_clock_ahead_hours")));
    json_decref(out);
    return 0;
}

int cmd_sync(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "peer", required_argument, NULL, 'p' },
        { "max-bytes", required_argument, NULL, 'm' },
        { "insecure", no_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct client_options o = { 0, NULL };
    const char *data = NULL, *dir, *only = NULL, *errstr;
    int64_t max_bytes = SYNC_DEFAULT_MAX_BYTES;
    struct peer_row *rows = NULL, one;
    struct sync_summary s;
    char line[320];
    struct db *db = NULL;
    struct err e;
    size_t i, n = 0;
    int c, failed = 0, warming, rc;
    pthread_t warm;

    err_clear(&e);
    if (argc >= 2 && strcmp(argv[1], "settings") == 0)
        return sync_settings(argc, argv);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'p': only = optarg; break;
        case 'm':
            if (parse_int64(optarg, 1024, SYNC_MAX_BATCH_BYTES, &max_bytes, &errstr) < 0)
                return cmd_usage_error(usage, "--max-bytes '%s' is %s (1024 to %u)", optarg, errstr,
                                       (unsigned)SYNC_MAX_BATCH_BYTES);
            break;
        case 'i': o.insecure = 1; break;
        case 'h': printf("usage: %s\n\n%s", usage, help); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if ((dir = cmd_data_dir(data)) == NULL)
        return 2;
    warming = pthread_create(&warm, NULL, names_warm_up, NULL) == 0;
    rc = 1;
    if (db_open(dir, 0, &db, &e) < 0) {
        cmd_fail(&e);
        goto done;
    }
    /* the WAL is checkpointed beside the batches being applied, every 16 MB, and on closing only when it
     * holds more than that (the session sets the page cache it needs) */
    if (db_checkpointer_start(db, SYNC_CHECKPOINT_PAGES, &e) < 0) {
        /* (SQLite's own checkpoints on commit still run: slower, not wrong) */
        log_warn("sync: no checkpoint thread: %s", e.message);
        err_clear(&e);
    }
    if (only) {
        if (peers_get_by_name(db, only, &one, &e) < 0) {
            cmd_fail(&e);
            goto done;
        }
        rows = &one;
        n = 1;
    } else if (peers_sync_targets(db, &rows, &n, &e) < 0) {
        cmd_fail(&e);
        goto done;
    } else if (n == 0) {
        fprintf(stderr, "sanad: no peer to sync with: none has a url ('sanad peer add' enrols a hub)\n");
        goto done;
    }
    for (i = 0; i < n; i++) {
        err_clear(&e);
        if (client_sync_peer(db, dir, &rows[i], (size_t)max_bytes, &o, &s, &e) < 0) {
            fprintf(stderr, "sanad: sync with '%s' failed: %s\n", rows[i].name, e.message);
            if (s.batches_in || s.batches_out) {
                sync_summary_describe(&s, line, sizeof(line));
                fprintf(stderr, "sanad: before it failed, '%s': %s\n", rows[i].name, line);
            }
            failed++;
            continue;
        }
        sync_summary_describe(&s, line, sizeof(line));
        printf("%s: %s\n", rows[i].name, line);
    }
    rc = failed ? 1 : 0;
done:
    if (rows != &one)
        free(rows);
    db_checkpointer_stop();
    db_close_lazily(db, SYNC_CHECKPOINT_PAGES);
    if (warming)
        pthread_join(warm, NULL);
    return rc;
}
