/* xlsform.c — the XLSForm converter: reads the survey, choices and settings sheets (CSV, libcsv), maps
 * their columns, rows and XPath expressions onto a form definition (docs/forms.md), and lists every
 * problem it finds rather than stopping at the first. docs/xlsform.md is the user's view of the mapping.
 *
 * The work happens in phases, each one reporting into the same problem list:
 *   1. read     the three sheets into rows of trimmed, UTF-8-checked cells (limits in xlsform.h);
 *   2. columns  classify every header ("label::Arabic (ar)" is the label text in language "ar");
 *   3. settings id, version, title, default language;
 *   4. choices  the option lists, by list_name;
 *   5. survey   pass 1 builds one entry per row (type, name, enclosing group and repeat) so that an
 *               expression may name a field defined further down; pass 2 builds the fields.
 * Expressions are parsed into a small tree (XPath precedence), rewritten where XLSForm and Sanad differ
 * (`${x} = ''` is empty(x), a calculate is written out where it is used), printed with Sanad's
 * precedence and checked with expr_compile(). Everything is allocated from one arena freed at the end.
 */
#include <csv.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/expr.h"
#include "core/util.h"
#include "services/formdef.h"
#include "services/xlsform.h"

#define PROBLEMS_KEPT 5000      /* problems remembered for sorting; beyond this they are only counted */
#define NAME_MAX_LEN 64         /* field names and form ids, as docs/forms.md */
#define CODE_MAX_LEN 64         /* option codes */
#define GROUP_DEPTH_MAX 32      /* begin_group / begin_repeat nesting */
#define EXPR_DEPTH_MAX 64       /* parser recursion (parentheses, function calls, unary minus) */
#define EXPR_HEIGHT_MAX 256     /* height of an expression tree (a + b + c ... is one level per term) */
#define EXPR_OUT_MAX EXPR_MAX_SOURCE   /* bytes of a translated expression */
#define INLINE_DEPTH_MAX 8      /* calculates written out inside calculates */
#define EXPR_ARGS_MAX EXPR_MAX_ARGS    /* arguments of one function call */
#define OPTIONS_TOTAL_MAX 50000 /* options over all the selects of a form (a list is copied per select) */
#define LANGUAGES_MAX 50       /* languages of one text (services/formdef.c) */
#define VERSION_MAX 2000000000  /* of a form definition (services/formdef.c) */
#define REGEX_WEIGHT_MAX 100000 /* product of the {n,m} bounds of a pattern: regcomp expands them */

/* ---- problems ------------------------------------------------------------------------------------- */

enum sheet_id { SHEET_SURVEY, SHEET_CHOICES, SHEET_SETTINGS };
static const char *const sheet_names[] = { "survey", "choices", "settings" };

struct problem {
    enum sheet_id sheet;
    int row;                /* spreadsheet row; 0 for the whole sheet */
    int seq;                /* order found, to keep the sort stable */
    const char *column;     /* header as written, "" when none */
    const char *message;
};

struct problems {
    struct problem *list;   /* PROBLEMS_KEPT entries */
    int kept;
    int count;              /* every problem found */
    int invalid;            /* problems that make the sheets unreadable (ERR_INVALID) */
};

/* ---- sheets --------------------------------------------------------------------------------------- */

struct row {
    int number;             /* spreadsheet row: the first CSV record is row 1 */
    char **cells;           /* ncols entries; NULL for an empty cell; others trimmed and non-empty */
};

enum role {
    R_NONE,                 /* not an XLSForm column (authors' notes): ignored */
    R_IGNORED,              /* an XLSForm column that only changes how ODK Collect shows the form */
    R_UNSUPPORTED,          /* an XLSForm column Sanad has nothing for: any value is a problem */
    R_TYPE, R_NAME, R_LABEL, R_HINT, R_CONSTRAINT_MESSAGE, R_REQUIRED, R_RELEVANT, R_CONSTRAINT,
    R_CALCULATION, R_APPEARANCE, R_READ_ONLY, R_DISABLED,
    R_LIST_NAME,
    R_FORM_TITLE, R_FORM_ID, R_VERSION, R_DEFAULT_LANGUAGE,
};

struct column {
    enum role role;
    const char *lang;       /* translatable columns: the language code; NULL for the default language */
    int lang_bad;           /* the language could not be read (reported once, at the header) */
    int lang_used;          /* a text of this column is in the definition: its language is listed */
    const char *why;        /* R_UNSUPPORTED: the sentence that says why */
};

struct sheet {
    enum sheet_id id;
    const char *name;
    int present;            /* a header row was read */
    int header_row;
    int ncols;
    char **header;          /* as written, trimmed; "" for an empty header cell */
    struct column *cols;
    int nrows;
    struct row *rows;       /* rows after the header that have at least one non-empty cell */
};

/* ---- survey rows and expressions ------------------------------------------------------------------ */

enum row_kind {
    K_VALUE, K_CALCULATE, K_NOTE, K_META, K_TODAY, K_BEGIN_GROUP, K_END_GROUP, K_BEGIN_REPEAT,
    K_END_REPEAT, K_UNSUPPORTED, K_DISABLED, K_NONE,
};

enum value_type {
    V_NONE, V_TEXT, V_INTEGER, V_DECIMAL, V_DATE, V_DATETIME, V_SELECT_ONE, V_SELECT_MULTIPLE,
    V_ACKNOWLEDGE, V_IMAGE, V_FILE,
};

enum memo { MEMO_PENDING, MEMO_BUSY, MEMO_DONE, MEMO_FAILED };

struct node;

struct entry {
    struct row *row;
    enum row_kind kind;
    enum value_type vtype;
    const char *list;       /* selects: the choice list */
    const char *xls_name;   /* the name as written; NULL when the row has none */
    const char *name;       /* the Sanad name; NULL when the XLSForm name cannot be one */
    int parent;             /* index of the enclosing begin_group/begin_repeat entry, -1 at the top */
    int repeat;             /* index of the enclosing begin_repeat entry, -1 outside repeats */
    int depth;              /* groups and repeats around the row */
    int discard;            /* inside a repeat inside a repeat: reported once, not converted */
    json_t *fields;         /* begin_repeat: the fields array of its group field (borrowed) */
    const char *path;       /* where its field is in the definition: "fields[3]", "fields[5].fields[0]" */
    int inlining;           /* calculate: being written out (finds cycles) */
    enum memo calc_state;   /* calculate: its calculation, parsed on first use */
    struct node *calc;
    enum memo relevant_state;
    struct node *relevant;  /* its own relevant, NULL when none */
};

enum node_kind {
    N_NUMBER, N_STRING, N_BOOL, N_NULL, N_TODAY, N_FIELD, N_CURRENT, N_BINARY, N_NEG, N_NOT, N_CALL,
    N_BAD,
};

enum op { OP_OR, OP_AND, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD };
static const char *const op_text[] = { "or", "and", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%" };

struct node {
    enum node_kind kind;
    enum op op;             /* N_BINARY */
    const char *text;       /* N_NUMBER (normalised), N_STRING (without quotes), N_CALL (Sanad name) */
    int value;              /* N_BOOL */
    struct entry *field;    /* N_FIELD */
    struct node *a, *b;     /* N_BINARY, N_NEG, N_NOT */
    struct node **args;     /* N_CALL */
    int nargs;
    int height;
};

/* ---- the conversion ------------------------------------------------------------------------------- */

struct converter {
    struct arena arena;
    struct problems problems;
    struct sheet sheets[3];
    const char *default_lang;
    json_t *languages;      /* codes, first use first, the default language first of all */
    json_t *lists;          /* list_name -> options array (valid choices only) */
    json_t *lists_seen;     /* list_name -> true for every list_name written in choices */
    int options_total;
    int nfields;            /* fields of the definition, all levels */
    struct entry *entries;  /* one per survey row */
    int nentries;
    struct entry **by_name; /* entries with an XLSForm name, sorted by it */
    int nnamed;
};

static void *must(void *p)
{
    if (p == NULL) {
        fprintf(stderr, "xlsform: out of memory\n");
        abort();
    }
    return p;
}

/* ---- UTF-8 and strings ---------------------------------------------------------------------------- */

/* Is s[0..n) well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF)? */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0, k, len;
    uint32_t cp;

    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if (s[i] >= 0xC2 && s[i] <= 0xDF) {
            len = 2;
            cp = s[i] & 0x1F;
        } else if (s[i] >= 0xE0 && s[i] <= 0xEF) {
            len = 3;
            cp = s[i] & 0x0F;
        } else if (s[i] >= 0xF0 && s[i] <= 0xF4) {
            len = 4;
            cp = s[i] & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += len;
    }
    return 1;
}

/* The longest prefix of s (valid UTF-8) of at most max bytes that ends on a character boundary. */
static size_t utf8_prefix(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Drop a character cut short at the end of s (otherwise valid UTF-8). */
static void utf8_cut_tail(char *s)
{
    size_t n = strlen(s), i = n, want;
    unsigned char lead;

    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return;
    lead = (unsigned char)s[i - 1];
    want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (i - 1) < want)
        s[i - 1] = '\0';
}

/* s, or its first 60 bytes and "...", for quoting user text in a message. */
static const char *shorten(struct converter *c, const char *s)
{
    size_t n;

    if (s == NULL)
        return "";
    n = utf8_prefix(s, 60);
    return s[n] ? arena_printf(&c->arena, "%.*s...", (int)n, s) : s;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int is_lower(char ch)
{
    return ch >= 'a' && ch <= 'z';
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Arena copy of s[0..n) without surrounding white space. */
static char *trimmed(struct arena *a, const char *s, size_t n)
{
    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1]))
        n--;
    return arena_strndup(a, s, n);
}

static char *lowered(struct arena *a, const char *s)
{
    char *out = arena_strdup(a, s), *p;

    for (p = out; *p; p++)
        *p = lower(*p);
    return out;
}

/* ---- problems ------------------------------------------------------------------------------------- */

