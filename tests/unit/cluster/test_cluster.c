/* Unit tests of the cluster module (src/server/cluster/kn_cluster.h) over
 * a fake bus: several nodes in one process whose publishes are delivered
 * at once to every other node subscribed to the same subject, with a
 * stepped clock. Membership (hello, heartbeats, the dead-node timeout,
 * leave, name clashes), the interest in a user's subject following their
 * connections, where each message goes (a user's node only, or every
 * node), what arrives is handed to the local hooks, and what is dropped
 * and counted. The NATS half (bus_nats.c) is tested end to end
 * (tests/e2e/test_cluster.c). */
#include "kn_cluster.h"
#include "kn_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define MAX_NODES 4
#define MAX_SUBS  32

static const char user_x[] = "6f1d3c0a-8e2b-4a57-9c41-0b7e5d2f9a10";
static const char user_y[] = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

typedef struct node node;

/* What arrived at one node through its local hooks. */
typedef struct seen {
    int delivered, delivered_all, ended, replaced, peers_up, peers_down, peers_back, bus_back;
    int stream_changes, stream_states, stream_asks, stream_data;
    uint16_t stream_node;
    size_t stream_n;
    bool stream_leave;
    kn_conn_id stream_conn;
    char stream_subject[40], stream_user[40], stream_status[32];
    char user[40], session[40];
    int why;
    int64_t revoke_expires, bound_ms;
    bool wins_tie;
    uint8_t data[64];
    size_t len;
} seen;

struct node {
    kn_cluster *c;
    bool up; /* the bus connection */
    char subs[MAX_SUBS][KN_CLUSTER_SUBJECT_MAX];
    bool used[MAX_SUBS];
    int published;
    char last_subject[KN_CLUSTER_SUBJECT_MAX];
    uint8_t last[4096];
    size_t last_len;
    size_t conns_x; /* connections user_x has here */
    seen s;
};

static node nodes[MAX_NODES];
static int n_nodes;
static int64_t now = 1000;

static int deliveries_to(const char *subject, int from)
{
    int n = 0;
    for (int i = 0; i < n_nodes; i++) {
        if (i == from || !nodes[i].up) continue;
        for (int k = 0; k < MAX_SUBS; k++)
            if (nodes[i].used[k] && !strcmp(nodes[i].subs[k], subject)) n++;
    }
    return n;
}

static int fake_publish(void *ud, const char *subject, const uint8_t *data, size_t len)
{
    node *me = ud;
    if (!me->up) return KN_ERR_UNAVAILABLE;
    me->published++;
    snprintf(me->last_subject, sizeof me->last_subject, "%s", subject);
    assert_true(len <= sizeof me->last);
    memcpy(me->last, data, len);
    me->last_len = len;
    int from = (int)(me - nodes);
    for (int i = 0; i < n_nodes; i++) {
        if (i == from || !nodes[i].up) continue; /* no echo */
        for (int k = 0; k < MAX_SUBS; k++)
            if (nodes[i].used[k] && !strcmp(nodes[i].subs[k], subject))
                kn_cluster_receive(nodes[i].c, data, len, now);
    }
    return KN_OK;
}

static int fake_subscribe(void *ud, const char *subject, void **sub)
{
    node *me = ud;
    for (int k = 0; k < MAX_SUBS; k++)
        if (!me->used[k]) {
            me->used[k] = true;
            snprintf(me->subs[k], sizeof me->subs[k], "%s", subject);
            *sub = &me->used[k];
            return KN_OK;
        }
    return KN_ERR_NOMEM;
}

static void fake_unsubscribe(void *ud, void *sub)
{
    (void)ud;
    *(bool *)sub = false;
}

static bool fake_connected(void *ud)
{
    return ((node *)ud)->up;
}

static bool subscribed(const node *n, const char *subject)
{
    for (int k = 0; k < MAX_SUBS; k++)
        if (n->used[k] && !strcmp(n->subs[k], subject)) return true;
    return false;
}

/* --- local hooks ------------------------------------------------------------------------ */

