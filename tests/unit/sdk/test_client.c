/* The SDK client through kaos.h. Without a server: local argument and
 * configuration errors (the server key, the insecure modes, the config's
 * size) and the fail-every-allocation sweep over create + connect +
 * destroy. Against a scripted server (a real kn_net on loopback, on its own
 * thread, that records each request and answers only what a test tells it
 * to): completions fire once with their typed answer or their error, by
 * cid; pending ones fail once on disconnect and never after destroy;
 * events reach the callback registered for their kind; answers to no
 * pending request are counted and dropped. */
#include "kaos.h"
#include "kn_codec.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_net.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static long fail_at = -1, count, live;

/* Any well-formed key will do: nothing here gets as far as the handshake. */
static const char some_key[] = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef";

static void *t_alloc(void *ud, size_t size)
{
    if (count++ == fail_at) return NULL;
    void *p = malloc(size ? size : 1);
    if (p) live++;
    return p;
}

static void *t_realloc(void *ud, void *ptr, size_t size)
{
    if (count++ == fail_at) return NULL;
    void *p = realloc(ptr, size ? size : 1);
    if (p && !ptr) live++;
    return p;
}

static void t_free(void *ud, void *ptr)
{
    if (ptr) live--;
    free(ptr);
}

/* --- the scripted server ----------------------------------------------------------- */

static uint8_t server_pk[32], server_sk[32];
static char server_hex[65];

#define MAX_SEEN 32

typedef struct fake {
    kn_net *net;
    pthread_t thread;
    pthread_mutex_t mu; /* guards what the net thread writes below */
    kn_conn_id conn;    /* the last connection opened */
    size_t seen;        /* requests received, in order: */
    uint32_t cids[MAX_SEEN];
    int types[MAX_SEEN];
} fake;

static void *fake_open(void *ud, kn_conn_id id, const char *address)
{
    fake *f = ud;
    pthread_mutex_lock(&f->mu);
    f->conn = id;
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void fake_message(void *ud, kn_conn_id id, void *conn_data, uint8_t channel,
                         const uint8_t *data, size_t len)
{
    fake *f = ud;
    kn_envelope *env = NULL;
    if (kn_envelope_decode(data, len, &env) != KN_OK) return;
    pthread_mutex_lock(&f->mu);
    if (f->seen < MAX_SEEN) {
        f->cids[f->seen] = env->cid;
        f->types[f->seen] = (int)env->message_case;
        f->seen++;
    }
    pthread_mutex_unlock(&f->mu);
    kn_envelope_free(env);
}

static void fake_close(void *ud, kn_conn_id id, void *conn_data, uint32_t reason) {}

static void *fake_run(void *net)
{
    kn_net_run(net);
    return NULL;
}

static void fake_start(fake *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    kn_net_config cfg;
    kn_net_config_default(&cfg);
    cfg.bind = "127.0.0.1";
    cfg.port = 0;
    cfg.shutdown_grace_ms = 100;
    cfg.server_pk = server_pk;
    cfg.server_sk = server_sk;
    kn_net_handler h = {
        .on_open = fake_open, .on_message = fake_message, .on_close = fake_close, .ud = f};
    assert_int_equal(kn_net_create(&cfg, &h, &f->net), KN_OK);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f->net), 0);
}

static void fake_stop(fake *f)
{
    kn_net_stop(f->net);
    pthread_join(f->thread, NULL);
    kn_net_destroy(f->net);
    pthread_mutex_destroy(&f->mu);
}

/* Sends `env` to the last connection, on `channel` (reliably). */
static void fake_send_on(fake *f, const kn_envelope *env, uint8_t channel)
{
    uint8_t *bytes;
    size_t len;
    assert_int_equal(kn_envelope_encode(env, &bytes, &len), KN_OK);
    pthread_mutex_lock(&f->mu);
    kn_conn_id conn = f->conn;
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(kn_net_post(f->net, conn, channel, bytes, len, true), KN_OK);
}

/* Sends an envelope of cid `id` holding `msg` as its `member` (of case CASE). */
#define SEND_ON(f, channel, id, CASE, member, msg)                                                 \
    do {                                                                                           \
        kn_envelope e_ = KN_ENVELOPE_INIT;                                                         \
        e_.cid = (id);                                                                             \
        e_.message_case = KAOS__V1__ENVELOPE__MESSAGE_##CASE;                                      \
        e_.member = (msg);                                                                         \
        fake_send_on((f), &e_, (channel));                                                         \
    } while (0)
#define SEND(f, id, CASE, member, msg) SEND_ON(f, KN_CHANNEL_CONTROL, id, CASE, member, msg)

static size_t fake_seen(fake *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->seen;
    pthread_mutex_unlock(&f->mu);
    return n;
}

#define POLL_UNTIL(c, cond)                                                                        \
    do {                                                                                           \
        for (int i_ = 0; i_ < 500 && !(cond); i_++)                                                \
            kaos_client_poll((c), 10);                                                             \
        assert_true(cond);                                                                         \
    } while (0)

/* Polls until the server has received its n-th request; returns its cid
 * after checking its envelope type. */
static uint32_t request_seen(fake *f, kaos_client *c, size_t n, int type)
{
    POLL_UNTIL(c, fake_seen(f) >= n);
    pthread_mutex_lock(&f->mu);
    uint32_t cid = f->cids[n - 1];
    int seen_type = f->types[n - 1];
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(seen_type, type);
    return cid;
}

/* What the callbacks saw, in the order they fired. */
typedef struct trace {
    int calls;
    char log[512]; /* "name:cid:code;" per call */
    int code;
    uint32_t cid;
    char text[64]; /* a payload, message or match id */
    int64_t number;
    bool connected, disconnected;
} trace;

static void note(trace *t, const char *what, const kaos_result *r)
{
    t->calls++;
    size_t n = strlen(t->log);
    snprintf(t->log + n, sizeof t->log - n, "%s:%u:%d;", what, r ? r->cid : 0, r ? r->code : 0);
    if (!r) return;
    t->cid = r->cid;
    t->code = r->code;
    snprintf(t->text, sizeof t->text, "%s", r->message);
}

static void t_connected(kaos_client *c, void *ud)
{
    ((trace *)ud)->connected = true;
}

static void t_disconnected(kaos_client *c, uint32_t reason, void *ud)
{
    trace *t = ud;
    t->disconnected = true;
    note(t, "disconnected", NULL);
}

static void t_error(kaos_client *c, const kaos_result *r, void *ud)
{
    note(ud, "error", r);
}

