/* End to end: authoritative matches run by a Lua handler
 * (tests/e2e/lua/match_test.lua) on the real server — created by a client
 * and from Lua, joins refused with the handler's reason, input reaching
 * match_loop and broadcasts reaching clients on the chosen channel, kick,
 * label update visible in listings, signal, a runaway script and a memory
 * hog stopped while another match keeps ticking (and, on one shared match
 * thread, holding its neighbours back less than a tick), match_terminate on
 * shutdown, the engine's counters on /metrics. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static const char *const secret[] = {"password", "secret", NULL};

static int setup(void **state)
{
    /* The share is off here: these tests stop a match by each limit in turn
     * (the memory hog must reach its cap, which under a sanitizer takes more
     * CPU than half a neighbour's tick); the share has tests of its own. */
    const char *extra[] = {"--runtime-path", KAOS_SOURCE_DIR "/tests/e2e/lua",
                           "--match-callback-budget-ms", "100", "--match-memory-mb", "8",
                           "--match-call-share-pct", "0", NULL};
    e2e_server_init(&e2e_group_server);
    e2e_server_start(&e2e_group_server, extra);
    return 0;
}

static e2e_client *player(void)
{
    return e2e_player(e2e_group_server.port, 0);
}

/* A match made from Lua through the RPC; returns its id in id. */
static void create_by_rpc(e2e_client *c, const char *params, char id[128])
{
    e2e_match_by_rpc(c, "create_test_match", params, id);
}

static void join(e2e_client *c, const char *id)
{
    e2e_join(c, id, secret);
}

static const e2e_data *data_with_op(const e2e_client *c, int64_t op)
{
    for (size_t i = 0; i < c->data_count; i++)
        if (c->data[i].op_code == op) return &c->data[i];
    return NULL;
}

