/* groups_wire: the groups routes (kn_groups_wire.h). List replies borrow
 * the service's strings until the reply is encoded. Empty proto strings of
 * GroupCreate mean "the default"; GroupUpdate's absent fields mean
 * "unchanged". */
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_groups.h"
#include "kn_groups_wire.h"
#include "kn_mem.h"

#include <stddef.h>
#include <stdio.h>

static const char *caller(kn_req *r)
{
    return kn_req_caller(r)->user_id;
}

static kn_db *db_of(kn_req *r)
{
    return kn_req_worker(r)->db;
}

static const char *or_null(const char *s)
{
    return s && *s ? s : NULL;
}

static const char *opt(const Kaos__V1__OptionalString *s)
{
    return s ? s->value : NULL;
}

/* The service takes an int limit; refuse past it as the service would. */
static int check_limit(uint32_t limit, char *msg, size_t cap)
{
    if (limit <= KN_GROUPS_LIST_MAX) return KN_OK;
    return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d, not %u",
                      KN_GROUPS_LIST_MAX, limit);
}

int kn_groups_wire_create(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__GroupCreate *q = kn_req_msg(r)->group_create;
    kn_group_spec s = {q->name,
                       or_null(q->description),
                       or_null(q->avatar_url),
                       or_null(q->lang_tag),
                       or_null(q->metadata),
                       q->open ? 1 : 0,
                       q->max_count};
    kn_group g;
    int rc = kn_groups_create(db_of(r), caller(r), &s, &g, msg, cap);
    if (rc) return rc;
    Kaos__V1__Group out = KAOS__V1__GROUP__INIT;
    kn_entity_to_proto(&kn_group_entity, &g, &out);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_GROUP;
    env.group = &out;
    rc = kn_req_reply(r, &env);
    kn_group_deinit(&g);
    return rc;
}