static void t_done(kaos_client *c, const kaos_result *r, void *ud)
{
    note(ud, "done", r);
}

static void t_rpc(kaos_client *c, const kaos_result *r, const char *payload, size_t len, void *ud)
{
    trace *t = ud;
    note(t, "rpc", r);
    if (r->code == KAOS_OK) snprintf(t->text, sizeof t->text, "%.*s", (int)len, payload);
}

static void t_pong(kaos_client *c, const kaos_result *r, int64_t rtt_ms, void *ud)
{
    note(ud, "pong", r);
}

static void t_account(kaos_client *c, const kaos_result *r, const kaos_account *a, void *ud)
{
    trace *t = ud;
    note(t, "account", r);
    if (r->code == KAOS_OK) snprintf(t->text, sizeof t->text, "%s", a->user.username);
}

static void t_match_data(kaos_client *c, uint32_t match, uint32_t sender, int64_t op_code,
                         const uint8_t *data, size_t len, bool reliable, void *ud)
{
    trace *t = ud;
    note(t, "data", NULL);
    t->number = op_code;
    snprintf(t->text, sizeof t->text, "%u:%u:%.*s:%d", match, sender, (int)len, data, reliable);
}

static void t_match_end(kaos_client *c, uint32_t match, const char *match_id, int code,
                        const char *reason, void *ud)
{
    trace *t = ud;
    note(t, "end", NULL);
    snprintf(t->text, sizeof t->text, "%u:%s:%d:%s", match, match_id, code, reason);
}

static void t_shutdown(kaos_client *c, uint32_t grace_ms, void *ud)
{
    trace *t = ud;
    note(t, "shutdown", NULL);
    t->number = grace_ms;
}

/* A client connected to f; its connection events go to `events`. */
static kaos_client *connect_to(fake *f, trace *events)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.port = kn_net_port(f->net);
    cfg.keepalive_ms = 0;
    cfg.server_key = server_hex;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    kaos_client_on_connected(c, t_connected, events);
    kaos_client_on_disconnected(c, t_disconnected, events);
    kaos_client_on_error(c, t_error, events);
    assert_int_equal(kaos_client_connect(c), KAOS_OK);
    POLL_UNTIL(c, events->connected);
    return c;
}

/* Each server test: a scripted server and a client connected to it, whose
 * connection events (and errors of no request) go to `ev`. */
typedef struct fixture {
    fake f;
    trace ev;
    kaos_client *c;
} fixture;

static int with_server(void **state)
{
    fixture *x = calloc(1, sizeof *x);
    assert_non_null(x);
    fake_start(&x->f);
    x->c = connect_to(&x->f, &x->ev);
    *state = x;
    return 0;
}

static int without_server(void **state)
{
    fixture *x = *state;
    kaos_client_destroy(x->c);
    fake_stop(&x->f);
    free(x);
    return 0;
}

static uint64_t unexpected(const kaos_client *c)
{
    kaos_client_stats st;
    kaos_client_get_stats(c, &st);
    return st.unexpected_received;
}

static void a_completion_fires_once_with_its_typed_answer(void **state)
{
    fixture *x = *state;
    kaos_client *c = x->c;
    trace rpc = {0};

    int cid = kaos_client_rpc_call(c, "echo", "ping!", t_rpc, &rpc);
    assert_true(cid > 0);
    assert_int_equal(request_seen(&x->f, c, 1, KAOS__V1__ENVELOPE__MESSAGE_RPC), (uint32_t)cid);
    Kaos__V1__Rpc answer = KAOS__V1__RPC__INIT;
    answer.id = "echo";
    answer.payload = "pong!";
    SEND(&x->f, (uint32_t)cid, RPC, rpc, &answer);
    POLL_UNTIL(c, rpc.calls == 1);
    assert_int_equal(rpc.cid, (uint32_t)cid);
    assert_int_equal(rpc.code, KAOS_OK);
    assert_string_equal(rpc.text, "pong!");

    /* The same answer again, and one for a cid never used: counted, dropped. */
    uint64_t before = unexpected(c);
    SEND(&x->f, (uint32_t)cid, RPC, rpc, &answer);
    SEND(&x->f, 999, RPC, rpc, &answer);
    POLL_UNTIL(c, unexpected(c) == before + 2);
    assert_int_equal(rpc.calls, 1);
    assert_int_equal(x->ev.calls, 0); /* not errors either */
}

static void an_answer_of_the_wrong_type_fails_its_completion(void **state)
{
    fixture *x = *state;
    kaos_client *c = x->c;
    trace pong = {0};
    int cid = kaos_client_ping(c, t_pong, &pong);
    assert_true(cid > 0);
    request_seen(&x->f, c, 1, KAOS__V1__ENVELOPE__MESSAGE_PING);
    uint64_t before = unexpected(c);
    Kaos__V1__Ack ack = KAOS__V1__ACK__INIT;
    SEND(&x->f, (uint32_t)cid, ACK, ack, &ack);
    POLL_UNTIL(c, pong.calls == 1);
    assert_int_equal(pong.code, KAOS_ERR_MALFORMED);
    assert_int_equal(pong.cid, (uint32_t)cid);
    assert_int_equal(unexpected(c), before + 1);
}

static void a_server_error_reaches_the_completion_of_its_cid(void **state)
{
    fixture *x = *state;
    kaos_client *c = x->c;
    trace account = {0}, del = {0};
    int first = kaos_client_account_get(c, t_account, &account);
    kaos_storage_id id = {.collection = "saves", .key = "slot1"};
    int second = kaos_client_storage_delete(c, &id, 1, t_done, &del);
    assert_true(first > 0 && second > 0 && first != second);
    request_seen(&x->f, c, 2, KAOS__V1__ENVELOPE__MESSAGE_STORAGE_DELETE);

    /* The later request's error first: it goes to that request only. */
    Kaos__V1__Error e = KAOS__V1__ERROR__INIT;
    e.code = KAOS__V1__ERROR_CODE__NOT_FOUND;
    e.message = "no such object";
    SEND(&x->f, (uint32_t)second, ERROR, error, &e);
    POLL_UNTIL(c, del.calls == 1);
    assert_int_equal(del.cid, (uint32_t)second);
    assert_int_equal(del.code, KAOS_ERR_NOT_FOUND);
    assert_string_equal(del.text, "no such object");
    assert_int_equal(account.calls, 0);

    Kaos__V1__User user = KAOS__V1__USER__INIT;
    user.username = "ada";
    Kaos__V1__Account a = KAOS__V1__ACCOUNT__INIT;
    a.user = &user;
    SEND(&x->f, (uint32_t)first, ACCOUNT, account, &a);
    POLL_UNTIL(c, account.calls == 1);
    assert_int_equal(account.code, KAOS_OK);
    assert_string_equal(account.text, "ada");

    /* Errors of no pending request reach the error event, with their cid:
     * 0 (not about a request) or one the client never gave (a raw send). */
    e.code = KAOS__V1__ERROR_CODE__RESOURCE_EXHAUSTED;
    e.message = "slow down";
    SEND(&x->f, 0, ERROR, error, &e);
    SEND(&x->f, 77, ERROR, error, &e);
    POLL_UNTIL(c, x->ev.calls == 2);
    assert_string_equal(x->ev.log, "error:0:-8;error:77:-8;");
    assert_int_equal(del.calls, 1);
    assert_int_equal(account.calls, 1);
}

