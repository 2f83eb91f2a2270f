/* groups: the groups service over Postgres — create, update, delete, join,
 * leave and the batch verbs (contract in kn_groups.h, prose in
 * docs/groups.md). The lists are in groups_list.c, the notifications in
 * groups_notify.c.
 *
 * Invariants:
 *   - every input is validated before the database is touched;
 *   - every call that changes a membership runs in one transaction that
 *     locks the users rows it names (the caller's and the targets'), then
 *     the group row (FOR UPDATE), and reads the caller's state under that
 *     lock — account deletion takes the same order; the member count is kept in the call's context
 *     while it works and written back before commit, so two calls on one
 *     group serialize and the count never passes max_count (the table's
 *     CHECK is the backstop);
 *   - a rule refused on any target rolls the whole call back;
 *   - an edge's position is set whenever its state changes. */
#include "groups_internal.h"
#include "kn_db.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

KN_ENTITY_DEFINE(kn_group_entity, kn_group, GROUP);

#define POSITION "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"

static const kn_db_stmt insert_group = {
    "groups_insert",
    "INSERT INTO groups (id, creator_id, name, description, avatar_url, lang_tag, metadata, open,"
    " edge_count, max_count, position)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::bool, 1, $9::int, " POSITION ")",
    9};
static const kn_db_stmt get_group = {"groups_get",
                                     "SELECT " KN_GROUPS__COLUMNS " FROM groups WHERE id = $1", 1};
/* The users rows of the caller and the targets, in id order, before the
 * group: account deletion holds a user row, then locks that user's groups
 * (0008_groups.sql), so taking users first keeps one lock order and a call
 * never deadlocks with a deletion. KEY SHARE is what the edges' foreign
 * key takes anyway; it only excludes the row's deletion. */
static const kn_db_stmt lock_users = {
    "groups_lock_users",
    "SELECT id::text FROM users WHERE id = $1 OR id = ANY ($2::uuid[]) ORDER BY id FOR KEY SHARE",
    2};
/* The group's row locked. What the call reads of the group comes from the
 * next statement: READ COMMITTED gives each statement its own snapshot,
 * and this one's was taken before it waited for the lock, so values read
 * here could miss what the previous holder committed (only the locked row
 * itself is read again). */
static const kn_db_stmt lock_group = {"groups_lock",
                                      "SELECT 1 FROM groups WHERE id = $1 FOR UPDATE", 1};
/* Under the lock: the count, the limit, openness, the caller's state and
 * the superadmin count. */
static const kn_db_stmt read_group = {
    "groups_read_locked",
    "SELECT edge_count, max_count, open,"
    " (SELECT state FROM group_edge WHERE group_id = $1 AND user_id = $2),"
    " (SELECT count(*) FROM group_edge WHERE group_id = $1 AND state = 0)"
    " FROM groups WHERE id = $1",
    2};
static const kn_db_stmt update_group = {
    "groups_update",
    "UPDATE groups SET name = COALESCE($2, name), description = COALESCE($3, description),"
    " avatar_url = COALESCE($4, avatar_url), lang_tag = COALESCE($5, lang_tag),"
    " metadata = COALESCE($6::jsonb, metadata), open = COALESCE($7::bool, open),"
    " max_count = COALESCE($8::int, max_count), update_time = now() WHERE id = $1",
    8};
static const kn_db_stmt delete_group = {"groups_delete", "DELETE FROM groups WHERE id = $1", 1};
static const kn_db_stmt write_count = {
    "groups_write_count",
    "UPDATE groups SET edge_count = $2::int, update_time = now() WHERE id = $1", 2};
static const kn_db_stmt set_state = {
    "groups_set_state",
    "INSERT INTO group_edge (group_id, user_id, state, position) VALUES ($1, $2, "
    "$3::smallint, " POSITION ") ON CONFLICT (group_id, user_id) DO UPDATE"
    " SET state = EXCLUDED.state, position = EXCLUDED.position, update_time = now()",
    3};
