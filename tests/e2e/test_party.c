/* End to end: parties over real UDP with SDK clients. An open party:
 * create, join (the party with both members; a presence event to the
 * leader), party data both ways on the reliable and the unreliable
 * channel, promote (PartyLeader to both), leave (a leave event). A closed
 * party: a join is a request the leader hears of and lists, others may not
 * accept it, the leader accepts (the joiner learns the members and the
 * leader) or rejects one; close (PartyClose to every member). A leader's
 * session ending hands the party over. Nothing assumes one network
 * thread. */
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
    int rc = e2e_group_setup(state);
    if (rc) return rc;
    e2e_server_init(&srv);
    const char *extra[] = {"--matchmaker-interval-ms", "50", NULL};
    e2e_server_start(&srv, extra);
    return 0;
}

static int teardown(void **state)
{
    int status = e2e_server_stop(&srv);
    e2e_server_cleanup(&srv);
    int rc = e2e_group_teardown(state);
    return status ? -1 : rc;
}

/* What one member saw of its parties. */
typedef struct member {
    e2e_client *e;
    int parties, pending;
    char party_id[40], leader[40];
    size_t members;
    int presence_events, joins, leaves;
    char last_join[40], last_leave[40];
    int data;
    int64_t data_op;
    char data_text[64], data_sender[40];
    bool data_reliable;
    int leaders;
    char new_leader[40];
    int requests_events;
    char requester[40], requester_session[40];
    int request_lists;
    size_t request_count;
    int closes;
    /* listing */
    int lists;
    size_t listed;
    char listed_first[40], listed_label[64];
    /* matchmaking */
    int tickets, ticket_events, matched;
    char ticket[40];
    char m_self_party[40], m_token[200];
    size_t m_users, m_in_party; /* users, and those with this party's id */
} member;

static void on_party(kaos_client *k, const kaos_result *r, const kaos_party *p, void *ud)
{
    member *m = ud;
    if (r->code < 0) {
        e2e_on_done(k, r, m->e); /* records the error */
        return;
    }
    if (!p) {
        m->pending++;
        return;
    }
    snprintf(m->party_id, sizeof m->party_id, "%s", p->party_id);
    snprintf(m->leader, sizeof m->leader, "%s", p->leader.user_id);
    m->members = p->presence_count;
    assert_string_equal(p->self.user_id, m->e->user_id);
    m->parties++;
}

static void on_requests(kaos_client *k, const kaos_result *r, const kaos_user_presence *list,
                        size_t n, void *ud)
{
    member *m = ud;
    if (r->code < 0) {
        e2e_on_done(k, r, m->e);
        return;
    }
    (void)list;
    m->request_count = n;
    m->request_lists++;
}

static void on_list(kaos_client *k, const kaos_result *r, const kaos_party *parties, size_t n,
                    void *ud)
{
    member *m = ud;
    if (r->code < 0) {
        e2e_on_done(k, r, m->e);
        return;
    }
    m->listed = n;
    snprintf(m->listed_first, sizeof m->listed_first, "%s", n ? parties[0].party_id : "");
    snprintf(m->listed_label, sizeof m->listed_label, "%s", n ? parties[0].label : "");
    m->lists++;
}

static void on_presence(kaos_client *k, const char *party_id, const kaos_user_presence *joins,
                        size_t nj, const kaos_user_presence *leaves, size_t nl, void *ud)
{
    (void)k, (void)party_id;
    member *m = ud;
    m->presence_events++;
    m->joins += (int)nj;
    m->leaves += (int)nl;
    if (nj) snprintf(m->last_join, sizeof m->last_join, "%s", joins[nj - 1].user_id);
    if (nl) snprintf(m->last_leave, sizeof m->last_leave, "%s", leaves[nl - 1].user_id);
}

static void on_data(kaos_client *k, const char *party_id, const kaos_user_presence *sender,
                    int64_t op, const uint8_t *data, size_t len, bool reliable, void *ud)
{
    (void)k, (void)party_id;
    member *m = ud;
    m->data_op = op;
    snprintf(m->data_text, sizeof m->data_text, "%.*s", (int)len, (const char *)data);
    snprintf(m->data_sender, sizeof m->data_sender, "%s", sender->user_id);
    m->data_reliable = reliable;
    m->data++;
}

