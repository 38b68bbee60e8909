/* user.c — `sanad user add|list|passwd|disable|enable`: account administration at the node's console,
 * through the same service functions as the API (and audit-logged as the local console). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "core/json.h"
#include "services/users.h"
#include "store/db.h"

static const char usage[] =
    "sanad user add --data DIR --username U --role R [--full-name N] [--site ID]... [--password-file F]\n"
    "       sanad user list --data DIR\n"
    "       sanad user passwd --data DIR --username U [--password-file F]\n"
    "       sanad user disable|enable --data DIR --username U";

static const char help[] =
    "Manage accounts. Roles: admin, clinician, registrar, analyst, viewer ('sanad help roles').\n"
    "Without --password-file a strong password is generated and printed once.\n"
    "Changing a password or disabling an account ends that user's sessions.\n";

int cmd_user(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "username", required_argument, NULL, 'u' },
        { "role", required_argument, NULL, 'r' },
        { "full-name", required_argument, NULL, 'n' },
        { "site", required_argument, NULL, 's' },
        { "password-file", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *verb, *data = NULL, *pwfile = NULL, *dir;
    struct user_input in;
    struct caller local;
    struct db *db = NULL;
    char id[ID_LEN], *pw = NULL;
    json_t *out = NULL, *v;
    struct err e;
    int c, generated = 0, rc = 1;
    size_t i;

    err_clear(&e);
    memset(&in, 0, sizeof(in));
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: %s\n\n%s", usage, help);
        return argc < 2 ? 2 : 0;
    }
    verb = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'u': in.username = optarg; break;
        case 'r': in.role = optarg; break;
        case 'n': in.full_name = optarg; break;
        case 's':
            if (in.nsites >= USER_SITES_MAX)
                return cmd_usage_error(usage, "at most %d --site options", USER_SITES_MAX);
            in.has_sites = 1;
            in.sites[in.nsites++] = optarg;
            break;
        case 'p': pwfile = optarg; break;
        case 'h': printf("usage: %s\n\n%s", usage, help); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if (strcmp(verb, "add") && strcmp(verb, "list") && strcmp(verb, "passwd") && strcmp(verb, "disable")
        && strcmp(verb, "enable"))
        return cmd_usage_error(usage, "unknown user command '%s'", verb);
    if (strcmp(verb, "list") != 0 && in.username == NULL)
        return cmd_usage_error(usage, "--username is required");
    if (strcmp(verb, "add") == 0 && in.role == NULL)
        return cmd_usage_error(usage, "--role is required");
    if ((dir = cmd_data_dir(data)) == NULL)
        return 2;
    if (db_open(dir, 0, &db, &e) < 0)
        return cmd_fail(&e);
    caller_local(&local, verb);

    if (strcmp(verb, "list") == 0) {
        out = users_list(db, &local, &e);
        if (out == NULL)
            goto done;
        printf("%-24s %-10s %-8s %s\n", "USERNAME", "ROLE", "STATUS", "FULL NAME");
        json_array_foreach(json_object_get(out, "items"), i, v)
            printf("%-24s %-10s %-8s %s\n", json_get_string(v, "username"), json_get_string(v, "role"),
                   json_is_true(json_object_get(v, "disabled")) ? "disabled" : "active",
                   json_get_string(v, "full_name"));
        rc = 0;
        goto done;
    }
    if (strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0) {
        if ((pw = cmd_password(pwfile, &generated)) == NULL)
            goto done_quiet;
        in.password = pw;
    }
    if (strcmp(verb, "add") == 0) {
        out = users_create(db, &local, &in, &e);
    } else {
        if (users_find_id(db, in.username, id, &e) < 0)
            goto done;
        in.username = NULL;     /* identifies the account; not a change */
        if (strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0) {
            in.has_disabled = 1;
            in.disabled = strcmp(verb, "disable") == 0;
        }
        out = users_update(db, &local, id, &in, &e);
    }
    if (out == NULL)
        goto done;
    printf("%s %s (%s)%s\n", json_get_string(out, "username"),
           strcmp(verb, "add") == 0 ? "created" : strcmp(verb, "passwd") == 0 ? "password changed"
           : strcmp(verb, "disable") == 0 ? "disabled" : "enabled",
           json_get_string(out, "role"), "");
    if (generated)
        printf("Password: %s\n(shown only this once)\n", pw);
    rc = 0;
done:
    if (rc != 0)
        cmd_fail(&e);
done_quiet:
    if (pw) {
        crypto_wipe(pw, strlen(pw));
        free(pw);
    }
    json_decref(out);
    db_close(db);
    return rc;
}
