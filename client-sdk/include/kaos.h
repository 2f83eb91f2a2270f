/* kaos.h: the KaosNet client SDK, the whole public contract.
 *
 * A kaos_client is one connection to a KaosNet server over ENet (UDP). The
 * flow is: kaos_client_create -> register the events you want
 * (kaos_client_on_connected, ...) -> kaos_client_connect -> call
 * kaos_client_poll every frame -> send requests once the connected event
 * fired -> kaos_client_disconnect / kaos_client_destroy.
 *
 * Connecting (docs/protocol.md has the bytes), all driven by kaos_client_poll:
 *  1. cookie: a raw UDP cookie request, resent every 250 ms until the server
 *     answers with a cookie bound to this client's address;
 *  2. ENet connect, carrying the cookie;
 *  3. handshake: hello and welcome on channel 0. The client checks that the
 *     server holds the secret key of the pinned public key
 *     (kaos_client_config.server_key) and both sides derive keys fresh to
 *     this connection;
 *  4. the connected event. From here every packet, both ways, is encrypted
 *     and authenticated (ChaCha20-Poly1305), with replays refused; a packet
 *     from the server that does not authenticate is dropped and counted
 *     (kaos_client_stats.packets_rejected), never delivered.
 * connect_timeout_ms covers all of it. A wrong key ends in the error event
 * (cid 0, KAOS_ERR_PERMISSION_DENIED) then the disconnected event
 * (KAOS_DISCONNECT_HANDSHAKE_FAILED); a server that does not speak our
 * version in the error event (cid 0, KAOS_ERR_FAILED_PRECONDITION) then
 * disconnected (UNSUPPORTED_VERSION). Every connect, reconnects included,
 * gets a fresh cookie and fresh keys.
 *
 * Requests and completions: every request takes a completion callback and a
 * user data pointer, and returns the request's correlation id (cid > 0) or
 * a negative KAOS_ERR_*. When it returns a cid, its completion fires exactly
 * once, from a later kaos_client_poll: with the typed answer, or with an
 * error (the server's, a local one such as KAOS_ERR_NOMEM, or
 * KAOS_ERR_CLOSED when the connection ended before the answer came). When
 * it returns an error, the request was not sent and its completion never
 * fires. kaos_client_destroy frees pending completions without firing them:
 * disconnect and poll until the disconnected event first when their user
 * data must be released. A NULL completion is allowed (the answer is then
 * only applied, e.g. a session is stored).
 *
 * Events (connected, disconnected, errors not tied to a request, match
 * data, presence, match end, shutdown notice, notifications, status and
 * stream presences, stream data) are registered one kind at a
 * time with kaos_client_on_<event>(c, fn, ud), any time after create; NULL
 * unregisters. New kinds come as new functions.
 *
 * Threads: a client is used from one thread at a time; different clients may
 * live on different threads. Every callback fires inside kaos_client_poll, on
 * the thread that called it, never from anywhere else. Callbacks may send
 * requests, register events, disconnect or connect again, but must not call
 * kaos_client_poll or kaos_client_destroy on their own client. The
 * process-wide settings (kaos_set_allocator, kaos_set_log_sink,
 * kaos_set_log_level) are set before clients are used from other threads.
 *
 * Errors: functions return KAOS_OK (0) or a negative KAOS_ERR_* value;
 * request functions return a positive cid instead of 0. Requests and match
 * data are queued and leave on the next kaos_client_poll.
 *
 * Ownership: every pointer passed in is borrowed for the duration of the
 * call. Every pointer handed to a callback is valid only during that
 * callback; strings in it are never NULL (empty when the server sent none).
 *
 * ABI (docs/sdk.md, "ABI stability"): calls and events are added as new
 * functions, never as fields. Structs the library hands out one at a time
 * (kaos_result, kaos_session, kaos_match, kaos_account) may gain fields at
 * their end; kaos_client_config carries its own size (set by
 * kaos_client_config_default) so it may too. Every other struct (arrays
 * handed out, the structs passed in, stats, allocator) is frozen. */
#ifndef KAOS_H
#define KAOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The protocol version the client announces in the cookie request and the hello. */
#define KAOS_PROTOCOL_VERSION 1

/* Largest message the client sends (one encoded envelope, or raw bytes),
 * before sealing: a sealed packet is KAOS_SEAL_OVERHEAD bytes larger. Larger
 * messages are refused locally with KAOS_ERR_TOO_LARGE. */
#define KAOS_MAX_MESSAGE_SIZE 16384
#define KAOS_SEAL_OVERHEAD    20

/* The server's public key as text: 64 hex digits and a NUL. */
#define KAOS_SERVER_KEY_HEX_SIZE 65

/* Error codes. KAOS_ERR_CANCELLED..KAOS_ERR_UNAUTHENTICATED are the negated
 * wire ErrorCode values (gRPC status codes): a server error of wire code 5
 * reaches a completion as kaos_result.code KAOS_ERR_NOT_FOUND, which
 * kaos_err_text describes. Codes below -100 never travel on the wire. */
enum {
    KAOS_OK = 0,
    KAOS_ERR_CANCELLED = -1,
    KAOS_ERR_UNKNOWN = -2,
    KAOS_ERR_INVALID_ARGUMENT = -3,
    KAOS_ERR_DEADLINE_EXCEEDED = -4,
    KAOS_ERR_NOT_FOUND = -5,
    KAOS_ERR_ALREADY_EXISTS = -6,
    KAOS_ERR_PERMISSION_DENIED = -7,
    KAOS_ERR_RESOURCE_EXHAUSTED = -8,
    KAOS_ERR_FAILED_PRECONDITION = -9,
    KAOS_ERR_ABORTED = -10,
    KAOS_ERR_OUT_OF_RANGE = -11,
    KAOS_ERR_UNIMPLEMENTED = -12,
    KAOS_ERR_INTERNAL = -13,
    KAOS_ERR_UNAVAILABLE = -14,
    KAOS_ERR_DATA_LOSS = -15,
    KAOS_ERR_UNAUTHENTICATED = -16,
    KAOS_ERR_NOMEM = -101,     /* an allocation failed */
    KAOS_ERR_IO = -102,        /* the socket failed */
    KAOS_ERR_DB = -103,        /* (server side only) */
    KAOS_ERR_MALFORMED = -104, /* bytes that are not a valid message */
    KAOS_ERR_TOO_LARGE = -105, /* above KAOS_MAX_MESSAGE_SIZE */
    KAOS_ERR_CLOSED = -106,    /* not connected */
    KAOS_ERR_CONFIG = -107,    /* invalid configuration */
    KAOS_ERR_TOKEN_EXPIRED = -108,
    KAOS_ERR_TOKEN_INVALID = -109,
    KAOS_ERR_VERSION = -110,
};

/* Human text for a KAOS_ERR_* value ("invalid argument"). Never NULL. */
const char *kaos_err_text(int err);

/* Why the connection ended (the disconnected event's `reason`); equal to proto
 * DisconnectReason. Mostly sent by the server; the client reports
 * UNSUPPORTED_VERSION and HANDSHAKE_FAILED itself when it refuses the
 * server. KAOS_DISCONNECT_NONE also covers timeouts and disconnects the
 * client asked for. */
enum {
    KAOS_DISCONNECT_NONE = 0,
    KAOS_DISCONNECT_SHUTDOWN = 1,
    KAOS_DISCONNECT_UNSUPPORTED_VERSION = 2,
    KAOS_DISCONNECT_AUTH_TIMEOUT = 3,
    KAOS_DISCONNECT_IDLE_TIMEOUT = 4,
    KAOS_DISCONNECT_PROTOCOL_VIOLATION = 5,
    KAOS_DISCONNECT_SERVER_FULL = 6,
    KAOS_DISCONNECT_KICKED = 7,
    /* The handshake failed: the server could not prove the pinned key, or
     * (sent by the server) no valid hello arrived in time. */
    KAOS_DISCONNECT_HANDSHAKE_FAILED = 8,
    KAOS_DISCONNECT_RATE_LIMITED = 9,
    KAOS_DISCONNECT_TOO_MANY_CONNECTIONS = 10, /* from this IP address */
    KAOS_DISCONNECT_SEND_QUEUE_FULL = 11,      /* the client did not keep up with reliable data */
    /* The account was banned or deleted by the server (or deleted from
     * another connection). Logging in again is refused while the ban lasts;
     * after a deletion, logging in with create=true makes a new account. */
    KAOS_DISCONNECT_BANNED = 12,
    /* Single session (a server setting): the user logged in elsewhere and
     * that session took over; this one's token no longer resumes. */
    KAOS_DISCONNECT_SESSION_REPLACED = 13,
};

/* "server shutting down", ...; "unknown reason" for values not above. Never NULL. */
const char *kaos_disconnect_reason_text(uint32_t reason);

typedef struct kaos_client kaos_client;

/* A player in a match. `slot` names the player in match data (sender, targets). */
typedef struct kaos_presence {
    uint32_t slot;
    const char *user_id;
    const char *session_id;
    const char *username;
} kaos_presence;

/* Matchmaker (docs/matchmaker.md). A ticket's properties: parallel arrays
 * of names and values, strings and numbers apart. */
