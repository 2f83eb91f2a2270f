/* friends: the friends service over Postgres (contract in kn_friends.h,
 * prose in docs/friends.md).
 *
 * Invariants:
 *   - every input is validated before the database is touched;
 *   - add, delete and block are one transaction that starts by locking the
 *     users rows of the caller and the targets in id order (FOR NO KEY
 *     UPDATE: it does not block foreign-key checks, which take KEY SHARE),
 *     so two calls on the same pair serialize and cannot deadlock; every
 *     state read after the lock is the committed one (READ COMMITTED takes
 *     a fresh snapshot per statement);
 *   - an edge's position is set whenever its state changes, from the clock
 *     in microseconds; list cursors are (filter, state, position, id);
 *   - list profiles come from kn_users_get, so a friend shows exactly what
 *     any player sees of that user. */
#include "kn_friends.h"
#include "kn_auth.h"
#include "kn_db.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_mem.h"
#include "kn_uuid.h"

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

KN_ENTITY_DEFINE(kn_friend_entity, kn_friend, FRIEND);

#define NIL_UUID "00000000-0000-0000-0000-000000000000"
#define POSITION "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"

/* The caller's row and the targets', locked in id order; `named` is true
 * for a row a target names (the caller's own row when they name themself). */
static const kn_db_stmt lock_users = {
    "friends_lock_users",
    "SELECT id::text, (id = ANY ($2::uuid[]) OR username = ANY ($3::text[])) FROM users"
    " WHERE (id = $1::uuid OR id = ANY ($2::uuid[]) OR username = ANY ($3::text[]))"
    " AND id <> '" NIL_UUID "' ORDER BY id FOR NO KEY UPDATE",
    3};
/* The caller's state towards the target, then the target's towards the caller. */
static const kn_db_stmt pair_states = {
    "friends_pair_states",
    "SELECT (SELECT state FROM user_edge WHERE source_id = $1 AND destination_id = $2),"
    " (SELECT state FROM user_edge WHERE source_id = $2 AND destination_id = $1)",
    2};
static const kn_db_stmt count_edges = {
    "friends_count", "SELECT count(*) FROM user_edge WHERE source_id = $1 AND state < 3", 1};
static const kn_db_stmt insert_invite = {
    "friends_invite",
    "INSERT INTO user_edge (source_id, destination_id, state, position)"
    " VALUES ($1, $2, 1, " POSITION "), ($2, $1, 2, " POSITION ")",
    2};
static const kn_db_stmt accept_invite = {
    "friends_accept",
    "UPDATE user_edge SET state = 0, position = " POSITION ", update_time = now()"
    " WHERE (source_id = $1 AND destination_id = $2) OR (source_id = $2 AND destination_id = $1)",
    2};
/* The target's block on the caller survives a delete and a block. */
static const kn_db_stmt delete_pair = {
    "friends_delete",
    "DELETE FROM user_edge WHERE (source_id = $1 AND destination_id = $2)"
    " OR (source_id = $2 AND destination_id = $1 AND state <> 3)",
    2};
static const kn_db_stmt block_one = {
    "friends_block",
    "INSERT INTO user_edge (source_id, destination_id, state, position)"
    " VALUES ($1, $2, 3, " POSITION ") ON CONFLICT (source_id, destination_id) DO UPDATE"
    " SET state = 3, position = EXCLUDED.position, update_time = now()"
    " WHERE user_edge.state <> 3",
    2};
static const kn_db_stmt unlink_other = {
    "friends_unlink_other",
    "DELETE FROM user_edge WHERE source_id = $2 AND destination_id = $1 AND state <> 3", 2};
static const kn_db_stmt set_metadata = {
    "friends_set_metadata",
    "UPDATE user_edge SET metadata = $3::jsonb" /* update_time stays: when the state was taken */
    " WHERE source_id = $1 AND destination_id = $2 AND ($4::bool OR state IN (0, 1))"
    " RETURNING 1",
    4};
/* Keyset page: strictly after ($3, $4, $5); $2 < 0 lists every state. */
static const kn_db_stmt list_page = {
    "friends_list",
    "SELECT destination_id::text, state, position, floor(extract(epoch FROM update_time))::bigint,"
    " metadata::text FROM user_edge WHERE source_id = $1 AND ($2::int < 0 OR state = $2::int)"
    " AND (state, position, destination_id) > ($3::int, $4::bigint, $5::uuid)"
    " ORDER BY state, position, destination_id LIMIT $6",
    6};
