/* leaderboard: boards, writes and periods (contract in kn_leaderboard.h,
 * prose in docs/leaderboards.md); the lists are in leaderboard_list.c.
 *
 * Invariants:
 *   - a board lives in the registry from its creation (or load) until it
 *     is deleted; a deleted board's memory is kept until destroy, so a
 *     pointer taken under the registry lock stays valid for the call;
 *   - b->rw: writes hold it shared from the SQL statement until their
 *     entry is in the index; a record delete, a board delete and a period
 *     change hold it exclusively, so none of them can interleave with a
 *     write of the same board, and an entry removed is never re-applied by
 *     a write that committed before the removal;
 *   - the index holds the records of the current period (b->expiry) only,
 *     each as of its row's version; every write statement bumps version;
 *   - every input is checked before the database is touched. */
#include "kn_leaderboard.h"
#include "leaderboard_internal.h"
#include "kn_account.h"
#include "kn_cron.h"
#include "kn_db.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"
#include "kn_uuid.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

KN_ENTITY_DEFINE(kn_leaderboard_entity, kn_leaderboard, LEADERBOARD);
KN_ENTITY_DEFINE(kn_leaderboard_record_entity, kn_leaderboard_record, LEADERBOARD_RECORD);

static const kn_db_stmt insert_board = {
    "lb_insert",
    "INSERT INTO leaderboard (id, authoritative, sort_order, operator, reset_schedule, metadata,"
    " enable_ranks) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT (id) DO NOTHING"
    " RETURNING floor(extract(epoch FROM create_time))::bigint",
    7};
/* A board and, for a tournament, its settings (NULL columns otherwise). */
#define BOARD_COLS                                                                                 \
    "l.id, l.authoritative, l.sort_order, l.operator, l.reset_schedule, l.metadata::text,"         \
    " l.enable_ranks, floor(extract(epoch FROM l.create_time))::bigint, t.category, t.title,"      \
    " t.description, t.start_time, t.end_time, t.duration, t.max_size, t.max_num_score,"           \
    " t.join_required FROM leaderboard l LEFT JOIN tournament t ON t.id = l.id"
static const kn_db_stmt select_board = {"lb_select", "SELECT " BOARD_COLS " WHERE l.id = $1", 1};
static const kn_db_stmt select_boards = {"lb_select_all", "SELECT " BOARD_COLS " ORDER BY l.id", 0};
static const kn_db_stmt delete_board = {"lb_delete", "DELETE FROM leaderboard WHERE id = $1", 1};
/* A period's index entries, streamed row by row (kn_db_query_each): one
 * scan, never the whole result in memory (keyset batches made Postgres
 * sort the period once per batch). */
static const kn_db_stmt load_entries = {
    "lb_load_entries",
    "SELECT owner_id::text, score, subscore, score_time, version FROM leaderboard_record"
    " WHERE leaderboard_id = $1 AND expiry_time = $2",
    2};
static const kn_db_stmt delete_record = {
    "lb_record_delete",
    "DELETE FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = $2"
    " AND owner_id = $3::uuid",
    3};
/* Owners whose account was deleted (migration 0015's trigger) after the
 * last one seen. (Two deletions committing at once in the other order than
 * their seq could hide the first one from a node's index until its next
 * start; its rows are gone all the same.) */
static const kn_db_stmt owners_gone = {
    "lb_owners_gone",
    "SELECT seq, owner_id::text FROM leaderboard_owner_gone WHERE seq > $1::bigint"
    " ORDER BY seq LIMIT 1000",
    1};
static const kn_db_stmt owners_gone_start = {
    "lb_owners_gone_start",
    "WITH pruned AS (DELETE FROM leaderboard_owner_gone"
    " WHERE gone_time < now() - interval '1 day') SELECT coalesce(max(seq), 0)"
    " FROM leaderboard_owner_gone",
    0};
static const kn_db_stmt claim_job = {
    "lb_claim",
    "INSERT INTO leaderboard_job_run (job, fire_time, node) VALUES ($1, $2, $3)"
    " ON CONFLICT DO NOTHING RETURNING 1",
    3};

/* The write: one statement applies the operator ($8: 0 best, 1 set, 2
 * increment, 3 decrement; $9 true for an ascending board) to the row of
 * ($1, $2, $3), creating it when absent. Sums saturate at the int64 limits
 * (numeric, then clamped). A best that does not improve keeps score,
 * subscore, metadata and score_time; score_time changes only when (score,
 * subscore) does. */
#define SAT(x) "LEAST(GREATEST((" x "), -9223372036854775808), 9223372036854775807)::bigint"
#define BETTER                                                                                     \
    "(CASE WHEN $9::bool THEN ($5::bigint, $6::bigint) < (r.score, r.subscore)"                    \
    " ELSE ($5::bigint, $6::bigint) > (r.score, r.subscore) END)"
#define NEW_SCORE                                                                                  \
    "(CASE $8::int WHEN 0 THEN CASE WHEN " BETTER " THEN $5::bigint ELSE r.score END"              \
    " WHEN 1 THEN $5::bigint WHEN 2 THEN " SAT("r.score::numeric + $5::numeric") " ELSE " SAT(     \
        "r.score::numeric - $5::numeric") " END)"
#define NEW_SUBSCORE                                                                               \
    "(CASE $8::int WHEN 0 THEN CASE WHEN " BETTER " THEN $6::bigint ELSE r.subscore END"           \
    " WHEN 1 THEN $6::bigint WHEN 2 THEN " SAT("r.subscore::numeric + $6::numeric") " ELSE " SAT(  \
        "r.subscore::numeric - $6::numeric") " END)"
#define RECORD_COLS KN_LB__RECORD_COLS
/* The new row's values ($1..$10), shared by both writes. */
#define NEW_ROW                                                                                    \
    "$1::text, $2::uuid, $3::bigint, coalesce($4::text, ''),"                                      \
    " CASE WHEN $8::int = 3 THEN " SAT(                                                            \
        "-($5::numeric)") " ELSE $5::bigint END,"                                                  \
                          " CASE WHEN $8::int = 3 THEN " SAT(                                      \
                              "-($6::numeric)") " ELSE $6::bigint END,"                            \
                                                " coalesce($7::jsonb, '{}'), $10::bigint"