static void deliver_user(void *ud, const char *user_id, const char *session_id, uint8_t channel,
                         const uint8_t *data, size_t len, bool reliable)
{
    seen *s = &((node *)ud)->s;
    s->delivered++;
    snprintf(s->user, sizeof s->user, "%s", user_id);
    snprintf(s->session, sizeof s->session, "%s", session_id ? session_id : "");
    s->len = len < sizeof s->data ? len : sizeof s->data;
    memcpy(s->data, data, s->len);
    (void)channel;
    (void)reliable;
}

static void deliver_all(void *ud, uint8_t channel, const uint8_t *data, size_t len, bool reliable)
{
    seen *s = &((node *)ud)->s;
    s->delivered_all++;
    s->len = len < sizeof s->data ? len : sizeof s->data;
    memcpy(s->data, data, s->len);
    (void)channel;
    (void)reliable;
}

static void end_sessions(void *ud, const char *user_id, const char *session_id, int why,
                         int64_t revoke_expires)
{
    seen *s = &((node *)ud)->s;
    s->ended++;
    snprintf(s->user, sizeof s->user, "%s", user_id);
    snprintf(s->session, sizeof s->session, "%s", session_id ? session_id : "");
    s->why = why;
    s->revoke_expires = revoke_expires;
}

static void replace_sessions(void *ud, const char *user_id, const char *session_id,
                             int64_t bound_ms, bool wins_tie)
{
    seen *s = &((node *)ud)->s;
    s->replaced++;
    snprintf(s->user, sizeof s->user, "%s", user_id);
    snprintf(s->session, sizeof s->session, "%s", session_id);
    s->bound_ms = bound_ms;
    s->wins_tie = wins_tie;
}

static size_t user_conns(void *ud, const char *user_id)
{
    return !strcmp(user_id, user_x) ? ((node *)ud)->conns_x : 0;
}

static void peer_changed(void *ud, const char *name, bool up, bool back)
{
    (void)name;
    if (back) ((node *)ud)->s.peers_back++;
    seen *s = &((node *)ud)->s;
    if (up)
        s->peers_up++;
    else
        s->peers_down++;
}

static void bus_back(void *ud)
{
    ((node *)ud)->s.bus_back++;
}

static void stream_changed(void *ud, uint16_t from, const kn_stream *st, const kn_presence *join,
                           bool has_leave, kn_conn_id leave)
{
    seen *s = &((node *)ud)->s;
    s->stream_changes++;
    s->stream_node = from;
    snprintf(s->stream_subject, sizeof s->stream_subject, "%s", st->subject);
    s->stream_leave = has_leave;
    s->stream_conn = join ? join->conn : leave;
    if (join) {
        assert_int_equal(join->node, from);
        snprintf(s->stream_user, sizeof s->stream_user, "%s", join->user_id);
        snprintf(s->stream_status, sizeof s->stream_status, "%s",
                 join->status ? join->status : "(none)");
    }
}

static void stream_state(void *ud, uint16_t from, const kn_stream *st, const kn_presence *ps,
                         size_t n, bool ask)
{
    seen *s = &((node *)ud)->s;
    s->stream_states++;
    s->stream_asks += ask;
    s->stream_node = from;
    s->stream_n = n;
}

static void stream_data(void *ud, const kn_stream *st, uint8_t channel, const uint8_t *data,
                        size_t len, bool reliable)
{
    ((node *)ud)->s.stream_data++;
}

static int64_t fixed_wall(void *ud)
{
    (void)ud;
    return 1700000000000;
}

