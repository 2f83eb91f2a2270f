/* kn_match: the authoritative match engine.
 *
 * A match is a room that ticks at a fixed rate (1-60 Hz) and whose logic is
 * a handler: a vtable the engine calls (init, join_attempt, join, leave,
 * loop, terminate, signal) with no idea what implements it — the Lua runtime
 * does, with one lua_State per match. The engine owns matches, presences,
 * inboxes and tick scheduling; it never includes Lua or ENet.
 *
 * Threads. Matches are spread over `threads` match threads (round robin at
 * creation); each match lives on one thread for its whole life, so handler
 * calls of one match never run concurrently and need no locks. Other threads
 * talk to a match only through its thread's inbox (a mutex-guarded buffer
 * swapped once per wake): the network thread pushes player input, joins and
 * leaves; API workers push creations and signals. Outgoing traffic leaves as
 * one batch per thread wake through the injected `out` sink (the server posts
 * it to the network thread). With threads = 0 nothing runs by itself and the
 * caller drives the engine with kn_match_engine_step and its own clock
 * (deterministic tests).
 *
 * Ticks are scheduled on the monotonic clock: tick n of a match starting at
 * t0 is due at t0 + n * 1000/rate ms. A tick that starts more than one
 * interval late is counted (kn_match_stats.late_ticks) and logged (at most
 * one line a second per match thread, with the count since the last) — never
 * skipped; a match that falls more than 10 intervals behind is re-based on
 * the current time (counted as one late tick).
 *
 * Admission control. A match thread busy more than 90% of the last second,
 * or busy at least half of it and running more than 5% of its ticks late
 * (late ticks of a mostly idle thread are the machine's doing, not its
 * own, and shedding would not help), is "overloaded": new matches
 * go to other threads (or are refused with UNAVAILABLE when all are) and new
 * joins to its matches are refused with UNAVAILABLE, while the players
 * already in keep playing. It recovers by itself on the next quiet second.
 *
 * Faults. A handler call that fails (script error, memory cap, time budget)
 * ends that match alone: its players get a MatchEnd event with the reason
 * and every other match keeps ticking. On kn_match_engine_stop every match
 * gets terminate(grace_seconds), then ends.
 *
 * A runaway call holds its neighbours back at most one tick: while it runs
 * its thread runs nothing else, so every call on a thread that other
 * matches share carries a CPU budget (kn_match_call.budget_us) of
 * call_share_pct (50 %) of the tick interval of the fastest other match on
 * that thread. The handler stops the call past it, which ends the match;
 * its neighbours' next ticks start at most that share (plus the handler's
 * reaction time) late, under one interval. A match alone on its thread has
 * no such budget. Why a budget and not another thread: docs/matches.md.
 *
 * Ids. A match has a shareable id "<uuid>.<node>" (the same shape as relayed
 * matches) and a compact handle, carried by every data packet, with bit 31
 * set (relayed handles never have it). Handles encode the owning thread. */
#ifndef KN_MATCH_H
#define KN_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KN_MATCH_HANDLE_BIT 0x80000000u
#define KN_MATCH_ID_MAX 64
#define KN_MATCH_LABEL_MAX 2048
#define KN_MATCH_NAME_MAX 128
#define KN_MATCH_REASON_MAX 128

typedef uint64_t kn_match_conn; /* a network connection id (kn_conn_id) */

typedef struct kn_match_engine kn_match_engine;
typedef struct kn_entity kn_entity;

/* A player in a match. */
typedef struct kn_match_presence {
    uint32_t slot; /* unique in the match while the player stays; 0 = none */
    kn_match_conn conn;
    char user_id[37];
    char session_id[37];
    char username[129];
} kn_match_presence;

/* kn_match_presence as the Presence entity (kn_entity.h): the wire's
 * Presence and the Lua presence tables are built from it. */
extern const kn_entity kn_match_presence_entity;

/* Player input delivered to loop(). */
typedef struct kn_match_message {
    const kn_match_presence *sender;
    int64_t op_code;
    const uint8_t *data;
    size_t len;
    bool reliable;
    int64_t receive_ms; /* wall clock, Unix ms */
} kn_match_message;

/* What handler code may do to its match during a call. Presences are named
 * by slot. `targets` NULL = every presence; `sender` 0 = the server. */
