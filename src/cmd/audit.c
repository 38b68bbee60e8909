/* audit.c — `sanad audit verify`: check the audit log's hash chain end to end. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "services/audit.h"
#include "store/db.h"

static const char usage[] = "sanad audit verify --data DIR";

int cmd_audit(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct audit_verdict v;
    const char *data = NULL, *dir;
    struct db *db;
    struct err e;
    int c, rc;

    err_clear(&e);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: %s\n\nExit 0 when the audit chain is intact; 1 naming the first bad entry otherwise.\n",
               usage);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "verify") != 0)
        return cmd_usage_error(usage, "unknown audit command '%s'", argv[1]);
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'h': printf("usage: %s\n", usage); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if ((dir = cmd_data_dir(data)) == NULL)
        return 2;
    if (db_open(dir, 0, &db, &e) < 0)
        return cmd_fail(&e);
    rc = audit_verify(db, &v, &e);
    db_close(db);
    if (rc < 0)
        return cmd_fail(&e);
    if (rc > 0) {
        fprintf(stderr, "sanad: audit chain broken at entry %" PRId64 ": %s\n", v.bad_seq, v.reason);
        return 1;
    }
    printf("audit chain intact: %" PRId64 " entries\n", v.checked);
    return 0;
}