static void on_leader(kaos_client *k, const char *party_id, const kaos_user_presence *leader,
                      void *ud)
{
    (void)k, (void)party_id;
    member *m = ud;
    snprintf(m->new_leader, sizeof m->new_leader, "%s", leader->user_id);
    m->leaders++;
}

static void on_join_request(kaos_client *k, const char *party_id, const kaos_user_presence *reqs,
                            size_t n, void *ud)
{
    (void)k, (void)party_id;
    member *m = ud;
    if (n) {
        snprintf(m->requester, sizeof m->requester, "%s", reqs[0].user_id);
        snprintf(m->requester_session, sizeof m->requester_session, "%s", reqs[0].session_id);
    }
    m->requests_events++;
}

static void on_close(kaos_client *k, const char *party_id, void *ud)
{
    (void)k, (void)party_id;
    member *m = ud;
    m->closes++;
}

static void on_ticket(kaos_client *k, const kaos_result *r, const char *ticket, void *ud)
{
    member *m = ud;
    if (r->code < 0) {
        e2e_on_done(k, r, m->e);
        return;
    }
    snprintf(m->ticket, sizeof m->ticket, "%s", ticket);
    m->tickets++;
}

static void on_party_ticket(kaos_client *k, const char *party_id, const char *ticket, void *ud)
{
    (void)k, (void)party_id;
    member *m = ud;
    snprintf(m->ticket, sizeof m->ticket, "%s", ticket);
    m->ticket_events++;
}

static void on_matched(kaos_client *k, const kaos_matchmaker_matched *mm, void *ud)
{
    (void)k;
    member *m = ud;
    m->m_users = mm->n_users;
    snprintf(m->m_self_party, sizeof m->m_self_party, "%s", mm->self ? mm->self->party_id : "?");
    snprintf(m->m_token, sizeof m->m_token, "%s", mm->token);
    m->m_in_party = 0;
    for (size_t i = 0; i < mm->n_users; i++)
        if (*m->party_id && !strcmp(mm->users[i].party_id, m->party_id)) m->m_in_party++;
    m->matched++;
}

static member *player(void)
{
    member *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->e = e2e_player(srv.port, 0);
    kaos_client_on_party_presence(m->e->c, on_presence, m);
    kaos_client_on_party_data(m->e->c, on_data, m);
    kaos_client_on_party_leader(m->e->c, on_leader, m);
    kaos_client_on_party_join_request(m->e->c, on_join_request, m);
    kaos_client_on_party_close(m->e->c, on_close, m);
    kaos_client_on_party_ticket(m->e->c, on_party_ticket, m);
    kaos_client_on_matchmaker_matched(m->e->c, on_matched, m);
    return m;
}

static void drop(member *m)
{
    if (m->e) e2e_client_free(m->e);
    free(m);
}

/* m creates a party and waits for it. */
static void create(member *m, bool open, uint32_t max)
{
    kaos_party_config cfg = {.open = open, .max_size = max, .label = "e2e"};
    int cid = kaos_client_party_create(m->e->c, &cfg, on_party, m);
    assert_int_equal(e2e_answer(m->e, &m->parties, m->parties, m->e->errors, cid), 0);
}

/* m joins party_id: 0 or the error's code; *pending tells a request. */
static int join(member *m, const char *party_id)
{
    int before = m->parties + m->pending;
    int cid = kaos_client_party_join(m->e->c, party_id, on_party, m);
    assert_true(cid > 0);
    E2E_WAIT(m->parties + m->pending > before || m->e->error_cid == (uint32_t)cid, 15000);
    return m->parties + m->pending > before ? 0 : m->e->error_code;
}

