/* End to end: the economy through the real server — 200 increments of one
 * wallet from RPCs served by both API workers end at the exact sum,
 * concurrent spends never go below zero, a client reads its own wallet with
 * its account (and hooks on that read see it), a multi-update that fails in
 * any of its parts changes nothing, the example's daily reward pays once,
 * the asteroids kill bounty is paid by a match at its end (and at shutdown)
 * through kaos.rpc_call_async exactly once, a failed queued RPC is counted,
 * and a kill -9 of the server during a stream of acknowledged wallet updates
 * loses none of them. *
 * The runtime path is a directory of links to lua-examples/ and
 * tests/e2e/lua/economy/economy_test.lua (the test RPCs and the account_get
 * hooks; in a folder of its own so that the servers of other tests, which load
 * every module of tests/e2e/lua, do not get those hooks).
 * The server takes more control messages per second than the default: the
 * tests fire bursts of RPCs on each connection. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static char rt_dir[128];
static const char *const extra[] = {
    "--runtime-path", rt_dir, "--api-workers", "2", "--rate-control-msgs", "1000", NULL};

static int setup(void **state)
{
    (void)state;
    const char *from[] = {KAOS_SOURCE_DIR "/lua-examples",
                          KAOS_SOURCE_DIR "/tests/e2e/lua/economy/economy_test.lua", NULL};
    e2e_runtime_dir(rt_dir, sizeof rt_dir, from);
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

/* --- helpers ------------------------------------------------------------------- */

/* Calls rpc with payload and waits for its answer (fails the test on an error). */
static const char *rpc(e2e_client *c, const char *id, const char *payload)
{
    int before = c->rpcs, errors = c->errors;
    assert_true(kaos_client_rpc_call(c->c, id, payload, e2e_on_rpc, c) > 0);
    E2E_WAIT(c->rpcs > before || c->errors > errors, 10000);
    if (c->errors > errors) fail_msg("rpc %s failed: %d %s", id, c->error_code, c->error_message);
    return c->rpc_payload;
}

/* The integer after "key": in JSON text, or `absent`. */
static long long json_int(const char *text, const char *key, long long absent)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *at = strstr(text, k);
    return at ? strtoll(at + strlen(k), NULL, 10) : absent;
}

/* The wallet's coins and the ledger's length, read by the server. */
static void state_of(e2e_client *c, const char *user, long long *coins, long long *ledger)
{
    char p[96];
    snprintf(p, sizeof p, "{\"user_id\":\"%s\"}", user);
    const char *s = rpc(c, "eco_state", p);
    *coins = json_int(s, "coins", 0);
    *ledger = json_int(s, "ledger", -1);
}

/* A burst of RPCs answered into one tally. */
typedef struct tally {
    int answers, errors, refused;
    char vms[8][40];
    int n_vms;
} tally;

static void on_burst(kaos_client *k, const kaos_result *r, const char *payload, size_t len,
                     void *ud)
{
    (void)k;
    (void)len;
    tally *t = ud;
    t->answers++;
    if (r->code != KAOS_OK) {
        fprintf(stderr, "rpc answered %d: %s\n", r->code, r->message ? r->message : "");
        t->errors++;
        return;
    }
    if (!strcmp(payload, "refused")) t->refused++;
    const char *vm = strstr(payload, "\"vm\":\"");
    if (!vm) return;
    char id[40];
    snprintf(id, sizeof id, "%.36s", vm + 6);
    for (int i = 0; i < t->n_vms; i++)
        if (!strcmp(t->vms[i], id)) return;
    if (t->n_vms < 8) snprintf(t->vms[t->n_vms++], sizeof t->vms[0], "%s", id);
}

/* --- tests --------------------------------------------------------------------------- */

#define CLIENTS 10
#define PER     20