/* Friends (0) of the caller's friends after ($2, $3) in (referrer, user)
 * order: never the caller or the caller's friends, nobody blocked either
 * way with the caller. */
static const kn_db_stmt fof_page = {
    "friends_of_friends",
    "SELECT f.destination_id::text, f.source_id::text FROM user_edge m"
    " JOIN user_edge f ON f.source_id = m.destination_id AND f.state = 0"
    " WHERE m.source_id = $1 AND m.state = 0 AND f.destination_id <> $1"
    " AND NOT EXISTS (SELECT 1 FROM user_edge b WHERE"
    " (b.source_id = $1 AND b.destination_id = f.destination_id AND b.state IN (0, 3)) OR"
    " (b.source_id = f.destination_id AND b.destination_id = $1 AND b.state = 3))"
    " AND (f.source_id, f.destination_id) > ($2::uuid, $3::uuid)"
    " ORDER BY f.source_id, f.destination_id LIMIT $4",
    4};

static int check_user(const char *user_id, char *msg, size_t cap)
{
    if (!user_id || !kn_uuid_valid(user_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user id must be a UUID");
    return KN_OK;
}

static int check_targets(const char *me, const char *const *ids, size_t n_ids,
                         const char *const *usernames, size_t n_usernames, char *msg, size_t cap)
{
    int rc = check_user(me, msg, cap);
    if (rc) return rc;
    if (n_ids > KN_FRIENDS_BATCH_MAX || n_usernames > KN_FRIENDS_BATCH_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "at most %d ids and %d usernames per call", KN_FRIENDS_BATCH_MAX,
                          KN_FRIENDS_BATCH_MAX);
    for (size_t i = 0; i < n_ids; i++) {
        if (!ids[i] || !kn_uuid_valid(ids[i]))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "id %zu is not a UUID", i);
        if (!strcasecmp(ids[i], me))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "you cannot befriend, delete or block yourself");
    }
    for (size_t i = 0; i < n_usernames; i++)
        if ((rc = kn_auth_check_username(usernames[i], msg, cap))) return rc;
    return KN_OK;
}

/* The JSON parser also refuses broken UTF-8 and \u0000, which jsonb cannot store. */
static int check_metadata(const char *s, char *msg, size_t cap)
{
    size_t len = strlen(s);
    if (len > KN_FRIEND_METADATA_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "metadata is %zu bytes; the limit is %d", len, KN_FRIEND_METADATA_MAX);
    kn_json *j = kn_json_parse(s, len, 0, NULL);
    bool object = kn_json_is_object(j);
    kn_json_decref(j);
    if (!object)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "metadata must be a JSON object");
    return KN_OK;
}

/* What one verb does to one (locked) pair; o->ev collects what happened. */
typedef int (*pair_fn)(kn_db *db, const char *me, const char *other, const kn_friends_add_opts *o,
                       char *msg, size_t cap);

static int states_of(kn_db *db, const char *me, const char *other, int *mine, int *theirs)
{
    kn_db_rows *rows = NULL;
    const char *p[] = {me, other};
    int rc = kn_db_query(db, &pair_states, p, &rows);
    if (rc == KN_OK) {
        const char *a = kn_db_rows_get(rows, 0, 0), *b = kn_db_rows_get(rows, 0, 1);
        *mine = a ? atoi(a) : -1;
        *theirs = b ? atoi(b) : -1;
    }
    kn_db_rows_free(rows);
    return rc;
}

static int run(kn_db *db, const kn_db_stmt *stmt, const char *me, const char *other)
{
    const char *p[] = {me, other};
    return kn_db_query(db, stmt, p, NULL);
}

/* Refuses a new invite when `who` is at the limit (max friends and invites). */
static int check_room(kn_db *db, const char *who, bool is_caller, int max, char *msg, size_t cap)
{
    kn_db_rows *rows = NULL;
    const char *p[] = {who};
    int rc = kn_db_query(db, &count_edges, p, &rows);
    long n = rc ? 0 : atol(kn_db_rows_get(rows, 0, 0));
    kn_db_rows_free(rows);
    if (rc) return kn_db_fail(rc, msg, cap);
    if (n < max) return KN_OK;
    if (is_caller)
        return kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap,
                          "you have %ld friends and invites; the limit is %d", n, max);
    return kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap,
                      "user %s has %ld friends and invites; the limit is %d", who, n, max);
}

