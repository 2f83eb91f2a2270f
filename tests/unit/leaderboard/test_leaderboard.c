/* kn_leaderboard against the Postgres named by the PG* environment (the
 * suite runs inside pg_virtualenv); a database of its own, boards of each
 * test's own. Covered: each operator in each sort order, negative scores
 * and an increment through 0, ties (subscore, then time), the index's
 * ranks against SQL rank() after 10,000 random writes and after a rebuild
 * (restart), writers on four connections at once, pagination while scores
 * change, around an owner at the edges, the friends view, a cron reset
 * with a stepped clock (callback once per cluster, history by expiry),
 * authoritative boards, errors and limits. */
#include "failalloc.h"
#include "pgtest.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_leaderboard.h"
#include "kn_mem.h"

#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static pgtest pg;
static kn_db *db;
static char msg[512];
static int64_t clock_ms = 1700000000000LL; /* 2023-11-14T22:13:20Z */

static int64_t test_clock(void *ud)
{
    (void)ud;
    return __atomic_load_n(&clock_ms, __ATOMIC_SEQ_CST);
}

static void advance(int64_t ms)
{
    __atomic_add_fetch(&clock_ms, ms, __ATOMIC_SEQ_CST);
}

static int setup(void **state)
{
    (void)state;
    return pgtest_create(&pg, "kaos_lb", &db) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    kn_db_close(db);
    pgtest_drop(&pg);
    return 0;
}

typedef char uid[37];

static void owner(int i, uid out)
{
    snprintf(out, 37, "b0000000-0000-4000-8000-%012d", i);
}

static kn_leaderboards *service(kn_leaderboard_reset_fn on_reset, void *ud)
{
    kn_leaderboards_config c = {.now_ms = test_clock, .on_reset = on_reset, .on_reset_ud = ud};
    kn_leaderboards *lbs = NULL;
    assert_int_equal(kn_leaderboards_create(&c, &lbs), KN_OK);
    return lbs;
}

static void board(kn_leaderboards *lbs, const char *id, int order, int op, const char *cron)
{
    kn_leaderboard_spec s = {
        .id = id, .sort_order = order, .operator_ = op, .reset_schedule = cron};
    assert_int_equal(kn_leaderboard_create(lbs, db, &s, msg, sizeof msg), KN_OK);
}

static kn_leaderboard_record write_op(kn_leaderboards *lbs, kn_db *d, const char *id, int who,
                                      int64_t score, int64_t sub, int op)
{
    uid o;
    owner(who, o);
    kn_leaderboard_write_opts w = {.score = score, .subscore = sub, .operator_ = op};
    kn_leaderboard_record r;
    int rc = kn_leaderboard_write(lbs, d, id, o, &w, &r, msg, sizeof msg);
    if (rc) fail_msg("write: %s", msg);
    kn_free(r.metadata);
    return r;
}

static kn_leaderboard_record put(kn_leaderboards *lbs, const char *id, int who, int64_t score,
                                 int64_t sub)
{
    return write_op(lbs, db, id, who, score, sub, KN_LB_OP_DEFAULT);
}

/* Every record's index rank equals SQL rank() over the board's rows. */
static void ranks_match_sql(kn_leaderboards *lbs, const char *id, int order, size_t expect_n)
{
    /* Static: kn_db prepares a statement once per descriptor. */
#define RANK_SQL(dir)                                                                              \
    "SELECT owner_id::text, rank() OVER (ORDER BY score " dir ", subscore " dir ", score_time,"    \
    " owner_id) FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = 0"
    static const kn_db_stmt asc = {"test_lb_rank_asc", RANK_SQL("ASC"), 1};
    static const kn_db_stmt desc = {"test_lb_rank_desc", RANK_SQL("DESC"), 1};
    const char *p[] = {id};
    kn_db_rows *rows = NULL;
    assert_int_equal(kn_db_query(db, order == KN_LB_ASC ? &asc : &desc, p, &rows), KN_OK);
    size_t n = kn_db_rows_count(rows);
    assert_int_equal(n, expect_n);
    for (size_t i = 0; i < n; i++) {
        int64_t want = atoll(kn_db_rows_get(rows, i, 1));
        int64_t got = kn_leaderboard_rank(lbs, id, kn_db_rows_get(rows, i, 0));
        if (got != want)
            fail_msg("%s: rank of %s is %" PRId64 " in the index, %" PRId64 " in SQL", id,
                     kn_db_rows_get(rows, i, 0), got, want);
    }
    kn_db_rows_free(rows);
}

/* --- operators ------------------------------------------------------------------------------- */

