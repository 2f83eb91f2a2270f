/* transport: the SDK's ENet host with its single peer.
 *
 * Invariants: `peer` is NULL or the peer this client connected (the host's
 * only slot); every event from any other peer is dropped here, because an
 * unbound ENet host accepts incoming connections whenever its slot is free.
 * ENet allocates through kn_malloc, so an injected allocator sees (and can
 * fail) ENet's allocations too.
 *
 * Cookie replies are raw datagrams, which ENet would drop as junk, so the
 * host's receive intercept takes every datagram that parses as one. ENet's
 * intercept gets only the host, and ENetHost has no user pointer, so the
 * transport being serviced is found through `servicing`: the intercept runs
 * only inside enet_host_service, which runs only in kaos_transport__service,
 * on this thread. A reply is kept only while `want_cookie` and only from
 * the server's address; the intercept then hands ENet a RECEIVE event with
 * no peer and no packet, which makes enet_host_service return at once, and
 * kaos_transport__service turns it into a COOKIE event. */
#include "transport.h"
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_secure.h"

#include <enet/enet.h>

#include "kn_enet_rto.h" /* after <enet/enet.h> */

#include <stdatomic.h>

struct kaos_transport {
    uint32_t ping_interval_ms; /* 0: ENet's */
    ENetHost *host;
    ENetPeer *peer;
    ENetAddress server; /* set by open */
    bool want_cookie;   /* between open and connect/abort */
    bool has_reply;     /* a cookie reply waits for service to hand it out */
    uint8_t reply_status, reply_version;
    uint32_t reply_cookie;
};

/* The transport inside enet_host_service on this thread, for the intercept. */
static _Thread_local kaos_transport *servicing;

enum { ENET_IDLE, ENET_STARTING, ENET_READY };
static atomic_int enet_state = ENET_IDLE;

/* Set by ENet's out-of-memory hook, so a NULL from ENet can be told apart
 * from a socket failure. Per thread, because clients may live on several. */
static _Thread_local bool enet_out_of_memory;

static void note_out_of_memory(void)
{
    /* ENet's default hook aborts; every ENet caller of enet_malloc handles NULL. */
    enet_out_of_memory = true;
}

/* ENet's global state is set up once per process and never torn down:
 * enet_deinitialize does nothing on POSIX, and tearing down while another
 * client (or the game's own ENet use) is live would break it. */
static int start_enet(void)
{
    for (;;) {
        int state = atomic_load(&enet_state);
        if (state == ENET_READY) return KN_OK;
        int expected = ENET_IDLE;
        if (state == ENET_IDLE &&
            atomic_compare_exchange_strong(&enet_state, &expected, ENET_STARTING)) {
            ENetCallbacks callbacks = {
                .malloc = kn_malloc, .free = kn_free, .no_memory = note_out_of_memory};
            int rc = enet_initialize_with_callbacks(ENET_VERSION, &callbacks);
            atomic_store(&enet_state, rc == 0 ? ENET_READY : ENET_IDLE);
            if (rc != 0) {
                KN_ERROR("enet_initialize failed");
                return KN_ERR_IO;
            }
            return KN_OK;
        }
        /* Another thread is initialising; that takes microseconds, so spin. */
    }
}

/* Takes cookie replies from the raw datagram stream; leaves the rest to ENet. */
static int ENET_CALLBACK intercept(ENetHost *host, ENetEvent *event)
{
    uint8_t version, status;
    uint32_t cookie;
    if (kn_cookie_reply_parse(host->receivedData, host->receivedDataLength, &version, &status,
                              &cookie) < 0)
        return 0;
    /* A cookie reply is never ENet's business: consume it even when unwanted
     * (a late duplicate of an answered request, or from a stranger). */
    kaos_transport *t = servicing;
    if (!t || t->host != host || !t->want_cookie || host->receivedAddress.host != t->server.host ||
        host->receivedAddress.port != t->server.port) {
        KN_DEBUG("ignored a cookie reply");
        return 1;
    }
    t->has_reply = true;
    t->reply_status = status;
    t->reply_version = version;
    t->reply_cookie = cookie;
    if (event) {
        event->type = ENET_EVENT_TYPE_RECEIVE; /* any type but NONE ends the service call */
        event->peer = NULL;
        event->packet = NULL;
    }
    return 1;
}

int kaos_transport__create(kaos_transport **out)
{
    *out = NULL;
    int rc = start_enet();
    if (rc < 0) return rc;
    kaos_transport *t = kn_calloc(1, sizeof *t);
    if (!t) return KN_ERR_NOMEM;
    enet_out_of_memory = false;
    t->host = enet_host_create(NULL, 1, KN_CHANNEL_COUNT, 0, 0);
    if (!t->host) {
        rc = enet_out_of_memory ? KN_ERR_NOMEM : KN_ERR_IO;
        if (rc == KN_ERR_IO) KN_ERROR("cannot open a UDP socket for the client");
        kn_free(t);
        return rc;
    }
    t->host->intercept = intercept;
    *out = t;
    return KN_OK;
}

void kaos_transport__destroy(kaos_transport *t)
{
    if (!t) return;
    kaos_transport__abort(t);
    if (t->host) enet_host_destroy(t->host);
    kn_free(t);
}

int kaos_transport__open(kaos_transport *t, const char *host, uint16_t port)
{
    if (t->peer) return KN_ERR_FAILED_PRECONDITION;
    ENetAddress address = {0};
    if (enet_address_set_host(&address, host) != 0) {
        KN_ERROR("cannot resolve host '%s'", host);
        return KN_ERR_UNAVAILABLE;
    }
    address.port = port;
    t->server = address;
    t->want_cookie = true;
    t->has_reply = false;
    return KN_OK;
}

