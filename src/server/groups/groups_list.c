/* groups_list: the three listings of the groups service (kn_groups.h):
 * groups by filter, a group's users, a user's groups.
 *
 * Every listing is a keyset walk: a cursor names the last row returned,
 * never an offset, so a row that does not change during a walk is seen
 * exactly once. A cursor is "<kind><tie>:<state>:<position>:<uuid>", kind
 * 'g', 'm' or 'u' (kn_groups_cursor_check); the tie binds it to its
 * listing: the state filter of 'm' and 'u', a hash of the filter of 'g'.
 * Opaque to clients (docs/groups.md). */
#include "groups_internal.h"
#include "kn_db.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_uuid.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

KN_ENTITY_DEFINE(kn_group_user_entity, kn_group_user, GROUP_USER);
KN_ENTITY_DEFINE(kn_user_group_entity, kn_user_group, USER_GROUP);

#define NIL_UUID "00000000-0000-0000-0000-000000000000"

/* $1 a LIKE pattern or NULL (both sides lowered: any case), $2 lang or
 * NULL, $3 open (-1 any), $4/$5 member bounds (0 none), after ($6, $7),
 * $8 rows. */
static const kn_db_stmt list_groups = {
    "groups_list",
    "SELECT " KN_GROUPS__COLUMNS
    " FROM groups WHERE ($1::text IS NULL OR lower(name) LIKE lower($1))"
    " AND ($2::text IS NULL OR lang_tag = $2) AND ($3::int < 0 OR open = ($3::int = 1))"
    " AND ($4::int = 0 OR edge_count >= $4::int) AND ($5::int = 0 OR edge_count <= $5::int)"
    " AND (position, id) > ($6::bigint, $7::uuid) ORDER BY position, id LIMIT $8",
    8};
static const kn_db_stmt group_exists = {"groups_exists", "SELECT 1 FROM groups WHERE id = $1", 1};
static const kn_db_stmt list_members = {
    "groups_list_members",
    "SELECT user_id::text, state, position FROM group_edge WHERE group_id = $1"
    " AND ($2::int < 0 OR state = $2::int)"
    " AND (state, position, user_id) > ($3::int, $4::bigint, $5::uuid)"
    " ORDER BY state, position, user_id LIMIT $6",
    6};
static const kn_db_stmt list_user_groups = {
    "groups_list_of_user",
    "SELECT g.id::text, COALESCE(g.creator_id::text, ''), g.name, g.description, g.avatar_url,"
    " g.lang_tag, g.metadata::text, g.open, g.edge_count, g.max_count,"
    " floor(extract(epoch FROM g.create_time))::bigint,"
    " floor(extract(epoch FROM g.update_time))::bigint, e.position, e.state"
    " FROM group_edge e JOIN groups g ON g.id = e.group_id WHERE e.user_id = $1"
    " AND ($2::int < 0 OR e.state = $2::int)"
    " AND (e.state, e.position, e.group_id) > ($3::int, $4::bigint, $5::uuid)"
    " ORDER BY e.state, e.position, e.group_id LIMIT $6",
    6};

/* Where a page starts: after (state, position, id). */
typedef struct list_key {
    int state;
    long long position;
    char id[KN_UUID_STR_LEN + 1];
} list_key;

static int check_filter(const kn_groups_filter *f, char *msg, size_t cap)
{
    int rc =
        kn_account_check_text("name prefix", f->name_prefix, KN_GROUPS_NAME_MAX, true, msg, cap);
    if (!rc && f->lang_tag && *f->lang_tag) rc = kn_account_check_lang_tag(f->lang_tag, msg, cap);
    if (rc) return rc;
    if (f->open < -1 || f->open > 1)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "open must be -1 (any), 0 or 1");
    if (f->members_min < 0 || f->members_min > KN_GROUPS_MAX_COUNT_CAP || f->members_max < 0 ||
        f->members_max > KN_GROUPS_MAX_COUNT_CAP)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "member bounds must be 0 (none) to %d",
                          KN_GROUPS_MAX_COUNT_CAP);
    if (f->members_max && f->members_min > f->members_max)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "members_min %d is above members_max %d", f->members_min, f->members_max);
    return KN_OK;
}

