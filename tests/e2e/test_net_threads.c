/* End to end: a server with two network threads (--net-threads 2), one
 * ENet host each, sharing one UDP port. The kernel spreads the clients over
 * both (per-thread connection gauges on /metrics); players on both threads
 * meet in one authoritative match and one relayed match and hear each
 * other; bans over HTTP close connections on both threads; shutdown drains
 * both (every match player hears match_terminate and MatchEnd) and exits
 * cleanly (leak-free under ASan). Also the network thread's admission
 * control: overloaded, it sheds joins; quiet again, it takes them.
 *
 * The runtime path links lua-examples/admin_example.lua (admin_ban) and
 * tests/e2e/lua/ (test_match). */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

enum { PLAYERS = 16 }; /* all on one thread: 2 chances in 65536 */

static char rt_dir[64];
static const char http_key[] = "net-threads-test-key";
static const char *const secret[] = {"password", "secret", NULL};

static int setup(void **state)
{
    const char *dirs[] = {KAOS_SOURCE_DIR "/lua-examples/admin_example.lua",
                          KAOS_SOURCE_DIR "/tests/e2e/lua", NULL};
    e2e_runtime_dir(rt_dir, sizeof rt_dir, dirs);
    const char *extra[] = {"--runtime-path", rt_dir, "--http-key", http_key,
                           "--net-threads", "2", NULL};
    e2e_server_init(&e2e_group_server);
    e2e_server_start(&e2e_group_server, extra);
    return 0;
}

static int teardown(void **state)
{
    int rc = e2e_group_teardown(state);
    e2e_runtime_dir_remove(rt_dir);
    return rc;
}

static e2e_client *players[PLAYERS];

static e2e_client *player(void)
{
    return e2e_player(e2e_group_server.port, 0);
}

/* kaos_net_thread_connections{thread="i"} from /metrics. */
static long thread_connections(int thread)
{
    char body[16384], key[64];
    assert_int_equal(e2e_http(e2e_group_server.http_port, "GET", "/metrics", NULL, NULL, body,
                              sizeof body),
                     200);
    assert_non_null(strstr(body, "kaos_net_threads 2\n"));
    snprintf(key, sizeof key, "kaos_net_thread_connections{thread=\"%d\"} ", thread);
    const char *p = strstr(body, key);
    assert_non_null(p);
    return strtol(p + strlen(key), NULL, 10);
}

static const e2e_data *data_with(const e2e_client *c, int64_t op, uint32_t sender)
{
    for (size_t i = 0; i < c->data_count; i++)
        if (c->data[i].op_code == op && c->data[i].sender == sender) return &c->data[i];
    return NULL;
}

static void clients_spread_over_both_threads(void **state)
{
    for (int i = 0; i < PLAYERS; i++) players[i] = player();
    long on0 = thread_connections(0), on1 = thread_connections(1);
    assert_int_equal(on0 + on1, PLAYERS);
    assert_true(on0 > 0);
    assert_true(on1 > 0);
}

static void players_on_both_threads_share_an_authoritative_match(void **state)
{
    char id[128];
    e2e_match_by_rpc(players[0], "create_test_match", "{\"rate\":20}", id);
    for (int i = 0; i < PLAYERS; i++) e2e_join(players[i], id, secret);
    /* Op 2 is broadcast to everyone, naming the sender: the last player's
     * message must reach all sixteen, whichever thread holds them. */
    e2e_client *z = players[PLAYERS - 1];
    for (int k = 0; k < 20; k++) {
        assert_int_equal(kaos_client_match_send(z->c, z->match_handle, 2, "hi", 2, false, NULL, 0),
                         KAOS_OK);
        e2e_pump_for(10);
    }
    for (int i = 0; i < PLAYERS; i++)
        E2E_WAIT(data_with(players[i], 102, z->self_slot) != NULL, 5000);
    for (int i = 0; i < PLAYERS; i++) {
        assert_int_equal(kaos_client_match_leave(players[i]->c, players[i]->match_handle,
                                                 e2e_on_done, players[i]) > 0,
                         1);
        players[i]->data_count = 0;
    }
}

