/* gateway: per-connection sessions, the route table, worker jobs.
 *
 * Threads: everything here runs on the net thread except run_job, which runs
 * on an API worker and touches only its job (owned by it while it runs), and
 * kn_gateway_end_sessions / kn_gateway_rpc_blocking, which only post work.
 *
 * Ending sessions (logout, account deletion, bans) happens here, on the net
 * thread, in end_sessions_now: every connection bound to the user (or to one
 * session of it) is unbound and, for a ban or a deletion, closed with
 * DISCONNECT_BANNED; each session id goes into the revocation set so its
 * token cannot be resumed. Postgres stays the source of truth (a resume
 * checks kn_account_session_valid); the set answers the races the database
 * cannot see, and `ended` refuses a login or resume that read Postgres just
 * before a ban or deletion committed but completes after the walk. */
#include "kn_gateway.h"
#include "kn_account.h"
#include "kn_api.h"
#include "kn_auth.h"
#include "kn_codec.h"
#include "kn_codec_json.h"
#include "kn_error.h"
#include "kn_limits.h"
#include "kn_log.h"
#include "kn_map.h"
#include "kn_match.h"
#include "kn_mem.h"
#include "kn_relay.h"
#include "kn_runtime.h"
#include "kn_storage.h"
#include "kn_time.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct session {
    kn_conn_id id;
    char address[80];
    char address_key[24]; /* "addr:<ip>" for the lockout table */
    bool authenticated;
    char user_id[37];
    char username[129];
    char session_id[37];
    int64_t expires_at;
    kn_token_claims vars; /* only .vars used: the session variables */
    struct {              /* authoritative matches this connection is in */
        uint32_t handle, slot;
    } am[8];
    size_t n_am;
} session;

/* What the shards (one gateway per network thread) share. Relayed matches
 * span shards: the relay is used under relay_lock, and its sends to another
 * shard's connections are posted to that shard's net. */
typedef struct gw_group {
    pthread_mutex_t relay_lock;
    kn_relay *relay;
    kn_gateway *relay_caller; /* under relay_lock: the shard calling the relay */
    atomic_uint_fast64_t shed_joins; /* any thread reads it (kn_gateway_shed_joins) */
    /* One revocation set and one record of ended users for every shard (a
     * token revoked on one thread must not resume on another); rarely
     * touched: ends, resumes and logins completing, a sweep a minute. */
    pthread_mutex_t ends_lock;
    kn_map revoked; /* hash(session id) -> pack(its token's expiry (s), why) */
    kn_map ended;   /* hash(user id) -> pack(monotonic ms of a ban or deletion, why) */
    size_t n;
    kn_gateway **shards; /* [0] is the gateway kn_gateway_create returned */
} gw_group;

struct kn_gateway {
    kn_gateway_deps deps;
    gw_group *g;
    uint16_t shard;
    kn_net *net;
    kn_match_engine *matches; /* authoritative matches (NULL = none) */
    bool took_env;            /* a net-thread handler kept the request (moved it to a job) */
    bool before_done;         /* the route runs after its before hook already ran */
    int64_t next_sweep_ms;
    bool stopping;
    atomic_size_t jobs_in_flight; /* submitted, completion not yet run */
    kn_gateway_stats st;
    struct {                 /* the reply of a net-thread route, kept for its after hook */
        bool on, error;
        kn_conn_id conn;
        uint32_t cid;
        uint8_t *bytes;
        size_t len;
    } tap;
};

typedef enum {
    JOB_OP,     /* (before hook,) the operation, reply */
    JOB_BEFORE, /* before hook of a net-thread route, which then runs on the net thread */
    JOB_AFTER,  /* after hook, once the reply has gone */
} job_kind;

typedef struct job {
    job_kind kind;
    bool before;   /* run the before hook first */
    bool ok;       /* the reply is not an Error */
    bool proceed;  /* JOB_BEFORE passed: continue the route on the net thread */
    uint8_t channel;
    kn_gateway *gw;
    kn_conn_id conn;
    uint32_t cid;
    char address_key[24];
    char address[80];
    char user_id[37], username[129], session_id[37]; /* the caller, for script contexts */
    int64_t expires_at;                               /* the caller's session token expiry */
    kn_token_claims vars;                             /* the caller's session vars (only .vars) */
    kn_envelope *req;
    uint8_t *reply;
    size_t reply_len;
    int64_t submitted_ms;    /* monotonic, when the net thread queued it */
    bool bind;               /* reply is a Session: bind it to the connection */
    bool resume;             /* a SessionResume whose token verified (session.claims are its) */
    bool end;                /* the operation ended sessions (end_why): end them on the net thread */
    kn_session_end end_why;
    kn_auth_session session; /* filled by the worker when bind (and for a resume) */
} job;

/* A route: who may send a message type, on which channels, and its handler. */
typedef enum { RUN_NET, RUN_API } run_on;
typedef struct route {
    bool pre_auth;     /* allowed before authentication */
    bool login;        /* a login attempt: refused while the address is locked out */
    uint8_t channels;  /* bit mask of allowed channels */
    run_on where;
    void (*handle)(kn_gateway *gw, session *s, uint8_t channel, kn_envelope *env);
} route;

#define CH_CONTROL (1u << KN_CHANNEL_CONTROL)
#define CH_MATCH ((1u << KN_CHANNEL_MATCH_RELIABLE) | (1u << KN_CHANNEL_MATCH_UNRELIABLE))

/* --- replies ---------------------------------------------------------------- */

static void send_env(kn_gateway *gw, kn_conn_id conn, const kn_envelope *env)
{
    uint8_t stack[2048];
    size_t n = kn_envelope_packed_size(env);
    uint8_t *buf = n <= sizeof stack ? stack : kn_malloc(n);
    if (!buf) return;
    kn_envelope_pack(env, buf);
    if (gw->tap.on && !gw->tap.bytes && conn == gw->tap.conn && env->cid == gw->tap.cid) {
        gw->tap.bytes = kn_malloc(n ? n : 1);
        if (gw->tap.bytes) memcpy(gw->tap.bytes, buf, n);
        gw->tap.len = n;
        gw->tap.error = env->message_case == KAOS__V1__ENVELOPE__MESSAGE_ERROR;
    }
    kn_net_send(gw->net, conn, KN_CHANNEL_CONTROL, buf, n, true);
    if (buf != stack) kn_free(buf);
}

static void fill_error(kn_envelope *env, Kaos__V1__Error *err, uint32_t cid, int rc,
                       const char *msg)
{
    kaos__v1__error__init(err);
    err->code = (Kaos__V1__ErrorCode)kn_err_to_wire(rc);
    err->message = (char *)(msg && *msg ? msg : kn_err_text(rc));
    kaos__v1__envelope__init(env);
    env->cid = cid;
    env->message_case = KAOS__V1__ENVELOPE__MESSAGE_ERROR;
    env->error = err;
}

static void send_error(kn_gateway *gw, kn_conn_id conn, uint32_t cid, int rc, const char *msg)
{
    kn_envelope env;
    Kaos__V1__Error err;
    fill_error(&env, &err, cid, rc, msg);
    gw->st.errors++;
    send_env(gw, conn, &env);
}

static void send_ack(kn_gateway *gw, kn_conn_id conn, uint32_t cid)
{
    Kaos__V1__Ack ack = KAOS__V1__ACK__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = cid;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_ACK;
    env.ack = &ack;
    send_env(gw, conn, &env);
}

/* --- failed-login lockout ------------------------------------------------------ */

/* 0 when allowed; else writes the refusal and returns RESOURCE_EXHAUSTED. */
static int locked(kn_lockout *l, const char *key, char *msg, size_t cap)
{
    int64_t left = kn_lockout_check(l, key, kn_time_mono_ms());
    if (!left) return KN_OK;
    snprintf(msg, cap, "too many failed logins; try again in %lld s", (long long)(left + 999) / 1000);
    return KN_ERR_RESOURCE_EXHAUSTED;
}

/* Any thread: count a failed login for the address and, if known, the account. */
static void login_failed(kn_gateway *gw, const char *address_key, const char *account_key)
{
    int64_t now = kn_time_mono_ms();
    if (account_key && kn_lockout_fail(gw->deps.account_lockout, account_key, now))
        KN_WARN("login locked for an account after repeated failures");
    if (kn_lockout_fail(gw->deps.address_lockout, address_key, now))
        KN_WARN("logins locked for %s after repeated failures", address_key);
}

/* --- sessions --------------------------------------------------------------- */

/* The maps `revoked` and `ended` keep a time and a kn_session_end in one
 * value (times are positive, so a value is never NULL). */
#define ENDED_KEEP_MS 300000 /* far longer than a job waits in the queue */

static void *pack(int64_t t, kn_session_end why)
{
    return (void *)(intptr_t)(t * 4 + (int64_t)why);
}

static int64_t packed_time(const void *v)
{
    return (int64_t)(intptr_t)v / 4;
}

static kn_session_end packed_why(const void *v)
{
    return (kn_session_end)((intptr_t)v % 4);
}

/* User ids compare in lower case (Lua may pass upper-case hex). */
static uint64_t user_key(const char *user_id)
{
    char low[37];
    size_t i = 0;
    for (; user_id[i] && i < sizeof low - 1; i++)
        low[i] = (char)(user_id[i] >= 'A' && user_id[i] <= 'Z' ? user_id[i] + 32 : user_id[i]);
    low[i] = '\0';
    return kn_map_key_str(low);
}

/* Drops the entries whose time has passed (expired tokens need no
 * revocation; old bans no race). */
static void sweep_map(kn_map *m, int64_t now, int64_t keep)
{
    for (size_t i = 0; i < m->cap;) {
        kn_map_entry *e = &m->slots[i];
        if (e->key && packed_time(e->value) + keep <= now) kn_map_del(m, e->key);
        else i++; /* a delete may shift a later entry into slot i: look again */
    }
}

/* Net thread, once a minute. */
static void sweep_revoked(kn_gateway *gw, int64_t now_ms)
{
    if (now_ms < gw->next_sweep_ms) return;
    gw->next_sweep_ms = now_ms + 60000;
    pthread_mutex_lock(&gw->g->ends_lock);
    sweep_map(&gw->g->revoked, kn_time_wall_ms() / 1000, 0);
    sweep_map(&gw->g->ended, kn_time_mono_ms(), ENDED_KEEP_MS);
    pthread_mutex_unlock(&gw->g->ends_lock);
}

/* Net thread: the session's token can no longer be resumed. */
static void revoke(kn_gateway *gw, const char *session_id, int64_t expires_at, kn_session_end why)
{
    if (expires_at <= 0) expires_at = 1;
    pthread_mutex_lock(&gw->g->ends_lock);
    int rc = kn_map_put(&gw->g->revoked, kn_map_key_str(session_id), pack(expires_at, why));
    pthread_mutex_unlock(&gw->g->ends_lock);
    if (rc)
        KN_WARN("out of memory recording a revoked session; only Postgres refuses its resume now");
}

