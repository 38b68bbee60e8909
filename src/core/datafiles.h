/* datafiles.h — the data files shipped inside the binary (share/: built-in forms, catalogues), embedded
 * at build time by tools/embed.c like the web assets. Paths are below share/, e.g. "/forms/vitals.json". */
#ifndef SANAD_DATAFILES_H
#define SANAD_DATAFILES_H

#include "http/assets.h"

extern const struct asset data_files[];
extern const size_t data_files_count;

/* The data file at exactly this path, or NULL. */
const struct asset *data_file_find(const char *path);

#endif
