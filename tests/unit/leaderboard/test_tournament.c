/* kn_tournament against the Postgres named by the PG* environment (the
 * suite runs inside pg_virtualenv), with a stepped clock: windows (start,
 * duration, periods, end), join rules (required, implicit), max size under
 * parallel joins on separate connections, max num score and add_attempt,
 * the end callback once per cluster with every participant's notification
 * and final rank, the reset callback, lists by category and time with a
 * cursor, and the refusals' codes and messages. */
#include "pgtest.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_notify.h"
#include "kn_tournament.h"

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
/* An hour boundary plus ten minutes: 2023-11-14T22:10:00Z. */
static int64_t clock_ms = 1700000000000LL - 200000LL;

static int64_t test_clock(void *ud)
{
    (void)ud;
    return __atomic_load_n(&clock_ms, __ATOMIC_SEQ_CST);
}

static int64_t now_s(void)
{
    return test_clock(NULL) / 1000;
}

static void advance_s(int64_t s)
{
    __atomic_add_fetch(&clock_ms, s * 1000, __ATOMIC_SEQ_CST);
}

static int setup(void **state)
{
    (void)state;
    return pgtest_create(&pg, "kaos_tn", &db) ? -1 : 0;
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
    snprintf(out, 37, "d0000000-0000-4000-8000-%012d", i);
}

/* A user row for owner i (notifications go to users only). */
static void user(int i)
{
    uid o;
    owner(i, o);
    pgtest_sql(db,
               "INSERT INTO users (id, username) VALUES ('%s', 'tn_user_%d')"
               " ON CONFLICT DO NOTHING",
               o, i);
}

typedef struct calls {
    int n;
    char id[KN_LB_ID_MAX + 1];
    int64_t end, reset, size;
} calls;

static void on_call(void *ud, kn_db *d, const kn_tournament *t, int64_t end, int64_t reset)
{
    (void)d;
    calls *c = ud;
    c->n++;
    snprintf(c->id, sizeof c->id, "%s", t->id);
    c->end = end;
    c->reset = reset;
    c->size = t->size;
}

typedef struct both {
    calls ends, resets;
} both;

static void on_end(void *ud, kn_db *d, const kn_tournament *t, int64_t end, int64_t reset)
{
    on_call(&((both *)ud)->ends, d, t, end, reset);
}

static void on_reset(void *ud, kn_db *d, const kn_tournament *t, int64_t end, int64_t reset)
{
    on_call(&((both *)ud)->resets, d, t, end, reset);
}

static kn_leaderboards *service(both *cb)
{
    kn_leaderboards_config c = {.now_ms = test_clock,
                                .on_tournament_end = cb ? on_end : NULL,
                                .on_tournament_reset = cb ? on_reset : NULL,
                                .on_tournament_ud = cb};
    kn_leaderboards *lbs = NULL;
    assert_int_equal(kn_leaderboards_create(&c, &lbs), KN_OK);
    return lbs;
}

static kn_tournament_spec spec(const char *id)
{
    kn_tournament_spec s = {.board = {.id = id}, .title = "weekly cup", .category = 1};
    return s;
}

static void create(kn_leaderboards *lbs, const kn_tournament_spec *s)
{
    if (kn_tournament_create(lbs, db, s, msg, sizeof msg)) fail_msg("create: %s", msg);
}

static int write_as(kn_leaderboards *lbs, kn_db *d, const char *id, int who, int64_t score)
{
    uid o;
    owner(who, o);
    kn_leaderboard_write_opts w = {.score = score, .operator_ = KN_LB_OP_DEFAULT};
    kn_leaderboard_record r;
    int rc = kn_tournament_record_write(lbs, d, id, o, &w, &r, msg, sizeof msg);
    if (rc == KN_OK) kn_free(r.metadata);
    return rc;
}

