/* net: ENet host, connection table, outbox and the paced loop.
 *
 * Invariants: only the net thread touches `host`, `conns` and the handler;
 * other threads reach it only through the outbox (mutex + list + eventfd).
 * A slot's generation changes whenever the slot is freed, so stale ids miss. */
#include "kn_net.h"
#include "kn_codec.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_limits.h"
#include "kn_log.h"
#include "kn_map.h"
#include "kn_mem.h"
#include "kn_secure.h"
#include "kn_recycle.h"
#include "kn_time.h"
#include "net_internal.h"

#include <assert.h>
#include <enet/enet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kn_enet_rto.h" /* after <enet/enet.h> */

#define ROUND_MIN_US           1000    /* at most one service round per millisecond */
#define IDLE_WAIT_MS           5       /* longest sleep when nothing happens */
#define TIMER_PERIOD_MS        100     /* timeouts and on_tick */
#define CLOSE_LINGER_MS        3000    /* a closing peer that never acknowledges is reset */
#define FINAL_LINGER_MS        2000    /* shutdown: wait this long for disconnect acks */
#define RATE_WINDOW_MS         10000   /* rate-limit drops are counted over this window */
#define COOKIE_REPLIES_PER_SEC 20000.0 /* cap on what we reflect to any address */
#define ENET_WINDOW                                                                                \
    64 /* sealed packets a connection keeps in ENet; the rest wait in its                          \
          backlog (ENet walks a peer's whole queue on every flush) */

/* A sealed packet waiting in a connection's backlog for room in ENet. */
typedef struct held {
    struct held *next;
    ENetPacket *p;
    uint8_t channel;
} held;

_Static_assert(sizeof(ENetProtocolConnect) == 48, "kn_secure assumes ENet's 48-byte CONNECT");

typedef struct conn {
    ENetPeer *peer;
    uint32_t gen;
    kn_conn_state state;
    bool opened;           /* on_open was called, so on_close must be */
    bool sealed;           /* keys agreed: every packet is sealed and opened */
    bool counted_addr;     /* counted in per_address */
    uint32_t ip;           /* network order */
    uint32_t violations;   /* leaky bucket level, see count_violation */
    int64_t violations_ms; /* when the level last leaked */
    uint32_t close_reason;
    int64_t opened_ms, last_recv_ms, close_deadline_ms;
    uint32_t rate_drops;
    int64_t rate_window_ms, last_rate_error_ms;
    kn_bucket ctl_msgs, ctl_bytes, match_msgs, match_bytes;
    uint32_t pending; /* sealed packets handed to ENet that it has not destroyed yet (sent
                         if unreliable, acknowledged if reliable): see room_for */
    held *backlog_head, *backlog_tail; /* sealed, in order, not yet handed to ENet */
    uint32_t backlog_len;
    bool drain_listed; /* its id is in net->drain */
    kn_crypt crypt;
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
    kn_net_batch *batch; /* NULL: ENet's own socket calls */
    kn_conn_id *drain;   /* connections with a backlog (ids: a stale one is dropped) */
    size_t n_drain, drain_cap;
    conn *conns;
    int wake_fd;
    atomic_int stop_requested;
    bool stopping; /* net thread: shutdown begun, refuse new connections */
    int64_t next_timer_ms;
    int64_t now_ms; /* cached at the start of each round */

    uint8_t server_pk[KN_KEY_SIZE], server_sk[KN_KEY_SIZE];
    kn_net_shared *shared;
    bool own_shared;
    kn_bucket cookie_replies;
    size_t handshaking;                  /* connections in HANDSHAKE */
    uint8_t *open_buf;                   /* plaintext of the packet being delivered */
    int64_t load_since_us, load_busy_us; /* the current one-second window */
    atomic_bool overloaded;

    /* The thread that owns the net: kn_net_run's, then kn_net_destroy's. */
    pthread_t owner;
    atomic_bool owned;

    pthread_mutex_t outbox_lock;
    outbox_item *outbox_head, *outbox_tail;
    atomic_size_t outbox_len;
    /* Items run and kept for reuse (under outbox_lock), so posts made at a
     * steady rate (completions, match batches) allocate nothing. */
    outbox_item *spare;
    size_t n_spare;

    struct {
        atomic_uint_fast64_t connections_total, connections_current, packets_in, packets_out,
            bytes_in, bytes_out, refused_version, timeouts_auth, timeouts_idle, timeouts_handshake,
            violations, cookies_issued, connects_bad_cookie, connects_busy, stray_datagrams,
            handshakes_ok, handshakes_failed, packets_rejected, packets_replayed, rate_limited,
            refused_address, unreliable_dropped, queue_full_closes, rounds, overloaded_seconds,
            busy_permille, datagrams_sent, send_calls, datagrams_received, recv_calls,
            backlogged;
    } st;
};

/* Shared by the nets of one port. */
struct kn_net_shared {
    uint8_t cookie_secret[KN_COOKIE_SECRET_SIZE]; /* fresh each start */
    pthread_mutex_t lock;
    kn_map per_address; /* ip | 1 << 32 -> count; under lock */
};

int kn_net_shared_create(kn_net_shared **out)
{
    kn_net_shared *s = kn_calloc(1, sizeof *s);
    *out = s;
    if (!s) return KN_ERR_NOMEM;
    kn_crypto_random(s->cookie_secret, sizeof s->cookie_secret);
    pthread_mutex_init(&s->lock, NULL);
    kn_map_init(&s->per_address);
    return KN_OK;
}

void kn_net_shared_destroy(kn_net_shared *s)
{
    if (!s) return;
    kn_map_deinit(&s->per_address);
    pthread_mutex_destroy(&s->lock);
    kn_crypto_wipe(s->cookie_secret, sizeof s->cookie_secret);
    kn_free(s);
}

