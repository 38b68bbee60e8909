/* api_sites.c — GET/POST /api/v1/sites (admins). */
#include "http/http.h"
#include "services/sites.h"
#include "store/sites.h"

static const struct json_field site_fields[] = {
    { "name", JT_STRING, JF_REQUIRED, SITE_NAME_MAX },
    { NULL, 0, 0, 0 },
};

void api_sites_list(struct request *req)
{
    struct err e;
    json_t *out;

    err_clear(&e);
    out = sites_list(req->db, &req->caller, &e);
    if (out == NULL)
        reply_error(req, &e);
    else
        reply_json(req, 200, out);
}

void api_sites_create(struct request *req)
{
    struct err e;
    json_t *body, *out;

    err_clear(&e);
    body = req_json_body(req, site_fields);
    if (body == NULL)
        return;
    out = sites_create(req->db, &req->caller, json_get_string(body, "name"), &e);
    json_decref(body);
    if (out == NULL)
        reply_error(req, &e);
    else
        reply_json(req, 201, out);
}
