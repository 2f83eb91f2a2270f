/* kn_out: the one way out. Every byte the server sends to clients after a
 * connection is open leaves through here: to a connection, a list of
 * connections, a session, a user or everyone, on whichever network thread
 * owns them.
 * It is the only code that crosses network threads (shards) to deliver.
 *
 * Envelopes are built by kn_codec (src/common: kn_envelope_error, _ack,
 * _presence_event, ...); kn_out moves bytes. It knows no service, no match
 * and no session: who a user's or a session's connections are comes from an
 * injected directory (the session module), so a cluster implementation can
 * stand behind the same calls later (kn_out_remote: users on other nodes).
 *
 * Threads. Every function marked "any thread" may be called from network
 * threads, API workers, match threads and the HTTP thread. Sending to a
 * connection of the calling network thread is a direct kn_net_send (no
 * allocation, no copy); sending to another shard's connections copies the
 * bytes once per shard and posts them to that shard's thread, which sends
 * them in the order posted. Connection ids are generation-checked by kn_net:
 * bytes for a connection that has gone are dropped, never delivered to a
 * newcomer.
 *
 * Ownership: data is borrowed (copied when it must cross threads). */
#ifndef KN_OUT_H
#define KN_OUT_H

#include "kn_codec.h"
#include "kn_net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_out kn_out;

/* Who a user's (or one session's) connections are, on this node. Any
 * thread. Writes at most cap ids into out and returns how many there are
 * (possibly more than cap). */
typedef struct kn_out_directory {
    size_t (*conns_of)(void *ud, const char *user_id, const char *session_id, kn_conn_id *out,
                       size_t cap);
    void *ud;
} kn_out_directory;

/* A message for a user on another node (the cluster issue's bus), and one
 * for everyone on every other node (send_all). Either NULL on a single
 * node. Any thread; KN_OK when handed over. */
typedef struct kn_out_remote {
    int (*send_user)(void *ud, const char *user_id, const char *session_id, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable);
    int (*send_all)(void *ud, uint8_t channel, const uint8_t *data, size_t len, bool reliable);
    void *ud;
} kn_out_remote;

/* What kn_out needs of one network thread: its kn_net, or a fake in tests
 * (tests/unit/pipeline). Each function has kn_net's contract of the same
 * name (kn_net_send_many, _send_authenticated, _close, _post_fn,
 * _on_thread, _conn_data, _set_authenticated, _violation, _overloaded). */
typedef struct kn_out_lane {
    int (*send_many)(void *ud, const kn_conn_id *ids, size_t n, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable);
    void (*close)(void *ud, kn_conn_id id, uint32_t reason);
    int (*post_fn)(void *ud, void (*fn)(void *arg), void *arg);
    bool (*on_thread)(void *ud);
    void *(*conn_data)(void *ud, kn_conn_id id);
    void (*set_authenticated)(void *ud, kn_conn_id id);
    bool (*violation)(void *ud, kn_conn_id id);
    bool (*overloaded)(void *ud);
    void *ud;
    /* Last, so lanes written before it still initialise: NULL = this lane
     * takes no part in kn_out_send_all. */
    int (*send_authenticated)(void *ud, uint8_t channel, const uint8_t *data, size_t len,
                              bool reliable);
} kn_out_lane;

/* `shards` network threads (1..64); attach each one's net (or lane)
 * before serving. */
int kn_out_create(size_t shards, kn_out **out);
void kn_out_destroy(kn_out *o); /* accepts NULL; after every net is destroyed */
void kn_out_attach(kn_out *o, size_t shard, kn_net *net);
void kn_out_attach_lane(kn_out *o, size_t shard, const kn_out_lane *lane);
void kn_out_set_directory(kn_out *o, const kn_out_directory *dir);
void kn_out_set_remote(kn_out *o, const kn_out_remote *remote);
size_t kn_out_shards(const kn_out *o);

/* --- any thread -------------------------------------------------------- */

/* The same bytes to each of ids (any shards). KN_OK when anything was sent
 * or queued; KN_ERR_NOT_FOUND when no connection was there; KN_ERR_NOMEM. */
int kn_out_send(kn_out *o, const kn_conn_id *ids, size_t n, uint8_t channel, const uint8_t *data,
                size_t len, bool reliable);
/* env, packed, reliably on the control channel to one connection. */
int kn_out_send_env(kn_out *o, kn_conn_id id, const kn_envelope *env);
/* To every connection of user_id (only session_id's when not NULL) on this
 * node, and through the remote hook to other nodes. KN_ERR_NOT_FOUND when
 * the user has no connection anywhere known. */
int kn_out_send_user(kn_out *o, const char *user_id, const char *session_id, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable);
/* The same bytes to every authenticated connection on every shard of this
 * node (each shard's own thread sends them: a copy is posted once per
 * shard, or sent at once on the caller's own shard), and through the
 * remote hook to every other node. Nothing else walks connections to
 * broadcast. KN_OK when handed to at least one shard or the remote hook
 * (whether anyone was connected is not known to the caller); KN_ERR_NOMEM
 * when no shard could be reached. */
int kn_out_send_all(kn_out *o, uint8_t channel, const uint8_t *data, size_t len, bool reliable);
/* The same two on this node only, never through the remote hook: what the
 * cluster bus calls when a message for a user, or for everyone, arrives
 * from another node. */
int kn_out_send_user_here(kn_out *o, const char *user_id, const char *session_id, uint8_t channel,
                          const uint8_t *data, size_t len, bool reliable);
int kn_out_send_all_here(kn_out *o, uint8_t channel, const uint8_t *data, size_t len,
                         bool reliable);
/* Graceful disconnect with `reason` (a DisconnectReason). */
int kn_out_close(kn_out *o, kn_conn_id id, uint32_t reason);
/* Runs fn(arg) on the thread of `shard`: at once when the caller is that
 * thread, else posted (exactly once, also if the net stops meanwhile). On
 * failure (KN_ERR_NOMEM) fn is not run and arg stays the caller's. */
int kn_out_on_shard(kn_out *o, uint16_t shard, void (*fn)(void *arg), void *arg);
/* The same, but always posted (a completion must not run inside its caller). */
int kn_out_post(kn_out *o, uint16_t shard, void (*fn)(void *arg), void *arg);

/* --- the thread of a connection's shard only ---------------------------- */

/* Sends only to those of ids that belong to `shard` (a batch every shard
 * receives whole): no allocation. */
int kn_out_send_here(kn_out *o, uint16_t shard, const kn_conn_id *ids, size_t n, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable);
/* kn_net's per-connection data of id (NULL when gone). */
void *kn_out_conn_data(kn_out *o, kn_conn_id id);
/* The connection authenticated (kn_net_set_authenticated). */
void kn_out_set_authenticated(kn_out *o, kn_conn_id id);
/* Counts a bad message against the peer (kn_net_violation). */
void kn_out_violation(kn_out *o, kn_conn_id id);
/* Whether `shard`'s thread sheds new work (kn_net_overloaded). Any thread. */
bool kn_out_overloaded(kn_out *o, uint16_t shard);
/* The net of `shard`; NULL when it is a lane. */
kn_net *kn_out_net(kn_out *o, uint16_t shard);

#endif