static void each_operator_in_each_order_keeps_the_right_score(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    struct {
        int op, order;
        int64_t a, b, want;
    } cases[] = {
        {KN_LB_OP_BEST, KN_LB_DESC, 10, 7, 10}, {KN_LB_OP_BEST, KN_LB_DESC, 7, 10, 10},
        {KN_LB_OP_BEST, KN_LB_ASC, 10, 7, 7},   {KN_LB_OP_BEST, KN_LB_ASC, -3, 7, -3},
        {KN_LB_OP_SET, KN_LB_DESC, 10, 7, 7},   {KN_LB_OP_SET, KN_LB_ASC, 10, -7, -7},
        {KN_LB_OP_INCR, KN_LB_DESC, 10, 7, 17}, {KN_LB_OP_INCR, KN_LB_ASC, 10, -12, -2},
        {KN_LB_OP_DECR, KN_LB_DESC, 10, 7, 3},  {KN_LB_OP_DECR, KN_LB_ASC, 5, 7, -12},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[32];
        snprintf(id, sizeof id, "ops %zu", i);
        board(lbs, id, cases[i].order, cases[i].op, NULL);
        kn_leaderboard_record r = put(lbs, id, 1, cases[i].a, 0);
        /* decrement of a new record stores minus the value */
        assert_int_equal(r.score, cases[i].op == KN_LB_OP_DECR ? -cases[i].a : cases[i].a);
        r = put(lbs, id, 1, cases[i].b, 0);
        if (cases[i].op == KN_LB_OP_DECR)
            assert_int_equal(r.score, -cases[i].a - cases[i].b);
        else
            assert_int_equal(r.score, cases[i].want);
        assert_int_equal(r.num_score, 2);
        assert_int_equal(r.rank, 1);
    }
    /* A per-write override: set on a best board. */
    kn_leaderboard_record r = write_op(lbs, db, "ops 0", 1, 1, 0, KN_LB_OP_SET);
    assert_int_equal(r.score, 1);
    r = write_op(lbs, db, "ops 0", 1, 5, 0, KN_LB_OP_INCR);
    assert_int_equal(r.score, 6);
    /* Sums saturate instead of failing. */
    r = write_op(lbs, db, "ops 0", 1, INT64_MAX, 0, KN_LB_OP_INCR);
    assert_int_equal(r.score, INT64_MAX);
    kn_leaderboards_destroy(lbs);
}

static void negative_scores_rank_and_an_increment_through_zero_keeps_its_rank(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    board(lbs, "negatives", KN_LB_DESC, KN_LB_OP_INCR, NULL);
    put(lbs, "negatives", 1, -5, 0);
    put(lbs, "negatives", 2, -1, 0);
    put(lbs, "negatives", 3, 2, 0);
    assert_int_equal(kn_leaderboard_rank(lbs, "negatives", "b0000000-0000-4000-8000-000000000001"),
                     3);
    kn_leaderboard_record r = put(lbs, "negatives", 1, 5, 0); /* -5 + 5 = 0 */
    assert_int_equal(r.score, 0);
    assert_int_equal(r.rank, 2);        /* between 2 and -1 */
    r = put(lbs, "negatives", 2, 1, 0); /* -1 + 1 = 0, later than owner 1 */
    assert_int_equal(r.score, 0);
    assert_int_equal(r.rank, 3);
    ranks_match_sql(lbs, "negatives", KN_LB_DESC, 3);
    kn_leaderboards_destroy(lbs);
}

static void ties_are_broken_by_subscore_then_by_who_got_there_first(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    board(lbs, "ties", KN_LB_DESC, KN_LB_OP_BEST, NULL);
    put(lbs, "ties", 1, 100, 1);
    advance(1);
    put(lbs, "ties", 2, 100, 1);
    advance(1);
    put(lbs, "ties", 3, 100, 2);
    assert_int_equal(put(lbs, "ties", 3, 100, 2).rank, 1); /* no improvement: same time */
    assert_int_equal(put(lbs, "ties", 1, 50, 0).rank, 2);
    assert_int_equal(put(lbs, "ties", 2, 100, 1).rank, 3);
    ranks_match_sql(lbs, "ties", KN_LB_DESC, 3);
    kn_leaderboards_destroy(lbs);
}

/* --- the index against SQL ----------------------------------------------------------------- */