int kn_groups_wire_update(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__GroupUpdate *q = kn_req_msg(r)->group_update;
    bool has_open = q->open_change_case == KAOS__V1__GROUP_UPDATE__OPEN_CHANGE_OPEN;
    kn_group_spec s = {opt(q->name),     opt(q->description), opt(q->avatar_url),
                       opt(q->lang_tag), opt(q->metadata),    has_open ? (q->open ? 1 : 0) : -1,
                       q->max_count};
    int rc = kn_groups_update(db_of(r), caller(r), q->group_id, &s, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_groups_wire_delete(kn_req *r, char *msg, size_t cap)
{
    int rc = kn_groups_delete(db_of(r), caller(r), kn_req_msg(r)->group_delete->group_id, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_groups_wire_join(kn_req *r, char *msg, size_t cap)
{
    int rc = kn_groups_join(db_of(r), kn_req_out(r), caller(r), kn_req_msg(r)->group_join->group_id,
                            msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_groups_wire_leave(kn_req *r, char *msg, size_t cap)
{
    int rc = kn_groups_leave(db_of(r), caller(r), kn_req_msg(r)->group_leave->group_id, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

/* Every batch message is (group_id, user_ids); the generated structs agree. */
#define BATCH(q) (q)->group_id, (const char *const *)(q)->user_ids, (q)->n_user_ids

int kn_groups_wire_users_add(kn_req *r, char *msg, size_t cap)
{
    int rc = kn_groups_users_add(db_of(r), kn_req_out(r), caller(r),
                                 BATCH(kn_req_msg(r)->group_users_add), msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_groups_wire_users_kick(kn_req *r, char *msg, size_t cap)
{
    int rc =
        kn_groups_users_kick(db_of(r), caller(r), BATCH(kn_req_msg(r)->group_users_kick), msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_groups_wire_users_ban(kn_req *r, char *msg, size_t cap)
{
    int rc = kn_groups_users_ban(db_of(r), kn_req_out(r), caller(r),
                                 BATCH(kn_req_msg(r)->group_users_ban), msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_groups_wire_users_promote(kn_req *r, char *msg, size_t cap)
{
    int rc = kn_groups_users_promote(db_of(r), kn_req_out(r), caller(r),
                                     BATCH(kn_req_msg(r)->group_users_promote), msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_groups_wire_users_demote(kn_req *r, char *msg, size_t cap)
{
    int rc = kn_groups_users_demote(db_of(r), caller(r), BATCH(kn_req_msg(r)->group_users_demote),
                                    msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_groups_wire_list(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__GroupsList *q = kn_req_msg(r)->groups_list;
    int rc = check_limit(q->limit, msg, cap);
    if (rc) return rc;
    kn_groups_filter f = {or_null(q->name), or_null(q->lang_tag),
                          q->open_filter_case == KAOS__V1__GROUPS_LIST__OPEN_FILTER_OPEN ? q->open
                                                                                         : -1,
                          q->members_min, q->members_max};
    kn_group *groups = NULL;
    size_t n = 0;
    char *next = NULL;
    rc = kn_groups_list(db_of(r), &f, (int)q->limit, q->cursor, &groups, &n, &next, msg, cap);
    Kaos__V1__Group **gp = NULL;
    if (rc == KN_OK)
        rc = kn_entity_to_proto_list(&kn_group_entity, groups, sizeof *groups, n, (void ***)&gp);
    if (rc == KN_OK) {
        Kaos__V1__GroupList out = KAOS__V1__GROUP_LIST__INIT;
        out.n_groups = n;
        out.groups = gp;
        out.cursor = next ? next : "";
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_GROUP_LIST;
        env.group_list = &out;
        rc = kn_req_reply(r, &env);
    }
    kn_free(gp);
    kn_groups_free(groups, n);
    kn_free(next);
    return rc;
}

/* The n entries at items (item_size apart) as `outer` messages, each with
 * its nested `inner` message (built from the entry's member at inner_off,
 * stored in the generated struct's pointer at field_off). Both arrays are
 * the caller's to kn_free, even on failure. */
static int nested_list(const kn_entity *outer, const kn_entity *inner, const void *items,
                       size_t item_size, size_t n, size_t inner_off, size_t field_off, void ***out,
                       void ***nested)
{
    int rc = kn_entity_to_proto_list(outer, items, item_size, n, out);
    if (rc == KN_OK && n)
        rc = kn_entity_to_proto_list(inner, (const char *)items + inner_off, item_size, n, nested);
    for (size_t i = 0; rc == KN_OK && i < n; i++)
        *(void **)((char *)(*out)[i] + field_off) = (*nested)[i];
    return rc;
}

/* A wire state filter: absent means every state. */
#define STATE_OF(q, CASE) ((q)->filter_case == (CASE) ? (q)->state : KN_GROUP_ANY)

int kn_groups_wire_users_list(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__GroupUsersList *q = kn_req_msg(r)->group_users_list;
    int rc = check_limit(q->limit, msg, cap);
    if (rc) return rc;
    kn_group_user *users = NULL;
    size_t n = 0;
    char *next = NULL;
    rc = kn_groups_users_list(db_of(r), q->group_id,
                              STATE_OF(q, KAOS__V1__GROUP_USERS_LIST__FILTER_STATE), (int)q->limit,
                              q->cursor, &users, &n, &next, msg, cap);
    Kaos__V1__GroupUser **gp = NULL;
    Kaos__V1__User **up = NULL;
    if (rc == KN_OK)
        rc = nested_list(&kn_group_user_entity, &kn_user_entity, users, sizeof *users, n,
                         offsetof(kn_group_user, user), offsetof(Kaos__V1__GroupUser, user),
                         (void ***)&gp, (void ***)&up);
    if (rc == KN_OK) {
        Kaos__V1__GroupUserList out = KAOS__V1__GROUP_USER_LIST__INIT;
        out.n_group_users = n;
        out.group_users = gp;
        out.cursor = next ? next : "";
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_GROUP_USER_LIST;
        env.group_user_list = &out;
        rc = kn_req_reply(r, &env);
    }
    kn_free(gp);
    kn_free(up);
    kn_group_users_free(users, n);
    kn_free(next);
    return rc;
}

int kn_groups_wire_user_list(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__UserGroupsList *q = kn_req_msg(r)->user_groups_list;
    int rc = check_limit(q->limit, msg, cap);
    if (rc) return rc;
    kn_user_group *groups = NULL;
    size_t n = 0;
    char *next = NULL;
    const char *who = q->user_id && *q->user_id ? q->user_id : caller(r);
    rc = kn_groups_user_list(db_of(r), who, STATE_OF(q, KAOS__V1__USER_GROUPS_LIST__FILTER_STATE),
                             (int)q->limit, q->cursor, &groups, &n, &next, msg, cap);
    Kaos__V1__UserGroup **ugp = NULL;
    Kaos__V1__Group **gp = NULL;
    if (rc == KN_OK)
        rc = nested_list(&kn_user_group_entity, &kn_group_entity, groups, sizeof *groups, n,
                         offsetof(kn_user_group, group), offsetof(Kaos__V1__UserGroup, group),
                         (void ***)&ugp, (void ***)&gp);
    if (rc == KN_OK) {
        Kaos__V1__UserGroupList out = KAOS__V1__USER_GROUP_LIST__INIT;
        out.n_user_groups = n;
        out.user_groups = ugp;
        out.cursor = next ? next : "";
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_USER_GROUP_LIST;
        env.user_group_list = &out;
        rc = kn_req_reply(r, &env);
    }
    kn_free(ugp);
    kn_free(gp);
    kn_user_groups_free(groups, n);
    kn_free(next);
    return rc;
}
