/* import.c — `sanad import patients FILE.csv`: register patients from a CSV file with a header row, in
 * one transaction (all or nothing unless --skip-bad), reporting every bad row by row and column.
 * CSV is parsed by libcsv (RFC 4180: quotes, embedded commas and newlines). */
#include <csv.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/json.h"
#include "core/util.h"
#include "services/patients.h"
#include "services/regfields.h"
#include "store/db.h"

static const char usage[] =
    "sanad import patients --data DIR [--skip-bad] [--site ID] [--map COLUMN=FIELD,...] FILE.csv";

static const char help[] =
    "Register the patients of a CSV file (UTF-8, header row, comma-separated). Column names are patient\n"
    "fields (given_name, family_name, middle_name, other_names, name_original, sex, birth_date,\n"
    "birth_precision, age_years, nationality, languages, preferred_language, phones, address, camp,\n"
    "shelter, site_id), identifier.TYPE (e.g. identifier.unhcr) or custom.KEY; --map renames other\n"
    "headers (--map \"Prenom=given_name,Nom=family_name\"). Lists (other_names, languages, phones) are\n"
    "separated by ';'. Empty cells are left out; the columns id, created_at and updated_at of an export\n"
    "are ignored. By default one bad row stops the whole import and nothing is written; --skip-bad\n"
    "imports the good rows. Every bad row is reported.\n";

#define MAX_COLUMNS 128

struct import_state {
    struct patient_import *imp;
    const json_t *config;
    char *header[MAX_COLUMNS];      /* target field of each column (after --map) */
    char *label[MAX_COLUMNS];       /* the column name as written in the file */
    int ncols, col;
    int64_t rownum;
    json_t *row;
    int failed;                     /* storage failure or a bad header */
    const char *map;                /* --map, applied once the header is read */
    char bad[160];                  /* what is wrong with a cell of the current row ("" if nothing) */
    const char *bad_column;
    struct err *e;
};

static int apply_map(struct import_state *s, const char *map, struct err *e);

static const char *const list_fields[] = { "other_names", "languages", "phones" };

static int is_list_field(const char *f)
{
    size_t i;

    for (i = 0; i < sizeof(list_fields) / sizeof(list_fields[0]); i++)
        if (strcmp(f, list_fields[i]) == 0)
            return 1;
    return 0;
}

/* The type of a custom field in the site's configuration ("text" when unknown: the service reports it). */
static const char *custom_type(const json_t *config, const char *key)
{
    size_t i;
    json_t *f;

    json_array_foreach(json_object_get(config, "fields"), i, f)
        if (strcmp(json_string_value(json_object_get(f, "key")), key) == 0)
            return json_string_value(json_object_get(f, "type"));
    return "text";
}

/* A cell as the JSON value the field takes; strings that do not fit are passed on for the service to
 * reject with its own message. */
static json_t *cell_value(const struct import_state *s, const char *field, const char *text)
{
    const char *type, *errstr;
    json_t *arr;
    char *copy, *tok, *save;
    int64_t n;
    double d;
    char *end;

    if (is_list_field(field)) {
        arr = json_array();
        copy = strdup(text);
        for (tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
            while (*tok == ' ')
                tok++;
            if (*tok)
                json_array_append_new(arr, json_string(tok));
        }
        free(copy);
        return arr;
    }
    if (strcmp(field, "age_years") == 0)
        return parse_int64(text, 0, 200, &n, &errstr) == 0 ? json_integer(n) : json_string(text);
    if (strncmp(field, "custom.", 7) == 0) {
        type = custom_type(s->config, field + 7);
        if (strcmp(type, "number") == 0) {
            d = strtod(text, &end);
            return *end == '\0' && end != text ? json_real(d) : json_string(text);
        }
        if (strcmp(type, "boolean") == 0) {
            if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") || !strcmp(text, "1"))
                return json_true();
            if (!strcasecmp(text, "false") || !strcasecmp(text, "no") || !strcmp(text, "0"))
                return json_false();
        }
    }
    return json_string(text);
}

/* Set a JSON member, or note the cell as bad when its text is not UTF-8 (Jansson refuses it). */
static void set_cell(struct import_state *s, json_t *obj, const char *key, json_t *value)
{
    if (value == NULL) {
        if (!s->bad[0]) {
            snprintf(s->bad, sizeof(s->bad), "the cell is not valid UTF-8 text (save the file as UTF-8)");
            s->bad_column = s->label[s->col - 1];
        }
        return;
    }
    json_object_set_new(obj, key, value);
}

