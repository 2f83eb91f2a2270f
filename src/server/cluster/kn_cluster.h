/* kn_cluster: one node's membership of a KaosNet cluster and its end of the
 * bus (docs/cluster.md). Several nodes share one Postgres and one NATS; this
 * module keeps the table of peers (heartbeats, dead-node detection), carries
 * what must reach other nodes (a send to a user, to everyone, the end of a
 * user's sessions, a single-session bind, a shared stream's changes and
 * sends, a leaderboard index entry) as versioned protobuf messages
 * (proto/cluster.proto), and hands what arrives to this node through the
 * hooks the composition root gives it. It uses only the stream module's
 * types (kn_stream, kn_presence): the root wires it to kn_out
 * (kn_out_remote), the session registry (kn_sessions_remote), the tracker
 * (kn_tracker_remote), the leaderboards (kn_leaderboard_peers) and the HTTP
 * counters.
 *
 * The bus is a small vtable (kn_cluster_bus): NATS in the server
 * (kn_cluster_nats_open, the only code that includes the NATS client), a
 * fake in the unit tests. Time is injected: kn_cluster_tick(now) runs the
 * heartbeats and the sweep of dead peers; kn_cluster_start runs it on a
 * thread of its own with the monotonic clock.
 *
 * Subjects (docs/cluster.md has the table):
 *   kaos.v1.node.heartbeat   Heartbeat, Leave           every node
 *   kaos.v1.session.end      SessionEnd (ban, delete)   every node
 *   kaos.v1.all              Broadcast                  every node
 *   kaos.v1.user.<user id>   UserDeliver, SessionEnd (logout), SessionBound
 *                            only the nodes holding the user subscribe
 *   kaos.v1.stream.<hash>    StreamChange, StreamState, StreamData: a shared
 *                            stream; only the nodes with members subscribe
 *   kaos.v1.leaderboard      LeaderboardEntry              every node
 *
 * Delivery is NATS core: at most once. Nothing acknowledged to a client
 * depends on the bus alone (Postgres is written first; the bus only makes
 * it live on other nodes), so a lost message costs liveness, never data.
 *
 * Threads: every function is any-thread. One lock guards the peer table
 * and the user interest map; the bus's deliveries (kn_cluster_receive)
 * come on the bus's threads and call the local hooks with no lock held.
 * Ownership: arguments are borrowed. */
#ifndef KN_CLUSTER_H
#define KN_CLUSTER_H

#include "kn_stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KN_CLUSTER_MAX_PEERS   256
#define KN_CLUSTER_MAX_SLOTS   1024 /* node names ever heard, numbered 1.. for mirrors */
#define KN_CLUSTER_NAME_MAX    64
#define KN_CLUSTER_BUS_VERSION 1
#define KN_CLUSTER_SUBJECT_MAX 96

typedef struct kn_cluster kn_cluster;

/* The bus: publish bytes on a subject, hold a subscription. A subscription's
 * deliveries call kn_cluster_receive (the bus implementation does that);
 * connected() says whether publishes leave now. KN_OK or a kn_err. */
typedef struct kn_cluster_bus {
    int (*publish)(void *ud, const char *subject, const uint8_t *data, size_t len);
    int (*subscribe)(void *ud, const char *subject, void **sub);
    void (*unsubscribe)(void *ud, void *sub);
    bool (*connected)(void *ud);
    void *ud;
} kn_cluster_bus;

/* What arrives for this node, done here (the root: kn_out_send_*_here,
 * kn_sessions_end_here, kn_sessions_replace_here, kn_sessions_conns). Any
 * field may be NULL. Called on the bus's threads, or (user_conns) under
 * the cluster's lock: none may call back into the cluster. */
