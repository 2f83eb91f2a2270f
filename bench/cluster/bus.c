/* bench_cluster_bus: what a send to a user costs when the user is on
 * another node (the cluster bus over a real nats-server) against the same
 * send when the user is on the sending node, measured in the same run.
 *
 * Two nodes in one process, each a kn_cluster on its own NATS connection
 * (bus_nats.c, as the server runs it) and a kn_out with one simulated
 * network thread (a thread running what kn_out posts to it; no sockets), so
 * the figures are the server's routing cost plus the bus, not the kernel's
 * UDP path, which is the same either way.
 *
 *   same node   kn_out_send_user on node a, the user on a: the directory
 *               names the connection, one copy posted to a's network thread
 *   cross node  kn_out_send_user on node a, the user on b: a's directory
 *               finds nobody, a's remote hook publishes UserDeliver on the
 *               user's subject; nats-server hands it to b (subscribed since
 *               the user is on b); b's delivery thread calls
 *               kn_out_send_user_here, one copy posted to b's network thread
 *
 * Every message carries its send time; the network thread that "sends" it
 * records the arrival. Latency: L messages one at a time (the next after
 * the previous arrived): p50, p99, max. Throughput: T messages back to
 * back, then wait for the last: messages/s. CPU per message: the sending
 * thread's, the rest of this process's (the bus client's threads, node b,
 * the network threads), and nats-server's (its pid as the second argument,
 * from /proc). Reports numbers only; asserts nothing.
 *
 * In a cluster a same-node send still publishes once (a node cannot know
 * the user is nowhere else); nats-server drops it: its cost is in the
 * same-node figures.
 *
 * Usage: bench_cluster_bus NATS_URL [NATS_PID] [T] [L] [BYTES] */
#include "kn_cluster.h"
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_out.h"
#include "kn_time.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char user[] = "6f1d3c0a-8e2b-4a57-9c41-0b7e5d2f9a10";

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* utime + stime of pid in ns (0 when unknown). */
static int64_t proc_cpu_ns(long pid)
{
    if (pid <= 0) return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (int64_t)(ut + st) * (1000000000 / sysconf(_SC_CLK_TCK));
}

/* --- one simulated network thread per node --------------------------------------------- */

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
    atomic_long arrived;
    atomic_llong last_latency_ns;
    int64_t *lat; /* per message, when recording */
    long lat_cap;
    atomic_long n_lat;
} lane;

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

static int l_send(void *ud, const kn_conn_id *ids, size_t n, uint8_t ch, const uint8_t *d,
                  size_t len, bool rel)
{
    (void)ids;
    (void)n;
    (void)ch;
    (void)rel;
    lane *l = ud;
    int64_t sent;
    if (len < sizeof sent) return KN_OK;
    memcpy(&sent, d, sizeof sent);
    int64_t lat = now_ns() - sent;
    atomic_store(&l->last_latency_ns, lat);
    long k = atomic_fetch_add(&l->n_lat, 1);
    if (l->lat && k < l->lat_cap) l->lat[k] = lat;
    atomic_fetch_add(&l->arrived, 1);
    return KN_OK;
}
static void l_close(void *ud, kn_conn_id id, uint32_t reason)
{
    (void)ud;
    (void)id;
    (void)reason;
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
    (void)ud;
    (void)id;
    return NULL;
}
static void l_auth(void *ud, kn_conn_id id)
{
    (void)ud;
    (void)id;
}
static bool l_violation(void *ud, kn_conn_id id)
{
    (void)ud;
    (void)id;
    return false;
}
static bool l_overloaded(void *ud)
{
    (void)ud;
    return false;
}

/* --- a node ------------------------------------------------------------------------------- */

typedef struct node {
    const char *name;
    kn_out *out;
    lane lane;
    bool has_user; /* the user's one connection is here */
    kn_cluster_nats *nats;
    kn_cluster *cluster;
} node;

