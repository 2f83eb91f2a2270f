/* engine: match threads, inboxes, tick scheduling, the registry. */
#include "kn_match.h"
#include "match_internal.h"
#include "kn_codec.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_map.h"
#include "kn_mem.h"
#include "kn_time.h"
#include "kn_uuid.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define KN_MATCH_RATE_MAX 60 /* ticks per second */
#define CALL_SHARE_PCT    50 /* default kn_match_engine_config.call_share_pct */
#define LATE_REBASE 10 /* intervals behind before the schedule is re-based */
#define TICK_SLACK_US 1000
#define LATE_LOG_EVERY_US 1000000 /* late ticks: at most one log line per thread per second */

/* --- batches (outgoing) ------------------------------------------------------------ */

/* Batches a sink frees go back to the pool of the engine that made them,
 * keeping their arenas and sink scratch, so in the steady state a wake's
 * batch allocates nothing. The pool outlives the engine while batches are
 * out: network threads may free the last ones after the engine is gone. */
#define POOL_KEEP 8 /* batches kept per engine (a few per match thread in flight) */

typedef struct batch_pool {
    pthread_mutex_t lock;
    kn_match_batch *free; /* linked through ->next */
    size_t n_free;
    size_t refs; /* the engine's, plus one per batch handed out */
    bool closed; /* the engine is gone: returned batches are freed */
} batch_pool;

struct kn_match_batch {
    kn_match_out *outs;
    size_t n, cap;
    uint8_t *arena; /* conns and data; outs hold offsets until finalize */
    size_t used, arena_cap;
    batch_pool *pool; /* NULL: not pooled (a match's deferred sends, tests) */
    kn_match_batch *next;
    void *sink; /* the sink's scratch (kn_match_batch_sink), kept across reuse */
    size_t sink_cap;
};

size_t kn_match_batch_count(const kn_match_batch *b)
{
    return b ? b->n : 0;
}

const kn_match_out *kn_match_batch_get(const kn_match_batch *b, size_t i)
{
    return &b->outs[i];
}

static void batch_destroy(kn_match_batch *b)
{
    kn_free(b->outs);
    kn_free(b->arena);
    kn_free(b->sink);
    kn_free(b);
}

/* Drops a reference; the last one frees the pool. Takes the lock held. */
static void pool_unref_locked(batch_pool *p)
{
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&p->lock);
    if (!last) return;
    pthread_mutex_destroy(&p->lock);
    kn_free(p);
}

void kn_match_batch_free(kn_match_batch *b)
{
    if (!b) return;
    batch_pool *p = b->pool;
    if (!p) {
        batch_destroy(b);
        return;
    }
    pthread_mutex_lock(&p->lock);
    if (!p->closed && p->n_free < POOL_KEEP) {
        b->n = b->used = 0;
        b->next = p->free;
        p->free = b;
        p->n_free++;
    } else {
        batch_destroy(b);
    }
    pool_unref_locked(p);
}

void *kn_match_batch_sink(kn_match_batch *b, size_t size)
{
    if (b->sink_cap < size) {
        void *s = kn_realloc(b->sink, size);
        if (!s) return NULL;
        b->sink = s;
        b->sink_cap = size;
    }
    return b->sink;
}

/* A batch from the pool (or a new one); NULL when out of memory. */
static kn_match_batch *batch_take(batch_pool *p)
{
    pthread_mutex_lock(&p->lock);
    kn_match_batch *b = p->free;
    if (b) {
        p->free = b->next;
        p->n_free--;
        p->refs++;
    }
    pthread_mutex_unlock(&p->lock);
    if (b) return b;
    b = kn_calloc(1, sizeof *b);
    if (!b) return NULL;
    b->pool = p;
    pthread_mutex_lock(&p->lock);
    p->refs++;
    pthread_mutex_unlock(&p->lock);
    return b;
}

/* The engine is going: its pooled batches are freed, and those still out
 * will be when they come back. */
static void pool_close(batch_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->closed = true;
    while (p->free) {
        kn_match_batch *b = p->free;
        p->free = b->next;
        batch_destroy(b);
    }
    p->n_free = 0;
    pool_unref_locked(p);
}

/* Room for n bytes (8-aligned) in the arena; returns the offset or SIZE_MAX. */
static size_t arena_take(kn_match_batch *b, size_t n)
{
    size_t at = (b->used + 7) & ~(size_t)7;
    if (at + n > b->arena_cap) {
        size_t cap = b->arena_cap ? b->arena_cap : 4096;
        while (cap < at + n) cap *= 2;
        uint8_t *p = kn_realloc(b->arena, cap);
        if (!p) return SIZE_MAX;
        b->arena = p;
        b->arena_cap = cap;
    }
    b->used = at + n;
    return at;
}

static kn_match_out *batch_add(kn_match_batch *b)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        kn_match_out *p = kn_realloc(b->outs, cap * sizeof *p);
        if (!p) return NULL;
        b->outs = p;
        b->cap = cap;
    }
    kn_match_out *o = &b->outs[b->n++];
    memset(o, 0, sizeof *o);
    return o;
}

/* Offsets -> pointers, once the arena stops moving. */
static void batch_finalize(kn_match_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        kn_match_out *o = &b->outs[i];
        o->conns = o->n_conns ? (const kn_match_conn *)(b->arena + (uintptr_t)o->conns) : NULL;
        o->data = o->len ? b->arena + (uintptr_t)o->data : NULL;
    }
}

/* --- inbox records --------------------------------------------------------------------- */

typedef enum { REC_INPUT, REC_JOIN, REC_LEAVE, REC_ADOPT, REC_SIGNAL } rec_kind;

typedef struct rec {
    rec_kind kind;
    uint32_t handle, slot;
    bool reliable;
    int64_t op_code, receive_ms;
    kn_match_conn conn;
    void *ptr;  /* JOIN: join_req, ADOPT: match, SIGNAL: signal_req */
    size_t len; /* INPUT: bytes following the record */
} rec;

typedef struct inbox_buf {
    uint8_t *data;
    size_t len, cap;
} inbox_buf;

typedef struct join_req {
    kn_match_presence who;
    uint32_t cid;
    size_t metadata_len;
    char metadata[]; /* NUL-terminated */
} join_req;

typedef struct signal_req {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;
    bool done;
    int rc;
    char *data;
    size_t len;
    char *response;
    size_t response_len;
    char msg[256];
} signal_req;

/* --- matches ---------------------------------------------------------------------------- */

typedef struct mthread mthread;
typedef struct match match;

struct match {
    char id[KN_MATCH_ID_MAX];
    char name[KN_MATCH_NAME_MAX + 1];
    uint32_t handle;
    kn_match_handler *h;
    mthread *t;
    int tick_rate;
    int64_t t0_us, due_us;
    int64_t tick; /* ticks run so far */
    size_t heap_at;
    kn_match_presence **ps; /* presences, join order */
    size_t n_ps, cap_ps;
    uint32_t next_slot;
    kn_match_message *in; /* inputs waiting for the next tick */
    size_t n_in, cap_in;
    uint8_t *in_data; /* their bytes */
    size_t in_used, in_cap;
    kn_match_batch deferred; /* broadcast_message_deferred until the end of the tick */
    bool adopted;            /* on its thread's heap (counted in by_rate) */
    bool ended;
    int end_code;
    char end_reason[KN_MATCH_REASON_MAX];
    kn_match_dispatcher disp;
};

struct mthread {
    kn_match_engine *e;
    int index;
    pthread_t th;
    bool started;
    pthread_mutex_t lock; /* inbox, wake, stop */
    pthread_cond_t cond;
    inbox_buf inbox, spare;
    bool wake, stop;
    uint64_t inputs, inputs_dropped; /* counted under `lock` by push, not the engine's stats lock */
    int grace;
    /* load, for admission control: busy time and late ticks per window */
    atomic_bool overloaded;
    int64_t window_start_us, busy_us;
    uint64_t window_ticks, window_late;
    /* owned by the thread */
    match **heap;
    size_t n_heap, cap_heap;
    uint32_t by_rate[KN_MATCH_RATE_MAX + 1]; /* matches on the heap by tick rate */
    kn_map by_handle;
    uint32_t next_handle;
    kn_match_batch *out;
    bool late_logged;         /* a late tick was logged at late_logged_us */
    int64_t late_logged_us;
    uint64_t late_unlogged;   /* late ticks since that line */
    int64_t late_worst_us;    /* the worst of them */
};

