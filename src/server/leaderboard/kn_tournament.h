/* kn_tournament: tournaments — leaderboards with a window, a size and a
 * number of tries, in the spirit of Nakama's (docs/leaderboards.md,
 * "Tournaments", has every rule and error).
 *
 * A tournament IS a leaderboard of kn_leaderboards: same record table,
 * same rank index, operators, sort orders and periods (its reset
 * schedule), plus a `tournament` row (category, title, description, start
 * and end time, duration, max size, max num score, join required) and the
 * `tournament_member` rows of each period. So kn_leaderboard_records_list,
 * _around and _cursor_from_rank work on a tournament's id; the plain
 * kn_leaderboard_write refuses one (its rules live here).
 *
 * Windows: a period is active from start_active = max(start_time, the
 * reset that began it) to end_active = start_active + duration (the whole
 * period when duration is 0), never past end_time. Joins and writes are
 * accepted only inside it.
 *
 * Joins: under the tournament row's lock (SELECT ... FOR UPDATE) and a
 * count of the period's joined members against max_size, so parallel joins
 * never pass it. When joining is not required a first write joins (and
 * counts) too. A write happens in one statement whose WHERE holds the
 * membership and num_score < max_num_score + the owner's add_attempt.
 *
 * Ends and resets run on the scheduler (kn_leaderboards_tick), each
 * claimed through kn_leaderboard_lease (jobs "tournament_end:<id>" and
 * "leaderboard_reset:<id>"), so each fires once per cluster, also when the
 * server was down at the time (claimed at the next start). Both call their
 * callback, then send every joined participant of the period that ended
 * a notification KN_NOTIFY_CODE_TOURNAMENT_END with the final rank.
 *
 * Threads, ownership and errors as kn_leaderboard.h: any thread, with that
 * thread's kn_db; arguments borrowed; KN_OK or a negative kn_err with a
 * one-line reason in msg: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
 * FAILED_PRECONDITION (outside the window, not joined), RESOURCE_EXHAUSTED
 * (full, no scores left), PERMISSION_DENIED, NOMEM, DB, ABORTED. */
#ifndef KN_TOURNAMENT_H
#define KN_TOURNAMENT_H

#include "kn_leaderboard.h"

#define KN_TOURNAMENT_TITLE_MAX       255  /* bytes */
#define KN_TOURNAMENT_DESCRIPTION_MAX 4096 /* bytes */
#define KN_TOURNAMENT_CATEGORY_MAX    127
#define KN_TOURNAMENT_LIST_MAX        100 /* tournaments per list page */
#define KN_TOURNAMENT_CURSOR_MAX      (KN_LB_ID_MAX + 48)

/* A tournament as created, with its current window (kn_tournament_entity,
 * proto Tournament). Strings kn_malloc'd: kn_tournament_deinit. */
struct kn_tournament {
    char id[KN_LB_ID_MAX + 1];
    char *title;
    char *description;
    int32_t category; /* 0..127 */
    int32_t sort_order;
    int32_t size;          /* joined participants of the current period */
    int32_t max_size;      /* 0: no limit */
    int32_t max_num_score; /* scores per owner and period; 0: no limit */
    bool can_enter;        /* active now and not full */
    int64_t end_active;    /* end of the current period's window, 0 never */
    int64_t next_reset;    /* end of the current period, 0 never */
    char *metadata;
    int64_t create_time;
    int64_t start_time;
    int64_t end_time; /* 0: never ends */
    int32_t duration; /* seconds active after each period starts; 0: all of it */
    int64_t start_active;
    int64_t prev_reset;
    bool authoritative;
    bool join_required;
    int32_t operator_; /* KN_LB_OP_* (proto: operator) */
    char reset_schedule[128];
    bool enable_ranks;
};

typedef struct kn_tournament_spec {
    kn_leaderboard_spec board; /* id, authoritative, order, operator, schedule, metadata */
    const char *title;         /* NULL: "" */
    const char *description;
    int category;
    int64_t start_time; /* 0: at creation */
    int64_t end_time;   /* 0: never */
    int duration;       /* 0: the whole period */
    int max_size;
    int max_num_score;
    bool join_required;
} kn_tournament_spec;

extern const kn_entity kn_tournament_entity;

/* Creates a tournament: its board and its row, in one statement. The same
 * id with the same settings: KN_OK; other settings, or a plain leaderboard
 * of that id: ALREADY_EXISTS. */
int kn_tournament_create(kn_leaderboards *lbs, kn_db *db, const kn_tournament_spec *spec, char *msg,
                         size_t msg_cap);
/* Deletes a tournament, its records and members. NOT_FOUND if absent (or
 * a plain leaderboard). */
int kn_tournament_delete(kn_leaderboards *lbs, kn_db *db, const char *id, char *msg,
                         size_t msg_cap);
/* The tournament with its current window and size. */
int kn_tournament_get(kn_leaderboards *lbs, kn_db *db, const char *id, kn_tournament *out,
                      char *msg, size_t msg_cap);
void kn_tournament_deinit(kn_tournament *t); /* accepts a zeroed one */

/* Joins owner to the current period. Joining twice is KN_OK. */
int kn_tournament_join(kn_leaderboards *lbs, kn_db *db, const char *id, const char *owner_id,
                       char *msg, size_t msg_cap);

/* Writes owner's record of the current period (kn_leaderboard_write's
 * operators and answer) under the tournament's rules. o->from_client is
 * refused on an authoritative tournament. */
int kn_tournament_record_write(kn_leaderboards *lbs, kn_db *db, const char *id,
                               const char *owner_id, const kn_leaderboard_write_opts *o,
                               kn_leaderboard_record *out, char *msg, size_t msg_cap);

/* Nakama's add_attempt: owner may write `count` more (fewer, when
 * negative) scores in the current period than max_num_score. */
int kn_tournament_add_attempt(kn_leaderboards *lbs, kn_db *db, const char *id, const char *owner_id,
                              int count, char *msg, size_t msg_cap);

/* A list call: categories in [category_start, category_end]; start_time
 * > 0: only those starting at or after it; end_time > 0: only those ending
 * at or before it (never-ending ones excluded). Ordered by (category,
 * start_time, id). */
typedef struct kn_tournament_query {
    int category_start;
    int category_end;
    int64_t start_time;
    int64_t end_time;
    int limit;          /* 0: KN_TOURNAMENT_LIST_MAX, else 1..KN_TOURNAMENT_LIST_MAX */
    const char *cursor; /* NULL or "": the first page */
} kn_tournament_query;

/* *out (free with kn_tournaments_free), *cursor kn_malloc'd or NULL on the
 * last page. */
int kn_tournament_list(kn_leaderboards *lbs, kn_db *db, const kn_tournament_query *q,
                       kn_tournament **out, size_t *n, char **cursor, char *msg, size_t msg_cap);
void kn_tournaments_free(kn_tournament *t, size_t n); /* accepts NULL */

/* KN_OK when cursor (client text) is one kn_tournament_list could take. */
int kn_tournament_cursor_check(const char *cursor, char *msg, size_t msg_cap);

/* The lists of a tournament are the leaderboard's: these refuse an id
 * that is not a tournament (NOT_FOUND "tournament X does not exist"). */
int kn_tournament_records_list(kn_leaderboards *lbs, kn_db *db, const kn_leaderboard_query *q,
                               kn_leaderboard_page *out, char *msg, size_t msg_cap);
int kn_tournament_records_around(kn_leaderboards *lbs, kn_db *db, const char *id,
                                 const char *owner_id, int limit, int64_t expiry,
                                 kn_leaderboard_page *out, char *msg, size_t msg_cap);

#endif
