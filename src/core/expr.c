/* expr.c — the form-rule expression language (docs/expressions.md): a hand-written lexer and
 * recursive-descent parser that build a flat, bounded node array, and a tree walk that evaluates it over
 * borrowed JSON values without allocating anything until the result is returned.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/date.h"
#include "core/expr.h"

#define MAX_SAFE_INT 9007199254740992LL     /* 2^53: every integer up to here is exact in a double */
#define MAX_DECIMAL_DIGITS 15               /* significant digits, and digits after the point, of a decimal */

/* ---- the compiled form ---- */

enum node_kind {
    N_NULL, N_BOOL, N_INT, N_REAL, N_STRING, N_NAME,
    N_NEG, N_NOT, N_AND, N_OR,
    N_EQ, N_NE, N_LT, N_LE, N_GT, N_GE,
    N_ADD, N_SUB, N_MUL, N_DIV, N_MOD,
    N_CALL,
};

enum fn_id {
    F_IF, F_SELECTED, F_COUNT, F_SUM, F_MIN, F_MAX, F_ROUND, F_COALESCE, F_EMPTY, F_NUMBER, F_DAYS_BETWEEN,
};

/* The function table: a call's name and argument count are checked against it at compile time. */
static const struct fn_def {
    const char *name;
    enum fn_id id;
    int min_args;
    int max_args;
} fn_table[] = {
    { "if", F_IF, 3, 3 },
    { "selected", F_SELECTED, 2, 2 },
    { "count", F_COUNT, 1, 1 },
    { "sum", F_SUM, 1, EXPR_MAX_ARGS },
    { "min", F_MIN, 1, EXPR_MAX_ARGS },
    { "max", F_MAX, 1, EXPR_MAX_ARGS },
    { "round", F_ROUND, 2, 2 },
    { "coalesce", F_COALESCE, 1, EXPR_MAX_ARGS },
    { "empty", F_EMPTY, 1, 1 },
    { "number", F_NUMBER, 1, 1 },
    { "days_between", F_DAYS_BETWEEN, 2, 2 },
};

struct node {
    unsigned char kind;     /* enum node_kind */
    unsigned char fn;       /* N_CALL: enum fn_id */
    unsigned char height;   /* 1 for a leaf; at most EXPR_MAX_DEPTH, which bounds the evaluator's recursion */
    int a, b;               /* operands (-1 when absent); N_CALL: a is the first argument */
    int next;               /* the next argument of the same call, -1 after the last */
    union {
        int64_t i;          /* N_INT; N_BOOL (0 or 1) */
        double d;           /* N_REAL, always finite */
        struct {
            int off, len;   /* N_STRING: bytes in the pool (NUL-terminated there) */
        } s;
        int name;           /* N_NAME: index into names */
    } v;
};

struct expr {
    struct node *nodes;
    int n_nodes;
    int root;
    int *names;             /* pool offsets of the distinct names, in order of first appearance */
    int n_names;
    char *pool;             /* unescaped string literals and names, each NUL-terminated */
};

/* ---- numbers and text shared by the lexer and number() ---- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || is_digit(c);
}

/* Parse exactly n bytes of "digits" or "digits.digits" (nothing else: no sign, exponent, hex, inf or nan).
 * An integer is at most 2^53 and comes back in *iv with *is_real = 0; a decimal has at most 15 significant
 * digits and 15 digits after the point (trailing zeros aside) and comes back in *dv with *is_real = 1.
 * The decimal is mantissa / 10^k with both exact in a double, so the one division rounds correctly and the
 * result never depends on the locale (strtod's would). 0 on success, -1 when malformed or out of range. */
static int decimal_parse(const char *s, size_t n, int *is_real, int64_t *iv, double *dv)
{
    static const double pow10[MAX_DECIMAL_DIGITS + 1] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    };
    size_t i = 0, int_end, frac_start, frac_end;
    int64_t mantissa = 0;
    int significant = 0;

    while (i < n && is_digit(s[i]))
        i++;
    int_end = i;
    if (int_end == 0)
        return -1;
    if (i == n) {
        for (i = 0; i < int_end; i++) {
            int digit = s[i] - '0';

            if (mantissa > (MAX_SAFE_INT - digit) / 10)
                return -1;
            mantissa = mantissa * 10 + digit;
        }
        *is_real = 0;
        *iv = mantissa;
        return 0;
    }
    if (s[i] != '.')
        return -1;
    frac_start = ++i;
    while (i < n && is_digit(s[i]))
        i++;
    if (i == frac_start || i != n)
        return -1;
    frac_end = i;
    while (frac_end > frac_start && s[frac_end - 1] == '0')
        frac_end--;
    if (frac_end - frac_start > MAX_DECIMAL_DIGITS)
        return -1;
    for (i = 0; i < frac_end; i++) {
        if (i == int_end)
            continue;               /* the point */
        if (mantissa == 0 && s[i] == '0')
            continue;               /* leading zeros are not significant */
        if (++significant > MAX_DECIMAL_DIGITS)
            return -1;
        mantissa = mantissa * 10 + (s[i] - '0');
    }
    *is_real = 1;
    *dv = (double)mantissa / pow10[frac_end - frac_start];
    return 0;
}

/* Length of the valid UTF-8 prefix of s[0..n): n when all of it is valid (no overlong forms, surrogates or
 * code points above U+10FFFF). */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t need, k;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i <= need)
            return i;
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += need + 1;
    }
    return n;
}

/* ---- lexer ---- */

enum token_kind { T_END, T_NUMBER, T_STRING, T_NAME, T_LPAREN, T_RPAREN, T_COMMA, T_OP };

struct token {
    enum token_kind kind;
    size_t start;           /* byte offset in the source */
    size_t len;             /* bytes of source text */
    int op;                 /* T_OP: the enum node_kind of the operator */
    int is_real;            /* T_NUMBER */
    int64_t i;              /* T_NUMBER, integer */
    double d;               /* T_NUMBER, decimal */
    int str_off, str_len;   /* T_STRING: the unescaped text in the pool */
};

