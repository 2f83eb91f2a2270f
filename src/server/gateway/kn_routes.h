/* kn_routes: the route table, one line per client request type. The only
 * place that names handlers; dispatch and the before/after hooks come from
 * it (kn_pipeline), and nothing else switches on the message type.
 *
 * A line: the Envelope message case (without its prefix), the service whose
 * context the handler gets, whether it is allowed before authentication,
 * whether it is a login attempt (refused while the source address is locked
 * out), the channels that may carry it, where it runs (the network thread
 * or an API worker), and the handler. A message with no line is refused
 * with UNIMPLEMENTED "message type X is not a client request"; a line whose
 * handler does not exist does not compile.
 *
 * Adding a request type: its message in proto/kaos.proto, one line here,
 * its handler in the service's <svc>_wire.c (docs/contributing.md). */
#ifndef KN_ROUTES_H
#define KN_ROUTES_H

#include "kn_pipeline.h"

#include <stdbool.h>

/* The services that own routes: each handler gets its service's context
 * (deps.pipeline.services[KN_SVC_x], set by the composition root). */
#define KN_SERVICES(X)                                                                             \
    X(GATEWAY)                                                                                     \
    X(AUTH)                                                                                        \
    X(ACCOUNT)                                                                                     \
    X(STORAGE)                                                                                     \
    X(FRIENDS)                                                                                     \
    X(NOTIFY) X(GROUPS) X(MATCH) X(RPC) X(STATUS) X(CHAT) X(MATCHMAKER) X(PARTY) X(LEADERBOARDS)
enum {
#define KN_SVC_ENUM_(name) KN_SVC_##name,
    KN_SERVICES(KN_SVC_ENUM_)
#undef KN_SVC_ENUM_
        KN_SVC_COUNT
};
_Static_assert(KN_SVC_COUNT <= KN_PIPELINE_MAX_SERVICES, "more services than the pipeline holds");

#define PRE_AUTH  true
#define AUTHED    false
#define LOGIN     true
#define NOT_LOGIN false