static int join_as(kn_leaderboards *lbs, kn_db *d, const char *id, int who)
{
    uid o;
    owner(who, o);
    return kn_tournament_join(lbs, d, id, o, msg, sizeof msg);
}

static void writes_are_accepted_only_inside_the_window(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL);
    int64_t hour = now_s() / 3600 * 3600; /* the current period began here */
    kn_tournament_spec s = spec("window");
    s.board.reset_schedule = "0 * * * *";
    s.start_time = now_s() + 600; /* in ten minutes */
    s.end_time = hour + 3 * 3600;
    s.duration = 1800; /* half an hour of each hourly period */
    create(lbs, &s);
    assert_int_equal(write_as(lbs, db, "window", 1, 10), KN_ERR_FAILED_PRECONDITION);
    assert_non_null(strstr(msg, "has not started"));
    assert_int_equal(join_as(lbs, db, "window", 1), KN_ERR_FAILED_PRECONDITION);
    advance_s(600); /* 22:20: started, active until 22:50 (start + duration) */
    kn_tournament t;
    assert_int_equal(kn_tournament_get(lbs, db, "window", &t, msg, sizeof msg), KN_OK);
    assert_true(t.can_enter);
    assert_int_equal(t.start_active, s.start_time);
    assert_int_equal(t.end_active, s.start_time + 1800);
    assert_int_equal(t.next_reset, hour + 3600);
    kn_tournament_deinit(&t);
    assert_int_equal(write_as(lbs, db, "window", 1, 10), KN_OK);
    advance_s(1800); /* 22:50: this period's window is over */
    assert_int_equal(write_as(lbs, db, "window", 1, 20), KN_ERR_FAILED_PRECONDITION);
    assert_non_null(strstr(msg, "is not active"));
    assert_int_equal(kn_tournament_get(lbs, db, "window", &t, msg, sizeof msg), KN_OK);
    assert_false(t.can_enter);
    kn_tournament_deinit(&t);
    advance_s(600); /* 23:00 a new period: active 23:00-23:30 */
    assert_int_equal(write_as(lbs, db, "window", 1, 30), KN_OK);
    advance_s(2 * 3600); /* past the end */
    assert_int_equal(write_as(lbs, db, "window", 1, 40), KN_ERR_FAILED_PRECONDITION);
    assert_string_equal(msg, "tournament window has ended");
    kn_leaderboards_destroy(lbs);
    /* A script creating one at every start (start 0: now) after its end. */
    lbs = service(NULL);
    kn_tournament_spec brief = spec("brief");
    brief.end_time = now_s() + 10;
    create(lbs, &brief);
    kn_leaderboards_destroy(lbs);
    advance_s(20);
    lbs = service(NULL); /* a restart */
    create(lbs, &brief);
    kn_leaderboards_destroy(lbs);
}

static void a_required_join_comes_before_writes_and_an_optional_one_comes_with_them(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL);
    kn_tournament_spec s = spec("must_join");
    s.join_required = true;
    create(lbs, &s);
    assert_int_equal(write_as(lbs, db, "must_join", 1, 5), KN_ERR_FAILED_PRECONDITION);
    assert_string_equal(msg, "join tournament must_join before writing to it");
    assert_int_equal(join_as(lbs, db, "must_join", 1), KN_OK);
    assert_int_equal(join_as(lbs, db, "must_join", 1), KN_OK); /* twice is fine */
    assert_int_equal(write_as(lbs, db, "must_join", 1, 5), KN_OK);
    kn_tournament t;
    assert_int_equal(kn_tournament_get(lbs, db, "must_join", &t, msg, sizeof msg), KN_OK);
    assert_int_equal(t.size, 1);
    kn_tournament_deinit(&t);

    kn_tournament_spec open = spec("open");
    open.max_size = 2;
    create(lbs, &open);
    assert_int_equal(write_as(lbs, db, "open", 1, 5), KN_OK); /* joins as it writes */
    assert_int_equal(write_as(lbs, db, "open", 2, 6), KN_OK);
    assert_int_equal(write_as(lbs, db, "open", 3, 7), KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(msg, "tournament open is full: 2 of 2 have joined");
    assert_int_equal(write_as(lbs, db, "open", 1, 8), KN_OK); /* members still write */
    assert_int_equal(kn_tournament_get(lbs, db, "open", &t, msg, sizeof msg), KN_OK);
    assert_int_equal(t.size, 2);
    assert_false(t.can_enter);
    kn_tournament_deinit(&t);
    kn_leaderboards_destroy(lbs);
}