static void problem_add(struct converter *c, int invalid, enum sheet_id sheet, int row, const char *column,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void problem_vadd(struct converter *c, int invalid, enum sheet_id sheet, int row, const char *column,
                         const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/* Note a problem. invalid: the sheets cannot be read (decides between the two error codes). */
static void problem_vadd(struct converter *c, int invalid, enum sheet_id sheet, int row, const char *column,
                         const char *fmt, va_list ap)
{
    struct problems *p = &c->problems;
    struct problem *pr;
    char message[600];

    p->count++;
    if (invalid)
        p->invalid++;
    if (p->kept >= PROBLEMS_KEPT)
        return;
    if (vsnprintf(message, sizeof(message), fmt, ap) >= (int)sizeof(message))
        utf8_cut_tail(message);     /* every argument is UTF-8, but truncation may have cut a character */
    pr = &p->list[p->kept];
    pr->sheet = sheet;
    pr->row = row;
    pr->seq = p->kept++;
    pr->column = column ? column : "";
    pr->message = arena_strdup(&c->arena, message);
}

static void problem_add(struct converter *c, int invalid, enum sheet_id sheet, int row, const char *column,
                        const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    problem_vadd(c, invalid, sheet, row, column, fmt, ap);
    va_end(ap);
}

static int problem_order(const void *x, const void *y)
{
    const struct problem *a = x, *b = y;

    if (a->sheet != b->sheet)
        return a->sheet < b->sheet ? -1 : 1;
    if (a->row != b->row)
        return a->row < b->row ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The problems as the JSON array of the API: sheet order, then row order, at most XLSFORM_PROBLEMS_MAX. */
static json_t *problems_json(struct converter *c)
{
    struct problems *p = &c->problems;
    json_t *out = must(json_array());
    int i;

    qsort(p->list, (size_t)p->kept, sizeof(p->list[0]), problem_order);
    for (i = 0; i < p->kept && i < XLSFORM_PROBLEMS_MAX; i++)
        json_array_append_new(out, must(json_pack("{s:s,s:i,s:s,s:s}", "sheet", sheet_names[p->list[i].sheet], "row",
                                                  p->list[i].row, "column", p->list[i].column, "message",
                                                  p->list[i].message)));
    return out;
}

/* ---- reading a sheet ------------------------------------------------------------------------------ */

struct reader {
    struct converter *c;
    struct sheet *sheet;
    char *cells[XLSFORM_COLUMNS_MAX];
    int ncells;             /* cells seen in the current record (including those beyond the header) */
    int record;             /* CSV records so far (blank lines count: they are spreadsheet rows) */
    int prev_term;
    int stop;               /* a limit was passed: the rest of the sheet is not read */
};

static const char *column_label(const struct sheet *s, int col)
{
    return s->present && col < s->ncols ? s->header[col] : "";
}

static void on_cell(void *data, size_t len, void *ctx)
{
    struct reader *r = ctx;
    struct sheet *s = r->sheet;
    int col = r->ncells, row = r->record + 1;
    const char *text = data ? data : "";

    if (r->stop)
        return;
    r->ncells++;
    if (!s->present) {
        if (col >= XLSFORM_COLUMNS_MAX) {
            problem_add(r->c, 1, s->id, row, "", "the sheet has more than %d columns", XLSFORM_COLUMNS_MAX);
            r->stop = 1;
            return;
        }
    } else if (col >= s->ncols) {
        return;     /* a cell with no header: no XLSForm meaning */
    }
    r->cells[col] = NULL;
    if (len > XLSFORM_CELL_MAX) {
        problem_add(r->c, 1, s->id, row, column_label(s, col), "the cell is longer than %d bytes", XLSFORM_CELL_MAX);
        return;
    }
    if (memchr(text, '\0', len)) {
        problem_add(r->c, 1, s->id, row, column_label(s, col), "the cell contains a NUL byte");
        return;
    }
    if (!utf8_valid((const unsigned char *)text, len)) {
        problem_add(r->c, 1, s->id, row, column_label(s, col), "the cell is not valid UTF-8 (save the sheet as CSV UTF-8)");
        return;
    }
    r->cells[col] = trimmed(&r->c->arena, text, len);
    if (r->cells[col][0] == '\0')
        r->cells[col] = NULL;
}

static void on_record(int term, void *ctx)
{
    struct reader *r = ctx;
    struct sheet *s = r->sheet;
    int i, n, any = 0;

    if (r->stop)
        return;
    /* with CSV_REPALL_NL the LF of a CRLF arrives as a record of its own */
    if (r->ncells == 0 && term == '\n' && r->prev_term == '\r') {
        r->prev_term = term;
        return;
    }
    r->prev_term = term;
    r->record++;
    n = r->ncells < XLSFORM_COLUMNS_MAX ? r->ncells : XLSFORM_COLUMNS_MAX;
    if (s->present && n > s->ncols)
        n = s->ncols;
    for (i = 0; i < n; i++)
        any |= r->cells[i] != NULL;
    r->ncells = 0;
    if (!any)
        return;     /* a blank row (leading blank rows before the header too) */
    if (!s->present) {
        s->present = 1;
        s->header_row = r->record;
        s->ncols = n;
        s->header = arena_alloc(&r->c->arena, sizeof(char *) * (size_t)n);
        for (i = 0; i < n; i++)
            s->header[i] = r->cells[i] ? r->cells[i] : "";
        s->rows = arena_alloc(&r->c->arena, sizeof(struct row) * XLSFORM_ROWS_MAX);
        return;
    }
    if (s->nrows >= XLSFORM_ROWS_MAX) {
        problem_add(r->c, 1, s->id, r->record, "", "the sheet has more than %d rows", XLSFORM_ROWS_MAX);
        r->stop = 1;
        return;
    }
    s->rows[s->nrows].number = r->record;
    s->rows[s->nrows].cells = arena_alloc(&r->c->arena, sizeof(char *) * (size_t)s->ncols);
    for (i = 0; i < s->ncols; i++)
        s->rows[s->nrows].cells[i] = i < n ? r->cells[i] : NULL;
    s->nrows++;
}

/* Read one sheet into c->sheets[id]; problems are reported as invalid. An absent sheet reads as empty. */
static void sheet_read(struct converter *c, enum sheet_id id, const char *data, size_t len)
{
    struct sheet *s = &c->sheets[id];
    struct csv_parser parser;
    struct reader r;

    s->id = id;
    s->name = sheet_names[id];
    if (data == NULL || len == 0)
        return;
    if (len > XLSFORM_SHEET_MAX) {
        problem_add(c, 1, id, 0, "", "the sheet is larger than %u bytes", XLSFORM_SHEET_MAX);
        return;
    }
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {    /* a UTF-8 byte-order mark */
        data += 3;
        len -= 3;
    }
    memset(&r, 0, sizeof(r));
    r.c = c;
    r.sheet = s;
    if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL) != 0)
        must(NULL);
    if (csv_parse(&parser, data, len, on_cell, on_record, &r) != len) {
        if (csv_error(&parser) == CSV_ENOMEM)
            must(NULL);
        problem_add(c, 1, id, r.record + 1, "",
                    "the sheet is not valid CSV: a quote inside a cell that does not start with one, or text after a closing quote");
    } else if (csv_fini(&parser, on_cell, on_record, &r) != 0) {
        problem_add(c, 1, id, r.record + 1, "", "the sheet is not valid CSV: it ends inside a quoted cell");
    }
    csv_free(&parser);
}

/* ---- columns -------------------------------------------------------------------------------------- */

struct column_rule {
    const char *name;       /* lower case; for prefix rules the part before "::" */
    enum role role;
    int translatable;       /* takes "::Language (code)" */
    const char *why;
};

static const char media_why[] = "media (images, audio, video) in labels and choices are not supported: Sanad texts are plain text";

static const struct column_rule survey_rules[] = {
    { "type", R_TYPE, 0, NULL },
    { "name", R_NAME, 0, NULL },
    { "label", R_LABEL, 1, NULL },
    { "hint", R_HINT, 1, NULL },
    { "constraint_message", R_CONSTRAINT_MESSAGE, 1, NULL },
    { "jr:constraintmsg", R_CONSTRAINT_MESSAGE, 1, NULL },
    { "required", R_REQUIRED, 0, NULL },
    { "relevant", R_RELEVANT, 0, NULL },
    { "constraint", R_CONSTRAINT, 0, NULL },
    { "calculation", R_CALCULATION, 0, NULL },
    { "appearance", R_APPEARANCE, 0, NULL },
    { "read_only", R_READ_ONLY, 0, NULL },
    { "readonly", R_READ_ONLY, 0, NULL },
    { "disabled", R_DISABLED, 0, NULL },
    { "guidance_hint", R_IGNORED, 1, NULL },
    { "required_message", R_IGNORED, 1, NULL },
    { "jr:requiredmsg", R_IGNORED, 1, NULL },
    { "autoplay", R_IGNORED, 0, NULL },
    { "body", R_IGNORED, 0, NULL },
    { "default", R_UNSUPPORTED, 0, "default values are not supported: Sanad fields start empty" },
    { "choice_filter", R_UNSUPPORTED, 0, "choice_filter is not supported: a Sanad select offers all of its options" },
    { "repeat_count", R_UNSUPPORTED, 0, "repeat_count is not supported: a Sanad repeat group takes any number of rows" },
    { "jr:count", R_UNSUPPORTED, 0, "repeat_count is not supported: a Sanad repeat group takes any number of rows" },
    { "trigger", R_UNSUPPORTED, 0, "trigger is not supported: Sanad computes values when the entry is saved" },
    { "parameters", R_UNSUPPORTED, 0, "parameters are not supported" },
    { "image", R_UNSUPPORTED, 1, media_why },
    { "big-image", R_UNSUPPORTED, 1, media_why },
    { "audio", R_UNSUPPORTED, 1, media_why },
    { "video", R_UNSUPPORTED, 1, media_why },
    { "media", R_UNSUPPORTED, 0, media_why },
    { "bind", R_UNSUPPORTED, 0, "bind:: attributes are not supported" },
    { "instance", R_UNSUPPORTED, 0, "instance:: attributes are not supported" },
    { NULL, R_NONE, 0, NULL },
};

static const struct column_rule choices_rules[] = {
    { "list_name", R_LIST_NAME, 0, NULL },
    { "list name", R_LIST_NAME, 0, NULL },
    { "name", R_NAME, 0, NULL },
    { "label", R_LABEL, 1, NULL },
    { "image", R_UNSUPPORTED, 1, media_why },
    { "big-image", R_UNSUPPORTED, 1, media_why },
    { "audio", R_UNSUPPORTED, 1, media_why },
    { "video", R_UNSUPPORTED, 1, media_why },
    { "media", R_UNSUPPORTED, 0, media_why },
    { NULL, R_NONE, 0, NULL },
};

static const struct column_rule settings_rules[] = {
    { "form_title", R_FORM_TITLE, 0, NULL },
    { "form_id", R_FORM_ID, 0, NULL },
    { "version", R_VERSION, 0, NULL },
    { "default_language", R_DEFAULT_LANGUAGE, 0, NULL },
    { "public_key", R_UNSUPPORTED, 0,
      "public_key is not supported: Sanad does not encrypt entries to a key of the form's author" },
    { NULL, R_NONE, 0, NULL },
};

/* Read a language as XLSForm writes it: "Arabic (ar)", "Portuguese (pt-BR)" or a bare code "ar". The code
 * is returned with its primary tag in lower case (an arena string), or NULL when there is none to read. */
static const char *language_code(struct converter *c, const char *text)
{
    const char *open;
    char *code;
    size_t n = strlen(text), i = 0, part;

    if (n > 0 && text[n - 1] == ')' && (open = strrchr(text, '(')) != NULL) {
        code = trimmed(&c->arena, open + 1, (size_t)(text + n - 1 - (open + 1)));
        for (i = 0; is_alpha(code[i]); i++)
            code[i] = lower(code[i]);
        i = 0;
    } else {
        code = arena_strdup(&c->arena, text);   /* bare: "en", not "English" or "EN" */
    }
    while (is_lower(code[i]))
        i++;
    if (i < 2 || i > 3)
        return NULL;
    while (code[i] == '-') {
        for (part = 0, i++; is_alpha(code[i]) || is_digit(code[i]); i++)
            part++;
        if (part < 2 || part > 8)
            return NULL;
    }
    return code[i] == '\0' && i <= 35 ? code : NULL;
}

/* Classify the header of a sheet. Missing required columns and repeated single columns are invalid. */
static void columns_classify(struct converter *c, struct sheet *s, const struct column_rule *rules,
                             const enum role *required)
{
    const struct column_rule *rule;
    char *base, *sep;
    const char *rest;
    int i, j;

    if (!s->present)
        return;
    s->cols = arena_alloc(&c->arena, sizeof(struct column) * (size_t)(s->ncols ? s->ncols : 1));
    for (i = 0; i < s->ncols; i++) {
        base = lowered(&c->arena, s->header[i]);
        rest = NULL;
        if ((sep = strstr(base, "::")) != NULL) {
            size_t off = (size_t)(sep - base);     /* lower-casing keeps every byte in place */

            rest = trimmed(&c->arena, s->header[i] + off + 2, strlen(s->header[i] + off + 2));
            base = trimmed(&c->arena, base, off);
        }
        for (rule = rules; rule->name; rule++)
            if (strcmp(rule->name, base) == 0)
                break;
        s->cols[i].role = rule->role;
        s->cols[i].why = rule->why;
        if (rule->name && rest && !rule->translatable && rule->role != R_UNSUPPORTED && rule->role != R_IGNORED)
            s->cols[i].role = R_NONE;   /* "type::x" is no XLSForm column */
        if (rule->name && rule->translatable && rest && rule->role != R_UNSUPPORTED && rule->role != R_IGNORED) {
            s->cols[i].lang = language_code(c, rest);
            if (s->cols[i].lang == NULL) {
                s->cols[i].lang_bad = 1;
                problem_add(c, 0, s->id, s->header_row, s->header[i],
                            "the language '%s' has no code: write it as 'Name (code)', e.g. 'English (en)'",
                            shorten(c, rest));
            }
        }
    }
    /* a column that is neither translatable nor ignored may appear once */
    for (i = 0; i < s->ncols; i++) {
        if (s->cols[i].role < R_TYPE || s->cols[i].lang || s->cols[i].lang_bad)
            continue;
        for (j = 0; j < i; j++) {
            if (s->cols[j].role == s->cols[i].role && s->cols[j].lang == NULL && !s->cols[j].lang_bad) {
                problem_add(c, 1, s->id, s->header_row, s->header[i], "the sheet has this column twice (also '%s')",
                            shorten(c, s->header[j]));
                break;
            }
        }
    }
    for (; *required != R_NONE; required++) {
        for (i = 0; i < s->ncols; i++)
            if (s->cols[i].role == *required)
                break;
        if (i == s->ncols) {
            for (rule = rules; rule->role != *required; rule++)
                ;
            problem_add(c, 1, s->id, s->header_row, rule->name, "the sheet has no '%s' column", rule->name);
        }
    }
}

/* The index of the first column of a role, or -1. */
static int column_find(const struct sheet *s, enum role role)
{
    int i;

    for (i = 0; s->present && i < s->ncols; i++)
        if (s->cols[i].role == role)
            return i;
    return -1;
}

static const char *cell(const struct sheet *s, const struct row *r, enum role role)
{
    int i = column_find(s, role);

    return i < 0 ? NULL : r->cells[i];
}

static const char *column_header(const struct sheet *s, enum role role, const char *fallback)
{
    int i = column_find(s, role);

    return i < 0 ? fallback : s->header[i];
}

/* Give the bare translatable columns the default language and report two columns for one text. */
static void columns_resolve_languages(struct converter *c, struct sheet *s)
{
    enum role role;
    int i, j;

    for (i = 0; s->present && i < s->ncols; i++) {
        role = s->cols[i].role;
        if (!(role == R_LABEL || role == R_HINT || role == R_CONSTRAINT_MESSAGE) || s->cols[i].lang_bad)
            continue;
        if (s->cols[i].lang == NULL)
            s->cols[i].lang = c->default_lang;
        for (j = 0; j < i; j++) {
            if (s->cols[j].role == role && s->cols[j].lang && strcmp(s->cols[j].lang, s->cols[i].lang) == 0) {
                problem_add(c, 0, s->id, s->header_row, s->header[i],
                            "the column gives the '%s' text a second time (also in '%s')", s->cols[i].lang,
                            shorten(c, s->header[j]));
                break;
            }
        }
    }
}

static void language_note(struct converter *c, const char *code)
{
    size_t i;
    json_t *v;

    json_array_foreach(c->languages, i, v)
        if (strcmp(json_string_value(v), code) == 0)
            return;
    json_array_append_new(c->languages, must(json_string(code)));
}

/* The translations of one text of a row ({code: text}), or NULL when it has none. A text that shows an
 * answer (${name}) is a problem: Sanad texts are plain. */
static json_t *texts(struct converter *c, struct sheet *s, const struct row *r, enum role role)
{
    json_t *out = NULL;
    int i;

    for (i = 0; i < s->ncols; i++) {
        if (s->cols[i].role != role || s->cols[i].lang == NULL || r->cells[i] == NULL)
            continue;
        if (strstr(r->cells[i], "${"))
            problem_add(c, 0, s->id, r->number, s->header[i],
                        "the text shows an answer (${...}), which Sanad texts cannot: they are plain text");
        if (out == NULL)
            out = must(json_object());
        json_object_set_new(out, s->cols[i].lang, must(json_string(r->cells[i])));
        if (!s->cols[i].lang_used) {
            s->cols[i].lang_used = 1;
            language_note(c, s->cols[i].lang);
        }
    }
    return out;
}

/* Report every non-empty cell of the row in a column Sanad has nothing for. */
static void unsupported_cells(struct converter *c, const struct sheet *s, const struct row *r)
{
    int i;

    for (i = 0; i < s->ncols; i++)
        if (s->cols[i].role == R_UNSUPPORTED && r->cells[i])
            problem_add(c, 0, s->id, r->number, s->header[i], "%s", s->cols[i].why);
}

/* ---- names, codes, numbers ------------------------------------------------------------------------ */

static const char *const reserved_words[] = { "and", "or", "not", "true", "false", "null" };
/* names Sanad gives the patient's context in expressions (docs/forms.md): no field may take them */
static const char *const context_names[] = {
    "age_years", "age_months", "age_days", "sex", "encounter_type", "encounter_date", "today",
};

/* The Sanad name of an XLSForm name: lower case, '-' and '.' as '_'. NULL with *why set when it has none. */
static const char *field_name(struct converter *c, const char *xls, const char **why)
{
    size_t i, n = strlen(xls);
    char *out;

    if (n > NAME_MAX_LEN) {
        *why = "is longer than 64 characters";
        return NULL;
    }
    out = arena_strdup(&c->arena, xls);
    for (i = 0; i < n; i++) {
        if (is_alpha(out[i]) || is_digit(out[i]) || out[i] == '_')
            out[i] = lower(out[i]);
        else if (out[i] == '-' || out[i] == '.')
            out[i] = '_';
        else {
            *why = "may use only ASCII letters, digits, '_', '-' and '.'";
            return NULL;
        }
    }
    if (!is_lower(out[0])) {
        *why = "must start with a letter";
        return NULL;
    }
    for (i = 0; i < sizeof(reserved_words) / sizeof(reserved_words[0]); i++) {
        if (strcmp(out, reserved_words[i]) == 0) {
            *why = "is a word of the expression language";
            return NULL;
        }
    }
    for (i = 0; i < sizeof(context_names) / sizeof(context_names[0]); i++) {
        if (strcmp(out, context_names[i]) == 0) {
            *why = "is the name Sanad gives the patient's context (age_years, age_months, age_days, sex, "
                   "encounter_type, encounter_date, today): Sanad knows it already; rename or remove the question";
            return NULL;
        }
    }
    return out;
}

/* A form id from free text: [a-z][a-z0-9_]{0,63}, runs of other characters as one '_'. NULL when no
 * letter is left. */
static const char *id_from_text(struct converter *c, const char *text)
{
    char *out = arena_alloc(&c->arena, strlen(text) + 1);
    size_t n = 0;
    const char *p;

    for (p = text; *p; p++) {
        char ch = lower(*p);

        if (is_lower(ch) || (n > 0 && is_digit(ch)))
            out[n++] = ch;
        else if (n > 0 && out[n - 1] != '_')
            out[n++] = '_';
        if (n == NAME_MAX_LEN)
            break;
    }
    while (n > 0 && out[n - 1] == '_')
        n--;
    out[n] = '\0';
    return n ? out : NULL;
}

/* [A-Za-z0-9_.-]{1,64}, as docs/forms.md says of option codes */
static int option_code_valid(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > CODE_MAX_LEN)
        return 0;
    for (i = 0; i < n; i++)
        if (!(is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

/* "YYYY-MM-DD" with a plausible month and day */
static int date_valid(const char *s)
{
    int i, month, day;

    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !is_digit(s[i]))
            return 0;
    month = (s[5] - '0') * 10 + (s[6] - '0');
    day = (s[8] - '0') * 10 + (s[9] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/* A number literal (normalised digits, optional fraction) as JSON: an integer when it is one. */
static json_t *number_json(const char *text, int negative)
{
    const char *errstr;
    int64_t n;

    if (!strchr(text, '.') && parse_int64(text, 0, INT64_MAX, &n, &errstr) == 0)
        return must(json_integer(negative ? -n : n));
    return must(json_real(negative ? -strtod(text, NULL) : strtod(text, NULL)));
}

/* The bound one step inside a strict one: text (+/- delta units of 10^-decimals). NULL when the literal has
 * more decimals than the field keeps, or too many digits to count exactly. */
static json_t *number_step(const char *text, int negative, int decimals, int delta)
{
    const char *dot = strchr(text, '.');
    size_t ilen = dot ? (size_t)(dot - text) : strlen(text), flen = dot ? strlen(dot + 1) : 0, i;
    int64_t v = 0, scale = 1;
    int k;

    if (flen > (size_t)decimals || ilen + (size_t)decimals > 15)
        return NULL;
    for (i = 0; i < ilen; i++)
        v = v * 10 + (text[i] - '0');
    for (k = 0; k < decimals; k++) {
        v = v * 10 + ((size_t)k < flen ? dot[1 + k] - '0' : 0);
        scale *= 10;
    }
    v = (negative ? -v : v) + delta;
    return must(decimals == 0 ? json_integer(v) : json_real((double)v / (double)scale));
}

/* ---- settings ------------------------------------------------------------------------------------- */

struct settings {
    const char *id;
    json_int_t version;
    const char *title;
};

static void settings_read(struct converter *c, struct settings *out)
{
    struct sheet *s = &c->sheets[SHEET_SETTINGS];
    const struct row *r = s->present && s->nrows > 0 ? &s->rows[0] : NULL;
    const char *id_text = NULL, *version, *lang, *code, *errstr;
    int64_t v;
    int row = r ? r->number : 0, i;

    out->version = 1;
    c->default_lang = NULL;
    if (r) {
        for (i = 1; i < s->nrows; i++)
            problem_add(c, 0, SHEET_SETTINGS, s->rows[i].number, "",
                        "the settings sheet has one row of values; this one would be ignored");
        unsupported_cells(c, s, r);
        id_text = cell(s, r, R_FORM_ID);
        out->title = cell(s, r, R_FORM_TITLE);
        if ((version = cell(s, r, R_VERSION)) != NULL) {
            if (parse_int64(version, 1, VERSION_MAX, &v, &errstr) == 0)
                out->version = v;
            else
                problem_add(c, 0, SHEET_SETTINGS, row, column_header(s, R_VERSION, "version"),
                            "the version '%s' is not a whole number from 1 to %d", shorten(c, version), VERSION_MAX);
        }
        if ((lang = cell(s, r, R_DEFAULT_LANGUAGE)) != NULL) {
            if ((code = language_code(c, lang)) != NULL)
                c->default_lang = code;
            else
                problem_add(c, 0, SHEET_SETTINGS, row, column_header(s, R_DEFAULT_LANGUAGE, "default_language"),
                            "the language '%s' has no code: write it as 'Name (code)', e.g. 'English (en)'",
                            shorten(c, lang));
        }
    }
    if (id_text == NULL)
        id_text = out->title;
    if (id_text == NULL)
        problem_add(c, 0, SHEET_SETTINGS, row, column_header(s, R_FORM_ID, "form_id"),
                    "the form needs an id: give the settings sheet a form_id (or a form_title)");
    else if ((out->id = id_from_text(c, id_text)) == NULL)
        problem_add(c, 0, SHEET_SETTINGS, row, column_header(s, R_FORM_ID, "form_id"),
                    "the form id '%s' has no ASCII letter to make a Sanad id ([a-z][a-z0-9_]*) from",
                    shorten(c, id_text));
    if (out->title == NULL)
        out->title = id_text;
}

/* The default language when the settings give none: "en" for bare label columns, else the language of
 * the first translated label column. */
static const char *default_language_guess(struct converter *c)
{
    const struct sheet *s = &c->sheets[SHEET_SURVEY];
    int i;

    for (i = 0; i < s->ncols; i++)
        if (s->cols[i].role == R_LABEL && s->cols[i].lang == NULL && !s->cols[i].lang_bad)
            return "en";
    for (i = 0; i < s->ncols; i++)
        if (s->cols[i].role == R_LABEL && s->cols[i].lang)
            return s->cols[i].lang;
    return "en";
}

/* ---- choices -------------------------------------------------------------------------------------- */

struct choice {
    const char *list, *code;
    int row;                /* spreadsheet row */
    int index;              /* in the sheet's rows */
};

static int choice_order(const void *x, const void *y)
{
    const struct choice *a = x, *b = y;
    int d = strcmp(a->list, b->list);

    if (d == 0)
        d = strcmp(a->code, b->code);
    return d ? d : (a->row > b->row) - (a->row < b->row);
}

static void choices_read(struct converter *c)
{
    struct sheet *s = &c->sheets[SHEET_CHOICES];
    struct choice *all;
    const char *list, *code;
    json_t *label, *options;
    int i, n = 0, *bad;

    if (!s->present)
        return;
    all = arena_alloc(&c->arena, sizeof(*all) * (size_t)(s->nrows + 1));
    bad = arena_alloc(&c->arena, sizeof(int) * (size_t)(s->nrows + 1));
    for (i = 0; i < s->nrows; i++) {
        const struct row *r = &s->rows[i];

        list = cell(s, r, R_LIST_NAME);
        code = cell(s, r, R_NAME);
        unsupported_cells(c, s, r);
        if (list == NULL) {
            problem_add(c, 0, SHEET_CHOICES, r->number, column_header(s, R_LIST_NAME, "list_name"),
                        "the choice has no list_name");
            bad[i] = 1;
            continue;
        }
        json_object_set_new(c->lists_seen, list, json_true());
        if (code == NULL) {
            problem_add(c, 0, SHEET_CHOICES, r->number, column_header(s, R_NAME, "name"), "the choice has no name");
            bad[i] = 1;
        } else if (!option_code_valid(code)) {
            problem_add(c, 0, SHEET_CHOICES, r->number, column_header(s, R_NAME, "name"),
                        "the choice name '%s' is not an option code: 1 to 64 ASCII letters, digits, '_', '.' or '-'",
                        shorten(c, code));
            bad[i] = 1;
        } else {
            all[n].list = list;
            all[n].code = code;
            all[n].row = r->number;
            all[n].index = i;
            n++;
        }
    }
    /* duplicates: sorted by (list, code, row), the later rows of a run are reported */
    qsort(all, (size_t)n, sizeof(*all), choice_order);
    for (i = 1; i < n; i++) {
        if (strcmp(all[i].list, all[i - 1].list) == 0 && strcmp(all[i].code, all[i - 1].code) == 0) {
            problem_add(c, 0, SHEET_CHOICES, all[i].row, column_header(s, R_NAME, "name"),
                        "the list '%s' already has a choice named '%s' (row %d)", shorten(c, all[i].list),
                        shorten(c, all[i].code), all[i - 1].row);
            bad[all[i].index] = 1;
        }
    }
    for (i = 0; i < s->nrows; i++) {
        const struct row *r = &s->rows[i];

        if (bad[i])
            continue;
        label = texts(c, s, r, R_LABEL);
        if (label == NULL) {
            problem_add(c, 0, SHEET_CHOICES, r->number, column_header(s, R_LABEL, "label"), "the choice has no label");
            continue;
        }
        list = cell(s, r, R_LIST_NAME);
        if ((options = json_object_get(c->lists, list)) == NULL) {
            options = must(json_array());
            json_object_set_new(c->lists, list, options);
        }
        json_array_append_new(options, must(json_pack("{s:s,s:o}", "code", cell(s, r, R_NAME), "label", label)));
    }
}

/* ---- survey types --------------------------------------------------------------------------------- */

struct type_rule {
    const char *name;       /* lower case, words joined by '_' */
    enum row_kind kind;
    enum value_type vtype;
    const char *why;        /* K_UNSUPPORTED: the sentence that says why */
};

static const char location_why[] = "locations (geopoint, geotrace, geoshape) are not supported";
static const char media_type_why[] = "audio and video answers are not supported: Sanad files are documents and images";
static const char from_file_why[] =
    "choices from an attached file are not supported: put the choices in the choices sheet";

static const struct type_rule type_rules[] = {
    { "text", K_VALUE, V_TEXT, NULL },
    { "string", K_VALUE, V_TEXT, NULL },
    { "integer", K_VALUE, V_INTEGER, NULL },
    { "int", K_VALUE, V_INTEGER, NULL },
    { "decimal", K_VALUE, V_DECIMAL, NULL },
    { "date", K_VALUE, V_DATE, NULL },
    { "datetime", K_VALUE, V_DATETIME, NULL },
    { "select_one", K_VALUE, V_SELECT_ONE, NULL },
    { "select_multiple", K_VALUE, V_SELECT_MULTIPLE, NULL },
    { "acknowledge", K_VALUE, V_ACKNOWLEDGE, NULL },
    { "image", K_VALUE, V_IMAGE, NULL },
    { "photo", K_VALUE, V_IMAGE, NULL },
    { "file", K_VALUE, V_FILE, NULL },
    { "calculate", K_CALCULATE, V_NONE, NULL },
    { "note", K_NOTE, V_NONE, NULL },
    { "begin_group", K_BEGIN_GROUP, V_NONE, NULL },
    { "end_group", K_END_GROUP, V_NONE, NULL },
    { "begin_repeat", K_BEGIN_REPEAT, V_NONE, NULL },
    { "end_repeat", K_END_REPEAT, V_NONE, NULL },
    /* metadata ODK Collect records about the filling; Sanad records who and when itself */
    { "start", K_META, V_NONE, NULL },
    { "end", K_META, V_NONE, NULL },
    { "deviceid", K_META, V_NONE, NULL },
    { "username", K_META, V_NONE, NULL },
    { "phonenumber", K_META, V_NONE, NULL },
    { "simserial", K_META, V_NONE, NULL },
    { "subscriberid", K_META, V_NONE, NULL },
    { "email", K_META, V_NONE, NULL },
    { "today", K_TODAY, V_NONE, NULL },
    { "geopoint", K_UNSUPPORTED, V_NONE, location_why },
    { "geotrace", K_UNSUPPORTED, V_NONE, location_why },
    { "geoshape", K_UNSUPPORTED, V_NONE, location_why },
    { "start-geopoint", K_UNSUPPORTED, V_NONE, location_why },
    { "background-geopoint", K_UNSUPPORTED, V_NONE, location_why },
    { "audio", K_UNSUPPORTED, V_NONE, media_type_why },
    { "video", K_UNSUPPORTED, V_NONE, media_type_why },
    { "background-audio", K_UNSUPPORTED, V_NONE, media_type_why },
    { "barcode", K_UNSUPPORTED, V_NONE, "barcode questions are not supported: use text" },
    { "range", K_UNSUPPORTED, V_NONE, "range questions are not supported: use integer or decimal with a constraint" },
    { "rank", K_UNSUPPORTED, V_NONE, "rank questions are not supported" },
    { "time", K_UNSUPPORTED, V_NONE, "time questions are not supported: use datetime" },
    { "hidden", K_UNSUPPORTED, V_NONE, "hidden questions are not supported: use calculate" },
    { "trigger", K_UNSUPPORTED, V_NONE, "trigger questions are not supported: use acknowledge" },
    { "audit", K_UNSUPPORTED, V_NONE, "audit logs are not supported: Sanad keeps its own audit log" },
    { "select_one_from_file", K_UNSUPPORTED, V_NONE, from_file_why },
    { "select_multiple_from_file", K_UNSUPPORTED, V_NONE, from_file_why },
    { "select_one_external", K_UNSUPPORTED, V_NONE, from_file_why },
    { "xml-external", K_UNSUPPORTED, V_NONE, "attached data files are not supported" },
    { "csv-external", K_UNSUPPORTED, V_NONE, "attached data files are not supported" },
    { "begin_loop", K_UNSUPPORTED, V_NONE, "loops are not supported: use a repeat" },
    { "end_loop", K_UNSUPPORTED, V_NONE, "loops are not supported: use a repeat" },
    { NULL, K_NONE, V_NONE, NULL },
};

/* Read the type cell of a row into e (kind, vtype, list); problems are reported at the type column. */
static void type_read(struct converter *c, struct entry *e, const char *type)
{
    const struct sheet *s = &c->sheets[SHEET_SURVEY];
    const char *column = column_header(s, R_TYPE, "type");
    const struct type_rule *rule;
    char *words[4], *copy, *p;
    int n = 0, row = e->row->number;

    e->kind = K_NONE;
    copy = lowered(&c->arena, type);
    for (p = copy; *p && n < 4;) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        words[n++] = p;
        while (*p && !is_space(*p))
            p++;
        if (*p)
            *p++ = '\0';
    }
    if (n == 0)
        return;
    /* "select one", "begin group", ... are the same as "select_one", "begin_group" */
    if (n >= 2 && (!strcmp(words[0], "select") || !strcmp(words[0], "begin") || !strcmp(words[0], "end"))) {
        words[0] = arena_printf(&c->arena, "%s_%s", words[0], words[1]);
        memmove(&words[1], &words[2], sizeof(words[0]) * (size_t)(n - 2));
        n--;
    }
    for (rule = type_rules; rule->name; rule++)
        if (strcmp(rule->name, words[0]) == 0)
            break;
    if (rule->name == NULL) {
        problem_add(c, 0, SHEET_SURVEY, row, column, "the type '%s' is not an XLSForm type Sanad knows",
                    shorten(c, type));
        e->kind = K_UNSUPPORTED;
        return;
    }
    e->kind = rule->kind;
    e->vtype = rule->vtype;
    if (rule->kind == K_UNSUPPORTED) {
        problem_add(c, 0, SHEET_SURVEY, row, column, "%s", rule->why);
        return;
    }
    if (rule->vtype == V_SELECT_ONE || rule->vtype == V_SELECT_MULTIPLE) {
        if (n < 2) {
            problem_add(c, 0, SHEET_SURVEY, row, column, "%s needs the name of a choice list: '%s LIST'", rule->name,
                        rule->name);
            e->kind = K_UNSUPPORTED;
            return;
        }
        /* the list name keeps its case: find it in the cell as written */
        e->list = arena_strndup(&c->arena, type + (words[1] - copy), strcspn(type + (words[1] - copy), " \t\r\n"));
        if (n > 2) {
            if (!strcmp(words[2], "or_other"))
                problem_add(c, 0, SHEET_SURVEY, row, column,
                            "or_other is not supported: add an 'other' choice and a text question for it");
            else
                problem_add(c, 0, SHEET_SURVEY, row, column, "the type '%s' has more words than '%s LIST'",
                            shorten(c, type), rule->name);
            e->kind = K_UNSUPPORTED;
        }
        return;
    }
    if (n > 1) {
        problem_add(c, 0, SHEET_SURVEY, row, column, "the type '%s' has more words than '%s'", shorten(c, type),
                    rule->name);
        e->kind = K_UNSUPPORTED;
    }
}

/* ---- survey pass 1: one entry per row ------------------------------------------------------------- */

static int is_yes(const char *s)
{
    return s && (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcasecmp(s, "true()"));
}

static int is_no(const char *s)
{
    return s == NULL || !strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcasecmp(s, "false()");
}

static int entry_by_xls_name(const void *x, const void *y)
{
    const struct entry *a = *(struct entry *const *)x, *b = *(struct entry *const *)y;
    int d = strcmp(a->xls_name, b->xls_name);

    return d ? d : (a->row->number > b->row->number) - (a->row->number < b->row->number);
}

static int entry_by_name(const void *x, const void *y)
{
    const struct entry *a = *(struct entry *const *)x, *b = *(struct entry *const *)y;
    int d = strcmp(a->name, b->name);

    return d ? d : (a->row->number > b->row->number) - (a->row->number < b->row->number);
}

static const char *kind_word(enum row_kind k)
{
    return k == K_BEGIN_REPEAT || k == K_END_REPEAT ? "repeat" : "group";
}

/* Build c->entries: types, names and the group structure, with their problems. */
static void survey_structure(struct converter *c)
{
    struct sheet *s = &c->sheets[SHEET_SURVEY];
    const char *type_column = column_header(s, R_TYPE, "type"), *name_column = column_header(s, R_NAME, "name");
    const char *type, *why;
    struct entry *e, **sanad, **written;
    int *stack, depth = 0, i, k, nsanad = 0, nwritten = 0;

    c->nentries = s->nrows;
    c->entries = arena_alloc(&c->arena, sizeof(struct entry) * (size_t)(s->nrows + 1));
    c->by_name = arena_alloc(&c->arena, sizeof(struct entry *) * (size_t)(s->nrows + 1));
    sanad = arena_alloc(&c->arena, sizeof(struct entry *) * (size_t)(s->nrows + 1));
    written = arena_alloc(&c->arena, sizeof(struct entry *) * (size_t)(s->nrows + 1));
    stack = arena_alloc(&c->arena, sizeof(int) * (size_t)(s->nrows + 1));
    for (i = 0; i < s->nrows; i++) {
        e = &c->entries[i];
        e->row = &s->rows[i];
        e->parent = depth ? stack[depth - 1] : -1;
        e->repeat = -1;
        for (k = depth - 1; k >= 0; k--) {
            if (c->entries[stack[k]].kind == K_BEGIN_REPEAT) {
                e->repeat = stack[k];
                break;
            }
        }
        e->depth = depth;
        e->discard = e->parent >= 0 && c->entries[e->parent].discard;
        if ((type = cell(s, e->row, R_TYPE)) == NULL) {
            e->kind = K_NONE;
            if (cell(s, e->row, R_NAME) || cell(s, e->row, R_LABEL))
                problem_add(c, 0, SHEET_SURVEY, e->row->number, type_column, "the row has no type");
            continue;
        }
        type_read(c, e, type);
        if (is_yes(cell(s, e->row, R_DISABLED))) {
            if (e->kind == K_BEGIN_GROUP || e->kind == K_END_GROUP || e->kind == K_BEGIN_REPEAT || e->kind == K_END_REPEAT)
                problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_DISABLED, "disabled"),
                            "disabled is not supported on begin and end rows: delete the group instead");
            else
                e->kind = K_DISABLED;
        }
        switch (e->kind) {
        case K_BEGIN_GROUP:
        case K_BEGIN_REPEAT:
            if (depth >= GROUP_DEPTH_MAX)
                problem_add(c, 0, SHEET_SURVEY, e->row->number, type_column, "groups are nested more than %d deep",
                            GROUP_DEPTH_MAX);
            if (e->kind == K_BEGIN_REPEAT && e->repeat >= 0 && !e->discard) {
                problem_add(c, 0, SHEET_SURVEY, e->row->number, type_column,
                            "a repeat inside a repeat is not supported (this one is inside '%s', row %d)",
                            shorten(c, c->entries[e->repeat].xls_name), c->entries[e->repeat].row->number);
                e->discard = 1;
            }
            stack[depth++] = i;
            break;
        case K_END_GROUP:
        case K_END_REPEAT:
            if (depth == 0) {
                problem_add(c, 0, SHEET_SURVEY, e->row->number, type_column, "end_%s without a begin_%s",
                            kind_word(e->kind), kind_word(e->kind));
                break;
            }
            k = stack[--depth];
            if ((c->entries[k].kind == K_BEGIN_REPEAT) != (e->kind == K_END_REPEAT))
                problem_add(c, 0, SHEET_SURVEY, e->row->number, type_column, "end_%s closes the begin_%s of row %d",
                            kind_word(e->kind), kind_word(c->entries[k].kind), c->entries[k].row->number);
            break;
        default:
            break;
        }
        /* names: a value, calculate or repeat must have one, and it becomes a Sanad name */
        e->xls_name = cell(s, e->row, R_NAME);
        if (e->kind == K_END_GROUP || e->kind == K_END_REPEAT || e->kind == K_NONE)
            e->xls_name = NULL;
        if (e->xls_name == NULL) {
            if (e->kind == K_VALUE || e->kind == K_CALCULATE || e->kind == K_BEGIN_REPEAT)
                problem_add(c, 0, SHEET_SURVEY, e->row->number, name_column, "the row has no name");
            continue;
        }
        c->by_name[c->nnamed++] = e;
        if (e->kind == K_DISABLED)
            continue;
        written[nwritten++] = e;
        if (!(e->kind == K_VALUE || e->kind == K_CALCULATE || e->kind == K_BEGIN_REPEAT))
            continue;
        e->name = field_name(c, e->xls_name, &why);
        if (e->name == NULL) {
            problem_add(c, 0, SHEET_SURVEY, e->row->number, name_column, "the name '%s' %s", shorten(c, e->xls_name), why);
            continue;
        }
        sanad[nsanad++] = e;
    }
    for (k = depth - 1; k >= 0; k--) {
        e = &c->entries[stack[k]];
        problem_add(c, 0, SHEET_SURVEY, e->row->number, type_column, "begin_%s is never closed (no end_%s)",
                    kind_word(e->kind), kind_word(e->kind));
    }
    /* duplicates as written, then once lower-cased: "Age" and "age" would be one Sanad field */
    qsort(written, (size_t)nwritten, sizeof(*written), entry_by_xls_name);
    for (i = 1; i < nwritten; i++)
        if (strcmp(written[i]->xls_name, written[i - 1]->xls_name) == 0)
            problem_add(c, 0, SHEET_SURVEY, written[i]->row->number, name_column, "the name '%s' is already used in row %d",
                        shorten(c, written[i]->xls_name), written[i - 1]->row->number);
    qsort(sanad, (size_t)nsanad, sizeof(*sanad), entry_by_name);
    for (i = 1; i < nsanad; i++)
        if (strcmp(sanad[i]->name, sanad[i - 1]->name) == 0 && strcmp(sanad[i]->xls_name, sanad[i - 1]->xls_name) != 0)
            problem_add(c, 0, SHEET_SURVEY, sanad[i]->row->number, name_column,
                        "the names '%s' (row %d) and '%s' are one Sanad name, '%s'", shorten(c, sanad[i - 1]->xls_name),
                        sanad[i - 1]->row->number, shorten(c, sanad[i]->xls_name), sanad[i]->name);
    qsort(c->by_name, (size_t)c->nnamed, sizeof(*c->by_name), entry_by_xls_name);
}

/* The entry named xls_name (the first of its name), or NULL. */
static struct entry *entry_find(struct converter *c, const char *xls_name)
{
    int lo = 0, hi = c->nnamed - 1, mid, d;
    struct entry *found = NULL;

    while (lo <= hi) {
        mid = lo + (hi - lo) / 2;
        d = strcmp(xls_name, c->by_name[mid]->xls_name);
        if (d <= 0) {
            if (d == 0)
                found = c->by_name[mid];
            hi = mid - 1;
        } else {
            lo = mid + 1;
        }
    }
    return found;
}

/* ---- expressions: parsing XLSForm (XPath) --------------------------------------------------------- */

enum tok {
    T_END, T_NUMBER, T_STRING, T_REF, T_DOT, T_WORD, T_LPAREN, T_RPAREN, T_COMMA, T_EQ, T_NE, T_LT, T_LE,
    T_GT, T_GE, T_PLUS, T_MINUS, T_STAR, T_BAD,
};

struct token {
    enum tok kind;
    const char *text;       /* T_STRING: inside the quotes; T_REF: inside ${ } */
    size_t len;
    const char *bad;        /* T_BAD: what is wrong */
};

struct parser {
    struct converter *c;
    const char *p;          /* next byte of the cell */
    struct token tok;       /* the current token */
    struct entry *self;     /* the row the expression belongs to ('.') */
    int repeat;             /* the repeat the expression is evaluated in, -1 for none */
    int row;
    const char *column;     /* header of the cell's column */
    int constraint;         /* '.', regex(), string-length(), date() and now() are kept for constraint_map() */
    int depth;
    int failed;             /* a problem was reported: there is no translation */
    int stop;               /* a syntax error: parsing ends */
    const char *reported[8];/* names already reported for this cell */
    int nreported;
};

static void parse_problem(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void parse_problem(struct parser *ps, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    problem_vadd(ps->c, 0, SHEET_SURVEY, ps->row, ps->column, fmt, ap);
    va_end(ap);
    ps->failed = 1;
}

/* 1 the first time key is reported in this cell (a name used twice is reported once). */
static int parse_first(struct parser *ps, const char *key)
{
    int i;

    for (i = 0; i < ps->nreported; i++)
        if (strcmp(ps->reported[i], key) == 0)
            return 0;
    if (ps->nreported < (int)(sizeof(ps->reported) / sizeof(ps->reported[0])))
        ps->reported[ps->nreported++] = key;
    return 1;
}

static void lex(struct parser *ps)
{
    struct token *t = &ps->tok;
    const char *p = ps->p, *q;

    while (is_space(*p))
        p++;
    t->text = p;
    t->len = 1;
    t->bad = NULL;
    q = p + 1;
    if (*p == '\0') {
        t->kind = T_END;
        t->len = 0;
        q = p;
    } else if (p[0] == '$' && p[1] == '{') {
        if ((q = strchr(p + 2, '}')) == NULL) {
            t->kind = T_BAD;
            t->bad = "a '${' is not closed with '}'";
            q = p + 2;
        } else {
            t->kind = T_REF;
            t->text = p + 2;
            t->len = (size_t)(q - (p + 2));
            q++;
        }
    } else if (is_digit(*p) || (*p == '.' && is_digit(p[1]))) {
        for (q = p; is_digit(*q); q++)
            ;
        if (*q == '.')
            for (q++; is_digit(*q); q++)
                ;
        t->kind = T_NUMBER;
        t->len = (size_t)(q - p);
    } else if (*p == '.') {
        t->kind = p[1] == '.' ? T_BAD : T_DOT;
        t->bad = "'..' (a parent node) is not supported: refer to fields as ${name}";
    } else if (*p == '\'' || *p == '"') {
        if ((q = strchr(p + 1, *p)) == NULL) {
            t->kind = T_BAD;
            t->bad = "a text in quotes is not closed";
            q = p + 1;
        } else {
            t->kind = T_STRING;
            t->text = p + 1;
            t->len = (size_t)(q - (p + 1));
            q++;
        }
    } else if (is_alpha(*p) || *p == '_') {
        for (q = p; is_alpha(*q) || is_digit(*q) || *q == '_' || *q == '-' || *q == '.' || *q == ':'; q++)
            ;
        t->kind = T_WORD;
        t->len = (size_t)(q - p);
    } else {
        switch (*p) {
        case '(': t->kind = T_LPAREN; break;
        case ')': t->kind = T_RPAREN; break;
        case ',': t->kind = T_COMMA; break;
        case '+': t->kind = T_PLUS; break;
        case '-': t->kind = T_MINUS; break;
        case '*': t->kind = T_STAR; break;
        case '=':
            t->kind = p[1] == '=' ? T_BAD : T_EQ;
            t->bad = "'==' is not XPath: write '='";
            break;
        case '!':
            t->kind = p[1] == '=' ? T_NE : T_BAD;
            t->bad = "'!' is not XPath: write not(...)";
            q = p + 2;
            break;
        case '<':
        case '>':
            t->kind = p[1] == '=' ? (*p == '<' ? T_LE : T_GE) : (*p == '<' ? T_LT : T_GT);
            q = p[1] == '=' ? p + 2 : p + 1;
            break;
        case '/':
            t->kind = T_BAD;
            t->bad = "paths (/data/...) are not supported: refer to fields as ${name}, and divide with 'div'";
            break;
        case '[':
            t->kind = T_BAD;
            t->bad = "predicates ([...]) are not supported";
            break;
        case '|':
            t->kind = T_BAD;
            t->bad = "node-set unions (|) are not supported";
            break;
        case '&':
            t->kind = T_BAD;
            t->bad = "'&' is not XPath: write 'and'";
            break;
        default:
            t->kind = T_BAD;
            t->bad = "the expression has a character XPath does not use here";
            break;
        }
        t->len = (size_t)(q - p);
    }
    ps->p = q;
}

static void syntax_error(struct parser *ps, const char *what)
{
    if (!ps->stop)
        parse_problem(ps, "%s", what);
    ps->stop = 1;
}

static int tok_word(const struct parser *ps, const char *w)
{
    return ps->tok.kind == T_WORD && ps->tok.len == strlen(w) && memcmp(ps->tok.text, w, ps->tok.len) == 0;
}

static struct node *node_new(struct parser *ps, enum node_kind kind)
{
    struct node *n = arena_alloc(&ps->c->arena, sizeof(*n));

    n->kind = kind;
    n->height = 1;
    return n;
}

static int height_of(const struct node *n)
{
    return n ? n->height : 0;
}

/* A node over children: NULL (parsing stops) when a child is NULL or the tree grows too high. */
static struct node *node_over(struct parser *ps, struct node *n, struct node *a, struct node *b)
{
    if (a == NULL || (b == NULL && n->kind == N_BINARY))
        return NULL;
    n->a = a;
    n->b = b;
    n->height = 1 + (height_of(a) > height_of(b) ? height_of(a) : height_of(b));
    if (n->height > EXPR_HEIGHT_MAX) {
        syntax_error(ps, "the expression is nested too deeply (more than 256 levels)");
        return NULL;
    }
    return n;
}

static struct node *binary(struct parser *ps, enum op op, struct node *a, struct node *b)
{
    struct node *n = node_new(ps, N_BINARY);

    n->op = op;
    return node_over(ps, n, a, b);
}

static struct node *negation(struct parser *ps, enum node_kind kind, struct node *a)
{
    return node_over(ps, node_new(ps, kind), a, NULL);
}

static struct node *call_new(struct parser *ps, const char *name, struct node **args, int nargs)
{
    struct node *n = node_new(ps, N_CALL);
    int i;

    n->text = name;
    n->args = args;
    n->nargs = nargs;
    for (i = 0; i < nargs; i++)
        if (args[i]->height + 1 > n->height)
            n->height = args[i]->height + 1;
    return n;
}

static struct node *call1(struct parser *ps, const char *name, struct node *arg)
{
    struct node **args = arena_alloc(&ps->c->arena, sizeof(*args));

    args[0] = arg;
    return call_new(ps, name, args, 1);
}

static struct node *literal(struct parser *ps, enum node_kind kind, const char *text)
{
    struct node *n = node_new(ps, kind);

    n->text = text;
    return n;
}

/* A number as Sanad writes it: no leading zeros, a digit before the point, none after it if nothing follows. */
static const char *number_text(struct converter *c, const char *s, size_t len)
{
    size_t i = 0, j;
    char *out = arena_alloc(&c->arena, len + 2), *o = out;

    while (i + 1 < len && s[i] == '0' && is_digit(s[i + 1]))
        i++;
    if (s[i] == '.')
        *o++ = '0';
    for (; i < len && s[i] != '.'; i++)
        *o++ = s[i];
    if (i < len) {
        for (j = len; j > i + 1 && s[j - 1] == '0'; j--)
            ;
        if (j > i + 1) {
            memcpy(o, s + i, j - i);
            o += j - i;
        }
    }
    *o = '\0';
    return out;
}

static int is_number(const struct node *n)
{
    return n->kind == N_NUMBER || (n->kind == N_NEG && n->a->kind == N_NUMBER);
}

static int is_literal(const struct node *n)
{
    return is_number(n) || n->kind == N_STRING || n->kind == N_BOOL;
}

static int is_call(const struct node *n, const char *name)
{
    return n->kind == N_CALL && strcmp(n->text, name) == 0;
}

static int is_value_field(const struct node *n)
{
    return n->kind == N_FIELD && (n->field->kind == K_VALUE || n->field->kind == K_CALCULATE);
}

static struct node *parse_or(struct parser *ps);

/* ${name}: a field of the survey the expression can see. */
static struct node *reference(struct parser *ps, const char *name)
{
    struct converter *c = ps->c;
    struct entry *e;
    struct node *n;

    if (strchr(name, '#')) {
        if (parse_first(ps, name))
            parse_problem(ps, "${%s}: values of the last saved entry are not supported", shorten(c, name));
        return node_new(ps, N_BAD);
    }
    if ((e = entry_find(c, name)) == NULL) {
        if (parse_first(ps, name))
            parse_problem(ps, "the expression refers to ${%s}, which is not in the survey", shorten(c, name));
        return node_new(ps, N_BAD);
    }
    switch (e->kind) {
    case K_TODAY:
        return node_new(ps, N_TODAY);
    case K_VALUE:
    case K_CALCULATE:
    case K_BEGIN_REPEAT:
        if (e->name == NULL || e->discard) {
            ps->failed = 1;     /* reported at its own row */
            return node_new(ps, N_BAD);
        }
        if (e->repeat >= 0 && e->repeat != ps->repeat) {
            if (parse_first(ps, name))
                parse_problem(ps, "the expression refers to ${%s} inside the repeat '%s' from outside it", shorten(c, name),
                              shorten(c, c->entries[e->repeat].xls_name));
            return node_new(ps, N_BAD);
        }
        n = node_new(ps, N_FIELD);
        n->field = e;
        return n;
    default:
        break;
    }
    if (parse_first(ps, name)) {
        if (e->kind == K_META)
            parse_problem(ps, "${%s} is metadata ODK Collect records, which Sanad does not keep in the entry",
                          shorten(c, name));
        else if (e->kind == K_NOTE)
            parse_problem(ps, "the expression refers to the note ${%s}: notes hold no value in Sanad", shorten(c, name));
        else if (e->kind == K_BEGIN_GROUP)
            parse_problem(ps, "the expression refers to the group ${%s}, which holds no value", shorten(c, name));
        else if (e->kind == K_DISABLED)
            parse_problem(ps, "the expression refers to ${%s}, which is disabled", shorten(c, name));
        else
            parse_problem(ps, "the expression refers to ${%s}, whose question cannot be converted", shorten(c, name));
    }
    return node_new(ps, N_BAD);
}

enum func_kind { F_CALL, F_SELECTED, F_COUNT_SELECTED, F_COUNT, F_ROUND, F_NOT, F_TRUE, F_FALSE, F_TODAY, F_LENGTH,
                 F_DATE, F_CONSTRAINT };

struct func_rule {
    const char *xls;
    const char *sanad;
    int min, max;
    enum func_kind kind;
};

static const struct func_rule func_rules[] = {
    { "if", "if", 3, 3, F_CALL },
    { "selected", "selected", 2, 2, F_SELECTED },
    { "count-selected", "count", 1, 1, F_COUNT_SELECTED },
    { "count", "count", 1, 1, F_COUNT },
    { "coalesce", "coalesce", 2, 2, F_CALL },
    { "round", "round", 1, 2, F_ROUND },
    { "min", "min", 1, EXPR_ARGS_MAX, F_CALL },
    { "max", "max", 1, EXPR_ARGS_MAX, F_CALL },
    { "number", "number", 1, 1, F_CALL },
    { "not", NULL, 1, 1, F_NOT },
    { "true", NULL, 0, 0, F_TRUE },
    { "false", NULL, 0, 0, F_FALSE },
    { "today", NULL, 0, 0, F_TODAY },
    { "string-length", "string-length", 1, 1, F_LENGTH },
    { "regex", "regex", 2, 2, F_CONSTRAINT },
    { "date", NULL, 1, 1, F_DATE },
    { "now", "now", 0, 0, F_CONSTRAINT },
    { NULL, NULL, 0, 0, F_CALL },
};

static const struct {
    const char *xls;
    const char *why;
} func_refused[] = {
    { "int", "int() has no equivalent in Sanad: use round(x, 0) if rounding is what is meant" },
    { "now", "now() is supported only in a constraint '. <= now()': Sanad expressions know the date, not the time" },
    { "sum", "sum() over a repeat is not supported" },
    { "pulldata", "pulldata() reads a file attached to the form, which Sanad forms cannot have" },
    { "indexed-repeat", "indexed-repeat() is not supported: an expression inside a repeat sees only its own row" },
    { "position", "position() is not supported" },
    { "once", "once() is not supported: Sanad computes values each time the entry is saved" },
    { "regex", "regex() is supported only as a whole constraint, regex(., 'pattern')" },
    { NULL, NULL },
};

/* name(args): the XLSForm function as a Sanad one, or a problem. */
static struct node *call(struct parser *ps, const char *name, struct node **args, int nargs)
{
    const struct func_rule *rule;
    struct node *n, **more;
    int i;

    for (rule = func_rules; rule->xls; rule++)
        if (strcmp(rule->xls, name) == 0)
            break;
    if (rule->xls && rule->kind == F_CONSTRAINT && !ps->constraint)
        rule = NULL;    /* described in func_refused */
    if (rule == NULL || rule->xls == NULL) {
        if (parse_first(ps, name)) {
            for (i = 0; func_refused[i].xls; i++)
                if (strcmp(func_refused[i].xls, name) == 0)
                    break;
            if (func_refused[i].xls)
                parse_problem(ps, "%s", func_refused[i].why);
            else if (strncmp(name, "jr:", 3) == 0)
                parse_problem(ps, "%s() is an ODK Collect extension Sanad does not have", name);
            else
                parse_problem(ps, "%s() has no equivalent in Sanad's expression language", name);
        }
        return node_new(ps, N_BAD);
    }
    if (nargs < rule->min || nargs > rule->max) {
        if (rule->min == rule->max)
            parse_problem(ps, "%s() takes %d argument%s, not %d", name, rule->min, rule->min == 1 ? "" : "s", nargs);
        else
            parse_problem(ps, "%s() takes %d to %d arguments, not %d", name, rule->min, rule->max, nargs);
        return node_new(ps, N_BAD);
    }
    for (i = 0; i < nargs; i++)
        if (args[i]->kind == N_BAD)
            return args[i];
    switch (rule->kind) {
    case F_NOT:
        return negation(ps, N_NOT, args[0]);
    case F_TRUE:
    case F_FALSE:
        n = node_new(ps, N_BOOL);
        n->value = rule->kind == F_TRUE;
        return n;
    case F_TODAY:
        return node_new(ps, N_TODAY);
    case F_DATE:    /* Sanad dates are 'YYYY-MM-DD' texts, which compare in time order */
        if (args[0]->kind != N_STRING || !date_valid(args[0]->text)) {
            parse_problem(ps, "date() is supported only with a date written out: date('YYYY-MM-DD')");
            return node_new(ps, N_BAD);
        }
        return args[0];
    case F_SELECTED:
        if (!(args[0]->kind == N_CURRENT || (args[0]->kind == N_FIELD && args[0]->field->kind == K_VALUE
                                              && (args[0]->field->vtype == V_SELECT_ONE
                                                  || args[0]->field->vtype == V_SELECT_MULTIPLE)))) {
            parse_problem(ps, "selected() takes a select question first: selected(${name}, 'code')");
            return node_new(ps, N_BAD);
        }
        break;
    case F_COUNT_SELECTED:
        if (!(args[0]->kind == N_CURRENT || (args[0]->kind == N_FIELD && args[0]->field->kind == K_VALUE
                                              && args[0]->field->vtype == V_SELECT_MULTIPLE))) {
            parse_problem(ps, "count-selected() takes a select_multiple question: count-selected(${name})");
            return node_new(ps, N_BAD);
        }
        break;
    case F_COUNT:
        if (!(args[0]->kind == N_FIELD && args[0]->field->kind == K_BEGIN_REPEAT)) {
            parse_problem(ps, "count() is supported only for the rows of a repeat: count(${repeat})");
            return node_new(ps, N_BAD);
        }
        break;
    case F_ROUND:
        if (nargs == 1) {   /* XPath's round(x) has no digits: round(x, 0) */
            more = arena_alloc(&ps->c->arena, sizeof(*more) * 2);
            more[0] = args[0];
            more[1] = literal(ps, N_NUMBER, "0");
            args = more;
            nargs = 2;
        }
        break;
    default:
        break;
    }
    n = call_new(ps, rule->sanad, args, nargs);
    if (n->height > EXPR_HEIGHT_MAX) {
        syntax_error(ps, "the expression is nested too deeply (more than 256 levels)");
        return NULL;
    }
    return n;
}

/* A text XPath would read as a number: digits with an optional point and fraction. */
static int numeric_text(const char *s)
{
    size_t i = 0, digits = 0;

    while (is_digit(s[i])) {
        i++;
        digits++;
    }
    if (s[i] == '.')
        for (i++; is_digit(s[i]); i++)
            digits++;
    return digits > 0 && s[i] == '\0' && i < 32;
}

static int is_empty_text(const struct node *n)
{
    return n->kind == N_STRING && n->text[0] == '\0';
}

static const enum op op_flipped[] = {
    [OP_EQ] = OP_EQ, [OP_NE] = OP_NE, [OP_LT] = OP_GT, [OP_LE] = OP_GE, [OP_GT] = OP_LT, [OP_GE] = OP_LE,
};

/* l op r, rewritten where XLSForm and Sanad compare differently: in XLSForm an unanswered field is '',
 * in Sanad it is null, and a comparison with null is false. */
static struct node *comparison(struct parser *ps, enum op op, struct node *l, struct node *r)
{
    struct node *field, *lit, *length, *num;
    double v;
    enum op o;

    if (l == NULL || r == NULL)
        return NULL;
    if (l->kind == N_BAD || r->kind == N_BAD)
        return l->kind == N_BAD ? l : r;
    if (ps->constraint)
        return binary(ps, op, l, r);
    if (is_empty_text(l) || is_empty_text(r)) {
        field = is_empty_text(l) ? r : l;
        if (op == OP_EQ)
            return call1(ps, "empty", field);
        if (op == OP_NE)
            return negation(ps, N_NOT, call1(ps, "empty", field));
        parse_problem(ps, "only = and != compare with ''");
        return node_new(ps, N_BAD);
    }
    /* string-length(x) compared with a number says whether x is empty */
    if ((is_call(l, "string-length") && is_number(r)) || (is_call(r, "string-length") && is_number(l))) {
        length = is_call(l, "string-length") ? l : r;
        num = length == l ? r : l;
        o = length == l ? op : op_flipped[op];
        v = strtod(num->kind == N_NEG ? num->a->text : num->text, NULL) * (num->kind == N_NEG ? -1 : 1);
        if ((o == OP_EQ && v == 0) || (o == OP_LT && v == 1) || (o == OP_LE && v == 0))
            return call1(ps, "empty", length->args[0]);
        if ((o == OP_NE && v == 0) || (o == OP_GT && v == 0) || (o == OP_GE && v == 1))
            return negation(ps, N_NOT, call1(ps, "empty", length->args[0]));
        parse_problem(ps, "string-length() is supported only to test for an empty answer (string-length(${x}) = 0 or > 0)");
        return node_new(ps, N_BAD);
    }
    field = is_value_field(l) ? l : is_value_field(r) ? r : NULL;
    lit = field == l ? r : l;
    if (field && is_literal(lit)) {
        enum value_type t = field->field->vtype;

        if (t == V_ACKNOWLEDGE && lit->kind == N_STRING && strcmp(lit->text, "OK") == 0) {
            lit->kind = N_BOOL;     /* acknowledge is "OK" in XLSForm, true in Sanad */
            lit->value = 1;
        } else if (t == V_SELECT_MULTIPLE && (op == OP_EQ || op == OP_NE)) {
            parse_problem(ps, "a select_multiple is compared with selected(${%s}, 'code'), not with = or !=",
                          shorten(ps->c, field->field->xls_name));
            return node_new(ps, N_BAD);
        } else if ((t == V_INTEGER || t == V_DECIMAL) && lit->kind == N_STRING && numeric_text(lit->text)) {
            /* XPath compares a number with a text as numbers; Sanad's '4' = 4 is false */
            lit->kind = N_NUMBER;
            lit->text = number_text(ps->c, lit->text, strlen(lit->text));
        } else if ((t == V_SELECT_ONE || t == V_TEXT) && is_number(lit)) {
            /* choice codes are texts: XPath's ${q} = 1 compares numbers */
            if (field == l)
                l = call1(ps, "number", l);
            else
                r = call1(ps, "number", r);
        }
    }
    return binary(ps, op, l, r);
}

/* Is a date (a 'YYYY-MM-DD' text) what n gives? Datetimes are not: XPath counts their hours. */
static int is_date(const struct node *n)
{
    return n->kind == N_TODAY || (n->kind == N_FIELD && n->field->kind == K_VALUE && n->field->vtype == V_DATE)
           || (n->kind == N_STRING && date_valid(n->text));
}

static int is_datetime(const struct node *n)
{
    return n->kind == N_FIELD && n->field->kind == K_VALUE && n->field->vtype == V_DATETIME;
}

/* l op r for + - * div mod: XPath counts dates in days, Sanad's dates are texts. date - date is
 * days_between(); any other arithmetic on a date is a problem. */
static struct node *arithmetic(struct parser *ps, enum op op, struct node *l, struct node *r)
{
    struct node **args;

    if (l == NULL || r == NULL)
        return NULL;
    if (l->kind == N_BAD || r->kind == N_BAD)
        return l->kind == N_BAD ? l : r;
    if (op == OP_SUB && is_date(l) && is_date(r)) {
        args = arena_alloc(&ps->c->arena, sizeof(*args) * 2);
        args[0] = r;
        args[1] = l;
        return call_new(ps, "days_between", args, 2);
    }
    if (is_date(l) || is_date(r) || is_datetime(l) || is_datetime(r)) {
        parse_problem(ps, "arithmetic on dates is supported only as the days between two dates (${a} - ${b})");
        return node_new(ps, N_BAD);
    }
    return binary(ps, op, l, r);
}

static struct node *parse_primary(struct parser *ps)
{
    struct converter *c = ps->c;
    struct node *n, **args;
    const char *name;
    int nargs;

    switch (ps->tok.kind) {
    case T_NUMBER:
        n = literal(ps, N_NUMBER, number_text(c, ps->tok.text, ps->tok.len));
        lex(ps);
        return n;
    case T_STRING:
        n = literal(ps, N_STRING, arena_strndup(&c->arena, ps->tok.text, ps->tok.len));
        lex(ps);
        return n;
    case T_REF:
        n = reference(ps, arena_strndup(&c->arena, ps->tok.text, ps->tok.len));
        lex(ps);
        return n;
    case T_DOT:
        lex(ps);
        if (ps->constraint)
            return node_new(ps, N_CURRENT);
        if (!(ps->self->kind == K_VALUE || ps->self->kind == K_CALCULATE)) {
            parse_problem(ps, "'.' (the current question) means nothing on this row");
            return node_new(ps, N_BAD);
        }
        if (ps->self->name == NULL) {
            ps->failed = 1;     /* its name is reported at the name column */
            return node_new(ps, N_BAD);
        }
        n = node_new(ps, N_FIELD);
        n->field = ps->self;
        return n;
    case T_LPAREN:
        lex(ps);
        n = parse_or(ps);
        if (n && ps->tok.kind != T_RPAREN)
            syntax_error(ps, "a '(' is not closed with ')'");
        lex(ps);
        return ps->stop ? NULL : n;
    case T_WORD:
        name = arena_strndup(&c->arena, ps->tok.text, ps->tok.len);
        lex(ps);
        if (ps->tok.kind != T_LPAREN) {
            syntax_error(ps, arena_printf(&c->arena, "'%s' is not a field reference: write fields as ${name}",
                                          shorten(c, name)));
            return NULL;
        }
        lex(ps);
        args = arena_alloc(&c->arena, sizeof(*args) * EXPR_ARGS_MAX);
        nargs = 0;
        if (ps->tok.kind == T_RPAREN) {
            lex(ps);
            return call(ps, name, args, 0);
        }
        for (;;) {
            if (nargs == EXPR_ARGS_MAX) {
                syntax_error(ps, "a function call has more than 64 arguments");
                return NULL;
            }
            if ((args[nargs++] = parse_or(ps)) == NULL)
                return NULL;
            if (ps->tok.kind == T_COMMA) {
                lex(ps);
                continue;
            }
            if (ps->tok.kind != T_RPAREN) {
                syntax_error(ps, arena_printf(&c->arena, "the call of %s() is not closed with ')'", shorten(c, name)));
                return NULL;
            }
            lex(ps);
            return call(ps, name, args, nargs);
        }
    case T_BAD:
        syntax_error(ps, ps->tok.bad);
        return NULL;
    case T_END:
        syntax_error(ps, "the expression ends where a value is expected");
        return NULL;
    default:
        syntax_error(ps, arena_printf(&c->arena, "'%.*s' is where a value is expected", (int)ps->tok.len, ps->tok.text));
        return NULL;
    }
}

static struct node *parse_unary(struct parser *ps)
{
    struct node *n;

    if (ps->tok.kind != T_MINUS)
        return parse_primary(ps);
    lex(ps);
    if (++ps->depth > EXPR_DEPTH_MAX) {
        syntax_error(ps, "the expression is nested too deeply");
        return NULL;
    }
    n = parse_unary(ps);
    ps->depth--;
    if (n && n->kind == N_BAD)
        return n;
    return negation(ps, N_NEG, n);
}

static struct node *parse_mul(struct parser *ps)
{
    struct node *l = parse_unary(ps);
    enum op op;

    while (l) {
        if (ps->tok.kind == T_STAR)
            op = OP_MUL;
        else if (tok_word(ps, "div"))
            op = OP_DIV;
        else if (tok_word(ps, "mod"))
            op = OP_MOD;
        else
            break;
        lex(ps);
        l = arithmetic(ps, op, l, parse_unary(ps));
    }
    return l;
}

static struct node *parse_add(struct parser *ps)
{
    struct node *l = parse_mul(ps);
    enum op op;

    while (l && (ps->tok.kind == T_PLUS || ps->tok.kind == T_MINUS)) {
        op = ps->tok.kind == T_PLUS ? OP_ADD : OP_SUB;
        lex(ps);
        l = arithmetic(ps, op, l, parse_mul(ps));
    }
    return l;
}

static struct node *parse_rel(struct parser *ps)
{
    struct node *l = parse_add(ps);
    enum op op;

    while (l) {
        switch (ps->tok.kind) {
        case T_LT: op = OP_LT; break;
        case T_LE: op = OP_LE; break;
        case T_GT: op = OP_GT; break;
        case T_GE: op = OP_GE; break;
        default: return l;
        }
        lex(ps);
        l = comparison(ps, op, l, parse_add(ps));
    }
    return l;
}

static struct node *parse_eq(struct parser *ps)
{
    struct node *l = parse_rel(ps);
    enum op op;

    while (l && (ps->tok.kind == T_EQ || ps->tok.kind == T_NE)) {
        op = ps->tok.kind == T_EQ ? OP_EQ : OP_NE;
        lex(ps);
        l = comparison(ps, op, l, parse_rel(ps));
    }
    return l;
}

static struct node *parse_and(struct parser *ps)
{
    struct node *l = parse_eq(ps), *r;

    while (l && tok_word(ps, "and")) {
        lex(ps);
        r = parse_eq(ps);
        l = r && (l->kind == N_BAD || r->kind == N_BAD) ? (l->kind == N_BAD ? l : r) : binary(ps, OP_AND, l, r);
    }
    return l;
}

static struct node *parse_or(struct parser *ps)
{
    struct node *l, *r;

    if (++ps->depth > EXPR_DEPTH_MAX) {
        syntax_error(ps, "the expression is nested too deeply");
        return NULL;
    }
    l = parse_and(ps);
    while (l && tok_word(ps, "or")) {
        lex(ps);
        r = parse_and(ps);
        l = r && (l->kind == N_BAD || r->kind == N_BAD) ? (l->kind == N_BAD ? l : r) : binary(ps, OP_OR, l, r);
    }
    ps->depth--;
    return l;
}

/* Report what parsed but has no place outside count() and comparisons. */
static void parse_check(struct parser *ps, const struct node *n, int in_count)
{
    int i;

    if (n == NULL)
        return;
    if (n->kind == N_FIELD && n->field->kind == K_BEGIN_REPEAT && !in_count && parse_first(ps, n->field->xls_name))
        parse_problem(ps, "the repeat ${%s} is used only in count(${%s})", shorten(ps->c, n->field->xls_name),
                      shorten(ps->c, n->field->xls_name));
    if (!ps->constraint && is_call(n, "string-length"))
        parse_problem(ps, "string-length() is supported only to test for an empty answer (string-length(${x}) = 0 or > 0)");
    parse_check(ps, n->a, 0);
    parse_check(ps, n->b, 0);
    for (i = 0; i < n->nargs; i++)
        parse_check(ps, n->args[i], is_call(n, "count"));
}

/* Parse the expression of a cell: the tree, or NULL when a problem was reported. */
static struct node *expression_parse(struct converter *c, struct entry *self, const char *column, const char *src,
                                     int constraint)
{
    struct parser ps;
    struct node *n;

    memset(&ps, 0, sizeof(ps));
    ps.c = c;
    ps.p = src;
    ps.self = self;
    ps.repeat = self->repeat;
    ps.row = self->row->number;
    ps.column = column;
    ps.constraint = constraint;
    lex(&ps);
    n = parse_or(&ps);
    if (n && ps.tok.kind != T_END)
        syntax_error(&ps, ps.tok.kind == T_BAD ? ps.tok.bad
                     : arena_printf(&c->arena, "the expression goes on after its end, at '%s'",
                                    shorten(c, ps.tok.text)));
    if (n && !ps.failed)
        parse_check(&ps, n, 0);
    return ps.failed || ps.stop || n == NULL || n->kind == N_BAD ? NULL : n;
}

/* ---- expressions: the trees of a row, parsed on first use ----------------------------------------- */

/* The calculation of a calculate row, or NULL (reported at its row). */
static struct node *calculation_tree(struct converter *c, struct entry *e)
{
    const struct sheet *s = &c->sheets[SHEET_SURVEY];
    const char *src;

    if (e->calc_state == MEMO_PENDING) {
        e->calc_state = MEMO_FAILED;
        if ((src = cell(s, e->row, R_CALCULATION)) == NULL)
            problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_CALCULATION, "calculation"),
                        "the calculate row has no calculation");
        else if ((e->calc = expression_parse(c, e, column_header(s, R_CALCULATION, "calculation"), src, 0)) != NULL)
            e->calc_state = MEMO_DONE;
    }
    return e->calc_state == MEMO_DONE ? e->calc : NULL;
}

