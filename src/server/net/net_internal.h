/* net_internal: what the network module's files share and nothing outside
 * it uses — ENet's pooled allocator (net_alloc.c) and the batched socket
 * calls under ENet (net_batch.c). Both are network-thread business: a batch
 * belongs to one network thread, the pool keeps a free list per thread. */
#ifndef KN_NET_INTERNAL_H
#define KN_NET_INTERNAL_H

#include "kn_mem.h"

#include <stdbool.h>
#include <stdint.h>

/* enet_initialize with the pooled allocator; 0 on success. */
int kn_net_alloc_init(void);
/* False when the pool is compiled out (sanitizer builds). */
bool kn_net_alloc_pooled(void);

typedef struct kn_net_batch kn_net_batch;

typedef struct kn_net_batch_stats {
    uint64_t datagrams_sent, send_calls, send_dropped;
    uint64_t datagrams_received, recv_calls;
} kn_net_batch_stats;

/* True when ENet's socket calls reach net_batch.c (checked once at start). */
bool kn_net_batch_available(void);
kn_net_batch *kn_net_batch_new(void);    /* NULL when out of memory */
void kn_net_batch_free(kn_net_batch *b); /* flushes first; accepts NULL */
/* From now on, on this thread, ENet's sends on fd queue into b and its
 * receives read through b. */
void kn_net_batch_arm(kn_net_batch *b, int fd);
/* Flushes and stops queuing on this thread. */
void kn_net_batch_disarm(kn_net_batch *b);
/* Sends everything queued (sendmmsg). */
void kn_net_batch_flush(kn_net_batch *b);
/* Datagrams read from the socket that ENet has not taken yet. */
bool kn_net_batch_rx_pending(const kn_net_batch *b);
kn_net_batch_stats kn_net_batch_stats_of(const kn_net_batch *b);

#endif