static void on_field(void *data, size_t len, void *ctx)
{
    struct import_state *s = ctx;
    const char *field, *dot;
    char text[4096];
    json_t *obj;

    if (s->failed)
        return;
    if (s->rownum == 1) {
        if (s->ncols >= MAX_COLUMNS) {
            err_set(s->e, ERR_INVALID, "too_many_columns", "the file has more than %d columns", MAX_COLUMNS);
            s->failed = 1;
            return;
        }
        s->label[s->ncols] = strndup(data ? data : "", len);
        s->header[s->ncols] = strndup(data ? data : "", len);
        s->ncols++;
        return;
    }
    if (s->col >= s->ncols) {
        s->col++;
        return;     /* extra cells are reported at the end of the row */
    }
    field = s->header[s->col++];
    /* the columns of an export that are the node's own, not the patient's: read back, left out */
    if (len == 0 || field[0] == '\0' || !strcmp(field, "id") || !strcmp(field, "created_at")
        || !strcmp(field, "updated_at"))
        return;
    if (len >= sizeof(text)) {
        if (!s->bad[0]) {
            snprintf(s->bad, sizeof(s->bad), "the cell is longer than %zu bytes", sizeof(text) - 1);
            s->bad_column = s->label[s->col - 1];
        }
        return;
    }
    memcpy(text, data, len);
    text[len] = '\0';
    if (strncmp(field, "identifier.", 11) == 0 || strncmp(field, "identifiers.", 12) == 0) {
        dot = strchr(field, '.');
        obj = json_object_get(s->row, "identifiers");
        if (obj == NULL)
            json_object_set_new(s->row, "identifiers", obj = json_object());
        set_cell(s, obj, dot + 1, json_string(text));
    } else if (strncmp(field, "custom.", 7) == 0) {
        obj = json_object_get(s->row, "custom");
        if (obj == NULL)
            json_object_set_new(s->row, "custom", obj = json_object());
        set_cell(s, obj, field + 7, cell_value(s, field, text));
    } else {
        set_cell(s, s->row, field, cell_value(s, field, text));
    }
}

static void on_row(int term, void *ctx)
{
    struct import_state *s = ctx;
    struct err bad;

    (void)term;
    if (s->failed)
        return;
    if (s->rownum == 1 && s->map && apply_map(s, s->map, s->e) < 0) {
        s->failed = 1;
        return;
    }
    if (s->rownum > 1) {
        if (s->bad[0]) {
            json_array_append_new(s->imp->errors, json_pack("{s:I,s:s,s:s,s:s}", "row", (json_int_t)s->rownum, "field",
                                                            s->bad_column, "code", "invalid_cell", "message", s->bad));
            s->imp->failed++;
        } else if (s->col != s->ncols) {
            err_set(&bad, ERR_INVALID, "wrong_columns", "the row has %d cells where the header has %d", s->col, s->ncols);
            json_array_append_new(s->imp->errors, json_pack("{s:I,s:s,s:s,s:s}", "row", (json_int_t)s->rownum, "field",
                                                            "", "code", bad.code, "message", bad.message));
            s->imp->failed++;
        } else if (patients_import_row(s->imp, s->row, s->rownum, s->e) < 0) {
            s->failed = 1;
        }
        json_object_clear(s->row);
    }
    s->bad[0] = '\0';
    s->rownum++;
    s->col = 0;
}

