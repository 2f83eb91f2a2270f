/* leaderboard_list: the read side of the leaderboards (kn_leaderboard.h):
 * pages, owners' records, around an owner, cursors.
 *
 * The current period is read from the rank index: it gives the order, the
 * ranks and the page's owners; Postgres then gives those owners' rows by
 * primary key. An ended period (history) has no index: its page comes from
 * one statement with rank() over the period's rows.
 *
 * A cursor is "lb1:<expiry>:<score>:<subscore>:<time_us>:<owner uuid>",
 * the key of the last record of the page; the next page is everything
 * strictly after that key in the board's order, so a record that does not
 * change during a walk is seen exactly once. A previous-page cursor is
 * "lb1p:..." with the key of the first record of the page: the page before
 * is the `limit` records strictly before that key (current period only). */
#include "kn_db.h"
#include "kn_error.h"
#include "kn_leaderboard.h"
#include "kn_mem.h"
#include "kn_uuid.h"
#include "leaderboard_internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kn_db_stmt rows_of_owners = {"lb_rows_of_owners",
                                          "SELECT " KN_LB__RECORD_COLS
                                          " FROM leaderboard_record WHERE leaderboard_id = $1"
                                          " AND expiry_time = $2 AND owner_id = ANY ($3::uuid[])",
                                          3};
/* An ended period (no index): its rows with their rank() in the board's
 * order, sign 1 for an ascending board, -1 for a descending one. */
#define HISTORY_KEY(sign)                                                                          \
    "(score::numeric * " sign ", subscore::numeric * " sign ", score_time, owner_id)"
#define HISTORY_RANKED(sign)                                                                       \
    "SELECT " KN_LB__RECORD_COLS                                                                   \
    ", rank() OVER (ORDER BY " HISTORY_KEY(sign) ") AS rk, " HISTORY_KEY(                          \
        sign) " AS k FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = $2"
/* A page: $3 true from the top, else after the key ($4..$7); $8 the sign. */
static const kn_db_stmt history_page = {
    "lb_history_page",
    "SELECT * FROM (" HISTORY_RANKED(
        "$8") ") t"
              " WHERE $3::bool OR t.k > ($4::numeric * $8, $5::numeric * $8, $6::bigint, $7::uuid)"
              " ORDER BY t.k LIMIT $9",
    9};
/* The given owners' records ($3), in rank order; $4 the sign. */
static const kn_db_stmt history_owners = {
    "lb_history_owners",
    "SELECT * FROM (" HISTORY_RANKED("$4") ") t WHERE t.owner_id::uuid = ANY ($3::uuid[])"
                                           " ORDER BY t.rk",
    4};
/* Up to $4 records around owner $3 (the top when it has none), kept inside
 * the period; $5 the sign. */
static const kn_db_stmt history_around = {
    "lb_history_around",
    "WITH t AS (" HISTORY_RANKED(
        "$5") "), n AS (SELECT count(*) AS c FROM t)"
              " SELECT t.* FROM t, n WHERE t.rk >= greatest(1, least(coalesce((SELECT rk FROM t"
              " WHERE owner_id::uuid = $3::uuid) - ($4::int - 1) / 2, 1), n.c - $4::int + 1))"
              " ORDER BY t.rk LIMIT $4",
    5};

/* --- cursors -----------------------------------------------------------------------------------
 */

typedef struct cursor_key {
    int64_t expiry;
    kn_rank_entry e;
    bool back; /* the page before the key ("lb1p:") */
} cursor_key;

static bool parse_i64(const char **s, int64_t *out)
{
    const char *p = *s;
    if (*p == '-') p++;
    if (!isdigit((unsigned char)*p)) return false;
    errno = 0;
    char *end;
    long long v = strtoll(*s, &end, 10);
    if (errno || *end != ':') return false;
    *out = v;
    *s = end + 1;
    return true;
}

static int cursor_parse(const char *c, cursor_key *k, char *msg, size_t cap)
{
    memset(k, 0, sizeof *k);
    size_t len = strlen(c);
    k->back = !strncmp(c, "lb1p:", 5);
    if (len > KN_LB_CURSOR_MAX || (strncmp(c, "lb1:", 4) && !k->back))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is not a leaderboard cursor");
    const char *p = c + (k->back ? 5 : 4);
    if (!parse_i64(&p, &k->expiry) || !parse_i64(&p, &k->e.score) ||
        !parse_i64(&p, &k->e.subscore) || !parse_i64(&p, &k->e.time_us) ||
        strlen(p) != KN_RANK_OWNER_LEN || !kn_uuid_valid(p) || k->expiry < 0)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is malformed");
    for (size_t i = 0; i < KN_RANK_OWNER_LEN; i++)
        if (isupper((unsigned char)p[i]))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is malformed");
    memcpy(k->e.owner, p, KN_RANK_OWNER_LEN + 1);
    return KN_OK;
}

