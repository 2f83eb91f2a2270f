/* kn_pipeline: a request's life, from the route table to the reply. The
 * contract every route handler (`src/server/<svc>/<svc>_wire.c`) is written
 * against; it knows no service.
 *
 * A request arrives decoded on its connection's network thread. The
 * pipeline checks it against its route line (channels, authentication, the
 * failed-login lockout), runs the before hook (on an API worker), then the
 * handler — on the network thread or on an API worker, as the route says —
 * then sends the reply, applies the handler's effects, and hands request
 * and reply to the after hook (on a worker). Hooks run for every route from
 * here and nowhere else.
 *
 * A handler returns KN_OK with a reply (kn_req_reply, kn_req_ack), or an
 * error code with a message for the client (the pipeline sends the Error;
 * database failures become UNAVAILABLE "database unavailable; retry later",
 * memory failures "server busy; retry"), plus effects
 * from a small closed set: bind a session, end a user's sessions, send to a
 * user / session / connection, disconnect. The pipeline applies them on the
 * network thread in one place, after the reply; a handler that fails has
 * its effects dropped. A handler whose answer comes from elsewhere (a match
 * thread) says so with kn_req_defer; a network-thread handler with work for
 * a worker hands it on with kn_req_continue_on_worker.
 *
 * Threads: a kn_req belongs to the thread running its handler. Everything a
 * kn_req_* function returns is valid until the handler returns. */
#ifndef KN_PIPELINE_H
#define KN_PIPELINE_H

#include "kn_api.h"
#include "kn_codec.h"
#include "kn_out.h"
#include "kn_runtime.h"
#include "kn_session.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Route lines name their service by index (the route table's KN_SVC_*
 * enum); the pipeline hands the handler deps.services[index] as its
 * context (kn_req_service), and knows no service itself. */
#define KN_PIPELINE_MAX_SERVICES 32

typedef enum { KN_RUN_NET, KN_RUN_API } kn_run_on;

#define KN_CH_CONTROL (1u << KN_CHANNEL_CONTROL)
#define KN_CH_MATCH   ((1u << KN_CHANNEL_MATCH_RELIABLE) | (1u << KN_CHANNEL_MATCH_UNRELIABLE))

typedef struct kn_req kn_req;
/* A route handler: KN_OK (with a reply, deferred, or continued), or an
 * error with its message for the client written into msg. */
typedef int (*kn_route_fn)(kn_req *r, char *msg, size_t cap);

/* One line of the route table (kn_routes.h). */
typedef struct kn_route {
    int message_case;
    unsigned service; /* index into kn_pipeline_deps.services */
    bool pre_auth;    /* allowed before authentication */
    bool login;       /* a login attempt: refused while the address is locked out */
    uint8_t channels; /* bit mask of allowed channels */
    kn_run_on where;
    kn_route_fn handle;
} kn_route;

/* The caller, as the request found it (a copy when it runs on a worker). */
typedef struct kn_caller {
    kn_conn_id conn;
    const char *address;     /* "ip:port" */
    const char *address_key; /* for the lockout */
    const char *user_id;     /* "" before authentication */
    const char *username;
    const char *session_id;
    int64_t expires_at; /* the session token's, Unix seconds */
    const kn_token_var *vars;
    size_t var_count;
} kn_caller;

kn_envelope *kn_req_msg(kn_req *r); /* the request (the handler may read, not keep it) */
uint8_t kn_req_channel(const kn_req *r);
const kn_caller *kn_req_caller(const kn_req *r);
void *kn_req_service(const kn_req *r); /* the route's service context */
/* Network-thread routes: the live session of the connection (its ext
 * slots); NULL on a worker. */
kn_session *kn_req_session(kn_req *r);
/* Worker routes: the worker (its database connection, its runtime slot);
 * NULL on the network thread. */
