/* End to end: leaderboards over real UDP with SDK clients — writes with
 * ranks, pages with cursors, the friends view, around an owner, deleting
 * your own record, an authoritative board refusing clients, a before hook
 * on LeaderboardRecordWrite, the kaos.leaderboard_* functions through an
 * RPC (tests/e2e/lua/leaderboard_test.lua), and eight clients writing at
 * once ending with exact ranks. Nothing assumes one network thread: CI
 * runs this file again with KAOS_NET_THREADS=2. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_rank_and_lists_page_with_cursors_and_views),
        cmocka_unit_test(refusals_reach_the_client_with_their_codes_and_messages),
        cmocka_unit_test(the_lua_functions_work_through_an_rpc),
        cmocka_unit_test(eight_clients_writing_at_once_end_with_exact_ranks),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup_with_test_modules,
                                  e2e_group_teardown_with_test_modules);
}