/* X(message, service, pre-auth, login, channels, runs on, handler) */
#define KN_ROUTES(X)                                                                               \
    X(PING, GATEWAY, PRE_AUTH, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_gateway_ping)              \
    X(AUTHENTICATE_DEVICE, AUTH, PRE_AUTH, LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_auth_wire_device)  \
    X(AUTHENTICATE_EMAIL, AUTH, PRE_AUTH, LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_auth_wire_email)    \
    X(AUTHENTICATE_CUSTOM, AUTH, PRE_AUTH, LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_auth_wire_custom)  \
    X(SESSION_REFRESH, AUTH, PRE_AUTH, LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_auth_wire_refresh)     \
    X(SESSION_RESUME, AUTH, PRE_AUTH, LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_auth_wire_resume)       \
    X(SESSION_LOGOUT, AUTH, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_auth_wire_logout)     \
    X(MATCH_CREATE, MATCH, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET,                           \
      kn_match_wire_create_match)                                                                  \
    X(MATCH_JOIN, MATCH, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_match_wire_join)         \
    X(MATCH_LEAVE, MATCH, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_match_wire_leave)       \
    X(MATCH_DATA_SEND, MATCH, AUTHED, NOT_LOGIN, KN_CH_MATCH, KN_RUN_NET, kn_match_wire_data)      \
    X(MATCH_LIST_REQUEST, MATCH, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_match_wire_list) \
    X(MATCH_GET, MATCH, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_match_wire_get)           \
    X(RPC, RPC, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_rpc_wire_call)                    \
    X(ACCOUNT_GET, ACCOUNT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_account_wire_get)     \
    X(ACCOUNT_UPDATE, ACCOUNT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                       \
      kn_account_wire_update)                                                                      \
    X(USERS_GET, ACCOUNT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_account_wire_users_get) \
    X(ACCOUNT_DELETE, ACCOUNT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                       \
      kn_account_wire_delete)                                                                      \
    X(LINK_DEVICE, ACCOUNT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                          \
      kn_account_wire_link_device)                                                                 \
    X(LINK_EMAIL, ACCOUNT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                           \
      kn_account_wire_link_email)                                                                  \
    X(LINK_CUSTOM, ACCOUNT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                          \
      kn_account_wire_link_custom)                                                                 \
    X(UNLINK_DEVICE, ACCOUNT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                        \
      kn_account_wire_unlink_device)                                                               \
    X(UNLINK_EMAIL, ACCOUNT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                         \
      kn_account_wire_unlink_email)                                                                \
    X(UNLINK_CUSTOM, ACCOUNT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                        \
      kn_account_wire_unlink_custom)                                                               \
    X(STORAGE_WRITE, STORAGE, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_storage_wire_write) \
    X(STORAGE_READ, STORAGE, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_storage_wire_read)   \
    X(STORAGE_DELETE, STORAGE, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                       \
      kn_storage_wire_delete)                                                                      \
    X(STORAGE_LIST, STORAGE, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_storage_wire_list)   \
    X(FRIENDS_ADD, FRIENDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_friends_wire_add)     \
    X(FRIENDS_DELETE, FRIENDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                       \
      kn_friends_wire_delete)                                                                      \
    X(FRIENDS_BLOCK, FRIENDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_friends_wire_block) \
    X(FRIENDS_LIST, FRIENDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_friends_wire_list)   \
    X(FRIENDS_METADATA_UPDATE, FRIENDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,              \
      kn_friends_wire_metadata_update)                                                             \
    X(FRIENDS_OF_FRIENDS_LIST, FRIENDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,              \
      kn_friends_wire_of_friends_list)                                                             \
    X(NOTIFICATIONS_LIST, NOTIFY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                    \
      kn_notify_wire_list)                                                                         \
    X(NOTIFICATIONS_DELETE, NOTIFY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                  \
      kn_notify_wire_delete)                                                                       \
    X(STATUS_FOLLOW, STATUS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_status_wire_follow)  \
    X(STATUS_UNFOLLOW, STATUS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET,                       \
      kn_status_wire_unfollow)                                                                     \
    X(STATUS_UPDATE, STATUS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_status_wire_update)  \
    X(GROUP_CREATE, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_groups_wire_create)   \
    X(GROUP_UPDATE, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_groups_wire_update)   \
    X(GROUP_DELETE, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_groups_wire_delete)   \
    X(GROUP_JOIN, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_groups_wire_join)       \
    X(GROUP_LEAVE, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_groups_wire_leave)     \
    X(GROUP_USERS_ADD, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                       \
      kn_groups_wire_users_add)                                                                    \
    X(GROUP_USERS_KICK, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                      \
      kn_groups_wire_users_kick)                                                                   \
    X(GROUP_USERS_BAN, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                       \
      kn_groups_wire_users_ban)                                                                    \
    X(GROUP_USERS_PROMOTE, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                   \
      kn_groups_wire_users_promote)                                                                \
    X(GROUP_USERS_DEMOTE, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                    \
      kn_groups_wire_users_demote)                                                                 \
    X(GROUPS_LIST, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_groups_wire_list)      \
    X(GROUP_USERS_LIST, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                      \
      kn_groups_wire_users_list)                                                                   \
    X(USER_GROUPS_LIST, GROUPS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                      \
      kn_groups_wire_user_list)                                                                    \
    X(CHANNEL_JOIN, CHAT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_chat_wire_join)         \
    X(CHANNEL_LEAVE, CHAT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_chat_wire_leave)       \
    X(CHANNEL_MESSAGE_SEND, CHAT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_chat_wire_send) \
    X(CHANNEL_MESSAGE_UPDATE, CHAT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                  \
      kn_chat_wire_update)                                                                         \
    X(CHANNEL_MESSAGE_REMOVE, CHAT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                  \
      kn_chat_wire_remove)                                                                         \
    X(CHANNEL_MESSAGES_LIST, CHAT, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                   \
      kn_chat_wire_list)                                                                           \
    X(MATCHMAKER_ADD, MATCHMAKER, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                    \
      kn_matchmaker_wire_add)                                                                      \
    X(MATCHMAKER_REMOVE, MATCHMAKER, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                 \
      kn_matchmaker_wire_remove)                                                                   \
    X(LEADERBOARD_RECORD_WRITE, LEADERBOARDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,        \
      kn_leaderboard_wire_record_write)                                                            \
    X(LEADERBOARD_RECORDS_LIST, LEADERBOARDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,        \
      kn_leaderboard_wire_records_list)                                                            \
    X(LEADERBOARD_RECORDS_AROUND, LEADERBOARDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,      \
      kn_leaderboard_wire_records_around)                                                          \
    X(LEADERBOARD_RECORD_DELETE, LEADERBOARDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,       \
      kn_leaderboard_wire_record_delete)                                                           \
    X(TOURNAMENT_JOIN, LEADERBOARDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                 \
      kn_tournament_wire_join)                                                                     \
    X(TOURNAMENTS_LIST, LEADERBOARDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                \
      kn_tournament_wire_list)                                                                     \
    X(TOURNAMENT_RECORDS_LIST, LEADERBOARDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,         \
      kn_tournament_wire_records_list)                                                             \
    X(TOURNAMENT_RECORDS_AROUND, LEADERBOARDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,       \
      kn_tournament_wire_records_around)                                                           \
    X(TOURNAMENT_RECORD_WRITE, LEADERBOARDS, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,         \
      kn_tournament_wire_record_write)                                                             \
    X(PARTY_CREATE, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_party_wire_create)     \
    X(PARTY_JOIN, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_party_wire_join)         \
    X(PARTY_LEAVE, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_party_wire_leave)       \
    X(PARTY_PROMOTE, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_party_wire_promote)   \
    X(PARTY_ACCEPT, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_party_wire_accept)     \
    X(PARTY_REMOVE, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_party_wire_remove)     \
    X(PARTY_CLOSE, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET, kn_party_wire_close)       \
    X(PARTY_JOIN_REQUEST_LIST, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_NET,                \
      kn_party_wire_join_requests)                                                                 \
    X(PARTY_DATA_SEND, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL | KN_CH_MATCH, KN_RUN_NET,          \
      kn_party_wire_data)                                                                          \
    X(PARTY_MATCHMAKER_ADD, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                   \
      kn_party_wire_matchmaker_add)                                                                \
    X(PARTY_MATCHMAKER_REMOVE, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API,                \
      kn_party_wire_matchmaker_remove)                                                             \
    X(PARTY_LIST_REQUEST, PARTY, AUTHED, NOT_LOGIN, KN_CH_CONTROL, KN_RUN_API, kn_party_wire_list)

/* The gateway's own route: Ping, answered with the server's clock. */
int kn_gateway_ping(kn_req *r, char *msg, size_t cap);

/* The line of message_case, or NULL when it is not a client request. */
const kn_route *kn_routes_find(int message_case);
/* Whether message_case is a client request (so hooks may be registered
 * for it). Any thread. */
bool kn_routes_is_client_op(int message_case);
/* Lines in the table (for tests and docs). */
size_t kn_routes_count(void);
const kn_route *kn_routes_at(size_t i);

#endif
