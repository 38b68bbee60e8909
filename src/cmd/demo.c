/* demo.c — `sanad demo`: fill a node with synthetic patients (services/demo.c) for training, demos and
 * benchmarks. The same --seed gives the same people (without one, a random seed is used and printed).
 * Never use on a node with real patients. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/util.h"
#include "services/demo.h"
#include "services/demo_visits.h"
#include "store/db.h"

static const char usage[] = "sanad demo --data DIR [--patients N] [--visits V [--entries E]] [--seed S] [--site ID]";

static void show_progress(int64_t done, int64_t total)
{
    fprintf(stderr, "\r%" PRId64 " / %" PRId64 " patients", done, total);
}

int cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "patients", required_argument, NULL, 'n' },
        { "seed", required_argument, NULL, 's' },
        { "site", required_argument, NULL, 'S' },
        { "visits", required_argument, NULL, 'v' },
        { "entries", required_argument, NULL, 'E' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *data = NULL, *dir, *site = NULL, *errstr;
    int64_t count = -1, seed = 0, done = 0, t0, visits = 0, entries = 2;
    struct demo_visits_report vr;
    struct caller local;
    struct db *db = NULL;
    struct err e;
    int c, rc = 1;

    err_clear(&e);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'n':
            if (parse_int64(optarg, 1, 100000000, &count, &errstr) < 0)
                return cmd_usage_error(usage, "--patients '%s' is %s", optarg, errstr);
            break;
        case 's':
            if (parse_int64(optarg, 1, INT64_MAX, &seed, &errstr) < 0)
                return cmd_usage_error(usage, "--seed '%s' is %s", optarg, errstr);
            break;
        case 'S': site = optarg; break;
        case 'v':
            if (parse_int64(optarg, 0, 100, &visits, &errstr) < 0)
                return cmd_usage_error(usage, "--visits '%s' is %s", optarg, errstr);
            break;
        case 'E':
            if (parse_int64(optarg, 0, 2, &entries, &errstr) < 0)
                return cmd_usage_error(usage, "--entries '%s' is %s", optarg, errstr);
            break;
        case 'h':
            printf("usage: %s\n\nAdd N synthetic patients (fiction, for demos and benchmarks) to the node; with\n"
                   "--visits, give every patient without a visit V visits holding E form entries each (1: vitals,\n"
                   "2: vitals and a consultation; default 2).\n", usage);
            return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if (count < 0 && visits == 0)
        return cmd_usage_error(usage, "--patients or --visits is required");
    if ((dir = cmd_data_dir(data)) == NULL)
        return 2;
    if (db_open(dir, 0, &db, &e) < 0)
        return cmd_fail(&e);
    /* the search index of a large node does not fit the default cache, and each batch of new patients
     * writes all over it (docs/registry.md, "Registration at scale") */
    if (db_set_cache_mb(db, 512, &e) < 0)
        goto done;
    caller_local(&local, "demo");
    if (caller_local_sites(db, &local, site, &e) < 0 || local.nsites == 0) {
        if (local.nsites == 0 && e.kind == ERR_NONE)
            err_set(&e, ERR_NOT_FOUND, "no_site", "the node has no site");
        goto done;
    }
    if (seed == 0) {
        /* a fresh seed, so that a second run adds other people rather than the same ones again */
        crypto_random_bytes(&seed, sizeof(seed));
        seed = (seed & INT64_MAX) | 1;
    }
    t0 = monotonic_us();
    if (count > 0) {
        if (demo_add_patients(db, &local, local.sites[0], count, (uint64_t)seed, count >= 100000 ? show_progress : NULL,
                              &e) < 0)
            goto done;
        done = count;
        if (count >= 100000)
            fprintf(stderr, "\n");
        printf("added %" PRId64 " demo patients in %.1f s (seed %" PRId64 ")\n", done,
               (double)(monotonic_us() - t0) / 1e6, seed);
    }
    if (visits > 0) {
        t0 = monotonic_us();
        if (demo_add_visits(db, &local, (int)visits, (int)entries, (uint64_t)seed, &vr, &e) < 0)
            goto done;
        printf("added %" PRId64 " encounters and %" PRId64 " entries for %" PRId64 " patients in %.1f s\n",
               vr.encounters, vr.entries, vr.patients, (double)(monotonic_us() - t0) / 1e6);
    }
    rc = 0;
done:
    if (rc)
        cmd_fail(&e);
    db_close(db);
    return rc;
}