/* Apply --map "A=b,C=d" to the header. */
static int apply_map(struct import_state *s, const char *map, struct err *e)
{
    char *copy = strdup(map), *pair, *save, *eq;
    int i, found;

    for (pair = strtok_r(copy, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
        eq = strchr(pair, '=');
        if (eq == NULL) {
            free(copy);
            return err_set(e, ERR_INVALID, "invalid_map", "--map takes COLUMN=FIELD pairs separated by commas");
        }
        *eq = '\0';
        for (found = 0, i = 0; i < s->ncols; i++) {
            if (strcmp(s->label[i], pair) == 0) {
                free(s->header[i]);
                s->header[i] = strdup(eq + 1);
                found = 1;
            }
        }
        if (!found) {
            err_set(e, ERR_INVALID, "invalid_map", "--map names column '%s', which the file does not have", pair);
            free(copy);
            return -1;
        }
    }
    free(copy);
    return 0;
}

/* The column label a field error points at. */
static const char *column_of(const struct import_state *s, const char *field)
{
    char alt[80];
    int i;

    if (field == NULL || *field == '\0')
        return NULL;
    snprintf(alt, sizeof(alt), "identifier.%s", strncmp(field, "identifiers.", 12) == 0 ? field + 12 : "");
    for (i = 0; i < s->ncols; i++)
        if (strcmp(s->header[i], field) == 0 || strcmp(s->header[i], alt) == 0 || strcmp(s->label[i], field) == 0)
            return s->label[i];
    return field;
}

int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "skip-bad", no_argument, NULL, 'k' },
        { "site", required_argument, NULL, 's' },
        { "map", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *data = NULL, *dir, *site = NULL, *map = NULL, *path;
    struct import_state s;
    struct patient_import imp;
    struct caller local;
    struct csv_parser parser;
    struct db *db = NULL;
    json_t *report = NULL, *config = NULL, *v;
    char buf[65536];
    size_t n, i;
    FILE *f = NULL;
    struct err e;
    int c, skip_bad = 0, rc = 1, began = 0, k;

    err_clear(&e);
    memset(&s, 0, sizeof(s));
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: %s\n\n%s", usage, help);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "patients") != 0)
        return cmd_usage_error(usage, "can import only 'patients', not '%s'", argv[1]);
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'k': skip_bad = 1; break;
        case 's': site = optarg; break;
        case 'm': map = optarg; break;
        case 'h': printf("usage: %s\n\n%s", usage, help); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (optind != argc - 1)
        return cmd_usage_error(usage, "give exactly one CSV file");
    path = argv[optind];
    if ((dir = cmd_data_dir(data)) == NULL)
        return 2;
    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "sanad: cannot open '%s': %s\n", path, strerror(errno));
        return 1;
    }
    if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL) != 0) {
        err_set(&e, ERR_INTERNAL, "out_of_memory", "out of memory");
        goto done;
    }
    if (db_open(dir, 0, &db, &e) < 0 || db_set_cache_mb(db, 256, &e) < 0)
        goto done_parser;
    caller_local(&local, "import");
    if (caller_local_sites(db, &local, site, &e) < 0)
        goto done_parser;
    if (local.nsites == 0) {
        err_set(&e, ERR_NOT_FOUND, "no_site", "the node has no site to register patients at");
        goto done_parser;
    }
    if ((config = regfields_get(db, local.sites[0], &e)) == NULL)
        goto done_parser;
    if (patients_import_begin(&imp, db, &local, skip_bad, &e) < 0)
        goto done_parser;
    began = 1;
    s.imp = &imp;
    s.config = config;
    s.rownum = 1;
    s.row = json_object();
    s.e = &e;
    s.map = map;
    while (!s.failed && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (s.rownum == 1 && n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {   /* a UTF-8 byte-order mark */
            memmove(buf, buf + 3, n - 3);
            n -= 3;
        }
        if (csv_parse(&parser, buf, n, on_field, on_row, &s) != n) {
            err_set(&e, ERR_INVALID, "invalid_csv", "the file is not valid CSV near row %" PRId64 ": %s", s.rownum,
                    csv_strerror(csv_error(&parser)));
            s.failed = 1;
        }
    }
    if (!s.failed && csv_fini(&parser, on_field, on_row, &s) != 0) {
        err_set(&e, ERR_INVALID, "invalid_csv", "the file ends inside a quoted cell");
        s.failed = 1;
    }
    report = patients_import_finish(&imp, !s.failed, &e);
    began = 0;
    if (report == NULL)
        goto done_parser;
    json_array_foreach(json_object_get(report, "errors"), i, v) {
        const char *col = column_of(&s, json_string_value(json_object_get(v, "field")));

        fprintf(stderr, "row %" JSON_INTEGER_FORMAT "%s%s%s: %s\n", json_integer_value(json_object_get(v, "row")),
                col ? ", column '" : "", col ? col : "", col ? "'" : "", json_string_value(json_object_get(v, "message")));
    }
    if (e.kind != ERR_NONE)
        goto done_parser;
    printf("imported %" JSON_INTEGER_FORMAT " patients, skipped %" JSON_INTEGER_FORMAT " bad rows\n",
           json_integer_value(json_object_get(report, "created")), json_integer_value(json_object_get(report, "skipped")));
    rc = 0;
done_parser:
    if (began)
        json_decref(patients_import_finish(&imp, 0, &e));
    csv_free(&parser);
done:
    if (rc)
        cmd_fail(&e);
    for (k = 0; k < s.ncols; k++) {
        free(s.header[k]);
        free(s.label[k]);
    }
    json_decref(s.row);
    json_decref(report);
    json_decref(config);
    db_close(db);
    if (f && f != stdin)
        fclose(f);
    return rc;
}
