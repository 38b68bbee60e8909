/* fuzz_xlsform.c — libFuzzer target for the XLSForm converter (services/xlsform.c): the input is split at
 * the first two 0x1E bytes (ASCII record separator) into the survey, choices and settings sheets, and
 * converted. Checks the converter's promises: a definition comes with no problems and passes
 * form_compile(); a refusal comes with ERR_INVALID invalid_xlsform or ERR_UNPROCESSABLE xlsform_unsupported
 * and 1 to XLSFORM_PROBLEMS_MAX problems of exactly {sheet, row, column, message}. Seeds:
 * fuzz/corpus/fuzz_xlsform/, made from tests/data/xlsform/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "services/formdef.h"
#include "services/xlsform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEPARATOR 0x1E
#define INPUT_MAX 65536     /* a few hundred rows: more adds time, not paths */

static void check_problems(const json_t *problems, const struct err *e)
{
    const json_t *p;
    const char *sheet;
    size_t i;

    if (!((e->kind == ERR_INVALID && strcmp(e->code, "invalid_xlsform") == 0)
          || (e->kind == ERR_UNPROCESSABLE && strcmp(e->code, "xlsform_unsupported") == 0)))
        __builtin_trap();
    if (!json_is_array(problems) || json_array_size(problems) == 0 || json_array_size(problems) > XLSFORM_PROBLEMS_MAX)
        __builtin_trap();
    json_array_foreach(problems, i, p) {
        sheet = json_string_value(json_object_get(p, "sheet"));
        if (json_object_size(p) != 4 || sheet == NULL
            || (strcmp(sheet, "survey") && strcmp(sheet, "choices") && strcmp(sheet, "settings"))
            || !json_is_integer(json_object_get(p, "row")) || json_integer_value(json_object_get(p, "row")) < 0
            || !json_is_string(json_object_get(p, "column"))
            || json_string_length(json_object_get(p, "message")) == 0)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sheet[3] = { NULL, NULL, NULL };
    size_t len[3] = { 0, 0, 0 }, start = 0, i;
    json_t *form, *problems = (json_t *)1, *compile_problems = NULL;
    struct form *compiled;
    struct err e;
    char *dump;
    int k = 0;

    if (size > INPUT_MAX)
        return 0;
    for (i = 0; i <= size && k < 3; i++) {
        if (i == size || (data[i] == SEPARATOR && k < 2)) {
            sheet[k] = (const char *)data + start;
            len[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    err_clear(&e);
    form = xlsform_convert(sheet[0], len[0], sheet[1], len[1], sheet[2], len[2], &problems, &e);
    if (form) {
        if (problems != NULL || e.kind != ERR_NONE || !json_is_object(form))
            __builtin_trap();
        compiled = form_compile(form, &compile_problems, &e);
        if (compiled == NULL)
            __builtin_trap();
        form_release(compiled);
        dump = json_dumps(form, JSON_COMPACT);
        if (dump == NULL)
            __builtin_trap();
        free(dump);
        json_decref(form);
    } else {
        check_problems(problems, &e);
        json_decref(problems);
    }
    return 0;
}