/* The relevant of a row itself (NULL when it has none); *failed set when it cannot be translated. */
static struct node *relevant_own(struct converter *c, struct entry *e, int *failed)
{
    const struct sheet *s = &c->sheets[SHEET_SURVEY];
    const char *src;

    if (e->relevant_state == MEMO_PENDING) {
        e->relevant_state = MEMO_DONE;
        if ((src = cell(s, e->row, R_RELEVANT)) != NULL
            && (e->relevant = expression_parse(c, e, column_header(s, R_RELEVANT, "relevant"), src, 0)) == NULL)
            e->relevant_state = MEMO_FAILED;
    }
    if (e->relevant_state == MEMO_FAILED)
        *failed = 1;
    return e->relevant;
}

/* When a row is relevant: its own relevant and those of the groups around it, up to (not including) the
 * repeat it is in, whose relevant belongs to the repeat's own field. NULL when always. */
static struct node *relevant_tree(struct converter *c, struct entry *e, int *failed)
{
    struct node *parts[GROUP_DEPTH_MAX + 2], *acc = NULL, *n;
    struct entry *x;
    int k, nparts = 0;

    for (x = e; x; x = x->parent >= 0 ? &c->entries[x->parent] : NULL) {
        if (x != e && x->kind == K_BEGIN_REPEAT)
            break;
        if ((n = relevant_own(c, x, failed)) != NULL && nparts < (int)(sizeof(parts) / sizeof(parts[0])))
            parts[nparts++] = n;
    }
    /* outermost first: "group_condition and own_condition" */
    for (k = nparts - 1; k >= 0; k--) {
        if (acc == NULL) {
            acc = parts[k];
            continue;
        }
        n = arena_alloc(&c->arena, sizeof(*n));
        n->kind = N_BINARY;
        n->op = OP_AND;
        n->a = acc;
        n->b = parts[k];
        n->height = 1 + (acc->height > parts[k]->height ? acc->height : parts[k]->height);
        acc = n;
    }
    return acc;
}