static const char *revoked_text(kn_session_end why)
{
    switch (why) {
    case KN_SESSION_END_BAN: return "session token revoked (account banned)";
    case KN_SESSION_END_DELETE: return "session token revoked (account deleted)";
    default: return "session token revoked (logged out)";
    }
}

static void bind_claims(kn_gateway *gw, session *s, const kn_token_claims *c)
{
    if (!s->authenticated) gw->st.sessions_current++;
    s->authenticated = true;
    memcpy(s->user_id, c->user_id, sizeof s->user_id);
    memcpy(s->username, c->username, sizeof s->username);
    memcpy(s->session_id, c->session_id, sizeof s->session_id);
    s->expires_at = c->expires_at;
    kn_token_claims_deinit(&s->vars);
    if (kn_token_claims_set_vars(&s->vars, c->vars, c->var_count))
        KN_WARN("out of memory keeping session vars; scripts see none for this connection");
    kn_net_set_authenticated(gw->net, s->id);
}

static void unbind(kn_gateway *gw, session *s)
{
    if (s->authenticated) gw->st.sessions_current--;
    s->authenticated = false;
}

typedef struct end_walk {
    kn_gateway *gw;
    const char *user_id;
    const char *session_id; /* NULL = every session of the user */
    kn_session_end why;
    kn_conn_id spare; /* unbound but not closed (the connection that deleted its account) */
} end_walk;

static void end_one(void *arg, kn_conn_id id, void *conn_data)
{
    end_walk *w = arg;
    session *s = conn_data;
    if (!s || !s->authenticated || strcasecmp(s->user_id, w->user_id)) return;
    if (w->session_id && strcasecmp(s->session_id, w->session_id)) return;
    revoke(w->gw, s->session_id, s->expires_at, w->why);
    unbind(w->gw, s); /* nothing it still sends counts as the user's */
    if (w->why != KN_SESSION_END_LOGOUT && id != w->spare)
        kn_net_close(w->gw->net, id, KAOS__V1__DISCONNECT_REASON__DISCONNECT_BANNED);
}

/* Net thread: ends the sessions of user_id bound to connections (only
 * session_id's when not NULL). A ban or deletion is also remembered for a
 * while, so a bind already in flight for the user is refused (check_ended). */
static void end_sessions_now(kn_gateway *gw, const char *user_id, const char *session_id,
                             kn_session_end why, kn_conn_id spare)
{
    if (why != KN_SESSION_END_LOGOUT) {
        pthread_mutex_lock(&gw->g->ends_lock);
        int rc = kn_map_put(&gw->g->ended, user_key(user_id), pack(kn_time_mono_ms(), why));
        pthread_mutex_unlock(&gw->g->ends_lock);
        if (rc) KN_WARN("out of memory remembering a ban; a login racing with it may bind");
    }
    end_walk w = {gw, user_id, session_id, why, spare};
    kn_net_foreach(gw->net, end_one, &w);
}

/* Ending sessions on a shard: posted to its net thread, which walks its
 * own connections (the revocation set is shared). */
typedef struct end_request {
    kn_gateway *gw;
    char user_id[37];
    char session_id[37]; /* "" = all of the user's */
    kn_session_end why;
} end_request;

static void run_end_request(void *arg)
{
    end_request *r = arg;
    end_sessions_now(r->gw, r->user_id, r->session_id[0] ? r->session_id : NULL, r->why, 0);
    kn_free(r);
}

/* Posts the end to shard `to`; KN_OK or the post's error. */
static int post_end(kn_gateway *to, const char *user_id, const char *session_id,
                    kn_session_end why)
{
    end_request *r = kn_calloc(1, sizeof *r);
    if (!r) return KN_ERR_NOMEM;
    r->gw = to;
    snprintf(r->user_id, sizeof r->user_id, "%s", user_id);
    snprintf(r->session_id, sizeof r->session_id, "%s", session_id ? session_id : "");
    r->why = why;
    int rc = kn_net_post_fn(to->net, run_end_request, r);
    if (rc) kn_free(r);
    return rc;
}

/* Net thread of gw, for a worker's completion: revoke (a logout's session,
 * when revoke_expires: its token, also if no connection holds it) and end
 * here at once; the other shards by posts. */
static void end_sessions_all(kn_gateway *gw, const char *user_id, const char *session_id,
                             kn_session_end why, kn_conn_id spare, int64_t revoke_expires)
{
    if (revoke_expires) revoke(gw, session_id, revoke_expires, why);
    end_sessions_now(gw, user_id, session_id, why, spare);
    for (size_t i = 0; i < gw->g->n; i++) {
        kn_gateway *other = gw->g->shards[i];
        if (other != gw && post_end(other, user_id, session_id, why))
            KN_WARN("could not reach network thread %zu to end the sessions of %s", i, user_id);
    }
}

static void relay_lock(kn_gateway *gw)
{
    pthread_mutex_lock(&gw->g->relay_lock);
    gw->g->relay_caller = gw;
}

static void relay_unlock(kn_gateway *gw)
{
    gw->g->relay_caller = NULL;
    pthread_mutex_unlock(&gw->g->relay_lock);
}

static void member_of(const session *s, kn_relay_member *m)
{
    memset(m, 0, sizeof *m);
    m->conn = s->id;
    memcpy(m->user_id, s->user_id, sizeof m->user_id);
    memcpy(m->session_id, s->session_id, sizeof m->session_id);
    memcpy(m->username, s->username, sizeof m->username);
}

/* --- net-thread handlers ------------------------------------------------------ */

static void handle_ping(kn_gateway *gw, session *s, uint8_t channel, kn_envelope *env)
{
    Kaos__V1__Pong pong = KAOS__V1__PONG__INIT;
    pong.client_time_ms = env->ping->client_time_ms;
    pong.server_time_ms = (uint64_t)kn_time_wall_ms();
    kn_envelope out = KN_ENVELOPE_INIT;
    out.cid = env->cid;
    out.message_case = KAOS__V1__ENVELOPE__MESSAGE_PONG;
    out.pong = &pong;
    send_env(gw, s->id, &out);
}

static void send_match(kn_gateway *gw, session *s, uint32_t cid, const kn_relay_joined *j)
{
    Kaos__V1__Presence self, *others_store[64], **others = others_store;
    Kaos__V1__Presence others_p_store[64], *others_p = others_p_store;
    if (j->other_count > 64) {
        others = kn_calloc(j->other_count, sizeof *others);
        others_p = kn_calloc(j->other_count, sizeof *others_p);
        if (!others || !others_p) goto done;
    }
    kaos__v1__presence__init(&self);
    self.slot = j->self->slot;
    self.user_id = (char *)j->self->user_id;
    self.session_id = (char *)j->self->session_id;
    self.username = (char *)j->self->username;
    for (size_t i = 0; i < j->other_count; i++) {
        kaos__v1__presence__init(&others_p[i]);
        others_p[i].slot = j->others[i].slot;
        others_p[i].user_id = (char *)j->others[i].user_id;
        others_p[i].session_id = (char *)j->others[i].session_id;
        others_p[i].username = (char *)j->others[i].username;
        others[i] = &others_p[i];
    }
    Kaos__V1__Match m = KAOS__V1__MATCH__INIT;
    m.match_id = (char *)j->match_id;
    m.match = j->handle;
    m.size = j->size;
    m.max_size = j->max_size;
    m.self = &self;
    m.n_presences = j->other_count;
    m.presences = others;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = cid;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH;
    env.match = &m;
    send_env(gw, s->id, &env);
done:
    if (others != others_store) kn_free(others);
    if (others_p != others_p_store) kn_free(others_p);
}

/* --- authoritative match membership (net thread) --------------------------------- */

static int am_find(const session *s, uint32_t handle)
{
    for (size_t i = 0; i < s->n_am; i++)
        if (s->am[i].handle == handle) return (int)i;
    return -1;
}

static void am_remove(session *s, uint32_t handle)
{
    int i = am_find(s, handle);
    if (i < 0) return;
    s->am[i] = s->am[--s->n_am];
}

static kn_match_presence presence_of(const session *s)
{
    kn_match_presence p = {.conn = s->id};
    memcpy(p.user_id, s->user_id, sizeof p.user_id);
    memcpy(p.session_id, s->session_id, sizeof p.session_id);
    memcpy(p.username, s->username, sizeof p.username);
    return p;
}

/* A match thread's outgoing batch, in order, posted to every shard that
 * has a connection in it; each sends to its own connections (kn_net skips
 * other shards' ids) and the last one done frees the batch. */
typedef struct batch_post {
    kn_match_batch *b;
    atomic_int refs;
} batch_post;

typedef struct batch_ref {
    kn_gateway *gw;
    batch_post *bp;
} batch_ref;

static void deliver(void *arg)
{
    batch_ref *ref = arg;
    kn_gateway *gw = ref->gw;
    batch_post *bp = ref->bp;
    kn_free(ref);
    for (size_t i = 0; i < kn_match_batch_count(bp->b); i++) {
        const kn_match_out *o = kn_match_batch_get(bp->b, i);
        if (o->kind == KN_MATCH_OUT_SEND) {
            kn_net_send_many(gw->net, o->conns, o->n_conns, o->channel, o->data, o->len, o->reliable);
            continue;
        }
        if (kn_conn_shard(o->conns[0]) != gw->shard) continue;
        session *s = kn_net_conn_data(gw->net, o->conns[0]);
        if (o->kind == KN_MATCH_OUT_LEFT) {
            if (s) am_remove(s, o->handle);
        } else if (s && s->authenticated && s->n_am < 8 && am_find(s, o->handle) < 0) {
            s->am[s->n_am].handle = o->handle;
            s->am[s->n_am++].slot = o->slot;
        } else {
            kn_match_leave(gw->matches, o->handle, o->conns[0]); /* gone meanwhile */
        }
    }
    if (atomic_fetch_sub(&bp->refs, 1) == 1) {
        kn_match_batch_free(bp->b);
        kn_free(bp);
    }
}