static void a_client_creates_joins_and_plays(void **state)
{
    e2e_client *a = player(), *b = player();
    int cid = kaos_client_match_create_authoritative(a->c, "test_match", "{\"mode\":\"ffa\"}",
                                                     e2e_on_match, a);
    E2E_WAIT(a->matches == 1 || a->errors, 5000);
    /* The creator joins through match_join_attempt like anyone: no password. */
    assert_int_equal(a->errors, 1);
    assert_int_equal(a->error_cid, (uint32_t)cid);
    assert_int_equal(a->error_code, 7);
    assert_string_equal(a->error_message, "wrong password");

    char id[128];
    create_by_rpc(a, "{\"mode\":\"ffa\",\"rate\":20}", id);
    join(a, id);
    assert_true(a->match_handle & 0x80000000u);
    join(b, id);
    assert_int_equal(b->match_others, 1);
    E2E_WAIT(a->joins == 1, 5000);

    /* echo on the reliable and unreliable channels */
    kaos_client_match_send(a->c, a->match_handle, 1, "rel", 3, true, NULL, 0);
    kaos_client_match_send(a->c, a->match_handle, 1, "unr", 3, false, NULL, 0);
    E2E_WAIT(a->data_count >= 2, 5000);
    bool saw_rel = false, saw_unr = false;
    for (size_t i = 0; i < a->data_count; i++) {
        if (a->data[i].op_code != 101) continue;
        if (!memcmp(a->data[i].bytes, "rel", 3)) saw_rel = a->data[i].reliable;
        if (!memcmp(a->data[i].bytes, "unr", 3)) saw_unr = !a->data[i].reliable;
    }
    assert_true(saw_rel && saw_unr);
    assert_null(data_with_op(b, 101)); /* the echo went to the sender alone */

    /* a broadcast to everyone names the sender */
    kaos_client_match_send(b->c, b->match_handle, 2, "all", 3, true, NULL, 0);
    E2E_WAIT(data_with_op(a, 102) && data_with_op(b, 102), 5000);
    assert_int_equal(data_with_op(a, 102)->sender, b->self_slot);
    assert_false(data_with_op(a, 102)->reliable);

    /* signal: the handler answers through Lua's kaos.match_signal */
    char args[256];
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"data\":\"ping\"}", id);
    kaos_client_rpc_call(a->c, "signal_test_match", args, e2e_on_rpc, a);
    E2E_WAIT(a->rpcs == 2 || a->errors > 1, 5000);
    assert_string_equal(a->rpc_payload, "ticks>0:true data=ping");

    /* label update, then the listing (client request and Lua) sees it */
    kaos_client_match_send(a->c, a->match_handle, 4, "capture", 7, true, NULL, 0);
    for (int tries = 0; tries < 50; tries++) {
        int before = a->match_lists;
        kaos_client_match_list(a->c, 10, NULL, "+mode:capture", 0, 0, e2e_on_match_list, a);
        E2E_WAIT(a->match_lists == before + 1, 5000);
        if (a->match_list_count == 1) break;
        e2e_pump_for(20);
    }
    assert_int_equal(a->match_list_count, 1);
    assert_non_null(strstr(a->match_list_first, "capture"));
    kaos_client_rpc_call(a->c, "list_matches", "+mode:capture", e2e_on_rpc, a);
    E2E_WAIT(a->rpcs == 3, 5000);
    assert_non_null(strstr(a->rpc_payload, id));

    /* one match by id (client request and Lua); an unknown id is NOT_FOUND */
    int lists = a->match_lists;
    kaos_client_match_get(a->c, id, e2e_on_match_list, a);
    E2E_WAIT(a->match_lists == lists + 1, 5000);
    assert_int_equal(a->match_list_count, 1);
    assert_non_null(strstr(a->match_list_first, "capture"));
    int errors_before = a->errors;
    kaos_client_match_get(a->c, "00000000-0000-0000-0000-000000000000.kaos1", e2e_on_match_list, a);
    E2E_WAIT(a->errors == errors_before + 1, 5000);
    assert_int_equal(a->error_code, 5);
    assert_string_equal(a->error_message, "match not found");
    kaos_client_rpc_call(a->c, "get_match", id, e2e_on_rpc, a);
    E2E_WAIT(a->rpcs == 4, 5000);
    assert_non_null(strstr(a->rpc_payload, id));
    assert_non_null(strstr(a->rpc_payload, "\"handler_name\":\"test_match\""));
    kaos_client_rpc_call(a->c, "get_match", "nope.kaos1", e2e_on_rpc, a);
    E2E_WAIT(a->rpcs == 5, 5000);
    assert_string_equal(a->rpc_payload, "none");

    /* kick: b gets MatchEnd ABORTED and a sees b leave */
    kaos_client_match_send(b->c, b->match_handle, 3, "", 0, true, NULL, 0);
    E2E_WAIT(b->match_ends == 1 && a->leaves == 1, 5000);
    assert_int_equal(b->match_end_code, 10);
    assert_string_equal(b->match_end_reason, "kicked");
    /* the kicked player's handle is dead */
    int errors = b->errors;
    kaos_client_match_send(b->c, b->match_handle, 1, "x", 1, true, NULL, 0);
    E2E_WAIT(b->errors == errors + 1, 5000);
    assert_int_equal(b->error_code, 5);

    /* the handler ends the match: everyone left gets MatchEnd OK */
    kaos_client_match_send(a->c, a->match_handle, 7, "", 0, true, NULL, 0);
    E2E_WAIT(a->match_ends == 1, 5000);
    assert_int_equal(a->match_end_code, 0);
    kaos_client_match_join(b->c, id, secret, e2e_on_match, b);
    E2E_WAIT(b->errors == errors + 2, 5000);
    assert_int_equal(b->error_code, 5);
    e2e_client_free(a);
    e2e_client_free(b);
}

