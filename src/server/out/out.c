/* out: delivery over the network threads (kn_out.h).
 *
 * Invariants: lanes[] are set before serving and never change while
 * serving; a post to another shard carries its own copy of ids and bytes
 * and frees it on that shard's thread. */
#include "kn_out.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"

#include <string.h>

#define MAX_SHARDS       64
#define USER_CONNS_STACK 16

struct kn_out {
    size_t n;
    kn_out_lane lanes[MAX_SHARDS]; /* .send_many NULL = not attached */
    kn_net *nets[MAX_SHARDS];      /* when the lane is a kn_net */
    kn_out_directory dir;
    kn_out_remote remote;
};

/* --- kn_net as a lane ------------------------------------------------------------ */

static int net_send_many(void *ud, const kn_conn_id *ids, size_t n, uint8_t channel,
                         const uint8_t *data, size_t len, bool reliable)
{
    return kn_net_send_many(ud, ids, n, channel, data, len, reliable);
}
static int net_send_authenticated(void *ud, uint8_t channel, const uint8_t *data, size_t len,
                                  bool reliable)
{
    return kn_net_send_authenticated(ud, channel, data, len, reliable);
}
static void net_close(void *ud, kn_conn_id id, uint32_t reason)
{
    kn_net_close(ud, id, reason);
}
static int net_post_fn(void *ud, void (*fn)(void *), void *arg)
{
    return kn_net_post_fn(ud, fn, arg);
}
static bool net_on_thread(void *ud)
{
    return kn_net_on_thread(ud);
}
static void *net_conn_data(void *ud, kn_conn_id id)
{
    return kn_net_conn_data(ud, id);
}
static void net_set_authenticated(void *ud, kn_conn_id id)
{
    kn_net_set_authenticated(ud, id);
}
static bool net_violation(void *ud, kn_conn_id id)
{
    return kn_net_violation(ud, id);
}
static bool net_overloaded(void *ud)
{
    return kn_net_overloaded(ud);
}

/* --- lifecycle ------------------------------------------------------------------- */

int kn_out_create(size_t shards, kn_out **out)
{
    *out = NULL;
    if (!shards || shards > MAX_SHARDS) return KN_ERR_INVALID_ARGUMENT;
    kn_out *o = kn_calloc(1, sizeof *o);
    if (!o) return KN_ERR_NOMEM;
    o->n = shards;
    *out = o;
    return KN_OK;
}

void kn_out_destroy(kn_out *o)
{
    kn_free(o);
}

void kn_out_attach(kn_out *o, size_t shard, kn_net *net)
{
    kn_out_lane lane = {net_send_many,         net_close,      net_post_fn,
                        net_on_thread,         net_conn_data,  net_set_authenticated,
                        net_violation,         net_overloaded, net,
                        net_send_authenticated};
    kn_out_attach_lane(o, shard, &lane);
    if (shard < o->n) o->nets[shard] = net;
}

void kn_out_attach_lane(kn_out *o, size_t shard, const kn_out_lane *lane)
{
    if (shard >= o->n) return;
    o->lanes[shard] = *lane;
    o->nets[shard] = NULL;
}

void kn_out_set_directory(kn_out *o, const kn_out_directory *dir)
{
    o->dir = *dir;
}

void kn_out_set_remote(kn_out *o, const kn_out_remote *remote)
{
    o->remote = remote ? *remote : (kn_out_remote){0};
}

size_t kn_out_shards(const kn_out *o)
{
    return o->n;
}

kn_net *kn_out_net(kn_out *o, uint16_t shard)
{
    return shard < o->n ? o->nets[shard] : NULL;
}

/* The lane of `shard`, or NULL when there is none attached. */
static kn_out_lane *lane_of(kn_out *o, uint16_t shard)
{
    return shard < o->n && o->lanes[shard].send_many ? &o->lanes[shard] : NULL;
}

/* --- the owning thread ------------------------------------------------------------ */

void *kn_out_conn_data(kn_out *o, kn_conn_id id)
{
    kn_out_lane *l = lane_of(o, kn_conn_shard(id));
    return l ? l->conn_data(l->ud, id) : NULL;
}

void kn_out_set_authenticated(kn_out *o, kn_conn_id id)
{
    kn_out_lane *l = lane_of(o, kn_conn_shard(id));
    if (l) l->set_authenticated(l->ud, id);
}