/* Notes what an add did to the pair (ev NULL: nobody asked). */
static void note_event(kn_friend_events *ev, int kind, const char *other)
{
    if (!ev || ev->n >= KN_FRIENDS_EVENTS_MAX) return;
    ev->items[ev->n].kind = kind;
    snprintf(ev->items[ev->n].user_id, sizeof ev->items[ev->n].user_id, "%s", other);
    ev->n++;
}

/* The add's metadata on the caller's edge, when it is a friendship or an invite. */
static int put_metadata(kn_db *db, const char *me, const char *other, const char *metadata)
{
    if (!metadata) return KN_OK;
    const char *p[] = {me, other, metadata, "false"};
    return kn_db_query(db, &set_metadata, p, NULL);
}

static int add_pair(kn_db *db, const char *me, const char *other, const kn_friends_add_opts *o,
                    char *msg, size_t cap)
{
    int max = o->max_friends > 0 ? o->max_friends : KN_FRIENDS_MAX_DEFAULT;
    int mine, theirs;
    int rc = states_of(db, me, other, &mine, &theirs);
    if (rc) return kn_db_fail(rc, msg, cap);
    if (theirs == KN_FRIEND_BLOCKED) return KN_OK; /* silently, as Nakama */
    if (mine == KN_FRIEND_BLOCKED)
        return kn_err_msg(KN_ERR_FAILED_PRECONDITION, msg, cap,
                          "you blocked user %s; delete the block before adding them", other);
    if (mine == KN_FRIEND_MUTUAL || mine == KN_FRIEND_INVITED) {
        rc = put_metadata(db, me, other, o->metadata);
        return rc ? kn_db_fail(rc, msg, cap) : KN_OK;
    }
    int kind = KN_FRIEND_EVENT_ACCEPTED;
    if (mine == KN_FRIEND_INVITER)
        rc = run(db, &accept_invite, me, other);
    else if ((rc = check_room(db, me, true, max, msg, cap)) ||
             (rc = check_room(db, other, false, max, msg, cap)))
        return rc;
    else {
        rc = run(db, &insert_invite, me, other);
        kind = KN_FRIEND_EVENT_INVITED;
    }
    if (rc == KN_OK) rc = put_metadata(db, me, other, o->metadata);
    if (rc) return kn_db_fail(rc, msg, cap);
    note_event(o->ev, kind, other);
    return KN_OK;
}

static int delete_pair_fn(kn_db *db, const char *me, const char *other,
                          const kn_friends_add_opts *o, char *msg, size_t cap)
{
    int mine = -1, theirs;
    int rc = o->ev ? states_of(db, me, other, &mine, &theirs) : KN_OK;
    if (rc == KN_OK) rc = run(db, &delete_pair, me, other);
    if (rc) return kn_db_fail(rc, msg, cap);
    if (mine == KN_FRIEND_MUTUAL) note_event(o->ev, KN_FRIEND_EVENT_REMOVED, other);
    return KN_OK;
}

static int block_pair(kn_db *db, const char *me, const char *other, const kn_friends_add_opts *o,
                      char *msg, size_t cap)
{
    int rc = run(db, &block_one, me, other);
    if (rc == KN_OK) rc = run(db, &unlink_other, me, other);
    if (rc) return kn_db_fail(rc, msg, cap);
    note_event(o->ev, KN_FRIEND_EVENT_BLOCKED, other);
    return KN_OK;
}

