/* match_wire: the match routes and the engine's out sink (kn_match_wire.h).
 *
 * Threads: the route handlers run on the caller's network thread (list and
 * authoritative creation on a worker); deliver runs on each network thread
 * a batch reaches. The relay is any-thread (the tracker's lock). A
 * connection's membership slot (conn_matches) is touched only on its
 * network thread. */
#include "kn_match_wire.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_log.h"
#include "kn_mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define MAX_AM 8 /* authoritative matches per connection */

struct kn_match_wire {
    kn_out *out;
    kn_sessions *sessions;
    int slot; /* kn_session.ext index of conn_matches */
    kn_relay *relay;
    kn_match_engine *matches;
    atomic_uint_fast64_t shed_joins;
    char node[KN_STREAM_LABEL_MAX + 1]; /* this node's name: the suffix of its match ids */
    kn_match_locator locator;          /* a cluster's; zeroed on one node */
};

/* The authoritative matches a connection is in. */
typedef struct conn_matches {
    struct {
        uint32_t handle, slot;
    } am[MAX_AM];
    size_t n;
} conn_matches;

static conn_matches *matches_of(kn_match_wire *mw, kn_session *s)
{
    return s ? s->ext[mw->slot] : NULL;
}

static size_t n_am(kn_match_wire *mw, kn_session *s)
{
    conn_matches *cm = matches_of(mw, s);
    return cm ? cm->n : 0;
}

static int am_find(const conn_matches *cm, uint32_t handle)
{
    for (size_t i = 0; cm && i < cm->n; i++)
        if (cm->am[i].handle == handle) return (int)i;
    return -1;
}

static void am_remove(conn_matches *cm, uint32_t handle)
{
    int i = am_find(cm, handle);
    if (i >= 0) cm->am[i] = cm->am[--cm->n];
}

/* The connection closed: it leaves every authoritative match it was in
 * (its relayed matches are streams: the tracker drops those). */
static void on_close(void *ud, kn_session *s)
{
    kn_match_wire *mw = ud;
    conn_matches *cm = matches_of(mw, s);
    for (size_t i = 0; cm && mw->matches && i < cm->n; i++)
        kn_match_leave(mw->matches, cm->am[i].handle, s->conn);
    kn_free(cm);
    s->ext[mw->slot] = NULL;
}

int kn_match_wire_create(const kn_match_wire_deps *deps, kn_match_wire **out)
{
    *out = NULL;
    kn_match_wire *mw = kn_calloc(1, sizeof *mw);
    if (!mw) return KN_ERR_NOMEM;
    mw->out = deps->out;
    mw->sessions = deps->sessions;
    snprintf(mw->node, sizeof mw->node, "%s", deps->relay->node ? deps->relay->node : "");
    int rc = kn_relay_create(deps->relay, deps->tracker, &mw->relay);
    if (rc == KN_OK && deps->sessions) {
        mw->slot = kn_sessions_ext_register(deps->sessions, on_close, mw);
        if (mw->slot < 0) rc = mw->slot;
    }
    if (rc) {
        kn_match_wire_destroy(mw);
        return rc;
    }
    *out = mw;
    return KN_OK;
}

void kn_match_wire_destroy(kn_match_wire *mw)
{
    if (!mw) return;
    kn_relay_destroy(mw->relay);
    kn_free(mw);
}

void kn_match_wire_set_locator(kn_match_wire *mw, const kn_match_locator *loc)
{
    mw->locator = loc ? *loc : (kn_match_locator){0};
}

/* A match of another node known to the cluster: the answer saying where
 * (KN_OK: not elsewhere, go on here). */
static int elsewhere(kn_match_wire *mw, const char *match_id, char *msg, size_t cap)
{
    const char *dot = match_id && mw->locator.where ? strrchr(match_id, '.') : NULL;
    if (!dot || !strcmp(dot + 1, mw->node)) return KN_OK;
    char address[96] = "";
    bool up = false;
    if (!mw->locator.where(mw->locator.ud, dot + 1, address, sizeof address, &up)) return KN_OK;
    if (!up)
        return kn_err_msg(KN_ERR_UNAVAILABLE, msg, cap,
                          "match %.80s is on node %.64s, which is not reachable now", match_id,
                          dot + 1);
    return kn_err_msg(KN_ERR_FAILED_PRECONDITION, msg, cap,
                      "match %.80s is on node %.64s at udp %s: connect there to join it", match_id,
                      dot + 1, address);
}

