/* bench_notify_loadgen: notifications to online users through a KaosNet
 * server over ENet, written against the public SDK header only (kaos.h).
 *
 * One process, one thread. `--pairs` pairs of SDK clients connect and log in
 * with fresh device ids, each client its own user: a sender and its
 * receiver. Each sender keeps `--inflight` calls of the Lua RPC bench_notify
 * (bench/social/notify.lua) outstanding, each asking the server to send
 * `--batch` notifications to its receiver's user, persistent (stored in
 * PostgreSQL, then pushed) or live only. The payload is
 *   "<receiver user id> <send time, CLOCK_MONOTONIC ns> <batch> <p|l>"
 * and the RPC puts the send time into every notification's content
 * ({"t": ..., "i": ...}). Receivers take each notification as it arrives
 * (kaos_client_on_notifications); its latency is the arrival time minus
 * that send time (one machine, one clock): the RPC's trip to the server,
 * Lua, the insert and commit, and the push to the receiver.
 *
 * Each phase (--phases persistent,live) runs `--warmup` seconds, then a
 * `--seconds` window: deliveries that arrive in it are counted and their
 * latencies go to a histogram, as do the RPC answers (round trip from the
 * call). Then the senders stop and the phase drains: every call answered
 * and every notification of every successful call arrived (or 10 s). What
 * did not arrive by then is `missing` (negative: more than were sent).
 *
 * At the window's edges it samples CPU time (utime + stime from /proc) of
 * the server (`--server-pid`), of PostgreSQL (`--pg-pid`: the postmaster,
 * its children and the children it reaped), of itself and of the whole
 * machine (/proc/stat). One line a phase:
 *   result phase=persistent status=ok deliveries=N ops_per_s=X lat_p50_us=..
 *          lat_p99_us=.. lat_max_us=.. rpcs=N rpc_per_s=X rpc_p50_us=..
 *          rpc_p99_us=.. errors=N missing=N other_errors=N dead=N
 *          srv_cpu_s=.. pg_cpu_s=.. lg_cpu_s=.. machine_cpu_s=.. window_s=..
 * errors: failed calls in the window; other_errors: calls the SDK refused
 * and notifications without a send time; dead: disconnected clients.
 *
 * The clients, their logins and their polling are bench/lg/lg_sdk's.
 *
 * `bench_notify_loadgen --pg-cpu PID` only prints PostgreSQL's CPU seconds
 * (the same sum), for run.sh to sample around pgbench. */
#include "../lg/lg_sdk.h"
#include "../lg/lg_util.h"

#include <kaos.h>

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_INFLIGHT 64
#define MAX_BATCH    100 /* KN_NOTIFY_BATCH_MAX */
#define RPC_ID       "bench_notify"
#define DRAIN_NS     10000000000LL

/* Pool client i < pairs is sender i; pairs + i is its receiver. */
typedef struct sender {
    lg_sdk_client *k, *to;
    int inflight;                  /* calls outstanding */
    int64_t sent_ns[MAX_INFLIGHT]; /* by cid % MAX_INFLIGHT */
} sender;

static struct {
    const char *host, *key;
    uint16_t port;
    int pairs, inflight, batch;
    double warmup, seconds;
    int server_pid, pg_pid;
} opt = {"127.0.0.1", NULL, 0, 16, 4, 1, 2, 10, 0, 0};

static struct {
    bool running, persistent;
    int64_t win_start, win_end;
    /* in the window */
    uint64_t deliveries, rpcs, errors;
    uint32_t lat[LG_LAT_BUCKETS], rpc_lat[LG_LAT_BUCKETS];
    uint64_t lat_max_us;
    /* in the whole phase, for `missing` */
    uint64_t acked, delivered;
    uint64_t other_errors; /* refused calls, content without a send time */
    lg_sdk_pool pool;
    sender *senders;
} st;

static bool in_window(int64_t t)
{
    return t >= st.win_start && t < st.win_end;
}

/* --- senders ------------------------------------------------------------------ */

static void on_rpc(kaos_client *c, const kaos_result *r, const char *payload, size_t len, void *ud);

static void issue(sender *k)
{
    char payload[96];
    int64_t t = lg_now_ns();
    snprintf(payload, sizeof payload, "%s %lld %d %c", k->to->user_id, (long long)t, opt.batch,
             st.persistent ? 'p' : 'l');
    int cid = kaos_client_rpc_call(k->k->c, RPC_ID, payload, on_rpc, k);
    if (cid <= 0) {
        st.other_errors++;
        k->k->dead = true;
        return;
    }
    k->sent_ns[cid % MAX_INFLIGHT] = t;
    k->inflight++;
}

