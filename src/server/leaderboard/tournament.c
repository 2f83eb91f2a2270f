/* tournament: tournaments on the leaderboard machinery (contract in
 * kn_tournament.h, prose in docs/leaderboards.md, "Tournaments").
 *
 * Invariants:
 *   - a tournament is a board with is_tour set; its settings (b->tour) are
 *     immutable after load, so they are read without the board's lock;
 *   - the member rows of a period are changed only by a join (under the
 *     tournament row's lock, which serializes the count against max_size)
 *     and by add_attempt (attempts only, never `joined`);
 *   - a write goes through kn_lb__write's guarded statement: the rules that
 *     depend on rows (membership, scores left) are in its WHERE, so no
 *     check-then-write race can pass them; the window is checked here
 *     before (the clock is the service's);
 *   - ends and resets fire once per cluster (kn_lb__claim); their
 *     notifications come after the callback, ranks from SQL over the
 *     period's rows (the same order as the index). */
#include "kn_tournament.h"
#include "leaderboard_internal.h"
#include "kn_db.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_notify.h"
#include "kn_text.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

KN_ENTITY_DEFINE(kn_tournament_entity, kn_tournament, TOURNAMENT);

/* The board and the tournament row in one statement: both or neither. */
static const kn_db_stmt insert_tournament = {
    "tn_insert",
    "WITH b AS (INSERT INTO leaderboard (id, authoritative, sort_order, operator, reset_schedule,"
    " metadata, enable_ranks) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)"
    " ON CONFLICT (id) DO NOTHING RETURNING id)"
    " INSERT INTO tournament (id, category, title, description, start_time, end_time, duration,"
    " max_size, max_num_score, join_required)"
    " SELECT id, $8, $9, $10, $11, $12, $13, $14, $15, $16 FROM b",
    16};
static const kn_db_stmt lock_tournament = {
    "tn_lock", "SELECT max_size FROM tournament WHERE id = $1 FOR UPDATE", 1};
/* The period's joined count and whether $3 is among them. */
static const kn_db_stmt count_members = {
    "tn_count",
    "SELECT count(*) FILTER (WHERE joined), coalesce(bool_or(joined AND owner_id = $3::uuid), "
    "false)"
    " FROM tournament_member WHERE tournament_id = $1 AND expiry_time = $2",
    3};
static const kn_db_stmt insert_member = {
    "tn_join",
    "INSERT INTO tournament_member (tournament_id, expiry_time, owner_id, joined)"
    " VALUES ($1, $2, $3::uuid, true) ON CONFLICT (tournament_id, expiry_time, owner_id)"
    " DO UPDATE SET joined = true",
    3};
static const kn_db_stmt add_attempts = {
    "tn_add_attempt",
    "INSERT INTO tournament_member AS m (tournament_id, expiry_time, owner_id, attempts)"
    " VALUES ($1, $2, $3::uuid, $4) ON CONFLICT (tournament_id, expiry_time, owner_id)"
    " DO UPDATE SET attempts = LEAST(GREATEST(m.attempts::bigint + $4, -2147483648),"
    " 2147483647)::int",
    4};
/* Why a guarded write wrote nothing: the owner's member row and record. */
static const kn_db_stmt why_refused = {
    "tn_why",
    "SELECT coalesce(m.joined, false), coalesce(m.attempts, 0), coalesce(r.num_score, 0)"
    " FROM (SELECT 1) x LEFT JOIN tournament_member m ON m.tournament_id = $1"
    " AND m.expiry_time = $2 AND m.owner_id = $3::uuid"
    " LEFT JOIN leaderboard_record r ON r.leaderboard_id = $1 AND r.expiry_time = $2"
    " AND r.owner_id = $3::uuid",
    3};
static const kn_db_stmt size_of = {
    "tn_size",
    "SELECT count(*) FROM tournament_member WHERE tournament_id = $1 AND expiry_time = $2"
    " AND joined",
    2};
/* A page of ids ($5 true: from the first), with each one's current size
 * ($7: now; the current period is the one not yet ended). */