/* FNV-1a over the filter: ties a groups cursor to the filter it was issued for. */
static long long filter_tie(const kn_groups_filter *f)
{
    uint32_t h = 2166136261u;
    char nums[48];
    snprintf(nums, sizeof nums, "%d:%d:%d", f->open, f->members_min, f->members_max);
    const char *parts[] = {f->name_prefix ? f->name_prefix : "", f->lang_tag ? f->lang_tag : "",
                           nums};
    for (size_t i = 0; i < 3; i++)
        for (const char *p = parts[i];; p++) {
            h = (h ^ (unsigned char)*p) * 16777619u;
            if (!*p) break;
        }
    return (long long)h;
}

static int parse_cursor(const char *cursor, char kind, long long tie, list_key *k, char *msg,
                        size_t cap)
{
    char c = 0, id[KN_UUID_STR_LEN + 2] = "";
    long long t;
    int used = 0;
    if (strlen(cursor) > KN_GROUPS_CURSOR_MAX ||
        sscanf(cursor, "%c%lld:%d:%lld:%37[0-9a-f-]%n", &c, &t, &k->state, &k->position, id,
               &used) != 5 ||
        cursor[used] != '\0' || c != kind || !kn_uuid_valid(id) || k->state < 0 ||
        k->state > KN_GROUP_BANNED || k->position < 0)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is not valid");
    if (t != tie)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "cursor belongs to a listing with another filter");
    memcpy(k->id, id, sizeof k->id);
    return KN_OK;
}

int kn_groups_cursor_check(char kind, const kn_groups_filter *f, int state, const char *cursor,
                           char *msg, size_t cap)
{
    list_key k;
    return parse_cursor(cursor, kind, kind == 'g' ? filter_tie(f) : state, &k, msg, cap);
}

static char *make_cursor(char kind, long long tie, const char *state, const char *position,
                         const char *id)
{
    char *c = kn_malloc(KN_GROUPS_CURSOR_MAX + 1);
    if (c) snprintf(c, KN_GROUPS_CURSOR_MAX + 1, "%c%lld:%s:%s:%s", kind, tie, state, position, id);
    return c;
}

/* The checks and start of every listing: limit, then cursor into *k. */
static int start_list(char kind, long long tie, int *limit, const char *cursor, list_key *k,
                      char *msg, size_t cap)
{
    if (*limit == 0) *limit = KN_GROUPS_LIST_DEFAULT;
    if (*limit < 1 || *limit > KN_GROUPS_LIST_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d, not %d",
                          KN_GROUPS_LIST_MAX, *limit);
    *k = (list_key){-1, 0, NIL_UUID};
    return cursor && *cursor ? parse_cursor(cursor, kind, tie, k, msg, cap) : KN_OK;
}

static int check_state(int state, char *msg, size_t cap)
{
    if (state < KN_GROUP_ANY || state > KN_GROUP_BANNED)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "state must be -1 (all) or 0-4, not %d", state);
    return KN_OK;
}

/* One page being built: the rows of the query (limit + 1 asked: one more
 * says a page follows), the entries to return and the next cursor. */
typedef struct page {
    kn_db_rows *rows;
    size_t count; /* entries (at most limit) */
    void *items;  /* count zeroed entries */
    char *next;   /* NULL on the last page */
} page;

/* Where the cursor's parts sit in a listing's rows (state -1: always 0). */
typedef struct page_cols {
    int state, position, id;
} page_cols;

/* Runs stmt with p[0..n_fixed) and the key, limit + 1; sizes the page,
 * allocates its entries (item_size each) and the cursor of the next. On
 * failure *pg holds nothing. */