/* ---- expressions: writing Sanad's ----------------------------------------------------------------- */

struct emitter {
    struct converter *c;
    struct buf out;
    int row;
    const char *column;
    struct entry *computing;    /* writing the expr of this calculate: those before it are computed already */
    int inline_depth;
    int failed;
};

static void emit_problem(struct emitter *em, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit_problem(struct emitter *em, const char *fmt, ...)
{
    va_list ap;

    if (em->failed)
        return;
    va_start(ap, fmt);
    problem_vadd(em->c, 0, SHEET_SURVEY, em->row, em->column, fmt, ap);
    va_end(ap);
    em->failed = 1;
}

static void put(struct emitter *em, const char *s)
{
    if (!em->failed && buf_puts(&em->out, s) < 0)
        emit_problem(em, "the expression is longer than %d bytes once the calculations it uses are written out",
                     EXPR_OUT_MAX);
}

/* Sanad's precedence, loosest first: or, and, not, comparisons, + -, * / %, unary -, atoms. */
static int precedence(const struct node *n)
{
    switch (n->kind) {
    case N_BINARY:
        switch (n->op) {
        case OP_OR: return 1;
        case OP_AND: return 2;
        case OP_ADD: case OP_SUB: return 5;
        case OP_MUL: case OP_DIV: case OP_MOD: return 6;
        default: return 4;
        }
    case N_NOT: return 3;
    case N_NEG: return 7;
    default: return 8;
    }
}

static void emit(struct emitter *em, const struct node *n, int min);

/* A calculate where it is used: its calculation, or if(relevant, calculation, null). */
static void emit_calculation(struct emitter *em, struct entry *e, int min)
{
    struct converter *c = em->c;
    struct node *calc, *rel;
    int failed = 0;

    if (e->inlining) {
        emit_problem(em, "the calculations refer to each other in a circle (through ${%s})", shorten(c, e->xls_name));
        return;
    }
    if (em->inline_depth >= INLINE_DEPTH_MAX) {
        emit_problem(em, "the calculations use each other more than %d deep", INLINE_DEPTH_MAX);
        return;
    }
    calc = calculation_tree(c, e);
    rel = relevant_tree(c, e, &failed);
    if (calc == NULL || failed) {
        em->failed = 1;     /* reported at the calculate's own row */
        return;
    }
    e->inlining = 1;
    em->inline_depth++;
    if (rel) {
        put(em, "if(");
        emit(em, rel, 0);
        put(em, ", ");
        emit(em, calc, 0);
        put(em, ", null)");
    } else {
        emit(em, calc, min);
    }
    em->inline_depth--;
    e->inlining = 0;
}

static void emit(struct emitter *em, const struct node *n, int min)
{
    int p = precedence(n), i;
    const char *bin, *q, *quote;

    if (em->failed)
        return;
    if (p < min)
        put(em, "(");
    switch (n->kind) {
    case N_NUMBER:
        put(em, n->text);
        break;
    case N_STRING:
        put(em, "'");
        for (q = n->text; *q; q = quote + 1) {  /* a quote inside is written twice */
            if ((quote = strchr(q, '\'')) == NULL) {
                put(em, q);
                break;
            }
            put(em, arena_strndup(&em->c->arena, q, (size_t)(quote - q)));
            put(em, "''");
        }
        put(em, "'");
        break;
    case N_BOOL:
        put(em, n->value ? "true" : "false");
        break;
    case N_NULL:
        put(em, "null");
        break;
    case N_TODAY:
        put(em, "encounter_date");  /* XLSForm's today() is the day the form is filled: the encounter's */
        break;
    case N_FIELD:
        /* a calculate is written out where it is used (relevant and required_if are checked before any
         * computed field is computed), except in a computed field listed after it in the same rows */
        if (n->field->kind == K_CALCULATE
            && !(em->computing && n->field < em->computing && n->field->repeat == em->computing->repeat))
            emit_calculation(em, n->field, min);
        else
            put(em, n->field->name);
        break;
    case N_BINARY:
        bin = op_text[n->op];
        emit(em, n->a, p == 4 ? 5 : p);
        put(em, " ");
        put(em, bin);
        put(em, " ");
        emit(em, n->b, p + 1);
        break;
    case N_NEG:
        put(em, "-");
        emit(em, n->a, 8);
        break;
    case N_NOT:
        put(em, "not(");
        emit(em, n->a, 0);
        put(em, ")");
        break;
    case N_CALL:
        put(em, n->text);
        put(em, "(");
        for (i = 0; i < n->nargs; i++) {
            if (i)
                put(em, ", ");
            emit(em, n->args[i], 0);
        }
        put(em, ")");
        break;
    default:
        em->failed = 1;     /* '.' of a constraint or a reported problem: never written */
        break;
    }
    if (p < min)
        put(em, ")");
}

/* The Sanad text of a tree, checked with expr_compile(); NULL when it cannot be written (reported). */
static const char *expression_text(struct converter *c, const struct node *n, struct entry *self, const char *column,
                                   int computing)
{
    struct emitter em;
    struct expr *compiled;
    const char *out = NULL;
    struct err e;

    memset(&em, 0, sizeof(em));
    em.c = c;
    em.row = self->row->number;
    em.column = column;
    em.computing = computing ? self : NULL;
    buf_init(&em.out, EXPR_OUT_MAX);
    /* a calculate's own expression passes through its name: writing itself inside itself is a circle */
    if (self->kind == K_CALCULATE)
        self->inlining = 1;
    emit(&em, n, 0);
    self->inlining = 0;
    if (!em.failed) {
        err_clear(&e);
        if ((compiled = expr_compile(em.out.data, &e)) == NULL)
            problem_add(c, 0, SHEET_SURVEY, em.row, column, "the expression translates to '%s', which Sanad does not accept: %s",
                        shorten(c, em.out.data), e.message);
        else
            out = arena_strdup(&c->arena, em.out.data);
        if (compiled)
            expr_free(compiled);
    }
    buf_free(&em.out);
    return out;
}

/* ---- constraints ---------------------------------------------------------------------------------- */

/* An XLSForm regex (ODK: Java syntax, whole value) as a POSIX extended one, or NULL with *why set.
 * \d \w \s and their negations become bracket expressions; escapes inside [...] are resolved, since POSIX
 * brackets have none (']' goes first, '-' last); (?:...) becomes (...); what POSIX cannot say is refused. */
static const char *regex_posix(struct converter *c, const char *p, const char **why)
{
    static const char no_escape[] = "the pattern uses an escape (\\...) that POSIX regular expressions do not have";
    struct buf out, set;
    const char *result = NULL;
    double weight = 1;
    int in_set = 0, set_dash = 0, set_bracket = 0;
    long lo, hi;
    regex_t re;
    char *end;

    buf_init(&out, 4 * XLSFORM_CELL_MAX);
    buf_init(&set, 4 * XLSFORM_CELL_MAX);
    *why = NULL;
    for (; *p && !*why; p++) {
        if (in_set) {
            if (*p == ']') {
                if (set_bracket && set.data[0] == '-')
                    *why = "a bracket expression with both ']' and a leading '-' is not supported";
                else if (set.len == 0 && !set_bracket && !set_dash)
                    *why = "an empty bracket expression [] is not supported";
                buf_puts(&out, set_bracket ? "]" : "");
                buf_append(&out, set.data, set.len);
                buf_puts(&out, set_dash ? "-]" : "]");
                in_set = 0;
            } else if (*p == '[') {
                *why = "'[' inside [...] is not supported";
            } else if (*p == '\\') {
                if (p[1] == '\0') {
                    *why = "the pattern ends with a lone backslash";
                    break;
                }
                p++;
                if (*p == 'd')
                    buf_puts(&set, "0-9");
                else if (*p == 'w')
                    buf_puts(&set, "A-Za-z0-9_");
                else if (*p == 's')
                    buf_puts(&set, "[:space:]");
                else if (*p == '-')
                    set_dash = 1;
                else if (*p == ']')
                    set_bracket = 1;
                else if (*p == '^' && set.len == 0)
                    *why = "a bracket expression starting with an escaped '^' is not supported";
                else if (strchr(".^$*+?(){}|/\\", *p))
                    buf_append(&set, p, 1);
                else
                    *why = no_escape;
            } else {
                buf_append(&set, p, 1);
            }
            continue;
        }
        switch (*p) {
        case '[':
            in_set = 1;
            set_dash = set_bracket = 0;
            buf_reset(&set);
            buf_puts(&out, "[");
            if (p[1] == '^') {
                buf_puts(&out, "^");
                p++;
            }
            break;
        case '\\':
            if (p[1] == '\0') {
                *why = "the pattern ends with a lone backslash";
                break;
            }
            p++;
            if (*p == 'd')
                buf_puts(&out, "[0-9]");
            else if (*p == 'D')
                buf_puts(&out, "[^0-9]");
            else if (*p == 'w')
                buf_puts(&out, "[A-Za-z0-9_]");
            else if (*p == 'W')
                buf_puts(&out, "[^A-Za-z0-9_]");
            else if (*p == 's')
                buf_puts(&out, "[[:space:]]");
            else if (*p == 'S')
                buf_puts(&out, "[^[:space:]]");
            else if (*p == '-' || *p == '/')
                buf_append(&out, p, 1);
            else if (strchr(".[]^$*+?(){}|\\", *p)) {
                buf_puts(&out, "\\");
                buf_append(&out, p, 1);
            } else
                *why = no_escape;
            break;
        case '(':
            if (p[1] == '?') {
                if (p[2] != ':') {
                    *why = "look-ahead and look-behind groups (?...) are not supported";
                    break;
                }
                p += 2;         /* (?:...): a POSIX group, whose capture nobody reads */
            }
            buf_puts(&out, "(");
            break;
        case '*':
        case '+':
        case '?':
            if (p[1] == '?' || p[1] == '+')
                *why = "lazy and possessive repetition (*?, +?, ...) is not supported";
            buf_append(&out, p, 1);
            break;
        case '{':
            lo = strtol(p + 1, &end, 10);
            hi = *end == ',' ? (end[1] == '}' ? lo : strtol(end + 1, &end, 10)) : lo;
            if (lo < 0 || hi < 0 || lo > 255 || hi > 255)
                *why = "repetition counts above 255 are not supported";
            weight *= (double)(hi > 1 ? hi : 1);
            if (weight > REGEX_WEIGHT_MAX)  /* regcomp writes repetitions out: (a{99}){99}... grows fast */
                *why = "the pattern repeats too much";
            buf_append(&out, p, 1);
            break;
        default:
            buf_append(&out, p, 1);
            break;
        }
    }
    if (!*why && in_set)
        *why = "a '[' is not closed with ']'";
    if (!*why && out.len >= 2 * XLSFORM_CELL_MAX)
        *why = "the pattern is too long";
    if (!*why) {
        if (regcomp(&re, out.data, REG_EXTENDED | REG_NOSUB) != 0) {
            *why = "POSIX regular expressions cannot read it";
        } else {
            regfree(&re);
            result = arena_strdup(&c->arena, out.data);
        }
    }
    buf_free(&out);
    buf_free(&set);
    return result;
}

struct constraint_map {
    struct converter *c;
    struct entry *e;
    json_t *field;
    const char *column;
    int failed;
};

static void constraint_problem(struct constraint_map *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void constraint_problem(struct constraint_map *m, const char *fmt, ...)
{
    va_list ap;

    if (m->failed)
        return;
    va_start(ap, fmt);
    problem_vadd(m->c, 0, SHEET_SURVEY, m->e->row->number, m->column, fmt, ap);
    va_end(ap);
    m->failed = 1;
}

static void constraint_set(struct constraint_map *m, const char *key, json_t *value)
{
    if (value == NULL) {
        constraint_problem(m, "the constraint's bound has more decimals than the question keeps");
        return;
    }
    if (json_object_get(m->field, key)) {
        json_decref(value);
        constraint_problem(m, "the constraint sets '%s' twice", key);
        return;
    }
    json_object_set_new(m->field, key, value);
}

/* A date bound: "today", or 'YYYY-MM-DD' / date('YYYY-MM-DD'); NULL when it is not one. */
static const char *date_bound(const struct node *n)
{
    if (n->kind == N_TODAY)
        return "today";
    if (is_call(n, "date") && n->nargs == 1)
        n = n->args[0];
    return n->kind == N_STRING && date_valid(n->text) ? n->text : NULL;
}

/* One comparison "." op bound (op already turned so that '.' is on the left). */
static void constraint_bound(struct constraint_map *m, enum op op, const struct node *bound)
{
    enum value_type t = m->e->vtype;
    const struct node *num = bound->kind == N_NEG ? bound->a : bound;
    int negative = bound->kind == N_NEG, decimals = t == V_INTEGER ? 0 : 2;
    const char *date;

    if ((t == V_INTEGER || t == V_DECIMAL) && is_number(bound)) {
        if (op == OP_GE)
            constraint_set(m, "min", number_json(num->text, negative));
        else if (op == OP_LE)
            constraint_set(m, "max", number_json(num->text, negative));
        else if (op == OP_GT)     /* the next value the question can hold: decimals are checked */
            constraint_set(m, "min", number_step(num->text, negative, decimals, 1));
        else if (op == OP_LT)
            constraint_set(m, "max", number_step(num->text, negative, decimals, -1));
        else
            constraint_problem(m, "a number question's constraint compares with <, <=, > or >=");
        return;
    }
    if (t == V_DATE && (date = date_bound(bound)) != NULL) {
        if (op == OP_LE && strcmp(date, "today") == 0)
            json_object_del(m->field, "allow_future");  /* Sanad's default: not after today */
        else if (op == OP_LE)
            constraint_set(m, "max", must(json_string(date)));
        else if (op == OP_GE)
            constraint_set(m, "min", must(json_string(date)));
        else
            constraint_problem(m, "a date question's constraint compares with <= or >= (a strict bound has no Sanad form)");
        return;
    }
    if (t == V_DATETIME && is_call(bound, "now") && (op == OP_LE || op == OP_LT)) {
        json_object_del(m->field, "allow_future");
        return;
    }
    constraint_problem(m, "the constraint compares the answer with something Sanad cannot check for this question");
}

/* Map one term of an and-chain onto the field's rules. */
static void constraint_term(struct constraint_map *m, const struct node *n)
{
    enum value_type t = m->e->vtype;
    const struct node *l, *r, *count;
    const char *pattern, *why;
    enum op op;
    double v;

    if (n->kind == N_BINARY && n->op == OP_AND) {
        constraint_term(m, n->a);
        constraint_term(m, n->b);
        return;
    }
    if (is_call(n, "regex") && n->args[0]->kind == N_CURRENT && n->args[1]->kind == N_STRING) {
        if (t != V_TEXT)
            constraint_problem(m, "regex() maps onto a pattern only for text questions");
        else if ((pattern = regex_posix(m->c, n->args[1]->text, &why)) == NULL)
            constraint_problem(m, "the regex cannot be used: %s", why);
        else
            constraint_set(m, "pattern", must(json_string(pattern)));
        return;
    }
    if (n->kind != N_BINARY || n->op < OP_EQ || n->op > OP_GE) {
        constraint_problem(m, "the constraint cannot be expressed in Sanad: only bounds (. >= A and . <= B), "
                              "regex(., 'P'), string-length(.) <= N and count-selected(.) <= N map onto field rules");
        return;
    }
    l = n->a;
    r = n->b;
    op = n->op;
    if (l->kind != N_CURRENT && !is_call(l, "string-length") && !is_call(l, "count")) {
        l = n->b;
        r = n->a;
        op = op_flipped[op];
    }
    if (l->kind == N_CURRENT) {
        constraint_bound(m, op, r);
        return;
    }
    count = (is_call(l, "string-length") || is_call(l, "count")) && l->args[0]->kind == N_CURRENT ? l : NULL;
    if (count && r->kind == N_NUMBER && !strchr(r->text, '.')) {
        v = strtod(r->text, NULL);
        if (v > 1e9) {
            constraint_problem(m, "the constraint's bound is too large");
        } else if (is_call(count, "string-length")) {
            if (t != V_TEXT || !(op == OP_LE || op == OP_LT))
                constraint_problem(m, "string-length() maps onto max_length only as string-length(.) <= N on a text question");
            else
                constraint_set(m, "max_length", must(json_integer((json_int_t)v - (op == OP_LT))));
        } else if (t != V_SELECT_MULTIPLE || op == OP_EQ || op == OP_NE) {
            constraint_problem(m, "count-selected(.) maps onto min_items and max_items of a select_multiple, with <, <=, > or >=");
        } else {
            constraint_set(m, op == OP_LE || op == OP_LT ? "max_items" : "min_items",
                           must(json_integer((json_int_t)v + (op == OP_GT) - (op == OP_LT))));
        }
        return;
    }
    constraint_problem(m, "the constraint cannot be expressed in Sanad: only bounds (. >= A and . <= B), "
                          "regex(., 'P'), string-length(.) <= N and count-selected(.) <= N map onto field rules");
}

/* The constraint of a value row as rules of its field (min, max, pattern, ...); problems otherwise. */
static void constraint_apply(struct converter *c, struct entry *e, json_t *field, const char *src)
{
    const char *column = column_header(&c->sheets[SHEET_SURVEY], R_CONSTRAINT, "constraint");
    struct constraint_map m;
    struct node *n;

    if ((n = expression_parse(c, e, column, src, 1)) == NULL)
        return;
    memset(&m, 0, sizeof(m));
    m.c = c;
    m.e = e;
    m.field = field;
    m.column = column;
    constraint_term(&m, n);
}

/* ---- appearances ---------------------------------------------------------------------------------- */

/* Appearances that only change how ODK Collect lays a question out: the answer means the same. */
static const char *const display_appearances[] = {
    "minimal", "quick", "horizontal", "horizontal-compact", "compact", "quickcompact", "columns", "columns-pack",
    "no-buttons", "likert", "label", "list-nolabel", "list", "field-list", "table-list", "autocomplete",
    "numbers", "masked", "thousands-sep", "no-calendar", "ethiopian", "coptic", "islamic", "bikram-sambat",
    "myanmar", "persian", "new", "new-front", "selfie", "signature", "draw", "annotate", "counter",
    "hidden-answer", "multiline", NULL,
};

static int is_display_appearance(const char *w)
{
    size_t i;

    for (i = 0; display_appearances[i]; i++)
        if (strcmp(display_appearances[i], w) == 0)
            return 1;
    /* w2, columns-3, compact-2: widths and column counts */
    if (w[0] == 'w' && w[1] && strspn(w + 1, "0123456789") == strlen(w + 1))
        return 1;
    for (i = 0; i < 3; i++) {
        static const char *const prefixes[] = { "columns-", "compact-", "quickcompact-" };
        size_t n = strlen(prefixes[i]);

        if (strncmp(w, prefixes[i], n) == 0 && w[n] && strspn(w + n, "0123456789") == strlen(w + n))
            return 1;
    }
    return 0;
}

/* Check the appearance of a row; *multiline set when it asks for a long text. */
static void appearance_check(struct converter *c, const struct entry *e, int *multiline)
{
    const struct sheet *s = &c->sheets[SHEET_SURVEY];
    const char *value = cell(s, e->row, R_APPEARANCE), *column = column_header(s, R_APPEARANCE, "appearance");
    char *copy, *w, *save;

    *multiline = 0;
    if (value == NULL)
        return;
    copy = lowered(&c->arena, value);
    for (w = strtok_r(copy, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
        if (strcmp(w, "multiline") == 0)
            *multiline = 1;
        if (is_display_appearance(w))
            continue;
        if (strncmp(w, "search", 6) == 0) {
            problem_add(c, 0, SHEET_SURVEY, e->row->number, column,
                        "the appearance search() takes choices from an attached file, which Sanad forms cannot have");
            return;     /* its arguments are not appearances */
        }
        if (strcmp(w, "month-year") == 0 || strcmp(w, "year") == 0)
            problem_add(c, 0, SHEET_SURVEY, e->row->number, column,
                        "the appearance '%s' records part of a date; Sanad dates are whole days", w);
        else if (strncmp(w, "ex:", 3) == 0)
            problem_add(c, 0, SHEET_SURVEY, e->row->number, column,
                        "the appearance '%s' has another app fill the answer, which Sanad cannot do", shorten(c, w));
        else
            problem_add(c, 0, SHEET_SURVEY, e->row->number, column,
                        "the appearance '%s' is not supported (Sanad keeps only those that change nothing but the layout)",
                        shorten(c, w));
    }
}

/* ---- survey pass 2: the fields -------------------------------------------------------------------- */

static const char *sanad_type(enum value_type t, int multiline)
{
    switch (t) {
    case V_TEXT: return multiline ? "long_text" : "text";
    case V_INTEGER: case V_DECIMAL: return "number";
    case V_DATE: return "date";
    case V_DATETIME: return "datetime";
    case V_SELECT_ONE: return "select";
    case V_SELECT_MULTIPLE: return "multi_select";
    case V_ACKNOWLEDGE: return "boolean";
    default: return "file";
    }
}

/* Set key to the Sanad text of the expression in the row's column of a role (nothing when it is empty). */
static void field_expression(struct converter *c, struct entry *e, json_t *field, const char *key, enum role role)
{
    const struct sheet *s = &c->sheets[SHEET_SURVEY];
    const char *src = cell(s, e->row, role), *column = column_header(s, role, ""), *text;
    struct node *n;

    if (src == NULL || (n = expression_parse(c, e, column, src, 0)) == NULL)
        return;
    if ((text = expression_text(c, n, e, column, 0)) != NULL)
        json_object_set_new(field, key, must(json_string(text)));
}

/* label, help, relevant and readonly: what every field (and a repeat) takes from its row. */
static json_t *field_common(struct converter *c, struct entry *e, const char *type)
{
    struct sheet *s = &c->sheets[SHEET_SURVEY];
    const char *column;
    json_t *field, *label, *help;
    struct node *rel;
    const char *text, *read_only;
    int failed = 0;

    field = must(json_pack("{s:s,s:s}", "name", e->name, "type", type));
    if ((label = texts(c, s, e->row, R_LABEL)) == NULL) {
        if (e->kind == K_VALUE)
            problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_LABEL, "label"), "the question has no label");
        label = must(json_pack("{s:s}", c->default_lang, e->xls_name));    /* a calculate or repeat: its name */
        language_note(c, c->default_lang);
    }
    json_object_set_new(field, "label", label);
    if ((help = texts(c, s, e->row, R_HINT)) != NULL)
        json_object_set_new(field, "help", help);
    column = column_header(s, R_RELEVANT, "relevant");
    rel = relevant_tree(c, e, &failed);
    if (rel && !failed && (text = expression_text(c, rel, e, column, 0)) != NULL)
        json_object_set_new(field, "relevant", must(json_string(text)));
    read_only = cell(s, e->row, R_READ_ONLY);
    if (is_yes(read_only))
        json_object_set_new(field, "readonly", json_true());
    else if (!is_no(read_only))
        problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_READ_ONLY, "read_only"),
                    "read_only is 'yes' or 'no' in Sanad, not an expression");
    return field;
}

