/* schedule.c — immunization schedules as data, checked once (schedule_load), and the plan they give for one
 * person's dose history (schedule_due): which doses count, what is due, overdue, next, complete or not
 * recommended, and the rule behind each. The format and the rules are documented in docs/immunizations.md. */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/datafiles.h"
#include "core/date.h"
#include "core/util.h"
#include "services/schedule.h"

#define BUILTIN_PATH   "/schedules/who_epi.json"
#define NAME_MAX_BYTES 160      /* a name in one language */
#define LABEL_MAX      120      /* a plan or dose label */
#define NOTE_MAX       1000     /* a series note */
#define SOURCE_MAX     4000     /* "source", "description" */
#define RULE_MAX       8192     /* one rule sentence */
#define REASON_MAX     2048     /* the reasons one history dose does not count */
#define MAX_YEARS      150      /* a duration, and the span from birth to today */

/* A duration as the schedule writes it: "0d", "14d", "6w", "9m", "5y". unit 0 means "not given". */
struct duration {
    int n;
    char unit;                  /* 'd', 'w', 'm', 'y' or 0 */
};

struct dose_rule {
    struct duration min_age;            /* dose 1: default 0d */
    struct duration recommended_age;    /* default: min_age */
    struct duration overdue_age;        /* overdue from this age (never before the recommended day + 1) */
    struct duration min_interval;       /* from the previous counted dose; required from dose 2 */
    struct duration recommended_interval; /* default: min_interval */
    char label[LABEL_MAX + 1];
};

struct plan {
    struct duration start_before;       /* chosen when the series starts before this age; 0 = any age */
    char label[LABEL_MAX + 1];
    int ndoses;
    struct dose_rule doses[SCHEDULE_DOSES_MAX];
};

struct give {
    int vaccine;                        /* index in schedule.vaccines */
    struct duration before;             /* given on days before this age; 0 = any later age */
};

struct series {
    char id[SCHEDULE_CODE_MAX + 1];
    char name[NAME_MAX_BYTES + 1];      /* English, else the first language */
    uint64_t counts;                    /* antigens a history dose must all contain to count */
    int ngive;
    struct give give[SCHEDULE_GIVE_MAX];
    char sex;                           /* 'f', 'm' or 0 (everyone) */
    struct duration max_age;            /* no dose from this age; 0 = none */
    int first_dose;                     /* number of the first dose: 0 (birth doses) or 1 */
    char note[NOTE_MAX + 1];
    int nplans;
    struct plan plans[SCHEDULE_PLANS_MAX];
};

struct vaccine {
    char code[SCHEDULE_CODE_MAX + 1];
    char name[NAME_MAX_BYTES + 1];
    uint64_t antigens;
};

struct combination {
    int vaccine;
    int nreplaces;
    int replaces[SCHEDULE_GIVE_MAX];
};

struct schedule {
    char id[65];
    char version[33];
    int grace_days;
    int overdue_after_days;
    int count_reported;                 /* doses reported without a document count (flagged) */
    int nantigens;
    char antigens[SCHEDULE_ANTIGENS_MAX][SCHEDULE_CODE_MAX + 1];
    int nvaccines;
    struct vaccine *vaccines;
    int ncombos;
    struct combination combos[SCHEDULE_COMBOS_MAX];
    int nseries;
    struct series *series;
};

/* ---- small helpers ---- */