#define STAT_ADD(net, field, n)                                                                    \
    atomic_fetch_add_explicit(&(net)->st.field, (n), memory_order_relaxed)

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
        .violation_leak_ms = 5000,
        .secure = true,
        .max_handshakes = 256,
        .handshake_timeout_ms = 5000,
        .max_per_address = 32,
        .control_rates = {30, 60, 32768, 65536},
        .match_rates = {120, 240, 131072, 262144},
        .max_rate_drops = 100,
        .max_queued = 1024,
        .socket_buffer = 4 << 20,
        .overload_busy = 0.9,
        .batch_syscalls = true,
    };
}

int kn_net_global_init(void)
{
    return kn_net_alloc_init() == 0 ? KN_OK : KN_ERR_IO;
}

void kn_net_global_deinit(void)
{
    enet_deinitialize();
}

/* --- ids and slots ------------------------------------------------------ */

static kn_conn_id make_id(const kn_net *net, uint32_t slot, uint32_t gen)
{
    return ((uint64_t)gen << 32) | ((uint64_t)net->cfg.shard << 16) | slot;
}

static conn *lookup(const kn_net *net, kn_conn_id id)
{
    uint32_t slot = (uint16_t)id, gen = (uint32_t)(id >> 32);
    if (!net->conns || slot >= net->cfg.max_connections || kn_conn_shard(id) != net->cfg.shard)
        return NULL;
    conn *c = &net->conns[slot];
    return (c->state != KN_CONN_FREE && c->gen == gen) ? c : NULL;
}

static uint32_t slot_of(const kn_net *net, const ENetPeer *peer)
{
    return (uint32_t)(peer - net->host->peers);
}

static kn_conn_id id_of(const kn_net *net, const conn *c)
{
    return make_id(net, (uint32_t)(c - net->conns), c->gen);
}

/* The one writer of conn->state; asserts every legal transition and keeps
 * the count of connections in the handshake. */
static void set_state(kn_net *net, conn *c, kn_conn_state to)
{
    switch (to) {
    case KN_CONN_FREE:
        break; /* from any state, when the peer is gone */
    case KN_CONN_HANDSHAKE:
        assert(c->state == KN_CONN_FREE);
        break;
    case KN_CONN_OPEN:
        assert(c->state == KN_CONN_HANDSHAKE);
        break;
    case KN_CONN_AUTHENTICATED:
        assert(c->state == KN_CONN_OPEN || c->state == KN_CONN_AUTHENTICATED);
        break;
    case KN_CONN_CLOSING:
        assert(c->state != KN_CONN_FREE);
        break;
    }
    if (c->state == KN_CONN_HANDSHAKE && to != KN_CONN_HANDSHAKE) net->handshaking--;
    if (to == KN_CONN_HANDSHAKE) net->handshaking++;
    c->state = to;
}

/* --- ENet's receive intercept: cookies and admission ----------------------- */

/* ENet gives the intercept no user pointer; the net thread sets this. */
static _Thread_local kn_net *intercept_net;

static void answer_cookie(kn_net *net, ENetHost *host, uint8_t version)
{
    /* The reply is a third of the request, but still cap what we reflect. */
    if (!kn_bucket_take(&net->cookie_replies, 1, net->now_ms)) {
        STAT_ADD(net, connects_busy, 1);
        return;
    }
    uint8_t reply[KN_COOKIE_REPLY_SIZE];
    if (atomic_load_explicit(&net->overloaded, memory_order_relaxed)) {
        /* New connections wait (the client asks again) while we catch up. */
        kn_cookie_reply_build(reply, version, KN_COOKIE_BUSY, 0);
        STAT_ADD(net, connects_busy, 1);
    } else if (version != net->cfg.protocol_version) {
        kn_cookie_reply_build(reply, (uint8_t)net->cfg.protocol_version, KN_COOKIE_BAD_VERSION, 0);
        STAT_ADD(net, refused_version, 1);
    } else {
        uint32_t cookie = kn_cookie_issue(net->shared->cookie_secret, host->receivedAddress.host,
                                          host->receivedAddress.port, net->now_ms);
        kn_cookie_reply_build(reply, version, KN_COOKIE_OK, cookie);
        STAT_ADD(net, cookies_issued, 1);
    }
    ENetBuffer b = {.data = reply, .dataLength = sizeof reply};
    enet_socket_send(host->socket, &host->receivedAddress, &b, 1);
}

/* Sees every datagram before ENet parses it. Returns 1 to swallow it. */
static int ENET_CALLBACK intercept(ENetHost *host, ENetEvent *event)
{
    (void)event;
    kn_net *net = intercept_net;
    if (!net) return 0;
    const uint8_t *d = host->receivedData;
    size_t len = host->receivedDataLength;
    uint8_t version;
    if (kn_cookie_request_parse(d, len, &version) == KN_OK) {
        answer_cookie(net, host, version);
        return 1;
    }
    uint32_t cookie;
    int kind = kn_enet_connect_data(d, len, &cookie);
    if (kind == 0) return 0; /* for an existing peer: ENet's business */
    if (kind < 0) {
        STAT_ADD(net, stray_datagrams, 1);
        return 1;
    }
    /* A CONNECT: no peer slot exists yet, and none will without a cookie. */
    if (!kn_cookie_check(net->shared->cookie_secret, host->receivedAddress.host,
                         host->receivedAddress.port, net->now_ms, cookie)) {
        STAT_ADD(net, connects_bad_cookie, 1);
        return 1;
    }
    if (net->handshaking >= net->cfg.max_handshakes) {
        STAT_ADD(net, connects_busy, 1);
        return 1;
    }
    return 0;
}

/* --- create / destroy --------------------------------------------------- */

/* The *FORCE options pass the kernel's rmem_max/wmem_max cap when we have
 * CAP_NET_ADMIN; otherwise the plain ones get what the cap allows. */
static void size_socket(int fd, int bytes)
{
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    int got = 0;
    socklen_t len = sizeof got;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len);
    KN_INFO("udp socket receive buffer %d bytes (asked %d)", got, bytes);
}

/* SO_REUSEPORT, then bind: every net of the port does this, the kernel
 * spreads clients over their sockets by source address and port. */
