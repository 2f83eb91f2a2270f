/* bench_chat_loadgen: one chat room through a KaosNet server over ENet,
 * written against the public SDK header only (kaos.h).
 *
 * One process, one thread. `--clients` SDK clients connect, log in with
 * fresh device ids and join one room (stored messages with `--persist 1`,
 * else live only). Then every client sends `--rate` messages a second,
 * spread evenly over the clients so the room sees a steady stream; a
 * message's content carries its send time ({"t": <ns>, "c": <client>,
 * "pad": ...}, about `--bytes` bytes). Every client gets every message of
 * the room (the sender included): those are the deliveries. After
 * `--warmup` seconds a `--seconds` window counts sends, their acks and
 * errors, deliveries, and the send -> receive latency of each delivery (the
 * same clock: one process). CPU time (utime + stime from /proc) of the
 * server (`--server-pid`), of PostgreSQL (`--pg-pid`: postmaster and
 * backends) and of this process is sampled at the window's edges. One line:
 *   result persist=0|1 clients=N rate=R sends=N acks=N errors=N deliveries=N
 *          deliveries_per_s=X expected_per_s=X lat_p50_us=.. lat_p99_us=..
 *          srv_cpu_s=.. pg_cpu_s=.. lg_cpu_s=.. srv_us_per_delivery=.. window_s=..
 *
 * The load generator receives every delivery too, so past a few hundred
 * thousand deliveries a second it, not the server, is what is measured:
 * lg_cpu_s says so. Sockets are polled when readable (epoll), as in
 * bench/storage/loadgen.c. */
#include "../lg/lg_util.h"

#include <kaos.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

typedef struct client {
    kaos_client *c;
    int fd, index;
    bool authed, joined, dead;
    char channel[96];
    int64_t next_send_ns;
} client;

static struct {
    const char *host, *key, *room;
    uint16_t port;
    int clients, bytes;
    double rate, warmup, seconds;
    bool persist;
    int server_pid, pg_pid;
} opt = {"127.0.0.1", NULL, "bench", 0, 100, 64, 1, 2, 10, false, 0, 0};

static struct {
    bool sending;
    int64_t win_start, win_end;
    uint64_t sends, acks, errors, deliveries, late_parse;
    uint32_t hist[LG_LAT_BUCKETS];
    char *pad;
    client *cl;
} st;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_chat_loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static bool in_window(int64_t t)
{
    return t >= st.win_start && t < st.win_end;
}

/* --- callbacks ------------------------------------------------------------------------ */

static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud);
static void on_channel(kaos_client *c, const kaos_result *r, const kaos_channel *ch, void *ud);

static void on_connected(kaos_client *c, void *ud)
{
    char dev[48];
    uint64_t r[2];
    if (getrandom(r, sizeof r, 0) != sizeof r) die("getrandom");
    snprintf(dev, sizeof dev, "chat-%016llx%016llx", (unsigned long long)r[0],
             (unsigned long long)r[1]);
    if (kaos_client_auth_device(c, dev, NULL, true, NULL, on_session, ud) <= 0) die("authenticate");
}

static void on_disconnected(kaos_client *c, uint32_t reason, void *ud)
{
    client *k = ud;
    if (!k->dead)
        fprintf(stderr, "client %d disconnected: %s\n", k->index,
                kaos_disconnect_reason_text(reason));
    k->dead = true;
}

static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud)
{
    client *k = ud;
    if (r->code == KAOS_ERR_CLOSED) return;
    if (r->code < 0) die("client %d: login failed: %d %s", k->index, -r->code, r->message);
    k->authed = true;
}

static void on_channel(kaos_client *c, const kaos_result *r, const kaos_channel *ch, void *ud)
{
    client *k = ud;
    if (r->code == KAOS_ERR_CLOSED) return;
    if (r->code < 0) die("client %d: join refused: %d %s", k->index, -r->code, r->message);
    snprintf(k->channel, sizeof k->channel, "%s", ch->id);
    k->joined = true;
}

static void on_ack(kaos_client *c, const kaos_result *r, const kaos_channel_message *m, void *ud)
{
    client *k = ud;
    int64_t t = lg_now_ns();
    if (r->code == KAOS_OK) {
        if (in_window(t)) st.acks++;
        return;
    }
    if (r->code == KAOS_ERR_CLOSED) return;
    static int shown;
    if (shown++ < 5)
        fprintf(stderr, "client %d: send refused: %d %s\n", k->index, -r->code, r->message);
    if (in_window(t)) st.errors++;
}

/* The send time the content carries: "t": <ns>, with or without the space
 * that the server's stored form (jsonb) puts after the colon. */
static bool sent_at(const char *content, int64_t *t)
{
    const char *p = strstr(content, "\"t\":");
    if (!p) return false;
    char *end;
    long long v = strtoll(p + 4, &end, 10);
    if (end == p + 4) return false;
    *t = v;
    return true;
}

