/* kn_net in one process: a real ENet host on loopback, an SDK client, and a
 * recording handler. Checks generation-checked ids (a stale id never reaches
 * a newcomer), cross-thread posts, version refusal, and create's cleanup. */
#include "failalloc.h"
#include "kaos.h"
#include "kn_codec.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_net.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

static uint8_t server_pk[32], server_sk[32];
static char server_hex[65];

static void secure_config(kn_net_config *cfg)
{
    cfg->server_pk = server_pk;
    cfg->server_sk = server_sk;
}

typedef struct rec {
    kn_net *net;
    atomic_int opens, closes, messages, posted_fns;
    atomic_bool violate; /* count every message as a violation instead of answering */
    atomic_int burst;    /* > 0: answer with that many MatchData (op = index) instead */
    _Atomic kn_conn_id last_open, last_close;
    atomic_uint last_reason;
} rec;

static void *on_open(void *ud, kn_conn_id id, const char *address)
{
    rec *r = ud;
    atomic_store(&r->last_open, id);
    atomic_fetch_add(&r->opens, 1);
    return r;
}

static void on_message(void *ud, kn_conn_id id, void *conn_data, uint8_t channel,
                       const uint8_t *data, size_t len)
{
    rec *r = ud;
    atomic_fetch_add(&r->messages, 1);
    if (atomic_load(&r->violate)) {
        kn_net_violation(r->net, id);
        return;
    }
    int burst = atomic_load(&r->burst);
    for (int i = 0; i < burst; i++) {
        Kaos__V1__MatchData md;
        kn_envelope env = KN_ENVELOPE_INIT;
        kn_envelope_match_data(&env, &md, 7, 0, i, (const uint8_t *)"x", 1);
        uint8_t buf[64];
        size_t n = kn_envelope_pack(&env, buf);
        kn_net_send(r->net, id, KN_CHANNEL_MATCH_RELIABLE, buf, n, true);
    }
    if (burst) return;
    /* Echo a Pong, with the request's cid so it answers the client's ping,
     * so the client sees traffic both ways. */
    kn_envelope *req = NULL;
    uint32_t cid = kn_envelope_decode(data, len, &req) == KN_OK ? req->cid : 0;
    kn_envelope_free(req);
    Kaos__V1__Pong pong = KAOS__V1__PONG__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = cid;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PONG;
    env.pong = &pong;
    uint8_t buf[32];
    size_t n = kn_envelope_pack(&env, buf);
    kn_net_send(r->net, id, KN_CHANNEL_CONTROL, buf, n, true);
}

static void on_close(void *ud, kn_conn_id id, void *conn_data, uint32_t reason)
{
    rec *r = ud;
    atomic_store(&r->last_close, id);
    atomic_store(&r->last_reason, reason);
    atomic_fetch_add(&r->closes, 1);
}

static void *run_net(void *arg)
{
    kn_net_run(arg);
    return NULL;
}

static void count_fn(void *arg)
{
    atomic_fetch_add(&((rec *)arg)->posted_fns, 1);
}

typedef struct client_state {
    bool connected, disconnected, pong;
    uint32_t reason;
    int errors;
} client_state;

static void c_connected(kaos_client *c, void *ud)
{
    ((client_state *)ud)->connected = true;
}
static void c_disconnected(kaos_client *c, uint32_t reason, void *ud)
{
    ((client_state *)ud)->disconnected = true;
    ((client_state *)ud)->reason = reason;
}
static void c_pong(kaos_client *c, const kaos_result *r, int64_t rtt, void *ud)
{
    if (r->code == KAOS_OK) ((client_state *)ud)->pong = true;
}
static void c_error(kaos_client *c, const kaos_result *r, void *ud)
{
    ((client_state *)ud)->errors++;
}

static kaos_client *client(uint16_t port, uint32_t version, client_state *st)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.port = port;
    cfg.keepalive_ms = 0;
    cfg.server_key = server_hex;
    if (version) cfg.protocol_version = version;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    kaos_client_on_connected(c, c_connected, st);
    kaos_client_on_disconnected(c, c_disconnected, st);
    kaos_client_on_error(c, c_error, st);
    assert_int_equal(kaos_client_connect(c), KAOS_OK);
    return c;
}

