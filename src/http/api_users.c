/* api_users.c — GET/POST /api/v1/users and PATCH /api/v1/users/{id} (admins). */
#include <string.h>

#include "http/http.h"
#include "services/users.h"

static const struct json_field create_fields[] = {
    { "username", JT_STRING, JF_REQUIRED, USERNAME_MAX },
    { "full_name", JT_STRING, 0, FULL_NAME_MAX },
    { "role", JT_STRING, JF_REQUIRED, 16 },
    { "password", JT_STRING, JF_REQUIRED, 256 },
    { "disabled", JT_BOOL, 0, 0 },
    { "sites", JT_STRING_ARRAY, 0, USER_SITES_MAX },
    { NULL, 0, 0, 0 },
};

static const struct json_field update_fields[] = {
    { "full_name", JT_STRING, 0, FULL_NAME_MAX },
    { "role", JT_STRING, 0, 16 },
    { "password", JT_STRING, 0, 256 },
    { "disabled", JT_BOOL, 0, 0 },
    { "sites", JT_STRING_ARRAY, 0, USER_SITES_MAX },
    { NULL, 0, 0, 0 },
};

/* Fill a user_input from a body that json_check_fields() has already validated. */
static void input_from_json(const json_t *body, struct user_input *in)
{
    json_t *v;
    size_t i;

    memset(in, 0, sizeof(*in));
    in->username = json_get_string(body, "username");
    in->full_name = json_get_string(body, "full_name");
    in->role = json_get_string(body, "role");
    in->password = json_get_string(body, "password");
    if ((v = json_object_get(body, "disabled")) != NULL) {
        in->has_disabled = 1;
        in->disabled = json_is_true(v);
    }
    if ((v = json_object_get(body, "sites")) != NULL) {
        in->has_sites = 1;
        for (i = 0; i < json_array_size(v) && i < USER_SITES_MAX; i++)
            in->sites[in->nsites++] = json_string_value(json_array_get(v, i));
    }
}

void api_users_list(struct request *req)
{
    struct err e;
    json_t *out;

    err_clear(&e);
    out = users_list(req->db, &req->caller, &e);
    if (out == NULL)
        reply_error(req, &e);
    else
        reply_json(req, 200, out);
}

static void users_write(struct request *req, const struct json_field *fields, int creating)
{
    struct user_input in;
    struct err e;
    json_t *body, *out;

    err_clear(&e);
    body = req_json_body(req, fields);
    if (body == NULL)
        return;
    input_from_json(body, &in);
    out = creating ? users_create(req->db, &req->caller, &in, &e)
                   : users_update(req->db, &req->caller, req_param(req, 0), &in, &e);
    json_decref(body);
    if (out == NULL)
        reply_error(req, &e);
    else
        reply_json(req, creating ? 201 : 200, out);
}

void api_users_create(struct request *req)
{
    users_write(req, create_fields, 1);
}

void api_users_update(struct request *req)
{
    users_write(req, update_fields, 0);
}
