/* server: composition root. Start order: keys -> session store -> auth ->
 * database check -> runtime -> API workers -> out, sessions, RPC, match
 * service -> match engine -> gateway (pipelines) -> nets. Stop order is the
 * reverse, with the nets drained first so no completion is lost.
 *
 * The services' kaos.* functions reach the runtime here, as bindings
 * (kn_lua_bind.h): the runtime names no service. Their uds point at state
 * of this function that is filled as the services come up, since the
 * session registry and the match engine are created after the runtime. */
#include "kn_server.h"
#include "kn_account_lua.h"
#include "kn_api.h"
#include "kn_auth.h"
#include "kn_chat.h"
#include "kn_chat_lua.h"
#include "kn_cluster.h"
#include "kn_codec.h"
#include "kn_crypto.h"
#include "kn_json.h"
#include "kn_console.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_gateway.h"
#include "kn_match_wire.h"
#include "kn_mem.h"
#include "kn_out.h"
#include "kn_routes.h"
#include "kn_rpc.h"
#include "kn_rpc_lua.h"
#include "kn_session.h"
#include "kn_http.h"
#include "kn_keys.h"
#include "kn_limits.h"
#include "kn_log.h"
#include "kn_net.h"
#include "kn_relay.h"
#include "kn_party.h"
#include "kn_matchmaker_lua.h"
#include "kn_party_lua.h"
#include "kn_party_wire.h"
#include "kn_status.h"
#include "kn_status_lua.h"
#include "kn_stream.h"
#include "kn_stream_lua.h"
#include "kn_runtime.h"
#include "kn_time.h"
#include "kn_match.h"
#include "kn_match_lua.h"
#include "kn_matchmaker_wire.h"
#include "kn_storage_lua.h"
#include "kn_economy_lua.h"
#include "kn_friends.h"
#include "kn_friends_lua.h"
#include "kn_notify.h"
#include "kn_groups.h"
#include "kn_groups_lua.h"
#include "kn_leaderboard_lua.h"
#include "kn_notify_lua.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/inotify.h>
#include <unistd.h>

#define MAX_NETS KN_GATEWAY_MAX_SHARDS

/* The nets serving now, for the signal handler. */
static kn_net *volatile running_nets[MAX_NETS];
static volatile sig_atomic_t n_running;

/* HTTP handlers: thin adapters onto the RPC service and the counters. */
typedef struct http_ctx {
    kn_rpc *rpc;
    kn_match_wire *mw;
    kn_gateway *gw;
    kn_sessions *sessions;
    kn_net **nets;
    size_t n_nets;
    kn_api *api;
    kn_match_engine *matches;
    kn_tracker *tracker;
    const char *database_url;
    kn_leaderboards *lbs;
    kn_matchmaker *mm;
    _Atomic(kn_cluster *) cluster; /* NULL on one node */
} http_ctx;

/* --- the cluster (docs/cluster.md): the bus behind kn_out's remote hook
 * and the session registry's; what arrives is done on this node only ------ */

typedef struct cluster_glue {
    kn_cluster_nats *nats;
    _Atomic(kn_cluster *) cluster; /* NULL until joined: the hooks do nothing */
    kn_out *out;
    kn_sessions *sessions;
    kn_tracker *tracker;
    kn_leaderboards *lbs;
    pthread_mutex_t api_mu; /* guards api: the re-check's queue, gone before the workers */
    kn_api *api;
} cluster_glue;

static kn_cluster *glue_cluster(void *ud)
{
    return atomic_load(&((cluster_glue *)ud)->cluster);
}

static int remote_send_user(void *ud, const char *user_id, const char *session_id, uint8_t channel,
                            const uint8_t *data, size_t len, bool reliable)
{
    kn_cluster *c = glue_cluster(ud);
    return !c ? KN_ERR_UNAVAILABLE
              : kn_cluster_send_user(c, user_id, session_id, channel, data, len, reliable);
}

static int remote_send_all(void *ud, uint8_t channel, const uint8_t *data, size_t len,
                           bool reliable)
{
    kn_cluster *c = glue_cluster(ud);
    return !c ? KN_ERR_UNAVAILABLE : kn_cluster_send_all(c, channel, data, len, reliable);
}

static void remote_ended(void *ud, const char *user_id, const char *session_id, kn_session_end why,
                         int64_t revoke_expires)
{
    kn_cluster *c = glue_cluster(ud);
    if (c) kn_cluster_sessions_ended(c, user_id, session_id, (int)why, revoke_expires);
}

static void remote_bound(void *ud, const char *user_id, const char *session_id, int64_t bound_ms)
{
    kn_cluster *c = glue_cluster(ud);
    if (c) kn_cluster_session_bound(c, user_id, session_id, bound_ms);
}

static void remote_present(void *ud, const char *user_id)
{
    kn_cluster *c = glue_cluster(ud);
    if (c) kn_cluster_user_changed(c, user_id);
}

static void bus_deliver_user(void *ud, const char *user_id, const char *session_id, uint8_t channel,
                             const uint8_t *data, size_t len, bool reliable)
{
    kn_out_send_user_here(((cluster_glue *)ud)->out, user_id, session_id, channel, data, len,
                          reliable);
}

static void bus_deliver_all(void *ud, uint8_t channel, const uint8_t *data, size_t len,
                            bool reliable)
{
    kn_out_send_all_here(((cluster_glue *)ud)->out, channel, data, len, reliable);
}

static void bus_end_sessions(void *ud, const char *user_id, const char *session_id, int why,
                             int64_t revoke_expires)
{
    if (why < KN_SESSION_END_LOGOUT || why > KN_SESSION_END_REPLACED) return;
    int rc = kn_sessions_end_here(((cluster_glue *)ud)->sessions, user_id, session_id,
                                  (kn_session_end)why, revoke_expires);
    if (rc)
        KN_WARN("cluster: could not end the sessions of %.36s here: %s", user_id, kn_err_text(rc));
}

static void bus_replace_sessions(void *ud, const char *user_id, const char *session_id,
                                 int64_t bound_ms, bool wins_tie)
{
    kn_sessions_replace_here(((cluster_glue *)ud)->sessions, user_id, session_id, bound_ms,
                             wins_tie);
}

/* The bus is back: a ban or a deletion on another node may never have
 * reached this node (its node died with the message buffered), so every
 * session bound here is checked against Postgres on a worker; banned and
 * deleted users' sessions end as if the message had come. Only those: a
 * session whose row is gone for another reason (a refresh elsewhere) is
 * left as one node leaves it. */
typedef struct recheck_job {
    cluster_glue *g;
    size_t n;
    kn_session_ref refs[];
} recheck_job;

static void run_recheck(kn_api_worker *w, void *arg)
{
    recheck_job *j = arg;
    size_t ended = 0;
    for (size_t i = 0; i < j->n; i++) {
        char msg[128] = "";
        int rc = kn_session_live(w->db, j->refs[i].session_id, j->refs[i].user_id, msg, sizeof msg);
        bool banned = rc == KN_ERR_PERMISSION_DENIED;
        bool deleted = rc == KN_ERR_UNAUTHENTICATED && !strcmp(msg, "user no longer exists");
        if (rc && !banned && !deleted && rc != KN_ERR_UNAUTHENTICATED) {
            KN_WARN("cluster: re-check of this node's sessions stopped at %zu of %zu: %s", i, j->n,
                    msg);
            break;
        }
        if (!banned && !deleted) continue;
        kn_sessions_end_here(j->g->sessions, j->refs[i].user_id, NULL,
                             banned ? KN_SESSION_END_BAN : KN_SESSION_END_DELETE, 0);
        ended++;
    }
    KN_INFO("cluster: bus back; %zu session(s) here re-checked against Postgres, %zu ended (banned "
            "or deleted meanwhile)",
            j->n, ended);
    /* Leaderboard entries other nodes published meanwhile may be lost the
     * same way: the indexes are rebuilt from the committed rows, each board
     * under its exclusive lock (peers' entries wait, then apply by version). */
    size_t records = 0;
    char msg[256] = "";
    if (j->g->lbs && kn_leaderboards_load(j->g->lbs, w->db, &records, msg, sizeof msg))
        KN_WARN("cluster: bus back but the leaderboards could not be rebuilt: %s", msg);
    else if (j->g->lbs)
        KN_INFO("cluster: bus back; leaderboards rebuilt from Postgres (%zu records)", records);
    kn_free(j);
}

static void bus_back(void *ud)
{
    cluster_glue *g = ud;
    kn_sessions_stats st;
    kn_sessions_stats_get(g->sessions, &st);
    size_t cap = (size_t)st.bound + 64; /* room for binds meanwhile */
    recheck_job *j = kn_malloc(sizeof *j + cap * sizeof(kn_session_ref));
    if (!j) {
        KN_WARN("cluster: bus back but no memory to re-check this node's sessions");
        return;
    }
    j->g = g;
    j->n = kn_sessions_list(g->sessions, j->refs, cap);
    if (j->n > cap) j->n = cap; /* the rest bound after the bus came back: Postgres checked them */
    pthread_mutex_lock(&g->api_mu);
    int rc = g->api ? kn_api_submit(g->api, run_recheck, j) : KN_ERR_UNAVAILABLE;
    pthread_mutex_unlock(&g->api_mu);
    if (rc) {
        KN_WARN("cluster: bus back but the re-check of this node's sessions could not be queued: "
                "%s",
                kn_err_text(rc));
        kn_free(j);
    }
}

/* Shared streams: the tracker's changes go out, other nodes' come in as
 * mirrors. Statuses and chat are cluster-wide; matches and parties stay on
 * their node (docs/cluster.md, "Streams"). */
