/* The session registry over two fake network threads (kn_out lanes: shard 0
 * is this thread, shard 1 another): the index finds a user's connections on
 * both, by user or by session, whatever the case of the ids; ending touches
 * only that user's connections, each on its own thread, and revokes their
 * tokens; a logout unbinds without closing; a ban closes all but the spared
 * connection and refuses binds queued before it; per-connection slots hear
 * every close; expired revocations are swept; with single session a bind
 * ends the user's other connections (notice first, then the close with
 * SESSION_REPLACED; another session id is revoked, the same one is not);
 * what other nodes are told (ends, binds, a user's presence here) and what
 * they ask (an end done here only, a newer bind elsewhere replacing only
 * older binds here, ties by the caller's word). */
#include "failalloc.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_session.h"
#include "kn_time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define MAX_CONNS 8

typedef struct lane {
    bool here;
    kn_conn_id ids[MAX_CONNS];
    kn_session *sessions[MAX_CONNS];
    size_t n;
    kn_conn_id closed[MAX_CONNS];
    uint32_t reasons[MAX_CONNS];
    int close_seq[MAX_CONNS]; /* when, on the shared clock of events */
    size_t n_closed;
    struct {
        void (*fn)(void *);
        void *arg;
    } posts[MAX_CONNS];
    size_t n_posts;
} lane;

static lane lanes[2];
static int events; /* notices and closes, in order */

static int l_send(void *ud, const kn_conn_id *ids, size_t n, uint8_t ch, const uint8_t *d,
                  size_t len, bool rel)
{
    return KN_OK;
}
static void l_close(void *ud, kn_conn_id id, uint32_t reason)
{
    lane *l = ud;
    assert_true(l->here);
    assert_true(reason == KAOS__V1__DISCONNECT_REASON__DISCONNECT_BANNED ||
                reason == KAOS__V1__DISCONNECT_REASON__DISCONNECT_SESSION_REPLACED);
    l->reasons[l->n_closed] = reason;
    l->close_seq[l->n_closed] = ++events;
    l->closed[l->n_closed++] = id;
}
static int l_post(void *ud, void (*fn)(void *), void *arg)
{
    lane *l = ud;
    l->posts[l->n_posts].fn = fn;
    l->posts[l->n_posts++].arg = arg;
    return KN_OK;
}
static bool l_here(void *ud)
{
    return ((lane *)ud)->here;
}
static void *l_data(void *ud, kn_conn_id id)
{
    lane *l = ud;
    assert_true(l->here); /* sessions are read on their own thread only */
    for (size_t i = 0; i < l->n; i++)
        if (l->ids[i] == id) return l->sessions[i];
    return NULL;
}
static void l_auth(void *ud, kn_conn_id id) {}
static bool l_violation(void *ud, kn_conn_id id)
{
    return false;
}
static bool l_overloaded(void *ud)
{
    return false;
}

static void run_posts(lane *l)
{
    l->here = true;
    for (size_t i = 0; i < l->n_posts; i++)
        l->posts[i].fn(l->posts[i].arg);
    l->n_posts = 0;
    l->here = false;
}

typedef struct fixture {
    kn_out *out;
    kn_sessions *ss;
} fixture;

