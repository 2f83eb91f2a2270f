/* status: the status service (kn_status.h).
 *
 * Invariant: every presence this service puts on a status stream is its
 * session's: hidden for a follow, visible (with a status) on the session
 * user's own stream for a published status. */
#include "kn_status.h"
#include "kn_codec.h"
#include "kn_db.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_text.h"
#include "kn_uuid.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct kn_status {
    kn_tracker *tracker;
};

#define NIL_UUID "00000000-0000-0000-0000-000000000000"

/* The users the caller may follow: named, existing, not the caller, not
 * blocking the caller (user_edge state 3 from them to the caller). */
static const kn_db_stmt followable = {
    "status_followable",
    "SELECT u.id::text FROM users u"
    " WHERE (u.id = ANY ($2::uuid[]) OR u.username = ANY ($3::text[]))"
    " AND u.id <> $1::uuid AND u.id <> '" NIL_UUID "'"
    " AND NOT EXISTS (SELECT 1 FROM user_edge e WHERE e.source_id = u.id"
    " AND e.destination_id = $1::uuid AND e.state = 3)",
    3};

static kn_stream status_stream(const char *user_id)
{
    kn_stream s = {.mode = KN_STREAM_STATUS};
    snprintf(s.subject, sizeof s.subject, "%s", user_id);
    return s;
}

/* The mode's events: StatusPresenceEvent. */
static size_t build_event(void *ud, const kn_stream *s, uint32_t handle, const kn_presence *joins,
                          size_t n_joins, const kn_presence *leaves, size_t n_leaves, uint8_t *buf,
                          size_t cap)
{
    (void)ud, (void)s, (void)handle;
    kn_presence_change c;
    if (!kn_presence_change_init(&c, joins, n_joins, leaves, n_leaves)) return 0;
    Kaos__V1__StatusPresenceEvent ev = KAOS__V1__STATUS_PRESENCE_EVENT__INIT;
    ev.n_joins = c.n_joins;
    ev.joins = c.joins;
    ev.n_leaves = c.n_leaves;
    ev.leaves = c.leaves;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STATUS_PRESENCE;
    env.status_presence = &ev;
    return kn_presence_event_pack(&env, buf, cap);
}

int kn_status_create(kn_tracker *t, kn_status **out)
{
    *out = NULL;
    kn_status *st = kn_calloc(1, sizeof *st);
    if (!st) return KN_ERR_NOMEM;
    st->tracker = t;
    /* A session's own stream (its published status) counts among its status streams. */
    kn_tracker_mode mode = {.name = "status",
                            .max_per_session = KN_STATUS_FOLLOW_MAX + 1,
                            .build = build_event,
                            .ud = st};
    int rc = kn_tracker_mode_set(t, KN_STREAM_STATUS, &mode);
    if (rc) {
        kn_free(st);
        return rc;
    }
    *out = st;
    return KN_OK;
}

void kn_status_destroy(kn_status *st)
{
    kn_free(st);
}

static int check_targets(const char *user_id, const char *const *ids, size_t n_ids,
                         const char *const *usernames, size_t n_usernames, char *msg, size_t cap)
{
    if (!user_id || !kn_uuid_valid(user_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user id must be a UUID");
    if (n_ids > KN_STATUS_BATCH_MAX || n_usernames > KN_STATUS_BATCH_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "at most %d ids and %d usernames per call", KN_STATUS_BATCH_MAX,
                          KN_STATUS_BATCH_MAX);
    for (size_t i = 0; i < n_ids; i++)
        if (!ids[i] || !kn_uuid_valid(ids[i]))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "id %zu is not a UUID", i);
    for (size_t i = 0; i < n_usernames; i++)
        if (!usernames[i] || !*usernames[i] || strlen(usernames[i]) > 128)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "username %zu must be 1-128 bytes",
                              i);
    return KN_OK;
}

int kn_status_resolve(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                      const char *const *usernames, size_t n_usernames, kn_status_user **users,
                      size_t *n_users, char *msg, size_t cap)
{
    *users = NULL;
    *n_users = 0;
    int rc = check_targets(user_id, ids, n_ids, usernames, n_usernames, msg, cap);
    if (rc || (n_ids == 0 && n_usernames == 0)) return rc;
    char *id_arr = kn_db_text_array(ids, n_ids);
    char *name_arr = kn_db_text_array(usernames, n_usernames);
    kn_db_rows *rows = NULL;
    if (!id_arr || !name_arr) {
        rc = KN_ERR_NOMEM;
    } else {
        const char *params[] = {user_id, id_arr, name_arr};
        rc = kn_db_query(db, &followable, params, &rows);
    }
    size_t n = rc ? 0 : kn_db_rows_count(rows);
    if (rc == KN_OK && n) {
        *users = kn_calloc(n, sizeof **users);
        if (!*users) rc = KN_ERR_NOMEM;
        for (size_t i = 0; *users && i < n; i++)
            snprintf((*users)[i], sizeof(*users)[i], "%s", kn_db_rows_get(rows, i, 0));
        if (*users) *n_users = n;
    }
    kn_db_rows_free(rows);
    kn_free(id_arr);
    kn_free(name_arr);
    return rc ? kn_db_fail(rc, msg, cap) : KN_OK;
}

/* One allocation of the k listings (lists[i] holds counts[i] presences,
 * their statuses inside it), statuses copied after the entries. */
