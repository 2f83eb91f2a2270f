/* party: the party service (kn_party.h).
 *
 * Invariants, under the lock: a party's members here are exactly the
 * presences on its stream, in join order; the leader is one of them; a
 * party with no member does not exist (its record and its stream go
 * together); a join request is never also a member.
 *
 * Indexes, so no call walks every party: by_conn has, for each connection,
 * the parties it is a member of or asks to join (one entry per relation),
 * which a session's end reads; listable chains the open, visible parties
 * (open and hidden never change), newest first; and each listable party
 * whose label is a JSON object sits in one label bucket per top-level
 * string or boolean field (key: field and value), which a listing whose
 * query has a `+field:value` term reads instead of every listable party.
 * An index that cannot grow fails the call that needed it (out of memory),
 * never leaving a party out. */
#include "kn_party.h"
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_map.h"
#include "kn_match.h"
#include "kn_mem.h"
#include "kn_text.h"
#include "kn_uuid.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Label fields a party is indexed by: every one a label can hold (the
 * shortest field, "a":"", takes 7 bytes with its comma). */
#define LABEL_KEYS_MAX (KN_STREAM_LABEL_MAX / 7 + 1)

struct party;
/* A party's place in one label bucket (a doubly linked chain). */
typedef struct label_link {
    uint64_t key;
    struct party *prev, *next;
} label_link;

typedef struct party {
    char id[37];
    uint64_t seq;                /* creation order: newest lists first among equals */
    struct party *lprev, *lnext; /* listable: open and not hidden */
    label_link links[LABEL_KEYS_MAX];
    size_t n_links;
    bool open, hidden;
    uint32_t max_size;
    char label[KN_STREAM_LABEL_MAX + 1];
    size_t leader;         /* index into members */
    kn_presence *members;  /* join order */
    size_t n_members;      /* >= 1 while the party exists */
    kn_presence *requests; /* oldest first */
    size_t n_requests;
    uint64_t version;          /* bumped by every change of members */
    struct party *prev, *next; /* every party, for a connection's end */
} party;

struct kn_parties {
    pthread_mutex_t lock;
    kn_tracker *tracker;
    kn_party_hooks hooks;
    kn_map by_id; /* kn_map_key_str(id) -> party */
    party *all;
    size_t count;
    kn_map by_conn;  /* conn -> conn_parties */
    party *listable; /* newest first */
    size_t n_listable;
    kn_map labels; /* label_key(field, value) -> the first party of that bucket */
    uint64_t seq;
    size_t last_scanned; /* parties the last listing evaluated */
};

/* The parties a connection is in or asks to join. */
typedef struct conn_parties {
    party **v;
    size_t n, cap;
} conn_parties;

/* --- the connection index --------------------------------------------------------- */

