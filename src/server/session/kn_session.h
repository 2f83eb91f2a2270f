/* kn_session: the session owner. Which connection is bound to which session
 * of which user, what ended and why, and the index user -> sessions ->
 * connections over every network thread.
 *
 * A kn_session exists for every open connection (made by kn_sessions_open
 * when the connection opens, freed by kn_sessions_close when it closes). It
 * belongs to the network thread of its connection: only that thread binds,
 * unbinds or reads it without a lock. Other threads reach a user's
 * connections through the index (kn_sessions_conns, under the registry's
 * lock) and act on them through kn_out, on the owning thread.
 *
 * Ending sessions (kn_sessions_end: logout, ban, account deletion) touches
 * only that user's connections: the index names them, each is unbound and,
 * for a ban or deletion, closed with DISCONNECT_BANNED on its own thread.
 * Every ended session id goes into the revocation set, so its token cannot
 * be resumed while it is still valid; a ban or deletion is also remembered
 * for a while, so a login or resume whose job read Postgres before the ban
 * committed and completes after it is refused (kn_sessions_bind).
 * Postgres stays the source of truth (a resume checks that its session row
 * is live); these sets answer only the races the database cannot see.
 *
 * The session store (below) issues, verifies, refreshes and ends the tokens
 * themselves (kn_token, JWT HS256) against their user_session rows in
 * Postgres; the auth service's logins call it once they know the user. */
#ifndef KN_SESSION_H
#define KN_SESSION_H

#include "kn_net.h"
#include "kn_out.h"
#include "kn_token.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why sessions end (kn_sessions_end). */
typedef enum kn_session_end {
    KN_SESSION_END_LOGOUT = 0,   /* connections stay open, unauthenticated */
    KN_SESSION_END_BAN = 1,      /* connections closed with DISCONNECT_BANNED */
    KN_SESSION_END_DELETE = 2,   /* the same, for a deleted account */
    KN_SESSION_END_REPLACED = 3, /* single session: another bind took over; closed with
                                  * DISCONNECT_SESSION_REPLACED after the notice */
} kn_session_end;

/* Per-connection state of other modules (a route's service): slots handed
 * out by kn_sessions_ext_register. */
#define KN_SESSION_EXT_MAX 4

/* One connection's session. Read-only outside this module; only its
 * connection's network thread reads it without the registry's lock. */
typedef struct kn_session {
    kn_conn_id conn;
    char address[80];     /* "ip:port", for scripts and logs */
    char address_key[24]; /* "addr:<ip hex>", for the failed-login lockout */
    bool authenticated;
    char user_id[37]; /* "" until bound */
    char username[129];
    char session_id[37];
    int64_t expires_at;   /* the session token's, Unix seconds */
    int64_t bound_ms;     /* when it was last bound (login, refresh, resume), Unix ms */
    kn_token_claims vars; /* only .vars and .var_count: the session variables */
    void *ext[KN_SESSION_EXT_MAX];
    /* the registry's: the user's chain in the index (under its lock) */
    struct kn_session *idx_prev, *idx_next;
} kn_session;

typedef struct kn_sessions kn_sessions;

typedef struct kn_sessions_stats {
    uint64_t bound;   /* sessions bound to connections now */
    uint64_t revoked; /* session ids in the revocation set now */
    uint64_t ended;   /* sessions ended by kn_sessions_end so far */
} kn_sessions_stats;

/* out: how ending reaches the connections' threads (borrowed; it must
 * outlive the registry). */
int kn_sessions_create(kn_out *out, kn_sessions **ss_out);
void kn_sessions_destroy(kn_sessions *ss); /* accepts NULL; after every connection closed */

/* Single session (docs/configuration.md, single_session): from now on a
 * bind (login, refresh or resume) ends every other connection of its user,
 * atomically with the bind under the registry's lock, so of two binds that
 * race the later one wins and exactly one stays. Each ended connection's
 * own thread calls notice(ud, conn) (when not NULL: the root passes the
 * notifications service's -7 "another session took over"), unbinds it and
 * closes it with DISCONNECT_SESSION_REPLACED, so the notice goes out
 * first. Ended sessions of another session id are revoked (their token no
 * longer resumes on this node) and handed to forget (when not NULL; any
 * thread, must not block: the root queues the deletion of their
 * user_session rows, so their refresh tokens die too); other connections
 * of the same session id (a resume elsewhere) are closed but the session
 * lives on. A session with no connection here is not touched: if it comes
 * back (resume, refresh), its bind replaces the others in turn. Before
 * serving. */
typedef struct kn_sessions_single {
    void (*notice)(void *ud, kn_conn_id conn);
    void *notice_ud;
    void (*forget)(void *ud, const char *user_id, const char *session_id);
    void *forget_ud;
} kn_sessions_single;
void kn_sessions_set_single(kn_sessions *ss, const kn_sessions_single *single);

