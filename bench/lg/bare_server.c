/* bare_server: the baseline of the relay and realtime benchmarks. A bare
 * ENet 1.3.17 server doing the same traffic as KaosNet, and nothing else: no
 * envelope, no encryption, no authentication, no sessions, no Lua.
 *
 *   bench_bare_server [--port P] [--bind ADDR] [--peers N] [--room 8]
 *                     [--workload relay|realtime] [--hz 30] [--no-throttle]
 *                     [--loop paced|tutorial] [--max-seconds S]
 *
 * Peers are put into rooms of --room by the order in which their connections
 * complete (counting restarts whenever the server is empty). Each peer is
 * greeted with its connect number (4 bytes, little endian, reliable, channel
 * 0), so a load generator can connect one client after another and check
 * that the server grouped them as it meant to. Other channels than 2 are
 * dropped. On channel 2:
 *
 *   relay     every packet is forwarded, same bytes, same channel,
 *             unreliable, to the other members of its room: the received
 *             packet itself is handed to each enet_peer_send, so one fan-out
 *             allocates nothing.
 *   realtime  a 16-byte input (bench/lg/lg.h) is kept as the sender's last
 *             input (client index and sequence number), and every room ticks
 *             at --hz: each tick builds one snapshot in the bytes lg.h
 *             describes (the same a KaosNet match handler sends) and queues
 *             that one packet, unreliable on channel 2, to every member.
 *             Rooms tick on one grid, phases scattered over the period (as
 *             matches created at unrelated moments would be); a room more
 *             than 10 periods behind is re-based instead of catching up.
 *
 * Loops:
 *   tutorial  while (enet_host_service(host, &ev, 1) > 0) handle(ev);
 *             one service call per event, as in ENet's tutorial (realtime:
 *             due ticks run after every event and every empty service).
 *   paced     the KaosNet net loop's shape: service once with timeout 0,
 *             drain queued events with enet_host_check_events, run the due
 *             ticks, flush once, then sleep out the rest of 1 ms and wait
 *             (at most 5 ms, and not past the next tick) for the socket.
 *
 * --no-throttle: enet_peer_throttle_configure(peer, ..., deceleration 0) on
 * every connect, as KaosNet does, so ENet never thins unreliable sends.
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
#define SNAP_HEADER   16 /* lg.h: LG_SNAP_HEADER, LG_SNAP_ENTRY, LG_SNAP_NO_INPUT */
#define SNAP_ENTRY    8
#define NO_INPUT      0xffff
#define LATE_REBASE   10

typedef struct room {
    ENetPeer *members[ROOM_MAX];
    uint32_t count;
    /* realtime: each member's last input, in the order of members[] */
    uint16_t ids[ROOM_MAX];
    uint32_t seqs[ROOM_MAX];
    uint32_t inputs; /* taken since the last tick */
    uint64_t tick;
    int64_t due_ns;
} room;

typedef struct bare {
    ENetHost *host;
    room *rooms;
    uint32_t room_count; /* peers / room_size + 1, used cyclically */
    uint32_t room_size;
    bool realtime;
    bool no_throttle;
    int64_t period_ns;
    int64_t next_due_ns; /* realtime: earliest due time of any room (a bound) */
    uint64_t next_seq;   /* connects since the server was last empty */
    uint64_t forwarded, dropped, inputs, snapshots, late_ticks;
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
    if (b->no_throttle)
        enet_peer_throttle_configure(peer, ENET_PEER_PACKET_THROTTLE_INTERVAL,
                                     ENET_PEER_PACKET_THROTTLE_ACCELERATION, 0);
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
    rm->ids[rm->count] = NO_INPUT;
    rm->seqs[rm->count] = 0;
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
            rm->count--;
            rm->members[i] = rm->members[rm->count];
            rm->ids[i] = rm->ids[rm->count];
            rm->seqs[i] = rm->seqs[rm->count];
            break;
        }
    }
    peer->data = NULL;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* realtime: keep the input as the sender's last (a newer sequence number wins). */
static void take_input(bare *b, room *rm, ENetPeer *peer, const ENetPacket *p)
{
    if (p->dataLength != 16) return;
    for (uint32_t i = 0; i < rm->count; i++) {
        if (rm->members[i] != peer) continue;
        uint32_t seq = get_u32(p->data + 12);
        if (rm->ids[i] == NO_INPUT || (int32_t)(seq - rm->seqs[i]) > 0) {
            rm->ids[i] = (uint16_t)get_u32(p->data + 8);
            rm->seqs[i] = seq;
        }
        rm->inputs++;
        b->inputs++;
        return;
    }
}

/* realtime: one snapshot of the room, the same packet to every member. */
static void send_snapshot(bare *b, room *rm)
{
    uint8_t buf[SNAP_HEADER + ROOM_MAX * SNAP_ENTRY];
    put_u64(buf, rm->tick);
    put_u16(buf + 8, rm->count);
    put_u16(buf + 10, (uint32_t)(1000000000 / b->period_ns));
    put_u32(buf + 12, rm->inputs);
    for (uint32_t i = 0; i < rm->count; i++) {
        uint8_t *e = buf + SNAP_HEADER + i * SNAP_ENTRY;
        put_u16(e, i + 1);
        put_u16(e + 2, rm->ids[i]);
        put_u32(e + 4, rm->seqs[i]);
    }
    rm->inputs = 0;
    ENetPacket *p = enet_packet_create(buf, SNAP_HEADER + rm->count * SNAP_ENTRY, 0);
    if (!p) return;
    for (uint32_t i = 0; i < rm->count; i++) {
        /* enet_peer_send takes a reference only on success. */
        if (enet_peer_send(rm->members[i], CHANNEL_INPUT, p) == 0)
            b->snapshots++;
        else
            b->dropped++;
    }
    if (p->referenceCount == 0) enet_packet_destroy(p);
}