static void on_rpc(kaos_client *c, const kaos_result *r, const char *payload, size_t len, void *ud)
{
    sender *k = ud;
    if (r->code == KAOS_ERR_CLOSED) return; /* the pool tells */
    k->inflight--;
    int64_t t = lg_now_ns();
    if (r->code == KAOS_OK) {
        st.acked++;
        if (in_window(t)) {
            st.rpcs++;
            st.rpc_lat[lg_lat_bucket((uint64_t)(t - k->sent_ns[r->cid % MAX_INFLIGHT]) / 1000)]++;
        }
    } else {
        static int shown;
        if (shown++ < 5)
            fprintf(stderr, "sender %d: error %d %s\n", k->k->index, -r->code, r->message);
        if (in_window(t)) st.errors++;
    }
    if (st.running && !k->k->dead) issue(k);
}

/* --- receivers ------------------------------------------------------------------ */

static void on_notifications(kaos_client *c, const kaos_notification *notes, size_t count, void *ud)
{
    int64_t t = lg_now_ns();
    for (size_t i = 0; i < count; i++) {
        const char *p = strstr(notes[i].content, "\"t\":");
        long long sent = p ? strtoll(p + 4, NULL, 10) : 0;
        if (sent <= 0 || sent > t) {
            st.other_errors++;
            continue;
        }
        st.delivered++;
        if (!in_window(t)) continue;
        uint64_t us = (uint64_t)(t - sent) / 1000;
        st.deliveries++;
        st.lat[lg_lat_bucket(us)]++;
        if (us > st.lat_max_us) st.lat_max_us = us;
    }
}

/* --- the loop ----------------------------------------------------------------------- */

static bool drained(void)
{
    for (int i = 0; i < opt.pairs; i++)
        if (!st.senders[i].k->dead && st.senders[i].inflight) return false;
    return st.delivered >= st.acked * (uint64_t)opt.batch;
}

/* One measured phase: warm-up, window, drain; prints its result line. */
static void run_phase(bool persistent)
{
    st.persistent = persistent;
    st.deliveries = st.rpcs = st.errors = st.acked = st.delivered = st.other_errors = 0;
    st.lat_max_us = 0;
    memset(st.lat, 0, sizeof st.lat);
    memset(st.rpc_lat, 0, sizeof st.rpc_lat);
    int64_t start = lg_now_ns();
    st.win_start = start + (int64_t)(opt.warmup * 1e9);
    st.win_end = st.win_start + (int64_t)(opt.seconds * 1e9);
    st.running = true;
    for (int i = 0; i < opt.pairs; i++) {
        sender *k = &st.senders[i];
        for (int j = 0; j < opt.inflight && !k->k->dead; j++)
            issue(k);
        kaos_client_poll(k->k->c, 0);
    }
    while (lg_now_ns() < st.win_start)
        lg_sdk_pool_pump(&st.pool, 1);
    double srv0 = lg_proc_cpu_s(opt.server_pid), pg0 = lg_proc_tree_cpu_s(opt.pg_pid);
    double lg0 = lg_proc_cpu_s(getpid()), all0 = lg_machine_busy_s();
    int64_t w0 = lg_now_ns();
    while (lg_now_ns() < st.win_end)
        lg_sdk_pool_pump(&st.pool, 1);
    double srv1 = lg_proc_cpu_s(opt.server_pid), pg1 = lg_proc_tree_cpu_s(opt.pg_pid);
    double lg1 = lg_proc_cpu_s(getpid()), all1 = lg_machine_busy_s();
    double window = (double)(lg_now_ns() - w0) / 1e9;
    st.running = false;
    int64_t give_up = lg_now_ns() + DRAIN_NS;
    while (!drained() && lg_now_ns() < give_up)
        lg_sdk_pool_pump(&st.pool, 1);
    int dead = lg_sdk_pool_dead(&st.pool);
    long long missing = (long long)(st.acked * (uint64_t)opt.batch) - (long long)st.delivered;
    printf("result phase=%s status=%s pairs=%d inflight=%d batch=%d deliveries=%llu ops_per_s=%.1f "
           "lat_p50_us=%llu lat_p99_us=%llu lat_max_us=%llu rpcs=%llu rpc_per_s=%.1f "
           "rpc_p50_us=%llu rpc_p99_us=%llu errors=%llu missing=%lld other_errors=%llu dead=%d "
           "srv_cpu_s=%.2f pg_cpu_s=%.2f lg_cpu_s=%.2f machine_cpu_s=%.2f window_s=%.2f\n",
           persistent ? "persistent" : "live", dead ? "degraded" : "ok", opt.pairs, opt.inflight,
           opt.batch, (unsigned long long)st.deliveries, (double)st.deliveries / window,
           (unsigned long long)lg_hist_quantile(st.lat, st.deliveries, 0.50),
           (unsigned long long)lg_hist_quantile(st.lat, st.deliveries, 0.99),
           (unsigned long long)st.lat_max_us, (unsigned long long)st.rpcs, (double)st.rpcs / window,
           (unsigned long long)lg_hist_quantile(st.rpc_lat, st.rpcs, 0.50),
           (unsigned long long)lg_hist_quantile(st.rpc_lat, st.rpcs, 0.99),
           (unsigned long long)st.errors, missing, (unsigned long long)st.other_errors, dead,
           srv0 < 0 ? -1 : srv1 - srv0, pg0 < 0 ? -1 : pg1 - pg0, lg1 - lg0,
           all0 < 0 ? -1 : all1 - all0, window);
    fflush(stdout);
}

