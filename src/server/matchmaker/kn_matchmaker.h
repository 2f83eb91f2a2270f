/* kn_matchmaker: tickets waiting for players, grouped on an interval
 * (docs/matchmaker.md has the algorithm, the limits and every error).
 *
 * A ticket is one session's wish to play (or a party's, as one unit
 * that is never split): string and numeric properties, a query over the
 * other tickets' properties (the query language of match listing,
 * kn_match.h), min and max count and a count multiple. Every interval a
 * pass forms groups: each ticket's query must accept every other ticket of
 * its group (mutual), the group's size must suit every member's counts, the
 * best-scoring candidates (boosts) win, and for max_intervals intervals a
 * ticket holds out for its max count before taking fewer. A formed group
 * leaves the pool and goes to the `matched` callback (the root turns it
 * into a match and a MatchmakerMatched for each player).
 *
 * Two seams, for the cluster (issue 23: one active matchmaker per cluster,
 * holding a lease, and no ticket lost on failover):
 *  - the ticket store (kn_mm_store): where tickets live. The default keeps
 *    them in this process; a cluster store keeps them where every node can
 *    add and remove and the lease holder can read them.
 *  - the processor (kn_mm_processor): what turns a pool into groups. The
 *    built-in matcher by default; a script's processor replaces it, a
 *    script's override may pick among its candidate groups; either falls
 *    back to the built-in on error.
 * A pass reads the store, runs the processor and removes the matched
 * tickets from the store before it hands the groups out, so a processor on
 * another node could run it the same way.
 *
 * Clock: injected (now_ms); with interval_ms = 0 nothing runs by itself and
 * tests call kn_mm_process with a stepped clock.
 *
 * Threads: add, remove, remove_session and stats are any-thread (one
 * lock, which a pass holds while the C matcher runs: add and remove run on
 * API workers; remove_session, told by the network thread, never waits for
 * it); the pass runs on the matchmaker's own thread (or the caller's in
 * manual mode) and calls scripts and `matched` with no lock held.
 *
 * Ownership: arguments are borrowed; tickets are copied in.
 *
 * Errors: KN_OK or a negative kn_err with a one-line reason in msg. */
#ifndef KN_MATCHMAKER_H
#define KN_MATCHMAKER_H

#include "kn_match.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KN_MM_PROPS_MAX      32  /* string + numeric properties of a ticket */
#define KN_MM_PROP_NAME_MAX  64  /* bytes of a property's name */
#define KN_MM_PROP_VALUE_MAX 256 /* bytes of a string property */
#define KN_MM_COUNT_MAX      64  /* largest max_count */
#define KN_MM_ID_MAX         36  /* a ticket id is a UUID */
#define KN_MM_WIDEN_MAX      4   /* widening rules of a ticket */

/* One player of a ticket. */
typedef struct kn_mm_player {
    uint64_t conn;
    char user_id[37];
    char session_id[37];
    char username[129];
} kn_mm_player;

typedef struct kn_mm_prop {
    char name[KN_MM_PROP_NAME_MAX + 1];
    bool is_num;
    double num;
    char str[KN_MM_PROP_VALUE_MAX + 1];
} kn_mm_prop;

/* Server-side widening, carried by the ticket: each pass the ticket has
 * waited moves its query's `+` and bare comparisons on `property` (>=, >,
 * <=, <) outward by `step`, `max` at most in all (kn_match_query_widen).
 * Rules: property a valid name, given once, that the query compares;
 * 0 < step <= max, both finite. */
typedef struct kn_mm_widen {
    char property[KN_MM_PROP_NAME_MAX + 1];
    double step, max;
} kn_mm_widen;

/* What a client asks for (add). */
typedef struct kn_mm_request {
    const kn_mm_player *players; /* 1 for a session's ticket */
    size_t n_players;
    const char *party_id;                     /* "" or NULL: none */
    const char *query;                        /* "" or NULL: "*" */
    int min_count, max_count, count_multiple; /* count_multiple 0 = 1 */
    const kn_mm_prop *props;
    size_t n_props;
    const kn_mm_widen *widen; /* n_widen <= KN_MM_WIDEN_MAX rules */
    size_t n_widen;
} kn_mm_request;

/* A ticket in the pool. */
typedef struct kn_mm_ticket {
    char id[KN_MM_ID_MAX + 1];
    char party_id[KN_MM_ID_MAX + 1];
    kn_mm_player *players;
    size_t n_players;
    kn_mm_prop *props;
    size_t n_props;
    char *query_text;
    kn_match_query *query;
    int min_count, max_count, count_multiple;
    kn_mm_widen widen[KN_MM_WIDEN_MAX];
    size_t n_widen;
    int64_t created_ms;
    uint32_t intervals; /* passes it has waited through */
    uint64_t seq;       /* arrival order */
} kn_mm_ticket;

