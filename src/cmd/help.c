/* help.c — `sanad help [COMMAND|roles]`. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "services/perm.h"

static void print_roles(void)
{
    int r, p;

    printf("%-16s", "permission");
    for (r = 0; r < ROLE_COUNT; r++)
        printf(" %-10s", role_name((enum role)r));
    printf("\n");
    for (p = 0; p < PERM_COUNT; p++) {
        printf("%-16s", perm_name((enum perm)p));
        for (r = 0; r < ROLE_COUNT; r++)
            printf(" %-10s", perm_allows((enum role)r, (enum perm)p) ? "yes" : "-");
        printf("  %s\n", perm_description((enum perm)p));
    }
}

int cmd_help(int argc, char **argv)
{
    char *sub[3];

    if (argc >= 2 && strcmp(argv[1], "roles") == 0) {
        print_roles();
        return 0;
    }
    if (argc >= 2) {
        sub[0] = argv[1];
        sub[1] = "--help";
        sub[2] = NULL;
        if (strcmp(argv[1], "init") == 0) return cmd_init(2, sub);
        if (strcmp(argv[1], "serve") == 0) return cmd_serve(2, sub);
        if (strcmp(argv[1], "user") == 0) return cmd_user(2, sub);
        if (strcmp(argv[1], "audit") == 0) return cmd_audit(2, sub);
        if (strcmp(argv[1], "demo") == 0) return cmd_demo(2, sub);
        if (strcmp(argv[1], "import") == 0) return cmd_import(2, sub);
        if (strcmp(argv[1], "export") == 0) return cmd_export(2, sub);
        if (strcmp(argv[1], "forms") == 0) return cmd_forms(2, sub);
        if (strcmp(argv[1], "peer") == 0) return cmd_peer(2, sub);
        if (strcmp(argv[1], "sync") == 0) return cmd_sync(2, sub);
        if (strcmp(argv[1], "bundle") == 0) return cmd_bundle(2, sub);
        fprintf(stderr, "sanad: no help for '%s'\n", argv[1]);
        return 2;
    }
    printf("usage: sanad <command> [options]   (--data DIR defaults to $SANAD_DATA)\n\n"
           "  init      create a new node: data directory, database, first site and admin\n"
           "  serve     run the HTTP API and web app\n"
           "  user      add, list, change password of, disable or enable accounts\n"
           "  audit     verify the audit log's hash chain\n"
           "  demo      add synthetic patients and visits for demos, training and benchmarks\n"
           "  import    register patients from a CSV file\n"
           "  export    write the patients (CSV or JSON lines) or form entries (JSON lines) out\n"
           "  forms     list, show and add form definitions; import an XLSForm\n"
           "  peer      enrol other nodes to sync with (invite, add, list, remove; request, accept offline)\n"
           "  sync      sync once with the enrolled peers and print what moved\n"
           "  bundle    sync without a network: export changes for a peer to a file, import one\n"
           "  help      this text; 'sanad help COMMAND' for one command, 'sanad help roles' for the roles\n\n"
           "  sanad --version prints the version.\n");
    return 0;
}
