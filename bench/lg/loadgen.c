/* loadgen: drives N clients of a workload (relay or realtime, see lg.h)
 * against a KaosNet server (SDK clients) or bare_server (raw ENet hosts) and
 * reports one steady window.
 *
 *   bench_loadgen --mode kaos|enet --workload relay|realtime --port P --ccu N [options]
 *
 * The parent forks --procs workers (each owns whole rooms, see lg_worker.c),
 * waits until every room is full, publishes one absolute schedule (start,
 * window begin/end, stop), and while the workers run it samples the server
 * process (/proc/PID/stat CPU, /proc/PID/status VmRSS), the loopback
 * interface (/proc/net/dev) and, with --metrics-port, the server's /metrics
 * at the window's edges. It then merges the workers' results and prints one
 * `result key=value ...` line on stdout (run.sh turns those into the table)
 * and warnings on stderr. Nothing is asserted: a failed setup is reported
 * with status=failed. */
#include "lg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Bytes the loopback device counts per datagram besides the UDP payload:
 * IPv4 (20) + UDP (8). Checked against ENet's own totals in --mode enet. */
#define LO_HEADER_BYTES 28
#define START_DELAY_NS  200000000 /* from "go" to the first send: workers notice go */
#define EXIT_GRACE_S    30        /* after t_stop, for teardown */
#define METRICS_MAX     96        /* lines kept from one /metrics answer */
#define METRICS_BUF     65536

typedef struct options {
    lg_config cfg;
    int server_pid;         /* 0 = not sampled */
    uint16_t metrics_port;  /* 0 = no /metrics */
    const char *window_cmd; /* run by sh -c when the window opens (a profiler), or NULL */
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_loadgen --mode kaos|enet --port PORT --ccu N [options]\n"
            "  --workload W         relay (default) or realtime\n"
            "  --handler NAME       KaosNet realtime: match handler (default bench_realtime)\n"
            "  --host ADDR          server address (default 127.0.0.1)\n"
            "  --room N             players per room (default 8)\n"
            "  --hz N               inputs per player per second (default 30)\n"
            "  --procs N            worker processes, 0 = one per 256 clients (default 0)\n"
            "  --warmup S           seconds of sending before the window (default 3)\n"
            "  --window S           seconds of steady window measured (default 10)\n"
            "  --drain S            seconds after the window for late deliveries (default 1)\n"
            "  --setup-timeout S    connect/auth/join deadline (default 60)\n"
            "  --server-pid PID     sample this process's CPU and RSS over the window\n"
            "  --server-key HEX     KaosNet: pin this server key (else insecure dev mode)\n"
            "  --metrics-port P     KaosNet: sample http://127.0.0.1:P/metrics at the edges\n");
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){.cfg = {.host = "127.0.0.1",
                           .handler = "bench_realtime",
                           .room_size = 8,
                           .hz = 30,
                           .warmup_s = 3,
                           .window_s = 10,
                           .drain_s = 1,
                           .setup_timeout_s = 60}};
    const char *mode = NULL, *workload = "relay";
    static const struct option longs[] = {{"mode", required_argument, 0, 'm'},
                                          {"workload", required_argument, 0, 'L'},
                                          {"handler", required_argument, 0, 'N'},
                                          {"metrics-port", required_argument, 0, 'M'},
                                          {"exec-at-window", required_argument, 0, 'X'},
                                          {"host", required_argument, 0, 'H'},
                                          {"port", required_argument, 0, 'p'},
                                          {"ccu", required_argument, 0, 'c'},
                                          {"room", required_argument, 0, 'r'},
                                          {"hz", required_argument, 0, 'z'},
                                          {"procs", required_argument, 0, 'P'},
                                          {"warmup", required_argument, 0, 'w'},
                                          {"window", required_argument, 0, 'W'},
                                          {"drain", required_argument, 0, 'd'},
                                          {"setup-timeout", required_argument, 0, 's'},
                                          {"server-pid", required_argument, 0, 'S'},
                                          {"server-key", required_argument, 0, 'K'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'm':
            mode = optarg;
            break;
        case 'L':
            workload = optarg;
            break;
        case 'N':
            o->cfg.handler = optarg;
            break;
        case 'M':
            o->metrics_port = (uint16_t)atoi(optarg);
            break;
        case 'X':
            o->window_cmd = optarg;
            break;
        case 'H':
            o->cfg.host = optarg;
            break;
        case 'K':
            o->cfg.server_key = optarg;
            break;
        case 'p':
            o->cfg.port = (uint16_t)atoi(optarg);
            break;
        case 'c':
            o->cfg.ccu = (uint32_t)atoi(optarg);
            break;
        case 'r':
            o->cfg.room_size = (uint32_t)atoi(optarg);
            break;
        case 'z':
            o->cfg.hz = (uint32_t)atoi(optarg);
            break;
        case 'P':
            o->cfg.procs = (uint32_t)atoi(optarg);
            break;
        case 'w':
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
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (!mode || (strcmp(mode, "kaos") && strcmp(mode, "enet"))) {
        fprintf(stderr, "loadgen: --mode kaos|enet is required\n");
        return -1;
    }
    o->cfg.mode = strcmp(mode, "kaos") ? LG_MODE_ENET : LG_MODE_KAOS;
    if (strcmp(workload, "relay") && strcmp(workload, "realtime")) {
        fprintf(stderr, "loadgen: --workload relay|realtime\n");
        return -1;
    }
    o->cfg.workload = strcmp(workload, "relay") ? LG_WORKLOAD_REALTIME : LG_WORKLOAD_RELAY;
    lg_config *c = &o->cfg;
    if (!c->port || !c->ccu || c->room_size < 2 || c->ccu % c->room_size || !c->hz ||
        c->hz > 1000 || c->window_s <= 0 || c->warmup_s < 0 || c->drain_s < 0) {
        fprintf(stderr, "loadgen: need --port, and --ccu a multiple of --room (>= 2); "
                        "--hz 1..1000, --window > 0\n");
        return -1;
    }
    uint32_t rooms = c->ccu / c->room_size;
    if (!c->procs) c->procs = (c->ccu + 255) / 256;
    if (c->procs > LG_MAX_PROCS) c->procs = LG_MAX_PROCS;
    if (c->procs > rooms) c->procs = rooms;
    return 0;
}

/* --- sampling ---------------------------------------------------------------- */

static long proc_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* Loopback transmit bytes and datagrams (every loopback datagram is sent
 * once, so tx covers both directions between clients and server). */
static bool lo_counters(uint64_t *bytes, uint64_t *packets)
{
    FILE *f = fopen("/proc/net/dev", "r");
    if (!f) return false;
    char line[512];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = '\0';
        char *name = line;
        while (*name == ' ')
            name++;
        if (strcmp(name, "lo")) continue;
        unsigned long long v[10];
        if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) == 10) {
            *bytes = v[8];
            *packets = v[9];
            found = true;
        }
        break;
    }
    fclose(f);
    return found;
}

