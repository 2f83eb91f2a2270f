/* kn_recycle: a per-thread cache of small blocks in front of the C library,
 * for objects made and freed per packet (ENet's packets and commands, the
 * envelopes decoded from client datagrams).
 *
 * Contract:
 * - kn_recycle_alloc returns a plain C-library block (or NULL); it can be
 *   freed with kn_recycle_free or free(), on any thread. kn_recycle_free
 *   accepts any C-library block (its size class is read back from
 *   malloc_usable_size), so code that mixes the two never corrupts memory.
 * - A freed block goes to the free list of the freeing thread, if that
 *   thread has allocated through the cache before and holds less than
 *   KN_RECYCLE_CACHE_BYTES of that class; otherwise back to the C library.
 *   So a thread that only frees keeps nothing, a thread holds a bounded
 *   amount idle, and a steady make-and-free loop allocates nothing once warm.
 * - A thread's blocks go back to the C library when it exits.
 * - Under AddressSanitizer the cache is off (straight malloc and free), so
 *   use-after-free stays visible.
 * - These functions bypass kn_mem's hook. Callers that must honour an
 *   installed test allocator (failing-allocation sweeps) check
 *   kn_mem_is_default() first, as kn_codec does. */
#ifndef KN_RECYCLE_H
#define KN_RECYCLE_H

#include <stdbool.h>
#include <stddef.h>

#define KN_RECYCLE_CACHE_BYTES (512u * 1024u) /* per size class and thread */

void *kn_recycle_alloc(size_t size);
void kn_recycle_free(void *p); /* accepts NULL */
/* False in sanitizer builds, where the cache is compiled out. */
bool kn_recycle_enabled(void);

#endif