/* Report a cell of a role that means something XLSForm does on other types of row. */
static void cell_misplaced(struct converter *c, const struct entry *e, enum role role, const char *why)
{
    const struct sheet *s = &c->sheets[SHEET_SURVEY];
    const char *v = cell(s, e->row, role);

    if (v && !(role == R_REQUIRED && is_no(v)))
        problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, role, ""), "%s", why);
}

static json_t *value_field(struct converter *c, struct entry *e)
{
    struct sheet *s = &c->sheets[SHEET_SURVEY];
    const char *required, *constraint;
    json_t *field, *options, *message;
    int multiline;

    appearance_check(c, e, &multiline);
    field = field_common(c, e, sanad_type(e->vtype, multiline));
    required = cell(s, e->row, R_REQUIRED);
    if (is_yes(required)) {
        if (e->vtype == V_ACKNOWLEDGE)
            problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_REQUIRED, "required"),
                        "a required acknowledge must be checked, but a required Sanad boolean may be false: remove required");
        json_object_set_new(field, "required", json_true());
    } else if (!is_no(required)) {
        field_expression(c, e, field, "required_if", R_REQUIRED);
    }
    switch (e->vtype) {
    case V_INTEGER:
        json_object_set_new(field, "decimals", json_integer(0));
        break;
    case V_DATE:
    case V_DATETIME:
        json_object_set_new(field, "allow_future", json_true());   /* XLSForm accepts any date */
        break;
    case V_IMAGE:
        json_object_set_new(field, "accept", must(json_pack("[s,s]", "image/jpeg", "image/png")));
        break;
    case V_SELECT_ONE:
    case V_SELECT_MULTIPLE:
        if ((options = json_object_get(c->lists, e->list)) != NULL) {
            c->options_total += (int)json_array_size(options);
            if (json_array_size(options) > FORM_OPTIONS_MAX)
                problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_TYPE, "type"),
                            "the list '%s' has %zu choices; a Sanad select holds at most %d", shorten(c, e->list),
                            json_array_size(options), FORM_OPTIONS_MAX);
            else if (c->options_total > OPTIONS_TOTAL_MAX)
                problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_TYPE, "type"),
                            "the form has more than %d options in all its selects", OPTIONS_TOTAL_MAX);
            else
                json_object_set_new(field, "options", must(json_deep_copy(options)));
        } else if (json_object_get(c->lists_seen, e->list)) {
            problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_TYPE, "type"),
                        "the list '%s' has no usable choices", shorten(c, e->list));
        } else {
            problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_TYPE, "type"),
                        "the list '%s' is not in the choices sheet", shorten(c, e->list));
        }
        break;
    default:
        break;
    }
    if ((constraint = cell(s, e->row, R_CONSTRAINT)) != NULL)
        constraint_apply(c, e, field, constraint);
    if ((message = texts(c, s, e->row, R_CONSTRAINT_MESSAGE)) != NULL)
        json_object_set_new(field, "constraint_message", message);
    return field;
}

