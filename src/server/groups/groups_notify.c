/* groups_notify: what a groups call did, told to the users as system
 * notifications (kn_groups.h, "Notifications"). groups depends on notify,
 * never the other way round; the notifications go after the groups
 * transaction commits, with the same connection, and a failure is logged
 * without undoing anything. Content is {"group_id": "<uuid>"}. */
#include "groups_internal.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_notify.h"

#include <stdio.h>

/* The admins a join request is told to: superadmins first, oldest first. */
static const kn_db_stmt list_admins = {
    "groups_admins",
    "SELECT user_id::text FROM group_edge WHERE group_id = $1 AND state <= 1"
    " ORDER BY state, position, user_id LIMIT " KN_GROUPS__STR(KN_NOTIFY_BATCH_MAX),
    1};

static void send(kn_db *db, kn_out *out, const kn_notify_msg *notes, size_t n, const char *about)
{
    if (n == 0) return;
    char msg[256] = "";
    int rc = kn_notify_send(db, out, notes, n, true, msg, sizeof msg);
    if (rc) KN_WARN("groups: cannot notify about %s: %s (%s)", about, kn_err_name(rc), msg);
}

static void tell_admins(kn_db *db, kn_out *out, const kn_groups__ctx *ctx, const char *content)
{
    kn_db_rows *rows = NULL;
    const char *p[] = {ctx->group_id};
    int rc = kn_db_query(db, &list_admins, p, &rows);
    if (rc) {
        KN_WARN("groups: cannot list the admins of group %s: %s", ctx->group_id, kn_err_name(rc));
        kn_db_rows_free(rows);
        return;
    }
    kn_notify_msg notes[KN_NOTIFY_BATCH_MAX];
    size_t n = kn_db_rows_count(rows);
    for (size_t i = 0; i < n; i++)
        notes[i] = (kn_notify_msg){.user_id = kn_db_rows_get(rows, i, 0),
                                   .subject = "join request",
                                   .content = content,
                                   .code = KN_NOTIFY_CODE_GROUP_JOIN_REQUEST,
                                   .sender_id = ctx->me,
                                   .persistent = true};
    send(db, out, notes, n, "a join request");
    kn_db_rows_free(rows);
}

/* The process's listener (kn_groups_listen): set before serving, read-only
 * while calls run. */
static kn_groups_listener listener;

void kn_groups_listen(const kn_groups_listener *l)
{
    listener = l ? *l : (kn_groups_listener){0};
}

void kn_groups__tell(kn_db *db, kn_out *out, const kn_groups__ctx *ctx)
{
    if (ctx->n_events == 0) return;
    for (size_t i = 0; listener.changed && i < ctx->n_events; i++)
        if (ctx->events[i].kind != KN_GROUPS__EVENT_JOIN_REQUEST)
            listener.changed(listener.ud, db, ctx->group_id, ctx->me, ctx->events[i].kind,
                             ctx->events[i].user_id);
    char content[64];
    snprintf(content, sizeof content, "{\"group_id\":\"%s\"}", ctx->group_id);
    kn_notify_msg notes[KN_GROUPS__EVENTS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < ctx->n_events; i++) {
        int kind = ctx->events[i].kind;
        if (kind == KN_GROUPS__EVENT_JOIN_REQUEST) {
            tell_admins(db, out, ctx, content);
            continue;
        }
        if (kind != KN_GROUPS__EVENT_ADDED && kind != KN_GROUPS__EVENT_BANNED) continue;
        bool added = kind == KN_GROUPS__EVENT_ADDED;
        notes[n++] = (kn_notify_msg){
            .user_id = ctx->events[i].user_id,
            .subject = added ? "added to group" : "banned from group",
            .content = content,
            .code = added ? KN_NOTIFY_CODE_GROUP_ADD : KN_NOTIFY_CODE_GROUP_BANNED,
            .sender_id = ctx->me,
            .persistent = true,
        };
    }
    send(db, out, notes, n, "a group's users");
}