/* A group a pass formed: tickets (indexes into the pass's pool). */
typedef struct kn_mm_group {
    size_t *tickets;
    size_t n;
} kn_mm_group;

/* --- the ticket store seam ----------------------------------------------- */
typedef struct kn_mm_store {
    /* Takes ownership of t (also on failure). */
    int (*add)(void *ud, kn_mm_ticket *t, char *msg, size_t cap);
    /* NOT_FOUND when no ticket `id` of session_id exists. */
    int (*remove)(void *ud, const char *id, const char *session_id);
    /* Every ticket of session_id; how many went. */
    size_t (*remove_session)(void *ud, const char *session_id);
    /* Tickets owned now by session_id (its own tickets, not its parties')
     * or, given a party id, by that party. */
    size_t (*count_session)(void *ud, const char *session_id);
    /* A pass's view: every ticket, oldest first; the store keeps them
     * alive until release. The pass may widen their queries in place
     * (their widening rules at their intervals), under the service's
     * lock. */
    int (*snapshot)(void *ud, kn_mm_ticket ***out, size_t *n);
    /* End of the pass: the tickets of the snapshot at `matched` (n_matched
     * indexes) leave the pool into taken[k] (the caller's now,
     * kn_mm_ticket_free); every other one waited one interval more. */
    void (*release)(void *ud, kn_mm_ticket *const *snap, size_t n, const size_t *matched,
                    size_t n_matched, kn_mm_ticket **taken);
    size_t (*count)(void *ud);
    void (*destroy)(void *ud);
    void *ud;
} kn_mm_store;

/* A ticket a store handed out (release). Accepts NULL. */
void kn_mm_ticket_free(kn_mm_ticket *t);

/* How far rule w has widened t's query now: min(step x intervals, max). */
double kn_mm_widened(const kn_mm_ticket *t, const kn_mm_widen *w);

/* The in-process store (the default). */
int kn_mm_store_memory(kn_mm_store *out);

/* --- the processor seam --------------------------------------------------- */
typedef struct kn_mm_pass {
    kn_mm_ticket *const *tickets;
    size_t n;
    int64_t now_ms;
    uint32_t max_intervals;
} kn_mm_pass;

/* Forms groups from a pass: *groups (kn_mm_groups_free) holds *n_groups. A
 * ticket in two groups, or a group that does not suit its members' counts,
 * is refused by the caller (the pass falls back to the built-in). */
typedef int (*kn_mm_process_fn)(void *ud, const kn_mm_pass *pass, kn_mm_group **groups,
                                size_t *n_groups, char *msg, size_t cap);
typedef struct kn_mm_processor {
    kn_mm_process_fn process;
    void *ud;
} kn_mm_processor;

/* The built-in matcher (ud unused). */
int kn_mm_process_builtin(void *ud, const kn_mm_pass *pass, kn_mm_group **groups, size_t *n_groups,
                          char *msg, size_t cap);
/* The naive matcher: every pair of tickets tried, no index (the bench's
 * reference; the same rules). */
int kn_mm_process_naive(void *ud, const kn_mm_pass *pass, kn_mm_group **groups, size_t *n_groups,
                        char *msg, size_t cap);
void kn_mm_groups_free(kn_mm_group *groups, size_t n);
/* Whether the group suits every member: size within each one's counts,
 * each query accepting each other ticket, no ticket twice, no user twice. */
bool kn_mm_group_valid(const kn_mm_pass *pass, const kn_mm_group *g);

/* --- the service ---------------------------------------------------------- */
typedef struct kn_matchmaker kn_matchmaker;

/* A formed group, handed out after its tickets left the store. The
 * callback owns nothing; the tickets are freed after it returns. */
typedef void (*kn_mm_matched_fn)(void *ud, kn_mm_ticket *const *tickets, size_t n);

/* The scripts' hooks, called by a pass with no lock held (the server runs
 * them on an API worker, under the runtime's time budget). `which` is
 * KN_MM_SCRIPT_PROCESSOR (json: the pool, kn_mm__pool_json's shape) or
 * KN_MM_SCRIPT_OVERRIDE (json: the built-in matcher's candidate groups);
 * the answer (*out, kn_malloc'd) is the groups to form, [[ticket id, ...],
 * ...]. KN_ERR_NOT_FOUND when no script registered that hook, or an empty
 * answer: no opinion (the built-in matcher's groups stand); any other
 * error, or an answer that names unknown tickets or invalid groups, makes
 * the pass fall back to the built-in matcher (counted). */
#define KN_MM_SCRIPT_PROCESSOR "kaos.matchmaker_processor"
#define KN_MM_SCRIPT_OVERRIDE  "kaos.matchmaker_override"
typedef int (*kn_mm_script_fn)(void *ud, const char *which, const char *json, size_t len,
                               char **out, size_t *out_len, char *msg, size_t cap);
