/* bare_server: the baseline for the relay benchmark. A bare ENet 1.3.17
 * server doing the same fan-out as a KaosNet relayed match, and nothing
 * else: no envelope, no authentication, no sessions, no match registry.
 *
 *   bench_relay_bare_server [--port P] [--bind ADDR] [--peers N] [--room 8]
 *                           [--loop paced|tutorial] [--max-seconds S]
 *
 * Peers are put into rooms of --room by the order in which their connections
 * complete (counting restarts whenever the server is empty). Each peer is
 * greeted with its connect number (4 bytes, little endian, reliable, channel
 * 0), so a load generator can connect one client after another and check
 * that the server grouped them as it meant to. Every packet
 * received on channel 2 is forwarded, same bytes, same channel, unreliable,
 * to the other members of its room: the received packet itself is handed to
 * each enet_peer_send, so one fan-out allocates nothing. Other channels are
 * dropped.
 *
 * Loops:
 *   tutorial  while (enet_host_service(host, &ev, 1) > 0) handle(ev);
 *             one service call per event, as in ENet's tutorial.
 *   paced     the KaosNet net loop's shape: service once with timeout 0,
 *             drain queued events with enet_host_check_events, flush once,
 *             then sleep out the rest of 1 ms and wait (at most 5 ms) for
 *             the socket.
 *
 * Prints "ready PORT" on stdout once listening; stops on SIGINT/SIGTERM or
 * after --max-seconds (default 1800), so it never outlives a broken run. */
#include <enet/enet.h>

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHANNELS      3
#define CHANNEL_GREET 0
#define CHANNEL_INPUT 2
#define ROOM_MAX      64
#define ROUND_MIN_NS  1000000 /* paced: at most one round per millisecond */
#define IDLE_WAIT_MS  5

typedef struct room {
    ENetPeer *members[ROOM_MAX];
    uint32_t count;
} room;

typedef struct bare {
    ENetHost *host;
    room *rooms;
    uint32_t room_count; /* peers / room_size + 1, used cyclically */
    uint32_t room_size;
    uint64_t next_seq; /* connects since the server was last empty */
    uint64_t forwarded, dropped;
} bare;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void greet(ENetPeer *peer, uint64_t seq)
{
    uint8_t msg[4];
    for (int i = 0; i < 4; i++)
        msg[i] = (uint8_t)(seq >> (8 * i));
    ENetPacket *p = enet_packet_create(msg, sizeof msg, ENET_PACKET_FLAG_RELIABLE);
    /* enet_peer_send takes the packet only on success. */
    if (p && enet_peer_send(peer, CHANNEL_GREET, p) < 0) enet_packet_destroy(p);
}

/* Rooms are stored in peer->data as index + 1 (0 = none). */
static void handle_connect(bare *b, ENetPeer *peer)
{
    if (b->host->connectedPeers == 1) b->next_seq = 0;
    uint64_t seq = b->next_seq++;
    greet(peer, seq);
    uint32_t r = (uint32_t)((seq / b->room_size) % b->room_count);
    room *rm = &b->rooms[r];
    if (rm->count == b->room_size) {
        /* Only if earlier occupants of a reused room are still connected. */
        fprintf(stderr, "bare_server: room %u is full; peer left without a room\n", r);
        peer->data = NULL;
        return;
    }
    rm->members[rm->count++] = peer;
    peer->data = (void *)(uintptr_t)(r + 1);
}

static void handle_disconnect(bare *b, ENetPeer *peer)
{
    uintptr_t tag = (uintptr_t)peer->data;
    if (!tag) return;
    room *rm = &b->rooms[tag - 1];
    for (uint32_t i = 0; i < rm->count; i++) {
        if (rm->members[i] == peer) {
            rm->members[i] = rm->members[--rm->count];
            break;
        }
    }
    peer->data = NULL;
}

static void handle_receive(bare *b, ENetEvent *ev)
{
    ENetPacket *p = ev->packet;
    uintptr_t tag = (uintptr_t)ev->peer->data;
    if (ev->channelID == CHANNEL_INPUT && tag) {
        /* A received unreliable packet carries flags 0: forwarding it as is
         * keeps it unreliable (sequenced). Each successful send holds a
         * reference; ENet frees it after the last one went out. */
        room *rm = &b->rooms[tag - 1];
        for (uint32_t i = 0; i < rm->count; i++) {
            if (rm->members[i] == ev->peer) continue;
            if (enet_peer_send(rm->members[i], CHANNEL_INPUT, p) == 0)
                b->forwarded++;
            else
                b->dropped++;
        }
    }
    if (p->referenceCount == 0) enet_packet_destroy(p);
}

