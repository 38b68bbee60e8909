/* api_documents.c — documents of a patient: raw-body upload, metadata, listing, download, entered in error.
 *
 * The upload is the one API body that is not JSON: the file's bytes, with their own Content-Type, and the
 * metadata in the query (?title=&filename=&encounter=). The route's body limit (DOCUMENT_MAX_BYTES) is
 * enforced by the server before the handler runs, and the session is checked before the body is read. */
#include <microhttpd.h>

#include "core/util.h"
#include "http/http.h"
#include "services/documents.h"

void api_documents_upload(struct request *req)
{
    struct document_upload in;
    struct err e;

    err_clear(&e);
    in.content_type = req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    in.data = req->body.data;
    in.len = req->body.len;
    in.title = req_query(req, "title");
    in.filename = req_query(req, "filename");
    in.encounter_id = req_query(req, "encounter");
    if (in.encounter_id && *in.encounter_id == '\0')
        in.encounter_id = NULL;
    reply_result(req, 201, documents_upload(req->db, &req->caller, req_param(req, 0), &in, &e), &e);
}

void api_documents_list(struct request *req)
{
    const char *limit = req_query(req, "limit"), *errstr;
    int64_t n = 20;
    struct err e;

    if (limit && parse_int64(limit, 1, DOCUMENTS_PAGE_MAX, &n, &errstr) < 0) {
        reply_error_code(req, 400, "invalid_limit", "limit must be a whole number from 1 to %d", DOCUMENTS_PAGE_MAX);
        return;
    }
    err_clear(&e);
    reply_result(req, 200, documents_list(req->db, &req->caller, req_param(req, 0), req_query(req, "cursor"), n, &e),
                 &e);
}

void api_documents_get(struct request *req)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, documents_get(req->db, &req->caller, req_param(req, 0), &e), &e);
}

void api_documents_content(struct request *req)
{
    struct document_content c;
    struct err e;

    err_clear(&e);
    if (documents_open_content(req->db, &req->caller, req_param(req, 0), &c, &e) < 0) {
        reply_error(req, &e);
        return;
    }
    reply_download(req, c.fd, c.size, c.content_type, c.download_name);
}

void api_documents_withdraw(struct request *req)
{
    json_t *body = req_json_body(req, documents_withdraw_fields), *out;
    struct err e;

    if (body == NULL)
        return;
    err_clear(&e);
    out = documents_withdraw(req->db, &req->caller, req_param(req, 0), body, &e);
    json_decref(body);
    reply_result(req, 200, out, &e);
}
