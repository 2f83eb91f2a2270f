/* session: the session registry (kn_session.h).
 *
 * Invariants: one lock guards the index (users -> chain of bound sessions),
 * the revocation set and the record of ended users. A kn_session's fields
 * are written only on its connection's thread; those the index exposes
 * (conn, user_id, session_id, expires_at) are written under the lock, so
 * readers on other threads see them whole. A session is in its user's chain
 * exactly while it is authenticated. */
#include "kn_session.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_map.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ENDED_KEEP_MS  300000 /* far longer than a job waits in the queue */
#define SWEEP_EVERY_MS 60000

/* A connection being ended and the session it was bound to then. */
typedef struct kn_ended {
    kn_conn_id conn;
    char session_id[37];
} kn_ended;

typedef struct ext_slot {
    void (*on_close)(void *ud, kn_session *s);
    void *ud;
} ext_slot;

struct kn_sessions {
    kn_out *out;
    pthread_mutex_t lock;
    kn_map users;   /* user_key -> first kn_session of the chain (bound sessions) */
    kn_map revoked; /* hash(session id) -> pack(its token's expiry (s), why) */
    kn_map ended;   /* user_key -> pack(monotonic ms of a ban or deletion, why) */
    int64_t next_sweep_ms;
    uint64_t bound, ended_total;
    ext_slot ext[KN_SESSION_EXT_MAX];
    int n_ext;
    ext_slot unbound[KN_SESSION_EXT_MAX]; /* .on_close: the listener */
    int n_unbound;
    bool single; /* set before serving: binds end the user's other connections */
    kn_sessions_single hooks;
    kn_sessions_remote remote; /* other nodes; zeroed on one node */
};

/* The maps `revoked` and `ended` keep a time and a kn_session_end in one
 * value (times are positive, so a value is never NULL). */
static void *pack(int64_t t, kn_session_end why)
{
    return (void *)(intptr_t)(t * 4 + (int64_t)why);
}

static int64_t packed_time(const void *v)
{
    return (int64_t)(intptr_t)v / 4;
}

static kn_session_end packed_why(const void *v)
{
    return (kn_session_end)((intptr_t)v % 4);
}

/* User ids compare in lower case (Lua may pass upper-case hex). */
static uint64_t user_key(const char *user_id)
{
    char low[37];
    size_t i = 0;
    for (; user_id[i] && i < sizeof low - 1; i++)
        low[i] = (char)(user_id[i] >= 'A' && user_id[i] <= 'Z' ? user_id[i] + 32 : user_id[i]);
    low[i] = '\0';
    return kn_map_key_str(low);
}

static uint64_t session_key(const char *session_id)
{
    return user_key(session_id);
}

const char *kn_session_end_text(kn_session_end why)
{
    switch (why) {
    case KN_SESSION_END_BAN:
        return "session token revoked (account banned)";
    case KN_SESSION_END_DELETE:
        return "session token revoked (account deleted)";
    case KN_SESSION_END_REPLACED:
        return "session token revoked (another session took over)";
    default:
        return "session token revoked (logged out)";
    }
}

int kn_sessions_create(kn_out *out, kn_sessions **ss_out)
{
    kn_sessions *ss = kn_calloc(1, sizeof *ss);
    *ss_out = ss;
    if (!ss) return KN_ERR_NOMEM;
    ss->out = out;
    pthread_mutex_init(&ss->lock, NULL);
    kn_map_init(&ss->users);
    kn_map_init(&ss->revoked);
    kn_map_init(&ss->ended);
    return KN_OK;
}

void kn_sessions_destroy(kn_sessions *ss)
{
    if (!ss) return;
    kn_map_deinit(&ss->users);
    kn_map_deinit(&ss->revoked);
    kn_map_deinit(&ss->ended);
    pthread_mutex_destroy(&ss->lock);
    kn_free(ss);
}

void kn_sessions_set_single(kn_sessions *ss, const kn_sessions_single *single)
{
    ss->single = true;
    ss->hooks = *single;
}

void kn_sessions_set_remote(kn_sessions *ss, const kn_sessions_remote *remote)
{
    ss->remote = remote ? *remote : (kn_sessions_remote){0};
}