void kn_match_wire_attach_engine(kn_match_wire *mw, kn_match_engine *matches)
{
    mw->matches = matches;
}

uint64_t kn_match_wire_shed_joins(const kn_match_wire *mw)
{
    return atomic_load_explicit(&((kn_match_wire *)mw)->shed_joins, memory_order_relaxed);
}

kn_relay *kn_match_wire_relay(kn_match_wire *mw)
{
    return mw->relay;
}

size_t kn_match_wire_relayed_count(kn_match_wire *mw)
{
    return kn_relay_match_count(mw->relay);
}

/* --- the engine's batches ------------------------------------------------------------ */

/* A match thread's outgoing batch, in order, posted to every shard that has
 * a connection in it; each sends to its own connections and the last one
 * done frees the batch. The bookkeeping lives in the batch's sink scratch,
 * which the engine keeps with the batch when it reuses it: delivering a
 * batch allocates nothing once the pools are warm. */
typedef struct batch_post batch_post;

typedef struct batch_ref {
    batch_post *bp;
    uint16_t shard;
} batch_ref;

struct batch_post {
    kn_match_wire *mw;
    kn_match_batch *b;
    atomic_int refs;
    batch_ref refs_of[]; /* one per shard posted to */
};

static void batch_release(batch_post *bp)
{
    if (atomic_fetch_sub(&bp->refs, 1) == 1) kn_match_batch_free(bp->b);
}

static void deliver(void *arg)
{
    batch_ref *ref = arg;
    batch_post *bp = ref->bp;
    uint16_t shard = ref->shard;
    kn_match_wire *mw = bp->mw;
    for (size_t i = 0; i < kn_match_batch_count(bp->b); i++) {
        const kn_match_out *o = kn_match_batch_get(bp->b, i);
        if (o->kind == KN_MATCH_OUT_SEND) {
            kn_out_send_here(mw->out, shard, o->conns, o->n_conns, o->channel, o->data, o->len,
                             o->reliable);
            continue;
        }
        if (kn_conn_shard(o->conns[0]) != shard) continue;
        kn_session *s = kn_out_conn_data(mw->out, o->conns[0]);
        conn_matches *cm = matches_of(mw, s);
        if (o->kind == KN_MATCH_OUT_LEFT) {
            am_remove(cm, o->handle);
            continue;
        }
        if (s && s->authenticated && !cm) cm = s->ext[mw->slot] = kn_calloc(1, sizeof *cm);
        if (s && s->authenticated && cm && cm->n < MAX_AM && am_find(cm, o->handle) < 0) {
            cm->am[cm->n].handle = o->handle;
            cm->am[cm->n++].slot = o->slot;
        } else if (mw->matches) {
            kn_match_leave(mw->matches, o->handle, o->conns[0]); /* gone meanwhile */
        }
    }
    batch_release(bp);
}

void kn_match_wire_out(void *ud, kn_match_batch *b)
{
    kn_match_wire *mw = ud;
    size_t shards = kn_out_shards(mw->out);
    /* The shards with a connection in the batch (one pass over its ids). */
    uint64_t mask = shards == 1 ? 1 : 0;
    size_t count = kn_match_batch_count(b);
    for (size_t i = 0; i < count && shards > 1; i++) {
        const kn_match_out *o = kn_match_batch_get(b, i);
        for (size_t k = 0; k < o->n_conns; k++)
            mask |= 1ULL << (kn_conn_shard(o->conns[k]) & 63);
    }
    batch_post *bp = kn_match_batch_sink(b, sizeof *bp + shards * sizeof(batch_ref));
    if (!bp) {
        KN_WARN("match traffic dropped: out of memory");
        kn_match_batch_free(b);
        return;
    }
    bp->mw = mw;
    bp->b = b;
    atomic_init(&bp->refs, 1); /* ours, until every post is made */
    for (uint16_t k = 0; k < shards; k++) {
        if (!(mask & (1ULL << k))) continue;
        batch_ref *ref = &bp->refs_of[k];
        *ref = (batch_ref){bp, k};
        atomic_fetch_add(&bp->refs, 1);
        if (kn_out_on_shard(mw->out, k, deliver, ref)) {
            KN_WARN("match traffic dropped: cannot reach network thread %u", k);
            atomic_fetch_sub(&bp->refs, 1);
        }
    }
    batch_release(bp);
}

