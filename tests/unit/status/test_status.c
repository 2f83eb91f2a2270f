/* kn_status against the Postgres named by the PG* environment (the suite
 * runs inside pg_virtualenv) and a real tracker whose sink records what it
 * would send. Covered: kn_status_resolve (unknown users, the caller, names,
 * a user who blocked the caller, duplicates, every input limit and its
 * message); follow, unfollow and update on the tracker (events reach the
 * followers only, followers never see each other, a change is a leave and
 * a join, offline is a leave, the follow limit and its message, a session
 * following the most users still publishing), and kn_status_block. */
#include "pgtest.h"
#include "kn_codec.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_status.h"
#include "kn_stream.h"

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

/* --- a recording sink --------------------------------------------------------------- */

#define MAX_SENT 16

/* One send: to whom, and the StatusPresenceEvent it carried (first join
 * and first leave, "-" when absent). */
typedef struct sent {
    char to[64];
    int type;
    size_t joins, leaves;
    char join[64], leave[64];
} sent;

static sent sends[MAX_SENT];
static size_t n_sends;

static int cmp_conn(const void *a, const void *b)
{
    kn_conn_id x = *(const kn_conn_id *)a, y = *(const kn_conn_id *)b;
    return (x > y) - (x < y);
}

static int record(void *ud, const kn_conn_id *conns, size_t n, uint8_t channel, const uint8_t *data,
                  size_t len, bool reliable)
{
    (void)ud, (void)channel, (void)reliable;
    assert_true(n_sends < MAX_SENT);
    sent *s = &sends[n_sends++];
    kn_conn_id sorted[16];
    assert_true(n <= 16);
    memcpy(sorted, conns, n * sizeof *conns);
    qsort(sorted, n, sizeof *sorted, cmp_conn);
    for (size_t i = 0; i < n; i++)
        snprintf(s->to + strlen(s->to), sizeof s->to - strlen(s->to), "%s%llu", i ? "," : "",
                 (unsigned long long)sorted[i]);
    kn_envelope *env = NULL;
    assert_int_equal(kn_envelope_decode(data, len, &env), KN_OK);
    s->type = (int)env->message_case;
    snprintf(s->join, sizeof s->join, "-");
    snprintf(s->leave, sizeof s->leave, "-");
    if (env->message_case == KAOS__V1__ENVELOPE__MESSAGE_STATUS_PRESENCE) {
        const Kaos__V1__StatusPresenceEvent *e = env->status_presence;
        s->joins = e->n_joins;
        s->leaves = e->n_leaves;
        if (e->n_joins)
            snprintf(s->join, sizeof s->join, "%s:%s", e->joins[0]->username, e->joins[0]->status);
        if (e->n_leaves)
            snprintf(s->leave, sizeof s->leave, "%s:%s", e->leaves[0]->username,
                     e->leaves[0]->status);
    }
    kn_envelope_free(env);
    return KN_OK;
}

static kn_tracker *tracker;
static kn_status *status;

static int with_tracker(uint32_t max_per_session)
{
    kn_tracker_config cfg;
    kn_tracker_config_default(&cfg);
    if (max_per_session) cfg.max_per_session = max_per_session;
    kn_tracker_sink sink = {record, NULL};
    n_sends = 0;
    memset(sends, 0, sizeof sends);
    if (kn_tracker_create(&cfg, &sink, &tracker)) return -1;
    return kn_status_create(tracker, &status);
}

static int tracker_up(void **state)
{
    (void)state;
    return with_tracker(0);
}

static int tracker_down(void **state)
{
    (void)state;
    kn_status_destroy(status);
    kn_tracker_destroy(tracker);
    status = NULL;
    tracker = NULL;
    return 0;
}

/* --- fixture ------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    return pgtest_create(&pg, "kaos_status", &db);
}

static int teardown(void **state)
{
    (void)state;
    kn_db_close(db);
    pgtest_drop(&pg);
    return 0;
}

/* A fresh user named `name` with a deterministic id; writes the id to `id`. */
static void user(const char *name, char id[37])
{
    static unsigned serial;
    snprintf(id, 37, "5a000000-0000-4000-8000-%012x", ++serial);
    pgtest_sql(db, "INSERT INTO users (id, username) VALUES ('%s', '%s')", id, name);
}

/* `blocker` blocked `blocked` (the edge friends_block leaves). */
static void block(const char *blocker, const char *blocked)
{
    pgtest_sql(db,
               "INSERT INTO user_edge (source_id, destination_id, state, position)"
               " VALUES ('%s', '%s', 3, 1)",
               blocker, blocked);
}

