/* kn_groups: the groups service — named communities of users with ranks, in
 * the spirit of Nakama's groups (docs/groups.md has the model, every rule
 * and every error).
 *
 * A membership (group edge) has a state, its rank; lower is higher:
 *   KN_GROUP_SUPERADMIN   0  everything an admin may, plus delete the group
 *                            and promote to or demote from superadmin
 *   KN_GROUP_ADMIN        1  update the group, add, accept, kick, ban,
 *                            promote and demote users below superadmin
 *   KN_GROUP_MEMBER       2  a member
 *   KN_GROUP_JOIN_REQUEST 3  asked to join a closed group; not a member
 *   KN_GROUP_BANNED       4  may not join; not a member
 * A group's edge_count counts states 0-2 only and never exceeds max_count;
 * every group has at least one superadmin while it has members, and a
 * group with no members left is deleted.
 *
 * Permissions: a refusal by rank is PERMISSION_DENIED with a message that
 * names the rule (docs/groups.md lists them). The acting user is the
 * `user_id` argument (the session's user on the wire, the script's choice
 * in Lua). user_id NULL is the system (server code only; update, delete
 * and the user verbs): it ranks as a superadmin, except that it may not
 * leave a group without a superadmin (kick, ban or demote its last one),
 * and its notifications have no sender.
 *
 * Atomicity and races: every call that changes a membership or a count is
 * one transaction that first locks the users rows of the caller and the
 * users it names (FOR KEY SHARE, id order; account deletion holds a user
 * row before it locks groups, so the order is one), then the group's row
 * (FOR UPDATE), so two joins, adds or promotions on one group run one
 * after the other and the member count read under the lock is the one
 * written. A refusal anywhere
 * in a batch changes nothing.
 *
 * Notifications (docs/notifications.md): after a transaction commits, the
 * call sends the system notifications of what it did through kn_notify_send
 * (persistent; live through `out` when it is not NULL): -5 "join request"
 * to the group's admins (at most KN_NOTIFY_BATCH_MAX of them), -4 "added to
 * group" to a user added or accepted, -8 "banned from group" to a user
 * banned. A failure to notify is logged and never undoes the change.
 *
 * Account deletion (0008_groups.sql, a trigger on users) removes the user's
 * memberships; when the last superadmin goes the oldest admin, else the
 * oldest member, becomes superadmin, and a group left with no member is
 * deleted.
 *
 * Threads: every function blocks on Postgres and runs on the thread that
 * owns `db` (an API worker). No state of its own; kn_out is any-thread.
 *
 * Ownership: arguments are borrowed. Results (kn_group, lists, cursors) are
 * the caller's: kn_group_deinit, kn_groups_free, kn_group_users_free,
 * kn_user_groups_free, kn_free; all NULL/zero on failure.
 *
 * Errors: KN_OK or a negative kn_err with a one-line reason in msg:
 * INVALID_ARGUMENT (input, limits, cursor), NOT_FOUND (the group, or the
 * acting user, does not exist), ALREADY_EXISTS (the name is taken),
 * PERMISSION_DENIED (a rank rule), RESOURCE_EXHAUSTED (the group is full),
 * FAILED_PRECONDITION (max_count below the member count), ABORTED (a
 * collision with a concurrent account deletion; retry), NOMEM, DB. */
#ifndef KN_GROUPS_H
#define KN_GROUPS_H

#include "kn_account.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_db kn_db;
typedef struct kn_out kn_out;
typedef struct kn_entity kn_entity;

#define KN_GROUPS_NAME_MAX        128   /* bytes of UTF-8; at least 1 */
#define KN_GROUPS_DESCRIPTION_MAX 255   /* bytes */
#define KN_GROUPS_AVATAR_URL_MAX  512   /* bytes */
#define KN_GROUPS_MAX_COUNT_CAP   10000 /* the largest max_count */
#define KN_GROUPS_MAX_COUNT_DEF   100   /* max_count 0 on create */
#define KN_GROUPS_BATCH_MAX       100   /* user ids per add, kick, ban, promote, demote */
#define KN_GROUPS_LIST_MAX        100   /* rows per list page */
#define KN_GROUPS_LIST_DEFAULT    100   /* a limit of 0 */
#define KN_GROUPS_CURSOR_MAX      96    /* bytes in a cursor this module issues */

