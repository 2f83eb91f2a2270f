/* net: ENet host, connection table, outbox and the paced loop.
 *
 * Invariants: only the net thread touches `host`, `conns` and the handler;
 * other threads reach it only through the outbox (mutex + list + eventfd).
 * A slot's generation changes whenever the slot is freed, so stale ids miss. */
#include "kn_net.h"
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <assert.h>
#include <enet/enet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define ROUND_MIN_US 1000    /* at most one service round per millisecond */
#define IDLE_WAIT_MS 5       /* longest sleep when nothing happens */
#define TIMER_PERIOD_MS 100  /* timeouts and on_tick */
#define CLOSE_LINGER_MS 3000 /* a closing peer that never acknowledges is reset */
#define FINAL_LINGER_MS 2000 /* shutdown: wait this long for disconnect acks */

typedef struct conn {
    ENetPeer *peer;
    uint32_t gen;
    kn_conn_state state;
    bool opened; /* on_open was called, so on_close must be */
    uint32_t violations;
    uint32_t close_reason;
    int64_t opened_ms, last_recv_ms, close_deadline_ms;
    void *data;
} conn;

typedef struct outbox_item {
    struct outbox_item *next;
    kn_conn_id id;
    uint8_t channel;
    bool reliable;
    uint8_t *data;
    size_t len;
    void (*fn)(void *arg);
    void *arg;
} outbox_item;

struct kn_net {
    kn_net_config cfg;
    kn_net_handler handler;
    ENetHost *host;
    conn *conns;
    int wake_fd;
    atomic_int stop_requested;
    bool stopping; /* net thread: shutdown begun, refuse new connections */
    int64_t next_timer_ms;

    pthread_mutex_t outbox_lock;
    outbox_item *outbox_head, *outbox_tail;
    atomic_size_t outbox_len;

    struct {
        atomic_uint_fast64_t connections_total, connections_current, packets_in, packets_out,
            bytes_in, bytes_out, refused_version, timeouts_auth, timeouts_idle, violations,
            rounds;
    } st;
};

#define STAT_ADD(net, field, n) atomic_fetch_add_explicit(&(net)->st.field, (n), memory_order_relaxed)

void kn_net_config_default(kn_net_config *cfg)
{
    *cfg = (kn_net_config){
        .bind = "0.0.0.0",
        .port = 7350,
        .max_connections = 1024,
        .max_message_size = 16384,
        .max_waiting_data = 262144,
        .protocol_version = KN_PROTOCOL_VERSION,
        .auth_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .shutdown_grace_ms = 5000,
        .max_violations = 8,
    };
}

int kn_net_global_init(void)
{
    return enet_initialize() == 0 ? KN_OK : KN_ERR_IO;
}

void kn_net_global_deinit(void)
{
    enet_deinitialize();
}

/* --- ids and slots ------------------------------------------------------ */

static kn_conn_id make_id(uint32_t slot, uint32_t gen)
{
    return ((uint64_t)gen << 32) | slot;
}

static conn *lookup(const kn_net *net, kn_conn_id id)
{
    uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);
    if (!net->conns || slot >= net->cfg.max_connections) return NULL;
    conn *c = &net->conns[slot];
    return (c->state != KN_CONN_FREE && c->gen == gen) ? c : NULL;
}

static uint32_t slot_of(const kn_net *net, const ENetPeer *peer)
{
    return (uint32_t)(peer - net->host->peers);
}

static kn_conn_id id_of(const kn_net *net, const conn *c)
{
    return make_id((uint32_t)(c - net->conns), c->gen);
}

/* The one writer of conn->state; asserts every legal transition. */
static void set_state(conn *c, kn_conn_state to)
{
    switch (to) {
    case KN_CONN_FREE: break; /* from any state, when the peer is gone */
    case KN_CONN_HANDSHAKE: assert(c->state == KN_CONN_FREE); break;
    case KN_CONN_OPEN: assert(c->state == KN_CONN_FREE || c->state == KN_CONN_HANDSHAKE); break;
    case KN_CONN_AUTHENTICATED:
        assert(c->state == KN_CONN_OPEN || c->state == KN_CONN_AUTHENTICATED);
        break;
    case KN_CONN_CLOSING: assert(c->state != KN_CONN_FREE); break;
    }
    c->state = to;
}

/* --- create / destroy --------------------------------------------------- */

