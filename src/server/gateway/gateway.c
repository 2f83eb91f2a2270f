/* gateway: kn_net's handler over the sessions, the route table and the
 * pipeline (kn_gateway.h).
 *
 * Threads: every function here runs on the shard's network thread, except
 * create, destroy and stats. A shard touches only its own net's
 * connections and its own pipeline. */
#include "kn_gateway.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_match.h"
#include "kn_mem.h"
#include "kn_routes.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

struct kn_gateway {
    kn_gateway_deps deps;
    kn_gateway **shards; /* the group; [0] is the gateway kn_gateway_create returned */
    size_t n;
    uint16_t shard;
    kn_pipeline *pipeline;
    /* written on the network thread, read from any (kn_gateway_stats_get) */
    atomic_uint_fast64_t requests, malformed;
};

static kn_sessions *sessions_of(kn_gateway *gw)
{
    return gw->deps.pipeline.sessions;
}

static kn_out *out_of(kn_gateway *gw)
{
    return gw->deps.pipeline.out;
}

static void *on_open(void *ud, kn_conn_id id, const char *address)
{
    kn_gateway *gw = ud;
    kn_net *net = kn_out_net(out_of(gw), gw->shard);
    kn_session *s = kn_sessions_open(sessions_of(gw), id, address, kn_net_conn_ip(net, id));
    if (!s) kn_net_close(net, id, KAOS__V1__DISCONNECT_REASON__DISCONNECT_SERVER_FULL);
    KN_DEBUG("conn %llx open from %s", (unsigned long long)id, address);
    return s;
}

static void on_close(void *ud, kn_conn_id id, void *conn_data, uint32_t reason)
{
    kn_gateway *gw = ud;
    kn_sessions_close(sessions_of(gw), conn_data);
    KN_DEBUG("conn %llx closed (reason %u)", (unsigned long long)id, reason);
}

static void on_message(void *ud, kn_conn_id id, void *conn_data, uint8_t channel,
                       const uint8_t *data, size_t len)
{
    kn_gateway *gw = ud;
    kn_session *s = conn_data;
    if (!s) return;
    atomic_fetch_add_explicit(&gw->requests, 1, memory_order_relaxed);
    kn_envelope *env;
    if (kn_envelope_decode(data, len, &env)) {
        atomic_fetch_add_explicit(&gw->malformed, 1, memory_order_relaxed);
        kn_pipeline_send_error(gw->pipeline, id, 0, KN_ERR_MALFORMED, "malformed envelope", true);
        return;
    }
    const kn_route *r = kn_routes_find((int)env->message_case);
    if (!r) {
        char msg[128];
        snprintf(msg, sizeof msg, "message type %s (%d) is not a client request",
                 kn_envelope_type_name((int)env->message_case), (int)env->message_case);
        kn_pipeline_send_error(gw->pipeline, id, env->cid, KN_ERR_UNIMPLEMENTED, msg, true);
        kn_envelope_free(env);
        return;
    }
    kn_pipeline_run(gw->pipeline, s, r, channel, env); /* takes env */
}

static void announce_shutdown(void *arg, kn_conn_id id, void *conn_data)
{
    kn_gateway *gw = arg;
    Kaos__V1__ServerShutdown sd = KAOS__V1__SERVER_SHUTDOWN__INIT;
    sd.grace_ms = (uint32_t)gw->deps.shutdown_grace_ms;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_SERVER_SHUTDOWN;
    env.server_shutdown = &sd;
    kn_out_send_env(out_of(gw), id, &env);
}

static void on_shutdown(void *ud, int64_t grace_ms)
{
    kn_gateway *gw = ud;
    /* match_terminate with the grace period; the MatchEnd events they send
     * are delivered while the network drains. Before the API's intake
     * closes: a match_terminate may still queue work for the workers
     * (kaos.rpc_call_async, e.g. a bounty paid at match end), which they
     * run before they stop. */
    if (gw->deps.matches) kn_match_engine_stop(gw->deps.matches, (int)(grace_ms / 1000));
    kn_api_close_intake(gw->deps.pipeline.api);
    kn_net_foreach(kn_out_net(out_of(gw), gw->shard), announce_shutdown, gw);
}

static void on_tick(void *ud, int64_t now_ms)
{
    kn_gateway *gw = ud;
    kn_sessions_tick(sessions_of(gw), now_ms);
}

static bool drained(void *ud)
{
    kn_gateway *gw = ud;
    return kn_pipeline_drained(gw->pipeline);
}

/* --- lifecycle ------------------------------------------------------------------------ */

static void free_group(kn_gateway **shards, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!shards[i]) continue;
        kn_pipeline_destroy(shards[i]->pipeline);
        kn_free(shards[i]);
    }
    kn_free(shards);
}

int kn_gateway_create(const kn_gateway_deps *deps, kn_gateway **out)
{
    *out = NULL;
    size_t n = deps->shards ? deps->shards : 1;
    if (n > KN_GATEWAY_MAX_SHARDS) return KN_ERR_INVALID_ARGUMENT;
    kn_gateway **shards = kn_calloc(n, sizeof *shards);
    if (!shards) return KN_ERR_NOMEM;
    int rc = KN_OK;
    for (size_t i = 0; rc == KN_OK && i < n; i++) {
        kn_gateway *gw = shards[i] = kn_calloc(1, sizeof *gw);
        if (!gw) {
            rc = KN_ERR_NOMEM;
            break;
        }
        gw->deps = *deps;
        gw->shards = shards;
        gw->n = n;
        gw->shard = (uint16_t)i;
        rc = kn_pipeline_create(&deps->pipeline, (uint16_t)i, &gw->pipeline);
    }
    if (rc) {
        free_group(shards, n);
        return rc;
    }
    *out = shards[0];
    return KN_OK;
}

void kn_gateway_destroy(kn_gateway *gw)
{
    if (gw) free_group(gw->shards, gw->n);
}

size_t kn_gateway_shards(const kn_gateway *gw)
{
    return gw->n;
}

void kn_gateway_handler(kn_gateway *gw, size_t shard, kn_net_handler *out)
{
    gw = gw->shards[shard];
    *out = (kn_net_handler){
        .on_open = on_open,
        .on_message = on_message,
        .on_close = on_close,
        .on_shutdown = on_shutdown,
        .drained = drained,
        .on_tick = on_tick,
        .ud = gw,
    };
}

void kn_gateway_stats_get(kn_gateway *gw, kn_gateway_stats *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < gw->n; i++) {
        const kn_gateway *g = gw->shards[i];
        kn_pipeline_stats ps;
        kn_pipeline_stats_get(g->pipeline, &ps);
        out->requests += atomic_load_explicit(&((kn_gateway *)g)->requests, memory_order_relaxed);
        out->malformed += atomic_load_explicit(&((kn_gateway *)g)->malformed, memory_order_relaxed);
        out->errors += ps.errors;
        out->unauthenticated += ps.unauthenticated;
        out->api_busy += ps.api_busy;
    }
}