/* A node named name on the fake bus (up), with single session on. */
static node *add_node(const char *name)
{
    node *n = &nodes[n_nodes++];
    memset(n, 0, sizeof *n);
    n->up = true;
    kn_cluster_config cfg = {.node = name,
                             .address = "127.0.0.1:7350",
                             .http_port = 7351,
                             .heartbeat_ms = 500,
                             .dead_ms = 3000,
                             .single_session = true,
                             .wall_ms = fixed_wall};
    kn_cluster_bus bus = {fake_publish, fake_subscribe, fake_unsubscribe, fake_connected, n};
    kn_cluster_local local = {.deliver_user = deliver_user,
                              .deliver_all = deliver_all,
                              .end_sessions = end_sessions,
                              .replace_sessions = replace_sessions,
                              .user_conns = user_conns,
                              .peer_changed = peer_changed,
                              .bus_back = bus_back,
                              .stream_changed = stream_changed,
                              .stream_state = stream_state,
                              .stream_data = stream_data,
                              .ud = n};
    assert_int_equal(kn_cluster_create(&cfg, &bus, &local, &n->c), KN_OK);
    return n;
}

static void tick_all(void)
{
    for (int i = 0; i < n_nodes; i++)
        kn_cluster_tick(nodes[i].c, now);
}

static uint32_t peers_up(const node *n)
{
    kn_cluster_stats s;
    kn_cluster_stats_get(n->c, &s);
    return s.peers_up;
}

static int setup(void **state)
{
    (void)state;
    n_nodes = 0;
    now = 1000;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_nodes; i++)
        kn_cluster_destroy(nodes[i].c);
    n_nodes = 0;
    return 0;
}

/* --- tests -------------------------------------------------------------------------------- */

static void a_bad_name_or_timeout_is_refused(void **state)
{
    (void)state;
    node n = {.up = true};
    kn_cluster_bus bus = {fake_publish, fake_subscribe, fake_unsubscribe, fake_connected, &n};
    kn_cluster *c = (kn_cluster *)1;
    kn_cluster_config cfg = {.node = "a.b", .heartbeat_ms = 500, .dead_ms = 3000};
    assert_int_equal(kn_cluster_create(&cfg, &bus, NULL, &c), KN_ERR_INVALID_ARGUMENT);
    assert_null(c);
    cfg.node = "a";
    cfg.dead_ms = 900; /* less than two heartbeats */
    assert_int_equal(kn_cluster_create(&cfg, &bus, NULL, &c), KN_ERR_INVALID_ARGUMENT);
}

static void a_hello_is_answered_at_once_so_a_newcomer_sees_every_peer_in_one_tick(void **state)
{
    (void)state;
    node *a = add_node("a"), *b = add_node("b");
    tick_all(); /* a's hello, then b's hello; a answers b within the same round */
    now += 100; /* the answer gap */
    tick_all();
    assert_int_equal(peers_up(a), 1);
    assert_int_equal(peers_up(b), 1);
    node *c = add_node("c");
    kn_cluster_tick(c->c, now); /* c's hello: a and b now know c */
    assert_int_equal(peers_up(a), 2);
    assert_int_equal(peers_up(b), 2);
    now += 100;
    kn_cluster_tick(a->c, now); /* they answer at once, not at their next beat */
    kn_cluster_tick(b->c, now);
    assert_int_equal(peers_up(c), 2);
    kn_cluster_peer peers[4];
    assert_int_equal(kn_cluster_peers(c->c, peers, 4), 2);
    assert_string_equal(peers[0].address, "127.0.0.1:7350");
    assert_int_equal(peers[0].http_port, 7351);
    assert_true(peers[0].up);
    assert_int_equal(a->s.peers_up, 2);
    /* what clients are told: this node and every peer up */
    char json[1024];
    size_t n = kn_cluster_nodes_json(c->c, json, sizeof json);
    assert_int_equal(n, strlen(json));
    assert_non_null(strstr(json, "{\"node\":\"c\",\"nodes\":[{\"name\":\"c\",\"address\":"
                                 "\"127.0.0.1:7350\",\"http_port\":7351,\"users\":0}"));
    assert_non_null(strstr(json, "{\"name\":\"a\""));
    assert_non_null(strstr(json, "{\"name\":\"b\""));
    assert_string_equal(json + n - 2, "]}");
    /* too small a buffer: whole nodes are left out, the JSON stays whole */
    char small[120];
    n = kn_cluster_nodes_json(c->c, small, sizeof small);
    assert_true(n < sizeof small);
    assert_string_equal(small + n - 2, "]}");
    assert_null(strstr(small, "\"name\":\"b\""));
}