int kn_leaderboard_cursor_check(const char *cursor, char *msg, size_t cap)
{
    cursor_key k;
    if (!cursor || !*cursor) return KN_OK;
    return cursor_parse(cursor, &k, msg, cap);
}

static char *cursor_make_dir(int64_t expiry, const kn_rank_entry *e, bool back)
{
    char *c = kn_malloc(KN_LB_CURSOR_MAX + 1);
    if (c)
        snprintf(c, KN_LB_CURSOR_MAX + 1, "%s:%" PRId64 ":%" PRId64 ":%" PRId64 ":%" PRId64 ":%s",
                 back ? "lb1p" : "lb1", expiry, e->score, e->subscore, e->time_us, e->owner);
    return c;
}

static char *cursor_make(int64_t expiry, const kn_rank_entry *e)
{
    return cursor_make_dir(expiry, e, false);
}

/* The number of entries strictly before key in r's order. */
static int64_t count_before(kn_rank *r, const kn_rank_entry *key)
{
    int64_t first = 1;
    r->vt->after(r, key, 0, NULL, &first); /* first - 1 entries are <= key */
    kn_rank_entry cur;
    bool present = r->vt->rank_of(r, key->owner, &cur) > 0 && !kn_rank_compare(r->order, &cur, key);
    return first - 1 - (present ? 1 : 0);
}

/* --- rows for index entries --------------------------------------------------------------------
 */

static int by_owner(const void *a, const void *b)
{
    return strcmp(((const kn_leaderboard_record *)a)->owner_id,
                  ((const kn_leaderboard_record *)b)->owner_id);
}

/* The rows of the n entries' owners, in the entries' order, rank from
 * ranks[i] (NULL: first_rank + i); an owner whose row is gone meanwhile is
 * skipped. *out kn_malloc'd. */
static int rows_for(kn_db *db, const char *board, int64_t expiry, const kn_rank_entry *es, size_t n,
                    const int64_t *ranks, int64_t first_rank, bool show_ranks,
                    kn_leaderboard_record **out, size_t *n_out, char *msg, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0) return KN_OK;
    const char **owners = kn_malloc(n * sizeof *owners);
    if (!owners) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    for (size_t i = 0; i < n; i++)
        owners[i] = es[i].owner;
    char *arr = kn_db_text_array(owners, n);
    kn_free(owners);
    if (!arr) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    char exp[24];
    snprintf(exp, sizeof exp, "%" PRId64, expiry);
    const char *p[] = {board, exp, arr};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &rows_of_owners, p, &rows);
    kn_free(arr);
    if (rc) return kn_db_fail(rc, msg, cap);
    size_t m = kn_db_rows_count(rows);
    kn_leaderboard_record *found = m ? kn_calloc(m, sizeof *found) : NULL;
    kn_leaderboard_record *res = kn_calloc(n, sizeof *res);
    if ((m && !found) || !res) {
        kn_free(found);
        kn_free(res);
        kn_db_rows_free(rows);
        return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    bool nomem = false;
    for (size_t i = 0; i < m; i++) {
        kn_lb__record_from_row(rows, i, board, &found[i], NULL);
        nomem |= !found[i].metadata;
    }
    kn_db_rows_free(rows);
    if (m > 1) qsort(found, m, sizeof *found, by_owner);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        kn_leaderboard_record key;
        snprintf(key.owner_id, sizeof key.owner_id, "%s", es[i].owner);
        kn_leaderboard_record *r = m ? bsearch(&key, found, m, sizeof *found, by_owner) : NULL;
        if (!r || !r->metadata) continue;
        res[k] = *r;
        r->metadata = NULL; /* moved */
        res[k].rank = show_ranks ? (ranks ? ranks[i] : first_rank + (int64_t)i) : 0;
        k++;
    }
    kn_leaderboard_records_free(found, m);
    if (nomem) {
        kn_leaderboard_records_free(res, k);
        return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    *out = res;
    *n_out = k;
    return KN_OK;
}

