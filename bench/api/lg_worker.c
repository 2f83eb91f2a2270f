/* lg_worker: one API load generator process, written against the public SDK
 * header only (kaos.h).
 *
 * Setup: every client connects and logs in with a device id of its own
 * (create=true); for login_existing it then creates `pool` more devices, one
 * after the other, which the window logs into again with create=false. At
 * most SETUP_IN_FLIGHT clients (shared out among the workers) are between
 * connect and ready at a time, so setup is not a connect storm. Connects that
 * time out and "busy" answers are retried; anything else fails the worker.
 *
 * Load: at t_start every client issues `inflight` requests; each answer
 * (success or error) issues the next one from inside the callback, and the
 * SDK flushes it when that kaos_client_poll returns. No request is issued
 * after t_end; the worker waits for the ones in flight until t_stop.
 *
 * Sockets: the SDK does not expose its socket, so, as in bench/relay, the
 * worker notes the lowest free descriptor before each kaos_client_create and
 * checks afterwards that it became a datagram socket. A client is polled when
 * its socket is readable, and every client every SWEEP_NS for ENet's timers
 * (retransmits, acks, keepalives). */
#include "lg.h"

#include <kaos.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define SETUP_IN_FLIGHT 64        /* all workers together */
#define SWEEP_NS        20000000  /* poll every client this often */
#define RETRY_NS        200000000 /* after a "busy" answer or a failed connect */
#define MAX_RETRIES     20
#define EVENTS_PER_WAIT 256

/* The RPC payload: small JSON, the same for every RPC workload so that only
 * the server-side work differs between the rows. */
static const char PAYLOAD[] = "{\"player\":\"p-000123\",\"score\":4217,\"items\":[3,1,4,1,5,9],"
                              "\"pos\":{\"x\":1.5,\"y\":-2.25}}";

const char *const lg_workload_names[LG_WORKLOAD_COUNT] = {
    [LG_PING] = "ping", [LG_NOOP] = "noop",           [LG_ECHO] = "echo",
    [LG_JSON] = "json", [LG_LOGIN_NEW] = "login_new", [LG_LOGIN_EXISTING] = "login_existing",
};

typedef enum stage {
    STAGE_NEW, /* created, not yet connecting */
    STAGE_CONNECTING,
    STAGE_SETUP_AUTH, /* connected; setup logins in progress */
    STAGE_READY,      /* set up; waiting for go, or running */
    STAGE_GONE,       /* disconnected after setup */
} stage;

typedef struct pending {
    uint32_t cid;
    int64_t sent_ns;
} pending;

typedef struct client {
    kaos_client *c;
    struct wstate *ws;
    uint32_t i; /* local index */
    int fd;
    stage stage;
    uint32_t setup_done; /* setup logins answered */
    uint32_t seq; /* login_new: next device number; login_existing: pool cursor */
    int retries;
    int64_t retry_at; /* 0 = nothing to retry */
    uint32_t n_pending;
    pending pending[LG_MAX_INFLIGHT];
} client;

typedef struct wstate {
    lg_worker *w;
    client *clients;
    uint32_t next_new; /* the next client to start connecting */
    uint32_t in_setup; /* clients connecting or logging in during setup */
    uint32_t ready;    /* clients in STAGE_READY */
    bool issuing;      /* between t_start and t_end */
} wstate;

void lg_worker_fail(lg_worker *w, const char *fmt, ...)
{
    if (w->res->status) return;
    w->res->status = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->res->error, sizeof w->res->error, fmt, ap);
    va_end(ap);
}

static void fail_client(client *k, const char *what)
{
    lg_worker_fail(k->ws->w, "client %u: %s", k->ws->w->first + k->i, what);
}

/* --- requests ------------------------------------------------------------------ */

/* Device ids: "<prefix>-<kind><worker>-<client>-<n>", unique per run. */
static void device_id(const client *k, char kind, uint32_t n, char *out, size_t cap)
{
    const lg_worker *w = k->ws->w;
    snprintf(out, cap, "%s-%c%u-%u-%u", w->cfg->prefix, kind, w->index, k->i, n);
}

/* The one writer of k->stage; keeps the worker's counts. */
static void set_stage(client *k, stage next)
{
    wstate *ws = k->ws;
    bool was_setup = k->stage == STAGE_CONNECTING || k->stage == STAGE_SETUP_AUTH;
    bool is_setup = next == STAGE_CONNECTING || next == STAGE_SETUP_AUTH;
    ws->in_setup += (uint32_t)is_setup - (uint32_t)was_setup;
    if (next == STAGE_READY) ws->ready++;
    if (k->stage == STAGE_READY) ws->ready--;
    k->stage = next;
}

