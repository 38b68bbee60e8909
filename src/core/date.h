/* date.h — calendar dates and UTC times as clinical records write them: "YYYY-MM-DD" and
 * "YYYY-MM-DDTHH:MM[:SS]Z". Strict: no other forms, real calendar days only. */
#ifndef SANAD_DATE_H
#define SANAD_DATE_H

#include <stdint.h>

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int64_t date_days_from_civil(int y, int m, int d);
/* The civil date of a day number. */
void date_civil_from_days(int64_t days, int *y, int *m, int *d);
int date_days_in_month(int y, int m);

/* "YYYY-MM-DD" (year 1800..9999) → 0 and *days; -1 when malformed or not a real day. */
int date_parse(const char *s, int64_t *days);
/* "YYYY-MM-DDTHH:MM[:SS[.fff]]Z" → 0 and *ms since the epoch; -1 when malformed. */
int datetime_parse(const char *s, int64_t *ms);

/* Today (UTC) as a day number, and as "YYYY-MM-DD" into out[11]. */
int64_t date_today(void);
void date_format(int64_t days, char out[11]);
/* A time as "YYYY-MM-DDTHH:MM:SSZ" into out[21]. */
void datetime_format(int64_t ms, char out[21]);

#endif
