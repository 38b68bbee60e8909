/* static.c — the web app's files, served from the asset table compiled into the binary
 * (build/assets.c, generated from web/ by tools/embed.c). Nothing is ever read from disk, so no path
 * can reach outside the table. */
#include <string.h>

#include <microhttpd.h>

#include "http/assets.h"
#include "http/http.h"

void static_serve(struct request *req)
{
    const char *path = strcmp(req->path, "/") == 0 ? "/index.html" : req->path;
    const struct asset *a = asset_find(path);

    if (a == NULL) {
        reply_error_code(req, 404, "not_found", "no such page");
        return;
    }
    reply_bytes(req, 200, a->content_type, a->data, a->size, 1);
    reply_add_header(req, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    reply_add_header(req, "Content-Security-Policy",
                     "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
                     "base-uri 'none'; form-action 'self'");
    reply_add_header(req, "X-Frame-Options", "DENY");
    reply_add_header(req, "Referrer-Policy", "no-referrer");
}