/* Locks the pairs, applies `fn` to each existing target, commits. */
static int apply(kn_db *db, const char *me, const char *const *ids, size_t n_ids,
                 const char *const *usernames, size_t n_usernames, pair_fn fn,
                 const kn_friends_add_opts *o, char *msg, size_t cap)
{
    kn_friend_events *ev = o->ev;
    if (ev) ev->n = 0;
    int rc = check_targets(me, ids, n_ids, usernames, n_usernames, msg, cap);
    if (rc == KN_OK && o->metadata) rc = check_metadata(o->metadata, msg, cap);
    if (rc || (n_ids == 0 && n_usernames == 0)) return rc;
    char *id_list = kn_db_text_array(ids, n_ids);
    char *name_list = kn_db_text_array(usernames, n_usernames);
    kn_db_rows *rows = NULL;
    if (!id_list || !name_list) {
        rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
        goto done;
    }
    if ((rc = kn_db_begin(db))) {
        kn_db_fail(rc, msg, cap);
        goto done;
    }
    const char *p[] = {me, id_list, name_list};
    if ((rc = kn_db_query(db, &lock_users, p, &rows))) {
        kn_db_fail(rc, msg, cap);
        goto rollback;
    }
    size_t n = kn_db_rows_count(rows);
    bool found_me = false;
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(kn_db_rows_get(rows, i, 0), me)) {
            found_me = true;
            if (!strcmp(kn_db_rows_get(rows, i, 1), "t")) {
                rc = kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                                "you cannot befriend, delete or block yourself");
                goto rollback;
            }
        }
    if (!found_me) {
        rc = kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user %s does not exist", me);
        goto rollback;
    }
    for (size_t i = 0; i < n && rc == KN_OK; i++) {
        const char *other = kn_db_rows_get(rows, i, 0);
        if (strcasecmp(other, me)) rc = fn(db, me, other, o, msg, cap);
    }
    if (rc) goto rollback;
    if ((rc = kn_db_commit(db))) kn_db_fail(rc, msg, cap);
    goto done;
rollback:
    kn_db_rollback(db);
done:
    if (rc && ev) ev->n = 0; /* nothing happened */
    kn_db_rows_free(rows);
    kn_free(id_list);
    kn_free(name_list);
    return rc;
}

static const kn_friends_add_opts no_opts;

int kn_friends_add(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                   const char *const *usernames, size_t n_usernames, char *msg, size_t cap)
{
    return apply(db, user_id, ids, n_ids, usernames, n_usernames, add_pair, &no_opts, msg, cap);
}

int kn_friends_add_events(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                          const char *const *usernames, size_t n_usernames, kn_friend_events *ev,
                          char *msg, size_t cap)
{
    kn_friends_add_opts o = {.ev = ev};
    return apply(db, user_id, ids, n_ids, usernames, n_usernames, add_pair, &o, msg, cap);
}

int kn_friends_add_ex(kn_db *db, const kn_friends_add_opts *opts, const char *user_id,
                      const char *const *ids, size_t n_ids, const char *const *usernames,
                      size_t n_usernames, char *msg, size_t cap)
{
    return apply(db, user_id, ids, n_ids, usernames, n_usernames, add_pair, opts ? opts : &no_opts,
                 msg, cap);
}

int kn_friends_delete(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                      const char *const *usernames, size_t n_usernames, char *msg, size_t cap)
{
    return apply(db, user_id, ids, n_ids, usernames, n_usernames, delete_pair_fn, &no_opts, msg,
                 cap);
}

int kn_friends_delete_events(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                             const char *const *usernames, size_t n_usernames, kn_friend_events *ev,
                             char *msg, size_t cap)
{
    kn_friends_add_opts o = {.ev = ev};
    return apply(db, user_id, ids, n_ids, usernames, n_usernames, delete_pair_fn, &o, msg, cap);
}

int kn_friends_block(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                     const char *const *usernames, size_t n_usernames, char *msg, size_t cap)
{
    return apply(db, user_id, ids, n_ids, usernames, n_usernames, block_pair, &no_opts, msg, cap);
}

int kn_friends_metadata_update(kn_db *db, const char *user_id, const char *friend_id,
                               const char *metadata, char *msg, size_t cap)
{
    int rc = check_user(user_id, msg, cap);
    if (rc) return rc;
    if (!friend_id || !kn_uuid_valid(friend_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "friend id must be a UUID");
    if ((rc = check_metadata(metadata ? metadata : "", msg, cap))) return rc;
    const char *p[] = {user_id, friend_id, metadata, "true"};
    kn_db_rows *rows = NULL;
    rc = kn_db_query(db, &set_metadata, p, &rows);
    size_t n = rc ? 0 : kn_db_rows_count(rows);
    kn_db_rows_free(rows);
    if (rc) return kn_db_fail(rc, msg, cap);
    if (n == 0)
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "you have no relationship with user %s",
                          friend_id);
    return KN_OK;
}

