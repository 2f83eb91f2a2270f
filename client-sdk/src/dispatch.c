/* dispatch: one received envelope -> one callback.
 *
 * A flat switch from message type to handle_<message>(). The structs handed
 * to callbacks point into the decoded envelope (freed by the caller right
 * after) or into client scratch, which is why they are valid only during
 * the callback. Envelopes a client never receives (requests, unknown types)
 * are counted and dropped. A local failure while preparing a callback (out
 * of memory) is reported through on_error with the envelope's cid and
 * INTERNAL, so the caller waiting on that cid still hears back. */
#include "client_internal.h"

#include <string.h>
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <stdint.h>

#define CB(c) ((c)->cfg.callbacks)
#define UD(c) ((c)->cfg.user_data)

static const uint8_t no_bytes[1];

static const char *str(const char *s)
{
    return s ? s : "";
}

static void report_local_error(kaos_client *c, uint32_t cid, int err, const char *what)
{
    KN_ERROR("%s (cid %u): %s", what, cid, kn_err_text(err));
    if (CB(c).on_error) CB(c).on_error(c, cid, kn_err_to_wire(err), kn_err_text(err), UD(c));
}

static kaos_presence presence_view(const Kaos__V1__Presence *p)
{
    if (!p) return (kaos_presence){.slot = 0, .user_id = "", .session_id = "", .username = ""};
    return (kaos_presence){
        .slot = p->slot,
        .user_id = str(p->user_id),
        .session_id = str(p->session_id),
        .username = str(p->username),
    };
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

static void handle_error(kaos_client *c, uint32_t cid, const Kaos__V1__Error *e)
{
    KN_DEBUG("error for cid %u: code %d: %s", cid, (int)e->code, str(e->message));
    if (CB(c).on_error) CB(c).on_error(c, cid, (int)e->code, str(e->message), UD(c));
}

static void handle_session(kaos_client *c, uint32_t cid, const Kaos__V1__Session *s)
{
    int rc = kaos_client__session_store(c, s);
    if (rc < 0) {
        report_local_error(c, cid, rc, "cannot keep the session");
        return;
    }
    KN_INFO("authenticated as user %s (session %s)", c->session.user_id, c->session.session_id);
    if (CB(c).on_session) CB(c).on_session(c, cid, &c->session.view, UD(c));
}

static void handle_match(kaos_client *c, uint32_t cid, const Kaos__V1__Match *m)
{
    kaos_presence *others = presence_scratch(c, m->n_presences);
    if (m->n_presences && !others) {
        report_local_error(c, cid, KN_ERR_NOMEM, "cannot list match presences");
        return;
    }
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
    if (CB(c).on_match) CB(c).on_match(c, cid, &view, UD(c));
}

static void handle_ack(kaos_client *c, uint32_t cid)
{
    if (CB(c).on_ack) CB(c).on_ack(c, cid, UD(c));
}

static void handle_pong(kaos_client *c, uint32_t cid, const Kaos__V1__Pong *p)
{
    int64_t rtt_ms = kn_time_mono_ms() - (int64_t)p->client_time_ms;
    /* The keepalive's own Pong proves the link is alive; nobody asked for it. */
    if (cid != 0 && cid == c->keepalive_cid) {
        c->keepalive_cid = 0;
        KN_DEBUG("keepalive rtt %lld ms", (long long)rtt_ms);
        return;
    }
    if (CB(c).on_pong) CB(c).on_pong(c, cid, rtt_ms, UD(c));
}

static void handle_match_data(kaos_client *c, const Kaos__V1__MatchData *d, uint8_t channel)
{
    /* Channels 0 and 1 are reliable; only channel 2 may lose packets. */
    bool reliable = channel != KN_CHANNEL_MATCH_UNRELIABLE;
    const uint8_t *data = d->data.len ? d->data.data : no_bytes;
    if (CB(c).on_match_data)
        CB(c).on_match_data(c, d->match, d->sender, d->op_code, data, d->data.len, reliable, UD(c));
}

static void handle_match_presence(kaos_client *c, const Kaos__V1__MatchPresenceEvent *e)
{
    size_t total = e->n_joins + e->n_leaves;
    kaos_presence *all = presence_scratch(c, total);
    if (total && !all) {
        report_local_error(c, 0, KN_ERR_NOMEM, "cannot list match presences");
        return;
    }
    for (size_t i = 0; i < e->n_joins; i++)
        all[i] = presence_view(e->joins[i]);
    for (size_t i = 0; i < e->n_leaves; i++)
        all[e->n_joins + i] = presence_view(e->leaves[i]);
    if (CB(c).on_match_presence)
        CB(c).on_match_presence(c, e->match, all, e->n_joins, all ? all + e->n_joins : NULL,
                                e->n_leaves, UD(c));
}

static void handle_match_end(kaos_client *c, const Kaos__V1__MatchEnd *e)
{
    if (CB(c).on_match_end)
        CB(c).on_match_end(c, e->match, e->match_id, (int)e->code, e->reason, UD(c));
}

static void handle_match_list(kaos_client *c, uint32_t cid, const Kaos__V1__MatchList *l)
{
    kaos_match_info *list = l->n_matches ? kn_calloc(l->n_matches, sizeof *list) : NULL;
    if (l->n_matches && !list) {
        report_local_error(c, cid, KN_ERR_NOMEM, "cannot list matches");
        return;
    }
    for (size_t i = 0; i < l->n_matches; i++) {
        const Kaos__V1__MatchInfo *m = l->matches[i];
        list[i] = (kaos_match_info){m->match_id, m->authoritative, m->label, m->size,
                                    m->tick_rate, m->handler};
    }
    if (CB(c).on_match_list) CB(c).on_match_list(c, cid, list, l->n_matches, UD(c));
    kn_free(list);
}

static kaos_user user_view(const Kaos__V1__User *u)
{
    if (!u)
        return (kaos_user){.id = "", .username = "", .display_name = "", .avatar_url = "",
                           .lang_tag = "", .location = "", .timezone = "", .metadata = "{}"};
    return (kaos_user){
        .id = str(u->id),
        .username = str(u->username),
        .display_name = str(u->display_name),
        .avatar_url = str(u->avatar_url),
        .lang_tag = str(u->lang_tag),
        .location = str(u->location),
        .timezone = str(u->timezone),
        .metadata = u->metadata && *u->metadata ? u->metadata : "{}",
        .create_time = u->create_time,
        .update_time = u->update_time,
    };
}

static void handle_account(kaos_client *c, uint32_t cid, const Kaos__V1__Account *a)
{
    kaos_account view = {
        .user = user_view(a->user),
        .email = str(a->email),
        .custom_id = str(a->custom_id),
        .device_ids = (const char *const *)a->device_ids,
        .device_count = a->n_device_ids,
        .disable_time = a->disable_time,
    };
    if (CB(c).on_account) CB(c).on_account(c, cid, &view, UD(c));
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

static void handle_users(kaos_client *c, uint32_t cid, const Kaos__V1__Users *u)
{
    kaos_user *users = user_scratch(c, u->n_users);
    if (u->n_users && !users) {
        report_local_error(c, cid, KN_ERR_NOMEM, "cannot list users");
        return;
    }
    for (size_t i = 0; i < u->n_users; i++)
        users[i] = user_view(u->users[i]);
    if (CB(c).on_users) CB(c).on_users(c, cid, users, u->n_users, UD(c));
}

static void handle_storage_acks(kaos_client *c, uint32_t cid, const Kaos__V1__StorageAcks *a)
{
    kaos_storage_ack *acks = a->n_acks ? kn_calloc(a->n_acks, sizeof *acks) : NULL;
    if (a->n_acks && !acks) {
        report_local_error(c, cid, KN_ERR_NOMEM, "cannot list storage acks");
        return;
    }
    for (size_t i = 0; i < a->n_acks; i++) {
        const Kaos__V1__StorageAck *m = a->acks[i];
        acks[i] =
            (kaos_storage_ack){str(m->collection), str(m->key), str(m->user_id), str(m->version)};
    }
    if (CB(c).on_storage_acks) CB(c).on_storage_acks(c, cid, acks, a->n_acks, UD(c));
    kn_free(acks);
}

/* StorageObjects (a read, no cursor) and StorageObjectList (a page). */
static void handle_storage_objects(kaos_client *c, uint32_t cid, Kaos__V1__StorageObject **objs,
                                   size_t n, const char *cursor)
{
    kaos_storage_object *views = n ? kn_calloc(n, sizeof *views) : NULL;
    if (n && !views) {
        report_local_error(c, cid, KN_ERR_NOMEM, "cannot list storage objects");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const Kaos__V1__StorageObject *o = objs[i];
        views[i] = (kaos_storage_object){
            .collection = str(o->collection),
            .key = str(o->key),
            .user_id = str(o->user_id),
            .value = o->value && *o->value ? o->value : "{}",
            .version = str(o->version),
            .permission_read = o->permission_read,
            .permission_write = o->permission_write,
            .create_time_ms = o->create_time_ms,
            .update_time_ms = o->update_time_ms,
        };
    }
    if (CB(c).on_storage_objects) CB(c).on_storage_objects(c, cid, views, n, str(cursor), UD(c));
    kn_free(views);
}

static void handle_server_shutdown(kaos_client *c, const Kaos__V1__ServerShutdown *s)
{
    KN_INFO("server shutting down within %u ms", s->grace_ms);
    if (CB(c).on_shutdown_notice) CB(c).on_shutdown_notice(c, s->grace_ms, UD(c));
}

void kaos_client__dispatch(kaos_client *c, const kn_envelope *env, uint8_t channel)
{
    switch (env->message_case) {
    case KAOS__V1__ENVELOPE__MESSAGE_ERROR:
        handle_error(c, env->cid, env->error);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_SESSION:
        handle_session(c, env->cid, env->session);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_MATCH:
        handle_match(c, env->cid, env->match);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_ACK:
        handle_ack(c, env->cid);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_PONG:
        handle_pong(c, env->cid, env->pong);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA:
        handle_match_data(c, env->match_data, channel);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_MATCH_PRESENCE:
        handle_match_presence(c, env->match_presence);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_SERVER_SHUTDOWN:
        handle_server_shutdown(c, env->server_shutdown);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_MATCH_END:
        handle_match_end(c, env->match_end);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_MATCH_LIST:
        handle_match_list(c, env->cid, env->match_list);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT:
        handle_account(c, env->cid, env->account);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_USERS:
        handle_users(c, env->cid, env->users);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_STORAGE_ACKS:
        handle_storage_acks(c, env->cid, env->storage_acks);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_STORAGE_OBJECTS:
        handle_storage_objects(c, env->cid, env->storage_objects->objects,
                               env->storage_objects->n_objects, NULL);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_STORAGE_OBJECT_LIST:
        handle_storage_objects(c, env->cid, env->storage_object_list->objects,
                               env->storage_object_list->n_objects,
                               env->storage_object_list->cursor);
        break;
    case KAOS__V1__ENVELOPE__MESSAGE_RPC:
        if (c->cfg.callbacks.on_rpc)
            c->cfg.callbacks.on_rpc(c, env->cid, env->rpc->id, env->rpc->payload,
                                    strlen(env->rpc->payload), c->cfg.user_data);
        break;
    default:
        /* Requests echoed back, or a type newer than this build. */
        c->stats.unexpected_received++;
        KN_DEBUG("ignored %s envelope (cid %u)", kn_envelope_type_name((int)env->message_case),
                 env->cid);
        break;
    }
}
