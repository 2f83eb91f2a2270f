/* notify: the notifications service over Postgres (contract in
 * kn_notify.h, prose in docs/notifications.md).
 *
 * Invariants:
 *   - every notification of a send is validated before the database is
 *     touched or anything is delivered;
 *   - the persistent ones of a send are one transaction; live delivery
 *     happens only after it commits, so a pushed persistent notification
 *     is always listable;
 *   - a row's position is the insert clock in microseconds, and above every
 *     position of the same user before it; the cacheable cursor is
 *     "<position>.<id>" of the newest row a list returned and a list
 *     returns rows strictly after it in (position, id) order;
 *   - positions of one user are taken in commit order: a send holds a
 *     transaction lock per recipient (and a shared one that a send to
 *     everyone takes exclusively) from before it reads the clock until it
 *     commits, so no row can commit behind a cursor already handed out;
 *   - delivery groups a send's notifications per recipient: one
 *     Notifications envelope per user, in the order given. */
#include "kn_notify.h"
#include "kn_codec.h"
#include "kn_db.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_out.h"
#include "kn_uuid.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

KN_ENTITY_DEFINE(kn_notification_entity, kn_notification, NOTIFICATION);

#define NIL_UUID "00000000-0000-0000-0000-000000000000"

/* Advisory lock keys (pg_advisory_xact_lock(class, key)): one per
 * recipient (class NOTIFY_LOCK_USER, key hashtext of the id) and one that
 * every send holds shared and a send to everyone exclusively. */
#define NOTIFY_LOCK_USER "7001"
#define NOTIFY_LOCK_ALL  "7002"
/* The recipients' locks in one order, so two sends never deadlock (after
 * the shared one). */
static const kn_db_stmt lock_shared = {
    "notify_lock_shared", "SELECT pg_advisory_xact_lock_shared(" NOTIFY_LOCK_ALL ", 0)", 0};
static const kn_db_stmt lock_recipients = {
    "notify_lock_recipients",
    "SELECT pg_advisory_xact_lock(" NOTIFY_LOCK_USER ", k) FROM"
    " (SELECT DISTINCT hashtext(lower(u)) AS k FROM unnest($1::text[]) u ORDER BY 1) s",
    1};
static const kn_db_stmt lock_everyone = {"notify_lock_everyone",
                                         "SELECT pg_advisory_xact_lock(" NOTIFY_LOCK_ALL ", 0)", 0};
#define NEXT_POSITION(user)                                                                        \
    "GREATEST((extract(epoch FROM clock_timestamp()) * 1000000)::bigint,"                          \
    " (SELECT coalesce(max(n.position), 0) + 1 FROM notification n WHERE n.user_id = " user "))"
static const kn_db_stmt insert_note = {
    "notify_insert",
    "INSERT INTO notification (id, user_id, subject, content, code, sender_id, position)"
    " VALUES ($1, $2, $3, $4::jsonb, $5::int, NULLIF($6, '')::uuid, " NEXT_POSITION(
        "$2::uuid") ")"
                    " RETURNING floor(extract(epoch FROM create_time))::bigint",
    6};
static const kn_db_stmt list_page = {
    "notify_list",
    "SELECT id::text, subject, content::text, code, coalesce(sender_id::text, ''),"
    " floor(extract(epoch FROM create_time))::bigint, position"
    " FROM notification WHERE user_id = $1 AND (position, id) > ($2::bigint, $3::uuid)"
    " ORDER BY position, id LIMIT $4",
    4};
/* One row per user under one id; the count and the shared create time. */
static const kn_db_stmt insert_all = {
    "notify_insert_all",
    "WITH ins AS (INSERT INTO notification"
    " (id, user_id, subject, content, code, sender_id, position)"
    " SELECT $1, u.id, $2, $3::jsonb, $4::int, NULLIF($5, '')::uuid, " NEXT_POSITION(
        "u.id") " FROM users u WHERE u.id <> '" NIL_UUID "' RETURNING 1)"
                " SELECT count(*), floor(extract(epoch FROM now()))::bigint FROM ins",
    5};
