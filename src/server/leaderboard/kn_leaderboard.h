/* kn_leaderboard: the leaderboards service — boards of scores with ranks
 * from an in-memory index, in the spirit of Nakama's leaderboards
 * (docs/leaderboards.md has the model, every rule and the figures).
 *
 * A board: an id (1-128 bytes), authoritative (clients may not write),
 * sort order (KN_LB_DESC: high scores first, KN_LB_ASC: low first), an
 * operator (best, set, increment, decrement), a reset schedule (a cron
 * expression, kn_cron.h; "" never resets), metadata (a JSON object) and
 * ranks on or off. Boards are created by the server (Lua, or C at start),
 * never by clients.
 *
 * A record: a board's score for one owner (a user id, or any UUID the
 * server writes for) in one period: score and subscore (any int64, negative
 * too), num_score (writes accepted), metadata, create/update/expiry times,
 * and its rank (1 = first; 0 when the board has ranks off or the record is
 * not in the index). Ties: at equal score, the subscore decides; at equal
 * both, who reached them first; then the smaller owner id. Ranks are
 * positions: two records never share one.
 *
 * Periods: on a board with a schedule, a write goes to the period that
 * ends at the schedule's next time after the write (its expiry_time); a
 * board without one has a single period, expiry_time 0. When the clock
 * passes the end of a period, the index starts empty and the old period's
 * records stay in Postgres as history, listed by their expiry time.
 *
 * Durability and ranks: a write commits in Postgres first, then enters the
 * board's rank index (kn_rank.h) by version, and only then is it
 * acknowledged; so every acknowledged write is durable and ranked. Writes
 * of one board run in parallel (Postgres serializes those of one owner);
 * deleting a record, deleting a board and a period change take the
 * board's lock exclusively, so nothing stale re-enters the index.
 *
 * Threads: a kn_leaderboards is shared by every API worker, the scheduler
 * and Lua; every function may be called from any thread with that
 * thread's own kn_db. Ownership: arguments are borrowed; lists returned are
 * freed with kn_leaderboard_records_free.
 *
 * Errors: KN_OK or a negative kn_err with a one-line reason in msg:
 * INVALID_ARGUMENT (input, cursor, metadata), NOT_FOUND (no such board, no
 * such record), ALREADY_EXISTS (a board with that id, created with other
 * settings), PERMISSION_DENIED (a client writing an authoritative board),
 * NOMEM, DB (database unavailable), ABORTED (retry). */
#ifndef KN_LEADERBOARD_H
#define KN_LEADERBOARD_H

#include "kn_rank.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_db kn_db;
typedef struct kn_entity kn_entity;

#define KN_LB_ID_MAX       128         /* bytes of a board id */
#define KN_LB_METADATA_MAX (16 * 1024) /* bytes of a board's or a record's metadata */
#define KN_LB_LIST_MAX     1000        /* records per page */
#define KN_LB_LIST_DEFAULT 100         /* a limit of 0 */
#define KN_LB_OWNERS_MAX   1000        /* owner ids per list call */
#define KN_LB_CURSOR_MAX   160         /* bytes of a cursor this module issues */
#define KN_LB_BOARDS_MAX   10000       /* boards per server */

enum { KN_LB_DESC = 0, KN_LB_ASC = 1 };
enum {
    KN_LB_OP_DEFAULT = -1, /* a write's override: the board's operator */
    KN_LB_OP_BEST = 0,
    KN_LB_OP_SET = 1,
    KN_LB_OP_INCR = 2,
    KN_LB_OP_DECR = 3,
};

/* A board as created (kn_leaderboard_entity, proto Leaderboard). */
typedef struct kn_leaderboard {
    char id[KN_LB_ID_MAX + 1];
    bool authoritative;
    int32_t sort_order; /* KN_LB_DESC or KN_LB_ASC */
    int32_t operator_;  /* KN_LB_OP_BEST..DECR (proto: operator) */
    char reset_schedule[128];
    char *metadata; /* JSON object text, "{}" when none */
    bool enable_ranks;
    int64_t create_time; /* Unix seconds */
    int64_t next_reset;  /* end of the current period, Unix seconds; 0 never */
    int64_t prev_reset;  /* start of it (the previous reset), 0 when none */
} kn_leaderboard;