static void a_silent_peer_dies_after_the_timeout_and_a_leave_drops_one_at_once(void **state)
{
    (void)state;
    node *a = add_node("a"), *b = add_node("b"), *c = add_node("c");
    tick_all();
    now += 100;
    tick_all();
    assert_int_equal(peers_up(a), 2);
    b->up = false;                /* b goes silent (killed; its bus connection gone) */
    for (int i = 0; i < 5; i++) { /* 2.5 s of beats: not dead yet */
        now += 500;
        tick_all();
    }
    assert_int_equal(peers_up(a), 2);
    now += 600; /* 3.1 s since b was last heard */
    tick_all();
    assert_int_equal(peers_up(a), 1);
    assert_int_equal(peers_up(c), 1);
    assert_int_equal(a->s.peers_down, 1);
    kn_cluster_stats st;
    kn_cluster_stats_get(a->c, &st);
    assert_int_equal(st.peers_died, 1);
    char health[1024];
    size_t n = kn_cluster_health(a->c, now, health, 0, sizeof health);
    assert_true(n > 0);
    assert_non_null(strstr(health, "cluster node=a bus=connected peers=1"));
    assert_non_null(strstr(health, "peer b dead"));
    /* c stops on purpose: a drops it at once */
    kn_cluster_destroy(c->c);
    c->c = NULL;
    n_nodes--; /* c was the last one added */
    assert_int_equal(peers_up(a), 0);
    assert_int_equal(a->s.peers_down, 2);
    kn_cluster_stats_get(a->c, &st);
    assert_int_equal(st.peers_died, 1); /* a leave is not a death */
    /* b comes back: up again at its hello */
    b->up = true;
    kn_cluster_bus_changed(b->c, false); /* what the bus says when it drops... */
    kn_cluster_bus_changed(b->c, true);  /* ...and when it is back */
    kn_cluster_tick(b->c, now);
    assert_int_equal(peers_up(a), 1);
}

static void a_heartbeat_with_our_name_from_another_process_is_counted_not_believed(void **state)
{
    (void)state;
    node *a = add_node("a");
    add_node("a"); /* a misconfigured second "a" */
    tick_all();
    kn_cluster_stats st;
    kn_cluster_stats_get(a->c, &st);
    assert_int_equal(st.peers_up, 0);
    assert_int_equal(st.name_clashes, 1);
}

static void the_interest_in_a_user_follows_their_connections_here(void **state)
{
    (void)state;
    node *a = add_node("a");
    char subject[KN_CLUSTER_SUBJECT_MAX];
    snprintf(subject, sizeof subject, "kaos.v1.user.%s", user_x);
    assert_true(subscribed(a, "kaos.v1.node.heartbeat"));
    assert_true(subscribed(a, "kaos.v1.session.end"));
    assert_true(subscribed(a, "kaos.v1.all"));
    assert_false(subscribed(a, subject));
    a->conns_x = 1;
    kn_cluster_user_changed(a->c, user_x);
    assert_true(subscribed(a, subject));
    a->conns_x = 2; /* a second connection: still one subscription */
    kn_cluster_user_changed(a->c, user_x);
    kn_cluster_stats st;
    kn_cluster_stats_get(a->c, &st);
    assert_int_equal(st.users_subscribed, 1);
    a->conns_x = 0;
    kn_cluster_user_changed(a->c, user_x);
    assert_false(subscribed(a, subject));
    kn_cluster_stats_get(a->c, &st);
    assert_int_equal(st.users_subscribed, 0);
    kn_cluster_user_changed(a->c, "not-a-uuid"); /* ignored */
}

