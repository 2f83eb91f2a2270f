/* bench_economy: wallet updates per second through the economy service
 * (kn_wallets_update: validation, one prepared statement, the previous
 * wallet computed back) on T threads, each with its own Postgres
 * connection and its own user, as an API worker runs them. Driven by
 * bench/economy/run.sh, which runs pgbench on the same statement next to it.
 *
 *   bench_economy --url URL [--threads T] [--seconds S] [--warmup S] [--ledger 0|1]
 *   bench_economy --pg-cpu PID   (PostgreSQL's CPU seconds so far, for run.sh)
 *
 * Users: "b0000000-0000-4000-8000-<12-digit thread index>" (run.sh creates
 * them). Prints one line: result side=service ledger=on|off ops_per_s=...
 * lat_avg_ms=... lat_p99_ms=... errors=... window_s=... */
#include "kn_db.h"
#include "kn_economy.h"
#include "kn_error.h"
#include "../lg/lg_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64
#define HIST        LG_LAT_BUCKETS

static const char *url = "";
static int threads = 4, seconds = 10, warmup = 2;
static bool ledger = false;
static atomic_int phase; /* 0 warm-up, 1 window, 2 stop */

typedef struct worker {
    int index;
    pthread_t tid;
    uint64_t ops, errors, lat_us;
    uint32_t hist[HIST];
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    kn_db *db = NULL;
    if (kn_db_open(url, &db)) {
        fprintf(stderr, "bench_economy: cannot connect\n");
        exit(1);
    }
    char user[37];
    snprintf(user, sizeof user, "b0000000-0000-4000-8000-%012d", w->index);
    kn_wallet_update_op op = {user, "{\"coins\": 1, \"gems\": 2}", "{\"bench\": true}", false};
    char msg[256];
    int p;
    while ((p = atomic_load(&phase)) < 2) {
        int64_t t0 = lg_now_ns();
        kn_wallet_result *r = NULL;
        int rc = kn_wallets_update(db, &op, 1, ledger, &r, msg, sizeof msg);
        kn_wallet_results_free(r, 1);
        uint64_t us = (uint64_t)(lg_now_ns() - t0) / 1000;
        if (p != 1) continue;
        if (rc) {
            w->errors++;
            continue;
        }
        w->ops++;
        w->lat_us += us;
        uint32_t b = lg_lat_bucket(us);
        w->hist[b < HIST ? b : HIST - 1]++;
    }
    kn_db_close(db);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--pg-cpu")) {
        printf("%.2f\n", lg_proc_tree_cpu_s(atoi(argv[2])));
        return 0;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url"))
            url = argv[i + 1];
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup"))
            warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ledger"))
            ledger = atoi(argv[i + 1]) != 0;
        else {
            fprintf(stderr, "bench_economy: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (threads < 1 || threads > MAX_THREADS || seconds < 1 || warmup < 0) {
        fprintf(stderr, "bench_economy: threads 1-%d, seconds >= 1, warmup >= 0\n", MAX_THREADS);
        return 2;
    }
    static worker ws[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        ws[i].index = i;
        pthread_create(&ws[i].tid, NULL, run, &ws[i]);
    }
    lg_sleep_until(lg_now_ns() + (int64_t)warmup * 1000000000);
    atomic_store(&phase, 1);
    int64_t t0 = lg_now_ns();
    lg_sleep_until(t0 + (int64_t)seconds * 1000000000);
    atomic_store(&phase, 2);
    double window = (double)(lg_now_ns() - t0) / 1e9;
    uint64_t ops = 0, errors = 0, lat = 0;
    static uint32_t hist[HIST];
    for (int i = 0; i < threads; i++) {
        pthread_join(ws[i].tid, NULL);
        ops += ws[i].ops;
        errors += ws[i].errors;
        lat += ws[i].lat_us;
        for (int b = 0; b < HIST; b++)
            hist[b] += ws[i].hist[b];
    }
    printf("result side=service phase=ledger-%s ops_per_s=%.0f lat_avg_ms=%.3f lat_p99_ms=%.3f "
           "errors=%llu window_s=%.1f\n",
           ledger ? "on" : "off", ops / window, ops ? lat / 1000.0 / ops : 0,
           lg_hist_quantile(hist, ops, 0.99) / 1000.0, (unsigned long long)errors, window);
    return 0;
}