void kn_leaderboard_page_free(kn_leaderboard_page *p)
{
    if (!p) return;
    kn_leaderboard_records_free(p->records, p->n_records);
    kn_leaderboard_records_free(p->owner_records, p->n_owner_records);
    kn_free(p->next_cursor);
    kn_free(p->prev_cursor);
    memset(p, 0, sizeof *p);
}

static int check_limit(int limit, int *out, char *msg, size_t cap)
{
    if (limit < 0 || limit > KN_LB_LIST_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d, not %d",
                          KN_LB_LIST_MAX, limit);
    *out = limit ? limit : KN_LB_LIST_DEFAULT;
    return KN_OK;
}

/* --- the current period ------------------------------------------------------------------------
 */

static int cmp_rank(const void *a, const void *b)
{
    int64_t x = ((const kn_leaderboard_record *)a)->rank,
            y = ((const kn_leaderboard_record *)b)->rank;
    return x < y ? -1 : x > y;
}

/* The records of the given owners that are in the index, in rank order. */
static int owners_records(kn_lb_board *b, kn_db *db, const char *const *owners, size_t n,
                          kn_leaderboard_page *out, char *msg, size_t cap)
{
    if (n == 0) return KN_OK;
    kn_rank_entry *es = kn_calloc(n, sizeof *es);
    int64_t *ranks = kn_calloc(n, sizeof *ranks);
    int rc = es && ranks ? KN_OK : kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n && rc == KN_OK; i++) {
        char lower[37];
        snprintf(lower, sizeof lower, "%s", owners[i]);
        for (char *c = lower; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = !strcmp(es[j].owner, lower);
        if (dup) continue;
        int64_t r = b->rank->vt->rank_of(b->rank, lower, &es[k]);
        if (r) ranks[k++] = r;
    }
    if (rc == KN_OK)
        rc = rows_for(db, b->meta.id, b->expiry, es, k, ranks, 0, b->meta.enable_ranks,
                      &out->owner_records, &out->n_owner_records, msg, cap);
    if (rc == KN_OK && b->meta.enable_ranks && out->n_owner_records > 1)
        qsort(out->owner_records, out->n_owner_records, sizeof *out->owner_records, cmp_rank);
    kn_free(es);
    kn_free(ranks);
    return rc;
}

static int history_list(kn_lb_board *b, kn_db *db, const kn_leaderboard_query *q, int limit,
                        const cursor_key *key, kn_leaderboard_page *out, char *msg, size_t cap);
static int history_around_page(kn_lb_board *b, kn_db *db, const char *owner, int limit,
                               int64_t expiry, kn_leaderboard_page *out, char *msg, size_t cap);

int kn_leaderboard_records_list(kn_leaderboards *lbs, kn_db *db, const kn_leaderboard_query *q,
                                kn_leaderboard_page *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    int limit;
    int rc = check_limit(q->limit, &limit, msg, cap);
    if (rc) return rc;
    if (q->limit == 0 && q->n_owner_ids) limit = 0; /* only the owners' records */
    if (q->n_owner_ids > KN_LB_OWNERS_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "at most %d owner ids per call",
                          KN_LB_OWNERS_MAX);
    for (size_t i = 0; i < q->n_owner_ids; i++)
        if ((rc = kn_lb__check_owner(q->owner_ids[i], msg, cap))) return rc;
    if (q->expiry < 0)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "expiry must not be negative");
    cursor_key key;
    bool has_key = q->cursor && *q->cursor;
    if (has_key && (rc = cursor_parse(q->cursor, &key, msg, cap))) return rc;
    kn_lb_board *b = NULL;
    if ((rc = kn_lb__get(lbs, db, q->id, &b, msg, cap))) return rc;
    kn_lb__enter(lbs, b, false);
    int64_t expiry = q->expiry ? q->expiry : b->expiry;
    if (has_key && key.expiry != expiry) {
        kn_lb__leave(b);
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "cursor belongs to another period of the board");
    }
    if (expiry != b->expiry) {
        kn_lb__leave(b);
        if (has_key && key.back)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "previous-page cursors work on the current period only");
        return history_list(b, db, q, limit, has_key ? &key : NULL, out, msg, cap);
    }
    kn_rank_entry *es = kn_calloc((size_t)limit + 1, sizeof *es);
    if (!es) {
        kn_lb__leave(b);
        return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    int64_t first = 1, count = (int64_t)b->rank->vt->count(b->rank);
    size_t got = 0;
    if (limit && has_key && key.back) { /* the `limit` records before the key */
        int64_t before = count_before(b->rank, &key.e);
        first = before - limit + 1 < 1 ? 1 : before - limit + 1;
        if (before >= first)
            got = b->rank->vt->range(b->rank, first, (size_t)(before - first + 1), es);
    } else if (limit) {
        got = b->rank->vt->after(b->rank, has_key ? &key.e : NULL, (size_t)limit + 1, es, &first);
    }
    if (got > (size_t)limit) got = (size_t)limit;
    bool more = got && first + (int64_t)got - 1 < count;
    out->rank_count = count;
    rc = rows_for(db, b->meta.id, expiry, es, got, NULL, first, b->meta.enable_ranks, &out->records,
                  &out->n_records, msg, cap);
    if (rc == KN_OK && more && !(out->next_cursor = cursor_make(expiry, &es[got - 1])))
        rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    if (rc == KN_OK && got && first > 1 &&
        !(out->prev_cursor = cursor_make_dir(expiry, &es[0], true)))
        rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    if (rc == KN_OK) rc = owners_records(b, db, q->owner_ids, q->n_owner_ids, out, msg, cap);
    kn_lb__leave(b);
    kn_free(es);
    if (rc) kn_leaderboard_page_free(out);
    return rc;
}

