/* bench_soak_driver: the client side of the soak (bench/soak/run.sh), written
 * against the public SDK header (kaos.h) and the impairment proxy of the
 * end-to-end tests (tests/e2e/lossy_proxy.h).
 *
 *   bench_soak_driver --port P --server-key HEX --seconds S [options]
 *
 * One process, one thread for the clients (plus one thread per proxy).
 * --clients SDK clients (default 500) log in with fresh device ids and play
 * in rooms of --room (default 10), one authoritative match "soak_match" per
 * room (bench/soak/lua/soak.lua). The first --impaired clients of every room
 * (default 2, so 20 % of the clients) talk to the server through a
 * lossy_proxy: --loss (0.25) each way, --delay ± --jitter ms (100 ± 50);
 * at most PROXY_FLOWS clients share one proxy. While the run lasts each client:
 *   - sends an unreliable input (op 1) at 30 Hz on an absolute grid, and
 *     receives a snapshot (op 2) per tick: missing ticks are counted, apart
 *     for clean and impaired clients; for clean ones also the longest gap
 *     between two snapshots;
 *   - sends a reliable event (op 3, numbered 1, 2, ...) every --event-ms
 *     (500); the match echoes each to the whole room (op 4). Every client
 *     checks, per member of its room, that the numbers arrive exactly once
 *     and in order (a repeat is a duplicate, a jump a loss or a reorder) and
 *     at the end that it got the last one each member sent;
 *   - calls the RPC soak_echo every --rpc-ms (5000), one in flight, and
 *     checks the answer is its payload;
 *   - writes a new storage object every --storage-ms (5000), one in flight:
 *     collection "soak", key w<n>; each acknowledgement (user, key, version)
 *     is appended to --acks FILE, for run.sh to find in Postgres afterwards.
 * A client that is disconnected stops (it does not reconnect): its requests
 * in flight end KAOS_ERR_CLOSED, and events it sent or should have received
 * that did not arrive are counted apart, as lost with the connection; the
 * same for the members of a match the server ended.
 * After --seconds it stops sending and drains up to DRAIN_NS for the echoes
 * and answers still on their way. Every second it rewrites --stats FILE (one
 * `k=v ...` line of running totals, via a rename) for run.sh's sampler; at the
 * end it prints one `result k=v ...` line on stdout. It asserts nothing:
 * run.sh judges. A failure to set up (a login, a match) exits 1. */
#include "../../tests/e2e/lossy_proxy.h"
#include "../lg/lg.h"
#include "../lg/lg_sdk.h"
#include "../lg/lg_util.h"

#include <kaos.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HZ            30
#define PROXY_FLOWS   25 /* clients per proxy (the proxy takes 32) */
#define MAX_PROXIES   64
#define SETUP_NS      120000000000LL
#define SETUP_RETRIES 5 /* connects tried again per client before giving up */
#define DRAIN_NS      20000000000LL
#define STATS_NS      1000000000LL
#define OP_INPUT      1
#define OP_SNAPSHOT   2
#define OP_EVENT      3
#define OP_ECHO       4

typedef struct options {
    const char *host, *server_key, *stats_path, *acks_path;
    uint16_t port;
    int clients, room, impaired, delay_ms, jitter_ms;
    double loss, seconds;
    int event_ms, rpc_ms, storage_ms;
} options;

typedef struct sclient {
    lg_sdk_client *s;
    int idx, room, pos;
    bool impaired;
    uint32_t handle;
    bool in_match;
    bool match_ended; /* the server ended its match: it stops, like a disconnected one */
    int connect_retries;
    int64_t next_input, next_event, next_rpc, next_storage;
    uint32_t input_seq, events_sent;
    uint32_t *seen; /* per room position: the last event number received from it */
    bool snap_any;
    uint64_t snap_tick;
    int64_t snap_ns;
    bool rpc_busy, st_busy;
    uint32_t rpc_n, st_n;
    int64_t rpc_t0, st_t0;
} sclient;

