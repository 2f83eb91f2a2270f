/* kn_chat: the chat service — rooms, direct messages and group channels,
 * with history in Postgres (docs/chat.md has the rules and every error).
 *
 * Built on the tracker (kn_stream.h), as in Nakama: a channel is a stream
 * (mode KN_STREAM_CHANNEL for a room, KN_STREAM_GROUP for a group's
 * channel, KN_STREAM_DM for a direct message channel) and a session on a
 * channel is a presence on it. Joins and leaves reach the channel's other
 * sessions as ChannelPresenceEvent (this service's event builder for the
 * three modes); messages reach every session on it through kn_tracker_send.
 * There is no other delivery: a user who is not on a channel sees its
 * messages in its history only.
 *
 * Channel ids are the stream's key as text, "<mode>.<subject>.<subcontext>.
 * <label>": "2...<room name>", "3.<group id>..", "4.<id>.<id>." with the two
 * user ids in ascending order, so both users of a DM compute the same id
 * (kn_chat_id_build).
 *
 * A message a session sends is stored when the session joined with
 * persistence; stored messages have a sequence, per channel, from the
 * channel's chat_channel row (0: not stored). Only stored messages can be
 * updated or removed, by their sender (group admins: any, in their group).
 *
 * Limits: content is a JSON object of at most KN_CHAT_CONTENT_MAX bytes; a
 * session sends at most rate_per_sec messages a second (burst `burst`),
 * RESOURCE_EXHAUSTED beyond (the connection stays); a session is on at most
 * KN_CHAT_CHANNELS_MAX channels of each type; a history page holds at most
 * KN_CHAT_LIST_MAX messages.
 *
 * Threads: kn_chat_id_*, kn_chat_leave, kn_chat_forget and the event
 * builder are any-thread; the functions taking a kn_db block on Postgres
 * and run where `db` lives (an API worker). The rate buckets have their
 * own lock.
 *
 * Ownership: arguments are borrowed. Messages handed out own their content
 * (kn_chat_messages_free); joined presences are kn_free'd.
 *
 * Errors: KN_OK or a negative kn_err with a one-line reason in msg. */
#ifndef KN_CHAT_H
#define KN_CHAT_H

#include "kn_stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_db kn_db;
typedef struct kn_out kn_out;
typedef struct kn_chat kn_chat;

/* Channel types on the wire and in scripts (Nakama's numbers). */
enum {
    KN_CHAT_ROOM = 1,
    KN_CHAT_DM = 2,
    KN_CHAT_GROUP = 3,
};

/* Message codes: what a ChannelMessage is (Nakama's numbers). */
enum {
    KN_CHAT_CODE_CHAT = 0,
    KN_CHAT_CODE_UPDATE = 1,
    KN_CHAT_CODE_REMOVE = 2,
    KN_CHAT_CODE_GROUP_JOIN = 3,
    KN_CHAT_CODE_GROUP_ADD = 4,
    KN_CHAT_CODE_GROUP_LEAVE = 5,
    KN_CHAT_CODE_GROUP_KICK = 6,
    KN_CHAT_CODE_GROUP_PROMOTE = 7,
    KN_CHAT_CODE_GROUP_BAN = 8,
    KN_CHAT_CODE_GROUP_DEMOTE = 9,
};

#define KN_CHAT_ROOM_NAME_MAX 64 /* bytes (the stream label's limit) */
#define KN_CHAT_ID_MAX        (4 + 36 + 1 + 36 + 1 + KN_CHAT_ROOM_NAME_MAX)
#define KN_CHAT_CONTENT_MAX   4096 /* bytes of JSON text */
#define KN_CHAT_LIST_MAX      100  /* messages per history page */
#define KN_CHAT_CHANNELS_MAX  50   /* channels of one type per session */
#define KN_CHAT_CURSOR_MAX    32   /* bytes of a cursor this module issues */
/* Others listed in a join's answer (Channel.presences): at most 64, so the
 * answer fits one message (16 KiB) even with the longest usernames; in a
 * bigger room a client learns of the rest only from later events. */