/* Pass 2: the fields of the form, in row order; repeats hold theirs. */
static json_t *survey_fields(struct converter *c)
{
    const struct sheet *s = &c->sheets[SHEET_SURVEY];
    json_t *fields = must(json_array()), *field, *into;
    const char *column;
    struct entry *e;
    int i;

    for (i = 0; i < c->nentries; i++) {
        e = &c->entries[i];
        if (e->kind == K_NONE || e->kind == K_DISABLED || e->kind == K_UNSUPPORTED || e->kind == K_META
            || e->kind == K_TODAY || e->kind == K_END_GROUP || e->kind == K_END_REPEAT)
            continue;
        if (e->kind == K_NOTE) {    /* display only: dropped, unless it shows a calculation */
            cell_misplaced(c, e, R_CALCULATION,
                           "a note showing a calculation is not supported: make it a calculate row");
            continue;
        }
        unsupported_cells(c, s, e->row);
        if (e->kind != K_CALCULATE)
            cell_misplaced(c, e, R_CALCULATION, "calculation is used only on calculate rows");
        if (e->kind != K_VALUE) {
            cell_misplaced(c, e, R_CONSTRAINT, "constraint is used only on questions");
            cell_misplaced(c, e, R_REQUIRED, "required is used only on questions");
        }
        if (e->kind == K_BEGIN_GROUP) {
            int multiline;

            appearance_check(c, e, &multiline);
            if (!is_no(cell(s, e->row, R_READ_ONLY)))
                problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_READ_ONLY, "read_only"),
                            "read_only on a group is not supported: set it on its questions");
            if (cell(s, e->row, R_RELEVANT))
                relevant_own(c, e, &(int){ 0 });   /* parsed here, so its problems are reported once */
            continue;
        }
        if (e->name == NULL || e->discard || (e->repeat >= 0 && c->entries[e->repeat].fields == NULL))
            continue;   /* reported at its own row, or at its repeat's */
        into = e->repeat >= 0 ? c->entries[e->repeat].fields : fields;
        if (e->kind == K_CALCULATE) {
            field = field_common(c, e, "computed");
            column = column_header(s, R_CALCULATION, "calculation");
            if (calculation_tree(c, e)) {
                const char *text = expression_text(c, e->calc, e, column, 1);

                if (text)
                    json_object_set_new(field, "expr", must(json_string(text)));
            }
        } else if (e->kind == K_BEGIN_REPEAT) {
            int multiline;

            appearance_check(c, e, &multiline);
            field = field_common(c, e, "group");
            e->fields = must(json_array());
            json_object_set_new(field, "fields", e->fields);
        } else {
            field = value_field(c, e);
        }
        e->path = e->repeat >= 0 ? arena_printf(&c->arena, "%s.fields[%zu]", c->entries[e->repeat].path, json_array_size(into))
                                 : arena_printf(&c->arena, "fields[%zu]", json_array_size(into));
        json_array_append_new(into, field);
        if (++c->nfields == FORM_FIELDS_MAX + 1)
            problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_TYPE, "type"),
                        "a Sanad form holds at most %d fields, and this is one more", FORM_FIELDS_MAX);
    }
    for (i = 0; i < c->nentries; i++) {
        e = &c->entries[i];
        if (e->kind == K_BEGIN_REPEAT && e->fields && json_array_size(e->fields) == 0)
            problem_add(c, 0, SHEET_SURVEY, e->row->number, column_header(s, R_TYPE, "type"),
                        "the repeat has no questions Sanad can record");
    }
    if (json_array_size(fields) == 0)
        problem_add(c, 0, SHEET_SURVEY, s->header_row, column_header(s, R_TYPE, "type"),
                    "the survey has no questions Sanad can record");
    return fields;
}

