/* bench_matchmaker_stream: the time from a ticket to its MatchmakerMatched
 * under a steady stream of tickets through a KaosNet server over ENet,
 * written against the public SDK header only (kaos.h).
 *
 * One process, one thread. `--clients` SDK clients connect and log in with
 * fresh device ids (each its own user). Each phase (`--phases 25,500`: a
 * rate in tickets a second) adds tickets on an absolute schedule, one every
 * 1/rate s, each from the next client (round robin) holding fewer than 3
 * (the server's per-session limit): a duel (2-2) of region R (one of 4) and
 * skill S (uniform 0-3000) asking
 *   +region:R +skill:>=S-200 +skill:<=S+200
 * and widening its skill window by 100 a pass up to 600 (MatchmakerWiden).
 * A ticket's latency is the arrival of its MatchmakerMatched minus the
 * time it was sent (one machine, one clock): the request's trip, the wait
 * for a pass, the pass, and the push. The server's matched hook is absent:
 * every group gets a relay token (no match is joined).
 *
 * A phase runs `--warmup` seconds, then a `--seconds` window: tickets sent
 * in the window are measured (their MatchmakerMatched may come after it).
 * Then the phase stops adding and drains for up to `--drain` seconds; a
 * window ticket unmatched by then is `unmatched` (and removed, as every
 * waiting ticket is, so the next phase starts from an empty pool).
 *
 * At the window's edges it reads the server's /metrics (`--http-port`):
 * kaos_matchmaker_passes_total and kaos_matchmaker_pass_us_total give the
 * passes in the window and their mean time — the baseline a ticket's wait
 * is made of beside the interval — and it samples the server's CPU time
 * (`--server-pid`). One line a phase:
 *   result phase=RATE status=ok sent=N matched=N groups=N unmatched=N errors=N
 *          lat_p50_us=.. lat_p90_us=.. lat_p99_us=.. lat_max_us=..
 *          passes=N pass_mean_us=.. srv_cpu_s=.. lg_cpu_s=.. window_s=.. skipped=N
 * skipped: schedule slots with no client free (raise --clients). */
#include "../lg/lg_sdk.h"
#include "../lg/lg_util.h"

#include <kaos.h>

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PER_CLIENT 3 /* the server's tickets per session */
#define REGIONS    4

/* One ticket of a client: sent, answered (its id), matched. */
typedef struct slot {
    bool busy;
    bool in_window;
    int64_t sent_ns;
    char ticket[40]; /* "" until the answer */
    struct player *owner;
} slot;

/* A MatchmakerMatched that came before its ticket's answer. */
typedef struct early {
    char ticket[40];
    int64_t at_ns;
} early;

typedef struct player {
    lg_sdk_client *k;
    slot slots[PER_CLIENT];
    early early[PER_CLIENT];
    int n_early, busy;
} player;

static struct {
    const char *host, *key;
    uint16_t port, http_port;
    int clients;
    char phases[256];
    double warmup, seconds, drain;
    int server_pid;
} opt = {"127.0.0.1", NULL, 0, 0, 600, "25,500", 3, 10, 15, 0};

static struct {
    int64_t win_start, win_end;
    uint64_t sent, matched, errors, unmatched, skipped, waiting;
    uint32_t lat[LG_LAT_BUCKETS];
    uint64_t lat_max_us;
} ph;

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void finish(slot *s, int64_t at_ns)
{
    if (s->in_window) {
        uint64_t us = (uint64_t)(at_ns - s->sent_ns) / 1000;
        ph.lat[lg_lat_bucket(us)]++;
        if (us > ph.lat_max_us) ph.lat_max_us = us;
        ph.matched++;
    }
    s->busy = false;
    s->owner->busy--;
    ph.waiting--;
}

static void on_ticket(kaos_client *c, const kaos_result *r, const char *ticket, void *ud)
{
    (void)c;
    slot *s = ud;
    player *p = s->owner;
    if (r->code < 0) {
        if (r->code != KAOS_ERR_CLOSED)
            fprintf(stderr, "ticket refused: %d %s\n", -r->code, r->message);
        ph.errors += s->in_window;
        s->in_window = false;
        finish(s, 0);
        return;
    }
    snprintf(s->ticket, sizeof s->ticket, "%s", ticket);
    for (int i = 0; i < p->n_early; i++)
        if (!strcmp(p->early[i].ticket, ticket)) {
            int64_t at = p->early[i].at_ns;
            p->early[i] = p->early[--p->n_early];
            finish(s, at);
            return;
        }
}

