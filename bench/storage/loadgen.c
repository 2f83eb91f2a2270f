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
 * board ID with the board's operator (bench/leaderboards/run.sh); with
 * `--tournament` too, kaos_client_tournament_record_write to the
 * tournament ID instead (the same write plus the tournament's rules).
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
 * The clients, their logins and their polling (when readable, and all of
 * them every 10 ms) are bench/lg/lg_sdk's.
 *
 * `bench_storage_loadgen --pg-cpu PID` only prints PostgreSQL's CPU seconds
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
#include <sys/random.h>
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
    lg_sdk_client *s;
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
    bool tournament;   /* ...which is a tournament */
} opt = {"127.0.0.1", NULL, 0, 16, 4, 100, 100, 2, 10, 0, 0, NULL, false};

static struct {
    phase ph;
    bool reading; /* the run phase issues reads, not writes */
    int64_t win_start, win_end;
    uint64_t ops, errors, other_errors;
    uint32_t *lat;
    size_t n_lat;
    char *value; /* the write's JSON, with room for a counter */
    client *cl;
    lg_sdk_pool pool;
} st;

/* --- requests ------------------------------------------------------------------ */

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
        cid = kaos_client_storage_read(k->s->c, &id, 1, on_objects, k);
    } else if (opt.board) {
        cid = (opt.tournament ? kaos_client_tournament_record_write
                              : kaos_client_leaderboard_record_write)(
            k->s->c, opt.board, r % (uint32_t)(opt.keys * 1000), 0, NULL,
            KAOS_LEADERBOARD_OP_DEFAULT, on_record, k);
    } else {
        /* The value changes with every write (so does its version). */
        int n = snprintf(st.value, 32, "{\"n\":%-20llu", (unsigned long long)++k->seq);
        st.value[n] = ',';
        kaos_storage_write_object o = {.collection = COLLECTION, .key = key, .value = st.value};
        cid = kaos_client_storage_write(k->s->c, &o, 1, on_acks, k);
    }
    if (cid <= 0) {
        st.other_errors++;
        k->s->dead = true;
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
    if (kaos_client_storage_write(k->s->c, batch, n, on_acks, k) <= 0)
        lg_die("prefill write failed");
    k->inflight++;
}

