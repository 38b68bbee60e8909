/* caller.h — who is asking: the identity every service function takes, filled by auth_session() for
 * HTTP requests and by the command line for local administration. Plain storage, owned by the caller. */
#ifndef SANAD_CALLER_H
#define SANAD_CALLER_H

#include "core/id.h"
#include "services/perm.h"
#include "store/accounts.h"

struct caller {
    int authenticated;
    char user_id[ID_LEN];
    char username[USERNAME_MAX + 1];
    enum role role;
    int nsites;
    char sites[USER_SITES_MAX][ID_LEN];   /* the sites whose records this user may see */
    char address[64];                     /* peer address, "local" for the command line */
    char request_id[33];                  /* correlates the access log and the audit log */
};

/* The identity of a person at the node's console (CLI): acts as the system with admin rights. */
void caller_local(struct caller *c, const char *what);

/* 1 when site (may be NULL) is one of the caller's sites. */
int caller_has_site(const struct caller *c, const char *site);

struct db;
struct err;
/* Give a console identity every site of the node (or only `site` when not NULL), so that commands such
 * as export and import act on patient data. ERR_NOT_FOUND when `site` does not exist. */
int caller_local_sites(struct db *db, struct caller *c, const char *site, struct err *e);

#endif
