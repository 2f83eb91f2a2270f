/* End to end: three kaosnet nodes clustered over one real nats-server, on
 * one Postgres database and one shared data directory (one server.key):
 * the nodes see each other (/metrics, /healthz); a token issued by node A
 * resumes on node C; a friend request from a user on A reaches a user on C
 * live; a ban on A disconnects the user's session on C (and its token
 * resumes nowhere); single session holds across nodes (a login on B ends
 * the user's connection on A);
 * NATS stopped, the nodes keep serving alone and say so, and rejoin when it
 * is back; a ban made while the bus was down, on a node killed before it
 * came back, still ends the session on another node (it re-checks its
 * sessions in Postgres when the bus returns); kill -9 of a node and the
 * others declare it dead.
 *
 * Everything runs on loopback: the harness starts nats-server on a free
 * port (and stops it whatever happens: an atexit hook), the nodes with
 * --cluster-nats, and stops them all at the end. Waits are bounded; the
 * times they took are printed, never asserted. Without a nats-server
 * binary the group is skipped and says so. */
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <fcntl.h>

#define NODES 3

static const char http_key[] = "cluster-test-key";
static e2e_server node[NODES];
static const char *const names[NODES] = {"a", "b", "c"};
static char nats_url[64];
static uint16_t nats_port;
static pid_t nats_pid = -1;

/* --- nats-server ------------------------------------------------------------------ */

static void nats_kill(void)
{
    if (nats_pid > 0) {
        kill(nats_pid, SIGKILL);
        waitpid(nats_pid, NULL, 0);
        nats_pid = -1;
    }
}

