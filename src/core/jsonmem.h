/* jsonmem.h — JSON values allocated in a region: built one by one, released all at once.
 *
 * A sync batch holds tens of thousands of small JSON objects (each change's fields) that live exactly as
 * long as the batch. Built with malloc, they cost as much to allocate and free as the batch costs to
 * apply. While a thread has a region set (json_region_use), every value jansson allocates on that thread
 * comes from the region; json_region_free() releases them all, and json_decref() of such a value is
 * legal and frees nothing. Values allocated elsewhere are unaffected.
 *
 * Rules: nothing may keep a reference to a region's value (json_incref, json_object_set) beyond the
 * region's life; only the thread that built a region's values may drop their last reference (the owner
 * of the region never needs to: it frees the region); and no other value may be added to a region's
 * container (it would never be freed).
 *
 * How: jansson's allocator is replaced once, at process start, by one that serves the thread's region
 * when it has one and malloc otherwise (docs/decisions.md, "JSON values in regions").
 */
#ifndef SANAD_JSONMEM_H
#define SANAD_JSONMEM_H

#include <stddef.h>

struct json_region_block;

/* An empty region is all zeros ({ NULL }). */
struct json_region {
    struct json_region_block *head;
};

/* Release every value allocated in r (whatever their reference counts). */
void json_region_free(struct json_region *r);
/* Allocate this thread's JSON values in r from now on (NULL: with malloc again); the previous one. */
struct json_region *json_region_use(struct json_region *r);

#endif