static int bind_shared(ENetHost *host, const ENetAddress *addr)
{
    int one = 1;
    if (setsockopt(host->socket, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) return -1;
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(addr->port), .sin_addr.s_addr = addr->host};
    if (bind(host->socket, (struct sockaddr *)&sin, sizeof sin) != 0) return -1;
    return enet_socket_get_address(host->socket, &host->address);
}

int kn_net_create(const kn_net_config *cfg, const kn_net_handler *handler, kn_net **out)
{
    *out = NULL;
    if (cfg->max_connections == 0 || cfg->max_connections > ENET_PROTOCOL_MAXIMUM_PEER_ID)
        return KN_ERR_INVALID_ARGUMENT;
    if (cfg->secure && (!cfg->server_pk || !cfg->server_sk)) return KN_ERR_INVALID_ARGUMENT;
    kn_net *net = kn_calloc(1, sizeof *net);
    if (!net) return KN_ERR_NOMEM;
    net->cfg = *cfg;
    net->handler = *handler;
    net->wake_fd = -1;
    pthread_mutex_init(&net->outbox_lock, NULL);
    int rc = KN_ERR_NOMEM;
    net->cfg.bind = NULL; /* not kept: only used here */
    net->cfg.server_pk = net->cfg.server_sk = NULL;
    net->cfg.shared = NULL;
    if (cfg->server_pk) memcpy(net->server_pk, cfg->server_pk, KN_KEY_SIZE);
    if (cfg->server_sk) memcpy(net->server_sk, cfg->server_sk, KN_KEY_SIZE);
    net->shared = cfg->shared;
    if (!net->shared) {
        if (kn_net_shared_create(&net->shared)) goto fail;
        net->own_shared = true;
    }
    kn_bucket_init(&net->cookie_replies, COOKIE_REPLIES_PER_SEC, COOKIE_REPLIES_PER_SEC, 0);
    net->conns = kn_calloc(cfg->max_connections, sizeof *net->conns);
    net->open_buf = kn_malloc(cfg->max_message_size + KN_SEAL_OVERHEAD);
    net->drain_cap = 2 * cfg->max_connections; /* a live and a stale id per slot at most */
    net->drain = kn_calloc(net->drain_cap, sizeof *net->drain);
    if (!net->conns || !net->open_buf || !net->drain) goto fail;
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
    /* Sharing the port: ENet creates the socket unbound, we bind it. */
    net->host = enet_host_create(cfg->reuse_port ? NULL : &addr, cfg->max_connections,
                                 KN_CHANNEL_COUNT, 0, 0);
    if (!net->host || (cfg->reuse_port && bind_shared(net->host, &addr) != 0)) {
        KN_ERROR("cannot bind UDP %s:%u: %s", cfg->bind ? cfg->bind : "*", cfg->port,
                 strerror(errno));
        rc = KN_ERR_IO;
        goto fail;
    }
    /* ENet's defaults (32 MiB each) let one peer make us buffer tens of MiB. */
    net->host->maximumPacketSize = cfg->max_message_size + KN_SEAL_OVERHEAD;
    net->host->maximumWaitingData = cfg->max_waiting_data;
    /* ENet's own per-address cap, a backstop behind ours (which gives a reason). */
    net->host->duplicatePeers = cfg->max_per_address ? cfg->max_per_address * 2 : 0xFFF;
    net->host->intercept = intercept;
    /* ENet asks for 256 KiB; a burst of connects or a busy core overflows
     * that and the kernel drops datagrams before ENet sees them. */
    if (cfg->socket_buffer > 0) size_socket(net->host->socket, cfg->socket_buffer);
    if (cfg->batch_syscalls && kn_net_batch_available()) {
        net->batch = kn_net_batch_new();
        if (!net->batch) goto fail;
    }
    if (cfg->shard == 0)
        KN_INFO("network: %s, ENet allocations %s",
                net->batch            ? "datagrams batched (sendmmsg, recvmmsg)"
                : cfg->batch_syscalls ? "datagrams one system call each (ENet's socket calls "
                                        "could not be interposed)"
                                      : "datagrams one system call each (batching off)",
                kn_net_alloc_pooled() ? "pooled" : "from malloc (sanitizer build)");
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

#define SPARE_KEEP 1024 /* outbox items kept for reuse */

static void run_items(kn_net *net, outbox_item *it)
{
    outbox_item *done = NULL;
    while (it) {
        outbox_item *next = it->next;
        if (it->fn) {
            it->fn(it->arg);
        } else {
            kn_net_send(net, it->id, it->channel, it->data, it->len, it->reliable);
            kn_free(it->data);
        }
        it->next = done;
        done = it;
        it = next;
    }
    /* Back to the spares in one locked splice; past the cap, freed. */
    pthread_mutex_lock(&net->outbox_lock);
    while (done && net->n_spare < SPARE_KEEP) {
        outbox_item *next = done->next;
        done->next = net->spare;
        net->spare = done;
        net->n_spare++;
        done = next;
    }
    pthread_mutex_unlock(&net->outbox_lock);
    while (done) {
        outbox_item *next = done->next;
        kn_free(done);
        done = next;
    }
}

/* A zeroed outbox item: a spare one, or a new one (NULL when out of memory). */
static outbox_item *item_new(kn_net *net)
{
    pthread_mutex_lock(&net->outbox_lock);
    outbox_item *it = net->spare;
    if (it) {
        net->spare = it->next;
        net->n_spare--;
    }
    pthread_mutex_unlock(&net->outbox_lock);
    if (!it) return kn_calloc(1, sizeof *it);
    memset(it, 0, sizeof *it);
    return it;
}

static void drop_backlog(conn *c);

void kn_net_destroy(kn_net *net)
{
    if (!net) return;
    net->owner = pthread_self(); /* what runs below runs here, as if on the net thread */
    atomic_store(&net->owned, true);
    /* Completions still queued must run once (they own memory); their sends miss. */
    if (net->conns) {
        for (size_t i = 0; i < net->cfg.max_connections; i++) {
            conn *c = &net->conns[i];
            if (c->state != KN_CONN_FREE && c->opened && net->handler.on_close)
                net->handler.on_close(net->handler.ud, id_of(net, c), c->data, 0);
            drop_backlog(c);
            kn_crypt_wipe(&c->crypt);
            c->state = KN_CONN_FREE;
        }
    }
    run_items(net, take_outbox(net));
    while (net->spare) {
        outbox_item *next = net->spare->next;
        kn_free(net->spare);
        net->spare = next;
    }
    kn_net_batch_free(net->batch);
    if (net->host) enet_host_destroy(net->host);
    if (net->wake_fd >= 0) close(net->wake_fd);
    pthread_mutex_destroy(&net->outbox_lock);
    if (net->own_shared) kn_net_shared_destroy(net->shared);
    kn_crypto_wipe(net->server_sk, sizeof net->server_sk);
    kn_free(net->open_buf);
    kn_free(net->drain);
    kn_free(net->conns);
    kn_free(net);
}

uint16_t kn_net_port(const kn_net *net)
{
    return net->host->address.port;
}

/* --- sending ------------------------------------------------------------ */

static void begin_close(kn_net *net, conn *c, uint32_t reason, int64_t now);

static bool sendable(const conn *c)
{
    return c && (c->state == KN_CONN_OPEN || c->state == KN_CONN_AUTHENTICATED ||
                 c->state == KN_CONN_HANDSHAKE);
}

/* Outgoing commands ENet holds for a plaintext peer, counted up to `cap`
 * (a walk of its list: plaintext is for debugging only). */
static size_t queued(ENetPeer *peer, size_t cap)
{
    size_t n = 0;
    for (ENetListIterator it = enet_list_begin(&peer->outgoingCommands);
         it != enet_list_end(&peer->outgoingCommands) && n < cap; it = enet_list_next(it))
        n++;
    return n;
}

/* The outbound policy: unreliable data is dropped once half the queue is
 * used; reliable data that cannot be queued closes the connection. */
static bool room_for(kn_net *net, conn *c, bool reliable)
{
    size_t cap = net->cfg.max_queued;
    if (!cap) return true;
    /* Sealed: a count kept as ENet takes and frees our packets, O(1). (A
     * walk of ENet's list per send made a room of 1,000 members quadratic:
     * two thirds of the server's CPU went to it.) */
    size_t n = c->sealed ? (size_t)c->pending + c->backlog_len : queued(c->peer, cap);
    if (!reliable && n >= cap / 2) {
        STAT_ADD(net, unreliable_dropped, 1);
        return false;
    }
    if (reliable && n >= cap) {
        STAT_ADD(net, queue_full_closes, 1);
        KN_WARN("conn %llx cannot keep up with reliable data; closing",
                (unsigned long long)id_of(net, c));
        begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_SEND_QUEUE_FULL, net->now_ms);
        return false;
    }
    return true;
}

