/* kn_entities: every entity the server hands out, described once.
 *
 * An entity is a record that crosses the four worlds: a C struct of the
 * service that owns it, a protobuf message of proto/kaos.proto, a Lua table
 * for server scripts and a struct of the client SDK (kaos.h). Each one is an
 * X-macro listing its fields in the order of the proto message:
 *
 *     X(T, name, KIND)
 *
 * `name` is at the same time the proto field name, the C member name on
 * every side and the Lua key, so a field cannot be called two things. KIND
 * says what the field means (kn_entity.h: STRING, JSON, INT64, INT32,
 * UINT32, BOOL); the C type of each side follows from it and is checked at
 * compile time. T is the C struct being described, passed through.
 *
 * KN_<E>_PROTO names the protobuf-c descriptor of the message and
 * KN_<E>_UNMAPPED lists the proto fields deliberately left out of the
 * mapping (each a "name", string). A proto field neither mapped nor listed
 * fails tests/unit/common/test_entity.c, so a new proto field cannot be
 * forgotten on one side. Adding an entity: docs/contributing.md. */
#ifndef KN_ENTITIES_H
#define KN_ENTITIES_H

/* User: a public profile (kn_user, kaos_user, account_get_id().user). */
#define KN_USER_PROTO kaos__v1__user__descriptor
#define KN_USER_UNMAPPED
#define KN_USER_FIELDS(X, T)                                                                       \
    X(T, id, STRING)                                                                               \
    X(T, username, STRING)                                                                         \
    X(T, display_name, STRING)                                                                     \
    X(T, avatar_url, STRING)                                                                       \
    X(T, lang_tag, STRING)                                                                         \
    X(T, location, STRING)                                                                         \
    X(T, timezone, STRING)                                                                         \
    X(T, metadata, JSON)                                                                           \
    X(T, create_time, INT64)                                                                       \
    X(T, update_time, INT64)

/* StorageObject: an object as read or listed (kn_storage_object, kaos_storage_object). */
#define KN_STORAGE_OBJECT_PROTO kaos__v1__storage_object__descriptor
#define KN_STORAGE_OBJECT_UNMAPPED
#define KN_STORAGE_OBJECT_FIELDS(X, T)                                                             \
    X(T, collection, STRING)                                                                       \
    X(T, key, STRING)                                                                              \
    X(T, user_id, STRING)                                                                          \
    X(T, value, JSON)                                                                              \
    X(T, version, STRING)                                                                          \
    X(T, permission_read, INT32)                                                                   \
    X(T, permission_write, INT32)                                                                  \
    X(T, create_time_ms, INT64)                                                                    \
    X(T, update_time_ms, INT64)

/* StorageAck: what a write stored (kn_storage_ack, kaos_storage_ack). */
#define KN_STORAGE_ACK_PROTO kaos__v1__storage_ack__descriptor
#define KN_STORAGE_ACK_UNMAPPED
#define KN_STORAGE_ACK_FIELDS(X, T)                                                                \
    X(T, collection, STRING)                                                                       \
    X(T, key, STRING)                                                                              \
    X(T, user_id, STRING)                                                                          \
    X(T, version, STRING)

/* Presence: a player in a match (kn_match_presence, kn_relay_member,
 * kaos_presence, the Lua presence tables of match handlers). */
#define KN_PRESENCE_PROTO kaos__v1__presence__descriptor
#define KN_PRESENCE_UNMAPPED
#define KN_PRESENCE_FIELDS(X, T)                                                                   \
    X(T, slot, UINT32)                                                                             \
    X(T, user_id, STRING)                                                                          \
    X(T, session_id, STRING)                                                                       \
    X(T, username, STRING)

/* UserPresence: a session on a stream (kn_presence, kaos_user_presence,
 * the Lua presence tables of kaos.stream_*): status, streams, chat. */
#define KN_USER_PRESENCE_PROTO kaos__v1__user_presence__descriptor
#define KN_USER_PRESENCE_UNMAPPED
#define KN_USER_PRESENCE_FIELDS(X, T)                                                              \
    X(T, user_id, STRING)                                                                          \
    X(T, session_id, STRING)                                                                       \
    X(T, username, STRING)                                                                         \
    X(T, persistence, BOOL)                                                                        \
    X(T, status, STRING)

/* Friend: one relationship as its listing user sees it (kn_friend,
 * kaos_friend, the Lua friend tables). The nested user is mapped through
 * USER by each side. */
#define KN_FRIEND_PROTO    kaos__v1__friend__descriptor
#define KN_FRIEND_UNMAPPED "user",
#define KN_FRIEND_FIELDS(X, T)                                                                     \
    X(T, state, INT32)                                                                             \
    X(T, update_time, INT64)                                                                       \
    X(T, metadata, JSON)

/* Notification: a message to a user (kn_notification, kaos_notification). */
#define KN_NOTIFICATION_PROTO kaos__v1__notification__descriptor
#define KN_NOTIFICATION_UNMAPPED
#define KN_NOTIFICATION_FIELDS(X, T)                                                               \
    X(T, id, STRING)                                                                               \
    X(T, subject, STRING)                                                                          \
    X(T, content, JSON)                                                                            \
    X(T, code, INT32)                                                                              \
    X(T, sender_id, STRING)                                                                        \
    X(T, create_time, INT64)                                                                       \
    X(T, persistent, BOOL)