/* Setup logins: one for every workload, `pool` more for login_existing. */
static uint32_t setup_logins(const lg_config *cfg)
{
    return cfg->workload == LG_LOGIN_EXISTING ? cfg->pool : 1;
}

static void on_setup_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud);
static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud);
static void on_rpc(kaos_client *c, const kaos_result *r, const char *payload, size_t len, void *ud);
static void on_pong(kaos_client *c, const kaos_result *r, int64_t rtt_ms, void *ud);

static void setup_next(client *k)
{
    const lg_config *cfg = k->ws->w->cfg;
    if (k->setup_done >= setup_logins(cfg)) {
        set_stage(k, STAGE_READY);
        return;
    }
    char dev[128];
    device_id(k, cfg->workload == LG_LOGIN_EXISTING ? 'p' : 's', k->setup_done, dev, sizeof dev);
    int cid = kaos_client_auth_device(k->c, dev, NULL, true, NULL, on_setup_session, k);
    if (cid < 0) fail_client(k, kaos_err_text(cid));
}

static void start_connect(client *k)
{
    set_stage(k, STAGE_CONNECTING);
    int rc = kaos_client_connect(k->c);
    if (rc < 0) fail_client(k, kaos_err_text(rc));
}

/* Issues one request of the workload and remembers it. */
static void issue(client *k)
{
    wstate *ws = k->ws;
    const lg_config *cfg = ws->w->cfg;
    if (k->n_pending >= LG_MAX_INFLIGHT) return;
    char dev[128];
    int cid;
    switch (cfg->workload) {
    case LG_PING:
        cid = kaos_client_ping(k->c, on_pong, k);
        break;
    case LG_NOOP:
        cid = kaos_client_rpc_call(k->c, "kaos.noop", PAYLOAD, on_rpc, k);
        break;
    case LG_ECHO:
        cid = kaos_client_rpc_call(k->c, "bench_echo", PAYLOAD, on_rpc, k);
        break;
    case LG_JSON:
        cid = kaos_client_rpc_call(k->c, "bench_json", PAYLOAD, on_rpc, k);
        break;
    case LG_LOGIN_NEW:
        device_id(k, 'n', k->seq++, dev, sizeof dev);
        cid = kaos_client_auth_device(k->c, dev, NULL, true, NULL, on_session, k);
        break;
    case LG_LOGIN_EXISTING:
        device_id(k, 'p', k->seq++ % cfg->pool, dev, sizeof dev);
        cid = kaos_client_auth_device(k->c, dev, NULL, false, NULL, on_session, k);
        break;
    default:
        cid = KAOS_ERR_INVALID_ARGUMENT;
        break;
    }
    if (cid < 0) {
        ws->w->res->local_errors++;
        return;
    }
    k->pending[k->n_pending++] = (pending){(uint32_t)cid, lg_now_ns()};
}

/* An answer (ok or error) to request `cid`: record it, issue the next one.
 * False if no such request is pending. */
static bool complete(client *k, uint32_t cid, bool ok)
{
    lg_worker *w = k->ws->w;
    lg_result *r = w->res;
    uint32_t j = 0;
    while (j < k->n_pending && k->pending[j].cid != cid)
        j++;
    if (j == k->n_pending) return false;
    int64_t now = lg_now_ns(), sent = k->pending[j].sent_ns;
    k->pending[j] = k->pending[--k->n_pending];
    bool in_window = now >= w->shared->t_begin && now < w->shared->t_end;
    if (ok) {
        r->ok_total++;
        if (in_window) {
            uint64_t us = (uint64_t)(now - sent) / 1000;
            r->ok_window++;
            r->lat_hist[lg_lat_bucket(us)]++;
            r->lat_sum_us += us;
            if (us > r->lat_max_us) r->lat_max_us = us;
        }
    } else {
        r->errors_total++;
        if (in_window) r->errors_window++;
    }
    if (k->ws->issuing && now < w->shared->t_end) issue(k);
    return true;
}

/* --- callbacks ------------------------------------------------------------------- */

static void on_connected(kaos_client *c, void *ud)
{
    client *k = ud;
    set_stage(k, STAGE_SETUP_AUTH);
    setup_next(k);
}

static void on_disconnected(kaos_client *c, uint32_t reason, void *ud)
{
    client *k = ud;
    if (k->stage == STAGE_READY) {
        k->ws->w->res->disconnects++;
        k->n_pending = 0;
        set_stage(k, STAGE_GONE);
        return;
    }
    /* A connect that timed out (reason 0, no session yet) is tried again. */
    if (reason == KAOS_DISCONNECT_NONE && k->stage == STAGE_CONNECTING &&
        k->retries++ < MAX_RETRIES) {
        k->retry_at = lg_now_ns() + RETRY_NS;
        return;
    }
    char msg[96];
    snprintf(msg, sizeof msg, "disconnected during setup (%s)",
             kaos_disconnect_reason_text(reason));
    fail_client(k, msg);
}

