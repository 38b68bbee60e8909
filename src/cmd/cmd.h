/* cmd.h — the subcommands of the `sanad` binary (one file each, git's builtin/ style) and their shared
 * helpers. Each cmd_* takes the arguments after `sanad` (argv[0] is the subcommand) and returns the exit
 * status: 0 success, 1 failure, 2 usage error. Messages go to stderr, results to stdout. */
#ifndef SANAD_CMD_H
#define SANAD_CMD_H

#include <stddef.h>

#include "core/err.h"

int cmd_init(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_forms(int argc, char **argv);
int cmd_peer(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_bundle(int argc, char **argv);

/* --data, or $SANAD_DATA; prints an error and returns NULL when neither is set. */
const char *cmd_data_dir(const char *opt);
/* Print "sanad: <message>" for e and return 1. */
int cmd_fail(const struct err *e);
/* Print "sanad <name>: <message>" plus the usage line and return 2. */
int cmd_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write data to path (mode 0600) through a temporary file renamed into place, so that a cut never
 * leaves half a file under the name. 0, or -1 after printing why. */
int cmd_write_file(const char *path, const void *data, size_t len);
/* Read a password from a file (first line), or generate one; *generated tells which. NULL on error
 * (already reported). The caller wipes and frees it. */
char *cmd_password(const char *file, int *generated);


#endif