#define INSERT_RECORD                                                                              \
    "INSERT INTO leaderboard_record AS r (leaderboard_id, owner_id, expiry_time, username, score," \
    " subscore, metadata, score_time) "
#define ON_CONFLICT                                                                                \
    " ON CONFLICT (leaderboard_id, expiry_time, owner_id) DO UPDATE SET"                           \
    " username = coalesce($4, r.username), score = " NEW_SCORE ", subscore = " NEW_SUBSCORE ","    \
    " metadata = CASE WHEN $8::int = 0 AND NOT " BETTER " THEN r.metadata"                         \
    " ELSE coalesce($7::jsonb, r.metadata) END,"                                                   \
    " score_time = CASE WHEN (" NEW_SCORE ", " NEW_SUBSCORE ") = (r.score, r.subscore)"            \
    " THEN r.score_time ELSE $10 END,"                                                             \
    " num_score = r.num_score + 1, version = r.version + 1, update_time = now()"
static const kn_db_stmt write_record = {
    "lb_write", INSERT_RECORD "VALUES (" NEW_ROW ")" ON_CONFLICT " RETURNING " RECORD_COLS, 10};
/* A tournament's write: the row is made only for a joined member of the
 * period whose allowance ($11 scores, 0 no limit, plus its attempts) is at
 * least one, and changed only while num_score is below it. No row
 * returned: refused (the caller finds out why). */
#define MEMBER                                                                                     \
    " tournament_member m WHERE m.tournament_id = $1 AND m.expiry_time = $3::bigint"               \
    " AND m.owner_id = $2::uuid"
static const kn_db_stmt write_guarded = {
    "lb_write_guarded",
    INSERT_RECORD
    "SELECT " NEW_ROW " FROM" MEMBER
    " AND m.joined AND ($11::int = 0 OR $11::int + m.attempts >= 1)" ON_CONFLICT
    " WHERE $11::int = 0 OR r.num_score < $11::int + coalesce((SELECT m.attempts FROM" MEMBER
    "), 0) RETURNING " RECORD_COLS,
    11};

static int db_fail(int rc, char *msg, size_t cap)
{
    return kn_db_fail(rc, msg, cap);
}

int64_t kn_lb__now_ms(kn_leaderboards *lbs)
{
    return lbs->now_ms ? lbs->now_ms(lbs->clock_ud) : kn_time_wall_ms();
}

/* --- checks ------------------------------------------------------------------------------------
 */

int kn_lb__check_id(const char *id, char *msg, size_t cap)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > KN_LB_ID_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "leaderboard id must be 1-%d bytes",
                          KN_LB_ID_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "leaderboard id must not hold control characters");
    return KN_OK;
}

int kn_lb__check_owner(const char *owner, char *msg, size_t cap)
{
    if (!owner || !kn_uuid_valid(owner))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "owner id must be a UUID");
    return KN_OK;
}

/* Metadata follows the profile rule (a JSON object of at most 16 KiB), as
 * groups' does: one check, one message. */
static int check_metadata(const char *s, char *msg, size_t cap)
{
    return kn_account_check_metadata(s, msg, cap);
}

/* --- periods -----------------------------------------------------------------------------------
 */

/* The end of the period holding Unix second t: the schedule's first time
 * strictly after t; 0 for a board that never resets. */
int64_t kn_lb__period_end(const kn_lb_board *b, int64_t t)
{
    if (!b->has_cron) return 0;
    int64_t next = 0;
    if (kn_cron_next(&b->cron, t, &next)) return 0; /* never fires again: one last period */
    return next;
}

static int64_t period_end(const kn_lb_board *b, int64_t t)
{
    return kn_lb__period_end(b, t);
}

int64_t kn_lb__period_start(const kn_lb_board *b, int64_t t)
{
    if (!b->has_cron) return 0;
    /* kn_cron only looks forward: find the smallest look-back that holds a
     * fire, then walk forward to the last one at or before t (a handful of
     * steps: the look-back is at most a few intervals of the schedule). */
    static const int64_t spans[] = {3600, 86400, 86400 * 32, 86400 * 367, 86400 * 366 * 8};
    for (size_t i = 0; i < sizeof spans / sizeof *spans; i++) {
        int64_t at = 0;
        if (kn_cron_next(&b->cron, t - spans[i], &at) || at > t) continue;
        for (int64_t next = 0; kn_cron_next(&b->cron, at, &next) == KN_OK && next <= t;)
            at = next;
        return at;
    }
    return 0;
}

/* Moves b to the period of `now` when its current one ended: the index
 * empties. Caller holds b->rw exclusively. */
static void roll_period(kn_lb_board *b, int64_t now_s)
{
    if (!b->expiry || now_s < b->expiry) return;
    b->prev_expiry = b->expiry;
    b->expiry = period_end(b, now_s);
    b->rank->vt->clear(b->rank);
}

void kn_lb__enter(kn_leaderboards *lbs, kn_lb_board *b, bool exclusive)
{
    int64_t now_s = kn_lb__now_ms(lbs) / 1000;
    pthread_rwlock_rdlock(&b->rw);
    if (!b->expiry || now_s < b->expiry) {
        if (!exclusive) return;
        pthread_rwlock_unlock(&b->rw);
    } else {
        pthread_rwlock_unlock(&b->rw);
    }
    pthread_rwlock_wrlock(&b->rw);
    roll_period(b, now_s);
    if (exclusive) return;
    pthread_rwlock_unlock(&b->rw);
    /* A period cannot end twice between these lines in any test or real
     * schedule (minutes apart); a write that lands late still goes to the
     * period its own clock reading names. */
    pthread_rwlock_rdlock(&b->rw);
}

void kn_lb__leave(kn_lb_board *b)
{
    pthread_rwlock_unlock(&b->rw);
}

/* --- the registry ------------------------------------------------------------------------------
 */

static void board_free(kn_lb_board *b)
{
    if (!b) return;
    kn_rank_destroy(b->rank);
    kn_free(b->meta.metadata);
    kn_lb__tour_free(&b->tour);
    pthread_rwlock_destroy(&b->rw);
    kn_free(b);
}