int kn_friends_block_events(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                            const char *const *usernames, size_t n_usernames, kn_friend_events *ev,
                            char *msg, size_t cap)
{
    kn_friends_add_opts o = {.ev = ev};
    return apply(db, user_id, ids, n_ids, usernames, n_usernames, block_pair, &o, msg, cap);
}

void kn_friends_tell_blocks(const kn_friends_deps *deps, const char *user_id,
                            const kn_friend_events *ev)
{
    if (!deps || !deps->blocked || !ev) return;
    for (size_t i = 0; i < ev->n; i++)
        if (ev->items[i].kind == KN_FRIEND_EVENT_BLOCKED)
            deps->blocked(deps->blocked_ud, user_id, ev->items[i].user_id);
}

/* --- list ------------------------------------------------------------------------------------ */

/* Where a page starts: after (state, position, id). */
typedef struct list_key {
    int state;
    long long position;
    char id[KN_UUID_STR_LEN + 1];
} list_key;

/* A cursor is "f<filter>:<state>:<position>:<id>"; the filter ties it to
 * its listing. Opaque to clients (docs/friends.md). */
static int parse_cursor(const char *cursor, int filter, list_key *k, char *msg, size_t cap)
{
    int f, used = 0;
    char id[KN_UUID_STR_LEN + 2] = "";
    if (strlen(cursor) > KN_FRIENDS_CURSOR_MAX ||
        sscanf(cursor, "f%d:%d:%lld:%37[0-9a-f-]%n", &f, &k->state, &k->position, id, &used) != 4 ||
        cursor[used] != '\0' || !kn_uuid_valid(id) || k->state < 0 || k->state > 3 ||
        k->position < 0)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is not valid");
    if (f != filter)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "cursor belongs to a listing of another state");
    memcpy(k->id, id, sizeof k->id);
    return KN_OK;
}

int kn_friends_cursor_check(const char *cursor, int state, char *msg, size_t cap)
{
    list_key k;
    return parse_cursor(cursor, state, &k, msg, cap);
}

void kn_friends_free(kn_friend *friends, size_t n)
{
    if (!friends) return;
    for (size_t i = 0; i < n; i++) {
        kn_user_deinit(&friends[i].user);
        kn_free(friends[i].metadata);
    }
    kn_free(friends);
}

/* A deep copy of src's strings into *dst; false when out of memory (dst
 * then holds what was copied, for kn_user_deinit). */
static bool copy_user(kn_user *dst, const kn_user *src)
{
    *dst = *src;
    char **fields[] = {&dst->username, &dst->display_name, &dst->avatar_url, &dst->lang_tag,
                       &dst->location, &dst->timezone,     &dst->metadata};
    bool ok = true;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (*fields[i] && !(*fields[i] = kn_strdup(*fields[i]))) ok = false;
    return ok;
}

/* Puts the profile of `id` from users[0..n) into *dst: a copy when `again`
 * (another entry of the page needs it too: friends of friends repeat a
 * user per referrer), else moved out. Absent (0) when the user is gone
 * (deleted between the two queries: its edges went with it); -1 when out
 * of memory; 1 when placed. */
static int take_user(kn_user *users, size_t n, const char *id, bool again, kn_user *dst)
{
    for (size_t i = 0; i < n; i++)
        if (users[i].username && !strcasecmp(users[i].id, id)) {
            if (again) return copy_user(dst, &users[i]) ? 1 : -1;
            *dst = users[i];
            memset(&users[i], 0, sizeof users[i]);
            return 1;
        }
    return 0;
}

/* Fills the rest of an entry from its row, its user already in place;
 * false when out of memory. */
typedef bool (*fill_fn)(void *entry, const kn_db_rows *rows, size_t row);

/* Fills entries out[0..count) (each `size` bytes with its kn_user at
 * `user_at`) from rows whose column 0 is the user id, fetching profiles in
 * chunks of what kn_users_get takes; *kept counts the entries whose user
 * still exists. */
