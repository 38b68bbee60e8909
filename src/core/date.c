/* date.c — strict calendar dates and UTC times (see date.h). */
#include <stdio.h>
#include <string.h>

#include "core/date.h"
#include "core/util.h"

/* Howard Hinnant's days-from-civil and its inverse. */
int64_t date_days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void date_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int date_days_in_month(int y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return m >= 1 && m <= 12 ? days[m - 1] : 0;
}

/* n decimal digits at s into *out; -1 when any is not a digit. */
static int digits(const char *s, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* The "YYYY-MM-DD" at the start of s. */
static int date_prefix(const char *s, int64_t *days)
{
    int y, m, d;

    if (digits(s, 4, &y) < 0 || s[4] != '-' || digits(s + 5, 2, &m) < 0 || s[7] != '-' || digits(s + 8, 2, &d) < 0)
        return -1;
    if (y < 1800 || m < 1 || m > 12 || d < 1 || d > date_days_in_month(y, m))
        return -1;
    *days = date_days_from_civil(y, m, d);
    return 0;
}

int date_parse(const char *s, int64_t *days)
{
    if (s == NULL || strlen(s) != 10)
        return -1;
    return date_prefix(s, days);
}

int datetime_parse(const char *s, int64_t *ms)
{
    int64_t days;
    int hh, mm, ss = 0, frac = 0;
    const char *p;

    if (s == NULL || strlen(s) < 17 || strlen(s) > 24 || date_prefix(s, &days) < 0 || s[10] != 'T')
        return -1;
    if (digits(s + 11, 2, &hh) < 0 || s[13] != ':' || digits(s + 14, 2, &mm) < 0 || hh > 23 || mm > 59)
        return -1;
    p = s + 16;
    if (*p == ':') {
        if (digits(p + 1, 2, &ss) < 0 || ss > 59)
            return -1;
        p += 3;
        if (*p == '.') {
            if (digits(p + 1, 3, &frac) < 0)
                return -1;
            p += 4;
        }
    }
    if (strcmp(p, "Z") != 0)
        return -1;
    *ms = ((days * 24 + hh) * 60 + mm) * 60000 + ss * 1000 + frac;
    return 0;
}

int64_t date_today(void)
{
    int64_t ms = now_ms();

    return ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
}

void date_format(int64_t days, char out[11])
{
    char tmp[48];
    int y, m, d;

    date_civil_from_days(days, &y, &m, &d);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", y % 10000, m, d);
    snprintf(out, 11, "%.10s", tmp);
}

void datetime_format(int64_t ms, char out[21])
{
    int64_t days = ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000, rest = ms - days * 86400000;
    char tmp[64];
    int y, m, d;

    date_civil_from_days(days, &y, &m, &d);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02dZ", y % 10000, m, d, (int)(rest / 3600000),
             (int)(rest / 60000 % 60), (int)(rest / 1000 % 60));
    snprintf(out, 21, "%.20s", tmp);
}
