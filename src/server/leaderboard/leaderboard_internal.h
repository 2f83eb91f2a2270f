/* Internal to the leaderboard module: shared by leaderboard.c and
 * leaderboard_list.c. Not part of the module's contract. */
#ifndef KN_LEADERBOARD_INTERNAL_H
#define KN_LEADERBOARD_INTERNAL_H

#include "kn_cron.h"
#include "kn_leaderboard.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct kn_db_rows kn_db_rows;

/* A tournament's settings besides its board's (kn_tournament.h); immutable
 * after load. */
typedef struct kn_lb_tour {
    int32_t category;
    char *title, *description;
    int64_t start_time, end_time;
    int32_t duration, max_size, max_num_score;
    bool join_required;
} kn_lb_tour;

/* One board: its settings, its lock and the index of its current period. */
typedef struct kn_lb_board {
    kn_leaderboard meta; /* immutable after load (next/prev_reset unused here) */
    kn_cron cron;
    bool has_cron;
    pthread_rwlock_t rw;    /* writes shared; deletes and period changes exclusive */
    kn_rank *rank;          /* the current period's index */
    _Atomic int64_t expiry; /* end of the current period (Unix s), 0 never */
    int64_t prev_expiry;    /* end of the previous one, 0 none (under rw) */
    int64_t fired_through;  /* resets up to here had their callbacks (under rw) */
    bool deleted;           /* under rw */
    bool is_tour;           /* a tournament: tour holds its settings */
    kn_lb_tour tour;
    bool end_fired; /* the tournament's end was claimed (or tried) here; under rw */
} kn_lb_board;

/* A queued write (kn_leaderboards_enqueue); strings in one allocation. */
typedef struct kn_lb_queued {
    struct kn_lb_queued *next;
    char *id, *owner, *username, *metadata;
    kn_leaderboard_write_opts o;
} kn_lb_queued;

struct kn_leaderboards {
    pthread_mutex_t qmu; /* the queue */
    kn_lb_queued *qhead, *qtail;
    size_t qlen;
    pthread_rwlock_t mu; /* the registry: boards, dead */
    kn_lb_board **boards;
    size_t n, cap;
    kn_lb_board **dead; /* deleted, freed at destroy */
    size_t n_dead;
    int64_t (*now_ms)(void *ud);
    void *clock_ud;
    kn_rank_factory ranks;
    kn_leaderboard_lease lease;
    kn_leaderboard_reset_fn on_reset;
    void *on_reset_ud;
    char node[64];
    kn_tournament_fn on_tour_end, on_tour_reset;
    void *on_tour_ud;
    kn_out *out;
    _Atomic int64_t last_us;  /* the last score time handed out */
    _Atomic int64_t gone_seq; /* the last leaderboard_owner_gone row taken out of the indexes */
    kn_leaderboard_peers peers; /* a cluster's; zeroed on one node */
};

int64_t kn_lb__now_ms(kn_leaderboards *lbs);
int kn_lb__check_id(const char *id, char *msg, size_t cap);
int kn_lb__check_owner(const char *owner, char *msg, size_t cap);
kn_lb_board *kn_lb__find(kn_leaderboards *lbs, const char *id);
int kn_lb__get(kn_leaderboards *lbs, kn_db *db, const char *id, kn_lb_board **out, char *msg,
               size_t cap);
/* Takes b->rw (shared, or exclusive), first moving b to the current period
 * if its own ended. */
void kn_lb__enter(kn_leaderboards *lbs, kn_lb_board *b, bool exclusive);
void kn_lb__leave(kn_lb_board *b);
/* A record (and its index entry, when e is non-NULL) from a row of
 * RECORD_COLS; metadata kn_malloc'd (NULL when out of memory). */
void kn_lb__record_from_row(kn_db_rows *rows, size_t i, const char *board, kn_leaderboard_record *r,
                            kn_rank_entry *e);

/* The checks of a board's settings (kn_leaderboard_create's). */
int kn_lb__check_spec(const kn_leaderboard_spec *s, char *msg, size_t cap);
/* The checks of a write's owner and options (kn_leaderboard_write's). */
int kn_lb__check_write(const char *owner_id, const kn_leaderboard_write_opts *o, char *msg,
                       size_t cap);
/* Whether board m was created with the settings of s. */
bool kn_lb__same_board(const kn_leaderboard *m, const kn_leaderboard_spec *s);
/* Loads the board of id from Postgres (replacing nothing already known). */
int kn_lb__load_one(kn_leaderboards *lbs, kn_db *db, const char *id, kn_lb_board **out, char *msg,
                    size_t cap);
/* The end of the period holding Unix second t (0: b never resets), and
 * its start: the last reset at or before t (0: none or no schedule). */
int64_t kn_lb__period_end(const kn_lb_board *b, int64_t t);
int64_t kn_lb__period_start(const kn_lb_board *b, int64_t t);
/* The write of kn_leaderboard_write on a board found, after its checks.
 * max_scores < 0: a plain board. Else a tournament's guarded write: the
 * owner must be a joined member of the period and have num_score below
 * max_scores (0: no limit) plus its attempts; when not, nothing is written
 * and FAILED_PRECONDITION is returned with msg untouched (the caller says
 * why). *expiry_out (may be NULL) gets the period written to. */
int kn_lb__write(kn_leaderboards *lbs, kn_db *db, kn_lb_board *b, const char *owner_id,
                 const kn_leaderboard_write_opts *o, int max_scores, kn_leaderboard_record *out,
                 int64_t *expiry_out, char *msg, size_t cap);
/* The scheduler's tournament work for b (tournament.c): a claimed reset
 * (ended: the period's end) or end. Returns 1 when callbacks ran. */
int kn_lb__tour_reset(kn_leaderboards *lbs, kn_db *db, kn_lb_board *b, int64_t ended);
int kn_lb__tour_end(kn_leaderboards *lbs, kn_db *db, kn_lb_board *b, int64_t now_s);
void kn_lb__tour_free(kn_lb_tour *t);
/* The lease's claim with the default's node name. */
bool kn_lb__claim(kn_leaderboards *lbs, kn_db *db, const char *job, int64_t fire_time);

#define KN_LB__RECORD_COLS                                                                         \
    "owner_id::text, username, score, subscore, num_score, metadata::text,"                        \
    " floor(extract(epoch FROM create_time))::bigint,"                                             \
    " floor(extract(epoch FROM update_time))::bigint, expiry_time, score_time, version"

#endif
