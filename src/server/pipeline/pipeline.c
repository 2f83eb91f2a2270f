/* pipeline: a request's life (kn_pipeline.h): route checks, hooks, the
 * handler, the reply, its effects.
 *
 * Threads: kn_pipeline_run and every completion run on the pipeline's
 * network thread; run_job runs on an API worker and touches only its job
 * (owned by it while it runs). A job's completion is posted back to the
 * network thread that submitted it; a completion for a connection that has
 * gone finds no session (generation-checked id) and sends nothing.
 *
 * Invariants: a request running on the network thread straight from its
 * packet lives on the stack (no allocation on the match-data path); it
 * becomes a job only to cross to a worker. jobs_in_flight counts jobs
 * submitted whose completion has not run, so shutdown drains them. */
#include "kn_pipeline.h"
#include "kn_codec_json.h"
#include "kn_error.h"
#include "kn_limits.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define MAX_EFFECTS 8

typedef enum { FX_BIND, FX_END, FX_SEND, FX_DISCONNECT } fx_kind;

typedef struct effect {
    fx_kind kind;
    union {
        struct {
            kn_token_claims claims;
            bool resume;
        } bind;
        struct {
            char user_id[37], session_id[37]; /* session_id "" = all */
            kn_session_end why;
            bool spare_caller;
            int64_t revoke_expires;
        } end;
        struct {
            char user_id[37], session_id[37]; /* user_id "" = to conn */
            kn_conn_id conn;
            uint8_t *data;
            size_t len;
        } send;
        struct {
            kn_conn_id conn;
            uint32_t reason;
        } disconnect;
    } u;
} effect;

struct kn_pipeline {
    kn_pipeline_deps deps;
    uint16_t shard;
    atomic_size_t jobs_in_flight; /* submitted, completion not yet run */
    /* written on the network thread, read from any (kn_pipeline_stats_get) */
    atomic_uint_fast64_t errors, unauthenticated, api_busy;
};

typedef enum {
    JOB_OP,     /* (before hook,) the handler, reply */
    JOB_BEFORE, /* the before hook of a network-thread route, which then runs there */
    JOB_AFTER,  /* the after hook, once the reply has gone */
} job_kind;

struct kn_req {
    kn_pipeline *p;
    const kn_route *route;
    kn_envelope *env;
    uint8_t channel;
    kn_caller caller;
    kn_session *session;   /* network thread only */
    kn_api_worker *worker; /* worker only */
    uint8_t *reply;
    size_t reply_len;
    bool ok; /* the reply is not an Error */
    bool deferred;
    kn_route_fn next; /* continue on a worker with this */
    effect *fx;       /* MAX_EFFECTS, allocated on the first effect */
    size_t n_fx;
};

typedef struct job {
    kn_req r;
    job_kind kind;
    bool before; /* run the before hook first */
    kn_route_fn fn;
    int64_t submitted_ms; /* monotonic, when the network thread queued it */
    char address[80], address_key[24];
    char user_id[37], username[129], session_id[37];
    kn_token_claims vars; /* only .vars: the caller's session vars */
} job;

