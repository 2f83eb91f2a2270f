/* End to end: Postgres stops under a running server and comes back.
 *
 * The throwaway cluster pg_virtualenv made is stopped (pg_ctlcluster, with
 * the environment pg_virtualenv sets) while clients write storage, log in
 * and play an authoritative and a relayed match. Meanwhile: the matches keep
 * ticking and relaying; every storage write and login is answered
 * UNAVAILABLE "database unavailable" (none hangs: each is waited for with a
 * deadline, one after another); the API queue empties; /healthz says
 * degraded. The cluster starts again: with no restart and no reconnect the
 * same connections write and log in again, /healthz says ok, and every write
 * acknowledged before, during (none) and after is read back with the
 * version its acknowledgement named. Runs alone (RUN_SERIAL): the cluster
 * is every e2e test's. */
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

/* The cluster listening on PGPORT, as "VERSION NAME"; false when the
 * environment is not pg_virtualenv's. */
static bool find_cluster(char *out, size_t cap)
{
    const char *port = getenv("PGPORT");
    if (!port || !getenv("PG_CLUSTER_CONF_ROOT")) return false;
    FILE *p = popen("pg_lsclusters -h 2>/dev/null", "r");
    if (!p) return false;
    char line[512], ver[32], name[128], prt[32];
    bool found = false;
    while (!found && fgets(line, sizeof line, p))
        if (sscanf(line, "%31s %127s %31s", ver, name, prt) == 3 && !strcmp(prt, port)) {
            snprintf(out, cap, "%s %s", ver, name);
            found = true;
        }
    pclose(p);
    return found;
}

static void cluster(const char *which, const char *verb)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "pg_ctlcluster %s %s%s >/dev/null 2>&1", which, verb,
             strcmp(verb, "stop") ? "" : " -m fast");
    if (system(cmd) != 0) fail_msg("%s failed", cmd);
}

/* One write of key k (its value names the round); returns the wire code
 * (0 = acknowledged, its version into version). */
static int write_one(e2e_client *c, int k, const char *round, char version[40])
{
    char key[32], value[64];
    snprintf(key, sizeof key, "k%d", k);
    snprintf(value, sizeof value, "{\"round\":\"%s\",\"k\":%d}", round, k);
    kaos_storage_write_object o = {.collection = "outage", .key = key, .value = value};
    int acks = c->storage_acks, errors = c->errors;
    kaos_client_storage_write(c->c, &o, 1, e2e_on_storage_acks, c);
    E2E_WAIT(c->storage_acks == acks + 1 || c->errors == errors + 1, 15000);
    if (c->errors == errors + 1) return c->error_code;
    snprintf(version, 40, "%s", c->acks_seen[0].version);
    return 0;
}

/* A login by device on a connection of its own; returns the wire code. */
static int login(e2e_client *c, const char *dev)
{
    int sessions = c->sessions, errors = c->errors;
    kaos_client_auth_device(c->c, dev, NULL, true, NULL, e2e_on_session, c);
    E2E_WAIT(c->sessions == sessions + 1 || c->errors == errors + 1, 15000);
    return c->errors == errors + 1 ? c->error_code : 0;
}

static bool healthz_says(uint16_t http_port, const char *what)
{
    char body[256] = "";
    int status = e2e_http(http_port, "GET", "/healthz", NULL, NULL, body, sizeof body);
    return status == 200 && strstr(body, what);
}

/* The authoritative match echoes op 1; the relayed one passes data on. */
static void matches_still_play(e2e_client *auth, e2e_client *ra, e2e_client *rb)
{
    size_t n = auth->data_count;
    kaos_client_match_send(auth->c, auth->match_handle, 1, "ok", 2, true, NULL, 0);
    E2E_WAIT(auth->data_count == n + 1, 5000);
    n = rb->data_count;
    kaos_client_match_send(ra->c, ra->match_handle, 5, "hi", 2, true, NULL, 0);
    E2E_WAIT(rb->data_count == n + 1, 5000);
}