/* Other nodes (the cluster bus, docs/cluster.md): what this registry tells
 * them. Any field may be NULL; none may call back into the registry under
 * its caller's feet (they are called with no registry lock held).
 * - ended: kn_sessions_end ended sessions here (any thread); the cluster
 *   ends the same on every node (kn_sessions_end_here there).
 * - bound: a bind succeeded (the connection's thread): single session
 *   across nodes.
 * - present: user_id's connections on this node may have changed (a bind,
 *   an unbind; the connection's thread): the cluster keeps its interest in
 *   the user's messages in step (ask kn_sessions_conns). */
typedef struct kn_sessions_remote {
    void (*ended)(void *ud, const char *user_id, const char *session_id, kn_session_end why,
                  int64_t revoke_expires);
    void (*bound)(void *ud, const char *user_id, const char *session_id, int64_t bound_ms);
    void (*present)(void *ud, const char *user_id);
    void *ud;
} kn_sessions_remote;
/* Before serving. */
void kn_sessions_set_remote(kn_sessions *ss, const kn_sessions_remote *remote);

/* A directory for kn_out (kn_out_send_user) backed by the index. */
kn_out_directory kn_sessions_directory(kn_sessions *ss);

/* Registers a slot of kn_session.ext for one module's per-connection state;
 * on_close(ud, s) runs on the connection's thread when it closes (before
 * the session is freed) for every session, so it frees what the slot
 * holds. Returns the slot, or KN_ERR_RESOURCE_EXHAUSTED. Before serving. */
int kn_sessions_ext_register(kn_sessions *ss, void (*on_close)(void *ud, kn_session *s), void *ud);

/* Registers fn to run on the connection's thread whenever a session stops
 * being bound to its connection: logout, ban, deletion, the connection
 * closing, or a login there as another user (a refresh or a resume by the
 * same user is not an unbind). What a module keeps per session (presences
 * on streams) goes then. At most KN_SESSION_EXT_MAX listeners; before
 * serving. KN_ERR_RESOURCE_EXHAUSTED when full. */
int kn_sessions_on_unbind(kn_sessions *ss, void (*fn)(void *ud, kn_session *s), void *ud);

/* --- the connection's network thread ----------------------------------- */

/* A session for a connection that just opened (not authenticated); NULL
 * when out of memory. ip is the source IPv4 address (network order). */
kn_session *kn_sessions_open(kn_sessions *ss, kn_conn_id id, const char *address, uint32_t ip);
/* The connection closed: ext slots' on_close, unbind, free. Accepts NULL. */
void kn_sessions_close(kn_sessions *ss, kn_session *s);
/* Binds the session of claims to s, unless a ban or deletion of its user
 * ended sessions after submitted_ms (the monotonic time its job was queued:
 * PERMISSION_DENIED "account is banned" or UNAUTHENTICATED "user no longer
 * exists"), or, for a resume, its session id was revoked (UNAUTHENTICATED,
 * with why). The message goes into msg. KN_ERR_NOMEM when the session vars
 * cannot be kept (the bind still happens, without vars). With single
 * session on, the user's other connections are ended (kn_sessions_set_single). */
int kn_sessions_bind(kn_sessions *ss, kn_session *s, const kn_token_claims *claims, bool resume,
                     int64_t submitted_ms, char *msg, size_t cap);
/* Whether a resume of session_id would be refused as revoked (with why in msg). */
bool kn_sessions_revoked(kn_sessions *ss, const char *session_id, char *msg, size_t cap);

/* --- any thread ------------------------------------------------------- */

/* Ends the sessions of user_id (only session_id's when not NULL): revokes
 * them, unbinds their connections and, for BAN and DELETE, closes them
 * (except `spare`: the connection that deleted its own account stays open,
 * unauthenticated). revoke_expires > 0 also revokes session_id until then
 * when no connection holds it (a logout's token). The work on each
 * connection happens on its thread; this returns once it is posted.
 * KN_ERR_INVALID_ARGUMENT for ids longer than a UUID, KN_ERR_NOMEM. */
int kn_sessions_end(kn_sessions *ss, const char *user_id, const char *session_id,
                    kn_session_end why, kn_conn_id spare, int64_t revoke_expires);
/* The same on this node only, never told to the remote hook: another node
 * ended these sessions (the cluster bus). */
int kn_sessions_end_here(kn_sessions *ss, const char *user_id, const char *session_id,
                         kn_session_end why, int64_t revoke_expires);
/* Single session across nodes: user_id bound session_id on another node at
 * bound_ms (Unix ms). Ends this node's connections of the user bound
 * before then (at the same ms too when wins_tie), as a local bind would
 * (REPLACED: the notice, unbind, close; other session ids revoked and
 * handed to forget). Does nothing unless single session is on. Returns how
 * many connections it ends, or KN_ERR_NOMEM. Any thread. */
int kn_sessions_replace_here(kn_sessions *ss, const char *user_id, const char *session_id,
                             int64_t bound_ms, bool wins_tie);
