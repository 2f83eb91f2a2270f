/* The one way out with two fake lanes: shard 0 is "this thread", shard 1
 * another network thread. A send to this thread's connections goes out at
 * once and uncopied; another shard's get one post per shard carrying a copy
 * of the bytes and only its own ids; a send to a user asks the directory and
 * the remote hook; a close and a closure run at once here and are posted
 * there; a failed allocation drops only what it could not post; a send to
 * everyone reaches each shard's thread once (at once here, a posted copy
 * there) and the remote hook. */
#include "failalloc.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_out.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#define MAX_SEEN 16

typedef struct fake_lane {
    bool here; /* the caller is this lane's thread */
    struct {
        kn_conn_id ids[8];
        size_t n;
        uint8_t data[32];
        size_t len;
        const uint8_t *ptr; /* where the bytes were when sent */
    } sent[MAX_SEEN];
    size_t n_sent;
    struct {
        void (*fn)(void *);
        void *arg;
    } posts[MAX_SEEN];
    size_t n_posts;
    kn_conn_id closed;
    uint32_t reason;
    struct {
        uint8_t data[32];
        size_t len;
        const uint8_t *ptr;
        uint8_t channel;
        bool reliable;
    } all[MAX_SEEN]; /* what send_authenticated got */
    size_t n_all;
} fake_lane;

static int l_send(void *ud, const kn_conn_id *ids, size_t n, uint8_t ch, const uint8_t *data,
                  size_t len, bool reliable)
{
    fake_lane *l = ud;
    assert_true(l->here); /* kn_net_send_many is a net-thread call */
    assert_true(l->n_sent < MAX_SEEN && n <= 8 && len <= 32);
    l->sent[l->n_sent].n = n;
    memcpy(l->sent[l->n_sent].ids, ids, n * sizeof *ids);
    memcpy(l->sent[l->n_sent].data, data, len);
    l->sent[l->n_sent].len = len;
    l->sent[l->n_sent].ptr = data;
    l->n_sent++;
    return KN_OK;
}

static int l_all(void *ud, uint8_t ch, const uint8_t *data, size_t len, bool reliable)
{
    fake_lane *l = ud;
    assert_true(l->here); /* kn_net_send_authenticated is a net-thread call */
    assert_true(l->n_all < MAX_SEEN && len <= 32);
    memcpy(l->all[l->n_all].data, data, len);
    l->all[l->n_all].len = len;
    l->all[l->n_all].ptr = data;
    l->all[l->n_all].channel = ch;
    l->all[l->n_all].reliable = reliable;
    l->n_all++;
    return KN_OK;
}

static void l_close(void *ud, kn_conn_id id, uint32_t reason)
{
    fake_lane *l = ud;
    assert_true(l->here);
    l->closed = id;
    l->reason = reason;
}

static int l_post(void *ud, void (*fn)(void *), void *arg)
{
    fake_lane *l = ud;
    assert_true(l->n_posts < MAX_SEEN);
    l->posts[l->n_posts].fn = fn;
    l->posts[l->n_posts++].arg = arg;
    return KN_OK;
}

