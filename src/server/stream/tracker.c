/* tracker: streams, their presences and delivery to them (kn_stream.h).
 *
 * Invariants (under t->lock): by_key and by_handle name the same streams;
 * a stream has count >= 1 presences (the last leave frees it); by_conn
 * lists, for every connection, exactly the handles of the streams it is on;
 * a presence's status is its own allocation (or NULL); locals counts the
 * members with node == 0, and a shared stream (a cluster's) with mirrors
 * has locals >= 1 (mirrors live only where someone local hears them). */
#include "kn_stream.h"
#include "kn_codec.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_map.h"
#include "kn_mem.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

KN_ENTITY_DEFINE(kn_presence_entity, kn_presence, USER_PRESENCE);

typedef struct stream_rec {
    kn_stream key;
    uint64_t key_hash;
    uint32_t handle, max_size, next_slot;
    uint32_t count, cap, locals;
    kn_presence *members; /* cap entries, count used */
    kn_conn_id *scratch;  /* cap entries: a send's recipients */
} stream_rec;

/* The handles one connection is on. */
typedef struct conn_rec {
    uint32_t count, cap;
    uint32_t per_mode[KN_STREAM_MODES];
    uint32_t *handles;
} conn_rec;

struct kn_tracker {
    pthread_mutex_t lock;
    kn_tracker_config cfg;
    kn_tracker_sink sink;
    kn_tracker_mode modes[KN_STREAM_MODES];
    kn_map by_key;    /* key hash -> stream_rec */
    kn_map by_handle; /* handle -> stream_rec */
    kn_map by_conn;   /* conn -> conn_rec */
    uint32_t next_handle;
    uint8_t *buf; /* event scratch: max_event_size bytes */
    kn_tracker_stats stats;
    kn_tracker_remote remote; /* the cluster's; zeroed on one node */
    uint32_t shared_modes;
};

static bool shared(const kn_tracker *t, uint8_t mode)
{
    return t->remote.changed && mode < KN_STREAM_MODES && (t->shared_modes >> mode & 1);
}

void kn_tracker_set_remote(kn_tracker *t, const kn_tracker_remote *remote, uint32_t modes_mask)
{
    t->remote = remote ? *remote : (kn_tracker_remote){0};
    t->shared_modes = remote ? modes_mask : 0;
}

void kn_tracker_config_default(kn_tracker_config *cfg)
{
    *cfg = (kn_tracker_config){
        .max_per_stream = 100000,
        /* Above a full status follow list (1000) and the session's own
         * status stream, with room for its matches, chats and parties. */
        .max_per_session = 2000,
        .max_event_size = 64 * 1024,
    };
}

kn_presence kn_presence_of(kn_conn_id conn, const char *user_id, const char *session_id,
                           const char *username)
{
    kn_presence p = {.conn = conn};
    snprintf(p.user_id, sizeof p.user_id, "%s", user_id ? user_id : "");
    snprintf(p.session_id, sizeof p.session_id, "%s", session_id ? session_id : "");
    snprintf(p.username, sizeof p.username, "%s", username ? username : "");
    return p;
}

int kn_stream_check(const kn_stream *s, char *msg, size_t cap)
{
    const char *why = NULL;
    if (s->mode >= KN_STREAM_MODES)
        why = "stream mode must be 0-15";
    else if (!memchr(s->subject, 0, sizeof s->subject) ||
             !memchr(s->subcontext, 0, sizeof s->subcontext))
        why = "stream subject and subcontext must be at most 36 bytes";
    else if (!memchr(s->label, 0, sizeof s->label))
        why = "stream label must be at most 64 bytes";
    if (!why) return KN_OK;
    if (msg && cap) snprintf(msg, cap, "%s", why);
    return KN_ERR_INVALID_ARGUMENT;
}

int kn_tracker_create(const kn_tracker_config *cfg, const kn_tracker_sink *sink, kn_tracker **out)
{
    *out = NULL;
    if (cfg->max_per_stream < 1 || cfg->max_per_stream > 1000000 || cfg->max_per_session < 1 ||
        cfg->max_per_session > 100000 || cfg->max_event_size < 256 || !sink->send_many)
        return KN_ERR_INVALID_ARGUMENT;
    kn_tracker *t = kn_calloc(1, sizeof *t);
    if (!t) return KN_ERR_NOMEM;
    t->buf = kn_malloc(cfg->max_event_size);
    if (!t->buf) {
        kn_free(t);
        return KN_ERR_NOMEM;
    }
    t->cfg = *cfg;
    t->sink = *sink;
    pthread_mutex_init(&t->lock, NULL);
    kn_map_init(&t->by_key);
    kn_map_init(&t->by_handle);
    kn_map_init(&t->by_conn);
    *out = t;
    return KN_OK;
}