static void open_parties_are_listed_by_label_query(void **state)
{
    (void)state;
    member *a = player(), *b = player(), *c = player();
    kaos_party_config cfg = {.open = true, .max_size = 3, .label = "{\"mode\":\"e2e-list\"}"};
    int cid = kaos_client_party_create(a->e->c, &cfg, on_party, a);
    assert_int_equal(e2e_answer(a->e, &a->parties, a->parties, a->e->errors, cid), 0);
    cfg.hidden = true; /* not listed */
    cid = kaos_client_party_create(b->e->c, &cfg, on_party, b);
    assert_int_equal(e2e_answer(b->e, &b->parties, b->parties, b->e->errors, cid), 0);
    cid = kaos_client_party_list(c->e->c, "+label.mode:e2e-list", 0, on_list, c);
    assert_int_equal(e2e_answer(c->e, &c->lists, c->lists, c->e->errors, cid), 0);
    assert_int_equal(c->listed, 1);
    assert_string_equal(c->listed_first, a->party_id);
    assert_string_equal(c->listed_label, "{\"mode\":\"e2e-list\"}");
    /* A bad query names its position. */
    cid = kaos_client_party_list(c->e->c, "+mode", 0, on_list, c);
    assert_int_equal(e2e_answer(c->e, &c->lists, c->lists, c->e->errors, cid), 3);
    drop(a);
    drop(b);
    drop(c);
}

static void an_open_party_joins_sends_promotes_and_leaves(void **state)
{
    (void)state;
    member *a = player(), *b = player();
    create(a, true, 4);
    assert_string_equal(a->leader, a->e->user_id);
    assert_int_equal(a->members, 1);

    assert_int_equal(join(b, a->party_id), 0);
    assert_string_equal(b->party_id, a->party_id);
    assert_int_equal(b->members, 2);
    assert_string_equal(b->leader, a->e->user_id);
    E2E_WAIT(a->joins == 1, 10000);
    assert_string_equal(a->last_join, b->e->user_id);

    /* Party data, reliable and not. */
    assert_int_equal(kaos_client_party_send(a->e->c, a->party_id, 7, "hello", 5, true), KAOS_OK);
    E2E_WAIT(b->data == 1, 10000);
    assert_int_equal(b->data_op, 7);
    assert_string_equal(b->data_text, "hello");
    assert_string_equal(b->data_sender, a->e->user_id);
    assert_true(b->data_reliable);
    assert_int_equal(kaos_client_party_send(b->e->c, a->party_id, 8, "fast", 4, false), KAOS_OK);
    E2E_WAIT(a->data >= 1, 10000); /* unreliable, but loopback does not lose it */
    assert_string_equal(a->data_text, "fast");
    assert_false(a->data_reliable);
    assert_int_equal(a->data, 1); /* never its own */

    /* b may not promote; a promotes b and both hear. */
    assert_int_equal(
        E2E_ACKED(b->e, kaos_client_party_promote(b->e->c, a->party_id, b->e->user_id,
                                                  b->e->session_id, e2e_on_done, b->e)),
        7);
    assert_string_equal(b->e->error_message, "only the party leader may promote members");
    assert_int_equal(
        E2E_ACKED(a->e, kaos_client_party_promote(a->e->c, a->party_id, b->e->user_id,
                                                  b->e->session_id, e2e_on_done, a->e)),
        0);
    E2E_WAIT(a->leaders == 1 && b->leaders == 1, 10000);
    assert_string_equal(a->new_leader, b->e->user_id);

    /* a leaves: b hears; b leaves: the party is gone. */
    assert_int_equal(
        E2E_ACKED(a->e, kaos_client_party_leave(a->e->c, a->party_id, e2e_on_done, a->e)), 0);
    E2E_WAIT(b->leaves == 1, 10000);
    assert_string_equal(b->last_leave, a->e->user_id);
    assert_int_equal(
        E2E_ACKED(b->e, kaos_client_party_leave(b->e->c, a->party_id, e2e_on_done, b->e)), 0);
    assert_int_equal(join(a, b->party_id), 5);
    assert_string_equal(a->e->error_message, "party not found");
    drop(a);
    drop(b);
}

