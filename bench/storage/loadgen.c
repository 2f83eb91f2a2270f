/* bench_storage_loadgen: storage writes and reads through a KaosNet server
 * over ENet, written against the public SDK header only (kaos.h).
 *
 * One process, one thread. `--clients` SDK clients connect and log in with
 * fresh device ids; each then keeps `--inflight` requests outstanding, one
 * object per request:
 *   write phase: kaos_client_storage_write of its own object "bench"/k<r>
 *                (r uniform in 0..keys-1, unconditional, ~value-bytes of JSON);
 *   read phase:  kaos_client_storage_read of one of its own existing objects
 *                (every key is written first, in batches, untimed).
 * With `--board ID` the write phase writes leaderboard records instead:
 * kaos_client_leaderboard_record_write of a random score (0..keys*1000) to
 * board ID with the board's operator (bench/leaderboards/run.sh).
 * Each phase runs `--warmup` seconds, then a `--seconds` window whose
 * completions are counted; requests in flight drain before the next phase.
 *
 * At the window's edges it samples CPU time (utime + stime from /proc) of
 * the server (`--server-pid`), of PostgreSQL (`--pg-pid`: the postmaster,
 * its children, and the children it reaped), and of itself. It prints one
 * line per phase:
 *   result phase=write status=ok ops=N ops_per_s=X lat_p50_us=.. lat_p99_us=..
 *          errors=N srv_cpu_s=.. pg_cpu_s=.. lg_cpu_s=.. window_s=..
 *
 * Sockets: the SDK does not expose its socket; as in bench/relay/lg_kaos.c,
 * the lowest free descriptor before kaos_client_create is its ENet socket
 * (checked), so clients are polled when readable (epoll) rather than in a
 * busy loop, plus a sweep of all of them every 10 ms for ENet's timers.
 *
 * `bench_storage_loadgen --pg-cpu PID` only prints PostgreSQL's CPU seconds
 * (the same sum), for run.sh to sample around pgbench. */
#include "../lg/lg_util.h"

#include <kaos.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_INFLIGHT 64
#define MAX_LAT      (1u << 22) /* latency samples kept per window */
#define COLLECTION   "bench"

typedef enum phase {
    PH_SETUP,   /* connect and log in */
    PH_PREFILL, /* write every key once (for the reads), untimed */
    PH_RUN,     /* issue requests; measured between win_start and win_end */
    PH_DRAIN,   /* no new requests; wait for the outstanding ones */
} phase;

typedef struct client {
    kaos_client *c;
    int fd, index;
    bool connected, authed, dead;
    int inflight;
    int64_t sent_ns[MAX_INFLIGHT]; /* by cid % MAX_INFLIGHT */
    uint32_t prefill_next;         /* next key to prefill */
    uint64_t seq;
} client;

static struct {
    const char *host, *key;
    uint16_t port;
    int clients, inflight, keys, value_bytes;
    double warmup, seconds;
    int server_pid, pg_pid;
    const char *board; /* write leaderboard records to this board */
} opt = {"127.0.0.1", NULL, 0, 16, 4, 100, 100, 2, 10, 0, 0, NULL};

static struct {
    phase ph;
    bool reading; /* the run phase issues reads, not writes */
    int64_t win_start, win_end;
    uint64_t ops, errors, other_errors;
    uint32_t *lat;
    size_t n_lat;
    char *value; /* the write's JSON, with room for a counter */
    client *cl;
} st;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_storage_loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* --- CPU time from /proc ------------------------------------------------------ */

/* utime, stime, cutime, cstime (clock ticks) of pid; ppid into *ppid. */
static bool proc_ticks(int pid, long long t[4], int *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* comm may hold spaces */
    if (!p) return false;
    int pp = 0;
    /* fields after comm: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime */
    if (sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld %lld %lld", &pp, &t[0],
               &t[1], &t[2], &t[3]) != 5)
        return false;
    if (ppid) *ppid = pp;
    return true;
}