/* Datagrams the kernel dropped because a UDP socket buffer was full
 * (RcvbufErrors + SndbufErrors), machine-wide. */
static bool udp_drops(uint64_t *out)
{
    FILE *f = fopen("/proc/net/snmp", "r");
    if (!f) return false;
    char names[512], values[512];
    bool found = false;
    while (fgets(names, sizeof names, f) && fgets(values, sizeof values, f)) {
        if (strncmp(names, "Udp:", 4) || strncmp(values, "Udp:", 4)) continue;
        char *np, *vp, *n = strtok_r(names + 4, " \n", &np), *v = strtok_r(values + 4, " \n", &vp);
        *out = 0;
        for (; n && v; n = strtok_r(NULL, " \n", &np), v = strtok_r(NULL, " \n", &vp)) {
            if (!strcmp(n, "RcvbufErrors") || !strcmp(n, "SndbufErrors")) {
                *out += strtoull(v, NULL, 10);
                found = true;
            }
        }
        break;
    }
    fclose(f);
    return found;
}

/* The server's /metrics (Prometheus text), as name -> value. Names lose
 * their "kaos_" prefix, and a histogram bucket's {le="X"} becomes "_le_X". */
typedef struct metric {
    char name[200]; /* fits raw (160) + "_le_" + le (32) */
    double value;
} metric;

typedef struct metrics {
    metric m[METRICS_MAX];
    int n;
    bool ok;
} metrics;