static size_t conns_of(void *ud, const char *user_id, const char *session_id, kn_conn_id *out,
                       size_t cap)
{
    (void)session_id;
    node *n = ud;
    if (!n->has_user || strcmp(user_id, user)) return 0;
    if (cap) out[0] = ((kn_conn_id)1 << 32) | 1; /* shard 0 */
    return 1;
}

static size_t user_conns(void *ud, const char *user_id)
{
    node *n = ud;
    return n->has_user && !strcmp(user_id, user);
}

static void deliver_user(void *ud, const char *user_id, const char *session_id, uint8_t channel,
                         const uint8_t *data, size_t len, bool reliable)
{
    kn_out_send_user_here(((node *)ud)->out, user_id, session_id, channel, data, len, reliable);
}

static int remote_send_user(void *ud, const char *user_id, const char *session_id, uint8_t channel,
                            const uint8_t *data, size_t len, bool reliable)
{
    return kn_cluster_send_user(((node *)ud)->cluster, user_id, session_id, channel, data, len,
                                reliable);
}

static void node_open(node *n, const char *url)
{
    memset(&n->lane, 0, sizeof n->lane);
    pthread_mutex_init(&n->lane.mu, NULL);
    pthread_cond_init(&n->lane.cv, NULL);
    pthread_create(&n->lane.th, NULL, lane_main, &n->lane);
    if (kn_out_create(1, &n->out)) exit(1);
    kn_out_lane l = {l_send, l_close,     l_post,       l_here,   l_data,
                     l_auth, l_violation, l_overloaded, &n->lane, NULL};
    kn_out_attach_lane(n->out, 0, &l);
    kn_out_set_directory(n->out, &(kn_out_directory){conns_of, n});
    kn_cluster_bus bus;
    if (kn_cluster_nats_open(url, n->name, &n->nats, &bus)) {
        fprintf(stderr, "cannot open the bus at %s\n", url);
        exit(1);
    }
    kn_cluster_config cc = {
        .node = n->name, .address = "127.0.0.1:0", .heartbeat_ms = 500, .dead_ms = 3000};
    kn_cluster_local local = {.deliver_user = deliver_user, .user_conns = user_conns, .ud = n};
    if (kn_cluster_create(&cc, &bus, &local, &n->cluster)) exit(1);
    kn_cluster_nats_attach(n->nats, n->cluster);
    kn_out_set_remote(n->out, &(kn_out_remote){remote_send_user, NULL, n});
    kn_cluster_user_changed(n->cluster, user);
}

static void node_close(node *n, bool last)
{
    kn_cluster_nats_attach(n->nats, NULL);
    kn_cluster_destroy(n->cluster);
    if (last) kn_cluster_nats_close(n->nats);
    pthread_mutex_lock(&n->lane.mu);
    n->lane.stop = true;
    pthread_cond_signal(&n->lane.cv);
    pthread_mutex_unlock(&n->lane.mu);
    pthread_join(n->lane.th, NULL);
    kn_out_destroy(n->out);
}

/* --- runs ---------------------------------------------------------------------------------- */

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void send_one(kn_out *from, uint8_t *msg, size_t bytes)
{
    int64_t t = now_ns();
    memcpy(msg, &t, sizeof t);
    kn_out_send_user(from, user, NULL, KN_CHANNEL_CONTROL, msg, bytes, true);
}

static bool wait_arrived(lane *l, long want, int64_t timeout_ns)
{
    int64_t dl = now_ns() + timeout_ns;
    while (atomic_load(&l->arrived) < want && now_ns() < dl) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&l->arrived) >= want;
}

static void latency(const char *what, kn_out *from, lane *to, long n, size_t bytes)
{
    uint8_t *msg = calloc(1, bytes);
    to->lat = calloc((size_t)n, sizeof *to->lat);
    to->lat_cap = n;
    atomic_store(&to->n_lat, 0);
    long base = atomic_load(&to->arrived);
    for (long i = 0; i < n; i++) {
        send_one(from, msg, bytes);
        if (!wait_arrived(to, base + i + 1, 2000000000)) {
            printf("%s: message %ld lost\n", what, i);
            break;
        }
    }
    long got = atomic_load(&to->n_lat);
    if (got > n) got = n;
    qsort(to->lat, (size_t)got, sizeof *to->lat, cmp64);
    if (got)
        printf("result run=%s-latency messages=%ld bytes=%zu p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
               what, got, bytes, to->lat[got / 2] / 1e3, to->lat[got * 99 / 100] / 1e3,
               to->lat[got - 1] / 1e3);
    free(to->lat);
    to->lat = NULL;
    free(msg);
}

