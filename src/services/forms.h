/* forms.h — form definitions on a node: the built-in ones shipped in the binary (data/forms/), and the
 * forms and new versions a site makes, which replicate. Definitions are compiled once and cached (they
 * never change). The format and rules are in docs/forms.md; the engine is formdef.h.
 * Ownership: struct form values returned carry a reference the caller drops with form_release(); json_t
 * values returned are new references; inputs are borrowed. */
#ifndef SANAD_FORMS_H
#define SANAD_FORMS_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "services/caller.h"
#include "services/formdef.h"
#include "store/db.h"

#define FORM_TABLE "form"

/* Store the built-in definitions this binary ships that the database lacks (at init and at every start). */
int forms_seed_builtin(struct db *db, struct err *e);

/* The compiled definition of version `version` of form_id (0: the newest); *row_id gets its record id.
 * ERR_NOT_FOUND form_not_found when there is none. */
struct form *forms_find(struct db *db, const char *form_id, int64_t version, char row_id[ID_LEN], struct err *e);
/* The compiled definition stored under a record id. */
struct form *forms_find_row(struct db *db, const char *row_id, struct err *e);

/* {"items":[{"id","version","title","description","encounter_types","builtin","language"}]}: the newest
 * version of every form, texts in lang (NULL: the form's default language). */
json_t *forms_list(struct db *db, const struct caller *who, const char *lang, struct err *e);
/* One version (0: newest) of a form; in lang when lang is not NULL, else with every translation. */
json_t *forms_get(struct db *db, const struct caller *who, const char *form_id, int64_t version, const char *lang,
                  struct err *e);
/* {"items":[{"version","row_id","builtin","created_at"}]}, newest first. */
json_t *forms_versions(struct db *db, const struct caller *who, const char *form_id, struct err *e);

/* Store a definition: a new form (form_id NULL: the definition's id must be new) or the next version of
 * form_id. The version is set to the next number (a version given must be that number: ERR_CONFLICT
 * stale_version otherwise). An invalid definition: NULL, ERR_UNPROCESSABLE invalid_form and *problems
 * {path: message}. Returns {"id","version","row_id"}. */
json_t *forms_save(struct db *db, const struct caller *who, const char *form_id, const json_t *definition,
                   json_t **problems, struct err *e);

/* Import an XLSForm's CSV sheets (services/xlsform.h) as a new form, or as the next version of `into`
 * (NULL: of the sheets' form_id when that form exists). What the sheets use that Sanad cannot represent:
 * NULL, ERR_UNPROCESSABLE xlsform_unsupported (ERR_INVALID invalid_xlsform for unreadable sheets) and
 * *problems {"survey:4:type": "...", ...}; otherwise as forms_save. */
json_t *forms_import_xlsform(struct db *db, const struct caller *who, const char *survey, size_t survey_len,
                             const char *choices, size_t choices_len, const char *settings, size_t settings_len,
                             const char *into, json_t **problems, struct err *e);

/* Replication of form definitions (table "form"): store a received one; check a change's fields. */
int forms_apply(struct db *db, const char *row_id, const json_t *fields, int64_t at, struct err *e);
int forms_check_fields(const json_t *fields, struct err *e);

#endif
