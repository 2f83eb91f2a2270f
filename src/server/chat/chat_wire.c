/* chat_wire: the chat routes (kn_chat_wire.h). Join answers Channel, the
 * message operations answer ChannelMessageAck (the message as stored and
 * delivered, so a sender sees what a before hook made of it), the history
 * answers ChannelMessageList, leave answers Ack. */
#include "kn_chat_wire.h"
#include "kn_chat.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_session.h"

#include <stdio.h>

/* The caller's session as a presence. */
static kn_presence caller_presence(kn_req *r)
{
    const kn_caller *c = kn_req_caller(r);
    return kn_presence_of(c->conn, c->user_id, c->session_id, c->username);
}

static kn_chat_sender caller_sender(kn_req *r)
{
    const kn_caller *c = kn_req_caller(r);
    return (kn_chat_sender){c->conn, c->user_id, c->session_id, c->username};
}

/* The answer lists at most KN_CHAT_JOIN_LIST_MAX others, so a join to a
 * big room still fits one message. */
static int reply_channel(kn_req *r, const kn_chat_joined *j)
{
    Kaos__V1__UserPresence **pp = NULL, self;
    size_t n = j->n_others < KN_CHAT_JOIN_LIST_MAX ? j->n_others : KN_CHAT_JOIN_LIST_MAX;
    int rc = kn_entity_to_proto_list(&kn_presence_entity, j->others, sizeof *j->others, n,
                                     (void ***)&pp);
    if (rc) return rc;
    kn_entity_to_proto(&kn_presence_entity, &j->self, &self);
    Kaos__V1__Channel out = KAOS__V1__CHANNEL__INIT;
    out.id = (char *)j->channel.id;
    out.n_presences = n;
    out.presences = pp;
    out.self = &self;
    out.room_name = (char *)j->channel.room_name;
    out.group_id = (char *)j->channel.group_id;
    out.user_id_one = (char *)j->channel.user_id_one;
    out.user_id_two = (char *)j->channel.user_id_two;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_CHANNEL;
    env.channel = &out;
    rc = kn_req_reply(r, &env);
    kn_free(pp);
    return rc;
}

int kn_chat_wire_join(kn_req *r, char *msg, size_t cap)
{
    kn_chat *chat = kn_req_service(r);
    Kaos__V1__ChannelJoin *q = kn_req_msg(r)->channel_join;
    kn_presence me = caller_presence(r);
    kn_chat_joined j;
    int type = q->type > 3 ? 0 : (int)q->type;
    int rc = kn_chat_join(chat, kn_req_worker(r)->db, &me, q->target, type, q->persistence,
                          q->hidden, &j, msg, cap);
    /* The session may have ended while Postgres answered: then its unbind
     * has run, and the presence just made would outlive it. */
    kn_conn_id now;
    if (rc == KN_OK &&
        (kn_sessions_find(kn_req_sessions(r), me.user_id, me.session_id, &now, NULL, 0) ||
         now != me.conn)) {
        kn_chat_leave(chat, me.conn, j.channel.id, NULL, 0);
        rc = kn_err_msg(KN_ERR_UNAUTHENTICATED, msg, cap, "session has ended");
    }
    if (rc == KN_OK) rc = reply_channel(r, &j);
    kn_free(j.others);
    return rc;
}

int kn_chat_wire_leave(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__ChannelLeave *q = kn_req_msg(r)->channel_leave;
    int rc = kn_chat_leave(kn_req_service(r), kn_req_caller(r)->conn, q->channel_id, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

static int reply_ack(kn_req *r, kn_chat_message *m)
{
    Kaos__V1__ChannelMessage pm;
    kn_entity_to_proto(&kn_chat_message_entity, m, &pm);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_CHANNEL_MESSAGE_ACK;
    env.channel_message_ack = &pm;
    int rc = kn_req_reply(r, &env);
    kn_chat_message_clear(m);
    return rc;
}

int kn_chat_wire_send(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__ChannelMessageSend *q = kn_req_msg(r)->channel_message_send;
    kn_chat_sender from = caller_sender(r);
    kn_chat_message m;
    int rc = kn_chat_send(kn_req_service(r), kn_req_worker(r)->db, &from, q->channel_id, q->content,
                          false, &m, msg, cap);
    return rc ? rc : reply_ack(r, &m);
}

int kn_chat_wire_update(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__ChannelMessageUpdate *q = kn_req_msg(r)->channel_message_update;
    kn_chat_sender from = caller_sender(r);
    kn_chat_message m;
    int rc = kn_chat_update(kn_req_service(r), kn_req_worker(r)->db, &from, q->channel_id,
                            q->message_id, q->content, &m, msg, cap);
    return rc ? rc : reply_ack(r, &m);
}

int kn_chat_wire_remove(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__ChannelMessageRemove *q = kn_req_msg(r)->channel_message_remove;
    kn_chat_sender from = caller_sender(r);
    kn_chat_message m;
    int rc = kn_chat_remove(kn_req_service(r), kn_req_worker(r)->db, &from, q->channel_id,
                            q->message_id, &m, msg, cap);
    return rc ? rc : reply_ack(r, &m);
}

int kn_chat_wire_list(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__ChannelMessagesList *q = kn_req_msg(r)->channel_messages_list;
    if (q->limit > KN_CHAT_LIST_MAX) /* the service takes an int; say it as it would */
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d",
                          KN_CHAT_LIST_MAX);
    kn_chat_message *list = NULL;
    size_t n = 0;
    char *next = NULL, *prev = NULL;
    int rc = kn_chat_list(kn_req_service(r), kn_req_worker(r)->db, kn_req_caller(r)->user_id,
                          q->channel_id, (int)q->limit, q->forward, q->cursor, &list, &n, &next,
                          &prev, msg, cap);
    Kaos__V1__ChannelMessage **mp = NULL;
    if (rc == KN_OK)
        rc = kn_entity_to_proto_list(&kn_chat_message_entity, list, sizeof *list, n, (void ***)&mp);
    if (rc == KN_OK) {
        Kaos__V1__ChannelMessageList out = KAOS__V1__CHANNEL_MESSAGE_LIST__INIT;
        out.n_messages = n;
        out.messages = mp;
        out.next_cursor = next ? next : (char *)"";
        out.prev_cursor = prev ? prev : (char *)"";
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_CHANNEL_MESSAGE_LIST;
        env.channel_message_list = &out;
        rc = kn_req_reply(r, &env);
    }
    kn_free(mp);
    kn_chat_messages_free(list, n);
    kn_free(next);
    kn_free(prev);
    return rc;
}