static void ten_thousand_random_writes_rank_as_sql_does_and_after_a_restart(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    board(lbs, "mix desc", KN_LB_DESC, KN_LB_OP_BEST, NULL);
    board(lbs, "mix asc", KN_LB_ASC, KN_LB_OP_INCR, NULL);
    srand(42);
    int present[2][600] = {{0}};
    for (int i = 0; i < 10000; i++) {
        int b = i & 1;
        const char *id = b ? "mix asc" : "mix desc";
        int who = rand() % 600;
        if (rand() % 25 == 0) {
            uid o;
            owner(who, o);
            int rc = kn_leaderboard_record_delete(lbs, db, id, o, false, msg, sizeof msg);
            assert_int_equal(rc, present[b][who] ? KN_OK : KN_ERR_NOT_FOUND);
            present[b][who] = 0;
            continue;
        }
        int op = rand() % 5 - 1; /* default or any override */
        write_op(lbs, db, id, who, rand() % 200 - 100, rand() % 4, op);
        present[b][who] = 1;
        if (rand() % 3 == 0) advance(1);
    }
    size_t n[2] = {0, 0};
    for (int b = 0; b < 2; b++)
        for (int w = 0; w < 600; w++)
            n[b] += (size_t)present[b][w];
    ranks_match_sql(lbs, "mix desc", KN_LB_DESC, n[0]);
    ranks_match_sql(lbs, "mix asc", KN_LB_ASC, n[1]);
    kn_leaderboards_destroy(lbs);

    /* A restart: a new service rebuilds both indexes from Postgres. */
    lbs = service(NULL, NULL);
    size_t loaded = 0;
    assert_int_equal(kn_leaderboards_load(lbs, db, &loaded, msg, sizeof msg), KN_OK);
    assert_true(loaded >= n[0] + n[1]);
    ranks_match_sql(lbs, "mix desc", KN_LB_DESC, n[0]);
    ranks_match_sql(lbs, "mix asc", KN_LB_ASC, n[1]);
    kn_leaderboards_destroy(lbs);
}

typedef struct writer {
    kn_leaderboards *lbs;
    int seed;
    int failures;
} writer;

static void *write_many(void *arg)
{
    writer *w = arg;
    kn_db *d = NULL;
    if (pgtest_open(&pg, &d)) {
        w->failures++;
        return NULL;
    }
    unsigned seed = (unsigned)w->seed;
    char m[256];
    for (int i = 0; i < 500; i++) {
        uid o;
        owner((int)(rand_r(&seed) % 50), o); /* the same owners from every thread */
        kn_leaderboard_write_opts wo = {.score = (int64_t)(rand_r(&seed) % 100) - 50,
                                        .operator_ = (int)(rand_r(&seed) % 4)};
        if (kn_leaderboard_write(w->lbs, d, "parallel", o, &wo, NULL, m, sizeof m)) w->failures++;
    }
    kn_db_close(d);
    return NULL;
}

static void writers_on_four_connections_at_once_keep_exact_ranks(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    board(lbs, "parallel", KN_LB_DESC, KN_LB_OP_INCR, NULL);
    pthread_t t[4];
    writer w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (writer){lbs, i + 1, 0};
        pthread_create(&t[i], NULL, write_many, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    ranks_match_sql(lbs, "parallel", KN_LB_DESC, 50);
    kn_leaderboards_destroy(lbs);
}

/* --- lists ------------------------------------------------------------------------------------ */

static void pagination_while_scores_change_sees_every_unchanged_record_once(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    board(lbs, "pages", KN_LB_DESC, KN_LB_OP_SET, NULL);
    for (int i = 0; i < 100; i++)
        put(lbs, "pages", i, (i * 37) % 101, 0);
    int seen[100] = {0};
    char *cursor = NULL;
    int pages = 0;
    int64_t last_rank = 0;
    do {
        kn_leaderboard_query q = {.id = "pages", .limit = 7, .cursor = cursor};
        kn_leaderboard_page p;
        assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
        kn_free(cursor);
        cursor = p.next_cursor ? kn_strdup(p.next_cursor) : NULL;
        for (size_t i = 0; i < p.n_records; i++) {
            int who = atoi(p.records[i].owner_id + 24);
            seen[who]++;
            assert_true(p.records[i].rank > 0);
            if (pages == 0 && i == 0) assert_int_equal(p.records[i].rank, 1);
            (void)last_rank;
            last_rank = p.records[i].rank;
        }
        kn_leaderboard_page_free(&p);
        /* Between pages, the owners 90-99 move around the board. */
        for (int j = 90; j < 100; j++)
            put(lbs, "pages", j, (j * 13 + pages * 29) % 101, 0);
        pages++;
    } while (cursor);
    for (int i = 0; i < 90; i++)
        assert_int_equal(seen[i], 1);
    assert_true(pages >= 13);
    kn_leaderboards_destroy(lbs);
}

/* Forward to the end, then back with the previous-page cursors: the same
 * pages in reverse, the first without a previous page. */
static void previous_page_cursors_walk_back_the_same_pages(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    board(lbs, "back", KN_LB_ASC, KN_LB_OP_SET, NULL);
    for (int i = 0; i < 23; i++)
        put(lbs, "back", i, i % 7, i);
    int64_t firsts[8];
    int n = 0;
    char *cursor = NULL, *prev = NULL;
    do {
        kn_leaderboard_query q = {.id = "back", .limit = 5, .cursor = cursor};
        kn_leaderboard_page p;
        assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
        firsts[n++] = p.records[0].rank;
        if (n == 1) assert_null(p.prev_cursor);
        kn_free(cursor);
        kn_free(prev);
        cursor = p.next_cursor ? kn_strdup(p.next_cursor) : NULL;
        prev = p.prev_cursor ? kn_strdup(p.prev_cursor) : NULL;
        kn_leaderboard_page_free(&p);
    } while (cursor);
    assert_int_equal(n, 5); /* 5 + 5 + 5 + 5 + 3 */
    for (int k = n - 2; k >= 0; k--) {
        kn_leaderboard_query q = {.id = "back", .limit = 5, .cursor = prev};
        kn_leaderboard_page p;
        assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
        assert_int_equal(p.n_records, 5);
        assert_int_equal(p.records[0].rank, firsts[k]);
        assert_non_null(p.next_cursor);
        kn_free(prev);
        prev = p.prev_cursor ? kn_strdup(p.prev_cursor) : NULL;
        kn_leaderboard_page_free(&p);
    }
    assert_null(prev); /* back at the top */
    /* a previous-page cursor of a record deleted meanwhile still works */
    kn_leaderboard_query q = {.id = "back", .limit = 5};
    kn_leaderboard_page p;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    q.cursor = p.next_cursor;
    kn_leaderboard_page p2;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p2, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_leaderboard_record_delete(lbs, db, "back", p2.records[0].owner_id, false,
                                                  msg, sizeof msg),
                     KN_OK);
    kn_leaderboard_page p3;
    q.cursor = p2.prev_cursor;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p3, msg, sizeof msg), KN_OK);
    assert_int_equal(p3.n_records, 5);
    assert_int_equal(p3.records[0].rank, 1);
    kn_leaderboard_page_free(&p);
    kn_leaderboard_page_free(&p2);
    kn_leaderboard_page_free(&p3);
    kn_leaderboards_destroy(lbs);
}

