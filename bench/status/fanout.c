/* bench_status_fanout: status fan-out through the server's own pieces — the
 * status service, the stream tracker and the one way out (kn_out) with two
 * network threads — against a naive and an ideal delivery of the same
 * status changes to the same followers, measured in the same run.
 *
 * Workload: S sessions (default 10,000), each publishing a status and each
 * followed by F others (default 50: session i is followed by i+1..i+F, mod
 * S). A status change of one session must reach its F followers. The
 * network threads are simulated: two threads that run what kn_out posts to
 * them and count the connections each batch reaches (no sockets), so the
 * figures are the server's routing cost, not the kernel's.
 *
 *   kaosnet  kn_status_update -> tracker event (StatusPresenceEvent built
 *            once) -> kn_out_send (one copy per network thread)
 *   ideal    the same envelope, built once per change, sent with kn_out_send
 *            to a precomputed follower array (what a perfect index costs)
 *   naive    for each change, scan every follow edge for the changed user's
 *            followers and kn_out_send the envelope to each one separately
 *
 * Throughput: T changes issued back to back (round robin over sessions),
 * then wait until every delivery has been made: deliveries/s. Latency: L
 * changes one at a time, each timed from the call to its last delivery on
 * either network thread: p50/p99. Reports numbers only; asserts nothing. */
#include "kn_codec.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_out.h"
#include "kn_status.h"
#include "kn_stream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHARDS 2

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- two simulated network threads ------------------------------------------------ */

typedef struct job {
    void (*fn)(void *);
    void *arg;
    struct job *next;
} job;

typedef struct lane {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    bool stop;
    atomic_uint_fast64_t delivered;
    atomic_int_fast64_t last_ns; /* when the last batch was delivered */
} lane;

static lane lanes[SHARDS];

static int l_send(void *ud, const kn_conn_id *ids, size_t n, uint8_t channel, const uint8_t *data,
                  size_t len, bool reliable)
{
    lane *l = ud;
    (void)ids, (void)channel, (void)data, (void)len, (void)reliable;
    atomic_fetch_add(&l->delivered, n);
    atomic_store(&l->last_ns, now_ns());
    return KN_OK;
}
static void l_close(void *ud, kn_conn_id id, uint32_t reason)
{
    (void)ud, (void)id, (void)reason;
}
static int l_post(void *ud, void (*fn)(void *), void *arg)
{
    lane *l = ud;
    job *j = malloc(sizeof *j);
    if (!j) return KN_ERR_NOMEM;
    *j = (job){fn, arg, NULL};
    pthread_mutex_lock(&l->mu);
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return KN_OK;
}
static bool l_here(void *ud)
{
    return pthread_equal(pthread_self(), ((lane *)ud)->th);
}
static void *l_data(void *ud, kn_conn_id id)
{
    (void)ud, (void)id;
    return NULL;
}
static void l_auth(void *ud, kn_conn_id id)
{
    (void)ud, (void)id;
}
static bool l_violation(void *ud, kn_conn_id id)
{
    (void)ud, (void)id;
    return false;
}
static bool l_overloaded(void *ud)
{
    (void)ud;
    return false;
}

static void *lane_main(void *arg)
{
    lane *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->head && !l->stop)
            pthread_cond_wait(&l->cv, &l->mu);
        if (!l->head && l->stop) break;
        job *j = l->head;
        l->head = j->next;
        if (!l->head) l->tail = NULL;
        pthread_mutex_unlock(&l->mu);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static uint64_t delivered(void)
{
    uint64_t n = 0;
    for (int i = 0; i < SHARDS; i++)
        n += atomic_load(&lanes[i].delivered);
    return n;
}

static int64_t last_delivery_ns(void)
{
    int64_t t = 0;
    for (int i = 0; i < SHARDS; i++) {
        int64_t v = atomic_load(&lanes[i].last_ns);
        if (v > t) t = v;
    }
    return t;
}