/* ENet destroys a packet once it is sent (unreliable) or acknowledged
 * (reliable), or when the peer resets: one less pending for its connection.
 * Net thread (ENet runs there). A slot freed meanwhile was zeroed: the
 * count never goes below 0. */
static void packet_gone(ENetPacket *p)
{
    conn *c = p->userData;
    if (c && c->pending) c->pending--;
}

/* Hands sealed packet p to ENet for c. On a refusal p is destroyed and,
 * on an ordered channel, the connection closes (its counter is spent). */
static int hand_to_enet(kn_net *net, conn *c, uint8_t channel, ENetPacket *p)
{
    p->userData = c;
    p->freeCallback = packet_gone;
    c->pending++; /* a refused send destroys p below, which takes it back */
    if (enet_peer_send(c->peer, channel, p) != 0) {
        enet_packet_destroy(p);
        /* The counter is spent: on an ordered channel the peer could never
         * open anything after the gap, so the connection cannot go on. */
        if (kn_crypt_channel_ordered(channel))
            begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_SEND_QUEUE_FULL,
                        net->now_ms);
        return KN_ERR_IO;
    }
    return KN_OK;
}

/* Frees what waits in c's backlog (the connection is going). */
static void drop_backlog(conn *c)
{
    while (c->backlog_head) {
        held *h = c->backlog_head;
        c->backlog_head = h->next;
        enet_packet_destroy(h->p);
        kn_recycle_free(h);
    }
    c->backlog_tail = NULL;
    c->backlog_len = 0;
}

/* Puts c's id on the drain list (once per connection). */
static void list_for_drain(kn_net *net, conn *c)
{
    if (c->drain_listed) return;
    if (net->n_drain == net->drain_cap) { /* compact: drop ids of closed connections */
        size_t w = 0;
        for (size_t i = 0; i < net->n_drain; i++)
            if (lookup(net, net->drain[i])) net->drain[w++] = net->drain[i];
        net->n_drain = w;
    }
    net->drain[net->n_drain++] = id_of(net, c);
    c->drain_listed = true;
}

/* Each round, before the flush: backlogs move into ENet as its packets are
 * sent or acknowledged, keeping at most ENET_WINDOW per connection there. */
static void drain_backlogs(kn_net *net)
{
    size_t w = 0;
    for (size_t i = 0; i < net->n_drain; i++) {
        conn *c = lookup(net, net->drain[i]);
        if (!c || !c->drain_listed) continue;
        while (c->backlog_head && c->pending < ENET_WINDOW && sendable(c)) {
            held *h = c->backlog_head;
            c->backlog_head = h->next;
            if (!c->backlog_head) c->backlog_tail = NULL;
            c->backlog_len--;
            ENetPacket *p = h->p;
            uint8_t channel = h->channel;
            kn_recycle_free(h);
            if (hand_to_enet(net, c, channel, p) != KN_OK) break;
        }
        if (c->backlog_head && c->drain_listed && sendable(c))
            net->drain[w++] = net->drain[i];
        else
            c->drain_listed = false;
    }
    net->n_drain = w;
}

/* One sealed packet for one connection: into ENet while it holds fewer
 * than ENET_WINDOW of c's packets and nothing waits, else at the end of
 * c's backlog (sealed now, so the counters stay in send order). */
