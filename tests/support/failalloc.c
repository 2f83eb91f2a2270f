/* failalloc: see header. Blocks carry a small header holding their size. */
#include "failalloc.h"
#include "kn_mem.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static long fail_at = -1, count, live;

static void *fa_alloc(void *ud, size_t size)
{
    (void)ud;
    if (count++ == fail_at) return NULL;
    void *p = malloc(size ? size : 1);
    if (p) live++;
    return p;
}

static void *fa_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (count++ == fail_at) return NULL;
    void *p = realloc(ptr, size ? size : 1);
    if (p && !ptr) live++;
    return p;
}

static void fa_free(void *ud, void *ptr)
{
    (void)ud;
    if (ptr) live--;
    free(ptr);
}

void failalloc_install(long n)
{
    fail_at = n;
    count = 0;
    live = 0;
    kn_allocator a = {fa_alloc, fa_realloc, fa_free, NULL};
    kn_mem_set_allocator(&a);
}

void failalloc_remove(void)
{
    kn_mem_set_allocator(NULL);
}

long failalloc_live(void)
{
    return live;
}

long failalloc_count(void)
{
    return count;
}

long failalloc_sweep(int (*attempt)(void *arg), void *arg)
{
    for (long n = 0; n < 100000; n++) {
        failalloc_install(n);
        int rc = attempt(arg);
        long used = count, leaked = live;
        failalloc_remove();
        assert_int_equal(leaked, 0);
        if (rc == 0 && used <= n) return used; /* succeeded without hitting the failure */
    }
    fail_msg("attempt never succeeded");
    return -1;
}
