/* kn_friends against the Postgres named by the PG* environment (the suite
 * runs inside pg_virtualenv). The group setup creates a database of its
 * own, migrates it and adds users with plain INSERTs; each test uses users
 * of its own, so tests do not see each other's edges. Covered: invites and
 * accepts in both orders, names, delete, block and unblock, list filters,
 * pagination while others write, cursor validation, limits, two
 * connections adding each other at once, what an add reports for the
 * notifications (kn_friends_add_events), account deletion and allocation
 * failures of the list; a configured max friends, metadata per edge,
 * deletes reporting removed friends, and friends of friends. */
#include "failalloc.h"
#include "pgtest.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_friends.h"
#include "kn_mem.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static pgtest pg;
static kn_db *db, *db2;
static char msg[512];

/* --- fixture ------------------------------------------------------------- */


static int setup(void **state)
{
    (void)state;
    if (pgtest_create(&pg, "kaos_friends", &db) || pgtest_open(&pg, &db2)) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kn_db_close(db);
    kn_db_close(db2);
    pgtest_drop(&pg);
    return 0;
}

/* --- helpers --------------------------------------------------------------- */

/* A fresh user "<prefix>-<n>" with a deterministic id; writes the id to `id`. */
static void user(const char *name, char id[37])
{
    static unsigned serial;
    snprintf(id, 37, "f0000000-0000-4000-8000-%012x", ++serial);
    pgtest_sql(db, "INSERT INTO users (id, username) VALUES ('%s', '%s')", id, name);
}

typedef int (*verb_fn)(kn_db *, const char *, const char *const *, size_t, const char *const *,
                       size_t, char *, size_t);

static int by_id(verb_fn fn, const char *me, const char *other)
{
    msg[0] = '\0';
    return fn(db, me, &other, 1, NULL, 0, msg, sizeof msg);
}

/* The state `me` holds towards `other`, -1 for no edge (read from the list). */
static int state_of(const char *me, const char *other)
{
    kn_friend *f = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(
        kn_friends_list(db, me, KN_FRIEND_ANY, 1000, NULL, &f, &n, &next, msg, sizeof msg), KN_OK);
    int st = -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].user.id, other)) st = f[i].state;
    kn_friends_free(f, n);
    kn_free(next);
    return st;
}

static void assert_pair(const char *a, const char *b, int ab, int ba)
{
    assert_int_equal(state_of(a, b), ab);
    assert_int_equal(state_of(b, a), ba);
}

/* --- tests ------------------------------------------------------------------ */

static void add_invites_and_a_second_add_accepts(void **state)
{
    (void)state;
    char a[37], b[37];
    user("inv_a", a);
    user("inv_b", b);
    assert_int_equal(by_id(kn_friends_add, a, b), KN_OK);
    assert_pair(a, b, KN_FRIEND_INVITED, KN_FRIEND_INVITER);
    assert_int_equal(by_id(kn_friends_add, a, b), KN_OK); /* already invited: no-op */
    assert_pair(a, b, KN_FRIEND_INVITED, KN_FRIEND_INVITER);
    assert_int_equal(by_id(kn_friends_add, b, a), KN_OK);
    assert_pair(a, b, KN_FRIEND_MUTUAL, KN_FRIEND_MUTUAL);
    assert_int_equal(by_id(kn_friends_add, a, b), KN_OK); /* already friends: no-op */
    assert_pair(a, b, KN_FRIEND_MUTUAL, KN_FRIEND_MUTUAL);
}

