/* forms.c — `sanad forms list|show|add|import`: the node's form definitions from the console (the same
 * service functions as /api/v1/forms). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/json.h"
#include "core/util.h"
#include "services/caller.h"
#include "services/forms.h"
#include "store/db.h"

#define SHEET_MAX (2u << 20)

static const char usage[] =
    "sanad forms list --data DIR [--lang L]\n"
    "       sanad forms show --data DIR ID [--version N] [--lang L]\n"
    "       sanad forms add --data DIR FILE.json            (a new form, or the next version of its id)\n"
    "       sanad forms import --data DIR --survey F.csv [--choices F.csv] [--settings F.csv] [--form ID]";

static void print_json(const json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    if (text)
        printf("%s\n", text);
    free(text);
}

/* Print problems {path: message} one a line and return 1. */
static int print_problems(const struct err *e, const json_t *problems)
{
    const char *path;
    json_t *msg;

    fprintf(stderr, "sanad: %s\n", e->message);
    json_object_foreach((json_t *)problems, path, msg)
        fprintf(stderr, "  %s: %s\n", path, json_string_value(msg));
    return 1;
}

static char *read_sheet(const char *path, size_t *len)
{
    char *text;

    if (path == NULL) {
        *len = 0;
        return NULL;
    }
    if ((text = read_file(path, SHEET_MAX, len)) == NULL)
        fprintf(stderr, "sanad: unable to read '%s' (missing, or over 2 MiB)\n", path);
    return text;
}

int cmd_forms(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "lang", required_argument, NULL, 'l' },
        { "version", required_argument, NULL, 'v' },
        { "survey", required_argument, NULL, 's' },
        { "choices", required_argument, NULL, 'c' },
        { "settings", required_argument, NULL, 't' },
        { "form", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *data = NULL, *lang = NULL, *survey_path = NULL, *choices_path = NULL, *settings_path = NULL;
    const char *into = NULL, *verb, *dir, *errstr;
    char *survey = NULL, *choices = NULL, *settings = NULL, *text = NULL;
    size_t survey_len = 0, choices_len = 0, settings_len = 0, len;
    json_t *out = NULL, *problems = NULL, *def = NULL;
    int64_t version = 0;
    struct caller local;
    struct db *db = NULL;
    struct err e;
    int c, rc = 1;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: %s\n\nList, read and add form definitions (docs/forms.md); import an XLSForm saved as CSV "
               "sheets (docs/xlsform.md).\n", usage);
        return argc < 2 ? 2 : 0;
    }
    verb = argv[1];
    if (strcmp(verb, "list") != 0 && strcmp(verb, "show") != 0 && strcmp(verb, "add") != 0
        && strcmp(verb, "import") != 0)
        return cmd_usage_error(usage, "unknown verb '%s'", verb);
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'l': lang = optarg; break;
        case 'v':
            if (parse_int64(optarg, 1, 2000000000, &version, &errstr) < 0)
                return cmd_usage_error(usage, "--version '%s' is %s", optarg, errstr);
            break;
        case 's': survey_path = optarg; break;
        case 'c': choices_path = optarg; break;
        case 't': settings_path = optarg; break;
        case 'f': into = optarg; break;
        case 'h': printf("usage: %s\n", usage); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if ((strcmp(verb, "show") == 0 || strcmp(verb, "add") == 0) != (optind == argc - 1))
        return cmd_usage_error(usage, "%s takes %s", verb, optind < argc - 1 || strcmp(verb, "show") == 0
                                                               || strcmp(verb, "add") == 0 ? "one argument" : "no argument");
    if (strcmp(verb, "import") == 0 && survey_path == NULL)
        return cmd_usage_error(usage, "import needs --survey");
    if ((dir = cmd_data_dir(data)) == NULL)
        return 2;
    err_clear(&e);
    if (db_open(dir, 0, &db, &e) < 0)
        return cmd_fail(&e);
    caller_local(&local, "forms");
    if (forms_seed_builtin(db, &e) < 0)
        goto done;
    if (strcmp(verb, "list") == 0) {
        out = forms_list(db, &local, lang, &e);
    } else if (strcmp(verb, "show") == 0) {
        out = forms_get(db, &local, argv[optind], version, lang, &e);
    } else if (strcmp(verb, "add") == 0) {
        json_error_t jerr;
        struct form *f;

        if ((text = read_file(argv[optind], 1u << 20, &len)) == NULL) {
            fprintf(stderr, "sanad: unable to read '%s' (missing, or over 1 MiB)\n", argv[optind]);
            goto done;
        }
        if ((def = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
            fprintf(stderr, "sanad: '%s' is not JSON: %s (line %d)\n", argv[optind], jerr.text, jerr.line);
            goto done;
        }
        /* a form of that id exists: the file is its next version */
        f = forms_find(db, json_string_value(json_object_get(def, "id")), 0, NULL, &e);
        if (f)
            json_object_del(def, "version");
        out = forms_save(db, &local, f ? form_id(f) : NULL, def, &problems, &e);
        form_release(f);
        if (out == NULL && problems) {
            rc = print_problems(&e, problems);
            goto done;
        }
    } else {
        if ((survey = read_sheet(survey_path, &survey_len)) == NULL
            || (choices_path && (choices = read_sheet(choices_path, &choices_len)) == NULL)
            || (settings_path && (settings = read_sheet(settings_path, &settings_len)) == NULL))
            goto done;
        out = forms_import_xlsform(db, &local, survey, survey_len, choices, choices_len, settings, settings_len, into,
                                   &problems, &e);
        if (out == NULL && problems) {
            rc = print_problems(&e, problems);
            goto done;
        }
    }
    if (out == NULL) {
        rc = cmd_fail(&e);
        goto done;
    }
    print_json(out);
    rc = 0;
done:
    json_decref(out);
    json_decref(problems);
    json_decref(def);
    free(text);
    free(survey);
    free(choices);
    free(settings);
    db_close(db);
    return rc;
}
