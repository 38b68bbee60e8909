/* caller.c — identities that do not come from a session. */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "services/caller.h"
#include "store/sites.h"

void caller_local(struct caller *c, const char *what)
{
    memset(c, 0, sizeof(*c));
    c->role = ROLE_ADMIN;
    snprintf(c->username, sizeof(c->username), "cli:%s", what);
    snprintf(c->address, sizeof(c->address), "local");
}

int caller_has_site(const struct caller *c, const char *site)
{
    int i;

    for (i = 0; site && i < c->nsites; i++)
        if (strcmp(c->sites[i], site) == 0)
            return 1;
    return 0;
}

static int add_site(const struct site_row *row, void *ctx)
{
    struct caller *c = ctx;

    if (c->nsites < USER_SITES_MAX)
        snprintf(c->sites[c->nsites++], ID_LEN, "%s", row->id);
    return 0;
}

int caller_local_sites(struct db *db, struct caller *c, const char *site, struct err *e)
{
    struct site_row row;
    int found;

    char def[ID_LEN], tmp[ID_LEN];
    int i;

    c->nsites = 0;
    if (site == NULL) {
        /* every site, the node's default one first (records without a site go there) */
        if (store_site_list(db, add_site, c, e) < 0 || (found = store_meta_get(db, "default_site", def, sizeof(def), e)) < 0)
            return -1;
        for (i = 1; found && i < c->nsites; i++) {
            if (strcmp(c->sites[i], def) == 0) {
                memcpy(tmp, c->sites[0], ID_LEN);
                memcpy(c->sites[0], c->sites[i], ID_LEN);
                memcpy(c->sites[i], tmp, ID_LEN);
            }
        }
        return 0;
    }
    found = store_site_get(db, site, &row, e);
    if (found < 0)
        return -1;
    if (!found)
        return err_set(e, ERR_NOT_FOUND, "site_not_found", "no site with id '%.40s'", site);
    return add_site(&row, c);
}