/* --- routes ------------------------------------------------------------------------- */

static void member_of(const kn_caller *c, kn_relay_member *m)
{
    memset(m, 0, sizeof *m);
    m->conn = c->conn;
    snprintf(m->user_id, sizeof m->user_id, "%s", c->user_id);
    snprintf(m->session_id, sizeof m->session_id, "%s", c->session_id);
    snprintf(m->username, sizeof m->username, "%s", c->username);
}

static kn_match_presence presence_of(const kn_caller *c)
{
    kn_match_presence p = {.conn = c->conn};
    snprintf(p.user_id, sizeof p.user_id, "%s", c->user_id);
    snprintf(p.session_id, sizeof p.session_id, "%s", c->session_id);
    snprintf(p.username, sizeof p.username, "%s", c->username);
    return p;
}

/* The Match reply for a relayed create or join. */
static int reply_match(kn_req *r, const kn_relay_joined *j)
{
    Kaos__V1__Presence self, *others_store[64], **others = others_store;
    Kaos__V1__Presence others_p_store[64], *others_p = others_p_store;
    int rc = KN_ERR_NOMEM;
    if (j->other_count > 64) {
        others = kn_calloc(j->other_count, sizeof *others);
        others_p = kn_calloc(j->other_count, sizeof *others_p);
        if (!others || !others_p) goto done;
    }
    kn_entity_to_proto(&kn_relay_member_entity, &j->self, &self);
    for (size_t i = 0; i < j->other_count; i++) {
        kn_entity_to_proto(&kn_relay_member_entity, &j->others[i], &others_p[i]);
        others[i] = &others_p[i];
    }
    Kaos__V1__Match m;
    kn_envelope env;
    kn_envelope_match(&env, &m, 0, j->match_id, j->handle, j->size, j->max_size, false, &self,
                      others, j->other_count);
    rc = kn_req_reply(r, &env);
done:
    if (others != others_store) kn_free(others);
    if (others_p != others_p_store) kn_free(others_p);
    return rc;
}

/* Admission control for the network thread. */
static int shed(kn_req *r, char *msg, size_t cap)
{
    if (!kn_req_overloaded(r)) return KN_OK;
    kn_match_wire *mw = kn_req_service(r);
    atomic_fetch_add_explicit(&mw->shed_joins, 1, memory_order_relaxed);
    snprintf(msg, cap, "server overloaded; try again later");
    return KN_ERR_UNAVAILABLE;
}

/* Worker: create (match_init), then the creator joins like anyone; the
 * join's answer comes from the match thread. */
static int create_authoritative(kn_req *r, char *msg, size_t cap)
{
    kn_match_wire *mw = kn_req_service(r);
    Kaos__V1__MatchCreate *mc = kn_req_msg(r)->match_create;
    char id[KN_MATCH_ID_MAX];
    int rc =
        kn_match_create(mw->matches, mc->handler, mc->params, strlen(mc->params), id, msg, cap);
    if (rc) return rc;
    kn_match_presence p = presence_of(kn_req_caller(r));
    rc = kn_match_join(mw->matches, id, &p, kn_req_msg(r)->cid, "{}", 2);
    if (rc == KN_OK) kn_req_defer(r);
    return rc;
}

int kn_match_wire_create_match(kn_req *r, char *msg, size_t cap)
{
    kn_match_wire *mw = kn_req_service(r);
    Kaos__V1__MatchCreate *mc = kn_req_msg(r)->match_create;
    int rc = shed(r, msg, cap);
    if (rc) return rc;
    if (*mc->handler) { /* authoritative: match_init runs Lua, so on a worker */
        if (!mw->matches) {
            snprintf(msg, cap, "authoritative matches are off");
            return KN_ERR_UNIMPLEMENTED;
        }
        if (n_am(mw, kn_req_session(r)) == MAX_AM) {
            snprintf(msg, cap, "in too many matches");
            return KN_ERR_RESOURCE_EXHAUSTED;
        }
        kn_req_continue_on_worker(r, create_authoritative);
        return KN_OK;
    }
    kn_relay_member who;
    member_of(kn_req_caller(r), &who);
    kn_relay_joined j;
    rc = kn_relay_match_create(mw->relay, &who, mc->max_size, &j, msg, cap);
    if (rc == KN_OK) rc = reply_match(r, &j);
    kn_relay_joined_deinit(&j);
    return rc;
}