#define SHARED_STREAM_MODES                                                                        \
    ((1u << KN_STREAM_STATUS) | (1u << KN_STREAM_CHANNEL) | (1u << KN_STREAM_GROUP) |              \
     (1u << KN_STREAM_DM))

static void tracker_interest(void *ud, const kn_stream *s, bool on, const kn_presence *members,
                             size_t n)
{
    kn_cluster *c = glue_cluster(ud);
    if (c) kn_cluster_stream_interest(c, s, on, members, n);
}

static void tracker_changed(void *ud, const kn_stream *s, const kn_presence *join,
                            const kn_presence *leave)
{
    kn_cluster *c = glue_cluster(ud);
    if (c) kn_cluster_stream_changed(c, s, join, leave);
}

static void tracker_sent(void *ud, const kn_stream *s, uint8_t channel, const uint8_t *data,
                         size_t len, bool reliable)
{
    kn_cluster *c = glue_cluster(ud);
    if (c) kn_cluster_stream_send(c, s, channel, data, len, reliable);
}

static void bus_stream_changed(void *ud, uint16_t node, const kn_stream *s, const kn_presence *join,
                               bool has_leave, kn_conn_id leave)
{
    cluster_glue *g = ud;
    if (has_leave) kn_tracker_mirror_leave(g->tracker, s, node, leave);
    if (join) kn_tracker_mirror_join(g->tracker, s, join);
}

/* Under the tracker's lock: this node's set on s, for the peer that asked
 * (or for every peer, when a peer comes back). */
static void tell_state(void *ud, const kn_stream *s, const kn_presence *members, size_t n)
{
    kn_cluster *c = glue_cluster(((void **)ud)[0]);
    if (c) kn_cluster_stream_state(c, s, members, n, ((void **)ud)[1] != NULL);
}

static void bus_stream_state(void *ud, uint16_t node, const kn_stream *s, const kn_presence *ps,
                             size_t n, bool ask)
{
    cluster_glue *g = ud;
    kn_tracker_mirror_replace(g->tracker, s, node, ps, n);
    void *args[2] = {g, NULL}; /* an answer: no ask */
    if (ask) kn_tracker_each_shared(g->tracker, s, tell_state, args);
}

static void bus_stream_data(void *ud, const kn_stream *s, uint8_t channel, const uint8_t *data,
                            size_t len, bool reliable)
{
    kn_tracker_mirror_send(((cluster_glue *)ud)->tracker, s, channel, data, len, reliable);
}

/* A peer died or left: its presences leave every stream here. A peer back
 * after that: both sides lost what they mirrored of each other, so this
 * node tells its sets again, asking for theirs. */
static void bus_peer_changed(void *ud, const char *name, bool up, bool back)
{
    cluster_glue *g = ud;
    kn_cluster *c = glue_cluster(g);
    if (!c) return;
    if (!up) {
        size_t n = kn_tracker_mirror_drop_node(g->tracker, kn_cluster_node_slot(c, name));
        if (n) KN_INFO("cluster: %zu presence(s) of %s left with it", n, name);
    } else if (back) {
        void *args[2] = {g, g}; /* ask */
        kn_tracker_each_shared(g->tracker, NULL, tell_state, args);
    }
}

/* Leaderboards: every node's index follows every node's committed writes
 * (entries carry the row's version; the highest wins). */
static void lb_applied(void *ud, const char *board_id, int64_t expiry, const kn_rank_entry *e)
{
    kn_cluster *c = glue_cluster(ud);
    if (c)
        kn_cluster_leaderboard(c, board_id, expiry, e->owner, e->score, e->subscore, e->time_us,
                               e->version, false);
}

static void lb_removed(void *ud, const char *board_id, int64_t expiry, const char *owner)
{
    kn_cluster *c = glue_cluster(ud);
    if (c) kn_cluster_leaderboard(c, board_id, expiry, owner, 0, 0, 0, 0, true);
}

static void bus_leaderboard(void *ud, const char *board, int64_t expiry, const char *owner,
                            int64_t score, int64_t subscore, int64_t time_us, int64_t version,
                            bool removed)
{
    kn_rank_entry e = {score, subscore, time_us, version, ""};
    snprintf(e.owner, sizeof e.owner, "%s", owner);
    kn_leaderboards_apply_peer(((cluster_glue *)ud)->lbs, board, expiry, &e,
                               removed ? e.owner : NULL);
}

/* Where a match of another node is: that peer's advertised address. */
static bool match_where(void *ud, const char *node, char *address, size_t cap, bool *up)
{
    kn_cluster *c = glue_cluster(ud);
    kn_cluster_peer p;
    if (!c || !kn_cluster_peer_get(c, node, &p)) return false;
    snprintf(address, cap, "%s", p.address);
    *up = p.up;
    return true;
}

static size_t bus_user_conns(void *ud, const char *user_id)
{
    return kn_sessions_conns(((cluster_glue *)ud)->sessions, user_id, NULL, NULL, 0);
}

/* The UDP address this node is reached at: configured, or bind:port (the
 * host name when bound to every address). */
static void advertised_address(const kn_config *cfg, uint16_t port, char *out, size_t cap)
{
    if (*cfg->cluster_advertise) {
        snprintf(out, cap, "%s", cfg->cluster_advertise);
        return;
    }
    char host[256] = "";
    if (strcmp(cfg->bind, "0.0.0.0") || gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "%s", cfg->bind);
    snprintf(out, cap, "%s:%u", host, port);
}

/* Joins the cluster named by cluster_nats (nothing when it is empty). */
static int cluster_start(const kn_config *cfg, cluster_glue *g, uint16_t udp_port,
                         uint16_t http_port)
{
    if (!*cfg->cluster_nats) return KN_OK;
    kn_cluster_bus bus;
    char label[96];
    snprintf(label, sizeof label, "kaosnet %s", cfg->node);
    int rc = kn_cluster_nats_open(cfg->cluster_nats, label, &g->nats, &bus);
    if (rc) return rc;
    char address[320];
    advertised_address(cfg, udp_port, address, sizeof address);
    kn_cluster_config cc = {.node = cfg->node,
                            .address = address,
                            .http_port = http_port,
                            .heartbeat_ms = cfg->cluster_heartbeat_ms,
                            .dead_ms = cfg->cluster_dead_ms,
                            .single_session = cfg->single_session};
    kn_cluster_local local = {.deliver_user = bus_deliver_user,
                              .deliver_all = bus_deliver_all,
                              .end_sessions = bus_end_sessions,
                              .replace_sessions = bus_replace_sessions,
                              .user_conns = bus_user_conns,
                              .bus_back = bus_back,
                              .peer_changed = bus_peer_changed,
                              .stream_changed = bus_stream_changed,
                              .stream_state = bus_stream_state,
                              .stream_data = bus_stream_data,
                              .leaderboard = bus_leaderboard,
                              .ud = g};
    kn_cluster *c;
    if ((rc = kn_cluster_create(&cc, &bus, &local, &c))) return rc;
    atomic_store(&g->cluster, c);
    kn_cluster_nats_attach(g->nats, c);
    if ((rc = kn_cluster_start(c))) return rc;
    KN_INFO("cluster: node %s (udp %s) on bus %s, heartbeat %lld ms, dead after %lld ms", cfg->node,
            address, cfg->cluster_nats, (long long)cfg->cluster_heartbeat_ms,
            (long long)cfg->cluster_dead_ms);
    return KN_OK;
}

/* The hooks, before anything serves (they do nothing until the node joins). */
static void cluster_hooks(const kn_config *cfg, cluster_glue *g)
{
    if (!*cfg->cluster_nats) return; /* one node: exactly as without a cluster */
    kn_out_set_remote(g->out, &(kn_out_remote){remote_send_user, remote_send_all, g});
    kn_sessions_set_remote(g->sessions,
                           &(kn_sessions_remote){remote_ended, remote_bound, remote_present, g});
    kn_tracker_set_remote(g->tracker,
                          &(kn_tracker_remote){tracker_interest, tracker_changed, tracker_sent, g},
                          SHARED_STREAM_MODES);
}

/* After every caller of the hooks (workers, matches, nets) has stopped. */
static void cluster_stop(cluster_glue *g)
{
    kn_cluster *c = atomic_exchange(&g->cluster, NULL);
    kn_cluster_nats_attach(g->nats, NULL);
    kn_cluster_destroy(c); /* tells the peers it leaves */
    kn_cluster_nats_close(g->nats);
    g->nats = NULL;
}

/* The tracker's sink and its end of every session: the router's stream
 * part sends through the one way out; an unbound session leaves its streams. */
static int tracker_send(void *ud, const kn_conn_id *conns, size_t n, uint8_t channel,
                        const uint8_t *data, size_t len, bool reliable)
{
    return kn_out_send(ud, conns, n, channel, data, len, reliable);
}

/* Who hears of a committed block (friends -> status and chat through the
 * root: none includes another): the blocked user's follows of the blocker
 * end, and both users leave the direct message channel between them. */
typedef struct block_listeners {
    kn_status *status;
    kn_chat *chat;
} block_listeners;

static void friends_blocked(void *ud, const char *blocker_id, const char *blocked_id)
{
    block_listeners *b = ud;
    kn_status_block(b->status, blocker_id, blocked_id);
    kn_chat_block(b->chat, blocker_id, blocked_id);
}

/* The end of a session on the tracker: its parties and join requests go
 * first (the party service keeps its members and the party's stream the
 * same), then every stream it is still on. One listener for both: the
 * listeners are few (KN_SESSION_EXT_MAX). */
typedef struct stream_services {
    kn_tracker *tracker;
    kn_parties *parties;
} stream_services;