static void tell_present(kn_sessions *ss, const char *user_id)
{
    if (ss->remote.present) ss->remote.present(ss->remote.ud, user_id);
}

int kn_sessions_ext_register(kn_sessions *ss, void (*on_close)(void *ud, kn_session *s), void *ud)
{
    if (ss->n_ext == KN_SESSION_EXT_MAX) return KN_ERR_RESOURCE_EXHAUSTED;
    ss->ext[ss->n_ext] = (ext_slot){on_close, ud};
    return ss->n_ext++;
}

int kn_sessions_on_unbind(kn_sessions *ss, void (*fn)(void *ud, kn_session *s), void *ud)
{
    if (ss->n_unbound == KN_SESSION_EXT_MAX) return KN_ERR_RESOURCE_EXHAUSTED;
    ss->unbound[ss->n_unbound++] = (ext_slot){fn, ud};
    return KN_OK;
}

static void tell_unbound(kn_sessions *ss, kn_session *s)
{
    for (int i = 0; i < ss->n_unbound; i++)
        ss->unbound[i].on_close(ss->unbound[i].ud, s);
}

/* --- the index (under the lock) ------------------------------------------------ */

static bool same_id(const char *a, const char *b)
{
    return !strcasecmp(a, b);
}

static int index_add(kn_sessions *ss, kn_session *s)
{
    uint64_t k = user_key(s->user_id);
    kn_session *head = kn_map_get(&ss->users, k);
    if (kn_map_put(&ss->users, k, s)) return KN_ERR_NOMEM;
    s->idx_prev = NULL;
    s->idx_next = head;
    if (head) head->idx_prev = s;
    ss->bound++;
    return KN_OK;
}

static void index_del(kn_sessions *ss, kn_session *s)
{
    if (s->idx_prev) {
        s->idx_prev->idx_next = s->idx_next;
    } else {
        uint64_t k = user_key(s->user_id);
        if (s->idx_next)
            kn_map_put(&ss->users, k, s->idx_next); /* replaces: cannot fail */
        else
            kn_map_del(&ss->users, k);
    }
    if (s->idx_next) s->idx_next->idx_prev = s->idx_prev;
    s->idx_prev = s->idx_next = NULL;
    ss->bound--;
}

static void revoke_locked(kn_sessions *ss, const char *session_id, int64_t expires_at,
                          kn_session_end why)
{
    if (kn_map_put(&ss->revoked, session_key(session_id),
                   pack(expires_at > 0 ? expires_at : 1, why)))
        KN_WARN("out of memory recording a revoked session; only Postgres refuses its resume now");
}

/* --- the connection's thread ----------------------------------------------------- */

kn_session *kn_sessions_open(kn_sessions *ss, kn_conn_id id, const char *address, uint32_t ip)
{
    kn_session *s = kn_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->conn = id;
    snprintf(s->address, sizeof s->address, "%s", address);
    snprintf(s->address_key, sizeof s->address_key, "addr:%08x", ip);
    return s;
}

static void unbind(kn_sessions *ss, kn_session *s)
{
    if (!s->authenticated) return;
    pthread_mutex_lock(&ss->lock);
    index_del(ss, s);
    s->authenticated = false;
    pthread_mutex_unlock(&ss->lock);
    tell_unbound(ss, s);
    tell_present(ss, s->user_id);
}

void kn_sessions_close(kn_sessions *ss, kn_session *s)
{
    if (!s) return;
    for (int i = 0; i < ss->n_ext; i++)
        if (ss->ext[i].on_close) ss->ext[i].on_close(ss->ext[i].ud, s);
    if (s->authenticated)
        unbind(ss, s);
    else
        tell_unbound(ss, s); /* what a script put it on while it was bound, say */
    kn_token_claims_deinit(&s->vars);
    kn_free(s);
}

bool kn_sessions_revoked(kn_sessions *ss, const char *session_id, char *msg, size_t cap)
{
    pthread_mutex_lock(&ss->lock);
    void *v = kn_map_get(&ss->revoked, session_key(session_id));
    pthread_mutex_unlock(&ss->lock);
    if (v) snprintf(msg, cap, "%s", kn_session_end_text(packed_why(v)));
    return v != NULL;
}