/* Registry entry: what any thread may know of a match. */
typedef struct reg {
    char id[KN_MATCH_ID_MAX];
    char name[KN_MATCH_NAME_MAX + 1];
    uint32_t handle;
    char *label;
    uint32_t size;
    int tick_rate;
    kn_match_presence *ps; /* a copy of the match's presences (NULL after a failed copy) */
    size_t n_ps;
} reg;

struct kn_match_engine {
    kn_match_engine_config cfg;
    batch_pool *pool;
    char node[64];
    mthread threads[MAX_THREADS];
    int n_threads;           /* >= 1 (manual mode has one, never started) */
    int share_pct;           /* cfg.call_share_pct resolved: 0 = no call budgets */
    atomic_uint next_thread; /* round robin */
    pthread_mutex_t reg_lock;
    kn_map reg_by_id;      /* kn_map_key_str(id) -> reg */
    kn_map reg_by_handle;  /* handle -> reg */
    size_t reg_count;
    atomic_bool stopped;
    pthread_mutex_t stop_lock; /* a second stopper waits until the first is done */
    pthread_mutex_t stats_lock;
    kn_match_stats st;
};

static _Thread_local mthread *current_thread;

static int64_t now_us(const kn_match_engine *e)
{
    return e->cfg.now_us ? e->cfg.now_us() : kn_time_mono_us();
}

#define STAT_ADD(e, field, v)                                                                      \
    do {                                                                                           \
        pthread_mutex_lock(&(e)->stats_lock);                                                      \
        (e)->st.field += (v);                                                                      \
        pthread_mutex_unlock(&(e)->stats_lock);                                                    \
    } while (0)

/* --- registry ---------------------------------------------------------------------------- */

static reg *reg_find_id(kn_match_engine *e, const char *id)
{
    reg *r = kn_map_get(&e->reg_by_id, kn_map_key_str(id));
    return r && !strcmp(r->id, id) ? r : NULL;
}

static int reg_add(kn_match_engine *e, const match *m, const char *label)
{
    reg *r = kn_calloc(1, sizeof *r);
    if (!r) return KN_ERR_NOMEM;
    memcpy(r->id, m->id, sizeof r->id);
    memcpy(r->name, m->name, sizeof r->name);
    r->handle = m->handle;
    r->tick_rate = m->tick_rate;
    if (label && !(r->label = kn_strndup(label, strlen(label)))) {
        kn_free(r);
        return KN_ERR_NOMEM;
    }
    pthread_mutex_lock(&e->reg_lock);
    int rc = KN_OK;
    if (e->reg_count >= e->cfg.max_matches) rc = KN_ERR_RESOURCE_EXHAUSTED;
    else if ((rc = kn_map_put(&e->reg_by_id, kn_map_key_str(r->id), r)) == KN_OK &&
             (rc = kn_map_put(&e->reg_by_handle, r->handle, r)))
        kn_map_del(&e->reg_by_id, kn_map_key_str(r->id));
    if (rc == KN_OK) e->reg_count++;
    pthread_mutex_unlock(&e->reg_lock);
    if (rc) {
        kn_free(r->label);
        kn_free(r);
    }
    return rc;
}

static void reg_remove(kn_match_engine *e, uint32_t handle)
{
    pthread_mutex_lock(&e->reg_lock);
    reg *r = kn_map_del(&e->reg_by_handle, handle);
    if (r) {
        kn_map_del(&e->reg_by_id, kn_map_key_str(r->id));
        e->reg_count--;
    }
    pthread_mutex_unlock(&e->reg_lock);
    if (r) {
        kn_free(r->label);
        kn_free(r->ps);
        kn_free(r);
    }
}

/* The registry's size and copy of the match's presences (what listings and
 * the console read): O(presences) per change, copied outside the lock. */
static void reg_set_presences(kn_match_engine *e, uint32_t handle, kn_match_presence *const *ps,
                              size_t n)
{
    kn_match_presence *copy = n ? kn_malloc(n * sizeof *copy) : NULL;
    for (size_t i = 0; copy && i < n; i++)
        copy[i] = *ps[i];
    pthread_mutex_lock(&e->reg_lock);
    reg *r = kn_map_get(&e->reg_by_handle, handle);
    if (r) {
        kn_match_presence *old = r->ps;
        r->size = (uint32_t)n;
        r->ps = copy;
        r->n_ps = copy ? n : 0;
        copy = old;
    }
    pthread_mutex_unlock(&e->reg_lock);
    kn_free(copy);
}

static int reg_set_label(kn_match_engine *e, uint32_t handle, const char *label)
{
    char *copy = label ? kn_strndup(label, strlen(label)) : NULL;
    if (label && !copy) return KN_ERR_NOMEM;
    pthread_mutex_lock(&e->reg_lock);
    reg *r = kn_map_get(&e->reg_by_handle, handle);
    if (r) {
        kn_free(r->label);
        r->label = copy;
        copy = NULL;
    }
    pthread_mutex_unlock(&e->reg_lock);
    kn_free(copy);
    return KN_OK;
}

/* --- the heap of due times (per thread) ------------------------------------------------------ */

static void heap_swap(mthread *t, size_t a, size_t b)
{
    match *x = t->heap[a];
    t->heap[a] = t->heap[b];
    t->heap[b] = x;
    t->heap[a]->heap_at = a;
    t->heap[b]->heap_at = b;
}

static void heap_up(mthread *t, size_t i)
{
    while (i && t->heap[(i - 1) / 2]->due_us > t->heap[i]->due_us) {
        heap_swap(t, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(mthread *t, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->n_heap && t->heap[l]->due_us < t->heap[m]->due_us) m = l;
        if (r < t->n_heap && t->heap[r]->due_us < t->heap[m]->due_us) m = r;
        if (m == i) return;
        heap_swap(t, i, m);
        i = m;
    }
}

static int heap_push(mthread *t, match *m)
{
    if (t->n_heap == t->cap_heap) {
        size_t cap = t->cap_heap ? t->cap_heap * 2 : 64;
        match **p = kn_realloc(t->heap, cap * sizeof *p);
        if (!p) return KN_ERR_NOMEM;
        t->heap = p;
        t->cap_heap = cap;
    }
    m->heap_at = t->n_heap;
    t->heap[t->n_heap++] = m;
    heap_up(t, m->heap_at);
    t->by_rate[m->tick_rate]++;
    m->adopted = true;
    return KN_OK;
}

static void heap_remove(mthread *t, match *m)
{
    size_t i = m->heap_at;
    t->by_rate[m->tick_rate]--;
    m->adopted = false;
    t->n_heap--;
    if (i == t->n_heap) return;
    t->heap[i] = t->heap[t->n_heap];
    t->heap[i]->heap_at = i;
    heap_down(t, i);
    heap_up(t, i);
}

/* --- envelopes into the thread's batch ------------------------------------------------------- */

static kn_match_batch *thread_batch(mthread *t)
{
    if (!t->out) t->out = batch_take(t->e->pool);
    return t->out;
}

/* Appends one SEND of env to conns (copied). */
static int batch_send(kn_match_batch *b, const kn_envelope *env, const kn_match_conn *conns,
                      size_t n, uint8_t channel, bool reliable, size_t max_size)
{
    if (!b) return KN_ERR_NOMEM;
    if (!n) return KN_OK;
    size_t len = kn_envelope_packed_size(env);
    if (len > max_size) return KN_ERR_TOO_LARGE;
    size_t coff = arena_take(b, n * sizeof *conns);
    size_t doff = coff == SIZE_MAX ? SIZE_MAX : arena_take(b, len);
    kn_match_out *o = doff == SIZE_MAX ? NULL : batch_add(b);
    if (!o) return KN_ERR_NOMEM;
    memcpy(b->arena + coff, conns, n * sizeof *conns);
    kn_envelope_pack(env, b->arena + doff);
    o->kind = KN_MATCH_OUT_SEND;
    o->channel = channel;
    o->reliable = reliable;
    o->conns = (const kn_match_conn *)(uintptr_t)coff;
    o->n_conns = n;
    o->data = (const uint8_t *)(uintptr_t)doff;
    o->len = len;
    return KN_OK;
}

static int batch_member(kn_match_batch *b, kn_match_out_kind kind, kn_match_conn conn,
                        uint32_t handle, uint32_t slot)
{
    size_t coff = b ? arena_take(b, sizeof conn) : SIZE_MAX;
    kn_match_out *o = coff == SIZE_MAX ? NULL : batch_add(b);
    if (!o) return KN_ERR_NOMEM;
    memcpy(b->arena + coff, &conn, sizeof conn);
    o->kind = kind;
    o->conns = (const kn_match_conn *)(uintptr_t)coff;
    o->n_conns = 1;
    o->handle = handle;
    o->slot = slot;
    return KN_OK;
}

/* Appends every record of src to dst (the deferred broadcasts of a tick). */
static void batch_append(kn_match_batch *dst, kn_match_batch *src)
{
    for (size_t i = 0; i < src->n && dst; i++) {
        kn_match_out *o = &src->outs[i];
        size_t coff = arena_take(dst, o->n_conns * sizeof(kn_match_conn));
        size_t doff = coff == SIZE_MAX ? SIZE_MAX : arena_take(dst, o->len);
        kn_match_out *d = doff == SIZE_MAX ? NULL : batch_add(dst);
        if (!d) break;
        *d = *o;
        memcpy(dst->arena + coff, src->arena + (uintptr_t)o->conns, o->n_conns * sizeof(kn_match_conn));
        if (o->len) memcpy(dst->arena + doff, src->arena + (uintptr_t)o->data, o->len);
        d->conns = (const kn_match_conn *)(uintptr_t)coff;
        d->data = (const uint8_t *)(uintptr_t)doff;
    }
    src->n = 0;
    src->used = 0;
}

KN_ENTITY_DEFINE(kn_match_presence_entity, kn_match_presence, PRESENCE);

/* Conns of every presence but `except` (0 = none). */
static size_t conns_of(const match *m, kn_match_conn *out, kn_match_conn except)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_ps; i++)
        if (m->ps[i]->conn != except) out[n++] = m->ps[i]->conn;
    return n;
}

