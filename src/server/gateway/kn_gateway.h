/* kn_gateway: sessions and request dispatch on the net thread.
 *
 * The gateway implements kn_net's handler: it decodes each packet, checks
 * the connection's session, and routes the message through ONE table keyed
 * by message type. Each route says whether it is allowed before
 * authentication, which channels may carry it, and where it runs: on the net
 * thread (ping, session resume, relayed match traffic — no blocking) or on
 * an API worker (anything touching Postgres). Worker results come back as
 * completions posted to the net thread; a completion for a connection that
 * has gone is dropped by the generation-checked id.
 *
 * SessionResume runs on a worker: the token must verify, its session must
 * still be live in Postgres (kn_account_session_valid: not logged out,
 * refreshed, banned or deleted) and not be in the gateway's revocation set.
 *
 * Failed logins (unknown device with create=false, bad or expired tokens)
 * count against the account and the source address; a locked key gets
 * RESOURCE_EXHAUSTED ("too many failed logins ...") until the lock expires.
 *
 * Errors reach the client as an Error envelope with the request's cid. A
 * malformed, unknown, misplaced or premature message also counts as a
 * violation (kn_net_violation), so a peer that keeps sending garbage is
 * disconnected while everyone else keeps being served.
 *
 * Shards. With several network threads (one kn_net each, sharing the UDP
 * port), the gateway is a group of shards, one per net: each shard owns the
 * sessions of its net's connections and runs on that net's thread. The
 * revocation set and the record of ended users are shared, under a lock.
 * What spans shards goes by posts: ending sessions is posted to every shard
 * (each walks its own connections); a match thread's batch is posted to
 * each shard with a connection in it; relayed matches live in one relay used
 * under a lock, whose sends to another shard's connections are posted to
 * that shard's net. */
#ifndef KN_GATEWAY_H
#define KN_GATEWAY_H

#include "kn_net.h"
#include "kn_runtime.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct kn_api kn_api;
typedef struct kn_auth kn_auth;
typedef struct kn_relay_config kn_relay_config;
typedef struct kn_lockout kn_lockout;
typedef struct kn_gateway kn_gateway;
typedef struct kn_runtime_host kn_runtime_host;

typedef struct kn_gateway_deps {
    kn_api *api;                  /* workers for database-backed requests */
    const kn_auth *auth;          /* token issue and checks */
    const kn_relay_config *relay; /* relayed match limits */
    int64_t shutdown_grace_ms;    /* announced to clients */
    kn_lockout *account_lockout;  /* failed logins per account (NULL = off) */
    kn_lockout *address_lockout;  /* failed logins per source address (NULL = off) */
    kn_runtime_host *runtime;     /* before/after hooks (NULL = none) */
    /* The largest envelope the net sends (its max_message_size; 0 = no
     * limit): a worker's answer larger than this is replaced by an Error
     * (RESOURCE_EXHAUSTED), since ENet would refuse to send it and the
     * connection could not go on. */
    size_t max_message_size;
    size_t shards;                /* network threads (0 = 1), at most KN_GATEWAY_MAX_SHARDS */
} kn_gateway_deps;

#define KN_GATEWAY_MAX_SHARDS 64

typedef struct kn_gateway_stats {
    uint64_t requests, errors, malformed, unauthenticated, api_busy;
    uint64_t sessions_current, matches_current;
} kn_gateway_stats;

int kn_gateway_create(const kn_gateway_deps *deps, kn_gateway **out);
void kn_gateway_destroy(kn_gateway *gw); /* accepts NULL; after the net is destroyed */

/* For each shard (0 .. kn_gateway_shards - 1): the handler to give
 * kn_net_create (with that shard index); then attach the net it created. */
size_t kn_gateway_shards(const kn_gateway *gw);
void kn_gateway_handler(kn_gateway *gw, size_t shard, kn_net_handler *out);
void kn_gateway_attach(kn_gateway *gw, size_t shard, kn_net *net);

/* Authoritative matches: the engine routes joins, input and leaves through
 * it; kn_gateway_match_out is the engine's out sink (ud = the gateway),
 * which hands each batch to the net thread. Attach before serving. */
typedef struct kn_match_engine kn_match_engine;
typedef struct kn_match_batch kn_match_batch;
void kn_gateway_attach_matches(kn_gateway *gw, kn_match_engine *matches);
void kn_gateway_match_out(void *ud, kn_match_batch *b);

/* Whether message_case is a client request in the route table (so hooks may
 * be registered for it). Any thread. */
bool kn_gateway_is_client_op(int message_case);

/* Summed over the shards: exact on a single network thread (call it there),
 * approximate from elsewhere while several serve. */
void kn_gateway_stats_get(kn_gateway *gw, kn_gateway_stats *out);
/* Match creations and joins refused because a network thread was
 * overloaded, over all shards. Any thread. */
uint64_t kn_gateway_shed_joins(const kn_gateway *gw);

/* Ends the sessions of user_id that are bound to live connections (only
 * session_id's when it is not NULL): each is put in the revocation set, so
 * its token can no longer be resumed, and its connection is unbound (LOGOUT:
 * it stays open, unauthenticated) or closed with DISCONNECT_BANNED (BAN,
 * DELETE). BAN and DELETE also refuse a login or resume of the user that was
 * queued before and completes after. Any thread, after kn_gateway_attach: it
 * queues the work for the net thread and returns (KN_ERR_NOMEM,
 * KN_ERR_INVALID_ARGUMENT for ids longer than a UUID). Sessions not bound to
 * a connection are the database's business (the service ends them there). */
int kn_gateway_end_sessions(kn_gateway *gw, const char *user_id, const char *session_id,
                            kn_session_end why);

/* Server-to-server RPC (the HTTP listener): runs the RPC on an API worker
 * with an empty user in the context and waits up to timeout_ms for it. Any
 * thread but the net thread and the workers. *out is kn_malloc'd. */
int kn_gateway_rpc_blocking(kn_gateway *gw, const char *id, const char *payload, size_t len,
                            const char *client_address, int64_t timeout_ms, char **out,
                            size_t *out_len, char *msg, size_t msg_cap);

#endif