typedef struct totals {
    uint64_t inputs, send_errors, snaps_clean, snaps_impaired, snap_missing_clean,
        snap_missing_impaired, snap_gap_max_us, events_sent, echoes, ev_dup, ev_gap, ev_foreign,
        ev_missing, ev_missing_impaired, ev_lost_disc, rpc_sent, rpc_ok, rpc_err, rpc_closed,
        rpc_bad, rpc_skipped, st_sent, st_ok, st_err, st_closed, st_skipped, match_ends, lag_late;
    uint32_t rpc_hist[LG_LAT_BUCKETS], st_hist[LG_LAT_BUCKETS];
} totals;

static options opt;
static sclient *cl;
static lg_sdk_pool pool;
static totals tot;
static char (*match_ids)[64];
static FILE *acks;
static bool measuring;    /* inside the run: snapshot gaps count */
static int64_t run_start; /* when the run began (0 during setup) */
static int setup_retries; /* connects tried again */

/* --- setup ----------------------------------------------------------------- */

static void on_match_data(kaos_client *c, uint32_t match, uint32_t sender, int64_t op,
                          const uint8_t *data, size_t len, bool reliable, void *ud);
static void on_match_end(kaos_client *c, uint32_t match, const char *id, int code,
                         const char *reason, void *ud)
{
    sclient *k = ((lg_sdk_client *)ud)->ud;
    fprintf(stderr, "client %d: match ended: %d %s\n", k->idx, code, reason);
    k->in_match = false;
    k->match_ended = true;
    tot.match_ends++;
}

/* Replaces lg_sdk's handler: the same, with the time into the run. */
static void on_disconnected(kaos_client *c, uint32_t reason, void *ud)
{
    lg_sdk_client *s = ud;
    sclient *k = s->ud;
    /* A connect through the lossy link may fail: try again (setup only). */
    if (!s->authed && !run_start && k->connect_retries++ < SETUP_RETRIES &&
        kaos_client_connect(c) == KAOS_OK) {
        setup_retries++;
        return;
    }
    if (!s->dead)
        fprintf(stderr, "client %d (%s) disconnected after %.1f s: %s\n", k->idx,
                k->impaired ? "impaired" : "clean",
                run_start ? (double)(lg_now_ns() - run_start) / 1e9 : 0.0,
                kaos_disconnect_reason_text(reason));
    s->dead = true;
}

static void each_client(lg_sdk_client *s, void *ud)
{
    sclient *k = &cl[s->index];
    k->s = s;
    s->ud = k;
    kaos_client_on_match_data(s->c, on_match_data, s);
    kaos_client_on_match_end(s->c, on_match_end, s);
    kaos_client_on_disconnected(s->c, on_disconnected, s);
}

static void join_room(sclient *k);

static void on_match(kaos_client *c, const kaos_result *r, const kaos_match *m, void *ud)
{
    sclient *k = ud;
    if (r->code < 0)
        lg_die("client %d: match create/join failed: %d %s", k->idx, -r->code, r->message);
    k->handle = m->handle;
    k->in_match = true;
    if (k->pos == opt.room - 1) { /* the creator: the others join now */
        snprintf(match_ids[k->room], sizeof match_ids[k->room], "%s", m->match_id);
        for (int p = 0; p < opt.room - 1; p++)
            join_room(&cl[k->room * opt.room + p]);
    }
}

static void join_room(sclient *k)
{
    int rc = k->pos == opt.room - 1
                 ? kaos_client_match_create_authoritative(k->s->c, "soak_match", NULL, on_match, k)
                 : kaos_client_match_join(k->s->c, match_ids[k->room], NULL, on_match, k);
    if (rc < 0) lg_die("client %d: match request: %s", k->idx, kaos_err_text(rc));
}

/* --- the run ---------------------------------------------------------------- */