typedef struct kn_cluster_local {
    void (*deliver_user)(void *ud, const char *user_id, const char *session_id, uint8_t channel,
                         const uint8_t *data, size_t len, bool reliable);
    void (*deliver_all)(void *ud, uint8_t channel, const uint8_t *data, size_t len, bool reliable);
    /* why: a kn_session_end value */
    void (*end_sessions)(void *ud, const char *user_id, const char *session_id, int why,
                         int64_t revoke_expires);
    void (*replace_sessions)(void *ud, const char *user_id, const char *session_id,
                             int64_t bound_ms, bool wins_tie);
    /* How many connections user_id has on this node now. */
    size_t (*user_conns)(void *ud, const char *user_id);
    /* A peer came up (up; back: it had been dead or had left, so what it
     * and this node mirrored of each other is gone) or went (dead or left). */
    void (*peer_changed)(void *ud, const char *name, bool up, bool back);
    /* Shared streams (kn_stream.h, "Cluster"); node: the sender's slot
     * (kn_cluster_node_slot). A presence joined or changed (join), or left
     * (has_leave: that node's connection leave). */
    void (*stream_changed)(void *ud, uint16_t node, const kn_stream *s, const kn_presence *join,
                           bool has_leave, kn_conn_id leave);
    /* node's whole set on s is ps[0..n); ask: answer with this node's. */
    void (*stream_state)(void *ud, uint16_t node, const kn_stream *s, const kn_presence *ps,
                         size_t n, bool ask);
    /* A leaderboard index entry of another node (removed: the owner's
     * entry went): score, subscore, time_us, version as kn_rank_entry. */
    void (*leaderboard)(void *ud, const char *board, int64_t expiry, const char *owner,
                        int64_t score, int64_t subscore, int64_t time_us, int64_t version,
                        bool removed);
    /* Bytes sent on s on another node, for this node's members. */
    void (*stream_data)(void *ud, const kn_stream *s, uint8_t channel, const uint8_t *data,
                        size_t len, bool reliable);
    /* The bus connected after this node served without it (it was lost,
     * or not there when the node started): what other nodes said meanwhile
     * may never arrive (a node that banned a user may have died with the
     * message in its buffer), so the root re-checks this node's sessions
     * against Postgres. On the bus's thread: must not block. */
    void (*bus_back)(void *ud);
    void *ud;
} kn_cluster_local;

typedef struct kn_cluster_config {
    const char *node;    /* this node's name (letters, digits, '-', '_'; < 64) */
    const char *address; /* advertised UDP "host:port" */
    uint16_t http_port;
    int64_t heartbeat_ms; /* > 0 */
    int64_t dead_ms;      /* >= 2 * heartbeat_ms */
    bool single_session;  /* publish SessionBound on every bind */
    /* Unix ms for the messages' sent_ms; NULL = kn_time_wall_ms. */
    int64_t (*wall_ms)(void *ud);
    void *clock_ud;
} kn_cluster_config;

/* One peer as kn_cluster_peers reports it. */
typedef struct kn_cluster_peer {
    char name[KN_CLUSTER_NAME_MAX];
    char address[80];
    uint16_t http_port;
    bool up;
    int64_t last_seen_ms; /* the now of the tick or receive that last heard it */
    uint64_t users;       /* sessions bound on it, as it last said */
} kn_cluster_peer;

typedef struct kn_cluster_stats {
    bool bus_connected;
    uint32_t peers_up;
    int64_t last_heartbeat_ms; /* now of the last heartbeat heard from any peer; 0 = none */
    int64_t last_sent_ms;      /* now of our last heartbeat */
    uint64_t messages_out, messages_in;
    uint64_t dropped;      /* undecodable, of another version, or failed to publish */
    uint64_t peers_died;   /* peers declared dead by the timeout */
    uint64_t name_clashes; /* heartbeats of another process with our name */
    uint64_t users_subscribed;
} kn_cluster_stats;

/* bus and local are copied; bus.ud must outlive the cluster. Subscribes to
 * the node-wide subjects. KN_ERR_INVALID_ARGUMENT for a bad name or times. */
int kn_cluster_create(const kn_cluster_config *cfg, const kn_cluster_bus *bus,
                      const kn_cluster_local *local, kn_cluster **out);
/* Publishes Leave when the bus is up, drops every subscription. Stop the
 * thread first. Accepts NULL. */
void kn_cluster_destroy(kn_cluster *c);

/* Heartbeats (a hello first), the sweep of dead peers. now: monotonic ms. */
void kn_cluster_tick(kn_cluster *c, int64_t now_ms);
/* A thread calling kn_cluster_tick every heartbeat/4 ms (at most 50 ms). */
int kn_cluster_start(kn_cluster *c);
void kn_cluster_stop(kn_cluster *c); /* joins it; accepts NULL and a cluster never started */

/* One message from the bus (any subscription), at monotonic now_ms. */
void kn_cluster_receive(kn_cluster *c, const uint8_t *data, size_t len, int64_t now_ms);
/* The bus connected (again) or lost its connection. On connecting a hello
 * goes out at the next tick. */
void kn_cluster_bus_changed(kn_cluster *c, bool connected);

/* --- what this node tells the others (the root's kn_out_remote and
 * kn_sessions_remote hooks) -------------------------------------------------- */

/* Bytes for user_id's connections on other nodes. KN_OK when published;
 * KN_ERR_UNAVAILABLE while the bus is down; KN_ERR_INVALID_ARGUMENT for an
 * id that is not a UUID's text. */