/* What kn_leaderboard_create takes (text NULL: the default). */
typedef struct kn_leaderboard_spec {
    const char *id;
    bool authoritative;
    int sort_order;             /* KN_LB_DESC (default) or KN_LB_ASC */
    int operator_;              /* KN_LB_OP_BEST (default) .. DECR */
    const char *reset_schedule; /* cron, "" or NULL: never */
    const char *metadata;       /* JSON object, NULL: {} */
    bool disable_ranks;
} kn_leaderboard_spec;

typedef struct kn_leaderboard_record {
    char leaderboard_id[KN_LB_ID_MAX + 1];
    char owner_id[37];
    char username[129];
    int64_t score;
    int64_t subscore;
    int32_t num_score;
    char *metadata;      /* JSON object text */
    int64_t create_time; /* Unix seconds */
    int64_t update_time;
    int64_t expiry_time; /* end of the record's period, 0 never */
    int64_t rank;        /* 1-based; 0 unranked */
} kn_leaderboard_record;

extern const kn_entity kn_leaderboard_entity;
extern const kn_entity kn_leaderboard_record_entity;

/* A period ended (the scheduler found the clock past a board's reset).
 * board is a copy the callee may read during the call; reset is the end
 * of the period that ended (Unix seconds). Called on the scheduler's
 * thread, with that thread's db, once per cluster (the lease below). */
typedef void (*kn_leaderboard_reset_fn)(void *ud, kn_db *db, const kn_leaderboard *board,
                                        int64_t reset);

/* The "fire once" seam: claim returns true for exactly one caller per
 * (job, fire_time) across every node sharing the database. The default
 * (NULL) is kn_leaderboard_claim_pg, a row in leaderboard_job_run; a
 * cluster may put its bus lease here instead. */
typedef struct kn_leaderboard_lease {
    bool (*claim)(void *ud, kn_db *db, const char *job, int64_t fire_time);
    void *ud;
} kn_leaderboard_lease;
bool kn_leaderboard_claim_pg(void *ud, kn_db *db, const char *job, int64_t fire_time);

/* A tournament (kn_tournament.h) ended or one of its periods did: t is a
 * copy the callee may read during the call; end is the tournament's
 * end_time (0 never), reset the end of the period that ended (Nakama's
 * (tournament, end, reset)). On the scheduler's thread, once per cluster;
 * the participants' notifications follow the call. */
typedef struct kn_tournament kn_tournament;
typedef void (*kn_tournament_fn)(void *ud, kn_db *db, const kn_tournament *t, int64_t end,
                                 int64_t reset);
typedef struct kn_out kn_out;

typedef struct kn_leaderboards_config {
    /* Unix milliseconds; NULL = kn_time_wall_ms. Tests step it. */
    int64_t (*now_ms)(void *ud);
    void *clock_ud;
    kn_rank_factory ranks;            /* zeroed: kn_rank_local_factory */
    kn_leaderboard_lease lease;       /* zeroed: kn_leaderboard_claim_pg */
    kn_leaderboard_reset_fn on_reset; /* NULL: none */
    void *on_reset_ud;
    const char *node;                     /* written next to claimed jobs; NULL = "" */
    kn_tournament_fn on_tournament_end;   /* NULL: none */
    kn_tournament_fn on_tournament_reset; /* NULL: none */
    void *on_tournament_ud;
    /* Live delivery of the tournaments' end notifications (NULL: stored
     * only, users find them on their next list). */
    kn_out *out;
} kn_leaderboards_config;

typedef struct kn_leaderboards kn_leaderboards;

/* Other nodes of a cluster (docs/cluster.md, "Leaderboards"): every entry
 * applied to a board's index after a committed write, and every owner
 * removed, with the period (expiry) it belongs to, so each node's index
 * follows (kn_leaderboards_apply_peer there). Called under the board's
 * lock, on the writer's thread: must not block or call back. */
typedef struct kn_leaderboard_peers {
    void (*applied)(void *ud, const char *board_id, int64_t expiry, const kn_rank_entry *e);
    void (*removed)(void *ud, const char *board_id, int64_t expiry, const char *owner);
    void *ud;
} kn_leaderboard_peers;