static void around_an_owner_stays_inside_the_board_at_both_edges(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    board(lbs, "around", KN_LB_DESC, KN_LB_OP_SET, NULL);
    for (int i = 1; i <= 20; i++)
        put(lbs, "around", i, i, 0); /* owner i at rank 21 - i */
    struct {
        int who, limit;
        int64_t first_rank;
        size_t n;
    } cases[] = {{20, 5, 1, 5}, {19, 5, 1, 5},   {10, 5, 9, 5}, {1, 5, 16, 5},
                 {2, 4, 17, 4}, {10, 50, 1, 20}, {999, 3, 1, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uid o;
        owner(cases[i].who, o);
        kn_leaderboard_page p;
        assert_int_equal(kn_leaderboard_records_around(lbs, db, "around", o, cases[i].limit, 0, &p,
                                                       msg, sizeof msg),
                         KN_OK);
        assert_int_equal(p.n_records, cases[i].n);
        assert_int_equal(p.records[0].rank, cases[i].first_rank);
        for (size_t k = 1; k < p.n_records; k++)
            assert_int_equal(p.records[k].rank, p.records[k - 1].rank + 1);
        assert_int_equal(p.rank_count, 20);
        kn_leaderboard_page_free(&p);
    }
    /* A board of one. */
    board(lbs, "around one", KN_LB_ASC, KN_LB_OP_SET, NULL);
    put(lbs, "around one", 3, -1, 0);
    uid o;
    owner(3, o);
    kn_leaderboard_page p;
    assert_int_equal(
        kn_leaderboard_records_around(lbs, db, "around one", o, 10, 0, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 1);
    assert_int_equal(p.records[0].rank, 1);
    assert_null(p.next_cursor);
    kn_leaderboard_page_free(&p);
    kn_leaderboards_destroy(lbs);
}

static void the_friends_view_returns_the_owners_records_in_rank_order(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    board(lbs, "friends view", KN_LB_DESC, KN_LB_OP_BEST, NULL);
    for (int i = 1; i <= 10; i++)
        put(lbs, "friends view", i, i * 10, 0);
    uid a, b, c;
    owner(2, a);
    owner(9, b);
    owner(77, c); /* no record */
    const char *ids[] = {a, b, c};
    kn_leaderboard_query q = {.id = "friends view", .limit = 0, .owner_ids = ids, .n_owner_ids = 3};
    kn_leaderboard_page p;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 0);
    assert_int_equal(p.n_owner_records, 2);
    assert_string_equal(p.owner_records[0].owner_id, b);
    assert_int_equal(p.owner_records[0].rank, 2);
    assert_int_equal(p.owner_records[1].rank, 9);
    kn_leaderboard_page_free(&p);
    /* A cursor from a rank starts the page there. */
    char *cur = NULL;
    assert_int_equal(kn_leaderboard_cursor_from_rank(lbs, "friends view", 4, &cur, msg, sizeof msg),
                     KN_OK);
    q = (kn_leaderboard_query){.id = "friends view", .limit = 2, .cursor = cur};
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 2);
    assert_int_equal(p.records[0].rank, 4);
    assert_int_equal(p.records[0].score, 70);
    kn_leaderboard_page_free(&p);
    kn_free(cur);
    kn_leaderboards_destroy(lbs);
}

