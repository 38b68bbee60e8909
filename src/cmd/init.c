/* init.c — `sanad init`: create a data directory with its database, node id, first site and admin. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "services/auth.h"
#include "services/sites.h"
#include "services/users.h"

static const char usage[] =
    "sanad init --data DIR [--site NAME] [--locales en,ar] [--admin USER] [--admin-password-file F]";

static const char help[] =
    "Create a new Sanad node in DIR (mode 0700): its database, node id, a first site and an admin account.\n"
    "Refuses a directory that exists and is not empty.\n\n"
    "  --data DIR                 data directory to create (default: $SANAD_DATA)\n"
    "  --site NAME                name of the first site (default: \"Main clinic\")\n"
    "  --locales LIST             languages of this node, comma-separated (default: en)\n"
    "  --admin USER               username of the first admin (default: admin)\n"
    "  --admin-password-file F    read the admin password from the first line of F; without it a strong\n"
    "                             password is generated and printed once\n";

/* "en,ar,fr": 2-3 lower-case letters each, at most 16 of them. */
static int locales_valid(const char *s)
{
    int n = 0, count = 0;

    for (; ; s++) {
        if (*s >= 'a' && *s <= 'z') {
            if (++n > 3)
                return 0;
        } else if (*s == ',' || *s == '\0') {
            if (n < 2 || ++count > 16)
                return 0;
            if (*s == '\0')
                return 1;
            n = 0;
        } else {
            return 0;
        }
    }
}

int cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "site", required_argument, NULL, 's' },
        { "locales", required_argument, NULL, 'l' },
        { "admin", required_argument, NULL, 'a' },
        { "admin-password-file", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct node_init_options o = { NULL, "Main clinic", "en", "admin", NULL };
    const char *data = NULL, *pwfile = NULL;
    char node_id[ID_LEN], user[USERNAME_MAX + 1];
    struct err e;
    int c, generated, rc;
    char *pw;

    err_clear(&e);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 's': o.site_name = optarg; break;
        case 'l': o.locales = optarg; break;
        case 'a': o.admin_username = optarg; break;
        case 'p': pwfile = optarg; break;
        case 'h': printf("usage: %s\n\n%s", usage, help); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if ((o.dir = cmd_data_dir(data)) == NULL)
        return 2;
    if (!locales_valid(o.locales))
        return cmd_usage_error(usage, "--locales takes language codes like en,ar,fr");
    if (users_normalise_username(o.admin_username, user, &e) < 0)
        return cmd_fail(&e);
    o.admin_username = user;
    if ((pw = cmd_password(pwfile, &generated)) == NULL)
        return 1;
    if (auth_password_acceptable(user, pw, &e) < 0) {
        crypto_wipe(pw, strlen(pw));
        free(pw);
        return cmd_fail(&e);
    }
    o.admin_password = pw;
    rc = node_init(&o, node_id, &e);
    if (rc == 0) {
        printf("Created Sanad node %s in %s\n", node_id, o.dir);
        printf("Site:           %s\n", o.site_name);
        printf("Admin username: %s\n", user);
        if (generated)
            printf("Admin password: %s\n(shown only this once: write it down or store it in a password manager)\n", pw);
    }
    crypto_wipe(pw, strlen(pw));
    free(pw);
    return rc == 0 ? 0 : cmd_fail(&e);
}