int kn_net_create(const kn_net_config *cfg, const kn_net_handler *handler, kn_net **out)
{
    *out = NULL;
    if (cfg->max_connections == 0 || cfg->max_connections > ENET_PROTOCOL_MAXIMUM_PEER_ID)
        return KN_ERR_INVALID_ARGUMENT;
    kn_net *net = kn_calloc(1, sizeof *net);
    if (!net) return KN_ERR_NOMEM;
    net->cfg = *cfg;
    net->handler = *handler;
    net->wake_fd = -1;
    pthread_mutex_init(&net->outbox_lock, NULL);
    int rc = KN_ERR_NOMEM;
    net->cfg.bind = NULL; /* not kept: only used here */
    net->conns = kn_calloc(cfg->max_connections, sizeof *net->conns);
    if (!net->conns) goto fail;
    net->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (net->wake_fd < 0) {
        rc = KN_ERR_IO;
        goto fail;
    }
    ENetAddress addr = {.host = ENET_HOST_ANY, .port = cfg->port};
    if (cfg->bind && *cfg->bind && enet_address_set_host_ip(&addr, cfg->bind) != 0) {
        KN_ERROR("bad bind address %s", cfg->bind);
        rc = KN_ERR_CONFIG;
        goto fail;
    }
    net->host = enet_host_create(&addr, cfg->max_connections, KN_CHANNEL_COUNT, 0, 0);
    if (!net->host) {
        KN_ERROR("cannot bind UDP %s:%u: %s", cfg->bind ? cfg->bind : "*", cfg->port,
                 strerror(errno));
        rc = KN_ERR_IO;
        goto fail;
    }
    /* ENet's defaults (32 MiB each) let one peer make us buffer tens of MiB. */
    net->host->maximumPacketSize = cfg->max_message_size;
    net->host->maximumWaitingData = cfg->max_waiting_data;
    *out = net;
    return KN_OK;
fail:
    kn_net_destroy(net);
    return rc;
}

static outbox_item *take_outbox(kn_net *net)
{
    pthread_mutex_lock(&net->outbox_lock);
    outbox_item *head = net->outbox_head;
    net->outbox_head = net->outbox_tail = NULL;
    atomic_store(&net->outbox_len, 0);
    pthread_mutex_unlock(&net->outbox_lock);
    return head;
}

static void run_items(kn_net *net, outbox_item *it)
{
    while (it) {
        outbox_item *next = it->next;
        if (it->fn) {
            it->fn(it->arg);
        } else {
            kn_net_send(net, it->id, it->channel, it->data, it->len, it->reliable);
            kn_free(it->data);
        }
        kn_free(it);
        it = next;
    }
}

void kn_net_destroy(kn_net *net)
{
    if (!net) return;
    /* Completions still queued must run once (they own memory); their sends miss. */
    if (net->conns) {
        for (size_t i = 0; i < net->cfg.max_connections; i++) {
            conn *c = &net->conns[i];
            if (c->state != KN_CONN_FREE && c->opened && net->handler.on_close)
                net->handler.on_close(net->handler.ud, id_of(net, c), c->data, 0);
            c->state = KN_CONN_FREE;
        }
    }
    run_items(net, take_outbox(net));
    if (net->host) enet_host_destroy(net->host);
    if (net->wake_fd >= 0) close(net->wake_fd);
    pthread_mutex_destroy(&net->outbox_lock);
    kn_free(net->conns);
    kn_free(net);
}

uint16_t kn_net_port(const kn_net *net)
{
    return net->host->address.port;
}

/* --- sending ------------------------------------------------------------ */

static bool sendable(const conn *c)
{
    return c && (c->state == KN_CONN_OPEN || c->state == KN_CONN_AUTHENTICATED ||
                 c->state == KN_CONN_HANDSHAKE);
}

int kn_net_send_many(kn_net *net, const kn_conn_id *ids, size_t n, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable)
{
    if (channel >= KN_CHANNEL_COUNT) return KN_ERR_INVALID_ARGUMENT;
    ENetPacket *p = enet_packet_create(data, len, reliable ? ENET_PACKET_FLAG_RELIABLE : 0);
    if (!p) return KN_ERR_NOMEM;
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        conn *c = lookup(net, ids[i]);
        if (!sendable(c)) continue;
        /* enet_peer_send takes a reference only on success. */
        if (enet_peer_send(c->peer, channel, p) == 0) sent++;
    }
    STAT_ADD(net, packets_out, sent);
    STAT_ADD(net, bytes_out, sent * len);
    if (p->referenceCount == 0) enet_packet_destroy(p);
    return sent ? KN_OK : KN_ERR_NOT_FOUND;
}