static int fetch_page(kn_db *db, const kn_db_stmt *stmt, const char **p, size_t n_fixed,
                      const list_key *k, int limit, size_t item_size, char kind, long long tie,
                      page_cols cols, page *pg, char *msg, size_t cap)
{
    char ks[12], kp[24], lim[12];
    snprintf(ks, sizeof ks, "%d", k->state);
    snprintf(kp, sizeof kp, "%lld", k->position);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    size_t i = n_fixed;
    if (stmt->nparams == 6) p[i++] = ks; /* the member listings key on state too */
    p[i++] = kp;
    p[i++] = k->id;
    p[i++] = lim;
    *pg = (page){0};
    int rc = kn_db_query(db, stmt, p, &pg->rows);
    if (rc) {
        kn_db_rows_free(pg->rows);
        pg->rows = NULL;
        return kn_db_fail(rc, msg, cap);
    }
    size_t n = kn_db_rows_count(pg->rows);
    pg->count = n > (size_t)limit ? (size_t)limit : n;
    size_t last = pg->count - 1;
    if ((pg->count && !(pg->items = kn_calloc(pg->count, item_size))) ||
        (n > pg->count &&
         !(pg->next = make_cursor(kind, tie,
                                  cols.state < 0 ? "0" : kn_db_rows_get(pg->rows, last, cols.state),
                                  kn_db_rows_get(pg->rows, last, cols.position),
                                  kn_db_rows_get(pg->rows, last, cols.id))))) {
        kn_free(pg->items);
        kn_db_rows_free(pg->rows);
        *pg = (page){0};
        return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    return KN_OK;
}

/* Ends a page: the rows go; on success the entries and cursor go out
 * (entries NULL when there are none), else `free_items` frees them. */
static int finish_page(page *pg, int rc, size_t kept, void (*free_items)(void *, size_t),
                       void **out, size_t *n_out, char **next_cursor)
{
    kn_db_rows_free(pg->rows);
    if (rc || kept == 0) {
        free_items(pg->items, pg->count);
        pg->items = NULL;
    }
    if (rc) {
        kn_free(pg->next);
        return rc;
    }
    *out = pg->items;
    *n_out = kept;
    *next_cursor = pg->next;
    return KN_OK;
}

static void free_groups(void *items, size_t n)
{
    kn_groups_free(items, n);
}

void kn_groups_free(kn_group *groups, size_t n)
{
    if (!groups) return;
    for (size_t i = 0; i < n; i++)
        kn_group_deinit(&groups[i]);
    kn_free(groups);
}

/* A LIKE pattern for names starting with prefix: '\', '%' and '_' escaped. */
static char *like_prefix(const char *prefix)
{
    size_t l = strlen(prefix);
    char *p = kn_malloc(2 * l + 2), *o = p;
    if (!p) return NULL;
    for (size_t i = 0; i < l; i++) {
        if (prefix[i] == '\\' || prefix[i] == '%' || prefix[i] == '_') *o++ = '\\';
        *o++ = prefix[i];
    }
    *o++ = '%';
    *o = '\0';
    return p;
}

int kn_groups_list(kn_db *db, const kn_groups_filter *f, int limit, const char *cursor,
                   kn_group **out, size_t *n_out, char **next_cursor, char *msg, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    *next_cursor = NULL;
    list_key k;
    long long tie = filter_tie(f);
    int rc = check_filter(f, msg, cap);
    if (rc || (rc = start_list('g', tie, &limit, cursor, &k, msg, cap))) return rc;
    char *like = f->name_prefix && *f->name_prefix ? like_prefix(f->name_prefix) : NULL;
    if (f->name_prefix && *f->name_prefix && !like)
        return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    char open[4], lo[12], hi[12];
    snprintf(open, sizeof open, "%d", f->open);
    snprintf(lo, sizeof lo, "%d", f->members_min);
    snprintf(hi, sizeof hi, "%d", f->members_max);
    const char *p[8] = {like, f->lang_tag && *f->lang_tag ? f->lang_tag : NULL, open, lo, hi};
    page pg;
    rc = fetch_page(db, &list_groups, p, 5, &k, limit, sizeof(kn_group), 'g', tie,
                    (page_cols){-1, KN_GROUPS__N_COLUMNS - 1, 0}, &pg, msg, cap);
    kn_free(like);
    if (rc) return rc;
    kn_group *groups = pg.items;
    for (size_t i = 0; rc == KN_OK && i < pg.count; i++)
        if (kn_groups__read(pg.rows, i, &groups[i]))
            rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    return finish_page(&pg, rc, pg.count, free_groups, (void **)out, n_out, next_cursor);
}

void kn_group_users_free(kn_group_user *users, size_t n)
{
    if (!users) return;
    for (size_t i = 0; i < n; i++)
        kn_user_deinit(&users[i].user);
    kn_free(users);
}

static void free_group_users(void *items, size_t n)
{
    kn_group_users_free(items, n);
}

/* The profiles of rows[0..count) (column 0 the user id) into out, in row
 * order, skipping users deleted between the two queries; *kept counts. */
static int take_profiles(kn_db *db, const kn_db_rows *rows, size_t count, kn_group_user *out,
                         size_t *kept, char *msg, size_t cap)
{
    *kept = 0;
    if (count == 0) return KN_OK;
    const char *ids[KN_GROUPS_LIST_MAX];
    for (size_t i = 0; i < count; i++)
        ids[i] = kn_db_rows_get(rows, i, 0);
    kn_user *users = NULL;
    size_t n_users = 0;
    int rc = kn_users_get(db, ids, count, NULL, 0, &users, &n_users, msg, cap);
    if (rc) return rc;
    for (size_t i = 0; i < count; i++)
        for (size_t j = 0; j < n_users; j++)
            if (users[j].username && !strcasecmp(users[j].id, ids[i])) {
                out[*kept].user = users[j];
                out[*kept].state = atoi(kn_db_rows_get(rows, i, 1));
                memset(&users[j], 0, sizeof users[j]);
                (*kept)++;
                break;
            }
    kn_users_free(users, n_users);
    return KN_OK;
}

/* The checks every member listing starts with, then its cursor into *k. */
static int start_members(char kind, const char *what, const char *id, int state, int *limit,
                         const char *cursor, list_key *k, char *msg, size_t cap)
{
    int rc = kn_groups__check_id(what, id, msg, cap);
    if (rc || (rc = check_state(state, msg, cap))) return rc;
    return start_list(kind, state, limit, cursor, k, msg, cap);
}

static int check_group(kn_db *db, const char *group_id, char *msg, size_t cap)
{
    kn_db_rows *rows = NULL;
    const char *g[] = {group_id};
    int rc = kn_db_query(db, &group_exists, g, &rows);
    size_t found = kn_db_rows_count(rows);
    kn_db_rows_free(rows);
    if (rc) return kn_db_fail(rc, msg, cap);
    if (!found) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "group %s does not exist", group_id);
    return KN_OK;
}