#define POLL_UNTIL(c, cond)                                                                        \
    do {                                                                                           \
        for (int i_ = 0; i_ < 500 && !(cond); i_++)                                                \
            kaos_client_poll((c), 10);                                                             \
        assert_true(cond);                                                                         \
    } while (0)

static int64_t violation_leak_ms = 5000; /* the default; a test may shorten it */

/* A secured net on a free loopback port, run on its own thread. */
static void start_net(rec *r, size_t slots, pthread_t *t)
{
    memset(r, 0, sizeof *r);
    kn_net_config cfg;
    kn_net_config_default(&cfg);
    cfg.bind = "127.0.0.1";
    cfg.port = 0;
    cfg.max_connections = slots;
    cfg.shutdown_grace_ms = 100;
    cfg.violation_leak_ms = violation_leak_ms;
    secure_config(&cfg);
    kn_net_handler h = {
        .on_open = on_open, .on_message = on_message, .on_close = on_close, .ud = r};
    assert_int_equal(kn_net_create(&cfg, &h, &r->net), KN_OK);
    pthread_create(t, NULL, run_net, r->net);
}

static void send_pings(kaos_client *c, client_state *s, int n)
{
    for (int i = 0; i < n; i++)
        kaos_client_ping(c, c_pong, s);
    kaos_client_poll(c, 10);
}

typedef struct burst_seen {
    int count;
    bool in_order;
} burst_seen;

static void c_match_data(kaos_client *c, uint32_t match, uint32_t sender, int64_t op,
                         const uint8_t *data, size_t len, bool reliable, void *ud)
{
    burst_seen *b = ud;
    if (op != b->count) b->in_order = false;
    b->count++;
}

/* A burst of reliable packets far beyond what a connection keeps in ENet
 * (64) waits in its backlog and arrives whole and in order: the backlog
 * keeps ENet's per-peer queue short, since ENet walks it on every flush. */
static void a_burst_past_the_enet_window_arrives_whole_and_in_order(void **state)
{
    rec r;
    pthread_t t;
    start_net(&r, 8, &t);
    client_state st = {0};
    kaos_client *c = client(kn_net_port(r.net), 0, &st);
    POLL_UNTIL(c, st.connected);
    burst_seen seen = {.in_order = true};
    kaos_client_on_match_data(c, c_match_data, &seen);
    atomic_store(&r.burst, 600);
    kaos_client_ping(c, NULL, NULL);
    POLL_UNTIL(c, seen.count >= 600);
    assert_int_equal(seen.count, 600);
    assert_true(seen.in_order);
    assert_false(st.disconnected);
    kn_net_stats ns;
    kn_net_stats_get(r.net, &ns);
    assert_true(ns.backlogged >= 600 - 64); /* the backlog carried the rest */
    kaos_client_destroy(c);
    kn_net_stop(r.net);
    pthread_join(t, NULL);
    kn_net_destroy(r.net);
}

/* Violations leak away (one per violation_leak_ms, here 100 ms): a peer
 * that misbehaves now and then is never closed, a burst of max_violations
 * (8) is. */
static void violations_leak_away_and_only_a_burst_closes(void **state)
{
    violation_leak_ms = 100;
    rec r;
    pthread_t t;
    start_net(&r, 4, &t);
    violation_leak_ms = 5000;
    atomic_store(&r.violate, true);
    client_state s = {0};
    kaos_client *c = client(kn_net_port(r.net), 0, &s);
    POLL_UNTIL(c, s.connected && atomic_load(&r.opens) == 1);
    send_pings(c, &s, 7); /* one short of the limit */
    POLL_UNTIL(c, atomic_load(&r.messages) == 7);
    for (int i = 0; i < 100; i++)
        kaos_client_poll(c, 10); /* a second: all seven leak away */
    send_pings(c, &s, 7);        /* 14 in all: closed without the leak */
    POLL_UNTIL(c, atomic_load(&r.messages) == 14);
    kaos_client_poll(c, 100);
    assert_false(s.disconnected);
    assert_int_equal(atomic_load(&r.closes), 0);
    send_pings(c, &s, 30); /* a burst: far more than leaks out meanwhile */
    POLL_UNTIL(c, s.disconnected);
    assert_int_equal(s.reason, KAOS_DISCONNECT_PROTOCOL_VIOLATION);
    kn_net_stats st;
    kn_net_stats_get(r.net, &st);
    assert_true(st.violations > 14);
    kaos_client_destroy(c);
    kn_net_stop(r.net);
    pthread_join(t, NULL);
    kn_net_destroy(r.net);
}