static double cpu_of(int pid)
{
    return pid > 0 ? lg_proc_cpu_s(pid) : -1;
}

/* The postmaster, its live children, and the children it already reaped. */
static double pg_cpu(int postmaster)
{
    long long t[4];
    if (postmaster <= 0 || !proc_ticks(postmaster, t, NULL)) return -1;
    long long ticks = t[0] + t[1] + t[2] + t[3];
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name), ppid = 0;
        long long c[4];
        if (pid > 0 && proc_ticks(pid, c, &ppid) && ppid == postmaster) ticks += c[0] + c[1];
    }
    if (d) closedir(d);
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* --- requests ------------------------------------------------------------------ */

static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud);
static void on_acks(kaos_client *c, const kaos_result *r, const kaos_storage_ack *acks, size_t n,
                    void *ud);
static void on_objects(kaos_client *c, const kaos_result *r, const kaos_storage_object *objs,
                       size_t n, const char *cursor, void *ud);
static void on_record(kaos_client *c, const kaos_result *r, const kaos_leaderboard_record *rec,
                      void *ud);

static void issue(client *k)
{
    uint32_t r;
    if (getrandom(&r, sizeof r, 0) != sizeof r) r = (uint32_t)rand();
    char key[16];
    snprintf(key, sizeof key, "k%u", r % (uint32_t)opt.keys);
    int cid;
    if (st.reading) {
        kaos_storage_id id = {COLLECTION, key, NULL, NULL};
        cid = kaos_client_storage_read(k->c, &id, 1, on_objects, k);
    } else if (opt.board) {
        cid = kaos_client_leaderboard_record_write(k->c, opt.board, r % (uint32_t)(opt.keys * 1000),
                                                   0, NULL, KAOS_LEADERBOARD_OP_DEFAULT, on_record,
                                                   k);
    } else {
        /* The value changes with every write (so does its version). */
        int n = snprintf(st.value, 32, "{\"n\":%-20llu", (unsigned long long)++k->seq);
        st.value[n] = ',';
        kaos_storage_write_object o = {.collection = COLLECTION, .key = key, .value = st.value};
        cid = kaos_client_storage_write(k->c, &o, 1, on_acks, k);
    }
    if (cid <= 0) {
        st.other_errors++;
        k->dead = true;
        return;
    }
    k->sent_ns[cid % MAX_INFLIGHT] = lg_now_ns();
    k->inflight++;
}

/* Writes the next batch of up to 100 keys of the prefill. */
static void prefill_batch(client *k)
{
    static kaos_storage_write_object batch[100];
    static char keys[100][16];
    /* A batch must fit in one message (KAOS_MAX_MESSAGE_SIZE). */
    uint32_t n = 0, max = (uint32_t)(12000 / (opt.value_bytes + 40));
    if (max < 1) max = 1;
    if (max > 100) max = 100;
    while (n < max && k->prefill_next < (uint32_t)opt.keys) {
        snprintf(keys[n], sizeof keys[n], "k%u", k->prefill_next++);
        batch[n] = (kaos_storage_write_object){COLLECTION, keys[n], st.value, NULL, false, 0, 0};
        n++;
    }
    if (kaos_client_storage_write(k->c, batch, n, on_acks, k) <= 0) die("prefill write failed");
    k->inflight++;
}

/* An answer (or error) to one of k's requests. */
static void answered(client *k, uint32_t cid, bool ok)
{
    k->inflight--;
    int64_t t = lg_now_ns();
    if (st.ph == PH_PREFILL) {
        if (!ok) die("prefill refused");
        if (k->prefill_next < (uint32_t)opt.keys) prefill_batch(k);
        return;
    }
    if (t >= st.win_start && t < st.win_end) {
        if (ok) {
            st.ops++;
            if (st.n_lat < MAX_LAT)
                st.lat[st.n_lat++] = (uint32_t)((t - k->sent_ns[cid % MAX_INFLIGHT]) / 1000);
        } else {
            st.errors++;
        }
    }
    if (st.ph == PH_RUN && !k->dead) issue(k);
}