static size_t collect_others(kn_sessions *ss, const kn_session *s, kn_ended *out, size_t cap);
static void forget_others(kn_sessions *ss, const kn_token_claims *c, const kn_ended *others,
                          size_t n);
static int post_ends(kn_sessions *ss, const char *user_id, kn_session_end why, kn_conn_id spare,
                     const kn_ended *ended, size_t n);

int kn_sessions_bind(kn_sessions *ss, kn_session *s, const kn_token_claims *c, bool resume,
                     int64_t submitted_ms, char *msg, size_t cap)
{
    kn_ended stack[8], *others = stack;
    size_t n_others = 0;
    pthread_mutex_lock(&ss->lock);
    void *ended = kn_map_get(&ss->ended, user_key(c->user_id));
    void *revoked = resume ? kn_map_get(&ss->revoked, session_key(c->session_id)) : NULL;
    int rc = KN_OK;
    bool other_user = false;
    char old_user[37] = "";
    if (ended && submitted_ms <= packed_time(ended)) {
        /* queued before a ban or deletion: it may have read Postgres before
         * that committed, and binding it would leave a connection nobody closes */
        bool ban = packed_why(ended) == KN_SESSION_END_BAN;
        snprintf(msg, cap, "%s", ban ? "account is banned" : "user no longer exists");
        rc = ban ? KN_ERR_PERMISSION_DENIED : KN_ERR_UNAUTHENTICATED;
    } else if (revoked) {
        snprintf(msg, cap, "%s", kn_session_end_text(packed_why(revoked)));
        rc = KN_ERR_UNAUTHENTICATED;
    } else {
        if (s->authenticated) {
            index_del(ss, s);
            other_user = !same_id(s->user_id, c->user_id);
            if (other_user) memcpy(old_user, s->user_id, sizeof old_user);
        }
        memcpy(s->user_id, c->user_id, sizeof s->user_id);
        memcpy(s->username, c->username, sizeof s->username);
        memcpy(s->session_id, c->session_id, sizeof s->session_id);
        s->expires_at = c->expires_at;
        s->bound_ms = kn_time_wall_ms();
        s->authenticated = index_add(ss, s) == KN_OK;
        if (!s->authenticated) {
            snprintf(msg, cap, "server busy; retry");
            rc = KN_ERR_NOMEM;
        } else if (ss->single) {
            /* Under the same lock as the bind: of two binds that race, the
             * later one sees the earlier and ends it. */
            size_t room = sizeof stack / sizeof stack[0];
            n_others = collect_others(ss, s, stack, room);
            kn_ended *more = n_others > room ? kn_malloc(n_others * sizeof *more) : NULL;
            if (more) {
                others = more;
                collect_others(ss, s, others, n_others);
            } else if (n_others > room) {
                n_others = room; /* out of memory: the first ones (all are revoked) */
            }
            ss->ended_total += n_others;
        }
    }
    pthread_mutex_unlock(&ss->lock);
    if (other_user) tell_unbound(ss, s); /* what it was on belonged to the other user */
    if (n_others && post_ends(ss, c->user_id, KN_SESSION_END_REPLACED, 0, others, n_others))
        KN_WARN("could not end every other session of %s (single session)", c->user_id);
    forget_others(ss, c, others, n_others);
    if (others != stack) kn_free(others);
    if (other_user) tell_present(ss, old_user);
    if (rc) return rc;
    tell_present(ss, s->user_id);
    if (ss->remote.bound) ss->remote.bound(ss->remote.ud, s->user_id, s->session_id, s->bound_ms);
    kn_token_claims_deinit(&s->vars);
    if (kn_token_claims_set_vars(&s->vars, c->vars, c->var_count))
        KN_WARN("out of memory keeping session vars; scripts see none for this connection");
    return KN_OK;
}

/* --- ending sessions --------------------------------------------------------------- */

/* What one shard's thread does for an end: its connections of the user,
 * each with the session it was bound to when the end was decided. */