static void stale_ids_never_reach_a_newcomer(void **state)
{
    rec r;
    pthread_t t;
    start_net(&r, 1, &t); /* one slot: the newcomer must reuse it */
    uint16_t port = kn_net_port(r.net);

    client_state s1 = {0};
    kaos_client *c1 = client(port, 0, &s1);
    POLL_UNTIL(c1, s1.connected && atomic_load(&r.opens) == 1);
    kn_conn_id first = atomic_load(&r.last_open);
    kaos_client_ping(c1, c_pong, &s1);
    POLL_UNTIL(c1, s1.pong);
    kaos_client_disconnect(c1);
    POLL_UNTIL(c1, s1.disconnected && atomic_load(&r.closes) == 1);
    assert_int_equal(atomic_load(&r.last_close), first);
    kaos_client_destroy(c1);

    client_state s2 = {0};
    kaos_client *c2 = client(port, 0, &s2);
    POLL_UNTIL(c2, s2.connected && atomic_load(&r.opens) == 2);
    kn_conn_id second = atomic_load(&r.last_open);
    assert_int_equal((uint32_t)second, (uint32_t)first); /* same slot */
    assert_int_not_equal(second, first);                 /* other generation */

    /* A late message for the first connection is dropped, not delivered. */
    kaos_client_stats before;
    kaos_client_get_stats(c2, &before);
    uint8_t *late = kn_malloc(4);
    memcpy(late, "\x22\x00\x08\x01", 4);
    assert_int_equal(kn_net_post(r.net, first, KN_CHANNEL_CONTROL, late, 4, true), KN_OK);
    assert_int_equal(kn_net_post_fn(r.net, count_fn, &r), KN_OK);
    for (int i = 0; i < 100 && atomic_load(&r.posted_fns) == 0; i++)
        kaos_client_poll(c2, 10);
    assert_int_equal(atomic_load(&r.posted_fns), 1);
    kaos_client_poll(c2, 50);
    kaos_client_stats st;
    kaos_client_get_stats(c2, &st);
    assert_int_equal(st.packets_received, before.packets_received);

    kn_net_stop(r.net);
    for (int i = 0; i < 100 && !s2.disconnected; i++)
        kaos_client_poll(c2, 10);
    pthread_join(t, NULL);
    assert_true(s2.disconnected);
    assert_int_equal(s2.reason, KAOS_DISCONNECT_SHUTDOWN);
    kaos_client_destroy(c2);
    kn_net_destroy(r.net);
}

static void wrong_protocol_version_is_refused_before_open(void **state)
{
    rec r;
    pthread_t t;
    start_net(&r, 4, &t);
    client_state s = {0};
    kaos_client *c = client(kn_net_port(r.net), 7, &s);
    POLL_UNTIL(c, s.disconnected);
    assert_int_equal(s.reason, KAOS_DISCONNECT_UNSUPPORTED_VERSION);
    assert_int_equal(s.errors, 1);
    assert_int_equal(atomic_load(&r.opens), 0); /* refused at the cookie: no peer, no open */
    kn_net_stats stats;
    kn_net_stats_get(r.net, &stats);
    assert_int_equal(stats.refused_version, 1);
    kaos_client_destroy(c);
    kn_net_stop(r.net);
    pthread_join(t, NULL);
    kn_net_destroy(r.net);
}

/* Runs on a net's thread: the state that net sees for an id. */
typedef struct probe {
    kn_net *net;
    kn_conn_id id;
    atomic_int state; /* -1 until the probe ran */
} probe;

static void run_probe(void *arg)
{
    probe *p = arg;
    atomic_store(&p->state, (int)kn_net_conn_state(p->net, p->id));
}

static kn_conn_state state_seen_by(kn_net *net, kn_conn_id id, kaos_client *pump)
{
    probe p = {.net = net, .id = id, .state = -1};
    assert_int_equal(kn_net_post_fn(net, run_probe, &p), KN_OK);
    for (int i = 0; i < 200 && atomic_load(&p.state) < 0; i++)
        kaos_client_poll(pump, 5);
    assert_true(atomic_load(&p.state) >= 0);
    return (kn_conn_state)atomic_load(&p.state);
}

