/* kn_friends: the friends service — relationships between two users, in the
 * spirit of Nakama's friends (docs/friends.md has the model and every rule).
 *
 * A relationship is an edge per direction; its state as seen by its source:
 *   KN_FRIEND_MUTUAL   0  friends (both rows 0)
 *   KN_FRIEND_INVITED  1  the source invited the destination (the other row 2)
 *   KN_FRIEND_INVITER  2  the destination invited the source (the other row 1)
 *   KN_FRIEND_BLOCKED  3  the source blocked the destination (the other row
 *                         is gone, unless the destination blocked back)
 *
 * Targets. add, delete and block name other users by id and/or username, at
 * most KN_FRIENDS_BATCH_MAX of each; ids must be UUIDs and usernames follow
 * the login rules (INVALID_ARGUMENT). Users that do not exist are skipped,
 * as is a user named twice. Naming yourself is INVALID_ARGUMENT.
 *
 * Atomicity and races: each call is one transaction that first locks the
 * caller's and the targets' users rows in id order, so two calls touching
 * the same pair run one after the other (two users adding each other at
 * once end as friends, never as two invites) and never deadlock. A refusal
 * anywhere in a batch changes nothing.
 *
 * Threads: every function blocks on Postgres and runs on the thread that
 * owns `db` (an API worker, a CLI command). No state of its own.
 *
 * Ownership: arguments are borrowed. kn_friends_list's *out is freed with
 * kn_friends_free and *next_cursor with kn_free; both are NULL on failure.
 *
 * Errors: KN_OK or a negative kn_err with a one-line reason in msg (msg may
 * be NULL when msg_cap is 0): INVALID_ARGUMENT (input, metadata, cursor),
 * NOT_FOUND (the caller does not exist; a metadata update without an
 * edge), FAILED_PRECONDITION (adding a user you
 * blocked), RESOURCE_EXHAUSTED (the max friends limit reached), NOMEM, DB. */
#ifndef KN_FRIENDS_H
#define KN_FRIENDS_H

#include "kn_account.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kn_db kn_db;
typedef struct kn_out kn_out;
typedef struct kn_entity kn_entity;

#define KN_FRIENDS_BATCH_MAX    100         /* ids, and separately usernames, per call */
#define KN_FRIENDS_MAX_DEFAULT  1000        /* friends and invites (not blocks) per user */
#define KN_FRIEND_METADATA_MAX  (16 * 1024) /* bytes of an edge's metadata (JSON object) */
#define KN_FRIENDS_LIST_MAX     1000        /* edges per list page */
#define KN_FRIENDS_LIST_DEFAULT 100         /* a limit of 0 */
#define KN_FRIENDS_CURSOR_MAX   96          /* bytes in a cursor this module issues */

enum {
    KN_FRIEND_ANY = -1, /* a list's state filter: every state */
    KN_FRIEND_MUTUAL = 0,
    KN_FRIEND_INVITED = 1,
    KN_FRIEND_INVITER = 2,
    KN_FRIEND_BLOCKED = 3,
};

/* One edge of a list: the other user's public profile, the state as the
 * listing user sees it, when it took that state (Unix seconds) and the
 * listing user's metadata on the edge (a JSON object as text, "{}" when
 * none was set; only the edge's owner sees it). */
typedef struct kn_friend {
    kn_user user;
    int state;
    int64_t update_time;
    char *metadata;
} kn_friend;

/* kn_friend as the Friend entity (kn_entity.h): state, update_time and
 * metadata; the nested user goes through kn_user_entity. */
extern const kn_entity kn_friend_entity;

/* Add: for each target with no edge, an invite (caller 1, target 2); where
 * the target invited the caller (caller's state 2), both become friends
 * (0). Already friends or already invited: nothing changes. A target who
 * blocked the caller is skipped silently (the caller must not learn of the
 * block, as in Nakama). A target the caller blocked: FAILED_PRECONDITION
 * (delete the block first). A new invite when the caller or the target
 * already has max friends and invites (KN_FRIENDS_MAX_DEFAULT here; see
 * kn_friends_add_ex): RESOURCE_EXHAUSTED "... the limit is N". */
