/* End to end: leaderboards over real UDP with SDK clients — writes with
 * ranks, pages with cursors, the friends view, around an owner, deleting
 * your own record, an authoritative board refusing clients, a before hook
 * on LeaderboardRecordWrite, the kaos.leaderboard_* functions through an
 * RPC (tests/e2e/lua/leaderboard_test.lua), and eight clients writing at
 * once ending with exact ranks. Tournaments: the list, a required join
 * before writes, max size and max num score refused with their codes and
 * messages, records and around-owner, a before hook on
 * TournamentRecordWrite, the end fired by the server's scheduler (the
 * script's end callback and a live notification with the final rank to
 * every participant), the console's tournament pages and the
 * kaos.tournament_* functions (tests/e2e/lua/tournament_test.lua).
 * Nothing assumes one network thread: CI runs this file again with
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

/* A player and the last leaderboard answer it got. */
typedef struct player {
    e2e_client *e;
    int answers; /* replies (not Acks, not errors) */
    int64_t score, rank, rank_count;
    size_t count, owner_count;
    char owners[16][40];
    int64_t ranks[16], scores[16];
    char owner_of_owner_records[4][40];
    int64_t owner_ranks[4];
    char cursor[256], prev_cursor[256];
    /* tournaments: the last list's first one, the end notifications seen */
    size_t tournaments;
    char first_id[130];
    bool first_join_required;
    int first_max_size, first_category;
    int notes;
    char note_content[512];
    char note_subject[64];
} player;

static player *join_server(void)
{
    player *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->e = e2e_player(e2e_group_server.port, 0);
    return p;
}

static void leave_server(player *p)
{
    e2e_client_free(p->e);
    free(p);
}

/* An error goes to the e2e_client (e2e_on_done records it), a reply counts. */
static bool failed(player *p, const kaos_result *r)
{
    if (r->code) {
        e2e_on_done(p->e->c, r, p->e);
        return true;
    }
    p->answers++;
    return false;
}

static void on_record(kaos_client *k, const kaos_result *r, const kaos_leaderboard_record *rec,
                      void *ud)
{
    (void)k;
    player *p = ud;
    if (failed(p, r)) return;
    p->score = rec->score;
    p->rank = rec->rank;
}

static void on_records(kaos_client *k, const kaos_result *r, const kaos_leaderboard_record *recs,
                       size_t n, const kaos_leaderboard_record *owners, size_t n_owners,
                       const char *cursor, const char *prev_cursor, int64_t rank_count, void *ud)
{
    (void)k;
    player *p = ud;
    if (failed(p, r)) return;
    p->count = n;
    for (size_t i = 0; i < n && i < 16; i++) {
        snprintf(p->owners[i], sizeof p->owners[0], "%s", recs[i].owner_id);
        p->ranks[i] = recs[i].rank;
        p->scores[i] = recs[i].score;
    }
    p->owner_count = n_owners;
    for (size_t i = 0; i < n_owners && i < 4; i++) {
        snprintf(p->owner_of_owner_records[i], 40, "%s", owners[i].owner_id);
        p->owner_ranks[i] = owners[i].rank;
    }
    snprintf(p->cursor, sizeof p->cursor, "%s", cursor);
    snprintf(p->prev_cursor, sizeof p->prev_cursor, "%s", prev_cursor);
    p->rank_count = rank_count;
}

static void on_tournaments(kaos_client *k, const kaos_result *r, const kaos_tournament *ts,
                           size_t n, const char *cursor, void *ud)
{
    (void)k, (void)cursor;
    player *p = ud;
    if (failed(p, r)) return;
    p->tournaments = n;
    if (n) {
        snprintf(p->first_id, sizeof p->first_id, "%s", ts[0].id);
        p->first_join_required = ts[0].join_required;
        p->first_max_size = ts[0].max_size;
        p->first_category = ts[0].category;
    }
}

