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

#define WRITERS 4

static void kill_9_loses_nothing_acknowledged(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    e2e_server_start(&s, NULL);
    static e2e_stream w[WRITERS];
    static char tokens[WRITERS][4096];
    for (int i = 0; i < WRITERS; i++) {
        e2e_stream_start(&w[i], e2e_player(s.port, 0), "crash");
        snprintf(tokens[i], sizeof tokens[i], "%s", w[i].c->token);
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
            acked += e2e_stream_step(&w[i]) == 1;
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
        assert_int_equal(w[i].n_refused, 0);
    print_message("killed with %d writes and %d logins acknowledged, %d writes in flight\n", acked,
                  n_logins, WRITERS);

    /* Straight from Postgres: every acknowledged write with its version,
     * every acknowledged login's device with its user. */
    for (int i = 0; i < WRITERS; i++)
        e2e_stream_check(&w[i], s.dbname);
    char conninfo[128];
    snprintf(conninfo, sizeof conninfo, "dbname=%s", s.dbname);
    PGconn *db = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    for (int k = 0; k < n_logins; k++) {
        const char *dev = devs[k];
        PGresult *res = PQexecParams(db, "SELECT user_id FROM user_device WHERE id = $1", 1, NULL,
                                     &dev, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
        const char *got = PQntuples(res) ? PQgetvalue(res, 0, 0) : "(none)";
        if (strcmp(got, users[k]))
            fail_msg("login %d: device %s acknowledged as user %s, in Postgres %s", k, dev,
                     users[k], got);
        PQclear(res);
    }
    PQfinish(db);

    /* Started again: the clients connect to it, resume their sessions and
     * write again (what was in flight went with the old connection). */
    e2e_server_start(&s, NULL);
    int total = 0;
    for (int i = 0; i < WRITERS; i++) {
        char user[40];
        snprintf(user, sizeof user, "%s", w[i].c->user_id);
        e2e_client_free(w[i].c);
        w[i].c = e2e_client_new(s.port, 0, 0);
        kaos_client_session_resume(w[i].c->c, tokens[i], e2e_on_session, w[i].c);
        E2E_WAIT(w[i].c->sessions == 1 || w[i].c->errors, 10000);
        if (w[i].c->sessions != 1)
            fail_msg("writer %d: resume refused: %d %s", i, w[i].c->error_code,
                     w[i].c->error_message);
        assert_string_equal(w[i].c->user_id, user);
        int acked_before = w[i].n_acked;
        total += acked_before;
        w[i].in_flight = -1;
        e2e_stream_step(&w[i]);
        /* (E2E_WAIT evaluates its condition once more at the end: no step in it) */
        int64_t deadline2 = e2e_now_ms() + 10000;
        while (w[i].n_acked == acked_before && w[i].n_refused == 0 && e2e_now_ms() < deadline2) {
            e2e_pump();
            e2e_stream_step(&w[i]);
        }
        assert_int_equal(w[i].n_acked, acked_before + 1);
    }
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
