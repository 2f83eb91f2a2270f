/* kn_notify: the notifications service — messages from the server to a
 * user, stored (persistent) or live only, in the spirit of Nakama's
 * notifications (docs/notifications.md has every rule and error).
 *
 * Send validates every notification, inserts the persistent ones in one
 * transaction and, after it commits, delivers each recipient one
 * Notifications envelope (cid 0) on every connection it has, through
 * kn_out_send_user. Send-all stores one for every user in one statement
 * and broadcasts it through kn_out_send_all. A recipient with no connection simply finds the
 * persistent ones on its next list; live-only ones are then lost.
 *
 * Codes: code < 0 is reserved for the system (KN_NOTIFY_CODE_*) and is
 * refused unless the caller passes system = true (server-made events);
 * clients never send notifications at all.
 *
 * List returns a user's stored notifications oldest first, after a
 * cacheable cursor: the cursor returned points after the newest one
 * returned (or is the one given, when nothing is new), so a client keeping
 * it later fetches only what is new.
 *
 * Threads: every function blocks on Postgres and runs on the thread that
 * owns `db` (an API worker). kn_out is any-thread. No state of its own.
 *
 * Ownership: arguments are borrowed. kn_notify_list's *out is freed with
 * kn_notify_free and *cursor_out with kn_free; both NULL on failure.
 *
 * Errors: KN_OK or a negative kn_err with a one-line reason in msg:
 * INVALID_ARGUMENT (input, cursor, reserved code), NOT_FOUND (a recipient
 * does not exist; nothing is stored), NOMEM, DB. */
#ifndef KN_NOTIFY_H
#define KN_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_db kn_db;
typedef struct kn_out kn_out;
typedef struct kn_entity kn_entity;

#define KN_NOTIFY_BATCH_MAX   100         /* notifications per send, ids per delete */
#define KN_NOTIFY_SUBJECT_MAX 255         /* bytes */
#define KN_NOTIFY_CONTENT_MAX (16 * 1024) /* bytes of JSON text */
#define KN_NOTIFY_LIST_MAX    100
#define KN_NOTIFY_CURSOR_MAX  64 /* bytes in a cursor this module issues */

/* Codes reserved for the system (docs/notifications.md), Nakama's numbers
 * where Nakama has one. Each is sent by the service the event belongs to. */
enum {
    KN_NOTIFY_CODE_DM_REQUEST = -1,      /* a direct message while not on the channel (chat) */
    KN_NOTIFY_CODE_FRIEND_REQUEST = -2,  /* a user invited you */
    KN_NOTIFY_CODE_FRIEND_ACCEPTED = -3, /* a user accepted your invite */
    KN_NOTIFY_CODE_GROUP_ADD = -4,       /* you were added to a group (or your request accepted) */
    KN_NOTIFY_CODE_GROUP_JOIN_REQUEST = -5, /* to a closed group's admins: a user asks to join */
    KN_NOTIFY_CODE_FRIEND_REMOVED = -6,     /* a friend removed you */
    KN_NOTIFY_CODE_SESSION_REPLACED = -7,   /* another session took over (single session) */
    KN_NOTIFY_CODE_GROUP_BANNED = -8,       /* you were banned from a group */
    /* -20..-29 are kept for leaderboards and tournaments. */
    KN_NOTIFY_CODE_TOURNAMENT_END = -20, /* a tournament (or a period of it) ended: your rank */
};

/* One notification to send. content: a JSON object as text (NULL = "{}");
 * sender_id: a UUID, or NULL / "" for the system. */
typedef struct kn_notify_msg {
    const char *user_id;
    const char *subject;
    const char *content;
    int code;
    const char *sender_id;
    bool persistent;
} kn_notify_msg;

/* A notification as listed or delivered (the Notification entity).
 * sender_id is "" for the system; create_time is Unix seconds. */
typedef struct kn_notification {
    char *id;
    char *subject;
    char *content;
    int code;
    char *sender_id;
    int64_t create_time;
    bool persistent;
} kn_notification;

/* kn_notification as the Notification entity (kn_entity.h). */
extern const kn_entity kn_notification_entity;

/* Validates all n (1..KN_NOTIFY_BATCH_MAX) before anything happens; a
 * refusal anywhere sends nothing. out may be NULL (no live delivery). */
int kn_notify_send(kn_db *db, kn_out *out, const kn_notify_msg *notes, size_t n, bool system,
                   char *msg, size_t msg_cap);

/* One notification to every user (m->user_id is ignored), validated as
 * kn_notify_send validates one. Persistent: stored for every user by one
 * INSERT ... SELECT (no round trip per user), under one id shared by all
 * those rows, in one statement (all or none); *n_stored (may be NULL) says
 * how many. Then, persistent or not, one Notifications envelope goes to
 * every authenticated connection of every node through kn_out_send_all
 * (out NULL: none). A user who is offline finds a persistent one on its
 * next list; a live-only one reaches only who is connected. */
int kn_notify_send_all(kn_db *db, kn_out *out, const kn_notify_msg *m, bool system,
                       size_t *n_stored, char *msg, size_t msg_cap);

/* Single session's notice (kn_sessions_single.notice, ud the server's
 * kn_out *): a live-only KN_NOTIFY_CODE_SESSION_REPLACED
 * notification "another session took over" from the system, to the one
 * connection `conn` that is about to be closed. Runs on that connection's
 * network thread; no database. Best effort (logged). */
void kn_notify_session_replaced(void *out, uint64_t conn);

/* Up to limit (0 = KN_NOTIFY_LIST_MAX, else 1..KN_NOTIFY_LIST_MAX) of
 * user_id's stored notifications after `cursor` (NULL or "": from the
 * oldest), oldest first. *cursor_out is always set on success: after the
 * newest returned, or a copy of the cursor given when none was. */
int kn_notify_list(kn_db *db, const char *user_id, int limit, const char *cursor,
                   kn_notification **out, size_t *n_out, char **cursor_out, char *msg,
                   size_t msg_cap);
void kn_notify_free(kn_notification *notes, size_t n); /* accepts NULL */

/* Deletes those of ids (at most KN_NOTIFY_BATCH_MAX UUIDs) that belong to
 * user_id; others' ids and unknown ids are ignored. */
int kn_notify_delete(kn_db *db, const char *user_id, const char *const *ids, size_t n, char *msg,
                     size_t msg_cap);

/* KN_OK when cursor (client text) is one kn_notify_list could take; else
 * INVALID_ARGUMENT. No database (fuzzing). */
int kn_notify_cursor_check(const char *cursor, char *msg, size_t msg_cap);

#endif