static void on_notes(kaos_client *k, const kaos_notification *notes, size_t n, void *ud)
{
    (void)k;
    player *p = ud;
    for (size_t i = 0; i < n; i++)
        if (notes[i].code == -20) {
            snprintf(p->note_content, sizeof p->note_content, "%s", notes[i].content);
            snprintf(p->note_subject, sizeof p->note_subject, "%s", notes[i].subject);
            p->notes++;
        }
}

/* 0 or the error's code of a request answered with a reply, or an Ack. */
#define ANSWER(p, call) e2e_answer((p)->e, &(p)->answers, (p)->answers, (p)->e->errors, (call))
#define ACKED(p, call)  E2E_ACKED((p)->e, (call))

static int write_score(player *p, const char *board, int64_t score, int op)
{
    return ANSWER(
        p, kaos_client_leaderboard_record_write(p->e->c, board, score, 0, NULL, op, on_record, p));
}

static void writes_rank_and_lists_page_with_cursors_and_views(void **state)
{
    (void)state;
    char board[] = "e2e_incr"; /* ascending, increment */
    player *a = join_server(), *b = join_server(), *c = join_server();
    assert_int_equal(write_score(a, board, 10, 0), 0);
    assert_int_equal(a->rank, 1);
    assert_int_equal(write_score(b, board, -5, 0), 0);
    assert_int_equal(b->rank, 1); /* ascending: -5 before 10 */
    assert_int_equal(write_score(c, board, 3, 0), 0);
    assert_int_equal(c->rank, 2);
    assert_int_equal(write_score(a, board, -20, 0), 0); /* 10 - 20 */
    assert_int_equal(a->score, -10);
    assert_int_equal(a->rank, 1);
    assert_int_equal(write_score(c, board, 100, KAOS_LEADERBOARD_OP_SET), 0); /* override */
    assert_int_equal(c->score, 100);
    assert_int_equal(c->rank, 3);

    /* Pages of two, then the rest through the cursor. */
    assert_int_equal(ANSWER(a, kaos_client_leaderboard_records_list(a->e->c, board, NULL, 0, 2,
                                                                    NULL, 0, on_records, a)),
                     0);
    assert_int_equal(a->count, 2);
    assert_string_equal(a->owners[0], a->e->user_id);
    assert_string_equal(a->owners[1], b->e->user_id);
    assert_int_equal(a->rank_count, 3);
    assert_string_not_equal(a->cursor, "");
    char cursor[256];
    snprintf(cursor, sizeof cursor, "%s", a->cursor);
    assert_int_equal(ANSWER(a, kaos_client_leaderboard_records_list(a->e->c, board, NULL, 0, 2,
                                                                    cursor, 0, on_records, a)),
                     0);
    assert_int_equal(a->count, 1);
    assert_int_equal(a->ranks[0], 3);
    assert_string_equal(a->cursor, "");
    assert_string_not_equal(a->prev_cursor, "");
    /* and back: the page before the last one is the first */
    snprintf(cursor, sizeof cursor, "%s", a->prev_cursor);
    assert_int_equal(ANSWER(a, kaos_client_leaderboard_records_list(a->e->c, board, NULL, 0, 2,
                                                                    cursor, 0, on_records, a)),
                     0);
    assert_int_equal(a->count, 2);
    assert_int_equal(a->ranks[0], 1);
    assert_string_equal(a->prev_cursor, "");
    assert_string_not_equal(a->cursor, "");

    /* The friends view: only the owners asked for. */
    const char *ids[] = {c->e->user_id, b->e->user_id};
    assert_int_equal(ANSWER(a, kaos_client_leaderboard_records_list(a->e->c, board, ids, 2, 0, NULL,
                                                                    0, on_records, a)),
                     0);
    assert_int_equal(a->count, 0);
    assert_int_equal(a->owner_count, 2);
    assert_string_equal(a->owner_of_owner_records[0], b->e->user_id);
    assert_int_equal(a->owner_ranks[1], 3);

    /* Around c (the last): the page ends at the bottom. */
    assert_int_equal(
        ANSWER(c, kaos_client_leaderboard_records_around(c->e->c, board, NULL, 2, on_records, c)),
        0);
    assert_int_equal(c->count, 2);
    assert_int_equal(c->ranks[0], 2);
    assert_string_equal(c->owners[1], c->e->user_id);

    /* Deleting your own record moves the others up. */
    assert_int_equal(
        ACKED(a, kaos_client_leaderboard_record_delete(a->e->c, board, e2e_on_done, a->e)), 0);
    assert_int_equal(
        ACKED(a, kaos_client_leaderboard_record_delete(a->e->c, board, e2e_on_done, a->e)),
        -KAOS_ERR_NOT_FOUND);
    assert_int_equal(
        ANSWER(c, kaos_client_leaderboard_records_around(c->e->c, board, NULL, 1, on_records, c)),
        0);
    assert_int_equal(c->ranks[0], 2);
    leave_server(a);
    leave_server(b);
    leave_server(c);
}