/* Two nets on one port (SO_REUSEPORT), as --net-threads 2 runs them: the
 * kernel spreads clients over both, each net's ids carry its shard and mean
 * nothing to the other, and the per-address limit counts over both. */
static void two_nets_share_one_port(void **state)
{
    enum { CLIENTS = 16 };
    kn_net_shared *shared;
    assert_int_equal(kn_net_shared_create(&shared), KN_OK);
    rec r[2];
    pthread_t t[2];
    uint16_t port = 0;
    for (int i = 0; i < 2; i++) {
        memset(&r[i], 0, sizeof r[i]);
        kn_net_config cfg;
        kn_net_config_default(&cfg);
        cfg.bind = "127.0.0.1";
        cfg.port = port;
        cfg.max_connections = CLIENTS + 4; /* room on each: the limit below is per address */
        cfg.max_per_address = CLIENTS;
        cfg.shutdown_grace_ms = 100;
        cfg.shard = (uint16_t)i;
        cfg.reuse_port = true;
        cfg.shared = shared;
        secure_config(&cfg);
        kn_net_handler h = {
            .on_open = on_open, .on_message = on_message, .on_close = on_close, .ud = &r[i]};
        assert_int_equal(kn_net_create(&cfg, &h, &r[i].net), KN_OK);
        port = kn_net_port(r[0].net);
        assert_int_equal(kn_net_port(r[i].net), port);
    }
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, run_net, r[i].net);

    client_state st[CLIENTS + 1];
    kaos_client *c[CLIENTS + 1];
    memset(st, 0, sizeof st);
    for (int i = 0; i < CLIENTS; i++)
        c[i] = client(port, 0, &st[i]);
    for (int round = 0; round < 500; round++) {
        int up = 0;
        for (int i = 0; i < CLIENTS; i++) {
            kaos_client_poll(c[i], 0);
            up += st[i].connected;
        }
        if (up == CLIENTS && atomic_load(&r[0].opens) + atomic_load(&r[1].opens) == CLIENTS) break;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    /* 16 clients all hashed onto one socket: 2 in 65536. */
    assert_true(atomic_load(&r[0].opens) > 0);
    assert_true(atomic_load(&r[1].opens) > 0);
    assert_int_equal(atomic_load(&r[0].opens) + atomic_load(&r[1].opens), CLIENTS);
    kn_conn_id id0 = atomic_load(&r[0].last_open), id1 = atomic_load(&r[1].last_open);
    assert_int_equal(kn_conn_shard(id0), 0);
    assert_int_equal(kn_conn_shard(id1), 1);
    assert_int_equal(state_seen_by(r[1].net, id1, c[0]), KN_CONN_OPEN);
    assert_int_equal(state_seen_by(r[0].net, id1, c[0]), KN_CONN_FREE); /* not its shard */
    assert_int_equal(state_seen_by(r[0].net, id0, c[0]), KN_CONN_OPEN);
    assert_int_equal(state_seen_by(r[1].net, id0, c[0]), KN_CONN_FREE);

    /* Every client is answered by the net that holds it. */
    for (int i = 0; i < CLIENTS; i++)
        kaos_client_ping(c[i], c_pong, &st[i]);
    for (int i = 0; i < CLIENTS; i++)
        POLL_UNTIL(c[i], st[i].pong);

    /* One more from the same address: the shared count refuses it, on
     * whichever net it lands. */
    c[CLIENTS] = client(port, 0, &st[CLIENTS]);
    POLL_UNTIL(c[CLIENTS], st[CLIENTS].disconnected);
    assert_int_equal(st[CLIENTS].reason, KAOS_DISCONNECT_TOO_MANY_CONNECTIONS);

    for (int i = 0; i < 2; i++)
        kn_net_stop(r[i].net);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i <= CLIENTS; i++)
        kaos_client_destroy(c[i]);
    for (int i = 0; i < 2; i++)
        kn_net_destroy(r[i].net);
    kn_net_shared_destroy(shared);
}

/* A net whose every second counts as overloaded (the threshold is a hair
 * above zero): the connection it already has keeps being served, new ones
 * get BUSY cookie replies and never open. */