/* Pool client i: sender i, or the receiver of sender i - pairs. */
static void each_client(lg_sdk_client *k, void *ud)
{
    if (k->index < opt.pairs) {
        st.senders[k->index].k = k;
        k->ud = &st.senders[k->index];
    } else {
        kaos_client_on_notifications(k->c, on_notifications, k);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_notify_loadgen --port P [--host H] [--server-key HEX] [--pairs N]\n"
            "         [--inflight K] [--batch B] [--warmup S] [--seconds S]\n"
            "         [--server-pid PID] [--pg-pid PID] [--phases persistent,live]\n"
            "       bench_notify_loadgen --pg-cpu POSTMASTER_PID\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--pg-cpu")) {
        printf("%.2f\n", lg_proc_tree_cpu_s(atoi(argv[2])));
        return 0;
    }
    const char *phases = "persistent";
    static const struct option longs[] = {
        {"host", required_argument, 0, 'h'},       {"port", required_argument, 0, 'p'},
        {"server-key", required_argument, 0, 'k'}, {"pairs", required_argument, 0, 'n'},
        {"inflight", required_argument, 0, 'i'},   {"batch", required_argument, 0, 'b'},
        {"warmup", required_argument, 0, 'w'},     {"seconds", required_argument, 0, 's'},
        {"server-pid", required_argument, 0, 'S'}, {"pg-pid", required_argument, 0, 'G'},
        {"phases", required_argument, 0, 'P'},     {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (o) {
        case 'h':
            opt.host = optarg;
            break;
        case 'p':
            opt.port = (uint16_t)atoi(optarg);
            break;
        case 'k':
            opt.key = optarg;
            break;
        case 'n':
            opt.pairs = atoi(optarg);
            break;
        case 'i':
            opt.inflight = atoi(optarg);
            break;
        case 'b':
            opt.batch = atoi(optarg);
            break;
        case 'w':
            opt.warmup = atof(optarg);
            break;
        case 's':
            opt.seconds = atof(optarg);
            break;
        case 'S':
            opt.server_pid = atoi(optarg);
            break;
        case 'G':
            opt.pg_pid = atoi(optarg);
            break;
        case 'P':
            phases = optarg;
            break;
        default:
            usage();
        }
    }
    if (!opt.port || opt.pairs < 1 || opt.pairs > 500 || opt.inflight < 1 ||
        opt.inflight > MAX_INFLIGHT || opt.batch < 1 || opt.batch > MAX_BATCH || opt.seconds <= 0 ||
        opt.warmup < 0)
        usage();

    st.senders = calloc((size_t)opt.pairs, sizeof *st.senders);
    if (!st.senders) lg_die("out of memory");
    lg_sdk_pool_open(&st.pool, 2 * opt.pairs, opt.host, opt.port, opt.key, each_client, NULL);
    for (int i = 0; i < opt.pairs; i++)
        st.senders[i].to = &st.pool.cl[opt.pairs + i];
    if (strstr(phases, "persistent")) run_phase(true);
    if (strstr(phases, "live")) run_phase(false);
    lg_sdk_pool_close(&st.pool);
    free(st.senders);
    return 0;
}