static void free_stream(stream_rec *st)
{
    if (!st) return;
    for (uint32_t i = 0; i < st->count; i++)
        kn_free(st->members[i].status);
    kn_free(st->members);
    kn_free(st->scratch);
    kn_free(st);
}

void kn_tracker_destroy(kn_tracker *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->by_handle.cap; i++)
        if (t->by_handle.slots[i].key) free_stream(t->by_handle.slots[i].value);
    for (size_t i = 0; i < t->by_conn.cap; i++) {
        conn_rec *c = t->by_conn.slots[i].key ? t->by_conn.slots[i].value : NULL;
        if (c) kn_free(c->handles);
        kn_free(c);
    }
    kn_map_deinit(&t->by_key);
    kn_map_deinit(&t->by_handle);
    kn_map_deinit(&t->by_conn);
    pthread_mutex_destroy(&t->lock);
    kn_free(t->buf);
    kn_free(t);
}

int kn_tracker_mode_set(kn_tracker *t, uint8_t mode, const kn_tracker_mode *ops)
{
    if (mode >= KN_STREAM_MODES) return KN_ERR_INVALID_ARGUMENT;
    t->modes[mode] = *ops;
    return KN_OK;
}

/* --- lookup (under the lock) ------------------------------------------------------ */

static uint64_t key_hash(const kn_stream *s)
{
    char k[sizeof *s + 8];
    snprintf(k, sizeof k, "%u\x1f%s\x1f%s\x1f%s", s->mode, s->subject, s->subcontext, s->label);
    return kn_map_key_str(k);
}

static bool same_key(const kn_stream *a, const kn_stream *b)
{
    return a->mode == b->mode && !strcmp(a->subject, b->subject) &&
           !strcmp(a->subcontext, b->subcontext) && !strcmp(a->label, b->label);
}

/* A malformed key (an id or label without its NUL within its array) names
 * no stream: it is refused here, before key_hash and same_key read its
 * fields as strings and run past the struct. */
static stream_rec *find(kn_tracker *t, const kn_stream *s)
{
    if (kn_stream_check(s, NULL, 0)) return NULL;
    stream_rec *st = kn_map_get(&t->by_key, key_hash(s));
    return st && same_key(&st->key, s) ? st : NULL;
}

/* A local member by connection (mirrors are another node's ids). */
static int member_index(const stream_rec *st, kn_conn_id conn)
{
    for (uint32_t i = 0; i < st->count; i++)
        if (st->members[i].node == 0 && st->members[i].conn == conn) return (int)i;
    return -1;
}

static int mirror_index(const stream_rec *st, uint16_t node, kn_conn_id conn)
{
    for (uint32_t i = 0; i < st->count; i++)
        if (st->members[i].node == node && st->members[i].conn == conn) return (int)i;
    return -1;
}

/* Local skip only: a mirror's conn is another node's number. */
static bool skipped(const kn_presence *p, kn_conn_id skip)
{
    return p->node == 0 && p->conn == skip;
}

/* A copy of st's presences (hidden ones when include_hidden, visible ones
 * when include_visible) but skip's, statuses inside the same allocation. */
static int copy_members(const stream_rec *st, bool include_hidden, bool include_visible,
                        kn_conn_id skip, kn_presence **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t k = 0, text = 0;
    for (uint32_t i = 0; st && i < st->count; i++) {
        const kn_presence *p = &st->members[i];
        if (skipped(p, skip) || (p->hidden ? !include_hidden : !include_visible)) continue;
        k++;
        if (p->status) text += strlen(p->status) + 1;
    }
    if (!k) return KN_OK;
    kn_presence *list = kn_malloc(k * sizeof *list + text);
    if (!list) return KN_ERR_NOMEM;
    char *at = (char *)(list + k);
    size_t j = 0;
    for (uint32_t i = 0; i < st->count; i++) {
        const kn_presence *p = &st->members[i];
        if (skipped(p, skip) || (p->hidden ? !include_hidden : !include_visible)) continue;
        list[j] = *p;
        if (p->status) {
            size_t len = strlen(p->status) + 1;
            memcpy(at, p->status, len);
            list[j].status = at;
            at += len;
        }
        j++;
    }
    *out = list;
    *n = k;
    return KN_OK;
}

