/* dispatch: one received envelope -> one completion or one event.
 *
 * Events (match data, presence, match end, shutdown notice, notifications,
 * status and stream presences, stream data) go to the
 * callback registered for their kind. Everything else answers a request:
 * it is matched by cid to the pending completion, which leaves the pending
 * map before it fires, so it fires exactly once and may send new requests.
 * REPLIES has one row per kind of answer: the envelope cases that answer
 * it and a deliver function that turns the message into the public struct
 * and calls the completion (with env NULL: calls it with the error only).
 * An Error answering a pending cid goes to that completion; an Error for no
 * pending cid (cid 0, or a request sent raw) goes to the error event. Other
 * envelopes for no pending cid, and envelope types a client never receives,
 * are counted (stats.unexpected_received) and dropped.
 *
 * The structs handed to callbacks point into the decoded envelope (freed by
 * the caller right after) or into client scratch, which is why they are
 * valid only during the callback. A local failure while preparing an answer
 * (out of memory) fires the completion with that error instead.
 *
 * Entities (users, storage objects and acks, presences) become public
 * structs through their one description (kn_entities.h): the tables below,
 * checked against kaos.h at compile time. */
#include "client_internal.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t no_bytes[1];

static const char *str(const char *s)
{
    return s ? s : "";
}

KN_ENTITY_ASSERT_VIEW(kaos_presence, PRESENCE);
KN_ENTITY_ASSERT_VIEW(kaos_user, USER);
KN_ENTITY_ASSERT_VIEW(kaos_storage_object, STORAGE_OBJECT);
KN_ENTITY_ASSERT_VIEW(kaos_storage_ack, STORAGE_ACK);
KN_ENTITY_DEFINE(kaos_client__presence_entity, kaos_presence, PRESENCE);
KN_ENTITY_DEFINE(kaos_client__user_entity, kaos_user, USER);
KN_ENTITY_DEFINE(kaos_client__storage_object_entity, kaos_storage_object, STORAGE_OBJECT);
KN_ENTITY_DEFINE(kaos_client__storage_ack_entity, kaos_storage_ack, STORAGE_ACK);
/* kaos_friend holds its user as a kaos_user, which the entity leaves to
 * USER: the table maps state and update_time, and no view assert applies. */
KN_ENTITY_DEFINE(kaos_client__friend_entity, kaos_friend, FRIEND);
KN_ENTITY_ASSERT_VIEW(kaos_notification, NOTIFICATION);
KN_ENTITY_DEFINE(kaos_client__notification_entity, kaos_notification, NOTIFICATION);
KN_ENTITY_ASSERT_VIEW(kaos_group, GROUP);
KN_ENTITY_DEFINE(kaos_client__group_entity, kaos_group, GROUP);
/* As kaos_friend: the nested user and group go through USER and GROUP. */
KN_ENTITY_DEFINE(kaos_client__group_user_entity, kaos_group_user, GROUP_USER);
KN_ENTITY_DEFINE(kaos_client__user_group_entity, kaos_user_group, USER_GROUP);
KN_ENTITY_ASSERT_VIEW(kaos_user_presence, USER_PRESENCE);
KN_ENTITY_DEFINE(kaos_client__user_presence_entity, kaos_user_presence, USER_PRESENCE);
KN_ENTITY_ASSERT_VIEW(kaos_channel_message, CHANNEL_MESSAGE);
KN_ENTITY_DEFINE(kaos_client__channel_message_entity, kaos_channel_message, CHANNEL_MESSAGE);
KN_ENTITY_ASSERT_VIEW(kaos_leaderboard_record, LEADERBOARD_RECORD);
KN_ENTITY_DEFINE(kaos_client__leaderboard_record_entity, kaos_leaderboard_record,
                 LEADERBOARD_RECORD);
KN_ENTITY_ASSERT_VIEW(kaos_tournament, TOURNAMENT);
KN_ENTITY_DEFINE(kaos_client__tournament_entity, kaos_tournament, TOURNAMENT);

/* The view of message m (NULL: absent) as the entity's public struct. Views
 * have no inline text, so the mapping cannot fail. */
static void view(const kn_entity *e, const void *m, void *out)
{
    int rc = kn_entity_from_proto(e, m, out);
    assert(rc == KN_OK);
    (void)rc;
}

/* The n notifications at `msgs` as views in a fresh array (kn_free it);
 * NULL when n is 0 or out of memory. */
static kaos_notification *notification_views(Kaos__V1__Notification *const *msgs, size_t n)
{
    kaos_notification *views = n ? kn_calloc(n, sizeof *views) : NULL;
    for (size_t i = 0; views && i < n; i++)
        view(&kaos_client__notification_entity, msgs[i], &views[i]);
    return views;
}

/* The joins then the leaves (a and b: na and nb UserPresence messages) as
 * views in one fresh array (kn_free it); NULL when there are none or out
 * of memory. */
static kaos_user_presence *user_presence_views(Kaos__V1__UserPresence *const *a, size_t na,
                                               Kaos__V1__UserPresence *const *b, size_t nb)
{
    size_t n = na + nb;
    kaos_user_presence *views = n ? kn_calloc(n, sizeof *views) : NULL;
    for (size_t i = 0; views && i < n; i++)
        view(&kaos_client__user_presence_entity, i < na ? a[i] : b[i - na], &views[i]);
    return views;
}

static kaos_presence presence_view(const Kaos__V1__Presence *p)
{
    kaos_presence v;
    view(&kaos_client__presence_entity, p, &v);
    return v;
}

/* Room for n presences in the client's scratch; NULL when it cannot grow. */
static kaos_presence *presence_scratch(kaos_client *c, size_t n)
{
    if (n <= c->presences_cap) return c->presences;
    if (n > SIZE_MAX / sizeof *c->presences) return NULL;
    kaos_presence *grown = kn_realloc(c->presences, n * sizeof *grown);
    if (!grown) return NULL;
    c->presences = grown;
    c->presences_cap = n;
    return grown;
}

static kaos_user user_view(const Kaos__V1__User *u)
{
    kaos_user v;
    view(&kaos_client__user_entity, u, &v);
    return v;
}