static bool l_here(void *ud)
{
    return ((fake_lane *)ud)->here;
}
static void *l_data(void *ud, kn_conn_id id)
{
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

/* Runs what was posted to lane l, as its thread would. */
static void run_posts(fake_lane *l)
{
    bool was = l->here;
    l->here = true;
    for (size_t i = 0; i < l->n_posts; i++)
        l->posts[i].fn(l->posts[i].arg);
    l->n_posts = 0;
    l->here = was;
}

static kn_conn_id conn(uint16_t shard, uint32_t slot)
{
    return ((kn_conn_id)1 << 32) | ((kn_conn_id)shard << 16) | slot;
}

static fake_lane lanes[2];

static kn_out *make(void)
{
    memset(lanes, 0, sizeof lanes);
    lanes[0].here = true;
    kn_out *o;
    assert_int_equal(kn_out_create(2, &o), KN_OK);
    for (size_t i = 0; i < 2; i++) {
        kn_out_lane l = {l_send, l_close,     l_post,       l_here,    l_data,
                         l_auth, l_violation, l_overloaded, &lanes[i], l_all};
        kn_out_attach_lane(o, i, &l);
    }
    return o;
}

static void a_send_reaches_each_shard_the_right_way(void **state)
{
    kn_out *o = make();
    kn_conn_id ids[4] = {conn(0, 1), conn(1, 2), conn(0, 3), conn(1, 4)};
    uint8_t bytes[5] = "hello";
    assert_int_equal(kn_out_send(o, ids, 4, 2, bytes, 5, false), KN_OK);
    /* this thread: at once, the caller's own bytes (no copy) */
    assert_int_equal(lanes[0].n_sent, 1);
    assert_ptr_equal(lanes[0].sent[0].ptr, bytes);
    assert_int_equal(lanes[0].n_posts, 0);
    /* the other: one post, with a copy and only its ids */
    assert_int_equal(lanes[1].n_sent, 0);
    assert_int_equal(lanes[1].n_posts, 1);
    memset(bytes, 'x', sizeof bytes); /* the copy must not see this */
    run_posts(&lanes[1]);
    assert_int_equal(lanes[1].n_sent, 1);
    assert_int_equal(lanes[1].sent[0].n, 2);
    assert_int_equal(lanes[1].sent[0].ids[0], conn(1, 2));
    assert_int_equal(lanes[1].sent[0].ids[1], conn(1, 4));
    assert_memory_equal(lanes[1].sent[0].data, "hello", 5);
    kn_out_destroy(o);
}

static void ids_of_unknown_shards_are_nobody(void **state)
{
    kn_out *o = make();
    kn_conn_id stray = conn(7, 1); /* no such shard */
    assert_int_equal(kn_out_send(o, &stray, 1, 0, (const uint8_t *)"x", 1, true), KN_ERR_NOT_FOUND);
    assert_int_equal(lanes[0].n_sent + lanes[1].n_sent + lanes[1].n_posts, 0);
    kn_out_destroy(o);
}

static kn_conn_id user_conns[3];

static size_t directory(void *ud, const char *user_id, const char *session_id, kn_conn_id *out,
                        size_t cap)
{
    if (strcmp(user_id, "u1")) return 0;
    size_t n = session_id ? 1 : 3;
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = user_conns[i];
    return n;
}

static int remote_calls;

static int remote(void *ud, const char *user_id, const char *session_id, uint8_t channel,
                  const uint8_t *data, size_t len, bool reliable)
{
    remote_calls++;
    return strcmp(user_id, "elsewhere") ? KN_ERR_NOT_FOUND : KN_OK;
}

static void a_send_to_a_user_asks_the_directory_and_the_remote_hook(void **state)
{
    kn_out *o = make();
    user_conns[0] = conn(0, 1);
    user_conns[1] = conn(1, 1);
    user_conns[2] = conn(0, 2);
    kn_out_directory d = {directory, NULL};
    kn_out_set_directory(o, &d);
    kn_out_remote r = {remote, NULL, NULL};
    kn_out_set_remote(o, &r);
    remote_calls = 0;
    assert_int_equal(kn_out_send_user(o, "u1", NULL, 0, (const uint8_t *)"hi", 2, true), KN_OK);
    assert_int_equal(lanes[0].n_sent, 1);
    assert_int_equal(lanes[0].sent[0].n, 3); /* the net skips other shards' ids itself */
    assert_int_equal(lanes[1].n_posts, 1);
    assert_int_equal(remote_calls, 1);
    /* one session: the directory's answer narrows it */
    assert_int_equal(kn_out_send_user(o, "u1", "s1", 0, (const uint8_t *)"hi", 2, true), KN_OK);
    assert_int_equal(lanes[0].n_sent, 2);
    assert_int_equal(lanes[0].sent[1].n, 1);
    /* nobody here, but on another node */
    assert_int_equal(kn_out_send_user(o, "elsewhere", NULL, 0, (const uint8_t *)"hi", 2, true),
                     KN_OK);
    assert_int_equal(kn_out_send_user(o, "nobody", NULL, 0, (const uint8_t *)"hi", 2, true),
                     KN_ERR_NOT_FOUND);
    run_posts(&lanes[1]);
    kn_out_destroy(o);
}

static int remote_all_calls;

static int remote_all(void *ud, uint8_t channel, const uint8_t *data, size_t len, bool reliable)
{
    remote_all_calls++;
    return KN_OK;
}

static void a_send_to_everyone_reaches_every_shard_once_and_the_remote_hook(void **state)
{
    kn_out *o = make();
    uint8_t bytes[3] = "all";
    assert_int_equal(kn_out_send_all(o, 0, bytes, 3, true), KN_OK);
    /* this thread: at once, the caller's bytes */
    assert_int_equal(lanes[0].n_all, 1);
    assert_ptr_equal(lanes[0].all[0].ptr, bytes);
    assert_int_equal(lanes[0].n_posts, 0);
    /* the other: one post carrying a copy, sent by its thread */
    assert_int_equal(lanes[1].n_all, 0);
    assert_int_equal(lanes[1].n_posts, 1);
    memset(bytes, 'x', sizeof bytes);
    run_posts(&lanes[1]);
    assert_int_equal(lanes[1].n_all, 1);
    assert_memory_equal(lanes[1].all[0].data, "all", 3);
    assert_true(lanes[1].all[0].reliable);
    assert_int_equal(lanes[1].all[0].channel, 0);
    assert_int_equal(lanes[0].n_sent + lanes[1].n_sent, 0); /* no per-connection sends */
    /* the remote hook gets it once, for the other nodes */
    kn_out_remote r = {remote, remote_all, NULL};
    kn_out_set_remote(o, &r);
    remote_all_calls = 0;
    assert_int_equal(kn_out_send_all(o, 1, (const uint8_t *)"b", 1, false), KN_OK);
    assert_int_equal(remote_all_calls, 1);
    run_posts(&lanes[1]);
    assert_int_equal(lanes[1].n_all, 2);
    assert_false(lanes[1].all[1].reliable);
    /* a copy that cannot be made drops that shard only; nothing reachable is NOMEM */
    kn_out_set_remote(o, NULL);
    failalloc_install(0);
    int rc = kn_out_send_all(o, 0, (const uint8_t *)"c", 1, true);
    failalloc_remove();
    assert_int_equal(rc, KN_OK);
    assert_int_equal(lanes[0].n_all, 3);
    assert_int_equal(lanes[1].n_posts, 0);
    kn_out_destroy(o);
    /* one shard, another thread's, and its copy fails: nobody could be reached */
    kn_out *one;
    assert_int_equal(kn_out_create(1, &one), KN_OK);
    kn_out_lane far = {l_send, l_close,     l_post,       l_here,    l_data,
                       l_auth, l_violation, l_overloaded, &lanes[1], l_all};
    kn_out_attach_lane(one, 0, &far);
    failalloc_install(0);
    rc = kn_out_send_all(one, 0, (const uint8_t *)"d", 1, true);
    failalloc_remove();
    assert_int_equal(rc, KN_ERR_NOMEM);
    assert_int_equal(lanes[1].n_posts, 0);
    kn_out_destroy(one);
}

static int ran;
static void count_run(void *arg)
{
    ran += *(int *)arg;
}

static void closes_and_closures_run_here_or_are_posted(void **state)
{
    kn_out *o = make();
    assert_int_equal(kn_out_close(o, conn(0, 5), 12), KN_OK);
    assert_int_equal(lanes[0].closed, conn(0, 5));
    assert_int_equal(lanes[0].reason, 12);
    assert_int_equal(kn_out_close(o, conn(1, 6), 12), KN_OK);
    assert_int_equal(lanes[1].closed, 0);
    run_posts(&lanes[1]);
    assert_int_equal(lanes[1].closed, conn(1, 6));
    int one = 1;
    ran = 0;
    assert_int_equal(kn_out_on_shard(o, 0, count_run, &one), KN_OK);
    assert_int_equal(ran, 1);
    assert_int_equal(kn_out_on_shard(o, 1, count_run, &one), KN_OK);
    assert_int_equal(ran, 1);
    assert_int_equal(kn_out_post(o, 0, count_run, &one), KN_OK); /* always posted */
    assert_int_equal(ran, 1);
    run_posts(&lanes[0]);
    run_posts(&lanes[1]);
    assert_int_equal(ran, 3);
    assert_int_equal(kn_out_on_shard(o, 9, count_run, &one), KN_ERR_NOT_FOUND);
    kn_out_destroy(o);
}

static void a_failed_copy_drops_only_what_it_could_not_post(void **state)
{
    kn_out *o = make();
    kn_conn_id ids[2] = {conn(0, 1), conn(1, 1)};
    failalloc_install(0); /* the copy for shard 1 */
    int rc = kn_out_send(o, ids, 2, 0, (const uint8_t *)"x", 1, true);
    failalloc_remove();
    assert_int_equal(rc, KN_OK); /* shard 0 got it */
    assert_int_equal(lanes[0].n_sent, 1);
    assert_int_equal(lanes[1].n_posts, 0);
    kn_conn_id far = conn(1, 1);
    failalloc_install(0);
    rc = kn_out_send(o, &far, 1, 0, (const uint8_t *)"x", 1, true);
    failalloc_remove();
    assert_int_equal(rc, KN_ERR_NOMEM);
    kn_out_destroy(o);
}

static int create_destroy(void *arg)
{
    kn_out *o;
    int rc = kn_out_create(4, &o);
    kn_out_destroy(o);
    return rc;
}

static void create_checks_its_shards_and_survives_allocation_failures(void **state)
{
    kn_out *o;
    assert_int_equal(kn_out_create(0, &o), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_out_create(65, &o), KN_ERR_INVALID_ARGUMENT);
    assert_true(failalloc_sweep(create_destroy, NULL) >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_send_reaches_each_shard_the_right_way),
        cmocka_unit_test(ids_of_unknown_shards_are_nobody),
        cmocka_unit_test(a_send_to_a_user_asks_the_directory_and_the_remote_hook),
        cmocka_unit_test(closes_and_closures_run_here_or_are_posted),
        cmocka_unit_test(a_failed_copy_drops_only_what_it_could_not_post),
        cmocka_unit_test(a_send_to_everyone_reaches_every_shard_once_and_the_remote_hook),
        cmocka_unit_test(create_checks_its_shards_and_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