int kn_groups_users_list(kn_db *db, const char *group_id, int state, int limit, const char *cursor,
                         kn_group_user **out, size_t *n_out, char **next_cursor, char *msg,
                         size_t cap)
{
    *out = NULL;
    *n_out = 0;
    *next_cursor = NULL;
    list_key k;
    int rc = start_members('m', "group id", group_id, state, &limit, cursor, &k, msg, cap);
    if (rc || (rc = check_group(db, group_id, msg, cap))) return rc;
    char st[12];
    snprintf(st, sizeof st, "%d", state);
    const char *p[6] = {group_id, st};
    page pg;
    if ((rc = fetch_page(db, &list_members, p, 2, &k, limit, sizeof(kn_group_user), 'm', state,
                         (page_cols){1, 2, 0}, &pg, msg, cap)))
        return rc;
    size_t kept = 0;
    rc = take_profiles(db, pg.rows, pg.count, pg.items, &kept, msg, cap);
    return finish_page(&pg, rc, kept, free_group_users, (void **)out, n_out, next_cursor);
}

void kn_user_groups_free(kn_user_group *groups, size_t n)
{
    if (!groups) return;
    for (size_t i = 0; i < n; i++)
        kn_group_deinit(&groups[i].group);
    kn_free(groups);
}

static void free_user_groups(void *items, size_t n)
{
    kn_user_groups_free(items, n);
}

int kn_groups_user_list(kn_db *db, const char *user_id, int state, int limit, const char *cursor,
                        kn_user_group **out, size_t *n_out, char **next_cursor, char *msg,
                        size_t cap)
{
    *out = NULL;
    *n_out = 0;
    *next_cursor = NULL;
    list_key k;
    int rc = start_members('u', "user id", user_id, state, &limit, cursor, &k, msg, cap);
    if (rc) return rc;
    char st[12];
    snprintf(st, sizeof st, "%d", state);
    const char *p[6] = {user_id, st};
    page pg;
    if ((rc = fetch_page(db, &list_user_groups, p, 2, &k, limit, sizeof(kn_user_group), 'u', state,
                         (page_cols){KN_GROUPS__N_COLUMNS, KN_GROUPS__N_COLUMNS - 1, 0}, &pg, msg,
                         cap)))
        return rc;
    kn_user_group *groups = pg.items;
    for (size_t i = 0; rc == KN_OK && i < pg.count; i++) {
        groups[i].state = atoi(kn_db_rows_get(pg.rows, i, KN_GROUPS__N_COLUMNS));
        if (kn_groups__read(pg.rows, i, &groups[i].group))
            rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    return finish_page(&pg, rc, pg.count, free_user_groups, (void **)out, n_out, next_cursor);
}