static int setup(void **state)
{
    static fixture f;
    memset(lanes, 0, sizeof lanes);
    lanes[0].here = true;
    assert_int_equal(kn_out_create(2, &f.out), KN_OK);
    for (size_t i = 0; i < 2; i++) {
        kn_out_lane l = {l_send, l_close,     l_post,       l_here,    l_data,
                         l_auth, l_violation, l_overloaded, &lanes[i], NULL};
        kn_out_attach_lane(f.out, i, &l);
    }
    assert_int_equal(kn_sessions_create(f.out, &f.ss), KN_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (size_t k = 0; k < 2; k++) {
        lanes[k].here = true;
        for (size_t i = 0; i < lanes[k].n; i++)
            kn_sessions_close(f->ss, lanes[k].sessions[i]);
    }
    kn_sessions_destroy(f->ss);
    kn_out_destroy(f->out);
    return 0;
}

/* A connection on `shard`, bound to user/session (unless user is NULL). */
static kn_session *open_bound(fixture *f, uint16_t shard, const char *user, const char *session)
{
    lane *l = &lanes[shard];
    kn_conn_id id = ((kn_conn_id)3 << 32) | ((kn_conn_id)shard << 16) | (l->n + 1);
    bool was = l->here;
    l->here = true;
    kn_session *s = kn_sessions_open(f->ss, id, "127.0.0.1:9", 0x0100007f);
    assert_non_null(s);
    if (user) {
        kn_token_claims c = {.expires_at = kn_time_wall_ms() / 1000 + 3600};
        snprintf(c.user_id, sizeof c.user_id, "%s", user);
        snprintf(c.session_id, sizeof c.session_id, "%s", session);
        char msg[64];
        assert_int_equal(kn_sessions_bind(f->ss, s, &c, false, kn_time_mono_ms(), msg, sizeof msg),
                         KN_OK);
    }
    l->here = was;
    l->ids[l->n] = id;
    l->sessions[l->n++] = s;
    return s;
}

static void the_index_finds_a_users_connections_on_every_thread(void **state)
{
    fixture *f = *state;
    kn_session *a1 = open_bound(f, 0, "aaaa", "sa1");
    kn_session *a2 = open_bound(f, 1, "aaaa", "sa2");
    open_bound(f, 1, "bbbb", "sb1");
    open_bound(f, 0, NULL, NULL); /* not authenticated: not indexed */
    kn_conn_id ids[4];
    assert_int_equal(kn_sessions_conns(f->ss, "AAAA", NULL, ids, 4), 2); /* case-folded */
    assert_true((ids[0] == a1->conn && ids[1] == a2->conn) ||
                (ids[0] == a2->conn && ids[1] == a1->conn));
    assert_int_equal(kn_sessions_conns(f->ss, "aaaa", "sa2", ids, 4), 1);
    assert_int_equal(ids[0], a2->conn);
    assert_int_equal(kn_sessions_conns(f->ss, "aaaa", NULL, ids, 1), 2); /* count past cap */
    assert_int_equal(kn_sessions_conns(f->ss, "nobody", NULL, ids, 4), 0);
    kn_sessions_stats st;
    kn_sessions_stats_get(f->ss, &st);
    assert_int_equal(st.bound, 3);
}

static void a_logout_unbinds_that_session_everywhere_without_closing(void **state)
{
    fixture *f = *state;
    kn_session *a1 = open_bound(f, 0, "aaaa", "sa1");
    kn_session *a1_again = open_bound(f, 1, "aaaa", "sa1"); /* resumed elsewhere */
    kn_session *a2 = open_bound(f, 0, "aaaa", "sa2");
    assert_int_equal(kn_sessions_end(f->ss, "aaaa", "sa1", KN_SESSION_END_LOGOUT, 0, 0), KN_OK);
    assert_false(a1->authenticated);      /* this thread: at once */
    assert_true(a1_again->authenticated); /* the other: when it runs the post */
    run_posts(&lanes[1]);
    assert_false(a1_again->authenticated);
    assert_true(a2->authenticated);
    assert_int_equal(lanes[0].n_closed + lanes[1].n_closed, 0);
    char msg[64];
    assert_true(kn_sessions_revoked(f->ss, "sa1", msg, sizeof msg));
    assert_string_equal(msg, "session token revoked (logged out)");
    assert_false(kn_sessions_revoked(f->ss, "sa2", msg, sizeof msg));
    /* a resume of the logged-out session is refused with why */
    kn_token_claims c = {.user_id = "aaaa", .session_id = "sa1"};
    assert_int_equal(kn_sessions_bind(f->ss, a1, &c, true, kn_time_mono_ms(), msg, sizeof msg),
                     KN_ERR_UNAUTHENTICATED);
}

static void a_ban_closes_the_users_connections_but_the_spared_one(void **state)
{
    fixture *f = *state;
    int64_t queued_before = kn_time_mono_ms() - 1;
    kn_session *a1 = open_bound(f, 0, "aaaa", "sa1");
    kn_session *a2 = open_bound(f, 1, "aaaa", "sa2");
    kn_session *a3 = open_bound(f, 0, "aaaa", "sa3");
    kn_session *b = open_bound(f, 0, "bbbb", "sb1");
    assert_int_equal(kn_sessions_end(f->ss, "aaaa", NULL, KN_SESSION_END_BAN, a3->conn, 0), KN_OK);
    run_posts(&lanes[1]);
    assert_false(a1->authenticated || a2->authenticated || a3->authenticated);
    assert_true(b->authenticated);
    assert_int_equal(lanes[0].n_closed, 1); /* a1; a3 was spared */
    assert_int_equal(lanes[0].closed[0], a1->conn);
    assert_int_equal(lanes[1].n_closed, 1);
    assert_int_equal(lanes[1].closed[0], a2->conn);
    char msg[64];
    assert_true(kn_sessions_revoked(f->ss, "sa2", msg, sizeof msg));
    assert_string_equal(msg, "session token revoked (account banned)");
    /* a login queued before the ban is refused; one queued after binds */
    kn_token_claims c = {.user_id = "aaaa", .session_id = "sa9"};
    assert_int_equal(kn_sessions_bind(f->ss, a3, &c, false, queued_before, msg, sizeof msg),
                     KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "account is banned");
    assert_int_equal(kn_sessions_bind(f->ss, a3, &c, false, kn_time_mono_ms() + 1, msg, sizeof msg),
                     KN_OK);
}

static int closes_seen;
static void on_close(void *ud, kn_session *s)
{
    closes_seen++;
    assert_ptr_equal(s->ext[*(int *)ud], ud); /* the slot holds what was put there */
}

static void every_slot_hears_every_close(void **state)
{
    fixture *f = *state;
    static int slot;
    slot = kn_sessions_ext_register(f->ss, on_close, &slot);
    assert_true(slot >= 0);
    for (int i = 1; i < KN_SESSION_EXT_MAX; i++)
        assert_true(kn_sessions_ext_register(f->ss, NULL, NULL) >= 0);
    assert_int_equal(kn_sessions_ext_register(f->ss, NULL, NULL), KN_ERR_RESOURCE_EXHAUSTED);
    kn_session *s = open_bound(f, 0, "aaaa", "sa1");
    s->ext[slot] = &slot;
    closes_seen = 0;
    lanes[0].n--; /* closed here, not by the teardown */
    kn_sessions_close(f->ss, s);
    assert_int_equal(closes_seen, 1);
    kn_conn_id ids[2];
    assert_int_equal(kn_sessions_conns(f->ss, "aaaa", NULL, ids, 2), 0);
}

static void expired_revocations_are_swept(void **state)
{
    fixture *f = *state;
    /* a logout's token that expired already: revoked until the sweep */
    assert_int_equal(kn_sessions_end(f->ss, "aaaa", "old", KN_SESSION_END_LOGOUT, 0, 1), KN_OK);
    char msg[64];
    assert_true(kn_sessions_revoked(f->ss, "old", msg, sizeof msg));
    kn_sessions_tick(f->ss, kn_time_mono_ms());
    assert_false(kn_sessions_revoked(f->ss, "old", msg, sizeof msg));
    assert_int_equal(kn_sessions_end(f->ss, "a-user-id-longer-than-a-uuid-is-refused-here", NULL,
                                     KN_SESSION_END_BAN, 0, 0),
                     KN_ERR_INVALID_ARGUMENT);
}

static kn_conn_id noticed[MAX_CONNS];
static int notice_seq[MAX_CONNS], n_noticed;

static char forgotten[MAX_CONNS][37];
static int n_forgotten;

static void forget(void *ud, const char *user_id, const char *session_id)
{
    assert_ptr_equal(ud, &n_forgotten);
    assert_string_equal(user_id, "aaaa");
    snprintf(forgotten[n_forgotten++], sizeof forgotten[0], "%s", session_id);
}

static void notice(void *ud, kn_conn_id conn)
{
    assert_ptr_equal(ud, &n_noticed);
    assert_true(lanes[kn_conn_shard(conn)].here); /* on the connection's own thread */
    notice_seq[n_noticed] = ++events;
    noticed[n_noticed++] = conn;
}

static void single_session_binds_end_the_users_other_connections(void **state)
{
    fixture *f = *state;
    n_noticed = n_forgotten = events = 0;
    kn_sessions_single single = {notice, &n_noticed, forget, &n_forgotten};
    kn_sessions_set_single(f->ss, &single);
    kn_session *a1 = open_bound(f, 0, "aaaa", "sa1");
    kn_session *b = open_bound(f, 0, "bbbb", "sb1");
    assert_int_equal(n_noticed, 0);
    /* a new login elsewhere: a1 (this thread) is told, unbound and closed at once */
    kn_session *a2 = open_bound(f, 1, "aaaa", "sa2");
    assert_int_equal(n_noticed, 1);
    assert_int_equal(noticed[0], a1->conn);
    assert_false(a1->authenticated);
    assert_int_equal(lanes[0].n_closed, 1);
    assert_int_equal(lanes[0].closed[0], a1->conn);
    assert_int_equal(lanes[0].reasons[0], KAOS__V1__DISCONNECT_REASON__DISCONNECT_SESSION_REPLACED);
    assert_true(notice_seq[0] < lanes[0].close_seq[0]);
    char msg[64];
    assert_true(kn_sessions_revoked(f->ss, "sa1", msg, sizeof msg));
    assert_string_equal(msg, "session token revoked (another session took over)");
    assert_int_equal(n_forgotten, 1); /* its refresh token goes too */
    assert_string_equal(forgotten[0], "sa1");
    kn_token_claims c = {.user_id = "aaaa", .session_id = "sa1"};
    assert_int_equal(kn_sessions_bind(f->ss, a1, &c, true, kn_time_mono_ms(), msg, sizeof msg),
                     KN_ERR_UNAUTHENTICATED);
    assert_true(a2->authenticated && b->authenticated);
    /* the same session resumed here: the other thread's connection goes
     * when its thread runs the post, and the session stays valid */
    kn_session *a3 = open_bound(f, 0, "aaaa", "sa2");
    assert_true(a2->authenticated);
    assert_int_equal(lanes[1].n_posts, 1);
    run_posts(&lanes[1]);
    assert_false(a2->authenticated);
    assert_int_equal(n_noticed, 2);
    assert_int_equal(noticed[1], a2->conn);
    assert_int_equal(lanes[1].n_closed, 1);
    assert_true(notice_seq[1] < lanes[1].close_seq[0]);
    assert_false(kn_sessions_revoked(f->ss, "sa2", msg, sizeof msg));
    assert_int_equal(n_forgotten, 1); /* the same session: not forgotten */
    assert_true(a3->authenticated && b->authenticated);
    kn_conn_id ids[4];
    assert_int_equal(kn_sessions_conns(f->ss, "aaaa", NULL, ids, 4), 1);
    assert_int_equal(ids[0], a3->conn);
}

static void of_two_racing_binds_the_later_one_stays(void **state)
{
    fixture *f = *state;
    n_noticed = n_forgotten = events = 0;
    kn_sessions_single single = {notice, &n_noticed, forget, &n_forgotten};
    kn_sessions_set_single(f->ss, &single);
    /* both logins read Postgres first; their binds reach the registry one
     * after the other, on two threads */
    kn_session *x = open_bound(f, 1, NULL, NULL);
    kn_session *y = open_bound(f, 0, NULL, NULL);
    kn_token_claims cx = {.user_id = "aaaa", .session_id = "sx"};
    kn_token_claims cy = {.user_id = "aaaa", .session_id = "sy"};
    char msg[64];
    lanes[1].here = true;
    assert_int_equal(kn_sessions_bind(f->ss, x, &cx, false, kn_time_mono_ms(), msg, sizeof msg),
                     KN_OK);
    lanes[1].here = false;
    assert_int_equal(kn_sessions_bind(f->ss, y, &cy, false, kn_time_mono_ms(), msg, sizeof msg),
                     KN_OK);
    run_posts(&lanes[1]);
    assert_false(x->authenticated);
    assert_true(y->authenticated);
    assert_int_equal(n_noticed, 1);
    assert_true(kn_sessions_revoked(f->ss, "sx", msg, sizeof msg));
    assert_false(kn_sessions_revoked(f->ss, "sy", msg, sizeof msg));
    assert_int_equal(n_forgotten, 1);
    assert_string_equal(forgotten[0], "sx");
}

/* What the registry told the remote hook (the cluster). */
typedef struct told {
    int ended, bound, present;
    char user[40], session[40];
    kn_session_end why;
    int64_t revoke_expires, bound_ms;
} told;

static void r_ended(void *ud, const char *user_id, const char *session_id, kn_session_end why,
                    int64_t revoke_expires)
{
    told *t = ud;
    t->ended++;
    snprintf(t->user, sizeof t->user, "%s", user_id);
    snprintf(t->session, sizeof t->session, "%s", session_id ? session_id : "");
    t->why = why;
    t->revoke_expires = revoke_expires;
}

static void r_bound(void *ud, const char *user_id, const char *session_id, int64_t bound_ms)
{
    told *t = ud;
    t->bound++;
    snprintf(t->session, sizeof t->session, "%s", session_id);
    t->bound_ms = bound_ms;
}

static void r_present(void *ud, const char *user_id)
{
    told *t = ud;
    t->present++;
    snprintf(t->user, sizeof t->user, "%s", user_id);
}

static void ends_and_binds_are_told_to_other_nodes_and_their_ends_are_not_told_back(void **state)
{
    fixture *f = *state;
    told t = {0};
    kn_sessions_set_remote(f->ss, &(kn_sessions_remote){r_ended, r_bound, r_present, &t});
    int64_t before = kn_time_wall_ms();
    kn_session *a1 = open_bound(f, 0, "aaaa", "sa1");
    assert_int_equal(t.bound, 1);
    assert_string_equal(t.session, "sa1");
    assert_true(t.bound_ms >= before && t.bound_ms == a1->bound_ms);
    assert_int_equal(t.present, 1);
    assert_string_equal(t.user, "aaaa");
    /* a logout here: told, with the revocation's expiry */
    assert_int_equal(kn_sessions_end(f->ss, "aaaa", "sa1", KN_SESSION_END_LOGOUT, 0, 77), KN_OK);
    assert_int_equal(t.ended, 1);
    assert_string_equal(t.session, "sa1");
    assert_int_equal(t.why, KN_SESSION_END_LOGOUT);
    assert_int_equal(t.revoke_expires, 77);
    assert_false(a1->authenticated);
    assert_int_equal(t.present, 2); /* the unbind */
    /* a ban from another node: done here, not told back */
    kn_session *a2 = open_bound(f, 1, "aaaa", "sa2");
    assert_int_equal(kn_sessions_end_here(f->ss, "aaaa", NULL, KN_SESSION_END_BAN, 0), KN_OK);
    run_posts(&lanes[1]);
    assert_false(a2->authenticated);
    assert_int_equal(lanes[1].n_closed, 1);
    assert_int_equal(lanes[1].reasons[0], KAOS__V1__DISCONNECT_REASON__DISCONNECT_BANNED);
    assert_int_equal(t.ended, 1);
    char msg[64];
    kn_token_claims c = {.user_id = "aaaa", .session_id = "sa9"};
    assert_int_equal(kn_sessions_bind(f->ss, a1, &c, false, kn_time_mono_ms() - 1, msg, sizeof msg),
                     KN_ERR_PERMISSION_DENIED); /* the ban is remembered here too */
}

static void the_list_names_every_bound_session_on_every_thread(void **state)
{
    fixture *f = *state;
    open_bound(f, 0, "aaaa", "sa1");
    open_bound(f, 1, "bbbb", "sb1");
    open_bound(f, 0, NULL, NULL); /* not bound: not listed */
    kn_session_ref refs[4];
    assert_int_equal(kn_sessions_list(f->ss, refs, 4), 2);
    assert_true((!strcmp(refs[0].session_id, "sa1") && !strcmp(refs[1].session_id, "sb1")) ||
                (!strcmp(refs[0].session_id, "sb1") && !strcmp(refs[1].session_id, "sa1")));
    assert_int_equal(kn_sessions_list(f->ss, refs, 1), 2); /* counts past cap */
}

static void a_bind_on_another_node_replaces_only_older_binds_here(void **state)
{
    fixture *f = *state;
    kn_session *a1 = open_bound(f, 0, "aaaa", "sa1");
    /* single session off: nothing happens */
    assert_int_equal(kn_sessions_replace_here(f->ss, "aaaa", "sz", a1->bound_ms + 1, false), 0);
    assert_true(a1->authenticated);
    n_noticed = n_forgotten = events = 0;
    kn_sessions_single single = {notice, &n_noticed, forget, &n_forgotten};
    kn_sessions_set_single(f->ss, &single);
    /* an older bind elsewhere loses: a1 stays */
    assert_int_equal(kn_sessions_replace_here(f->ss, "aaaa", "sz", a1->bound_ms - 1, true), 0);
    /* a tie: only when the other node wins ties */
    assert_int_equal(kn_sessions_replace_here(f->ss, "aaaa", "sz", a1->bound_ms, false), 0);
    assert_true(a1->authenticated);
    assert_int_equal(kn_sessions_replace_here(f->ss, "aaaa", "sz", a1->bound_ms, true), 1);
    assert_false(a1->authenticated);
    assert_int_equal(n_noticed, 1);
    assert_int_equal(lanes[0].reasons[0], KAOS__V1__DISCONNECT_REASON__DISCONNECT_SESSION_REPLACED);
    char msg[64];
    assert_true(kn_sessions_revoked(f->ss, "sa1", msg, sizeof msg));
    assert_int_equal(n_forgotten, 1);
    assert_string_equal(forgotten[0], "sa1");
    /* the same session bound elsewhere (a resume there): closed here, not revoked */
    kn_session *a2 = open_bound(f, 1, "aaaa", "sa2");
    assert_int_equal(kn_sessions_replace_here(f->ss, "aaaa", "sa2", a2->bound_ms + 1, false), 1);
    run_posts(&lanes[1]);
    assert_false(a2->authenticated);
    assert_false(kn_sessions_revoked(f->ss, "sa2", msg, sizeof msg));
    assert_int_equal(n_forgotten, 1);
}

static int create_destroy(void *arg)
{
    kn_sessions *ss;
    int rc = kn_sessions_create(arg, &ss);
    kn_sessions_destroy(ss);
    return rc;
}

static void create_survives_allocation_failures(void **state)
{
    fixture *f = *state;
    assert_true(failalloc_sweep(create_destroy, f->out) >= 1);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(the_index_finds_a_users_connections_on_every_thread),
        T(a_logout_unbinds_that_session_everywhere_without_closing),
        T(a_ban_closes_the_users_connections_but_the_spared_one),
        T(every_slot_hears_every_close),
        T(expired_revocations_are_swept),
        T(create_survives_allocation_failures),
        T(single_session_binds_end_the_users_other_connections),
        T(of_two_racing_binds_the_later_one_stays),
        T(ends_and_binds_are_told_to_other_nodes_and_their_ends_are_not_told_back),
        T(a_bind_on_another_node_replaces_only_older_binds_here),
        T(the_list_names_every_bound_session_on_every_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
