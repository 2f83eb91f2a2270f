/* End to end: the matchmaker over real UDP with SDK clients and a server
 * passing every 50 ms (--matchmaker-interval-ms). Players are matched by
 * properties and mutual queries, count multiple shapes the group, queries
 * that must not match never do, a ticket dies with its session, the
 * matched hook (tests/e2e/lua/matchmaker_test.lua) puts a group in one
 * authoritative match, a failing hook falls back to a relayed match that
 * the group joins by token; a ticket whose window widens on the server
 * meets one its first window missed; a script adds tickets for the calling
 * session (kaos.matchmaker_add); refusals carry their codes and messages.
 * Nothing assumes one network thread: CI runs it again with
 * KAOS_NET_THREADS=2. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static e2e_server srv;

static int setup(void **state)
{
    int rc = e2e_group_setup_with_test_modules(state);
    if (rc) return rc;
    e2e_server_init(&srv);
    const char *extra[] = {"--runtime-path",
                           e2e_test_modules_dir,
                           "--matchmaker-interval-ms",
                           "50",
                           "--matchmaker-max-intervals",
                           "40",
                           NULL};
    e2e_server_start(&srv, extra);
    return 0;
}

static int teardown(void **state)
{
    int status = e2e_server_stop(&srv);
    e2e_server_cleanup(&srv);
    int rc = e2e_group_teardown_with_test_modules(state);
    return status ? -1 : rc;
}

/* What one player saw of the matchmaker. */
typedef struct player {
    e2e_client *e;
    int tickets;
    char ticket[40];
    int matched;
    char m_ticket[40], m_match_id[128], m_token[200], self_user[40];
    size_t m_users;
    char users[8][40];
    char region_of_first[16];
    double skill_of_self;
} player;

static void on_ticket(kaos_client *k, const kaos_result *r, const char *ticket, void *ud)
{
    player *p = ud;
    if (r->code < 0) {
        e2e_on_done(k, r, p->e); /* records the error */
        return;
    }
    snprintf(p->ticket, sizeof p->ticket, "%s", ticket);
    p->tickets++;
}

static void on_matched(kaos_client *k, const kaos_matchmaker_matched *m, void *ud)
{
    (void)k;
    player *p = ud;
    snprintf(p->m_ticket, sizeof p->m_ticket, "%s", m->ticket);
    snprintf(p->m_match_id, sizeof p->m_match_id, "%s", m->match_id);
    snprintf(p->m_token, sizeof p->m_token, "%s", m->token);
    p->m_users = m->n_users;
    for (size_t i = 0; i < m->n_users && i < 8; i++)
        snprintf(p->users[i], sizeof p->users[i], "%s", m->users[i].presence.user_id);
    const kaos_matchmaker_properties *first = m->n_users ? &m->users[0].properties : NULL;
    for (size_t i = 0; first && i < first->n_strings; i++)
        if (!strcmp(first->string_names[i], "region"))
            snprintf(p->region_of_first, sizeof p->region_of_first, "%s", first->string_values[i]);
    if (m->self) {
        snprintf(p->self_user, sizeof p->self_user, "%s", m->self->presence.user_id);
        const kaos_matchmaker_properties *self = &m->self->properties;
        for (size_t i = 0; i < self->n_numerics; i++)
            if (!strcmp(self->numeric_names[i], "skill"))
                p->skill_of_self = self->numeric_values[i];
    }
    p->matched++;
}

static player *join_pool(void)
{
    player *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->e = e2e_player(srv.port, 0);
    kaos_client_on_matchmaker_matched(p->e->c, on_matched, p);
    return p;
}

static void drop(player *p)
{
    e2e_client_free(p->e);
    free(p);
}

/* Adds a ticket with region, mode and skill; returns 0 or the error code. */
static int add(player *p, const char *region, const char *mode, double skill, const char *query,
               int min, int max, int mult)
{
    const char *names[] = {"region", "mode"}, *values[] = {region, mode};
    const char *nnames[] = {"skill"};
    kaos_matchmaker_request req = {.min_count = min,
                                   .max_count = max,
                                   .count_multiple = mult,
                                   .query = query,
                                   .properties = {names, values, 2, nnames, &skill, 1}};
    int cid = kaos_client_matchmaker_add(p->e->c, &req, on_ticket, p);
    assert_true(cid > 0);
    return e2e_answer(p->e, &p->tickets, p->tickets, p->e->errors, cid);
}

