/* kn_rpc: remote procedure calls into server code, from clients (the Rpc
 * route), from other servers (the HTTP listener, blocking) and from server
 * code itself (kn_rpc_call_async: queued, its result only logged — how a
 * match handler, which has no database connection, hands work to a worker).
 *
 * An RPC runs on an API worker, in the worker's Lua VM (kn_runtime_rpc),
 * except built-in ids in C: "kaos.noop" answers "" (the C ceiling of the
 * RPC path, bench/api). Unknown ids are NOT_FOUND "rpc \"id\" not found",
 * and so is every other "kaos." id asked by a client or over HTTP: those
 * are the server's own calls into scripts (kn_rpc_call_script).
 * The route's service context is the kn_rpc. */
#ifndef KN_RPC_H
#define KN_RPC_H

#include "kn_api.h"
#include "kn_pipeline.h"
#include "kn_runtime.h"

#include <stdint.h>

typedef struct kn_rpc kn_rpc;

/* script_services: what scripts get (its .db is set per worker); copied. */
int kn_rpc_create(kn_api *api, const kn_runtime_services *script_services, kn_rpc **out);
void kn_rpc_destroy(kn_rpc *rpc); /* accepts NULL; after the workers stopped */

/* The Rpc route (worker). */
int kn_rpc_wire_call(kn_req *r, char *msg, size_t cap);

/* Server-to-server RPC: runs on an API worker with an empty user in the
 * context and waits up to timeout_ms for it. Any thread but the network
 * threads and the workers. *out is kn_malloc'd. */
int kn_rpc_call_blocking(kn_rpc *rpc, const char *id, const char *payload, size_t len,
                         const char *client_address, int64_t timeout_ms, char **out,
                         size_t *out_len, char *msg, size_t msg_cap);

/* The largest payload kn_rpc_call_async copies into its queue. */
#define KN_RPC_ASYNC_MAX_PAYLOAD 65536

/* Fire-and-forget RPC: queues `id` with a copy of payload to the API
 * workers and returns at once. It runs there like a server-to-server RPC,
 * through the same path as every RPC: as the system (context.user_id "",
 * no session), with context.execution_mode "async" and the worker's
 * database connection. Its result is logged at debug level; its failure
 * (an unknown id included) is logged as a warning with the id and counted
 * (kn_rpc_stats.async_failed). Any thread; never blocks beyond a short
 * mutex, so match threads may call it.
 * Errors (msg says which): KN_ERR_INVALID_ARGUMENT for an id not 1-128
 * bytes or a payload over KN_RPC_ASYNC_MAX_PAYLOAD; KN_ERR_RESOURCE_EXHAUSTED
 * when the API queue is full; KN_ERR_UNAVAILABLE after kn_rpc_async_close
 * or once the API's intake closed (shutdown). On error nothing is queued. */
int kn_rpc_call_async(kn_rpc *rpc, const char *id, const char *payload, size_t len, char *msg,
                      size_t msg_cap);
/* From now on kn_rpc_call_async refuses with KN_ERR_UNAVAILABLE; jobs
 * already queued still run. The root calls it before kn_api_destroy, so no
 * call reaches a pool being freed. Accepts NULL. */
void kn_rpc_async_close(kn_rpc *rpc);

/* Counters of kn_rpc_call_async since create (any thread). */
typedef struct kn_rpc_stats {
    uint64_t async_queued;  /* accepted */
    uint64_t async_refused; /* refused: queue full or closed */
    uint64_t async_done;    /* ran and succeeded */
    uint64_t async_failed;  /* ran and failed (unknown id, script error, ...) */
} kn_rpc_stats;
void kn_rpc_stats_get(kn_rpc *rpc, kn_rpc_stats *out);

/* The server's own call of a script function stored under a "kaos." id
 * (KN_RUNTIME_MATCHED_ID: the matchmaker's matched hook), as
 * kn_rpc_call_blocking. NOT_FOUND when no script registered it. */
int kn_rpc_call_script(kn_rpc *rpc, const char *id, const char *payload, size_t len,
                       int64_t timeout_ms, char **out, size_t *out_len, char *msg, size_t cap);

#endif