typedef struct kaos_matchmaker_properties {
    const char *const *string_names;
    const char *const *string_values;
    size_t n_strings;
    const char *const *numeric_names;
    const double *numeric_values;
    size_t n_numerics;
} kaos_matchmaker_properties;

/* Server-side widening: each pass the ticket waits, the query's `+` and
 * bare comparisons on `property` move outward by `step`, `max` at most
 * (0 < step <= max; the query must compare `property`). */
typedef struct kaos_matchmaker_widen {
    const char *property;
    double step;
    double max;
} kaos_matchmaker_widen;

/* What a ticket asks for; the query is over the other tickets'
 * properties ("" or NULL = anyone). */
typedef struct kaos_matchmaker_request {
    int min_count;      /* 2..max_count */
    int max_count;      /* ..64 */
    int count_multiple; /* 0 = 1 */
    const char *query;
    kaos_matchmaker_properties properties;
    const kaos_matchmaker_widen *widen; /* at most 4 rules, one per property */
    size_t n_widen;
} kaos_matchmaker_request;

/* One player of a matched group, with its ticket's properties. */
typedef struct kaos_matchmaker_user {
    kaos_presence presence; /* slot 0 */
    const char *party_id;   /* "" when not in a party */
    kaos_matchmaker_properties properties;
} kaos_matchmaker_user;

/* The matchmaker formed a group: join match_id (kaos_client_match_join) or,
 * when it is "", join with token (kaos_client_match_join_token). Views are
 * valid during the callback only. */
typedef struct kaos_matchmaker_matched {
    const char *ticket; /* this client's ticket */
    const char *match_id;
    const char *token;
    const kaos_matchmaker_user *users; /* everyone, self included */
    size_t n_users;
    const kaos_matchmaker_user *self;
} kaos_matchmaker_matched;

/* The authenticated session. token and refresh_token are secrets: do not log them. */
typedef struct kaos_session {
    const char *token;
    const char *refresh_token;
    const char *user_id;
    const char *username;
    const char *session_id;
    bool created; /* the user was created by this authentication */
} kaos_session;

/* Answer to kaos_client_match_create / kaos_client_match_join. */
typedef struct kaos_match {
    const char *match_id; /* shareable with other players, for kaos_client_match_join */
    uint32_t handle;      /* names the match in match_send, match_leave and events */
    uint32_t size;        /* players now in the match, self included */
    uint32_t max_size;
    bool authoritative; /* run by server code rather than relayed */
    kaos_presence self;
    const kaos_presence *presences; /* the others */
    size_t presence_count;
} kaos_match;

/* One authoritative match in a listing (kaos_client_match_list). */
typedef struct kaos_match_info {
    const char *match_id;
    bool authoritative;
    const char *label; /* the handler's JSON label, "" if none */
    uint32_t size;     /* players now */
    uint32_t tick_rate;
    const char *handler; /* the registered handler name */
} kaos_match_info;
/* A user's public profile (kaos_client_users_get, and inside kaos_account).
 * Strings are never NULL: "" when unset. */
typedef struct kaos_user {
    const char *id; /* UUID */
    const char *username;
    const char *display_name;
    const char *avatar_url;
    const char *lang_tag; /* default "en" */
    const char *location;
    const char *timezone;
    const char *metadata; /* a JSON object as text; "{}" when empty */
    int64_t create_time;  /* Unix seconds */
    int64_t update_time;  /* Unix seconds */
} kaos_user;

/* One relationship as the listing user sees it (kaos_client_friends_list).
 * state: KAOS_FRIEND_MUTUAL, _INVITE_SENT, _INVITE_RECEIVED or _BLOCKED. */
typedef struct kaos_friend {
    kaos_user user; /* the other user's public profile */
    int state;
    int64_t update_time;  /* Unix seconds the relationship took this state */
    const char *metadata; /* your metadata on it, a JSON object as text; "{}" when none */
} kaos_friend;

/* A friend of one of your friends (kaos_client_friends_of_friends_list):
 * `user` is a friend of `referrer`, your friend's user id. */
typedef struct kaos_friend_of_friend {
    const char *referrer;
    kaos_user user;
} kaos_friend_of_friend;

enum {
    KAOS_FRIEND_ANY = -1, /* kaos_client_friends_list: every state */
    KAOS_FRIEND_MUTUAL = 0,
    KAOS_FRIEND_INVITE_SENT = 1,
    KAOS_FRIEND_INVITE_RECEIVED = 2,
    KAOS_FRIEND_BLOCKED = 3,
};

/* A group (docs/groups.md). metadata is a JSON object as text. */
typedef struct kaos_group {
    const char *id;
    const char *creator_id; /* "" once the creator's account is gone */
    const char *name;
    const char *description;
    const char *avatar_url;
    const char *lang_tag;
    const char *metadata;
    bool open;      /* anyone may join; else joining asks the admins */
    int edge_count; /* members (superadmins, admins, members) */
    int max_count;
    int64_t create_time; /* Unix seconds */
    int64_t update_time;
} kaos_group;

/* A leaderboard record (docs/leaderboards.md): one owner's score in one
 * period of a board, with its rank (1 = first; 0 when the board hides
 * ranks). metadata is a JSON object as text. */
typedef struct kaos_leaderboard_record {
    const char *leaderboard_id;
    const char *owner_id;
    const char *username;
    int64_t score; /* negative scores are allowed */
    int64_t subscore;
    int num_score; /* writes accepted in the period */
    const char *metadata;
    int64_t create_time; /* Unix seconds */
    int64_t update_time;
    int64_t expiry_time; /* end of the record's period, 0 never */
    int64_t rank;
} kaos_leaderboard_record;

/* A write's operator (kaos_client_leaderboard_record_write): the board's,
 * or an override for this write (Nakama's numbering). */
enum {
    KAOS_LEADERBOARD_OP_DEFAULT = 0,
    KAOS_LEADERBOARD_OP_BEST = 1,
    KAOS_LEADERBOARD_OP_SET = 2,
    KAOS_LEADERBOARD_OP_INCREMENT = 3,
    KAOS_LEADERBOARD_OP_DECREMENT = 4,
};

/* A tournament (docs/leaderboards.md, "Tournaments"): a leaderboard with a
 * window, a size and a number of tries, as of the answer. Times are Unix
 * seconds, 0 = none. */
typedef struct kaos_tournament {
    const char *id;
    const char *title;
    const char *description;
    int category; /* 0-127 */
    int sort_order;
    int size;          /* joined participants of the current period */
    int max_size;      /* 0: no limit */
    int max_num_score; /* scores per owner and period; 0: no limit */
    bool can_enter;    /* active now and not full */
    int64_t end_active;
    int64_t next_reset;
    const char *metadata;
    int64_t create_time;
    int64_t start_time;
    int64_t end_time; /* 0: never ends */
    int duration;     /* seconds active after each period starts; 0: all of it */
    int64_t start_active;
    int64_t prev_reset;
    bool authoritative;
    bool join_required;
    const char *reset_schedule;
    bool enable_ranks;
    int operator_; /* 0 best, 1 set, 2 increment, 3 decrement */
} kaos_tournament;

/* A member's rank in a group, or where they stand (kaos_group_user.state). */
enum {
    KAOS_GROUP_ANY = -1, /* the lists: every state */
    KAOS_GROUP_SUPERADMIN = 0,
    KAOS_GROUP_ADMIN = 1,
    KAOS_GROUP_MEMBER = 2,
    KAOS_GROUP_JOIN_REQUEST = 3,
    KAOS_GROUP_BANNED = 4,
};

/* A user of a group (kaos_client_group_users_list) and a group of a user
 * (kaos_client_user_groups_list), with the user's state in it. */
typedef struct kaos_group_user {
    kaos_user user;
    int state;
} kaos_group_user;
typedef struct kaos_user_group {
    kaos_group group;
    int state;
} kaos_user_group;

/* What kaos_client_group_create sets (name required; NULL text = the
 * default, max_count 0 = 100) and kaos_client_group_update changes (NULL
 * text, open < 0 and max_count 0 = unchanged). */
typedef struct kaos_group_spec {
    const char *name;
    const char *description;
    const char *avatar_url;
    const char *lang_tag;
    const char *metadata;
    int open;
    int max_count;
} kaos_group_spec;

/* kaos_client_groups_list's filters (NULL: none). name: a prefix,
 * case-insensitive; open -1 any, 0 closed, 1 open; members 0 = no bound. */
typedef struct kaos_groups_filter {
    const char *name;
    const char *lang_tag;
    int open;
    int members_min;
    int members_max;
} kaos_groups_filter;

/* One notification (kaos_client_notifications_list and the notifications
 * event; docs/notifications.md). code < 0 is the system's: -2 friend
 * request received, -3 friend request accepted, -4 added to a group, -5 a
 * join request to a group you administer, -6 friend removed, -7 another
 * session took over (single session; the connection closes with
 * KAOS_DISCONNECT_SESSION_REPLACED right after), -8 banned from a group,
 * -1 a user wants to chat (docs/chat.md).
 * sender_id is "" when the system sent it. */
