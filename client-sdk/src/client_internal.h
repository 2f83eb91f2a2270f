/* client_internal: the kaos_client struct and what the SDK's files share.
 *
 * client.c owns the lifecycle and the connection state machine, requests.c
 * builds and sends envelopes, dispatch.c turns received envelopes into
 * callbacks, session.c keeps the copy of the current session. Only
 * transport.c touches ENet; only kn_codec touches protobuf-c. A client and
 * everything it points to belong to the one thread that uses it. */
#ifndef KAOS_CLIENT_INTERNAL_H
#define KAOS_CLIENT_INTERNAL_H

#include "kaos.h"
#include "kn_codec.h"
#include "transport.h"

#include <stdbool.h>
#include <stdint.h>

/* Only client.c's set_state writes `state`. */
typedef enum kaos_client_state {
    KAOS_CLIENT_DISCONNECTED = 0,
    KAOS_CLIENT_CONNECTING,
    KAOS_CLIENT_CONNECTED,
    KAOS_CLIENT_DISCONNECTING,
} kaos_client_state;

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
    kaos_client_config cfg; /* cfg.host points at `host` */
    char *host;
    kaos_transport *transport;

    kaos_client_state state;
    int64_t state_since_ms;       /* monotonic time the current state began */
    int64_t last_send_ms;         /* monotonic time of the last packet sent, for keepalive */
    uint32_t pending_disconnects; /* on_disconnected(0) owed for connects dropped locally */
    bool in_poll;

    uint32_t next_cid;      /* 1..INT32_MAX, never 0 */
    uint32_t keepalive_cid; /* cid of the outstanding keepalive Ping, 0 if none */

    bool has_session;
    kaos_stored_session session;

    /* Scratch for the presence arrays handed to callbacks; grows, never shrinks. */
    kaos_presence *presences;
    size_t presences_cap;

    kaos_client_stats stats;
    uint8_t send_buf[KAOS_MAX_MESSAGE_SIZE]; /* an envelope is packed here before it is sent */
};

/* requests.c */

/* Packs `env` and sends it. KN_ERR_CLOSED unless connected, KN_ERR_TOO_LARGE
 * above KAOS_MAX_MESSAGE_SIZE. */
int kaos_client__send(kaos_client *c, const kn_envelope *env, uint8_t channel, bool reliable);
/* Gives `env` the next cid and sends it reliably on the control channel.
 * Returns the cid or a negative error. */
int kaos_client__request(kaos_client *c, kn_envelope *env);

/* dispatch.c: fires the callback for one envelope that arrived on `channel`. */
void kaos_client__dispatch(kaos_client *c, const kn_envelope *env, uint8_t channel);

/* session.c */

/* Replaces the stored session with copies of `s`; keeps the old one and
 * returns KN_ERR_NOMEM if copying fails. */
int kaos_client__session_store(kaos_client *c, const Kaos__V1__Session *s);
void kaos_client__session_clear(kaos_client *c);

#endif