/* MatchPresenceEvent to everyone in m but p, for p joining or leaving. */
static void send_presence_event(match *m, const kn_match_presence *p, bool joined)
{
    kn_match_conn *conns = m->n_ps ? kn_malloc(m->n_ps * sizeof *conns) : NULL;
    if (!conns) return;
    size_t n = conns_of(m, conns, p->conn);
    Kaos__V1__Presence pp, *list[1] = {&pp};
    kn_entity_to_proto(&kn_match_presence_entity, p, &pp);
    Kaos__V1__MatchPresenceEvent ev;
    kn_envelope env;
    kn_envelope_presence_event(&env, &ev, list, m->handle, joined);
    batch_send(thread_batch(m->t), &env, conns, n, KN_CHANNEL_CONTROL, true,
               m->t->e->cfg.max_message_size);
    kn_free(conns);
}

static void send_error_to(mthread *t, kn_match_conn conn, uint32_t cid, int rc, const char *msg)
{
    Kaos__V1__Error err;
    kn_envelope env;
    kn_envelope_error(&env, &err, cid, rc, msg);
    batch_send(thread_batch(t), &env, &conn, 1, KN_CHANNEL_CONTROL, true, SIZE_MAX);
}

/* --- handler calls --------------------------------------------------------------------------- */

/* The CPU time a call of m may use: a share of the tick interval of the
 * fastest other match on its thread, so that one waits less than a tick
 * even when m's call runs away (0 = none: m is alone, not yet on its
 * thread — init runs on the creating thread — or sharing is off). */
static int64_t call_budget(const match *m)
{
    const mthread *t = m->t;
    if (!t || !m->adopted || t->e->share_pct <= 0) return 0;
    for (int r = KN_MATCH_RATE_MAX; r >= 1; r--) {
        uint32_t others = t->by_rate[r] - (m->tick_rate == r);
        if (others) return (int64_t)(1000000 / r) * t->e->share_pct / 100;
    }
    return 0;
}

static kn_match_call call_of(match *m)
{
    return (kn_match_call){.dispatcher = &m->disp,
                           .match_id = m->id,
                           .node = m->t ? m->t->e->node : "",
                           .tick = m->tick,
                           .presences = (const kn_match_presence *const *)m->ps,
                           .n_presences = m->n_ps,
                           .budget_us = call_budget(m)};
}

/* Marks m as ended with a reason; the thread finishes it after the call. */
static void end_match(match *m, int code, const char *reason)
{
    if (m->ended) return;
    m->ended = true;
    m->end_code = code;
    snprintf(m->end_reason, sizeof m->end_reason, "%s", reason);
}

/* A handler call failed: log once, end the match. */
static void call_failed(match *m, const char *what, int rc, const char *msg)
{
    if (rc == KN_ERR_CANCELLED) { /* the handler returned no state: a normal end */
        end_match(m, KN_OK, msg);
        return;
    }
    KN_WARN("match %s (%s): %s failed, match ended: %s", m->id, m->name, what,
            *msg ? msg : kn_err_text(rc));
    STAT_ADD(m->t->e, errors, 1);
    char reason[KN_MATCH_REASON_MAX];
    snprintf(reason, sizeof reason, "%s", *msg ? msg : kn_err_text(rc));
    end_match(m, rc, reason);
}

static kn_match_presence *presence_by_slot(match *m, uint32_t slot)
{
    for (size_t i = 0; i < m->n_ps; i++)
        if (m->ps[i]->slot == slot) return m->ps[i];
    return NULL;
}

static kn_match_presence *presence_by_conn(match *m, kn_match_conn conn)
{
    for (size_t i = 0; i < m->n_ps; i++)
        if (m->ps[i]->conn == conn) return m->ps[i];
    return NULL;
}

/* Takes p out of m (the caller frees it). */
static void presence_remove(match *m, kn_match_presence *p)
{
    for (size_t i = 0; i < m->n_ps; i++)
        if (m->ps[i] == p) {
            memmove(&m->ps[i], &m->ps[i + 1], (m->n_ps - i - 1) * sizeof *m->ps);
            m->n_ps--;
            return;
        }
}

/* Forgets p's inputs still waiting for the next tick: they point at p,
 * which is about to be freed (input from someone who already left is
 * dropped on arrival too, in do_input). Their bytes stay in in_data until
 * the tick resets it. */
static void drop_inputs_of(match *m, const kn_match_presence *p)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n_in; i++)
        if (m->in[i].sender != p) m->in[k++] = m->in[i];
    m->n_in = k;
}

/* Removes the presences (kicked, or left), tells everyone, calls leave. */
static void presences_leave(match *m, kn_match_presence **gone, size_t n, bool kicked)
{
    if (!n) return;
    for (size_t i = 0; i < n; i++) {
        presence_remove(m, gone[i]);
        drop_inputs_of(m, gone[i]);
    }
    reg_set_presences(m->t->e, m->handle, m->ps, m->n_ps);
    for (size_t i = 0; i < n; i++) {
        batch_member(thread_batch(m->t), KN_MATCH_OUT_LEFT, gone[i]->conn, m->handle, gone[i]->slot);
        send_presence_event(m, gone[i], false);
        if (kicked) {
            Kaos__V1__MatchEnd me;
            kn_envelope env;
            kn_envelope_match_end(&env, &me, m->handle, m->id, KN_ERR_ABORTED, "kicked");
            batch_send(thread_batch(m->t), &env, &gone[i]->conn, 1, KN_CHANNEL_CONTROL, true,
                       SIZE_MAX);
        }
    }
    if (!m->ended) {
        char msg[256] = "";
        kn_match_call c = call_of(m);
        int rc = m->h->vt->leave(m->h, &c, (const kn_match_presence *const *)gone, n, msg, sizeof msg);
        if (rc) call_failed(m, "match_leave", rc, msg);
    }
    for (size_t i = 0; i < n; i++) kn_free(gone[i]);
}

