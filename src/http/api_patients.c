/* api_patients.c — /api/v1/patients: register, search, read, change, delete, and duplicate matching. */
#include "core/util.h"
#include "http/http.h"
#include "services/patients.h"

void api_patients_create(struct request *req)
{
    struct err e;
    json_t *body = req_json_body(req, patients_input_fields), *out;

    if (body == NULL)
        return;
    err_clear(&e);
    out = patients_create(req->db, &req->caller, body, &e);
    json_decref(body);
    reply_result(req, 201, out, &e);
}

void api_patients_update(struct request *req)
{
    struct err e;
    json_t *body = req_json_body(req, patients_input_fields), *out;

    if (body == NULL)
        return;
    err_clear(&e);
    out = patients_update(req->db, &req->caller, req_param(req, 0), body, &e);
    json_decref(body);
    reply_result(req, 200, out, &e);
}

void api_patients_delete(struct request *req)
{
    struct err e;

    err_clear(&e);
    if (patients_delete(req->db, &req->caller, req_param(req, 0), &e) < 0)
        reply_error(req, &e);
    else
        reply_no_content(req);
}

void api_patients_get(struct request *req)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, patients_get(req->db, &req->caller, req_param(req, 0), &e), &e);
}

void api_patients_search(struct request *req)
{
    struct patient_query q = { 0 };
    const char *limit = req_query(req, "limit"), *errstr;
    struct err e;

    err_clear(&e);
    q.q = req_query(req, "q");
    q.sex = req_query(req, "sex");
    q.born_from = req_query(req, "born_from");
    q.born_to = req_query(req, "born_to");
    q.site = req_query(req, "site");
    q.cursor = req_query(req, "cursor");
    if (limit && parse_int64(limit, 1, PATIENTS_PAGE_MAX, &q.limit, &errstr) < 0) {
        reply_error_code(req, 400, "invalid_limit", "limit must be a whole number from 1 to %d", PATIENTS_PAGE_MAX);
        return;
    }
    reply_result(req, 200, patients_search(req->db, &req->caller, &q, &e), &e);
}

void api_patients_match(struct request *req)
{
    struct err e;
    json_t *body = req_json_body(req, patients_input_fields), *out;

    if (body == NULL)
        return;
    err_clear(&e);
    out = patients_match(req->db, &req->caller, body, &e);
    json_decref(body);
    reply_result(req, 200, out, &e);
}
