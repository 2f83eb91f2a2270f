/* kn_stream: presences on streams — the tracker — and delivery to a stream,
 * the last piece of the router (kn_out delivers to connections, sessions
 * and users; kn_tracker_send to everyone on a stream). Every live feature
 * rides on it: status, chat channels, relayed matches, parties
 * (docs/streams.md has the model, the limits and every error).
 *
 * A stream is (mode, subject, subcontext, label), as in Nakama: the mode
 * says what it is (KN_STREAM_*), subject and subcontext are ids (a user,
 * a group, a match: up to 36 bytes, usually UUIDs), label a name (a room's,
 * a node's: up to 64 bytes). A stream exists while someone is on it; it
 * gets a compact handle (uint32, never 0, unique while it lives) that hot
 * paths such as relayed match data use instead of the key.
 *
 * A presence is one connection (one session) on one stream: who (user id,
 * session id, username), a slot number unique within the stream (targets of
 * relayed match data), hidden (no presence events, left out of listings
 * unless asked), persistence (chat's flag) and a status text. Joins, leaves
 * and updates tell the stream's other members with a presence event that
 * the stream's mode builds (kn_tracker_mode: status events for status
 * streams, match events for relayed matches, StreamPresenceEvent by
 * default); an update is a leave of the old presence and a join of the new
 * one, as in Nakama.
 *
 * Limits: a stream holds at most its own max (given when it is created,
 * else its mode's, else the config's) presences: RESOURCE_EXHAUSTED "<name>
 * is full", where name is the mode's ("match", ...) or "stream"; a connection is on at most
 * max_per_session streams in all and at most its mode's max_per_session of one mode:
 * RESOURCE_EXHAUSTED "session is on too many streams (N)" / "<name> limit per session reached (N)".
 *
 * Threads: every function is any-thread; one lock guards the tracker. The
 * sink (kn_out_send in the server) is called under the lock, so the events
 * of one stream leave in the order its changes happened; a sink must not
 * call back into the tracker. Mode registration happens before serving.
 *
 * Messages: a function taking msg and cap writes a one-line reason there
 * (msg may be NULL only when cap is 0).
 *
 * Ownership: arguments are borrowed; what the tracker hands out (listings)
 * is a copy the caller frees with kn_free.
 *
 * Cluster (docs/cluster.md): with a remote hook set, streams of the shared
 * modes are cluster-wide. Their local changes and sends are told to the
 * hook (under the lock, so they leave in the order they happened); other
 * nodes' presences are mirrored here (kn_tracker_mirror_*: members with
 * node != 0) while this node has members of its own on the stream, and
 * count, fill the limits and are listed like local ones; events and sends
 * reach local connections only. The last local member's leave drops the
 * stream with its mirrors. Nothing else in the server walks connections
 * to deliver to "everyone on X". */
#ifndef KN_STREAM_H
#define KN_STREAM_H

#include "kn_codec.h"
#include "kn_net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Modes, Nakama's numbers (0-7). */
enum {
    KN_STREAM_NOTIFICATIONS = 0,
    KN_STREAM_STATUS = 1,
    KN_STREAM_CHANNEL = 2, /* a chat room */
    KN_STREAM_GROUP = 3,   /* a group's chat channel */
    KN_STREAM_DM = 4,      /* a direct message channel */
    KN_STREAM_MATCH_RELAYED = 5,
    KN_STREAM_MATCH_AUTHORITATIVE = 6,
    KN_STREAM_PARTY = 7,
    KN_STREAM_SCRIPT_MIN = 8, /* 8-15: no service's; free for server scripts */
    KN_STREAM_MODES = 16,     /* modes are 0..KN_STREAM_MODES-1 */
};

#define KN_STREAM_ID_MAX     36   /* bytes of subject and subcontext */
#define KN_STREAM_LABEL_MAX  64   /* bytes of label */
#define KN_STREAM_STATUS_MAX 2048 /* bytes of a presence's status */

typedef struct kn_stream {
    uint8_t mode;
    char subject[KN_STREAM_ID_MAX + 1];
    char subcontext[KN_STREAM_ID_MAX + 1];
    char label[KN_STREAM_LABEL_MAX + 1];
} kn_stream;