/* An answer (or error) to one of k's requests. */
static void answered(client *k, uint32_t cid, bool ok)
{
    k->inflight--;
    int64_t t = lg_now_ns();
    if (st.ph == PH_PREFILL) {
        if (!ok) lg_die("prefill refused");
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
    if (st.ph == PH_RUN && !k->s->dead) issue(k);
}

/* --- callbacks -------------------------------------------------------------------- */

/* True when the request succeeded; an error is shown (the first few) and
 * answered. A request cut by a disconnect is neither: on_disconnected tells. */
static bool succeeded(client *k, const kaos_result *r)
{
    if (r->code == KAOS_OK) return true;
    if (r->code == KAOS_ERR_CLOSED) return false;
    static int shown;
    if (shown++ < 5) fprintf(stderr, "client %d: error %d %s\n", k->s->index, -r->code, r->message);
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

/* --- the loop ------------------------------------------------------------------------ */

static int outstanding(void)
{
    int n = 0;
    for (int i = 0; i < opt.clients; i++)
        n += st.cl[i].s->dead ? 0 : st.cl[i].inflight;
    return n;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* One measured phase: warm-up, window, drain; prints its result line. */
static void run_phase(bool reading)
{
    st.reading = reading;
    st.ops = st.errors = 0;
    st.n_lat = 0;
    int64_t start = lg_now_ns();
    st.win_start = start + (int64_t)(opt.warmup * 1e9);
    st.win_end = st.win_start + (int64_t)(opt.seconds * 1e9);
    st.ph = PH_RUN;
    for (int i = 0; i < opt.clients; i++) {
        for (int j = 0; j < opt.inflight && !st.cl[i].s->dead; j++)
            issue(&st.cl[i]);
        kaos_client_poll(st.cl[i].s->c, 0);
    }
    while (lg_now_ns() < st.win_start)
        lg_sdk_pool_pump(&st.pool, 1);
    double srv0 = lg_proc_cpu_s(opt.server_pid), pg0 = lg_proc_tree_cpu_s(opt.pg_pid);
    double lg0 = lg_proc_cpu_s(getpid());
    int64_t w0 = lg_now_ns();
    while (lg_now_ns() < st.win_end)
        lg_sdk_pool_pump(&st.pool, 1);
    double srv1 = lg_proc_cpu_s(opt.server_pid), pg1 = lg_proc_tree_cpu_s(opt.pg_pid);
    double lg1 = lg_proc_cpu_s(getpid());
    double window = (double)(lg_now_ns() - w0) / 1e9;
    st.ph = PH_DRAIN;
    int64_t give_up = lg_now_ns() + 10000000000LL;
    while (outstanding() > 0 && lg_now_ns() < give_up)
        lg_sdk_pool_pump(&st.pool, 1);
    int dead = lg_sdk_pool_dead(&st.pool);
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
            "         [--tournament]\n"
            "       bench_storage_loadgen --pg-cpu POSTMASTER_PID\n");
    exit(2);
}

int main(int argc, char **argv)
{
    /* --pg-cpu PID: print PostgreSQL's CPU seconds so far and exit (run.sh
     * samples it around pgbench). */
    if (argc == 3 && !strcmp(argv[1], "--pg-cpu")) {
        printf("%.2f\n", lg_proc_tree_cpu_s(atoi(argv[2])));
        return 0;
    }
    const char *phases = "write,read";
    static const struct option longs[] = {
        {"host", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},
        {"server-key", required_argument, 0, 'k'},
        {"clients", required_argument, 0, 'c'},
        {"inflight", required_argument, 0, 'i'},
        {"keys", required_argument, 0, 'n'},
        {"value-bytes", required_argument, 0, 'b'},
        {"warmup", required_argument, 0, 'w'},
        {"seconds", required_argument, 0, 's'},
        {"server-pid", required_argument, 0, 'S'},
        {"pg-pid", required_argument, 0, 'G'},
        {"phases", required_argument, 0, 'P'},
        {"board", required_argument, 0, 'B'},
        {"tournament", no_argument, 0, 'T'},
        {0, 0, 0, 0},
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
        case 'c':
            opt.clients = atoi(optarg);
            break;
        case 'i':
            opt.inflight = atoi(optarg);
            break;
        case 'n':
            opt.keys = atoi(optarg);
            break;
        case 'b':
            opt.value_bytes = atoi(optarg);
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
        case 'B':
            opt.board = optarg;
            break;
        case 'T':
            opt.tournament = true;
            break;
        default:
            usage();
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
    if (!st.value || !st.lat || !st.cl) lg_die("out of memory");
    int n = snprintf(st.value, (size_t)opt.value_bytes + 1, "{\"n\":%-20d,\"pad\":\"", 0);
    memset(st.value + n, 'x', (size_t)(opt.value_bytes - n - 2));
    strcpy(st.value + opt.value_bytes - 2, "\"}");

    lg_sdk_pool_open(&st.pool, opt.clients, opt.host, opt.port, opt.key, NULL, NULL);
    for (int i = 0; i < opt.clients; i++)
        st.cl[i].s = &st.pool.cl[i];

    if (strstr(phases, "read")) { /* every client's keys exist before anything is read */
        st.ph = PH_PREFILL;
        for (int i = 0; i < opt.clients; i++) {
            prefill_batch(&st.cl[i]);
            kaos_client_poll(st.cl[i].s->c, 0);
        }
        while (outstanding() > 0)
            lg_sdk_pool_pump(&st.pool, 5);
    }
    if (strstr(phases, "write")) run_phase(false);
    if (strstr(phases, "read")) run_phase(true);
    lg_sdk_pool_close(&st.pool);
    free(st.value);
    free(st.lat);
    free(st.cl);
    return 0;
}