/* Room for n users in the client's scratch; NULL when it cannot grow. */
static kaos_user *user_scratch(kaos_client *c, size_t n)
{
    if (n <= c->users_cap) return c->users;
    if (n > SIZE_MAX / sizeof *c->users) return NULL;
    kaos_user *grown = kn_realloc(c->users, n * sizeof *grown);
    if (!grown) return NULL;
    c->users = grown;
    c->users_cap = n;
    return grown;
}

/* --- answers: one deliver function per reply kind ------------------------------------
 *
 * deliver(c, p, r, env): env is the answer (r->code KAOS_OK), or NULL for
 * an error (r says which). Applies what the answer means to the client,
 * then calls p's completion if there is one. Returns KN_ERR_NOMEM, without
 * calling it, when the answer could not be prepared; the caller then calls
 * deliver again with env NULL and that error. */
typedef int (*deliver_fn)(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                          const kn_envelope *env);

/* The completion of `p` as type T, or NULL. */
#define FN(T, p) ((T)(p)->fn)

static int deliver_done(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                        const kn_envelope *env)
{
    (void)env;
    if (p->fn) FN(kaos_done_fn, p)(c, r, p->ud);
    return KN_OK;
}

static int deliver_session(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                           const kn_envelope *env)
{
    kaos_session_fn fn = FN(kaos_session_fn, p);
    if (!env) {
        if (fn) fn(c, r, NULL, p->ud);
        return KN_OK;
    }
    int rc = kaos_client__session_store(c, env->session);
    if (rc < 0) return rc;
    KN_INFO("authenticated as user %s (session %s)", c->session.user_id, c->session.session_id);
    /* Before the completion, so a status it sets comes after and wins. */
    if (c->cfg.appear_online && (rc = kaos_client__appear_online(c)) < 0)
        KN_WARN("cannot appear online: %s", kn_err_text(rc));
    if (fn) fn(c, r, &c->session.view, p->ud);
    return KN_OK;
}

static int deliver_match(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                         const kn_envelope *env)
{
    kaos_match_fn fn = FN(kaos_match_fn, p);
    if (!env) {
        if (fn) fn(c, r, NULL, p->ud);
        return KN_OK;
    }
    const Kaos__V1__Match *m = env->match;
    kaos_presence *others = presence_scratch(c, m->n_presences);
    if (m->n_presences && !others) return KN_ERR_NOMEM;
    for (size_t i = 0; i < m->n_presences; i++)
        others[i] = presence_view(m->presences[i]);
    kaos_match view = {
        .match_id = str(m->match_id),
        .handle = m->match,
        .size = m->size,
        .max_size = m->max_size,
        .authoritative = m->authoritative,
        .self = presence_view(m->self),
        .presences = others,
        .presence_count = m->n_presences,
    };
    KN_DEBUG("in match %s (handle %u, size %u)", view.match_id, view.handle, view.size);
    if (fn) fn(c, r, &view, p->ud);
    return KN_OK;
}

static int deliver_match_list(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                              const kn_envelope *env)
{
    kaos_match_list_fn fn = FN(kaos_match_list_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, p->ud);
        return KN_OK;
    }
    const Kaos__V1__MatchList *l = env->match_list;
    kaos_match_info *list = l->n_matches ? kn_calloc(l->n_matches, sizeof *list) : NULL;
    if (l->n_matches && !list) return KN_ERR_NOMEM;
    for (size_t i = 0; i < l->n_matches; i++) {
        const Kaos__V1__MatchInfo *m = l->matches[i];
        list[i] = (kaos_match_info){str(m->match_id), m->authoritative, str(m->label),
                                    m->size,          m->tick_rate,     str(m->handler)};
    }
    fn(c, r, list, l->n_matches, p->ud);
    kn_free(list);
    return KN_OK;
}

static int deliver_pong(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                        const kn_envelope *env)
{
    kaos_pong_fn fn = FN(kaos_pong_fn, p);
    int64_t rtt_ms = env ? kn_time_mono_ms() - (int64_t)env->pong->client_time_ms : 0;
    /* The keepalive's Pong (no completion) proves the link is alive; nobody asked for it. */
    if (!fn) KN_DEBUG("keepalive rtt %lld ms", (long long)rtt_ms);
    if (fn) fn(c, r, rtt_ms, p->ud);
    return KN_OK;
}

static int deliver_rpc(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                       const kn_envelope *env)
{
    kaos_rpc_fn fn = FN(kaos_rpc_fn, p);
    const char *payload = env ? str(env->rpc->payload) : "";
    if (fn) fn(c, r, payload, strlen(payload), p->ud);
    return KN_OK;
}

static int deliver_account(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                           const kn_envelope *env)
{
    kaos_account_fn fn = FN(kaos_account_fn, p);
    if (!fn) return KN_OK;
    if (!env) {
        fn(c, r, NULL, p->ud);
        return KN_OK;
    }
    const Kaos__V1__Account *a = env->account;
    kaos_account view = {
        .user = user_view(a->user),
        .email = str(a->email),
        .custom_id = str(a->custom_id),
        .device_ids = (const char *const *)a->device_ids,
        .device_count = a->n_device_ids,
        .disable_time = a->disable_time,
        .wallet = a->wallet && *a->wallet ? a->wallet : "{}",
    };
    fn(c, r, &view, p->ud);
    return KN_OK;
}

static int deliver_users(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                         const kn_envelope *env)
{
    kaos_users_fn fn = FN(kaos_users_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, p->ud);
        return KN_OK;
    }
    const Kaos__V1__Users *u = env->users;
    kaos_user *users = user_scratch(c, u->n_users);
    if (u->n_users && !users) return KN_ERR_NOMEM;
    for (size_t i = 0; i < u->n_users; i++)
        users[i] = user_view(u->users[i]);
    fn(c, r, users, u->n_users, p->ud);
    return KN_OK;
}

static int deliver_storage_acks(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                                const kn_envelope *env)
{
    kaos_storage_acks_fn fn = FN(kaos_storage_acks_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, p->ud);
        return KN_OK;
    }
    const Kaos__V1__StorageAcks *a = env->storage_acks;
    kaos_storage_ack *acks = a->n_acks ? kn_calloc(a->n_acks, sizeof *acks) : NULL;
    if (a->n_acks && !acks) return KN_ERR_NOMEM;
    for (size_t i = 0; i < a->n_acks; i++)
        view(&kaos_client__storage_ack_entity, a->acks[i], &acks[i]);
    fn(c, r, acks, a->n_acks, p->ud);
    kn_free(acks);
    return KN_OK;
}