static uint16_t free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool nats_answers(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(nats_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void nats_start(void)
{
#ifdef NATS_SERVER_BIN
    static bool hooked;
    if (!hooked) {
        atexit(nats_kill);
        hooked = true;
    }
    char port[16];
    snprintf(port, sizeof port, "%u", nats_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, STDOUT_FILENO);
        execl(NATS_SERVER_BIN, "nats-server", "-a", "127.0.0.1", "-p", port, (char *)NULL);
        _exit(127);
    }
    nats_pid = pid;
    int64_t deadline = e2e_now_ms() + 10000;
    while (!nats_answers() && e2e_now_ms() < deadline)
        usleep(20000);
    if (!nats_answers()) fail_msg("nats-server did not listen on %u", nats_port);
#endif
}

static void nats_stop(void)
{
    if (nats_pid <= 0) return;
    kill(nats_pid, SIGTERM);
    int64_t deadline = e2e_now_ms() + 10000;
    while (waitpid(nats_pid, NULL, WNOHANG) == 0 && e2e_now_ms() < deadline)
        e2e_pump();
    if (kill(nats_pid, 0) == 0) nats_kill();
    nats_pid = -1;
}

/* --- nodes --------------------------------------------------------------------------- */

/* The runtime: lua-examples (admin_ban) and the leaderboard test module
 * (its boards), linked into one directory by the group setup. */
static char rt[64];

static void node_start(int i)
{
    const char *extra[] = {"--cluster-nats",
                           nats_url,
                           "--cluster-node",
                           names[i],
                           "--cluster-heartbeat-ms",
                           "200",
                           "--cluster-dead-ms",
                           "1500",
                           "--single-session",
                           "true",
                           "--runtime-path",
                           rt,
                           "--http-key",
                           http_key,
                           NULL};
    e2e_server_start(&node[i], extra);
}

static long long metric(int i, const char *name)
{
    return e2e_metric(node[i].http_port, name);
}

static bool healthz_has(int i, const char *what)
{
    char body[2048] = "";
    return e2e_http(node[i].http_port, "GET", "/healthz", NULL, NULL, body, sizeof body) == 200 &&
           strstr(body, what);
}

/* Pumps clients while waiting for every running node but `skip` to count
 * `peers` live peers; prints how long it took. */
static void wait_peers(int skip, long long peers, const char *what)
{
    int64_t t0 = e2e_now_ms();
    for (int i = 0; i < NODES; i++) {
        if (i == skip) continue;
        E2E_WAIT(metric(i, "kaos_cluster_peers") == peers, 10000);
    }
    printf("# %s: %lld ms\n", what, (long long)(e2e_now_ms() - t0));
}

static int group_setup(void **state)
{
    (void)state;
#ifndef NATS_SERVER_BIN
    return 0;
#else
    nats_port = free_tcp_port();
    snprintf(nats_url, sizeof nats_url, "nats://127.0.0.1:%u", nats_port);
    nats_start();
    const char *from[] = {KAOS_SOURCE_DIR "/lua-examples",
                          KAOS_SOURCE_DIR "/tests/e2e/lua/leaderboard_test.lua", NULL};
    e2e_runtime_dir(rt, sizeof rt, from);
    /* One database and one data directory (one server.key) for every node. */
    e2e_server_init(&node[0]);
    for (int i = 1; i < NODES; i++) {
        memset(&node[i], 0, sizeof node[i]);
        node[i].pid = -1;
        node[i].out_fd = -1;
        snprintf(node[i].dbname, sizeof node[i].dbname, "%s", node[0].dbname);
        snprintf(node[i].data_dir, sizeof node[i].data_dir, "%s", node[0].data_dir);
    }
    for (int i = 0; i < NODES; i++)
        node_start(i);
    return 0;
#endif
}

static int group_teardown(void **state)
{
    (void)state;
#ifdef NATS_SERVER_BIN
    int bad = 0;
    for (int i = 0; i < NODES; i++)
        if (node[i].pid > 0 && e2e_server_stop(&node[i]) != 0) bad++;
    nats_stop();
    e2e_server_cleanup(&node[0]);
    e2e_runtime_dir_remove(rt);
    return bad ? -1 : 0;
#else
    return 0;
#endif
}

#ifndef NATS_SERVER_BIN
#define NEEDS_NATS() skip()
#else
#define NEEDS_NATS() (void)0
#endif

/* --- notifications ------------------------------------------------------------------- */

typedef struct pushes {
    int count;
    int codes[8];
    char senders[8][40];
} pushes;

static void on_push(kaos_client *k, const kaos_notification *n, size_t count, void *ud)
{
    (void)k;
    pushes *p = ud;
    for (size_t i = 0; i < count; i++, p->count++) {
        if (p->count >= 8) continue;
        p->codes[p->count] = n[i].code;
        snprintf(p->senders[p->count], sizeof p->senders[0], "%s", n[i].sender_id);
    }
}

static int http_rpc(int i, const char *rpc, const char *body)
{
    char path[256], out[512];
    snprintf(path, sizeof path, "/v2/rpc/%s?http_key=%s", rpc, http_key);
    return e2e_http(node[i].http_port, "POST", path, NULL, body, out, sizeof out);
}

static e2e_client *resumed_on(int i, const char *token)
{
    e2e_client *c = e2e_client_new(node[i].port, 0, 0);
    assert_true(kaos_client_session_resume(c->c, token, e2e_on_session, c) > 0);
    E2E_WAIT(c->sessions || c->errors, 10000);
    return c;
}

/* --- chat and status: what a client saw ------------------------------------------------------ */

typedef struct member {
    e2e_client *e;
    int answers, errors, acks;
    char channel_id[160];
    size_t others_at_join;
    int joins, leaves, messages, status_joins, status_leaves;
    char last_join[40], last_leave[40], last_content[256], last_status[128];
} member;

static void on_channel(kaos_client *k, const kaos_result *r, const kaos_channel *c, void *ud)
{
    (void)k;
    member *m = ud;
    if (r->code) {
        m->errors++;
        return;
    }
    snprintf(m->channel_id, sizeof m->channel_id, "%s", c->id);
    m->others_at_join = c->presence_count;
    m->answers++;
}

static void on_ack(kaos_client *k, const kaos_result *r, const kaos_channel_message *msg, void *ud)
{
    (void)k;
    (void)msg;
    member *m = ud;
    if (r->code)
        m->errors++;
    else
        m->acks++;
}

static void on_message(kaos_client *k, const kaos_channel_message *msg, void *ud)
{
    (void)k;
    member *m = ud;
    m->messages++;
    snprintf(m->last_content, sizeof m->last_content, "%s", msg->content);
}

static void on_channel_presence(kaos_client *k, const char *channel_id,
                                const kaos_user_presence *joins, size_t nj,
                                const kaos_user_presence *leaves, size_t nl, void *ud)
{
    (void)k;
    (void)channel_id;
    member *m = ud;
    m->joins += (int)nj;
    m->leaves += (int)nl;
    if (nj) snprintf(m->last_join, sizeof m->last_join, "%s", joins[nj - 1].user_id);
    if (nl) snprintf(m->last_leave, sizeof m->last_leave, "%s", leaves[nl - 1].user_id);
}

static void on_status(kaos_client *k, const kaos_user_presence *joins, size_t nj,
                      const kaos_user_presence *leaves, size_t nl, void *ud)
{
    (void)k;
    member *m = ud;
    m->status_joins += (int)nj;
    m->status_leaves += (int)nl;
    if (nj && joins[nj - 1].status)
        snprintf(m->last_status, sizeof m->last_status, "%s", joins[nj - 1].status);
}

static void on_follow(kaos_client *k, const kaos_result *r, const kaos_user_presence *p, size_t n,
                      void *ud)
{
    (void)k;
    (void)p;
    (void)n;
    member *m = ud;
    if (r->code)
        m->errors++;
    else
        m->answers++;
}

static member *member_on(int i)
{
    member *m = calloc(1, sizeof *m);
    m->e = e2e_player(node[i].port, 0);
    kaos_client_on_channel_message(m->e->c, on_message, m);
    kaos_client_on_channel_presence(m->e->c, on_channel_presence, m);
    kaos_client_on_status_presence(m->e->c, on_status, m);
    return m;
}

static void member_free(member *m)
{
    e2e_client_free(m->e);
    free(m);
}

static void join_room(member *m, const char *room)
{
    int before = m->answers;
    assert_true(kaos_client_channel_join(m->e->c, room, KAOS_CHANNEL_ROOM, false, false, on_channel,
                                         m) > 0);
    E2E_WAIT(m->answers > before || m->errors, 5000);
    assert_int_equal(m->errors, 0);
}

/* --- tests ------------------------------------------------------------------------------- */

static void nodes_see_each_other_and_report_it(void **state)
{
    (void)state;
    NEEDS_NATS();
    wait_peers(-1, NODES - 1, "three nodes see each other after the last started");
    for (int i = 0; i < NODES; i++) {
        assert_int_equal(metric(i, "kaos_cluster_bus_connected"), 1);
        assert_true(metric(i, "kaos_cluster_heartbeat_age_ms") >= 0);
        assert_true(healthz_has(i, "ok\ncluster node="));
        assert_true(healthz_has(i, "bus=connected peers=2"));
    }
    assert_true(healthz_has(0, "peer b up udp=127.0.0.1:"));
    assert_true(healthz_has(0, "peer c up udp=127.0.0.1:"));
    assert_int_equal(metric(0, "kaos_cluster_peer_up{peer=\"c\"}"), 1);
    /* clients can ask any node for the healthy nodes and their addresses */
    char body[2048], want[128];
    assert_int_equal(e2e_http(node[1].http_port, "GET", "/v2/nodes", NULL, NULL, body, sizeof body),
                     200);
    for (int i = 0; i < NODES; i++) {
        snprintf(want, sizeof want, "{\"name\":\"%s\",\"address\":\"127.0.0.1:%u\"", names[i],
                 node[i].port);
        assert_non_null(strstr(body, want));
    }
}

static void a_token_from_node_a_resumes_on_node_c(void **state)
{
    (void)state;
    NEEDS_NATS();
    e2e_client *a = e2e_player(node[0].port, 0);
    char token[4096], user[40];
    snprintf(token, sizeof token, "%s", a->token);
    snprintf(user, sizeof user, "%s", a->user_id);
    e2e_client_free(a); /* single session: the resume would replace it anyway */
    e2e_client *c = resumed_on(2, token);
    assert_int_equal(c->errors, 0);
    assert_string_equal(c->user_id, user);
    e2e_client_free(c);
}

static void a_friend_request_from_node_a_reaches_a_user_on_node_c_live(void **state)
{
    (void)state;
    NEEDS_NATS();
    e2e_client *a = e2e_player(node[0].port, 0), *c = e2e_player(node[2].port, 0);
    pushes seen = {0};
    kaos_client_on_notifications(c->c, on_push, &seen);
    const char *id = c->user_id;
    int64_t t0 = e2e_now_ms();
    assert_int_equal(E2E_ACKED(a, kaos_client_friends_add(a->c, &id, 1, NULL, 0, e2e_on_done, a)),
                     0);
    E2E_WAIT(seen.count >= 1, 5000);
    printf("# friend request A -> C, request to push: %lld ms\n", (long long)(e2e_now_ms() - t0));
    assert_int_equal(seen.codes[0], -2); /* an invite received */
    assert_string_equal(seen.senders[0], a->user_id);
    e2e_client_free(a);
    e2e_client_free(c);
}

static void a_ban_on_node_a_disconnects_the_session_on_node_c(void **state)
{
    (void)state;
    NEEDS_NATS();
    e2e_client *c = e2e_player(node[2].port, 0);
    char body[128];
    snprintf(body, sizeof body, "{\"user_ids\": [\"%s\"]}", c->user_id);
    int64_t t0 = e2e_now_ms();
    assert_int_equal(http_rpc(0, "admin_ban", body), 200);
    E2E_WAIT(c->disconnected, 5000);
    printf("# ban on A -> disconnect on C: %lld ms\n", (long long)(e2e_now_ms() - t0));
    assert_int_equal(c->disconnect_reason, KAOS_DISCONNECT_BANNED);
    /* and the token no longer resumes on any node (B never held the user) */
    e2e_client *r = resumed_on(1, c->token);
    assert_int_equal(r->sessions, 0);
    assert_int_equal(r->error_code, 7);
    assert_string_equal(r->error_message, "account is banned");
    e2e_client_free(r);
    e2e_client_free(c);
}

static void single_session_holds_across_nodes(void **state)
{
    (void)state;
    NEEDS_NATS();
    char dev[40];
    e2e_device_id(dev);
    e2e_client *a = e2e_client_new(node[0].port, 0, 0);
    e2e_auth(a, dev);
    e2e_client *b = e2e_client_new(node[1].port, 0, 0);
    e2e_auth(b, dev);
    assert_string_equal(a->user_id, b->user_id);
    E2E_WAIT(a->disconnected, 5000);
    assert_int_equal(a->disconnect_reason, KAOS_DISCONNECT_SESSION_REPLACED);
    e2e_pump_for(300);
    assert_false(b->disconnected);
    /* the replaced session is revoked: its token no longer resumes */
    e2e_client *r = resumed_on(2, a->token);
    assert_int_equal(r->sessions, 0);
    e2e_client_free(r);
    e2e_client_free(a);
    e2e_client_free(b);
}

static void without_nats_the_nodes_serve_alone_and_rejoin_when_it_returns(void **state)
{
    (void)state;
    NEEDS_NATS();
    nats_stop();
    for (int i = 0; i < NODES; i++)
        E2E_WAIT(metric(i, "kaos_cluster_bus_connected") == 0, 10000);
    assert_true(healthz_has(0, "degraded: cluster bus unavailable"));
    wait_peers(-1, 0, "bus down: every node alone");
    /* each node still serves its own players */
    e2e_client *a = e2e_player(node[0].port, 0), *a2 = e2e_player(node[0].port, 0);
    pushes seen = {0};
    kaos_client_on_notifications(a2->c, on_push, &seen);
    const char *id = a2->user_id;
    assert_int_equal(E2E_ACKED(a, kaos_client_friends_add(a->c, &id, 1, NULL, 0, e2e_on_done, a)),
                     0);
    E2E_WAIT(seen.count >= 1, 5000);

    int64_t t0 = e2e_now_ms();
    nats_start();
    for (int i = 0; i < NODES; i++)
        E2E_WAIT(metric(i, "kaos_cluster_bus_connected") == 1, 10000);
    wait_peers(-1, NODES - 1, "NATS back: the nodes rejoin");
    printf("# NATS restart to full membership: %lld ms\n", (long long)(e2e_now_ms() - t0));
    assert_true(healthz_has(0, "ok\n"));
    /* cross-node delivery works again (the user subscriptions were replayed) */
    e2e_client *c = e2e_player(node[2].port, 0);
    pushes seen_c = {0};
    kaos_client_on_notifications(c->c, on_push, &seen_c);
    id = c->user_id;
    assert_int_equal(E2E_ACKED(a, kaos_client_friends_add(a->c, &id, 1, NULL, 0, e2e_on_done, a)),
                     0);
    E2E_WAIT(seen_c.count >= 1, 5000);
    /* a user who was online on A through the outage is reachable from C */
    pushes before = seen;
    const char *a2id = a2->user_id;
    assert_int_equal(E2E_ACKED(c, kaos_client_friends_add(c->c, &a2id, 1, NULL, 0, e2e_on_done, c)),
                     0);
    E2E_WAIT(seen.count > before.count, 5000);
    e2e_client_free(a);
    e2e_client_free(a2);
    e2e_client_free(c);
}

static void a_chat_room_with_members_on_three_nodes(void **state)
{
    (void)state;
    NEEDS_NATS();
    char room[40];
    e2e_device_id(room); /* a fresh room name */
    member *m[NODES];
    for (int i = 0; i < NODES; i++)
        m[i] = member_on(i);
    for (int i = 0; i < NODES; i++)
        join_room(m[i], room);
    /* everyone hears of the others, wherever they are */
    for (int i = 0; i < NODES; i++)
        E2E_WAIT(m[i]->joins >= NODES - 1 - (int)m[i]->others_at_join, 5000);
    /* a message from A reaches B and C */
    int64_t t0 = e2e_now_ms();
    assert_true(kaos_client_channel_message_send(m[0]->e->c, m[0]->channel_id,
                                                 "{\"hello\":\"from a\"}", on_ack, m[0]) > 0);
    E2E_WAIT(m[1]->messages >= 1 && m[2]->messages >= 1, 5000);
    printf("# chat message A -> members on B and C: %lld ms\n", (long long)(e2e_now_ms() - t0));
    assert_non_null(strstr(m[2]->last_content, "from a"));
    E2E_WAIT(m[0]->messages >= 1, 5000); /* its own... */
    e2e_pump_for(200);
    assert_int_equal(m[0]->messages, 1); /* ...once: not echoed back by another node */
    assert_int_equal(m[1]->messages, 1);
    /* C leaves: A and B are told */
    int la = m[0]->leaves, lb = m[1]->leaves;
    assert_int_equal(E2E_ACKED(m[2]->e, kaos_client_channel_leave(m[2]->e->c, m[2]->channel_id,
                                                                  e2e_on_done, m[2]->e)),
                     0);
    E2E_WAIT(m[0]->leaves > la && m[1]->leaves > lb, 5000);
    assert_string_equal(m[0]->last_leave, m[2]->e->user_id);
    for (int i = 0; i < NODES; i++)
        member_free(m[i]);
}

static void a_status_follow_across_nodes(void **state)
{
    (void)state;
    NEEDS_NATS();
    member *x = member_on(0), *f = member_on(2);
    /* x is online with a status on A; f on C follows x and sees it */
    assert_int_equal(
        E2E_ACKED(x->e, kaos_client_status_update(x->e->c, "playing", e2e_on_done, x->e)), 0);
    const char *id = x->e->user_id;
    int before = f->answers;
    assert_true(kaos_client_status_follow(f->e->c, &id, 1, NULL, 0, on_follow, f) > 0);
    E2E_WAIT(f->answers > before || f->errors, 5000);
    assert_int_equal(f->errors, 0);
    E2E_WAIT(f->status_joins >= 1, 5000); /* in the answer's list or as an event */
    /* a change on A reaches the follower on C */
    int joins = f->status_joins;
    int64_t t0 = e2e_now_ms();
    assert_int_equal(
        E2E_ACKED(x->e, kaos_client_status_update(x->e->c, "in a match", e2e_on_done, x->e)), 0);
    E2E_WAIT(f->status_joins > joins && !strcmp(f->last_status, "in a match"), 5000);
    printf("# status change on A -> follower on C: %lld ms\n", (long long)(e2e_now_ms() - t0));
    /* x goes offline: the follower is told */
    int leaves = f->status_leaves;
    member_free(x);
    E2E_WAIT(f->status_leaves > leaves, 5000);
    member_free(f);
}

/* --- leaderboards ---------------------------------------------------------------------------- */

typedef struct board_view {
    int answers, errors;
    size_t n;
    char owners[8][40];
    int64_t ranks[8], scores[8];
} board_view;

static void on_record(kaos_client *k, const kaos_result *r, const kaos_leaderboard_record *rec,
                      void *ud)
{
    (void)k;
    (void)rec;
    board_view *v = ud;
    if (r->code)
        v->errors++;
    else
        v->answers++;
}

static void on_records(kaos_client *k, const kaos_result *r, const kaos_leaderboard_record *recs,
                       size_t n, const kaos_leaderboard_record *owners, size_t n_owners,
                       const char *cursor, const char *prev, int64_t rank_count, void *ud)
{
    (void)k;
    (void)owners;
    (void)n_owners;
    (void)cursor;
    (void)prev;
    (void)rank_count;
    board_view *v = ud;
    if (r->code) {
        v->errors++;
        return;
    }
    v->n = n < 8 ? n : 8;
    for (size_t i = 0; i < v->n; i++) {
        snprintf(v->owners[i], sizeof v->owners[i], "%s", recs[i].owner_id);
        v->ranks[i] = recs[i].rank;
        v->scores[i] = recs[i].score;
    }
    v->answers++;
}

/* The board as c's node ranks it now (fails the test on an error). */
static void list_board(e2e_client *c, board_view *v)
{
    int before = v->answers;
    assert_true(kaos_client_leaderboard_records_list(c->c, "e2e_desc", NULL, 0, 10, NULL, 0,
                                                     on_records, v) > 0);
    E2E_WAIT(v->answers > before || v->errors, 5000);
    assert_int_equal(v->errors, 0);
}

/* Whether c's node ranks the three writers as expected: 30, 20, 10. */
static bool ranked(e2e_client *c, e2e_client *const *w)
{
    board_view v = {0};
    list_board(c, &v);
    return v.n == 3 && !strcmp(v.owners[0], w[1]->user_id) && v.ranks[0] == 1 &&
           !strcmp(v.owners[1], w[2]->user_id) && v.ranks[1] == 2 &&
           !strcmp(v.owners[2], w[0]->user_id) && v.ranks[2] == 3;
}

static void a_leaderboard_written_from_every_node_ranks_the_same_on_every_node(void **state)
{
    (void)state;
    NEEDS_NATS();
    e2e_client *w[NODES];
    static const int64_t scores[NODES] = {10, 30, 20};
    for (int i = 0; i < NODES; i++)
        w[i] = e2e_player(node[i].port, 0);
    /* every node loads the board's index (a first read), then each writes on its own node */
    for (int i = 0; i < NODES; i++) {
        board_view v = {0};
        list_board(w[i], &v);
    }
    for (int i = 0; i < NODES; i++) {
        board_view v = {0};
        assert_true(kaos_client_leaderboard_record_write(w[i]->c, "e2e_desc", scores[i], 0, NULL,
                                                         KAOS_LEADERBOARD_OP_DEFAULT, on_record,
                                                         &v) > 0);
        E2E_WAIT(v.answers || v.errors, 5000);
        assert_int_equal(v.errors, 0);
    }
    /* the same order and ranks from every node, without a rebuild */
    for (int i = 0; i < NODES; i++)
        E2E_WAIT(ranked(w[i], w), 5000);
    /* a better score on A moves the first place everywhere */
    board_view v = {0};
    assert_true(kaos_client_leaderboard_record_write(w[0]->c, "e2e_desc", 50, 0, NULL,
                                                     KAOS_LEADERBOARD_OP_DEFAULT, on_record,
                                                     &v) > 0);
    E2E_WAIT(v.answers || v.errors, 5000);
    for (int i = 0; i < NODES; i++) {
        board_view top = {0};
        int64_t deadline = e2e_now_ms() + 5000;
        do
            list_board(w[i], &top);
        while (strcmp(top.owners[0], w[0]->user_id) && e2e_now_ms() < deadline);
        assert_string_equal(top.owners[0], w[0]->user_id);
        assert_int_equal(top.scores[0], 50);
    }
    for (int i = 0; i < NODES; i++)
        e2e_client_free(w[i]);
}

/* A join of match `id` by c: 0 when joined, else the error code. */
static int join_code(e2e_client *c, const char *id)
{
    int before = c->matches, errors = c->errors;
    assert_true(kaos_client_match_join(c->c, id, NULL, e2e_on_match, c) > 0);
    E2E_WAIT(c->matches > before || c->errors > errors, 5000);
    return c->errors > errors ? c->error_code : 0;
}

static void a_join_of_a_match_on_another_node_says_where_it_is(void **state)
{
    (void)state;
    NEEDS_NATS();
    e2e_client *host = e2e_player(node[0].port, 0);
    int before = host->matches;
    assert_true(kaos_client_match_create(host->c, 4, e2e_on_match, host) > 0);
    E2E_WAIT(host->matches > before || host->errors, 5000);
    assert_int_equal(host->errors, 0);
    char id[128];
    snprintf(id, sizeof id, "%s", host->match_id);
    assert_non_null(strstr(id, ".a")); /* its id names its node */
    e2e_client *c = e2e_player(node[2].port, 0);
    assert_int_equal(join_code(c, id), 9); /* FAILED_PRECONDITION, saying where */
    char want[256];
    snprintf(want, sizeof want,
             "match %s is on node a at udp 127.0.0.1:%u: connect there to join it", id,
             node[0].port);
    assert_string_equal(c->error_message, want);
    /* the same session, connected there, joins */
    e2e_client *there = resumed_on(0, c->token);
    assert_int_equal(there->errors, 0);
    assert_int_equal(join_code(there, id), 0);
    E2E_WAIT(host->joins >= 1, 5000);
    e2e_client_free(there);
    e2e_client_free(c);
    e2e_client_free(host);
}

static void a_ban_whose_message_died_with_its_node_is_found_when_the_bus_returns(void **state)
{
    (void)state;
    NEEDS_NATS();
    e2e_client *c = e2e_player(node[2].port, 0);
    nats_stop();
    for (int i = 0; i < NODES; i++)
        E2E_WAIT(metric(i, "kaos_cluster_bus_connected") == 0, 10000);
    /* banned on A while the bus is down: the message waits in A's buffer,
     * and A dies with it */
    char body[128];
    snprintf(body, sizeof body, "{\"user_ids\": [\"%s\"]}", c->user_id);
    assert_int_equal(http_rpc(0, "admin_ban", body), 200);
    /* and a leaderboard record written on A, whose entry dies with A too */
    e2e_client *w = e2e_player(node[0].port, 0), *reader = e2e_player(node[2].port, 0);
    board_view v = {0};
    assert_true(kaos_client_leaderboard_record_write(w->c, "e2e_desc", 1000, 0, NULL,
                                                     KAOS_LEADERBOARD_OP_DEFAULT, on_record,
                                                     &v) > 0);
    E2E_WAIT(v.answers || v.errors, 5000);
    assert_int_equal(v.errors, 0);
    char writer[40];
    snprintf(writer, sizeof writer, "%s", w->user_id);
    e2e_client_free(w);
    e2e_server_kill(&node[0]);
    e2e_pump_for(300);
    assert_false(c->disconnected); /* C cannot know yet */
    int64_t t0 = e2e_now_ms();
    nats_start();
    E2E_WAIT(c->disconnected, 10000); /* C re-checks its sessions in Postgres */
    printf("# NATS back to the banned user's disconnect on C: %lld ms\n",
           (long long)(e2e_now_ms() - t0));
    assert_int_equal(c->disconnect_reason, KAOS_DISCONNECT_BANNED);
    e2e_client_free(c);
    /* C rebuilt its leaderboards from Postgres: A's record is first there */
    board_view top = {0};
    int64_t deadline = e2e_now_ms() + 5000;
    do
        list_board(reader, &top);
    while (strcmp(top.owners[0], writer) && e2e_now_ms() < deadline);
    assert_string_equal(top.owners[0], writer);
    e2e_client_free(reader);
    node_start(0);
    wait_peers(-1, NODES - 1, "A restarted to full membership");
}

static void a_node_killed_is_declared_dead_by_the_others(void **state)
{
    (void)state;
    NEEDS_NATS();
    long long died = metric(0, "kaos_cluster_peers_died_total");
    /* a room with a member on each node: b's member leaves the others' views */
    char room[40];
    e2e_device_id(room);
    member *m[NODES];
    for (int i = 0; i < NODES; i++) {
        m[i] = member_on(i);
        join_room(m[i], room);
    }
    for (int i = 0; i < NODES; i++)
        E2E_WAIT(m[i]->joins >= NODES - 1 - (int)m[i]->others_at_join, 5000);
    int la = m[0]->leaves, lc = m[2]->leaves;
    char want_gone[256];
    e2e_client *host = e2e_player(node[1].port, 0);
    int made = host->matches;
    assert_true(kaos_client_match_create(host->c, 4, e2e_on_match, host) > 0);
    E2E_WAIT(host->matches > made || host->errors, 5000);
    char id[128];
    snprintf(id, sizeof id, "%s", host->match_id);
    e2e_server_kill(&node[1]);
    wait_peers(1, NODES - 2, "kill -9 of b to both others declaring it dead (timeout 1500 ms)");
    E2E_WAIT(m[0]->leaves > la && m[2]->leaves > lc, 5000);
    assert_string_equal(m[0]->last_leave, m[1]->e->user_id);
    for (int i = 0; i < NODES; i++)
        member_free(m[i]);
    /* its matches: a join is told the node is gone */
    e2e_client *late = e2e_player(node[0].port, 0);
    assert_int_equal(join_code(late, id), 14); /* UNAVAILABLE */
    snprintf(want_gone, sizeof want_gone, "match %s is on node b, which is not reachable now", id);
    assert_string_equal(late->error_message, want_gone);
    e2e_client_free(late);
    e2e_client_free(host);
    assert_int_equal(metric(0, "kaos_cluster_peers_died_total"), died + 1);
    assert_int_equal(metric(0, "kaos_cluster_peer_up{peer=\"b\"}"), 0);
    assert_true(healthz_has(2, "peer b dead"));
    /* its players come back on another node with the same token */
    e2e_client *p = e2e_player(node[0].port, 0);
    char token[4096];
    snprintf(token, sizeof token, "%s", p->token);
    e2e_client_free(p);
    e2e_client *r = resumed_on(2, token);
    assert_int_equal(r->errors, 0);
    e2e_client_free(r);
    /* and it rejoins when restarted */
    node_start(1);
    wait_peers(-1, NODES - 1, "b restarted to everyone seeing it");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nodes_see_each_other_and_report_it),
        cmocka_unit_test(a_token_from_node_a_resumes_on_node_c),
        cmocka_unit_test(a_friend_request_from_node_a_reaches_a_user_on_node_c_live),
        cmocka_unit_test(a_ban_on_node_a_disconnects_the_session_on_node_c),
        cmocka_unit_test(single_session_holds_across_nodes),
        cmocka_unit_test(a_chat_room_with_members_on_three_nodes),
        cmocka_unit_test(a_status_follow_across_nodes),
        cmocka_unit_test(a_leaderboard_written_from_every_node_ranks_the_same_on_every_node),
        cmocka_unit_test(a_join_of_a_match_on_another_node_says_where_it_is),
        cmocka_unit_test(without_nats_the_nodes_serve_alone_and_rejoin_when_it_returns),
        cmocka_unit_test(a_ban_whose_message_died_with_its_node_is_found_when_the_bus_returns),
        cmocka_unit_test(a_node_killed_is_declared_dead_by_the_others),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