kn_api_worker *kn_req_worker(kn_req *r);
/* Network-thread routes: whether this network thread sheds new work. */
bool kn_req_overloaded(const kn_req *r);
kn_out *kn_req_out(const kn_req *r);
kn_sessions *kn_req_sessions(const kn_req *r);

/* Replies. kn_req_reply encodes env (its cid set to the request's). */
int kn_req_reply(kn_req *r, kn_envelope *env);
int kn_req_ack(kn_req *r);
void kn_req_defer(kn_req *r);
/* Network-thread routes: the rest runs on a worker as fn (before hooks
 * already ran); the request moves with it. */
void kn_req_continue_on_worker(kn_req *r, kn_route_fn fn);

/* The failed-login lockout (counted per source address and, when given,
 * per account key): the handler counts failures; locked answers whether
 * the account is locked (KN_OK, or RESOURCE_EXHAUSTED with a message). */
void kn_req_login_failed(kn_req *r, const char *account_key);
void kn_req_login_succeeded(kn_req *r, const char *account_key);
int kn_req_login_locked(kn_req *r, const char *account_key, char *msg, size_t cap);

/* What a script called on behalf of this request sees (worker routes):
 * svc is the caller's storage, filled with the worker's services. */
kn_runtime_context kn_req_script_context(kn_req *r, const char *mode, kn_runtime_services *svc);

/* --- effects, applied on the network thread after the reply ------------- */

/* Bind the session of claims to the caller's connection (copied), unless it
 * was ended meanwhile (the reply then becomes that refusal). */
int kn_req_effect_bind(kn_req *r, const kn_token_claims *claims, bool resume);
/* kn_sessions_end; spare_caller keeps the caller's connection open. */
int kn_req_effect_end_sessions(kn_req *r, const char *user_id, const char *session_id,
                               kn_session_end why, bool spare_caller, int64_t revoke_expires);
/* env to a user (every connection of its, or of session_id's) or to one
 * connection (user_id NULL). */
int kn_req_effect_send(kn_req *r, const char *user_id, const char *session_id, kn_conn_id conn,
                       const kn_envelope *env);
int kn_req_effect_disconnect(kn_req *r, kn_conn_id conn, uint32_t reason);

/* --- the pipeline itself (one per network thread, driven by the gateway) --- */

typedef struct kn_lockout kn_lockout;
typedef struct kn_pipeline kn_pipeline;

typedef struct kn_pipeline_deps {
    kn_api *api;
    kn_runtime_host *runtime; /* hooks (NULL = none) */
    kn_out *out;
    kn_sessions *sessions;
    kn_lockout *account_lockout; /* NULL = off */
    kn_lockout *address_lockout; /* NULL = off */
    /* The largest envelope the net sends (0 = no limit): a worker's answer
     * larger than this is replaced by RESOURCE_EXHAUSTED. */
    size_t max_message_size;
    kn_runtime_services script_services; /* for scripts; .db is set per worker */
    void *services[KN_PIPELINE_MAX_SERVICES]; /* each service's context, by index */
} kn_pipeline_deps;

typedef struct kn_pipeline_stats {
    uint64_t errors, unauthenticated, api_busy;
} kn_pipeline_stats;

/* One pipeline per network thread (shard). */
int kn_pipeline_create(const kn_pipeline_deps *deps, uint16_t shard, kn_pipeline **out);
void kn_pipeline_destroy(kn_pipeline *p); /* accepts NULL */
/* The network thread of s: run env (taken) through route r. */
void kn_pipeline_run(kn_pipeline *p, kn_session *s, const kn_route *r, uint8_t channel,
                     kn_envelope *env);
/* The network thread: an Error to a connection, counted; with violation it
 * also counts against the peer (kn_net_violation). */
void kn_pipeline_send_error(kn_pipeline *p, kn_conn_id conn, uint32_t cid, int rc, const char *msg,
                            bool violation);
bool kn_pipeline_drained(const kn_pipeline *p); /* no job in flight */
void kn_pipeline_stats_get(const kn_pipeline *p, kn_pipeline_stats *out);

#endif