typedef struct joiner {
    kn_leaderboards *lbs;
    int who;
    bool by_write;
    int rc;
} joiner;

static void *join_thread(void *arg)
{
    joiner *j = arg;
    kn_db *d = NULL;
    if (pgtest_open(&pg, &d)) {
        j->rc = KN_ERR_DB;
        return NULL;
    }
    char m[256];
    uid o;
    owner(j->who, o);
    if (j->by_write) {
        kn_leaderboard_write_opts w = {.score = j->who, .operator_ = KN_LB_OP_DEFAULT};
        j->rc = kn_tournament_record_write(j->lbs, d, "crowded_w", o, &w, NULL, m, sizeof m);
    } else {
        j->rc = kn_tournament_join(j->lbs, d, "crowded", o, m, sizeof m);
    }
    kn_db_close(d);
    return NULL;
}

static void parallel_joins_never_pass_max_size(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL);
    kn_tournament_spec s = spec("crowded");
    s.max_size = 5;
    s.join_required = true;
    create(lbs, &s);
    s.board.id = "crowded_w"; /* joined by first writes */
    s.join_required = false;
    create(lbs, &s);
    for (int round = 0; round < 2; round++) {
        enum { N = 16 };
        joiner js[N];
        pthread_t th[N];
        for (int i = 0; i < N; i++) {
            js[i] = (joiner){lbs, 100 + i, round == 1, 0};
            assert_int_equal(pthread_create(&th[i], NULL, join_thread, &js[i]), 0);
        }
        int ok = 0, full = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            if (js[i].rc == KN_OK) ok++;
            if (js[i].rc == KN_ERR_RESOURCE_EXHAUSTED) full++;
        }
        assert_int_equal(ok, 5);
        assert_int_equal(full, N - 5);
        kn_tournament t;
        const char *id = round ? "crowded_w" : "crowded";
        assert_int_equal(kn_tournament_get(lbs, db, id, &t, msg, sizeof msg), KN_OK);
        assert_int_equal(t.size, 5);
        kn_tournament_deinit(&t);
    }
    kn_leaderboard_query q = {.id = "crowded_w", .limit = 100};
    kn_leaderboard_page p;
    assert_int_equal(kn_tournament_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 5); /* only the members wrote */
    kn_leaderboard_page_free(&p);
    kn_leaderboards_destroy(lbs);
}

