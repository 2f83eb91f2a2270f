/* kn_economy against the Postgres named by the PG* environment (the suite
 * runs inside pg_virtualenv), in a database of its own: wallet updates and
 * their refusals, batches that change nothing when one update fails, the
 * ledger's pages and metadata, races of two connections (increments that
 * all land, spends that never go below zero) and multi-updates rolled back
 * by each kind of failure. */
#include "failalloc.h"
#include "pgtest.h"
#include "kn_account.h"
#include "kn_db.h"
#include "kn_economy.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_storage.h"

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

#define ALICE  "a11ce000-0000-4000-8000-000000000001"
#define BOB    "b0b00000-0000-4000-8000-000000000002"
#define CAROL  "ca201000-0000-4000-8000-000000000003"
#define DAVE   "da7e0000-0000-4000-8000-000000000004"
#define NOBODY "0dd00000-0000-4000-8000-000000000009"

static pgtest pg;
static kn_db *db, *db2;
static char msg[512];

static int setup(void **state)
{
    (void)state;
    if (pgtest_create(&pg, "kaos_economy", &db) || pgtest_open(&pg, &db2)) return -1;
    const char *users[] = {ALICE, BOB, CAROL, DAVE};
    for (int i = 0; i < 4; i++)
        pgtest_sql(db, "INSERT INTO users (id, username) VALUES ('%s', 'user%d')", users[i], i);
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

/* --- helpers ----------------------------------------------------------------- */

/* The balance of `currency` as the account read shows it; `absent` if none. */
static int64_t balance(const char *user, const char *currency, int64_t absent)
{
    kn_account a;
    assert_int_equal(kn_account_get(db, user, &a, msg, sizeof msg), KN_OK);
    char key[160];
    snprintf(key, sizeof key, "\"%s\": ", currency);
    const char *at = strstr(a.wallet, key);
    int64_t v = at ? strtoll(at + strlen(key), NULL, 10) : absent;
    kn_account_deinit(&a);
    return v;
}

static int update(kn_db *d, const char *user, const char *changeset, bool allow_negative,
                  bool ledger)
{
    kn_wallet_update_op op = {user, changeset, "{\"why\": \"test\"}", allow_negative};
    kn_wallet_result *r = NULL;
    int rc = kn_wallets_update(d, &op, 1, ledger, &r, msg, sizeof msg);
    kn_wallet_results_free(r, 1);
    return rc;
}

static size_t ledger_count(const char *user)
{
    size_t total = 0, n;
    char *cursor = NULL;
    do {
        kn_wallet_ledger_entry *e = NULL;
        char *next = NULL;
        assert_int_equal(
            kn_wallet_ledger_list(db, user, 100, cursor, &e, &n, &next, msg, sizeof msg), KN_OK);
        kn_wallet_ledger_free(e, n);
        kn_free(cursor);
        cursor = next;
        total += n;
    } while (cursor);
    return total;
}

static bool storage_exists(const char *user, const char *collection, const char *key)
{
    kn_storage_id id = {collection, key, user};
    kn_storage_object *o = NULL;
    size_t n = 0;
    assert_int_equal(kn_storage_read(db, NULL, &id, 1, &o, &n, msg, sizeof msg), KN_OK);
    kn_free(o);
    return n == 1;
}

/* --- wallets ------------------------------------------------------------------- */

static void an_update_adds_its_deltas_and_reports_both_wallets(void **state)
{
    (void)state;
    kn_wallet_update_op op = {ALICE, "{\"coins\": 100, \"gems\": 5}", NULL, false};
    kn_wallet_result *r = NULL;
    assert_int_equal(kn_wallets_update(db, &op, 1, true, &r, msg, sizeof msg), KN_OK);
    assert_non_null(strstr(r[0].updated, "\"coins\": 100"));
    assert_non_null(strstr(r[0].previous, "\"coins\":0"));
    assert_int_equal(strlen(r[0].ledger_id), 36);
    kn_wallet_results_free(r, 1);
    op.changeset = "{\"coins\": -30}";
    assert_int_equal(kn_wallets_update(db, &op, 1, false, &r, msg, sizeof msg), KN_OK);
    assert_non_null(strstr(r[0].previous, "\"coins\":100"));
    assert_string_equal(r[0].ledger_id, "");
    kn_wallet_results_free(r, 1);
    assert_int_equal(balance(ALICE, "coins", -1), 70);
    assert_int_equal(balance(ALICE, "gems", -1), 5);
    assert_int_equal(ledger_count(ALICE), 1); /* only the update that asked */
}

static void going_below_zero_refuses_the_whole_changeset_naming_the_currency(void **state)
{
    (void)state;
    assert_int_equal(update(db, BOB, "{\"coins\": 10, \"gems\": 3}", false, true), KN_OK);
    assert_int_equal(update(db, BOB, "{\"coins\": 50, \"gems\": -4}", false, true),
                     KN_ERR_FAILED_PRECONDITION);
    assert_non_null(strstr(msg, "\"gems\""));
    assert_non_null(strstr(msg, "below zero"));
    assert_int_equal(balance(BOB, "coins", -1), 10); /* coins were not added either */
    assert_int_equal(balance(BOB, "gems", -1), 3);
    assert_int_equal(ledger_count(BOB), 1);
    /* allowed: */
    assert_int_equal(update(db, BOB, "{\"gems\": -4}", true, false), KN_OK);
    assert_int_equal(balance(BOB, "gems", 0), -1);
}

static void a_balance_past_the_64_bit_range_is_refused(void **state)
{
    (void)state;
    assert_int_equal(update(db, CAROL, "{\"coins\": 9223372036854775807}", false, false), KN_OK);
    assert_int_equal(update(db, CAROL, "{\"coins\": 1}", false, false), KN_ERR_OUT_OF_RANGE);
    assert_non_null(strstr(msg, "\"coins\" would overflow"));
    assert_int_equal(balance(CAROL, "coins", 0), INT64_MAX);
    assert_int_equal(update(db, CAROL, "{\"debt\": -9223372036854775808}", true, false), KN_OK);
    assert_int_equal(update(db, CAROL, "{\"debt\": -1}", true, false), KN_ERR_OUT_OF_RANGE);
    assert_int_equal(update(db, CAROL, "{\"coins\": -9223372036854775807}", false, false), KN_OK);
    assert_int_equal(balance(CAROL, "coins", -1), 0);
}

static void malformed_updates_are_refused_before_the_database(void **state)
{
    (void)state;
    const char *bad[] = {"{\"coins\": 1.5}",
                         "{\"coins\": \"1\"}",
                         "[1]",
                         "{\"\": 1}",
                         "{\"coins\": 1e3}",
                         "not json",
                         "{\"coins\": 99999999999999999999}",
                         "{\"a\": 1, \"a\": 2}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(update(db, DAVE, bad[i], false, false), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(update(db, "not-a-uuid", "{}", false, false), KN_ERR_INVALID_ARGUMENT);
    char many[2048] = "{";
    for (int i = 0; i <= KN_WALLET_CHANGESET_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"c%d\": 1", i ? ", " : "", i);
    strcat(many, "}");
    assert_int_equal(update(db, DAVE, many, false, false), KN_ERR_INVALID_ARGUMENT);
    kn_wallet_update_op op = {DAVE, "{}", "[]", false};
    kn_wallet_result *r = NULL;
    assert_int_equal(kn_wallets_update(db, &op, 1, true, &r, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_null(r);
    assert_int_equal(update(db, NOBODY, "{\"coins\": 1}", false, true), KN_ERR_NOT_FOUND);
}

static void a_failed_batch_changes_no_wallet_and_writes_no_ledger(void **state)
{
    (void)state;
    size_t before = ledger_count(ALICE);
    int64_t coins = balance(ALICE, "coins", 0);
    kn_wallet_update_op ops[] = {
        {ALICE, "{\"coins\": 1}", NULL, false},
        {DAVE, "{\"coins\": 7}", NULL, false},
        {DAVE, "{\"coins\": -8}", NULL, false}, /* the same user again: sees the +7 */
    };
    kn_wallet_result *r = NULL;
    assert_int_equal(kn_wallets_update(db, ops, 3, true, &r, msg, sizeof msg),
                     KN_ERR_FAILED_PRECONDITION);
    assert_non_null(strstr(msg, "wallet update 2"));
    assert_null(r);
    assert_int_equal(balance(ALICE, "coins", 0), coins);
    assert_int_equal(balance(DAVE, "coins", 0), 0);
    assert_int_equal(ledger_count(ALICE), before);
    ops[2].changeset = "{\"coins\": -7}";
    assert_int_equal(kn_wallets_update(db, ops, 3, true, &r, msg, sizeof msg), KN_OK);
    assert_non_null(strstr(r[2].updated, "\"coins\": 0"));
    kn_wallet_results_free(r, 3);
    assert_int_equal(balance(ALICE, "coins", 0), coins + 1);
}

/* --- ledger ------------------------------------------------------------------------ */

static void ledger_pages_walk_every_entry_once_newest_first(void **state)
{
    (void)state;
    pgtest_sql(db, "DELETE FROM wallet_ledger WHERE user_id = '%s'", DAVE);
    for (int i = 1; i <= 23; i++) {
        char cs[64];
        snprintf(cs, sizeof cs, "{\"n%02d\": %d}", i, i);
        assert_int_equal(update(db, DAVE, cs, false, true), KN_OK);
    }
    char *cursor = NULL;
    int expect = 23, pages = 0;
    do {
        kn_wallet_ledger_entry *e = NULL;
        size_t n = 0;
        char *next = NULL;
        assert_int_equal(kn_wallet_ledger_list(db, DAVE, 5, cursor, &e, &n, &next, msg, sizeof msg),
                         KN_OK);
        if (pages == 1) { /* an entry written mid-walk does not shift it */
            assert_int_equal(update(db, DAVE, "{\"late\": 1}", false, true), KN_OK);
        }
        for (size_t i = 0; i < n; i++, expect--) {
            char want[32];
            snprintf(want, sizeof want, "\"n%02d\": %d", expect, expect);
            assert_non_null(strstr(e[i].changeset, want));
            assert_string_equal(e[i].user_id, DAVE);
            assert_string_equal(e[i].metadata, "{\"why\": \"test\"}");
        }
        kn_wallet_ledger_free(e, n);
        if (cursor && pages == 2) {
            /* another user's cursor and garbage are refused */
            kn_wallet_ledger_entry *e2 = NULL;
            size_t n2 = 0;
            char *next2 = NULL;
            assert_int_equal(
                kn_wallet_ledger_list(db, ALICE, 5, cursor, &e2, &n2, &next2, msg, sizeof msg),
                KN_ERR_INVALID_ARGUMENT);
            assert_null(next2);
            assert_int_equal(kn_wallet_ledger_cursor_check(DAVE, "AAAA", msg, sizeof msg),
                             KN_ERR_INVALID_ARGUMENT);
            assert_int_equal(kn_wallet_ledger_cursor_check(DAVE, cursor, msg, sizeof msg), KN_OK);
        }
        kn_free(cursor);
        cursor = next;
        pages++;
    } while (cursor);
    assert_int_equal(expect, 0);
    assert_int_equal(pages, 5);
    kn_wallet_ledger_entry *e = NULL;
    size_t n;
    char *next;
    assert_int_equal(kn_wallet_ledger_list(db, DAVE, 0, NULL, &e, &n, &next, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
}

static void ledger_metadata_can_be_replaced(void **state)
{
    (void)state;
    kn_wallet_update_op op = {CAROL, "{\"tokens\": 2}", "{\"a\": 1}", false};
    kn_wallet_result *r = NULL;
    assert_int_equal(kn_wallets_update(db, &op, 1, true, &r, msg, sizeof msg), KN_OK);
    kn_wallet_ledger_entry *e = NULL;
    assert_int_equal(
        kn_wallet_ledger_update(db, r[0].ledger_id, "{\"refunded\": true}", &e, msg, sizeof msg),
        KN_OK);
    assert_string_equal(e->id, r[0].ledger_id);
    assert_string_equal(e->metadata, "{\"refunded\": true}");
    assert_non_null(strstr(e->changeset, "\"tokens\": 2"));
    kn_wallet_ledger_free(e, 1);
    assert_int_equal(kn_wallet_ledger_update(db, r[0].ledger_id, "[1]", &e, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_wallet_ledger_update(db, NOBODY, "{}", &e, msg, sizeof msg),
                     KN_ERR_NOT_FOUND);
    kn_wallet_results_free(r, 1);
}

/* --- races ---------------------------------------------------------------------------- */

typedef struct racer {
    kn_db *d;
    const char *changeset;
    int tries, ok, refused, other;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    char m[256];
    for (int i = 0; i < r->tries; i++) {
        kn_wallet_update_op op = {BOB, r->changeset, NULL, false};
        kn_wallet_result *res = NULL;
        int rc = kn_wallets_update(r->d, &op, 1, true, &res, m, sizeof m);
        kn_wallet_results_free(res, 1);
        if (rc == KN_OK)
            r->ok++;
        else if (rc == KN_ERR_FAILED_PRECONDITION)
            r->refused++;
        else
            r->other++;
    }
    return NULL;
}

static void two_connections_racing_lose_no_increment(void **state)
{
    (void)state;
    int64_t start = balance(BOB, "race", 0);
    racer a = {db, "{\"race\": 3}", 100, 0, 0, 0}, b = {db2, "{\"race\": 5}", 100, 0, 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race, &a), 0);
    race(&b);
    pthread_join(t, NULL);
    assert_int_equal(a.ok + b.ok, 200);
    assert_int_equal(balance(BOB, "race", 0), start + 800);
}

static void concurrent_spends_never_go_below_zero(void **state)
{
    (void)state;
    assert_int_equal(update(db, BOB, "{\"spend\": 40}", false, false), KN_OK);
    racer a = {db, "{\"spend\": -1}", 50, 0, 0, 0}, b = {db2, "{\"spend\": -1}", 50, 0, 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race, &a), 0);
    race(&b);
    pthread_join(t, NULL);
    assert_int_equal(a.other + b.other, 0);
    assert_int_equal(a.ok + b.ok, 40);
    assert_int_equal(a.refused + b.refused, 60);
    assert_int_equal(balance(BOB, "spend", -1), 0);
}

/* --- multi-update ----------------------------------------------------------------------- */

static kn_storage_write_op save(const char *user, const char *key, const char *version)
{
    return (kn_storage_write_op){"saves", key, user, "{\"level\": 3}", version, 1, 1};
}

static void a_multi_update_commits_every_part_together(void **state)
{
    (void)state;
    kn_multi_account_op acc = {ALICE, {.display_name = "Alice", .lang_tag = "pt"}};
    kn_storage_write_op w = save(ALICE, "multi-ok", "*");
    kn_storage_delete_op d = {{"saves", "multi-gone", ALICE}, NULL};
    kn_storage_write_op pre = save(ALICE, "multi-gone", NULL);
    kn_storage_ack *acks = NULL;
    assert_int_equal(kn_storage_write(db, NULL, &pre, 1, &acks, msg, sizeof msg), KN_OK);
    kn_free(acks);
    kn_wallet_update_op wal[] = {{ALICE, "{\"gold\": 9}", NULL, false},
                                 {BOB, "{\"gold\": 1}", NULL, false}};
    kn_multi_ops ops = {&acc, 1, &w, 1, &d, 1, wal, 2, true};
    kn_wallet_result *res = NULL;
    assert_int_equal(kn_multi_update(db, &ops, &acks, &res, msg, sizeof msg), KN_OK);
    assert_string_equal(acks[0].key, "multi-ok");
    assert_non_null(strstr(res[0].updated, "\"gold\": 9"));
    assert_string_equal(res[1].user_id, BOB);
    kn_free(acks);
    kn_wallet_results_free(res, 2);
    assert_true(storage_exists(ALICE, "saves", "multi-ok"));
    assert_false(storage_exists(ALICE, "saves", "multi-gone"));
    assert_int_equal(balance(ALICE, "gold", 0), 9);
    kn_account a;
    assert_int_equal(kn_account_get(db, ALICE, &a, msg, sizeof msg), KN_OK);
    assert_string_equal(a.user.display_name, "Alice");
    kn_account_deinit(&a);
}

/* Runs ops, expects rc, and checks nothing of it landed. */
static void refused_changes_nothing(kn_multi_ops *ops, int rc, const char *part)
{
    size_t ledger = ledger_count(CAROL);
    int64_t gold = balance(CAROL, "gold", 0);
    kn_storage_ack *acks = NULL;
    kn_wallet_result *res = NULL;
    assert_int_equal(kn_multi_update(db, ops, &acks, &res, msg, sizeof msg), rc);
    assert_non_null(strstr(msg, part));
    assert_null(acks);
    assert_null(res);
    assert_false(storage_exists(CAROL, "saves", "atomic"));
    assert_int_equal(balance(CAROL, "gold", 0), gold);
    assert_int_equal(ledger_count(CAROL), ledger);
    kn_account a;
    assert_int_equal(kn_account_get(db, CAROL, &a, msg, sizeof msg), KN_OK);
    assert_null(a.user.display_name);
    kn_account_deinit(&a);
}

static void a_multi_update_is_rolled_back_by_each_kind_of_failure(void **state)
{
    (void)state;
    assert_int_equal(update(db, CAROL, "{\"gold\": 5}", false, false), KN_OK);
    kn_storage_write_op pre = save(CAROL, "taken", NULL);
    kn_storage_ack *acks = NULL;
    assert_int_equal(kn_storage_write(db, NULL, &pre, 1, &acks, msg, sizeof msg), KN_OK);
    kn_free(acks);
    kn_multi_account_op acc = {CAROL, {.display_name = "Carol"}};
    kn_storage_write_op w[] = {save(CAROL, "atomic", "*"), save(CAROL, "taken", "*")};
    kn_wallet_update_op wal = {CAROL, "{\"gold\": 10}", NULL, false};

    /* a storage version conflict (the second write expects no object) */
    kn_multi_ops ops = {&acc, 1, w, 2, NULL, 0, &wal, 1, true};
    refused_changes_nothing(&ops, KN_ERR_FAILED_PRECONDITION, "storage write: version check");

    /* a negative balance, after the storage and account parts ran */
    kn_wallet_update_op spend = {CAROL, "{\"gold\": -6}", NULL, false};
    kn_multi_ops neg = {&acc, 1, w, 1, NULL, 0, &spend, 1, true};
    refused_changes_nothing(&neg, KN_ERR_FAILED_PRECONDITION, "wallet update 0: currency \"gold\"");

    /* a bad account field: refused by the service's check ... */
    kn_multi_account_op bad = {CAROL, {.display_name = "Carol", .lang_tag = "not a tag!"}};
    kn_multi_ops bad_ops = {&bad, 1, w, 1, NULL, 0, &wal, 1, true};
    refused_changes_nothing(&bad_ops, KN_ERR_INVALID_ARGUMENT, "account update 0: lang_tag");

    /* ... or by Postgres inside the transaction (a username another user has) */
    kn_multi_account_op taken[] = {{CAROL, {.display_name = "Carol"}},
                                   {DAVE, {.username = "user0"}}};
    kn_multi_ops taken_ops = {taken, 2, w, 1, NULL, 0, &wal, 1, true};
    refused_changes_nothing(&taken_ops, KN_ERR_ALREADY_EXISTS, "account update 1: username");

    /* an unknown user for the wallet */
    kn_wallet_update_op ghost = {NOBODY, "{\"gold\": 1}", NULL, false};
    kn_multi_ops ghost_ops = {&acc, 1, w, 1, NULL, 0, &ghost, 1, true};
    refused_changes_nothing(&ghost_ops, KN_ERR_NOT_FOUND, "wallet update 0");
}

/* Two connections run multi-updates that name the same two users in
 * opposite orders, each writing a storage object of the other: the lock
 * order (users by id, then storage by key) lets every one through. */
typedef struct crosser {
    kn_db *d;
    const char *first, *second;
    int ok;
} crosser;

static void *cross(void *arg)
{
    crosser *c = arg;
    char m[256];
    for (int i = 0; i < 25; i++) {
        kn_wallet_update_op w[] = {{c->first, "{\"x\": 1}", NULL, false},
                                   {c->second, "{\"x\": 1}", NULL, false}};
        kn_storage_write_op s = {"cross", c->first, c->second, "{\"n\": 1}", NULL, 1, 1};
        kn_multi_account_op a = {c->second, {.location = c->first}};
        kn_multi_ops ops = {&a, 1, &s, 1, NULL, 0, w, 2, true};
        kn_storage_ack *acks = NULL;
        kn_wallet_result *res = NULL;
        if (kn_multi_update(c->d, &ops, &acks, &res, m, sizeof m) == KN_OK) c->ok++;
        kn_free(acks);
        kn_wallet_results_free(res, 2);
    }
    return NULL;
}

static void crossing_multi_updates_all_commit(void **state)
{
    (void)state;
    int64_t x = balance(DAVE, "x", 0);
    crosser a = {db, CAROL, DAVE, 0}, b = {db2, DAVE, CAROL, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cross, &a), 0);
    cross(&b);
    pthread_join(t, NULL);
    assert_int_equal(a.ok + b.ok, 50);
    assert_int_equal(balance(DAVE, "x", 0), x + 50);
}

/* --- allocation failures ------------------------------------------------------------ */

static int update_two(void *arg)
{
    (void)arg;
    kn_wallet_update_op ops[] = {{ALICE, "{\"oom\": 1}", "{\"a\": 1}", false},
                                 {BOB, "{\"oom\": 1}", NULL, false}};
    kn_wallet_result *r = NULL;
    char m[256];
    int rc = kn_wallets_update(db, ops, 2, true, &r, m, sizeof m);
    kn_wallet_results_free(r, 2);
    return rc;
}

static int list_and_relabel(void *arg)
{
    (void)arg;
    kn_wallet_ledger_entry *e = NULL, *one = NULL;
    size_t n = 0;
    char *next = NULL, m[256];
    int rc = kn_wallet_ledger_list(db, ALICE, 1, NULL, &e, &n, &next, m, sizeof m);
    if (rc == KN_OK && (!next || n != 1)) rc = KN_ERR_INTERNAL;
    if (rc == KN_OK) rc = kn_wallet_ledger_update(db, e[0].id, "{\"b\": 2}", &one, m, sizeof m);
    kn_wallet_ledger_free(e, n);
    kn_wallet_ledger_free(one, 1);
    kn_free(next);
    return rc;
}

static int multi(void *arg)
{
    (void)arg;
    kn_multi_account_op a = {ALICE, {.location = "here"}};
    kn_storage_write_op w = save(ALICE, "oom", NULL);
    kn_wallet_update_op u = {ALICE, "{\"oom\": 1}", NULL, false};
    kn_multi_ops ops = {&a, 1, &w, 1, NULL, 0, &u, 1, true};
    kn_storage_ack *acks = NULL;
    kn_wallet_result *r = NULL;
    char m[256];
    int rc = kn_multi_update(db, &ops, &acks, &r, m, sizeof m);
    kn_free(acks);
    kn_wallet_results_free(r, 1);
    return rc;
}

static void economy_calls_survive_allocation_failures(void **state)
{
    (void)state;
    assert_true(failalloc_sweep(update_two, NULL) >= 3);
    assert_true(failalloc_sweep(list_and_relabel, NULL) >= 3);
    assert_true(failalloc_sweep(multi, NULL) >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_update_adds_its_deltas_and_reports_both_wallets),
        cmocka_unit_test(going_below_zero_refuses_the_whole_changeset_naming_the_currency),
        cmocka_unit_test(a_balance_past_the_64_bit_range_is_refused),
        cmocka_unit_test(malformed_updates_are_refused_before_the_database),
        cmocka_unit_test(a_failed_batch_changes_no_wallet_and_writes_no_ledger),
        cmocka_unit_test(ledger_pages_walk_every_entry_once_newest_first),
        cmocka_unit_test(ledger_metadata_can_be_replaced),
        cmocka_unit_test(two_connections_racing_lose_no_increment),
        cmocka_unit_test(concurrent_spends_never_go_below_zero),
        cmocka_unit_test(a_multi_update_commits_every_part_together),
        cmocka_unit_test(a_multi_update_is_rolled_back_by_each_kind_of_failure),
        cmocka_unit_test(crossing_multi_updates_all_commit),
        cmocka_unit_test(economy_calls_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
