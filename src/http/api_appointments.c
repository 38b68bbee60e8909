/* api_appointments.c — appointments: booking for a patient or as a visit's follow-up, the day's queue of a
 * site, reading and changing one (arrive, fulfil, cancel, reschedule, notes). */
#include "core/util.h"
#include "http/http.h"
#include "services/appointments.h"

void api_appointments_create(struct request *req)
{
    json_t *body = req_json_body(req, appointments_book_fields), *out;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    out = appointments_create(req->db, &req->caller, req_param(req, 0), body, &e);
    json_decref(body);
    reply_result(req, 201, out, &e);
}

void api_appointments_follow_up(struct request *req)
{
    json_t *body = req_json_body(req, appointments_follow_up_fields), *out;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    out = appointments_follow_up(req->db, &req->caller, req_param(req, 0), body, &e);
    json_decref(body);
    reply_result(req, 201, out, &e);
}

void api_appointments_list(struct request *req)
{
    const char *limit = req_query(req, "limit"), *errstr;
    int64_t n = 20;
    struct err e;

    if (limit && parse_int64(limit, 1, APPOINTMENTS_PAGE_MAX, &n, &errstr) < 0) {
        reply_error_code(req, 400, "invalid_limit", "limit must be a whole number from 1 to %d", APPOINTMENTS_PAGE_MAX);
        return;
    }
    err_clear(&e);
    reply_result(req, 200, appointments_list(req->db, &req->caller, req_param(req, 0), req_query(req, "cursor"), n,
                                             &e), &e);
}

void api_appointments_queue(struct request *req)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, appointments_queue(req->db, &req->caller, req_query(req, "site"), req_query(req, "date"),
                                              &e), &e);
}

void api_appointments_get(struct request *req)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, appointments_get(req->db, &req->caller, req_param(req, 0), &e), &e);
}

void api_appointments_update(struct request *req)
{
    json_t *body = req_json_body(req, appointments_update_fields), *out;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    out = appointments_update(req->db, &req->caller, req_param(req, 0), body, &e);
    json_decref(body);
    reply_result(req, 200, out, &e);
}