static void tracker_unbound(void *ud, kn_session *s)
{
    stream_services *ss = ud;
    kn_parties_leave_conn(ss->parties, s->conn);
    kn_tracker_untrack_all(ss->tracker, s->conn);
}

/* Chat's end of every session: its message rate bucket goes. */
static void chat_unbound(void *ud, kn_session *s)
{
    kn_chat_forget(ud, s->conn);
}

/* Chat's view of groups (kn_chat_groups): members are superadmins, admins
 * and members; a worker's thread, its connection. */
static int group_membership(void *ud, kn_db *db, const char *group_id, const char *user_id,
                            bool *member, bool *admin)
{
    (void)ud;
    int state;
    char msg[128];
    int rc = kn_groups_state(db, group_id, user_id, &state, msg, sizeof msg);
    *member = rc == KN_OK && state >= KN_GROUP_SUPERADMIN && state <= KN_GROUP_MEMBER;
    *admin = *member && state <= KN_GROUP_ADMIN;
    return rc;
}

/* Groups' membership changes become system messages in the group's channel
 * (kn_groups_listener, ud the kn_chat). A failure is logged: the change
 * stands. */
static void group_changed(void *ud, kn_db *db, const char *group_id, const char *actor_id,
                          int change, const char *user_id)
{
    char msg[256] = "";
    int rc = kn_chat_group_event(ud, db, group_id, actor_id, change, user_id, msg, sizeof msg);
    if (rc)
        KN_WARN("chat: no message in group %.36s for change %d of user %.36s: %s", group_id, change,
                user_id, msg);
}

/* A session's tickets die with it. */
static void matchmaker_unbound(void *ud, kn_session *s)
{
    if (*s->session_id) kn_mm_remove_session(ud, s->session_id);
}

/* A group the matchmaker formed: the matched hook may create an
 * authoritative match (its id), else a token names a fresh relayed match;
 * then every player hears. On the matchmaker's thread. */
typedef struct matched_ctx {
    kn_out *out;
    kn_match_wire *mw;
    kn_rpc *rpc;
    kn_runtime_host *host;
} matched_ctx;

/* The runtime id of a matchmaker script (NULL for none). */
static const char *script_id(const char *which)
{
    return !strcmp(which, KN_MM_SCRIPT_PROCESSOR)  ? KN_RUNTIME_PROCESSOR_ID
           : !strcmp(which, KN_MM_SCRIPT_OVERRIDE) ? KN_RUNTIME_OVERRIDE_ID
                                                   : NULL;
}

static bool matchmaker_script_exists(void *ud, const char *which)
{
    const char *id = script_id(which);
    return id && kn_runtime_host_has_script(((matched_ctx *)ud)->host, id);
}

/* The matchmaker's processor and override scripts, on an API worker. */
static int matchmaker_script(void *ud, const char *which, const char *json, size_t len, char **out,
                             size_t *out_len, char *msg, size_t cap)
{
    const char *id = script_id(which);
    if (!id) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "no script hook %s", which);
    return kn_rpc_call_script(((matched_ctx *)ud)->rpc, id, json, len, 10000, out, out_len, msg,
                              cap);
}

static void matchmaker_matched(void *ud, kn_mm_ticket *const *tickets, size_t n)
{
    matched_ctx *m = ud;
    char match_id[KN_MATCH_ID_MAX] = "", token[KN_RELAY_TOKEN_MAX] = "";
    if (m->rpc && kn_runtime_host_has_script(m->host, KN_RUNTIME_MATCHED_ID)) {
        char *json = kn_mm_matched_json(tickets, n), *res = NULL, msg[256] = "";
        size_t res_len = 0;
        int rc = json ? kn_rpc_call_script(m->rpc, KN_RUNTIME_MATCHED_ID, json, strlen(json), 10000,
                                           &res, &res_len, msg, sizeof msg)
                      : KN_ERR_NOMEM;
        if (rc && rc != KN_ERR_NOT_FOUND) /* NOT_FOUND: no script registered one */
            KN_WARN("matchmaker_matched failed (%s): the group gets a relayed match", msg);
        else if (res_len && res_len < sizeof match_id)
            memcpy(match_id, res, res_len + 1);
        kn_free(json);
        kn_free(res);
    }
    if (!*match_id) kn_relay_token_mint(kn_match_wire_relay(m->mw), token);
    int rc = kn_matchmaker_wire_matched(m->out, tickets, n, *match_id ? match_id : NULL,
                                        *token ? token : NULL);
    if (rc) KN_WARN("matchmaker: a matched group was not told: %s", kn_err_text(rc));
}

/* The counters of every network thread, summed. */
static void net_stats_sum(kn_net **nets, size_t n, kn_net_stats *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        kn_net_stats s;
        kn_net_stats_get(nets[i], &s);
        uint64_t *dst = (uint64_t *)out;
        const uint64_t *src = (const uint64_t *)&s;
        for (size_t k = 0; k < sizeof s / sizeof(uint64_t); k++)
            dst[k] += src[k];
    }
}

/* kn_account_lua.end_sessions: scripts end sessions through the session
 * owner. Any thread. */
static void end_sessions(void *ud, const char *user_id, const char *session_id, kn_session_end why)
{
    int rc = kn_sessions_end(ud, user_id, session_id, why, 0, 0);
    if (rc) KN_WARN("could not end the sessions of user %.36s: %s", user_id, kn_err_text(rc));
}

/* Single session's forget hook: a replaced session's user_session row goes
 * (its refresh token dies), on an API worker; the net thread must not
 * block. Best effort: its token is revoked on this node meanwhile. */
typedef struct forget_job {
    char user_id[37], session_id[37];
} forget_job;

static void run_forget(kn_api_worker *w, void *arg)
{
    forget_job *j = arg;
    int rc = kn_session_logout(w->db, j->session_id, j->user_id);
    if (rc)
        KN_WARN("single session: the replaced session of %s kept its refresh token: %s", j->user_id,
                kn_err_text(rc));
    kn_free(j);
}

static void forget_session(void *ud, const char *user_id, const char *session_id)
{
    forget_job *j = kn_malloc(sizeof *j);
    if (j) {
        snprintf(j->user_id, sizeof j->user_id, "%s", user_id);
        snprintf(j->session_id, sizeof j->session_id, "%s", session_id);
    }
    if (!j || kn_api_submit(ud, run_forget, j)) {
        KN_WARN("single session: could not queue the end of a replaced session of %.36s", user_id);
        kn_free(j);
    }
}

static int http_rpc(void *ud, const char *id, const char *payload, size_t len, char **out,
                    size_t *out_len, char *msg, size_t cap)
{
    http_ctx *h = ud;
    return kn_rpc_call_blocking(h->rpc, id, payload, len, "http", 10000, out, out_len, msg, cap);
}

/* One gauge per network thread, labelled thread="i": the kn_net_stats
 * field at `field`. Returns the new length of buf. */
static size_t per_thread_gauge(const http_ctx *h, char *buf, size_t n, size_t cap, const char *name,
                               const char *help, size_t field)
{
    if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n, "# HELP kaos_%s %s\n# TYPE kaos_%s gauge\n", name,
                              help, name);
    for (size_t i = 0; i < h->n_nets && n < cap; i++) {
        kn_net_stats t;
        kn_net_stats_get(h->nets[i], &t);
        uint64_t v;
        memcpy(&v, (const char *)&t + field, sizeof v);
        n += (size_t)snprintf(buf + n, cap - n, "kaos_%s{thread=\"%zu\"} %llu\n", name, i,
                              (unsigned long long)v);
    }
    return n;
}

/* /healthz: degraded while Postgres is out of reach. The API workers find
 * out on their next query; without traffic a probe here sees it come back. */
static const char *http_health(void *ud)
{
    http_ctx *h = ud;
    if (!kn_db_reachable() && !kn_db_ping(h->database_url)) return "database unavailable";
    kn_cluster *c = atomic_load(&h->cluster);
    if (c) {
        kn_cluster_stats cs;
        kn_cluster_stats_get(c, &cs);
        if (!cs.bus_connected) return "cluster bus unavailable (serving this node's players alone)";
    }
    return NULL;
}

static size_t http_nodes(void *ud, char *buf, size_t cap)
{
    kn_cluster *c = atomic_load(&((http_ctx *)ud)->cluster);
    if (c) return kn_cluster_nodes_json(c, buf, cap);
    return (size_t)snprintf(buf, cap, "{\"nodes\":[]}"); /* only while joining */
}

static size_t http_health_detail(void *ud, char *buf, size_t n, size_t cap)
{
    http_ctx *h = ud;
    kn_cluster *c = atomic_load(&h->cluster);
    return c ? kn_cluster_health(c, kn_time_mono_ms(), buf, n, cap) : n;
}