static int send_sealed(kn_net *net, conn *c, uint8_t channel, const uint8_t *data, size_t len,
                       bool reliable)
{
    ENetPacket *p =
        enet_packet_create(NULL, len + KN_SEAL_OVERHEAD, reliable ? ENET_PACKET_FLAG_RELIABLE : 0);
    if (!p) return KN_ERR_NOMEM;
    kn_crypt_seal(&c->crypt, channel, data, len, p->data);
    int rc;
    if (c->backlog_head || c->pending >= ENET_WINDOW) {
        held *h = kn_recycle_alloc(sizeof *h);
        if (!h) {
            enet_packet_destroy(p);
            if (kn_crypt_channel_ordered(channel))
                begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_SEND_QUEUE_FULL,
                            net->now_ms);
            return KN_ERR_NOMEM;
        }
        *h = (held){.p = p, .channel = channel};
        if (c->backlog_tail)
            c->backlog_tail->next = h;
        else
            c->backlog_head = h;
        c->backlog_tail = h;
        c->backlog_len++;
        list_for_drain(net, c);
        STAT_ADD(net, backlogged, 1);
        rc = KN_OK;
    } else {
        rc = hand_to_enet(net, c, channel, p);
    }
    if (rc == KN_OK) {
        STAT_ADD(net, packets_out, 1);
        STAT_ADD(net, bytes_out, len + KN_SEAL_OVERHEAD);
    }
    return rc;
}

/* Sends to one connection of a batch: sealed ones get their own packet,
 * plaintext ones share *shared (made on first use). 1 when sent, 0 when
 * not, KN_ERR_NOMEM when the shared packet cannot be made. */
static int send_in_batch(kn_net *net, conn *c, uint8_t channel, const uint8_t *data, size_t len,
                         bool reliable, ENetPacket **shared)
{
    if (!sendable(c) || !room_for(net, c, reliable)) return 0;
    if (c->sealed) return send_sealed(net, c, channel, data, len, reliable) == KN_OK;
    if (!*shared) {
        *shared = enet_packet_create(data, len, reliable ? ENET_PACKET_FLAG_RELIABLE : 0);
        if (!*shared) return KN_ERR_NOMEM;
    }
    /* enet_peer_send takes a reference only on success. */
    if (enet_peer_send(c->peer, channel, *shared) != 0) return 0;
    STAT_ADD(net, packets_out, 1);
    STAT_ADD(net, bytes_out, len);
    return 1;
}

int kn_net_send_many(kn_net *net, const kn_conn_id *ids, size_t n, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable)
{
    if (channel >= KN_CHANNEL_COUNT) return KN_ERR_INVALID_ARGUMENT;
    ENetPacket *shared = NULL; /* plaintext connections share one packet */
    size_t sent = 0;
    int rc = KN_OK;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        rc = send_in_batch(net, lookup(net, ids[i]), channel, data, len, reliable, &shared);
        if (rc > 0) sent++;
    }
    if (shared && shared->referenceCount == 0) enet_packet_destroy(shared);
    if (rc < 0) return rc;
    return sent ? KN_OK : KN_ERR_NOT_FOUND;
}

int kn_net_send_authenticated(kn_net *net, uint8_t channel, const uint8_t *data, size_t len,
                              bool reliable)
{
    if (channel >= KN_CHANNEL_COUNT) return KN_ERR_INVALID_ARGUMENT;
    ENetPacket *shared = NULL;
    size_t sent = 0;
    int rc = KN_OK;
    for (size_t i = 0; i < net->cfg.max_connections && rc >= 0; i++) {
        conn *c = &net->conns[i];
        if (c->state != KN_CONN_AUTHENTICATED) continue;
        rc = send_in_batch(net, c, channel, data, len, reliable, &shared);
        if (rc > 0) sent++;
    }
    if (shared && shared->referenceCount == 0) enet_packet_destroy(shared);
    if (rc < 0) return rc;
    return sent ? KN_OK : KN_ERR_NOT_FOUND;
}

int kn_net_send(kn_net *net, kn_conn_id id, uint8_t channel, const uint8_t *data, size_t len,
                bool reliable)
{
    return kn_net_send_many(net, &id, 1, channel, data, len, reliable);
}

/* An Error envelope from the transport itself (sealed when keys exist). */
static void send_error(kn_net *net, conn *c, int rc, const char *message)
{
    Kaos__V1__Error err;
    kn_envelope env;
    kn_envelope_error(&env, &err, 0, rc, message);
    uint8_t buf[256];
    if (kn_envelope_packed_size(&env) > sizeof buf) return;
    size_t n = kn_envelope_pack(&env, buf);
    kn_net_send(net, id_of(net, c), KN_CHANNEL_CONTROL, buf, n, true);
}

/* --- connection lifecycle ------------------------------------------------ */

static void begin_close(kn_net *net, conn *c, uint32_t reason, int64_t now)
{
    if (c->state == KN_CONN_CLOSING) return;
    set_state(net, c, KN_CONN_CLOSING);
    c->close_reason = reason;
    c->close_deadline_ms = now + CLOSE_LINGER_MS;
    if (reason == KAOS__V1__DISCONNECT_REASON__DISCONNECT_SEND_QUEUE_FULL) {
        /* Its queue will never drain: drop it, so the reason goes out now. */
        enet_peer_disconnect(c->peer, reason);
    } else {
        /* _later: responses already queued (an Error, say) still go out first. */
        enet_peer_disconnect_later(c->peer, reason);
    }
}

void kn_net_close(kn_net *net, kn_conn_id id, uint32_t reason)
{
    conn *c = lookup(net, id);
    if (c) begin_close(net, c, reason, kn_time_mono_ms());
}

static uint64_t addr_key(uint32_t ip)
{
    return (uint64_t)ip | (1ULL << 32);
}

