/* lg_worker: one load generator process. Sets its clients up through a
 * driver, waits for the parent's schedule, then sends on an absolute 30 Hz
 * grid and services sockets as they become readable; what arrives goes to
 * the workload (lg_relay.c, lg_realtime.c).
 *
 * Invariants: client g (global index) sends at t_start + g * period / ccu +
 * k * period for k = 0, 1, ...; the grid never drifts, because the next due
 * time is computed from the previous due time, never from "now". Sends that
 * are due are made at once, even in a burst after a stall, and the lag is
 * recorded, so a load generator that cannot keep up shows it instead of
 * quietly sending less. */
#include "lg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define EVENTS_PER_WAIT 256

void lg_worker_fail(lg_worker *w, const char *fmt, ...)
{
    if (w->res->status) return;
    w->res->status = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->res->error, sizeof w->res->error, fmt, ap);
    va_end(ap);
}

int lg_worker_wait_turn(lg_worker *w)
{
    while (atomic_load(&w->shared->connect_turn) != (int)w->index) {
        if (atomic_load(&w->shared->failed) || atomic_load(&w->shared->go) < 0) return -1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

void lg_worker_pass_turn(lg_worker *w)
{
    atomic_store(&w->shared->connect_turn, (int)w->index + 1);
}

bool lg_in_window(const lg_worker *w, int64_t t)
{
    return t >= w->shared->t_begin && t < w->shared->t_end;
}

void lg_record_latency(lg_result *r, uint64_t us)
{
    r->lat_samples++;
    r->lat_hist[lg_lat_bucket(us)]++;
    r->lat_sum_us += us;
    if (us > r->lat_max_us) r->lat_max_us = us;
}

void lg_worker_on_payload(lg_worker *w, uint32_t i, const uint8_t *data, size_t len, size_t framed)
{
    int64_t now = lg_now_ns();
    w->res->deliveries_total++;
    if (w->measuring) w->res->app_recv_window += framed;
    w->workload->received(w, i, data, len, now);
}

/* --- the steady loop ------------------------------------------------------- */

typedef struct schedule {
    int64_t *due; /* next due time of each local client */
    uint32_t *seq;
    uint32_t cursor; /* the client due soonest: due times rise with the index, cyclically */
    int64_t period;
} schedule;

static int schedule_init(lg_worker *w, schedule *s)
{
    s->due = calloc(w->count, sizeof *s->due);
    s->seq = calloc(w->count, sizeof *s->seq);
    if (!s->due || !s->seq) return -1;
    s->period = 1000000000 / (int64_t)w->cfg->hz;
    s->cursor = 0;
    for (uint32_t i = 0; i < w->count; i++)
        s->due[i] = w->shared->t_start + (int64_t)(w->first + i) * s->period / w->cfg->ccu;
    return 0;
}

static void schedule_deinit(schedule *s)
{
    free(s->due);
    free(s->seq);
}

static void send_one(lg_worker *w, const lg_driver *d, schedule *s, uint32_t i)
{
    lg_result *r = w->res;
    uint8_t payload[LG_PAYLOAD_LEN];
    int64_t now = lg_now_ns();
    lg_put_u64(payload, (uint64_t)now);
    lg_put_u32(payload + 8, w->first + i);
    lg_put_u32(payload + 12, s->seq[i]);
    bool in_window = lg_in_window(w, now);
    int framed = d->send(w, i, payload, sizeof payload);
    w->workload->sent(w, i, s->seq[i]++, now, in_window && framed >= 0);
    r->sends_total++;
    if (framed < 0) {
        r->send_errors++;
    } else if (in_window) {
        r->sends_window++;
        r->app_sent_window += (uint64_t)framed;
        uint64_t lag_us = (uint64_t)(now - s->due[i]) / 1000;
        r->lag_hist[lg_lat_bucket(lag_us)]++;
        if (lag_us > r->lag_max_us) r->lag_max_us = lag_us;
        if (now - s->due[i] > s->period / LG_LATE_DIVISOR) r->late_sends++;
    }
    s->due[i] += s->period;
}

static void send_due(lg_worker *w, const lg_driver *d, schedule *s, int64_t now)
{
    while (s->due[s->cursor] <= now) {
        send_one(w, d, s, s->cursor);
        s->cursor = (s->cursor + 1) % w->count;
    }
}

/* Opens or closes the window when `now` crosses its edges. */
static void track_window(lg_worker *w, const lg_driver *d, int64_t now, int64_t *cpu0,
                         uint64_t *wire0)
{
    lg_result *r = w->res;
    if (!w->measuring && lg_in_window(w, now)) {
        w->measuring = true;
        *cpu0 = lg_cpu_ns();
        r->wire_known = d->wire_bytes(w, wire0);
    } else if (w->measuring && now >= w->shared->t_end) {
        w->measuring = false;
        r->cpu_ns_window = (uint64_t)(lg_cpu_ns() - *cpu0);
        uint64_t wire1 = 0;
        if (r->wire_known && d->wire_bytes(w, &wire1)) r->wire_bytes_window = wire1 - *wire0;
    }
}

static int steady(lg_worker *w, const lg_driver *d, int ep)
{
    schedule s;
    if (schedule_init(w, &s)) {
        schedule_deinit(&s);
        lg_worker_fail(w, "out of memory");
        return -1;
    }
    struct epoll_event evs[EVENTS_PER_WAIT];
    int64_t cpu0 = 0;
    uint64_t wire0 = 0;
    bool pwait2 = true;
    for (;;) {
        int64_t now = lg_now_ns();
        track_window(w, d, now, &cpu0, &wire0);
        if (now >= w->shared->t_stop) break;
        send_due(w, d, &s, now);
        int64_t wait = s.due[s.cursor] - lg_now_ns();
        if (wait < 0) wait = 0;
        struct timespec ts = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
        int n = pwait2 ? epoll_pwait2(ep, evs, EVENTS_PER_WAIT, &ts, NULL) : -1;
        if (n < 0 && pwait2 && errno == ENOSYS) pwait2 = false;
        if (!pwait2) n = epoll_wait(ep, evs, EVENTS_PER_WAIT, (int)((wait + 999999) / 1000000));
        if (n < 0 && errno != EINTR) {
            lg_worker_fail(w, "epoll: %s", strerror(errno));
            break;
        }
        for (int k = 0; k < n; k++) {
            d->service(w, (uint32_t)evs[k].data.u32);
            /* A long burst of receives must not hold back sends that fell due. */
            send_due(w, d, &s, lg_now_ns());
        }
    }
    schedule_deinit(&s);
    return w->res->status;
}

/* Between setup and the parent's go: keep the connections serviced. */
static int wait_for_go(lg_worker *w, const lg_driver *d, int ep)
{
    struct epoll_event evs[EVENTS_PER_WAIT];
    for (;;) {
        int go = atomic_load_explicit(&w->shared->go, memory_order_acquire);
        if (go > 0) return 0;
        if (go < 0) return -1;
        int n = epoll_wait(ep, evs, EVENTS_PER_WAIT, 5);
        for (int k = 0; k < n; k++)
            d->service(w, (uint32_t)evs[k].data.u32);
    }
}

int lg_worker_run(lg_worker *w, const lg_driver *d)
{
    int64_t t0 = lg_now_ns();
    /* The workload first: messages can arrive while the rooms fill. */
    int ep = -1, rc = w->workload->start(w);
    if (rc == 0) rc = d->setup(w);
    w->res->setup_s = (double)(lg_now_ns() - t0) / 1e9;
    if (rc == 0) {
        ep = epoll_create1(EPOLL_CLOEXEC);
        for (uint32_t i = 0; ep >= 0 && i < w->count; i++) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, d->fd(w, i), &ev) < 0) {
                lg_worker_fail(w, "epoll_ctl on client %u: %s", i, strerror(errno));
                rc = -1;
                break;
            }
        }
        if (ep < 0) {
            lg_worker_fail(w, "epoll_create1: %s", strerror(errno));
            rc = -1;
        }
    }
    if (rc) {
        if (!w->res->status) lg_worker_fail(w, "setup failed");
        atomic_fetch_add(&w->shared->failed, 1);
    } else {
        atomic_fetch_add(&w->shared->ready, 1);
        w->running = true;
        if (wait_for_go(w, d, ep) == 0)
            rc = steady(w, d, ep);
        else
            rc = -1;
    }
    w->workload->stop(w);
    d->teardown(w);
    if (ep >= 0) close(ep);
    return rc ? 1 : 0;
}
