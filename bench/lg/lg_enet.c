/* lg_enet: the load generator's raw ENet driver, the client side of
 * bare_server. The only load generator file that includes ENet.
 *
 * Each client is its own ENet host with one peer and 3 channels, like an SDK
 * client. bare_server puts peers into rooms by the order in which their
 * connections complete, so clients connect one at a time in global index
 * order: workers take turns (lg_worker_wait_turn), and the next client starts
 * only after the server greeted this one with its connect number, which must
 * equal the client's global index (counted from a multiple of the room size)
 * or setup fails: a baseline with mixed-up rooms would measure nothing. Payloads travel as raw
 * packets, unreliable (sequenced) on channel 2; no framing is needed: the server forwards inputs
 * unchanged (relay) or sends snapshots in the bytes lg.h describes (realtime). */
#include "lg.h"

#include <enet/enet.h>
#include <stdio.h>
#include <stdlib.h>

#define CHANNELS           3
#define CHANNEL_GREET      0
#define CHANNEL_INPUT      2
#define CONNECT_TIMEOUT_MS 5000

typedef struct eclient {
    ENetHost *host;
    ENetPeer *peer;
} eclient;

typedef struct estate {
    eclient *clients;
    bool enet_up;
    bool have_base;
    uint32_t base; /* connect number minus global index (a multiple of the room size) */
} estate;

static estate *state_of(lg_worker *w)
{
    return w->driver_state;
}

/* The server's greeting: is this client where the rooms need it? */
static int check_greeting(lg_worker *w, uint32_t i, const ENetPacket *p)
{
    estate *st = state_of(w);
    uint32_t g = w->first + i, room = w->cfg->room_size;
    if (p->dataLength != 4) {
        lg_worker_fail(w, "client %u: unexpected %zu-byte greeting", g, p->dataLength);
        return -1;
    }
    uint32_t seq = lg_get_u32(p->data);
    /* The first greeting fixes where this worker's clients start counting;
     * only a start on a room boundary keeps the rooms intact. */
    if (!st->have_base && seq >= g && (seq - g) % room == 0) {
        st->base = seq - g;
        st->have_base = true;
    }
    if (!st->have_base || seq != st->base + g) {
        lg_worker_fail(w,
                       "bare server numbered client %u as connect #%u: rooms would not match "
                       "(a connection from an earlier run still open?)",
                       g, seq);
        return -1;
    }
    return 0;
}

/* Connects client i and waits for the server's greeting, so the server has
 * completed this connection before the next one starts. */
static int connect_one(lg_worker *w, uint32_t i, eclient *c, const ENetAddress *addr)
{
    c->host = enet_host_create(NULL, 1, CHANNELS, 0, 0);
    if (!c->host) {
        lg_worker_fail(w, "enet_host_create failed");
        return -1;
    }
    c->peer = enet_host_connect(c->host, addr, CHANNELS, 0);
    if (!c->peer) {
        lg_worker_fail(w, "enet_host_connect failed");
        return -1;
    }
    int64_t deadline = lg_now_ns() + (int64_t)CONNECT_TIMEOUT_MS * 1000000;
    ENetEvent ev;
    while (lg_now_ns() < deadline) {
        int r = enet_host_service(c->host, &ev, 5);
        if (r < 0) break;
        if (r == 0) continue;
        if (ev.type == ENET_EVENT_TYPE_RECEIVE) {
            int rc = ev.channelID == CHANNEL_GREET ? check_greeting(w, i, ev.packet) : 0;
            bool greeted = ev.channelID == CHANNEL_GREET;
            enet_packet_destroy(ev.packet);
            if (greeted) {
                enet_host_flush(c->host); /* the acknowledgement */
                return rc;
            }
        }
        if (ev.type == ENET_EVENT_TYPE_DISCONNECT) break;
    }
    lg_worker_fail(w, "connect to the bare server failed or timed out");
    return -1;
}

static int enet_setup(lg_worker *w)
{
    estate *st = calloc(1, sizeof *st);
    if (!st) return -1;
    w->driver_state = st;
    st->clients = calloc(w->count, sizeof *st->clients);
    if (!st->clients) {
        lg_worker_fail(w, "out of memory");
        return -1;
    }
    if (enet_initialize() != 0) {
        lg_worker_fail(w, "enet_initialize failed");
        return -1;
    }
    st->enet_up = true;
    ENetAddress addr = {.port = w->cfg->port};
    if (enet_address_set_host_ip(&addr, w->cfg->host) != 0) {
        lg_worker_fail(w, "bad host %s", w->cfg->host);
        return -1;
    }
    if (lg_worker_wait_turn(w)) {
        lg_worker_fail(w, "stopped: another worker failed");
        return -1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < w->count && rc == 0; i++)
        rc = connect_one(w, i, &st->clients[i], &addr);
    lg_worker_pass_turn(w);
    return rc;
}

static int enet_fd(lg_worker *w, uint32_t i)
{
    return (int)state_of(w)->clients[i].host->socket;
}

static int enet_send(lg_worker *w, uint32_t i, const uint8_t *payload, size_t len)
{
    eclient *c = &state_of(w)->clients[i];
    ENetPacket *p = enet_packet_create(payload, len, 0);
    if (!p) return -1;
    /* enet_peer_send takes the packet only on success. */
    if (enet_peer_send(c->peer, CHANNEL_INPUT, p) < 0) {
        enet_packet_destroy(p);
        return -1;
    }
    enet_host_flush(c->host);
    return (int)len;
}

static void handle(lg_worker *w, uint32_t i, ENetEvent *ev)
{
    switch (ev->type) {
    case ENET_EVENT_TYPE_RECEIVE:
        if (ev->channelID != CHANNEL_GREET)
            lg_worker_on_payload(w, i, ev->packet->data, ev->packet->dataLength,
                                 ev->packet->dataLength);
        enet_packet_destroy(ev->packet);
        break;
    case ENET_EVENT_TYPE_DISCONNECT:
        w->res->disconnects++;
        break;
    case ENET_EVENT_TYPE_CONNECT:
    case ENET_EVENT_TYPE_NONE:
        break;
    }
}

/* Paced: one service (reads the socket), then only the queued events. */
static void enet_service(lg_worker *w, uint32_t i)
{
    eclient *c = &state_of(w)->clients[i];
    ENetEvent ev;
    int r = enet_host_service(c->host, &ev, 0);
    while (r > 0) {
        handle(w, i, &ev);
        r = enet_host_check_events(c->host, &ev);
    }
}

static bool enet_wire_bytes(lg_worker *w, uint64_t *out)
{
    estate *st = state_of(w);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < w->count; i++)
        sum +=
            (uint64_t)st->clients[i].host->totalSentData + st->clients[i].host->totalReceivedData;
    *out = sum;
    return true;
}

static void enet_teardown(lg_worker *w)
{
    estate *st = state_of(w);
    if (!st) return;
    for (uint32_t i = 0; st->clients && i < w->count; i++) {
        eclient *c = &st->clients[i];
        if (c->peer) enet_peer_disconnect_now(c->peer, 0);
        if (c->host) enet_host_destroy(c->host);
    }
    if (st->enet_up) enet_deinitialize();
    free(st->clients);
    free(st);
    w->driver_state = NULL;
}

const lg_driver lg_driver_enet = {
    .name = "bare-enet",
    .setup = enet_setup,
    .fd = enet_fd,
    .send = enet_send,
    .service = enet_service,
    .wire_bytes = enet_wire_bytes,
    .teardown = enet_teardown,
};
