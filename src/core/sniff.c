/* sniff.c — declared media types checked against the content's signature bytes (see sniff.h). */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/sniff.h"

#define MEDIA_TYPE_MAX 128      /* a longer Content-Type value is refused */

/* Declared names of the accepted types (lower case), with the canonical type each one means. */
static const struct {
    const char *name;
    const char *canonical;
} accepted[] = {
    { "application/pdf", SNIFF_PDF },
    { "image/jpeg", SNIFF_JPEG },
    { "image/jpg", SNIFF_JPEG },        /* not registered, but sent by some phones */
    { "image/png", SNIFF_PNG },
    { "image/webp", SNIFF_WEBP },
    { "text/plain", SNIFF_TEXT },
};

static const struct {
    const char *canonical;
    const char *ext;
} extensions[] = {
    { SNIFF_PDF, "pdf" }, { SNIFF_JPEG, "jpg" }, { SNIFF_JPEG, "jpeg" }, { SNIFF_PNG, "png" },
    { SNIFF_WEBP, "webp" }, { SNIFF_TEXT, "txt" },
};

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Copy s into out (lower case, at most n - 1 bytes); -1 when it does not fit. */
static int lower_copy(const char *s, size_t len, char *out, size_t n)
{
    size_t i;

    if (len >= n)
        return -1;
    for (i = 0; i < len; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[len] = '\0';
    return 0;
}

/* The charset parameter of a Content-Type value's parameters (after the first ';'), lower case, into out;
 * "" when there is none. -1 when the parameters are malformed or the value does not fit. */
static int charset_param(const char *p, char *out, size_t n)
{
    const char *name, *val, *end;
    size_t nlen;

    out[0] = '\0';
    while (*p == ';') {
        p++;
        while (is_space(*p))
            p++;
        name = p;
        while (*p && *p != '=' && *p != ';' && !is_space(*p))
            p++;
        nlen = (size_t)(p - name);
        if (*p != '=')
            return -1;
        p++;
        if (*p == '"') {
            val = ++p;
            while (*p && *p != '"')
                p++;
            if (*p != '"')
                return -1;
            end = p++;
        } else {
            val = p;
            while (*p && *p != ';' && !is_space(*p))
                p++;
            end = p;
        }
        while (is_space(*p))
            p++;
        if (nlen == 7 && strncasecmp(name, "charset", 7) == 0 && lower_copy(val, (size_t)(end - val), out, n) < 0)
            return -1;
    }
    return *p == '\0' ? 0 : -1;
}

const char *sniff_canonical_type(const char *header)
{
    char type[MEDIA_TYPE_MAX], charset[32];
    const char *p, *start;
    size_t i;

    if (header == NULL || strlen(header) >= MEDIA_TYPE_MAX)
        return NULL;
    for (p = header; is_space(*p); p++)
        ;
    start = p;
    while (*p && *p != ';' && !is_space(*p))
        p++;
    if (lower_copy(start, (size_t)(p - start), type, sizeof(type)) < 0)
        return NULL;
    while (is_space(*p))
        p++;
    if (charset_param(p, charset, sizeof(charset)) < 0)
        return NULL;
    for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        if (strcmp(type, accepted[i].name) != 0)
            continue;
        /* text is stored and served as UTF-8: another charset would be read wrongly */
        if (strcmp(accepted[i].canonical, SNIFF_TEXT) == 0 && charset[0] && strcmp(charset, "utf-8") != 0
            && strcmp(charset, "us-ascii") != 0)
            return NULL;
        return accepted[i].canonical;
    }
    return NULL;
}

int sniff_type_known(const char *s)
{
    return s && (strcmp(s, SNIFF_PDF) == 0 || strcmp(s, SNIFF_JPEG) == 0 || strcmp(s, SNIFF_PNG) == 0
                 || strcmp(s, SNIFF_WEBP) == 0 || strcmp(s, SNIFF_TEXT) == 0);
}