void kn_gateway_match_out(void *ud, kn_match_batch *b)
{
    gw_group *g = ((kn_gateway *)ud)->g;
    /* The shards with a connection in the batch (one pass over its ids). */
    uint64_t mask = 0;
    size_t count = kn_match_batch_count(b);
    for (size_t i = 0; i < count && g->n > 1; i++) {
        const kn_match_out *o = kn_match_batch_get(b, i);
        for (size_t k = 0; k < o->n_conns; k++) mask |= 1ULL << (kn_conn_shard(o->conns[k]) & 63);
    }
    if (g->n == 1) mask = 1;
    batch_post *bp = kn_malloc(sizeof *bp);
    if (!bp) {
        KN_WARN("match traffic dropped: out of memory");
        kn_match_batch_free(b);
        return;
    }
    bp->b = b;
    atomic_init(&bp->refs, 1); /* ours, until every post is made */
    for (size_t k = 0; k < g->n; k++) {
        if (!(mask & (1ULL << k))) continue;
        batch_ref *ref = kn_malloc(sizeof *ref);
        if (ref) {
            ref->gw = g->shards[k];
            ref->bp = bp;
            atomic_fetch_add(&bp->refs, 1);
        }
        if (!ref || !g->shards[k]->net || kn_net_post_fn(g->shards[k]->net, deliver, ref)) {
            KN_WARN("match traffic dropped: cannot reach network thread %zu", k);
            if (ref) atomic_fetch_sub(&bp->refs, 1);
            kn_free(ref);
        }
    }
    if (atomic_fetch_sub(&bp->refs, 1) == 1) {
        kn_match_batch_free(b);
        kn_free(bp);
    }
}

/* MatchJoin metadata (a string map) as a JSON object; NULL on failure. */
static char *metadata_json(const Kaos__V1__MatchJoin *j, size_t *len)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < j->n_metadata; i++) {
        json_t *v = json_string(j->metadata[i]->value);
        if (!v || json_object_set_new(o, j->metadata[i]->key, v)) {
            json_decref(o);
            o = NULL;
        }
    }
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *out = txt ? kn_strndup(txt, strlen(txt)) : NULL;
    free(txt);
    *len = out ? strlen(out) : 0;
    return out;
}

static void handle_api(kn_gateway *gw, session *s, uint8_t channel, kn_envelope *env);

/* Admission control for the network thread: while it is overloaded, new
 * matches and joins are refused so the players already in keep their ticks. */
static bool shed_join(kn_gateway *gw, session *s, uint32_t cid)
{
    if (!kn_net_overloaded(gw->net)) return false;
    atomic_fetch_add_explicit(&gw->g->shed_joins, 1, memory_order_relaxed);
    send_error(gw, s->id, cid, KN_ERR_UNAVAILABLE, "server overloaded; try again later");
    return true;
}

static void handle_match_create(kn_gateway *gw, session *s, uint8_t channel, kn_envelope *env)
{
    if (shed_join(gw, s, env->cid)) return;
    if (*env->match_create->handler) {
        /* Authoritative: match_init runs Lua, so on a worker. */
        if (!gw->matches) {
            send_error(gw, s->id, env->cid, KN_ERR_UNIMPLEMENTED, "authoritative matches are off");
            return;
        }
        if (s->n_am == 8) {
            send_error(gw, s->id, env->cid, KN_ERR_RESOURCE_EXHAUSTED, "in too many matches");
            return;
        }
        gw->took_env = true;
        handle_api(gw, s, channel, env);
        return;
    }
    kn_relay_member who;
    member_of(s, &who);
    kn_relay_joined j;
    relay_lock(gw);
    int rc = kn_relay_match_create(gw->g->relay, &who, env->match_create->max_size, &j);
    if (rc == KN_OK) send_match(gw, s, env->cid, &j); /* j points into the relay */
    relay_unlock(gw);
    if (rc) {
        send_error(gw, s->id, env->cid, rc,
                   rc == KN_ERR_INVALID_ARGUMENT ? "max_size out of range"
                   : rc == KN_ERR_RESOURCE_EXHAUSTED ? "in too many matches"
                                                     : NULL);
    }
}

static void handle_match_join(kn_gateway *gw, session *s, uint8_t channel, kn_envelope *env)
{
    if (shed_join(gw, s, env->cid)) return;
    if (gw->matches) {
        size_t len;
        char *md = metadata_json(env->match_join, &len);
        kn_match_presence p = presence_of(s);
        int rc = !md ? KN_ERR_INVALID_ARGUMENT
                 : s->n_am == 8 ? KN_ERR_RESOURCE_EXHAUSTED
                                : kn_match_join(gw->matches, env->match_join->match_id, &p,
                                                env->cid, md, len);
        kn_free(md);
        if (rc != KN_ERR_NOT_FOUND) {
            if (rc)
                send_error(gw, s->id, env->cid, rc,
                           rc == KN_ERR_INVALID_ARGUMENT   ? "metadata must be UTF-8 text"
                           : rc == KN_ERR_RESOURCE_EXHAUSTED ? "in too many matches"
                                                             : "server busy; retry");
            return; /* the answer comes from the match thread */
        }
    }
    kn_relay_member who;
    member_of(s, &who);
    kn_relay_joined j;
    relay_lock(gw);
    int rc = kn_relay_match_join(gw->g->relay, env->match_join->match_id, &who, &j);
    if (rc == KN_OK) send_match(gw, s, env->cid, &j); /* j points into the relay */
    relay_unlock(gw);
    if (rc) {
        const char *why = rc == KN_ERR_NOT_FOUND            ? "match not found"
                          : rc == KN_ERR_RESOURCE_EXHAUSTED ? "match is full"
                          : rc == KN_ERR_ALREADY_EXISTS     ? "already in this match"
                                                            : NULL;
        send_error(gw, s->id, env->cid, rc, why);
    }
}

static void handle_match_leave(kn_gateway *gw, session *s, uint8_t channel, kn_envelope *env)
{
    uint32_t handle = env->match_leave->match;
    if (handle & KN_MATCH_HANDLE_BIT) {
        if (am_find(s, handle) < 0) {
            send_error(gw, s->id, env->cid, KN_ERR_NOT_FOUND, "not in that match");
            return;
        }
        am_remove(s, handle);
        kn_match_leave(gw->matches, handle, s->id);
        send_ack(gw, s->id, env->cid);
        return;
    }
    relay_lock(gw);
    int rc = kn_relay_match_leave(gw->g->relay, handle, s->id);
    relay_unlock(gw);
    if (rc) send_error(gw, s->id, env->cid, rc, "not in that match");
    else send_ack(gw, s->id, env->cid);
}

static void handle_match_data(kn_gateway *gw, session *s, uint8_t channel, kn_envelope *env)
{
    Kaos__V1__MatchDataSend *d = env->match_data_send;
    if (d->match & KN_MATCH_HANDLE_BIT) {
        int i = am_find(s, d->match);
        int rc = i < 0 ? KN_ERR_NOT_FOUND
                       : kn_match_input(gw->matches, d->match, s->am[i].slot, d->op_code,
                                        d->data.data, d->data.len,
                                        channel == KN_CHANNEL_MATCH_RELIABLE);
        if (rc == KN_ERR_NOT_FOUND) send_error(gw, s->id, env->cid, rc, "not in that match");
        return; /* a full inbox drops the input (counted), like an unreliable packet */
    }
    relay_lock(gw);
    int rc = kn_relay_data(gw->g->relay, d->match, s->id, d->op_code, d->data.data, d->data.len,
                           d->targets, d->n_targets, channel,
                           channel == KN_CHANNEL_MATCH_RELIABLE);
    relay_unlock(gw);
    if (rc) send_error(gw, s->id, env->cid, rc, rc == KN_ERR_NOT_FOUND ? "not in that match" : NULL);
}

/* --- worker jobs ---------------------------------------------------------------- */

static const route *route_of(int message_case);
static void run_job(kn_api_worker *w, void *arg);
static void run_route_on_net(kn_gateway *gw, session *s, const route *r, uint8_t channel,
                             kn_envelope *env);

static void free_job(job *j)
{
    kn_envelope_free(j->req);
    kn_free(j->reply);
    kn_auth_session_deinit(&j->session);
    kn_token_claims_deinit(&j->vars);
    kn_free(j);
}

static bool has_hook(kn_gateway *gw, kn_hook_kind kind, int message_case)
{
    return gw->deps.runtime && kn_runtime_host_has_hook(gw->deps.runtime, kind, message_case);
}

/* Net thread: a job for a request of connection s; takes env. NULL when out
 * of memory (env freed). */
static job *new_job(kn_gateway *gw, const session *s, kn_envelope *env, job_kind kind)
{
    job *j = kn_calloc(1, sizeof *j);
    if (!j || kn_token_claims_set_vars(&j->vars, s->vars.vars, s->vars.var_count)) {
        kn_free(j);
        kn_envelope_free(env);
        return NULL;
    }
    j->kind = kind;
    j->gw = gw;
    j->conn = s->id;
    j->cid = env->cid;
    memcpy(j->address_key, s->address_key, sizeof j->address_key);
    memcpy(j->address, s->address, sizeof j->address);
    memcpy(j->user_id, s->user_id, sizeof j->user_id);
    memcpy(j->username, s->username, sizeof j->username);
    memcpy(j->session_id, s->session_id, sizeof j->session_id);
    j->expires_at = s->expires_at;
    j->submitted_ms = kn_time_mono_ms();
    j->req = env;
    return j;
}

/* Net thread: queue j; on failure it is freed and the error is returned. */
static int submit_job(kn_gateway *gw, job *j)
{
    atomic_fetch_add(&gw->jobs_in_flight, 1);
    int rc = kn_api_submit(gw->deps.api, run_job, j);
    if (rc) {
        atomic_fetch_sub(&gw->jobs_in_flight, 1);
        free_job(j);
        gw->st.api_busy++;
    }
    return rc;
}

/* Net thread: the reply went out; hand request and reply to the after hook.
 * Takes j (its req and reply). */
static void queue_after(kn_gateway *gw, job *j)
{
    j->kind = JOB_AFTER;
    if (submit_job(gw, j))
        KN_WARN("after hook of %s skipped: API queue full", kn_envelope_type_name((int)j->req->message_case));
}

/* Net thread: replaces the worker's answer with a refusal. */
static void refuse(kn_gateway *gw, job *j, int rc, const char *msg)
{
    kn_envelope env;
    Kaos__V1__Error err;
    fill_error(&env, &err, j->cid, rc, msg);
    kn_free(j->reply);
    if (kn_envelope_encode(&env, &j->reply, &j->reply_len)) j->reply = NULL;
    j->bind = false;
    j->ok = false;
    gw->st.errors++;
}

/* Net thread: the token of a resume names a session the gateway revoked
 * (before the worker looked, or while it did): that wins over what the
 * worker found, and its message says why. */
static void check_resume(kn_gateway *gw, job *j)
{
    pthread_mutex_lock(&gw->g->ends_lock);
    void *v = kn_map_get(&gw->g->revoked, kn_map_key_str(j->session.claims.session_id));
    pthread_mutex_unlock(&gw->g->ends_lock);
    if (!v) return;
    if (j->ok) login_failed(gw, j->address_key, NULL); /* a refusal was counted by the worker */
    refuse(gw, j, KN_ERR_UNAUTHENTICATED, revoked_text(packed_why(v)));
}

