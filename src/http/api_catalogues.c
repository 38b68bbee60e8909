/* api_catalogues.c — GET /api/v1/catalogues/{kind}?q=&lang=&limit=: search the shipped ICD-10, medicines and
 * HIS-category catalogues (docs/api.md, "Catalogues"). */
#include <stdint.h>

#include "core/util.h"
#include "http/http.h"
#include "services/catalogue.h"

#define CATALOGUE_LIMIT_DEFAULT 20

void api_catalogues_search(struct request *req)
{
    const char *limit_s = req_query(req, "limit"), *lang = req_query(req, "lang"), *errstr;
    enum catalogue_kind kind;
    int64_t limit = CATALOGUE_LIMIT_DEFAULT;
    struct err e;

    if (catalogue_kind_parse(req_param(req, 0), &kind) < 0) {
        reply_error_code(req, 404, "catalogue_not_found",
                         "there is no such catalogue; use icd10, medicines or his-categories");
        return;
    }
    if (limit_s && parse_int64(limit_s, 1, CATALOGUE_LIMIT_MAX, &limit, &errstr) < 0) {
        reply_error_code(req, 400, "invalid_limit", "limit must be a whole number from 1 to %d",
                         CATALOGUE_LIMIT_MAX);
        return;
    }
    err_clear(&e);
    reply_result(req, 200, catalogue_search(kind, req_query(req, "q"), lang ? lang : "en", (int)limit, &e), &e);
}