static void players_on_both_threads_share_a_relayed_match(void **state)
{
    e2e_client *a = players[0];
    int m = a->matches, joins = a->joins;
    kaos_client_match_create(a->c, PLAYERS, e2e_on_match, a);
    E2E_WAIT(a->matches == m + 1, 5000);
    for (int i = 1; i < PLAYERS; i++) {
        e2e_client *c = players[i];
        int before = c->matches, errors = c->errors;
        assert_true(kaos_client_match_join(c->c, a->match_id, NULL, e2e_on_match, c) > 0);
        E2E_WAIT(c->matches == before + 1 || c->errors > errors, 5000);
        if (c->errors > errors)
            fail_msg("player %d: join refused: %s", i, c->error_message);
        assert_int_equal(c->match_size, (uint32_t)i + 1);
    }
    /* The creator heard every join (presence events cross threads too). */
    E2E_WAIT(a->joins == joins + PLAYERS - 1, 5000);
    /* Reliable data from each side reaches everyone else. */
    e2e_client *z = players[PLAYERS - 1];
    assert_int_equal(kaos_client_match_send(a->c, a->match_handle, 7, "from-a", 6, true, NULL, 0),
                     KAOS_OK);
    assert_int_equal(kaos_client_match_send(z->c, z->match_handle, 8, "from-z", 6, true, NULL, 0),
                     KAOS_OK);
    for (int i = 1; i < PLAYERS; i++) {
        E2E_WAIT(data_with(players[i], 7, a->self_slot) != NULL, 5000);
        assert_memory_equal(data_with(players[i], 7, a->self_slot)->bytes, "from-a", 6);
    }
    for (int i = 0; i < PLAYERS - 1; i++) E2E_WAIT(data_with(players[i], 8, z->self_slot), 5000);
}

static void bans_close_connections_on_both_threads(void **state)
{
    char body[8192], out[512], path[256];
    size_t n = (size_t)snprintf(body, sizeof body, "{\"user_ids\": [");
    for (int i = 0; i < PLAYERS; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "%s\"%s\"", i ? "," : "",
                              players[i]->user_id);
    snprintf(body + n, sizeof body - n, "]}");
    snprintf(path, sizeof path, "/v2/rpc/admin_ban?http_key=%s", http_key);
    assert_int_equal(e2e_http(e2e_group_server.http_port, "POST", path, NULL, body, out, sizeof out),
                     200);
    for (int i = 0; i < PLAYERS; i++) {
        E2E_WAIT(players[i]->disconnected, 5000);
        assert_int_equal(players[i]->disconnect_reason, KAOS_DISCONNECT_BANNED);
    }
    for (int i = 0; i < PLAYERS; i++) e2e_client_free(players[i]);
    E2E_WAIT(thread_connections(0) + thread_connections(1) == 0, 5000);
}

/* Shutdown: every thread drains; whichever thread a player is on, it hears
 * match_terminate's broadcast and its MatchEnd before the disconnect. */
static void shutdown_reaches_match_players_on_both_threads(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    const char *extra[] = {"--runtime-path", KAOS_SOURCE_DIR "/tests/e2e/lua", "--net-threads",
                           "2", "--shutdown-grace-ms", "2000", NULL};
    e2e_server_start(&s, extra);
    e2e_client *c[PLAYERS];
    for (int i = 0; i < PLAYERS; i++) c[i] = e2e_player(s.port, 0);
    char id[128];
    e2e_match_by_rpc(c[0], "create_test_match", "{}", id);
    for (int i = 0; i < PLAYERS; i++) e2e_join(c[i], id, secret);
    assert_int_equal(e2e_server_stop(&s), 0); /* pumps the clients while the server drains */
    for (int i = 0; i < PLAYERS; i++) {
        assert_int_equal(c[i]->match_ends, 1);
        assert_non_null(data_with(c[i], 109, 0));
        assert_true(c[i]->disconnected);
        assert_int_equal(c[i]->disconnect_reason, KAOS_DISCONNECT_SHUTDOWN);
        e2e_client_free(c[i]);
    }
    e2e_server_cleanup(&s);
}