/* ---- the last word: form_compile() ---------------------------------------------------------------- */

/* The column of the row a key of a field's definition comes from. */
static const char *column_of_key(struct converter *c, const char *key)
{
    static const struct {
        const char *key;
        enum role role;
        const char *fallback;
    } map[] = {
        { "min", R_CONSTRAINT, "constraint" }, { "max", R_CONSTRAINT, "constraint" },
        { "pattern", R_CONSTRAINT, "constraint" }, { "max_length", R_CONSTRAINT, "constraint" },
        { "min_items", R_CONSTRAINT, "constraint" }, { "max_items", R_CONSTRAINT, "constraint" },
        { "label", R_LABEL, "label" }, { "help", R_HINT, "hint" }, { "relevant", R_RELEVANT, "relevant" },
        { "required", R_REQUIRED, "required" }, { "required_if", R_REQUIRED, "required" },
        { "expr", R_CALCULATION, "calculation" }, { "name", R_NAME, "name" }, { "options", R_TYPE, "type" },
        { "constraint_message", R_CONSTRAINT_MESSAGE, "constraint_message" },
    };
    size_t i, n = strcspn(key, ".[");

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].key) == n && strncmp(map[i].key, key, n) == 0)
            return column_header(&c->sheets[SHEET_SURVEY], map[i].role, map[i].fallback);
    return column_header(&c->sheets[SHEET_SURVEY], R_TYPE, "type");
}