/* A board from a row of BOARD_COLS, with an empty index of its period. */
static int board_from_row(kn_leaderboards *lbs, kn_db_rows *rows, size_t i, kn_lb_board **out)
{
    *out = NULL;
    kn_lb_board *b = kn_calloc(1, sizeof *b);
    if (!b) return KN_ERR_NOMEM;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* A delete or a period change must not wait behind an endless stream of writes. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&b->rw, &attr);
    pthread_rwlockattr_destroy(&attr);
    kn_leaderboard *m = &b->meta;
    snprintf(m->id, sizeof m->id, "%s", kn_db_rows_get(rows, i, 0));
    m->authoritative = !strcmp(kn_db_rows_get(rows, i, 1), "t");
    m->sort_order = atoi(kn_db_rows_get(rows, i, 2));
    m->operator_ = atoi(kn_db_rows_get(rows, i, 3));
    snprintf(m->reset_schedule, sizeof m->reset_schedule, "%s", kn_db_rows_get(rows, i, 4));
    m->metadata = kn_strdup(kn_db_rows_get(rows, i, 5));
    m->enable_ranks = !strcmp(kn_db_rows_get(rows, i, 6), "t");
    m->create_time = atoll(kn_db_rows_get(rows, i, 7));
    int rc = m->metadata ? KN_OK : KN_ERR_NOMEM;
    if (rc == KN_OK && kn_db_rows_get(rows, i, 8)) { /* a tournament */
        kn_lb_tour *t = &b->tour;
        b->is_tour = true;
        t->category = atoi(kn_db_rows_get(rows, i, 8));
        t->title = kn_strdup(kn_db_rows_get(rows, i, 9));
        t->description = kn_strdup(kn_db_rows_get(rows, i, 10));
        t->start_time = atoll(kn_db_rows_get(rows, i, 11));
        t->end_time = atoll(kn_db_rows_get(rows, i, 12));
        t->duration = atoi(kn_db_rows_get(rows, i, 13));
        t->max_size = atoi(kn_db_rows_get(rows, i, 14));
        t->max_num_score = atoi(kn_db_rows_get(rows, i, 15));
        t->join_required = !strcmp(kn_db_rows_get(rows, i, 16), "t");
        if (!t->title || !t->description) rc = KN_ERR_NOMEM;
    }
    if (rc == KN_OK && *m->reset_schedule) {
        if (kn_cron_parse(m->reset_schedule, &b->cron, NULL, 0) == KN_OK)
            b->has_cron = true;
        else
            KN_WARN("leaderboard %s: reset schedule \"%s\" does not parse; it never resets", m->id,
                    m->reset_schedule);
    }
    if (rc == KN_OK)
        rc = lbs->ranks.create(lbs->ranks.ud,
                               m->sort_order == KN_LB_ASC ? KN_RANK_ASC : KN_RANK_DESC, &b->rank);
    if (rc) {
        board_free(b);
        return rc;
    }
    int64_t now_s = kn_lb__now_ms(lbs) / 1000;
    b->expiry = period_end(b, now_s);
    /* The last reset before this start, if the board existed then, is
     * still due: the first tick claims it, and a node (or an earlier run)
     * that fired it already holds the claim, so it fires once. Older
     * missed resets are not fired. */
    int64_t last = kn_lb__period_start(b, now_s);
    if (last && last >= m->create_time) {
        b->prev_expiry = last;
        b->fired_through = last - 1;
    } else {
        b->fired_through = now_s;
    }
    *out = b;
    return KN_OK;
}

/* The entries of a rebuild as they arrive. */
typedef struct entries {
    kn_rank_entry *es;
    size_t n, cap;
} entries;

static int take_entry(void *ud, const kn_db_rows *row)
{
    entries *a = ud;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        kn_rank_entry *ne = kn_realloc(a->es, cap * sizeof *ne);
        if (!ne) return KN_ERR_NOMEM;
        a->es = ne;
        a->cap = cap;
    }
    kn_rank_entry *e = &a->es[a->n++];
    memset(e, 0, sizeof *e);
    e->score = atoll(kn_db_rows_get(row, 0, 1));
    e->subscore = atoll(kn_db_rows_get(row, 0, 2));
    e->time_us = atoll(kn_db_rows_get(row, 0, 3));
    e->version = atoll(kn_db_rows_get(row, 0, 4));
    snprintf(e->owner, sizeof e->owner, "%s", kn_db_rows_get(row, 0, 0));
    return KN_OK;
}

/* Indexes the records of b's current period: read in one streamed scan,
 * then built in one pass (kn_rank_vt.load). Caller holds b->rw exclusively
 * (or b is not yet visible). */
static int board_rebuild(kn_lb_board *b, kn_db *db, size_t *n_out)
{
    char expiry[24];
    snprintf(expiry, sizeof expiry, "%" PRId64, (int64_t)b->expiry);
    const char *p[] = {b->meta.id, expiry};
    entries a = {0};
    int rc = kn_db_query_each(db, &load_entries, p, take_entry, &a);
    if (rc == KN_OK) rc = b->rank->vt->load(b->rank, a.es, a.n);
    kn_free(a.es);
    if (rc == KN_OK && n_out) *n_out += a.n;
    return rc;
}

kn_lb_board *kn_lb__find(kn_leaderboards *lbs, const char *id)
{
    kn_lb_board *found = NULL;
    pthread_rwlock_rdlock(&lbs->mu);
    for (size_t i = 0; i < lbs->n && !found; i++)
        if (!strcmp(lbs->boards[i]->meta.id, id)) found = lbs->boards[i];
    pthread_rwlock_unlock(&lbs->mu);
    return found;
}