static const kn_db_stmt delete_some = {
    "notify_delete", "DELETE FROM notification WHERE user_id = $1 AND id = ANY ($2::uuid[])", 2};

static int check_user(const char *user_id, char *msg, size_t cap)
{
    if (!user_id || !kn_uuid_valid(user_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user id must be a UUID");
    return KN_OK;
}

/* Everything of m but its recipient. */
static int check_body(const kn_notify_msg *m, size_t i, bool system, char *msg, size_t cap)
{
    size_t len = m->subject ? strlen(m->subject) : 0;
    if (len < 1 || len > KN_NOTIFY_SUBJECT_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "notification %zu: subject must be 1-%d bytes", i, KN_NOTIFY_SUBJECT_MAX);
    if (m->code < 0 && !system)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "notification %zu: negative codes are reserved for the system", i);
    if (m->sender_id && *m->sender_id && !kn_uuid_valid(m->sender_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "notification %zu: sender id must be a UUID or empty", i);
    const char *content = m->content ? m->content : "{}";
    len = strlen(content);
    if (len > KN_NOTIFY_CONTENT_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "notification %zu: content is %zu bytes; the limit is %d", i, len,
                          KN_NOTIFY_CONTENT_MAX);
    kn_json_error err;
    kn_json *v = kn_json_parse(content, len, KN_JSON_DECODE_ANY, &err);
    bool object = v && kn_json_is_object(v);
    kn_json_decref(v);
    if (!object)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "notification %zu: content must be a JSON object", i);
    return KN_OK;
}

static int check_one(const kn_notify_msg *m, size_t i, bool system, char *msg, size_t cap)
{
    if (!m->user_id || !kn_uuid_valid(m->user_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "notification %zu: user id must be a UUID", i);
    return check_body(m, i, system, msg, cap);
}

/* Inserts the persistent ones; fills their create times. */
static int store(kn_db *db, const kn_notify_msg *notes, size_t n, char (*ids)[KN_UUID_STR_LEN + 1],
                 int64_t *times, char *msg, size_t cap)
{
    const char **users = kn_calloc(n ? n : 1, sizeof *users);
    size_t k = 0;
    for (size_t i = 0; users && i < n; i++)
        if (notes[i].persistent) users[k++] = notes[i].user_id;
    char *arr = users ? kn_db_text_array(users, k) : NULL;
    kn_free(users);
    if (!arr) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    int rc = kn_db_begin(db);
    if (rc) {
        kn_free(arr);
        return kn_db_fail(rc, msg, cap);
    }
    kn_db_rows *locked = NULL;
    const char *lp[] = {arr};
    rc = kn_db_query(db, &lock_shared, NULL, &locked);
    kn_db_rows_free(locked);
    locked = NULL;
    if (rc == KN_OK) rc = kn_db_query(db, &lock_recipients, lp, &locked);
    kn_db_rows_free(locked);
    kn_free(arr);
    if (rc) kn_db_fail(rc, msg, cap);
    for (size_t i = 0; i < n && rc == KN_OK; i++) {
        if (!notes[i].persistent) continue;
        char code[16];
        snprintf(code, sizeof code, "%d", notes[i].code);
        const char *p[] = {ids[i],
                           notes[i].user_id,
                           notes[i].subject,
                           notes[i].content ? notes[i].content : "{}",
                           code,
                           notes[i].sender_id ? notes[i].sender_id : ""};
        kn_db_rows *rows = NULL;
        rc = kn_db_query(db, &insert_note, p, &rows);
        if (rc == KN_OK) times[i] = strtoll(kn_db_rows_get(rows, 0, 0), NULL, 10);
        kn_db_rows_free(rows);
        if (rc == KN_ERR_NOT_FOUND)
            kn_err_msg(rc, msg, cap, "user %s does not exist", notes[i].user_id);
        else if (rc)
            kn_db_fail(rc, msg, cap);
    }
    if (rc) {
        kn_db_rollback(db);
        return rc;
    }
    if ((rc = kn_db_commit(db))) return kn_db_fail(rc, msg, cap);
    return KN_OK;
}

/* notes[i] as it is delivered and listed (borrowing its strings). */
static kn_notification view_of(const kn_notify_msg *m, char *id, int64_t time)
{
    return (kn_notification){id,
                             (char *)m->subject,
                             (char *)(m->content ? m->content : "{}"),
                             m->code,
                             (char *)(m->sender_id ? m->sender_id : ""),
                             time,
                             m->persistent};
}

/* One Notifications envelope holding v[0..k), encoded into *buf (kn_free it). */
static int encode(const kn_notification *v, size_t k, uint8_t **buf, size_t *len)
{
    Kaos__V1__Notification *msgs = kn_calloc(k, sizeof *msgs);
    Kaos__V1__Notification **ptrs = kn_calloc(k, sizeof *ptrs);
    int rc = KN_ERR_NOMEM;
    if (msgs && ptrs) {
        for (size_t i = 0; i < k; i++) {
            Kaos__V1__Notification init = KAOS__V1__NOTIFICATION__INIT;
            msgs[i] = init;
            kn_entity_to_proto(&kn_notification_entity, &v[i], &msgs[i]);
            ptrs[i] = &msgs[i];
        }
        Kaos__V1__Notifications body = KAOS__V1__NOTIFICATIONS__INIT;
        body.n_notifications = k;
        body.notifications = ptrs;
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_NOTIFICATIONS;
        env.notifications = &body;
        rc = kn_envelope_encode(&env, buf, len);
    }
    kn_free(msgs);
    kn_free(ptrs);
    return rc;
}

/* One Notifications envelope with every notification of notes[] whose
 * recipient is notes[first]'s, to each of that user's connections. */
static void deliver_user(kn_out *out, const kn_notify_msg *notes, size_t n, size_t first,
                         char (*ids)[KN_UUID_STR_LEN + 1], const int64_t *times)
{
    kn_notification *views = kn_calloc(n, sizeof *views);
    uint8_t *buf = NULL;
    size_t k = 0, len = 0;
    int rc = KN_ERR_NOMEM;
    if (!views) goto done;
    for (size_t i = first; i < n; i++)
        if (!strcasecmp(notes[i].user_id, notes[first].user_id))
            views[k++] = view_of(&notes[i], ids[i], times[i]);
    if ((rc = encode(views, k, &buf, &len))) goto done;
    rc = kn_out_send_user(out, notes[first].user_id, NULL, KN_CHANNEL_CONTROL, buf, len, true);
done:
    /* Delivery is best effort: the persistent ones are stored and listable. */
    if (rc != KN_OK && rc != KN_ERR_NOT_FOUND)
        KN_WARN("notify: live delivery to user %s failed: %s", notes[first].user_id,
                kn_err_name(rc));
    kn_free(buf);
    kn_free(views);
}

static void deliver(kn_out *out, const kn_notify_msg *notes, size_t n,
                    char (*ids)[KN_UUID_STR_LEN + 1], const int64_t *times)
{
    for (size_t i = 0; i < n; i++) {
        bool seen = false; /* a recipient gets one envelope, at its first notification */
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcasecmp(notes[j].user_id, notes[i].user_id);
        if (!seen) deliver_user(out, notes, n, i, ids, times);
    }
}

int kn_notify_send(kn_db *db, kn_out *out, const kn_notify_msg *notes, size_t n, bool system,
                   char *msg, size_t cap)
{
    if (n == 0) return KN_OK;
    if (n > KN_NOTIFY_BATCH_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "at most %d notifications per call",
                          KN_NOTIFY_BATCH_MAX);
    bool any_persistent = false;
    for (size_t i = 0; i < n; i++) {
        int rc = check_one(&notes[i], i, system, msg, cap);
        if (rc) return rc;
        any_persistent |= notes[i].persistent;
    }
    char(*ids)[KN_UUID_STR_LEN + 1] = kn_calloc(n, sizeof *ids);
    int64_t *times = kn_calloc(n, sizeof *times);
    int rc = KN_OK;
    if (!ids || !times) {
        rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
        goto done;
    }
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        kn_uuid_v4(ids[i]);
        times[i] = now;
    }
    if (any_persistent && (rc = store(db, notes, n, ids, times, msg, cap))) goto done;
    if (out) deliver(out, notes, n, ids, times);
done:
    kn_free(ids);
    kn_free(times);
    return rc;
}

int kn_notify_send_all(kn_db *db, kn_out *out, const kn_notify_msg *m, bool system,
                       size_t *n_stored, char *msg, size_t cap)
{
    if (n_stored) *n_stored = 0;
    int rc = check_body(m, 0, system, msg, cap);
    if (rc) return rc;
    char id[KN_UUID_STR_LEN + 1];
    kn_uuid_v4(id);
    int64_t created = (int64_t)time(NULL);
    if (m->persistent) {
        char code[16];
        snprintf(code, sizeof code, "%d", m->code);
        const char *p[] = {id, m->subject, m->content ? m->content : "{}", code,
                           m->sender_id ? m->sender_id : ""};
        kn_db_rows *rows = NULL, *locked = NULL;
        if ((rc = kn_db_begin(db)) || (rc = kn_db_query(db, &lock_everyone, NULL, &locked)) ||
            (rc = kn_db_query(db, &insert_all, p, &rows)) || (rc = kn_db_commit(db))) {
            kn_db_rollback(db);
            kn_db_rows_free(locked);
            kn_db_rows_free(rows);
            return kn_db_fail(rc, msg, cap);
        }
        kn_db_rows_free(locked);
        if (n_stored) *n_stored = (size_t)strtoull(kn_db_rows_get(rows, 0, 0), NULL, 10);
        created = strtoll(kn_db_rows_get(rows, 0, 1), NULL, 10);
        kn_db_rows_free(rows);
    }
    if (!out) return KN_OK;
    kn_notification v = view_of(m, id, created);
    uint8_t *buf = NULL;
    size_t len = 0;
    if ((rc = encode(&v, 1, &buf, &len)) == KN_OK)
        rc = kn_out_send_all(out, KN_CHANNEL_CONTROL, buf, len, true);
    kn_free(buf);
    /* Best effort, as for one user: the persistent ones are stored. */
    if (rc) KN_WARN("notify: live delivery to everyone failed: %s", kn_err_name(rc));
    return KN_OK;
}

void kn_notify_session_replaced(void *ud, uint64_t conn)
{
    kn_notify_msg m = {
        NULL, "another session took over", "{}", KN_NOTIFY_CODE_SESSION_REPLACED, NULL, false};
    char id[KN_UUID_STR_LEN + 1];
    kn_uuid_v4(id);
    kn_notification v = view_of(&m, id, (int64_t)time(NULL));
    uint8_t *buf = NULL;
    size_t len = 0;
    kn_conn_id to = conn;
    int rc = encode(&v, 1, &buf, &len);
    if (rc == KN_OK) rc = kn_out_send(ud, &to, 1, KN_CHANNEL_CONTROL, buf, len, true);
    kn_free(buf);
    if (rc && rc != KN_ERR_NOT_FOUND)
        KN_WARN("notify: the session-replaced notice was not sent: %s", kn_err_name(rc));
}

/* "<position>.<uuid>" -> position and id; "" or NULL is the start. */
static int parse_cursor(const char *cursor, char position[24], char id[KN_UUID_STR_LEN + 1],
                        char *msg, size_t cap)
{
    if (!cursor || !*cursor) {
        strcpy(position, "-1");
        strcpy(id, NIL_UUID);
        return KN_OK;
    }
    const char *dot = strchr(cursor, '.');
    size_t digits = dot ? (size_t)(dot - cursor) : 0;
    bool ok = dot && digits >= 1 && digits <= 19 && kn_uuid_valid(dot + 1);
    for (size_t i = 0; ok && i < digits; i++)
        ok = cursor[i] >= '0' && cursor[i] <= '9';
    if (!ok) return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "invalid cursor");
    memcpy(position, cursor, digits);
    position[digits] = '\0';
    snprintf(id, KN_UUID_STR_LEN + 1, "%s", dot + 1);
    return KN_OK;
}

