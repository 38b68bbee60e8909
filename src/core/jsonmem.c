/* jsonmem.c — jansson's allocator, with regions (see jsonmem.h). */
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "core/jsonmem.h"

/* A region's blocks come from malloc; JSON values of a region are carved out of them. */
#define JM_BLOCK (1024 * 1024)

struct json_region_block {
    struct json_region_block *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

static __thread struct json_region *current;

static void *jm_malloc(size_t n)
{
    struct json_region *r = current;
    struct json_region_block *b;
    unsigned char *p;
    size_t need, size;

    if (r == NULL)
        return malloc(n);
    if (n > SIZE_MAX - 64)
        return NULL;
    need = (n + 15) & ~(size_t)15;
    b = r->head;
    if (b == NULL || b->size - b->used < need) {
        size = need > JM_BLOCK / 4 ? need : JM_BLOCK;
        if ((b = malloc(sizeof(*b) + size)) == NULL)
            return NULL;
        b->size = size;
        b->used = 0;
        if (need > JM_BLOCK / 4 && r->head) {
            /* a large block goes behind the current one, which keeps serving small requests */
            b->next = r->head->next;
            r->head->next = b;
        } else {
            b->next = r->head;
            r->head = b;
        }
    }
    p = b->data + b->used;
    b->used += need;
    return p;
}

/* A value of a region is freed only on the thread building it (jansson growing a table, or dropping a
 * value it could not finish), which has the region set: nothing else holds it yet. Any other block is
 * malloc's, as jansson's own callers expect (json_dumps's text is freed with free()). */
static void jm_free(void *ptr)
{
    struct json_region_block *b;
    unsigned char *p = ptr;

    if (current)
        for (b = current->head; b; b = b->next)
            if (p >= b->data && p < b->data + b->size)
                return;         /* released with its region */
    free(ptr);
}

/* Installed before main(): the same functions then serve every value of the process. */
__attribute__((constructor)) static void jm_install(void)
{
    json_set_alloc_funcs(jm_malloc, jm_free);
}

void json_region_free(struct json_region *r)
{
    struct json_region_block *b = r->head, *next;

    while (b) {
        next = b->next;
        free(b);
        b = next;
    }
    r->head = NULL;
}

struct json_region *json_region_use(struct json_region *r)
{
    struct json_region *old = current;

    current = r;
    return old;
}