static const kn_db_stmt remove_edge = {
    "groups_remove_edge", "DELETE FROM group_edge WHERE group_id = $1 AND user_id = $2", 2};
/* The named users that exist, with their state in the group (NULL: none). */
static const kn_db_stmt target_states = {
    "groups_target_states",
    "SELECT u.id::text, e.state FROM users u"
    " LEFT JOIN group_edge e ON e.group_id = $1 AND e.user_id = u.id"
    " WHERE u.id = ANY ($2::uuid[]) ORDER BY u.id",
    2};

int kn_groups__check_id(const char *what, const char *id, char *msg, size_t cap)
{
    if (!id || !kn_uuid_valid(id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "%s must be a UUID", what);
    return KN_OK;
}

/* --- the group record ----------------------------------------------------------------------- */

void kn_group_deinit(kn_group *g)
{
    if (!g) return;
    kn_free(g->id);
    kn_free(g->creator_id);
    kn_free(g->name);
    kn_free(g->description);
    kn_free(g->avatar_url);
    kn_free(g->lang_tag);
    kn_free(g->metadata);
    memset(g, 0, sizeof *g);
}

int kn_groups__read(const kn_db_rows *rows, size_t r, kn_group *g)
{
    char **text[] = {&g->id,         &g->creator_id, &g->name,    &g->description,
                     &g->avatar_url, &g->lang_tag,   &g->metadata};
    for (size_t c = 0; c < sizeof text / sizeof text[0]; c++) {
        const char *v = kn_db_rows_get(rows, r, c);
        if (!(*text[c] = kn_strdup(v ? v : ""))) return KN_ERR_NOMEM;
    }
    const char *open = kn_db_rows_get(rows, r, 7);
    g->open = open && open[0] == 't';
    g->edge_count = atoi(kn_db_rows_get(rows, r, 8));
    g->max_count = atoi(kn_db_rows_get(rows, r, 9));
    g->create_time = strtoll(kn_db_rows_get(rows, r, 10), NULL, 10);
    g->update_time = strtoll(kn_db_rows_get(rows, r, 11), NULL, 10);
    return KN_OK;
}

static const kn_db_stmt state_of = {
    "groups_state_of", "SELECT state FROM group_edge WHERE group_id = $1 AND user_id = $2", 2};

int kn_groups_state(kn_db *db, const char *group_id, const char *user_id, int *state, char *msg,
                    size_t cap)
{
    *state = KN_GROUP_ANY;
    int rc = kn_groups__check_id("group id", group_id, msg, cap);
    if (rc || (rc = kn_groups__check_id("user id", user_id, msg, cap))) return rc;
    kn_db_rows *rows = NULL;
    const char *p[] = {group_id, user_id};
    if ((rc = kn_db_query(db, &state_of, p, &rows))) {
        kn_db_rows_free(rows);
        return kn_db_fail(rc, msg, cap);
    }
    if (kn_db_rows_count(rows)) *state = atoi(kn_db_rows_get(rows, 0, 0));
    kn_db_rows_free(rows);
    return KN_OK;
}

int kn_groups_get(kn_db *db, const char *group_id, kn_group *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    int rc = kn_groups__check_id("group id", group_id, msg, cap);
    if (rc) return rc;
    kn_db_rows *rows = NULL;
    const char *p[] = {group_id};
    if ((rc = kn_db_query(db, &get_group, p, &rows))) {
        kn_db_rows_free(rows);
        return kn_db_fail(rc, msg, cap);
    }
    if (kn_db_rows_count(rows) == 0)
        rc = kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "group %s does not exist", group_id);
    else if ((rc = kn_groups__read(rows, 0, out))) {
        kn_group_deinit(out);
        rc = kn_err_msg(rc, msg, cap, "out of memory");
    }
    kn_db_rows_free(rows);
    return rc;
}

/* --- create, update, delete ------------------------------------------------------------------ */

