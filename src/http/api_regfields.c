/* api_regfields.c — GET/PUT /api/v1/registration-fields?site=ID: a site's custom registration fields. */
#include <string.h>

#include "http/http.h"
#include "services/regfields.h"

static const struct json_field config_fields[] = {
    { "identifier_types", JT_STRING_ARRAY, 0, 32 },
    { "fields", JT_ARRAY, 0, 64 },
    { NULL, 0, 0, 0 },
};

/* The site asked for, or the caller's first site; NULL after replying when it is not one of theirs. */
static const char *requested_site(struct request *req)
{
    const char *site = req_query(req, "site");
    int i;

    if (site == NULL) {
        if (req->caller.nsites > 0)
            return req->caller.sites[0];
        reply_error_code(req, 400, "missing_site", "give ?site=ID; your account belongs to no site");
        return NULL;
    }
    for (i = 0; i < req->caller.nsites; i++)
        if (strcmp(site, req->caller.sites[i]) == 0)
            return site;
    reply_error_code(req, 403, "site_not_allowed", "you do not belong to that site");
    return NULL;
}

void api_regfields_get(struct request *req)
{
    const char *site = requested_site(req);
    struct err e;
    json_t *out;

    if (site == NULL)
        return;
    err_clear(&e);
    out = regfields_get(req->db, site, &e);
    if (out == NULL)
        reply_error(req, &e);
    else
        reply_json(req, 200, out);
}

void api_regfields_put(struct request *req)
{
    const char *site = requested_site(req);
    struct err e;
    json_t *body, *out;

    if (site == NULL || (body = req_json_body(req, config_fields)) == NULL)
        return;
    err_clear(&e);
    out = regfields_put(req->db, &req->caller, site, body, &e);
    json_decref(body);
    if (out == NULL)
        reply_error(req, &e);
    else
        reply_json(req, 200, out);
}
