/* kn_rank's local implementation against a model: a plain array sorted
 * with kn_rank_compare after every step. Covered: random applies, moves
 * and removes in both orders (ranks, range, after agree with the model at
 * every step), versions (an older entry never replaces a newer one), the
 * fail-the-n-th-allocation pattern, and threads applying at once. */
#include "failalloc.h"
#include "kn_error.h"
#include "kn_rank.h"

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

#define OWNERS 300

static void owner_name(int i, char *out)
{
    snprintf(out, KN_RANK_OWNER_LEN + 1, "00000000-0000-4000-8000-%012d", i);
}

static int g_order;
static int cmp_model(const void *a, const void *b)
{
    return kn_rank_compare(g_order, a, b);
}

static void check_against(kn_rank *r, kn_rank_entry *model, size_t n)
{
    g_order = r->order;
    kn_rank_entry sorted[OWNERS];
    memcpy(sorted, model, n * sizeof *model);
    qsort(sorted, n, sizeof *sorted, cmp_model);
    assert_int_equal(r->vt->count(r), n);
    for (size_t i = 0; i < n; i++) {
        kn_rank_entry got;
        assert_int_equal(r->vt->rank_of(r, sorted[i].owner, &got), (int64_t)i + 1);
        assert_int_equal(got.score, sorted[i].score);
    }
    kn_rank_entry out[OWNERS];
    assert_int_equal(r->vt->range(r, 1, OWNERS, out), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(out[i].owner, sorted[i].owner);
    if (n > 3) {
        int64_t first = 0;
        size_t got = r->vt->after(r, &sorted[2], 5, out, &first);
        assert_int_equal(first, 4);
        assert_int_equal(got, n - 3 < 5 ? n - 3 : 5);
        assert_string_equal(out[0].owner, sorted[3].owner);
    }
}

static void random_mix(int order)
{
    kn_rank *r = NULL;
    assert_int_equal(kn_rank_local_create(order, &r), KN_OK);
    kn_rank_entry model[OWNERS];
    size_t n = 0;
    int64_t version[OWNERS] = {0};
    srand(7 + (unsigned)order);
    for (int step = 0; step < 4000; step++) {
        int who = rand() % OWNERS;
        char owner[KN_RANK_OWNER_LEN + 1];
        owner_name(who, owner);
        size_t at = n;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(model[i].owner, owner)) at = i;
        if (rand() % 10 == 0) {
            int rc = r->vt->remove(r, owner);
            if (at == n) {
                assert_int_equal(rc, KN_ERR_NOT_FOUND);
            } else {
                assert_int_equal(rc, KN_OK);
                model[at] = model[--n];
            }
            version[who] = 0;
        } else {
            kn_rank_entry e = {.score = rand() % 50 - 25, /* ties and negatives */
                               .subscore = rand() % 3,
                               .time_us = rand() % 5,
                               .version = ++version[who]};
            memcpy(e.owner, owner, sizeof e.owner);
            bool applied = false;
            assert_int_equal(r->vt->apply(r, &e, &applied), KN_OK);
            assert_true(applied);
            model[at] = e;
            if (at == n) n++;
        }
        if (step % 97 == 0) check_against(r, model, n);
    }
    check_against(r, model, n);
    r->vt->clear(r);
    assert_int_equal(r->vt->count(r), 0);
    kn_rank_destroy(r);
}

static void random_writes_keep_the_order_descending(void **state)
{
    (void)state;
    random_mix(KN_RANK_DESC);
}

static void random_writes_keep_the_order_ascending(void **state)
{
    (void)state;
    random_mix(KN_RANK_ASC);
}

/* A load (the rebuild) gives the same set as applying the entries one by
 * one, in either order, and the set takes applies and removes after it. */
static void a_load_builds_the_same_set_as_applies(void **state)
{
    (void)state;
    for (int order = KN_RANK_DESC; order <= KN_RANK_ASC; order++) {
        kn_rank *r = NULL;
        assert_int_equal(kn_rank_local_create(order, &r), KN_OK);
        kn_rank_entry model[OWNERS], es[OWNERS];
        srand(11);
        for (int i = 0; i < OWNERS; i++) {
            model[i] = (kn_rank_entry){.score = rand() % 40 - 20,
                                       .subscore = rand() % 2,
                                       .time_us = rand() % 3,
                                       .version = 1};
            owner_name(i, model[i].owner);
        }
        memcpy(es, model, sizeof es);
        assert_int_equal(r->vt->load(r, es, OWNERS), KN_OK);
        check_against(r, model, OWNERS);
        /* then the usual life: a move, a remove */
        model[7].score = 1000;
        model[7].version = 2;
        bool applied;
        assert_int_equal(r->vt->apply(r, &model[7], &applied), KN_OK);
        assert_true(applied);
        assert_int_equal(r->vt->remove(r, model[OWNERS - 1].owner), KN_OK);
        check_against(r, model, OWNERS - 1);
        assert_int_equal(r->vt->load(r, es, 0), KN_OK); /* empty */
        assert_int_equal(r->vt->count(r), 0);
        kn_rank_destroy(r);
    }
}

