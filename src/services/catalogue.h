/* catalogue.h — the clinical catalogues shipped inside the binary (share/catalogues/, TSV files): ICD-10 codes,
 * UNHCR HIS morbidity categories and the essential-medicines list, for lookups, code normalisation and
 * search in four languages.
 *
 * The files are parsed once, on first use (pthread_once), into sorted in-memory tables that are read-only
 * afterwards, so every function here is thread-safe. A missing file gives an empty catalogue (lookups fail,
 * searches find nothing) and catalogue_check() reports it; a malformed row is left out and reported the same
 * way, so a bad shipped file fails the unit test instead of surprising a clinic.
 * Records store codes, never labels: labels may be corrected at any time (docs/catalogues.md).
 * Ownership: items and their strings belong to the module and live as long as the process; catalogue_search()
 * returns a new json_t reference the caller json_decref()s.
 */
#ifndef SANAD_CATALOGUE_H
#define SANAD_CATALOGUE_H

#include <stddef.h>

#include <jansson.h>

#include "core/err.h"

enum catalogue_kind {
    CATALOGUE_ICD10,
    CATALOGUE_MEDICINES,
    CATALOGUE_HIS,
};
#define CATALOGUE_KINDS 3

#define CATALOGUE_LANGS       4     /* label languages, in this order: en, ar, fr, es */
#define CATALOGUE_CODE_MAX    64    /* bytes of a code; longer input never matches */
#define CATALOGUE_QUERY_MAX   100   /* bytes of a search query */
#define CATALOGUE_LIMIT_MAX   100   /* items one search returns at most */

struct catalogue_item {
    const char *code;                       /* the catalogue's own spelling: "J18.9", "amoxicillin_500mg_cap" */
    const char *label[CATALOGUE_LANGS];     /* en, ar, fr, es; "" when the file left one empty */
    const char *his_category;               /* ICD-10: code of its HIS category; NULL otherwise */
    const char *form, *strength, *route, *atc; /* medicines: "capsule", "500 mg", "oral", "J01CA04"; else NULL */
    /* internal: the lookup key (folded code) and, per language, the searchable words of the label
     * (medicines: label and strength) folded as " word word ..." for catalogue_search() */
    const char *key;
    const char *words[CATALOGUE_LANGS];
};

/* The kind named in a URL ("icd10", "medicines", "his-categories"): 0 and *kind, or -1 when unknown. */
int catalogue_kind_parse(const char *name, enum catalogue_kind *kind);
/* The file a kind is read from, below share/ ("/catalogues/icd10.tsv"). */
const char *catalogue_path(enum catalogue_kind kind);

/* Number of items loaded, and the i-th in code order (NULL when i is out of range). */
size_t catalogue_count(enum catalogue_kind kind);
const struct catalogue_item *catalogue_at(enum catalogue_kind kind, size_t i);

/* The item with this code after normalisation (see catalogue_normalise), or NULL. */
const struct catalogue_item *catalogue_find(enum catalogue_kind kind, const char *code);

/* Normalise a code as a user or client may type it: surrounding spaces ignored, case-insensitive; for ICD-10
 * also with or without the dot ("j189", "J189", "J18.9" -> "J18.9"; "a09" -> "A09"; "J18." as "J18").
 * Returns 0 and writes the catalogue's own spelling of the code into out (NUL-terminated) when the code is
 * known; -1 when it is not, when code is NULL or longer than CATALOGUE_CODE_MAX, or when out (n bytes) is
 * too small (out is then the empty string when n > 0). */
int catalogue_normalise(enum catalogue_kind kind, const char *code, char *out, size_t n);

/* The label in lang (a BCP 47 tag; only its primary subtag counts: "ar-LB" -> "ar"), else in English, else
 * in any language the item has, else its code. NULL lang means English. Never NULL for a non-NULL item. */
const char *catalogue_label(const struct catalogue_item *it, const char *lang);

/* Search: {"items":[{"code","label", ICD-10: "his_category","his_label"; medicines: "form","strength",
 * "route","atc"}]} with labels in lang. An item matches when q is a prefix of its code (normalised as above),
 * or when every word of q is the start of a word of its label in one of the four languages (medicines: of
 * the label or strength), ignoring case and diacritics. Code-prefix matches come first, then the others;
 * each group in code order. A NULL or blank q lists the first items in code order. At most limit items.
 * NULL with *e set: ERR_INVALID "query_too_long" (q over CATALOGUE_QUERY_MAX bytes), "invalid_limit" (limit
 * outside 1..CATALOGUE_LIMIT_MAX), "invalid_utf8"; ERR_INTERNAL "out_of_memory". */
json_t *catalogue_search(enum catalogue_kind kind, const char *q, const char *lang, int limit, struct err *e);

/* Validate the shipped files as loaded: every file present with its header, every row with the header's
 * number of cells and no empty cell, codes well-formed and unique (after normalisation), medicines' form and
 * route from the documented lists, every ICD-10 his_category a known HIS category. 0, or -1 with *e set
 * (ERR_INTERNAL "catalogue_invalid", naming the file, line and problem, and how many problems in all). */
int catalogue_check(struct err *e);

/* The same checks on the text of a file of this kind (len bytes, not necessarily NUL-terminated) instead of
 * the shipped one, without loading it: for tests of malformed files and for checking an edited file. ICD-10
 * HIS categories are checked against the shipped HIS file. 0, or -1 with *e set as for catalogue_check(). */
int catalogue_check_text(enum catalogue_kind kind, const char *text, size_t len, struct err *e);

/* Fold text for matching: lower case, no diacritics or Arabic short vowels/tatweel, Arabic alef and
 * yeh/teh marbuta variants unified, ligatures spelled out ("œ" -> "oe"), every run of other characters
 * than letters and digits one space; the words are written as " word word" (each preceded by one space).
 * Returns the output length, or -1 when in is not valid UTF-8, ICU fails or out (n bytes) is too small. */
int catalogue_fold(const char *in, char *out, size_t n);

#endif