/* Net thread: a login, refresh or resume queued before its user's sessions
 * were ended by a ban or deletion may have read Postgres before that
 * committed; binding it now would leave a connection nobody closes. Jobs
 * queued after the walk read Postgres after the commit and need no check. */
static void check_ended(kn_gateway *gw, job *j)
{
    pthread_mutex_lock(&gw->g->ends_lock);
    void *v = kn_map_get(&gw->g->ended, user_key(j->session.claims.user_id));
    pthread_mutex_unlock(&gw->g->ends_lock);
    if (!v || j->submitted_ms > packed_time(v)) return;
    if (packed_why(v) == KN_SESSION_END_BAN)
        refuse(gw, j, KN_ERR_PERMISSION_DENIED, "account is banned");
    else
        refuse(gw, j, KN_ERR_UNAUTHENTICATED, "user no longer exists");
}

/* Net thread: an answer larger than the largest message (a storage read of
 * big objects, a long RPC result) cannot be sent: ENet refuses it, and on
 * the ordered control channel that would end the connection. The client
 * gets an error instead and can ask for less. */
static void check_size(kn_gateway *gw, job *j)
{
    size_t max = gw->deps.max_message_size;
    if (!j->reply || !max || j->reply_len <= max) return;
    char msg[160];
    snprintf(msg, sizeof msg,
             "the answer is %zu bytes, more than the largest message (%zu, max_message_size); "
             "ask for less",
             j->reply_len, max);
    KN_WARN("conn %llx: %s answer of %zu bytes refused (max_message_size %zu)",
            (unsigned long long)j->conn, kn_envelope_type_name((int)j->req->message_case),
            j->reply_len, max);
    refuse(gw, j, KN_ERR_RESOURCE_EXHAUSTED, msg);
}

/* Net thread: deliver the worker's answer if the connection is still there. */
static void complete_job(void *arg)
{
    job *j = arg;
    kn_gateway *gw = j->gw;
    session *s = kn_net_conn_data(gw->net, j->conn);
    if (j->proceed) {
        /* The before hook let a net-thread request through: run it now, if
         * the connection is still there and still allowed to send it. */
        const route *r = route_of((int)j->req->message_case);
        if (s && r && (r->pre_auth || s->authenticated)) {
            gw->before_done = true;
            run_route_on_net(gw, s, r, j->channel, j->req);
            gw->before_done = false;
            j->req = NULL;
        }
        atomic_fetch_sub(&gw->jobs_in_flight, 1);
        free_job(j);
        return;
    }
    if (j->resume) check_resume(gw, j);
    if (j->bind) check_ended(gw, j);
    check_size(gw, j);
    if (s && j->bind) bind_claims(gw, s, &j->session.claims);
    if (s && j->reply) kn_net_send(gw->net, j->conn, KN_CHANNEL_CONTROL, j->reply, j->reply_len, true);
    if (j->end && j->end_why == KN_SESSION_END_LOGOUT) {
        /* The token stays verifiable until it expires: remember it is dead,
         * also when this connection has gone, and unbind every connection
         * that resumed the same session. */
        end_sessions_all(gw, j->user_id, j->session_id, KN_SESSION_END_LOGOUT, 0,
                         j->expires_at);
    } else if (j->end) {
        /* The account is gone: this connection (which got the Ack) stays
         * open, unauthenticated; the user's others are closed. */
        end_sessions_all(gw, j->user_id, NULL, j->end_why, j->conn, 0);
    }
    atomic_fetch_sub(&gw->jobs_in_flight, 1);
    if (j->ok && j->reply && has_hook(gw, KN_HOOK_AFTER, (int)j->req->message_case)) {
        queue_after(gw, j);
        return;
    }
    free_job(j);
}

/* Views a protobuf string map as kn_token_vars (no allocation). */
#define VARS_VIEW(dst, src, n)                                                                     \
    for (size_t i_ = 0; i_ < (n); i_++) {                                                          \
        (dst)[i_].key = (src)[i_]->key;                                                            \
        (dst)[i_].value = (src)[i_]->value;                                                        \
    }

static void encode_reply(job *j, int rc, const char *msg)
{
    kn_envelope env;
    Kaos__V1__Error err;
    Kaos__V1__Session sess = KAOS__V1__SESSION__INIT;
    if (rc) {
        fill_error(&env, &err, j->cid, rc, msg);
    } else {
        sess.token = j->session.token;
        sess.refresh_token = j->session.refresh_token ? j->session.refresh_token : ""; /* resume */
        sess.created = j->session.created;
        sess.user_id = j->session.claims.user_id;
        sess.username = j->session.claims.username;
        sess.session_id = j->session.claims.session_id;
        kaos__v1__envelope__init(&env);
        env.cid = j->cid;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_SESSION;
        env.session = &sess;
        j->bind = true;
    }
    if (kn_envelope_encode(&env, &j->reply, &j->reply_len)) j->bind = false;
    j->ok = rc == KN_OK;
}

static void post_completion(kn_gateway *gw, job *j)
{
    if (kn_net_post_fn(gw->net, complete_job, j)) {
        /* Cannot reach the net thread (out of memory): drop the answer. */
        atomic_fetch_sub(&gw->jobs_in_flight, 1);
        free_job(j);
    }
}

/* Worker thread: what scripts called on this worker use (its connection). */
static kn_runtime_services services_of(kn_gateway *gw, kn_api_worker *w)
{
    (void)gw;
    return (kn_runtime_services){w->db};
}

/* Worker thread: an RPC by id — a built-in one in C ("kaos." ids), else the
 * runtime's. */
static int call_rpc(kn_api_worker *w, const kn_runtime_context *ctx, const char *id,
                    const char *payload, size_t len, char **out, size_t *out_len, char *msg,
                    size_t cap)
{
    if (!strcmp(id, "kaos.noop")) { /* the C ceiling of the RPC path (bench/api) */
        *out = kn_strndup("", 0);
        *out_len = 0;
        return *out ? KN_OK : KN_ERR_NOMEM;
    }
    kn_runtime_vm *vm = w->ctx ? kn_runtime_slot_vm(w->ctx) : NULL;
    if (vm) return kn_runtime_rpc(vm, ctx, id, payload, len, out, out_len, msg, cap);
    snprintf(msg, cap, "rpc \"%s\" not found", id);
    return KN_ERR_NOT_FOUND;
}

static kn_runtime_context job_context(const job *j, const char *mode,
                                      const kn_runtime_services *svc);

static void run_rpc(kn_api_worker *w, job *j, char *msg, size_t cap)
{
    Kaos__V1__Rpc *req = j->req->rpc;
    kn_runtime_services svc = services_of(j->gw, w);
    kn_runtime_context ctx = job_context(j, "rpc", &svc);
    char *out = NULL;
    size_t out_len = 0;
    int rc = call_rpc(w, &ctx, req->id, req->payload, strlen(req->payload), &out, &out_len, msg,
                      cap);
    kn_envelope env;
    Kaos__V1__Error err;
    Kaos__V1__Rpc res = KAOS__V1__RPC__INIT;
    if (rc) {
        fill_error(&env, &err, j->cid, rc, msg);
    } else {
        res.id = req->id;
        res.payload = out;
        kaos__v1__envelope__init(&env);
        env.cid = j->cid;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_RPC;
        env.rpc = &res;
    }
    if (kn_envelope_encode(&env, &j->reply, &j->reply_len)) j->reply = NULL;
    j->ok = rc == KN_OK;
    kn_free(out);
    post_completion(j->gw, j);
}

/* Worker thread. */
/* The login requests share one shape: an account key for the lockout, the
 * session variables, and a service call. */
typedef struct login {
    char account[300];
    kn_token_var vars[KN_TOKEN_MAX_VARS];
    size_t n_vars;
    bool too_many_vars;
} login;

/* Views a request's vars map as kn_token_vars (no copies). */
#define LOGIN_VARS(l, msg)                                                                         \
    do {                                                                                           \
        (l).too_many_vars = (msg)->n_vars > KN_TOKEN_MAX_VARS;                                     \
        (l).n_vars = (l).too_many_vars ? 0 : (msg)->n_vars;                                        \
        VARS_VIEW((l).vars, (msg)->vars, (l).n_vars);                                              \
    } while (0)