/* --- events (under the lock) ------------------------------------------------------ */

bool kn_presence_change_init(kn_presence_change *c, const kn_presence *joins, size_t n_joins,
                             const kn_presence *leaves, size_t n_leaves)
{
    memset(c, 0, sizeof *c);
    if (n_joins > 1 || n_leaves > 1) return false;
    c->joins[0] = &c->join;
    c->leaves[0] = &c->leave;
    c->n_joins = n_joins;
    c->n_leaves = n_leaves;
    if (n_joins) kn_entity_to_proto(&kn_presence_entity, joins, &c->join);
    if (n_leaves) kn_entity_to_proto(&kn_presence_entity, leaves, &c->leave);
    return true;
}

size_t kn_presence_event_pack(const kn_envelope *env, uint8_t *buf, size_t cap)
{
    if (kn_envelope_packed_size(env) > cap) return 0;
    return kn_envelope_pack(env, buf);
}

/* The default event: StreamPresenceEvent. */
static size_t build_stream_event(const kn_stream *s, const kn_presence *joins, size_t nj,
                                 const kn_presence *leaves, size_t nl, uint8_t *buf, size_t cap)
{
    kn_presence_change c;
    if (!kn_presence_change_init(&c, joins, nj, leaves, nl)) return 0;
    Kaos__V1__Stream stream = KAOS__V1__STREAM__INIT;
    stream.mode = s->mode;
    stream.subject = (char *)s->subject;
    stream.subcontext = (char *)s->subcontext;
    stream.label = (char *)s->label;
    Kaos__V1__StreamPresenceEvent ev = KAOS__V1__STREAM_PRESENCE_EVENT__INIT;
    ev.stream = &stream;
    ev.n_joins = c.n_joins;
    ev.joins = c.joins;
    ev.n_leaves = c.n_leaves;
    ev.leaves = c.leaves;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STREAM_PRESENCE;
    env.stream_presence = &ev;
    return kn_presence_event_pack(&env, buf, cap);
}

/* The local members of st but skip into st->scratch; how many. */
static size_t recipients(stream_rec *st, kn_conn_id skip)
{
    size_t k = 0;
    for (uint32_t i = 0; i < st->count; i++)
        if (st->members[i].node == 0 && st->members[i].conn != skip)
            st->scratch[k++] = st->members[i].conn;
    return k;
}

/* Tells everyone here on st but `skip` that `join` joined and/or `leave` left. */
static void event(kn_tracker *t, stream_rec *st, kn_conn_id skip, const kn_presence *join,
                  const kn_presence *leave)
{
    size_t k = recipients(st, skip);
    if (!k) return;
    const kn_tracker_mode *m = &t->modes[st->key.mode];
    size_t nj = join ? 1 : 0, nl = leave ? 1 : 0;
    size_t len =
        m->build ? m->build(m->ud, &st->key, st->handle, join, nj, leave, nl, t->buf,
                            t->cfg.max_event_size)
                 : build_stream_event(&st->key, join, nj, leave, nl, t->buf, t->cfg.max_event_size);
    if (!len || t->sink.send_many(t->sink.ud, st->scratch, k, KN_CHANNEL_CONTROL, t->buf, len,
                                  true) == KN_ERR_NOMEM) {
        t->stats.events_dropped++;
        return;
    }
    t->stats.events++;
}

/* --- the connection index (under the lock) --------------------------------------- */

static const char *mode_name(const kn_tracker *t, uint8_t mode)
{
    return t->modes[mode].name ? t->modes[mode].name : "stream";
}

static int conn_add(kn_tracker *t, kn_conn_id conn, uint8_t mode, uint32_t handle)
{
    conn_rec *c = kn_map_get(&t->by_conn, conn);
    if (!c) {
        c = kn_calloc(1, sizeof *c);
        if (!c) return KN_ERR_NOMEM;
        if (kn_map_put(&t->by_conn, conn, c)) {
            kn_free(c);
            return KN_ERR_NOMEM;
        }
    }
    if (c->count == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 4;
        uint32_t *h = kn_realloc(c->handles, cap * sizeof *h);
        if (!h) {
            if (!c->count) {
                kn_map_del(&t->by_conn, conn);
                kn_free(c);
            }
            return KN_ERR_NOMEM;
        }
        c->handles = h;
        c->cap = cap;
    }
    c->handles[c->count++] = handle;
    c->per_mode[mode]++;
    return KN_OK;
}