typedef struct kn_presence {
    kn_conn_id conn;
    uint32_t slot; /* assigned by the tracker */
    char user_id[37];
    char session_id[37];
    char username[129];
    bool hidden;
    bool persistence;
    char *status;  /* NULL = none; in listings, a copy inside the listing */
    uint16_t node; /* 0: a connection of this node; else the cluster peer whose presence this
                    * mirrors (conn is then that peer's id, never used here) */
} kn_presence;

/* The presence of a session (conn, user, session, username; the texts cut
 * to their fields), visible, without status: what a service puts on a
 * stream for a caller. Any thread. */
kn_presence kn_presence_of(kn_conn_id conn, const char *user_id, const char *session_id,
                           const char *username);

/* kn_presence as the Presence entity (kn_entity.h). */
typedef struct kn_entity kn_entity;
extern const kn_entity kn_presence_entity;

typedef struct kn_tracker kn_tracker;

/* Where bytes go: the same bytes to n connections (kn_out_send). */
typedef struct kn_tracker_sink {
    int (*send_many)(void *ud, const kn_conn_id *conns, size_t n, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable);
    void *ud;
} kn_tracker_sink;

/* A mode's presence events and default size. build packs one event into
 * buf (cap bytes) and returns its length, 0 when it cannot (too large:
 * the event is dropped and counted). NULL build: StreamPresenceEvent. */
typedef struct kn_tracker_mode {
    const char *name;         /* in errors: "match is full" (NULL = "stream") */
    uint32_t max_presences;   /* 0 = the config's default */
    uint32_t max_per_session; /* streams of this mode per connection (0 = no own limit) */
    size_t (*build)(void *ud, const kn_stream *s, uint32_t handle, const kn_presence *joins,
                    size_t n_joins, const kn_presence *leaves, size_t n_leaves, uint8_t *buf,
                    size_t cap);
    void *ud;
} kn_tracker_mode;

/* One change of a mode's build (at most one join and one leave: the
 * tracker changes one presence at a time) as UserPresence messages, for
 * an event's joins and leaves: point them at joins/n_joins and
 * leaves/n_leaves. The messages borrow the presences' strings. */
typedef struct kn_presence_change {
    Kaos__V1__UserPresence join, leave;
    Kaos__V1__UserPresence *joins[1], *leaves[1];
    size_t n_joins, n_leaves;
} kn_presence_change;

/* Fills c; false when there is more than one join or leave. */
bool kn_presence_change_init(kn_presence_change *c, const kn_presence *joins, size_t n_joins,
                             const kn_presence *leaves, size_t n_leaves);
/* env packed into buf when it fits in cap: its length, else 0 (a build's
 * answer). */
size_t kn_presence_event_pack(const kn_envelope *env, uint8_t *buf, size_t cap);

typedef struct kn_tracker_config {
    uint32_t max_per_stream;  /* default presences per stream (1..1,000,000) */
    uint32_t max_per_session; /* streams one connection may be on (1..100,000) */
    size_t max_event_size;    /* largest event or stream data envelope */
} kn_tracker_config;

typedef struct kn_tracker_stats {
    uint64_t streams, presences;        /* now */
    uint64_t events;                    /* presence events sent so far (one per recipient list) */
    uint64_t events_dropped;            /* too large or out of memory */
    uint64_t per_mode[KN_STREAM_MODES]; /* streams of each mode now */
} kn_tracker_stats;

/* How a track goes (NULL = every default). */
typedef struct kn_tracker_opts {
    uint32_t max_size; /* > 0: the stream's limit when this track creates it */
    bool must_exist;   /* refuse to create the stream (NOT_FOUND "stream not found") */
    bool list_others;  /* fill kn_tracker_joined.others */
} kn_tracker_opts;