static int run_login(kn_gateway *gw, kn_api_worker *w, job *j, char *msg, size_t cap)
{
    Kaos__V1__Envelope *e = j->req;
    login l;
    memset(&l, 0, sizeof l);
    switch (e->message_case) {
    case KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE:
        snprintf(l.account, sizeof l.account, "device:%.128s", e->authenticate_device->device_id);
        LOGIN_VARS(l, e->authenticate_device);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_EMAIL:
        snprintf(l.account, sizeof l.account, "email:%.255s", e->authenticate_email->email);
        for (char *p = l.account; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a'); /* emails compare folded */
        LOGIN_VARS(l, e->authenticate_email);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_CUSTOM:
        snprintf(l.account, sizeof l.account, "custom:%.128s", e->authenticate_custom->id);
        LOGIN_VARS(l, e->authenticate_custom);
        break;
    default: return KN_ERR_UNIMPLEMENTED;
    }
    int rc = locked(gw->deps.account_lockout, l.account, msg, cap);
    if (rc) return rc;
    if (l.too_many_vars) {
        snprintf(msg, cap, "at most %d session vars", KN_TOKEN_MAX_VARS);
        return KN_ERR_INVALID_ARGUMENT;
    }
    const kn_token_var *vars = l.vars;
    int64_t now = kn_time_wall_ms() / 1000;
    const kn_auth *auth = gw->deps.auth;
    if (e->message_case == KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE) {
        Kaos__V1__AuthenticateDevice *a = e->authenticate_device;
        rc = kn_auth_device(auth, w->db, a->device_id, a->username, a->create, vars, l.n_vars, now,
                            &j->session, msg, cap);
    } else if (e->message_case == KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_EMAIL) {
        Kaos__V1__AuthenticateEmail *a = e->authenticate_email;
        rc = kn_auth_email(auth, w->db, a->email, a->password, a->username, a->create, vars,
                           l.n_vars, now, &j->session, msg, cap);
    } else {
        Kaos__V1__AuthenticateCustom *a = e->authenticate_custom;
        rc = kn_auth_custom(auth, w->db, a->id, a->username, a->create, vars, l.n_vars, now,
                            &j->session, msg, cap);
    }
    /* Unknown accounts and wrong passwords count; invalid input does not. */
    if (rc == KN_ERR_NOT_FOUND || rc == KN_ERR_UNAUTHENTICATED)
        login_failed(gw, j->address_key, l.account);
    else if (rc == KN_OK)
        kn_lockout_success(gw->deps.account_lockout, l.account);
    return rc;
}

/* Worker thread: MatchListRequest -> MatchList in j->reply. */
static int run_match_list(kn_gateway *gw, job *j, char *msg, size_t cap)
{
    Kaos__V1__MatchListRequest *r = j->req->match_list_request;
    if (!gw->matches) {
        snprintf(msg, cap, "authoritative matches are off");
        return KN_ERR_UNIMPLEMENTED;
    }
    kn_match_list_query q = {.limit = r->limit,
                             .label = r->label,
                             .query = r->query,
                             .min_size = r->min_size > 0 ? r->min_size : -1,
                             .max_size = r->max_size > 0 ? r->max_size : -1};
    kn_match_info *list;
    size_t n;
    int rc = kn_match_list(gw->matches, &q, &list, &n, msg, cap);
    if (rc) return rc;
    Kaos__V1__MatchInfo *infos = n ? kn_calloc(n, sizeof *infos) : NULL;
    Kaos__V1__MatchInfo **ptrs = n ? kn_calloc(n, sizeof *ptrs) : NULL;
    if (n && (!infos || !ptrs)) rc = KN_ERR_NOMEM;
    for (size_t i = 0; rc == KN_OK && i < n; i++) {
        kaos__v1__match_info__init(&infos[i]);
        infos[i].match_id = list[i].match_id;
        infos[i].authoritative = 1;
        infos[i].label = list[i].label ? list[i].label : "";
        infos[i].size = list[i].size;
        infos[i].tick_rate = (uint32_t)list[i].tick_rate;
        infos[i].handler = list[i].handler;
        ptrs[i] = &infos[i];
    }
    if (rc == KN_OK) {
        Kaos__V1__MatchList ml = KAOS__V1__MATCH_LIST__INIT;
        ml.n_matches = n;
        ml.matches = ptrs;
        kn_envelope env = KN_ENVELOPE_INIT;
        env.cid = j->cid;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_LIST;
        env.match_list = &ml;
        rc = kn_envelope_encode(&env, &j->reply, &j->reply_len);
        j->ok = rc == KN_OK;
    }
    kn_free(infos);
    kn_free(ptrs);
    kn_match_list_free(list, n);
    return rc;
}

/* --- hooks (worker thread) ------------------------------------------------------------ */

static kn_runtime_context job_context(const job *j, const char *mode,
                                      const kn_runtime_services *svc)
{
    return (kn_runtime_context){j->user_id, j->username,   j->session_id,      j->address,
                                mode,       j->vars.vars, j->vars.var_count, svc};
}

/* The before hook: KN_OK to go on (j->req possibly rewritten), else the
 * refusal for the client. */
static int run_before(kn_api_worker *w, job *j, char *msg, size_t cap)
{
    kn_runtime_vm *vm = w->ctx ? kn_runtime_slot_vm(w->ctx) : NULL;
    if (!vm) return KN_OK;
    int op = (int)j->req->message_case;
    const char *name = kn_envelope_type_name(op);
    char *req = NULL, *out = NULL;
    size_t req_len = 0, out_len = 0;
    int rc = kn_envelope_body_to_json(j->req, &req, &req_len);
    if (rc) {
        snprintf(msg, cap, "%s request cannot be passed to its hook (strings must be UTF-8)", name);
        return rc == KN_ERR_NOMEM ? rc : KN_ERR_INVALID_ARGUMENT;
    }
    kn_runtime_services svc = services_of(j->gw, w);
    kn_runtime_context ctx = job_context(j, "before", &svc);
    rc = kn_runtime_hook(vm, &ctx, KN_HOOK_BEFORE, op, req, req_len, NULL, 0, &out, &out_len, msg,
                         cap);
    if (rc == KN_OK && out) {
        char why[200];
        if (kn_envelope_body_from_json(j->req, out, out_len, why, sizeof why)) {
            KN_ERROR("before hook of %s returned an invalid request: %s", name, why);
            snprintf(msg, cap, "before hook of %s returned an invalid request", name);
            rc = KN_ERR_INTERNAL;
        }
    }
    kn_free(req);
    kn_free(out);
    return rc;
}

/* The after hook, with the reply the client got. Failures are logged only. */
static void run_after(kn_api_worker *w, job *j)
{
    kn_runtime_vm *vm = w->ctx ? kn_runtime_slot_vm(w->ctx) : NULL;
    kn_envelope *reply = NULL;
    char *req = NULL, *res = NULL, *out = NULL, msg[256] = "";
    size_t req_len = 0, res_len = 0, out_len = 0;
    int op = (int)j->req->message_case;
    if (!vm || kn_envelope_decode(j->reply, j->reply_len, &reply)) goto done;
    if (reply->message_case == KAOS__V1__ENVELOPE__MESSAGE_ACK) {
        res = kn_strndup("{}", 2);
        res_len = 2;
    } else if (kn_envelope_body_to_json(reply, &res, &res_len)) {
        KN_WARN("after hook of %s skipped: the reply has non-UTF-8 text", kn_envelope_type_name(op));
        goto done;
    }
    if (!res || kn_envelope_body_to_json(j->req, &req, &req_len)) goto done;
    kn_runtime_services svc = services_of(j->gw, w);
    kn_runtime_context ctx = job_context(j, "after", &svc);
    int rc = kn_runtime_hook(vm, &ctx, KN_HOOK_AFTER, op, req, req_len, res, res_len, &out,
                             &out_len, msg, sizeof msg);
    if (rc) KN_WARN("after hook of %s: %s", kn_envelope_type_name(op), msg);
done:
    kn_envelope_free(reply);
    kn_free(req);
    kn_free(res);
    kn_free(out);
}

/* --- session resume and the account service (worker thread) ----------------------- */

/* SessionResume: the token must verify and its session still be live in
 * Postgres (not logged out, superseded by a refresh, banned or deleted, also
 * across restarts); the completion then checks the revocation set. */
static int run_resume(kn_gateway *gw, kn_api_worker *w, job *j, char *msg, size_t cap)
{
    const char *token = j->req->session_resume->token;
    int rc = kn_auth_verify_session(gw->deps.auth, token, kn_time_wall_ms() / 1000,
                                    &j->session.claims);
    if (rc) {
        login_failed(gw, j->address_key, NULL);
        snprintf(msg, cap, "%s",
                 rc == KN_ERR_TOKEN_EXPIRED ? "session token expired" : "session token invalid");
        return rc;
    }
    j->resume = true;
    rc = kn_account_session_valid(w->db, j->session.claims.session_id, j->session.claims.user_id,
                                  msg, cap);
    if (rc == KN_ERR_UNAUTHENTICATED) login_failed(gw, j->address_key, NULL);
    if (rc) return rc;
    j->session.token = kn_strndup(token, strlen(token));
    return j->session.token ? KN_OK : KN_ERR_NOMEM;
}

/* Encodes env as the job's successful reply. */
static int reply_with(job *j, kn_envelope *env)
{
    env->cid = j->cid;
    if (kn_envelope_encode(env, &j->reply, &j->reply_len)) return KN_ERR_NOMEM;
    j->ok = true;
    return KN_OK;
}

static int reply_ack(job *j)
{
    Kaos__V1__Ack ack = KAOS__V1__ACK__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_ACK;
    env.ack = &ack;
    return reply_with(j, &env);
}

static char *text(const char *s)
{
    return (char *)(s ? s : "");
}

/* A kn_user as a User message that borrows its strings. */
static void user_message(Kaos__V1__User *m, const kn_user *u)
{
    kaos__v1__user__init(m);
    m->id = (char *)u->id;
    m->username = text(u->username);
    m->display_name = text(u->display_name);
    m->avatar_url = text(u->avatar_url);
    m->lang_tag = text(u->lang_tag);
    m->location = text(u->location);
    m->timezone = text(u->timezone);
    m->metadata = text(u->metadata);
    m->create_time = u->create_time;
    m->update_time = u->update_time;
}

static int reply_account(kn_api_worker *w, job *j, char *msg, size_t cap)
{
    kn_account a;
    int rc = kn_account_get(w->db, j->user_id, &a, msg, cap);
    if (rc) return rc;
    Kaos__V1__User user;
    user_message(&user, &a.user);
    Kaos__V1__Account acc = KAOS__V1__ACCOUNT__INIT;
    acc.user = &user;
    acc.email = text(a.email);
    acc.custom_id = text(a.custom_id);
    acc.n_device_ids = a.device_count;
    acc.device_ids = a.device_ids;
    acc.disable_time = a.disable_time;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT;
    env.account = &acc;
    rc = reply_with(j, &env);
    kn_account_deinit(&a);
    return rc;
}

static int reply_users(kn_api_worker *w, job *j, char *msg, size_t cap)
{
    Kaos__V1__UsersGet *q = j->req->users_get;
    kn_user *users = NULL;
    size_t n = 0;
    int rc = kn_users_get(w->db, (const char *const *)q->ids, q->n_ids,
                          (const char *const *)q->usernames, q->n_usernames, &users, &n, msg, cap);
    if (rc) return rc;
    Kaos__V1__User *msgs = n ? kn_calloc(n, sizeof *msgs) : NULL;
    Kaos__V1__User **ptrs = n ? kn_calloc(n, sizeof *ptrs) : NULL;
    if (n && (!msgs || !ptrs)) {
        rc = KN_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        user_message(&msgs[i], &users[i]);
        ptrs[i] = &msgs[i];
    }
    Kaos__V1__Users out = KAOS__V1__USERS__INIT;
    out.n_users = n;
    out.users = ptrs;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_USERS;
    env.users = &out;
    rc = reply_with(j, &env);
done:
    kn_free(msgs);
    kn_free(ptrs);
    kn_users_free(users, n);
    return rc;
}

/* An absent OptionalString leaves the field unchanged (NULL). */
static const char *optional(const Kaos__V1__OptionalString *o)
{
    return o ? text(o->value) : NULL;
}

/* The Account*, Link* and Unlink* requests: the service, for the session's
 * own user. KN_OK with the reply encoded, or the error for the client. */
static int run_account(kn_api_worker *w, job *j, char *msg, size_t cap)
{
    kn_envelope *e = j->req;
    const char *uid = j->user_id;
    int rc;
    switch (e->message_case) {
    case KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_GET: return reply_account(w, j, msg, cap);
    case KAOS__V1__ENVELOPE__MESSAGE_USERS_GET: return reply_users(w, j, msg, cap);
    case KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_UPDATE: {
        Kaos__V1__AccountUpdate *u = e->account_update;
        kn_account_changes ch = {
            .username = optional(u->username),
            .display_name = optional(u->display_name),
            .avatar_url = optional(u->avatar_url),
            .lang_tag = optional(u->lang_tag),
            .location = optional(u->location),
            .timezone = optional(u->timezone),
            .metadata = optional(u->metadata),
        };
        rc = kn_account_update(w->db, uid, &ch, msg, cap);
        break;
    }
    case KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_DELETE:
        rc = kn_account_delete(w->db, uid, msg, cap);
        if (rc == KN_OK) {
            j->end = true;
            j->end_why = KN_SESSION_END_DELETE;
        }
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_LINK_DEVICE:
        rc = kn_account_link_device(w->db, uid, e->link_device->id, msg, cap);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_LINK_EMAIL:
        rc = kn_account_link_email(w->db, uid, e->link_email->email, e->link_email->password, msg,
                                   cap);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_LINK_CUSTOM:
        rc = kn_account_link_custom(w->db, uid, e->link_custom->id, msg, cap);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_UNLINK_DEVICE:
        rc = kn_account_unlink_device(w->db, uid, e->unlink_device->id, msg, cap);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_UNLINK_EMAIL:
        rc = kn_account_unlink_email(w->db, uid, msg, cap);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_UNLINK_CUSTOM:
        rc = kn_account_unlink_custom(w->db, uid, msg, cap);
        break;
    default: return KN_ERR_UNIMPLEMENTED;
    }
    return rc ? rc : reply_ack(j);
}

/* --- the storage service (worker thread) ------------------------------------------ */

/* A kn_storage_object as a StorageObject message that borrows its strings. */
static void storage_object_message(Kaos__V1__StorageObject *m, kn_storage_object *o)
{
    kaos__v1__storage_object__init(m);
    m->collection = o->collection;
    m->key = o->key;
    m->user_id = o->user_id;
    m->value = (char *)o->value;
    m->version = o->version;
    m->permission_read = o->permission_read;
    m->permission_write = o->permission_write;
    m->create_time_ms = o->create_time_ms;
    m->update_time_ms = o->update_time_ms;
}

/* StorageObjects (a read) or StorageObjectList (a list, with its cursor). */
static int reply_objects(job *j, kn_storage_object *objs, size_t n, const char *cursor, bool list)
{
    Kaos__V1__StorageObject *msgs = n ? kn_calloc(n, sizeof *msgs) : NULL;
    Kaos__V1__StorageObject **ptrs = n ? kn_calloc(n, sizeof *ptrs) : NULL;
    int rc = KN_ERR_NOMEM;
    if (n && (!msgs || !ptrs)) goto done;
    for (size_t i = 0; i < n; i++) {
        storage_object_message(&msgs[i], &objs[i]);
        ptrs[i] = &msgs[i];
    }
    kn_envelope env = KN_ENVELOPE_INIT;
    Kaos__V1__StorageObjects read = KAOS__V1__STORAGE_OBJECTS__INIT;
    Kaos__V1__StorageObjectList page = KAOS__V1__STORAGE_OBJECT_LIST__INIT;
    if (list) {
        page.n_objects = n;
        page.objects = ptrs;
        page.cursor = text(cursor);
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STORAGE_OBJECT_LIST;
        env.storage_object_list = &page;
    } else {
        read.n_objects = n;
        read.objects = ptrs;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STORAGE_OBJECTS;
        env.storage_objects = &read;
    }
    rc = reply_with(j, &env);
done:
    kn_free(msgs);
    kn_free(ptrs);
    return rc;
}

/* StorageWrite: the caller's own objects; an absent permission is 1 (owner). */
static int storage_write(kn_api_worker *w, job *j, char *msg, size_t cap)
{
    Kaos__V1__StorageWrite *r = j->req->storage_write;
    size_t n = r->n_objects;
    kn_storage_write_op *ops = n ? kn_calloc(n, sizeof *ops) : NULL;
    if (n && !ops) return KN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const Kaos__V1__WriteStorageObject *o = r->objects[i];
        ops[i] = (kn_storage_write_op){
            .collection = o->collection,
            .key = o->key,
            .user_id = NULL, /* the caller's own: a client names no other owner */
            .value = o->value && *o->value ? o->value : NULL, /* "" = missing */
            .version = o->version,
            .permission_read = o->read_case == KAOS__V1__WRITE_STORAGE_OBJECT__READ_PERMISSION_READ
                                   ? o->permission_read
                                   : KN_STORAGE_READ_OWNER,
            .permission_write =
                o->write_case == KAOS__V1__WRITE_STORAGE_OBJECT__WRITE_PERMISSION_WRITE
                    ? o->permission_write
                    : KN_STORAGE_WRITE_OWNER,
        };
    }
    kn_storage_ack *acks = NULL;
    int rc = kn_storage_write(w->db, j->user_id, ops, n, &acks, msg, cap);
    kn_free(ops);
    if (rc) return rc;
    Kaos__V1__StorageAck *msgs = n ? kn_calloc(n, sizeof *msgs) : NULL;
    Kaos__V1__StorageAck **ptrs = n ? kn_calloc(n, sizeof *ptrs) : NULL;
    rc = KN_ERR_NOMEM;
    if (n && (!msgs || !ptrs)) goto done;
    for (size_t i = 0; i < n; i++) {
        kaos__v1__storage_ack__init(&msgs[i]);
        msgs[i].collection = acks[i].collection;
        msgs[i].key = acks[i].key;
        msgs[i].user_id = acks[i].user_id;
        msgs[i].version = acks[i].version;
        ptrs[i] = &msgs[i];
    }
    Kaos__V1__StorageAcks out = KAOS__V1__STORAGE_ACKS__INIT;
    out.n_acks = n;
    out.acks = ptrs;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STORAGE_ACKS;
    env.storage_acks = &out;
    rc = reply_with(j, &env);
done:
    kn_free(msgs);
    kn_free(ptrs);
    kn_free(acks);
    return rc;
}