/* One bad match among good ones: it ends alone, the others keep ticking. */
static void check_fault(int op, int want_code, const char *want_reason)
{
    e2e_client *bad = player(), *good = player();
    char bad_id[128], good_id[128];
    create_by_rpc(bad, "{}", bad_id);
    create_by_rpc(good, "{}", good_id);
    join(bad, bad_id);
    join(good, good_id);
    kaos_client_match_send(bad->c, bad->match_handle, op, "", 0, true, NULL, 0);
    E2E_WAIT(bad->match_ends == 1, 10000);
    assert_int_equal(bad->match_end_code, want_code);
    if (!strstr(bad->match_end_reason, want_reason))
        fail_msg("reason \"%s\" lacks \"%s\"", bad->match_end_reason, want_reason);
    /* the good match still answers, tick after tick */
    for (int i = 0; i < 3; i++) {
        size_t before = good->data_count;
        kaos_client_match_send(good->c, good->match_handle, 1, "ok", 2, true, NULL, 0);
        E2E_WAIT(good->data_count == before + 1, 5000);
    }
    assert_int_equal(good->match_ends, 0);
    e2e_client_free(bad);
    e2e_client_free(good);
}

static void a_runaway_script_is_stopped_alone(void **state)
{
    check_fault(5, 4, "time budget");
}

/* The hog (op 9) takes 4 MiB at a time, so it reaches the 8 MiB cap within
 * a few ms of CPU: the 100 ms time budget, which is wall time, cannot stop
 * it first even on a loaded machine (op 6, 1 MiB at a time under GC, took
 * over 100 ms there and ended DEADLINE_EXCEEDED). */
static void a_memory_hog_is_stopped_alone(void **state)
{
    check_fault(9, 8, "out of memory");
}

/* A server with one match thread: three 30 Hz matches with a player each
 * and a fourth whose match_loop runs away at input `op` (5 spins, 6
 * allocates until stopped). What the neighbours saw: *late, their ticks
 * started over one interval (33 ms) late while it ran; *worst, the latest
 * any tick started since the server did, µs. They keep playing after. */
static void runaway_on_a_shared_thread(int op, const char *share_pct, long long *late,
                                       long long *worst, long long *call_us, int *end_code,
                                       char reason[128])
{
    e2e_server s;
    e2e_server_init(&s);
    const char *extra[] = {"--runtime-path", KAOS_SOURCE_DIR "/tests/e2e/lua", "--match-threads",
                           "1", "--match-call-share-pct", share_pct, NULL};
    e2e_server_start(&s, extra);
    e2e_client *bad = e2e_player(s.port, 0), *good[3];
    char id[128];
    e2e_match_by_rpc(bad, "create_test_match", "{\"rate\":30}", id);
    e2e_join(bad, id, secret);
    for (int i = 0; i < 3; i++) {
        good[i] = e2e_player(s.port, 0);
        e2e_match_by_rpc(good[i], "create_test_match", "{\"rate\":30}", id);
        e2e_join(good[i], id, secret);
    }
    e2e_pump_for(300);
    long long before = e2e_metric(s.http_port, "kaos_match_late_ticks_total");
    kaos_client_match_send(bad->c, bad->match_handle, op, "", 0, true, NULL, 0);
    E2E_WAIT(bad->match_ends == 1, 10000);
    *end_code = bad->match_end_code;
    snprintf(reason, 128, "%s", bad->match_end_reason);
    e2e_pump_for(300);
    *late = e2e_metric(s.http_port, "kaos_match_late_ticks_total") - before;
    *worst = e2e_metric(s.http_port, "kaos_match_tick_lateness_us_max");
    *call_us = e2e_metric(s.http_port, "kaos_match_tick_us_max");
    print_message("runaway op %d: its call took %lld us\n", op, *call_us);
    for (int i = 0; i < 3; i++) { /* still playing */
        size_t n = good[i]->data_count;
        kaos_client_match_send(good[i]->c, good[i]->match_handle, 1, "ok", 2, true, NULL, 0);
        E2E_WAIT(good[i]->data_count == n + 1, 5000);
        assert_int_equal(good[i]->match_ends, 0);
        e2e_client_free(good[i]);
    }
    e2e_client_free(bad);
    assert_int_equal(e2e_server_stop(&s), 0);
    e2e_server_cleanup(&s);
}