/* --- callbacks -------------------------------------------------------------------- */

static void on_connected(kaos_client *c, void *ud)
{
    client *k = ud;
    k->connected = true;
    char dev[48];
    uint64_t r[2];
    if (getrandom(r, sizeof r, 0) != sizeof r) die("getrandom");
    snprintf(dev, sizeof dev, "bench-%016llx%016llx", (unsigned long long)r[0],
             (unsigned long long)r[1]);
    if (kaos_client_auth_device(c, dev, NULL, true, NULL, on_session, k) <= 0) die("authenticate");
}

static void on_disconnected(kaos_client *c, uint32_t reason, void *ud)
{
    client *k = ud;
    if (!k->dead)
        fprintf(stderr, "client %d disconnected: %s\n", k->index,
                kaos_disconnect_reason_text(reason));
    k->dead = true;
    k->connected = false;
}

static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud)
{
    client *k = ud;
    if (r->code == KAOS_ERR_CLOSED) return; /* on_disconnected tells */
    if (r->code < 0) die("client %d: login failed: %d %s", k->index, -r->code, r->message);
    k->authed = true;
}

/* True when the request succeeded; an error is shown (the first few) and
 * answered. A request cut by a disconnect is neither: on_disconnected tells. */
static bool succeeded(client *k, const kaos_result *r)
{
    if (r->code == KAOS_OK) return true;
    if (r->code == KAOS_ERR_CLOSED) return false;
    static int shown;
    if (shown++ < 5) fprintf(stderr, "client %d: error %d %s\n", k->index, -r->code, r->message);
    answered(k, r->cid, false);
    return false;
}

static void on_acks(kaos_client *c, const kaos_result *r, const kaos_storage_ack *acks, size_t n,
                    void *ud)
{
    if (succeeded(ud, r)) answered(ud, r->cid, true);
}

static void on_objects(kaos_client *c, const kaos_result *r, const kaos_storage_object *objs,
                       size_t n, const char *cursor, void *ud)
{
    if (!succeeded(ud, r)) return;
    if (n != 1) st.other_errors++; /* every key was written: a read finds its object */
    answered(ud, r->cid, n == 1);
}

static void on_record(kaos_client *c, const kaos_result *r, const kaos_leaderboard_record *rec,
                      void *ud)
{
    if (!succeeded(ud, r)) return;
    if (rec->rank < 1) st.other_errors++; /* every record written is ranked */
    answered(ud, r->cid, rec->rank >= 1);
}

/* Errors of no request (cid 0). */
static void on_error(kaos_client *c, const kaos_result *r, void *ud)
{
    client *k = ud;
    fprintf(stderr, "client %d: error %d %s\n", k->index, -r->code, r->message);
}

/* --- the loop ------------------------------------------------------------------------ */

static int lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    return fd;
}

static bool is_dgram_socket(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM;
}

/* Polls readable clients for up to ms, and every client every 10 ms. */
static void pump(int ep, int ms)
{
    static int64_t last_sweep;
    struct epoll_event ev[64];
    int n = epoll_wait(ep, ev, 64, ms);
    for (int i = 0; i < n; i++) kaos_client_poll(st.cl[ev[i].data.u32].c, 0);
    int64_t t = lg_now_ns();
    if (t - last_sweep > 10000000) {
        last_sweep = t;
        for (int i = 0; i < opt.clients; i++) kaos_client_poll(st.cl[i].c, 0);
    }
}