static void an_older_version_never_replaces_a_newer_one(void **state)
{
    (void)state;
    kn_rank *r = NULL;
    assert_int_equal(kn_rank_local_create(KN_RANK_DESC, &r), KN_OK);
    kn_rank_entry e = {.score = 10, .version = 5};
    owner_name(1, e.owner);
    bool applied;
    assert_int_equal(r->vt->apply(r, &e, &applied), KN_OK);
    assert_true(applied);
    kn_rank_entry old = e;
    old.score = 99;
    old.version = 4;
    assert_int_equal(r->vt->apply(r, &old, &applied), KN_OK);
    assert_false(applied);
    old.version = 5; /* equal: the same write seen twice */
    assert_int_equal(r->vt->apply(r, &old, &applied), KN_OK);
    assert_false(applied);
    kn_rank_entry got;
    assert_int_equal(r->vt->rank_of(r, e.owner, &got), 1);
    assert_int_equal(got.score, 10);
    kn_rank_destroy(r);
}

static void ties_order_by_subscore_then_time_then_owner(void **state)
{
    (void)state;
    kn_rank *r = NULL;
    assert_int_equal(kn_rank_local_create(KN_RANK_DESC, &r), KN_OK);
    kn_rank_entry es[4] = {{.score = 5, .subscore = 1, .time_us = 10, .version = 1},
                           {.score = 5, .subscore = 2, .time_us = 30, .version = 1},
                           {.score = 5, .subscore = 1, .time_us = 5, .version = 1},
                           {.score = 5, .subscore = 1, .time_us = 5, .version = 1}};
    for (int i = 0; i < 4; i++) {
        owner_name(4 - i, es[i].owner);
        bool applied;
        assert_int_equal(r->vt->apply(r, &es[i], &applied), KN_OK);
    }
    /* subscore 2 first; then time 5 (owner 1 before owner 2); then time 10 */
    assert_int_equal(r->vt->rank_of(r, es[1].owner, NULL), 1);
    assert_int_equal(r->vt->rank_of(r, es[3].owner, NULL), 2);
    assert_int_equal(r->vt->rank_of(r, es[2].owner, NULL), 3);
    assert_int_equal(r->vt->rank_of(r, es[0].owner, NULL), 4);
    kn_rank_destroy(r);
}

static int create_and_fill(void *arg)
{
    (void)arg;
    kn_rank *r = NULL;
    int rc = kn_rank_local_create(KN_RANK_DESC, &r);
    for (int i = 0; rc == KN_OK && i < 40; i++) {
        kn_rank_entry e = {.score = i, .version = 1};
        owner_name(i, e.owner);
        bool applied;
        rc = r->vt->apply(r, &e, &applied);
        /* a refused entry leaves the set as it was */
        if (rc) assert_int_equal(r->vt->count(r), (size_t)i);
    }
    if (rc == KN_OK) { /* a rebuild: the set is whole or empty */
        kn_rank_entry es[60];
        for (int i = 0; i < 60; i++) {
            es[i] = (kn_rank_entry){.score = 60 - i, .version = 1};
            owner_name(i, es[i].owner);
        }
        rc = r->vt->load(r, es, 60);
        assert_int_equal(r->vt->count(r), rc ? 0 : 60);
    }
    kn_rank_destroy(r);
    return rc;
}

static void create_and_apply_survive_every_failed_allocation(void **state)
{
    (void)state;
    assert_true(failalloc_sweep(create_and_fill, NULL) >= 3);
}

typedef struct worker {
    kn_rank *r;
    int base;
} worker;

static void *apply_many(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 2000; i++) {
        kn_rank_entry e = {.score = (w->base + i) % 97, .version = 1};
        owner_name(w->base + i, e.owner);
        bool applied;
        if (w->r->vt->apply(w->r, &e, &applied)) return (void *)1;
    }
    return NULL;
}

static void threads_applying_at_once_lose_nothing(void **state)
{
    (void)state;
    kn_rank *r = NULL;
    assert_int_equal(kn_rank_local_create(KN_RANK_ASC, &r), KN_OK);
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){r, i * 100000};
        pthread_create(&t[i], NULL, apply_many, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(t[i], &res);
        assert_null(res);
    }
    assert_int_equal(r->vt->count(r), 8000);
    kn_rank_entry out[8000];
    assert_int_equal(r->vt->range(r, 1, 8000, out), 8000);
    for (int i = 1; i < 8000; i++)
        assert_true(kn_rank_compare(KN_RANK_ASC, &out[i - 1], &out[i]) < 0);
    assert_true(r->vt->memory(r) > 8000 * sizeof(kn_rank_entry));
    kn_rank_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_writes_keep_the_order_descending),
        cmocka_unit_test(random_writes_keep_the_order_ascending),
        cmocka_unit_test(a_load_builds_the_same_set_as_applies),
        cmocka_unit_test(an_older_version_never_replaces_a_newer_one),
        cmocka_unit_test(ties_order_by_subscore_then_time_then_owner),
        cmocka_unit_test(create_and_apply_survive_every_failed_allocation),
        cmocka_unit_test(threads_applying_at_once_lose_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