/* The peer is gone: tell the layer above and free the slot. */
static void finish_close(kn_net *net, conn *c, uint32_t reason)
{
    if (c->opened && net->handler.on_close)
        net->handler.on_close(net->handler.ud, id_of(net, c), c->data, reason);
    if (c->opened) atomic_fetch_sub(&net->st.connections_current, 1);
    if (c->counted_addr) {
        kn_net_shared *sh = net->shared;
        pthread_mutex_lock(&sh->lock);
        uintptr_t n = (uintptr_t)kn_map_get(&sh->per_address, addr_key(c->ip));
        if (n <= 1)
            kn_map_del(&sh->per_address, addr_key(c->ip));
        else
            kn_map_put(&sh->per_address, addr_key(c->ip),
                       (void *)(n - 1)); /* no growth: cannot fail */
        pthread_mutex_unlock(&sh->lock);
    }
    if (c->peer) c->peer->data = NULL;
    drop_backlog(c);
    set_state(net, c, KN_CONN_FREE);
    uint32_t gen = c->gen + 1;
    kn_crypt_wipe(&c->crypt);
    memset(c, 0, sizeof *c);
    c->gen = gen ? gen : 1;
}

void kn_net_set_authenticated(kn_net *net, kn_conn_id id)
{
    conn *c = lookup(net, id);
    if (c && (c->state == KN_CONN_OPEN || c->state == KN_CONN_AUTHENTICATED))
        set_state(net, c, KN_CONN_AUTHENTICATED);
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

uint32_t kn_net_conn_ip(const kn_net *net, kn_conn_id id)
{
    const conn *c = lookup(net, id);
    return c ? c->ip : 0;
}

/* Violations fill a leaky bucket: each adds one, one leaks out every
 * violation_leak_ms, and the connection is closed when the level reaches
 * max_violations. A peer that sends a bad message now and then is never
 * closed; one that keeps at it faster than the leak is, after
 * max_violations in a burst. Only traffic that authenticated as the peer
 * (or, before the keys, came from it) reaches here: packets that fail to
 * open are dropped and counted without it (deliver), so a third party
 * replaying or forging packets cannot close someone else's connection. */
static bool count_violation(kn_net *net, conn *c)
{
    STAT_ADD(net, violations, 1);
    int64_t now = net->now_ms, leak = net->cfg.violation_leak_ms;
    if (leak > 0 && c->violations) {
        int64_t leaked = (now - c->violations_ms) / leak;
        c->violations = leaked >= (int64_t)c->violations ? 0 : c->violations - (uint32_t)leaked;
        c->violations_ms += leaked * leak;
    }
    if (!c->violations) c->violations_ms = now;
    if (++c->violations < net->cfg.max_violations) return false;
    KN_WARN("conn %llx closed after %u protocol violations", (unsigned long long)id_of(net, c),
            c->violations);
    begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_PROTOCOL_VIOLATION, net->now_ms);
    return true;
}

bool kn_net_violation(kn_net *net, kn_conn_id id)
{
    conn *c = lookup(net, id);
    return c ? count_violation(net, c) : true;
}

void kn_net_foreach(kn_net *net, void (*fn)(void *arg, kn_conn_id id, void *conn_data), void *arg)
{
    for (size_t i = 0; i < net->cfg.max_connections; i++) {
        conn *c = &net->conns[i];
        if (c->opened && c->state != KN_CONN_FREE && c->state != KN_CONN_CLOSING)
            fn(arg, id_of(net, c), c->data);
    }
}

static void init_buckets(const kn_net *net, conn *c, int64_t now)
{
    const kn_net_rates *r = &net->cfg.control_rates, *m = &net->cfg.match_rates;
    kn_bucket_init(&c->ctl_msgs, r->msgs_per_sec, r->msgs_burst, now);
    kn_bucket_init(&c->ctl_bytes, r->bytes_per_sec, r->bytes_burst, now);
    kn_bucket_init(&c->match_msgs, m->msgs_per_sec, m->msgs_burst, now);
    kn_bucket_init(&c->match_bytes, m->bytes_per_sec, m->bytes_burst, now);
}

static void handle_connect(kn_net *net, ENetEvent *ev, int64_t now)
{
    conn *c = &net->conns[slot_of(net, ev->peer)];
    assert(c->state == KN_CONN_FREE);
    if (c->gen == 0) c->gen = 1;
    c->peer = ev->peer;
    c->ip = ev->peer->address.host;
    c->opened_ms = c->last_recv_ms = now;
    ev->peer->data = c;
    /* No packet throttle: ENet drops a share of unreliable sends to a peer
     * whose ping round trip rose above its running mean by twice the
     * variance, and on a paced loop (acks go out once per round) that
     * happens on jitter alone, losing game snapshots on an idle network.
     * Deceleration 0 keeps the throttle at its limit; the peer receives the
     * same setting (THROTTLE_CONFIGURE), so its sends to us are not thinned
     * either. Rate limits and the send queue cap bound the traffic instead. */
    enet_peer_throttle_configure(ev->peer, ENET_PEER_PACKET_THROTTLE_INTERVAL,
                                 ENET_PEER_PACKET_THROTTLE_ACCELERATION, 0);
    if (net->cfg.ping_interval_ms) enet_peer_ping_interval(ev->peer, net->cfg.ping_interval_ms);
    set_state(net, c, KN_CONN_HANDSHAKE);
    init_buckets(net, c, now);
    if (net->stopping) {
        begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_SHUTDOWN, now);
        return;
    }
    kn_net_shared *sh = net->shared;
    pthread_mutex_lock(&sh->lock);
    uintptr_t n = (uintptr_t)kn_map_get(&sh->per_address, addr_key(c->ip));
    bool full = net->cfg.max_per_address && n >= net->cfg.max_per_address;
    if (!full && kn_map_put(&sh->per_address, addr_key(c->ip), (void *)(n + 1)) == KN_OK)
        c->counted_addr = true;
    pthread_mutex_unlock(&sh->lock);
    if (full) {
        STAT_ADD(net, refused_address, 1);
        begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_TOO_MANY_CONNECTIONS, now);
    }
}

