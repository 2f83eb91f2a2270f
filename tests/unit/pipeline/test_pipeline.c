/* The pipeline with a fake service: its own route lines and handlers, a
 * fake network lane (kn_out_lane) that records what is sent and closed and
 * queues posts for this thread (the test plays the network thread), real
 * API workers against the Postgres of the PG* environment, and the real
 * session registry. Checks replies on both threads, errors and their
 * masking, route checks, the effects (after the reply, dropped on failure),
 * and a network-thread route continued on a worker. */
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_pipeline.h"
#include "kn_time.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

/* --- the fake lane ------------------------------------------------------------------ */

#define MAX_SENT  64
#define MAX_CONNS 8

typedef struct sent {
    kn_conn_id conn;
    uint8_t channel;
    kn_envelope *env;
} sent;

typedef struct post {
    void (*fn)(void *);
    void *arg;
    struct post *next;
} post;

typedef struct lane {
    pthread_t thread;
    pthread_mutex_t lock;
    post *head, *tail;
    sent sent[MAX_SENT];
    size_t n_sent;
    kn_conn_id closed[MAX_CONNS];
    uint32_t close_reason[MAX_CONNS];
    size_t n_closed, violations, authenticated;
    kn_conn_id ids[MAX_CONNS];
    kn_session *sessions[MAX_CONNS];
    size_t n_conns;
    bool overloaded;
} lane;

static int l_send(void *ud, const kn_conn_id *ids, size_t n, uint8_t channel, const uint8_t *data,
                  size_t len, bool reliable)
{
    lane *l = ud;
    for (size_t i = 0; i < n; i++) {
        assert_true(l->n_sent < MAX_SENT);
        sent *s = &l->sent[l->n_sent++];
        s->conn = ids[i];
        s->channel = channel;
        assert_int_equal(kn_envelope_decode(data, len, &s->env), KN_OK);
    }
    return KN_OK;
}

static void l_close(void *ud, kn_conn_id id, uint32_t reason)
{
    lane *l = ud;
    l->closed[l->n_closed] = id;
    l->close_reason[l->n_closed++] = reason;
}

static int l_post(void *ud, void (*fn)(void *), void *arg)
{
    lane *l = ud;
    post *p = kn_calloc(1, sizeof *p);
    if (!p) return KN_ERR_NOMEM;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&l->lock);
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    pthread_mutex_unlock(&l->lock);
    return KN_OK;
}

static bool l_on_thread(void *ud)
{
    return pthread_equal(((lane *)ud)->thread, pthread_self());
}

static void *l_conn_data(void *ud, kn_conn_id id)
{
    lane *l = ud;
    for (size_t i = 0; i < l->n_conns; i++)
        if (l->ids[i] == id) return l->sessions[i];
    return NULL;
}

static void l_set_authenticated(void *ud, kn_conn_id id)
{
    ((lane *)ud)->authenticated++;
}
static bool l_violation(void *ud, kn_conn_id id)
{
    return ((lane *)ud)->violations++, false;
}
static bool l_overloaded(void *ud)
{
    return ((lane *)ud)->overloaded;
}

/* Runs what was posted to "the network thread" so far; false if nothing was. */
static bool pump(lane *l)
{
    pthread_mutex_lock(&l->lock);
    post *p = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->lock);
    if (!p) nanosleep(&(struct timespec){0, 1000000}, NULL);
    bool ran = p != NULL;
    while (p) {
        post *next = p->next;
        p->fn(p->arg);
        kn_free(p);
        p = next;
    }
    return ran;
}

/* Pumps until `want` packets were sent in all (or 5 s pass). */
static void pump_until_sent(lane *l, size_t want)
{
    int64_t until = kn_time_mono_ms() + 5000;
    while (l->n_sent < want && kn_time_mono_ms() < until)
        pump(l);
    assert_int_equal(l->n_sent, want);
}

/* --- the fake service ---------------------------------------------------------------- */

typedef struct fake_service {
    int calls;
} fake_service;

static int reply_rpc(kn_req *r, const char *payload)
{
    Kaos__V1__Rpc res = KAOS__V1__RPC__INIT;
    res.id = "fake";
    res.payload = (char *)payload;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_RPC;
    env.rpc = &res;
    return kn_req_reply(r, &env);
}

