/* id.c — UUIDv7 generation and validation. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/crypto.h"
#include "core/id.h"
#include "core/util.h"

void id_new(char out[ID_LEN])
{
    unsigned char b[16];
    uint64_t ms = (uint64_t)now_ms();
    int i;

    crypto_random_bytes(b, sizeof(b));
    for (i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));  /* version 7 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));  /* variant 10 */
    snprintf(out, ID_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

int id_valid(const char *s)
{
    int i;

    if (s == NULL || strlen(s) != 36)
        return 0;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}