static int conn_add(kn_parties *ps, kn_conn_id conn, party *p)
{
    conn_parties *c = kn_map_get(&ps->by_conn, conn);
    bool fresh = !c;
    if (fresh) {
        c = kn_calloc(1, sizeof *c);
        if (!c || kn_map_put(&ps->by_conn, conn, c)) {
            kn_free(c);
            return KN_ERR_NOMEM;
        }
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 4;
        party **v = kn_realloc(c->v, cap * sizeof *v);
        if (!v) {
            if (fresh) kn_map_del(&ps->by_conn, conn), kn_free(c);
            return KN_ERR_NOMEM;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = p;
    return KN_OK;
}

/* One relation of conn with p ends (never allocates). */
static void conn_del(kn_parties *ps, kn_conn_id conn, const party *p)
{
    conn_parties *c = kn_map_get(&ps->by_conn, conn);
    for (size_t i = 0; c && i < c->n; i++)
        if (c->v[i] == p) {
            c->v[i] = c->v[--c->n];
            break;
        }
    if (c && !c->n) {
        kn_map_del(&ps->by_conn, conn);
        kn_free(c->v);
        kn_free(c);
    }
}

/* --- the listing index ------------------------------------------------------------- */

static uint64_t label_key(const char *field, const char *value)
{
    char buf[2 * KN_STREAM_LABEL_MAX + 2];
    snprintf(buf, sizeof buf, "%s\x1f%s", field, value);
    return kn_map_key_str(buf);
}

static label_link *link_of(party *p, uint64_t key)
{
    for (size_t i = 0; i < p->n_links; i++)
        if (p->links[i].key == key) return &p->links[i];
    return NULL;
}

/* Puts p at the head of the bucket of key; KN_ERR_NOMEM. */
static int bucket_push(kn_parties *ps, party *p, uint64_t key)
{
    party *head = kn_map_get(&ps->labels, key);
    if (kn_map_put(&ps->labels, key, p)) return KN_ERR_NOMEM;
    p->links[p->n_links++] = (label_link){key, NULL, head};
    if (head) link_of(head, key)->prev = p;
    return KN_OK;
}

static void bucket_unlink(kn_parties *ps, party *p, const label_link *l)
{
    if (l->prev)
        link_of(l->prev, l->key)->next = l->next;
    else if (l->next)
        kn_map_put(&ps->labels, l->key, l->next); /* replaces: never allocates */
    else
        kn_map_del(&ps->labels, l->key);
    if (l->next) link_of(l->next, l->key)->prev = l->prev;
    (void)p;
}

/* A listable party joins the listing index: the chain and its label's
 * buckets (top-level string and boolean fields). KN_ERR_NOMEM undone. */
static int list_add(kn_parties *ps, party *p)
{
    kn_json *label = *p->label ? kn_json_parse(p->label, strlen(p->label), 0, NULL) : NULL;
    int rc = KN_OK;
    if (label && kn_json_is_object(label)) {
        const char *field;
        kn_json *v;
        kn_json_object_foreach(label, field, v)
        {
            const char *value = kn_json_is_string(v)  ? kn_json_string_value(v)
                                : kn_json_is_true(v)  ? "true"
                                : kn_json_is_false(v) ? "false"
                                                      : NULL;
            if (!value || strchr(field, '.')) continue; /* queries name these by path */
            uint64_t key = label_key(field, value);
            if (link_of(p, key)) continue;
            if (p->n_links == LABEL_KEYS_MAX || (rc = bucket_push(ps, p, key))) {
                rc = KN_ERR_NOMEM;
                break;
            }
        }
    }
    kn_json_decref(label);
    if (rc) {
        while (p->n_links) {
            p->n_links--;
            bucket_unlink(ps, p, &p->links[p->n_links]);
        }
        return rc;
    }
    p->lnext = ps->listable;
    if (ps->listable) ps->listable->lprev = p;
    ps->listable = p;
    ps->n_listable++;
    return KN_OK;
}

static void list_del(kn_parties *ps, party *p)
{
    if (!p->open || p->hidden) return;
    for (size_t i = 0; i < p->n_links; i++)
        bucket_unlink(ps, p, &p->links[i]);
    p->n_links = 0;
    if (p->lprev)
        p->lprev->lnext = p->lnext;
    else
        ps->listable = p->lnext;
    if (p->lnext) p->lnext->lprev = p->lprev;
    ps->n_listable--;
}

static kn_stream party_stream(const char *id)
{
    kn_stream s = {.mode = KN_STREAM_PARTY};
    snprintf(s.subject, sizeof s.subject, "%s", id);
    return s;
}

static bool same_session(const kn_presence *p, const char *user_id, const char *session_id)
{
    return user_id && session_id && !strcasecmp(p->user_id, user_id) &&
           !strcasecmp(p->session_id, session_id);
}

static long find_in(const kn_presence *list, size_t n, const char *user_id, const char *session_id)
{
    for (size_t i = 0; i < n; i++)
        if (same_session(&list[i], user_id, session_id)) return (long)i;
    return -1;
}

static long find_conn(const kn_presence *list, size_t n, kn_conn_id conn)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].conn == conn) return (long)i;
    return -1;
}

