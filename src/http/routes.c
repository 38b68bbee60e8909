/* routes.c — the API route table: method, path, handler, permission and body limit, as data.
 * The router enforces the permission and the limit before any handler runs; docs/api.md lists the same
 * routes, and tests/t/t0300-authz-matrix.sh checks every route against every role. */
#include "http/http.h"

const struct route routes[] = {
    { "GET",    "/healthz",            api_health,          PERM_PUBLIC,       0 },
    { "POST",   "/api/v1/session",     api_session_create,  PERM_PUBLIC,       4096 },
    { "DELETE", "/api/v1/session",     api_session_delete,  PERM_SESSION,      0 },
    { "GET",    "/api/v1/me",          api_me,              PERM_SESSION,      0 },
    { "GET",    "/api/v1/users",       api_users_list,      PERM_USERS_MANAGE, 0 },
    { "POST",   "/api/v1/users",       api_users_create,    PERM_USERS_MANAGE, 16384 },
    { "PATCH",  "/api/v1/users/{id}",  api_users_update,    PERM_USERS_MANAGE, 16384 },
    { "GET",    "/api/v1/sites",       api_sites_list,      PERM_SITES_MANAGE, 0 },
    { "POST",   "/api/v1/sites",       api_sites_create,    PERM_SITES_MANAGE, 4096 },
    { "GET",    "/api/v1/audit",       api_audit_list,      PERM_AUDIT_READ,   0 },
    { "POST",   "/api/v1/patients",          api_patients_create, PERM_PATIENT_WRITE,  65536 },
    { "GET",    "/api/v1/patients",          api_patients_search, PERM_PATIENT_READ,   0 },
    { "POST",   "/api/v1/patients/match",    api_patients_match,  PERM_PATIENT_READ,   65536 },
    { "GET",    "/api/v1/patients/{id}",     api_patients_get,    PERM_PATIENT_READ,   0 },
    { "PATCH",  "/api/v1/patients/{id}",     api_patients_update, PERM_PATIENT_WRITE,  65536 },
    { "DELETE", "/api/v1/patients/{id}",     api_patients_delete, PERM_PATIENT_DELETE, 0 },
    { "GET",    "/api/v1/registration-fields", api_regfields_get, PERM_PATIENT_READ,   0 },
    { "PUT",    "/api/v1/registration-fields", api_regfields_put, PERM_SITES_MANAGE,   65536 },
};

const size_t routes_count = sizeof(routes) / sizeof(routes[0]);
