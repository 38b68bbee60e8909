/* test_router.c — unit tests of route matching (http/router.c router_match over the table in
 * http/routes.c): every pattern matches its own method and path, {name} segments are captured, a known
 * path with the wrong method is told apart from an unknown path, and near-misses (trailing slash, empty
 * or extra segments, case) match nothing. */
#include "testutil.h"

#include "http/http.h"

/* Match and return the route; *known and the captured parameters (copied, NUL-terminated at the next
 * '/' the way the server does) are filled. */
static const struct route *match(const char *method, const char *path, int *known, char params[][64],
                                 int *nparams)
{
    const char *raw[ROUTE_MAX_PARAMS];
    const struct route *r;
    int i;

    *known = -1;
    *nparams = -1;
    r = router_match(method, path, raw, nparams, known);
    assert_true(*known == 0 || *known == 1);
    assert_true(*nparams >= 0 && *nparams <= ROUTE_MAX_PARAMS);
    for (i = 0; r && i < *nparams; i++)
        snprintf(params[i], 64, "%.*s", (int)strcspn(raw[i], "/"), raw[i]);
    return r;
}

static void expect_route(const char *method, const char *path, const char *pattern)
{
    char params[ROUTE_MAX_PARAMS][64];
    const struct route *r;
    int known, n;

    r = match(method, path, &known, params, &n);
    if (r == NULL)
        fail_msg("%s %s matched no route (path_known=%d)", method, path, known);
    assert_string_equal(r->method, method);
    assert_string_equal(r->pattern, pattern);
    assert_int_equal(known, 1);
}

static void expect_wrong_method(const char *method, const char *path)
{
    char params[ROUTE_MAX_PARAMS][64];
    int known, n;

    if (match(method, path, &known, params, &n) != NULL)
        fail_msg("%s %s matched a route", method, path);
    if (known != 1)
        fail_msg("%s %s: the path should be known (405), got path_known=%d", method, path, known);
}

static void expect_unknown(const char *method, const char *path)
{
    char params[ROUTE_MAX_PARAMS][64];
    int known, n;

    if (match(method, path, &known, params, &n) != NULL)
        fail_msg("%s %s matched a route", method, path);
    if (known != 0)
        fail_msg("%s %s: the path should be unknown (404), got path_known=1", method, path);
}

/* Every entry of the table is reachable: its own method and a concrete path (each {name} replaced by a
 * value) lead back to exactly that entry, with the values captured in order. */
static void test_every_route_matches_itself(void **state)
{
    size_t i;

    (void)state;
    assert_true(routes_count >= 10);
    for (i = 0; i < routes_count; i++) {
        char path[256], params[ROUTE_MAX_PARAMS][64], want[ROUTE_MAX_PARAMS][64];
        const char *p = routes[i].pattern;
        const struct route *r;
        size_t len = 0;
        int nwant = 0, known, n, k;

        while (*p) {
            if (*p == '{') {
                snprintf(want[nwant], 64, "value-%d-%zu", nwant, i);
                len += (size_t)snprintf(path + len, sizeof(path) - len, "%s", want[nwant]);
                nwant++;
                p = strchr(p, '}');
                assert_non_null(p);
                p++;
            } else {
                path[len++] = *p++;
                path[len] = '\0';
            }
        }
        path[len] = '\0';
        r = match(routes[i].method, path, &known, params, &n);
        if (r != &routes[i])
            fail_msg("%s %s (from %s) did not match its own table entry", routes[i].method, path,
                     routes[i].pattern);
        assert_int_equal(known, 1);
        assert_int_equal(n, nwant);
        for (k = 0; k < n; k++)
            assert_string_equal(params[k], want[k]);
    }
}

static void test_known_routes(void **state)
{
    (void)state;
    expect_route("GET", "/healthz", "/healthz");
    expect_route("POST", "/api/v1/session", "/api/v1/session");
    expect_route("DELETE", "/api/v1/session", "/api/v1/session");
    expect_route("GET", "/api/v1/me", "/api/v1/me");
    expect_route("GET", "/api/v1/users", "/api/v1/users");
    expect_route("POST", "/api/v1/users", "/api/v1/users");
    expect_route("PATCH", "/api/v1/users/0190f3a2-7b1c-7d4e-8f00-123456789abc", "/api/v1/users/{id}");
    expect_route("GET", "/api/v1/sites", "/api/v1/sites");
    expect_route("POST", "/api/v1/sites", "/api/v1/sites");
    expect_route("GET", "/api/v1/audit", "/api/v1/audit");
}

