/* kn_mem: forwards to the installed allocator (default: libc). */
#include "kn_mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *libc_alloc(void *ud, size_t size)
{
    (void)ud;
    return malloc(size ? size : 1);
}

static void *libc_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    return realloc(ptr, size ? size : 1);
}

static void libc_free(void *ud, void *ptr)
{
    (void)ud;
    free(ptr);
}

static kn_allocator current = {libc_alloc, libc_realloc, libc_free, NULL};

void kn_mem_set_allocator(const kn_allocator *a)
{
    if (a) {
        current = *a;
    } else {
        current = (kn_allocator){libc_alloc, libc_realloc, libc_free, NULL};
    }
}

bool kn_mem_is_default(void)
{
    return current.alloc == libc_alloc;
}

void *kn_malloc(size_t size)
{
    return current.alloc(current.ud, size);
}

void *kn_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = current.alloc(current.ud, n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *kn_realloc(void *ptr, size_t size)
{
    return current.realloc(current.ud, ptr, size);
}

void kn_free(void *ptr)
{
    if (ptr) current.free(current.ud, ptr);
}

char *kn_strndup(const char *s, size_t n)
{
    if (!s) return NULL;
    size_t len = strnlen(s, n);
    char *d = kn_malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *kn_strdup(const char *s)
{
    return s ? kn_strndup(s, strlen(s)) : NULL;
}
