/* cluster: membership and the bus messages of one node (kn_cluster.h).
 *
 * Invariants: one lock guards the peer table, the user interest map and the
 * counters; the bus is called under it only to subscribe and unsubscribe
 * (the interest must follow the registry in the order the changes were
 * seen) and the local hooks never are, except user_conns, which only reads
 * the session registry. A peer is up while it was heard within dead_ms; a
 * peer down for PEER_FORGET_MS leaves the table. The node's own heartbeats
 * never come back (the NATS connection has no echo); one that does comes
 * from another process with our name and is counted, never believed. */
#include "kn_cluster.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_map.h"
#include "kn_mem.h"
#include "kn_time.h"
#include "kn_uuid.h"
#include "cluster.pb-c.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PEER_FORGET_MS   60000
#define REPLY_GAP_MS     100 /* at most one answer to hellos per this */
#define SUBJ_HEARTBEAT   "kaos.v1.node.heartbeat"
#define SUBJ_SESSION_END "kaos.v1.session.end"
#define SUBJ_ALL         "kaos.v1.all"
#define SUBJ_USER        "kaos.v1.user."
#define SUBJ_STREAM      "kaos.v1.stream."
#define SUBJ_LEADERBOARD "kaos.v1.leaderboard"
#define N_NODE_SUBJECTS  4

typedef Kaos__Cluster__V1__BusMessage bus_msg;

typedef struct peer {
    kn_cluster_peer pub;
    char instance[40];
    uint64_t seq;
} peer;

/* What this node listens to beyond the node-wide subjects: a user with
 * connections here (key: the lower-case id), a shared stream with members
 * here (key: the stream key's text); its subscription. */
#define INTEREST_KEY_MAX (4 + 2 * KN_STREAM_ID_MAX + KN_STREAM_LABEL_MAX + 4)
typedef struct interest {
    char key[INTEREST_KEY_MAX];
    void *sub;
    struct interest *next; /* a hash collision's chain */
} interest;

/* A change to tell the local hooks once the lock is released. */
typedef struct peer_event {
    char name[KN_CLUSTER_NAME_MAX];
    bool up, back;
} peer_event;

struct kn_cluster {
    char node[KN_CLUSTER_NAME_MAX];
    char address[80];
    char instance[40];
    kn_cluster_config cfg;
    kn_cluster_bus bus;
    kn_cluster_local local;
    pthread_mutex_t lock;
    peer peers[KN_CLUSTER_MAX_PEERS];
    size_t n_peers;
    kn_map users;   /* kn_map_key_str(key) -> interest chain */
    kn_map streams; /* the same for shared streams */
    char slots[KN_CLUSTER_MAX_SLOTS][KN_CLUSTER_NAME_MAX]; /* slot i + 1 names slots[i] */
    size_t n_slots;
    void *subs[N_NODE_SUBJECTS];
    atomic_bool connected;
    bool hello_due, reply_due;
    int64_t next_beat_ms, last_reply_ms, last_heard_ms, last_sent_ms;
    uint64_t seq;
    kn_cluster_stats stats;
    /* the ticking thread */
    pthread_t thread;
    bool started;
    atomic_bool stopping;
};

/* --- helpers --------------------------------------------------------------------- */

static int64_t wall_now(const kn_cluster *c)
{
    return c->cfg.wall_ms ? c->cfg.wall_ms(c->cfg.clock_ud) : kn_time_wall_ms();
}

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= KN_CLUSTER_NAME_MAX) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_') return false;
    return true;
}

/* An advertised address as it may appear in /healthz and JSON: host:port
 * characters only. */
static bool address_ok(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(".:-_[]", *s)) return false;
    return true;
}

/* A user id as it may appear in a subject: a UUID's text, in lower case. */
static bool user_subject(const char *user_id, char out[KN_CLUSTER_SUBJECT_MAX], char low[37])
{
    if (!user_id || !kn_uuid_valid(user_id)) return false;
    for (size_t i = 0; i < 37; i++)
        low[i] = (char)tolower((unsigned char)user_id[i]);
    snprintf(out, KN_CLUSTER_SUBJECT_MAX, SUBJ_USER "%s", low);
    return true;
}

