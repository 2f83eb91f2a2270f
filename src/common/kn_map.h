/* kn_map: an open-addressing hash map from non-zero uint64 keys to pointers.
 *
 * Linear probing with backward-shift deletion (no tombstones), grown at 50%
 * load. Used for ids: match handles, connection ids, hashed match ids. Not
 * thread-safe: it belongs to whoever owns the structure holding it. */
#ifndef KN_MAP_H
#define KN_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct kn_map_entry {
    uint64_t key; /* 0 = empty */
    void *value;
} kn_map_entry;

typedef struct kn_map {
    kn_map_entry *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} kn_map;

void kn_map_init(kn_map *m); /* empty; allocates on first put */
void kn_map_deinit(kn_map *m);
void *kn_map_get(const kn_map *m, uint64_t key);
/* Insert or replace. KN_ERR_NOMEM leaves the map unchanged. key must be non-zero. */
int kn_map_put(kn_map *m, uint64_t key, void *value);
/* Returns the removed value or NULL. */
void *kn_map_del(kn_map *m, uint64_t key);
/* A non-zero key for a string (FNV-1a, 64 bit). Different strings can share
 * a key: callers that must tell them apart keep the string and compare. */
uint64_t kn_map_key_str(const char *s);

#endif