static void a_closed_party_takes_requests_the_leader_accepts_or_rejects(void **state)
{
    (void)state;
    member *a = player(), *b = player(), *c = player();
    create(a, false, 3);

    assert_int_equal(join(b, a->party_id), 0);
    assert_int_equal(b->pending, 1);
    E2E_WAIT(a->requests_events == 1, 10000);
    assert_string_equal(a->requester, b->e->user_id);
    int cid = kaos_client_party_join_requests(a->e->c, a->party_id, on_requests, a);
    assert_int_equal(e2e_answer(a->e, &a->request_lists, a->request_lists, a->e->errors, cid), 0);
    assert_int_equal(a->request_count, 1);

    /* Only the leader accepts. */
    assert_int_equal(join(c, a->party_id), 0);
    E2E_WAIT(a->requests_events == 2, 10000);
    assert_int_equal(E2E_ACKED(c->e, kaos_client_party_accept(c->e->c, a->party_id, b->e->user_id,
                                                              b->e->session_id, e2e_on_done, c->e)),
                     5); /* not a member: not found */
    assert_int_equal(E2E_ACKED(a->e, kaos_client_party_accept(a->e->c, a->party_id, b->e->user_id,
                                                              b->e->session_id, e2e_on_done, a->e)),
                     0);
    /* b learns the members and the leader; a hears of b. */
    E2E_WAIT(b->joins == 2 && b->leaders == 1, 10000);
    assert_string_equal(b->new_leader, a->e->user_id);
    E2E_WAIT(a->joins == 1, 10000);
    /* b may not accept c; a rejects c, who hears it. */
    assert_int_equal(E2E_ACKED(b->e, kaos_client_party_accept(b->e->c, a->party_id, c->e->user_id,
                                                              c->e->session_id, e2e_on_done, b->e)),
                     7);
    assert_int_equal(E2E_ACKED(a->e, kaos_client_party_remove(a->e->c, a->party_id, c->e->user_id,
                                                              c->e->session_id, e2e_on_done, a->e)),
                     0);
    E2E_WAIT(c->leaves == 1, 10000);
    assert_string_equal(c->last_leave, c->e->user_id);

    /* b may not close; a closes and both hear. */
    assert_int_equal(
        E2E_ACKED(b->e, kaos_client_party_close(b->e->c, a->party_id, e2e_on_done, b->e)), 7);
    assert_int_equal(
        E2E_ACKED(a->e, kaos_client_party_close(a->e->c, a->party_id, e2e_on_done, a->e)), 0);
    E2E_WAIT(a->closes == 1 && b->closes == 1, 10000);
    assert_int_equal(join(c, a->party_id), 5);
    drop(a);
    drop(b);
    drop(c);
}

static void a_leaders_session_ending_hands_the_party_over(void **state)
{
    (void)state;
    member *a = player(), *b = player();
    create(a, true, 2);
    assert_int_equal(join(b, a->party_id), 0);
    e2e_client_free(a->e); /* disconnects: its session ends */
    a->e = NULL;
    E2E_WAIT(b->leaders == 1 && b->leaves == 1, 15000);
    assert_string_equal(b->new_leader, b->e->user_id);
    /* b leads now: it may close. */
    assert_int_equal(
        E2E_ACKED(b->e, kaos_client_party_close(b->e->c, b->party_id, e2e_on_done, b->e)), 0);
    drop(a);
    drop(b);
}

/* The leader's ticket for its party: 0 or the error's code. */
static int party_ticket(member *m, const char *party_id, int count)
{
    const char *names[] = {"mode"}, *values[] = {"party-e2e"};
    kaos_matchmaker_request req = {.min_count = count,
                                   .max_count = count,
                                   .query = "+properties.mode:party-e2e",
                                   .properties = {names, values, 1, NULL, NULL, 0}};
    int cid = kaos_client_party_matchmaker_add(m->e->c, party_id, &req, on_ticket, m);
    return e2e_answer(m->e, &m->tickets, m->tickets, m->e->errors, cid);
}

