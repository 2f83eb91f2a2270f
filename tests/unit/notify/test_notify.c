/* kn_notify against the Postgres named by the PG* environment (the suite
 * runs inside pg_virtualenv). The group setup creates a database of its
 * own, migrates it and adds users with plain INSERTs; each test uses users
 * of its own. Live delivery goes through a real kn_out whose one lane and
 * directory are fakes: the directory says which users are "online" (one
 * connection each) and the lane decodes what it is asked to send.
 * Covered: persistent and live-only sends, grouping per recipient, list
 * order and the cacheable cursor, limits and bad input, reserved codes,
 * delete of one's own only, account deletion, allocation failures; a send
 * to everyone (stored for every user under one id in one statement, one
 * broadcast through the lane's send_authenticated). */
#include "failalloc.h"
#include "pgtest.h"
#include "kn_codec.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_notify.h"
#include "kn_out.h"

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
static kn_db *db;
static kn_out *out;
static char msg[512];

/* --- the fake network: one online user at a time ------------------------- */

static char online[37];   /* the user with connection 1, "" for nobody */
static int envelopes;     /* Notifications envelopes sent */
static int pushed;        /* notifications in them */
static int last_codes[8]; /* codes of the last envelope */
static bool last_persistent[8];

static size_t conns_of(void *ud, const char *user_id, const char *session_id, kn_conn_id *ids,
                       size_t cap)
{
    (void)ud;
    (void)session_id;
    if (!*online || strcmp(user_id, online)) return 0;
    if (cap) ids[0] = 1;
    return 1;
}

static int send_many(void *ud, const kn_conn_id *ids, size_t n, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable)
{
    (void)ud;
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    assert_int_equal(channel, KN_CHANNEL_CONTROL);
    assert_true(reliable);
    kn_envelope *env = NULL;
    int rc = kn_envelope_decode(data, len, &env);
    /* Only the allocation sweep makes the decoder fail (it says MALFORMED
     * then); elsewhere a missing envelope fails the test's counts. */
    if (rc != KN_OK) return KN_ERR_NOMEM;
    assert_int_equal(env->message_case, KAOS__V1__ENVELOPE__MESSAGE_NOTIFICATIONS);
    assert_int_equal(env->cid, 0);
    envelopes++;
    for (size_t i = 0; i < env->notifications->n_notifications; i++) {
        if (i < 8) {
            last_codes[i] = env->notifications->notifications[i]->code;
            last_persistent[i] = env->notifications->notifications[i]->persistent;
        }
        pushed++;
    }
    kn_envelope_free(env);
    return KN_OK;
}

static int broadcasts;        /* send_authenticated calls */
static char broadcast_id[40]; /* the id in the last one */
static int broadcast_code;
static bool broadcast_persistent;

static int send_all(void *ud, uint8_t channel, const uint8_t *data, size_t len, bool reliable)
{
    (void)ud;
    assert_int_equal(channel, KN_CHANNEL_CONTROL);
    assert_true(reliable);
    kn_envelope *env = NULL;
    assert_int_equal(kn_envelope_decode(data, len, &env), KN_OK);
    assert_int_equal(env->message_case, KAOS__V1__ENVELOPE__MESSAGE_NOTIFICATIONS);
    assert_int_equal(env->notifications->n_notifications, 1);
    const Kaos__V1__Notification *n = env->notifications->notifications[0];
    snprintf(broadcast_id, sizeof broadcast_id, "%s", n->id);
    broadcast_code = n->code;
    broadcast_persistent = n->persistent;
    assert_string_equal(n->sender_id, "");
    broadcasts++;
    kn_envelope_free(env);
    return KN_OK;
}

static bool on_thread(void *ud)
{
    (void)ud;
    return true;
}