/* Checks what spec sets; `creating` requires a name. */
static int check_spec(const kn_group_spec *s, bool creating, char *msg, size_t cap)
{
    if (creating && !s->name)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "a group needs a name");
    if (s->name && !*s->name)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "name must be 1-%d bytes",
                          KN_GROUPS_NAME_MAX);
    int rc = kn_account_check_text("name", s->name, KN_GROUPS_NAME_MAX, true, msg, cap);
    if (!rc)
        rc = kn_account_check_text("description", s->description, KN_GROUPS_DESCRIPTION_MAX, true,
                                   msg, cap);
    if (!rc)
        rc = kn_account_check_text("avatar_url", s->avatar_url, KN_GROUPS_AVATAR_URL_MAX, false,
                                   msg, cap);
    if (!rc && s->lang_tag) rc = kn_account_check_lang_tag(s->lang_tag, msg, cap);
    if (!rc && s->metadata) rc = kn_account_check_metadata(s->metadata, msg, cap);
    if (rc) return rc;
    if (s->max_count < 0 || s->max_count > KN_GROUPS_MAX_COUNT_CAP)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "max_count must be 1-%d (0: %s), not %d", KN_GROUPS_MAX_COUNT_CAP,
                          creating ? "the default" : "unchanged", s->max_count);
    return KN_OK;
}

static int name_taken(const kn_db *db, int rc, const char *name, char *msg, size_t cap)
{
    if (rc == KN_ERR_ALREADY_EXISTS && !strcmp(kn_db_constraint(db), "groups_name_key"))
        return kn_err_msg(rc, msg, cap, "a group named \"%s\" already exists", name);
    return 0;
}

int kn_groups_create(kn_db *db, const char *user_id, const kn_group_spec *spec, kn_group *out,
                     char *msg, size_t cap)
{
    if (out) memset(out, 0, sizeof *out);
    int rc = kn_groups__check_id("user id", user_id, msg, cap);
    if (rc || (rc = check_spec(spec, true, msg, cap))) return rc;
    char id[KN_UUID_STR_LEN + 1], max[12];
    kn_uuid_v4(id);
    snprintf(max, sizeof max, "%d", spec->max_count ? spec->max_count : KN_GROUPS_MAX_COUNT_DEF);
    const char *p[] = {id,
                       user_id,
                       spec->name,
                       spec->description ? spec->description : "",
                       spec->avatar_url ? spec->avatar_url : "",
                       spec->lang_tag ? spec->lang_tag : "en",
                       spec->metadata ? spec->metadata : "{}",
                       spec->open > 0 ? "true" : "false",
                       max};
    const char *edge[] = {id, user_id, "0"};
    if ((rc = kn_db_begin(db))) return kn_db_fail(rc, msg, cap);
    if ((rc = kn_db_query(db, &insert_group, p, NULL)) == KN_OK)
        rc = kn_db_query(db, &set_state, edge, NULL);
    if (rc == KN_OK) rc = kn_db_commit(db);
    if (rc) {
        kn_db_rollback(db);
        if (name_taken(db, rc, spec->name, msg, cap)) return rc;
        if (rc == KN_ERR_NOT_FOUND)
            return kn_err_msg(rc, msg, cap, "user %s does not exist", user_id);
        return kn_db_fail(rc, msg, cap);
    }
    return out ? kn_groups_get(db, id, out, msg, cap) : KN_OK;
}

/* Locks the caller's and ctx->lock_ids' users rows, then the group row;
 * fills ctx from what it read. */