/* MatchJoin metadata (a string map) as a JSON object; NULL on failure. */
static char *metadata_json(const Kaos__V1__MatchJoin *j, size_t *len)
{
    kn_json *o = kn_json_object();
    for (size_t i = 0; o && i < j->n_metadata; i++) {
        kn_json *v = kn_json_string(j->metadata[i]->value);
        if (!v || kn_json_object_set_new(o, j->metadata[i]->key, v)) {
            kn_json_decref(o);
            o = NULL;
        }
    }
    char *txt = o ? kn_json_dump(o, KN_JSON_COMPACT) : NULL;
    kn_json_decref(o);
    char *out = txt ? kn_strndup(txt, strlen(txt)) : NULL;
    kn_json_free_text(txt);
    *len = out ? strlen(out) : 0;
    return out;
}

int kn_match_wire_join(kn_req *r, char *msg, size_t cap)
{
    kn_match_wire *mw = kn_req_service(r);
    Kaos__V1__MatchJoin *mj = kn_req_msg(r)->match_join;
    int rc = shed(r, msg, cap);
    if (rc) return rc;
    if (!*mj->token && (rc = elsewhere(mw, mj->match_id, msg, cap))) return rc;
    if (*mj->token) { /* the matchmaker's: a relayed match for its group */
        kn_relay_member who;
        member_of(kn_req_caller(r), &who);
        kn_relay_joined j;
        rc = kn_relay_match_join_token(mw->relay, mj->token, &who, 0, &j, msg, cap);
        if (rc == KN_OK) rc = reply_match(r, &j);
        kn_relay_joined_deinit(&j);
        return rc;
    }
    if (mw->matches) {
        size_t len;
        char *md = metadata_json(mj, &len);
        kn_match_presence p = presence_of(kn_req_caller(r));
        rc = !md ? KN_ERR_INVALID_ARGUMENT
             : n_am(mw, kn_req_session(r)) == MAX_AM
                 ? KN_ERR_RESOURCE_EXHAUSTED
                 : kn_match_join(mw->matches, mj->match_id, &p, kn_req_msg(r)->cid, md, len);
        kn_free(md);
        if (rc == KN_OK) {
            kn_req_defer(r); /* the answer comes from the match thread */
            return KN_OK;
        }
        if (rc != KN_ERR_NOT_FOUND) {
            snprintf(msg, cap, "%s",
                     rc == KN_ERR_INVALID_ARGUMENT     ? "metadata must be UTF-8 text"
                     : rc == KN_ERR_RESOURCE_EXHAUSTED ? "in too many matches"
                                                       : "server busy; retry");
            return rc;
        }
    }
    kn_relay_member who;
    member_of(kn_req_caller(r), &who);
    kn_relay_joined j;
    rc = kn_relay_match_join(mw->relay, mj->match_id, &who, &j, msg, cap);
    if (rc == KN_OK) rc = reply_match(r, &j);
    kn_relay_joined_deinit(&j);
    return rc;
}

int kn_match_wire_leave(kn_req *r, char *msg, size_t cap)
{
    kn_match_wire *mw = kn_req_service(r);
    uint32_t handle = kn_req_msg(r)->match_leave->match;
    kn_conn_id conn = kn_req_caller(r)->conn;
    int rc;
    if (handle & KN_MATCH_HANDLE_BIT) {
        conn_matches *cm = matches_of(mw, kn_req_session(r));
        rc = am_find(cm, handle) < 0 ? KN_ERR_NOT_FOUND : KN_OK;
        if (rc == KN_OK) {
            am_remove(cm, handle);
            kn_match_leave(mw->matches, handle, conn);
        }
    } else {
        rc = kn_relay_match_leave(mw->relay, handle, conn);
    }
    if (rc) {
        snprintf(msg, cap, "not in that match");
        return rc;
    }
    return kn_req_ack(r);
}

/* The hot path: one call per match data packet, no allocation. A full
 * inbox drops the input (counted), like an unreliable packet. */