static void metric_add(metrics *ms, const char *line)
{
    char raw[160], le[32] = "";
    double v;
    if (ms->n == METRICS_MAX || line[0] == '#' || sscanf(line, "%159s %lf", raw, &v) != 2) return;
    char *brace = strchr(raw, '{');
    if (brace) {
        /* Only histogram buckets carry a label here: {le="0.001"}, {le="+Inf"}. */
        if (sscanf(brace, "{le=\"%31[^\"]\"}", le) != 1) return;
        *brace = '\0';
        for (char *p = le; *p; p++)
            *p = *p == '.' ? '_' : *p == '+' ? 'p' : *p;
    }
    const char *name = strncmp(raw, "kaos_", 5) ? raw : raw + 5;
    metric *e = &ms->m[ms->n++];
    snprintf(e->name, sizeof e->name, "%s%s%s", name, *le ? "_le_" : "", le);
    e->value = v;
}

/* One HTTP/1.0 GET of /metrics on 127.0.0.1; false if the server did not answer. */
static bool fetch_metrics(uint16_t port, metrics *ms)
{
    memset(ms, 0, sizeof *ms);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    char *buf = malloc(METRICS_BUF);
    size_t len = 0;
    if (buf && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1)) {
        ssize_t r;
        while (len + 1 < METRICS_BUF && (r = recv(fd, buf + len, METRICS_BUF - 1 - len, 0)) > 0)
            len += (size_t)r;
    }
    close(fd);
    if (!buf) return false;
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n"), *save = NULL;
    if (body && !strncmp(buf, "HTTP/1.", 7) && strstr(buf, " 200 ")) {
        for (char *line = strtok_r(body + 4, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            metric_add(ms, line);
        ms->ok = true;
    }
    free(buf);
    return ms->ok;
}

static const metric *metric_find(const metrics *ms, const char *name)
{
    for (int i = 0; i < ms->n; i++)
        if (!strcmp(ms->m[i].name, name)) return &ms->m[i];
    return NULL;
}

/* Per-CPU jiffies from /proc/stat: busy (everything but idle and iowait,
 * interrupts and softirqs included) and total. Index CPUS_MAX is the machine. */
#define CPUS_MAX 64
typedef struct cpu_times {
    unsigned long long busy[CPUS_MAX + 1], total[CPUS_MAX + 1];
    bool ok;
} cpu_times;

static void read_cpu_times(cpu_times *t)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "cpu", 3)) break;
        int cpu = CPUS_MAX, off = 0;
        unsigned long long v[8] = {0};
        if (line[3] != ' ' &&
            (sscanf(line + 3, "%d%n", &cpu, &off) != 1 || cpu < 0 || cpu >= CPUS_MAX))
            continue;
        if (sscanf(line + 3 + off, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
            continue;
        unsigned long long total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
        t->total[cpu] = total;
        t->busy[cpu] = total - v[3] - v[4];
        t->ok = true;
    }
    fclose(f);
}

/* Busy share of the CPUs in `set` between two samples (0..1), or -1. */
static double busy_share(const cpu_times *a, const cpu_times *b, const cpu_set_t *set)
{
    unsigned long long busy = 0, total = 0;
    for (int cpu = 0; cpu < CPUS_MAX; cpu++) {
        if (!CPU_ISSET(cpu, set)) continue;
        busy += b->busy[cpu] - a->busy[cpu];
        total += b->total[cpu] - a->total[cpu];
    }
    return a->ok && b->ok && total ? (double)busy / (double)total : -1;
}

typedef struct sample {
    cpu_times cpus;
    double srv_cpu;
    uint64_t lo_bytes, lo_packets, udp_drops;
    bool lo_ok, udp_ok;
    metrics m;
} sample;

static void take_sample(const options *o, sample *s)
{
    read_cpu_times(&s->cpus);
    s->srv_cpu = o->server_pid ? lg_proc_cpu_s(o->server_pid) : -1;
    s->lo_ok = lo_counters(&s->lo_bytes, &s->lo_packets);
    s->udp_ok = udp_drops(&s->udp_drops);
    if (o->metrics_port) fetch_metrics(o->metrics_port, &s->m);
}

/* --- processes ----------------------------------------------------------------- */