void kn_out_violation(kn_out *o, kn_conn_id id)
{
    kn_out_lane *l = lane_of(o, kn_conn_shard(id));
    if (l) l->violation(l->ud, id);
}

bool kn_out_overloaded(kn_out *o, uint16_t shard)
{
    kn_out_lane *l = lane_of(o, shard);
    return l && l->overloaded(l->ud);
}

int kn_out_send_here(kn_out *o, uint16_t shard, const kn_conn_id *ids, size_t n, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable)
{
    kn_out_lane *l = lane_of(o, shard);
    return l ? l->send_many(l->ud, ids, n, channel, data, len, reliable) : KN_ERR_NOT_FOUND;
}

/* --- any thread ------------------------------------------------------------------- */

/* Bytes for one shard's connections, sent on its thread. */
typedef struct shard_post {
    kn_out *o;
    uint16_t shard;
    uint8_t channel;
    bool reliable;
    size_t n, len;
    uint8_t *data; /* points past ids */
    kn_conn_id ids[];
} shard_post;

static void run_shard_post(void *arg)
{
    shard_post *p = arg;
    kn_out_send_here(p->o, p->shard, p->ids, p->n, p->channel, p->data, p->len, p->reliable);
    kn_free(p);
}

/* Copies the ids of `shard` among ids (k of them) and the bytes into one
 * allocation posted to that shard's thread. */
static int post_to_shard(kn_out *o, uint16_t shard, const kn_conn_id *ids, size_t n, size_t k,
                         uint8_t channel, const uint8_t *data, size_t len, bool reliable)
{
    shard_post *p = kn_malloc(sizeof *p + k * sizeof(kn_conn_id) + (len ? len : 1));
    if (!p) return KN_ERR_NOMEM;
    *p = (shard_post){o, shard, channel, reliable, 0, len, NULL};
    for (size_t i = 0; i < n; i++)
        if (kn_conn_shard(ids[i]) == shard) p->ids[p->n++] = ids[i];
    p->data = (uint8_t *)(p->ids + k);
    if (len) memcpy(p->data, data, len);
    int rc = kn_out_post(o, shard, run_shard_post, p);
    if (rc) kn_free(p);
    return rc;
}

int kn_out_send(kn_out *o, const kn_conn_id *ids, size_t n, uint8_t channel, const uint8_t *data,
                size_t len, bool reliable)
{
    /* How many ids each shard has (one pass); most sends touch one shard. */
    uint32_t per[MAX_SHARDS];
    memset(per, 0, o->n * sizeof *per);
    uint64_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t s = kn_conn_shard(ids[i]);
        if (s >= o->n) continue;
        per[s]++;
        mask |= 1ULL << s;
    }
    int rc = KN_ERR_NOT_FOUND;
    for (uint16_t s = 0; mask; s++, mask >>= 1) {
        kn_out_lane *l = mask & 1 ? lane_of(o, s) : NULL;
        if (!l) continue;
        int r = l->on_thread(l->ud)
                    ? l->send_many(l->ud, ids, n, channel, data, len, reliable)
                    : post_to_shard(o, s, ids, n, per[s], channel, data, len, reliable);
        if (r == KN_OK)
            rc = KN_OK;
        else if (r == KN_ERR_NOMEM) {
            KN_WARN("%u message(s) for network thread %u dropped: out of memory", per[s], s);
            if (rc != KN_OK) rc = r;
        }
    }
    return rc;
}

int kn_out_send_env(kn_out *o, kn_conn_id id, const kn_envelope *env)
{
    uint8_t stack[2048];
    size_t n = kn_envelope_packed_size(env);
    uint8_t *buf = n <= sizeof stack ? stack : kn_malloc(n);
    if (!buf) return KN_ERR_NOMEM;
    kn_envelope_pack(env, buf);
    int rc = kn_out_send(o, &id, 1, KN_CHANNEL_CONTROL, buf, n, true);
    if (buf != stack) kn_free(buf);
    return rc;
}

