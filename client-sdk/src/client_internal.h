/* client_internal: the kaos_client struct and what the SDK's files share.
 *
 * client.c owns the lifecycle and the connection state machine, secure.c
 * the transport security (key pinning, hello/welcome, sealing and opening
 * every packet), requests.c builds and sends envelopes and remembers each
 * request's completion by cid, dispatch.c turns received envelopes into
 * completions and events, session.c keeps the copy of the current session.
 * A pending completion lives in `pending` from the moment its request is
 * sent until it fires (once) or the client is destroyed (never fires).
 * Only transport.c touches ENet; only kn_codec touches protobuf-c; only
 * kn_crypto (common) touches libsodium. A client and everything it points
 * to belong to the one thread that uses it. */
#ifndef KAOS_CLIENT_INTERNAL_H
#define KAOS_CLIENT_INTERNAL_H

#include "kaos.h"
#include "kn_codec.h"
#include "kn_map.h"
#include "kn_secure.h"
#include "transport.h"

#include <stdbool.h>
#include <stdint.h>

/* Only client.c's set_state writes `state`. */
typedef enum kaos_client_state {
    KAOS_CLIENT_DISCONNECTED = 0,
    KAOS_CLIENT_COOKIE,     /* asking the server for a cookie (raw UDP) */
    KAOS_CLIENT_CONNECTING, /* ENet connecting with the cookie */
    KAOS_CLIENT_HANDSHAKE,  /* ENet connected, hello sent, waiting for the welcome */
    KAOS_CLIENT_CONNECTED,
    KAOS_CLIENT_DISCONNECTING,
} kaos_client_state;

/* What a packet received during the handshake means (secure.c). */
typedef enum kaos_welcome_outcome {
    KAOS_WELCOME_IGNORED = 0, /* not a welcome: drop it and keep waiting */
    KAOS_WELCOME_SEALED,      /* keys agreed: the connection is open and sealed */
    KAOS_WELCOME_PLAINTEXT,   /* the server's security is off and insecure_dev_mode allows it */
    KAOS_WELCOME_REFUSED,     /* the client refuses the server: report and disconnect */
} kaos_welcome_outcome;

/* Completions are kept as this and cast back to their own type by the
 * reply kind that fires them (a round trip C allows for function pointers). */
typedef void (*kaos__fn)(void);
#define KAOS__FN(f) ((kaos__fn)(f))

/* The kinds of answer a request waits for: one per completion type of
 * kaos.h. dispatch.c has one row per kind (the envelopes that answer it and
 * how they become the public struct); requests.c names the kind of each
 * request. */
typedef enum kaos_reply_kind {
    KAOS_REPLY_DONE = 0, /* Ack -> kaos_done_fn */
    KAOS_REPLY_SESSION,
    KAOS_REPLY_MATCH,
    KAOS_REPLY_MATCH_LIST,
    KAOS_REPLY_PONG,
    KAOS_REPLY_RPC,
    KAOS_REPLY_ACCOUNT,
    KAOS_REPLY_USERS,
    KAOS_REPLY_STORAGE_ACKS,
    KAOS_REPLY_STORAGE_OBJECTS,
    KAOS_REPLY_FRIENDS,
    KAOS_REPLY_NOTIFICATIONS,
    KAOS_REPLY_STATUS,
    KAOS_REPLY_FRIENDS_OF_FRIENDS,
    KAOS_REPLY_GROUP,
    KAOS_REPLY_GROUPS,
    KAOS_REPLY_GROUP_USERS,
    KAOS_REPLY_USER_GROUPS,
    KAOS_REPLY_CHANNEL,
    KAOS_REPLY_CHANNEL_MESSAGE,
    KAOS_REPLY_CHANNEL_MESSAGES,
    KAOS_REPLY_TICKET,
    KAOS_REPLY_LEADERBOARD_RECORD,
    KAOS_REPLY_LEADERBOARD_RECORDS,
    KAOS_REPLY_TOURNAMENTS,
    KAOS_REPLY_PARTY,
    KAOS_REPLY_PARTY_REQUESTS,
    KAOS_REPLY_PARTY_TICKET,
    KAOS_REPLY_PARTY_LIST,
    KAOS_REPLY_KIND_COUNT,
} kaos_reply_kind;