static void test_param_captured(void **state)
{
    char params[ROUTE_MAX_PARAMS][64];
    const struct route *r;
    int known, n;

    (void)state;
    r = match("PATCH", "/api/v1/users/0190f3a2-7b1c-7d4e-8f00-123456789abc", &known, params, &n);
    assert_non_null(r);
    assert_int_equal(n, 1);
    assert_string_equal(params[0], "0190f3a2-7b1c-7d4e-8f00-123456789abc");
    /* the router does not judge the value; any non-empty segment is captured */
    r = match("PATCH", "/api/v1/users/x", &known, params, &n);
    assert_non_null(r);
    assert_int_equal(n, 1);
    assert_string_equal(params[0], "x");
    r = match("PATCH", "/api/v1/users/%2e%2e", &known, params, &n);
    assert_non_null(r);
    assert_string_equal(params[0], "%2e%2e");
    /* routes without parameters capture none */
    r = match("GET", "/api/v1/users", &known, params, &n);
    assert_non_null(r);
    assert_int_equal(n, 0);
}

static void test_wrong_method(void **state)
{
    (void)state;
    expect_wrong_method("POST", "/healthz");
    expect_wrong_method("PUT", "/healthz");
    expect_wrong_method("GET", "/api/v1/session");
    expect_wrong_method("PATCH", "/api/v1/session");
    expect_wrong_method("POST", "/api/v1/me");
    expect_wrong_method("DELETE", "/api/v1/users");
    expect_wrong_method("PUT", "/api/v1/users");
    expect_wrong_method("GET", "/api/v1/users/0190f3a2-7b1c-7d4e-8f00-123456789abc");
    expect_wrong_method("DELETE", "/api/v1/users/abc");
    expect_wrong_method("DELETE", "/api/v1/sites");
    expect_wrong_method("POST", "/api/v1/audit");
    /* methods are case-sensitive (RFC 9110) */
    expect_wrong_method("get", "/healthz");
    expect_wrong_method("", "/healthz");
}

/* HEAD is answered by the GET route of the same path (libmicrohttpd drops the body), and only by one. */
static void test_head_uses_get_routes(void **state)
{
    char params[ROUTE_MAX_PARAMS][64];
    const struct route *r;
    int known, n;

    (void)state;
    r = match("HEAD", "/healthz", &known, params, &n);
    assert_non_null(r);
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->pattern, "/healthz");
    r = match("HEAD", "/api/v1/users", &known, params, &n);
    assert_non_null(r);
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->pattern, "/api/v1/users");
    /* no GET route there: HEAD is a wrong method too */
    expect_wrong_method("HEAD", "/api/v1/session");
    expect_wrong_method("HEAD", "/api/v1/users/abc");
    expect_unknown("HEAD", "/api/v1/nope");
}

static void test_unknown_paths(void **state)
{
    (void)state;
    expect_unknown("GET", "/");
    expect_unknown("GET", "");
    expect_unknown("GET", "/api/v1/nope");
    expect_unknown("GET", "/api/v1");
    expect_unknown("GET", "/api/v1/");
    expect_unknown("GET", "/api/v2/users");
    expect_unknown("GET", "/api/v1/userss");
    expect_unknown("GET", "/api/v1/user");
    expect_unknown("GET", "/API/v1/users");
    expect_unknown("GET", "/healthzz");
    expect_unknown("GET", "/health");
    expect_unknown("GET", "healthz");
    expect_unknown("GET", "//healthz");
    expect_unknown("GET", "/api/v1/users/abc/def");
    expect_unknown("PATCH", "/api/v1/users/abc/def");
    expect_unknown("GET", "/index.html");
}

static void test_trailing_slash(void **state)
{
    (void)state;
    expect_unknown("GET", "/healthz/");
    expect_unknown("GET", "/api/v1/users/");
    expect_unknown("POST", "/api/v1/session/");
    expect_unknown("PATCH", "/api/v1/users/abc/");
    expect_unknown("GET", "/api/v1/me/");
}

static void test_empty_segment_for_param(void **state)
{
    (void)state;
    /* {id} needs at least one character */
    expect_unknown("PATCH", "/api/v1/users/");
    expect_unknown("PATCH", "/api/v1/users//");
    expect_unknown("PATCH", "/api/v1/users//abc");
    /* "/api/v1/users" itself is a different route, so PATCH on it is a known path with a wrong method */
    expect_wrong_method("PATCH", "/api/v1/users");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_matches_itself),
        cmocka_unit_test(test_known_routes),
        cmocka_unit_test(test_param_captured),
        cmocka_unit_test(test_wrong_method),
        cmocka_unit_test(test_head_uses_get_routes),
        cmocka_unit_test(test_unknown_paths),
        cmocka_unit_test(test_trailing_slash),
        cmocka_unit_test(test_empty_segment_for_param),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