int kn_notify_cursor_check(const char *cursor, char *msg, size_t cap)
{
    char position[24], id[KN_UUID_STR_LEN + 1];
    return parse_cursor(cursor, position, id, msg, cap);
}

void kn_notify_free(kn_notification *notes, size_t n)
{
    if (!notes) return;
    for (size_t i = 0; i < n; i++) {
        kn_free(notes[i].id);
        kn_free(notes[i].subject);
        kn_free(notes[i].content);
        kn_free(notes[i].sender_id);
    }
    kn_free(notes);
}

static int copy_rows(const kn_db_rows *rows, size_t n, kn_notification *out)
{
    for (size_t i = 0; i < n; i++) {
        kn_notification *v = &out[i];
        v->id = kn_strdup(kn_db_rows_get(rows, i, 0));
        v->subject = kn_strdup(kn_db_rows_get(rows, i, 1));
        v->content = kn_strdup(kn_db_rows_get(rows, i, 2));
        v->code = atoi(kn_db_rows_get(rows, i, 3));
        v->sender_id = kn_strdup(kn_db_rows_get(rows, i, 4));
        v->create_time = strtoll(kn_db_rows_get(rows, i, 5), NULL, 10);
        v->persistent = true;
        if (!v->id || !v->subject || !v->content || !v->sender_id) return KN_ERR_NOMEM;
    }
    return KN_OK;
}

