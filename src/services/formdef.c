/* formdef.c — the forms engine: definitions checked and compiled, entries checked against them, texts
 * shown in a language (see formdef.h and docs/forms.md). */
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/date.h"
#include "core/expr.h"
#include "core/util.h"
#include "services/catalogue.h"
#include "services/formdef.h"

/* Field paths in messages ("fields[3].options[2].code") are built in fixed buffers; a path too long for
 * one is cut short, which only shortens the name in a message, so that warning is off for this file. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

enum field_type {
    FT_TEXT, FT_LONG_TEXT, FT_NUMBER, FT_DATE, FT_DATETIME, FT_SELECT, FT_MULTI_SELECT, FT_BOOLEAN,
    FT_DIAGNOSIS, FT_MEDICATION, FT_FILE, FT_GROUP, FT_COMPUTED, FT_COUNT
};

static const char *const type_names[FT_COUNT] = {
    "text", "long_text", "number", "date", "datetime", "select", "multi_select", "boolean", "diagnosis",
    "medication", "file", "group", "computed",
};

/* The keys a field of each type may carry besides the common ones. */
static const char *const common_keys[] = {
    "name", "type", "label", "help", "required", "required_if", "relevant", "readonly", "constraint_message", NULL,
};
static const char *const type_keys[FT_COUNT][6] = {
    [FT_TEXT] = { "max_length", "pattern", NULL },
    [FT_LONG_TEXT] = { "max_length", NULL },
    [FT_NUMBER] = { "unit", "min", "max", "decimals", NULL },
    [FT_DATE] = { "min", "max", "allow_future", NULL },
    [FT_DATETIME] = { "allow_future", NULL },
    [FT_SELECT] = { "options", NULL },
    [FT_MULTI_SELECT] = { "options", "min_items", "max_items", NULL },
    [FT_BOOLEAN] = { NULL },
    [FT_DIAGNOSIS] = { NULL },
    [FT_MEDICATION] = { NULL },
    [FT_FILE] = { "accept", NULL },
    [FT_GROUP] = { "fields", "min_items", "max_items", NULL },
    [FT_COMPUTED] = { "expr", "decimals", "unit", "options", NULL },
};

static const char *const context_names[] = {
    "age_years", "age_months", "age_days", "sex", "encounter_type", "encounter_date", "today", NULL,
};

static const char *const encounter_types[] = {
    "consultation", "triage", "follow_up", "outreach", "health_assessment", NULL,
};

struct form_field {
    char name[FORM_NAME_MAX + 1];
    enum field_type type;
    int required;
    struct expr *relevant, *required_if, *expr;
    int has_min, has_max;
    double min, max;                /* numbers; dates as day numbers */
    int min_today, max_today;       /* date bounds of "today" */
    int decimals;                   /* -1: any */
    size_t max_length;
    int has_pattern;
    regex_t pattern;
    char **options;
    size_t noptions;
    int64_t min_items, max_items;
    int allow_future;
    struct form_field *fields;      /* a group's row fields */
    size_t nfields;
};

struct form {
    int refs;
    char id[FORM_NAME_MAX + 1];
    int64_t version;
    json_t *definition;
    struct form_field *fields;
    size_t nfields;
};

/* ---- small checks ---- */

