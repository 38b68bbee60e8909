/* fuzz_sniff.c — libFuzzer target for what an upload is checked with and what a download is named by:
 * sniff_check() / sniff_detect() on the bytes (declared as each type in turn, and as the input's own first
 * line read as a Content-Type), documents_download_name() and http_content_disposition() on the bytes read
 * as a file name, and crypto_b64url_decode() on them read as base64url. Checks their contracts:
 *   - an accepted upload's type is the type its bytes are detected as, and one of the stored types;
 *   - text is accepted only when it is UTF-8 with no control characters, not opening with '<' or "#!";
 *   - a refusal always has one of its three codes and a message;
 *   - a download name is UTF-8 (for UTF-8 input) with no control character or path separator, and an
 *     extension that fits its type; the header value is printable ASCII with a closed quoted string;
 *   - base64url that decodes encodes back to the same text (one spelling per content).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/sniff.h"
#include "http/http.h"
#include "services/documents.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const declared[] = {
    "application/pdf", "image/jpeg", "image/jpg", "image/png", "image/webp", "text/plain",
    "text/plain; charset=utf-8", "image/svg+xml", "text/html", NULL,
};

static void check_upload(const char *type, const uint8_t *data, size_t size)
{
    const char *canonical = (const char *)1, *detected, *what = NULL;
    struct err e;
    size_t i;

    err_clear(&e);
    detected = sniff_detect(data, size, &what);
    if (what == NULL || (detected && !sniff_type_known(detected)))
        __builtin_trap();
    if (sniff_check(type, data, size, &canonical, &e) == 0) {
        if (canonical == NULL || detected == NULL || strcmp(canonical, detected) != 0 || size == 0)
            __builtin_trap();
        if (strcmp(canonical, SNIFF_TEXT) == 0) {
            if (!sniff_utf8_valid(data, size))
                __builtin_trap();
            for (i = 0; i < size; i++)
                if ((data[i] < 0x20 && data[i] != '\t' && data[i] != '\n' && data[i] != '\r' && data[i] != '\f')
                    || data[i] == 0x7f)
                    __builtin_trap();
            for (i = (size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) ? 3 : 0; i < size && strchr(" \t\r\n\f", data[i]);
                 i++)
                ;
            if (i < size && (data[i] == '<' || (data[i] == '#' && i + 1 < size && data[i + 1] == '!')))
                __builtin_trap();
        }
    } else {
        if (canonical != NULL || e.message[0] == '\0'
            || (strcmp(e.code, "unsupported_media_type") != 0 && strcmp(e.code, "content_mismatch") != 0
                && strcmp(e.code, "empty_document") != 0))
            __builtin_trap();
    }
}

static void check_name(const char *s, const char *type)
{
    char name[DOCUMENT_FILENAME_MAX + 8], h[HTTP_DISPOSITION_MAX];
    const char *dot, *star;
    size_t i, n;

    documents_download_name(s, NULL, type, name);
    n = strlen(name);
    if (n == 0 || n > DOCUMENT_FILENAME_MAX + 5 || strchr(name, '/') || strchr(name, '\\'))
        __builtin_trap();
    for (i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            __builtin_trap();
    if (sniff_utf8_valid(s, strlen(s)) && !sniff_utf8_valid(name, n))
        __builtin_trap();
    dot = strrchr(name, '.');
    if (dot == NULL || !sniff_extension_fits(type, dot + 1))
        __builtin_trap();

    http_content_disposition(name, h, sizeof(h));
    n = strlen(h);
    if (n >= sizeof(h) - 1 || strncmp(h, "attachment; filename=\"", 22) != 0)
        __builtin_trap();
    for (i = 0; i < n; i++)
        if ((unsigned char)h[i] < 0x20 || (unsigned char)h[i] >= 0x7f)
            __builtin_trap();
    /* exactly one quoted string, closed right before filename*, and nothing after it that needs quoting */
    star = strstr(h, "\"; filename*=UTF-8''");
    if (star == NULL || memchr(h + 22, '"', (size_t)(star - h - 22)) != NULL
        || strspn(star + 20, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~%")
               != strlen(star + 20))
        __builtin_trap();
}

static void check_b64(const char *s, size_t len)
{
    unsigned char out[4096];
    char again[CRYPTO_B64URL_LEN(sizeof(out))];
    size_t got = 0;

    if (crypto_b64url_decode(s, len, out, sizeof(out), &got) < 0)
        return;
    if (got > sizeof(out) || crypto_b64url_encode(out, got, again, sizeof(again)) < 0 || strlen(again) != len
        || memcmp(again, s, len) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl;
    char *s, *line;
    size_t i, llen;

    if (size > 65536)
        return 0;
    for (i = 0; declared[i]; i++)
        check_upload(declared[i], data, size);
    /* the first line as a Content-Type, the rest as the content */
    nl = memchr(data, '\n', size);
    llen = nl ? (size_t)(nl - data) : size;
    line = malloc(llen + 1);
    s = malloc(size + 1);
    if (line == NULL || s == NULL)
        abort();
    memcpy(line, data, llen);
    line[llen] = '\0';
    check_upload(line, nl ? nl + 1 : data + size, nl ? size - llen - 1 : 0);
    memcpy(s, data, size);
    s[size] = '\0';
    check_name(s, SNIFF_PDF);
    check_name(s, SNIFF_TEXT);
    if (size <= 5000)
        check_b64(s, strlen(s));
    free(line);
    free(s);
    return 0;
}