/* --- resets ----------------------------------------------------------------------------------- */

typedef struct resets {
    int calls;
    int64_t last;
    char board[KN_LB_ID_MAX + 1];
} resets;

static void on_reset(void *ud, kn_db *d, const kn_leaderboard *b, int64_t reset)
{
    (void)d;
    resets *r = ud;
    r->calls++;
    r->last = reset;
    snprintf(r->board, sizeof r->board, "%s", b->id);
}

static void a_cron_reset_empties_the_ranks_keeps_history_and_fires_once_per_cluster(void **state)
{
    (void)state;
    resets seen = {0}, other = {0};
    kn_leaderboards *lbs = service(on_reset, &seen);
    kn_leaderboards *node2 = service(on_reset, &other); /* a second node, same database */
    board(lbs, "hourly", KN_LB_DESC, KN_LB_OP_BEST, "0 * * * *");
    size_t loaded;
    assert_int_equal(kn_leaderboards_load(node2, db, &loaded, msg, sizeof msg), KN_OK);
    kn_leaderboard_record r = put(lbs, "hourly", 1, 50, 0);
    put(lbs, "hourly", 2, 60, 0);
    int64_t end = (clock_ms / 1000 / 3600 + 1) * 3600;
    assert_int_equal(r.expiry_time, end);
    assert_int_equal(kn_leaderboards_tick(lbs, db), 0);
    advance((end * 1000 - clock_ms) + 1000); /* a second past the hour */
    assert_int_equal(kn_leaderboards_tick(lbs, db), 1);
    assert_int_equal(kn_leaderboards_tick(node2, db), 0); /* claimed by the first node */
    assert_int_equal(kn_leaderboards_tick(lbs, db), 0);   /* and only once */
    assert_int_equal(seen.calls, 1);
    assert_int_equal(other.calls, 0);
    assert_int_equal(seen.last, end);
    assert_string_equal(seen.board, "hourly");
    /* The new period starts empty... */
    kn_leaderboard_query q = {.id = "hourly", .limit = 10};
    kn_leaderboard_page p;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 0);
    kn_leaderboard_page_free(&p);
    r = put(lbs, "hourly", 1, 5, 0);
    assert_int_equal(r.rank, 1);
    assert_int_equal(r.num_score, 1);
    assert_int_equal(r.expiry_time, end + 3600);
    /* ...and the old one is history, listed by its expiry with its ranks. */
    q.expiry = end;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 2);
    assert_int_equal(p.records[0].score, 60);
    assert_int_equal(p.records[0].rank, 1);
    assert_int_equal(p.records[1].rank, 2);
    kn_leaderboard_page_free(&p);
    q.limit = 1;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_non_null(p.next_cursor);
    char *cur = kn_strdup(p.next_cursor);
    kn_leaderboard_page_free(&p);
    q.cursor = cur;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 1);
    assert_int_equal(p.records[0].score, 50);
    assert_int_equal(p.records[0].rank, 2);
    assert_null(p.next_cursor);
    kn_leaderboard_page_free(&p);
    kn_free(cur);
    /* the friends view and around an owner in history, ranks from SQL */
    uid o1, o2, nobody;
    owner(1, o1);
    owner(2, o2);
    owner(99, nobody);
    const char *ids[] = {o1, nobody, o2};
    kn_leaderboard_query oq = {
        .id = "hourly", .limit = 0, .expiry = end, .owner_ids = ids, .n_owner_ids = 3};
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &oq, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 0);
    assert_null(p.next_cursor);
    assert_int_equal(p.n_owner_records, 2);
    assert_string_equal(p.owner_records[0].owner_id, o2);
    assert_int_equal(p.owner_records[0].rank, 1);
    assert_int_equal(p.owner_records[1].rank, 2);
    kn_leaderboard_page_free(&p);
    assert_int_equal(
        kn_leaderboard_records_around(lbs, db, "hourly", o1, 1, end, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 1);
    assert_string_equal(p.records[0].owner_id, o1);
    assert_int_equal(p.records[0].rank, 2);
    kn_leaderboard_page_free(&p);
    assert_int_equal(
        kn_leaderboard_records_around(lbs, db, "hourly", nobody, 5, end, &p, msg, sizeof msg),
        KN_OK);
    assert_int_equal(p.n_records, 2); /* no record: the top */
    assert_int_equal(p.records[0].rank, 1);
    kn_leaderboard_page_free(&p);
    kn_leaderboards_destroy(node2);
    kn_leaderboards_destroy(lbs);
}