static void handle(bare *b, ENetEvent *ev)
{
    switch (ev->type) {
    case ENET_EVENT_TYPE_CONNECT:
        handle_connect(b, ev->peer);
        break;
    case ENET_EVENT_TYPE_DISCONNECT:
        handle_disconnect(b, ev->peer);
        break;
    case ENET_EVENT_TYPE_RECEIVE:
        handle_receive(b, ev);
        break;
    case ENET_EVENT_TYPE_NONE:
        break;
    }
}

static void run_tutorial(bare *b, int64_t deadline)
{
    ENetEvent ev;
    while (!stop_requested && now_ns() < deadline) {
        while (enet_host_service(b->host, &ev, 1) > 0)
            handle(b, &ev);
    }
}

static void run_paced(bare *b, int64_t deadline)
{
    ENetEvent ev;
    while (!stop_requested) {
        int64_t start = now_ns();
        if (start >= deadline) break;
        int r = enet_host_service(b->host, &ev, 0);
        while (r > 0) {
            handle(b, &ev);
            r = enet_host_check_events(b->host, &ev);
        }
        enet_host_flush(b->host);
        int64_t rest = start + ROUND_MIN_NS - now_ns();
        if (rest > 0) {
            struct timespec ts = {0, (long)rest};
            nanosleep(&ts, NULL);
        }
        struct pollfd pfd = {.fd = b->host->socket, .events = POLLIN};
        poll(&pfd, 1, IDLE_WAIT_MS);
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_relay_bare_server [--port P] [--bind ADDR] [--peers N] [--room N]\n"
                 "                               [--loop paced|tutorial] [--max-seconds S]\n");
}

int main(int argc, char **argv)
{
    const char *bind = "127.0.0.1", *loop = "paced";
    long port = 0, peers = 1024, room_size = 8, max_seconds = 1800;
    static const struct option longs[] = {
        {"port", required_argument, 0, 'p'},  {"bind", required_argument, 0, 'b'},
        {"peers", required_argument, 0, 'n'}, {"room", required_argument, 0, 'r'},
        {"loop", required_argument, 0, 'l'},  {"max-seconds", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'p':
            port = atol(optarg);
            break;
        case 'b':
            bind = optarg;
            break;
        case 'n':
            peers = atol(optarg);
            break;
        case 'r':
            room_size = atol(optarg);
            break;
        case 'l':
            loop = optarg;
            break;
        case 't':
            max_seconds = atol(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    bool tutorial = !strcmp(loop, "tutorial");
    if ((!tutorial && strcmp(loop, "paced")) || port < 0 || port > 65535 || peers < 1 ||
        peers > ENET_PROTOCOL_MAXIMUM_PEER_ID || room_size < 2 || room_size > ROOM_MAX ||
        max_seconds < 1) {
        usage(stderr);
        return 2;
    }
    if (enet_initialize() != 0) {
        fprintf(stderr, "bare_server: enet_initialize failed\n");
        return 1;
    }
    ENetAddress addr = {.host = ENET_HOST_ANY, .port = (enet_uint16)port};
    if (enet_address_set_host_ip(&addr, bind) != 0) {
        fprintf(stderr, "bare_server: bad bind address %s\n", bind);
        return 2;
    }
    bare b = {.room_size = (uint32_t)room_size, .room_count = (uint32_t)(peers / room_size + 1)};
    b.rooms = calloc(b.room_count, sizeof *b.rooms);
    b.host = b.rooms ? enet_host_create(&addr, (size_t)peers, CHANNELS, 0, 0) : NULL;
    if (!b.host) {
        fprintf(stderr, "bare_server: cannot listen on %s:%ld\n", bind, port);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    printf("ready %u\n", b.host->address.port);
    fflush(stdout);
    int64_t deadline = now_ns() + (int64_t)max_seconds * 1000000000;
    if (tutorial)
        run_tutorial(&b, deadline);
    else
        run_paced(&b, deadline);

    fprintf(stderr, "bare_server: stopped (%s loop): %llu packets forwarded, %llu refused\n", loop,
            (unsigned long long)b.forwarded, (unsigned long long)b.dropped);
    enet_host_destroy(b.host);
    free(b.rooms);
    enet_deinitialize();
    return 0;
}