static void conn_drop(kn_tracker *t, kn_conn_id conn, uint8_t mode, uint32_t handle)
{
    conn_rec *c = kn_map_get(&t->by_conn, conn);
    if (!c) return;
    for (uint32_t i = 0; i < c->count; i++)
        if (c->handles[i] == handle) {
            c->handles[i] = c->handles[--c->count];
            if (c->per_mode[mode]) c->per_mode[mode]--;
            break;
        }
    if (c->count == 0) {
        kn_map_del(&t->by_conn, conn);
        kn_free(c->handles);
        kn_free(c);
    }
}

/* RESOURCE_EXHAUSTED (with why) when conn may not join one more stream of mode. */
static int conn_room(kn_tracker *t, kn_conn_id conn, uint8_t mode, char *msg, size_t cap)
{
    const conn_rec *c = kn_map_get(&t->by_conn, conn);
    uint32_t mode_max = t->modes[mode].max_per_session;
    if (c && c->count >= t->cfg.max_per_session) {
        snprintf(msg, cap, "session is on too many streams (%u)", t->cfg.max_per_session);
        return KN_ERR_RESOURCE_EXHAUSTED;
    }
    if (c && mode_max && c->per_mode[mode] >= mode_max) {
        snprintf(msg, cap, "%s limit per session reached (%u)", mode_name(t, mode), mode_max);
        return KN_ERR_RESOURCE_EXHAUSTED;
    }
    return KN_OK;
}

/* --- track / untrack -------------------------------------------------------------- */

static stream_rec *new_stream(kn_tracker *t, const kn_stream *s, uint64_t hash, uint32_t max_size)
{
    stream_rec *st = kn_calloc(1, sizeof *st);
    if (!st) return NULL;
    st->key = *s;
    st->key_hash = hash;
    st->max_size = max_size;
    do { /* skip 0 and handles still in use after wrap-around */
        st->handle = ++t->next_handle;
    } while (st->handle == 0 || kn_map_get(&t->by_handle, st->handle));
    if (kn_map_put(&t->by_handle, st->handle, st)) goto fail;
    if (kn_map_put(&t->by_key, hash, st)) {
        kn_map_del(&t->by_handle, st->handle);
        goto fail;
    }
    t->stats.streams++;
    t->stats.per_mode[s->mode]++;
    return st;
fail:
    kn_free(st);
    return NULL;
}

static void drop_stream(kn_tracker *t, stream_rec *st)
{
    kn_map_del(&t->by_handle, st->handle);
    kn_map_del(&t->by_key, st->key_hash);
    t->stats.streams--;
    t->stats.per_mode[st->key.mode]--;
    free_stream(st);
}

static int grow(stream_rec *st)
{
    if (st->count < st->cap) return KN_OK;
    uint32_t cap = st->cap ? st->cap * 2 : 4;
    if (cap > st->max_size) cap = st->max_size;
    kn_presence *m = kn_realloc(st->members, cap * sizeof *m);
    if (!m) return KN_ERR_NOMEM;
    st->members = m;
    kn_conn_id *sc = kn_realloc(st->scratch, cap * sizeof *sc);
    if (!sc) return KN_ERR_NOMEM; /* members grew: harmless */
    st->scratch = sc;
    st->cap = cap;
    return KN_OK;
}

static char *dup_status(const char *status)
{
    return status ? kn_strdup(status) : NULL;
}

