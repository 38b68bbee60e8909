/* api_chart.c — the patient chart: problems, allergies, reported medications and immunizations (one
 * generic set of handlers per kind), the immunization plan, the summary and the timeline. */
#include <string.h>

#include "core/util.h"
#include "http/http.h"
#include "services/chart.h"

static void chart_create_reply(struct request *req, const char *kind)
{
    json_t *body = req_json_body(req, NULL), *out;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    out = chart_create(req->db, &req->caller, kind, req_param(req, 0), body, &e);
    json_decref(body);
    reply_result(req, 201, out, &e);
}

static void chart_update_reply(struct request *req, const char *kind)
{
    json_t *body = req_json_body(req, NULL), *out;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    out = chart_update(req->db, &req->caller, kind, req_param(req, 0), body, &e);
    json_decref(body);
    reply_result(req, 200, out, &e);
}

static void chart_list_reply(struct request *req, const char *kind)
{
    const char *all = req_query(req, "all");
    struct err e;

    if (all && strcmp(all, "1") != 0 && strcmp(all, "0") != 0) {
        reply_error_code(req, 400, "invalid_all", "all is 1 (list entered-in-error items too) or 0");
        return;
    }
    err_clear(&e);
    reply_result(req, 200, chart_list(req->db, &req->caller, kind, req_param(req, 0), all && all[0] == '1', &e), &e);
}

static void chart_get_reply(struct request *req, const char *kind)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, chart_get(req->db, &req->caller, kind, req_param(req, 0), &e), &e);
}

/* the four handlers of one kind of chart item */
#define CHART_HANDLERS(plural, kind) \
    void api_##plural##_create(struct request *req) { chart_create_reply(req, kind); } \
    void api_##plural##_list(struct request *req) { chart_list_reply(req, kind); } \
    void api_##plural##_get(struct request *req) { chart_get_reply(req, kind); } \
    void api_##plural##_update(struct request *req) { chart_update_reply(req, kind); }

CHART_HANDLERS(problems, "problem")
CHART_HANDLERS(allergies, "allergy")
CHART_HANDLERS(medications, "medication")
CHART_HANDLERS(immunizations, "immunization")

void api_immunizations_due(struct request *req)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, chart_immunizations_due(req->db, &req->caller, req_param(req, 0), &e), &e);
}

void api_patient_summary(struct request *req)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, chart_summary(req->db, &req->caller, req_param(req, 0), &e), &e);
}

void api_patient_timeline(struct request *req)
{
    const char *limit = req_query(req, "limit"), *errstr;
    int64_t n = 20;
    struct err e;

    if (limit && parse_int64(limit, 1, TIMELINE_PAGE_MAX, &n, &errstr) < 0) {
        reply_error_code(req, 400, "invalid_limit", "limit must be a whole number from 1 to %d", TIMELINE_PAGE_MAX);
        return;
    }
    err_clear(&e);
    reply_result(req, 200, chart_timeline(req->db, &req->caller, req_param(req, 0), req_query(req, "cursor"), n, &e),
                 &e);
}

/* The site asked for (?site=ID), or the caller's first; NULL after replying when it is not theirs. */
static const char *schedule_site(struct request *req)
{
    const char *site = req_query(req, "site");

    if (site == NULL) {
        if (req->caller.nsites > 0)
            return req->caller.sites[0];
        reply_error_code(req, 400, "missing_site", "give ?site=ID; your account belongs to no site");
        return NULL;
    }
    if (!caller_has_site(&req->caller, site)) {
        reply_error_code(req, 403, "site_not_allowed", "you do not belong to that site");
        return NULL;
    }
    return site;
}

void api_schedule_get(struct request *req)
{
    const char *site = schedule_site(req);
    struct err e;

    if (site == NULL)
        return;
    err_clear(&e);
    reply_result(req, 200, chart_schedule_get(req->db, &req->caller, site, &e), &e);
}

void api_schedule_put(struct request *req)
{
    const char *site = schedule_site(req);
    json_t *body, *out;
    struct err e;

    if (site == NULL || (body = req_json_body(req, NULL)) == NULL)
        return;
    err_clear(&e);
    out = chart_schedule_put(req->db, &req->caller, site, body, &e);
    json_decref(body);
    reply_result(req, 200, out, &e);
}