static party *lookup(kn_parties *ps, const char *id)
{
    if (!id || !kn_uuid_valid(id)) return NULL;
    party *p = kn_map_get(&ps->by_id, kn_map_key_str(id));
    return p && !strcasecmp(p->id, id) ? p : NULL;
}

static void notify(kn_parties *ps, kn_party_note_kind kind, const party *p,
                   const kn_presence *presence, const kn_conn_id *to, size_t n_to)
{
    if (!ps->hooks.notify || !n_to) return;
    kn_party_note note = {kind, p->id, presence, p->members, p->n_members, to, n_to};
    ps->hooks.notify(ps->hooks.ud, &note);
}

/* A note to every member. */
static void notify_all(kn_parties *ps, kn_party_note_kind kind, const party *p,
                       const kn_presence *presence)
{
    kn_conn_id to[KN_PARTY_SIZE_MAX];
    for (size_t i = 0; i < p->n_members; i++)
        to[i] = p->members[i].conn;
    notify(ps, kind, p, presence, to, p->n_members);
}

/* p's members changed: its version moves and its tickets go. */
static void members_changed(kn_parties *ps, party *p)
{
    p->version++;
    if (ps->hooks.changed) ps->hooks.changed(ps->hooks.ud, p->id);
}

static void party_free(party *p)
{
    if (!p) return;
    kn_free(p->members);
    kn_free(p->requests);
    kn_free(p);
}

static void unlink_party(kn_parties *ps, party *p)
{
    for (size_t i = 0; i < p->n_members; i++)
        conn_del(ps, p->members[i].conn, p);
    for (size_t i = 0; i < p->n_requests; i++)
        conn_del(ps, p->requests[i].conn, p);
    list_del(ps, p);
    kn_map_del(&ps->by_id, kn_map_key_str(p->id));
    if (p->prev)
        p->prev->next = p->next;
    else
        ps->all = p->next;
    if (p->next) p->next->prev = p->prev;
    ps->count--;
    party_free(p);
}

static void remove_at(kn_presence *list, size_t *n, size_t i)
{
    memmove(&list[i], &list[i + 1], (*n - i - 1) * sizeof *list);
    (*n)--;
}

static void drop_member(kn_parties *ps, party *p, size_t i);

static int view_of(const party *p, kn_party_view *out)
{
    memset(out, 0, sizeof *out);
    out->members = kn_malloc(p->n_members * sizeof *out->members);
    if (!out->members) return KN_ERR_NOMEM;
    memcpy(out->members, p->members, p->n_members * sizeof *out->members);
    out->n_members = p->n_members;
    snprintf(out->party_id, sizeof out->party_id, "%s", p->id);
    out->open = p->open;
    out->hidden = p->hidden;
    out->max_size = p->max_size;
    snprintf(out->label, sizeof out->label, "%s", p->label);
    out->leader = p->members[p->leader];
    out->version = p->version;
    return KN_OK;
}

/* The party of id with who among its members (NOT_FOUND for both, so
 * outsiders learn nothing), and with who its leader when `leader_verb`. */
static int member_party(kn_parties *ps, const kn_presence *who, const char *id,
                        const char *leader_verb, party **out, long *idx, char *msg, size_t cap)
{
    party *p = lookup(ps, id);
    long i = p ? find_in(p->members, p->n_members, who->user_id, who->session_id) : -1;
    if (i < 0) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "party not found");
    if (leader_verb && (size_t)i != p->leader)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap, "only the party leader may %s",
                          leader_verb);
    *out = p;
    if (idx) *idx = i;
    return KN_OK;
}

