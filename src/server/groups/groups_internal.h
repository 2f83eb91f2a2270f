/* groups_internal: what the groups service's files share (groups.c, the
 * verbs; groups_list.c, the lists; groups_notify.c, the notifications).
 * Not part of the contract; only src/server/groups includes it. */
#ifndef KN_GROUPS_INTERNAL_H
#define KN_GROUPS_INTERNAL_H

#include "kn_groups.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct kn_db_rows kn_db_rows;
typedef struct kn_groups__batch kn_groups__batch;

#define KN_GROUPS__STR_(x) #x
#define KN_GROUPS__STR(x)  KN_GROUPS__STR_(x)

/* A state meaning "no edge" (not in the group). */
#define KN_GROUPS__NONE (-1)

/* The columns kn_groups__read reads, in its order, then position. */
#define KN_GROUPS__COLUMNS                                                                         \
    "id::text, COALESCE(creator_id::text, ''), name, description, avatar_url, lang_tag,"           \
    " metadata::text, open, edge_count, max_count, floor(extract(epoch FROM "                      \
    "create_time))::bigint,"                                                                       \
    " floor(extract(epoch FROM update_time))::bigint, position"
#define KN_GROUPS__N_COLUMNS 13

/* What a call did to a user, to be told after commit: a join request (the
 * admins are notified), or one of the KN_GROUPS_* changes (the listener
 * hears of all of them; ADDED and BANNED are also notified to the user). */
enum {
    KN_GROUPS__EVENT_JOIN_REQUEST = 1, /* user_id asked to join: tell the admins */
    KN_GROUPS__EVENT_ADDED = KN_GROUPS_ADDED,
    KN_GROUPS__EVENT_BANNED = KN_GROUPS_BANNED,
};
#define KN_GROUPS__EVENTS_MAX KN_GROUPS_BATCH_MAX

/* One call on a locked group: what was read under the lock, what the call
 * changes, and what to tell afterwards. */
typedef struct kn_groups__ctx {
    kn_db *db;
    const char *me; /* NULL: the system (system_ok calls only) */
    const char *group_id;
    int my_state; /* KN_GROUPS__NONE when not in the group */
    int count;    /* members, kept up to date by the call */
    int max_count;
    int superadmins;
    bool open;
    bool deleted;
    bool system_ok;                /* update, delete, the user verbs: me may be NULL */
    const kn_group_spec *spec;     /* update */
    const kn_groups__batch *batch; /* the batch verbs */
    const char *const *lock_ids;   /* users locked with the caller (the targets) */
    size_t n_lock_ids;
    size_t n_events;
    struct {
        int kind;
        char user_id[37];
    } events[KN_GROUPS__EVENTS_MAX];
} kn_groups__ctx;

typedef int (*kn_groups__verb)(kn_groups__ctx *ctx, char *msg, size_t cap);

/* Sends the notifications of ctx's events (after commit; failures logged). */
void kn_groups__tell(kn_db *db, kn_out *out, const kn_groups__ctx *ctx);

/* Fills g from the KN_GROUPS__COLUMNS of row r (columns from 0); on
 * failure (NOMEM) the caller deinits. */
int kn_groups__read(const kn_db_rows *rows, size_t r, kn_group *g);
int kn_groups__check_id(const char *what, const char *id, char *msg, size_t cap);

#endif