static void wait_delivered(uint64_t target)
{
    while (delivered() < target) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

/* --- the data ------------------------------------------------------------------- */

static size_t S = 10000, F = 50, T = 20000, L = 2000;

static kn_conn_id conn_of(size_t i)
{
    uint64_t shard = i % SHARDS, slot = i / SHARDS + 1;
    return ((uint64_t)1 << 32) | (shard << 16) | slot;
}

static kn_presence presence_of(size_t i)
{
    kn_presence p = {.conn = conn_of(i)};
    snprintf(p.user_id, sizeof p.user_id, "00000000-0000-4000-8000-%012zu", i);
    snprintf(p.session_id, sizeof p.session_id, "10000000-0000-4000-8000-%012zu", i);
    snprintf(p.username, sizeof p.username, "player%zu", i);
    return p;
}

/* Session i's followers: i+1..i+F (mod S). */
static size_t follower(size_t i, size_t k)
{
    return (i + 1 + k) % S;
}

/* The event a change of i's status to `status` sends (what the tracker builds). */
static size_t build_event(size_t i, const char *status, uint8_t *buf, size_t cap)
{
    kn_presence a = presence_of(i), b = a;
    a.status = "old";
    b.status = (char *)status;
    Kaos__V1__UserPresence pj, pl, *jl[1] = {&pj}, *ll[1] = {&pl};
    kn_entity_to_proto(&kn_presence_entity, &b, &pj);
    kn_entity_to_proto(&kn_presence_entity, &a, &pl);
    Kaos__V1__StatusPresenceEvent ev = KAOS__V1__STATUS_PRESENCE_EVENT__INIT;
    ev.n_joins = ev.n_leaves = 1;
    ev.joins = jl;
    ev.leaves = ll;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STATUS_PRESENCE;
    env.status_presence = &ev;
    if (kn_envelope_packed_size(&env) > cap) return 0;
    return kn_envelope_pack(&env, buf);
}

typedef struct result {
    double deliveries_per_s, changes_per_s, p50_us, p99_us;
} result;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef void (*change_fn)(void *ctx, size_t i, size_t seq);

static result measure(change_fn change, void *ctx)
{
    result r = {0};
    /* throughput */
    uint64_t base = delivered();
    int64_t t0 = now_ns();
    for (size_t k = 0; k < T; k++)
        change(ctx, k % S, k);
    wait_delivered(base + (uint64_t)T * F);
    double secs = (double)(now_ns() - t0) / 1e9;
    r.deliveries_per_s = (double)T * (double)F / secs;
    r.changes_per_s = (double)T / secs;
    /* latency */
    int64_t *lat = malloc(L * sizeof *lat);
    for (size_t k = 0; k < L; k++) {
        uint64_t before = delivered();
        int64_t s = now_ns();
        change(ctx, (k * 7919) % S, T + k);
        wait_delivered(before + F);
        lat[k] = last_delivery_ns() - s;
    }
    qsort(lat, L, sizeof *lat, cmp_i64);
    r.p50_us = (double)lat[L / 2] / 1000.0;
    r.p99_us = (double)lat[(L * 99) / 100] / 1000.0;
    free(lat);
    return r;
}

/* --- the three ways ------------------------------------------------------------- */

typedef struct kaos_ctx {
    kn_status *status;
} kaos_ctx;

static void kaos_change(void *ctx, size_t i, size_t seq)
{
    kaos_ctx *k = ctx;
    char status[32];
    snprintf(status, sizeof status, "playing %zu", seq);
    kn_presence p = presence_of(i);
    char msg[128];
    if (kn_status_update(k->status, &p, status, msg, sizeof msg))
        fprintf(stderr, "update failed: %s\n", msg);
}

typedef struct direct_ctx {
    kn_out *out;
    kn_conn_id *followers; /* S * F, ideal */
    kn_conn_id *edges;     /* naive: pairs (followee index, follower conn), S * F of them */
    size_t *edge_followee;
} direct_ctx;

static void ideal_change(void *ctx, size_t i, size_t seq)
{
    direct_ctx *d = ctx;
    char status[32];
    snprintf(status, sizeof status, "playing %zu", seq);
    uint8_t buf[1024];
    size_t n = build_event(i, status, buf, sizeof buf);
    kn_out_send(d->out, &d->followers[i * F], F, KN_CHANNEL_CONTROL, buf, n, true);
}

static void naive_change(void *ctx, size_t i, size_t seq)
{
    direct_ctx *d = ctx;
    char status[32];
    snprintf(status, sizeof status, "playing %zu", seq);
    uint8_t buf[1024];
    size_t n = build_event(i, status, buf, sizeof buf);
    for (size_t e = 0; e < S * F; e++)
        if (d->edge_followee[e] == i)
            kn_out_send(d->out, &d->edges[e], 1, KN_CHANNEL_CONTROL, buf, n, true);
}

static int tracker_send(void *ud, const kn_conn_id *conns, size_t n, uint8_t channel,
                        const uint8_t *data, size_t len, bool reliable)
{
    return kn_out_send(ud, conns, n, channel, data, len, reliable);
}

int main(int argc, char **argv)
{
    for (int a = 1; a + 1 < argc; a += 2) {
        size_t v = strtoull(argv[a + 1], NULL, 10);
        if (!strcmp(argv[a], "--sessions"))
            S = v;
        else if (!strcmp(argv[a], "--followers"))
            F = v;
        else if (!strcmp(argv[a], "--changes"))
            T = v;
        else if (!strcmp(argv[a], "--latency-samples"))
            L = v;
    }
    if (S < 2 || F < 1 || F >= S || F > KN_STATUS_FOLLOW_MAX || S / SHARDS >= 65535 || !T || !L) {
        fprintf(stderr, "usage: bench_status_fanout [--sessions S] [--followers F<S, <=1000]"
                        " [--changes T] [--latency-samples L]\n");
        return 2;
    }
    kn_out *out;
    if (kn_out_create(SHARDS, &out)) return 1;
    for (int i = 0; i < SHARDS; i++) {
        lane *l = &lanes[i];
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv, NULL);
        pthread_create(&l->th, NULL, lane_main, l);
        kn_out_lane ol = {.send_many = l_send,
                          .close = l_close,
                          .post_fn = l_post,
                          .on_thread = l_here,
                          .conn_data = l_data,
                          .set_authenticated = l_auth,
                          .violation = l_violation,
                          .overloaded = l_overloaded,
                          .ud = l,
                          .send_authenticated = NULL};
        kn_out_attach_lane(out, (size_t)i, &ol);
    }

    /* kaosnet: the status service on a tracker, everyone following and publishing. */
    kn_tracker_config tc;
    kn_tracker_config_default(&tc);
    kn_tracker_sink sink = {tracker_send, out};
    kn_tracker *tracker;
    kn_status *status;
    if (kn_tracker_create(&tc, &sink, &tracker) || kn_status_create(tracker, &status)) return 1;
    int64_t setup0 = now_ns();
    kn_status_user *targets = calloc(S, sizeof *targets);
    for (size_t i = 0; i < S; i++)
        snprintf(targets[i], sizeof targets[i], "%s", presence_of(i).user_id);
    for (size_t i = 0; i < S; i++) {
        /* i follows the F users it is a follower of: i-1..i-F */
        kn_status_user mine[1000];
        for (size_t k = 0; k < F; k++)
            memcpy(mine[k], targets[(i + S - 1 - k) % S], 37);
        kn_presence p = presence_of(i);
        kn_presence *online;
        size_t n_online;
        char msg[128];
        if (kn_status_follow(status, &p, mine, F, &online, &n_online, msg, sizeof msg)) {
            fprintf(stderr, "follow failed: %s\n", msg);
            return 1;
        }
        free(online);
    }
    for (size_t i = 0; i < S; i++) {
        kn_presence p = presence_of(i);
        char msg[128];
        kn_status_update(status, &p, "old", msg, sizeof msg);
    }
    wait_delivered((uint64_t)S * F); /* every publisher's first status reached its followers */
    double setup_s = (double)(now_ns() - setup0) / 1e9;
    kn_tracker_stats ts;
    kn_tracker_stats_get(tracker, &ts);

    kaos_ctx kc = {status};
    result rk = measure(kaos_change, &kc);

    direct_ctx dc = {.out = out};
    dc.followers = malloc(S * F * sizeof *dc.followers);
    dc.edges = malloc(S * F * sizeof *dc.edges);
    dc.edge_followee = malloc(S * F * sizeof *dc.edge_followee);
    for (size_t i = 0; i < S; i++)
        for (size_t k = 0; k < F; k++) {
            dc.followers[i * F + k] = conn_of(follower(i, k));
            /* edges in follower order, as a follow table would hold them */
            size_t e = follower(i, k) * F + k;
            dc.edges[e] = conn_of(follower(i, k));
            dc.edge_followee[e] = i;
        }
    result ri = measure(ideal_change, &dc);
    size_t keep_T = T, keep_L = L;
    T = T / 20 ? T / 20 : 1; /* the naive way scans S*F edges per change */
    L = L / 20 ? L / 20 : 1;
    result rn = measure(naive_change, &dc);
    T = keep_T;
    L = keep_L;

    printf("status fan-out: %zu sessions each publishing and each followed by %zu others "
           "(%llu presences on %llu streams, set up in %.2f s); 2 simulated network threads, no "
           "sockets\n",
           S, F, (unsigned long long)ts.presences, (unsigned long long)ts.streams, setup_s);
    printf("throughput: %zu changes back to back; latency: %zu changes one at a time "
           "(call -> last follower's delivery)\n",
           T, L);
    printf("%-8s %14s %12s %10s %10s\n", "way", "deliveries/s", "changes/s", "p50 us", "p99 us");
    printf("%-8s %14.0f %12.0f %10.1f %10.1f\n", "kaosnet", rk.deliveries_per_s, rk.changes_per_s,
           rk.p50_us, rk.p99_us);
    printf("%-8s %14.0f %12.0f %10.1f %10.1f\n", "ideal", ri.deliveries_per_s, ri.changes_per_s,
           ri.p50_us, ri.p99_us);
    printf("%-8s %14.0f %12.0f %10.1f %10.1f   (%zu changes, %zu latency samples)\n", "naive",
           rn.deliveries_per_s, rn.changes_per_s, rn.p50_us, rn.p99_us, T / 20 ? T / 20 : 1,
           L / 20 ? L / 20 : 1);
    printf("ratio kaosnet/ideal deliveries/s: %.2f; kaosnet/naive: %.1f\n",
           rk.deliveries_per_s / ri.deliveries_per_s, rk.deliveries_per_s / rn.deliveries_per_s);

    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&lanes[i].mu);
        lanes[i].stop = true;
        pthread_cond_signal(&lanes[i].cv);
        pthread_mutex_unlock(&lanes[i].mu);
        pthread_join(lanes[i].th, NULL);
    }
    kn_status_destroy(status);
    kn_tracker_destroy(tracker);
    kn_out_destroy(out);
    free(targets);
    free(dc.followers);
    free(dc.edges);
    free(dc.edge_followee);
    return 0;
}