int kn_net_send(kn_net *net, kn_conn_id id, uint8_t channel, const uint8_t *data, size_t len,
                bool reliable)
{
    return kn_net_send_many(net, &id, 1, channel, data, len, reliable);
}

/* --- connection lifecycle ------------------------------------------------ */

static void begin_close(kn_net *net, conn *c, uint32_t reason, int64_t now)
{
    if (c->state == KN_CONN_CLOSING) return;
    set_state(c, KN_CONN_CLOSING);
    c->close_reason = reason;
    c->close_deadline_ms = now + CLOSE_LINGER_MS;
    /* _later: responses already queued (an Error, say) still go out first. */
    enet_peer_disconnect_later(c->peer, reason);
    (void)net;
}

void kn_net_close(kn_net *net, kn_conn_id id, uint32_t reason)
{
    conn *c = lookup(net, id);
    if (c) begin_close(net, c, reason, kn_time_mono_ms());
}

/* The peer is gone: tell the layer above and free the slot. */
static void finish_close(kn_net *net, conn *c, uint32_t reason)
{
    if (c->opened && net->handler.on_close)
        net->handler.on_close(net->handler.ud, id_of(net, c), c->data, reason);
    if (c->opened) atomic_fetch_sub(&net->st.connections_current, 1);
    if (c->peer) c->peer->data = NULL;
    uint32_t gen = c->gen + 1;
    memset(c, 0, sizeof *c);
    c->gen = gen ? gen : 1;
    set_state(c, KN_CONN_FREE);
}

void kn_net_set_authenticated(kn_net *net, kn_conn_id id)
{
    conn *c = lookup(net, id);
    if (c && c->state != KN_CONN_CLOSING) set_state(c, KN_CONN_AUTHENTICATED);
}

kn_conn_state kn_net_conn_state(const kn_net *net, kn_conn_id id)
{
    const conn *c = lookup(net, id);
    return c ? c->state : KN_CONN_FREE;
}

void *kn_net_conn_data(const kn_net *net, kn_conn_id id)
{
    const conn *c = lookup(net, id);
    return c ? c->data : NULL;
}

bool kn_net_violation(kn_net *net, kn_conn_id id)
{
    conn *c = lookup(net, id);
    if (!c) return true;
    STAT_ADD(net, violations, 1);
    if (++c->violations < net->cfg.max_violations) return false;
    KN_WARN("conn %llx closed after %u protocol violations", (unsigned long long)id,
            c->violations);
    begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_PROTOCOL_VIOLATION,
                kn_time_mono_ms());
    return true;
}

void kn_net_foreach(kn_net *net, void (*fn)(void *arg, kn_conn_id id, void *conn_data), void *arg)
{
    for (size_t i = 0; i < net->cfg.max_connections; i++) {
        conn *c = &net->conns[i];
        if (c->opened && c->state != KN_CONN_FREE && c->state != KN_CONN_CLOSING)
            fn(arg, id_of(net, c), c->data);
    }
}

/* Sends an Error envelope; used before an upper layer exists for the peer. */
static void send_error(ENetPeer *peer, int code, const char *message)
{
    Kaos__V1__Error err = KAOS__V1__ERROR__INIT;
    err.code = (Kaos__V1__ErrorCode)code;
    err.message = (char *)message;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_ERROR;
    env.error = &err;
    uint8_t buf[256];
    if (kn_envelope_packed_size(&env) > sizeof buf) return;
    size_t n = kn_envelope_pack(&env, buf);
    ENetPacket *p = enet_packet_create(buf, n, ENET_PACKET_FLAG_RELIABLE);
    if (p && enet_peer_send(peer, KN_CHANNEL_CONTROL, p) != 0) enet_packet_destroy(p);
}