/* StorageRead and StorageDelete name objects the same way. */
static kn_storage_id storage_id(const Kaos__V1__StorageObjectId *o)
{
    return (kn_storage_id){o->collection, o->key, o->user_id};
}

static int storage_read(kn_api_worker *w, job *j, char *msg, size_t cap)
{
    Kaos__V1__StorageRead *r = j->req->storage_read;
    size_t n = r->n_object_ids, n_out = 0;
    kn_storage_id *ids = n ? kn_calloc(n, sizeof *ids) : NULL;
    if (n && !ids) return KN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        ids[i] = storage_id(r->object_ids[i]);
    kn_storage_object *objs = NULL;
    int rc = kn_storage_read(w->db, j->user_id, ids, n, &objs, &n_out, msg, cap);
    kn_free(ids);
    if (rc == KN_OK) rc = reply_objects(j, objs, n_out, NULL, false);
    kn_free(objs);
    return rc;
}

static int storage_delete(kn_api_worker *w, job *j, char *msg, size_t cap)
{
    Kaos__V1__StorageDelete *r = j->req->storage_delete;
    size_t n = r->n_object_ids;
    kn_storage_delete_op *ops = n ? kn_calloc(n, sizeof *ops) : NULL;
    if (n && !ops) return KN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        ops[i].id = storage_id(r->object_ids[i]);
        ops[i].version = r->object_ids[i]->version;
    }
    int rc = kn_storage_delete(w->db, j->user_id, ops, n, msg, cap);
    kn_free(ops);
    return rc ? rc : reply_ack(j);
}

static int storage_list(kn_api_worker *w, job *j, char *msg, size_t cap)
{
    Kaos__V1__StorageList *r = j->req->storage_list;
    if (r->limit > KN_STORAGE_LIST_MAX) { /* the service takes an int; say it as it would */
        snprintf(msg, cap, "limit must be 1-%d, not %u", KN_STORAGE_LIST_MAX, r->limit);
        return KN_ERR_INVALID_ARGUMENT;
    }
    int limit = (int)r->limit;
    kn_storage_object *objs = NULL;
    size_t n = 0;
    char *cursor = NULL;
    int rc = kn_storage_list(w->db, j->user_id, r->user_id, r->collection, limit, r->cursor, &objs,
                             &n, &cursor, msg, cap);
    if (rc == KN_OK) rc = reply_objects(j, objs, n, cursor, true);
    kn_free(objs);
    kn_free(cursor);
    return rc;
}

/* The Storage* requests, with the rights of the session's user. KN_OK with
 * the reply encoded, or the error for the client. */
static int run_storage(kn_api_worker *w, job *j, char *msg, size_t cap)
{
    switch (j->req->message_case) {
    case KAOS__V1__ENVELOPE__MESSAGE_STORAGE_WRITE: return storage_write(w, j, msg, cap);
    case KAOS__V1__ENVELOPE__MESSAGE_STORAGE_READ: return storage_read(w, j, msg, cap);
    case KAOS__V1__ENVELOPE__MESSAGE_STORAGE_DELETE: return storage_delete(w, j, msg, cap);
    case KAOS__V1__ENVELOPE__MESSAGE_STORAGE_LIST: return storage_list(w, j, msg, cap);
    default: return KN_ERR_UNIMPLEMENTED;
    }
}