/* The path of a member ("series[3].plans[0].doses[1].min_interval"), cut to cap bytes. */
static void path_at(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void path_at(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

/* Fill *e with an invalid_schedule error at path and return -1. */
static int bad(struct err *e, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct err *e, const char *path, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err_set(e, ERR_UNPROCESSABLE, "invalid_schedule", "%s: %s", path[0] ? path : "schedule", msg);
    return err_field(e, path);
}

/* 1 when s is a code: [a-z][a-z0-9_]{0,max-1}. */
static int is_code(const char *s, size_t max)
{
    size_t i;

    if (s == NULL || s[0] < 'a' || s[0] > 'z')
        return 0;
    for (i = 1; s[i]; i++)
        if (i >= max || !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* 0 when every key of obj is in the NULL-terminated list allowed; -1 naming the first other one. */
static int check_keys(const json_t *obj, const char *const *allowed, const char *path, struct err *e)
{
    const char *key;
    json_t *v;
    char at[200];

    json_object_foreach((json_t *)obj, key, v) {
        (void)v;
        if (!str_in_list(key, allowed)) {
            path_at(at, sizeof(at), "%s%s%.60s", path, path[0] ? "." : "", key);
            return bad(e, at, "is not a key of this object");
        }
    }
    return 0;
}

/* "6w" → {6, 'w'}: 1 to 5 digits and a unit, at most MAX_YEARS long. 0 or -1. */
static int duration_parse(const char *s, struct duration *d)
{
    size_t len, i;
    long n = 0, limit;

    if (s == NULL || (len = strlen(s)) < 2 || len > 6)
        return -1;
    for (i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        n = n * 10 + (s[i] - '0');
    }
    switch (s[len - 1]) {
    case 'd': limit = MAX_YEARS * 366L; break;
    case 'w': limit = MAX_YEARS * 53L; break;
    case 'm': limit = MAX_YEARS * 12L; break;
    case 'y': limit = MAX_YEARS; break;
    default: return -1;
    }
    if (n > limit)
        return -1;
    d->n = (int)n;
    d->unit = s[len - 1];
    return 0;
}

/* Approximate length in days, to check that the schedule's own numbers are in order. */
static double duration_days(struct duration d)
{
    switch (d.unit) {
    case 'd': return d.n;
    case 'w': return 7.0 * d.n;
    case 'm': return 30.4375 * d.n;
    case 'y': return 365.25 * d.n;
    default: return 0;
    }
}

/* The day a duration after day: weeks are 7 days; months and years are calendar months, the day of the
 * month kept or, when the month is shorter, its last day (31 January + 1m = 28 or 29 February). */
static int64_t duration_add(int64_t day, struct duration d)
{
    int y, m, dd, dim;
    int64_t months, total;

    switch (d.unit) {
    case 'd': return day + d.n;
    case 'w': return day + 7 * (int64_t)d.n;
    case 'm':
    case 'y':
        months = d.unit == 'y' ? 12 * (int64_t)d.n : d.n;
        date_civil_from_days(day, &y, &m, &dd);
        total = (int64_t)y * 12 + (m - 1) + months;
        y = (int)(total / 12);
        m = (int)(total % 12) + 1;
        dim = date_days_in_month(y, m);
        if (dd > dim)
            dd = dim;
        return date_days_from_civil(y, m, dd);
    default: return day;
    }
}

/* "6 weeks", "1 year", "birth" (for 0) into out. */
static void duration_text(struct duration d, char *out, size_t cap)
{
    const char *unit = d.unit == 'd' ? "day" : d.unit == 'w' ? "week" : d.unit == 'm' ? "month" : "year";

    if (d.n == 0 || d.unit == 0)
        snprintf(out, cap, "birth");
    else
        snprintf(out, cap, "%d %s%s", d.n, unit, d.n == 1 ? "" : "s");
}

/* A person's age on day, as a person says it: days up to 13 weeks, then whole months up to 2 years, then
 * whole years. */
static void age_text(int64_t birth, int64_t day, char *out, size_t cap)
{
    int by, bm, bd, y, m, d, months;
    int64_t days = day - birth;

    if (days < 91) {
        snprintf(out, cap, "%lld day%s", (long long)days, days == 1 ? "" : "s");
        return;
    }
    date_civil_from_days(birth, &by, &bm, &bd);
    date_civil_from_days(day, &y, &m, &d);
    months = (y - by) * 12 + (m - bm) - (d < bd);
    if (months < 24)
        snprintf(out, cap, "%d months", months);
    else
        snprintf(out, cap, "%d years", months / 12);
}

/* ---- reading the definition ---- */

/* obj[key] as a duration into *d (unit 0 when absent). */
static int get_duration(const json_t *obj, const char *key, struct duration *d, const char *path, struct err *e)
{
    const json_t *v = json_object_get(obj, key);
    char at[200];

    d->n = 0;
    d->unit = 0;
    if (v == NULL)
        return 0;
    path_at(at, sizeof(at), "%s.%s", path, key);
    if (!json_is_string(v) || duration_parse(json_string_value(v), d) < 0)
        return bad(e, at, "must be a duration such as \"14d\", \"6w\", \"9m\" or \"5y\" (at most %d years)",
                   MAX_YEARS);
    return 0;
}

/* obj[key] as a string of 1..max bytes into out (out[max + 1]); "" when absent and not required. */
static int get_string(const json_t *obj, const char *key, int required, size_t max, char *out, const char *path,
                      struct err *e)
{
    const json_t *v = json_object_get(obj, key);
    char at[200];
    size_t len;

    out[0] = '\0';
    path_at(at, sizeof(at), "%s%s%s", path, path[0] ? "." : "", key);
    if (v == NULL) {
        if (required)
            return bad(e, at, "is required");
        return 0;
    }
    if (!json_is_string(v) || (len = json_string_length(v)) == 0 || len > max)
        return bad(e, at, "must be a text of 1 to %zu bytes", max);
    if (strlen(json_string_value(v)) != len)
        return bad(e, at, "must not contain NUL characters");
    memcpy(out, json_string_value(v), len + 1);
    return 0;
}

/* 1 when s is a language tag such as "en", "ar" or "pt-BR". */
static int is_language(const char *s)
{
    size_t i = 0, part;

    while (i < 3 && s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i < 2)
        return 0;
    while (s[i] == '-') {
        for (part = 0, i++; isalnum((unsigned char)s[i]) && part < 8; i++)
            part++;
        if (part == 0)
            return 0;
    }
    return s[i] == '\0';
}

/* obj[key] as a translated text {"en": "...", "ar": "..."}: the English one (else the first) into out. */
static int get_text(const json_t *obj, const char *key, char *out, const char *path, struct err *e)
{
    const json_t *v = json_object_get(obj, key), *t;
    const char *lang;
    char at[200];
    size_t len;

    out[0] = '\0';
    path_at(at, sizeof(at), "%s%s%s", path, path[0] ? "." : "", key);
    if (v == NULL)
        return bad(e, at, "is required");
    if (!json_is_object(v) || json_object_size(v) == 0 || json_object_size(v) > 40)
        return bad(e, at, "must be an object of texts by language, e.g. {\"en\": \"...\", \"ar\": \"...\"}");
    json_object_foreach((json_t *)v, lang, t) {
        if (!is_language(lang))
            return bad(e, at, "'%.20s' is not a language code such as \"en\" or \"ar\"", lang);
        if (!json_is_string(t) || (len = json_string_length(t)) == 0 || len > NAME_MAX_BYTES
            || strlen(json_string_value(t)) != len)
            return bad(e, at, "the %.20s text must be 1 to %d bytes", lang, NAME_MAX_BYTES);
        if (out[0] == '\0' || strcmp(lang, "en") == 0)
            memcpy(out, json_string_value(t), len + 1);
    }
    return 0;
}

/* obj[key] as an integer in [min, max] into *out (def when absent). */
static int get_int(const json_t *obj, const char *key, int min, int max, int def, int *out, const char *path,
                   struct err *e)
{
    const json_t *v = json_object_get(obj, key);
    char at[200];

    *out = def;
    if (v == NULL)
        return 0;
    path_at(at, sizeof(at), "%s%s%s", path, path[0] ? "." : "", key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return bad(e, at, "must be a whole number from %d to %d", min, max);
    *out = (int)json_integer_value(v);
    return 0;
}

static int antigen_index(const struct schedule *s, const char *code)
{
    int i;

    for (i = 0; code && i < s->nantigens; i++)
        if (strcmp(s->antigens[i], code) == 0)
            return i;
    return -1;
}

static int vaccine_index(const struct schedule *s, const char *code)
{
    int i;

    for (i = 0; code && i < s->nvaccines; i++)
        if (strcmp(s->vaccines[i].code, code) == 0)
            return i;
    return -1;
}

int schedule_vaccine_known(const struct schedule *s, const char *code)
{
    return vaccine_index(s, code) >= 0;
}

/* obj[key]: a non-empty list of known antigens without repeats, as a bit set. */
static int get_antigens(const struct schedule *s, const json_t *obj, const char *key, uint64_t *set,
                        const char *path, struct err *e)
{
    const json_t *list = json_object_get(obj, key), *v;
    char at[200];
    size_t i;
    int a;

    *set = 0;
    path_at(at, sizeof(at), "%s.%s", path, key);
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > SCHEDULE_ANTIGENS_MAX)
        return bad(e, at, "must be a list of 1 to %d antigens", SCHEDULE_ANTIGENS_MAX);
    json_array_foreach(list, i, v) {
        if ((a = antigen_index(s, json_string_value(v))) < 0)
            return bad(e, at, "item %zu is not one of the schedule's \"antigens\"", i);
        if (*set & ((uint64_t)1 << a))
            return bad(e, at, "'%s' repeats", s->antigens[a]);
        *set |= (uint64_t)1 << a;
    }
    return 0;
}

static int load_dose(const json_t *def, int index, struct dose_rule *d, const char *path, struct err *e)
{
    static const char *const keys[] = { "min_age", "recommended_age", "overdue_age", "min_interval",
                                        "recommended_interval", "label", NULL };
    char at[200];

    if (!json_is_object(def))
        return bad(e, path, "must be an object");
    if (check_keys(def, keys, path, e) < 0 || get_duration(def, "min_age", &d->min_age, path, e) < 0
        || get_duration(def, "recommended_age", &d->recommended_age, path, e) < 0
        || get_duration(def, "overdue_age", &d->overdue_age, path, e) < 0
        || get_duration(def, "min_interval", &d->min_interval, path, e) < 0
        || get_duration(def, "recommended_interval", &d->recommended_interval, path, e) < 0
        || get_string(def, "label", 0, LABEL_MAX, d->label, path, e) < 0)
        return -1;
    if (index == 0 && (d->min_interval.unit || d->recommended_interval.unit)) {
        path_at(at, sizeof(at), "%s.%s", path, d->min_interval.unit ? "min_interval" : "recommended_interval");
        return bad(e, at, "the first dose of a plan has no previous dose to count an interval from");
    }
    if (index > 0 && (d->min_interval.unit == 0 || d->min_interval.n == 0)) {
        path_at(at, sizeof(at), "%s.min_interval", path);
        return bad(e, at, "is required from the second dose of a plan, at least \"1d\"");
    }
    if (d->min_age.unit == 0) {
        d->min_age.n = 0;
        d->min_age.unit = 'd';
    }
    if (d->recommended_age.unit == 0)
        d->recommended_age = d->min_age;
    if (d->recommended_interval.unit == 0)
        d->recommended_interval = d->min_interval;
    if (duration_days(d->recommended_age) < duration_days(d->min_age)) {
        path_at(at, sizeof(at), "%s.recommended_age", path);
        return bad(e, at, "must not be before min_age");
    }
    if (duration_days(d->recommended_interval) < duration_days(d->min_interval)) {
        path_at(at, sizeof(at), "%s.recommended_interval", path);
        return bad(e, at, "must not be shorter than min_interval");
    }
    if (d->overdue_age.unit && duration_days(d->overdue_age) <= duration_days(d->recommended_age)) {
        path_at(at, sizeof(at), "%s.overdue_age", path);
        return bad(e, at, "must be after the recommended age");
    }
    return 0;
}

static int load_plan(const json_t *def, struct plan *p, const char *path, struct err *e)
{
    static const char *const keys[] = { "start_before", "label", "doses", NULL };
    const json_t *doses = json_object_get(def, "doses"), *d;
    char at[200];
    size_t i;

    if (!json_is_object(def))
        return bad(e, path, "must be an object");
    if (check_keys(def, keys, path, e) < 0 || get_duration(def, "start_before", &p->start_before, path, e) < 0
        || get_string(def, "label", 0, LABEL_MAX, p->label, path, e) < 0)
        return -1;
    path_at(at, sizeof(at), "%s.doses", path);
    if (!json_is_array(doses) || json_array_size(doses) == 0 || json_array_size(doses) > SCHEDULE_DOSES_MAX)
        return bad(e, at, "must be a list of 1 to %d doses", SCHEDULE_DOSES_MAX);
    p->ndoses = (int)json_array_size(doses);
    json_array_foreach(doses, i, d) {
        path_at(at, sizeof(at), "%s.doses[%zu]", path, i);
        if (load_dose(d, (int)i, &p->doses[i], at, e) < 0)
            return -1;
    }
    return 0;
}

static int load_give(struct schedule *s, const json_t *list, struct series *se, const char *path, struct err *e)
{
    static const char *const keys[] = { "vaccine", "before", NULL };
    const json_t *g;
    char at[200];
    size_t i;
    int v;

    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > SCHEDULE_GIVE_MAX)
        return bad(e, path, "must be a list of 1 to %d {\"vaccine\", \"before\"} objects", SCHEDULE_GIVE_MAX);
    se->ngive = (int)json_array_size(list);
    json_array_foreach(list, i, g) {
        path_at(at, sizeof(at), "%s[%zu]", path, i);
        if (!json_is_object(g))
            return bad(e, at, "must be an object");
        if (check_keys(g, keys, at, e) < 0 || get_duration(g, "before", &se->give[i].before, at, e) < 0)
            return -1;
        if ((v = vaccine_index(s, json_string_value(json_object_get(g, "vaccine")))) < 0) {
            path_at(at, sizeof(at), "%s[%zu].vaccine", path, i);
            return bad(e, at, "must be the code of one of the schedule's vaccines");
        }
        if ((s->vaccines[v].antigens & se->counts) != se->counts) {
            path_at(at, sizeof(at), "%s[%zu].vaccine", path, i);
            return bad(e, at, "'%s' lacks an antigen the series counts, so its doses would never count",
                       s->vaccines[v].code);
        }
        se->give[i].vaccine = v;
        if ((i + 1 < json_array_size(list)) != (se->give[i].before.unit != 0)) {
            path_at(at, sizeof(at), "%s[%zu].before", path, i);
            return bad(e, at, "every vaccine but the last needs \"before\", and the last has none");
        }
        if (i > 0 && se->give[i].before.unit
            && duration_days(se->give[i].before) <= duration_days(se->give[i - 1].before)) {
            path_at(at, sizeof(at), "%s[%zu].before", path, i);
            return bad(e, at, "must be later than the previous vaccine's");
        }
    }
    return 0;
}

static int load_series(struct schedule *s, const json_t *def, int index, const char *path, struct err *e)
{
    static const char *const keys[] = { "id", "name", "counts", "give", "sex", "max_age", "first_dose", "note",
                                        "plans", NULL };
    struct series *se = &s->series[index];
    const json_t *plans = json_object_get(def, "plans"), *p;
    char at[200], sex[8];
    size_t i;
    int j;

    if (!json_is_object(def))
        return bad(e, path, "must be an object");
    if (check_keys(def, keys, path, e) < 0 || get_string(def, "id", 1, SCHEDULE_CODE_MAX, se->id, path, e) < 0)
        return -1;
    path_at(at, sizeof(at), "%s.id", path);
    if (!is_code(se->id, SCHEDULE_CODE_MAX))
        return bad(e, at, "must be lowercase letters, digits and '_', starting with a letter");
    for (j = 0; j < index; j++)
        if (strcmp(s->series[j].id, se->id) == 0)
            return bad(e, at, "'%s' repeats series[%d]", se->id, j);
    if (get_text(def, "name", se->name, path, e) < 0 || get_antigens(s, def, "counts", &se->counts, path, e) < 0)
        return -1;
    path_at(at, sizeof(at), "%s.give", path);
    if (load_give(s, json_object_get(def, "give"), se, at, e) < 0
        || get_string(def, "sex", 0, 6, sex, path, e) < 0
        || get_duration(def, "max_age", &se->max_age, path, e) < 0
        || get_int(def, "first_dose", 0, 1, 1, &se->first_dose, path, e) < 0
        || get_string(def, "note", 0, NOTE_MAX, se->note, path, e) < 0)
        return -1;
    if (sex[0] && strcmp(sex, "female") != 0 && strcmp(sex, "male") != 0) {
        path_at(at, sizeof(at), "%s.sex", path);
        return bad(e, at, "must be \"female\" or \"male\" (absent: everyone)");
    }
    se->sex = sex[0] == 'f' ? 'f' : sex[0] == 'm' ? 'm' : 0;
    if (se->max_age.unit && se->max_age.n == 0) {
        path_at(at, sizeof(at), "%s.max_age", path);
        return bad(e, at, "must be more than 0");
    }
    path_at(at, sizeof(at), "%s.plans", path);
    if (!json_is_array(plans) || json_array_size(plans) == 0 || json_array_size(plans) > SCHEDULE_PLANS_MAX)
        return bad(e, at, "must be a list of 1 to %d plans", SCHEDULE_PLANS_MAX);
    se->nplans = (int)json_array_size(plans);
    json_array_foreach(plans, i, p) {
        struct plan *pl = &se->plans[i];

        path_at(at, sizeof(at), "%s.plans[%zu]", path, i);
        if (load_plan(p, pl, at, e) < 0)
            return -1;
        path_at(at, sizeof(at), "%s.plans[%zu].start_before", path, i);
        if ((i + 1 < json_array_size(plans)) && pl->start_before.unit == 0)
            return bad(e, at, "is required on every plan but the last");
        if (pl->start_before.unit && pl->start_before.n == 0)
            return bad(e, at, "must be more than 0");
        if (i > 0 && pl->start_before.unit
            && duration_days(pl->start_before) <= duration_days(se->plans[i - 1].start_before))
            return bad(e, at, "must be later than the previous plan's (plans go from the youngest start)");
        if (se->max_age.unit && duration_days(pl->doses[0].min_age) >= duration_days(se->max_age)) {
            path_at(at, sizeof(at), "%s.plans[%zu].doses[0].min_age", path, i);
            return bad(e, at, "must be before the series' max_age");
        }
    }
    return 0;
}

static int load_vaccines(struct schedule *s, const json_t *list, struct err *e)
{
    static const char *const keys[] = { "code", "name", "antigens", NULL };
    const json_t *v;
    char at[200];
    size_t i;
    int j;

    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > SCHEDULE_VACCINES_MAX)
        return bad(e, "vaccines", "must be a list of 1 to %d vaccines", SCHEDULE_VACCINES_MAX);
    s->vaccines = calloc(json_array_size(list), sizeof(*s->vaccines));
    if (s->vaccines == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory reading a schedule");
    json_array_foreach(list, i, v) {
        struct vaccine *va = &s->vaccines[i];

        path_at(at, sizeof(at), "vaccines[%zu]", i);
        if (!json_is_object(v))
            return bad(e, at, "must be an object");
        if (check_keys(v, keys, at, e) < 0 || get_string(v, "code", 1, SCHEDULE_CODE_MAX, va->code, at, e) < 0)
            return -1;
        path_at(at, sizeof(at), "vaccines[%zu].code", i);
        if (!is_code(va->code, SCHEDULE_CODE_MAX))
            return bad(e, at, "must be lowercase letters, digits and '_', starting with a letter");
        for (j = 0; j < (int)i; j++)
            if (strcmp(s->vaccines[j].code, va->code) == 0)
                return bad(e, at, "'%s' repeats vaccines[%d]", va->code, j);
        path_at(at, sizeof(at), "vaccines[%zu]", i);
        if (get_text(v, "name", va->name, at, e) < 0 || get_antigens(s, v, "antigens", &va->antigens, at, e) < 0)
            return -1;
        s->nvaccines = (int)i + 1;
    }
    return 0;
}

static int load_combinations(struct schedule *s, const json_t *list, struct err *e)
{
    static const char *const keys[] = { "vaccine", "replaces", NULL };
    const json_t *c, *r, *replaces;
    char at[200];
    size_t i, k;
    int v, j, n, given;
    uint64_t covered;

    if (list == NULL)
        return 0;
    if (!json_is_array(list) || json_array_size(list) > SCHEDULE_COMBOS_MAX)
        return bad(e, "combinations", "must be a list of at most %d combinations", SCHEDULE_COMBOS_MAX);
    json_array_foreach(list, i, c) {
        struct combination *co = &s->combos[i];

        path_at(at, sizeof(at), "combinations[%zu]", i);
        if (!json_is_object(c))
            return bad(e, at, "must be an object");
        if (check_keys(c, keys, at, e) < 0)
            return -1;
        path_at(at, sizeof(at), "combinations[%zu].vaccine", i);
        if ((co->vaccine = vaccine_index(s, json_string_value(json_object_get(c, "vaccine")))) < 0)
            return bad(e, at, "must be the code of one of the schedule's vaccines");
        replaces = json_object_get(c, "replaces");
        path_at(at, sizeof(at), "combinations[%zu].replaces", i);
        if (!json_is_array(replaces) || json_array_size(replaces) < 2 || json_array_size(replaces) > SCHEDULE_GIVE_MAX)
            return bad(e, at, "must be a list of 2 to %d vaccine codes", SCHEDULE_GIVE_MAX);
        covered = 0;
        json_array_foreach(replaces, k, r) {
            if ((v = vaccine_index(s, json_string_value(r))) < 0 || v == co->vaccine)
                return bad(e, at, "item %zu must be the code of another of the schedule's vaccines", k);
            for (j = 0; j < (int)k; j++)
                if (co->replaces[j] == v)
                    return bad(e, at, "'%s' repeats", s->vaccines[v].code);
            for (given = 0, n = 0; n < s->nseries && !given; n++)
                for (j = 0; j < s->series[n].ngive; j++)
                    given |= s->series[n].give[j].vaccine == v;
            if (!given)
                return bad(e, at, "'%s' is given by no series, so it can never be replaced", s->vaccines[v].code);
            co->replaces[k] = v;
            covered |= s->vaccines[v].antigens;
        }
        co->nreplaces = (int)json_array_size(replaces);
        if ((s->vaccines[co->vaccine].antigens & covered) != covered) {
            path_at(at, sizeof(at), "combinations[%zu].vaccine", i);
            return bad(e, at, "'%s' does not contain every antigen of the vaccines it replaces",
                       s->vaccines[co->vaccine].code);
        }
        s->ncombos = (int)i + 1;
    }
    return 0;
}

void schedule_free(struct schedule *s)
{
    if (s == NULL)
        return;
    free(s->vaccines);
    free(s->series);
    free(s);
}

struct schedule *schedule_load(const json_t *def, struct err *e)
{
    static const char *const keys[] = { "format", "id", "version", "title", "description", "source", "grace_days",
                                        "overdue_after_days", "count_reported", "antigens", "vaccines",
                                        "combinations", "series", NULL };
    const json_t *antigens, *series, *v;
    struct schedule *s;
    char text[SOURCE_MAX + 1], title[NAME_MAX_BYTES + 1], at[200];
    size_t i;
    int format;

    if (!json_is_object(def)) {
        bad(e, "", "must be a JSON object");
        return NULL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory reading a schedule");
        return NULL;
    }
    if (check_keys(def, keys, "", e) < 0 || get_int(def, "format", 1, 1000, 0, &format, "", e) < 0)
        goto fail;
    if (format != SCHEDULE_FORMAT) {
        bad(e, "format", "must be %d (the format this version of Sanad reads)", SCHEDULE_FORMAT);
        goto fail;
    }
    if (get_string(def, "id", 1, 64, s->id, "", e) < 0)
        goto fail;
    if (!is_code(s->id, 64)) {
        bad(e, "id", "must be lowercase letters, digits and '_', starting with a letter");
        goto fail;
    }
    if (get_string(def, "version", 1, 32, s->version, "", e) < 0 || get_text(def, "title", title, "", e) < 0
        || get_string(def, "description", 0, SOURCE_MAX, text, "", e) < 0
        || get_string(def, "source", 0, SOURCE_MAX, text, "", e) < 0
        || get_int(def, "grace_days", 0, 14, 4, &s->grace_days, "", e) < 0
        || get_int(def, "overdue_after_days", 1, 365, 28, &s->overdue_after_days, "", e) < 0)
        goto fail;
    v = json_object_get(def, "count_reported");
    if (v && !json_is_boolean(v)) {
        bad(e, "count_reported", "must be true or false");
        goto fail;
    }
    s->count_reported = v == NULL || json_is_true(v);
    antigens = json_object_get(def, "antigens");
    if (!json_is_array(antigens) || json_array_size(antigens) == 0
        || json_array_size(antigens) > SCHEDULE_ANTIGENS_MAX) {
        bad(e, "antigens", "must be a list of 1 to %d antigen codes", SCHEDULE_ANTIGENS_MAX);
        goto fail;
    }
    json_array_foreach(antigens, i, v) {
        path_at(at, sizeof(at), "antigens[%zu]", i);
        if (!is_code(json_string_value(v), SCHEDULE_CODE_MAX)) {
            bad(e, at, "must be a code of lowercase letters, digits and '_' (at most %d)", SCHEDULE_CODE_MAX);
            goto fail;
        }
        if (antigen_index(s, json_string_value(v)) >= 0) {
            bad(e, at, "'%s' repeats", json_string_value(v));
            goto fail;
        }
        snprintf(s->antigens[i], sizeof(s->antigens[i]), "%s", json_string_value(v));
        s->nantigens = (int)i + 1;
    }
    if (load_vaccines(s, json_object_get(def, "vaccines"), e) < 0)
        goto fail;
    series = json_object_get(def, "series");
    if (!json_is_array(series) || json_array_size(series) == 0 || json_array_size(series) > SCHEDULE_SERIES_MAX) {
        bad(e, "series", "must be a list of 1 to %d series", SCHEDULE_SERIES_MAX);
        goto fail;
    }
    if ((s->series = calloc(json_array_size(series), sizeof(*s->series))) == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory reading a schedule");
        goto fail;
    }
    json_array_foreach(series, i, v) {
        path_at(at, sizeof(at), "series[%zu]", i);
        if (load_series(s, v, (int)i, at, e) < 0)
            goto fail;
        s->nseries = (int)i + 1;
    }
    if (load_combinations(s, json_object_get(def, "combinations"), e) < 0)
        goto fail;
    return s;
fail:
    schedule_free(s);
    return NULL;
}

static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;
static struct schedule *builtin;
static struct err builtin_err;

static void builtin_load(void)
{
    const struct asset *a = data_file_find(BUILTIN_PATH);
    json_error_t jerr;
    json_t *def;

    err_clear(&builtin_err);
    if (a == NULL) {
        err_set(&builtin_err, ERR_INTERNAL, "schedule_missing", "the built-in schedule %s is missing", BUILTIN_PATH);
        return;
    }
    def = json_loadb((const char *)a->data, a->size, JSON_REJECT_DUPLICATES, &jerr);
    if (def == NULL) {
        err_set(&builtin_err, ERR_INTERNAL, "schedule_broken", "the built-in schedule is not JSON: %s (line %d)",
                jerr.text, jerr.line);
        return;
    }
    builtin = schedule_load(def, &builtin_err);
    if (builtin == NULL && builtin_err.kind == ERR_UNPROCESSABLE)
        builtin_err.kind = ERR_INTERNAL;
    json_decref(def);
}

struct schedule *schedule_builtin(struct err *e)
{
    pthread_once(&builtin_once, builtin_load);
    if (builtin == NULL && e)
        *e = builtin_err;
    return builtin;
}

const char *schedule_id(const struct schedule *s)
{
    return s->id;
}

const char *schedule_version(const struct schedule *s)
{
    return s->version;
}

/* ---- the plan for one person ---- */

enum bucket { B_OVERDUE, B_DUE, B_NEXT };
enum bound { BY_AGE, BY_INTERVAL, BY_INVALID };   /* what set a dose's earliest day */

/* Why one series did not count a dose. */
struct rejection {
    int series;
    char *text;                 /* "<series> dose n: given at 5 days, before the minimum age of 6 weeks ..." */
};

/* One dose of the history. */
struct hist {
    int index;                  /* its position in the input */
    int vaccine;                /* index in the schedule's vaccines; -1 when unknown */
    const char *code;           /* borrowed from the input */
    int64_t day;
    int dose;                   /* the number the record gives, -1 when none */
    int documented;
    uint64_t counted_series;    /* the series that counted it (bit = series index) */
    uint64_t counted_antigens;  /* the antigens those series count */
    const char *excluded;       /* why no series looks at it (before birth, future, unknown), or NULL */
    int nrejections;            /* at most one per series */
    struct rejection *rejections;
};

struct cover {
    int series;
    int dose;
};

/* One dose to give (due, overdue or next), or several merged into one injection. */
struct item {
    enum bucket bucket;
    int vaccine;
    int64_t earliest, recommended, latest;
    int has_latest;
    int reported;               /* timed from a dose reported without a document */
    int removed;                /* merged into another item */
    int ncovers;
    struct cover covers[SCHEDULE_SERIES_MAX];
    struct buf clauses;         /* "<series> dose n: <rule>", "; "-separated */
};

struct run {
    const struct schedule *s;
    int64_t birth, today;
    const char *sex;
    struct hist *h;
    int nh;
    struct item *items;
    int nitems, capitems;
    json_t *complete, *not_recommended;
    int oom;
};

static void fmt_day(int64_t day, char out[11])
{
    date_format(day, out);
}

/* The vaccine a series gives to someone on day. */
static int series_vaccine(const struct run *r, const struct series *se, int64_t day)
{
    int g;

    for (g = 0; g + 1 < se->ngive; g++)
        if (day < duration_add(r->birth, se->give[g].before))
            break;
    return se->give[g].vaccine;
}

static int sex_excluded(char series_sex, const char *sex)
{
    if (series_sex == 0 || sex == NULL)
        return 0;
    return strcmp(sex, series_sex == 'f' ? "male" : "female") == 0;
}

static int sex_confirmed(char series_sex, const char *sex)
{
    return series_sex == 0 || (sex && strcmp(sex, series_sex == 'f' ? "female" : "male") == 0);
}

/* "Hepatitis B dose 2 (booster 1)", or "Hepatitis B birth dose" for a dose numbered 0. */
static void dose_header(struct buf *b, const struct series *se, const struct plan *p, int j)
{
    int n = se->first_dose + j;

    if (n == 0)
        buf_puts(b, se->name);
    else
        buf_printf(b, "%s dose %d", se->name, n);
    if (p->doses[j].label[0])
        buf_printf(b, " (%s)", p->doses[j].label);
}

static void add_not_recommended(struct run *r, int si, int dose, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_not_recommended(struct run *r, int si, int dose, const char *fmt, ...)
{
    const struct series *se = &r->s->series[si];
    struct buf b;
    json_t *o;
    va_list ap;
    char tmp[RULE_MAX];

    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    buf_init(&b, RULE_MAX);
    buf_puts(&b, tmp);
    if (se->note[0])
        buf_printf(&b, " %s", se->note);
    o = json_pack("{s:s, s:s, s:i, s:s}", "series", se->id, "vaccine",
                  r->s->vaccines[series_vaccine(r, se, r->today)].code, "dose", dose, "rule", b.data);
    if (o == NULL || json_array_append_new(r->not_recommended, o) < 0)
        r->oom = 1;
    buf_free(&b);
}

static struct item *new_item(struct run *r)
{
    struct item *it;

    if (r->nitems == r->capitems) {
        int cap = r->capitems ? r->capitems * 2 : 32;
        struct item *grown = realloc(r->items, (size_t)cap * sizeof(*grown));

        if (grown == NULL) {
            r->oom = 1;
            return NULL;
        }
        r->items = grown;
        r->capitems = cap;
    }
    it = &r->items[r->nitems++];
    memset(it, 0, sizeof(*it));
    buf_init(&it->clauses, RULE_MAX);
    return it;
}

/* Where one series stands for one person while its doses are counted and planned. */
struct walk {
    int si;                     /* the series' index */
    const struct series *se;
    const struct plan *p;       /* the plan chosen by the age the series started at */
    int k;                      /* doses counted so far */
    int nreported;              /* of which reported without a document */
    int has_prev, prev_reported;
    int64_t prev;               /* the last counted dose (then, while planning, the last planned one) */
    int has_rejected;
    int64_t rejected;           /* a dose that did not count since the last counted one: the next keeps
                                   the minimum interval from it too */
    int has_latest;
    int64_t latest;             /* the last day a dose may be given (the day before max_age) */
    char limit[32];             /* max_age as words */
};

/* Note on h why the series of w does not count it (as its next dose when with_dose). */
static void reject(struct run *r, struct hist *h, const struct walk *w, int with_dose, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void reject(struct run *r, struct hist *h, const struct walk *w, int with_dose, const char *fmt, ...)
{
    struct buf b;
    char tmp[600];
    va_list ap;

    if (h->rejections == NULL && (h->rejections = calloc((size_t)r->s->nseries, sizeof(*h->rejections))) == NULL) {
        r->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    buf_init(&b, REASON_MAX);
    if (with_dose)
        dose_header(&b, w->se, w->p, w->k);
    else
        buf_puts(&b, w->se->name);
    buf_printf(&b, ": %s", tmp);
    h->rejections[h->nrejections].series = w->si;
    if ((h->rejections[h->nrejections].text = buf_detach(&b, NULL)) == NULL)
        r->oom = 1;
    else
        h->nrejections++;
}

/* The plan index for a series that starts on day start, or -1 when it is too late to start. */
static int choose_plan(const struct run *r, const struct series *se, int64_t start)
{
    int p;

    for (p = 0; p < se->nplans; p++)
        if (se->plans[p].start_before.unit == 0 || start < duration_add(r->birth, se->plans[p].start_before))
            return p;
    return -1;
}

/* The earliest day dose j may be given, and what sets it. */
static int64_t dose_earliest(const struct run *r, const struct walk *w, int j, enum bound *why)
{
    const struct dose_rule *d = &w->p->doses[j];
    int64_t day = duration_add(r->birth, d->min_age);

    *why = BY_AGE;
    if (j > 0 && duration_add(w->prev, d->min_interval) > day) {
        day = duration_add(w->prev, d->min_interval);
        *why = BY_INTERVAL;
    }
    if (j > 0 && j == w->k && w->has_rejected && duration_add(w->rejected, d->min_interval) > day) {
        day = duration_add(w->rejected, d->min_interval);
        *why = BY_INVALID;
    }
    return day;
}

/* Count the matching doses of the history, in date order: each is tried as the plan's next dose and counts
 * when given within the series' ages and, less the grace days, after the minimum age and interval. */
static void count_doses(struct run *r, struct walk *w, const int *matched, int nmatched)
{
    const struct schedule *s = r->s;
    char age[32], dur[32], d1[11];
    enum bound why;
    int m;

    for (m = 0; m < nmatched && w->k < w->p->ndoses; m++) {
        struct hist *h = &r->h[matched[m]];
        const struct dose_rule *d = &w->p->doses[w->k];
        int64_t bound_day = dose_earliest(r, w, w->k, &why), from;

        age_text(r->birth, h->day, age, sizeof(age));
        if (w->has_latest && h->day > w->latest) {
            reject(r, h, w, 0, "given at %s, from the maximum age of %s", age, w->limit);
            continue;
        }
        if (h->day < bound_day - s->grace_days) {
            if (why == BY_AGE) {
                duration_text(d->min_age, dur, sizeof(dur));
                reject(r, h, w, 1, "given at %s, before the minimum age of %s (%d days' grace)", age, dur,
                       s->grace_days);
            } else {
                from = why == BY_INTERVAL ? w->prev : w->rejected;
                duration_text(d->min_interval, dur, sizeof(dur));
                fmt_day(from, d1);
                reject(r, h, w, 1,
                       "given %lld days after %s (%s), before the minimum interval of %s (%d days' grace)",
                       (long long)(h->day - from),
                       why == BY_INTERVAL ? "the previous dose" : "a dose that did not count",
                       d1, dur, s->grace_days);
            }
            if (w->k > 0) {
                w->has_rejected = 1;
                w->rejected = h->day;
            }
            continue;
        }
        h->counted_series |= (uint64_t)1 << w->si;
        h->counted_antigens |= w->se->counts;
        w->k++;
        w->prev = h->day;
        w->has_prev = 1;
        w->prev_reported = !h->documented;
        w->nreported += !h->documented;
        w->has_rejected = 0;
    }
}

static void add_complete(struct run *r, const struct walk *w)
{
    const struct schedule *s = r->s;
    struct buf b;
    json_t *o;
    char d1[11];

    buf_init(&b, RULE_MAX);
    fmt_day(w->prev, d1);
    buf_printf(&b, "%s: complete with %d dose%s (last given %s)", w->se->name, w->k, w->k == 1 ? "" : "s", d1);
    if (w->nreported)
        buf_printf(&b, "; %d reported without a document", w->nreported);
    if (w->p->label[0])
        buf_printf(&b, " [%s]", w->p->label);
    o = json_pack("{s:s, s:s, s:i, s:s, s:i, s:b, s:s}", "series", w->se->id, "vaccine",
                  s->vaccines[series_vaccine(r, w->se, r->today)].code, "dose", w->se->first_dose + w->k - 1, "date",
                  d1, "doses", w->k, "reported", w->nreported > 0, "rule", b.data);
    if (o == NULL || json_array_append_new(r->complete, o) < 0)
        r->oom = 1;
    buf_free(&b);
}

/* The rule of planned dose j, "<series> dose n: <why then>", into b. */
static void describe_dose(const struct run *r, const struct walk *w, int j, const struct item *it, enum bound why,
                          int64_t rec_age, int64_t rec_interval, int clamped, struct buf *b)
{
    const struct dose_rule *d = &w->p->doses[j];
    const struct series *se = w->se;
    char dur[32], d1[11];

    dose_header(b, se, w->p, j);
    if (it->vaccine != se->give[0].vaccine)      /* the age chose another vaccine: DTP becomes Td */
        buf_printf(b, " as %s", r->s->vaccines[it->vaccine].name);
    buf_puts(b, ": ");
    if (why == BY_AGE) {
        duration_text(d->min_age, dur, sizeof(dur));
        buf_printf(b, d->min_age.n == 0 ? "from %s" : "from %s of age", dur);
    } else if (why == BY_INTERVAL) {
        duration_text(d->min_interval, dur, sizeof(dur));
        fmt_day(w->prev, d1);
        buf_printf(b, "at least %s after dose %d (%s %s%s)", dur, se->first_dose + j - 1,
                   j == w->k ? "given" : "planned",
                   d1, j == w->k && w->prev_reported ? ", reported without a document" : "");
    } else {
        duration_text(d->min_interval, dur, sizeof(dur));
        fmt_day(w->rejected, d1);
        buf_printf(b, "at least %s after the dose of %s that did not count", dur, d1);
    }
    if (it->recommended > it->earliest) {
        if (clamped) {
            fmt_day(w->latest, d1);
            buf_printf(b, ", recommended by %s", d1);
        } else if (rec_age >= rec_interval) {
            duration_text(d->recommended_age, dur, sizeof(dur));
            buf_printf(b, ", recommended at %s of age", dur);
        } else {
            duration_text(d->recommended_interval, dur, sizeof(dur));
            buf_printf(b, ", recommended %s after dose %d", dur, se->first_dose + j - 1);
        }
    }
    if (w->has_latest)
        buf_printf(b, ", not from %s of age", w->limit);
    if (w->p->label[0])
        buf_printf(b, " [%s]", w->p->label);
    if (!sex_confirmed(se->sex, r->sex))
        buf_printf(b, " [for %s; sex not recorded as %s]", se->sex == 'f' ? "females" : "males",
                   se->sex == 'f' ? "female" : "male");
}

/* Plan the doses still missing: the first from the doses counted, each later one as if the one before it
 * were given on its recommended day (or today, when that has passed). A dose that could only come after the
 * series' maximum age ends the plan as not recommended. */
static void plan_doses(struct run *r, struct walk *w)
{
    const struct schedule *s = r->s;
    const struct series *se = w->se;
    char d1[11];
    int j, n;

    for (j = w->k; j < w->p->ndoses; j++) {
        const struct dose_rule *d = &w->p->doses[j];
        int64_t earliest, recommended, rec_age, rec_interval = INT64_MIN, overdue_from;
        enum bound why;
        struct item *it;
        int clamped;

        n = se->first_dose + j;
        earliest = dose_earliest(r, w, j, &why);
        rec_age = duration_add(r->birth, d->recommended_age);
        if (j > 0)
            rec_interval = duration_add(w->prev, d->recommended_interval);
        recommended = rec_age > rec_interval ? rec_age : rec_interval;
        if (earliest > recommended)
            recommended = earliest;
        if (w->has_latest && j == w->k && r->today > w->latest) {
            if (n == 0)
                add_not_recommended(r, w->si, 0, "%s: not given from %s of age.", se->name, w->limit);
            else
                add_not_recommended(r, w->si, n, "%s dose %d: not given from %s of age.", se->name, n, w->limit);
            return;
        }
        if (w->has_latest && earliest > w->latest) {
            fmt_day(earliest, d1);
            add_not_recommended(r, w->si, n, "%s dose %d: could not be given before %s of age (earliest %s).",
                                se->name, n, w->limit, d1);
            return;
        }
        clamped = w->has_latest && recommended > w->latest;
        if (clamped)
            recommended = w->latest;
        if (d->overdue_age.unit) {
            overdue_from = duration_add(r->birth, d->overdue_age);
            if (overdue_from < recommended + 1)
                overdue_from = recommended + 1;
        } else {
            overdue_from = recommended + s->overdue_after_days;
        }

        if ((it = new_item(r)) == NULL)
            return;
        it->bucket = r->today >= overdue_from ? B_OVERDUE : r->today >= recommended ? B_DUE : B_NEXT;
        it->earliest = earliest;
        it->recommended = recommended;
        it->latest = w->latest;
        it->has_latest = w->has_latest;
        it->reported = j == w->k && w->has_prev && w->prev_reported;
        it->ncovers = 1;
        it->covers[0].series = w->si;
        it->covers[0].dose = n;
        it->vaccine = series_vaccine(r, se, it->bucket == B_NEXT ? recommended : r->today);
        describe_dose(r, w, j, it, why, rec_age, rec_interval, clamped, &it->clauses);
        w->prev = recommended > r->today ? recommended : r->today;
    }
}

/* One series for one person: not for their sex, too late to start, complete, or doses to plan. */
static void evaluate_series(struct run *r, int si)
{
    const struct schedule *s = r->s;
    const struct series *se = &s->series[si];
    int matched[SCHEDULE_HISTORY_MAX], nmatched = 0, m, pi, started = 0;
    int64_t start = r->today, threshold;
    struct walk w;
    char limit[32];

    if (sex_excluded(se->sex, r->sex)) {
        add_not_recommended(r, si, se->first_dose, "%s: for %s in this schedule (sex recorded: %s).", se->name,
                            se->sex == 'f' ? "females" : "males", r->sex);
        return;
    }
    for (m = 0; m < r->nh; m++)
        if (r->h[m].excluded == NULL && (s->vaccines[r->h[m].vaccine].antigens & se->counts) == se->counts)
            matched[nmatched++] = m;
    /* the plan follows the age at the series' first dose on or after the youngest first-dose age (a birth
     * dose of hepatitis B does not start the 3-dose series), or today's age when there is none */
    threshold = duration_add(r->birth, se->plans[0].doses[0].min_age) - s->grace_days;
    for (m = 0; m < nmatched; m++)
        if (r->h[matched[m]].day >= threshold) {
            start = r->h[matched[m]].day;
            started = 1;
            break;
        }
    /* a series started after its last plan's age (hepatitis B at 25 years, for a health worker) is
     * completed with that plan; one never started is not offered */
    if ((pi = choose_plan(r, se, start)) < 0 && started)
        pi = se->nplans - 1;
    if (pi < 0) {
        duration_text(se->plans[se->nplans - 1].start_before, limit, sizeof(limit));
        add_not_recommended(r, si, se->first_dose, "%s: not started before %s of age, so not offered in this schedule.",
                            se->name, limit);
        return;
    }
    memset(&w, 0, sizeof(w));
    w.si = si;
    w.se = se;
    w.p = &se->plans[pi];
    w.has_latest = se->max_age.unit != 0;
    if (w.has_latest)
        w.latest = duration_add(r->birth, se->max_age) - 1;
    duration_text(se->max_age, w.limit, sizeof(w.limit));
    count_doses(r, &w, matched, nmatched);
    if (w.k == w.p->ndoses)
        add_complete(r, &w);
    else
        plan_doses(r, &w);
}

/* ---- merging doses given as one injection ---- */

static int in_now(const struct item *it)
{
    return it->bucket != B_NEXT;
}

/* Two items may be one injection when both can be given today, or both come next on the same day. */
static int same_visit(const struct item *a, const struct item *b)
{
    return in_now(a) == in_now(b) && (in_now(a) || a->recommended == b->recommended);
}

static void merge_into(struct item *a, struct item *b)
{
    int i;

    if (b->earliest > a->earliest)
        a->earliest = b->earliest;
    if (b->recommended > a->recommended)
        a->recommended = b->recommended;
    if (b->has_latest && (!a->has_latest || b->latest < a->latest)) {
        a->latest = b->latest;
        a->has_latest = 1;
    }
    if (b->bucket < a->bucket)
        a->bucket = b->bucket;
    a->reported |= b->reported;
    for (i = 0; i < b->ncovers && a->ncovers < SCHEDULE_SERIES_MAX; i++)
        a->covers[a->ncovers++] = b->covers[i];
    buf_puts(&a->clauses, "; ");
    buf_puts(&a->clauses, b->clauses.data);
    b->removed = 1;
}

static int cover_cmp(const void *x, const void *y)
{
    const struct cover *a = x, *b = y;

    return a->series - b->series;
}

/* Same vaccine at the same visit: one item (measles and rubella both given as MR). Then the schedule's
 * combinations: when every vaccine a combination replaces is due at the same visit, one combination
 * (DTP, Hib and hepatitis B as DTP-HepB-Hib). Items are in series order, so the first stays first. */
static void merge_items(struct run *r)
{
    int a, b, c, q, group[SCHEDULE_GIVE_MAX];

    for (a = 0; a < r->nitems; a++)
        for (b = a + 1; b < r->nitems && !r->items[a].removed; b++)
            if (!r->items[b].removed && r->items[b].vaccine == r->items[a].vaccine
                && same_visit(&r->items[a], &r->items[b]))
                merge_into(&r->items[a], &r->items[b]);
    for (c = 0; c < r->s->ncombos; c++) {
        const struct combination *co = &r->s->combos[c];

        for (a = 0; a < r->nitems; a++) {
            if (r->items[a].removed || r->items[a].vaccine != co->replaces[0])
                continue;
            group[0] = a;
            for (q = 1; q < co->nreplaces; q++) {
                group[q] = -1;
                for (b = 0; b < r->nitems && group[q] < 0; b++)
                    if (!r->items[b].removed && r->items[b].vaccine == co->replaces[q]
                        && same_visit(&r->items[a], &r->items[b]))
                        group[q] = b;
                if (group[q] < 0)
                    break;
            }
            if (q < co->nreplaces)
                continue;
            /* merge into the earliest item, in item order, so clauses keep the schedule's series order */
            for (q = 1; q < co->nreplaces; q++)
                for (b = q; b > 0 && group[b] < group[b - 1]; b--) {
                    int t = group[b];

                    group[b] = group[b - 1];
                    group[b - 1] = t;
                }
            for (q = 1; q < co->nreplaces; q++)
                merge_into(&r->items[group[0]], &r->items[group[q]]);
            r->items[group[0]].vaccine = co->vaccine;
        }
    }
    for (a = 0; a < r->nitems; a++)
        qsort(r->items[a].covers, (size_t)r->items[a].ncovers, sizeof(struct cover), cover_cmp);
}

/* ---- input and output ---- */

static int hbad(struct err *e, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int hbad(struct err *e, const char *path, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err_set(e, ERR_UNPROCESSABLE, "invalid_history", "%s: %s", path, msg);
    return err_field(e, path);
}

static int hist_cmp(const void *x, const void *y)
{
    const struct hist *a = x, *b = y;

    if (a->day != b->day)
        return a->day < b->day ? -1 : 1;
    return a->index - b->index;
}

/* Read the history into r->h, sorted by date. */
static int parse_history(struct run *r, const json_t *history, struct err *e)
{
    static const char *const keys[] = { "vaccine", "dose", "date", "documented", NULL };
    const json_t *item, *v;
    const char *key;
    char at[80];
    size_t i;

    if (history == NULL || json_is_null(history))
        return 0;
    if (!json_is_array(history) || json_array_size(history) > SCHEDULE_HISTORY_MAX)
        return hbad(e, "history", "must be a list of at most %d doses", SCHEDULE_HISTORY_MAX);
    if (json_array_size(history) == 0)
        return 0;
    if ((r->h = calloc(json_array_size(history), sizeof(*r->h))) == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory planning immunizations");
    json_array_foreach(history, i, item) {
        struct hist *h = &r->h[i];

        r->nh = (int)i + 1;
        h->index = (int)i;
        h->dose = -1;
        h->documented = 1;
        path_at(at, sizeof(at), "history[%zu]", i);
        if (!json_is_object(item))
            return hbad(e, at, "must be an object {\"vaccine\", \"date\", \"dose\", \"documented\"}");
        json_object_foreach((json_t *)item, key, v) {
            (void)v;
            if (!str_in_list(key, keys)) {
                path_at(at, sizeof(at), "history[%zu].%.30s", i, key);
                return hbad(e, at, "is not a key of a dose");
            }
        }
        h->code = json_string_value(json_object_get(item, "vaccine"));
        if (!is_code(h->code, SCHEDULE_CODE_MAX)) {
            path_at(at, sizeof(at), "history[%zu].vaccine", i);
            return hbad(e, at, "must be a vaccine code (lowercase letters, digits and '_')");
        }
        if (date_parse(json_string_value(json_object_get(item, "date")), &h->day) < 0) {
            path_at(at, sizeof(at), "history[%zu].date", i);
            return hbad(e, at, "must be a date YYYY-MM-DD");
        }
        v = json_object_get(item, "dose");
        if (v && !json_is_null(v)) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 50) {
                path_at(at, sizeof(at), "history[%zu].dose", i);
                return hbad(e, at, "must be a whole number from 0 to 50");
            }
            h->dose = (int)json_integer_value(v);
        }
        v = json_object_get(item, "documented");
        if (v && !json_is_null(v)) {
            if (!json_is_boolean(v)) {
                path_at(at, sizeof(at), "history[%zu].documented", i);
                return hbad(e, at, "must be true or false");
            }
            h->documented = json_is_true(v);
        }
        h->vaccine = vaccine_index(r->s, h->code);
        if (h->vaccine < 0)
            h->excluded = "is not a vaccine of this schedule, so it counts for nothing here";
        else if (h->day < r->birth)
            h->excluded = "is dated before the date of birth";
        else if (h->day > r->today)
            h->excluded = "is dated after today";
        else if (!h->documented && !r->s->count_reported)
            h->excluded = "was reported without a document, and this schedule counts documented doses only";
    }
    qsort(r->h, (size_t)r->nh, sizeof(*r->h), hist_cmp);
    return 0;
}

static json_t *date_json(int64_t day)
{
    char d[11];

    fmt_day(day, d);
    return json_string(d);
}

static json_t *item_json(const struct run *r, const struct item *it)
{
    const struct vaccine *va = &r->s->vaccines[it->vaccine];
    json_t *o, *covers = json_array();
    struct buf rule;
    int i;

    buf_init(&rule, RULE_MAX * 2);
    if (it->ncovers > 1)
        buf_printf(&rule, "%s dose %d — ", va->name, it->covers[0].dose);
    buf_puts(&rule, it->clauses.data);
    for (i = 0; covers && i < it->ncovers; i++)
        if (json_array_append_new(covers, json_pack("{s:s, s:i}", "series", r->s->series[it->covers[i].series].id,
                                                    "dose", it->covers[i].dose)) < 0) {
            json_decref(covers);
            covers = NULL;
        }
    o = json_pack("{s:s, s:i, s:o, s:o, s:o, s:s, s:o, s:b}", "vaccine", va->code, "dose", it->covers[0].dose,
                  "earliest", date_json(it->earliest), "recommended", date_json(it->recommended), "latest",
                  it->has_latest ? date_json(it->latest) : json_null(), "rule", rule.data, "covers", covers,
                  "reported", it->reported);
    buf_free(&rule);
    return o;
}

static int item_cmp(const void *x, const void *y)
{
    const struct item *a = *(const struct item *const *)x, *b = *(const struct item *const *)y;

    if (a->recommended != b->recommended)
        return a->recommended < b->recommended ? -1 : 1;
    return a->covers[0].series - b->covers[0].series;
}

/* The items of one bucket, sorted by recommended day then series order. */
static json_t *bucket_json(const struct run *r, enum bucket bucket)
{
    const struct item **list = malloc(((size_t)r->nitems + 1) * sizeof(*list));
    json_t *out = json_array();
    int i, n = 0;

    if (list == NULL || out == NULL) {
        free(list);
        json_decref(out);
        return NULL;
    }
    for (i = 0; i < r->nitems; i++)
        if (!r->items[i].removed && r->items[i].bucket == bucket)
            list[n++] = &r->items[i];
    qsort(list, (size_t)n, sizeof(*list), item_cmp);
    for (i = 0; i < n; i++)
        if (json_array_append_new(out, item_json(r, list[i])) < 0) {
            json_decref(out);
            out = NULL;
            break;
        }
    free(list);
    return out;
}

/* The doses that do not count: those no series looks at, and those a series refused for its own antigens
 * when no other series counted the dose for them. A hepatitis B birth dose refused by the 3-dose series
 * (too young) but counted as the birth dose is fine; a pentavalent dose at 5 days counts as the HepB birth
 * dose but is listed for its DTP and Hib, with what it counted for. */
static json_t *invalid_json(const struct run *r)
{
    json_t *out = json_array(), *o, *counts_for;
    struct buf reason;
    int i, j, n;

    for (i = 0; out && i < r->nh; i++) {
        const struct hist *h = &r->h[i];

        buf_init(&reason, REASON_MAX + 200);
        if (h->excluded) {
            buf_printf(&reason, "'%s' %s", h->code, h->excluded);
        } else {
            for (j = 0, n = 0; j < h->nrejections; j++)
                if ((r->s->series[h->rejections[j].series].counts & ~h->counted_antigens) != 0)
                    buf_printf(&reason, "%s%s", n++ ? "; " : "", h->rejections[j].text);
        }
        if (reason.len == 0) {
            buf_free(&reason);
            continue;
        }
        counts_for = json_array();
        for (j = 0; counts_for && j < r->s->nseries; j++)
            if (h->counted_series & ((uint64_t)1 << j))
                json_array_append_new(counts_for, json_string(r->s->series[j].id));
        o = json_pack("{s:s, s:o, s:o, s:b, s:s, s:o}", "vaccine", h->code, "dose",
                      h->dose >= 0 ? json_integer(h->dose) : json_null(), "date", date_json(h->day), "documented",
                      h->documented, "reason", reason.data, "counts_for", counts_for);
        buf_free(&reason);
        if (json_array_append_new(out, o) < 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

json_t *schedule_due(const struct schedule *s, const json_t *history, int64_t birth, const char *sex,
                     int64_t today, struct err *e)
{
    struct run r;
    json_t *out = NULL;
    int i, j;

    memset(&r, 0, sizeof(r));
    if (s == NULL) {
        err_set(e, ERR_INTERNAL, "no_schedule", "no immunization schedule to plan with");
        return NULL;
    }
    if (birth < date_days_from_civil(1800, 1, 1) || today > date_days_from_civil(9999, 12, 31) || birth > today) {
        err_set(e, ERR_UNPROCESSABLE, "invalid_birth", "the date of birth must be a real date, not after today");
        err_field(e, "birth");
        return NULL;
    }
    if (today >= date_days_from_civil(1800 + MAX_YEARS, 1, 1) - date_days_from_civil(1800, 1, 1) + birth) {
        err_set(e, ERR_UNPROCESSABLE, "invalid_birth", "the date of birth is %d years or more before today",
                MAX_YEARS);
        err_field(e, "birth");
        return NULL;
    }
    r.s = s;
    r.birth = birth;
    r.today = today;
    r.sex = sex;
    if (parse_history(&r, history, e) < 0)
        goto done;
    r.complete = json_array();
    r.not_recommended = json_array();
    if (r.complete == NULL || r.not_recommended == NULL)
        r.oom = 1;
    for (i = 0; i < s->nseries && !r.oom; i++)
        evaluate_series(&r, i);
    if (!r.oom)
        merge_items(&r);
    if (!r.oom)
        out = json_pack("{s:s, s:s, s:o, s:o, s:o, s:O, s:O, s:o}", "schedule", s->id, "version", s->version,
                        "due", bucket_json(&r, B_DUE), "overdue", bucket_json(&r, B_OVERDUE), "next",
                        bucket_json(&r, B_NEXT), "complete", r.complete, "not_recommended", r.not_recommended,
                        "invalid_doses", invalid_json(&r));
    if (out == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory planning immunizations");
done:
    for (i = 0; i < r.nh; i++) {
        for (j = 0; j < r.h[i].nrejections; j++)
            free(r.h[i].rejections[j].text);
        free(r.h[i].rejections);
    }
    free(r.h);
    for (i = 0; i < r.nitems; i++)
        buf_free(&r.items[i].clauses);
    free(r.items);
    json_decref(r.complete);
    json_decref(r.not_recommended);
    return out;
}