static void two_hundred_concurrent_increments_on_both_workers_end_at_the_exact_sum(void **state)
{
    (void)state;
    uint16_t port = e2e_group_server.port;
    e2e_client *owner = e2e_player(port, 0);
    e2e_client *cs[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        cs[i] = e2e_player(port, 0);
    tally t = {0};
    long long sum = 0;
    for (int k = 0; k < PER; k++)
        for (int i = 0; i < CLIENTS; i++) {
            int amount = k * CLIENTS + i + 1; /* 1..200 */
            sum += amount;
            char p[128];
            snprintf(p, sizeof p, "{\"user_id\":\"%s\",\"amount\":%d,\"ledger\":%s}",
                     owner->user_id, amount, amount % 2 ? "true" : "false");
            assert_true(kaos_client_rpc_call(cs[i]->c, "eco_add", p, on_burst, &t) > 0);
        }
    E2E_WAIT(t.answers == CLIENTS * PER, 60000);
    assert_int_equal(t.errors, 0);
    assert_true(t.n_vms >= 2); /* both API workers served some */
    long long coins, ledger;
    state_of(owner, owner->user_id, &coins, &ledger);
    assert_int_equal(coins, sum);
    assert_int_equal(ledger, CLIENTS * PER / 2); /* the odd amounts asked for an entry */
    for (int i = 0; i < CLIENTS; i++)
        e2e_client_free(cs[i]);
    e2e_client_free(owner);
}

static void concurrent_spends_over_rpcs_never_go_below_zero(void **state)
{
    (void)state;
    uint16_t port = e2e_group_server.port;
    e2e_client *owner = e2e_player(port, 0);
    char p[128];
    snprintf(p, sizeof p, "{\"user_id\":\"%s\",\"amount\":30}", owner->user_id);
    rpc(owner, "eco_add", p);
    e2e_client *cs[4];
    for (int i = 0; i < 4; i++)
        cs[i] = e2e_player(port, 0);
    tally t = {0};
    snprintf(p, sizeof p, "{\"user_id\":\"%s\",\"amount\":1}", owner->user_id);
    for (int k = 0; k < 20; k++)
        for (int i = 0; i < 4; i++)
            assert_true(kaos_client_rpc_call(cs[i]->c, "eco_spend", p, on_burst, &t) > 0);
    E2E_WAIT(t.answers == 80, 60000);
    assert_int_equal(t.errors, 0);
    assert_int_equal(t.refused, 50);
    long long coins, ledger;
    state_of(owner, owner->user_id, &coins, &ledger);
    assert_int_equal(coins, 0);
    assert_int_equal(ledger, 30); /* a refused spend writes no entry */
    for (int i = 0; i < 4; i++)
        e2e_client_free(cs[i]);
    e2e_client_free(owner);
}

static void a_client_reads_its_wallet_with_its_account_and_hooks_see_it(void **state)
{
    (void)state;
    e2e_client *c = e2e_player(e2e_group_server.port, 0);
    kaos_client_account_get(c->c, e2e_on_account, c);
    E2E_WAIT(c->accounts == 1, 10000);
    assert_string_equal(c->account.wallet, "{}");
    char p[128];
    snprintf(p, sizeof p, "{\"user_id\":\"%s\",\"amount\":42}", c->user_id);
    rpc(c, "eco_add", p);
    kaos_client_account_get(c->c, e2e_on_account, c);
    E2E_WAIT(c->accounts == 2, 10000);
    assert_string_equal(c->account.wallet, "{\"coins\": 42}");
    assert_string_equal(rpc(c, "eco_seen", ""), "{\"coins\": 42}"); /* the after hook */
    /* the before hook refuses the read of a hidden account */
    kaos_account_changes ch = {.display_name = "hidden"};
    kaos_client_account_update(c->c, &ch, e2e_on_done, c);
    E2E_WAIT(c->acks == 1, 10000);
    int errors = c->errors;
    kaos_client_account_get(c->c, e2e_on_account, c);
    E2E_WAIT(c->errors > errors, 10000);
    assert_int_equal(c->error_code, 7);
    assert_string_equal(c->error_message, "this account is hidden");
    e2e_client_free(c);
}

static void a_multi_update_that_fails_in_any_part_changes_nothing(void **state)
{
    (void)state;
    e2e_client *c = e2e_player(e2e_group_server.port, 0);
    char p[160];
    const char *fails[][2] = {
        {"version", "9 storage write: version check failed"},
        {"negative", "9 wallet update 0: currency \"coins\" would go below zero"},
        {"account", "3 account update 0: lang_tag must be"},
    };
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "{\"user_id\":\"%s\",\"fail\":\"%s\"}", c->user_id, fails[i][0]);
        const char *out = rpc(c, "eco_multi", p);
        if (strncmp(out, fails[i][1], strlen(fails[i][1])))
            fail_msg("%s: got \"%s\"", fails[i][0], out);
        long long coins, ledger;
        state_of(c, c->user_id, &coins, &ledger);
        assert_int_equal(coins, 0);
        assert_int_equal(ledger, 0);
        kaos_client_account_get(c->c, e2e_on_account, c);
        E2E_WAIT(c->accounts == (int)i + 1, 10000);
        assert_string_equal(c->account.display_name, "");
    }
    kaos_storage_id id = {"eco", "multi", "", NULL};
    kaos_client_storage_read(c->c, &id, 1, e2e_on_storage_objects, c);
    E2E_WAIT(c->storage_objects == 1, 10000);
    assert_int_equal(c->object_count, 0);
    snprintf(p, sizeof p, "{\"user_id\":\"%s\"}", c->user_id);
    assert_string_equal(rpc(c, "eco_multi", p), "ok");
    long long coins, ledger;
    state_of(c, c->user_id, &coins, &ledger);
    assert_int_equal(coins, 5);
    assert_int_equal(ledger, 1);
    e2e_client_free(c);
}