static void http_metrics(void *ud, char *buf, size_t cap)
{
    http_ctx *h = ud;
    kn_net_stats s;
    net_stats_sum(h->nets, h->n_nets, &s);
    size_t n = 0;
#define METRIC(name, help, value)                                                                  \
    if (n < cap)                                                                                   \
    n += (size_t)snprintf(                                                                         \
        buf + n, cap - n,                                                                          \
        "# HELP kaos_" name " " help "\n# TYPE kaos_" name " %s\nkaos_" name " %llu\n",            \
        strstr(name, "_total") ? "counter" : "gauge", (unsigned long long)(value))
    METRIC("connections_current", "open connections", s.connections_current);
    METRIC("connections_total", "connections opened", s.connections_total);
    METRIC("packets_in_total", "packets received", s.packets_in);
    METRIC("packets_out_total", "packets sent", s.packets_out);
    METRIC("bytes_in_total", "bytes received", s.bytes_in);
    METRIC("bytes_out_total", "bytes sent", s.bytes_out);
    METRIC("datagrams_sent_total", "UDP datagrams sent through sendmmsg (0: batching off)",
           s.datagrams_sent);
    METRIC("send_syscalls_total", "sendmmsg calls that carried them", s.send_calls);
    METRIC("datagrams_received_total", "UDP datagrams read through recvmmsg (0: batching off)",
           s.datagrams_received);
    METRIC("recv_syscalls_total", "recvmmsg calls that read them", s.recv_calls);
    METRIC("send_backlogged_total",
           "sealed packets that waited in a connection's backlog for room in ENet (64 each)",
           s.backlogged);
    METRIC("handshakes_ok_total", "completed handshakes", s.handshakes_ok);
    METRIC("handshakes_failed_total", "failed handshakes", s.handshakes_failed);
    METRIC("connects_bad_cookie_total", "CONNECTs dropped for a bad cookie", s.connects_bad_cookie);
    METRIC("packets_rejected_total", "sealed packets that failed to open (dropped, not violations)",
           s.packets_rejected);
    METRIC("packets_replayed_total", "sealed packets dropped as replays or stale counters",
           s.packets_replayed);
    METRIC("rate_limited_total", "packets dropped by rate limits", s.rate_limited);
    METRIC("violations_total", "protocol violations", s.violations);
    METRIC("timeouts_auth_total", "connections dropped for not authenticating", s.timeouts_auth);
    METRIC("timeouts_idle_total", "connections dropped for silence", s.timeouts_idle);
    METRIC("unreliable_dropped_total", "unreliable packets dropped by the send queue policy",
           s.unreliable_dropped);
    METRIC("api_pending", "API jobs queued or running", kn_api_pending(h->api));
    METRIC("net_rounds_total", "network loop rounds", s.rounds);
    METRIC("net_threads", "network threads (ENet hosts sharing the UDP port)", h->n_nets);
    METRIC("net_overloaded_seconds_total",
           "seconds a network thread spent overloaded (new connections and joins shed)",
           s.overloaded_seconds);
    METRIC("net_shed_joins_total", "match creations and joins refused: network thread overloaded",
           kn_match_wire_shed_joins(h->mw));
    kn_gateway_stats gs;
    kn_gateway_stats_get(h->gw, &gs);
    METRIC("requests_total", "client messages received", gs.requests);
    METRIC("request_errors_total", "Error answers sent", gs.errors);
    METRIC("requests_malformed_total", "messages that did not decode", gs.malformed);
    METRIC("requests_unauthenticated_total", "requests refused before authentication",
           gs.unauthenticated);
    METRIC("api_busy_total", "requests refused: the API queue was full", gs.api_busy);
    kn_rpc_stats rs;
    kn_rpc_stats_get(h->rpc, &rs);
    METRIC("rpc_async_queued_total", "RPCs queued by kaos.rpc_call_async", rs.async_queued);
    METRIC("rpc_async_refused_total",
           "kaos.rpc_call_async calls refused: the API queue was full or closed", rs.async_refused);
    METRIC("rpc_async_done_total", "queued RPCs that ran and succeeded", rs.async_done);
    METRIC("rpc_async_failed_total", "queued RPCs that failed (logged with their id)",
           rs.async_failed);
    kn_sessions_stats ss;
    kn_sessions_stats_get(h->sessions, &ss);
    METRIC("sessions", "sessions bound to connections", ss.bound);
    METRIC("sessions_revoked", "session ids in the revocation set", ss.revoked);
    METRIC("sessions_ended_total", "sessions ended by logout, ban or deletion", ss.ended);
    METRIC("relayed_matches", "relayed matches running", kn_match_wire_relayed_count(h->mw));
    kn_tracker_stats ts;
    kn_tracker_stats_get(h->tracker, &ts);
    METRIC("streams", "streams with presences", ts.streams);
    METRIC("stream_presences", "presences on streams", ts.presences);
    METRIC("stream_presence_events_total", "presence events sent (one per recipient list)",
           ts.events);
    METRIC("stream_presence_events_dropped_total",
           "presence events dropped (too large or out of memory)", ts.events_dropped);
    n = per_thread_gauge(h, buf, n, cap, "net_thread_connections",
                         "open connections per network thread",
                         offsetof(kn_net_stats, connections_current));
    n = per_thread_gauge(h, buf, n, cap, "net_thread_busy_permille",
                         "share of the last second a network thread worked",
                         offsetof(kn_net_stats, busy_permille));
    kn_matchmaker_stats mms;
    kn_matchmaker_stats_get(h->mm, &mms);
    METRIC("matchmaker_tickets", "matchmaker tickets waiting", mms.tickets);
    METRIC("matchmaker_passes_total", "matchmaker passes run", mms.passes);
    METRIC("matchmaker_matched_total", "groups the matchmaker formed", mms.matched);
    METRIC("matchmaker_fallbacks_total",
           "matchmaker passes where a custom processor failed and the built-in matcher ran",
           mms.fallbacks);
    METRIC("matchmaker_pass_us_total", "microseconds spent in matchmaker passes", mms.pass_us);
    METRIC("matchmaker_pass_us_max", "the longest matchmaker pass, microseconds", mms.pass_us_max);
    kn_match_stats ms;
    kn_match_engine_stats(h->matches, &ms);
    METRIC("leaderboards", "leaderboards known to this node", kn_leaderboards_count(h->lbs));
    METRIC("leaderboard_index_bytes", "bytes held by the leaderboards' rank indexes",
           kn_leaderboards_index_memory(h->lbs));
    METRIC("matches", "authoritative matches running", ms.matches);
    METRIC("match_created_total", "authoritative matches created", ms.created);
    METRIC("match_errors_total", "authoritative matches ended by a handler failure", ms.errors);
    METRIC("match_ticks_total", "match ticks run", ms.ticks);
    METRIC("match_late_ticks_total", "match ticks started over one interval late", ms.late_ticks);
    METRIC("match_tick_us_max", "longest match_loop call since start, microseconds",
           ms.tick_us_max);
    METRIC("match_tick_lateness_us_max",
           "the latest a match tick started after its due time since start, microseconds",
           ms.late_us_max);
    METRIC("match_inputs_total", "player inputs queued to matches", ms.inputs);
    METRIC("match_inputs_dropped_total", "player inputs dropped (match thread inbox full)",
           ms.inputs_dropped);
    METRIC("match_refused_overload_total",
           "match creations and joins refused because a match thread was overloaded",
           ms.refused_overload);
#undef METRIC
    /* Tick lateness (start minus due time), cumulative as Prometheus wants. */
    static const int64_t bounds[KN_MATCH_LATE_BUCKETS - 1] = KN_MATCH_LATE_BOUNDS_US;
    if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n,
                              "# HELP kaos_match_tick_lateness_us match tick start minus due "
                              "time, microseconds\n# TYPE kaos_match_tick_lateness_us histogram\n");
    uint64_t sum = 0;
    for (int i = 0; i < KN_MATCH_LATE_BUCKETS && n < cap; i++) {
        sum += ms.late_hist[i];
        char le[24];
        if (i < KN_MATCH_LATE_BUCKETS - 1)
            snprintf(le, sizeof le, "%lld", (long long)bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        n += (size_t)snprintf(buf + n, cap - n,
                              "kaos_match_tick_lateness_us_bucket{le=\"%s\"} %llu\n", le,
                              (unsigned long long)sum);
    }
    if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n, "kaos_match_tick_lateness_us_count %llu\n",
                              (unsigned long long)sum);
    kn_cluster *c = atomic_load(&h->cluster);
    if (c && n < cap) kn_cluster_metrics(c, kn_time_mono_ms(), buf, n, cap);
}
static volatile sig_atomic_t signals_seen;

static void on_signal(int sig)
{
    (void)sig;
    if (++signals_seen > 1) {
        static const char msg[] = "second signal: exiting without draining\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(130);
    }
    for (sig_atomic_t i = 0; i < n_running; i++)
        if (running_nets[i]) kn_net_stop(running_nets[i]);
}

/* Hot reload: SIGHUP is blocked in every thread and taken by this one,
 * which loads the modules afresh (never on the net thread) and swaps them in
 * only if every module loads; otherwise the old ones stay, and the log says
 * why. Workers pick the new code up at their next call. With `watch`, a
 * change to a .lua file of the runtime path (inotify) does the same once the
 * directory has been quiet for 300 ms, so an editor's several writes make
 * one reload. */
typedef struct reloader {
    kn_runtime_host *host;
    const char *path;
    const char *env;
    size_t memory_limit;
    int64_t call_budget_ms;
    int64_t match_budget_ms;
    size_t match_memory_limit;
    const kn_lua_binding *bindings;
    size_t n_bindings;
    bool watch;
    pthread_t thread;
    bool started;
    atomic_int stop;
    /* The last reload, for the console's Runtime page (under mu). */
    pthread_mutex_t mu;
    int64_t last_reload_ms;
    size_t modules;
    char last_error[512];
} reloader;

/* Drains the inotify fd; true when a .lua file of the directory changed. */
static bool lua_changed(int fd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            size_t len = ev->len ? strlen(ev->name) : 0;
            if (len > 4 && !strcmp(ev->name + len - 4, ".lua")) changed = true;
            p += sizeof *ev + ev->len;
        }
    }
    return changed;
}