int kn_leaderboard_records_around(kn_leaderboards *lbs, kn_db *db, const char *id,
                                  const char *owner_id, int limit, int64_t expiry,
                                  kn_leaderboard_page *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    int rc = check_limit(limit, &limit, msg, cap);
    if (rc || (rc = kn_lb__check_owner(owner_id, msg, cap))) return rc;
    kn_lb_board *b = NULL;
    if ((rc = kn_lb__get(lbs, db, id, &b, msg, cap))) return rc;
    if (expiry < 0)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "expiry must not be negative");
    kn_lb__enter(lbs, b, false);
    if (expiry && expiry != b->expiry) {
        kn_lb__leave(b);
        return history_around_page(b, db, owner_id, limit, expiry, out, msg, cap);
    }
    char lower[37];
    snprintf(lower, sizeof lower, "%s", owner_id);
    for (char *c = lower; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    kn_rank_entry *es = kn_calloc((size_t)limit, sizeof *es);
    if (!es) {
        kn_lb__leave(b);
        return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    int64_t count = (int64_t)b->rank->vt->count(b->rank);
    int64_t r = b->rank->vt->rank_of(b->rank, lower, NULL);
    int64_t start = r ? r - (limit - 1) / 2 : 1;
    if (start + limit - 1 > count) start = count - limit + 1;
    if (start < 1) start = 1;
    size_t got = b->rank->vt->range(b->rank, start, (size_t)limit, es);
    out->rank_count = count;
    rc = rows_for(db, b->meta.id, b->expiry, es, got, NULL, start, b->meta.enable_ranks,
                  &out->records, &out->n_records, msg, cap);
    if (rc == KN_OK && got && start + (int64_t)got <= count &&
        !(out->next_cursor = cursor_make(b->expiry, &es[got - 1])))
        rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    if (rc == KN_OK && got && start > 1 &&
        !(out->prev_cursor = cursor_make_dir(b->expiry, &es[0], true)))
        rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    kn_lb__leave(b);
    kn_free(es);
    if (rc) kn_leaderboard_page_free(out);
    return rc;
}

int kn_leaderboard_cursor_from_rank(kn_leaderboards *lbs, const char *id, int64_t rank,
                                    char **cursor, char *msg, size_t cap)
{
    *cursor = NULL;
    kn_lb_board *b = NULL;
    int rc = kn_lb__get(lbs, NULL, id, &b, msg, cap);
    if (rc) return rc;
    if (rank < 1) return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "rank must be 1 or more");
    kn_lb__enter(lbs, b, false);
    int64_t count = (int64_t)b->rank->vt->count(b->rank);
    kn_rank_entry e;
    if (rank > count) {
        kn_lb__leave(b);
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap,
                          "rank %" PRId64 " is past the board's %" PRId64 " records", rank, count);
    }
    if (rank == 1) {
        kn_lb__leave(b);
        *cursor = kn_strdup("");
        return *cursor ? KN_OK : kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    b->rank->vt->range(b->rank, rank - 1, 1, &e);
    *cursor = cursor_make(b->expiry, &e);
    kn_lb__leave(b);
    return *cursor ? KN_OK : kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
}

/* --- history -----------------------------------------------------------------------------------
 */