/* A request waiting for its answer (heap; owned by the client's map). */
typedef struct kaos_pending {
    uint32_t cid;
    kaos_reply_kind reply;
    kaos__fn fn; /* may be NULL: the answer is only applied (keepalive, fire-and-forget) */
    void *ud;
} kaos_pending;

/* One registered event: its callback (NULL = none) and user data. */
#define KAOS__EVENT(type)                                                                          \
    struct {                                                                                       \
        type fn;                                                                                   \
        void *ud;                                                                                  \
    }

typedef struct kaos_events {
    KAOS__EVENT(kaos_connected_fn) connected;
    KAOS__EVENT(kaos_disconnected_fn) disconnected;
    KAOS__EVENT(kaos_error_fn) error;
    KAOS__EVENT(kaos_match_data_fn) match_data;
    KAOS__EVENT(kaos_match_presence_fn) match_presence;
    KAOS__EVENT(kaos_match_end_fn) match_end;
    KAOS__EVENT(kaos_shutdown_notice_fn) shutdown_notice;
    KAOS__EVENT(kaos_notifications_event_fn) notifications;
    KAOS__EVENT(kaos_status_presence_fn) status_presence;
    KAOS__EVENT(kaos_stream_presence_fn) stream_presence;
    KAOS__EVENT(kaos_stream_data_fn) stream_data;
    KAOS__EVENT(kaos_channel_message_fn) channel_message;
    KAOS__EVENT(kaos_channel_presence_fn) channel_presence;
    KAOS__EVENT(kaos_matchmaker_matched_fn) matchmaker_matched;
    KAOS__EVENT(kaos_party_presence_fn) party_presence;
    KAOS__EVENT(kaos_party_data_fn) party_data;
    KAOS__EVENT(kaos_party_leader_fn) party_leader;
    KAOS__EVENT(kaos_party_join_request_fn) party_join_request;
    KAOS__EVENT(kaos_party_close_fn) party_close;
    KAOS__EVENT(kaos_party_ticket_fn) party_ticket;
} kaos_events;

typedef struct kaos_welcome_result {
    kaos_welcome_outcome outcome;
    /* REFUSED: the error event's code (a KAOS_ERR_*) and text, and the
     * disconnected event's reason. */
    int code;
    uint32_t reason;
    char message[160];
} kaos_welcome_result;

/* The session the client keeps: owned copies plus the public view of them. */
typedef struct kaos_stored_session {
    char *token;
    char *refresh_token;
    char *user_id;
    char *username;
    char *session_id;
    kaos_session view; /* points into the strings above */
} kaos_stored_session;

struct kaos_client {
    kaos_client_config cfg; /* cfg.host points at `host`; cfg.size is sizeof cfg */
    char *host;
    kaos_events events;
    kn_map pending; /* cid -> kaos_pending */
    kaos_transport *transport;

    kaos_client_state state;
    int64_t state_since_ms;       /* monotonic time the current state began */
    int64_t connect_since_ms;     /* monotonic time kaos_client_connect began this attempt */
    int64_t cookie_due_ms;        /* COOKIE: when to send the next cookie request */
    bool cookie_busy;             /* COOKIE: the server answered BUSY (overloaded) */
    int64_t last_send_ms;         /* monotonic time of the last packet sent, for keepalive */
    uint32_t pending_disconnects; /* disconnected(0) events owed for connects dropped locally */
    bool in_poll;

    uint32_t next_cid; /* 1..INT32_MAX, never 0 */

    bool has_session;
    kaos_stored_session session;

    /* Scratch for the presence arrays handed to callbacks; grows, never shrinks. */
    kaos_presence *presences;
    size_t presences_cap;
    /* ...and for the users handed to a kaos_users_fn. */
    kaos_user *users;
    size_t users_cap;

    /* Transport security (secure.c). pinned/has_pin/key_hex are fixed at
     * create; hs, crypt and sealed live for one connection and are wiped
     * when it ends; server_pk survives it (kaos_client_server_key). */
    uint8_t pinned[KN_KEY_SIZE];
    bool has_pin;
    char key_hex[2 * KN_KEY_SIZE + 1]; /* cfg.server_key points here when pinned */
    kn_hs_client hs;
    kn_crypt crypt;
    bool sealed; /* every packet is sealed and opened with `crypt` */
    uint8_t server_pk[KN_KEY_SIZE];
    bool has_server_pk;