/* Whether script `which` is registered now (cheap): a pass builds no JSON
 * for a script that is not there. */
typedef bool (*kn_mm_script_exists_fn)(void *ud, const char *which);

/* The matched hook's payload: a JSON array with one object per player,
 * {presence = {user_id, session_id, username}, party_id, ticket,
 * properties = {name = string or number}}; kn_malloc'd, NULL when out of
 * memory. */
char *kn_mm_matched_json(kn_mm_ticket *const *tickets, size_t n);

typedef struct kn_matchmaker_config {
    int64_t interval_ms;       /* between passes; 0 = manual (kn_mm_process) */
    uint32_t max_intervals;    /* holding out for max count; 0 = 2 */
    uint32_t max_tickets;      /* per session, and per party; 0 = 3 */
    int64_t (*now_ms)(void);   /* monotonic; NULL = kn_time_mono_ms */
    kn_mm_store store;         /* NULL add = the in-process store */
    kn_mm_processor processor; /* NULL = the built-in matcher */
    kn_mm_matched_fn matched;
    void *matched_ud;
    kn_mm_script_fn script;               /* NULL: no scripts */
    kn_mm_script_exists_fn script_exists; /* NULL: ask script every pass */
    void *script_ud;
} kn_matchmaker_config;

typedef struct kn_matchmaker_stats {
    uint64_t tickets;      /* waiting now */
    uint64_t passes;       /* so far */
    uint64_t matched;      /* groups formed so far */
    uint64_t fallbacks;    /* passes where the processor failed and the built-in ran */
    uint64_t last_pass_us; /* the last pass's duration */
    uint64_t pass_us;      /* every pass's duration summed */
    uint64_t pass_us_max;  /* the longest pass */
} kn_matchmaker_stats;

/* Starts the interval thread unless interval_ms is 0. */
int kn_matchmaker_create(const kn_matchmaker_config *cfg, kn_matchmaker **out);
void kn_matchmaker_destroy(kn_matchmaker *mm); /* accepts NULL; stops the thread */
/* Replaces the processor (a script's, or NULL for the built-in). Any
 * thread; the next pass uses it. */
void kn_matchmaker_set_processor(kn_matchmaker *mm, const kn_mm_processor *p);

/* Adds a ticket: *ticket_id (37 bytes) is its id. INVALID_ARGUMENT (counts,
 * properties, query, with the position of a query error),
 * RESOURCE_EXHAUSTED "matchmaker ticket limit per session reached (N)" (a
 * party's ticket: "per party", counted apart from its players' own). */
int kn_mm_add(kn_matchmaker *mm, const kn_mm_request *req, char ticket_id[37], char *msg,
              size_t cap);
/* NOT_FOUND "ticket not found" unless session_id owns ticket id. A
 * ticket is owned by each of its players' sessions and, when it has a
 * party_id, by that id too (here and in kn_mm_remove_session, which is how
 * a party's tickets go when its members change). */
int kn_mm_remove(kn_matchmaker *mm, const char *ticket_id, const char *session_id, char *msg,
                 size_t cap);
/* Every ticket of the session (it ended); how many went now. Never waits
 * for a running pass (the network thread calls it): then it notes the
 * session and returns 0, and the pass forms no group with its tickets and
 * removes them before it hands its groups out. */
size_t kn_mm_remove_session(kn_matchmaker *mm, const char *session_id);
/* One pass now (manual mode, or a test). */
void kn_mm_process(kn_matchmaker *mm);
void kn_matchmaker_stats_get(kn_matchmaker *mm, kn_matchmaker_stats *out);

/* One pass, as the console shows the recent ones. */
#define KN_MM_PASS_HISTORY 32
typedef struct kn_mm_pass_record {
    int64_t at_ms;    /* its start (the matchmaker's clock) */
    int64_t ago_ms;   /* how long before the kn_matchmaker_passes call it started */
    uint32_t us;      /* how long it took */
    uint32_t tickets; /* the pool it looked at */
    uint32_t groups;  /* formed */
    bool fallback;    /* a script failed: the built-in matcher ran */
} kn_mm_pass_record;
/* The last passes, newest first, at most max of them (KN_MM_PASS_HISTORY
 * kept); how many. Any thread. */
size_t kn_matchmaker_passes(kn_matchmaker *mm, kn_mm_pass_record *out, size_t max);
/* The waiting tickets, oldest first, at most limit of them, as the JSON a
 * processor script sees (kaos.register_matchmaker_processor's tickets:
 * ticket, party_id, presence, players, properties, query, counts,
 * intervals, widen); kn_malloc'd, NULL when out of memory. Any thread (it
 * waits for a running pass). */
char *kn_matchmaker_pool_json(kn_matchmaker *mm, size_t limit);

#endif
