/* api_health.c — GET /healthz: liveness for load balancers and service managers; no session needed. */
#include "http/http.h"

void api_health(struct request *req)
{
    reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}