static pid_t spawn_worker(const options *o, lg_shared *sh, uint32_t k)
{
    uint32_t rooms = o->cfg.ccu / o->cfg.room_size;
    uint32_t r0 = k * rooms / o->cfg.procs, r1 = (k + 1) * rooms / o->cfg.procs;
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* Bounded in time even if the parent vanished. */
    alarm((unsigned)(o->cfg.setup_timeout_s + o->cfg.warmup_s + o->cfg.window_s + o->cfg.drain_s +
                     2 * EXIT_GRACE_S));
    lg_worker w = {.cfg = &o->cfg,
                   .shared = sh,
                   .index = k,
                   .first = r0 * o->cfg.room_size,
                   .count = (r1 - r0) * o->cfg.room_size,
                   .res = &sh->results[k],
                   .workload = o->cfg.workload == LG_WORKLOAD_REALTIME ? &lg_workload_realtime
                                                                       : &lg_workload_relay};
    w.res->clients = w.count;
    _exit(lg_worker_run(&w, o->cfg.mode == LG_MODE_KAOS ? &lg_driver_kaos : &lg_driver_enet));
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

/* Waits for every process in pids (0 = none), killing what is left at the deadline. */
static void reap_all(pid_t *pids, uint32_t n, int64_t deadline)
{
    for (uint32_t k = 0; k < n; k++) {
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

static void reap(const options *o, pid_t *pids, int64_t deadline)
{
    reap_all(pids, o->cfg.procs, deadline);
}

/* sh -c cmd in the background; its pid, or -1. */
static pid_t spawn_command(const char *cmd)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) perror("loadgen: fork");
    return pid;
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
        m->clients += r->clients;
        if (r->setup_s > m->setup_s) m->setup_s = r->setup_s;
        m->setup_retries += r->setup_retries;
        m->sends_window += r->sends_window;
        m->sends_total += r->sends_total;
        m->send_errors += r->send_errors;
        m->deliveries_window += r->deliveries_window;
        m->deliveries_total += r->deliveries_total;
        m->misrouted += r->misrouted;
        m->lost_inputs += r->lost_inputs;
        m->lost_fanout += r->lost_fanout;
        m->disconnects += r->disconnects;
        m->server_errors += r->server_errors;
        m->app_sent_window += r->app_sent_window;
        m->app_recv_window += r->app_recv_window;
        m->wire_bytes_window += r->wire_bytes_window;
        m->wire_known = k == 0 ? r->wire_known : m->wire_known && r->wire_known;
        if (r->env_send_bytes > m->env_send_bytes) m->env_send_bytes = r->env_send_bytes;
        if (r->env_recv_bytes > m->env_recv_bytes) m->env_recv_bytes = r->env_recv_bytes;
        m->late_sends += r->late_sends;
        if (r->lag_max_us > m->lag_max_us) m->lag_max_us = r->lag_max_us;
        m->cpu_ns_window += r->cpu_ns_window;
        if (r->lat_max_us > m->lat_max_us) m->lat_max_us = r->lat_max_us;
        m->lat_sum_us += r->lat_sum_us;
        m->lat_samples += r->lat_samples;
        m->snap_intervals += r->snap_intervals;
        if (r->snap_interval_max_us > m->snap_interval_max_us)
            m->snap_interval_max_us = r->snap_interval_max_us;
        m->snapshots_missing += r->snapshots_missing;
        m->snapshots_stale += r->snapshots_stale;
        if (r->snap_hz) m->snap_hz = r->snap_hz;
        for (uint32_t b = 0; b < LG_LAT_BUCKETS; b++) {
            m->lat_hist[b] += r->lat_hist[b];
            m->lag_hist[b] += r->lag_hist[b];
            m->snap_hist[b] += r->snap_hist[b];
        }
    }
}

/* The relay's keys: deliveries of other players' inputs. */
static void report_relay(const options *o, const lg_result *m)
{
    const lg_config *c = &o->cfg;
    uint64_t expected = m->sends_window * (uint64_t)(c->room_size - 1);
    printf(" expected=%" PRIu64 " delivered=%" PRIu64 " delivery=%.5f msgs_per_s=%.1f"
           " app_B_per_client_s=%.1f lost_inputs=%" PRIu64 " lost_fanout=%" PRIu64,
           expected, m->deliveries_window,
           expected ? (double)m->deliveries_window / (double)expected : 0.0,
           (double)m->deliveries_window / c->window_s,
           (double)(m->app_sent_window + m->app_recv_window) / c->ccu / c->window_s, m->lost_inputs,
           m->lost_fanout);
}