/* [a-z][a-z0-9_]{0,max-1} */
static int name_ok(const char *s, size_t max)
{
    size_t i;

    if (s == NULL || s[0] < 'a' || s[0] > 'z' || strlen(s) > max)
        return 0;
    for (i = 1; s[i]; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* An option code: [A-Za-z0-9_.-]{1,64}. */
static int code_ok(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0' || strlen(s) > 64)
        return 0;
    for (i = 0; s[i]; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

/* A BCP 47 language tag as used here: a 2–3 letter primary tag, optional -subtags. */
static int lang_ok(const char *s)
{
    size_t i = 0, part = 0;

    if (s == NULL || strlen(s) > 35)
        return 0;
    while (s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i < 2 || i > 3)
        return 0;
    while (s[i] == '-') {
        for (part = 0, i++; (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9');
             i++)
            part++;
        if (part < 2 || part > 8)
            return 0;
    }
    return s[i] == '\0';
}

/* Characters (code points) of a UTF-8 string. */
static size_t utf8_length(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static int present(const json_t *v)
{
    return v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0)
           && !(json_is_array(v) && json_array_size(v) == 0);
}

/* ---- definitions ---- */

struct compiler {
    json_t *problems;
    json_t *names;          /* every field name of the form (all levels): {name: true} */
    size_t nfields;
    int nested;             /* compiling a group's fields */
    const json_t *row_names;/* the group's field names while compiling its fields */
};

static void problem(struct compiler *c, const char *path, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void problem(struct compiler *c, const char *path, const char *key, const char *fmt, ...)
{
    char where[160], msg[256];
    va_list ap;

    if (json_object_size(c->problems) >= 200)
        return;
    if (key)
        snprintf(where, sizeof(where), "%s%s%s", path, path[0] ? "." : "", key);
    else
        snprintf(where, sizeof(where), "%s", path);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (json_object_get(c->problems, where) == NULL)
        json_object_set_new(c->problems, where, json_string(msg));
}

/* A translatable text: {lang: non-empty string}; required or not. */
static void check_text(struct compiler *c, const char *path, const json_t *obj, const char *key, int required,
                       size_t max)
{
    const json_t *t = json_object_get(obj, key), *v;
    const char *lang;

    if (t == NULL) {
        if (required)
            problem(c, path, key, "is required: an object of texts by language, e.g. {\"en\": \"...\"}");
        return;
    }
    if (!json_is_object(t) || json_object_size(t) == 0 || json_object_size(t) > 50) {
        problem(c, path, key, "must be an object of texts by language, e.g. {\"en\": \"...\"}");
        return;
    }
    json_object_foreach((json_t *)t, lang, v) {
        if (!lang_ok(lang))
            problem(c, path, key, "has '%.20s', which is not a language code", lang);
        else if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
            problem(c, path, key, "must give a non-empty text of at most %zu bytes for '%s'", max, lang);
    }
}

struct name_check {
    struct compiler *c;
    const char *path;
    const char *key;
};

static int expr_name_known(const char *name, void *ctx)
{
    struct name_check *nc = ctx;

    if (str_in_list(name, context_names) || json_object_get(nc->c->names, name)
        || (nc->c->row_names && json_object_get(nc->c->row_names, name)))
        return 0;
    problem(nc->c, nc->path, nc->key, "names '%.64s', which is neither a field of this form nor one of "
            "age_years, age_months, age_days, sex, encounter_type, encounter_date, today", name);
    return 0;
}

static struct expr *compile_expr(struct compiler *c, const char *path, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    struct name_check nc = { c, path, key };
    struct expr *x;
    struct err e;

    if (v == NULL)
        return NULL;
    if (!json_is_string(v)) {
        problem(c, path, key, "must be an expression (a string)");
        return NULL;
    }
    err_clear(&e);
    if ((x = expr_compile(json_string_value(v), &e)) == NULL) {
        problem(c, path, key, "%s", e.message);
        return NULL;
    }
    expr_names(x, expr_name_known, &nc);
    return x;
}

static int get_number(struct compiler *c, const char *path, const json_t *obj, const char *key, double *out)
{
    const json_t *v = json_object_get(obj, key);

    if (v == NULL)
        return 0;
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        problem(c, path, key, "must be a number");
        return 0;
    }
    *out = json_number_value(v);
    return 1;
}

static int64_t get_count(struct compiler *c, const char *path, const json_t *obj, const char *key, int64_t dflt,
                         int64_t max)
{
    const json_t *v = json_object_get(obj, key);

    if (v == NULL)
        return dflt;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
        problem(c, path, key, "must be a whole number from 0 to %lld", (long long)max);
        return dflt;
    }
    return json_integer_value(v);
}

static int get_bool(struct compiler *c, const char *path, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    if (v && !json_is_boolean(v))
        problem(c, path, key, "must be true or false");
    return json_is_true(v);
}

/* A date bound: "YYYY-MM-DD" or "today". */
static void get_date_bound(struct compiler *c, const char *path, const json_t *obj, const char *key, int *has,
                           double *days, int *today)
{
    const char *s;
    int64_t d;

    if (json_object_get(obj, key) == NULL)
        return;
    s = json_string_value(json_object_get(obj, key));
    if (s && strcmp(s, "today") == 0) {
        *has = *today = 1;
    } else if (s && date_parse(s, &d) == 0) {
        *has = 1;
        *days = (double)d;
    } else {
        problem(c, path, key, "must be a date YYYY-MM-DD or \"today\"");
    }
}

static void compile_options(struct compiler *c, const char *path, const json_t *def, struct form_field *f)
{
    const json_t *opts = json_object_get(def, "options"), *o;
    char opath[200];
    const char *code;
    size_t i, j;

    if (!json_is_array(opts) || json_array_size(opts) == 0 || json_array_size(opts) > FORM_OPTIONS_MAX) {
        problem(c, path, "options", "must be a list of 1 to %d options {\"code\":..,\"label\":{..}}", FORM_OPTIONS_MAX);
        return;
    }
    f->options = calloc(json_array_size(opts), sizeof(char *));
    if (f->options == NULL)
        return;
    json_array_foreach(opts, i, o) {
        snprintf(opath, sizeof(opath), "%s.options[%zu]", path, i);
        code = json_string_value(json_object_get(o, "code"));
        if (!json_is_object(o) || !code_ok(code)) {
            problem(c, opath, "code", "must be a code of letters, digits, '_', '.' or '-' (at most 64)");
            continue;
        }
        if (json_object_size(o) > 2 + (json_object_get(o, "help") != NULL))
            problem(c, opath, NULL, "may hold only code, label and help");
        check_text(c, opath, o, "label", 1, 2000);
        check_text(c, opath, o, "help", 0, 10000);
        for (j = 0; j < f->noptions; j++)
            if (strcmp(f->options[j], code) == 0)
                problem(c, opath, "code", "repeats the option '%s'", code);
        if ((f->options[f->noptions] = strdup(code)) != NULL)
            f->noptions++;
    }
}

static void field_free(struct form_field *f);

static int compile_fields(struct compiler *c, const char *path, const json_t *list, struct form_field **out,
                          size_t *nout);

static void compile_field(struct compiler *c, const char *path, const json_t *def, struct form_field *f)
{
    const char *key, *type = json_string_value(json_object_get(def, "type")), *pattern;
    char anchored[1100];
    const json_t *v;
    double d;
    int t;

    f->decimals = -1;
    for (t = 0; t < FT_COUNT; t++)
        if (type && strcmp(type, type_names[t]) == 0)
            break;
    if (t == FT_COUNT) {
        problem(c, path, "type", "must be one of text, long_text, number, date, datetime, select, multi_select, "
                "boolean, diagnosis, medication, file, group, computed");
        return;
    }
    f->type = (enum field_type)t;
    json_object_foreach((json_t *)def, key, v) {
        if (!str_in_list(key, common_keys) && !str_in_list(key, type_keys[t]))
            problem(c, path, key, "is not a key a %s field takes", type);
    }
    snprintf(f->name, sizeof(f->name), "%s", json_string_value(json_object_get(def, "name")));
    check_text(c, path, def, "label", 1, 2000);
    check_text(c, path, def, "help", 0, 10000);
    check_text(c, path, def, "constraint_message", 0, 2000);
    f->required = get_bool(c, path, def, "required");
    get_bool(c, path, def, "readonly");
    f->relevant = compile_expr(c, path, def, "relevant");
    f->required_if = compile_expr(c, path, def, "required_if");
    switch (f->type) {
    case FT_TEXT:
    case FT_LONG_TEXT:
        f->max_length = (size_t)get_count(c, path, def, "max_length", f->type == FT_TEXT ? 500 : 10000, 100000);
        if ((pattern = json_string_value(json_object_get(def, "pattern"))) != NULL) {
            if (strlen(pattern) > 1000) {
                problem(c, path, "pattern", "must be at most 1000 bytes");
            } else {
                snprintf(anchored, sizeof(anchored), "^(%s)$", pattern);
                if (regcomp(&f->pattern, anchored, REG_EXTENDED | REG_NOSUB) != 0)
                    problem(c, path, "pattern", "is not a valid regular expression (POSIX extended)");
                else
                    f->has_pattern = 1;
            }
        } else if (json_object_get(def, "pattern")) {
            problem(c, path, "pattern", "must be a regular expression (a string)");
        }
        break;
    case FT_NUMBER:
        f->has_min = get_number(c, path, def, "min", &f->min);
        f->has_max = get_number(c, path, def, "max", &f->max);
        if (f->has_min && f->has_max && f->min > f->max)
            problem(c, path, "max", "must not be below min");
        f->decimals = (int)get_count(c, path, def, "decimals", 2, 6);
        if (json_object_get(def, "unit") && !json_is_string(json_object_get(def, "unit")))
            problem(c, path, "unit", "must be a string");
        break;
    case FT_DATE:
        get_date_bound(c, path, def, "min", &f->has_min, &f->min, &f->min_today);
        get_date_bound(c, path, def, "max", &f->has_max, &f->max, &f->max_today);
        /* fall through */
    case FT_DATETIME:
        f->allow_future = get_bool(c, path, def, "allow_future");
        break;
    case FT_SELECT:
    case FT_MULTI_SELECT:
        compile_options(c, path, def, f);
        f->min_items = get_count(c, path, def, "min_items", 0, FORM_OPTIONS_MAX);
        f->max_items = get_count(c, path, def, "max_items", FORM_OPTIONS_MAX, FORM_OPTIONS_MAX);
        break;
    case FT_GROUP:
        if (c->nested) {
            problem(c, path, "type", "a group cannot hold another group");
            break;
        }
        f->min_items = get_count(c, path, def, "min_items", 0, 500);
        f->max_items = get_count(c, path, def, "max_items", 50, 500);
        if (f->min_items > f->max_items)
            problem(c, path, "max_items", "must not be below min_items");
        {
            char fpath[200];
            json_t *row_names = json_object();
            const json_t *sub;
            size_t i;

            json_array_foreach(json_object_get(def, "fields"), i, sub)
                if (json_is_string(json_object_get(sub, "name")))
                    json_object_set_new(row_names, json_string_value(json_object_get(sub, "name")), json_true());
            snprintf(fpath, sizeof(fpath), "%s.fields", path);
            c->nested = 1;
            c->row_names = row_names;
            compile_fields(c, fpath, json_object_get(def, "fields"), &f->fields, &f->nfields);
            c->nested = 0;
            c->row_names = NULL;
            json_decref(row_names);
        }
        break;
    case FT_COMPUTED:
        if (json_object_get(def, "expr") == NULL)
            problem(c, path, "expr", "is required for a computed field");
        else
            f->expr = compile_expr(c, path, def, "expr");
        if (json_object_get(def, "decimals"))
            f->decimals = (int)get_count(c, path, def, "decimals", 2, 6);
        if (f->required || f->required_if)
            problem(c, path, "required", "a computed field is never entered, so it cannot be required");
        if (json_object_get(def, "options"))    /* labels for the codes it computes */
            compile_options(c, path, def, f);
        break;
    default:
        break;
    }
    (void)d;
}

static int compile_fields(struct compiler *c, const char *path, const json_t *list, struct form_field **out,
                          size_t *nout)
{
    char fpath[200];
    const json_t *def;
    const char *name;
    size_t i;

    *out = NULL;
    *nout = 0;
    if (!json_is_array(list) || json_array_size(list) == 0) {
        problem(c, path, NULL, "must be a non-empty list of fields");
        return 0;
    }
    if ((*out = calloc(json_array_size(list), sizeof(**out))) == NULL)
        return -1;
    json_array_foreach(list, i, def) {
        snprintf(fpath, sizeof(fpath), "%s[%zu]", path, i);
        if (!json_is_object(def)) {
            problem(c, fpath, NULL, "must be an object");
            continue;
        }
        if (++c->nfields > FORM_FIELDS_MAX) {
            problem(c, fpath, NULL, "is one field too many: a form holds at most %d", FORM_FIELDS_MAX);
            break;
        }
        name = json_string_value(json_object_get(def, "name"));
        if (!name_ok(name, FORM_NAME_MAX)) {
            problem(c, fpath, "name", "must be lowercase letters, digits and '_', starting with a letter (at most 64)");
            continue;
        }
        if (str_in_list(name, context_names))
            problem(c, fpath, "name", "'%s' is reserved for the patient's context", name);
        compile_field(c, fpath, def, &(*out)[*nout]);
        (*nout)++;
    }
    return 0;
}

/* Collect every field name (all levels) into c->names; report repeats. */
static void collect_names(struct compiler *c, const char *path, const json_t *list)
{
    char fpath[200];
    const json_t *def;
    const char *name;
    size_t i;

    json_array_foreach(list, i, def) {
        name = json_string_value(json_object_get(def, "name"));
        if (name == NULL)
            continue;
        snprintf(fpath, sizeof(fpath), "%s[%zu]", path, i);
        if (json_object_get(c->names, name))
            problem(c, fpath, "name", "repeats the field name '%.64s'", name);
        else
            json_object_set_new(c->names, name, json_true());
        if (json_is_array(json_object_get(def, "fields"))) {
            char sub[220];

            snprintf(sub, sizeof(sub), "%s.fields", fpath);
            collect_names(c, sub, json_object_get(def, "fields"));
        }
    }
}

static void field_free(struct form_field *f)
{
    size_t i;

    expr_free(f->relevant);
    expr_free(f->required_if);
    expr_free(f->expr);
    if (f->has_pattern)
        regfree(&f->pattern);
    for (i = 0; i < f->noptions; i++)
        free(f->options[i]);
    free(f->options);
    for (i = 0; i < f->nfields; i++)
        field_free(&f->fields[i]);
    free(f->fields);
}

static void form_free(struct form *f)
{
    size_t i;

    for (i = 0; i < f->nfields; i++)
        field_free(&f->fields[i]);
    free(f->fields);
    json_decref(f->definition);
    free(f);
}

static const char *const top_keys[] = {
    "id", "version", "title", "description", "languages", "default_language", "encounter_types", "fields", NULL,
};

struct form *form_compile(const json_t *def, json_t **problems, struct err *e)
{
    struct compiler c = { 0 };
    struct form *f = calloc(1, sizeof(*f));
    const char *key, *id, *dl;
    const json_t *v, *langs, *title;
    size_t i;

    *problems = NULL;
    c.problems = json_object();
    c.names = json_object();
    if (f == NULL || c.problems == NULL || c.names == NULL)
        goto oom;
    f->refs = 1;
    if (!json_is_object(def)) {
        problem(&c, "", NULL, "a form definition is a JSON object");
        goto invalid;
    }
    json_object_foreach((json_t *)def, key, v)
        if (!str_in_list(key, top_keys))
            problem(&c, "", key, "is not a key of a form definition");
    id = json_string_value(json_object_get(def, "id"));
    if (!name_ok(id, FORM_NAME_MAX))
        problem(&c, "", "id", "must be lowercase letters, digits and '_', starting with a letter (at most 64)");
    else
        snprintf(f->id, sizeof(f->id), "%s", id);
    v = json_object_get(def, "version");
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 2000000000)
        problem(&c, "", "version", "must be a whole number from 1");
    else
        f->version = json_integer_value(v);
    check_text(&c, "", def, "title", 1, 2000);
    check_text(&c, "", def, "description", 0, 10000);
    langs = json_object_get(def, "languages");
    if (langs && (!json_is_array(langs) || json_array_size(langs) == 0 || json_array_size(langs) > 50))
        problem(&c, "", "languages", "must be a list of language codes");
    json_array_foreach(langs, i, v)
        if (!lang_ok(json_string_value(v)))
            problem(&c, "", "languages", "has an entry that is not a language code");
    dl = json_string_value(json_object_get(def, "default_language"));
    title = json_object_get(def, "title");
    if (json_object_get(def, "default_language") && (!lang_ok(dl) || !json_object_get(title, dl)))
        problem(&c, "", "default_language", "must be a language the title is written in");
    v = json_object_get(def, "encounter_types");
    if (v && !json_is_array(v))
        problem(&c, "", "encounter_types", "must be a list of encounter types");
    json_array_foreach(v, i, langs)
        if (!str_in_list(json_string_value(langs), encounter_types))
            problem(&c, "", "encounter_types", "must name only consultation, triage, follow_up, outreach, "
                    "health_assessment");
    collect_names(&c, "fields", json_object_get(def, "fields"));
    if (compile_fields(&c, "fields", json_object_get(def, "fields"), &f->fields, &f->nfields) < 0)
        goto oom;
    if (json_object_size(c.problems) > 0)
        goto invalid;
    f->definition = json_deep_copy(def);
    if (f->definition == NULL)
        goto oom;
    json_decref(c.problems);
    json_decref(c.names);
    return f;
invalid:
    err_set(e, ERR_UNPROCESSABLE, "invalid_form", "the form definition has %zu problem%s",
            json_object_size(c.problems), json_object_size(c.problems) == 1 ? "" : "s");
    *problems = c.problems;
    json_decref(c.names);
    form_free(f);
    return NULL;
oom:
    json_decref(c.problems);
    json_decref(c.names);
    if (f)
        form_free(f);
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    return NULL;
}

void form_retain(struct form *f)
{
    __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
}

void form_release(struct form *f)
{
    if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
        form_free(f);
}

const char *form_id(const struct form *f)
{
    return f->id;
}

int64_t form_version(const struct form *f)
{
    return f->version;
}

const json_t *form_definition(const struct form *f)
{
    return f->definition;
}

int form_offered_for(const struct form *f, const char *encounter_type)
{
    const json_t *types = json_object_get(f->definition, "encounter_types"), *t;
    size_t i;

    if (types == NULL)
        return 1;
    json_array_foreach(types, i, t)
        if (encounter_type && strcmp(json_string_value(t), encounter_type) == 0)
            return 1;
    return 0;
}

/* ---- entries ---- */

struct scope {
    const json_t *row;          /* the group row being checked, or NULL */
    const json_t *values;       /* the entry's values so far (computed ones added as they are made) */
    json_t *context;            /* age_years, sex, ... */
};

static const json_t *scope_lookup(const char *name, void *ctx)
{
    const struct scope *s = ctx;
    const json_t *v;

    if (s->row && (v = json_object_get(s->row, name)) != NULL)
        return v;
    if ((v = json_object_get(s->values, name)) != NULL)
        return v;
    return json_object_get(s->context, name);
}

/* A condition's value: 1 true, 0 false (null counts as false), -1 evaluation failure. */
static int condition(const struct expr *x, struct scope *s, int dflt, struct err *e)
{
    json_t *v;
    int t;

    if (x == NULL)
        return dflt;
    if ((v = expr_eval(x, scope_lookup, s, e)) == NULL)
        return -1;
    t = expr_truthy(v);
    json_decref(v);
    return t;
}

struct checker {
    const struct entry_context *ctx;
    json_t *errors;
    struct err *e;
    int failed;             /* an internal failure (not a validation error) */
};

static void field_error(struct checker *k, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void field_error(struct checker *k, const char *path, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    if (json_object_size(k->errors) >= 200 || json_object_get(k->errors, path))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_object_set_new(k->errors, path, json_string(msg));
}

static int option_known(const struct form_field *f, const char *code)
{
    size_t i;

    for (i = 0; code && i < f->noptions; i++)
        if (strcmp(f->options[i], code) == 0)
            return 1;
    return 0;
}

/* Does x have at most `decimals` digits after the point (within rounding of its binary form)? */
static int decimals_ok(double x, int decimals)
{
    double scaled = x * pow(10, decimals);

    return fabs(scaled - round(scaled)) <= 1e-6 * fmax(1.0, fabs(scaled));
}

static void fmt_number(double x, char *out, size_t n)
{
    snprintf(out, n, "%.15g", x);
}

/* Check one present value of a field; may replace it in `into` (normalised codes). */
static void check_value(struct checker *k, const struct form_field *f, const char *path, const json_t *v,
                        json_t *into, struct scope *s);

static void check_rows(struct checker *k, const struct form_field *g, const char *path, const json_t *rows,
                       json_t *into, struct scope *outer)
{
    char rpath[256], fpath[320];
    const json_t *row, *v;
    const char *key;
    json_t *out_rows, *out_row;
    struct scope s;
    size_t i, j;
    int rel, req;

    if (!json_is_array(rows)) {
        field_error(k, path, "must be a list of rows");
        return;
    }
    if ((int64_t)json_array_size(rows) < g->min_items)
        field_error(k, path, "needs at least %lld row%s", (long long)g->min_items, g->min_items == 1 ? "" : "s");
    if ((int64_t)json_array_size(rows) > g->max_items) {
        field_error(k, path, "may have at most %lld rows", (long long)g->max_items);
        return;
    }
    out_rows = json_array();
    json_array_foreach(rows, i, row) {
        snprintf(rpath, sizeof(rpath), "%s[%zu]", path, i);
        if (!json_is_object(row)) {
            field_error(k, rpath, "must be an object of the group's fields");
            continue;
        }
        out_row = json_object();
        s = *outer;
        s.row = out_row;
        json_object_foreach((json_t *)row, key, v) {
            for (j = 0; j < g->nfields; j++)
                if (strcmp(g->fields[j].name, key) == 0)
                    break;
            if (j == g->nfields) {
                snprintf(fpath, sizeof(fpath), "%s.%s", rpath, key);
                field_error(k, fpath, "is not a field of this group");
            } else if (g->fields[j].type == FT_COMPUTED) {
                snprintf(fpath, sizeof(fpath), "%s.%s", rpath, key);
                field_error(k, fpath, "is computed by the server and must not be sent");
            } else if (!json_is_null(v)) {
                json_object_set(out_row, key, (json_t *)v);
            }
        }
        for (j = 0; j < g->nfields && !k->failed; j++) {
            const struct form_field *f = &g->fields[j];

            snprintf(fpath, sizeof(fpath), "%s.%s", rpath, f->name);
            rel = condition(f->relevant, &s, 1, k->e);
            if (rel < 0) {
                k->failed = 1;
                break;
            }
            v = json_object_get(out_row, f->name);
            if (f->type == FT_COMPUTED) {
                if (rel)
                    check_value(k, f, fpath, NULL, out_row, &s);
                continue;
            }
            if (!rel) {
                if (present(v))
                    field_error(k, fpath, "is not asked here (its condition is false)");
                continue;
            }
            req = f->required ? 1 : condition(f->required_if, &s, 0, k->e);
            if (req < 0) {
                k->failed = 1;
                break;
            }
            if (!present(v)) {
                if (req)
                    field_error(k, fpath, "is required");
                continue;
            }
            check_value(k, f, fpath, v, out_row, &s);
        }
        json_array_append_new(out_rows, out_row);
    }
    json_object_set_new(into, g->name, out_rows);
}

static void check_value(struct checker *k, const struct form_field *f, const char *path, const json_t *v,
                        json_t *into, struct scope *s)
{
    char a[32], b[32], norm[80];
    const json_t *item;
    const char *str;
    json_t *r;
    double x, lo, hi;
    int64_t d;
    size_t i, j;

    switch (f->type) {
    case FT_TEXT:
    case FT_LONG_TEXT:
        if (!json_is_string(v)) {
            field_error(k, path, "must be text");
        } else if (utf8_length(json_string_value(v)) > f->max_length) {
            field_error(k, path, "must be at most %zu characters", f->max_length);
        } else if (f->has_pattern && regexec(&f->pattern, json_string_value(v), 0, NULL, 0) != 0) {
            field_error(k, path, "is not in the expected format");
        }
        break;
    case FT_NUMBER:
        if (!json_is_number(v)) {
            field_error(k, path, "must be a number");
            break;
        }
        x = json_number_value(v);
        if (f->has_min && f->has_max && (x < f->min || x > f->max)) {
            fmt_number(f->min, a, sizeof(a));
            fmt_number(f->max, b, sizeof(b));
            field_error(k, path, "must be between %s and %s", a, b);
        } else if (f->has_min && x < f->min) {
            fmt_number(f->min, a, sizeof(a));
            field_error(k, path, "must be at least %s", a);
        } else if (f->has_max && x > f->max) {
            fmt_number(f->max, b, sizeof(b));
            field_error(k, path, "must be at most %s", b);
        } else if (f->decimals == 0 && !decimals_ok(x, 0)) {
            field_error(k, path, "must be a whole number");
        } else if (f->decimals > 0 && !decimals_ok(x, f->decimals)) {
            field_error(k, path, "may have at most %d decimal%s", f->decimals, f->decimals == 1 ? "" : "s");
        }
        break;
    case FT_DATE:
        if (!json_is_string(v) || date_parse(json_string_value(v), &d) < 0) {
            field_error(k, path, "must be a date YYYY-MM-DD");
            break;
        }
        lo = f->min_today ? (double)k->ctx->today : f->min;
        hi = f->max_today ? (double)k->ctx->today : f->max;
        if (!f->allow_future && d > k->ctx->today + 1)
            field_error(k, path, "must not be in the future");
        else if (f->has_min && (double)d < lo)
            field_error(k, path, "must not be before %s", f->min_today ? "today" : "the earliest date allowed");
        else if (f->has_max && (double)d > hi)
            field_error(k, path, "must not be after %s", f->max_today ? "today" : "the latest date allowed");
        break;
    case FT_DATETIME:
        if (!json_is_string(v) || datetime_parse(json_string_value(v), &d) < 0)
            field_error(k, path, "must be a UTC time YYYY-MM-DDTHH:MM[:SS]Z");
        else if (!f->allow_future && d / 86400000 > k->ctx->today + 1)
            field_error(k, path, "must not be in the future");
        break;
    case FT_SELECT:
        if (!json_is_string(v))
            field_error(k, path, "must be one option code");
        else if (!option_known(f, json_string_value(v)))
            field_error(k, path, "'%.64s' is not one of the options", json_string_value(v));
        break;
    case FT_MULTI_SELECT:
        if (!json_is_array(v)) {
            field_error(k, path, "must be a list of option codes");
            break;
        }
        json_array_foreach(v, i, item) {
            str = json_string_value(item);
            if (str == NULL || !option_known(f, str)) {
                field_error(k, path, "'%.64s' is not one of the options", str ? str : "(not text)");
                break;
            }
            for (j = 0; j < i; j++)
                if (strcmp(json_string_value(json_array_get(v, j)), str) == 0)
                    field_error(k, path, "repeats the option '%.64s'", str);
        }
        if ((int64_t)json_array_size(v) < f->min_items)
            field_error(k, path, "needs at least %lld option%s", (long long)f->min_items, f->min_items == 1 ? "" : "s");
        else if ((int64_t)json_array_size(v) > f->max_items)
            field_error(k, path, "may have at most %lld options", (long long)f->max_items);
        break;
    case FT_BOOLEAN:
        if (!json_is_boolean(v))
            field_error(k, path, "must be true or false");
        break;
    case FT_DIAGNOSIS:
    case FT_MEDICATION:
        str = json_string_value(v);
        if (str == NULL || strlen(str) > 64
            || catalogue_normalise(f->type == FT_DIAGNOSIS ? CATALOGUE_ICD10 : CATALOGUE_MEDICINES, str, norm,
                                   sizeof(norm)) < 0)
            field_error(k, path, f->type == FT_DIAGNOSIS ? "is not a known ICD-10 code"
                                                          : "is not a medicine of the catalogue");
        else if (strcmp(norm, str) != 0)
            json_object_set_new(into, f->name, json_string(norm));
        break;
    case FT_FILE:
        str = json_string_value(v);
        if (str == NULL || strlen(str) != 64 || strspn(str, "0123456789abcdef") != 64)
            field_error(k, path, "must be a document id (64 hexadecimal digits)");
        break;
    case FT_GROUP:
        check_rows(k, f, path, v, into, s);
        break;
    case FT_COMPUTED:
        r = expr_eval(f->expr, scope_lookup, s, k->e);
        if (r == NULL) {
            k->failed = 1;
            break;
        }
        if (json_is_real(r) && f->decimals >= 0) {
            double p = pow(10, f->decimals), rounded = round(json_real_value(r) * p) / p;

            json_decref(r);
            r = f->decimals == 0 ? json_integer((json_int_t)rounded) : json_real(rounded);
        }
        if (r && !json_is_null(r))
            json_object_set_new(into, f->name, r);
        else
            json_decref(r);
        break;
    default:
        break;
    }
}

static json_t *context_object(const struct entry_context *ctx)
{
    json_t *c = json_object();
    char today[11];

    date_format(ctx->today, today);
    json_object_set_new(c, "today", json_string(today));
    json_object_set_new(c, "sex", ctx->sex ? json_string(ctx->sex) : json_null());
    json_object_set_new(c, "encounter_type", ctx->encounter_type ? json_string(ctx->encounter_type) : json_null());
    if (ctx->encounter_day > 0) {
        date_format(ctx->encounter_day, today);
        json_object_set_new(c, "encounter_date", json_string(today));
    }
    if (ctx->age_days >= 0) {
        json_object_set_new(c, "age_days", json_integer(ctx->age_days));
        /* whole months and years lived, as people count them (not days / 30) */
        {
            int y1, m1, d1, y2, m2, d2, months;

            int64_t on = ctx->encounter_day > 0 ? ctx->encounter_day : ctx->today;

            date_civil_from_days(on - ctx->age_days, &y1, &m1, &d1);
            date_civil_from_days(on, &y2, &m2, &d2);
            months = (y2 - y1) * 12 + (m2 - m1) - (d2 < d1);
            json_object_set_new(c, "age_months", json_integer(months < 0 ? 0 : months));
            json_object_set_new(c, "age_years", json_integer(months < 0 ? 0 : months / 12));
        }
    }
    return c;
}

json_t *form_check_entry(const struct form *f, const json_t *values, const struct entry_context *ctx,
                         json_t **field_errors, struct err *e)
{
    struct checker k = { ctx, json_object(), e, 0 };
    struct scope s = { NULL, NULL, context_object(ctx) };
    json_t *out = json_object();
    const json_t *v;
    const char *key;
    size_t i;
    int rel, req;

    *field_errors = NULL;
    if (k.errors == NULL || s.context == NULL || out == NULL)
        goto oom;
    if (!json_is_object(values)) {
        field_error(&k, "values", "must be an object of field values");
        goto invalid;
    }
    /* first what was sent: known fields only, no computed ones */
    json_object_foreach((json_t *)values, key, v) {
        for (i = 0; i < f->nfields; i++)
            if (strcmp(f->fields[i].name, key) == 0)
                break;
        if (i == f->nfields)
            field_error(&k, key, "is not a field of this form");
        else if (f->fields[i].type == FT_COMPUTED)
            field_error(&k, key, "is computed by the server and must not be sent");
        else if (!json_is_null(v))
            json_object_set(out, key, (json_t *)v);
    }
    s.values = out;
    /* then every field in order: conditions see the values given and the fields computed before them */
    for (i = 0; i < f->nfields && !k.failed; i++) {
        const struct form_field *fld = &f->fields[i];

        if ((rel = condition(fld->relevant, &s, 1, e)) < 0)
            goto fail;
        v = json_object_get(out, fld->name);
        if (fld->type == FT_COMPUTED) {
            if (rel)
                check_value(&k, fld, fld->name, NULL, out, &s);
            continue;
        }
        if (!rel) {
            if (present(v))
                field_error(&k, fld->name, "is not asked here (its condition is false)");
            continue;
        }
        req = fld->required ? 1 : condition(fld->required_if, &s, 0, e);
        if (req < 0)
            goto fail;
        if (!present(v)) {
            if (req)
                field_error(&k, fld->name, "is required");
            continue;
        }
        check_value(&k, fld, fld->name, v, out, &s);
    }
    if (k.failed)
        goto fail;
    if (json_object_size(k.errors) > 0)
        goto invalid;
    json_decref(k.errors);
    json_decref(s.context);
    return out;
invalid:
    err_set(e, ERR_UNPROCESSABLE, "invalid_entry", "%zu field%s of the entry %s not valid",
            json_object_size(k.errors), json_object_size(k.errors) == 1 ? "" : "s",
            json_object_size(k.errors) == 1 ? "is" : "are");
    *field_errors = k.errors;
    json_decref(s.context);
    json_decref(out);
    return NULL;
oom:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
fail:
    json_decref(k.errors);
    json_decref(s.context);
    json_decref(out);
    if (e->kind == ERR_NONE)
        err_set(e, ERR_INTERNAL, "internal_error", "the entry could not be checked");
    return NULL;
}

/* ---- languages ---- */

/* The text of a translatable object in lang, else dflt, else English, else the first one. */
static const json_t *pick_text(const json_t *t, const char *lang, const char *dflt)
{
    const json_t *v;
    const char *key;
    char primary[4];

    if (!json_is_object(t))
        return t;
    if (lang && (v = json_object_get(t, lang)) != NULL)
        return v;
    if (lang && strlen(lang) > 2) {     /* "ar-LB" falls back to "ar" */
        snprintf(primary, sizeof(primary), "%.*s", (int)strcspn(lang, "-"), lang);
        if ((v = json_object_get(t, primary)) != NULL)
            return v;
    }
    if (dflt && (v = json_object_get(t, dflt)) != NULL)
        return v;
    if ((v = json_object_get(t, "en")) != NULL)
        return v;
    json_object_foreach((json_t *)t, key, v)
        return v;
    return t;
}

static const char *const text_keys[] = { "title", "description", "label", "help", "constraint_message", NULL };

static void localise_object(json_t *o, const char *lang, const char *dflt)
{
    const char *const *k;
    const json_t *t;
    json_t *list, *item;
    size_t i;

    for (k = text_keys; *k; k++)
        if ((t = json_object_get(o, *k)) != NULL && json_is_object(t))
            json_object_set(o, *k, (json_t *)pick_text(t, lang, dflt));
    if ((list = json_object_get(o, "fields")) != NULL)
        json_array_foreach(list, i, item)
            localise_object(item, lang, dflt);
    if ((list = json_object_get(o, "options")) != NULL)
        json_array_foreach(list, i, item)
            localise_object(item, lang, dflt);
}

json_t *form_localise(const json_t *definition, const char *lang)
{
    json_t *out = json_deep_copy(definition);
    const char *dflt = json_string_value(json_object_get(definition, "default_language"));

    if (out == NULL)
        return NULL;
    localise_object(out, lang, dflt);
    json_object_set_new(out, "language", lang ? json_string(lang) : json_null());
    return out;
}

/* ---- showing values ---- */

/* The display text of one value of field f (a definition object), in lang. A new reference. */
static json_t *display_value(const json_t *f, const json_t *v, const char *lang, const char *dflt)
{
    const char *type = json_string_value(json_object_get(f, "type")), *code;
    const struct catalogue_item *it;
    const json_t *opt, *item;
    json_t *out;
    size_t i, j;

    if (type == NULL)
        return json_incref((json_t *)v);
    if (strcmp(type, "select") == 0 || strcmp(type, "multi_select") == 0
        || (strcmp(type, "computed") == 0 && json_object_get(f, "options"))) {
        if (!json_is_array(v)) {
            json_array_foreach(json_object_get(f, "options"), i, opt)
                if (json_is_string(v) && strcmp(json_string_value(json_object_get(opt, "code")), json_string_value(v)) == 0)
                    return json_incref((json_t *)pick_text(json_object_get(opt, "label"), lang, dflt));
            return json_incref((json_t *)v);
        }
        out = json_array();
        json_array_foreach(v, j, item) {
            json_t *text = NULL;

            json_array_foreach(json_object_get(f, "options"), i, opt)
                if (json_is_string(item) && strcmp(json_string_value(json_object_get(opt, "code")),
                                                   json_string_value(item)) == 0)
                    text = json_incref((json_t *)pick_text(json_object_get(opt, "label"), lang, dflt));
            json_array_append_new(out, text ? text : json_incref((json_t *)item));
        }
        return out;
    }
    if ((strcmp(type, "diagnosis") == 0 || strcmp(type, "medication") == 0) && (code = json_string_value(v)) != NULL) {
        it = catalogue_find(type[0] == 'd' ? CATALOGUE_ICD10 : CATALOGUE_MEDICINES, code);
        return it ? json_sprintf("%s %s", code, catalogue_label(it, lang)) : json_incref((json_t *)v);
    }
    if (strcmp(type, "boolean") == 0)
        return json_incref((json_t *)v);
    return json_incref((json_t *)v);
}

/* [{name, label, value, text, unit?}] for the fields of list that values holds, in definition order. */
static json_t *display_fields(const json_t *list, const json_t *values, const char *lang, const char *dflt)
{
    json_t *out = json_array(), *row, *rows;
    const json_t *f, *v, *r;
    size_t i, k;

    json_array_foreach(list, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));

        if (name == NULL || (v = json_object_get(values, name)) == NULL || json_is_null(v))
            continue;
        row = json_pack("{s:s,s:O,s:O}", "name", name, "label", pick_text(json_object_get(f, "label"), lang, dflt),
                        "value", v);
        if (row == NULL)
            continue;
        if (json_is_array(json_object_get(f, "fields")) && json_is_array(v)) {
            rows = json_array();
            json_array_foreach(v, k, r)
                json_array_append_new(rows, display_fields(json_object_get(f, "fields"), r, lang, dflt));
            json_object_set_new(row, "rows", rows);
        } else {
            json_object_set_new(row, "text", display_value(f, v, lang, dflt));
        }
        if (json_is_string(json_object_get(f, "unit")))
            json_object_set(row, "unit", json_object_get(f, "unit"));
        json_array_append_new(out, row);
    }
    return out;
}

json_t *form_display(const struct form *f, const json_t *values, const char *lang)
{
    const char *dflt = json_string_value(json_object_get(f->definition, "default_language"));

    return json_pack("{s:O,s:o}", "title", pick_text(json_object_get(f->definition, "title"), lang, dflt), "fields",
                     display_fields(json_object_get(f->definition, "fields"), values, lang, dflt));
}