typedef struct kaos_notification {
    const char *id;
    const char *subject;
    const char *content; /* a JSON object as text; "{}" when empty */
    int code;
    const char *sender_id;
    int64_t create_time; /* Unix seconds */
    bool persistent;     /* stored (listed later) or live only */
} kaos_notification;

/* One session of a user as others see it on a stream (docs/streams.md):
 * in the status service (docs/status.md), a followed user online with its
 * status text ("" = online without one); in stream events, a session that
 * joined or left. */
typedef struct kaos_user_presence {
    const char *user_id;
    const char *session_id;
    const char *username;
    bool persistence;
    const char *status;
} kaos_user_presence;

/* A stream (docs/streams.md): mode 0-15 (8-15 are the server scripts'),
 * two ids and a label, each "" when unused. */
typedef struct kaos_stream {
    uint32_t mode;
    const char *subject;
    const char *subcontext;
    const char *label;
} kaos_stream;

/* A new party (docs/parties.md). */
typedef struct kaos_party_config {
    bool open;         /* false: a join is a request the leader accepts */
    uint32_t max_size; /* members, the leader included: 2-256 */
    const char *label; /* NULL = ""; up to 64 bytes */
    bool hidden;       /* not listed */
} kaos_party_config;

/* A party as a member sees it; views valid during the callback only. */
typedef struct kaos_party {
    const char *party_id;
    bool open, hidden;
    uint32_t max_size;
    const char *label;
    kaos_user_presence self;
    kaos_user_presence leader;
    const kaos_user_presence *presences; /* every member, in join order */
    size_t presence_count;
} kaos_party;

/* Chat channel types (docs/chat.md). */
enum {
    KAOS_CHANNEL_ROOM = 1,  /* target: the room's name */
    KAOS_CHANNEL_DM = 2,    /* target: the other user's id */
    KAOS_CHANNEL_GROUP = 3, /* target: the group's id (members only) */
};

/* Chat message codes: 0 a message, 1 an update, 2 a removal (content
 * "{}"), 3-9 a group's events (joined, added, left, kicked, promoted,
 * banned, demoted). */
enum {
    KAOS_CHANNEL_MESSAGE_CHAT = 0,
    KAOS_CHANNEL_MESSAGE_UPDATE = 1,
    KAOS_CHANNEL_MESSAGE_REMOVE = 2,
};

/* A chat message as delivered, acknowledged or listed (docs/chat.md). The
 * channel fields that do not apply to the channel's type are "". */
typedef struct kaos_channel_message {
    const char *channel_id;
    const char *message_id;
    int code;
    const char *sender_id; /* "" when the server sent it */
    const char *username;
    const char *content; /* a JSON object as text */
    int64_t create_time_ms;
    int64_t update_time_ms;
    bool persistent;  /* stored: in the history, and may be updated or removed */
    int64_t sequence; /* the channel's order of stored messages; 0 when not stored */
    const char *room_name;
    const char *group_id;
    const char *user_id_one;
    const char *user_id_two;
} kaos_channel_message;

/* A channel joined (kaos_client_channel_join): its id, the others on it
 * (visible sessions, at most 64 of them), and this session's own presence. */
typedef struct kaos_channel {
    const char *id;
    const kaos_user_presence *presences;
    size_t presence_count;
    kaos_user_presence self;
    const char *room_name;
    const char *group_id;
    const char *user_id_one;
    const char *user_id_two;
} kaos_channel;

/* The caller's own account (kaos_client_account_get). */
typedef struct kaos_account {
    kaos_user user;
    const char *email;     /* "" when no email is linked; lower case */
    const char *custom_id; /* "" when none is linked */
    const char *const *device_ids;
    size_t device_count;
    int64_t disable_time; /* Unix seconds the user was banned; 0 = not banned */
    const char *wallet;   /* currency -> balance, a JSON object as text; "{}" when empty.
                           * Only server code changes it (docs/economy.md) */
} kaos_account;

/* Fields for kaos_client_account_update. NULL leaves a field unchanged; ""
 * clears display_name, avatar_url, location and timezone; username,
 * lang_tag and metadata cannot be empty ("{}" empties metadata). Limits
 * (checked by the server, docs/accounts.md): username 1-128 printable bytes
 * without spaces and unique, display_name <= 255 bytes, avatar_url <= 512
 * without spaces, lang_tag 1-18 of [A-Za-z0-9_-], location and timezone
 * <= 255, metadata a JSON object <= 16384 bytes. */
typedef struct kaos_account_changes {
    const char *username;
    const char *display_name;
    const char *avatar_url;
    const char *lang_tag;
    const char *location;
    const char *timezone;
    const char *metadata;
} kaos_account_changes;

/* Storage (docs/storage.md): JSON objects the server keeps, named by
 * (collection, key, owner). Permissions use the wire's values. */
enum {
    KAOS_STORAGE_READ_NONE = 0,   /* only the server reads it */
    KAOS_STORAGE_READ_OWNER = 1,  /* the owner and the server */
    KAOS_STORAGE_READ_PUBLIC = 2, /* everyone */
};
enum {
    KAOS_STORAGE_WRITE_NONE = 0,  /* only the server changes or deletes it */
    KAOS_STORAGE_WRITE_OWNER = 1, /* the owner and the server */
};

/* An object as read or listed (kaos_storage_objects_fn). */
typedef struct kaos_storage_object {
    const char *collection;
    const char *key;
    const char *user_id; /* the owner; the nil UUID for the game's (system) objects */
    const char *value;   /* a JSON object as text (spacing and key order as the server prints it) */
    const char *version; /* 32 hex digits; changes exactly when the value does */
    int permission_read; /* KAOS_STORAGE_READ_* */
    int permission_write;   /* KAOS_STORAGE_WRITE_* */
    int64_t create_time_ms; /* Unix milliseconds */
    int64_t update_time_ms;
} kaos_storage_object;

/* What a write stored (kaos_storage_acks_fn). */
typedef struct kaos_storage_ack {
    const char *collection;
    const char *key;
    const char *user_id; /* the owner: the caller */
    const char *version; /* the new version, for the next conditional write */
} kaos_storage_ack;

/* One object to write (kaos_client_storage_write). The owner is always the
 * caller. A zero-initialised one, with collection, key and value set, is an
 * unconditional write of an object only its owner reads and writes. */
typedef struct kaos_storage_write_object {
    const char *collection; /* 1-128 bytes of UTF-8 without control characters */
    const char *key;        /* the same */
    const char *value;      /* a JSON object as text, at most 65536 bytes (and one packet) */
    const char *version;    /* NULL or "" = unconditional, "*" = only if absent, else must match */
    /* false: the server's defaults (KAOS_STORAGE_READ_OWNER, KAOS_STORAGE_WRITE_OWNER);
     * true: permission_read and permission_write are sent. */
    bool permissions_set;
    int permission_read;  /* KAOS_STORAGE_READ_* */
    int permission_write; /* KAOS_STORAGE_WRITE_* */
} kaos_storage_write_object;

/* Names an object to read or delete. */
typedef struct kaos_storage_id {
    const char *collection;
    const char *key;
    const char *user_id; /* the owner; NULL or "" = the caller; the nil UUID = a system object */
    const char *version; /* delete only: NULL or "" = any version, else it must match */
} kaos_storage_id;

/* All optional (NULL = not interested). `ud` is kaos_client_config.user_data. */
/* --- results and completions ----------------------------------------------------- */

/* How a request ended, handed to its completion (and to the error event).
 * Library-allocated and read-only: it may gain fields at its end. */
typedef struct kaos_result {
    uint32_t cid; /* the request's correlation id; 0 in the error event for errors of no request */
    /* KAOS_OK, or a negative KAOS_ERR_*: the server's wire code negated
     * (KAOS_ERR_NOT_FOUND, ...), KAOS_ERR_CLOSED when the connection ended
     * before the answer, KAOS_ERR_NOMEM when the answer could not be
     * prepared, KAOS_ERR_MALFORMED when the server answered with a message
     * of the wrong type. */
    int code;
    const char *message; /* for people, not for parsing; "" on success */
} kaos_result;

/* One completion type per kind of answer. On error (r->code < 0) the typed
 * part is NULL, 0 or "" and only `r` says anything. */

/* Requests answered with a plain acknowledgement. */
typedef void (*kaos_done_fn)(kaos_client *c, const kaos_result *r, void *ud);
/* Authentication, refresh, resume. The client keeps a copy of the session:
 * kaos_client_session returns it until the next one replaces it. */
typedef void (*kaos_session_fn)(kaos_client *c, const kaos_result *r, const kaos_session *s,
                                void *ud);
/* Match create, create authoritative, join. */
typedef void (*kaos_match_fn)(kaos_client *c, const kaos_result *r, const kaos_match *m, void *ud);
typedef void (*kaos_match_list_fn)(kaos_client *c, const kaos_result *r,
                                   const kaos_match_info *matches, size_t count, void *ud);