/* A 1-vs-1 ticket of mode `mode` and skill, with widening rules. */
static int add_widening(player *p, const char *mode, double skill, const char *query,
                        const kaos_matchmaker_widen *w, size_t n_w)
{
    const char *names[] = {"mode"}, *values[] = {mode};
    const char *nnames[] = {"skill"};
    kaos_matchmaker_request req = {.min_count = 2,
                                   .max_count = 2,
                                   .query = query,
                                   .properties = {names, values, 1, nnames, &skill, 1},
                                   .widen = w,
                                   .n_widen = n_w};
    int cid = kaos_client_matchmaker_add(p->e->c, &req, on_ticket, p);
    assert_true(cid > 0);
    return e2e_answer(p->e, &p->tickets, p->tickets, p->e->errors, cid);
}

static bool in_group(const player *p, const player *q)
{
    for (size_t i = 0; i < p->m_users && i < 8; i++)
        if (!strcmp(p->users[i], q->e->user_id)) return true;
    return false;
}

static void two_players_meet_in_a_relayed_match_by_token(void **state)
{
    (void)state;
    player *a = join_pool(), *b = join_pool();
    assert_int_equal(
        add(a, "eu", "relay", 10, "+properties.region:eu +properties.skill:<=20", 2, 2, 1), 0);
    assert_int_equal(add(b, "eu", "relay", 15, "+region:eu", 2, 2, 1), 0);
    E2E_WAIT(a->matched && b->matched, 10000);
    assert_string_equal(a->m_ticket, a->ticket);
    assert_string_equal(b->m_ticket, b->ticket);
    assert_string_equal(a->m_match_id, "");
    assert_string_not_equal(a->m_token, "");
    assert_string_equal(a->m_token, b->m_token);
    assert_int_equal(a->m_users, 2);
    assert_true(in_group(a, b) && in_group(b, a));
    assert_string_equal(a->self_user, a->e->user_id);
    assert_string_equal(a->region_of_first, "eu");
    assert_true(a->skill_of_self == 10);
    /* Both join the relayed match the token names: the same match. */
    int before = a->e->matches;
    assert_true(kaos_client_match_join_token(a->e->c, a->m_token, e2e_on_match, a->e) > 0);
    E2E_WAIT(a->e->matches > before, 10000);
    before = b->e->matches;
    assert_true(kaos_client_match_join_token(b->e->c, b->m_token, e2e_on_match, b->e) > 0);
    E2E_WAIT(b->e->matches > before, 10000);
    assert_string_equal(a->e->match_id, b->e->match_id);
    assert_int_equal(b->e->match_size, 2);
    /* A forged token is refused. */
    char forged[200];
    snprintf(forged, sizeof forged, "%s", a->m_token);
    forged[strlen(forged) - 1] = forged[strlen(forged) - 1] == '0' ? '1' : '0';
    int errors = a->e->errors;
    assert_true(kaos_client_match_join_token(a->e->c, forged, e2e_on_match, a->e) > 0);
    E2E_WAIT(a->e->errors > errors, 10000);
    assert_int_equal(a->e->error_code, 3);
    assert_string_equal(a->e->error_message, "invalid match token");
    drop(a);
    drop(b);
}

static void count_multiple_and_queries_shape_the_group(void **state)
{
    (void)state;
    /* Five "na" players wanting 2-4 in multiples of 2, and one "sa" player
     * whose query accepts them but whom their queries refuse. */
    player *p[5], *outsider = join_pool();
    for (int i = 0; i < 5; i++)
        p[i] = join_pool();
    assert_int_equal(add(outsider, "sa", "relay", 10, "*", 2, 4, 2), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(add(p[i], "na", "relay", 10 + i, "+region:na", 2, 4, 2), 0);
    E2E_WAIT(p[0]->matched + p[1]->matched + p[2]->matched + p[3]->matched + p[4]->matched >= 4,
             10000);
    e2e_pump_for(400); /* several more passes */
    int matched = 0;
    for (int i = 0; i < 5; i++) {
        matched += p[i]->matched;
        if (p[i]->matched) {
            assert_int_equal(p[i]->m_users, 4);
            assert_false(in_group(p[i], outsider));
        }
    }
    assert_int_equal(matched, 4); /* one group of 4; the fifth alone is no group of 2 */
    assert_int_equal(outsider->matched, 0);
    for (int i = 0; i < 5; i++)
        drop(p[i]);
    drop(outsider);
}

static void a_ticket_dies_with_its_session(void **state)
{
    (void)state;
    player *a = join_pool(), *b = join_pool();
    assert_int_equal(add(a, "oc", "relay", 1, "+region:oc", 2, 2, 1), 0);
    drop(a); /* disconnects: its ticket goes */
    assert_int_equal(add(b, "oc", "relay", 1, "+region:oc", 2, 2, 1), 0);
    e2e_pump_for(400);
    assert_int_equal(b->matched, 0);
    player *c = join_pool();
    assert_int_equal(add(c, "oc", "relay", 1, "+region:oc", 2, 2, 1), 0);
    E2E_WAIT(b->matched && c->matched, 10000);
    assert_true(in_group(b, c));
    drop(b);
    drop(c);
}

static void the_matched_hook_puts_the_group_in_one_authoritative_match(void **state)
{
    (void)state;
    player *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = join_pool();
    for (int i = 0; i < 3; i++)
        assert_int_equal(add(p[i], "af", "auth", 5, "+mode:auth", 3, 3, 1), 0);
    E2E_WAIT(p[0]->matched && p[1]->matched && p[2]->matched, 10000);
    assert_string_not_equal(p[0]->m_match_id, "");
    assert_string_equal(p[0]->m_token, "");
    const char *md[] = {"password", "secret", NULL};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(p[i]->m_match_id, p[0]->m_match_id);
        e2e_join(p[i]->e, p[i]->m_match_id, md);
        assert_string_equal(p[i]->e->match_id, p[0]->m_match_id);
    }
    E2E_WAIT(p[2]->e->match_size == 3, 10000);
    for (int i = 0; i < 3; i++)
        drop(p[i]);
}

