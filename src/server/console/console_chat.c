/* console_chat: the channels with stored history, a channel's messages
 * (kn_chat_list as the server, which reads any channel) and the removal of
 * one (kn_chat_remove as the server: delivered to the channel with code 2,
 * as a sender's removal is). */
#include "console_internal.h"
#include "kn_chat.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <stdio.h>
#include <stdlib.h>

/* The one query the service has no function for: which channels have a
 * history, by id, a page after a channel id. */
static const kn_db_stmt channels = {
    "console_chat_channels",
    "SELECT c.id, c.sequence::text FROM chat_channel c"
    " WHERE ($1 = '' OR c.id LIKE '%' || $1 || '%') AND c.id > $2 ORDER BY c.id LIMIT $3::int",
    3};

static int chat_channels(kn_console_call *c)
{
    static const char *const cols[] = {"channel_id", "messages"};
    return kn_console__query_page(c, &channels, cols, 2, 0, "channels");
}

static int chat_history(kn_console_call *c)
{
    if (!c->hooks->chat) return KN_ERR_UNAVAILABLE;
    const char *id, *cur;
    int64_t limit;
    int rc = kn_console__page_args(c, "channel_id", &id, &limit, &cur);
    if (rc) return rc;
    kn_chat_message *m = NULL;
    size_t n = 0;
    char *next = NULL, *prev = NULL;
    if ((rc = kn_chat_list(c->hooks->chat, c->db, "", id, (int)limit, false, cur, &m, &n, &next,
                           &prev, c->msg, sizeof c->msg)))
        return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++)
        kn_json_array_append_new(arr, kn_console__entity(&kn_chat_message_entity, &m[i]));
    c->result = kn_console__list("messages", arr, next);
    kn_chat_messages_free(m, n);
    kn_free(next);
    kn_free(prev);
    return KN_OK;
}

static int chat_remove(kn_console_call *c)
{
    if (!c->hooks->chat) return KN_ERR_UNAVAILABLE;
    const char *channel, *message;
    int rc;
    if ((rc = kn_console__need(c, "channel_id", &channel)) ||
        (rc = kn_console__need(c, "message_id", &message)))
        return rc;
    snprintf(c->target, sizeof c->target, "%.80s message %.36s", channel, message);
    kn_chat_sender server = {.user_id = ""};
    kn_chat_message out = {0};
    rc = kn_chat_remove(c->hooks->chat, c->db, &server, channel, message, &out, c->msg,
                        sizeof c->msg);
    kn_chat_message_clear(&out);
    return rc;
}

const kn_console_route kn_console__chat_routes[] = {
    {"GET", "chat/channels", KN_CONSOLE_READ_ONLY, chat_channels},
    {"GET", "chat/messages", KN_CONSOLE_READ_ONLY, chat_history},
    {"POST", "chat/remove", KN_CONSOLE_MAINTAINER, chat_remove},
    {0},
};
