/* api_encounters.c — encounters (visits) of a patient and the form entries recorded in them. */
#include "core/util.h"
#include "http/http.h"
#include "services/encounters.h"

void api_encounters_create(struct request *req)
{
    json_t *body = req_json_body(req, encounters_input_fields), *out;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    out = encounters_create(req->db, &req->caller, req_param(req, 0), body, &e);
    json_decref(body);
    reply_result(req, 201, out, &e);
}

void api_encounters_list(struct request *req)
{
    const char *limit = req_query(req, "limit"), *errstr;
    int64_t n = 20;
    struct err e;

    if (limit && parse_int64(limit, 1, ENCOUNTERS_PAGE_MAX, &n, &errstr) < 0) {
        reply_error_code(req, 400, "invalid_limit", "limit must be a whole number from 1 to %d", ENCOUNTERS_PAGE_MAX);
        return;
    }
    err_clear(&e);
    reply_result(req, 200, encounters_list(req->db, &req->caller, req_param(req, 0), req_query(req, "cursor"), n, &e),
                 &e);
}

void api_encounters_get(struct request *req)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, encounters_get(req->db, &req->caller, req_param(req, 0), req_query(req, "lang"), &e), &e);
}

void api_encounters_update(struct request *req)
{
    json_t *body = req_json_body(req, encounters_input_fields), *out;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    out = encounters_update(req->db, &req->caller, req_param(req, 0), body, &e);
    json_decref(body);
    reply_result(req, 200, out, &e);
}

void api_entries_create(struct request *req)
{
    json_t *body = req_json_body(req, entries_input_fields), *out, *fields = NULL;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    out = entries_create(req->db, &req->caller, req_param(req, 0), body, &fields, &e);
    json_decref(body);
    if (out == NULL && fields)
        reply_error_fields(req, &e, fields);
    else
        reply_result(req, 201, out, &e);
}

void api_entries_get(struct request *req)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, entries_get(req->db, &req->caller, req_param(req, 0), req_query(req, "lang"), &e), &e);
}

void api_entries_withdraw(struct request *req)
{
    json_t *body = req_json_body(req, entries_withdraw_fields), *out;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    out = entries_withdraw(req->db, &req->caller, req_param(req, 0), body, &e);
    json_decref(body);
    reply_result(req, 200, out, &e);
}