static void a_send_to_a_user_reaches_only_the_nodes_holding_them(void **state)
{
    (void)state;
    node *a = add_node("a"), *b = add_node("b"), *c = add_node("c");
    c->conns_x = 1;
    kn_cluster_user_changed(c->c, user_x);
    const uint8_t bytes[] = {1, 2, 3};
    assert_int_equal(kn_cluster_send_user(a->c, user_x, NULL, 0, bytes, 3, true), KN_OK);
    assert_int_equal(deliveries_to(a->last_subject, 0), 1);
    assert_int_equal(c->s.delivered, 1);
    assert_int_equal(b->s.delivered, 0);
    assert_string_equal(c->s.user, user_x);
    assert_string_equal(c->s.session, "");
    assert_int_equal(c->s.len, 3);
    assert_memory_equal(c->s.data, bytes, 3);
    /* upper-case ids are one user */
    char upper[40];
    for (size_t i = 0; i < sizeof user_x; i++)
        upper[i] = (char)(user_x[i] >= 'a' && user_x[i] <= 'f' ? user_x[i] - 32 : user_x[i]);
    assert_int_equal(kn_cluster_send_user(a->c, upper, "s1", 0, bytes, 3, true), KN_OK);
    assert_int_equal(c->s.delivered, 2);
    assert_string_equal(c->s.session, "s1");
    /* nobody holds user_y: published, delivered nowhere */
    assert_int_equal(kn_cluster_send_user(a->c, user_y, NULL, 0, bytes, 3, true), KN_OK);
    assert_int_equal(b->s.delivered + c->s.delivered, 2);
    assert_int_equal(kn_cluster_send_user(a->c, "../x", NULL, 0, bytes, 3, true),
                     KN_ERR_INVALID_ARGUMENT);
    /* everyone */
    assert_int_equal(kn_cluster_send_all(a->c, 0, bytes, 3, true), KN_OK);
    assert_int_equal(b->s.delivered_all, 1);
    assert_int_equal(c->s.delivered_all, 1);
    assert_int_equal(a->s.delivered_all, 0); /* its own connections were served by kn_out */
}

static void bans_reach_every_node_and_logouts_only_the_nodes_holding_the_user(void **state)
{
    (void)state;
    node *a = add_node("a"), *b = add_node("b"), *c = add_node("c");
    c->conns_x = 1;
    kn_cluster_user_changed(c->c, user_x);
    assert_int_equal(kn_cluster_sessions_ended(a->c, user_x, NULL, 1 /* ban */, 0), KN_OK);
    assert_string_equal(a->last_subject, "kaos.v1.session.end");
    assert_int_equal(b->s.ended, 1);
    assert_int_equal(c->s.ended, 1);
    assert_int_equal(c->s.why, 1);
    assert_string_equal(c->s.session, "");
    assert_int_equal(kn_cluster_sessions_ended(a->c, user_x, "sess-1", 0 /* logout */, 1234),
                     KN_OK);
    assert_int_equal(b->s.ended, 1); /* b holds no connection of the user */
    assert_int_equal(c->s.ended, 2);
    assert_int_equal(c->s.why, 0);
    assert_string_equal(c->s.session, "sess-1");
    assert_int_equal(c->s.revoke_expires, 1234);
}

static void a_bind_replaces_older_binds_elsewhere_ties_going_to_the_larger_name(void **state)
{
    (void)state;
    node *a = add_node("a"), *b = add_node("b");
    a->conns_x = 1;
    kn_cluster_user_changed(a->c, user_x);
    b->conns_x = 1;
    kn_cluster_user_changed(b->c, user_x);
    assert_int_equal(kn_cluster_session_bound(b->c, user_x, "sess-b", 5000), KN_OK);
    assert_int_equal(a->s.replaced, 1);
    assert_string_equal(a->s.session, "sess-b");
    assert_int_equal(a->s.bound_ms, 5000);
    assert_true(a->s.wins_tie); /* "b" > "a": b's bind wins a tie at a */
    assert_int_equal(kn_cluster_session_bound(a->c, user_x, "sess-a", 5000), KN_OK);
    assert_int_equal(b->s.replaced, 1);
    assert_false(b->s.wins_tie); /* and a's loses it at b: exactly one stays */
}