/* Errors of no request (cid 0). */
static void on_error(kaos_client *c, const kaos_result *res, void *ud)
{
    client *k = ud;
    lg_result *r = k->ws->w->res;
    if (!r->first_error[0])
        snprintf(r->first_error, sizeof r->first_error, "%d %s", -res->code, res->message);
    r->errors_total++;
}

static void on_setup_session(kaos_client *c, const kaos_result *res, const kaos_session *s,
                             void *ud)
{
    client *k = ud;
    if (res->code == KAOS_ERR_CLOSED) return; /* on_disconnected tells */
    if (res->code < 0) {
        bool busy = res->code == KAOS_ERR_RESOURCE_EXHAUSTED || res->code == KAOS_ERR_UNAVAILABLE;
        if (busy && k->retries++ < MAX_RETRIES) {
            k->retry_at = lg_now_ns() + RETRY_NS;
            return;
        }
        char msg[160];
        snprintf(msg, sizeof msg, "setup login failed: error %d: %s", -res->code, res->message);
        fail_client(k, msg);
        return;
    }
    if (s->created) k->ws->w->res->created_setup++;
    k->setup_done++;
    setup_next(k);
}

/* The answer of a workload request: false when it was an error (recorded)
 * or the connection ended (on_disconnected counts that, not an error). */
static bool answered(client *k, const kaos_result *res)
{
    lg_result *r = k->ws->w->res;
    if (res->code == KAOS_ERR_CLOSED) return false;
    if (res->code == KAOS_OK) return true;
    if (!r->first_error[0])
        snprintf(r->first_error, sizeof r->first_error, "%d %s", -res->code, res->message);
    if (!complete(k, res->cid, false)) r->errors_total++;
    return false;
}

static void on_session(kaos_client *c, const kaos_result *res, const kaos_session *s, void *ud)
{
    client *k = ud;
    if (!answered(k, res)) return;
    if (!complete(k, res->cid, true)) {
        k->ws->w->res->unexpected++;
        return;
    }
    if (k->ws->w->cfg->workload == LG_LOGIN_NEW && !s->created) k->ws->w->res->not_created++;
}

static void on_rpc(kaos_client *c, const kaos_result *res, const char *payload, size_t len,
                   void *ud)
{
    client *k = ud;
    if (answered(k, res) && !complete(k, res->cid, true)) k->ws->w->res->unexpected++;
}

static void on_pong(kaos_client *c, const kaos_result *res, int64_t rtt_ms, void *ud)
{
    client *k = ud;
    if (answered(k, res) && !complete(k, res->cid, true)) k->ws->w->res->unexpected++;
}

/* --- setup ------------------------------------------------------------------------ */

static int create_clients(wstate *ws)
{
    lg_worker *w = ws->w;
    for (uint32_t i = 0; i < w->count; i++) {
        client *k = &ws->clients[i];
        k->ws = ws;
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
        if (k->fd < 0 || !lg_is_dgram_socket(k->fd)) {
            lg_worker_fail(w, "cannot find the socket of SDK client %u", i);
            return -1;
        }
    }
    return 0;
}

/* Every client started so far: re-issue steps whose retry time has come,
 * and poll (the SDK's timers run only inside poll). */
static void sweep(wstate *ws, int64_t now)
{
    for (uint32_t i = 0; i < ws->next_new; i++) {
        client *k = &ws->clients[i];
        if (k->retry_at && now >= k->retry_at) {
            k->retry_at = 0;
            if (k->stage == STAGE_CONNECTING)
                start_connect(k);
            else if (k->stage == STAGE_SETUP_AUTH)
                setup_next(k);
        }
        kaos_client_poll(k->c, 0);
    }
}

static int setup(wstate *ws, int ep)
{
    lg_worker *w = ws->w;
    if (create_clients(ws)) return -1;
    for (uint32_t i = 0; i < w->count; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, ws->clients[i].fd, &ev) < 0) {
            lg_worker_fail(w, "epoll_ctl: %s", strerror(errno));
            return -1;
        }
    }
    uint32_t budget = SETUP_IN_FLIGHT / w->cfg->procs;
    if (budget < 4) budget = 4;
    int64_t deadline = lg_now_ns() + (int64_t)(w->cfg->setup_timeout_s * 1e9), next_sweep = 0;
    struct epoll_event evs[EVENTS_PER_WAIT];
    while (!w->res->status && ws->ready < w->count) {
        int64_t now = lg_now_ns();
        if (atomic_load(&w->shared->failed) || atomic_load(&w->shared->go) < 0) {
            lg_worker_fail(w, "stopped: another worker failed");
            break;
        }
        if (now >= deadline) {
            lg_worker_fail(w, "setup timed out: %u of %u clients ready", ws->ready, w->count);
            break;
        }
        if (now >= next_sweep) {
            sweep(ws, now);
            next_sweep = now + SWEEP_NS;
        }
        while (ws->in_setup < budget && ws->next_new < w->count && !w->res->status) {
            client *k = &ws->clients[ws->next_new++];
            start_connect(k);
            kaos_client_poll(k->c, 0);
        }
        int n = epoll_wait(ep, evs, EVENTS_PER_WAIT, 5);
        for (int e = 0; e < n; e++)
            kaos_client_poll(ws->clients[evs[e].data.u32].c, 0);
    }
    return w->res->status ? -1 : 0;
}