static int pong_on_net(kn_req *r, char *msg, size_t cap)
{
    assert_non_null(kn_req_session(r)); /* the network thread sees the live session */
    assert_null(kn_req_worker(r));
    Kaos__V1__Pong pong = KAOS__V1__PONG__INIT;
    pong.client_time_ms = kn_req_msg(r)->ping->client_time_ms;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PONG;
    env.pong = &pong;
    return kn_req_reply(r, &env);
}

/* The RPC payload says what the handler does. */
static int command_on_worker(kn_req *r, char *msg, size_t cap)
{
    ((fake_service *)kn_req_service(r))->calls++;
    assert_non_null(kn_req_worker(r));
    assert_null(kn_req_session(r));
    const char *cmd = kn_req_msg(r)->rpc->payload;
    if (!strcmp(cmd, "fail")) {
        Kaos__V1__Ack ack = KAOS__V1__ACK__INIT;
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_ACK;
        env.ack = &ack;
        kn_req_effect_send(r, "user-b", NULL, 0, &env); /* must be dropped */
        snprintf(msg, cap, "payload says fail");
        return KN_ERR_INVALID_ARGUMENT;
    }
    if (!strcmp(cmd, "db")) {
        snprintf(msg, cap, "relation kaos_secret does not exist");
        return KN_ERR_DB;
    }
    if (!strcmp(cmd, "bind")) {
        kn_token_claims c = {.user_id = "user-a",
                             .username = "alice",
                             .session_id = "sess-a",
                             .expires_at = 4000000000};
        int rc = reply_rpc(r, "bound");
        return rc ? rc : kn_req_effect_bind(r, &c, false);
    }
    if (!strcmp(cmd, "tell-b")) {
        Kaos__V1__Rpc note = KAOS__V1__RPC__INIT;
        note.id = "note";
        note.payload = "hello b";
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_RPC;
        env.rpc = &note;
        int rc = reply_rpc(r, "told");
        return rc ? rc : kn_req_effect_send(r, "user-b", NULL, 0, &env);
    }
    if (!strcmp(cmd, "ban-b")) {
        int rc = reply_rpc(r, "banned");
        return rc ? rc
                  : kn_req_effect_end_sessions(r, "user-b", NULL, KN_SESSION_END_BAN, false, 0);
    }
    return reply_rpc(r, cmd);
}

static int finish_on_worker(kn_req *r, char *msg, size_t cap)
{
    assert_non_null(kn_req_worker(r));
    return kn_req_ack(r);
}

static int continue_from_net(kn_req *r, char *msg, size_t cap)
{
    kn_req_continue_on_worker(r, finish_on_worker);
    return KN_OK;
}

/* The test's own service indices. */
enum { SVC_NONE, SVC_FAKE };

static const kn_route ping_route = {KAOS__V1__ENVELOPE__MESSAGE_PING,
                                    SVC_NONE,
                                    true,
                                    false,
                                    KN_CH_CONTROL,
                                    KN_RUN_NET,
                                    pong_on_net};
static const kn_route rpc_route = {KAOS__V1__ENVELOPE__MESSAGE_RPC,
                                   SVC_FAKE,
                                   false,
                                   false,
                                   KN_CH_CONTROL,
                                   KN_RUN_API,
                                   command_on_worker};
static const kn_route hop_route = {KAOS__V1__ENVELOPE__MESSAGE_MATCH_CREATE,
                                   SVC_NONE,
                                   false,
                                   false,
                                   KN_CH_CONTROL,
                                   KN_RUN_NET,
                                   continue_from_net};

/* --- fixture ------------------------------------------------------------------------ */

typedef struct fixture {
    lane l;
    kn_out *out;
    kn_sessions *sessions;
    kn_api *api;
    kn_pipeline *p;
    fake_service svc;
    kn_session *a, *b, *b2; /* a: the caller; b, b2: user-b's connections */
} fixture;

static kn_session *open_conn(fixture *f, uint32_t slot)
{
    kn_conn_id id = ((kn_conn_id)7 << 32) | slot; /* shard 0 */
    kn_session *s = kn_sessions_open(f->sessions, id, "127.0.0.1:1", 0x0100007f);
    assert_non_null(s);
    f->l.ids[f->l.n_conns] = id;
    f->l.sessions[f->l.n_conns++] = s;
    return s;
}