/* StorageObjects (a read, no cursor) and StorageObjectList (a page). */
static int deliver_storage_objects(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                                   const kn_envelope *env)
{
    kaos_storage_objects_fn fn = FN(kaos_storage_objects_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, "", p->ud);
        return KN_OK;
    }
    bool page = env->message_case == KAOS__V1__ENVELOPE__MESSAGE_STORAGE_OBJECT_LIST;
    Kaos__V1__StorageObject **objs =
        page ? env->storage_object_list->objects : env->storage_objects->objects;
    size_t n = page ? env->storage_object_list->n_objects : env->storage_objects->n_objects;
    kaos_storage_object *views = n ? kn_calloc(n, sizeof *views) : NULL;
    if (n && !views) return KN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        view(&kaos_client__storage_object_entity, objs[i], &views[i]);
    fn(c, r, views, n, page ? str(env->storage_object_list->cursor) : "", p->ud);
    kn_free(views);
    return KN_OK;
}

/* FriendList: each friend's state and time, and its user's profile. */
static int deliver_friends(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                           const kn_envelope *env)
{
    kaos_friends_fn fn = FN(kaos_friends_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, "", p->ud);
        return KN_OK;
    }
    const Kaos__V1__FriendList *l = env->friend_list;
    kaos_friend *views = l->n_friends ? kn_calloc(l->n_friends, sizeof *views) : NULL;
    if (l->n_friends && !views) return KN_ERR_NOMEM;
    for (size_t i = 0; i < l->n_friends; i++) {
        view(&kaos_client__friend_entity, l->friends[i], &views[i]);
        views[i].user = user_view(l->friends[i]->user);
    }
    fn(c, r, views, l->n_friends, str(l->cursor), p->ud);
    kn_free(views);
    return KN_OK;
}

/* FriendsOfFriends: each entry's referrer and user profile. */
static int deliver_friends_of_friends(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                                      const kn_envelope *env)
{
    kaos_friends_of_friends_fn fn = FN(kaos_friends_of_friends_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, "", p->ud);
        return KN_OK;
    }
    const Kaos__V1__FriendsOfFriends *l = env->friends_of_friends;
    size_t n = l->n_friends_of_friends;
    kaos_friend_of_friend *views = n ? kn_calloc(n, sizeof *views) : NULL;
    if (n && !views) return KN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        views[i].referrer = str(l->friends_of_friends[i]->referrer);
        views[i].user = user_view(l->friends_of_friends[i]->user);
    }
    fn(c, r, views, n, str(l->cursor), p->ud);
    kn_free(views);
    return KN_OK;
}

/* NotificationList: the notifications and the cacheable cursor. */
static int deliver_notifications(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                                 const kn_envelope *env)
{
    kaos_notifications_fn fn = FN(kaos_notifications_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, "", p->ud);
        return KN_OK;
    }
    const Kaos__V1__NotificationList *l = env->notification_list;
    kaos_notification *views = notification_views(l->notifications, l->n_notifications);
    if (l->n_notifications && !views) return KN_ERR_NOMEM;
    fn(c, r, views, l->n_notifications, str(l->cacheable_cursor), p->ud);
    kn_free(views);
    return KN_OK;
}

static kaos_group group_view(const Kaos__V1__Group *g)
{
    kaos_group v = {0};
    view(&kaos_client__group_entity, g, &v);
    return v;
}

/* Group: the group as created. */
static int deliver_group(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                         const kn_envelope *env)
{
    kaos_group_fn fn = FN(kaos_group_fn, p);
    if (!fn) return KN_OK;
    kaos_group g = env ? group_view(env->group) : (kaos_group){0};
    fn(c, r, env ? &g : NULL, p->ud);
    return KN_OK;
}

/* GroupList: the groups and the cursor. */
static int deliver_groups(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                          const kn_envelope *env)
{
    kaos_groups_fn fn = FN(kaos_groups_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, "", p->ud);
        return KN_OK;
    }
    const Kaos__V1__GroupList *l = env->group_list;
    kaos_group *views = l->n_groups ? kn_calloc(l->n_groups, sizeof *views) : NULL;
    if (l->n_groups && !views) return KN_ERR_NOMEM;
    for (size_t i = 0; i < l->n_groups; i++)
        views[i] = group_view(l->groups[i]);
    fn(c, r, views, l->n_groups, str(l->cursor), p->ud);
    kn_free(views);
    return KN_OK;
}

/* GroupUserList: each user's state and profile. */
static int deliver_group_users(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                               const kn_envelope *env)
{
    kaos_group_users_fn fn = FN(kaos_group_users_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, "", p->ud);
        return KN_OK;
    }
    const Kaos__V1__GroupUserList *l = env->group_user_list;
    kaos_group_user *views = l->n_group_users ? kn_calloc(l->n_group_users, sizeof *views) : NULL;
    if (l->n_group_users && !views) return KN_ERR_NOMEM;
    for (size_t i = 0; i < l->n_group_users; i++) {
        view(&kaos_client__group_user_entity, l->group_users[i], &views[i]);
        views[i].user = user_view(l->group_users[i]->user);
    }
    fn(c, r, views, l->n_group_users, str(l->cursor), p->ud);
    kn_free(views);
    return KN_OK;
}

/* UserGroupList: each group and the user's state in it. */
static int deliver_user_groups(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                               const kn_envelope *env)
{
    kaos_user_groups_fn fn = FN(kaos_user_groups_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, "", p->ud);
        return KN_OK;
    }
    const Kaos__V1__UserGroupList *l = env->user_group_list;
    kaos_user_group *views = l->n_user_groups ? kn_calloc(l->n_user_groups, sizeof *views) : NULL;
    if (l->n_user_groups && !views) return KN_ERR_NOMEM;
    for (size_t i = 0; i < l->n_user_groups; i++) {
        view(&kaos_client__user_group_entity, l->user_groups[i], &views[i]);
        views[i].group = group_view(l->user_groups[i]->group);
    }
    fn(c, r, views, l->n_user_groups, str(l->cursor), p->ud);
    kn_free(views);
    return KN_OK;
}