static const kn_db_stmt list_page = {
    "tn_list",
    "SELECT t.id, t.category, t.start_time, (SELECT count(*) FROM tournament_member m"
    " WHERE m.tournament_id = t.id AND m.joined AND (m.expiry_time = 0 OR m.expiry_time > $7))"
    " FROM tournament t WHERE t.category BETWEEN $1 AND $2"
    " AND ($3::bigint = 0 OR t.start_time >= $3) AND ($4::bigint = 0 OR (t.end_time <> 0"
    " AND t.end_time <= $4)) AND ($5::bool OR (t.category, t.start_time, t.id) > ($6::int,"
    " $8::bigint, $9::text)) ORDER BY t.category, t.start_time, t.id LIMIT $10",
    10};
/* Every joined participant of a period who is still a user, with the final
 * rank (0: no record) and the notification's content; $3 the sign of the
 * board's order (1 ascending, -1 descending), as the index orders. */
static const kn_db_stmt final_ranks = {
    "tn_final_ranks",
    "SELECT m.owner_id::text, json_build_object('tournament_id', $1::text, 'rank',"
    " coalesce(r.rk, 0), 'score', coalesce(r.score, 0), 'subscore', coalesce(r.subscore, 0),"
    " 'num_score', coalesce(r.num_score, 0), 'expiry', $2::bigint, 'end', $4::bool)::jsonb::text"
    " FROM tournament_member m JOIN users u ON u.id = m.owner_id"
    " LEFT JOIN (SELECT owner_id, score, subscore, num_score, row_number() OVER (ORDER BY"
    " score::numeric * $3::int, subscore::numeric * $3::int, score_time, owner_id) AS rk"
    " FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = $2) r"
    " ON r.owner_id = m.owner_id WHERE m.tournament_id = $1 AND m.expiry_time = $2 AND m.joined"
    " ORDER BY coalesce(r.rk, 9223372036854775807), m.owner_id",
    4};

/* --- windows -----------------------------------------------------------------------------------
 */

typedef struct window {
    int64_t start_active, end_active, next_reset, prev_reset;
} window;

static void window_at(const kn_lb_board *b, int64_t now, window *w)
{
    const kn_lb_tour *t = &b->tour;
    w->prev_reset = kn_lb__period_start(b, now);
    w->next_reset = kn_lb__period_end(b, now);
    w->start_active = w->prev_reset > t->start_time ? w->prev_reset : t->start_time;
    w->end_active = t->duration ? w->start_active + t->duration : w->next_reset;
    if (t->end_time && (!w->end_active || w->end_active > t->end_time)) w->end_active = t->end_time;
}

static int64_t now_s(kn_leaderboards *lbs)
{
    return kn_lb__now_ms(lbs) / 1000;
}

/* KN_OK when joins and writes are accepted at now. */
static int check_active(const kn_lb_board *b, int64_t now, char *msg, size_t cap)
{
    const kn_lb_tour *t = &b->tour;
    const char *id = b->meta.id;
    if (now < t->start_time)
        return kn_err_msg(KN_ERR_FAILED_PRECONDITION, msg, cap,
                          "tournament %s has not started: it starts at %" PRId64, id,
                          t->start_time);
    if (t->end_time && now >= t->end_time)
        return kn_err_msg(KN_ERR_FAILED_PRECONDITION, msg, cap, "tournament %s has ended", id);
    window w;
    window_at(b, now, &w);
    if (w.end_active && now >= w.end_active)
        return kn_err_msg(KN_ERR_FAILED_PRECONDITION, msg, cap,
                          "tournament %s is not active: this period's window ended at %" PRId64
                          "; the next opens at %" PRId64,
                          id, w.end_active, w.next_reset);
    return KN_OK;
}

/* --- lookups -----------------------------------------------------------------------------------
 */

static int get_tour(kn_leaderboards *lbs, kn_db *db, const char *id, kn_lb_board **out, char *msg,
                    size_t cap)
{
    int rc = kn_lb__get(lbs, db, id, out, msg, cap);
    if (rc == KN_ERR_NOT_FOUND || (rc == KN_OK && !(*out)->is_tour))
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "tournament %s does not exist", id);
    return rc;
}