/* The realtime keys: snapshots, their intervals, and the server's match
 * counters over the window (m_*: deltas of counters, end values of gauges). */
static void report_realtime(const options *o, const lg_result *m, const sample *s0,
                            const sample *s1, double sampled_s)
{
    const lg_config *c = &o->cfg;
    uint64_t seen = m->deliveries_window + m->snapshots_missing;
    printf(" snapshots=%" PRIu64 " snap_per_client_s=%.2f snap_hz=%u snap_missing=%" PRIu64
           " snap_stale=%" PRIu64 " snap_loss=%.5f int_p50_us=%" PRIu64 " int_p99_us=%" PRIu64
           " int_max_us=%" PRIu64 " intervals=%" PRIu64,
           m->deliveries_window, (double)m->deliveries_window / c->ccu / c->window_s, m->snap_hz,
           m->snapshots_missing, m->snapshots_stale,
           seen ? (double)m->snapshots_missing / (double)seen : 0.0,
           m->snap_intervals
               ? lg_snap_bucket_value(lg_hist_bucket_at(m->snap_hist, m->snap_intervals, 0.50))
               : 0,
           m->snap_intervals
               ? lg_snap_bucket_value(lg_hist_bucket_at(m->snap_hist, m->snap_intervals, 0.99))
               : 0,
           m->snap_interval_max_us, m->snap_intervals);
    if (!s0->m.ok || !s1->m.ok) return;
    printf(" metrics_s=%.3f", sampled_s);
    for (int i = 0; i < s1->m.n; i++) {
        const metric *e = &s1->m.m[i], *b = metric_find(&s0->m, e->name);
        size_t len = strlen(e->name);
        bool counter = strstr(e->name, "_total") || strstr(e->name, "_bucket") ||
                       (len > 6 && !strcmp(e->name + len - 6, "_count"));
        printf(" m_%s=%.0f", e->name, counter ? e->value - (b ? b->value : 0) : e->value);
    }
}

/* Worker figures cover exactly the configured window; the parent's samples
 * span `sampled_s`, a little more or less, and are divided by that. */