int kn_match_wire_data(kn_req *r, char *msg, size_t cap)
{
    kn_match_wire *mw = kn_req_service(r);
    Kaos__V1__MatchDataSend *d = kn_req_msg(r)->match_data_send;
    uint8_t channel = kn_req_channel(r);
    int rc;
    if (d->match & KN_MATCH_HANDLE_BIT) {
        conn_matches *cm = matches_of(mw, kn_req_session(r));
        int i = am_find(cm, d->match);
        rc = i < 0 ? KN_ERR_NOT_FOUND
                   : kn_match_input(mw->matches, d->match, cm->am[i].slot, d->op_code, d->data.data,
                                    d->data.len, channel == KN_CHANNEL_MATCH_RELIABLE);
        if (rc != KN_ERR_NOT_FOUND) return KN_OK;
    } else {
        rc = kn_relay_data(mw->relay, d->match, kn_req_caller(r)->conn, d->op_code, d->data.data,
                           d->data.len, d->targets, d->n_targets, channel,
                           channel == KN_CHANNEL_MATCH_RELIABLE);
    }
    if (rc == KN_ERR_NOT_FOUND) snprintf(msg, cap, "not in that match");
    return rc;
}

/* A MatchList of the n matches in list (borrowed) as the reply. */
static int reply_match_list(kn_req *r, const kn_match_info *list, size_t n)
{
    Kaos__V1__MatchInfo *infos = n ? kn_calloc(n, sizeof *infos) : NULL;
    Kaos__V1__MatchInfo **ptrs = n ? kn_calloc(n, sizeof *ptrs) : NULL;
    int rc = n && (!infos || !ptrs) ? KN_ERR_NOMEM : KN_OK;
    for (size_t i = 0; rc == KN_OK && i < n; i++) {
        kaos__v1__match_info__init(&infos[i]);
        infos[i].match_id = (char *)list[i].match_id;
        infos[i].authoritative = 1;
        infos[i].label = list[i].label ? list[i].label : "";
        infos[i].size = list[i].size;
        infos[i].tick_rate = (uint32_t)list[i].tick_rate;
        infos[i].handler = (char *)list[i].handler;
        ptrs[i] = &infos[i];
    }
    if (rc == KN_OK) {
        Kaos__V1__MatchList ml = KAOS__V1__MATCH_LIST__INIT;
        ml.n_matches = n;
        ml.matches = ptrs;
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_LIST;
        env.match_list = &ml;
        rc = kn_req_reply(r, &env);
    }
    kn_free(infos);
    kn_free(ptrs);
    return rc;
}

static int matches_off(kn_match_wire *mw, char *msg, size_t cap)
{
    if (mw->matches) return KN_OK;
    snprintf(msg, cap, "authoritative matches are off");
    return KN_ERR_UNIMPLEMENTED;
}

/* Worker: MatchListRequest -> MatchList. */
int kn_match_wire_list(kn_req *r, char *msg, size_t cap)
{
    kn_match_wire *mw = kn_req_service(r);
    Kaos__V1__MatchListRequest *q = kn_req_msg(r)->match_list_request;
    int rc = matches_off(mw, msg, cap);
    if (rc) return rc;
    kn_match_list_query query = {.limit = q->limit,
                                 .label = q->label,
                                 .query = q->query,
                                 .min_size = q->min_size > 0 ? q->min_size : -1,
                                 .max_size = q->max_size > 0 ? q->max_size : -1};
    kn_match_info *list;
    size_t n;
    rc = kn_match_list(mw->matches, &query, &list, &n, msg, cap);
    if (rc) return rc;
    rc = reply_match_list(r, list, n);
    kn_match_list_free(list, n);
    return rc;
}

/* Network thread: MatchGet -> a MatchList of that one match (a registry
 * lookup, no Lua, so it needs no worker). */
int kn_match_wire_get(kn_req *r, char *msg, size_t cap)
{
    kn_match_wire *mw = kn_req_service(r);
    int rc = matches_off(mw, msg, cap);
    if (rc) return rc;
    kn_match_info info;
    rc = kn_match_get(mw->matches, kn_req_msg(r)->match_get->match_id, &info);
    if (rc == KN_ERR_NOT_FOUND) snprintf(msg, cap, "match not found");
    if (rc == KN_OK) rc = reply_match_list(r, &info, 1);
    kn_free(info.label);
    return rc;
}