/* Packs m (its version and origin filled here) and publishes it. */
static int publish(kn_cluster *c, const char *subject, bus_msg *m)
{
    m->version = KN_CLUSTER_BUS_VERSION;
    m->origin = c->node;
    m->sent_ms = wall_now(c);
    uint8_t stack[2048];
    size_t len = kaos__cluster__v1__bus_message__get_packed_size(m);
    uint8_t *buf = len <= sizeof stack ? stack : kn_malloc(len);
    int rc = KN_ERR_NOMEM;
    if (buf) {
        kaos__cluster__v1__bus_message__pack(m, buf);
        rc = c->bus.publish(c->bus.ud, subject, buf, len);
        if (buf != stack) kn_free(buf);
    }
    pthread_mutex_lock(&c->lock);
    if (rc == KN_OK)
        c->stats.messages_out++;
    else
        c->stats.dropped++;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void send_heartbeat(kn_cluster *c, bool hello, uint64_t users)
{
    Kaos__Cluster__V1__Heartbeat hb = KAOS__CLUSTER__V1__HEARTBEAT__INIT;
    hb.address = c->address;
    hb.http_port = c->cfg.http_port;
    hb.instance = c->instance;
    hb.interval_ms = (uint32_t)c->cfg.heartbeat_ms;
    hb.users = users;
    hb.hello = hello;
    bus_msg m = KAOS__CLUSTER__V1__BUS_MESSAGE__INIT;
    m.body_case = KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    pthread_mutex_lock(&c->lock);
    hb.seq = ++c->seq;
    pthread_mutex_unlock(&c->lock);
    publish(c, SUBJ_HEARTBEAT, &m);
}

/* --- interests: subscriptions that follow what this node holds ------------------------ */

/* Under the lock: subscribes to `subject` for key (on) or drops it (off).
 * Returns +1 when it subscribed, -1 when it dropped one, 0 when nothing
 * changed (or the subscription failed: logged). */
static int interest_set(kn_cluster *c, kn_map *m, const char *key, const char *subject, bool on)
{
    uint64_t h = kn_map_key_str(key);
    interest *head = kn_map_get(m, h), *u = head, *prev = NULL;
    while (u && strcmp(u->key, key)) {
        prev = u;
        u = u->next;
    }
    if (on && !u) {
        u = kn_calloc(1, sizeof *u);
        if (u) snprintf(u->key, sizeof u->key, "%s", key);
        if (!u || c->bus.subscribe(c->bus.ud, subject, &u->sub) != KN_OK) {
            KN_WARN("cluster: cannot subscribe to %s; what other nodes send there is not heard "
                    "here",
                    subject);
            kn_free(u);
            return 0;
        }
        u->next = head;
        if (kn_map_put(m, h, u)) {
            c->bus.unsubscribe(c->bus.ud, u->sub);
            kn_free(u);
            return 0;
        }
        return 1;
    }
    if (on || !u) return 0;
    c->bus.unsubscribe(c->bus.ud, u->sub);
    if (prev)
        prev->next = u->next;
    else if (u->next)
        kn_map_put(m, h, u->next); /* replaces: cannot fail */
    else
        kn_map_del(m, h);
    kn_free(u);
    return -1;
}

static void interests_free(kn_cluster *c, kn_map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        interest *u = m->slots[i].key ? m->slots[i].value : NULL;
        while (u) {
            interest *next = u->next;
            if (u->sub) c->bus.unsubscribe(c->bus.ud, u->sub);
            kn_free(u);
            u = next;
        }
    }
    kn_map_deinit(m);
}

/* --- create / destroy ---------------------------------------------------------------- */

int kn_cluster_create(const kn_cluster_config *cfg, const kn_cluster_bus *bus,
                      const kn_cluster_local *local, kn_cluster **out)
{
    *out = NULL;
    if (!name_ok(cfg->node) || cfg->heartbeat_ms <= 0 || cfg->dead_ms < 2 * cfg->heartbeat_ms ||
        !bus || !bus->publish || !bus->subscribe || !bus->unsubscribe || !bus->connected)
        return KN_ERR_INVALID_ARGUMENT;
    kn_cluster *c = kn_calloc(1, sizeof *c);
    if (!c) return KN_ERR_NOMEM;
    snprintf(c->node, sizeof c->node, "%s", cfg->node);
    snprintf(c->address, sizeof c->address, "%s", cfg->address ? cfg->address : "");
    kn_uuid_v4(c->instance);
    c->cfg = *cfg;
    c->cfg.node = c->node;
    c->cfg.address = c->address;
    c->bus = *bus;
    if (local) c->local = *local;
    pthread_mutex_init(&c->lock, NULL);
    kn_map_init(&c->users);
    kn_map_init(&c->streams);
    c->hello_due = true;
    atomic_store(&c->connected, bus->connected(bus->ud));
    static const char *const subjects[N_NODE_SUBJECTS] = {SUBJ_HEARTBEAT, SUBJ_SESSION_END,
                                                          SUBJ_ALL, SUBJ_LEADERBOARD};
    for (size_t i = 0; i < N_NODE_SUBJECTS; i++) {
        int rc = bus->subscribe(bus->ud, subjects[i], &c->subs[i]);
        if (rc) {
            kn_cluster_destroy(c);
            return rc;
        }
    }
    *out = c;
    return KN_OK;
}

void kn_cluster_destroy(kn_cluster *c)
{
    if (!c) return;
    kn_cluster_stop(c);
    if (atomic_load(&c->connected)) {
        Kaos__Cluster__V1__Leave lv = KAOS__CLUSTER__V1__LEAVE__INIT;
        lv.instance = c->instance;
        bus_msg m = KAOS__CLUSTER__V1__BUS_MESSAGE__INIT;
        m.body_case = KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_LEAVE;
        m.leave = &lv;
        publish(c, SUBJ_HEARTBEAT, &m);
    }
    for (size_t i = 0; i < N_NODE_SUBJECTS; i++)
        if (c->subs[i]) c->bus.unsubscribe(c->bus.ud, c->subs[i]);
    interests_free(c, &c->users);
    interests_free(c, &c->streams);
    pthread_mutex_destroy(&c->lock);
    kn_free(c);
}

/* --- membership ------------------------------------------------------------------------ */

static peer *find_peer(kn_cluster *c, const char *name)
{
    for (size_t i = 0; i < c->n_peers; i++)
        if (!strcmp(c->peers[i].pub.name, name)) return &c->peers[i];
    return NULL;
}