/* Adds b to the registry (takes it); an id already there keeps the old one. */
static kn_lb_board *registry_add(kn_leaderboards *lbs, kn_lb_board *b)
{
    pthread_rwlock_wrlock(&lbs->mu);
    for (size_t i = 0; i < lbs->n; i++)
        if (!strcmp(lbs->boards[i]->meta.id, b->meta.id)) {
            kn_lb_board *old = lbs->boards[i];
            pthread_rwlock_unlock(&lbs->mu);
            board_free(b);
            return old;
        }
    if (lbs->n == lbs->cap) {
        size_t cap = lbs->cap ? lbs->cap * 2 : 16;
        kn_lb_board **nb = kn_realloc(lbs->boards, cap * sizeof *nb);
        if (!nb) {
            pthread_rwlock_unlock(&lbs->mu);
            board_free(b);
            return NULL;
        }
        lbs->boards = nb;
        lbs->cap = cap;
    }
    lbs->boards[lbs->n++] = b;
    pthread_rwlock_unlock(&lbs->mu);
    return b;
}

/* The board, loading it from Postgres when this node has not seen it (a
 * board created by another node, or before a restart of this one). */
int kn_lb__get(kn_leaderboards *lbs, kn_db *db, const char *id, kn_lb_board **out, char *msg,
               size_t cap)
{
    int rc = kn_lb__check_id(id, msg, cap);
    if (rc) return rc;
    if ((*out = kn_lb__find(lbs, id))) return KN_OK;
    if (!db) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "leaderboard %s does not exist", id);
    return kn_lb__load_one(lbs, db, id, out, msg, cap);
}

int kn_lb__load_one(kn_leaderboards *lbs, kn_db *db, const char *id, kn_lb_board **out, char *msg,
                    size_t cap)
{
    int rc;
    kn_db_rows *rows = NULL;
    const char *p[] = {id};
    if ((rc = kn_db_query(db, &select_board, p, &rows))) return db_fail(rc, msg, cap);
    if (kn_db_rows_count(rows) == 0) {
        kn_db_rows_free(rows);
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "leaderboard %s does not exist", id);
    }
    kn_lb_board *b = NULL;
    rc = board_from_row(lbs, rows, 0, &b);
    kn_db_rows_free(rows);
    if (rc == KN_OK) rc = board_rebuild(b, db, NULL);
    if (rc) {
        board_free(b);
        return db_fail(rc, msg, cap);
    }
    if (!(*out = registry_add(lbs, b))) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    return KN_OK;
}

/* --- lifecycle ---------------------------------------------------------------------------------
 */

int kn_leaderboards_create(const kn_leaderboards_config *cfg, kn_leaderboards **out)
{
    *out = NULL;
    kn_leaderboards *lbs = kn_calloc(1, sizeof *lbs);
    if (!lbs) return KN_ERR_NOMEM;
    if (cfg) {
        lbs->now_ms = cfg->now_ms;
        lbs->clock_ud = cfg->clock_ud;
        lbs->ranks = cfg->ranks;
        lbs->lease = cfg->lease;
        lbs->on_reset = cfg->on_reset;
        lbs->on_reset_ud = cfg->on_reset_ud;
        lbs->on_tour_end = cfg->on_tournament_end;
        lbs->on_tour_reset = cfg->on_tournament_reset;
        lbs->on_tour_ud = cfg->on_tournament_ud;
        lbs->out = cfg->out;
        snprintf(lbs->node, sizeof lbs->node, "%s", cfg->node ? cfg->node : "");
    }
    if (!lbs->ranks.create) lbs->ranks = kn_rank_local_factory;
    if (!lbs->lease.claim) lbs->lease.claim = kn_leaderboard_claim_pg;
    pthread_rwlock_init(&lbs->mu, NULL);
    pthread_mutex_init(&lbs->qmu, NULL);
    *out = lbs;
    return KN_OK;
}

void kn_leaderboards_set_out(kn_leaderboards *lbs, kn_out *out)
{
    lbs->out = out;
}

void kn_leaderboards_destroy(kn_leaderboards *lbs)
{
    if (!lbs) return;
    for (size_t i = 0; i < lbs->n; i++)
        board_free(lbs->boards[i]);
    for (size_t i = 0; i < lbs->n_dead; i++)
        board_free(lbs->dead[i]);
    kn_free(lbs->boards);
    kn_free(lbs->dead);
    for (kn_lb_queued *q = lbs->qhead, *next; q; q = next) {
        next = q->next;
        kn_free(q);
    }
    pthread_mutex_destroy(&lbs->qmu);
    pthread_rwlock_destroy(&lbs->mu);
    kn_free(lbs);
}

int kn_leaderboards_load(kn_leaderboards *lbs, kn_db *db, size_t *n_records, char *msg, size_t cap)
{
    if (n_records) *n_records = 0;
    kn_db_rows *rows = NULL;
    /* Deletions before this point are already out of the rows read below. */
    int rc = kn_db_query(db, &owners_gone_start, NULL, &rows);
    if (rc) return db_fail(rc, msg, cap);
    atomic_store(&lbs->gone_seq, atoll(kn_db_rows_get(rows, 0, 0)));
    kn_db_rows_free(rows);
    rows = NULL;
    rc = kn_db_query(db, &select_boards, NULL, &rows);
    if (rc) return db_fail(rc, msg, cap);
    size_t n = kn_db_rows_count(rows);
    for (size_t i = 0; i < n && rc == KN_OK; i++) {
        kn_lb_board *fresh = NULL;
        if ((rc = board_from_row(lbs, rows, i, &fresh))) break;
        kn_lb_board *b = registry_add(lbs, fresh);
        if (!b) {
            rc = KN_ERR_NOMEM;
            break;
        }
        pthread_rwlock_wrlock(&b->rw);
        roll_period(b, kn_lb__now_ms(lbs) / 1000);
        rc = board_rebuild(b, db, n_records);
        pthread_rwlock_unlock(&b->rw);
    }
    kn_db_rows_free(rows);
    return rc ? db_fail(rc, msg, cap) : KN_OK;
}

size_t kn_leaderboards_count(kn_leaderboards *lbs)
{
    pthread_rwlock_rdlock(&lbs->mu);
    size_t n = lbs->n;
    pthread_rwlock_unlock(&lbs->mu);
    return n;
}

size_t kn_leaderboards_index_memory(kn_leaderboards *lbs)
{
    size_t bytes = 0;
    pthread_rwlock_rdlock(&lbs->mu);
    for (size_t i = 0; i < lbs->n; i++)
        bytes += lbs->boards[i]->rank->vt->memory(lbs->boards[i]->rank);
    pthread_rwlock_unlock(&lbs->mu);
    return bytes;
}