static void bind(fixture *f, kn_session *s, const char *user, const char *session)
{
    kn_token_claims c = {.expires_at = 4000000000};
    snprintf(c.user_id, sizeof c.user_id, "%s", user);
    snprintf(c.session_id, sizeof c.session_id, "%s", session);
    char msg[64];
    assert_int_equal(
        kn_sessions_bind(f->sessions, s, &c, false, kn_time_mono_ms(), msg, sizeof msg), KN_OK);
}

static int setup(void **state)
{
    fixture *f = kn_calloc(1, sizeof *f);
    f->l.thread = pthread_self();
    pthread_mutex_init(&f->l.lock, NULL);
    assert_int_equal(kn_out_create(1, &f->out), KN_OK);
    kn_out_lane fake = {
        l_send,      l_close,      l_post, l_on_thread, l_conn_data, l_set_authenticated,
        l_violation, l_overloaded, &f->l,  NULL};
    kn_out_attach_lane(f->out, 0, &fake);
    assert_int_equal(kn_sessions_create(f->out, &f->sessions), KN_OK);
    kn_out_directory dir = kn_sessions_directory(f->sessions);
    kn_out_set_directory(f->out, &dir);
    kn_api_config ac = {.workers = 1, .queue_size = 16, .database_url = ""};
    assert_int_equal(kn_api_create(&ac, &f->api), KN_OK);
    kn_pipeline_deps d = {.api = f->api,
                          .out = f->out,
                          .sessions = f->sessions,
                          .services = {[SVC_FAKE] = &f->svc}};
    assert_int_equal(kn_pipeline_create(&d, 0, &f->p), KN_OK);
    f->a = open_conn(f, 1);
    f->b = open_conn(f, 2);
    f->b2 = open_conn(f, 3);
    bind(f, f->b, "user-b", "sess-b1");
    bind(f, f->b2, "user-b", "sess-b2");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kn_api_destroy(f->api); /* workers done: what they posted is queued */
    while (pump(&f->l))
        continue; /* run the rest, as kn_net_destroy would */
    assert_true(kn_pipeline_drained(f->p));
    for (size_t i = 0; i < f->l.n_conns; i++)
        kn_sessions_close(f->sessions, f->l.sessions[i]);
    for (size_t i = 0; i < f->l.n_sent; i++)
        kn_envelope_free(f->l.sent[i].env);
    kn_pipeline_destroy(f->p);
    kn_sessions_destroy(f->sessions);
    kn_out_destroy(f->out);
    pthread_mutex_destroy(&f->l.lock);
    kn_free(f);
    return 0;
}

/* env as the pipeline gets it: encoded and decoded again, so the pipeline
 * frees what the codec made. */
static kn_envelope *decoded(const kn_envelope *env)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(kn_envelope_encode(env, &buf, &len), KN_OK);
    kn_envelope *out;
    assert_int_equal(kn_envelope_decode(buf, len, &out), KN_OK);
    kn_free(buf);
    return out;
}

static kn_envelope *ping(uint32_t cid)
{
    Kaos__V1__Ping p = KAOS__V1__PING__INIT;
    p.client_time_ms = 1234;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = cid;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PING;
    env.ping = &p;
    return decoded(&env);
}

static kn_envelope *rpc(uint32_t cid, const char *payload)
{
    Kaos__V1__Rpc r = KAOS__V1__RPC__INIT;
    r.id = "fake";
    r.payload = (char *)payload;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = cid;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_RPC;
    env.rpc = &r;
    return decoded(&env);
}

static kn_envelope *create_match(uint32_t cid)
{
    Kaos__V1__MatchCreate mc = KAOS__V1__MATCH_CREATE__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = cid;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_CREATE;
    env.match_create = &mc;
    return decoded(&env);
}

/* --- tests ----------------------------------------------------------------------------- */

static void a_network_thread_route_answers_at_once(void **state)
{
    fixture *f = *state;
    kn_pipeline_run(f->p, f->a, &ping_route, KN_CHANNEL_CONTROL, ping(5));
    assert_int_equal(f->l.n_sent, 1); /* no post, no worker */
    assert_int_equal(f->l.sent[0].conn, f->a->conn);
    assert_int_equal(f->l.sent[0].env->cid, 5);
    assert_int_equal(f->l.sent[0].env->message_case, KAOS__V1__ENVELOPE__MESSAGE_PONG);
    assert_int_equal(f->l.sent[0].env->pong->client_time_ms, 1234);
}