int kn_friends_add(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                   const char *const *usernames, size_t n_usernames, char *msg, size_t msg_cap);

/* What an add did, for its caller to tell the users (the wire handler and
 * kaos.friends_add send notifications, docs/notifications.md): one event
 * per target whose edge changed, in the order applied. Only filled when
 * the add committed (n is 0 otherwise). The caller's memory. */
#define KN_FRIENDS_EVENTS_MAX (2 * KN_FRIENDS_BATCH_MAX)
enum {
    KN_FRIEND_EVENT_INVITED = 1,  /* user_id received an invite from the caller */
    KN_FRIEND_EVENT_ACCEPTED = 2, /* the caller accepted user_id's invite */
    KN_FRIEND_EVENT_REMOVED = 3,  /* the caller deleted user_id, a mutual friend */
    KN_FRIEND_EVENT_BLOCKED = 4,  /* the caller blocked user_id (kn_friends_block_events) */
};
typedef struct kn_friend_events {
    size_t n;
    struct {
        int kind;
        char user_id[37];
    } items[KN_FRIENDS_EVENTS_MAX];
} kn_friend_events;

/* kn_friends_add that also reports what it did in *ev. */
int kn_friends_add_events(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                          const char *const *usernames, size_t n_usernames, kn_friend_events *ev,
                          char *msg, size_t msg_cap);

/* The service's settings (docs/configuration.md: max_friends), held in
 * kn_friends_deps; immutable while serving, so any thread. */
typedef struct kn_friends_config {
    int max_friends; /* friends and invites per user; 0 = KN_FRIENDS_MAX_DEFAULT */
} kn_friends_config;

/* What an add may be given besides its targets (zeroed: the defaults). */
typedef struct kn_friends_add_opts {
    int max_friends;      /* friends and invites per user; 0 = KN_FRIENDS_MAX_DEFAULT */
    const char *metadata; /* NULL: leave; else a JSON object (<= KN_FRIEND_METADATA_MAX
                           * bytes) set on the caller's edge to every target the caller
                           * is friends with or has invited once the add is done */
    kn_friend_events *ev; /* NULL, or filled with what the add did */
} kn_friends_add_opts;

/* kn_friends_add with options (opts NULL = the defaults). Metadata that is
 * not a JSON object, or too long: INVALID_ARGUMENT, before anything. */
int kn_friends_add_ex(kn_db *db, const kn_friends_add_opts *opts, const char *user_id,
                      const char *const *ids, size_t n_ids, const char *const *usernames,
                      size_t n_usernames, char *msg, size_t msg_cap);

/* Tells the users of ev what user_id's add or delete did, as persistent
 * system notifications (kn_notify_send with out for live delivery; out may
 * be NULL): KN_FRIEND_EVENT_INVITED -> code -2 "friend request received"
 * to the target, ACCEPTED -> code -3 "friend request accepted" to the
 * original inviter, REMOVED -> code -6 "friend removed" to the removed
 * friend; sender user_id. Call after the change committed; a failure is
 * logged, never undoes it. friends calls notify, never the other way round
 * (docs/notifications.md). */
void kn_friends_tell(kn_db *db, kn_out *out, const char *user_id, const kn_friend_events *ev);

/* What the composition root hands the friends routes (their service
 * context) and kaos.friends_* (the binding's ud): the service's settings
 * and where the effects of a committed change go. Filled before serving,
 * read-only after (any thread); out and blocked may be NULL. */
typedef struct kn_friends_deps {
    kn_out *out;              /* live delivery of the notifications add and delete send */
    kn_friends_config config; /* max_friends */
    /* blocker_id blocked blocked_id (the status service ends blocked_id's
     * follows of blocker_id, kn_status_block). Any thread. */
    void (*blocked)(void *ud, const char *blocker_id, const char *blocked_id);
    void *blocked_ud;
} kn_friends_deps;

/* Calls deps->blocked for each block of ev (a committed block's events). */
void kn_friends_tell_blocks(const kn_friends_deps *deps, const char *user_id,
                            const kn_friend_events *ev);

/* Delete: removes the relationship both ways (a friendship, an invite sent
 * or received, the caller's block). A block the target holds on the caller
 * stays. No relationship: nothing changes. */