static void tell_peers(kn_cluster *c, const peer_event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c->local.peer_changed)
            c->local.peer_changed(c->local.ud, ev[i].name, ev[i].up, ev[i].back);
}

/* Under the lock: name's slot, given one when new (0: ours, or full). */
static uint16_t slot_of(kn_cluster *c, const char *name, bool *was_new)
{
    if (was_new) *was_new = false;
    if (!strcmp(name, c->node)) return 0;
    for (size_t i = 0; i < c->n_slots; i++)
        if (!strcmp(c->slots[i], name)) return (uint16_t)(i + 1);
    if (c->n_slots == KN_CLUSTER_MAX_SLOTS) return 0;
    snprintf(c->slots[c->n_slots], KN_CLUSTER_NAME_MAX, "%s", name);
    if (was_new) *was_new = true;
    return (uint16_t)++c->n_slots;
}

uint16_t kn_cluster_node_slot(kn_cluster *c, const char *name)
{
    pthread_mutex_lock(&c->lock);
    uint16_t slot = name_ok(name) ? slot_of(c, name, NULL) : 0;
    pthread_mutex_unlock(&c->lock);
    return slot;
}

/* Under the lock: a heartbeat of `origin`. Returns whether a peer came up;
 * *back: one heard before (it had died or left). */
static bool heard(kn_cluster *c, const char *origin, const Kaos__Cluster__V1__Heartbeat *hb,
                  int64_t now, bool *back)
{
    bool fresh_slot = true;
    if (strcmp(origin, c->node)) slot_of(c, origin, &fresh_slot);
    const char *instance = hb->instance ? hb->instance : "";
    if (!strcmp(origin, c->node)) {
        if (strcmp(instance, c->instance)) {
            c->stats.name_clashes++;
            KN_ERROR("cluster: another process (instance %.36s at %s) calls itself %s: node "
                     "names must be unique",
                     instance, hb->address ? hb->address : "?", c->node);
        }
        return false;
    }
    peer *p = find_peer(c, origin);
    bool came_up = false;
    if (!p) {
        if (c->n_peers == KN_CLUSTER_MAX_PEERS) {
            c->stats.dropped++;
            KN_WARN("cluster: peer table full (%d); %s ignored", KN_CLUSTER_MAX_PEERS, origin);
            return false;
        }
        p = &c->peers[c->n_peers++];
        memset(p, 0, sizeof *p);
        snprintf(p->pub.name, sizeof p->pub.name, "%s", origin);
        KN_INFO("cluster: peer %s joined (udp %s)", origin, hb->address ? hb->address : "?");
        came_up = true;
    } else if (!p->pub.up) {
        KN_INFO("cluster: peer %s is up again (udp %s)", origin, hb->address ? hb->address : "?");
        came_up = true;
    } else if (strcmp(p->instance, instance)) {
        KN_WARN("cluster: peer %s restarted (instance %.36s)", origin, instance);
    }
    snprintf(p->instance, sizeof p->instance, "%s", instance);
    snprintf(p->pub.address, sizeof p->pub.address, "%s",
             hb->address && address_ok(hb->address) ? hb->address : "");
    p->pub.http_port = (uint16_t)hb->http_port;
    p->pub.users = hb->users;
    p->pub.last_seen_ms = now;
    p->pub.up = true;
    p->seq = hb->seq;
    c->last_heard_ms = now;
    if (hb->hello || came_up) c->reply_due = true;
    *back = came_up && !fresh_slot;
    return came_up;
}

static bool left(kn_cluster *c, const char *origin, const Kaos__Cluster__V1__Leave *lv)
{
    peer *p = find_peer(c, origin);
    if (!p || !p->pub.up || strcmp(p->instance, lv->instance ? lv->instance : "")) return false;
    p->pub.up = false;
    KN_INFO("cluster: peer %s left", origin);
    return true;
}

void kn_cluster_tick(kn_cluster *c, int64_t now)
{
    peer_event ev[16];
    size_t n_ev = 0;
    bool beat = false, hello = false;
    pthread_mutex_lock(&c->lock);
    uint64_t users = c->stats.users_subscribed;
    for (size_t i = 0; i < c->n_peers;) {
        peer *p = &c->peers[i];
        if (p->pub.up && now - p->pub.last_seen_ms > c->cfg.dead_ms) {
            p->pub.up = false;
            c->stats.peers_died++;
            KN_WARN("cluster: peer %s is dead (no heartbeat for %lld ms)", p->pub.name,
                    (long long)(now - p->pub.last_seen_ms));
            if (n_ev < sizeof ev / sizeof ev[0]) {
                snprintf(ev[n_ev].name, sizeof ev[n_ev].name, "%s", p->pub.name);
                ev[n_ev].back = false;
                ev[n_ev++].up = false;
            }
        }
        if (!p->pub.up && now - p->pub.last_seen_ms > PEER_FORGET_MS) {
            *p = c->peers[--c->n_peers];
            continue;
        }
        i++;
    }
    if (atomic_load(&c->connected)) {
        hello = c->hello_due;
        bool reply = c->reply_due && now - c->last_reply_ms >= REPLY_GAP_MS;
        beat = hello || reply || now >= c->next_beat_ms;
        if (beat) {
            c->hello_due = false;
            c->reply_due = false;
            c->last_reply_ms = now;
            c->next_beat_ms = now + c->cfg.heartbeat_ms;
            c->last_sent_ms = now;
        }
    }
    pthread_mutex_unlock(&c->lock);
    tell_peers(c, ev, n_ev);
    if (beat) send_heartbeat(c, hello, users);
}