static void a_party_of_two_and_a_solo_player_are_matched_together(void **state)
{
    (void)state;
    member *a = player(), *b = player(), *c = player();
    create(a, true, 4);
    assert_int_equal(join(b, a->party_id), 0);
    E2E_WAIT(a->joins == 1, 10000);
    /* Only the leader queues the party. */
    assert_int_equal(party_ticket(b, a->party_id, 3), 7);
    assert_string_equal(b->e->error_message, "only the party leader may add matchmaker tickets");
    assert_int_equal(party_ticket(a, a->party_id, 3), 0);
    E2E_WAIT(b->ticket_events == 1, 10000);
    assert_string_equal(b->ticket, a->ticket);
    /* A solo player whose ticket wants three. */
    const char *names[] = {"mode"}, *values[] = {"party-e2e"};
    kaos_matchmaker_request req = {.min_count = 3,
                                   .max_count = 3,
                                   .query = "+properties.mode:party-e2e",
                                   .properties = {names, values, 1, NULL, NULL, 0}};
    int cid = kaos_client_matchmaker_add(c->e->c, &req, on_ticket, c);
    assert_int_equal(e2e_answer(c->e, &c->tickets, c->tickets, c->e->errors, cid), 0);
    E2E_WAIT(a->matched && b->matched && c->matched, 15000);
    assert_int_equal(a->m_users, 3);
    assert_int_equal(c->m_users, 3);
    /* Both members carry the party's id, together; the solo player none. */
    assert_string_equal(a->m_self_party, a->party_id);
    assert_string_equal(b->m_self_party, a->party_id);
    assert_string_equal(c->m_self_party, "");
    assert_int_equal(a->m_in_party, 2);
    assert_int_equal(b->m_in_party, 2);
    assert_string_equal(a->m_token, c->m_token);
    drop(a);
    drop(b);
    drop(c);
}

static void a_partys_ticket_goes_when_its_members_change(void **state)
{
    (void)state;
    member *a = player(), *b = player();
    create(a, true, 4);
    assert_int_equal(join(b, a->party_id), 0);
    assert_int_equal(party_ticket(a, a->party_id, 8), 0); /* nobody else: it waits */
    assert_int_equal(
        E2E_ACKED(b->e, kaos_client_party_leave(b->e->c, a->party_id, e2e_on_done, b->e)), 0);
    assert_int_equal(E2E_ACKED(a->e, kaos_client_party_matchmaker_remove(
                                         a->e->c, a->party_id, a->ticket, e2e_on_done, a->e)),
                     5);
    assert_string_equal(a->e->error_message, "ticket not found");
    /* A fresh ticket is the leader's to remove. */
    assert_int_equal(party_ticket(a, a->party_id, 8), 0);
    assert_int_equal(E2E_ACKED(a->e, kaos_client_party_matchmaker_remove(
                                         a->e->c, a->party_id, a->ticket, e2e_on_done, a->e)),
                     0);
    drop(a);
    drop(b);
}

static void a_partys_tickets_are_capped_apart_from_its_leaders_own(void **state)
{
    (void)state;
    member *a = player(), *b = player();
    create(a, true, 4);
    assert_int_equal(join(b, a->party_id), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(party_ticket(a, a->party_id, 8), 0); /* nobody else: they wait */
    assert_int_equal(party_ticket(a, a->party_id, 8), 8);
    assert_string_equal(a->e->error_message, "matchmaker ticket limit per party reached (3)");
    /* The party's tickets are not the leader's: its own three still fit. */
    kaos_matchmaker_request req = {.min_count = 2, .max_count = 2, .query = "+mode:nobody"};
    for (int i = 0; i < 4; i++) {
        int cid = kaos_client_matchmaker_add(a->e->c, &req, on_ticket, a);
        assert_int_equal(e2e_answer(a->e, &a->tickets, a->tickets, a->e->errors, cid),
                         i < 3 ? 0 : 8);
    }
    assert_string_equal(a->e->error_message, "matchmaker ticket limit per session reached (3)");
    drop(a);
    drop(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_open_party_joins_sends_promotes_and_leaves),
        cmocka_unit_test(a_closed_party_takes_requests_the_leader_accepts_or_rejects),
        cmocka_unit_test(a_leaders_session_ending_hands_the_party_over),
        cmocka_unit_test(a_party_of_two_and_a_solo_player_are_matched_together),
        cmocka_unit_test(a_partys_ticket_goes_when_its_members_change),
        cmocka_unit_test(a_partys_tickets_are_capped_apart_from_its_leaders_own),
        cmocka_unit_test(open_parties_are_listed_by_label_query),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