static int lock(kn_db *db, kn_groups__ctx *ctx, char *msg, size_t cap)
{
    char *others = kn_db_text_array(ctx->lock_ids, ctx->n_lock_ids);
    if (!others) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    kn_db_rows *rows = NULL;
    const char *u[] = {ctx->me, others};
    int rc = kn_db_query(db, &lock_users, u, &rows);
    kn_free(others);
    bool found = false;
    for (size_t i = 0; rc == KN_OK && i < kn_db_rows_count(rows); i++)
        found = found || (ctx->me && !strcasecmp(kn_db_rows_get(rows, i, 0), ctx->me));
    kn_db_rows_free(rows);
    rows = NULL;
    if (rc) return kn_db_fail(rc, msg, cap);
    if (ctx->me && !found)
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user %s does not exist", ctx->me);
    const char *p[] = {ctx->group_id, ctx->me};
    if ((rc = kn_db_query(db, &lock_group, p, &rows)) == KN_OK && kn_db_rows_count(rows)) {
        kn_db_rows_free(rows);
        rows = NULL;
        rc = kn_db_query(db, &read_group, p, &rows);
    }
    if (rc) {
        kn_db_rows_free(rows);
        return kn_db_fail(rc, msg, cap);
    }
    if (kn_db_rows_count(rows) == 0)
        rc = kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "group %s does not exist", ctx->group_id);
    else {
        const char *mine = kn_db_rows_get(rows, 0, 3);
        ctx->count = atoi(kn_db_rows_get(rows, 0, 0));
        ctx->max_count = atoi(kn_db_rows_get(rows, 0, 1));
        ctx->open = kn_db_rows_get(rows, 0, 2)[0] == 't';
        ctx->my_state = !ctx->me ? KN_GROUP_SUPERADMIN /* the system */
                        : mine   ? atoi(mine)
                                 : KN_GROUPS__NONE;
        ctx->superadmins = atoi(kn_db_rows_get(rows, 0, 4));
    }
    kn_db_rows_free(rows);
    return rc;
}

/* Runs `fn` on the group locked, with the caller's state, then writes the
 * member count back and commits; on success tells the users what happened. */
static int with_group(kn_db *db, kn_out *out, const char *me, const char *group_id,
                      kn_groups__verb fn, kn_groups__ctx *ctx, char *msg, size_t cap)
{
    int rc = me || !ctx->system_ok ? kn_groups__check_id("user id", me, msg, cap) : KN_OK;
    if (rc || (rc = kn_groups__check_id("group id", group_id, msg, cap))) return rc;
    ctx->db = db;
    ctx->me = me;
    ctx->group_id = group_id;
    ctx->n_events = 0;
    if ((rc = kn_db_begin(db))) return kn_db_fail(rc, msg, cap);
    if ((rc = lock(db, ctx, msg, cap))) goto rollback;
    int start = ctx->count;
    if ((rc = fn(ctx, msg, cap))) goto rollback;
    if (!ctx->deleted && ctx->count != start) {
        char n[12];
        snprintf(n, sizeof n, "%d", ctx->count);
        const char *w[] = {group_id, n};
        if ((rc = kn_db_query(db, &write_count, w, NULL))) {
            kn_db_fail(rc, msg, cap);
            goto rollback;
        }
    }
    if ((rc = kn_db_commit(db))) {
        kn_db_fail(rc, msg, cap);
        goto rollback;
    }
    kn_groups__tell(db, out, ctx);
    return KN_OK;
rollback:
    kn_db_rollback(db);
    ctx->n_events = 0;
    return rc;
}

static bool is_admin(int state)
{
    return state == KN_GROUP_SUPERADMIN || state == KN_GROUP_ADMIN;
}

static bool is_member(int state)
{
    return state >= KN_GROUP_SUPERADMIN && state <= KN_GROUP_MEMBER;
}

static int do_update(kn_groups__ctx *ctx, char *msg, size_t cap)
{
    const kn_group_spec *s = ctx->spec;
    if (!is_admin(ctx->my_state))
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "only admins and superadmins may update a group");
    if (s->max_count && s->max_count < ctx->count)
        return kn_err_msg(KN_ERR_FAILED_PRECONDITION, msg, cap,
                          "max_count %d is below the group's %d members", s->max_count, ctx->count);
    char max[12];
    snprintf(max, sizeof max, "%d", s->max_count);
    const char *p[] = {ctx->group_id,
                       s->name,
                       s->description,
                       s->avatar_url,
                       s->lang_tag,
                       s->metadata,
                       s->open < 0 ? NULL
                       : s->open   ? "true"
                                   : "false",
                       s->max_count ? max : NULL};
    int rc = kn_db_query(ctx->db, &update_group, p, NULL);
    if (rc && !name_taken(ctx->db, rc, s->name, msg, cap)) kn_db_fail(rc, msg, cap);
    return rc;
}