static void on_matched(kaos_client *c, const kaos_matchmaker_matched *m, void *ud)
{
    (void)c;
    player *p = ud;
    int64_t now = lg_now_ns();
    for (int i = 0; i < PER_CLIENT; i++)
        if (p->slots[i].busy && !strcmp(p->slots[i].ticket, m->ticket)) {
            finish(&p->slots[i], now);
            return;
        }
    if (p->n_early < PER_CLIENT) {
        snprintf(p->early[p->n_early].ticket, sizeof p->early[0].ticket, "%s", m->ticket);
        p->early[p->n_early++].at_ns = now;
    }
}

static void add_ticket(player *p, bool in_window)
{
    slot *s = NULL;
    for (int i = 0; !s && i < PER_CLIENT; i++)
        if (!p->slots[i].busy) s = &p->slots[i];
    static const char *regions[REGIONS] = {"eu", "us", "asia", "sa"};
    const char *region = regions[next_rand() % REGIONS];
    double skill = (double)(next_rand() % 3001);
    char query[160];
    snprintf(query, sizeof query, "+region:%s +skill:>=%.0f +skill:<=%.0f", region, skill - 200,
             skill + 200);
    const char *names[] = {"region"}, *values[] = {region}, *nnames[] = {"skill"};
    kaos_matchmaker_widen w = {"skill", 100, 600};
    kaos_matchmaker_request req = {.min_count = 2,
                                   .max_count = 2,
                                   .query = query,
                                   .properties = {names, values, 1, nnames, &skill, 1},
                                   .widen = &w,
                                   .n_widen = 1};
    *s = (slot){.busy = true, .in_window = in_window, .sent_ns = lg_now_ns(), .owner = p};
    p->busy++;
    ph.waiting++;
    if (kaos_client_matchmaker_add(p->k->c, &req, on_ticket, s) <= 0) {
        ph.errors += in_window;
        s->in_window = false;
        finish(s, 0);
        return;
    }
    ph.sent += in_window;
}

/* GET /metrics: the value of each of n names (0 when absent). */
static void metrics(const char *const *names, double *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = 0;
    if (!opt.http_port) return;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(opt.http_port)};
    inet_pton(AF_INET, opt.host, &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) lg_die("/metrics: connect");
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n";
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) lg_die("/metrics: write");
    static char buf[65536];
    size_t len = 0;
    for (ssize_t r; len + 1 < sizeof buf && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0;)
        len += (size_t)r;
    buf[len] = '\0';
    close(fd);
    for (int i = 0; i < n; i++) {
        char key[96];
        snprintf(key, sizeof key, "\n%s ", names[i]);
        const char *at = strstr(buf, key);
        if (at) out[i] = strtod(at + strlen(key), NULL);
    }
}

static void each(lg_sdk_client *k, void *ud)
{
    player *p = &((player *)ud)[k->index];
    p->k = k;
    k->ud = p;
    kaos_client_on_matchmaker_matched(k->c, on_matched, p);
}

/* Removes every ticket still waiting (answered ones) and waits for the rest. */
static void clear_pool(lg_sdk_pool *pool, player *ps)
{
    for (int i = 0; i < opt.clients; i++)
        for (int j = 0; j < PER_CLIENT; j++) {
            slot *s = &ps[i].slots[j];
            if (!s->busy) continue;
            ph.unmatched += s->in_window;
            s->in_window = false;
            if (*s->ticket) {
                kaos_client_matchmaker_remove(ps[i].k->c, s->ticket, NULL, NULL);
                finish(s, 0);
            }
        }
    int64_t deadline = lg_now_ns() + 5000000000LL;
    while (ph.waiting && lg_now_ns() < deadline)
        lg_sdk_pool_pump(pool, 5);
    lg_sdk_pool_pump(pool, 200);
}

