/* xlsform.h — converting an XLSForm (its survey, choices and settings sheets, each saved as CSV) into a
 * Sanad form definition (docs/forms.md). docs/xlsform.md lists what maps to what and what is refused.
 * Ownership: the inputs are borrowed; the returned definition and *problems are new references the caller
 * json_decref()s.
 */
#ifndef SANAD_XLSFORM_H
#define SANAD_XLSFORM_H

#include <stddef.h>

#include <jansson.h>

#include "core/err.h"

#define XLSFORM_SHEET_MAX (2u * 1024 * 1024)   /* bytes per sheet */
#define XLSFORM_ROWS_MAX 2000                    /* non-empty rows per sheet, after the header */
#define XLSFORM_CELL_MAX 8192                    /* bytes per cell */
#define XLSFORM_COLUMNS_MAX 256                  /* columns per sheet */
#define XLSFORM_PROBLEMS_MAX 200                 /* problems listed (the count in *e is complete) */

/* Convert the three CSV sheets (UTF-8, comma-separated, header row first; choices and settings may be
 * NULL or empty) into a form definition.
 *
 * On success returns the definition and sets *problems to NULL.
 * When the sheets cannot be read (CSV syntax, a limit above, invalid UTF-8, a required column missing):
 * NULL, *e = ERR_INVALID "invalid_xlsform". When they can be read but use anything Sanad cannot represent
 * (or break an XLSForm rule: a duplicate name, an unknown choice list, unbalanced groups):
 * NULL, *e = ERR_UNPROCESSABLE "xlsform_unsupported".
 * Either way *problems is an array listing every problem found (at most XLSFORM_PROBLEMS_MAX), in sheet
 * and row order: [{"sheet":"survey","row":N,"column":"type","message":"..."}]. row is the spreadsheet row
 * (the header is row 1; 0 for the sheet as a whole); column is the header as written ("" when none).
 * A definition returned has passed form_compile(). Running out of memory aborts, as the arena does. */
json_t *xlsform_convert(const char *survey, size_t survey_len, const char *choices, size_t choices_len,
                        const char *settings, size_t settings_len, json_t **problems, struct err *e);

#endif
