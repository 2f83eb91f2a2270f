/* loadgen: request/answer load against a KaosNet server through the SDK,
 * one workload per run, and one measured window.
 *
 *   bench_api_loadgen --port P --workload ping|noop|echo|json|login_new|login_existing [options]
 *
 * The parent forks --procs workers (lg_worker.c; each owns a share of the
 * clients), waits until every client is connected and logged in, publishes
 * one absolute schedule (start, window begin/end, stop), and at the window's
 * edges samples the CPU time (utime+stime from /proc/PID/stat) of the server
 * and of any other processes named with --db-pids (the server's Postgres
 * backends), and the idle time of every CPU (/proc/stat). It merges the
 * workers' results and prints one `result key=value ...` line on stdout
 * (run.sh makes the table from those) and a readable summary on stderr.
 * Nothing is asserted: a failed setup is reported with status=failed. Every
 * process is bounded in time (alarm). */
#include "lg.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_DELAY_NS 200000000 /* from "go" to the first request: workers notice go */
#define EXIT_GRACE_S   30        /* after t_stop, for teardown */
#define MAX_DB_PIDS    16

typedef struct options {
    lg_config cfg;
    int server_pid; /* 0 = not sampled */
    int db_pids[MAX_DB_PIDS];
    int n_db_pids;
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_api_loadgen --port PORT --workload NAME [options]\n"
            "  --workload NAME      ping, noop (RPC kaos.noop, C), echo (RPC bench_echo, Lua),\n"
            "                       json (RPC bench_json, Lua), login_new, login_existing\n"
            "  --host ADDR          server address (default 127.0.0.1)\n"
            "  --server-key HEX     pin this server key (else insecure dev mode)\n"
            "  --clients N          connected clients, all processes together (default 64)\n"
            "  --inflight K         requests outstanding per client, 1..%d (default 4)\n"
            "  --procs N            worker processes (default 1)\n"
            "  --pool N             login_existing: devices per client made in setup (default 4)\n"
            "  --warmup S           seconds of load before the window (default 2)\n"
            "  --window S           seconds measured (default 10)\n"
            "  --drain S            after the window, wait at most this for answers (default 2)\n"
            "  --setup-timeout S    connect + setup logins deadline (default 60)\n"
            "  --server-pid PID     sample this process's CPU over the window\n"
            "  --db-pids LIST       comma-separated pids whose CPU is summed (Postgres backends)\n",
            LG_MAX_INFLIGHT);
}

static int parse_workload(const char *s)
{
    for (int i = 0; i < LG_WORKLOAD_COUNT; i++)
        if (!strcmp(s, lg_workload_names[i])) return i;
    return -1;
}