/* rtt_ms: the round-trip time. */
typedef void (*kaos_ticket_fn)(kaos_client *c, const kaos_result *r, const char *ticket, void *ud);
typedef void (*kaos_pong_fn)(kaos_client *c, const kaos_result *r, int64_t rtt_ms, void *ud);
/* The server function's return value: `len` bytes, NUL-terminated. */
typedef void (*kaos_rpc_fn)(kaos_client *c, const kaos_result *r, const char *payload, size_t len,
                            void *ud);
typedef void (*kaos_account_fn)(kaos_client *c, const kaos_result *r, const kaos_account *account,
                                void *ud);
/* The users found, ordered by username (unknown ids and usernames are
 * simply absent). */
typedef void (*kaos_users_fn)(kaos_client *c, const kaos_result *r, const kaos_user *users,
                              size_t count, void *ud);
/* One ack per object written, in the order they were given. */
typedef void (*kaos_storage_acks_fn)(kaos_client *c, const kaos_result *r,
                                     const kaos_storage_ack *acks, size_t count, void *ud);
/* A read (the objects that exist and the caller may read, in the order
 * asked; `cursor` "") or a list page (`cursor` "" on the last page, else
 * what to pass for the next one). */
typedef void (*kaos_storage_objects_fn)(kaos_client *c, const kaos_result *r,
                                        const kaos_storage_object *objects, size_t count,
                                        const char *cursor, void *ud);
/* A page of relationships, ordered by (state, when the relationship took
 * it, user id); `cursor` "" on the last page, else what to pass for the
 * next one. */
typedef void (*kaos_friends_fn)(kaos_client *c, const kaos_result *r, const kaos_friend *friends,
                                size_t count, const char *cursor, void *ud);
/* A page of friends of friends, ordered by (referrer, user id); `cursor`
 * "" on the last page, else what to pass for the next one. */
typedef void (*kaos_friends_of_friends_fn)(kaos_client *c, const kaos_result *r,
                                           const kaos_friend_of_friend *entries, size_t count,
                                           const char *cursor, void *ud);
/* Stored notifications, oldest first; `cursor` is the cacheable cursor:
 * after the newest returned (or the one given, when nothing was new), so
 * passing it later fetches only newer notifications. */
/* A group as created. */
typedef void (*kaos_group_fn)(kaos_client *c, const kaos_result *r, const kaos_group *group,
                              void *ud);
/* A page of groups (oldest first), a group's users or a user's groups
 * (ordered by state, then when they took it); `cursor` "" on the last page. */
typedef void (*kaos_groups_fn)(kaos_client *c, const kaos_result *r, const kaos_group *groups,
                               size_t count, const char *cursor, void *ud);
typedef void (*kaos_group_users_fn)(kaos_client *c, const kaos_result *r,
                                    const kaos_group_user *users, size_t count, const char *cursor,
                                    void *ud);
typedef void (*kaos_user_groups_fn)(kaos_client *c, const kaos_result *r,
                                    const kaos_user_group *groups, size_t count, const char *cursor,
                                    void *ud);
/* A leaderboard record as written, with its rank. */
typedef void (*kaos_leaderboard_record_fn)(kaos_client *c, const kaos_result *r,
                                           const kaos_leaderboard_record *record, void *ud);
/* A page of a leaderboard in rank order, the owners' records asked for (in
 * rank order), `cursor` for the next page ("" on the last), `prev_cursor`
 * for the page before ("" on the first) and the records in the period
 * (`rank_count`). */
typedef void (*kaos_leaderboard_records_fn)(kaos_client *c, const kaos_result *r,
                                            const kaos_leaderboard_record *records, size_t count,
                                            const kaos_leaderboard_record *owner_records,
                                            size_t owner_count, const char *cursor,
                                            const char *prev_cursor, int64_t rank_count, void *ud);
/* A page of tournaments and the cursor of the next ("" on the last). */
typedef void (*kaos_tournaments_fn)(kaos_client *c, const kaos_result *r,
                                    const kaos_tournament *tournaments, size_t count,
                                    const char *cursor, void *ud);
typedef void (*kaos_notifications_fn)(kaos_client *c, const kaos_result *r,
                                      const kaos_notification *notifications, size_t count,
                                      const char *cursor, void *ud);
/* The followed users online now: one presence per session publishing a
 * status (a user online on two devices is there twice); users offline,
 * unknown or blocking the caller are absent. */
typedef void (*kaos_status_fn)(kaos_client *c, const kaos_result *r,
                               const kaos_user_presence *presences, size_t count, void *ud);
/* The party created or joined. A join of a closed party succeeds with
 * party NULL: a join request is pending (the leader decides). */
typedef void (*kaos_party_fn)(kaos_client *c, const kaos_result *r, const kaos_party *party,
                              void *ud);
/* Parties listed (kaos_client_party_list), best first; self unset. */
typedef void (*kaos_party_list_fn)(kaos_client *c, const kaos_result *r, const kaos_party *parties,
                                   size_t count, void *ud);
/* A party's pending join requests (the leader's). */
typedef void (*kaos_party_requests_fn)(kaos_client *c, const kaos_result *r,
                                       const kaos_user_presence *requests, size_t count, void *ud);
/* The channel joined. */
typedef void (*kaos_channel_fn)(kaos_client *c, const kaos_result *r, const kaos_channel *channel,
                                void *ud);
/* A message sent, updated or removed, as the server stored and delivered
 * it (a before hook may have rewritten its content). */
typedef void (*kaos_channel_message_ack_fn)(kaos_client *c, const kaos_result *r,
                                            const kaos_channel_message *message, void *ud);
/* A page of a channel's history. next_cursor continues in the same
 * direction ("" when the page was not full); prev_cursor goes the other way
 * from the page's first message ("" without a cursor or on an empty page). */
typedef void (*kaos_channel_messages_fn)(kaos_client *c, const kaos_result *r,
                                         const kaos_channel_message *messages, size_t count,
                                         const char *next_cursor, const char *prev_cursor,
                                         void *ud);

/* --- the client -------------------------------------------------------------------- */

/* Connection settings only: no callbacks (events are registered on the
 * client, completions passed with each request). `size` lets the struct
 * grow at its end: kaos_client_config_default sets it to the size the
 * caller was compiled with, and fields past it take their defaults. */
typedef struct kaos_client_config {
    size_t size;                 /* set by kaos_client_config_default; do not change */
    const char *host;            /* default "127.0.0.1"; a name is resolved on connect (blocking) */
    uint16_t port;               /* default 7350 */
    uint32_t connect_timeout_ms; /* default 5000, for cookie + connect + handshake together;
                                    0 = ENet's own timeout (5-30 s) for the connect and 30 s
                                    each for the cookie and the handshake */
    uint32_t keepalive_ms;       /* default 15000: send a Ping when nothing was sent for this
                                    long (its Pong is not reported); 0 = off */
    uint32_t protocol_version;   /* default KAOS_PROTOCOL_VERSION (1..255); tests set others */
    /* The server's public key, 64 hex digits: what the server prints at start
     * ("server public key <hex>"). The client connects only to the holder of
     * its secret key. Default NULL: then kaos_client_connect refuses unless
     * insecure_dev_mode is set. */
    const char *server_key;
    /* Default false. For development only: without server_key, accept any
     * server key (traffic is still encrypted, but an on-path attacker can
     * impersonate the server); with or without it, also accept a server whose
     * transport security is off (traffic in clear). Logs a warning. */
    bool insecure_dev_mode;
    /* Default false; requires insecure_dev_mode. Skip the handshake and send
     * in clear, for debugging against a server started with transport
     * security off (a secure server refuses it). */
    bool plaintext;
    /* Default false. When set, every successful login, refresh or resume
     * (its session answer) is followed at once by a StatusUpdate with an
     * empty status, sent before the completion fires: the session appears
     * online to the users who follow it (docs/status.md) without a call of
     * its own, also after a reconnect and resume. A status set from the
     * completion (kaos_client_status_update) comes after it and wins. */
    bool appear_online;
    /* Default 0: ENet's 500 ms. How long the connection may stay silent
     * before ENet pings the server (and measures the round trip). A lobby
     * client idle for minutes can use seconds (the server has the same
     * setting, --net-ping-interval-ms): each ping is a datagram both ways.
     * A dead link is noticed that much later. */
    uint32_t ping_interval_ms;
} kaos_client_config;

/* Fills `cfg` with the defaults above; `size` is sizeof *cfg as the caller
 * compiled it. Call it through kaos_client_config_default. */
void kaos_client_config_init(kaos_client_config *cfg, size_t size);
#define kaos_client_config_default(cfg) kaos_client_config_init((cfg), sizeof *(cfg))

/* Creates a client (not yet connected, no events registered). Copies `cfg`,
 * the host string and the key. Returns KAOS_OK and *out;
 * KAOS_ERR_INVALID_ARGUMENT for NULL pointers, KAOS_ERR_CONFIG for a config
 * not filled by kaos_client_config_default (or from a newer kaos.h than the
 * library), an empty host, port 0, a protocol_version above 255, a
 * server_key that is not 64 hex digits, or plaintext without
 * insecure_dev_mode; KAOS_ERR_NOMEM, KAOS_ERR_INTERNAL when the crypto
 * library cannot start, or KAOS_ERR_IO when no UDP socket can be opened. */