static void handle_connect(kn_net *net, ENetEvent *ev, int64_t now)
{
    conn *c = &net->conns[slot_of(net, ev->peer)];
    assert(c->state == KN_CONN_FREE);
    if (c->gen == 0) c->gen = 1;
    c->peer = ev->peer;
    c->opened_ms = c->last_recv_ms = now;
    ev->peer->data = c;
    char ip[64] = "?";
    enet_address_get_host_ip(&ev->peer->address, ip, sizeof ip);
    char address[80];
    snprintf(address, sizeof address, "%s:%u", ip, ev->peer->address.port);

    if (net->stopping) {
        set_state(c, KN_CONN_OPEN);
        begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_SHUTDOWN, now);
        return;
    }
    if (ev->data != net->cfg.protocol_version) {
        STAT_ADD(net, refused_version, 1);
        char msg[128];
        snprintf(msg, sizeof msg, "unsupported protocol version %u; this server speaks %u",
                 ev->data, net->cfg.protocol_version);
        KN_INFO("refused %s: %s", address, msg);
        set_state(c, KN_CONN_OPEN);
        send_error(ev->peer, KAOS__V1__ERROR_CODE__FAILED_PRECONDITION, msg);
        begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_UNSUPPORTED_VERSION, now);
        return;
    }
    set_state(c, KN_CONN_OPEN);
    c->opened = true;
    STAT_ADD(net, connections_total, 1);
    STAT_ADD(net, connections_current, 1);
    if (net->handler.on_open) c->data = net->handler.on_open(net->handler.ud, id_of(net, c), address);
}

static void handle_receive(kn_net *net, ENetEvent *ev, int64_t now)
{
    conn *c = ev->peer->data;
    STAT_ADD(net, packets_in, 1);
    STAT_ADD(net, bytes_in, ev->packet->dataLength);
    if (c && c->opened && c->state != KN_CONN_CLOSING) {
        c->last_recv_ms = now;
        net->handler.on_message(net->handler.ud, id_of(net, c), c->data, ev->channelID,
                                ev->packet->data, ev->packet->dataLength);
    }
    enet_packet_destroy(ev->packet);
}

static void handle_event(kn_net *net, ENetEvent *ev, int64_t now)
{
    switch (ev->type) {
    case ENET_EVENT_TYPE_CONNECT: handle_connect(net, ev, now); break;
    case ENET_EVENT_TYPE_RECEIVE: handle_receive(net, ev, now); break;
    case ENET_EVENT_TYPE_DISCONNECT: {
        conn *c = ev->peer->data;
        if (c) finish_close(net, c, c->state == KN_CONN_CLOSING ? c->close_reason : ev->data);
        break;
    }
    case ENET_EVENT_TYPE_NONE: break;
    }
}

/* Auth and idle deadlines, and peers that never acknowledged our disconnect. */
static void run_timers(kn_net *net, int64_t now)
{
    for (size_t i = 0; i < net->cfg.max_connections; i++) {
        conn *c = &net->conns[i];
        switch (c->state) {
        case KN_CONN_HANDSHAKE:
        case KN_CONN_OPEN:
            if (now - c->opened_ms >= net->cfg.auth_timeout_ms) {
                STAT_ADD(net, timeouts_auth, 1);
                begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_AUTH_TIMEOUT, now);
                break;
            }
            /* the idle rule holds before authentication too */
            __attribute__((fallthrough));
        case KN_CONN_AUTHENTICATED:
            if (now - c->last_recv_ms >= net->cfg.idle_timeout_ms) {
                STAT_ADD(net, timeouts_idle, 1);
                begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_IDLE_TIMEOUT, now);
            }
            break;
        case KN_CONN_CLOSING:
            if (now >= c->close_deadline_ms) {
                enet_peer_reset(c->peer);
                finish_close(net, c, c->close_reason);
            }
            break;
        case KN_CONN_FREE: break;
        }
    }
    if (net->handler.on_tick) net->handler.on_tick(net->handler.ud, now);
}

/* --- the loop ------------------------------------------------------------ */

static void drain_wake(kn_net *net)
{
    uint64_t v;
    while (read(net->wake_fd, &v, sizeof v) > 0) {
    }
}

static void round_once(kn_net *net)
{
    int64_t now = kn_time_mono_ms();
    ENetEvent ev;
    /* One service call (it walks every peer slot), then only queued events. */
    int r = enet_host_service(net->host, &ev, 0);
    while (r > 0) {
        handle_event(net, &ev, now);
        r = enet_host_check_events(net->host, &ev);
    }
    drain_wake(net);
    run_items(net, take_outbox(net));
    if (now >= net->next_timer_ms) {
        net->next_timer_ms = now + TIMER_PERIOD_MS;
        run_timers(net, now);
    }
    enet_host_flush(net->host);
    STAT_ADD(net, rounds, 1);
}

/* Sleep out the rest of the minimum round, then wait for work. */
static void wait_for_work(kn_net *net, int64_t round_start_us)
{
    int64_t rest = round_start_us + ROUND_MIN_US - kn_time_mono_us();
    if (rest > 0) {
        struct timespec ts = {0, (long)rest * 1000};
        nanosleep(&ts, NULL);
    }
    struct pollfd fds[2] = {{.fd = net->host->socket, .events = POLLIN},
                            {.fd = net->wake_fd, .events = POLLIN}};
    poll(fds, 2, IDLE_WAIT_MS);
}

