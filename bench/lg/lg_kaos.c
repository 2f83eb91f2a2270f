/* lg_kaos: the load generator's KaosNet driver, written against the public
 * SDK header only (kaos.h).
 *
 * Setup: every client connects and authenticates with a fresh random device
 * id; the first client of each room of room_size creates the match (relay:
 * a relayed match; realtime: an authoritative match of the configured
 * handler, which the creator joins), the others join it by match id once it
 * exists. Setup ends when every client holds its match. At most
 * SETUP_IN_FLIGHT clients (shared out among the workers) are between
 * connect and match at a time: a storm of simultaneous connects
 * overflows the server's UDP buffer (see bench/README.md), and this
 * benchmark measures the steady state, not the storm. Errors that mean
 * "busy" and connects that time out are retried; anything else fails the
 * worker.
 *
 * Sockets: the SDK does not expose its socket, but kaos_client_create opens
 * exactly one (its ENet host's), and POSIX hands out the lowest free
 * descriptor, so the driver notes that number before each create and checks
 * afterwards that it is now a datagram socket. With it, a client is polled
 * only when its socket is readable, instead of 500 clients being polled in
 * a busy loop.
 *
 * Bytes: the SDK counts packets, not bytes, so the framed size reported is
 * the envelope (MatchDataSend / MatchData) computed from the proto by hand:
 * no ENet header, no UDP/IP header. */
#include "lg.h"

#include <kaos.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#define OP_INPUT        1         /* inputs, both workloads */
#define OP_SNAPSHOT     2         /* realtime: what bench_realtime.lua broadcasts */
#define RETRY_NS        200000000 /* after a "busy" answer or a failed connect */
#define MAX_RETRIES     20
#define SETUP_IN_FLIGHT 128       /* all workers together */
#define SETUP_SWEEP_NS  100000000 /* poll every client this often during setup (SDK timers) */
#define MATCH_ID_CAP    256

typedef enum stage {
    STAGE_NEW, /* created, not yet connecting */
    STAGE_CONNECTING,
    STAGE_AUTHENTICATING,
    STAGE_WAITING_MATCH_ID, /* authenticated; the room's creator has no match yet */
    STAGE_MATCHING,         /* create or join sent */
    STAGE_IN_MATCH,
} stage;

typedef struct kclient {
    kaos_client *c;
    lg_worker *w;
    uint32_t i;
    int fd;
    stage stage;
    uint32_t handle;
    int retries;
    int64_t retry_at; /* 0 = nothing to retry */
} kclient;

typedef struct kroom {
    char match_id[MATCH_ID_CAP];
    uint32_t in_match;
} kroom;

typedef struct kstate {
    kclient *clients;
    kroom *rooms;
    uint32_t rooms_full;
    uint32_t next_new;  /* the next client to start */
    uint32_t in_flight; /* clients connecting, authenticating or matching */
} kstate;

static kstate *state_of(lg_worker *w)
{
    return w->driver_state;
}

/* --- envelope sizes, by hand from proto/kaos.proto ------------------------- */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* A proto3 varint field: omitted when zero; a 1-byte tag for fields 1..15. */
static size_t varint_field(uint64_t v)
{
    return v ? 1 + varint_len(v) : 0;
}

static size_t bytes_field(size_t len)
{
    return len ? 1 + varint_len(len) + len : 0;
}

/* Envelope{cid = 0 (omitted), field 25 or 26 = the message}: tags 25 and 26
 * with wire type 2 are 202 and 210, two varint bytes each. */
static size_t envelope_size(size_t inner)
{
    return 2 + varint_len(inner) + inner;
}

static size_t match_data_send_size(uint32_t handle, int64_t op, size_t len)
{
    return envelope_size(varint_field(handle) + varint_field((uint64_t)op) + bytes_field(len));
}

static size_t match_data_size(uint32_t handle, uint32_t sender, int64_t op, size_t len)
{
    return envelope_size(varint_field(handle) + varint_field(sender) + varint_field((uint64_t)op) +
                         bytes_field(len));
}