/* HANDSHAKE -> OPEN: from now on the layer above knows the connection. */
static void open_conn(kn_net *net, conn *c)
{
    set_state(net, c, KN_CONN_OPEN);
    c->opened = true;
    STAT_ADD(net, connections_total, 1);
    STAT_ADD(net, connections_current, 1);
    if (net->handler.on_open) {
        char ip[64] = "?", address[80];
        enet_address_get_host_ip(&c->peer->address, ip, sizeof ip);
        snprintf(address, sizeof address, "%s:%u", ip, c->peer->address.port);
        c->data = net->handler.on_open(net->handler.ud, id_of(net, c), address);
    }
}

/* Both buckets of the channel group must allow it; persistent excess closes. */
static bool within_rate(kn_net *net, conn *c, uint8_t channel, size_t len, int64_t now)
{
    bool control = channel == KN_CHANNEL_CONTROL;
    kn_bucket *msgs = control ? &c->ctl_msgs : &c->match_msgs;
    kn_bucket *bytes = control ? &c->ctl_bytes : &c->match_bytes;
    if (kn_bucket_take(msgs, 1, now)) {
        if (kn_bucket_take(bytes, (double)len, now)) return true;
        msgs->tokens += 1; /* give back: the packet is refused anyway */
    }
    STAT_ADD(net, rate_limited, 1);
    if (now - c->rate_window_ms > RATE_WINDOW_MS) {
        c->rate_window_ms = now;
        c->rate_drops = 0;
    }
    if (++c->rate_drops > net->cfg.max_rate_drops) {
        KN_WARN("conn %llx closed: rate limit exceeded %u times in %d s",
                (unsigned long long)id_of(net, c), c->rate_drops, RATE_WINDOW_MS / 1000);
        begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_RATE_LIMITED, now);
    } else if (now - c->last_rate_error_ms >= 1000) {
        c->last_rate_error_ms = now; /* one error a second, not one per dropped packet */
        send_error(net, c, KN_ERR_RESOURCE_EXHAUSTED,
                   control ? "rate limited: too many requests"
                           : "rate limited: too much match data");
    }
    return false;
}

/* An OPEN or AUTHENTICATED connection's packet: open it, rate it, pass it up. */
static void deliver(kn_net *net, conn *c, uint8_t channel, const uint8_t *data, size_t len,
                    int64_t now)
{
    const uint8_t *plain = data;
    size_t plain_len = len;
    if (c->sealed) {
        int rc = len <= net->cfg.max_message_size + KN_SEAL_OVERHEAD
                     ? kn_crypt_open(&c->crypt, channel, data, len, net->open_buf, &plain_len)
                     : KN_ERR_TOO_LARGE;
        if (rc) {
            /* Tampered, replayed, out of order or not ours: never delivered,
             * and not held against the connection — anyone on the path can
             * send such packets, so they cost only the sender its bytes. */
            STAT_ADD(net, packets_rejected, 1);
            if (rc == KN_ERR_DATA_LOSS) STAT_ADD(net, packets_replayed, 1);
            KN_DEBUG("conn %llx: dropped packet on channel %u: %s",
                     (unsigned long long)id_of(net, c), channel, kn_err_text(rc));
            return;
        }
        plain = net->open_buf;
    }
    if (!within_rate(net, c, channel, plain_len, now)) return;
    net->handler.on_message(net->handler.ud, id_of(net, c), c->data, channel, plain, plain_len);
}

/* The first packet of a connection must be the hello (or, with security
 * off, may be a plaintext envelope). */
static void handshake(kn_net *net, conn *c, uint8_t channel, const uint8_t *data, size_t len,
                      int64_t now)
{
    if (channel == KN_CHANNEL_CONTROL && kn_hello_magic(data, len)) {
        uint8_t welcome[KN_WELCOME_SIZE];
        int rc =
            kn_hs_server_answer(net->server_pk, net->server_sk, (uint8_t)net->cfg.protocol_version,
                                !net->cfg.secure, data, len, welcome, &c->crypt);
        if (rc == KN_ERR_MALFORMED) {
            STAT_ADD(net, handshakes_failed, 1);
            send_error(net, c, KN_ERR_INVALID_ARGUMENT, "malformed hello");
            begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_HANDSHAKE_FAILED, now);
            return;
        }
        kn_net_send(net, id_of(net, c), KN_CHANNEL_CONTROL, welcome, sizeof welcome, true);
        if (rc == KN_ERR_VERSION) {
            STAT_ADD(net, refused_version, 1);
            begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_UNSUPPORTED_VERSION, now);
            return;
        }
        c->sealed = net->cfg.secure;
        STAT_ADD(net, handshakes_ok, 1);
        open_conn(net, c);
        return;
    }
    if (!net->cfg.secure) { /* a plaintext client, allowed in this mode */
        open_conn(net, c);
        if (c->state == KN_CONN_OPEN) deliver(net, c, channel, data, len, now);
        return;
    }
    STAT_ADD(net, handshakes_failed, 1);
    send_error(net, c, KN_ERR_FAILED_PRECONDITION,
               "transport security is required: start with the handshake hello");
    begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_HANDSHAKE_FAILED, now);
}

static void handle_receive(kn_net *net, ENetEvent *ev, int64_t now)
{
    conn *c = ev->peer->data;
    STAT_ADD(net, packets_in, 1);
    STAT_ADD(net, bytes_in, ev->packet->dataLength);
    if (c && c->state != KN_CONN_CLOSING && c->state != KN_CONN_FREE) {
        c->last_recv_ms = now;
        if (c->state == KN_CONN_HANDSHAKE)
            handshake(net, c, ev->channelID, ev->packet->data, ev->packet->dataLength, now);
        else
            deliver(net, c, ev->channelID, ev->packet->data, ev->packet->dataLength, now);
    }
    enet_packet_destroy(ev->packet);
}

static void handle_event(kn_net *net, ENetEvent *ev, int64_t now)
{
    switch (ev->type) {
    case ENET_EVENT_TYPE_CONNECT:
        handle_connect(net, ev, now);
        break;
    case ENET_EVENT_TYPE_RECEIVE:
        handle_receive(net, ev, now);
        break;
    case ENET_EVENT_TYPE_DISCONNECT: {
        conn *c = ev->peer->data;
        if (c) finish_close(net, c, c->state == KN_CONN_CLOSING ? c->close_reason : ev->data);
        break;
    }
    case ENET_EVENT_TYPE_NONE:
        break;
    }
}