/* --- the dispatcher (runs inside handler calls, on the match thread) ------------------------- */

static int d_broadcast(void *ud, int64_t op_code, const uint8_t *data, size_t len,
                       const uint32_t *targets, size_t n_targets, uint32_t sender, bool reliable,
                       bool deferred)
{
    match *m = ud;
    if (m->ended) return KN_ERR_FAILED_PRECONDITION;
    kn_match_conn stack[64], *conns = m->n_ps <= 64 ? stack : kn_malloc(m->n_ps * sizeof *conns);
    if (!conns) return KN_ERR_NOMEM;
    size_t n = 0;
    if (!targets) {
        n = conns_of(m, conns, 0);
    } else {
        for (size_t i = 0; i < n_targets; i++) {
            kn_match_presence *p = presence_by_slot(m, targets[i]);
            if (p) conns[n++] = p->conn; /* gone players are skipped, like Nakama */
            if (n == m->n_ps) break;
        }
    }
    Kaos__V1__MatchData md;
    kn_envelope env;
    kn_envelope_match_data(&env, &md, m->handle, sender, op_code, data, len);
    int rc = batch_send(deferred ? &m->deferred : thread_batch(m->t), &env, conns, n,
                        reliable ? KN_CHANNEL_MATCH_RELIABLE : KN_CHANNEL_MATCH_UNRELIABLE,
                        reliable, m->t->e->cfg.max_message_size);
    if (conns != stack) kn_free(conns);
    return rc;
}

static int d_kick(void *ud, const uint32_t *slots, size_t n)
{
    match *m = ud;
    kn_match_presence *gone[64];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        kn_match_presence *p = presence_by_slot(m, slots[i]);
        bool dup = false;
        for (size_t j = 0; j < k; j++) dup |= gone[j] == p;
        if (p && !dup && k < 64) gone[k++] = p;
    }
    /* Leave callbacks run after the current call returns would be cleaner,
     * but Nakama calls match_leave for kicked presences inline too. */
    presences_leave(m, gone, k, true);
    return KN_OK;
}

static int d_label_update(void *ud, const char *label)
{
    match *m = ud;
    if (label && strlen(label) > KN_MATCH_LABEL_MAX) return KN_ERR_TOO_LARGE;
    return reg_set_label(m->t->e, m->handle, label);
}

/* --- match lifecycle on its thread ----------------------------------------------------------- */

static void free_match(match *m)
{
    if (m->h) m->h->vt->destroy(m->h);
    for (size_t i = 0; i < m->n_ps; i++) kn_free(m->ps[i]);
    kn_free(m->ps);
    kn_free(m->in);
    kn_free(m->in_data);
    kn_free(m->deferred.outs);
    kn_free(m->deferred.arena);
    kn_free(m);
}

/* The match is over: tell its players, forget it. */
static void finish_match(mthread *t, match *m)
{
    Kaos__V1__MatchEnd me;
    kn_envelope env;
    kn_envelope_match_end(&env, &me, m->handle, m->id, m->end_code, m->end_reason);
    kn_match_conn *conns = m->n_ps ? kn_malloc(m->n_ps * sizeof *conns) : NULL;
    if (conns) {
        size_t n = conns_of(m, conns, 0);
        batch_send(thread_batch(t), &env, conns, n, KN_CHANNEL_CONTROL, true, SIZE_MAX);
        kn_free(conns);
    }
    for (size_t i = 0; i < m->n_ps; i++)
        batch_member(thread_batch(t), KN_MATCH_OUT_LEFT, m->ps[i]->conn, m->handle, m->ps[i]->slot);
    heap_remove(t, m);
    kn_map_del(&t->by_handle, m->handle);
    reg_remove(t->e, m->handle);
    KN_INFO("match %s (%s) ended after %lld ticks: %s", m->id, m->name, (long long)m->tick,
            m->end_reason);
    pthread_mutex_lock(&t->e->stats_lock);
    t->e->st.matches--;
    t->e->st.ended++;
    pthread_mutex_unlock(&t->e->stats_lock);
    free_match(m);
}

/* A tick started over an interval late. Under overload every match is late
 * on every tick, and a line per tick would add a write per tick to a CPU
 * that is already short: the thread logs the first one, then at most one
 * line a second with how many there were meanwhile. The stats count each. */
static void note_late(mthread *t, const match *m, int64_t late, int64_t now)
{
    STAT_ADD(t->e, late_ticks, 1);
    t->late_unlogged++;
    if (late > t->late_worst_us) t->late_worst_us = late;
    if (t->late_logged && now - t->late_logged_us < LATE_LOG_EVERY_US) return;
    if (t->late_unlogged == 1)
        KN_WARN("match %s (%s): tick %lld started %lld ms late", m->id, m->name,
                (long long)m->tick, (long long)late / 1000);
    else
        KN_WARN("match %s (%s): tick %lld started %lld ms late; %llu late ticks on match thread "
                "%d since the last report, the worst %lld ms",
                m->id, m->name, (long long)m->tick, (long long)late / 1000,
                (unsigned long long)t->late_unlogged, t->index,
                (long long)t->late_worst_us / 1000);
    t->late_logged = true;
    t->late_logged_us = now;
    t->late_unlogged = 0;
    t->late_worst_us = 0;
}

static void run_tick(mthread *t, match *m)
{
    /* Lateness is measured when the tick really starts, not when the round
     * did: an earlier tick of the round may have taken long. */
    int64_t now = now_us(t->e);
    int64_t interval = 1000000 / m->tick_rate;
    int64_t late = now - m->due_us;
    t->window_ticks++;
    if (late > interval) {
        t->window_late++;
        note_late(t, m, late, now);
    }
    char msg[256] = "";
    bool end = false;
    kn_match_call c = call_of(m);
    int rc = m->h->vt->loop(m->h, &c, m->in, m->n_in, &end, msg, sizeof msg);
    int64_t took = now_us(t->e) - now;
    m->n_in = 0;
    m->in_used = 0;
    m->tick++;
    static const int64_t late_bounds[KN_MATCH_LATE_BUCKETS - 1] = KN_MATCH_LATE_BOUNDS_US;
    size_t bucket = 0;
    while (bucket < KN_MATCH_LATE_BUCKETS - 1 && late > late_bounds[bucket]) bucket++;
    pthread_mutex_lock(&t->e->stats_lock);
    t->e->st.ticks++;
    t->e->st.late_hist[bucket]++;
    if ((uint64_t)took > t->e->st.tick_us_max) t->e->st.tick_us_max = (uint64_t)took;
    if (late > 0 && (uint64_t)late > t->e->st.late_us_max) t->e->st.late_us_max = (uint64_t)late;
    pthread_mutex_unlock(&t->e->stats_lock);
    if (rc) call_failed(m, "match_loop", rc, msg);
    else if (end) end_match(m, KN_OK, "match ended by its handler");
    batch_append(thread_batch(t), &m->deferred);
    /* Next due time: on the grid from t0, unless hopelessly behind. */
    m->due_us = m->t0_us + (m->tick * 1000000) / m->tick_rate;
    if (now - m->due_us > LATE_REBASE * interval) { /* re-base: the next tick one interval on */
        m->due_us = now + interval;
        m->t0_us = m->due_us - (m->tick * 1000000) / m->tick_rate;
    }
    heap_down(t, m->heap_at); /* its due time only grew */
}

