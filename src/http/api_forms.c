/* api_forms.c — /api/v1/forms: list, read (in a language), create, new versions, XLSForm import. */
#include <string.h>

#include "core/util.h"
#include "http/http.h"
#include "services/forms.h"

/* A definition is checked by the forms engine, not by a field table: any object is passed on. */
static const struct json_field any_fields[] = {
    { "id", JT_STRING, 0, 64 },
    { "version", JT_INT, 0, 0 },
    { "title", JT_OBJECT, 0, 0 },
    { "description", JT_OBJECT, 0, 0 },
    { "languages", JT_STRING_ARRAY, 0, 50 },
    { "default_language", JT_STRING, 0, 35 },
    { "encounter_types", JT_STRING_ARRAY, 0, 10 },
    { "fields", JT_ARRAY, 0, FORM_FIELDS_MAX },
    { NULL, 0, 0, 0 },
};

static const struct json_field import_fields[] = {
    { "survey", JT_STRING, JF_REQUIRED, 0 },    /* each sheet at most JSON_MAX_STRING (64 KiB) */
    { "choices", JT_STRING, 0, 0 },
    { "settings", JT_STRING, 0, 0 },
    { "form", JT_STRING, 0, 64 },       /* store as a new version of this form */
    { NULL, 0, 0, 0 },
};

/* The version asked for (?version=N), 0 for the newest; -1 after replying when malformed. */
static int64_t requested_version(struct request *req)
{
    const char *v = req_query(req, "version"), *errstr;
    int64_t n = 0;

    if (v && parse_int64(v, 1, 2000000000, &n, &errstr) < 0) {
        reply_error_code(req, 400, "invalid_version", "version must be a whole number from 1");
        return -1;
    }
    return n;
}

void api_forms_list(struct request *req)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, forms_list(req->db, &req->caller, req_query(req, "lang"), &e), &e);
}

void api_forms_get(struct request *req)
{
    int64_t version = requested_version(req);
    struct err e;

    if (version < 0)
        return;
    err_clear(&e);
    reply_result(req, 200, forms_get(req->db, &req->caller, req_param(req, 0), version, req_query(req, "lang"), &e),
                 &e);
}

void api_forms_versions(struct request *req)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, forms_versions(req->db, &req->caller, req_param(req, 0), &e), &e);
}

static void save(struct request *req, const char *form_id)
{
    json_t *body = req_json_body(req, any_fields), *out, *problems = NULL;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    out = forms_save(req->db, &req->caller, form_id, body, &problems, &e);
    json_decref(body);
    if (out == NULL && problems)
        reply_error_fields(req, &e, problems);
    else
        reply_result(req, 201, out, &e);
}

void api_forms_create(struct request *req)
{
    save(req, NULL);
}

void api_forms_update(struct request *req)
{
    save(req, req_param(req, 0));
}

void api_forms_import(struct request *req)
{
    json_t *body = req_json_body(req, import_fields), *problems = NULL, *out;
    const char *survey, *choices, *settings;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    survey = json_string_value(json_object_get(body, "survey"));
    choices = json_string_value(json_object_get(body, "choices"));
    settings = json_string_value(json_object_get(body, "settings"));
    out = forms_import_xlsform(req->db, &req->caller, survey, strlen(survey), choices, choices ? strlen(choices) : 0,
                               settings, settings ? strlen(settings) : 0,
                               json_string_value(json_object_get(body, "form")), &problems, &e);
    json_decref(body);
    if (out == NULL && problems)
        reply_error_fields(req, &e, problems);
    else
        reply_result(req, 201, out, &e);
}