static void on_snapshot(sclient *k, const uint8_t *d, size_t len, int64_t now)
{
    if (len < 12) {
        tot.ev_foreign++;
        return;
    }
    uint64_t tick = lg_get_u64(d);
    if (k->impaired)
        tot.snaps_impaired++;
    else
        tot.snaps_clean++;
    if (k->snap_any && measuring && tick > k->snap_tick) {
        uint64_t missing = tick - k->snap_tick - 1;
        if (k->impaired)
            tot.snap_missing_impaired += missing;
        else {
            tot.snap_missing_clean += missing;
            uint64_t gap = (uint64_t)(now - k->snap_ns) / 1000;
            if (gap > tot.snap_gap_max_us) tot.snap_gap_max_us = gap;
        }
    }
    if (!k->snap_any || tick > k->snap_tick) {
        k->snap_tick = tick;
        k->snap_ns = now;
    }
    k->snap_any = true;
}

static void on_echo(sclient *k, const uint8_t *d, size_t len)
{
    if (len % 8) {
        tot.ev_foreign++;
        return;
    }
    for (size_t off = 0; off < len; off += 8) {
        uint32_t idx = lg_get_u32(d + off), n = lg_get_u32(d + off + 4);
        int pos = (int)idx - k->room * opt.room;
        if (pos < 0 || pos >= opt.room) {
            tot.ev_foreign++;
            continue;
        }
        tot.echoes++;
        if (n == k->seen[pos] + 1)
            k->seen[pos] = n;
        else if (n <= k->seen[pos])
            tot.ev_dup++;
        else {
            tot.ev_gap++;
            k->seen[pos] = n;
        }
    }
}

static void on_match_data(kaos_client *c, uint32_t match, uint32_t sender, int64_t op,
                          const uint8_t *data, size_t len, bool reliable, void *ud)
{
    sclient *k = ((lg_sdk_client *)ud)->ud;
    if (op == OP_SNAPSHOT)
        on_snapshot(k, data, len, lg_now_ns());
    else if (op == OP_ECHO && reliable)
        on_echo(k, data, len);
    else
        tot.ev_foreign++;
}

static void on_rpc(kaos_client *c, const kaos_result *r, const char *payload, size_t len, void *ud)
{
    sclient *k = ud;
    k->rpc_busy = false;
    if (r->code == KAOS_ERR_CLOSED) { /* the disconnect is counted */
        tot.rpc_closed++;
        return;
    }
    if (r->code < 0) {
        tot.rpc_err++;
        fprintf(stderr, "client %d: rpc: %d %s\n", k->idx, -r->code, r->message);
        return;
    }
    char want[32];
    snprintf(want, sizeof want, "c%dn%" PRIu32, k->idx, k->rpc_n);
    if (len != strlen(want) || memcmp(payload, want, len))
        tot.rpc_bad++;
    else
        tot.rpc_ok++;
    tot.rpc_hist[lg_lat_bucket((uint64_t)(lg_now_ns() - k->rpc_t0) / 1000)]++;
}

static void on_stored(kaos_client *c, const kaos_result *r, const kaos_storage_ack *a, size_t n,
                      void *ud)
{
    sclient *k = ud;
    k->st_busy = false;
    if (r->code == KAOS_ERR_CLOSED) {
        tot.st_closed++;
        return;
    }
    if (r->code < 0 || n != 1) {
        tot.st_err++;
        fprintf(stderr, "client %d: storage write: %d %s\n", k->idx, -r->code, r->message);
        return;
    }
    tot.st_ok++;
    tot.st_hist[lg_lat_bucket((uint64_t)(lg_now_ns() - k->st_t0) / 1000)]++;
    fprintf(acks, "%s\t%s\t%s\n", a[0].user_id, a[0].key, a[0].version);
}

static void send_input(sclient *k, int64_t now)
{
    uint8_t p[LG_PAYLOAD_LEN];
    lg_put_u64(p, (uint64_t)now);
    lg_put_u32(p + 8, (uint32_t)k->idx);
    lg_put_u32(p + 12, ++k->input_seq);
    if (kaos_client_match_send(k->s->c, k->handle, OP_INPUT, p, sizeof p, false, NULL, 0) < 0)
        tot.send_errors++;
    else
        tot.inputs++;
}