typedef struct kn_match_dispatcher {
    int (*broadcast)(void *ud, int64_t op_code, const uint8_t *data, size_t len,
                     const uint32_t *targets, size_t n_targets, uint32_t sender, bool reliable,
                     bool deferred);
    int (*kick)(void *ud, const uint32_t *slots, size_t n);
    int (*label_update)(void *ud, const char *label);
    void *ud;
} kn_match_dispatcher;

/* The context of every handler call. */
typedef struct kn_match_call {
    const kn_match_dispatcher *dispatcher;
    const char *match_id;
    const char *node;
    int64_t tick;
    const kn_match_presence *const *presences; /* everyone in the match now */
    size_t n_presences;
    /* CPU time this call may use, µs; 0 = no limit from the engine (the
     * handler's own budget applies). A call on a match thread that other
     * matches share gets `call_share_pct` of the tick interval of the
     * fastest of them (Faults above): the handler must stop the call once
     * it has used that much CPU and fail it (KN_ERR_DEADLINE_EXCEEDED). */
    int64_t budget_us;
} kn_match_call;

/* A handler instance: one per match. Every function returns KN_OK or an
 * error (the match then ends with `msg` as the reason). */
typedef struct kn_match_handler kn_match_handler;
typedef struct kn_match_handler_vt {
    /* -> tick rate (1-60) and label (kn_malloc'd JSON text or NULL). */
    int (*init)(kn_match_handler *h, const kn_match_call *c, const char *params, size_t params_len,
                int *tick_rate, char **label, char *msg, size_t cap);
    /* -> *allow; when refused, a reason for the player in `reason`. */
    int (*join_attempt)(kn_match_handler *h, const kn_match_call *c, const kn_match_presence *p,
                        const char *metadata, size_t metadata_len, bool *allow, char *reason,
                        size_t reason_cap, char *msg, size_t cap);
    int (*join)(kn_match_handler *h, const kn_match_call *c, const kn_match_presence *const *ps,
                size_t n, char *msg, size_t cap);
    int (*leave)(kn_match_handler *h, const kn_match_call *c, const kn_match_presence *const *ps,
                 size_t n, char *msg, size_t cap);
    /* *end = true when the handler ended the match (returned nil). */
    int (*loop)(kn_match_handler *h, const kn_match_call *c, const kn_match_message *msgs,
                size_t n, bool *end, char *msg, size_t cap);
    int (*terminate)(kn_match_handler *h, const kn_match_call *c, int grace_seconds, char *msg,
                     size_t cap);
    /* -> response (kn_malloc'd, may be NULL). */
    int (*signal)(kn_match_handler *h, const kn_match_call *c, const char *data, size_t len,
                  char **response, size_t *response_len, char *msg, size_t cap);
    void (*destroy)(kn_match_handler *h);
} kn_match_handler_vt;
struct kn_match_handler {
    const kn_match_handler_vt *vt;
};

/* Makes the handler registered as `name` (the runtime). KN_ERR_NOT_FOUND for
 * an unknown name. Called on the creating thread. */
typedef int (*kn_match_factory_fn)(void *ud, const char *name, const char *match_id,
                                   const char *node, kn_match_handler **out, char *msg, size_t cap);

/* Outgoing traffic of one thread wake, in order. The sink owns `batch`
 * (kn_match_batch_free). Called on the match threads. */
typedef struct kn_match_batch kn_match_batch;
typedef void (*kn_match_out_fn)(void *ud, kn_match_batch *batch);

/* What a batch holds: the same bytes to several connections on a channel,
 * or a close of membership (the connection leaves the match on the network
 * thread's books: kicked, match ended, join refused after it raced a close). */
typedef enum { KN_MATCH_OUT_SEND, KN_MATCH_OUT_JOINED, KN_MATCH_OUT_LEFT } kn_match_out_kind;
typedef struct kn_match_out {
    kn_match_out_kind kind;
    uint8_t channel;
    bool reliable;
    const kn_match_conn *conns;
    size_t n_conns;
    const uint8_t *data; /* an encoded Envelope */
    size_t len;
    uint32_t handle; /* JOINED / LEFT: the match and the slot */
    uint32_t slot;
} kn_match_out;
size_t kn_match_batch_count(const kn_match_batch *b);
const kn_match_out *kn_match_batch_get(const kn_match_batch *b, size_t i);
/* Hands the batch back: to its engine's pool (its memory is reused for a
 * later wake) or, past the pool's size or after the engine is gone, to the
 * allocator. Any thread; accepts NULL. */
