/* The matchmaker through its header: tickets, the matcher's rules, the
 * processor seam and its fallback, with a stepped clock and manual passes
 * (interval 0). Also the extended query language it shares with listing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "failalloc.h"
#include "kn_error.h"
#include "kn_matchmaker.h"
#include "kn_mem.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int64_t clock_ms;
static int64_t fake_now(void)
{
    return clock_ms;
}

/* What `matched` saw: groups as lists of user ids. */
#define MAX_SEEN 256
static struct {
    size_t n;
    char users[MAX_SEEN][KN_MM_COUNT_MAX][37];
    size_t n_users[MAX_SEEN];
} seen;

static void on_matched(void *ud, kn_mm_ticket *const *t, size_t n)
{
    (void)ud;
    assert_true(seen.n < MAX_SEEN);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < t[i]->n_players; j++)
            snprintf(seen.users[seen.n][k++], 37, "%s", t[i]->players[j].user_id);
    seen.n_users[seen.n++] = k;
}

static kn_matchmaker *make(uint32_t max_intervals)
{
    memset(&seen, 0, sizeof seen);
    clock_ms = 1000;
    kn_matchmaker_config cfg = {
        .max_intervals = max_intervals, .now_ms = fake_now, .matched = on_matched};
    kn_matchmaker *mm;
    assert_int_equal(kn_matchmaker_create(&cfg, &mm), KN_OK);
    return mm;
}

/* A ticket of user "u<i>" (session "s<i>") with region and skill. */
static int add(kn_matchmaker *mm, int i, const char *region, double skill, const char *query,
               int min, int max, int mult, char id[37])
{
    kn_mm_player p = {.conn = (uint64_t)i};
    snprintf(p.user_id, sizeof p.user_id, "u%d", i);
    snprintf(p.session_id, sizeof p.session_id, "s%d", i);
    snprintf(p.username, sizeof p.username, "n%d", i);
    kn_mm_prop props[2] = {{.is_num = false}, {.is_num = true, .num = skill}};
    snprintf(props[0].name, sizeof props[0].name, "region");
    snprintf(props[0].str, sizeof props[0].str, "%s", region);
    snprintf(props[1].name, sizeof props[1].name, "skill");
    kn_mm_request req = {.players = &p,
                         .n_players = 1,
                         .query = query,
                         .min_count = min,
                         .max_count = max,
                         .count_multiple = mult,
                         .props = props,
                         .n_props = 2};
    char msg[256] = "", tmp[37];
    int rc = kn_mm_add(mm, &req, id ? id : tmp, msg, sizeof msg);
    if (rc) assert_true(*msg);
    return rc;
}

/* add's ticket with widening rules (the same user, region and skill). */
static int add_widening(kn_matchmaker *mm, int i, double skill, const char *query,
                        const kn_mm_widen *w, size_t n_w, char *msg, size_t cap)
{
    kn_mm_player p = {.conn = (uint64_t)i};
    snprintf(p.user_id, sizeof p.user_id, "u%d", i);
    snprintf(p.session_id, sizeof p.session_id, "s%d", i);
    kn_mm_prop prop = {.is_num = true, .num = skill};
    snprintf(prop.name, sizeof prop.name, "skill");
    kn_mm_request req = {.players = &p,
                         .n_players = 1,
                         .query = query,
                         .min_count = 2,
                         .max_count = 2,
                         .props = &prop,
                         .n_props = 1,
                         .widen = w,
                         .n_widen = n_w};
    char id[37];
    *msg = '\0';
    return kn_mm_add(mm, &req, id, msg, cap);
}

static bool together(size_t g, const char *a, const char *b)
{
    bool fa = false, fb = false;
    for (size_t i = 0; i < seen.n_users[g]; i++) {
        fa |= !strcmp(seen.users[g][i], a);
        fb |= !strcmp(seen.users[g][i], b);
    }
    return fa && fb;
}

static void two_players_with_mutual_queries_are_matched(void **state)
{
    (void)state;
    kn_matchmaker *mm = make(2);
    assert_int_equal(add(mm, 1, "eu", 10, "+properties.region:eu", 2, 2, 1, NULL), KN_OK);
    assert_int_equal(add(mm, 2, "eu", 12, "+region:eu +skill:>=5 +skill:<=15", 2, 2, 1, NULL),
                     KN_OK);
    kn_mm_process(mm);
    assert_int_equal(seen.n, 1);
    assert_true(together(0, "u1", "u2"));
    kn_matchmaker_stats st;
    kn_matchmaker_stats_get(mm, &st);
    assert_int_equal(st.tickets, 0);
    kn_matchmaker_destroy(mm);
}