/* The mode's events: PartyPresenceEvent. */
static size_t build_event(void *ud, const kn_stream *s, uint32_t handle, const kn_presence *joins,
                          size_t n_joins, const kn_presence *leaves, size_t n_leaves, uint8_t *buf,
                          size_t cap)
{
    (void)ud, (void)handle;
    kn_presence_change c;
    if (!kn_presence_change_init(&c, joins, n_joins, leaves, n_leaves)) return 0;
    Kaos__V1__PartyPresenceEvent ev = KAOS__V1__PARTY_PRESENCE_EVENT__INIT;
    ev.party_id = (char *)s->subject;
    ev.n_joins = c.n_joins;
    ev.joins = c.joins;
    ev.n_leaves = c.n_leaves;
    ev.leaves = c.leaves;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_PRESENCE;
    env.party_presence = &ev;
    return kn_presence_event_pack(&env, buf, cap);
}

int kn_parties_create(kn_tracker *t, const kn_party_hooks *hooks, kn_parties **out)
{
    *out = NULL;
    kn_parties *ps = kn_calloc(1, sizeof *ps);
    if (!ps) return KN_ERR_NOMEM;
    if (pthread_mutex_init(&ps->lock, NULL)) {
        kn_free(ps);
        return KN_ERR_NOMEM;
    }
    ps->tracker = t;
    if (hooks) ps->hooks = *hooks;
    kn_map_init(&ps->by_id);
    kn_map_init(&ps->by_conn);
    kn_map_init(&ps->labels);
    kn_tracker_mode mode = {
        .name = "party", .max_per_session = KN_PARTY_PER_SESSION, .build = build_event, .ud = ps};
    int rc = kn_tracker_mode_set(t, KN_STREAM_PARTY, &mode);
    if (rc) {
        kn_parties_destroy(ps);
        return rc;
    }
    *out = ps;
    return KN_OK;
}

void kn_parties_destroy(kn_parties *ps)
{
    if (!ps) return;
    while (ps->all)
        unlink_party(ps, ps->all);
    kn_map_deinit(&ps->by_id);
    kn_map_deinit(&ps->by_conn);
    kn_map_deinit(&ps->labels);
    pthread_mutex_destroy(&ps->lock);
    kn_free(ps);
}

static int check_config(const kn_party_config *cfg, char *msg, size_t cap)
{
    if (cfg->max_size < KN_PARTY_SIZE_MIN || cfg->max_size > KN_PARTY_SIZE_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "max size must be %d-%d",
                          KN_PARTY_SIZE_MIN, KN_PARTY_SIZE_MAX);
    const char *label = cfg->label ? cfg->label : "";
    if (strlen(label) > KN_STREAM_LABEL_MAX || (*label && !kn_text_valid(label, true)))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "label must be at most %d bytes of UTF-8 without control characters",
                          KN_STREAM_LABEL_MAX);
    return KN_OK;
}