static void while_the_bus_is_down_sends_are_refused_and_nothing_beats(void **state)
{
    (void)state;
    node *a = add_node("a");
    add_node("b");
    tick_all();
    a->up = false;
    kn_cluster_bus_changed(a->c, false);
    int before = a->published;
    const uint8_t bytes[] = {9};
    assert_int_equal(kn_cluster_send_user(a->c, user_x, NULL, 0, bytes, 1, true),
                     KN_ERR_UNAVAILABLE);
    assert_int_equal(kn_cluster_send_all(a->c, 0, bytes, 1, true), KN_ERR_UNAVAILABLE);
    now += 2000;
    kn_cluster_tick(a->c, now);
    assert_int_equal(a->published, before);
    char text[4096];
    kn_cluster_metrics(a->c, now, text, 0, sizeof text);
    assert_non_null(strstr(text, "kaos_cluster_bus_connected 0\n"));
    assert_int_equal(a->s.bus_back, 0);
    /* back: a hello at the next tick, and the root is told to re-check */
    a->up = true;
    kn_cluster_bus_changed(a->c, true);
    assert_int_equal(a->s.bus_back, 1);
    kn_cluster_bus_changed(a->c, true); /* no change: not told again */
    assert_int_equal(a->s.bus_back, 1);
    kn_cluster_tick(a->c, now);
    assert_int_equal(a->published, before + 1);
    kn_cluster_metrics(a->c, now, text, 0, sizeof text);
    assert_non_null(strstr(text, "kaos_cluster_bus_connected 1\n"));
    assert_non_null(strstr(text, "kaos_cluster_peer_up{peer=\"b\"} 1\n"));
}

static void a_shared_stream_reaches_only_the_nodes_with_members_on_it(void **state)
{
    (void)state;
    node *a = add_node("a"), *b = add_node("b"), *c = add_node("c");
    kn_stream room = {.mode = KN_STREAM_CHANNEL};
    snprintf(room.subject, sizeof room.subject, "lobby");
    kn_presence pa = {.conn = 42, .user_id = "ua", .session_id = "sa", .username = "A"};
    /* a's first member: a subscribes and publishes its set, asking for others' */
    kn_cluster_stream_interest(a->c, &room, true, &pa, 1);
    assert_int_equal(b->s.stream_states + c->s.stream_states, 0); /* nobody else is on it */
    kn_presence pb[2] = {{.conn = 7, .user_id = "ub", .session_id = "sb"},
                         {.conn = 8, .node = 3, .user_id = "mirror"}};
    kn_cluster_stream_interest(b->c, &room, true, pb, 2);
    assert_int_equal(a->s.stream_states, 1);
    assert_int_equal(a->s.stream_asks, 1);
    assert_int_equal(a->s.stream_n, 1); /* b's own only: mirrors are not told on */
    assert_int_equal(a->s.stream_node, kn_cluster_node_slot(a->c, "b"));
    assert_true(a->s.stream_node > 0);
    assert_int_equal(kn_cluster_node_slot(a->c, "a"), 0); /* our own name has none */
    /* an answer (no ask) */
    kn_cluster_stream_state(a->c, &room, &pa, 1, false);
    assert_int_equal(b->s.stream_states, 1);
    assert_int_equal(b->s.stream_asks, 0);
    /* a change with a status, a leave, data */
    pa.status = "away";
    assert_int_equal(kn_cluster_stream_changed(a->c, &room, &pa, NULL), KN_OK);
    assert_int_equal(b->s.stream_changes, 1);
    assert_string_equal(b->s.stream_subject, "lobby");
    assert_string_equal(b->s.stream_user, "ua");
    assert_string_equal(b->s.stream_status, "away");
    assert_int_equal(b->s.stream_conn, 42);
    assert_int_equal(kn_cluster_stream_changed(a->c, &room, NULL, &pa), KN_OK);
    assert_true(b->s.stream_leave);
    assert_int_equal(kn_cluster_stream_send(a->c, &room, 0, (const uint8_t *)"x", 1, true), KN_OK);
    assert_int_equal(b->s.stream_data, 1);
    assert_int_equal(c->s.stream_changes + c->s.stream_data, 0);
    /* b's last member left: it hears no more */
    kn_cluster_stream_interest(b->c, &room, false, NULL, 0);
    assert_int_equal(kn_cluster_stream_send(a->c, &room, 0, (const uint8_t *)"x", 1, true), KN_OK);
    assert_int_equal(b->s.stream_data, 1);
}