void kn_match_batch_free(kn_match_batch *b);
/* Scratch memory of at least `size` bytes for the sink while it owns the
 * batch (e.g. its posts to the network threads); kept with the batch when
 * it is reused, so the steady state allocates nothing. NULL when out of
 * memory. */
void *kn_match_batch_sink(kn_match_batch *b, size_t size);

typedef struct kn_match_engine_config {
    int threads;               /* match threads; 0 = manual stepping */
    bool pin_threads;          /* pin thread i to the (i % n)-th of the n CPUs the process
                                  may run on (sched_getaffinity at thread start) */
    const char *node;
    uint32_t max_matches;      /* 0 = 10000 */
    uint32_t max_size;         /* players per match; 0 = 256 */
    size_t max_message_size;   /* largest envelope built; 0 = 16 KiB */
    size_t max_inbox_bytes;    /* per thread, input buffered between wakes; 0 = 4 MiB */
    kn_match_factory_fn factory;
    void *factory_ud;
    kn_match_out_fn out;
    void *out_ud;
    int64_t (*now_us)(void);   /* monotonic µs; NULL = kn_time_mono_us */
    int call_share_pct;        /* a call's CPU budget, % of the fastest neighbour's tick
                                  interval (kn_match_call.budget_us); 0 = 50, < 0 = none */
} kn_match_engine_config;

/* Tick lateness (start minus due time) is counted in buckets with these
 * upper bounds in µs; the last bucket, KN_MATCH_LATE_BUCKETS - 1, takes the
 * rest. A tick interval at 30 Hz is 33333 µs. */
#define KN_MATCH_LATE_BOUNDS_US {250, 500, 1000, 2000, 3000, 5000, 10000, 33333}
#define KN_MATCH_LATE_BUCKETS 9

typedef struct kn_match_stats {
    uint64_t matches, created, ended, errors;
    uint64_t ticks, late_ticks; /* late: started more than one interval after its due time */
    uint64_t inputs, inputs_dropped;
    uint64_t tick_us_max; /* longest single tick, µs */
    uint64_t late_us_max; /* the latest start of a tick after its due time, µs */
    uint64_t refused_overload; /* creates and joins refused by admission control */
    uint64_t late_hist[KN_MATCH_LATE_BUCKETS]; /* ticks by lateness, see above */
} kn_match_stats;

int kn_match_engine_create(const kn_match_engine_config *cfg, kn_match_engine **out);
/* Terminates every match (terminate(grace), flushes), stops the threads.
 * Any thread; a call made while another runs waits until it is done. */
void kn_match_engine_stop(kn_match_engine *e, int grace_seconds);
void kn_match_engine_destroy(kn_match_engine *e); /* accepts NULL; stops first */
/* Manual mode: run everything due at the injected clock's time. */
void kn_match_engine_step(kn_match_engine *e);
void kn_match_engine_stats(kn_match_engine *e, kn_match_stats *out);

/* Create a match of handler `name`; runs init on the calling thread, then
 * hands the match to a match thread. Any thread. *match_id: the new id. */
int kn_match_create(kn_match_engine *e, const char *name, const char *params, size_t params_len,
                    char match_id[KN_MATCH_ID_MAX], char *msg, size_t cap);

/* Ask to join. The answer comes back through the sink: a JOINED out record
 * followed by the Match envelope to `who.conn` (cid echoed), or an Error
 * envelope with the handler's reason. NOT_FOUND when there is no such match
 * (the caller may then try a relayed match). Any thread. */
int kn_match_join(kn_match_engine *e, const char *match_id, const kn_match_presence *who,
                  uint32_t cid, const char *metadata, size_t metadata_len);
/* The connection leaves (client request or disconnect). Any thread. */
int kn_match_leave(kn_match_engine *e, uint32_t handle, kn_match_conn conn);
/* Player input; copied. RESOURCE_EXHAUSTED when the inbox is full (dropped
 * and counted). Any thread (the network thread). */
int kn_match_input(kn_match_engine *e, uint32_t handle, uint32_t slot, int64_t op_code,
                   const uint8_t *data, size_t len, bool reliable);
/* Call the handler's signal and wait up to timeout_ms for its response
 * (kn_malloc'd). Any thread but a match thread. */
int kn_match_signal(kn_match_engine *e, const char *match_id, const char *data, size_t len,
                    int64_t timeout_ms, char **response, size_t *response_len, char *msg,
                    size_t cap);