static void a_worker_route_answers_through_its_completion(void **state)
{
    fixture *f = *state;
    bind(f, f->a, "user-a", "sess-a");
    kn_pipeline_run(f->p, f->a, &rpc_route, KN_CHANNEL_CONTROL, rpc(9, "echo me"));
    assert_false(kn_pipeline_drained(f->p));
    pump_until_sent(&f->l, 1);
    assert_int_equal(f->l.sent[0].env->cid, 9);
    assert_int_equal(f->l.sent[0].env->message_case, KAOS__V1__ENVELOPE__MESSAGE_RPC);
    assert_string_equal(f->l.sent[0].env->rpc->payload, "echo me");
    assert_int_equal(f->svc.calls, 1);
}

static void route_checks_refuse_before_any_handler_runs(void **state)
{
    fixture *f = *state;
    /* not authenticated */
    kn_pipeline_run(f->p, f->a, &rpc_route, KN_CHANNEL_CONTROL, rpc(1, "x"));
    /* a control message on a match channel */
    kn_pipeline_run(f->p, f->a, &ping_route, KN_CHANNEL_MATCH_RELIABLE, ping(2));
    assert_int_equal(f->l.n_sent, 2);
    assert_int_equal(f->l.sent[0].env->message_case, KAOS__V1__ENVELOPE__MESSAGE_ERROR);
    assert_int_equal(f->l.sent[0].env->error->code, KAOS__V1__ERROR_CODE__UNAUTHENTICATED);
    assert_int_equal(f->l.sent[1].env->error->code, KAOS__V1__ERROR_CODE__INVALID_ARGUMENT);
    assert_int_equal(f->l.violations, 2);
    assert_int_equal(f->svc.calls, 0);
    assert_true(kn_pipeline_drained(f->p));
}

static void a_failing_handler_sends_its_error_and_none_of_its_effects(void **state)
{
    fixture *f = *state;
    bind(f, f->a, "user-a", "sess-a");
    kn_pipeline_run(f->p, f->a, &rpc_route, KN_CHANNEL_CONTROL, rpc(3, "fail"));
    pump_until_sent(&f->l, 1);
    kn_envelope *e = f->l.sent[0].env;
    assert_int_equal(e->cid, 3);
    assert_int_equal(e->error->code, KAOS__V1__ERROR_CODE__INVALID_ARGUMENT);
    assert_string_equal(e->error->message, "payload says fail");
    assert_int_equal(f->l.sent[0].conn, f->a->conn); /* nothing went to user-b */
}

static void database_failures_reach_the_client_as_database_unavailable(void **state)
{
    fixture *f = *state;
    bind(f, f->a, "user-a", "sess-a");
    kn_pipeline_run(f->p, f->a, &rpc_route, KN_CHANNEL_CONTROL, rpc(4, "db"));
    pump_until_sent(&f->l, 1);
    assert_int_equal(f->l.sent[0].env->error->code, KAOS__V1__ERROR_CODE__UNAVAILABLE);
    assert_string_equal(f->l.sent[0].env->error->message, "database unavailable; retry later");
}

static void a_bind_effect_binds_the_callers_connection(void **state)
{
    fixture *f = *state;
    /* An RPC route needs a session; give the caller a first one. */
    bind(f, f->a, "user-z", "sess-z");
    kn_pipeline_run(f->p, f->a, &rpc_route, KN_CHANNEL_CONTROL, rpc(6, "bind"));
    pump_until_sent(&f->l, 1);
    assert_string_equal(f->l.sent[0].env->rpc->payload, "bound");
    assert_true(f->a->authenticated);
    assert_string_equal(f->a->user_id, "user-a");
    assert_int_equal(f->l.authenticated, 1);
    kn_conn_id ids[4];
    assert_int_equal(kn_sessions_conns(f->sessions, "user-a", NULL, ids, 4), 1);
    assert_int_equal(ids[0], f->a->conn);
    assert_int_equal(kn_sessions_conns(f->sessions, "user-z", NULL, ids, 4), 0);
}

