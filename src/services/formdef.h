/* formdef.h — the forms engine: checking a form definition (docs/forms.md) into a compiled form, checking
 * an entry's values against it (types, rules, conditions, computed fields), and showing a definition in one
 * language with fallbacks. Pure: no database, no caller; services/forms.c stores and finds definitions.
 * Ownership: a struct form is reference-counted (form_retain / form_release) and immutable once compiled,
 * so threads may share one; json_t values returned are new references, inputs are borrowed. */
#ifndef SANAD_FORMDEF_H
#define SANAD_FORMDEF_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "core/id.h"

#define FORM_NAME_MAX 64
#define FORM_FIELDS_MAX 500         /* fields in one form, all levels */
#define FORM_OPTIONS_MAX 1000       /* options of one select */

struct form;

/* Check a definition and compile it. NULL on failure with *e set (ERR_UNPROCESSABLE invalid_form, or
 * ERR_INTERNAL) and, for an invalid definition, *problems = {"fields[2].min": "must be a number", ...}
 * (a new object the caller owns; NULL otherwise). */
struct form *form_compile(const json_t *definition, json_t **problems, struct err *e);
void form_retain(struct form *f);
void form_release(struct form *f);

const char *form_id(const struct form *f);
int64_t form_version(const struct form *f);
/* The definition as given (borrowed; valid while f is). */
const json_t *form_definition(const struct form *f);
/* 1 when the form is offered for this encounter type (or names none). */
int form_offered_for(const struct form *f, const char *encounter_type);

/* What conditions may refer to besides the form's fields. */
struct entry_context {
    const char *sex;            /* "female", "male", "other", "unknown" or NULL */
    int64_t age_days;           /* the patient's age on the encounter date; < 0 when unknown */
    int64_t encounter_day;      /* day number (core/date.h) of the encounter; 0 when not known */
    const char *encounter_type;
    int64_t today;              /* day number (core/date.h) "today" means; also the limit of "no future" */
};

/* Check values ({field: value}) against f. On success the values to store: those given, with catalogue
 * codes normalised and the computed fields added. On failure NULL with *e set (ERR_UNPROCESSABLE
 * invalid_entry) and *field_errors = {"temp_c": "must be between 30 and 45", "items[1].dose": ...} (new
 * object, caller owns), or ERR_INTERNAL with *field_errors NULL. */
json_t *form_check_entry(const struct form *f, const json_t *values, const struct entry_context *ctx,
                         json_t **field_errors, struct err *e);

/* The definition with every translatable text (title, description, label, help, constraint_message)
 * replaced by its text in lang, falling back to the form's default language, then English, then any;
 * "language" says which was asked. NULL only when out of memory. */
json_t *form_localise(const json_t *definition, const char *lang);

/* An entry's values as a person reads them, in lang (with the fallbacks of form_localise): {"title":..,
 * "fields":[{"name","label","value","text" (option labels, "J06.9 Acute upper respiratory infection",
 * ...), "unit"?} or, for a group, {"name","label","value","rows":[[...], ...]}]} in definition order. Codes
 * stay in "value": the text is for display only. A new reference. */
json_t *form_display(const struct form *f, const json_t *values, const char *lang);

#endif