/* Status: the followed users' presences online now. */
static int deliver_status(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                          const kn_envelope *env)
{
    kaos_status_fn fn = FN(kaos_status_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, p->ud);
        return KN_OK;
    }
    const Kaos__V1__Status *s = env->status;
    kaos_user_presence *views = user_presence_views(s->presences, s->n_presences, NULL, 0);
    if (s->n_presences && !views) return KN_ERR_NOMEM;
    fn(c, r, views, s->n_presences, p->ud);
    kn_free(views);
    return KN_OK;
}

/* Channel: the channel joined, the others on it and this session. */
static int deliver_channel(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                           const kn_envelope *env)
{
    kaos_channel_fn fn = FN(kaos_channel_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, p->ud);
        return KN_OK;
    }
    const Kaos__V1__Channel *ch = env->channel;
    kaos_user_presence *others = user_presence_views(ch->presences, ch->n_presences, NULL, 0);
    if (ch->n_presences && !others) return KN_ERR_NOMEM;
    kaos_channel v = {.id = str(ch->id),
                      .presences = others,
                      .presence_count = ch->n_presences,
                      .room_name = str(ch->room_name),
                      .group_id = str(ch->group_id),
                      .user_id_one = str(ch->user_id_one),
                      .user_id_two = str(ch->user_id_two)};
    view(&kaos_client__user_presence_entity, ch->self, &v.self);
    fn(c, r, &v, p->ud);
    kn_free(others);
    return KN_OK;
}

/* ChannelMessageAck: the message as stored and delivered. */
static int deliver_channel_message(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                                   const kn_envelope *env)
{
    kaos_channel_message_ack_fn fn = FN(kaos_channel_message_ack_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, p->ud);
        return KN_OK;
    }
    kaos_channel_message m;
    view(&kaos_client__channel_message_entity, env->channel_message_ack, &m);
    fn(c, r, &m, p->ud);
    return KN_OK;
}

/* ChannelMessageList: a page of history and its two cursors. */
static int deliver_channel_messages(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                                    const kn_envelope *env)
{
    kaos_channel_messages_fn fn = FN(kaos_channel_messages_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, "", "", p->ud);
        return KN_OK;
    }
    const Kaos__V1__ChannelMessageList *l = env->channel_message_list;
    kaos_channel_message *views = l->n_messages ? kn_calloc(l->n_messages, sizeof *views) : NULL;
    if (l->n_messages && !views) return KN_ERR_NOMEM;
    for (size_t i = 0; i < l->n_messages; i++)
        view(&kaos_client__channel_message_entity, l->messages[i], &views[i]);
    fn(c, r, views, l->n_messages, str(l->next_cursor), str(l->prev_cursor), p->ud);
    kn_free(views);
    return KN_OK;
}

static int deliver_ticket(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                          const kn_envelope *env)
{
    kaos_ticket_fn fn = FN(kaos_ticket_fn, p);
    if (fn) fn(c, r, env ? str(env->matchmaker_ticket->ticket) : "", p->ud);
    return KN_OK;
}

/* LeaderboardRecord: the record as written. */
static int deliver_leaderboard_record(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                                      const kn_envelope *env)
{
    kaos_leaderboard_record_fn fn = FN(kaos_leaderboard_record_fn, p);
    if (!fn) return KN_OK;
    kaos_leaderboard_record v = {0};
    if (env) view(&kaos_client__leaderboard_record_entity, env->leaderboard_record, &v);
    fn(c, r, env ? &v : NULL, p->ud);
    return KN_OK;
}

static kaos_leaderboard_record *record_views(Kaos__V1__LeaderboardRecord **m, size_t n)
{
    kaos_leaderboard_record *v = n ? kn_calloc(n, sizeof *v) : NULL;
    for (size_t i = 0; v && i < n; i++)
        view(&kaos_client__leaderboard_record_entity, m[i], &v[i]);
    return v;
}

/* LeaderboardRecordList: the page, the owners' records, the cursor. */
static int deliver_leaderboard_records(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                                       const kn_envelope *env)
{
    kaos_leaderboard_records_fn fn = FN(kaos_leaderboard_records_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, NULL, 0, "", "", 0, p->ud);
        return KN_OK;
    }
    const Kaos__V1__LeaderboardRecordList *l = env->leaderboard_record_list;
    kaos_leaderboard_record *recs = record_views(l->records, l->n_records);
    kaos_leaderboard_record *owners = record_views(l->owner_records, l->n_owner_records);
    if ((l->n_records && !recs) || (l->n_owner_records && !owners)) {
        kn_free(recs);
        kn_free(owners);
        return KN_ERR_NOMEM;
    }
    fn(c, r, recs, l->n_records, owners, l->n_owner_records, str(l->next_cursor),
       str(l->prev_cursor), l->rank_count, p->ud);
    kn_free(recs);
    kn_free(owners);
    return KN_OK;
}

/* TournamentList: the page and the cursor. */
static int deliver_tournaments(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                               const kn_envelope *env)
{
    kaos_tournaments_fn fn = FN(kaos_tournaments_fn, p);
    if (!fn) return KN_OK;
    if (!env) {
        fn(c, r, NULL, 0, "", p->ud);
        return KN_OK;
    }
    const Kaos__V1__TournamentList *l = env->tournament_list;
    kaos_tournament *v = l->n_tournaments ? kn_calloc(l->n_tournaments, sizeof *v) : NULL;
    if (l->n_tournaments && !v) return KN_ERR_NOMEM;
    for (size_t i = 0; i < l->n_tournaments; i++) {
        view(&kaos_client__tournament_entity, l->tournaments[i], &v[i]);
        v[i].operator_ = l->tournaments[i]->operator_;
    }
    fn(c, r, v, l->n_tournaments, str(l->cursor), p->ud);
    kn_free(v);
    return KN_OK;
}