/* --- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    if (pgtest_create(&pg, "kaos_notify", &db)) return -1;
    static const kn_out_lane lane = {
        .send_many = send_many, .on_thread = on_thread, .send_authenticated = send_all};
    static const kn_out_directory dir = {.conns_of = conns_of};
    if (kn_out_create(1, &out)) return -1;
    kn_out_attach_lane(out, 0, &lane);
    kn_out_set_directory(out, &dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kn_out_destroy(out);
    kn_db_close(db);
    pgtest_drop(&pg);
    return 0;
}

static void user(const char *name, char id[37])
{
    static unsigned serial;
    snprintf(id, 37, "a0000000-0000-4000-8000-%012x", ++serial);
    pgtest_sql(db, "INSERT INTO users (id, username) VALUES ('%s', '%s')", id, name);
}

static kn_notify_msg note(const char *to, const char *subject, int code, bool persistent)
{
    return (kn_notify_msg){to, subject, "{\"n\":1}", code, NULL, persistent};
}

static size_t list(const char *who, int limit, const char *cursor, char **next,
                   kn_notification **notes)
{
    size_t n = 99;
    assert_int_equal(kn_notify_list(db, who, limit, cursor, notes, &n, next, msg, sizeof msg),
                     KN_OK);
    return n;
}

static void reset_wire(const char *who)
{
    snprintf(online, sizeof online, "%s", who ? who : "");
    envelopes = pushed = 0;
}

/* --- tests ------------------------------------------------------------- */

static void persistent_ones_are_stored_and_pushed_live_only_ones_only_pushed(void **state)
{
    (void)state;
    char a[37];
    user("np-a", a);
    reset_wire(a);
    kn_notify_msg m[] = {note(a, "stored", 1, true), note(a, "live", 2, false)};
    assert_int_equal(kn_notify_send(db, out, m, 2, false, msg, sizeof msg), KN_OK);
    assert_int_equal(envelopes, 1); /* one envelope per recipient */
    assert_int_equal(pushed, 2);
    assert_int_equal(last_codes[0], 1);
    assert_true(last_persistent[0]);
    assert_int_equal(last_codes[1], 2);
    assert_false(last_persistent[1]);
    kn_notification *notes;
    char *next;
    size_t n = list(a, 0, NULL, &next, &notes);
    assert_int_equal(n, 1);
    assert_string_equal(notes[0].subject, "stored");
    assert_string_equal(notes[0].content, "{\"n\": 1}");
    assert_string_equal(notes[0].sender_id, "");
    assert_int_equal(notes[0].code, 1);
    assert_true(notes[0].persistent);
    assert_true(notes[0].create_time > 1700000000);
    kn_notify_free(notes, n);
    kn_free(next);
}

static void an_offline_user_finds_the_persistent_ones_on_the_next_list(void **state)
{
    (void)state;
    char a[37], b[37];
    user("no-a", a);
    user("no-b", b);
    reset_wire(NULL);
    kn_notify_msg m = {b, "hello", "{}", 5, a, true};
    assert_int_equal(kn_notify_send(db, out, &m, 1, false, msg, sizeof msg), KN_OK);
    assert_int_equal(envelopes, 0);
    kn_notification *notes;
    char *next;
    size_t n = list(b, 0, "", &next, &notes);
    assert_int_equal(n, 1);
    assert_string_equal(notes[0].sender_id, a);
    kn_notify_free(notes, n);
    kn_free(next);
}

