/* vm_alloc: the allocator of one runtime VM (its lua_Alloc). Internal to the
 * runtime module.
 *
 * Capped: `used` is the sum of the sizes Lua holds, as it asked for them. A
 * request that would take it past `limit` fails (NULL): Lua collects, retries
 * once, then raises "not enough memory", and the VM stays usable.
 *
 * Pooled: a block of up to RT_HEAP_SMALL_MAX bytes is rounded up to a multiple
 * of RT_HEAP_GRAIN (its size class) and carved from pages of RT_HEAP_PAGE bytes
 * that belong to this heap; a freed block goes on its class's free list, for
 * the next block of that class. Lua gives the old size on every realloc and
 * free, so blocks carry no header. Larger blocks go straight to
 * kn_realloc/kn_free. Each VM's small objects thus sit together, away from
 * other VMs', and the common allocation is a list pop (docs/matches.md).
 *
 * Pooling is for match VMs (rt_vm_create's `pooled`): their garbage is
 * steady, tick after tick. An API worker's VM lives as long as the server
 * and its RPCs can be peaky; pooled, the free blocks of one peak's size
 * classes would sit in pages another mix of sizes cannot use, and count
 * against its cap. An unpooled heap (pooled = false, set before the first
 * allocation) sends every block to kn_realloc and only keeps the count.
 *
 * Pages are kept until rt_heap_deinit. They count against the cap on their
 * own: a page is taken only while page_bytes stays within `limit`, so memory
 * parked in free blocks is bounded and a VM holds at most twice its cap (all
 * pages free after a peak of small objects, plus large blocks up to the cap).
 * A page that cannot be had (cap or kn_malloc failing) fails the request like
 * any other out-of-memory.
 *
 * Under AddressSanitizer the pool stays on (the suite tests what ships) and
 * is made visible to ASan: free blocks, the untouched rest of a page, a
 * block's bytes past the size Lua asked for and a redzone after every block
 * are poisoned. A use after free is caught until the block is reused.
 *
 * Thread: a heap belongs to its VM's thread. */
#ifndef KN_RT_VM_ALLOC_H
#define KN_RT_VM_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

#define RT_HEAP_GRAIN     16 /* block alignment (max_align_t) and class step */
#define RT_HEAP_SMALL_MAX 512
#define RT_HEAP_CLASSES   (RT_HEAP_SMALL_MAX / RT_HEAP_GRAIN)
#define RT_HEAP_PAGE      ((size_t)32 << 10)

typedef struct rt_heap_page rt_heap_page;

typedef struct rt_heap {
    size_t used;                 /* bytes Lua holds, small and large */
    size_t limit;                /* the cap on used, and on page_bytes */
    size_t page_bytes;           /* pages taken, RT_HEAP_PAGE each */
    bool pooled;                 /* small blocks from pages (rt_heap_init sets it) */
    void *free[RT_HEAP_CLASSES]; /* free blocks by class, linked through their first word */
    char *carve, *carve_end;     /* the untouched rest of the newest page */
    rt_heap_page *pages;
} rt_heap;

/* An empty pooled heap capped at `limit` bytes (caller's memory). */
void rt_heap_init(rt_heap *h, size_t limit);
/* Frees the pages: after lua_close, or after lua_newstate failed. Leaves an
 * empty heap with the same limit. */
void rt_heap_deinit(rt_heap *h);
/* The lua_Alloc; ud is the rt_heap. */
void *rt_heap_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

#endif
