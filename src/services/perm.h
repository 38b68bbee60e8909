/* perm.h — roles, permissions and the matrix between them: the single place that decides who may do what.
 * The router checks a route's permission here before any handler runs; docs/security.md prints this
 * matrix (and `sanad help roles` prints it from this very table). */
#ifndef SANAD_PERM_H
#define SANAD_PERM_H

enum role {
    ROLE_ADMIN,
    ROLE_CLINICIAN,
    ROLE_REGISTRAR,
    ROLE_ANALYST,
    ROLE_VIEWER,
    ROLE_COUNT
};

enum perm {
    PERM_PUBLIC,            /* anyone, no session */
    PERM_SESSION,           /* any signed-in user: own account, sign out */
    PERM_PEER,              /* an enrolled peer node, authenticated by its request signature, never by a
                             * session: no role holds it (services/peers.h) */
    PERM_USERS_MANAGE,      /* list, create, change, disable accounts */
    PERM_SITES_MANAGE,      /* list and create sites */
    PERM_AUDIT_READ,        /* page through the audit log */
    PERM_PATIENT_READ,      /* names and demographics of patients of the user's sites */
    PERM_PATIENT_WRITE,     /* register and edit patients */
    PERM_PATIENT_DELETE,    /* soft-delete a patient */
    PERM_CLINICAL_READ,     /* visits, forms, chart */
    PERM_CLINICAL_WRITE,    /* record visits and form entries */
    PERM_EXPORT,            /* export or print a patient's record */
    PERM_AGGREGATE_READ,    /* counts and indicators, never names */
    PERM_SYNC_MANAGE,       /* replication status, review and resolve sync conflicts */
    PERM_FORMS_MANAGE,      /* make forms and new versions of forms, import XLSForms */
    PERM_COUNT
};

const char *role_name(enum role r);
/* 0 and *out set when s names a role; -1 otherwise. */
int role_parse(const char *s, enum role *out);

const char *perm_name(enum perm p);
const char *perm_description(enum perm p);
/* 1 when role r holds permission p. PERM_PUBLIC and PERM_SESSION hold for every role; PERM_PEER for none
 * (a peer node is not a user: the router checks its signature instead). */
int perm_allows(enum role r, enum perm p);

#endif
