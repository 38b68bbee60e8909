/* common.c — helpers shared by the subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "core/util.h"

const char *cmd_data_dir(const char *opt)
{
    const char *env = getenv("SANAD_DATA");

    if (opt && *opt)
        return opt;
    if (env && *env)
        return env;
    fprintf(stderr, "sanad: no data directory; pass --data DIR or set SANAD_DATA\n");
    return NULL;
}

int cmd_fail(const struct err *e)
{
    fprintf(stderr, "sanad: %s\n", e->message[0] ? e->message : "failed");
    return 1;
}

int cmd_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "sanad: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s\n", usage);
    return 2;
}

char *cmd_password(const char *file, int *generated)
{
    char *pw;

    *generated = 0;
    if (file) {
        pw = read_password_file(file);
        if (pw == NULL)
            fprintf(stderr, "sanad: cannot read password file '%s': %s\n", file, strerror(errno));
        return pw;
    }
    pw = malloc(32);
    if (pw == NULL)
        return NULL;
    crypto_random_password(pw, 32);
    *generated = 1;
    return pw;
}

int cmd_write_file(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    const char *p = data;
    ssize_t w;
    int fd;

    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
        fprintf(stderr, "sanad: the path '%s' is too long\n", path);
        return -1;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        fprintf(stderr, "sanad: cannot create '%s': %s\n", tmp, strerror(errno));
        return -1;
    }
    while (len > 0) {
        if ((w = write(fd, p, len)) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        p += w;
        len -= (size_t)w;
    }
    if (len > 0 || fsync(fd) < 0 || close(fd) < 0) {
        fprintf(stderr, "sanad: cannot write '%s': %s\n", tmp, strerror(errno));
        if (len > 0)
            close(fd);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        fprintf(stderr, "sanad: cannot write '%s': %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
