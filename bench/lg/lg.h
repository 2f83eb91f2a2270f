/* lg: the load generator's internal contract (bench/lg, used by bench/relay
 * and bench/realtime).
 *
 * loadgen.c forks worker processes; each runs one lg_worker that drives a
 * contiguous range of clients (whole rooms only) through a driver: lg_kaos.c
 * (KaosNet SDK clients) or lg_enet.c (raw ENet hosts against bare_server).
 * A driver owns its clients and their sockets; the worker owns the clock, the
 * 30 Hz input schedule, the epoll set and the window; a workload says what
 * the server does with the inputs and what the clients measure in what comes
 * back:
 *   relay     (lg_relay.c)    each input is relayed to the other members of
 *                             its room; one-way latency and loss per delivery.
 *   realtime  (lg_realtime.c) an authoritative match keeps each player's last
 *                             input and sends every player a snapshot per
 *                             tick; tick intervals at the client, input to
 *                             snapshot latency, missing snapshots.
 *
 * Input payload (16 bytes, little endian), the same in both workloads: send
 * time in CLOCK_MONOTONIC ns (u64), sender's global client index (u32),
 * sender's sequence number (u32). Both ends run on one machine, so a receive
 * time minus a send time is a latency.
 *
 * Threads: none. Every worker is a single-threaded process; the workers and
 * the parent share only lg_shared (a MAP_SHARED mapping), written as noted on
 * each field. */
#ifndef LG_H
#define LG_H

#include "lg_util.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_PAYLOAD_LEN  16
#define LG_MAX_PROCS    16
#define LG_LATE_DIVISOR 2    /* a send later than period/2 counts as behind schedule */

typedef enum lg_mode { LG_MODE_KAOS, LG_MODE_ENET } lg_mode;
typedef enum lg_workload_kind { LG_WORKLOAD_RELAY, LG_WORKLOAD_REALTIME } lg_workload_kind;

/* What one run asks of every worker (copied into each before fork). */
typedef struct lg_config {
    lg_mode mode;
    lg_workload_kind workload;
    const char *host;
    uint16_t port;
    const char *server_key; /* KaosNet: the key to pin (hex), NULL = insecure dev mode */
    const char *handler;    /* KaosNet realtime: the registered match handler */
    uint32_t ccu;           /* all workers together */
    uint32_t room_size;     /* 8 */
    uint32_t hz;            /* inputs per client per second: 30 */
    uint32_t procs;         /* worker processes */
    double warmup_s;        /* sending before the window opens */
    double window_s;        /* steady window that is measured */
    double drain_s;         /* after the window: still sending, waiting for late deliveries */
    double setup_timeout_s;
} lg_config;

/* One worker's measurements. Written by that worker only, read by the
 * parent after the worker exited. Counts marked "window" cover the steady
 * window: sends by their send time; relay deliveries by the send time carried
 * in the payload (so late deliveries of window sends still count); realtime
 * snapshots by their arrival time. */
typedef struct lg_result {
    int32_t status; /* 0 ok, else negative: setup or run failed */
    char error[160];
    uint32_t clients;
    double setup_s;         /* connect, authenticate, join: until every room was full */
    uint64_t setup_retries; /* connects that timed out, "busy" answers: tried again */
    uint64_t sends_window;
    uint64_t sends_total;
    uint64_t send_errors;
    uint64_t deliveries_window; /* relay: inputs delivered; realtime: snapshots received */
    uint64_t deliveries_total;
    uint64_t misrouted;         /* not the expected shape, or from outside its room */
    uint64_t disconnects;       /* unexpected, after setup */
    uint64_t server_errors;     /* error answers after setup */
    uint64_t app_sent_window;   /* bytes handed to the library in the window (framed) */
    uint64_t app_recv_window;   /* bytes received from it in the window (framed) */
    uint64_t wire_bytes_window; /* ENet's totals both ways; only when wire_known */
    bool wire_known;
    uint32_t env_send_bytes; /* size of one sent message as the library frames it */
    uint32_t env_recv_bytes; /* size of one received message, idem */
    uint64_t late_sends;     /* window sends more than period/LG_LATE_DIVISOR late */
    uint64_t lag_max_us;     /* worst send lag in the window */
    uint64_t cpu_ns_window;  /* this process's CPU time in the window */
    /* Latency: relay one-way client to client; realtime input to the first
     * snapshot that echoes it. */
    uint64_t lat_samples;
    uint64_t lat_max_us;
    uint64_t lat_sum_us;
    uint32_t lat_hist[LG_LAT_BUCKETS];
    uint32_t lag_hist[LG_LAT_BUCKETS];
    /* relay */
    uint64_t lost_inputs; /* window sends that reached none of the room: lost on the way in */
    uint64_t lost_fanout; /* single deliveries missing while others of that send arrived */
    /* realtime */
    uint64_t snap_intervals; /* arrival-to-arrival intervals, both ends in the window */
    uint64_t snap_interval_max_us;
    uint64_t snapshots_missing; /* ticks skipped between two received snapshots (window) */
    uint64_t snapshots_stale;   /* a tick not newer than the last one seen */
    uint32_t snap_hz;           /* the tick rate the snapshots announce */
    uint32_t snap_hist[LG_LAT_BUCKETS];
} lg_result;