#define KEYS 10

static void postgres_stops_and_comes_back(void **state)
{
    char which[160];
    if (!find_cluster(which, sizeof which)) {
        print_message("not under pg_virtualenv: no cluster of our own to stop\n");
        skip();
    }
    e2e_server s;
    e2e_server_init(&s);
    const char *extra[] = {"--runtime-path", KAOS_SOURCE_DIR "/tests/e2e/lua", NULL};
    e2e_server_start(&s, extra);
    e2e_client *w = e2e_player(s.port, 0), *auth = e2e_player(s.port, 0);
    e2e_client *ra = e2e_player(s.port, 0), *rb = e2e_player(s.port, 0);
    e2e_client *lg = e2e_client_new(s.port, 0, 0);
    char id[128];
    e2e_match_by_rpc(auth, "create_test_match", "{}", id);
    e2e_join(auth, id, secret);
    kaos_client_match_create(ra->c, 0, e2e_on_match, ra);
    E2E_WAIT(ra->matches == 1, 5000);
    kaos_client_match_join(rb->c, ra->match_id, NULL, e2e_on_match, rb);
    E2E_WAIT(rb->matches == 1, 5000);
    matches_still_play(auth, ra, rb);
    assert_true(healthz_says(s.http_port, "ok"));

    int code;
    /* Before: every write acknowledged, with its version. */
    char version[KEYS][40];
    for (int k = 0; k < KEYS; k++)
        assert_int_equal(write_one(w, k, "before", version[k]), 0);

    cluster(which, "stop");
    /* During: each request answered UNAVAILABLE with the reason, in turn. */
    int refused = 0;
    for (int k = 0; k < KEYS; k++) {
        char v[40];
        code = write_one(w, k, "during", v);
        if (code != 14 || !strstr(w->error_message, "database unavailable"))
            fail_msg("a write with Postgres down: code %d, %s", code, w->error_message);
        refused++;
    }
    char dev[40];
    e2e_device_id(dev);
    code = login(lg, dev);
    if (code != 14 || !strstr(lg->error_message, "database unavailable"))
        fail_msg("a login with Postgres down: code %d, %s", code, lg->error_message);
    matches_still_play(auth, ra, rb);
    assert_true(healthz_says(s.http_port, "degraded: database unavailable"));
    assert_int_equal(e2e_metric(s.http_port, "kaos_api_pending"), 0);
    print_message("Postgres down: %d writes and 1 login refused UNAVAILABLE, matches playing\n",
                  refused);

    cluster(which, "start");
    /* After: the same connections, no restart. The first requests may still
     * meet the old connections' end; the server reconnects by itself. */
    code = -1;
    for (int tries = 0; tries < 50 && code != 0; tries++) {
        code = write_one(w, 0, "after", version[0]);
        if (code) e2e_pump_for(200);
    }
    assert_int_equal(code, 0);
    for (int k = 1; k < KEYS / 2; k++)
        assert_int_equal(write_one(w, k, "after", version[k]), 0);
    assert_int_equal(login(lg, dev), 0);
    assert_true(healthz_says(s.http_port, "ok"));
    matches_still_play(auth, ra, rb);
    assert_true(w->connected && lg->connected && auth->connected);

    /* Every acknowledged write is there with its version: keys below KEYS/2
     * from after the outage, the rest from before it. */
    kaos_storage_id ids[KEYS];
    char keys[KEYS][32];
    for (int k = 0; k < KEYS; k++) {
        snprintf(keys[k], sizeof keys[k], "k%d", k);
        ids[k] = (kaos_storage_id){.collection = "outage", .key = keys[k]};
    }
    int objects = w->storage_objects;
    kaos_client_storage_read(w->c, ids, KEYS, e2e_on_storage_objects, w);
    E2E_WAIT(w->storage_objects == objects + 1, 5000);
    assert_int_equal(w->object_count, KEYS);
    for (size_t i = 0; i < w->object_count; i++) {
        const e2e_object *o = &w->objects[i];
        int k = atoi(o->key + 1);
        assert_true(k >= 0 && k < KEYS);
        assert_string_equal(o->version, version[k]);
        assert_non_null(strstr(o->value, k < KEYS / 2 ? "after" : "before"));
    }
    print_message("after: %d of %d acknowledged writes read back with their versions\n", KEYS,
                  KEYS);

    e2e_client_free(w);
    e2e_client_free(auth);
    e2e_client_free(ra);
    e2e_client_free(rb);
    e2e_client_free(lg);
    assert_int_equal(e2e_server_stop(&s), 0);
    e2e_server_cleanup(&s);
}