typedef struct end_post {
    kn_sessions *ss;
    char user_id[37];
    kn_session_end why;
    kn_conn_id spare;
    size_t n;
    kn_ended conns[];
} end_post;

static uint32_t close_reason(kn_session_end why)
{
    return why == KN_SESSION_END_REPLACED ? KAOS__V1__DISCONNECT_REASON__DISCONNECT_SESSION_REPLACED
                                          : KAOS__V1__DISCONNECT_REASON__DISCONNECT_BANNED;
}

static void run_end(void *arg)
{
    end_post *p = arg;
    for (size_t i = 0; i < p->n; i++) {
        kn_conn_id conn = p->conns[i].conn;
        kn_session *s = kn_out_conn_data(p->ss->out, conn);
        /* Still bound to what ended? (It may have logged in again meanwhile.) */
        if (!s || !s->authenticated || !same_id(s->user_id, p->user_id)) continue;
        if (!same_id(s->session_id, p->conns[i].session_id)) continue;
        /* The notice first: the close below lets queued packets out before it. */
        const kn_sessions_single *h = &p->ss->hooks;
        if (p->why == KN_SESSION_END_REPLACED && h->notice) h->notice(h->notice_ud, conn);
        unbind(p->ss, s); /* nothing it still sends counts as the user's */
        if (p->why != KN_SESSION_END_LOGOUT && conn != p->spare)
            kn_out_close(p->ss->out, conn, close_reason(p->why));
    }
    kn_free(p);
}

static void note_ended(kn_ended *out, size_t cap, size_t n, const kn_session *s)
{
    if (n >= cap) return;
    out[n].conn = s->conn;
    memcpy(out[n].session_id, s->session_id, sizeof out[n].session_id);
}

/* Under the lock: the connections of user_id's chain (of session_id's only
 * when not NULL), at most cap into ended (with their sessions) or conns
 * (either may be NULL); each one's session is revoked (with why) when
 * revoke is set. Returns how many there are. */
static size_t collect(kn_sessions *ss, const char *user_id, const char *session_id, bool revoke,
                      kn_session_end why, kn_ended *ended, kn_conn_id *conns, size_t cap)
{
    size_t n = 0;
    for (kn_session *s = kn_map_get(&ss->users, user_key(user_id)); s; s = s->idx_next) {
        if (!same_id(s->user_id, user_id)) continue; /* a key collision */
        if (session_id && !same_id(s->session_id, session_id)) continue;
        if (revoke) revoke_locked(ss, s->session_id, s->expires_at, why);
        if (ended) note_ended(ended, cap, n, s);
        if (conns && n < cap) conns[n] = s->conn;
        n++;
    }
    return n;
}

/* Under the lock, single session: the other connections of s's user (not
 * s), at most cap into out; those of another session id are revoked. */
static size_t collect_others(kn_sessions *ss, const kn_session *s, kn_ended *out, size_t cap)
{
    size_t n = 0;
    for (kn_session *o = kn_map_get(&ss->users, user_key(s->user_id)); o; o = o->idx_next) {
        if (o == s || !same_id(o->user_id, s->user_id)) continue;
        if (!same_id(o->session_id, s->session_id)) /* again on a second pass: harmless */
            revoke_locked(ss, o->session_id, o->expires_at, KN_SESSION_END_REPLACED);
        note_ended(out, cap, n++, o);
    }
    return n;
}

/* Single session: each replaced session id (not the bound one's; once
 * each) to the forget hook. */
static void forget_others(kn_sessions *ss, const kn_token_claims *c, const kn_ended *others,
                          size_t n)
{
    if (!ss->hooks.forget) return;
    for (size_t i = 0; i < n; i++) {
        bool again = same_id(others[i].session_id, c->session_id);
        for (size_t k = 0; k < i && !again; k++)
            again = same_id(others[k].session_id, others[i].session_id);
        if (!again) ss->hooks.forget(ss->hooks.forget_ud, c->user_id, others[i].session_id);
    }
}