static void a_reset_missed_while_no_server_ran_fires_once_at_the_next_start(void **state)
{
    (void)state;
    resets first = {0}, seen = {0}, other = {0};
    kn_leaderboards *lbs = service(on_reset, &first);
    board(lbs, "missed", KN_LB_DESC, KN_LB_OP_BEST, "0 * * * *");
    /* The board existed before the resets it missed (its row's clock is the database's). */
    pgtest_sql(db,
               "UPDATE leaderboard SET create_time = to_timestamp(%" PRId64 ") WHERE id = 'missed'",
               clock_ms / 1000 - 60);
    put(lbs, "missed", 1, 10, 0);
    kn_leaderboards_destroy(lbs); /* the server stops... */
    int64_t hour = clock_ms / 1000 / 3600 * 3600;
    advance(3 * 3600 * 1000LL); /* ...for three hours: three resets pass */
    int64_t last = (clock_ms / 1000 / 3600) * 3600;
    assert_int_equal(last, hour + 3 * 3600);
    kn_leaderboards *again = service(on_reset, &seen), *node2 = service(on_reset, &other);
    size_t loaded;
    assert_int_equal(kn_leaderboards_load(again, db, &loaded, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_leaderboards_load(node2, db, &loaded, msg, sizeof msg), KN_OK);
    kn_leaderboards_tick(again, db);
    kn_leaderboards_tick(node2, db);
    kn_leaderboards_tick(again, db);
    assert_int_equal(seen.calls + other.calls, 1); /* the last one, once per cluster */
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.last, last);
    assert_string_equal(seen.board, "missed");
    kn_leaderboards_destroy(node2);
    kn_leaderboards_destroy(again);
    /* A restart right after a reset that did fire does not fire it again. */
    resets after = {0};
    kn_leaderboards *third = service(on_reset, &after);
    assert_int_equal(kn_leaderboards_load(third, db, &loaded, msg, sizeof msg), KN_OK);
    kn_leaderboards_tick(third, db);
    assert_int_equal(after.calls, 0);
    kn_leaderboards_destroy(third);
    pgtest_sql(db, "DELETE FROM leaderboard WHERE id = 'missed'");
}

