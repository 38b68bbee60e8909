/* util.c — number parsing, clocks and file reading. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out, const char **errstr)
{
    char *end;
    long long v;

    *errstr = NULL;
    if (s == NULL || *s == '\0' || (*s != '-' && (*s < '0' || *s > '9'))) {
        *errstr = "invalid";
        return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end != '\0') {
        *errstr = "invalid";
        return -1;
    }
    if ((errno == ERANGE && v == LLONG_MIN) || v < min) {
        *errstr = "too small";
        return -1;
    }
    if ((errno == ERANGE && v == LLONG_MAX) || v > max) {
        *errstr = "too large";
        return -1;
    }
    *out = v;
    return 0;
}

int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void format_time_ms(int64_t ms, char *out, size_t outlen)
{
    /* floor division: -1 ms is 1969-12-31T23:59:59.999Z, not second 0 with a negative fraction */
    int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    time_t t = (time_t)sec;
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - sec * 1000));
}

char *read_file(const char *path, size_t max, size_t *len)
{
    struct stat st;
    char *p = NULL;
    size_t got = 0;
    ssize_t n;
    int fd, saved;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0)
        goto fail;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        goto fail;
    }
    if ((size_t)st.st_size > max) {
        errno = EFBIG;
        goto fail;
    }
    p = malloc((size_t)st.st_size + 1);
    if (p == NULL)
        goto fail;
    while (got < (size_t)st.st_size) {
        n = read(fd, p + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    p[got] = '\0';
    close(fd);
    if (len)
        *len = got;
    return p;
fail:
    saved = errno;
    free(p);
    close(fd);
    errno = saved;
    return NULL;
}

char *read_password_file(const char *path)
{
    size_t len;
    char *p = read_file(path, 4096, &len);

    if (p == NULL)
        return NULL;
    p[strcspn(p, "\r\n")] = '\0';
    return p;
}

int str_equal(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

int str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int str_in_list(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}
