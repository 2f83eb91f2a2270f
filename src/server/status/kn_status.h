/* kn_status: the status service — who is online and what they say, for the
 * users who follow them (docs/status.md has the rules and every error).
 *
 * Built on the tracker (kn_stream.h), as in Nakama: every user has a status
 * stream (mode KN_STREAM_STATUS, subject the user's id). A session that
 * publishes its status is a visible presence there, its status text the
 * presence's; a session that follows the user is a hidden presence there.
 * So a publisher coming online, changing status or going offline (an
 * update, a disconnect, a logout) reaches exactly its followers' sessions
 * as a StatusPresenceEvent, through the tracker's events; followers never
 * see each other. Follows and published statuses belong to a session and
 * end with it.
 *
 * Blocks: a user who blocked the caller cannot be followed (skipped
 * silently, as an unknown user is, so the block stays secret), and a block
 * made later stops the blocked user's sessions following
 * (kn_status_block).
 *
 * Limits: KN_STATUS_BATCH_MAX ids (and usernames) per call, a session
 * follows at most KN_STATUS_FOLLOW_MAX users ("status follow limit per
 * session reached (N)"), a status is at most KN_STREAM_STATUS_MAX bytes of
 * UTF-8 without control characters.
 *
 * Threads: kn_status_resolve blocks on Postgres and runs where `db` lives
 * (an API worker); everything else is any-thread (the tracker's lock).
 *
 * Ownership: arguments are borrowed; *online (kn_status_follow) and
 * *users (kn_status_resolve) are the caller's to kn_free.
 *
 * Errors: KN_OK or a negative kn_err with a one-line reason in msg. */
#ifndef KN_STATUS_H
#define KN_STATUS_H

#include "kn_stream.h"

#include <stddef.h>

typedef struct kn_db kn_db;
typedef struct kn_status kn_status;

#define KN_STATUS_BATCH_MAX  100  /* ids, and separately usernames, per call */
#define KN_STATUS_FOLLOW_MAX 1000 /* users one session follows */

typedef char kn_status_user[37];

/* Registers the status mode (its events, the follow limit) with the
 * tracker, which must outlive the service. Before serving. */
int kn_status_create(kn_tracker *t, kn_status **out);
void kn_status_destroy(kn_status *st); /* accepts NULL */

/* The users user_id may follow among ids and usernames: existing, not
 * user_id itself, not blocking user_id; each once. INVALID_ARGUMENT for a
 * bad id or username or too many; DB. */
int kn_status_resolve(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                      const char *const *usernames, size_t n_usernames, kn_status_user **users,
                      size_t *n_users, char *msg, size_t cap);

/* who's session follows each of users (one already followed stays so), and
 * *online gets the visible presences of those users now (their sessions
 * publishing a status). RESOURCE_EXHAUSTED at the follow limit: the follows
 * made before it stand. */
int kn_status_follow(kn_status *st, const kn_presence *who, const kn_status_user *users, size_t n,
                     kn_presence **online, size_t *n_online, char *msg, size_t cap);
/* who's session stops following each of ids (not followed, or who's own
 * id: nothing happens). */
int kn_status_unfollow(kn_status *st, const kn_presence *who, const char *const *ids, size_t n,
                       char *msg, size_t cap);
/* who's session publishes status (NULL: stops appearing online). Followers
 * see a join (first time), a leave and a join (a change) or a leave. */
int kn_status_update(kn_status *st, const kn_presence *who, const char *status, char *msg,
                     size_t cap);
/* blocker blocked blocked_id: blocked_id's sessions stop following blocker. */
void kn_status_block(kn_status *st, const char *blocker_id, const char *blocked_id);

#endif