int kaos_client_create(const kaos_client_config *cfg, kaos_client **out);
/* Accepts NULL. Sends a disconnect first if connected; fires no callback:
 * pending completions are dropped without firing (see the top of this file). */
void kaos_client_destroy(kaos_client *c);

/* Starts connecting; the connected or disconnected event fires later from
 * poll. KAOS_ERR_FAILED_PRECONDITION when not disconnected, or when no
 * server_key is pinned and insecure_dev_mode is off (logged);
 * KAOS_ERR_UNAVAILABLE when the host name does not resolve. */
int kaos_client_connect(kaos_client *c);
/* Starts a graceful disconnect; the disconnected event fires later from
 * poll, after the completions still pending fired with KAOS_ERR_CLOSED.
 * KAOS_ERR_CLOSED when there is nothing to disconnect. */
int kaos_client_disconnect(kaos_client *c);

/* Services the network and fires callbacks. Waits at most timeout_ms for the
 * first event, then handles what else is ready without waiting (at most a
 * few hundred events, so a flood cannot stall the caller's frame), and sends
 * what was queued. Returns the number of events handled, or KAOS_ERR_IO
 * when the socket failed. */
int kaos_client_poll(kaos_client *c, uint32_t timeout_ms);
/* Puts what was queued (kaos_client_match_send and every request) on the
 * wire now, without reading the socket or firing callbacks: for a game that
 * sends its input mid-frame and polls once per frame. Cheaper than a poll
 * with timeout 0 (no receive attempt). Not from a callback (poll flushes
 * on its own when callbacks return). KAOS_ERR_INVALID_ARGUMENT for NULL. */
int kaos_client_flush(kaos_client *c);

bool kaos_client_is_connected(const kaos_client *c);
/* The last session received, or NULL before the first. It survives
 * disconnects, so a reconnect can resume or refresh it. Valid until the next
 * kaos_client_poll that replaces it (or kaos_client_destroy). */
const kaos_session *kaos_client_session(const kaos_client *c);
/* The public key the server presented in the last welcome received (on the
 * current or an earlier connection; kept across disconnects), as 64
 * lower-case hex digits and a NUL in `out` - also when it did not match the
 * pinned key, so tools can show it or pin it on first use. KAOS_OK,
 * KAOS_ERR_NOT_FOUND before any welcome, KAOS_ERR_INVALID_ARGUMENT. */
int kaos_client_server_key(const kaos_client *c, char out[KAOS_SERVER_KEY_HEX_SIZE]);

/* --- events: one setter per kind; fn NULL unregisters; `ud` is passed back ----------- */

typedef void (*kaos_connected_fn)(kaos_client *c, void *ud);
/* The connection ended or could not be made. Exactly one follows every
 * successful kaos_client_connect. `reason` is a KAOS_DISCONNECT_* value
 * sent by the server, or UNSUPPORTED_VERSION / HANDSHAKE_FAILED when the
 * client refused the server (an error event precedes it); 0 when the server
 * sent none, on timeouts and when the client disconnected itself. The
 * completions still pending have fired (KAOS_ERR_CLOSED) before it. */
typedef void (*kaos_disconnected_fn)(kaos_client *c, uint32_t reason, void *ud);
/* An error tied to no pending request: cid 0 (the server reported an error
 * not tied to a request, or the client refused the server), or a cid this
 * client has no completion for (a request sent with kaos_client_send_raw). */
typedef void (*kaos_error_fn)(kaos_client *c, const kaos_result *r, void *ud);
/* Data from another player (`sender` is its slot; 0 = the server).
 * `reliable` tells whether it travelled on a reliable channel. */
typedef void (*kaos_match_data_fn)(kaos_client *c, uint32_t match, uint32_t sender, int64_t op_code,
                                   const uint8_t *data, size_t len, bool reliable, void *ud);
typedef void (*kaos_match_presence_fn)(kaos_client *c, uint32_t match, const kaos_presence *joins,
                                       size_t join_count, const kaos_presence *leaves,
                                       size_t leave_count, void *ud);
/* An authoritative match ended for this player: `code` 0 = ended by its
 * handler, 10 ABORTED = kicked, 14 UNAVAILABLE = server shutdown, others
 * = the handler failed (13 INTERNAL, 8 RESOURCE_EXHAUSTED memory cap,
 * 4 DEADLINE_EXCEEDED time budget): wire codes, positive. The handle is no
 * longer valid. */
typedef void (*kaos_match_end_fn)(kaos_client *c, uint32_t match, const char *match_id, int code,
                                  const char *reason, void *ud);
/* The server is stopping; it will disconnect this client within grace_ms. */
typedef void (*kaos_shutdown_notice_fn)(kaos_client *c, uint32_t grace_ms, void *ud);
/* Notifications delivered live (to every connection of the user); the
 * persistent ones can also be listed later. */
typedef void (*kaos_notifications_event_fn)(kaos_client *c, const kaos_notification *notifications,
                                            size_t count, void *ud);

/* A followed user came online or changed status (joins: the new presence)
 * or went offline or changed status (leaves: the old presence); a change is
 * one leave and one join. docs/status.md. */
typedef void (*kaos_status_presence_fn)(kaos_client *c, const kaos_user_presence *joins,
                                        size_t join_count, const kaos_user_presence *leaves,
                                        size_t leave_count, void *ud);
/* Sessions joined or left a stream this session is on (a server script
 * put it there: kaos.stream_user_join; docs/streams.md). */
typedef void (*kaos_stream_presence_fn)(kaos_client *c, const kaos_stream *stream,
                                        const kaos_user_presence *joins, size_t join_count,
                                        const kaos_user_presence *leaves, size_t leave_count,
                                        void *ud);
/* Data sent to a stream this session is on (kaos.stream_send): `sender`
 * is NULL when the server sent it; `reliable` tells how it travelled. */
typedef void (*kaos_stream_data_fn)(kaos_client *c, const kaos_stream *stream,
                                    const kaos_user_presence *sender, const uint8_t *data,
                                    size_t len, bool reliable, void *ud);

void kaos_client_on_connected(kaos_client *c, kaos_connected_fn fn, void *ud);
void kaos_client_on_disconnected(kaos_client *c, kaos_disconnected_fn fn, void *ud);
void kaos_client_on_error(kaos_client *c, kaos_error_fn fn, void *ud);
void kaos_client_on_match_data(kaos_client *c, kaos_match_data_fn fn, void *ud);
void kaos_client_on_match_presence(kaos_client *c, kaos_match_presence_fn fn, void *ud);
void kaos_client_on_match_end(kaos_client *c, kaos_match_end_fn fn, void *ud);
void kaos_client_on_shutdown_notice(kaos_client *c, kaos_shutdown_notice_fn fn, void *ud);
void kaos_client_on_notifications(kaos_client *c, kaos_notifications_event_fn fn, void *ud);
void kaos_client_on_status_presence(kaos_client *c, kaos_status_presence_fn fn, void *ud);
void kaos_client_on_stream_presence(kaos_client *c, kaos_stream_presence_fn fn, void *ud);
void kaos_client_on_stream_data(kaos_client *c, kaos_stream_data_fn fn, void *ud);
/* A message (code 0), an update (1), a removal (2) or a group event (3-9)
 * on a channel this session is on, its own included. */
typedef void (*kaos_channel_message_fn)(kaos_client *c, const kaos_channel_message *message,
                                        void *ud);
/* Sessions joined or left a channel this session is on (hidden ones never
 * appear). */
typedef void (*kaos_channel_presence_fn)(kaos_client *c, const char *channel_id,
                                         const kaos_user_presence *joins, size_t join_count,
                                         const kaos_user_presence *leaves, size_t leave_count,
                                         void *ud);
void kaos_client_on_channel_message(kaos_client *c, kaos_channel_message_fn fn, void *ud);
void kaos_client_on_channel_presence(kaos_client *c, kaos_channel_presence_fn fn, void *ud);
typedef void (*kaos_matchmaker_matched_fn)(kaos_client *c, const kaos_matchmaker_matched *m,
                                           void *ud);
void kaos_client_on_matchmaker_matched(kaos_client *c, kaos_matchmaker_matched_fn fn, void *ud);
/* Parties (docs/parties.md). Members joined or left a party this session
 * is in; a member removed by the leader, or a join request rejected, gets
 * one with itself among the leaves. */
typedef void (*kaos_party_presence_fn)(kaos_client *c, const char *party_id,
                                       const kaos_user_presence *joins, size_t join_count,
                                       const kaos_user_presence *leaves, size_t leave_count,
                                       void *ud);
/* Data a member sent (kaos_client_party_send); `reliable` tells how it travelled. */
typedef void (*kaos_party_data_fn)(kaos_client *c, const char *party_id,
                                   const kaos_user_presence *sender, int64_t op_code,
                                   const uint8_t *data, size_t len, bool reliable, void *ud);
/* The party's leader now (a promotion, or the leader left). */
typedef void (*kaos_party_leader_fn)(kaos_client *c, const char *party_id,
                                     const kaos_user_presence *leader, void *ud);
/* To the leader: a session asks to join this closed party. */
typedef void (*kaos_party_join_request_fn)(kaos_client *c, const char *party_id,
                                           const kaos_user_presence *requests, size_t count,
                                           void *ud);