static void an_overloaded_net_answers_new_connections_busy(void **state)
{
    rec r;
    memset(&r, 0, sizeof r);
    kn_net_config cfg;
    kn_net_config_default(&cfg);
    cfg.bind = "127.0.0.1";
    cfg.port = 0;
    cfg.max_connections = 4;
    cfg.shutdown_grace_ms = 100;
    cfg.overload_busy = 1e-9;
    secure_config(&cfg);
    kn_net_handler h = {
        .on_open = on_open, .on_message = on_message, .on_close = on_close, .ud = &r};
    assert_int_equal(kn_net_create(&cfg, &h, &r.net), KN_OK);
    pthread_t t;
    pthread_create(&t, NULL, run_net, r.net);
    uint16_t port = kn_net_port(r.net);

    client_state s1 = {0};
    kaos_client *c1 = client(port, 0, &s1);
    POLL_UNTIL(c1, s1.connected && atomic_load(&r.opens) == 1);
    for (int i = 0; i < 300 && !kn_net_overloaded(r.net); i++)
        kaos_client_poll(c1, 10);
    assert_true(kn_net_overloaded(r.net));

    kaos_client_ping(c1, c_pong, &s1); /* the one already in is served */
    POLL_UNTIL(c1, s1.pong);

    kaos_client_config cc;
    kaos_client_config_default(&cc);
    cc.port = port;
    cc.keepalive_ms = 0;
    cc.connect_timeout_ms = 1000;
    cc.server_key = server_hex;
    client_state s2 = {0};
    kaos_client *c2;
    assert_int_equal(kaos_client_create(&cc, &c2), KAOS_OK);
    kaos_client_on_connected(c2, c_connected, &s2);
    kaos_client_on_disconnected(c2, c_disconnected, &s2);
    assert_int_equal(kaos_client_connect(c2), KAOS_OK);
    POLL_UNTIL(c2, s2.disconnected);
    assert_false(s2.connected);
    assert_int_equal(atomic_load(&r.opens), 1);
    kn_net_stats st;
    kn_net_stats_get(r.net, &st);
    assert_true(st.connects_busy >= 1);
    assert_int_equal(st.cookies_issued, 1); /* only the first client's */
    assert_true(st.overloaded_seconds >= 1);

    kn_net_stop(r.net);
    pthread_join(t, NULL);
    kaos_client_destroy(c1);
    kaos_client_destroy(c2);
    kn_net_destroy(r.net);
}

static int create_destroy(void *arg)
{
    kn_net_config cfg;
    kn_net_config_default(&cfg);
    cfg.bind = "127.0.0.1";
    cfg.port = 0;
    cfg.max_connections = 8;
    secure_config(&cfg);
    kn_net_handler h = {0};
    kn_net *net;
    int rc = kn_net_create(&cfg, &h, &net);
    if (rc == KN_OK) {
        /* A queued completion must still run (and be freed) at destroy. */
        static rec r;
        atomic_store(&r.posted_fns, 0);
        if (kn_net_post_fn(net, count_fn, &r) == KN_OK) {
            kn_net_destroy(net);
            assert_int_equal(atomic_load(&r.posted_fns), 1);
        } else {
            kn_net_destroy(net);
        }
    }
    return rc;
}

static void create_survives_allocation_failures(void **state)
{
    assert_true(failalloc_sweep(create_destroy, NULL) >= 2);
}

int main(void)
{
    if (kn_net_global_init() || kn_crypto_init() != 0) return 1;
    kn_crypto_x25519_keypair(server_pk, server_sk);
    kn_crypto_hex_encode(server_hex, sizeof server_hex, server_pk, 32);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stale_ids_never_reach_a_newcomer),
        cmocka_unit_test(a_burst_past_the_enet_window_arrives_whole_and_in_order),
        cmocka_unit_test(wrong_protocol_version_is_refused_before_open),
        cmocka_unit_test(violations_leak_away_and_only_a_burst_closes),
        cmocka_unit_test(two_nets_share_one_port),
        cmocka_unit_test(an_overloaded_net_answers_new_connections_busy),
        cmocka_unit_test(create_survives_allocation_failures),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kn_net_global_deinit();
    return rc;
}