static void lists_come_oldest_first_and_the_cursor_returns_only_newer_ones(void **state)
{
    (void)state;
    char a[37];
    user("nl-a", a);
    reset_wire(NULL);
    for (int i = 0; i < 5; i++) {
        char s[8];
        snprintf(s, sizeof s, "s%d", i);
        kn_notify_msg m = note(a, s, i, true);
        assert_int_equal(kn_notify_send(db, out, &m, 1, false, msg, sizeof msg), KN_OK);
    }
    kn_notification *notes;
    char *c1, *c2, *c3;
    size_t n = list(a, 3, NULL, &c1, &notes);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(notes[i].code, i);
    kn_notify_free(notes, n);
    n = list(a, 3, c1, &c2, &notes);
    assert_int_equal(n, 2);
    assert_int_equal(notes[0].code, 3);
    assert_int_equal(notes[1].code, 4);
    kn_notify_free(notes, n);
    /* Nothing new: nothing returned, and the cursor given comes back. */
    n = list(a, 0, c2, &c3, &notes);
    assert_int_equal(n, 0);
    assert_null(notes);
    assert_string_equal(c3, c2);
    kn_free(c3);
    kn_notify_msg m = note(a, "new", 9, true);
    assert_int_equal(kn_notify_send(db, out, &m, 1, false, msg, sizeof msg), KN_OK);
    n = list(a, 0, c2, &c3, &notes);
    assert_int_equal(n, 1);
    assert_string_equal(notes[0].subject, "new");
    kn_notify_free(notes, n);
    kn_free(c1);
    kn_free(c2);
    kn_free(c3);
}