static void pending_completions_fail_once_on_disconnect_and_never_after_destroy(void **state)
{
    fixture *x = *state;
    kaos_client *c = x->c;
    /* All three record into the event trace, so the order shows. */
    int a = kaos_client_ping(c, t_pong, &x->ev);
    int b = kaos_client_rpc_call(c, "slow", NULL, t_rpc, &x->ev);
    int d = kaos_client_match_leave(c, 1, t_done, &x->ev);
    assert_true(a > 0 && b > 0 && d > 0);
    request_seen(&x->f, c, 3, KAOS__V1__ENVELOPE__MESSAGE_MATCH_LEAVE);
    assert_int_equal(x->ev.calls, 0);
    assert_int_equal(kaos_client_disconnect(c), KAOS_OK);
    assert_int_equal(x->ev.calls, 0); /* only from poll */
    POLL_UNTIL(c, x->ev.disconnected);
    char want[256];
    snprintf(want, sizeof want, "pong:%d:%d;rpc:%d:%d;done:%d:%d;disconnected:0:0;", a,
             KAOS_ERR_CLOSED, b, KAOS_ERR_CLOSED, d, KAOS_ERR_CLOSED);
    assert_string_equal(x->ev.log, want);
    /* Disconnected: a new request fails locally, and its completion never fires. */
    assert_int_equal(kaos_client_ping(c, t_pong, &x->ev), KAOS_ERR_CLOSED);
    kaos_client_poll(c, 10);
    assert_int_equal(x->ev.calls, 4);
    kaos_client_destroy(c);
    x->c = NULL; /* for the teardown */

    /* Destroyed with a request pending: it is freed (the ASan run checks)
     * and never fires. */
    trace ev2 = {0}, late = {0};
    c = connect_to(&x->f, &ev2);
    int cid = kaos_client_ping(c, t_pong, &late);
    assert_true(cid > 0);
    request_seen(&x->f, c, 4, KAOS__V1__ENVELOPE__MESSAGE_PING);
    kaos_client_destroy(c);
    assert_int_equal(late.calls, 0);
    assert_int_equal(ev2.calls, 0);
}

/* The request table names the envelope each request leaves as: the wire
 * the server has always read. */
static void every_request_leaves_as_its_envelope(void **state)
{
    fixture *x = *state;
    kaos_client *c = x->c;
    kaos_account_changes changes = {.display_name = "Ada"};
    kaos_storage_write_object w = {.collection = "saves", .key = "k", .value = "{}"};
    kaos_storage_id id = {.collection = "saves", .key = "k"};
    const char *names[] = {"ada"};
    /* refresh needs a session, so it is left to the e2e tests */
    int cids[] = {
        kaos_client_auth_device(c, "device-0123456", NULL, true, NULL, NULL, NULL),
        kaos_client_auth_email(c, "a@example.com", "password", NULL, true, NULL, NULL, NULL),
        kaos_client_auth_custom(c, "custom-1", NULL, true, NULL, NULL, NULL),
        kaos_client_session_resume(c, "token", NULL, NULL),
        kaos_client_session_logout(c, NULL, NULL),
        kaos_client_ping(c, NULL, NULL),
        kaos_client_rpc_call(c, "id", NULL, NULL, NULL),
        kaos_client_match_create(c, 2, NULL, NULL),
        kaos_client_match_create_authoritative(c, "handler", NULL, NULL, NULL),
        kaos_client_match_join(c, "m.1", NULL, NULL, NULL),
        kaos_client_match_leave(c, 1, NULL, NULL),
        kaos_client_match_list(c, 10, NULL, NULL, 0, 0, NULL, NULL),
        kaos_client_account_get(c, NULL, NULL),
        kaos_client_account_update(c, &changes, NULL, NULL),
        kaos_client_account_delete(c, NULL, NULL),
        kaos_client_account_link_device(c, "device-0123456", NULL, NULL),
        kaos_client_account_link_email(c, "a@example.com", "password", NULL, NULL),
        kaos_client_account_link_custom(c, "custom-1", NULL, NULL),
        kaos_client_account_unlink_device(c, "device-0123456", NULL, NULL),
        kaos_client_account_unlink_email(c, NULL, NULL),
        kaos_client_account_unlink_custom(c, NULL, NULL),
        kaos_client_users_get(c, NULL, 0, names, 1, NULL, NULL),
        kaos_client_storage_write(c, &w, 1, NULL, NULL),
        kaos_client_storage_read(c, &id, 1, NULL, NULL),
        kaos_client_storage_delete(c, &id, 1, NULL, NULL),
        kaos_client_storage_list(c, NULL, "saves", 10, NULL, NULL, NULL),
    };
#define CASE(name) KAOS__V1__ENVELOPE__MESSAGE_##name
    static const int types[] = {
        CASE(AUTHENTICATE_DEVICE),
        CASE(AUTHENTICATE_EMAIL),
        CASE(AUTHENTICATE_CUSTOM),
        CASE(SESSION_RESUME),
        CASE(SESSION_LOGOUT),
        CASE(PING),
        CASE(RPC),
        CASE(MATCH_CREATE),
        CASE(MATCH_CREATE),
        CASE(MATCH_JOIN),
        CASE(MATCH_LEAVE),
        CASE(MATCH_LIST_REQUEST),
        CASE(ACCOUNT_GET),
        CASE(ACCOUNT_UPDATE),
        CASE(ACCOUNT_DELETE),
        CASE(LINK_DEVICE),
        CASE(LINK_EMAIL),
        CASE(LINK_CUSTOM),
        CASE(UNLINK_DEVICE),
        CASE(UNLINK_EMAIL),
        CASE(UNLINK_CUSTOM),
        CASE(USERS_GET),
        CASE(STORAGE_WRITE),
        CASE(STORAGE_READ),
        CASE(STORAGE_DELETE),
        CASE(STORAGE_LIST),
    };
#undef CASE
    size_t n = sizeof cids / sizeof cids[0];
    assert_int_equal(n, sizeof types / sizeof types[0]);
    for (size_t i = 0; i < n; i++) {
        assert_true(cids[i] > 0);
        assert_int_equal(request_seen(&x->f, c, i + 1, types[i]), (uint32_t)cids[i]);
    }
}