static void on_message(kaos_client *c, const kaos_channel_message *m, void *ud)
{
    (void)c, (void)ud;
    int64_t now = lg_now_ns(), t;
    if (!in_window(now)) return;
    if (m->code != 0 || !sent_at(m->content, &t)) {
        st.late_parse++;
        return;
    }
    st.deliveries++;
    st.hist[lg_lat_bucket((uint64_t)(now - t) / 1000)]++;
}

static void on_error(kaos_client *c, const kaos_result *r, void *ud)
{
    client *k = ud;
    fprintf(stderr, "client %d: error %d %s\n", k->index, -r->code, r->message);
}

/* --- the loop --------------------------------------------------------------------------- */

/* Polls readable clients for up to ms, and every client every 10 ms. */
static void pump(int ep, int ms)
{
    static int64_t last_sweep;
    struct epoll_event ev[64];
    int n = epoll_wait(ep, ev, 64, ms);
    for (int i = 0; i < n; i++)
        kaos_client_poll(st.cl[ev[i].data.u32].c, 0);
    int64_t t = lg_now_ns();
    if (t - last_sweep > 10000000) {
        last_sweep = t;
        for (int i = 0; i < opt.clients; i++)
            kaos_client_poll(st.cl[i].c, 0);
    }
}

/* Sends what is due; the time until the next send, in ms (at most 1). */
static int send_due(void)
{
    int64_t now = lg_now_ns(), period = (int64_t)(1e9 / opt.rate);
    char content[4200];
    for (int i = 0; i < opt.clients; i++) {
        client *k = &st.cl[i];
        if (k->dead || !k->joined || now < k->next_send_ns) continue;
        k->next_send_ns += period;
        if (k->next_send_ns < now) k->next_send_ns = now + period; /* fell behind: no burst */
        snprintf(content, sizeof content, "{\"t\":%lld,\"c\":%d,\"pad\":\"%s\"}",
                 (long long)lg_now_ns(), i, st.pad);
        if (kaos_client_channel_message_send(k->c, k->channel, content, on_ack, k) <= 0) {
            st.errors++;
            continue;
        }
        if (in_window(now)) st.sends++;
        kaos_client_poll(k->c, 0); /* flush */
    }
    return 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_chat_loadgen --port P [--host H] [--server-key HEX] [--clients N]\n"
            "         [--rate MSGS_PER_S] [--persist 0|1] [--bytes B] [--room NAME]\n"
            "         [--warmup S] [--seconds S] [--server-pid PID] [--pg-pid PID]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"host", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},
        {"server-key", required_argument, 0, 'k'},
        {"clients", required_argument, 0, 'c'},
        {"rate", required_argument, 0, 'r'},
        {"persist", required_argument, 0, 'P'},
        {"bytes", required_argument, 0, 'b'},
        {"room", required_argument, 0, 'R'},
        {"warmup", required_argument, 0, 'w'},
        {"seconds", required_argument, 0, 's'},
        {"server-pid", required_argument, 0, 'S'},
        {"pg-pid", required_argument, 0, 'G'},
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
        case 'r':
            opt.rate = atof(optarg);
            break;
        case 'P':
            opt.persist = atoi(optarg) != 0;
            break;
        case 'b':
            opt.bytes = atoi(optarg);
            break;
        case 'R':
            opt.room = optarg;
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
        default:
            usage();
        }
    }
    if (!opt.port || opt.clients < 1 || opt.clients > 4000 || !(opt.rate > 0 && opt.rate <= 10) ||
        opt.bytes < 48 || opt.bytes > 4000 || opt.seconds <= 0)
        usage();
    size_t pad = (size_t)opt.bytes - 40;
    st.pad = malloc(pad + 1);
    st.cl = calloc((size_t)opt.clients, sizeof *st.cl);
    if (!st.pad || !st.cl) die("out of memory");
    memset(st.pad, 'x', pad);
    st.pad[pad] = '\0';

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
        cfg.keepalive_ms = 5000;        /* setup is long: the server drops silent clients */
        cfg.connect_timeout_ms = 60000; /* a thousand handshakes queue up */
        k->fd = lg_lowest_free_fd();
        if (kaos_client_create(&cfg, &k->c) < 0) die("kaos_client_create");
        kaos_client_on_connected(k->c, on_connected, k);
        kaos_client_on_disconnected(k->c, on_disconnected, k);
        kaos_client_on_error(k->c, on_error, k);
        kaos_client_on_channel_message(k->c, on_message, k);
        if (k->fd < 0 || !lg_is_dgram_socket(k->fd)) die("cannot find the socket of client %d", i);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &ev)) die("epoll_ctl: %s", strerror(errno));
        if (kaos_client_connect(k->c) < 0) die("connect");
        /* 100 at a time: a thousand handshakes at once outrun both sides */
        if (i % 100 == 99 || i + 1 == opt.clients) {
            int64_t give_up = lg_now_ns() + 60000000000LL;
            for (bool all = false; !all;) {
                all = true;
                for (int j = 0; j <= i; j++) {
                    if (st.cl[j].dead) die("client %d could not connect", j);
                    all = all && st.cl[j].authed;
                }
                if (lg_now_ns() > give_up) die("clients %d-%d did not log in", i - 99, i);
                pump(ep, 5);
            }
        }
    }
    /* Everyone logs in, then joins the room 50 at a time: each join tells
     * everyone already there, so the room's N^2/2 presence events are
     * spread out instead of landing with the handshakes. */
    int64_t deadline = lg_now_ns() + 180000000000LL;
    for (int asked = 0;;) {
        int authed = 0, joined = 0, dead = 0;
        for (int i = 0; i < opt.clients; i++) {
            authed += st.cl[i].authed;
            joined += st.cl[i].joined;
            dead += st.cl[i].dead;
        }
        if (dead) die("%d clients could not connect", dead);
        if (joined == opt.clients) break;
        if (lg_now_ns() > deadline)
            die("setup timed out (%d logged in, %d of %d in the room)", authed, joined,
                opt.clients);
        if (authed == opt.clients && joined == asked)
            for (int end = asked + 50; asked < end && asked < opt.clients; asked++)
                if (kaos_client_channel_join(st.cl[asked].c, opt.room, KAOS_CHANNEL_ROOM,
                                             opt.persist, false, on_channel, &st.cl[asked]) <= 0)
                    die("join");
        pump(ep, 5);
    }
    fprintf(stderr, "bench_chat_loadgen: %d clients in room %s\n", opt.clients, opt.room);

    int64_t start = lg_now_ns(), period = (int64_t)(1e9 / opt.rate);
    for (int i = 0; i < opt.clients; i++) /* spread the senders over one period */
        st.cl[i].next_send_ns = start + period * i / opt.clients;
    st.win_start = start + (int64_t)(opt.warmup * 1e9);
    st.win_end = st.win_start + (int64_t)(opt.seconds * 1e9);
    while (lg_now_ns() < st.win_start)
        pump(ep, send_due());
    double srv0 = opt.server_pid > 0 ? lg_proc_cpu_s(opt.server_pid) : -1;
    double pg0 = lg_pg_cpu_s(opt.pg_pid), lg0 = lg_proc_cpu_s(getpid());
    int64_t w0 = lg_now_ns();
    while (lg_now_ns() < st.win_end)
        pump(ep, send_due());
    double srv1 = opt.server_pid > 0 ? lg_proc_cpu_s(opt.server_pid) : -1;
    double pg1 = lg_pg_cpu_s(opt.pg_pid), lg1 = lg_proc_cpu_s(getpid());
    double window = (double)(lg_now_ns() - w0) / 1e9;
    /* late deliveries of the window's sends are not counted: a saturated
     * server shows as fewer deliveries than expected */
    int64_t drain = lg_now_ns() + 1000000000LL;
    while (lg_now_ns() < drain)
        pump(ep, 1);
    int dead = 0;
    for (int i = 0; i < opt.clients; i++)
        dead += st.cl[i].dead;
    double srv = srv0 < 0 ? -1 : srv1 - srv0;
    printf("result persist=%d status=%s clients=%d rate=%g sends=%llu acks=%llu errors=%llu "
           "deliveries=%llu deliveries_per_s=%.0f expected_per_s=%.0f lat_p50_us=%llu "
           "lat_p99_us=%llu srv_cpu_s=%.2f pg_cpu_s=%.2f lg_cpu_s=%.2f srv_us_per_delivery=%.2f "
           "window_s=%.2f\n",
           opt.persist, dead ? "degraded" : "ok", opt.clients, opt.rate,
           (unsigned long long)st.sends, (unsigned long long)st.acks, (unsigned long long)st.errors,
           (unsigned long long)st.deliveries, (double)st.deliveries / window,
           opt.rate * opt.clients * opt.clients,
           (unsigned long long)lg_hist_quantile(st.hist, st.deliveries, 0.5),
           (unsigned long long)lg_hist_quantile(st.hist, st.deliveries, 0.99), srv,
           pg0 < 0 ? -1 : pg1 - pg0, lg1 - lg0,
           srv >= 0 && st.deliveries ? srv * 1e6 / (double)st.deliveries : -1, window);
    for (int i = 0; i < opt.clients; i++)
        kaos_client_destroy(st.cl[i].c);
    free(st.pad);
    free(st.cl);
    close(ep);
    return 0;
}
