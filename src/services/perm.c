/* perm.c — the permission matrix as data. Changing who may do what is a change to this table only. */
#include <string.h>

#include "services/perm.h"

#define R(x) (1u << (x))
#define ALL_ROLES (R(ROLE_ADMIN) | R(ROLE_CLINICIAN) | R(ROLE_REGISTRAR) | R(ROLE_ANALYST) | R(ROLE_VIEWER))

static const char *const role_names[ROLE_COUNT] = {
    [ROLE_ADMIN] = "admin",
    [ROLE_CLINICIAN] = "clinician",
    [ROLE_REGISTRAR] = "registrar",
    [ROLE_ANALYST] = "analyst",
    [ROLE_VIEWER] = "viewer",
};

static const struct {
    const char *name;
    unsigned roles;
    const char *description;
} perms[PERM_COUNT] = {
    [PERM_PUBLIC] = { "public", ALL_ROLES, "reachable without signing in" },
    [PERM_SESSION] = { "session", ALL_ROLES, "any signed-in user: own account, sign out" },
    [PERM_PEER] = { "peer", 0, "enrolled peer nodes only, by node signature (no user holds it)" },
    [PERM_USERS_MANAGE] = { "users.manage", R(ROLE_ADMIN), "list, create, change and disable accounts" },
    [PERM_SITES_MANAGE] = { "sites.manage", R(ROLE_ADMIN), "list and create sites" },
    [PERM_AUDIT_READ] = { "audit.read", R(ROLE_ADMIN), "read the audit log" },
    [PERM_PATIENT_READ] = { "patient.read", R(ROLE_ADMIN) | R(ROLE_CLINICIAN) | R(ROLE_REGISTRAR) | R(ROLE_VIEWER),
                            "find and read patients of the user's sites" },
    [PERM_PATIENT_WRITE] = { "patient.write", R(ROLE_ADMIN) | R(ROLE_CLINICIAN) | R(ROLE_REGISTRAR),
                             "register and edit patients" },
    [PERM_PATIENT_DELETE] = { "patient.delete", R(ROLE_ADMIN), "delete (tombstone) a patient" },
    [PERM_CLINICAL_READ] = { "clinical.read", R(ROLE_ADMIN) | R(ROLE_CLINICIAN) | R(ROLE_VIEWER),
                             "read visits, form entries and the chart" },
    [PERM_CLINICAL_WRITE] = { "clinical.write", R(ROLE_ADMIN) | R(ROLE_CLINICIAN),
                              "record visits and form entries" },
    [PERM_EXPORT] = { "export", R(ROLE_ADMIN) | R(ROLE_CLINICIAN), "export or print a patient's record" },
    [PERM_AGGREGATE_READ] = { "aggregate.read", R(ROLE_ADMIN) | R(ROLE_CLINICIAN) | R(ROLE_ANALYST),
                              "counts and indicators without names" },
    [PERM_FORMS_MANAGE] = { "forms.manage", R(ROLE_ADMIN), "make forms and new form versions, import XLSForms" },
    [PERM_SYNC_MANAGE] = { "sync.manage", R(ROLE_ADMIN), "see replication status; review and resolve sync conflicts" },
};

const char *role_name(enum role r)
{
    return (unsigned)r < ROLE_COUNT ? role_names[r] : "?";
}

int role_parse(const char *s, enum role *out)
{
    int i;

    for (i = 0; i < ROLE_COUNT; i++) {
        if (s && strcmp(s, role_names[i]) == 0) {
            *out = (enum role)i;
            return 0;
        }
    }
    return -1;
}

const char *perm_name(enum perm p)
{
    return (unsigned)p < PERM_COUNT ? perms[p].name : "?";
}

const char *perm_description(enum perm p)
{
    return (unsigned)p < PERM_COUNT ? perms[p].description : "?";
}

int perm_allows(enum role r, enum perm p)
{
    if ((unsigned)r >= ROLE_COUNT || (unsigned)p >= PERM_COUNT)
        return 0;
    return (perms[p].roles & R(r)) != 0;
}