static void do_join(mthread *t, join_req *j)
{
    match *m = kn_map_get(&t->by_handle, j->who.slot); /* slot carries the handle here */
    kn_match_conn conn = j->who.conn;
    if (!m || m->ended) {
        send_error_to(t, conn, j->cid, KN_ERR_NOT_FOUND, "match not found");
        return;
    }
    if (presence_by_conn(m, conn)) {
        send_error_to(t, conn, j->cid, KN_ERR_ALREADY_EXISTS, "already in this match");
        return;
    }
    if (m->n_ps >= t->e->cfg.max_size) {
        send_error_to(t, conn, j->cid, KN_ERR_RESOURCE_EXHAUSTED, "match is full");
        return;
    }
    if (atomic_load(&t->overloaded)) {
        STAT_ADD(t->e, refused_overload, 1);
        send_error_to(t, conn, j->cid, KN_ERR_UNAVAILABLE, "server overloaded; try again later");
        return;
    }
    kn_match_presence *p = kn_malloc(sizeof *p);
    if (!p) {
        send_error_to(t, conn, j->cid, KN_ERR_NOMEM, "server busy; retry");
        return;
    }
    *p = j->who;
    do {
        p->slot = ++m->next_slot;
    } while (!p->slot || presence_by_slot(m, p->slot));
    bool allow = false;
    char reason[KN_MATCH_REASON_MAX] = "", msg[256] = "";
    kn_match_call c = call_of(m);
    int rc = m->h->vt->join_attempt(m->h, &c, p, j->metadata, j->metadata_len, &allow, reason,
                                    sizeof reason, msg, sizeof msg);
    if (rc) call_failed(m, "match_join_attempt", rc, msg);
    if (rc || !allow || m->ended) {
        send_error_to(t, conn, j->cid, rc || m->ended ? KN_ERR_UNAVAILABLE : KN_ERR_PERMISSION_DENIED,
                      rc || m->ended ? "match ended" : *reason ? reason : "join refused by the match");
        kn_free(p);
        return;
    }
    if (m->n_ps == m->cap_ps) {
        size_t cap = m->cap_ps ? m->cap_ps * 2 : 8;
        kn_match_presence **ps = kn_realloc(m->ps, cap * sizeof *ps);
        if (!ps) {
            send_error_to(t, conn, j->cid, KN_ERR_NOMEM, "server busy; retry");
            kn_free(p);
            return;
        }
        m->ps = ps;
        m->cap_ps = cap;
    }
    m->ps[m->n_ps++] = p;
    reg_set_presences(t->e, m->handle, m->ps, m->n_ps);
    /* The network thread records the membership first, then the answer goes out. */
    batch_member(thread_batch(t), KN_MATCH_OUT_JOINED, conn, m->handle, p->slot);
    Kaos__V1__Presence self, *others_p = m->n_ps > 1 ? kn_calloc(m->n_ps - 1, sizeof *others_p) : NULL;
    Kaos__V1__Presence **others = m->n_ps > 1 ? kn_calloc(m->n_ps - 1, sizeof *others) : NULL;
    size_t k = 0;
    if (m->n_ps == 1 || (others_p && others))
        for (size_t i = 0; i < m->n_ps; i++) {
            if (m->ps[i] == p) continue;
            kn_entity_to_proto(&kn_match_presence_entity, m->ps[i], &others_p[k]);
            others[k] = &others_p[k];
            k++;
        }
    kn_entity_to_proto(&kn_match_presence_entity, p, &self);
    Kaos__V1__Match res;
    kn_envelope env;
    kn_envelope_match(&env, &res, j->cid, m->id, m->handle, (uint32_t)m->n_ps, t->e->cfg.max_size,
                      true, &self, others, k);
    batch_send(thread_batch(t), &env, &conn, 1, KN_CHANNEL_CONTROL, true, SIZE_MAX);
    kn_free(others);
    kn_free(others_p);
    send_presence_event(m, p, true);
    msg[0] = '\0';
    c = call_of(m);
    const kn_match_presence *one[1] = {p};
    rc = m->h->vt->join(m->h, &c, one, 1, msg, sizeof msg);
    if (rc) call_failed(m, "match_join", rc, msg);
}

static void do_leave(mthread *t, uint32_t handle, kn_match_conn conn)
{
    match *m = kn_map_get(&t->by_handle, handle);
    kn_match_presence *p = m ? presence_by_conn(m, conn) : NULL;
    if (!p) return;
    kn_match_presence *gone[1] = {p};
    presences_leave(m, gone, 1, false);
}

static void do_input(mthread *t, const rec *r, const uint8_t *data)
{
    match *m = kn_map_get(&t->by_handle, r->handle);
    kn_match_presence *p = m && !m->ended ? presence_by_slot(m, r->slot) : NULL;
    if (!p) return; /* left or ended meanwhile */
    if (m->n_in == m->cap_in) {
        size_t cap = m->cap_in ? m->cap_in * 2 : 32;
        kn_match_message *in = kn_realloc(m->in, cap * sizeof *in);
        if (!in) goto drop;
        m->in = in;
        m->cap_in = cap;
    }
    if (m->in_used + r->len > m->in_cap) {
        size_t cap = m->in_cap ? m->in_cap : 1024;
        while (cap < m->in_used + r->len) cap *= 2;
        uint8_t *d = kn_realloc(m->in_data, cap);
        if (!d) goto drop;
        /* Re-point the messages already queued at the moved bytes. */
        for (size_t i = 0; i < m->n_in; i++)
            if (m->in[i].len) m->in[i].data = d + (m->in[i].data - m->in_data);
        m->in_data = d;
        m->in_cap = cap;
    }
    if (r->len) memcpy(m->in_data + m->in_used, data, r->len);
    m->in[m->n_in++] = (kn_match_message){p, r->op_code, m->in_data + m->in_used, r->len,
                                          r->reliable, r->receive_ms};
    m->in_used += r->len;
    return;
drop:
    STAT_ADD(t->e, inputs_dropped, 1);
}

