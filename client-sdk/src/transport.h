/* transport: the SDK's only contact with ENet (internal).
 *
 * One ENet host with one peer and KN_CHANNEL_COUNT channels. It turns ENet's
 * events into plain structs, copies outgoing bytes into packets (hiding that
 * enet_peer_send owns the packet only on success), and drops anything from a
 * peer that is not the one this client connected. It also speaks the
 * cookie exchange that precedes the ENet connect: the request leaves as a
 * raw datagram from the ENet host's own socket (the cookie is bound to that
 * address and port), and replies from the server's address come back as
 * COOKIE events. Bytes are carried as they are: sealing is the client's
 * business. Owned by one client and used from that client's thread. */
#ifndef KAOS_TRANSPORT_H
#define KAOS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kaos_transport kaos_transport;

typedef enum kaos_transport_event_type {
    KAOS_TRANSPORT_EVENT_NONE = 0,
    KAOS_TRANSPORT_EVENT_CONNECTED,
    KAOS_TRANSPORT_EVENT_DISCONNECTED, /* the peer is gone; `data` is the reason */
    KAOS_TRANSPORT_EVENT_RECEIVED,     /* bytes/len/channel; release with kaos_transport__release */
    KAOS_TRANSPORT_EVENT_COOKIE,       /* a cookie reply: status, version; `data` is the cookie */
} kaos_transport_event_type;

typedef struct kaos_transport_event {
    kaos_transport_event_type type;
    uint32_t data;
    uint8_t channel;
    uint8_t status;  /* COOKIE: KN_COOKIE_OK, _BAD_VERSION or _BUSY (or anything: untrusted) */
    uint8_t version; /* COOKIE: the server's protocol version */
    const uint8_t *bytes;
    size_t len;
    void *packet; /* private: the ENet packet that holds `bytes` */
} kaos_transport_event;

/* Opens the socket. KN_ERR_NOMEM or KN_ERR_IO on failure. */
int kaos_transport__create(kaos_transport **out);
/* Accepts NULL. A live peer is sent a disconnect (best effort) and dropped. */
void kaos_transport__destroy(kaos_transport *t);

/* Resolves `host` (blocking) and remembers it as the server; from now until
 * connect or abort, cookie replies from it become COOKIE events.
 * KN_ERR_UNAVAILABLE if the name does not resolve, KN_ERR_FAILED_PRECONDITION
 * if a peer is already active. */
int kaos_transport__open(kaos_transport *t, const char *host, uint16_t port);
/* Sends one cookie request for `version` to the server (after open).
 * KN_ERR_IO when the socket refused it (the caller retries later). */
int kaos_transport__request_cookie(kaos_transport *t, uint8_t version);
/* Starts the ENet connect to the server (after open), with `cookie` as the
 * connect data. KN_ERR_NOMEM, KN_ERR_UNAVAILABLE, KN_ERR_FAILED_PRECONDITION
 * if a peer is already active. */
int kaos_transport__connect(kaos_transport *t, uint32_t cookie);
/* ENet's ping interval for the connection being made (0 = ENet's 500 ms). */
void kaos_transport__set_ping_interval(kaos_transport *t, uint32_t ms);
/* Graceful: a DISCONNECTED event follows once the server acknowledges. */
void kaos_transport__disconnect(kaos_transport *t);
/* Immediate: sends one unreliable disconnect and forgets the peer (and ends
 * the cookie exchange); no event follows. */
void kaos_transport__abort(kaos_transport *t);

/* Copies `data` into a packet. reliable -> ENet reliable, else unreliable
 * sequenced (flag 0). KN_ERR_CLOSED when not connected, KN_ERR_NOMEM. */
int kaos_transport__send(kaos_transport *t, uint8_t channel, const void *data, size_t len,
                         bool reliable);
/* Sends what is queued now. */
void kaos_transport__flush(kaos_transport *t);

/* Waits at most wait_ms for one event. Returns 1 with *ev filled, 0 when
 * nothing happened, KN_ERR_IO when the socket failed. */
int kaos_transport__service(kaos_transport *t, uint32_t wait_ms, kaos_transport_event *ev);
/* Frees a RECEIVED event's packet; a no-op for the other types. */
void kaos_transport__release(kaos_transport_event *ev);

#endif
