/* api_audit.c — GET /api/v1/audit?cursor=..&limit=.. (admins): the audit log, oldest first, paged. */
#include "core/util.h"
#include "http/http.h"
#include "services/audit.h"

void api_audit_list(struct request *req)
{
    const char *limit_s = req_query(req, "limit"), *errstr;
    int64_t limit = 100;
    struct err e;
    json_t *out;

    err_clear(&e);
    if (limit_s && parse_int64(limit_s, 1, 500, &limit, &errstr) < 0) {
        reply_error_code(req, 400, "invalid_limit", "limit must be a whole number from 1 to 500");
        return;
    }
    out = audit_page(req->db, req_query(req, "cursor"), limit, &e);
    if (out == NULL)
        reply_error(req, &e);
    else
        reply_json(req, 200, out);
}