static void a_send_effect_reaches_every_connection_of_the_user_after_the_reply(void **state)
{
    fixture *f = *state;
    bind(f, f->a, "user-a", "sess-a");
    kn_pipeline_run(f->p, f->a, &rpc_route, KN_CHANNEL_CONTROL, rpc(7, "tell-b"));
    pump_until_sent(&f->l, 3);
    assert_int_equal(f->l.sent[0].conn, f->a->conn); /* the reply first */
    assert_string_equal(f->l.sent[0].env->rpc->payload, "told");
    kn_conn_id to[2] = {f->l.sent[1].conn, f->l.sent[2].conn};
    assert_true((to[0] == f->b->conn && to[1] == f->b2->conn) ||
                (to[0] == f->b2->conn && to[1] == f->b->conn));
    assert_string_equal(f->l.sent[1].env->rpc->payload, "hello b");
    assert_int_equal(f->l.sent[1].env->cid, 0); /* an event, not an answer */
}

static void an_end_effect_unbinds_and_closes_only_that_users_connections(void **state)
{
    fixture *f = *state;
    bind(f, f->a, "user-a", "sess-a");
    kn_pipeline_run(f->p, f->a, &rpc_route, KN_CHANNEL_CONTROL, rpc(8, "ban-b"));
    pump_until_sent(&f->l, 1);
    assert_int_equal(f->l.n_closed, 2);
    assert_false(f->b->authenticated);
    assert_false(f->b2->authenticated);
    assert_true(f->a->authenticated);
    for (size_t i = 0; i < 2; i++) {
        assert_true(f->l.closed[i] == f->b->conn || f->l.closed[i] == f->b2->conn);
        assert_int_equal(f->l.close_reason[i], KAOS__V1__DISCONNECT_REASON__DISCONNECT_BANNED);
    }
    /* Their tokens can no longer be resumed, and a bind queued before the
     * ban is refused. */
    char msg[128];
    assert_true(kn_sessions_revoked(f->sessions, "sess-b1", msg, sizeof msg));
    assert_string_equal(msg, "session token revoked (account banned)");
    kn_token_claims c = {.user_id = "user-b", .session_id = "sess-b3"};
    assert_int_equal(kn_sessions_bind(f->sessions, f->b, &c, false, 0, msg, sizeof msg),
                     KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "account is banned");
}

static void a_network_route_can_continue_on_a_worker(void **state)
{
    fixture *f = *state;
    bind(f, f->a, "user-a", "sess-a");
    kn_pipeline_run(f->p, f->a, &hop_route, KN_CHANNEL_CONTROL, create_match(11));
    assert_int_equal(f->l.n_sent, 0);
    pump_until_sent(&f->l, 1);
    assert_int_equal(f->l.sent[0].env->cid, 11);
    assert_int_equal(f->l.sent[0].env->message_case, KAOS__V1__ENVELOPE__MESSAGE_ACK);
}

static void an_answer_for_a_connection_that_left_is_dropped(void **state)
{
    fixture *f = *state;
    bind(f, f->a, "user-a", "sess-a");
    kn_pipeline_run(f->p, f->a, &rpc_route, KN_CHANNEL_CONTROL, rpc(12, "late"));
    f->l.ids[0] = 0; /* the connection is gone: its id finds no session */
    int64_t until = kn_time_mono_ms() + 5000;
    while (!kn_pipeline_drained(f->p) && kn_time_mono_ms() < until)
        pump(&f->l);
    assert_true(kn_pipeline_drained(f->p));
    assert_int_equal(f->l.n_sent, 0);
    f->l.ids[0] = f->a->conn;
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(a_network_thread_route_answers_at_once),
        T(a_worker_route_answers_through_its_completion),
        T(route_checks_refuse_before_any_handler_runs),
        T(a_failing_handler_sends_its_error_and_none_of_its_effects),
        T(database_failures_reach_the_client_as_database_unavailable),
        T(a_bind_effect_binds_the_callers_connection),
        T(a_send_effect_reaches_every_connection_of_the_user_after_the_reply),
        T(an_end_effect_unbinds_and_closes_only_that_users_connections),
        T(a_network_route_can_continue_on_a_worker),
        T(an_answer_for_a_connection_that_left_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
