/* kn_mem: the allocator every KaosNet module allocates through.
 *
 * One process-wide allocator hook, in the spirit of lua_Alloc: tests install
 * a counting allocator that fails the n-th allocation, so every create can be
 * proven to clean up on every failure path. Install it before any thread
 * starts; the functions themselves are thread-safe when the hook is. */
#ifndef KN_MEM_H
#define KN_MEM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kn_allocator {
    void *(*alloc)(void *ud, size_t size);              /* NULL on failure */
    void *(*realloc)(void *ud, void *ptr, size_t size); /* NULL on failure, ptr kept */
    void (*free)(void *ud, void *ptr);                  /* accepts NULL */
    void *ud;
} kn_allocator;

/* Install `a` (copied); NULL restores the C library's allocator. */
void kn_mem_set_allocator(const kn_allocator *a);

/* True while no allocator is installed (the C library's is in use). */
bool kn_mem_is_default(void);

void *kn_malloc(size_t size);
void *kn_calloc(size_t n, size_t size); /* zeroed; NULL on overflow */
void *kn_realloc(void *ptr, size_t size);
void kn_free(void *ptr);
char *kn_strdup(const char *s);            /* NULL when s is NULL or on failure */
char *kn_strndup(const char *s, size_t n); /* copies at most n bytes, always terminates */

#endif