/* The current period's end, read as a write would (rolling the board). */
static int64_t current_expiry(kn_leaderboards *lbs, kn_lb_board *b)
{
    kn_lb__enter(lbs, b, false);
    int64_t e = b->expiry;
    kn_lb__leave(b);
    return e;
}

static int query1(kn_db *db, const kn_db_stmt *st, const char *const *p, kn_db_rows **rows,
                  char *msg, size_t cap)
{
    int rc = kn_db_query(db, st, p, rows);
    return rc ? kn_db_fail(rc, msg, cap) : KN_OK;
}

/* t from b at now, with size; strings copied (NOMEM when they could not be). */
static int fill(const kn_lb_board *b, int64_t now, int64_t size, kn_tournament *t)
{
    memset(t, 0, sizeof *t);
    const kn_leaderboard *m = &b->meta;
    const kn_lb_tour *s = &b->tour;
    snprintf(t->id, sizeof t->id, "%s", m->id);
    t->title = kn_strdup(s->title);
    t->description = kn_strdup(s->description);
    t->metadata = kn_strdup(m->metadata);
    t->category = s->category;
    t->sort_order = m->sort_order;
    t->size = size > INT32_MAX ? INT32_MAX : (int32_t)size;
    t->max_size = s->max_size;
    t->max_num_score = s->max_num_score;
    window w;
    window_at(b, now, &w);
    t->start_active = w.start_active;
    t->end_active = w.end_active;
    t->next_reset = w.next_reset;
    t->prev_reset = w.prev_reset;
    t->can_enter = check_active(b, now, NULL, 0) == KN_OK && (!s->max_size || size < s->max_size);
    t->create_time = m->create_time;
    t->start_time = s->start_time;
    t->end_time = s->end_time;
    t->duration = s->duration;
    t->authoritative = m->authoritative;
    t->join_required = s->join_required;
    t->operator_ = m->operator_;
    snprintf(t->reset_schedule, sizeof t->reset_schedule, "%s", m->reset_schedule);
    t->enable_ranks = m->enable_ranks;
    return t->title && t->description && t->metadata ? KN_OK : KN_ERR_NOMEM;
}

void kn_tournament_deinit(kn_tournament *t)
{
    if (!t) return;
    kn_free(t->title);
    kn_free(t->description);
    kn_free(t->metadata);
    t->title = t->description = t->metadata = NULL;
}

void kn_tournaments_free(kn_tournament *t, size_t n)
{
    if (!t) return;
    for (size_t i = 0; i < n; i++)
        kn_tournament_deinit(&t[i]);
    kn_free(t);
}

void kn_lb__tour_free(kn_lb_tour *t)
{
    kn_free(t->title);
    kn_free(t->description);
    t->title = t->description = NULL;
}

/* --- create, delete, get -----------------------------------------------------------------------
 */

static int check_tour_spec(const kn_tournament_spec *s, char *msg, size_t cap)
{
    const char *title = s->title ? s->title : "";
    const char *desc = s->description ? s->description : "";
    if (strlen(title) > KN_TOURNAMENT_TITLE_MAX || (*title && !kn_text_valid(title, true)))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "title must be at most %d bytes of text without control characters",
                          KN_TOURNAMENT_TITLE_MAX);
    if (strlen(desc) > KN_TOURNAMENT_DESCRIPTION_MAX || (*desc && !kn_text_valid(desc, true)))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "description must be at most %d bytes of text without control "
                          "characters",
                          KN_TOURNAMENT_DESCRIPTION_MAX);
    if (s->category < 0 || s->category > KN_TOURNAMENT_CATEGORY_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "category must be 0-%d, not %d",
                          KN_TOURNAMENT_CATEGORY_MAX, s->category);
    if (s->start_time < 0)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "start time must not be negative");
    if (s->end_time < 0 || (s->end_time && s->end_time <= s->start_time))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "end time must be 0 (never) or after the start time");
    if (s->duration < 0 || s->max_size < 0 || s->max_num_score < 0)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "duration, max size and max num score must not be negative");
    return KN_OK;
}