/* Check the definition as Sanad will when it is stored; anything refused that the checks above let through
 * is reported at the row of the field it names (or on the settings sheet). */
static void definition_check(struct converter *c, const json_t *form)
{
    const struct sheet *set = &c->sheets[SHEET_SETTINGS];
    json_t *problems = NULL, *v;
    struct entry *best;
    struct form *compiled;
    const char *key, *rest;
    size_t len, best_len;
    struct err e;
    int i;

    err_clear(&e);
    if ((compiled = form_compile(form, &problems, &e)) != NULL) {
        form_release(compiled);
        return;
    }
    if (problems == NULL)
        must(NULL);     /* out of memory */
    json_object_foreach(problems, key, v) {
        best = NULL;
        best_len = 0;
        for (i = 0; i < c->nentries; i++) {
            if (c->entries[i].path == NULL)
                continue;
            len = strlen(c->entries[i].path);
            if (len > best_len && strncmp(key, c->entries[i].path, len) == 0 && (key[len] == '.' || key[len] == '\0')) {
                best = &c->entries[i];
                best_len = len;
            }
        }
        if (best) {
            rest = key[best_len] == '.' ? key + best_len + 1 : "";
            problem_add(c, 0, SHEET_SURVEY, best->row->number, column_of_key(c, rest),
                        "Sanad refuses the converted question (%s): %s", key, json_string_value(v));
        } else {
            problem_add(c, 0, SHEET_SETTINGS, set->present && set->nrows ? set->rows[0].number : 0,
                        strncmp(key, "title", 5) == 0 ? column_header(set, R_FORM_TITLE, "form_title")
                        : strncmp(key, "default_language", 16) == 0 ? column_header(set, R_DEFAULT_LANGUAGE, "default_language")
                        : column_header(set, R_FORM_ID, "form_id"),
                        "Sanad refuses the converted form (%s): %s", key, json_string_value(v));
        }
    }
    json_decref(problems);
}

/* ---- the conversion ------------------------------------------------------------------------------- */

json_t *xlsform_convert(const char *survey, size_t survey_len, const char *choices, size_t choices_len,
                        const char *settings, size_t settings_len, json_t **problems, struct err *e)
{
    static const enum role survey_required[] = { R_TYPE, R_NAME, R_NONE };
    static const enum role choices_required[] = { R_LIST_NAME, R_NAME, R_NONE };
    static const enum role settings_required[] = { R_NONE };
    struct converter conv, *c = &conv;
    struct settings set;
    json_t *form = NULL, *fields;
    int k;

    *problems = NULL;
    memset(c, 0, sizeof(*c));
    memset(&set, 0, sizeof(set));
    arena_init(&c->arena);
    c->problems.list = arena_alloc(&c->arena, sizeof(struct problem) * PROBLEMS_KEPT);
    c->languages = must(json_array());
    c->lists = must(json_object());
    c->lists_seen = must(json_object());

    /* 1. read */
    sheet_read(c, SHEET_SURVEY, survey, survey_len);
    sheet_read(c, SHEET_CHOICES, choices, choices_len);
    sheet_read(c, SHEET_SETTINGS, settings, settings_len);
    if (!c->sheets[SHEET_SURVEY].present && c->problems.invalid == 0)
        problem_add(c, 1, SHEET_SURVEY, 0, "", "the survey sheet is empty");
    if (c->problems.invalid)
        goto done;

    /* 2. columns */
    columns_classify(c, &c->sheets[SHEET_SURVEY], survey_rules, survey_required);
    columns_classify(c, &c->sheets[SHEET_CHOICES], choices_rules, choices_required);
    columns_classify(c, &c->sheets[SHEET_SETTINGS], settings_rules, settings_required);
    if (c->problems.invalid)
        goto done;

    /* 3. settings, and the languages of the columns */
    settings_read(c, &set);
    if (c->default_lang == NULL)
        c->default_lang = default_language_guess(c);
    language_note(c, c->default_lang);
    for (k = 0; k < 3; k++)
        columns_resolve_languages(c, &c->sheets[k]);

    /* 4. choices, 5. survey */
    choices_read(c);
    survey_structure(c);
    fields = survey_fields(c);

    if (c->problems.count == 0 && json_array_size(c->languages) > LANGUAGES_MAX)
        problem_add(c, 0, SHEET_SURVEY, c->sheets[SHEET_SURVEY].header_row, "", "the form has more than %d languages",
                    LANGUAGES_MAX);
    if (c->problems.count == 0) {
        form = must(json_pack("{s:s,s:I,s:{s:s},s:O,s:s,s:o}", "id", set.id, "version", set.version, "title",
                              c->default_lang, set.title, "languages", c->languages, "default_language",
                              c->default_lang, "fields", fields));
        definition_check(c, form);
        if (c->problems.count) {
            json_decref(form);
            form = NULL;
        }
    } else {
        json_decref(fields);
    }
done:
    if (form == NULL) {
        *problems = problems_json(c);
        if (c->problems.invalid)
            err_set(e, ERR_INVALID, "invalid_xlsform", "the sheets cannot be read as an XLSForm (%d problem%s)",
                    c->problems.count, c->problems.count == 1 ? "" : "s");
        else
            err_set(e, ERR_UNPROCESSABLE, "xlsform_unsupported",
                    "the form uses what Sanad cannot represent (%d problem%s)", c->problems.count,
                    c->problems.count == 1 ? "" : "s");
    }
    json_decref(c->languages);
    json_decref(c->lists);
    json_decref(c->lists_seen);
    arena_free(&c->arena);
    return form;
}