void kn_cluster_bus_changed(kn_cluster *c, bool connected)
{
    bool was = atomic_exchange(&c->connected, connected);
    if (was == connected) return;
    pthread_mutex_lock(&c->lock);
    if (connected) c->hello_due = true; /* peers answer at once: the table fills in a round trip */
    pthread_mutex_unlock(&c->lock);
    if (connected && c->local.bus_back) c->local.bus_back(c->local.ud);
    if (connected)
        KN_INFO("cluster: bus connected; node %s rejoins", c->node);
    else
        KN_WARN("cluster: bus connection lost; node %s serves its own players alone until it "
                "returns",
                c->node);
}

/* --- receiving ---------------------------------------------------------------------------- */

/* --- shared streams ------------------------------------------------------------------------ */

/* The stream's subject, and its key as text (for the interest map). */
static void stream_subject(const kn_stream *s, char out[KN_CLUSTER_SUBJECT_MAX],
                           char key[INTEREST_KEY_MAX])
{
    snprintf(key, INTEREST_KEY_MAX, "%u\x1f%s\x1f%s\x1f%s", s->mode, s->subject, s->subcontext,
             s->label);
    snprintf(out, KN_CLUSTER_SUBJECT_MAX, SUBJ_STREAM "%016llx",
             (unsigned long long)kn_map_key_str(key));
}

static bool copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) return false;
    memcpy(dst, src ? src : "", n + 1);
    return true;
}

/* A stream key from a peer, checked as the tracker would. */
static bool key_from(const Kaos__Cluster__V1__StreamKey *k, kn_stream *s)
{
    memset(s, 0, sizeof *s);
    if (!k || k->mode >= KN_STREAM_MODES) return false;
    s->mode = (uint8_t)k->mode;
    return copy_text(s->subject, sizeof s->subject, k->subject) &&
           copy_text(s->subcontext, sizeof s->subcontext, k->subcontext) &&
           copy_text(s->label, sizeof s->label, k->label);
}

/* A presence from a peer; its status points into the message. */
static bool presence_from(const Kaos__Cluster__V1__StreamPresence *p, uint16_t node,
                          kn_presence *out)
{
    memset(out, 0, sizeof *out);
    if (!p || !p->conn) return false;
    out->conn = p->conn;
    out->node = node;
    out->hidden = p->hidden;
    out->persistence = p->persistence;
    out->status = p->has_status ? (p->status ? p->status : (char *)"") : NULL;
    if (out->status && strlen(out->status) > KN_STREAM_STATUS_MAX) return false;
    return copy_text(out->user_id, sizeof out->user_id, p->user_id) &&
           copy_text(out->session_id, sizeof out->session_id, p->session_id) &&
           copy_text(out->username, sizeof out->username, p->username);
}

static bool receive_stream(kn_cluster *c, const Kaos__Cluster__V1__BusMessage *m)
{
    const kn_cluster_local *l = &c->local;
    kn_stream s;
    pthread_mutex_lock(&c->lock);
    uint16_t node = slot_of(c, m->origin, NULL);
    pthread_mutex_unlock(&c->lock);
    if (!node) return false;
    switch (m->body_case) {
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_STREAM_CHANGE: {
        const Kaos__Cluster__V1__StreamChange *ch = m->stream_change;
        kn_presence join;
        if (!key_from(ch->stream, &s) || (ch->join && !presence_from(ch->join, node, &join)))
            return false;
        if (l->stream_changed)
            l->stream_changed(l->ud, node, &s, ch->join ? &join : NULL, ch->has_leave,
                              ch->leave_conn);
        return true;
    }
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_STREAM_STATE: {
        const Kaos__Cluster__V1__StreamState *st = m->stream_state;
        if (!key_from(st->stream, &s) || st->n_presences > 1000000) return false;
        kn_presence *ps = st->n_presences ? kn_malloc(st->n_presences * sizeof *ps) : NULL;
        if (st->n_presences && !ps) return false;
        bool ok = true;
        for (size_t i = 0; i < st->n_presences && ok; i++)
            ok = presence_from(st->presences[i], node, &ps[i]);
        if (ok && l->stream_state) l->stream_state(l->ud, node, &s, ps, st->n_presences, st->ask);
        kn_free(ps);
        return ok;
    }
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_STREAM_DATA: {
        const Kaos__Cluster__V1__StreamData *d = m->stream_data;
        if (!key_from(d->stream, &s) || d->channel >= 256) return false;
        if (l->stream_data)
            l->stream_data(l->ud, &s, (uint8_t)d->channel, d->data.data, d->data.len, d->reliable);
        return true;
    }
    default:
        return false;
    }
}

