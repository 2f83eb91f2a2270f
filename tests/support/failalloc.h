/* failalloc: a counting allocator for tests that can fail the n-th call.
 *
 * failalloc_install(n) makes allocation number n from now (0-based) fail,
 * and only that one, so cleanup paths that allocate still work. failalloc_live() is the number of blocks
 * not yet freed, for leak checks. Single-threaded use only. */
#ifndef KN_TEST_FAILALLOC_H
#define KN_TEST_FAILALLOC_H

#include <stddef.h>

void failalloc_install(long fail_at); /* -1 = never fail */
void failalloc_remove(void);
long failalloc_live(void);
long failalloc_count(void); /* allocations since install */

/* Runs `attempt` with allocation 0, 1, 2, ... failing until it succeeds
 * without a failure, asserting after each attempt that nothing leaked.
 * `attempt` returns 0 on success and must release everything it made.
 * Returns how many allocations the successful run needed. */
long failalloc_sweep(int (*attempt)(void *arg), void *arg);

#endif