int kn_party_create(kn_parties *ps, const kn_presence *who, const kn_party_config *cfg,
                    kn_party_view *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    int rc = check_config(cfg, msg, cap);
    if (rc) return rc;
    party *p = kn_calloc(1, sizeof *p);
    if (p) p->members = kn_malloc(sizeof *p->members);
    if (!p || !p->members) {
        party_free(p);
        return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    p->open = cfg->open;
    p->hidden = cfg->hidden;
    p->max_size = cfg->max_size;
    snprintf(p->label, sizeof p->label, "%s", cfg->label ? cfg->label : "");
    pthread_mutex_lock(&ps->lock);
    do /* a new id whose key no party holds */
        kn_uuid_v4(p->id);
    while (kn_map_get(&ps->by_id, kn_map_key_str(p->id)));
    kn_stream s = party_stream(p->id);
    kn_presence me = *who;
    me.hidden = false;
    me.persistence = false;
    me.status = NULL;
    kn_tracker_opts opts = {.max_size = p->max_size};
    kn_tracker_joined joined;
    p->seq = ++ps->seq;
    rc = kn_map_put(&ps->by_id, kn_map_key_str(p->id), p);
    bool indexed = false, listed = false;
    if (rc == KN_OK) indexed = (rc = conn_add(ps, me.conn, p)) == KN_OK;
    if (rc == KN_OK && p->open && !p->hidden) listed = (rc = list_add(ps, p)) == KN_OK;
    if (rc) kn_err_msg(rc, msg, cap, "out of memory");
    if (rc == KN_OK) rc = kn_tracker_track(ps->tracker, &s, &me, &opts, &joined, msg, cap);
    if (rc) {
        if (listed) list_del(ps, p);
        if (indexed) conn_del(ps, me.conn, p);
        kn_map_del(&ps->by_id, kn_map_key_str(p->id));
    }
    if (rc == KN_OK) {
        me.slot = joined.slot;
        p->members[0] = me;
        p->n_members = 1;
        p->next = ps->all;
        if (ps->all) ps->all->prev = p;
        ps->all = p;
        ps->count++;
        rc = view_of(p, out);
        if (rc) {
            drop_member(ps, p, 0); /* the party goes with its only member */
            kn_err_msg(rc, msg, cap, "out of memory");
        }
    } else {
        party_free(p);
    }
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

/* Puts who on p's stream and among its members. */
static int add_member(kn_parties *ps, party *p, const kn_presence *who, char *msg, size_t cap)
{
    if (p->n_members >= p->max_size)
        return kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap, "party is full");
    kn_presence *grown = kn_realloc(p->members, (p->n_members + 1) * sizeof *grown);
    if (!grown) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    p->members = grown;
    kn_stream s = party_stream(p->id);
    kn_presence me = *who;
    me.hidden = false;
    me.persistence = false;
    me.status = NULL;
    kn_tracker_opts opts = {.must_exist = true};
    kn_tracker_joined joined;
    if (conn_add(ps, me.conn, p)) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    int rc = kn_tracker_track(ps->tracker, &s, &me, &opts, &joined, msg, cap);
    if (rc) { /* the session's party limit, or out of memory */
        conn_del(ps, me.conn, p);
        return rc;
    }
    me.slot = joined.slot;
    p->members[p->n_members++] = me;
    members_changed(ps, p);
    return KN_OK;
}

int kn_party_join(kn_parties *ps, const kn_presence *who, const char *party_id, bool *pending,
                  kn_party_view *out, char *msg, size_t cap)
{
    *pending = false;
    pthread_mutex_lock(&ps->lock);
    party *p = lookup(ps, party_id);
    int rc = KN_OK;
    if (!p) {
        rc = kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "party not found");
    } else if (find_in(p->members, p->n_members, who->user_id, who->session_id) >= 0) {
        rc = view_of(p, out); /* a member already */
    } else if (p->open) {
        rc = add_member(ps, p, who, msg, cap);
        if (rc == KN_OK && (rc = view_of(p, out)))
            drop_member(ps, p, p->n_members - 1); /* told it failed: not a member */
    } else if (find_in(p->requests, p->n_requests, who->user_id, who->session_id) >= 0) {
        *pending = true; /* asked already: the leader knows */
    } else if (p->n_members >= p->max_size) {
        rc = kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap, "party is full");
    } else if (p->n_requests >= KN_PARTY_REQUESTS_MAX) {
        rc = kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap, "too many join requests (%d)",
                        KN_PARTY_REQUESTS_MAX);
    } else {
        kn_presence *grown = kn_realloc(p->requests, (p->n_requests + 1) * sizeof *grown);
        if (grown) p->requests = grown;
        if (!grown || conn_add(ps, who->conn, p)) {
            rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
        } else {
            kn_presence r = *who;
            r.status = NULL;
            r.hidden = false;
            p->requests[p->n_requests++] = r;
            *pending = true;
            notify(ps, KN_PARTY_NOTE_JOIN_REQUEST, p, &r, &p->members[p->leader].conn, 1);
        }
    }
    if (rc == KN_ERR_NOMEM) kn_err_msg(rc, msg, cap, "out of memory");
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