/* Group: a group (kn_group, kaos_group, the Lua group tables). */
#define KN_GROUP_PROTO kaos__v1__group__descriptor
#define KN_GROUP_UNMAPPED
#define KN_GROUP_FIELDS(X, T)                                                                      \
    X(T, id, STRING)                                                                               \
    X(T, creator_id, STRING)                                                                       \
    X(T, name, STRING)                                                                             \
    X(T, description, STRING)                                                                      \
    X(T, avatar_url, STRING)                                                                       \
    X(T, lang_tag, STRING)                                                                         \
    X(T, metadata, JSON)                                                                           \
    X(T, open, BOOL)                                                                               \
    X(T, edge_count, INT32)                                                                        \
    X(T, max_count, INT32)                                                                         \
    X(T, create_time, INT64)                                                                       \
    X(T, update_time, INT64)

/* GroupUser: a user of a group and their state (kn_group_user,
 * kaos_group_user). The nested user is mapped through USER by each side. */
#define KN_GROUP_USER_PROTO        kaos__v1__group_user__descriptor
#define KN_GROUP_USER_UNMAPPED     "user",
#define KN_GROUP_USER_FIELDS(X, T) X(T, state, INT32)

/* UserGroup: a group of a user and the user's state in it (kn_user_group,
 * kaos_user_group). The nested group is mapped through GROUP by each side. */
#define KN_USER_GROUP_PROTO        kaos__v1__user_group__descriptor
#define KN_USER_GROUP_UNMAPPED     "group",
#define KN_USER_GROUP_FIELDS(X, T) X(T, state, INT32)
/* ChannelMessage: a chat message as delivered, acknowledged or listed
 * (kn_chat_message, kaos_channel_message, the Lua message tables). */
#define KN_CHANNEL_MESSAGE_PROTO kaos__v1__channel_message__descriptor
#define KN_CHANNEL_MESSAGE_UNMAPPED
#define KN_CHANNEL_MESSAGE_FIELDS(X, T)                                                            \
    X(T, channel_id, STRING)                                                                       \
    X(T, message_id, STRING)                                                                       \
    X(T, code, INT32)                                                                              \
    X(T, sender_id, STRING)                                                                        \
    X(T, username, STRING)                                                                         \
    X(T, content, JSON)                                                                            \
    X(T, create_time_ms, INT64)                                                                    \
    X(T, update_time_ms, INT64)                                                                    \
    X(T, persistent, BOOL)                                                                         \
    X(T, sequence, INT64)                                                                          \
    X(T, room_name, STRING)                                                                        \
    X(T, group_id, STRING)                                                                         \
    X(T, user_id_one, STRING)                                                                      \
    X(T, user_id_two, STRING)

/* Leaderboard: a board's settings (kn_leaderboard, kaos.leaderboard_get).
 * operator is set by hand: protobuf-c names its member operator_, and the
 * Lua key stays "operator" as in Nakama. */
#define KN_LEADERBOARD_PROTO kaos__v1__leaderboard__descriptor

#define KN_LEADERBOARD_UNMAPPED "operator",
#define KN_LEADERBOARD_FIELDS(X, T)                                                                \
    X(T, id, STRING)                                                                               \
    X(T, authoritative, BOOL)                                                                      \
    X(T, sort_order, INT32)                                                                        \
    X(T, reset_schedule, STRING)                                                                   \
    X(T, metadata, JSON)                                                                           \
    X(T, enable_ranks, BOOL)                                                                       \
    X(T, create_time, INT64)                                                                       \
    X(T, next_reset, INT64)                                                                        \
    X(T, prev_reset, INT64)

/* Tournament: a tournament with its current window (kn_tournament,
 * kaos_tournament); operator set by hand, as Leaderboard's. */
#define KN_TOURNAMENT_PROTO    kaos__v1__tournament__descriptor
#define KN_TOURNAMENT_UNMAPPED "operator",
#define KN_TOURNAMENT_FIELDS(X, T)                                                                 \
    X(T, id, STRING)                                                                               \
    X(T, title, STRING)                                                                            \
    X(T, description, STRING)                                                                      \
    X(T, category, INT32)                                                                          \
    X(T, sort_order, INT32)                                                                        \
    X(T, size, INT32)                                                                              \
    X(T, max_size, INT32)                                                                          \
    X(T, max_num_score, INT32)                                                                     \
    X(T, can_enter, BOOL)                                                                          \
    X(T, end_active, INT64)                                                                        \
    X(T, next_reset, INT64)                                                                        \
    X(T, metadata, JSON)                                                                           \
    X(T, create_time, INT64)                                                                       \
    X(T, start_time, INT64)                                                                        \
    X(T, end_time, INT64)                                                                          \
    X(T, duration, INT32)                                                                          \
    X(T, start_active, INT64)                                                                      \
    X(T, prev_reset, INT64)                                                                        \
    X(T, authoritative, BOOL)                                                                      \
    X(T, join_required, BOOL)                                                                      \
    X(T, reset_schedule, STRING)                                                                   \
    X(T, enable_ranks, BOOL)

/* LeaderboardRecord: one owner's record with its rank (kn_leaderboard_record,
 * kaos_leaderboard_record). */
#define KN_LEADERBOARD_RECORD_PROTO kaos__v1__leaderboard_record__descriptor
#define KN_LEADERBOARD_RECORD_UNMAPPED
#define KN_LEADERBOARD_RECORD_FIELDS(X, T)                                                         \
    X(T, leaderboard_id, STRING)                                                                   \
    X(T, owner_id, STRING)                                                                         \
    X(T, username, STRING)                                                                         \
    X(T, score, INT64)                                                                             \
    X(T, subscore, INT64)                                                                          \
    X(T, num_score, INT32)                                                                         \
    X(T, metadata, JSON)                                                                           \
    X(T, create_time, INT64)                                                                       \
    X(T, update_time, INT64)                                                                       \
    X(T, expiry_time, INT64)                                                                       \
    X(T, rank, INT64)

#endif