/* The runaway is stopped once it has used half a neighbour's tick of CPU,
 * so the neighbours start each tick less than one interval late. Without
 * the share (--match-call-share-pct 0) it ran its whole 200 ms budget and
 * every neighbour lost about six ticks. The share is CPU time: a runaway
 * that gets half a core takes twice as long in wall time to use it, and on
 * a machine starved of CPU much longer (128 ms seen with the whole suite
 * running on two loaded cores; starved below the share in 200 ms, the
 * time budget stops it first). So what is asserted here is that the
 * neighbours were held back only while its call ran: at most one late tick each per whole interval
 * the call took, plus one — two each when the call gets its CPU, as on an idle machine. The
 * engine's unit test asserts the bound itself, on a stepped clock. */
/* What one runaway does with the share off ([0]) and on ([1]), printed. */
typedef struct share_figures {
    long long late[2], worst[2], call_us[2];
    int code[2];
    char reason[2][128];
} share_figures;

/* The neighbours' late ticks the share run may cause: three neighbours,
 * each late at most once per whole 30 Hz interval the call took, plus one. */
static long long held_back_bound(const share_figures *f)
{
    return 3 * (f->call_us[1] / 33333 + 1);
}

static share_figures compare_share(int op, const char *what)
{
    share_figures f;
    for (int i = 0; i < 2; i++)
        runaway_on_a_shared_thread(op, i ? "50" : "0", &f.late[i], &f.worst[i], &f.call_us[i],
                                   &f.code[i], f.reason[i]);
    print_message("%s, 3 x 30 Hz matches on its thread: without the share %lld late ticks, "
                  "worst lateness %lld us (ended with code %d); with it %lld late ticks, worst "
                  "%lld us (code %d)\n",
                  what, f.late[0], f.worst[0], f.code[0], f.late[1], f.worst[1], f.code[1]);
    return f;
}

static void a_runaway_neighbour_holds_real_matches_back_less_than_a_tick(void **state)
{
    share_figures f = compare_share(5, "spinning neighbour");
    assert_int_equal(f.code[0], 4); /* DEADLINE_EXCEEDED */
    assert_int_equal(f.code[1], 4);
    /* Without the share the neighbours are held back: about five late ticks
     * each, but a neighbour that falls over 10 intervals behind (the 200 ms
     * plus a machine that stalls the thread a little more) is re-based and
     * counts one, so at least one each is what holds on a loaded machine. */
    assert_true(f.late[0] >= 3);
    assert_true(f.worst[0] >= 150000);
    /* Stopped by the share, or, where the thread got less CPU than the share
     * in the whole 200 ms (a starved machine), by the wall-time budget. */
    print_message("with the share, stopped by %s\n",
                  strstr(f.reason[1], "its share") ? "the share" : "the time budget");
    if (f.late[1] > held_back_bound(&f))
        fail_msg("%lld late ticks for a call of %lld us", f.late[1], f.call_us[1]);
}

static void a_memory_hog_neighbour_holds_real_matches_back_less_than_a_tick(void **state)
{
    share_figures f = compare_share(6, "neighbour allocating to its 32 MiB cap");
    assert_true(f.code[0] == 8 || f.code[0] == 4); /* out of memory, or out of time */
    assert_true(f.code[1] == 8 || f.code[1] == 4);
    if (f.late[1] > held_back_bound(&f))
        fail_msg("%lld late ticks for a call of %lld us", f.late[1], f.call_us[1]);
}

static void a_script_error_ends_the_match_with_internal(void **state)
{
    check_fault(8, 13, "match_loop of match handler test_match failed");
}

static void unknown_handlers_and_bad_params_are_refused(void **state)
{
    e2e_client *a = player();
    kaos_client_match_create_authoritative(a->c, "no_such_handler", NULL, e2e_on_match, a);
    E2E_WAIT(a->errors == 1, 5000);
    assert_int_equal(a->error_code, 5);
    kaos_client_match_create_authoritative(a->c, "test_match", "{not json", e2e_on_match, a);
    E2E_WAIT(a->errors == 2, 5000);
    assert_int_equal(a->error_code, 3);
    kaos_client_match_join(a->c, "00000000-0000-0000-0000-000000000000.kaos1", secret, e2e_on_match,
                           a);
    E2E_WAIT(a->errors == 3, 5000);
    assert_int_equal(a->error_code, 5);
    e2e_client_free(a);
}