static void send_event(sclient *k)
{
    uint8_t p[8];
    lg_put_u32(p, (uint32_t)k->idx);
    lg_put_u32(p + 4, k->events_sent + 1);
    if (kaos_client_match_send(k->s->c, k->handle, OP_EVENT, p, sizeof p, true, NULL, 0) < 0) {
        tot.send_errors++;
        return;
    }
    k->events_sent++;
    tot.events_sent++;
}

static void send_rpc(sclient *k, int64_t now)
{
    if (k->rpc_busy) {
        tot.rpc_skipped++;
        return;
    }
    char payload[32];
    snprintf(payload, sizeof payload, "c%dn%" PRIu32, k->idx, ++k->rpc_n);
    if (kaos_client_rpc_call(k->s->c, "soak_echo", payload, on_rpc, k) < 0) {
        tot.rpc_err++;
        return;
    }
    k->rpc_busy = true;
    k->rpc_t0 = now;
    tot.rpc_sent++;
}

static void send_storage(sclient *k, int64_t now)
{
    if (k->st_busy) {
        tot.st_skipped++;
        return;
    }
    char key[32], value[64];
    k->st_n++;
    snprintf(key, sizeof key, "w%" PRIu32, k->st_n);
    snprintf(value, sizeof value, "{\"c\":%d,\"n\":%" PRIu32 "}", k->idx, k->st_n);
    kaos_storage_write_object o = {.collection = "soak", .key = key, .value = value};
    if (kaos_client_storage_write(k->s->c, &o, 1, on_stored, k) < 0) {
        tot.st_err++;
        return;
    }
    k->st_busy = true;
    k->st_t0 = now;
    tot.st_sent++;
}

/* Sends what is due for client k; a grid point more than a period behind is
 * skipped (and counted) rather than sent in a burst. */
static void due(sclient *k, int64_t now)
{
    const int64_t period = 1000000000LL / HZ;
    bool sent = now >= k->next_input;
    if (now >= k->next_input) {
        send_input(k, now);
        k->next_input += period;
        while (k->next_input <= now) {
            k->next_input += period;
            tot.lag_late++;
        }
    }
    if (now >= k->next_event) {
        send_event(k);
        k->next_event += (int64_t)opt.event_ms * 1000000;
    }
    if (now >= k->next_rpc) {
        send_rpc(k, now);
        k->next_rpc += (int64_t)opt.rpc_ms * 1000000;
    }
    if (now >= k->next_storage) {
        send_storage(k, now);
        k->next_storage += (int64_t)opt.storage_ms * 1000000;
    }
    /* Poll is the SDK's only way to put queued packets on the wire now. */
    if (sent) kaos_client_poll(k->s->c, 0);
}

static void write_stats(const char *phase, double t)
{
    if (!opt.stats_path) return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", opt.stats_path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f,
            "t=%.1f phase=%s inputs=%" PRIu64 " send_errors=%" PRIu64 " snaps_clean=%" PRIu64
            " snap_missing_clean=%" PRIu64 " snap_missing_impaired=%" PRIu64
            " snap_gap_max_ms=%.1f events=%" PRIu64 " echoes=%" PRIu64 " ev_dup=%" PRIu64
            " ev_gap=%" PRIu64 " rpc_ok=%" PRIu64 " rpc_err=%" PRIu64 " rpc_bad=%" PRIu64
            " st_ok=%" PRIu64 " st_err=%" PRIu64 " disconnects=%d match_ends=%" PRIu64 "\n",
            t, phase, tot.inputs, tot.send_errors, tot.snaps_clean, tot.snap_missing_clean,
            tot.snap_missing_impaired, tot.snap_gap_max_us / 1000.0, tot.events_sent, tot.echoes,
            tot.ev_dup, tot.ev_gap, tot.rpc_ok, tot.rpc_err, tot.rpc_bad, tot.st_ok, tot.st_err,
            lg_sdk_pool_dead(&pool), tot.match_ends);
    fclose(f);
    rename(tmp, opt.stats_path);
}

/* Events some member sent that have not reached some member (the sender
 * too): between two clean clients still connected (*missing), between two
 * clients still connected as they see it, one of them impaired (*impaired:
 * the server may already have given up on that connection, which the client
 * notices only at its own timeout), or where one of the two was disconnected
 * or whose match the server ended (*with_disc: lost with the connection or
 * the match). */