static void max_num_score_counts_the_writes_and_add_attempt_raises_it_for_one_owner(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL);
    kn_tournament_spec s = spec("tries");
    s.max_num_score = 2;
    s.board.operator_ = KN_LB_OP_INCR;
    create(lbs, &s);
    assert_int_equal(write_as(lbs, db, "tries", 1, 1), KN_OK);
    assert_int_equal(write_as(lbs, db, "tries", 1, 1), KN_OK);
    assert_int_equal(write_as(lbs, db, "tries", 1, 1), KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(msg, "no scores left in tournament tries: 2 of 2 used");
    uid o1, o2;
    owner(1, o1);
    owner(2, o2);
    assert_int_equal(kn_tournament_add_attempt(lbs, db, "tries", o1, 2, msg, sizeof msg), KN_OK);
    assert_int_equal(write_as(lbs, db, "tries", 1, 1), KN_OK);
    assert_int_equal(write_as(lbs, db, "tries", 1, 1), KN_OK);
    assert_int_equal(write_as(lbs, db, "tries", 1, 1), KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(msg, "no scores left in tournament tries: 4 of 4 used");
    assert_int_equal(kn_leaderboard_rank(lbs, "tries", o1), 1);
    /* Before a first write, and downwards: owner 2 gets one try only. */
    assert_int_equal(kn_tournament_add_attempt(lbs, db, "tries", o2, -1, msg, sizeof msg), KN_OK);
    assert_int_equal(write_as(lbs, db, "tries", 2, 1), KN_OK);
    assert_int_equal(write_as(lbs, db, "tries", 2, 1), KN_ERR_RESOURCE_EXHAUSTED);
    kn_leaderboard_query q = {.id = "tries", .limit = 10};
    kn_leaderboard_page p;
    assert_int_equal(kn_tournament_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 2);
    assert_int_equal(p.records[0].score, 4); /* four increments counted, no more */
    assert_int_equal(p.records[0].num_score, 4);
    assert_int_equal(p.records[1].score, 1);
    kn_leaderboard_page_free(&p);
    kn_leaderboards_destroy(lbs);
}

/* The notification of code -20 a user holds for tournament id, as content. */
static bool find_note(const char *user_id, const char *id, const char *subject, char *content,
                      size_t cap)
{
    kn_notification *notes = NULL;
    size_t n = 0;
    char *cur = NULL;
    assert_int_equal(kn_notify_list(db, user_id, 100, NULL, &notes, &n, &cur, msg, sizeof msg),
                     KN_OK);
    bool found = false;
    char tag[KN_LB_ID_MAX + 32];
    snprintf(tag, sizeof tag, "\"tournament_id\": \"%s\"", id);
    for (size_t i = 0; i < n && !found; i++)
        if (notes[i].code == KN_NOTIFY_CODE_TOURNAMENT_END && strstr(notes[i].content, tag) &&
            !strcmp(notes[i].subject, subject)) {
            snprintf(content, cap, "%s", notes[i].content);
            found = true;
        }
    kn_notify_free(notes, n);
    kn_free(cur);
    return found;
}

static void the_end_runs_once_per_cluster_and_tells_everyone_their_final_rank(void **state)
{
    (void)state;
    both seen = {0}, other = {0};
    kn_leaderboards *lbs = service(&seen);
    kn_leaderboards *node2 = service(&other); /* a second node, same database */
    for (int i = 11; i <= 14; i++)
        user(i);
    kn_tournament_spec s = spec("final");
    s.end_time = now_s() + 60;
    s.board.sort_order = KN_LB_ASC; /* lap times: low first */
    create(lbs, &s);
    assert_int_equal(write_as(lbs, db, "final", 11, 300), KN_OK);
    assert_int_equal(write_as(lbs, db, "final", 12, 100), KN_OK);
    assert_int_equal(write_as(lbs, db, "final", 13, 200), KN_OK);
    assert_int_equal(join_as(lbs, db, "final", 14), KN_OK);      /* joined, never scored */
    assert_int_equal(write_as(lbs, db, "final", 15, 50), KN_OK); /* no user: no note */
    kn_tournament t; /* node 2 finds the tournament by using it */
    assert_int_equal(kn_tournament_get(node2, db, "final", &t, msg, sizeof msg), KN_OK);
    kn_tournament_deinit(&t);
    assert_int_equal(kn_leaderboards_tick(lbs, db), 0);
    advance_s(61);
    assert_int_equal(kn_leaderboards_tick(node2, db), 1);
    assert_int_equal(kn_leaderboards_tick(lbs, db), 0); /* claimed by node 2 */
    assert_int_equal(kn_leaderboards_tick(node2, db), 0);
    assert_int_equal(other.ends.n, 1);
    assert_int_equal(seen.ends.n, 0);
    assert_string_equal(other.ends.id, "final");
    assert_int_equal(other.ends.end, s.end_time);
    assert_int_equal(other.ends.reset, 0); /* no schedule: one period, expiry 0 */
    assert_int_equal(other.ends.size, 5);
    /* Ranks: 15 (50) 1st but no user, 12 (100) 2nd, 13 3rd, 11 4th, 14 none. */
    static const struct {
        int who;
        const char *rank;
    } want[] = {{12, "\"rank\": 2"}, {13, "\"rank\": 3"}, {11, "\"rank\": 4"}, {14, "\"rank\": 0"}};
    for (size_t i = 0; i < 4; i++) {
        uid o;
        owner(want[i].who, o);
        char content[512];
        if (!find_note(o, "final", "tournament ended", content, sizeof content))
            fail_msg("no end notification for %d", want[i].who);
        if (!strstr(content, want[i].rank))
            fail_msg("user %d: %s, want %s", want[i].who, content, want[i].rank);
    }
    kn_leaderboards_destroy(node2);
    kn_leaderboards_destroy(lbs);
}

static void a_reset_runs_the_reset_callback_and_tells_the_period_ranks(void **state)
{
    (void)state;
    both seen = {0};
    kn_leaderboards *lbs = service(&seen);
    user(21);
    user(22);
    kn_tournament_spec s = spec("hourly_cup");
    s.board.reset_schedule = "0 * * * *";
    create(lbs, &s);
    assert_int_equal(write_as(lbs, db, "hourly_cup", 21, 10), KN_OK);
    assert_int_equal(write_as(lbs, db, "hourly_cup", 22, 20), KN_OK);
    int64_t end = (now_s() / 3600 + 1) * 3600;
    advance_s(end - now_s() + 1);
    assert_int_equal(kn_leaderboards_tick(lbs, db), 1);
    assert_int_equal(kn_leaderboards_tick(lbs, db), 0);
    assert_int_equal(seen.resets.n, 1);
    assert_int_equal(seen.resets.reset, end);
    assert_int_equal(seen.resets.end, 0);
    assert_int_equal(seen.resets.size, 2);
    assert_int_equal(seen.ends.n, 0);
    uid o;
    owner(22, o);
    char content[512];
    assert_true(find_note(o, "hourly_cup", "tournament period ended", content, sizeof content));
    assert_non_null(strstr(content, "\"rank\": 1"));
    assert_non_null(strstr(content, "\"end\": false"));
    /* The new period: members join again (a first write does here). */
    kn_tournament t;
    assert_int_equal(kn_tournament_get(lbs, db, "hourly_cup", &t, msg, sizeof msg), KN_OK);
    assert_int_equal(t.size, 0);
    assert_int_equal(t.prev_reset, end);
    kn_tournament_deinit(&t);
    kn_leaderboards_destroy(lbs);
}

static void lists_filter_by_category_and_time_and_walk_with_a_cursor(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL);
    int64_t t0 = now_s();
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof id, "list_%d", i);
        kn_tournament_spec s = spec(id);
        s.category = 50 + i % 3;             /* 50, 51, 52, 50, 51, 52 */
        s.start_time = t0 + i * 100;         /* later and later */
        s.end_time = i < 3 ? t0 + 10000 : 0; /* the last three never end */
        create(lbs, &s);
    }
    kn_tournament_query q = {.category_start = 50, .category_end = 51, .limit = 2};
    kn_tournament *list = NULL;
    size_t n = 0;
    char *cur = NULL;
    size_t total = 0;
    char *ids[8];
    do {
        q.cursor = cur;
        assert_int_equal(kn_tournament_list(lbs, db, &q, &list, &n, &cur, msg, sizeof msg), KN_OK);
        kn_free((char *)q.cursor);
        for (size_t i = 0; i < n && total < 8; i++)
            ids[total++] = kn_strdup(list[i].id);
        kn_tournaments_free(list, n);
    } while (cur);
    assert_int_equal(total, 4); /* categories 50 and 51, in (category, start) order */
    assert_string_equal(ids[0], "list_0");
    assert_string_equal(ids[1], "list_3");
    assert_string_equal(ids[2], "list_1");
    assert_string_equal(ids[3], "list_4");
    for (size_t i = 0; i < total; i++)
        kn_free(ids[i]);
    /* start at or after t0 + 200, ending by t0 + 10000: only list_2 */
    kn_tournament_query tq = {
        .category_start = 50, .category_end = 52, .start_time = t0 + 200, .end_time = t0 + 10000};
    assert_int_equal(kn_tournament_list(lbs, db, &tq, &list, &n, &cur, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "list_2");
    assert_int_equal(list[0].category, 52);
    assert_null(cur);
    kn_tournaments_free(list, n);
    kn_leaderboards_destroy(lbs);
}