int kn_friends_delete(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                      const char *const *usernames, size_t n_usernames, char *msg, size_t msg_cap);
/* kn_friends_delete that reports in *ev each mutual friend it removed
 * (KN_FRIEND_EVENT_REMOVED; invites and blocks are not told). */
int kn_friends_delete_events(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                             const char *const *usernames, size_t n_usernames, kn_friend_events *ev,
                             char *msg, size_t msg_cap);

/* Sets the caller's metadata on its edge to friend_id, whatever the edge's
 * state (Nakama's friendMetadataUpdate). metadata: a JSON object of at most
 * KN_FRIEND_METADATA_MAX bytes (INVALID_ARGUMENT). No edge from the caller
 * to friend_id: NOT_FOUND "you have no relationship with user X". */
int kn_friends_metadata_update(kn_db *db, const char *user_id, const char *friend_id,
                               const char *metadata, char *msg, size_t msg_cap);

/* A friend of a friend: `user` is a friend (state 0) of `referrer`, who is
 * a friend of the listing user (Nakama's FriendsOfFriends). */
typedef struct kn_friend_of_friend {
    char referrer[37];
    kn_user user;
} kn_friend_of_friend;

/* One page of the friends of user_id's friends, ordered by (referrer id,
 * user id): one entry per (referrer, user) pair, so a user known through
 * two friends appears twice with each referrer (as in Nakama). Never the
 * caller and never the caller's own friends (as in Nakama), never a user
 * the caller blocked or who blocked the caller. limit 0 means KN_FRIENDS_LIST_DEFAULT,
 * else 1..KN_FRIENDS_LIST_MAX; cursor NULL or "" starts at the beginning,
 * else one this function returned (INVALID_ARGUMENT otherwise). *out is
 * freed with kn_friends_of_friends_free, *next_cursor with kn_free (NULL
 * on the last page). */
int kn_friends_of_friends_list(kn_db *db, const char *user_id, int limit, const char *cursor,
                               kn_friend_of_friend **out, size_t *n_out, char **next_cursor,
                               char *msg, size_t msg_cap);
void kn_friends_of_friends_free(kn_friend_of_friend *fof, size_t n); /* accepts NULL */
/* KN_OK when cursor (client text) is one kn_friends_of_friends_list could
 * take; else INVALID_ARGUMENT. No database (fuzzing). */
int kn_friends_of_friends_cursor_check(const char *cursor, char *msg, size_t msg_cap);

/* Block: the caller's edge becomes 3 (whatever it was) and the target's
 * edge to the caller is removed unless it is a block too. */
int kn_friends_block(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                     const char *const *usernames, size_t n_usernames, char *msg, size_t msg_cap);
/* kn_friends_block that also reports each user blocked in *ev (filled only
 * when the block committed). */
int kn_friends_block_events(kn_db *db, const char *user_id, const char *const *ids, size_t n_ids,
                            const char *const *usernames, size_t n_usernames, kn_friend_events *ev,
                            char *msg, size_t msg_cap);

/* One page of the caller's edges in `state` (KN_FRIEND_ANY or 0-3), ordered
 * by (state, position, the other user's id): position is when the edge last
 * changed state, so within a state the oldest come first. limit 0 means
 * KN_FRIENDS_LIST_DEFAULT, else 1..KN_FRIENDS_LIST_MAX. cursor NULL or ""
 * starts at the beginning; otherwise a cursor this function returned for
 * the same user and state (anything else is INVALID_ARGUMENT). A cursor
 * names the last edge returned, never an offset: an edge that does not
 * change during a walk is seen exactly once. *next_cursor is NULL on the
 * last page. */
int kn_friends_list(kn_db *db, const char *user_id, int state, int limit, const char *cursor,
                    kn_friend **out, size_t *n_out, char **next_cursor, char *msg, size_t msg_cap);
void kn_friends_free(kn_friend *friends, size_t n); /* accepts NULL */
/* KN_OK when cursor (client text) is one a listing of `state` could take;
 * else INVALID_ARGUMENT with the reason in msg. No database (fuzzing). */
int kn_friends_cursor_check(const char *cursor, int state, char *msg, size_t msg_cap);

#endif
