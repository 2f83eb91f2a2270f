/* transport: the SDK's ENet host with its single peer.
 *
 * Invariants: `peer` is NULL or the peer this client connected (the host's
 * only slot); every event from any other peer is dropped here, because an
 * unbound ENet host accepts incoming connections whenever its slot is free.
 * ENet allocates through kn_malloc, so an injected allocator sees (and can
 * fail) ENet's allocations too. */
#include "transport.h"
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"

#include <enet/enet.h>

#include <stdatomic.h>

struct kaos_transport {
    ENetHost *host;
    ENetPeer *peer;
};

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

int kaos_transport__connect(kaos_transport *t, const char *host, uint16_t port, uint32_t data)
{
    if (t->peer) return KN_ERR_FAILED_PRECONDITION;
    ENetAddress address = {0};
    if (enet_address_set_host(&address, host) != 0) {
        KN_ERROR("cannot resolve host '%s'", host);
        return KN_ERR_UNAVAILABLE;
    }
    address.port = port;
    /* The only slot may hold a stranger's half-open connection: ours wins. */
    ENetPeer *slot = &t->host->peers[0];
    if (slot->state != ENET_PEER_STATE_DISCONNECTED) enet_peer_reset(slot);
    enet_out_of_memory = false;
    t->peer = enet_host_connect(t->host, &address, KN_CHANNEL_COUNT, data);
    if (!t->peer) return enet_out_of_memory ? KN_ERR_NOMEM : KN_ERR_UNAVAILABLE;
    return KN_OK;
}

void kaos_transport__disconnect(kaos_transport *t)
{
    if (t->peer) enet_peer_disconnect(t->peer, 0);
}

void kaos_transport__abort(kaos_transport *t)
{
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

int kaos_transport__service(kaos_transport *t, uint32_t wait_ms, kaos_transport_event *ev)
{
    *ev = (kaos_transport_event){.type = KAOS_TRANSPORT_EVENT_NONE};
    ENetEvent e;
    for (;;) {
        int rc = enet_host_service(t->host, &e, wait_ms);
        if (rc < 0) {
            KN_ERROR("client socket failed");
            return KN_ERR_IO;
        }
        if (rc == 0) return 0;
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