static bool same_tour(const kn_lb_tour *t, const kn_tournament_spec *s)
{
    return t->category == s->category && !strcmp(t->title, s->title ? s->title : "") &&
           !strcmp(t->description, s->description ? s->description : "") &&
           (!s->start_time || t->start_time == s->start_time) && t->end_time == s->end_time &&
           t->duration == s->duration && t->max_size == s->max_size &&
           t->max_num_score == s->max_num_score && t->join_required == s->join_required;
}

/* An existing board of the id against the spec: KN_OK when it is this
 * tournament with these settings, else ALREADY_EXISTS. */
static int compare_known(const kn_lb_board *known, const kn_tournament_spec *s, char *msg,
                         size_t cap)
{
    const char *id = s->board.id;
    if (!known->is_tour)
        return kn_err_msg(KN_ERR_ALREADY_EXISTS, msg, cap,
                          "leaderboard %s exists and is not a tournament", id);
    if (!kn_lb__same_board(&known->meta, &s->board) || !same_tour(&known->tour, s))
        return kn_err_msg(KN_ERR_ALREADY_EXISTS, msg, cap,
                          "tournament %s exists with other settings", id);
    return KN_OK;
}

int kn_tournament_create(kn_leaderboards *lbs, kn_db *db, const kn_tournament_spec *s, char *msg,
                         size_t cap)
{
    const kn_leaderboard_spec *bs = &s->board;
    int rc = kn_lb__check_spec(bs, msg, cap);
    if (rc || (rc = check_tour_spec(s, msg, cap))) return rc;
    /* Known (here, or in Postgres from an earlier start): only compared, so
     * a script creating it at every start keeps working after its end. */
    kn_lb_board *known = kn_lb__find(lbs, bs->id);
    if (!known && (rc = kn_lb__get(lbs, db, bs->id, &known, msg, cap)) != KN_ERR_NOT_FOUND) {
        if (rc) return rc;
    }
    if (known) return compare_known(known, s, msg, cap);
    int64_t start = s->start_time ? s->start_time : now_s(lbs);
    if (s->end_time && s->end_time <= start)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "end time must be 0 (never) or after the start time");
    char sort[4], op[4], cat[8], st[24], et[24], dur[16], size[16], maxn[16];
    snprintf(sort, sizeof sort, "%d", bs->sort_order);
    snprintf(op, sizeof op, "%d", bs->operator_);
    snprintf(cat, sizeof cat, "%d", s->category);
    snprintf(st, sizeof st, "%" PRId64, start);
    snprintf(et, sizeof et, "%" PRId64, s->end_time);
    snprintf(dur, sizeof dur, "%d", s->duration);
    snprintf(size, sizeof size, "%d", s->max_size);
    snprintf(maxn, sizeof maxn, "%d", s->max_num_score);
    const char *p[] = {bs->id,
                       bs->authoritative ? "true" : "false",
                       sort,
                       op,
                       bs->reset_schedule ? bs->reset_schedule : "",
                       bs->metadata ? bs->metadata : "{}",
                       bs->disable_ranks ? "false" : "true",
                       cat,
                       s->title ? s->title : "",
                       s->description ? s->description : "",
                       st,
                       et,
                       dur,
                       size,
                       maxn,
                       s->join_required ? "true" : "false"};
    kn_db_rows *rows = NULL;
    if ((rc = query1(db, &insert_tournament, p, &rows, msg, cap))) return rc;
    kn_db_rows_free(rows);
    /* Made now, or by another node a moment ago: compared all the same. */
    if ((rc = kn_lb__get(lbs, db, bs->id, &known, msg, cap))) return rc;
    return compare_known(known, s, msg, cap);
}

int kn_tournament_delete(kn_leaderboards *lbs, kn_db *db, const char *id, char *msg, size_t cap)
{
    kn_lb_board *b = NULL;
    int rc = get_tour(lbs, db, id, &b, msg, cap);
    return rc ? rc : kn_leaderboard_delete(lbs, db, id, msg, cap);
}

static int period_size(kn_db *db, const char *id, int64_t expiry, int64_t *size, char *msg,
                       size_t cap)
{
    char e[24];
    snprintf(e, sizeof e, "%" PRId64, expiry);
    const char *p[] = {id, e};
    kn_db_rows *rows = NULL;
    int rc = query1(db, &size_of, p, &rows, msg, cap);
    if (rc == KN_OK) *size = atoll(kn_db_rows_get(rows, 0, 0));
    kn_db_rows_free(rows);
    return rc;
}