/* --- setup steps ------------------------------------------------------------ */

static void fail_client(kclient *k, const char *what)
{
    lg_worker_fail(k->w, "client %u: %s", k->w->first + k->i, what);
}

static bool busy_stage(stage s)
{
    return s == STAGE_CONNECTING || s == STAGE_AUTHENTICATING || s == STAGE_MATCHING;
}

/* The one writer of k->stage; keeps the in-flight count. */
static void set_stage(kclient *k, stage next)
{
    kstate *st = state_of(k->w);
    st->in_flight += (uint32_t)busy_stage(next) - (uint32_t)busy_stage(k->stage);
    k->stage = next;
}

static void start_connect(kclient *k)
{
    set_stage(k, STAGE_CONNECTING);
    int rc = kaos_client_connect(k->c);
    if (rc < 0) fail_client(k, kaos_err_text(rc));
}

static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud);
static void on_match(kaos_client *c, const kaos_result *r, const kaos_match *m, void *ud);

static void start_auth(kclient *k)
{
    uint8_t rnd[12];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        fail_client(k, "getrandom failed");
        return;
    }
    char device[64] = "bench-lg-";
    size_t n = strlen(device);
    for (size_t b = 0; b < sizeof rnd; b++, n += 2)
        snprintf(device + n, sizeof device - n, "%02x", rnd[b]);
    set_stage(k, STAGE_AUTHENTICATING);
    if (kaos_client_auth_device(k->c, device, NULL, true, NULL, on_session, k) < 0)
        fail_client(k, "authenticate_device refused locally");
}

static void start_match(kclient *k)
{
    kstate *st = state_of(k->w);
    uint32_t room_size = k->w->cfg->room_size;
    kroom *room = &st->rooms[k->i / room_size];
    bool realtime = k->w->cfg->workload == LG_WORKLOAD_REALTIME;
    int rc;
    if (k->i % room_size == 0) {
        rc = realtime ? kaos_client_match_create_authoritative(k->c, k->w->cfg->handler, NULL,
                                                               on_match, k)
                      : kaos_client_match_create(k->c, room_size, on_match, k);
    } else if (room->match_id[0]) {
        rc = kaos_client_match_join(k->c, room->match_id, NULL, on_match, k);
    } else {
        set_stage(k, STAGE_WAITING_MATCH_ID);
        return;
    }
    set_stage(k, STAGE_MATCHING);
    if (rc < 0) fail_client(k, kaos_err_text(rc));
}

static void on_connected(kaos_client *c, void *ud)
{
    start_auth(ud);
}

static void on_disconnected(kaos_client *c, uint32_t reason, void *ud)
{
    kclient *k = ud;
    if (k->w->running) {
        k->w->res->disconnects++;
        return;
    }
    /* A connect that timed out (reason 0, no session yet) is tried again. */
    if (reason == KAOS_DISCONNECT_NONE && k->stage == STAGE_CONNECTING &&
        k->retries++ < MAX_RETRIES) {
        k->w->res->setup_retries++;
        k->retry_at = lg_now_ns() + RETRY_NS;
        return;
    }
    char msg[96];
    snprintf(msg, sizeof msg, "disconnected during setup (%s)",
             kaos_disconnect_reason_text(reason));
    fail_client(k, msg);
}

/* Every error: of a request (from its completion) or of none (the error
 * event). During setup a busy server is asked again later. */
static void on_error(kaos_client *c, const kaos_result *r, void *ud)
{
    kclient *k = ud;
    if (k->w->running) {
        k->w->res->server_errors++;
        return;
    }
    bool busy = r->code == KAOS_ERR_RESOURCE_EXHAUSTED || r->code == KAOS_ERR_UNAVAILABLE;
    if (busy && k->retries++ < MAX_RETRIES) {
        k->w->res->setup_retries++;
        k->retry_at = lg_now_ns() + RETRY_NS;
        return;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "server error %d: %s", -r->code, r->message);
    fail_client(k, msg);
}