/* Worker thread. */
static void run_job(kn_api_worker *w, void *arg)
{
    job *j = arg;
    kn_gateway *gw = j->gw;
    char msg[256] = "";
    int rc = KN_ERR_UNIMPLEMENTED;
    if (j->kind == JOB_AFTER) {
        run_after(w, j);
        atomic_fetch_sub(&gw->jobs_in_flight, 1);
        free_job(j);
        return;
    }
    if (j->before && (rc = run_before(w, j, msg, sizeof msg))) goto reply;
    if (j->kind == JOB_BEFORE) {
        j->proceed = true;
        post_completion(gw, j);
        return;
    }
    rc = KN_ERR_UNIMPLEMENTED;
    switch (j->req->message_case) {
    case KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE:
    case KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_EMAIL:
    case KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_CUSTOM:
        rc = run_login(gw, w, j, msg, sizeof msg);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_SESSION_REFRESH: {
        Kaos__V1__SessionRefresh *r = j->req->session_refresh;
        if (r->n_vars > KN_TOKEN_MAX_VARS) {
            rc = KN_ERR_INVALID_ARGUMENT;
            snprintf(msg, sizeof msg, "at most %d session vars", KN_TOKEN_MAX_VARS);
            break;
        }
        kn_token_var vars[KN_TOKEN_MAX_VARS];
        VARS_VIEW(vars, r->vars, r->n_vars);
        rc = kn_auth_refresh(gw->deps.auth, w->db, r->refresh_token, vars, r->n_vars,
                             kn_time_wall_ms() / 1000, &j->session, msg, sizeof msg);
        if (rc == KN_ERR_TOKEN_INVALID || rc == KN_ERR_TOKEN_EXPIRED || rc == KN_ERR_UNAUTHENTICATED)
            login_failed(gw, j->address_key, NULL);
        break;
    }
    case KAOS__V1__ENVELOPE__MESSAGE_SESSION_RESUME:
        rc = run_resume(gw, w, j, msg, sizeof msg);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_RPC:
        run_rpc(w, j, msg, sizeof msg);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_MATCH_CREATE: {
        /* Authoritative: create (match_init), then the creator joins like
         * anyone; the join's answer comes from the match thread. */
        Kaos__V1__MatchCreate *mc = j->req->match_create;
        char id[KN_MATCH_ID_MAX];
        rc = kn_match_create(gw->matches, mc->handler, mc->params, strlen(mc->params), id, msg,
                             sizeof msg);
        if (rc == KN_OK) {
            kn_match_presence p = {.conn = j->conn};
            memcpy(p.user_id, j->user_id, sizeof p.user_id);
            memcpy(p.session_id, j->session_id, sizeof p.session_id);
            memcpy(p.username, j->username, sizeof p.username);
            rc = kn_match_join(gw->matches, id, &p, j->cid, "{}", 2);
            if (rc == KN_OK) {
                post_completion(gw, j); /* no reply of its own */
                return;
            }
        }
        break;
    }
    case KAOS__V1__ENVELOPE__MESSAGE_MATCH_LIST_REQUEST:
        rc = run_match_list(gw, j, msg, sizeof msg);
        if (rc == KN_OK) {
            post_completion(gw, j);
            return;
        }
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_SESSION_LOGOUT:
        rc = kn_auth_logout(gw->deps.auth, w->db, j->session_id, j->user_id);
        if (rc == KN_OK && (rc = reply_ack(j)) == KN_OK) {
            j->end = true;
            j->end_why = KN_SESSION_END_LOGOUT;
            post_completion(gw, j);
            return;
        }
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_GET:
    case KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_UPDATE:
    case KAOS__V1__ENVELOPE__MESSAGE_USERS_GET:
    case KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_DELETE:
    case KAOS__V1__ENVELOPE__MESSAGE_LINK_DEVICE:
    case KAOS__V1__ENVELOPE__MESSAGE_LINK_EMAIL:
    case KAOS__V1__ENVELOPE__MESSAGE_LINK_CUSTOM:
    case KAOS__V1__ENVELOPE__MESSAGE_UNLINK_DEVICE:
    case KAOS__V1__ENVELOPE__MESSAGE_UNLINK_EMAIL:
    case KAOS__V1__ENVELOPE__MESSAGE_UNLINK_CUSTOM:
        rc = run_account(w, j, msg, sizeof msg);
        if (rc == KN_OK) {
            post_completion(gw, j);
            return;
        }
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_STORAGE_WRITE:
    case KAOS__V1__ENVELOPE__MESSAGE_STORAGE_READ:
    case KAOS__V1__ENVELOPE__MESSAGE_STORAGE_DELETE:
    case KAOS__V1__ENVELOPE__MESSAGE_STORAGE_LIST:
        rc = run_storage(w, j, msg, sizeof msg);
        if (rc == KN_OK) {
            post_completion(gw, j);
            return;
        }
        break;
    default: break;
    }
reply:
    /* Internal causes are logged where they happen; the client gets the code. */
    if (rc == KN_ERR_DB || rc == KN_ERR_NOMEM) snprintf(msg, sizeof msg, "%s", "server busy; retry");
    encode_reply(j, rc, msg);
    post_completion(gw, j);
}

/* Net thread: hand a decoded request to a worker; takes ownership of env. */
static void handle_api(kn_gateway *gw, session *s, uint8_t channel, kn_envelope *env)
{
    uint32_t cid = env->cid;
    job *j = new_job(gw, s, env, JOB_OP);
    if (!j) {
        send_error(gw, s->id, cid, KN_ERR_NOMEM, "server busy; retry");
        return;
    }
    j->channel = channel;
    j->before = !gw->before_done && has_hook(gw, KN_HOOK_BEFORE, (int)env->message_case);
    int rc = submit_job(gw, j);
    if (rc)
        send_error(gw, s->id, cid, rc,
                   rc == KN_ERR_UNAVAILABLE ? "server is shutting down" : "server busy; retry");
}

/* --- the route table ------------------------------------------------------------ */

static const route routes[] = {
    [KAOS__V1__ENVELOPE__MESSAGE_PING] = {true, false, CH_CONTROL, RUN_NET, handle_ping},
    [KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE] = {true, true, CH_CONTROL, RUN_API,
                                                         handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_EMAIL] = {true, true, CH_CONTROL, RUN_API,
                                                        handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_CUSTOM] = {true, true, CH_CONTROL, RUN_API,
                                                         handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_SESSION_REFRESH] = {true, true, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_SESSION_RESUME] = {true, true, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_MATCH_CREATE] = {false, false, CH_CONTROL, RUN_NET,
                                                  handle_match_create},
    [KAOS__V1__ENVELOPE__MESSAGE_MATCH_JOIN] = {false, false, CH_CONTROL, RUN_NET,
                                                handle_match_join},
    [KAOS__V1__ENVELOPE__MESSAGE_MATCH_LEAVE] = {false, false, CH_CONTROL, RUN_NET,
                                                 handle_match_leave},
    [KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA_SEND] = {false, false, CH_MATCH, RUN_NET,
                                                     handle_match_data},
    [KAOS__V1__ENVELOPE__MESSAGE_RPC] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_SESSION_LOGOUT] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_MATCH_LIST_REQUEST] = {false, false, CH_CONTROL, RUN_API,
                                                        handle_api},
    /* The account service (docs/accounts.md): the session's own user. */
    [KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_GET] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_UPDATE] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_USERS_GET] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_DELETE] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_LINK_DEVICE] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_LINK_EMAIL] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_LINK_CUSTOM] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_UNLINK_DEVICE] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_UNLINK_EMAIL] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_UNLINK_CUSTOM] = {false, false, CH_CONTROL, RUN_API, handle_api},
    /* The storage service (docs/storage.md): the session's user's rights. */
    [KAOS__V1__ENVELOPE__MESSAGE_STORAGE_WRITE] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_STORAGE_READ] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_STORAGE_DELETE] = {false, false, CH_CONTROL, RUN_API, handle_api},
    [KAOS__V1__ENVELOPE__MESSAGE_STORAGE_LIST] = {false, false, CH_CONTROL, RUN_API, handle_api},
};

#define N_ROUTES (sizeof routes / sizeof routes[0])

static const route *route_of(int message_case)
{
    return message_case > 0 && (size_t)message_case < N_ROUTES && routes[message_case].handle
               ? &routes[message_case]
               : NULL;
}

bool kn_gateway_is_client_op(int message_case)
{
    return route_of(message_case) != NULL;
}

/* Net thread: run a net-thread route, keeping its reply for an after hook.
 * Takes env. */
static void run_route_on_net(kn_gateway *gw, session *s, const route *r, uint8_t channel,
                             kn_envelope *env)
{
    int op = (int)env->message_case;
    bool after = has_hook(gw, KN_HOOK_AFTER, op);
    gw->took_env = false;
    if (after) {
        gw->tap.on = true;
        gw->tap.error = false;
        gw->tap.conn = s->id;
        gw->tap.cid = env->cid;
    }
    r->handle(gw, s, channel, env);
    if (gw->took_env) { /* moved to a worker job, hooks and all */
        gw->tap.on = false;
        kn_free(gw->tap.bytes);
        gw->tap.bytes = NULL;
        return;
    }
    if (!after) {
        kn_envelope_free(env);
        return;
    }
    gw->tap.on = false;
    uint8_t *bytes = gw->tap.bytes;
    gw->tap.bytes = NULL;
    if (!bytes || gw->tap.error) {
        kn_free(bytes);
        kn_envelope_free(env);
        return;
    }
    job *j = new_job(gw, s, env, JOB_AFTER);
    if (!j) {
        kn_free(bytes);
        return;
    }
    j->reply = bytes;
    j->reply_len = gw->tap.len;
    queue_after(gw, j);
}

/* --- kn_net handler ----------------------------------------------------------------- */

static void *on_open(void *ud, kn_conn_id id, const char *address)
{
    kn_gateway *gw = ud;
    session *s = kn_calloc(1, sizeof *s);
    if (!s) {
        kn_net_close(gw->net, id, KAOS__V1__DISCONNECT_REASON__DISCONNECT_SERVER_FULL);
        return NULL;
    }
    s->id = id;
    snprintf(s->address, sizeof s->address, "%s", address);
    snprintf(s->address_key, sizeof s->address_key, "addr:%08x", kn_net_conn_ip(gw->net, id));
    KN_DEBUG("conn %llx open from %s", (unsigned long long)id, address);
    return s;
}

static void on_close(void *ud, kn_conn_id id, void *conn_data, uint32_t reason)
{
    kn_gateway *gw = ud;
    session *s = conn_data;
    relay_lock(gw);
    kn_relay_conn_closed(gw->g->relay, id);
    relay_unlock(gw);
    for (size_t i = 0; s && i < s->n_am; i++) kn_match_leave(gw->matches, s->am[i].handle, id);
    if (s && s->authenticated) gw->st.sessions_current--;
    KN_DEBUG("conn %llx closed (reason %u)", (unsigned long long)id, reason);
    if (s) kn_token_claims_deinit(&s->vars);
    kn_free(s);
}

/* A message the peer should not have sent: answer, and count it. */
static void reject(kn_gateway *gw, session *s, uint32_t cid, int rc, const char *msg)
{
    send_error(gw, s->id, cid, rc, msg);
    kn_net_violation(gw->net, s->id);
}