static void refusals_reach_the_client_with_their_codes_and_messages(void **state)
{
    (void)state;
    player *a = join_server();
    assert_int_equal(write_score(a, "e2e_server_only", 1, 0), -KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(
        a->e->error_message,
        "leaderboard e2e_server_only is authoritative: only the server writes to it");
    assert_int_equal(write_score(a, "nope", 1, 0), -KAOS_ERR_NOT_FOUND);
    assert_string_equal(a->e->error_message, "leaderboard nope does not exist");
    assert_int_equal(write_score(a, "e2e_desc", 2000000, 0), -KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->e->error_message, "scores over a million are not believed");
    assert_int_equal(ANSWER(a, kaos_client_leaderboard_records_list(a->e->c, "e2e_desc", NULL, 0,
                                                                    1001, NULL, 0, on_records, a)),
                     -KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(ANSWER(a, kaos_client_leaderboard_records_list(a->e->c, "e2e_desc", NULL, 0, 5,
                                                                    "lb1:bogus", 0, on_records, a)),
                     -KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->e->error_message, "cursor is malformed");
    assert_int_equal(
        kaos_client_leaderboard_record_write(a->e->c, "e2e_desc", 1, 0, NULL, 9, on_record, a),
        KAOS_ERR_INVALID_ARGUMENT);
    leave_server(a);
}

static void the_lua_functions_work_through_an_rpc(void **state)
{
    (void)state;
    player *p = join_server();
    e2e_client *a = p->e;
    int before = a->rpcs;
    assert_true(kaos_client_rpc_call(a->c, "leaderboard_lua", "", e2e_on_rpc, a) > 0);
    E2E_WAIT(a->rpcs > before || a->errors > 0, 15000);
    assert_int_equal(a->errors, 0);
    const char *expect[] = {"\"submitted\":true",
                            "\"override\":true",
                            "\"listed\":true",
                            "\"around\":true",
                            "\"board\":true",
                            "\"bad_sort\":\"3 sort order must be \\\"asc\\\" or \\\"desc\\\", not "
                            "\\\"sideways\\\"\"",
                            "\"missing\":\"5 leaderboard no such board does not exist\"",
                            "\"deleted\":\"ok\"",
                            "\"again\":\"5 no record of"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        if (!strstr(a->rpc_payload, expect[i])) fail_msg("%s not in %s", expect[i], a->rpc_payload);
    leave_server(p);
}

static void eight_clients_writing_at_once_end_with_exact_ranks(void **state)
{
    (void)state;
    enum { N = 8 };
    player *ps[N];
    for (int i = 0; i < N; i++)
        ps[i] = join_server();
    /* Everyone sends five writes without waiting; best keeps the highest. */
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < N; i++)
            assert_true(kaos_client_leaderboard_record_write(ps[i]->e->c, "e2e_desc",
                                                             i * 100 + round * 7, 0, NULL, 0,
                                                             on_record, ps[i]) > 0);
    for (int i = 0; i < N; i++)
        E2E_WAIT(ps[i]->answers >= 5 || ps[i]->e->errors > 0, 15000);
    for (int i = 0; i < N; i++)
        assert_int_equal(ps[i]->e->errors, 0);
    assert_int_equal(
        ANSWER(ps[0], kaos_client_leaderboard_records_list(ps[0]->e->c, "e2e_desc", NULL, 0, 16,
                                                           NULL, 0, on_records, ps[0])),
        0);
    assert_true(ps[0]->count >= N);
    for (size_t i = 0; i < ps[0]->count; i++) {
        assert_int_equal(ps[0]->ranks[i], (int64_t)i + 1);
        if (i) assert_true(ps[0]->scores[i - 1] >= ps[0]->scores[i]);
    }
    /* Our eight hold the top (the other tests wrote less), best of five each. */
    for (int i = 0; i < N; i++) {
        assert_string_equal(ps[0]->owners[i], ps[N - 1 - i]->e->user_id);
        assert_int_equal(ps[0]->scores[i], (N - 1 - i) * 100 + 28);
    }
    for (int i = 0; i < N; i++)
        leave_server(ps[i]);

    /* /metrics counts the boards and the bytes of their indexes */
    static char out[32768];
    assert_int_equal(
        e2e_http(e2e_group_server.http_port, "GET", "/metrics", NULL, NULL, out, sizeof out), 200);
    const char *boards = strstr(out, "\nkaos_leaderboards ");
    const char *bytes = strstr(out, "\nkaos_leaderboard_index_bytes ");
    assert_non_null(boards);
    assert_non_null(bytes);
    assert_true(atoll(boards + strlen("\nkaos_leaderboards ")) >= 3);
    assert_true(atoll(bytes + strlen("\nkaos_leaderboard_index_bytes ")) > 8 * 64);
}

/* --- tournaments ------------------------------------------------------------------ */

static int tournament_write(player *p, const char *id, int64_t score)
{
    return ANSWER(
        p, kaos_client_tournament_record_write(p->e->c, id, score, 0, NULL, 0, on_record, p));
}

static int join(player *p, const char *id)
{
    return ACKED(p, kaos_client_tournament_join(p->e->c, id, e2e_on_done, p->e));
}

static void a_required_join_a_full_tournament_and_spent_tries_are_refused(void **state)
{
    (void)state;
    const char *cup = "e2e_cup"; /* join required, 3 seats, 2 tries, category 7 */
    player *ps[4];
    for (int i = 0; i < 4; i++)
        ps[i] = join_server();
    player *a = ps[0];
    assert_int_equal(
        ANSWER(a, kaos_client_tournament_list(a->e->c, 7, 7, 0, 0, 10, NULL, on_tournaments, a)),
        0);
    assert_int_equal(a->tournaments, 1);
    assert_string_equal(a->first_id, cup);
    assert_true(a->first_join_required);
    assert_int_equal(a->first_max_size, 3);
    assert_int_equal(a->first_category, 7);

    assert_int_equal(tournament_write(a, cup, 10), -KAOS_ERR_FAILED_PRECONDITION);
    assert_string_equal(a->e->error_message, "join tournament e2e_cup before writing to it");
    for (int i = 0; i < 3; i++)
        assert_int_equal(join(ps[i], cup), 0);
    assert_int_equal(join(ps[3], cup), -KAOS_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(ps[3]->e->error_message, "tournament e2e_cup is full: 3 of 3 have joined");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tournament_write(ps[i], cup, 100 * (i + 1)), 0);
        assert_int_equal(ps[i]->rank, 1); /* each beats the ones before */
    }
    assert_int_equal(tournament_write(a, cup, 50), 0); /* best: keeps 100, uses a try */
    assert_int_equal(a->score, 100);
    assert_int_equal(tournament_write(a, cup, 500), -KAOS_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(a->e->error_message, "no scores left in tournament e2e_cup: 2 of 2 used");

    assert_int_equal(ANSWER(a, kaos_client_tournament_records_list(a->e->c, cup, NULL, 0, 10, NULL,
                                                                   0, on_records, a)),
                     0);
    assert_int_equal(a->count, 3);
    assert_int_equal(a->rank_count, 3);
    assert_string_equal(a->owners[0], ps[2]->e->user_id);
    assert_string_equal(a->owners[2], a->e->user_id);
    assert_int_equal(
        ANSWER(a, kaos_client_tournament_records_around(a->e->c, cup, NULL, 2, on_records, a)), 0);
    assert_int_equal(a->count, 2);
    assert_int_equal(a->ranks[1], 3);
    assert_string_equal(a->owners[1], a->e->user_id);
    for (int i = 0; i < 4; i++)
        leave_server(ps[i]);
}

static void hooks_and_plain_leaderboard_calls_see_the_tournament_rules(void **state)
{
    (void)state;
    player *a = join_server();
    assert_int_equal(tournament_write(a, "e2e_open", 5000), -KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->e->error_message, "tournament scores over a thousand are not believed");
    assert_int_equal(tournament_write(a, "e2e_open", 5), 0); /* no join needed: joins */
    assert_int_equal(tournament_write(a, "e2e_open", 6), 0);
    assert_int_equal(a->score, 11); /* incr */
    assert_int_equal(ANSWER(a, kaos_client_leaderboard_record_write(a->e->c, "e2e_open", 1, 0, NULL,
                                                                    0, on_record, a)),
                     -KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->e->error_message,
                        "e2e_open is a tournament: write with tournament_record_write");
    assert_int_equal(
        ACKED(a, kaos_client_leaderboard_record_delete(a->e->c, "e2e_open", e2e_on_done, a->e)),
        -KAOS_ERR_PERMISSION_DENIED);
    assert_int_equal(tournament_write(a, "e2e_desc_nope", 1), -KAOS_ERR_NOT_FOUND);
    assert_string_equal(a->e->error_message, "tournament e2e_desc_nope does not exist");
    assert_int_equal(
        ANSWER(a, kaos_client_tournament_list(a->e->c, 0, 0, 0, 0, 10, "lb1:x", on_tournaments, a)),
        -KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->e->error_message, "cursor is not a tournament cursor");
    leave_server(a);
}

static void the_end_tells_every_participant_their_final_rank_and_runs_the_callback(void **state)
{
    (void)state;
    player *a = join_server(), *b = join_server();
    kaos_client_on_notifications(a->e->c, on_notes, a);
    kaos_client_on_notifications(b->e->c, on_notes, b);
    const char *id = "e2e_quick";
    int before = a->e->rpcs;
    assert_true(kaos_client_rpc_call(a->e->c, "tournament_quick", id, e2e_on_rpc, a->e) > 0);
    E2E_WAIT(a->e->rpcs > before || a->e->errors > 0, 15000);
    assert_int_equal(a->e->errors, 0);
    assert_int_equal(tournament_write(a, id, 30), 0); /* ascending: 20 first, 30 second */
    assert_int_equal(tournament_write(b, id, 20), 0);
    /* The scheduler wakes every second; the end is two seconds after creation. */
    E2E_WAIT(a->notes > 0 && b->notes > 0, 15000);
    assert_string_equal(a->note_subject, "tournament ended");
    assert_non_null(strstr(b->note_content, "\"rank\": 1"));
    assert_non_null(strstr(a->note_content, "\"rank\": 2"));
    assert_non_null(strstr(a->note_content, "\"tournament_id\": \"e2e_quick\""));
    assert_int_equal(tournament_write(a, id, 10), -KAOS_ERR_FAILED_PRECONDITION);
    assert_string_equal(a->e->error_message, "tournament e2e_quick has ended");
    /* The script's end callback left the tournament's size on a board. */
    const char *nobody[] = {"00000000-0000-4000-8000-00000000e2e0"};
    /* (the callback runs before the notifications are sent) */
    assert_int_equal(
        ANSWER(a, kaos_client_leaderboard_records_list(a->e->c, "e2e_tournament_ends", nobody, 1, 1,
                                                       NULL, 0, on_records, a)),
        0);
    assert_int_equal(a->count, 1);
    assert_int_equal(a->ranks[0], 1);
    leave_server(a);
    leave_server(b);
}

static void the_console_lists_tournaments_and_their_records(void **state)
{
    (void)state;
    static char out[65536];
    uint16_t port = e2e_group_server.console_port;
    assert_int_equal(
        e2e_http(port, "POST", "/v2/console/token", "Content-Type: application/json\r\n",
                 "{\"username\":\"admin\",\"password\":\"" E2E_CONSOLE_ADMIN_PASSWORD "\"}", out,
                 sizeof out),
        200);
    const char *tok = strstr(out, "\"token\":\"");
    assert_non_null(tok);
    tok += strlen("\"token\":\"");
    char auth[256];
    int n = (int)strcspn(tok, "\"");
    snprintf(auth, sizeof auth, "Authorization: Bearer %.*s\r\n", n, tok);
    assert_int_equal(
        e2e_http(port, "GET", "/v2/console/tournaments?limit=100", auth, NULL, out, sizeof out),
        200);
    assert_non_null(strstr(out, "\"id\":\"e2e_cup\""));
    assert_non_null(strstr(out, "\"title\":\"The Cup\""));
    assert_int_equal(e2e_http(port, "GET", "/v2/console/tournament/records?id=e2e_cup", auth, NULL,
                              out, sizeof out),
                     200);
    assert_non_null(strstr(out, "\"rank\":3"));
    assert_int_equal(e2e_http(port, "GET", "/v2/console/tournament/records?id=e2e_tournament_ends",
                              auth, NULL, out, sizeof out),
                     404); /* a plain board */
}

static void the_tournament_lua_functions_work_through_an_rpc(void **state)
{
    (void)state;
    player *p = join_server();
    e2e_client *a = p->e;
    int before = a->rpcs;
    assert_true(kaos_client_rpc_call(a->c, "tournament_lua", "", e2e_on_rpc, a) > 0);
    E2E_WAIT(a->rpcs > before || a->errors > 0, 15000);
    assert_int_equal(a->errors, 0);
    const char *expect[] = {"\"bad_category\":\"3 category must be 0-127, not 500\"",
                            "\"needs_nothing\":\"ok\"",
                            "\"written\":true",
                            "\"no_more\":\"8 no scores left in tournament e2e_lua: 1 of 1 used\"",
                            "\"attempt\":true",
                            "\"listed\":true",
                            "\"around\":true",
                            "\"got\":true",
                            "\"list\":true",
                            "\"deleted\":\"ok\"",
                            "\"gone\":\"5 tournament e2e_lua does not exist\""};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        if (!strstr(a->rpc_payload, expect[i])) fail_msg("%s not in %s", expect[i], a->rpc_payload);
    leave_server(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_rank_and_lists_page_with_cursors_and_views),
        cmocka_unit_test(refusals_reach_the_client_with_their_codes_and_messages),
        cmocka_unit_test(the_lua_functions_work_through_an_rpc),
        cmocka_unit_test(eight_clients_writing_at_once_end_with_exact_ranks),
        cmocka_unit_test(a_required_join_a_full_tournament_and_spent_tries_are_refused),
        cmocka_unit_test(hooks_and_plain_leaderboard_calls_see_the_tournament_rules),
        cmocka_unit_test(the_end_tells_every_participant_their_final_rank_and_runs_the_callback),
        cmocka_unit_test(the_console_lists_tournaments_and_their_records),
        cmocka_unit_test(the_tournament_lua_functions_work_through_an_rpc),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup_with_test_modules,
                                  e2e_group_teardown_with_test_modules);
}
