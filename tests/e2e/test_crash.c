/* End to end: kill -9 loses nothing acknowledged.
 *
 * Four clients stream storage writes (one in flight each, a new key every
 * time) and a fifth logs in new devices one after another; the server is
 * killed with SIGKILL mid-stream, then started again on the same database
 * and data dir. Every write a client saw acknowledged is in Postgres (read
 * straight from the table) with the version its acknowledgement named, every
 * acknowledged login's device is there with its user, and the clients
 * connect to the new process and resume their sessions with their tokens,
 * then write again. What was in flight at the kill may or may not be there:
 * nothing was promised for it. */
#include "harness.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define WRITERS   4
#define MAX_ACKED 256

typedef struct writer {
    e2e_client *c;
    char token[4096];
    int next, in_flight; /* the key number in flight, -1 when none */
    int acks_seen, errors_seen;
    int n_acked;
    char acked_key[MAX_ACKED][32], acked_version[MAX_ACKED][40];
} writer;

static void send_next(writer *w)
{
    char key[32], value[64];
    snprintf(key, sizeof key, "w%d", w->next);
    snprintf(value, sizeof value, "{\"n\":%d}", w->next);
    kaos_storage_write_object o = {.collection = "crash", .key = key, .value = value};
    w->acks_seen = w->c->storage_acks;
    w->errors_seen = w->c->errors;
    w->in_flight =
        kaos_client_storage_write(w->c->c, &o, 1, e2e_on_storage_acks, w->c) > 0 ? w->next : -1;
    w->next++;
}

/* Records an answered write and sends the next; true when one was acked. */
static bool step(writer *w)
{
    if (w->in_flight < 0 || w->c->storage_acks == w->acks_seen) return false;
    bool acked = w->n_acked < MAX_ACKED;
    if (acked) {
        snprintf(w->acked_key[w->n_acked], 32, "w%d", w->in_flight);
        snprintf(w->acked_version[w->n_acked], 40, "%s", w->c->acks_seen[0].version);
        w->n_acked++;
    }
    send_next(w);
    return acked;
}

/* One row's column, or "" when the query finds none. */
static void query_one(PGconn *db, const char *sql, const char *p1, const char *p2, char *out,
                      size_t cap)
{
    const char *params[2] = {p1, p2};
    PGresult *res = PQexecParams(db, sql, p2 ? 2 : 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(db));
    snprintf(out, cap, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
}

static void kill_9_loses_nothing_acknowledged(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    e2e_server_start(&s, NULL);
    writer w[WRITERS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < WRITERS; i++) {
        w[i].c = e2e_player(s.port, 0);
        snprintf(w[i].token, sizeof w[i].token, "%s", w[i].c->token);
        send_next(&w[i]);
    }
    /* A fifth client logs in new devices, one at a time. */
    e2e_client *lg = e2e_client_new(s.port, 0, 0);
    char devs[64][40], users[64][40];
    int n_logins = 0, sessions = 0;
    e2e_device_id(devs[0]);
    kaos_client_auth_device(lg->c, devs[0], NULL, true, NULL, e2e_on_session, lg);

    /* Stream until enough is acknowledged, then kill mid-stream: every
     * writer has a write in flight. */
    int acked = 0;
    int64_t deadline = e2e_now_ms() + 60000;
    while (acked < 200 && e2e_now_ms() < deadline) {
        e2e_pump();
        for (int i = 0; i < WRITERS; i++)
            acked += step(&w[i]);
        if (lg->sessions > sessions && n_logins < 63) {
            sessions = lg->sessions;
            snprintf(users[n_logins], 40, "%s", lg->user_id);
            n_logins++;
            e2e_device_id(devs[n_logins]);
            kaos_client_auth_device(lg->c, devs[n_logins], NULL, true, NULL, e2e_on_session, lg);
        }
    }
    assert_true(acked >= 200);
    kill(s.pid, SIGKILL);
    assert_int_equal(e2e_server_stop(&s), 128 + SIGKILL);
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(w[i].c->errors, 0);
    print_message("killed with %d writes and %d logins acknowledged, %d writes in flight\n", acked,
                  n_logins, WRITERS);

    /* Straight from Postgres: every acknowledged write with its version. */
    char conninfo[128], got[64];
    snprintf(conninfo, sizeof conninfo, "dbname=%s", s.dbname);
    PGconn *db = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    for (int i = 0; i < WRITERS; i++)
        for (int k = 0; k < w[i].n_acked; k++) {
            query_one(db,
                      "SELECT version FROM storage WHERE collection = 'crash' AND key = $1 AND "
                      "user_id = $2",
                      w[i].acked_key[k], w[i].c->user_id, got, sizeof got);
            if (strcmp(got, w[i].acked_version[k]))
                fail_msg("writer %d: %s acknowledged as version %s, in Postgres \"%s\"", i,
                         w[i].acked_key[k], w[i].acked_version[k], got);
        }
    for (int k = 0; k < n_logins; k++) {
        query_one(db, "SELECT user_id FROM user_device WHERE id = $1", devs[k], NULL, got,
                  sizeof got);
        if (strcmp(got, users[k]))
            fail_msg("login %d: device %s acknowledged as user %s, in Postgres \"%s\"", k, devs[k],
                     users[k], got);
    }
    PQfinish(db);

    /* Started again: the clients connect to it and resume their sessions. */
    e2e_server_start(&s, NULL);
    for (int i = 0; i < WRITERS; i++) {
        char user[40];
        snprintf(user, sizeof user, "%s", w[i].c->user_id);
        e2e_client_free(w[i].c);
        w[i].c = e2e_client_new(s.port, 0, 0);
        kaos_client_session_resume(w[i].c->c, w[i].token, e2e_on_session, w[i].c);
        E2E_WAIT(w[i].c->sessions == 1 || w[i].c->errors, 10000);
        if (w[i].c->sessions != 1)
            fail_msg("writer %d: resume refused: %d %s", i, w[i].c->error_code,
                     w[i].c->error_message);
        assert_string_equal(w[i].c->user_id, user);
        send_next(&w[i]);
    }
    for (int i = 0; i < WRITERS; i++) {
        E2E_WAIT(w[i].c->storage_acks == w[i].acks_seen + 1 || w[i].c->errors, 10000);
        assert_int_equal(w[i].c->errors, 0);
    }
    int total = 0;
    for (int i = 0; i < WRITERS; i++)
        total += w[i].n_acked;
    print_message("after the restart: %d of %d acknowledged writes and %d of %d logins in "
                  "Postgres, %d sessions resumed\n",
                  total, total, n_logins, n_logins, WRITERS);
    for (int i = 0; i < WRITERS; i++)
        e2e_client_free(w[i].c);
    e2e_client_free(lg);
    assert_int_equal(e2e_server_stop(&s), 0);
    e2e_server_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_9_loses_nothing_acknowledged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