static void a_failing_matched_hook_falls_back_to_a_relayed_match(void **state)
{
    (void)state;
    player *a = join_pool(), *b = join_pool();
    assert_int_equal(add(a, "an", "boom", 5, "+mode:boom", 2, 2, 1), 0);
    assert_int_equal(add(b, "an", "boom", 5, "+mode:boom", 2, 2, 1), 0);
    E2E_WAIT(a->matched && b->matched, 10000);
    assert_string_equal(a->m_match_id, "");
    assert_string_not_equal(a->m_token, "");
    assert_string_equal(a->m_token, b->m_token);
    drop(a);
    drop(b);
}

static void a_processor_script_forms_the_groups(void **state)
{
    (void)state;
    player *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = join_pool();
    for (int i = 0; i < 4; i++)
        assert_int_equal(add(p[i], "pr", "proc", 5, "+mode:proc", 2, 2, 1), 0);
    E2E_WAIT(p[0]->matched && p[1]->matched && p[2]->matched && p[3]->matched, 10000);
    /* The script pairs oldest with newest (the built-in matcher would pair 0 with 1). */
    assert_true(in_group(p[0], p[3]));
    assert_true(in_group(p[1], p[2]));
    for (int i = 0; i < 4; i++)
        drop(p[i]);
}

static void an_override_script_vetoes_groups_and_a_failing_one_falls_back(void **state)
{
    (void)state;
    player *a = join_pool(), *b = join_pool();
    assert_int_equal(add(a, "ve", "veto", 5, "+mode:veto", 2, 2, 1), 0);
    assert_int_equal(add(b, "ve", "veto", 5, "+mode:veto", 2, 2, 1), 0);
    e2e_pump_for(400);
    assert_int_equal(a->matched + b->matched, 0);
    drop(a);
    drop(b);
    /* A failing override fails the whole pass over to the built-in groups. */
    player *c = join_pool(), *d = join_pool();
    assert_int_equal(add(c, "ob", "overboom", 5, "+mode:overboom", 2, 2, 1), 0);
    assert_int_equal(add(d, "ob", "overboom", 5, "+mode:overboom", 2, 2, 1), 0);
    E2E_WAIT(c->matched && d->matched, 10000);
    assert_true(in_group(c, d));
    drop(c);
    drop(d);
}

static void a_ticket_that_widens_its_window_is_matched_and_one_that_does_not_waits(void **state)
{
    (void)state;
    /* Two pairs 300 apart: only the one whose ticket widens meets. */
    player *a = join_pool(), *b = join_pool(), *c = join_pool(), *d = join_pool();
    const char *q = "+skill:>=900 +skill:<=1100";
    char qa[64], qc[64];
    snprintf(qa, sizeof qa, "+mode:still %s", q);
    snprintf(qc, sizeof qc, "+mode:widen %s", q);
    kaos_matchmaker_widen w = {"skill", 50, 400};
    assert_int_equal(add_widening(a, "still", 1000, qa, NULL, 0), 0);
    assert_int_equal(add_widening(b, "still", 1300, "+mode:still", NULL, 0), 0);
    assert_int_equal(add_widening(c, "widen", 1000, qc, &w, 1), 0);
    assert_int_equal(add_widening(d, "widen", 1300, "+mode:widen", NULL, 0), 0);
    E2E_WAIT(c->matched && d->matched, 10000);
    assert_true(in_group(c, d));
    e2e_pump_for(300); /* several more passes */
    assert_int_equal(a->matched + b->matched, 0);
    /* A bad rule is refused with its reason. */
    kaos_matchmaker_widen bad = {"skill", -1, 400}, none = {"rank", 50, 400};
    assert_int_equal(add_widening(a, "x", 1, q, &bad, 1), 3);
    assert_string_equal(a->e->error_message,
                        "widen \"skill\": step must be a finite number above 0");
    assert_int_equal(add_widening(a, "x", 1, q, &none, 1), 3);
    assert_non_null(strstr(a->e->error_message, "the query has no + or optional comparison"));
    drop(a);
    drop(b);
    drop(c);
    drop(d);
}