/* --- boards ------------------------------------------------------------------------------------
 */

bool kn_lb__same_board(const kn_leaderboard *m, const kn_leaderboard_spec *s)
{
    const char *schedule = s->reset_schedule ? s->reset_schedule : "";
    int op = s->operator_;
    return m->authoritative == s->authoritative && m->sort_order == s->sort_order &&
           m->operator_ == op && !strcmp(m->reset_schedule, schedule) &&
           m->enable_ranks == !s->disable_ranks;
}

int kn_lb__check_spec(const kn_leaderboard_spec *s, char *msg, size_t cap)
{
    int rc = kn_lb__check_id(s->id, msg, cap);
    if (rc) return rc;
    if (s->sort_order != KN_LB_DESC && s->sort_order != KN_LB_ASC)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "sort order must be 0 (descending) or 1 (ascending), not %d",
                          s->sort_order);
    int op = s->operator_;
    if (op < KN_LB_OP_BEST || op > KN_LB_OP_DECR)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "operator must be 0 best, 1 set, 2 increment or 3 decrement, not %d", op);
    const char *schedule = s->reset_schedule ? s->reset_schedule : "";
    kn_cron cron;
    char why[160];
    if (strlen(schedule) >= sizeof((kn_leaderboard *)0)->reset_schedule)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "reset schedule is too long");
    if (*schedule && kn_cron_parse(schedule, &cron, why, sizeof why))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "reset schedule: %s", why);
    return check_metadata(s->metadata ? s->metadata : "{}", msg, cap);
}

int kn_leaderboard_create(kn_leaderboards *lbs, kn_db *db, const kn_leaderboard_spec *s, char *msg,
                          size_t cap)
{
    int rc = kn_lb__check_spec(s, msg, cap);
    if (rc) return rc;
    int op = s->operator_;
    const char *schedule = s->reset_schedule ? s->reset_schedule : "";
    const char *metadata = s->metadata ? s->metadata : "{}";
    char sort[4], opt[4];
    snprintf(sort, sizeof sort, "%d", s->sort_order);
    snprintf(opt, sizeof opt, "%d", op);
    const char *p[] = {s->id,    s->authoritative ? "true" : "false", sort, opt, schedule,
                       metadata, s->disable_ranks ? "false" : "true"};
    /* Known here with the same settings: nothing to do (every VM of every
     * match creates its boards as its modules load). */
    kn_lb_board *known = kn_lb__find(lbs, s->id);
    if (known) {
        pthread_rwlock_rdlock(&known->rw);
        bool same = !known->deleted && !known->is_tour && kn_lb__same_board(&known->meta, s);
        pthread_rwlock_unlock(&known->rw);
        if (same) return KN_OK;
    }
    if (kn_leaderboards_count(lbs) >= KN_LB_BOARDS_MAX && !known)
        return kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap,
                          "there are %d leaderboards; the limit is %d", KN_LB_BOARDS_MAX,
                          KN_LB_BOARDS_MAX);
    kn_db_rows *rows = NULL;
    if ((rc = kn_db_query(db, &insert_board, p, &rows))) return db_fail(rc, msg, cap);
    kn_db_rows_free(rows);
    /* New or not, the row now exists: load it (or find it) and compare. */
    kn_lb_board *b = NULL;
    if ((rc = kn_lb__get(lbs, db, s->id, &b, msg, cap))) return rc;
    if (b->is_tour)
        return kn_err_msg(KN_ERR_ALREADY_EXISTS, msg, cap, "leaderboard %s exists as a tournament",
                          s->id);
    if (!kn_lb__same_board(&b->meta, s))
        return kn_err_msg(KN_ERR_ALREADY_EXISTS, msg, cap,
                          "leaderboard %s exists with other settings", s->id);
    return KN_OK;
}

int kn_leaderboard_delete(kn_leaderboards *lbs, kn_db *db, const char *id, char *msg, size_t cap)
{
    kn_lb_board *b = NULL;
    int rc = kn_lb__get(lbs, db, id, &b, msg, cap);
    if (rc) return rc;
    pthread_rwlock_wrlock(&b->rw);
    const char *p[] = {id};
    kn_db_rows *rows = NULL;
    rc = kn_db_query(db, &delete_board, p, &rows);
    size_t gone = rc ? 0 : kn_db_rows_affected(rows);
    kn_db_rows_free(rows);
    if (rc == KN_OK) {
        b->rank->vt->clear(b->rank);
        pthread_rwlock_wrlock(&lbs->mu);
        for (size_t i = 0; i < lbs->n; i++)
            if (lbs->boards[i] == b) {
                lbs->boards[i] = lbs->boards[--lbs->n];
                break;
            }
        /* Kept until destroy: another call may hold b right now. */
        kn_lb_board **nd = kn_realloc(lbs->dead, (lbs->n_dead + 1) * sizeof *nd);
        if (nd) {
            lbs->dead = nd;
            lbs->dead[lbs->n_dead++] = b;
        } /* else leaked rather than freed under a reader */
        b->deleted = true;
        pthread_rwlock_unlock(&lbs->mu);
    }
    pthread_rwlock_unlock(&b->rw);
    if (rc) return db_fail(rc, msg, cap);
    if (gone == 0)
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "leaderboard %s does not exist", id);
    return KN_OK;
}

int kn_leaderboard_get(kn_leaderboards *lbs, const char *id, kn_leaderboard *out, char *msg,
                       size_t cap)
{
    memset(out, 0, sizeof *out);
    kn_lb_board *b = NULL;
    int rc = kn_lb__get(lbs, NULL, id, &b, msg, cap);
    if (rc) return rc;
    pthread_rwlock_rdlock(&b->rw);
    *out = b->meta;
    out->next_reset = b->expiry;
    out->prev_reset = b->prev_expiry;
    out->metadata = kn_strdup(b->meta.metadata);
    pthread_rwlock_unlock(&b->rw);
    if (!out->metadata) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    return KN_OK;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const kn_leaderboard *)a)->id, ((const kn_leaderboard *)b)->id);
}

