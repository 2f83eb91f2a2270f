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
 * lg_cpu_s says so. The clients are bench/lg's (lg_sdk: epoll-polled SDK
 * clients logging in 100 at a time). */
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

/* What a member keeps besides its pool client (lg_sdk_client.ud). */
typedef struct member {
    lg_sdk_client *k;
    bool joined;
    char channel[96];
    int64_t next_send_ns;
} member;

static struct {
    const char *host, *key, *room;
    uint16_t port;
    int clients, bytes;
    double rate, warmup, seconds;
    bool persist;
    int server_pid, pg_pid;
} opt = {"127.0.0.1", NULL, "bench", 0, 100, 64, 1, 2, 10, false, 0, 0};

static struct {
    int64_t win_start, win_end;
    uint64_t sends, acks, errors, deliveries, late_parse;
    uint32_t hist[LG_LAT_BUCKETS];
    char *pad;
    lg_sdk_pool pool;
    member *m;
} st;

static bool in_window(int64_t t)
{
    return t >= st.win_start && t < st.win_end;
}

/* --- callbacks ------------------------------------------------------------------------ */

static void on_channel(kaos_client *c, const kaos_result *r, const kaos_channel *ch, void *ud)
{
    member *m = ud;
    if (r->code == KAOS_ERR_CLOSED) return;
    if (r->code < 0) lg_die("client %d: join refused: %d %s", m->k->index, -r->code, r->message);
    snprintf(m->channel, sizeof m->channel, "%s", ch->id);
    m->joined = true;
}

static void on_ack(kaos_client *c, const kaos_result *r, const kaos_channel_message *m, void *ud)
{
    member *mb = ud;
    int64_t t = lg_now_ns();
    if (r->code == KAOS_OK) {
        if (in_window(t)) st.acks++;
        return;
    }
    if (r->code == KAOS_ERR_CLOSED) return;
    static int shown;
    if (shown++ < 5)
        fprintf(stderr, "client %d: send refused: %d %s\n", mb->k->index, -r->code, r->message);
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

/* Sends what is due; the time until the next send, in ms (at most 1). */
static int send_due(void)
{
    int64_t now = lg_now_ns(), period = (int64_t)(1e9 / opt.rate);
    char content[4200];
    for (int i = 0; i < opt.clients; i++) {
        member *m = &st.m[i];
        if (m->k->dead || !m->joined || now < m->next_send_ns) continue;
        m->next_send_ns += period;
        if (m->next_send_ns < now) m->next_send_ns = now + period; /* fell behind: no burst */
        snprintf(content, sizeof content, "{\"t\":%lld,\"c\":%d,\"pad\":\"%s\"}",
                 (long long)lg_now_ns(), i, st.pad);
        if (kaos_client_channel_message_send(m->k->c, m->channel, content, on_ack, m) <= 0) {
            st.errors++;
            continue;
        }
        if (in_window(now)) st.sends++;
        kaos_client_poll(m->k->c, 0); /* flush */
    }
    return 1;
}

/* Before each client connects: its member and the room's messages. */
static void each(lg_sdk_client *k, void *ud)
{
    (void)ud;
    member *m = &st.m[k->index];
    m->k = k;
    k->ud = m;
    kaos_client_on_channel_message(k->c, on_message, m);
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
    st.m = calloc((size_t)opt.clients, sizeof *st.m);
    if (!st.pad || !st.m) lg_die("out of memory");
    memset(st.pad, 'x', pad);
    st.pad[pad] = '\0';
    lg_sdk_pool_open(&st.pool, opt.clients, opt.host, opt.port, opt.key, each, NULL);

    /* Everyone is logged in; they join the room 50 at a time: each join
     * tells everyone already there, so the room's N^2/2 presence events are
     * spread out. */
    int64_t deadline = lg_now_ns() + 180000000000LL;
    for (int asked = 0;;) {
        int joined = 0;
        for (int i = 0; i < opt.clients; i++)
            joined += st.m[i].joined;
        if (lg_sdk_pool_dead(&st.pool)) lg_die("clients were disconnected while joining");
        if (joined == opt.clients) break;
        if (lg_now_ns() > deadline)
            lg_die("setup timed out (%d of %d in the room)", joined, opt.clients);
        if (joined == asked)
            for (int end = asked + 50; asked < end && asked < opt.clients; asked++)
                if (kaos_client_channel_join(st.m[asked].k->c, opt.room, KAOS_CHANNEL_ROOM,
                                             opt.persist, false, on_channel, &st.m[asked]) <= 0)
                    lg_die("join");
        lg_sdk_pool_pump(&st.pool, 5);
    }
    fprintf(stderr, "bench_chat_loadgen: %d clients in room %s\n", opt.clients, opt.room);

    int64_t start = lg_now_ns(), period = (int64_t)(1e9 / opt.rate);
    for (int i = 0; i < opt.clients; i++) /* spread the senders over one period */
        st.m[i].next_send_ns = start + period * i / opt.clients;
    st.win_start = start + (int64_t)(opt.warmup * 1e9);
    st.win_end = st.win_start + (int64_t)(opt.seconds * 1e9);
    while (lg_now_ns() < st.win_start)
        lg_sdk_pool_pump(&st.pool, send_due());
    double srv0 = opt.server_pid > 0 ? lg_proc_cpu_s(opt.server_pid) : -1;
    double pg0 = opt.pg_pid > 0 ? lg_proc_tree_cpu_s(opt.pg_pid) : -1;
    double lg0 = lg_proc_cpu_s(getpid());
    int64_t w0 = lg_now_ns();
    while (lg_now_ns() < st.win_end)
        lg_sdk_pool_pump(&st.pool, send_due());
    double srv1 = opt.server_pid > 0 ? lg_proc_cpu_s(opt.server_pid) : -1;
    double pg1 = opt.pg_pid > 0 ? lg_proc_tree_cpu_s(opt.pg_pid) : -1;
    double lg1 = lg_proc_cpu_s(getpid());
    double window = (double)(lg_now_ns() - w0) / 1e9;
    /* late deliveries of the window's sends are not counted: a saturated
     * server shows as fewer deliveries than expected */
    int64_t drain = lg_now_ns() + 1000000000LL;
    while (lg_now_ns() < drain)
        lg_sdk_pool_pump(&st.pool, 1);
    int dead = lg_sdk_pool_dead(&st.pool);
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
    lg_sdk_pool_close(&st.pool);
    free(st.pad);
    free(st.m);
    return 0;
}