static void queued_writes_run_in_order_at_the_flush(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    board(lbs, "queued", KN_LB_DESC, KN_LB_OP_INCR, NULL);
    uid o;
    owner(1, o);
    kn_leaderboard_write_opts w = {.score = 5, .operator_ = KN_LB_OP_DEFAULT, .username = "ace"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(kn_leaderboards_enqueue(lbs, "queued", o, &w, msg, sizeof msg), KN_OK);
    w.operator_ = KN_LB_OP_SET; /* the last one wins: order kept */
    w.score = 100;
    assert_int_equal(kn_leaderboards_enqueue(lbs, "queued", o, &w, msg, sizeof msg), KN_OK);
    /* checked at once */
    assert_int_equal(kn_leaderboards_enqueue(lbs, "queued", "nope", &w, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    /* a missing board is refused when the write runs, logged, and the rest go on */
    assert_int_equal(kn_leaderboards_enqueue(lbs, "gone", o, &w, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_leaderboard_rank(lbs, "queued", o), 0); /* nothing ran yet */
    assert_int_equal(kn_leaderboards_flush(lbs, db), 5);
    assert_int_equal(kn_leaderboards_flush(lbs, db), 0);
    kn_leaderboard_query q = {.id = "queued", .limit = 5};
    kn_leaderboard_page p;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 1);
    assert_int_equal(p.records[0].score, 100);
    assert_int_equal(p.records[0].num_score, 4);
    assert_string_equal(p.records[0].username, "ace");
    kn_leaderboard_page_free(&p);
    /* unflushed writes are freed with the service */
    assert_int_equal(kn_leaderboards_enqueue(lbs, "queued", o, &w, msg, sizeof msg), KN_OK);
    kn_leaderboards_destroy(lbs);
}

/* --- allocation failures ---------------------------------------------------------------------- */

/* A start and every read, with any one allocation failing: a clean refusal
 * (NOMEM) and nothing leaked, until the run that needs no failure. */
static int start_and_read(void *arg)
{
    (void)arg;
    char m[256];
    kn_leaderboards *lbs = NULL;
    int rc = kn_leaderboards_create(NULL, &lbs);
    size_t loaded = 0;
    if (rc == KN_OK) rc = kn_leaderboards_load(lbs, db, &loaded, m, sizeof m);
    uid o;
    owner(2, o);
    const char *ids[] = {o};
    kn_leaderboard_query q = {.id = "oom", .limit = 2, .owner_ids = ids, .n_owner_ids = 1};
    kn_leaderboard_page p = {0};
    if (rc == KN_OK) rc = kn_leaderboard_records_list(lbs, db, &q, &p, m, sizeof m);
    if (rc == KN_OK && p.next_cursor) {
        char *cur = kn_strdup(p.next_cursor);
        kn_leaderboard_page_free(&p);
        q.cursor = cur;
        rc = cur ? kn_leaderboard_records_list(lbs, db, &q, &p, m, sizeof m) : KN_ERR_NOMEM;
        kn_free(cur);
    }
    kn_leaderboard_page_free(&p);
    if (rc == KN_OK) rc = kn_leaderboard_records_around(lbs, db, "oom", o, 3, 0, &p, m, sizeof m);
    kn_leaderboard_page_free(&p);
    kn_leaderboard *boards = NULL;
    size_t n = 0;
    if (rc == KN_OK) rc = kn_leaderboards_list(lbs, &boards, &n, m, sizeof m);
    kn_leaderboards_free(boards, n);
    kn_leaderboard b;
    if (rc == KN_OK) rc = kn_leaderboard_get(lbs, "oom", &b, m, sizeof m);
    if (rc == KN_OK) kn_leaderboard_deinit(&b);
    if (rc) assert_int_equal(rc, KN_ERR_NOMEM);
    kn_leaderboards_destroy(lbs);
    return rc;
}

static void a_start_and_the_reads_survive_allocation_failures(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    board(lbs, "oom", KN_LB_DESC, KN_LB_OP_BEST, NULL);
    for (int i = 1; i <= 5; i++)
        put(lbs, "oom", i, i * 3, 0);
    kn_leaderboards_destroy(lbs);
    assert_true(failalloc_sweep(start_and_read, NULL) >= 10);
}

/* --- refusals --------------------------------------------------------------------------------- */

static void refusals_carry_stable_codes_and_messages(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL, NULL);
    kn_leaderboard_spec s = {.id = "server only", .authoritative = true};
    assert_int_equal(kn_leaderboard_create(lbs, db, &s, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_leaderboard_create(lbs, db, &s, msg, sizeof msg), KN_OK); /* again: fine */
    s.sort_order = KN_LB_ASC;
    assert_int_equal(kn_leaderboard_create(lbs, db, &s, msg, sizeof msg), KN_ERR_ALREADY_EXISTS);
    assert_string_equal(msg, "leaderboard server only exists with other settings");
    s = (kn_leaderboard_spec){.id = "bad cron", .reset_schedule = "61 * * * *"};
    assert_int_equal(kn_leaderboard_create(lbs, db, &s, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "reset schedule: minute field"));
    s = (kn_leaderboard_spec){.id = "", .sort_order = 0};
    assert_int_equal(kn_leaderboard_create(lbs, db, &s, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    s = (kn_leaderboard_spec){.id = "x", .operator_ = 9};
    assert_int_equal(kn_leaderboard_create(lbs, db, &s, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    s = (kn_leaderboard_spec){.id = "x", .metadata = "[1]"};
    assert_int_equal(kn_leaderboard_create(lbs, db, &s, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "metadata must be a JSON object");

    uid o;
    owner(1, o);
    kn_leaderboard_write_opts w = {.score = 1, .operator_ = KN_LB_OP_DEFAULT, .from_client = true};
    assert_int_equal(kn_leaderboard_write(lbs, db, "server only", o, &w, NULL, msg, sizeof msg),
                     KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg,
                        "leaderboard server only is authoritative: only the server writes to it");
    w.from_client = false;
    assert_int_equal(kn_leaderboard_write(lbs, db, "server only", o, &w, NULL, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(kn_leaderboard_record_delete(lbs, db, "server only", o, true, msg, sizeof msg),
                     KN_ERR_PERMISSION_DENIED);
    assert_int_equal(kn_leaderboard_write(lbs, db, "nope", o, &w, NULL, msg, sizeof msg),
                     KN_ERR_NOT_FOUND);
    assert_string_equal(msg, "leaderboard nope does not exist");
    assert_int_equal(
        kn_leaderboard_write(lbs, db, "server only", "not-a-uuid", &w, NULL, msg, sizeof msg),
        KN_ERR_INVALID_ARGUMENT);
    w.operator_ = 7;
    assert_int_equal(kn_leaderboard_write(lbs, db, "server only", o, &w, NULL, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    kn_leaderboard_query q = {.id = "server only", .limit = 1001};
    kn_leaderboard_page p;
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "limit must be 1-1000, not 1001");
    q = (kn_leaderboard_query){.id = "server only", .cursor = "lb1:0:1:2:3:zz"};
    assert_int_equal(kn_leaderboard_records_list(lbs, db, &q, &p, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "cursor is malformed");
    assert_int_equal(kn_leaderboard_cursor_check("lb1:0:1:2:3:b0000000-0000-4000-8000-000000000001",
                                                 msg, sizeof msg),
                     KN_OK);
    assert_int_equal(kn_leaderboard_cursor_check("lb1:0:1:2:3:B0000000-0000-4000-8000-000000000001",
                                                 msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        kn_leaderboard_record_delete(lbs, db, "server only", o, false, msg, sizeof msg), KN_OK);
    assert_int_equal(
        kn_leaderboard_record_delete(lbs, db, "server only", o, false, msg, sizeof msg),
        KN_ERR_NOT_FOUND);
    assert_int_equal(kn_leaderboard_delete(lbs, db, "server only", msg, sizeof msg), KN_OK);
    assert_int_equal(kn_leaderboard_delete(lbs, db, "server only", msg, sizeof msg),
                     KN_ERR_NOT_FOUND);
    kn_leaderboards_destroy(lbs);
}

/* --- a cluster: two services on one database, each index following the other's writes --- */

static void to_peer(void *ud, const char *board_id, int64_t expiry, const kn_rank_entry *e)
{
    assert_int_equal(kn_leaderboards_apply_peer(ud, board_id, expiry, e, NULL), KN_OK);
}

static void removed_at_peer(void *ud, const char *board_id, int64_t expiry, const char *owner)
{
    assert_int_equal(kn_leaderboards_apply_peer(ud, board_id, expiry, NULL, owner), KN_OK);
}

static void two_nodes_writing_one_board_rank_as_sql_does_on_both(void **state)
{
    (void)state;
    kn_leaderboards *a = service(NULL, NULL), *b = service(NULL, NULL);
    board(a, "peers", KN_LB_DESC, KN_LB_OP_SET, NULL);
    size_t n = 0;
    assert_int_equal(kn_leaderboards_load(b, db, &n, msg, sizeof msg), KN_OK); /* b knows it */
    kn_leaderboards_set_peers(a, &(kn_leaderboard_peers){to_peer, removed_at_peer, b});
    kn_leaderboards_set_peers(b, &(kn_leaderboard_peers){to_peer, removed_at_peer, a});
    srand(23);
    for (int i = 0; i < 300; i++) {
        advance(1);
        put(i % 2 ? a : b, "peers", rand() % 40, rand() % 1000 - 500, rand() % 3);
    }
    ranks_match_sql(a, "peers", KN_LB_DESC, 40);
    ranks_match_sql(b, "peers", KN_LB_DESC, 40);
    /* a delete on b leaves a's index too */
    uid o;
    owner(7, o);
    assert_int_equal(kn_leaderboard_record_delete(b, db, "peers", o, false, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(kn_leaderboard_rank(a, "peers", o), 0);
    ranks_match_sql(a, "peers", KN_LB_DESC, 39);
    /* an entry of another period, or of a board not loaded here, is ignored */
    kn_rank_entry e = {.score = 1000, .version = 99};
    owner(7, e.owner);
    assert_int_equal(kn_leaderboards_apply_peer(a, "peers", 12345, &e, NULL), KN_ERR_NOT_FOUND);
    assert_int_equal(kn_leaderboard_rank(a, "peers", o), 0);
    assert_int_equal(kn_leaderboards_apply_peer(a, "nowhere", 0, &e, NULL), KN_ERR_NOT_FOUND);
    /* entries out of order or twice: the highest version stays */
    e.version = 1; /* older than what every owner already has here */
    owner(3, e.owner);
    int64_t before = kn_leaderboard_rank(a, "peers", e.owner);
    assert_int_equal(kn_leaderboards_apply_peer(a, "peers", 0, &e, NULL), KN_OK);
    assert_int_equal(kn_leaderboard_rank(a, "peers", e.owner), before);
    ranks_match_sql(a, "peers", KN_LB_DESC, 39);
    kn_leaderboards_set_peers(a, NULL);
    kn_leaderboards_set_peers(b, NULL);
    kn_leaderboards_destroy(a);
    kn_leaderboards_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_operator_in_each_order_keeps_the_right_score),
        cmocka_unit_test(negative_scores_rank_and_an_increment_through_zero_keeps_its_rank),
        cmocka_unit_test(ties_are_broken_by_subscore_then_by_who_got_there_first),
        cmocka_unit_test(ten_thousand_random_writes_rank_as_sql_does_and_after_a_restart),
        cmocka_unit_test(writers_on_four_connections_at_once_keep_exact_ranks),
        cmocka_unit_test(pagination_while_scores_change_sees_every_unchanged_record_once),
        cmocka_unit_test(previous_page_cursors_walk_back_the_same_pages),
        cmocka_unit_test(around_an_owner_stays_inside_the_board_at_both_edges),
        cmocka_unit_test(the_friends_view_returns_the_owners_records_in_rank_order),
        cmocka_unit_test(a_cron_reset_empties_the_ranks_keeps_history_and_fires_once_per_cluster),
        cmocka_unit_test(a_reset_missed_while_no_server_ran_fires_once_at_the_next_start),
        cmocka_unit_test(queued_writes_run_in_order_at_the_flush),
        cmocka_unit_test(a_start_and_the_reads_survive_allocation_failures),
        cmocka_unit_test(refusals_carry_stable_codes_and_messages),
        cmocka_unit_test(two_nodes_writing_one_board_rank_as_sql_does_on_both),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
