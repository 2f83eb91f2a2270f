/* kn_net: the transport. Owns the ENet host, the connection table and the
 * net thread's loop; the only module that includes ENet.
 *
 * Threads: kn_net_run turns the calling thread into the net thread. Every
 * function marked "net thread" may only be called from it (from inside the
 * handler callbacks, which all run there). kn_net_post*, kn_net_stop and
 * kn_net_stats are safe from any thread; kn_net_stop is also async-signal-safe.
 *
 * Connections are named by kn_conn_id: slot (low 16 bits), the net's shard
 * index (next 16 bits) and a generation (high 32 bits) that changes on every
 * reuse of the slot, so a message for a connection that has gone is dropped,
 * never delivered to a newcomer.
 *
 * Shards. One ENet host holds at most 4095 peers and one thread serves it.
 * Several nets, each run by its own network thread, can serve one UDP port:
 * each binds its socket with SO_REUSEPORT (reuse_port) and the kernel
 * spreads clients over them by source address and port, so every packet of
 * a client reaches the same net. Each net gets its own shard index, which
 * its connection ids carry (kn_conn_shard): a net treats another shard's id
 * as a connection that has gone. The nets of one port share a kn_net_shared:
 * the cookie secret (a cookie one issues, every one honours) and the count
 * of connections per source address.
 *
 * Loop (paced, because every enet_host_service walks all peer slots):
 *   service once -> drain queued events -> drain the outbox -> timers every
 *   100 ms -> flush once -> wait for the socket or the wake-up fd, but no
 *   sooner than 1 ms after the round began.
 *
 * Connection states: HANDSHAKE (ENet connected; waiting for the hello) ->
 * OPEN (keys agreed; only pre-auth messages allowed) -> AUTHENTICATED ->
 * CLOSING. The layer above hears of a connection only once it is OPEN.
 *
 * Transport security (kn_secure, docs/protocol.md): the receive intercept
 * answers cookie requests and drops every CONNECT without a valid cookie
 * before ENet allocates a peer; the hello/welcome handshake runs here; every
 * packet of a secured connection is sealed on send and opened on receive
 * here, so the layers above only ever see plaintext. Limits enforced here:
 * packets per second and bytes per second per connection (control and match
 * channels separately), connections per source address, connections still
 * in the handshake, and the outbound queue per connection (unreliable data
 * is dropped first when it grows; when even reliable data cannot be queued
 * the connection is closed with SEND_QUEUE_FULL — reliable data is never
 * dropped silently).
 *
 * Overload. The loop measures how much of each second it spends working
 * (rounds, not the paced sleep). A net busy `overload_busy` or more of the
 * last second is overloaded until a second under it: it answers cookie
 * requests with BUSY (new connections wait, the ones in keep being served)
 * and the layer above sheds new joins (kn_net_overloaded). */
#ifndef KN_NET_H
#define KN_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t kn_conn_id; /* 0 = no connection */

/* The shard (net) a connection belongs to. */
static inline uint16_t kn_conn_shard(kn_conn_id id)
{
    return (uint16_t)(id >> 16);
}

/* What the nets serving one port share (any thread). */
typedef struct kn_net_shared kn_net_shared;
int kn_net_shared_create(kn_net_shared **out);
void kn_net_shared_destroy(kn_net_shared *s); /* accepts NULL; after every net using it */

typedef enum kn_conn_state {
    KN_CONN_FREE = 0,
    KN_CONN_HANDSHAKE,
    KN_CONN_OPEN,
    KN_CONN_AUTHENTICATED,
    KN_CONN_CLOSING,
} kn_conn_state;

typedef struct kn_net kn_net;