/* The parent/worker rendezvous. */
typedef struct lg_shared {
    atomic_int ready;        /* workers whose rooms are all full (incremented by each) */
    atomic_int failed;       /* workers that gave up during setup */
    atomic_int connect_turn; /* raw ENet: the worker whose turn it is to connect */
    /* Written by the parent before it stores `go` (release); read after
     * loading `go` (acquire). Absolute CLOCK_MONOTONIC ns. */
    int64_t t_start, t_begin, t_end, t_stop;
    atomic_int go; /* 1: schedule published; -1: abort */
    lg_result results[LG_MAX_PROCS];
} lg_shared;

typedef struct lg_worker lg_worker;

/* A client library behind the worker. Every function runs on the worker. */
typedef struct lg_driver {
    const char *name;
    /* Creates the worker's clients, connects them and fills their rooms.
     * Returns 0 once every room is full, or a negative value after writing
     * the reason with lg_worker_fail. May call lg_worker_wait_turn. */
    int (*setup)(lg_worker *w);
    /* The socket to watch for client i (a local index). */
    int (*fd)(lg_worker *w, uint32_t i);
    /* Sends one payload for client i, unreliable on channel 2, and flushes it
     * to the socket. Returns the framed size, or negative on failure. */
    int (*send)(lg_worker *w, uint32_t i, const uint8_t *payload, size_t len);
    /* Client i's socket is readable: receive and dispatch what is there,
     * reporting payloads through lg_worker_on_payload. */
    void (*service)(lg_worker *w, uint32_t i);
    /* Wire bytes (sent + received) of all clients so far; false if the
     * library does not expose them. */
    bool (*wire_bytes)(lg_worker *w, uint64_t *out);
    /* Disconnects and frees everything; the worker exits next. */
    void (*teardown)(lg_worker *w);
} lg_driver;

extern const lg_driver lg_driver_kaos;
extern const lg_driver lg_driver_enet;

/* What the clients measure (see the top of this file). Every function runs
 * on the worker; state lives in lg_worker.workload_state. */
typedef struct lg_workload {
    const char *name;
    /* Before the first scheduled send. 0, or negative after lg_worker_fail. */
    int (*start)(lg_worker *w);
    /* Client i sent input `seq` at `now`; `counted`: it left, inside the window. */
    void (*sent)(lg_worker *w, uint32_t i, uint32_t seq, int64_t now, bool counted);
    /* Client i received a message from the server. */
    void (*received)(lg_worker *w, uint32_t i, const uint8_t *data, size_t len, int64_t now);
    /* After the last send: settle what is still open, free the state. */
    void (*stop)(lg_worker *w);
} lg_workload;

extern const lg_workload lg_workload_relay;
extern const lg_workload lg_workload_realtime;

/* The worker (lg_worker.c). */
struct lg_worker {
    const lg_config *cfg;
    lg_shared *shared;
    uint32_t index; /* worker number, 0..procs-1 */
    uint32_t first; /* global index of its first client */
    uint32_t count; /* its clients (a multiple of room_size) */
    lg_result *res; /* &shared->results[index] */
    void *driver_state;
    const lg_workload *workload;
    void *workload_state;
    bool measuring; /* inside the steady window */
    bool running;   /* past setup: disconnects and errors are counted, not fatal */
};

/* Runs setup, the schedule and teardown; returns the process exit status. */
int lg_worker_run(lg_worker *w, const lg_driver *d);

/* Drivers report each message client i (local index) received here;
 * `framed` is its size as the library framed it. */
void lg_worker_on_payload(lg_worker *w, uint32_t i, const uint8_t *data, size_t len, size_t framed);
/* Records why setup or the run failed (first reason wins). */
void lg_worker_fail(lg_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Raw ENet only: blocks until it is this worker's turn to connect (so the
 * server sees connects in global index order); lg_worker_pass_turn ends it. */
int lg_worker_wait_turn(lg_worker *w);
void lg_worker_pass_turn(lg_worker *w);

/* Whether `t` (CLOCK_MONOTONIC ns) falls in the steady window. */
bool lg_in_window(const lg_worker *w, int64_t t);
/* Records a latency sample in microseconds. */
void lg_record_latency(lg_result *r, uint64_t us);

/* Clocks, /proc CPU time and latency histograms: lg_util.h. */
/* Snapshot intervals use linear 0.1 ms buckets instead (lg_realtime.c). */
uint32_t lg_snap_bucket(uint64_t us);
uint64_t lg_snap_bucket_value(uint32_t bucket);

/* Little-endian fields. */
static inline void lg_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void lg_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void lg_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline uint64_t lg_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint32_t lg_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint16_t lg_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* The realtime snapshot, the same bytes from the Lua handler
 * (bench/realtime/lua/bench_realtime.lua) and from bare_server --workload
 * realtime: a 16-byte header (tick u64, player count u16, tick rate u16,
 * inputs taken this tick u32), then per player 8 bytes (slot u16, the low 16
 * bits of the client index its last input named u16 (0xffff before any),
 * that input's sequence number u32). */
#define LG_SNAP_HEADER   16
#define LG_SNAP_ENTRY    8
#define LG_SNAP_NO_INPUT 0xffff

#endif