static void bad_input_is_refused_and_nothing_is_sent(void **state)
{
    (void)state;
    char a[37];
    user("nb-a", a);
    reset_wire(a);
    char long_subject[300];
    memset(long_subject, 'x', sizeof long_subject - 1);
    long_subject[sizeof long_subject - 1] = '\0';
    char *big = kn_malloc(KN_NOTIFY_CONTENT_MAX + 16);
    assert_non_null(big);
    memset(big, ' ', KN_NOTIFY_CONTENT_MAX + 15);
    big[0] = '{';
    big[KN_NOTIFY_CONTENT_MAX + 14] = '}';
    big[KN_NOTIFY_CONTENT_MAX + 15] = '\0';
    kn_notify_msg bad[] = {
        {a, "", "{}", 0, NULL, true},    {a, long_subject, "{}", 0, NULL, true},
        {a, "s", "[1]", 0, NULL, true},  {a, "s", "not json", 0, NULL, true},
        {a, "s", big, 0, NULL, true},    {a, "s", "{}", -2, NULL, true},
        {a, "s", "{}", 0, "nope", true}, {"nope", "s", "{}", 0, NULL, true},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* a good one first: a refusal anywhere sends nothing */
        kn_notify_msg two[] = {note(a, "ok", 1, true), bad[i]};
        assert_int_equal(kn_notify_send(db, out, two, 2, false, msg, sizeof msg),
                         KN_ERR_INVALID_ARGUMENT);
    }
    kn_free(big);
    assert_int_equal(envelopes, 0);
    kn_notify_msg many[KN_NOTIFY_BATCH_MAX + 1];
    for (size_t i = 0; i < KN_NOTIFY_BATCH_MAX + 1; i++)
        many[i] = note(a, "s", 0, false);
    assert_int_equal(kn_notify_send(db, out, many, KN_NOTIFY_BATCH_MAX + 1, false, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    /* The system may use negative codes. */
    kn_notify_msg sys = {a, "system", "{}", KN_NOTIFY_CODE_FRIEND_REQUEST, NULL, true};
    assert_int_equal(kn_notify_send(db, out, &sys, 1, true, msg, sizeof msg), KN_OK);
    assert_int_equal(envelopes, 1);
    assert_int_equal(last_codes[0], -2);
    /* A recipient that does not exist: NOT_FOUND, nothing stored or pushed. */
    kn_notify_msg ghost[] = {note(a, "g", 1, true),
                             note("a0000000-0000-4000-8000-ffffffffffff", "g", 1, true)};
    assert_int_equal(kn_notify_send(db, out, ghost, 2, false, msg, sizeof msg), KN_ERR_NOT_FOUND);
    assert_int_equal(envelopes, 1);
    kn_notification *notes;
    char *next;
    size_t n = list(a, 0, NULL, &next, &notes);
    assert_int_equal(n, 1); /* only the system one */
    kn_notify_free(notes, n);
    kn_free(next);
    /* Bad list input. */
    size_t nn;
    assert_int_equal(kn_notify_list(db, a, 101, NULL, &notes, &nn, &next, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_notify_list(db, a, -1, NULL, &notes, &nn, &next, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    const char *cursors[] = {"x",
                             "12",
                             "12.",
                             ".a0000000-0000-4000-8000-000000000001",
                             "1x.a0000000-0000-4000-8000-000000000001",
                             "12.nope",
                             "12345678901234567890.a0000000-0000-4000-8000-000000000001"};
    for (size_t i = 0; i < sizeof cursors / sizeof cursors[0]; i++) {
        assert_int_equal(kn_notify_list(db, a, 0, cursors[i], &notes, &nn, &next, msg, sizeof msg),
                         KN_ERR_INVALID_ARGUMENT);
        assert_null(notes);
        assert_null(next);
    }
    assert_int_equal(
        kn_notify_cursor_check("12.a0000000-0000-4000-8000-000000000001", msg, sizeof msg), KN_OK);
}

static void delete_removes_only_the_callers_own(void **state)
{
    (void)state;
    char a[37], b[37];
    user("nd-a", a);
    user("nd-b", b);
    reset_wire(NULL);
    kn_notify_msg m[] = {note(a, "a", 1, true), note(b, "b", 1, true)};
    assert_int_equal(kn_notify_send(db, out, m, 2, false, msg, sizeof msg), KN_OK);
    kn_notification *na, *nb;
    char *ca, *cb;
    assert_int_equal(list(a, 0, NULL, &ca, &na), 1);
    assert_int_equal(list(b, 0, NULL, &cb, &nb), 1);
    const char *ids[] = {na[0].id, nb[0].id};
    assert_int_equal(kn_notify_delete(db, b, ids, 2, msg, sizeof msg), KN_OK);
    kn_notify_free(na, 1);
    kn_notify_free(nb, 1);
    kn_free(ca);
    kn_free(cb);
    assert_int_equal(list(a, 0, NULL, &ca, &na), 1); /* a's stays */
    assert_int_equal(list(b, 0, NULL, &cb, &nb), 0);
    kn_notify_free(na, 1);
    kn_free(ca);
    kn_free(cb);
    const char *bad[] = {"nope"};
    assert_int_equal(kn_notify_delete(db, a, bad, 1, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_notify_delete(db, a, NULL, 0, msg, sizeof msg), KN_OK);
}

static void deleting_an_account_removes_its_notifications(void **state)
{
    (void)state;
    char a[37];
    user("nx-a", a);
    reset_wire(NULL);
    kn_notify_msg m = note(a, "bye", 1, true);
    assert_int_equal(kn_notify_send(db, out, &m, 1, false, msg, sizeof msg), KN_OK);
    pgtest_sql(db, "DELETE FROM users WHERE id = '%s'", a);
    kn_db_rows *rows = NULL;
    static const kn_db_stmt count = {"test_notify_count",
                                     "SELECT count(*) FROM notification WHERE user_id = $1", 1};
    const char *p[] = {a};
    assert_int_equal(kn_db_query(db, &count, p, &rows), KN_OK);
    assert_string_equal(kn_db_rows_get(rows, 0, 0), "0");
    kn_db_rows_free(rows);
}

/* Allocation failures: a send (store + live delivery) and a list. */
static char fa_user[37];

static int send_and_list(void *arg)
{
    (void)arg;
    kn_notify_msg m[] = {note(fa_user, "fa", 1, true), note(fa_user, "fb", 2, false)};
    int rc = kn_notify_send(db, out, m, 2, false, msg, sizeof msg);
    if (rc) return rc;
    kn_notification *notes;
    size_t n;
    char *next;
    rc = kn_notify_list(db, fa_user, 0, NULL, &notes, &n, &next, msg, sizeof msg);
    if (rc) return rc;
    kn_notify_free(notes, n);
    kn_free(next);
    return 0;
}

/* A send waits for another send to the same user to commit, and lists after
 * it even when that one's position is ahead of the clock: no row commits
 * behind a cursor already handed out. The "other send" is a transaction on
 * a second connection holding the recipient's lock with a row positioned
 * ten seconds in the future. */
typedef struct racer {
    kn_db *db;
    const char *to;
    int rc;
} racer;

static void *send_one(void *arg)
{
    racer *r = arg;
    kn_notify_msg m = note(r->to, "second", 2, true);
    char why[256];
    r->rc = kn_notify_send(r->db, NULL, &m, 1, false, why, sizeof why);
    return NULL;
}

static void a_send_waits_for_the_users_earlier_send_and_lists_after_it(void **state)
{
    (void)state;
    char a[37];
    user("rachel", a);
    kn_db *held, *other;
    assert_int_equal(pgtest_open(&pg, &held), 0);
    assert_int_equal(pgtest_open(&pg, &other), 0);
    pgtest_sql(held, "BEGIN");
    pgtest_sql(held, "SELECT pg_advisory_xact_lock_shared(7002, 0)");
    pgtest_sql(held, "SELECT pg_advisory_xact_lock(7001, hashtext(lower('%s')))", a);
    pgtest_sql(held,
               "INSERT INTO notification (id, user_id, subject, content, code, position)"
               " VALUES (gen_random_uuid(), '%s', 'first', '{}', 1,"
               " (extract(epoch FROM clock_timestamp()) * 1000000)::bigint + 10000000)",
               a);
    racer r = {other, a, -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, send_one, &r), 0);
    /* Wait until the send is queued behind the lock (bounded: 10 s). */
    int waiting = 0;
    for (int i = 0; i < 1000 && !waiting; i++) {
        kn_db_rows *rows = NULL;
        static const kn_db_stmt q = {
            "test_waiting",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", 0};
        assert_int_equal(kn_db_query(db, &q, NULL, &rows), KN_OK);
        waiting = atoi(kn_db_rows_get(rows, 0, 0));
        kn_db_rows_free(rows);
        if (!waiting) usleep(10000);
    }
    assert_true(waiting > 0);
    /* Nothing listable yet: the cursor handed out now points at the start. */
    char *next = NULL;
    kn_notification *notes = NULL;
    assert_int_equal(list(a, 10, "", &next, &notes), 0);
    kn_notify_free(notes, 0);
    pgtest_sql(held, "COMMIT");
    pthread_join(th, NULL);
    assert_int_equal(r.rc, KN_OK);
    char *after = NULL;
    size_t n = list(a, 10, next, &after, &notes);
    assert_int_equal(n, 2);
    assert_string_equal(notes[0].subject, "first");
    assert_string_equal(notes[1].subject, "second");
    kn_notify_free(notes, n);
    kn_free(next);
    kn_free(after);
    kn_db_close(held);
    kn_db_close(other);
}

static void notify_calls_survive_allocation_failures(void **state)
{
    (void)state;
    user("nf-a", fa_user);
    reset_wire(fa_user);
    assert_true(failalloc_sweep(send_and_list, NULL) >= 3);
}

static size_t count_users(void)
{
    static const kn_db_stmt q = {
        "test_notify_users",
        "SELECT count(*) FROM users WHERE id <> '00000000-0000-0000-0000-000000000000'", 0};
    kn_db_rows *rows = NULL;
    assert_int_equal(kn_db_query(db, &q, NULL, &rows), KN_OK);
    size_t n = (size_t)strtoull(kn_db_rows_get(rows, 0, 0), NULL, 10);
    kn_db_rows_free(rows);
    return n;
}

/* The newest stored notification of `who` (its id into id, "" when none). */
static int newest(const char *who, char id[40])
{
    kn_notification *notes = NULL;
    char *next = NULL;
    size_t n = list(who, 100, NULL, &next, &notes);
    snprintf(id, 40, "%s", n ? notes[n - 1].id : "");
    int code = n ? notes[n - 1].code : 0;
    kn_notify_free(notes, n);
    kn_free(next);
    return code;
}

static void send_all_stores_one_per_user_under_one_id_and_broadcasts_once(void **state)
{
    (void)state;
    char a[37], b[37], id[40];
    user("all_a", a);
    user("all_b", b);
    reset_wire(NULL);
    broadcasts = 0;
    kn_notify_msg m = {NULL, "maintenance", "{\"at\":\"noon\"}", 42, NULL, true};
    size_t stored = 0;
    assert_int_equal(kn_notify_send_all(db, out, &m, false, &stored, msg, sizeof msg), KN_OK);
    assert_int_equal(stored, count_users());
    assert_true(stored >= 2);
    assert_int_equal(broadcasts, 1);
    assert_int_equal(envelopes, 0); /* no per-user sends */
    assert_int_equal(broadcast_code, 42);
    assert_true(broadcast_persistent);
    assert_int_equal(newest(a, id), 42);
    assert_string_equal(id, broadcast_id);
    assert_int_equal(newest(b, id), 42);
    assert_string_equal(id, broadcast_id);
    /* each user deletes its own copy only */
    const char *ids[] = {broadcast_id};
    assert_int_equal(kn_notify_delete(db, a, ids, 1, msg, sizeof msg), KN_OK);
    assert_int_equal(newest(a, id), 0);
    assert_int_equal(newest(b, id), 42);
    /* live only: broadcast, stored for nobody */
    m.persistent = false;
    m.code = 43;
    assert_int_equal(kn_notify_send_all(db, out, &m, false, &stored, msg, sizeof msg), KN_OK);
    assert_int_equal(stored, 0);
    assert_int_equal(broadcasts, 2);
    assert_int_equal(broadcast_code, 43);
    assert_false(broadcast_persistent);
    assert_int_equal(newest(b, id), 42);
    /* refusals: nothing stored, nothing sent */
    m.persistent = true;
    m.code = -7;
    assert_int_equal(kn_notify_send_all(db, out, &m, false, &stored, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "reserved for the system"));
    m.code = 1;
    m.content = "[1]";
    assert_int_equal(kn_notify_send_all(db, out, &m, false, &stored, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    m.content = NULL;
    m.subject = "";
    assert_int_equal(kn_notify_send_all(db, out, &m, false, &stored, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(broadcasts, 2);
    assert_int_equal(newest(b, id), 42);
    /* the system may use a reserved code; no kn_out stores without pushing */
    m.subject = "system";
    m.code = -9;
    assert_int_equal(kn_notify_send_all(db, NULL, &m, true, NULL, msg, sizeof msg), KN_OK);
    assert_int_equal(broadcasts, 2);
    assert_int_equal(newest(b, id), -9);
}

static void the_session_replaced_notice_goes_live_to_that_one_connection(void **state)
{
    (void)state;
    reset_wire(NULL);
    kn_notify_session_replaced(out, 1); /* connection 1: the fake lane checks the id */
    assert_int_equal(envelopes, 1);
    assert_int_equal(pushed, 1);
    assert_int_equal(last_codes[0], KN_NOTIFY_CODE_SESSION_REPLACED);
    assert_false(last_persistent[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(persistent_ones_are_stored_and_pushed_live_only_ones_only_pushed),
        cmocka_unit_test(an_offline_user_finds_the_persistent_ones_on_the_next_list),
        cmocka_unit_test(lists_come_oldest_first_and_the_cursor_returns_only_newer_ones),
        cmocka_unit_test(bad_input_is_refused_and_nothing_is_sent),
        cmocka_unit_test(delete_removes_only_the_callers_own),
        cmocka_unit_test(deleting_an_account_removes_its_notifications),
        cmocka_unit_test(a_send_waits_for_the_users_earlier_send_and_lists_after_it),
        cmocka_unit_test(notify_calls_survive_allocation_failures),
        cmocka_unit_test(send_all_stores_one_per_user_under_one_id_and_broadcasts_once),
        cmocka_unit_test(the_session_replaced_notice_goes_live_to_that_one_connection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