/* What a track did. */
typedef struct kn_tracker_joined {
    uint32_t handle;
    uint32_t slot;
    uint32_t count;    /* presences on the stream after the join */
    uint32_t max_size; /* the stream's limit */
    bool created;      /* the stream did not exist before */
    /* With list_others: the other visible presences at the moment of the
     * join (kn_free; statuses inside the same allocation), else NULL. */
    kn_presence *others;
    size_t n_others;
} kn_tracker_joined;

void kn_tracker_config_default(kn_tracker_config *cfg);
int kn_tracker_create(const kn_tracker_config *cfg, const kn_tracker_sink *sink, kn_tracker **out);
void kn_tracker_destroy(kn_tracker *t); /* accepts NULL */
/* Before serving. KN_ERR_INVALID_ARGUMENT for a mode out of range. */
int kn_tracker_mode_set(kn_tracker *t, uint8_t mode, const kn_tracker_mode *ops);

/* KN_OK when s is well formed: mode < KN_STREAM_MODES, ids and label short
 * enough (INVALID_ARGUMENT with why in msg). The functions below that look a
 * stream up (update, untrack, close, count, list, get, send) take a
 * malformed one for a stream that does not exist. */
int kn_stream_check(const kn_stream *s, char *msg, size_t cap);

/* Puts p (conn, user, session, username, hidden, persistence, status) on s,
 * creating the stream unless opts->must_exist. Tells the others unless p
 * is hidden. ALREADY_EXISTS when conn is on s already; RESOURCE_EXHAUSTED
 * at a limit; INVALID_ARGUMENT for a bad stream or a status over
 * KN_STREAM_STATUS_MAX; NOMEM. out may be NULL. */
int kn_tracker_track(kn_tracker *t, const kn_stream *s, const kn_presence *p,
                     const kn_tracker_opts *opts, kn_tracker_joined *out, char *msg, size_t cap);
/* Replaces conn's hidden flag and status on s (a leave and a join for the
 * others, unless hidden before and after). NOT_FOUND when not on s. */
int kn_tracker_update(kn_tracker *t, const kn_stream *s, kn_conn_id conn, const char *status,
                      bool hidden);
/* Takes conn off s (a leave for the others). NOT_FOUND when not on s. */
int kn_tracker_untrack(kn_tracker *t, const kn_stream *s, kn_conn_id conn);
/* The same by handle, for a stream of `mode` only (relayed matches). */
int kn_tracker_untrack_handle(kn_tracker *t, uint8_t mode, uint32_t handle, kn_conn_id conn);
/* Takes every session of user_id off s (a leave for the others each);
 * how many left. */
size_t kn_tracker_untrack_user(kn_tracker *t, const kn_stream *s, const char *user_id);
/* Takes conn off every stream (its session ended or its connection closed). */
void kn_tracker_untrack_all(kn_tracker *t, kn_conn_id conn);
/* Takes everyone off s; no events (the stream is closing). How many left. */
size_t kn_tracker_close(kn_tracker *t, const kn_stream *s);

/* Presences on s now (0 when it does not exist). */
size_t kn_tracker_count(kn_tracker *t, const kn_stream *s);
/* The stream's presences (hidden ones only when include_hidden, visible
 * ones only when include_visible): *out (kn_free) holds *n of them, their
 * status texts inside the same allocation. An absent stream: KN_OK, 0. */
int kn_tracker_list(kn_tracker *t, const kn_stream *s, bool include_hidden, bool include_visible,
                    kn_presence **out, size_t *n);
/* The presence of session_id (of user_id) on s, copied into *out with its
 * status copied into status_buf (cap bytes; NULL status when it does not
 * fit or there is none). NOT_FOUND when there is none. */
int kn_tracker_get(kn_tracker *t, const kn_stream *s, const char *user_id, const char *session_id,
                   kn_presence *out, char *status_buf, size_t status_cap);
/* How many streams of `mode` conn is on now. */
uint32_t kn_tracker_conn_count(kn_tracker *t, kn_conn_id conn, uint8_t mode);
/* The stream of handle (NOT_FOUND when it has gone). */
int kn_tracker_stream_of(kn_tracker *t, uint32_t handle, kn_stream *out);

/* --- delivery: the router's stream part ------------------------------------------ */