#define KN_CHAT_JOIN_LIST_MAX 64

/* A channel, from its id. The fields that do not apply are "". */
typedef struct kn_chat_channel {
    int type;
    char id[KN_CHAT_ID_MAX + 1];
    char room_name[KN_CHAT_ROOM_NAME_MAX + 1];
    char group_id[37];
    char user_id_one[37];
    char user_id_two[37];
    kn_stream stream;
} kn_chat_channel;

/* A message (the ChannelMessage entity). Times are Unix milliseconds. */
typedef struct kn_chat_message {
    char channel_id[KN_CHAT_ID_MAX + 1];
    char message_id[37];
    int code;
    char sender_id[37];
    char username[129];
    char *content;
    int64_t create_time_ms;
    int64_t update_time_ms;
    bool persistent;
    int64_t sequence;
    char room_name[KN_CHAT_ROOM_NAME_MAX + 1];
    char group_id[37];
    char user_id_one[37];
    char user_id_two[37];
} kn_chat_message;

/* kn_chat_message as the ChannelMessage entity (kn_entity.h). */
typedef struct kn_entity kn_entity;
extern const kn_entity kn_chat_message_entity;

/* Who acts: a session on this node (conn != 0: it must be on the channel,
 * its rate limit applies) or the server (conn 0, from scripts: any channel,
 * sender_id "" for the server itself). */
typedef struct kn_chat_sender {
    kn_conn_id conn;
    const char *user_id;    /* "" or NULL: the server */
    const char *session_id; /* with conn */
    const char *username;
} kn_chat_sender;

/* Group membership, for group channels: the groups service's, handed in by
 * the composition root (NULL: group channels are refused). Blocks on db.
 * KN_OK with *member and *admin (admin or superadmin), or an error. */
typedef struct kn_chat_groups {
    int (*membership)(void *ud, kn_db *db, const char *group_id, const char *user_id, bool *member,
                      bool *admin);
    void *ud;
} kn_chat_groups;

typedef struct kn_chat_config {
    double rate_per_sec; /* messages a session may send per second (0: no limit) */
    double burst;        /* bucket size */
    kn_chat_groups groups;
} kn_chat_config;

void kn_chat_config_default(kn_chat_config *cfg); /* 10/s, burst 20, no groups */

/* Registers the three chat modes (their events and per-session limits)
 * with the tracker, which must outlive the service. `out` delivers the DM
 * request notification (NULL: none live). Before serving. */
int kn_chat_create(const kn_chat_config *cfg, kn_tracker *t, kn_out *out, kn_chat **chat);
void kn_chat_destroy(kn_chat *c); /* accepts NULL */

/* The channel of type (KN_CHAT_*) and target as seen by user_id (a DM's
 * other side): INVALID_ARGUMENT for a bad type, name or id. */
int kn_chat_id_build(const char *user_id, const char *target, int type, kn_chat_channel *out,
                     char *msg, size_t cap);
/* The channel named by id (INVALID_ARGUMENT "channel id is not valid"). */
int kn_chat_id_parse(const char *id, kn_chat_channel *out, char *msg, size_t cap);

/* What a join did: the channel, the others on it (visible ones; kn_free),
 * the session's own presence. */
typedef struct kn_chat_joined {
    kn_chat_channel channel;
    kn_presence *others;
    size_t n_others;
    kn_presence self;
} kn_chat_joined;

/* who (its conn, user, session, username) joins the channel of type and
 * target. A DM: the other user must exist, not be the caller, and neither
 * may block the other (PERMISSION_DENIED "direct messages between these
 * users are blocked"); the other user gets a DM request notification when
 * no session of theirs is on the channel. A group: members only
 * (PERMISSION_DENIED "not a member of the group"). Joining again updates
 * persistence and hidden. RESOURCE_EXHAUSTED at KN_CHAT_CHANNELS_MAX. */