enum {
    KN_GROUP_ANY = -1, /* a list's state filter: every state */
    KN_GROUP_SUPERADMIN = 0,
    KN_GROUP_ADMIN = 1,
    KN_GROUP_MEMBER = 2,
    KN_GROUP_JOIN_REQUEST = 3,
    KN_GROUP_BANNED = 4,
};

/* Membership changes, told to the listener after they commit (chat writes
 * them into the group's channel). The values are Nakama's codes for these
 * events in a group's chat channel. */
enum {
    KN_GROUPS_JOINED = 3,   /* user_id joined an open group */
    KN_GROUPS_ADDED = 4,    /* user_id was added, or their join request accepted */
    KN_GROUPS_LEFT = 5,     /* user_id left */
    KN_GROUPS_KICKED = 6,   /* user_id was kicked */
    KN_GROUPS_PROMOTED = 7, /* user_id was promoted (not an accepted request: ADDED) */
    KN_GROUPS_BANNED = 8,   /* user_id was banned */
    KN_GROUPS_DEMOTED = 9,  /* user_id was demoted */
};

/* Who hears of membership changes: changed() runs on the thread of the
 * call that made them, after its transaction committed, with its database
 * connection (no transaction open), once per user changed. actor_id is the
 * user who acted (the user themself for join and leave), NULL for the
 * system. */
typedef struct kn_groups_listener {
    void (*changed)(void *ud, kn_db *db, const char *group_id, const char *actor_id, int change,
                    const char *user_id);
    void *ud;
} kn_groups_listener;

/* Sets the one listener of the process (NULL: none). The groups service has
 * no object of its own (every call takes its connection), so this is a
 * process-wide setting like the allocator hook: the composition root sets
 * it before serving and clears it after the workers stopped; never while
 * calls run. */
void kn_groups_listen(const kn_groups_listener *l);

/* user_id's state in group_id (KN_GROUP_SUPERADMIN .. KN_GROUP_BANNED), or
 * KN_GROUP_ANY when they have none (the group may not exist).
 * INVALID_ARGUMENT for a bad id; DB. */
int kn_groups_state(kn_db *db, const char *group_id, const char *user_id, int *state, char *msg,
                    size_t msg_cap);

/* A group (the Group entity). metadata is a JSON object as text; times are
 * Unix seconds. */
typedef struct kn_group {
    char *id;
    char *creator_id; /* "" once the creator's account is gone */
    char *name;
    char *description;
    char *avatar_url;
    char *lang_tag;
    char *metadata;
    bool open;
    int edge_count;
    int max_count;
    int64_t create_time;
    int64_t update_time;
} kn_group;

extern const kn_entity kn_group_entity;
void kn_group_deinit(kn_group *g); /* accepts NULL and zeroed */

/* What create sets and update changes. On update a NULL string, open < 0
 * and max_count 0 leave the field as it is; on create name is required,
 * lang_tag NULL is "en", metadata NULL "{}", open < 0 false and max_count
 * 0 KN_GROUPS_MAX_COUNT_DEF. */
typedef struct kn_group_spec {
    const char *name;
    const char *description;
    const char *avatar_url;
    const char *lang_tag;
    const char *metadata;
    int open;
    int max_count;
} kn_group_spec;

/* Creates the group with user_id as its creator and superadmin (member
 * count 1). The name is unique case-insensitively (ALREADY_EXISTS). *out
 * (may be NULL) receives the group as stored. */
int kn_groups_create(kn_db *db, const char *user_id, const kn_group_spec *spec, kn_group *out,
                     char *msg, size_t msg_cap);
/* Admins and superadmins. max_count may not go below the member count. */
int kn_groups_update(kn_db *db, const char *user_id, const char *group_id,
                     const kn_group_spec *spec, char *msg, size_t msg_cap);
/* Superadmins only; memberships go with the group. */
int kn_groups_delete(kn_db *db, const char *user_id, const char *group_id, char *msg,
                     size_t msg_cap);
/* One group by id (no permission needed). */
int kn_groups_get(kn_db *db, const char *group_id, kn_group *out, char *msg, size_t msg_cap);

/* Open group: member (RESOURCE_EXHAUSTED when full). Closed: a join
 * request (also refused when full), and the admins are notified. Already a
 * member or asking: nothing changes. Banned: PERMISSION_DENIED. */