int kaos_transport__request_cookie(kaos_transport *t, uint8_t version)
{
    uint8_t request[KN_COOKIE_REQUEST_SIZE];
    kn_cookie_request_build(request, version);
    ENetBuffer buffer = {.data = request, .dataLength = sizeof request};
    /* 0 means the socket would block: as lost as a dropped datagram. */
    return enet_socket_send(t->host->socket, &t->server, &buffer, 1) > 0 ? KN_OK : KN_ERR_IO;
}

int kaos_transport__connect(kaos_transport *t, uint32_t cookie)
{
    if (t->peer) return KN_ERR_FAILED_PRECONDITION;
    t->want_cookie = false;
    t->has_reply = false;
    /* The only slot may hold a stranger's half-open connection: ours wins. */
    ENetPeer *slot = &t->host->peers[0];
    if (slot->state != ENET_PEER_STATE_DISCONNECTED) enet_peer_reset(slot);
    enet_out_of_memory = false;
    t->peer = enet_host_connect(t->host, &t->server, KN_CHANNEL_COUNT, cookie);
    if (!t->peer) return enet_out_of_memory ? KN_ERR_NOMEM : KN_ERR_UNAVAILABLE;
    if (t->ping_interval_ms) enet_peer_ping_interval(t->peer, t->ping_interval_ms);
    return KN_OK;
}

void kaos_transport__set_ping_interval(kaos_transport *t, uint32_t ms)
{
    t->ping_interval_ms = ms;
}

void kaos_transport__disconnect(kaos_transport *t)
{
    if (t->peer) enet_peer_disconnect(t->peer, 0);
}

void kaos_transport__abort(kaos_transport *t)
{
    t->want_cookie = false;
    t->has_reply = false;
    if (!t->peer) return;
    enet_peer_disconnect_now(t->peer, 0);
    t->peer = NULL;
}

int kaos_transport__send(kaos_transport *t, uint8_t channel, const void *data, size_t len,
                         bool reliable)
{
    if (!t->peer || t->peer->state != ENET_PEER_STATE_CONNECTED) return KN_ERR_CLOSED;
    if (channel >= KN_CHANNEL_COUNT) return KN_ERR_INVALID_ARGUMENT;
    /* Flag 0 makes ENet's unreliable packets sequenced: late ones are dropped. */
    ENetPacket *packet = enet_packet_create(data, len, reliable ? ENET_PACKET_FLAG_RELIABLE : 0);
    if (!packet) return KN_ERR_NOMEM;
    /* enet_peer_send owns the packet only on success. State and channel were
     * checked above, so a failure here is an allocation failure. */
    if (enet_peer_send(t->peer, channel, packet) < 0) {
        enet_packet_destroy(packet);
        return KN_ERR_NOMEM;
    }
    return KN_OK;
}

void kaos_transport__flush(kaos_transport *t)
{
    enet_host_flush(t->host);
}

/* Anything from a peer that is not ours: refuse it and move on. */
static void drop_stranger(ENetEvent *e)
{
    if (e->type == ENET_EVENT_TYPE_RECEIVE) enet_packet_destroy(e->packet);
    if (e->type == ENET_EVENT_TYPE_CONNECT) enet_peer_disconnect_now(e->peer, 0);
    KN_DEBUG("dropped an event from an unknown peer");
}

/* Hands out the cookie reply the intercept kept. */
static int take_cookie(kaos_transport *t, kaos_transport_event *ev)
{
    t->has_reply = false;
    ev->type = KAOS_TRANSPORT_EVENT_COOKIE;
    ev->status = t->reply_status;
    ev->version = t->reply_version;
    ev->data = t->reply_cookie;
    return 1;
}

int kaos_transport__service(kaos_transport *t, uint32_t wait_ms, kaos_transport_event *ev)
{
    *ev = (kaos_transport_event){.type = KAOS_TRANSPORT_EVENT_NONE};
    if (t->has_reply) return take_cookie(t, ev);
    ENetEvent e;
    for (;;) {
        kn_enet_cap_rto(t->host, KN_ENET_RTO_CAP_MS); /* a lossy but live link stays */
        servicing = t;
        int rc = enet_host_service(t->host, &e, wait_ms);
        servicing = NULL;
        if (rc < 0) {
            KN_ERROR("client socket failed");
            return KN_ERR_IO;
        }
        if (rc == 0) return 0;
        /* The intercept's wake-up: no peer, no packet. */
        if (e.type == ENET_EVENT_TYPE_RECEIVE && !e.packet) {
            if (t->has_reply) return take_cookie(t, ev);
            wait_ms = 0;
            continue;
        }
        if (e.peer == t->peer && t->peer) break;
        drop_stranger(&e);
        wait_ms = 0;
    }
    switch (e.type) {
    case ENET_EVENT_TYPE_CONNECT:
        ev->type = KAOS_TRANSPORT_EVENT_CONNECTED;
        break;
    case ENET_EVENT_TYPE_DISCONNECT:
        /* ENet has reset the peer; the slot is free for the next connect. */
        t->peer = NULL;
        ev->type = KAOS_TRANSPORT_EVENT_DISCONNECTED;
        ev->data = e.data;
        break;
    case ENET_EVENT_TYPE_RECEIVE:
        ev->type = KAOS_TRANSPORT_EVENT_RECEIVED;
        ev->channel = e.channelID;
        ev->bytes = e.packet->data;
        ev->len = e.packet->dataLength;
        ev->packet = e.packet;
        break;
    case ENET_EVENT_TYPE_NONE:
        return 0;
    }
    return 1;
}

void kaos_transport__release(kaos_transport_event *ev)
{
    if (ev->packet) enet_packet_destroy(ev->packet);
    ev->packet = NULL;
    ev->bytes = NULL;
    ev->len = 0;
}