static int outstanding(void)
{
    int n = 0;
    for (int i = 0; i < opt.clients; i++) n += st.cl[i].dead ? 0 : st.cl[i].inflight;
    return n;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* One measured phase: warm-up, window, drain; prints its result line. */
static void run_phase(int ep, bool reading)
{
    st.reading = reading;
    st.ops = st.errors = 0;
    st.n_lat = 0;
    int64_t start = lg_now_ns();
    st.win_start = start + (int64_t)(opt.warmup * 1e9);
    st.win_end = st.win_start + (int64_t)(opt.seconds * 1e9);
    st.ph = PH_RUN;
    for (int i = 0; i < opt.clients; i++) {
        for (int j = 0; j < opt.inflight && !st.cl[i].dead; j++) issue(&st.cl[i]);
        kaos_client_poll(st.cl[i].c, 0);
    }
    while (lg_now_ns() < st.win_start) pump(ep, 1);
    double srv0 = cpu_of(opt.server_pid), pg0 = pg_cpu(opt.pg_pid), lg0 = cpu_of(getpid());
    int64_t w0 = lg_now_ns();
    while (lg_now_ns() < st.win_end) pump(ep, 1);
    double srv1 = cpu_of(opt.server_pid), pg1 = pg_cpu(opt.pg_pid), lg1 = cpu_of(getpid());
    double window = (double)(lg_now_ns() - w0) / 1e9;
    st.ph = PH_DRAIN;
    int64_t give_up = lg_now_ns() + 10000000000LL;
    while (outstanding() > 0 && lg_now_ns() < give_up) pump(ep, 1);
    int dead = 0;
    for (int i = 0; i < opt.clients; i++) dead += st.cl[i].dead;
    qsort(st.lat, st.n_lat, sizeof st.lat[0], cmp_u32);
    uint32_t p50 = st.n_lat ? st.lat[st.n_lat / 2] : 0;
    uint32_t p99 = st.n_lat ? st.lat[st.n_lat * 99 / 100] : 0;
    printf("result phase=%s status=%s clients=%d inflight=%d ops=%llu ops_per_s=%.1f "
           "lat_p50_us=%u lat_p99_us=%u errors=%llu other_errors=%llu srv_cpu_s=%.2f "
           "pg_cpu_s=%.2f lg_cpu_s=%.2f window_s=%.2f\n",
           reading ? "read" : "write", dead ? "degraded" : "ok", opt.clients, opt.inflight,
           (unsigned long long)st.ops, (double)st.ops / window, p50, p99,
           (unsigned long long)st.errors, (unsigned long long)st.other_errors,
           srv0 < 0 ? -1 : srv1 - srv0, pg0 < 0 ? -1 : pg1 - pg0, lg1 - lg0, window);
    fflush(stdout);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_storage_loadgen --port P [--host H] [--server-key HEX] [--clients N]\n"
            "         [--inflight K] [--keys N] [--value-bytes B] [--warmup S] [--seconds S]\n"
            "         [--server-pid PID] [--pg-pid PID] [--phases write,read] [--board ID]\n"
            "       bench_storage_loadgen --pg-cpu POSTMASTER_PID\n");
    exit(2);
}