int kn_party_accept(kn_parties *ps, const kn_presence *who, const char *party_id,
                    const char *user_id, const char *session_id, char *msg, size_t cap)
{
    pthread_mutex_lock(&ps->lock);
    party *p;
    int rc = member_party(ps, who, party_id, "accept join requests", &p, NULL, msg, cap);
    long r = rc ? -1 : find_in(p->requests, p->n_requests, user_id, session_id);
    if (rc == KN_OK && r < 0) rc = kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "join request not found");
    if (rc == KN_OK) {
        kn_presence joiner = p->requests[r];
        rc = add_member(ps, p, &joiner, msg, cap);
        if (rc == KN_OK) {
            conn_del(ps, joiner.conn, p);
            remove_at(p->requests, &p->n_requests, (size_t)r);
            notify(ps, KN_PARTY_NOTE_ACCEPTED, p, &p->members[p->leader], &joiner.conn, 1);
        }
    }
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

/* Member i leaves p (a leave event for the others); a leaving leader hands
 * over to the longest-present member; the last member ends p. */
static void drop_member(kn_parties *ps, party *p, size_t i)
{
    kn_stream s = party_stream(p->id);
    kn_tracker_untrack(ps->tracker, &s, p->members[i].conn);
    conn_del(ps, p->members[i].conn, p);
    bool was_leader = i == p->leader;
    remove_at(p->members, &p->n_members, i);
    members_changed(ps, p);
    if (!p->n_members) {
        unlink_party(ps, p);
        return;
    }
    if (was_leader) {
        p->leader = 0;
        notify_all(ps, KN_PARTY_NOTE_LEADER, p, &p->members[0]);
    } else if (i < p->leader) {
        p->leader--;
    }
}

int kn_party_remove(kn_parties *ps, const kn_presence *who, const char *party_id,
                    const char *user_id, const char *session_id, char *msg, size_t cap)
{
    pthread_mutex_lock(&ps->lock);
    party *p;
    int rc = member_party(ps, who, party_id, "remove members", &p, NULL, msg, cap);
    if (rc == KN_OK) {
        long m = find_in(p->members, p->n_members, user_id, session_id);
        long r = find_in(p->requests, p->n_requests, user_id, session_id);
        if (m >= 0 && (size_t)m == p->leader) {
            rc = kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                            "the party leader cannot remove itself; leave instead");
        } else if (m >= 0) {
            kn_presence gone = p->members[m];
            drop_member(ps, p, (size_t)m);
            notify(ps, KN_PARTY_NOTE_REMOVED, p, &gone, &gone.conn, 1);
        } else if (r >= 0) {
            kn_presence gone = p->requests[r];
            conn_del(ps, gone.conn, p);
            remove_at(p->requests, &p->n_requests, (size_t)r);
            notify(ps, KN_PARTY_NOTE_REMOVED, p, &gone, &gone.conn, 1);
        } else {
            rc = kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "no such member or join request");
        }
    }
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

int kn_party_promote(kn_parties *ps, const kn_presence *who, const char *party_id,
                     const char *user_id, const char *session_id, char *msg, size_t cap)
{
    pthread_mutex_lock(&ps->lock);
    party *p;
    int rc = member_party(ps, who, party_id, "promote members", &p, NULL, msg, cap);
    long m = rc ? -1 : find_in(p->members, p->n_members, user_id, session_id);
    if (rc == KN_OK && m < 0) rc = kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "no such member");
    if (rc == KN_OK && (size_t)m != p->leader) {
        p->leader = (size_t)m;
        notify_all(ps, KN_PARTY_NOTE_LEADER, p, &p->members[m]);
    }
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