static void queries_that_must_not_match_never_do(void **state)
{
    (void)state;
    kn_matchmaker *mm = make(1);
    /* u2's query refuses u1's region: one-sided acceptance is not enough. */
    assert_int_equal(add(mm, 1, "eu", 10, "*", 2, 2, 1, NULL), KN_OK);
    assert_int_equal(add(mm, 2, "us", 10, "+region:us", 2, 2, 1, NULL), KN_OK);
    assert_int_equal(add(mm, 3, "eu", 10, "-region:eu", 2, 2, 1, NULL), KN_OK);
    assert_int_equal(add(mm, 4, "eu", 90, "+skill:<=20", 2, 2, 1, NULL), KN_OK);
    for (int i = 0; i < 5; i++)
        kn_mm_process(mm);
    /* u4 accepts u1 (skill 10 <= 20) and u1 accepts anyone: the only pair. */
    assert_int_equal(seen.n, 1);
    assert_true(together(0, "u1", "u4"));
    for (size_t g = 0; g < seen.n; g++) {
        assert_false(together(g, "u1", "u2"));
        assert_false(together(g, "u2", "u3"));
        assert_false(together(g, "u1", "u3"));
    }
    kn_matchmaker_destroy(mm);
}

static void count_multiple_sets_the_group_size(void **state)
{
    (void)state;
    kn_matchmaker *mm = make(1);
    for (int i = 1; i <= 7; i++)
        assert_int_equal(add(mm, i, "eu", 10, "*", 2, 8, 2, NULL), KN_OK);
    kn_mm_process(mm); /* 7 waiting, max 8 not reached: max_intervals 1 takes 6 at once */
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.n_users[0], 6);
    kn_matchmaker_destroy(mm);
}

static void max_count_is_preferred_for_max_intervals(void **state)
{
    (void)state;
    kn_matchmaker *mm = make(3);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(add(mm, i, "eu", 10, "*", 2, 4, 1, NULL), KN_OK);
    kn_mm_process(mm);
    kn_mm_process(mm);
    assert_int_equal(seen.n, 0); /* holding out for 4 */
    assert_int_equal(add(mm, 4, "eu", 10, "*", 2, 4, 1, NULL), KN_OK);
    kn_mm_process(mm);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.n_users[0], 4);
    for (int i = 5; i <= 7; i++)
        assert_int_equal(add(mm, i, "eu", 10, "*", 2, 4, 1, NULL), KN_OK);
    kn_mm_process(mm);
    kn_mm_process(mm);
    assert_int_equal(seen.n, 1);
    kn_mm_process(mm); /* the third interval: fewer is fine */
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.n_users[1], 3);
    kn_matchmaker_destroy(mm);
}

static void boosts_pick_the_best_candidates(void **state)
{
    (void)state;
    kn_matchmaker *mm = make(1);
    assert_int_equal(add(mm, 1, "eu", 10, "+region:eu skill:10^50", 2, 2, 1, NULL), KN_OK);
    assert_int_equal(add(mm, 2, "eu", 30, "*", 2, 2, 1, NULL), KN_OK);
    assert_int_equal(add(mm, 3, "eu", 10, "*", 2, 2, 1, NULL), KN_OK);
    kn_mm_process(mm);
    assert_int_equal(seen.n, 1);
    assert_true(together(0, "u1", "u3")); /* u2 is older, u3 scores */
    kn_matchmaker_destroy(mm);
}

static void tickets_die_with_their_session_and_are_capped(void **state)
{
    (void)state;
    kn_matchmaker *mm = make(1);
    char id[37], msg[128];
    assert_int_equal(add(mm, 1, "eu", 10, "*", 2, 2, 1, id), KN_OK);
    assert_int_equal(add(mm, 1, "eu", 10, "*", 2, 2, 1, NULL), KN_OK);
    assert_int_equal(add(mm, 1, "eu", 10, "*", 2, 2, 1, NULL), KN_OK);
    assert_int_equal(add(mm, 1, "eu", 10, "*", 2, 2, 1, NULL), KN_ERR_RESOURCE_EXHAUSTED);
    assert_int_equal(kn_mm_remove(mm, id, "s2", msg, sizeof msg), KN_ERR_NOT_FOUND);
    assert_string_equal(msg, "ticket not found");
    assert_int_equal(kn_mm_remove(mm, id, "s1", msg, sizeof msg), KN_OK);
    assert_int_equal(kn_mm_remove_session(mm, "s1"), 2);
    /* A user's own tickets never match each other. */
    assert_int_equal(add(mm, 1, "eu", 10, "*", 2, 2, 1, NULL), KN_OK);
    assert_int_equal(add(mm, 1, "eu", 10, "*", 2, 2, 1, NULL), KN_OK);
    kn_mm_process(mm);
    assert_int_equal(seen.n, 0);
    kn_matchmaker_destroy(mm);
}