/* The leader closed the party: this session is no longer in it. */
typedef void (*kaos_party_close_fn)(kaos_client *c, const char *party_id, void *ud);
void kaos_client_on_party_presence(kaos_client *c, kaos_party_presence_fn fn, void *ud);
void kaos_client_on_party_data(kaos_client *c, kaos_party_data_fn fn, void *ud);
void kaos_client_on_party_leader(kaos_client *c, kaos_party_leader_fn fn, void *ud);
void kaos_client_on_party_join_request(kaos_client *c, kaos_party_join_request_fn fn, void *ud);
/* The leader put the party in the matchmaker: every member is a player of
 * `ticket`, and a match arrives as kaos_client_on_matchmaker_matched (its
 * users carry the party id). */
typedef void (*kaos_party_ticket_fn)(kaos_client *c, const char *party_id, const char *ticket,
                                     void *ud);
void kaos_client_on_party_close(kaos_client *c, kaos_party_close_fn fn, void *ud);
void kaos_client_on_party_ticket(kaos_client *c, kaos_party_ticket_fn fn, void *ud);

/* --- requests ------------------------------------------------------------------------
 *
 * Each returns the cid (> 0) or a negative error, and then (only then) its
 * completion `done` fires exactly once with `ud` (top of this file). Local
 * errors: KAOS_ERR_INVALID_ARGUMENT (checked first, connected or not: a NULL
 * where a string or struct is required), KAOS_ERR_CLOSED when not
 * connected, KAOS_ERR_TOO_LARGE, KAOS_ERR_NOMEM. The server checks
 * authentication, not the client. */

/* `vars`: NULL or a NULL-terminated list key, value, key, value, ... copied
 * into the session token. `username` may be NULL (server picks one). */
int kaos_client_auth_device(kaos_client *c, const char *device_id, const char *username,
                            bool create, const char *const *vars, kaos_session_fn done, void *ud);
/* Email + password (argon2id on the server). Unknown email with create=false:
 * NOT_FOUND; wrong password: UNAUTHENTICATED "invalid credentials". */
int kaos_client_auth_email(kaos_client *c, const char *email, const char *password,
                           const char *username, bool create, const char *const *vars,
                           kaos_session_fn done, void *ud);
/* An account id from another system (platform login). */
int kaos_client_auth_custom(kaos_client *c, const char *custom_id, const char *username,
                            bool create, const char *const *vars, kaos_session_fn done, void *ud);
/* Uses the refresh token of the current session; KAOS_ERR_UNAUTHENTICATED
 * when there is none. */
int kaos_client_session_refresh(kaos_client *c, kaos_session_fn done, void *ud);
/* Binds this connection to an existing session token (after a reconnect). */
int kaos_client_session_resume(kaos_client *c, const char *token, kaos_session_fn done, void *ud);
/* Ends the session: its refresh token stops working and its token can no
 * longer be resumed. The client forgets the session at once. */
int kaos_client_session_logout(kaos_client *c, kaos_done_fn done, void *ud);
/* Measures the round trip. */
int kaos_client_ping(kaos_client *c, kaos_pong_fn done, void *ud);
/* Calls the server function registered as `id` (kaos.register_rpc in a
 * runtime module) with `payload` (a string, often JSON; NULL = ""); errors:
 * NOT_FOUND for an unknown id, or the script's code. */
int kaos_client_rpc_call(kaos_client *c, const char *id, const char *payload, kaos_rpc_fn done,
                         void *ud);

/* A relayed match; the creator joins it. max_size 0 = server default. */
int kaos_client_match_create(kaos_client *c, uint32_t max_size, kaos_match_fn done, void *ud);
/* Creates an authoritative match run by the server-side handler registered
 * as `handler` (kaos.register_match); `params_json` (a JSON object, may be
 * NULL) reaches match_init. The creator then joins; errors: NOT_FOUND for an
 * unknown handler, the join refusal, ... */
int kaos_client_match_create_authoritative(kaos_client *c, const char *handler,
                                           const char *params_json, kaos_match_fn done, void *ud);
/* Joins a match by id. `metadata` (for an authoritative match's
 * match_join_attempt): NULL or a NULL-terminated list key, value, key,
 * value, ... A refusal is KAOS_ERR_PERMISSION_DENIED with the handler's
 * reason. */
int kaos_client_match_join(kaos_client *c, const char *match_id, const char *const *metadata,
                           kaos_match_fn done, void *ud);
/* `match` is kaos_match.handle. */
int kaos_client_match_leave(kaos_client *c, uint32_t match, kaos_done_fn done, void *ud);
/* Lists authoritative matches: at most `limit` (1-100, 0 = 10), with exactly
 * `label` (NULL = any), matching `query` (NULL = any; see docs/matches.md),
 * and min_size..max_size players (0 = no bound). */
int kaos_client_match_list(kaos_client *c, uint32_t limit, const char *label, const char *query,
                           int32_t min_size, int32_t max_size, kaos_match_list_fn done, void *ud);
/* One authoritative match by id: `done` gets a list of exactly that match,
 * or KAOS_ERR_NOT_FOUND "match not found". */
int kaos_client_match_get(kaos_client *c, const char *match_id, kaos_match_list_fn done, void *ud);

/* The account (docs/accounts.md). All need a session and act on the
 * session's own user; the server's errors name the broken rule. */

/* The caller's own account. */
int kaos_client_account_get(kaos_client *c, kaos_account_fn done, void *ud);
/* Changes the fields of `changes` that are not NULL (all or nothing);
 * errors: ALREADY_EXISTS "username is taken", INVALID_ARGUMENT for a broken
 * limit. Tokens keep the old username until refreshed. */
int kaos_client_account_update(kaos_client *c, const kaos_account_changes *changes,
                               kaos_done_fn done, void *ud);
/* Deletes the caller's account, its devices and sessions. The connection
 * stays open but unauthenticated (as after a logout); the user's other
 * connections are closed with KAOS_DISCONNECT_BANNED. The client forgets
 * the session at once. */
int kaos_client_account_delete(kaos_client *c, kaos_done_fn done, void *ud);
/* Link a login method to the caller's account; ALREADY_EXISTS when it
 * belongs to another account. An account has at most one email and one
 * custom id: linking another replaces it (for the email, also the password). */
int kaos_client_account_link_device(kaos_client *c, const char *device_id, kaos_done_fn done,
                                    void *ud);
int kaos_client_account_link_email(kaos_client *c, const char *email, const char *password,
                                   kaos_done_fn done, void *ud);
int kaos_client_account_link_custom(kaos_client *c, const char *custom_id, kaos_done_fn done,
                                    void *ud);
/* Unlink one; NOT_FOUND when the account does not have it,
 * FAILED_PRECONDITION when it is the last way to log in. */
int kaos_client_account_unlink_device(kaos_client *c, const char *device_id, kaos_done_fn done,
                                      void *ud);
int kaos_client_account_unlink_email(kaos_client *c, kaos_done_fn done, void *ud);
int kaos_client_account_unlink_custom(kaos_client *c, kaos_done_fn done, void *ud);
/* Public profiles by ids and/or usernames (at most 100 of each). A list may
 * be NULL when its count is 0; a NULL list with a count, or a NULL element,
 * is KAOS_ERR_INVALID_ARGUMENT. */
int kaos_client_users_get(kaos_client *c, const char *const *ids, size_t id_count,
                          const char *const *usernames, size_t username_count, kaos_users_fn done,
                          void *ud);

/* Storage (docs/storage.md). All need a session and act with the rights of
 * the session's user: it writes and deletes only its own objects, and reads
 * and lists its own and public ones. The server's errors name the object by
 * its index (from 0): INVALID_ARGUMENT for malformed input,
 * PERMISSION_DENIED, FAILED_PRECONDITION for a failed version check. Write,
 * read and delete take 1-100 objects (checked by the server); a request
 * must fit in one message (KAOS_ERR_TOO_LARGE). A list may be NULL when its
 * count is 0; a NULL list with a count, or a NULL collection, key or value,
 * is KAOS_ERR_INVALID_ARGUMENT. */

/* Writes objects, all or none. */
int kaos_client_storage_write(kaos_client *c, const kaos_storage_write_object *objects,
                              size_t count, kaos_storage_acks_fn done, void *ud);
/* Reads objects (missing and unreadable objects are simply absent). */
int kaos_client_storage_read(kaos_client *c, const kaos_storage_id *ids, size_t count,
                             kaos_storage_objects_fn done, void *ud);
/* Deletes the caller's objects, all or none. A missing object is no error
 * unless a version was given. */
int kaos_client_storage_delete(kaos_client *c, const kaos_storage_id *ids, size_t count,
                               kaos_done_fn done, void *ud);
/* One page of at most `limit` (1-100) objects of `collection`: user_id's
 * (by key; NULL or "" = every owner's public objects, by owner and key),
 * starting after `cursor` (NULL or "" = from the start; else the cursor of
 * the previous page of the same listing). */
int kaos_client_storage_list(kaos_client *c, const char *user_id, const char *collection,
                             uint32_t limit, const char *cursor, kaos_storage_objects_fn done,
                             void *ud);