int kn_cluster_send_user(kn_cluster *c, const char *user_id, const char *session_id,
                         uint8_t channel, const uint8_t *data, size_t len, bool reliable);
/* Bytes for everyone on every other node. */
int kn_cluster_send_all(kn_cluster *c, uint8_t channel, const uint8_t *data, size_t len,
                        bool reliable);
/* Sessions ended here (why: a kn_session_end value): bans and deletions go
 * to every node, logouts to the nodes holding the user. */
int kn_cluster_sessions_ended(kn_cluster *c, const char *user_id, const char *session_id, int why,
                              int64_t revoke_expires);
/* A bind here (single session: the user's older binds elsewhere end). */
int kn_cluster_session_bound(kn_cluster *c, const char *user_id, const char *session_id,
                             int64_t bound_ms);
/* The tracker's remote hooks (kn_tracker_remote), under its lock. The
 * first local member of a shared stream subscribes to its subject and
 * publishes this node's set with ask (every node with members answers with
 * its own); the last one's leave unsubscribes. members: the stream's
 * members (mirrors, node != 0, are left out of what is published). */
void kn_cluster_stream_interest(kn_cluster *c, const kn_stream *s, bool on,
                                const kn_presence *members, size_t n);
int kn_cluster_stream_changed(kn_cluster *c, const kn_stream *s, const kn_presence *join,
                              const kn_presence *leave);
int kn_cluster_stream_state(kn_cluster *c, const kn_stream *s, const kn_presence *members, size_t n,
                            bool ask);
int kn_cluster_stream_send(kn_cluster *c, const kn_stream *s, uint8_t channel, const uint8_t *data,
                           size_t len, bool reliable);
/* A leaderboard index entry applied here (or an owner removed): to every
 * other node (kaos.v1.leaderboard). */
int kn_cluster_leaderboard(kn_cluster *c, const char *board, int64_t expiry, const char *owner,
                           int64_t score, int64_t subscore, int64_t time_us, int64_t version,
                           bool removed);
/* The slot (1..) of node name `name` for mirrors: stable for the process's
 * life; 0 for our own name or when the table is full. */
uint16_t kn_cluster_node_slot(kn_cluster *c, const char *name);

/* user_id's connections here may have changed: subscribe to its subject
 * when it has one here, drop the subscription when it has none. */
void kn_cluster_user_changed(kn_cluster *c, const char *user_id);

/* --- reading ------------------------------------------------------------------ */

/* At most cap peers (up or recently dead) into out; returns how many there are. */
size_t kn_cluster_peers(kn_cluster *c, kn_cluster_peer *out, size_t cap);
/* The peer named name (up or recently dead) into out; false when unknown. */
bool kn_cluster_peer_get(kn_cluster *c, const char *name, kn_cluster_peer *out);
void kn_cluster_stats_get(kn_cluster *c, kn_cluster_stats *out);
const char *kn_cluster_node(const kn_cluster *c);
/* Prometheus lines (kaos_cluster_*) appended at buf[n..cap); returns the new n. */
size_t kn_cluster_metrics(kn_cluster *c, int64_t now_ms, char *buf, size_t n, size_t cap);
/* One line for /healthz: node, bus, peers with their address and age. */
size_t kn_cluster_health(kn_cluster *c, int64_t now_ms, char *buf, size_t n, size_t cap);

/* {"node":"a","nodes":[{"name":..,"address":..,"http_port":..,"users":..},..]}:
 * this node and every peer up now, for clients picking a node (GET
 * /v2/nodes). Returns the length written (always < cap; a node that does
 * not fit is left out). */
size_t kn_cluster_nodes_json(kn_cluster *c, char *buf, size_t cap);

/* --- the NATS bus (bus_nats.c) ------------------------------------------------ */

typedef struct kn_cluster_nats kn_cluster_nats;
/* Connects to url in the background (the server starts whether NATS is up
 * or not) and reconnects forever; deliveries and connection changes go to
 * the cluster attached with kn_cluster_nats_attach. name labels the
 * connection in NATS's monitoring. */
int kn_cluster_nats_open(const char *url, const char *name, kn_cluster_nats **out,
                         kn_cluster_bus *bus);
/* Before the cluster subscribes to anything. NULL detaches: returns once
 * no callback is inside the old cluster any more (then destroy it). */
void kn_cluster_nats_attach(kn_cluster_nats *n, kn_cluster *c);
/* After kn_cluster_destroy: flushes, closes, waits for the client's
 * threads. Accepts NULL. */
void kn_cluster_nats_close(kn_cluster_nats *n);
uint64_t kn_cluster_nats_reconnects(kn_cluster_nats *n);

#endif