static size_t live_count(const kn_net *net)
{
    size_t n = 0;
    for (size_t i = 0; i < net->cfg.max_connections; i++)
        if (net->conns[i].state != KN_CONN_FREE) n++;
    return n;
}

int kn_net_run(kn_net *net)
{
    while (!atomic_load(&net->stop_requested)) {
        int64_t start = kn_time_mono_us();
        round_once(net);
        wait_for_work(net, start);
    }

    /* Shutdown: stop accepting, let the layer above finish in-flight work. */
    KN_INFO("shutting down: draining for up to %lld ms", (long long)net->cfg.shutdown_grace_ms);
    net->stopping = true;
    if (net->handler.on_shutdown) net->handler.on_shutdown(net->handler.ud, net->cfg.shutdown_grace_ms);
    int64_t deadline = kn_time_mono_ms() + net->cfg.shutdown_grace_ms;
    while (kn_time_mono_ms() < deadline) {
        int64_t start = kn_time_mono_us();
        round_once(net);
        if ((!net->handler.drained || net->handler.drained(net->handler.ud)) &&
            atomic_load(&net->outbox_len) == 0)
            break;
        wait_for_work(net, start);
    }

    /* Close everyone and wait briefly for the acknowledgements. */
    int64_t now = kn_time_mono_ms();
    for (size_t i = 0; i < net->cfg.max_connections; i++) {
        conn *c = &net->conns[i];
        if (c->state != KN_CONN_FREE)
            begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_SHUTDOWN, now);
    }
    deadline = now + FINAL_LINGER_MS;
    while (live_count(net) > 0 && kn_time_mono_ms() < deadline) {
        int64_t start = kn_time_mono_us();
        round_once(net);
        wait_for_work(net, start);
    }
    for (size_t i = 0; i < net->cfg.max_connections; i++) {
        conn *c = &net->conns[i];
        if (c->state != KN_CONN_FREE) {
            enet_peer_reset(c->peer);
            finish_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_SHUTDOWN);
        }
    }
    KN_INFO("network stopped");
    return KN_OK;
}

void kn_net_stop(kn_net *net)
{
    atomic_store(&net->stop_requested, 1);
    uint64_t one = 1;
    ssize_t w = write(net->wake_fd, &one, sizeof one);
    (void)w;
}

/* --- any thread ---------------------------------------------------------- */

static int push(kn_net *net, outbox_item *it)
{
    pthread_mutex_lock(&net->outbox_lock);
    if (net->outbox_tail) net->outbox_tail->next = it;
    else net->outbox_head = it;
    net->outbox_tail = it;
    size_t before = atomic_fetch_add(&net->outbox_len, 1);
    pthread_mutex_unlock(&net->outbox_lock);
    /* Only the first item after a drain needs to wake the loop. */
    if (before == 0) {
        uint64_t one = 1;
        ssize_t w = write(net->wake_fd, &one, sizeof one);
        (void)w;
    }
    return KN_OK;
}

int kn_net_post(kn_net *net, kn_conn_id id, uint8_t channel, uint8_t *data, size_t len,
                bool reliable)
{
    outbox_item *it = kn_calloc(1, sizeof *it);
    if (!it) {
        kn_free(data);
        return KN_ERR_NOMEM;
    }
    it->id = id;
    it->channel = channel;
    it->reliable = reliable;
    it->data = data;
    it->len = len;
    return push(net, it);
}

int kn_net_post_fn(kn_net *net, void (*fn)(void *arg), void *arg)
{
    outbox_item *it = kn_calloc(1, sizeof *it);
    if (!it) return KN_ERR_NOMEM;
    it->fn = fn;
    it->arg = arg;
    return push(net, it);
}

void kn_net_stats_get(kn_net *net, kn_net_stats *out)
{
    memset(out, 0, sizeof *out);
#define GET(f) out->f = atomic_load_explicit(&net->st.f, memory_order_relaxed)
    GET(connections_total);
    GET(connections_current);
    GET(packets_in);
    GET(packets_out);
    GET(bytes_in);
    GET(bytes_out);
    GET(refused_version);
    GET(timeouts_auth);
    GET(timeouts_idle);
    GET(violations);
    GET(rounds);
#undef GET
}