int sniff_utf8_valid(const void *s, size_t n)
{
    const unsigned char *p = s, *end = p + n;
    uint32_t cp;
    int more, i;

    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        if (*p >= 0xc2 && *p <= 0xdf)
            more = 1, cp = *p & 0x1f;
        else if (*p >= 0xe0 && *p <= 0xef)
            more = 2, cp = *p & 0x0f;
        else if (*p >= 0xf0 && *p <= 0xf4)
            more = 3, cp = *p & 0x07;
        else
            return 0;   /* a continuation byte first, an overlong 2-byte lead (c0, c1), or past U+10FFFF */
        if (end - p <= more)
            return 0;
        for (i = 1; i <= more; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((more == 2 && cp < 0x800) || (more == 3 && (cp < 0x10000 || cp > 0x10ffff))
            || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += more + 1;
    }
    return 1;
}

/* Plain text: UTF-8 with no control characters but tab, line feed, form feed and carriage return (no NUL,
 * no terminal escapes, no C1 controls), that does not open like markup or a script. */
static int text_ok(const unsigned char *p, size_t len, const char **what)
{
    size_t i = 0;

    if (!sniff_utf8_valid(p, len)) {
        *what = "binary data, not UTF-8 text";
        return 0;
    }
    for (i = 0; i < len; i++) {
        if ((p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\f' && p[i] != '\r') || p[i] == 0x7f
            || (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)) {
            *what = "binary data or text with control characters";
            return 0;
        }
    }
    i = len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf ? 3 : 0;   /* a byte-order mark */
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r' || p[i] == '\f'))
        i++;
    if (i < len && p[i] == '<') {
        *what = "an HTML, SVG or XML document";
        return 0;
    }
    if (i + 1 < len && p[i] == '#' && p[i + 1] == '!') {
        *what = "a script";
        return 0;
    }
    return 1;
}

const char *sniff_detect(const void *data, size_t len, const char **what)
{
    const unsigned char *p = data;
    const char *dummy;

    if (what == NULL)
        what = &dummy;
    *what = "of no accepted type";
    if (len == 0) {
        *what = "empty";
        return NULL;
    }
    /* "%PDF-1.7": the header a PDF reader requires at its start */
    if (len >= 8 && memcmp(p, "%PDF-", 5) == 0 && p[5] >= '1' && p[5] <= '2' && p[6] == '.' && p[7] >= '0'
        && p[7] <= '9') {
        *what = "a PDF document";
        return SNIFF_PDF;
    }
    /* JPEG: start of image, then the marker of the first segment */
    if (len >= 4 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff && p[3] >= 0xc0 && p[3] != 0xff) {
        *what = "a JPEG image";
        return SNIFF_JPEG;
    }
    /* PNG: the 8-byte signature, then the IHDR chunk (13 bytes of data) that must come first */
    if (len >= 33 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(p + 8, "\0\0\0\x0dIHDR", 8) == 0) {
        *what = "a PNG image";
        return SNIFF_PNG;
    }
    /* WebP: a RIFF container of form WEBP whose first chunk is lossy, lossless or extended image data */
    if (len >= 20 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0
        && (memcmp(p + 12, "VP8 ", 4) == 0 || memcmp(p + 12, "VP8L", 4) == 0 || memcmp(p + 12, "VP8X", 4) == 0)) {
        *what = "a WebP image";
        return SNIFF_WEBP;
    }
    if (text_ok(p, len, what)) {
        *what = "plain text";
        return SNIFF_TEXT;
    }
    /* named only for a clearer refusal: these are never stored under any type */
    if (len >= 4 && memcmp(p, "\x7f" "ELF", 4) == 0)
        *what = "a program (ELF)";
    else if (len >= 2 && p[0] == 'M' && p[1] == 'Z')
        *what = "a program (Windows)";
    else if (len >= 4 && memcmp(p, "PK\x03\x04", 4) == 0)
        *what = "a ZIP archive";
    return NULL;
}

int sniff_check(const char *declared, const void *data, size_t len, const char **canonical, struct err *e)
{
    const char *want = sniff_canonical_type(declared), *got, *what;

    *canonical = NULL;
    if (want == NULL) {
        if (declared && (strcasestr(declared, "svg") || strcasestr(declared, "html") || strcasestr(declared, "xml")
                         || strcasestr(declared, "script")))
            return err_set(e, ERR_UNSUPPORTED_MEDIA, "unsupported_media_type",
                           "SVG, HTML, XML and scripts can run in a browser and are never stored; send a PDF, "
                           "a JPEG, PNG or WebP image, or UTF-8 text");
        return err_set(e, ERR_UNSUPPORTED_MEDIA, "unsupported_media_type",
                       "send the file with Content-Type application/pdf, image/jpeg, image/png, image/webp or "
                       "text/plain (UTF-8)");
    }
    if (len == 0)
        return err_set(e, ERR_UNPROCESSABLE, "empty_document", "the document has no content");
    got = sniff_detect(data, len, &what);
    if (got == NULL || strcmp(got, want) != 0) {
        if (got)
            return err_set(e, ERR_UNPROCESSABLE, "content_mismatch",
                           "the content is %s, not %s: send it with Content-Type %s", what, want, got);
        return err_set(e, ERR_UNPROCESSABLE, "content_mismatch", "the content is %s, not %s as declared", what,
                       want);
    }
    *canonical = want;
    return 0;
}

const char *sniff_extension(const char *canonical)
{
    size_t i;

    for (i = 0; canonical && i < sizeof(extensions) / sizeof(extensions[0]); i++)
        if (strcmp(extensions[i].canonical, canonical) == 0)
            return extensions[i].ext;
    return "bin";
}

int sniff_extension_fits(const char *canonical, const char *ext)
{
    size_t i;

    for (i = 0; canonical && ext && i < sizeof(extensions) / sizeof(extensions[0]); i++)
        if (strcmp(extensions[i].canonical, canonical) == 0 && strcasecmp(extensions[i].ext, ext) == 0)
            return 1;
    return 0;
}