static int merge(kn_presence *const *lists, const size_t *counts, size_t k, kn_presence **out,
                 size_t *n_out)
{
    size_t n = 0, text = 0;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < counts[i]; j++) {
            n++;
            if (lists[i][j].status) text += strlen(lists[i][j].status) + 1;
        }
    *out = NULL;
    *n_out = 0;
    if (!n) return KN_OK;
    kn_presence *all = kn_malloc(n * sizeof *all + text);
    if (!all) return KN_ERR_NOMEM;
    char *at = (char *)(all + n);
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < counts[i]; j++, m++) {
            all[m] = lists[i][j];
            if (!lists[i][j].status) continue;
            size_t len = strlen(lists[i][j].status) + 1;
            memcpy(at, lists[i][j].status, len);
            all[m].status = at;
            at += len;
        }
    *out = all;
    *n_out = n;
    return KN_OK;
}

int kn_status_follow(kn_status *st, const kn_presence *who, const kn_status_user *users, size_t n,
                     kn_presence **online, size_t *n_online, char *msg, size_t cap)
{
    *online = NULL;
    *n_online = 0;
    if (n > KN_STATUS_BATCH_MAX * 2)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "at most %d users per call",
                          KN_STATUS_BATCH_MAX * 2);
    kn_presence follower = *who;
    follower.hidden = true;
    follower.status = NULL;
    /* The mode's limit counts the session's own stream too (FOLLOW_MAX + 1,
     * so a full follow list still publishes); the follows alone are counted
     * here. Its own stream is the one status stream it is on visibly. */
    kn_stream own = status_stream(who->user_id);
    kn_presence mine;
    uint32_t follows = kn_tracker_conn_count(st->tracker, who->conn, KN_STREAM_STATUS);
    if (follows &&
        kn_tracker_get(st->tracker, &own, who->user_id, who->session_id, &mine, NULL, 0) == KN_OK)
        follows--;
    int rc = KN_OK;
    for (size_t i = 0; i < n && rc == KN_OK; i++) {
        kn_stream s = status_stream(users[i]);
        if (follows < KN_STATUS_FOLLOW_MAX)
            rc = kn_tracker_track(st->tracker, &s, &follower, NULL, NULL, msg, cap);
        else /* at the limit, one already followed is still fine */
            rc = kn_tracker_get(st->tracker, &s, who->user_id, who->session_id, &mine, NULL, 0)
                     ? KN_ERR_RESOURCE_EXHAUSTED
                     : KN_ERR_ALREADY_EXISTS;
        if (rc == KN_OK) follows++;
        if (rc == KN_ERR_ALREADY_EXISTS) rc = KN_OK;
        if (rc == KN_ERR_RESOURCE_EXHAUSTED && follows >= KN_STATUS_FOLLOW_MAX)
            kn_err_msg(rc, msg, cap, "a session follows at most %d users", KN_STATUS_FOLLOW_MAX);
    }
    if (rc) return rc;
    kn_presence **lists = kn_calloc(n ? n : 1, sizeof *lists);
    size_t *counts = kn_calloc(n ? n : 1, sizeof *counts);
    if (!lists || !counts) rc = KN_ERR_NOMEM;
    for (size_t i = 0; i < n && rc == KN_OK; i++) {
        kn_stream s = status_stream(users[i]);
        rc = kn_tracker_list(st->tracker, &s, false, true, &lists[i], &counts[i]);
    }
    if (rc == KN_OK) rc = merge(lists, counts, n, online, n_online);
    for (size_t i = 0; lists && i < n; i++)
        kn_free(lists[i]);
    kn_free(lists);
    kn_free(counts);
    if (rc) return kn_err_msg(rc, msg, cap, "out of memory");
    return KN_OK;
}

int kn_status_unfollow(kn_status *st, const kn_presence *who, const char *const *ids, size_t n,
                       char *msg, size_t cap)
{
    if (n > KN_STATUS_BATCH_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "at most %d ids per call",
                          KN_STATUS_BATCH_MAX);
    for (size_t i = 0; i < n; i++)
        if (!ids[i] || !kn_uuid_valid(ids[i]))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "id %zu is not a UUID", i);
    for (size_t i = 0; i < n; i++) {
        if (!strcasecmp(ids[i], who->user_id)) continue; /* its own stream holds its status */
        kn_stream s = status_stream(ids[i]);
        kn_tracker_untrack(st->tracker, &s, who->conn); /* not followed: nothing to do */
    }
    return KN_OK;
}

int kn_status_update(kn_status *st, const kn_presence *who, const char *status, char *msg,
                     size_t cap)
{
    kn_stream s = status_stream(who->user_id);
    if (!status) {
        kn_tracker_untrack(st->tracker, &s, who->conn);
        return KN_OK;
    }
    if (strlen(status) > KN_STREAM_STATUS_MAX || (*status && !kn_text_valid(status, true)))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "status must be at most %d bytes of UTF-8 without control characters",
                          KN_STREAM_STATUS_MAX);
    kn_presence me = *who;
    me.hidden = false;
    me.status = (char *)status;
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = kn_tracker_update(st->tracker, &s, who->conn, status, false);
        if (rc != KN_ERR_NOT_FOUND) return rc ? kn_err_msg(rc, msg, cap, "out of memory") : KN_OK;
        rc = kn_tracker_track(st->tracker, &s, &me, NULL, NULL, msg, cap);
        if (rc != KN_ERR_ALREADY_EXISTS) return rc; /* else it appeared meanwhile: update it */
    }
    return kn_err_msg(KN_ERR_ABORTED, msg, cap, "status changed concurrently; retry");
}

void kn_status_block(kn_status *st, const char *blocker_id, const char *blocked_id)
{
    kn_stream s = status_stream(blocker_id);
    kn_tracker_untrack_user(st->tracker, &s, blocked_id);
}
