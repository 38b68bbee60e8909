/* patients_internal.h — what the registry's two files share: patients.c (records, writes, the search
 * index, imports) and patients_find.c (search and duplicate checks). Not for other modules. */
#ifndef SANAD_PATIENTS_INTERNAL_H
#define SANAD_PATIENTS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "core/names.h"
#include "services/caller.h"
#include "store/db.h"
#include "store/patients.h"

#define TERM_LEN 96             /* a search-index term, NUL included */
#define TOKEN_LEN 64
#define NAME_GROUPS_MAX 12

/* A folded name cut into its groups (given, family, other names...), each a list of words. */
struct name_groups {
    int n;
    struct names_tokens g[NAME_GROUPS_MAX];
};

int pt_birth_interval(const char *date, const char *precision, int64_t *lo, int64_t *hi);
json_t *pt_patient_view(const json_t *p);
void pt_name_groups_of(const char *fold, struct name_groups *ng);
uint64_t pt_id_hash(const char *id);
int pt_fold_tokens(const char *folded, struct names_tokens *t);
int pt_brief_of(struct db *db, const char *id, struct patient_brief *b, struct err *e);
int pt_site_allowed(const struct caller *who, const char *site);
void pt_phone_key(const char *normalised, char *out, size_t outlen);
int pt_parse_partial_date(const char *s, int *y, int *m, int *d, const char **precision);
double pt_groups_similarity(const struct name_groups *a, const struct name_groups *b, int partial);
void pt_record_name_fold(const json_t *p, char *out, size_t outlen);
int pt_birth_from_input(const json_t *input, json_t *changes, struct err *e);
double pt_birth_compatibility(const char *da, const char *pa, const char *db, const char *pb);

#endif