    kaos_client_stats stats;
    uint8_t send_buf[KAOS_MAX_MESSAGE_SIZE];                    /* envelopes are packed here */
    uint8_t seal_buf[KAOS_MAX_MESSAGE_SIZE + KN_SEAL_OVERHEAD]; /* ...and sealed here */
    uint8_t open_buf[KAOS_MAX_MESSAGE_SIZE]; /* received packets are opened here (larger: heap) */
};

/* requests.c */

/* Packs `env` and sends it. KN_ERR_CLOSED unless connected, KN_ERR_TOO_LARGE
 * above KAOS_MAX_MESSAGE_SIZE. */
int kaos_client__send(kaos_client *c, const kn_envelope *env, uint8_t channel, bool reliable);
/* cfg.appear_online: a StatusUpdate with an empty status and no completion
 * (its answer, Ack or Error, is only applied). Returns its cid or an error. */
int kaos_client__appear_online(kaos_client *c);

/* secure.c */

/* Checks and copies the security part of `cfg` into c (pinned key) and
 * starts the crypto library (kn_crypto_init). KN_ERR_CONFIG (logged) or KN_ERR_INTERNAL. */
int kaos_client__secure_create(kaos_client *c, const kaos_client_config *cfg);
/* Before a connect: KN_ERR_FAILED_PRECONDITION (logged) without a pinned
 * key or insecure_dev_mode; logs the warnings of the insecure modes. */
int kaos_client__secure_check(kaos_client *c);
/* Starts the handshake and sends the hello, in clear, reliably on channel 0. */
int kaos_client__send_hello(kaos_client *c);
/* Judges a packet received in the HANDSHAKE state; on SEALED, `crypt` and
 * `sealed` are set. Never fires callbacks. */
kaos_welcome_result kaos_client__read_welcome(kaos_client *c, uint8_t channel, const uint8_t *bytes,
                                              size_t len);
/* Sends one packet, sealed when the connection is. KN_ERR_CLOSED,
 * KN_ERR_NOMEM, KN_ERR_INVALID_ARGUMENT (unreliable on an ordered channel
 * of a sealed connection). Does not count it. */
int kaos_client__send_packet(kaos_client *c, uint8_t channel, const void *data, size_t len,
                             bool reliable);
/* Opens a received packet (or passes it through when not sealed). *plain
 * points into `bytes`, the client's open buffer or *heap, which the caller
 * frees with kn_free after use. A negative error means: reject it. */
int kaos_client__open_packet(kaos_client *c, uint8_t channel, const uint8_t *bytes, size_t len,
                             const uint8_t **plain, size_t *plain_len, uint8_t **heap);
/* Forgets the connection's keys (when it ends). */
void kaos_client__secure_reset(kaos_client *c);

/* dispatch.c */

/* Fires the completion or event for one envelope that arrived on `channel`. */
void kaos_client__dispatch(kaos_client *c, const kn_envelope *env, uint8_t channel);

/* The public structs as entities (kn_entity.h), defined in dispatch.c with
 * compile-time proof that kaos.h declares each exactly as the entity. */
typedef struct kn_entity kn_entity;
extern const kn_entity kaos_client__presence_entity;
extern const kn_entity kaos_client__user_entity;
extern const kn_entity kaos_client__storage_object_entity;
extern const kn_entity kaos_client__storage_ack_entity;
extern const kn_entity kaos_client__user_presence_entity;
/* Fires every pending completion, in cid order, with `code` and `message`,
 * and forgets them (the connection ended). */
void kaos_client__fail_pending(kaos_client *c, int code, const char *message);
/* Forgets every pending completion without firing it (destroy). */
void kaos_client__drop_pending(kaos_client *c);

/* session.c */

/* Replaces the stored session with copies of `s`; keeps the old one and
 * returns KN_ERR_NOMEM if copying fails. */
int kaos_client__session_store(kaos_client *c, const Kaos__V1__Session *s);
void kaos_client__session_clear(kaos_client *c);

#endif
