/* err.c — filling struct err values. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

int err_set(struct err *e, enum err_kind kind, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (e == NULL)
        return -1;
    e->kind = kind;
    snprintf(e->code, sizeof(e->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    e->retry_after = 0;
    e->field[0] = '\0';
    return -1;
}

int err_set_field(struct err *e, const char *field, enum err_kind kind, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (e == NULL)
        return -1;
    e->kind = kind;
    snprintf(e->code, sizeof(e->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    e->retry_after = 0;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    return -1;
}

int err_field(struct err *e, const char *field)
{
    if (e)
        snprintf(e->field, sizeof(e->field), "%s", field);
    return -1;
}

void err_clear(struct err *e)
{
    memset(e, 0, sizeof(*e));
}