static int parse_pids(const char *s, options *o)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_db_pids == MAX_DB_PIDS) return -1;
        int pid = atoi(t);
        if (pid <= 0) return -1;
        o->db_pids[o->n_db_pids++] = pid;
    }
    return 0;
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){.cfg = {.host = "127.0.0.1",
                           .clients = 64,
                           .inflight = 4,
                           .procs = 1,
                           .pool = 4,
                           .warmup_s = 2,
                           .window_s = 10,
                           .drain_s = 2,
                           .setup_timeout_s = 60}};
    int workload = -1;
    static const struct option longs[] = {{"workload", required_argument, 0, 'w'},
                                          {"host", required_argument, 0, 'H'},
                                          {"port", required_argument, 0, 'p'},
                                          {"server-key", required_argument, 0, 'K'},
                                          {"clients", required_argument, 0, 'c'},
                                          {"inflight", required_argument, 0, 'k'},
                                          {"procs", required_argument, 0, 'P'},
                                          {"pool", required_argument, 0, 'o'},
                                          {"warmup", required_argument, 0, 'u'},
                                          {"window", required_argument, 0, 'W'},
                                          {"drain", required_argument, 0, 'd'},
                                          {"setup-timeout", required_argument, 0, 's'},
                                          {"server-pid", required_argument, 0, 'S'},
                                          {"db-pids", required_argument, 0, 'D'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'w':
            if ((workload = parse_workload(optarg)) < 0) {
                fprintf(stderr, "loadgen: unknown workload %s\n", optarg);
                return -1;
            }
            break;
        case 'H':
            o->cfg.host = optarg;
            break;
        case 'p':
            o->cfg.port = (uint16_t)atoi(optarg);
            break;
        case 'K':
            o->cfg.server_key = optarg;
            break;
        case 'c':
            o->cfg.clients = (uint32_t)atoi(optarg);
            break;
        case 'k':
            o->cfg.inflight = (uint32_t)atoi(optarg);
            break;
        case 'P':
            o->cfg.procs = (uint32_t)atoi(optarg);
            break;
        case 'o':
            o->cfg.pool = (uint32_t)atoi(optarg);
            break;
        case 'u':
            o->cfg.warmup_s = atof(optarg);
            break;
        case 'W':
            o->cfg.window_s = atof(optarg);
            break;
        case 'd':
            o->cfg.drain_s = atof(optarg);
            break;
        case 's':
            o->cfg.setup_timeout_s = atof(optarg);
            break;
        case 'S':
            o->server_pid = atoi(optarg);
            break;
        case 'D':
            if (parse_pids(optarg, o)) {
                fprintf(stderr, "loadgen: --db-pids: at most %d positive pids\n", MAX_DB_PIDS);
                return -1;
            }
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    lg_config *c = &o->cfg;
    if (workload < 0 || !c->port || !c->clients || c->inflight < 1 ||
        c->inflight > LG_MAX_INFLIGHT || !c->procs || c->procs > LG_MAX_PROCS || !c->pool ||
        c->window_s <= 0 || c->warmup_s < 0 || c->drain_s < 0) {
        fprintf(stderr,
                "loadgen: need --workload and --port; --clients >= 1, --inflight 1..%d, "
                "--procs 1..%d, --pool >= 1, --window > 0\n",
                LG_MAX_INFLIGHT, LG_MAX_PROCS);
        return -1;
    }
    c->workload = (lg_workload)workload;
    if (c->procs > c->clients) c->procs = c->clients;
    /* Device ids unique to this run, even against a database that is kept. */
    uint8_t rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return -1;
    snprintf(c->prefix, sizeof c->prefix, "bench-api-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5]);
    return 0;
}

/* --- sampling ---------------------------------------------------------------- */

#define MAX_CPUS 64

typedef struct sample {
    double srv_cpu; /* < 0: not sampled */
    double db_cpu;  /* < 0: not sampled or a process is gone */
    int ncpu;       /* CPUs found in /proc/stat */
    unsigned long long cpu_idle[MAX_CPUS], cpu_total[MAX_CPUS]; /* in ticks */
} sample;

/* Idle (idle + iowait) and total ticks of each CPU, from the "cpuN" lines
 * of /proc/stat (user nice system idle iowait irq softirq steal). Whole
 * machine: it shows whether the server's CPU had time to spare, whoever else
 * used it. */
static void cpu_times(sample *s)
{
    s->ncpu = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f) && s->ncpu < MAX_CPUS) {
        unsigned n;
        unsigned long long v[8] = {0};
        if (strncmp(line, "cpu", 3) || line[3] < '0' || line[3] > '9') continue;
        if (sscanf(line + 3, "%u %llu %llu %llu %llu %llu %llu %llu %llu", &n, &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) < 9 ||
            n != (unsigned)s->ncpu)
            break;
        s->cpu_idle[n] = v[3] + v[4];
        s->cpu_total[n] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
        s->ncpu++;
    }
    fclose(f);
}

static void take_sample(const options *o, sample *s)
{
    s->srv_cpu = o->server_pid ? lg_proc_cpu_s(o->server_pid) : -1;
    s->db_cpu = o->n_db_pids ? 0 : -1;
    for (int i = 0; i < o->n_db_pids; i++) {
        double v = lg_proc_cpu_s(o->db_pids[i]);
        if (v < 0) {
            s->db_cpu = -1;
            break;
        }
        s->db_cpu += v;
    }
    cpu_times(s);
}

/* --- processes ----------------------------------------------------------------- */

static pid_t spawn_worker(const options *o, lg_shared *sh, uint32_t k)
{
    uint32_t n = o->cfg.clients, p = o->cfg.procs;
    uint32_t c0 = k * n / p, c1 = (k + 1) * n / p;
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* Bounded in time even if the parent vanished. */
    alarm((unsigned)(o->cfg.setup_timeout_s + o->cfg.warmup_s + o->cfg.window_s + o->cfg.drain_s +
                     2 * EXIT_GRACE_S));
    lg_worker w = {.cfg = &o->cfg,
                   .shared = sh,
                   .index = k,
                   .first = c0,
                   .count = c1 - c0,
                   .res = &sh->results[k]};
    w.res->clients = w.count;
    _exit(lg_worker_run(&w));
}