/* The value of one metric line ("kaos_x 12"), or -1. */
static long long metric(const char *text, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(text, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static void match_counters_show_in_metrics(void **state)
{
    e2e_client *a = player();
    char id[128];
    create_by_rpc(a, "{\"rate\":20}", id);
    join(a, id);
    kaos_client_match_send(a->c, a->match_handle, 1, "in", 2, true, NULL, 0);
    E2E_WAIT(data_with_op(a, 101), 5000);
    static char out[16384];
    assert_int_equal(
        e2e_http(e2e_group_server.http_port, "GET", "/metrics", NULL, NULL, out, sizeof out), 200);
    assert_true(metric(out, "kaos_matches") >= 1);
    assert_true(metric(out, "kaos_match_created_total") >= 1);
    assert_true(metric(out, "kaos_match_inputs_total") >= 1);
    assert_true(metric(out, "kaos_match_tick_us_max") >= 0);
    long long ticks = metric(out, "kaos_match_ticks_total");
    assert_true(ticks >= 2); /* the echo came from a tick after the first */
    /* Every tick falls in one lateness bucket; one stats copy backs the page. */
    assert_int_equal(metric(out, "kaos_match_tick_lateness_us_count"), ticks);
    assert_int_equal(metric(out, "kaos_match_tick_lateness_us_bucket{le=\"+Inf\"}"), ticks);
    assert_true(metric(out, "kaos_match_late_ticks_total") >= 0);
    /* The gateway's and the session owner's counters: this player is bound
     * and has sent its login, the RPC and the join at least. */
    assert_true(metric(out, "kaos_sessions") >= 1);
    assert_true(metric(out, "kaos_requests_total") >= 3);
    assert_true(metric(out, "kaos_request_errors_total") >= 0);
    assert_true(metric(out, "kaos_sessions_revoked") >= 0);
    e2e_client_free(a);
}

static void shutdown_calls_match_terminate_with_the_grace_period(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    const char *extra[] = {"--runtime-path", KAOS_SOURCE_DIR "/tests/e2e/lua",
                           "--shutdown-grace-ms", "2000", NULL};
    e2e_server_start(&s, extra);
    char dev[40];
    e2e_device_id(dev);
    e2e_client *c = e2e_client_new(s.port, 0, 0);
    e2e_auth(c, dev);
    char id[128];
    create_by_rpc(c, "{}", id);
    join(c, id);
    assert_int_equal(e2e_server_stop(&s), 0); /* pumps the client while the server drains */
    assert_int_equal(c->match_ends, 1);
    const e2e_data *d = data_with_op(c, 109);
    assert_non_null(d);
    assert_int_equal(d->len, 1);
    assert_int_equal(d->bytes[0], '2'); /* grace seconds */
    assert_int_equal(c->match_end_code, 14);
    e2e_client_free(c);
    e2e_server_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_client_creates_joins_and_plays),
        cmocka_unit_test(a_runaway_script_is_stopped_alone),
        cmocka_unit_test(a_memory_hog_is_stopped_alone),
        cmocka_unit_test(a_runaway_neighbour_holds_real_matches_back_less_than_a_tick),
        cmocka_unit_test(a_memory_hog_neighbour_holds_real_matches_back_less_than_a_tick),
        cmocka_unit_test(a_script_error_ends_the_match_with_internal),
        cmocka_unit_test(unknown_handlers_and_bad_params_are_refused),
        cmocka_unit_test(match_counters_show_in_metrics),
        cmocka_unit_test(shutdown_calls_match_terminate_with_the_grace_period),
    };
    return cmocka_run_group_tests(tests, setup, e2e_group_teardown);
}
