/* kn_gateway: the network threads' front door. It implements kn_net's
 * handler: a session per connection (kn_sessions), each packet decoded,
 * looked up in the route table (kn_routes) and run through the pipeline
 * (kn_pipeline: checks, hooks, handler, reply, effects), shutdown announced
 * and drained. It knows no service: handlers are named only by the route
 * table, and what they need reaches them as service contexts (deps).
 *
 * A malformed envelope or a message that is not a client request is
 * answered with an Error (MALFORMED, UNIMPLEMENTED) and counts as a
 * violation (kn_net_violation), so a peer that keeps sending garbage is
 * disconnected while everyone else keeps being served.
 *
 * Shards. With several network threads (one kn_net each, sharing the UDP
 * port), the gateway is a group of shards, one per net, each with its own
 * pipeline, running on that net's thread. What spans shards (ending a
 * user's sessions, match batches, relayed traffic, sends to a user) goes
 * through kn_out, the one way out. */
#ifndef KN_GATEWAY_H
#define KN_GATEWAY_H

#include "kn_net.h"
#include "kn_pipeline.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct kn_gateway kn_gateway;
typedef struct kn_match_engine kn_match_engine;

typedef struct kn_gateway_deps {
    kn_pipeline_deps pipeline; /* api, runtime, out, sessions, lockouts, services... */
    int64_t shutdown_grace_ms; /* announced to clients */
    kn_match_engine *matches;  /* stopped at shutdown (NULL = none) */
    size_t shards;             /* network threads (0 = 1), at most KN_GATEWAY_MAX_SHARDS */
} kn_gateway_deps;

#define KN_GATEWAY_MAX_SHARDS 64

typedef struct kn_gateway_stats {
    uint64_t requests, errors, malformed, unauthenticated, api_busy;
} kn_gateway_stats;

int kn_gateway_create(const kn_gateway_deps *deps, kn_gateway **out);
void kn_gateway_destroy(kn_gateway *gw); /* accepts NULL; after the nets are destroyed */

/* For each shard (0 .. kn_gateway_shards - 1): the handler to give
 * kn_net_create (with that shard index). */
size_t kn_gateway_shards(const kn_gateway *gw);
void kn_gateway_handler(kn_gateway *gw, size_t shard, kn_net_handler *out);

/* Summed over the shards. Any thread (each counter is read atomically;
 * the sum is not one instant's). */
void kn_gateway_stats_get(kn_gateway *gw, kn_gateway_stats *out);

#endif