int kn_tracker_track(kn_tracker *t, const kn_stream *s, const kn_presence *p,
                     const kn_tracker_opts *opts, kn_tracker_joined *out, char *msg, size_t cap)
{
    static const kn_tracker_opts defaults = {0};
    if (!opts) opts = &defaults;
    if (out) *out = (kn_tracker_joined){0};
    int rc = kn_stream_check(s, msg, cap);
    if (rc) return rc;
    if (!p->conn) { /* 0 names no connection (and is no key of the maps) */
        snprintf(msg, cap, "presence has no connection");
        return KN_ERR_INVALID_ARGUMENT;
    }
    if (p->status && strlen(p->status) > KN_STREAM_STATUS_MAX) {
        snprintf(msg, cap, "status must be at most %d bytes", KN_STREAM_STATUS_MAX);
        return KN_ERR_INVALID_ARGUMENT;
    }
    char *status = dup_status(p->status);
    if (p->status && !status) return KN_ERR_NOMEM;

    pthread_mutex_lock(&t->lock);
    uint64_t hash = key_hash(s);
    stream_rec *st = kn_map_get(&t->by_key, hash);
    if (st && !same_key(&st->key, s)) { /* a 64-bit hash clash: ~never */
        snprintf(msg, cap, "stream cannot be tracked now (key clash)");
        rc = KN_ERR_RESOURCE_EXHAUSTED;
        goto out;
    }
    if (st && member_index(st, p->conn) >= 0) {
        snprintf(msg, cap, "session is on this stream already");
        rc = KN_ERR_ALREADY_EXISTS;
        goto out;
    }
    if (!st && opts->must_exist) {
        snprintf(msg, cap, "stream not found");
        rc = KN_ERR_NOT_FOUND;
        goto out;
    }
    if ((rc = conn_room(t, p->conn, s->mode, msg, cap))) goto out;
    if (st && st->count >= st->max_size) {
        snprintf(msg, cap, "%s is full", mode_name(t, s->mode));
        rc = KN_ERR_RESOURCE_EXHAUSTED;
        goto out;
    }
    bool created = false;
    if (!st) {
        uint32_t limit = opts->max_size                    ? opts->max_size
                         : t->modes[s->mode].max_presences ? t->modes[s->mode].max_presences
                                                           : t->cfg.max_per_stream;
        st = new_stream(t, s, hash, limit);
        if (!st) {
            rc = KN_ERR_NOMEM;
            goto out;
        }
        created = true;
    }
    if ((rc = grow(st)) || (rc = conn_add(t, p->conn, s->mode, st->handle))) {
        if (created) drop_stream(t, st);
        goto out;
    }
    kn_presence *me = &st->members[st->count++];
    *me = *p;
    me->node = 0;
    me->slot = ++st->next_slot;
    me->status = status;
    status = NULL;
    t->stats.presences++;
    st->locals++;
    if (shared(t, s->mode)) {
        if (st->locals == 1) /* the first here: other nodes are asked, and told of it */
            t->remote.interest(t->remote.ud, &st->key, true, st->members, st->count);
        else
            t->remote.changed(t->remote.ud, &st->key, me, NULL);
    }
    if (out) {
        *out = (kn_tracker_joined){st->handle, me->slot, st->count, st->max_size, created, NULL, 0};
        if (opts->list_others &&
            copy_members(st, false, true, me->conn, &out->others, &out->n_others))
            KN_WARN("out of memory listing stream %u's presences for a join", st->handle);
    }
    if (!me->hidden) event(t, st, me->conn, me, NULL);
out:
    pthread_mutex_unlock(&t->lock);
    kn_free(status);
    return rc;
}

int kn_tracker_update(kn_tracker *t, const kn_stream *s, kn_conn_id conn, const char *status,
                      bool hidden)
{
    if (status && strlen(status) > KN_STREAM_STATUS_MAX) return KN_ERR_INVALID_ARGUMENT;
    char *copy = dup_status(status);
    if (status && !copy) return KN_ERR_NOMEM;
    pthread_mutex_lock(&t->lock);
    stream_rec *st = find(t, s);
    int i = st ? member_index(st, conn) : -1;
    if (i < 0) {
        pthread_mutex_unlock(&t->lock);
        kn_free(copy);
        return KN_ERR_NOT_FOUND;
    }
    kn_presence *me = &st->members[i];
    kn_presence old = *me;
    me->status = copy;
    me->hidden = hidden;
    if (!old.hidden || !hidden) event(t, st, conn, hidden ? NULL : me, old.hidden ? NULL : &old);
    if (shared(t, st->key.mode)) t->remote.changed(t->remote.ud, &st->key, me, NULL);
    pthread_mutex_unlock(&t->lock);
    kn_free(old.status);
    return KN_OK;
}

/* Removes member i of st, tells the others (here and, for a local member
 * of a shared stream, on other nodes), frees st when it was the last, or
 * the last local one (its mirrors go with it: nobody here hears them).
 * Returns whether st is gone. */
