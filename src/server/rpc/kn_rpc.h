/* kn_rpc: remote procedure calls into server code, from clients (the Rpc
 * route) and from other servers (the HTTP listener, blocking).
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

/* The server's own call of a script function stored under a "kaos." id
 * (KN_RUNTIME_MATCHED_ID: the matchmaker's matched hook), as
 * kn_rpc_call_blocking. NOT_FOUND when no script registered it. */
int kn_rpc_call_script(kn_rpc *rpc, const char *id, const char *payload, size_t len,
                       int64_t timeout_ms, char **out, size_t *out_len, char *msg, size_t cap);

#endif