/* The view of a Party message; its presences are *members' (kn_free). */
static int party_view(const Kaos__V1__Party *m, kaos_party *v, kaos_user_presence **members)
{
    *members = user_presence_views(m->presences, m->n_presences, NULL, 0);
    if (m->n_presences && !*members) return KN_ERR_NOMEM;
    *v = (kaos_party){.party_id = str(m->party_id),
                      .open = m->open,
                      .hidden = m->hidden,
                      .max_size = m->max_size,
                      .label = str(m->label),
                      .presences = *members,
                      .presence_count = m->n_presences};
    view(&kaos_client__user_presence_entity, m->self, &v->self);
    view(&kaos_client__user_presence_entity, m->leader, &v->leader);
    return KN_OK;
}

/* PartyList: the parties listed, best first. */
static int deliver_party_list(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                              const kn_envelope *env)
{
    kaos_party_list_fn fn = FN(kaos_party_list_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, p->ud);
        return KN_OK;
    }
    const Kaos__V1__PartyList *l = env->party_list;
    size_t n = l->n_parties;
    kaos_party *views = n ? kn_calloc(n, sizeof *views) : NULL;
    kaos_user_presence **members = n ? kn_calloc(n, sizeof *members) : NULL;
    int rc = n && (!views || !members) ? KN_ERR_NOMEM : KN_OK;
    for (size_t i = 0; rc == KN_OK && i < n; i++)
        rc = party_view(l->parties[i], &views[i], &members[i]);
    if (rc == KN_OK) fn(c, r, views, n, p->ud);
    for (size_t i = 0; members && i < n; i++)
        kn_free(members[i]);
    kn_free(members);
    kn_free(views);
    return rc;
}

/* Party (create, an open join) or Ack (a closed party's join: pending). */
static int deliver_party(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                         const kn_envelope *env)
{
    kaos_party_fn fn = FN(kaos_party_fn, p);
    if (!fn) return KN_OK;
    if (!env || env->message_case != KAOS__V1__ENVELOPE__MESSAGE_PARTY) {
        fn(c, r, NULL, p->ud);
        return KN_OK;
    }
    kaos_party v;
    kaos_user_presence *members = NULL;
    int rc = party_view(env->party, &v, &members);
    if (rc) return rc;
    fn(c, r, &v, p->ud);
    kn_free(members);
    return KN_OK;
}

/* PartyJoinRequest: the pending requests. */
static int deliver_party_requests(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                                  const kn_envelope *env)
{
    kaos_party_requests_fn fn = FN(kaos_party_requests_fn, p);
    if (!env || !fn) {
        if (fn) fn(c, r, NULL, 0, p->ud);
        return KN_OK;
    }
    const Kaos__V1__PartyJoinRequest *q = env->party_join_request;
    kaos_user_presence *views = user_presence_views(q->presences, q->n_presences, NULL, 0);
    if (q->n_presences && !views) return KN_ERR_NOMEM;
    fn(c, r, views, q->n_presences, p->ud);
    kn_free(views);
    return KN_OK;
}

static int deliver_party_ticket(kaos_client *c, const kaos_pending *p, const kaos_result *r,
                                const kn_envelope *env)
{
    kaos_ticket_fn fn = FN(kaos_ticket_fn, p);
    if (fn) fn(c, r, env ? str(env->party_matchmaker_ticket->ticket) : "", p->ud);
    return KN_OK;
}

/* One row per reply kind: the envelopes that answer it (0 = no other) and
 * how they reach the completion. Adding a reply kind: a row here, a
 * completion type in kaos.h. */
typedef struct reply_row {
    Kaos__V1__Envelope__MessageCase answers[2];
    deliver_fn deliver;
} reply_row;

#define ANSWER(name) KAOS__V1__ENVELOPE__MESSAGE_##name

static const reply_row replies[KAOS_REPLY_KIND_COUNT] = {
    [KAOS_REPLY_DONE] = {{ANSWER(ACK)}, deliver_done},
    [KAOS_REPLY_SESSION] = {{ANSWER(SESSION)}, deliver_session},
    [KAOS_REPLY_MATCH] = {{ANSWER(MATCH)}, deliver_match},
    [KAOS_REPLY_MATCH_LIST] = {{ANSWER(MATCH_LIST)}, deliver_match_list},
    [KAOS_REPLY_PONG] = {{ANSWER(PONG)}, deliver_pong},
    [KAOS_REPLY_RPC] = {{ANSWER(RPC)}, deliver_rpc},
    [KAOS_REPLY_ACCOUNT] = {{ANSWER(ACCOUNT)}, deliver_account},
    [KAOS_REPLY_USERS] = {{ANSWER(USERS)}, deliver_users},
    [KAOS_REPLY_STORAGE_ACKS] = {{ANSWER(STORAGE_ACKS)}, deliver_storage_acks},
    [KAOS_REPLY_STORAGE_OBJECTS] = {{ANSWER(STORAGE_OBJECTS), ANSWER(STORAGE_OBJECT_LIST)},
                                    deliver_storage_objects},
    [KAOS_REPLY_FRIENDS] = {{ANSWER(FRIEND_LIST)}, deliver_friends},
    [KAOS_REPLY_NOTIFICATIONS] = {{ANSWER(NOTIFICATION_LIST)}, deliver_notifications},
    [KAOS_REPLY_STATUS] = {{ANSWER(STATUS)}, deliver_status},
    [KAOS_REPLY_FRIENDS_OF_FRIENDS] = {{ANSWER(FRIENDS_OF_FRIENDS)}, deliver_friends_of_friends},
    [KAOS_REPLY_GROUP] = {{ANSWER(GROUP)}, deliver_group},
    [KAOS_REPLY_GROUPS] = {{ANSWER(GROUP_LIST)}, deliver_groups},
    [KAOS_REPLY_GROUP_USERS] = {{ANSWER(GROUP_USER_LIST)}, deliver_group_users},
    [KAOS_REPLY_USER_GROUPS] = {{ANSWER(USER_GROUP_LIST)}, deliver_user_groups},
    [KAOS_REPLY_CHANNEL] = {{ANSWER(CHANNEL)}, deliver_channel},
    [KAOS_REPLY_CHANNEL_MESSAGE] = {{ANSWER(CHANNEL_MESSAGE_ACK)}, deliver_channel_message},
    [KAOS_REPLY_CHANNEL_MESSAGES] = {{ANSWER(CHANNEL_MESSAGE_LIST)}, deliver_channel_messages},
    [KAOS_REPLY_TICKET] = {{ANSWER(MATCHMAKER_TICKET)}, deliver_ticket},
    [KAOS_REPLY_LEADERBOARD_RECORD] = {{ANSWER(LEADERBOARD_RECORD)}, deliver_leaderboard_record},
    [KAOS_REPLY_LEADERBOARD_RECORDS] = {{ANSWER(LEADERBOARD_RECORD_LIST)},
                                        deliver_leaderboard_records},
    [KAOS_REPLY_TOURNAMENTS] = {{ANSWER(TOURNAMENT_LIST)}, deliver_tournaments},
    [KAOS_REPLY_PARTY] = {{ANSWER(PARTY), ANSWER(ACK)}, deliver_party},
    [KAOS_REPLY_PARTY_REQUESTS] = {{ANSWER(PARTY_JOIN_REQUEST)}, deliver_party_requests},
    [KAOS_REPLY_PARTY_TICKET] = {{ANSWER(PARTY_MATCHMAKER_TICKET)}, deliver_party_ticket},
    [KAOS_REPLY_PARTY_LIST] = {{ANSWER(PARTY_LIST)}, deliver_party_list},
};