static void throughput(const char *what, kn_out *from, lane *to, long n, size_t bytes,
                       long nats_pid)
{
    uint8_t *msg = calloc(1, bytes);
    long base = atomic_load(&to->arrived);
    int64_t t0 = now_ns(), th0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID),
            pr0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID), ns0 = proc_cpu_ns(nats_pid);
    for (long i = 0; i < n; i++) {
        send_one(from, msg, bytes);
        /* the bus client's buffer is 8 MB while reconnecting and unbounded
         * when connected: keep at most 16 k in flight (the subscription holds 64 k), as a server
         * would not send faster than its peers take */
        while (i - (atomic_load(&to->arrived) - base) > 16384) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
    int64_t th1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    bool all = wait_arrived(to, base + n, 20000000000LL);
    int64_t t1 = now_ns(), pr1 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID), ns1 = proc_cpu_ns(nats_pid);
    long got = atomic_load(&to->arrived) - base;
    double secs = (double)(t1 - t0) / 1e9;
    printf("result run=%s-throughput messages=%ld arrived=%ld%s bytes=%zu msgs_per_s=%.0f "
           "sender_cpu_ns_per_msg=%.0f rest_of_process_cpu_ns_per_msg=%.0f "
           "nats_server_cpu_ns_per_msg=%s%.0f\n",
           what, n, got, all ? "" : " (LOST SOME)", bytes, (double)got / secs,
           (double)(th1 - th0) / (double)n, (double)((pr1 - pr0) - (th1 - th0)) / (double)n,
           nats_pid > 0 ? "" : "unknown:", (double)(ns1 - ns0) / (double)n);
    free(msg);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s NATS_URL [NATS_PID] [T] [L] [BYTES]\n", argv[0]);
        return 2;
    }
    kn_log_set_level(KN_LOG_WARN);
    const char *url = argv[1];
    long nats_pid = argc > 2 ? atol(argv[2]) : 0;
    long t = argc > 3 ? atol(argv[3]) : 200000, l = argc > 4 ? atol(argv[4]) : 5000;
    size_t bytes = argc > 5 ? (size_t)atol(argv[5]) : 64;
    if (bytes < 8) bytes = 8;

    node a = {.name = "bench-a"}, b = {.name = "bench-b"};
    node_open(&a, url);
    node_open(&b, url);
    /* the subscription reaches nats-server before the first send */
    for (int i = 0; i < 200 && !kn_cluster_peers(a.cluster, NULL, 0); i++) {
        kn_cluster_tick(a.cluster, kn_time_mono_ms());
        kn_cluster_tick(b.cluster, kn_time_mono_ms());
        usleep(10000);
    }
    usleep(200000);

    printf("# %ld messages back to back, %ld one at a time, %zu bytes each\n", t, l, bytes);
    /* same node: the user on a (its subject subscribed there, as in a
     * cluster: a's own publish still goes to nats-server, which drops it) */
    a.has_user = true;
    kn_cluster_user_changed(a.cluster, user);
    usleep(200000);
    latency("same-node", a.out, &a.lane, l, bytes);
    throughput("same-node", a.out, &a.lane, t, bytes, nats_pid);
    /* cross node: the user only on b */
    a.has_user = false;
    kn_cluster_user_changed(a.cluster, user);
    b.has_user = true;
    kn_cluster_user_changed(b.cluster, user);
    usleep(200000); /* b's interest reaches nats-server */
    latency("cross-node", a.out, &b.lane, l, bytes);
    throughput("cross-node", a.out, &b.lane, t, bytes, nats_pid);

    node_close(&a, false);
    node_close(&b, true);
    return 0;
}
