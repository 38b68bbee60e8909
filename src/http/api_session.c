/* api_session.c — POST /api/v1/session (sign in), DELETE /api/v1/session (sign out), GET /api/v1/me. */
#include <stdio.h>
#include <string.h>

#include <microhttpd.h>

#include "core/util.h"
#include "http/http.h"
#include "services/auth.h"
#include "services/users.h"

static const struct json_field login_fields[] = {
    { "username", JT_STRING, JF_REQUIRED, 256 },
    { "password", JT_STRING, JF_REQUIRED, 1024 },
    { NULL, 0, 0, 0 },
};

void api_session_create(struct request *req)
{
    struct login_result lr;
    char cookie[256], expires[32];
    json_t *body, *user, *out;
    struct err e;

    err_clear(&e);
    body = req_json_body(req, login_fields);
    if (body == NULL)
        return;
    if (auth_login(req->db, json_get_string(body, "username"), json_get_string(body, "password"), &req->caller,
                   &lr, &e) < 0) {
        json_decref(body);
        reply_error(req, &e);
        return;
    }
    json_decref(body);
    user = users_me(req->db, &req->caller, &e);
    if (user == NULL) {
        crypto_wipe(&lr, sizeof(lr));
        reply_error(req, &e);
        return;
    }
    format_time_ms(lr.expires_at, expires, sizeof(expires));
    out = json_pack("{s:s,s:s,s:s,s:o}", "token", lr.token, "csrf_token", lr.csrf, "expires_at", expires, "user",
                    user);
    reply_json(req, 201, out);
    snprintf(cookie, sizeof(cookie), "sanad_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s",
             lr.token, SESSION_ABSOLUTE_MS / 1000, req->tls ? "; Secure" : "");
    reply_add_header(req, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    crypto_wipe(&lr, sizeof(lr));
    crypto_wipe(cookie, sizeof(cookie));
}

void api_session_delete(struct request *req)
{
    struct err e;

    err_clear(&e);
    if (auth_logout(req->db, req->token, &req->caller, &e) < 0) {
        reply_error(req, &e);
        return;
    }
    reply_no_content(req);
    reply_add_header(req, MHD_HTTP_HEADER_SET_COOKIE,
                     "sanad_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
}

void api_me(struct request *req)
{
    struct err e;
    json_t *me;

    err_clear(&e);
    me = users_me(req->db, &req->caller, &e);
    if (me == NULL) {
        reply_error(req, &e);
        return;
    }
    /* a reloaded web page has its cookie but not the CSRF token it was given at sign-in */
    json_object_set_new(me, "csrf_token", json_string(req->csrf));
    reply_json(req, 200, me);
}