/* --- the load ---------------------------------------------------------------------- */

/* Between setup and go: keep the connections serviced. */
static int wait_for_go(wstate *ws, int ep)
{
    lg_worker *w = ws->w;
    struct epoll_event evs[EVENTS_PER_WAIT];
    int64_t next_sweep = 0;
    for (;;) {
        int go = atomic_load_explicit(&w->shared->go, memory_order_acquire);
        if (go > 0) return 0;
        if (go < 0) return -1;
        int64_t now = lg_now_ns();
        if (now >= next_sweep) {
            sweep(ws, now);
            next_sweep = now + SWEEP_NS;
        }
        int n = epoll_wait(ep, evs, EVENTS_PER_WAIT, 5);
        for (int e = 0; e < n; e++)
            kaos_client_poll(ws->clients[evs[e].data.u32].c, 0);
    }
}

static uint64_t pending_total(const wstate *ws)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < ws->w->count; i++)
        n += ws->clients[i].n_pending;
    return n;
}

static int run_load(wstate *ws, int ep)
{
    lg_worker *w = ws->w;
    const lg_shared *sh = w->shared;
    lg_result *r = w->res;
    (void)lg_sleep_until(sh->t_start);
    ws->issuing = true;
    /* Start: every client's first `inflight` requests, flushed by a poll. */
    for (uint32_t i = 0; i < w->count; i++) {
        client *k = &ws->clients[i];
        if (k->stage != STAGE_READY) continue;
        for (uint32_t q = 0; q < w->cfg->inflight; q++)
            issue(k);
        kaos_client_poll(k->c, 0);
    }
    struct epoll_event evs[EVENTS_PER_WAIT];
    int64_t cpu0 = 0, next_sweep = lg_now_ns() + SWEEP_NS;
    bool measuring = false;
    for (;;) {
        int64_t now = lg_now_ns();
        if (!measuring && now >= sh->t_begin && now < sh->t_end) {
            measuring = true;
            cpu0 = lg_cpu_ns();
        } else if (measuring && now >= sh->t_end) {
            measuring = false;
            r->cpu_ns_window = (uint64_t)(lg_cpu_ns() - cpu0);
        }
        if (now >= sh->t_end) ws->issuing = false;
        if (now >= sh->t_stop || (now >= sh->t_end && pending_total(ws) == 0)) break;
        if (now >= next_sweep) {
            /* ENet's timers; a lost datagram is resent only from inside a poll. */
            for (uint32_t i = 0; i < w->count; i++)
                kaos_client_poll(ws->clients[i].c, 0);
            next_sweep = now + SWEEP_NS;
        }
        int n = epoll_wait(ep, evs, EVENTS_PER_WAIT, 1);
        if (n < 0 && errno != EINTR) {
            lg_worker_fail(w, "epoll: %s", strerror(errno));
            break;
        }
        for (int e = 0; e < n; e++)
            kaos_client_poll(ws->clients[evs[e].data.u32].c, 0);
    }
    if (measuring) r->cpu_ns_window = (uint64_t)(lg_cpu_ns() - cpu0);
    return r->status;
}

int lg_worker_run(lg_worker *w)
{
    int64_t t0 = lg_now_ns();
    wstate ws = {.w = w};
    ws.clients = calloc(w->count, sizeof *ws.clients);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int rc = -1;
    if (!ws.clients || ep < 0)
        lg_worker_fail(w, "out of memory or descriptors");
    else
        rc = setup(&ws, ep);
    w->res->setup_s = (double)(lg_now_ns() - t0) / 1e9;
    if (rc) {
        if (!w->res->status) lg_worker_fail(w, "setup failed");
        atomic_fetch_add(&w->shared->failed, 1);
    } else {
        atomic_fetch_add(&w->shared->ready, 1);
        rc = wait_for_go(&ws, ep) == 0 ? run_load(&ws, ep) : -1;
    }
    for (uint32_t i = 0; ws.clients && i < w->count; i++)
        kaos_client_destroy(ws.clients[i].c);
    free(ws.clients);
    if (ep >= 0) close(ep);
    return rc ? 1 : 0;
}