static void run_phase(lg_sdk_pool *pool, player *ps, double rate)
{
    memset(&ph, 0, sizeof ph);
    int64_t step = (int64_t)(1e9 / rate), start = lg_now_ns();
    ph.win_start = start + (int64_t)(opt.warmup * 1e9);
    ph.win_end = ph.win_start + (int64_t)(opt.seconds * 1e9);
    static const char *const names[] = {"kaos_matchmaker_passes_total",
                                        "kaos_matchmaker_pass_us_total",
                                        "kaos_matchmaker_matched_total"};
    double m0[3] = {0}, m1[3], srv0 = 0, lg0 = 0;
    bool sampled = false;
    int next_client = 0;
    for (int64_t due = start; due < ph.win_end;) {
        int64_t now = lg_now_ns();
        if (!sampled && now >= ph.win_start) {
            metrics(names, m0, 3);
            srv0 = opt.server_pid ? lg_proc_cpu_s(opt.server_pid) : -1;
            lg0 = (double)lg_cpu_ns() / 1e9;
            sampled = true;
        }
        for (; due <= now && due < ph.win_end; due += step) {
            player *p = NULL;
            for (int k = 0; !p && k < opt.clients; k++) {
                player *q = &ps[(next_client + k) % opt.clients];
                if (q->busy < PER_CLIENT && !q->k->dead) p = q;
            }
            if (!p) {
                ph.skipped += due >= ph.win_start;
                continue;
            }
            next_client = (int)(p - ps + 1) % opt.clients;
            add_ticket(p, due >= ph.win_start);
        }
        int64_t wait_ms = (due - lg_now_ns()) / 1000000;
        lg_sdk_pool_pump(pool, wait_ms < 0 ? 0 : wait_ms > 5 ? 5 : (int)wait_ms);
    }
    metrics(names, m1, 3);
    double srv1 = opt.server_pid ? lg_proc_cpu_s(opt.server_pid) : -1;
    double lg1 = (double)lg_cpu_ns() / 1e9;
    /* Drain: window tickets still waiting get --drain seconds. */
    int64_t deadline = lg_now_ns() + (int64_t)(opt.drain * 1e9);
    for (;;) {
        bool pending = false;
        for (int i = 0; !pending && i < opt.clients; i++)
            for (int j = 0; !pending && j < PER_CLIENT; j++)
                pending = ps[i].slots[j].busy && ps[i].slots[j].in_window;
        if (!pending || lg_now_ns() > deadline) break;
        lg_sdk_pool_pump(pool, 5);
    }
    clear_pool(pool, ps);
    uint64_t total = 0;
    for (size_t i = 0; i < LG_LAT_BUCKETS; i++)
        total += ph.lat[i];
    double passes = m1[0] - m0[0];
    printf("result phase=%.0f status=ok sent=%llu matched=%llu groups=%.0f unmatched=%llu "
           "errors=%llu lat_p50_us=%llu lat_p90_us=%llu lat_p99_us=%llu lat_max_us=%llu "
           "passes=%.0f pass_mean_us=%.0f srv_cpu_s=%.3f lg_cpu_s=%.3f window_s=%.3f "
           "skipped=%llu dead=%d\n",
           rate, (unsigned long long)ph.sent, (unsigned long long)ph.matched, m1[2] - m0[2],
           (unsigned long long)ph.unmatched, (unsigned long long)ph.errors,
           (unsigned long long)lg_hist_quantile(ph.lat, total, 0.5),
           (unsigned long long)lg_hist_quantile(ph.lat, total, 0.9),
           (unsigned long long)lg_hist_quantile(ph.lat, total, 0.99),
           (unsigned long long)ph.lat_max_us, passes, passes > 0 ? (m1[1] - m0[1]) / passes : 0,
           srv0 >= 0 ? srv1 - srv0 : -1, lg1 - lg0, opt.seconds, (unsigned long long)ph.skipped,
           lg_sdk_pool_dead(pool));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"host", 1, 0, 'h'},
                                       {"port", 1, 0, 'p'},
                                       {"server-key", 1, 0, 'k'},
                                       {"http-port", 1, 0, 'H'},
                                       {"clients", 1, 0, 'c'},
                                       {"phases", 1, 0, 'P'},
                                       {"warmup", 1, 0, 'w'},
                                       {"seconds", 1, 0, 's'},
                                       {"drain", 1, 0, 'd'},
                                       {"server-pid", 1, 0, 'S'},
                                       {0, 0, 0, 0}};
    for (int o; (o = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
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
        case 'H':
            opt.http_port = (uint16_t)atoi(optarg);
            break;
        case 'c':
            opt.clients = atoi(optarg);
            break;
        case 'P':
            snprintf(opt.phases, sizeof opt.phases, "%s", optarg);
            break;
        case 'w':
            opt.warmup = atof(optarg);
            break;
        case 's':
            opt.seconds = atof(optarg);
            break;
        case 'd':
            opt.drain = atof(optarg);
            break;
        case 'S':
            opt.server_pid = atoi(optarg);
            break;
        default:
            lg_die("unknown option");
        }
    }
    if (!opt.port || opt.clients < 2 || opt.seconds <= 0)
        lg_die("--port and --clients >= 2 needed");
    player *ps = calloc((size_t)opt.clients, sizeof *ps);
    if (!ps) lg_die("out of memory");
    lg_sdk_pool pool;
    fprintf(stderr, "bench_matchmaker_stream: logging in %d clients\n", opt.clients);
    lg_sdk_pool_open(&pool, opt.clients, opt.host, opt.port, opt.key, each, ps);
    char phases[256];
    snprintf(phases, sizeof phases, "%s", opt.phases);
    for (char *save = NULL, *t = strtok_r(phases, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        double rate = atof(t);
        if (rate <= 0) lg_die("a phase is a rate above 0");
        fprintf(stderr, "bench_matchmaker_stream: %.0f tickets/s, %.0f s warm-up, %.0f s window\n",
                rate, opt.warmup, opt.seconds);
        run_phase(&pool, ps, rate);
    }
    lg_sdk_pool_close(&pool);
    free(ps);
    return 0;
}