/* Handshake, auth and idle deadlines, and peers that never acknowledged our disconnect. */
static void run_timers(kn_net *net, int64_t now)
{
    for (size_t i = 0; i < net->cfg.max_connections; i++) {
        conn *c = &net->conns[i];
        switch (c->state) {
        case KN_CONN_HANDSHAKE:
            if (now - c->opened_ms >= net->cfg.handshake_timeout_ms) {
                STAT_ADD(net, timeouts_handshake, 1);
                send_error(net, c, KN_ERR_FAILED_PRECONDITION,
                           "handshake timed out: send the hello first");
                begin_close(net, c, KAOS__V1__DISCONNECT_REASON__DISCONNECT_HANDSHAKE_FAILED, now);
            }
            break;
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
        case KN_CONN_FREE:
            break;
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
    int64_t now = net->now_ms = kn_time_mono_ms();
    intercept_net = net;
    if (net->batch) kn_net_batch_arm(net->batch, net->host->socket);
    ENetEvent ev;
    /* One service call (it walks every peer slot), then only queued events. */
    int r = enet_host_service(net->host, &ev, 0);
    while (r > 0) {
        handle_event(net, &ev, now);
        r = enet_host_check_events(net->host, &ev);
    }
    drain_wake(net);
    run_items(net, take_outbox(net));
    drain_backlogs(net);
    if (now >= net->next_timer_ms) {
        net->next_timer_ms = now + TIMER_PERIOD_MS;
        /* Not every round: it walks every peer slot. A retry wait ENet doubled
         * stays doubled for at most a timer period. */
        kn_enet_cap_rto(net->host, KN_ENET_RTO_CAP_MS);
        run_timers(net, now);
    }
    enet_host_flush(net->host);
    if (net->batch) {
        kn_net_batch_disarm(net->batch);
        kn_net_batch_stats b = kn_net_batch_stats_of(net->batch);
        atomic_store_explicit(&net->st.datagrams_sent, b.datagrams_sent, memory_order_relaxed);
        atomic_store_explicit(&net->st.send_calls, b.send_calls, memory_order_relaxed);
        atomic_store_explicit(&net->st.datagrams_received, b.datagrams_received,
                              memory_order_relaxed);
        atomic_store_explicit(&net->st.recv_calls, b.recv_calls, memory_order_relaxed);
    }
    STAT_ADD(net, rounds, 1);
}

/* Sleep out the rest of the minimum round, then wait for work. */
static void wait_for_work(kn_net *net, int64_t round_start_us)
{
    /* Datagrams already read (recvmmsg) and not yet served: no sleep. */
    if (net->batch && kn_net_batch_rx_pending(net->batch)) return;
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

/* Adds one round's work to the window; each full second decides overload. */
static void account_load(kn_net *net, int64_t start_us, int64_t end_us)
{
    if (!net->load_since_us) net->load_since_us = start_us;
    net->load_busy_us += end_us - start_us;
    int64_t span = end_us - net->load_since_us;
    if (span < 1000000) return;
    double busy = (double)net->load_busy_us / (double)span;
    atomic_store_explicit(&net->st.busy_permille, (uint64_t)(busy * 1000), memory_order_relaxed);
    bool over = net->cfg.overload_busy > 0 && busy >= net->cfg.overload_busy;
    if (over) STAT_ADD(net, overloaded_seconds, 1);
    if (over != atomic_load(&net->overloaded)) {
        atomic_store(&net->overloaded, over);
        if (over)
            KN_WARN("network thread %u overloaded (busy %.0f%% of the last second): new "
                    "connections wait, new match joins are refused",
                    net->cfg.shard, busy * 100);
        else
            KN_INFO("network thread %u no longer overloaded (busy %.0f%%)", net->cfg.shard,
                    busy * 100);
    }
    net->load_since_us = end_us;
    net->load_busy_us = 0;
}

bool kn_net_overloaded(const kn_net *net)
{
    return atomic_load_explicit(&net->overloaded, memory_order_relaxed);
}

int kn_net_run(kn_net *net)
{
    net->owner = pthread_self();
    atomic_store(&net->owned, true);
    while (!atomic_load(&net->stop_requested)) {
        int64_t start = kn_time_mono_us();
        round_once(net);
        account_load(net, start, kn_time_mono_us());
        wait_for_work(net, start);
    }

    /* Shutdown: stop accepting, let the layer above finish in-flight work. */
    KN_INFO("shutting down: draining for up to %lld ms", (long long)net->cfg.shutdown_grace_ms);
    net->stopping = true;
    if (net->handler.on_shutdown)
        net->handler.on_shutdown(net->handler.ud, net->cfg.shutdown_grace_ms);
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
    intercept_net = NULL;
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

bool kn_net_on_thread(const kn_net *net)
{
    return atomic_load(&net->owned) && pthread_equal(net->owner, pthread_self());
}

static int push(kn_net *net, outbox_item *it)
{
    pthread_mutex_lock(&net->outbox_lock);
    if (net->outbox_tail)
        net->outbox_tail->next = it;
    else
        net->outbox_head = it;
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
    outbox_item *it = item_new(net);
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
    outbox_item *it = item_new(net);
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
    GET(timeouts_handshake);
    GET(violations);
    GET(cookies_issued);
    GET(connects_bad_cookie);
    GET(connects_busy);
    GET(stray_datagrams);
    GET(handshakes_ok);
    GET(handshakes_failed);
    GET(packets_rejected);
    GET(packets_replayed);
    GET(rate_limited);
    GET(refused_address);
    GET(unreliable_dropped);
    GET(queue_full_closes);
    GET(rounds);
    GET(overloaded_seconds);
    GET(busy_permille);
    GET(datagrams_sent);
    GET(send_calls);
    GET(datagrams_received);
    GET(recv_calls);
    GET(backlogged);
#undef GET
}