int kn_tournament_get(kn_leaderboards *lbs, kn_db *db, const char *id, kn_tournament *out,
                      char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    kn_lb_board *b = NULL;
    int rc = get_tour(lbs, db, id, &b, msg, cap);
    int64_t size = 0;
    if (rc || (rc = period_size(db, id, current_expiry(lbs, b), &size, msg, cap))) return rc;
    if ((rc = fill(b, now_s(lbs), size, out))) {
        kn_tournament_deinit(out);
        return kn_err_msg(rc, msg, cap, "out of memory");
    }
    return KN_OK;
}

/* --- join, write, attempts ---------------------------------------------------------------------
 */

/* Joins owner to the period ending at expiry: the tournament row locked,
 * the joined members counted, then the member row, in one transaction. */
static int join_period(kn_db *db, const kn_lb_board *b, const char *owner, int64_t expiry,
                       char *msg, size_t cap)
{
    const char *id = b->meta.id;
    char e[24];
    snprintf(e, sizeof e, "%" PRId64, expiry);
    const char *p[] = {id, e, owner};
    kn_db_rows *rows = NULL;
    int rc = kn_db_begin(db);
    if (rc) return kn_db_fail(rc, msg, cap);
    if ((rc = query1(db, &lock_tournament, p, &rows, msg, cap))) goto fail;
    if (kn_db_rows_count(rows) == 0) {
        rc = kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "tournament %s does not exist", id);
        goto fail;
    }
    int64_t max = atoll(kn_db_rows_get(rows, 0, 0));
    kn_db_rows_free(rows);
    rows = NULL;
    if ((rc = query1(db, &count_members, p, &rows, msg, cap))) goto fail;
    int64_t joined = atoll(kn_db_rows_get(rows, 0, 0));
    bool already = !strcmp(kn_db_rows_get(rows, 0, 1), "t");
    kn_db_rows_free(rows);
    rows = NULL;
    if (!already && max && joined >= max) {
        rc = kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap,
                        "tournament %s is full: %" PRId64 " of %" PRId64 " have joined", id, joined,
                        max);
        goto fail;
    }
    if (!already && (rc = query1(db, &insert_member, p, NULL, msg, cap))) goto fail;
    if ((rc = kn_db_commit(db))) return kn_db_fail(rc, msg, cap);
    return KN_OK;
fail:
    kn_db_rows_free(rows);
    kn_db_rollback(db);
    return rc;
}

int kn_tournament_join(kn_leaderboards *lbs, kn_db *db, const char *id, const char *owner_id,
                       char *msg, size_t cap)
{
    int rc = kn_lb__check_owner(owner_id, msg, cap);
    kn_lb_board *b = NULL;
    if (rc || (rc = get_tour(lbs, db, id, &b, msg, cap))) return rc;
    if ((rc = check_active(b, now_s(lbs), msg, cap))) return rc;
    return join_period(db, b, owner_id, current_expiry(lbs, b), msg, cap);
}

/* A guarded write wrote nothing: says why, or joins (joining not required:
 * a first write joins) and returns KN_OK for the caller to write again. */
static int explain_refusal(kn_db *db, const kn_lb_board *b, const char *owner, int64_t expiry,
                           char *msg, size_t cap)
{
    const char *id = b->meta.id;
    char e[24];
    snprintf(e, sizeof e, "%" PRId64, expiry);
    const char *p[] = {id, e, owner};
    kn_db_rows *rows = NULL;
    int rc = query1(db, &why_refused, p, &rows, msg, cap);
    if (rc) return rc;
    bool joined = !strcmp(kn_db_rows_get(rows, 0, 0), "t");
    int64_t attempts = atoll(kn_db_rows_get(rows, 0, 1));
    int64_t used = atoll(kn_db_rows_get(rows, 0, 2));
    kn_db_rows_free(rows);
    if (!joined && b->tour.join_required)
        return kn_err_msg(KN_ERR_FAILED_PRECONDITION, msg, cap,
                          "join tournament %s before writing to it", id);
    if (!joined) return join_period(db, b, owner, expiry, msg, cap);
    int64_t allowed = b->tour.max_num_score + attempts;
    if (b->tour.max_num_score && used >= allowed)
        return kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap,
                          "no scores left in tournament %s: %" PRId64 " of %" PRId64 " used", id,
                          used, allowed < 0 ? 0 : allowed);
    /* Joined with scores left: the period changed between the two reads. */
    return kn_err_msg(KN_ERR_ABORTED, msg, cap,
                      "the request collided with a concurrent one; retry");
}