/* The connections of user_id (of session_id only when not NULL) on this
 * node: at most cap into out; returns how many there are. */
size_t kn_sessions_conns(kn_sessions *ss, const char *user_id, const char *session_id,
                         kn_conn_id *out, size_t cap);
/* The connection bound to session_id of user_id on this node, and its
 * username (into username, cap bytes; may be NULL). KN_ERR_NOT_FOUND when
 * no connection here holds that session. */
int kn_sessions_find(kn_sessions *ss, const char *user_id, const char *session_id, kn_conn_id *conn,
                     char *username, size_t cap);
/* A bound session as kn_sessions_list reports it. */
typedef struct kn_session_ref {
    char user_id[37];
    char session_id[37];
} kn_session_ref;
/* The sessions bound on this node now (one per connection: a session held
 * by two connections comes twice): at most cap into out; returns how many
 * there are. */
size_t kn_sessions_list(kn_sessions *ss, kn_session_ref *out, size_t cap);
/* Drops expired revocations and old ban records; does the work at most
 * once a minute, whoever calls it. */
void kn_sessions_tick(kn_sessions *ss, int64_t now_mono_ms);
void kn_sessions_stats_get(kn_sessions *ss, kn_sessions_stats *out);

/* "session token revoked (account banned)", ... */
const char *kn_session_end_text(kn_session_end why);

/* --- the session store: tokens and their user_session rows --------------
 * A session is live while its user_session row exists and has not expired:
 * login inserts it, refresh consumes it and inserts the next session's (so
 * each refresh token works once), logout and bans delete it. Functions
 * taking a kn_db run on an API worker; kn_session_verify needs no database.
 * The store is immutable after create: any thread. Failures return a kn_err
 * and a one-line reason for the client in msg. */

typedef struct kn_db kn_db;
typedef struct kn_session_store kn_session_store;

typedef struct kn_session_store_config {
    const uint8_t *session_key; /* HMAC keys, 1-64 bytes each (copied) */
    size_t session_key_len;
    const uint8_t *refresh_key;
    size_t refresh_key_len;
    int64_t session_expiry_sec;
    int64_t refresh_expiry_sec;
} kn_session_store_config;

/* A new session: signed tokens and the claims they carry. */
typedef struct kn_session_grant {
    char *token;
    char *refresh_token;
    bool created;           /* the user was created by this login */
    kn_token_claims claims; /* user id, username, session id, expiry, vars */
} kn_session_grant;

#define KN_SESSION_VAR_KEY_MAX   64
#define KN_SESSION_VAR_VALUE_MAX 256

/* KN_ERR_INVALID_ARGUMENT for key lengths outside 1-64. */
int kn_session_store_create(const kn_session_store_config *cfg, kn_session_store **out);
void kn_session_store_destroy(kn_session_store *store); /* accepts NULL; wipes the keys */

/* Session vars: at most KN_TOKEN_MAX_VARS, keys 1-64 bytes, values <= 256. */
int kn_session_check_vars(const kn_token_var *vars, size_t var_count, char *msg, size_t cap);
/* A new session for claims already filled (user id, username, vars): a
 * fresh session id, both tokens signed, the row inserted. */
int kn_session_issue(const kn_session_store *store, kn_db *db, int64_t now_sec,
                     kn_session_grant *grant);
/* Exchange a refresh token for a new session (new session id, new tokens).
 * A used or logged-out token is UNAUTHENTICATED "refresh token already used
 * or revoked"; a banned user PERMISSION_DENIED; a deleted one
 * UNAUTHENTICATED. vars replace the token's variables when var_count > 0. */
int kn_session_refresh(const kn_session_store *store, kn_db *db, const char *refresh_token,
                       const kn_token_var *vars, size_t var_count, int64_t now_sec,
                       kn_session_grant *out, char *msg, size_t cap);
/* The session's refresh token stops working (its token is refused on
 * resume: the row is gone; and by the revocation set while it lives). */
int kn_session_logout(kn_db *db, const char *session_id, const char *user_id);
/* Every session of the user (user_id a canonical UUID; unknown: KN_OK). */
int kn_session_logout_all(kn_db *db, const char *user_id);
/* Verify a session token: KN_ERR_TOKEN_EXPIRED or KN_ERR_TOKEN_INVALID. */
int kn_session_verify(const kn_session_store *store, const char *token, int64_t now_sec,
                      kn_token_claims *out);
/* KN_OK when the session is still live: its row exists and has not expired
 * (no logout, no ban, not superseded by a refresh), and the user exists and
 * is not banned. Banned: PERMISSION_DENIED "account is banned"; otherwise
 * UNAUTHENTICATED ("user no longer exists", "session has ended"). */
int kn_session_live(kn_db *db, const char *session_id, const char *user_id, char *msg, size_t cap);
void kn_session_grant_deinit(kn_session_grant *grant); /* accepts zeroed */

#endif