/* Friends (docs/friends.md). add, delete and block name users by id and/or
 * username (at most 100 of each; unknown users are skipped) and complete
 * with an Ack. Add invites, or accepts an invite already received; delete
 * removes a friendship, an invite or your block; block blocks. */
int kaos_client_friends_add(kaos_client *c, const char *const *ids, size_t id_count,
                            const char *const *usernames, size_t username_count, kaos_done_fn done,
                            void *ud);
int kaos_client_friends_delete(kaos_client *c, const char *const *ids, size_t id_count,
                               const char *const *usernames, size_t username_count,
                               kaos_done_fn done, void *ud);
int kaos_client_friends_block(kaos_client *c, const char *const *ids, size_t id_count,
                              const char *const *usernames, size_t username_count,
                              kaos_done_fn done, void *ud);
/* One page of at most `limit` (1-1000; 0 = 100) relationships in `state`
 * (KAOS_FRIEND_ANY or one state), after `cursor` (NULL or "" = from the
 * start; else the cursor of the previous page of the same listing). */
int kaos_client_friends_list(kaos_client *c, int state, uint32_t limit, const char *cursor,
                             kaos_friends_fn done, void *ud);
/* kaos_client_friends_add that also puts `metadata` (a JSON object as
 * text, at most 16 KiB; NULL or "" = leave) on your relationship to each
 * of them that is a friendship or an invite you sent once the add is done. */
int kaos_client_friends_add_metadata(kaos_client *c, const char *const *ids, size_t id_count,
                                     const char *const *usernames, size_t username_count,
                                     const char *metadata, kaos_done_fn done, void *ud);
/* Sets your metadata (a JSON object as text, at most 16 KiB) on your
 * relationship to user_id, in any state; completes with an Ack.
 * KAOS_ERR_NOT_FOUND when you have none with that user. */
int kaos_client_friends_metadata_update(kaos_client *c, const char *user_id, const char *metadata,
                                        kaos_done_fn done, void *ud);
/* One page of at most `limit` (1-1000; 0 = 100) friends of your friends,
 * after `cursor` (NULL or "" = from the start). Never you or your friends,
 * never a user you blocked or who blocked you; a user known through two
 * friends appears once per friend (docs/friends.md). */
int kaos_client_friends_of_friends_list(kaos_client *c, uint32_t limit, const char *cursor,
                                        kaos_friends_of_friends_fn done, void *ud);

/* Notifications (docs/notifications.md). List: at most `limit` (1-100; 0 =
 * 100) of your stored notifications after `cursor` (NULL or "" = from the
 * oldest; else a cursor a list returned). Delete: your notifications by id
 * (at most 100; others' and unknown ids are ignored), completing with an
 * Ack. Clients cannot send notifications. */
int kaos_client_notifications_list(kaos_client *c, uint32_t limit, const char *cursor,
                                   kaos_notifications_fn done, void *ud);
int kaos_client_notifications_delete(kaos_client *c, const char *const *ids, size_t count,
                                     kaos_done_fn done, void *ud);

/* Groups (docs/groups.md): every call acts as the session's user; a rank
 * rule refuses with KAOS_ERR_PERMISSION_DENIED and a message naming it.
 * create completes with the group; update (admins), delete (superadmin),
 * join (open: member; closed: a join request the admins are notified of),
 * leave and the user verbs (admins; 1-100 user ids: add or accept, kick,
 * ban, promote, demote) complete with an Ack. */
int kaos_client_group_create(kaos_client *c, const kaos_group_spec *spec, kaos_group_fn done,
                             void *ud);
int kaos_client_group_update(kaos_client *c, const char *group_id, const kaos_group_spec *spec,
                             kaos_done_fn done, void *ud);
int kaos_client_group_delete(kaos_client *c, const char *group_id, kaos_done_fn done, void *ud);
int kaos_client_group_join(kaos_client *c, const char *group_id, kaos_done_fn done, void *ud);
int kaos_client_group_leave(kaos_client *c, const char *group_id, kaos_done_fn done, void *ud);
int kaos_client_group_users_add(kaos_client *c, const char *group_id, const char *const *user_ids,
                                size_t count, kaos_done_fn done, void *ud);
int kaos_client_group_users_kick(kaos_client *c, const char *group_id, const char *const *user_ids,
                                 size_t count, kaos_done_fn done, void *ud);
int kaos_client_group_users_ban(kaos_client *c, const char *group_id, const char *const *user_ids,
                                size_t count, kaos_done_fn done, void *ud);
int kaos_client_group_users_promote(kaos_client *c, const char *group_id,
                                    const char *const *user_ids, size_t count, kaos_done_fn done,
                                    void *ud);
int kaos_client_group_users_demote(kaos_client *c, const char *group_id,
                                   const char *const *user_ids, size_t count, kaos_done_fn done,
                                   void *ud);
/* Pages of at most `limit` (1-100; 0 = 100) after `cursor` (NULL or "" =
 * from the start; else the cursor of the previous page of the same
 * listing): groups matching `filter` (NULL = all); a group's users and a
 * user's groups (user_id NULL = yours) in `state` (KAOS_GROUP_ANY or one). */
int kaos_client_groups_list(kaos_client *c, const kaos_groups_filter *filter, uint32_t limit,
                            const char *cursor, kaos_groups_fn done, void *ud);
int kaos_client_group_users_list(kaos_client *c, const char *group_id, int state, uint32_t limit,
                                 const char *cursor, kaos_group_users_fn done, void *ud);
int kaos_client_user_groups_list(kaos_client *c, const char *user_id, int state, uint32_t limit,
                                 const char *cursor, kaos_user_groups_fn done, void *ud);
/* Status (docs/status.md). Follows and a published status belong to this
 * session and end with it. follow: users by id and/or username (at most
 * 100 of each; unknown users, the caller and users who blocked the caller
 * are skipped); `done` gets those online now, and their changes arrive as
 * the status presence event. unfollow: by id (at most 100; not followed is
 * no error), Ack. update: publish `status` (at most 2048 bytes of UTF-8
 * without control characters; "" = online without a text) to the
 * followers, or NULL to appear offline; Ack. A list may be NULL when its
 * count is 0; a NULL list with a count, or a NULL element, is
 * KAOS_ERR_INVALID_ARGUMENT; the server judges the rest. */
int kaos_client_status_follow(kaos_client *c, const char *const *ids, size_t id_count,
                              const char *const *usernames, size_t username_count,
                              kaos_status_fn done, void *ud);
int kaos_client_status_unfollow(kaos_client *c, const char *const *ids, size_t count,
                                kaos_done_fn done, void *ud);
int kaos_client_status_update(kaos_client *c, const char *status, kaos_done_fn done, void *ud);
/* Chat (docs/chat.md). Join: a channel of `type` (KAOS_CHANNEL_*) and
 * `target`; with persistence the messages this session sends are stored;
 * hidden: no presence events for this session. Leave: completes with an
 * Ack. Send, update, remove: `content` is a JSON object (at most 4096
 * bytes); only stored messages, your own, can be updated or removed. List:
 * at most `limit` (1-100; 0 = 100) stored messages, oldest first when
 * `forward`, else newest first, after `cursor` (NULL or "" = from that
 * end). */
int kaos_client_channel_join(kaos_client *c, const char *target, int type, bool persistence,
                             bool hidden, kaos_channel_fn done, void *ud);
int kaos_client_channel_leave(kaos_client *c, const char *channel_id, kaos_done_fn done, void *ud);
int kaos_client_channel_message_send(kaos_client *c, const char *channel_id, const char *content,
                                     kaos_channel_message_ack_fn done, void *ud);
int kaos_client_channel_message_update(kaos_client *c, const char *channel_id,
                                       const char *message_id, const char *content,
                                       kaos_channel_message_ack_fn done, void *ud);
int kaos_client_channel_message_remove(kaos_client *c, const char *channel_id,
                                       const char *message_id, kaos_channel_message_ack_fn done,
                                       void *ud);
int kaos_client_channel_messages_list(kaos_client *c, const char *channel_id, uint32_t limit,
                                      bool forward, const char *cursor,
                                      kaos_channel_messages_fn done, void *ud);

/* Matchmaker: a ticket (done gets its id) that waits for a group; the
 * group arrives as kaos_client_on_matchmaker_matched. A ticket ends with
 * the session. Errors: INVALID_ARGUMENT (counts, properties, a query error
 * naming its position), RESOURCE_EXHAUSTED (3 tickets per session by
 * default); remove: NOT_FOUND "ticket not found". */
int kaos_client_matchmaker_add(kaos_client *c, const kaos_matchmaker_request *req,
                               kaos_ticket_fn done, void *ud);
int kaos_client_matchmaker_remove(kaos_client *c, const char *ticket, kaos_done_fn done, void *ud);
/* Parties (docs/parties.md). create: this session leads a new party
 * (INVALID_ARGUMENT for a size outside 2-256 or a bad label,
 * RESOURCE_EXHAUSTED "party limit per session reached (4)"). join: an open
 * party answers the party; a closed one a pending join request (party
 * NULL). NOT_FOUND "party not found" also for a party the caller is not
 * in; the leader's requests by others are PERMISSION_DENIED "only the
 * party leader may ...". accept/remove/promote name a session by user id
 * and session id; remove also rejects a join request. A leaving leader
 * hands over to the longest-present member. */