static void reload(reloader *rl)
{
    char err[512] = "";
    kn_runtime_config rc_cfg = {.path = rl->path,
                                .env = rl->env, /* no run_once again */
                                .memory_limit = rl->memory_limit,
                                .call_budget_ms = rl->call_budget_ms,
                                .match_budget_ms = rl->match_budget_ms,
                                .match_memory_limit = rl->match_memory_limit,
                                .is_client_op = kn_routes_is_client_op,
                                .bindings = rl->bindings,
                                .n_bindings = rl->n_bindings};
    kn_runtime *rt;
    if (kn_runtime_load(&rc_cfg, &rt, err, sizeof err) == KN_OK) {
        size_t n = kn_runtime_module_count(rt);
        kn_runtime_host_swap(rl->host, rt);
        KN_INFO("runtime reloaded: %zu module(s) from %s", n, rl->path);
        err[0] = '\0';
        pthread_mutex_lock(&rl->mu);
        rl->modules = n;
        pthread_mutex_unlock(&rl->mu);
    } else {
        KN_ERROR("runtime reload failed, keeping the running modules: %s", err);
    }
    pthread_mutex_lock(&rl->mu);
    rl->last_reload_ms = kn_time_wall_ms();
    snprintf(rl->last_error, sizeof rl->last_error, "%s", err);
    pthread_mutex_unlock(&rl->mu);
}