static bool remove_member(kn_tracker *t, stream_rec *st, uint32_t i, bool tell)
{
    kn_presence gone = st->members[i];
    st->members[i] = st->members[--st->count];
    t->stats.presences--;
    bool local = gone.node == 0, share = shared(t, st->key.mode);
    if (local) {
        conn_drop(t, gone.conn, st->key.mode, st->handle);
        st->locals--;
        if (share) t->remote.changed(t->remote.ud, &st->key, NULL, &gone);
    }
    bool dropped = st->count == 0 || st->locals == 0;
    if (dropped) {
        if (share && local) t->remote.interest(t->remote.ud, &st->key, false, NULL, 0);
        t->stats.presences -= st->count; /* the mirrors going with it */
        drop_stream(t, st);
    } else if (tell && !gone.hidden) {
        event(t, st, local ? gone.conn : 0, NULL, &gone);
    }
    kn_free(gone.status);
    return dropped;
}

int kn_tracker_untrack(kn_tracker *t, const kn_stream *s, kn_conn_id conn)
{
    pthread_mutex_lock(&t->lock);
    stream_rec *st = find(t, s);
    int i = st ? member_index(st, conn) : -1;
    if (i >= 0) remove_member(t, st, (uint32_t)i, true);
    pthread_mutex_unlock(&t->lock);
    return i >= 0 ? KN_OK : KN_ERR_NOT_FOUND;
}

int kn_tracker_untrack_handle(kn_tracker *t, uint8_t mode, uint32_t handle, kn_conn_id conn)
{
    pthread_mutex_lock(&t->lock);
    stream_rec *st = kn_map_get(&t->by_handle, handle);
    int i = st && st->key.mode == mode ? member_index(st, conn) : -1;
    if (i >= 0) remove_member(t, st, (uint32_t)i, true);
    pthread_mutex_unlock(&t->lock);
    return i >= 0 ? KN_OK : KN_ERR_NOT_FOUND;
}