static void report(const options *o, const lg_result *m, const sample *s0, const sample *s1,
                   double sampled_s, long rss_kb)
{
    const lg_config *c = &o->cfg;
    double window_s = c->window_s, ccu = c->ccu;
    double srv_cpu = s0->srv_cpu >= 0 && s1->srv_cpu >= 0 ? s1->srv_cpu - s0->srv_cpu : -1;
    double lo_payload = -1, lo_packets = -1;
    if (s0->lo_ok && s1->lo_ok) {
        uint64_t bytes = s1->lo_bytes - s0->lo_bytes, packets = s1->lo_packets - s0->lo_packets;
        lo_payload = (double)(bytes - packets * LO_HEADER_BYTES) / ccu / sampled_s;
        lo_packets = (double)packets / ccu / sampled_s;
    }
    long long kernel_drops =
        s0->udp_ok && s1->udp_ok ? (long long)(s1->udp_drops - s0->udp_drops) : -1;
    uint64_t lag_p99 = lg_hist_quantile(m->lag_hist, m->sends_window, 0.99);
    double period_us = 1e6 / c->hz;
    /* Behind schedule: more than 0.1 % of sends over period/2 late, or a p99
     * lag above a quarter period. */
    bool behind =
        (double)m->late_sends > 0.001 * (double)m->sends_window || (double)lag_p99 > period_us / 4;
    printf("result status=%s workload=%s mode=%s ccu=%u procs=%u window_s=%.3f setup_s=%.2f"
           " setup_retries=%" PRIu64 " sends=%" PRIu64 " lat_samples=%" PRIu64
           " lat_p50_us=%" PRIu64 " lat_p99_us=%" PRIu64 " lat_max_us=%" PRIu64 " lat_mean_us=%.0f"
           " app_sent_B_per_client_s=%.1f app_recv_B_per_client_s=%.1f"
           " wire_B_per_client_s=%.1f lo_B_per_client_s=%.1f lo_pkts_per_client_s=%.1f"
           " env_send_B=%u env_recv_B=%u srv_cpu_s=%.3f srv_cpu_per_ccu_s=%.7f srv_rss_kb=%ld"
           " lg_cpu_cores=%.3f lag_p99_us=%" PRIu64 " lag_max_us=%" PRIu64 " late_sends=%" PRIu64
           " behind=%d udp_buffer_drops=%lld misrouted=%" PRIu64 " disconnects=%" PRIu64
           " server_errors=%" PRIu64 " send_errors=%" PRIu64,
           m->status ? "failed" : "ok", c->workload == LG_WORKLOAD_REALTIME ? "realtime" : "relay",
           c->mode == LG_MODE_KAOS ? "kaos" : "enet", c->ccu, c->procs, window_s, m->setup_s,
           m->setup_retries, m->sends_window, m->lat_samples,
           lg_hist_quantile(m->lat_hist, m->lat_samples, 0.50),
           lg_hist_quantile(m->lat_hist, m->lat_samples, 0.99), m->lat_max_us,
           m->lat_samples ? (double)m->lat_sum_us / (double)m->lat_samples : 0.0,
           (double)m->app_sent_window / ccu / window_s, (double)m->app_recv_window / ccu / window_s,
           m->wire_known ? (double)m->wire_bytes_window / ccu / window_s : -1.0, lo_payload,
           lo_packets, m->env_send_bytes, m->env_recv_bytes, srv_cpu,
           srv_cpu >= 0 ? srv_cpu / (ccu * sampled_s) : -1.0, rss_kb,
           (double)m->cpu_ns_window / 1e9 / window_s, lag_p99, m->lag_max_us, m->late_sends,
           behind ? 1 : 0, kernel_drops, m->misrouted, m->disconnects, m->server_errors,
           m->send_errors);
    /* Everything else the machine ran meanwhile: other programs compete
     * with the server and the load generator for the same cores. */
    if (s0->cpus.ok && s1->cpus.ok && srv_cpu >= 0) {
        double hz = (double)sysconf(_SC_CLK_TCK);
        /* busy, not user + system: a process's utime + stime include the
         * softirq work done in its context, which /proc/stat books apart. */
        double machine = (double)(s1->cpus.busy[CPUS_MAX] - s0->cpus.busy[CPUS_MAX]) / hz;
        printf(" other_cpu_cores=%.3f",
               (machine - srv_cpu) / sampled_s - (double)m->cpu_ns_window / 1e9 / window_s);
    }
    /* How busy the cores were, softirqs included (loopback delivery runs
     * in the sender's softirq, charged to no process): the server's
     * cores and the load generator's. */
    cpu_set_t mine, srv;
    if (sched_getaffinity(0, sizeof mine, &mine) == 0)
        printf(" lg_core_busy=%.3f", busy_share(&s0->cpus, &s1->cpus, &mine));
    if (o->server_pid && sched_getaffinity(o->server_pid, sizeof srv, &srv) == 0)
        printf(" srv_core_busy=%.3f", busy_share(&s0->cpus, &s1->cpus, &srv));
    if (c->workload == LG_WORKLOAD_REALTIME)
        report_realtime(o, m, s0, s1, sampled_s);
    else
        report_relay(o, m);
    printf("\n");
    fflush(stdout);
    if (m->status) fprintf(stderr, "loadgen: FAILED: %s\n", m->error);
    if (behind)
        fprintf(stderr,
                "loadgen: WARNING: behind schedule (send lag p99 %" PRIu64 " us, %" PRIu64
                " sends over %.0f us late): the load generator, not the server, may be the "
                "limit\n",
                lag_p99, m->late_sends, period_us / LG_LATE_DIVISOR);
}

int main(int argc, char **argv)
{
    options o;
    if (parse(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
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

    sample s0 = {.srv_cpu = -1}, s1 = {.srv_cpu = -1};
    long rss_kb = -1;
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
        pid_t cmd = o.window_cmd ? spawn_command(o.window_cmd) : 0;
        int64_t e = lg_sleep_until(sh->t_end);
        take_sample(&o, &s1);
        if (cmd > 0) {
            pid_t one[1] = {cmd};
            reap_all(one, 1, e + (int64_t)EXIT_GRACE_S * 1000000000);
        }
        if (o.server_pid) rss_kb = proc_rss_kb(o.server_pid);
        /* The samples are a little late; divide by the time they really span. */
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
    report(&o, m, &s0, &s1, sampled_s, rss_kb);
    int rc = m->status ? 1 : 0;
    free(m);
    munmap(sh, sizeof *sh);
    return rc;
}
