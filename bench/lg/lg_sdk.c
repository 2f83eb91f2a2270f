/* lg_sdk: a single-threaded load generator's SDK clients (lg_sdk.h). */
#include "lg_sdk.h"
#include "lg_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#define SWEEP_NS   10000000LL
#define SETUP_NS   60000000000LL
#define MAX_EVENTS 64
#define WAVE       100 /* clients connecting at once */

void lg_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud)
{
    lg_sdk_client *k = ud;
    if (r->code == KAOS_ERR_CLOSED) return; /* on_disconnected tells */
    if (r->code < 0) lg_die("client %d: login failed: %d %s", k->index, -r->code, r->message);
    snprintf(k->user_id, sizeof k->user_id, "%s", s->user_id);
    k->authed = true;
}

static void on_connected(kaos_client *c, void *ud)
{
    char dev[48];
    uint64_t r[2];
    if (getrandom(r, sizeof r, 0) != sizeof r) lg_die("getrandom");
    snprintf(dev, sizeof dev, "bench-%016llx%016llx", (unsigned long long)r[0],
             (unsigned long long)r[1]);
    if (kaos_client_auth_device(c, dev, NULL, true, NULL, on_session, ud) <= 0)
        lg_die("authenticate");
}

static void on_disconnected(kaos_client *c, uint32_t reason, void *ud)
{
    lg_sdk_client *k = ud;
    if (!k->dead)
        fprintf(stderr, "client %d disconnected: %s\n", k->index,
                kaos_disconnect_reason_text(reason));
    k->dead = true;
}

/* Errors of no request (cid 0). */
static void on_error(kaos_client *c, const kaos_result *r, void *ud)
{
    lg_sdk_client *k = ud;
    fprintf(stderr, "client %d: error %d %s\n", k->index, -r->code, r->message);
}

/* Pumps until the first n clients are logged in. */
static void wait_logged_in(lg_sdk_pool *p, int n)
{
    int64_t deadline = lg_now_ns() + SETUP_NS;
    for (;;) {
        int authed = 0, dead = 0;
        for (int i = 0; i < n; i++) {
            authed += p->cl[i].authed;
            dead += p->cl[i].dead;
        }
        if (dead) lg_die("%d clients could not connect", dead);
        if (authed == n) return;
        if (lg_now_ns() > deadline) lg_die("setup timed out (%d of %d logged in)", authed, n);
        lg_sdk_pool_pump(p, 5);
    }
}

static uint32_t ping_interval_ms;

void lg_sdk_set_ping_interval(uint32_t ms)
{
    ping_interval_ms = ms;
}

void lg_sdk_pool_open(lg_sdk_pool *p, int n, const char *host, uint16_t port,
                      const char *server_key, void (*each)(lg_sdk_client *k, void *ud), void *ud)
{
    lg_sdk_pool_open_ports(p, n, host, port, NULL, server_key, each, ud);
}

void lg_sdk_pool_open_ports(lg_sdk_pool *p, int n, const char *host, uint16_t port,
                            const uint16_t *ports, const char *server_key,
                            void (*each)(lg_sdk_client *k, void *ud), void *ud)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->cl = calloc((size_t)n, sizeof *p->cl);
    if (!p->cl) lg_die("out of memory");
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    if (p->ep < 0) lg_die("epoll: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        lg_sdk_client *k = &p->cl[i];
        k->index = i;
        kaos_client_config cfg;
        kaos_client_config_default(&cfg);
        cfg.host = host;
        cfg.port = ports ? ports[i] : port;
        cfg.server_key = server_key;
        cfg.insecure_dev_mode = !server_key;
        /* A thousand clients take a while to set up: the idle ones ping
         * (the server drops silent ones), and connects may wait. */
        cfg.keepalive_ms = 5000;
        cfg.ping_interval_ms = ping_interval_ms;
        cfg.connect_timeout_ms = 60000;
        k->fd = lg_lowest_free_fd();
        if (kaos_client_create(&cfg, &k->c) < 0) lg_die("kaos_client_create");
        kaos_client_on_connected(k->c, on_connected, k);
        kaos_client_on_disconnected(k->c, on_disconnected, k);
        kaos_client_on_error(k->c, on_error, k);
        if (k->fd < 0 || !lg_is_dgram_socket(k->fd))
            lg_die("cannot find the socket of client %d", i);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(p->ep, EPOLL_CTL_ADD, k->fd, &ev)) lg_die("epoll_ctl: %s", strerror(errno));
        if (each) each(k, ud);
        if (kaos_client_connect(k->c) < 0) lg_die("connect");
        /* WAVE at a time: a thousand handshakes at once outrun both sides */
        if ((i + 1) % WAVE == 0 || i + 1 == n) wait_logged_in(p, i + 1);
    }
}

void lg_sdk_pool_pump(lg_sdk_pool *p, int ms)
{
    struct epoll_event ev[MAX_EVENTS];
    int n = epoll_wait(p->ep, ev, MAX_EVENTS, ms);
    for (int i = 0; i < n; i++)
        kaos_client_poll(p->cl[ev[i].data.u32].c, 0);
    int64_t t = lg_now_ns();
    if (t - p->last_sweep > (p->sweep_ms > 0 ? p->sweep_ms * 1000000LL : SWEEP_NS)) {
        p->last_sweep = t;
        for (int i = 0; i < p->n; i++)
            kaos_client_poll(p->cl[i].c, 0);
    }
}

int lg_sdk_pool_dead(const lg_sdk_pool *p)
{
    int dead = 0;
    for (int i = 0; i < p->n; i++)
        dead += p->cl[i].dead;
    return dead;
}

void lg_sdk_pool_close(lg_sdk_pool *p)
{
    for (int i = 0; i < p->n; i++)
        kaos_client_destroy(p->cl[i].c);
    free(p->cl);
    if (p->ep >= 0) close(p->ep);
    memset(p, 0, sizeof *p);
}