/* flush puts a queued request on the wire while the client is never polled. */
static void flush_sends_what_was_queued_without_a_poll(void **state)
{
    fixture *x = *state;
    kaos_client *c = x->c;
    kaos_client_ping(c, NULL, NULL);
    request_seen(&x->f, c, 1, KAOS__V1__ENVELOPE__MESSAGE_PING); /* connected and secured */
    int cid = kaos_client_ping(c, NULL, NULL);
    assert_true(cid > 0);
    assert_int_equal(kaos_client_flush(c), 0);
    for (int i = 0; i < 500 && fake_seen(&x->f) < 2; i++) usleep(10000);
    assert_int_equal(fake_seen(&x->f), 2);
    assert_int_equal(kaos_client_flush(NULL), KAOS_ERR_INVALID_ARGUMENT);
}

static void events_reach_the_callback_registered_for_their_kind(void **state)
{
    fixture *x = *state;
    kaos_client *c = x->c;
    trace data = {0}, end = {0}, bye = {0};
    kaos_client_on_match_data(c, t_match_data, &data);
    kaos_client_on_match_end(c, t_match_end, &end);
    kaos_client_on_shutdown_notice(c, t_shutdown, &bye);

    Kaos__V1__MatchData d = KAOS__V1__MATCH_DATA__INIT;
    d.match = 3;
    d.sender = 2;
    d.op_code = 7;
    d.data.data = (uint8_t *)"hi";
    d.data.len = 2;
    SEND_ON(&x->f, KN_CHANNEL_MATCH_RELIABLE, 0, MATCH_DATA, match_data, &d);
    POLL_UNTIL(c, data.calls == 1);
    assert_int_equal(data.number, 7);
    assert_string_equal(data.text, "3:2:hi:1");

    Kaos__V1__MatchEnd e = KAOS__V1__MATCH_END__INIT;
    e.match = 3;
    e.match_id = "m.1";
    e.code = 10;
    e.reason = "kicked";
    SEND(&x->f, 0, MATCH_END, match_end, &e);
    POLL_UNTIL(c, end.calls == 1);
    assert_string_equal(end.text, "3:m.1:10:kicked");

    /* Unregistered: the event is dropped quietly (not an unexpected message). */
    kaos_client_on_match_data(c, NULL, NULL);
    uint64_t before = unexpected(c);
    SEND_ON(&x->f, KN_CHANNEL_MATCH_RELIABLE, 0, MATCH_DATA, match_data, &d);
    Kaos__V1__ServerShutdown s = KAOS__V1__SERVER_SHUTDOWN__INIT;
    s.grace_ms = 500;
    SEND(&x->f, 0, SERVER_SHUTDOWN, server_shutdown, &s);
    POLL_UNTIL(c, bye.calls == 1);
    assert_int_equal(bye.number, 500);
    assert_int_equal(data.calls, 1);
    assert_int_equal(end.calls, 1);
    assert_int_equal(x->ev.calls, 0);
    assert_int_equal(unexpected(c), before);
}

/* --- without a server -------------------------------------------------------------- */

static void a_config_is_checked_against_the_size_it_was_built_with(void **state)
{
    kaos_client *c = NULL;
    /* Not filled by kaos_client_config_default: no size. */
    kaos_client_config raw = {.host = "127.0.0.1", .port = 7350, .server_key = some_key};
    assert_int_equal(kaos_client_create(&raw, &c), KAOS_ERR_CONFIG);
    assert_null(c);

    /* From a newer kaos.h with one more field: fine while that field is
     * left at its default (zero), refused once it is set. */
    struct {
        kaos_client_config cfg;
        uint64_t newer_field;
    } newer;
    kaos_client_config_init(&newer.cfg, sizeof newer);
    assert_int_equal(newer.cfg.size, sizeof newer);
    assert_int_equal(newer.newer_field, 0);
    assert_int_equal(newer.cfg.port, 7350);
    newer.cfg.server_key = some_key;
    assert_int_equal(kaos_client_create(&newer.cfg, &c), KAOS_OK);
    kaos_client_destroy(c);
    newer.newer_field = 1;
    assert_int_equal(kaos_client_create(&newer.cfg, &c), KAOS_ERR_CONFIG);
}

/* A client that is created but never connected (nobody listens on port 1). */
static kaos_client *unconnected_client(void)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.port = 1;
    cfg.server_key = some_key;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    return c;
}

static void requests_fail_locally_when_not_connected_or_too_large(void **state)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.port = 1; /* nobody listens */
    cfg.server_key = some_key;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    assert_false(kaos_client_is_connected(c));
    assert_null(kaos_client_session(c));
    assert_int_equal(kaos_client_ping(c, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_session_refresh(c, NULL, NULL),
                     KAOS_ERR_UNAUTHENTICATED); /* no session yet */
    assert_int_equal(kaos_client_connect(c), KAOS_OK);
    assert_int_equal(kaos_client_connect(c), KAOS_ERR_FAILED_PRECONDITION);
    static uint8_t big[KAOS_MAX_MESSAGE_SIZE + 1];
    int rc = kaos_client_match_send(c, 1, 1, big, sizeof big, true, NULL, 0);
    assert_true(rc == KAOS_ERR_TOO_LARGE || rc == KAOS_ERR_CLOSED);
    kaos_client_destroy(c);

    kaos_client_config bad;
    kaos_client_config_default(&bad);
    bad.port = 0;
    assert_int_equal(kaos_client_create(&bad, &c), KAOS_ERR_CONFIG);
    assert_string_equal(kaos_err_text(KAOS_ERR_NOT_FOUND), "not found");
}

/* Bad arguments are refused before the connection state is looked at, so
 * these hold connected or not; good ones fail only for want of a connection. */