static bool answers(const reply_row *row, Kaos__V1__Envelope__MessageCase type)
{
    return type != 0 && (row->answers[0] == type || row->answers[1] == type);
}

/* An Error's code as a KAOS_ERR_*: never KAOS_OK, even for a server that
 * sent code 0, so an error is never taken for a success. */
static int error_code(const Kaos__V1__Error *e)
{
    int code = kn_err_from_wire((int)e->code);
    return code < 0 ? code : KN_ERR_UNKNOWN;
}

/* Fires p's completion with an error. */
static void fail(kaos_client *c, const kaos_pending *p, int code, const char *message)
{
    kaos_result r = {.cid = p->cid, .code = code, .message = message};
    replies[p->reply].deliver(c, p, &r, NULL);
}

/* Fires p's completion for `env`, which carries its cid. */
static void complete(kaos_client *c, const kaos_pending *p, const kn_envelope *env)
{
    const reply_row *row = &replies[p->reply];
    if (env->message_case == KAOS__V1__ENVELOPE__MESSAGE_ERROR) {
        const Kaos__V1__Error *e = env->error;
        KN_DEBUG("error for cid %u: code %d: %s", p->cid, (int)e->code, str(e->message));
        fail(c, p, error_code(e), str(e->message));
        return;
    }
    if (!answers(row, env->message_case)) {
        c->stats.unexpected_received++;
        KN_WARN("cid %u answered with a %s envelope", p->cid,
                kn_envelope_type_name((int)env->message_case));
        fail(c, p, KN_ERR_MALFORMED, "unexpected answer type");
        return;
    }
    kaos_result ok = {.cid = p->cid, .code = KN_OK, .message = ""};
    int rc = row->deliver(c, p, &ok, env);
    if (rc < 0) {
        KN_ERROR("cannot prepare the answer to cid %u: %s", p->cid, kn_err_text(rc));
        fail(c, p, rc, kn_err_text(rc));
    }
}

/* --- events ---------------------------------------------------------------------------- */

static void handle_error_event(kaos_client *c, uint32_t cid, const Kaos__V1__Error *e)
{
    KN_DEBUG("error for cid %u (no request pending): code %d: %s", cid, (int)e->code,
             str(e->message));
    kaos_result r = {.cid = cid, .code = error_code(e), .message = str(e->message)};
    if (c->events.error.fn) c->events.error.fn(c, &r, c->events.error.ud);
}

static void handle_match_data(kaos_client *c, const Kaos__V1__MatchData *d, uint8_t channel)
{
    /* Channels 0 and 1 are reliable; only channel 2 may lose packets. */
    bool reliable = channel != KN_CHANNEL_MATCH_UNRELIABLE;
    const uint8_t *data = d->data.len ? d->data.data : no_bytes;
    if (c->events.match_data.fn)
        c->events.match_data.fn(c, d->match, d->sender, d->op_code, data, d->data.len, reliable,
                                c->events.match_data.ud);
}

static void handle_match_presence(kaos_client *c, const Kaos__V1__MatchPresenceEvent *e)
{
    if (!c->events.match_presence.fn) return;
    size_t total = e->n_joins + e->n_leaves;
    kaos_presence *all = presence_scratch(c, total);
    if (total && !all) {
        /* No request waits for this; say it in the log rather than drop it silently. */
        KN_ERROR("cannot list match presences: %s", kn_err_text(KN_ERR_NOMEM));
        return;
    }
    for (size_t i = 0; i < e->n_joins; i++)
        all[i] = presence_view(e->joins[i]);
    for (size_t i = 0; i < e->n_leaves; i++)
        all[e->n_joins + i] = presence_view(e->leaves[i]);
    c->events.match_presence.fn(c, e->match, all, e->n_joins, all ? all + e->n_joins : NULL,
                                e->n_leaves, c->events.match_presence.ud);
}

static void handle_match_end(kaos_client *c, const Kaos__V1__MatchEnd *e)
{
    if (c->events.match_end.fn)
        c->events.match_end.fn(c, e->match, str(e->match_id), (int)e->code, str(e->reason),
                               c->events.match_end.ud);
}

static void handle_server_shutdown(kaos_client *c, const Kaos__V1__ServerShutdown *s)
{
    KN_INFO("server shutting down within %u ms", s->grace_ms);
    if (c->events.shutdown_notice.fn)
        c->events.shutdown_notice.fn(c, s->grace_ms, c->events.shutdown_notice.ud);
}

static void handle_notifications(kaos_client *c, const Kaos__V1__Notifications *e)
{
    if (!c->events.notifications.fn) return;
    kaos_notification *views = notification_views(e->notifications, e->n_notifications);
    if (e->n_notifications && !views) {
        /* No request waits for this; say it in the log rather than drop it silently. */
        KN_ERROR("cannot deliver %zu notifications: %s", e->n_notifications,
                 kn_err_text(KN_ERR_NOMEM));
        return;
    }
    c->events.notifications.fn(c, views, e->n_notifications, c->events.notifications.ud);
    kn_free(views);
}