static int fill_profiles(kn_db *db, const kn_db_rows *rows, size_t count, void *out, size_t size,
                         size_t user_at, fill_fn fill, size_t *kept, char *msg, size_t cap)
{
    *kept = 0;
    for (size_t base = 0; base < count; base += KN_USERS_GET_MAX) {
        size_t m = count - base < KN_USERS_GET_MAX ? count - base : KN_USERS_GET_MAX;
        const char *ids[KN_USERS_GET_MAX];
        for (size_t i = 0; i < m; i++)
            ids[i] = kn_db_rows_get(rows, base + i, 0);
        kn_user *users = NULL;
        size_t n_users = 0;
        int rc = kn_users_get(db, ids, m, NULL, 0, &users, &n_users, msg, cap);
        if (rc) return rc;
        for (size_t i = 0; i < m && rc == KN_OK; i++) {
            char *entry = (char *)out + *kept * size;
            bool again = false;
            for (size_t j = i + 1; j < m && !again; j++)
                again = !strcasecmp(ids[i], ids[j]);
            int took = take_user(users, n_users, ids[i], again, (kn_user *)(entry + user_at));
            if (took == 0) continue;
            (*kept)++;
            if (took < 0 || !fill(entry, rows, base + i))
                rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
        }
        kn_users_free(users, n_users);
        if (rc) return rc;
    }
    return KN_OK;
}

static bool fill_friend(void *entry, const kn_db_rows *rows, size_t row)
{
    kn_friend *f = entry;
    f->state = atoi(kn_db_rows_get(rows, row, 1));
    f->update_time = strtoll(kn_db_rows_get(rows, row, 3), NULL, 10);
    f->metadata = kn_strdup(kn_db_rows_get(rows, row, 4));
    return f->metadata != NULL;
}

static char *make_cursor(int filter, const kn_db_rows *rows, size_t last)
{
    char *c = kn_malloc(KN_FRIENDS_CURSOR_MAX + 1);
    if (c)
        snprintf(c, KN_FRIENDS_CURSOR_MAX + 1, "f%d:%s:%s:%s", filter,
                 kn_db_rows_get(rows, last, 1), kn_db_rows_get(rows, last, 2),
                 kn_db_rows_get(rows, last, 0));
    return c;
}

int kn_friends_list(kn_db *db, const char *user_id, int state, int limit, const char *cursor,
                    kn_friend **out, size_t *n_out, char **next_cursor, char *msg, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    *next_cursor = NULL;
    int rc = check_user(user_id, msg, cap);
    if (rc) return rc;
    if (state < KN_FRIEND_ANY || state > KN_FRIEND_BLOCKED)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "state must be -1 (all), 0, 1, 2 or 3, not %d", state);
    if (limit == 0) limit = KN_FRIENDS_LIST_DEFAULT;
    if (limit < 1 || limit > KN_FRIENDS_LIST_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d, not %d",
                          KN_FRIENDS_LIST_MAX, limit);
    list_key k = {-1, 0, NIL_UUID};
    if (cursor && *cursor && (rc = parse_cursor(cursor, state, &k, msg, cap))) return rc;

    char st[12], ks[12], kp[24], lim[12];
    snprintf(st, sizeof st, "%d", state);
    snprintf(ks, sizeof ks, "%d", k.state);
    snprintf(kp, sizeof kp, "%lld", k.position);
    snprintf(lim, sizeof lim, "%d", limit + 1); /* one more says whether a page follows */
    const char *p[] = {user_id, st, ks, kp, k.id, lim};
    kn_db_rows *rows = NULL;
    if ((rc = kn_db_query(db, &list_page, p, &rows))) {
        kn_db_rows_free(rows);
        return kn_db_fail(rc, msg, cap);
    }
    size_t count = kn_db_rows_count(rows);
    bool more = count > (size_t)limit;
    if (more) count = (size_t)limit;
    kn_friend *friends = count ? kn_calloc(count, sizeof *friends) : NULL;
    char *next = more ? make_cursor(state, rows, count - 1) : NULL;
    size_t kept = 0;
    if ((count && !friends) || (more && !next))
        rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    else
        rc = fill_profiles(db, rows, count, friends, sizeof *friends, offsetof(kn_friend, user),
                           fill_friend, &kept, msg, cap);
    kn_db_rows_free(rows);
    if (rc) {
        kn_friends_free(friends, count); /* entries past `kept` are zeroed */
        kn_free(next);
        return rc;
    }
    if (kept == 0) {
        kn_free(friends);
        friends = NULL;
    }
    *out = friends;
    *n_out = kept;
    *next_cursor = next;
    return KN_OK;
}