static void a_deleted_account_leaves_every_board_and_the_ranks_close_up(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL);
    size_t loaded;
    assert_int_equal(kn_leaderboards_load(lbs, db, &loaded, msg, sizeof msg), KN_OK);
    kn_leaderboard_spec plain = {.id = "plain_gone"};
    assert_int_equal(kn_leaderboard_create(lbs, db, &plain, msg, sizeof msg), KN_OK);
    create(lbs, &(kn_tournament_spec){.board = {.id = "cup_gone"}, .max_size = 2});
    user(31);
    user(32);
    uid o31, o32;
    owner(31, o31);
    owner(32, o32);
    kn_leaderboard_write_opts w = {.score = 100, .operator_ = KN_LB_OP_DEFAULT};
    assert_int_equal(kn_leaderboard_write(lbs, db, "plain_gone", o31, &w, NULL, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(write_as(lbs, db, "cup_gone", 31, 100), KN_OK);
    w.score = 50;
    assert_int_equal(kn_leaderboard_write(lbs, db, "plain_gone", o32, &w, NULL, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(write_as(lbs, db, "cup_gone", 32, 50), KN_OK);
    assert_int_equal(kn_leaderboard_rank(lbs, "plain_gone", o32), 2);
    pgtest_sql(db, "DELETE FROM users WHERE id = '%s'", o31); /* the account goes */
    kn_leaderboards_tick(lbs, db);
    assert_int_equal(kn_leaderboard_rank(lbs, "plain_gone", o31), 0);
    assert_int_equal(kn_leaderboard_rank(lbs, "plain_gone", o32), 1);
    assert_int_equal(kn_leaderboard_rank(lbs, "cup_gone", o32), 1);
    kn_leaderboard_query q = {.id = "cup_gone", .limit = 10};
    kn_leaderboard_page p;
    assert_int_equal(kn_tournament_records_list(lbs, db, &q, &p, msg, sizeof msg), KN_OK);
    assert_int_equal(p.n_records, 1);
    assert_int_equal(p.rank_count, 1);
    kn_leaderboard_page_free(&p);
    kn_tournament t; /* and its seat is free again */
    assert_int_equal(kn_tournament_get(lbs, db, "cup_gone", &t, msg, sizeof msg), KN_OK);
    assert_int_equal(t.size, 1);
    kn_tournament_deinit(&t);
    kn_leaderboards_destroy(lbs);
}

static void refusals_carry_stable_codes_and_messages(void **state)
{
    (void)state;
    kn_leaderboards *lbs = service(NULL);
    kn_leaderboard_spec plain = {.id = "plain_board"};
    assert_int_equal(kn_leaderboard_create(lbs, db, &plain, msg, sizeof msg), KN_OK);
    assert_int_equal(write_as(lbs, db, "plain_board", 1, 1), KN_ERR_NOT_FOUND);
    assert_string_equal(msg, "tournament plain_board does not exist");
    kn_tournament_spec s = spec("plain_board");
    assert_int_equal(kn_tournament_create(lbs, db, &s, msg, sizeof msg), KN_ERR_ALREADY_EXISTS);
    assert_string_equal(msg, "leaderboard plain_board exists and is not a tournament");
    s = spec("cup");
    s.board.authoritative = true;
    create(lbs, &s);
    create(lbs, &s); /* the same again: fine */
    s.max_size = 9;
    assert_int_equal(kn_tournament_create(lbs, db, &s, msg, sizeof msg), KN_ERR_ALREADY_EXISTS);
    assert_string_equal(msg, "tournament cup exists with other settings");
    assert_int_equal(
        kn_leaderboard_create(lbs, db, &(kn_leaderboard_spec){.id = "cup"}, msg, sizeof msg),
        KN_ERR_ALREADY_EXISTS);
    assert_string_equal(msg, "leaderboard cup exists as a tournament");
    uid o;
    owner(1, o);
    kn_leaderboard_write_opts w = {.score = 1, .operator_ = KN_LB_OP_DEFAULT};
    assert_int_equal(kn_leaderboard_write(lbs, db, "cup", o, &w, NULL, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "cup is a tournament: write with tournament_record_write");
    w.from_client = true;
    assert_int_equal(kn_tournament_record_write(lbs, db, "cup", o, &w, NULL, msg, sizeof msg),
                     KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "tournament cup is authoritative: only the server writes to it");
    assert_int_equal(kn_leaderboard_record_delete(lbs, db, "cup", o, true, msg, sizeof msg),
                     KN_ERR_PERMISSION_DENIED);
    s = spec("bad");
    s.category = 128;
    assert_int_equal(kn_tournament_create(lbs, db, &s, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "category must be 0-127, not 128");
    s = spec("bad");
    s.start_time = 2000;
    s.end_time = 1000;
    assert_int_equal(kn_tournament_create(lbs, db, &s, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "end time must be 0 (never) or after the start time");
    s = spec("bad");
    s.title = "two\nlines";
    assert_int_equal(kn_tournament_create(lbs, db, &s, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    kn_tournament_query q = {.category_start = 5, .category_end = 2};
    kn_tournament *list = NULL;
    size_t n = 0;
    char *cur = NULL;
    assert_int_equal(kn_tournament_list(lbs, db, &q, &list, &n, &cur, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "categories must be a range within 0-127, not 5-2");
    q = (kn_tournament_query){.category_end = 127, .cursor = "tn1:x"};
    assert_int_equal(kn_tournament_list(lbs, db, &q, &list, &n, &cur, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "cursor is malformed");
    assert_int_equal(kn_tournament_cursor_check("lb1:0", msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_tournament_cursor_check("tn1:3:100:cup", msg, sizeof msg), KN_OK);
    assert_int_equal(kn_tournament_delete(lbs, db, "plain_board", msg, sizeof msg),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(kn_tournament_delete(lbs, db, "cup", msg, sizeof msg), KN_OK);
    assert_int_equal(kn_tournament_join(lbs, db, "cup", o, msg, sizeof msg), KN_ERR_NOT_FOUND);
    assert_string_equal(msg, "tournament cup does not exist");
    kn_leaderboards_destroy(lbs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_are_accepted_only_inside_the_window),
        cmocka_unit_test(a_required_join_comes_before_writes_and_an_optional_one_comes_with_them),
        cmocka_unit_test(parallel_joins_never_pass_max_size),
        cmocka_unit_test(max_num_score_counts_the_writes_and_add_attempt_raises_it_for_one_owner),
        cmocka_unit_test(the_end_runs_once_per_cluster_and_tells_everyone_their_final_rank),
        cmocka_unit_test(a_reset_runs_the_reset_callback_and_tells_the_period_ranks),
        cmocka_unit_test(lists_filter_by_category_and_time_and_walk_with_a_cursor),
        cmocka_unit_test(a_deleted_account_leaves_every_board_and_the_ranks_close_up),
        cmocka_unit_test(refusals_carry_stable_codes_and_messages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
