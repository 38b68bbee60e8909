/* export.c — `sanad export patients --format csv|jsonl`: every live patient of the node (or of one site),
 * newest first, to standard output; `sanad export entries [--lang L]`: every form entry as JSON lines, each
 * read with its own form version (and shown in L). Exports are audit-logged. CSV cells are written by
 * libcsv. */
#include <csv.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/json.h"
#include "services/encounters.h"
#include "services/patients.h"
#include "services/regfields.h"
#include "store/db.h"

static const char usage[] = "sanad export patients --data DIR [--format csv|jsonl] [--site ID]\n"
                            "       sanad export entries --data DIR [--lang L] [--site ID]   (JSON lines)";

static const char *const columns[] = {
    "id", "site_id", "given_name", "family_name", "middle_name", "other_names", "name_original", "sex",
    "birth_date", "birth_precision", "nationality", "languages", "preferred_language", "phones", "address",
    "camp", "shelter", "created_at", "updated_at",
};
#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))

struct export_state {
    int jsonl;
    json_t *id_types;       /* identifier types that get a column each */
    json_t *custom_keys;    /* custom field keys that get a column each */
    long count;
};

static void put_cell(const char *s, int first)
{
    if (!first)
        fputc(',', stdout);
    csv_fwrite(stdout, s, strlen(s));
}

/* Lists as "a;b;c", the form import reads back. */
static void put_value(const json_t *v, int first)
{
    char num[64], *joined;
    size_t i, n = 0;
    json_t *item;

    if (v == NULL || json_is_null(v)) {
        put_cell("", first);
    } else if (json_is_string(v)) {
        put_cell(json_string_value(v), first);
    } else if (json_is_array(v)) {
        joined = calloc(1, 4096);
        json_array_foreach(v, i, item)
            if (json_is_string(item) && n + json_string_length(item) + 2 < 4096)
                n += (size_t)snprintf(joined + n, 4096 - n, "%s%s", n ? ";" : "", json_string_value(item));
        put_cell(joined, first);
        free(joined);
    } else if (json_is_boolean(v)) {
        put_cell(json_is_true(v) ? "true" : "false", first);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        put_cell(num, first);
    } else {
        /* the shortest form that reads back to the same double */
        snprintf(num, sizeof(num), "%.15g", json_number_value(v));
        if (strtod(num, NULL) != json_number_value(v))
            snprintf(num, sizeof(num), "%.17g", json_number_value(v));
        put_cell(num, first);
    }
}

static int export_one(const json_t *p, void *ctx)
{
    struct export_state *s = ctx;
    char *line;
    size_t i;
    json_t *k;

    s->count++;
    if (s->jsonl) {
        line = json_dumps(p, JSON_COMPACT);
        if (line)
            puts(line);
        free(line);
        return 0;
    }
    for (i = 0; i < NCOLUMNS; i++)
        put_value(json_object_get(p, columns[i]), i == 0);
    json_array_foreach(s->id_types, i, k)
        put_value(json_object_get(json_object_get(p, "identifiers"), json_string_value(k)), 0);
    json_array_foreach(s->custom_keys, i, k)
        put_value(json_object_get(json_object_get(p, "custom"), json_string_value(k)), 0);
    fputs("\r\n", stdout);
    return ferror(stdout) ? 1 : 0;
}

static int export_entry(const json_t *entry, void *ctx)
{
    struct export_state *s = ctx;
    char *line = json_dumps(entry, JSON_COMPACT | JSON_REAL_PRECISION(15));

    s->count++;
    if (line)
        puts(line);
    free(line);
    return line == NULL || ferror(stdout) ? 1 : 0;
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "format", required_argument, NULL, 'f' },
        { "site", required_argument, NULL, 's' },
        { "lang", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *data = NULL, *dir, *site = NULL, *format = "csv", *lang = NULL;
    struct export_state st = { 0, NULL, NULL, 0 };
    struct caller local;
    struct db *db = NULL;
    json_t *config, *f, *t;
    char name[80];
    struct err e;
    int c, rc = 1, i;
    size_t j;

    err_clear(&e);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: %s\n\nWrite every patient, or every form entry, of the node (or of one site) to standard "
               "output.\n", usage);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "patients") != 0 && strcmp(argv[1], "entries") != 0)
        return cmd_usage_error(usage, "can export 'patients' or 'entries', not '%s'", argv[1]);
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'f': format = optarg; break;
        case 's': site = optarg; break;
        case 'l': lang = optarg; break;
        case 'h': printf("usage: %s\n", usage); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if (strcmp(format, "csv") && strcmp(format, "jsonl"))
        return cmd_usage_error(usage, "--format is csv or jsonl");
    st.jsonl = strcmp(format, "jsonl") == 0;
    if ((dir = cmd_data_dir(data)) == NULL)
        return 2;
    if (db_open(dir, 0, &db, &e) < 0)
        return cmd_fail(&e);
    caller_local(&local, "export");
    if (caller_local_sites(db, &local, site, &e) < 0)
        goto done;
    if (strcmp(argv[1], "entries") == 0) {
        if (entries_export(db, &local, lang, export_entry, &st, &e) < 0)
            goto done;
        if (fflush(stdout) != 0 || ferror(stdout)) {
            err_set(&e, ERR_INTERNAL, "write_failed", "could not write the export to standard output");
            goto done;
        }
        fprintf(stderr, "exported %ld entries\n", st.count);
        rc = 0;
        goto done;
    }
    /* one column per identifier type and custom field of the exported sites */
    st.id_types = json_array();
    st.custom_keys = json_array();
    for (i = 0; i < local.nsites; i++) {
        if ((config = regfields_get(db, local.sites[i], &e)) == NULL)
            goto done;
        json_array_foreach(json_object_get(config, "identifier_types"), j, t) {
            size_t k, dup = 0;
            json_t *x;
            json_array_foreach(st.id_types, k, x)
                dup |= json_equal(x, t);
            if (!dup)
                json_array_append(st.id_types, t);
        }
        json_array_foreach(json_object_get(config, "fields"), j, f) {
            size_t k, dup = 0;
            json_t *x;
            json_array_foreach(st.custom_keys, k, x)
                dup |= json_equal(x, json_object_get(f, "key"));
            if (!dup)
                json_array_append(st.custom_keys, json_object_get(f, "key"));
        }
        json_decref(config);
    }
    if (!st.jsonl) {
        for (j = 0; j < NCOLUMNS; j++)
            put_cell(columns[j], j == 0);
        json_array_foreach(st.id_types, j, t) {
            snprintf(name, sizeof(name), "identifier.%s", json_string_value(t));
            put_cell(name, 0);
        }
        json_array_foreach(st.custom_keys, j, t) {
            snprintf(name, sizeof(name), "custom.%s", json_string_value(t));
            put_cell(name, 0);
        }
        fputs("\r\n", stdout);
    }
    if (patients_export(db, &local, export_one, &st, &e) < 0)
        goto done;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        err_set(&e, ERR_INTERNAL, "write_failed", "could not write the export to standard output");
        goto done;
    }
    fprintf(stderr, "exported %ld patients\n", st.count);
    rc = 0;
done:
    if (rc)
        cmd_fail(&e);
    json_decref(st.id_types);
    json_decref(st.custom_keys);
    db_close(db);
    return rc;
}