/* Callbacks into the layer above; all run on the net thread. */
typedef struct kn_net_handler {
    /* A connection is OPEN. Return a per-connection pointer kept for it
     * (NULL allowed) — retrieved with kn_net_conn_data. */
    void *(*on_open)(void *ud, kn_conn_id id, const char *address);
    /* One packet. `data` is valid only during the call. */
    void (*on_message)(void *ud, kn_conn_id id, void *conn_data, uint8_t channel,
                       const uint8_t *data, size_t len);
    /* The connection is gone (either side); free conn_data here. */
    void (*on_close)(void *ud, kn_conn_id id, void *conn_data, uint32_t reason);
    /* Shutdown has begun: stop taking work, tell clients. Called once. */
    void (*on_shutdown)(void *ud, int64_t grace_ms);
    /* During shutdown: true once in-flight work is finished. */
    bool (*drained)(void *ud);
    /* Every ~100 ms, for periodic work of the layer above. */
    void (*on_tick)(void *ud, int64_t now_ms);
    void *ud;
} kn_net_handler;

/* Per-connection rates; 0 = unlimited. */
typedef struct kn_net_rates {
    double msgs_per_sec, msgs_burst;
    double bytes_per_sec, bytes_burst;
} kn_net_rates;

typedef struct kn_net_config {
    const char *bind;           /* "0.0.0.0", "127.0.0.1", ... */
    uint16_t port;              /* 0 = any (tests); see kn_net_port */
    size_t max_connections;     /* ENet peer slots, <= 4095 */
    size_t max_message_size;    /* ENet maximumPacketSize */
    size_t max_waiting_data;    /* ENet maximumWaitingData */
    uint32_t protocol_version;  /* connects announcing another are refused */
    int64_t auth_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t shutdown_grace_ms;
    uint32_t max_violations;    /* bad messages from the peer before it is closed (a leaky
                                   bucket: see kn_net_violation) */
    int64_t violation_leak_ms;  /* one violation is forgiven every this long; 0 = never */
    bool secure;                /* transport security required (false: plaintext allowed) */
    const uint8_t *server_pk;   /* 32-byte X25519 static key pair (copied) */
    const uint8_t *server_sk;
    size_t max_handshakes;      /* connections in HANDSHAKE at once */
    int64_t handshake_timeout_ms;
    size_t max_per_address;     /* connections from one IP address */
    kn_net_rates control_rates; /* channel 0 */
    kn_net_rates match_rates;   /* channels 1 and 2 */
    uint32_t max_rate_drops;    /* rate-limited packets within 10 s before RATE_LIMITED */
    size_t max_queued;          /* packets per peer ENet holds (queued, or reliable and not yet
                                   acknowledged) before SEND_QUEUE_FULL */
    int socket_buffer;          /* SO_RCVBUF/SO_SNDBUF bytes (the kernel may cap it) */
    uint16_t shard;             /* this net's index among the nets of the port */
    bool reuse_port;            /* bind with SO_REUSEPORT (several nets, one port) */
    kn_net_shared *shared;      /* NULL: the net keeps its own */
    double overload_busy;       /* busy fraction of a second that sheds new work (0 = never) */
    uint32_t ping_interval_ms;  /* ENet's keepalive ping after this much silence (0 = 500) */
    bool batch_syscalls;        /* one sendmmsg per round, recvmmsg under ENet (when the
                                   interposition works: see net_batch.c); default on */
} kn_net_config;

typedef struct kn_net_stats {
    uint64_t connections_total;
    uint64_t connections_current;
    uint64_t packets_in, packets_out, bytes_in, bytes_out;
    uint64_t refused_version, timeouts_auth, timeouts_idle, timeouts_handshake, violations;
    uint64_t cookies_issued, connects_bad_cookie, connects_busy, stray_datagrams;
    uint64_t handshakes_ok, handshakes_failed, rate_limited;
    uint64_t packets_rejected; /* sealed packets that did not open (dropped, no violation) */
    uint64_t packets_replayed; /* of those: replays and stale counters */
    uint64_t refused_address, unreliable_dropped, queue_full_closes;
    uint64_t rounds;
    uint64_t overloaded_seconds; /* one-second windows spent overloaded */
    uint64_t busy_permille;      /* of the last full second (a gauge) */
    /* Batched socket calls (0 when batching is off): datagrams through
     * sendmmsg/recvmmsg and the system calls that carried them. */
    uint64_t datagrams_sent, send_calls, datagrams_received, recv_calls;
    uint64_t backlogged; /* sealed packets that waited in a connection's backlog for ENet */
} kn_net_stats;