int kn_tournament_record_write(kn_leaderboards *lbs, kn_db *db, const char *id,
                               const char *owner_id, const kn_leaderboard_write_opts *o,
                               kn_leaderboard_record *out, char *msg, size_t cap)
{
    if (out) memset(out, 0, sizeof *out);
    int rc = kn_lb__check_write(owner_id, o, msg, cap);
    kn_lb_board *b = NULL;
    if (rc || (rc = get_tour(lbs, db, id, &b, msg, cap))) return rc;
    if (o->from_client && b->meta.authoritative)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "tournament %s is authoritative: only the server writes to it", id);
    if ((rc = check_active(b, now_s(lbs), msg, cap))) return rc;
    /* At most twice: a first write of a tournament that needs no join
     * joins, then writes again. */
    for (int round = 0; round < 2; round++) {
        int64_t expiry = 0;
        rc = kn_lb__write(lbs, db, b, owner_id, o, b->tour.max_num_score, out, &expiry, msg, cap);
        if (rc != KN_ERR_FAILED_PRECONDITION) return rc;
        if ((rc = explain_refusal(db, b, owner_id, expiry, msg, cap))) return rc;
    }
    return kn_err_msg(KN_ERR_ABORTED, msg, cap,
                      "the request collided with a concurrent one; retry");
}

int kn_tournament_add_attempt(kn_leaderboards *lbs, kn_db *db, const char *id, const char *owner_id,
                              int count, char *msg, size_t cap)
{
    int rc = kn_lb__check_owner(owner_id, msg, cap);
    kn_lb_board *b = NULL;
    if (rc || (rc = get_tour(lbs, db, id, &b, msg, cap))) return rc;
    if (count == 0) return KN_OK;
    if (b->tour.end_time && now_s(lbs) >= b->tour.end_time)
        return kn_err_msg(KN_ERR_FAILED_PRECONDITION, msg, cap, "tournament %s has ended", id);
    char e[24], c[16];
    snprintf(e, sizeof e, "%" PRId64, current_expiry(lbs, b));
    snprintf(c, sizeof c, "%d", count);
    const char *p[] = {id, e, owner_id, c};
    return query1(db, &add_attempts, p, NULL, msg, cap);
}

/* --- lists -------------------------------------------------------------------------------------
 */

#define CURSOR_PREFIX "tn1:"

typedef struct list_key {
    int category;
    int64_t start;
    char id[KN_LB_ID_MAX + 1];
} list_key;

static int parse_cursor(const char *c, list_key *k, char *msg, size_t cap)
{
    if (strlen(c) > KN_TOURNAMENT_CURSOR_MAX || strncmp(c, CURSOR_PREFIX, 4))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is not a tournament cursor");
    const char *at = c + 4;
    char *end = NULL;
    errno = 0;
    long cat = strtol(at, &end, 10);
    if (errno || end == at || *end != ':' || cat < 0 || cat > KN_TOURNAMENT_CATEGORY_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is malformed");
    at = end + 1;
    long long start = strtoll(at, &end, 10);
    if (errno || end == at || *end != ':' || start < 0)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is malformed");
    at = end + 1;
    if (kn_lb__check_id(at, NULL, 0))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is malformed");
    k->category = (int)cat;
    k->start = start;
    snprintf(k->id, sizeof k->id, "%s", at);
    return KN_OK;
}

int kn_tournament_cursor_check(const char *cursor, char *msg, size_t cap)
{
    list_key k;
    return cursor && *cursor ? parse_cursor(cursor, &k, msg, cap) : KN_OK;
}

static int check_query(const kn_tournament_query *q, char *msg, size_t cap)
{
    if (q->category_start < 0 || q->category_end > KN_TOURNAMENT_CATEGORY_MAX ||
        q->category_start > q->category_end)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "categories must be a range within 0-%d, not %d-%d",
                          KN_TOURNAMENT_CATEGORY_MAX, q->category_start, q->category_end);
    if (q->start_time < 0 || q->end_time < 0)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "times must not be negative");
    if (q->limit < 0 || q->limit > KN_TOURNAMENT_LIST_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d, not %d",
                          KN_TOURNAMENT_LIST_MAX, q->limit);
    return KN_OK;
}