int kn_leaderboards_create(const kn_leaderboards_config *cfg, kn_leaderboards **out);
/* Before serving. */
void kn_leaderboards_set_peers(kn_leaderboards *lbs, const kn_leaderboard_peers *peers);
/* Another node's entry (removed_owner NULL) or removal of board_id's
 * period `expiry`, applied to this node's index. A board not loaded here
 * is left to its first use (loaded from Postgres then); an entry of
 * another period (a clock a little apart at a reset) is ignored. Entries
 * keep the highest version per owner, so order and repeats do not matter.
 * KN_ERR_NOT_FOUND when ignored. Any thread. */
int kn_leaderboards_apply_peer(kn_leaderboards *lbs, const char *board_id, int64_t expiry,
                               const kn_rank_entry *e, const char *removed_owner);
void kn_leaderboards_destroy(kn_leaderboards *lbs); /* accepts NULL */
/* The config's out, for a root that makes its router after the service:
 * before the scheduler's first tick. */
void kn_leaderboards_set_out(kn_leaderboards *lbs, kn_out *out);
/* Reads every board and rebuilds each one's index from the records of its
 * current period (at start; again replaces what is in memory). *n_records
 * (may be NULL) gets how many records were indexed. */
int kn_leaderboards_load(kn_leaderboards *lbs, kn_db *db, size_t *n_records, char *msg,
                         size_t msg_cap);
/* The scheduler's step: every board whose period ended by now starts a new
 * one (its index empties) and, when this node claims the reset, on_reset
 * runs (on_tournament_reset for a tournament); every tournament whose
 * end_time passed ends (on_tournament_end, once per cluster). A reset
 * missed while no server ran (the last one before the start, not older)
 * is claimed by the first tick after the start. Returns the number of
 * resets and ends this call ran callbacks for. */
int kn_leaderboards_tick(kn_leaderboards *lbs, kn_db *db);
/* When the next reset of any board is due (Unix ms), INT64_MAX for none. */
int64_t kn_leaderboards_next_due(kn_leaderboards *lbs);

/* Creates a board. A board of that id with the same settings already
 * there: KN_OK (creating at every start is the usual way); with other
 * settings: ALREADY_EXISTS. */
int kn_leaderboard_create(kn_leaderboards *lbs, kn_db *db, const kn_leaderboard_spec *spec,
                          char *msg, size_t msg_cap);
/* Deletes a board and all its records (history too). NOT_FOUND if absent. */
int kn_leaderboard_delete(kn_leaderboards *lbs, kn_db *db, const char *id, char *msg,
                          size_t msg_cap);
/* The board (metadata kn_malloc'd: kn_leaderboard_deinit). */
int kn_leaderboard_get(kn_leaderboards *lbs, const char *id, kn_leaderboard *out, char *msg,
                       size_t msg_cap);
void kn_leaderboard_deinit(kn_leaderboard *b);
/* Every board this node knows, ordered by id (*out: free with
 * kn_leaderboards_free). Boards another node created appear once used here. */
int kn_leaderboards_list(kn_leaderboards *lbs, kn_leaderboard **out, size_t *n, char *msg,
                         size_t msg_cap);
void kn_leaderboards_free(kn_leaderboard *boards, size_t n); /* accepts NULL */

/* What a write takes besides the board and owner. */
typedef struct kn_leaderboard_write_opts {
    int64_t score;
    int64_t subscore;
    const char *username; /* stored with the record; NULL keeps it ("" at first) */
    const char *metadata; /* JSON object; NULL keeps the record's ({} at first) */
    int operator_;        /* KN_LB_OP_DEFAULT or an override */
    bool from_client;     /* a client's write: refused on an authoritative board */
} kn_leaderboard_write_opts;

/* Writes owner's record of the current period with the operator: best
 * keeps the better of old and new (by the board's order: score, then
 * subscore), set replaces, increment adds score and subscore to the old
 * ones, decrement subtracts them (results below zero stay: no clamp at 0;
 * sums saturate at the int64 limits). num_score counts the writes; a best
 * that does not improve changes nothing but num_score and update_time.
 * *out (may be NULL) gets the record as stored, with its rank. */
int kn_leaderboard_write(kn_leaderboards *lbs, kn_db *db, const char *id, const char *owner_id,
                         const kn_leaderboard_write_opts *o, kn_leaderboard_record *out, char *msg,
                         size_t msg_cap);