int main(int argc, char **argv)
{
    /* --pg-cpu PID: print PostgreSQL's CPU seconds so far and exit (run.sh
     * samples it around pgbench). */
    if (argc == 3 && !strcmp(argv[1], "--pg-cpu")) {
        printf("%.2f\n", pg_cpu(atoi(argv[2])));
        return 0;
    }
    const char *phases = "write,read";
    static const struct option longs[] = {
        {"host", required_argument, 0, 'h'},        {"port", required_argument, 0, 'p'},
        {"server-key", required_argument, 0, 'k'},  {"clients", required_argument, 0, 'c'},
        {"inflight", required_argument, 0, 'i'},    {"keys", required_argument, 0, 'n'},
        {"value-bytes", required_argument, 0, 'b'}, {"warmup", required_argument, 0, 'w'},
        {"seconds", required_argument, 0, 's'},     {"server-pid", required_argument, 0, 'S'},
        {"pg-pid", required_argument, 0, 'G'},      {"phases", required_argument, 0, 'P'},
        {"board", required_argument, 0, 'B'},       {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (o) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = (uint16_t)atoi(optarg); break;
        case 'k': opt.key = optarg; break;
        case 'c': opt.clients = atoi(optarg); break;
        case 'i': opt.inflight = atoi(optarg); break;
        case 'n': opt.keys = atoi(optarg); break;
        case 'b': opt.value_bytes = atoi(optarg); break;
        case 'w': opt.warmup = atof(optarg); break;
        case 's': opt.seconds = atof(optarg); break;
        case 'S': opt.server_pid = atoi(optarg); break;
        case 'G': opt.pg_pid = atoi(optarg); break;
        case 'P': phases = optarg; break;
        case 'B': opt.board = optarg; break;
        default: usage();
        }
    }
    if (!opt.port || opt.clients < 1 || opt.clients > 1000 || opt.inflight < 1 ||
        opt.inflight > MAX_INFLIGHT || opt.keys < 1 || opt.value_bytes < 32 ||
        opt.value_bytes > 8192 || opt.seconds <= 0)
        usage();

    /* {"n":<20-digit counter>,"pad":"xxx..."}: value-bytes of JSON. */
    st.value = malloc((size_t)opt.value_bytes + 1);
    st.lat = malloc(MAX_LAT * sizeof *st.lat);
    st.cl = calloc((size_t)opt.clients, sizeof *st.cl);
    if (!st.value || !st.lat || !st.cl) die("out of memory");
    int n = snprintf(st.value, (size_t)opt.value_bytes + 1, "{\"n\":%-20d,\"pad\":\"", 0);
    memset(st.value + n, 'x', (size_t)(opt.value_bytes - n - 2));
    strcpy(st.value + opt.value_bytes - 2, "\"}");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll: %s", strerror(errno));
    for (int i = 0; i < opt.clients; i++) {
        client *k = &st.cl[i];
        k->index = i;
        kaos_client_config cfg;
        kaos_client_config_default(&cfg);
        cfg.host = opt.host;
        cfg.port = opt.port;
        cfg.server_key = opt.key;
        cfg.insecure_dev_mode = !opt.key;
        cfg.keepalive_ms = 0;
        k->fd = lowest_free_fd();
        if (kaos_client_create(&cfg, &k->c) < 0) die("kaos_client_create");
        kaos_client_on_connected(k->c, on_connected, k);
        kaos_client_on_disconnected(k->c, on_disconnected, k);
        kaos_client_on_error(k->c, on_error, k);
        if (k->fd < 0 || !is_dgram_socket(k->fd)) die("cannot find the socket of client %d", i);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &ev)) die("epoll_ctl: %s", strerror(errno));
        if (kaos_client_connect(k->c) < 0) die("connect");
    }
    int64_t deadline = lg_now_ns() + 60000000000LL;
    for (;;) {
        int authed = 0, dead = 0;
        for (int i = 0; i < opt.clients; i++) {
            authed += st.cl[i].authed;
            dead += st.cl[i].dead;
        }
        if (dead) die("%d clients could not connect", dead);
        if (authed == opt.clients) break;
        if (lg_now_ns() > deadline) die("setup timed out (%d of %d logged in)", authed, opt.clients);
        pump(ep, 5);
    }

    if (strstr(phases, "read")) { /* every client's keys exist before anything is read */
        st.ph = PH_PREFILL;
        for (int i = 0; i < opt.clients; i++) {
            prefill_batch(&st.cl[i]);
            kaos_client_poll(st.cl[i].c, 0);
        }
        while (outstanding() > 0) pump(ep, 5);
    }
    if (strstr(phases, "write")) run_phase(ep, false);
    if (strstr(phases, "read")) run_phase(ep, true);
    for (int i = 0; i < opt.clients; i++) kaos_client_destroy(st.cl[i].c);
    free(st.value);
    free(st.lat);
    free(st.cl);
    close(ep);
    return 0;
}