int kn_groups_update(kn_db *db, const char *user_id, const char *group_id,
                     const kn_group_spec *spec, char *msg, size_t cap)
{
    int rc = check_spec(spec, false, msg, cap);
    if (rc) return rc;
    kn_groups__ctx ctx = {.spec = spec, .system_ok = true};
    return with_group(db, NULL, user_id, group_id, do_update, &ctx, msg, cap);
}

static int do_delete(kn_groups__ctx *ctx, char *msg, size_t cap)
{
    if (ctx->my_state != KN_GROUP_SUPERADMIN)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "only a superadmin may delete a group");
    const char *p[] = {ctx->group_id};
    int rc = kn_db_query(ctx->db, &delete_group, p, NULL);
    ctx->deleted = true;
    return rc ? kn_db_fail(rc, msg, cap) : KN_OK;
}

int kn_groups_delete(kn_db *db, const char *user_id, const char *group_id, char *msg, size_t cap)
{
    kn_groups__ctx ctx = {.system_ok = true};
    return with_group(db, NULL, user_id, group_id, do_delete, &ctx, msg, cap);
}

/* --- edges ----------------------------------------------------------------------------------- */

/* Notes an event for the users to be told after commit. */
static void note(kn_groups__ctx *ctx, int kind, const char *user_id)
{
    if (ctx->n_events >= KN_GROUPS__EVENTS_MAX) return;
    ctx->events[ctx->n_events].kind = kind;
    snprintf(ctx->events[ctx->n_events].user_id, sizeof ctx->events[0].user_id, "%s", user_id);
    ctx->n_events++;
}

/* Moves `who` from state `from` (KN_GROUPS__NONE: no edge) to `to`
 * (KN_GROUPS__NONE: remove the edge), keeping the count; a move that adds
 * a member to a full group is RESOURCE_EXHAUSTED. */
static int move(kn_groups__ctx *ctx, const char *who, int from, int to, char *msg, size_t cap)
{
    /* Users never meet this (the caller is never a target, so a superadmin
     * target leaves the caller); the system may. */
    if (from == KN_GROUP_SUPERADMIN && to != KN_GROUP_SUPERADMIN && ctx->superadmins <= 1)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "the group's last superadmin cannot be kicked, banned or demoted; "
                          "promote someone to superadmin first");
    int delta = (int)is_member(to) - (int)is_member(from);
    if (delta > 0 && ctx->count + delta > ctx->max_count)
        return kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap,
                          "the group is full (%d of %d members)", ctx->count, ctx->max_count);
    char st[12];
    snprintf(st, sizeof st, "%d", to);
    const char *p[] = {ctx->group_id, who, st};
    int rc = kn_db_query(ctx->db, to == KN_GROUPS__NONE ? &remove_edge : &set_state, p, NULL);
    if (rc) return kn_db_fail(rc, msg, cap);
    ctx->count += delta;
    if (from == KN_GROUP_SUPERADMIN) ctx->superadmins--;
    if (to == KN_GROUP_SUPERADMIN) ctx->superadmins++;
    return KN_OK;
}

static int do_join(kn_groups__ctx *ctx, char *msg, size_t cap)
{
    int s = ctx->my_state;
    if (s == KN_GROUP_BANNED)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "you are banned from this group and cannot join it");
    if (s != KN_GROUPS__NONE) return KN_OK; /* a member already, or asking */
    if (ctx->count >= ctx->max_count)
        return kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap,
                          "the group is full (%d of %d members)", ctx->count, ctx->max_count);
    int rc = move(ctx, ctx->me, s, ctx->open ? KN_GROUP_MEMBER : KN_GROUP_JOIN_REQUEST, msg, cap);
    if (rc == KN_OK)
        note(ctx, ctx->open ? KN_GROUPS_JOINED : KN_GROUPS__EVENT_JOIN_REQUEST, ctx->me);
    return rc;
}