/* What kn_friends_add_events reports is what the notifications tell. */
static void add_reports_invites_and_accepts_and_nothing_else(void **state)
{
    (void)state;
    char a[37], b[37], c[37];
    user("ev_a", a);
    user("ev_b", b);
    user("ev_c", c);
    static kn_friend_events ev;
    const char *bc[] = {b, c};
    assert_int_equal(kn_friends_add_events(db, a, bc, 2, NULL, 0, &ev, msg, sizeof msg), KN_OK);
    assert_int_equal(ev.n, 2);
    assert_int_equal(ev.items[0].kind, KN_FRIEND_EVENT_INVITED);
    assert_int_equal(ev.items[1].kind, KN_FRIEND_EVENT_INVITED);
    assert_string_equal(ev.items[0].user_id, b); /* targets in id order */
    assert_string_equal(ev.items[1].user_id, c);
    const char *to_a[] = {a};
    assert_int_equal(kn_friends_add_events(db, b, to_a, 1, NULL, 0, &ev, msg, sizeof msg), KN_OK);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.items[0].kind, KN_FRIEND_EVENT_ACCEPTED);
    assert_string_equal(ev.items[0].user_id, a);
    /* Already friends / already invited: nothing to tell. */
    assert_int_equal(kn_friends_add_events(db, b, to_a, 1, NULL, 0, &ev, msg, sizeof msg), KN_OK);
    assert_int_equal(ev.n, 0);
    assert_int_equal(kn_friends_add_events(db, a, &bc[1], 1, NULL, 0, &ev, msg, sizeof msg), KN_OK);
    assert_int_equal(ev.n, 0);
    /* A refusal anywhere: nothing happened, nothing reported. */
    const char *self[] = {c, a};
    ev.n = 7;
    assert_int_equal(kn_friends_add_events(db, a, self, 2, NULL, 0, &ev, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(ev.n, 0);
}

/* What the status service is told: every user a committed block names
 * (by id or username, again or not), none after a refusal; the hook gets
 * each with the blocker. */
static char hooked[4][80];
static size_t n_hooked;
static void on_blocked(void *ud, const char *blocker, const char *blocked)
{
    snprintf(hooked[n_hooked++ % 4], sizeof hooked[0], "%.8s>%.8s", blocker, blocked);
}

static void block_reports_every_user_blocked(void **state)
{
    (void)state;
    char a[37], b[37], c[37];
    user("bl_a", a);
    user("bl_b", b);
    user("bl_c", c);
    static kn_friend_events ev;
    const char *ids[] = {b};
    const char *names[] = {"bl_c", "nobody"};
    assert_int_equal(kn_friends_block_events(db, a, ids, 1, names, 2, &ev, msg, sizeof msg), KN_OK);
    assert_int_equal(ev.n, 2);
    assert_int_equal(ev.items[0].kind, KN_FRIEND_EVENT_BLOCKED);
    assert_string_equal(ev.items[0].user_id, strcmp(b, c) < 0 ? b : c); /* targets in id order */
    kn_friends_deps deps = {.blocked = on_blocked};
    n_hooked = 0;
    kn_friends_tell_blocks(&deps, a, &ev);
    assert_int_equal(n_hooked, 2);
    assert_memory_equal(hooked[0], a, 8);
    kn_friends_tell_blocks(NULL, a, &ev); /* no deps: nothing to tell */
    kn_friends_deps none = {0};
    kn_friends_tell_blocks(&none, a, &ev);
    assert_int_equal(n_hooked, 2);
    /* Blocking again is still a block to report. */
    assert_int_equal(kn_friends_block_events(db, a, ids, 1, NULL, 0, &ev, msg, sizeof msg), KN_OK);
    assert_int_equal(ev.n, 1);
    const char *self[] = {b, a};
    assert_int_equal(kn_friends_block_events(db, a, self, 2, NULL, 0, &ev, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(ev.n, 0);
}

static void add_by_username_works_either_way_round(void **state)
{
    (void)state;
    char a[37], b[37];
    user("name_a", a);
    user("name_b", b);
    const char *nb = "name_b", *na = "name_a";
    assert_int_equal(kn_friends_add(db, a, NULL, 0, &nb, 1, msg, sizeof msg), KN_OK);
    assert_pair(a, b, KN_FRIEND_INVITED, KN_FRIEND_INVITER);
    assert_int_equal(kn_friends_add(db, b, NULL, 0, &na, 1, msg, sizeof msg), KN_OK);
    assert_pair(a, b, KN_FRIEND_MUTUAL, KN_FRIEND_MUTUAL);
    /* the same user by id and by name, and unknown users, are no error */
    const char *ghost_id = "f0000000-0000-4000-8000-ffffffffffff", *ghost = "nobody_here";
    assert_int_equal(kn_friends_add(db, a, &ghost_id, 1, &ghost, 1, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_friends_delete(db, a, (const char *[]){b}, 1, &nb, 1, msg, sizeof msg),
                     KN_OK);
    assert_pair(a, b, -1, -1);
}

static void delete_removes_both_directions(void **state)
{
    (void)state;
    char a[37], b[37];
    user("del_a", a);
    user("del_b", b);
    assert_int_equal(by_id(kn_friends_add, a, b), KN_OK);
    assert_int_equal(by_id(kn_friends_delete, b, a), KN_OK); /* refusing an invite */
    assert_pair(a, b, -1, -1);
    assert_int_equal(by_id(kn_friends_add, a, b), KN_OK);
    assert_int_equal(by_id(kn_friends_add, b, a), KN_OK);
    assert_int_equal(by_id(kn_friends_delete, a, b), KN_OK);
    assert_pair(a, b, -1, -1);
    assert_int_equal(by_id(kn_friends_delete, a, b), KN_OK); /* nothing there: no-op */
}

static void a_block_keeps_the_blocked_user_out_until_deleted(void **state)
{
    (void)state;
    char a[37], b[37];
    user("blk_a", a);
    user("blk_b", b);
    assert_int_equal(by_id(kn_friends_add, a, b), KN_OK);
    assert_int_equal(by_id(kn_friends_add, b, a), KN_OK);
    assert_int_equal(by_id(kn_friends_block, a, b), KN_OK);
    assert_pair(a, b, KN_FRIEND_BLOCKED, -1);
    /* the blocked user's add is ignored silently */
    assert_int_equal(by_id(kn_friends_add, b, a), KN_OK);
    assert_pair(a, b, KN_FRIEND_BLOCKED, -1);
    /* the blocked user's delete does not lift the block */
    assert_int_equal(by_id(kn_friends_delete, b, a), KN_OK);
    assert_pair(a, b, KN_FRIEND_BLOCKED, -1);
    /* the blocker must delete the block before adding */
    assert_int_equal(by_id(kn_friends_add, a, b), KN_ERR_FAILED_PRECONDITION);
    assert_non_null(strstr(msg, "delete the block"));
    /* both may block each other; one's delete leaves the other's block */
    assert_int_equal(by_id(kn_friends_block, b, a), KN_OK);
    assert_pair(a, b, KN_FRIEND_BLOCKED, KN_FRIEND_BLOCKED);
    assert_int_equal(by_id(kn_friends_delete, a, b), KN_OK);
    assert_pair(a, b, -1, KN_FRIEND_BLOCKED);
    assert_int_equal(by_id(kn_friends_delete, b, a), KN_OK);
    assert_pair(a, b, -1, -1);
    assert_int_equal(by_id(kn_friends_add, a, b), KN_OK);
    assert_pair(a, b, KN_FRIEND_INVITED, KN_FRIEND_INVITER);
}

static void bad_input_is_refused_before_the_database(void **state)
{
    (void)state;
    char a[37];
    user("bad_a", a);
    assert_int_equal(by_id(kn_friends_add, a, a), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "yourself"));
    const char *me = "bad_a";
    assert_int_equal(kn_friends_block(db, a, NULL, 0, &me, 1, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "yourself"));
    assert_int_equal(by_id(kn_friends_add, a, "not-a-uuid"), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(by_id(kn_friends_add, "nope", a), KN_ERR_INVALID_ARGUMENT);
    const char *space = "has space";
    assert_int_equal(kn_friends_add(db, a, NULL, 0, &space, 1, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    const char *many[KN_FRIENDS_BATCH_MAX + 1];
    for (int i = 0; i <= KN_FRIENDS_BATCH_MAX; i++)
        many[i] = a;
    assert_int_equal(
        kn_friends_add(db, a, NULL, 0, many, KN_FRIENDS_BATCH_MAX + 1, msg, sizeof msg),
        KN_ERR_INVALID_ARGUMENT);
    const char *ghost = "f0000000-0000-4000-8000-eeeeeeeeeeee";
    assert_int_equal(by_id(kn_friends_add, ghost, a), KN_ERR_NOT_FOUND);
    kn_friend *f = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(kn_friends_list(db, a, 4, 10, NULL, &f, &n, &next, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_friends_list(db, a, -1, 1001, NULL, &f, &n, &next, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_friends_list(db, a, -1, -1, NULL, &f, &n, &next, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_null(f);
    assert_null(next);
}

static void list_filters_by_state_and_shows_profiles(void **state)
{
    (void)state;
    char me[37], f1[37], i1[37], r1[37], b1[37];
    user("flt_me", me);
    user("flt_friend", f1);
    user("flt_invited", i1);
    user("flt_inviter", r1);
    user("flt_blocked", b1);
    assert_int_equal(by_id(kn_friends_add, me, f1), KN_OK);
    assert_int_equal(by_id(kn_friends_add, f1, me), KN_OK);
    assert_int_equal(by_id(kn_friends_add, me, i1), KN_OK);
    assert_int_equal(by_id(kn_friends_add, r1, me), KN_OK);
    assert_int_equal(by_id(kn_friends_block, me, b1), KN_OK);
    const char *expect[] = {"flt_friend", "flt_invited", "flt_inviter", "flt_blocked"};
    for (int st = 0; st <= 3; st++) {
        kn_friend *f = NULL;
        size_t n = 0;
        char *next = NULL;
        assert_int_equal(kn_friends_list(db, me, st, 0, NULL, &f, &n, &next, msg, sizeof msg),
                         KN_OK);
        assert_int_equal(n, 1);
        assert_null(next);
        assert_int_equal(f[0].state, st);
        assert_string_equal(f[0].user.username, expect[st]);
        assert_string_equal(f[0].user.lang_tag, "en");
        assert_true(f[0].update_time > 1600000000);
        kn_friends_free(f, n);
    }
    kn_friend *f = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(kn_friends_list(db, me, -1, 0, NULL, &f, &n, &next, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(f[i].state, (int)i); /* ordered by state */
    kn_friends_free(f, n);
}

/* Walks `me`'s invites sent (state 1) two at a time while adding more. */
static void pages_see_every_lasting_edge_once_while_others_write(void **state)
{
    (void)state;
    char me[37], ids[10][37], extra[37];
    user("page_me", me);
    for (int i = 0; i < 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "page_%d", i);
        user(name, ids[i]);
        assert_int_equal(by_id(kn_friends_add, me, ids[i]), KN_OK);
    }
    user("page_extra", extra);
    int seen[10] = {0};
    char *cursor = NULL;
    int pages = 0;
    do {
        kn_friend *f = NULL;
        size_t n = 0;
        char *next = NULL;
        assert_int_equal(
            kn_friends_list(db, me, KN_FRIEND_INVITED, 2, cursor, &f, &n, &next, msg, sizeof msg),
            KN_OK);
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < 10; k++)
                if (!strcmp(f[i].user.id, ids[k])) seen[k]++;
        if (pages == 1) /* a write meanwhile: a new invite lists after the lasting ones */
            assert_int_equal(by_id(kn_friends_add, me, extra), KN_OK);
        kn_friends_free(f, n);
        kn_free(cursor);
        cursor = next;
        pages++;
    } while (cursor);
    for (int k = 0; k < 10; k++)
        assert_int_equal(seen[k], 1);
    assert_int_equal(pages, 6); /* 11 edges, 2 a page */
}

static void garbled_or_foreign_cursors_are_refused(void **state)
{
    (void)state;
    char me[37], a[37], b[37];
    user("cur_me", me);
    user("cur_a", a);
    user("cur_b", b);
    assert_int_equal(by_id(kn_friends_add, me, a), KN_OK);
    assert_int_equal(by_id(kn_friends_add, me, b), KN_OK);
    kn_friend *f = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(kn_friends_list(db, me, -1, 1, NULL, &f, &n, &next, msg, sizeof msg), KN_OK);
    assert_non_null(next);
    kn_friends_free(f, n);
    kn_friend *g = NULL;
    char *next2 = NULL;
    assert_int_equal(kn_friends_list(db, me, 1, 1, next, &g, &n, &next2, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "another state"));
    const char *bad[] = {"x",
                         "f-1:1:2",
                         "f-1:9:1:"
                         "f0000000-0000-4000-8000-000000000001",
                         "f-1:1:-5:f0000000-0000-4000-8000-000000000001",
                         "f-1:1:5:f0000000-0000-4000-8000-000000000001junk",
                         "f-1:1:5:'; --"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(kn_friends_list(db, me, -1, 1, bad[i], &g, &n, &next2, msg, sizeof msg),
                         KN_ERR_INVALID_ARGUMENT);
        assert_null(g);
    }
    assert_int_equal(kn_friends_list(db, me, -1, 1, next, &g, &n, &next2, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 1);
    kn_friends_free(g, n);
    kn_free(next);
    kn_free(next2);
}

static void invites_stop_at_the_limit(void **state)
{
    (void)state;
    char me[37], late[37];
    user("lim_me", me);
    user("lim_late", late);
    /* fill me up to the limit with plain rows: the limit counts friends and invites */
    pgtest_sql(
        db,
        "INSERT INTO users (id, username) SELECT ('e0000000-0000-4000-8000-' || lpad(to_hex(g), "
        "12, '0'))::uuid, 'lim_' || g FROM generate_series(1, %d) g",
        KN_FRIENDS_MAX_DEFAULT);
    pgtest_sql(db,
        "INSERT INTO user_edge (source_id, destination_id, state, position) SELECT '%s', id, 1, 1"
        " FROM users WHERE username LIKE 'lim\\_%%' AND username <> 'lim_me' AND username <> "
        "'lim_late'",
        me);
    assert_int_equal(by_id(kn_friends_add, me, late), KN_ERR_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(msg, "the limit is 1000"));
    assert_int_equal(by_id(kn_friends_add, late, me), KN_ERR_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(msg, me));
    /* blocks do not count */
    assert_int_equal(by_id(kn_friends_block, me, late), KN_OK);
    /* a full page of 1000 lists in one call, the rest on the next */
    kn_friend *f = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(kn_friends_list(db, me, -1, 1000, NULL, &f, &n, &next, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(n, 1000);
    assert_non_null(next);
    kn_friends_free(f, n);
    char *last = NULL;
    assert_int_equal(kn_friends_list(db, me, -1, 1000, next, &f, &n, &last, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(f[0].state, KN_FRIEND_BLOCKED);
    assert_null(last);
    kn_friends_free(f, n);
    kn_free(next);
    pgtest_sql(db, "DELETE FROM users WHERE username LIKE 'lim\\_%%'");
}

typedef struct racer {
    kn_db *db;
    pthread_barrier_t *start;
    const char *me, *other;
    int rc;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    char m[256];
    pthread_barrier_wait(r->start);
    r->rc = kn_friends_add(r->db, r->me, &r->other, 1, NULL, 0, m, sizeof m);
    return NULL;
}

static void users_adding_each_other_at_once_end_as_friends(void **state)
{
    (void)state;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    for (int round = 0; round < 20; round++) {
        char a[37], b[37], name[32];
        snprintf(name, sizeof name, "race_a%d", round);
        user(name, a);
        snprintf(name, sizeof name, "race_b%d", round);
        user(name, b);
        racer rs[2] = {{db, &start, a, b, -1}, {db2, &start, b, a, -1}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&t[i], NULL, race, &rs[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        assert_int_equal(rs[0].rc, KN_OK);
        assert_int_equal(rs[1].rc, KN_OK);
        assert_pair(a, b, KN_FRIEND_MUTUAL, KN_FRIEND_MUTUAL);
    }
    pthread_barrier_destroy(&start);
}

static void deleting_an_account_removes_its_edges(void **state)
{
    (void)state;
    char a[37], b[37], c[37];
    user("gone_a", a);
    user("gone_b", b);
    user("gone_c", c);
    assert_int_equal(by_id(kn_friends_add, a, b), KN_OK);
    assert_int_equal(by_id(kn_friends_add, b, a), KN_OK);
    assert_int_equal(by_id(kn_friends_block, c, a), KN_OK);
    pgtest_sql(db, "DELETE FROM users WHERE id = '%s'", a);
    assert_int_equal(state_of(b, a), -1);
    assert_int_equal(state_of(c, a), -1);
    kn_db_rows *rows = NULL;
    static const kn_db_stmt count = {"test_friends_count",
                                     "SELECT count(*) FROM user_edge WHERE source_id = $1"
                                     " OR destination_id = $1",
                                     1};
    const char *p[] = {a};
    assert_int_equal(kn_db_query(db, &count, p, &rows), KN_OK);
    assert_string_equal(kn_db_rows_get(rows, 0, 0), "0");
    kn_db_rows_free(rows);
}

static void befriend(const char *a, const char *b)
{
    assert_int_equal(by_id(kn_friends_add, a, b), KN_OK);
    assert_int_equal(by_id(kn_friends_add, b, a), KN_OK);
}

static void a_configured_max_friends_refuses_and_names_the_limit(void **state)
{
    (void)state;
    char me[37], a[37], b[37], c[37], d[37];
    user("cap_me", me);
    user("cap_a", a);
    user("cap_b", b);
    user("cap_c", c);
    user("cap_d", d);
    kn_friends_add_opts o = {.max_friends = 2};
    const char *ab[] = {a, b};
    assert_int_equal(kn_friends_add_ex(db, &o, me, ab, 2, NULL, 0, msg, sizeof msg), KN_OK);
    assert_int_equal(
        kn_friends_add_ex(db, &o, me, (const char *[]){c}, 1, NULL, 0, msg, sizeof msg),
        KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(msg, "you have 2 friends and invites; the limit is 2");
    /* the target's count counts too */
    assert_int_equal(
        kn_friends_add_ex(db, &o, c, (const char *[]){me}, 1, NULL, 0, msg, sizeof msg),
        KN_ERR_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(msg, "the limit is 2"));
    assert_non_null(strstr(msg, me));
    /* accepting an invite never counts against the limit */
    assert_int_equal(
        kn_friends_add_ex(db, &o, a, (const char *[]){me}, 1, NULL, 0, msg, sizeof msg), KN_OK);
    assert_pair(me, a, KN_FRIEND_MUTUAL, KN_FRIEND_MUTUAL);
    /* the default (0) is KN_FRIENDS_MAX_DEFAULT */
    o.max_friends = 0;
    assert_int_equal(
        kn_friends_add_ex(db, &o, me, (const char *[]){d}, 1, NULL, 0, msg, sizeof msg), KN_OK);
}

/* The metadata `me` holds on its edge to `other` (NULL for no edge); kn_free it. */
static char *metadata_of(const char *me, const char *other)
{
    kn_friend *f = NULL;
    size_t n = 0;
    char *next = NULL, *out = NULL;
    assert_int_equal(
        kn_friends_list(db, me, KN_FRIEND_ANY, 1000, NULL, &f, &n, &next, msg, sizeof msg), KN_OK);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].user.id, other)) out = kn_strdup(f[i].metadata);
    kn_friends_free(f, n);
    kn_free(next);
    return out;
}

static void assert_metadata(const char *me, const char *other, const char *want)
{
    char *got = metadata_of(me, other);
    assert_non_null(got);
    assert_string_equal(got, want);
    kn_free(got);
}

static void metadata_is_per_edge_set_on_add_listed_and_updated(void **state)
{
    (void)state;
    char a[37], b[37], c[37];
    user("meta_a", a);
    user("meta_b", b);
    user("meta_c", c);
    kn_friends_add_opts o = {.metadata = "{\"since\": 2024}"};
    assert_int_equal(kn_friends_add_ex(db, &o, a, (const char *[]){b}, 1, NULL, 0, msg, sizeof msg),
                     KN_OK);
    assert_metadata(a, b, "{\"since\": 2024}");
    assert_metadata(b, a, "{}"); /* only the caller's edge */
    /* accepting with metadata sets the acceptor's edge; a's stays */
    o.metadata = "{\"nick\": \"bee\"}";
    assert_int_equal(kn_friends_add_ex(db, &o, b, (const char *[]){a}, 1, NULL, 0, msg, sizeof msg),
                     KN_OK);
    assert_metadata(b, a, "{\"nick\": \"bee\"}");
    assert_metadata(a, b, "{\"since\": 2024}");
    /* update, in any state of the caller's edge; the time the state was taken stays */
    pgtest_sql(db,
               "UPDATE user_edge SET update_time = '2001-01-01 00:00:00+00' WHERE source_id = '%s'"
               " AND destination_id = '%s'",
               a, b);
    assert_int_equal(kn_friends_metadata_update(db, a, b, "{\"x\": [1, 2]}", msg, sizeof msg),
                     KN_OK);
    assert_metadata(a, b, "{\"x\": [1, 2]}");
    kn_friend *f = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(
        kn_friends_list(db, a, KN_FRIEND_MUTUAL, 10, NULL, &f, &n, &next, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(f[0].update_time, 978307200);
    kn_friends_free(f, n);
    kn_free(next);
    assert_int_equal(by_id(kn_friends_block, a, c), KN_OK);
    assert_int_equal(kn_friends_metadata_update(db, a, c, "{\"why\": \"spam\"}", msg, sizeof msg),
                     KN_OK);
    assert_metadata(a, c, "{\"why\": \"spam\"}");
    /* refusals */
    assert_int_equal(kn_friends_metadata_update(db, c, a, "{}", msg, sizeof msg), KN_ERR_NOT_FOUND);
    assert_non_null(strstr(msg, "no relationship with user"));
    assert_int_equal(kn_friends_metadata_update(db, a, b, "[1]", msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "metadata must be a JSON object");
    assert_int_equal(kn_friends_metadata_update(db, a, "nope", "{}", msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    static char big[KN_FRIEND_METADATA_MAX + 16];
    memset(big, ' ', sizeof big - 1);
    big[0] = '{';
    big[sizeof big - 2] = '}';
    assert_int_equal(kn_friends_metadata_update(db, a, b, big, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "the limit is 16384"));
    o.metadata = "not json";
    assert_int_equal(kn_friends_add_ex(db, &o, a, (const char *[]){c}, 1, NULL, 0, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_metadata(a, b, "{\"x\": [1, 2]}");
}

static void delete_reports_only_the_mutual_friends_it_removed(void **state)
{
    (void)state;
    char a[37], b[37], c[37];
    user("rm_a", a);
    user("rm_b", b);
    user("rm_c", c);
    befriend(a, b);
    assert_int_equal(by_id(kn_friends_add, a, c), KN_OK); /* an invite only */
    static kn_friend_events ev;
    const char *bc[] = {b, c};
    assert_int_equal(kn_friends_delete_events(db, a, bc, 2, NULL, 0, &ev, msg, sizeof msg), KN_OK);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.items[0].kind, KN_FRIEND_EVENT_REMOVED);
    assert_string_equal(ev.items[0].user_id, b);
    assert_pair(a, b, -1, -1);
    assert_pair(a, c, -1, -1);
}

/* Walks me's friends of friends `limit` at a time into "referrer>user" lines. */
static size_t walk_fof(const char *me, int limit, char out[][80], size_t cap)
{
    size_t total = 0;
    char *cursor = NULL;
    do {
        kn_friend_of_friend *f = NULL;
        size_t n = 0;
        char *next = NULL;
        assert_int_equal(
            kn_friends_of_friends_list(db, me, limit, cursor, &f, &n, &next, msg, sizeof msg),
            KN_OK);
        assert_true(n <= (size_t)limit);
        for (size_t i = 0; i < n && total < cap; i++)
            snprintf(out[total++], 80, "%s>%s", f[i].referrer, f[i].user.id);
        kn_friends_of_friends_free(f, n);
        kn_free(cursor);
        cursor = next;
    } while (cursor);
    return total;
}

static void friends_of_friends_page_by_cursor_without_me_my_friends_or_blocks(void **state)
{
    (void)state;
    char me[37], f1[37], f2[37], x[37], y[37], z[37], w[37], v[37], inv[37];
    user("fof_me", me);
    user("fof_f1", f1);
    user("fof_f2", f2);
    user("fof_x", x);
    user("fof_y", y);
    user("fof_z", z);
    user("fof_w", w);
    user("fof_v", v);
    user("fof_inv", inv);
    befriend(me, f1);
    befriend(me, f2);
    befriend(f1, f2);
    befriend(f1, x);
    befriend(f1, y);
    befriend(f2, x);
    befriend(f2, z);
    befriend(f2, v);
    befriend(f1, inv);
    assert_int_equal(by_id(kn_friends_add, me, inv), KN_OK); /* my invite: inv still appears */
    assert_int_equal(by_id(kn_friends_add, f2, w), KN_OK);   /* an invite is not a friendship */
    assert_int_equal(by_id(kn_friends_block, me, y), KN_OK); /* I blocked y */
    assert_int_equal(by_id(kn_friends_block, z, me), KN_OK); /* z blocked me */
    /* f1 and f2 are friends of each other, but mine too: left out */
    char want[4][80];
    snprintf(want[0], 80, "%s>%s", f1, x);
    snprintf(want[1], 80, "%s>%s", f1, inv);
    snprintf(want[2], 80, "%s>%s", f2, x);
    snprintf(want[3], 80, "%s>%s", f2, v);
    for (int limit = 1; limit <= 5; limit += 2) {
        char got[8][80];
        assert_int_equal(walk_fof(me, limit, got, 8), 4);
        for (int i = 0; i < 4; i++)
            assert_string_equal(got[i], want[i]);
    }
    /* nobody's friends: an empty page and no cursor */
    kn_friend_of_friend *f = NULL;
    size_t n = 7;
    char *next = NULL;
    assert_int_equal(kn_friends_of_friends_list(db, w, 0, NULL, &f, &n, &next, msg, sizeof msg),
                     KN_OK);
    assert_int_equal(n, 0);
    assert_null(next);
    /* refusals */
    assert_int_equal(kn_friends_of_friends_list(db, me, 1001, NULL, &f, &n, &next, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        kn_friends_of_friends_list(db, me, 1, "f-1:0:0:x", &f, &n, &next, msg, sizeof msg),
        KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_friends_of_friends_cursor_check("", msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    char good[80];
    snprintf(good, sizeof good, "o:%s:%s", f1, x);
    assert_int_equal(kn_friends_of_friends_cursor_check(good, msg, sizeof msg), KN_OK);
    good[5] = 'z';
    assert_int_equal(kn_friends_of_friends_cursor_check(good, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
}

static char oom_me[37];

static int list_two_pages(void *arg)
{
    (void)arg;
    kn_friend *f = NULL;
    size_t n = 0;
    char *next = NULL, *last = NULL;
    char m[256];
    int rc = kn_friends_list(db, oom_me, -1, 1, NULL, &f, &n, &next, m, sizeof m);
    kn_friends_free(f, n);
    f = NULL;
    if (rc == KN_OK && (!next || n != 1)) rc = KN_ERR_INTERNAL;
    if (rc == KN_OK) rc = kn_friends_list(db, oom_me, -1, 5, next, &f, &n, &last, m, sizeof m);
    if (rc == KN_OK && n != 1) rc = KN_ERR_INTERNAL;
    kn_friends_free(f, n);
    kn_free(next);
    kn_free(last);
    return rc;
}

static int add_and_delete(void *arg)
{
    const char *other = arg;
    char m[256];
    int rc = kn_friends_add(db, oom_me, &other, 1, NULL, 0, m, sizeof m);
    if (rc == KN_OK) rc = kn_friends_delete(db, oom_me, &other, 1, NULL, 0, m, sizeof m);
    return rc;
}

static int list_friends_of_friends(void *arg)
{
    (void)arg;
    kn_friend_of_friend *f = NULL;
    size_t n = 0;
    char *next = NULL, *last = NULL;
    char m[256];
    int rc = kn_friends_of_friends_list(db, oom_me, 1, NULL, &f, &n, &next, m, sizeof m);
    kn_friends_of_friends_free(f, n);
    f = NULL;
    if (rc == KN_OK && (!next || n != 1)) rc = KN_ERR_INTERNAL;
    if (rc == KN_OK)
        rc = kn_friends_of_friends_list(db, oom_me, 5, next, &f, &n, &last, m, sizeof m);
    if (rc == KN_OK && n != 1) rc = KN_ERR_INTERNAL;
    kn_friends_of_friends_free(f, n);
    kn_free(next);
    kn_free(last);
    return rc;
}

static void friends_calls_survive_allocation_failures(void **state)
{
    (void)state;
    char a[37], b[37], c[37];
    user("oom_me", oom_me);
    user("oom_a", a);
    user("oom_b", b);
    user("oom_c", c);
    assert_int_equal(by_id(kn_friends_add, oom_me, a), KN_OK);
    assert_int_equal(by_id(kn_friends_add, oom_me, b), KN_OK);
    assert_true(failalloc_sweep(list_two_pages, NULL) >= 3);
    assert_true(failalloc_sweep(add_and_delete, c) >= 2);
    /* oom_me's one friend a has b and c as friends too: two pages of one */
    befriend(a, oom_me);
    befriend(a, b);
    befriend(a, c);
    assert_true(failalloc_sweep(list_friends_of_friends, NULL) >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(add_invites_and_a_second_add_accepts),
        cmocka_unit_test(add_reports_invites_and_accepts_and_nothing_else),
        cmocka_unit_test(block_reports_every_user_blocked),
        cmocka_unit_test(add_by_username_works_either_way_round),
        cmocka_unit_test(delete_removes_both_directions),
        cmocka_unit_test(a_block_keeps_the_blocked_user_out_until_deleted),
        cmocka_unit_test(bad_input_is_refused_before_the_database),
        cmocka_unit_test(list_filters_by_state_and_shows_profiles),
        cmocka_unit_test(pages_see_every_lasting_edge_once_while_others_write),
        cmocka_unit_test(garbled_or_foreign_cursors_are_refused),
        cmocka_unit_test(invites_stop_at_the_limit),
        cmocka_unit_test(users_adding_each_other_at_once_end_as_friends),
        cmocka_unit_test(deleting_an_account_removes_its_edges),
        cmocka_unit_test(friends_calls_survive_allocation_failures),
        cmocka_unit_test(a_configured_max_friends_refuses_and_names_the_limit),
        cmocka_unit_test(metadata_is_per_edge_set_on_add_listed_and_updated),
        cmocka_unit_test(delete_reports_only_the_mutual_friends_it_removed),
        cmocka_unit_test(friends_of_friends_page_by_cursor_without_me_my_friends_or_blocks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
