/* fuzz_schedule.c — libFuzzer target for the immunization schedule engine.
 *
 * The input is one JSON object {"schedule"?: a schedule definition, "history": [...], "birth", "today":
 * "YYYY-MM-DD" or day numbers, "sex"?}. A schedule, when given, goes through schedule_load(); otherwise the
 * built-in WHO schedule is used. Then schedule_due() plans for the history. Besides "no crash, no leak",
 * it checks the engine's promises: a failure carries a code (invalid_schedule with the path in e.field;
 * invalid_history or invalid_birth); an answer has every list, each planned dose has dates in order and
 * sits in the bucket they say, and the same input gives the same answer twice.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/date.h"
#include "core/err.h"
#include "services/schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 65536

/* A day from a "YYYY-MM-DD" string or a day number; def when neither. */
static int64_t day_from(const json_t *v, int64_t def)
{
    int64_t d;

    if (json_is_string(v) && date_parse(json_string_value(v), &d) == 0)
        return d;
    if (json_is_integer(v))
        return json_integer_value(v);
    return def;
}

static void check_answer(const json_t *out, int64_t today)
{
    static const char *const lists[] = { "due", "overdue", "next", "complete", "not_recommended", "invalid_doses" };
    static const char *const buckets[] = { "due", "overdue", "next" };
    int64_t earliest, recommended, latest;
    const json_t *item, *l;
    size_t i, b;

    if (!json_is_object(out) || !json_is_string(json_object_get(out, "schedule")))
        abort();
    for (b = 0; b < 6; b++)
        if (!json_is_array(json_object_get(out, lists[b])))
            abort();
    for (b = 0; b < 3; b++)
        json_array_foreach(json_object_get(out, buckets[b]), i, item) {
            l = json_object_get(item, "latest");
            if (!json_is_string(json_object_get(item, "rule")) || json_array_size(json_object_get(item, "covers")) == 0)
                abort();
            /* a plan may reach past year 9999, where the text of a date wraps: only real dates are compared */
            if (date_parse(json_string_value(json_object_get(item, "earliest")), &earliest) < 0
                || date_parse(json_string_value(json_object_get(item, "recommended")), &recommended) < 0)
                continue;
            if (earliest > recommended)
                abort();
            if (json_is_string(l) && date_parse(json_string_value(l), &latest) == 0 && recommended > latest)
                abort();
            if ((b < 2) != (recommended <= today))
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *in, *out, *again;
    struct schedule *loaded = NULL, *s;
    const json_t *def;
    int64_t today, birth;
    const char *sex;
    struct err e;

    if (size > INPUT_MAX)
        return 0;
    in = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(in)) {
        json_decref(in);
        return 0;
    }
    err_clear(&e);
    def = json_object_get(in, "schedule");
    if (def) {
        loaded = schedule_load(def, &e);
        if (loaded == NULL) {
            if (e.code[0] == '\0' || (e.kind != ERR_UNPROCESSABLE && e.kind != ERR_INTERNAL)
                || (e.kind == ERR_UNPROCESSABLE && strcmp(e.code, "invalid_schedule") != 0))
                abort();
            json_decref(in);
            return 0;
        }
        s = loaded;
    } else {
        s = schedule_builtin(&e);
        if (s == NULL)
            abort();
    }
    today = day_from(json_object_get(in, "today"), date_days_from_civil(2025, 6, 1));
    birth = day_from(json_object_get(in, "birth"), today - 400);
    sex = json_string_value(json_object_get(in, "sex"));
    err_clear(&e);
    out = schedule_due(s, json_object_get(in, "history"), birth, sex, today, &e);
    if (out == NULL) {
        if (e.code[0] == '\0' || (e.kind != ERR_UNPROCESSABLE && e.kind != ERR_INTERNAL))
            abort();
    } else {
        check_answer(out, today);
        again = schedule_due(s, json_object_get(in, "history"), birth, sex, today, &e);
        if (again == NULL || !json_equal(out, again))
            abort();
        json_decref(again);
        json_decref(out);
    }
    schedule_free(loaded);
    json_decref(in);
    return 0;
}