static void count(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* --- kn_req accessors --------------------------------------------------------------- */

kn_envelope *kn_req_msg(kn_req *r)
{
    return r->env;
}
uint8_t kn_req_channel(const kn_req *r)
{
    return r->channel;
}
const kn_caller *kn_req_caller(const kn_req *r)
{
    return &r->caller;
}
void *kn_req_service(const kn_req *r)
{
    return r->p->deps.services[r->route->service];
}
kn_session *kn_req_session(kn_req *r)
{
    return r->session;
}
kn_api_worker *kn_req_worker(kn_req *r)
{
    return r->worker;
}
kn_out *kn_req_out(const kn_req *r)
{
    return r->p->deps.out;
}
kn_sessions *kn_req_sessions(const kn_req *r)
{
    return r->p->deps.sessions;
}

bool kn_req_overloaded(const kn_req *r)
{
    return kn_out_overloaded(r->p->deps.out, r->p->shard);
}

int kn_req_reply(kn_req *r, kn_envelope *env)
{
    env->cid = r->env->cid;
    kn_free(r->reply);
    r->reply = NULL;
    if (kn_envelope_encode(env, &r->reply, &r->reply_len)) return KN_ERR_NOMEM;
    r->ok = env->message_case != KAOS__V1__ENVELOPE__MESSAGE_ERROR;
    return KN_OK;
}

int kn_req_ack(kn_req *r)
{
    Kaos__V1__Ack ack;
    kn_envelope env;
    kn_envelope_ack(&env, &ack, r->env->cid);
    return kn_req_reply(r, &env);
}

void kn_req_defer(kn_req *r)
{
    r->deferred = true;
}

void kn_req_continue_on_worker(kn_req *r, kn_route_fn fn)
{
    assert(!r->worker && "only a network-thread handler continues on a worker");
    r->next = fn;
}

void kn_req_login_failed(kn_req *r, const char *account_key)
{
    int64_t now = kn_time_mono_ms();
    const kn_pipeline_deps *d = &r->p->deps;
    if (account_key && kn_lockout_fail(d->account_lockout, account_key, now))
        KN_WARN("login locked for an account after repeated failures");
    if (kn_lockout_fail(d->address_lockout, r->caller.address_key, now))
        KN_WARN("logins locked for %s after repeated failures", r->caller.address_key);
}

void kn_req_login_succeeded(kn_req *r, const char *account_key)
{
    kn_lockout_success(r->p->deps.account_lockout, account_key);
}

/* 0 when allowed; else writes the refusal and returns RESOURCE_EXHAUSTED. */
static int locked(kn_lockout *l, const char *key, char *msg, size_t cap)
{
    int64_t left = kn_lockout_check(l, key, kn_time_mono_ms());
    if (!left) return KN_OK;
    snprintf(msg, cap, "too many failed logins; try again in %lld s",
             (long long)(left + 999) / 1000);
    return KN_ERR_RESOURCE_EXHAUSTED;
}

int kn_req_login_locked(kn_req *r, const char *account_key, char *msg, size_t cap)
{
    return locked(r->p->deps.account_lockout, account_key, msg, cap);
}

kn_runtime_context kn_req_script_context(kn_req *r, const char *mode, kn_runtime_services *svc)
{
    *svc = r->p->deps.script_services;
    svc->db = r->worker ? r->worker->db : NULL;
    const kn_caller *c = &r->caller;
    return (kn_runtime_context){c->user_id, c->username, c->session_id, c->address,
                                mode,       c->vars,     c->var_count,  svc};
}

/* --- effects ------------------------------------------------------------------------ */

static effect *add_effect(kn_req *r, fx_kind kind)
{
    if (!r->fx && !(r->fx = kn_calloc(MAX_EFFECTS, sizeof *r->fx))) return NULL;
    assert(r->n_fx < MAX_EFFECTS && "a handler returns at most MAX_EFFECTS effects");
    effect *e = &r->fx[r->n_fx++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    return e;
}

static void free_effect(effect *e)
{
    if (e->kind == FX_BIND) kn_token_claims_deinit(&e->u.bind.claims);
    if (e->kind == FX_SEND) kn_free(e->u.send.data);
}

static void drop_effects(kn_req *r)
{
    for (size_t i = 0; i < r->n_fx; i++)
        free_effect(&r->fx[i]);
    kn_free(r->fx);
    r->fx = NULL;
    r->n_fx = 0;
}

int kn_req_effect_bind(kn_req *r, const kn_token_claims *claims, bool resume)
{
    effect *e = add_effect(r, FX_BIND);
    if (!e) return KN_ERR_NOMEM;
    e->u.bind.claims = *claims;
    e->u.bind.claims.vars = NULL;
    e->u.bind.claims.var_count = 0;
    e->u.bind.resume = resume;
    if (kn_token_claims_set_vars(&e->u.bind.claims, claims->vars, claims->var_count)) {
        r->n_fx--;
        return KN_ERR_NOMEM;
    }
    return KN_OK;
}

int kn_req_effect_end_sessions(kn_req *r, const char *user_id, const char *session_id,
                               kn_session_end why, bool spare_caller, int64_t revoke_expires)
{
    if (strlen(user_id) > 36 || (session_id && strlen(session_id) > 36))
        return KN_ERR_INVALID_ARGUMENT;
    effect *e = add_effect(r, FX_END);
    if (!e) return KN_ERR_NOMEM;
    snprintf(e->u.end.user_id, sizeof e->u.end.user_id, "%s", user_id);
    snprintf(e->u.end.session_id, sizeof e->u.end.session_id, "%s", session_id ? session_id : "");
    e->u.end.why = why;
    e->u.end.spare_caller = spare_caller;
    e->u.end.revoke_expires = revoke_expires;
    return KN_OK;
}

int kn_req_effect_send(kn_req *r, const char *user_id, const char *session_id, kn_conn_id conn,
                       const kn_envelope *env)
{
    if ((user_id && strlen(user_id) > 36) || (session_id && strlen(session_id) > 36))
        return KN_ERR_INVALID_ARGUMENT;
    effect *e = add_effect(r, FX_SEND);
    if (!e) return KN_ERR_NOMEM;
    snprintf(e->u.send.user_id, sizeof e->u.send.user_id, "%s", user_id ? user_id : "");
    snprintf(e->u.send.session_id, sizeof e->u.send.session_id, "%s", session_id ? session_id : "");
    e->u.send.conn = conn;
    if (kn_envelope_encode(env, &e->u.send.data, &e->u.send.len)) {
        r->n_fx--;
        return KN_ERR_NOMEM;
    }
    return KN_OK;
}

int kn_req_effect_disconnect(kn_req *r, kn_conn_id conn, uint32_t reason)
{
    effect *e = add_effect(r, FX_DISCONNECT);
    if (!e) return KN_ERR_NOMEM;
    e->u.disconnect.conn = conn;
    e->u.disconnect.reason = reason;
    return KN_OK;
}

/* Network thread: replaces the reply with a refusal (and drops binds). */
static void refuse(kn_req *r, int rc, const char *msg)
{
    kn_envelope env;
    Kaos__V1__Error err;
    kn_envelope_error(&env, &err, r->env->cid, rc, msg);
    if (kn_req_reply(r, &env)) r->reply = NULL;
    r->ok = false;
    count(&r->p->errors);
    for (size_t i = 0; i < r->n_fx; i++)
        if (r->fx[i].kind == FX_BIND) {
            free_effect(&r->fx[i]);
            r->fx[i] = r->fx[--r->n_fx];
            i--;
        }
}

/* Network thread, before the reply: binds (which may refuse the reply). */
static void apply_binds(kn_req *r, kn_session *s, int64_t submitted_ms)
{
    kn_pipeline *p = r->p;
    for (size_t i = 0; i < r->n_fx; i++) {
        effect *e = &r->fx[i];
        if (e->kind != FX_BIND) continue;
        char msg[128];
        if (!s) continue; /* the connection went away meanwhile */
        int rc = kn_sessions_bind(p->deps.sessions, s, &e->u.bind.claims, e->u.bind.resume,
                                  submitted_ms, msg, sizeof msg);
        if (rc == KN_OK) {
            kn_out_set_authenticated(p->deps.out, s->conn);
        } else {
            if (e->u.bind.resume && rc == KN_ERR_UNAUTHENTICATED)
                kn_req_login_failed(r, NULL); /* a revoked token is a failed login */
            refuse(r, rc, msg);
            return; /* refuse dropped the binds */
        }
    }
}

/* Network thread, after the reply: everything else, in order. */
static void apply_effects(kn_req *r)
{
    kn_pipeline *p = r->p;
    for (size_t i = 0; i < r->n_fx; i++) {
        effect *e = &r->fx[i];
        int rc = KN_OK;
        switch (e->kind) {
        case FX_BIND:
            break; /* applied before the reply */
        case FX_END:
            rc = kn_sessions_end(p->deps.sessions, e->u.end.user_id,
                                 e->u.end.session_id[0] ? e->u.end.session_id : NULL, e->u.end.why,
                                 e->u.end.spare_caller ? r->caller.conn : 0,
                                 e->u.end.revoke_expires);
            break;
        case FX_SEND:
            rc = e->u.send.user_id[0]
                     ? kn_out_send_user(p->deps.out, e->u.send.user_id,
                                        e->u.send.session_id[0] ? e->u.send.session_id : NULL,
                                        KN_CHANNEL_CONTROL, e->u.send.data, e->u.send.len, true)
                     : kn_out_send(p->deps.out, &e->u.send.conn, 1, KN_CHANNEL_CONTROL,
                                   e->u.send.data, e->u.send.len, true);
            if (rc == KN_ERR_NOT_FOUND) rc = KN_OK; /* nobody there to tell */
            break;
        case FX_DISCONNECT:
            rc = kn_out_close(p->deps.out, e->u.disconnect.conn, e->u.disconnect.reason);
            if (rc == KN_ERR_NOT_FOUND) rc = KN_OK;
            break;
        }
        if (rc)
            KN_WARN("%s: an effect of the request could not be applied: %s",
                    kn_envelope_type_name((int)r->env->message_case), kn_err_text(rc));
    }
    drop_effects(r);
}

/* --- errors --------------------------------------------------------------------------- */

void kn_pipeline_send_error(kn_pipeline *p, kn_conn_id conn, uint32_t cid, int rc, const char *msg,
                            bool violation)
{
    kn_envelope env;
    Kaos__V1__Error err;
    kn_envelope_error(&env, &err, cid, rc, msg);
    count(&p->errors);
    kn_out_send_env(p->deps.out, conn, &env);
    if (violation) kn_out_violation(p->deps.out, conn);
}

/* A handler's failure as the reply. Internal causes are logged where they
 * happen; the client gets the code. */
static void reply_error(kn_req *r, int rc, char *msg, size_t cap)
{
    if (rc == KN_ERR_DB) snprintf(msg, cap, "%s", "database unavailable; retry later");
    if (rc == KN_ERR_NOMEM) snprintf(msg, cap, "%s", "server busy; retry");
    kn_envelope env;
    Kaos__V1__Error err;
    kn_envelope_error(&env, &err, r->env->cid, rc, msg);
    if (kn_req_reply(r, &env)) r->reply = NULL;
    r->ok = false;
    drop_effects(r);
}

/* --- jobs ------------------------------------------------------------------------------ */

static bool has_hook(kn_pipeline *p, kn_hook_kind kind, int message_case)
{
    return p->deps.runtime && kn_runtime_host_has_hook(p->deps.runtime, kind, message_case);
}

static void free_job(job *j)
{
    kn_envelope_free(j->r.env);
    kn_free(j->r.reply);
    drop_effects(&j->r);
    kn_token_claims_deinit(&j->vars);
    kn_free(j);
}

/* Network thread: a job for request r (its caller copied in); takes r's
 * request, reply and effects. NULL when out of memory (all freed). */
static job *job_of(kn_req *r, job_kind kind, kn_route_fn fn)
{
    job *j = kn_calloc(1, sizeof *j);
    const kn_caller *c = &r->caller;
    if (!j || kn_token_claims_set_vars(&j->vars, c->vars, c->var_count)) {
        kn_free(j);
        kn_envelope_free(r->env);
        kn_free(r->reply);
        drop_effects(r);
        return NULL;
    }
    j->kind = kind;
    j->fn = fn;
    j->submitted_ms = kn_time_mono_ms();
    snprintf(j->address, sizeof j->address, "%s", c->address);
    snprintf(j->address_key, sizeof j->address_key, "%s", c->address_key);
    snprintf(j->user_id, sizeof j->user_id, "%s", c->user_id);
    snprintf(j->username, sizeof j->username, "%s", c->username);
    snprintf(j->session_id, sizeof j->session_id, "%s", c->session_id);
    j->r = *r;
    j->r.session = NULL;
    j->r.next = NULL;
    j->r.caller =
        (kn_caller){c->conn,       j->address,    j->address_key, j->user_id,       j->username,
                    j->session_id, c->expires_at, j->vars.vars,   j->vars.var_count};
    return j;
}

static void run_job(kn_api_worker *w, void *arg);

/* Network thread: queue j; on failure it is freed and the error returned. */
static int submit_job(kn_pipeline *p, job *j)
{
    atomic_fetch_add(&p->jobs_in_flight, 1);
    int rc = kn_api_submit(p->deps.api, run_job, j);
    if (rc) {
        atomic_fetch_sub(&p->jobs_in_flight, 1);
        free_job(j);
        count(&p->api_busy);
    }
    return rc;
}

/* Network thread: hands request and reply to the after hook (takes them). */
static void queue_after(kn_req *r)
{
    job *j = job_of(r, JOB_AFTER, NULL);
    if (!j || submit_job(r->p, j))
        KN_WARN("after hook of %s skipped: API queue full",
                kn_envelope_type_name((int)r->route->message_case));
}

/* Network thread: a request into a job for a worker; the client hears of a
 * failure to queue it. Takes r's request. */
static void to_worker(kn_req *r, job_kind kind, bool before, kn_route_fn fn)
{
    uint32_t cid = r->env->cid;
    kn_pipeline *p = r->p;
    kn_conn_id conn = r->caller.conn;
    job *j = job_of(r, kind, fn);
    int rc = j ? KN_OK : KN_ERR_NOMEM;
    if (j) {
        j->before = before;
        rc = submit_job(p, j);
    }
    if (rc)
        kn_pipeline_send_error(
            p, conn, cid, rc,
            rc == KN_ERR_UNAVAILABLE ? "server is shutting down" : "server busy; retry", false);
}

/* --- the network thread: running a route ------------------------------------------------ */

static kn_caller caller_of(const kn_session *s)
{
    return (kn_caller){s->conn,       s->address,    s->address_key, s->user_id,       s->username,
                       s->session_id, s->expires_at, s->vars.vars,   s->vars.var_count};
}

/* Network thread: the route's handler, here and now. Takes env. */
static void run_here(kn_pipeline *p, kn_session *s, const kn_route *route, uint8_t channel,
                     kn_envelope *env)
{
    kn_req r = {.p = p,
                .route = route,
                .env = env,
                .channel = channel,
                .session = s,
                .caller = caller_of(s)};
    char msg[256] = "";
    int rc = route->handle(&r, msg, sizeof msg);
    if (rc == KN_OK && r.next) {
        apply_effects(&r);
        to_worker(&r, JOB_OP, false, r.next);
        return;
    }
    if (rc) {
        drop_effects(&r);
        kn_pipeline_send_error(p, s->conn, env->cid, rc, msg, false);
    } else if (r.reply) {
        kn_out_send(p->deps.out, &s->conn, 1, KN_CHANNEL_CONTROL, r.reply, r.reply_len, true);
    }
    apply_effects(&r);
    if (rc == KN_OK && r.reply && has_hook(p, KN_HOOK_AFTER, route->message_case)) {
        queue_after(&r); /* takes env and reply */
        return;
    }
    kn_free(r.reply);
    kn_envelope_free(env);
}

void kn_pipeline_run(kn_pipeline *p, kn_session *s, const kn_route *r, uint8_t channel,
                     kn_envelope *env)
{
    int type = r->message_case;
    char msg[128];
    if (!(r->channels & (1u << channel))) {
        snprintf(msg, sizeof msg, "%s is not allowed on channel %u", kn_envelope_type_name(type),
                 channel);
        kn_pipeline_send_error(p, s->conn, env->cid, KN_ERR_INVALID_ARGUMENT, msg, true);
    } else if (!r->pre_auth && !s->authenticated) {
        count(&p->unauthenticated);
        kn_pipeline_send_error(p, s->conn, env->cid, KN_ERR_UNAUTHENTICATED, "authenticate first",
                               true);
    } else if (r->login && locked(p->deps.address_lockout, s->address_key, msg, sizeof msg)) {
        kn_pipeline_send_error(p, s->conn, env->cid, KN_ERR_RESOURCE_EXHAUSTED, msg, false);
    } else if (has_hook(p, KN_HOOK_BEFORE, type)) {
        /* The hook runs on a worker; a network-thread route continues here after. */
        kn_req req = {.p = p, .route = r, .env = env, .channel = channel, .caller = caller_of(s)};
        to_worker(&req, r->where == KN_RUN_NET ? JOB_BEFORE : JOB_OP, true, r->handle);
        return;
    } else if (r->where == KN_RUN_API) {
        kn_req req = {.p = p, .route = r, .env = env, .channel = channel, .caller = caller_of(s)};
        to_worker(&req, JOB_OP, false, r->handle);
        return;
    } else {
        run_here(p, s, r, channel, env);
        return;
    }
    kn_envelope_free(env);
}

/* --- completions (network thread) -------------------------------------------------------- */

/* An answer larger than the largest message (a storage read of big
 * objects, a long RPC result) cannot be sent: ENet refuses it, and on the
 * ordered control channel that would end the connection. The client gets an
 * error instead and can ask for less. */
static void check_size(job *j)
{
    size_t max = j->r.p->deps.max_message_size;
    if (!j->r.reply || !max || j->r.reply_len <= max) return;
    char msg[160];
    snprintf(msg, sizeof msg,
             "the answer is %zu bytes, more than the largest message (%zu, max_message_size); "
             "ask for less",
             j->r.reply_len, max);
    KN_WARN("conn %llx: %s answer of %zu bytes refused (max_message_size %zu)",
            (unsigned long long)j->r.caller.conn, kn_envelope_type_name(j->r.route->message_case),
            j->r.reply_len, max);
    refuse(&j->r, KN_ERR_RESOURCE_EXHAUSTED, msg);
}

static void complete_job(void *arg)
{
    job *j = arg;
    kn_req *r = &j->r;
    kn_pipeline *p = r->p;
    kn_session *s = kn_out_conn_data(p->deps.out, r->caller.conn);
    atomic_fetch_sub(&p->jobs_in_flight, 1);
    if (j->kind == JOB_BEFORE && !r->reply) {
        /* The before hook let a network-thread route through: run it now, if
         * the connection is still there and still allowed to send it. */
        if (s && (r->route->pre_auth || s->authenticated)) {
            run_here(p, s, r->route, r->channel, r->env);
            r->env = NULL;
        }
        free_job(j);
        return;
    }
    check_size(j);
    apply_binds(r, s, j->submitted_ms);
    if (s && r->reply)
        kn_out_send(p->deps.out, &r->caller.conn, 1, KN_CHANNEL_CONTROL, r->reply, r->reply_len,
                    true);
    apply_effects(r);
    if (r->ok && r->reply && has_hook(p, KN_HOOK_AFTER, r->route->message_case)) {
        j->kind = JOB_AFTER;
        if (submit_job(p, j))
            KN_WARN("after hook of %s skipped: API queue full",
                    kn_envelope_type_name(r->route->message_case));
        return;
    }
    free_job(j);
}

static void post_completion(kn_pipeline *p, job *j)
{
    if (kn_out_post(p->deps.out, p->shard, complete_job, j)) {
        /* Cannot reach the network thread (out of memory): drop the answer. */
        atomic_fetch_sub(&p->jobs_in_flight, 1);
        free_job(j);
    }
}

/* --- hooks and handlers (worker thread) ------------------------------------------------- */

/* The before hook: KN_OK to go on (the request possibly rewritten), else the
 * refusal for the client. */
static int run_before(job *j, char *msg, size_t cap)
{
    kn_req *r = &j->r;
    kn_runtime_vm *vm = r->worker->ctx ? kn_runtime_slot_vm(r->worker->ctx) : NULL;
    if (!vm) return KN_OK;
    int op = r->route->message_case;
    const char *name = kn_envelope_type_name(op);
    char *req = NULL, *out = NULL;
    size_t req_len = 0, out_len = 0;
    int rc = kn_envelope_body_to_json(r->env, &req, &req_len);
    if (rc) {
        snprintf(msg, cap, "%s request cannot be passed to its hook (strings must be UTF-8)", name);
        return rc == KN_ERR_NOMEM ? rc : KN_ERR_INVALID_ARGUMENT;
    }
    kn_runtime_services svc;
    kn_runtime_context ctx = kn_req_script_context(r, "before", &svc);
    rc = kn_runtime_hook(vm, &ctx, KN_HOOK_BEFORE, op, req, req_len, NULL, 0, &out, &out_len, msg,
                         cap);
    if (rc == KN_OK && out) {
        char why[200];
        if (kn_envelope_body_from_json(r->env, out, out_len, why, sizeof why)) {
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
static void run_after(job *j)
{
    kn_req *r = &j->r;
    kn_runtime_vm *vm = r->worker->ctx ? kn_runtime_slot_vm(r->worker->ctx) : NULL;
    kn_envelope *reply = NULL;
    char *req = NULL, *res = NULL, *out = NULL, msg[256] = "";
    size_t req_len = 0, res_len = 0, out_len = 0;
    int op = r->route->message_case;
    if (!vm || kn_envelope_decode(r->reply, r->reply_len, &reply)) goto done;
    if (reply->message_case == KAOS__V1__ENVELOPE__MESSAGE_ACK) {
        res = kn_strndup("{}", 2);
        res_len = 2;
    } else if (kn_envelope_body_to_json(reply, &res, &res_len)) {
        KN_WARN("after hook of %s skipped: the reply has non-UTF-8 text",
                kn_envelope_type_name(op));
        goto done;
    }
    if (!res || kn_envelope_body_to_json(r->env, &req, &req_len)) goto done;
    kn_runtime_services svc;
    kn_runtime_context ctx = kn_req_script_context(r, "after", &svc);
    int rc = kn_runtime_hook(vm, &ctx, KN_HOOK_AFTER, op, req, req_len, res, res_len, &out,
                             &out_len, msg, sizeof msg);
    if (rc) KN_WARN("after hook of %s: %s", kn_envelope_type_name(op), msg);
done:
    kn_envelope_free(reply);
    kn_free(req);
    kn_free(res);
    kn_free(out);
}

static void run_job(kn_api_worker *w, void *arg)
{
    job *j = arg;
    kn_req *r = &j->r;
    kn_pipeline *p = r->p;
    r->worker = w;
    if (j->kind == JOB_AFTER) {
        run_after(j);
        atomic_fetch_sub(&p->jobs_in_flight, 1);
        free_job(j);
        return;
    }
    char msg[256] = "";
    int rc = j->before ? run_before(j, msg, sizeof msg) : KN_OK;
    if (rc == KN_OK && j->kind == JOB_BEFORE) {
        r->worker = NULL;
        post_completion(p, j); /* the route goes on on the network thread */
        return;
    }
    if (rc == KN_OK) rc = j->fn(r, msg, sizeof msg);
    assert(!r->next && "a worker handler cannot continue on a worker");
    if (rc)
        reply_error(r, rc, msg, sizeof msg);
    else
        assert((r->reply || r->deferred) && "a handler replies or defers");
    r->worker = NULL;
    post_completion(p, j);
}

/* --- lifecycle ----------------------------------------------------------------------------- */

int kn_pipeline_create(const kn_pipeline_deps *deps, uint16_t shard, kn_pipeline **out)
{
    kn_pipeline *p = kn_calloc(1, sizeof *p);
    *out = p;
    if (!p) return KN_ERR_NOMEM;
    p->deps = *deps;
    p->shard = shard;
    atomic_init(&p->jobs_in_flight, 0);
    return KN_OK;
}

void kn_pipeline_destroy(kn_pipeline *p)
{
    kn_free(p);
}

bool kn_pipeline_drained(const kn_pipeline *p)
{
    return atomic_load(&((kn_pipeline *)p)->jobs_in_flight) == 0;
}

void kn_pipeline_stats_get(const kn_pipeline *p, kn_pipeline_stats *out)
{
    kn_pipeline *q = (kn_pipeline *)p;
    out->errors = atomic_load_explicit(&q->errors, memory_order_relaxed);
    out->unauthenticated = atomic_load_explicit(&q->unauthenticated, memory_order_relaxed);
    out->api_busy = atomic_load_explicit(&q->api_busy, memory_order_relaxed);
}