static void the_daily_reward_pays_once_per_utc_day(void **state)
{
    (void)state;
    e2e_client *c = e2e_player(e2e_group_server.port, 0);
    const char *first = rpc(c, "daily_reward", "");
    assert_non_null(strstr(first, "\"claimed\":true"));
    assert_int_equal(json_int(first, "coins", -1), 100);
    assert_non_null(strstr(rpc(c, "daily_reward", ""), "\"claimed\":false"));
    long long coins, ledger;
    state_of(c, c->user_id, &coins, &ledger);
    assert_int_equal(coins, 100);
    assert_int_equal(ledger, 1);
    e2e_client_free(c);
}

/* The kill bounty as the asteroids match pays it: a small match
 * (economy_test.lua's eco_bounty) counts kills and, when it ends, queues the
 * example's RPC asteroids_bounty with kaos.rpc_call_async — twice, so the
 * second must pay nothing. The killer's wallet ends with the bounty and one
 * ledger entry naming the match; nobody else is paid. */
static long long metric(const char *name)
{
    return e2e_metric(e2e_group_server.http_port, name);
}

static void a_match_pays_the_kill_bounty_at_its_end_exactly_once(void **state)
{
    (void)state;
    e2e_client *killer = e2e_player(e2e_group_server.port, 0);
    e2e_client *other = e2e_player(e2e_group_server.port, 0);
    char id[128], p[192];
    snprintf(id, sizeof id, "%s", rpc(killer, "eco_bounty_match", ""));
    snprintf(p, sizeof p, "{\"match_id\":\"%s\"}", id);
    for (int i = 0; i < 3; i++)
        rpc(killer, "eco_bounty_kill", p);
    long long done = metric("kaos_rpc_async_done_total");
    long long failed = metric("kaos_rpc_async_failed_total");
    rpc(other, "eco_bounty_end", p);
    E2E_WAIT(metric("kaos_rpc_async_done_total") >= done + 2, 10000);
    assert_int_equal(metric("kaos_rpc_async_failed_total"), failed);

    long long coins, ledger;
    state_of(killer, killer->user_id, &coins, &ledger);
    assert_int_equal(coins, 3 * 25);
    assert_int_equal(ledger, 1);
    char q[96];
    snprintf(q, sizeof q, "{\"user_id\":\"%s\"}", killer->user_id);
    const char *entry = rpc(killer, "eco_ledger", q);
    assert_non_null(strstr(entry, "\"reason\":\"asteroids_bounty\""));
    assert_non_null(strstr(entry, id));
    assert_int_equal(json_int(entry, "kills", -1), 3);
    state_of(other, other->user_id, &coins, &ledger);
    assert_int_equal(coins, 0);
    assert_int_equal(ledger, 0);

    /* A client cannot pay itself a bounty. */
    int errors = killer->errors;
    char forged[256];
    snprintf(forged, sizeof forged,
             "{\"match_id\":\"x\",\"kills\":[{\"user_id\":\"%s\",\"kills\":9}]}", killer->user_id);
    assert_true(kaos_client_rpc_call(killer->c, "asteroids_bounty", forged, e2e_on_rpc, killer) >
                0);
    E2E_WAIT(killer->errors > errors, 10000);
    assert_int_equal(killer->error_code, 7);
    e2e_client_free(killer);
    e2e_client_free(other);
}

static void a_queued_rpc_that_fails_is_logged_and_counted(void **state)
{
    (void)state;
    e2e_client *c = e2e_player(e2e_group_server.port, 0);
    long long failed = metric("kaos_rpc_async_failed_total");
    long long queued = metric("kaos_rpc_async_queued_total");
    assert_string_equal(rpc(c, "eco_async", "{\"id\":\"no_such_rpc\",\"payload\":\"\"}"), "queued");
    E2E_WAIT(metric("kaos_rpc_async_failed_total") == failed + 1, 10000);
    assert_int_equal(metric("kaos_rpc_async_queued_total"), queued + 1);
    e2e_client_free(c);
}

static void storage_write_retry_loses_no_racing_increment(void **state)
{
    (void)state;
    uint16_t port = e2e_group_server.port;
    e2e_client *cs[4];
    for (int i = 0; i < 4; i++)
        cs[i] = e2e_player(port, 0);
    tally t = {0};
    for (int k = 0; k < 10; k++)
        for (int i = 0; i < 4; i++)
            assert_true(kaos_client_rpc_call(cs[i]->c, "eco_counter", "{\"key\":\"race\"}",
                                             on_burst, &t) > 0);
    E2E_WAIT(t.answers == 40, 60000);
    assert_int_equal(t.errors, 0);
    assert_string_equal(rpc(cs[0], "eco_counter_get", "{\"key\":\"race\"}"), "40");
    for (int i = 0; i < 4; i++)
        e2e_client_free(cs[i]);
}