int kn_groups_join(kn_db *db, kn_out *out, const char *user_id, const char *group_id, char *msg,
                   size_t cap)
{
    kn_groups__ctx ctx = {0};
    return with_group(db, out, user_id, group_id, do_join, &ctx, msg, cap);
}

static int do_leave(kn_groups__ctx *ctx, char *msg, size_t cap)
{
    int s = ctx->my_state;
    if (s == KN_GROUPS__NONE) return KN_OK;
    if (s == KN_GROUP_BANNED)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "a banned user cannot leave the group (it would lift the ban)");
    if (s == KN_GROUP_SUPERADMIN && ctx->superadmins <= 1)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "the last superadmin cannot leave; promote someone to superadmin "
                          "first, or delete the group");
    int rc = move(ctx, ctx->me, s, KN_GROUPS__NONE, msg, cap);
    /* A request withdrawn was never a membership. */
    if (rc == KN_OK && s != KN_GROUP_JOIN_REQUEST) note(ctx, KN_GROUPS_LEFT, ctx->me);
    return rc;
}

int kn_groups_leave(kn_db *db, const char *user_id, const char *group_id, char *msg, size_t cap)
{
    kn_groups__ctx ctx = {0};
    return with_group(db, NULL, user_id, group_id, do_leave, &ctx, msg, cap);
}

/* --- the batch verbs ------------------------------------------------------------------------- */

/* What one batch verb does to one existing target in state t (NONE: not in
 * the group); the caller (ctx->my_state) is an admin or superadmin. */
typedef int (*target_fn)(kn_groups__ctx *ctx, const char *who, int t, char *msg, size_t cap);

static int add_one(kn_groups__ctx *ctx, const char *who, int t, char *msg, size_t cap)
{
    if (is_member(t)) return KN_OK;
    int rc = move(ctx, who, t, KN_GROUP_MEMBER, msg, cap); /* also lifts a ban */
    if (rc == KN_OK) note(ctx, KN_GROUPS__EVENT_ADDED, who);
    return rc;
}

static int kick_one(kn_groups__ctx *ctx, const char *who, int t, char *msg, size_t cap)
{
    if (t == KN_GROUPS__NONE) return KN_OK;
    if (t == KN_GROUP_SUPERADMIN && ctx->my_state != KN_GROUP_SUPERADMIN)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap, "admins cannot kick a superadmin");
    int rc = move(ctx, who, t, KN_GROUPS__NONE, msg, cap);
    if (rc == KN_OK && is_member(t)) note(ctx, KN_GROUPS_KICKED, who);
    return rc;
}

static int ban_one(kn_groups__ctx *ctx, const char *who, int t, char *msg, size_t cap)
{
    if (t == KN_GROUP_BANNED) return KN_OK;
    if (t == KN_GROUP_SUPERADMIN && ctx->my_state != KN_GROUP_SUPERADMIN)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap, "admins cannot ban a superadmin");
    int rc = move(ctx, who, t, KN_GROUP_BANNED, msg, cap);
    if (rc == KN_OK) note(ctx, KN_GROUPS__EVENT_BANNED, who);
    return rc;
}

static int promote_one(kn_groups__ctx *ctx, const char *who, int t, char *msg, size_t cap)
{
    if (t == KN_GROUPS__NONE || t == KN_GROUP_BANNED || t == KN_GROUP_SUPERADMIN) return KN_OK;
    if (t == KN_GROUP_ADMIN && ctx->my_state != KN_GROUP_SUPERADMIN)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "only a superadmin may promote an admin to superadmin");
    int rc = move(ctx, who, t, t - 1, msg, cap);
    if (rc == KN_OK)
        note(ctx, t == KN_GROUP_JOIN_REQUEST ? KN_GROUPS__EVENT_ADDED : KN_GROUPS_PROMOTED, who);
    return rc;
}