static void *reloader_main(void *arg)
{
    reloader *rl = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    int fd = -1;
    if (rl->watch) {
        fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd < 0 || inotify_add_watch(fd, rl->path,
                                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                            IN_DELETE) < 0) {
            KN_WARN("cannot watch %s for changes (%s); SIGHUP still reloads", rl->path,
                    strerror(errno));
            if (fd >= 0) close(fd);
            fd = -1;
        }
    }
    int64_t pending_since = 0; /* a change seen, not yet reloaded */
    struct timespec tick = {0, 100 * 1000000L};
    while (!atomic_load(&rl->stop)) {
        bool hup = sigtimedwait(&set, NULL, &tick) == SIGHUP;
        if (fd >= 0 && lua_changed(fd)) pending_since = kn_time_mono_ms();
        if (hup || (pending_since && kn_time_mono_ms() - pending_since >= 300)) {
            if (!hup) KN_INFO("runtime path changed: reloading");
            pending_since = 0;
            reload(rl);
        }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static int reloader_start(reloader *rl)
{
    if (pthread_create(&rl->thread, NULL, reloader_main, rl)) return KN_ERR_INTERNAL;
    rl->started = true;
    return KN_OK;
}

static void reloader_stop(reloader *rl)
{
    if (!rl->started) return;
    atomic_store(&rl->stop, 1);
    pthread_join(rl->thread, NULL);
    rl->started = false;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Migrations: apply when asked, otherwise refuse to run on an old schema. */
static int check_schema(const kn_config *cfg)
{
    kn_db *db;
    int rc = kn_db_open(cfg->database_url, &db);
    if (rc) return rc;
    int n = 0;
    if (cfg->migrate) {
        rc = kn_db_migrate_up(db, &n);
    } else if ((rc = kn_db_migrate_check(db, &n)) == KN_OK && n > 0) {
        KN_ERROR("%d migration(s) pending: run `kaosnet migrate up` or start with --migrate", n);
        rc = KN_ERR_FAILED_PRECONDITION;
    }
    kn_db_close(db);
    return rc;
}

/* The leaderboard scheduler: one thread that wakes once a second (or when
 * stopped) and lets the service end the periods that are due
 * (kn_leaderboards_tick), and every 100 ms runs the writes match handlers
 * queued (kn_leaderboards_flush); the service claims each reset in
 * Postgres, so with several nodes its callbacks run once. The scripts' reset functions
 * run in a VM of the thread's own runtime slot. */
typedef struct lb_scheduler {
    kn_leaderboards *lbs;
    kn_db *db;
    kn_runtime_slot *slot;
    pthread_t thread;
    atomic_int stop;
    bool started;
} lb_scheduler;

/* kn_leaderboards' on_reset: kaos.register_leaderboard_reset's functions. */
static void lb_on_reset(void *ud, kn_db *db, const kn_leaderboard *board, int64_t reset)
{
    lb_scheduler *s = ud;
    kn_runtime_vm *vm = s->slot ? kn_runtime_slot_vm(s->slot) : NULL;
    if (!vm) return;
    kn_runtime_services svc = {db};
    kn_runtime_context ctx = {.user_id = "",
                              .username = "",
                              .session_id = "",
                              .client_address = "",
                              .execution_mode = "leaderboard_reset",
                              .services = &svc};
    kn_leaderboard_lua_reset r = {board, reset};
    char what[KN_LB_ID_MAX + 32], msg[256];
    snprintf(what, sizeof what, "leaderboard reset %s", board->id);
    kn_runtime_call(vm, &ctx, kn_leaderboard_lua_run_reset, &r, what, msg, sizeof msg);
}

/* kn_leaderboards' on_tournament_end / _reset: kaos.register_tournament_end
 * and _reset's functions (the service sends the notifications after). */
static void lb_on_tournament(lb_scheduler *s, kn_db *db, const kn_tournament *t, int64_t end,
                             int64_t reset, bool is_end)
{
    kn_runtime_vm *vm = s->slot ? kn_runtime_slot_vm(s->slot) : NULL;
    if (!vm) return;
    kn_runtime_services svc = {db};
    kn_runtime_context ctx = {.user_id = "",
                              .username = "",
                              .session_id = "",
                              .client_address = "",
                              .execution_mode = is_end ? "tournament_end" : "tournament_reset",
                              .services = &svc};
    kn_leaderboard_lua_tournament r = {t, end, reset, is_end};
    char what[KN_LB_ID_MAX + 32], msg[256];
    snprintf(what, sizeof what, "tournament %s %s", is_end ? "end" : "reset", t->id);
    kn_runtime_call(vm, &ctx, kn_leaderboard_lua_run_tournament, &r, what, msg, sizeof msg);
}

static void lb_on_tournament_end(void *ud, kn_db *db, const kn_tournament *t, int64_t end,
                                 int64_t reset)
{
    lb_on_tournament(ud, db, t, end, reset, true);
}

static void lb_on_tournament_reset(void *ud, kn_db *db, const kn_tournament *t, int64_t end,
                                   int64_t reset)
{
    lb_on_tournament(ud, db, t, end, reset, false);
}

/* Leaderboards: the service and its indexes rebuilt from Postgres, and the
 * start-up connection kaos.leaderboard_create uses while modules load. */
static int leaderboards_start(const kn_config *cfg, lb_scheduler *sched, kn_leaderboards **lbs,
                              kn_leaderboard_lua *lua)
{
    kn_leaderboards_config lc = {.node = cfg->node,
                                 .on_reset = lb_on_reset,
                                 .on_reset_ud = sched,
                                 .on_tournament_end = lb_on_tournament_end,
                                 .on_tournament_reset = lb_on_tournament_reset,
                                 .on_tournament_ud = sched};
    int rc = kn_leaderboards_create(&lc, lbs);
    if (rc == KN_OK) rc = kn_db_open(cfg->database_url, &lua->db);
    if (rc) return rc;
    lua->lbs = *lbs;
    char msg[256] = "";
    size_t n = 0;
    int64_t t0 = kn_time_mono_ms();
    if ((rc = kn_leaderboards_load(*lbs, lua->db, &n, msg, sizeof msg))) {
        KN_ERROR("leaderboards: %s", msg);
        return rc;
    }
    KN_INFO("leaderboards: %zu board(s), %zu record(s) indexed in %lld ms",
            kn_leaderboards_count(*lbs), n, (long long)(kn_time_mono_ms() - t0));
    return KN_OK;
}

static void *lb_scheduler_main(void *arg)
{
    lb_scheduler *s = arg;
    for (unsigned n = 0;; n++) {
        /* Queued writes (match handlers) every 100 ms, period ends every second. */
        kn_leaderboards_flush(s->lbs, s->db);
        if (atomic_load(&s->stop)) break;
        if (n % 10 == 0) kn_leaderboards_tick(s->lbs, s->db);
        usleep(100 * 1000);
    }
    return NULL;
}

static int lb_scheduler_start(lb_scheduler *s, const kn_config *cfg, kn_leaderboards *lbs,
                              kn_runtime_host *host)
{
    s->lbs = lbs;
    int rc = kn_db_open(cfg->database_url, &s->db);
    if (rc == KN_OK) rc = kn_runtime_slot_create(host, &s->slot);
    if (rc) return rc;
    if (pthread_create(&s->thread, NULL, lb_scheduler_main, s) != 0) return KN_ERR_INTERNAL;
    s->started = true;
    return KN_OK;
}

/* Before the runtime host goes: the slot is the host's. */
static void lb_scheduler_stop(lb_scheduler *s)
{
    if (s->started) {
        atomic_store(&s->stop, 1);
        pthread_join(s->thread, NULL);
        s->started = false;
    }
    kn_runtime_slot_destroy(s->slot);
    s->slot = NULL;
    kn_db_close(s->db);
    s->db = NULL;
}

/* Token keys: the config wins (operators rotating keys), else the key file. */
static void pick_key(const char *configured, const uint8_t *file_key, const uint8_t **key,
                     size_t *len)
{
    if (configured && *configured) {
        *key = (const uint8_t *)configured;
        *len = strlen(configured) > 64 ? 64 : strlen(configured);
    } else {
        *key = file_key;
        *len = KN_KEY_BYTES;
    }
}

/* --- the admin console's hooks: what only the running server knows --------------------- */

typedef struct console_ctx {
    http_ctx *http;
    kn_sessions *sessions;
    kn_rpc *rpc;
    reloader *rl;
    const kn_config *cfg;
    kn_runtime_host *host;
} console_ctx;

static void console_metrics(void *ud, char *buf, size_t cap)
{
    http_metrics(((console_ctx *)ud)->http, buf, cap);
}

static int console_end_sessions(void *ud, const char *user_id, bool ban)
{
    return kn_sessions_end(((console_ctx *)ud)->sessions, user_id, NULL,
                           ban ? KN_SESSION_END_BAN : KN_SESSION_END_DELETE, 0, 0);
}

static size_t console_user_conns(void *ud, const char *user_id)
{
    kn_conn_id conns[1];
    return kn_sessions_conns(((console_ctx *)ud)->sessions, user_id, NULL, conns, 0);
}

static int console_rpc(void *ud, const char *id, const char *user_id, const char *username,
                       const char *payload, size_t len, char **out, size_t *out_len, char *msg,
                       size_t cap)
{
    return kn_rpc_call_blocking_as(((console_ctx *)ud)->rpc, id, payload, len, user_id, username,
                                   "console", 10000, out, out_len, msg, cap);
}

static char *dump_free(kn_json *o)
{
    char *text = o ? kn_json_dump(o, KN_JSON_COMPACT) : NULL;
    kn_json_decref(o);
    char *copy = text ? kn_strdup(text) : NULL;
    kn_json_free_text(text);
    return copy;
}

/* One registration of the runtime into its list of the Runtime page. */
static void runtime_visit(void *ud, const char *kind, const char *name)
{
    static const char *const lists[][2] = {{"module", "modules"},
                                           {"rpc", "rpcs"},
                                           {"match", "match_handlers"},
                                           {"before", "before_hooks"},
                                           {"after", "after_hooks"}};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        if (strcmp(kind, lists[i][0])) continue;
        kn_json *arr = kn_json_object_get(ud, lists[i][1]);
        if (!arr) {
            arr = kn_json_array();
            kn_json_object_set_new(ud, lists[i][1], arr);
        }
        kn_json_array_append_new(arr, kn_json_string(name ? name : "?"));
    }
}

static char *console_runtime_info(void *ud)
{
    console_ctx *c = ud;
    kn_json *o = kn_json_object();
    kn_runtime_host_describe(c->host, runtime_visit, o);
    pthread_mutex_lock(&c->rl->mu);
    kn_json_object_set_new(o, "path", kn_json_string(c->cfg->runtime_path));
    kn_json_object_set_new(o, "module_count", kn_json_integer((int64_t)c->rl->modules));
    kn_json_object_set_new(o, "last_reload_ms", kn_json_integer(c->rl->last_reload_ms));
    kn_json_object_set_new(o, "last_error", kn_json_string(c->rl->last_error));
    pthread_mutex_unlock(&c->rl->mu);
    kn_json_object_set_new(o, "watch", kn_json_boolean(c->cfg->runtime_watch));
    return dump_free(o);
}

static void config_visit(void *ud, const char *name, const char *value, bool secret,
                         const char *help)
{
    kn_json *e = kn_json_object();
    kn_json_object_set_new(e, "name", kn_json_string(name));
    kn_json_object_set_new(e, "value", kn_json_string(value));
    kn_json_object_set_new(e, "secret", kn_json_boolean(secret));
    kn_json_object_set_new(e, "help", kn_json_string(help));
    kn_json_array_append_new(ud, e);
}

static char *console_config(void *ud)
{
    kn_json *arr = kn_json_array();
    kn_config_each(((console_ctx *)ud)->cfg, config_visit, arr);
    kn_json *o = kn_json_object();
    kn_json_object_set_new(o, "options", arr);
    return dump_free(o);
}

/* The first console user: `admin` with the configured password, or a
 * generated one printed once (stdout, not the log). */
static int console_bootstrap(const kn_config *cfg)
{
    kn_db *db;
    int rc = kn_db_open(cfg->database_url, &db);
    if (rc) return rc;
    char generated[64] = "", msg[256] = "";
    bool created = false;
    rc = kn_console_bootstrap(db, cfg->console_admin_password, generated, sizeof generated,
                              &created, msg, sizeof msg);
    kn_db_close(db);
    if (rc) {
        KN_ERROR("console: cannot create the first console user: %s", msg);
        return rc;
    }
    if (created && *generated) {
        fprintf(stdout,
                "console user admin created with password %s (shown once; change it "
                "with `kaosnet console-user passwd admin`)\n",
                generated);
        fflush(stdout);
    } else if (created) {
        KN_INFO("console: created console user admin with the configured password");
    }
    kn_crypto_wipe(generated, sizeof generated);
    return KN_OK;
}

static void *net_thread_main(void *arg)
{
    kn_net_run(arg);
    return NULL;
}

int kn_server_run(const kn_config *cfg)
{
    /* Before any thread exists, so every thread inherits the mask and only
     * the reloader takes SIGHUP. */
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, NULL);

    kn_keys keys;
    kn_session_store *store = NULL;
    kn_auth *auth = NULL;
    kn_api *api = NULL;
    kn_gateway *gw = NULL;
    kn_out *out = NULL;
    kn_sessions *sessions = NULL;
    kn_tracker *tracker = NULL;
    kn_status *status = NULL;
    kn_parties *parties = NULL;
    kn_party_wire party_wire = {0};
    kn_chat *chat = NULL;
    kn_match_wire *mw = NULL;
    kn_rpc *rpc = NULL;
    kn_matchmaker *mm = NULL;
    matched_ctx mctx = {0};
    kn_net *nets[MAX_NETS] = {NULL};
    pthread_t net_threads[MAX_NETS];
    size_t n_nets = 0, n_net_threads = 0;
    kn_net_shared *shared = NULL;
    bool enet_up = false;
    kn_lockout *account_lock = NULL, *address_lock = NULL;
    kn_runtime *runtime = NULL;
    kn_runtime_host *host = NULL;
    kn_match_engine *matches = NULL;
    kn_runtime_slot *slots[64] = {NULL};
    /* The bindings' uds: filled below as auth, the session registry and the
     * match engine come up, all before serving (until then the functions that
     * need them refuse: no database connection, or no match engine). */
    kn_account_lua account_lua = {0};
    kn_stream_lua stream_lua = {0};
    kn_status_lua status_lua = {0};
    kn_party_lua party_lua = {0};
    kn_matchmaker_lua matchmaker_lua = {0};
    kn_friends_deps friends_deps = {.config = {.max_friends = (int)cfg->max_friends}};
    kn_chat_lua chat_lua = {0};
    block_listeners blocks = {0};
    kn_leaderboard_lua leaderboard_lua = {.mu = PTHREAD_MUTEX_INITIALIZER};
    kn_leaderboards *lbs = NULL;
    lb_scheduler lbsched = {0};
    const kn_lua_binding bindings[] = {
        {"streams", kn_stream_lua_funcs, &stream_lua},
        {"status", kn_status_lua_funcs, &status_lua},
        {"party", kn_party_lua_funcs, &party_lua},
        {"matchmaker", kn_matchmaker_lua_funcs, &matchmaker_lua},
        {"chat", kn_chat_lua_funcs, &chat_lua},
        {"account", kn_account_lua_funcs, &account_lua},
        {"storage", kn_storage_lua_funcs, NULL},
        {"economy", kn_economy_lua_funcs, NULL},
        {"friends", kn_friends_lua_funcs, &friends_deps},
        {"notifications", kn_notify_lua_funcs, &out},
        {"groups", kn_groups_lua_funcs, &out},
        {"leaderboards", kn_leaderboard_lua_funcs, &leaderboard_lua},
        {"match", kn_match_lua_funcs, &matches},
        {"rpc", kn_rpc_lua_funcs, &rpc},
    };
    reloader rl = {.mu = PTHREAD_MUTEX_INITIALIZER};
    kn_http *http = NULL;
    http_ctx hctx = {0};
    kn_console *console = NULL;
    console_ctx cctx = {0};
    cluster_glue cglue = {.api_mu = PTHREAD_MUTEX_INITIALIZER};
    bool created = false;
    /* One ENet host holds 4095 peers: by default, as many hosts as needed. */
    size_t want_nets =
        cfg->net_threads ? (size_t)cfg->net_threads : ((size_t)cfg->max_connections + 4094) / 4095;
    int rc = kn_keys_load_or_create(cfg->data_dir, &keys, &created);
    if (rc) {
        KN_ERROR("cannot load or create the server key in %s: %s", cfg->data_dir, kn_err_text(rc));
        return rc;
    }
    if (created) KN_INFO("created server key %s/server.key", cfg->data_dir);

    kn_session_store_config sc = {.session_expiry_sec = cfg->session_expiry_sec,
                                  .refresh_expiry_sec = cfg->refresh_expiry_sec};
    pick_key(cfg->session_key, keys.session_key, &sc.session_key, &sc.session_key_len);
    pick_key(cfg->refresh_key, keys.refresh_key, &sc.refresh_key, &sc.refresh_key_len);
    if ((rc = kn_session_store_create(&sc, &store))) goto done;
    kn_auth_config ac = {store};
    if ((rc = kn_auth_create(&ac, &auth))) goto done;
    account_lua.auth = auth;
    if ((rc = check_schema(cfg))) goto done;
    /* Leaderboards before the runtime: modules create boards as they load. */
    if ((rc = leaderboards_start(cfg, &lbsched, &lbs, &leaderboard_lua))) goto done;
    cglue.lbs = lbs; /* before its scheduler or any worker writes: the hook waits for the bus */
    if (*cfg->cluster_nats)
        kn_leaderboards_set_peers(lbs, &(kn_leaderboard_peers){lb_applied, lb_removed, &cglue});

    /* Lua modules: every one must load, or the server does not start. */
    char rterr[512] = "";
    kn_runtime_config rtc = {.path = cfg->runtime_path,
                             .env = cfg->runtime_env,
                             .run_once = true,
                             .memory_limit = (size_t)cfg->runtime_memory_mb << 20,
                             .call_budget_ms = cfg->runtime_call_budget_ms,
                             .match_budget_ms = cfg->match_callback_budget_ms,
                             .match_memory_limit = (size_t)cfg->match_memory_mb << 20,
                             .is_client_op = kn_routes_is_client_op,
                             .bindings = bindings,
                             .n_bindings = sizeof bindings / sizeof bindings[0]};
    if ((rc = kn_runtime_load(&rtc, &runtime, rterr, sizeof rterr))) {
        KN_ERROR("runtime: %s", rterr);
        if (!cfg->runtime_allow_errors || rc == KN_ERR_NOMEM) goto done;
        /* Configured to serve anyway: without modules, until a reload works. */
        KN_WARN("runtime_allow_errors: serving with no Lua modules; fix the module and reload "
                "(SIGHUP or --runtime-watch)");
        kn_runtime_config none = rtc;
        none.path = NULL;
        if ((rc = kn_runtime_load(&none, &runtime, rterr, sizeof rterr))) goto done;
    }
    size_t modules_loaded = kn_runtime_module_count(runtime);
    KN_INFO("runtime: %zu Lua module(s) loaded from %s", modules_loaded, cfg->runtime_path);
    rc = kn_runtime_host_create(runtime, &host);
    runtime = NULL; /* the host owns it */
    if (rc) goto done;
    for (int i = 0; i < (int)cfg->api_workers; i++)
        if ((rc = kn_runtime_slot_create(host, &slots[i]))) goto done;
    rl = (reloader){.mu = PTHREAD_MUTEX_INITIALIZER,
                    .last_reload_ms = kn_time_wall_ms(),
                    .modules = modules_loaded,
                    .host = host,
                    .path = cfg->runtime_path,
                    .env = cfg->runtime_env,
                    .memory_limit = rtc.memory_limit,
                    .call_budget_ms = rtc.call_budget_ms,
                    .match_budget_ms = rtc.match_budget_ms,
                    .match_memory_limit = rtc.match_memory_limit,
                    .bindings = rtc.bindings,
                    .n_bindings = rtc.n_bindings,
                    .watch = cfg->runtime_watch};
    if ((rc = reloader_start(&rl))) goto done;

    kn_api_config apc = {.workers = (int)cfg->api_workers,
                         .queue_size = (size_t)cfg->api_queue_size,
                         .database_url = cfg->database_url,
                         .worker_ctx = (void **)slots};
    if ((rc = kn_api_create(&apc, &api))) goto done;

    kn_relay_config rcfg = {.node = cfg->node,
                            .default_size = (uint32_t)cfg->match_default_size,
                            .max_size = (uint32_t)cfg->match_max_size,
                            .max_matches_per_conn = 8,
                            .max_message_size = (size_t)cfg->max_message_size};
    kn_lockout_config alc = {.max_failures = (uint32_t)cfg->lockout_account_failures,
                             .window_ms = cfg->lockout_account_ms,
                             .lock_ms = cfg->lockout_account_ms,
                             .max_entries = 100000};
    kn_lockout_config adc = {.max_failures = (uint32_t)cfg->lockout_address_failures,
                             .window_ms = cfg->lockout_address_ms,
                             .lock_ms = cfg->lockout_address_ms,
                             .max_entries = 100000};
    if ((rc = kn_lockout_create(&alc, &account_lock)) ||
        (rc = kn_lockout_create(&adc, &address_lock)))
        goto done;
    /* The one way out, the session owner, and the services with routes. */
    if ((rc = kn_out_create(want_nets, &out))) goto done;
    kn_leaderboards_set_out(lbs, out); /* tournaments' end notifications, live */
    if ((rc = kn_sessions_create(out, &sessions))) goto done;
    kn_out_directory dir = kn_sessions_directory(sessions);
    kn_out_set_directory(out, &dir);
    kn_tracker_config tcfg;
    kn_tracker_config_default(&tcfg);
    tcfg.max_event_size = (size_t)cfg->max_message_size;
    kn_tracker_sink tsink = {tracker_send, out};
    party_wire = (kn_party_wire){.out = out}; /* .mm once it exists */
    kn_party_hooks party_hooks = {kn_party_wire_notify, kn_party_wire_changed, &party_wire};
    if ((rc = kn_tracker_create(&tcfg, &tsink, &tracker)) ||
        (rc = kn_parties_create(tracker, &party_hooks, &parties)))
        goto done;
    party_wire.parties = parties;
    stream_services streams = {tracker, parties};
    if ((rc = kn_sessions_on_unbind(sessions, tracker_unbound, &streams)) ||
        (rc = kn_status_create(tracker, &status)))
        goto done;
    kn_chat_config chc;
    kn_chat_config_default(&chc);
    chc.groups = (kn_chat_groups){group_membership, NULL};
    if ((rc = kn_chat_create(&chc, tracker, out, &chat)) ||
        (rc = kn_sessions_on_unbind(sessions, chat_unbound, chat)))
        goto done;
    kn_groups_listen(&(kn_groups_listener){group_changed, chat});
    chat_lua = (kn_chat_lua){chat};
    stream_lua = (kn_stream_lua){tracker, sessions, out};
    status_lua = (kn_status_lua){status, sessions};
    party_lua = (kn_party_lua){parties, sessions, &party_wire};
    if (cfg->single_session) {
        kn_sessions_single single = {kn_notify_session_replaced, out, forget_session, api};
        kn_sessions_set_single(sessions, &single);
    }
    friends_deps.out = out;
    friends_deps.blocked = friends_blocked;
    blocks = (block_listeners){status, chat};
    friends_deps.blocked_ud = &blocks;
    kn_runtime_services script_services = {0}; /* .db per worker */
    account_lua.end_sessions = end_sessions;
    account_lua.end_sessions_ud = sessions;
    if ((rc = kn_rpc_create(api, &script_services, &rpc))) goto done;
    kn_match_wire_deps mwd = {.relay = &rcfg, .tracker = tracker, .out = out, .sessions = sessions};
    if ((rc = kn_match_wire_create(&mwd, &mw))) goto done;
    if (*cfg->cluster_nats) kn_match_wire_set_locator(mw, &(kn_match_locator){match_where, &cglue});

    /* One match thread per CPU this process may run on (taskset, cpusets). */
    cpu_set_t cpus;
    int ncpu = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
    kn_match_engine_config mec = {
        .threads = cfg->match_threads ? (int)cfg->match_threads : (ncpu > 0 ? ncpu : 1),
        .pin_threads = true,
        .node = cfg->node,
        .max_matches = (uint32_t)cfg->max_matches,
        .max_size = (uint32_t)cfg->match_max_size,
        .max_message_size = (size_t)cfg->max_message_size,
        .factory = kn_runtime_match_factory,
        .factory_ud = host,
        .out = kn_match_wire_out,
        .out_ud = mw,
        .call_share_pct = cfg->match_call_share_pct ? (int)cfg->match_call_share_pct : -1,
    };
    if (mec.threads > 64) mec.threads = 64;
    /* From here `matches` is set, which is what the "match" binding reads. */
    if ((rc = kn_match_engine_create(&mec, &matches))) goto done;
    kn_match_wire_attach_engine(mw, matches);

    mctx = (matched_ctx){out, mw, rpc, host};
    kn_matchmaker_config mmc = {.interval_ms = cfg->matchmaker_interval_ms,
                                .max_intervals = (uint32_t)cfg->matchmaker_max_intervals,
                                .max_tickets = (uint32_t)cfg->matchmaker_max_tickets,
                                .matched = matchmaker_matched,
                                .matched_ud = &mctx,
                                .script = matchmaker_script,
                                .script_exists = matchmaker_script_exists,
                                .script_ud = &mctx};
    if ((rc = kn_matchmaker_create(&mmc, &mm)) ||
        (rc = kn_sessions_on_unbind(sessions, matchmaker_unbound, mm)))
        goto done;
    party_wire.mm = mm;
    matchmaker_lua = (kn_matchmaker_lua){mm, sessions};

    kn_gateway_deps deps = {
        .pipeline = {.api = api,
                     .runtime = host,
                     .out = out,
                     .sessions = sessions,
                     .account_lockout = account_lock,
                     .address_lockout = address_lock,
                     .max_message_size = (size_t)cfg->max_message_size,
                     .script_services = script_services,
                     .services = {[KN_SVC_AUTH] = (void *)auth,
                                  [KN_SVC_MATCH] = mw,
                                  [KN_SVC_RPC] = rpc,
                                  [KN_SVC_FRIENDS] = &friends_deps,
                                  [KN_SVC_STATUS] = status,
                                  [KN_SVC_CHAT] = chat,
                                  [KN_SVC_MATCHMAKER] = mm,
                                  [KN_SVC_LEADERBOARDS] = lbs,
                                  [KN_SVC_PARTY] = &party_wire}},
        .shutdown_grace_ms = cfg->shutdown_grace_ms,
        .matches = matches,
        .shards = want_nets,
    };
    if ((rc = kn_gateway_create(&deps, &gw))) goto done;
    if ((rc = lb_scheduler_start(&lbsched, cfg, lbs, host))) goto done;

    kn_net_config nc;
    kn_net_config_default(&nc);
    nc.bind = cfg->bind;
    nc.port = (uint16_t)cfg->port;
    nc.max_connections = ((size_t)cfg->max_connections + want_nets - 1) / want_nets;
    nc.max_message_size = (size_t)cfg->max_message_size;
    nc.max_waiting_data = (size_t)cfg->max_waiting_data;
    nc.auth_timeout_ms = cfg->auth_timeout_ms;
    nc.idle_timeout_ms = cfg->idle_timeout_ms;
    nc.shutdown_grace_ms = cfg->shutdown_grace_ms;
    nc.max_violations = (uint32_t)cfg->max_violations;
    nc.secure = strcmp(cfg->security, "off") != 0;
    nc.server_pk = keys.kx_public;
    nc.server_sk = keys.kx_secret;
    nc.max_handshakes = ((size_t)cfg->max_handshakes + want_nets - 1) / want_nets;
    nc.handshake_timeout_ms = cfg->handshake_timeout_ms;
    nc.max_per_address = (size_t)cfg->max_connections_per_address;
    nc.control_rates =
        (kn_net_rates){(double)cfg->rate_control_msgs, 2.0 * (double)cfg->rate_control_msgs,
                       (double)cfg->rate_control_bytes, 2.0 * (double)cfg->rate_control_bytes};
    nc.match_rates =
        (kn_net_rates){(double)cfg->rate_match_msgs, 2.0 * (double)cfg->rate_match_msgs,
                       (double)cfg->rate_match_bytes, 2.0 * (double)cfg->rate_match_bytes};
    nc.max_rate_drops = (uint32_t)cfg->rate_max_drops;
    nc.max_queued = (size_t)cfg->max_send_queue;
    nc.socket_buffer = (int)cfg->socket_buffer_bytes;
    nc.batch_syscalls = cfg->net_batch_syscalls;
    nc.ping_interval_ms = (uint32_t)cfg->net_ping_interval_ms;
    nc.overload_busy = (double)cfg->net_overload_pct / 100.0;
    if ((rc = kn_net_global_init())) goto done;
    enet_up = true;
    /* Several network threads: one ENet host each, all bound to one port. */
    if ((rc = kn_net_shared_create(&shared))) goto done;
    nc.shared = shared;
    nc.reuse_port = want_nets > 1;
    for (; n_nets < want_nets; n_nets++) {
        kn_net_handler handler;
        kn_gateway_handler(gw, n_nets, &handler);
        nc.shard = (uint16_t)n_nets;
        if ((rc = kn_net_create(&nc, &handler, &nets[n_nets]))) goto done;
        kn_out_attach(out, n_nets, nets[n_nets]);
        nc.port = kn_net_port(nets[0]); /* port 0: the others take the one the first got */
    }
    KN_INFO("%zu network thread(s), %zu connection slots each", n_nets, nc.max_connections);

    hctx = (http_ctx){rpc, mw,      gw,      sessions,          nets, n_nets,
                      api, matches, tracker, cfg->database_url, lbs,  mm, NULL};
    cglue.out = out;
    cglue.sessions = sessions;
    cglue.tracker = tracker;
    cglue.api = api;
    cluster_hooks(cfg, &cglue);
    kn_http_config hc = {.bind = cfg->http_bind,
                         .port = (uint16_t)cfg->http_port,
                         .http_key = cfg->http_key,
                         .max_body = (size_t)cfg->max_message_size};
    kn_http_handler hh = {.rpc = http_rpc,
                          .metrics = http_metrics,
                          .health = http_health,
                          .health_detail = http_health_detail,
                          .nodes = *cfg->cluster_nats ? http_nodes : NULL,
                          .ud = &hctx};
    if ((rc = kn_http_start(&hc, &hh, &http))) goto done;
    if ((rc = cluster_start(cfg, &cglue, kn_net_port(nets[0]), kn_http_port(http)))) goto done;
    atomic_store(&hctx.cluster, atomic_load(&cglue.cluster));
    if (!*cfg->http_key) KN_WARN("http_key is empty: server-to-server RPC over HTTP is refused");
    if (cfg->console) {
        if ((rc = console_bootstrap(cfg))) goto done;
        cctx = (console_ctx){&hctx, sessions, rpc, &rl, cfg, host};
        kn_console_config ccfg = {.bind = cfg->console_bind,
                                  .port = (uint16_t)cfg->console_port,
                                  .database_url = cfg->database_url,
                                  .session_ttl_sec = cfg->console_session_sec,
                                  .secure_cookie = cfg->console_secure_cookie,
                                  .lockout_failures = (uint32_t)cfg->lockout_account_failures,
                                  .lockout_ms = cfg->lockout_account_ms,
                                  .started_ms = kn_time_wall_ms()};
        kn_console_hooks chooks = {.metrics = console_metrics,
                                   .end_sessions = console_end_sessions,
                                   .user_conns = console_user_conns,
                                   .runtime_info = console_runtime_info,
                                   .rpc = console_rpc,
                                   .config_json = console_config,
                                   .ud = &cctx,
                                   .out = out,
                                   .matches = matches,
                                   .chat = chat,
                                   .leaderboards = lbs,
                                   .matchmaker = mm,
                                   .parties = parties};
        if ((rc = kn_console_start(&ccfg, &chooks, &console))) goto done;
        KN_INFO("admin console on http://%s:%u/", cfg->console_bind, kn_console_port(console));
    }

    char pub[2 * KN_KEY_BYTES + 1];
    kn_keys_public_hex(&keys, pub);
    KN_INFO("kaosnet %s node=%s listening on udp %s:%u (protocol v%u), %lld api workers",
            KAOS_VERSION, cfg->node, cfg->bind, kn_net_port(nets[0]), KN_PROTOCOL_VERSION,
            (long long)cfg->api_workers);
    KN_INFO("server public key %s", pub);
    if (!nc.secure)
        KN_WARN("transport security is OFF: traffic, tokens included, travels in clear");
    /* A line scripts and tests can wait for; clients pin the key it names. */
    KN_INFO("http on %s:%u (/v2/rpc/{id}, /healthz, /metrics)", cfg->http_bind, kn_http_port(http));
    fprintf(stdout, "kaosnet ready udp %s:%u key %s http %u console %u\n", cfg->bind,
            kn_net_port(nets[0]), pub, kn_http_port(http), console ? kn_console_port(console) : 0);
    fflush(stdout);

    for (size_t i = 0; i < n_nets; i++)
        running_nets[i] = nets[i];
    n_running = (sig_atomic_t)n_nets;
    install_signals();
    /* This thread runs the first net; the others get a thread each. A
     * signal stops them all; each drains its own connections. */
    for (; n_net_threads + 1 < n_nets; n_net_threads++)
        if (pthread_create(&net_threads[n_net_threads], NULL, net_thread_main,
                           nets[n_net_threads + 1]) != 0) {
            KN_ERROR("cannot start network thread %zu", n_net_threads + 1);
            for (size_t i = 0; i < n_nets; i++)
                kn_net_stop(nets[i]);
            rc = KN_ERR_INTERNAL;
            break;
        }
    int rc0 = kn_net_run(nets[0]);
    for (size_t i = 1; i < n_nets; i++)
        kn_net_stop(nets[i]); /* whatever stopped the first */
    for (size_t i = 0; i < n_net_threads; i++)
        pthread_join(net_threads[i], NULL);
    if (rc == KN_OK) rc = rc0;
    n_running = 0;

done:
    /* HTTP first: its handlers wait on workers, which must still be running. */
    kn_console_stop(console);
    kn_http_stop(http);
    lb_scheduler_stop(&lbsched);
    /* Workers finish their jobs and post completions into the net's outbox;
     * destroying the net afterwards runs (and frees) every one of them. */
    reloader_stop(&rl);
    kn_matchmaker_destroy(mm); /* its thread waits on workers (the matched hook) */
    party_wire.mm = NULL;      /* the sessions' ends below no longer reach it */
    matchmaker_lua.mm = NULL;
    /* Queued RPCs (kaos.rpc_call_async) still run in the drain; new ones
     * are refused from here, so none reaches the pool being freed. */
    kn_rpc_async_close(rpc);
    pthread_mutex_lock(&cglue.api_mu); /* the bus's re-check queues no more */
    cglue.api = NULL;
    pthread_mutex_unlock(&cglue.api_mu);
    kn_api_destroy(api);
    /* After the workers (they create matches), before the VMs' host. */
    kn_match_engine_destroy(matches);
    /* Before the nets and the session registry its deliveries reach; the
     * HTTP counters that read it stopped above. */
    cluster_stop(&cglue);
    if (mw) kn_match_wire_attach_engine(mw, NULL);
    for (int i = 0; i < 64; i++)
        kn_runtime_slot_destroy(slots[i]);
    kn_runtime_host_destroy(host);
    kn_runtime_destroy(runtime);
    for (size_t i = 0; i < n_nets; i++)
        kn_net_destroy(nets[i]);
    kn_net_shared_destroy(shared);
    if (enet_up) kn_net_global_deinit();
    kn_gateway_destroy(gw);
    kn_match_wire_destroy(mw);
    kn_rpc_destroy(rpc);
    kn_sessions_destroy(sessions);
    kn_status_destroy(status);
    kn_parties_destroy(parties);
    kn_groups_listen(NULL); /* the workers, its only callers, have stopped */
    kn_chat_destroy(chat);
    kn_tracker_destroy(tracker);
    kn_out_destroy(out);
    kn_lockout_destroy(account_lock);
    kn_lockout_destroy(address_lock);
    kn_auth_destroy(auth);
    kn_db_close(leaderboard_lua.db);
    kn_leaderboards_destroy(lbs);
    kn_session_store_destroy(store);
    kn_keys_wipe(&keys);
    if (rc)
        KN_ERROR("server stopped: %s", kn_err_text(rc));
    else
        KN_INFO("server stopped cleanly");
    return rc;
}