/* The list's rows as tournaments (each board from memory, or loaded). */
static int list_fill(kn_leaderboards *lbs, kn_db *db, kn_db_rows *rows, size_t n,
                     kn_tournament *list, char *msg, size_t cap)
{
    int64_t now = now_s(lbs);
    for (size_t i = 0; i < n; i++) {
        kn_lb_board *b = NULL;
        int rc = kn_lb__get(lbs, db, kn_db_rows_get(rows, i, 0), &b, msg, cap);
        if (rc == KN_OK && !b->is_tour) rc = kn_err_msg(KN_ERR_ABORTED, msg, cap, "retry");
        if (rc) return rc;
        if (fill(b, now, atoll(kn_db_rows_get(rows, i, 3)), &list[i]))
            return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    return KN_OK;
}

int kn_tournament_list(kn_leaderboards *lbs, kn_db *db, const kn_tournament_query *q,
                       kn_tournament **out, size_t *n, char **cursor, char *msg, size_t cap)
{
    *out = NULL;
    *n = 0;
    *cursor = NULL;
    int rc = check_query(q, msg, cap);
    list_key k = {0};
    bool first = !q->cursor || !*q->cursor;
    if (rc || (!first && (rc = parse_cursor(q->cursor, &k, msg, cap)))) return rc;
    int limit = q->limit ? q->limit : KN_TOURNAMENT_LIST_MAX;
    char cs[16], ce[16], st[24], et[24], kc[16], now[24], ks[24], lim[16];
    snprintf(cs, sizeof cs, "%d", q->category_start);
    snprintf(ce, sizeof ce, "%d", q->category_end);
    snprintf(st, sizeof st, "%" PRId64, q->start_time);
    snprintf(et, sizeof et, "%" PRId64, q->end_time);
    snprintf(kc, sizeof kc, "%d", k.category);
    snprintf(now, sizeof now, "%" PRId64, now_s(lbs));
    snprintf(ks, sizeof ks, "%" PRId64, k.start);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *p[] = {cs, ce, st, et, first ? "true" : "false", kc, now, ks, k.id, lim};
    kn_db_rows *rows = NULL;
    if ((rc = query1(db, &list_page, p, &rows, msg, cap))) return rc;
    size_t got = kn_db_rows_count(rows);
    size_t count = got > (size_t)limit ? (size_t)limit : got;
    kn_tournament *list = count ? kn_calloc(count, sizeof *list) : NULL;
    if (count && !list) rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    if (rc == KN_OK) rc = list_fill(lbs, db, rows, count, list, msg, cap);
    if (rc == KN_OK && got > count) {
        size_t need = KN_TOURNAMENT_CURSOR_MAX + 1;
        if ((*cursor = kn_malloc(need)))
            snprintf(*cursor, need, CURSOR_PREFIX "%d:%" PRId64 ":%s", list[count - 1].category,
                     list[count - 1].start_time, list[count - 1].id);
        else
            rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    kn_db_rows_free(rows);
    if (rc) {
        kn_tournaments_free(list, count);
        return rc;
    }
    *out = list;
    *n = count;
    return KN_OK;
}

int kn_tournament_records_list(kn_leaderboards *lbs, kn_db *db, const kn_leaderboard_query *q,
                               kn_leaderboard_page *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    kn_lb_board *b = NULL;
    int rc = get_tour(lbs, db, q->id, &b, msg, cap);
    return rc ? rc : kn_leaderboard_records_list(lbs, db, q, out, msg, cap);
}

int kn_tournament_records_around(kn_leaderboards *lbs, kn_db *db, const char *id,
                                 const char *owner_id, int limit, int64_t expiry,
                                 kn_leaderboard_page *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    kn_lb_board *b = NULL;
    int rc = get_tour(lbs, db, id, &b, msg, cap);
    return rc ? rc
              : kn_leaderboard_records_around(lbs, db, id, owner_id, limit, expiry, out, msg, cap);
}

/* --- ends and resets ---------------------------------------------------------------------------
 */

/* Tells every joined participant of the period ending at expiry its final
 * rank, KN_NOTIFY_BATCH_MAX a send. A failure is logged; the rest go on. */
static void notify_ranks(kn_leaderboards *lbs, kn_db *db, const kn_lb_board *b, int64_t expiry,
                         bool end)
{
    char e[24];
    snprintf(e, sizeof e, "%" PRId64, expiry);
    const char *p[] = {b->meta.id, e, b->meta.sort_order == KN_LB_ASC ? "1" : "-1",
                       end ? "true" : "false"};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &final_ranks, p, &rows);
    if (rc) {
        KN_ERROR("tournament %s: final ranks not read: %s", b->meta.id, kn_err_text(rc));
        return;
    }
    size_t n = kn_db_rows_count(rows);
    kn_notify_msg notes[KN_NOTIFY_BATCH_MAX];
    for (size_t at = 0; at < n; at += KN_NOTIFY_BATCH_MAX) {
        size_t k = n - at < KN_NOTIFY_BATCH_MAX ? n - at : KN_NOTIFY_BATCH_MAX;
        for (size_t i = 0; i < k; i++)
            notes[i] =
                (kn_notify_msg){.user_id = kn_db_rows_get(rows, at + i, 0),
                                .subject = end ? "tournament ended" : "tournament period ended",
                                .content = kn_db_rows_get(rows, at + i, 1),
                                .code = KN_NOTIFY_CODE_TOURNAMENT_END,
                                .persistent = true};
        char why[256];
        if (kn_notify_send(db, lbs->out, notes, k, true, why, sizeof why))
            KN_WARN("tournament %s: %zu end notification(s) not sent: %s", b->meta.id, k, why);
    }
    kn_db_rows_free(rows);
}

static void run_callback(kn_leaderboards *lbs, kn_db *db, const kn_lb_board *b, kn_tournament_fn fn,
                         int64_t reset)
{
    if (!fn) return;
    kn_tournament t;
    int64_t size = 0;
    char msg[128];
    period_size(db, b->meta.id, reset, &size, msg, sizeof msg); /* 0 when unreadable */
    if (fill(b, now_s(lbs), size, &t) == KN_OK)
        fn(lbs->on_tour_ud, db, &t, b->tour.end_time, reset);
    kn_tournament_deinit(&t);
}

int kn_lb__tour_reset(kn_leaderboards *lbs, kn_db *db, kn_lb_board *b, int64_t ended)
{
    const kn_lb_tour *t = &b->tour;
    /* Periods before the start or after the end are not rounds of it. */
    if (ended <= t->start_time || (t->end_time && ended > t->end_time)) return 0;
    run_callback(lbs, db, b, lbs->on_tour_reset, ended);
    /* A period ending with the tournament is told by the end. */
    if (!t->end_time || ended < t->end_time) notify_ranks(lbs, db, b, ended, false);
    return 1;
}

int kn_lb__tour_end(kn_leaderboards *lbs, kn_db *db, kn_lb_board *b, int64_t now)
{
    int64_t end = b->tour.end_time;
    pthread_rwlock_wrlock(&b->rw);
    bool due = end && now >= end && !b->end_fired && !b->deleted;
    if (due) b->end_fired = true;
    pthread_rwlock_unlock(&b->rw);
    char job[KN_LB_ID_MAX + 32];
    snprintf(job, sizeof job, "tournament_end:%s", b->meta.id);
    if (!due || !kn_lb__claim(lbs, db, job, end)) return 0;
    int64_t last = kn_lb__period_end(b, end - 1); /* the period the end closed */
    run_callback(lbs, db, b, lbs->on_tour_end, last);
    notify_ranks(lbs, db, b, last, true);
    return 1;
}
