/* caller.c — identities that do not come from a session. */
#include <stdio.h>
#include <string.h>

#include "services/caller.h"

void caller_local(struct caller *c, const char *what)
{
    memset(c, 0, sizeof(*c));
    c->role = ROLE_ADMIN;
    snprintf(c->username, sizeof(c->username), "cli:%s", what);
    snprintf(c->address, sizeof(c->address), "local");
}