static void handle_status_presence(kaos_client *c, const Kaos__V1__StatusPresenceEvent *e)
{
    if (!c->events.status_presence.fn) return;
    kaos_user_presence *all = user_presence_views(e->joins, e->n_joins, e->leaves, e->n_leaves);
    if (e->n_joins + e->n_leaves && !all) {
        /* No request waits for this; say it in the log rather than drop it silently. */
        KN_ERROR("cannot deliver a status presence event: %s", kn_err_text(KN_ERR_NOMEM));
        return;
    }
    c->events.status_presence.fn(c, all, e->n_joins, all ? all + e->n_joins : NULL, e->n_leaves,
                                 c->events.status_presence.ud);
    kn_free(all);
}

/* The view of a Stream message (absent: mode 0, empty names). */
static kaos_stream stream_view(const Kaos__V1__Stream *s)
{
    if (!s) return (kaos_stream){0, "", "", ""};
    return (kaos_stream){s->mode, str(s->subject), str(s->subcontext), str(s->label)};
}

static void handle_stream_presence(kaos_client *c, const Kaos__V1__StreamPresenceEvent *e)
{
    if (!c->events.stream_presence.fn) return;
    kaos_user_presence *all = user_presence_views(e->joins, e->n_joins, e->leaves, e->n_leaves);
    if (e->n_joins + e->n_leaves && !all) {
        KN_ERROR("cannot deliver a stream presence event: %s", kn_err_text(KN_ERR_NOMEM));
        return;
    }
    kaos_stream s = stream_view(e->stream);
    c->events.stream_presence.fn(c, &s, all, e->n_joins, all ? all + e->n_joins : NULL, e->n_leaves,
                                 c->events.stream_presence.ud);
    kn_free(all);
}

static void handle_stream_data(kaos_client *c, const Kaos__V1__StreamData *d, uint8_t channel)
{
    if (!c->events.stream_data.fn) return;
    kaos_stream s = stream_view(d->stream);
    kaos_user_presence sender;
    if (d->sender) view(&kaos_client__user_presence_entity, d->sender, &sender);
    const uint8_t *data = d->data.len ? d->data.data : no_bytes;
    c->events.stream_data.fn(c, &s, d->sender ? &sender : NULL, data, d->data.len,
                             channel != KN_CHANNEL_MATCH_UNRELIABLE, c->events.stream_data.ud);
}

static void handle_channel_message(kaos_client *c, const Kaos__V1__ChannelMessage *e)
{
    if (!c->events.channel_message.fn) return;
    kaos_channel_message m;
    view(&kaos_client__channel_message_entity, e, &m);
    c->events.channel_message.fn(c, &m, c->events.channel_message.ud);
}

static void handle_channel_presence(kaos_client *c, const Kaos__V1__ChannelPresenceEvent *e)
{
    if (!c->events.channel_presence.fn) return;
    kaos_user_presence *all = user_presence_views(e->joins, e->n_joins, e->leaves, e->n_leaves);
    if (e->n_joins + e->n_leaves && !all) {
        /* No request waits for this; say it in the log rather than drop it silently. */
        KN_ERROR("cannot list channel presences: %s", kn_err_text(KN_ERR_NOMEM));
        return;
    }
    c->events.channel_presence.fn(c, str(e->channel_id), all, e->n_joins,
                                  all ? all + e->n_joins : NULL, e->n_leaves,
                                  c->events.channel_presence.ud);
    kn_free(all);
}

/* A MatchmakerUser's view: names and values in one allocation's arrays
 * (`names`/`values` hold room for every user's properties; *used grows). */
static void mm_user_view(const Kaos__V1__MatchmakerUser *u, kaos_matchmaker_user *v,
                         const char **names, const char **svals, double *dvals, size_t *used)
{
    const Kaos__V1__Presence *p = u->presence;
    *v =
        (kaos_matchmaker_user){.presence = {0, p ? str(p->user_id) : "",
                                            p ? str(p->session_id) : "", p ? str(p->username) : ""},
                               .party_id = str(u->party_id)};
    kaos_matchmaker_properties *pr = &v->properties;
    pr->string_names = names + *used;
    pr->string_values = svals + *used;
    for (size_t i = 0; i < u->n_string_properties; i++, (*used)++) {
        names[*used] = str(u->string_properties[i]->key);
        svals[*used] = str(u->string_properties[i]->value);
    }
    pr->n_strings = u->n_string_properties;
    pr->numeric_names = names + *used;
    pr->numeric_values = dvals + *used;
    for (size_t i = 0; i < u->n_numeric_properties; i++, (*used)++) {
        names[*used] = str(u->numeric_properties[i]->key);
        dvals[*used] = u->numeric_properties[i]->value;
    }
    pr->n_numerics = u->n_numeric_properties;
}

static void handle_matchmaker_matched(kaos_client *c, const Kaos__V1__MatchmakerMatched *m)
{
    if (!c->events.matchmaker_matched.fn) return;
    size_t props = 0;
    for (size_t i = 0; i < m->n_users; i++)
        props += m->users[i]->n_string_properties + m->users[i]->n_numeric_properties;
    if (m->self) props += m->self->n_string_properties + m->self->n_numeric_properties;
    kaos_matchmaker_user *users = kn_calloc(m->n_users + 1, sizeof *users);
    const char **names = kn_calloc(props + 1, sizeof *names);
    const char **svals = kn_calloc(props + 1, sizeof *svals);
    double *dvals = kn_calloc(props + 1, sizeof *dvals);
    if (!users || !names || !svals || !dvals) {
        KN_ERROR("cannot deliver a matchmaker match: %s", kn_err_text(KN_ERR_NOMEM));
    } else {
        size_t used = 0;
        for (size_t i = 0; i < m->n_users; i++)
            mm_user_view(m->users[i], &users[i], names, svals, dvals, &used);
        if (m->self) mm_user_view(m->self, &users[m->n_users], names, svals, dvals, &used);
        kaos_matchmaker_matched v = {str(m->ticket), str(m->match_id),
                                     str(m->token),  users,
                                     m->n_users,     m->self ? &users[m->n_users] : NULL};
        c->events.matchmaker_matched.fn(c, &v, c->events.matchmaker_matched.ud);
    }
    kn_free(users);
    kn_free(names);
    kn_free(svals);
    kn_free(dvals);
}

/* --- party events ----------------------------------------------------------------- */

