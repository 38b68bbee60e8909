/* schema.h — the versioned schema migrations, in order. Migration N brings user_version N-1 to N.
 * Never edit a migration that has shipped: add a new one. */
#ifndef SANAD_SCHEMA_H
#define SANAD_SCHEMA_H

int schema_count(void);
const char *schema_migration(int version);   /* 1-based */

#endif