/* Listing, from the registry (any thread). label_query: "+field:value",
 * "-field:value", "field:>=N" (also >, <, <=), terms separated by spaces;
 * `+` terms must match, `-` terms must not, bare terms rank results. */
typedef struct kn_match_info {
    char match_id[KN_MATCH_ID_MAX];
    char handler[KN_MATCH_NAME_MAX + 1];
    char *label; /* JSON text or NULL; owned by the list */
    uint32_t size;
    int tick_rate;
} kn_match_info;
typedef struct kn_match_list_query {
    uint32_t limit;       /* 1-100 */
    const char *label;    /* exact label text, or NULL */
    const char *query;    /* label query, or NULL */
    int32_t min_size;     /* -1 = any */
    int32_t max_size;     /* -1 = any */
} kn_match_list_query;
int kn_match_list(kn_match_engine *e, const kn_match_list_query *q, kn_match_info **out,
                  size_t *n, char *msg, size_t cap);
void kn_match_list_free(kn_match_info *list, size_t n);
/* One match by id, from the registry: *out, whose label (or NULL) is the
 * caller's to kn_free. NOT_FOUND when no match has that id. Any thread;
 * cheap (one locked lookup), so the network thread may call it. */
int kn_match_get(kn_match_engine *e, const char *match_id, kn_match_info *out);
/* The match's presences as of its last join or leave, in join order: *out
 * (kn_free) holds *n. NOT_FOUND for no such match here. A copy the
 * registry keeps (the console's view; the match thread owns the real
 * ones). Any thread. */
int kn_match_presences(kn_match_engine *e, const char *match_id, kn_match_presence **out,
                       size_t *n);

/* Whether a label query is valid (for argument checks before listing). */
int kn_match_query_check(const char *query, char *msg, size_t cap);

/* --- the query language (docs/matchmaker.md has the grammar) -------------
 * One parser for match listing (terms against a match's JSON label) and
 * the matchmaker (terms against a ticket's properties):
 * "+region:eu -map:dust skill:>=3^5 name:\"two words\" *". `+` terms must
 * match, `-` terms must not, bare terms add to the score; ^N (0-1000) is a
 * term's boost (what it adds, 1 by default; a `+` term adds only with an
 * explicit boost); `*` alone matches anything. A field is a dotted path
 * ("label." or "properties." in front is ignored, as in Nakama). Values:
 * >=N, >N, <=N, <N compare numbers; anything else equals a string, a
 * number or true/false. KN_ERR_INVALID_ARGUMENT "query: <why> at position
 * <byte offset> (...)" on a bad query. Pure functions: any thread. */
typedef struct kn_match_query kn_match_query;
int kn_match_query_parse(const char *text, kn_match_query **out, char *msg, size_t cap);
void kn_match_query_free(kn_match_query *q); /* accepts NULL */
/* Whether label (JSON text, may be NULL) passes; *score sums the boosts of
 * the ranking terms that matched. */
bool kn_match_query_eval(const kn_match_query *q, const char *label, int *score);
/* A property a lookup found: a string (str) or a number (is_num, num). */
typedef struct kn_match_query_value {
    const char *str;
    double num;
    bool is_num;
} kn_match_query_value;
/* Finds property `name` of whatever is evaluated; false when absent. */
typedef bool (*kn_match_query_lookup_fn)(void *ud, const char *name, kn_match_query_value *out);
/* kn_match_query_eval against a caller's properties (the matchmaker's). */
bool kn_match_query_eval_with(const kn_match_query *q, kn_match_query_lookup_fn get, void *ud,
                              int *score);
/* Server-side widening (the matchmaker's): the `+` and bare comparisons
 * on `field` move outward by `by` from their bounds as parsed (>=, > down,
 * <=, < up; by = 0 restores them); `-` terms and equalities stay. Returns
 * how many terms it moved (0: q has no such comparison). Not thread-safe
 * on one q: its owner's lock. */
size_t kn_match_query_widen(kn_match_query *q, const char *field, double by);
/* What an index may use to narrow the candidates of q: the first `+` term
 * that equals a string (eq_name:eq_value), and the `+` numeric bounds on one
 * field (range_name within [lo, hi], bounds included: a superset of what
 * q accepts there). Names point into q. False when q has neither. */
typedef struct kn_match_query_bounds {
    const char *eq_name, *eq_value;
    const char *range_name;
    double lo, hi;
} kn_match_query_bounds;
bool kn_match_query_bounds_of(const kn_match_query *q, kn_match_query_bounds *out);

#endif
