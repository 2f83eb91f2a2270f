/* gateway: per-connection sessions, the route table, worker jobs.
 *
 * Threads: everything here runs on the net thread except run_job, which runs
 * on an API worker and touches only its job (owned by it while it runs). */
#include "kn_gateway.h"
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
#include "kn_time.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
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

struct kn_gateway {
    kn_gateway_deps deps;
    kn_net *net;
    kn_relay *relay;
    kn_match_engine *matches; /* authoritative matches (NULL = none) */
    bool took_env;            /* a net-thread handler kept the request (moved it to a job) */
    bool before_done;         /* the route runs after its before hook already ran */
    kn_map revoked;          /* net thread: hash(session id) -> its token's expiry (s) */
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
    bool bind;               /* reply is a Session: bind it to the connection */
    bool logout;             /* the session ended: revoke it on the net thread */
    kn_auth_session session; /* filled by the worker when bind */
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

/* Net thread: drop revocations whose tokens have expired anyway. */
static void sweep_revoked(kn_gateway *gw, int64_t now_ms)
{
    if (now_ms < gw->next_sweep_ms) return;
    gw->next_sweep_ms = now_ms + 60000;
    int64_t now = kn_time_wall_ms() / 1000;
    for (size_t i = 0; i < gw->revoked.cap;) {
        kn_map_entry *e = &gw->revoked.slots[i];
        if (e->key && (int64_t)(intptr_t)e->value <= now) kn_map_del(&gw->revoked, e->key);
        else i++; /* a delete may shift a later entry into slot i: look again */
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

static void handle_session_resume(kn_gateway *gw, session *s, uint8_t channel, kn_envelope *env)
{
    kn_token_claims c;
    int rc = kn_auth_verify_session(gw->deps.auth, env->session_resume->token,
                                    kn_time_wall_ms() / 1000, &c);
    if (rc == KN_OK && kn_map_get(&gw->revoked, kn_map_key_str(c.session_id))) {
        kn_token_claims_deinit(&c);
        login_failed(gw, s->address_key, NULL);
        send_error(gw, s->id, env->cid, KN_ERR_UNAUTHENTICATED, "session token revoked (logged out)");
        return;
    }
    if (rc) {
        login_failed(gw, s->address_key, NULL);
        send_error(gw, s->id, env->cid, rc,
                   rc == KN_ERR_TOKEN_EXPIRED ? "session token expired" : "session token invalid");
        return;
    }
    bind_claims(gw, s, &c);
    Kaos__V1__Session out = KAOS__V1__SESSION__INIT;
    out.token = env->session_resume->token;
    out.refresh_token = "";
    out.user_id = c.user_id;
    out.username = c.username;
    out.session_id = c.session_id;
    kn_envelope reply = KN_ENVELOPE_INIT;
    reply.cid = env->cid;
    reply.message_case = KAOS__V1__ENVELOPE__MESSAGE_SESSION;
    reply.session = &out;
    send_env(gw, s->id, &reply);
    kn_token_claims_deinit(&c);
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

/* Net thread: a match thread's outgoing batch, in order. */
typedef struct batch_post {
    kn_gateway *gw;
    kn_match_batch *b;
} batch_post;

static void deliver(void *arg)
{
    batch_post *bp = arg;
    kn_gateway *gw = bp->gw;
    for (size_t i = 0; i < kn_match_batch_count(bp->b); i++) {
        const kn_match_out *o = kn_match_batch_get(bp->b, i);
        if (o->kind == KN_MATCH_OUT_SEND) {
            kn_net_send_many(gw->net, o->conns, o->n_conns, o->channel, o->data, o->len, o->reliable);
            continue;
        }
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
    kn_match_batch_free(bp->b);
    kn_free(bp);
}

void kn_gateway_match_out(void *ud, kn_match_batch *b)
{
    kn_gateway *gw = ud;
    batch_post *bp = gw->net ? kn_malloc(sizeof *bp) : NULL;
    if (bp) {
        bp->gw = gw;
        bp->b = b;
    }
    if (!bp || kn_net_post_fn(gw->net, deliver, bp)) {
        KN_WARN("match traffic dropped: cannot reach the network thread");
        kn_free(bp);
        kn_match_batch_free(b);
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

static void handle_match_create(kn_gateway *gw, session *s, uint8_t channel, kn_envelope *env)
{
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
    int rc = kn_relay_match_create(gw->relay, &who, env->match_create->max_size, &j);
    if (rc) {
        send_error(gw, s->id, env->cid, rc,
                   rc == KN_ERR_INVALID_ARGUMENT ? "max_size out of range"
                   : rc == KN_ERR_RESOURCE_EXHAUSTED ? "in too many matches"
                                                     : NULL);
        return;
    }
    send_match(gw, s, env->cid, &j);
}

static void handle_match_join(kn_gateway *gw, session *s, uint8_t channel, kn_envelope *env)
{
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
    int rc = kn_relay_match_join(gw->relay, env->match_join->match_id, &who, &j);
    if (rc) {
        const char *why = rc == KN_ERR_NOT_FOUND            ? "match not found"
                          : rc == KN_ERR_RESOURCE_EXHAUSTED ? "match is full"
                          : rc == KN_ERR_ALREADY_EXISTS     ? "already in this match"
                                                            : NULL;
        send_error(gw, s->id, env->cid, rc, why);
        return;
    }
    send_match(gw, s, env->cid, &j);
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
    int rc = kn_relay_match_leave(gw->relay, handle, s->id);
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
    int rc = kn_relay_data(gw->relay, d->match, s->id, d->op_code, d->data.data, d->data.len,
                           d->targets, d->n_targets, channel,
                           channel == KN_CHANNEL_MATCH_RELIABLE);
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
    if (s && j->bind) bind_claims(gw, s, &j->session.claims);
    if (j->logout) {
        /* The token stays verifiable until it expires: remember it is dead. */
        if (kn_map_put(&gw->revoked, kn_map_key_str(j->session_id), (void *)(intptr_t)j->expires_at))
            KN_WARN("out of memory recording a logout; the session token stays resumable");
        if (s && s->authenticated && !strcmp(s->session_id, j->session_id)) {
            s->authenticated = false;
            gw->st.sessions_current--;
        }
    }
    if (s && j->reply) kn_net_send(gw->net, j->conn, KN_CHANNEL_CONTROL, j->reply, j->reply_len, true);
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
        sess.refresh_token = j->session.refresh_token;
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

/* Worker thread: call a runtime RPC in this worker's VM. */
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

static void run_rpc(kn_api_worker *w, job *j, char *msg, size_t cap)
{
    Kaos__V1__Rpc *req = j->req->rpc;
    kn_runtime_context ctx = {j->user_id,      j->username, j->session_id, j->address,
                              "rpc",          j->vars.vars, j->vars.var_count};
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

static kn_runtime_context job_context(const job *j, const char *mode)
{
    return (kn_runtime_context){j->user_id, j->username,   j->session_id,    j->address,
                                mode,       j->vars.vars, j->vars.var_count};
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
    kn_runtime_context ctx = job_context(j, "before");
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
    kn_runtime_context ctx = job_context(j, "after");
    int rc = kn_runtime_hook(vm, &ctx, KN_HOOK_AFTER, op, req, req_len, res, res_len, &out,
                             &out_len, msg, sizeof msg);
    if (rc) KN_WARN("after hook of %s: %s", kn_envelope_type_name(op), msg);
done:
    kn_envelope_free(reply);
    kn_free(req);
    kn_free(res);
    kn_free(out);
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
        if (rc == KN_OK) {
            Kaos__V1__Ack ack = KAOS__V1__ACK__INIT;
            kn_envelope env = KN_ENVELOPE_INIT;
            env.cid = j->cid;
            env.message_case = KAOS__V1__ENVELOPE__MESSAGE_ACK;
            env.ack = &ack;
            j->logout = kn_envelope_encode(&env, &j->reply, &j->reply_len) == KN_OK;
            j->ok = j->logout;
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
    [KAOS__V1__ENVELOPE__MESSAGE_SESSION_RESUME] = {true, true, CH_CONTROL, RUN_NET,
                                                    handle_session_resume},
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
    kn_relay_conn_closed(gw->relay, id);
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

static int relay_send(void *ud, const kn_relay_conn *conns, size_t n, uint8_t channel,
                      const uint8_t *data, size_t len, bool reliable)
{
    kn_gateway *gw = ud;
    return kn_net_send_many(gw->net, conns, n, channel, data, len, reliable);
}

/* --- lifecycle ------------------------------------------------------------------------ */

int kn_gateway_create(const kn_gateway_deps *deps, kn_gateway **out)
{
    *out = NULL;
    kn_gateway *gw = kn_calloc(1, sizeof *gw);
    if (!gw) return KN_ERR_NOMEM;
    gw->deps = *deps;
    kn_map_init(&gw->revoked);
    kn_relay_sink sink = {relay_send, gw};
    int rc = kn_relay_create(deps->relay, &sink, &gw->relay);
    if (rc) {
        kn_free(gw);
        return rc;
    }
    *out = gw;
    return KN_OK;
}

void kn_gateway_destroy(kn_gateway *gw)
{
    if (!gw) return;
    kn_relay_destroy(gw->relay);
    kn_map_deinit(&gw->revoked);
    kn_free(gw);
}

void kn_gateway_handler(kn_gateway *gw, kn_net_handler *out)
{
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

void kn_gateway_attach(kn_gateway *gw, kn_net *net)
{
    gw->net = net;
}

void kn_gateway_attach_matches(kn_gateway *gw, kn_match_engine *matches)
{
    gw->matches = matches;
}

void kn_gateway_stats_get(kn_gateway *gw, kn_gateway_stats *out)
{
    *out = gw->st;
    out->matches_current = kn_relay_match_count(gw->relay);
}

/* --- server-to-server RPC ------------------------------------------------------- */

/* Shared by the waiting HTTP thread and the worker; the last one out frees it. */
typedef struct sync_rpc {
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
    kn_runtime_context ctx = {"", "", "", r->address, "rpc", NULL, 0};
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
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
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