/* --- friends of friends ----------------------------------------------------------------- */

/* A cursor is "o:<referrer>:<user>", the last pair returned. */
#define FOF_CURSOR_LEN (2 + KN_UUID_STR_LEN + 1 + KN_UUID_STR_LEN)

static int parse_fof_cursor(const char *cursor, char *referrer, char *user, char *msg, size_t cap)
{
    if (strlen(cursor) != FOF_CURSOR_LEN || strncmp(cursor, "o:", 2) ||
        cursor[2 + KN_UUID_STR_LEN] != ':')
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is not valid");
    memcpy(referrer, cursor + 2, KN_UUID_STR_LEN);
    referrer[KN_UUID_STR_LEN] = '\0';
    memcpy(user, cursor + 3 + KN_UUID_STR_LEN, KN_UUID_STR_LEN + 1);
    if (!kn_uuid_valid(referrer) || !kn_uuid_valid(user))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is not valid");
    return KN_OK;
}

int kn_friends_of_friends_cursor_check(const char *cursor, char *msg, size_t cap)
{
    char referrer[KN_UUID_STR_LEN + 1], user[KN_UUID_STR_LEN + 1];
    return parse_fof_cursor(cursor, referrer, user, msg, cap);
}

void kn_friends_of_friends_free(kn_friend_of_friend *fof, size_t n)
{
    if (!fof) return;
    for (size_t i = 0; i < n; i++)
        kn_user_deinit(&fof[i].user);
    kn_free(fof);
}

static bool fill_fof(void *entry, const kn_db_rows *rows, size_t row)
{
    kn_friend_of_friend *f = entry;
    snprintf(f->referrer, sizeof f->referrer, "%s", kn_db_rows_get(rows, row, 1));
    return true;
}

int kn_friends_of_friends_list(kn_db *db, const char *user_id, int limit, const char *cursor,
                               kn_friend_of_friend **out, size_t *n_out, char **next_cursor,
                               char *msg, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    *next_cursor = NULL;
    int rc = check_user(user_id, msg, cap);
    if (rc) return rc;
    if (limit == 0) limit = KN_FRIENDS_LIST_DEFAULT;
    if (limit < 1 || limit > KN_FRIENDS_LIST_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d, not %d",
                          KN_FRIENDS_LIST_MAX, limit);
    char referrer[KN_UUID_STR_LEN + 1] = NIL_UUID, after[KN_UUID_STR_LEN + 1] = NIL_UUID;
    if (cursor && *cursor && (rc = parse_fof_cursor(cursor, referrer, after, msg, cap))) return rc;
    char lim[12];
    snprintf(lim, sizeof lim, "%d", limit + 1); /* one more says whether a page follows */
    const char *p[] = {user_id, referrer, after, lim};
    kn_db_rows *rows = NULL;
    if ((rc = kn_db_query(db, &fof_page, p, &rows))) {
        kn_db_rows_free(rows);
        return kn_db_fail(rc, msg, cap);
    }
    size_t count = kn_db_rows_count(rows);
    bool more = count > (size_t)limit;
    if (more) count = (size_t)limit;
    kn_friend_of_friend *fof = count ? kn_calloc(count, sizeof *fof) : NULL;
    char *next = more ? kn_malloc(FOF_CURSOR_LEN + 1) : NULL;
    size_t kept = 0;
    if ((count && !fof) || (more && !next))
        rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    else
        rc = fill_profiles(db, rows, count, fof, sizeof *fof, offsetof(kn_friend_of_friend, user),
                           fill_fof, &kept, msg, cap);
    if (rc == KN_OK && next)
        snprintf(next, FOF_CURSOR_LEN + 1, "o:%s:%s", kn_db_rows_get(rows, count - 1, 1),
                 kn_db_rows_get(rows, count - 1, 0));
    kn_db_rows_free(rows);
    if (rc) {
        kn_friends_of_friends_free(fof, count);
        kn_free(next);
        return rc;
    }
    if (kept == 0) {
        kn_free(fof);
        fof = NULL;
    }
    *out = fof;
    *n_out = kept;
    *next_cursor = next;
    return KN_OK;
}