/* The same bytes to everyone on s but `skip` (0 = nobody skipped), hidden
 * presences included. NOT_FOUND when the stream does not exist. */
int kn_tracker_send(kn_tracker *t, const kn_stream *s, kn_conn_id skip, uint8_t channel,
                    const uint8_t *data, size_t len, bool reliable);

/* Builds the bytes for a sender on a stream. Packs into buf (cap bytes) and
 * returns the length, 0 when it does not fit (KN_ERR_TOO_LARGE). */
typedef size_t (*kn_tracker_build_fn)(void *ud, const kn_presence *sender, uint32_t handle,
                                      uint8_t *buf, size_t cap);
/* From sender (a member of the stream of handle, which must be of `mode`)
 * to the other members, or only to those whose slot is among slots
 * (n_slots > 0): build makes the bytes under the lock, knowing the sender's
 * presence. NOT_FOUND when the stream has gone, is of another mode or
 * sender is not on it; TOO_LARGE when build gives 0. No allocation. */
int kn_tracker_forward(kn_tracker *t, uint8_t mode, uint32_t handle, kn_conn_id sender,
                       const uint32_t *slots, size_t n_slots, kn_tracker_build_fn build, void *ud,
                       uint8_t channel, bool reliable);

void kn_tracker_stats_get(kn_tracker *t, kn_tracker_stats *out);

/* --- the cluster: streams shared with other nodes ------------------------------- */

/* What a shared stream tells other nodes, called under the tracker's lock
 * (none may call back into the tracker):
 * - interest: the stream's first local member arrived (on) or its last
 *   left (off); members/n are the stream's members then (mirrors
 *   included: node != 0), for the first announcement;
 * - changed: a local presence joined or changed (join: the presence now)
 *   or left (leave);
 * - sent: kn_tracker_send's bytes, for the other nodes' members. */
typedef struct kn_tracker_remote {
    void (*interest)(void *ud, const kn_stream *s, bool on, const kn_presence *members, size_t n);
    void (*changed)(void *ud, const kn_stream *s, const kn_presence *join,
                    const kn_presence *leave);
    void (*sent)(void *ud, const kn_stream *s, uint8_t channel, const uint8_t *data, size_t len,
                 bool reliable);
    void *ud;
} kn_tracker_remote;
/* Shares the streams of the modes in modes_mask (bit m: mode m). Before
 * serving. */
void kn_tracker_set_remote(kn_tracker *t, const kn_tracker_remote *remote, uint32_t modes_mask);

/* Another node's presence p (p->node != 0) joined s, or changed (the same
 * node and conn): events for local members as for a local change.
 * NOT_FOUND when this node has no member of its own on s (no one to tell;
 * nothing kept); RESOURCE_EXHAUSTED when s is full. */
int kn_tracker_mirror_join(kn_tracker *t, const kn_stream *s, const kn_presence *p);
/* Another node's presence left s (leave events). NOT_FOUND when unknown. */
int kn_tracker_mirror_leave(kn_tracker *t, const kn_stream *s, uint16_t node, kn_conn_id conn);
/* node's whole set of presences on s is ps[0..n): mirrors of node not in
 * it leave, the others join or change. */
void kn_tracker_mirror_replace(kn_tracker *t, const kn_stream *s, uint16_t node,
                               const kn_presence *ps, size_t n);
/* node is gone: its mirrors leave every stream (leave events). How many. */
size_t kn_tracker_mirror_drop_node(kn_tracker *t, uint16_t node);
/* Bytes another node sent on s: to this node's members of s. */
int kn_tracker_mirror_send(kn_tracker *t, const kn_stream *s, uint8_t channel, const uint8_t *data,
                           size_t len, bool reliable);
/* Calls fn under the lock with the members of s (mirrors included), or of
 * every shared stream when s is NULL; fn may not call back into the
 * tracker. What a node answers a peer that asks who is on s. */
void kn_tracker_each_shared(kn_tracker *t, const kn_stream *s,
                            void (*fn)(void *ud, const kn_stream *s, const kn_presence *members,
                                       size_t n),
                            void *ud);

#endif