static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud)
{
    if (r->code < 0)
        on_error(c, r, ud);
    else
        start_match(ud);
}

static void on_match(kaos_client *c, const kaos_result *res, const kaos_match *m, void *ud)
{
    kclient *k = ud;
    if (res->code < 0) {
        on_error(c, res, ud);
        return;
    }
    lg_worker *w = k->w;
    kstate *st = state_of(w);
    uint32_t room_size = w->cfg->room_size, r = k->i / room_size;
    kroom *room = &st->rooms[r];
    k->handle = m->handle;
    set_stage(k, STAGE_IN_MATCH);
    if (k->i % room_size == 0) {
        if (strlen(m->match_id) >= sizeof room->match_id) {
            fail_client(k, "match id too long");
            return;
        }
        snprintf(room->match_id, sizeof room->match_id, "%s", m->match_id);
        /* Members that authenticated before the match existed join now. */
        for (uint32_t j = r * room_size + 1; j < (r + 1) * room_size; j++)
            if (st->clients[j].stage == STAGE_WAITING_MATCH_ID) start_match(&st->clients[j]);
    }
    if (++room->in_match == room_size) st->rooms_full++;
}

static void on_match_data(kaos_client *c, uint32_t match, uint32_t sender, int64_t op_code,
                          const uint8_t *data, size_t len, bool reliable, void *ud)
{
    kclient *k = ud;
    lg_worker_on_payload(k->w, k->i, data, len, match_data_size(match, sender, op_code, len));
}

/* --- driver ------------------------------------------------------------------ */

static int create_clients(lg_worker *w, kstate *st)
{
    for (uint32_t i = 0; i < w->count; i++) {
        kclient *k = &st->clients[i];
        k->w = w;
        k->i = i;
        kaos_client_config cfg;
        kaos_client_config_default(&cfg);
        cfg.host = w->cfg->host;
        cfg.port = w->cfg->port;
        cfg.server_key = w->cfg->server_key;
        cfg.insecure_dev_mode = !w->cfg->server_key;
        k->fd = lg_lowest_free_fd();
        int rc = kaos_client_create(&cfg, &k->c);
        if (rc < 0) {
            lg_worker_fail(w, "kaos_client_create: %s", kaos_err_text(rc));
            return -1;
        }
        kaos_client_on_connected(k->c, on_connected, k);
        kaos_client_on_disconnected(k->c, on_disconnected, k);
        kaos_client_on_error(k->c, on_error, k);
        kaos_client_on_match_data(k->c, on_match_data, k);
        if (k->fd < 0 || !lg_is_dgram_socket(k->fd)) {
            lg_worker_fail(w, "cannot find the socket of SDK client %u", i);
            return -1;
        }
    }
    return 0;
}

/* Starts new clients while the in-flight budget allows. */
static void start_more(lg_worker *w, kstate *st)
{
    uint32_t budget = SETUP_IN_FLIGHT / w->cfg->procs;
    if (budget < 4) budget = 4;
    while (st->in_flight < budget && st->next_new < w->count && !w->res->status)
        start_connect(&st->clients[st->next_new++]);
}

/* Every SETUP_SWEEP_NS: poll all started clients (the SDK's connect timeout
 * runs only inside poll) and re-issue steps whose retry time has come. */
static void sweep(lg_worker *w, kstate *st, int64_t now)
{
    for (uint32_t i = 0; i < st->next_new; i++) {
        kclient *k = &st->clients[i];
        if (k->retry_at && now >= k->retry_at) {
            k->retry_at = 0;
            if (k->stage == STAGE_CONNECTING)
                start_connect(k);
            else if (k->stage == STAGE_AUTHENTICATING)
                start_auth(k);
            else if (k->stage == STAGE_MATCHING)
                start_match(k);
        }
        kaos_client_poll(k->c, 0);
    }
}

