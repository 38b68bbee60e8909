/* fuzz_route.c — libFuzzer target for router_match(): the first line of the input is the method, the
 * rest the path. Checks the matcher's own promises: a returned route has the request's method (or is
 * the GET route answering a HEAD), path_known is set whenever a route is returned, and captured
 * parameters point inside the path.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *params[ROUTE_MAX_PARAMS];
    const struct route *r;
    const uint8_t *nl;
    char *method, *path;
    size_t mlen, plen;
    int nparams = -1, known = -1, i;

    if (size > 8192)
        return 0;
    nl = memchr(data, '\n', size);
    mlen = nl ? (size_t)(nl - data) : 0;
    plen = nl ? size - mlen - 1 : size;
    method = malloc(mlen + 1);
    path = malloc(plen + 1);
    if (method == NULL || path == NULL)
        abort();
    memcpy(method, data, mlen);
    method[mlen] = '\0';
    memcpy(path, nl ? nl + 1 : data, plen);
    path[plen] = '\0';

    r = router_match(method, path, params, &nparams, &known);
    if (known != 0 && known != 1)
        __builtin_trap();
    if (nparams < 0 || nparams > ROUTE_MAX_PARAMS)
        __builtin_trap();
    if (r != NULL) {
        /* the route's own method, or GET answering a HEAD (libmicrohttpd drops the body) */
        if (!known || (strcmp(r->method, method) != 0
                       && !(strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)))
            __builtin_trap();
        if (r < routes || r >= routes + routes_count)
            __builtin_trap();
        for (i = 0; i < nparams; i++)
            if (params[i] < path || params[i] > path + plen)
                __builtin_trap();
    }
    free(method);
    free(path);
    return 0;
}