static void handle_party_presence(kaos_client *c, const Kaos__V1__PartyPresenceEvent *e)
{
    if (!c->events.party_presence.fn) return;
    kaos_user_presence *all = user_presence_views(e->joins, e->n_joins, e->leaves, e->n_leaves);
    if (e->n_joins + e->n_leaves && !all) {
        KN_ERROR("cannot deliver a party presence event: %s", kn_err_text(KN_ERR_NOMEM));
        return;
    }
    c->events.party_presence.fn(c, str(e->party_id), all, e->n_joins, all ? all + e->n_joins : NULL,
                                e->n_leaves, c->events.party_presence.ud);
    kn_free(all);
}

static void handle_party_data(kaos_client *c, const Kaos__V1__PartyData *d, uint8_t channel)
{
    if (!c->events.party_data.fn) return;
    kaos_user_presence sender;
    view(&kaos_client__user_presence_entity, d->presence, &sender);
    c->events.party_data.fn(c, str(d->party_id), &sender, d->op_code, d->data.data, d->data.len,
                            channel != KN_CHANNEL_MATCH_UNRELIABLE, c->events.party_data.ud);
}

static void handle_party_leader(kaos_client *c, const Kaos__V1__PartyLeader *l)
{
    if (!c->events.party_leader.fn) return;
    kaos_user_presence leader;
    view(&kaos_client__user_presence_entity, l->presence, &leader);
    c->events.party_leader.fn(c, str(l->party_id), &leader, c->events.party_leader.ud);
}

static void handle_party_join_request(kaos_client *c, const Kaos__V1__PartyJoinRequest *q)
{
    if (!c->events.party_join_request.fn) return;
    kaos_user_presence *views = user_presence_views(q->presences, q->n_presences, NULL, 0);
    if (q->n_presences && !views) {
        KN_ERROR("cannot deliver a party join request: %s", kn_err_text(KN_ERR_NOMEM));
        return;
    }
    c->events.party_join_request.fn(c, str(q->party_id), views, q->n_presences,
                                    c->events.party_join_request.ud);
    kn_free(views);
}

void kaos_client__dispatch(kaos_client *c, const kn_envelope *env, uint8_t channel)
{
    switch (env->message_case) {
    case KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA:
        handle_match_data(c, env->match_data, channel);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_MATCH_PRESENCE:
        handle_match_presence(c, env->match_presence);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_SERVER_SHUTDOWN:
        handle_server_shutdown(c, env->server_shutdown);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_MATCH_END:
        handle_match_end(c, env->match_end);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_NOTIFICATIONS:
        handle_notifications(c, env->notifications);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_STATUS_PRESENCE:
        handle_status_presence(c, env->status_presence);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_STREAM_PRESENCE:
        handle_stream_presence(c, env->stream_presence);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_STREAM_DATA:
        handle_stream_data(c, env->stream_data, channel);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_CHANNEL_MESSAGE:
        handle_channel_message(c, env->channel_message);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_CHANNEL_PRESENCE:
        handle_channel_presence(c, env->channel_presence);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_MATCHMAKER_MATCHED:
        handle_matchmaker_matched(c, env->matchmaker_matched);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_PARTY_PRESENCE:
        handle_party_presence(c, env->party_presence);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_PARTY_DATA:
        handle_party_data(c, env->party_data, channel);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_PARTY_LEADER:
        handle_party_leader(c, env->party_leader);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_PARTY_CLOSE:
        if (c->events.party_close.fn)
            c->events.party_close.fn(c, str(env->party_close->party_id), c->events.party_close.ud);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_PARTY_MATCHMAKER_TICKET:
        if (env->cid) break; /* the leader's answer, not an event */
        if (c->events.party_ticket.fn)
            c->events.party_ticket.fn(c, str(env->party_matchmaker_ticket->party_id),
                                      str(env->party_matchmaker_ticket->ticket),
                                      c->events.party_ticket.ud);
        return;
    case KAOS__V1__ENVELOPE__MESSAGE_PARTY_JOIN_REQUEST:
        if (env->cid) break; /* the answer to a list, not an event */
        handle_party_join_request(c, env->party_join_request);
        return;
    default:
        break;
    }
    kaos_pending *p = env->cid ? kn_map_del(&c->pending, env->cid) : NULL;
    if (p) {
        complete(c, p, env);
        kn_free(p);
        return;
    }
    if (env->message_case == KAOS__V1__ENVELOPE__MESSAGE_ERROR) {
        handle_error_event(c, env->cid, env->error);
        return;
    }
    /* An answer to no request of ours, a request echoed back, or a type
     * newer than this build. */
    c->stats.unexpected_received++;
    KN_DEBUG("ignored %s envelope (cid %u)", kn_envelope_type_name((int)env->message_case),
             env->cid);
}

/* --- the end of a connection ------------------------------------------------------------ */

static int by_cid(const void *a, const void *b)
{
    uint32_t x = (*(kaos_pending *const *)a)->cid, y = (*(kaos_pending *const *)b)->cid;
    return (x > y) - (x < y);
}

void kaos_client__fail_pending(kaos_client *c, int code, const char *message)
{
    /* Detached first: the completions may send requests (refused, as the
     * client is disconnected) and must not see a half-emptied map. */
    kn_map all = c->pending;
    kn_map_init(&c->pending);
    kaos_pending **list = all.count ? kn_calloc(all.count, sizeof *list) : NULL;
    size_t n = 0;
    for (size_t i = 0; i < all.cap; i++) {
        kaos_pending *p = all.slots[i].value;
        if (!all.slots[i].key) continue;
        if (list) {
            list[n++] = p;
            continue;
        }
        /* Out of memory for the sorted list: fire them in map order. */
        fail(c, p, code, message);
        kn_free(p);
    }
    if (list) qsort(list, n, sizeof *list, by_cid);
    for (size_t i = 0; i < n; i++) {
        fail(c, list[i], code, message);
        kn_free(list[i]);
    }
    kn_free(list);
    kn_map_deinit(&all);
}

void kaos_client__drop_pending(kaos_client *c)
{
    for (size_t i = 0; i < c->pending.cap; i++)
        if (c->pending.slots[i].key) kn_free(c->pending.slots[i].value);
    kn_map_deinit(&c->pending);
}