#define STREAMS 4

/* Pumps and steps the streams until `done` holds for every one (or fails
 * the test after timeout_ms); refusals must be UNAVAILABLE. */
static void stream_until(e2e_stream *w, bool (*done)(const e2e_stream *, int), int base[STREAMS],
                         int timeout_ms)
{
    int64_t deadline = e2e_now_ms() + timeout_ms;
    for (;;) {
        bool all = true;
        for (int i = 0; i < STREAMS; i++) {
            if (e2e_stream_step(&w[i]) < 0 && w[i].last_error != 14)
                fail_msg("stream %d: a write refused with code %d, %s", i, w[i].last_error,
                         w[i].c->error_message);
            all = all && done(&w[i], base[i]);
        }
        if (all) return;
        if (e2e_now_ms() > deadline) fail_msg("streams did not get there in %d ms", timeout_ms);
        e2e_pump();
    }
}

static bool acked_25_more(const e2e_stream *w, int base)
{
    return w->n_acked >= base + 25;
}

static bool refused_10_more(const e2e_stream *w, int base)
{
    return w->n_refused >= base + 10;
}

/* Four clients stream writes (one in flight each) across an outage: the
 * stop lands mid-stream; while Postgres is away every write is answered
 * UNAVAILABLE, so the streams keep moving; once it is back they are
 * acknowledged again with no reconnect; every write acknowledged before,
 * around and after the stop is in Postgres with its version. */
static void writes_streamed_across_an_outage_lose_nothing_acknowledged(void **state)
{
    char which[160];
    if (!find_cluster(which, sizeof which)) skip();
    e2e_server s;
    e2e_server_init(&s);
    e2e_server_start(&s, NULL);
    static e2e_stream w[STREAMS];
    int base[STREAMS] = {0};
    for (int i = 0; i < STREAMS; i++)
        e2e_stream_start(&w[i], e2e_player(s.port, 0), "stream");
    stream_until(w, acked_25_more, base, 30000);
    int before = 0;
    for (int i = 0; i < STREAMS; i++)
        before += w[i].n_acked;

    cluster(which, "stop");
    for (int i = 0; i < STREAMS; i++)
        base[i] = w[i].n_refused;
    stream_until(w, refused_10_more, base, 30000);
    int around = -before, refused = 0;
    for (int i = 0; i < STREAMS; i++) {
        around += w[i].n_acked;
        refused += w[i].n_refused;
        base[i] = w[i].n_acked;
    }

    cluster(which, "start");
    stream_until(w, acked_25_more, base, 60000);
    int total = 0;
    for (int i = 0; i < STREAMS; i++) {
        e2e_stream_check(&w[i], s.dbname);
        total += w[i].n_acked;
        assert_true(w[i].c->connected);
    }
    assert_true(healthz_says(s.http_port, "ok"));
    print_message("streamed across the outage: %d writes acknowledged before the stop, %d around "
                  "it, %d refused UNAVAILABLE while Postgres was down, %d after; all %d in "
                  "Postgres with their versions\n",
                  before, around, refused, total - before - around, total);
    for (int i = 0; i < STREAMS; i++)
        e2e_client_free(w[i].c);
    assert_int_equal(e2e_server_stop(&s), 0);
    e2e_server_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(postgres_stops_and_comes_back),
        cmocka_unit_test(writes_streamed_across_an_outage_lose_nothing_acknowledged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
