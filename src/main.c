/* main.c — the `sanad` binary: initialise libraries, then dispatch to a subcommand from the table. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "core/log.h"

#ifndef SANAD_VERSION
#define SANAD_VERSION "0.0.0-dev"
#endif

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} commands[] = {
    { "init", cmd_init },
    { "serve", cmd_serve },
    { "user", cmd_user },
    { "audit", cmd_audit },
    { "demo", cmd_demo },
    { "import", cmd_import },
    { "export", cmd_export },
    { "forms", cmd_forms },
    { "peer", cmd_peer },
    { "sync", cmd_sync },
    { "bundle", cmd_bundle },
    { "help", cmd_help },
};

int main(int argc, char **argv)
{
    size_t i;

    if (argc < 2) {
        fprintf(stderr, "usage: sanad <command> [options]; see 'sanad help'\n");
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("sanad %s\n", SANAD_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(1, argv);
    if (crypto_init() < 0) {
        fprintf(stderr, "sanad: cannot initialise libsodium\n");
        return 1;
    }
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sanad: '%s' is not a sanad command; see 'sanad help'\n", argv[1]);
    return 2;
}