static int demote_one(kn_groups__ctx *ctx, const char *who, int t, char *msg, size_t cap)
{
    if (t != KN_GROUP_SUPERADMIN && t != KN_GROUP_ADMIN) return KN_OK; /* nothing below member */
    if (t == KN_GROUP_SUPERADMIN && ctx->my_state != KN_GROUP_SUPERADMIN)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap, "admins cannot demote a superadmin");
    int rc = move(ctx, who, t, t + 1, msg, cap);
    if (rc == KN_OK) note(ctx, KN_GROUPS_DEMOTED, who);
    return rc;
}

typedef struct kn_groups__batch {
    const char *verb; /* for messages: "add", "kick", ... */
    target_fn fn;
    const char *const *ids;
    size_t n;
} batch;

static int do_batch(kn_groups__ctx *ctx, char *msg, size_t cap)
{
    const batch *b = ctx->batch;
    if (!is_admin(ctx->my_state))
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "only admins and superadmins may %s users", b->verb);
    char *list = kn_db_text_array(b->ids, b->n);
    if (!list) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    kn_db_rows *rows = NULL;
    const char *p[] = {ctx->group_id, list};
    int rc = kn_db_query(ctx->db, &target_states, p, &rows);
    kn_free(list);
    if (rc) kn_db_fail(rc, msg, cap);
    for (size_t i = 0; rc == KN_OK && i < kn_db_rows_count(rows); i++) {
        const char *st = kn_db_rows_get(rows, i, 1);
        rc = b->fn(ctx, kn_db_rows_get(rows, i, 0), st ? atoi(st) : KN_GROUPS__NONE, msg, cap);
    }
    kn_db_rows_free(rows);
    return rc;
}

static int run_batch(kn_db *db, kn_out *out, const char *me, const char *group_id, batch *b,
                     char *msg, size_t cap)
{
    if (b->n == 0 || b->n > KN_GROUPS_BATCH_MAX || !b->ids)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "name 1-%d user ids to %s",
                          KN_GROUPS_BATCH_MAX, b->verb);
    for (size_t i = 0; i < b->n; i++) {
        if (!b->ids[i] || !kn_uuid_valid(b->ids[i]))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user id %zu is not a UUID", i);
        if (me && !strcasecmp(b->ids[i], me))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "you cannot %s yourself (use join or leave)", b->verb);
    }
    kn_groups__ctx ctx = {.batch = b, .lock_ids = b->ids, .n_lock_ids = b->n, .system_ok = true};
    return with_group(db, out, me, group_id, do_batch, &ctx, msg, cap);
}

int kn_groups_users_add(kn_db *db, kn_out *out, const char *user_id, const char *group_id,
                        const char *const *ids, size_t n, char *msg, size_t cap)
{
    batch b = {"add", add_one, ids, n};
    return run_batch(db, out, user_id, group_id, &b, msg, cap);
}

int kn_groups_users_kick(kn_db *db, const char *user_id, const char *group_id,
                         const char *const *ids, size_t n, char *msg, size_t cap)
{
    batch b = {"kick", kick_one, ids, n};
    return run_batch(db, NULL, user_id, group_id, &b, msg, cap);
}

int kn_groups_users_ban(kn_db *db, kn_out *out, const char *user_id, const char *group_id,
                        const char *const *ids, size_t n, char *msg, size_t cap)
{
    batch b = {"ban", ban_one, ids, n};
    return run_batch(db, out, user_id, group_id, &b, msg, cap);
}

int kn_groups_users_promote(kn_db *db, kn_out *out, const char *user_id, const char *group_id,
                            const char *const *ids, size_t n, char *msg, size_t cap)
{
    batch b = {"promote", promote_one, ids, n};
    return run_batch(db, out, user_id, group_id, &b, msg, cap);
}

int kn_groups_users_demote(kn_db *db, const char *user_id, const char *group_id,
                           const char *const *ids, size_t n, char *msg, size_t cap)
{
    batch b = {"demote", demote_one, ids, n};
    return run_batch(db, NULL, user_id, group_id, &b, msg, cap);
}