int kn_party_leave(kn_parties *ps, const kn_presence *who, const char *party_id, char *msg,
                   size_t cap)
{
    pthread_mutex_lock(&ps->lock);
    party *p;
    long i;
    int rc = member_party(ps, who, party_id, NULL, &p, &i, msg, cap);
    if (rc == KN_OK) drop_member(ps, p, (size_t)i);
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

int kn_party_close(kn_parties *ps, const kn_presence *who, const char *party_id, char *msg,
                   size_t cap)
{
    pthread_mutex_lock(&ps->lock);
    party *p;
    int rc = member_party(ps, who, party_id, "close the party", &p, NULL, msg, cap);
    if (rc == KN_OK) {
        notify_all(ps, KN_PARTY_NOTE_CLOSE, p, NULL);
        members_changed(ps, p);
        kn_stream s = party_stream(p->id);
        kn_tracker_close(ps->tracker, &s);
        unlink_party(ps, p);
    }
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

int kn_party_requests(kn_parties *ps, const kn_presence *who, const char *party_id,
                      kn_presence **out, size_t *n, char *msg, size_t cap)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&ps->lock);
    party *p;
    int rc = member_party(ps, who, party_id, "list join requests", &p, NULL, msg, cap);
    if (rc == KN_OK && p->n_requests) {
        *out = kn_malloc(p->n_requests * sizeof **out);
        if (*out) {
            memcpy(*out, p->requests, p->n_requests * sizeof **out);
            *n = p->n_requests;
        } else {
            rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
        }
    }
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

int kn_party_send(kn_parties *ps, const kn_presence *who, const char *party_id, const uint8_t *data,
                  size_t len, bool reliable, char *msg, size_t cap)
{
    pthread_mutex_lock(&ps->lock);
    party *p;
    int rc = member_party(ps, who, party_id, NULL, &p, NULL, msg, cap);
    if (rc == KN_OK) {
        kn_stream s = party_stream(p->id);
        uint8_t ch = reliable ? KN_CHANNEL_CONTROL : KN_CHANNEL_MATCH_UNRELIABLE;
        rc = kn_tracker_send(ps->tracker, &s, who->conn, ch, data, len, reliable);
        if (rc) kn_err_msg(rc, msg, cap, "party data not sent");
    }
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

int kn_party_check_leader(kn_parties *ps, const kn_presence *who, const char *party_id,
                          uint64_t version, const char *verb, char *msg, size_t cap)
{
    pthread_mutex_lock(&ps->lock);
    party *p;
    int rc = member_party(ps, who, party_id, verb, &p, NULL, msg, cap);
    if (rc == KN_OK && p->version != version)
        rc = kn_err_msg(KN_ERR_ABORTED, msg, cap, "party changed; retry");
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

/* One candidate of a listing: the party and its score. */
typedef struct scored {
    const party *p;
    int score;
} scored;

/* Best score first, then newest. */
static int by_score(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->p->seq > y->p->seq ? -1 : x->p->seq < y->p->seq;
}

/* The first candidate of a listing for q and how to step: the bucket of
 * q's first `+field:value` term (a top-level field) when it has one, else
 * every listable party. */
static party *first_candidate(kn_parties *ps, const kn_match_query *q, uint64_t *key)
{
    kn_match_query_bounds b;
    *key = 0;
    if (kn_match_query_bounds_of(q, &b) && b.eq_name && !strchr(b.eq_name, '.')) {
        *key = label_key(b.eq_name, b.eq_value);
        return kn_map_get(&ps->labels, *key);
    }
    return ps->listable;
}

static party *next_candidate(party *p, uint64_t key)
{
    return key ? link_of(p, key)->next : p->lnext;
}

void kn_party_views_free(kn_party_view *views, size_t n)
{
    for (size_t i = 0; views && i < n; i++)
        kn_free(views[i].members);
    kn_free(views);
}

int kn_party_list(kn_parties *ps, const char *query, uint32_t limit, kn_party_view **out, size_t *n,
                  char *msg, size_t cap)
{
    *out = NULL;
    *n = 0;
    if (limit > KN_PARTY_LIST_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d (0 = 10)",
                          KN_PARTY_LIST_MAX);
    if (!limit) limit = 10;
    kn_match_query *q = NULL;
    int rc = kn_match_query_parse(query && *query ? query : "*", &q, msg, cap);
    if (rc) return rc;
    pthread_mutex_lock(&ps->lock);
    uint64_t key;
    party *first = first_candidate(ps, q, &key);
    size_t room = 0;
    for (party *p = first; key && p; p = next_candidate(p, key))
        room++;
    scored *all =
        kn_calloc(key ? (room ? room : 1) : (ps->n_listable ? ps->n_listable : 1), sizeof *all);
    size_t m = 0;
    ps->last_scanned = 0;
    if (!all) rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    for (party *p = first; all && p; p = next_candidate(p, key)) {
        int score = 0;
        ps->last_scanned++;
        /* A label that is not JSON matches only "*". */
        if (!kn_match_query_eval(q, *p->label ? p->label : NULL, &score)) continue;
        all[m++] = (scored){p, score};
    }
    if (all) qsort(all, m, sizeof *all, by_score);
    size_t k = m < limit ? m : limit;
    kn_party_view *views = rc || !k ? NULL : kn_calloc(k, sizeof *views);
    if (rc == KN_OK && k && !views) rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    for (size_t i = 0; rc == KN_OK && i < k; i++)
        if (view_of(all[i].p, &views[i])) rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    pthread_mutex_unlock(&ps->lock);
    kn_free(all);
    kn_match_query_free(q);
    if (rc) {
        kn_party_views_free(views, k);
        return rc;
    }
    *out = views;
    *n = k;
    return KN_OK;
}

int kn_parties_views(kn_parties *ps, uint32_t limit, kn_party_view **out, size_t *n, char *msg,
                     size_t cap)
{
    *out = NULL;
    *n = 0;
    if (limit < 1 || limit > KN_PARTY_LIST_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d",
                          KN_PARTY_LIST_MAX);
    pthread_mutex_lock(&ps->lock);
    size_t k = ps->count < limit ? ps->count : limit;
    kn_party_view *views = k ? kn_calloc(k, sizeof *views) : NULL;
    int rc = k && !views ? KN_ERR_NOMEM : KN_OK;
    size_t i = 0;
    for (const party *p = ps->all; rc == KN_OK && p && i < k; p = p->next)
        rc = view_of(p, &views[i++]);
    pthread_mutex_unlock(&ps->lock);
    if (rc) {
        kn_party_views_free(views, i);
        return kn_err_msg(rc, msg, cap, "out of memory");
    }
    *out = views;
    *n = k;
    return KN_OK;
}

int kn_party_get(kn_parties *ps, const char *party_id, kn_party_view *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ps->lock);
    party *p = lookup(ps, party_id);
    int rc = p ? view_of(p, out) : kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "party not found");
    if (rc == KN_ERR_NOMEM) kn_err_msg(rc, msg, cap, "out of memory");
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

void kn_parties_leave_conn(kn_parties *ps, kn_conn_id conn)
{
    pthread_mutex_lock(&ps->lock);
    /* The connection's own parties only (by_conn); each step removes one
     * relation, so the entry shrinks until it is gone. */
    conn_parties *c;
    while ((c = kn_map_get(&ps->by_conn, conn))) {
        party *p = c->v[c->n - 1];
        long r = find_conn(p->requests, p->n_requests, conn);
        if (r >= 0) {
            conn_del(ps, conn, p);
            remove_at(p->requests, &p->n_requests, (size_t)r);
            continue;
        }
        long m = find_conn(p->members, p->n_members, conn);
        if (m >= 0)
            drop_member(ps, p, (size_t)m); /* its relation goes, maybe p too */
        else
            conn_del(ps, conn, p); /* cannot be: the index names p */
    }
    pthread_mutex_unlock(&ps->lock);
}

void kn_parties_stats_get(kn_parties *ps, kn_parties_stats *out)
{
    pthread_mutex_lock(&ps->lock);
    *out = (kn_parties_stats){ps->count, ps->n_listable, ps->by_conn.count, ps->last_scanned};
    pthread_mutex_unlock(&ps->lock);
}

size_t kn_parties_count(kn_parties *ps)
{
    pthread_mutex_lock(&ps->lock);
    size_t n = ps->count;
    pthread_mutex_unlock(&ps->lock);
    return n;
}