/* One post per shard that holds any of ended[0..n), to run_end there. */
static int post_ends(kn_sessions *ss, const char *user_id, kn_session_end why, kn_conn_id spare,
                     const kn_ended *ended, size_t n)
{
    int rc = KN_OK;
    for (size_t i = 0; i < n; i++) {
        uint16_t shard = kn_conn_shard(ended[i].conn);
        bool first = true;
        for (size_t k = 0; k < i && first; k++)
            first = kn_conn_shard(ended[k].conn) != shard;
        if (!first) continue;
        size_t m = 0;
        for (size_t k = i; k < n; k++)
            m += kn_conn_shard(ended[k].conn) == shard;
        end_post *p = kn_calloc(1, sizeof *p + m * sizeof(kn_ended));
        if (!p) {
            rc = KN_ERR_NOMEM;
            continue;
        }
        p->ss = ss;
        snprintf(p->user_id, sizeof p->user_id, "%s", user_id);
        p->why = why;
        p->spare = spare;
        for (size_t k = i; k < n; k++)
            if (kn_conn_shard(ended[k].conn) == shard) p->conns[p->n++] = ended[k];
        if (kn_out_on_shard(ss->out, shard, run_end, p)) {
            KN_WARN("could not reach network thread %u to end the sessions of %s", shard, user_id);
            kn_free(p);
            rc = KN_ERR_NOMEM;
        }
    }
    return rc;
}

static int end_sessions(kn_sessions *ss, const char *user_id, const char *session_id,
                        kn_session_end why, kn_conn_id spare, int64_t revoke_expires)
{
    if (!user_id || strlen(user_id) > 36 || (session_id && strlen(session_id) > 36))
        return KN_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&ss->lock);
    if (why != KN_SESSION_END_LOGOUT &&
        kn_map_put(&ss->ended, user_key(user_id), pack(kn_time_mono_ms(), why)))
        KN_WARN("out of memory remembering a ban; a login racing with it may bind");
    if (session_id && revoke_expires > 0) revoke_locked(ss, session_id, revoke_expires, why);
    size_t n = collect(ss, user_id, session_id, true, why, NULL, NULL, 0);
    kn_ended *ended = n ? kn_malloc(n * sizeof *ended) : NULL;
    if (ended) collect(ss, user_id, session_id, false, why, ended, NULL, n);
    ss->ended_total += n;
    pthread_mutex_unlock(&ss->lock);
    if (n && !ended) return KN_ERR_NOMEM;
    int rc = post_ends(ss, user_id, why, spare, ended, n);
    kn_free(ended);
    return rc;
}

int kn_sessions_end_here(kn_sessions *ss, const char *user_id, const char *session_id,
                         kn_session_end why, int64_t revoke_expires)
{
    return end_sessions(ss, user_id, session_id, why, 0, revoke_expires);
}

int kn_sessions_end(kn_sessions *ss, const char *user_id, const char *session_id,
                    kn_session_end why, kn_conn_id spare, int64_t revoke_expires)
{
    int rc = end_sessions(ss, user_id, session_id, why, spare, revoke_expires);
    if (rc != KN_ERR_INVALID_ARGUMENT && ss->remote.ended)
        ss->remote.ended(ss->remote.ud, user_id, session_id, why, revoke_expires);
    return rc;
}

int kn_sessions_replace_here(kn_sessions *ss, const char *user_id, const char *session_id,
                             int64_t bound_ms, bool wins_tie)
{
    if (!ss->single || !user_id || strlen(user_id) > 36 || !session_id || strlen(session_id) > 36)
        return 0;
    kn_ended stack[8], *ended = stack;
    size_t n = 0, cap = sizeof stack / sizeof stack[0];
    pthread_mutex_lock(&ss->lock);
    for (int pass = 0; pass < 2; pass++) {
        n = 0;
        for (kn_session *s = kn_map_get(&ss->users, user_key(user_id)); s; s = s->idx_next) {
            if (!same_id(s->user_id, user_id)) continue;
            if (s->bound_ms > bound_ms || (s->bound_ms == bound_ms && !wins_tie)) continue;
            if (pass == 0 && !same_id(s->session_id, session_id))
                revoke_locked(ss, s->session_id, s->expires_at, KN_SESSION_END_REPLACED);
            note_ended(ended, cap, n++, s);
        }
        if (n <= cap || ended != stack) break;
        ended = kn_malloc(n * sizeof *ended); /* more than the stack holds: again with room */
        if (!ended) {
            ended = stack;
            n = cap; /* out of memory: the first ones (all are revoked) */
            break;
        }
        cap = n;
    }
    ss->ended_total += n;
    pthread_mutex_unlock(&ss->lock);
    int rc = n ? post_ends(ss, user_id, KN_SESSION_END_REPLACED, 0, ended, n) : KN_OK;
    kn_token_claims c = {0};
    snprintf(c.user_id, sizeof c.user_id, "%s", user_id);
    snprintf(c.session_id, sizeof c.session_id, "%s", session_id);
    forget_others(ss, &c, ended, n);
    if (ended != stack) kn_free(ended);
    return rc ? rc : (int)n;
}