void kn_cluster_receive(kn_cluster *c, const uint8_t *data, size_t len, int64_t now)
{
    bus_msg *m = kaos__cluster__v1__bus_message__unpack(NULL, len, data);
    if (!m || m->version != KN_CLUSTER_BUS_VERSION || !m->origin || !*m->origin) {
        pthread_mutex_lock(&c->lock);
        c->stats.dropped++;
        pthread_mutex_unlock(&c->lock);
        if (m) kaos__cluster__v1__bus_message__free_unpacked(m, NULL);
        return;
    }
    if (!name_ok(m->origin)) { /* it would reach logs, /healthz and /v2/nodes */
        pthread_mutex_lock(&c->lock);
        c->stats.dropped++;
        pthread_mutex_unlock(&c->lock);
        kaos__cluster__v1__bus_message__free_unpacked(m, NULL);
        return;
    }
    peer_event ev = {{0}, true, false};
    bool changed = false, known = true;
    pthread_mutex_lock(&c->lock);
    c->stats.messages_in++;
    switch (m->body_case) {
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_HEARTBEAT:
        changed = heard(c, m->origin, m->heartbeat, now, &ev.back);
        break;
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_LEAVE:
        changed = left(c, m->origin, m->leave);
        ev.up = false;
        break;
    default:
        known = m->body_case != KAOS__CLUSTER__V1__BUS_MESSAGE__BODY__NOT_SET;
        if (!known) c->stats.dropped++;
        break;
    }
    pthread_mutex_unlock(&c->lock);
    if (changed) {
        snprintf(ev.name, sizeof ev.name, "%s", m->origin);
        tell_peers(c, &ev, 1);
    }
    const kn_cluster_local *l = &c->local;
    bool self = !strcmp(m->origin, c->node);
    switch (self || !known ? KAOS__CLUSTER__V1__BUS_MESSAGE__BODY__NOT_SET : m->body_case) {
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_SESSION_END: {
        const Kaos__Cluster__V1__SessionEnd *e = m->session_end;
        if (l->end_sessions && e->user_id && kn_uuid_valid(e->user_id))
            l->end_sessions(l->ud, e->user_id,
                            e->session_id && *e->session_id ? e->session_id : NULL, (int)e->why,
                            e->revoke_expires);
        break;
    }
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_SESSION_BOUND: {
        const Kaos__Cluster__V1__SessionBound *b = m->session_bound;
        if (l->replace_sessions && b->user_id && kn_uuid_valid(b->user_id) && b->session_id)
            l->replace_sessions(l->ud, b->user_id, b->session_id, b->bound_ms,
                                strcmp(m->origin, c->node) > 0);
        break;
    }
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_DELIVER: {
        const Kaos__Cluster__V1__UserDeliver *d = m->deliver;
        if (l->deliver_user && d->user_id && kn_uuid_valid(d->user_id) && d->channel < 256)
            l->deliver_user(l->ud, d->user_id,
                            d->session_id && *d->session_id ? d->session_id : NULL,
                            (uint8_t)d->channel, d->data.data, d->data.len, d->reliable);
        break;
    }
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_BROADCAST: {
        const Kaos__Cluster__V1__Broadcast *b = m->broadcast;
        if (l->deliver_all && b->channel < 256)
            l->deliver_all(l->ud, (uint8_t)b->channel, b->data.data, b->data.len, b->reliable);
        break;
    }
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_LEADERBOARD: {
        const Kaos__Cluster__V1__LeaderboardEntry *e = m->leaderboard;
        if (e->board && *e->board && strlen(e->board) <= 128 && e->owner &&
            kn_uuid_valid(e->owner)) {
            char owner[37];
            for (size_t i = 0; i < sizeof owner; i++)
                owner[i] = (char)tolower((unsigned char)e->owner[i]);
            if (l->leaderboard)
                l->leaderboard(l->ud, e->board, e->expiry, owner, e->score, e->subscore, e->time_us,
                               e->version, e->removed);
        } else {
            pthread_mutex_lock(&c->lock);
            c->stats.dropped++;
            pthread_mutex_unlock(&c->lock);
        }
        break;
    }
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_STREAM_CHANGE:
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_STREAM_STATE:
    case KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_STREAM_DATA:
        if (!receive_stream(c, m)) {
            pthread_mutex_lock(&c->lock);
            c->stats.dropped++;
            pthread_mutex_unlock(&c->lock);
        }
        break;
    default:
        break;
    }
    kaos__cluster__v1__bus_message__free_unpacked(m, NULL);
}

/* --- sending ---------------------------------------------------------------------------------- */

int kn_cluster_send_user(kn_cluster *c, const char *user_id, const char *session_id,
                         uint8_t channel, const uint8_t *data, size_t len, bool reliable)
{
    char subject[KN_CLUSTER_SUBJECT_MAX], low[37];
    if (!user_subject(user_id, subject, low)) return KN_ERR_INVALID_ARGUMENT;
    /* A live push delayed until the bus returns is worse than none: what
     * matters is in Postgres, where the client lists it. */
    if (!atomic_load(&c->connected)) return KN_ERR_UNAVAILABLE;
    Kaos__Cluster__V1__UserDeliver d = KAOS__CLUSTER__V1__USER_DELIVER__INIT;
    d.user_id = low;
    d.session_id = (char *)(session_id ? session_id : "");
    d.channel = channel;
    d.reliable = reliable;
    d.data = (ProtobufCBinaryData){len, (uint8_t *)data};
    bus_msg m = KAOS__CLUSTER__V1__BUS_MESSAGE__INIT;
    m.body_case = KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_DELIVER;
    m.deliver = &d;
    return publish(c, subject, &m);
}

