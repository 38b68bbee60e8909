/* bundle.c — `sanad bundle export|import`: sync on a USB stick (services/bundle.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/log.h"
#include "core/util.h"
#include "services/bundle.h"
#include "store/db.h"

static const char usage[] =
    "sanad bundle export --data DIR --peer NAME --out FILE [--all]\n"
    "       sanad bundle import --data DIR FILE";

static const char help[] =
    "Sync without a network. 'export' writes to FILE the changes the enrolled peer NAME does not hold\n"
    "yet (as far as this node knows), encrypted so that only that peer can read them and signed by this\n"
    "node; carry the file to the peer (a USB stick) and 'import' it there. Importing checks the signature\n"
    "against the sender's pinned key before anything is applied, applies the changes exactly as a sync\n"
    "would (importing a bundle twice, or an old one, changes nothing), and remembers what the sender holds,\n"
    "so that the bundles made for it from then on leave that out. Bundles go both ways: each side's\n"
    "bundles tell the other what it already has. The peers must have been enrolled once ('sanad peer').\n\n"
    "  export --peer NAME    the peer the bundle is for ('sanad peer list')\n"
    "         --out FILE     where to write it (replaced if it exists; readable by its owner only)\n"
    "         --all          every change the peer may receive, not only those it is not known to hold\n"
    "  import FILE           a bundle made for this node by an enrolled peer\n";

static int bundle_export_cmd(struct db *db, const char *dir, const char *peer, const char *out, int all)
{
    struct bundle_summary s;
    struct buf b;
    struct err e;
    int rc;

    err_clear(&e);
    buf_init(&b, BUNDLE_MAX_BYTES);
    if (bundle_export(db, dir, peer, all, &b, &s, &e) < 0) {
        buf_free(&b);
        return cmd_fail(&e);
    }
    rc = cmd_write_file(out, b.data, b.len);
    buf_free(&b);
    if (rc < 0)
        return 1;
    printf("bundle for '%s': %lld changes in %lld batches, %zu bytes, written to %s\n", s.peer_name,
           (long long)s.changes, (long long)s.batches, s.bytes, out);
    return 0;
}

static int bundle_import_cmd(struct db *db, const char *dir, const char *path)
{
    struct bundle_summary s;
    struct err e;
    char when[32];
    size_t len;
    char *data;
    int rc;

    err_clear(&e);
    if ((data = read_file(path, BUNDLE_MAX_BYTES, &len)) == NULL) {
        fprintf(stderr, "sanad: cannot read '%s': %s\n", path,
                errno == EFBIG ? "larger than a bundle can be" : errno == EINVAL ? "not a regular file" : strerror(errno));
        return 1;
    }
    rc = bundle_import(db, dir, data, len, &s, &e);
    free(data);
    if (rc < 0)
        return cmd_fail(&e);
    format_time_ms(s.created_at, when, sizeof(when));
    printf("bundle from '%s' (made %s): %lld changes in %lld batches; applied %lld, already held %lld, "
           "conflicts %lld, quarantined %lld\n", s.peer_name, when, (long long)s.changes, (long long)s.batches,
           (long long)s.applied.applied, (long long)s.applied.duplicates, (long long)s.applied.conflicts,
           (long long)s.applied.quarantined);
    return 0;
}

int cmd_bundle(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "peer", required_argument, NULL, 'p' },
        { "out", required_argument, NULL, 'o' },
        { "all", no_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *verb, *data = NULL, *dir, *peer = NULL, *out = NULL;
    struct db *db;
    struct err e;
    int c, all = 0, rc;

    err_clear(&e);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: %s\n\n%s", usage, help);
        return argc < 2 ? 2 : 0;
    }
    verb = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'p': peer = optarg; break;
        case 'o': out = optarg; break;
        case 'a': all = 1; break;
        case 'h': printf("usage: %s\n\n%s", usage, help); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (strcmp(verb, "export") == 0) {
        if (peer == NULL || out == NULL)
            return cmd_usage_error(usage, "export needs --peer and --out");
        if (optind < argc)
            return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    } else if (strcmp(verb, "import") == 0) {
        if (peer || out || all)
            return cmd_usage_error(usage, "import takes only --data and the bundle file");
        if (optind != argc - 1)
            return cmd_usage_error(usage, "import needs exactly one bundle file");
    } else {
        return cmd_usage_error(usage, "unknown subcommand '%s' (export or import)", verb);
    }
    if ((dir = cmd_data_dir(data)) == NULL)
        return 2;
    if (db_open(dir, 0, &db, &e) < 0)
        return cmd_fail(&e);
    if (strcmp(verb, "export") == 0) {
        rc = bundle_export_cmd(db, dir, peer, out, all);
    } else {
        /* the WAL copied in beside the batches being applied, as by sanad sync (without the thread,
         * SQLite's own checkpoints on commit: slower, not wrong) */
        if (db_checkpointer_start(db, 4096, &e) < 0) {
            log_warn("bundle: no checkpoint thread: %s", e.message);
            err_clear(&e);
        }
        rc = bundle_import_cmd(db, dir, argv[optind]);
        db_checkpointer_stop();
    }
    db_close(db);
    return rc;
}