/* A metric's value from a /metrics body (-1 when absent). */
static long metric(const char *body, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(body, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static long server_metric(const e2e_server *s, const char *name)
{
    char body[16384];
    assert_int_equal(e2e_http(s->http_port, "GET", "/metrics", NULL, NULL, body, sizeof body), 200);
    return metric(body, name);
}

/* Sends one burst of relayed data from every flooding player. */
static void flood(e2e_client **c, int n, int per_player)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < per_player; k++)
            kaos_client_match_send(c[i]->c, c[i]->match_handle, 1, "flood-flood", 11, false, NULL,
                                   0);
    e2e_pump_for(10);
}

/* Network-thread admission control, with the threshold at 1 % so that a
 * flood of relayed data from this process passes it: while overloaded, a
 * join is refused with UNAVAILABLE and the reason; once the flood stops and
 * a quiet second passes, the same join works. */
static void an_overloaded_network_thread_sheds_joins_and_recovers(void **state)
{
    enum { FLOODERS = 8 };
    e2e_server s;
    e2e_server_init(&s);
    const char *extra[] = {"--net-threads", "1", "--net-overload-pct", "1",
                           "--rate-match-msgs", "5000", "--rate-match-bytes", "10000000", NULL};
    e2e_server_start(&s, extra);
    e2e_client *c[FLOODERS], *late = e2e_player(s.port, 0);
    for (int i = 0; i < FLOODERS; i++) c[i] = e2e_player(s.port, 0);
    kaos_client_match_create(c[0]->c, FLOODERS + 1, e2e_on_match, c[0]);
    E2E_WAIT(c[0]->matches == 1, 5000);
    for (int i = 1; i < FLOODERS; i++) {
        kaos_client_match_join(c[i]->c, c[0]->match_id, NULL, e2e_on_match, c[i]);
        E2E_WAIT(c[i]->matches == 1 || c[i]->errors, 5000);
        assert_int_equal(c[i]->errors, 0);
    }
    /* Flood until a second counts as overloaded. */
    int64_t until = e2e_now_ms() + 15000;
    while (server_metric(&s, "kaos_net_overloaded_seconds_total") < 1 && e2e_now_ms() < until)
        for (int k = 0; k < 20; k++) flood(c, FLOODERS, 2);
    assert_true(server_metric(&s, "kaos_net_overloaded_seconds_total") >= 1);
    /* Still flooding: the join is shed. */
    kaos_client_match_join(late->c, c[0]->match_id, NULL, e2e_on_match, late);
    until = e2e_now_ms() + 5000;
    while (!late->errors && !late->matches && e2e_now_ms() < until) flood(c, FLOODERS, 2);
    assert_int_equal(late->matches, 0);
    assert_int_equal(late->errors, 1);
    assert_int_equal(late->error_code, 14); /* UNAVAILABLE */
    assert_string_equal(late->error_message, "server overloaded; try again later");
    assert_true(server_metric(&s, "kaos_net_shed_joins_total") >= 1);
    /* The players already in were served all along. */
    for (int i = 1; i < FLOODERS; i++) assert_true(c[i]->data_count > 0);

    /* Quiet: within a couple of seconds the thread is no longer overloaded. */
    until = e2e_now_ms() + 10000;
    while (!late->matches && e2e_now_ms() < until) {
        e2e_pump_for(1500);
        int errors = late->errors;
        kaos_client_match_join(late->c, c[0]->match_id, NULL, e2e_on_match, late);
        E2E_WAIT(late->matches == 1 || late->errors > errors, 5000);
    }
    assert_int_equal(late->matches, 1);
    assert_int_equal(e2e_server_stop(&s), 0);
    for (int i = 0; i < FLOODERS; i++) e2e_client_free(c[i]);
    e2e_client_free(late);
    e2e_server_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clients_spread_over_both_threads),
        cmocka_unit_test(players_on_both_threads_share_an_authoritative_match),
        cmocka_unit_test(players_on_both_threads_share_a_relayed_match),
        cmocka_unit_test(bans_close_connections_on_both_threads),
        cmocka_unit_test(shutdown_reaches_match_players_on_both_threads),
        cmocka_unit_test(an_overloaded_network_thread_sheds_joins_and_recovers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