int kn_chat_join(kn_chat *c, kn_db *db, const kn_presence *who, const char *target, int type,
                 bool persistence, bool hidden, kn_chat_joined *out, char *msg, size_t cap);
/* conn leaves channel_id (NOT_FOUND "not on the channel"). */
int kn_chat_leave(kn_chat *c, kn_conn_id conn, const char *channel_id, char *msg, size_t cap);

/* Sends content on channel_id: stored when `persist` (a session: its
 * join's persistence flag decides and `persist` is ignored), then
 * delivered to every session on the channel. *out is the message as
 * delivered (kn_chat_message_clear after). A session must be on the
 * channel (PERMISSION_DENIED "join the channel before sending"), within its
 * rate (RESOURCE_EXHAUSTED). */
int kn_chat_send(kn_chat *c, kn_db *db, const kn_chat_sender *from, const char *channel_id,
                 const char *content, bool persist, kn_chat_message *out, char *msg, size_t cap);
/* The same with a code (the group events of the groups service; code >= 3). */
int kn_chat_send_code(kn_chat *c, kn_db *db, const kn_chat_sender *from, const char *channel_id,
                      int code, const char *content, bool persist, kn_chat_message *out, char *msg,
                      size_t cap);
/* A group's membership change (code KN_CHAT_CODE_GROUP_*: what happened to
 * user_id, done by actor_id, NULL for the system) as a stored message in
 * the group's channel, sent as user_id with their username and content
 * {"user_id": ..., "actor_id": ...} — the groups service's listener. A
 * user who left, was kicked or banned is then taken off the channel. */
int kn_chat_group_event(kn_chat *c, kn_db *db, const char *group_id, const char *actor_id, int code,
                        const char *user_id, char *msg, size_t cap);
/* Replaces the content of stored message message_id (its sender's; the
 * server may update any), delivers it with code 1. NOT_FOUND "message not
 * found", PERMISSION_DENIED "only the sender may update a message". */
int kn_chat_update(kn_chat *c, kn_db *db, const kn_chat_sender *from, const char *channel_id,
                   const char *message_id, const char *content, kn_chat_message *out, char *msg,
                   size_t cap);
/* Removes stored message message_id (its sender, a group's admins, or the
 * server), delivers the removal with code 2 and content "{}". */
int kn_chat_remove(kn_chat *c, kn_db *db, const kn_chat_sender *from, const char *channel_id,
                   const char *message_id, kn_chat_message *out, char *msg, size_t cap);

/* A page of channel_id's stored messages for user_id ("" or NULL: the
 * server, who reads any): a DM's two users, a group's members, anyone for a
 * room. limit 0 = KN_CHAT_LIST_MAX, else 1..KN_CHAT_LIST_MAX; forward lists
 * oldest first, else newest first; cursor NULL or "" starts at the oldest
 * (forward) or newest (backward) end, else continues after the message the
 * cursor names. *next (kn_free) continues in the same direction, set when
 * the page is full; *prev (kn_free) goes back the other way from the
 * page's first message, set when a cursor was given and the page is not
 * empty. */
int kn_chat_list(kn_chat *c, kn_db *db, const char *user_id, const char *channel_id, int limit,
                 bool forward, const char *cursor, kn_chat_message **out, size_t *n, char **next,
                 char **prev, char *msg, size_t cap);
void kn_chat_messages_free(kn_chat_message *m, size_t n); /* accepts NULL */
/* Frees what one message owns (its content); accepts NULL. */
void kn_chat_message_clear(kn_chat_message *m);

/* KN_OK when cursor (client text) is one kn_chat_list could take. No
 * database (fuzzing). */
int kn_chat_cursor_check(const char *cursor, char *msg, size_t cap);

/* blocker_id blocked blocked_id: both users' sessions leave the direct
 * message channel between them (a new join is refused while the block
 * stands). Any thread. */
void kn_chat_block(kn_chat *c, const char *blocker_id, const char *blocked_id);

/* Forgets conn's rate bucket (its session ended). Any thread. */
void kn_chat_forget(kn_chat *c, kn_conn_id conn);

#endif