size_t kn_sessions_conns(kn_sessions *ss, const char *user_id, const char *session_id,
                         kn_conn_id *out, size_t cap)
{
    pthread_mutex_lock(&ss->lock);
    size_t n = collect(ss, user_id, session_id, false, KN_SESSION_END_LOGOUT, NULL, out, cap);
    pthread_mutex_unlock(&ss->lock);
    return n;
}

int kn_sessions_find(kn_sessions *ss, const char *user_id, const char *session_id, kn_conn_id *conn,
                     char *username, size_t cap)
{
    int rc = KN_ERR_NOT_FOUND;
    pthread_mutex_lock(&ss->lock);
    for (kn_session *s = kn_map_get(&ss->users, user_key(user_id)); s; s = s->idx_next) {
        if (!same_id(s->user_id, user_id) || !same_id(s->session_id, session_id)) continue;
        *conn = s->conn;
        if (username && cap) snprintf(username, cap, "%s", s->username);
        rc = KN_OK;
        break;
    }
    pthread_mutex_unlock(&ss->lock);
    return rc;
}

static size_t directory_conns(void *ud, const char *user_id, const char *session_id,
                              kn_conn_id *out, size_t cap)
{
    return kn_sessions_conns(ud, user_id, session_id, out, cap);
}

kn_out_directory kn_sessions_directory(kn_sessions *ss)
{
    return (kn_out_directory){directory_conns, ss};
}

size_t kn_sessions_list(kn_sessions *ss, kn_session_ref *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&ss->lock);
    for (size_t i = 0; i < ss->users.cap; i++) {
        if (!ss->users.slots[i].key) continue;
        for (kn_session *s = ss->users.slots[i].value; s; s = s->idx_next, n++) {
            if (n >= cap) continue;
            memcpy(out[n].user_id, s->user_id, sizeof out[n].user_id);
            memcpy(out[n].session_id, s->session_id, sizeof out[n].session_id);
        }
    }
    pthread_mutex_unlock(&ss->lock);
    return n;
}

/* Drops the entries whose time has passed (expired tokens need no
 * revocation; old bans no race). */
static void sweep_map(kn_map *m, int64_t now, int64_t keep)
{
    for (size_t i = 0; i < m->cap;) {
        kn_map_entry *e = &m->slots[i];
        if (e->key && packed_time(e->value) + keep <= now)
            kn_map_del(m, e->key);
        else
            i++; /* a delete may shift a later entry into slot i: look again */
    }
}

void kn_sessions_tick(kn_sessions *ss, int64_t now_mono_ms)
{
    pthread_mutex_lock(&ss->lock);
    if (now_mono_ms >= ss->next_sweep_ms) {
        ss->next_sweep_ms = now_mono_ms + SWEEP_EVERY_MS;
        sweep_map(&ss->revoked, kn_time_wall_ms() / 1000, 0);
        sweep_map(&ss->ended, now_mono_ms, ENDED_KEEP_MS);
    }
    pthread_mutex_unlock(&ss->lock);
}

void kn_sessions_stats_get(kn_sessions *ss, kn_sessions_stats *out)
{
    pthread_mutex_lock(&ss->lock);
    out->bound = ss->bound;
    out->revoked = ss->revoked.count;
    out->ended = ss->ended_total;
    pthread_mutex_unlock(&ss->lock);
}