int kn_cluster_send_all(kn_cluster *c, uint8_t channel, const uint8_t *data, size_t len,
                        bool reliable)
{
    if (!atomic_load(&c->connected)) return KN_ERR_UNAVAILABLE;
    Kaos__Cluster__V1__Broadcast b = KAOS__CLUSTER__V1__BROADCAST__INIT;
    b.channel = channel;
    b.reliable = reliable;
    b.data = (ProtobufCBinaryData){len, (uint8_t *)data};
    bus_msg m = KAOS__CLUSTER__V1__BUS_MESSAGE__INIT;
    m.body_case = KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_BROADCAST;
    m.broadcast = &b;
    return publish(c, SUBJ_ALL, &m);
}

int kn_cluster_sessions_ended(kn_cluster *c, const char *user_id, const char *session_id, int why,
                              int64_t revoke_expires)
{
    char subject[KN_CLUSTER_SUBJECT_MAX], low[37];
    if (!user_subject(user_id, subject, low)) return KN_ERR_INVALID_ARGUMENT;
    Kaos__Cluster__V1__SessionEnd e = KAOS__CLUSTER__V1__SESSION_END__INIT;
    e.user_id = low;
    e.session_id = (char *)(session_id ? session_id : "");
    e.why = (Kaos__Cluster__V1__EndReason)why;
    e.revoke_expires = revoke_expires;
    bus_msg m = KAOS__CLUSTER__V1__BUS_MESSAGE__INIT;
    m.body_case = KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_SESSION_END;
    m.session_end = &e;
    /* A logout matters where the user is; a ban or deletion everywhere, so
     * a login racing with it is refused on every node. Published while the
     * bus is down too: the client library holds it until it reconnects. */
    bool everyone = why == KAOS__CLUSTER__V1__END_REASON__END_BAN ||
                    why == KAOS__CLUSTER__V1__END_REASON__END_DELETE;
    int rc = publish(c, everyone ? SUBJ_SESSION_END : subject, &m);
    if (rc)
        KN_WARN("cluster: the end of the sessions of %s did not reach the other nodes: %s", low,
                kn_err_text(rc));
    return rc;
}