int kn_leaderboards_list(kn_leaderboards *lbs, kn_leaderboard **out, size_t *n, char *msg,
                         size_t cap)
{
    *out = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&lbs->mu);
    size_t count = lbs->n;
    kn_leaderboard *list = count ? kn_calloc(count, sizeof *list) : NULL;
    bool nomem = count && !list;
    for (size_t i = 0; i < count && !nomem; i++) {
        kn_lb_board *b = lbs->boards[i];
        list[i] = b->meta;
        list[i].next_reset = b->expiry;
        list[i].metadata = kn_strdup(b->meta.metadata);
        nomem = !list[i].metadata;
    }
    pthread_rwlock_unlock(&lbs->mu);
    if (nomem) {
        kn_leaderboards_free(list, count);
        return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    if (count > 1) qsort(list, count, sizeof *list, by_id);
    *out = list;
    *n = count;
    return KN_OK;
}

void kn_leaderboards_free(kn_leaderboard *boards, size_t n)
{
    if (!boards) return;
    for (size_t i = 0; i < n; i++)
        kn_free(boards[i].metadata);
    kn_free(boards);
}

void kn_leaderboard_deinit(kn_leaderboard *b)
{
    if (!b) return;
    kn_free(b->metadata);
    b->metadata = NULL;
}

/* --- records -----------------------------------------------------------------------------------
 */

void kn_lb__record_from_row(kn_db_rows *rows, size_t i, const char *board, kn_leaderboard_record *r,
                            kn_rank_entry *e)
{
    memset(r, 0, sizeof *r);
    snprintf(r->leaderboard_id, sizeof r->leaderboard_id, "%s", board);
    snprintf(r->owner_id, sizeof r->owner_id, "%s", kn_db_rows_get(rows, i, 0));
    snprintf(r->username, sizeof r->username, "%s", kn_db_rows_get(rows, i, 1));
    r->score = atoll(kn_db_rows_get(rows, i, 2));
    r->subscore = atoll(kn_db_rows_get(rows, i, 3));
    r->num_score = atoi(kn_db_rows_get(rows, i, 4));
    r->metadata = kn_strdup(kn_db_rows_get(rows, i, 5));
    r->create_time = atoll(kn_db_rows_get(rows, i, 6));
    r->update_time = atoll(kn_db_rows_get(rows, i, 7));
    r->expiry_time = atoll(kn_db_rows_get(rows, i, 8));
    if (e) {
        memset(e, 0, sizeof *e);
        e->score = r->score;
        e->subscore = r->subscore;
        e->time_us = atoll(kn_db_rows_get(rows, i, 9));
        e->version = atoll(kn_db_rows_get(rows, i, 10));
        snprintf(e->owner, sizeof e->owner, "%s", r->owner_id);
    }
}

int kn_lb__check_write(const char *owner_id, const kn_leaderboard_write_opts *o, char *msg,
                       size_t cap)
{
    int rc = kn_lb__check_owner(owner_id, msg, cap);
    if (rc) return rc;
    if (o->operator_ != KN_LB_OP_DEFAULT &&
        (o->operator_ < KN_LB_OP_BEST || o->operator_ > KN_LB_OP_DECR))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "operator must be 0 best, 1 set, 2 increment or 3 decrement, not %d",
                          o->operator_);
    if (o->metadata && (rc = check_metadata(o->metadata, msg, cap))) return rc;
    if (o->username && strlen(o->username) > 128)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "username must be at most 128 bytes");
    return KN_OK;
}

int kn_leaderboard_write(kn_leaderboards *lbs, kn_db *db, const char *id, const char *owner_id,
                         const kn_leaderboard_write_opts *o, kn_leaderboard_record *out, char *msg,
                         size_t cap)
{
    if (out) memset(out, 0, sizeof *out);
    int rc = kn_lb__check_write(owner_id, o, msg, cap);
    if (rc) return rc;
    kn_lb_board *b = NULL;
    if ((rc = kn_lb__get(lbs, db, id, &b, msg, cap))) return rc;
    if (o->from_client && b->meta.authoritative)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "leaderboard %s is authoritative: only the server writes to it", id);
    if (b->is_tour)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "%s is a tournament: write with tournament_record_write", id);
    return kn_lb__write(lbs, db, b, owner_id, o, -1, out, NULL, msg, cap);
}

int kn_lb__write(kn_leaderboards *lbs, kn_db *db, kn_lb_board *b, const char *owner_id,
                 const kn_leaderboard_write_opts *o, int max_scores, kn_leaderboard_record *out,
                 int64_t *expiry_out, char *msg, size_t cap)
{
    if (out) memset(out, 0, sizeof *out);
    const char *id = b->meta.id;
    int rc;
    int op = o->operator_ == KN_LB_OP_DEFAULT ? b->meta.operator_ : o->operator_;
    char expiry[24], score[24], subscore[24], opt[4], now_us[24], max[16];
    snprintf(max, sizeof max, "%d", max_scores);
    kn_lb__enter(lbs, b, false);
    if (expiry_out) *expiry_out = b->expiry;
    if (b->deleted) {
        kn_lb__leave(b);
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "leaderboard %s does not exist", id);
    }
    snprintf(expiry, sizeof expiry, "%" PRId64, b->expiry);
    snprintf(score, sizeof score, "%" PRId64, o->score);
    snprintf(subscore, sizeof subscore, "%" PRId64, o->subscore);
    snprintf(opt, sizeof opt, "%d", op);
    /* Microseconds from the injected clock, made unique per process so two
     * writes of one instant still order (first come, first ranked). */
    int64_t us = kn_lb__now_ms(lbs) * 1000;
    int64_t prev = atomic_load(&lbs->last_us);
    for (;;) {
        int64_t want = us > prev ? us : prev + 1;
        if (atomic_compare_exchange_weak(&lbs->last_us, &prev, want)) {
            us = want;
            break;
        }
    }
    snprintf(now_us, sizeof now_us, "%" PRId64, us);
    const char *p[] = {id,          owner_id, expiry,
                       o->username, score,    subscore,
                       o->metadata, opt,      b->meta.sort_order == KN_LB_ASC ? "true" : "false",
                       now_us,      max};
    kn_db_rows *rows = NULL;
    rc = kn_db_query(db, max_scores < 0 ? &write_record : &write_guarded, p, &rows);
    if (rc == KN_OK && kn_db_rows_count(rows) == 0) { /* the guard refused */
        kn_lb__leave(b);
        kn_db_rows_free(rows);
        return KN_ERR_FAILED_PRECONDITION;
    }
    if (rc == KN_ERR_NOT_FOUND) { /* the board row went (deleted on another node) */
        kn_lb__leave(b);
        kn_db_rows_free(rows);
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "leaderboard %s does not exist", id);
    }
    if (rc) {
        kn_lb__leave(b);
        kn_db_rows_free(rows);
        return db_fail(rc, msg, cap);
    }
    kn_leaderboard_record rec;
    kn_rank_entry e;
    kn_lb__record_from_row(rows, 0, id, &rec, &e);
    kn_db_rows_free(rows);
    bool applied;
    /* Committed: the index follows. A failure here (out of memory) leaves
     * the record durable but unranked until the next rebuild; say so. */
    rc = b->rank->vt->apply(b->rank, &e, &applied);
    if (rc == KN_OK && lbs->peers.applied) lbs->peers.applied(lbs->peers.ud, id, b->expiry, &e);
    if (rc == KN_OK && b->meta.enable_ranks)
        rec.rank = b->rank->vt->rank_of(b->rank, e.owner, NULL);
    kn_lb__leave(b);
    if (rc == KN_OK && !rec.metadata) rc = KN_ERR_NOMEM;
    if (rc) {
        kn_free(rec.metadata);
        KN_ERROR("leaderboard %s: record of %s stored but not indexed: %s", id, owner_id,
                 kn_err_text(rc));
        return kn_err_msg(rc, msg, cap, "out of memory");
    }
    if (out)
        *out = rec;
    else
        kn_free(rec.metadata);
    return KN_OK;
}