/* Waits for every worker to report ready or failed; false on failure. */
static bool wait_ready(const options *o, lg_shared *sh, const pid_t *pids)
{
    int64_t deadline = lg_now_ns() + (int64_t)((o->cfg.setup_timeout_s + 5) * 1e9);
    while (atomic_load(&sh->ready) + atomic_load(&sh->failed) < (int)o->cfg.procs) {
        for (uint32_t k = 0; k < o->cfg.procs; k++) {
            int status;
            if (pids[k] > 0 && waitpid(pids[k], &status, WNOHANG) == pids[k]) {
                if (!sh->results[k].status) {
                    sh->results[k].status = -1;
                    snprintf(sh->results[k].error, sizeof sh->results[k].error,
                             "worker %u exited during setup (status %d)", k, status);
                }
                return false;
            }
        }
        if (lg_now_ns() > deadline) return false;
        lg_sleep_until(lg_now_ns() + 10000000);
    }
    return atomic_load(&sh->failed) == 0;
}

static void reap(const options *o, pid_t *pids, int64_t deadline)
{
    for (uint32_t k = 0; k < o->cfg.procs; k++) {
        while (pids[k] > 0) {
            int status;
            pid_t r = waitpid(pids[k], &status, WNOHANG);
            if (r == pids[k] || (r < 0 && errno != EINTR)) {
                pids[k] = 0;
            } else if (lg_now_ns() > deadline) {
                kill(pids[k], SIGKILL);
                waitpid(pids[k], &status, 0);
                pids[k] = 0;
            } else {
                lg_sleep_until(lg_now_ns() + 5000000);
            }
        }
    }
}

/* --- report -------------------------------------------------------------------- */

static void merge(const options *o, const lg_shared *sh, lg_result *m)
{
    memset(m, 0, sizeof *m);
    bool cause_seen = false;
    for (uint32_t k = 0; k < o->cfg.procs; k++) {
        const lg_result *r = &sh->results[k];
        /* Report the cause, not the workers that stopped because of it. */
        bool cause = r->status && strncmp(r->error, "stopped:", 8) != 0;
        if (r->status && (!m->status || (cause && !cause_seen))) {
            m->status = r->status;
            cause_seen = cause;
            snprintf(m->error, sizeof m->error, "worker %u: %.140s", k, r->error);
        }
        if (!m->first_error[0] && r->first_error[0])
            snprintf(m->first_error, sizeof m->first_error, "%s", r->first_error);
        m->clients += r->clients;
        if (r->setup_s > m->setup_s) m->setup_s = r->setup_s;
        m->ok_window += r->ok_window;
        m->errors_window += r->errors_window;
        m->ok_total += r->ok_total;
        m->errors_total += r->errors_total;
        m->local_errors += r->local_errors;
        m->disconnects += r->disconnects;
        m->unexpected += r->unexpected;
        m->not_created += r->not_created;
        m->created_setup += r->created_setup;
        m->cpu_ns_window += r->cpu_ns_window;
        if (r->lat_max_us > m->lat_max_us) m->lat_max_us = r->lat_max_us;
        m->lat_sum_us += r->lat_sum_us;
        for (uint32_t b = 0; b < LG_LAT_BUCKETS; b++)
            m->lat_hist[b] += r->lat_hist[b];
    }
}

/* Worker counts cover exactly the configured window; the parent's CPU
 * samples span `sampled_s`, a little more or less: rates of those are
 * scaled to the window. */