static int kaos_setup(lg_worker *w)
{
    kstate *st = calloc(1, sizeof *st);
    if (!st) return -1;
    w->driver_state = st;
    st->clients = calloc(w->count, sizeof *st->clients);
    st->rooms = calloc(w->count / w->cfg->room_size, sizeof *st->rooms);
    if (!st->clients || !st->rooms) {
        lg_worker_fail(w, "out of memory");
        return -1;
    }
    if (create_clients(w, st)) return -1;

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        lg_worker_fail(w, "epoll_create1 failed");
        return -1;
    }
    for (uint32_t i = 0; i < w->count; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, st->clients[i].fd, &ev);
    }
    uint32_t rooms = w->count / w->cfg->room_size;
    int64_t deadline = lg_now_ns() + (int64_t)(w->cfg->setup_timeout_s * 1e9);
    int64_t next_sweep = 0;
    struct epoll_event evs[256];
    while (!w->res->status && st->rooms_full < rooms) {
        int64_t now = lg_now_ns();
        if (atomic_load(&w->shared->failed) || atomic_load(&w->shared->go) < 0) {
            lg_worker_fail(w, "stopped: another worker failed");
            break;
        }
        if (now >= deadline) {
            lg_worker_fail(w, "setup timed out: %u of %u rooms full", st->rooms_full, rooms);
            break;
        }
        if (now >= next_sweep) {
            sweep(w, st, now);
            next_sweep = now + SETUP_SWEEP_NS;
        }
        start_more(w, st);
        int n = epoll_wait(ep, evs, 256, 10);
        for (int e = 0; e < n; e++)
            kaos_client_poll(st->clients[evs[e].data.u32].c, 0);
    }
    close(ep);
    if (w->res->status) return -1;
    /* What one message of the steady state weighs: an input from another
     * player (relay), or a full room's snapshot from the server (realtime). */
    uint32_t handle = st->clients[0].handle;
    w->res->env_send_bytes = (uint32_t)match_data_send_size(handle, OP_INPUT, LG_PAYLOAD_LEN);
    w->res->env_recv_bytes =
        w->cfg->workload == LG_WORKLOAD_REALTIME
            ? (uint32_t)match_data_size(handle, 0, OP_SNAPSHOT,
                                        LG_SNAP_HEADER + w->cfg->room_size * LG_SNAP_ENTRY)
            : (uint32_t)match_data_size(handle, 1, OP_INPUT, LG_PAYLOAD_LEN);
    return 0;
}

static int kaos_fd(lg_worker *w, uint32_t i)
{
    return state_of(w)->clients[i].fd;
}

static int kaos_send(lg_worker *w, uint32_t i, const uint8_t *payload, size_t len)
{
    kclient *k = &state_of(w)->clients[i];
    int rc = kaos_client_match_send(k->c, k->handle, OP_INPUT, payload, len, false, NULL, 0);
    /* On the wire now; what arrives is read when the socket is readable. */
    kaos_client_flush(k->c);
    return rc < 0 ? rc : (int)match_data_send_size(k->handle, OP_INPUT, len);
}

static void kaos_service(lg_worker *w, uint32_t i)
{
    kaos_client_poll(state_of(w)->clients[i].c, 0);
}

static bool kaos_wire_bytes(lg_worker *w, uint64_t *out)
{
    *out = 0;
    return false;
}

static void kaos_teardown(lg_worker *w)
{
    kstate *st = state_of(w);
    if (!st) return;
    for (uint32_t i = 0; st->clients && i < w->count; i++)
        kaos_client_destroy(st->clients[i].c);
    free(st->clients);
    free(st->rooms);
    free(st);
    w->driver_state = NULL;
}

const lg_driver lg_driver_kaos = {
    .name = "kaosnet",
    .setup = kaos_setup,
    .fd = kaos_fd,
    .send = kaos_send,
    .service = kaos_service,
    .wire_bytes = kaos_wire_bytes,
    .teardown = kaos_teardown,
};