int kn_leaderboard_record_delete(kn_leaderboards *lbs, kn_db *db, const char *id,
                                 const char *owner_id, bool from_client, char *msg, size_t cap)
{
    int rc = kn_lb__check_owner(owner_id, msg, cap);
    if (rc) return rc;
    kn_lb_board *b = NULL;
    if ((rc = kn_lb__get(lbs, db, id, &b, msg, cap))) return rc;
    if (from_client && b->meta.authoritative)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "leaderboard %s is authoritative: only the server deletes its records",
                          id);
    /* A deleted record would give its owner its scores back. */
    if (from_client && b->is_tour)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "%s is a tournament: only the server deletes its records", id);
    kn_lb__enter(lbs, b, true);
    char expiry[24];
    snprintf(expiry, sizeof expiry, "%" PRId64, b->expiry);
    const char *p[] = {id, expiry, owner_id};
    kn_db_rows *rows = NULL;
    rc = kn_db_query(db, &delete_record, p, &rows);
    size_t gone = rc ? 0 : kn_db_rows_affected(rows);
    kn_db_rows_free(rows);
    if (rc == KN_OK && gone) {
        char lower[37];
        snprintf(lower, sizeof lower, "%s", owner_id);
        for (char *c = lower; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        b->rank->vt->remove(b->rank, lower);
        if (lbs->peers.removed) lbs->peers.removed(lbs->peers.ud, id, b->expiry, lower);
    }
    kn_lb__leave(b);
    if (rc) return db_fail(rc, msg, cap);
    if (!gone)
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "no record of %s in leaderboard %s", owner_id,
                          id);
    return KN_OK;
}

/* --- queued writes ------------------------------------------------------------------------------
 */

static char *copy_into(char **at, const char *s)
{
    if (!s) return NULL;
    char *d = *at;
    size_t n = strlen(s) + 1;
    memcpy(d, s, n);
    *at += n;
    return d;
}

int kn_leaderboards_enqueue(kn_leaderboards *lbs, const char *id, const char *owner_id,
                            const kn_leaderboard_write_opts *o, char *msg, size_t cap)
{
    int rc = kn_lb__check_id(id, msg, cap);
    if (rc || (rc = kn_lb__check_owner(owner_id, msg, cap))) return rc;
    if (o->operator_ != KN_LB_OP_DEFAULT &&
        (o->operator_ < KN_LB_OP_BEST || o->operator_ > KN_LB_OP_DECR))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "operator must be 0 best, 1 set, 2 increment or 3 decrement, not %d",
                          o->operator_);
    if (o->metadata && (rc = check_metadata(o->metadata, msg, cap))) return rc;
    size_t need = sizeof(kn_lb_queued) + strlen(id) + strlen(owner_id) + 2 +
                  (o->username ? strlen(o->username) + 1 : 0) +
                  (o->metadata ? strlen(o->metadata) + 1 : 0);
    kn_lb_queued *q = kn_malloc(need);
    if (!q) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    char *at = (char *)(q + 1);
    q->next = NULL;
    q->o = *o;
    q->id = copy_into(&at, id);
    q->owner = copy_into(&at, owner_id);
    q->o.username = q->username = copy_into(&at, o->username);
    q->o.metadata = q->metadata = copy_into(&at, o->metadata);
    pthread_mutex_lock(&lbs->qmu);
    bool full = lbs->qlen >= KN_LB_QUEUE_MAX;
    if (!full) {
        if (lbs->qtail)
            lbs->qtail->next = q;
        else
            lbs->qhead = q;
        lbs->qtail = q;
        lbs->qlen++;
    }
    pthread_mutex_unlock(&lbs->qmu);
    if (full) {
        kn_free(q);
        return kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap,
                          "%d leaderboard writes are waiting; the limit is %d", KN_LB_QUEUE_MAX,
                          KN_LB_QUEUE_MAX);
    }
    return KN_OK;
}

void kn_leaderboards_set_peers(kn_leaderboards *lbs, const kn_leaderboard_peers *peers)
{
    lbs->peers = peers ? *peers : (kn_leaderboard_peers){0};
}