size_t kn_tracker_untrack_user(kn_tracker *t, const kn_stream *s, const char *user_id)
{
    size_t n = 0;
    pthread_mutex_lock(&t->lock);
    stream_rec *st = find(t, s);
    for (uint32_t i = st ? st->count : 0; i-- > 0;) {
        if (st->members[i].node || strcasecmp(st->members[i].user_id, user_id)) continue;
        n++;
        if (remove_member(t, st, i, true)) break; /* st is gone */
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}

void kn_tracker_untrack_all(kn_tracker *t, kn_conn_id conn)
{
    pthread_mutex_lock(&t->lock);
    conn_rec *c;
    /* Each removal shrinks (and finally frees) the connection's record. */
    while ((c = kn_map_get(&t->by_conn, conn)) && c->count > 0) {
        uint32_t handle = c->handles[c->count - 1];
        stream_rec *st = kn_map_get(&t->by_handle, handle);
        int i = st ? member_index(st, conn) : -1;
        if (i < 0) { /* cannot happen (invariant); do not loop forever */
            conn_drop(t, conn, 0, handle);
            continue;
        }
        remove_member(t, st, (uint32_t)i, true);
    }
    pthread_mutex_unlock(&t->lock);
}

size_t kn_tracker_close(kn_tracker *t, const kn_stream *s)
{
    pthread_mutex_lock(&t->lock);
    stream_rec *st = find(t, s);
    size_t n = st ? st->count : 0;
    while (st && st->count)
        if (remove_member(t, st, st->count - 1, false)) st = NULL;
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* --- reading ---------------------------------------------------------------------- */

size_t kn_tracker_count(kn_tracker *t, const kn_stream *s)
{
    pthread_mutex_lock(&t->lock);
    stream_rec *st = find(t, s);
    size_t n = st ? st->count : 0;
    pthread_mutex_unlock(&t->lock);
    return n;
}

int kn_tracker_list(kn_tracker *t, const kn_stream *s, bool include_hidden, bool include_visible,
                    kn_presence **out, size_t *n)
{
    pthread_mutex_lock(&t->lock);
    int rc = copy_members(find(t, s), include_hidden, include_visible, 0, out, n);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int kn_tracker_get(kn_tracker *t, const kn_stream *s, const char *user_id, const char *session_id,
                   kn_presence *out, char *status_buf, size_t status_cap)
{
    int rc = KN_ERR_NOT_FOUND;
    pthread_mutex_lock(&t->lock);
    stream_rec *st = find(t, s);
    for (uint32_t i = 0; st && i < st->count; i++) {
        const kn_presence *p = &st->members[i];
        if (p->node || strcasecmp(p->user_id, user_id) || strcasecmp(p->session_id, session_id))
            continue;
        *out = *p;
        out->status = NULL;
        if (p->status && status_buf && strlen(p->status) < status_cap) {
            strcpy(status_buf, p->status);
            out->status = status_buf;
        }
        rc = KN_OK;
        break;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

uint32_t kn_tracker_conn_count(kn_tracker *t, kn_conn_id conn, uint8_t mode)
{
    if (mode >= KN_STREAM_MODES) return 0;
    pthread_mutex_lock(&t->lock);
    const conn_rec *c = kn_map_get(&t->by_conn, conn);
    uint32_t n = c ? c->per_mode[mode] : 0;
    pthread_mutex_unlock(&t->lock);
    return n;
}

int kn_tracker_stream_of(kn_tracker *t, uint32_t handle, kn_stream *out)
{
    pthread_mutex_lock(&t->lock);
    stream_rec *st = kn_map_get(&t->by_handle, handle);
    if (st) *out = st->key;
    pthread_mutex_unlock(&t->lock);
    return st ? KN_OK : KN_ERR_NOT_FOUND;
}

/* --- delivery --------------------------------------------------------------------- */

int kn_tracker_send(kn_tracker *t, const kn_stream *s, kn_conn_id skip, uint8_t channel,
                    const uint8_t *data, size_t len, bool reliable)
{
    int rc = KN_ERR_NOT_FOUND;
    pthread_mutex_lock(&t->lock);
    stream_rec *st = find(t, s);
    if (st) {
        size_t k = recipients(st, skip);
        rc =
            k ? t->sink.send_many(t->sink.ud, st->scratch, k, channel, data, len, reliable) : KN_OK;
        if (rc == KN_ERR_NOT_FOUND) rc = KN_OK; /* they left meanwhile: delivered to nobody */
        if (shared(t, st->key.mode) && t->remote.sent)
            t->remote.sent(t->remote.ud, &st->key, channel, data, len, reliable);
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int kn_tracker_forward(kn_tracker *t, uint8_t mode, uint32_t handle, kn_conn_id sender,
                       const uint32_t *slots, size_t n_slots, kn_tracker_build_fn build, void *ud,
                       uint8_t channel, bool reliable)
{
    int rc = KN_OK;
    pthread_mutex_lock(&t->lock);
    stream_rec *st = kn_map_get(&t->by_handle, handle);
    int from = st && st->key.mode == mode ? member_index(st, sender) : -1;
    if (from < 0) {
        rc = KN_ERR_NOT_FOUND;
        goto out;
    }
    size_t len = build(ud, &st->members[from], handle, t->buf, t->cfg.max_event_size);
    if (!len) {
        rc = KN_ERR_TOO_LARGE;
        goto out;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < st->count; i++) {
        const kn_presence *p = &st->members[i];
        if (p->node || p->conn == sender) continue;
        bool wanted = n_slots == 0;
        for (size_t j = 0; j < n_slots && !wanted; j++)
            wanted = slots[j] == p->slot;
        if (wanted) st->scratch[k++] = p->conn;
    }
    if (k) t->sink.send_many(t->sink.ud, st->scratch, k, channel, t->buf, len, reliable);
out:
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void kn_tracker_stats_get(kn_tracker *t, kn_tracker_stats *out)
{
    pthread_mutex_lock(&t->lock);
    *out = t->stats;
    pthread_mutex_unlock(&t->lock);
}

/* --- the cluster: mirrors of other nodes' presences ------------------------------- */

/* Under the lock: p (of another node) joins st or replaces its mirror. */
static int mirror_put(kn_tracker *t, stream_rec *st, const kn_presence *p)
{
    char *status = dup_status(p->status);
    if (p->status && !status) return KN_ERR_NOMEM;
    int i = mirror_index(st, p->node, p->conn);
    if (i >= 0) { /* a change: a leave and a join for the others, as locally */
        kn_presence *me = &st->members[i], old = *me;
        bool same_status =
            (!old.status && !status) || (old.status && status && !strcmp(old.status, status));
        if (same_status && old.hidden == p->hidden && old.persistence == p->persistence) {
            kn_free(status); /* told again (a resync): nothing changed */
            return KN_OK;
        }
        me->status = status;
        me->hidden = p->hidden;
        me->persistence = p->persistence;
        if (!old.hidden || !p->hidden)
            event(t, st, 0, p->hidden ? NULL : me, old.hidden ? NULL : &old);
        kn_free(old.status);
        return KN_OK;
    }
    if (st->count >= st->max_size || grow(st)) {
        kn_free(status);
        return st->count >= st->max_size ? KN_ERR_RESOURCE_EXHAUSTED : KN_ERR_NOMEM;
    }
    kn_presence *me = &st->members[st->count++];
    *me = *p;
    me->slot = ++st->next_slot;
    me->status = status;
    t->stats.presences++;
    if (!me->hidden) event(t, st, 0, me, NULL);
    return KN_OK;
}

/* Under the lock: the shared stream s where this node has members. */
static stream_rec *find_shared(kn_tracker *t, const kn_stream *s)
{
    stream_rec *st = shared(t, s->mode) ? find(t, s) : NULL;
    return st && st->locals ? st : NULL;
}

int kn_tracker_mirror_join(kn_tracker *t, const kn_stream *s, const kn_presence *p)
{
    if (!p->node || (p->status && strlen(p->status) > KN_STREAM_STATUS_MAX))
        return KN_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&t->lock);
    stream_rec *st = find_shared(t, s);
    int rc = st ? mirror_put(t, st, p) : KN_ERR_NOT_FOUND;
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int kn_tracker_mirror_leave(kn_tracker *t, const kn_stream *s, uint16_t node, kn_conn_id conn)
{
    pthread_mutex_lock(&t->lock);
    stream_rec *st = node ? find_shared(t, s) : NULL;
    int i = st ? mirror_index(st, node, conn) : -1;
    if (i >= 0) remove_member(t, st, (uint32_t)i, true);
    pthread_mutex_unlock(&t->lock);
    return i >= 0 ? KN_OK : KN_ERR_NOT_FOUND;
}

void kn_tracker_mirror_replace(kn_tracker *t, const kn_stream *s, uint16_t node,
                               const kn_presence *ps, size_t n)
{
    if (!node) return;
    pthread_mutex_lock(&t->lock);
    stream_rec *st = find_shared(t, s);
    for (uint32_t i = st ? st->count : 0; i-- > 0;) {
        const kn_presence *m = &st->members[i];
        if (m->node != node) continue;
        bool kept = false;
        for (size_t k = 0; k < n && !kept; k++)
            kept = ps[k].conn == m->conn;
        if (!kept) remove_member(t, st, i, true); /* a mirror: never the last local */
    }
    for (size_t k = 0; st && k < n; k++) {
        kn_presence p = ps[k];
        p.node = node;
        if (p.status && strlen(p.status) > KN_STREAM_STATUS_MAX) continue;
        if (mirror_put(t, st, &p)) t->stats.events_dropped++;
    }
    pthread_mutex_unlock(&t->lock);
}

size_t kn_tracker_mirror_drop_node(kn_tracker *t, uint16_t node)
{
    size_t n = 0;
    if (!node) return 0;
    pthread_mutex_lock(&t->lock);
    for (size_t j = 0; j < t->by_handle.cap; j++) {
        stream_rec *st = t->by_handle.slots[j].key ? t->by_handle.slots[j].value : NULL;
        for (uint32_t i = st ? st->count : 0; i-- > 0;)
            if (st->members[i].node == node) {
                remove_member(t, st, i, true); /* a mirror: the stream stays */
                n++;
            }
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}

int kn_tracker_mirror_send(kn_tracker *t, const kn_stream *s, uint8_t channel, const uint8_t *data,
                           size_t len, bool reliable)
{
    int rc = KN_ERR_NOT_FOUND;
    pthread_mutex_lock(&t->lock);
    stream_rec *st = find_shared(t, s);
    if (st) {
        size_t k = recipients(st, 0);
        rc =
            k ? t->sink.send_many(t->sink.ud, st->scratch, k, channel, data, len, reliable) : KN_OK;
        if (rc == KN_ERR_NOT_FOUND) rc = KN_OK;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void kn_tracker_each_shared(kn_tracker *t, const kn_stream *s,
                            void (*fn)(void *ud, const kn_stream *s, const kn_presence *members,
                                       size_t n),
                            void *ud)
{
    pthread_mutex_lock(&t->lock);
    if (s) {
        stream_rec *st = find_shared(t, s);
        if (st) fn(ud, &st->key, st->members, st->count);
    } else {
        for (size_t j = 0; j < t->by_handle.cap; j++) {
            stream_rec *st = t->by_handle.slots[j].key ? t->by_handle.slots[j].value : NULL;
            if (st && st->locals && shared(t, st->key.mode))
                fn(ud, &st->key, st->members, st->count);
        }
    }
    pthread_mutex_unlock(&t->lock);
}