/* realtime: every room whose tick is due sends its snapshot. Rooms without
 * members keep their grid (ticking nothing). */
static void run_ticks(bare *b, int64_t now)
{
    if (!b->realtime || now < b->next_due_ns) return;
    int64_t next = INT64_MAX;
    for (uint32_t r = 0; r < b->room_count; r++) {
        room *rm = &b->rooms[r];
        if (rm->due_ns <= now) {
            if (now - rm->due_ns > b->period_ns) b->late_ticks++;
            if (rm->count) send_snapshot(b, rm);
            rm->tick++;
            rm->due_ns += b->period_ns;
            if (now - rm->due_ns > LATE_REBASE * b->period_ns) rm->due_ns = now + b->period_ns;
        }
        if (rm->due_ns < next) next = rm->due_ns;
    }
    b->next_due_ns = next;
}

static void handle_receive(bare *b, ENetEvent *ev)
{
    ENetPacket *p = ev->packet;
    uintptr_t tag = (uintptr_t)ev->peer->data;
    if (b->realtime) {
        if (ev->channelID == CHANNEL_INPUT && tag) take_input(b, &b->rooms[tag - 1], ev->peer, p);
        enet_packet_destroy(p);
        return;
    }
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
        while (enet_host_service(b->host, &ev, 1) > 0) {
            handle(b, &ev);
            run_ticks(b, now_ns());
        }
        run_ticks(b, now_ns());
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
        run_ticks(b, now_ns());
        enet_host_flush(b->host);
        int64_t rest = start + ROUND_MIN_NS - now_ns();
        if (rest > 0) {
            struct timespec ts = {0, (long)rest};
            nanosleep(&ts, NULL);
        }
        /* Wait for the socket, but not past the next tick (KaosNet's match
         * threads wake for their due time too). */
        int64_t wait = (int64_t)IDLE_WAIT_MS * 1000000;
        if (b->realtime && b->next_due_ns - now_ns() < wait) wait = b->next_due_ns - now_ns();
        if (wait < 0) wait = 0;
        struct timespec ts = {0, (long)wait};
        struct pollfd pfd = {.fd = b->host->socket, .events = POLLIN};
        ppoll(&pfd, 1, &ts, NULL);
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_bare_server [--port P] [--bind ADDR] [--peers N] [--room N]\n"
                 "                         [--workload relay|realtime] [--hz N] [--no-throttle]\n"
                 "                         [--loop paced|tutorial] [--max-seconds S]\n");
}

int main(int argc, char **argv)
{
    const char *bind = "127.0.0.1", *loop = "paced", *workload = "relay";
    long port = 0, peers = 1024, room_size = 8, max_seconds = 1800, hz = 30;
    bool no_throttle = false;
    static const struct option longs[] = {{"port", required_argument, 0, 'p'},
                                          {"bind", required_argument, 0, 'b'},
                                          {"peers", required_argument, 0, 'n'},
                                          {"room", required_argument, 0, 'r'},
                                          {"loop", required_argument, 0, 'l'},
                                          {"max-seconds", required_argument, 0, 't'},
                                          {"workload", required_argument, 0, 'w'},
                                          {"hz", required_argument, 0, 'z'},
                                          {"no-throttle", no_argument, 0, 'T'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
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
        case 'w':
            workload = optarg;
            break;
        case 'z':
            hz = atol(optarg);
            break;
        case 'T':
            no_throttle = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    bool tutorial = !strcmp(loop, "tutorial"), realtime = !strcmp(workload, "realtime");
    if ((!tutorial && strcmp(loop, "paced")) || (!realtime && strcmp(workload, "relay")) ||
        hz < 1 || hz > 1000 || port < 0 || port > 65535 || peers < 1 ||
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
    bare b = {.room_size = (uint32_t)room_size,
              .room_count = (uint32_t)(peers / room_size + 1),
              .realtime = realtime,
              .no_throttle = no_throttle,
              .period_ns = 1000000000 / hz};
    b.rooms = calloc(b.room_count, sizeof *b.rooms);
    int64_t t0 = now_ns();
    /* Phases spread over the period but not in room order: the load
     * generator's send phases rise with the client index, and rooms in
     * index order would tick just after their own members' inputs. */
    for (uint32_t r = 0; b.rooms && r < b.room_count; r++)
        b.rooms[r].due_ns =
            t0 + (int64_t)(((uint64_t)(r * 2654435761u) * (uint64_t)b.period_ns) >> 32);
    b.next_due_ns = t0;
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

    if (realtime)
        fprintf(stderr,
                "bare_server: stopped (%s loop, realtime): %llu inputs, %llu snapshots sent, "
                "%llu refused, %llu late ticks\n",
                loop, (unsigned long long)b.inputs, (unsigned long long)b.snapshots,
                (unsigned long long)b.dropped, (unsigned long long)b.late_ticks);
    else
        fprintf(stderr, "bare_server: stopped (%s loop): %llu packets forwarded, %llu refused\n",
                loop, (unsigned long long)b.forwarded, (unsigned long long)b.dropped);
    enet_host_destroy(b.host);
    free(b.rooms);
    enet_deinitialize();
    return 0;
}