int kn_notify_list(kn_db *db, const char *user_id, int limit, const char *cursor,
                   kn_notification **out, size_t *n_out, char **cursor_out, char *msg, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    *cursor_out = NULL;
    int rc = check_user(user_id, msg, cap);
    if (rc) return rc;
    if (limit == 0) limit = KN_NOTIFY_LIST_MAX;
    if (limit < 1 || limit > KN_NOTIFY_LIST_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d, not %d",
                          KN_NOTIFY_LIST_MAX, limit);
    char position[24], id[KN_UUID_STR_LEN + 1], lim[16];
    if ((rc = parse_cursor(cursor, position, id, msg, cap))) return rc;
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {user_id, position, id, lim};
    kn_db_rows *rows = NULL;
    if ((rc = kn_db_query(db, &list_page, p, &rows))) return kn_db_fail(rc, msg, cap);
    size_t n = kn_db_rows_count(rows);
    kn_notification *notes = n ? kn_calloc(n, sizeof *notes) : NULL;
    char *next = NULL;
    if (n && !notes) {
        rc = KN_ERR_NOMEM;
        goto done;
    }
    if ((rc = copy_rows(rows, n, notes))) goto done;
    if (n) {
        char buf[KN_NOTIFY_CURSOR_MAX];
        snprintf(buf, sizeof buf, "%s.%s", kn_db_rows_get(rows, n - 1, 6),
                 kn_db_rows_get(rows, n - 1, 0));
        next = kn_strdup(buf);
    } else {
        next = kn_strdup(cursor ? cursor : "");
    }
    if (!next) rc = KN_ERR_NOMEM;
done:
    kn_db_rows_free(rows);
    if (rc) {
        kn_notify_free(notes, n);
        kn_free(next);
        return kn_err_msg(rc, msg, cap, "out of memory");
    }
    *out = notes;
    *n_out = n;
    *cursor_out = next;
    return KN_OK;
}

int kn_notify_delete(kn_db *db, const char *user_id, const char *const *ids, size_t n, char *msg,
                     size_t cap)
{
    int rc = check_user(user_id, msg, cap);
    if (rc) return rc;
    if (n > KN_NOTIFY_BATCH_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "at most %d ids per call",
                          KN_NOTIFY_BATCH_MAX);
    for (size_t i = 0; i < n; i++)
        if (!ids[i] || !kn_uuid_valid(ids[i]))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "id %zu is not a UUID", i);
    if (n == 0) return KN_OK;
    char *list = kn_db_text_array(ids, n);
    if (!list) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    const char *p[] = {user_id, list};
    rc = kn_db_query(db, &delete_some, p, NULL);
    kn_free(list);
    return rc ? kn_db_fail(rc, msg, cap) : KN_OK;
}