/* kaos.matchmaker_add from an RPC: the ticket is the calling session's. */
static void a_script_adds_a_ticket_for_the_calling_session(void **state)
{
    (void)state;
    player *a = join_pool(), *b = join_pool();
    /* 50 apart: their windows (+-10) meet once they widened (20 a pass). */
    assert_true(kaos_client_rpc_call(a->e->c, "mm_script_add", "100", e2e_on_rpc, a->e) > 0);
    E2E_WAIT(a->e->rpcs == 1 || a->e->errors, 10000);
    char ticket_a[40];
    snprintf(ticket_a, sizeof ticket_a, "%.36s", a->e->rpc_payload);
    assert_int_equal(strlen(ticket_a), 36);
    assert_true(kaos_client_rpc_call(b->e->c, "mm_script_add", "150", e2e_on_rpc, b->e) > 0);
    E2E_WAIT(b->e->rpcs == 1 || b->e->errors, 10000);
    E2E_WAIT(a->matched && b->matched, 10000);
    assert_string_equal(a->m_ticket, ticket_a);
    assert_string_equal(b->m_ticket, b->e->rpc_payload);
    assert_true(in_group(a, b));
    /* The service's refusal reaches the client with its code and text. */
    assert_true(kaos_client_rpc_call(a->e->c, "mm_script_add", "bad", e2e_on_rpc, a->e) > 0);
    E2E_WAIT(a->e->errors == 1, 10000);
    assert_int_equal(a->e->error_code, 3);
    assert_non_null(strstr(a->e->error_message, "widen \"rank\""));
    drop(a);
    drop(b);
}

static void refusals_name_their_reason(void **state)
{
    (void)state;
    player *a = join_pool();
    assert_int_equal(add(a, "eu", "x", 1, "+region:eu skill>3", 2, 2, 1), 3);
    assert_non_null(strstr(a->e->error_message, "at position 11"));
    assert_int_equal(add(a, "eu", "x", 1, "*", 1, 2, 1), 3);
    assert_int_equal(add(a, "eu", "x", 1, "+refuse:me", 2, 2, 1), 7); /* the before hook */
    assert_int_equal(add(a, "eu", "x", 1, "*", 2, 3, 2), 0);
    assert_int_equal(add(a, "eu", "x", 1, "*", 2, 3, 2), 0);
    char first[40];
    snprintf(first, sizeof first, "%s", a->ticket);
    assert_int_equal(add(a, "eu", "x", 1, "*", 2, 3, 2), 0);
    assert_int_equal(add(a, "eu", "x", 1, "*", 2, 3, 2), 8); /* RESOURCE_EXHAUSTED */
    assert_non_null(strstr(a->e->error_message, "ticket limit per session"));
    assert_int_equal(
        E2E_ACKED(a->e, kaos_client_matchmaker_remove(a->e->c, first, e2e_on_done, a->e)), 0);
    assert_int_equal(
        E2E_ACKED(a->e, kaos_client_matchmaker_remove(a->e->c, first, e2e_on_done, a->e)), 5);
    assert_string_equal(a->e->error_message, "ticket not found");
    drop(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_players_meet_in_a_relayed_match_by_token),
        cmocka_unit_test(count_multiple_and_queries_shape_the_group),
        cmocka_unit_test(a_ticket_dies_with_its_session),
        cmocka_unit_test(the_matched_hook_puts_the_group_in_one_authoritative_match),
        cmocka_unit_test(a_failing_matched_hook_falls_back_to_a_relayed_match),
        cmocka_unit_test(a_processor_script_forms_the_groups),
        cmocka_unit_test(an_override_script_vetoes_groups_and_a_failing_one_falls_back),
        cmocka_unit_test(a_ticket_that_widens_its_window_is_matched_and_one_that_does_not_waits),
        cmocka_unit_test(a_script_adds_a_ticket_for_the_calling_session),
        cmocka_unit_test(refusals_name_their_reason),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