static void on_message(void *ud, kn_conn_id id, void *conn_data, uint8_t channel,
                       const uint8_t *data, size_t len)
{
    kn_gateway *gw = ud;
    session *s = conn_data;
    if (!s) return;
    gw->st.requests++;
    kn_envelope *env;
    if (kn_envelope_decode(data, len, &env)) {
        gw->st.malformed++;
        reject(gw, s, 0, KN_ERR_MALFORMED, "malformed envelope");
        return;
    }
    size_t type = (size_t)env->message_case;
    const route *r = route_of((int)type);
    char msg[128];
    if (!r) {
        snprintf(msg, sizeof msg, "message type %s (%zu) is not a client request",
                 kn_envelope_type_name((int)type), type);
        reject(gw, s, env->cid, KN_ERR_UNIMPLEMENTED, msg);
    } else if (!(r->channels & (1u << channel))) {
        snprintf(msg, sizeof msg, "%s is not allowed on channel %u",
                 kn_envelope_type_name((int)type), channel);
        reject(gw, s, env->cid, KN_ERR_INVALID_ARGUMENT, msg);
    } else if (!r->pre_auth && !s->authenticated) {
        gw->st.unauthenticated++;
        reject(gw, s, env->cid, KN_ERR_UNAUTHENTICATED, "authenticate first");
    } else if (r->login && locked(gw->deps.address_lockout, s->address_key, msg, sizeof msg)) {
        send_error(gw, s->id, env->cid, KN_ERR_RESOURCE_EXHAUSTED, msg);
    } else if (r->where == RUN_NET && has_hook(gw, KN_HOOK_BEFORE, (int)type)) {
        /* The hook runs on a worker; the route continues on this thread after. */
        uint32_t cid = env->cid;
        job *j = new_job(gw, s, env, JOB_BEFORE);
        int rc = j ? KN_OK : KN_ERR_NOMEM;
        if (j) {
            j->channel = channel;
            j->before = true;
            rc = submit_job(gw, j);
        }
        if (rc) send_error(gw, s->id, cid, rc, "server busy; retry");
        return;
    } else if (r->where == RUN_API) {
        r->handle(gw, s, channel, env); /* takes env */
        return;
    } else {
        run_route_on_net(gw, s, r, channel, env); /* takes env */
        return;
    }
    kn_envelope_free(env);
}

static void announce_shutdown(void *arg, kn_conn_id id, void *conn_data)
{
    kn_gateway *gw = arg;
    Kaos__V1__ServerShutdown sd = KAOS__V1__SERVER_SHUTDOWN__INIT;
    sd.grace_ms = (uint32_t)gw->deps.shutdown_grace_ms;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_SERVER_SHUTDOWN;
    env.server_shutdown = &sd;
    send_env(gw, id, &env);
}

static void on_shutdown(void *ud, int64_t grace_ms)
{
    kn_gateway *gw = ud;
    gw->stopping = true;
    kn_api_close_intake(gw->deps.api);
    /* match_terminate with the grace period; the MatchEnd events they send
     * are delivered while the network drains. */
    if (gw->matches) kn_match_engine_stop(gw->matches, (int)(grace_ms / 1000));
    kn_net_foreach(gw->net, announce_shutdown, gw);
}

static void on_tick(void *ud, int64_t now_ms)
{
    sweep_revoked(ud, now_ms);
}

static bool drained(void *ud)
{
    kn_gateway *gw = ud;
    return atomic_load(&gw->jobs_in_flight) == 0;
}

/* Under relay_lock, on the calling shard's thread: its own connections are
 * sent to directly, another shard's get a copy through that shard's net. */
static int relay_send(void *ud, const kn_relay_conn *conns, size_t n, uint8_t channel,
                      const uint8_t *data, size_t len, bool reliable)
{
    gw_group *g = ud;
    kn_gateway *gw = g->relay_caller;
    int rc = kn_net_send_many(gw->net, conns, n, channel, data, len, reliable);
    for (size_t i = 0; i < n; i++) {
        uint16_t shard = kn_conn_shard(conns[i]);
        if (shard == gw->shard || shard >= g->n) continue;
        uint8_t *copy = kn_malloc(len ? len : 1);
        if (copy) memcpy(copy, data, len);
        if (!copy || kn_net_post(g->shards[shard]->net, conns[i], channel, copy, len, reliable))
            KN_WARN("relayed data for conn %llx dropped: cannot reach its network thread",
                    (unsigned long long)conns[i]);
        else rc = KN_OK;
    }
    return rc;
}

/* --- lifecycle ------------------------------------------------------------------------ */

int kn_gateway_create(const kn_gateway_deps *deps, kn_gateway **out)
{
    *out = NULL;
    size_t n = deps->shards ? deps->shards : 1;
    if (n > KN_GATEWAY_MAX_SHARDS) return KN_ERR_INVALID_ARGUMENT;
    gw_group *g = kn_calloc(1, sizeof *g);
    if (!g) return KN_ERR_NOMEM;
    pthread_mutex_init(&g->relay_lock, NULL);
    pthread_mutex_init(&g->ends_lock, NULL);
    kn_map_init(&g->revoked);
    kn_map_init(&g->ended);
    g->shards = kn_calloc(n, sizeof *g->shards);
    int rc = g->shards ? KN_OK : KN_ERR_NOMEM;
    for (size_t i = 0; rc == KN_OK && i < n; i++) {
        kn_gateway *gw = kn_calloc(1, sizeof *gw);
        if (!gw) {
            rc = KN_ERR_NOMEM;
            break;
        }
        gw->deps = *deps;
        gw->g = g;
        gw->shard = (uint16_t)i;
        g->shards[g->n++] = gw;
    }
    kn_relay_sink sink = {relay_send, g};
    if (rc == KN_OK) rc = kn_relay_create(deps->relay, &sink, &g->relay);
    if (rc == KN_OK) {
        *out = g->shards[0];
        return KN_OK;
    }
    for (size_t i = 0; i < g->n; i++) kn_free(g->shards[i]);
    kn_free(g->shards);
    pthread_mutex_destroy(&g->relay_lock);
    pthread_mutex_destroy(&g->ends_lock);
    kn_free(g);
    return rc;
}

void kn_gateway_destroy(kn_gateway *gw)
{
    if (!gw) return;
    gw_group *g = gw->g;
    kn_relay_destroy(g->relay);
    for (size_t i = 0; i < g->n; i++) kn_free(g->shards[i]);
    kn_free(g->shards);
    kn_map_deinit(&g->revoked);
    kn_map_deinit(&g->ended);
    pthread_mutex_destroy(&g->relay_lock);
    pthread_mutex_destroy(&g->ends_lock);
    kn_free(g);
}

size_t kn_gateway_shards(const kn_gateway *gw)
{
    return gw->g->n;
}

void kn_gateway_handler(kn_gateway *gw, size_t shard, kn_net_handler *out)
{
    gw = gw->g->shards[shard];
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

void kn_gateway_attach(kn_gateway *gw, size_t shard, kn_net *net)
{
    gw->g->shards[shard]->net = net;
}

void kn_gateway_attach_matches(kn_gateway *gw, kn_match_engine *matches)
{
    for (size_t i = 0; i < gw->g->n; i++) gw->g->shards[i]->matches = matches;
}

/* --- ending sessions from other threads ------------------------------------------ */

/* Every shard walks its own connections and keeps its own revocation set. */
int kn_gateway_end_sessions(kn_gateway *gw, const char *user_id, const char *session_id,
                            kn_session_end why)
{
    if (!user_id || strlen(user_id) > 36 || (session_id && strlen(session_id) > 36))
        return KN_ERR_INVALID_ARGUMENT;
    int rc = KN_OK;
    for (size_t i = 0; i < gw->g->n; i++) {
        int posted = post_end(gw->g->shards[i], user_id, session_id, why);
        if (posted) rc = posted;
    }
    return rc;
}

void kn_gateway_stats_get(kn_gateway *gw, kn_gateway_stats *out)
{
    gw_group *g = gw->g;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < g->n; i++) {
        const kn_gateway_stats *st = &g->shards[i]->st;
        out->requests += st->requests;
        out->errors += st->errors;
        out->malformed += st->malformed;
        out->unauthenticated += st->unauthenticated;
        out->api_busy += st->api_busy;
        out->sessions_current += st->sessions_current;
    }
    pthread_mutex_lock(&g->relay_lock);
    out->matches_current = kn_relay_match_count(g->relay);
    pthread_mutex_unlock(&g->relay_lock);
}

uint64_t kn_gateway_shed_joins(const kn_gateway *gw)
{
    return atomic_load_explicit(&gw->g->shed_joins, memory_order_relaxed);
}

/* --- server-to-server RPC ------------------------------------------------------- */

/* Shared by the waiting HTTP thread and the worker; the last one out frees it. */
typedef struct sync_rpc {
    kn_gateway *gw;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;
    bool done;
    char id[129];
    char *payload;
    size_t len;
    char address[80];
    int rc;
    char *out;
    size_t out_len;
    char msg[256];
} sync_rpc;

static void sync_release(sync_rpc *r)
{
    pthread_mutex_lock(&r->lock);
    int left = --r->refs;
    pthread_mutex_unlock(&r->lock);
    if (left) return;
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    kn_free(r->payload);
    kn_free(r->out);
    kn_free(r);
}

static void run_sync_rpc(kn_api_worker *w, void *arg)
{
    sync_rpc *r = arg;
    kn_runtime_services svc = services_of(r->gw, w);
    kn_runtime_context ctx = {"", "", "", r->address, "rpc", NULL, 0, &svc};
    r->rc = call_rpc(w, &ctx, r->id, r->payload, r->len, &r->out, &r->out_len, r->msg,
                     sizeof r->msg);
    pthread_mutex_lock(&r->lock);
    r->done = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    sync_release(r);
}

int kn_gateway_rpc_blocking(kn_gateway *gw, const char *id, const char *payload, size_t len,
                            const char *client_address, int64_t timeout_ms, char **out,
                            size_t *out_len, char *msg, size_t cap)
{
    *out = NULL;
    *out_len = 0;
    if (!*id || strlen(id) > 128) {
        snprintf(msg, cap, "rpc id must be 1-128 bytes");
        return KN_ERR_INVALID_ARGUMENT;
    }
    sync_rpc *r = kn_calloc(1, sizeof *r);
    if (!r) return KN_ERR_NOMEM;
    r->payload = kn_malloc(len + 1);
    if (!r->payload) {
        kn_free(r);
        return KN_ERR_NOMEM;
    }
    memcpy(r->payload, payload, len);
    r->payload[len] = '\0';
    r->len = len;
    r->gw = gw;
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->address, sizeof r->address, "%s", client_address ? client_address : "");
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->refs = 2;
    int rc = kn_api_submit(gw->deps.api, run_sync_rpc, r);
    if (rc) {
        r->refs = 1;
        sync_release(r);
        snprintf(msg, cap, "%s", rc == KN_ERR_UNAVAILABLE ? "server is shutting down" : "server busy; retry");
        return rc;
    }
    struct timespec until;
    kn_time_deadline(CLOCK_REALTIME, timeout_ms, &until);
    pthread_mutex_lock(&r->lock);
    int wait = 0;
    while (!r->done && wait != ETIMEDOUT) wait = pthread_cond_timedwait(&r->cond, &r->lock, &until);
    bool done = r->done;
    pthread_mutex_unlock(&r->lock);
    if (!done) {
        snprintf(msg, cap, "rpc timed out");
        sync_release(r); /* the worker frees it when it finishes */
        return KN_ERR_DEADLINE_EXCEEDED;
    }
    rc = r->rc;
    snprintf(msg, cap, "%s", r->msg);
    if (rc == KN_OK) {
        *out = r->out;
        *out_len = r->out_len;
        r->out = NULL;
    }
    sync_release(r);
    return rc;
}