int kaos_client_party_create(kaos_client *c, const kaos_party_config *cfg, kaos_party_fn done,
                             void *ud);
int kaos_client_party_join(kaos_client *c, const char *party_id, kaos_party_fn done, void *ud);
int kaos_client_party_leave(kaos_client *c, const char *party_id, kaos_done_fn done, void *ud);
int kaos_client_party_promote(kaos_client *c, const char *party_id, const char *user_id,
                              const char *session_id, kaos_done_fn done, void *ud);
int kaos_client_party_accept(kaos_client *c, const char *party_id, const char *user_id,
                             const char *session_id, kaos_done_fn done, void *ud);
int kaos_client_party_remove(kaos_client *c, const char *party_id, const char *user_id,
                             const char *session_id, kaos_done_fn done, void *ud);
int kaos_client_party_close(kaos_client *c, const char *party_id, kaos_done_fn done, void *ud);
int kaos_client_party_join_requests(kaos_client *c, const char *party_id,
                                    kaos_party_requests_fn done, void *ud);
/* The leader's matchmaker ticket for the whole party (never split; the
 * other members get kaos_client_on_party_ticket). It goes when the party's
 * members change (ABORTED "party changed; retry" when they changed during
 * the add). remove: NOT_FOUND "ticket not found". */
int kaos_client_party_matchmaker_add(kaos_client *c, const char *party_id,
                                     const kaos_matchmaker_request *req, kaos_ticket_fn done,
                                     void *ud);
int kaos_client_party_matchmaker_remove(kaos_client *c, const char *party_id, const char *ticket,
                                        kaos_done_fn done, void *ud);
/* Open, visible parties whose label (a JSON object) passes `query` (the
 * matchmaker's query language; NULL or "" = every one), best score first;
 * limit 1-100, 0 = 10. INVALID_ARGUMENT for a bad query (its position). */
int kaos_client_party_list(kaos_client *c, const char *query, uint32_t limit,
                           kaos_party_list_fn done, void *ud);
/* Data to the other members. Returns KAOS_OK or a negative error (no cid:
 * fire-and-forget; a server error comes as the error event). reliable:
 * the control channel, else unreliable on channel 2. */
int kaos_client_party_send(kaos_client *c, const char *party_id, int64_t op_code, const void *data,
                           size_t len, bool reliable);
/* Joins the relayed match a MatchmakerMatched token names (the first of
 * the group to join creates it). INVALID_ARGUMENT "invalid match token". */
int kaos_client_match_join_token(kaos_client *c, const char *token, kaos_match_fn done, void *ud);
/* Leaderboards (docs/leaderboards.md): boards are created by the server;
 * clients write and delete their own record (never on an authoritative
 * board: KAOS_ERR_PERMISSION_DENIED) and read pages with ranks.
 * record_write: score and subscore with the board's operator or an
 * override (KAOS_LEADERBOARD_OP_*); metadata NULL keeps the record's.
 * records_list: `limit` 0-1000 (0 = 100; 0 with owner ids: only theirs)
 * after `cursor` (NULL or "" = the top); owner_ids (up to 1000) also
 * returns those owners' records (a friends view); expiry 0 = the current
 * period, else an ended period's end. records_around: up to `limit` around
 * owner_id (NULL = you), the owner in the middle where the board allows. */
int kaos_client_leaderboard_record_write(kaos_client *c, const char *leaderboard_id, int64_t score,
                                         int64_t subscore, const char *metadata, int op,
                                         kaos_leaderboard_record_fn done, void *ud);
int kaos_client_leaderboard_records_list(kaos_client *c, const char *leaderboard_id,
                                         const char *const *owner_ids, size_t owner_count,
                                         uint32_t limit, const char *cursor, int64_t expiry,
                                         kaos_leaderboard_records_fn done, void *ud);
int kaos_client_leaderboard_records_around(kaos_client *c, const char *leaderboard_id,
                                           const char *owner_id, uint32_t limit,
                                           kaos_leaderboard_records_fn done, void *ud);
int kaos_client_leaderboard_record_delete(kaos_client *c, const char *leaderboard_id,
                                          kaos_done_fn done, void *ud);
/* Tournaments (docs/leaderboards.md, "Tournaments"): created by the
 * server. join: the current period (needed first when the tournament
 * requires it; joining twice is fine). list: categories category_start to
 * category_end (both 0: all), start_time > 0 only those starting at or
 * after it, end_time > 0 only those ending by it; `limit` 0-100 (0 = 100).
 * record_write, records_list and records_around as the leaderboard calls;
 * refusals: KAOS_ERR_FAILED_PRECONDITION outside the window or before a
 * required join, KAOS_ERR_RESOURCE_EXHAUSTED full or no scores left. */
int kaos_client_tournament_join(kaos_client *c, const char *tournament_id, kaos_done_fn done,
                                void *ud);
int kaos_client_tournament_list(kaos_client *c, uint32_t category_start, uint32_t category_end,
                                int64_t start_time, int64_t end_time, uint32_t limit,
                                const char *cursor, kaos_tournaments_fn done, void *ud);
int kaos_client_tournament_record_write(kaos_client *c, const char *tournament_id, int64_t score,
                                        int64_t subscore, const char *metadata, int op,
                                        kaos_leaderboard_record_fn done, void *ud);
int kaos_client_tournament_records_list(kaos_client *c, const char *tournament_id,
                                        const char *const *owner_ids, size_t owner_count,
                                        uint32_t limit, const char *cursor, int64_t expiry,
                                        kaos_leaderboard_records_fn done, void *ud);
int kaos_client_tournament_records_around(kaos_client *c, const char *tournament_id,
                                          const char *owner_id, uint32_t limit,
                                          kaos_leaderboard_records_fn done, void *ud);

/* Match data to the others in a match. Returns KAOS_OK or a negative error
 * (no cid: fire-and-forget). reliable -> delivered in order, else
 * unreliable but sequenced (late packets are dropped). `targets` are presence
 * slots; NULL/0 = everyone else. */
int kaos_client_match_send(kaos_client *c, uint32_t match, int64_t op_code, const void *data,
                           size_t len, bool reliable, const uint32_t *targets, size_t target_count);

/* Advanced/test use: sends raw bytes on ENet channel 0..2 with no envelope
 * (sealed like every packet once the handshake is done). On a sealed
 * connection channels 0 and 1 must be reliable, since the server accepts
 * their packets only in order: an unreliable send there is
 * KAOS_ERR_INVALID_ARGUMENT. */
int kaos_client_send_raw(kaos_client *c, uint8_t channel, const void *data, size_t len,
                         bool reliable);

/* Counters since kaos_client_create, for diagnostics and tests. Frozen:
 * new counters would come with a new function, not a longer struct. */
typedef struct kaos_client_stats {
    uint64_t packets_sent;
    uint64_t packets_received;
    uint64_t malformed_received; /* packets that did not decode as an envelope; dropped */
    /* Envelopes a client does not handle (a request type, a type newer
     * than this build) and answers to no pending request (an unknown cid,
     * or a type that does not answer the request of that cid); dropped. */
    uint64_t unexpected_received;
    /* Packets refused before decoding: sealed packets that did not
     * authenticate or were replayed or out of order, and anything but the
     * welcome during the handshake; dropped. Part of packets_received. */
    uint64_t packets_rejected;
} kaos_client_stats;

void kaos_client_get_stats(const kaos_client *c, kaos_client_stats *out);

/* Logging, process-wide. Nothing is logged until a sink is installed. */
enum {
    KAOS_LOG_DEBUG = 0,
    KAOS_LOG_INFO = 1,
    KAOS_LOG_WARN = 2,
    KAOS_LOG_ERROR = 3,
    KAOS_LOG_OFF = 4,
};

/* Receives one message, without trailing newline; `msg` is valid during the call. */
typedef void (*kaos_log_fn)(int level, const char *msg, void *ud);

/* NULL = silent (the default). */
void kaos_set_log_sink(kaos_log_fn fn, void *ud);
/* Lowest level passed to the sink (default KAOS_LOG_INFO); KAOS_LOG_OFF = none. */
void kaos_set_log_level(int level);

/* Memory, process-wide: every allocation of the SDK (and of the ENet it
 * uses) goes through this. Install before creating the first client and
 * never while one exists; NULL restores malloc/realloc/free. The first
 * kaos_client_create hands this hook to ENet's global callbacks, so a game
 * that also uses ENet directly must not install ENet callbacks of its own. */
typedef struct kaos_allocator {
    void *(*alloc)(void *ud, size_t size);              /* NULL on failure */
    void *(*realloc)(void *ud, void *ptr, size_t size); /* NULL on failure, ptr kept */
    void (*free)(void *ud, void *ptr);                  /* accepts NULL */
    void *ud;
} kaos_allocator;

void kaos_set_allocator(const kaos_allocator *a);

#ifdef __cplusplus
}
#endif

#endif