static int by_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* A session of user_id on connection conn. */
static kn_presence session(kn_conn_id conn, const char *user_id, const char *username)
{
    kn_presence p = {.conn = conn};
    snprintf(p.user_id, sizeof p.user_id, "%s", user_id);
    snprintf(p.session_id, sizeof p.session_id, "5e000000-0000-4000-8000-%012llx",
             (unsigned long long)conn);
    snprintf(p.username, sizeof p.username, "%s", username);
    return p;
}

/* --- resolve -------------------------------------------------------------------------- */

static void resolve_skips_unknown_users_the_caller_and_blockers_and_lists_each_once(void **state)
{
    (void)state;
    char me[37], b[37], c[37], d[37], e[37];
    user("res-me", me);
    user("res-b", b);
    user("res-c", c);
    user("res-d", d);
    user("res-e", e);
    block(d, me); /* d blocked the caller: skipped */
    block(me, e); /* the caller's own block does not stop a follow */
    const char *ids[] = {b, "5a000000-0000-4000-8000-ffffffffffff", me, d, b, e};
    const char *names[] = {"res-c", "res-b", "nobody", "res-d", "res-me"};
    kn_status_user *users = NULL;
    size_t n = 0;
    assert_int_equal(kn_status_resolve(db, me, ids, 6, names, 5, &users, &n, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(n, 3);
    qsort(users, n, sizeof *users, by_id);
    assert_string_equal(users[0], b);
    assert_string_equal(users[1], c);
    assert_string_equal(users[2], e);
    kn_free(users);

    /* Nothing asked, or nothing followable: none, and no allocation. */
    assert_int_equal(kn_status_resolve(db, me, NULL, 0, NULL, 0, &users, &n, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(n, 0);
    assert_null(users);
    const char *only_blocker[] = {d};
    assert_int_equal(
        kn_status_resolve(db, me, only_blocker, 1, NULL, 0, &users, &n, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 0);
    assert_null(users);
}

static void resolve_refuses_bad_input_with_a_message(void **state)
{
    (void)state;
    char me[37];
    user("bad-me", me);
    kn_status_user *users = NULL;
    size_t n = 0;
    const char *ok[] = {me};
    assert_int_equal(kn_status_resolve(db, "nope", ok, 1, NULL, 0, &users, &n, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "user id must be a UUID");
    const char *bad_id[] = {me, "not-a-uuid"};
    assert_int_equal(kn_status_resolve(db, me, bad_id, 2, NULL, 0, &users, &n, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "id 1 is not a UUID");
    const char *null_id[] = {NULL};
    assert_int_equal(kn_status_resolve(db, me, null_id, 1, NULL, 0, &users, &n, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "id 0 is not a UUID");
    char long_name[130];
    memset(long_name, 'x', 129);
    long_name[129] = '\0';
    const char *bad_names[] = {"fine", "", long_name};
    assert_int_equal(kn_status_resolve(db, me, NULL, 0, bad_names, 2, &users, &n, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "username 1 must be 1-128 bytes");
    assert_int_equal(
        kn_status_resolve(db, me, NULL, 0, bad_names + 2, 1, &users, &n, msg, sizeof msg),
        KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "username 0 must be 1-128 bytes");

    static const char *many[KN_STATUS_BATCH_MAX + 1];
    for (size_t i = 0; i <= KN_STATUS_BATCH_MAX; i++)
        many[i] = me;
    assert_int_equal(kn_status_resolve(db, me, many, KN_STATUS_BATCH_MAX + 1, NULL, 0, &users, &n,
                                       msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "at most 100 ids and 100 usernames per call");
    assert_int_equal(kn_status_resolve(db, me, NULL, 0, many, KN_STATUS_BATCH_MAX + 1, &users, &n,
                                       msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "at most 100 ids and 100 usernames per call");
    /* 100 of each is fine (the caller itself: nobody to follow). */
    assert_int_equal(
        kn_status_resolve(db, me, many, KN_STATUS_BATCH_MAX, NULL, 0, &users, &n, msg, sizeof msg),
        KN_OK);
    assert_int_equal(n, 0);
    assert_null(users);
}

/* --- follow, unfollow, update on the tracker ----------------------------------------- */

static const char A[] = "a0000000-0000-4000-8000-000000000001";
static const char B[] = "b0000000-0000-4000-8000-000000000002";
static const char C[] = "c0000000-0000-4000-8000-000000000003";
static const char D[] = "d0000000-0000-4000-8000-000000000004";

static size_t follow(const kn_presence *who, const char *target, kn_presence *first_online)
{
    kn_status_user u;
    snprintf(u, sizeof u, "%s", target);
    kn_presence *online = NULL;
    size_t n = 0;
    assert_int_equal(kn_status_follow(status, who, &u, 1, &online, &n, msg, sizeof msg), KN_OK);
    if (n && first_online) {
        *first_online = online[0];
        first_online->status = NULL; /* points into `online` */
    }
    kn_free(online);
    return n;
}

static void updates_reach_followers_only_and_followers_never_see_each_other(void **state)
{
    (void)state;
    kn_presence a = session(1, A, "alice"), b = session(2, B, "bob"), c = session(3, C, "carol"),
                d = session(4, D, "dave");
    assert_int_equal(follow(&b, A, NULL), 0); /* alice is offline */
    assert_int_equal(n_sends, 0);             /* a follow is hidden: nobody hears of it */
    assert_int_equal(follow(&d, B, NULL), 0); /* dave follows bob, not alice */

    assert_int_equal(kn_status_update(status, &a, "playing", msg, sizeof msg), KN_OK);
    assert_int_equal(n_sends, 1);
    assert_string_equal(sends[0].to, "2");
    assert_int_equal(sends[0].type, KAOS__V1__ENVELOPE__MESSAGE_STATUS_PRESENCE);
    assert_string_equal(sends[0].join, "alice:playing");
    assert_string_equal(sends[0].leave, "-");

    /* carol follows later: the answer has alice's presence, and bob hears nothing. */
    kn_presence seen;
    assert_int_equal(follow(&c, A, &seen), 1);
    assert_string_equal(seen.user_id, A);
    assert_string_equal(seen.username, "alice");
    assert_string_equal(seen.session_id, a.session_id);
    assert_int_equal(n_sends, 1);

    /* A change: one leave of the old presence and one join of the new, to both. */
    assert_int_equal(kn_status_update(status, &a, "away", msg, sizeof msg), KN_OK);
    assert_int_equal(n_sends, 2);
    assert_string_equal(sends[1].to, "2,3");
    assert_int_equal(sends[1].joins, 1);
    assert_int_equal(sends[1].leaves, 1);
    assert_string_equal(sends[1].join, "alice:away");
    assert_string_equal(sends[1].leave, "alice:playing");

    /* bob unfollows: only carol hears the next change; unfollowing again, or
     * one's own id, is no error. */
    const char *ids[] = {A, A, B};
    assert_int_equal(kn_status_unfollow(status, &b, ids, 2, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_status_unfollow(status, &b, ids + 2, 1, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_status_update(status, &a, "", msg, sizeof msg), KN_OK);
    assert_int_equal(n_sends, 3);
    assert_string_equal(sends[2].to, "3");
    assert_string_equal(sends[2].join, "alice:");

    /* Offline: a leave; offline again: nothing. */
    assert_int_equal(kn_status_update(status, &a, NULL, msg, sizeof msg), KN_OK);
    assert_int_equal(n_sends, 4);
    assert_string_equal(sends[3].to, "3");
    assert_int_equal(sends[3].joins, 0);
    assert_string_equal(sends[3].leave, "alice:");
    assert_int_equal(kn_status_update(status, &a, NULL, msg, sizeof msg), KN_OK);
    assert_int_equal(n_sends, 4);

    /* The session ends (its connection leaves every stream): a leave for its followers. */
    assert_int_equal(kn_status_update(status, &a, "back", msg, sizeof msg), KN_OK);
    assert_int_equal(n_sends, 5);
    kn_tracker_untrack_all(tracker, a.conn);
    assert_int_equal(n_sends, 6);
    assert_string_equal(sends[5].to, "3");
    assert_string_equal(sends[5].leave, "alice:back");
    /* Followers' sessions ending tell nobody. */
    kn_tracker_untrack_all(tracker, c.conn);
    kn_tracker_untrack_all(tracker, d.conn);
    assert_int_equal(n_sends, 6);
}

static void a_bad_status_is_refused_with_its_message(void **state)
{
    (void)state;
    kn_presence a = session(1, A, "alice"), b = session(2, B, "bob");
    follow(&b, A, NULL);
    const char *why = "status must be at most 2048 bytes of UTF-8 without control characters";
    assert_int_equal(kn_status_update(status, &a, "bad \xff byte", msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, why);
    assert_int_equal(kn_status_update(status, &a, "line\nbreak", msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, why);
    char big[KN_STREAM_STATUS_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(kn_status_update(status, &a, big, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, why);
    big[KN_STREAM_STATUS_MAX] = '\0'; /* exactly the limit */
    assert_int_equal(kn_status_update(status, &a, big, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_status_update(status, &a, "caf\xc3\xa9", msg, sizeof msg), KN_OK);
    assert_int_equal(n_sends, 2); /* only the good ones were heard */
}

static void a_session_follows_at_most_the_limit_and_still_publishes(void **state)
{
    (void)state;
    kn_presence me = session(1, A, "alice");
    static kn_status_user users[KN_STATUS_FOLLOW_MAX + 1];
    for (size_t i = 0; i <= KN_STATUS_FOLLOW_MAX; i++)
        snprintf(users[i], sizeof users[i], "f0000000-0000-4000-8000-%012zx", i);
    kn_presence *online = NULL;
    size_t n = 0;
    assert_int_equal(kn_status_follow(status, &me, users, KN_STATUS_BATCH_MAX * 2 + 1, &online, &n,
                                      msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "at most 200 users per call");
    for (size_t i = 0; i < KN_STATUS_FOLLOW_MAX; i += 200) {
        assert_int_equal(
            kn_status_follow(status, &me, users + i, 200, &online, &n, msg, sizeof msg), KN_OK);
        assert_int_equal(n, 0);
    }
    /* Following one already followed is no error; one more is. */
    assert_int_equal(kn_status_follow(status, &me, users, 1, &online, &n, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_status_follow(status, &me, users + KN_STATUS_FOLLOW_MAX, 1, &online, &n,
                                      msg, sizeof msg),
                     KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(msg, "a session follows at most 1000 users");
    /* Its own status stream is not a follow: it still publishes. */
    assert_int_equal(kn_status_update(status, &me, "full", msg, sizeof msg), KN_OK);
    const char *first[] = {users[0]};
    assert_int_equal(kn_status_unfollow(status, &me, first, 1, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_status_follow(status, &me, users + KN_STATUS_FOLLOW_MAX, 1, &online, &n,
                                      msg, sizeof msg),
                     KN_OK);
}

static void unfollow_refuses_bad_ids_with_a_message(void **state)
{
    (void)state;
    kn_presence me = session(1, A, "alice");
    const char *bad[] = {A, "x"};
    assert_int_equal(kn_status_unfollow(status, &me, bad, 2, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "id 1 is not a UUID");
    static const char *many[KN_STATUS_BATCH_MAX + 1];
    for (size_t i = 0; i <= KN_STATUS_BATCH_MAX; i++)
        many[i] = A;
    assert_int_equal(
        kn_status_unfollow(status, &me, many, KN_STATUS_BATCH_MAX + 1, msg, sizeof msg),
        KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "at most 100 ids per call");
}

static void a_block_ends_the_blocked_users_follows(void **state)
{
    (void)state;
    kn_presence a = session(1, A, "alice"), b1 = session(2, B, "bob"), b2 = session(3, B, "bob"),
                c = session(4, C, "carol");
    follow(&b1, A, NULL);
    follow(&b2, A, NULL);
    follow(&c, A, NULL);
    kn_status_block(status, A, B); /* alice blocked bob: both his sessions stop following */
    kn_status_block(status, A, D); /* nobody of dave's follows: nothing happens */
    assert_int_equal(n_sends, 0);  /* followers leaving is hidden */
    assert_int_equal(kn_status_update(status, &a, "here", msg, sizeof msg), KN_OK);
    assert_int_equal(n_sends, 1);
    assert_string_equal(sends[0].to, "4");
    /* Blocking someone who follows nobody, or with no stream at all. */
    kn_status_block(status, D, A);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resolve_skips_unknown_users_the_caller_and_blockers_and_lists_each_once),
        cmocka_unit_test(resolve_refuses_bad_input_with_a_message),
        cmocka_unit_test_setup_teardown(
            updates_reach_followers_only_and_followers_never_see_each_other, tracker_up,
            tracker_down),
        cmocka_unit_test_setup_teardown(a_bad_status_is_refused_with_its_message, tracker_up,
                                        tracker_down),
        cmocka_unit_test_setup_teardown(a_session_follows_at_most_the_limit_and_still_publishes,
                                        tracker_up, tracker_down),
        cmocka_unit_test_setup_teardown(unfollow_refuses_bad_ids_with_a_message, tracker_up,
                                        tracker_down),
        cmocka_unit_test_setup_teardown(a_block_ends_the_blocked_users_follows, tracker_up,
                                        tracker_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