struct parser {
    const char *src;
    size_t len;
    size_t pos;             /* next byte to lex */
    struct token tok;       /* the current token */
    struct node *nodes;     /* EXPR_MAX_NODES slots */
    int n_nodes;
    int *names;             /* EXPR_MAX_NODES slots: no more names than nodes */
    int n_names;
    char *pool;
    size_t pool_len;
    size_t pool_cap;        /* 2 * len + 2: every literal and name is at most its source text plus a NUL */
    int depth;              /* open parentheses, calls and unary operators */
    struct err *e;
};

/* Set the compile error at byte offset at and return -1. */
static int parse_fail(struct parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int parse_fail(struct parser *p, size_t at, const char *fmt, ...)
{
    char what[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return err_set(p->e, ERR_INVALID, "invalid_expression", "invalid expression at position %zu: %s",
                   at + 1, what);
}

/* The current token in words, for "found ..." in error messages. */
static void token_describe(const struct parser *p, char *out, size_t n)
{
    const struct token *t = &p->tok;
    int shown = t->len > 32 ? 32 : (int)t->len;

    switch (t->kind) {
    case T_END:
        snprintf(out, n, "the end of the expression");
        break;
    case T_STRING:
        snprintf(out, n, "a string");
        break;
    case T_NUMBER:
        snprintf(out, n, "the number %.*s", shown, p->src + t->start);
        break;
    default:
        snprintf(out, n, "'%.*s'%s", shown, p->src + t->start, t->len > 32 ? "..." : "");
        break;
    }
}

/* Fail at the current token: "expected <what>, found <token>". */
static int parse_expected(struct parser *p, const char *what)
{
    char found[64];

    token_describe(p, found, sizeof(found));
    return parse_fail(p, p->tok.start, "expected %s, found %s", what, found);
}

static int pool_add(struct parser *p, const char *s, size_t n)
{
    int off = (int)p->pool_len;

    if (n + 1 > p->pool_cap - p->pool_len)
        return -1;      /* cannot happen: pool_cap covers every literal and name of the source */
    memcpy(p->pool + p->pool_len, s, n);
    p->pool_len += n;
    p->pool[p->pool_len++] = '\0';
    return off;
}

static int lex_number(struct parser *p, struct token *t)
{
    size_t i = p->pos;

    while (i < p->len && is_digit(p->src[i]))
        i++;
    if (i < p->len && p->src[i] == '.') {
        i++;
        if (i >= p->len || !is_digit(p->src[i]))
            return parse_fail(p, i, "expected a digit after the decimal point");
        while (i < p->len && is_digit(p->src[i]))
            i++;
    }
    if (i < p->len && (is_name_char(p->src[i]) || p->src[i] == '.'))
        return parse_fail(p, t->start, "invalid number: numbers are decimal digits with an optional "
                          "fraction, such as 12 or 37.5");
    t->kind = T_NUMBER;
    t->len = i - t->start;
    if (decimal_parse(p->src + t->start, t->len, &t->is_real, &t->i, &t->d) < 0)
        return parse_fail(p, t->start, "number out of range: integers up to 9007199254740992, decimals "
                          "up to %d significant digits", MAX_DECIMAL_DIGITS);
    p->pos = i;
    return 0;
}

/* A single-quoted string; '' stands for one quote. The text is unescaped into the pool. */
static int lex_string(struct parser *p, struct token *t)
{
    char text[EXPR_MAX_STRING];
    size_t i = p->pos + 1, n = 0, valid;

    for (;;) {
        if (i >= p->len)
            return parse_fail(p, t->start, "unterminated string: expected a closing quote (')");
        if (p->src[i] == '\'') {
            if (i + 1 < p->len && p->src[i + 1] == '\'') {
                i++;
            } else {
                i++;
                break;
            }
        }
        if (n == sizeof(text))
            return parse_fail(p, t->start, "string longer than %d bytes", EXPR_MAX_STRING);
        text[n++] = p->src[i++];
    }
    valid = utf8_valid_prefix((const unsigned char *)text, n);
    if (valid != n)
        return parse_fail(p, t->start, "string is not valid UTF-8 (byte %zu of the string)", valid + 1);
    t->kind = T_STRING;
    t->len = i - t->start;
    t->str_len = (int)n;
    t->str_off = pool_add(p, text, n);
    if (t->str_off < 0)
        return parse_fail(p, t->start, "internal limit reached");
    p->pos = i;
    return 0;
}

/* Move to the next token. */
static int lex(struct parser *p)
{
    struct token *t = &p->tok;
    const char *s = p->src;
    char c, c2;

    while (p->pos < p->len && (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' ||
                               s[p->pos] == '\r'))
        p->pos++;
    memset(t, 0, sizeof(*t));
    t->start = p->pos;
    if (p->pos >= p->len) {
        t->kind = T_END;
        return 0;
    }
    c = s[p->pos];
    c2 = p->pos + 1 < p->len ? s[p->pos + 1] : '\0';
    if (is_digit(c))
        return lex_number(p, t);
    if (c == '\'')
        return lex_string(p, t);
    if (is_name_start(c)) {
        size_t i = p->pos;

        while (i < p->len && is_name_char(s[i]))
            i++;
        if (i - p->pos > EXPR_MAX_NAME)
            return parse_fail(p, t->start, "name longer than %d bytes", EXPR_MAX_NAME);
        t->kind = T_NAME;
        t->len = i - p->pos;
        p->pos = i;
        return 0;
    }
    t->len = 1;
    t->kind = T_OP;
    switch (c) {
    case '(': t->kind = T_LPAREN; break;
    case ')': t->kind = T_RPAREN; break;
    case ',': t->kind = T_COMMA; break;
    case '+': t->op = N_ADD; break;
    case '-': t->op = N_SUB; break;
    case '*': t->op = N_MUL; break;
    case '/': t->op = N_DIV; break;
    case '%': t->op = N_MOD; break;
    case '=':
        if (c2 == '=')
            return parse_fail(p, t->start, "use '=' to compare, not '=='");
        t->op = N_EQ;
        break;
    case '!':
        if (c2 != '=')
            return parse_fail(p, t->start, "expected '=' after '!' (use 'not' to negate)");
        t->op = N_NE;
        t->len = 2;
        break;
    case '<':
        if (c2 == '>')
            return parse_fail(p, t->start, "use '!=' for 'not equal', not '<>'");
        t->op = c2 == '=' ? N_LE : N_LT;
        t->len = c2 == '=' ? 2 : 1;
        break;
    case '>':
        t->op = c2 == '=' ? N_GE : N_GT;
        t->len = c2 == '=' ? 2 : 1;
        break;
    case '"':
        return parse_fail(p, t->start, "strings are written in single quotes ('text')");
    case '&':
        return parse_fail(p, t->start, "use 'and', not '&'");
    case '|':
        return parse_fail(p, t->start, "use 'or', not '|'");
    default:
        if ((unsigned char)c >= 0x21 && (unsigned char)c < 0x7f)
            return parse_fail(p, t->start, "unexpected character '%c'", c);
        if ((unsigned char)c >= 0x80)
            return parse_fail(p, t->start, "unexpected non-ASCII character: names are ASCII letters, digits "
                              "and '_', and text goes in single quotes");
        return parse_fail(p, t->start, "unexpected control character 0x%02x", (unsigned char)c);
    }
    p->pos += t->len;
    return 0;
}

static int token_is_keyword(const struct parser *p, const char *word)
{
    size_t n = strlen(word);

    return p->tok.kind == T_NAME && p->tok.len == n && memcmp(p->src + p->tok.start, word, n) == 0;
}

static int token_is_op(const struct parser *p, int op)
{
    return p->tok.kind == T_OP && p->tok.op == op;
}

/* ---- parser ---- */

static int node_height(const struct parser *p, int i)
{
    return i < 0 ? 0 : p->nodes[i].height;
}

/* Append a node with operands a and b (-1 for none) for the source text at byte offset at; checks the node
 * count and the tree's height. Returns its index, or -1 with the error set. */
static int node_new(struct parser *p, int kind, size_t at, int a, int b)
{
    struct node *n;
    int height, i;

    height = node_height(p, a) > node_height(p, b) ? node_height(p, a) : node_height(p, b);
    if (kind == N_CALL)
        for (i = a; i >= 0; i = p->nodes[i].next)
            if (p->nodes[i].height > height)
                height = p->nodes[i].height;
    if (height + 1 > EXPR_MAX_DEPTH)
        return parse_fail(p, at, "expression nested too deeply (more than %d levels)", EXPR_MAX_DEPTH);
    if (p->n_nodes >= EXPR_MAX_NODES)
        return parse_fail(p, at, "expression too large (more than %d values and operators)", EXPR_MAX_NODES);
    n = &p->nodes[p->n_nodes];
    memset(n, 0, sizeof(*n));
    n->kind = (unsigned char)kind;
    n->height = (unsigned char)(height + 1);
    n->a = a;
    n->b = b;
    n->next = -1;
    return p->n_nodes++;
}

/* Enter one level of nesting (parentheses, a call, a unary operator) at byte offset at. */
static int depth_enter(struct parser *p, size_t at)
{
    if (++p->depth > EXPR_MAX_DEPTH)
        return parse_fail(p, at, "expression nested too deeply (more than %d levels)", EXPR_MAX_DEPTH);
    return 0;
}

static int parse_or(struct parser *p);

/* The index of name (n bytes) in the names table, added on first use. */
static int name_index(struct parser *p, const char *name, size_t n)
{
    int i, off;

    for (i = 0; i < p->n_names; i++) {
        const char *have = p->pool + p->names[i];

        if (strlen(have) == n && memcmp(have, name, n) == 0)
            return i;
    }
    off = pool_add(p, name, n);
    if (off < 0)
        return parse_fail(p, p->tok.start, "internal limit reached");
    p->names[p->n_names] = off;
    return p->n_names++;
}

/* call = function "(" [ expr { "," expr } ] ")"; the current token is the function's name. */
static int parse_call(struct parser *p)
{
    const struct fn_def *fn = NULL;
    size_t at = p->tok.start, i;
    int name_len = (int)p->tok.len;
    int first = -1, last = -1, nargs = 0, arg, node;

    for (i = 0; i < sizeof(fn_table) / sizeof(fn_table[0]); i++)
        if (strlen(fn_table[i].name) == p->tok.len && memcmp(fn_table[i].name, p->src + at, p->tok.len) == 0)
            fn = &fn_table[i];
    if (fn == NULL)
        return parse_fail(p, at, "unknown function '%.*s'", name_len, p->src + at);
    if (depth_enter(p, at) < 0 || lex(p) < 0 || lex(p) < 0)     /* the name, then '(' */
        return -1;
    if (p->tok.kind != T_RPAREN) {
        for (;;) {
            if (nargs == EXPR_MAX_ARGS)
                return parse_fail(p, p->tok.start, "more than %d arguments in a call of '%s'", EXPR_MAX_ARGS,
                                  fn->name);
            arg = parse_or(p);
            if (arg < 0)
                return -1;
            if (last < 0)
                first = arg;
            else
                p->nodes[last].next = arg;
            last = arg;
            nargs++;
            if (p->tok.kind == T_RPAREN)
                break;
            if (p->tok.kind != T_COMMA)
                return parse_expected(p, "',' or ')' in the arguments of a call");
            if (lex(p) < 0)
                return -1;
        }
    }
    if (nargs < fn->min_args || nargs > fn->max_args) {
        if (fn->min_args == fn->max_args)
            return parse_fail(p, at, "'%s' takes %d argument%s, not %d", fn->name, fn->min_args,
                              fn->min_args == 1 ? "" : "s", nargs);
        return parse_fail(p, at, "'%s' takes %d to %d arguments, not %d", fn->name, fn->min_args,
                          fn->max_args, nargs);
    }
    node = node_new(p, N_CALL, at, first, -1);
    if (node < 0 || lex(p) < 0)
        return -1;
    p->nodes[node].fn = (unsigned char)fn->id;
    p->depth--;
    return node;
}

/* primary = number | string | "true" | "false" | "null" | name | call | "(" expr ")" */
static int parse_primary(struct parser *p)
{
    const struct token t = p->tok;
    size_t i;
    int node;

    switch (t.kind) {
    case T_NUMBER:
        node = node_new(p, t.is_real ? N_REAL : N_INT, t.start, -1, -1);
        if (node < 0)
            return -1;
        if (t.is_real)
            p->nodes[node].v.d = t.d;
        else
            p->nodes[node].v.i = t.i;
        return lex(p) < 0 ? -1 : node;
    case T_STRING:
        node = node_new(p, N_STRING, t.start, -1, -1);
        if (node < 0)
            return -1;
        p->nodes[node].v.s.off = t.str_off;
        p->nodes[node].v.s.len = t.str_len;
        return lex(p) < 0 ? -1 : node;
    case T_LPAREN:
        if (depth_enter(p, t.start) < 0 || lex(p) < 0)
            return -1;
        node = parse_or(p);
        if (node < 0)
            return -1;
        if (p->tok.kind != T_RPAREN) {
            char what[64];

            snprintf(what, sizeof(what), "')' to close the '(' at position %zu", t.start + 1);
            return parse_expected(p, what);
        }
        p->depth--;
        return lex(p) < 0 ? -1 : node;
    case T_NAME:
        if (token_is_keyword(p, "true") || token_is_keyword(p, "false")) {
            node = node_new(p, N_BOOL, t.start, -1, -1);
            if (node < 0)
                return -1;
            p->nodes[node].v.i = token_is_keyword(p, "true");
            return lex(p) < 0 ? -1 : node;
        }
        if (token_is_keyword(p, "null")) {
            node = node_new(p, N_NULL, t.start, -1, -1);
            return node < 0 || lex(p) < 0 ? -1 : node;
        }
        if (token_is_keyword(p, "and") || token_is_keyword(p, "or") || token_is_keyword(p, "not"))
            break;
        for (i = p->pos; i < p->len && (p->src[i] == ' ' || p->src[i] == '\t' || p->src[i] == '\n' ||
                                        p->src[i] == '\r'); i++)
            ;
        if (i < p->len && p->src[i] == '(')
            return parse_call(p);
        node = node_new(p, N_NAME, t.start, -1, -1);
        if (node < 0)
            return -1;
        p->nodes[node].v.name = name_index(p, p->src + t.start, t.len);
        if (p->nodes[node].v.name < 0)
            return -1;
        return lex(p) < 0 ? -1 : node;
    default:
        break;
    }
    return parse_expected(p, "a value (a number, a 'string', a name, a function call or '(')");
}

/* unary = "-" unary | primary */
static int parse_unary(struct parser *p)
{
    size_t at = p->tok.start;
    int operand, node;

    if (!token_is_op(p, N_SUB))
        return parse_primary(p);
    if (depth_enter(p, at) < 0 || lex(p) < 0)
        return -1;
    operand = parse_unary(p);
    if (operand < 0)
        return -1;
    node = node_new(p, N_NEG, at, operand, -1);
    p->depth--;
    return node;
}

/* mul = unary { ("*" | "/" | "%") unary } */
static int parse_mul(struct parser *p)
{
    int left = parse_unary(p), right, op;
    size_t at;

    while (left >= 0 && (token_is_op(p, N_MUL) || token_is_op(p, N_DIV) || token_is_op(p, N_MOD))) {
        op = p->tok.op;
        at = p->tok.start;
        if (lex(p) < 0 || (right = parse_unary(p)) < 0)
            return -1;
        left = node_new(p, op, at, left, right);
    }
    return left;
}

/* add = mul { ("+" | "-") mul } */
static int parse_add(struct parser *p)
{
    int left = parse_mul(p), right, op;
    size_t at;

    while (left >= 0 && (token_is_op(p, N_ADD) || token_is_op(p, N_SUB))) {
        op = p->tok.op;
        at = p->tok.start;
        if (lex(p) < 0 || (right = parse_mul(p)) < 0)
            return -1;
        left = node_new(p, op, at, left, right);
    }
    return left;
}

static int token_is_comparison(const struct parser *p)
{
    return p->tok.kind == T_OP && p->tok.op >= N_EQ && p->tok.op <= N_GE;
}

/* cmp = add [ ("=" | "!=" | "<" | "<=" | ">" | ">=") add ]; comparisons do not chain */
static int parse_cmp(struct parser *p)
{
    int left = parse_add(p), right, op;
    size_t at;

    if (left < 0 || !token_is_comparison(p))
        return left;
    op = p->tok.op;
    at = p->tok.start;
    if (lex(p) < 0 || (right = parse_add(p)) < 0)
        return -1;
    if (token_is_comparison(p))
        return parse_fail(p, p->tok.start, "comparisons do not chain: join them with 'and'");
    return node_new(p, op, at, left, right);
}

/* not = "not" not | cmp */
static int parse_not(struct parser *p)
{
    size_t at = p->tok.start;
    int operand, node;

    if (!token_is_keyword(p, "not"))
        return parse_cmp(p);
    if (depth_enter(p, at) < 0 || lex(p) < 0)
        return -1;
    operand = parse_not(p);
    if (operand < 0)
        return -1;
    node = node_new(p, N_NOT, at, operand, -1);
    p->depth--;
    return node;
}

/* and = not { "and" not } */
static int parse_and(struct parser *p)
{
    int left = parse_not(p), right;
    size_t at;

    while (left >= 0 && token_is_keyword(p, "and")) {
        at = p->tok.start;
        if (lex(p) < 0 || (right = parse_not(p)) < 0)
            return -1;
        left = node_new(p, N_AND, at, left, right);
    }
    return left;
}

/* or = and { "or" and } — the whole expression */
static int parse_or(struct parser *p)
{
    int left = parse_and(p), right;
    size_t at;

    while (left >= 0 && token_is_keyword(p, "or")) {
        at = p->tok.start;
        if (lex(p) < 0 || (right = parse_and(p)) < 0)
            return -1;
        left = node_new(p, N_OR, at, left, right);
    }
    return left;
}

static void *copy_of(const void *data, size_t n)
{
    void *out = malloc(n ? n : 1);

    if (out && n)
        memcpy(out, data, n);
    return out;
}

struct expr *expr_compile(const char *src, struct err *e)
{
    struct parser p;
    struct expr *x = NULL;
    int root;

    memset(&p, 0, sizeof(p));
    p.e = e;
    if (src == NULL)
        src = "";
    p.src = src;
    p.len = strnlen(src, EXPR_MAX_SOURCE + 1);
    if (p.len > EXPR_MAX_SOURCE) {
        parse_fail(&p, EXPR_MAX_SOURCE, "expression longer than %d bytes", EXPR_MAX_SOURCE);
        return NULL;
    }
    p.pool_cap = 2 * p.len + 2;
    p.nodes = malloc(EXPR_MAX_NODES * sizeof(*p.nodes));
    p.names = malloc(EXPR_MAX_NODES * sizeof(*p.names));
    p.pool = malloc(p.pool_cap);
    if (p.nodes == NULL || p.names == NULL || p.pool == NULL)
        goto out_of_memory;
    if (lex(&p) < 0 || (root = parse_or(&p)) < 0)
        goto fail;
    if (p.tok.kind != T_END) {
        parse_expected(&p, "an operator or the end of the expression");
        goto fail;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        goto out_of_memory;
    x->nodes = copy_of(p.nodes, (size_t)p.n_nodes * sizeof(*p.nodes));
    x->names = copy_of(p.names, (size_t)p.n_names * sizeof(*p.names));
    x->pool = copy_of(p.pool, p.pool_len);
    if (x->nodes == NULL || x->names == NULL || x->pool == NULL)
        goto out_of_memory;
    x->n_nodes = p.n_nodes;
    x->n_names = p.n_names;
    x->root = root;
    free(p.nodes);
    free(p.names);
    free(p.pool);
    return x;

out_of_memory:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory compiling an expression");
fail:
    expr_free(x);
    free(p.nodes);
    free(p.names);
    free(p.pool);
    return NULL;
}

void expr_free(struct expr *x)
{
    if (x == NULL)
        return;
    free(x->nodes);
    free(x->names);
    free(x->pool);
    free(x);
}

int expr_names(const struct expr *x, int (*cb)(const char *name, void *ctx), void *ctx)
{
    int i, rc;

    for (i = 0; i < x->n_names; i++) {
        rc = cb(x->pool + x->names[i], ctx);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- evaluation ---- */

/* A value during evaluation. Strings and arrays are borrowed from the expression or from the lookup's
 * JSON, both alive for the whole expr_eval() call, so evaluating allocates nothing. */
enum val_type { V_NULL, V_BOOL, V_INT, V_REAL, V_STRING, V_ARRAY };

struct val {
    enum val_type type;
    int64_t i;              /* V_INT; V_BOOL (0 or 1) */
    double d;               /* V_REAL, always finite */
    const char *s;          /* V_STRING, len bytes */
    size_t len;
    const json_t *array;    /* V_ARRAY */
};

struct eval {
    const struct expr *x;
    expr_lookup_fn lookup;
    void *ctx;
};

static void val_null(struct val *v)
{
    memset(v, 0, sizeof(*v));
    v->type = V_NULL;
}

static void val_bool(struct val *v, int b)
{
    val_null(v);
    v->type = V_BOOL;
    v->i = b != 0;
}

static void val_int(struct val *v, int64_t i)
{
    val_null(v);
    v->type = V_INT;
    v->i = i;
}

/* A real, or null when d is NaN or infinite: no such value ever leaves the evaluator. -0 becomes 0. */
static void val_real(struct val *v, double d)
{
    val_null(v);
    if (!isfinite(d))
        return;
    v->type = V_REAL;
    v->d = d == 0.0 ? 0.0 : d;
}

/* The evaluator does without libm (the build does not link it); these are exact. */
static double abs_double(double d)
{
    return d < 0 ? -d : d;
}

/* d is a whole number within ±2^53 (false for NaN). */
static int is_safe_whole(double d)
{
    return d >= -(double)MAX_SAFE_INT && d <= (double)MAX_SAFE_INT && (double)(int64_t)d == d;
}

/* The whole number nearest d, halves away from zero; for |d| >= 1e14, where fractions are coarse. */
static double round_whole(double d)
{
    double t;

    if (abs_double(d) >= 4503599627370496.0)       /* 2^52: every double from here on is whole */
        return d;
    t = (double)(int64_t)d;
    if (abs_double(d - t) >= 0.5)
        t += d < 0 ? -1.0 : 1.0;
    return t;
}

/* x modulo y (both finite, y != 0), the sign of x, computed exactly as fmod() does: binary long division, where every
 * subtraction is exact because t <= r < 2t (Sterbenz). At most about 2100 steps. */
static double real_mod(double x, double y)
{
    double r = abs_double(x), a = abs_double(y), t = a;

    if (r < a)
        return x;
    while (t <= r * 0.5 && t + t <= r)
        t += t;
    for (;;) {
        if (r >= t)
            r -= t;
        if (t == a)
            break;
        t *= 0.5;                   /* exact: t is a times a power of two we doubled through */
    }
    return x < 0 ? -r : r;
}

/* d as an integer when it is whole and within ±2^53, else as a real. */
static void val_whole_or_real(struct val *v, double d)
{
    if (is_safe_whole(d))
        val_int(v, (int64_t)d);
    else
        val_real(v, d);
}

static void val_from_json(struct val *v, const json_t *j)
{
    val_null(v);
    if (j == NULL)
        return;
    switch (json_typeof(j)) {
    case JSON_INTEGER:
        val_int(v, json_integer_value(j));
        break;
    case JSON_REAL:
        val_real(v, json_real_value(j));
        break;
    case JSON_STRING:
        v->type = V_STRING;
        v->s = json_string_value(j);
        v->len = json_string_length(j);
        break;
    case JSON_TRUE:
        val_bool(v, 1);
        break;
    case JSON_FALSE:
        val_bool(v, 0);
        break;
    case JSON_ARRAY:
        v->type = V_ARRAY;
        v->array = j;
        break;
    default:                /* null, and objects, which the language has no use for */
        break;
    }
}

static int val_truthy(const struct val *v)
{
    switch (v->type) {
    case V_BOOL:
    case V_INT:
        return v->i != 0;
    case V_REAL:
        return v->d != 0.0;
    case V_STRING:
        return v->len > 0;
    case V_ARRAY:
        return json_array_size(v->array) > 0;
    default:
        return 0;
    }
}

static int val_is_number(const struct val *v)
{
    return v->type == V_INT || v->type == V_REAL;
}

static double val_double(const struct val *v)
{
    return v->type == V_INT ? (double)v->i : v->d;
}

/* -1, 0 or 1 as number a is below, equal to or above number b. */
static int number_compare(const struct val *a, const struct val *b)
{
    double x, y;

    if (a->type == V_INT && b->type == V_INT)
        return (a->i > b->i) - (a->i < b->i);
    x = val_double(a);
    y = val_double(b);
    return (x > y) - (x < y);
}

/* Bytewise, as memcmp on the common prefix and then by length: ISO dates compare in time order. */
static int string_compare(const struct val *a, const struct val *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->s, b->s, n) : 0;

    if (c != 0)
        return c < 0 ? -1 : 1;
    return (a->len > b->len) - (a->len < b->len);
}

/* The value of comparison op (N_EQ .. N_GE) between a and b; see the table in docs/expressions.md. */
static int val_compare(int op, const struct val *a, const struct val *b)
{
    int c;

    if (a->type == V_NULL || b->type == V_NULL) {
        int both = a->type == V_NULL && b->type == V_NULL;

        return op == N_EQ ? both : op == N_NE ? !both : 0;
    }
    if (val_is_number(a) && val_is_number(b)) {
        c = number_compare(a, b);
    } else if (a->type == V_STRING && b->type == V_STRING) {
        c = string_compare(a, b);
    } else if (a->type == b->type && (a->type == V_BOOL || a->type == V_ARRAY)) {
        int equal = a->type == V_BOOL ? a->i == b->i : json_equal(a->array, b->array);

        return op == N_EQ ? equal : op == N_NE ? !equal : 0;
    } else {
        return op == N_NE;      /* different types: never equal, never ordered */
    }
    switch (op) {
    case N_EQ: return c == 0;
    case N_NE: return c != 0;
    case N_LT: return c < 0;
    case N_LE: return c <= 0;
    case N_GT: return c > 0;
    default: return c >= 0;
    }
}

/* Integer arithmetic when it is exact: 1 with *out set, 0 to fall back to doubles. */
static int arith_int(int op, int64_t a, int64_t b, struct val *out)
{
    int64_t r;

    switch (op) {
    case N_ADD:
        if (__builtin_add_overflow(a, b, &r))
            return 0;
        break;
    case N_SUB:
        if (__builtin_sub_overflow(a, b, &r))
            return 0;
        break;
    case N_MUL:
        if (__builtin_mul_overflow(a, b, &r))
            return 0;
        break;
    case N_DIV:
        if (b == 0) {
            val_null(out);
            return 1;
        }
        if ((b == -1 && a == INT64_MIN) || a % b != 0)
            return 0;
        r = a / b;
        break;
    default:    /* N_MOD: the sign follows the left operand, as in C and SQL */
        if (b == 0) {
            val_null(out);
            return 1;
        }
        r = b == -1 ? 0 : a % b;
        break;
    }
    if (r > MAX_SAFE_INT || r < -MAX_SAFE_INT)
        return 0;
    val_int(out, r);
    return 1;
}

static void eval_arith(int op, const struct val *a, const struct val *b, struct val *out)
{
    double x, y, r;

    val_null(out);
    if (!val_is_number(a) || !val_is_number(b))
        return;                 /* null or a type mismatch */
    if (a->type == V_INT && b->type == V_INT && arith_int(op, a->i, b->i, out))
        return;
    x = val_double(a);
    y = val_double(b);
    switch (op) {
    case N_ADD: r = x + y; break;
    case N_SUB: r = x - y; break;
    case N_MUL: r = x * y; break;
    case N_DIV:
        if (y == 0.0)
            return;
        r = x / y;
        break;
    default:
        if (y == 0.0)
            return;
        r = real_mod(x, y);
        break;
    }
    val_real(out, r);           /* not exact in integers (a fraction, or past 2^53), so a real */
}

static void eval_node(const struct eval *ev, int i, struct val *out);

/* round(x, digits): half away from zero on the number as it is written to 15 significant digits, so that
 * round(2.675, 2) is 2.68 although the double 2.675 is slightly below it. */
static void fn_round(const struct val *x, const struct val *digits, struct val *out)
{
    static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };
    char text[64], mantissa[16];
    int d, k, j, exponent, negative, n = 0;
    const char *c;
    int64_t kept = 0;
    double r;

    val_null(out);
    if (!val_is_number(x) || !val_is_number(digits))
        return;
    if (!is_safe_whole(val_double(digits)) || val_double(digits) < 0 || val_double(digits) > 6)
        return;
    d = (int)val_double(digits);
    if (x->type == V_INT) {
        *out = *x;
        return;
    }
    negative = x->d < 0;
    snprintf(text, sizeof(text), "%.14e", abs_double(x->d));
    for (c = text; *c && *c != 'e' && n < 15; c++)      /* the locale may write any radix character */
        if (is_digit(*c))
            mantissa[n++] = *c;
    c = strchr(text, 'e');
    if (n != 15 || c == NULL)
        return;
    exponent = (int)strtol(c + 1, NULL, 10);
    k = exponent + d + 1;       /* digits at or above 10^-d */
    if (k >= 15) {              /* nothing to drop at 15 significant digits */
        if (d == 0)
            val_whole_or_real(out, round_whole(x->d));
        else
            *out = *x;
        return;
    }
    for (j = 0; j < k; j++)
        kept = kept * 10 + (mantissa[j] - '0');
    if (k >= 0 && mantissa[k] >= '5')
        kept++;
    r = (double)kept / pow10[d];
    if (negative && kept != 0)
        r = -r;
    if (d == 0)
        val_whole_or_real(out, r);
    else
        val_real(out, r);
}

/* Parse "-12", "37.5", " 4 " (leading and trailing blanks, an optional sign) as number() does. */
static void fn_number(const struct val *x, struct val *out)
{
    const char *s;
    size_t n;
    int is_real, negative = 0;
    int64_t iv;
    double dv;

    val_null(out);
    if (val_is_number(x)) {
        *out = *x;
        return;
    }
    if (x->type != V_STRING)
        return;
    s = x->s;
    n = x->len;
    while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    if (n > 0 && (*s == '-' || *s == '+')) {
        negative = *s == '-';
        s++;
        n--;
    }
    if (decimal_parse(s, n, &is_real, &iv, &dv) < 0)
        return;
    if (is_real)
        val_real(out, negative ? -dv : dv);
    else
        val_int(out, negative ? -iv : iv);
}

/* The day number of a date "YYYY-MM-DD" or of a datetime "YYYY-MM-DDTHH:MM[:SS]Z" (core/date rules: real
 * calendar days, years 1800 to 9999); -1 when v is anything else. */
static int date_days(const struct val *v, int64_t *days)
{
    int64_t ms;

    if (v->type != V_STRING || memchr(v->s, '\0', v->len) != NULL)     /* core/date reads to the NUL */
        return -1;
    if (date_parse(v->s, days) == 0)
        return 0;
    if (datetime_parse(v->s, &ms) < 0)
        return -1;
    *days = ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
    return 0;
}

/* sum(): add v (a number, null as 0, or an array of those) into the running total. -1 on a type mismatch. */
static int sum_add(const struct val *v, int *is_real, int64_t *total_int, double *total_real, int in_array)
{
    size_t i;

    switch (v->type) {
    case V_NULL:
        return 0;
    case V_INT:
        if (!*is_real) {
            int64_t r;

            if (!__builtin_add_overflow(*total_int, v->i, &r) && r <= MAX_SAFE_INT && r >= -MAX_SAFE_INT) {
                *total_int = r;
                return 0;
            }
            *is_real = 1;
            *total_real = (double)*total_int;
        }
        *total_real += (double)v->i;
        return 0;
    case V_REAL:
        if (!*is_real) {
            *is_real = 1;
            *total_real = (double)*total_int;
        }
        *total_real += v->d;
        return 0;
    case V_ARRAY:
        if (in_array)
            return -1;
        for (i = 0; i < json_array_size(v->array); i++) {
            struct val item;

            val_from_json(&item, json_array_get(v->array, i));
            if (sum_add(&item, is_real, total_int, total_real, 1) < 0)
                return -1;
        }
        return 0;
    default:
        return -1;
    }
}

/* min()/max(): fold v (a number or string, null skipped, or an array of those) into *best; want is -1 for
 * min, 1 for max. -1 when numbers and strings are mixed or v is of another type. */
static int extreme_add(const struct val *v, struct val *best, int want, int in_array)
{
    size_t i;
    int c;

    switch (v->type) {
    case V_NULL:
        return 0;
    case V_INT:
    case V_REAL:
    case V_STRING:
        if (best->type == V_NULL) {
            *best = *v;
            return 0;
        }
        if (val_is_number(v) && val_is_number(best))
            c = number_compare(v, best);
        else if (v->type == V_STRING && best->type == V_STRING)
            c = string_compare(v, best);
        else
            return -1;
        if (c == want)
            *best = *v;
        return 0;
    case V_ARRAY:
        if (in_array)
            return -1;
        for (i = 0; i < json_array_size(v->array); i++) {
            struct val item;

            val_from_json(&item, json_array_get(v->array, i));
            if (extreme_add(&item, best, want, 1) < 0)
                return -1;
        }
        return 0;
    default:
        return -1;
    }
}

/* selected(x, code): x (an array) holds code, or x (a single value) equals it. */
static int fn_selected(const struct val *x, const struct val *code)
{
    size_t i;

    if (x->type == V_NULL || code->type == V_NULL)
        return 0;
    if (x->type != V_ARRAY)
        return val_compare(N_EQ, x, code);
    for (i = 0; i < json_array_size(x->array); i++) {
        struct val item;

        val_from_json(&item, json_array_get(x->array, i));
        if (val_compare(N_EQ, &item, code))
            return 1;
    }
    return 0;
}

static void eval_call(const struct eval *ev, const struct node *n, struct val *out)
{
    const struct node *nodes = ev->x->nodes;
    struct val a, b;
    int arg = n->a, is_real = 0;
    int64_t total_int = 0, days1, days2;
    double total_real = 0;

    val_null(out);
    switch ((enum fn_id)n->fn) {
    case F_IF:
        eval_node(ev, arg, &a);
        eval_node(ev, val_truthy(&a) ? nodes[arg].next : nodes[nodes[arg].next].next, out);
        return;
    case F_SELECTED:
        eval_node(ev, arg, &a);
        eval_node(ev, nodes[arg].next, &b);
        val_bool(out, fn_selected(&a, &b));
        return;
    case F_COUNT:
        eval_node(ev, arg, &a);
        val_int(out, a.type == V_NULL ? 0 : a.type == V_ARRAY ? (int64_t)json_array_size(a.array) : 1);
        return;
    case F_SUM:
        for (; arg >= 0; arg = nodes[arg].next) {
            eval_node(ev, arg, &a);
            if (sum_add(&a, &is_real, &total_int, &total_real, 0) < 0)
                return;
        }
        if (is_real)
            val_real(out, total_real);
        else
            val_int(out, total_int);
        return;
    case F_MIN:
    case F_MAX:
        for (; arg >= 0; arg = nodes[arg].next) {
            eval_node(ev, arg, &a);
            if (extreme_add(&a, out, n->fn == F_MIN ? -1 : 1, 0) < 0) {
                val_null(out);
                return;
            }
        }
        return;
    case F_ROUND:
        eval_node(ev, arg, &a);
        eval_node(ev, nodes[arg].next, &b);
        fn_round(&a, &b, out);
        return;
    case F_COALESCE:
        for (; arg >= 0; arg = nodes[arg].next) {
            eval_node(ev, arg, out);
            if (out->type != V_NULL)
                return;
        }
        return;
    case F_EMPTY:
        eval_node(ev, arg, &a);
        val_bool(out, a.type == V_NULL || (a.type == V_STRING && a.len == 0) ||
                      (a.type == V_ARRAY && json_array_size(a.array) == 0));
        return;
    case F_NUMBER:
        eval_node(ev, arg, &a);
        fn_number(&a, out);
        return;
    case F_DAYS_BETWEEN:
        eval_node(ev, arg, &a);
        eval_node(ev, nodes[arg].next, &b);
        if (date_days(&a, &days1) == 0 && date_days(&b, &days2) == 0)
            val_int(out, days2 - days1);
        return;
    }
}

/* Evaluate node i into *out. Recursion is bounded by the tree's height (EXPR_MAX_DEPTH). */
static void eval_node(const struct eval *ev, int i, struct val *out)
{
    const struct node *n = &ev->x->nodes[i];
    struct val a, b;

    val_null(out);
    switch ((enum node_kind)n->kind) {
    case N_NULL:
        return;
    case N_BOOL:
        val_bool(out, (int)n->v.i);
        return;
    case N_INT:
        val_int(out, n->v.i);
        return;
    case N_REAL:
        val_real(out, n->v.d);
        return;
    case N_STRING:
        out->type = V_STRING;
        out->s = ev->x->pool + n->v.s.off;
        out->len = (size_t)n->v.s.len;
        return;
    case N_NAME:
        if (ev->lookup)
            val_from_json(out, ev->lookup(ev->x->pool + ev->x->names[n->v.name], ev->ctx));
        return;
    case N_NEG:
        eval_node(ev, n->a, &a);
        if (a.type == V_INT && a.i >= -MAX_SAFE_INT && a.i <= MAX_SAFE_INT)
            val_int(out, -a.i);
        else if (a.type == V_INT)
            val_real(out, -(double)a.i);
        else if (a.type == V_REAL)
            val_real(out, -a.d);
        return;
    case N_NOT:
        eval_node(ev, n->a, &a);
        val_bool(out, !val_truthy(&a));
        return;
    case N_AND:
        eval_node(ev, n->a, &a);
        if (!val_truthy(&a)) {
            val_bool(out, 0);
            return;
        }
        eval_node(ev, n->b, &b);
        val_bool(out, val_truthy(&b));
        return;
    case N_OR:
        eval_node(ev, n->a, &a);
        if (val_truthy(&a)) {
            val_bool(out, 1);
            return;
        }
        eval_node(ev, n->b, &b);
        val_bool(out, val_truthy(&b));
        return;
    case N_EQ:
    case N_NE:
    case N_LT:
    case N_LE:
    case N_GT:
    case N_GE:
        eval_node(ev, n->a, &a);
        eval_node(ev, n->b, &b);
        val_bool(out, val_compare(n->kind, &a, &b));
        return;
    case N_ADD:
    case N_SUB:
    case N_MUL:
    case N_DIV:
    case N_MOD:
        eval_node(ev, n->a, &a);
        eval_node(ev, n->b, &b);
        eval_arith(n->kind, &a, &b, out);
        return;
    case N_CALL:
        eval_call(ev, n, out);
        return;
    }
}

json_t *expr_eval(const struct expr *x, expr_lookup_fn lookup, void *ctx, struct err *e)
{
    struct eval ev = { x, lookup, ctx };
    struct val v;
    json_t *out = NULL;

    eval_node(&ev, x->root, &v);
    switch (v.type) {
    case V_NULL: out = json_null(); break;
    case V_BOOL: out = json_boolean(v.i); break;
    case V_INT: out = json_integer(v.i); break;
    case V_REAL: out = json_real(v.d); break;
    case V_STRING: out = json_stringn(v.s, v.len); break;
    case V_ARRAY: out = json_incref((json_t *)v.array); break;     /* Jansson's reference count is atomic */
    }
    if (out == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory evaluating an expression");
    return out;
}

int expr_truthy(const json_t *v)
{
    struct val value;

    val_from_json(&value, v);
    return val_truthy(&value);
}