/* Records of history rows (RECORD_COLS, then rk at 11) into *out; the
 * last one's key into *last when non-NULL. */
static int history_rows(kn_lb_board *b, kn_db_rows *rows, size_t n, kn_leaderboard_record **out,
                        size_t *n_out, kn_rank_entry *last, char *msg, size_t cap)
{
    *out = n ? kn_calloc(n, sizeof **out) : NULL;
    if (n && !*out) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    kn_rank_entry e;
    for (size_t i = 0; i < n; i++) {
        kn_lb__record_from_row(rows, i, b->meta.id, &(*out)[i], &e);
        *n_out = i + 1;
        (*out)[i].rank = b->meta.enable_ranks ? atoll(kn_db_rows_get(rows, i, 11)) : 0;
        if (!(*out)[i].metadata) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
        if (last) *last = e;
    }
    return KN_OK;
}

static const char *sign_of(const kn_lb_board *b)
{
    return b->meta.sort_order == KN_LB_ASC ? "1" : "-1";
}

/* The records of q's owner ids in the ended period q->expiry. */
static int history_owner_records(kn_lb_board *b, kn_db *db, const kn_leaderboard_query *q,
                                 kn_leaderboard_page *out, char *msg, size_t cap)
{
    if (!q->n_owner_ids) return KN_OK;
    char exp[24];
    snprintf(exp, sizeof exp, "%" PRId64, q->expiry);
    char *arr = kn_db_text_array(q->owner_ids, q->n_owner_ids);
    if (!arr) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    const char *p[] = {b->meta.id, exp, arr, sign_of(b)};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &history_owners, p, &rows);
    kn_free(arr);
    if (rc) return kn_db_fail(rc, msg, cap);
    rc = history_rows(b, rows, kn_db_rows_count(rows), &out->owner_records, &out->n_owner_records,
                      NULL, msg, cap);
    kn_db_rows_free(rows);
    return rc;
}

static int history_list(kn_lb_board *b, kn_db *db, const kn_leaderboard_query *q, int limit,
                        const cursor_key *key, kn_leaderboard_page *out, char *msg, size_t cap)
{
    int rc = KN_OK;
    if (limit > 0) { /* limit 0 with owner ids: only theirs */
        char exp[24], s[24], ss[24], t[24], lim[24];
        snprintf(exp, sizeof exp, "%" PRId64, q->expiry);
        snprintf(s, sizeof s, "%" PRId64, key ? key->e.score : 0);
        snprintf(ss, sizeof ss, "%" PRId64, key ? key->e.subscore : 0);
        snprintf(t, sizeof t, "%" PRId64, key ? key->e.time_us : 0);
        snprintf(lim, sizeof lim, "%d", limit + 1);
        const char *p[] = {b->meta.id,
                           exp,
                           key ? "false" : "true",
                           s,
                           ss,
                           t,
                           key ? key->e.owner : "00000000-0000-0000-0000-000000000000",
                           sign_of(b),
                           lim};
        kn_db_rows *rows = NULL;
        if ((rc = kn_db_query(db, &history_page, p, &rows))) return kn_db_fail(rc, msg, cap);
        size_t n = kn_db_rows_count(rows);
        bool more = n > (size_t)limit;
        kn_rank_entry last = {0};
        rc = history_rows(b, rows, more ? (size_t)limit : n, &out->records, &out->n_records, &last,
                          msg, cap);
        kn_db_rows_free(rows);
        if (rc == KN_OK && more && !(out->next_cursor = cursor_make(q->expiry, &last)))
            rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    if (rc == KN_OK) rc = history_owner_records(b, db, q, out, msg, cap);
    if (rc) kn_leaderboard_page_free(out);
    return rc;
}

/* Around owner in the ended period `expiry`: ranks from SQL. */
static int history_around_page(kn_lb_board *b, kn_db *db, const char *owner, int limit,
                               int64_t expiry, kn_leaderboard_page *out, char *msg, size_t cap)
{
    char exp[24], lim[24];
    snprintf(exp, sizeof exp, "%" PRId64, expiry);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {b->meta.id, exp, owner, lim, sign_of(b)};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &history_around, p, &rows);
    if (rc) return kn_db_fail(rc, msg, cap);
    rc = history_rows(b, rows, kn_db_rows_count(rows), &out->records, &out->n_records, NULL, msg,
                      cap);
    kn_db_rows_free(rows);
    if (rc) kn_leaderboard_page_free(out);
    return rc;
}