int kn_cluster_session_bound(kn_cluster *c, const char *user_id, const char *session_id,
                             int64_t bound_ms)
{
    if (!c->cfg.single_session) return KN_OK;
    char subject[KN_CLUSTER_SUBJECT_MAX], low[37];
    if (!user_subject(user_id, subject, low) || !session_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__Cluster__V1__SessionBound b = KAOS__CLUSTER__V1__SESSION_BOUND__INIT;
    b.user_id = low;
    b.session_id = (char *)session_id;
    b.bound_ms = bound_ms;
    bus_msg m = KAOS__CLUSTER__V1__BUS_MESSAGE__INIT;
    m.body_case = KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_SESSION_BOUND;
    m.session_bound = &b;
    return publish(c, subject, &m);
}

void kn_cluster_user_changed(kn_cluster *c, const char *user_id)
{
    char subject[KN_CLUSTER_SUBJECT_MAX], low[37];
    if (!user_subject(user_id, subject, low)) return;
    pthread_mutex_lock(&c->lock);
    bool here = c->local.user_conns && c->local.user_conns(c->local.ud, low) > 0;
    c->stats.users_subscribed += (uint64_t)(int64_t)interest_set(c, &c->users, low, subject, here);
    pthread_mutex_unlock(&c->lock);
}

/* --- the thread ------------------------------------------------------------------------------- */

static void *cluster_main(void *arg)
{
    kn_cluster *c = arg;
    int64_t step = c->cfg.heartbeat_ms / 4;
    if (step > 50) step = 50;
    if (step < 5) step = 5;
    while (!atomic_load(&c->stopping)) {
        kn_cluster_tick(c, kn_time_mono_ms());
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int kn_cluster_start(kn_cluster *c)
{
    atomic_store(&c->stopping, false);
    if (pthread_create(&c->thread, NULL, cluster_main, c) != 0) return KN_ERR_INTERNAL;
    c->started = true;
    return KN_OK;
}

void kn_cluster_stop(kn_cluster *c)
{
    if (!c || !c->started) return;
    atomic_store(&c->stopping, true);
    pthread_join(c->thread, NULL);
    c->started = false;
}

/* --- reading ---------------------------------------------------------------------------------- */

size_t kn_cluster_peers(kn_cluster *c, kn_cluster_peer *out, size_t cap)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->n_peers;
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = c->peers[i].pub;
    pthread_mutex_unlock(&c->lock);
    return n;
}

bool kn_cluster_peer_get(kn_cluster *c, const char *name, kn_cluster_peer *out)
{
    pthread_mutex_lock(&c->lock);
    peer *p = find_peer(c, name);
    if (p) *out = p->pub;
    pthread_mutex_unlock(&c->lock);
    return p != NULL;
}

void kn_cluster_stats_get(kn_cluster *c, kn_cluster_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    out->bus_connected = atomic_load(&c->connected);
    out->peers_up = 0;
    for (size_t i = 0; i < c->n_peers; i++)
        out->peers_up += c->peers[i].pub.up;
    out->last_heartbeat_ms = c->last_heard_ms;
    out->last_sent_ms = c->last_sent_ms;
    pthread_mutex_unlock(&c->lock);
}

const char *kn_cluster_node(const kn_cluster *c)
{
    return c->node;
}

#define APPEND(...)                                                                                \
    do {                                                                                           \
        if (n < cap) {                                                                             \
            int w_ = snprintf(buf + n, cap - n, __VA_ARGS__);                                      \
            n = w_ < 0 ? n : (size_t)w_ < cap - n ? n + (size_t)w_ : cap;                          \
        }                                                                                          \
    } while (0)

size_t kn_cluster_metrics(kn_cluster *c, int64_t now, char *buf, size_t n, size_t cap)
{
    kn_cluster_stats s;
    kn_cluster_stats_get(c, &s);
#define GAUGE(name, help, v)                                                                       \
    APPEND("# HELP kaos_cluster_" name " " help "\n# TYPE kaos_cluster_" name                      \
           " %s\nkaos_cluster_" name " %lld\n",                                                    \
           strstr(name, "_total") ? "counter" : "gauge", (long long)(v))
    GAUGE("bus_connected", "1 while this node is connected to the cluster bus", s.bus_connected);
    GAUGE("peers", "other nodes heard within the dead-node timeout", s.peers_up);
    GAUGE("heartbeat_age_ms", "ms since the last heartbeat heard from a peer (-1: none yet)",
          s.last_heartbeat_ms ? now - s.last_heartbeat_ms : -1);
    GAUGE("users_subscribed", "users this node receives bus messages for", s.users_subscribed);
    GAUGE("messages_out_total", "bus messages published", s.messages_out);
    GAUGE("messages_in_total", "bus messages received", s.messages_in);
    GAUGE("messages_dropped_total",
          "bus messages not published, undecodable or of another bus version", s.dropped);
    GAUGE("peers_died_total", "peers declared dead by the heartbeat timeout", s.peers_died);
    GAUGE("name_clashes_total", "heartbeats of another process using this node's name",
          s.name_clashes);
#undef GAUGE
    kn_cluster_peer peers[KN_CLUSTER_MAX_PEERS];
    size_t np = kn_cluster_peers(c, peers, KN_CLUSTER_MAX_PEERS);
    APPEND("# HELP kaos_cluster_peer_up 1 while the peer is heard\n# TYPE kaos_cluster_peer_up "
           "gauge\n");
    for (size_t i = 0; i < np && i < KN_CLUSTER_MAX_PEERS; i++)
        APPEND("kaos_cluster_peer_up{peer=\"%s\"} %d\n", peers[i].name, peers[i].up ? 1 : 0);
    return n;
}

size_t kn_cluster_health(kn_cluster *c, int64_t now, char *buf, size_t n, size_t cap)
{
    kn_cluster_stats s;
    kn_cluster_stats_get(c, &s);
    APPEND("cluster node=%s bus=%s peers=%u last_heartbeat_ms=%lld\n", c->node,
           s.bus_connected ? "connected" : "disconnected", s.peers_up,
           s.last_heartbeat_ms ? (long long)(now - s.last_heartbeat_ms) : -1LL);
    kn_cluster_peer peers[KN_CLUSTER_MAX_PEERS];
    size_t np = kn_cluster_peers(c, peers, KN_CLUSTER_MAX_PEERS);
    for (size_t i = 0; i < np && i < KN_CLUSTER_MAX_PEERS; i++)
        APPEND("peer %s %s udp=%s http=%u seen_ms=%lld users=%llu\n", peers[i].name,
               peers[i].up ? "up" : "dead", peers[i].address, peers[i].http_port,
               (long long)(now - peers[i].last_seen_ms), (unsigned long long)peers[i].users);
    return n;
}

size_t kn_cluster_nodes_json(kn_cluster *c, char *buf, size_t cap)
{
    kn_cluster_stats s;
    kn_cluster_stats_get(c, &s);
    kn_cluster_peer *peers = kn_malloc(KN_CLUSTER_MAX_PEERS * sizeof *peers);
    size_t np = peers ? kn_cluster_peers(c, peers, KN_CLUSTER_MAX_PEERS) : 0;
    size_t n = 0;
    APPEND("{\"node\":\"%s\",\"nodes\":[", c->node);
    size_t mark = n;
    APPEND("{\"name\":\"%s\",\"address\":\"%s\",\"http_port\":%u,\"users\":%llu}", c->node,
           address_ok(c->address) ? c->address : "", c->cfg.http_port,
           (unsigned long long)s.users_subscribed);
    for (size_t i = 0; i < np && i < KN_CLUSTER_MAX_PEERS; i++) {
        if (!peers[i].up) continue;
        mark = n;
        APPEND(",{\"name\":\"%s\",\"address\":\"%s\",\"http_port\":%u,\"users\":%llu}",
               peers[i].name, peers[i].address, peers[i].http_port,
               (unsigned long long)peers[i].users);
        if (n >= cap - 3) n = mark; /* did not fit: left out, room kept for the end */
    }
    kn_free(peers);
    if (n >= cap - 3) n = mark;
    APPEND("]}");
    if (n >= cap) n = cap - 1;
    buf[n] = '\0';
    return n;
}

/* --- shared streams: what this node tells ---------------------------------------------------- */

static void key_to(const kn_stream *s, Kaos__Cluster__V1__StreamKey *k)
{
    kaos__cluster__v1__stream_key__init(k);
    k->mode = s->mode;
    k->subject = (char *)s->subject;
    k->subcontext = (char *)s->subcontext;
    k->label = (char *)s->label;
}

static void presence_to(const kn_presence *p, Kaos__Cluster__V1__StreamPresence *out)
{
    kaos__cluster__v1__stream_presence__init(out);
    out->conn = p->conn;
    out->user_id = (char *)p->user_id;
    out->session_id = (char *)p->session_id;
    out->username = (char *)p->username;
    out->hidden = p->hidden;
    out->persistence = p->persistence;
    out->has_status = p->status != NULL;
    out->status = p->status ? p->status : (char *)"";
}

void kn_cluster_stream_interest(kn_cluster *c, const kn_stream *s, bool on,
                                const kn_presence *members, size_t n)
{
    char subject[KN_CLUSTER_SUBJECT_MAX], key[INTEREST_KEY_MAX];
    stream_subject(s, subject, key);
    pthread_mutex_lock(&c->lock);
    interest_set(c, &c->streams, key, subject, on);
    pthread_mutex_unlock(&c->lock);
    if (on) kn_cluster_stream_state(c, s, members, n, true);
}

int kn_cluster_stream_changed(kn_cluster *c, const kn_stream *s, const kn_presence *join,
                              const kn_presence *leave)
{
    char subject[KN_CLUSTER_SUBJECT_MAX], key[INTEREST_KEY_MAX];
    stream_subject(s, subject, key);
    Kaos__Cluster__V1__StreamKey k;
    key_to(s, &k);
    Kaos__Cluster__V1__StreamPresence p;
    Kaos__Cluster__V1__StreamChange ch = KAOS__CLUSTER__V1__STREAM_CHANGE__INIT;
    ch.stream = &k;
    if (join) {
        presence_to(join, &p);
        ch.join = &p;
    }
    if (leave) {
        ch.has_leave = true;
        ch.leave_conn = leave->conn;
    }
    bus_msg m = KAOS__CLUSTER__V1__BUS_MESSAGE__INIT;
    m.body_case = KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_STREAM_CHANGE;
    m.stream_change = &ch;
    return publish(c, subject, &m);
}

int kn_cluster_stream_state(kn_cluster *c, const kn_stream *s, const kn_presence *members, size_t n,
                            bool ask)
{
    char subject[KN_CLUSTER_SUBJECT_MAX], text[INTEREST_KEY_MAX];
    stream_subject(s, subject, text);
    size_t mine = 0;
    for (size_t i = 0; i < n; i++)
        mine += members[i].node == 0;
    Kaos__Cluster__V1__StreamPresence *ps = mine ? kn_malloc(mine * sizeof *ps) : NULL;
    Kaos__Cluster__V1__StreamPresence **pp = mine ? kn_malloc(mine * sizeof *pp) : NULL;
    if (mine && (!ps || !pp)) {
        kn_free(ps);
        kn_free(pp);
        return KN_ERR_NOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (members[i].node == 0) {
            presence_to(&members[i], &ps[k]);
            pp[k] = &ps[k];
            k++;
        }
    Kaos__Cluster__V1__StreamKey key;
    key_to(s, &key);
    Kaos__Cluster__V1__StreamState st = KAOS__CLUSTER__V1__STREAM_STATE__INIT;
    st.stream = &key;
    st.n_presences = k;
    st.presences = pp;
    st.ask = ask;
    bus_msg m = KAOS__CLUSTER__V1__BUS_MESSAGE__INIT;
    m.body_case = KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_STREAM_STATE;
    m.stream_state = &st;
    int rc = publish(c, subject, &m);
    kn_free(ps);
    kn_free(pp);
    return rc;
}

int kn_cluster_stream_send(kn_cluster *c, const kn_stream *s, uint8_t channel, const uint8_t *data,
                           size_t len, bool reliable)
{
    if (!atomic_load(&c->connected)) return KN_ERR_UNAVAILABLE;
    char subject[KN_CLUSTER_SUBJECT_MAX], key[INTEREST_KEY_MAX];
    stream_subject(s, subject, key);
    Kaos__Cluster__V1__StreamKey k;
    key_to(s, &k);
    Kaos__Cluster__V1__StreamData d = KAOS__CLUSTER__V1__STREAM_DATA__INIT;
    d.stream = &k;
    d.channel = channel;
    d.reliable = reliable;
    d.data = (ProtobufCBinaryData){len, (uint8_t *)data};
    bus_msg m = KAOS__CLUSTER__V1__BUS_MESSAGE__INIT;
    m.body_case = KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_STREAM_DATA;
    m.stream_data = &d;
    return publish(c, subject, &m);
}

/* --- leaderboards ------------------------------------------------------------------------------
 */

int kn_cluster_leaderboard(kn_cluster *c, const char *board, int64_t expiry, const char *owner,
                           int64_t score, int64_t subscore, int64_t time_us, int64_t version,
                           bool removed)
{
    Kaos__Cluster__V1__LeaderboardEntry e = KAOS__CLUSTER__V1__LEADERBOARD_ENTRY__INIT;
    e.board = (char *)board;
    e.expiry = expiry;
    e.owner = (char *)owner;
    e.score = score;
    e.subscore = subscore;
    e.time_us = time_us;
    e.version = version;
    e.removed = removed;
    bus_msg m = KAOS__CLUSTER__V1__BUS_MESSAGE__INIT;
    m.body_case = KAOS__CLUSTER__V1__BUS_MESSAGE__BODY_LEADERBOARD;
    m.leaderboard = &e;
    return publish(c, SUBJ_LEADERBOARD, &m);
}