static void a_peer_back_after_its_death_is_told_as_back(void **state)
{
    (void)state;
    node *a = add_node("a"), *b = add_node("b");
    tick_all();
    assert_int_equal(a->s.peers_back, 0); /* new, not back */
    b->up = false;
    now += 3500;
    kn_cluster_tick(a->c, now);
    assert_int_equal(peers_up(a), 0);
    b->up = true;
    kn_cluster_bus_changed(b->c, false);
    kn_cluster_bus_changed(b->c, true);
    kn_cluster_tick(b->c, now);
    assert_int_equal(peers_up(a), 1);
    assert_int_equal(a->s.peers_back, 1);
}

static void a_peer_with_a_name_unfit_for_logs_and_json_is_dropped(void **state)
{
    (void)state;
    node *a = add_node("a"), *b = add_node("b");
    kn_cluster_tick(b->c, now); /* b's hello as a hears it */
    assert_int_equal(peers_up(a), 1);
    /* the same bytes from a node calling itself "b\"x": dropped, counted */
    uint8_t bad[4096];
    memcpy(bad, b->last, b->last_len);
    assert_int_equal(bad[2], 0x12); /* field 2 (origin), length 1, "b" */
    assert_int_equal(bad[3], 1);
    bad[4] = '"';
    kn_cluster_receive(a->c, bad, b->last_len, now);
    kn_cluster_stats st;
    kn_cluster_stats_get(a->c, &st);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(peers_up(a), 1);
}

static void garbage_and_other_bus_versions_are_dropped_and_counted(void **state)
{
    (void)state;
    node *a = add_node("a"), *b = add_node("b");
    const uint8_t bytes[] = {7};
    assert_int_equal(kn_cluster_send_all(a->c, 0, bytes, 1, true), KN_OK);
    assert_int_equal(b->s.delivered_all, 1);
    /* the same message as version 2 (field 1, varint: the second byte) */
    uint8_t v2[4096];
    memcpy(v2, a->last, a->last_len);
    assert_int_equal(v2[0], 0x08);
    v2[1] = 2;
    kn_cluster_receive(b->c, v2, a->last_len, now);
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
    kn_cluster_receive(b->c, junk, sizeof junk, now);
    assert_int_equal(b->s.delivered_all, 1);
    kn_cluster_stats st;
    kn_cluster_stats_get(b->c, &st);
    assert_int_equal(st.dropped, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_bad_name_or_timeout_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_hello_is_answered_at_once_so_a_newcomer_sees_every_peer_in_one_tick, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_silent_peer_dies_after_the_timeout_and_a_leave_drops_one_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_heartbeat_with_our_name_from_another_process_is_counted_not_believed, setup,
            teardown),
        cmocka_unit_test_setup_teardown(the_interest_in_a_user_follows_their_connections_here,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_send_to_a_user_reaches_only_the_nodes_holding_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            bans_reach_every_node_and_logouts_only_the_nodes_holding_the_user, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_bind_replaces_older_binds_elsewhere_ties_going_to_the_larger_name, setup, teardown),
        cmocka_unit_test_setup_teardown(while_the_bus_is_down_sends_are_refused_and_nothing_beats,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_shared_stream_reaches_only_the_nodes_with_members_on_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_peer_back_after_its_death_is_told_as_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_peer_with_a_name_unfit_for_logs_and_json_is_dropped,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_and_other_bus_versions_are_dropped_and_counted,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