static void report(const options *o, const lg_result *m, const sample *s0, const sample *s1,
                   double sampled_s)
{
    const lg_config *c = &o->cfg;
    double window = c->window_s, scale = sampled_s > 0 ? window / sampled_s : 1;
    double rate = (double)m->ok_window / window;
    double srv = s0->srv_cpu >= 0 && s1->srv_cpu >= 0 ? (s1->srv_cpu - s0->srv_cpu) * scale : -1;
    double db = s0->db_cpu >= 0 && s1->db_cpu >= 0 ? (s1->db_cpu - s0->db_cpu) * scale : -1;
    double per_k = m->ok_window ? 1000.0 / (double)m->ok_window : 0;
    /* Idle share of each CPU over the window: "12.5/3.0" for CPUs 0 and 1. */
    char idle[MAX_CPUS * 8] = "-";
    size_t used = 0;
    for (int i = 0; i < s0->ncpu && i < s1->ncpu && used + 8 < sizeof idle; i++) {
        unsigned long long t = s1->cpu_total[i] - s0->cpu_total[i];
        double pct = t ? 100.0 * (double)(s1->cpu_idle[i] - s0->cpu_idle[i]) / (double)t : 0;
        used += (size_t)snprintf(idle + used, sizeof idle - used, "%s%.1f", i ? "/" : "", pct);
    }
    printf("result status=%s workload=%s clients=%u inflight=%u procs=%u window_s=%.3f "
           "setup_s=%.2f ok=%" PRIu64 " req_per_s=%.1f lat_p50_us=%" PRIu64 " lat_p99_us=%" PRIu64
           " lat_max_us=%" PRIu64 " lat_mean_us=%.0f"
           " srv_cpu_s=%.3f srv_cpu_s_per_1k=%.5f db_cpu_s=%.3f db_cpu_s_per_1k=%.5f"
           " lg_cpu_cores=%.3f errors=%" PRIu64 " errors_total=%" PRIu64 " local_errors=%" PRIu64
           " disconnects=%" PRIu64 " unexpected=%" PRIu64 " not_created=%" PRIu64
           " created_setup=%" PRIu64 " ok_total=%" PRIu64 " cpu_idle_pct=%s\n",
           m->status ? "failed" : "ok", lg_workload_names[c->workload], c->clients, c->inflight,
           c->procs, window, m->setup_s, m->ok_window, rate,
           lg_hist_quantile(m->lat_hist, m->ok_window, 0.50),
           lg_hist_quantile(m->lat_hist, m->ok_window, 0.99), m->lat_max_us,
           m->ok_window ? (double)m->lat_sum_us / (double)m->ok_window : 0.0, srv,
           srv >= 0 ? srv * per_k : -1.0, db, db >= 0 ? db * per_k : -1.0,
           (double)m->cpu_ns_window / 1e9 / window, m->errors_window, m->errors_total,
           m->local_errors, m->disconnects, m->unexpected, m->not_created, m->created_setup,
           m->ok_total, idle);
    fflush(stdout);
    fprintf(stderr,
            "loadgen: %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, server %.3f cpu-s "
            "(%.4f per 1000), %" PRIu64 " errors in the window\n",
            lg_workload_names[c->workload], rate,
            (double)lg_hist_quantile(m->lat_hist, m->ok_window, 0.50) / 1000,
            (double)lg_hist_quantile(m->lat_hist, m->ok_window, 0.99) / 1000, srv,
            srv >= 0 ? srv * per_k : -1.0, m->errors_window);
    if (m->first_error[0]) fprintf(stderr, "loadgen: first error answer: %s\n", m->first_error);
    if (m->status) fprintf(stderr, "loadgen: FAILED: %s\n", m->error);
}

int main(int argc, char **argv)
{
    options o;
    if (parse(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)(o.cfg.setup_timeout_s + o.cfg.warmup_s + o.cfg.window_s + o.cfg.drain_s +
                     3 * EXIT_GRACE_S));
    lg_shared *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("loadgen: mmap");
        return 1;
    }
    memset(sh, 0, sizeof *sh);
    fflush(NULL);
    pid_t pids[LG_MAX_PROCS] = {0};
    for (uint32_t k = 0; k < o.cfg.procs; k++) {
        pids[k] = spawn_worker(&o, sh, k);
        if (pids[k] < 0) {
            perror("loadgen: fork");
            atomic_store(&sh->go, -1);
            reap(&o, pids, lg_now_ns());
            return 1;
        }
    }

    sample s0 = {.srv_cpu = -1, .db_cpu = -1}, s1 = {.srv_cpu = -1, .db_cpu = -1};
    double sampled_s = o.cfg.window_s;
    if (!wait_ready(&o, sh, pids)) {
        atomic_store(&sh->go, -1);
        reap(&o, pids, lg_now_ns() + (int64_t)EXIT_GRACE_S * 1000000000);
    } else {
        int64_t now = lg_now_ns();
        sh->t_start = now + START_DELAY_NS;
        sh->t_begin = sh->t_start + (int64_t)(o.cfg.warmup_s * 1e9);
        sh->t_end = sh->t_begin + (int64_t)(o.cfg.window_s * 1e9);
        sh->t_stop = sh->t_end + (int64_t)(o.cfg.drain_s * 1e9);
        atomic_store_explicit(&sh->go, 1, memory_order_release);
        int64_t b = lg_sleep_until(sh->t_begin);
        take_sample(&o, &s0);
        int64_t e = lg_sleep_until(sh->t_end);
        take_sample(&o, &s1);
        /* The samples are a little late; scale by the time they really span. */
        sampled_s = (double)(e - b) / 1e9;
        reap(&o, pids, sh->t_stop + (int64_t)EXIT_GRACE_S * 1000000000);
    }
    lg_result *m = calloc(1, sizeof *m);
    if (!m) return 1;
    merge(&o, sh, m);
    if (!m->status && atomic_load(&sh->ready) < (int)o.cfg.procs) {
        m->status = -1;
        snprintf(m->error, sizeof m->error, "setup did not finish");
    }
    report(&o, m, &s0, &s1, sampled_s);
    int rc = m->status ? 1 : 0;
    free(m);
    munmap(sh, sizeof *sh);
    return rc;
}