void kn_net_config_default(kn_net_config *cfg);
/* Creates and binds the host (needs enet initialized: kn_net_global_init).
 * max_handshakes and max_connections are this net's own; max_per_address
 * counts over every net of the shared state. */
int kn_net_create(const kn_net_config *cfg, const kn_net_handler *handler, kn_net **out);
void kn_net_destroy(kn_net *net); /* accepts NULL; after kn_net_run returned */

/* Once per process, before kn_net_create. */
int kn_net_global_init(void);
void kn_net_global_deinit(void);

/* The bound UDP port (useful with port 0). */
uint16_t kn_net_port(const kn_net *net);

/* Runs the loop until kn_net_stop, then shuts down gracefully:
 * on_shutdown, drain (until drained() or the grace period), disconnect
 * everyone with reason SHUTDOWN, wait briefly for their acknowledgements. */
int kn_net_run(kn_net *net);
void kn_net_stop(kn_net *net); /* any thread, signal handlers included */

/* --- net thread only --------------------------------------------------- */
/* Copies data. Unknown or closing connections: KN_ERR_NOT_FOUND. */
int kn_net_send(kn_net *net, kn_conn_id id, uint8_t channel, const uint8_t *data, size_t len,
                bool reliable);
/* Same bytes to many connections, one packet allocation. Skips ids that are gone. */
int kn_net_send_many(kn_net *net, const kn_conn_id *ids, size_t n, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable);
/* Same bytes to every AUTHENTICATED connection of this net, one packet
 * allocation (sealed ones each get their own). KN_ERR_NOT_FOUND when none. */
int kn_net_send_authenticated(kn_net *net, uint8_t channel, const uint8_t *data, size_t len,
                              bool reliable);
/* Graceful disconnect after queued packets are delivered; reason reaches the client. */
void kn_net_close(kn_net *net, kn_conn_id id, uint32_t reason);
void kn_net_set_authenticated(kn_net *net, kn_conn_id id);
kn_conn_state kn_net_conn_state(const kn_net *net, kn_conn_id id);
void *kn_net_conn_data(const kn_net *net, kn_conn_id id);
/* Counts a malformed or forbidden message of a connection (one that opened
 * correctly: packets that fail to open are dropped here and never count).
 * Violations fill a leaky bucket that loses one every violation_leak_ms;
 * the connection is closed with PROTOCOL_VIOLATION when it reaches
 * max_violations. Returns true if the connection was closed. */
bool kn_net_violation(kn_net *net, kn_conn_id id);
/* The connection's source IPv4 address in network order (0 if gone). */
uint32_t kn_net_conn_ip(const kn_net *net, kn_conn_id id);
/* Calls fn for every live connection. */
void kn_net_foreach(kn_net *net, void (*fn)(void *arg, kn_conn_id id, void *conn_data), void *arg);

/* --- any thread -------------------------------------------------------- */
/* Queue bytes for a connection; takes ownership of data (kn_malloc'd) even on failure. */
int kn_net_post(kn_net *net, kn_conn_id id, uint8_t channel, uint8_t *data, size_t len,
                bool reliable);
/* Run fn(arg) on the net thread (completions from workers). If the net has
 * already stopped, fn still runs exactly once, from kn_net_destroy. */
int kn_net_post_fn(kn_net *net, void (*fn)(void *arg), void *arg);
void kn_net_stats_get(kn_net *net, kn_net_stats *out);
/* Whether the caller is the net's thread (kn_net_run's; kn_net_destroy's
 * once it runs), so net-thread functions may be called directly. */
bool kn_net_on_thread(const kn_net *net);
/* Whether the net is overloaded now (see Overload above). */
bool kn_net_overloaded(const kn_net *net);

#endif