/* Queues a write for kn_leaderboards_flush, for callers that must not
 * block on Postgres (match handlers: kaos.leaderboard_submit there). The
 * id, owner and options are checked now (INVALID_ARGUMENT), the board and
 * the rest when the write runs (a refusal then is logged). At most
 * KN_LB_QUEUE_MAX writes wait: RESOURCE_EXHAUSTED beyond. Any thread. */
#define KN_LB_QUEUE_MAX 100000
int kn_leaderboards_enqueue(kn_leaderboards *lbs, const char *id, const char *owner_id,
                            const kn_leaderboard_write_opts *o, char *msg, size_t msg_cap);
/* Runs the queued writes in order with db (the scheduler's thread, every
 * 100 ms); returns how many ran. */
size_t kn_leaderboards_flush(kn_leaderboards *lbs, kn_db *db);

/* Deletes owner's record of the current period (NOT_FOUND if none). A
 * client may delete its own record only on a non-authoritative board. */
int kn_leaderboard_record_delete(kn_leaderboards *lbs, kn_db *db, const char *id,
                                 const char *owner_id, bool from_client, char *msg, size_t msg_cap);

/* A list call. */
typedef struct kn_leaderboard_query {
    const char *id;
    int limit;          /* 0: KN_LB_LIST_DEFAULT, else 1..KN_LB_LIST_MAX */
    const char *cursor; /* NULL or "": from the top; else a next_cursor of the same board */
    int64_t expiry;     /* 0: the current period; else a period's end (history) */
    const char *const *owner_ids; /* also return these owners' records (friends view) */
    size_t n_owner_ids;
} kn_leaderboard_query;

typedef struct kn_leaderboard_page {
    kn_leaderboard_record *records; /* in rank order */
    size_t n_records;
    kn_leaderboard_record *owner_records; /* of owner_ids that have one, in rank order */
    size_t n_owner_records;
    char *next_cursor;  /* NULL on the last page */
    char *prev_cursor;  /* NULL on the first page */
    int64_t rank_count; /* records in the period's index */
} kn_leaderboard_page;

/* One page of the board, in rank order, every record with its rank. A
 * cursor names the last record of the page (score, subscore, time, owner),
 * never an offset, so a walk sees each record that does not change during
 * it exactly once, whatever else changes. limit 0 with owner ids returns
 * only the owners' records. prev_cursor walks back: the `limit` records
 * before the page's first one (the current period only). */
int kn_leaderboard_records_list(kn_leaderboards *lbs, kn_db *db, const kn_leaderboard_query *q,
                                kn_leaderboard_page *out, char *msg, size_t msg_cap);
/* Up to limit records around owner_id (the haystack): the owner's record
 * in the middle where the board allows, else shifted to stay inside the
 * board (the top or the bottom fills the rest). No record of the owner:
 * the top of the board. expiry 0: the current period (from the index, with
 * next and previous cursors); else an ended period (ranks from SQL). */
int kn_leaderboard_records_around(kn_leaderboards *lbs, kn_db *db, const char *id,
                                  const char *owner_id, int limit, int64_t expiry,
                                  kn_leaderboard_page *out, char *msg, size_t msg_cap);
/* A cursor that starts a list at rank `rank` (the record at that rank
 * comes first). rank beyond the board: NOT_FOUND. *cursor kn_malloc'd. */
int kn_leaderboard_cursor_from_rank(kn_leaderboards *lbs, const char *id, int64_t rank,
                                    char **cursor, char *msg, size_t msg_cap);
void kn_leaderboard_page_free(kn_leaderboard_page *p); /* accepts a zeroed one */
void kn_leaderboard_records_free(kn_leaderboard_record *r, size_t n);

/* KN_OK when cursor (client text) is one a list could take; else
 * INVALID_ARGUMENT with the reason. No database (fuzzing). */
int kn_leaderboard_cursor_check(const char *cursor, char *msg, size_t msg_cap);

/* Boards, for listings and tests: how many, and bytes of every index. */
size_t kn_leaderboards_count(kn_leaderboards *lbs);
size_t kn_leaderboards_index_memory(kn_leaderboards *lbs);
/* The rank of owner in the board's current index, 0 when not there. */
int64_t kn_leaderboard_rank(kn_leaderboards *lbs, const char *id, const char *owner_id);

#endif