static void account_requests_check_their_arguments_locally(void **state)
{
    kaos_client *c = unconnected_client();

    /* NULL client */
    assert_int_equal(kaos_client_account_get(NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    kaos_account_changes none = {0};
    assert_int_equal(kaos_client_account_update(NULL, &none, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_users_get(NULL, NULL, 0, NULL, 0, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_delete(NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_device(NULL, "device-0123456", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_email(NULL, "a@example.com", "password", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_custom(NULL, "custom-1", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_unlink_device(NULL, "device-0123456", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_unlink_email(NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_unlink_custom(NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);

    /* NULL arguments */
    assert_int_equal(kaos_client_account_update(c, NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    const char *ids[] = {"8f4d52c7-bf28-4fcf-8af2-1d4fcf685592", NULL};
    assert_int_equal(kaos_client_users_get(c, NULL, 1, NULL, 0, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_users_get(c, NULL, 0, NULL, 3, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_users_get(c, ids, 2, NULL, 0, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_users_get(c, NULL, 0, ids, 2, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_device(c, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_email(c, NULL, "password", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_email(c, "a@example.com", NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_custom(c, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_unlink_device(c, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);

    /* Well-formed, but not connected (lists may be NULL with a count of 0). */
    assert_int_equal(kaos_client_account_get(c, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_update(c, &none, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_users_get(c, ids, 1, NULL, 0, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_users_get(c, NULL, 0, ids, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_users_get(c, NULL, 0, NULL, 0, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_delete(c, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_link_device(c, "device-0123456", NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_link_email(c, "a@example.com", "password", NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_link_custom(c, "custom-1", NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_unlink_device(c, "device-0123456", NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_unlink_email(c, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_unlink_custom(c, NULL, NULL), KAOS_ERR_CLOSED);
    kaos_client_destroy(c);
}

/* The same rule for storage: pointers are checked locally (a NULL list with
 * a count, a NULL collection, key or value), everything else by the server. */
static void storage_requests_check_their_arguments_locally(void **state)
{
    kaos_client *c = unconnected_client();

    kaos_storage_write_object w = {.collection = "saves", .key = "slot1", .value = "{}"};
    kaos_storage_id id = {.collection = "saves", .key = "slot1"};

    /* NULL client */
    assert_int_equal(kaos_client_storage_write(NULL, &w, 1, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_read(NULL, &id, 1, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_delete(NULL, &id, 1, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_list(NULL, NULL, "saves", 10, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);

    /* NULL lists with a count, NULL required fields */
    assert_int_equal(kaos_client_storage_write(c, NULL, 1, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_read(c, NULL, 2, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_delete(c, NULL, 3, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    kaos_storage_write_object bad_w[] = {w, w, w};
    bad_w[1].value = NULL;
    assert_int_equal(kaos_client_storage_write(c, bad_w, 3, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    bad_w[1] = w;
    bad_w[2].collection = NULL;
    assert_int_equal(kaos_client_storage_write(c, bad_w, 3, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    bad_w[2] = w;
    bad_w[0].key = NULL;
    assert_int_equal(kaos_client_storage_write(c, bad_w, 3, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    kaos_storage_id bad_id[] = {id, id};
    bad_id[1].key = NULL;
    assert_int_equal(kaos_client_storage_read(c, bad_id, 2, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_delete(c, bad_id, 2, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    bad_id[1] = id;
    bad_id[0].collection = NULL;
    assert_int_equal(kaos_client_storage_read(c, bad_id, 2, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_list(c, NULL, NULL, 10, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);

    /* More objects than could ever fit in one message. */
    static kaos_storage_id many[KAOS_MAX_MESSAGE_SIZE + 1];
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
        many[i] = id;
    assert_int_equal(kaos_client_storage_read(c, many, sizeof many / sizeof many[0], NULL, NULL),
                     KAOS_ERR_TOO_LARGE);

    /* Well-formed (the server judges values, limits and empty strings), but
     * not connected; an empty list, owner, version and cursor may be NULL. */
    kaos_storage_write_object odd = {.collection = "",
                                     .key = "k",
                                     .value = "[not json",
                                     .permissions_set = true,
                                     .permission_read = 7};
    assert_int_equal(kaos_client_storage_write(c, &odd, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_write(c, NULL, 0, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_read(c, &id, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_read(c, NULL, 0, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_delete(c, &id, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_list(c, NULL, "saves", 0, NULL, NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_list(c, "8f4d52c7-bf28-4fcf-8af2-1d4fcf685592", "saves",
                                              500, "cursor", NULL, NULL),
                     KAOS_ERR_CLOSED);
    kaos_client_destroy(c);
}

/* The same rule for notifications: a NULL client, a NULL id list with a
 * count or a NULL id is refused locally; limit and cursor are the server's. */
static void notifications_requests_check_their_arguments_locally(void **state)
{
    (void)state;
    kaos_client *c = unconnected_client();
    const char *ids[] = {"8f4d52c7-bf28-4fcf-8af2-1d4fcf685592", NULL};
    assert_int_equal(kaos_client_notifications_list(NULL, 0, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_notifications_delete(NULL, ids, 1, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_notifications_delete(c, NULL, 2, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_notifications_delete(c, ids, 2, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_notifications_list(c, 500, "not a cursor", NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_notifications_delete(c, ids, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_notifications_delete(c, NULL, 0, NULL, NULL), KAOS_ERR_CLOSED);
    kaos_client_on_notifications(c, NULL, NULL); /* unregistering is always fine */
    kaos_client_destroy(c);
}

/* --- status and streams ------------------------------------------------------------- */

static void t_status(kaos_client *c, const kaos_result *r, const kaos_user_presence *p, size_t n,
                     void *ud)
{
    trace *t = ud;
    note(t, "status", r);
    t->number = (int64_t)n;
    if (n)
        snprintf(t->text, sizeof t->text, "%s:%s:%s:%s", p[0].user_id, p[0].session_id,
                 p[0].username, p[0].status);
}

static void t_status_presence(kaos_client *c, const kaos_user_presence *joins, size_t nj,
                              const kaos_user_presence *leaves, size_t nl, void *ud)
{
    trace *t = ud;
    note(t, "status_presence", NULL);
    snprintf(t->text, sizeof t->text, "+%zu%s%s -%zu%s%s", nj, nj ? ":" : "",
             nj ? joins[0].status : "", nl, nl ? ":" : "", nl ? leaves[0].status : "");
}

static void t_stream_presence(kaos_client *c, const kaos_stream *s, const kaos_user_presence *joins,
                              size_t nj, const kaos_user_presence *leaves, size_t nl, void *ud)
{
    trace *t = ud;
    note(t, "stream_presence", NULL);
    snprintf(t->text, sizeof t->text, "%u/%s/%s/%s +%zu%s%s -%zu", s->mode, s->subject,
             s->subcontext, s->label, nj, nj ? ":" : "", nj ? joins[0].username : "", nl);
    (void)leaves;
}

static void t_stream_data(kaos_client *c, const kaos_stream *s, const kaos_user_presence *sender,
                          const uint8_t *data, size_t len, bool reliable, void *ud)
{
    trace *t = ud;
    note(t, "stream_data", NULL);
    snprintf(t->text, sizeof t->text, "%u/%s:%s:%.*s:%d", s->mode, s->label,
             sender ? sender->username : "(server)", (int)len, data, reliable);
}

static void t_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud)
{
    note(ud, "session", r);
}

static void status_requests_travel_and_their_answers_and_events_arrive(void **state)
{
    fixture *x = *state;
    kaos_client *c = x->c;
    trace follow = {0}, unfollow = {0}, update = {0}, sp = {0}, stp = {0}, sd = {0};
    kaos_client_on_status_presence(c, t_status_presence, &sp);
    kaos_client_on_stream_presence(c, t_stream_presence, &stp);
    kaos_client_on_stream_data(c, t_stream_data, &sd);

    const char *ids[] = {"8f4d52c7-bf28-4fcf-8af2-1d4fcf685592"};
    const char *names[] = {"alice"};
    int cid = kaos_client_status_follow(c, ids, 1, names, 1, t_status, &follow);
    assert_true(cid > 0);
    assert_int_equal(request_seen(&x->f, c, 1, KAOS__V1__ENVELOPE__MESSAGE_STATUS_FOLLOW),
                     (uint32_t)cid);
    Kaos__V1__UserPresence up = KAOS__V1__USER_PRESENCE__INIT, *ups[] = {&up};
    up.user_id = "u1";
    up.session_id = "s1";
    up.username = "alice";
    up.status = "playing";
    Kaos__V1__Status st = KAOS__V1__STATUS__INIT;
    st.n_presences = 1;
    st.presences = ups;
    SEND(&x->f, (uint32_t)cid, STATUS, status, &st);
    POLL_UNTIL(c, follow.calls == 1);
    assert_int_equal(follow.code, KAOS_OK);
    assert_int_equal(follow.number, 1);
    assert_string_equal(follow.text, "u1:s1:alice:playing");

    cid = kaos_client_status_unfollow(c, ids, 1, t_done, &unfollow);
    assert_int_equal(request_seen(&x->f, c, 2, KAOS__V1__ENVELOPE__MESSAGE_STATUS_UNFOLLOW),
                     (uint32_t)cid);
    assert_true(kaos_client_status_update(c, "away", t_done, &update) > 0);
    request_seen(&x->f, c, 3, KAOS__V1__ENVELOPE__MESSAGE_STATUS_UPDATE);
    assert_true(kaos_client_status_update(c, NULL, NULL, NULL) > 0); /* appear offline */
    request_seen(&x->f, c, 4, KAOS__V1__ENVELOPE__MESSAGE_STATUS_UPDATE);

    /* A change: one leave (the old presence) and one join (the new). */
    Kaos__V1__UserPresence old = up;
    old.status = "idle";
    Kaos__V1__UserPresence *olds[] = {&old};
    Kaos__V1__StatusPresenceEvent ev = KAOS__V1__STATUS_PRESENCE_EVENT__INIT;
    ev.n_joins = 1;
    ev.joins = ups;
    ev.n_leaves = 1;
    ev.leaves = olds;
    SEND(&x->f, 0, STATUS_PRESENCE, status_presence, &ev);
    POLL_UNTIL(c, sp.calls == 1);
    assert_string_equal(sp.text, "+1:playing -1:idle");

    Kaos__V1__Stream stream = KAOS__V1__STREAM__INIT;
    stream.mode = 8;
    stream.subject = "room";
    stream.label = "lobby";
    Kaos__V1__StreamPresenceEvent spe = KAOS__V1__STREAM_PRESENCE_EVENT__INIT;
    spe.stream = &stream;
    spe.n_joins = 1;
    spe.joins = ups;
    SEND(&x->f, 0, STREAM_PRESENCE, stream_presence, &spe);
    POLL_UNTIL(c, stp.calls == 1);
    assert_string_equal(stp.text, "8/room//lobby +1:alice -0");

    Kaos__V1__StreamData d = KAOS__V1__STREAM_DATA__INIT;
    d.stream = &stream;
    d.data.data = (uint8_t *)"hey";
    d.data.len = 3;
    d.reliable = true;
    SEND(&x->f, 0, STREAM_DATA, stream_data, &d);
    POLL_UNTIL(c, sd.calls == 1);
    assert_string_equal(sd.text, "8/lobby:(server):hey:1");
    d.sender = &up; /* one from a session */
    SEND(&x->f, 0, STREAM_DATA, stream_data, &d);
    POLL_UNTIL(c, sd.calls == 2);
    assert_string_equal(sd.text, "8/lobby:alice:hey:1");
    assert_int_equal(x->ev.calls, 0);
}

/* appear_online: a StatusUpdate leaves right after every session answer,
 * before the completion fires; without it nothing more is sent. */
static void appear_online_sends_a_status_update_after_each_session(void **state)
{
    (void)state;
    for (int on = 0; on < 2; on++) {
        fake f;
        fake_start(&f);
        kaos_client_config cfg;
        kaos_client_config_default(&cfg);
        assert_false(cfg.appear_online);
        cfg.port = kn_net_port(f.net);
        cfg.keepalive_ms = 0;
        cfg.server_key = server_hex;
        cfg.appear_online = on;
        kaos_client *c;
        trace ev = {0}, login = {0};
        assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
        kaos_client_on_connected(c, t_connected, &ev);
        assert_int_equal(kaos_client_connect(c), KAOS_OK);
        POLL_UNTIL(c, ev.connected);

        int cid = kaos_client_auth_device(c, "device-0001", NULL, true, NULL, t_session, &login);
        assert_int_equal(request_seen(&f, c, 1, KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE),
                         (uint32_t)cid);
        Kaos__V1__Session s = KAOS__V1__SESSION__INIT;
        s.token = "t";
        s.refresh_token = "r";
        s.user_id = "u1";
        s.username = "bob";
        s.session_id = "s1";
        SEND(&f, (uint32_t)cid, SESSION, session, &s);
        POLL_UNTIL(c, login.calls == 1);
        assert_int_equal(login.code, KAOS_OK);
        /* A refresh is a session answer too. */
        cid = kaos_client_session_refresh(c, t_session, &login);
        size_t n = on ? 3 : 2;
        assert_int_equal(request_seen(&f, c, n, KAOS__V1__ENVELOPE__MESSAGE_SESSION_REFRESH),
                         (uint32_t)cid);
        if (on) request_seen(&f, c, 2, KAOS__V1__ENVELOPE__MESSAGE_STATUS_UPDATE);
        SEND(&f, (uint32_t)cid, SESSION, session, &s);
        POLL_UNTIL(c, login.calls == 2);
        assert_true(kaos_client_ping(c, NULL, NULL) > 0);
        if (on) request_seen(&f, c, n + 1, KAOS__V1__ENVELOPE__MESSAGE_STATUS_UPDATE);
        request_seen(&f, c, n + 1 + on, KAOS__V1__ENVELOPE__MESSAGE_PING);
        kaos_client_destroy(c);
        fake_stop(&f);
    }
}

/* Status requests check their lists like friends: a NULL client, a NULL
 * list with a count or a NULL element is refused locally. */
static void status_requests_check_their_arguments_locally(void **state)
{
    (void)state;
    kaos_client *c = unconnected_client();
    const char *ids[] = {"8f4d52c7-bf28-4fcf-8af2-1d4fcf685592", NULL};
    assert_int_equal(kaos_client_status_follow(NULL, ids, 1, NULL, 0, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_status_follow(c, NULL, 1, NULL, 0, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_status_follow(c, ids, 2, NULL, 0, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_status_follow(c, NULL, 0, ids, 2, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_status_unfollow(NULL, ids, 1, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_status_unfollow(c, NULL, 3, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_status_unfollow(c, ids, 2, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_status_update(NULL, "hi", NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    /* Well-formed: the server judges ids, counts and texts. */
    assert_int_equal(kaos_client_status_follow(c, ids, 1, ids, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_status_follow(c, NULL, 0, NULL, 0, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_status_unfollow(c, ids, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_status_update(c, "\xff", NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_status_update(c, NULL, NULL, NULL), KAOS_ERR_CLOSED);
    kaos_client_on_status_presence(c, NULL, NULL); /* unregistering is always fine */
    kaos_client_on_stream_presence(c, NULL, NULL);
    kaos_client_on_stream_data(c, NULL, NULL);
    kaos_client_destroy(c);
}

/* Friend metadata and friends of friends: a NULL client, user id or
 * metadata is refused locally; JSON, limit and cursor are the server's. */
static void friends_metadata_and_fof_requests_check_their_arguments_locally(void **state)
{
    (void)state;
    kaos_client *c = unconnected_client();
    const char *id = "8f4d52c7-bf28-4fcf-8af2-1d4fcf685592";
    const char *bad[] = {id, NULL};
    assert_int_equal(kaos_client_friends_metadata_update(NULL, id, "{}", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_friends_metadata_update(c, NULL, "{}", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_friends_metadata_update(c, id, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_friends_of_friends_list(NULL, 0, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_friends_add_metadata(NULL, &id, 1, NULL, 0, "{}", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_friends_add_metadata(c, bad, 2, NULL, 0, "{}", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    /* past the local checks: not connected */
    assert_int_equal(kaos_client_friends_metadata_update(c, id, "not json", NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_friends_of_friends_list(c, 5000, "?", NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_friends_add_metadata(c, &id, 1, NULL, 0, NULL, NULL, NULL),
                     KAOS_ERR_CLOSED);
    kaos_client_destroy(c);
}

/* The same rule for groups: a NULL client, group id, spec or name, a NULL
 * id list with a count or a NULL id is refused locally; limits, states,
 * cursors and the ids' form are the server's. */
static void group_requests_check_their_arguments_locally(void **state)
{
    (void)state;
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.port = 1;
    cfg.server_key = some_key;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    const char *gid = "8f4d52c7-bf28-4fcf-8af2-1d4fcf685592";
    const char *ids[] = {"8f4d52c7-bf28-4fcf-8af2-1d4fcf685593", NULL};
    kaos_group_spec spec = {.name = "g", .open = -1}, nameless = {.open = 1};
    assert_int_equal(kaos_client_group_create(NULL, &spec, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_create(c, NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_create(c, &nameless, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_update(c, NULL, &spec, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_update(c, gid, NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_delete(c, NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_join(NULL, gid, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_leave(c, NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_users_add(c, NULL, ids, 1, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_users_kick(c, gid, NULL, 2, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_users_ban(c, gid, ids, 2, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_users_promote(NULL, gid, ids, 1, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_users_list(c, NULL, -1, 0, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_groups_list(NULL, NULL, 0, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_user_groups_list(NULL, NULL, -1, 0, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    /* Well-formed: not connected. */
    assert_int_equal(kaos_client_group_create(c, &spec, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_group_update(c, gid, &nameless, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_group_join(c, "not a uuid", NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_group_users_demote(c, gid, ids, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_group_users_add(c, gid, NULL, 0, NULL, NULL), KAOS_ERR_CLOSED);
    kaos_groups_filter f = {.name = "x", .open = 1, .members_max = 5};
    assert_int_equal(kaos_client_groups_list(c, &f, 500, "cursor", NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_group_users_list(c, gid, 9, 0, NULL, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_user_groups_list(c, NULL, 2, 0, NULL, NULL, NULL),
                     KAOS_ERR_CLOSED);
    kaos_client_destroy(c);
}

/* Chat requests: a NULL client, a NULL channel id, target, message id or
 * content, or a channel type outside 1-3 is refused locally; the rest is the
 * server's. */
static void chat_requests_check_their_arguments_locally(void **state)
{
    (void)state;
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.port = 1;
    cfg.server_key = some_key;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    const char *id = "2...lobby", *mid = "8f4d52c7-bf28-4fcf-8af2-1d4fcf685592";
    assert_int_equal(
        kaos_client_channel_join(NULL, "lobby", KAOS_CHANNEL_ROOM, false, false, NULL, NULL),
        KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_channel_join(c, NULL, KAOS_CHANNEL_ROOM, false, false, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_channel_join(c, "lobby", 0, false, false, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_channel_join(c, "lobby", 4, false, false, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_channel_leave(c, NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_channel_message_send(c, id, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_channel_message_send(c, NULL, "{}", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_channel_message_update(c, id, NULL, "{}", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_channel_message_update(c, id, mid, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_channel_message_remove(c, id, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_channel_messages_list(c, NULL, 0, true, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        kaos_client_channel_join(c, "lobby", KAOS_CHANNEL_ROOM, true, true, NULL, NULL),
        KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_channel_message_send(c, id, "not json", NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_channel_messages_list(c, id, 500, false, "x", NULL, NULL),
                     KAOS_ERR_CLOSED);
    kaos_client_on_channel_message(c, NULL, NULL); /* unregistering is always fine */
    kaos_client_on_channel_presence(c, NULL, NULL);
    kaos_client_destroy(c);
}

static void connect_without_a_pinned_key_is_refused_unless_insecure_dev_mode(void **state)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    assert_null(cfg.server_key);
    assert_false(cfg.insecure_dev_mode);
    assert_false(cfg.plaintext);
    cfg.port = 1;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    assert_int_equal(kaos_client_connect(c), KAOS_ERR_FAILED_PRECONDITION);
    assert_int_equal(kaos_client_disconnect(c), KAOS_ERR_CLOSED); /* nothing was started */
    kaos_client_destroy(c);

    cfg.insecure_dev_mode = true;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    assert_int_equal(kaos_client_connect(c), KAOS_OK);
    assert_int_equal(kaos_client_disconnect(c), KAOS_OK);
    kaos_client_destroy(c);

    cfg.plaintext = true;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    assert_int_equal(kaos_client_connect(c), KAOS_OK);
    kaos_client_destroy(c);
}

static void malformed_keys_and_plaintext_without_dev_mode_are_config_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "0123",
        /* 63 and 65 digits */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
        /* 64 characters, one not hex */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        " 123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    };
    kaos_client_config cfg;
    kaos_client *c = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kaos_client_config_default(&cfg);
        cfg.server_key = bad[i];
        assert_int_equal(kaos_client_create(&cfg, &c), KAOS_ERR_CONFIG);
        assert_null(c);
    }
    kaos_client_config_default(&cfg);
    cfg.server_key = some_key;
    cfg.plaintext = true; /* without insecure_dev_mode */
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_ERR_CONFIG);
    kaos_client_config_default(&cfg);
    cfg.server_key = some_key;
    cfg.protocol_version = 256; /* one byte on the wire */
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_ERR_CONFIG);
}

static void the_server_key_is_unknown_before_any_handshake(void **state)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.server_key = some_key;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    char out[KAOS_SERVER_KEY_HEX_SIZE];
    /* The pinned key is not what the server presented. */
    assert_int_equal(kaos_client_server_key(c, out), KAOS_ERR_NOT_FOUND);
    assert_int_equal(kaos_client_server_key(c, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_server_key(NULL, out), KAOS_ERR_INVALID_ARGUMENT);
    kaos_client_destroy(c);
}

static void every_disconnect_reason_has_a_text(void **state)
{
    for (uint32_t r = KAOS_DISCONNECT_NONE; r <= KAOS_DISCONNECT_SESSION_REPLACED; r++)
        assert_string_not_equal(kaos_disconnect_reason_text(r), "unknown reason");
    assert_string_equal(kaos_disconnect_reason_text(KAOS_DISCONNECT_SESSION_REPLACED + 1),
                        "unknown reason");
}

static void create_and_connect_survive_allocation_failures(void **state)
{
    kaos_allocator a = {t_alloc, t_realloc, t_free, NULL};
    for (long n = 0;; n++) {
        assert_true(n < 10000);
        fail_at = n;
        count = live = 0;
        kaos_set_allocator(&a);
        kaos_client_config cfg;
        kaos_client_config_default(&cfg);
        cfg.port = 1;
        cfg.server_key = some_key;
        kaos_client *c = NULL;
        int rc = kaos_client_create(&cfg, &c);
        if (rc == KAOS_OK) rc = kaos_client_connect(c);
        kaos_client_destroy(c);
        long used = count, leaked = live;
        kaos_set_allocator(NULL);
        assert_int_equal(leaked, 0);
        if (rc == KAOS_OK && used <= n) break;
    }
}

int main(void)
{
    if (kn_net_global_init() || kn_crypto_init() != 0) return 1;
    kn_crypto_x25519_keypair(server_pk, server_sk);
    kn_crypto_hex_encode(server_hex, sizeof server_hex, server_pk, 32);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_completion_fires_once_with_its_typed_answer, with_server,
                                        without_server),
        cmocka_unit_test_setup_teardown(an_answer_of_the_wrong_type_fails_its_completion,
                                        with_server, without_server),
        cmocka_unit_test_setup_teardown(a_server_error_reaches_the_completion_of_its_cid,
                                        with_server, without_server),
        cmocka_unit_test_setup_teardown(
            pending_completions_fail_once_on_disconnect_and_never_after_destroy, with_server,
            without_server),
        cmocka_unit_test_setup_teardown(flush_sends_what_was_queued_without_a_poll, with_server,
                                        without_server),
        cmocka_unit_test_setup_teardown(every_request_leaves_as_its_envelope, with_server,
                                        without_server),
        cmocka_unit_test_setup_teardown(events_reach_the_callback_registered_for_their_kind,
                                        with_server, without_server),
        cmocka_unit_test(a_config_is_checked_against_the_size_it_was_built_with),
        cmocka_unit_test(requests_fail_locally_when_not_connected_or_too_large),
        cmocka_unit_test(account_requests_check_their_arguments_locally),
        cmocka_unit_test(storage_requests_check_their_arguments_locally),
        cmocka_unit_test(notifications_requests_check_their_arguments_locally),
        cmocka_unit_test(chat_requests_check_their_arguments_locally),
        cmocka_unit_test_setup_teardown(status_requests_travel_and_their_answers_and_events_arrive,
                                        with_server, without_server),
        cmocka_unit_test(appear_online_sends_a_status_update_after_each_session),
        cmocka_unit_test(status_requests_check_their_arguments_locally),
        cmocka_unit_test(friends_metadata_and_fof_requests_check_their_arguments_locally),
        cmocka_unit_test(group_requests_check_their_arguments_locally),
        cmocka_unit_test(connect_without_a_pinned_key_is_refused_unless_insecure_dev_mode),
        cmocka_unit_test(malformed_keys_and_plaintext_without_dev_mode_are_config_errors),
        cmocka_unit_test(the_server_key_is_unknown_before_any_handshake),
        cmocka_unit_test(every_disconnect_reason_has_a_text),
        cmocka_unit_test(create_and_connect_survive_allocation_failures),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kn_net_global_deinit();
    return rc;
}