static void events_missing(uint64_t *missing, uint64_t *impaired, uint64_t *with_disc)
{
    *missing = *impaired = *with_disc = 0;
    for (int i = 0; i < opt.clients; i++)
        for (int p = 0; p < opt.room; p++) {
            const sclient *from = &cl[cl[i].room * opt.room + p];
            if (from->events_sent <= cl[i].seen[p]) continue;
            uint64_t n = from->events_sent - cl[i].seen[p];
            if (cl[i].s->dead || from->s->dead || cl[i].match_ended || from->match_ended)
                *with_disc += n;
            else if (cl[i].impaired || from->impaired)
                *impaired += n;
            else
                *missing += n;
        }
}

static bool busy(void)
{
    for (int i = 0; i < opt.clients; i++)
        if (!cl[i].s->dead && (cl[i].rpc_busy || cl[i].st_busy)) return true;
    return false;
}

/* --- main -------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_soak_driver --port P --server-key HEX --seconds S [--clients N]\n"
            "  [--room N] [--impaired N] [--loss F] [--delay MS] [--jitter MS]\n"
            "  [--event-ms MS] [--rpc-ms MS] [--storage-ms MS] [--stats FILE] [--acks FILE]\n");
}

static void parse(int argc, char **argv)
{
    opt = (options){.host = "127.0.0.1",
                    .clients = 500,
                    .room = 10,
                    .impaired = 2,
                    .loss = 0.25,
                    .delay_ms = 100,
                    .jitter_ms = 50,
                    .seconds = 60,
                    .event_ms = 500,
                    .rpc_ms = 5000,
                    .storage_ms = 5000};
    static const struct option longs[] = {{"port", 1, 0, 'p'},    {"server-key", 1, 0, 'k'},
                                          {"seconds", 1, 0, 's'}, {"clients", 1, 0, 'c'},
                                          {"room", 1, 0, 'r'},    {"impaired", 1, 0, 'i'},
                                          {"loss", 1, 0, 'l'},    {"delay", 1, 0, 'd'},
                                          {"jitter", 1, 0, 'j'},  {"event-ms", 1, 0, 'e'},
                                          {"rpc-ms", 1, 0, 'R'},  {"storage-ms", 1, 0, 'S'},
                                          {"stats", 1, 0, 'T'},   {"acks", 1, 0, 'A'},
                                          {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'p':
            opt.port = (uint16_t)atoi(optarg);
            break;
        case 'k':
            opt.server_key = optarg;
            break;
        case 's':
            opt.seconds = atof(optarg);
            break;
        case 'c':
            opt.clients = atoi(optarg);
            break;
        case 'r':
            opt.room = atoi(optarg);
            break;
        case 'i':
            opt.impaired = atoi(optarg);
            break;
        case 'l':
            opt.loss = atof(optarg);
            break;
        case 'd':
            opt.delay_ms = atoi(optarg);
            break;
        case 'j':
            opt.jitter_ms = atoi(optarg);
            break;
        case 'e':
            opt.event_ms = atoi(optarg);
            break;
        case 'R':
            opt.rpc_ms = atoi(optarg);
            break;
        case 'S':
            opt.storage_ms = atoi(optarg);
            break;
        case 'T':
            opt.stats_path = optarg;
            break;
        case 'A':
            opt.acks_path = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (!opt.port || opt.room < 2 || opt.clients < opt.room || opt.clients % opt.room ||
        opt.impaired < 0 || opt.impaired >= opt.room || opt.seconds <= 0 || opt.event_ms <= 0 ||
        opt.rpc_ms <= 0 || opt.storage_ms <= 0 || opt.loss < 0 || opt.loss >= 1) {
        usage(stderr);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    int rooms = opt.clients / opt.room, nimp = rooms * opt.impaired;
    int nprox = (nimp + PROXY_FLOWS - 1) / PROXY_FLOWS;
    if (nprox > MAX_PROXIES) lg_die("too many impaired clients");
    acks = fopen(opt.acks_path ? opt.acks_path : "/dev/null", "w");
    cl = calloc((size_t)opt.clients, sizeof *cl);
    match_ids = calloc((size_t)rooms, sizeof *match_ids);
    uint16_t *ports = calloc((size_t)opt.clients, sizeof *ports);
    if (!acks || !cl || !match_ids || !ports) lg_die("out of memory or cannot open --acks");

    lossy_proxy *prox[MAX_PROXIES];
    uint16_t prox_port[MAX_PROXIES];
    for (int i = 0; i < nprox; i++) {
        prox[i] = lossy_start(opt.port, opt.loss, opt.delay_ms, opt.jitter_ms, &prox_port[i]);
        if (!prox[i]) lg_die("cannot start the lossy proxy");
    }
    for (int i = 0, imp = 0; i < opt.clients; i++) {
        sclient *k = &cl[i];
        k->idx = i;
        k->room = i / opt.room;
        k->pos = i % opt.room;
        k->impaired = k->pos < opt.impaired;
        k->seen = calloc((size_t)opt.room, sizeof *k->seen);
        if (!k->seen) lg_die("out of memory");
        ports[i] = k->impaired ? prox_port[imp++ / PROXY_FLOWS] : opt.port;
    }

    int64_t t0 = lg_now_ns();
    lg_sdk_pool_open_ports(&pool, opt.clients, opt.host, opt.port, ports, opt.server_key,
                           each_client, NULL);
    fprintf(stderr,
            "soak: %d clients logged in (%d through %d proxies) in %.1f s, %d connects retried\n",
            opt.clients, nimp, nprox, (double)(lg_now_ns() - t0) / 1e9, setup_retries);
    for (int r = 0; r < rooms; r++)
        join_room(&cl[r * opt.room + opt.room - 1]);
    int64_t deadline = lg_now_ns() + SETUP_NS;
    for (;;) {
        int in = 0;
        for (int i = 0; i < opt.clients; i++)
            in += cl[i].in_match;
        if (in == opt.clients) break;
        if (lg_sdk_pool_dead(&pool)) lg_die("clients disconnected during setup");
        if (lg_now_ns() > deadline)
            lg_die("setup timed out (%d of %d in a match)", in, opt.clients);
        lg_sdk_pool_pump(&pool, 5);
    }
    double setup_s = (double)(lg_now_ns() - t0) / 1e9;
    fprintf(stderr, "soak: %d matches of %d full after %.1f s; running %.0f s\n", rooms, opt.room,
            setup_s, opt.seconds);

    /* Phases spread evenly over each period, so the load is steady. */
    int64_t start = lg_now_ns() + 100000000, period = 1000000000LL / HZ;
    for (int i = 0; i < opt.clients; i++) {
        sclient *k = &cl[i];
        k->next_input = start + period * i / opt.clients;
        k->next_event = start + (int64_t)opt.event_ms * 1000000 * i / opt.clients;
        k->next_rpc = start + (int64_t)opt.rpc_ms * 1000000 * i / opt.clients;
        k->next_storage = start + (int64_t)opt.storage_ms * 1000000 *
                                      ((i + opt.clients / 2) % opt.clients) / opt.clients;
    }
    int64_t end = start + (int64_t)(opt.seconds * 1e9), next_stats = start;
    run_start = start;
    measuring = true;
    for (int64_t now = lg_now_ns(); now < end; now = lg_now_ns()) {
        for (int i = 0; i < opt.clients; i++)
            if (cl[i].in_match && !cl[i].s->dead) due(&cl[i], now);
        lg_sdk_pool_pump(&pool, 1);
        if (now >= next_stats) {
            write_stats("run", (double)(now - start) / 1e9);
            next_stats += STATS_NS;
        }
    }
    /* Drain: no new sends; echoes, answers and acknowledgements still on their way. */
    measuring = false;
    int64_t drain_end = lg_now_ns() + DRAIN_NS;
    for (;;) {
        events_missing(&tot.ev_missing, &tot.ev_missing_impaired, &tot.ev_lost_disc);
        if (lg_now_ns() >= drain_end || (!tot.ev_missing && !tot.ev_missing_impaired && !busy()))
            break;
        lg_sdk_pool_pump(&pool, 10);
    }
    double drain_s = (double)(lg_now_ns() - end) / 1e9;
    write_stats("done", (double)(lg_now_ns() - start) / 1e9);

    uint64_t fwd = 0, drop = 0;
    for (int i = 0; i < nprox; i++) {
        lossy_stats s;
        lossy_stop(prox[i], &s);
        fwd += s.forwarded;
        drop += s.dropped;
    }
    uint64_t in_flight = 0;
    int disc_clean = 0, disc_impaired = 0;
    for (int i = 0; i < opt.clients; i++) {
        in_flight += !cl[i].s->dead && (cl[i].rpc_busy || cl[i].st_busy);
        if (cl[i].s->dead) {
            if (cl[i].impaired)
                disc_impaired++;
            else
                disc_clean++;
        }
    }
    printf(
        "result status=ok clients=%d impaired=%d rooms=%d seconds=%.0f setup_s=%.1f drain_s=%.1f "
        "inputs=%" PRIu64 " send_errors=%" PRIu64 " lag_skipped=%" PRIu64 " snaps_clean=%" PRIu64
        " snap_missing_clean=%" PRIu64 " snap_gap_max_ms=%.1f"
        " snaps_impaired=%" PRIu64 " snap_missing_impaired=%" PRIu64 " events=%" PRIu64
        " echoes=%" PRIu64 " echoes_expected=%" PRIu64 " ev_missing=%" PRIu64
        " ev_missing_impaired=%" PRIu64 " ev_lost_disc=%" PRIu64 " ev_dup=%" PRIu64
        " ev_gap=%" PRIu64 " foreign=%" PRIu64 " rpc_sent=%" PRIu64 " rpc_ok=%" PRIu64
        " rpc_err=%" PRIu64 " rpc_closed=%" PRIu64 " rpc_bad=%" PRIu64 " rpc_skipped=%" PRIu64
        " rpc_p99_ms=%.1f st_sent=%" PRIu64 " st_ok=%" PRIu64 " st_err=%" PRIu64
        " st_closed=%" PRIu64 " st_skipped=%" PRIu64 " st_p99_ms=%.1f in_flight=%" PRIu64
        " disconnects=%d"
        " disc_clean=%d disc_impaired=%d"
        " match_ends=%" PRIu64 " proxy_fwd=%" PRIu64 " proxy_drop=%" PRIu64 "\n",
        opt.clients, nimp, rooms, opt.seconds, setup_s, drain_s, tot.inputs, tot.send_errors,
        tot.lag_late, tot.snaps_clean, tot.snap_missing_clean, tot.snap_gap_max_us / 1000.0,
        tot.snaps_impaired, tot.snap_missing_impaired, tot.events_sent, tot.echoes,
        tot.events_sent * (uint64_t)opt.room, tot.ev_missing, tot.ev_missing_impaired,
        tot.ev_lost_disc, tot.ev_dup, tot.ev_gap, tot.ev_foreign, tot.rpc_sent, tot.rpc_ok,
        tot.rpc_err, tot.rpc_closed, tot.rpc_bad, tot.rpc_skipped,
        lg_hist_quantile(tot.rpc_hist, tot.rpc_ok + tot.rpc_bad, 0.99) / 1000.0, tot.st_sent,
        tot.st_ok, tot.st_err, tot.st_closed, tot.st_skipped,
        lg_hist_quantile(tot.st_hist, tot.st_ok, 0.99) / 1000.0, in_flight, lg_sdk_pool_dead(&pool),
        disc_clean, disc_impaired, tot.match_ends, fwd, drop);
    fflush(stdout);
    fclose(acks);
    lg_sdk_pool_close(&pool);
    for (int i = 0; i < opt.clients; i++)
        free(cl[i].seen);
    free(cl);
    free(match_ids);
    free(ports);
    return 0;
}