static void do_signal(mthread *t, uint32_t handle, signal_req *s)
{
    match *m = kn_map_get(&t->by_handle, handle);
    int rc = KN_ERR_NOT_FOUND;
    if (!m || m->ended) {
        snprintf(s->msg, sizeof s->msg, "match not found");
    } else {
        kn_match_call c = call_of(m);
        char msg[256] = "";
        rc = m->h->vt->signal(m->h, &c, s->data, s->len, &s->response, &s->response_len, msg,
                              sizeof msg);
        if (rc) {
            call_failed(m, "match_signal", rc, msg);
            snprintf(s->msg, sizeof s->msg, "%s", msg);
        }
    }
    pthread_mutex_lock(&s->lock);
    s->rc = rc;
    s->done = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void signal_release(signal_req *s)
{
    pthread_mutex_lock(&s->lock);
    int left = --s->refs;
    pthread_mutex_unlock(&s->lock);
    if (left) return;
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    kn_free(s->data);
    kn_free(s->response);
    kn_free(s);
}

static void do_adopt(mthread *t, match *m)
{
    m->t = t;
    m->due_us = now_us(t->e); /* the first tick is due at once */
    m->t0_us = m->due_us;
    if (heap_push(t, m) || kn_map_put(&t->by_handle, m->handle, m)) {
        KN_ERROR("match %s: out of memory adopting it", m->id);
        if (m->heap_at < t->n_heap && t->heap[m->heap_at] == m) heap_remove(t, m);
        reg_remove(t->e, m->handle);
        free_match(m);
    }
}

/* Process one swapped inbox buffer. */
static void drain(mthread *t, inbox_buf *b)
{
    size_t off = 0;
    while (off < b->len) {
        rec *r = (rec *)(b->data + off);
        const uint8_t *data = (const uint8_t *)(r + 1);
        switch (r->kind) {
        case REC_INPUT: do_input(t, r, data); break;
        case REC_JOIN:
            do_join(t, r->ptr);
            kn_free(r->ptr);
            break;
        case REC_LEAVE: do_leave(t, r->handle, r->conn); break;
        case REC_ADOPT: do_adopt(t, r->ptr); break;
        case REC_SIGNAL:
            do_signal(t, r->handle, r->ptr);
            signal_release(r->ptr);
            break;
        }
        off += (sizeof *r + r->len + 7) & ~(size_t)7;
    }
    b->len = 0;
}

/* Finish ended matches, hand the batch to the sink. */
static void flush(mthread *t)
{
    for (size_t i = 0; i < t->n_heap;) {
        match *m = t->heap[i];
        if (m->ended) finish_match(t, m); /* the heap shrank: look at slot i again */
        else i++;
    }
    if (t->out && t->out->n) {
        batch_finalize(t->out);
        t->e->cfg.out(t->e->cfg.out_ud, t->out);
        t->out = NULL;
    }
}

/* Admission control: a thread that was busy more than 90% of the last
 * second, or busy at least half of it and ran more than 5% of its ticks
 * late, takes no new matches and no new players until it recovers; players
 * already in keep playing. */
#define LOAD_WINDOW_US 1000000
static void account_load(mthread *t, int64_t start, int64_t end)
{
    t->busy_us += end - start;
    if (!t->window_start_us) t->window_start_us = start;
    int64_t span = end - t->window_start_us;
    if (span < LOAD_WINDOW_US) return;
    /* Late ticks are the thread's own doing only when it was also busy: a
     * thread idle most of the window whose ticks still start late is waiting
     * for a CPU the machine gives to others, and refusing joins would not give
     * it one (docs/matches.md, "Admission control"). */
    bool busy = t->busy_us * 10 > span * 9;
    bool late = t->busy_us * 2 >= span && t->window_late * 20 > t->window_ticks;
    bool over = busy || late;
    if (over != atomic_load(&t->overloaded)) {
        if (over)
            KN_WARN("match thread %d overloaded (busy %lld%%, %llu of %llu ticks late): "
                    "refusing new matches and joins",
                    t->index, (long long)(t->busy_us * 100 / span),
                    (unsigned long long)t->window_late, (unsigned long long)t->window_ticks);
        else KN_INFO("match thread %d recovered: taking new matches and joins", t->index);
        atomic_store(&t->overloaded, over);
    }
    t->window_start_us = end;
    t->busy_us = 0;
    t->window_ticks = t->window_late = 0;
}

/* One round: inbox, due ticks, flush. Returns the next due time (or 0). */
static int64_t round_once(mthread *t)
{
    int64_t start = now_us(t->e);
    pthread_mutex_lock(&t->lock);
    inbox_buf b = t->inbox;
    t->inbox = t->spare;
    t->spare = (inbox_buf){0};
    t->wake = false;
    pthread_mutex_unlock(&t->lock);
    drain(t, &b);
    pthread_mutex_lock(&t->lock);
    if (!t->spare.data) t->spare = b; /* keep the capacity */
    else kn_free(b.data);
    pthread_mutex_unlock(&t->lock);
    int64_t now = now_us(t->e);
    /* Everything due within the next TICK_SLACK_US runs in this wake: matches
     * whose ticks fall close together share one wake and one batch, without
     * lining every match up on one instant (which would send every snapshot
     * in one burst). */
    while (t->n_heap && t->heap[0]->due_us <= now + TICK_SLACK_US && !t->heap[0]->ended)
        run_tick(t, t->heap[0]);
    flush(t);
    account_load(t, start, now_us(t->e));
    return t->n_heap ? t->heap[0]->due_us : 0;
}

static void terminate_all(mthread *t, int grace)
{
    for (size_t i = 0; i < t->n_heap; i++) {
        match *m = t->heap[i];
        if (m->ended) continue;
        char msg[256] = "";
        kn_match_call c = call_of(m);
        int rc = m->h->vt->terminate(m->h, &c, grace, msg, sizeof msg);
        if (rc) KN_WARN("match %s (%s): match_terminate failed: %s", m->id, m->name, msg);
        batch_append(thread_batch(t), &m->deferred);
        end_match(m, KN_ERR_UNAVAILABLE, "server shutting down");
    }
    flush(t);
}

static void *thread_main(void *arg)
{
    mthread *t = arg;
    current_thread = t;
    if (t->e->cfg.pin_threads) {
        /* The i-th CPU the process may run on (taskset, cpusets), not CPU i:
         * pinning must not move a thread outside the operator's choice. */
        cpu_set_t allowed, set;
        CPU_ZERO(&set);
        int n = sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? CPU_COUNT(&allowed) : 0;
        for (int cpu = 0, k = 0; n > 0 && cpu < CPU_SETSIZE; cpu++)
            if (CPU_ISSET(cpu, &allowed) && k++ == t->index % n) CPU_SET(cpu, &set);
        if (n <= 0 || pthread_setaffinity_np(pthread_self(), sizeof set, &set))
            KN_WARN("match thread %d: could not pin to a CPU", t->index);
    }
    for (;;) {
        int64_t due = round_once(t);
        pthread_mutex_lock(&t->lock);
        if (t->stop) {
            int grace = t->grace;
            pthread_mutex_unlock(&t->lock);
            round_once(t); /* last inbox */
            terminate_all(t, grace);
            break;
        }
        if (!t->wake) {
            if (!due) {
                pthread_cond_wait(&t->cond, &t->lock);
            } else {
                int64_t wait_us = due - now_us(t->e);
                if (wait_us > 0) {
                    struct timespec until;
                    clock_gettime(CLOCK_MONOTONIC, &until);
                    until.tv_sec += wait_us / 1000000;
                    until.tv_nsec += (long)(wait_us % 1000000) * 1000;
                    if (until.tv_nsec >= 1000000000L) {
                        until.tv_sec++;
                        until.tv_nsec -= 1000000000L;
                    }
                    pthread_cond_timedwait(&t->cond, &t->lock, &until);
                }
            }
        }
        pthread_mutex_unlock(&t->lock);
    }
    current_thread = NULL;
    return NULL;
}

/* --- inbox pushes (any thread) ----------------------------------------------------------------- */

static int push(kn_match_engine *e, mthread *t, const rec *r, const void *data, bool wake)
{
    size_t need = (sizeof *r + r->len + 7) & ~(size_t)7;
    pthread_mutex_lock(&t->lock);
    inbox_buf *b = &t->inbox;
    int rc = KN_OK;
    if (r->kind == REC_INPUT && b->len + need > e->cfg.max_inbox_bytes) {
        rc = KN_ERR_RESOURCE_EXHAUSTED;
    } else if (b->len + need > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + need) cap *= 2;
        uint8_t *p = kn_realloc(b->data, cap);
        if (!p) rc = KN_ERR_NOMEM;
        else {
            b->data = p;
            b->cap = cap;
        }
    }
    if (r->kind == REC_INPUT) {
        if (rc) t->inputs_dropped++;
        else t->inputs++;
    }
    if (rc == KN_OK) {
        memcpy(b->data + b->len, r, sizeof *r);
        if (r->len && data) memcpy(b->data + b->len + sizeof *r, data, r->len);
        b->len += need;
        if (wake && !t->wake) {
            t->wake = true;
            pthread_cond_signal(&t->cond);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static mthread *thread_of(kn_match_engine *e, uint32_t handle)
{
    uint32_t i = (handle >> 24) & 0x7f;
    return i < (uint32_t)e->n_threads ? &e->threads[i] : NULL;
}

int kn_match_input(kn_match_engine *e, uint32_t handle, uint32_t slot, int64_t op_code,
                   const uint8_t *data, size_t len, bool reliable)
{
    mthread *t = thread_of(e, handle);
    if (!t) return KN_ERR_NOT_FOUND;
    rec r = {.kind = REC_INPUT, .handle = handle, .slot = slot, .op_code = op_code,
             .reliable = reliable, .receive_ms = kn_time_wall_ms(), .len = len};
    return push(e, t, &r, data, false); /* consumed at the match's next tick: no wake */
}

int kn_match_leave(kn_match_engine *e, uint32_t handle, kn_match_conn conn)
{
    mthread *t = thread_of(e, handle);
    if (!t) return KN_ERR_NOT_FOUND;
    rec r = {.kind = REC_LEAVE, .handle = handle, .conn = conn};
    return push(e, t, &r, NULL, true);
}

int kn_match_join(kn_match_engine *e, const char *match_id, const kn_match_presence *who,
                  uint32_t cid, const char *metadata, size_t metadata_len)
{
    pthread_mutex_lock(&e->reg_lock);
    reg *g = reg_find_id(e, match_id);
    uint32_t handle = g ? g->handle : 0;
    pthread_mutex_unlock(&e->reg_lock);
    if (!handle) return KN_ERR_NOT_FOUND;
    join_req *j = kn_malloc(sizeof *j + metadata_len + 1);
    if (!j) return KN_ERR_NOMEM;
    j->who = *who;
    j->who.slot = handle; /* read back by do_join */
    j->cid = cid;
    j->metadata_len = metadata_len;
    if (metadata_len) memcpy(j->metadata, metadata, metadata_len);
    j->metadata[metadata_len] = '\0';
    rec r = {.kind = REC_JOIN, .handle = handle, .ptr = j};
    int rc = push(e, thread_of(e, handle), &r, NULL, true);
    if (rc) kn_free(j);
    return rc;
}

int kn_match_signal(kn_match_engine *e, const char *match_id, const char *data, size_t len,
                    int64_t timeout_ms, char **response, size_t *response_len, char *msg,
                    size_t cap)
{
    *response = NULL;
    *response_len = 0;
    if (current_thread) {
        snprintf(msg, cap, "match_signal cannot be called from a match handler");
        return KN_ERR_FAILED_PRECONDITION;
    }
    if (!e->cfg.threads) {
        snprintf(msg, cap, "match_signal needs match threads");
        return KN_ERR_FAILED_PRECONDITION;
    }
    pthread_mutex_lock(&e->reg_lock);
    reg *g = reg_find_id(e, match_id);
    uint32_t handle = g ? g->handle : 0;
    pthread_mutex_unlock(&e->reg_lock);
    if (!handle) {
        snprintf(msg, cap, "match not found");
        return KN_ERR_NOT_FOUND;
    }
    signal_req *s = kn_calloc(1, sizeof *s);
    if (!s || !(s->data = kn_malloc(len + 1))) {
        kn_free(s);
        return KN_ERR_NOMEM;
    }
    memcpy(s->data, data, len);
    s->data[len] = '\0';
    s->len = len;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->refs = 2;
    rec r = {.kind = REC_SIGNAL, .handle = handle, .ptr = s};
    int rc = push(e, thread_of(e, handle), &r, NULL, true);
    if (rc) {
        s->refs = 1;
        signal_release(s);
        return rc;
    }
    struct timespec until;
    kn_time_deadline(CLOCK_REALTIME, timeout_ms, &until);
    pthread_mutex_lock(&s->lock);
    int w = 0;
    while (!s->done && w != ETIMEDOUT) w = pthread_cond_timedwait(&s->cond, &s->lock, &until);
    bool done = s->done;
    pthread_mutex_unlock(&s->lock);
    if (!done) {
        snprintf(msg, cap, "match_signal timed out");
        signal_release(s);
        return KN_ERR_DEADLINE_EXCEEDED;
    }
    rc = s->rc;
    if (rc) snprintf(msg, cap, "%s", s->msg);
    else {
        *response = s->response;
        *response_len = s->response_len;
        s->response = NULL;
    }
    signal_release(s);
    return rc;
}

int kn_match_create(kn_match_engine *e, const char *name, const char *params, size_t params_len,
                    char match_id[KN_MATCH_ID_MAX], char *msg, size_t cap)
{
    match_id[0] = '\0';
    if (atomic_load(&e->stopped)) {
        snprintf(msg, cap, "server is shutting down");
        return KN_ERR_UNAVAILABLE;
    }
    if (!name || !*name || strlen(name) > KN_MATCH_NAME_MAX) {
        snprintf(msg, cap, "match handler name must be 1-%d bytes", KN_MATCH_NAME_MAX);
        return KN_ERR_INVALID_ARGUMENT;
    }
    match *m = kn_calloc(1, sizeof *m);
    if (!m) return KN_ERR_NOMEM;
    snprintf(m->name, sizeof m->name, "%s", name);
    char u[KN_UUID_STR_LEN + 1];
    kn_uuid_v4(u);
    snprintf(m->id, sizeof m->id, "%s.%.26s", u, e->node);
    unsigned ti = atomic_fetch_add(&e->next_thread, 1) % (unsigned)e->n_threads;
    for (int k = 0; k < e->n_threads && atomic_load(&e->threads[ti].overloaded); k++)
        ti = (ti + 1) % (unsigned)e->n_threads;
    mthread *t = &e->threads[ti];
    if (atomic_load(&t->overloaded)) {
        STAT_ADD(e, refused_overload, 1);
        kn_free(m);
        snprintf(msg, cap, "server overloaded; try again later");
        return KN_ERR_UNAVAILABLE;
    }
    static atomic_uint seq;
    m->handle = KN_MATCH_HANDLE_BIT | (ti << 24) | ((atomic_fetch_add(&seq, 1) % 0xffffff) + 1);
    m->disp = (kn_match_dispatcher){d_broadcast, d_kick, d_label_update, m};
    m->t = t; /* for call_of / the dispatcher during init; adopted later */
    int rc = e->cfg.factory(e->cfg.factory_ud, name, m->id, e->node, &m->h, msg, cap);
    if (rc) {
        kn_free(m);
        return rc;
    }
    char *label = NULL;
    int rate = 0;
    kn_match_call c = call_of(m);
    /* Broadcasts during init have nobody to reach; give the dispatcher a
     * throwaway batch by marking the match as not yet running. */
    rc = m->h->vt->init(m->h, &c, params ? params : "", params_len, &rate, &label, msg, cap);
    if (rc == KN_OK && (rate < 1 || rate > KN_MATCH_RATE_MAX)) {
        snprintf(msg, cap, "match_init returned tick rate %d; it must be 1-60", rate);
        rc = KN_ERR_INVALID_ARGUMENT;
    }
    if (rc == KN_OK && label && strlen(label) > KN_MATCH_LABEL_MAX) {
        snprintf(msg, cap, "match label is over %d bytes", KN_MATCH_LABEL_MAX);
        rc = KN_ERR_INVALID_ARGUMENT;
    }
    if (rc == KN_OK) {
        m->tick_rate = rate;
        rc = reg_add(e, m, label);
        if (rc == KN_ERR_RESOURCE_EXHAUSTED) snprintf(msg, cap, "too many matches");
    }
    kn_free(label);
    if (rc) {
        free_match(m);
        return rc;
    }
    m->t = NULL;
    rec r = {.kind = REC_ADOPT, .handle = m->handle, .ptr = m};
    memcpy(match_id, m->id, KN_MATCH_ID_MAX);
    rc = push(e, t, &r, NULL, true);
    if (rc) {
        reg_remove(e, m->handle);
        free_match(m);
        match_id[0] = '\0';
        return rc;
    }
    pthread_mutex_lock(&e->stats_lock);
    e->st.matches++;
    e->st.created++;
    pthread_mutex_unlock(&e->stats_lock);
    KN_INFO("match %s (%s) created at %d Hz", match_id, name, rate);
    return KN_OK;
}

/* --- listing ------------------------------------------------------------------------------------ */

int kn_match_list(kn_match_engine *e, const kn_match_list_query *q, kn_match_info **out,
                  size_t *n, char *msg, size_t cap)
{
    *out = NULL;
    *n = 0;
    uint32_t limit = q->limit ? q->limit : 10;
    if (limit > 100) {
        snprintf(msg, cap, "limit must be 1-100");
        return KN_ERR_INVALID_ARGUMENT;
    }
    kn_match_query *mq = NULL;
    int rc = q->query && *q->query ? kn_match_query_parse(q->query, &mq, msg, cap) : KN_OK;
    if (rc) return rc;
    pthread_mutex_lock(&e->reg_lock);
    size_t total = e->reg_count;
    kn_match_info *list = total ? kn_calloc(total, sizeof *list) : NULL;
    int *score = total ? kn_calloc(total, sizeof *score) : NULL;
    size_t k = 0;
    if (total && (!list || !score)) rc = KN_ERR_NOMEM;
    for (size_t i = 0; rc == KN_OK && i < e->reg_by_handle.cap; i++) {
        kn_map_entry *en = &e->reg_by_handle.slots[i];
        if (!en->key) continue;
        reg *g = en->value;
        if (q->min_size >= 0 && g->size < (uint32_t)q->min_size) continue;
        if (q->max_size >= 0 && g->size > (uint32_t)q->max_size) continue;
        if (q->label && *q->label && (!g->label || strcmp(q->label, g->label))) continue;
        int s = 0;
        if (mq && !kn_match_query_eval(mq, g->label, &s)) continue;
        kn_match_info *mi = &list[k];
        memcpy(mi->match_id, g->id, sizeof mi->match_id);
        memcpy(mi->handler, g->name, sizeof mi->handler);
        mi->size = g->size;
        mi->tick_rate = g->tick_rate;
        if (g->label && !(mi->label = kn_strndup(g->label, strlen(g->label)))) rc = KN_ERR_NOMEM;
        score[k++] = s;
    }
    pthread_mutex_unlock(&e->reg_lock);
    kn_match_query_free(mq);
    if (rc) {
        kn_match_list_free(list, k);
        kn_free(score);
        return rc;
    }
    /* Best score first (stable insertion sort; lists are short). */
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && score[j] > score[j - 1]; j--) {
            kn_match_info tmp = list[j];
            list[j] = list[j - 1];
            list[j - 1] = tmp;
            int ts = score[j];
            score[j] = score[j - 1];
            score[j - 1] = ts;
        }
    kn_free(score);
    for (size_t i = limit; i < k; i++) kn_free(list[i].label);
    *out = list;
    *n = k < limit ? k : limit;
    return KN_OK;
}

int kn_match_get(kn_match_engine *e, const char *match_id, kn_match_info *out)
{
    memset(out, 0, sizeof *out);
    int rc = KN_ERR_NOT_FOUND;
    pthread_mutex_lock(&e->reg_lock);
    reg *g = reg_find_id(e, match_id);
    if (g) {
        memcpy(out->match_id, g->id, sizeof out->match_id);
        memcpy(out->handler, g->name, sizeof out->handler);
        out->size = g->size;
        out->tick_rate = g->tick_rate;
        rc = g->label && !(out->label = kn_strndup(g->label, strlen(g->label))) ? KN_ERR_NOMEM
                                                                                : KN_OK;
    }
    pthread_mutex_unlock(&e->reg_lock);
    return rc;
}

int kn_match_presences(kn_match_engine *e, const char *match_id, kn_match_presence **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&e->reg_lock);
    reg *g = reg_find_id(e, match_id);
    int rc = g ? KN_OK : KN_ERR_NOT_FOUND;
    if (g && g->n_ps) {
        *out = kn_malloc(g->n_ps * sizeof **out);
        if (*out) {
            memcpy(*out, g->ps, g->n_ps * sizeof **out);
            *n = g->n_ps;
        } else {
            rc = KN_ERR_NOMEM;
        }
    }
    pthread_mutex_unlock(&e->reg_lock);
    return rc;
}

void kn_match_list_free(kn_match_info *list, size_t n)
{
    if (!list) return;
    for (size_t i = 0; i < n; i++) kn_free(list[i].label);
    kn_free(list);
}

int kn_match_query_check(const char *query, char *msg, size_t cap)
{
    kn_match_query *q;
    int rc = kn_match_query_parse(query, &q, msg, cap);
    kn_match_query_free(q);
    return rc;
}

/* --- engine lifecycle --------------------------------------------------------------------------- */

int kn_match_engine_create(const kn_match_engine_config *cfg, kn_match_engine **out)
{
    *out = NULL;
    if (cfg->threads < 0 || cfg->threads > MAX_THREADS || !cfg->factory || !cfg->out)
        return KN_ERR_INVALID_ARGUMENT;
    kn_match_engine *e = kn_calloc(1, sizeof *e);
    batch_pool *pool = e ? kn_calloc(1, sizeof *pool) : NULL;
    if (!pool) {
        kn_free(e);
        return KN_ERR_NOMEM;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pool->refs = 1;
    e->pool = pool;
    e->cfg = *cfg;
    if (!e->cfg.max_matches) e->cfg.max_matches = 10000;
    if (!e->cfg.max_size) e->cfg.max_size = 256;
    if (!e->cfg.max_message_size) e->cfg.max_message_size = 16384;
    if (!e->cfg.max_inbox_bytes) e->cfg.max_inbox_bytes = (size_t)4 << 20;
    snprintf(e->node, sizeof e->node, "%s", cfg->node ? cfg->node : "kaos1");
    e->cfg.node = e->node;
    pthread_mutex_init(&e->reg_lock, NULL);
    pthread_mutex_init(&e->stop_lock, NULL);
    pthread_mutex_init(&e->stats_lock, NULL);
    kn_map_init(&e->reg_by_id);
    kn_map_init(&e->reg_by_handle);
    e->n_threads = cfg->threads ? cfg->threads : 1;
    e->share_pct = cfg->call_share_pct == 0    ? CALL_SHARE_PCT
                   : cfg->call_share_pct < 0   ? 0
                   : cfg->call_share_pct > 100 ? 100
                                               : cfg->call_share_pct;
    for (int i = 0; i < e->n_threads; i++) {
        mthread *t = &e->threads[i];
        t->e = e;
        t->index = i;
        pthread_mutex_init(&t->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&t->cond, &ca);
        pthread_condattr_destroy(&ca);
        kn_map_init(&t->by_handle);
    }
    for (int i = 0; i < cfg->threads; i++) {
        if (pthread_create(&e->threads[i].th, NULL, thread_main, &e->threads[i])) {
            kn_match_engine_destroy(e);
            return KN_ERR_NOMEM;
        }
        e->threads[i].started = true;
    }
    *out = e;
    return KN_OK;
}

void kn_match_engine_step(kn_match_engine *e)
{
    if (!e->cfg.threads) round_once(&e->threads[0]);
}

void kn_match_engine_stop(kn_match_engine *e, int grace_seconds)
{
    if (!e) return;
    /* Every network thread calls this at shutdown; each must find the
     * matches terminated (their MatchEnd batches posted) when it returns. */
    pthread_mutex_lock(&e->stop_lock);
    if (atomic_exchange(&e->stopped, true)) {
        pthread_mutex_unlock(&e->stop_lock);
        return;
    }
    for (int i = 0; i < e->n_threads; i++) {
        mthread *t = &e->threads[i];
        if (!t->started) {
            round_once(t);
            terminate_all(t, grace_seconds);
            continue;
        }
        pthread_mutex_lock(&t->lock);
        t->stop = true;
        t->grace = grace_seconds;
        pthread_cond_signal(&t->cond);
        pthread_mutex_unlock(&t->lock);
        pthread_join(t->th, NULL);
        t->started = false;
    }
    pthread_mutex_unlock(&e->stop_lock);
}

void kn_match_engine_destroy(kn_match_engine *e)
{
    if (!e) return;
    kn_match_engine_stop(e, 0);
    for (int i = 0; i < e->n_threads; i++) {
        mthread *t = &e->threads[i];
        /* Anything left in an inbox after the stop (a late push). */
        inbox_buf bufs[2] = {t->inbox, t->spare};
        for (int k = 0; k < 2; k++) {
            size_t off = 0;
            while (off < bufs[k].len) {
                rec *r = (rec *)(bufs[k].data + off);
                if (r->kind == REC_JOIN) kn_free(r->ptr);
                if (r->kind == REC_ADOPT) {
                    reg_remove(e, ((match *)r->ptr)->handle);
                    free_match(r->ptr);
                }
                if (r->kind == REC_SIGNAL) signal_release(r->ptr);
                off += (sizeof *r + r->len + 7) & ~(size_t)7;
            }
            kn_free(bufs[k].data);
        }
        while (t->n_heap) {
            match *m = t->heap[0];
            heap_remove(t, m);
            reg_remove(e, m->handle);
            free_match(m);
        }
        kn_free(t->heap);
        kn_map_deinit(&t->by_handle);
        kn_match_batch_free(t->out);
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->cond);
    }
    kn_map_deinit(&e->reg_by_id);
    kn_map_deinit(&e->reg_by_handle);
    pthread_mutex_destroy(&e->reg_lock);
    pthread_mutex_destroy(&e->stop_lock);
    pthread_mutex_destroy(&e->stats_lock);
    pool_close(e->pool);
    kn_free(e);
}

void kn_match_engine_stats(kn_match_engine *e, kn_match_stats *out)
{
    pthread_mutex_lock(&e->stats_lock);
    *out = e->st;
    pthread_mutex_unlock(&e->stats_lock);
    for (int i = 0; i < e->n_threads; i++) {
        mthread *t = &e->threads[i];
        pthread_mutex_lock(&t->lock);
        out->inputs += t->inputs;
        out->inputs_dropped += t->inputs_dropped;
        pthread_mutex_unlock(&t->lock);
    }
}