int kn_leaderboards_apply_peer(kn_leaderboards *lbs, const char *board_id, int64_t expiry,
                               const kn_rank_entry *e, const char *removed_owner)
{
    kn_lb_board *b = board_id ? kn_lb__find(lbs, board_id) : NULL;
    if (!b) return KN_ERR_NOT_FOUND;
    kn_lb__enter(lbs, b, removed_owner != NULL); /* removes are serialized, as here */
    int rc = KN_ERR_NOT_FOUND;
    if (!b->deleted && b->expiry == expiry) {
        bool applied = false;
        rc = removed_owner ? b->rank->vt->remove(b->rank, removed_owner)
                           : b->rank->vt->apply(b->rank, e, &applied);
    }
    kn_lb__leave(b);
    return rc;
}

size_t kn_leaderboards_flush(kn_leaderboards *lbs, kn_db *db)
{
    pthread_mutex_lock(&lbs->qmu);
    kn_lb_queued *q = lbs->qhead;
    lbs->qhead = lbs->qtail = NULL;
    lbs->qlen = 0;
    pthread_mutex_unlock(&lbs->qmu);
    size_t n = 0;
    while (q) {
        kn_lb_queued *next = q->next;
        char m[256];
        int rc = kn_leaderboard_write(lbs, db, q->id, q->owner, &q->o, NULL, m, sizeof m);
        if (rc) KN_WARN("queued write to leaderboard %s for %s refused: %s", q->id, q->owner, m);
        kn_free(q);
        q = next;
        n++;
    }
    return n;
}

int64_t kn_leaderboard_rank(kn_leaderboards *lbs, const char *id, const char *owner_id)
{
    kn_lb_board *b = kn_lb__find(lbs, id);
    if (!b) return 0;
    kn_lb__enter(lbs, b, false);
    int64_t r = b->rank->vt->rank_of(b->rank, owner_id, NULL);
    kn_lb__leave(b);
    return r;
}

void kn_leaderboard_records_free(kn_leaderboard_record *r, size_t n)
{
    if (!r) return;
    for (size_t i = 0; i < n; i++)
        kn_free(r[i].metadata);
    kn_free(r);
}

/* --- the scheduler -----------------------------------------------------------------------------
 */

bool kn_leaderboard_claim_pg(void *ud, kn_db *db, const char *job, int64_t fire_time)
{
    const char *node = ud ? ud : "";
    char t[24];
    snprintf(t, sizeof t, "%" PRId64, fire_time);
    const char *p[] = {job, t, node};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &claim_job, p, &rows);
    bool mine = rc == KN_OK && kn_db_rows_count(rows) == 1;
    kn_db_rows_free(rows);
    return mine;
}

bool kn_lb__claim(kn_leaderboards *lbs, kn_db *db, const char *job, int64_t fire_time)
{
    void *ud = lbs->lease.claim == kn_leaderboard_claim_pg && !lbs->lease.ud ? (void *)lbs->node
                                                                             : lbs->lease.ud;
    return lbs->lease.claim(ud, db, job, fire_time);
}

/* Takes the owners of deleted accounts out of every index (their rows are
 * gone already). Returns how many new owners were read. */
static size_t drop_gone_owners(kn_leaderboards *lbs, kn_db *db, kn_lb_board **boards, size_t n)
{
    char from[24];
    snprintf(from, sizeof from, "%" PRId64, atomic_load(&lbs->gone_seq));
    const char *p[] = {from};
    kn_db_rows *rows = NULL;
    if (kn_db_query(db, &owners_gone, p, &rows)) return 0; /* next tick */
    size_t fresh = 0;
    for (size_t i = 0; i < kn_db_rows_count(rows); i++) {
        int64_t seq = atoll(kn_db_rows_get(rows, i, 0));
        const char *owner = kn_db_rows_get(rows, i, 1);
        for (size_t j = 0; j < n; j++) {
            kn_lb__enter(lbs, boards[j], true);
            boards[j]->rank->vt->remove(boards[j]->rank, owner);
            kn_lb__leave(boards[j]);
        }
        atomic_store(&lbs->gone_seq, seq);
        fresh++;
    }
    kn_db_rows_free(rows);
    return fresh;
}

int kn_leaderboards_tick(kn_leaderboards *lbs, kn_db *db)
{
    int fired = 0;
    int64_t now_s = kn_lb__now_ms(lbs) / 1000;
    pthread_rwlock_rdlock(&lbs->mu);
    size_t n = lbs->n;
    kn_lb_board **snap = n ? kn_malloc(n * sizeof *snap) : NULL;
    if (snap) memcpy(snap, lbs->boards, n * sizeof *snap);
    pthread_rwlock_unlock(&lbs->mu);
    if (n && !snap) return 0;
    drop_gone_owners(lbs, db, snap, n);
    for (size_t i = 0; i < n; i++) {
        kn_lb_board *b = snap[i];
        pthread_rwlock_wrlock(&b->rw);
        roll_period(b, now_s);
        int64_t ended = b->prev_expiry;
        bool due = ended > b->fired_through && ended <= now_s;
        if (due) b->fired_through = ended;
        kn_leaderboard copy = b->meta;
        copy.next_reset = b->expiry;
        copy.prev_reset = b->prev_expiry;
        pthread_rwlock_unlock(&b->rw);
        char job[KN_LB_ID_MAX + 32];
        snprintf(job, sizeof job, "leaderboard_reset:%s", copy.id);
        if (due && kn_lb__claim(lbs, db, job, ended)) {
            /* The copy's metadata pointer is the board's, valid while the
             * board lives (boards are freed only at destroy). */
            if (b->is_tour)
                kn_lb__tour_reset(lbs, db, b, ended);
            else if (lbs->on_reset)
                lbs->on_reset(lbs->on_reset_ud, db, &copy, ended);
            fired++;
        }
        if (b->is_tour) fired += kn_lb__tour_end(lbs, db, b, now_s);
    }
    kn_free(snap);
    return fired;
}

int64_t kn_leaderboards_next_due(kn_leaderboards *lbs)
{
    int64_t due = INT64_MAX;
    pthread_rwlock_rdlock(&lbs->mu);
    for (size_t i = 0; i < lbs->n; i++) {
        int64_t e = lbs->boards[i]->expiry;
        if (e && e * 1000 < due) due = e * 1000;
    }
    pthread_rwlock_unlock(&lbs->mu);
    return due;
}