int kn_groups_join(kn_db *db, kn_out *out, const char *user_id, const char *group_id, char *msg,
                   size_t msg_cap);
/* Leaves the group, or withdraws a join request. The last superadmin may
 * not leave; a banned user may not leave (it would lift the ban); not in
 * the group: nothing changes. */
int kn_groups_leave(kn_db *db, const char *user_id, const char *group_id, char *msg,
                    size_t msg_cap);

/* The batch verbs: user_id acts on ids (1..KN_GROUPS_BATCH_MAX UUIDs, not
 * user_id itself; ids of users that do not exist are skipped). Admins and
 * superadmins only; docs/groups.md has each verb's rules per target state. */
int kn_groups_users_add(kn_db *db, kn_out *out, const char *user_id, const char *group_id,
                        const char *const *ids, size_t n, char *msg, size_t msg_cap);
int kn_groups_users_kick(kn_db *db, const char *user_id, const char *group_id,
                         const char *const *ids, size_t n, char *msg, size_t msg_cap);
int kn_groups_users_ban(kn_db *db, kn_out *out, const char *user_id, const char *group_id,
                        const char *const *ids, size_t n, char *msg, size_t msg_cap);
int kn_groups_users_promote(kn_db *db, kn_out *out, const char *user_id, const char *group_id,
                            const char *const *ids, size_t n, char *msg, size_t msg_cap);
int kn_groups_users_demote(kn_db *db, const char *user_id, const char *group_id,
                           const char *const *ids, size_t n, char *msg, size_t msg_cap);

/* Filters of kn_groups_list; every one optional. name_prefix matches names
 * that start with it, case-insensitively ('%' and '_' are literal). open:
 * -1 any, 0 closed, 1 open. members_min/max: bounds on edge_count, 0 =
 * none. */
typedef struct kn_groups_filter {
    const char *name_prefix;
    const char *lang_tag;
    int open;
    int members_min;
    int members_max;
} kn_groups_filter;

/* One page of groups, oldest first (create order, then id). limit 0 means
 * KN_GROUPS_LIST_DEFAULT, else 1..KN_GROUPS_LIST_MAX. cursor NULL or ""
 * starts at the beginning; else one this function returned for the same
 * filter. *next_cursor is NULL on the last page. */
int kn_groups_list(kn_db *db, const kn_groups_filter *f, int limit, const char *cursor,
                   kn_group **out, size_t *n_out, char **next_cursor, char *msg, size_t msg_cap);
void kn_groups_free(kn_group *groups, size_t n); /* accepts NULL */

/* A user of a group with their state (the GroupUser entity; user through
 * kn_user_entity). */
typedef struct kn_group_user {
    kn_user user;
    int state;
} kn_group_user;
extern const kn_entity kn_group_user_entity;

/* A group of a user with the user's state (the UserGroup entity; group
 * through kn_group_entity). */
typedef struct kn_user_group {
    kn_group group;
    int state;
} kn_user_group;
extern const kn_entity kn_user_group_entity;

/* One page of a group's users in `state` (KN_GROUP_ANY or 0-4), ordered by
 * (state, when they took it, user id). Anyone may list (as in Nakama). */
int kn_groups_users_list(kn_db *db, const char *group_id, int state, int limit, const char *cursor,
                         kn_group_user **out, size_t *n_out, char **next_cursor, char *msg,
                         size_t msg_cap);
void kn_group_users_free(kn_group_user *users, size_t n); /* accepts NULL */

/* One page of a user's groups in `state`, ordered like the above. */
int kn_groups_user_list(kn_db *db, const char *user_id, int state, int limit, const char *cursor,
                        kn_user_group **out, size_t *n_out, char **next_cursor, char *msg,
                        size_t msg_cap);
void kn_user_groups_free(kn_user_group *groups, size_t n); /* accepts NULL */

/* KN_OK when cursor (client text) is one the listing could take; else
 * INVALID_ARGUMENT. No database (fuzzing). kind: 'g' kn_groups_list (state
 * ignored; the filter must be the one listed with), 'm' a group's users,
 * 'u' a user's groups. */
int kn_groups_cursor_check(char kind, const kn_groups_filter *f, int state, const char *cursor,
                           char *msg, size_t msg_cap);

#endif
