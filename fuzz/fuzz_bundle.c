/* fuzz_bundle.c — libFuzzer target for the clear part of a bundle file (bundle_parse(), what a USB stick
 * hands `sanad bundle import` before any signature is checked): the input as a whole file, and after the
 * magic line (so that the fuzzer reaches the header and the lengths at once). Checks its contract:
 *   - a refusal has its code ("invalid_bundle", or "bundle_too_large") and a message;
 *   - an accepted file's parts lie inside it, in order (sealed key, stream header, chunks, signature), the
 *     signature is its last 64 bytes and covers everything before them; its ids are valid node ids and
 *     its vector maps node ids to seqs >= 0.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/id.h"
#include "services/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
    struct bundle_head h;
    struct err e;
    const char *k;
    json_t *v;

    err_clear(&e);
    if (bundle_parse(data, size, &h, &e) < 0) {
        if ((strcmp(e.code, "invalid_bundle") != 0 && strcmp(e.code, "bundle_too_large") != 0) || !e.message[0])
            __builtin_trap();
        return;
    }
    if (h.sealed_key < data || h.stream_header != h.sealed_key + CRYPTO_SEALED_KEY_LEN
        || h.chunks != h.stream_header + CRYPTO_STREAM_HEADER_LEN || h.chunks + h.chunks_len != h.signature
        || h.signature != data + size - CRYPTO_SIGN_BYTES || h.signed_len != size - CRYPTO_SIGN_BYTES
        || !id_valid(h.from) || !id_valid(h.to) || h.batches < 0 || h.batches > BUNDLE_MAX_BATCHES || h.changes < 0
        || !json_is_object(h.vector))
        __builtin_trap();
    json_object_foreach(h.vector, k, v)
        if (!id_valid(k) || !json_is_integer(v) || json_integer_value(v) < 0)
            __builtin_trap();
    bundle_head_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *withmagic;
    size_t m = sizeof(BUNDLE_MAGIC) - 1;

    check(data, size);
    if ((withmagic = malloc(size + m)) == NULL)
        return 0;
    memcpy(withmagic, BUNDLE_MAGIC, m);
    memcpy(withmagic + m, data, size);
    check(withmagic, size + m);
    free(withmagic);
    return 0;
}