int kn_out_send_user_here(kn_out *o, const char *user_id, const char *session_id, uint8_t channel,
                          const uint8_t *data, size_t len, bool reliable)
{
    int rc = KN_ERR_NOT_FOUND;
    if (o->dir.conns_of) {
        kn_conn_id stack[USER_CONNS_STACK], *ids = stack;
        size_t n = o->dir.conns_of(o->dir.ud, user_id, session_id, stack, USER_CONNS_STACK);
        if (n > USER_CONNS_STACK) { /* a user with many connections: ask again with room */
            ids = kn_malloc(n * sizeof *ids);
            if (!ids) return KN_ERR_NOMEM;
            size_t again = o->dir.conns_of(o->dir.ud, user_id, session_id, ids, n);
            n = again < n ? again : n;
        }
        if (n) rc = kn_out_send(o, ids, n, channel, data, len, reliable);
        if (ids != stack) kn_free(ids);
    }
    return rc;
}

int kn_out_send_user(kn_out *o, const char *user_id, const char *session_id, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable)
{
    int rc = kn_out_send_user_here(o, user_id, session_id, channel, data, len, reliable);
    if (o->remote.send_user && o->remote.send_user(o->remote.ud, user_id, session_id, channel, data,
                                                   len, reliable) == KN_OK)
        rc = KN_OK;
    return rc;
}

/* Bytes for every authenticated connection of one shard, sent on its thread. */
typedef struct all_post {
    kn_out_lane *lane;
    uint8_t channel;
    bool reliable;
    size_t len;
    uint8_t data[];
} all_post;

static void run_all_post(void *arg)
{
    all_post *p = arg;
    p->lane->send_authenticated(p->lane->ud, p->channel, p->data, p->len, p->reliable);
    kn_free(p);
}

int kn_out_send_all_here(kn_out *o, uint8_t channel, const uint8_t *data, size_t len, bool reliable)
{
    int rc = KN_ERR_NOMEM;
    for (uint16_t s = 0; s < o->n; s++) {
        kn_out_lane *l = lane_of(o, s);
        if (!l || !l->send_authenticated) continue;
        if (l->on_thread(l->ud)) {
            l->send_authenticated(l->ud, channel, data, len, reliable);
            rc = KN_OK;
            continue;
        }
        all_post *p = kn_malloc(sizeof *p + len);
        if (p) {
            *p = (all_post){l, channel, reliable, len};
            memcpy(p->data, data, len);
            if (l->post_fn(l->ud, run_all_post, p) == KN_OK) {
                rc = KN_OK;
                continue;
            }
            kn_free(p);
        }
        KN_WARN("a message for everyone on network thread %u dropped: out of memory", s);
    }
    return rc;
}

int kn_out_send_all(kn_out *o, uint8_t channel, const uint8_t *data, size_t len, bool reliable)
{
    int rc = kn_out_send_all_here(o, channel, data, len, reliable);
    if (o->remote.send_all &&
        o->remote.send_all(o->remote.ud, channel, data, len, reliable) == KN_OK)
        rc = KN_OK;
    return rc;
}

typedef struct close_post {
    kn_out_lane *lane;
    kn_conn_id id;
    uint32_t reason;
} close_post;

static void run_close(void *arg)
{
    close_post *c = arg;
    c->lane->close(c->lane->ud, c->id, c->reason);
    kn_free(c);
}

int kn_out_close(kn_out *o, kn_conn_id id, uint32_t reason)
{
    kn_out_lane *l = lane_of(o, kn_conn_shard(id));
    if (!l) return KN_ERR_NOT_FOUND;
    if (l->on_thread(l->ud)) {
        l->close(l->ud, id, reason);
        return KN_OK;
    }
    close_post *c = kn_malloc(sizeof *c);
    if (!c) return KN_ERR_NOMEM;
    *c = (close_post){l, id, reason};
    int rc = l->post_fn(l->ud, run_close, c);
    if (rc) kn_free(c);
    return rc;
}

int kn_out_on_shard(kn_out *o, uint16_t shard, void (*fn)(void *arg), void *arg)
{
    kn_out_lane *l = lane_of(o, shard);
    if (!l) return KN_ERR_NOT_FOUND;
    if (l->on_thread(l->ud)) {
        fn(arg);
        return KN_OK;
    }
    return l->post_fn(l->ud, fn, arg);
}

int kn_out_post(kn_out *o, uint16_t shard, void (*fn)(void *arg), void *arg)
{
    kn_out_lane *l = lane_of(o, shard);
    return l ? l->post_fn(l->ud, fn, arg) : KN_ERR_NOT_FOUND;
}
