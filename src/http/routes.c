/* routes.c — the API route table: method, path, handler, permission and body limit, as data.
 * The router enforces the permission and the limit before any handler runs; docs/api.md lists the same
 * routes, and tests/t/t0300-authz-matrix.sh checks every route against every role. */
#include "http/http.h"
#include "services/sync.h"

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
    { "GET", "/api/v1/catalogues/{kind}", api_catalogues_search, PERM_PATIENT_READ, 0 },
    { "GET",    "/api/v1/forms",             api_forms_list,      PERM_CLINICAL_READ,  0 },
    { "POST",   "/api/v1/forms",             api_forms_create,    PERM_FORMS_MANAGE,   1 << 20 },
    { "POST",   "/api/v1/forms/import",      api_forms_import,    PERM_FORMS_MANAGE,   1 << 20 },
    { "GET",    "/api/v1/forms/{id}",        api_forms_get,       PERM_CLINICAL_READ,  0 },
    { "PUT",    "/api/v1/forms/{id}",        api_forms_update,    PERM_FORMS_MANAGE,   1 << 20 },
    { "GET",    "/api/v1/forms/{id}/versions", api_forms_versions, PERM_CLINICAL_READ, 0 },
    { "POST",   "/api/v1/patients/{id}/encounters", api_encounters_create, PERM_CLINICAL_WRITE, 16384 },
    { "GET",    "/api/v1/patients/{id}/encounters", api_encounters_list,   PERM_CLINICAL_READ,  0 },
    { "GET",    "/api/v1/encounters/{id}",   api_encounters_get,    PERM_CLINICAL_READ,  0 },
    { "PATCH",  "/api/v1/encounters/{id}",   api_encounters_update, PERM_CLINICAL_WRITE, 16384 },
    { "POST",   "/api/v1/encounters/{id}/entries", api_entries_create, PERM_CLINICAL_WRITE, 1 << 20 },
    { "GET",    "/api/v1/entries/{id}",      api_entries_get,     PERM_CLINICAL_READ,  0 },
    { "POST",   "/api/v1/entries/{id}/entered-in-error", api_entries_withdraw, PERM_CLINICAL_WRITE, 4096 },
    { "POST",   "/api/v1/peers/enroll",      api_peers_enroll,    PERM_PUBLIC,         4096 },
    { "POST",   "/api/v1/sync/nonce",        api_sync_nonce,      PERM_PUBLIC,         0 },
    { "POST",   "/api/v1/sync/pull",         api_sync_pull,       PERM_PEER,           1 << 20 },
    { "POST",   "/api/v1/sync/push",         api_sync_push,       PERM_PEER,           SYNC_MAX_COMPRESSED_BYTES },
    { "GET",    "/api/v1/sync/status",       api_sync_status,     PERM_SYNC_MANAGE,    0 },
    { "GET",    "/api/v1/conflicts",         api_conflicts_list,  PERM_SYNC_MANAGE,    0 },
    { "POST",   "/api/v1/conflicts/{id}/resolve", api_conflicts_resolve, PERM_SYNC_MANAGE, 1024 },
};

const size_t routes_count = sizeof(routes) / sizeof(routes[0]);
