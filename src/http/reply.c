/* reply.c — every byte the API writes goes through here: JSON bodies (escaped by Jansson), the error
 * envelope {"error":{"code","message"}}, and the headers every response carries. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/log.h"
#include "http/http.h"

unsigned http_status_for(enum err_kind kind)
{
    switch (kind) {
    case ERR_NONE: return 200;
    case ERR_INVALID: return 400;
    case ERR_UNAUTHENTICATED: return 401;
    case ERR_FORBIDDEN: return 403;
    case ERR_NOT_FOUND: return 404;
    case ERR_CONFLICT: return 409;
    case ERR_TOO_LARGE: return 413;
    case ERR_UNPROCESSABLE: return 422;
    case ERR_THROTTLED: return 429;
    case ERR_INTERNAL: return 500;
    case ERR_UNSUPPORTED_MEDIA: return 415;
    }
    return 500;
}

static void reply_take(struct request *req, struct MHD_Response *r, unsigned status, const char *content_type);

static void reply_make(struct request *req, unsigned status, const char *content_type, void *data, size_t len,
                       enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r;

    if (req->response) {
        log_error("http: second reply for one request (%s)", req->route ? req->route->pattern : "static");
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(data);
        return;
    }
    r = MHD_create_response_from_buffer(len, data, mode);
    if (r == NULL)
        log_fatal("http: out of memory creating a response");
    reply_take(req, r, status, content_type);
}

/* Make r (a new response) the request's reply, with the headers every response carries. */
static void reply_take(struct request *req, struct MHD_Response *r, unsigned status, const char *content_type)
{
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Request-Id", req->caller.request_id);
    req->response = r;
    req->status = status;
}

void reply_bytes(struct request *req, unsigned status, const char *content_type, const void *data, size_t len,
                 int persistent)
{
    reply_make(req, status, content_type, (void *)data, len, persistent ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
}

void http_content_disposition(const char *name, char *out, size_t outlen)
{
    /* RFC 8187 attr-char: what may stand unencoded in filename* */
    static const char attr[] = "!#$&+-.^_`|~";
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)name;
    size_t n = strlen(name), i, o = 0, room = outlen > 0 ? outlen - 1 : 0;
    const char *s;

    if (n > HTTP_DISPOSITION_NAME_MAX) {
        n = HTTP_DISPOSITION_NAME_MAX;
        while (n > 0 && (p[n] & 0xc0) == 0x80)
            n--;    /* cut at a character boundary */
    }
#define PUT(c) do { if (o < room) out[o++] = (char)(c); } while (0)
    for (s = "attachment; filename=\""; *s; s++)
        PUT(*s);
    /* the fallback for old clients: ASCII only, and nothing that could end the quoted string or be decoded
     * again ('"', '\\', '%'); each non-ASCII character becomes one '_' */
    for (i = 0; i < n; i++) {
        if ((p[i] & 0xc0) == 0x80)
            continue;
        PUT((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9')
            || strchr(" .-_()[]+,=@", p[i]) ? p[i] : '_');
    }
    for (s = "\"; filename*=UTF-8''"; *s; s++)
        PUT(*s);
    for (i = 0; i < n; i++) {
        if ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9')
            || strchr(attr, p[i])) {
            PUT(p[i]);
        } else {
            PUT('%');
            PUT(hex[p[i] >> 4]);
            PUT(hex[p[i] & 15]);
        }
    }
#undef PUT
    if (outlen > 0)
        out[o] = '\0';
}

void reply_download(struct request *req, int fd, uint64_t size, const char *content_type, const char *name)
{
    char disposition[HTTP_DISPOSITION_MAX];
    struct MHD_Response *r;

    if (req->response) {
        log_error("http: second reply for one request (%s)", req->route ? req->route->pattern : "static");
        close(fd);
        return;
    }
    /* streamed from the file by libmicrohttpd, which closes fd when the response is destroyed */
    r = MHD_create_response_from_fd64(size, fd);
    if (r == NULL) {
        close(fd);
        reply_error_code(req, 500, "internal_error", "the server failed to answer; try again");
        return;
    }
    reply_take(req, r, 200, content_type);
    http_content_disposition(name, disposition, sizeof(disposition));
    MHD_add_response_header(r, "Content-Disposition", disposition);
    /* opened in a tab anyway, it may run nothing, load nothing and reach no other page of the node */
    MHD_add_response_header(r, "Content-Security-Policy", "sandbox; default-src 'none'");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

void reply_json(struct request *req, unsigned status, json_t *body)
{
    /* numbers to 15 significant digits: 37.8 reads "37.8", not its nearest double's 17 digits (values a
     * client sends have at most 6 decimals, so this is exact for them) */
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    size_t len = s ? strlen(s) : 0;

    json_decref(body);
    if (s == NULL)
        log_fatal("http: out of memory serialising a response");
    /* the response takes ownership of s */
    reply_make(req, status, "application/json; charset=utf-8", s, len, MHD_RESPMEM_MUST_FREE);
    if (req->response)
        MHD_add_response_header(req->response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

void reply_error(struct request *req, const struct err *e)
{
    json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", e->code[0] ? e->code : "internal_error",
                             "message", e->message[0] ? e->message : "something went wrong");
    char retry[16];

    if (body == NULL)
        log_fatal("http: out of memory building an error");
    if (e->field[0])
        json_object_set_new(json_object_get(body, "error"), "field", json_string(e->field));
    reply_json(req, http_status_for(e->kind), body);
    if (e->kind == ERR_THROTTLED && e->retry_after > 0 && req->response) {
        snprintf(retry, sizeof(retry), "%d", e->retry_after);
        MHD_add_response_header(req->response, MHD_HTTP_HEADER_RETRY_AFTER, retry);
    }
}

void reply_result(struct request *req, unsigned status, json_t *out, const struct err *e)
{
    if (out == NULL)
        reply_error(req, e);
    else
        reply_json(req, status, out);
}

void reply_error_fields(struct request *req, const struct err *e, json_t *fields)
{
    json_t *body = json_pack("{s:{s:s,s:s,s:o}}", "error", "code", e->code[0] ? e->code : "invalid_input",
                             "message", e->message[0] ? e->message : "some fields are not valid", "fields",
                             fields ? fields : json_object());

    if (body == NULL)
        log_fatal("http: out of memory building an error");
    reply_json(req, http_status_for(e->kind), body);
}

void reply_error_code(struct request *req, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    json_t *body;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    if (body == NULL)
        log_fatal("http: out of memory building an error");
    reply_json(req, status, body);
}

void reply_no_content(struct request *req)
{
    reply_make(req, 204, NULL, (void *)"", 0, MHD_RESPMEM_PERSISTENT);
}

void reply_add_header(struct request *req, const char *name, const char *value)
{
    if (req->response)
        MHD_add_response_header(req->response, name, value);
}

const char *req_header(struct request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *req_query(struct request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *req_param(struct request *req, int i)
{
    return i < req->nparams ? req->params[i] : NULL;
}

json_t *req_json_body(struct request *req, const struct json_field *fields)
{
    const char *ct = req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    struct err e;
    json_t *v;

    err_clear(&e);
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 || (ct[16] != '\0' && ct[16] != ';')) {
        reply_error_code(req, 415, "unsupported_media_type", "send the body as Content-Type: application/json");
        return NULL;
    }
    v = json_parse_object(req->body.data, req->body.len, &e);
    if (v == NULL) {
        reply_error(req, &e);
        return NULL;
    }
    if (fields && json_check_fields(v, fields, &e) < 0) {
        json_decref(v);
        reply_error(req, &e);
        return NULL;
    }
    return v;
}