/* A server of its own, stopped (SIGTERM) while a match with kills runs:
 * match_terminate queues the bounty, the workers run it before they stop,
 * and after a restart on the same database the wallet holds it. */
static void a_match_ended_by_shutdown_pays_its_bounty(void **state)
{
    (void)state;
    e2e_server srv;
    e2e_server_init(&srv);
    e2e_server_start(&srv, extra);
    e2e_client *c = e2e_client_new(srv.port, 0, 0);
    char device[40], user[40], id[128], p[192];
    e2e_device_id(device);
    e2e_auth(c, device);
    snprintf(user, sizeof user, "%s", c->user_id);
    snprintf(id, sizeof id, "%s", rpc(c, "eco_bounty_match", ""));
    snprintf(p, sizeof p, "{\"match_id\":\"%s\"}", id);
    rpc(c, "eco_bounty_kill", p);
    rpc(c, "eco_bounty_kill", p);
    e2e_client_free(c);
    assert_int_equal(e2e_server_stop(&srv), 0);

    e2e_server_start(&srv, extra);
    c = e2e_client_new(srv.port, 0, 0);
    e2e_auth(c, device);
    long long coins, ledger;
    state_of(c, user, &coins, &ledger);
    assert_int_equal(coins, 2 * 25);
    assert_int_equal(ledger, 1);
    e2e_client_free(c);
    assert_int_equal(e2e_server_stop(&srv), 0);
    e2e_server_cleanup(&srv);
}

/* Runs last: a server of its own, killed with SIGKILL while RPCs that each
 * add 1 coin stream in; every RPC the client saw acknowledged must be in
 * the wallet (and in the ledger) after a restart on the same database. */
typedef struct stream {
    int sent, acked, failed;
} stream;

static void on_stream(kaos_client *k, const kaos_result *r, const char *payload, size_t len,
                      void *ud)
{
    (void)k;
    (void)payload;
    (void)len;
    stream *s = ud;
    if (r->code == KAOS_OK)
        s->acked++;
    else
        s->failed++;
}

static void a_kill_9_during_acknowledged_updates_loses_none(void **state)
{
    (void)state;
    e2e_server srv;
    e2e_server_init(&srv);
    e2e_server_start(&srv, extra);
    e2e_client *c = e2e_client_new(srv.port, 0, 0);
    char device[40];
    e2e_device_id(device);
    e2e_auth(c, device);
    char user[40], p[128];
    snprintf(user, sizeof user, "%s", c->user_id);
    snprintf(p, sizeof p, "{\"user_id\":\"%s\",\"amount\":1,\"ledger\":true}", user);
    stream s = {0};
    /* Keep 8 in flight; kill once 150 are acknowledged, mid-stream. */
    while (s.acked < 150) {
        while (s.sent - s.acked - s.failed < 8) {
            assert_true(kaos_client_rpc_call(c->c, "eco_add", p, on_stream, &s) > 0);
            s.sent++;
        }
        e2e_pump();
        assert_int_equal(s.failed, 0);
    }
    e2e_server_kill(&srv);
    int acked = s.acked, sent = s.sent;
    e2e_client_free(c);

    e2e_server_start(&srv, extra);
    c = e2e_client_new(srv.port, 0, 0);
    e2e_auth(c, device);
    assert_string_equal(c->user_id, user);
    long long coins, ledger;
    state_of(c, user, &coins, &ledger);
    print_message("killed with %d acknowledged of %d sent; the wallet holds %lld\n", acked, sent,
                  coins);
    assert_true(coins >= acked); /* nothing acknowledged was lost */
    assert_true(coins <= sent);  /* and nothing counted twice */
    assert_int_equal(ledger, coins);
    e2e_client_free(c);
    assert_int_equal(e2e_server_stop(&srv), 0);
    e2e_server_cleanup(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_hundred_concurrent_increments_on_both_workers_end_at_the_exact_sum),
        cmocka_unit_test(concurrent_spends_over_rpcs_never_go_below_zero),
        cmocka_unit_test(a_client_reads_its_wallet_with_its_account_and_hooks_see_it),
        cmocka_unit_test(a_multi_update_that_fails_in_any_part_changes_nothing),
        cmocka_unit_test(the_daily_reward_pays_once_per_utc_day),
        cmocka_unit_test(a_match_pays_the_kill_bounty_at_its_end_exactly_once),
        cmocka_unit_test(a_queued_rpc_that_fails_is_logged_and_counted),
        cmocka_unit_test(a_match_ended_by_shutdown_pays_its_bounty),
        cmocka_unit_test(storage_write_retry_loses_no_racing_increment),
        cmocka_unit_test(a_kill_9_during_acknowledged_updates_loses_none),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