static void bad_tickets_are_refused_with_the_reason(void **state)
{
    (void)state;
    kn_matchmaker *mm = make(1);
    assert_int_equal(add(mm, 1, "eu", 10, "*", 1, 2, 1, NULL), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(add(mm, 1, "eu", 10, "*", 3, 2, 1, NULL), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(add(mm, 1, "eu", 10, "*", 3, 3, 2, NULL), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(add(mm, 1, "eu", 10, "*", 2, 65, 1, NULL), KN_ERR_INVALID_ARGUMENT);
    kn_mm_player p = {.conn = 1, .user_id = "u1", .session_id = "s1"};
    kn_mm_request req = {.players = &p,
                         .n_players = 1,
                         .query = "+region:eu skill>3",
                         .min_count = 2,
                         .max_count = 2};
    char id[37], msg[256] = "";
    assert_int_equal(kn_mm_add(mm, &req, id, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "at position 11"));
    kn_matchmaker_destroy(mm);
}

/* A processor that puts one ticket in two groups: refused, the built-in runs. */
static int bad_processor(void *ud, const kn_mm_pass *pass, kn_mm_group **groups, size_t *n,
                         char *msg, size_t cap)
{
    (void)ud, (void)msg, (void)cap;
    if (pass->n < 2) return KN_ERR_NOT_FOUND;
    *groups = kn_calloc(2, sizeof **groups);
    for (int i = 0; i < 2; i++) {
        (*groups)[i].tickets = kn_calloc(2, sizeof(size_t));
        (*groups)[i].tickets[0] = 0;
        (*groups)[i].tickets[1] = 1;
        (*groups)[i].n = 2;
    }
    *n = 2;
    return KN_OK;
}

/* A processor pairing the newest two. */
static int newest_pair(void *ud, const kn_mm_pass *pass, kn_mm_group **groups, size_t *n, char *msg,
                       size_t cap)
{
    (void)ud, (void)msg, (void)cap;
    *groups = NULL;
    *n = 0;
    if (pass->n < 2) return KN_OK;
    *groups = kn_calloc(1, sizeof **groups);
    (*groups)[0].tickets = kn_calloc(2, sizeof(size_t));
    (*groups)[0].tickets[0] = pass->n - 1;
    (*groups)[0].tickets[1] = pass->n - 2;
    (*groups)[0].n = 2;
    *n = 1;
    return KN_OK;
}

/* A processor during which session s2 ends: it pairs the first two tickets,
 * u2's among them. */
static kn_matchmaker *ending_mm;
static int pair_while_s2_ends(void *ud, const kn_mm_pass *pass, kn_mm_group **groups, size_t *n,
                              char *msg, size_t cap)
{
    (void)ud, (void)msg, (void)cap;
    assert_int_equal(kn_mm_remove_session(ending_mm, "s2"), 0); /* the pass holds the lock */
    *groups = NULL;
    *n = 0;
    if (pass->n < 2) return KN_OK;
    *groups = kn_calloc(1, sizeof **groups);
    (*groups)[0].tickets = kn_calloc(2, sizeof(size_t));
    (*groups)[0].tickets[0] = 0;
    (*groups)[0].tickets[1] = 1;
    (*groups)[0].n = 2;
    *n = 1;
    return KN_OK;
}

static void a_session_ending_during_a_pass_is_in_no_group_and_loses_its_tickets(void **state)
{
    (void)state;
    kn_matchmaker *mm = ending_mm = make(1);
    kn_mm_processor p = {pair_while_s2_ends, NULL};
    kn_matchmaker_set_processor(mm, &p);
    assert_int_equal(add(mm, 1, "eu", 10, "*", 2, 2, 1, NULL), KN_OK);
    assert_int_equal(add(mm, 2, "eu", 10, "*", 2, 2, 1, NULL), KN_OK);
    kn_mm_process(mm);
    assert_int_equal(seen.n, 0); /* the group with u2 was dropped */
    kn_matchmaker_stats st;
    kn_matchmaker_stats_get(mm, &st);
    assert_int_equal(st.tickets, 1); /* u1's stays, u2's went */
    kn_matchmaker_set_processor(mm, NULL);
    assert_int_equal(add(mm, 3, "eu", 10, "*", 2, 2, 1, NULL), KN_OK);
    kn_mm_process(mm);
    assert_int_equal(seen.n, 1);
    assert_true(together(0, "u1", "u3"));
    kn_matchmaker_destroy(mm);
}

static void a_custom_processor_replaces_the_matcher_and_falls_back_on_error(void **state)
{
    (void)state;
    kn_matchmaker *mm = make(1);
    kn_mm_processor p = {newest_pair, NULL};
    kn_matchmaker_set_processor(mm, &p);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(add(mm, i, "eu", 10, "*", 2, 2, 1, NULL), KN_OK);
    kn_mm_process(mm);
    assert_int_equal(seen.n, 1);
    assert_true(together(0, "u2", "u3"));
    p.process = bad_processor;
    kn_matchmaker_set_processor(mm, &p);
    assert_int_equal(add(mm, 4, "eu", 10, "*", 2, 2, 1, NULL), KN_OK);
    kn_mm_process(mm);
    assert_int_equal(seen.n, 2);
    assert_true(together(1, "u1", "u4"));
    kn_matchmaker_stats st;
    kn_matchmaker_stats_get(mm, &st);
    assert_int_equal(st.fallbacks, 1);
    kn_matchmaker_destroy(mm);
}

static void indexed_and_naive_matchers_form_only_valid_groups(void **state)
{
    (void)state;
    /* Many tickets, several regions, skill windows: both matchers' groups
     * are valid and disjoint; the indexed one forms groups too. */
    for (int naive = 0; naive < 2; naive++) {
        kn_matchmaker *mm = make(1);
        kn_mm_processor p = {naive ? kn_mm_process_naive : kn_mm_process_builtin, NULL};
        kn_matchmaker_set_processor(mm, &p);
        static const char *const regions[] = {"eu", "us", "asia"};
        for (int i = 0; i < 300; i++) {
            int skill = (i * 37) % 100;
            char q[96];
            snprintf(q, sizeof q, "+region:%s +skill:>=%d +skill:<=%d", regions[i % 3], skill - 10,
                     skill + 10);
            assert_int_equal(add(mm, i, regions[i % 3], skill, q, 2, 4, 1, NULL), KN_OK);
        }
        kn_mm_process(mm);
        kn_matchmaker_stats st;
        kn_matchmaker_stats_get(mm, &st);
        assert_int_equal(st.fallbacks, 0); /* groups_sound accepted every group */
        assert_true(seen.n > 40);
        kn_matchmaker_destroy(mm);
    }
}

static void a_ticket_widening_its_window_matches_once_it_is_wide_enough(void **state)
{
    (void)state;
    kn_matchmaker *mm = make(1);
    char msg[256];
    /* u1 looks for 900-1100, growing by 100 a pass up to 300; u2 (1250)
     * and u3 (2000) accept anyone. */
    kn_mm_widen w = {"skill", 100, 300};
    assert_int_equal(add_widening(mm, 1, 1000, "+skill:>=900 +skill:<=1100", &w, 1, msg, 256),
                     KN_OK);
    assert_int_equal(add_widening(mm, 3, 2000, "*", NULL, 0, msg, 256), KN_OK);
    kn_mm_process(mm); /* waited 0 passes: 900-1100 */
    kn_mm_process(mm); /* 1: 800-1200 */
    assert_int_equal(seen.n, 0);
    /* 2000 stays out of reach: the window stops at 700-1300. */
    for (int i = 0; i < 5; i++)
        kn_mm_process(mm);
    assert_int_equal(seen.n, 0);
    assert_int_equal(add_widening(mm, 2, 1250, "*", NULL, 0, msg, 256), KN_OK);
    kn_mm_process(mm); /* widened 300 by now: 1250 is in */
    assert_int_equal(seen.n, 1);
    assert_true(together(0, "u1", "u2"));
    kn_matchmaker_destroy(mm);

    /* Step by step: 1250 needs two passes of waiting at 100 a pass. */
    mm = make(1);
    assert_int_equal(add_widening(mm, 1, 1000, "+skill:>=900 +skill:<=1100", &w, 1, msg, 256),
                     KN_OK);
    assert_int_equal(add_widening(mm, 2, 1250, "*", NULL, 0, msg, 256), KN_OK);
    kn_mm_process(mm);
    kn_mm_process(mm);
    assert_int_equal(seen.n, 0);
    kn_mm_process(mm); /* waited 2: 800-1300 */
    assert_int_equal(seen.n, 1);
    kn_matchmaker_destroy(mm);

    /* Mutual: a widening ticket is still held to the other's query. */
    mm = make(1);
    assert_int_equal(add_widening(mm, 1, 1000, "+skill:>=900 +skill:<=1100", &w, 1, msg, 256),
                     KN_OK);
    assert_int_equal(add_widening(mm, 2, 1250, "+skill:>=1200", NULL, 0, msg, 256), KN_OK);
    for (int i = 0; i < 6; i++)
        kn_mm_process(mm);
    assert_int_equal(seen.n, 0);
    kn_matchmaker_destroy(mm);
}

static void the_last_passes_and_the_waiting_pool_can_be_read(void **state)
{
    (void)state;
    kn_matchmaker *mm = make(1);
    char msg[256];
    kn_mm_widen w = {"skill", 100, 300};
    assert_int_equal(add_widening(mm, 1, 1000, "+skill:<=1100", &w, 1, msg, 256), KN_OK);
    assert_int_equal(add_widening(mm, 2, 1000, "*", NULL, 0, msg, 256), KN_OK);
    assert_int_equal(add_widening(mm, 3, 5000, "+skill:>=4000", NULL, 0, msg, 256), KN_OK);
    kn_mm_pass_record r[KN_MM_PASS_HISTORY];
    assert_int_equal(kn_matchmaker_passes(mm, r, KN_MM_PASS_HISTORY), 0);
    kn_mm_process(mm); /* u1 and u2 meet; u3 waits */
    clock_ms += 1000;
    kn_mm_process(mm);
    clock_ms += 500;
    assert_int_equal(kn_matchmaker_passes(mm, r, KN_MM_PASS_HISTORY), 2);
    assert_int_equal(r[0].tickets, 1); /* newest first */
    assert_int_equal(r[0].groups, 0);
    assert_int_equal(r[0].ago_ms, 500);
    assert_int_equal(r[1].tickets, 3);
    assert_int_equal(r[1].groups, 1);
    assert_int_equal(r[1].ago_ms, 1500);
    assert_false(r[1].fallback);
    assert_int_equal(kn_matchmaker_passes(mm, r, 1), 1);
    /* The pool as a processor script sees it: u3, waited two passes. */
    char *json = kn_matchmaker_pool_json(mm, 10);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"intervals\":2"));
    assert_non_null(strstr(json, "\"query\":\"+skill:>=4000\""));
    assert_null(strstr(json, "\"u1\""));
    kn_free(json);
    json = kn_matchmaker_pool_json(mm, 0);
    assert_string_equal(json, "[]");
    kn_free(json);
    /* Past the history's length only the last ones are kept. */
    for (int i = 0; i < KN_MM_PASS_HISTORY + 5; i++)
        kn_mm_process(mm);
    assert_int_equal(kn_matchmaker_passes(mm, r, KN_MM_PASS_HISTORY), KN_MM_PASS_HISTORY);
    kn_matchmaker_stats st;
    kn_matchmaker_stats_get(mm, &st);
    assert_int_equal(st.passes, KN_MM_PASS_HISTORY + 7);
    assert_true(st.pass_us >= st.pass_us_max);
    kn_matchmaker_destroy(mm);
}

static void bad_widening_rules_are_refused_with_the_reason(void **state)
{
    (void)state;
    kn_matchmaker *mm = make(1);
    char msg[256];
    const char *q = "+skill:>=900 +skill:<=1100";
    kn_mm_widen zero = {"skill", 0, 100}, nan_max = {"skill", 10, NAN}, small = {"skill", 50, 10},
                other = {"rank", 10, 100}, bad = {"a b", 10, 100}, ok = {"skill", 10, 100};
    assert_int_equal(add_widening(mm, 1, 1, q, &zero, 1, msg, 256), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "widen \"skill\": step must be a finite number above 0");
    assert_int_equal(add_widening(mm, 1, 1, q, &nan_max, 1, msg, 256), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "widen \"skill\": max must be a finite number at least step");
    assert_int_equal(add_widening(mm, 1, 1, q, &small, 1, msg, 256), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(add_widening(mm, 1, 1, q, &other, 1, msg, 256), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg,
                        "widen \"rank\": the query has no + or optional comparison (>=, >, <=, "
                        "<) on it");
    /* A must-not comparison or an equality is not widened. */
    assert_int_equal(add_widening(mm, 1, 1, "-skill:>=2000 +skill:5", &ok, 1, msg, 256),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(add_widening(mm, 1, 1, q, &bad, 1, msg, 256), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "widen 0: a property name"));
    kn_mm_widen twice[2] = {ok, ok}, five[5] = {ok, ok, ok, ok, ok};
    assert_int_equal(add_widening(mm, 1, 1, q, twice, 2, msg, 256), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "widen \"skill\": given twice");
    assert_int_equal(add_widening(mm, 1, 1, q, five, 5, msg, 256), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "widen: at most 4 rules");
    assert_int_equal(add_widening(mm, 1, 1, "skill:<5", &ok, 1, msg, 256), KN_OK);
    kn_matchmaker_stats st;
    kn_matchmaker_stats_get(mm, &st);
    assert_int_equal(st.tickets, 1);
    kn_matchmaker_destroy(mm);
}

static void the_query_language_parses_boosts_and_star_and_names_positions(void **state)
{
    (void)state;
    char msg[256];
    kn_match_query *q;
    assert_int_equal(
        kn_match_query_parse("* +mode:ffa^3 name:\"a b\"^2 skill:>=3", &q, msg, sizeof msg), KN_OK);
    int score;
    assert_true(kn_match_query_eval(q, "{\"mode\":\"ffa\",\"name\":\"a b\",\"skill\":1}", &score));
    assert_int_equal(score, 5);
    kn_match_query_free(q);
    static const char *const bad[] = {"-*",   "a:b^x",   "a:b^1001", "x:\"open",
                                      "a:>z", "nocolon", "label.:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg[0] = '\0';
        assert_int_equal(kn_match_query_parse(bad[i], &q, msg, sizeof msg),
                         KN_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(msg, "at position 0"));
    }
    assert_int_equal(kn_match_query_parse("a:1 b:^", &q, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "at position 4"));
}

static int create_once(void *arg)
{
    (void)arg;
    kn_matchmaker_config cfg = {.now_ms = fake_now};
    kn_matchmaker *mm;
    int rc = kn_matchmaker_create(&cfg, &mm);
    if (rc) return rc;
    kn_mm_player p = {.conn = 1, .user_id = "u1", .session_id = "s1"};
    kn_mm_request req = {
        .players = &p, .n_players = 1, .query = "+a:b", .min_count = 2, .max_count = 2};
    char id[37], msg[128];
    rc = kn_mm_add(mm, &req, id, msg, sizeof msg);
    kn_matchmaker_destroy(mm);
    return rc;
}

static void create_and_add_survive_every_failed_allocation(void **state)
{
    (void)state;
    assert_true(failalloc_sweep(create_once, NULL) > 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_players_with_mutual_queries_are_matched),
        cmocka_unit_test(queries_that_must_not_match_never_do),
        cmocka_unit_test(count_multiple_sets_the_group_size),
        cmocka_unit_test(max_count_is_preferred_for_max_intervals),
        cmocka_unit_test(boosts_pick_the_best_candidates),
        cmocka_unit_test(tickets_die_with_their_session_and_are_capped),
        cmocka_unit_test(bad_tickets_are_refused_with_the_reason),
        cmocka_unit_test(a_custom_processor_replaces_the_matcher_and_falls_back_on_error),
        cmocka_unit_test(a_session_ending_during_a_pass_is_in_no_group_and_loses_its_tickets),
        cmocka_unit_test(indexed_and_naive_matchers_form_only_valid_groups),
        cmocka_unit_test(a_ticket_widening_its_window_matches_once_it_is_wide_enough),
        cmocka_unit_test(bad_widening_rules_are_refused_with_the_reason),
        cmocka_unit_test(the_last_passes_and_the_waiting_pool_can_be_read),
        cmocka_unit_test(the_query_language_parses_boosts_and_star_and_names_positions),
        cmocka_unit_test(create_and_add_survive_every_failed_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
